/* The device key as an mbedTLS private key (see tls_key.h): rsa_alt callbacks for RSA, our own
 * mbedtls_pk_info_t for EC. mbedTLS hashes; every signature is made by the signer. */
#include "tedge-cli/tls/tls_key.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk_internal.h>
#include <mbedtls/rsa.h>
#include <mbedtls/version.h>

#include "common/log.h"

/* The EC key fills struct mbedtls_pk_info_t, which 2.x declares in the installed
 * mbedtls/pk_internal.h; 3.x moved it to a private header (use PSA opaque keys there). */
#if MBEDTLS_VERSION_NUMBER < 0x02100000 || MBEDTLS_VERSION_NUMBER >= 0x03000000
#error "tedge-cli/tls needs mbedTLS 2.16 to 2.28: the EC key fills mbedtls/pk_internal.h's mbedtls_pk_info_t"
#endif

#if defined(MBEDTLS_ECDSA_C) && defined(MBEDTLS_ECP_RESTARTABLE)
#define PK_INFO_SLOTS 16 /* type, name, 10 functions, 2 restartable sign/verify, 2 rs alloc/free */
#else
#define PK_INFO_SLOTS 12 /* type, name and 10 function pointers */
#endif
_Static_assert(sizeof(mbedtls_pk_info_t) == PK_INFO_SLOTS * sizeof(void *),
               "mbedtls/pk_internal.h does not have the mbedtls_pk_info_t layout of mbedTLS 2.28");

#define TLS_KEY_SPKI_MAX 4096 /* SubjectPublicKeyInfo of an RSA-4096 key is ~550 bytes */
#define TLS_KEY_DESC_MAX 64   /* "RSA 4096-bit" */
/* What mbedTLS reports when the signer failed ("PK hardware accelerator failed": the token did).
 * Callers replace it with the signer's own error through tls_key_take_error. */
#define TLS_KEY_ERR_SIGN MBEDTLS_ERR_PK_HW_ACCEL_FAILED

struct tls_key {
    mbedtls_pk_context pk;
    struct signer *signer;      /* borrowed */
    size_t rsa_len;             /* RSA: modulus bytes, from the certificate's key */
    pthread_mutex_t lock;       /* guards what follows: mbedTLS may sign from any thread */
    bool has_err;
    struct te_error last_err;
    struct tls_key_stats stats;
};

/* pk_ctx of an EC device key. */
struct ec_key_ctx {
    mbedtls_ecp_keypair pub;    /* must be first: mbedtls_pk_ec() casts pk_ctx to it */
    struct tls_key *key;
};

static int hash_of_md(mbedtls_md_type_t md, enum sig_hash *out)
{
    switch (md) {
    case MBEDTLS_MD_SHA256: *out = SIG_HASH_SHA256; return TE_OK;
    case MBEDTLS_MD_SHA384: *out = SIG_HASH_SHA384; return TE_OK;
    case MBEDTLS_MD_SHA512: *out = SIG_HASH_SHA512; return TE_OK;
    default: return TE_ERR_UNSUPPORTED;
    }
}

static void key_record(struct tls_key *k, const struct te_error *err, const enum sig_hash *hash)
{
    pthread_mutex_lock(&k->lock);
    if (err == NULL) {
        k->stats.signatures++;
        k->stats.have_last_hash = true;
        k->stats.last_hash = *hash;
    } else {
        k->stats.failures++;
        k->last_err = *err;
        k->has_err = true;
    }
    pthread_mutex_unlock(&k->lock);
}

/* Both key types end here. md_alg is honoured exactly (mbedTLS signs the TLS 1.2
 * CertificateVerify with the suite's hash); hash_len 0 means "the size of md_alg". The
 * signature is RSA: exactly max_len bytes; EC: DER of at most max_len bytes. */
