/* Unit tests for tedge-cli/tls/tls_key: the signer wrapped as an mbedTLS private key (RSA alt
 * and our EC pk_info) signs through a key-file signer, and mbedTLS verifies what it signs. */
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
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/pk_internal.h>
#include <mbedtls/rsa.h>

#include "common/err.h"
#include "common/rand.h"
#include "tedge-cli/key/signer.h"
#include "tedge-cli/tls/tls_key.h"

#define KEY_PEM_MAX 16000 /* PEM of an RSA-2048 private key is ~1.7 KB */

enum { K_P256, K_P384, K_P521, K_RSA, K_P256_OTHER, K_COUNT };

static struct {
    char dir[64];
} fx_dir;

static struct {
    char path[K_COUNT][128];
} fx;

/* A fresh key of the given kind, written as PEM to fx.path[i]. */
static int make_key_file(int i)
{
    mbedtls_pk_context pk;
    unsigned char pem[KEY_PEM_MAX];
    FILE *f;
    int r;

    mbedtls_pk_init(&pk);
    if (i == K_RSA) {
        r = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA));
        r = r ? r : mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), te_random, NULL, 2048, 65537);
    } else {
        mbedtls_ecp_group_id id = i == K_P384 ? MBEDTLS_ECP_DP_SECP384R1
                                  : i == K_P521 ? MBEDTLS_ECP_DP_SECP521R1
                                                : MBEDTLS_ECP_DP_SECP256R1;
        r = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
        r = r ? r : mbedtls_ecp_gen_key(id, mbedtls_pk_ec(pk), te_random, NULL);
    }
    r = r ? r : mbedtls_pk_write_key_pem(&pk, pem, sizeof(pem));
    snprintf(fx.path[i], sizeof(fx.path[i]), "%s/key%d.pem", fx_dir.dir, i);
    if (r == 0 && (f = fopen(fx.path[i], "w")) != NULL) {
        r = fputs((const char *)pem, f) < 0;
        r |= fclose(f);
    } else if (r == 0) {
        r = -1;
    }
    mbedtls_pk_free(&pk);
    return r;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(fx_dir.dir, sizeof(fx_dir.dir), "/tmp/test_tls_key.XXXXXX");
    if (mkdtemp(fx_dir.dir) == NULL)
        return -1;
    for (int i = 0; i < K_COUNT; i++)
        if (make_key_file(i) != 0)
            return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < K_COUNT; i++)
        unlink(fx.path[i]);
    rmdir(fx_dir.dir);
    return 0;
}

/* A file signer for key i, and its public key parsed as the "certificate's" key. */
struct keyset {
    struct signer *signer;
    mbedtls_pk_context pub;
    struct tls_key *key;
};

static void open_keyset(int signer_key, int cert_key, struct keyset *ks)
{
    struct signer_config cfg = {.kind = SIGNER_FILE, .key_path = fx.path[cert_key]};
    struct signer *cert_signer = NULL;
    struct te_error err = {0};
    uint8_t *der = NULL;
    size_t der_len = 0;

    memset(ks, 0, sizeof(*ks));
    mbedtls_pk_init(&ks->pub);
    assert_int_equal(signer_open(&cfg, &cert_signer, &err), TE_OK);
    assert_int_equal(signer_public_key(cert_signer, &der, &der_len, &err), TE_OK);
    assert_int_equal(mbedtls_pk_parse_public_key(&ks->pub, der, der_len), 0);
    free(der);
    signer_close(cert_signer);
    cfg.key_path = fx.path[signer_key];
    assert_int_equal(signer_open(&cfg, &ks->signer, &err), TE_OK);
}

static void close_keyset(struct keyset *ks)
{
    tls_key_free(ks->key);
    mbedtls_pk_free(&ks->pub);
    signer_close(ks->signer);
}

static void test_layout_check_passes(void **state)
{
    struct te_error err = {0};
    (void)state;
    assert_int_equal(tls_key_check_layout(&err), TE_OK);
    assert_int_equal(tls_key_check_layout(NULL), TE_OK); /* cached, still fine */
}

