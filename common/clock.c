/* Monotonic clock helper (see clock.h). CLOCK_MONOTONIC cannot fail on Linux for a valid
 * clock id, so there is no error path. */
#include "common/clock.h"

#include <time.h>

int64_t te_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
