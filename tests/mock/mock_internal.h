/* Internals of the mock PKCS#11 module shared by its files: the one global state (guarded by
 * one mutex), its configuration from MOCK_P11_* variables, call counters, objects and keys. */
#ifndef TEDGE_MOCK_INTERNAL_H
#define TEDGE_MOCK_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#define MOCK_SLOT_ID 7            /* not 0, to catch code that assumes the first slot id */
#define MOCK_MAX_SESSIONS 64      /* ulMaxSessionCount; CKR_SESSION_COUNT beyond */
#define MOCK_MAX_OBJECTS 8        /* EC pair, RSA pair, a second EC pair */
#define MOCK_MAX_ATTRS 16         /* attributes per object */
#define MOCK_PIN_MAX 64           /* longest PIN we accept in MOCK_P11_PIN */
#define MOCK_PIN_LOCK_AFTER 3     /* consecutive wrong PINs that lock the user PIN */
#define MOCK_PATH_MAX 512         /* MOCK_P11_STATS_FILE */
#define MOCK_HANDLE_STEP 1000     /* object handles move by this much on a "handle invalid" fault */

/* Every entry point, for the call counters and the stats file. */
#define MOCK_FN_LIST(X)                                                                     \
    X(C_Initialize) X(C_Finalize) X(C_GetInfo) X(C_GetSlotList) X(C_GetSlotInfo)             \
    X(C_GetTokenInfo) X(C_GetMechanismList) X(C_GetMechanismInfo) X(C_OpenSession)           \
    X(C_CloseSession) X(C_CloseAllSessions) X(C_GetSessionInfo) X(C_Login) X(C_Logout)       \
    X(C_GetAttributeValue) X(C_FindObjectsInit) X(C_FindObjects) X(C_FindObjectsFinal)       \
    X(C_SignInit) X(C_Sign) X(C_Unsupported)

enum mock_fn {
#define MOCK_FN_ENUM(name) MOCK_##name,
    MOCK_FN_LIST(MOCK_FN_ENUM)
#undef MOCK_FN_ENUM
    MOCK_FN_COUNT
};

struct mock_config {
    char pin[MOCK_PIN_MAX + 1];   /* MOCK_P11_PIN, default "1234" */
    unsigned long fail_after;     /* MOCK_P11_FAIL_SIGN_AFTER: 1-based call number, 0 = off */
    unsigned long fail_times;     /* MOCK_P11_FAIL_TIMES: consecutive failures, default 1 */
    CK_RV fail_rv;                /* MOCK_P11_FAIL_RV */
    enum mock_fn fail_fn;         /* MOCK_P11_FAIL_FN: C_Sign (default) or C_SignInit */
    unsigned sign_delay_ms;       /* MOCK_P11_SIGN_DELAY_MS */
    bool no_token;                /* MOCK_P11_NO_TOKEN */
    bool no_login;                /* MOCK_P11_NO_LOGIN: token without CKF_LOGIN_REQUIRED */
    bool always_auth;             /* MOCK_P11_ALWAYS_AUTH: EC key has CKA_ALWAYS_AUTHENTICATE */
    bool no_public;               /* MOCK_P11_NO_PUBLIC: no public objects; EC_POINT on private */
    bool dup_label;               /* MOCK_P11_DUP_LABEL: a second EC key labelled "mock-ec" */
    bool no_pss;                  /* MOCK_P11_NO_PSS: CKM_RSA_PKCS_PSS not in the mechanism list */
    bool rsa_pkcs_only;           /* MOCK_P11_RSA_ALLOWED=CKM_RSA_PKCS: CKA_ALLOWED_MECHANISMS */
    char stats_file[MOCK_PATH_MAX]; /* MOCK_P11_STATS_FILE */
    unsigned pin_failures;        /* MOCK_P11_PIN_FAILURES: wrong PINs counted at C_Initialize */
};

struct mock_attr {
    CK_ATTRIBUTE_TYPE type;
    uint8_t *value;
    size_t len;
};

enum mock_key_kind { MOCK_KEY_EC = 1, MOCK_KEY_EC2, MOCK_KEY_RSA };

struct mock_object {
    bool used;
    bool is_private;              /* CKA_PRIVATE: invisible until C_Login */
    CK_OBJECT_CLASS cls;
    enum mock_key_kind kind;
    bool always_auth;
    struct mock_attr attrs[MOCK_MAX_ATTRS];
    size_t nattrs;
};