static int key_sign(struct tls_key *k, enum sig_alg alg, mbedtls_md_type_t md_alg,
                    const unsigned char *hash, size_t hash_len, unsigned char *sig,
                    size_t *sig_len, size_t max_len)
{
    struct te_error err = {0};
    enum sig_hash h = SIG_HASH_SHA256;
    size_t n = 0;
    int ret = TLS_KEY_ERR_SIGN;

    if (hash_of_md(md_alg, &h) != TE_OK) {
        const mbedtls_md_info_t *mi = mbedtls_md_info_from_type(md_alg);
        te_error_set(&err, TE_ERR_UNSUPPORTED,
                     "mbedTLS asked the %s for a signature over %s; only SHA-256, SHA-384 and "
                     "SHA-512 digests are signed (TLS 1.2 only).",
                     signer_describe(k->signer),
                     mi != NULL ? mbedtls_md_get_name(mi) : "a raw MD5+SHA-1 hash (TLS 1.0/1.1)");
        ret = MBEDTLS_ERR_PK_BAD_INPUT_DATA;
        goto exit;
    }
    if (hash_len == 0)
        hash_len = sig_hash_len(h);
    if (hash == NULL || hash_len != sig_hash_len(h)) {
        te_error_set(&err, TE_ERR_INVALID, "A %s digest is %zu bytes long, not %zu.",
                     sig_hash_name(h), sig_hash_len(h), hash_len);
        ret = MBEDTLS_ERR_PK_BAD_INPUT_DATA;
        goto exit;
    }
    /* mbedTLS hands us a buffer of at least MBEDTLS_PK_SIGNATURE_MAX_SIZE bytes. */
    if (signer_sign_digest(k->signer, sig_scheme_make(alg, h), hash, hash_len, sig,
                           MBEDTLS_PK_SIGNATURE_MAX_SIZE, &n, &err) != TE_OK)
        goto exit;
    if (alg == SIG_ALG_ECDSA ? (n == 0 || n > max_len) : n != max_len) {
        te_error_set(&err, TE_ERR_PROTOCOL,
                     "The %s returned a %zu-byte signature where %s%zu bytes were expected.",
                     signer_describe(k->signer), n, alg == SIG_ALG_ECDSA ? "at most " : "",
                     max_len);
        goto exit;
    }
    *sig_len = n;
    ret = 0;
exit:
    key_record(k, ret == 0 ? NULL : &err, &h);
    return ret;
}

/* ---- RSA: mbedtls_pk_setup_rsa_alt ----------------------------------------------------- */

static int rsa_alt_sign(void *ctx, int (*f_rng)(void *, unsigned char *, size_t), void *p_rng,
                        int mode, mbedtls_md_type_t md_alg, unsigned int hashlen,
                        const unsigned char *hash, unsigned char *sig)
{
    struct tls_key *k = ctx;
    size_t n = 0;

    (void)f_rng;
    (void)p_rng;
    if (mode != MBEDTLS_RSA_PRIVATE)
        return MBEDTLS_ERR_RSA_BAD_INPUT_DATA;
    /* The signer gets the bare digest and its scheme; the DigestInfo is built below it
     * (PKCS#11 core or mbedTLS in the key-file backend), never here. */
    return key_sign(k, SIG_ALG_RSA_PKCS1, md_alg, hash, hashlen, sig, &n, k->rsa_len);
}

static int rsa_alt_decrypt(void *ctx, int mode, size_t *olen, const unsigned char *input,
                           unsigned char *output, size_t output_max_len)
{
    (void)ctx;
    (void)mode;
    (void)olen;
    (void)input;
    (void)output;
    (void)output_max_len;
    return MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE; /* a TLS client never decrypts with its key */
}

static size_t rsa_alt_key_len(void *ctx)
{
    return ((const struct tls_key *)ctx)->rsa_len;
}

/* ---- EC: a pk_info table of ours ------------------------------------------------------- */

static size_t ec_get_bitlen(const void *ctx)
{
    return ((const mbedtls_ecp_keypair *)ctx)->grp.pbits;
}

static int ec_can_do(mbedtls_pk_type_t type)
{
    /* not ECKEY_DH: the private key never leaves the signer, so no static ECDH */
    return type == MBEDTLS_PK_ECKEY || type == MBEDTLS_PK_ECDSA;
}

