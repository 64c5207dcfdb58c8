/* The dispatcher: the only place that decodes a request, checks the peer against the op, picks
 * the handler by op and encodes the reply; every request leaves exactly one log line. */
#include "p11-server/server.h"
#include "p11-server/handlers.h"

#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/p11.h"
#include "proto/msg.h"

/* Encodes e as the reply to req (NULL: no request could be read); never leaves reply empty
 * unless even the error cannot be encoded (then the connection is closed by the caller). */
static void encode_error(struct buf *reply, const struct proto_request *req,
                         const struct te_error *e)
{
    const char *ckr_name = e->has_ckr ? p11_rv_name(e->ckr) : NULL;
    struct te_error enc = {0};

    if (proto_encode_error(reply, req, e, ckr_name, &enc) != TE_OK) {
        log_error("Cannot encode an error reply: %s", te_error_message(&enc));
        buf_reset(reply);
    }
}

void srv_reply_error(const struct srv_peer *peer, const struct te_error *e, struct buf *reply)
{
    int64_t start = te_monotonic_ms();

    encode_error(reply, NULL, e);
    srv_log_request("-", peer, NULL, e->code, start);
}

/* Who may run op; TE_OK or a permission_denied error in e. */
static int check_peer(const struct srv_peer *peer, enum proto_op op, struct te_error *e)
{
    if (!peer->allowed)
        return te_error_set(e, TE_ERR_PERMISSION, "User %lu is not allowed to use %s (see "
                            "--allow-uid/--allow-gid).", (unsigned long)peer->uid, SRV_NAME);
    if (proto_op_is_admin(op) && !peer->admin)
        return te_error_set(e, TE_ERR_PERMISSION, "User %lu is not allowed to administer tokens "
                            "(%s); see --admin-uid/--admin-gid.", (unsigned long)peer->uid,
                            proto_op_name(op));
    return TE_OK;
}

static int run_handler(struct srv_ctx *ctx, const struct proto_request *req,
                       struct proto_response *resp, struct te_error *e)
{
    switch (req->op) {
    case PROTO_OP_PING: return srv_handle_ping(ctx, req, resp, e);
    case PROTO_OP_KEY_INFO: return srv_handle_key_info(ctx, req, resp, e);
    case PROTO_OP_SIGN: return srv_handle_sign(ctx, req, resp, e);
    case PROTO_OP_PUBLIC_KEY: return srv_handle_public_key(ctx, req, resp, e);
    case PROTO_OP_LIST_TOKENS: return srv_handle_list_tokens(ctx, req, resp, e);
    case PROTO_OP_LIST_KEYS: return srv_handle_list_keys(ctx, req, resp, e);
    case PROTO_OP_STATUS: return srv_handle_status(ctx, req, resp, e);
    case PROTO_OP_INIT_TOKEN:
    case PROTO_OP_CREATE_KEY:
    case PROTO_OP_DELETE_KEY:
    case PROTO_OP_CHANGE_PIN:
        return te_error_set(e, TE_ERR_UNSUPPORTED, "The operation %s is not supported by this "
                            "%s yet; administer the token with its own tools (pkcs11-tool, "
                            "softhsm2-util).", proto_op_name(req->op), SRV_NAME);
    case PROTO_OP_COUNT:
    default:
        break;
    }
    return te_error_set(e, TE_ERR_PROTOCOL, "Unknown operation.");
}

void srv_dispatch(struct srv_ctx *ctx, const struct srv_peer *peer, const uint8_t *body,
                  size_t len, struct buf *reply, bool *close_after)
{
    struct proto_request req;
    struct proto_response resp;
    struct te_error e = {0}, enc = {0};
    int64_t start = te_monotonic_ms();
    const char *op = "-", *uri = NULL;
    int r;

    *close_after = false;
    memset(&resp, 0, sizeof(resp));
    buf_reset(reply);
    if ((r = proto_decode_request(body, len, &req, &e)) != TE_OK) {
        encode_error(reply, &req, &e);
        goto exit;
    }
    op = proto_op_name(req.op);
    uri = req.has_uri ? req.uri : NULL;
    if ((r = check_peer(peer, req.op, &e)) != TE_OK) {
        /* a refused peer gets its answer and nothing more */
        *close_after = !peer->allowed;
        encode_error(reply, &req, &e);
        goto exit;
    }
    proto_response_init(&resp, &req, req.op);
    if ((r = run_handler(ctx, &req, &resp, &e)) != TE_OK) {
        encode_error(reply, &req, &e);
        goto exit;
    }
    if ((r = proto_encode_response(reply, &resp, &enc)) != TE_OK) {
        te_error_set(&e, r, "The reply to %s could not be encoded: %s", op,
                     te_error_message(&enc));
        encode_error(reply, &req, &e);
    }
exit:
    srv_log_request(op, peer, uri, r, start);
    srv_handlers_release(&resp);
    proto_request_free(&req);
}
