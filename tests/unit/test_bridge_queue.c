/* Unit tests for tedge-cli/bridge/bridge_queue: FIFO order across sends, acks and reconnects,
 * the message and byte bounds, QoS 0 eviction (oldest first, never QoS 1), and the accounting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tedge-cli/bridge/bridge_queue.h"

static void push(struct bridge_queue *q, const char *topic, const char *payload, int qos)
{
    char *t = strdup(topic);
    assert_non_null(t);
    assert_int_equal(bridge_queue_push(q, t, payload, strlen(payload), qos, false), 0);
}

/* Sends everything the window allows (QoS 1 get mids from next_mid on). */
static int send_all(struct bridge_queue *q, int *next_mid, size_t window)
{
    struct bridge_msg *m;
    int n = 0;

    while (q->inflight < window && (m = bridge_queue_next_unsent(q)) != NULL) {
        bridge_queue_mark_sent(q, m, (*next_mid)++);
        n++;
    }
    return n;
}

static void test_fifo_send_and_ack(void **state)
{
    struct bridge_queue q;
    struct bridge_msg *m;
    int mid = 1;

    (void)state;
    bridge_queue_init(&q, 100, 1 << 20);
    assert_true(bridge_queue_empty(&q));
    push(&q, "a", "1", 1);
    push(&q, "a", "2", 1);
    push(&q, "b", "3", 0);
    push(&q, "a", "4", 1);
    assert_int_equal(q.count, 4);
    m = bridge_queue_next_unsent(&q);
    assert_string_equal(m->topic, "a");
    assert_memory_equal(m->payload, "1", 1);
    assert_int_equal(send_all(&q, &mid, 2), 2); /* window of two: "1" and "2" */
    assert_int_equal(q.inflight, 2);
    assert_memory_equal(bridge_queue_next_unsent(&q)->payload, "3", 1);
    assert_int_equal(send_all(&q, &mid, 2), 0); /* window full */
    assert_true(bridge_queue_ack(&q, 1));
    assert_false(bridge_queue_ack(&q, 1)); /* already acknowledged */
    assert_false(bridge_queue_ack(&q, 77)); /* not ours (a health publish) */
    /* "3" is QoS 0: done as soon as it is handed over, then "4" is sent with mid 4 */
    assert_int_equal(send_all(&q, &mid, 2), 2);
    assert_int_equal(q.count, 2);
    assert_int_equal(q.inflight, 2);
    assert_true(bridge_queue_ack(&q, 4));
    assert_true(bridge_queue_ack(&q, 2)); /* acks may come in any order */
    assert_true(bridge_queue_empty(&q));
    assert_int_equal(q.forwarded, 4);
    assert_int_equal(q.bytes, 0);
    bridge_queue_clear(&q);
}

static void test_connection_lost_resends_in_order(void **state)
{
    struct bridge_queue q;
    char payload[16];
    int mid = 1, expect = 0;
    struct bridge_msg *m;

    (void)state;
    bridge_queue_init(&q, 1000, 1 << 20);
    for (int i = 0; i < 50; i++) {
        snprintf(payload, sizeof(payload), "%d", i);
        push(&q, i % 2 ? "odd" : "even", payload, 1);
    }
    assert_int_equal(send_all(&q, &mid, 20), 20);
    for (int i = 1; i <= 5; i++)
        assert_true(bridge_queue_ack(&q, i)); /* 0..4 delivered */
    bridge_queue_connection_lost(&q); /* 5..19 unacknowledged */
    assert_int_equal(q.inflight, 0);
    assert_int_equal(q.count, 45);
    /* the next connection sends 5..49, in the original order, with new mids */
    expect = 5;
    mid = 1;
    while ((m = bridge_queue_next_unsent(&q)) != NULL) {
        snprintf(payload, sizeof(payload), "%d", expect);
        assert_int_equal(m->len, strlen(payload));
        assert_memory_equal(m->payload, payload, m->len);
        assert_string_equal(m->topic, expect % 2 ? "odd" : "even");
        bridge_queue_mark_sent(&q, m, mid);
        assert_true(bridge_queue_ack(&q, mid++));
        expect++;
    }
    assert_int_equal(expect, 50);
    assert_true(bridge_queue_empty(&q));
    bridge_queue_clear(&q);
}

static void test_message_bound_stops_reading_qos1(void **state)
{
    struct bridge_queue q;

    (void)state;
    bridge_queue_init(&q, 3, 1 << 20);
    push(&q, "t", "1", 1);
    push(&q, "t", "2", 1);
    assert_false(bridge_queue_full(&q));
    push(&q, "t", "3", 1);
    assert_true(bridge_queue_full(&q));
    /* QoS 1 past the bound (a read already under way) is kept, never dropped */
    push(&q, "t", "4", 1);
    assert_int_equal(q.count, 4);
    assert_int_equal(q.dropped_qos0, 0);
    assert_true(bridge_queue_full(&q));
    bridge_queue_clear(&q);
    assert_true(bridge_queue_empty(&q));
    assert_int_equal(q.bytes, 0);
}

