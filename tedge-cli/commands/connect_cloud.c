/* "Creating device in Cumulocity cloud": a direct MQTT connection to the cloud with the device
 * key (libmosquitto through the TLS relay), SmartREST 100 on s/us at QoS 1, done at PUBACK. */
#include "tedge-cli/commands/connect_internal.h"

#include "common/clock.h"
#include "common/log.h"
#include "tedge-cli/tls/relay.h"
#include "tedge-cli/tls/tls_client.h"

#include <errno.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CREATE_KEEPALIVE_S 60       /* the direct connection lives a few seconds */
#define CREATE_TIMEOUT_MS 90000     /* TLS may take 60 s (slow token) + MQTT round trips */
#define CREATE_POLL_MS 50           /* how often the waiting thread looks at the relay */
#define CREATE_RELAY_ERROR_WAIT_MS 3000 /* for the relay's reason after a failed MQTT connect */
#define CREATE_TOPIC "s/us"         /* SmartREST 2.0 static templates, upstream's topic */

struct create_state {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int connack_rc;         /* -1 until the CONNACK */
    int publish_mid;
    bool acked;
    int publish_rc;         /* a failed mosquitto_publish in the callback */
    char payload[CONNECT_ID_MAX + 32];
};

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct create_state *st = obj;
    int mid = 0, prc = MOSQ_ERR_SUCCESS;
    bool first;

    pthread_mutex_lock(&st->lock);
    st->connack_rc = rc;
    first = rc == 0 && st->publish_mid == 0;
    pthread_mutex_unlock(&st->lock);
    /* Published once: after a reconnect libmosquitto resends it if it was not acknowledged.
     * on_publish runs on this same thread later, so publish_mid is set before it can match. */
    if (first)
        prc = mosquitto_publish(m, &mid, CREATE_TOPIC, (int)strlen(st->payload), st->payload, 1,
                                false);
    pthread_mutex_lock(&st->lock);
    if (first) {
        st->publish_mid = prc == MOSQ_ERR_SUCCESS ? mid : -1;
        st->publish_rc = prc;
    }
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    struct create_state *st = obj;
    (void)m;
    pthread_mutex_lock(&st->lock);
    if (mid == st->publish_mid)
        st->acked = true;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

void connect_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long ms)
{
    struct timespec until; /* pthread_cond_timedwait takes CLOCK_REALTIME by default */

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cond, lock, &until);
}

/* The TLS client's message already says what failed and what to do; add which tedge.toml key
 * holds the value to change. */
static int explain_cloud_error(const struct te_error *why, struct te_error *err)
{
    const char *msg = te_error_message(why);
    char text[TE_ERROR_MSG_MAX];

    snprintf(text, sizeof(text), "%s", msg);
    if (why->code == TE_ERR_TLS && strstr(msg, "server's certificate") != NULL)
        return te_error_set(err, why->code, "%s The trusted roots come from "
                            "'c8y.root_cert_path'.", text);
    if (why->code == TE_ERR_CONNECT || why->code == TE_ERR_TIMEOUT)
        return te_error_set(err, why->code, "%s The cloud endpoint comes from 'c8y.mqtt' "
                            "(default: the host of 'c8y.url', port 8883).", text);
    *err = *why;
    return why->code;
}

/* Waits for the PUBACK, a refused CONNACK, or (before any connection succeeded) the relay's
 * reason for closing libmosquitto's connection. */
static int wait_for_ack(struct create_state *st, struct relay *r, const struct connect_cloud *c,
                        struct te_error *err)
{
    int64_t start = te_monotonic_ms();
    struct te_error why = {0};
    int ret = TE_OK;

