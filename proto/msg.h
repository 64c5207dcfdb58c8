/* Messages of the tedge-p11-server protocol (PROTOCOL.md): operations, request and response
 * structs, and their JSON encoding and strict decoding. Knows nothing of PKCS#11 or TLS. */
#ifndef TEDGE_PROTO_MSG_H
#define TEDGE_PROTO_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/sigscheme.h"

struct buf;

#define PROTO_VERSION 1                 /* the only version this code speaks */
#define PROTO_URI_MAX 1024              /* bytes of a PKCS#11 URI, as common/p11.h */
#define PROTO_PIN_MAX 256               /* bytes of a PIN; real tokens allow far fewer */
#define PROTO_DIGEST_MAX 64             /* SHA-512, the longest digest we sign */
#define PROTO_SIG_MAX 1024              /* RSA-8192 raw; P-521 DER is 139 bytes */
#define PROTO_PEM_MAX 8192              /* SPKI PEM; RSA-16384 needs about 2.9 KiB */
#define PROTO_LABEL_MAX 128             /* bytes of a key's CKA_LABEL we report or set */
#define PROTO_TOKEN_LABEL_MAX 32        /* CK_TOKEN_INFO.label is 32 bytes */
#define PROTO_SERIAL_MAX 16             /* CK_TOKEN_INFO.serialNumber */
#define PROTO_MANUFACTURER_MAX 32       /* CK_TOKEN_INFO.manufacturerID */
#define PROTO_MODEL_MAX 16              /* CK_TOKEN_INFO.model */
#define PROTO_KEY_ID_MAX 64             /* bytes of CKA_ID */
#define PROTO_LIST_MAX 256              /* tokens or keys in one reply; bounds decode work */
#define PROTO_MODULE_PATH_MAX 511       /* a module path in a status reply */
#define PROTO_SERVER_VERSION_MAX 63     /* "1.2.3-rc1+git" */
#define PROTO_CODE_MAX 63               /* an error code name on the wire */
#define PROTO_CKR_NAME_MAX 63           /* "CKR_FUNCTION_REJECTED" and vendor names */
#define PROTO_MESSAGE_MAX (TE_ERROR_MSG_MAX - 1) /* a human message; longer ones are cut */
#define PROTO_REQUEST_ID_MAX 9007199254740991ULL /* 2^53 - 1: exact in every JSON reader */
#define PROTO_COUNTER_MAX 9007199254740991ULL    /* counters saturate here for the same reason */

enum proto_op {
    PROTO_OP_PING = 0,
    PROTO_OP_KEY_INFO,
    PROTO_OP_SIGN,
    PROTO_OP_PUBLIC_KEY,
    PROTO_OP_LIST_TOKENS,
    PROTO_OP_LIST_KEYS,
    PROTO_OP_STATUS,
    /* administration: specified, gated by the daemon's admin allow-list */
    PROTO_OP_INIT_TOKEN,
    PROTO_OP_CREATE_KEY,
    PROTO_OP_DELETE_KEY,
    PROTO_OP_CHANGE_PIN,
    PROTO_OP_COUNT
};

/* "ping", "key_info", ...; "unknown" for a value out of range. */
const char *proto_op_name(enum proto_op op);
/* TE_OK and *out set, or TE_ERR_NOT_FOUND. */
int proto_op_from_name(const char *name, enum proto_op *out);
/* Token/key administration, allowed only to the daemon's admin allow-list. */
bool proto_op_is_admin(enum proto_op op);

enum proto_key_type { PROTO_KEY_UNKNOWN = 0, PROTO_KEY_RSA = 1, PROTO_KEY_EC = 2 };
enum proto_curve { PROTO_CURVE_NONE = 0, PROTO_CURVE_P256, PROTO_CURVE_P384, PROTO_CURVE_P521 };
enum proto_user { PROTO_USER_USER = 0, PROTO_USER_SO = 1 };

/* Names on the wire: "rsa"/"ec", "P-256"/"P-384"/"P-521", "user"/"so". */
const char *proto_key_type_name(enum proto_key_type t);
const char *proto_curve_name(enum proto_curve c);

