/* Unit tests for signing through the PKCS#11 core against the mock module: the call counts of
 * the cached path, every scheme verified, digest checks, recovery from injected faults, the
 * session pool under concurrent slow signing, module reload and status. */
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

static void test_hundred_signatures_one_login_one_find(void **state)
{
    (void)state;
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);
    struct te_error err = {0};
    uint8_t sig[P11_SIG_MAX];
    size_t sig_len = 0;
    struct p11_status st;

    for (unsigned i = 0; i < 100; i++)
        if (sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, i, sig, &sig_len, &err) !=
            TE_OK)
            fail_msg("signature %u: %s", i, err.msg);
    /* the persistent session, login and key handle: no open/login/find per signature */
    assert_int_equal(mock_count("C_Login"), 1);
    assert_int_equal(mock_count("C_FindObjectsInit"), 1);
    assert_int_equal(mock_count("C_OpenSession"), 1);
    /* the slot enumeration, and the PIN counters read once before the first login */
    assert_int_equal(mock_count("C_GetTokenInfo"), 2);
    assert_int_equal(mock_count("C_SignInit"), 100);
    assert_int_equal(mock_count("C_Sign"), 100);
    assert_int_equal(mock_count("C_CloseSession"), 0);
    assert_verifies(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 99, sig, sig_len);
    assert_int_equal(p11_get_status(ctx, &st), TE_OK);
    assert_true(st.token_present);
    assert_string_equal(st.token_label, "mock");
    assert_int_equal(st.signatures, 100);
    assert_int_equal(st.logins, 1);
    assert_int_equal(st.errors, 0);
    assert_true(st.last_success > 0);
    p11_close(ctx);
}

static void test_every_scheme_verifies(void **state)
{
    (void)state;
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);
    struct te_error err = {0};
    uint8_t sig[P11_SIG_MAX];
    size_t sig_len = 0;

    for (int s = 0; s < SIG_SCHEME_COUNT; s++) {
        enum sig_scheme sc = (enum sig_scheme)s;
        const char *uri = sig_scheme_alg(sc) == SIG_ALG_ECDSA ? MOCK_URI_EC : MOCK_URI_RSA;
        if (sign_with(ctx, uri, MOCK_PIN, sc, 7, sig, &sig_len, &err) != TE_OK)
            fail_msg("%s: %s", sig_scheme_name(sc), err.msg);
        if (sig_scheme_alg(sc) == SIG_ALG_ECDSA) {
            assert_int_equal(sig[0], 0x30); /* DER, not raw r||s */
            /* the mock refuses more than 32 bytes: SHA-384/512 were truncated for P-256 */
            assert_int_equal(mock_count("last_sign_len"), 32);
        } else {
            assert_int_equal(sig_len, 256);
        }
        assert_verifies(ctx, uri, MOCK_PIN, sc, 7, sig, sig_len);
    }
    p11_close(ctx);
}

static void test_digest_and_scheme_checks(void **state)
{
    (void)state;
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);
    struct p11_keyref ref = {MOCK_URI_EC, MOCK_PIN};
    struct te_error err = {0};
    uint8_t dg[64] = {0}, sig[P11_SIG_MAX];
    size_t sig_len = 0;

    assert_int_equal(p11_sign(ctx, &ref, SIG_ECDSA_SHA256, dg, 20, sig, sizeof(sig), &sig_len,
                              &err), TE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "32-byte sha256"));
    assert_int_equal(p11_sign(ctx, &ref, (enum sig_scheme)42, dg, 32, sig, sizeof(sig), &sig_len,
                              &err), TE_ERR_INVALID);
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_RSA_PSS_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_MECHANISM);
    assert_non_null(strstr(err.msg, "is an EC key"));
    assert_int_equal(sign_with(ctx, MOCK_URI_RSA, MOCK_PIN, SIG_ECDSA_SHA384, 1, NULL, NULL, &err),
                     TE_ERR_MECHANISM);
    assert_non_null(strstr(err.msg, "is an RSA key"));
    assert_int_equal(mock_count("C_SignInit"), 0); /* refused before the token was asked */
    /* a too small signature buffer */
    assert_int_equal(p11_sign(ctx, &ref, SIG_ECDSA_SHA256, dg, 32, sig, 10, &sig_len, &err),
                     TE_ERR_TOO_LARGE);
    p11_close(ctx);
}

