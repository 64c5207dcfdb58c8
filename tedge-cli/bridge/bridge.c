/* The bridge's lifecycle and its single event loop: connection attempts with backoff, poll() over
 * both brokers' sockets and a signalfd, forwarding from the queues, and the orderly stop. */
#include "tedge-cli/bridge/bridge_internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

#define BRIDGE_TICK_MS 1000          /* libmosquitto's keepalive and retry work runs this often */
#define BRIDGE_DRAIN_MS 5000         /* at stop: time to forward what is already buffered */
#define BRIDGE_GOODBYE_MS 3000       /* at stop: time for the brokers to take the down statuses */
#define BRIDGE_RELAY_FLUSH_MS 1000   /* at stop: time for the relay to pass DISCONNECT on */
#define BRIDGE_RELAY_FLUSH_STEP_MS 10
#define MQTT_DISCONNECT_LEN 2        /* an MQTT 3.1.1 DISCONNECT packet: 0xE0 0x00 */

uint64_t bridge_now_ms(void)
{
    return (uint64_t)te_monotonic_ms();
}

/* A PIN problem is never retried: each wrong PIN counts against the token's retry limit. */
static bool pin_error(const struct te_error *e)
{
    return e->code == TE_ERR_PIN_INCORRECT || e->code == TE_ERR_PIN_LOCKED ||
           e->code == TE_ERR_PIN_REQUIRED;
}

/* Whether opening the device key and TLS client again later may succeed: the daemon, the token
 * or the key may appear; a configuration (files, URIs, settings) does not change by itself. */
static bool retry_may_help(const struct te_error *e)
{
    if (pin_error(e))
        return false;
    switch (e->code) {
    case TE_ERR_CONNECT:
    case TE_ERR_TIMEOUT:
    case TE_ERR_IO:
    case TE_ERR_BUSY:
    case TE_ERR_CLOSED:
    case TE_ERR_NO_TOKEN:
    case TE_ERR_NO_KEY:
    case TE_ERR_PKCS11:
    case TE_ERR_PROTOCOL:
    case TE_ERR_TLS:
    case TE_ERR_NOMEM:
        return true;
    default:
        return e->retryable;
    }
}

static void say_goodbye(struct bridge *b, uint64_t now)
{
    b->phase = PHASE_GOODBYE;
    b->phase_deadline_ms = now + BRIDGE_GOODBYE_MS;
    bridge_local_publish_health(b, true); /* down, retained: the will is not sent on DISCONNECT */
    if (bridge_cloud_publish_goodbye(b) == TE_OK)
        log_info("cloud: sent service status down");
}

/* Stops the bridge: with drain, buffered messages get BRIDGE_DRAIN_MS to reach their broker. */
static void begin_stop(struct bridge *b, bool drain)
{
    uint64_t now = bridge_now_ms();

    if (b->phase != PHASE_RUNNING)
        return;
    if (drain) {
        b->phase = PHASE_DRAINING;
        b->phase_deadline_ms = now + BRIDGE_DRAIN_MS;
    } else {
        say_goodbye(b, now);
    }
}

/* A condition that retrying cannot fix: report it, stop without draining, exit EX_CONFIG. */
static void give_up(struct bridge *b, const struct te_error *why)
{
    b->fatal = *why;
    b->exit_code = BRIDGE_EXIT_CONFIG;
    log_error("%s", te_error_message(why));
    if (why->code == TE_ERR_PIN_INCORRECT || why->code == TE_ERR_PIN_LOCKED)
        log_error("cloud: not retrying: another attempt with a wrong PIN could lock the token; "
                  "fix the PIN (device.key_pin or device.cryptoki.pin) and restart the mapper");
    begin_stop(b, false);
}

