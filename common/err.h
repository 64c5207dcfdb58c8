/* Project-wide error codes (0 or negative) and the structured error that carries a code,
 * a human message, the PKCS#11 CKR_* value where there is one, and whether a retry can help. */
#ifndef TEDGE_COMMON_ERR_H
#define TEDGE_COMMON_ERR_H

#include <stdbool.h>
#include <stddef.h>

/* X(name, value, stable machine-readable code, short description).
 * The stable codes are part of the wire protocol (proto/PROTOCOL.md): never rename one. */
#define TE_ERR_LIST(X)                                                                   \
    X(TE_OK,                 0, "ok",                 "success")                          \
    X(TE_ERR_NOMEM,         -1, "no_memory",          "out of memory")                    \
    X(TE_ERR_INVALID,       -2, "invalid_argument",   "invalid argument")                 \
    X(TE_ERR_IO,            -3, "io_error",           "input/output error")               \
    X(TE_ERR_MALFORMED,     -4, "malformed",          "malformed input")                  \
    X(TE_ERR_TOO_LARGE,     -5, "too_large",          "input exceeds the size limit")     \
    X(TE_ERR_NOT_FOUND,     -6, "not_found",          "not found")                        \
    X(TE_ERR_UNSUPPORTED,   -7, "unsupported",        "not supported")                    \
    X(TE_ERR_CONFIG,        -8, "config_error",       "configuration error")              \
    X(TE_ERR_TIMEOUT,       -9, "timeout",            "timed out")                        \
    X(TE_ERR_CONNECT,      -10, "connect_failed",     "connection failed")                \
    X(TE_ERR_PROTOCOL,     -11, "protocol_error",     "protocol error")                   \
    X(TE_ERR_BUSY,         -12, "busy",               "too many clients, try again later")\
    X(TE_ERR_PERMISSION,   -13, "permission_denied",  "permission denied")                \
    X(TE_ERR_PKCS11,       -14, "pkcs11_error",       "PKCS#11 error")                    \
    X(TE_ERR_NO_TOKEN,     -15, "token_not_found",    "no matching token")                \
    X(TE_ERR_NO_KEY,       -16, "key_not_found",      "no matching key")                  \
    X(TE_ERR_PIN_REQUIRED, -17, "pin_required",       "the token needs a PIN")            \
    X(TE_ERR_PIN_INCORRECT,-18, "pin_incorrect",      "the PIN is incorrect")             \
    X(TE_ERR_PIN_LOCKED,   -19, "pin_locked",         "the PIN is locked")                \
    X(TE_ERR_URI,          -20, "invalid_uri",        "invalid PKCS#11 URI")              \
    X(TE_ERR_MECHANISM,    -21, "mechanism_unsupported", "the key cannot sign with this scheme") \
    X(TE_ERR_TLS,          -22, "tls_error",          "TLS error")                        \
    X(TE_ERR_CLOSED,       -23, "connection_closed",  "connection closed by peer")        \
    X(TE_ERR_EXISTS,       -24, "already_exists",     "already exists")                   \
    X(TE_ERR_INTERNAL,     -25, "internal_error",     "internal error")

enum te_err {
#define TE_ERR_ENUM(name, value, code, desc) name = value,
    TE_ERR_LIST(TE_ERR_ENUM)
#undef TE_ERR_ENUM
};

/* Short description of an error code ("out of memory"); never NULL. */
const char *te_strerror(int err);
/* Stable machine-readable name of an error code ("no_memory"); never NULL. */
const char *te_errcode(int err);
/* Error code for a stable name, or TE_ERR_INTERNAL when the name is unknown. */
int te_err_from_code(const char *code);

#define TE_ERROR_MSG_MAX 512

/* A structured error. Fill it with te_error_set(); a zeroed struct means "no error". */
struct te_error {
    int code;                       /* enum te_err */
    unsigned long ckr;              /* PKCS#11 return value when has_ckr */
    bool has_ckr;
    bool retryable;                 /* whether trying again later may succeed */
    char msg[TE_ERROR_MSG_MAX];     /* complete sentence for a human; never a secret */
};

/* Sets err (when not NULL) and returns code, so that `return te_error_set(...)` works. */
int te_error_set(struct te_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, and records a PKCS#11 return value. */
int te_error_set_ckr(struct te_error *err, int code, unsigned long ckr, bool retryable,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void te_error_clear(struct te_error *err);
/* err->msg, or the code's description when no message was set. */
const char *te_error_message(const struct te_error *err);

#endif
