/* Unit tests for common/der: ECDSA raw -> DER against mbedTLS's own INTEGER writer, SPKI
 * builders parsed back and compared with mbedTLS's writer, DigestInfo, EC points, PEM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "common/der.h"
#include "common/err.h"

#define RANDOM_CASES 4000 /* per curve size; each case shapes r and s differently */

/* The reference: SEQUENCE { INTEGER r, INTEGER s } written by mbedtls_asn1_write_mpi. */
static size_t reference_sig(const uint8_t *raw, size_t raw_len, uint8_t *out, size_t cap)
{
    unsigned char buf[256];
    unsigned char *p = buf + sizeof(buf);
    mbedtls_mpi r, s;
    size_t len = 0;
    int ret;

    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    assert_int_equal(mbedtls_mpi_read_binary(&r, raw, raw_len / 2), 0);
    assert_int_equal(mbedtls_mpi_read_binary(&s, raw + raw_len / 2, raw_len / 2), 0);
    ret = mbedtls_asn1_write_mpi(&p, buf, &s);
    assert_true(ret > 0);
    len += (size_t)ret;
    ret = mbedtls_asn1_write_mpi(&p, buf, &r);
    assert_true(ret > 0);
    len += (size_t)ret;
    ret = mbedtls_asn1_write_len(&p, buf, len);
    assert_true(ret > 0);
    len += (size_t)ret;
    ret = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
    assert_true(ret > 0);
    len += (size_t)ret;
    assert_true(len <= cap);
    memcpy(out, p, len);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return len;
}

static void check_against_reference(const uint8_t *raw, size_t raw_len)
{
    uint8_t got[DER_ECDSA_SIG_MAX], want[DER_ECDSA_SIG_MAX];
    size_t got_len = 0, want_len;

    assert_int_equal(der_ecdsa_sig_from_raw(raw, raw_len, got, sizeof(got), &got_len), TE_OK);
    want_len = reference_sig(raw, raw_len, want, sizeof(want));
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
}

static void test_ecdsa_fixed_shapes(void **state)
{
    (void)state;
    static const size_t sizes[] = {32, 48, 66};
    uint8_t raw[2 * DER_EC_COORD_MAX];

    for (size_t i = 0; i < 3; i++) {
        size_t half = sizes[i];
        /* r = 1, s = 1 */
        memset(raw, 0, sizeof(raw));
        raw[half - 1] = 1;
        raw[2 * half - 1] = 1;
        check_against_reference(raw, 2 * half);
        /* high bit set on both: needs the 0x00 pad */
        memset(raw, 0xff, 2 * half);
        check_against_reference(raw, 2 * half);
        /* leading zeros followed by a high bit */
        memset(raw, 0, 2 * half);
        raw[3] = 0x80;
        raw[half + 1] = 0x7f;
        raw[2 * half - 1] = 0x42;
        check_against_reference(raw, 2 * half);
        /* r = 0 encodes as INTEGER 0 */
        memset(raw, 0, half);
        memset(raw + half, 0x11, half);
        check_against_reference(raw, 2 * half);
    }
}

static void test_ecdsa_p521_long_form(void **state)
{
    (void)state;
    uint8_t raw[132], out[DER_ECDSA_SIG_MAX];
    size_t out_len = 0;

    memset(raw, 0x01, sizeof(raw));
    raw[0] = 0x01;
    raw[66] = 0x01;
    assert_int_equal(der_ecdsa_sig_from_raw(raw, sizeof(raw), out, sizeof(out), &out_len), TE_OK);
    assert_int_equal(out[0], 0x30);
    assert_int_equal(out[1], 0x81); /* long-form length: the body is 136 bytes */
    assert_int_equal(out[2], 136);
    assert_int_equal(out_len, 139);
    check_against_reference(raw, sizeof(raw));
    /* the largest case: both halves with the high bit after a 66-byte coordinate */
    memset(raw, 0xff, sizeof(raw));
    assert_int_equal(der_ecdsa_sig_from_raw(raw, sizeof(raw), out, sizeof(out), &out_len), TE_OK);
    assert_int_equal(out_len, DER_ECDSA_SIG_MAX);
    check_against_reference(raw, sizeof(raw));
}

