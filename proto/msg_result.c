/* Result objects of successful replies (see result_internal.h): key info, token info, status,
 * ping, signature and public key, encoded for the daemon and decoded for the client. */
#include "proto/result_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "proto/json_internal.h"
#include "proto/msg.h"

#define KEY_BITS_MAX 65536    /* above any RSA or EC key size in use */
#define SCHEME_NAMES_MAX 32   /* entries in a key's "schemes"; more than we know, for growth */

_Static_assert(PROTO_SIG_MAX <= PROTO_JSON_BINARY_MAX, "signatures must fit the base64 limit");
_Static_assert(SIG_SCHEME_COUNT <= 32, "schemes are a bitmask in an unsigned");

/* ---- encoding ------------------------------------------------------------------------- */

static int add_str(cJSON *obj, const char *name, const char *s, size_t max_len)
{
    if (strnlen(s, max_len + 1) > max_len)
        return TE_ERR_INVALID;
    return proto_json_add_string(obj, name, s);
}

static int encode_key(cJSON *obj, const struct proto_key_info *k)
{
    cJSON *schemes;
    int r;

    if (k->type != PROTO_KEY_RSA && k->type != PROTO_KEY_EC)
        return TE_ERR_INVALID;
    if (k->key_id_len > PROTO_KEY_ID_MAX || k->bits > KEY_BITS_MAX)
        return TE_ERR_INVALID;
    if ((r = proto_json_add_string(obj, "type", proto_key_type_name(k->type))) != TE_OK ||
        (r = proto_json_add_uint(obj, "bits", k->bits)) != TE_OK)
        return r;
    if (k->curve == PROTO_CURVE_NONE)
        r = cJSON_AddNullToObject(obj, "curve") ? TE_OK : TE_ERR_NOMEM;
    else if (k->curve >= PROTO_CURVE_P256 && k->curve <= PROTO_CURVE_P521)
        r = proto_json_add_string(obj, "curve", proto_curve_name(k->curve));
    else
        r = TE_ERR_INVALID;
    if (r != TE_OK ||
        (r = add_str(obj, "label", k->label, PROTO_LABEL_MAX)) != TE_OK ||
        (r = proto_json_add_base64(obj, "key_id", k->key_id, k->key_id_len)) != TE_OK ||
        (r = add_str(obj, "token_label", k->token_label, PROTO_TOKEN_LABEL_MAX)) != TE_OK ||
        (r = proto_json_add_bool(obj, "always_authenticate", k->always_authenticate)) != TE_OK)
        return r;
    if ((schemes = cJSON_AddArrayToObject(obj, "schemes")) == NULL)
        return TE_ERR_NOMEM;
    for (int s = 0; s < SIG_SCHEME_COUNT; s++) {
        cJSON *name;
        if (!(k->schemes & (1u << s)))
            continue;
        if ((name = cJSON_CreateString(sig_scheme_name((enum sig_scheme)s))) == NULL ||
            !cJSON_AddItemToArray(schemes, name)) {
            cJSON_Delete(name);
            return TE_ERR_NOMEM;
        }
    }
    return add_str(obj, "uri", k->uri, PROTO_URI_MAX);
}

static int encode_token(cJSON *obj, const struct proto_token_info *t)
{
    int r;
    if ((r = proto_json_add_uint(obj, "slot_id", t->slot_id)) != TE_OK ||
        (r = add_str(obj, "label", t->label, PROTO_TOKEN_LABEL_MAX)) != TE_OK ||
        (r = add_str(obj, "serial", t->serial, PROTO_SERIAL_MAX)) != TE_OK ||
        (r = add_str(obj, "manufacturer", t->manufacturer, PROTO_MANUFACTURER_MAX)) != TE_OK ||
        (r = add_str(obj, "model", t->model, PROTO_MODEL_MAX)) != TE_OK ||
        (r = proto_json_add_uint(obj, "flags", t->flags)) != TE_OK ||
        (r = proto_json_add_bool(obj, "login_required", t->login_required)) != TE_OK ||
        (r = proto_json_add_bool(obj, "pin_count_low", t->pin_count_low)) != TE_OK ||
        (r = proto_json_add_bool(obj, "pin_final_try", t->pin_final_try)) != TE_OK ||
        (r = proto_json_add_bool(obj, "pin_locked", t->pin_locked)) != TE_OK)
        return r;
    return add_str(obj, "uri", t->uri, PROTO_URI_MAX);
}

