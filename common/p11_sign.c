/* Signing a digest computed on the host: ECDSA (digest truncated to the order length, raw r||s
 * turned into DER), RSA PKCS#1 v1.5 (DigestInfo + CKM_RSA_PKCS) and RSA-PSS (CKM_RSA_PKCS_PSS,
 * salt = hash length), on a pooled session, outside the context lock. */
#include "common/p11_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

struct sign_args {
    enum sig_scheme scheme;
    const uint8_t *digest;
    size_t digest_len;
    uint8_t *sig;
    size_t cap;
    size_t *sig_len;
};

static const char *alg_words(enum sig_alg alg)
{
    return alg == SIG_ALG_ECDSA       ? "ECDSA"
         : alg == SIG_ALG_RSA_PKCS1 ? "RSA PKCS#1 v1.5"
                                    : "RSA-PSS";
}

static const char *mech_name(enum sig_alg alg)
{
    return alg == SIG_ALG_ECDSA ? "CKM_ECDSA" : alg == SIG_ALG_RSA_PKCS1 ? "CKM_RSA_PKCS"
                                                                         : "CKM_RSA_PKCS_PSS";
}

static int scheme_error(struct p11_ctx *ctx, const struct p11_request *req, struct p11_token *tok,
                        const struct p11_key *key, enum sig_scheme scheme, struct te_error *err)
{
    enum sig_alg alg = sig_scheme_alg(scheme);
    const char *name = sig_scheme_name(scheme);

    if (key->type == 0)
        return te_error_set(err, TE_ERR_MECHANISM,
                            "The key '%s' on token '%s' is neither an RSA nor an EC key, so it "
                            "cannot sign with %s.", req->uri_str, tok->label, name);
    if ((alg == SIG_ALG_ECDSA) != (key->type == P11_KEY_EC))
        return te_error_set(err, TE_ERR_MECHANISM,
                            "The key '%s' on token '%s' is an %s key and cannot sign with %s; "
                            "use an %s scheme.", req->uri_str, tok->label,
                            key->type == P11_KEY_EC ? "EC" : "RSA", name,
                            key->type == P11_KEY_EC ? "ECDSA" : "RSA");
    if (!(p11_token_schemes(ctx, tok) & (1u << scheme)))
        return te_error_set(err, TE_ERR_MECHANISM,
                            "Token '%s' does not offer %s (%s) for signing, so the key '%s' "
                            "cannot sign with %s.", tok->label, mech_name(alg), alg_words(alg),
                            req->uri_str, name);
    return te_error_set(err, TE_ERR_MECHANISM,
                        "The key '%s' on token '%s' may not sign with %s: its CKA_SIGN or "
                        "CKA_ALLOWED_MECHANISMS forbid %s, or its modulus is too small for it.",
                        req->uri_str, tok->label, name, mech_name(alg));
}

/* C_SignInit, the context-specific login for CKA_ALWAYS_AUTHENTICATE keys, C_Sign. *dirty is
 * set when an operation may be left active on the session (it is closed then). */
static CK_RV token_sign(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, const struct p11_key *key,
                        CK_MECHANISM *mech, const uint8_t *data, size_t len, const char *pin,
                        uint8_t *raw, CK_ULONG *raw_len, unsigned *logins, bool *dirty)
{
    CK_RV rv = fn->C_SignInit(s, mech, key->handle);

    if (rv != CKR_OK)
        return rv;
    if (key->always_authenticate) {
        (*logins)++;
        rv = fn->C_Login(s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)pin, pin ? strlen(pin) : 0);
        if (rv != CKR_OK) {
            *dirty = true;
            return rv;
        }
    }
    rv = fn->C_Sign(s, (CK_BYTE_PTR)data, len, raw, raw_len);
    if (rv == CKR_BUFFER_TOO_SMALL)
        *dirty = true;
    return rv;
}

/* The token's raw signature in the caller's form: DER for ECDSA, as is for RSA. */
static int finish_signature(const struct p11_request *req, const struct p11_key *key,
                            const uint8_t *raw, size_t raw_len, struct sign_args *a,
                            struct te_error *err)
{
    int ret;

    if (key->type == P11_KEY_EC) {
        if (key->ec_coord_len != 0 && raw_len != 2 * key->ec_coord_len)
            return te_error_set(err, TE_ERR_MALFORMED,
                                "The token returned a %zu-byte ECDSA signature for key '%s'; a "
                                "%s signature has %zu bytes.", raw_len, req->uri_str,
                                key->curve->name, 2 * key->ec_coord_len);
        ret = der_ecdsa_sig_from_raw(raw, raw_len, a->sig, a->cap, a->sig_len);
        if (ret == TE_ERR_MALFORMED)
            return te_error_set(err, ret, "The token returned a malformed %zu-byte ECDSA "
                                "signature for key '%s'.", raw_len, req->uri_str);
        if (ret != TE_OK)
            return te_error_set(err, ret, "The signature buffer (%zu bytes) is too small.",
                                a->cap);
        return TE_OK;
    }
    if (raw_len != key->rsa_len)
        return te_error_set(err, TE_ERR_MALFORMED,
                            "The token returned a %zu-byte RSA signature for key '%s' whose "
                            "modulus has %zu bytes.", raw_len, req->uri_str, key->rsa_len);
    if (a->cap < raw_len)
        return te_error_set(err, TE_ERR_TOO_LARGE,
                            "The signature buffer (%zu bytes) is too small for %zu bytes.",
                            a->cap, raw_len);
    memcpy(a->sig, raw, raw_len);
    *a->sig_len = raw_len;
    return TE_OK;
}

