/* Signer front end (see signer.h): opens the backend that the key mode asks for, caches the
 * key's info, and checks every call's arguments once for all backends. */
#include "tedge-cli/key/signer_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"

int signer_open(const struct signer_config *cfg, struct signer **out, struct te_error *err)
{
    struct signer *s;
    int ret;

    CHECK_ARG(cfg != NULL && out != NULL, TE_ERR_INVALID);
    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory opening the device key.");
    s->kind = cfg->kind;
    switch (cfg->kind) {
    case SIGNER_FILE:
        ret = signer_file_open(s, cfg, err);
        break;
    case SIGNER_MODULE:
        ret = signer_module_open(s, cfg, err);
        break;
    case SIGNER_SOCKET:
        ret = signer_socket_open(s, cfg, err);
        break;
    default:
        ret = te_error_set(err, TE_ERR_INVALID, "Unknown key mode %d.", (int)cfg->kind);
        break;
    }
    if (ret != TE_OK) {
        signer_close(s); /* what the backend set up before it failed */
        return ret;
    }
    *out = s;
    return TE_OK;
}

int signer_token_ref_copy(struct signer_token_ref *ref, const struct signer_config *cfg,
                          struct te_error *err)
{
    if ((cfg->key_uri != NULL && (ref->uri = strdup(cfg->key_uri)) == NULL) ||
        (cfg->pin != NULL && (ref->pin = strdup(cfg->pin)) == NULL))
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    return TE_OK;
}

void signer_token_ref_wipe(struct signer_token_ref *ref)
{
    te_free_secret(ref->uri);
    te_free_secret(ref->pin);
    ref->uri = NULL;
    ref->pin = NULL;
}

void signer_close(struct signer *s)
{
    if (s == NULL)
        return;
    if (s->ops != NULL && s->ops->close != NULL)
        s->ops->close(s);
    free(s);
}

const char *signer_describe(const struct signer *s) { return s->desc; }
enum signer_kind signer_get_kind(const struct signer *s) { return s->kind; }

int signer_prepare(struct signer *s, struct te_error *err)
{
    CHECK_ARG(s != NULL, TE_ERR_INVALID);
    return s->ops->prepare != NULL ? s->ops->prepare(s, err) : TE_OK;
}

int signer_key_info(struct signer *s, struct signer_key_info *out, struct te_error *err)
{
    int ret;

    CHECK_ARG(s != NULL && out != NULL, TE_ERR_INVALID);
    if (!s->have_info) {
        if ((ret = s->ops->key_info(s, &s->info, err)) != TE_OK)
            return ret;
        s->have_info = true;
    }
    *out = s->info;
    return TE_OK;
}

int signer_public_key(struct signer *s, uint8_t **der, size_t *der_len, struct te_error *err)
{
    CHECK_ARG(s != NULL && der != NULL && der_len != NULL, TE_ERR_INVALID);
    return s->ops->public_key(s, der, der_len, err);
}

int signer_sign_digest(struct signer *s, enum sig_scheme scheme, const uint8_t *digest,
                       size_t digest_len, uint8_t *sig, size_t sig_cap, size_t *sig_len,
                       struct te_error *err)
{
    CHECK_ARG(s != NULL && digest != NULL && sig != NULL && sig_len != NULL, TE_ERR_INVALID);
    if (!sig_scheme_valid((int)scheme))
        return te_error_set(err, TE_ERR_INVALID, "Unknown signature scheme %d.", (int)scheme);
    if (digest_len != sig_hash_len(sig_scheme_hash(scheme)))
        return te_error_set(err, TE_ERR_INVALID,
                            "A %s digest is %zu bytes long, not %zu.",
                            sig_hash_name(sig_scheme_hash(scheme)),
                            sig_hash_len(sig_scheme_hash(scheme)), digest_len);
    return s->ops->sign(s, scheme, digest, digest_len, sig, sig_cap, sig_len, err);
}

int signer_default_scheme(struct signer *s, enum sig_hash hash, enum sig_scheme *out,
                          struct te_error *err)
{
    struct signer_key_info info;
    int ret;

    if ((ret = signer_key_info(s, &info, err)) != TE_OK)
        return ret;
    *out = sig_scheme_make(info.type == P11_KEY_EC ? SIG_ALG_ECDSA : SIG_ALG_RSA_PKCS1, hash);
    return TE_OK;
}
