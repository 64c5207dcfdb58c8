/* One handler per operation: each maps a decoded request to common/p11.h calls and fills the
 * response, or fills a te_error. Called only by the dispatcher (dispatch.c). */
#ifndef TEDGE_P11_SERVER_HANDLERS_H
#define TEDGE_P11_SERVER_HANDLERS_H

#include "common/err.h"
#include "p11-server/server.h"
#include "proto/msg.h"

typedef int srv_handler_fn(struct srv_ctx *ctx, const struct proto_request *req,
                           struct proto_response *resp, struct te_error *e);

srv_handler_fn srv_handle_ping;
srv_handler_fn srv_handle_key_info;
srv_handler_fn srv_handle_sign;
srv_handler_fn srv_handle_public_key;
srv_handler_fn srv_handle_list_tokens;
srv_handler_fn srv_handle_list_keys;
srv_handler_fn srv_handle_status;

/* Frees what handlers allocated in resp (token and key lists) and wipes it. */
void srv_handlers_release(struct proto_response *resp);

#endif
