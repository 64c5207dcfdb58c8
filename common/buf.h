/* An opaque, bounded byte buffer: every append checks the buffer's maximum size, and the
 * contents are wiped before the memory is freed or reused (buffers may hold PINs or keys). */
#ifndef TEDGE_COMMON_BUF_H
#define TEDGE_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* A new empty buffer that never grows past max bytes; NULL when out of memory. */
struct buf *buf_new(size_t max);
/* Wipes and frees; NULL is a no-op. */
void buf_free(struct buf *b);
/* Wipes the contents and sets the length to 0; keeps the allocation. */
void buf_reset(struct buf *b);

const uint8_t *buf_data(const struct buf *b);
size_t buf_len(const struct buf *b);
size_t buf_max(const struct buf *b);

/* Appends; TE_ERR_TOO_LARGE past the maximum, TE_ERR_NOMEM when allocation fails. */
int buf_put(struct buf *b, const void *data, size_t len);
int buf_put_u8(struct buf *b, uint8_t v);
int buf_put_u32be(struct buf *b, uint32_t v);
int buf_put_str(struct buf *b, const char *s);
/* printf-style append; the result is NUL-terminated but the NUL is not counted in buf_len. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Room for len more bytes at *out; commit them with buf_commit(). */
int buf_reserve(struct buf *b, size_t len, uint8_t **out);
void buf_commit(struct buf *b, size_t len);
/* Removes the first n bytes (wiping what moves). */
void buf_consume(struct buf *b, size_t n);

/* Reads a big-endian u32 from p (which must hold 4 bytes). */
uint32_t get_u32be(const uint8_t *p);
void put_u32be(uint8_t *p, uint32_t v);

/* Wipes memory that held a secret so the compiler cannot drop the store. */
void te_wipe(void *p, size_t len);
/* Wipes a NUL-terminated secret and frees it; NULL is a no-op. */
void te_free_secret(char *s);

#endif
