/* DER of device certificates and requests (see x509_write.h), written back to front with the
 * mbedTLS asn1write primitives; the device id rule; every result parsed back before use. */
#include "tedge-cli/key/x509_write.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <mbedtls/sha1.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include "common/der.h"
#include "common/log.h"
#include "common/rand.h"

#define X509_TBS_MAX 4096        /* to-be-signed part: an RSA-4096 certificate's is ~900 bytes */
#define X509_DER_MAX 8192        /* the whole document, with room for a 512-byte signature */
#define X509_SPKI_MAX 2048       /* an RSA-4096 public key is about 550 bytes */
#define X509_SERIAL_LEN 16       /* 128 random bits: unique without tracking issued serials */
#define X509_MAX_DAYS 36500      /* a century: beyond that the dates stop being meaningful */
#define X509_SKI_LEN 20          /* RFC 5280 method 1: SHA-1 of the subjectPublicKey bits */
#define SEQ (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)
#define SET (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SET)
#define CTX(n) (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | (n))

/* Every w_* writes one DER element just before *p (not before start) and returns its length,
 * or a negative mbedTLS error; MBEDTLS_ASN1_CHK_ADD needs the local `ret`. */

static const char device_id_chars[] = "'=(),-.?_*@!%";

int x509_check_device_id(const char *id, struct te_error *err)
{
    char shown[4 * X509_CN_MAX + 8];
    size_t n = strlen(id), used = 0;
    bool bad = false, cut = false;

    if (n == 0)
        return te_error_set(err, TE_ERR_INVALID, "The empty string cannot be used as a name");
    /* upstream quotes the name with Rust's {:?}; control characters are escaped here too */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              (ch != '\0' && strchr(device_id_chars, ch) != NULL)))
            bad = true;
        if (used + 5 >= sizeof(shown)) {
            cut = true;
            continue;
        }
        if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
            used += (size_t)snprintf(shown + used, sizeof(shown) - used,
                                     ch == '"' || ch == '\\' ? "\\%c" : "\\x%02x", ch);
        else
            shown[used++] = (char)ch;
    }
    shown[used] = '\0';
    if (n > X509_CN_MAX)
        return te_error_set(err, TE_ERR_INVALID,
                            "The string '\"%s%s\"' is more than %d characters long and cannot be "
                            "used as a name", shown, cut ? "..." : "", X509_CN_MAX);
    if (bad)
        return te_error_set(err, TE_ERR_INVALID,
                            "The string '\"%s\"' contains characters which cannot be used in a name "
                            "[use only A-Z, a-z, 0-9, ' = ( ) , - . ? %% * _ ! @]", shown);
    return TE_OK;
}

static int w_header(unsigned char **p, unsigned char *start, size_t len, unsigned char tag)
{
    size_t n = 0;
    int ret;

    MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_len(p, start, len));
    MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_tag(p, start, tag));
    return (int)n;
}

/* SET { SEQUENCE { type, UTF8String value } } */
static int w_rdn(unsigned char **p, unsigned char *start, const char *oid, size_t oid_len,
                 const char *value)
{
    size_t len = 0;
    int ret;

    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_utf8_string(p, start, value, strlen(value)));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(p, start, oid, oid_len));
    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, len, SEQ));
    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, len, SET));
    return (int)len;
}

/* Name: CN, O, OU in this order (back to front here), as upstream's rcgen writes it. */
static int w_name(unsigned char **p, unsigned char *start, const struct x509_subject *s)
{
    size_t len = 0;
    int ret;

    MBEDTLS_ASN1_CHK_ADD(len, w_rdn(p, start, MBEDTLS_OID_AT_ORG_UNIT,
                                    MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORG_UNIT), s->unit));
    MBEDTLS_ASN1_CHK_ADD(len, w_rdn(p, start, MBEDTLS_OID_AT_ORGANIZATION,
                                    MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORGANIZATION),
                                    s->organization));
    MBEDTLS_ASN1_CHK_ADD(len, w_rdn(p, start, MBEDTLS_OID_AT_CN,
                                    MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN), s->common_name));
    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, len, SEQ));
    return (int)len;
}

