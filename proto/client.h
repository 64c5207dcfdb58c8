/* The C client of tedge-p11-server: one persistent Unix-socket connection, one request at a
 * time, a deadline per request, and one reconnect when the daemon dropped the connection. */
#ifndef TEDGE_PROTO_CLIENT_H
#define TEDGE_PROTO_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/sigscheme.h"
#include "proto/msg.h"

struct proto_client;

/* Connects to the daemon's socket now, so that a wrong path or a stopped daemon shows at once:
 * "Failed to connect to tedge-p11-server UNIX socket at '<path>': <reason>" (TE_ERR_CONNECT).
 * timeout_ms bounds the connect and then each request (write + reply); <= 0: no deadline. */
int proto_client_open(const char *socket_path, int timeout_ms, struct proto_client **out,
                      struct te_error *err);
/* Closes the connection and frees c; NULL is a no-op. */
void proto_client_close(struct proto_client *c);
void proto_client_set_timeout(struct proto_client *c, int timeout_ms);

/* Every call below is thread-safe (calls on one client are serialized) and behaves the same:
 * - the request is sent on the open connection, or a new one when the last was dropped;
 * - when the connection turns out broken before a reply (EPIPE, ECONNRESET, EOF), the client
 *   reconnects once and sends the request again;
 * - after a timeout the connection is closed and the request is NOT sent again (the daemon may
 *   still be signing): TE_ERR_TIMEOUT;
 * - a failure reply comes back as its code with err's message, ckr and retryable filled.
 * uri and pin may be NULL (the daemon's scope and PIN apply); they are copied and wiped. */
int proto_client_ping(struct proto_client *c, struct proto_ping_result *out,
                      struct te_error *err);
/* Signs a digest computed with the scheme's hash; ECDSA signatures come back DER-encoded. */
int proto_client_sign(struct proto_client *c, const char *uri, const char *pin,
                      enum sig_scheme scheme, const uint8_t *digest, size_t digest_len,
                      uint8_t *sig, size_t sig_cap, size_t *sig_len, struct te_error *err);
int proto_client_key_info(struct proto_client *c, const char *uri, const char *pin,
                          struct proto_key_info *out, struct te_error *err);
/* *pem is a malloc'd SubjectPublicKeyInfo PEM; free() it. */
int proto_client_public_key(struct proto_client *c, const char *uri, const char *pin, char **pem,
                            struct te_error *err);
/* *out is malloc'd (may be NULL when *count is 0); free() it. */
int proto_client_list_tokens(struct proto_client *c, struct proto_token_info **out,
                             size_t *count, struct te_error *err);
int proto_client_list_keys(struct proto_client *c, const char *uri, const char *pin,
                           struct proto_key_info **out, size_t *count, struct te_error *err);
int proto_client_status(struct proto_client *c, struct proto_status *out, struct te_error *err);

/* Any request (e.g. an administration op): sets req->id, sends it and decodes the reply into
 * resp (free it with proto_response_free()). Returns TE_OK for a success reply and the error
 * code for a failure reply (resp->error holds it too). */
int proto_client_call(struct proto_client *c, struct proto_request *req,
                      struct proto_response *resp, struct te_error *err);

#endif
