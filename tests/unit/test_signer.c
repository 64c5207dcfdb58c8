/* Unit tests for the signer's key-file backend and front end (keys generated here with mbedTLS,
 * signatures verified against the signer's own public key), and signer_prepare of the socket
 * backend against a fake tedge-p11-server that answers pings and can be restarted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "common/buf.h"
#include "common/rand.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "tedge-cli/key/signer.h"
#include "unit_helpers.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/te-signer-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return unit_remove_dir(dir);
}

/* Writes a fresh key of the given kind to <dir>/<name> as PEM (or DER). */
static void write_key(const char *name, int rsa_bits, mbedtls_ecp_group_id curve, int der,
                      char *path, size_t path_size)
{
    mbedtls_pk_context pk;
    unsigned char out[16000];
    FILE *f;
    int n;

    mbedtls_pk_init(&pk);
    if (rsa_bits) {
        assert_int_equal(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
        assert_int_equal(mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), te_random, NULL,
                                             (unsigned)rsa_bits, 65537), 0);
    } else {
        assert_int_equal(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
        assert_int_equal(mbedtls_ecp_gen_key(curve, mbedtls_pk_ec(pk), te_random, NULL), 0);
    }
    snprintf(path, path_size, "%s/%s", dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    if (der) {
        n = mbedtls_pk_write_key_der(&pk, out, sizeof(out));
        assert_true(n > 0);
        fwrite(out + sizeof(out) - n, 1, (size_t)n, f);
    } else {
        assert_int_equal(mbedtls_pk_write_key_pem(&pk, out, sizeof(out)), 0);
        fputs((char *)out, f);
    }
    fclose(f);
    mbedtls_pk_free(&pk);
}

/* Signs a digest with every scheme the key reports and verifies against its public key. */
static void sign_and_verify_all(const char *path, enum p11_key_type want_type, unsigned want_bits)
{
    struct signer_config cfg = {.kind = SIGNER_FILE, .key_path = path};
    struct signer *s = NULL;
    struct signer_key_info info;
    struct te_error err;
    uint8_t *der = NULL, sig[1024], digest[64];
    size_t der_len, sig_len;
    mbedtls_pk_context pub;
    int schemes = 0;

    assert_int_equal(signer_open(&cfg, &s, &err), TE_OK);
    assert_int_equal(signer_key_info(s, &info, &err), TE_OK);
    assert_int_equal(info.type, want_type);
    assert_int_equal(info.bits, want_bits);
    assert_int_equal(signer_public_key(s, &der, &der_len, &err), TE_OK);
    mbedtls_pk_init(&pub);
    assert_int_equal(mbedtls_pk_parse_public_key(&pub, der, der_len), 0);
    for (int sc = 0; sc < SIG_SCHEME_COUNT; sc++) {
        if (!(info.schemes & (1u << sc)))
            continue;
        enum sig_hash h = sig_scheme_hash((enum sig_scheme)sc);
        size_t dlen = sig_hash_len(h);
        mbedtls_md_type_t md = h == SIG_HASH_SHA256 ? MBEDTLS_MD_SHA256
                               : h == SIG_HASH_SHA384 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA512;
        te_random(NULL, digest, dlen);
        assert_int_equal(signer_sign_digest(s, (enum sig_scheme)sc, digest, dlen, sig,
                                            sizeof(sig), &sig_len, &err), TE_OK);
        if (sig_scheme_alg((enum sig_scheme)sc) == SIG_ALG_RSA_PSS) {
            assert_int_equal(mbedtls_rsa_rsassa_pss_verify_ext(mbedtls_pk_rsa(pub), NULL, NULL,
                                 MBEDTLS_RSA_PUBLIC, md, (unsigned)dlen, digest, md,
                                 (int)dlen, sig), 0);
        } else {
            assert_int_equal(mbedtls_pk_verify(&pub, md, digest, dlen, sig, sig_len), 0);
        }
        /* a flipped digest bit must not verify */
        digest[0] ^= 1;
        if (sig_scheme_alg((enum sig_scheme)sc) != SIG_ALG_RSA_PSS)
            assert_int_not_equal(mbedtls_pk_verify(&pub, md, digest, dlen, sig, sig_len), 0);
        schemes++;
    }
    assert_int_equal(schemes, want_type == P11_KEY_RSA ? 6 : 3);
    mbedtls_pk_free(&pub);
    free(der);
    signer_close(s);
}

static void test_ec_keys(void **state)
{
    (void)state;
    char p[128];
    write_key("p256.pem", 0, MBEDTLS_ECP_DP_SECP256R1, 0, p, sizeof(p));
    sign_and_verify_all(p, P11_KEY_EC, 256);
    write_key("p384.der", 0, MBEDTLS_ECP_DP_SECP384R1, 1, p, sizeof(p));
    sign_and_verify_all(p, P11_KEY_EC, 384);
    write_key("p521.pem", 0, MBEDTLS_ECP_DP_SECP521R1, 0, p, sizeof(p));
    sign_and_verify_all(p, P11_KEY_EC, 521);
}

static void test_rsa_key(void **state)
{
    (void)state;
    char p[128];
    write_key("rsa.pem", 2048, MBEDTLS_ECP_DP_NONE, 0, p, sizeof(p));
    sign_and_verify_all(p, P11_KEY_RSA, 2048);
}

static void test_errors(void **state)
{
    (void)state;
    char p[128];
    struct te_error err;
    struct signer *s = NULL;
    struct signer_config cfg = {.kind = SIGNER_FILE, .key_path = "/nonexistent/key.pem"};
    uint8_t digest[48] = {0}, sig[600];
    size_t sig_len;

    assert_int_equal(signer_open(&cfg, &s, &err), TE_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/key.pem"));

    snprintf(p, sizeof(p), "%s/garbage.pem", dir);
    FILE *f = fopen(p, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    cfg.key_path = p;
    assert_int_equal(signer_open(&cfg, &s, &err), TE_ERR_MALFORMED);
    assert_non_null(strstr(err.msg, "is not a usable private key"));

    cfg.key_path = NULL;
    assert_int_equal(signer_open(&cfg, &s, &err), TE_ERR_CONFIG);

    write_key("ec.pem", 0, MBEDTLS_ECP_DP_SECP256R1, 0, p, sizeof(p));
    cfg.key_path = p;
    assert_int_equal(signer_open(&cfg, &s, &err), TE_OK);
    /* wrong digest length for the scheme */
    assert_int_equal(signer_sign_digest(s, SIG_ECDSA_SHA256, digest, 48, sig, sizeof(sig),
                                        &sig_len, &err), TE_ERR_INVALID);
    /* RSA scheme on an EC key */
    assert_int_equal(signer_sign_digest(s, SIG_RSA_PKCS1_SHA384, digest, 48, sig, sizeof(sig),
                                        &sig_len, &err), TE_ERR_MECHANISM);
    enum sig_scheme sc;
    assert_int_equal(signer_default_scheme(s, SIG_HASH_SHA384, &sc, &err), TE_OK);
    assert_int_equal(sc, SIG_ECDSA_SHA384);
    assert_non_null(strstr(signer_describe(s), "ec.pem"));
    signer_close(s);
}

/* ---- a fake tedge-p11-server: answers ping, records the ops in arrival order ------------- */

#define FAKE_OPS_MAX 16   /* requests one fake daemon records */
#define FAKE_CONNS_MAX 4  /* connections it serves at once */
#define FAKE_IO_MS 1000   /* per frame on the fake's side */

struct fake_daemon {
    char path[128];
    int listen_fd;
    int stop[2];
    pthread_t thread;
    pthread_mutex_t mu;
    enum proto_op ops[FAKE_OPS_MAX];
    size_t n_ops;
    int connections;
};

/* Reads one request and answers a ping; false when the connection is done. */
static bool fake_serve(struct fake_daemon *f, int fd)
{
    struct buf *in = buf_new(PROTO_MAX_FRAME), *out = buf_new(PROTO_MAX_FRAME);
    struct proto_request req;
    struct proto_response resp;
    struct te_error err = {0};
    bool keep = false;

    memset(&req, 0, sizeof(req));
    if (proto_frame_read(fd, in, FAKE_IO_MS, NULL, &err) != TE_OK ||
        proto_decode_request(buf_data(in), buf_len(in), &req, &err) != TE_OK)
        goto exit;
    pthread_mutex_lock(&f->mu);
    if (f->n_ops < FAKE_OPS_MAX)
        f->ops[f->n_ops++] = req.op;
    pthread_mutex_unlock(&f->mu);
    if (req.op != PROTO_OP_PING)
        goto exit; /* nothing else is asked of it here */
    proto_response_init(&resp, &req, req.op);
    snprintf(resp.ping.server_version, sizeof(resp.ping.server_version), "fake");
    resp.ping.versions = 1u << 1;
    keep = proto_encode_response(out, &resp, &err) == TE_OK &&
           proto_frame_write_buf(fd, out, FAKE_IO_MS, &err) == TE_OK;
exit:
    proto_request_free(&req);
    buf_free(in);
    buf_free(out);
    return keep;
}

static void *fake_main(void *arg)
{
    struct fake_daemon *f = arg;
    int conns[FAKE_CONNS_MAX];
    size_t n = 0;

    for (;;) {
        struct pollfd p[FAKE_CONNS_MAX + 2];
        p[0] = (struct pollfd){.fd = f->stop[0], .events = POLLIN};
        p[1] = (struct pollfd){.fd = f->listen_fd, .events = POLLIN};
        for (size_t i = 0; i < n; i++)
            p[i + 2] = (struct pollfd){.fd = conns[i], .events = POLLIN};
        if (poll(p, n + 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        if ((p[1].revents & POLLIN) && n < FAKE_CONNS_MAX) {
            int fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                conns[n++] = fd;
                pthread_mutex_lock(&f->mu);
                f->connections++;
                pthread_mutex_unlock(&f->mu);
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (!(p[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) || fake_serve(f, conns[i]))
                continue;
            close(conns[i]);
            conns[i] = conns[--n];
            p[i + 2] = p[n + 2];
            i--;
        }
    }
    for (size_t i = 0; i < n; i++)
        close(conns[i]); /* like a daemon that exits: every client sees its connection end */
    return NULL;
}

static void fake_start(struct fake_daemon *f, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    memset(f, 0, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "%s", path);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    pthread_mutex_init(&f->mu, NULL);
    assert_true((f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->listen_fd, 4), 0);
    assert_int_equal(pipe(f->stop), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake_daemon *f)
{
    assert_int_equal(write(f->stop[1], "x", 1), 1);
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    close(f->stop[0]);
    close(f->stop[1]);
    unlink(f->path);
    pthread_mutex_destroy(&f->mu);
}

static size_t fake_ops(struct fake_daemon *f, enum proto_op *out)
{
    size_t n;
    pthread_mutex_lock(&f->mu);
    n = f->n_ops;
    memcpy(out, f->ops, n * sizeof(*out));
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* A key file has nothing to get ready. */
static void test_prepare_is_a_no_op_for_a_key_file(void **state)
{
    (void)state;
    char p[128];
    struct signer_config cfg = {.kind = SIGNER_FILE};
    struct signer *s = NULL;
    struct te_error err;

    write_key("prep.pem", 0, MBEDTLS_ECP_DP_SECP256R1, 0, p, sizeof(p));
    cfg.key_path = p;
    assert_int_equal(signer_open(&cfg, &s, &err), TE_OK);
    assert_int_equal(signer_prepare(s, &err), TE_OK);
    assert_int_equal(signer_prepare(s, &err), TE_OK);
    signer_close(s);
}

/* The socket signer pings on open and on every prepare; after a daemon restart the prepare
 * reconnects and the new daemon's first request is that ping (not a sign in a handshake); with
 * no daemon the prepare fails with the connect error naming the socket. */
static void test_prepare_pings_and_survives_a_daemon_restart(void **state)
{
    (void)state;
    struct fake_daemon a, b;
    char path[128];
    struct signer_config cfg = {.kind = SIGNER_SOCKET, .key_uri = "pkcs11:token=t;object=k",
                                .timeout_ms = 2000};
    struct signer *s = NULL;
    struct te_error err;
    enum proto_op ops[FAKE_OPS_MAX];

    snprintf(path, sizeof(path), "%s/p11.sock", dir);
    cfg.socket_path = path;
    fake_start(&a, path);
    assert_int_equal(signer_open(&cfg, &s, &err), TE_OK);
    assert_int_equal(signer_prepare(s, &err), TE_OK);
    assert_int_equal(fake_ops(&a, ops), 2);
    assert_int_equal(ops[0], PROTO_OP_PING);
    assert_int_equal(ops[1], PROTO_OP_PING);
    fake_stop(&a);
    assert_int_equal(a.connections, 1); /* one persistent connection (read after the join) */

    fake_start(&b, path);
    assert_int_equal(fake_ops(&b, ops), 0);
    assert_int_equal(signer_prepare(s, &err), TE_OK);
    assert_int_equal(fake_ops(&b, ops), 1);
    assert_int_equal(ops[0], PROTO_OP_PING);
    fake_stop(&b);

    assert_int_equal(signer_prepare(s, &err), TE_ERR_CONNECT);
    assert_non_null(strstr(err.msg, "Failed to connect to tedge-p11-server UNIX socket"));
    assert_non_null(strstr(err.msg, path));
    signer_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ec_keys),
        cmocka_unit_test(test_rsa_key),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_prepare_is_a_no_op_for_a_key_file),
        cmocka_unit_test(test_prepare_pings_and_survives_a_daemon_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
