/* One client connection: wait for a frame (idle timeout), read it (frame deadline), dispatch it,
 * write the reply; framing errors get one error reply and, when the stream is lost, a close. */
#include "p11-server/server.h"

#include <errno.h>
#include <poll.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/frame.h"

enum wait_result { WAIT_READY, WAIT_IDLE, WAIT_STOP, WAIT_ERROR };

/* Waits until fd has something (data, EOF or an error) or stop_fd fires or the idle timeout
 * passes. A stop request wins: a shutting-down server starts no new request. */
static enum wait_result wait_for_frame(int fd, int stop_fd, int idle_ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
    nfds_t n = stop_fd >= 0 ? 2 : 1;
    int64_t start = te_monotonic_ms();
    int left = idle_ms, r;

    for (;;) {
        r = poll(p, n, left);
        if (r > 0)
            break;
        if (r == 0)
            return WAIT_IDLE;
        if (errno != EINTR)
            return WAIT_ERROR;
        left = idle_ms - (int)(te_monotonic_ms() - start);
        if (left <= 0)
            return WAIT_IDLE;
    }
    if (n == 2 && (p[1].revents & POLLIN) != 0)
        return WAIT_STOP;
    return WAIT_READY;
}

/* The error a client gets for a frame that broke the stream; the frame layer's own message
 * is kept where it says more (the oversized length). */
static void frame_error(enum proto_frame_event ev, const struct srv_limits *lim,
                        struct te_error *err)
{
    if (ev == PROTO_FRAME_TRUNCATED) {
        te_error_set(err, TE_ERR_MALFORMED, "The connection ended in the middle of a frame; "
                     "the partial request was discarded.");
    } else if (ev == PROTO_FRAME_TIMEOUT) {
        te_error_set(err, TE_ERR_TIMEOUT, "No complete request arrived within %d ms of its "
                     "first byte; closing the connection.", lim->frame_timeout_ms);
        err->retryable = true;
    } else if (err->code != TE_ERR_TOO_LARGE) {
        te_error_set(err, TE_ERR_TOO_LARGE, "The frame is larger than %d bytes; closing the "
                     "connection.", PROTO_MAX_FRAME);
    }
}

/* Sends reply; false when the connection is no longer usable. An empty reply means even an
 * error could not be encoded: closing is then the only answer a client can notice. */
static bool send_reply(int fd, const struct buf *reply, int timeout_ms, const struct srv_peer *peer)
{
    struct te_error err = {0};

    if (buf_len(reply) == 0)
        return false;
    if (proto_frame_write_buf(fd, reply, timeout_ms, &err) == TE_OK)
        return true;
    log_debug("reply to peer_pid=%ld not sent: %s", (long)peer->pid, te_error_message(&err));
    return false;
}

void srv_conn_serve(struct srv_ctx *ctx, const struct srv_limits *lim, int fd,
                    const struct srv_peer *peer, int stop_fd)
{
    struct buf *in = buf_new(PROTO_MAX_FRAME), *out = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev;
    struct te_error err;
    bool keep_open = true;

    if (in == NULL || out == NULL) {
        log_error("Out of memory: closing the connection of peer_pid=%ld", (long)peer->pid);
        goto exit;
    }
    while (keep_open) {
        enum wait_result w = wait_for_frame(fd, stop_fd, lim->idle_timeout_ms);
        bool close_after = false;

        if (w == WAIT_IDLE)
            log_debug("closing the idle connection of peer_pid=%ld", (long)peer->pid);
        if (w != WAIT_READY)
            break;
        te_error_clear(&err);
        proto_frame_read(fd, in, lim->frame_timeout_ms, &ev, &err);
        switch (ev) {
        case PROTO_FRAME_OK:
            srv_dispatch(ctx, peer, buf_data(in), buf_len(in), out, &close_after);
            break;
        case PROTO_FRAME_EMPTY:
            /* the framing is intact: answer and carry on */
            srv_reply_error(peer, &err, out);
            break;
        case PROTO_FRAME_OVERSIZE:
        case PROTO_FRAME_TRUNCATED:
        case PROTO_FRAME_TIMEOUT:
            /* the stream is out of sync: say why once (best effort), then hang up */
            frame_error(ev, lim, &err);
            srv_reply_error(peer, &err, out);
            close_after = true;
            break;
        case PROTO_FRAME_EOF:
        case PROTO_FRAME_RESET:
        case PROTO_FRAME_IO_ERROR:
        default:
            log_debug("connection of peer_pid=%ld ended: %s", (long)peer->pid,
                      proto_frame_event_name(ev));
            goto exit;
        }
        keep_open = send_reply(fd, out, lim->frame_timeout_ms, peer) && !close_after;
    }
exit:
    buf_free(in);
    buf_free(out);
}