/* Injects one fault at the 3rd C_Sign of 5 signatures; every signature succeeds. */
static void run_fault(const char *rv, unsigned long *logins, unsigned long *finds,
                      unsigned long *opens, bool *dropped)
{
    struct te_error err = {0};
    struct p11_ctx *ctx;
    char *logs;

    setenv("MOCK_P11_FAIL_SIGN_AFTER", "3", 1);
    setenv("MOCK_P11_FAIL_RV", rv, 1);
    ctx = mock_open(NULL, NULL, 0);
    log_capture_begin();
    for (unsigned i = 0; i < 5; i++) {
        if (sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, i, NULL, NULL, &err) != TE_OK)
            fail_msg("%s, signature %u: %s", rv, i, err.msg);
        if (i == 1) { /* nothing happened before the 3rd */
            assert_int_equal(mock_count("C_Sign"), 2);
            assert_int_equal(mock_count("C_Login"), 1);
        }
    }
    logs = log_capture_end();
    if (strstr(logs, rv) == NULL)
        fail_msg("no log line about %s: %s", rv, logs);
    *dropped = strstr(logs, "dropping sessions and key handles of token 'mock'") != NULL;
    free(logs);
    assert_int_equal(mock_count("C_Sign"), 6); /* the failed one was retried once */
    *logins = mock_count("C_Login");
    *finds = mock_count("C_FindObjectsInit");
    *opens = mock_count("C_OpenSession");
    p11_close(ctx);
    mock_env_clear();
}

static void test_recovery_device_removed(void **state)
{
    (void)state;
    unsigned long logins, finds, opens;
    bool dropped;

    /* the token "came back": dropped, enumerated, new session, new login, key looked up */
    run_fault("CKR_DEVICE_REMOVED", &logins, &finds, &opens, &dropped);
    assert_true(dropped);
    assert_int_equal(logins, 2);
    assert_int_equal(finds, 2);
    assert_int_equal(opens, 2);
    /* two enumerations, and the PIN counters once before the first login: the PIN that
     * worked logs in again without that check */
    assert_int_equal(mock_count("C_GetTokenInfo"), 3);
}

static void test_recovery_session_handle_invalid(void **state)
{
    (void)state;
    unsigned long logins, finds, opens;
    bool dropped;

    /* the mock closed the only session, which also ended the login: the token stays */
    run_fault("CKR_SESSION_HANDLE_INVALID", &logins, &finds, &opens, &dropped);
    assert_false(dropped);
    assert_int_equal(opens, 2);
    assert_int_equal(logins, 2);
    assert_int_equal(finds, 2);
}

static void test_recovery_user_not_logged_in(void **state)
{
    (void)state;
    unsigned long logins, finds, opens;
    bool dropped;

    run_fault("CKR_USER_NOT_LOGGED_IN", &logins, &finds, &opens, &dropped);
    assert_false(dropped);
    assert_int_equal(logins, 2);
    assert_int_equal(opens, 1);
}

static void test_recovery_key_handle_invalid(void **state)
{
    (void)state;
    unsigned long logins, finds, opens;
    bool dropped;

    run_fault("CKR_KEY_HANDLE_INVALID", &logins, &finds, &opens, &dropped);
    assert_false(dropped);
    assert_int_equal(finds, 2);
    assert_int_equal(logins, 1);
    assert_int_equal(opens, 1);
}

