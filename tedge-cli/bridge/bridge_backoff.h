/* Reconnect backoff of the bridge (mqtt.bridge.reconnect_policy.*): exponential from the initial
 * to the maximum interval with +-50% jitter, back to the initial after a stable connection. */
#ifndef TEDGE_CLI_BRIDGE_BACKOFF_H
#define TEDGE_CLI_BRIDGE_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

/* Upstream's randomization factor 0.5: a wait is the current interval times [0.5, 1.5],
 * never more than the maximum interval; the interval doubles after each failure. */
#define BACKOFF_JITTER_PERMILLE 500
/* Intervals are clamped to a week: longer is a configuration mistake, and the clamp keeps the
 * arithmetic far from overflowing. */
#define BACKOFF_LIMIT_MS (7ULL * 24 * 3600 * 1000)

/* Returns a uniformly random number in [0, 1000]; a test passes its own. */
typedef unsigned (*backoff_rand_fn)(void *arg);

struct bridge_backoff {
    uint64_t initial_ms;       /* mqtt.bridge.reconnect_policy.initial_interval */
    uint64_t max_ms;           /* ... .maximum_interval */
    uint64_t reset_window_ms;  /* ... .reset_window: after this long connected, start over */
    uint64_t current_ms;       /* the interval the next wait is drawn around */
    uint64_t connected_at_ms;  /* monotonic time of the last successful connection */
    bool connected;
    backoff_rand_fn rand;
    void *rand_arg;
};

/* A max below initial is raised to initial; a zero initial is 1 ms; both are clamped to
 * BACKOFF_LIMIT_MS. rand NULL = getrandom. */
void bridge_backoff_init(struct bridge_backoff *b, uint64_t initial_ms, uint64_t max_ms,
                         uint64_t reset_window_ms, backoff_rand_fn rand, void *rand_arg);
/* A connection succeeded at now_ms. */
void bridge_backoff_connected(struct bridge_backoff *b, uint64_t now_ms);
/* A connection failed or was lost at now_ms: the wait before the next attempt. When the last
 * connection stayed up for reset_window, the interval starts over at initial first. */
uint64_t bridge_backoff_next(struct bridge_backoff *b, uint64_t now_ms);

#endif
