/* Key lookup and the key cache: the first private key matching a request on its token, read
 * once (type, size, curve, label, id, CKA_ALWAYS_AUTHENTICATE, usable schemes) and kept by the
 * merged URI, so that signing needs no C_FindObjects after the first time. */
#include "common/p11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define P11_ATTR_MAX 4096 /* largest attribute we read: an RSA-8192 modulus is 1024 bytes */
#define P11_TEMPLATE_MAX 8 /* class + the URI's object attributes (label, id) */

static const char multiple_keys_warning[] =
    "Multiple keys were found. If the wrong one was chosen, please use a URI that uniquely "
    "identifies a key.";

bool p11_rv_session_lost(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_OPERATION_ACTIVE;
}

CK_RV p11_read_attr(struct p11_ctx *ctx, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                    CK_ATTRIBUTE_TYPE type, uint8_t **value, size_t *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_RV rv;

    *value = NULL;
    *len = 0;
    rv = ctx->fn->C_GetAttributeValue(s, obj, &a, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return CKR_OK;
    if (rv != CKR_OK)
        return rv;
    if (a.ulValueLen > P11_ATTR_MAX) {
        log_warn("ignoring attribute 0x%lx of %lu bytes from the token", (unsigned long)type,
                 (unsigned long)a.ulValueLen);
        return CKR_OK;
    }
    if ((a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1)) == NULL)
        return CKR_HOST_MEMORY;
    rv = ctx->fn->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK || a.ulValueLen > P11_ATTR_MAX) {
        free(a.pValue);
        return rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ? CKR_OK : rv;
    }
    *value = a.pValue;
    *len = a.ulValueLen;
    return CKR_OK;
}

/* A CK_ULONG or CK_BBOOL attribute; def when absent or of the wrong size. */
static CK_RV read_ulong(struct p11_ctx *ctx, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                        CK_ATTRIBUTE_TYPE type, CK_ULONG def, CK_ULONG *out)
{
    uint8_t *v;
    size_t len;
    CK_RV rv = p11_read_attr(ctx, s, h, type, &v, &len);

    *out = def;
    if (rv == CKR_OK && v != NULL && len == sizeof(CK_ULONG))
        memcpy(out, v, sizeof(CK_ULONG));
    else if (rv == CKR_OK && v != NULL && len == sizeof(CK_BBOOL))
        *out = v[0] ? 1 : 0;
    free(v);
    return rv;
}

/* Bits of a big-endian unsigned integer. */
static unsigned int_bits(const uint8_t *p, size_t len)
{
    while (len > 0 && p[0] == 0) {
        p++;
        len--;
    }
    if (len == 0)
        return 0;
    unsigned bits = (unsigned)(len - 1) * 8;
    for (uint8_t top = p[0]; top != 0; top >>= 1)
        bits++;
    return bits;
}

/* Schemes the key itself allows: CKA_SIGN, its type, CKA_ALLOWED_MECHANISMS and, for PSS,
 * a modulus big enough for a salt as long as the hash. */
static unsigned key_schemes(const struct p11_key *key, const uint8_t *allowed, size_t allowed_len)
{
    unsigned schemes = 0;

    for (int i = 0; i < SIG_SCHEME_COUNT; i++) {
        enum sig_scheme sc = (enum sig_scheme)i;
        enum sig_alg alg = sig_scheme_alg(sc);
        CK_MECHANISM_TYPE mech = alg == SIG_ALG_ECDSA       ? CKM_ECDSA
                               : alg == SIG_ALG_RSA_PKCS1 ? CKM_RSA_PKCS
                                                          : CKM_RSA_PKCS_PSS;
        bool fits = (alg == SIG_ALG_ECDSA) == (key->type == P11_KEY_EC);
        if (alg == SIG_ALG_RSA_PSS && key->rsa_len < 2 * sig_hash_len(sig_scheme_hash(sc)) + 2)
            fits = false;
        /* An empty list (SoftHSM's default) restricts nothing. */
        if (fits && allowed != NULL && allowed_len > 0) {
            bool listed = false;
            for (size_t k = 0; k + sizeof(CK_MECHANISM_TYPE) <= allowed_len;
                 k += sizeof(CK_MECHANISM_TYPE)) {
                CK_MECHANISM_TYPE m;
                memcpy(&m, allowed + k, sizeof(m));
                listed |= m == mech;
            }
            fits = listed;
        }
        if (fits)
            schemes |= 1u << sc;
    }
    return schemes;
}

