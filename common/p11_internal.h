/* Internals of the PKCS#11 core shared by common/p11_*.c: the context, per-token state (login,
 * session pool), the key cache, resolved requests, and the helpers each file provides. */
#ifndef TEDGE_COMMON_P11_INTERNAL_H
#define TEDGE_COMMON_P11_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "common/der.h"
#include "common/err.h"
#include "common/p11.h"

#define P11_PIN_MAX 256            /* longest PIN we accept (proto's limit too) */
#define P11_HASH_LEN 32            /* SHA-256 of a salted PIN */
#define P11_FAILED_PINS 32         /* refused PINs remembered per token: a ring, oldest first out */
#define P11_DEFAULT_SESSIONS 8     /* pool size when p11_config.max_sessions is 0 */
#define P11_MAX_SESSIONS_LIMIT 64  /* more sessions than this only exhausts the token */
#define P11_MAX_TOKENS 32          /* remembered token identities (login state, failed PIN) */
#define P11_KEY_CACHE_MAX 64       /* resolved URIs kept; the oldest is dropped beyond */
#define P11_MAX_SLOTS 64           /* slots we look at in one enumeration */
#define P11_FIND_MAX 64            /* keys one p11_list_keys returns */
#define P11_RETRY 1                /* internal: state changed while waiting, look again */

/* One session of a token's pool. */
struct p11_session {
    CK_SESSION_HANDLE handle;
    unsigned gen;                  /* the token's gen when opened; stale after a drop */
    bool open;
    bool busy;                     /* held by a caller; used without the context lock */
};

/* What we know about one token, kept across removals and reloads so that a failed PIN is
 * remembered for that token. Identity: label, serial, manufacturer and model. */
struct p11_token {
    struct p11_token *next;
    CK_TOKEN_INFO info;            /* as last read; identity fields never change */
    char label[33];                /* trimmed copies for messages */
    char serial[17];
    CK_SLOT_ID slot;
    bool present;                  /* found by the last enumeration, not dropped since */
    unsigned gen;                  /* bumped on every drop: sessions and handles are stale */
    bool login_required;
    bool logged_in;
    uint8_t login_hash[P11_HASH_LEN];  /* salted hash of the PIN we are logged in with */
    char *login_pin;               /* that PIN, to log back in after checking another; wiped */
    bool has_proven;               /* the token accepted a PIN in this process: */
    uint8_t proven_hash[P11_HASH_LEN]; /* its salted hash, kept across logouts and drops */
    uint8_t failed[P11_FAILED_PINS][P11_HASH_LEN]; /* salted hashes of refused PINs */
    unsigned nfailed, failed_next; /* a ring: the oldest refused PIN is forgotten first */
    int64_t refused_at_ms;         /* te_monotonic_ms() of the last refused PIN; 0 = none */
    bool mechs_known;
    unsigned mech_schemes;         /* schemes whose mechanism the token offers with CKF_SIGN */
    struct p11_session *sessions;  /* max_sessions entries */
    unsigned busy;                 /* sessions held by callers */
    unsigned users;                /* callers waiting on it: it must not be evicted */
    unsigned key_epoch;            /* bumped whenever its cached key handles are forgotten */
    bool exclusive;                /* a PIN check is logging out and in: hold new callers */
};

/* A resolved key: the merged URI it answers, its token and handle, and what we read once. */
struct p11_key {
    struct p11_key *next;
    char uri[P11_URI_MAX];         /* merged request URI without PIN attributes (cache key) */
    struct p11_token *tok;
    unsigned tok_gen;
    unsigned key_epoch;            /* tok->key_epoch when it was read */
    CK_OBJECT_HANDLE handle;
    enum p11_key_type type;
    unsigned bits;
    const struct der_curve *curve; /* NULL for RSA or an unknown curve */
    size_t ec_coord_len;           /* ECDSA r and s length; 0 when unknown */
    size_t rsa_len;                /* modulus bytes */
    bool always_authenticate;
    unsigned schemes;
    char label[P11_LABEL_MAX];
    uint8_t id[P11_ID_MAX];
    size_t id_len;                 /* P11_ID_MAX + 1 when the id was longer than we keep */
};

