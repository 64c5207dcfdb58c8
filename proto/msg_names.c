/* Names on the wire for operations, key types and curves, and the small lifecycle helpers of
 * the message structs. The names are part of the protocol (PROTOCOL.md): never rename one. */
#include "proto/msg.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

static const char *const op_names[PROTO_OP_COUNT] = {
    [PROTO_OP_PING] = "ping",
    [PROTO_OP_KEY_INFO] = "key_info",
    [PROTO_OP_SIGN] = "sign",
    [PROTO_OP_PUBLIC_KEY] = "public_key",
    [PROTO_OP_LIST_TOKENS] = "list_tokens",
    [PROTO_OP_LIST_KEYS] = "list_keys",
    [PROTO_OP_STATUS] = "status",
    [PROTO_OP_INIT_TOKEN] = "init_token",
    [PROTO_OP_CREATE_KEY] = "create_key",
    [PROTO_OP_DELETE_KEY] = "delete_key",
    [PROTO_OP_CHANGE_PIN] = "change_pin",
};

const char *proto_op_name(enum proto_op op)
{
    if ((int)op < 0 || op >= PROTO_OP_COUNT)
        return "unknown";
    return op_names[op];
}

int proto_op_from_name(const char *name, enum proto_op *out)
{
    if (name == NULL)
        return TE_ERR_NOT_FOUND;
    for (int i = 0; i < PROTO_OP_COUNT; i++) {
        if (strcmp(name, op_names[i]) == 0) {
            *out = (enum proto_op)i;
            return TE_OK;
        }
    }
    return TE_ERR_NOT_FOUND;
}

bool proto_op_is_admin(enum proto_op op)
{
    return op == PROTO_OP_INIT_TOKEN || op == PROTO_OP_CREATE_KEY ||
           op == PROTO_OP_DELETE_KEY || op == PROTO_OP_CHANGE_PIN;
}

const char *proto_key_type_name(enum proto_key_type t)
{
    switch (t) {
    case PROTO_KEY_RSA: return "rsa";
    case PROTO_KEY_EC: return "ec";
    case PROTO_KEY_UNKNOWN: break;
    }
    return "unknown";
}

const char *proto_curve_name(enum proto_curve c)
{
    switch (c) {
    case PROTO_CURVE_P256: return "P-256";
    case PROTO_CURVE_P384: return "P-384";
    case PROTO_CURVE_P521: return "P-521";
    case PROTO_CURVE_NONE: break;
    }
    return "none";
}

void proto_request_init(struct proto_request *req, enum proto_op op)
{
    memset(req, 0, sizeof(*req));
    req->version = PROTO_VERSION;
    req->op = op;
}

void proto_request_free(struct proto_request *req)
{
    if (req != NULL)
        te_wipe(req, sizeof(*req));
}

void proto_response_init(struct proto_response *resp, const struct proto_request *req,
                         enum proto_op op)
{
    memset(resp, 0, sizeof(*resp));
    resp->op = op;
    resp->ok = true;
    if (req != NULL) {
        resp->has_id = req->has_id;
        resp->id = req->id;
    }
}

void proto_response_free(struct proto_response *resp)
{
    if (resp == NULL)
        return;
    free(resp->tokens);
    free(resp->keys);
    te_wipe(resp, sizeof(*resp));
}

int proto_error_to_te(const struct proto_error *e, struct te_error *err)
{
    int code = e->code < 0 ? e->code : TE_ERR_INTERNAL;
    if (e->has_ckr)
        return te_error_set_ckr(err, code, (unsigned long)e->ckr, e->retryable, "%s",
                                e->message);
    te_error_set(err, code, "%s", e->message);
    if (err != NULL)
        err->retryable = e->retryable;
    return code;
}
