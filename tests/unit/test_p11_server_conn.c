/* Unit tests for tedge-p11-server's connection loop, dispatcher and accept loop against the mock
 * PKCS#11 module ($TEDGE_MOCK_MODULE): real signatures, framing errors, deadlines, peer checks,
 * the busy reply and a signal-driven shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/base64.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/p11.h"
#include "p11-server/server.h"
#include "proto/frame.h"
#include "proto/msg.h"

#define TEST_IO_MS 5000 /* generous: only a broken daemon makes a test wait this long */

static struct srv_ctx ctx;
static int devnull = -1;

struct conn_thread {
    pthread_t th;
    struct srv_limits lim;
    struct srv_peer peer;
    int fd;
    int stop_fd;
};

static void *serve_thread(void *arg)
{
    struct conn_thread *t = arg;
    srv_conn_serve(&ctx, &t->lim, t->fd, &t->peer, t->stop_fd);
    close(t->fd);
    return NULL;
}

/* Starts a connection handler on one end of a socketpair; returns the client end. */
static int start_conn(struct conn_thread *t, int frame_ms, int idle_ms, bool allowed, bool admin,
                      int stop_fd)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    memset(t, 0, sizeof(*t));
    t->lim = (struct srv_limits){.max_clients = 1, .frame_timeout_ms = frame_ms,
                                 .idle_timeout_ms = idle_ms};
    t->peer = (struct srv_peer){.pid = getpid(), .uid = 1000, .gid = 1000, .allowed = allowed,
                                .admin = admin};
    t->fd = sv[1];
    t->stop_fd = stop_fd;
    assert_int_equal(pthread_create(&t->th, NULL, serve_thread, t), 0);
    return sv[0];
}

static void send_json(int fd, const char *json)
{
    assert_int_equal(proto_frame_write(fd, (const uint8_t *)json, strlen(json), TEST_IO_MS, NULL),
                     TE_OK);
}