/* AlgorithmIdentifier of the signature: RSA with NULL parameters, ECDSA without (RFC 5758). */
static int w_sig_alg(unsigned char **p, unsigned char *start, const struct x509_key *k)
{
    bool rsa = mbedtls_pk_get_type(&k->pub) == MBEDTLS_PK_RSA;
    const char *oid = NULL;
    size_t oid_len = 0, len = 0;
    int ret;

    if (mbedtls_oid_get_oid_by_sig_alg(rsa ? MBEDTLS_PK_RSA : MBEDTLS_PK_ECDSA, k->md, &oid,
                                       &oid_len) != 0)
        return MBEDTLS_ERR_ASN1_INVALID_DATA;
    if (rsa)
        MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_null(p, start));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(p, start, oid, oid_len));
    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, len, SEQ));
    return (int)len;
}

/* UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
static int w_time(unsigned char **p, unsigned char *start, time_t t)
{
    char text[20];
    struct tm tm;
    size_t len = 0, n;
    bool utc;
    int ret;

    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 1950)
        return MBEDTLS_ERR_ASN1_INVALID_DATA;
    utc = tm.tm_year + 1900 < 2050;
    /* UTCTime YYMMDDHHMMSSZ, GeneralizedTime YYYYMMDDHHMMSSZ */
    n = (size_t)snprintf(text, sizeof(text), "%0*d%02d%02d%02d%02d%02dZ", utc ? 2 : 4,
                         utc ? tm.tm_year % 100 : tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec);
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, (unsigned char *)text, n));
    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, len, utc ? MBEDTLS_ASN1_UTC_TIME
                                                           : MBEDTLS_ASN1_GENERALIZED_TIME));
    return (int)len;
}

/* [3] { SEQUENCE { basicConstraints (critical) CA:TRUE, subjectKeyIdentifier } } */
static int w_extensions(unsigned char **p, unsigned char *start, const struct x509_key *k)
{
    unsigned char key[X509_SPKI_MAX], *c = key + sizeof(key), id[X509_SKI_LEN];
    size_t len = 0, ext = 0;
    int n, ret;

    if ((n = mbedtls_pk_write_pubkey(&c, key, &k->pub)) <= 0 ||
        mbedtls_sha1_ret(c, (size_t)n, id) != 0)
        return MBEDTLS_ERR_ASN1_INVALID_DATA;
    MBEDTLS_ASN1_CHK_ADD(ext, mbedtls_asn1_write_octet_string(p, start, id, sizeof(id)));
    MBEDTLS_ASN1_CHK_ADD(ext, w_header(p, start, ext, MBEDTLS_ASN1_OCTET_STRING));
    MBEDTLS_ASN1_CHK_ADD(ext, mbedtls_asn1_write_oid(p, start, MBEDTLS_OID_SUBJECT_KEY_IDENTIFIER,
                                MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_KEY_IDENTIFIER)));
    MBEDTLS_ASN1_CHK_ADD(ext, w_header(p, start, ext, SEQ));
    len += ext;
    ext = 0;
    MBEDTLS_ASN1_CHK_ADD(ext, mbedtls_asn1_write_bool(p, start, 1));  /* cA */
    MBEDTLS_ASN1_CHK_ADD(ext, w_header(p, start, ext, SEQ));
    MBEDTLS_ASN1_CHK_ADD(ext, w_header(p, start, ext, MBEDTLS_ASN1_OCTET_STRING));
    MBEDTLS_ASN1_CHK_ADD(ext, mbedtls_asn1_write_bool(p, start, 1));  /* critical */
    MBEDTLS_ASN1_CHK_ADD(ext, mbedtls_asn1_write_oid(p, start, MBEDTLS_OID_BASIC_CONSTRAINTS,
                                MBEDTLS_OID_SIZE(MBEDTLS_OID_BASIC_CONSTRAINTS)));
    MBEDTLS_ASN1_CHK_ADD(ext, w_header(p, start, ext, SEQ));
    len += ext;
    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, len, SEQ));
    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, len, CTX(3)));
    return (int)len;
}

