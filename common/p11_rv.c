/* PKCS#11 return values: their CKR_* names, plain-words explanations, and the mapping to
 * te_error codes with whether a retry can help. */
#include "common/p11_internal.h"

#include <stdarg.h>
#include <stdio.h>

/* X(value, te_err code, retryable, plain words) */
#define P11_RV_LIST(X)                                                                       \
    X(CKR_OK, TE_OK, false, "success")                                                       \
    X(CKR_CANCEL, TE_ERR_PKCS11, false, "the operation was cancelled")                       \
    X(CKR_HOST_MEMORY, TE_ERR_NOMEM, true, "the PKCS#11 module ran out of memory")           \
    X(CKR_SLOT_ID_INVALID, TE_ERR_NO_TOKEN, true, "the slot no longer exists")               \
    X(CKR_GENERAL_ERROR, TE_ERR_PKCS11, false, "the PKCS#11 module reported a general error") \
    X(CKR_FUNCTION_FAILED, TE_ERR_PKCS11, true, "the token could not perform the function")  \
    X(CKR_ARGUMENTS_BAD, TE_ERR_PKCS11, false, "the module rejected the arguments")          \
    X(CKR_ATTRIBUTE_SENSITIVE, TE_ERR_PKCS11, false, "the attribute is sensitive")           \
    X(CKR_ATTRIBUTE_TYPE_INVALID, TE_ERR_PKCS11, false, "the object has no such attribute")  \
    X(CKR_DATA_INVALID, TE_ERR_MECHANISM, false, "the token rejected the data to sign")      \
    X(CKR_DATA_LEN_RANGE, TE_ERR_MECHANISM, false,                                           \
      "the data to sign has a length the key cannot sign")                                   \
    X(CKR_DEVICE_ERROR, TE_ERR_PKCS11, true, "the device reported an error")                 \
    X(CKR_DEVICE_MEMORY, TE_ERR_PKCS11, true, "the device ran out of memory")                \
    X(CKR_DEVICE_REMOVED, TE_ERR_NO_TOKEN, true, "the device was removed")                   \
    X(CKR_FUNCTION_CANCELED, TE_ERR_PKCS11, true, "the function was cancelled")              \
    X(CKR_FUNCTION_NOT_SUPPORTED, TE_ERR_UNSUPPORTED, false,                                 \
      "the module does not support this function")                                           \
    X(CKR_KEY_HANDLE_INVALID, TE_ERR_PKCS11, true, "the key handle is no longer valid")      \
    X(CKR_KEY_SIZE_RANGE, TE_ERR_MECHANISM, false, "the token cannot use a key of this size") \
    X(CKR_KEY_TYPE_INCONSISTENT, TE_ERR_MECHANISM, false,                                    \
      "the key type does not fit the mechanism")                                             \
    X(CKR_KEY_FUNCTION_NOT_PERMITTED, TE_ERR_MECHANISM, false, "the key is not allowed to sign") \
    X(CKR_MECHANISM_INVALID, TE_ERR_MECHANISM, false,                                        \
      "the token does not offer this mechanism for the key")                                 \
    X(CKR_MECHANISM_PARAM_INVALID, TE_ERR_MECHANISM, false,                                  \
      "the token rejected the mechanism parameters")                                         \
    X(CKR_OBJECT_HANDLE_INVALID, TE_ERR_PKCS11, true, "the object handle is no longer valid") \
    X(CKR_OPERATION_ACTIVE, TE_ERR_PKCS11, true, "another operation is active on the session") \
    X(CKR_OPERATION_NOT_INITIALIZED, TE_ERR_PKCS11, true,                                    \
      "no operation was started on the session")                                             \
    X(CKR_PIN_INCORRECT, TE_ERR_PIN_INCORRECT, false, "the PIN is incorrect")                \
    X(CKR_PIN_INVALID, TE_ERR_PIN_INCORRECT, false,                                          \
      "the PIN contains characters the token does not accept")                               \
    X(CKR_PIN_LEN_RANGE, TE_ERR_PIN_INCORRECT, false,                                        \
      "the PIN is too long or too short for the token")                                      \
    X(CKR_PIN_EXPIRED, TE_ERR_PIN_INCORRECT, false, "the PIN has expired: set a new one")    \
    X(CKR_PIN_LOCKED, TE_ERR_PIN_LOCKED, false, "the PIN is locked: unlock it with the SO PIN") \
    X(CKR_SESSION_CLOSED, TE_ERR_PKCS11, true, "the session was closed")                     \
    X(CKR_SESSION_COUNT, TE_ERR_BUSY, true, "the token has no free session")                 \
    X(CKR_SESSION_HANDLE_INVALID, TE_ERR_PKCS11, true, "the session is no longer valid")     \
    X(CKR_SESSION_PARALLEL_NOT_SUPPORTED, TE_ERR_PKCS11, false,                              \
      "the module needs serial sessions")                                                    \
    X(CKR_SESSION_READ_ONLY, TE_ERR_PKCS11, false, "the session is read-only")               \
    X(CKR_TOKEN_NOT_PRESENT, TE_ERR_NO_TOKEN, true, "the token is not present")              \
    X(CKR_TOKEN_NOT_RECOGNIZED, TE_ERR_NO_TOKEN, false, "the token was not recognized")      \
    X(CKR_USER_ALREADY_LOGGED_IN, TE_OK, false, "the user is already logged in")             \
    X(CKR_USER_NOT_LOGGED_IN, TE_ERR_PKCS11, true, "the token is not logged in")             \
    X(CKR_USER_PIN_NOT_INITIALIZED, TE_ERR_PKCS11, false,                                    \
      "the token's user PIN is not initialized")                                             \
    X(CKR_USER_TYPE_INVALID, TE_ERR_PKCS11, false, "the module rejected the user type")      \
    X(CKR_USER_ANOTHER_ALREADY_LOGGED_IN, TE_ERR_PKCS11, false, "another user is logged in") \
    X(CKR_USER_TOO_MANY_TYPES, TE_ERR_PKCS11, false, "too many users are logged in")         \
    X(CKR_RANDOM_NO_RNG, TE_ERR_PKCS11, false, "the token has no random number generator")  \
    X(CKR_DOMAIN_PARAMS_INVALID, TE_ERR_MECHANISM, false,                                    \
      "the token does not support the key's parameters")                                     \
    X(CKR_CURVE_NOT_SUPPORTED, TE_ERR_MECHANISM, false,                                      \
      "the token does not support the key's curve")                                          \
    X(CKR_BUFFER_TOO_SMALL, TE_ERR_PKCS11, false, "the result did not fit the buffer")       \
    X(CKR_CRYPTOKI_NOT_INITIALIZED, TE_ERR_PKCS11, true, "the module is not initialized")   \
    X(CKR_CRYPTOKI_ALREADY_INITIALIZED, TE_ERR_PKCS11, false,                                \
      "the module was already initialized")                                                  \
    X(CKR_CANT_LOCK, TE_ERR_PKCS11, false, "the module cannot use the operating system's locking") \
    X(CKR_FUNCTION_REJECTED, TE_ERR_PKCS11, false, "the function was rejected")