void bridge_side_down(struct bridge *b, struct bridge_side *s, const struct te_error *cause)
{
    enum side_state was = s->state;
    uint64_t now = bridge_now_ms(), wait;

    if (s->mosq != NULL)
        mosquitto_destroy(s->mosq);
    s->mosq = NULL;
    s->state = SIDE_IDLE;
    s->lost = false;
    s->lost_rc = 0;
    s->refused_rc = 0;
    bridge_queue_connection_lost(s->out);
    if (s == &b->local) {
        b->health_mid = 0;
        b->health_published = -1;
    } else {
        b->goodbye_mid = 0;
    }
    if (b->phase != PHASE_RUNNING) {
        log_info("%s: disconnected: %s", s->name, te_error_message(cause));
        return;
    }
    /* Everything else about a connection is retried: the cloud, the broker or the daemon may
     * come back, a refused device may be registered meanwhile. */
    if (s == &b->cloud && pin_error(cause)) {
        give_up(b, cause);
        return;
    }
    wait = bridge_backoff_next(&s->backoff, now);
    s->next_attempt_ms = now + wait;
    if (was == SIDE_CONNECTED)
        log_warn("%s: connection lost: %s reconnect_in=%.1fs", s->name, te_error_message(cause),
                 (double)wait / 1000.0);
    else
        log_warn("%s: connection attempt %u failed: %s retry_in=%.1fs", s->name, s->attempt,
                 te_error_message(cause), (double)wait / 1000.0);
    if (s == &b->cloud)
        bridge_local_publish_health(b, false);
}

void bridge_side_received(struct bridge *b, struct bridge_side *s,
                          const struct mosquitto_message *msg)
{
    char *topic = NULL;
    int r = s == &b->local ? bridge_rules_to_cloud(&b->rules, msg->topic, &topic)
                           : bridge_rules_to_local(&b->rules, msg->topic, &topic);

    if (r != TE_OK) {
        log_debug("%s: not forwarding %s: %s", s->name, msg->topic,
                  r == TE_ERR_NOT_FOUND ? "no rule" : te_strerror(r));
        return;
    }
    log_trace("%s: queueing %s -> %s qos=%d retain=%d", s->name, msg->topic, topic, msg->qos,
              (int)msg->retain);
    if (bridge_queue_push(s->in, topic, msg->payload, (size_t)msg->payloadlen, msg->qos,
                          msg->retain) != 0)
        log_error("%s: out of memory: message on %s lost", s->name, msg->topic);
}

static void side_cause(struct bridge *b, struct bridge_side *s, struct te_error *err)
{
    if (s == &b->cloud) {
        bridge_cloud_cause(b, err);
    } else if (s->refused_rc != 0) {
        te_error_set(err, TE_ERR_PERMISSION, "The local MQTT broker refused the connection: %s.",
                     mosquitto_reason_string(s->refused_rc));
    } else {
        te_error_set(err, TE_ERR_CLOSED, "The connection to the local MQTT broker %s:%u ended: %s.",
                     b->cfg->local_host, (unsigned)b->cfg->local_port,
                     s->lost_rc == MOSQ_ERR_ERRNO ? strerror(errno)
                                                  : mosquitto_strerror(s->lost_rc));
    }
}

/* After every libmosquitto call: a client that lost its connection is torn down. */
static void after_call(struct bridge *b, struct bridge_side *s, int rc)
{
    struct te_error cause = {0};

    if (s->mosq == NULL)
        return;
    if (!s->lost && rc != MOSQ_ERR_SUCCESS) {
        s->lost = true;
        s->lost_rc = rc;
    }
    if (!s->lost)
        return;
    side_cause(b, s, &cause);
    bridge_side_down(b, s, &cause);
}

static void side_attempt(struct bridge *b, struct bridge_side *s)
{
    struct te_error err = {0};
    int ret;

    s->attempt++;
    if (s == &b->local) {
        ret = bridge_local_connect(b, &err);
    } else {
        ret = bridge_cloud_prepare(b, &err);
        if (ret != TE_OK && !retry_may_help(&err)) {
            give_up(b, &err);
            return;
        }
        if (ret == TE_OK)
            ret = bridge_cloud_connect(b, &err);
    }
    if (ret != TE_OK)
        bridge_side_down(b, s, &err);
}

