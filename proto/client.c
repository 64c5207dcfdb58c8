/* The tedge-p11-server client (see client.h): connection management, the request/reply cycle
 * with its reconnect-once rule, and one thin wrapper per operation. */
#include "proto/client.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/frame.h"

struct proto_client {
    pthread_mutex_t lock;      /* one request at a time on the connection */
    char *path;
    int fd;                    /* -1 when not connected */
    int timeout_ms;            /* per request; <= 0: none */
    uint64_t next_id;
    struct buf *tx;            /* encoded request: may hold a PIN, wiped after each call */
    struct buf *rx;
};

static void client_disconnect(struct proto_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int connect_failed(const struct proto_client *c, int code, bool retryable, const char *why,
                          const char *next, struct te_error *err)
{
    te_error_set(err, code, "Failed to connect to tedge-p11-server UNIX socket at '%s': %s. %s",
                 c->path, why, next);
    if (err != NULL)
        err->retryable = retryable;
    return code;
}

static int client_connect(struct proto_client *c, struct te_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, e;

    if (strlen(c->path) >= sizeof(sa.sun_path))
        return connect_failed(c, TE_ERR_INVALID, false, "the path is too long for a UNIX socket",
                              "Use a path of at most 107 bytes.", err);
    memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return connect_failed(c, TE_ERR_CONNECT, false, strerror(errno),
                              "The system is out of sockets.", err);
    if (c->timeout_ms > 0) {
        /* connect() on a UNIX socket waits while the server's backlog is full */
        struct timeval tv = {.tv_sec = c->timeout_ms / 1000,
                             .tv_usec = (c->timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        c->fd = fd;
        return TE_OK;
    }
    e = errno;
    close(fd);
    switch (e) {
    case ENOENT:
        return connect_failed(c, TE_ERR_CONNECT, true, strerror(e),
                              "Check that tedge-p11-server is running and that the socket path "
                              "is configured correctly.", err);
    case ECONNREFUSED:
        return connect_failed(c, TE_ERR_CONNECT, true, strerror(e),
                              "Check that tedge-p11-server is running.", err);
    case EACCES:
    case EPERM:
        return connect_failed(c, TE_ERR_PERMISSION, false, strerror(e),
                              "Check that this user may use the socket (for example, that it "
                              "is in the socket's group).", err);
    case EAGAIN:
    case EINPROGRESS:
        return connect_failed(c, TE_ERR_TIMEOUT, true,
                              "the server did not accept the connection in time",
                              "The server may be overloaded; try again later.", err);
    default:
        return connect_failed(c, TE_ERR_CONNECT, true, strerror(e),
                              "Check that tedge-p11-server is running.", err);
    }
}

int proto_client_open(const char *socket_path, int timeout_ms, struct proto_client **out,
                      struct te_error *err)
{
    struct proto_client *c;
    int r;

    CHECK_ARG(socket_path != NULL && out != NULL, TE_ERR_INVALID);
    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "No memory for a tedge-p11-server client.");
    c->fd = -1;
    c->timeout_ms = timeout_ms;
    c->next_id = 1;
    pthread_mutex_init(&c->lock, NULL);
    c->path = strdup(socket_path);
    c->tx = buf_new(PROTO_MAX_FRAME);
    c->rx = buf_new(PROTO_MAX_FRAME);
    if (c->path == NULL || c->tx == NULL || c->rx == NULL) {
        r = te_error_set(err, TE_ERR_NOMEM, "No memory for a tedge-p11-server client.");
        goto exit;
    }
    r = client_connect(c, err);
exit:
    if (r != TE_OK)
        proto_client_close(c);
    else
        *out = c;
    return r;
}

void proto_client_close(struct proto_client *c)
{
    if (c == NULL)
        return;
    client_disconnect(c);
    buf_free(c->tx);
    buf_free(c->rx);
    free(c->path);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void proto_client_set_timeout(struct proto_client *c, int timeout_ms)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->timeout_ms = timeout_ms;
    pthread_mutex_unlock(&c->lock);
}

/* Milliseconds left of the request's deadline for the frame calls (-1: none). */
static int time_left(const struct proto_client *c, int64_t start)
{
    int64_t left;
    if (c->timeout_ms <= 0)
        return -1;
    left = start + c->timeout_ms - te_monotonic_ms();
    return left > 0 ? (int)left : 0;
}

/* One send + receive on the current connection. *broken tells the caller that the daemon had
 * dropped the connection before replying, so sending again is safe. */
static int exchange(struct proto_client *c, enum proto_op op, int64_t start, bool *broken,
                    struct te_error *err)
{
    enum proto_frame_event ev = PROTO_FRAME_IO_ERROR;
    struct te_error ferr = {0};
    int r;

    *broken = false;
    r = proto_frame_write_buf(c->fd, c->tx, time_left(c, start), &ferr);
    if (r == TE_OK)
        r = proto_frame_read(c->fd, c->rx, time_left(c, start), &ev, &ferr);
    if (r == TE_OK)
        return TE_OK;
    client_disconnect(c);
    if (r == TE_ERR_CLOSED) {
        *broken = true;
        return te_error_set(err, TE_ERR_CLOSED,
                            "tedge-p11-server at '%s' closed the connection before answering "
                            "the %s request (%s).", c->path, proto_op_name(op),
                            te_error_message(&ferr));
    }
    if (r == TE_ERR_TIMEOUT) {
        te_error_set(err, TE_ERR_TIMEOUT,
                     "tedge-p11-server at '%s' did not answer the %s request within %d ms. The "
                     "request was not sent again because the token may still be working on "
                     "it; check the daemon's log and the token.", c->path, proto_op_name(op),
                     c->timeout_ms);
        if (err != NULL)
            err->retryable = true;
        return TE_ERR_TIMEOUT;
    }
    if (r != TE_ERR_IO && r != TE_ERR_NOMEM)
        r = TE_ERR_PROTOCOL; /* an empty or oversized reply frame */
    return te_error_set(err, r,
                        "The exchange with tedge-p11-server at '%s' failed: %s",
                        c->path, te_error_message(&ferr));
}

static int call_locked(struct proto_client *c, struct proto_request *req,
                       struct proto_response *resp, struct te_error *err)
{
    struct te_error derr = {0};
    bool broken = false, reconnected = false;
    int64_t start;
    int r;

    memset(resp, 0, sizeof(*resp));
    req->has_id = true;
    req->id = c->next_id++;
    if (c->next_id > PROTO_REQUEST_ID_MAX)
        c->next_id = 1;
    if ((r = proto_encode_request(c->tx, req, err)) != TE_OK)
        goto exit;
    for (;;) {
        if (c->fd < 0 && (r = client_connect(c, err)) != TE_OK)
            goto exit;
        start = te_monotonic_ms();
        r = exchange(c, req->op, start, &broken, err);
        if (r == TE_OK || !broken || reconnected)
            break;
        /* the daemon restarted or dropped an idle connection: it never saw this request */
        log_debug("tedge-p11-server connection at '%s' was closed; reconnecting once", c->path);
        reconnected = true;
    }
    if (r != TE_OK)
        goto exit;
    r = proto_decode_response(buf_data(c->rx), buf_len(c->rx), req->op, resp, &derr);
    if (r == TE_OK && resp->has_id && resp->id != req->id)
        r = te_error_set(&derr, TE_ERR_PROTOCOL, "The reply is for request %llu, not %llu.",
                         (unsigned long long)resp->id, (unsigned long long)req->id);
    if (r != TE_OK) {
        client_disconnect(c); /* never trust the rest of that stream */
        r = te_error_set(err, TE_ERR_PROTOCOL,
                         "tedge-p11-server at '%s' sent an invalid reply to the %s request: %s",
                         c->path, proto_op_name(req->op), te_error_message(&derr));
        goto exit;
    }
    if (!resp->ok)
        r = proto_error_to_te(&resp->error, err);
exit:
    buf_reset(c->tx);
    buf_reset(c->rx);
    return r;
}

int proto_client_call(struct proto_client *c, struct proto_request *req,
                      struct proto_response *resp, struct te_error *err)
{
    int r;
    CHECK_ARG(c != NULL && req != NULL && resp != NULL, TE_ERR_INVALID);
    pthread_mutex_lock(&c->lock);
    r = call_locked(c, req, resp, err);
    pthread_mutex_unlock(&c->lock);
    return r;
}

/* ---- one wrapper per operation ------------------------------------------------------- */

static int set_key_ref(struct proto_request *req, const char *uri, const char *pin,
                       struct te_error *err)
{
    if (uri != NULL) {
        if (strlen(uri) > PROTO_URI_MAX)
            return te_error_set(err, TE_ERR_INVALID,
                                "The key URI is longer than %d bytes; use a shorter URI.",
                                PROTO_URI_MAX);
        memcpy(req->uri, uri, strlen(uri) + 1);
        req->has_uri = true;
    }
    if (pin != NULL) {
        if (strlen(pin) > PROTO_PIN_MAX)
            return te_error_set(err, TE_ERR_INVALID, "The PIN is longer than %d bytes.",
                                PROTO_PIN_MAX);
        memcpy(req->pin, pin, strlen(pin) + 1);
        req->has_pin = true;
    }
    return TE_OK;
}

/* Sends a request of kind op with an optional key reference; resp must be freed. */
static int simple_call(struct proto_client *c, enum proto_op op, const char *uri, const char *pin,
                       struct proto_response *resp, struct te_error *err)
{
    struct proto_request req;
    int r;

    proto_request_init(&req, op);
    memset(resp, 0, sizeof(*resp));
    if ((r = set_key_ref(&req, uri, pin, err)) == TE_OK)
        r = proto_client_call(c, &req, resp, err);
    proto_request_free(&req);
    return r;
}

int proto_client_ping(struct proto_client *c, struct proto_ping_result *out, struct te_error *err)
{
    struct proto_response resp;
    int r = simple_call(c, PROTO_OP_PING, NULL, NULL, &resp, err);
    if (r == TE_OK && out != NULL)
        *out = resp.ping;
    proto_response_free(&resp);
    return r;
}

int proto_client_sign(struct proto_client *c, const char *uri, const char *pin,
                      enum sig_scheme scheme, const uint8_t *digest, size_t digest_len,
                      uint8_t *sig, size_t sig_cap, size_t *sig_len, struct te_error *err)
{
    struct proto_request req;
    struct proto_response resp = {0};
    int r;

    CHECK_ARG(c != NULL && digest != NULL && sig != NULL && sig_len != NULL, TE_ERR_INVALID);
    proto_request_init(&req, PROTO_OP_SIGN);
    if ((r = set_key_ref(&req, uri, pin, err)) != TE_OK)
        goto exit;
    if (digest_len > PROTO_DIGEST_MAX) {
        r = te_error_set(err, TE_ERR_INVALID, "A digest of %zu bytes is longer than any hash.",
                         digest_len);
        goto exit;
    }
    req.scheme = scheme;
    memcpy(req.digest, digest, digest_len);
    req.digest_len = digest_len;
    if ((r = proto_client_call(c, &req, &resp, err)) != TE_OK)
        goto exit;
    if (resp.signature_len > sig_cap) {
        r = te_error_set(err, TE_ERR_TOO_LARGE,
                         "The signature is %zu bytes but the buffer holds only %zu bytes.",
                         resp.signature_len, sig_cap);
        goto exit;
    }
    memcpy(sig, resp.signature, resp.signature_len);
    *sig_len = resp.signature_len;
exit:
    proto_request_free(&req);
    proto_response_free(&resp);
    return r;
}

int proto_client_key_info(struct proto_client *c, const char *uri, const char *pin,
                          struct proto_key_info *out, struct te_error *err)
{
    struct proto_response resp;
    int r;
    CHECK_ARG(out != NULL, TE_ERR_INVALID);
    if ((r = simple_call(c, PROTO_OP_KEY_INFO, uri, pin, &resp, err)) == TE_OK)
        *out = resp.key;
    proto_response_free(&resp);
    return r;
}

int proto_client_public_key(struct proto_client *c, const char *uri, const char *pin, char **pem,
                            struct te_error *err)
{
    struct proto_response resp;
    int r;
    CHECK_ARG(pem != NULL, TE_ERR_INVALID);
    *pem = NULL;
    if ((r = simple_call(c, PROTO_OP_PUBLIC_KEY, uri, pin, &resp, err)) == TE_OK &&
        (*pem = strdup(resp.pem)) == NULL)
        r = te_error_set(err, TE_ERR_NOMEM, "No memory for the public key.");
    proto_response_free(&resp);
    return r;
}

int proto_client_list_tokens(struct proto_client *c, struct proto_token_info **out,
                             size_t *count, struct te_error *err)
{
    struct proto_response resp;
    int r;
    CHECK_ARG(out != NULL && count != NULL, TE_ERR_INVALID);
    *out = NULL;
    *count = 0;
    if ((r = simple_call(c, PROTO_OP_LIST_TOKENS, NULL, NULL, &resp, err)) == TE_OK) {
        *out = resp.tokens; /* ownership moves to the caller */
        *count = resp.token_count;
        resp.tokens = NULL;
    }
    proto_response_free(&resp);
    return r;
}

int proto_client_list_keys(struct proto_client *c, const char *uri, const char *pin,
                           struct proto_key_info **out, size_t *count, struct te_error *err)
{
    struct proto_response resp;
    int r;
    CHECK_ARG(out != NULL && count != NULL, TE_ERR_INVALID);
    *out = NULL;
    *count = 0;
    if ((r = simple_call(c, PROTO_OP_LIST_KEYS, uri, pin, &resp, err)) == TE_OK) {
        *out = resp.keys;
        *count = resp.key_count;
        resp.keys = NULL;
    }
    proto_response_free(&resp);
    return r;
}

int proto_client_status(struct proto_client *c, struct proto_status *out, struct te_error *err)
{
    struct proto_response resp;
    int r;
    CHECK_ARG(out != NULL, TE_ERR_INVALID);
    if ((r = simple_call(c, PROTO_OP_STATUS, NULL, NULL, &resp, err)) == TE_OK)
        *out = resp.status;
    proto_response_free(&resp);
    return r;
}
