/* Unit tests for common/buf: bounds, growth, consume, wipe helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"

static void test_put_within_max(void **state)
{
    (void)state;
    struct buf *b = buf_new(8);
    assert_non_null(b);
    assert_int_equal(buf_put(b, "abcd", 4), TE_OK);
    assert_int_equal(buf_put_u32be(b, 0x01020304), TE_OK);
    assert_int_equal(buf_len(b), 8);
    assert_memory_equal(buf_data(b), "abcd\x01\x02\x03\x04", 8);
    buf_free(b);
}

static void test_put_past_max_is_refused_and_keeps_content(void **state)
{
    (void)state;
    struct buf *b = buf_new(5);
    assert_int_equal(buf_put(b, "abc", 3), TE_OK);
    assert_int_equal(buf_put(b, "def", 3), TE_ERR_TOO_LARGE);
    assert_int_equal(buf_len(b), 3);
    assert_memory_equal(buf_data(b), "abc", 3);
    /* a length that would overflow size_t arithmetic is refused too */
    assert_int_equal(buf_put(b, "x", SIZE_MAX), TE_ERR_TOO_LARGE);
    buf_free(b);
}

static void test_growth_many_appends(void **state)
{
    (void)state;
    struct buf *b = buf_new(100000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf_put_u8(b, (uint8_t)i), TE_OK);
    assert_int_equal(buf_len(b), 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf_data(b)[i], (uint8_t)i);
    buf_free(b);
}

static void test_printf_and_consume(void **state)
{
    (void)state;
    struct buf *b = buf_new(64);
    assert_int_equal(buf_printf(b, "%s=%d", "n", 42), TE_OK);
    assert_string_equal((const char *)buf_data(b), "n=42");
    buf_consume(b, 2);
    assert_int_equal(buf_len(b), 2);
    assert_string_equal((const char *)buf_data(b), "42");
    buf_consume(b, 10);
    assert_int_equal(buf_len(b), 0);
    assert_int_equal(buf_printf(b, "%0100d", 1), TE_ERR_TOO_LARGE);
    buf_free(b);
}

static void test_u32be_round_trip(void **state)
{
    (void)state;
    uint8_t p[4];
    put_u32be(p, 0xdeadbeef);
    assert_memory_equal(p, "\xde\xad\xbe\xef", 4);
    assert_int_equal(get_u32be(p), 0xdeadbeef);
}

static void test_wipe(void **state)
{
    (void)state;
    char s[] = "secret";
    te_wipe(s, sizeof(s));
    for (size_t i = 0; i < sizeof(s); i++)
        assert_int_equal(s[i], 0);
    te_free_secret(NULL);
    buf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_within_max),
        cmocka_unit_test(test_put_past_max_is_refused_and_keeps_content),
        cmocka_unit_test(test_growth_many_appends),
        cmocka_unit_test(test_printf_and_consume),
        cmocka_unit_test(test_u32be_round_trip),
        cmocka_unit_test(test_wipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