static int encode_status(cJSON *obj, const struct proto_status *s)
{
    int r;
    if (s->last_success < 0)
        return TE_ERR_INVALID;
    if ((r = proto_json_add_bool(obj, "token_present", s->token_present)) != TE_OK ||
        (r = add_str(obj, "token_label", s->token_label, PROTO_TOKEN_LABEL_MAX)) != TE_OK ||
        (r = proto_json_add_uint(obj, "last_success", (uint64_t)s->last_success)) != TE_OK ||
        (r = proto_json_add_uint(obj, "signatures", s->signatures)) != TE_OK ||
        (r = proto_json_add_uint(obj, "errors", s->errors)) != TE_OK ||
        (r = proto_json_add_uint(obj, "logins", s->logins)) != TE_OK ||
        (r = proto_json_add_uint(obj, "reloads", s->reloads)) != TE_OK)
        return r;
    return add_str(obj, "module_path", s->module_path, PROTO_MODULE_PATH_MAX);
}

static int encode_ping(cJSON *obj, const struct proto_ping_result *p)
{
    cJSON *versions;
    int r = add_str(obj, "server_version", p->server_version, PROTO_SERVER_VERSION_MAX);
    if (r != TE_OK)
        return r;
    if ((versions = cJSON_AddArrayToObject(obj, "versions")) == NULL)
        return TE_ERR_NOMEM;
    for (int v = 1; v < 32; v++) {
        cJSON *n;
        if (!(p->versions & (1u << v)))
            continue;
        if ((n = cJSON_CreateNumber(v)) == NULL || !cJSON_AddItemToArray(versions, n)) {
            cJSON_Delete(n);
            return TE_ERR_NOMEM;
        }
    }
    return TE_OK;
}

/* Adds "name": [each element encoded by fn]. */
static int encode_list(cJSON *obj, const char *name, const void *items, size_t count,
                       size_t size, int (*fn)(cJSON *, const void *))
{
    cJSON *arr;
    if (count > PROTO_LIST_MAX)
        return TE_ERR_TOO_LARGE;
    if (count > 0 && items == NULL)
        return TE_ERR_INVALID;
    if ((arr = cJSON_AddArrayToObject(obj, name)) == NULL)
        return TE_ERR_NOMEM;
    for (size_t i = 0; i < count; i++) {
        cJSON *o = cJSON_CreateObject();
        int r;
        if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            return TE_ERR_NOMEM;
        }
        if ((r = fn(o, (const char *)items + i * size)) != TE_OK)
            return r;
    }
    return TE_OK;
}

static int encode_key_any(cJSON *o, const void *k) { return encode_key(o, k); }
static int encode_token_any(cJSON *o, const void *t) { return encode_token(o, t); }

