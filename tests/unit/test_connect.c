/* Unit tests for the pure parts of `tedge connect`: the JWT issuer (untrusted input), the tenant
 * host comparison, the cryptoki summary line (no PIN), and the target of a cloud profile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tedge-cli/commands/connect_internal.h"

#define HDR "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"
/* {"iss":"t123.example.com","ten":"t123","sub":"device_dev1"} */
#define PAYLOAD_ISS "eyJpc3MiOiJ0MTIzLmV4YW1wbGUuY29tIiwidGVuIjoidDEyMyIsInN1YiI6ImRldmljZV9kZXYxIn0"
/* {"ten":"t123"} */
#define PAYLOAD_NO_ISS "eyJ0ZW4iOiJ0MTIzIn0"
/* {"iss":"a~b?"}: base64url alphabet ('_') */
#define PAYLOAD_URLSAFE "eyJpc3MiOiJhfmI_In0"

static void test_jwt_issuer_valid(void **state)
{
    char iss[128];
    struct te_error err = {0};
    (void)state;

    assert_int_equal(connect_jwt_issuer(HDR "." PAYLOAD_ISS ".c2ln", iss, sizeof(iss), &err),
                     TE_OK);
    assert_string_equal(iss, "t123.example.com");
    assert_int_equal(connect_jwt_issuer(HDR "." PAYLOAD_URLSAFE ".x", iss, sizeof(iss), &err),
                     TE_OK);
    assert_string_equal(iss, "a~b?");
}

static void test_jwt_issuer_invalid(void **state)
{
    char iss[128], big[20000];
    struct te_error err = {0};
    (void)state;

    assert_int_equal(connect_jwt_issuer("no-dots-here", iss, sizeof(iss), &err), TE_ERR_MALFORMED);
    assert_non_null(strstr(err.msg, "JWT token format must be <header>.<payload>.<signature>."));
    assert_non_null(strstr(err.msg, "The JWT token received from Cumulocity is invalid."));

    assert_int_equal(connect_jwt_issuer("aaa.b$b.ccc", iss, sizeof(iss), &err), TE_ERR_MALFORMED);
    assert_non_null(strstr(err.msg, "Cannot decode the payload of JWT token by Base64"));
    /* padding is not base64url */
    assert_int_equal(connect_jwt_issuer("aaa.eyJ0ZW4iOiJ0MTIzIn0=.c", iss, sizeof(iss), &err),
                     TE_ERR_MALFORMED);
    assert_int_equal(connect_jwt_issuer("aaa..c", iss, sizeof(iss), &err), TE_ERR_MALFORMED);
    assert_int_equal(connect_jwt_issuer("aaa.a.c", iss, sizeof(iss), &err), TE_ERR_MALFORMED);

    /* "not json at all!" */
    assert_int_equal(connect_jwt_issuer("a.bm90IGpzb24gYXQgYWxsIQ.c", iss, sizeof(iss), &err),
                     TE_ERR_MALFORMED);
    assert_non_null(strstr(err.msg, "The payload of JWT token is not JSON."));

    assert_int_equal(connect_jwt_issuer("a." PAYLOAD_NO_ISS ".c", iss, sizeof(iss), &err),
                     TE_ERR_MALFORMED);
    assert_non_null(strstr(err.msg, "doesn't contain 'iss' field"));

    /* the issuer does not fit the caller's buffer */
    assert_int_equal(connect_jwt_issuer(HDR "." PAYLOAD_ISS ".c", iss, 8, &err),
                     TE_ERR_MALFORMED);

    /* a huge token is refused and not quoted in full */
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(connect_jwt_issuer(big, iss, sizeof(iss), &err), TE_ERR_MALFORMED);
    assert_true(strlen(err.msg) < 400);
}

static void test_host_matches(void **state)
{
    (void)state;
    assert_true(connect_host_matches("t123.example.com", "t123.example.com"));
    assert_true(connect_host_matches("T123.Example.com", "t123.example.com"));
    assert_true(connect_host_matches("https://t123.example.com/x", "t123.example.com:8883"));
    assert_true(connect_host_matches("t123.example.com", "[t123.example.com]:1883"));
    assert_false(connect_host_matches("t124.example.com", "t123.example.com"));
    assert_false(connect_host_matches("t123.example.com", NULL));
    assert_false(connect_host_matches("t123.example.com", ""));
    assert_false(connect_host_matches("", "t123.example.com"));
}

static void test_cryptoki_status_redacts_pin(void **state)
{
    char out[512];
    (void)state;

    connect_cryptoki_status(CFG_CRYPTOKI_OFF, "pkcs11:token=t", out, sizeof(out));
    assert_string_equal(out, "off");
    connect_cryptoki_status(CFG_CRYPTOKI_MODULE, NULL, out, sizeof(out));
    assert_string_equal(out, "module");
    connect_cryptoki_status(CFG_CRYPTOKI_SOCKET, "pkcs11:token=tedge;object=tedge", out,
                            sizeof(out));
    assert_string_equal(out, "socket (key: pkcs11:token=tedge;object=tedge)");
    connect_cryptoki_status(CFG_CRYPTOKI_SOCKET, "pkcs11:token=tedge;object=k?pin-value=9876",
                            out, sizeof(out));
    assert_null(strstr(out, "9876"));
    assert_non_null(strstr(out, "socket (key: pkcs11:token=tedge;object=k"));
}

static void test_target_of_profiles(void **state)
{
    struct connect_target t;
    struct te_error err = {0};
    char key[128];
    (void)state;

    assert_int_equal(connect_target_init(&t, "/etc/tedge", NULL, &err), TE_OK);
    assert_string_equal(t.mapper_service, "tedge-mapper-c8y");
    assert_string_equal(t.marker_path, "/etc/tedge/mosquitto-conf/c8y-bridge.conf");
    assert_string_equal(t.disconnect_cmd, "tedge disconnect c8y");
    connect_cloud_key(&t, "url", key, sizeof(key));
    assert_string_equal(key, "c8y.url");

    assert_int_equal(connect_target_init(&t, "/d", "second", &err), TE_OK);
    assert_string_equal(t.mapper_service, "tedge-mapper-c8y@second");
    assert_string_equal(t.marker_path, "/d/mosquitto-conf/c8y@second-bridge.conf");
    assert_string_equal(t.disconnect_cmd, "tedge disconnect c8y --profile second");
    connect_cloud_key(&t, "bridge.topic_prefix", key, sizeof(key));
    assert_string_equal(key, "c8y.profiles.second.bridge.topic_prefix");

    assert_int_equal(connect_target_init(&t, "/d", "../etc", &err), TE_ERR_INVALID);
    assert_int_equal(connect_target_init(&t, "/d", "a b", &err), TE_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_issuer_valid),
        cmocka_unit_test(test_jwt_issuer_invalid),
        cmocka_unit_test(test_host_matches),
        cmocka_unit_test(test_cryptoki_status_redacts_pin),
        cmocka_unit_test(test_target_of_profiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
