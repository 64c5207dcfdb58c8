/* Module backend of the signer (mode module): the PKCS#11 module loaded in-process through
 * the common/ PKCS#11 core, the same code the daemon runs. */
#include "tedge-cli/key/signer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

struct module_key {
    struct p11_ctx *ctx;
    struct signer_token_ref ref;
};

static struct p11_keyref keyref(const struct module_key *k)
{
    struct p11_keyref ref = {.uri = k->ref.uri, .pin = k->ref.pin};
    return ref;
}

static int module_key_info(struct signer *s, struct signer_key_info *out, struct te_error *err)
{
    struct module_key *k = s->backend;
    struct p11_keyref ref = keyref(k);
    struct p11_key_info info;
    int ret;

    if ((ret = p11_key_info(k->ctx, &ref, &info, err)) != TE_OK)
        return ret;
    memset(out, 0, sizeof(*out));
    out->type = info.type;
    out->bits = info.bits;
    out->curve = info.curve;
    out->schemes = info.schemes;
    return TE_OK;
}

static int module_public_key(struct signer *s, uint8_t **der, size_t *der_len,
                             struct te_error *err)
{
    struct module_key *k = s->backend;
    struct p11_keyref ref = keyref(k);
    return p11_public_key(k->ctx, &ref, der, der_len, err);
}

static int module_sign(struct signer *s, enum sig_scheme scheme, const uint8_t *digest,
                       size_t len, uint8_t *sig, size_t cap, size_t *sig_len,
                       struct te_error *err)
{
    struct module_key *k = s->backend;
    struct p11_keyref ref = keyref(k);
    return p11_sign(k->ctx, &ref, scheme, digest, len, sig, cap, sig_len, err);
}

static void module_close(struct signer *s)
{
    struct module_key *k = s->backend;
    if (k == NULL)
        return;
    p11_close(k->ctx);
    signer_token_ref_wipe(&k->ref);
    free(k);
}

static const struct signer_ops module_ops = {
    .key_info = module_key_info,
    .public_key = module_public_key,
    .sign = module_sign,
    .close = module_close,
};

int signer_module_open(struct signer *s, const struct signer_config *cfg, struct te_error *err)
{
    struct module_key *k;
    struct p11_config pc = {0};
    char redacted[P11_URI_MAX];
    int ret;

    if (cfg->module_path == NULL || cfg->module_path[0] == '\0')
        return te_error_set(err, TE_ERR_CONFIG,
                            "device.cryptoki.mode is 'module' but no PKCS#11 module is configured: "
                            "set device.cryptoki.module_path.");
    p11_uri_redact(cfg->key_uri ? cfg->key_uri : (cfg->scope_uri ? cfg->scope_uri : "pkcs11:"),
                      redacted, sizeof(redacted));
    snprintf(s->desc, sizeof(s->desc), "PKCS#11 key '%s'", redacted);
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    s->backend = k;
    s->ops = &module_ops;
    if ((ret = signer_token_ref_copy(&k->ref, cfg, err)) != TE_OK)
        return ret;
    pc.module_path = cfg->module_path;
    pc.scope_uri = cfg->scope_uri;
    pc.default_pin = cfg->default_pin;
    return p11_open(&pc, &k->ctx, err);
}