int proto_result_encode(cJSON *result, const struct proto_response *resp, struct te_error *err)
{
    int r = TE_ERR_INVALID;

    switch (resp->op) {
    case PROTO_OP_PING:
        r = encode_ping(result, &resp->ping);
        break;
    case PROTO_OP_KEY_INFO:
    case PROTO_OP_CREATE_KEY:
        r = encode_key(result, &resp->key);
        break;
    case PROTO_OP_SIGN:
        if (resp->signature_len == 0 || resp->signature_len > PROTO_SIG_MAX)
            break;
        r = proto_json_add_base64(result, "signature", resp->signature, resp->signature_len);
        break;
    case PROTO_OP_PUBLIC_KEY:
        r = add_str(result, "pem", resp->pem, PROTO_PEM_MAX);
        break;
    case PROTO_OP_LIST_TOKENS:
        r = encode_list(result, "tokens", resp->tokens, resp->token_count,
                        sizeof(*resp->tokens), encode_token_any);
        break;
    case PROTO_OP_LIST_KEYS:
        r = encode_list(result, "keys", resp->keys, resp->key_count, sizeof(*resp->keys),
                        encode_key_any);
        break;
    case PROTO_OP_STATUS:
        r = encode_status(result, &resp->status);
        break;
    case PROTO_OP_INIT_TOKEN:
        r = encode_token(result, &resp->token);
        break;
    case PROTO_OP_DELETE_KEY:
    case PROTO_OP_CHANGE_PIN:
        r = TE_OK; /* an empty result */
        break;
    case PROTO_OP_COUNT:
        break;
    }
    if (r == TE_ERR_INVALID)
        return te_error_set(err, r, "Cannot encode the %s result: a value is out of range.",
                            proto_op_name(resp->op));
    if (r == TE_ERR_TOO_LARGE)
        return te_error_set(err, r, "Cannot encode the %s result: more than %d entries.",
                            proto_op_name(resp->op), PROTO_LIST_MAX);
    if (r != TE_OK)
        return te_error_set(err, r, "Cannot encode the %s result: %s.", proto_op_name(resp->op),
                            te_strerror(r));
    return TE_OK;
}

/* ---- decoding ------------------------------------------------------------------------- */

#define GET(name) cJSON_GetObjectItemCaseSensitive(obj, name)

static int decode_object_start(const cJSON *obj, const char *where, struct te_error *err)
{
    if (!cJSON_IsObject(obj))
        return te_error_set(err, TE_ERR_PROTOCOL, "The %s must be an object.", where);
    return proto_json_check_members(obj, where, err);
}

static int decode_key(const cJSON *obj, struct proto_key_info *k, struct te_error *err)
{
    char s[16];
    uint64_t n = 0;
    const cJSON *schemes, *item;
    int r;

    if ((r = decode_object_start(obj, "key", err)) != TE_OK)
        return r;
    /* a type or curve this build does not know stays UNKNOWN/NONE: servers may add some */
    r = proto_json_get_string(GET("type"), "type", s, sizeof(s) - 1, err);
    if (r != TE_OK && r != TE_ERR_TOO_LARGE)
        return r;
    k->type = r != TE_OK ? PROTO_KEY_UNKNOWN
              : strcmp(s, "rsa") == 0 ? PROTO_KEY_RSA
              : strcmp(s, "ec") == 0 ? PROTO_KEY_EC : PROTO_KEY_UNKNOWN;
    if ((r = proto_json_get_uint(GET("bits"), "bits", KEY_BITS_MAX, &n, err)) != TE_OK)
        return r;
    k->bits = (unsigned)n;
    item = GET("curve");
    k->curve = PROTO_CURVE_NONE;
    if (item != NULL && !cJSON_IsNull(item)) {
        r = proto_json_get_string(item, "curve", s, sizeof(s) - 1, err);
        if (r != TE_OK && r != TE_ERR_TOO_LARGE)
            return r;
        for (int c = PROTO_CURVE_P256; r == TE_OK && c <= PROTO_CURVE_P521; c++)
            if (strcmp(s, proto_curve_name((enum proto_curve)c)) == 0)
                k->curve = (enum proto_curve)c;
    }
    if ((r = proto_json_get_string(GET("label"), "label", k->label, PROTO_LABEL_MAX, err)) ||
        (r = proto_json_get_base64(GET("key_id"), "key_id", k->key_id, PROTO_KEY_ID_MAX,
                                   &k->key_id_len, err)) ||
        (r = proto_json_get_string(GET("token_label"), "token_label", k->token_label,
                                   PROTO_TOKEN_LABEL_MAX, err)) ||
        (r = proto_json_get_bool(GET("always_authenticate"), "always_authenticate",
                                 &k->always_authenticate, err)) ||
        (r = proto_json_get_string(GET("uri"), "uri", k->uri, PROTO_URI_MAX, err)))
        return r;
    schemes = GET("schemes");
    if (!cJSON_IsArray(schemes))
        return te_error_set(err, TE_ERR_PROTOCOL, "The member \"schemes\" must be an array.");
    k->schemes = 0;
    n = 0;
    cJSON_ArrayForEach(item, schemes) {
        enum sig_scheme sc;
        if (++n > SCHEME_NAMES_MAX)
            return te_error_set(err, TE_ERR_PROTOCOL, "The member \"schemes\" is too long.");
        if (!cJSON_IsString(item))
            return te_error_set(err, TE_ERR_PROTOCOL,
                                "The member \"schemes\" must hold only strings.");
        if (sig_scheme_from_name(item->valuestring, &sc) == TE_OK)
            k->schemes |= 1u << sc;
    }
    return TE_OK;
}

