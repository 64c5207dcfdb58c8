/* Unit tests for the login and PIN rules of the PKCS#11 core against the mock module: no
 * default PIN, a wrong PIN sent once, how the PIN's origin is named, a logged-in token that
 * still checks a different PIN, PIN precedence and pin-source (the lockout policy is in
 * test_p11_pin_policy.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "test_p11_helpers.h"

static int setup(void **state)
{
    (void)state;
    mock_module();
    mock_env_clear();
    return 0;
}

static void assert_no_secret(const struct te_error *err, const char *pin)
{
    if (strstr(err->msg, pin) != NULL)
        fail_msg("the PIN appears in the message: %s", err->msg);
}

static void test_no_pin_is_an_error_not_a_default(void **state)
{
    (void)state;
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);
    struct te_error err = {0};

    assert_int_equal(sign_with(ctx, MOCK_URI_EC, NULL, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_PIN_REQUIRED);
    assert_non_null(strstr(err.msg, "requires a PIN"));
    assert_non_null(strstr(err.msg, "no default PIN"));
    assert_false(err.retryable);
    assert_int_equal(mock_count("C_Login"), 0);
    p11_close(ctx);
}

static void test_wrong_pin_is_sent_once(void **state)
{
    (void)state;
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);
    struct te_error err = {0};

    assert_int_equal(sign_with(ctx, MOCK_URI_EC, "0000", SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_PIN_INCORRECT);
    assert_true(err.has_ckr);
    assert_int_equal(err.ckr, CKR_PIN_INCORRECT);
    assert_false(err.retryable);
    assert_string_equal(err.msg, "Logging in to token 'mock' failed: the PIN given for the key "
                                 "(device.key_pin or the request's PIN) is incorrect "
                                 "(CKR_PIN_INCORRECT). The token has counted wrong PINs; a few "
                                 "more will lock it. Use the right PIN.");
    assert_no_secret(&err, "0000");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sign_with(ctx, MOCK_URI_EC, "0000", SIG_ECDSA_SHA256, 1, NULL, NULL,
                                   &err), TE_ERR_PIN_INCORRECT);
        assert_int_equal(err.ckr, CKR_PIN_INCORRECT);
        assert_non_null(strstr(err.msg, "refused the PIN given for the key (device.key_pin or "
                                        "the request's PIN) before"));
    }
    assert_int_equal(mock_count("C_Login"), 1); /* the same wrong PIN went to the token once */
    p11_close(ctx);
}

static void test_configured_pin_named_in_message_and_service_log(void **state)
{
    (void)state;
    struct p11_config cfg = {.default_pin = "8642",
                             .default_pin_name = "the PIN configured for tedge-p11-server "
                                                 "(--pin/--pin-file/credential/"
                                                 "device.cryptoki.pin)"};
    struct p11_ctx *ctx = mock_open_cfg(cfg);
    struct te_error err = {0};
    char *logs;

    log_capture_begin();
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, NULL, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_PIN_INCORRECT);
    logs = log_capture_end();
    assert_non_null(strstr(err.msg, "failed: the PIN configured for tedge-p11-server "
                                    "(--pin/--pin-file/credential/device.cryptoki.pin) is "
                                    "incorrect (CKR_PIN_INCORRECT)."));
    assert_non_null(strstr(logs, "Logging in to token 'mock' failed: the PIN configured for "
                                 "tedge-p11-server (--pin/--pin-file/credential/"
                                 "device.cryptoki.pin) is incorrect (CKR_PIN_INCORRECT)"));
    assert_non_null(strstr(logs, "ERROR"));
    assert_null(strstr(logs, "8642"));
    assert_no_secret(&err, "8642");
    free(logs);
    p11_close(ctx);

    /* without a name (module mode) the setting is named, and nothing more is logged */
    ctx = mock_open(NULL, "8642", 0);
    log_capture_begin();
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, NULL, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_PIN_INCORRECT);
    logs = log_capture_end();
    assert_non_null(strstr(err.msg, "failed: the configured PIN (device.cryptoki.pin) is "
                                    "incorrect (CKR_PIN_INCORRECT)."));
    assert_null(strstr(err.msg, "from the configured"));
    assert_null(strstr(logs, "ERROR"));
    free(logs);
    p11_close(ctx);
}

