/* DER and PEM helpers (see der.h). Token output (signatures, points, moduli) is untrusted:
 * every length is checked and a bad one is TE_ERR_MALFORMED, never an assert. */
#include "common/der.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>

#define DER_PEM_LABEL_MAX 64   /* "PUBLIC KEY", "CERTIFICATE REQUEST": labels are short */
#define DER_RSA_MODULUS_MAX 1024 /* 8192-bit modulus; anything bigger is not a device key */

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};

static const struct der_curve curves[] = {
    {"P-256", 256, 32, oid_p256, sizeof(oid_p256)},
    {"P-384", 384, 48, oid_p384, sizeof(oid_p384)},
    {"P-521", 521, 66, oid_p521, sizeof(oid_p521)},
};

const struct der_curve *der_curve_from_params(const uint8_t *params, size_t len)
{
    if (params == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
        if (len == curves[i].oid_len && memcmp(params, curves[i].oid, len) == 0)
            return &curves[i];
    return NULL;
}

/* Strips leading zero bytes of a big-endian unsigned integer (keeping one) and says whether
 * a 0x00 must precede it so that DER reads it as positive. */
static void der_int_shape(const uint8_t **p, size_t *len, size_t *pad)
{
    while (*len > 1 && (*p)[0] == 0) {
        (*p)++;
        (*len)--;
    }
    *pad = ((*p)[0] & 0x80) ? 1 : 0;
}

int der_ecdsa_sig_from_raw(const uint8_t *raw, size_t raw_len, uint8_t *out, size_t cap,
                           size_t *out_len)
{
    const uint8_t *r, *s;
    size_t half, r_len, s_len, r_pad, s_pad, body, total, o = 0;

    if (raw == NULL || raw_len == 0 || raw_len % 2 != 0 || raw_len / 2 > DER_EC_COORD_MAX)
        return TE_ERR_MALFORMED;
    half = raw_len / 2;
    r = raw;
    s = raw + half;
    r_len = s_len = half;
    der_int_shape(&r, &r_len, &r_pad);
    der_int_shape(&s, &s_len, &s_pad);
    /* Each INTEGER is at most 67 bytes, so its own length is always short form. */
    body = 2 + r_pad + r_len + 2 + s_pad + s_len;
    total = (body < 0x80 ? 2 : 3) + body;
    if (out == NULL || cap < total)
        return TE_ERR_TOO_LARGE;
    out[o++] = 0x30;
    if (body >= 0x80)
        out[o++] = 0x81;
    out[o++] = (uint8_t)body;
    out[o++] = 0x02;
    out[o++] = (uint8_t)(r_pad + r_len);
    if (r_pad)
        out[o++] = 0x00;
    memcpy(out + o, r, r_len);
    o += r_len;
    out[o++] = 0x02;
    out[o++] = (uint8_t)(s_pad + s_len);
    if (s_pad)
        out[o++] = 0x00;
    memcpy(out + o, s, s_len);
    o += s_len;
    *out_len = o;
    return TE_OK;
}

/* Whether p[0..len) is an EC point encoding (04||X||Y, or 02/03||X) of a plausible length. */
static int point_plausible(const uint8_t *p, size_t len, size_t coord_len)
{
    if (len < 2)
        return 0;
    if (p[0] == 0x04)
        return coord_len ? len == 1 + 2 * coord_len : (len - 1) % 2 == 0;
    if (p[0] == 0x02 || p[0] == 0x03)
        return coord_len ? len == 1 + coord_len : 1;
    return 0;
}

int der_ec_point_unwrap(const uint8_t *in, size_t len, size_t coord_len, const uint8_t **point,
                        size_t *point_len)
{
    size_t hdr, inner;

    if (in == NULL || len < 2)
        return TE_ERR_MALFORMED;
    /* A raw point of the curve's exact size cannot be confused with the wrapped form, whose
     * length is that plus a 2- or 3-byte header. */
    if (coord_len != 0 && len == 1 + 2 * coord_len && in[0] == 0x04)
        goto raw;
    if (in[0] == 0x04) {
        if (in[1] < 0x80) {
            hdr = 2;
            inner = in[1];
        } else if (in[1] == 0x81 && len >= 3 && in[2] >= 0x80) {
            hdr = 3;
            inner = in[2];
        } else {
            goto raw;
        }
        if (hdr + inner == len && point_plausible(in + hdr, inner, coord_len)) {
            *point = in + hdr;
            *point_len = inner;
            return TE_OK;
        }
    }
raw:
    if (!point_plausible(in, len, coord_len))
        return TE_ERR_MALFORMED;
    *point = in;
    *point_len = len;
    return TE_OK;
}

/* Copies the DER written at the end of buf (from p) into a malloc'd result. */
static int der_take(const uint8_t *p, size_t len, uint8_t **der, size_t *der_len)
{
    uint8_t *copy = malloc(len);
    if (copy == NULL)
        return TE_ERR_NOMEM;
    memcpy(copy, p, len);
    *der = copy;
    *der_len = len;
    return TE_OK;
}

/* Wraps the key bits written so far (len bytes ending at the buffer's end) in a BIT STRING and
 * the SPKI SEQUENCE with the AlgorithmIdentifier for oid and its parameters. */
static int spki_finish(unsigned char **p, unsigned char *start, size_t len, const char *oid,
                       size_t oid_len, const uint8_t *params, size_t params_len)
{
    int ret;
    size_t alg_len = 0;

    if (*p - start < 1)
        return MBEDTLS_ERR_ASN1_BUF_TOO_SMALL;
    *--(*p) = 0; /* no unused bits */
    len += 1;
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_BIT_STRING));
    if (params != NULL) {
        MBEDTLS_ASN1_CHK_ADD(alg_len, mbedtls_asn1_write_raw_buffer(p, start, params, params_len));
    }
    /* par_len 0 writes the NULL parameters that rsaEncryption requires; the result counts
     * the parameters already written. */
    ret = mbedtls_asn1_write_algorithm_identifier(p, start, oid, oid_len, alg_len);
    if (ret < 0)
        return ret;
    len += (size_t)ret;
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, len));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(
                                  p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    return (int)len;
}

