/* PKCS#11 core: the one place that talks to a token. Loads a module through p11-kit,
 * selects tokens and keys by RFC 7512 URI, logs in, signs digests and recovers from errors.
 * Used by tedge-p11-server (socket mode) and in-process by the CLI and bridge (module mode). */
#ifndef TEDGE_COMMON_P11_H
#define TEDGE_COMMON_P11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"
#include "common/sigscheme.h"

#define P11_URI_MAX 1024       /* longest URI we produce or accept */
#define P11_LABEL_MAX 129      /* CKA_LABEL we report, NUL-terminated */
#define P11_ID_MAX 64          /* CKA_ID bytes we report */
#define P11_SIG_MAX 1024       /* RSA 4096 = 512 bytes, P-521 DER <= 141 bytes; RSA 8192 fits */
#define P11_RELOAD_INTERVAL_S 30 /* default minimum seconds between module reloads */
#define P11_PIN_COOLDOWN_MS 30000 /* default: after a refused PIN, no untried PIN for 30 s */

struct p11_ctx;

struct p11_config {
    const char *module_path;     /* required: the PKCS#11 module (.so) */
    const char *scope_uri;       /* optional base URI (daemon --uri, device.cryptoki.uri);
                                    its attributes win over a request's */
    const char *default_pin;     /* optional configured PIN; copied, wiped on close */
    unsigned reload_interval_s;  /* minimum seconds between module reloads; 0 = default */
    unsigned max_sessions;       /* size of the logged-in session pool; 0 = default (8) */
    unsigned pin_cooldown_ms;    /* after a token refused a PIN, PINs that never worked are
                                    refused (busy) for this long; 0 = P11_PIN_COOLDOWN_MS */
    bool requests_from_peers;    /* tedge-p11-server: requests come from other processes, so
                                    a request URI's pin-source is refused (the daemon would
                                    open any path for any client; only scope_uri may name a PIN
                                    file), and a request's PIN that never worked here is held
                                    back by the cooldown and while the token counts wrong PINs.
                                    Off (module mode): every PIN is the operator's own
                                    configuration and is tried once, unless the token is at its
                                    final try (docs/pkcs11.md) */
    const char *default_pin_name; /* how messages name default_pin ("the PIN configured for
                                    ..."); NULL: "the configured PIN (device.cryptoki.pin)".
                                    When set, a refusal of that PIN is also logged as an
                                    error: a service's operator reads the log, not the reply */
};

/* Loads and initializes the module (OS locking). Tokens and keys are looked up lazily, so a
 * token that appears later is found without a restart. Every function below is thread-safe
 * (concurrent callers sign on separate sessions); only p11_close must run alone.
 * Key selection, PIN and recovery rules: docs/pkcs11.md. */
int p11_open(const struct p11_config *cfg, struct p11_ctx **out, struct te_error *err);
/* Closes sessions, finalizes and releases the module, wipes PINs. NULL is a no-op. */
void p11_close(struct p11_ctx *ctx);

/* Which key, and with what PIN. PIN precedence: URI pin-value (or pin-source) > pin > the
 * configured default_pin. The scope URI's attributes win over uri's. An empty PIN is refused
 * (invalid_argument) before any login; the rules that keep wrong PINs from locking the token
 * (refused-PIN memory, cooldown, the token's counter flags) are in docs/pkcs11.md. */
struct p11_keyref {
    const char *uri;             /* may be NULL or "pkcs11:" (the scope alone) */
    const char *pin;             /* may be NULL */
};

struct p11_token_info {
    unsigned long slot_id;
    char label[33];
    char serial[17];
    char manufacturer[33];
    char model[17];
    unsigned long flags;         /* CK_TOKEN_INFO.flags */
    bool login_required;
    bool pin_count_low;
    bool pin_final_try;
    bool pin_locked;
    char uri[P11_URI_MAX];       /* pkcs11:model=...;manufacturer=...;serial=...;token=... */
};

enum p11_key_type { P11_KEY_RSA = 1, P11_KEY_EC = 2 };
enum p11_curve { P11_CURVE_NONE = 0, P11_CURVE_P256, P11_CURVE_P384, P11_CURVE_P521 };

struct p11_key_info {
    enum p11_key_type type;
    unsigned bits;               /* RSA modulus bits, or the EC curve's field size */
    enum p11_curve curve;
    char label[P11_LABEL_MAX];
    uint8_t id[P11_ID_MAX];
    size_t id_len;
    char token_label[33];
    bool always_authenticate;
    unsigned schemes;            /* bit (1u << enum sig_scheme) for each scheme that works
                                    for this key on this token (mechanism list checked) */
    char uri[P11_URI_MAX];       /* a URI that selects exactly this private key */
};

/* Every initialized token (uninitialized slots are skipped). *out is malloc'd; free() it. */
int p11_list_tokens(struct p11_ctx *ctx, struct p11_token_info **out, size_t *count,
                    struct te_error *err);

/* Every private key that the (merged) URI matches on the first matching token (none is not
 * an error: *count = 0). *out is malloc'd; free() it. */
int p11_list_keys(struct p11_ctx *ctx, const struct p11_keyref *ref, struct p11_key_info **out,
                  size_t *count, struct te_error *err);

/* The key that the URI selects: the first matching private key on the first matching token
 * (logs the "Multiple keys were found..." warning when more than one matches). */
int p11_key_info(struct p11_ctx *ctx, const struct p11_keyref *ref, struct p11_key_info *out,
                 struct te_error *err);

/* The selected key's public key as a DER SubjectPublicKeyInfo (malloc'd; free() it). Taken
 * from the public key object, else from the private key's public attributes. */
int p11_public_key(struct p11_ctx *ctx, const struct p11_keyref *ref, uint8_t **der,
                   size_t *der_len, struct te_error *err);

/* Signs a digest that the caller computed with the scheme's hash. ECDSA signatures are
 * returned DER-encoded (ECDSA-Sig-Value), RSA signatures raw (modulus length).
 * TE_ERR_INVALID when digest_len is not the scheme's hash length; TE_ERR_MECHANISM when the
 * key cannot sign with the scheme (wrong key type, mechanism not offered by the token, or
 * forbidden by the key's CKA_ALLOWED_MECHANISMS). An ECDSA digest longer than the curve's
 * order is truncated to the order length first (P-256 with SHA-384 happens in TLS 1.2). */
int p11_sign(struct p11_ctx *ctx, const struct p11_keyref *ref, enum sig_scheme scheme,
             const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t sig_cap,
             size_t *sig_len, struct te_error *err);

struct p11_status {
    bool token_present;          /* a token matching the scope is present now */
    char token_label[33];
    time_t last_success;         /* wall clock of the last good signature; 0 = never */
    uint64_t signatures;         /* successful signatures */
    uint64_t errors;             /* failed operations */
    uint64_t logins;             /* C_Login calls made */
    uint64_t reloads;            /* module reloads */
    char module_path[512];
};

int p11_get_status(struct p11_ctx *ctx, struct p11_status *out);

/* "CKR_PIN_INCORRECT" for a PKCS#11 return value (te_error.ckr); never NULL. */
const char *p11_rv_name(unsigned long rv);

/* Copies uri into out without its pin-value query attribute, so that it can be shown or logged.
 * Works on any string, valid URI or not. */
void p11_uri_redact(const char *uri, char *out, size_t size);

#endif