static void test_ecdsa_random_against_mbedtls(void **state)
{
    (void)state;
    static const size_t sizes[] = {32, 48, 66};
    uint8_t raw[2 * DER_EC_COORD_MAX];
    unsigned seed = 12345;

    for (size_t i = 0; i < 3; i++) {
        size_t half = sizes[i];
        for (int c = 0; c < RANDOM_CASES; c++) {
            for (size_t k = 0; k < 2 * half; k++)
                raw[k] = (uint8_t)rand_r(&seed);
            /* shape: a random number of leading zero bytes in r and s, and forced high bits */
            size_t zr = (size_t)rand_r(&seed) % 4 == 0 ? (size_t)rand_r(&seed) % half : 0;
            size_t zs = (size_t)rand_r(&seed) % 4 == 0 ? (size_t)rand_r(&seed) % half : 0;
            memset(raw, 0, zr);
            memset(raw + half, 0, zs);
            if (c % 3 == 0)
                raw[zr] |= 0x80;
            if (c % 5 == 0 && zs < half)
                raw[half + zs] &= 0x7f;
            check_against_reference(raw, 2 * half);
        }
    }
}

static void test_ecdsa_rejects_bad_input(void **state)
{
    (void)state;
    uint8_t raw[140] = {1}, out[DER_ECDSA_SIG_MAX];
    size_t out_len = 0;

    assert_int_equal(der_ecdsa_sig_from_raw(raw, 0, out, sizeof(out), &out_len), TE_ERR_MALFORMED);
    assert_int_equal(der_ecdsa_sig_from_raw(raw, 63, out, sizeof(out), &out_len), TE_ERR_MALFORMED);
    assert_int_equal(der_ecdsa_sig_from_raw(raw, 134, out, sizeof(out), &out_len),
                     TE_ERR_MALFORMED);
    assert_int_equal(der_ecdsa_sig_from_raw(NULL, 64, out, sizeof(out), &out_len),
                     TE_ERR_MALFORMED);
    memset(raw, 0xff, 64);
    assert_int_equal(der_ecdsa_sig_from_raw(raw, 64, out, 71, &out_len), TE_ERR_TOO_LARGE);
    assert_int_equal(der_ecdsa_sig_from_raw(raw, 64, out, 72, &out_len), TE_OK);
    assert_int_equal(out_len, 72);
}

static int test_rng(void *ctx, unsigned char *out, size_t len)
{
    return mbedtls_ctr_drbg_random(ctx, out, len);
}

struct rng {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

static void rng_init(struct rng *g)
{
    mbedtls_entropy_init(&g->entropy);
    mbedtls_ctr_drbg_init(&g->drbg);
    assert_int_equal(mbedtls_ctr_drbg_seed(&g->drbg, mbedtls_entropy_func, &g->entropy,
                                           (const unsigned char *)"test_der", 8), 0);
}

static void rng_free(struct rng *g)
{
    mbedtls_ctr_drbg_free(&g->drbg);
    mbedtls_entropy_free(&g->entropy);
}

/* namedCurve OIDs as tokens return them (RFC 5480): P-256, P-384, P-521. */
static const uint8_t *named_curve_oid(size_t i, size_t *len)
{
    static const uint8_t p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    static const uint8_t p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
    static const uint8_t p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};

    *len = i == 0 ? sizeof(p256) : sizeof(p384);
    return i == 0 ? p256 : i == 1 ? p384 : p521;
}

