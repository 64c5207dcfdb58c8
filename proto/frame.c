/* Frame I/O for the tedge-p11-server protocol (see frame.h and PROTOCOL.md): exact reads and
 * writes on a stream socket against one monotonic deadline per frame, using poll(2). */
#include "proto/frame.h"

#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

struct deadline {
    bool infinite;
    int64_t at_ms; /* CLOCK_MONOTONIC milliseconds */
};

static struct deadline deadline_in(int timeout_ms)
{
    struct deadline d = {.infinite = timeout_ms < 0, .at_ms = 0};
    if (!d.infinite)
        d.at_ms = te_monotonic_ms() + timeout_ms;
    return d;
}

/* Milliseconds left for poll(): -1 for no deadline, 0 once it has passed. */
static int deadline_left(const struct deadline *d)
{
    int64_t left;
    if (d->infinite)
        return -1;
    left = d->at_ms - te_monotonic_ms();
    if (left <= 0)
        return 0;
    return left > 1000000000 ? 1000000000 : (int)left;
}

/* Waits until fd is ready for events; TE_ERR_TIMEOUT when the deadline passes first.
 * POLLHUP/POLLERR count as ready: the next recv/send reports what happened. */
static int wait_ready(int fd, short events, const struct deadline *d)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    for (;;) {
        int left = deadline_left(d);
        int n = poll(&pfd, 1, left);
        if (n > 0 && (pfd.revents & POLLNVAL)) {
            errno = EBADF;
            return TE_ERR_IO;
        }
        if (n > 0)
            return TE_OK;
        if (n == 0)
            return TE_ERR_TIMEOUT;
        if (errno != EINTR)
            return TE_ERR_IO;
    }
}

static bool errno_is_reset(int e)
{
    return e == ECONNRESET || e == EPIPE || e == ECONNABORTED;
}

/* Reads exactly len bytes into p, counting them in *got. TE_ERR_CLOSED on EOF (or a reset:
 * *reset is then set), TE_ERR_TIMEOUT, or TE_ERR_IO with errno saved in *saved_errno. */
static int recv_exact(int fd, uint8_t *p, size_t len, size_t *got, const struct deadline *d,
                      bool *reset, int *saved_errno)
{
    while (*got < len) {
        ssize_t n = recv(fd, p + *got, len - *got, MSG_DONTWAIT);
        if (n > 0) {
            *got += (size_t)n;
            continue;
        }
        if (n == 0)
            return TE_ERR_CLOSED;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int r = wait_ready(fd, POLLIN, d);
            if (r == TE_ERR_IO)
                *saved_errno = errno;
            if (r != TE_OK)
                return r;
            continue;
        }
        *saved_errno = errno;
        if (errno_is_reset(errno)) {
            *reset = true;
            return TE_ERR_CLOSED;
        }
        return TE_ERR_IO;
    }
    return TE_OK;
}

const char *proto_frame_event_name(enum proto_frame_event ev)
{
    switch (ev) {
    case PROTO_FRAME_OK: return "ok";
    case PROTO_FRAME_EOF: return "eof";
    case PROTO_FRAME_RESET: return "reset";
    case PROTO_FRAME_TRUNCATED: return "truncated";
    case PROTO_FRAME_EMPTY: return "empty";
    case PROTO_FRAME_OVERSIZE: return "oversize";
    case PROTO_FRAME_TIMEOUT: return "timeout";
    case PROTO_FRAME_IO_ERROR: return "io_error";
    }
    return "unknown";
}

/* Maps a failed header or body read to the event and a message. */
static int read_failed(int r, bool in_body, size_t got, size_t want, bool reset, int saved_errno,
                       enum proto_frame_event *ev, struct te_error *err)
{
    bool mid_frame = in_body || got > 0;

    if (r == TE_ERR_TIMEOUT) {
        *ev = PROTO_FRAME_TIMEOUT;
        if (!mid_frame)
            return te_error_set(err, TE_ERR_TIMEOUT, "No frame arrived before the deadline.");
        return te_error_set(err, TE_ERR_TIMEOUT,
                            "The frame did not arrive before the deadline (%zu of %zu %s bytes).",
                            got, want, in_body ? "body" : "header");
    }
    if (r == TE_ERR_CLOSED && mid_frame) {
        *ev = PROTO_FRAME_TRUNCATED;
        return te_error_set(err, TE_ERR_CLOSED,
                            "The peer closed the connection in the middle of a frame "
                            "(%zu of %zu %s bytes): the frame is truncated.",
                            got, want, in_body ? "body" : "header");
    }
    if (r == TE_ERR_CLOSED && reset) {
        *ev = PROTO_FRAME_RESET;
        return te_error_set(err, TE_ERR_CLOSED, "The peer reset the connection: %s.",
                            strerror(saved_errno));
    }
    if (r == TE_ERR_CLOSED) {
        *ev = PROTO_FRAME_EOF;
        return te_error_set(err, TE_ERR_CLOSED, "The peer closed the connection.");
    }
    *ev = PROTO_FRAME_IO_ERROR;
    return te_error_set(err, TE_ERR_IO, "Reading a frame failed: %s.", strerror(saved_errno));
}

