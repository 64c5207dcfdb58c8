/* Backend table behind the signer (signer.c dispatches, signer_<backend>.c implement).
 * Only the signer's own files include this. */
#ifndef TEDGE_CLI_SIGNER_INTERNAL_H
#define TEDGE_CLI_SIGNER_INTERNAL_H

#include "tedge-cli/key/signer.h"

struct signer_ops {
    int (*key_info)(struct signer *s, struct signer_key_info *out, struct te_error *err);
    int (*public_key)(struct signer *s, uint8_t **der, size_t *der_len, struct te_error *err);
    int (*sign)(struct signer *s, enum sig_scheme scheme, const uint8_t *digest, size_t len,
                uint8_t *sig, size_t cap, size_t *sig_len, struct te_error *err);
    void (*close)(struct signer *s);
    int (*prepare)(struct signer *s, struct te_error *err); /* NULL: nothing to do */
};

#define SIGNER_DESC_MAX 1200 /* "PKCS#11 key '<uri up to P11_URI_MAX>'" */

struct signer {
    enum signer_kind kind;
    const struct signer_ops *ops;
    void *backend;
    char desc[SIGNER_DESC_MAX];
    bool have_info;
    struct signer_key_info info;
};

/* A backend's open sets s->backend and s->ops as soon as it allocated its state; when it then
 * fails, signer_open calls ops->close on what is there (so close must take partial state). */
int signer_file_open(struct signer *s, const struct signer_config *cfg, struct te_error *err);
int signer_module_open(struct signer *s, const struct signer_config *cfg, struct te_error *err);
int signer_socket_open(struct signer *s, const struct signer_config *cfg, struct te_error *err);

/* A token key as the module and socket backends keep it: their own copies of the key URI
 * (which may hold pin-value) and PIN, wiped when the signer closes. */
struct signer_token_ref {
    char *uri;
    char *pin;
};

/* Copies cfg->key_uri and cfg->pin (either may be NULL) into ref. */
int signer_token_ref_copy(struct signer_token_ref *ref, const struct signer_config *cfg,
                          struct te_error *err);
/* Wipes and frees both copies. */
void signer_token_ref_wipe(struct signer_token_ref *ref);

#endif
