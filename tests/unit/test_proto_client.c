/* Unit tests for proto/client against a scripted fake daemon thread on a temp-dir Unix socket:
 * every operation, persistent connections, reconnect-once, no re-send after a timeout, connect
 * errors that name the socket, structured server errors, bad replies and concurrent callers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "proto/client.h"
#include "proto/frame.h"
#include "proto/msg.h"

#define TIMEOUT_MS 2000   /* generous per-request deadline for the normal cases */
#define SHORT_MS 100      /* deadline for the timeout case */
#define MAX_CONNS 16      /* connections the fake server keeps at once */

enum action {
    ACT_REPLY = 0,        /* the canned success reply */
    ACT_REPLY_THEN_CLOSE, /* reply, then drop the connection (an idle close) */
    ACT_CLOSE_NO_REPLY,   /* read the request, drop the connection without a reply */
    ACT_STALL,            /* read the request, never answer until fake_release_stall() */
    ACT_WRONG_ID,         /* reply with another request's id */
    ACT_GARBAGE,          /* reply with a frame that is not JSON */
    ACT_ERROR_PIN,        /* reply pin_incorrect with CKR_PIN_INCORRECT */
};

struct fake {
    char dir[64];
    char path[128];
    int listen_fd;
    int stop[2];
    pthread_t thread;
    pthread_mutex_t mu;
    enum action script[8];
    size_t script_len, script_pos;
    int connections;
    int requests[PROTO_OP_COUNT];
    struct proto_request last;
    int stalled_fd;
    struct proto_request stalled;
    bool release_stall;
};

static struct fake F;

