/* Unit tests for token and key selection in the PKCS#11 core against the mock module (and
 * p11-kit's trust module, a token without login): listing, key info, public keys with and
 * without public objects, the multiple-keys warning, scope merge, mechanism checks, open errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_p11_helpers.h"

#define TRUST_MODULE "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so"
#define SCHEMES_ECDSA \
    ((1u << SIG_ECDSA_SHA256) | (1u << SIG_ECDSA_SHA384) | (1u << SIG_ECDSA_SHA512))
#define SCHEMES_PSS \
    ((1u << SIG_RSA_PSS_SHA256) | (1u << SIG_RSA_PSS_SHA384) | (1u << SIG_RSA_PSS_SHA512))
#define SCHEMES_PKCS1 \
    ((1u << SIG_RSA_PKCS1_SHA256) | (1u << SIG_RSA_PKCS1_SHA384) | (1u << SIG_RSA_PKCS1_SHA512))

static int setup(void **state)
{
    (void)state;
    mock_module();
    mock_env_clear();
    return 0;
}

static void test_list_tokens(void **state)
{
    (void)state;
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);
    struct p11_token_info *t = NULL;
    struct te_error err = {0};
    size_t n = 0;

    assert_int_equal(p11_list_tokens(ctx, &t, &n, &err), TE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].slot_id, 7);
    assert_string_equal(t[0].label, "mock");
    assert_string_equal(t[0].serial, "MOCK0001");
    assert_string_equal(t[0].manufacturer, "tedge-hsm tests");
    assert_string_equal(t[0].model, "mock");
    assert_true(t[0].login_required);
    assert_false(t[0].pin_locked);
    assert_string_equal(t[0].uri, "pkcs11:model=mock;manufacturer=tedge-hsm%20tests;"
                                  "serial=MOCK0001;token=mock");
    free(t);
    assert_int_equal(mock_count("C_Login"), 0); /* listing needs no PIN */
    p11_close(ctx);
    setenv("MOCK_P11_NO_TOKEN", "1", 1);
    ctx = mock_open(NULL, NULL, 0);
    assert_int_equal(p11_list_tokens(ctx, &t, &n, &err), TE_OK);
    assert_int_equal(n, 0);
    free(t);
    p11_close(ctx);
}

static void test_list_keys_and_key_info(void **state)
{
    (void)state;
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);
    struct p11_keyref all = {"pkcs11:", MOCK_PIN}, none = {"pkcs11:object=nothing", MOCK_PIN};
    struct p11_keyref cert = {"pkcs11:object=mock-rsa;type=cert", MOCK_PIN};
    struct p11_key_info *k = NULL, info, again;
    struct te_error err = {0};
    size_t n = 0;

    assert_int_equal(p11_list_keys(ctx, &all, &k, &n, &err), TE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(k[0].type, P11_KEY_EC);
    assert_int_equal(k[0].bits, 256);
    assert_int_equal(k[0].curve, P11_CURVE_P256);
    assert_string_equal(k[0].label, "mock-ec");
    assert_int_equal(k[0].id_len, 1);
    assert_int_equal(k[0].id[0], 1);
    assert_string_equal(k[0].token_label, "mock");
    assert_int_equal(k[0].schemes, SCHEMES_ECDSA);
    assert_int_equal(k[1].type, P11_KEY_RSA);
    assert_int_equal(k[1].bits, 2048);
    assert_int_equal(k[1].curve, P11_CURVE_NONE);
    assert_int_equal(k[1].schemes, SCHEMES_PKCS1 | SCHEMES_PSS);
    free(k);
    assert_int_equal(p11_list_keys(ctx, &none, &k, &n, &err), TE_OK);
    assert_int_equal(n, 0);
    free(k);
    /* a URI copied from a certificate selects the private key with that label */
    assert_int_equal(p11_key_info(ctx, &cert, &info, &err), TE_OK);
    assert_int_equal(info.type, P11_KEY_RSA);
    assert_string_equal(info.uri, "pkcs11:model=mock;manufacturer=tedge-hsm%20tests;"
                                  "serial=MOCK0001;token=mock;id=%02;object=mock-rsa;type=private");
    /* the URI key info gives selects exactly that key */
    struct p11_keyref exact = {info.uri, MOCK_PIN};
    assert_int_equal(p11_key_info(ctx, &exact, &again, &err), TE_OK);
    assert_memory_equal(&again, &info, sizeof(info));
    p11_close(ctx);
}

