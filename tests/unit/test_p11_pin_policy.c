/* Unit tests for the rules that keep wrong PINs from locking a token, against the mock module
 * (C_Login counted): refused PINs remembered (32), a cooldown after each refusal that the
 * known-good PIN ignores, no untried PIN once the token counts failures, no empty PIN. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "test_p11_helpers.h"

#define SHORT_COOLDOWN_MS 150 /* a cooldown that tests wait out (never one they must beat) */

static int setup(void **state)
{
    (void)state;
    mock_module();
    mock_env_clear();
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The daemon's setting: the PINs in requests come from peers. */
static struct p11_ctx *open_with_cooldown(unsigned cooldown_ms)
{
    struct p11_config cfg = {.pin_cooldown_ms = cooldown_ms, .requests_from_peers = true};
    return mock_open_cfg(cfg);
}

static int sign_pin(struct p11_ctx *ctx, const char *pin, struct te_error *err)
{
    return sign_with(ctx, MOCK_URI_EC, pin, SIG_ECDSA_SHA256, 1, NULL, NULL, err);
}

static void wrong_pin(unsigned i, char *out, size_t size)
{
    snprintf(out, size, "9%03u", i);
}

static void test_burst_of_wrong_pins_costs_one_login(void **state)
{
    (void)state;
    struct p11_ctx *ctx = open_with_cooldown(0); /* the default cooldown: 30 s */
    struct te_error err = {0};
    char pin[16];

    assert_int_equal(sign_pin(ctx, "9000", &err), TE_ERR_PIN_INCORRECT);
    for (unsigned i = 1; i < 20; i++) {
        wrong_pin(i, pin, sizeof(pin));
        assert_int_equal(sign_pin(ctx, pin, &err), TE_ERR_BUSY);
        assert_true(err.retryable);
        assert_false(err.has_ckr); /* the token was not asked */
        assert_non_null(strstr(err.msg, "refused a wrong PIN 0 s ago"));
        assert_non_null(strstr(err.msg, "is not tried for another 30 s"));
    }
    /* the right PIN has not worked here yet either, so it waits too */
    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_ERR_BUSY);
    assert_int_equal(mock_count("C_Login"), 1);
    assert_int_equal(mock_count("login_failed"), 1);
    assert_int_equal(mock_count("C_Sign"), 0);
    p11_close(ctx);
}

static void test_known_good_pin_signs_through_the_cooldown(void **state)
{
    (void)state;
    struct p11_ctx *ctx = open_with_cooldown(0); /* 30 s: the loop cannot outlast it */
    struct te_error err = {0};
    char pin[16];

    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_OK);
    /* a wrong PIN on the logged-in token: checked once (logout, login, login back) */
    assert_int_equal(sign_pin(ctx, "9000", &err), TE_ERR_PIN_INCORRECT);
    assert_int_equal(mock_count("login_failed"), 1);
    assert_int_equal(mock_count("C_Login"), 3);
    for (unsigned i = 1; i < 10; i++) {
        wrong_pin(i, pin, sizeof(pin));
        assert_int_equal(sign_pin(ctx, pin, &err), TE_ERR_BUSY);
        /* meanwhile the right PIN keeps signing, without a login */
        assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_OK);
    }
    assert_int_equal(mock_count("C_Login"), 3);
    assert_int_equal(mock_count("login_failed"), 1);
    assert_int_equal(mock_count("C_Sign"), 10);
    p11_close(ctx);
}

static void test_one_untried_pin_per_cooldown(void **state)
{
    (void)state;
    struct p11_ctx *ctx = open_with_cooldown(SHORT_COOLDOWN_MS);
    struct te_error err = {0};

    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_OK);
    assert_int_equal(sign_pin(ctx, "9000", &err), TE_ERR_PIN_INCORRECT);
    sleep_ms(SHORT_COOLDOWN_MS + 50);
    /* the cooldown is over: one more untried PIN is checked for real */
    assert_int_equal(sign_pin(ctx, "9001", &err), TE_ERR_PIN_INCORRECT);
    assert_int_equal(mock_count("login_failed"), 2);
    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_OK);
    assert_int_equal(mock_count("C_Login"), 5);
    p11_close(ctx);
}

