/* The bridge's bounded message queue, one per direction: messages received from one broker and
 * not yet acknowledged by the other, in arrival order, with the bound and the QoS 0 drop policy. */
#ifndef TEDGE_CLI_BRIDGE_QUEUE_H
#define TEDGE_CLI_BRIDGE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default bound per direction (docs/bridge.md): enough for minutes of a busy device's telemetry
 * during a cloud outage; past it the bridge stops reading and the broker keeps the rest. */
#define BRIDGE_QUEUE_DEFAULT_MAX_MESSAGES 10000
#define BRIDGE_QUEUE_DEFAULT_MAX_BYTES (16u * 1024 * 1024)

/* One message. topic is the destination topic (already mapped). */
struct bridge_msg {
    char *topic;
    void *payload;
    size_t len;
    int qos;                   /* 0 or 1 */
    bool retain;
    bool sent;                 /* handed to the destination on this connection, awaiting its ack */
    int mid;                   /* the destination's message id while sent */
    struct bridge_msg *prev, *next;
};

struct bridge_queue {
    struct bridge_msg *head, *tail;
    struct bridge_msg *unsent; /* first message not yet sent: the sent ones are a prefix */
    size_t count, bytes;       /* every message held, sent or not */
    size_t inflight;           /* sent and not acknowledged */
    size_t qos0_unsent;        /* QoS 0 messages that may still be dropped */
    size_t max_count, max_bytes;
    uint64_t dropped_qos0;     /* QoS 0 messages dropped to stay within the bound */
    uint64_t forwarded;        /* messages acknowledged (QoS 1) or handed over (QoS 0) */
    uint64_t dropped;          /* messages the destination could never take (bridge_queue_drop) */
};

/* Bytes a message counts against max_bytes: payload, topic and bookkeeping. */
size_t bridge_msg_cost(size_t topic_len, size_t payload_len);

void bridge_queue_init(struct bridge_queue *q, size_t max_count, size_t max_bytes);
/* Frees every message. */
void bridge_queue_clear(struct bridge_queue *q);

/* Appends a copy of the message (topic is taken over: malloc'd, freed by the queue). When the
 * queue is then over its bound, the oldest unsent QoS 0 messages are dropped until it fits
 * or none is left; QoS 1 messages are never dropped (the caller stops reading instead, see
 * bridge_queue_full). Returns 0, or -1 when out of memory (nothing is queued, topic is freed). */
int bridge_queue_push(struct bridge_queue *q, char *topic, const void *payload, size_t len,
                      int qos, bool retain);
/* At or over the bound with no QoS 0 message left to drop: the caller must not read more
 * messages from the source broker (which keeps them: QoS 1 in the bridge's persistent session). */
bool bridge_queue_full(const struct bridge_queue *q);
/* At most half full (or QoS 0 left to drop): a caller that stopped reading at bridge_queue_full
 * starts again (the gap keeps it from toggling on every message). */
bool bridge_queue_resumable(const struct bridge_queue *q);
bool bridge_queue_empty(const struct bridge_queue *q);

/* The first message not yet sent on the current connection, or NULL. */
struct bridge_msg *bridge_queue_next_unsent(const struct bridge_queue *q);
/* m (which must be bridge_queue_next_unsent) was handed to the destination: a QoS 1 message
 * waits for its ack under mid, a QoS 0 message is done and freed. */
void bridge_queue_mark_sent(struct bridge_queue *q, struct bridge_msg *m, int mid);
/* Removes m (which must be bridge_queue_next_unsent) without sending it: the destination can
 * never take it (too large, invalid). Counted in dropped. */
void bridge_queue_drop(struct bridge_queue *q, struct bridge_msg *m);
/* The destination acknowledged mid: the message is removed. Returns false for an unknown mid
 * (a message the bridge published itself, like the health status). */
bool bridge_queue_ack(struct bridge_queue *q, int mid);
/* The destination's connection is gone: every sent message is unsent again, to be sent again
 * in the same order on the next connection (at least once: the broker may have it already). */
void bridge_queue_connection_lost(struct bridge_queue *q);

#endif