CK_RV p11_key_read(struct p11_ctx *ctx, struct p11_token *tok, CK_SESSION_HANDLE s,
                   CK_OBJECT_HANDLE h, struct p11_key *key)
{
    CK_ULONG type = 0, always = 0, sign = 1;
    uint8_t *v = NULL, *allowed = NULL;
    size_t len = 0, allowed_len = 0;
    CK_RV rv;

    key->handle = h;
    key->tok = tok;
    key->tok_gen = tok->gen;
    key->key_epoch = tok->key_epoch;
    if ((rv = read_ulong(ctx, s, h, CKA_KEY_TYPE, (CK_ULONG)-1, &type)) != CKR_OK ||
        (rv = read_ulong(ctx, s, h, CKA_ALWAYS_AUTHENTICATE, 0, &always)) != CKR_OK ||
        (rv = read_ulong(ctx, s, h, CKA_SIGN, 1, &sign)) != CKR_OK)
        goto exit;
    key->always_authenticate = always != 0;
    if ((rv = p11_read_attr(ctx, s, h, CKA_LABEL, &v, &len)) != CKR_OK)
        goto exit;
    if (len >= P11_LABEL_MAX)
        len = P11_LABEL_MAX - 1;
    if (v != NULL)
        memcpy(key->label, v, len);
    key->label[len] = '\0';
    free(v);
    v = NULL;
    if ((rv = p11_read_attr(ctx, s, h, CKA_ID, &v, &len)) != CKR_OK)
        goto exit;
    key->id_len = len > P11_ID_MAX ? P11_ID_MAX + 1 : len;
    if (v != NULL)
        memcpy(key->id, v, len > P11_ID_MAX ? P11_ID_MAX : len);
    free(v);
    v = NULL;
    if (type == CKK_RSA) {
        key->type = P11_KEY_RSA;
        if ((rv = p11_read_attr(ctx, s, h, CKA_MODULUS, &v, &len)) != CKR_OK)
            goto exit;
        key->bits = v != NULL ? int_bits(v, len) : 0;
        key->rsa_len = (key->bits + 7) / 8;
    } else if (type == CKK_EC) {
        key->type = P11_KEY_EC;
        if ((rv = p11_read_attr(ctx, s, h, CKA_EC_PARAMS, &v, &len)) != CKR_OK)
            goto exit;
        key->curve = der_curve_from_params(v, len);
        key->bits = key->curve ? key->curve->bits : 0;
        key->ec_coord_len = key->curve ? key->curve->coord_len : 0;
    } else {
        key->type = 0; /* a key type we cannot sign with: no schemes */
    }
    if ((rv = p11_read_attr(ctx, s, h, CKA_ALLOWED_MECHANISMS, &allowed, &allowed_len)) != CKR_OK)
        goto exit;
    key->schemes = (sign && key->type != 0) ? key_schemes(key, allowed, allowed_len) : 0;
    key->schemes &= p11_token_schemes(ctx, tok);
exit:
    free(v);
    free(allowed);
    return rv;
}

size_t p11_key_template(const struct p11_request *req, CK_ATTRIBUTE *tmpl, size_t max,
                        CK_OBJECT_CLASS *cls)
{
    CK_ULONG n = 0;
    CK_ATTRIBUTE *attrs = p11_kit_uri_get_attributes(req->uri, &n);
    size_t k = 0;

    /* We sign with private keys: a URI copied from a certificate or public key (type=cert,
     * type=public) selects the private key with the same label and id. */
    *cls = CKO_PRIVATE_KEY;
    tmpl[k].type = CKA_CLASS;
    tmpl[k].pValue = cls;
    tmpl[k++].ulValueLen = sizeof(*cls);
    for (CK_ULONG i = 0; i < n && k < max; i++)
        if (attrs[i].type != CKA_CLASS)
            tmpl[k++] = attrs[i];
    return k;
}

static void cache_remove(struct p11_ctx *ctx, struct p11_key **pp)
{
    struct p11_key *k = *pp;
    *pp = k->next;
    free(k);
    ctx->nkeys--;
}