static void test_no_key_names_the_uri(void **state)
{
    (void)state;
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);
    struct p11_keyref ref = {"pkcs11:token=mock;object=missing?pin-value=" MOCK_PIN, NULL};
    struct p11_key_info info;
    struct te_error err = {0};

    assert_int_equal(p11_key_info(ctx, &ref, &info, &err), TE_ERR_NO_KEY);
    assert_non_null(strstr(err.msg, "'pkcs11:token=mock;object=missing'"));
    assert_null(strstr(err.msg, "pin-value"));
    assert_null(strstr(err.msg, MOCK_PIN));
    assert_false(err.retryable);
    assert_int_equal(mock_count("C_Initialize"), 1); /* reloaded once to look again */
    p11_close(ctx);
}

static void test_multiple_keys_warning_and_first_key(void **state)
{
    (void)state;
    struct p11_keyref ref = {"pkcs11:object=mock-ec", MOCK_PIN};
    struct p11_keyref by_id = {"pkcs11:object=mock-ec;id=%03", MOCK_PIN};
    struct p11_key_info info;
    struct te_error err = {0};
    struct p11_ctx *ctx;
    char *logs;

    setenv("MOCK_P11_DUP_LABEL", "1", 1);
    ctx = mock_open(NULL, NULL, 0);
    log_capture_begin();
    assert_int_equal(p11_key_info(ctx, &ref, &info, &err), TE_OK);
    logs = log_capture_end();
    /* upstream's exact words, at warning level, ending the line */
    assert_non_null(strstr(logs, "WARN tedge: Multiple keys were found. If the wrong one was "
                                 "chosen, please use a URI that uniquely identifies a key.\n"));
    free(logs);
    assert_int_equal(info.id[0], 1); /* the first one */
    log_capture_begin();
    assert_int_equal(p11_key_info(ctx, &by_id, &info, &err), TE_OK);
    logs = log_capture_end();
    assert_null(strstr(logs, "Multiple keys"));
    free(logs);
    assert_int_equal(info.id[0], 3);
    p11_close(ctx);
}

/* The SPKI of a key, parsed back; compared across mock configurations. */
static void public_key_der(struct p11_ctx *ctx, const char *uri, uint8_t **der, size_t *len)
{
    struct p11_keyref ref = {uri, MOCK_PIN};
    struct te_error err = {0};
    mbedtls_pk_context pk;

    if (p11_public_key(ctx, &ref, der, len, &err) != TE_OK)
        fail_msg("%s: %s", uri, err.msg);
    mbedtls_pk_init(&pk);
    assert_int_equal(mbedtls_pk_parse_public_key(&pk, *der, *len), 0);
    mbedtls_pk_free(&pk);
}

static void test_public_key_with_and_without_public_objects(void **state)
{
    (void)state;
    uint8_t *ec1, *ec2, *rsa1, *rsa2;
    size_t ec1_len, ec2_len, rsa1_len, rsa2_len;
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);

    public_key_der(ctx, MOCK_URI_EC, &ec1, &ec1_len);
    public_key_der(ctx, MOCK_URI_RSA, &rsa1, &rsa1_len);
    assert_int_equal(ec1_len, 91);
    assert_int_equal(rsa1_len, 294);
    p11_close(ctx);
    /* a token that keeps no public objects: CKA_EC_POINT / modulus of the private key */
    setenv("MOCK_P11_NO_PUBLIC", "1", 1);
    ctx = mock_open(NULL, NULL, 0);
    public_key_der(ctx, MOCK_URI_EC, &ec2, &ec2_len);
    public_key_der(ctx, MOCK_URI_RSA, &rsa2, &rsa2_len);
    assert_int_equal(ec2_len, ec1_len);
    assert_memory_equal(ec2, ec1, ec1_len);
    assert_int_equal(rsa2_len, rsa1_len);
    assert_memory_equal(rsa2, rsa1, rsa1_len);
    free(ec1);
    free(ec2);
    free(rsa1);
    free(rsa2);
    p11_close(ctx);
}

