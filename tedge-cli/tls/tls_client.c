/* The TLS 1.2 client (see tls_client.h): builds the mbedTLS configuration once, then opens
 * sessions (non-blocking TCP connect with TCP_NODELAY, handshake under a deadline) and moves bytes. */
#include "tedge-cli/tls/tls_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>

#include "common/log.h"
#include "common/clock.h"
#include "common/rand.h"

#define TLS_CLOSE_NOTIFY_WAIT_MS 200 /* how long close waits for room to send close_notify */

/* ECDHE (forward secrecy) with an AEAD cipher only; the server's key type picks ECDSA or RSA.
 * The *-SHA384 suites make mbedTLS sign the CertificateVerify with SHA-384. */
static const char *const modern_suites[] = {
    "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384",
    "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
    "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
    "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256",
    "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
    "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
};
#define MODERN_SUITES_COUNT (sizeof(modern_suites) / sizeof(modern_suites[0]))

/* ---- configuration ----------------------------------------------------------------------- */

static int parse_suites(struct tls_client *c, const char *list, struct te_error *err)
{
    char buf[TLS_SUITE_LIST_MAX];
    char *save = NULL;
    size_t n = 0;

    if (list == NULL) {
        for (size_t i = 0; i < MODERN_SUITES_COUNT; i++)
            c->suites[n++] = mbedtls_ssl_get_ciphersuite_id(modern_suites[i]);
        c->suites[n] = 0;
        return TE_OK;
    }
    if (strlen(list) >= sizeof(buf))
        return te_error_set(err, TE_ERR_INVALID, "The list of TLS ciphersuites is too long.");
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *name = strtok_r(buf, ", ", &save); name != NULL; name = strtok_r(NULL, ", ", &save)) {
        bool allowed = false;
        for (size_t i = 0; i < MODERN_SUITES_COUNT; i++)
            allowed = allowed || strcmp(name, modern_suites[i]) == 0;
        if (!allowed)
            return te_error_set(err, TE_ERR_INVALID,
                                "The TLS ciphersuite '%s' is not one this client offers: use "
                                "TLS-ECDHE-(ECDSA|RSA)-WITH-(AES-128-GCM-SHA256|AES-256-GCM-SHA384|"
                                "CHACHA20-POLY1305-SHA256).", name);
        if (n == TLS_SUITES_MAX)
            return te_error_set(err, TE_ERR_INVALID, "Too many TLS ciphersuites are listed.");
        c->suites[n++] = mbedtls_ssl_get_ciphersuite_id(name);
    }
    if (n == 0)
        return te_error_set(err, TE_ERR_INVALID, "The list of TLS ciphersuites is empty.");
    c->suites[n] = 0;
    return TE_OK;
}

static int load_roots(struct tls_client *c, struct te_error *err)
{
    struct stat st;
    char msg[128];
    int r;

    if (stat(c->ca_path, &st) != 0)
        return te_error_set(err, errno == ENOENT ? TE_ERR_NOT_FOUND : TE_ERR_IO,
                            "The trusted CA certificates '%s' cannot be read: %s. Point the root "
                            "certificate path to a PEM file or a directory such as /etc/ssl/certs.",
                            c->ca_path, strerror(errno));
    /* A directory is read like /etc/ssl/certs: every file (and hashed link) that parses. */
    r = S_ISDIR(st.st_mode) ? mbedtls_x509_crt_parse_path(&c->roots, c->ca_path)
                            : mbedtls_x509_crt_parse_file(&c->roots, c->ca_path);
    if (r < 0) {
        mbedtls_strerror(r, msg, sizeof(msg));
        return te_error_set(err, TE_ERR_IO, "The trusted CA certificates in '%s' cannot be loaded: %s.",
                            c->ca_path, msg);
    }
    if (c->roots.version == 0)
        return te_error_set(err, TE_ERR_CONFIG,
                            "'%s' holds no usable CA certificate: point the root certificate path "
                            "to the CA that issued the cloud's server certificate.", c->ca_path);
    if (r > 0)
        log_debug("skipped %d unusable entries in '%s'", r, c->ca_path);
    return TE_OK;
}

static int load_cert(struct tls_client *c, struct te_error *err)
{
    char msg[128];
    int r = mbedtls_x509_crt_parse_file(&c->cert, c->cert_path);

    if (r == 0)
        return TE_OK;
    if (r > 0)
        snprintf(msg, sizeof(msg), "%d of its certificates do not parse", r);
    else
        mbedtls_strerror(r, msg, sizeof(msg));
    return te_error_set(err, r == MBEDTLS_ERR_PK_FILE_IO_ERROR ? TE_ERR_IO : TE_ERR_MALFORMED,
                        "The device certificate '%s' cannot be loaded: %s. Create it with "
                        "'tedge cert create' or point the certificate path to the right file.",
                        c->cert_path, msg);
}