struct p11_ctx {
    pthread_mutex_t lock;          /* guards everything below */
    pthread_cond_t cond;           /* a session was released, a reload or PIN check ended */
    CK_FUNCTION_LIST *fn;          /* NULL while the module failed to come back from a reload */
    char *module_path;
    P11KitUri *scope;              /* NULL without a scope URI */
    char *default_pin;
    unsigned reload_interval_s;
    unsigned max_sessions;
    unsigned pin_cooldown_ms;
    bool requests_from_peers;
    char *default_pin_name;        /* NULL: the core's own words */
    bool reloaded_once;
    time_t last_reload;            /* CLOCK_MONOTONIC seconds */
    bool reloading;
    unsigned busy_total;
    uint8_t salt[32];              /* per-process salt for PIN hashes */
    struct p11_token *tokens;
    size_t ntokens;
    struct p11_key *keys;
    size_t nkeys;
    time_t last_success;
    uint64_t signatures, errors, logins, reloads;
};

enum p11_pin_origin { P11_PIN_NONE = 0, P11_PIN_URI, P11_PIN_SOURCE, P11_PIN_CALLER,
                      P11_PIN_DEFAULT };

/* A request after parsing and merging with the scope. */
struct p11_request {
    P11KitUri *uri;                /* merged; PIN attributes removed */
    char uri_str[P11_URI_MAX];     /* its text: cache key and what messages show */
    char *pin;                     /* effective PIN or NULL; wiped by p11_request_clear */
    enum p11_pin_origin pin_origin;
};

