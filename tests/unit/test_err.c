/* Unit tests for common/err: the table, stable codes and the structured error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/err.h"

static void test_codes_round_trip(void **state)
{
    (void)state;
    const int all[] = {
#define TE_ERR_VALUE(name, value, code, desc) name,
        TE_ERR_LIST(TE_ERR_VALUE)
#undef TE_ERR_VALUE
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_int_equal(te_err_from_code(te_errcode(all[i])), all[i]);
        assert_string_not_equal(te_strerror(all[i]), "unknown error");
        /* every stable code is unique */
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(te_errcode(all[i]), te_errcode(all[j]));
    }
}

static void test_stable_names(void **state)
{
    (void)state;
    /* These strings are on the wire (proto/PROTOCOL.md): they must never change. */
    assert_string_equal(te_errcode(TE_ERR_PIN_INCORRECT), "pin_incorrect");
    assert_string_equal(te_errcode(TE_ERR_NO_KEY), "key_not_found");
    assert_string_equal(te_errcode(TE_ERR_BUSY), "busy");
    assert_string_equal(te_errcode(TE_ERR_MALFORMED), "malformed");
    assert_int_equal(te_err_from_code("no-such-code"), TE_ERR_INTERNAL);
    assert_int_equal(te_err_from_code(NULL), TE_ERR_INTERNAL);
    assert_string_equal(te_strerror(12345), "unknown error");
}

static void test_error_set(void **state)
{
    (void)state;
    struct te_error e;
    te_error_clear(&e);
    assert_int_equal(te_error_set(&e, TE_ERR_NO_KEY, "No key matches '%s'.", "pkcs11:object=x"),
                     TE_ERR_NO_KEY);
    assert_int_equal(e.code, TE_ERR_NO_KEY);
    assert_false(e.has_ckr);
    assert_string_equal(te_error_message(&e), "No key matches 'pkcs11:object=x'.");

    assert_int_equal(te_error_set_ckr(&e, TE_ERR_PKCS11, 0x32, true, "Device removed."),
                     TE_ERR_PKCS11);
    assert_true(e.has_ckr);
    assert_int_equal(e.ckr, 0x32);
    assert_true(e.retryable);

    /* a plain set resets the PKCS#11 part */
    te_error_set(&e, TE_ERR_IO, NULL);
    assert_false(e.has_ckr);
    assert_false(e.retryable);
    assert_string_equal(te_error_message(&e), "input/output error");
    /* NULL err is allowed and still returns the code */
    assert_int_equal(te_error_set(NULL, TE_ERR_IO, "x"), TE_ERR_IO);
}

static void test_long_message_truncated(void **state)
{
    (void)state;
    struct te_error e;
    char big[2 * TE_ERROR_MSG_MAX];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    te_error_set(&e, TE_ERR_INVALID, "%s", big);
    assert_int_equal(strlen(e.msg), TE_ERROR_MSG_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_round_trip),
        cmocka_unit_test(test_stable_names),
        cmocka_unit_test(test_error_set),
        cmocka_unit_test(test_long_message_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
