/* TOML rendering: keys (bare when possible), strings with escapes, values, inline tables,
 * and the canonical dump of a whole document used by tests and the fuzzer. */
#include "common/toml_internal.h"
#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tw_string(struct buf *b, const char *s)
{
    int r = buf_put_u8(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; r == TE_OK && *p; p++) {
        switch (*p) {
        case '"': r = buf_put_str(b, "\\\""); break;
        case '\\': r = buf_put_str(b, "\\\\"); break;
        case '\b': r = buf_put_str(b, "\\b"); break;
        case '\t': r = buf_put_str(b, "\\t"); break;
        case '\n': r = buf_put_str(b, "\\n"); break;
        case '\f': r = buf_put_str(b, "\\f"); break;
        case '\r': r = buf_put_str(b, "\\r"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                r = buf_printf(b, "\\u%04X", *p);
            else
                r = buf_put_u8(b, *p);
        }
    }
    return r == TE_OK ? buf_put_u8(b, '"') : r;
}

int tw_key(struct buf *b, const char *key)
{
    bool bare = key[0] != '\0';
    for (const char *p = key; *p && bare; p++)
        bare = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
               *p == '_' || *p == '-';
    return bare ? buf_put_str(b, key) : tw_string(b, key);
}

int tw_value(struct buf *b, const struct toml_value *v)
{
    int r = TE_OK;

    switch (v->type) {
    case TOML_STRING:
        return tw_string(b, v->str);
    case TOML_INTEGER:
        return buf_printf(b, "%lld", v->integer);
    case TOML_BOOL:
        return buf_put_str(b, v->boolean ? "true" : "false");
    case TOML_ARRAY:
        r = buf_put_u8(b, '[');
        for (size_t i = 0; r == TE_OK && i < v->n_items; i++) {
            if (i > 0)
                r = buf_put_str(b, ", ");
            if (r == TE_OK)
                r = tw_value(b, v->items[i]);
        }
        return r == TE_OK ? buf_put_u8(b, ']') : r;
    case TOML_TABLE:
        if (v->n_items == 0)
            return buf_put_str(b, "{}");
        r = buf_put_str(b, "{ ");
        for (size_t i = 0; r == TE_OK && i < v->n_items; i++) {
            if (i > 0)
                r = buf_put_str(b, ", ");
            if (r == TE_OK)
                r = tw_key(b, v->items[i]->key);
            if (r == TE_OK)
                r = buf_put_str(b, " = ");
            if (r == TE_OK)
                r = tw_value(b, v->items[i]);
        }
        return r == TE_OK ? buf_put_str(b, " }") : r;
    }
    return TE_ERR_INTERNAL;
}

static int dump_path(struct buf *b, const struct toml_node *n)
{
    int r = TE_OK;
    if (n->parent != NULL && n->parent->parent != NULL) {
        r = dump_path(b, n->parent);
        if (r == TE_OK)
            r = buf_put_u8(b, '.');
    }
    return r == TE_OK ? tw_key(b, n->v.key) : r;
}

static int dump_table(struct buf *b, const struct toml_node *t)
{
    int r = TE_OK;

    if (t->parent != NULL) {
        r = buf_put_u8(b, '[');
        if (r == TE_OK)
            r = dump_path(b, t);
        if (r == TE_OK)
            r = buf_put_str(b, "]\n");
    }
    for (size_t i = 0; r == TE_OK && i < t->v.n_items; i++) {
        const struct toml_value *v = t->v.items[i];
        if (v->type == TOML_TABLE)
            continue;
        r = tw_key(b, v->key);
        if (r == TE_OK)
            r = buf_put_str(b, " = ");
        if (r == TE_OK)
            r = tw_value(b, v);
        if (r == TE_OK)
            r = buf_put_u8(b, '\n');
    }
    for (size_t i = 0; r == TE_OK && i < t->v.n_items; i++)
        if (t->v.items[i]->type == TOML_TABLE)
            r = dump_table(b, tn_of(t->v.items[i]));
    return r;
}

int toml_dump(const struct toml_doc *doc, char **out, size_t *len)
{
    /* Escapes can grow a string six-fold; headers repeat paths. */
    struct buf *b = buf_new((size_t)TOML_MAX_SIZE * 8);
    int r;

    *out = NULL;
    if (b == NULL)
        return TE_ERR_NOMEM;
    if ((r = dump_table(b, doc->root)) == TE_OK && (*out = malloc(buf_len(b) + 1)) == NULL)
        r = TE_ERR_NOMEM;
    if (r == TE_OK) {
        if (buf_len(b) > 0)
            memcpy(*out, buf_data(b), buf_len(b));
        (*out)[buf_len(b)] = '\0';
        if (len != NULL)
            *len = buf_len(b);
    }
    buf_free(b);
    return r;
}
