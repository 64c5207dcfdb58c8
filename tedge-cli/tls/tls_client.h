/* The TLS 1.2 client to the cloud: mbedTLS with the device key held by a signer, trust roots
 * from a file or directory, hostname/IP verification, and handshake errors that explain themselves. */
#ifndef TEDGE_CLI_TLS_CLIENT_H
#define TEDGE_CLI_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "tedge-cli/key/signer.h"
#include "tedge-cli/tls/tls_key.h"

/* Upstream thin-edge waits 60 s: a slow token (TPM, smart card) may take seconds per signature. */
#define TLS_DEFAULT_TIMEOUT_MS 60000
#define TLS_SUITE_LIST_MAX 512  /* the longest ciphersuites option we accept */

struct tls_client_config {
    const char *host;            /* name or IP literal to connect to */
    uint16_t port;
    const char *server_name;     /* name the server certificate must carry (and SNI); NULL = host */
    const char *ca_path;         /* trusted roots: a PEM/DER file or a directory like /etc/ssl/certs */
    const char *cert_path;       /* device certificate (PEM; a chain is sent as is) */
    struct signer *signer;       /* the device key; borrowed, must outlive the client */
    int connect_timeout_ms;      /* TCP connect, all addresses; 0 = TLS_DEFAULT_TIMEOUT_MS */
    int handshake_timeout_ms;    /* whole TLS handshake incl. the signature; 0 = default */
    const char *ciphersuites;    /* comma-separated mbedTLS names to force (tests); NULL = the
                                    modern ECDHE + AEAD list */
};

/* What stays the same for every connection: roots, device certificate, key, mbedTLS config.
 * Creating it checks that the key matches the certificate. Sessions may be opened from any
 * one thread at a time per session; the client itself is read-only after creation. */
struct tls_client;

int tls_client_new(const struct tls_client_config *cfg, struct tls_client **out,
                   struct te_error *err);
void tls_client_free(struct tls_client *c);
/* "host:port" for messages. */
const char *tls_client_endpoint(const struct tls_client *c);
void tls_client_key_stats(struct tls_client *c, struct tls_key_stats *out);

/* Lets a caller keep serving its own fds while a session opens (the relay watches its listening
 * socket and its stop signal): when one of fds is readable, ready(arg, fd) is called; it returns
 * 0 to go on, or a negative TE_ERR_* that aborts the open with that code (no message is set). */
#define TLS_WATCH_MAX 2
struct tls_watch {
    int fds[TLS_WATCH_MAX];
    int nfds;
    int (*ready)(void *arg, int fd);
    void *arg;
};

/* One TCP + TLS connection. Its socket is non-blocking: use the tls_session I/O calls. */
struct tls_session;

/* Gets the signer ready (signer_prepare: tedge-p11-server is pinged, so a stopped daemon fails
 * before the cloud sees a connection and a restarted or socket-activated one is reached before
 * the handshake), connects (TCP_NODELAY) and runs the handshake, within the configured
 * timeouts. Failures are explained in err: server not trusted, hostname mismatch, device
 * certificate rejected, the signer's own error (wrong PIN, daemon unreachable), connection
 * refused, timeout. */
int tls_session_open(struct tls_client *c, const struct tls_watch *watch,
                     struct tls_session **out, struct te_error *err);
/* Sends close_notify when notify is set and the session is healthy (best effort, never blocks),
 * then closes the socket. NULL is a no-op. */
void tls_session_close(struct tls_session *s, bool notify);

const char *tls_session_suite(const struct tls_session *s);
int tls_session_fd(const struct tls_session *s);

/* Non-blocking I/O results besides TE_OK and negative TE_ERR_*: poll the fd, then call again
 * (a write again with the same bytes). */
enum tls_io { TLS_IO_WANT_READ = 1, TLS_IO_WANT_WRITE = 2 };

/* Reads decrypted bytes: TE_OK with *n > 0, TLS_IO_WANT_*, TE_ERR_CLOSED when the server closed
 * (close_notify or EOF), or TE_ERR_TLS / TE_ERR_IO with err filled. */
int tls_session_read(struct tls_session *s, void *buf, size_t len, size_t *n,
                     struct te_error *err);
/* Writes: TE_OK with *n bytes taken (maybe fewer than len: at most one record), TLS_IO_WANT_*,
 * or an error. After TLS_IO_WANT_* call again with the same buf and len. */
int tls_session_write(struct tls_session *s, const void *buf, size_t len, size_t *n,
                      struct te_error *err);
/* Sends close_notify: TE_OK, TLS_IO_WANT_WRITE (call again), or an error. */
int tls_session_close_notify(struct tls_session *s);

#endif
