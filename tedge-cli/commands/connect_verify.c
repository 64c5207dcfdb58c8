/* The local checks of `tedge connect c8y`: wait until the local broker listens, then ask
 * Cumulocity for a JWT through the bridge (<prefix>/s/uat -> 71,<jwt> on <prefix>/s/dat). */
#include "tedge-cli/commands/connect_internal.h"

#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <mosquitto.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define VERIFY_CLIENT_ID "check_connection_c8y" /* upstream's client id for the check */
#define VERIFY_TIMEOUT_MS 10000       /* one attempt: upstream's RESPONSE_TIMEOUT */
#define VERIFY_HEALTH_GRACE_MS 3000   /* ask anyway when the bridge reports no health by then */
#define VERIFY_POLL_MS 50             /* how often the waiting thread wakes up */
#define VERIFY_CONNECT_STEP_MS 100    /* pause between two connects to a broker not up yet */
#define VERIFY_TOPIC_MAX 256          /* "<prefix>/s/dat", the health topic */
#define VERIFY_JWT_MAX 16384          /* a JWT reply larger than this is not Cumulocity's */

/* One TCP connect to host:port within the remaining time; TE_OK when it is accepted. */
static int try_tcp(const char *host, uint16_t port, int timeout_ms, char *why, size_t why_size)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
    char service[8];
    int r, ret = TE_ERR_CONNECT;

    snprintf(service, sizeof(service), "%u", port);
    if ((r = getaddrinfo(host, service, &hints, &res)) != 0) {
        snprintf(why, why_size, "cannot resolve '%s': %s", host, gai_strerror(r));
        return TE_ERR_CONNECT;
    }
    snprintf(why, why_size, "nothing listens on %s:%u", host, port);
    for (ai = res; ai != NULL && ret != TE_OK; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            ret = TE_OK;
        } else if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            if (poll(&p, 1, timeout_ms) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)
                ret = TE_OK;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return ret;
}

int connect_wait_for_broker(const struct connect_local *l, int timeout_ms, struct te_error *err)
{
    int64_t start = te_monotonic_ms();
    char why[256] = "";

    for (;;) {
        long left = timeout_ms - (long)(te_monotonic_ms() - start);
        if (try_tcp(l->host, l->port, left > 1000 ? 1000 : (int)(left > 0 ? left : 1), why,
                    sizeof(why)) == TE_OK)
            return TE_OK;
        if (te_monotonic_ms() - start >= timeout_ms)
            break;
        nanosleep(&(struct timespec){0, VERIFY_CONNECT_STEP_MS * 1000000L}, NULL);
    }
    return te_error_set(err, TE_ERR_TIMEOUT,
                        "Timed out after %d s waiting for mosquitto to be listening (%s). Check "
                        "that mosquitto runs and listens on mqtt.client.host:mqtt.client.port "
                        "(%s:%u).", timeout_ms / 1000, why, l->host, l->port);
}

struct check_state {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char dat_topic[VERIFY_TOPIC_MAX];
    char uat_topic[VERIFY_TOPIC_MAX];
    char health_topic[VERIFY_TOPIC_MAX];
    int connack_rc;          /* -1 until the CONNACK */
    int subscribed;          /* SUBACKs received */
    bool health_up;
    bool requested;          /* s/uat sent */
    bool lost;               /* disconnected by the broker */
    char *jwt;               /* the 71 reply */
};

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct check_state *st = obj;
    if (rc == 0) { /* the topics never change: no lock needed to read them */
        mosquitto_subscribe(m, NULL, st->dat_topic, 1);
        mosquitto_subscribe(m, NULL, st->health_topic, 1);
    }
    pthread_mutex_lock(&st->lock);
    st->connack_rc = rc;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
    struct check_state *st = obj;
    (void)m;
    (void)mid;
    (void)n;
    (void)granted;
    pthread_mutex_lock(&st->lock);
    st->subscribed++;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    struct check_state *st = obj;
    (void)m;
    pthread_mutex_lock(&st->lock);
    if (rc != 0)
        st->lost = true;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    struct check_state *st = obj;
    const char *p = msg->payload;
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    (void)m;

    pthread_mutex_lock(&st->lock);
    if (strcmp(msg->topic, st->health_topic) == 0) {
        /* {"status":"up",...}: the bridge's cloud side is connected */
        st->health_up = len < 4096 && memmem(p, len, "\"up\"", 4) != NULL;
    } else if (strcmp(msg->topic, st->dat_topic) == 0 && st->jwt == NULL && len > 3 &&
               len < VERIFY_JWT_MAX && memcmp(p, "71,", 3) == 0 &&
               memchr(p, '\0', len) == NULL) {
        st->jwt = strndup(p + 3, len - 3);
    }
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

