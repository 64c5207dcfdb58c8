/* The Cumulocity topic rules (see bridge_rules.h): upstream's lists, the subscriptions made
 * from them, topic-filter matching, and the mapping of a message's topic in either direction. */
#include "tedge-cli/bridge/bridge_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upstream thin-edge.io's built-in bridge (tedge_mapper c8y, certificate authentication):
 * local "<prefix>/<filter>" -> cloud "<filter>". "s/us" is listed by upstream next to "s/us/#";
 * the "/#" filter matches the parent level too, so one subscription covers both. */
const char *const bridge_rules_upstream[] = {
    "s/ut/#",                                   /* templates */
    "s/us", "s/us/#", "t/us/#", "q/us/#", "c/us/#", /* static templates (SmartREST 2.0) */
    "s/uc/#", "t/uc/#", "q/uc/#", "c/uc/#",     /* custom templates (SmartREST 2.0) */
    "inventory/managedObjects/update/#",        /* JSON via MQTT */
    "measurement/measurements/create/#",
    "measurement/measurements/createBulk/#",
    "event/events/create/#",
    "event/events/createBulk/#",
    "alarm/alarms/create/#",
    "alarm/alarms/createBulk/#",
    "s/uat",                                    /* JWT request */
    NULL,
};

/* cloud "<filter>" -> local "<prefix>/<filter>". Upstream subscribes "s/dc/<template>" for each
 * c8y.smartrest.templates entry; that key is not modelled here, so every custom template's
 * downstream topic comes down (upstream's former mosquitto bridge did the same with s/dc/#). */
const char *const bridge_rules_downstream[] = {
    "s/dt", "s/ds", "s/dat", "s/e", "devicecontrol/notifications", "error", "s/dc/#", NULL,
};

bool bridge_topic_matches(const char *filter, const char *topic)
{
    const char *f = filter, *t = topic;

    if (filter == NULL || topic == NULL)
        return false;
    /* A '$' topic (broker internals) never matches a filter that starts with a wildcard. */
    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return false;
    for (;;) {
        size_t fl = strcspn(f, "/"), tl = strcspn(t, "/");
        if (fl == 1 && f[0] == '#')
            return f[1] == '\0'; /* '#' is only valid as the last level */
        if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0))
            return false;
        f += fl;
        t += tl;
        if (*f == '\0' || *t == '\0') {
            /* "a/#" also matches "a": the filter may end in "/#" where the topic ends */
            if (*f == '\0')
                return *t == '\0';
            return strcmp(f, "/#") == 0;
        }
        f++;
        t++;
    }
}

static bool prefix_valid(const char *prefix)
{
    size_t n = strlen(prefix);
    return n > 0 && n <= BRIDGE_PREFIX_MAX && strpbrk(prefix, "/+#") == NULL;
}

/* Whether filter is covered by its "<filter>/#" sibling in the same list. */
static bool covered(const char *const *list, const char *filter)
{
    size_t n = strlen(filter);
    for (size_t i = 0; list[i] != NULL; i++)
        if (strncmp(list[i], filter, n) == 0 && strcmp(list[i] + n, "/#") == 0)
            return true;
    return false;
}

int bridge_rules_init(struct bridge_rules *r, const char *prefix, struct te_error *err)
{
    int ret = TE_OK;

    memset(r, 0, sizeof(*r));
    if (prefix == NULL || !prefix_valid(prefix))
        return te_error_set(err, TE_ERR_CONFIG,
                            "The bridge topic prefix '%.*s' is not valid: it must be one MQTT "
                            "topic level of 1 to %d characters without '/', '+' or '#'. Fix "
                            "c8y.bridge.topic_prefix.", BRIDGE_PREFIX_MAX, prefix ? prefix : "",
                            BRIDGE_PREFIX_MAX);
    snprintf(r->prefix, sizeof(r->prefix), "%s", prefix);
    for (size_t i = 0; bridge_rules_upstream[i] != NULL; i++) {
        if (covered(bridge_rules_upstream, bridge_rules_upstream[i]))
            continue;
        if (r->n_local == BRIDGE_FILTER_MAX) {
            ret = te_error_set(err, TE_ERR_INTERNAL, "Too many bridge topic rules.");
            goto exit;
        }
        if (asprintf(&r->local_filters[r->n_local], "%s/%s", prefix,
                     bridge_rules_upstream[i]) < 0) {
            r->local_filters[r->n_local] = NULL;
            ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory building the bridge topic rules.");
            goto exit;
        }
        r->n_local++;
    }
    for (size_t i = 0; bridge_rules_downstream[i] != NULL; i++) {
        if (covered(bridge_rules_downstream, bridge_rules_downstream[i]))
            continue;
        if (r->n_cloud == BRIDGE_FILTER_MAX) {
            ret = te_error_set(err, TE_ERR_INTERNAL, "Too many bridge topic rules.");
            goto exit;
        }
        r->cloud_filters[r->n_cloud++] = bridge_rules_downstream[i];
    }
exit:
    if (ret != TE_OK)
        bridge_rules_free(r);
    return ret;
}

void bridge_rules_free(struct bridge_rules *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_local; i++)
        free(r->local_filters[i]);
    r->n_local = 0;
    r->n_cloud = 0;
}

/* A topic name we may publish: not empty, no wildcards, within MQTT's length. */
static bool topic_name_valid(const char *topic)
{
    size_t n = strnlen(topic, BRIDGE_TOPIC_MAX + 1);
    return n > 0 && n <= BRIDGE_TOPIC_MAX && strpbrk(topic, "+#") == NULL;
}

static bool in_list(const char *const *list, const char *topic)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (bridge_topic_matches(list[i], topic))
            return true;
    return false;
}

int bridge_rules_to_cloud(const struct bridge_rules *r, const char *topic, char **out)
{
    size_t pl = strlen(r->prefix);
    const char *rest;

    *out = NULL;
    if (topic == NULL || !topic_name_valid(topic))
        return TE_ERR_INVALID;
    if (strncmp(topic, r->prefix, pl) != 0 || topic[pl] != '/')
        return TE_ERR_NOT_FOUND;
    rest = topic + pl + 1;
    if (*rest == '\0' || !in_list(bridge_rules_upstream, rest))
        return TE_ERR_NOT_FOUND;
    if ((*out = strdup(rest)) == NULL)
        return TE_ERR_NOMEM;
    return TE_OK;
}

int bridge_rules_to_local(const struct bridge_rules *r, const char *topic, char **out)
{
    *out = NULL;
    if (topic == NULL || !topic_name_valid(topic))
        return TE_ERR_INVALID;
    if (!in_list(bridge_rules_downstream, topic))
        return TE_ERR_NOT_FOUND;
    /* the prefix plus '/' may push a topic at MQTT's limit over it */
    if (strlen(r->prefix) + 1 + strlen(topic) > BRIDGE_TOPIC_MAX)
        return TE_ERR_INVALID;
    if (asprintf(out, "%s/%s", r->prefix, topic) < 0) {
        *out = NULL;
        return TE_ERR_NOMEM;
    }
    return TE_OK;
}
