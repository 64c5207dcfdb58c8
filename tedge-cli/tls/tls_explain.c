/* Why a TLS session failed, in words (see tls_internal.h): certificate verification flags,
 * alerts from the server, the signer's own errors; and the IP-literal server name check. */
#include "tedge-cli/tls/tls_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/x509.h>

#define TLS_WORDS_MAX 256 /* verification problems in one sentence */

int tls_verify_ip_san(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    const struct tls_client *c = arg;
    const unsigned char tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_IP_ADDRESS;

    if (depth != 0)
        return 0;
    for (const mbedtls_x509_sequence *san = &crt->subject_alt_names; san != NULL; san = san->next)
        if (san->buf.tag == tag && san->buf.len == c->ip_len &&
            memcmp(san->buf.p, c->ip, c->ip_len) == 0)
            return 0;
    *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
}

static const char *alert_name(int alert)
{
    switch (alert) {
    case MBEDTLS_SSL_ALERT_MSG_CLOSE_NOTIFY: return "close_notify";
    case MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE: return "unexpected_message";
    case MBEDTLS_SSL_ALERT_MSG_BAD_RECORD_MAC: return "bad_record_mac";
    case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE: return "handshake_failure";
    case MBEDTLS_SSL_ALERT_MSG_BAD_CERT: return "bad_certificate";
    case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT: return "unsupported_certificate";
    case MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED: return "certificate_revoked";
    case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED: return "certificate_expired";
    case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN: return "certificate_unknown";
    case MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER: return "illegal_parameter";
    case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA: return "unknown_ca";
    case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED: return "access_denied";
    case MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR: return "decode_error";
    case MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR: return "decrypt_error";
    case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION: return "protocol_version";
    case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY: return "insufficient_security";
    case MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR: return "internal_error";
    case MBEDTLS_SSL_ALERT_MSG_UNRECOGNIZED_NAME: return "unrecognized_name";
    case 116: return "certificate_required"; /* RFC 8446; OpenSSL 3 sends it to TLS 1.2 peers too */
    default: return "unknown";
    }
}

/* The alert the server sent, or -1 when ret is not "fatal alert received". */
static int received_alert(const struct tls_session *s, int ret)
{
    if (ret != MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE || s->ssl.in_msg == NULL ||
        s->ssl.in_msgtype != MBEDTLS_SSL_MSG_ALERT)
        return -1;
    return s->ssl.in_msg[1];
}

static bool is_disconnect(int ret)
{
    return ret == MBEDTLS_ERR_SSL_CONN_EOF || ret == MBEDTLS_ERR_NET_CONN_RESET ||
           ret == MBEDTLS_ERR_NET_RECV_FAILED || ret == MBEDTLS_ERR_NET_SEND_FAILED;
}

/* mbedtls_x509_crt_verify_info's lines as one lower-case clause list: "a; b". */
static void verify_words(uint32_t flags, char *out, size_t size)
{
    char raw[TLS_WORDS_MAX];
    size_t o = 0;
    bool start = true;

    if (mbedtls_x509_crt_verify_info(raw, sizeof(raw), "", flags) < 0 || raw[0] == '\0')
        snprintf(raw, sizeof(raw), "verification flags 0x%08x", (unsigned)flags);
    for (const char *p = raw; *p != '\0' && o + 3 < size; p++) {
        if (*p == '\n') {
            if (p[1] != '\0') {
                out[o++] = ';';
                out[o++] = ' ';
            }
            start = true;
            continue;
        }
        out[o++] = start ? (char)tolower((unsigned char)*p) : *p;
        start = false;
    }
    out[o] = '\0';
}

