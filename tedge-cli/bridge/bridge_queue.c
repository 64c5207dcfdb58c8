/* The bounded message queue (see bridge_queue.h): a doubly linked FIFO whose sent messages form
 * a prefix, with byte/message accounting and eviction of the oldest QoS 0 messages. */
#include "tedge-cli/bridge/bridge_queue.h"

#include <stdlib.h>
#include <string.h>

size_t bridge_msg_cost(size_t topic_len, size_t payload_len)
{
    return sizeof(struct bridge_msg) + topic_len + 1 + payload_len;
}

void bridge_queue_init(struct bridge_queue *q, size_t max_count, size_t max_bytes)
{
    memset(q, 0, sizeof(*q));
    q->max_count = max_count > 0 ? max_count : 1;
    q->max_bytes = max_bytes > 0 ? max_bytes : 1;
}

static void msg_free(struct bridge_msg *m)
{
    free(m->topic);
    free(m->payload);
    free(m);
}

/* Unlinks m and updates the accounting; the caller frees it. */
static void unlink_msg(struct bridge_queue *q, struct bridge_msg *m)
{
    if (q->unsent == m)
        q->unsent = m->next;
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        q->head = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    else
        q->tail = m->prev;
    q->count--;
    q->bytes -= bridge_msg_cost(strlen(m->topic), m->len);
    if (m->sent)
        q->inflight--;
    else if (m->qos == 0)
        q->qos0_unsent--;
}

void bridge_queue_clear(struct bridge_queue *q)
{
    struct bridge_msg *m = q->head, *next;

    while (m != NULL) {
        next = m->next;
        msg_free(m);
        m = next;
    }
    q->head = q->tail = q->unsent = NULL;
    q->count = q->bytes = q->inflight = q->qos0_unsent = 0;
}

static bool over_bound(const struct bridge_queue *q)
{
    return q->count > q->max_count || q->bytes > q->max_bytes;
}

/* Drops the oldest unsent QoS 0 messages while the queue is over its bound. */
static void evict_qos0(struct bridge_queue *q)
{
    struct bridge_msg *m = q->unsent, *next;

    while (over_bound(q) && q->qos0_unsent > 0 && m != NULL) {
        next = m->next;
        if (m->qos == 0) {
            unlink_msg(q, m);
            msg_free(m);
            q->dropped_qos0++;
        }
        m = next;
    }
}

int bridge_queue_push(struct bridge_queue *q, char *topic, const void *payload, size_t len,
                      int qos, bool retain)
{
    struct bridge_msg *m = calloc(1, sizeof(*m));

    if (m == NULL || (len > 0 && (m->payload = malloc(len)) == NULL)) {
        free(m);
        free(topic);
        return -1;
    }
    if (len > 0)
        memcpy(m->payload, payload, len);
    m->topic = topic;
    m->len = len;
    m->qos = qos > 0 ? 1 : 0;
    m->retain = retain;
    m->prev = q->tail;
    if (q->tail != NULL)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    if (q->unsent == NULL)
        q->unsent = m;
    q->count++;
    q->bytes += bridge_msg_cost(strlen(topic), len);
    if (m->qos == 0)
        q->qos0_unsent++;
    evict_qos0(q);
    return 0;
}

bool bridge_queue_full(const struct bridge_queue *q)
{
    return (q->count >= q->max_count || q->bytes >= q->max_bytes) && q->qos0_unsent == 0;
}

bool bridge_queue_resumable(const struct bridge_queue *q)
{
    return (q->count <= q->max_count / 2 && q->bytes <= q->max_bytes / 2) || q->qos0_unsent > 0;
}

bool bridge_queue_empty(const struct bridge_queue *q) { return q->head == NULL; }

struct bridge_msg *bridge_queue_next_unsent(const struct bridge_queue *q) { return q->unsent; }

void bridge_queue_mark_sent(struct bridge_queue *q, struct bridge_msg *m, int mid)
{
    if (m->qos == 0) {
        unlink_msg(q, m);
        msg_free(m);
        q->forwarded++;
        return;
    }
    if (q->unsent == m)
        q->unsent = m->next;
    m->sent = true;
    m->mid = mid;
    q->inflight++;
}

void bridge_queue_drop(struct bridge_queue *q, struct bridge_msg *m)
{
    unlink_msg(q, m);
    msg_free(m);
    q->dropped++;
}

bool bridge_queue_ack(struct bridge_queue *q, int mid)
{
    for (struct bridge_msg *m = q->head; m != NULL && m->sent; m = m->next) {
        if (m->mid == mid) {
            unlink_msg(q, m);
            msg_free(m);
            q->forwarded++;
            return true;
        }
    }
    return false;
}

void bridge_queue_connection_lost(struct bridge_queue *q)
{
    for (struct bridge_msg *m = q->head; m != NULL && m->sent; m = m->next) {
        m->sent = false;
        m->mid = 0;
    }
    q->inflight = 0;
    q->unsent = q->head;
}