static void test_spki_ec_matches_mbedtls(void **state)
{
    (void)state;
    static const mbedtls_ecp_group_id groups[] = {MBEDTLS_ECP_DP_SECP256R1,
                                                  MBEDTLS_ECP_DP_SECP384R1,
                                                  MBEDTLS_ECP_DP_SECP521R1};
    static const unsigned bits[] = {256, 384, 521};
    struct rng g;

    rng_init(&g);
    for (size_t i = 0; i < 3; i++) {
        mbedtls_pk_context pk, back;
        unsigned char want[DER_SPKI_MAX], point[1 + 2 * DER_EC_COORD_MAX];
        size_t point_len = 0;
        uint8_t *der = NULL;
        size_t der_len = 0;
        const struct der_curve *curve = NULL;

        mbedtls_pk_init(&pk);
        mbedtls_pk_init(&back);
        assert_int_equal(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
        assert_int_equal(mbedtls_ecp_gen_key(groups[i], mbedtls_pk_ec(pk), test_rng, &g.drbg), 0);
        assert_int_equal(mbedtls_ecp_point_write_binary(&mbedtls_pk_ec(pk)->grp,
                                                        &mbedtls_pk_ec(pk)->Q,
                                                        MBEDTLS_ECP_PF_UNCOMPRESSED, &point_len,
                                                        point, sizeof(point)),
                         0);
        /* the OID that a token returns in CKA_EC_PARAMS, found through our curve table */
        size_t params_len = 0;
        const uint8_t *params = named_curve_oid(i, &params_len);
        curve = der_curve_from_params(params, params_len);
        assert_non_null(curve);
        assert_int_equal(curve->bits, bits[i]);
        assert_int_equal(point_len, 1 + 2 * curve->coord_len);
        assert_int_equal(der_spki_ec(params, params_len, point, point_len, &der, &der_len), TE_OK);
        int want_len = mbedtls_pk_write_pubkey_der(&pk, want, sizeof(want));
        assert_true(want_len > 0);
        assert_int_equal(der_len, (size_t)want_len);
        assert_memory_equal(der, want + sizeof(want) - (size_t)want_len, der_len);
        assert_int_equal(mbedtls_pk_parse_public_key(&back, der, der_len), 0);
        assert_int_equal(mbedtls_pk_get_type(&back), MBEDTLS_PK_ECKEY);
        assert_int_equal(mbedtls_ecp_point_cmp(&mbedtls_pk_ec(back)->Q, &mbedtls_pk_ec(pk)->Q), 0);
        free(der);
        mbedtls_pk_free(&pk);
        mbedtls_pk_free(&back);
    }
    rng_free(&g);
}

static void test_spki_rsa_and_digest_info(void **state)
{
    (void)state;
    static const enum sig_hash hashes[] = {SIG_HASH_SHA256, SIG_HASH_SHA384, SIG_HASH_SHA512};
    static const mbedtls_md_type_t mds[] = {MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA384,
                                            MBEDTLS_MD_SHA512};
    mbedtls_pk_context pk, back;
    unsigned char n[256], e[8], want[DER_SPKI_MAX], sig[256];
    uint8_t *der = NULL, digest[64], info[DER_DIGEST_INFO_MAX];
    size_t der_len = 0, info_len = 0;
    struct rng g;

    rng_init(&g);
    mbedtls_pk_init(&pk);
    mbedtls_pk_init(&back);
    assert_int_equal(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
    assert_int_equal(mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), test_rng, &g.drbg, 1024, 65537), 0);
    mbedtls_rsa_context *rsa = mbedtls_pk_rsa(pk);
    size_t n_len = mbedtls_rsa_get_len(rsa);
    assert_int_equal(mbedtls_rsa_export_raw(rsa, n, n_len, NULL, 0, NULL, 0, NULL, 0, e, sizeof(e)),
                     0);
    /* the exponent as a token returns it: 8 bytes with leading zeros */
    assert_int_equal(der_spki_rsa(n, n_len, e, sizeof(e), &der, &der_len), TE_OK);
    int want_len = mbedtls_pk_write_pubkey_der(&pk, want, sizeof(want));
    assert_true(want_len > 0);
    assert_int_equal(der_len, (size_t)want_len);
    assert_memory_equal(der, want + sizeof(want) - (size_t)want_len, der_len);
    assert_int_equal(mbedtls_pk_parse_public_key(&back, der, der_len), 0);
    assert_int_equal(mbedtls_mpi_cmp_mpi(&mbedtls_pk_rsa(back)->N, &rsa->N), 0);
    free(der);

    /* A raw PKCS#1 v1.5 signature over our DigestInfo verifies as a signature of the digest. */
    for (size_t i = 0; i < 3; i++) {
        size_t hlen = sig_hash_len(hashes[i]);
        for (size_t k = 0; k < hlen; k++)
            digest[k] = (uint8_t)(k * 7 + i);
        assert_int_equal(der_digest_info(hashes[i], digest, hlen, info, sizeof(info), &info_len),
                         TE_OK);
        assert_int_equal(info_len, 19 + hlen);
        assert_int_equal(mbedtls_rsa_rsassa_pkcs1_v15_sign(rsa, test_rng, &g.drbg,
                                                           MBEDTLS_RSA_PRIVATE, MBEDTLS_MD_NONE,
                                                           (unsigned)info_len, info, sig),
                         0);
        assert_int_equal(mbedtls_rsa_pkcs1_verify(rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC, mds[i],
                                                  (unsigned)hlen, digest, sig),
                         0);
        assert_int_equal(der_digest_info(hashes[i], digest, hlen - 1, info, sizeof(info),
                                         &info_len),
                         TE_ERR_INVALID);
        assert_int_equal(der_digest_info(hashes[i], digest, hlen, info, 19 + hlen - 1, &info_len),
                         TE_ERR_TOO_LARGE);
    }
    assert_int_equal(der_spki_rsa(n, 0, e, sizeof(e), &der, &der_len), TE_ERR_MALFORMED);
    memset(n, 0, sizeof(n));
    assert_int_equal(der_spki_rsa(n, n_len, e, sizeof(e), &der, &der_len), TE_ERR_MALFORMED);
    mbedtls_pk_free(&pk);
    mbedtls_pk_free(&back);
    rng_free(&g);
}