/* Publishes from s->out while the window allows. */
static void pump(struct bridge_side *s)
{
    struct bridge_msg *m;
    int mid, rc;

    while (s->state == SIDE_CONNECTED && s->out->inflight < BRIDGE_INFLIGHT_MAX &&
           (m = bridge_queue_next_unsent(s->out)) != NULL) {
        mid = 0;
        rc = mosquitto_publish(s->mosq, &mid, m->topic, (int)m->len, m->payload, m->qos, m->retain);
        if (rc == MOSQ_ERR_SUCCESS) {
            bridge_queue_mark_sent(s->out, m, mid);
        } else if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_ERRNO ||
                   rc == MOSQ_ERR_NOMEM) {
            break; /* the connection's trouble: the loop notices it */
        } else {
            log_warn("%s: dropping a message to %s that the broker cannot take: %s", s->name,
                     m->topic, mosquitto_strerror(rc));
            bridge_queue_drop(s->out, m);
        }
    }
}

static void step_phase(struct bridge *b, uint64_t now)
{
    bool up_done = bridge_queue_empty(&b->up) || b->cloud.state != SIDE_CONNECTED;
    bool down_done = bridge_queue_empty(&b->down) || b->local.state != SIDE_CONNECTED;

    if (b->phase == PHASE_DRAINING && ((up_done && down_done) || now >= b->phase_deadline_ms)) {
        if (b->up.count > 0 || b->down.count > 0)
            log_warn("stopping with undelivered messages (lost): to_cloud=%zu to_local=%zu",
                     b->up.count, b->down.count);
        say_goodbye(b, now);
    } else if (b->phase == PHASE_GOODBYE &&
               (((b->health_mid == 0 || b->local.state != SIDE_CONNECTED) &&
                 (b->goodbye_mid == 0 || b->cloud.state != SIDE_CONNECTED)) ||
                now >= b->phase_deadline_ms)) {
        b->phase = PHASE_DONE;
    }
}

static void step_timers(struct bridge *b, uint64_t now)
{
    struct bridge_side *sides[] = {&b->local, &b->cloud};
    struct te_error err = {0};

    for (size_t i = 0; i < 2; i++) {
        struct bridge_side *s = sides[i];
        if (s->state == SIDE_IDLE && b->phase == PHASE_RUNNING && now >= s->next_attempt_ms) {
            side_attempt(b, s);
        } else if (s->state == SIDE_CONNECTING && now >= s->deadline_ms) {
            te_error_set(&err, TE_ERR_TIMEOUT,
                         "The %s broker did not answer MQTT CONNECT within %d s.", s->name,
                         (int)((s == &b->local ? BRIDGE_LOCAL_CONNACK_MS
                                               : BRIDGE_CLOUD_CONNACK_MS) / 1000));
            bridge_side_down(b, s, &err);
        }
    }
    step_phase(b, now);
}

/* Milliseconds until the next timer is due. */
static int next_timeout(const struct bridge *b, uint64_t now)
{
    const struct bridge_side *sides[] = {&b->local, &b->cloud};
    uint64_t t = now + BRIDGE_TICK_MS;

    for (size_t i = 0; i < 2; i++) {
        if (sides[i]->state == SIDE_IDLE && b->phase == PHASE_RUNNING &&
            sides[i]->next_attempt_ms < t)
            t = sides[i]->next_attempt_ms;
        if (sides[i]->state == SIDE_CONNECTING && sides[i]->deadline_ms < t)
            t = sides[i]->deadline_ms;
    }
    if (b->phase == PHASE_DRAINING || b->phase == PHASE_GOODBYE)
        if (b->phase_deadline_ms < t)
            t = b->phase_deadline_ms;
    return t <= now ? 0 : (int)(t - now);
}

/* poll() events for a side; fd -1 when it has no socket. From the moment the side's incoming
 * queue is full until it is half empty again, the socket is not read (the broker keeps the
 * messages), only watched for hangup. One warning per episode: until the queue is empty. */
