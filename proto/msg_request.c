/* Requests of the tedge-p11-server protocol: one table says which members each operation
 * takes; the strict decoder (daemon side) and the encoder (client side) both follow it. */
#include "proto/msg.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "proto/json_internal.h"

#define RSA_BITS_MIN 1024   /* smallest RSA key create_key may ask for */
#define RSA_BITS_MAX 16384  /* largest RSA key any token we know generates */
#define MAX_RULES 8         /* members of the op with the most (create_key) */

enum field {
    F_URI, F_PIN, F_SCHEME, F_DIGEST, F_SO_PIN, F_LABEL, F_KEY_TYPE, F_BITS, F_CURVE, F_KEY_ID,
    F_USER, F_OLD_PIN, F_NEW_PIN,
};

static const char *const field_names[] = {
    [F_URI] = "uri",           [F_PIN] = "pin",       [F_SCHEME] = "scheme",
    [F_DIGEST] = "digest",     [F_SO_PIN] = "so_pin", [F_LABEL] = "label",
    [F_KEY_TYPE] = "key_type", [F_BITS] = "bits",     [F_CURVE] = "curve",
    [F_KEY_ID] = "key_id",     [F_USER] = "user",     [F_OLD_PIN] = "old_pin",
    [F_NEW_PIN] = "new_pin",
};

struct rule {
    enum field field;
    bool required;
};

struct op_rules {
    size_t count;
    struct rule rules[MAX_RULES]; /* also the member order of the encoding */
};

static const struct op_rules op_rules[PROTO_OP_COUNT] = {
    [PROTO_OP_PING] = {0, {{0}}},
    [PROTO_OP_KEY_INFO] = {2, {{F_URI, false}, {F_PIN, false}}},
    [PROTO_OP_SIGN] = {4, {{F_URI, false}, {F_PIN, false}, {F_SCHEME, true}, {F_DIGEST, true}}},
    [PROTO_OP_PUBLIC_KEY] = {2, {{F_URI, false}, {F_PIN, false}}},
    [PROTO_OP_LIST_TOKENS] = {0, {{0}}},
    [PROTO_OP_LIST_KEYS] = {2, {{F_URI, false}, {F_PIN, false}}},
    [PROTO_OP_STATUS] = {0, {{0}}},
    [PROTO_OP_INIT_TOKEN] = {4, {{F_URI, false}, {F_SO_PIN, true}, {F_LABEL, true},
                                 {F_PIN, true}}},
    [PROTO_OP_CREATE_KEY] = {7, {{F_URI, false}, {F_PIN, false}, {F_KEY_TYPE, true},
                                 {F_BITS, false}, {F_CURVE, false}, {F_LABEL, true},
                                 {F_KEY_ID, false}}},
    [PROTO_OP_DELETE_KEY] = {2, {{F_URI, true}, {F_PIN, false}}},
    [PROTO_OP_CHANGE_PIN] = {4, {{F_URI, false}, {F_USER, false}, {F_OLD_PIN, true},
                                 {F_NEW_PIN, true}}},
};

/* A token label is 32 bytes; a key label may be longer. */
static size_t label_max(enum proto_op op)
{
    return op == PROTO_OP_INIT_TOKEN ? PROTO_TOKEN_LABEL_MAX : PROTO_LABEL_MAX;
}

static const struct rule *find_rule(enum proto_op op, const char *name)
{
    for (size_t i = 0; i < op_rules[op].count; i++)
        if (strcmp(field_names[op_rules[op].rules[i].field], name) == 0)
            return &op_rules[op].rules[i];
    return NULL;
}

static int decode_key_type(const cJSON *item, enum proto_key_type *out, struct te_error *err)
{
    char s[8];
    int r = proto_json_get_string(item, "key_type", s, sizeof(s) - 1, err);
    if (r == TE_ERR_TOO_LARGE || (r == TE_OK && strcmp(s, "rsa") != 0 && strcmp(s, "ec") != 0))
        return te_error_set(err, TE_ERR_PROTOCOL, "The member \"key_type\" must be \"rsa\" or \"ec\".");
    if (r == TE_OK)
        *out = strcmp(s, "rsa") == 0 ? PROTO_KEY_RSA : PROTO_KEY_EC;
    return r;
}

static int decode_curve(const cJSON *item, enum proto_curve *out, struct te_error *err)
{
    static const enum proto_curve curves[] = {PROTO_CURVE_P256, PROTO_CURVE_P384,
                                              PROTO_CURVE_P521};
    char s[8];
    int r = proto_json_get_string(item, "curve", s, sizeof(s) - 1, err);
    if (r != TE_OK && r != TE_ERR_TOO_LARGE)
        return r;
    for (size_t i = 0; r == TE_OK && i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (strcmp(s, proto_curve_name(curves[i])) == 0) {
            *out = curves[i];
            return TE_OK;
        }
    }
    return te_error_set(err, TE_ERR_PROTOCOL,
                        "The member \"curve\" must be \"P-256\", \"P-384\" or \"P-521\".");
}