static void test_ec_point_unwrap(void **state)
{
    (void)state;
    uint8_t in[3 + 133];
    const uint8_t *pt = NULL;
    size_t pt_len = 0;

    /* standard: OCTET STRING around 04||X||Y (P-256) */
    in[0] = 0x04;
    in[1] = 65;
    in[2] = 0x04;
    memset(in + 3, 0xab, 64);
    assert_int_equal(der_ec_point_unwrap(in, 67, 32, &pt, &pt_len), TE_OK);
    assert_ptr_equal(pt, in + 2);
    assert_int_equal(pt_len, 65);
    assert_int_equal(der_ec_point_unwrap(in, 67, 0, &pt, &pt_len), TE_OK);
    assert_int_equal(pt_len, 65);
    /* raw point whose first coordinate byte looks like a length (63 = 65 - 2) */
    in[0] = 0x04;
    in[1] = 63;
    assert_int_equal(der_ec_point_unwrap(in, 65, 32, &pt, &pt_len), TE_OK);
    assert_ptr_equal(pt, in);
    assert_int_equal(pt_len, 65);
    /* P-521 wrapped with a long-form length */
    in[0] = 0x04;
    in[1] = 0x81;
    in[2] = 133;
    in[3] = 0x04;
    memset(in + 4, 0x01, 132);
    assert_int_equal(der_ec_point_unwrap(in, 136, 66, &pt, &pt_len), TE_OK);
    assert_ptr_equal(pt, in + 3);
    assert_int_equal(pt_len, 133);
    /* garbage: wrong tag, truncated, inner not a point */
    in[0] = 0x05;
    assert_int_equal(der_ec_point_unwrap(in, 136, 66, &pt, &pt_len), TE_ERR_MALFORMED);
    in[0] = 0x04;
    assert_int_equal(der_ec_point_unwrap(in, 100, 66, &pt, &pt_len), TE_ERR_MALFORMED);
    in[3] = 0x07;
    assert_int_equal(der_ec_point_unwrap(in, 136, 66, &pt, &pt_len), TE_ERR_MALFORMED);
    assert_int_equal(der_ec_point_unwrap(in, 1, 0, &pt, &pt_len), TE_ERR_MALFORMED);
}