static void side_pollfd(struct bridge_side *s, struct pollfd *p)
{
    int fd = s->mosq != NULL ? mosquitto_socket(s->mosq) : -1;
    bool full = s->state == SIDE_CONNECTED &&
                (s->paused ? !bridge_queue_resumable(s->in) : bridge_queue_full(s->in));

    if (full && !s->paused) {
        if (!s->full_warned)
            log_warn("%s: buffer full (%zu messages, %zu bytes): pausing reads from the %s broker, "
                     "which keeps the messages meanwhile", s->name, s->in->count, s->in->bytes,
                     s->name);
        else
            log_debug("%s: buffer full again (%zu messages)", s->name, s->in->count);
        s->full_warned = true;
    } else if (!full && s->paused) {
        log_debug("%s: reading again (%zu messages buffered)", s->name, s->in->count);
    }
    s->paused = full;
    if (s->full_warned && bridge_queue_empty(s->in)) {
        log_info("%s: buffer drained: everything buffered was forwarded", s->name);
        s->full_warned = false;
    }
    p->fd = fd;
    p->events = (short)((full ? POLLRDHUP : POLLIN) |
                        (fd >= 0 && mosquitto_want_write(s->mosq) ? POLLOUT : 0));
    p->revents = 0;
}

static void handle_signal(struct bridge *b)
{
    struct signalfd_siginfo si;

    while (read(b->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (b->phase == PHASE_RUNNING) {
            log_info("stopping on %s", strsignal((int)si.ssi_signo));
            begin_stop(b, true);
        } else {
            log_info("stopping now on a second %s", strsignal((int)si.ssi_signo));
            b->phase = PHASE_DONE;
        }
    }
}

static void run_loop(struct bridge *b)
{
    struct bridge_side *sides[] = {&b->local, &b->cloud};
    struct pollfd pfd[3];
    uint64_t now;
    int n;

    while (b->phase != PHASE_DONE) {
        now = bridge_now_ms();
        step_timers(b, now);
        pump(&b->local);
        pump(&b->cloud);
        step_phase(b, bridge_now_ms());
        if (b->phase == PHASE_DONE)
            break;
        pfd[0] = (struct pollfd){.fd = b->sig_fd, .events = POLLIN};
        side_pollfd(&b->local, &pfd[1]);
        side_pollfd(&b->cloud, &pfd[2]);
        n = poll(pfd, 3, next_timeout(b, bridge_now_ms()));
        if (n < 0 && errno != EINTR) {
            log_error("poll failed: %s", strerror(errno));
            b->exit_code = BRIDGE_EXIT_ERROR;
            break;
        }
        if (n > 0 && pfd[0].revents != 0)
            handle_signal(b);
        for (size_t i = 0; i < 2 && n > 0; i++) {
            struct bridge_side *s = sides[i];
            short re = pfd[i + 1].revents;
            if (s->mosq == NULL || pfd[i + 1].fd < 0 || re == 0)
                continue;
            if (re & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))
                after_call(b, s, mosquitto_loop_read(s->mosq, 1));
            if (s->mosq != NULL && (re & POLLOUT))
                after_call(b, s, mosquitto_loop_write(s->mosq, 1));
        }
        for (size_t i = 0; i < 2; i++)
            if (sides[i]->mosq != NULL)
                after_call(b, sides[i], mosquitto_loop_misc(sides[i]->mosq));
    }
}

/* Disconnects both sides cleanly (no will) and lets the relay pass the cloud's DISCONNECT on
 * before it closes the TLS session. */