static void test_persistent_fault_is_reported_once_retried(void **state)
{
    (void)state;
    struct te_error err = {0};
    struct p11_ctx *ctx;

    setenv("MOCK_P11_FAIL_SIGN_AFTER", "1", 1);
    setenv("MOCK_P11_FAIL_TIMES", "2", 1);
    setenv("MOCK_P11_FAIL_RV", "CKR_DEVICE_REMOVED", 1);
    ctx = mock_open(NULL, NULL, 0);
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_NO_TOKEN);
    assert_true(err.has_ckr);
    assert_int_equal(err.ckr, CKR_DEVICE_REMOVED);
    assert_true(err.retryable);
    assert_non_null(strstr(err.msg, "the device was removed"));
    assert_int_equal(mock_count("C_Sign"), 2);
    /* the device is back: the next request works */
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 2, NULL, NULL, &err),
                     TE_OK);
    p11_close(ctx);
}

static void test_other_error_is_not_retried(void **state)
{
    (void)state;
    struct te_error err = {0};
    struct p11_ctx *ctx;
    struct p11_status st;

    setenv("MOCK_P11_FAIL_SIGN_AFTER", "1", 1);
    setenv("MOCK_P11_FAIL_RV", "CKR_GENERAL_ERROR", 1);
    ctx = mock_open(NULL, NULL, 0);
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_PKCS11);
    assert_int_equal(err.ckr, CKR_GENERAL_ERROR);
    assert_false(err.retryable);
    assert_non_null(strstr(err.msg, "token 'mock'"));
    assert_int_equal(mock_count("C_Sign"), 1);
    p11_get_status(ctx, &st);
    assert_int_equal(st.errors, 1);
    p11_close(ctx);
}

struct worker {
    struct p11_ctx *ctx;
    int failures;
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    struct te_error err = {0};

    for (unsigned i = 0; i < 3; i++)
        if (sign_with(w->ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, i, NULL, NULL, &err) !=
            TE_OK)
            w->failures++;
    return NULL;
}

static void run_workers(struct p11_ctx *ctx, int n)
{
    pthread_t t[8];
    struct worker w[8];

    for (int i = 0; i < n; i++) {
        w[i] = (struct worker){ctx, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
}

static void test_concurrent_slow_signing_uses_separate_sessions(void **state)
{
    (void)state;
    struct p11_ctx *ctx;

    setenv("MOCK_P11_SIGN_DELAY_MS", "100", 1);
    ctx = mock_open(NULL, NULL, 4);
    run_workers(ctx, 4);
    assert_int_equal(mock_count("C_Sign"), 12);
    assert_true(mock_count("max_concurrent_sign") >= 2); /* slow signatures overlapped */
    assert_int_equal(mock_count("session_conflicts"), 0); /* never two on one session */
    assert_true(mock_count("C_OpenSession") <= 4);
    assert_int_equal(mock_count("C_Login"), 1);
    p11_close(ctx);
}

static void test_pool_limit_makes_callers_wait(void **state)
{
    (void)state;
    struct p11_ctx *ctx;

    setenv("MOCK_P11_SIGN_DELAY_MS", "30", 1);
    ctx = mock_open(NULL, NULL, 2);
    run_workers(ctx, 6);
    assert_int_equal(mock_count("C_Sign"), 18);
    assert_true(mock_count("C_OpenSession") <= 2);
    assert_true(mock_count("max_concurrent_sign") <= 2);
    assert_int_equal(mock_count("session_conflicts"), 0);
    p11_close(ctx);
}

static void test_reload_finds_token_that_appears(void **state)
{
    (void)state;
    struct te_error err = {0};
    struct p11_status st;
    struct p11_ctx *ctx;

    setenv("MOCK_P11_NO_TOKEN", "1", 1);
    ctx = mock_open(NULL, NULL, 0);
    p11_get_status(ctx, &st);
    assert_false(st.token_present);
    /* the token appears; the module only shows it after C_Finalize + C_Initialize */
    unsetenv("MOCK_P11_NO_TOKEN");
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_OK);
    assert_int_equal(mock_count("C_Finalize"), 1);
    assert_int_equal(mock_count("C_Initialize"), 1);
    p11_get_status(ctx, &st);
    assert_int_equal(st.reloads, 1);
    assert_true(st.token_present);
    p11_close(ctx);
}

static void test_reload_is_rate_limited(void **state)
{
    (void)state;
    struct te_error err = {0};
    struct p11_status st;
    struct p11_ctx *ctx;

    setenv("MOCK_P11_NO_TOKEN", "1", 1);
    ctx = mock_open(NULL, NULL, 0);
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_NO_TOKEN);
    assert_non_null(strstr(err.msg, "may be disconnected"));
    assert_non_null(strstr(err.msg, MOCK_URI_EC));
    assert_true(err.retryable);
    assert_int_equal(mock_count("C_Initialize"), 1);
    /* a second miss within reload_interval_s does not reload again */
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_NO_TOKEN);
    assert_int_equal(mock_count("C_Initialize"), 1);
    p11_get_status(ctx, &st);
    assert_int_equal(st.reloads, 1);
    assert_int_equal(st.errors, 2);
    p11_close(ctx);
}