static int ec_verify(void *ctx, mbedtls_md_type_t md_alg, const unsigned char *hash,
                     size_t hash_len, const unsigned char *sig, size_t sig_len)
{
    struct ec_key_ctx *ec = ctx;
    int r;

    (void)md_alg;
    r = mbedtls_ecdsa_read_signature(&ec->pub, hash, hash_len, sig, sig_len);
    return r == MBEDTLS_ERR_ECP_SIG_LEN_MISMATCH ? MBEDTLS_ERR_PK_SIG_LEN_MISMATCH : r;
}

static int ec_sign(void *ctx, mbedtls_md_type_t md_alg, const unsigned char *hash,
                   size_t hash_len, unsigned char *sig, size_t *sig_len,
                   int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
    struct ec_key_ctx *ec = ctx;

    (void)f_rng;
    (void)p_rng;
    /* The signer returns ECDSA-Sig-Value DER, which is what TLS and pk_sign expect. */
    return key_sign(ec->key, SIG_ALG_ECDSA, md_alg, hash, hash_len, sig, sig_len,
                    MBEDTLS_ECDSA_MAX_SIG_LEN(ec->pub.grp.pbits));
}

static int ec_check_pair(const void *pub, const void *prv)
{
    const mbedtls_ecp_keypair *a = pub, *b = prv;

    if (a->grp.id != b->grp.id || mbedtls_ecp_point_cmp(&a->Q, &b->Q) != 0)
        return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
    return 0;
}

static void *ec_ctx_alloc(void)
{
    struct ec_key_ctx *ec = calloc(1, sizeof(*ec));

    if (ec != NULL)
        mbedtls_ecp_keypair_init(&ec->pub);
    return ec;
}

static void ec_ctx_free(void *ctx)
{
    struct ec_key_ctx *ec = ctx;

    if (ec == NULL)
        return;
    mbedtls_ecp_keypair_free(&ec->pub);
    free(ec);
}

static void ec_debug(const void *ctx, mbedtls_pk_debug_item *items)
{
    items->type = MBEDTLS_PK_DEBUG_ECP;
    items->name = "eckey.Q";
    items->value = (void *)&((const mbedtls_ecp_keypair *)ctx)->Q;
}

/* Designated initializers: the restartable members, when the header has them, stay NULL and
 * mbedTLS then falls back to sign_func/verify_func. */
static const mbedtls_pk_info_t ec_signer_info = {
    .type = MBEDTLS_PK_ECKEY,
    .name = "EC",
    .get_bitlen = ec_get_bitlen,
    .can_do = ec_can_do,
    .verify_func = ec_verify,
    .sign_func = ec_sign,
    .decrypt_func = NULL,
    .encrypt_func = NULL,
    .check_pair_func = ec_check_pair,
    .ctx_alloc_func = ec_ctx_alloc,
    .ctx_free_func = ec_ctx_free,
    .debug_func = ec_debug,
};

/* ---- layout check ---------------------------------------------------------------------- */

static pthread_once_t layout_once = PTHREAD_ONCE_INIT;
static char layout_problem[160]; /* empty when the library matches the header */

static void layout_check(void)
{
    const mbedtls_pk_info_t *lib = mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY);
    unsigned long have = (unsigned long)mbedtls_version_get_number();

    if ((have >> 16) != ((unsigned long)MBEDTLS_VERSION_NUMBER >> 16))
        snprintf(layout_problem, sizeof(layout_problem),
                 "the library is version 0x%08lx, the headers 0x%08lx", have,
                 (unsigned long)MBEDTLS_VERSION_NUMBER);
    else if (lib == NULL)
        snprintf(layout_problem, sizeof(layout_problem), "the library has no EC key support");
    /* A header/library mismatch (e.g. MBEDTLS_ECP_RESTARTABLE) shifts exactly these fields. */
    else if (lib->type != MBEDTLS_PK_ECKEY || lib->name == NULL || strcmp(lib->name, "EC") != 0 ||
             lib->decrypt_func != NULL || lib->encrypt_func != NULL ||
             lib->check_pair_func == NULL || lib->ctx_alloc_func == NULL ||
             lib->ctx_free_func == NULL || lib->debug_func == NULL || lib->can_do == NULL ||
             !lib->can_do(MBEDTLS_PK_ECDSA) || lib->can_do(MBEDTLS_PK_RSA))
        snprintf(layout_problem, sizeof(layout_problem),
                 "the library's EC key table does not have the layout of mbedtls/pk_internal.h");
    if (layout_problem[0] != '\0')
        log_error("mbedtls pk_info layout check failed: %s", layout_problem);
}