static void send_bytes(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads one reply to op; returns its error code (TE_OK for ok:true). */
static int read_reply(int fd, enum proto_op op, struct proto_response *resp)
{
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev;
    struct te_error err = {0};

    assert_int_equal(proto_frame_read(fd, b, TEST_IO_MS, &ev, &err), TE_OK);
    assert_int_equal(proto_decode_response(buf_data(b), buf_len(b), op, resp, &err), TE_OK);
    buf_free(b);
    return resp->ok ? TE_OK : resp->error.code;
}

/* True when the daemon closed the connection (EOF) within the test deadline. */
static bool closed_by_peer(int fd)
{
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    enum proto_frame_event ev;
    int r = proto_frame_read(fd, b, TEST_IO_MS, &ev, NULL);
    buf_free(b);
    return r == TE_ERR_CLOSED && ev == PROTO_FRAME_EOF;
}

static int expect_error(int fd, enum proto_op op)
{
    struct proto_response resp;
    int code = read_reply(fd, op, &resp);
    assert_false(resp.ok);
    proto_response_free(&resp);
    return code;
}

static void ping_ok(int fd)
{
    struct proto_response resp;
    send_json(fd, "{\"v\":1,\"op\":\"ping\",\"id\":5}");
    assert_int_equal(read_reply(fd, PROTO_OP_PING, &resp), TE_OK);
    assert_true(resp.has_id);
    assert_int_equal(resp.id, 5);
    assert_string_equal(resp.ping.server_version, TEDGE_VERSION);
    proto_response_free(&resp);
}

static void finish(struct conn_thread *t, int client)
{
    close(client);
    pthread_join(t->th, NULL);
}

static int group_setup(void **state)
{
    const char *module = getenv("TEDGE_MOCK_MODULE");
    struct p11_config cfg = {.module_path = module, .default_pin = "1234"};
    struct te_error err = {0};

    (void)state;
    if (module == NULL || module[0] == '\0') {
        fprintf(stderr, "TEDGE_MOCK_MODULE must name the mock PKCS#11 module (make unit sets it)\n");
        return -1;
    }
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    log_set_fd(devnull);
    log_set_level(LOG_LVL_TRACE);
    if (p11_open(&cfg, &ctx.p11, &err) != TE_OK) {
        fprintf(stderr, "p11_open(%s): %s\n", module, te_error_message(&err));
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    p11_close(ctx.p11);
    close(devnull);
    return 0;
}

static void test_sign_and_verify_with_public_key(void **state)
{
    (void)state;
    struct conn_thread t;
    struct proto_response pk, sig;
    unsigned char digest[32], b64[64];
    char req[512];
    size_t b64len;
    mbedtls_pk_context pub;
    int c = start_conn(&t, TEST_IO_MS, TEST_IO_MS, true, false, -1);

    ping_ok(c);
    send_json(c, "{\"v\":1,\"op\":\"public_key\",\"id\":1,\"uri\":\"pkcs11:token=mock;object=mock-ec\"}");
    assert_int_equal(read_reply(c, PROTO_OP_PUBLIC_KEY, &pk), TE_OK);
    assert_non_null(strstr(pk.pem, "BEGIN PUBLIC KEY"));

    assert_int_equal(mbedtls_sha256_ret((const unsigned char *)"hello", 5, digest, 0), 0);
    assert_int_equal(mbedtls_base64_encode(b64, sizeof(b64), &b64len, digest, sizeof(digest)), 0);
    snprintf(req, sizeof(req), "{\"v\":1,\"op\":\"sign\",\"id\":2,\"uri\":\"pkcs11:token=mock;"
             "object=mock-ec\",\"scheme\":\"ecdsa_sha256\",\"digest\":\"%s\"}", b64);
    for (int i = 0; i < 20; i++) { /* one persistent connection, many requests */
        send_json(c, req);
        assert_int_equal(read_reply(c, PROTO_OP_SIGN, &sig), TE_OK);
        mbedtls_pk_init(&pub);
        assert_int_equal(mbedtls_pk_parse_public_key(&pub, (const unsigned char *)pk.pem,
                                                     strlen(pk.pem) + 1), 0);
        assert_int_equal(mbedtls_pk_verify(&pub, MBEDTLS_MD_SHA256, digest, sizeof(digest),
                                           sig.signature, sig.signature_len), 0);
        digest[0] ^= 1; /* and a different digest does not verify */
        assert_int_not_equal(mbedtls_pk_verify(&pub, MBEDTLS_MD_SHA256, digest, sizeof(digest),
                                               sig.signature, sig.signature_len), 0);
        digest[0] ^= 1;
        mbedtls_pk_free(&pub);
        proto_response_free(&sig);
    }
    proto_response_free(&pk);
    finish(&t, c);
}

static void test_p11_errors_map_to_codes(void **state)
{
    (void)state;
    struct conn_thread t;
    int c = start_conn(&t, TEST_IO_MS, TEST_IO_MS, true, false, -1);

    send_json(c, "{\"v\":1,\"op\":\"key_info\",\"uri\":\"pkcs11:token=mock;object=nope\"}");
    assert_int_equal(expect_error(c, PROTO_OP_KEY_INFO), TE_ERR_NO_KEY);
    send_json(c, "{\"v\":1,\"op\":\"sign\",\"uri\":\"pkcs11:token=mock;object=mock-ec\","
                 "\"scheme\":\"rsa_pkcs1_sha256\",\"digest\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}");
    assert_int_equal(expect_error(c, PROTO_OP_SIGN), TE_ERR_MECHANISM);
    ping_ok(c); /* still open */
    finish(&t, c);
}

static void test_garbage_keeps_the_connection(void **state)
{
    (void)state;
    struct conn_thread t;
    uint8_t zero[4] = {0, 0, 0, 0};
    int c = start_conn(&t, TEST_IO_MS, TEST_IO_MS, true, false, -1);

    send_json(c, "this is not json");
    assert_int_equal(expect_error(c, PROTO_OP_PING), TE_ERR_MALFORMED);
    send_bytes(c, zero, sizeof(zero));
    assert_int_equal(expect_error(c, PROTO_OP_PING), TE_ERR_MALFORMED);
    send_json(c, "{\"v\":1,\"op\":\"frobnicate\",\"id\":3}");
    assert_int_equal(expect_error(c, PROTO_OP_PING), TE_ERR_PROTOCOL);
    send_json(c, "{\"v\":1,\"id\":3,\"ok\":true,\"result\":{}}");
    assert_int_equal(expect_error(c, PROTO_OP_PING), TE_ERR_PROTOCOL);
    ping_ok(c);
    finish(&t, c);
}

static void test_oversized_frame_gets_one_reply_then_close(void **state)
{
    (void)state;
    struct conn_thread t;
    uint8_t hdr[4] = {0xff, 0xff, 0xff, 0xff};
    int c = start_conn(&t, TEST_IO_MS, TEST_IO_MS, true, false, -1);

    send_bytes(c, hdr, sizeof(hdr));
    assert_int_equal(expect_error(c, PROTO_OP_PING), TE_ERR_TOO_LARGE);
    assert_true(closed_by_peer(c));
    finish(&t, c);
}

static void test_truncated_frame_gets_one_reply_then_close(void **state)
{
    (void)state;
    struct conn_thread t;
    uint8_t part[14] = {0, 0, 0, 100, '{', '"', 'v', '"', ':', '1', ','};
    int c = start_conn(&t, TEST_IO_MS, TEST_IO_MS, true, false, -1);

    send_bytes(c, part, sizeof(part));
    shutdown(c, SHUT_WR);
    assert_int_equal(expect_error(c, PROTO_OP_PING), TE_ERR_MALFORMED);
    assert_true(closed_by_peer(c));
    finish(&t, c);
}

static void test_stalled_frame_times_out(void **state)
{
    (void)state;
    struct conn_thread t;
    uint8_t part[2] = {0, 0};
    struct proto_response resp;
    int c = start_conn(&t, 100, TEST_IO_MS, true, false, -1);

    send_bytes(c, part, sizeof(part));
    assert_int_equal(read_reply(c, PROTO_OP_PING, &resp), TE_ERR_TIMEOUT);
    assert_true(resp.error.retryable);
    proto_response_free(&resp);
    assert_true(closed_by_peer(c));
    finish(&t, c);
}

static void test_idle_connection_is_closed_without_reply(void **state)
{
    (void)state;
    struct conn_thread t;
    int c = start_conn(&t, TEST_IO_MS, 100, true, false, -1);

    ping_ok(c);
    assert_true(closed_by_peer(c));
    finish(&t, c);
}

static void test_stop_fd_ends_the_connection_between_requests(void **state)
{
    (void)state;
    struct conn_thread t;
    uint64_t one = 1;
    int stop = eventfd(0, EFD_CLOEXEC);
    int c = start_conn(&t, TEST_IO_MS, TEST_IO_MS, true, false, stop);

    ping_ok(c);
    assert_int_equal(write(stop, &one, sizeof(one)), sizeof(one));
    assert_true(closed_by_peer(c));
    finish(&t, c);
    close(stop);
}

static void test_refused_peer_gets_permission_denied_and_is_closed(void **state)
{
    (void)state;
    struct conn_thread t;
    struct proto_response resp;
    int c = start_conn(&t, TEST_IO_MS, TEST_IO_MS, false, false, -1);

    send_json(c, "{\"v\":1,\"op\":\"ping\",\"id\":9}");
    assert_int_equal(read_reply(c, PROTO_OP_PING, &resp), TE_ERR_PERMISSION);
    assert_int_equal(resp.id, 9);
    proto_response_free(&resp);
    assert_true(closed_by_peer(c));
    finish(&t, c);
}

static void test_admin_ops_gated_then_unsupported(void **state)
{
    (void)state;
    struct conn_thread t;
    const char *req = "{\"v\":1,\"op\":\"change_pin\",\"id\":10,\"old_pin\":\"1\",\"new_pin\":\"2\"}";
    int c = start_conn(&t, TEST_IO_MS, TEST_IO_MS, true, false, -1);

    send_json(c, req);
    assert_int_equal(expect_error(c, PROTO_OP_CHANGE_PIN), TE_ERR_PERMISSION);
    ping_ok(c); /* a non-admin stays connected for signing */
    finish(&t, c);

    c = start_conn(&t, TEST_IO_MS, TEST_IO_MS, true, true, -1);
    send_json(c, req);
    assert_int_equal(expect_error(c, PROTO_OP_CHANGE_PIN), TE_ERR_UNSUPPORTED);
    finish(&t, c);
}

/* ---- the accept loop ---------------------------------------------------------------- */

struct serve_thread {
    pthread_t th;
    struct srv_acl acl;
    struct srv_limits lim;
    int listen_fd, signal_fd, result;
};

static void *accept_thread(void *arg)
{
    struct serve_thread *s = arg;
    s->result = srv_serve(&ctx, &s->acl, &s->lim, s->listen_fd, s->signal_fd);
    return NULL;
}

static int connect_path(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void test_serve_busy_and_signal_shutdown(void **state)
{
    (void)state;
    char dir[] = "/tmp/test-srv-conn.XXXXXX", path[64];
    struct srv_listen_config lc = {.mode = 0600};
    struct srv_listener lis;
    struct serve_thread s = {.lim = {.max_clients = 1, .frame_timeout_ms = TEST_IO_MS,
                                     .idle_timeout_ms = TEST_IO_MS}};
    struct proto_response resp;
    sigset_t set;
    int a, b;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s.sock", dir);
    lc.socket_path = path;
    assert_int_equal(srv_listener_open(&lc, &lis, NULL), TE_OK);
    /* SIGUSR1 stands in for SIGTERM; blocked here, so in every thread started after this */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    s.signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    s.listen_fd = lis.fd;
    assert_int_equal(pthread_create(&s.th, NULL, accept_thread, &s), 0);

    a = connect_path(path);
    ping_ok(a); /* a holds the only slot */
    b = connect_path(path);
    send_json(b, "{\"v\":1,\"op\":\"ping\",\"id\":1}");
    assert_int_equal(read_reply(b, PROTO_OP_PING, &resp), TE_ERR_BUSY);
    assert_true(resp.error.retryable);
    assert_false(resp.has_id);
    proto_response_free(&resp);
    assert_true(closed_by_peer(b));
    close(b);
    ping_ok(a); /* the busy one did not disturb the served one */

    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    assert_true(closed_by_peer(a)); /* shutdown ends idle connections at once */
    pthread_join(s.th, NULL);
    assert_int_equal(s.result, TE_OK);
    close(a);
    close(s.signal_fd);
    srv_listener_close(&lis);
    assert_int_equal(access(path, F_OK), -1);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_and_verify_with_public_key),
        cmocka_unit_test(test_p11_errors_map_to_codes),
        cmocka_unit_test(test_garbage_keeps_the_connection),
        cmocka_unit_test(test_oversized_frame_gets_one_reply_then_close),
        cmocka_unit_test(test_truncated_frame_gets_one_reply_then_close),
        cmocka_unit_test(test_stalled_frame_times_out),
        cmocka_unit_test(test_idle_connection_is_closed_without_reply),
        cmocka_unit_test(test_stop_fd_ends_the_connection_between_requests),
        cmocka_unit_test(test_refused_peer_gets_permission_denied_and_is_closed),
        cmocka_unit_test(test_admin_ops_gated_then_unsupported),
        cmocka_unit_test(test_serve_busy_and_signal_shutdown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
