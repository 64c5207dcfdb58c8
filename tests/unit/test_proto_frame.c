/* Unit tests for proto/frame: exact and split reads over socketpairs, clean EOF vs truncated
 * frames, resets, oversize and zero lengths, deadlines on stalled peers, MSG_NOSIGNAL writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "proto/frame.h"

#define SHORT_MS 100 /* deadline for stall tests: long enough to be real, short for the suite */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void write_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        b += n;
        len -= (size_t)n;
    }
}

static void write_header(int fd, uint32_t len)
{
    uint8_t h[4];
    put_u32be(h, len);
    write_all(fd, h, 4);
}

/* A peer that sends bytes in small pieces with pauses, so reads see partial frames. */
struct dribbler {
    int fd;
    const uint8_t *data;
    size_t len;
    size_t chunk;
    int pause_us;
    bool close_after;
};

static void *dribble(void *arg)
{
    struct dribbler *d = arg;
    for (size_t off = 0; off < d->len; off += d->chunk) {
        size_t n = d->len - off < d->chunk ? d->len - off : d->chunk;
        write_all(d->fd, d->data + off, n);
        usleep((useconds_t)d->pause_us);
    }
    if (d->close_after)
        close(d->fd);
    return NULL;
}

static void test_write_then_read_exact(void **state)
{
    (void)state;
    int sv[2];
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev = PROTO_FRAME_IO_ERROR;
    struct te_error err = {0};
    uint8_t raw[64];
    const char *body = "{\"v\":1,\"op\":\"ping\",\"id\":1}";

    make_pair(sv);
    assert_int_equal(proto_frame_write(sv[0], (const uint8_t *)body, strlen(body), 1000, &err),
                     TE_OK);
    /* the bytes on the wire: u32 big-endian length, then the body */
    assert_int_equal(recv(sv[1], raw, sizeof(raw), 0), 4 + strlen(body));
    assert_memory_equal(raw, "\x00\x00\x00\x1a", 4);
    assert_memory_equal(raw + 4, body, strlen(body));

    assert_int_equal(proto_frame_write(sv[0], (const uint8_t *)body, strlen(body), 1000, &err),
                     TE_OK);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, &ev, &err), TE_OK);
    assert_int_equal(ev, PROTO_FRAME_OK);
    assert_int_equal(buf_len(b), strlen(body));
    assert_memory_equal(buf_data(b), body, strlen(body));
    buf_free(b);
    close(sv[0]);
    close(sv[1]);
}

static void test_split_across_many_small_writes(void **state)
{
    (void)state;
    int sv[2];
    pthread_t t;
    uint8_t wire[4 + 3000];
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev;
    struct te_error err = {0};

    put_u32be(wire, 3000);
    for (size_t i = 0; i < 3000; i++)
        wire[4 + i] = (uint8_t)(i * 7);
    make_pair(sv);
    /* 7-byte pieces: the header arrives as 4 + 3 and every read of the body sees part of it */
    struct dribbler d = {.fd = sv[0], .data = wire, .len = sizeof(wire), .chunk = 7,
                         .pause_us = 50};
    assert_int_equal(pthread_create(&t, NULL, dribble, &d), 0);
    assert_int_equal(proto_frame_read(sv[1], b, 5000, &ev, &err), TE_OK);
    pthread_join(t, NULL);
    assert_int_equal(ev, PROTO_FRAME_OK);
    assert_int_equal(buf_len(b), 3000);
    assert_memory_equal(buf_data(b), wire + 4, 3000);
    buf_free(b);
    close(sv[0]);
    close(sv[1]);
}

static void test_split_header_while_reading_nonblocking(void **state)
{
    (void)state;
    int sv[2];
    pthread_t t;
    uint8_t wire[4 + 5] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    struct te_error err = {0};

    make_pair(sv);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    struct dribbler d = {.fd = sv[0], .data = wire, .len = sizeof(wire), .chunk = 1,
                         .pause_us = 3000};
    assert_int_equal(pthread_create(&t, NULL, dribble, &d), 0);
    assert_int_equal(proto_frame_read(sv[1], b, 5000, NULL, &err), TE_OK);
    pthread_join(t, NULL);
    assert_int_equal(buf_len(b), 5);
    assert_memory_equal(buf_data(b), "hello", 5);
    buf_free(b);
    close(sv[0]);
    close(sv[1]);
}

