/* The Cumulocity topic rules of the built-in bridge: which local topics (under the prefix,
 * default "c8y/") go up to which cloud topics and which cloud topics come down, as upstream. */
#ifndef TEDGE_CLI_BRIDGE_RULES_H
#define TEDGE_CLI_BRIDGE_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define BRIDGE_PREFIX_MAX 64      /* c8y.bridge.topic_prefix is one topic level; longer is a typo */
#define BRIDGE_TOPIC_MAX 65535    /* MQTT's own limit on a topic name (a 16-bit length) */
#define BRIDGE_FILTER_MAX 40      /* more than the local + cloud rules we install */

/* The rules for one prefix. Built by bridge_rules_init; everything is copied in. */
struct bridge_rules {
    char prefix[BRIDGE_PREFIX_MAX + 1];
    /* Subscriptions: local filters carry the prefix ("c8y/s/us/#"); a filter already covered
     * by its "/#" sibling (s/us by s/us/#) is not repeated. */
    char *local_filters[BRIDGE_FILTER_MAX];
    size_t n_local;
    const char *cloud_filters[BRIDGE_FILTER_MAX];
    size_t n_cloud;
};

/* The cloud topic filters the bridge forwards to (local "<prefix>/<filter>" -> cloud "<filter>")
 * and from (cloud "<filter>" -> local "<prefix>/<filter>"), NULL-terminated. */
extern const char *const bridge_rules_upstream[];
extern const char *const bridge_rules_downstream[];

/* prefix: c8y.bridge.topic_prefix (one level: no '/', '+', '#', not empty). */
int bridge_rules_init(struct bridge_rules *r, const char *prefix, struct te_error *err);
void bridge_rules_free(struct bridge_rules *r);

/* A message received from the local broker on topic: the cloud topic it goes to (*out
 * malloc'd), or TE_ERR_NOT_FOUND when no rule forwards it (outside the prefix, or not one of
 * the upstream topics). TE_ERR_INVALID for a topic with wildcards or longer than MQTT allows. */
int bridge_rules_to_cloud(const struct bridge_rules *r, const char *topic, char **out);
/* A message received from the cloud on topic: the local topic (*out malloc'd), or
 * TE_ERR_NOT_FOUND when no rule brings it down. */
int bridge_rules_to_local(const struct bridge_rules *r, const char *topic, char **out);

/* Whether an MQTT topic name (not a filter) matches a topic filter ('+', '#'), as MQTT 3.1.1
 * section 4.7 defines it. */
bool bridge_topic_matches(const char *filter, const char *topic);

#endif
