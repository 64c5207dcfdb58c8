/* Randomness for every product: the kernel's getrandom(2), stateless and thread-safe,
 * in the shape of mbedTLS's f_rng callback so it can be passed straight to mbedTLS. */
#ifndef TEDGE_COMMON_RAND_H
#define TEDGE_COMMON_RAND_H

#include <stddef.h>

/* Fills out with len random bytes; returns 0, or -1 if the kernel cannot supply them.
 * ctx is unused (mbedTLS f_rng signature). */
int te_random(void *ctx, unsigned char *out, size_t len);

#endif