static int decode_field(struct proto_request *req, enum field f, const cJSON *item,
                        struct te_error *err)
{
    char s[32];
    uint64_t n = 0;
    int r;

    switch (f) {
    case F_URI:
        req->has_uri = true;
        return proto_json_get_string(item, "uri", req->uri, PROTO_URI_MAX, err);
    case F_PIN:
        req->has_pin = true;
        return proto_json_get_string(item, "pin", req->pin, PROTO_PIN_MAX, err);
    case F_SO_PIN:
        req->has_so_pin = true;
        return proto_json_get_string(item, "so_pin", req->so_pin, PROTO_PIN_MAX, err);
    case F_OLD_PIN:
        req->has_old_pin = true;
        return proto_json_get_string(item, "old_pin", req->old_pin, PROTO_PIN_MAX, err);
    case F_NEW_PIN:
        req->has_new_pin = true;
        return proto_json_get_string(item, "new_pin", req->new_pin, PROTO_PIN_MAX, err);
    case F_LABEL:
        req->has_label = true;
        return proto_json_get_string(item, "label", req->label, label_max(req->op), err);
    case F_SCHEME:
        r = proto_json_get_string(item, "scheme", s, sizeof(s) - 1, err);
        if (r == TE_OK && sig_scheme_from_name(s, &req->scheme) == TE_OK)
            return TE_OK;
        if (r != TE_OK && r != TE_ERR_TOO_LARGE)
            return r;
        return te_error_set(err, TE_ERR_PROTOCOL,
                            "The member \"scheme\" is not a known signature scheme "
                            "(e.g. \"ecdsa_sha256\", \"rsa_pkcs1_sha256\", \"rsa_pss_sha256\").");
    case F_DIGEST:
        return proto_json_get_base64(item, "digest", req->digest, PROTO_DIGEST_MAX,
                                     &req->digest_len, err);
    case F_KEY_ID:
        req->has_key_id = true;
        return proto_json_get_base64(item, "key_id", req->key_id, PROTO_KEY_ID_MAX,
                                     &req->key_id_len, err);
    case F_KEY_TYPE:
        return decode_key_type(item, &req->key_type, err);
    case F_CURVE:
        return decode_curve(item, &req->curve, err);
    case F_BITS:
        if ((r = proto_json_get_uint(item, "bits", PROTO_JSON_UINT_MAX, &n, err)) != TE_OK)
            return r;
        if (n < RSA_BITS_MIN || n > RSA_BITS_MAX)
            return te_error_set(err, TE_ERR_INVALID,
                                "The member \"bits\" must be from %d to %d.", RSA_BITS_MIN,
                                RSA_BITS_MAX);
        req->bits = (unsigned)n;
        return TE_OK;
    case F_USER:
        r = proto_json_get_string(item, "user", s, sizeof(s) - 1, err);
        if (r == TE_OK && (strcmp(s, "user") == 0 || strcmp(s, "so") == 0)) {
            req->user = strcmp(s, "so") == 0 ? PROTO_USER_SO : PROTO_USER_USER;
            return TE_OK;
        }
        if (r != TE_OK && r != TE_ERR_TOO_LARGE)
            return r;
        return te_error_set(err, TE_ERR_PROTOCOL, "The member \"user\" must be \"user\" or \"so\".");
    }
    return te_error_set(err, TE_ERR_INTERNAL, "Unhandled request member.");
}

/* Checks that need several members. */
static int check_request(const struct proto_request *req, struct te_error *err)
{
    if (req->op == PROTO_OP_SIGN) {
        size_t want = sig_hash_len(sig_scheme_hash(req->scheme));
        if (req->digest_len != want)
            return te_error_set(err, TE_ERR_INVALID,
                                "The digest is %zu bytes but scheme %s needs a %zu-byte %s digest.",
                                req->digest_len, sig_scheme_name(req->scheme), want,
                                sig_hash_name(sig_scheme_hash(req->scheme)));
    }
    if (req->op == PROTO_OP_CREATE_KEY) {
        if (req->key_type == PROTO_KEY_RSA && req->curve != PROTO_CURVE_NONE)
            return te_error_set(err, TE_ERR_INVALID, "An RSA key takes \"bits\", not \"curve\".");
        if (req->key_type == PROTO_KEY_EC && req->bits != 0)
            return te_error_set(err, TE_ERR_INVALID, "An EC key takes \"curve\", not \"bits\".");
    }
    return TE_OK;
}

