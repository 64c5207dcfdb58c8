/* The key file that `tedge cert create` makes in mode off: a new EC P-256 key (upstream's
 * choice), written as unencrypted PKCS#8 PEM like upstream's, with every copy wiped. */
#include "tedge-cli/key/x509_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/base64.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/rand.h"

#define KEY_DER_MAX 4096 /* PKCS#8 of an RSA-4096 key is about 2.4 KiB; P-256 about 140 bytes */
#define PEM_LINE 64      /* base64 characters per PEM line (RFC 7468) */

int x509_new_ec_key(mbedtls_pk_context *pk, struct te_error *err)
{
    CHECK_ARG(pk != NULL, TE_ERR_INVALID);
    if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory creating the device key.");
    if (mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk), te_random, NULL) != 0)
        return te_error_set(err, TE_ERR_IO, "The device key could not be generated: the system "
                            "cannot supply random bytes.");
    return TE_OK;
}

/* PrivateKeyInfo ::= SEQUENCE { version 0, AlgorithmIdentifier, OCTET STRING { key } } around
 * the RSAPrivateKey / ECPrivateKey that mbedTLS writes at the end of buf (RFC 5208, 5915). */
static int wrap_pkcs8(mbedtls_pk_context *pk, unsigned char *buf, size_t key_len,
                      unsigned char **start)
{
    unsigned char *c = buf + KEY_DER_MAX - key_len;
    const char *alg_oid = NULL, *curve_oid = NULL;
    size_t alg_len = 0, curve_len = 0, len = key_len, par_len = 0;
    int ret; /* MBEDTLS_ASN1_CHK_ADD uses it */

    if (mbedtls_oid_get_oid_by_pk_alg(mbedtls_pk_get_type(pk), &alg_oid, &alg_len) != 0)
        return -1;
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&c, buf, key_len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(&c, buf, MBEDTLS_ASN1_OCTET_STRING));
    if (mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY) {
        if (mbedtls_oid_get_oid_by_ec_grp(mbedtls_pk_ec(*pk)->grp.id, &curve_oid, &curve_len) != 0)
            return -1;
        MBEDTLS_ASN1_CHK_ADD(par_len, mbedtls_asn1_write_oid(&c, buf, curve_oid, curve_len));
    }
    /* the algorithm identifier's length includes the parameters written just before */
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_algorithm_identifier(&c, buf, alg_oid, alg_len,
                                                                      par_len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_int(&c, buf, 0));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&c, buf, len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(&c, buf, MBEDTLS_ASN1_CONSTRUCTED |
                                                              MBEDTLS_ASN1_SEQUENCE));
    *start = c;
    return (int)len;
}

/* PEM of a secret: mbedtls_pem_write_buffer frees its base64 copy without wiping it, so the
 * encoding happens here, in buffers that are wiped. */
static int secret_pem(const char *label, const unsigned char *der, size_t der_len, char **pem)
{
    size_t b64_len = 0, lines, cap, used = 0;
    unsigned char *b64 = NULL;
    char *out = NULL;
    int ret = TE_ERR_NOMEM;

    mbedtls_base64_encode(NULL, 0, &b64_len, der, der_len);
    lines = (b64_len + PEM_LINE - 1) / PEM_LINE;
    cap = b64_len + lines + 2 * (strlen(label) + 20) + 1;
    if ((b64 = malloc(b64_len)) == NULL || (out = malloc(cap)) == NULL)
        goto exit;
    if (mbedtls_base64_encode(b64, b64_len, &b64_len, der, der_len) != 0) {
        ret = TE_ERR_INTERNAL;
        goto exit;
    }
    used += (size_t)snprintf(out, cap, "-----BEGIN %s-----\n", label);
    for (size_t i = 0; i < b64_len; i += PEM_LINE) {
        size_t n = b64_len - i < PEM_LINE ? b64_len - i : PEM_LINE;
        memcpy(out + used, b64 + i, n);
        used += n;
        out[used++] = '\n';
    }
    snprintf(out + used, cap - used, "-----END %s-----\n", label);
    *pem = out;
    out = NULL;
    ret = TE_OK;
exit:
    if (b64 != NULL)
        te_wipe(b64, b64_len);
    free(b64);
    if (out != NULL)
        te_wipe(out, cap);
    free(out);
    return ret;
}

int x509_key_to_pkcs8_pem(mbedtls_pk_context *pk, char **pem, struct te_error *err)
{
    unsigned char *buf = NULL, *start = NULL;
    int n, ret = TE_OK;

    CHECK_ARG(pk != NULL && pem != NULL, TE_ERR_INVALID);
    *pem = NULL;
    if ((buf = calloc(1, KEY_DER_MAX)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory writing the device key.");
    if ((n = mbedtls_pk_write_key_der(pk, buf, KEY_DER_MAX)) <= 0 ||
        (n = wrap_pkcs8(pk, buf, (size_t)n, &start)) <= 0) {
        ret = te_error_set(err, TE_ERR_INTERNAL, "The device key cannot be encoded as PKCS#8.");
        goto exit;
    }
    if (secret_pem("PRIVATE KEY", start, (size_t)n, pem) != TE_OK)
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory writing the device key.");
exit:
    te_wipe(buf, KEY_DER_MAX);
    free(buf);
    return ret;
}
