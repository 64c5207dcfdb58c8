/* The local side of the bridge: an MQTT 5 client of the local broker with a persistent session,
 * no-local + retain-as-published subscriptions to the upstream rules, and the health status. */
#include "tedge-cli/bridge/bridge_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "common/log.h"

/* No MQTT keepalive towards the local broker: the connection is local (its loss is reported by
 * the kernel at once) and the bridge must be able to stop reading it while its buffer towards
 * the cloud is full, without libmosquitto or the broker declaring the link dead. */
#define BRIDGE_LOCAL_KEEPALIVE_S 0
/* Subscription options: QoS 1, never receive our own publications back (no loops), keep the
 * RETAIN flag as published (a live MQTT 3.1.1 delivery would clear it), and send retained
 * messages only when the subscription is new (not again after every reconnect). */
#define BRIDGE_LOCAL_SUB_OPTIONS \
    (MQTT_SUB_OPT_NO_LOCAL | MQTT_SUB_OPT_RETAIN_AS_PUBLISHED | MQTT_SUB_OPT_SEND_RETAIN_NEW)

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    struct bridge *b = obj;
    struct bridge_side *s = &b->local;
    int mid = 0, src;

    (void)props;
    if (rc != 0) {
        s->refused_rc = rc;
        s->lost = true;
        s->lost_rc = MOSQ_ERR_CONN_REFUSED;
        return;
    }
    s->state = SIDE_CONNECTED;
    s->attempt = 0;
    bridge_backoff_connected(&s->backoff, bridge_now_ms());
    log_info("local: connected to %s:%u as %s session=%s", b->cfg->local_host,
             (unsigned)b->cfg->local_port, b->health.local_client_id,
             (flags & 1) ? "resumed" : "new");
    src = mosquitto_subscribe_multiple(m, &mid, (int)b->rules.n_local, b->rules.local_filters, 1,
                                       BRIDGE_LOCAL_SUB_OPTIONS, NULL);
    if (src != MOSQ_ERR_SUCCESS)
        log_error("local: cannot subscribe to the bridge topics: %s", mosquitto_strerror(src));
    b->health_published = -1;
    bridge_local_publish_health(b, true);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int count, const int *granted,
                         const mosquitto_property *props)
{
    struct bridge *b = obj;

    (void)m;
    (void)mid;
    (void)props;
    for (int i = 0; i < count && (size_t)i < b->rules.n_local; i++)
        if (granted[i] >= 0x80)
            log_error("local: the broker refused the subscription to %s: %s",
                      b->rules.local_filters[i], mosquitto_reason_string(granted[i]));
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    struct bridge *b = obj;

    (void)m;
    (void)props;
    bridge_side_received(b, &b->local, msg);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
    struct bridge *b = obj;

    (void)m;
    (void)props;
    if (reason >= 0x80)
        log_warn("local: the broker refused a message from the cloud: %s (not retried)",
                 mosquitto_reason_string(reason));
    if (!bridge_queue_ack(&b->down, mid) && mid == b->health_mid)
        b->health_mid = 0;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
    struct bridge *b = obj;

    (void)m;
    (void)props;
    b->local.lost = true;
    b->local.lost_rc = rc;
}

int bridge_local_connect(struct bridge *b, struct te_error *err)
{
    struct bridge_side *s = &b->local;
    mosquitto_property *props = NULL;
    struct mosquitto *m;
    int rc, ret = TE_OK;

    /* clean_session false: MQTT 5 Clean Start off, the session survives (with its expiry) */
    if ((m = mosquitto_new(b->health.local_client_id, false, b)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory creating the local MQTT client.");
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(m, MOSQ_OPT_RECEIVE_MAXIMUM, BRIDGE_LOCAL_RECEIVE_MAX);
    mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, BRIDGE_INFLIGHT_MAX);
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_subscribe_v5_callback_set(m, on_subscribe);
    mosquitto_message_v5_callback_set(m, on_message);
    mosquitto_publish_v5_callback_set(m, on_publish);
    mosquitto_disconnect_v5_callback_set(m, on_disconnect);
    rc = mosquitto_will_set_v5(m, b->health.topic, (int)strlen(BRIDGE_HEALTH_DOWN),
                               BRIDGE_HEALTH_DOWN, 1, true, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                          BRIDGE_LOCAL_SESSION_EXPIRY);
    if (rc != MOSQ_ERR_SUCCESS) {
        ret = te_error_set(err, TE_ERR_INTERNAL, "Cannot set up the local MQTT client: %s.",
                           mosquitto_strerror(rc));
        goto exit;
    }
    log_info("local: connecting to %s:%u attempt=%u", b->cfg->local_host,
             (unsigned)b->cfg->local_port, s->attempt);
    errno = 0;
    /* a blocking TCP connect: the local broker is on this host (or the LAN) */
    rc = mosquitto_connect_bind_v5(m, b->cfg->local_host, b->cfg->local_port,
                                   BRIDGE_LOCAL_KEEPALIVE_S, NULL, props);
    if (rc != MOSQ_ERR_SUCCESS) {
        ret = te_error_set(err, TE_ERR_CONNECT,
                           "Cannot connect to the local MQTT broker %s:%u: %s.",
                           b->cfg->local_host, (unsigned)b->cfg->local_port,
                           rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        goto exit;
    }
    s->mosq = m;
    m = NULL;
    s->state = SIDE_CONNECTING;
    s->deadline_ms = bridge_now_ms() + BRIDGE_LOCAL_CONNACK_MS;
exit:
    mosquitto_property_free_all(&props);
    if (m != NULL)
        mosquitto_destroy(m);
    return ret;
}

void bridge_local_publish_health(struct bridge *b, bool force)
{
    int want = b->phase < PHASE_GOODBYE && b->cloud.state == SIDE_CONNECTED ? 1 : 0;
    const char *payload = want ? BRIDGE_HEALTH_UP : BRIDGE_HEALTH_DOWN;
    int mid = 0, rc;

    if (b->local.state != SIDE_CONNECTED || b->local.mosq == NULL)
        return;
    if (!force && b->health_published == want)
        return;
    rc = mosquitto_publish(b->local.mosq, &mid, b->health.topic, (int)strlen(payload), payload, 1,
                           true);
    if (rc != MOSQ_ERR_SUCCESS) {
        log_warn("local: cannot publish the bridge health: %s", mosquitto_strerror(rc));
        return;
    }
    b->health_published = want;
    b->health_mid = mid;
    log_info("health: %s topic=%s", want ? "up" : "down", b->health.topic);
}
