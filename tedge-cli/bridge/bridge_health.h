/* What the bridge says about itself: its service name and local client id, the retained health
 * status on the local broker, and the SmartREST 102 service status it sends to Cumulocity. */
#ifndef TEDGE_CLI_BRIDGE_HEALTH_H
#define TEDGE_CLI_BRIDGE_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define BRIDGE_SERVICE_PREFIX "tedge-mapper-bridge-" /* + topic prefix: upstream's service name */
#define BRIDGE_LOCAL_CLIENT_ID "tedge-mapper-bridge-c8y" /* + "@<profile>" for a profile */
#define BRIDGE_SERVICE_TYPE "service"  /* upstream's default service.type */
#define BRIDGE_HEALTH_UP "{\"status\":\"up\"}"
#define BRIDGE_HEALTH_DOWN "{\"status\":\"down\"}"
#define BRIDGE_SMARTREST_TOPIC "s/us"  /* the cloud topic of static SmartREST templates */
#define BRIDGE_NAME_MAX 512            /* device ids and topics we build are far shorter */

struct bridge_health {
    char service[BRIDGE_NAME_MAX];         /* tedge-mapper-bridge-c8y */
    char topic[BRIDGE_NAME_MAX];           /* te/device/main/service/<service>/status/health */
    char local_client_id[BRIDGE_NAME_MAX]; /* tedge-mapper-bridge-c8y[@profile] */
    char smartrest_up[2 * BRIDGE_NAME_MAX];   /* 102,<xid>,service,<service>,up */
    char smartrest_down[2 * BRIDGE_NAME_MAX]; /* the same with down: the cloud last will */
};

/* prefix: c8y.bridge.topic_prefix; profile: NULL or the profile name; device_id: the CN of the
 * device certificate (the cloud client id). The service's external id is upstream's
 * "<device_id>:device:main:service:<service>". */
int bridge_health_init(struct bridge_health *h, const char *prefix, const char *profile,
                       const char *device_id, struct te_error *err);

/* Appends field to out as one SmartREST (CSV) field: quoted when it holds a comma, a quote or
 * a line break, with quotes doubled. Returns false when out is too small. */
bool bridge_csv_field(char *out, size_t out_size, const char *field);

#endif