int tls_key_check_layout(struct te_error *err)
{
    pthread_once(&layout_once, layout_check);
    if (layout_problem[0] == '\0')
        return TE_OK;
    return te_error_set(err, TE_ERR_UNSUPPORTED,
                        "The installed mbedTLS library does not match the headers tedge was built "
                        "with (%s), so EC device keys cannot be used: rebuild tedge against the "
                        "installed libmbedtls-dev.", layout_problem);
}

/* ---- the key --------------------------------------------------------------------------- */

static const char *curve_name(enum p11_curve c)
{
    switch (c) {
    case P11_CURVE_P256: return "P-256";
    case P11_CURVE_P384: return "P-384";
    case P11_CURVE_P521: return "P-521";
    default: return "unknown-curve";
    }
}

static void describe_cert_key(const mbedtls_pk_context *pk, char *out, size_t size)
{
    if (mbedtls_pk_can_do(pk, MBEDTLS_PK_RSA)) {
        snprintf(out, size, "RSA %zu-bit", mbedtls_pk_get_bitlen(pk));
    } else if (mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY)) {
        mbedtls_ecp_group_id id = mbedtls_pk_ec(*pk)->grp.id;
        snprintf(out, size, "EC %s",
                 curve_name(id == MBEDTLS_ECP_DP_SECP256R1   ? P11_CURVE_P256
                            : id == MBEDTLS_ECP_DP_SECP384R1 ? P11_CURVE_P384
                            : id == MBEDTLS_ECP_DP_SECP521R1 ? P11_CURVE_P521
                                                             : P11_CURVE_NONE));
    } else {
        snprintf(out, size, "%s", mbedtls_pk_get_name(pk));
    }
}

/* The self-test: the signer's public key must be the certificate's, byte for byte. */
static int key_match_cert(struct signer *signer, mbedtls_pk_context *cert_pk,
                          const char *cert_path, struct te_error *err)
{
    unsigned char cert_der[TLS_KEY_SPKI_MAX];
    char want[TLS_KEY_DESC_MAX], have[TLS_KEY_DESC_MAX];
    struct signer_key_info info;
    uint8_t *der = NULL;
    size_t der_len = 0;
    int n, ret;

    n = mbedtls_pk_write_pubkey_der(cert_pk, cert_der, sizeof(cert_der));
    if (n <= 0) {
        ret = te_error_set(err, TE_ERR_MALFORMED,
                           "The public key of the certificate '%s' cannot be encoded.", cert_path);
        goto exit;
    }
    if ((ret = signer_public_key(signer, &der, &der_len, err)) != TE_OK)
        goto exit;
    /* mbedtls_pk_write_pubkey_der writes at the end of the buffer */
    if (der_len == (size_t)n && memcmp(der, cert_der + sizeof(cert_der) - (size_t)n, der_len) == 0)
        goto exit;
    describe_cert_key(cert_pk, want, sizeof(want));
    if (signer_key_info(signer, &info, NULL) != TE_OK)
        snprintf(have, sizeof(have), "of unknown type");
    else if (info.type == P11_KEY_RSA)
        snprintf(have, sizeof(have), "RSA %u-bit", info.bits);
    else
        snprintf(have, sizeof(have), "EC %s", curve_name(info.curve));
    if (strcmp(want, have) == 0)
        ret = te_error_set(err, TE_ERR_CONFIG,
                           "The device key (%s) does not match the certificate '%s': both are %s "
                           "keys, but the public keys differ. Use the key the certificate was "
                           "issued for, or create a new certificate for this key.",
                           signer_describe(signer), cert_path, want);
    else
        ret = te_error_set(err, TE_ERR_CONFIG,
                           "The device key (%s) does not match the certificate '%s': the "
                           "certificate is for an %s key, the device key is %s. Use the key the "
                           "certificate was issued for, or create a new certificate for this key.",
                           signer_describe(signer), cert_path, want, have);
exit:
    free(der);
    return ret;
}