static int explain_verify(struct tls_session *s, struct te_error *err)
{
    const struct tls_client *c = s->client;
    uint32_t flags = mbedtls_ssl_get_verify_result(&s->ssl);
    uint32_t trust = flags & ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH;
    char words[TLS_WORDS_MAX];

    if (trust == 0 && (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH))
        return te_error_set(err, TE_ERR_TLS,
                            "The server's certificate is not valid for host '%s': %s. Connect by a "
                            "name the certificate lists, or check the cloud URL.", c->server_name,
                            c->ip_len > 0 ? "the address is not among its IP address SANs"
                                          : "the name is not among its DNS names (SAN or CN)");
    verify_words(trust, words, sizeof(words));
    return te_error_set(err, TE_ERR_TLS,
                        "The server's certificate is not trusted by the CA certificates in '%s' "
                        "(%s)%s. Check the cloud URL, or add the CA that issued the server "
                        "certificate to the trusted roots.", c->ca_path, words,
                        (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) ? "; it is not valid for that "
                                                                    "host either" : "");
}

int tls_explain_handshake(struct tls_session *s, int ret, struct te_error *err)
{
    const struct tls_client *c = s->client;
    struct te_error kerr;
    int alert = received_alert(s, ret);
    char msg[128];

    /* The signer failed (wrong PIN, daemon unreachable, token gone): its words, unchanged. */
    if (tls_key_take_error(c->key, &kerr)) {
        if (err != NULL)
            *err = kerr;
        return kerr.code;
    }
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED)
        return explain_verify(s, err);
    /* We sent our Certificate (and CertificateVerify): a refusal now is about them. */
    if (s->ssl.client_auth && s->ssl.state > MBEDTLS_SSL_CLIENT_CERTIFICATE &&
        (alert >= 0 || is_disconnect(ret))) {
        if (alert == MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR)
            return te_error_set(err, TE_ERR_TLS,
                                "The server rejected the device certificate '%s': it could not "
                                "verify the signature made with the device key (%s) (TLS alert "
                                "decrypt_error). Check that the key and the certificate belong "
                                "together.", c->cert_path, signer_describe(c->signer));
        if (alert >= 0)
            snprintf(msg, sizeof(msg), "TLS alert %s", alert_name(alert));
        else
            snprintf(msg, sizeof(msg), "it closed the connection");
        return te_error_set(err, TE_ERR_TLS,
                            "The server rejected the device certificate '%s' (%s). Check that the "
                            "certificate is issued by a CA that %s trusts (for Cumulocity: upload "
                            "it to the tenant's trusted certificates) and that it is still valid.",
                            c->cert_path, msg, c->endpoint);
    }
    if (alert >= 0)
        return te_error_set(err, TE_ERR_TLS,
                            "The server %s refused the TLS handshake (TLS alert %s). Check that it "
                            "supports TLS 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305.",
                            c->endpoint, alert_name(alert));
    if (is_disconnect(ret))
        return te_error_set(err, TE_ERR_CONNECT,
                            "The server %s closed the connection during the TLS handshake%s%s. "
                            "Check that this port speaks TLS (MQTT over TLS is usually 8883).",
                            c->endpoint, s->last_errno != 0 ? ": " : "",
                            s->last_errno != 0 ? strerror(s->last_errno) : "");
    mbedtls_strerror(ret, msg, sizeof(msg));
    return te_error_set(err, TE_ERR_TLS, "The TLS handshake with %s failed: %s.", c->endpoint, msg);
}

int tls_explain_io(struct tls_session *s, int ret, const char *what, struct te_error *err)
{
    const struct tls_client *c = s->client;
    int alert = received_alert(s, ret);
    char msg[128];

    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == MBEDTLS_ERR_SSL_CONN_EOF)
        return te_error_set(err, TE_ERR_CLOSED, "The server %s closed the TLS connection.",
                            c->endpoint);
    if (alert >= 0)
        return te_error_set(err, TE_ERR_TLS, "The server %s ended the TLS connection (TLS alert %s).",
                            c->endpoint, alert_name(alert));
    if (is_disconnect(ret))
        return te_error_set(err, TE_ERR_CLOSED, "The connection to %s broke while %s: %s.",
                            c->endpoint, what,
                            s->last_errno != 0 ? strerror(s->last_errno) : "connection reset");
    mbedtls_strerror(ret, msg, sizeof(msg));
    return te_error_set(err, TE_ERR_TLS, "The TLS connection to %s failed while %s: %s.",
                        c->endpoint, what, msg);
}
