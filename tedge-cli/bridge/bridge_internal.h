/* What the bridge's files share: the state of the two sides (libmosquitto client, connection
 * state, backoff, queue) and of the whole bridge; one thread owns all of it (bridge.c's loop). */
#ifndef TEDGE_CLI_BRIDGE_INTERNAL_H
#define TEDGE_CLI_BRIDGE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <mosquitto.h>

#include "common/err.h"
#include "tedge-cli/bridge/bridge.h"
#include "tedge-cli/bridge/bridge_backoff.h"
#include "tedge-cli/bridge/bridge_health.h"
#include "tedge-cli/bridge/bridge_queue.h"
#include "tedge-cli/bridge/bridge_rules.h"
#include "tedge-cli/key/signer.h"
#include "tedge-cli/tls/relay.h"
#include "tedge-cli/tls/tls_client.h"

/* Messages handed to a broker and not yet acknowledged, per side: enough to keep a link busy
 * (libmosquitto's default), small enough that a reconnect resends little. */
#define BRIDGE_INFLIGHT_MAX 20
/* How long a broker may take to answer CONNECT. The cloud's includes the TLS handshake (the
 * relay's own deadline, with a token that may take seconds per signature) plus a margin. */
#define BRIDGE_LOCAL_CONNACK_MS 10000
#define BRIDGE_CLOUD_CONNACK_MS (TLS_DEFAULT_TIMEOUT_MS + 10000)
/* Incoming QoS 1 messages the local broker may have in flight to us (MQTT 5 Receive Maximum). */
#define BRIDGE_LOCAL_RECEIVE_MAX 20
/* The local session outlives any disconnection (MQTT 5 Session Expiry Interval: never). */
#define BRIDGE_LOCAL_SESSION_EXPIRY UINT32_MAX

enum side_state { SIDE_IDLE = 0, SIDE_CONNECTING, SIDE_CONNECTED };

struct bridge;

struct bridge_side {
    const char *name;              /* "local" or "cloud", for logs */
    struct bridge *b;
    struct mosquitto *mosq;        /* NULL while IDLE: one client per connection attempt */
    enum side_state state;
    struct bridge_backoff backoff;
    uint64_t next_attempt_ms;      /* IDLE: when to try again */
    uint64_t deadline_ms;          /* CONNECTING: when to give up waiting for CONNACK */
    unsigned attempt;              /* attempts since the last successful connection */
    bool lost;                     /* set by a callback: tear the client down after the call */
    int lost_rc;                   /* libmosquitto's reason */
    int refused_rc;                /* CONNACK return/reason code when the broker refused us */
    struct bridge_queue *out;                /* messages to publish on this side */
    struct bridge_queue *in;                 /* where this side's received messages go */
    bool paused;                   /* not reading: `in` is full (until it is half empty) */
    bool full_warned;              /* "buffer full" was logged; reset once `in` is empty */
};

enum bridge_phase {
    PHASE_RUNNING = 0,
    PHASE_DRAINING,                /* stop requested: forwarding what is buffered, briefly */
    PHASE_GOODBYE,                 /* health down (local) and 102 down (cloud) awaiting acks */
    PHASE_DONE,
};

struct bridge {
    const struct bridge_config *cfg;
    struct bridge_rules rules;
    struct bridge_health health;
    struct signer *signer;
    struct tls_client *tls;        /* NULL until the device key could be checked */
    struct relay *relay;
    uint64_t relay_failures;       /* relay failures before the current cloud attempt */
    struct bridge_side local, cloud;
    struct bridge_queue up, down;            /* local -> cloud, cloud -> local */
    int sig_fd;
    enum bridge_phase phase;
    uint64_t phase_deadline_ms;
    int exit_code;
    struct te_error fatal;         /* why the bridge gave up (exit_code BRIDGE_EXIT_CONFIG) */
    int health_published;          /* -1 none on this local connection, else 0 down / 1 up */
    int health_mid;                /* last health publish, until acknowledged */
    int goodbye_mid;               /* the 102 ...,down on the cloud, until acknowledged */
};

uint64_t bridge_now_ms(void);

/* bridge_local.c: the local broker (MQTT 5, persistent session, health). */
int bridge_local_connect(struct bridge *b, struct te_error *err);
/* Publishes the bridge's health (retained, QoS 1) when it differs from what this local
 * connection last published, or always when force. */
void bridge_local_publish_health(struct bridge *b, bool force);

/* bridge_cloud.c: the device key and TLS client, and the Cumulocity connection (MQTT 3.1.1). */
/* Opens the signer and the TLS client (checking the key against the certificate) and starts
 * the relay. TE_OK, or an error with err->retryable telling whether trying later may help. */
int bridge_cloud_prepare(struct bridge *b, struct te_error *err);
void bridge_cloud_release(struct bridge *b);
int bridge_cloud_connect(struct bridge *b, struct te_error *err);
/* Why the cloud attempt or connection ended, into err: the relay's TLS/signer error when the
 * relay failed during this attempt, else the broker's CONNACK or libmosquitto's reason. */
void bridge_cloud_cause(struct bridge *b, struct te_error *err);
/* The 102 service message with status down, QoS 1 (at stop). */
int bridge_cloud_publish_goodbye(struct bridge *b);

/* bridge.c: the parts the side files call back. */
/* Logs and counts an attempt's failure or a lost connection, drops the client, re-queues its
 * unacknowledged messages and schedules the next attempt. */
void bridge_side_down(struct bridge *b, struct bridge_side *s, const struct te_error *cause);
/* A message received on side s: queued on s->in under the other side's topic when a rule
 * forwards it (the log says why not). */
void bridge_side_received(struct bridge *b, struct bridge_side *s,
                          const struct mosquitto_message *msg);

#endif