static void test_logged_in_token_still_checks_another_pin(void **state)
{
    (void)state;
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);
    struct te_error err = {0};

    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_OK);
    assert_int_equal(mock_count("C_Login"), 1);
    /* The token is logged in, so C_Login would answer "already logged in" to any PIN: the
     * core logs out and checks this one for real, then logs back in with the good one. */
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, "9999", SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_PIN_INCORRECT);
    assert_no_secret(&err, "9999");
    assert_int_equal(mock_count("C_Logout"), 1);
    assert_int_equal(mock_count("login_failed"), 1);
    assert_int_equal(mock_count("C_Login"), 3);
    assert_int_equal(mock_count("logged_in"), 1);
    assert_int_equal(mock_count("C_Sign"), 1); /* nothing was signed for the wrong PIN */
    /* the right PIN keeps working, without another login */
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 2, NULL, NULL, &err),
                     TE_OK);
    assert_int_equal(mock_count("C_Login"), 3);
    /* the wrong PIN again: refused without touching the token */
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, "9999", SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_PIN_INCORRECT);
    assert_int_equal(mock_count("C_Login"), 3);
    assert_int_equal(mock_count("C_Logout"), 1);
    /* and no PIN at all is not good enough either */
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, NULL, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_PIN_REQUIRED);
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 3, NULL, NULL, &err),
                     TE_OK);
    assert_int_equal(mock_count("C_Sign"), 3);
    p11_close(ctx);
}

static void test_pin_precedence_with_a_real_login(void **state)
{
    (void)state;
    char path[] = "/tmp/test_p11_pin_XXXXXX", uri[160];
    struct p11_ctx *ctx = mock_open(NULL, "0000", 0); /* a wrong configured default */
    struct te_error err = {0};
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, MOCK_PIN "\n", 5), 5);
    close(fd);
    /* the caller's PIN beats the default */
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_OK);
    /* the URI's pin-value beats the caller's */
    assert_int_equal(sign_with(ctx, MOCK_URI_EC "?pin-value=" MOCK_PIN, "7777", SIG_ECDSA_SHA256,
                               1, NULL, NULL, &err), TE_OK);
    /* and so does pin-source */
    snprintf(uri, sizeof(uri), "%s?pin-source=file:%s", MOCK_URI_EC, path);
    assert_int_equal(sign_with(ctx, uri, "7777", SIG_ECDSA_SHA256, 1, NULL, NULL, &err), TE_OK);
    assert_int_equal(mock_count("login_failed"), 0); /* 0000 and 7777 never reached the token */
    /* without anything else the (wrong) default is used */
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, NULL, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_PIN_INCORRECT);
    assert_non_null(strstr(err.msg, "configured PIN"));
    unlink(path);
    p11_close(ctx);
}

struct signer_thread {
    struct p11_ctx *ctx;
    int failures;
};

static void *right_pin_signer(void *arg)
{
    struct signer_thread *t = arg;
    struct te_error err = {0};

    for (unsigned i = 0; i < 4; i++)
        if (sign_with(t->ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, i, NULL, NULL, &err) !=
            TE_OK)
            t->failures++;
    return NULL;
}

static void test_wrong_pin_during_concurrent_signing(void **state)
{
    (void)state;
    struct signer_thread t[3];
    pthread_t tid[3];
    struct te_error err = {0};
    struct p11_ctx *ctx;

    setenv("MOCK_P11_SIGN_DELAY_MS", "40", 1);
    ctx = mock_open(NULL, NULL, 4);
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_OK);
    for (int i = 0; i < 3; i++) {
        t[i] = (struct signer_thread){ctx, 0};
        pthread_create(&tid[i], NULL, right_pin_signer, &t[i]);
    }
    /* the PIN check waits for the sessions in use, and they wait for it */
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, "5555", SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_PIN_INCORRECT);
    for (int i = 0; i < 3; i++) {
        pthread_join(tid[i], NULL);
        assert_int_equal(t[i].failures, 0);
    }
    assert_int_equal(mock_count("session_conflicts"), 0);
    assert_int_equal(mock_count("C_Sign"), 13);
    p11_close(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_no_pin_is_an_error_not_a_default, setup),
        cmocka_unit_test_setup(test_wrong_pin_is_sent_once, setup),
        cmocka_unit_test_setup(test_configured_pin_named_in_message_and_service_log, setup),
        cmocka_unit_test_setup(test_logged_in_token_still_checks_another_pin, setup),
        cmocka_unit_test_setup(test_pin_precedence_with_a_real_login, setup),
        cmocka_unit_test_setup(test_wrong_pin_during_concurrent_signing, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