static void test_known_good_pin_logs_in_again_during_the_cooldown(void **state)
{
    (void)state;
    struct p11_ctx *ctx;
    struct te_error err = {0};

    /* the token logs us out at the 2nd C_Sign; the core logs in again to recover */
    setenv("MOCK_P11_FAIL_SIGN_AFTER", "2", 1);
    setenv("MOCK_P11_FAIL_RV", "CKR_USER_NOT_LOGGED_IN", 1);
    ctx = open_with_cooldown(0);
    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_OK);
    assert_int_equal(sign_pin(ctx, "9000", &err), TE_ERR_PIN_INCORRECT);
    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_OK);
    assert_int_equal(mock_count("C_Sign"), 3); /* one failed, then signed after a new login */
    assert_int_equal(mock_count("login_failed"), 1);
    assert_int_equal(mock_count("C_Login"), 4);
    p11_close(ctx);
}

static void test_remembers_32_refused_pins(void **state)
{
    (void)state;
    struct p11_ctx *ctx = open_with_cooldown(1);
    struct te_error err = {0};
    char pin[16];

    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_OK);
    for (unsigned i = 0; i < 33; i++) {
        wrong_pin(i, pin, sizeof(pin));
        sleep_ms(3);
        assert_int_equal(sign_pin(ctx, pin, &err), TE_ERR_PIN_INCORRECT);
    }
    assert_int_equal(mock_count("login_failed"), 33);
    /* the last 32 are refused without the token; the first one was forgotten */
    for (unsigned i = 1; i < 33; i++) {
        wrong_pin(i, pin, sizeof(pin));
        sleep_ms(3);
        assert_int_equal(sign_pin(ctx, pin, &err), TE_ERR_PIN_INCORRECT);
        assert_non_null(strstr(err.msg, "before"));
    }
    assert_int_equal(mock_count("login_failed"), 33);
    sleep_ms(3);
    assert_int_equal(sign_pin(ctx, "9000", &err), TE_ERR_PIN_INCORRECT);
    assert_int_equal(mock_count("login_failed"), 34);
    p11_close(ctx);
}

/* A token that someone else gave wrong PINs before we started. */
static struct p11_ctx *open_counted(const char *failures)
{
    setenv("MOCK_P11_PIN_FAILURES", failures, 1);
    return open_with_cooldown(SHORT_COOLDOWN_MS);
}

static void test_count_low_keeps_untried_pins_away(void **state)
{
    (void)state;
    struct p11_ctx *ctx = open_counted("1");
    struct te_error err = {0};

    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_ERR_PERMISSION);
    assert_true(err.retryable);
    assert_false(err.has_ckr);
    assert_non_null(strstr(err.msg, "has counted wrong PINs (CKF_USER_PIN_COUNT_LOW)"));
    assert_non_null(strstr(err.msg, "was not tried"));
    assert_non_null(strstr(err.msg, "pkcs11-tool --login"));
    assert_int_equal(sign_pin(ctx, "9000", &err), TE_ERR_PERMISSION);
    assert_int_equal(mock_count("C_Login"), 0);
    assert_true(mock_count("C_GetTokenInfo") >= 2); /* the flags are read before each try */
    p11_close(ctx);

    ctx = open_counted("2");
    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_ERR_PERMISSION);
    assert_non_null(strstr(err.msg, "(CKF_USER_PIN_FINAL_TRY)"));
    assert_int_equal(mock_count("C_Login"), 0);
    p11_close(ctx);

    ctx = open_counted("3");
    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_ERR_PIN_LOCKED);
    assert_false(err.retryable);
    assert_non_null(strstr(err.msg, "its PIN is locked (CKF_USER_PIN_LOCKED)"));
    assert_non_null(strstr(err.msg, "unlock the PIN with the SO PIN"));
    assert_int_equal(mock_count("C_Login"), 0);
    p11_close(ctx);
}

static void test_count_low_after_our_own_refusal(void **state)
{
    (void)state;
    struct p11_ctx *ctx = open_with_cooldown(SHORT_COOLDOWN_MS);
    struct te_error err = {0};

    assert_int_equal(sign_pin(ctx, "9000", &err), TE_ERR_PIN_INCORRECT);
    sleep_ms(SHORT_COOLDOWN_MS + 50);
    /* the cooldown is over, but the token now counts a failure: nothing untried is sent */
    assert_int_equal(sign_pin(ctx, "9001", &err), TE_ERR_PERMISSION);
    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_ERR_PERMISSION);
    assert_int_equal(mock_count("C_Login"), 1);
    p11_close(ctx);
}

