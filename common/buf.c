/* Bounded byte buffer (see buf.h). Growth doubles up to the buffer's maximum; old
 * allocations are wiped before they are released because buffers may hold secrets. */
#include "common/buf.h"
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_ALLOC 64 /* first allocation; avoids many tiny reallocs */

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max;
};

void te_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0)
        explicit_bzero(p, len);
}

void te_free_secret(char *s)
{
    if (s == NULL)
        return;
    te_wipe(s, strlen(s));
    free(s);
}

struct buf *buf_new(size_t max)
{
    struct buf *b = calloc(1, sizeof(*b));
    if (b != NULL)
        b->max = max;
    return b;
}

void buf_free(struct buf *b)
{
    if (b == NULL)
        return;
    te_wipe(b->data, b->cap);
    free(b->data);
    free(b);
}

void buf_reset(struct buf *b)
{
    te_wipe(b->data, b->len);
    b->len = 0;
}

const uint8_t *buf_data(const struct buf *b) { return b->data; }
size_t buf_len(const struct buf *b) { return b->len; }
size_t buf_max(const struct buf *b) { return b->max; }

/* Ensures room for len more bytes plus a NUL terminator. */
static int buf_grow(struct buf *b, size_t len)
{
    size_t need, cap;
    uint8_t *n;

    if (len > b->max || b->len > b->max - len)
        return TE_ERR_TOO_LARGE;
    need = b->len + len + 1;
    if (need <= b->cap)
        return TE_OK;
    cap = b->cap ? b->cap : BUF_MIN_ALLOC;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    if ((n = malloc(cap)) == NULL)
        return TE_ERR_NOMEM;
    if (b->data != NULL) {
        memcpy(n, b->data, b->len);
        te_wipe(b->data, b->cap);
        free(b->data);
    }
    b->data = n;
    b->cap = cap;
    return TE_OK;
}

int buf_reserve(struct buf *b, size_t len, uint8_t **out)
{
    int r = buf_grow(b, len);
    if (r != TE_OK)
        return r;
    *out = b->data + b->len;
    return TE_OK;
}

void buf_commit(struct buf *b, size_t len)
{
    /* Only called after buf_reserve() of at least len: our own sizing, not peer input. */
    b->len += len;
    b->data[b->len] = 0;
}

int buf_put(struct buf *b, const void *data, size_t len)
{
    uint8_t *p;
    int r = buf_reserve(b, len, &p);
    if (r != TE_OK)
        return r;
    if (len > 0)
        memcpy(p, data, len);
    buf_commit(b, len);
    return TE_OK;
}

int buf_put_u8(struct buf *b, uint8_t v) { return buf_put(b, &v, 1); }

int buf_put_u32be(struct buf *b, uint32_t v)
{
    uint8_t p[4];
    put_u32be(p, v);
    return buf_put(b, p, 4);
}

int buf_put_str(struct buf *b, const char *s) { return buf_put(b, s, strlen(s)); }

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, r;
    uint8_t *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TE_ERR_INVALID;
    if ((r = buf_reserve(b, (size_t)n, &p)) != TE_OK)
        return r;
    va_start(ap, fmt);
    vsnprintf((char *)p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_commit(b, (size_t)n);
    return TE_OK;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    te_wipe(b->data + b->len - n, n);
    b->len -= n;
    b->data[b->len] = 0;
}

uint32_t get_u32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
