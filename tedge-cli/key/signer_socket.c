/* Socket backend of the signer (mode socket): every key operation is a request to
 * tedge-p11-server over its Unix socket, on one persistent connection (proto/client). */
#include "tedge-cli/key/signer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/der.h"
#include "proto/client.h"

/* Long enough for a slow token (a TPM or smartcard sign can take seconds); upstream's TLS
 * handshake timeout is 60 s and a request must fit inside it. */
#define SOCKET_SIGNER_TIMEOUT_MS 60000

struct socket_key {
    struct proto_client *client;
    struct signer_token_ref ref;
};

static enum p11_key_type key_type_of(enum proto_key_type t)
{
    return t == PROTO_KEY_EC ? P11_KEY_EC : P11_KEY_RSA;
}

static enum p11_curve curve_of(enum proto_curve c)
{
    switch (c) {
    case PROTO_CURVE_P256: return P11_CURVE_P256;
    case PROTO_CURVE_P384: return P11_CURVE_P384;
    case PROTO_CURVE_P521: return P11_CURVE_P521;
    default: return P11_CURVE_NONE;
    }
}

static int socket_key_info(struct signer *s, struct signer_key_info *out, struct te_error *err)
{
    struct socket_key *k = s->backend;
    struct proto_key_info info;
    int ret;

    if ((ret = proto_client_key_info(k->client, k->ref.uri, k->ref.pin, &info, err)) != TE_OK)
        return ret;
    if (info.type != PROTO_KEY_EC && info.type != PROTO_KEY_RSA)
        return te_error_set(err, TE_ERR_UNSUPPORTED,
                            "tedge-p11-server reports a key type that is neither RSA nor EC for "
                            "the %s.", s->desc);
    memset(out, 0, sizeof(*out));
    out->type = key_type_of(info.type);
    out->bits = info.bits;
    out->curve = curve_of(info.curve);
    out->schemes = info.schemes;
    return TE_OK;
}

static int socket_public_key(struct signer *s, uint8_t **der, size_t *der_len,
                             struct te_error *err)
{
    struct socket_key *k = s->backend;
    char *pem = NULL;
    int ret;

    if ((ret = proto_client_public_key(k->client, k->ref.uri, k->ref.pin, &pem, err)) != TE_OK)
        return ret;
    ret = der_from_pem(pem, "PUBLIC KEY", der, der_len);
    free(pem);
    if (ret != TE_OK)
        return te_error_set(err, TE_ERR_PROTOCOL,
                            "tedge-p11-server sent a public key that is not a PEM SubjectPublicKeyInfo.");
    return TE_OK;
}

static int socket_sign(struct signer *s, enum sig_scheme scheme, const uint8_t *digest,
                       size_t len, uint8_t *sig, size_t cap, size_t *sig_len,
                       struct te_error *err)
{
    struct socket_key *k = s->backend;
    return proto_client_sign(k->client, k->ref.uri, k->ref.pin, scheme, digest, len, sig, cap,
                             sig_len, err);
}

/* A ping is the cheapest request: it proves the daemon answers, starts a socket-activated one,
 * and lets the client's one reconnect happen here rather than during a TLS handshake. */
static int socket_prepare(struct signer *s, struct te_error *err)
{
    struct socket_key *k = s->backend;
    struct proto_ping_result pong;

    return proto_client_ping(k->client, &pong, err);
}

static void socket_close(struct signer *s)
{
    struct socket_key *k = s->backend;
    if (k == NULL)
        return;
    proto_client_close(k->client);
    signer_token_ref_wipe(&k->ref);
    free(k);
}

static const struct signer_ops socket_ops = {
    .key_info = socket_key_info,
    .public_key = socket_public_key,
    .sign = socket_sign,
    .close = socket_close,
    .prepare = socket_prepare,
};

int signer_socket_open(struct signer *s, const struct signer_config *cfg, struct te_error *err)
{
    struct socket_key *k;
    char redacted[P11_URI_MAX];
    int ret;

    if (cfg->socket_path == NULL || cfg->socket_path[0] == '\0')
        return te_error_set(err, TE_ERR_CONFIG,
                            "device.cryptoki.mode is 'socket' but no socket is configured: set "
                            "device.cryptoki.socket_path.");
    p11_uri_redact(cfg->key_uri ? cfg->key_uri : "pkcs11:", redacted, sizeof(redacted));
    snprintf(s->desc, sizeof(s->desc), "PKCS#11 key '%s' (via tedge-p11-server at '%s')",
             redacted, cfg->socket_path);
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    s->backend = k;
    s->ops = &socket_ops;
    if ((ret = signer_token_ref_copy(&k->ref, cfg, err)) != TE_OK)
        return ret;
    ret = proto_client_open(cfg->socket_path,
                            cfg->timeout_ms > 0 ? cfg->timeout_ms : SOCKET_SIGNER_TIMEOUT_MS,
                            &k->client, err);
    /* A stopped daemon shows now, not when the key is first used. */
    if (ret == TE_OK)
        ret = socket_prepare(s, err);
    return ret;
}