/* Signs with every hash through the wrapper (hash_len 0, as TLS 1.2 does) and verifies with
 * the public key: mbedTLS accepts the signer's signature, and rejects a tampered one. */
static void sign_and_verify_all_hashes(struct keyset *ks, size_t expect_len)
{
    static const mbedtls_md_type_t mds[] = {MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA384, MBEDTLS_MD_SHA512};
    static const enum sig_hash hashes[] = {SIG_HASH_SHA256, SIG_HASH_SHA384, SIG_HASH_SHA512};
    unsigned char hash[64], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    struct tls_key_stats st;
    size_t len = 0;

    for (size_t i = 0; i < 3; i++) {
        size_t hlen = mbedtls_md_get_size(mbedtls_md_info_from_type(mds[i]));
        assert_int_equal(te_random(NULL, hash, sizeof(hash)), 0);
        assert_int_equal(mbedtls_pk_sign(tls_key_pk(ks->key), mds[i], hash, 0, sig, &len,
                                         te_random, NULL), 0);
        if (expect_len != 0)
            assert_int_equal(len, expect_len);
        assert_int_equal(mbedtls_pk_verify(&ks->pub, mds[i], hash, hlen, sig, len), 0);
        tls_key_get_stats(ks->key, &st);
        assert_int_equal(st.signatures, i + 1);
        assert_true(st.have_last_hash);
        assert_int_equal(st.last_hash, hashes[i]);
        hash[0] ^= 1;
        assert_int_not_equal(mbedtls_pk_verify(&ks->pub, mds[i], hash, hlen, sig, len), 0);
    }
    assert_false(tls_key_take_error(ks->key, NULL));
}

static void test_ec_keys_sign_and_verify(void **state)
{
    static const int keys[] = {K_P256, K_P384, K_P521};
    static const size_t bits[] = {256, 384, 521};
    unsigned char hash[32], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    struct te_error err = {0};
    struct keyset ks;
    size_t len = 0;
    (void)state;

    for (size_t i = 0; i < 3; i++) {
        open_keyset(keys[i], keys[i], &ks);
        assert_int_equal(tls_key_new(ks.signer, &ks.pub, "cert.pem", &ks.key, &err), TE_OK);
        mbedtls_pk_context *pk = tls_key_pk(ks.key);
        assert_true(mbedtls_pk_can_do(pk, MBEDTLS_PK_ECDSA));
        assert_true(mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY));
        assert_false(mbedtls_pk_can_do(pk, MBEDTLS_PK_RSA));
        assert_int_equal(mbedtls_pk_get_bitlen(pk), bits[i]);
        /* the public half is the certificate's, reachable the usual way */
        assert_int_equal(mbedtls_pk_ec(*pk)->grp.id, mbedtls_pk_ec(ks.pub)->grp.id);
        assert_int_equal(mbedtls_ecp_point_cmp(&mbedtls_pk_ec(*pk)->Q, &mbedtls_pk_ec(ks.pub)->Q), 0);
        sign_and_verify_all_hashes(&ks, 0);
        /* our verify_func works too (the public half alone) */
        assert_int_equal(te_random(NULL, hash, sizeof(hash)), 0);
        assert_int_equal(mbedtls_pk_sign(pk, MBEDTLS_MD_SHA256, hash, 0, sig, &len, te_random, NULL), 0);
        assert_int_equal(mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, len), 0);
        close_keyset(&ks);
    }
}

static void test_rsa_key_signs_and_verifies(void **state)
{
    struct te_error err = {0};
    struct keyset ks;
    (void)state;

    open_keyset(K_RSA, K_RSA, &ks);
    assert_int_equal(tls_key_new(ks.signer, &ks.pub, "cert.pem", &ks.key, &err), TE_OK);
    assert_true(mbedtls_pk_can_do(tls_key_pk(ks.key), MBEDTLS_PK_RSA));
    assert_int_equal(mbedtls_pk_get_len(tls_key_pk(ks.key)), 256);
    sign_and_verify_all_hashes(&ks, 256); /* exactly the modulus length */
    close_keyset(&ks);
}