static int set_names(struct tls_client *c, const struct tls_client_config *cfg,
                     struct te_error *err)
{
    const char *name = cfg->server_name != NULL ? cfg->server_name : cfg->host;
    bool v6 = strchr(cfg->host, ':') != NULL;

    if ((c->host = strdup(cfg->host)) == NULL || (c->server_name = strdup(name)) == NULL ||
        (c->ca_path = strdup(cfg->ca_path)) == NULL || (c->cert_path = strdup(cfg->cert_path)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    snprintf(c->port, sizeof(c->port), "%u", (unsigned)cfg->port);
    snprintf(c->endpoint, sizeof(c->endpoint), "%s%s%s:%u", v6 ? "[" : "", cfg->host, v6 ? "]" : "",
             (unsigned)cfg->port);
    if (inet_pton(AF_INET, name, c->ip) == 1)
        c->ip_len = 4;
    else if (inet_pton(AF_INET6, name, c->ip) == 1)
        c->ip_len = 16;
    return TE_OK;
}

int tls_client_new(const struct tls_client_config *cfg, struct tls_client **out,
                   struct te_error *err)
{
    struct tls_client *c;
    int ret;

    CHECK_ARG(cfg != NULL && out != NULL, TE_ERR_INVALID);
    CHECK_ARG(cfg->host != NULL && cfg->ca_path != NULL && cfg->cert_path != NULL, TE_ERR_INVALID);
    CHECK_ARG(cfg->signer != NULL && cfg->port != 0, TE_ERR_INVALID);
    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_x509_crt_init(&c->roots);
    mbedtls_x509_crt_init(&c->cert);
    c->signer = cfg->signer;
    c->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : TLS_DEFAULT_TIMEOUT_MS;
    c->handshake_timeout_ms =
        cfg->handshake_timeout_ms > 0 ? cfg->handshake_timeout_ms : TLS_DEFAULT_TIMEOUT_MS;
    if ((ret = set_names(c, cfg, err)) != TE_OK ||
        (ret = parse_suites(c, cfg->ciphersuites, err)) != TE_OK ||
        (ret = load_roots(c, err)) != TE_OK || (ret = load_cert(c, err)) != TE_OK)
        goto exit;
    /* Also the self-test: fails unless the signer's public key is the certificate's. */
    if ((ret = tls_key_new(cfg->signer, &c->cert.pk, c->cert_path, &c->key, err)) != TE_OK)
        goto exit;
    if (mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0) {
        ret = te_error_set(err, TE_ERR_INTERNAL, "The TLS configuration cannot be initialized.");
        goto exit;
    }
    /* TLS 1.2 only: this mbedTLS build also has TLS 1.0/1.1, which sign MD5+SHA-1 hashes. */
    mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&c->conf, &c->roots, NULL);
    mbedtls_ssl_conf_ciphersuites(&c->conf, c->suites);
    mbedtls_ssl_conf_rng(&c->conf, te_random, NULL);
    if (mbedtls_ssl_conf_own_cert(&c->conf, &c->cert, tls_key_pk(c->key)) != 0) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
        goto exit;
    }
    *out = c;
    c = NULL;
    ret = TE_OK;
exit:
    tls_client_free(c);
    return ret;
}

void tls_client_free(struct tls_client *c)
{
    if (c == NULL)
        return;
    mbedtls_ssl_config_free(&c->conf);
    tls_key_free(c->key);
    mbedtls_x509_crt_free(&c->cert);
    mbedtls_x509_crt_free(&c->roots);
    free(c->host);
    free(c->server_name);
    free(c->ca_path);
    free(c->cert_path);
    free(c);
}

const char *tls_client_endpoint(const struct tls_client *c) { return c->endpoint; }

void tls_client_key_stats(struct tls_client *c, struct tls_key_stats *out)
{
    tls_key_get_stats(c->key, out);
}

/* ---- waiting and connecting -------------------------------------------------------------- */