    pthread_mutex_lock(&st->lock);
    while (!st->acked) {
        if (st->connack_rc > 0) {
            ret = te_error_set(err, TE_ERR_PERMISSION,
                               "Cumulocity refused the MQTT connection of device '%s': %s. Check "
                               "that the device certificate is registered for this tenant.",
                               c->device_id, mosquitto_connack_string(st->connack_rc));
            break;
        }
        if (st->publish_rc != MOSQ_ERR_SUCCESS) {
            ret = te_error_set(err, TE_ERR_IO, "Cannot publish the device creation message: %s.",
                               mosquitto_strerror(st->publish_rc));
            break;
        }
        if (st->connack_rc < 0 && relay_last_error(r, &why)) {
            ret = explain_cloud_error(&why, err);
            break;
        }
        if (te_monotonic_ms() - start > CREATE_TIMEOUT_MS) {
            ret = te_error_set(err, TE_ERR_TIMEOUT,
                               "Timed-out attempting to create device in Cumulocity (no %s from "
                               "%s:%u within %d s). Check the network connection to the cloud "
                               "and try again.", st->connack_rc < 0 ? "MQTT connection"
                               : "acknowledgement", c->host, c->port, CREATE_TIMEOUT_MS / 1000);
            break;
        }
        connect_cond_wait_ms(&st->cond, &st->lock, CREATE_POLL_MS);
    }
    pthread_mutex_unlock(&st->lock);
    return ret;
}

int connect_create_device(const struct connect_cloud *c, struct te_error *err)
{
    struct tls_client_config tcfg = {
        .host = c->host,
        .port = c->port,
        .ca_path = c->ca_path,
        .cert_path = c->cert_path,
        .signer = c->signer,
    };
    struct create_state st = {.connack_rc = -1};
    struct tls_client *tls = NULL;
    struct relay *relay = NULL;
    struct mosquitto *m = NULL;
    enum log_level saved_level = log_get_level();
    int ret, rc;

    pthread_mutex_init(&st.lock, NULL);
    pthread_cond_init(&st.cond, NULL);
    snprintf(st.payload, sizeof(st.payload), "100,%s,%s", c->device_id, CONNECT_DEVICE_TYPE);
    /* checks that the key matches the certificate before anything connects (and finds the
     * key: its warnings, e.g. several matching keys, are printed here) */
    if ((ret = tls_client_new(&tcfg, &tls, err)) != TE_OK)
        goto exit;
    /* From here the relay logs why a cloud connection fails, and this step reports the very
     * same error: at the default level keep it to the step's line. */
    if (saved_level == LOG_LVL_WARN)
        log_set_level(LOG_LVL_ERROR);
    if ((ret = relay_start(tls, NULL, &relay, err)) != TE_OK)
        goto exit;
    if ((m = mosquitto_new(c->device_id, true, &st)) == NULL) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Cannot create an MQTT client.");
        goto exit;
    }
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_reconnect_delay_set(m, 1, 2, false);
    /* port 0: libmosquitto connects to the relay's Unix socket; the relay does TLS. When the
     * relay cannot reach the cloud it closes the socket, maybe while libmosquitto still writes
     * CONNECT: then the relay's reason is the error, not the broken pipe. */
    if ((rc = mosquitto_connect(m, relay_socket_path(relay), 0, CREATE_KEEPALIVE_S)) !=
            MOSQ_ERR_SUCCESS ||
        (rc = mosquitto_loop_start(m)) != MOSQ_ERR_SUCCESS) {
        struct te_error why = {0};
        int saved_errno = errno;
        for (int waited = 0; waited < CREATE_RELAY_ERROR_WAIT_MS; waited += CREATE_POLL_MS) {
            if (relay_last_error(relay, &why))
                break;
            nanosleep(&(struct timespec){0, CREATE_POLL_MS * 1000000L}, NULL);
        }
        if (why.code != TE_OK)
            ret = explain_cloud_error(&why, err);
        else
            ret = te_error_set(err, TE_ERR_IO, "Cannot start the MQTT connection to Cumulocity: "
                               "%s.", rc == MOSQ_ERR_ERRNO ? strerror(saved_errno)
                                                           : mosquitto_strerror(rc));
        goto exit;
    }
    ret = wait_for_ack(&st, relay, c, err);
    if (ret == TE_OK)
        log_info("device created id=%s host=%s:%u", c->device_id, c->host, c->port);
exit:
    if (m != NULL) {
        mosquitto_disconnect(m);
        mosquitto_loop_stop(m, false);
        mosquitto_destroy(m);
    }
    relay_stop(relay);
    log_set_level(saved_level);
    tls_client_free(tls);
    pthread_cond_destroy(&st.cond);
    pthread_mutex_destroy(&st.lock);
    return ret;
}
