/* Project-wide error table and the structured error (see err.h).
 * One table drives the descriptions, the stable codes and the reverse lookup. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_entry {
    int value;
    const char *code;
    const char *desc;
};

static const struct err_entry err_table[] = {
#define TE_ERR_ROW(name, value, code, desc) {value, code, desc},
    TE_ERR_LIST(TE_ERR_ROW)
#undef TE_ERR_ROW
};

static const struct err_entry *err_lookup(int err)
{
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
        if (err_table[i].value == err)
            return &err_table[i];
    return NULL;
}

const char *te_strerror(int err)
{
    const struct err_entry *e = err_lookup(err);
    return e ? e->desc : "unknown error";
}

const char *te_errcode(int err)
{
    const struct err_entry *e = err_lookup(err);
    return e ? e->code : "internal_error";
}

int te_err_from_code(const char *code)
{
    if (code == NULL)
        return TE_ERR_INTERNAL;
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
        if (strcmp(err_table[i].code, code) == 0)
            return err_table[i].value;
    return TE_ERR_INTERNAL;
}

__attribute__((format(printf, 3, 0)))
static int error_vset(struct te_error *err, int code, const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    err->code = code;
    if (fmt != NULL)
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    else
        snprintf(err->msg, sizeof(err->msg), "%s", te_strerror(code));
    return code;
}

int te_error_set(struct te_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL) {
        err->has_ckr = false;
        err->ckr = 0;
        err->retryable = false;
    }
    error_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int te_error_set_ckr(struct te_error *err, int code, unsigned long ckr, bool retryable,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL) {
        err->has_ckr = true;
        err->ckr = ckr;
        err->retryable = retryable;
    }
    error_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void te_error_clear(struct te_error *err)
{
    if (err != NULL)
        memset(err, 0, sizeof(*err));
}

const char *te_error_message(const struct te_error *err)
{
    if (err == NULL)
        return "unknown error";
    if (err->msg[0] != '\0')
        return err->msg;
    return te_strerror(err->code);
}
