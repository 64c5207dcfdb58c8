/* What callers can learn about keys: the key a URI selects (p11_key_info), every private key
 * it matches (p11_list_keys), and the public key as a SubjectPublicKeyInfo (p11_public_key),
 * taken from the key's own public attributes or its public key object. */
#include "common/p11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static enum p11_curve curve_enum(const struct der_curve *c)
{
    if (c == NULL)
        return P11_CURVE_NONE;
    return c->bits == 256 ? P11_CURVE_P256 : c->bits == 384 ? P11_CURVE_P384 : P11_CURVE_P521;
}

static void describe_key(const struct p11_token *tok, const struct p11_key *key,
                         struct p11_key_info *out)
{
    size_t id_len = key->id_len <= P11_ID_MAX ? key->id_len : 0;

    memset(out, 0, sizeof(*out));
    out->type = key->type;
    out->bits = key->bits;
    out->curve = curve_enum(key->curve);
    snprintf(out->label, sizeof(out->label), "%s", key->label);
    memcpy(out->id, key->id, id_len);
    out->id_len = id_len;
    snprintf(out->token_label, sizeof(out->token_label), "%s", tok->label);
    out->always_authenticate = key->always_authenticate;
    out->schemes = key->schemes;
    p11_uri_for_key(&tok->info, key->id, id_len, key->label, out->uri, sizeof(out->uri));
}

static int key_info_op(struct p11_ctx *ctx, const struct p11_request *req, struct p11_token *tok,
                       const struct p11_key *key, void *arg, struct te_error *err)
{
    (void)ctx;
    (void)req;
    (void)err;
    describe_key(tok, key, arg);
    return TE_OK;
}

int p11_key_info(struct p11_ctx *ctx, const struct p11_keyref *ref, struct p11_key_info *out,
                 struct te_error *err)
{
    CHECK_ARG(ctx != NULL && out != NULL, TE_ERR_INVALID);
    return p11_run(ctx, ref, true, key_info_op, out, err);
}

struct list_args {
    struct p11_key_info *keys;
    size_t count;
};

static int list_keys_op(struct p11_ctx *ctx, const struct p11_request *req, struct p11_token *tok,
                        const struct p11_key *unused, void *arg, struct te_error *err)
{
    struct list_args *a = arg;
    CK_ATTRIBUTE tmpl[8];
    CK_OBJECT_HANDLE found[P11_FIND_MAX];
    CK_OBJECT_CLASS cls;
    CK_ULONG count = 0;
    struct p11_session *s;
    CK_RV rv;
    int ret;

    (void)unused;
    if ((ret = p11_session_acquire_ready(ctx, tok, NULL, &s, err)) != TE_OK)
        return ret;
    size_t n = p11_key_template(req, tmpl, 8, &cls);
    rv = ctx->fn->C_FindObjectsInit(s->handle, tmpl, n);
    if (rv == CKR_OK) {
        rv = ctx->fn->C_FindObjects(s->handle, found, P11_FIND_MAX, &count);
        ctx->fn->C_FindObjectsFinal(s->handle);
    }
    if (rv == CKR_OK && (a->keys = calloc(count ? count : 1, sizeof(*a->keys))) == NULL)
        rv = CKR_HOST_MEMORY;
    for (CK_ULONG i = 0; rv == CKR_OK && i < count; i++) {
        struct p11_key key;
        memset(&key, 0, sizeof(key));
        if ((rv = p11_key_read(ctx, tok, s->handle, found[i], &key)) == CKR_OK)
            describe_key(tok, &key, &a->keys[a->count++]);
    }
    p11_session_release(ctx, tok, s, p11_rv_session_lost(rv));
    if (rv != CKR_OK) {
        free(a->keys);
        a->keys = NULL;
        a->count = 0;
        return p11_rv_error(err, rv, "Listing the keys matching '%s' on token '%s' failed",
                            req->uri_str, tok->label);
    }
    return TE_OK;
}

int p11_list_keys(struct p11_ctx *ctx, const struct p11_keyref *ref, struct p11_key_info **out,
                  size_t *count, struct te_error *err)
{
    struct list_args a = {NULL, 0};
    int ret;

    CHECK_ARG(ctx != NULL && out != NULL && count != NULL, TE_ERR_INVALID);
    if ((ret = p11_run(ctx, ref, false, list_keys_op, &a, err)) != TE_OK)
        return ret;
    *out = a.keys;
    *count = a.count;
    return TE_OK;
}

struct pubkey_args {
    uint8_t **der;
    size_t *der_len;
};