/* Whether to send <prefix>/s/uat now: both subscriptions are in place and the bridge says up (or
 * said nothing within the grace period). Called with the lock held; marks the request sent. */
static bool take_request_turn(struct check_state *st, long elapsed_ms)
{
    if (st->requested || st->subscribed < 2 || st->connack_rc != 0)
        return false;
    if (!st->health_up && elapsed_ms < VERIFY_HEALTH_GRACE_MS)
        return false;
    st->requested = true;
    return true;
}

static int wait_for_jwt(struct mosquitto *m, struct check_state *st, const struct connect_local *l,
                        char **jwt, struct te_error *err)
{
    int64_t start = te_monotonic_ms();
    int ret = TE_OK;
    long elapsed;

    pthread_mutex_lock(&st->lock);
    while (st->jwt == NULL) {
        elapsed = (long)(te_monotonic_ms() - start);
        if (st->connack_rc > 0) {
            ret = te_error_set(err, TE_ERR_PERMISSION, "The local broker %s:%u refused the "
                               "connection check: %s.", l->host, l->port,
                               mosquitto_connack_string(st->connack_rc));
            break;
        }
        if (st->lost) {
            ret = te_error_set(err, TE_ERR_CLOSED, "Client was disconnected from mosquitto "
                               "during connection check.");
            break;
        }
        if (elapsed >= VERIFY_TIMEOUT_MS) {
            if (st->connack_rc < 0)
                ret = te_error_set(err, TE_ERR_TIMEOUT, "Could not connect to the local broker "
                                   "%s:%u within %d s.", l->host, l->port,
                                   VERIFY_TIMEOUT_MS / 1000);
            else if (!st->requested)
                ret = te_error_set(err, TE_ERR_TIMEOUT, "Could not subscribe to %s on the local "
                                   "broker within %d s.", st->dat_topic,
                                   VERIFY_TIMEOUT_MS / 1000);
            else
                ret = te_error_set(err, TE_ERR_TIMEOUT, "No reply on %s within %d s (bridge "
                                   "health: %s).", st->dat_topic, VERIFY_TIMEOUT_MS / 1000,
                                   st->health_up ? "up" : "not up");

            break;
        }
        if (take_request_turn(st, elapsed)) {
            /* never call into libmosquitto with our lock held: its thread takes it in callbacks */
            pthread_mutex_unlock(&st->lock);
            int rc = mosquitto_publish(m, NULL, st->uat_topic, 0, "", 0, false);
            pthread_mutex_lock(&st->lock);
            if (rc != MOSQ_ERR_SUCCESS)
                st->requested = false;
            continue;
        }
        connect_cond_wait_ms(&st->cond, &st->lock, VERIFY_POLL_MS);
    }
    if (st->jwt != NULL) {
        *jwt = st->jwt;
        st->jwt = NULL;
        ret = TE_OK;
    }
    pthread_mutex_unlock(&st->lock);
    return ret;
}

int connect_check_once(const struct connect_local *l, char **jwt, struct te_error *err)
{
    struct check_state st = {.connack_rc = -1};
    struct mosquitto *m = NULL;
    int ret, rc;

    *jwt = NULL;
    pthread_mutex_init(&st.lock, NULL);
    pthread_cond_init(&st.cond, NULL);
    snprintf(st.dat_topic, sizeof(st.dat_topic), "%s/s/dat", l->topic_prefix);
    snprintf(st.uat_topic, sizeof(st.uat_topic), "%s/s/uat", l->topic_prefix);
    snprintf(st.health_topic, sizeof(st.health_topic),
             "te/device/main/service/%s%s/status/health", CONNECT_HEALTH_SERVICE,
             l->topic_prefix);
    if ((m = mosquitto_new(VERIFY_CLIENT_ID, true, &st)) == NULL) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Cannot create an MQTT client.");
        goto exit;
    }
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    mosquitto_message_callback_set(m, on_message);
    if ((rc = mosquitto_connect(m, l->host, l->port, VERIFY_TIMEOUT_MS / 1000)) !=
            MOSQ_ERR_SUCCESS ||
        (rc = mosquitto_loop_start(m)) != MOSQ_ERR_SUCCESS) {
        ret = te_error_set(err, TE_ERR_CONNECT, "Failed to connect to mosquitto at %s:%u for the "
                           "connection check: %s.", l->host, l->port,
                           rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        goto exit;
    }
    ret = wait_for_jwt(m, &st, l, jwt, err);
    log_debug("connection check result=%s", te_errcode(ret));
exit:
    if (m != NULL) {
        mosquitto_disconnect(m);
        mosquitto_loop_stop(m, false);
        mosquitto_destroy(m);
    }
    free(st.jwt);
    pthread_cond_destroy(&st.cond);
    pthread_mutex_destroy(&st.lock);
    return ret;
}
