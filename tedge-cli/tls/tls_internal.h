/* Internals shared by the TLS client's files (tls_client.c: setup, connect, I/O; tls_explain.c:
 * server name checks and handshake failure messages). Only tedge-cli/tls/ includes this. */
#ifndef TEDGE_CLI_TLS_INTERNAL_H
#define TEDGE_CLI_TLS_INTERNAL_H

#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "tedge-cli/tls/tls_client.h"

#define TLS_SUITES_MAX 16      /* forced suites we keep; the modern list has 6 */
#define TLS_ENDPOINT_MAX 300   /* "[host]:port" for messages */

struct tls_client {
    mbedtls_ssl_config conf;
    mbedtls_x509_crt roots;
    mbedtls_x509_crt cert;
    struct tls_key *key;
    struct signer *signer;              /* borrowed */
    int suites[TLS_SUITES_MAX + 1];     /* 0-terminated, as mbedtls_ssl_conf_ciphersuites wants */
    char *host;
    char *server_name;                  /* what the server certificate must name */
    char *ca_path;
    char *cert_path;
    char port[8];
    char endpoint[TLS_ENDPOINT_MAX];
    unsigned char ip[16];               /* server_name as an IP literal ... */
    size_t ip_len;                      /* ... 4 or 16 bytes; 0 when it is a DNS name */
    int connect_timeout_ms;
    int handshake_timeout_ms;
};

struct tls_session {
    struct tls_client *client;
    mbedtls_ssl_context ssl;
    int fd;
    int last_errno;                     /* of the last failed send/recv, for messages */
    bool healthy;                       /* handshake done and no fatal error since */
};

/* mbedTLS verify callback for an IP literal server name: 2.28 matches only DNS names, so the
 * certificate's iPAddress SANs are checked here (arg is the tls_client). */
int tls_verify_ip_san(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags);

/* Turns a failed mbedtls_ssl_handshake (ret) into a sentence: the signer's own error first,
 * then untrusted server, name mismatch, device certificate rejected, alerts, generic. */
int tls_explain_handshake(struct tls_session *s, int ret, struct te_error *err);

/* The same for a failure on an established session while doing what ("reading"). */
int tls_explain_io(struct tls_session *s, int ret, const char *what, struct te_error *err);

#endif