/* Waits until fd has events (or an error/hangup) before deadline, serving the watch fds. */
static int wait_fd(int fd, short events, int64_t deadline, const struct tls_watch *w)
{
    struct pollfd p[1 + TLS_WATCH_MAX];
    int n = 1, r;

    p[0] = (struct pollfd){.fd = fd, .events = events};
    for (int i = 0; w != NULL && i < w->nfds && i < TLS_WATCH_MAX; i++)
        p[n++] = (struct pollfd){.fd = w->fds[i], .events = POLLIN};
    for (;;) {
        /* Past the deadline is a timeout even if the peer has answered meanwhile (a signature
         * may have taken the time): the outcome must not depend on who was faster. */
        int64_t left = deadline - te_monotonic_ms();
        if (left <= 0)
            return TE_ERR_TIMEOUT;
        r = poll(p, (nfds_t)n, left > INT32_MAX ? INT32_MAX : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return TE_ERR_IO;
        for (int i = 1; i < n; i++)
            if (p[i].revents != 0 && (r = w->ready(w->arg, p[i].fd)) != 0)
                return r;
        if (p[0].revents != 0)
            return TE_OK;
    }
}

static int tcp_connect(struct tls_session *s, const struct tls_watch *w, struct te_error *err)
{
    struct tls_client *c = s->client;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int64_t deadline = te_monotonic_ms() + c->connect_timeout_ms;
    int ret = TE_ERR_CONNECT, last_errno = ECONNREFUSED, fd = -1, one = 1, gai;

    if ((gai = getaddrinfo(c->host, c->port, &hints, &res)) != 0) {
        ret = te_error_set(err, TE_ERR_CONNECT,
                           "Cannot resolve the cloud host '%s': %s. Check the host name and the "
                           "device's DNS settings.", c->host, gai_strerror(gai));
        goto exit;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int soerr = 0;
        socklen_t len = sizeof(soerr);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last_errno = errno;
        } else if ((ret = wait_fd(fd, POLLOUT, deadline, w)) != TE_OK) {
            if (ret == TE_ERR_TIMEOUT)
                ret = te_error_set(err, TE_ERR_TIMEOUT,
                                   "Connecting to %s timed out after %g s. Check that the cloud "
                                   "host is reachable from this device (network, firewall, proxy).",
                                   c->endpoint, c->connect_timeout_ms / 1000.0);
            else if (ret == TE_ERR_IO)
                ret = te_error_set(err, TE_ERR_IO, "Waiting for the connection to %s failed: %s.",
                                   c->endpoint, strerror(errno));
            goto exit; /* the time is up, or a watch fd asked to stop */
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0) {
            break;
        } else {
            last_errno = soerr != 0 ? soerr : errno;
        }
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        ret = te_error_set(err, TE_ERR_CONNECT,
                           "Cannot connect to %s: %s. Check the cloud host and port, and that this "
                           "device may open connections to it.", c->endpoint, strerror(last_errno));
        goto exit;
    }
    /* mbedTLS writes each handshake message on its own: without this, Nagle plus the server's
     * delayed ACK adds ~40 ms to every handshake. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->fd = fd;
    fd = -1;
    ret = TE_OK;
exit:
    if (fd >= 0)
        close(fd);
    if (res != NULL)
        freeaddrinfo(res);
    return ret;
}

/* ---- BIO: send with MSG_NOSIGNAL (mbedtls_net_send uses write(): SIGPIPE) ----------------- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct tls_session *s = ctx;
    ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);

    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    s->last_errno = errno;
    return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                 : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct tls_session *s = ctx;
    ssize_t n = recv(s->fd, buf, len, 0);

    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_READ;
    s->last_errno = errno;
    return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
}

/* ---- sessions ---------------------------------------------------------------------------- */

int tls_session_open(struct tls_client *c, const struct tls_watch *watch,
                     struct tls_session **out, struct te_error *err)
{
    struct tls_session *s;
    int64_t start = te_monotonic_ms(), deadline;
    int ret, r;

    CHECK_ARG(c != NULL && out != NULL, TE_ERR_INVALID);
    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    s->client = c;
    s->fd = -1;
    mbedtls_ssl_init(&s->ssl);
    tls_key_take_error(c->key, NULL); /* whatever failed before is not this handshake's story */
    /* Before the cloud sees a connection: a daemon that is down fails here with its own
     * message, and one that restarted is reconnected to (or woken) outside the handshake. */
    if ((ret = signer_prepare(c->signer, err)) != TE_OK)
        goto exit;
    if ((ret = tcp_connect(s, watch, err)) != TE_OK)
        goto exit;
    if (mbedtls_ssl_setup(&s->ssl, &c->conf) != 0) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory setting up a TLS session.");
        goto exit;
    }
    if (c->ip_len > 0) {
        /* No SNI for an IP literal (RFC 6066) and 2.28 cannot match IP SANs: we do. */
        mbedtls_ssl_set_verify(&s->ssl, tls_verify_ip_san, c);
    } else if (mbedtls_ssl_set_hostname(&s->ssl, c->server_name) != 0) {
        ret = te_error_set(err, TE_ERR_INVALID, "The server name '%s' is not valid.", c->server_name);
        goto exit;
    }
    mbedtls_ssl_set_bio(&s->ssl, s, bio_send, bio_recv, NULL);
    deadline = te_monotonic_ms() + c->handshake_timeout_ms;
    for (;;) {
        r = mbedtls_ssl_handshake(&s->ssl);
        if (r != 0 && r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE) {
            ret = tls_explain_handshake(s, r, err);
            goto exit;
        }
        /* The signature runs inside mbedtls_ssl_handshake: a slow one may use up the time
         * even when the server answers at once, so the deadline is checked here too. */
        if (r == 0 && te_monotonic_ms() < deadline)
            break;
        ret = r == 0 ? TE_ERR_TIMEOUT
                     : wait_fd(s->fd, r == MBEDTLS_ERR_SSL_WANT_READ ? POLLIN : POLLOUT, deadline,
                               watch);
        if (ret == TE_ERR_TIMEOUT)
            ret = te_error_set(err, TE_ERR_TIMEOUT,
                               "The TLS handshake with %s did not finish within %g s. Check that "
                               "the port speaks TLS and that the device key answers in time.",
                               c->endpoint, c->handshake_timeout_ms / 1000.0);
        else if (ret == TE_ERR_IO)
            ret = te_error_set(err, TE_ERR_IO, "Waiting for the TLS handshake with %s failed: %s.",
                               c->endpoint, strerror(errno));
        if (ret != TE_OK)
            goto exit;
    }
    s->healthy = true;
    log_debug("TLS session to %s: %s in %lld ms", c->endpoint, mbedtls_ssl_get_ciphersuite(&s->ssl),
              (long long)(te_monotonic_ms() - start));
    *out = s;
    s = NULL;
    ret = TE_OK;
exit:
    tls_session_close(s, false);
    return ret;
}