static int ec_setup(struct tls_key *k, mbedtls_pk_context *cert_pk, struct te_error *err)
{
    const mbedtls_ecp_keypair *cert_ec = mbedtls_pk_ec(*cert_pk);
    struct ec_key_ctx *ec;
    int ret;

    if ((ret = tls_key_check_layout(err)) != TE_OK)
        return ret;
    if (mbedtls_pk_setup(&k->pk, &ec_signer_info) != 0)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory setting up the device key.");
    ec = k->pk.pk_ctx;
    ec->key = k;
    if (mbedtls_ecp_group_load(&ec->pub.grp, cert_ec->grp.id) != 0 ||
        mbedtls_ecp_copy(&ec->pub.Q, &cert_ec->Q) != 0)
        return te_error_set(err, TE_ERR_UNSUPPORTED,
                            "The EC curve of the device certificate is not supported.");
    return TE_OK;
}

int tls_key_new(struct signer *signer, mbedtls_pk_context *cert_pk, const char *cert_path,
                struct tls_key **out, struct te_error *err)
{
    struct tls_key *k = NULL;
    int ret;

    CHECK_ARG(signer != NULL && cert_pk != NULL && cert_path != NULL && out != NULL,
              TE_ERR_INVALID);
    *out = NULL;
    if ((ret = key_match_cert(signer, cert_pk, cert_path, err)) != TE_OK)
        goto exit;
    if ((k = calloc(1, sizeof(*k))) == NULL) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory setting up the device key.");
        goto exit;
    }
    mbedtls_pk_init(&k->pk);
    pthread_mutex_init(&k->lock, NULL);
    k->signer = signer;
    if (mbedtls_pk_can_do(cert_pk, MBEDTLS_PK_RSA)) {
        k->rsa_len = mbedtls_pk_get_len(cert_pk);
        if (k->rsa_len == 0 || k->rsa_len > MBEDTLS_PK_SIGNATURE_MAX_SIZE) {
            ret = te_error_set(err, TE_ERR_UNSUPPORTED,
                               "The RSA key of the certificate '%s' has an unsupported size.",
                               cert_path);
            goto exit;
        }
        if (mbedtls_pk_setup_rsa_alt(&k->pk, k, rsa_alt_decrypt, rsa_alt_sign,
                                     rsa_alt_key_len) != 0) {
            ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory setting up the device key.");
            goto exit;
        }
    } else if (mbedtls_pk_can_do(cert_pk, MBEDTLS_PK_ECKEY)) {
        if ((ret = ec_setup(k, cert_pk, err)) != TE_OK)
            goto exit;
    } else {
        ret = te_error_set(err, TE_ERR_UNSUPPORTED,
                           "The certificate '%s' holds neither an RSA nor an EC key.", cert_path);
        goto exit;
    }
    *out = k;
    k = NULL;
exit:
    tls_key_free(k);
    return ret;
}

void tls_key_free(struct tls_key *k)
{
    if (k == NULL)
        return;
    mbedtls_pk_free(&k->pk);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

mbedtls_pk_context *tls_key_pk(struct tls_key *k) { return &k->pk; }

bool tls_key_take_error(struct tls_key *k, struct te_error *err)
{
    bool had;

    pthread_mutex_lock(&k->lock);
    had = k->has_err;
    if (had && err != NULL)
        *err = k->last_err;
    k->has_err = false;
    te_error_clear(&k->last_err);
    pthread_mutex_unlock(&k->lock);
    return had;
}

void tls_key_get_stats(struct tls_key *k, struct tls_key_stats *out)
{
    pthread_mutex_lock(&k->lock);
    *out = k->stats;
    pthread_mutex_unlock(&k->lock);
}