struct mock_session {
    CK_SESSION_HANDLE handle;     /* 0 = free entry */
    CK_FLAGS flags;
    bool in_use;                  /* a C_Sign is running on it (conflict detection) */
    /* sign operation */
    bool sign_active;
    CK_MECHANISM_TYPE mech;
    CK_MECHANISM_TYPE pss_hash;
    unsigned long pss_salt;
    size_t key_index;
    bool context_login;           /* CKU_CONTEXT_SPECIFIC done for this operation */
    /* find operation */
    bool find_active;
    size_t found[MOCK_MAX_OBJECTS];
    size_t nfound, findpos;
};

struct mock_state {
    pthread_mutex_t lock;
    bool initialized;
    struct mock_config cfg;
    bool logged_in;
    unsigned pin_failures;
    CK_OBJECT_HANDLE handle_base;
    CK_SESSION_HANDLE next_session;
    struct mock_object objects[MOCK_MAX_OBJECTS];
    struct mock_session sessions[MOCK_MAX_SESSIONS];
    /* counters: cumulative for the process, across C_Finalize/C_Initialize */
    unsigned long calls[MOCK_FN_COUNT];
    /* fault injection: calls of the failing function since the fault was armed */
    unsigned long sign_attempts, signinit_attempts;
    unsigned long fault_base;     /* the count when the current setting was first seen */
    unsigned long faults_left;
    unsigned long armed_after, armed_times;
    CK_RV armed_rv;
    enum mock_fn armed_fn;
    unsigned long login_user, login_context, login_failed;
    unsigned long concurrent_signs, max_concurrent_signs, session_conflicts;
    unsigned long init_os_locking, last_sign_len;
};

extern struct mock_state mock;

/* Leaves an entry point: refreshes the stats file and drops the lock. */
#define MOCK_RETURN(rv)                                                                      \
    do {                                                                                     \
        CK_RV rv_ = (rv);                                                                    \
        mock_write_stats();                                                                  \
        mock_unlock();                                                                       \
        return rv_;                                                                          \
    } while (0)

/* Enters an entry point: takes the lock, counts the call, checks initialization. */
#define MOCK_ENTER(fn)                                                                       \
    do {                                                                                     \
        mock_lock();                                                                         \
        mock_count(MOCK_##fn);                                                               \
        if (!mock.initialized)                                                               \
            MOCK_RETURN(CKR_CRYPTOKI_NOT_INITIALIZED);                                       \
    } while (0)

/* mock_pkcs11.c */
struct mock_session *mock_session_get(CK_SESSION_HANDLE h);
size_t mock_session_count(void);
/* Closing the application's last session ends its login. */
void mock_session_close(struct mock_session *s);
void mock_sessions_close_all(void);

/* mock_sign.c */
void mock_arm_fault(void);
CK_RV mock_C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key);
CK_RV mock_C_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                  CK_ULONG_PTR sig_len);

/* mock_state.c */
void mock_lock(void);
void mock_unlock(void);
void mock_count(enum mock_fn fn);           /* with the lock held */
void mock_write_stats(void);                /* with the lock held */
void mock_read_config(struct mock_config *cfg);
int mock_random(void *ctx, unsigned char *out, size_t len);
CK_RV mock_rv_from_name(const char *name);

/* mock_keys.c */
CK_RV mock_keys_init(void);                 /* builds the objects; with the lock held */
void mock_keys_free(void);
struct mock_object *mock_object_at(size_t i);
/* The index of a visible object for a handle, or -1. */
long mock_object_index(CK_OBJECT_HANDLE h);
CK_OBJECT_HANDLE mock_object_handle(size_t i);
bool mock_object_visible(const struct mock_object *o);
const struct mock_attr *mock_object_attr(const struct mock_object *o, CK_ATTRIBUTE_TYPE type);
bool mock_object_matches(const struct mock_object *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n);
bool mock_key_allows(const struct mock_object *o, CK_MECHANISM_TYPE mech);
/* Signs data with the key of object i; *sig_len is the capacity in, the length out. */
CK_RV mock_key_sign(size_t i, CK_MECHANISM_TYPE mech, CK_MECHANISM_TYPE pss_hash,
                    unsigned long pss_salt, const uint8_t *data, size_t len, uint8_t *sig,
                    size_t *sig_len);
size_t mock_key_sig_len(size_t i);

/* entry points in mock_keys.c */
CK_RV mock_C_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
                               CK_ULONG n);
CK_RV mock_C_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n);
CK_RV mock_C_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out, CK_ULONG max,
                         CK_ULONG_PTR count);
CK_RV mock_C_FindObjectsFinal(CK_SESSION_HANDLE h);

/* mock_unsupported.c */
void mock_fill_unsupported(CK_FUNCTION_LIST *fl);

#endif
