/* getrandom(2)-backed randomness (see rand.h). Blocks only until the kernel's pool is
 * initialized at boot, never afterwards. */
#include "common/rand.h"

#include <errno.h>
#include <sys/random.h>

int te_random(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    while (len > 0) {
        ssize_t n = getrandom(out, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        out += n;
        len -= (size_t)n;
    }
    return 0;
}
