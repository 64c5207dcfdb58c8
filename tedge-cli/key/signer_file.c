/* Key-file backend of the signer (mode off): an unencrypted PEM or DER private key, RSA or
 * EC, parsed and used by mbedTLS in-process. */
#include "tedge-cli/key/signer_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "common/buf.h"
#include "common/rand.h"

#define KEY_DER_MAX 4096 /* SubjectPublicKeyInfo of an RSA-4096 key is ~550 bytes */

struct file_key {
    mbedtls_pk_context pk;
    pthread_mutex_t lock;   /* mbedTLS contexts are not safe for concurrent signing */
};

static mbedtls_md_type_t md_of(enum sig_hash h)
{
    switch (h) {
    case SIG_HASH_SHA256: return MBEDTLS_MD_SHA256;
    case SIG_HASH_SHA384: return MBEDTLS_MD_SHA384;
    case SIG_HASH_SHA512: return MBEDTLS_MD_SHA512;
    }
    return MBEDTLS_MD_NONE;
}

static enum p11_curve curve_of(mbedtls_ecp_group_id id)
{
    switch (id) {
    case MBEDTLS_ECP_DP_SECP256R1: return P11_CURVE_P256;
    case MBEDTLS_ECP_DP_SECP384R1: return P11_CURVE_P384;
    case MBEDTLS_ECP_DP_SECP521R1: return P11_CURVE_P521;
    default: return P11_CURVE_NONE;
    }
}

static int file_key_info(struct signer *s, struct signer_key_info *out, struct te_error *err)
{
    struct file_key *k = s->backend;

    memset(out, 0, sizeof(*out));
    out->bits = (unsigned)mbedtls_pk_get_bitlen(&k->pk);
    if (mbedtls_pk_can_do(&k->pk, MBEDTLS_PK_RSA)) {
        out->type = P11_KEY_RSA;
        for (int h = SIG_HASH_SHA256; h <= SIG_HASH_SHA512; h++)
            out->schemes |= 1u << sig_scheme_make(SIG_ALG_RSA_PKCS1, (enum sig_hash)h) |
                            1u << sig_scheme_make(SIG_ALG_RSA_PSS, (enum sig_hash)h);
        return TE_OK;
    }
    out->type = P11_KEY_EC;
    out->curve = curve_of(mbedtls_pk_ec(k->pk)->grp.id);
    if (out->curve == P11_CURVE_NONE)
        return te_error_set(err, TE_ERR_UNSUPPORTED,
                            "The %s uses an EC curve other than P-256, P-384 or P-521.", s->desc);
    for (int h = SIG_HASH_SHA256; h <= SIG_HASH_SHA512; h++)
        out->schemes |= 1u << sig_scheme_make(SIG_ALG_ECDSA, (enum sig_hash)h);
    return TE_OK;
}