static int sign_once(struct p11_ctx *ctx, const struct p11_request *req, struct p11_token *tok,
                     const struct p11_key *key, void *arg, struct te_error *err)
{
    static const CK_MECHANISM_TYPE hash_mech[] = {CKM_SHA256, CKM_SHA384, CKM_SHA512};
    static const CK_RSA_PKCS_MGF_TYPE hash_mgf[] = {CKG_MGF1_SHA256, CKG_MGF1_SHA384,
                                                    CKG_MGF1_SHA512};
    struct sign_args *a = arg;
    enum sig_alg alg = sig_scheme_alg(a->scheme);
    enum sig_hash hash = sig_scheme_hash(a->scheme);
    CK_RSA_PKCS_PSS_PARAMS pss = {hash_mech[hash], hash_mgf[hash], a->digest_len};
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    uint8_t info[DER_DIGEST_INFO_MAX], raw[P11_SIG_MAX];
    CK_ULONG raw_len = sizeof(raw);
    const uint8_t *data = a->digest;
    size_t len = a->digest_len;
    struct p11_session *s;
    CK_FUNCTION_LIST *fn;
    unsigned logins = 0;
    bool dirty = false;
    CK_RV rv;
    int ret;

    if (!(key->schemes & (1u << a->scheme)))
        return scheme_error(ctx, req, tok, key, a->scheme, err);
    if (key->always_authenticate && req->pin == NULL)
        return te_error_set(err, TE_ERR_PIN_REQUIRED,
                            "The key '%s' on token '%s' needs the PIN for every signature "
                            "(CKA_ALWAYS_AUTHENTICATE), but none was given.", req->uri_str,
                            tok->label);
    if (alg == SIG_ALG_ECDSA) {
        /* TLS 1.2 may pair P-256 with SHA-384: ECDSA uses the leftmost order-length bytes. */
        if (key->ec_coord_len != 0 && len > key->ec_coord_len)
            len = key->ec_coord_len;
    } else if (alg == SIG_ALG_RSA_PKCS1) {
        mech.mechanism = CKM_RSA_PKCS;
        if (der_digest_info(hash, a->digest, a->digest_len, info, sizeof(info), &len) != TE_OK)
            return te_error_set(err, TE_ERR_INTERNAL, "Building the DigestInfo failed.");
        data = info;
    } else {
        mech.mechanism = CKM_RSA_PKCS_PSS;
        mech.pParameter = &pss;
        mech.ulParameterLen = sizeof(pss);
    }
    if ((ret = p11_session_acquire_ready(ctx, tok, key, &s, err)) != TE_OK)
        return ret;
    fn = ctx->fn;
    /* The session is ours alone: sign without the lock so other callers sign meanwhile. */
    pthread_mutex_unlock(&ctx->lock);
    rv = token_sign(fn, s->handle, key, &mech, data, len, req->pin, raw, &raw_len, &logins,
                    &dirty);
    pthread_mutex_lock(&ctx->lock);
    ctx->logins += logins;
    p11_session_release(ctx, tok, s, dirty || p11_rv_session_lost(rv));
    if (rv != CKR_OK)
        return p11_rv_error(err, rv, "Signing with key '%s' on token '%s' failed", req->uri_str,
                            tok->label);
    ret = finish_signature(req, key, raw, raw_len, a, err);
    if (ret == TE_OK) {
        ctx->signatures++;
        ctx->last_success = time(NULL);
    }
    return ret;
}

int p11_sign(struct p11_ctx *ctx, const struct p11_keyref *ref, enum sig_scheme scheme,
             const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t sig_cap,
             size_t *sig_len, struct te_error *err)
{
    struct sign_args a = {scheme, digest, digest_len, sig, sig_cap, sig_len};

    CHECK_ARG(ctx != NULL && digest != NULL && sig != NULL && sig_len != NULL, TE_ERR_INVALID);
    if (!sig_scheme_valid((int)scheme))
        return te_error_set(err, TE_ERR_INVALID, "Unknown signature scheme %d.", (int)scheme);
    if (digest_len != sig_hash_len(sig_scheme_hash(scheme)))
        return te_error_set(err, TE_ERR_INVALID,
                            "The digest has %zu bytes, but %s signs a %zu-byte %s digest.",
                            digest_len, sig_scheme_name(scheme),
                            sig_hash_len(sig_scheme_hash(scheme)),
                            sig_hash_name(sig_scheme_hash(scheme)));
    return p11_run(ctx, ref, true, sign_once, &a, err);
}
