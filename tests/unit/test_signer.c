/* Unit tests for the signer's key-file backend and front end: keys generated here with
 * mbedTLS, signatures verified with mbedTLS against the signer's own public key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "common/rand.h"
#include "tedge-cli/key/signer.h"
#include "unit_helpers.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/te-signer-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return unit_remove_dir(dir);
}

/* Writes a fresh key of the given kind to <dir>/<name> as PEM (or DER). */
static void write_key(const char *name, int rsa_bits, mbedtls_ecp_group_id curve, int der,
                      char *path, size_t path_size)
{
    mbedtls_pk_context pk;
    unsigned char out[16000];
    FILE *f;
    int n;

    mbedtls_pk_init(&pk);
    if (rsa_bits) {
        assert_int_equal(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
        assert_int_equal(mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), te_random, NULL,
                                             (unsigned)rsa_bits, 65537), 0);
    } else {
        assert_int_equal(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
        assert_int_equal(mbedtls_ecp_gen_key(curve, mbedtls_pk_ec(pk), te_random, NULL), 0);
    }
    snprintf(path, path_size, "%s/%s", dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    if (der) {
        n = mbedtls_pk_write_key_der(&pk, out, sizeof(out));
        assert_true(n > 0);
        fwrite(out + sizeof(out) - n, 1, (size_t)n, f);
    } else {
        assert_int_equal(mbedtls_pk_write_key_pem(&pk, out, sizeof(out)), 0);
        fputs((char *)out, f);
    }
    fclose(f);
    mbedtls_pk_free(&pk);
}

/* Signs a digest with every scheme the key reports and verifies against its public key. */
static void sign_and_verify_all(const char *path, enum p11_key_type want_type, unsigned want_bits)
{
    struct signer_config cfg = {.kind = SIGNER_FILE, .key_path = path};
    struct signer *s = NULL;
    struct signer_key_info info;
    struct te_error err;
    uint8_t *der = NULL, sig[1024], digest[64];
    size_t der_len, sig_len;
    mbedtls_pk_context pub;
    int schemes = 0;

    assert_int_equal(signer_open(&cfg, &s, &err), TE_OK);
    assert_int_equal(signer_key_info(s, &info, &err), TE_OK);
    assert_int_equal(info.type, want_type);
    assert_int_equal(info.bits, want_bits);
    assert_int_equal(signer_public_key(s, &der, &der_len, &err), TE_OK);
    mbedtls_pk_init(&pub);
    assert_int_equal(mbedtls_pk_parse_public_key(&pub, der, der_len), 0);
    for (int sc = 0; sc < SIG_SCHEME_COUNT; sc++) {
        if (!(info.schemes & (1u << sc)))
            continue;
        enum sig_hash h = sig_scheme_hash((enum sig_scheme)sc);
        size_t dlen = sig_hash_len(h);
        mbedtls_md_type_t md = h == SIG_HASH_SHA256 ? MBEDTLS_MD_SHA256
                               : h == SIG_HASH_SHA384 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA512;
        te_random(NULL, digest, dlen);
        assert_int_equal(signer_sign_digest(s, (enum sig_scheme)sc, digest, dlen, sig,
                                            sizeof(sig), &sig_len, &err), TE_OK);
        if (sig_scheme_alg((enum sig_scheme)sc) == SIG_ALG_RSA_PSS) {
            assert_int_equal(mbedtls_rsa_rsassa_pss_verify_ext(mbedtls_pk_rsa(pub), NULL, NULL,
                                 MBEDTLS_RSA_PUBLIC, md, (unsigned)dlen, digest, md,
                                 (int)dlen, sig), 0);
        } else {
            assert_int_equal(mbedtls_pk_verify(&pub, md, digest, dlen, sig, sig_len), 0);
        }
        /* a flipped digest bit must not verify */
        digest[0] ^= 1;
        if (sig_scheme_alg((enum sig_scheme)sc) != SIG_ALG_RSA_PSS)
            assert_int_not_equal(mbedtls_pk_verify(&pub, md, digest, dlen, sig, sig_len), 0);
        schemes++;
    }
    assert_int_equal(schemes, want_type == P11_KEY_RSA ? 6 : 3);
    mbedtls_pk_free(&pub);
    free(der);
    signer_close(s);
}

static void test_ec_keys(void **state)
{
    (void)state;
    char p[128];
    write_key("p256.pem", 0, MBEDTLS_ECP_DP_SECP256R1, 0, p, sizeof(p));
    sign_and_verify_all(p, P11_KEY_EC, 256);
    write_key("p384.der", 0, MBEDTLS_ECP_DP_SECP384R1, 1, p, sizeof(p));
    sign_and_verify_all(p, P11_KEY_EC, 384);
    write_key("p521.pem", 0, MBEDTLS_ECP_DP_SECP521R1, 0, p, sizeof(p));
    sign_and_verify_all(p, P11_KEY_EC, 521);
}

static void test_rsa_key(void **state)
{
    (void)state;
    char p[128];
    write_key("rsa.pem", 2048, MBEDTLS_ECP_DP_NONE, 0, p, sizeof(p));
    sign_and_verify_all(p, P11_KEY_RSA, 2048);
}

static void test_errors(void **state)
{
    (void)state;
    char p[128];
    struct te_error err;
    struct signer *s = NULL;
    struct signer_config cfg = {.kind = SIGNER_FILE, .key_path = "/nonexistent/key.pem"};
    uint8_t digest[48] = {0}, sig[600];
    size_t sig_len;

    assert_int_equal(signer_open(&cfg, &s, &err), TE_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/key.pem"));

    snprintf(p, sizeof(p), "%s/garbage.pem", dir);
    FILE *f = fopen(p, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    cfg.key_path = p;
    assert_int_equal(signer_open(&cfg, &s, &err), TE_ERR_MALFORMED);
    assert_non_null(strstr(err.msg, "is not a usable private key"));

    cfg.key_path = NULL;
    assert_int_equal(signer_open(&cfg, &s, &err), TE_ERR_CONFIG);

    write_key("ec.pem", 0, MBEDTLS_ECP_DP_SECP256R1, 0, p, sizeof(p));
    cfg.key_path = p;
    assert_int_equal(signer_open(&cfg, &s, &err), TE_OK);
    /* wrong digest length for the scheme */
    assert_int_equal(signer_sign_digest(s, SIG_ECDSA_SHA256, digest, 48, sig, sizeof(sig),
                                        &sig_len, &err), TE_ERR_INVALID);
    /* RSA scheme on an EC key */
    assert_int_equal(signer_sign_digest(s, SIG_RSA_PKCS1_SHA384, digest, 48, sig, sizeof(sig),
                                        &sig_len, &err), TE_ERR_MECHANISM);
    enum sig_scheme sc;
    assert_int_equal(signer_default_scheme(s, SIG_HASH_SHA384, &sc, &err), TE_OK);
    assert_int_equal(sc, SIG_ECDSA_SHA384);
    assert_non_null(strstr(signer_describe(s), "ec.pem"));
    signer_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ec_keys),
        cmocka_unit_test(test_rsa_key),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
