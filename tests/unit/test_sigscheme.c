/* Unit tests for common/sigscheme: names (wire format) and properties. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/sigscheme.h"

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < SIG_SCHEME_COUNT; i++) {
        enum sig_scheme s;
        assert_int_equal(sig_scheme_from_name(sig_scheme_name((enum sig_scheme)i), &s), TE_OK);
        assert_int_equal(s, i);
        assert_int_equal(sig_scheme_make(sig_scheme_alg(s), sig_scheme_hash(s)), s);
    }
}

static void test_properties(void **state)
{
    (void)state;
    enum sig_scheme s;
    assert_int_equal(sig_scheme_from_name("rsa_pss_sha384", &s), TE_OK);
    assert_int_equal(sig_scheme_alg(s), SIG_ALG_RSA_PSS);
    assert_int_equal(sig_scheme_hash(s), SIG_HASH_SHA384);
    assert_int_equal(sig_hash_len(sig_scheme_hash(s)), 48);
    assert_int_equal(sig_scheme_from_name("ecdsa_sha512", &s), TE_OK);
    assert_int_equal(sig_scheme_alg(s), SIG_ALG_ECDSA);
    assert_int_equal(sig_hash_len(sig_scheme_hash(s)), 64);
    assert_string_equal(sig_hash_name(SIG_HASH_SHA256), "sha256");
}

static void test_unknown_names(void **state)
{
    (void)state;
    enum sig_scheme s = SIG_ECDSA_SHA256;
    assert_int_equal(sig_scheme_from_name("ecdsa_md5", &s), TE_ERR_INVALID);
    assert_int_equal(sig_scheme_from_name("", &s), TE_ERR_INVALID);
    assert_int_equal(sig_scheme_from_name(NULL, &s), TE_ERR_INVALID);
    assert_false(sig_scheme_valid(SIG_SCHEME_COUNT));
    assert_false(sig_scheme_valid(-1));
    assert_string_equal(sig_scheme_name((enum sig_scheme)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_unknown_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