/* Module mode (and the daemon's own configured PIN): the PIN is the operator's configuration,
 * so a counting token still gets it once; only the final try holds it back. */
static void test_operator_pin_is_tried_while_the_token_counts(void **state)
{
    (void)state;
    struct p11_config cfg = {.pin_cooldown_ms = 60000};
    struct p11_ctx *ctx;
    struct te_error err = {0};

    setenv("MOCK_P11_PIN_FAILURES", "1", 1);
    ctx = mock_open_cfg(cfg);
    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_OK);
    assert_int_equal(mock_count("C_Login"), 1);
    p11_close(ctx);

    /* no cooldown between two different operator PINs: each is tried once, never again */
    setenv("MOCK_P11_PIN_FAILURES", "0", 1);
    ctx = mock_open_cfg(cfg);
    assert_int_equal(sign_pin(ctx, "9000", &err), TE_ERR_PIN_INCORRECT);
    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_OK);
    assert_int_equal(sign_pin(ctx, "9000", &err), TE_ERR_PIN_INCORRECT);
    assert_int_equal(mock_count("C_Login"), 2);
    p11_close(ctx);

    setenv("MOCK_P11_PIN_FAILURES", "2", 1);
    ctx = mock_open_cfg(cfg);
    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_ERR_PERMISSION);
    assert_non_null(strstr(err.msg, "(CKF_USER_PIN_FINAL_TRY)"));
    assert_int_equal(mock_count("C_Login"), 0);
    p11_close(ctx);
}

static void test_daemon_configured_pin_is_tried_while_the_token_counts(void **state)
{
    (void)state;
    struct p11_config cfg = {.requests_from_peers = true, .default_pin = MOCK_PIN};
    struct p11_ctx *ctx;
    struct te_error err = {0};

    setenv("MOCK_P11_PIN_FAILURES", "1", 1);
    ctx = mock_open_cfg(cfg);
    /* no PIN in the request: the daemon's own PIN applies, and it is the operator's */
    assert_int_equal(sign_pin(ctx, NULL, &err), TE_OK);
    assert_int_equal(mock_count("C_Login"), 1);
    p11_close(ctx);
}

static void test_empty_pin_is_refused_before_login(void **state)
{
    (void)state;
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);
    struct te_error err = {0};

    assert_int_equal(sign_pin(ctx, "", &err), TE_ERR_INVALID);
    assert_string_equal(err.msg, "Token 'mock' was not asked to log in: the PIN given for the "
                                 "key (device.key_pin or the request's PIN) is empty, and an "
                                 "empty PIN would only count as a wrong try. Give the token's "
                                 "PIN.");
    assert_false(err.retryable);
    assert_int_equal(sign_with(ctx, MOCK_URI_EC "?pin-value=", MOCK_PIN, SIG_ECDSA_SHA256, 1,
                               NULL, NULL, &err), TE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "the PIN in the URI's pin-value is empty"));
    assert_int_equal(mock_count("C_Login"), 0);
    /* and it started no cooldown: the right PIN logs in at once */
    assert_int_equal(sign_pin(ctx, MOCK_PIN, &err), TE_OK);
    p11_close(ctx);

    ctx = mock_open(NULL, "", 0);
    assert_int_equal(sign_pin(ctx, NULL, &err), TE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "the configured PIN (device.cryptoki.pin) is empty"));
    assert_int_equal(mock_count("C_Login"), 0);
    p11_close(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_burst_of_wrong_pins_costs_one_login, setup),
        cmocka_unit_test_setup(test_known_good_pin_signs_through_the_cooldown, setup),
        cmocka_unit_test_setup(test_one_untried_pin_per_cooldown, setup),
        cmocka_unit_test_setup(test_known_good_pin_logs_in_again_during_the_cooldown, setup),
        cmocka_unit_test_setup(test_remembers_32_refused_pins, setup),
        cmocka_unit_test_setup(test_count_low_keeps_untried_pins_away, setup),
        cmocka_unit_test_setup(test_count_low_after_our_own_refusal, setup),
        cmocka_unit_test_setup(test_operator_pin_is_tried_while_the_token_counts, setup),
        cmocka_unit_test_setup(test_daemon_configured_pin_is_tried_while_the_token_counts, setup),
        cmocka_unit_test_setup(test_empty_pin_is_refused_before_login, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
