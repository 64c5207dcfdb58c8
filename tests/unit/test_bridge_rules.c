/* Unit tests for tedge-cli/bridge/bridge_rules: topic filter matching, every upstream and
 * downstream rule in both directions, the subscriptions built from them, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tedge-cli/bridge/bridge_rules.h"

static void test_filter_matching(void **state)
{
    (void)state;
    assert_true(bridge_topic_matches("s/us", "s/us"));
    assert_false(bridge_topic_matches("s/us", "s/us/child"));
    assert_false(bridge_topic_matches("s/us", "s/u"));
    assert_false(bridge_topic_matches("s/us", "s/uss"));
    assert_true(bridge_topic_matches("s/us/#", "s/us"));        /* '#' covers the parent level */
    assert_true(bridge_topic_matches("s/us/#", "s/us/child1"));
    assert_true(bridge_topic_matches("s/us/#", "s/us/a/b/c"));
    assert_false(bridge_topic_matches("s/us/#", "s/usx"));
    assert_false(bridge_topic_matches("s/us/#", "t/us/x"));
    assert_true(bridge_topic_matches("a/+/c", "a/b/c"));
    assert_true(bridge_topic_matches("a/+/c", "a//c"));         /* an empty level is a level */
    assert_false(bridge_topic_matches("a/+/c", "a/b/d"));
    assert_false(bridge_topic_matches("a/+", "a/b/c"));
    assert_true(bridge_topic_matches("#", "anything/at/all"));
    assert_false(bridge_topic_matches("#", "$SYS/broker"));       /* '$' topics are internal */
    assert_false(bridge_topic_matches("a/#/c", "a/b/c"));         /* '#' only at the end */
    assert_false(bridge_topic_matches(NULL, "a"));
}

/* Every local -> cloud rule of upstream, with the exact cloud topic each message goes to. */
static void test_every_upstream_rule(void **state)
{
    static const char *const cases[][2] = {
        {"c8y/s/us", "s/us"},
        {"c8y/s/us/child01", "s/us/child01"},
        {"c8y/t/us/child01", "t/us/child01"},
        {"c8y/q/us/x", "q/us/x"},
        {"c8y/c/us/x", "c/us/x"},
        {"c8y/s/uc/tmpl", "s/uc/tmpl"},
        {"c8y/t/uc/tmpl", "t/uc/tmpl"},
        {"c8y/q/uc/tmpl", "q/uc/tmpl"},
        {"c8y/c/uc/tmpl", "c/uc/tmpl"},
        {"c8y/s/ut/tmpl", "s/ut/tmpl"},
        {"c8y/s/uat", "s/uat"},
        {"c8y/inventory/managedObjects/update/123", "inventory/managedObjects/update/123"},
        {"c8y/measurement/measurements/create", "measurement/measurements/create"},
        {"c8y/measurement/measurements/create/child", "measurement/measurements/create/child"},
        {"c8y/measurement/measurements/createBulk", "measurement/measurements/createBulk"},
        {"c8y/event/events/create", "event/events/create"},
        {"c8y/event/events/createBulk", "event/events/createBulk"},
        {"c8y/alarm/alarms/create", "alarm/alarms/create"},
        {"c8y/alarm/alarms/createBulk", "alarm/alarms/createBulk"},
    };
    struct bridge_rules r;
    char *out = NULL;

    (void)state;
    assert_int_equal(bridge_rules_init(&r, "c8y", NULL), TE_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(bridge_rules_to_cloud(&r, cases[i][0], &out), TE_OK);
        assert_string_equal(out, cases[i][1]);
        free(out);
    }
    bridge_rules_free(&r);
}

static void test_not_forwarded_up(void **state)
{
    static const char *const refused[] = {
        "c8y/s/ds",                      /* a downstream topic */
        "c8y/s/uatx",                    /* s/uat has no sub-levels */
        "c8y/s/uat/x",
        "c8y/measurement/measurements",  /* a parent of a rule */
        "c8y/something/else",
        "te/device/main///m/",           /* outside the prefix */
        "c8yx/s/us",                     /* a longer first level */
        "c8y",
        "c8y/",
        "s/us",
    };
    struct bridge_rules r;
    char *out = (char *)"unchanged";

    (void)state;
    assert_int_equal(bridge_rules_init(&r, "c8y", NULL), TE_OK);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(bridge_rules_to_cloud(&r, refused[i], &out), TE_ERR_NOT_FOUND);
        assert_null(out);
    }
    /* a topic name with wildcards is not a topic */
    assert_int_equal(bridge_rules_to_cloud(&r, "c8y/s/us/+", &out), TE_ERR_INVALID);
    assert_int_equal(bridge_rules_to_cloud(&r, "c8y/s/us/#", &out), TE_ERR_INVALID);
    assert_int_equal(bridge_rules_to_cloud(&r, "", &out), TE_ERR_INVALID);
    bridge_rules_free(&r);
}