static void test_allowed_mechanisms_limit_schemes(void **state)
{
    (void)state;
    struct p11_keyref ref = {MOCK_URI_RSA, MOCK_PIN};
    struct p11_key_info info;
    struct te_error err = {0};
    struct p11_ctx *ctx;

    setenv("MOCK_P11_RSA_ALLOWED", "CKM_RSA_PKCS", 1);
    ctx = mock_open(NULL, NULL, 0);
    assert_int_equal(p11_key_info(ctx, &ref, &info, &err), TE_OK);
    assert_int_equal(info.schemes, SCHEMES_PKCS1);
    assert_int_equal(sign_with(ctx, MOCK_URI_RSA, MOCK_PIN, SIG_RSA_PSS_SHA256, 1, NULL, NULL,
                               &err), TE_ERR_MECHANISM);
    assert_non_null(strstr(err.msg, "CKA_ALLOWED_MECHANISMS"));
    assert_int_equal(mock_count("C_SignInit"), 0);
    assert_int_equal(sign_with(ctx, MOCK_URI_RSA, MOCK_PIN, SIG_RSA_PKCS1_SHA384, 1, NULL, NULL,
                               &err), TE_OK);
    p11_close(ctx);
}

static void test_token_mechanism_list_limits_schemes(void **state)
{
    (void)state;
    struct p11_keyref ref = {MOCK_URI_RSA, MOCK_PIN};
    struct p11_key_info info;
    struct te_error err = {0};
    struct p11_ctx *ctx;

    setenv("MOCK_P11_NO_PSS", "1", 1);
    ctx = mock_open(NULL, NULL, 0);
    assert_int_equal(p11_key_info(ctx, &ref, &info, &err), TE_OK);
    assert_int_equal(info.schemes, SCHEMES_PKCS1);
    assert_int_equal(sign_with(ctx, MOCK_URI_RSA, MOCK_PIN, SIG_RSA_PSS_SHA512, 1, NULL, NULL,
                               &err), TE_ERR_MECHANISM);
    assert_non_null(strstr(err.msg, "does not offer CKM_RSA_PKCS_PSS"));
    p11_close(ctx);
}

static void test_scope_wins_over_request(void **state)
{
    (void)state;
    struct p11_keyref other = {"pkcs11:token=other;object=mock-ec", MOCK_PIN};
    struct p11_keyref ec = {"pkcs11:object=mock-ec", MOCK_PIN};
    struct p11_key_info info;
    struct te_error err = {0};
    struct p11_ctx *ctx;

    ctx = mock_open("pkcs11:token=mock", NULL, 0);
    assert_int_equal(p11_key_info(ctx, &other, &info, &err), TE_OK); /* scope's token wins */
    p11_close(ctx);
    ctx = mock_open("pkcs11:token=elsewhere", NULL, 0);
    assert_int_equal(p11_key_info(ctx, &ec, &info, &err), TE_ERR_NO_TOKEN);
    assert_non_null(strstr(err.msg, "token=elsewhere"));
    p11_close(ctx);
    ctx = mock_open("pkcs11:object=mock-rsa", NULL, 0);
    assert_int_equal(p11_key_info(ctx, &ec, &info, &err), TE_OK);
    assert_int_equal(info.type, P11_KEY_RSA); /* scope's object wins */
    p11_close(ctx);
}

