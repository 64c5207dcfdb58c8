/* The cloud side of the bridge: the device key, TLS client and relay, and an MQTT 3.1.1 client
 * of Cumulocity through the relay (clean session, SmartREST 102 up after connect, down as will). */
#include "tedge-cli/bridge/bridge_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

int bridge_cloud_prepare(struct bridge *b, struct te_error *err)
{
    const struct bridge_config *bc = b->cfg;
    struct tls_client_config tc = {0};
    int ret;

    if (b->relay != NULL)
        return TE_OK;
    if (b->signer == NULL && (ret = signer_open(&bc->key->signer, &b->signer, err)) != TE_OK)
        return ret;
    if (b->tls == NULL) {
        tc.host = bc->cloud_host;
        tc.port = bc->cloud_port;
        tc.ca_path = bc->ca_path;
        tc.cert_path = bc->key->cert_path;
        tc.signer = b->signer;
        /* checks that the key matches the certificate: the first use of a token key */
        if ((ret = tls_client_new(&tc, &b->tls, err)) != TE_OK)
            return ret;
        log_info("cloud: the device key (%s) matches the certificate %s",
                 signer_describe(b->signer), bc->key->cert_path);
    }
    if ((ret = relay_start(b->tls, bc->runtime_dir, &b->relay, err)) != TE_OK)
        return ret;
    return TE_OK;
}

void bridge_cloud_release(struct bridge *b)
{
    relay_stop(b->relay);
    b->relay = NULL;
    tls_client_free(b->tls);
    b->tls = NULL;
    signer_close(b->signer);
    b->signer = NULL;
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct bridge *b = obj;
    struct bridge_side *s = &b->cloud;
    char **filters = (char **)b->rules.cloud_filters; /* libmosquitto does not write them */
    int mid = 0, src;

    if (rc != 0) {
        s->refused_rc = rc;
        s->lost = true;
        s->lost_rc = MOSQ_ERR_CONN_REFUSED;
        return;
    }
    s->state = SIDE_CONNECTED;
    log_info("cloud: connected to %s:%u as %s attempt=%u", b->cfg->cloud_host,
             (unsigned)b->cfg->cloud_port, b->cfg->device_id, s->attempt);
    s->attempt = 0;
    bridge_backoff_connected(&s->backoff, bridge_now_ms());
    src = mosquitto_subscribe_multiple(m, &mid, (int)b->rules.n_cloud, filters, 1, 0, NULL);
    if (src != MOSQ_ERR_SUCCESS)
        log_error("cloud: cannot subscribe to the Cumulocity topics: %s", mosquitto_strerror(src));
    /* the service is up in Cumulocity; its will says down when the connection breaks */
    src = mosquitto_publish(m, NULL, BRIDGE_SMARTREST_TOPIC, (int)strlen(b->health.smartrest_up),
                            b->health.smartrest_up, 1, false);
    if (src != MOSQ_ERR_SUCCESS)
        log_warn("cloud: cannot send the service status: %s", mosquitto_strerror(src));
    bridge_local_publish_health(b, false);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int count, const int *granted)
{
    struct bridge *b = obj;

    (void)m;
    (void)mid;
    for (int i = 0; i < count && (size_t)i < b->rules.n_cloud; i++)
        if (granted[i] >= 0x80)
            log_error("cloud: Cumulocity refused the subscription to %s",
                      b->rules.cloud_filters[i]);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    struct bridge *b = obj;

    (void)m;
    bridge_side_received(b, &b->cloud, msg);
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    struct bridge *b = obj;

    (void)m;
    if (!bridge_queue_ack(&b->up, mid) && mid == b->goodbye_mid)
        b->goodbye_mid = 0;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    struct bridge *b = obj;

    (void)m;
    b->cloud.lost = true;
    b->cloud.lost_rc = rc;
}

int bridge_cloud_connect(struct bridge *b, struct te_error *err)
{
    struct bridge_side *s = &b->cloud;
    struct relay_stats st;
    struct mosquitto *m;
    int rc, ret = TE_OK;

    /* clean session, as Cumulocity asks its devices (and upstream does) */
    if ((m = mosquitto_new(b->cfg->device_id, true, b)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory creating the cloud MQTT client.");
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, BRIDGE_INFLIGHT_MAX);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    rc = mosquitto_will_set(m, BRIDGE_SMARTREST_TOPIC, (int)strlen(b->health.smartrest_down),
                            b->health.smartrest_down, 1, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        ret = te_error_set(err, TE_ERR_INTERNAL, "Cannot set up the cloud MQTT client: %s.",
                           mosquitto_strerror(rc));
        goto exit;
    }
    relay_get_stats(b->relay, &st);
    b->relay_failures = st.failures;
    log_info("cloud: connecting to %s:%u as %s attempt=%u", b->cfg->cloud_host,
             (unsigned)b->cfg->cloud_port, b->cfg->device_id, s->attempt);
    errno = 0;
    /* port 0: a Unix socket, the relay's; it accepts at once and does TLS behind it */
    rc = mosquitto_connect(m, relay_socket_path(b->relay), 0, b->cfg->keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS) {
        int e = errno;
        /* The relay may have failed the session and closed the socket before libmosquitto
         * wrote CONNECT (EPIPE): its error is the real cause. */
        relay_get_stats(b->relay, &st);
        if (st.failures > b->relay_failures && relay_last_error(b->relay, err)) {
            ret = err->code != TE_OK ? err->code : TE_ERR_CONNECT;
            goto exit;
        }
        ret = te_error_set(err, TE_ERR_CONNECT, "Cannot connect to the MQTT relay %s: %s.",
                           relay_socket_path(b->relay),
                           rc == MOSQ_ERR_ERRNO ? strerror(e) : mosquitto_strerror(rc));
        goto exit;
    }
    s->mosq = m;
    m = NULL;
    s->state = SIDE_CONNECTING;
    s->deadline_ms = bridge_now_ms() + BRIDGE_CLOUD_CONNACK_MS;
exit:
    if (m != NULL)
        mosquitto_destroy(m);
    return ret;
}

void bridge_cloud_cause(struct bridge *b, struct te_error *err)
{
    struct bridge_side *s = &b->cloud;
    struct relay_stats st;

    if (b->relay != NULL) {
        relay_get_stats(b->relay, &st);
        if (st.failures > b->relay_failures && relay_last_error(b->relay, err))
            return;
    }
    if (s->refused_rc != 0) {
        te_error_set(err, TE_ERR_PERMISSION, "Cumulocity refused the MQTT connection: %s",
                     mosquitto_connack_string(s->refused_rc));
        return;
    }
    te_error_set(err, TE_ERR_CLOSED, "The connection to %s:%u ended: %s", b->cfg->cloud_host,
                 (unsigned)b->cfg->cloud_port,
                 s->lost_rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(s->lost_rc));
}

int bridge_cloud_publish_goodbye(struct bridge *b)
{
    int mid = 0, rc;

    if (b->cloud.state != SIDE_CONNECTED || b->cloud.mosq == NULL)
        return TE_ERR_CLOSED;
    rc = mosquitto_publish(b->cloud.mosq, &mid, BRIDGE_SMARTREST_TOPIC,
                           (int)strlen(b->health.smartrest_down), b->health.smartrest_down, 1,
                           false);
    if (rc != MOSQ_ERR_SUCCESS)
        return TE_ERR_CLOSED;
    b->goodbye_mid = mid;
    return TE_OK;
}