struct rv_entry {
    CK_RV rv;
    const char *name;
    int code;
    bool retryable;
    const char *words;
};

static const struct rv_entry rv_table[] = {
#define P11_RV_ROW(v, code, retry, words) {v, #v, code, retry, words},
    P11_RV_LIST(P11_RV_ROW)
#undef P11_RV_ROW
};

static const struct rv_entry *rv_lookup(CK_RV rv)
{
    for (size_t i = 0; i < sizeof(rv_table) / sizeof(rv_table[0]); i++)
        if (rv_table[i].rv == rv)
            return &rv_table[i];
    return NULL;
}

const char *p11_rv_name(unsigned long rv)
{
    const struct rv_entry *e = rv_lookup(rv);
    if (e != NULL)
        return e->name;
    return rv >= CKR_VENDOR_DEFINED ? "CKR_VENDOR_DEFINED" : "CKR_UNKNOWN";
}

int p11_rv_code(CK_RV rv, bool *retryable)
{
    const struct rv_entry *e = rv_lookup(rv);
    if (retryable != NULL)
        *retryable = e != NULL && e->retryable;
    return e != NULL ? e->code : TE_ERR_PKCS11;
}

int p11_rv_error(struct te_error *err, CK_RV rv, const char *fmt, ...)
{
    const struct rv_entry *e = rv_lookup(rv);
    char context[TE_ERROR_MSG_MAX];
    bool retryable = false;
    int code = p11_rv_code(rv, &retryable);
    va_list ap;

    if (code == TE_OK)
        code = TE_ERR_PKCS11; /* only called for failures */
    va_start(ap, fmt);
    vsnprintf(context, sizeof(context), fmt, ap);
    va_end(ap);
    if (e != NULL)
        return te_error_set_ckr(err, code, rv, retryable, "%s: %s (%s).", context, e->words,
                                e->name);
    return te_error_set_ckr(err, code, rv, retryable, "%s: the module returned error 0x%lx.",
                            context, (unsigned long)rv);
}
