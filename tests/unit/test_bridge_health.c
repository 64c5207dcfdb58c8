/* Unit tests for tedge-cli/bridge/bridge_health: service name, health topic, local client id
 * (with and without a profile), the SmartREST 102 lines and their CSV quoting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tedge-cli/bridge/bridge_health.h"

static void test_default_names(void **state)
{
    struct bridge_health h;

    (void)state;
    assert_int_equal(bridge_health_init(&h, "c8y", NULL, "device-01", NULL), TE_OK);
    assert_string_equal(h.service, "tedge-mapper-bridge-c8y");
    assert_string_equal(h.topic, "te/device/main/service/tedge-mapper-bridge-c8y/status/health");
    assert_string_equal(h.local_client_id, "tedge-mapper-bridge-c8y");
    assert_string_equal(h.smartrest_up,
                        "102,device-01:device:main:service:tedge-mapper-bridge-c8y,service,"
                        "tedge-mapper-bridge-c8y,up");
    assert_string_equal(h.smartrest_down,
                        "102,device-01:device:main:service:tedge-mapper-bridge-c8y,service,"
                        "tedge-mapper-bridge-c8y,down");
    assert_string_equal(BRIDGE_HEALTH_UP, "{\"status\":\"up\"}");
    assert_string_equal(BRIDGE_HEALTH_DOWN, "{\"status\":\"down\"}");
}

static void test_profile_and_prefix(void **state)
{
    struct bridge_health h;

    (void)state;
    assert_int_equal(bridge_health_init(&h, "c8y-eu", "eu", "dev", NULL), TE_OK);
    assert_string_equal(h.service, "tedge-mapper-bridge-c8y-eu");
    assert_string_equal(h.topic, "te/device/main/service/tedge-mapper-bridge-c8y-eu/status/health");
    assert_string_equal(h.local_client_id, "tedge-mapper-bridge-c8y@eu");
    assert_int_equal(bridge_health_init(&h, "c8y", "", "dev", NULL), TE_OK);
    assert_string_equal(h.local_client_id, "tedge-mapper-bridge-c8y");
}

static void test_csv_quoting(void **state)
{
    struct bridge_health h;
    char out[32] = "";

    (void)state;
    assert_true(bridge_csv_field(out, sizeof(out), "plain"));
    assert_string_equal(out, "plain");
    out[0] = '\0';
    assert_true(bridge_csv_field(out, sizeof(out), "a,b"));
    assert_string_equal(out, "\"a,b\"");
    out[0] = '\0';
    assert_true(bridge_csv_field(out, sizeof(out), "say \"hi\""));
    assert_string_equal(out, "\"say \"\"hi\"\"\"");
    /* too small: refused, nothing half-written past the terminator */
    char tiny[6] = "";
    assert_false(bridge_csv_field(tiny, sizeof(tiny), "abcdef"));
    assert_true(bridge_csv_field(tiny, sizeof(tiny), "abcde"));
    assert_string_equal(tiny, "abcde");
    /* a device id with a comma stays one field */
    assert_int_equal(bridge_health_init(&h, "c8y", NULL, "dev,1", NULL), TE_OK);
    assert_string_equal(h.smartrest_up,
                        "102,\"dev,1:device:main:service:tedge-mapper-bridge-c8y\",service,"
                        "tedge-mapper-bridge-c8y,up");
}

static void test_refusals(void **state)
{
    struct bridge_health h;
    struct te_error err = {0};
    char long_id[BRIDGE_NAME_MAX + 10];

    (void)state;
    assert_int_equal(bridge_health_init(&h, "c8y", NULL, "", NULL), TE_ERR_INVALID);
    assert_int_equal(bridge_health_init(&h, "", NULL, "dev", NULL), TE_ERR_INVALID);
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(bridge_health_init(&h, "c8y", NULL, long_id, &err), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "too long"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_names),
        cmocka_unit_test(test_profile_and_prefix),
        cmocka_unit_test(test_csv_quoting),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