/* CertificationRequestInfo (RFC 2986) */
static int w_csr_info(unsigned char **p, unsigned char *start, const struct x509_key *k,
                      const struct x509_subject *s)
{
    size_t len = 0;
    int ret;

    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, 0, CTX(0))); /* no attributes */
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, k->spki, k->spki_len));
    MBEDTLS_ASN1_CHK_ADD(len, w_name(p, start, s));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_int(p, start, 0));
    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, len, SEQ));
    return (int)len;
}

/* TBSCertificate (RFC 5280), issuer = subject */
static int w_tbs_cert(unsigned char **p, unsigned char *start, const struct x509_key *k,
                      const struct x509_subject *s, const unsigned char *serial, time_t from,
                      time_t until)
{
    size_t len = 0, validity = 0, version = 0;
    int ret;

    MBEDTLS_ASN1_CHK_ADD(len, w_extensions(p, start, k));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, k->spki, k->spki_len));
    MBEDTLS_ASN1_CHK_ADD(len, w_name(p, start, s));
    MBEDTLS_ASN1_CHK_ADD(validity, w_time(p, start, until));
    MBEDTLS_ASN1_CHK_ADD(validity, w_time(p, start, from));
    MBEDTLS_ASN1_CHK_ADD(validity, w_header(p, start, validity, SEQ));
    len += validity;
    MBEDTLS_ASN1_CHK_ADD(len, w_name(p, start, s));
    MBEDTLS_ASN1_CHK_ADD(len, w_sig_alg(p, start, k));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, serial, X509_SERIAL_LEN));
    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, X509_SERIAL_LEN, MBEDTLS_ASN1_INTEGER));
    MBEDTLS_ASN1_CHK_ADD(version, mbedtls_asn1_write_int(p, start, 2)); /* v3 */
    MBEDTLS_ASN1_CHK_ADD(version, w_header(p, start, version, CTX(0)));
    len += version;
    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, len, SEQ));
    return (int)len;
}

/* Certificate / CertificationRequest: SEQUENCE { tbs, signatureAlgorithm, BIT STRING sig } */
static int w_signed(unsigned char **p, unsigned char *start, const struct x509_key *k,
                    const unsigned char *tbs, size_t tbs_len, const unsigned char *sig,
                    size_t sig_len)
{
    size_t len = 0;
    int ret;

    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_bitstring(p, start, sig, sig_len * 8));
    MBEDTLS_ASN1_CHK_ADD(len, w_sig_alg(p, start, k));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, tbs, tbs_len));
    MBEDTLS_ASN1_CHK_ADD(len, w_header(p, start, len, SEQ));
    return (int)len;
}