void p11_key_forget_uri(struct p11_ctx *ctx, const char *uri)
{
    for (struct p11_key **pp = &ctx->keys; *pp != NULL;) {
        if (strcmp((*pp)->uri, uri) == 0)
            cache_remove(ctx, pp);
        else
            pp = &(*pp)->next;
    }
}

void p11_keys_forget(struct p11_ctx *ctx, struct p11_token *tok)
{
    tok->key_epoch++;
    for (struct p11_key **pp = &ctx->keys; *pp != NULL;) {
        if ((*pp)->tok == tok)
            cache_remove(ctx, pp);
        else
            pp = &(*pp)->next;
    }
}

void p11_keys_free(struct p11_ctx *ctx)
{
    while (ctx->keys != NULL)
        cache_remove(ctx, &ctx->keys);
}

static void cache_insert(struct p11_ctx *ctx, const struct p11_key *key)
{
    struct p11_key *copy = malloc(sizeof(*copy)), **pp;

    if (copy == NULL)
        return; /* not cached: the next request looks it up again */
    p11_key_forget_uri(ctx, key->uri);
    *copy = *key;
    copy->next = ctx->keys;
    ctx->keys = copy;
    if (++ctx->nkeys <= P11_KEY_CACHE_MAX)
        return;
    for (pp = &ctx->keys; (*pp)->next != NULL; pp = &(*pp)->next)
        ;
    cache_remove(ctx, pp);
}

struct p11_token *p11_key_cached_token(struct p11_ctx *ctx, const struct p11_request *req)
{
    for (struct p11_key *k = ctx->keys; k != NULL; k = k->next)
        if (k->tok->present && k->tok_gen == k->tok->gen && strcmp(k->uri, req->uri_str) == 0)
            return k->tok;
    return NULL;
}

int p11_key_find(struct p11_ctx *ctx, const struct p11_request *req, struct p11_token *tok,
                 struct p11_key *out, struct te_error *err)
{
    CK_ATTRIBUTE tmpl[P11_TEMPLATE_MAX];
    CK_OBJECT_HANDLE found[2];
    CK_OBJECT_CLASS cls;
    CK_ULONG count = 0;
    struct p11_session *s;
    size_t n;
    CK_RV rv;
    int ret;

    for (struct p11_key *k = ctx->keys; k != NULL; k = k->next) {
        if (k->tok == tok && k->tok_gen == tok->gen && strcmp(k->uri, req->uri_str) == 0) {
            *out = *k;
            return TE_OK;
        }
    }
    if ((ret = p11_session_acquire_ready(ctx, tok, NULL, &s, err)) != TE_OK)
        return ret;
    n = p11_key_template(req, tmpl, P11_TEMPLATE_MAX, &cls);
    rv = ctx->fn->C_FindObjectsInit(s->handle, tmpl, n);
    if (rv == CKR_OK) {
        /* Two are enough to know whether the URI is ambiguous. */
        rv = ctx->fn->C_FindObjects(s->handle, found, 2, &count);
        ctx->fn->C_FindObjectsFinal(s->handle);
    }
    if (rv != CKR_OK) {
        p11_session_release(ctx, tok, s, p11_rv_session_lost(rv));
        return p11_rv_error(err, rv, "Looking for the key '%s' on token '%s' failed",
                            req->uri_str, tok->label);
    }
    if (count == 0) {
        p11_session_release(ctx, tok, s, false);
        return te_error_set(err, TE_ERR_NO_KEY, "No private key matches '%s' on token '%s'.",
                            req->uri_str, tok->label);
    }
    if (count > 1)
        log_warn("%s", multiple_keys_warning);
    memset(out, 0, sizeof(*out));
    snprintf(out->uri, sizeof(out->uri), "%s", req->uri_str);
    rv = p11_key_read(ctx, tok, s->handle, found[0], out);
    p11_session_release(ctx, tok, s, p11_rv_session_lost(rv));
    if (rv != CKR_OK)
        return p11_rv_error(err, rv, "Reading the key '%s' on token '%s' failed", req->uri_str,
                            tok->label);
    log_debug("resolved key '%s' on token '%s' to handle %lu", req->uri_str, tok->label,
              (unsigned long)found[0]);
    cache_insert(ctx, out);
    return TE_OK;
}
