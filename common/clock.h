/* Monotonic time for deadlines, timeouts and durations (never the wall clock, which can
 * jump when NTP or the user sets it). */
#ifndef TEDGE_COMMON_CLOCK_H
#define TEDGE_COMMON_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC; only differences between two readings mean anything. */
int64_t te_monotonic_ms(void);

#endif