/* Signs tbs and returns the whole document as PEM with label. */
static int sign_and_wrap(struct x509_key *k, const unsigned char *tbs, size_t tbs_len,
                         const char *label, char **pem, struct te_error *err)
{
    unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE], *buf = NULL, *c;
    size_t sig_len = 0;
    int n, ret;

    if ((ret = x509_key_sign(k, tbs, tbs_len, sig, sizeof(sig), &sig_len, err)) != TE_OK)
        return ret;
    if ((buf = malloc(X509_DER_MAX)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory writing the %s.", label);
    c = buf + X509_DER_MAX;
    if ((n = w_signed(&c, buf, k, tbs, tbs_len, sig, sig_len)) < 0)
        ret = te_error_set(err, TE_ERR_INTERNAL, "The %s cannot be encoded (error -0x%04x).",
                           label, (unsigned)-n);
    else if (der_to_pem(label, c, (size_t)n, pem) != TE_OK)
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory writing the %s.", label);
    free(buf);
    return ret;
}

static int subject_ok(const struct x509_subject *s, struct te_error *err)
{
    const char *fields[] = {s->common_name, s->organization, s->unit};

    for (size_t i = 0; i < 3; i++)
        if (fields[i] == NULL || fields[i][0] == '\0' || strlen(fields[i]) > X509_NAME_FIELD_MAX)
            return te_error_set(err, TE_ERR_INVALID, "Every field of the certificate subject "
                                "(CN, O, OU) must be 1 to %d characters long.", X509_NAME_FIELD_MAX);
    return TE_OK;
}

int x509_write_csr(struct x509_key *key, const struct x509_subject *subject, char **pem,
                   struct te_error *err)
{
    unsigned char tbs[X509_TBS_MAX], *c = tbs + sizeof(tbs);
    mbedtls_x509_csr csr;
    int n, ret;

    CHECK_ARG(key != NULL && subject != NULL && pem != NULL, TE_ERR_INVALID);
    *pem = NULL;
    mbedtls_x509_csr_init(&csr);
    if ((ret = subject_ok(subject, err)) != TE_OK)
        goto exit;
    if ((n = w_csr_info(&c, tbs, key, subject)) < 0) {
        ret = te_error_set(err, TE_ERR_INTERNAL, "The certificate signing request cannot be "
                           "encoded (error -0x%04x).", (unsigned)-n);
        goto exit;
    }
    if ((ret = sign_and_wrap(key, c, (size_t)n, "CERTIFICATE REQUEST", pem, err)) != TE_OK)
        goto exit;
    if (mbedtls_x509_csr_parse(&csr, (const unsigned char *)*pem, strlen(*pem) + 1) != 0)
        ret = te_error_set(err, TE_ERR_INTERNAL, "The new certificate signing request does not "
                           "parse.");
exit:
    mbedtls_x509_csr_free(&csr);
    if (ret != TE_OK) {
        free(*pem);
        *pem = NULL;
    }
    return ret;
}

int x509_write_self_signed(struct x509_key *key, const struct x509_subject *subject,
                           time_t not_before, unsigned days, char **pem, struct te_error *err)
{
    unsigned char tbs[X509_TBS_MAX], *c = tbs + sizeof(tbs), serial[X509_SERIAL_LEN];
    mbedtls_x509_crt crt;
    int n, ret;

    CHECK_ARG(key != NULL && subject != NULL && pem != NULL, TE_ERR_INVALID);
    *pem = NULL;
    mbedtls_x509_crt_init(&crt);
    if (days == 0 || days > X509_MAX_DAYS) {
        ret = te_error_set(err, TE_ERR_INVALID, "A certificate must be valid for 1 to %d days.",
                           X509_MAX_DAYS);
        goto exit;
    }
    if ((ret = subject_ok(subject, err)) != TE_OK)
        goto exit;
    if (te_random(NULL, serial, sizeof(serial)) != 0) {
        ret = te_error_set(err, TE_ERR_IO, "The system cannot supply random bytes for the "
                           "certificate serial number.");
        goto exit;
    }
    /* positive (top bit clear) and of full length (next bit set): minimal DER as it is */
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40);
    if ((n = w_tbs_cert(&c, tbs, key, subject, serial, not_before,
                        not_before + (time_t)days * 86400)) < 0) {
        ret = te_error_set(err, TE_ERR_INTERNAL, "The certificate cannot be encoded (error "
                           "-0x%04x).", (unsigned)-n);
        goto exit;
    }
    if ((ret = sign_and_wrap(key, c, (size_t)n, "CERTIFICATE", pem, err)) != TE_OK)
        goto exit;
    if (mbedtls_x509_crt_parse(&crt, (const unsigned char *)*pem, strlen(*pem) + 1) != 0)
        ret = te_error_set(err, TE_ERR_INTERNAL, "The new certificate does not parse.");
exit:
    mbedtls_x509_crt_free(&crt);
    if (ret != TE_OK) {
        free(*pem);
        *pem = NULL;
    }
    return ret;
}