static void test_back_to_back_frames_are_not_over_read(void **state)
{
    (void)state;
    int sv[2];
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    struct te_error err = {0};
    const uint8_t two[] = {0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 2, 'x', 'y'};

    make_pair(sv);
    write_all(sv[0], two, sizeof(two)); /* both frames in one segment */
    assert_int_equal(proto_frame_read(sv[1], b, 1000, NULL, &err), TE_OK);
    assert_int_equal(buf_len(b), 3);
    assert_memory_equal(buf_data(b), "abc", 3);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, NULL, &err), TE_OK);
    assert_int_equal(buf_len(b), 2);
    assert_memory_equal(buf_data(b), "xy", 2);
    buf_free(b);
    close(sv[0]);
    close(sv[1]);
}

static void test_eof_between_frames_is_clean_close(void **state)
{
    (void)state;
    int sv[2];
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev = PROTO_FRAME_OK;
    struct te_error err = {0};

    make_pair(sv);
    write_all(sv[0], "\x00\x00\x00\x01Z", 5);
    close(sv[0]);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, &ev, &err), TE_OK);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, &ev, &err), TE_ERR_CLOSED);
    assert_int_equal(ev, PROTO_FRAME_EOF);
    assert_int_equal(buf_len(b), 0);
    assert_non_null(strstr(err.msg, "closed the connection"));
    buf_free(b);
    close(sv[1]);
}

static void test_eof_mid_header_is_truncated(void **state)
{
    (void)state;
    int sv[2];
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev = PROTO_FRAME_OK;
    struct te_error err = {0};

    make_pair(sv);
    write_all(sv[0], "\x00\x00", 2);
    close(sv[0]);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, &ev, &err), TE_ERR_CLOSED);
    assert_int_equal(ev, PROTO_FRAME_TRUNCATED);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_non_null(strstr(err.msg, "2 of 4 header bytes"));
    buf_free(b);
    close(sv[1]);
}

static void test_eof_mid_body_is_truncated(void **state)
{
    (void)state;
    int sv[2];
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev = PROTO_FRAME_OK;
    struct te_error err = {0};

    make_pair(sv);
    write_header(sv[0], 10);
    write_all(sv[0], "12345", 5);
    close(sv[0]);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, &ev, &err), TE_ERR_CLOSED);
    assert_int_equal(ev, PROTO_FRAME_TRUNCATED);
    assert_non_null(strstr(err.msg, "5 of 10 body bytes"));
    assert_int_equal(buf_len(b), 0); /* nothing half-read is handed out */
    buf_free(b);
    close(sv[1]);
}

static void test_reset_by_peer(void **state)
{
    (void)state;
    int sv[2];
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev = PROTO_FRAME_OK;
    struct te_error err = {0};

    make_pair(sv);
    /* closing with unread data in its queue makes the peer see ECONNRESET, not EOF */
    write_all(sv[1], "unread", 6);
    close(sv[0]);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, &ev, &err), TE_ERR_CLOSED);
    assert_int_equal(ev, PROTO_FRAME_RESET);
    buf_free(b);
    close(sv[1]);
}