/* Reads "id" and "v" early so that even a rejected request gets its id echoed. */
static void peek_header(const cJSON *root, struct proto_request *out)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "v");
    uint64_t n;

    if (proto_json_get_uint(id, "id", PROTO_REQUEST_ID_MAX, &n, NULL) == TE_OK) {
        out->has_id = true;
        out->id = n;
    }
    if (proto_json_get_uint(v, "v", 1000000, &n, NULL) == TE_OK)
        out->version = (int)n;
}

int proto_decode_request(const uint8_t *body, size_t len, struct proto_request *out,
                         struct te_error *err)
{
    cJSON *root = NULL;
    const cJSON *item;
    char op_name[32], shown[PROTO_JSON_NAME_SHOWN + 1];
    uint64_t n;
    bool seen[MAX_RULES] = {false};
    int r;

    CHECK_ARG(out != NULL, TE_ERR_INVALID);
    memset(out, 0, sizeof(*out));
    if ((r = proto_json_parse(body, len, &root, err)) != TE_OK)
        goto exit;
    peek_header(root, out);
    if ((r = proto_json_check_members(root, "request", err)) != TE_OK)
        goto exit;
    if (cJSON_HasObjectItem(root, "ok") || cJSON_HasObjectItem(root, "result") ||
        cJSON_HasObjectItem(root, "error")) {
        r = te_error_set(err, TE_ERR_PROTOCOL,
                         "The message is a response (it has \"ok\", \"result\" or \"error\"), "
                         "not a request.");
        goto exit;
    }
    item = cJSON_GetObjectItemCaseSensitive(root, "v");
    if ((r = proto_json_get_uint(item, "v", 1000000, &n, err)) != TE_OK)
        goto exit;
    if (n != PROTO_VERSION) {
        r = te_error_set(err, TE_ERR_PROTOCOL,
                         "Protocol version %llu is not supported; this side supports version %d.",
                         (unsigned long long)n, PROTO_VERSION);
        goto exit;
    }
    item = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (item != NULL && !cJSON_IsNull(item) &&
        (r = proto_json_get_uint(item, "id", PROTO_REQUEST_ID_MAX, &out->id, err)) != TE_OK)
        goto exit;
    item = cJSON_GetObjectItemCaseSensitive(root, "op");
    r = proto_json_get_string(item, "op", op_name, sizeof(op_name) - 1, err);
    if (r == TE_OK && proto_op_from_name(op_name, &out->op) != TE_OK) {
        proto_json_shown_name(op_name, shown, sizeof(shown));
        r = te_error_set(err, TE_ERR_PROTOCOL, "The operation \"%s\" is unknown.", shown);
    }
    if (r == TE_ERR_TOO_LARGE)
        r = te_error_set(err, TE_ERR_PROTOCOL, "The operation is unknown.");
    if (r != TE_OK)
        goto exit;

    for (item = root->child; item != NULL; item = item->next) {
        const struct rule *rule;
        if (strcmp(item->string, "v") == 0 || strcmp(item->string, "op") == 0 ||
            strcmp(item->string, "id") == 0)
            continue;
        if ((rule = find_rule(out->op, item->string)) == NULL) {
            proto_json_shown_name(item->string, shown, sizeof(shown));
            r = te_error_set(err, TE_ERR_PROTOCOL,
                             "The operation \"%s\" does not take the member \"%s\".",
                             proto_op_name(out->op), shown);
            goto exit;
        }
        if (cJSON_IsNull(item))
            continue; /* null is the same as absent */
        seen[rule - op_rules[out->op].rules] = true;
        if ((r = decode_field(out, rule->field, item, err)) != TE_OK)
            goto exit;
    }
    for (size_t i = 0; i < op_rules[out->op].count; i++) {
        if (op_rules[out->op].rules[i].required && !seen[i]) {
            r = te_error_set(err, TE_ERR_PROTOCOL,
                             "The operation \"%s\" needs the member \"%s\".",
                             proto_op_name(out->op), field_names[op_rules[out->op].rules[i].field]);
            goto exit;
        }
    }
    r = check_request(out, err);
exit:
    proto_json_free(root);
    return r;
}

/* ---- encoding (client side) ------------------------------------------------------------ */

/* Adds a string member when present; TE_ERR_INVALID when it is over its limit. */
static int add_bounded(cJSON *obj, const char *name, bool present, const char *s,
                       size_t max_len, bool *added)
{
    *added = present;
    if (!present)
        return TE_OK;
    if (strnlen(s, max_len + 1) > max_len)
        return TE_ERR_INVALID;
    return proto_json_add_string(obj, name, s);
}