static int decode_token(const cJSON *obj, struct proto_token_info *t, struct te_error *err)
{
    int r;
    if ((r = decode_object_start(obj, "token", err)) != TE_OK)
        return r;
    if ((r = proto_json_get_uint(GET("slot_id"), "slot_id", PROTO_JSON_UINT_MAX, &t->slot_id,
                                 err)) ||
        (r = proto_json_get_string(GET("label"), "label", t->label, PROTO_TOKEN_LABEL_MAX, err)) ||
        (r = proto_json_get_string(GET("serial"), "serial", t->serial, PROTO_SERIAL_MAX, err)) ||
        (r = proto_json_get_string(GET("manufacturer"), "manufacturer", t->manufacturer,
                                   PROTO_MANUFACTURER_MAX, err)) ||
        (r = proto_json_get_string(GET("model"), "model", t->model, PROTO_MODEL_MAX, err)) ||
        (r = proto_json_get_uint(GET("flags"), "flags", PROTO_JSON_UINT_MAX, &t->flags, err)) ||
        (r = proto_json_get_bool(GET("login_required"), "login_required", &t->login_required,
                                 err)) ||
        (r = proto_json_get_bool(GET("pin_count_low"), "pin_count_low", &t->pin_count_low,
                                 err)) ||
        (r = proto_json_get_bool(GET("pin_final_try"), "pin_final_try", &t->pin_final_try,
                                 err)) ||
        (r = proto_json_get_bool(GET("pin_locked"), "pin_locked", &t->pin_locked, err)))
        return r;
    return proto_json_get_string(GET("uri"), "uri", t->uri, PROTO_URI_MAX, err);
}

static int decode_status(const cJSON *obj, struct proto_status *s, struct te_error *err)
{
    uint64_t last = 0;
    int r;
    if ((r = proto_json_get_bool(GET("token_present"), "token_present", &s->token_present,
                                 err)) ||
        (r = proto_json_get_string(GET("token_label"), "token_label", s->token_label,
                                   PROTO_TOKEN_LABEL_MAX, err)) ||
        (r = proto_json_get_uint(GET("last_success"), "last_success", PROTO_JSON_UINT_MAX,
                                 &last, err)) ||
        (r = proto_json_get_uint(GET("signatures"), "signatures", PROTO_JSON_UINT_MAX,
                                 &s->signatures, err)) ||
        (r = proto_json_get_uint(GET("errors"), "errors", PROTO_JSON_UINT_MAX, &s->errors,
                                 err)) ||
        (r = proto_json_get_uint(GET("logins"), "logins", PROTO_JSON_UINT_MAX, &s->logins,
                                 err)) ||
        (r = proto_json_get_uint(GET("reloads"), "reloads", PROTO_JSON_UINT_MAX, &s->reloads,
                                 err)))
        return r;
    s->last_success = (int64_t)last;
    return proto_json_get_string(GET("module_path"), "module_path", s->module_path,
                                 PROTO_MODULE_PATH_MAX, err);
}

