/* The signing key of X.509 writing (see x509_key.h): public key, hash and scheme per key type,
 * signatures from the signer or mbedTLS, each checked against the public key. */
#include "tedge-cli/key/x509_key.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>

#include "common/log.h"
#include "common/rand.h"

#define X509_SPKI_MAX 2048 /* an RSA-4096 SubjectPublicKeyInfo is about 550 bytes */

/* Hash and scheme by key: upstream's pairs (RSA and P-256 with SHA-256, P-384 with SHA-384),
 * and SHA-512 for P-521, which upstream does not support. */
static int pick_scheme(struct x509_key *k, const char *what, struct te_error *err)
{
    if (mbedtls_pk_get_type(&k->pub) == MBEDTLS_PK_RSA) {
        k->md = MBEDTLS_MD_SHA256;
        k->scheme = SIG_RSA_PKCS1_SHA256;
        return TE_OK;
    }
    if (mbedtls_pk_get_type(&k->pub) == MBEDTLS_PK_ECKEY) {
        switch (mbedtls_pk_ec(k->pub)->grp.id) {
        case MBEDTLS_ECP_DP_SECP256R1:
            k->md = MBEDTLS_MD_SHA256;
            k->scheme = SIG_ECDSA_SHA256;
            return TE_OK;
        case MBEDTLS_ECP_DP_SECP384R1:
            k->md = MBEDTLS_MD_SHA384;
            k->scheme = SIG_ECDSA_SHA384;
            return TE_OK;
        case MBEDTLS_ECP_DP_SECP521R1:
            k->md = MBEDTLS_MD_SHA512;
            k->scheme = SIG_ECDSA_SHA512;
            return TE_OK;
        default:
            break;
        }
    }
    return te_error_set(err, TE_ERR_UNSUPPORTED,
                        "The %s is neither an RSA key nor an EC key on P-256, P-384 or P-521, so "
                        "no certificate can be made for it: use a key of a supported type.", what);
}

static int parse_public(struct x509_key *k, const char *what, struct te_error *err)
{
    if (mbedtls_pk_parse_public_key(&k->pub, k->spki, k->spki_len) != 0)
        return te_error_set(err, TE_ERR_MALFORMED, "The public key of the %s cannot be parsed.",
                            what);
    return pick_scheme(k, what, err);
}

int x509_key_from_signer(struct x509_key *k, struct signer *signer, struct te_error *err)
{
    int ret;

    CHECK_ARG(k != NULL && signer != NULL, TE_ERR_INVALID);
    memset(k, 0, sizeof(*k));
    mbedtls_pk_init(&k->pub);
    k->signer = signer;
    if ((ret = signer_public_key(signer, &k->spki, &k->spki_len, err)) != TE_OK ||
        (ret = parse_public(k, signer_describe(signer), err)) != TE_OK)
        x509_key_clear(k);
    return ret;
}

int x509_key_from_pk(struct x509_key *k, mbedtls_pk_context *priv, struct te_error *err)
{
    unsigned char *buf = NULL;
    int n, ret;

    CHECK_ARG(k != NULL && priv != NULL, TE_ERR_INVALID);
    memset(k, 0, sizeof(*k));
    mbedtls_pk_init(&k->pub);
    k->priv = priv;
    if ((buf = malloc(X509_SPKI_MAX)) == NULL ||
        (n = mbedtls_pk_write_pubkey_der(priv, buf, X509_SPKI_MAX)) <= 0 ||
        (k->spki = malloc((size_t)n)) == NULL) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory encoding the device's public key.");
        goto exit;
    }
    /* mbedtls_pk_write_pubkey_der writes at the end of the buffer */
    memcpy(k->spki, buf + X509_SPKI_MAX - n, (size_t)n);
    k->spki_len = (size_t)n;
    ret = parse_public(k, "new device key", err);
exit:
    free(buf);
    if (ret != TE_OK)
        x509_key_clear(k);
    return ret;
}

void x509_key_clear(struct x509_key *k)
{
    if (k == NULL)
        return;
    free(k->spki);
    mbedtls_pk_free(&k->pub);
    memset(k, 0, sizeof(*k));
}

int x509_key_sign(struct x509_key *k, const uint8_t *data, size_t len, uint8_t *sig, size_t cap,
                  size_t *sig_len, struct te_error *err)
{
    const mbedtls_md_info_t *mi = mbedtls_md_info_from_type(k->md);
    unsigned char hash[MBEDTLS_MD_MAX_SIZE];
    size_t hlen = mbedtls_md_get_size(mi);
    int ret = TE_OK;

    if (mbedtls_md(mi, data, len, hash) != 0)
        return te_error_set(err, TE_ERR_INTERNAL, "The data to sign cannot be hashed.");
    if (k->signer != NULL) {
        if ((ret = signer_sign_digest(k->signer, k->scheme, hash, hlen, sig, cap, sig_len, err)) !=
            TE_OK)
            return ret;
    } else if (cap < MBEDTLS_PK_SIGNATURE_MAX_SIZE ||
               mbedtls_pk_sign(k->priv, k->md, hash, hlen, sig, sig_len, te_random, NULL) != 0) {
        return te_error_set(err, TE_ERR_INTERNAL, "The new device key cannot sign.");
    }
    if (mbedtls_pk_verify(&k->pub, k->md, hash, hlen, sig, *sig_len) != 0)
        return te_error_set(err, TE_ERR_PROTOCOL,
                            "The signature of the %s does not verify with its public key: the key "
                            "or the HSM is not working correctly.",
                            k->signer != NULL ? signer_describe(k->signer) : "new device key");
    return TE_OK;
}