static void test_oversize_rejected_before_reading_body(void **state)
{
    (void)state;
    int sv[2];
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev = PROTO_FRAME_OK;
    struct te_error err = {0};
    char rest[16] = {0};

    make_pair(sv);
    write_header(sv[0], PROTO_MAX_FRAME + 1);
    write_all(sv[0], "BODY", 4);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, &ev, &err), TE_ERR_TOO_LARGE);
    assert_int_equal(ev, PROTO_FRAME_OVERSIZE);
    assert_non_null(strstr(err.msg, "65537"));
    /* the body was not consumed: it is still in the socket */
    assert_int_equal(recv(sv[1], rest, sizeof(rest), MSG_DONTWAIT), 4);
    assert_memory_equal(rest, "BODY", 4);

    /* the largest length a u32 can say, with no body at all: refused at once, no allocation */
    write_header(sv[0], 0xFFFFFFFFu);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, &ev, &err), TE_ERR_TOO_LARGE);
    assert_int_equal(ev, PROTO_FRAME_OVERSIZE);

    /* exactly PROTO_MAX_FRAME is allowed */
    uint8_t *big = calloc(1, PROTO_MAX_FRAME);
    assert_non_null(big);
    memset(big, 'q', PROTO_MAX_FRAME);
    pthread_t t;
    struct dribbler d = {.fd = sv[0], .data = big, .len = PROTO_MAX_FRAME,
                         .chunk = PROTO_MAX_FRAME, .pause_us = 0};
    write_header(sv[0], PROTO_MAX_FRAME);
    assert_int_equal(pthread_create(&t, NULL, dribble, &d), 0);
    assert_int_equal(proto_frame_read(sv[1], b, 5000, &ev, &err), TE_OK);
    pthread_join(t, NULL);
    assert_int_equal(buf_len(b), PROTO_MAX_FRAME);
    free(big);
    buf_free(b);
    close(sv[0]);
    close(sv[1]);
}

static void test_smaller_buffer_max_is_the_limit(void **state)
{
    (void)state;
    int sv[2];
    struct buf *b = buf_new(16);
    enum proto_frame_event ev = PROTO_FRAME_OK;
    struct te_error err = {0};

    make_pair(sv);
    write_header(sv[0], 17);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, &ev, &err), TE_ERR_TOO_LARGE);
    assert_int_equal(ev, PROTO_FRAME_OVERSIZE);
    buf_free(b);
    close(sv[0]);
    close(sv[1]);
}

static void test_zero_length_is_malformed_and_framing_survives(void **state)
{
    (void)state;
    int sv[2];
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev = PROTO_FRAME_OK;
    struct te_error err = {0};

    make_pair(sv);
    write_all(sv[0], "\x00\x00\x00\x00\x00\x00\x00\x02ok", 10);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, &ev, &err), TE_ERR_MALFORMED);
    assert_int_equal(ev, PROTO_FRAME_EMPTY);
    assert_int_equal(proto_frame_read(sv[1], b, 1000, &ev, &err), TE_OK);
    assert_memory_equal(buf_data(b), "ok", 2);
    buf_free(b);
    close(sv[0]);
    close(sv[1]);
}

static void test_timeout_on_silent_peer(void **state)
{
    (void)state;
    int sv[2];
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev = PROTO_FRAME_OK;
    struct te_error err = {0};
    int64_t t0;

    make_pair(sv);
    t0 = now_ms();
    assert_int_equal(proto_frame_read(sv[1], b, SHORT_MS, &ev, &err), TE_ERR_TIMEOUT);
    assert_true(now_ms() - t0 >= SHORT_MS - 5); /* did not give up early */
    assert_int_equal(ev, PROTO_FRAME_TIMEOUT);
    /* timeout 0: only what is already queued */
    assert_int_equal(proto_frame_read(sv[1], b, 0, &ev, &err), TE_ERR_TIMEOUT);
    write_all(sv[0], "\x00\x00\x00\x01!", 5);
    assert_int_equal(proto_frame_read(sv[1], b, 0, &ev, &err), TE_OK);
    buf_free(b);
    close(sv[0]);
    close(sv[1]);
}