int proto_frame_read(int fd, struct buf *out, int timeout_ms, enum proto_frame_event *event,
                     struct te_error *err)
{
    struct deadline d = deadline_in(timeout_ms);
    enum proto_frame_event ev_local = PROTO_FRAME_IO_ERROR;
    enum proto_frame_event *ev = event ? event : &ev_local;
    uint8_t hdr[PROTO_FRAME_HEADER_LEN];
    uint8_t *body = NULL;
    size_t got = 0, limit;
    uint32_t len = 0;
    bool reset = false;
    int saved_errno = 0;
    int r;

    CHECK_ARG(fd >= 0 && out != NULL, TE_ERR_INVALID);
    buf_reset(out);
    limit = buf_max(out) < PROTO_MAX_FRAME ? buf_max(out) : PROTO_MAX_FRAME;

    r = recv_exact(fd, hdr, sizeof(hdr), &got, &d, &reset, &saved_errno);
    if (r != TE_OK) {
        r = read_failed(r, false, got, sizeof(hdr), reset, saved_errno, ev, err);
        goto exit;
    }
    len = get_u32be(hdr);
    if (len == 0) {
        *ev = PROTO_FRAME_EMPTY;
        r = te_error_set(err, TE_ERR_MALFORMED, "Received an empty frame (length 0).");
        goto exit;
    }
    if (len > limit) {
        *ev = PROTO_FRAME_OVERSIZE;
        r = te_error_set(err, TE_ERR_TOO_LARGE,
                         "Received a frame of %lu bytes; the limit is %zu bytes.",
                         (unsigned long)len, limit);
        goto exit;
    }
    if ((r = buf_reserve(out, len, &body)) != TE_OK) {
        *ev = PROTO_FRAME_IO_ERROR;
        r = te_error_set(err, r, "No memory for a frame of %lu bytes.", (unsigned long)len);
        goto exit;
    }
    got = 0;
    r = recv_exact(fd, body, len, &got, &d, &reset, &saved_errno);
    if (r != TE_OK) {
        te_wipe(body, got); /* a partial body may hold a PIN */
        r = read_failed(r, true, got, len, reset, saved_errno, ev, err);
        goto exit;
    }
    buf_commit(out, len);
    *ev = PROTO_FRAME_OK;
exit:
    te_wipe(hdr, sizeof(hdr));
    return r;
}

int proto_frame_write(int fd, const uint8_t *body, size_t len, int timeout_ms,
                      struct te_error *err)
{
    struct deadline d = deadline_in(timeout_ms);
    uint8_t hdr[PROTO_FRAME_HEADER_LEN];
    size_t total = sizeof(hdr) + len, sent = 0;
    int r = TE_OK;

    CHECK_ARG(fd >= 0 && (body != NULL || len == 0), TE_ERR_INVALID);
    if (len == 0)
        return te_error_set(err, TE_ERR_INVALID, "Refusing to send an empty frame.");
    if (len > PROTO_MAX_FRAME)
        return te_error_set(err, TE_ERR_TOO_LARGE,
                            "A message of %zu bytes does not fit in a frame (limit %d bytes).",
                            len, PROTO_MAX_FRAME);
    put_u32be(hdr, (uint32_t)len);

    while (sent < total) {
        struct iovec iov[2];
        struct msghdr msg = {.msg_iov = iov};
        ssize_t n;

        /* header and body in one sendmsg, so a small frame is a single segment */
        if (sent < sizeof(hdr)) {
            iov[0] = (struct iovec){.iov_base = hdr + sent, .iov_len = sizeof(hdr) - sent};
            iov[1] = (struct iovec){.iov_base = (void *)body, .iov_len = len};
            msg.msg_iovlen = 2;
        } else {
            size_t off = sent - sizeof(hdr);
            iov[0] = (struct iovec){.iov_base = (void *)(body + off), .iov_len = len - off};
            msg.msg_iovlen = 1;
        }
        n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) {
            sent += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            r = wait_ready(fd, POLLOUT, &d);
            if (r == TE_ERR_TIMEOUT) {
                r = te_error_set(err, TE_ERR_TIMEOUT,
                                 "The peer did not take the frame before the deadline "
                                 "(%zu of %zu bytes sent).", sent, total);
                goto exit;
            }
            if (r != TE_OK) {
                r = te_error_set(err, TE_ERR_IO, "Waiting to send a frame failed: %s.",
                                 strerror(errno));
                goto exit;
            }
            continue;
        }
        if (errno_is_reset(errno)) {
            r = te_error_set(err, TE_ERR_CLOSED, "The peer closed the connection: %s.",
                             strerror(errno));
            goto exit;
        }
        r = te_error_set(err, TE_ERR_IO, "Sending a frame failed: %s.", strerror(errno));
        goto exit;
    }
exit:
    return r;
}

int proto_frame_write_buf(int fd, const struct buf *body, int timeout_ms, struct te_error *err)
{
    CHECK_ARG(body != NULL, TE_ERR_INVALID);
    return proto_frame_write(fd, buf_data(body), buf_len(body), timeout_ms, err);
}