/* MD_NONE (TLS 1.0/1.1's MD5+SHA-1) and other hashes are refused, with the reason kept. */
static void test_md_none_and_weak_hashes_refused(void **state)
{
    static const int keys[] = {K_P256, K_RSA};
    unsigned char hash[36] = {1}, sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    struct te_error err = {0};
    struct tls_key_stats st;
    struct keyset ks;
    size_t len = 0;
    (void)state;

    for (size_t i = 0; i < 2; i++) {
        open_keyset(keys[i], keys[i], &ks);
        assert_int_equal(tls_key_new(ks.signer, &ks.pub, "cert.pem", &ks.key, &err), TE_OK);
        assert_int_not_equal(mbedtls_pk_sign(tls_key_pk(ks.key), MBEDTLS_MD_NONE, hash, 36, sig,
                                             &len, te_random, NULL), 0);
        assert_true(tls_key_take_error(ks.key, &err));
        assert_int_equal(err.code, TE_ERR_UNSUPPORTED);
        assert_non_null(strstr(err.msg, "MD5+SHA-1"));
        assert_false(tls_key_take_error(ks.key, NULL)); /* taken: forgotten */
        assert_int_not_equal(mbedtls_pk_sign(tls_key_pk(ks.key), MBEDTLS_MD_SHA1, hash, 20, sig,
                                             &len, te_random, NULL), 0);
        assert_true(tls_key_take_error(ks.key, &err));
        assert_non_null(strstr(err.msg, "SHA1"));
        tls_key_get_stats(ks.key, &st);
        assert_int_equal(st.signatures, 0);
        assert_int_equal(st.failures, 2);
        close_keyset(&ks);
    }
}

/* The pk layer fills hash_len; called directly, a length that does not fit md_alg is refused
 * and 0 means "the size of md_alg". */
static void test_hash_len_honoured(void **state)
{
    unsigned char hash[64] = {2}, sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    struct te_error err = {0};
    struct keyset ks;
    size_t len = 0;
    (void)state;

    open_keyset(K_P256, K_P256, &ks);
    assert_int_equal(tls_key_new(ks.signer, &ks.pub, "cert.pem", &ks.key, &err), TE_OK);
    mbedtls_pk_context *pk = tls_key_pk(ks.key);
    assert_int_not_equal(pk->pk_info->sign_func(pk->pk_ctx, MBEDTLS_MD_SHA256, hash, 48, sig, &len,
                                                te_random, NULL), 0);
    assert_true(tls_key_take_error(ks.key, &err));
    assert_non_null(strstr(err.msg, "sha256 digest is 32 bytes long, not 48"));
    assert_int_equal(pk->pk_info->sign_func(pk->pk_ctx, MBEDTLS_MD_SHA384, hash, 0, sig, &len,
                                            te_random, NULL), 0);
    assert_int_equal(mbedtls_pk_verify(&ks.pub, MBEDTLS_MD_SHA384, hash, 48, sig, len), 0);
    close_keyset(&ks);
}

static void test_key_must_match_certificate(void **state)
{
    struct te_error err = {0};
    struct keyset ks;
    (void)state;

    open_keyset(K_P256_OTHER, K_P256, &ks);
    assert_int_equal(tls_key_new(ks.signer, &ks.pub, "device.crt", &ks.key, &err), TE_ERR_CONFIG);
    assert_null(ks.key);
    assert_non_null(strstr(err.msg, "does not match the certificate 'device.crt': both are EC P-256"));
    close_keyset(&ks);

    open_keyset(K_RSA, K_P384, &ks);
    assert_int_equal(tls_key_new(ks.signer, &ks.pub, "device.crt", &ks.key, &err), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "the certificate is for an EC P-384 key, the device key is RSA "
                                    "2048-bit"));
    close_keyset(&ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_check_passes),
        cmocka_unit_test(test_ec_keys_sign_and_verify),
        cmocka_unit_test(test_rsa_key_signs_and_verifies),
        cmocka_unit_test(test_md_none_and_weak_hashes_refused),
        cmocka_unit_test(test_hash_len_honoured),
        cmocka_unit_test(test_key_must_match_certificate),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
