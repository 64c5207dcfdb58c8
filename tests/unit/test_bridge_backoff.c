/* Unit tests for tedge-cli/bridge/bridge_backoff: the doubling sequence up to the maximum, the
 * jitter bounds (+-50%), the reset after a stable connection, and the real random source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tedge-cli/bridge/bridge_backoff.h"

/* A fixed "random" value in [0, 1000]. */
static unsigned fixed_rand(void *arg) { return *(unsigned *)arg; }

static void test_sequence_without_jitter_doubles_to_the_maximum(void **state)
{
    struct bridge_backoff b;
    unsigned mid = 500; /* factor exactly 1.0 */
    const uint64_t expect[] = {5000, 10000, 20000, 40000, 80000, 160000, 320000, 600000, 600000,
                               600000};

    (void)state;
    bridge_backoff_init(&b, 5000, 600000, 900000, fixed_rand, &mid);
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        assert_int_equal(bridge_backoff_next(&b, 1000 * i), expect[i]);
}

static void test_jitter_bounds(void **state)
{
    struct bridge_backoff b;
    unsigned r;

    (void)state;
    /* the lowest draw is half the interval, the highest one and a half */
    r = 0;
    bridge_backoff_init(&b, 4000, 600000, 900000, fixed_rand, &r);
    assert_int_equal(bridge_backoff_next(&b, 0), 2000);
    assert_int_equal(bridge_backoff_next(&b, 0), 4000);
    r = 1000;
    bridge_backoff_init(&b, 4000, 600000, 900000, fixed_rand, &r);
    assert_int_equal(bridge_backoff_next(&b, 0), 6000);
    assert_int_equal(bridge_backoff_next(&b, 0), 12000);
    /* never more than the maximum, even with the highest draw */
    for (int i = 0; i < 20; i++)
        assert_true(bridge_backoff_next(&b, 0) <= 600000);
    assert_int_equal(bridge_backoff_next(&b, 0), 600000);
    /* out-of-range draws are clamped */
    r = 5000;
    bridge_backoff_init(&b, 4000, 600000, 900000, fixed_rand, &r);
    assert_int_equal(bridge_backoff_next(&b, 0), 6000);
}

static void test_real_randomness_stays_within_bounds(void **state)
{
    struct bridge_backoff b;
    uint64_t interval = 1000, w;
    int low = 0, high = 0;

    (void)state;
    for (int round = 0; round < 200; round++) {
        bridge_backoff_init(&b, 1000, 8000, 60000, NULL, NULL);
        interval = 1000;
        for (int i = 0; i < 5; i++) {
            w = bridge_backoff_next(&b, 0);
            assert_true(w >= interval / 2);
            assert_true(w <= interval + interval / 2 || w == 8000);
            assert_true(w <= 8000);
            if (i == 0) {
                low += w < 1000;
                high += w > 1000;
            }
            interval = interval * 2 > 8000 ? 8000 : interval * 2;
        }
    }
    /* jitter really varies: 200 draws were not all on one side of the interval */
    assert_true(low > 10);
    assert_true(high > 10);
}

static void test_reset_after_a_stable_connection(void **state)
{
    struct bridge_backoff b;
    unsigned mid = 500;

    (void)state;
    bridge_backoff_init(&b, 1000, 60000, 30000, fixed_rand, &mid);
    assert_int_equal(bridge_backoff_next(&b, 0), 1000);
    assert_int_equal(bridge_backoff_next(&b, 1000), 2000);
    assert_int_equal(bridge_backoff_next(&b, 3000), 4000);
    /* connected, but lost again before the reset window: the sequence goes on */
    bridge_backoff_connected(&b, 10000);
    assert_int_equal(bridge_backoff_next(&b, 10000 + 29999), 8000);
    /* connected for the whole reset window: back to the initial interval */
    bridge_backoff_connected(&b, 100000);
    assert_int_equal(bridge_backoff_next(&b, 100000 + 30000), 1000);
    assert_int_equal(bridge_backoff_next(&b, 140000), 2000);
    /* a failure while not connected never resets, however long ago the last one was */
    assert_int_equal(bridge_backoff_next(&b, 10000000), 4000);
}

static void test_degenerate_settings(void **state)
{
    struct bridge_backoff b;
    unsigned mid = 500;

    (void)state;
    /* maximum below initial: the initial interval is the maximum */
    bridge_backoff_init(&b, 5000, 1000, 0, fixed_rand, &mid);
    assert_int_equal(bridge_backoff_next(&b, 0), 5000);
    assert_int_equal(bridge_backoff_next(&b, 0), 5000);
    /* zero initial interval: still a wait of at least 1 ms */
    bridge_backoff_init(&b, 0, 0, 0, fixed_rand, &mid);
    assert_int_equal(bridge_backoff_next(&b, 0), 1);
    /* absurd intervals are clamped to a week */
    bridge_backoff_init(&b, UINT64_MAX, UINT64_MAX, 0, fixed_rand, &mid);
    assert_int_equal(bridge_backoff_next(&b, 0), BACKOFF_LIMIT_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequence_without_jitter_doubles_to_the_maximum),
        cmocka_unit_test(test_jitter_bounds),
        cmocka_unit_test(test_real_randomness_stays_within_bounds),
        cmocka_unit_test(test_reset_after_a_stable_connection),
        cmocka_unit_test(test_degenerate_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
