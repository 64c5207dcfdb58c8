/* TOML lexical scanning: UTF-8 checks, whitespace, comments, keys, strings and numbers,
 * and the file:line:col error reports that every part of the parser uses. */
#include "common/toml_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned tl_col_of(const char *s, size_t line_start, size_t pos)
{
    unsigned col = 1;
    for (size_t i = line_start; i < pos; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            col++;
    return col;
}

/* Finds pos's line by counting from the start: errors are rare. */
int tl_err(struct toml_parser *p, size_t pos, int code, const char *fmt, ...)
{
    char msg[TOML_MSG_MAX];
    unsigned line = 1;
    size_t line_start = 0;
    va_list ap;

    if (pos > p->len)
        pos = p->len;
    for (size_t i = 0; i < pos; i++)
        if (p->s[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return te_error_set(p->err, code, "%s:%u:%u: %s%s", p->doc->filename, line,
                        tl_col_of(p->s, line_start, pos),
                        code == TE_ERR_UNSUPPORTED ? "unsupported: " : "", msg);
}

int tl_nomem(struct toml_parser *p)
{
    return te_error_set(p->err, TE_ERR_NOMEM, "Out of memory parsing %s.", p->doc->filename);
}

size_t tl_utf8_check(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i], need, cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (len - i <= need)
            return i;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += need + 1;
    }
    return len;
}

int tl_peek(const struct toml_parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

bool tl_starts_with(const struct toml_parser *p, const char *lit)
{
    size_t n = strlen(lit);
    return p->len - p->pos >= n && memcmp(p->s + p->pos, lit, n) == 0;
}

bool tl_is_ctrl(int c) { return (c < 0x20 && c != '\t') || c == 0x7f; }
bool tl_is_bare(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

void tl_skip_ws(struct toml_parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t'))
        p->pos++;
}

bool tl_at_newline(const struct toml_parser *p)
{
    return tl_peek(p) == '\n' || (tl_peek(p) == '\r' && p->pos + 1 < p->len && p->s[p->pos + 1] == '\n');
}

void tl_newline(struct toml_parser *p)
{
    p->pos += p->s[p->pos] == '\r' ? 2 : 1;
    p->line++;
    p->line_start = p->pos;
}

int tl_comment(struct toml_parser *p)
{
    p->pos++; /* '#' */
    while (p->pos < p->len && !tl_at_newline(p)) {
        if (tl_is_ctrl((unsigned char)p->s[p->pos]))
            return tl_err(p, p->pos, TE_ERR_MALFORMED, "control character in a comment");
        p->pos++;
    }
    return TE_OK;
}

int tl_end_of_line(struct toml_parser *p, const char *after)
{
    int r;
    tl_skip_ws(p);
    if (tl_peek(p) == '#' && (r = tl_comment(p)) != TE_OK)
        return r;
    if (p->pos >= p->len)
        return TE_OK;
    if (tl_at_newline(p)) {
        tl_newline(p);
        return TE_OK;
    }
    return tl_err(p, p->pos, TE_ERR_MALFORMED, "expected a newline after %s", after);
}

static int tl_hex_digits(struct toml_parser *p, size_t at, unsigned n, unsigned long *out)
{
    unsigned long v = 0;
    for (unsigned i = 0; i < n; i++) {
        int c = at + i < p->len ? (unsigned char)p->s[at + i] : -1, d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return tl_err(p, at, TE_ERR_MALFORMED, "expected %u hexadecimal digits", n);
        v = v * 16 + (unsigned long)d;
    }
    *out = v;
    return TE_OK;
}

static size_t tl_utf8_put(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A single-line "basic" string with escapes; p->pos is at the opening quote. */
int tl_basic_string(struct toml_parser *p, char **out, size_t *out_len)
{
    size_t start = p->pos, i = p->pos + 1, o = 0, end = i;
    char *buf;
    int ret;

    /* Escapes never grow: size the copy by the raw span. */
    while (end < p->len && p->s[end] != '"' && p->s[end] != '\n')
        end += (p->s[end] == '\\' && end + 1 < p->len) ? 2 : 1;
    if ((buf = malloc(end - start + 1)) == NULL)
        return tl_nomem(p);
    for (;;) {
        int c = i < p->len ? (unsigned char)p->s[i] : -1;
        if (c == -1 || c == '\n' || (c == '\r' && i + 1 < p->len && p->s[i + 1] == '\n')) {
            ret = tl_err(p, start, TE_ERR_MALFORMED, "unterminated string (missing '\"')");
            goto exit;
        }
        if (c == '"') {
            i++;
            break;
        }
        if (c == '\\') {
            int e = i + 1 < p->len ? (unsigned char)p->s[i + 1] : -1;
            unsigned long cp = 0;
            const char *simple = strchr("btnfr\"\\", e > 0 ? e : 'x');
            if (e > 0 && simple != NULL) {
                buf[o++] = "\b\t\n\f\r\"\\"[simple - "btnfr\"\\"];
                i += 2;
                continue;
            }
            if (e != 'u' && e != 'U') {
                ret = tl_err(p, i, TE_ERR_MALFORMED, "invalid escape sequence in string");
                goto exit;
            }
            if ((ret = tl_hex_digits(p, i + 2, e == 'u' ? 4 : 8, &cp)) != TE_OK)
                goto exit;
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                ret = tl_err(p, i, TE_ERR_MALFORMED, "escape is not a Unicode scalar value");
                goto exit;
            }
            if (cp == 0) {
                ret = tl_err(p, i, TE_ERR_UNSUPPORTED, "NUL characters in strings are not supported");
                goto exit;
            }
            o += tl_utf8_put(buf + o, cp);
            i += e == 'u' ? 6 : 10;
            continue;
        }
        if (tl_is_ctrl(c)) {
            ret = tl_err(p, i, TE_ERR_MALFORMED, "control characters in strings must be escaped");
            goto exit;
        }
        buf[o++] = (char)c;
        i++;
    }
    buf[o] = '\0';
    p->pos = i;
    *out = buf;
    *out_len = o;
    return TE_OK;
exit:
    free(buf);
    return ret;
}

/* A single-line 'literal' string; p->pos is at the opening quote. */
int tl_literal_string(struct toml_parser *p, char **out, size_t *out_len)
{
    size_t start = p->pos, i = p->pos + 1;
    char *buf;

    for (;; i++) {
        int c = i < p->len ? (unsigned char)p->s[i] : -1;
        if (c == -1 || c == '\n' || c == '\r')
            return tl_err(p, start, TE_ERR_MALFORMED, "unterminated literal string (missing \"'\")");
        if (c == '\'')
            break;
        if (tl_is_ctrl(c))
            return tl_err(p, i, TE_ERR_MALFORMED, "control character in a literal string");
    }
    if ((buf = malloc(i - start)) == NULL)
        return tl_nomem(p);
    memcpy(buf, p->s + start + 1, i - start - 1);
    buf[i - start - 1] = '\0';
    *out = buf;
    *out_len = i - start - 1;
    p->pos = i + 1;
    return TE_OK;
}

void tl_key_free(struct toml_key *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->seg[i]);
    k->n = 0;
}

static int tl_simple_key(struct toml_parser *p, char **out)
{
    size_t start = p->pos, len = 0;
    int c = tl_peek(p), r;

    if (c == '"' || c == '\'') {
        if (tl_starts_with(p, c == '"' ? "\"\"\"" : "'''"))
            return tl_err(p, start, TE_ERR_MALFORMED, "a key cannot be a multi-line string");
        r = c == '"' ? tl_basic_string(p, out, &len) : tl_literal_string(p, out, &len);
        if (r != TE_OK)
            return r;
    } else if (c != -1 && tl_is_bare(c)) {
        while (p->pos < p->len && tl_is_bare((unsigned char)p->s[p->pos]))
            p->pos++;
        len = p->pos - start;
        if ((*out = strndup(p->s + start, len)) == NULL)
            return tl_nomem(p);
    } else {
        return tl_err(p, start, TE_ERR_MALFORMED, "expected a key");
    }
    if (len > TOML_MAX_KEY_LEN) {
        free(*out);
        *out = NULL;
        return tl_err(p, start, TE_ERR_TOO_LARGE, "key is longer than %d bytes", TOML_MAX_KEY_LEN);
    }
    return TE_OK;
}

int tl_parse_key(struct toml_parser *p, struct toml_key *k)
{
    int r;
    k->n = 0;
    k->pos = p->pos;
    k->line = p->line;
    k->col = tl_col_of(p->s, p->line_start, p->pos);
    for (;;) {
        if (k->n >= TOML_MAX_DEPTH)
            return tl_err(p, p->pos, TE_ERR_TOO_LARGE, "key has more than %d parts", TOML_MAX_DEPTH);
        if ((r = tl_simple_key(p, &k->seg[k->n])) != TE_OK)
            return r;
        k->n++;
        tl_skip_ws(p);
        if (tl_peek(p) != '.')
            return TE_OK;
        p->pos++;
        tl_skip_ws(p);
    }
}

static bool tl_is_digit(int c) { return c >= '0' && c <= '9'; }

int tl_parse_number(struct toml_parser *p, struct toml_node **out)
{
    size_t start = p->pos, end = p->pos, i;
    const char *t = p->s + start, *d;
    size_t tl, dl;
    bool neg = false;
    unsigned long long v = 0, limit;

    while (end < p->len && (tl_is_bare((unsigned char)p->s[end]) || p->s[end] == '+' ||
                            p->s[end] == '.' || p->s[end] == ':'))
        end++;
    tl = end - start;
    d = t;
    if (*d == '+' || *d == '-') {
        neg = *d == '-';
        d++;
    }
    dl = tl - (size_t)(d - t);
    if ((dl == 3 && (memcmp(d, "inf", 3) == 0 || memcmp(d, "nan", 3) == 0)))
        return tl_err(p, start, TE_ERR_UNSUPPORTED, "floating-point numbers are not supported");
    if (dl == 0 || !tl_is_digit(d[0]))
        return tl_err(p, start, TE_ERR_MALFORMED, "expected a value (strings must be in quotes)");
    if (memchr(t, ':', tl) != NULL ||
        (tl >= 5 && tl_is_digit(t[0]) && tl_is_digit(t[1]) && tl_is_digit(t[2]) && tl_is_digit(t[3]) && t[4] == '-'))
        return tl_err(p, start, TE_ERR_UNSUPPORTED, "dates and times are not supported; use a string");
    if (dl > 1 && d[0] == '0' && (d[1] == 'x' || d[1] == 'o' || d[1] == 'b'))
        return tl_err(p, start, TE_ERR_UNSUPPORTED,
                    "hexadecimal, octal and binary integers are not supported");
    if (memchr(d, '.', dl) != NULL || memchr(d, 'e', dl) != NULL || memchr(d, 'E', dl) != NULL)
        return tl_err(p, start, TE_ERR_UNSUPPORTED, "floating-point numbers are not supported");
    if (d[0] == '0' && dl > 1)
        return tl_err(p, start, TE_ERR_MALFORMED, "integers cannot have leading zeros");
    limit = neg ? 9223372036854775808ULL : 9223372036854775807ULL;
    for (i = 0; i < dl; i++) {
        if (d[i] == '_' && i > 0 && i + 1 < dl && tl_is_digit(d[i - 1]) && tl_is_digit(d[i + 1]))
            continue;
        if (!tl_is_digit(d[i]))
            return tl_err(p, start, TE_ERR_MALFORMED, "invalid integer");
        if (v > (limit - (unsigned)(d[i] - '0')) / 10)
            return tl_err(p, start, TE_ERR_MALFORMED, "integer out of range");
        v = v * 10 + (unsigned)(d[i] - '0');
    }
    if ((*out = tn_new(TOML_INTEGER, NULL, 0)) == NULL)
        return tl_nomem(p);
    (*out)->v.integer = neg ? (v == limit ? (long long)(-9223372036854775807LL - 1) : -(long long)v)
                            : (long long)v;
    p->pos = end;
    return TE_OK;
}