/* ---- requests -------------------------------------------------------------------------
 * One struct for every op; which fields an op takes is in PROTOCOL.md. Strings are
 * NUL-terminated and bounded; the PIN fields are secrets: proto_request_free() wipes them. */
struct proto_request {
    int version;                         /* "v" as received; 0 when absent or not an integer */
    bool has_id;
    uint64_t id;                         /* echoed in the reply; <= PROTO_REQUEST_ID_MAX */
    enum proto_op op;

    bool has_uri;
    char uri[PROTO_URI_MAX + 1];
    bool has_pin;                        /* user PIN; for init_token the new user PIN */
    char pin[PROTO_PIN_MAX + 1];

    /* sign */
    enum sig_scheme scheme;
    uint8_t digest[PROTO_DIGEST_MAX];
    size_t digest_len;                   /* == sig_hash_len(sig_scheme_hash(scheme)) */

    /* administration */
    bool has_so_pin;                     /* init_token */
    char so_pin[PROTO_PIN_MAX + 1];
    bool has_label;                      /* init_token: token label; create_key: key label */
    char label[PROTO_LABEL_MAX + 1];
    enum proto_key_type key_type;        /* create_key */
    unsigned bits;                       /* create_key, RSA; 0 = default (2048) */
    enum proto_curve curve;              /* create_key, EC; NONE = default (P-256) */
    bool has_key_id;                     /* create_key */
    uint8_t key_id[PROTO_KEY_ID_MAX];
    size_t key_id_len;
    enum proto_user user;                /* change_pin: whose PIN */
    bool has_old_pin;                    /* change_pin */
    char old_pin[PROTO_PIN_MAX + 1];
    bool has_new_pin;                    /* change_pin */
    char new_pin[PROTO_PIN_MAX + 1];
};

/* Zeroes req (op = ping, version = PROTO_VERSION). */
void proto_request_init(struct proto_request *req, enum proto_op op);
/* Wipes the whole struct, PINs included. Safe on a zeroed or failed-decode struct. */
void proto_request_free(struct proto_request *req);

/* Strict decode of one frame body. On failure err says what is wrong (never a PIN), and
 * out->has_id/id/version hold what could be read, for the error reply. Codes:
 * TE_ERR_MALFORMED (not a JSON object: syntax, bad UTF-8, NUL, nesting), TE_ERR_PROTOCOL
 * (version, op, unknown/missing/duplicate/wrong-typed member, bad base64, a response sent as
 * a request), TE_ERR_TOO_LARGE (a string or binary field over its limit), TE_ERR_INVALID
 * (digest length does not match the scheme, or values that contradict each other).
 * Call proto_request_free() in every case. */
int proto_decode_request(const uint8_t *body, size_t len, struct proto_request *out,
                         struct te_error *err);

/* Client side: the request as a frame body in out (replaced). TE_ERR_INVALID when a field is
 * missing or over its limit (nothing is sent then). The encoding wipes its temporaries. */
int proto_encode_request(struct buf *out, const struct proto_request *req, struct te_error *err);

/* ---- results --------------------------------------------------------------------------- */
struct proto_ping_result {
    char server_version[PROTO_SERVER_VERSION_MAX + 1];
    unsigned versions;                   /* bit (1u << v) per protocol version served */
};

struct proto_key_info {
    enum proto_key_type type;
    unsigned bits;                       /* RSA modulus bits, or the EC field size */
    enum proto_curve curve;              /* NONE for RSA */
    char label[PROTO_LABEL_MAX + 1];
    uint8_t key_id[PROTO_KEY_ID_MAX];
    size_t key_id_len;
    char token_label[PROTO_TOKEN_LABEL_MAX + 1];
    bool always_authenticate;
    unsigned schemes;                    /* bit (1u << enum sig_scheme) per working scheme */
    char uri[PROTO_URI_MAX + 1];
};