/* The public key object that goes with key: same type and id (or label without an id). */
static CK_RV find_public_object(struct p11_ctx *ctx, CK_SESSION_HANDLE s,
                                const struct p11_key *key, CK_OBJECT_HANDLE *out, bool *found)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE type = key->type == P11_KEY_EC ? CKK_EC : CKK_RSA;
    CK_ATTRIBUTE tmpl[3] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &type, sizeof(type)}};
    CK_ULONG n = 0;
    CK_RV rv;

    *found = false;
    if (key->id_len > 0 && key->id_len <= P11_ID_MAX) {
        tmpl[2] = (CK_ATTRIBUTE){CKA_ID, (void *)key->id, key->id_len};
    } else if (key->label[0] != '\0') {
        tmpl[2] = (CK_ATTRIBUTE){CKA_LABEL, (void *)key->label, strlen(key->label)};
    } else {
        return CKR_OK;
    }
    if ((rv = ctx->fn->C_FindObjectsInit(s, tmpl, 3)) != CKR_OK)
        return rv;
    rv = ctx->fn->C_FindObjects(s, out, 1, &n);
    ctx->fn->C_FindObjectsFinal(s);
    *found = rv == CKR_OK && n == 1;
    return rv;
}

/* Reads the two attributes that make up the public key: (modulus, exponent) for RSA and
 * (params, point) for EC, from the private key first, then from its public object. */
static CK_RV read_public_parts(struct p11_ctx *ctx, CK_SESSION_HANDLE s, const struct p11_key *key,
                               uint8_t **a, size_t *a_len, uint8_t **b, size_t *b_len)
{
    CK_ATTRIBUTE_TYPE ta = key->type == P11_KEY_EC ? CKA_EC_PARAMS : CKA_MODULUS;
    CK_ATTRIBUTE_TYPE tb = key->type == P11_KEY_EC ? CKA_EC_POINT : CKA_PUBLIC_EXPONENT;
    CK_OBJECT_HANDLE pub;
    bool found;
    CK_RV rv;

    if ((rv = p11_read_attr(ctx, s, key->handle, ta, a, a_len)) != CKR_OK ||
        (rv = p11_read_attr(ctx, s, key->handle, tb, b, b_len)) != CKR_OK)
        return rv;
    if (*a != NULL && *b != NULL)
        return CKR_OK;
    if ((rv = find_public_object(ctx, s, key, &pub, &found)) != CKR_OK || !found)
        return rv;
    log_debug("taking the public key of '%s' from its public key object", key->uri);
    if (*a == NULL && (rv = p11_read_attr(ctx, s, pub, ta, a, a_len)) != CKR_OK)
        return rv;
    free(*b);
    return p11_read_attr(ctx, s, pub, tb, b, b_len);
}

static int public_key_op(struct p11_ctx *ctx, const struct p11_request *req, struct p11_token *tok,
                         const struct p11_key *key, void *arg, struct te_error *err)
{
    struct pubkey_args *args = arg;
    uint8_t *a = NULL, *b = NULL;
    const uint8_t *point;
    size_t a_len = 0, b_len = 0, point_len;
    struct p11_session *s;
    CK_RV rv;
    int ret;

    if (key->type == 0)
        return te_error_set(err, TE_ERR_UNSUPPORTED,
                            "The key '%s' on token '%s' is neither an RSA nor an EC key.",
                            req->uri_str, tok->label);
    if ((ret = p11_session_acquire_ready(ctx, tok, key, &s, err)) != TE_OK)
        return ret;
    rv = read_public_parts(ctx, s->handle, key, &a, &a_len, &b, &b_len);
    p11_session_release(ctx, tok, s, p11_rv_session_lost(rv));
    if (rv != CKR_OK) {
        ret = p11_rv_error(err, rv, "Reading the public key of '%s' on token '%s' failed",
                           req->uri_str, tok->label);
        goto exit;
    }
    if (a == NULL || b == NULL) {
        ret = te_error_set(err, TE_ERR_UNSUPPORTED,
                           "Token '%s' has no public key for '%s': the private key does not "
                           "expose %s and there is no public key object with its id. Import "
                           "the public key into the token next to the private key.",
                           tok->label, req->uri_str,
                           key->type == P11_KEY_EC ? "CKA_EC_POINT" : "its modulus");
        goto exit;
    }
    if (key->type == P11_KEY_RSA) {
        ret = der_spki_rsa(a, a_len, b, b_len, args->der, args->der_len);
    } else {
        ret = der_ec_point_unwrap(b, b_len, key->ec_coord_len, &point, &point_len);
        if (ret == TE_OK)
            ret = der_spki_ec(a, a_len, point, point_len, args->der, args->der_len);
    }
    if (ret != TE_OK)
        ret = te_error_set(err, ret, "Token '%s' returned a public key for '%s' that is not "
                           "well-formed.", tok->label, req->uri_str);
exit:
    free(a);
    free(b);
    return ret;
}

int p11_public_key(struct p11_ctx *ctx, const struct p11_keyref *ref, uint8_t **der,
                   size_t *der_len, struct te_error *err)
{
    struct pubkey_args a = {der, der_len};

    CHECK_ARG(ctx != NULL && der != NULL && der_len != NULL, TE_ERR_INVALID);
    return p11_run(ctx, ref, true, public_key_op, &a, err);
}