static void test_slot_and_module_attributes(void **state)
{
    (void)state;
    static const char *const found[] = {
        "pkcs11:slot-id=7;object=mock-ec",
        "pkcs11:slot-description=mock%20slot;object=mock-ec",
        "pkcs11:slot-manufacturer=tedge-hsm%20tests;object=mock-ec",
        "pkcs11:library-manufacturer=tedge-hsm%20tests;object=mock-ec",
        "pkcs11:library-description=tedge-hsm%20mock%20module;library-version=1.0;object=mock-ec",
        "pkcs11:serial=MOCK0001;model=mock;manufacturer=tedge-hsm%20tests;object=mock-ec",
    };
    static const char *const not_found[] = {
        "pkcs11:slot-id=8;object=mock-ec",
        "pkcs11:slot-description=other;object=mock-ec",
        "pkcs11:library-manufacturer=other;object=mock-ec",
        "pkcs11:library-version=2.0;object=mock-ec",
        "pkcs11:serial=MOCK0002;object=mock-ec",
    };
    struct p11_ctx *ctx = mock_open(NULL, NULL, 0);
    struct p11_key_info info;
    struct te_error err = {0};

    for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++) {
        struct p11_keyref ref = {found[i], MOCK_PIN};
        if (p11_key_info(ctx, &ref, &info, &err) != TE_OK)
            fail_msg("%s: %s", found[i], err.msg);
    }
    for (size_t i = 0; i < sizeof(not_found) / sizeof(not_found[0]); i++) {
        struct p11_keyref ref = {not_found[i], MOCK_PIN};
        assert_int_equal(p11_key_info(ctx, &ref, &info, &err), TE_ERR_NO_TOKEN);
    }
    p11_close(ctx);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct p11_config cfg = {"/nonexistent/module.so", NULL, NULL, 0, 0};
    struct te_error err = {0};
    struct p11_ctx *ctx = NULL;

    assert_int_equal(p11_open(&cfg, &ctx, &err), TE_ERR_CONFIG);
    assert_null(ctx);
    assert_non_null(strstr(err.msg, "/nonexistent/module.so"));
    cfg.module_path = "";
    assert_int_equal(p11_open(&cfg, &ctx, &err), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "device.cryptoki.module_path"));
    cfg.module_path = mock_module();
    cfg.scope_uri = "pkcs11:token=a;bogus=1";
    assert_int_equal(p11_open(&cfg, &ctx, &err), TE_ERR_URI);
    assert_non_null(strstr(err.msg, "'bogus=1'"));
    p11_close(NULL);
}

static void test_trust_module_token_without_login(void **state)
{
    (void)state;
    struct p11_config cfg = {TRUST_MODULE, NULL, NULL, 0, 0};
    struct p11_keyref ref = {"pkcs11:", NULL};
    struct p11_token_info *t = NULL;
    struct p11_key_info *k = NULL;
    struct te_error err = {0};
    struct p11_ctx *ctx = NULL;
    struct p11_status st;
    size_t n = 0;

    if (p11_open(&cfg, &ctx, &err) != TE_OK)
        fail_msg("p11-kit-trust.so (package p11-kit-modules) did not load: %s", err.msg);
    assert_int_equal(p11_list_tokens(ctx, &t, &n, &err), TE_OK);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++)
        assert_false(t[i].login_required);
    free(t);
    /* its objects are certificates: keys are listed without a PIN or a login, and none match */
    assert_int_equal(p11_list_keys(ctx, &ref, &k, &n, &err), TE_OK);
    assert_int_equal(n, 0);
    free(k);
    assert_int_equal(sign_with(ctx, "pkcs11:", NULL, SIG_ECDSA_SHA256, 1, NULL, NULL, &err),
                     TE_ERR_NO_KEY);
    p11_get_status(ctx, &st);
    assert_true(st.token_present);
    assert_int_equal(st.logins, 0);
    p11_close(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_list_tokens, setup),
        cmocka_unit_test_setup(test_list_keys_and_key_info, setup),
        cmocka_unit_test_setup(test_no_key_names_the_uri, setup),
        cmocka_unit_test_setup(test_multiple_keys_warning_and_first_key, setup),
        cmocka_unit_test_setup(test_public_key_with_and_without_public_objects, setup),
        cmocka_unit_test_setup(test_allowed_mechanisms_limit_schemes, setup),
        cmocka_unit_test_setup(test_token_mechanism_list_limits_schemes, setup),
        cmocka_unit_test_setup(test_scope_wins_over_request, setup),
        cmocka_unit_test_setup(test_slot_and_module_attributes, setup),
        cmocka_unit_test_setup(test_open_errors, setup),
        cmocka_unit_test_setup(test_trust_module_token_without_login, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