int der_spki_rsa(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len, uint8_t **der,
                 size_t *der_len)
{
    unsigned char buf[DER_SPKI_MAX];
    unsigned char *p = buf + sizeof(buf);
    mbedtls_mpi mn, me;
    size_t len = 0;
    int r, ret;

    if (n == NULL || e == NULL || n_len == 0 || e_len == 0 || e_len > 8)
        return TE_ERR_MALFORMED;
    if (n_len > DER_RSA_MODULUS_MAX)
        return TE_ERR_TOO_LARGE;
    mbedtls_mpi_init(&mn);
    mbedtls_mpi_init(&me);
    ret = TE_ERR_NOMEM;
    if (mbedtls_mpi_read_binary(&mn, n, n_len) != 0 || mbedtls_mpi_read_binary(&me, e, e_len) != 0)
        goto exit;
    ret = TE_ERR_MALFORMED;
    if (mbedtls_mpi_cmp_int(&mn, 0) == 0 || mbedtls_mpi_cmp_int(&me, 0) == 0)
        goto exit;
    ret = TE_ERR_TOO_LARGE;
    if ((r = mbedtls_asn1_write_mpi(&p, buf, &me)) < 0)
        goto exit;
    len += (size_t)r;
    if ((r = mbedtls_asn1_write_mpi(&p, buf, &mn)) < 0)
        goto exit;
    len += (size_t)r;
    if ((r = mbedtls_asn1_write_len(&p, buf, len)) < 0)
        goto exit;
    len += (size_t)r;
    if ((r = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
        goto exit;
    len += (size_t)r;
    if ((r = spki_finish(&p, buf, len, MBEDTLS_OID_PKCS1_RSA,
                         MBEDTLS_OID_SIZE(MBEDTLS_OID_PKCS1_RSA), NULL, 0)) < 0)
        goto exit;
    ret = der_take(p, (size_t)r, der, der_len);
exit:
    mbedtls_mpi_free(&mn);
    mbedtls_mpi_free(&me);
    return ret;
}

/* Whether params is exactly one DER element with a short- or one-byte long-form length. */
static int der_single_element(const uint8_t *d, size_t len)
{
    size_t hdr, body;

    if (len < 2)
        return 0;
    if (d[1] < 0x80) {
        hdr = 2;
        body = d[1];
    } else if (d[1] == 0x81 && len >= 3) {
        hdr = 3;
        body = d[2];
    } else if (d[1] == 0x82 && len >= 4) {
        hdr = 4;
        body = ((size_t)d[2] << 8) | d[3];
    } else {
        return 0;
    }
    return hdr + body == len;
}

int der_spki_ec(const uint8_t *params, size_t params_len, const uint8_t *point, size_t point_len,
                uint8_t **der, size_t *der_len)
{
    unsigned char buf[DER_SPKI_MAX];
    unsigned char *p = buf + sizeof(buf);
    int r;

    if (params == NULL || point == NULL || !der_single_element(params, params_len) ||
        !point_plausible(point, point_len, 0))
        return TE_ERR_MALFORMED;
    if (params_len + point_len + 32 > sizeof(buf))
        return TE_ERR_TOO_LARGE;
    if ((r = mbedtls_asn1_write_raw_buffer(&p, buf, point, point_len)) < 0)
        return TE_ERR_TOO_LARGE;
    if ((r = spki_finish(&p, buf, (size_t)r, MBEDTLS_OID_EC_ALG_UNRESTRICTED,
                         MBEDTLS_OID_SIZE(MBEDTLS_OID_EC_ALG_UNRESTRICTED), params,
                         params_len)) < 0)
        return TE_ERR_TOO_LARGE;
    return der_take(p, (size_t)r, der, der_len);
}

int der_digest_info(enum sig_hash hash, const uint8_t *digest, size_t digest_len, uint8_t *out,
                    size_t cap, size_t *out_len)
{
    /* DigestInfo prefixes of RFC 8017 section 9.2, note 1: SEQUENCE { AlgorithmIdentifier
     * { OID, NULL }, OCTET STRING header }; the last OID byte and lengths depend on the hash. */
    uint8_t prefix[19] = {0x30, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                          0x65, 0x03, 0x04, 0x02, 0x00, 0x05, 0x00, 0x04, 0x00};
    size_t hlen = sig_hash_len(hash);

    if (digest == NULL || hlen == 0 || digest_len != hlen)
        return TE_ERR_INVALID;
    if (out == NULL || cap < sizeof(prefix) + hlen)
        return TE_ERR_TOO_LARGE;
    prefix[1] = (uint8_t)(sizeof(prefix) - 2 + hlen);
    prefix[14] = hash == SIG_HASH_SHA256 ? 0x01 : hash == SIG_HASH_SHA384 ? 0x02 : 0x03;
    prefix[18] = (uint8_t)hlen;
    memcpy(out, prefix, sizeof(prefix));
    memcpy(out + sizeof(prefix), digest, hlen);
    *out_len = sizeof(prefix) + hlen;
    return TE_OK;
}

static int pem_markers(const char *label, char *header, char *footer, size_t size)
{
    if (label == NULL || strlen(label) == 0 || strlen(label) > DER_PEM_LABEL_MAX)
        return TE_ERR_INVALID;
    snprintf(header, size, "-----BEGIN %s-----", label);
    snprintf(footer, size, "-----END %s-----", label);
    return TE_OK;
}

int der_to_pem(const char *label, const uint8_t *der, size_t der_len, char **pem)
{
    char header[DER_PEM_LABEL_MAX + 24], footer[DER_PEM_LABEL_MAX + 24];
    size_t need = 0;
    unsigned char *out;
    int ret;

    if (der == NULL || der_len == 0 || pem == NULL)
        return TE_ERR_INVALID;
    if ((ret = pem_markers(label, header, footer, sizeof(header))) != TE_OK)
        return ret;
    /* mbedTLS puts the newlines in itself only inside the body. */
    strcat(header, "\n");
    strcat(footer, "\n");
    mbedtls_pem_write_buffer(header, footer, der, der_len, NULL, 0, &need);
    if (need == 0 || (out = malloc(need + 1)) == NULL)
        return TE_ERR_NOMEM;
    if (mbedtls_pem_write_buffer(header, footer, der, der_len, out, need + 1, &need) != 0) {
        free(out);
        return TE_ERR_INTERNAL;
    }
    out[need] = '\0';
    *pem = (char *)out;
    return TE_OK;
}

int der_from_pem(const char *pem, const char *label, uint8_t **der, size_t *der_len)
{
    char header[DER_PEM_LABEL_MAX + 24], footer[DER_PEM_LABEL_MAX + 24];
    mbedtls_pem_context ctx;
    size_t used = 0, len = 0;
    const unsigned char *buf;
    int ret;

    if (pem == NULL || der == NULL || der_len == NULL)
        return TE_ERR_INVALID;
    if ((ret = pem_markers(label, header, footer, sizeof(header))) != TE_OK)
        return ret;
    mbedtls_pem_init(&ctx);
    ret = mbedtls_pem_read_buffer(&ctx, header, footer, (const unsigned char *)pem, NULL, 0, &used);
    if (ret == MBEDTLS_ERR_PEM_NO_HEADER_FOOTER_PRESENT) {
        ret = TE_ERR_NOT_FOUND;
        goto exit;
    }
    if (ret != 0) {
        ret = TE_ERR_MALFORMED;
        goto exit;
    }
    buf = ctx.buf; /* mbedtls 2.28 has no accessor; the fields are public */
    len = ctx.buflen;
    ret = len == 0 ? TE_ERR_MALFORMED : der_take(buf, len, der, der_len);
exit:
    mbedtls_pem_free(&ctx);
    return ret;
}