static void finish(struct bridge *b)
{
    struct relay_stats st;
    uint64_t before = 0, until;

    if (b->local.mosq != NULL) {
        if (b->local.state == SIDE_CONNECTED)
            mosquitto_disconnect(b->local.mosq); /* written at once: not in a callback */
        mosquitto_destroy(b->local.mosq);
        b->local.mosq = NULL;
    }
    if (b->cloud.mosq != NULL) {
        bool clean = b->cloud.state == SIDE_CONNECTED;
        if (clean) {
            relay_get_stats(b->relay, &st);
            before = st.bytes_up;
            mosquitto_disconnect(b->cloud.mosq);
        }
        mosquitto_destroy(b->cloud.mosq);
        b->cloud.mosq = NULL;
        for (until = bridge_now_ms() + BRIDGE_RELAY_FLUSH_MS; clean && bridge_now_ms() < until;) {
            relay_get_stats(b->relay, &st);
            if (st.bytes_up >= before + MQTT_DISCONNECT_LEN)
                break;
            usleep(BRIDGE_RELAY_FLUSH_STEP_MS * 1000);
        }
    }
    bridge_cloud_release(b);
}

static void side_init(struct bridge *b, struct bridge_side *s, const char *name,
                      struct bridge_queue *out, struct bridge_queue *in)
{
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->b = b;
    s->out = out;
    s->in = in;
    bridge_backoff_init(&s->backoff, b->cfg->initial_ms, b->cfg->max_ms, b->cfg->reset_window_ms,
                        NULL, NULL);
}

int bridge_run(const struct bridge_config *bc, struct te_error *err)
{
    struct bridge *b;
    sigset_t set, old;
    bool masked = false;
    int ret = BRIDGE_EXIT_ERROR;

    CHECK_ARG(bc != NULL, BRIDGE_EXIT_ERROR);
    if ((b = calloc(1, sizeof(*b))) == NULL) {
        te_error_set(err, TE_ERR_NOMEM, "Out of memory starting the bridge.");
        return BRIDGE_EXIT_ERROR;
    }
    b->cfg = bc;
    b->sig_fd = -1;
    b->health_published = -1;
    mosquitto_lib_init();
    bridge_queue_init(&b->up, bc->queue_messages, bc->queue_bytes);
    bridge_queue_init(&b->down, bc->queue_messages, bc->queue_bytes);
    if (bridge_rules_init(&b->rules, bc->prefix, err) != TE_OK ||
        bridge_health_init(&b->health, bc->prefix, bc->profile, bc->device_id, err) != TE_OK) {
        ret = BRIDGE_EXIT_CONFIG;
        goto exit;
    }
    side_init(b, &b->local, "local", &b->down, &b->up);
    side_init(b, &b->cloud, "cloud", &b->up, &b->down);
    /* Signals go to the signalfd; threads started later (the relay) inherit the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &set, &old) != 0 ||
        (b->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        te_error_set(err, TE_ERR_IO, "Cannot set up signal handling: %s.", strerror(errno));
        goto exit;
    }
    masked = true;
    signal(SIGPIPE, SIG_IGN);
    log_info("bridge %s/# <-> %s:%u device_id=%s key=%s local=%s:%u", bc->prefix, bc->cloud_host,
             (unsigned)bc->cloud_port, bc->device_id, device_key_mode_name(bc->key->mode),
             bc->local_host, (unsigned)bc->local_port);
    b->exit_code = BRIDGE_EXIT_OK;
    run_loop(b);
    finish(b);
    log_info("stopped forwarded_to_cloud=%llu forwarded_to_local=%llu dropped_qos0=%llu",
             (unsigned long long)b->up.forwarded, (unsigned long long)b->down.forwarded,
             (unsigned long long)(b->up.dropped_qos0 + b->down.dropped_qos0));
    if (b->exit_code == BRIDGE_EXIT_CONFIG && err != NULL)
        *err = b->fatal;
    ret = b->exit_code;
exit:
    bridge_cloud_release(b);
    if (b->sig_fd >= 0)
        close(b->sig_fd);
    if (masked)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    bridge_queue_clear(&b->up);
    bridge_queue_clear(&b->down);
    bridge_rules_free(&b->rules);
    mosquitto_lib_cleanup();
    free(b);
    return ret;
}
