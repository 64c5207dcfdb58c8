/* Replies of the tedge-p11-server protocol: the envelope {"v","id","ok","result"|"error"} and
 * the structured error, encoded by the daemon and decoded by the client (PROTOCOL.md). */
#include "proto/msg.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "proto/json_internal.h"
#include "proto/result_internal.h"

#define SUPPORTED_VERSIONS (1u << PROTO_VERSION) /* bit per version this code serves */
#define CODE_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_" /* what an error code is made of */

/* ---- encoding (daemon side) ------------------------------------------------------------ */

static int add_versions(cJSON *obj, const char *name, unsigned mask)
{
    cJSON *arr = cJSON_AddArrayToObject(obj, name);
    if (arr == NULL)
        return TE_ERR_NOMEM;
    for (int v = 1; v < 32; v++) {
        cJSON *n;
        if (!(mask & (1u << v)))
            continue;
        if ((n = cJSON_CreateNumber(v)) == NULL || !cJSON_AddItemToArray(arr, n)) {
            cJSON_Delete(n);
            return TE_ERR_NOMEM;
        }
    }
    return TE_OK;
}

static int encode_error_object(cJSON *obj, const struct proto_error *e)
{
    const char *code = e->code_name[0] != '\0' ? e->code_name : te_errcode(e->code);
    char message[PROTO_MESSAGE_MAX + 1];
    int r;

    if (strnlen(code, PROTO_CODE_MAX + 1) > PROTO_CODE_MAX || strcmp(code, "ok") == 0)
        return TE_ERR_INVALID;
    if (strnlen(e->ckr_name, PROTO_CKR_NAME_MAX + 1) > PROTO_CKR_NAME_MAX)
        return TE_ERR_INVALID;
    /* a message is cut rather than refused: the reply matters more than its last words */
    snprintf(message, sizeof(message), "%s", e->message);
    if ((r = proto_json_add_string(obj, "code", code)) != TE_OK ||
        (r = proto_json_add_string(obj, "message", message)) != TE_OK)
        return r;
    if (e->has_ckr) {
        if ((r = proto_json_add_uint(obj, "ckr", e->ckr)) != TE_OK)
            return r;
        if (e->ckr_name[0] != '\0' &&
            (r = proto_json_add_string(obj, "ckr_name", e->ckr_name)) != TE_OK)
            return r;
    }
    if ((r = proto_json_add_bool(obj, "retryable", e->retryable)) != TE_OK)
        return r;
    if (e->supported_versions != 0)
        return add_versions(obj, "supported_versions", e->supported_versions);
    return TE_OK;
}

int proto_encode_response(struct buf *out, const struct proto_response *resp,
                          struct te_error *err)
{
    cJSON *root = NULL, *body;
    int r;

    CHECK_ARG(out != NULL && resp != NULL, TE_ERR_INVALID);
    if ((int)resp->op < 0 || resp->op >= PROTO_OP_COUNT)
        return te_error_set(err, TE_ERR_INVALID, "Cannot encode a reply to an unknown operation.");
    if (resp->has_id && resp->id > PROTO_REQUEST_ID_MAX)
        return te_error_set(err, TE_ERR_INVALID, "The reply's id is out of range.");
    if ((root = cJSON_CreateObject()) == NULL) {
        r = te_error_set(err, TE_ERR_NOMEM, "No memory to encode a reply.");
        goto exit;
    }
    r = proto_json_add_uint(root, "v", PROTO_VERSION);
    if (r == TE_OK && resp->has_id)
        r = proto_json_add_uint(root, "id", resp->id);
    if (r == TE_OK)
        r = proto_json_add_bool(root, "ok", resp->ok);
    if (r == TE_OK && (body = cJSON_AddObjectToObject(root, resp->ok ? "result" : "error")) == NULL)
        r = TE_ERR_NOMEM;
    if (r != TE_OK) {
        r = te_error_set(err, r, "No memory to encode a reply.");
        goto exit;
    }
    if (resp->ok) {
        if ((r = proto_result_encode(body, resp, err)) != TE_OK)
            goto exit;
    } else if ((r = encode_error_object(body, &resp->error)) != TE_OK) {
        r = te_error_set(err, r, "Cannot encode the error reply: %s.", te_strerror(r));
        goto exit;
    }
    r = proto_json_print(root, out, err);
exit:
    proto_json_free(root);
    return r;
}