struct proto_token_info {
    uint64_t slot_id;
    char label[PROTO_TOKEN_LABEL_MAX + 1];
    char serial[PROTO_SERIAL_MAX + 1];
    char manufacturer[PROTO_MANUFACTURER_MAX + 1];
    char model[PROTO_MODEL_MAX + 1];
    uint64_t flags;                      /* CK_TOKEN_INFO.flags */
    bool login_required;
    bool pin_count_low;
    bool pin_final_try;
    bool pin_locked;
    char uri[PROTO_URI_MAX + 1];
};

struct proto_status {
    bool token_present;
    char token_label[PROTO_TOKEN_LABEL_MAX + 1];
    int64_t last_success;                /* Unix seconds of the last good signature; 0 = never */
    uint64_t signatures;
    uint64_t errors;
    uint64_t logins;
    uint64_t reloads;
    char module_path[PROTO_MODULE_PATH_MAX + 1];
};

/* A failure reply. code is the te_err value of code_name (TE_ERR_INTERNAL when this build
 * does not know the name; code_name keeps what was sent). */
struct proto_error {
    int code;
    char code_name[PROTO_CODE_MAX + 1];
    char message[PROTO_MESSAGE_MAX + 1];
    bool has_ckr;
    uint64_t ckr;                        /* the PKCS#11 CK_RV */
    char ckr_name[PROTO_CKR_NAME_MAX + 1];   /* "" when unknown */
    bool retryable;
    unsigned supported_versions;         /* bit (1u << v); 0 when the reply has none */
};

/* A reply. op selects the result shape; it is not on the wire (the client knows what it
 * asked). Only the member for op is used; tokens/keys are malloc'd by the decoder. */
struct proto_response {
    bool has_id;
    uint64_t id;
    enum proto_op op;
    bool ok;
    struct proto_error error;            /* when !ok */

    struct proto_ping_result ping;       /* ping */
    struct proto_key_info key;           /* key_info, create_key */
    uint8_t signature[PROTO_SIG_MAX];    /* sign */
    size_t signature_len;
    char pem[PROTO_PEM_MAX + 1];         /* public_key: SPKI PEM */
    struct proto_token_info *tokens;     /* list_tokens */
    size_t token_count;
    struct proto_key_info *keys;         /* list_keys */
    size_t key_count;
    struct proto_status status;          /* status */
    struct proto_token_info token;       /* init_token */
};

/* Zeroes resp and sets op/id from req (NULL: no id) and ok = true. */
void proto_response_init(struct proto_response *resp, const struct proto_request *req,
                         enum proto_op op);
/* Frees what proto_decode_response() allocated and zeroes resp. Do not call it on a response
 * whose tokens/keys point at arrays you own. */
void proto_response_free(struct proto_response *resp);

/* Daemon side: the reply as a frame body in out (replaced). Errors: TE_ERR_TOO_LARGE when the
 * reply does not fit PROTO_MAX_FRAME (send an error instead), TE_ERR_INVALID for a field over
 * its limit, TE_ERR_NOMEM. */
int proto_encode_response(struct buf *out, const struct proto_response *resp,
                          struct te_error *err);

/* Daemon side: an error reply for req (NULL when no request could be read) from e. ckr_name is
 * the CKR_* name for e->ckr, or NULL. When req's version was not PROTO_VERSION (including a
 * request that could not be parsed), the reply lists the supported versions. */
int proto_encode_error(struct buf *out, const struct proto_request *req, const struct te_error *e,
                       const char *ckr_name, struct te_error *err);

/* Client side: decodes a reply to a request of kind op. TE_OK for any well-formed reply,
 * including ok = false (see resp->error); TE_ERR_MALFORMED / TE_ERR_PROTOCOL otherwise.
 * Unknown members are ignored (servers may add some); unknown scheme names in a key's list
 * are skipped. Call proto_response_free() in every case. */
int proto_decode_response(const uint8_t *body, size_t len, enum proto_op op,
                          struct proto_response *out, struct te_error *err);

/* Fills err from a failure reply and returns its code (never TE_OK). */
int proto_error_to_te(const struct proto_error *e, struct te_error *err);

#endif