void tls_session_close(struct tls_session *s, bool notify)
{
    if (s == NULL)
        return;
    if (notify && s->healthy) {
        int64_t deadline = te_monotonic_ms() + TLS_CLOSE_NOTIFY_WAIT_MS;
        while (tls_session_close_notify(s) == TLS_IO_WANT_WRITE &&
               wait_fd(s->fd, POLLOUT, deadline, NULL) == TE_OK)
            ;
    }
    mbedtls_ssl_free(&s->ssl);
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

const char *tls_session_suite(const struct tls_session *s)
{
    return mbedtls_ssl_get_ciphersuite(&s->ssl);
}

int tls_session_fd(const struct tls_session *s) { return s->fd; }

static int io_result(struct tls_session *s, int r, size_t *n, const char *what,
                     struct te_error *err)
{
    if (r > 0) {
        *n = (size_t)r;
        return TE_OK;
    }
    *n = 0;
    if (r == MBEDTLS_ERR_SSL_WANT_READ)
        return TLS_IO_WANT_READ;
    if (r == MBEDTLS_ERR_SSL_WANT_WRITE)
        return TLS_IO_WANT_WRITE;
    s->healthy = false;
    return tls_explain_io(s, r, what, err);
}

int tls_session_read(struct tls_session *s, void *buf, size_t len, size_t *n,
                     struct te_error *err)
{
    return io_result(s, mbedtls_ssl_read(&s->ssl, buf, len), n, "reading", err);
}

int tls_session_write(struct tls_session *s, const void *buf, size_t len, size_t *n,
                      struct te_error *err)
{
    if (len == 0) {
        *n = 0;
        return TE_OK;
    }
    return io_result(s, mbedtls_ssl_write(&s->ssl, buf, len), n, "writing", err);
}

int tls_session_close_notify(struct tls_session *s)
{
    int r = mbedtls_ssl_close_notify(&s->ssl);

    if (r == MBEDTLS_ERR_SSL_WANT_WRITE || r == MBEDTLS_ERR_SSL_WANT_READ)
        return TLS_IO_WANT_WRITE;
    s->healthy = false; /* sent, or failed: either way nothing more to say */
    return r == 0 ? TE_OK : TE_ERR_TLS;
}