static void test_no_login_token_never_logs_in(void **state)
{
    (void)state;
    struct te_error err = {0};
    struct p11_ctx *ctx;

    setenv("MOCK_P11_NO_LOGIN", "1", 1);
    ctx = mock_open(NULL, NULL, 0);
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, NULL, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_OK);
    assert_int_equal(sign_with(ctx, MOCK_URI_EC, "any", SIG_ECDSA_SHA256, 2, NULL, NULL, &err),
                     TE_OK);
    assert_int_equal(mock_count("C_Login"), 0);
    p11_close(ctx);
}

static void test_always_authenticate_logs_in_per_signature(void **state)
{
    (void)state;
    struct te_error err = {0};
    struct p11_key_info info;
    struct p11_keyref ref = {MOCK_URI_EC, MOCK_PIN};
    uint8_t sig[P11_SIG_MAX];
    size_t sig_len = 0;
    struct p11_ctx *ctx;

    setenv("MOCK_P11_ALWAYS_AUTH", "1", 1);
    ctx = mock_open(NULL, NULL, 0);
    for (unsigned i = 0; i < 3; i++)
        if (sign_with(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, i, sig, &sig_len, &err) !=
            TE_OK)
            fail_msg("%s", err.msg);
    assert_int_equal(mock_count("login_context"), 3);
    assert_int_equal(mock_count("login_user"), 1);
    assert_verifies(ctx, MOCK_URI_EC, MOCK_PIN, SIG_ECDSA_SHA256, 2, sig, sig_len);
    assert_int_equal(p11_key_info(ctx, &ref, &info, &err), TE_OK);
    assert_true(info.always_authenticate);
    p11_close(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_hundred_signatures_one_login_one_find, setup),
        cmocka_unit_test_setup(test_every_scheme_verifies, setup),
        cmocka_unit_test_setup(test_digest_and_scheme_checks, setup),
        cmocka_unit_test_setup(test_recovery_device_removed, setup),
        cmocka_unit_test_setup(test_recovery_session_handle_invalid, setup),
        cmocka_unit_test_setup(test_recovery_user_not_logged_in, setup),
        cmocka_unit_test_setup(test_recovery_key_handle_invalid, setup),
        cmocka_unit_test_setup(test_persistent_fault_is_reported_once_retried, setup),
        cmocka_unit_test_setup(test_other_error_is_not_retried, setup),
        cmocka_unit_test_setup(test_concurrent_slow_signing_uses_separate_sessions, setup),
        cmocka_unit_test_setup(test_pool_limit_makes_callers_wait, setup),
        cmocka_unit_test_setup(test_reload_finds_token_that_appears, setup),
        cmocka_unit_test_setup(test_reload_is_rate_limited, setup),
        cmocka_unit_test_setup(test_no_login_token_never_logs_in, setup),
        cmocka_unit_test_setup(test_always_authenticate_logs_in_per_signature, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