static void test_curve_table_and_bad_params(void **state)
{
    (void)state;
    static const uint8_t brainpool[] = {0x06, 0x09, 0x2b, 0x24, 0x03, 0x03,
                                        0x02, 0x08, 0x01, 0x01, 0x07};
    uint8_t point[65] = {0x04};
    uint8_t *der = NULL;
    size_t der_len = 0;

    assert_null(der_curve_from_params(brainpool, sizeof(brainpool)));
    assert_null(der_curve_from_params(brainpool, 3));
    /* an unknown named curve still makes an SPKI (the token knows its curve) */
    assert_int_equal(der_spki_ec(brainpool, sizeof(brainpool), point, sizeof(point), &der,
                                 &der_len), TE_OK);
    assert_true(der_len > sizeof(brainpool) + sizeof(point));
    free(der);
    /* params that are not one DER element, and a point that is not a point */
    assert_int_equal(der_spki_ec(brainpool, sizeof(brainpool) - 1, point, sizeof(point), &der,
                                 &der_len), TE_ERR_MALFORMED);
    point[0] = 0x09;
    assert_int_equal(der_spki_ec(brainpool, sizeof(brainpool), point, sizeof(point), &der,
                                 &der_len), TE_ERR_MALFORMED);
}

static void test_pem_round_trip(void **state)
{
    (void)state;
    uint8_t der[300], *back = NULL;
    size_t back_len = 0;
    char *pem = NULL;

    for (size_t i = 0; i < sizeof(der); i++)
        der[i] = (uint8_t)(i * 31);
    assert_int_equal(der_to_pem("PUBLIC KEY", der, sizeof(der), &pem), TE_OK);
    assert_true(strncmp(pem, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
    assert_non_null(strstr(pem, "\n-----END PUBLIC KEY-----\n"));
    /* base64 lines are at most 64 characters (what openssl writes) */
    for (char *line = strchr(pem, '\n') + 1; *line != '-'; line = strchr(line, '\n') + 1)
        assert_true(strchr(line, '\n') - line <= 64);
    assert_int_equal(der_from_pem(pem, "PUBLIC KEY", &back, &back_len), TE_OK);
    assert_int_equal(back_len, sizeof(der));
    assert_memory_equal(back, der, sizeof(der));
    free(back);
    assert_int_equal(der_from_pem(pem, "CERTIFICATE", &back, &back_len), TE_ERR_NOT_FOUND);
    /* corrupt the base64 */
    pem[30] = '*';
    assert_int_equal(der_from_pem(pem, "PUBLIC KEY", &back, &back_len), TE_ERR_MALFORMED);
    free(pem);
    assert_int_equal(der_to_pem("", der, sizeof(der), &pem), TE_ERR_INVALID);
    assert_int_equal(der_to_pem("PUBLIC KEY", der, 0, &pem), TE_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecdsa_fixed_shapes),
        cmocka_unit_test(test_ecdsa_p521_long_form),
        cmocka_unit_test(test_ecdsa_random_against_mbedtls),
        cmocka_unit_test(test_ecdsa_rejects_bad_input),
        cmocka_unit_test(test_spki_ec_matches_mbedtls),
        cmocka_unit_test(test_spki_rsa_and_digest_info),
        cmocka_unit_test(test_ec_point_unwrap),
        cmocka_unit_test(test_curve_table_and_bad_params),
        cmocka_unit_test(test_pem_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
