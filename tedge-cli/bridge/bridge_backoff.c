/* Reconnect backoff (see bridge_backoff.h): the interval sequence, its jitter and its reset. */
#include "tedge-cli/bridge/bridge_backoff.h"

#include <stddef.h>

#include "common/rand.h"

static unsigned default_rand(void *arg)
{
    uint32_t v = 0;

    (void)arg;
    if (te_random(NULL, (unsigned char *)&v, sizeof(v)) != 0)
        return 500; /* no randomness: the middle of the range, still a valid wait */
    return (unsigned)(v % 1001u);
}

void bridge_backoff_init(struct bridge_backoff *b, uint64_t initial_ms, uint64_t max_ms,
                         uint64_t reset_window_ms, backoff_rand_fn rand, void *rand_arg)
{
    if (initial_ms > BACKOFF_LIMIT_MS)
        initial_ms = BACKOFF_LIMIT_MS;
    if (max_ms > BACKOFF_LIMIT_MS)
        max_ms = BACKOFF_LIMIT_MS;
    b->initial_ms = initial_ms > 0 ? initial_ms : 1;
    b->max_ms = max_ms >= b->initial_ms ? max_ms : b->initial_ms;
    b->reset_window_ms = reset_window_ms;
    b->current_ms = b->initial_ms;
    b->connected_at_ms = 0;
    b->connected = false;
    b->rand = rand != NULL ? rand : default_rand;
    b->rand_arg = rand_arg;
}

void bridge_backoff_connected(struct bridge_backoff *b, uint64_t now_ms)
{
    b->connected = true;
    b->connected_at_ms = now_ms;
}

uint64_t bridge_backoff_next(struct bridge_backoff *b, uint64_t now_ms)
{
    unsigned r;
    uint64_t factor, wait;

    if (b->connected && now_ms >= b->connected_at_ms &&
        now_ms - b->connected_at_ms >= b->reset_window_ms)
        b->current_ms = b->initial_ms;
    b->connected = false;
    r = b->rand(b->rand_arg);
    if (r > 1000)
        r = 1000;
    /* factor in permille: 1000 - J .. 1000 + J */
    factor = 1000u - BACKOFF_JITTER_PERMILLE + (uint64_t)r * 2u * BACKOFF_JITTER_PERMILLE / 1000u;
    /* current_ms <= max_ms <= BACKOFF_LIMIT_MS: no overflow */
    wait = b->current_ms * factor / 1000u;
    if (wait > b->max_ms)
        wait = b->max_ms;
    if (wait == 0)
        wait = 1;
    b->current_ms = b->current_ms > b->max_ms / 2 ? b->max_ms : b->current_ms * 2;
    return wait;
}