static int encode_field(cJSON *obj, const struct proto_request *req, enum field f, bool *added)
{
    const char *name = field_names[f];
    *added = true;
    switch (f) {
    case F_URI:
        return add_bounded(obj, name, req->has_uri, req->uri, PROTO_URI_MAX, added);
    case F_PIN:
        return add_bounded(obj, name, req->has_pin, req->pin, PROTO_PIN_MAX, added);
    case F_SO_PIN:
        return add_bounded(obj, name, req->has_so_pin, req->so_pin, PROTO_PIN_MAX, added);
    case F_OLD_PIN:
        return add_bounded(obj, name, req->has_old_pin, req->old_pin, PROTO_PIN_MAX, added);
    case F_NEW_PIN:
        return add_bounded(obj, name, req->has_new_pin, req->new_pin, PROTO_PIN_MAX, added);
    case F_LABEL:
        return add_bounded(obj, name, req->has_label, req->label, label_max(req->op), added);
    case F_SCHEME:
        if (!sig_scheme_valid((int)req->scheme))
            return TE_ERR_INVALID;
        return proto_json_add_string(obj, name, sig_scheme_name(req->scheme));
    case F_DIGEST:
        if (req->digest_len > PROTO_DIGEST_MAX)
            return TE_ERR_INVALID;
        return proto_json_add_base64(obj, name, req->digest, req->digest_len);
    case F_KEY_ID:
        if (!(*added = req->has_key_id))
            return TE_OK;
        if (req->key_id_len > PROTO_KEY_ID_MAX)
            return TE_ERR_INVALID;
        return proto_json_add_base64(obj, name, req->key_id, req->key_id_len);
    case F_KEY_TYPE:
        if (req->key_type != PROTO_KEY_RSA && req->key_type != PROTO_KEY_EC)
            return TE_ERR_INVALID;
        return proto_json_add_string(obj, name, proto_key_type_name(req->key_type));
    case F_BITS:
        if (!(*added = req->bits != 0))
            return TE_OK;
        if (req->bits < RSA_BITS_MIN || req->bits > RSA_BITS_MAX)
            return TE_ERR_INVALID;
        return proto_json_add_uint(obj, name, req->bits);
    case F_CURVE:
        if (!(*added = req->curve != PROTO_CURVE_NONE))
            return TE_OK;
        if (req->curve != PROTO_CURVE_P256 && req->curve != PROTO_CURVE_P384 &&
            req->curve != PROTO_CURVE_P521)
            return TE_ERR_INVALID;
        return proto_json_add_string(obj, name, proto_curve_name(req->curve));
    case F_USER:
        /* "user" is the default and is left out */
        if (!(*added = req->user == PROTO_USER_SO))
            return req->user == PROTO_USER_USER ? TE_OK : TE_ERR_INVALID;
        return proto_json_add_string(obj, name, "so");
    }
    return TE_ERR_INTERNAL;
}

int proto_encode_request(struct buf *out, const struct proto_request *req, struct te_error *err)
{
    cJSON *root = NULL;
    const struct op_rules *rules;
    int r;

    CHECK_ARG(out != NULL && req != NULL, TE_ERR_INVALID);
    if ((int)req->op < 0 || req->op >= PROTO_OP_COUNT)
        return te_error_set(err, TE_ERR_INVALID, "Cannot encode an unknown operation.");
    if (req->has_id && req->id > PROTO_REQUEST_ID_MAX)
        return te_error_set(err, TE_ERR_INVALID, "The request id is out of range.");
    rules = &op_rules[req->op];
    if ((root = cJSON_CreateObject()) == NULL) {
        r = te_error_set(err, TE_ERR_NOMEM, "No memory to encode a request.");
        goto exit;
    }
    r = proto_json_add_uint(root, "v", PROTO_VERSION);
    if (r == TE_OK)
        r = proto_json_add_string(root, "op", proto_op_name(req->op));
    if (r == TE_OK && req->has_id)
        r = proto_json_add_uint(root, "id", req->id);
    for (size_t i = 0; r == TE_OK && i < rules->count; i++) {
        bool added = false;
        r = encode_field(root, req, rules->rules[i].field, &added);
        if (r == TE_OK && rules->rules[i].required && !added)
            r = TE_ERR_INVALID;
        if (r == TE_ERR_INVALID) {
            r = te_error_set(err, TE_ERR_INVALID,
                             "Cannot send a %s request: the member \"%s\" is missing or out "
                             "of range.", proto_op_name(req->op),
                             field_names[rules->rules[i].field]);
            goto exit;
        }
    }
    if (r != TE_OK) {
        r = te_error_set(err, r, "Cannot encode a %s request: %s.", proto_op_name(req->op),
                         te_strerror(r));
        goto exit;
    }
    if ((r = check_request(req, err)) != TE_OK)
        goto exit;
    r = proto_json_print(root, out, err);
exit:
    proto_json_free(root);
    return r;
}