static void test_every_downstream_rule(void **state)
{
    static const char *const cases[][2] = {
        {"s/dt", "c8y/s/dt"},
        {"s/ds", "c8y/s/ds"},
        {"s/dat", "c8y/s/dat"},
        {"s/e", "c8y/s/e"},
        {"devicecontrol/notifications", "c8y/devicecontrol/notifications"},
        {"error", "c8y/error"},
        {"s/dc/my-template", "c8y/s/dc/my-template"},
    };
    struct bridge_rules r;
    char *out = NULL;

    (void)state;
    assert_int_equal(bridge_rules_init(&r, "c8y", NULL), TE_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(bridge_rules_to_local(&r, cases[i][0], &out), TE_OK);
        assert_string_equal(out, cases[i][1]);
        free(out);
    }
    assert_int_equal(bridge_rules_to_local(&r, "s/us", &out), TE_ERR_NOT_FOUND);
    assert_int_equal(bridge_rules_to_local(&r, "s/ds/child", &out), TE_ERR_NOT_FOUND);
    assert_int_equal(bridge_rules_to_local(&r, "errors", &out), TE_ERR_NOT_FOUND);
    assert_null(out);
    bridge_rules_free(&r);
}

static bool has(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static void test_subscriptions_use_the_prefix_and_skip_covered(void **state)
{
    struct bridge_rules r;

    (void)state;
    assert_int_equal(bridge_rules_init(&r, "c8y-eu", NULL), TE_OK);
    assert_true(has(r.local_filters, r.n_local, "c8y-eu/s/us/#"));
    assert_false(has(r.local_filters, r.n_local, "c8y-eu/s/us")); /* covered by s/us/# */
    assert_true(has(r.local_filters, r.n_local, "c8y-eu/s/uat"));
    assert_true(has(r.local_filters, r.n_local, "c8y-eu/alarm/alarms/createBulk/#"));
    /* all upstream rules but the covered one */
    assert_int_equal(r.n_local, 17);
    assert_int_equal(r.n_cloud, 7);
    for (size_t i = 0; i < r.n_local; i++)
        assert_int_equal(strncmp(r.local_filters[i], "c8y-eu/", 7), 0);
    bridge_rules_free(&r);
}

static void test_custom_prefix_maps_both_ways(void **state)
{
    struct bridge_rules r;
    char *out = NULL;

    (void)state;
    assert_int_equal(bridge_rules_init(&r, "c8y-eu", NULL), TE_OK);
    assert_int_equal(bridge_rules_to_cloud(&r, "c8y-eu/s/us", &out), TE_OK);
    assert_string_equal(out, "s/us");
    free(out);
    assert_int_equal(bridge_rules_to_cloud(&r, "c8y/s/us", &out), TE_ERR_NOT_FOUND);
    assert_int_equal(bridge_rules_to_local(&r, "s/ds", &out), TE_OK);
    assert_string_equal(out, "c8y-eu/s/ds");
    free(out);
    bridge_rules_free(&r);
}

static void test_bad_prefixes_are_refused(void **state)
{
    struct bridge_rules r;
    struct te_error err = {0};

    (void)state;
    assert_int_equal(bridge_rules_init(&r, "", &err), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "c8y.bridge.topic_prefix"));
    assert_int_equal(bridge_rules_init(&r, "c8y/x", NULL), TE_ERR_CONFIG);
    assert_int_equal(bridge_rules_init(&r, "c8y+", NULL), TE_ERR_CONFIG);
    assert_int_equal(bridge_rules_init(&r, "#", NULL), TE_ERR_CONFIG);
    assert_int_equal(bridge_rules_init(&r, NULL, NULL), TE_ERR_CONFIG);
}

static void test_topic_length_limits(void **state)
{
    struct bridge_rules r;
    char *topic = malloc(BRIDGE_TOPIC_MAX + 2), *out = NULL;

    (void)state;
    assert_non_null(topic);
    assert_int_equal(bridge_rules_init(&r, "c8y", NULL), TE_OK);
    /* s/dc/<long>: at MQTT's limit it is valid from the cloud, but the prefix would push it over */
    memset(topic, 'x', BRIDGE_TOPIC_MAX);
    memcpy(topic, "s/dc/", 5);
    topic[BRIDGE_TOPIC_MAX] = '\0';
    assert_int_equal(bridge_rules_to_local(&r, topic, &out), TE_ERR_INVALID);
    topic[BRIDGE_TOPIC_MAX - 4] = '\0';
    assert_int_equal(bridge_rules_to_local(&r, topic, &out), TE_OK);
    assert_int_equal(strlen(out), BRIDGE_TOPIC_MAX);
    free(out);
    /* longer than MQTT allows */
    memset(topic, 'y', BRIDGE_TOPIC_MAX + 1);
    memcpy(topic, "c8y/s/us/", 9);
    topic[BRIDGE_TOPIC_MAX + 1] = '\0';
    assert_int_equal(bridge_rules_to_cloud(&r, topic, &out), TE_ERR_INVALID);
    bridge_rules_free(&r);
    free(topic);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_matching),
        cmocka_unit_test(test_every_upstream_rule),
        cmocka_unit_test(test_not_forwarded_up),
        cmocka_unit_test(test_every_downstream_rule),
        cmocka_unit_test(test_subscriptions_use_the_prefix_and_skip_covered),
        cmocka_unit_test(test_custom_prefix_maps_both_ways),
        cmocka_unit_test(test_bad_prefixes_are_refused),
        cmocka_unit_test(test_topic_length_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