/* cmocka's asserts must not fire on the server thread: fail loudly instead */
#define MUST(expr)                                                                  \
    do {                                                                            \
        if (!(expr)) {                                                              \
            fprintf(stderr, "fake server: %s failed at line %d\n", #expr, __LINE__); \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* ---- the fake daemon ------------------------------------------------------------------- */

static void canned_reply(const struct proto_request *req, struct proto_response *resp,
                         struct proto_key_info *keys, struct proto_token_info *tokens)
{
    proto_response_init(resp, req, req->op);
    switch (req->op) {
    case PROTO_OP_PING:
        snprintf(resp->ping.server_version, sizeof(resp->ping.server_version), "fake-1");
        resp->ping.versions = 1u << 1;
        break;
    case PROTO_OP_SIGN:
        /* the digest reversed, then the scheme: proves which request was answered */
        for (size_t i = 0; i < req->digest_len; i++)
            resp->signature[i] = req->digest[req->digest_len - 1 - i];
        resp->signature[req->digest_len] = (uint8_t)req->scheme;
        resp->signature_len = req->digest_len + 1;
        break;
    case PROTO_OP_KEY_INFO:
        resp->key.type = PROTO_KEY_EC;
        resp->key.bits = 256;
        resp->key.curve = PROTO_CURVE_P256;
        snprintf(resp->key.label, sizeof(resp->key.label), "key-for-%.100s",
                 req->has_uri ? req->uri : "scope");
        resp->key.schemes = 1u << SIG_ECDSA_SHA256;
        snprintf(resp->key.uri, sizeof(resp->key.uri), "pkcs11:object=k");
        break;
    case PROTO_OP_PUBLIC_KEY:
        snprintf(resp->pem, sizeof(resp->pem),
                 "-----BEGIN PUBLIC KEY-----\nFAKE\n-----END PUBLIC KEY-----\n");
        break;
    case PROTO_OP_LIST_TOKENS:
        for (int i = 0; i < 2; i++) {
            memset(&tokens[i], 0, sizeof(tokens[i]));
            tokens[i].slot_id = (uint64_t)i + 10;
            snprintf(tokens[i].label, sizeof(tokens[i].label), "tok%d", i);
        }
        resp->tokens = tokens;
        resp->token_count = 2;
        break;
    case PROTO_OP_LIST_KEYS:
        for (int i = 0; i < 3; i++) {
            memset(&keys[i], 0, sizeof(keys[i]));
            keys[i].type = PROTO_KEY_RSA;
            keys[i].bits = 2048;
            snprintf(keys[i].label, sizeof(keys[i].label), "k%d", i);
        }
        resp->keys = keys;
        resp->key_count = 3;
        break;
    case PROTO_OP_STATUS:
        resp->status.token_present = true;
        resp->status.signatures = 42;
        resp->status.last_success = 1718000000;
        break;
    default:
        resp->ok = false;
        resp->error.code = TE_ERR_UNSUPPORTED;
        snprintf(resp->error.message, sizeof(resp->error.message), "Not implemented here.");
        break;
    }
}

static void send_body(int fd, const struct buf *b)
{
    struct te_error err = {0};
    proto_frame_write_buf(fd, b, 1000, &err); /* the client may be gone: that is fine */
}

static void answer(int fd, const struct proto_request *req, enum action act)
{
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    struct proto_response resp;
    struct proto_key_info keys[3];
    struct proto_token_info tokens[2];
    struct proto_request other = *req;
    struct te_error err = {0};

    if (act == ACT_GARBAGE) {
        buf_put_str(b, "this is not json");
    } else if (act == ACT_ERROR_PIN) {
        te_error_set_ckr(&err, TE_ERR_PIN_INCORRECT, 0xA0, false, "The PIN is incorrect.");
        MUST(proto_encode_error(b, req, &err, "CKR_PIN_INCORRECT", &err) == TE_OK);
    } else {
        if (act == ACT_WRONG_ID)
            other.id += 100;
        canned_reply(&other, &resp, keys, tokens);
        MUST(proto_encode_response(b, &resp, &err) == TE_OK);
    }
    send_body(fd, b);
    buf_free(b);
}

/* Serves one readable connection; false when it was closed. */
static bool serve_one(int fd)
{
    struct buf *in = buf_new(PROTO_MAX_FRAME);
    struct proto_request req;
    struct te_error err = {0};
    enum action act = ACT_REPLY;
    bool keep = true;

    if (proto_frame_read(fd, in, 1000, NULL, &err) != TE_OK) {
        buf_free(in);
        return false;
    }
    MUST(proto_decode_request(buf_data(in), buf_len(in), &req, &err) == TE_OK);
    pthread_mutex_lock(&F.mu);
    F.requests[req.op]++;
    F.last = req;
    if (F.script_pos < F.script_len)
        act = F.script[F.script_pos++];
    if (act == ACT_STALL) {
        F.stalled_fd = fd;
        F.stalled = req;
    }
    pthread_mutex_unlock(&F.mu);

    switch (act) {
    case ACT_STALL:
        break;
    case ACT_CLOSE_NO_REPLY:
        keep = false;
        break;
    case ACT_REPLY_THEN_CLOSE:
        answer(fd, &req, ACT_REPLY);
        keep = false;
        break;
    default:
        answer(fd, &req, act);
        break;
    }
    proto_request_free(&req);
    buf_free(in);
    return keep;
}

static void *fake_main(void *arg)
{
    int conns[MAX_CONNS];
    size_t n = 0;
    (void)arg;

    for (;;) {
        struct pollfd p[MAX_CONNS + 2];
        p[0] = (struct pollfd){.fd = F.stop[0], .events = POLLIN};
        p[1] = (struct pollfd){.fd = F.listen_fd, .events = POLLIN};
        for (size_t i = 0; i < n; i++)
            p[i + 2] = (struct pollfd){.fd = conns[i], .events = POLLIN};
        if (poll(p, n + 2, 20) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        pthread_mutex_lock(&F.mu);
        if (F.release_stall && F.stalled_fd >= 0) {
            struct proto_request req = F.stalled;
            int fd = F.stalled_fd;
            F.stalled_fd = -1;
            F.release_stall = false;
            pthread_mutex_unlock(&F.mu);
            answer(fd, &req, ACT_REPLY); /* the late reply, on the old connection */
            pthread_mutex_lock(&F.mu);
        }
        pthread_mutex_unlock(&F.mu);
        if ((p[1].revents & POLLIN) && n < MAX_CONNS) {
            int fd = accept4(F.listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                conns[n++] = fd;
                pthread_mutex_lock(&F.mu);
                F.connections++;
                pthread_mutex_unlock(&F.mu);
            }
        }
        for (size_t i = 0; i < n; i++) {
            bool stalled;
            if (!(p[i + 2].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            pthread_mutex_lock(&F.mu);
            stalled = conns[i] == F.stalled_fd;
            pthread_mutex_unlock(&F.mu);
            if (stalled && !(p[i + 2].revents & (POLLHUP | POLLERR)))
                continue; /* a stalled connection is not read again */
            if (!serve_one(conns[i])) {
                pthread_mutex_lock(&F.mu);
                if (F.stalled_fd == conns[i])
                    F.stalled_fd = -1;
                pthread_mutex_unlock(&F.mu);
                close(conns[i]);
                conns[i] = conns[--n];
                p[i + 2] = p[n + 2];
                i--;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        close(conns[i]);
    return NULL;
}

static int fake_start(void **state)
{
    (void)state;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    memset(&F, 0, sizeof(F));
    F.stalled_fd = -1;
    pthread_mutex_init(&F.mu, NULL);
    snprintf(F.dir, sizeof(F.dir), "/tmp/proto-client-XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    snprintf(F.path, sizeof(F.path), "%s/p11.sock", F.dir);
    assert_true(strlen(F.path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, F.path, strlen(F.path) + 1);
    F.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(F.listen_fd >= 0);
    assert_int_equal(bind(F.listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(F.listen_fd, 8), 0);
    assert_int_equal(pipe(F.stop), 0);
    assert_int_equal(pthread_create(&F.thread, NULL, fake_main, NULL), 0);
    return 0;
}

static int fake_stop(void **state)
{
    (void)state;
    assert_int_equal(write(F.stop[1], "x", 1), 1);
    pthread_join(F.thread, NULL);
    close(F.stop[0]);
    close(F.stop[1]);
    close(F.listen_fd);
    unlink(F.path);
    rmdir(F.dir);
    return 0;
}

static void fake_script(size_t n, const enum action *acts)
{
    pthread_mutex_lock(&F.mu);
    memcpy(F.script, acts, n * sizeof(*acts));
    F.script_len = n;
    F.script_pos = 0;
    pthread_mutex_unlock(&F.mu);
}

static int fake_count(int *field)
{
    int v;
    pthread_mutex_lock(&F.mu);
    v = *field;
    pthread_mutex_unlock(&F.mu);
    return v;
}

static struct proto_client *open_client(int timeout_ms)
{
    struct proto_client *c = NULL;
    struct te_error err = {0};
    if (proto_client_open(F.path, timeout_ms, &c, &err) != TE_OK)
        fail_msg("open: %s", err.msg);
    return c;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_every_op_on_one_persistent_connection(void **state)
{
    (void)state;
    struct proto_client *c = open_client(TIMEOUT_MS);
    struct te_error err = {0};
    struct proto_ping_result ping;
    struct proto_key_info info, *keys = NULL;
    struct proto_token_info *tokens = NULL;
    struct proto_status st;
    uint8_t digest[48], sig[128];
    size_t sig_len = 0, count = 0;
    char *pem = NULL;

    assert_int_equal(proto_client_ping(c, &ping, &err), TE_OK);
    assert_string_equal(ping.server_version, "fake-1");
    assert_int_equal(ping.versions, 1u << 1);

    for (size_t i = 0; i < sizeof(digest); i++)
        digest[i] = (uint8_t)i;
    assert_int_equal(proto_client_sign(c, "pkcs11:object=k", "1234", SIG_ECDSA_SHA384, digest,
                                       sizeof(digest), sig, sizeof(sig), &sig_len, &err), TE_OK);
    assert_int_equal(sig_len, 49);
    for (size_t i = 0; i < 48; i++)
        assert_int_equal(sig[i], digest[47 - i]);
    assert_int_equal(sig[48], SIG_ECDSA_SHA384);
    pthread_mutex_lock(&F.mu);
    assert_string_equal(F.last.uri, "pkcs11:object=k");
    assert_true(F.last.has_pin);
    assert_string_equal(F.last.pin, "1234");
    assert_int_equal(F.last.scheme, SIG_ECDSA_SHA384);
    assert_true(F.last.has_id);
    pthread_mutex_unlock(&F.mu);

    /* no uri, no pin: the members are left out */
    assert_int_equal(proto_client_key_info(c, NULL, NULL, &info, &err), TE_OK);
    assert_string_equal(info.label, "key-for-scope");
    assert_int_equal(info.curve, PROTO_CURVE_P256);
    pthread_mutex_lock(&F.mu);
    assert_false(F.last.has_uri);
    assert_false(F.last.has_pin);
    pthread_mutex_unlock(&F.mu);

    assert_int_equal(proto_client_public_key(c, "pkcs11:", NULL, &pem, &err), TE_OK);
    assert_non_null(strstr(pem, "BEGIN PUBLIC KEY"));
    free(pem);

    assert_int_equal(proto_client_list_tokens(c, &tokens, &count, &err), TE_OK);
    assert_int_equal(count, 2);
    assert_string_equal(tokens[1].label, "tok1");
    assert_int_equal(tokens[1].slot_id, 11);
    free(tokens);

    assert_int_equal(proto_client_list_keys(c, "pkcs11:token=t", "1", &keys, &count, &err), TE_OK);
    assert_int_equal(count, 3);
    assert_string_equal(keys[2].label, "k2");
    free(keys);

    assert_int_equal(proto_client_status(c, &st, &err), TE_OK);
    assert_int_equal(st.signatures, 42);
    assert_int_equal(st.last_success, 1718000000);

    /* an administration request through the generic call */
    struct proto_request req;
    struct proto_response resp;
    proto_request_init(&req, PROTO_OP_DELETE_KEY);
    req.has_uri = true;
    snprintf(req.uri, sizeof(req.uri), "pkcs11:object=old");
    assert_int_equal(proto_client_call(c, &req, &resp, &err), TE_ERR_UNSUPPORTED);
    assert_false(resp.ok);
    assert_string_equal(err.msg, "Not implemented here.");
    proto_response_free(&resp);
    proto_request_free(&req);

    assert_int_equal(fake_count(&F.connections), 1);
    assert_int_equal(fake_count(&F.requests[PROTO_OP_SIGN]), 1);
    proto_client_close(c);
}

static void test_reconnects_once_after_idle_close(void **state)
{
    (void)state;
    const enum action acts[] = {ACT_REPLY_THEN_CLOSE};
    struct proto_client *c = open_client(TIMEOUT_MS);
    struct te_error err = {0};

    fake_script(1, acts);
    assert_int_equal(proto_client_ping(c, NULL, &err), TE_OK);
    usleep(50000); /* let the server's close land */
    assert_int_equal(proto_client_ping(c, NULL, &err), TE_OK);
    assert_int_equal(fake_count(&F.connections), 2);
    assert_int_equal(fake_count(&F.requests[PROTO_OP_PING]), 2);
    proto_client_close(c);
}

static void test_reconnects_once_when_closed_before_the_reply(void **state)
{
    (void)state;
    const enum action acts[] = {ACT_CLOSE_NO_REPLY};
    struct proto_client *c = open_client(TIMEOUT_MS);
    struct te_error err = {0};
    uint8_t digest[32] = {1}, sig[64];
    size_t sig_len;

    fake_script(1, acts);
    assert_int_equal(proto_client_sign(c, NULL, NULL, SIG_ECDSA_SHA256, digest, 32, sig,
                                       sizeof(sig), &sig_len, &err), TE_OK);
    assert_int_equal(sig_len, 33);
    /* the dropped request and the one sent again on the new connection */
    assert_int_equal(fake_count(&F.requests[PROTO_OP_SIGN]), 2);
    assert_int_equal(fake_count(&F.connections), 2);
    proto_client_close(c);
}

static void test_gives_up_after_one_reconnect(void **state)
{
    (void)state;
    const enum action acts[] = {ACT_CLOSE_NO_REPLY, ACT_CLOSE_NO_REPLY};
    struct proto_client *c = open_client(TIMEOUT_MS);
    struct te_error err = {0};

    fake_script(2, acts);
    assert_int_equal(proto_client_ping(c, NULL, &err), TE_ERR_CLOSED);
    assert_non_null(strstr(err.msg, F.path));
    assert_non_null(strstr(err.msg, "before answering the ping request"));
    assert_int_equal(fake_count(&F.requests[PROTO_OP_PING]), 2);
    assert_int_equal(fake_count(&F.connections), 2);
    /* the client is still usable */
    assert_int_equal(proto_client_ping(c, NULL, &err), TE_OK);
    assert_int_equal(fake_count(&F.connections), 3);
    proto_client_close(c);
}

static void test_no_resend_after_timeout(void **state)
{
    (void)state;
    const enum action acts[] = {ACT_STALL};
    struct proto_client *c = open_client(SHORT_MS);
    struct te_error err = {0};
    struct proto_ping_result ping;
    uint8_t digest[32] = {7}, sig[64];
    size_t sig_len = 0;

    fake_script(1, acts);
    assert_int_equal(proto_client_sign(c, NULL, "1234", SIG_ECDSA_SHA256, digest, 32, sig,
                                       sizeof(sig), &sig_len, &err), TE_ERR_TIMEOUT);
    assert_non_null(strstr(err.msg, "did not answer the sign request within 100 ms"));
    assert_non_null(strstr(err.msg, "not sent again"));
    assert_int_equal(sig_len, 0);
    assert_int_equal(fake_count(&F.requests[PROTO_OP_SIGN]), 1);

    /* the daemon answers late on the old connection; the client must not read that reply as
     * the answer to its next request */
    pthread_mutex_lock(&F.mu);
    F.release_stall = true;
    pthread_mutex_unlock(&F.mu);
    usleep(100000);
    assert_int_equal(fake_count(&F.requests[PROTO_OP_SIGN]), 1);
    proto_client_set_timeout(c, TIMEOUT_MS);
    assert_int_equal(proto_client_ping(c, &ping, &err), TE_OK);
    assert_string_equal(ping.server_version, "fake-1");
    assert_int_equal(fake_count(&F.connections), 2);
    assert_int_equal(fake_count(&F.requests[PROTO_OP_SIGN]), 1);
    proto_client_close(c);
}

static void test_server_error_is_structured(void **state)
{
    (void)state;
    const enum action acts[] = {ACT_ERROR_PIN};
    struct proto_client *c = open_client(TIMEOUT_MS);
    struct te_error err = {0};
    uint8_t digest[32] = {0}, sig[64];
    size_t sig_len = 0;

    fake_script(1, acts);
    assert_int_equal(proto_client_sign(c, NULL, "0000", SIG_ECDSA_SHA256, digest, 32, sig,
                                       sizeof(sig), &sig_len, &err), TE_ERR_PIN_INCORRECT);
    assert_int_equal(err.code, TE_ERR_PIN_INCORRECT);
    assert_true(err.has_ckr);
    assert_int_equal(err.ckr, 0xA0);
    assert_false(err.retryable);
    assert_string_equal(err.msg, "The PIN is incorrect.");
    /* a failure reply is not a broken connection, and a wrong PIN is never sent again */
    assert_int_equal(fake_count(&F.requests[PROTO_OP_SIGN]), 1);
    assert_int_equal(proto_client_ping(c, NULL, &err), TE_OK);
    assert_int_equal(fake_count(&F.connections), 1);
    proto_client_close(c);
}

static void test_bad_replies_are_protocol_errors(void **state)
{
    (void)state;
    const enum action acts[] = {ACT_WRONG_ID, ACT_GARBAGE};
    struct proto_client *c = open_client(TIMEOUT_MS);
    struct te_error err = {0};

    fake_script(2, acts);
    assert_int_equal(proto_client_ping(c, NULL, &err), TE_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "invalid reply"));
    assert_non_null(strstr(err.msg, "not 1"));
    assert_int_equal(proto_client_ping(c, NULL, &err), TE_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "not valid JSON"));
    /* each bad reply dropped the connection; the next request opens a new one */
    assert_int_equal(proto_client_ping(c, NULL, &err), TE_OK);
    assert_int_equal(fake_count(&F.connections), 3);
    assert_int_equal(fake_count(&F.requests[PROTO_OP_PING]), 3);
    proto_client_close(c);
}

static void test_bad_arguments_send_nothing(void **state)
{
    (void)state;
    struct proto_client *c = open_client(TIMEOUT_MS);
    struct te_error err = {0};
    uint8_t digest[64] = {0}, sig[8];
    size_t sig_len = 0;
    char *long_uri = malloc(PROTO_URI_MAX + 2);

    memset(long_uri, 'u', PROTO_URI_MAX + 1);
    long_uri[PROTO_URI_MAX + 1] = '\0';
    assert_int_equal(proto_client_sign(c, long_uri, NULL, SIG_ECDSA_SHA256, digest, 32, sig,
                                       sizeof(sig), &sig_len, &err), TE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "URI"));
    /* a SHA-512-sized digest for a SHA-256 scheme */
    assert_int_equal(proto_client_sign(c, NULL, NULL, SIG_ECDSA_SHA256, digest, 64, sig,
                                       sizeof(sig), &sig_len, &err), TE_ERR_INVALID);
    assert_int_equal(fake_count(&F.requests[PROTO_OP_SIGN]), 0);
    /* the reply does not fit the caller's buffer */
    assert_int_equal(proto_client_sign(c, NULL, NULL, SIG_ECDSA_SHA256, digest, 32, sig,
                                       sizeof(sig), &sig_len, &err), TE_ERR_TOO_LARGE);
    free(long_uri);
    proto_client_close(c);
}

static void test_connect_errors_name_the_socket(void **state)
{
    (void)state;
    struct proto_client *c = NULL;
    struct te_error err = {0};
    char path[200], want[300], longp[200];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    snprintf(path, sizeof(path), "%s/missing.sock", F.dir);
    snprintf(want, sizeof(want), "Failed to connect to tedge-p11-server UNIX socket at '%s': ",
             path);
    assert_int_equal(proto_client_open(path, TIMEOUT_MS, &c, &err), TE_ERR_CONNECT);
    assert_null(c);
    assert_memory_equal(err.msg, want, strlen(want));
    assert_non_null(strstr(err.msg, "No such file or directory"));
    assert_non_null(strstr(err.msg, "is running"));

    /* a socket file nobody listens on */
    snprintf(path, sizeof(path), "%s/dead.sock", F.dir);
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(proto_client_open(path, TIMEOUT_MS, &c, &err), TE_ERR_CONNECT);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "Connection refused"));
    assert_true(err.retryable);
    close(fd);
    unlink(path);

    memset(longp, 'x', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(proto_client_open(longp, TIMEOUT_MS, &c, &err), TE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "Failed to connect to tedge-p11-server UNIX socket at '/xxx"));
    assert_non_null(strstr(err.msg, "too long"));
}

struct pinger {
    struct proto_client *c;
    int ok;
};

static void *ping_loop(void *arg)
{
    struct pinger *p = arg;
    struct te_error err = {0};
    for (int i = 0; i < 50; i++)
        if (proto_client_ping(p->c, NULL, &err) == TE_OK)
            p->ok++;
    return NULL;
}

static void test_concurrent_callers_share_one_client(void **state)
{
    (void)state;
    struct proto_client *c = open_client(TIMEOUT_MS);
    pthread_t t[4];
    struct pinger p[4];

    for (int i = 0; i < 4; i++) {
        p[i] = (struct pinger){.c = c};
        assert_int_equal(pthread_create(&t[i], NULL, ping_loop, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(p[i].ok, 50);
    }
    assert_int_equal(fake_count(&F.requests[PROTO_OP_PING]), 200);
    assert_int_equal(fake_count(&F.connections), 1);
    proto_client_close(c);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, fake_start, fake_stop)
    const struct CMUnitTest tests[] = {
        T(test_every_op_on_one_persistent_connection),
        T(test_reconnects_once_after_idle_close),
        T(test_reconnects_once_when_closed_before_the_reply),
        T(test_gives_up_after_one_reconnect),
        T(test_no_resend_after_timeout),
        T(test_server_error_is_structured),
        T(test_bad_replies_are_protocol_errors),
        T(test_bad_arguments_send_nothing),
        T(test_connect_errors_name_the_socket),
        T(test_concurrent_callers_share_one_client),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
