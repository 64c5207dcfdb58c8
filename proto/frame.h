/* Framing of the tedge-p11-server protocol: a 4-byte big-endian body length, then the body.
 * Reads and writes one frame under a deadline, on blocking or non-blocking stream sockets. */
#ifndef TEDGE_PROTO_FRAME_H
#define TEDGE_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct te_error;

#define PROTO_MAX_FRAME (64 * 1024) /* largest body either side accepts; a sign request is < 2 KiB */
#define PROTO_FRAME_HEADER_LEN 4    /* u32 big-endian body length */

/* Why proto_frame_read() stopped. The return code says what to do with the connection; the
 * event says why, for logs and counters. */
enum proto_frame_event {
    PROTO_FRAME_OK = 0,     /* TE_OK: a complete body is in out */
    PROTO_FRAME_EOF,        /* TE_ERR_CLOSED: clean close between frames */
    PROTO_FRAME_RESET,      /* TE_ERR_CLOSED: ECONNRESET/EPIPE before a byte of this frame */
    PROTO_FRAME_TRUNCATED,  /* TE_ERR_CLOSED: EOF or reset inside a header or body */
    PROTO_FRAME_EMPTY,      /* TE_ERR_MALFORMED: zero length; framing is intact */
    PROTO_FRAME_OVERSIZE,   /* TE_ERR_TOO_LARGE: length above the limit; body left unread */
    PROTO_FRAME_TIMEOUT,    /* TE_ERR_TIMEOUT: the deadline passed (maybe mid-frame) */
    PROTO_FRAME_IO_ERROR,   /* TE_ERR_IO: poll/recv failed otherwise */
};

const char *proto_frame_event_name(enum proto_frame_event ev);

/* Reads one frame's body into out (reset first). The limit is the smaller of PROTO_MAX_FRAME
 * and buf_max(out), checked on the header before anything is allocated. timeout_ms is the
 * deadline for the whole frame from the call (< 0: none; 0: only what is already queued).
 * Never reads past the frame, so the next call starts on the next header. event may be NULL.
 * After anything but TE_OK and TE_ERR_MALFORMED the connection is unusable: close it. */
int proto_frame_read(int fd, struct buf *out, int timeout_ms, enum proto_frame_event *event,
                     struct te_error *err);

/* Writes header + body (1..PROTO_MAX_FRAME bytes) with send(MSG_NOSIGNAL), so a closed peer
 * gives TE_ERR_CLOSED instead of SIGPIPE. TE_ERR_TIMEOUT when the deadline passes; the frame
 * may then be partly sent, so close the connection. TE_ERR_TOO_LARGE / TE_ERR_INVALID for a
 * body that no frame can carry. */
int proto_frame_write(int fd, const uint8_t *body, size_t len, int timeout_ms,
                      struct te_error *err);

/* proto_frame_write() of a buffer's contents. */
int proto_frame_write_buf(int fd, const struct buf *body, int timeout_ms, struct te_error *err);

#endif