static int decode_ping(const cJSON *obj, struct proto_ping_result *p, struct te_error *err)
{
    const cJSON *versions = GET("versions"), *item;
    uint64_t v;
    size_t n = 0;
    int r = proto_json_get_string(GET("server_version"), "server_version", p->server_version,
                                  PROTO_SERVER_VERSION_MAX, err);
    if (r != TE_OK)
        return r;
    if (!cJSON_IsArray(versions))
        return te_error_set(err, TE_ERR_PROTOCOL, "The member \"versions\" must be an array.");
    p->versions = 0;
    cJSON_ArrayForEach(item, versions) {
        if (++n > 31)
            return te_error_set(err, TE_ERR_PROTOCOL, "The member \"versions\" is too long.");
        if ((r = proto_json_get_uint(item, "versions", PROTO_JSON_UINT_MAX, &v, err)) != TE_OK)
            return r;
        if (v >= 1 && v < 32) /* versions this build cannot represent are not ours */
            p->versions |= 1u << v;
    }
    return TE_OK;
}

/* Decodes the array member name into a calloc'd array of count elements of size. */
static int decode_list(const cJSON *obj, const char *name, size_t size,
                       int (*fn)(const cJSON *, void *, struct te_error *), void **out,
                       size_t *count, struct te_error *err)
{
    const cJSON *arr = GET(name), *item;
    size_t n = 0, i = 0;
    uint8_t *items;
    int r;

    if (!cJSON_IsArray(arr))
        return te_error_set(err, TE_ERR_PROTOCOL, "The member \"%s\" must be an array.", name);
    cJSON_ArrayForEach(item, arr) {
        if (++n > PROTO_LIST_MAX)
            return te_error_set(err, TE_ERR_PROTOCOL,
                                "The member \"%s\" has more than %d entries.", name,
                                PROTO_LIST_MAX);
    }
    if ((items = calloc(n ? n : 1, size)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "No memory for %zu entries.", n);
    *out = items;
    cJSON_ArrayForEach(item, arr) {
        if ((r = fn(item, items + i * size, err)) != TE_OK)
            return r;
        *count = ++i;
    }
    return TE_OK;
}

static int decode_key_any(const cJSON *o, void *k, struct te_error *err)
{
    return decode_key(o, k, err);
}
static int decode_token_any(const cJSON *o, void *t, struct te_error *err)
{
    return decode_token(o, t, err);
}

int proto_result_decode(const cJSON *obj, struct proto_response *resp, struct te_error *err)
{
    void *items = NULL;
    int r;

    if ((r = decode_object_start(obj, "result", err)) != TE_OK)
        return r;
    switch (resp->op) {
    case PROTO_OP_PING:
        return decode_ping(obj, &resp->ping, err);
    case PROTO_OP_KEY_INFO:
    case PROTO_OP_CREATE_KEY:
        return decode_key(obj, &resp->key, err);
    case PROTO_OP_SIGN:
        if ((r = proto_json_get_base64(GET("signature"), "signature", resp->signature,
                                       PROTO_SIG_MAX, &resp->signature_len, err)) != TE_OK)
            return r;
        if (resp->signature_len == 0)
            return te_error_set(err, TE_ERR_PROTOCOL, "The signature is empty.");
        return TE_OK;
    case PROTO_OP_PUBLIC_KEY:
        return proto_json_get_string(GET("pem"), "pem", resp->pem, PROTO_PEM_MAX, err);
    case PROTO_OP_LIST_TOKENS:
        r = decode_list(obj, "tokens", sizeof(*resp->tokens), decode_token_any, &items,
                        &resp->token_count, err);
        resp->tokens = items;
        return r;
    case PROTO_OP_LIST_KEYS:
        r = decode_list(obj, "keys", sizeof(*resp->keys), decode_key_any, &items,
                        &resp->key_count, err);
        resp->keys = items;
        return r;
    case PROTO_OP_STATUS:
        return decode_status(obj, &resp->status, err);
    case PROTO_OP_INIT_TOKEN:
        return decode_token(obj, &resp->token, err);
    case PROTO_OP_DELETE_KEY:
    case PROTO_OP_CHANGE_PIN:
        return TE_OK;
    case PROTO_OP_COUNT:
        break;
    }
    return te_error_set(err, TE_ERR_INVALID, "Cannot decode a result for an unknown operation.");
}