static void test_resume_only_when_half_empty(void **state)
{
    struct bridge_queue q;
    int mid = 1;

    (void)state;
    bridge_queue_init(&q, 10, 1 << 20);
    for (int i = 0; i < 10; i++)
        push(&q, "t", "x", 1);
    assert_true(bridge_queue_full(&q));
    assert_false(bridge_queue_resumable(&q));
    assert_int_equal(send_all(&q, &mid, 10), 10);
    for (int i = 1; i <= 4; i++)
        assert_true(bridge_queue_ack(&q, i));
    assert_false(bridge_queue_full(&q)); /* 6 left: no longer full ... */
    assert_false(bridge_queue_resumable(&q)); /* ... but not half empty either */
    assert_true(bridge_queue_ack(&q, 5));
    assert_true(bridge_queue_resumable(&q)); /* 5 of 10 */
    bridge_queue_clear(&q);
}

static void test_qos0_evicted_oldest_first(void **state)
{
    struct bridge_queue q;
    struct bridge_msg *m;

    (void)state;
    bridge_queue_init(&q, 3, 1 << 20);
    push(&q, "t", "q0-a", 0);
    push(&q, "t", "q1-b", 1);
    push(&q, "t", "q0-c", 0);
    /* full, but QoS 0 can still make room: keep reading */
    assert_false(bridge_queue_full(&q));
    push(&q, "t", "q1-d", 1); /* evicts q0-a, the oldest QoS 0 */
    assert_int_equal(q.count, 3);
    assert_int_equal(q.dropped_qos0, 1);
    push(&q, "t", "q0-e", 0); /* evicts q0-c */
    assert_int_equal(q.dropped_qos0, 2);
    push(&q, "t", "q1-f", 1); /* evicts q0-e */
    assert_int_equal(q.dropped_qos0, 3);
    assert_true(bridge_queue_full(&q)); /* only QoS 1 left: stop reading */
    m = bridge_queue_next_unsent(&q);
    assert_memory_equal(m->payload, "q1-b", 4);
    assert_memory_equal(m->next->payload, "q1-d", 4);
    assert_memory_equal(m->next->next->payload, "q1-f", 4);
    assert_null(m->next->next->next);
    bridge_queue_clear(&q);
}

static void test_sent_qos1_is_never_evicted(void **state)
{
    struct bridge_queue q;
    int mid = 1;

    (void)state;
    bridge_queue_init(&q, 2, 1 << 20);
    push(&q, "t", "a", 1);
    assert_int_equal(send_all(&q, &mid, 10), 1);
    push(&q, "t", "b", 0);
    push(&q, "t", "c", 0); /* over: evicts b, never the sent a */
    assert_int_equal(q.count, 2);
    assert_int_equal(q.dropped_qos0, 1);
    assert_true(bridge_queue_ack(&q, 1));
    assert_memory_equal(bridge_queue_next_unsent(&q)->payload, "c", 1);
    bridge_queue_clear(&q);
}

static void test_byte_bound(void **state)
{
    struct bridge_queue q;
    char big[1000];
    size_t one = bridge_msg_cost(1, sizeof(big));

    (void)state;
    memset(big, 'x', sizeof(big));
    bridge_queue_init(&q, 1000, 3 * one);
    for (int i = 0; i < 2; i++) {
        char *t = strdup("t");
        assert_int_equal(bridge_queue_push(&q, t, big, sizeof(big), 1, true), 0);
    }
    assert_false(bridge_queue_full(&q));
    assert_int_equal(q.bytes, 2 * one);
    char *t = strdup("t");
    assert_int_equal(bridge_queue_push(&q, t, big, sizeof(big), 1, true), 0);
    assert_true(bridge_queue_full(&q));
    assert_true(bridge_queue_next_unsent(&q)->retain);
    /* a message larger than the whole bound still goes through (alone) */
    bridge_queue_clear(&q);
    bridge_queue_init(&q, 1000, 10);
    t = strdup("t");
    assert_int_equal(bridge_queue_push(&q, t, big, sizeof(big), 1, false), 0);
    assert_int_equal(q.count, 1);
    assert_true(bridge_queue_full(&q));
    bridge_queue_clear(&q);
}

static void test_drop_unsendable(void **state)
{
    struct bridge_queue q;
    struct bridge_msg *m;

    (void)state;
    bridge_queue_init(&q, 10, 1 << 20);
    push(&q, "t", "bad", 1);
    push(&q, "t", "good", 1);
    m = bridge_queue_next_unsent(&q);
    bridge_queue_drop(&q, m);
    assert_int_equal(q.dropped, 1);
    assert_memory_equal(bridge_queue_next_unsent(&q)->payload, "good", 4);
    assert_int_equal(q.count, 1);
    bridge_queue_clear(&q);
}

static void test_empty_payload(void **state)
{
    struct bridge_queue q;
    char *t = strdup("t");

    (void)state;
    bridge_queue_init(&q, 10, 1 << 20);
    /* an empty payload: what clears a retained message */
    assert_int_equal(bridge_queue_push(&q, t, NULL, 0, 1, true), 0);
    assert_int_equal(bridge_queue_next_unsent(&q)->len, 0);
    bridge_queue_clear(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_send_and_ack),
        cmocka_unit_test(test_connection_lost_resends_in_order),
        cmocka_unit_test(test_message_bound_stops_reading_qos1),
        cmocka_unit_test(test_resume_only_when_half_empty),
        cmocka_unit_test(test_qos0_evicted_oldest_first),
        cmocka_unit_test(test_sent_qos1_is_never_evicted),
        cmocka_unit_test(test_byte_bound),
        cmocka_unit_test(test_drop_unsendable),
        cmocka_unit_test(test_empty_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