int proto_encode_error(struct buf *out, const struct proto_request *req, const struct te_error *e,
                       const char *ckr_name, struct te_error *err)
{
    struct proto_response resp;
    int r;

    CHECK_ARG(out != NULL && e != NULL, TE_ERR_INVALID);
    proto_response_init(&resp, req, req != NULL ? req->op : PROTO_OP_PING);
    resp.ok = false;
    resp.error.code = e->code != TE_OK ? e->code : TE_ERR_INTERNAL;
    snprintf(resp.error.message, sizeof(resp.error.message), "%s", te_error_message(e));
    resp.error.has_ckr = e->has_ckr;
    resp.error.ckr = e->ckr;
    if (e->has_ckr && ckr_name != NULL)
        snprintf(resp.error.ckr_name, sizeof(resp.error.ckr_name), "%s", ckr_name);
    resp.error.retryable = e->retryable;
    if (req != NULL && req->version != PROTO_VERSION)
        resp.error.supported_versions = SUPPORTED_VERSIONS;
    r = proto_encode_response(out, &resp, err);
    proto_response_free(&resp);
    return r;
}

/* ---- decoding (client side) ------------------------------------------------------------ */

/* A string member that may be cut to max_len bytes (at a UTF-8 boundary) instead of refused. */
static int get_string_cut(const cJSON *item, const char *name, char *dst, size_t max_len,
                          struct te_error *err)
{
    size_t n;
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return proto_json_get_string(item, name, dst, max_len, err); /* the type error */
    n = strnlen(item->valuestring, max_len + 1);
    if (n > max_len) {
        n = max_len;
        while (n > 0 && ((uint8_t)item->valuestring[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, item->valuestring, n);
    dst[n] = '\0';
    return TE_OK;
}

static int decode_error_object(const cJSON *obj, struct proto_error *e, struct te_error *err)
{
    const cJSON *item;
    uint64_t v;
    size_t n = 0;
    int r;

    if (!cJSON_IsObject(obj))
        return te_error_set(err, TE_ERR_PROTOCOL, "The member \"error\" must be an object.");
    if ((r = proto_json_check_members(obj, "error", err)) != TE_OK)
        return r;
#define GET(name) cJSON_GetObjectItemCaseSensitive(obj, name)
    r = proto_json_get_string(GET("code"), "code", e->code_name, PROTO_CODE_MAX, err);
    if (r == TE_ERR_TOO_LARGE)
        r = te_error_set(err, TE_ERR_PROTOCOL, "The error code is too long.");
    if (r != TE_OK)
        return r;
    if (strcmp(e->code_name, "ok") == 0)
        return te_error_set(err, TE_ERR_PROTOCOL, "A failure reply has the error code \"ok\".");
    if (e->code_name[0] == '\0' || strspn(e->code_name, CODE_CHARS) != strlen(e->code_name))
        return te_error_set(err, TE_ERR_PROTOCOL,
                            "The error code must be a name of lowercase letters, digits and _.");
    e->code = te_err_from_code(e->code_name);
    if ((r = get_string_cut(GET("message"), "message", e->message, PROTO_MESSAGE_MAX, err)) ||
        (r = proto_json_get_bool(GET("retryable"), "retryable", &e->retryable, err)))
        return r;
    item = GET("ckr");
    if (item != NULL && !cJSON_IsNull(item)) {
        if ((r = proto_json_get_uint(item, "ckr", PROTO_JSON_UINT_MAX, &e->ckr, err)) != TE_OK)
            return r;
        e->has_ckr = true;
    }
    item = GET("ckr_name"); /* a name means nothing without the number */
    if (e->has_ckr && item != NULL && !cJSON_IsNull(item) &&
        (r = get_string_cut(item, "ckr_name", e->ckr_name, PROTO_CKR_NAME_MAX, err)) != TE_OK)
        return r;
    item = GET("supported_versions");
    if (item != NULL && !cJSON_IsNull(item)) {
        if (!cJSON_IsArray(item))
            return te_error_set(err, TE_ERR_PROTOCOL,
                                "The member \"supported_versions\" must be an array.");
        for (const cJSON *x = item->child; x != NULL; x = x->next) {
            if (++n > 31)
                return te_error_set(err, TE_ERR_PROTOCOL,
                                    "The member \"supported_versions\" is too long.");
            if ((r = proto_json_get_uint(x, "supported_versions", PROTO_JSON_UINT_MAX, &v,
                                         err)) != TE_OK)
                return r;
            if (v >= 1 && v < 32) /* versions this build cannot represent are not ours */
                e->supported_versions |= 1u << v;
        }
    }
#undef GET
    return TE_OK;
}

int proto_decode_response(const uint8_t *body, size_t len, enum proto_op op,
                          struct proto_response *out, struct te_error *err)
{
    cJSON *root = NULL;
    const cJSON *result, *error, *item;
    uint64_t v;
    int r;

    CHECK_ARG(out != NULL, TE_ERR_INVALID);
    memset(out, 0, sizeof(*out));
    out->op = op;
    if ((int)op < 0 || op >= PROTO_OP_COUNT)
        return te_error_set(err, TE_ERR_INVALID, "Cannot decode a reply to an unknown operation.");
    if ((r = proto_json_parse(body, len, &root, err)) != TE_OK)
        goto exit;
    if ((r = proto_json_check_members(root, "reply", err)) != TE_OK)
        goto exit;
    if ((r = proto_json_get_uint(cJSON_GetObjectItemCaseSensitive(root, "v"), "v", 1000000, &v,
                                 err)) != TE_OK)
        goto exit;
    if (v != PROTO_VERSION) {
        r = te_error_set(err, TE_ERR_PROTOCOL,
                         "The reply uses protocol version %llu; this side supports version %d.",
                         (unsigned long long)v, PROTO_VERSION);
        goto exit;
    }
    if (cJSON_HasObjectItem(root, "op")) {
        r = te_error_set(err, TE_ERR_PROTOCOL, "The message is a request, not a reply.");
        goto exit;
    }
    item = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (item != NULL && !cJSON_IsNull(item)) {
        if ((r = proto_json_get_uint(item, "id", PROTO_REQUEST_ID_MAX, &out->id, err)) != TE_OK)
            goto exit;
        out->has_id = true;
    }
    if ((r = proto_json_get_bool(cJSON_GetObjectItemCaseSensitive(root, "ok"), "ok", &out->ok,
                                 err)) != TE_OK)
        goto exit;
    result = cJSON_GetObjectItemCaseSensitive(root, "result");
    error = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (out->ok && error != NULL) {
        r = te_error_set(err, TE_ERR_PROTOCOL, "A successful reply must not have \"error\".");
        goto exit;
    }
    if (!out->ok && result != NULL) {
        r = te_error_set(err, TE_ERR_PROTOCOL, "A failure reply must not have \"result\".");
        goto exit;
    }
    if (out->ok) {
        if (result == NULL) {
            r = te_error_set(err, TE_ERR_PROTOCOL, "The member \"result\" is missing.");
            goto exit;
        }
        r = proto_result_decode(result, out, err);
    } else {
        if (error == NULL) {
            r = te_error_set(err, TE_ERR_PROTOCOL, "The member \"error\" is missing.");
            goto exit;
        }
        r = decode_error_object(error, &out->error, err);
    }
exit:
    proto_json_free(root);
    return r;
}
