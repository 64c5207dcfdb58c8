/* The signer: the one interface the CLI and the bridge use for "the device key", backed by
 * a key file (mode off), the PKCS#11 module in-process (module) or tedge-p11-server (socket). */
#ifndef TEDGE_CLI_SIGNER_H
#define TEDGE_CLI_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/p11.h"
#include "common/sigscheme.h"

enum signer_kind { SIGNER_FILE = 0, SIGNER_MODULE, SIGNER_SOCKET };

struct signer_config {
    enum signer_kind kind;
    const char *key_path;      /* FILE: PEM or DER private key, RSA or EC, unencrypted */
    const char *module_path;   /* MODULE: the PKCS#11 module */
    const char *scope_uri;     /* MODULE: device.cryptoki.uri, its attributes win */
    const char *key_uri;       /* MODULE, SOCKET: the key's URI; NULL = the scope alone */
    const char *pin;           /* MODULE, SOCKET: the key's PIN (device.key_pin); may be NULL */
    const char *default_pin;   /* MODULE: the module's default PIN (device.cryptoki.pin) */
    const char *socket_path;   /* SOCKET: tedge-p11-server's socket */
    int timeout_ms;            /* SOCKET: per request; 0 = default */
};

struct signer_key_info {
    enum p11_key_type type;
    unsigned bits;             /* RSA modulus bits or EC field bits */
    enum p11_curve curve;      /* P11_CURVE_NONE for RSA */
    unsigned schemes;          /* bit (1u << enum sig_scheme) per usable scheme */
};

struct signer;

/* Opens the key. A file key is parsed now; a token key is looked up on first use. */
int signer_open(const struct signer_config *cfg, struct signer **out, struct te_error *err);
void signer_close(struct signer *s);

/* "key file '/etc/tedge/...'" or "PKCS#11 key 'pkcs11:...'" for messages (no PIN). */
const char *signer_describe(const struct signer *s);
enum signer_kind signer_get_kind(const struct signer *s);

/* Gets the key ready for a signature that must not wait, e.g. right before a TLS handshake:
 * a no-op for a key file or a module key; for tedge-p11-server a ping, which wakes a
 * socket-activated daemon and, when the daemon restarted since the last request, reconnects now
 * instead of in the middle of the handshake. Fails with the signer's own error (for example
 * "Failed to connect to tedge-p11-server UNIX socket at ..."). */
int signer_prepare(struct signer *s, struct te_error *err);

/* Key type, size and usable schemes (cached after the first call). */
int signer_key_info(struct signer *s, struct signer_key_info *out, struct te_error *err);
/* The public key as DER SubjectPublicKeyInfo; *der is malloc'd. */
int signer_public_key(struct signer *s, uint8_t **der, size_t *der_len, struct te_error *err);
/* Signs a digest computed with the scheme's hash. ECDSA signatures are DER, RSA raw. */
int signer_sign_digest(struct signer *s, enum sig_scheme scheme, const uint8_t *digest,
                       size_t digest_len, uint8_t *sig, size_t sig_cap, size_t *sig_len,
                       struct te_error *err);
/* The scheme for this key and hash: ECDSA for EC keys, PKCS#1 v1.5 for RSA keys. */
int signer_default_scheme(struct signer *s, enum sig_hash hash, enum sig_scheme *out,
                          struct te_error *err);

#endif