static int file_public_key(struct signer *s, uint8_t **der, size_t *der_len, struct te_error *err)
{
    struct file_key *k = s->backend;
    unsigned char tmp[KEY_DER_MAX];
    int n = mbedtls_pk_write_pubkey_der(&k->pk, tmp, sizeof(tmp));

    if (n <= 0)
        return te_error_set(err, TE_ERR_INTERNAL, "Cannot encode the public key of the %s.",
                            s->desc);
    if ((*der = malloc((size_t)n)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    /* mbedtls_pk_write_pubkey_der writes at the end of the buffer */
    memcpy(*der, tmp + sizeof(tmp) - (size_t)n, (size_t)n);
    *der_len = (size_t)n;
    return TE_OK;
}

static int file_sign(struct signer *s, enum sig_scheme scheme, const uint8_t *digest, size_t len,
                     uint8_t *sig, size_t cap, size_t *sig_len, struct te_error *err)
{
    struct file_key *k = s->backend;
    unsigned char out[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t n = 0;
    int r;
    enum sig_alg alg = sig_scheme_alg(scheme);
    mbedtls_md_type_t md = md_of(sig_scheme_hash(scheme));
    bool is_rsa = mbedtls_pk_can_do(&k->pk, MBEDTLS_PK_RSA);

    if (is_rsa == (alg == SIG_ALG_ECDSA))
        return te_error_set(err, TE_ERR_MECHANISM, "The %s is an %s key and cannot sign with %s.",
                            s->desc, is_rsa ? "RSA" : "EC", sig_scheme_name(scheme));
    pthread_mutex_lock(&k->lock);
    if (alg == SIG_ALG_RSA_PSS) {
        mbedtls_rsa_context *rsa = mbedtls_pk_rsa(k->pk);
        n = mbedtls_rsa_get_len(rsa);
        /* PSS takes its MGF1 hash from the context's padding settings */
        mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, md);
        r = mbedtls_rsa_rsassa_pss_sign_ext(rsa, te_random, NULL, md, (unsigned)len, digest,
                                            (int)len, out);
    } else {
        if (is_rsa)
            mbedtls_rsa_set_padding(mbedtls_pk_rsa(k->pk), MBEDTLS_RSA_PKCS_V15, MBEDTLS_MD_NONE);
        r = mbedtls_pk_sign(&k->pk, md, digest, len, out, &n, te_random, NULL);
    }
    pthread_mutex_unlock(&k->lock);
    if (r != 0) {
        char msg[128];
        mbedtls_strerror(r, msg, sizeof(msg));
        return te_error_set(err, TE_ERR_INTERNAL, "Signing with the %s failed: %s.", s->desc, msg);
    }
    if (n > cap)
        return te_error_set(err, TE_ERR_TOO_LARGE, "The signature buffer is too small.");
    memcpy(sig, out, n);
    *sig_len = n;
    te_wipe(out, sizeof(out));
    return TE_OK;
}

static void file_close(struct signer *s)
{
    struct file_key *k = s->backend;
    if (k == NULL)
        return;
    mbedtls_pk_free(&k->pk);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

static const struct signer_ops file_ops = {
    .key_info = file_key_info,
    .public_key = file_public_key,
    .sign = file_sign,
    .close = file_close,
};

int signer_file_open(struct signer *s, const struct signer_config *cfg, struct te_error *err)
{
    struct file_key *k;
    int r;

    if (cfg->key_path == NULL || cfg->key_path[0] == '\0')
        return te_error_set(err, TE_ERR_CONFIG,
                            "No device key file is configured: set device.key_path.");
    snprintf(s->desc, sizeof(s->desc), "key file '%s'", cfg->key_path);
    if (access(cfg->key_path, F_OK) != 0)
        return te_error_set(err, errno == ENOENT ? TE_ERR_NOT_FOUND : TE_ERR_IO,
                            "The device key file '%s' cannot be read: %s.", cfg->key_path,
                            strerror(errno));
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    mbedtls_pk_init(&k->pk);
    pthread_mutex_init(&k->lock, NULL);
    s->backend = k;
    s->ops = &file_ops;
    if ((r = mbedtls_pk_parse_keyfile(&k->pk, cfg->key_path, NULL)) != 0) {
        char msg[128];
        mbedtls_strerror(r, msg, sizeof(msg));
        return te_error_set(err, r == MBEDTLS_ERR_PK_FILE_IO_ERROR ? TE_ERR_IO : TE_ERR_MALFORMED,
                            "The device key file '%s' is not a usable private key: %s.",
                            cfg->key_path, msg);
    }
    if (!mbedtls_pk_can_do(&k->pk, MBEDTLS_PK_RSA) && !mbedtls_pk_can_do(&k->pk, MBEDTLS_PK_ECKEY))
        return te_error_set(err, TE_ERR_UNSUPPORTED,
                            "The device key file '%s' holds neither an RSA nor an EC key.",
                            cfg->key_path);
    return TE_OK;
}