static void test_timeout_on_peer_stalled_mid_frame(void **state)
{
    (void)state;
    int sv[2];
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev = PROTO_FRAME_OK;
    struct te_error err = {0};
    pthread_t t;
    uint8_t wire[4 + 8] = {0, 0, 0, 100, 'p', 'a', 'r', 't', 'i', 'a', 'l', '!'};

    make_pair(sv);
    /* the peer keeps sending a byte now and then but never finishes: one deadline per frame,
     * not per read, so the trickle does not keep the frame alive */
    struct dribbler d = {.fd = sv[0], .data = wire, .len = sizeof(wire), .chunk = 1,
                         .pause_us = 20000};
    assert_int_equal(pthread_create(&t, NULL, dribble, &d), 0);
    int64_t t0 = now_ms();
    assert_int_equal(proto_frame_read(sv[1], b, SHORT_MS, &ev, &err), TE_ERR_TIMEOUT);
    int64_t took = now_ms() - t0;
    pthread_join(t, NULL);
    assert_int_equal(ev, PROTO_FRAME_TIMEOUT);
    assert_true(took >= SHORT_MS - 5);
    assert_true(took < 10 * SHORT_MS);
    assert_non_null(strstr(err.msg, "did not arrive before the deadline"));
    buf_free(b);
    close(sv[0]);
    close(sv[1]);
}

static void test_write_to_closed_peer_is_closed_without_sigpipe(void **state)
{
    (void)state;
    int sv[2];
    struct te_error err = {0};

    make_pair(sv);
    close(sv[1]);
    /* without MSG_NOSIGNAL this would kill the test process with SIGPIPE */
    assert_int_equal(proto_frame_write(sv[0], (const uint8_t *)"x", 1, 1000, &err),
                     TE_ERR_CLOSED);
    close(sv[0]);
}

static void test_write_times_out_when_peer_does_not_read(void **state)
{
    (void)state;
    int sv[2];
    struct te_error err = {0};
    int small = 4096, r = TE_OK;
    uint8_t *body = calloc(1, PROTO_MAX_FRAME);

    assert_non_null(body);
    make_pair(sv);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    for (int i = 0; i < 64 && r == TE_OK; i++)
        r = proto_frame_write(sv[0], body, PROTO_MAX_FRAME, SHORT_MS, &err);
    assert_int_equal(r, TE_ERR_TIMEOUT);
    assert_non_null(strstr(err.msg, "deadline"));
    free(body);
    close(sv[0]);
    close(sv[1]);
}

static void test_write_refuses_empty_and_oversize(void **state)
{
    (void)state;
    int sv[2];
    struct te_error err = {0};
    uint8_t *big = calloc(1, PROTO_MAX_FRAME + 1);

    make_pair(sv);
    assert_int_equal(proto_frame_write(sv[0], big, 0, 1000, &err), TE_ERR_INVALID);
    assert_int_equal(proto_frame_write(sv[0], big, PROTO_MAX_FRAME + 1, 1000, &err),
                     TE_ERR_TOO_LARGE);
    /* nothing went out */
    char c;
    assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    free(big);
    close(sv[0]);
    close(sv[1]);
}

static void test_event_names(void **state)
{
    (void)state;
    assert_string_equal(proto_frame_event_name(PROTO_FRAME_TRUNCATED), "truncated");
    assert_string_equal(proto_frame_event_name(PROTO_FRAME_OVERSIZE), "oversize");
    assert_string_equal(proto_frame_event_name((enum proto_frame_event)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_then_read_exact),
        cmocka_unit_test(test_split_across_many_small_writes),
        cmocka_unit_test(test_split_header_while_reading_nonblocking),
        cmocka_unit_test(test_back_to_back_frames_are_not_over_read),
        cmocka_unit_test(test_eof_between_frames_is_clean_close),
        cmocka_unit_test(test_eof_mid_header_is_truncated),
        cmocka_unit_test(test_eof_mid_body_is_truncated),
        cmocka_unit_test(test_reset_by_peer),
        cmocka_unit_test(test_oversize_rejected_before_reading_body),
        cmocka_unit_test(test_smaller_buffer_max_is_the_limit),
        cmocka_unit_test(test_zero_length_is_malformed_and_framing_survives),
        cmocka_unit_test(test_timeout_on_silent_peer),
        cmocka_unit_test(test_timeout_on_peer_stalled_mid_frame),
        cmocka_unit_test(test_write_to_closed_peer_is_closed_without_sigpipe),
        cmocka_unit_test(test_write_times_out_when_peer_does_not_read),
        cmocka_unit_test(test_write_refuses_empty_and_oversize),
        cmocka_unit_test(test_event_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