/* p11_rv.c: CK_RV -> te_error. The message is "<context>: <plain words> (CKR_...)." */
int p11_rv_error(struct te_error *err, CK_RV rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The te_err code and retryability for a CK_RV. */
int p11_rv_code(CK_RV rv, bool *retryable);

/* p11_uri.c */
int p11_uri_parse(const char *text, P11KitUri **out, struct te_error *err);
/* p11_kit_uri_free() that wipes a pin-value first; NULL is a no-op. */
void p11_uri_free(P11KitUri *u);
int p11_request_init(struct p11_ctx *ctx, const struct p11_keyref *ref, struct p11_request *req,
                     struct te_error *err);
void p11_request_clear(struct p11_request *req);
/* pkcs11:model=...;manufacturer=...;serial=...;token=... for a token. */
void p11_uri_for_token(const CK_TOKEN_INFO *ti, char *out, size_t size);
/* A URI for exactly one private key: the token's identity, id, label and type=private. */
void p11_uri_for_key(const CK_TOKEN_INFO *ti, const uint8_t *id, size_t id_len,
                     const char *label, char *out, size_t size);
void p11_trim(const unsigned char *field, size_t size, char *out);

/* p11_module.c */
/* Reloads the module when allowed (never before, or reload_interval_s ago); 0 when done,
 * TE_ERR_BUSY when too soon. Waits for all sessions to be released. */
int p11_module_try_reload(struct p11_ctx *ctx, struct te_error *err);

/* p11_token.c */
/* The first present, initialized token that the URI matches; re-enumerates the slots. */
int p11_token_find(struct p11_ctx *ctx, P11KitUri *uri, struct p11_token **out,
                   struct te_error *err);
/* Forgets every session and handle of a token after a device-class error. */
void p11_token_drop(struct p11_ctx *ctx, struct p11_token *tok, const char *why);
/* Forgets everything after a reload; keeps identities and failed-PIN memory. */
void p11_tokens_reset(struct p11_ctx *ctx);
void p11_tokens_free(struct p11_ctx *ctx);
/* Schemes whose mechanism the token offers for signing (cached). */
unsigned p11_token_schemes(struct p11_ctx *ctx, struct p11_token *tok);

/* p11_session.c */
/* A session of the token for the caller alone (waits while all are busy). P11_RETRY when the
 * token was dropped or the module reloaded while waiting. */
int p11_session_acquire(struct p11_ctx *ctx, struct p11_token *tok, struct p11_session **out,
                        struct te_error *err);
/* The same for a caller that relies on the login and the key handle (key may be NULL) that
 * p11_resolve checked: P11_RETRY when either went stale while it waited. */
int p11_session_acquire_ready(struct p11_ctx *ctx, struct p11_token *tok,
                              const struct p11_key *key, struct p11_session **out,
                              struct te_error *err);
/* Gives the session back; bad = close it (its handle went invalid). */
void p11_session_release(struct p11_ctx *ctx, struct p11_token *tok, struct p11_session *s,
                         bool bad);
/* Waits until no caller holds a session of tok and holds new callers off; P11_RETRY when the
 * token was dropped meanwhile (then the section is not entered). */
int p11_token_exclusive_begin(struct p11_ctx *ctx, struct p11_token *tok);
void p11_token_exclusive_end(struct p11_ctx *ctx, struct p11_token *tok);
void p11_sessions_close_idle(struct p11_ctx *ctx, struct p11_token *tok);
/* Inside an exclusive section: any session of the token (opened if needed), not marked busy. */
int p11_session_for_owner(struct p11_ctx *ctx, struct p11_token *tok, CK_SESSION_HANDLE *out,
                          struct te_error *err);

/* p11_pin.c */
/* Makes sure the token is logged in with this PIN, checking a PIN that differs from the one
 * the token is logged in with for real; a token without CKF_LOGIN_REQUIRED needs nothing. */
int p11_login(struct p11_ctx *ctx, struct p11_token *tok, const struct p11_request *req,
              struct te_error *err);
/* Logged-in state was lost (session closed, CKR_USER_NOT_LOGGED_IN): forget it. */
void p11_login_lost(struct p11_ctx *ctx, struct p11_token *tok);

/* p11_key.c */
/* The cached key for the request on tok, or a fresh lookup of the first matching private key
 * (warning when several match). *out is a copy: the cache may change once the lock drops. */
int p11_key_find(struct p11_ctx *ctx, const struct p11_request *req, struct p11_token *tok,
                 struct p11_key *out, struct te_error *err);
/* Reads the properties of a private key object into key (type, size, curve, schemes...). */
CK_RV p11_key_read(struct p11_ctx *ctx, struct p11_token *tok, CK_SESSION_HANDLE s,
                   CK_OBJECT_HANDLE h, struct p11_key *key);
/* The find template for a request: its object attributes with CKA_CLASS = private key. */
size_t p11_key_template(const struct p11_request *req, CK_ATTRIBUTE *tmpl, size_t max,
                        CK_OBJECT_CLASS *cls);
/* The token of a valid cache entry for the request: no slot enumeration needed. */
struct p11_token *p11_key_cached_token(struct p11_ctx *ctx, const struct p11_request *req);
void p11_keys_forget(struct p11_ctx *ctx, struct p11_token *tok);
void p11_key_forget_uri(struct p11_ctx *ctx, const char *uri);
void p11_keys_free(struct p11_ctx *ctx);
/* One attribute, malloc'd in *value (NULL when the object does not have it or will not say). */
CK_RV p11_read_attr(struct p11_ctx *ctx, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                    CK_ATTRIBUTE_TYPE type, uint8_t **value, size_t *len);
/* Whether rv means the session itself is gone (then it is closed, not reused). */
bool p11_rv_session_lost(CK_RV rv);

/* p11_resolve.c */
/* Token, login and key for a request, with the reload rule; key may be NULL for operations
 * that need only the token. *tok is set as soon as a token is found (NULL before). */
int p11_resolve(struct p11_ctx *ctx, const struct p11_request *req, struct p11_token **tok,
                struct p11_key *key, struct te_error *err);
/* An operation on a resolved token (and key), called with the lock held. */
typedef int (*p11_op_fn)(struct p11_ctx *ctx, const struct p11_request *req,
                         struct p11_token *tok, const struct p11_key *key, void *arg,
                         struct te_error *err);
/* Parses the request, resolves it and runs op, recovering once per error class (session lost,
 * not logged in, stale handle, device removed) before giving up. Counts errors. */
int p11_run(struct p11_ctx *ctx, const struct p11_keyref *ref, bool need_key, p11_op_fn op,
            void *arg, struct te_error *err);

#endif
