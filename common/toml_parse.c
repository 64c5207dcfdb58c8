/* The TOML parser's structure: values, arrays, inline tables, [headers] and key = value
 * lines into the node tree, with TOML's redefinition rules; records each line's span. */
#include "common/toml_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UTF8_BOM "\xEF\xBB\xBF" /* U+FEFF that some editors put at the start of a file */

/* "a.b.c" of a node for messages (raw keys, truncated to fit). */
static const char *path_str(const struct toml_node *n, char *buf, size_t size)
{
    const struct toml_node *chain[TOML_MAX_DEPTH * 2];
    size_t depth = 0, o = 0;

    for (; n != NULL && n->parent != NULL && depth < sizeof(chain) / sizeof(chain[0]); n = n->parent)
        chain[depth++] = n;
    buf[0] = '\0';
    while (depth > 0 && o < size) {
        int w = snprintf(buf + o, size - o, "%s%s", o ? "." : "", chain[--depth]->v.key);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    return buf;
}

/* Appends child to table; reports the limit (or memory) at pos. */
static int append_child(struct toml_parser *p, size_t pos, struct toml_node *table,
                        struct toml_node *child)
{
    int r = tn_append(table, child);
    if (r == TE_ERR_NOMEM)
        return tl_nomem(p);
    if (r != TE_OK)
        return tl_err(p, pos, r, "table has more than %d keys", TOML_MAX_TABLE_KEYS);
    return TE_OK;
}

static void set_entry(struct toml_node *n, size_t entry)
{
    n->entry = entry;
    for (size_t i = 0; i < n->v.n_items; i++)
        set_entry(tn_of(n->v.items[i]), entry);
}

static int parse_value(struct toml_parser *p, size_t depth, struct toml_node **out);

/* Inserts value under table t at the dotted key k, creating and checking the tables on
 * the way as TOML requires. Takes ownership of value. */
static int insert_dotted(struct toml_parser *p, struct toml_node *t, struct toml_key *k,
                         struct toml_node *value, bool in_inline)
{
    char where[TOML_MSG_MAX / 2];
    struct toml_node *cur = t, *child;
    int r;

    for (size_t i = 0; i + 1 < k->n; i++) {
        if ((child = tn_find(cur, k->seg[i])) == NULL) {
            if ((child = tn_new(TOML_TABLE, k->seg[i], strlen(k->seg[i]))) == NULL) {
                r = tl_nomem(p);
                goto fail;
            }
            child->flags = TN_DOTTED | (in_inline ? TN_INLINE : 0);
            child->block = p->block;
            child->v.line = k->line;
            child->v.col = k->col;
            if ((r = append_child(p, k->pos, cur, child)) != TE_OK) {
                tn_free(child);
                goto fail;
            }
        } else if (child->v.type != TOML_TABLE) {
            r = tl_err(p, k->pos, TE_ERR_MALFORMED, "'%s' is already a value (line %u)",
                     path_str(child, where, sizeof(where)), child->v.line);
            goto fail;
        } else if (child->flags & TN_FROZEN) {
            r = tl_err(p, k->pos, TE_ERR_MALFORMED,
                     "'%s' is an inline table (line %u) and cannot be extended",
                     path_str(child, where, sizeof(where)), child->v.line);
            goto fail;
        } else if (child->flags & TN_HEADER) {
            r = tl_err(p, k->pos, TE_ERR_MALFORMED,
                     "table '%s' has its own header (line %u): add the key there",
                     path_str(child, where, sizeof(where)), child->v.line);
            goto fail;
        } else if ((child->flags & TN_DOTTED) && child->block != p->block) {
            r = tl_err(p, k->pos, TE_ERR_MALFORMED,
                     "table '%s' was defined with dotted keys in another table (line %u)",
                     path_str(child, where, sizeof(where)), child->v.line);
            goto fail;
        } else if (!(child->flags & TN_DOTTED)) {
            child->flags |= TN_DOTTED;
            child->block = p->block;
        }
        cur = child;
    }
    if ((child = tn_find(cur, k->seg[k->n - 1])) != NULL) {
        r = tl_err(p, k->pos, TE_ERR_MALFORMED, "duplicate key '%s' (first defined at line %u)",
                 path_str(child, where, sizeof(where)), child->v.line);
        goto fail;
    }
    value->v.key = k->seg[k->n - 1];
    k->seg[k->n - 1] = NULL;
    value->v.line = k->line;
    value->v.col = k->col;
    if ((r = append_child(p, k->pos, cur, value)) != TE_OK)
        goto fail;
    return TE_OK;
fail:
    tn_free(value);
    return r;
}

static int parse_array(struct toml_parser *p, size_t depth, struct toml_node **out);
static int parse_inline_table(struct toml_parser *p, size_t depth, struct toml_node **out);

static int parse_value(struct toml_parser *p, size_t depth, struct toml_node **out)
{
    int c = tl_peek(p), r;
    char *str;
    size_t len;

    *out = NULL;
    if (depth > TOML_MAX_DEPTH)
        return tl_err(p, p->pos, TE_ERR_TOO_LARGE, "values nest deeper than %d levels", TOML_MAX_DEPTH);
    if (c == '"' || c == '\'') {
        if (tl_starts_with(p, c == '"' ? "\"\"\"" : "'''"))
            return tl_err(p, p->pos, TE_ERR_UNSUPPORTED,
                        "multi-line strings are not supported; use one line with escapes");
        r = c == '"' ? tl_basic_string(p, &str, &len) : tl_literal_string(p, &str, &len);
        if (r != TE_OK)
            return r;
        if ((*out = tn_new(TOML_STRING, NULL, 0)) == NULL) {
            free(str);
            return tl_nomem(p);
        }
        (*out)->v.str = str;
        return TE_OK;
    }
    if (c == '[')
        return parse_array(p, depth, out);
    if (c == '{')
        return parse_inline_table(p, depth, out);
    if (tl_starts_with(p, "true") || tl_starts_with(p, "false")) {
        bool t = c == 't';
        size_t end = p->pos + (t ? 4 : 5);
        if (end >= p->len || !tl_is_bare((unsigned char)p->s[end])) {
            if ((*out = tn_new(TOML_BOOL, NULL, 0)) == NULL)
                return tl_nomem(p);
            (*out)->v.boolean = t;
            p->pos = end;
            return TE_OK;
        }
    }
    if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'i' || c == 'n')
        return tl_parse_number(p, out);
    return tl_err(p, p->pos, TE_ERR_MALFORMED, "expected a value (strings must be in quotes)");
}

/* Whitespace, newlines and comments between array items. */
static int array_space(struct toml_parser *p)
{
    int r;
    for (;;) {
        tl_skip_ws(p);
        if (tl_peek(p) == '#') {
            if ((r = tl_comment(p)) != TE_OK)
                return r;
        } else if (tl_at_newline(p)) {
            tl_newline(p);
        } else {
            return TE_OK;
        }
    }
}

static int parse_array(struct toml_parser *p, size_t depth, struct toml_node **out)
{
    size_t start = p->pos;
    struct toml_node *arr = tn_new(TOML_ARRAY, NULL, 0), *item;
    int r;

    if (arr == NULL)
        return tl_nomem(p);
    p->pos++;
    for (;;) {
        if ((r = array_space(p)) != TE_OK)
            goto fail;
        if (tl_peek(p) == ']')
            break;
        if (tl_peek(p) == -1) {
            r = tl_err(p, start, TE_ERR_MALFORMED, "unterminated array (missing ']')");
            goto fail;
        }
        if (tl_peek(p) == '[' || tl_peek(p) == '{') {
            r = tl_err(p, p->pos, TE_ERR_UNSUPPORTED, tl_peek(p) == '[' ?
                     "nested arrays are not supported" : "arrays of tables are not supported");
            goto fail;
        }
        if ((r = parse_value(p, depth + 1, &item)) != TE_OK)
            goto fail;
        item->flags = TN_INLINE;
        if ((r = tn_append(arr, item)) != TE_OK) {
            tn_free(item);
            r = r == TE_ERR_NOMEM ? tl_nomem(p) : tl_err(p, start, r, "array has more than %d items",
                                                     TOML_MAX_ARRAY_ITEMS);
            goto fail;
        }
        if ((r = array_space(p)) != TE_OK)
            goto fail;
        if (tl_peek(p) == ',') {
            p->pos++;
            continue;
        }
        if (tl_peek(p) == ']')
            break;
        r = tl_peek(p) == -1 ? tl_err(p, start, TE_ERR_MALFORMED, "unterminated array (missing ']')")
                          : tl_err(p, p->pos, TE_ERR_MALFORMED, "expected ',' or ']' in the array");
        goto fail;
    }
    p->pos++;
    *out = arr;
    return TE_OK;
fail:
    tn_free(arr);
    return r;
}

static int parse_inline_table(struct toml_parser *p, size_t depth, struct toml_node **out)
{
    struct toml_node *t = tn_new(TOML_TABLE, NULL, 0), *val;
    struct toml_key k = {0};
    int r;

    if (t == NULL)
        return tl_nomem(p);
    t->flags = TN_FROZEN | TN_INLINE;
    p->pos++;
    tl_skip_ws(p);
    if (tl_peek(p) == '}') {
        p->pos++;
        *out = t;
        return TE_OK;
    }
    for (;;) {
        tl_skip_ws(p);
        if (tl_peek(p) == -1 || tl_at_newline(p)) {
            r = tl_err(p, p->pos, TE_ERR_MALFORMED, "an inline table must be on one line");
            goto fail;
        }
        if ((r = tl_parse_key(p, &k)) != TE_OK)
            goto fail;
        if (tl_peek(p) != '=') {
            r = tl_err(p, p->pos, TE_ERR_MALFORMED, "expected '=' after key");
            goto fail;
        }
        p->pos++;
        tl_skip_ws(p);
        if (depth + k.n > TOML_MAX_DEPTH) {
            r = tl_err(p, k.pos, TE_ERR_TOO_LARGE, "tables nest deeper than %d levels", TOML_MAX_DEPTH);
            goto fail;
        }
        if ((r = parse_value(p, depth + k.n, &val)) != TE_OK)
            goto fail;
        val->flags |= TN_INLINE;
        if ((r = insert_dotted(p, t, &k, val, true)) != TE_OK)
            goto fail;
        tl_key_free(&k);
        tl_skip_ws(p);
        if (tl_peek(p) == ',') {
            p->pos++;
            tl_skip_ws(p);
            if (tl_peek(p) == '}') {
                r = tl_err(p, p->pos, TE_ERR_MALFORMED, "trailing comma in an inline table");
                goto fail;
            }
            continue;
        }
        if (tl_peek(p) == '}')
            break;
        r = tl_err(p, p->pos, TE_ERR_MALFORMED, (tl_peek(p) == -1 || tl_at_newline(p))
                 ? "an inline table must be on one line" : "expected ',' or '}' in the inline table");
        goto fail;
    }
    p->pos++;
    *out = t;
    return TE_OK;
fail:
    tl_key_free(&k);
    tn_free(t);
    return r;
}

static int add_block(struct toml_parser *p, struct toml_node *table, size_t insert_at)
{
    struct toml_doc *d = p->doc;
    if (d->n_blocks == d->cap_blocks) {
        size_t ncap = d->cap_blocks ? d->cap_blocks * 2 : 8;
        struct toml_block *nb = realloc(d->blocks, ncap * sizeof(*nb));
        if (nb == NULL)
            return tl_nomem(p);
        d->blocks = nb;
        d->cap_blocks = ncap;
    }
    d->blocks[d->n_blocks].table = table;
    d->blocks[d->n_blocks].insert_at = insert_at;
    table->block = d->n_blocks;
    p->block = d->n_blocks++;
    return TE_OK;
}

static int parse_header(struct toml_parser *p)
{
    char where[TOML_MSG_MAX / 2];
    struct toml_key k = {0};
    struct toml_node *cur = p->doc->root, *child = NULL;
    size_t start = p->pos;
    int r;

    if (tl_starts_with(p, "[[")) {
        r = tl_err(p, start, TE_ERR_UNSUPPORTED, "arrays of tables ([[...]]) are not supported");
        goto exit;
    }
    p->pos++;
    tl_skip_ws(p);
    if ((r = tl_parse_key(p, &k)) != TE_OK)
        goto exit;
    if (tl_peek(p) != ']') {
        r = tl_err(p, p->pos, TE_ERR_MALFORMED, "expected ']' to close the table header");
        goto exit;
    }
    p->pos++;
    for (size_t i = 0; i < k.n; i++) {
        bool last = i + 1 == k.n;
        if ((child = tn_find(cur, k.seg[i])) == NULL) {
            if ((child = tn_new(TOML_TABLE, k.seg[i], strlen(k.seg[i]))) == NULL) {
                r = tl_nomem(p);
                goto exit;
            }
            if (last) {
                child->flags = TN_HEADER;
                child->v.line = k.line;
                child->v.col = k.col;
            }
            if ((r = append_child(p, k.pos, cur, child)) != TE_OK) {
                tn_free(child);
                goto exit;
            }
        } else if (child->v.type != TOML_TABLE) {
            r = tl_err(p, k.pos, TE_ERR_MALFORMED, "'%s' is already a value (line %u)",
                     path_str(child, where, sizeof(where)), child->v.line);
            goto exit;
        } else if (child->flags & TN_FROZEN) {
            r = tl_err(p, k.pos, TE_ERR_MALFORMED,
                     "'%s' is an inline table (line %u) and cannot be extended",
                     path_str(child, where, sizeof(where)), child->v.line);
            goto exit;
        } else if (last && (child->flags & TN_HEADER)) {
            r = tl_err(p, k.pos, TE_ERR_MALFORMED, "duplicate table [%s] (first defined at line %u)",
                     path_str(child, where, sizeof(where)), child->v.line);
            goto exit;
        } else if (last && (child->flags & TN_DOTTED)) {
            r = tl_err(p, k.pos, TE_ERR_MALFORMED,
                     "table '%s' was already defined with dotted keys (line %u)",
                     path_str(child, where, sizeof(where)), child->v.line);
            goto exit;
        } else if (last) {
            child->flags |= TN_HEADER;
            child->v.line = k.line;
            child->v.col = k.col;
        }
        cur = child;
    }
    if ((r = tl_end_of_line(p, "the table header")) != TE_OK)
        goto exit;
    r = add_block(p, cur, p->pos);
exit:
    tl_key_free(&k);
    return r;
}

static int add_entry(struct toml_parser *p, const struct toml_entry *e)
{
    struct toml_doc *d = p->doc;
    if (d->n_entries == d->cap_entries) {
        size_t ncap = d->cap_entries ? d->cap_entries * 2 : 16;
        struct toml_entry *ne = realloc(d->entries, ncap * sizeof(*ne));
        if (ne == NULL)
            return tl_nomem(p);
        d->entries = ne;
        d->cap_entries = ncap;
    }
    d->entries[d->n_entries] = *e;
    set_entry(e->node, d->n_entries++);
    d->blocks[e->block].insert_at = e->end;
    return TE_OK;
}

static int parse_keyval(struct toml_parser *p)
{
    struct toml_node *table = p->doc->blocks[p->block].table, *val = NULL;
    struct toml_entry e = {.line_start = p->line_start, .block = p->block};
    struct toml_key k = {0};
    size_t depth;
    int r;

    if ((r = tl_parse_key(p, &k)) != TE_OK)
        goto exit;
    if (tl_peek(p) != '=') {
        r = tl_err(p, p->pos, TE_ERR_MALFORMED, "expected '=' after key");
        goto exit;
    }
    p->pos++;
    tl_skip_ws(p);
    depth = tn_depth(table) + k.n;
    if (depth > TOML_MAX_DEPTH) {
        r = tl_err(p, k.pos, TE_ERR_TOO_LARGE, "tables nest deeper than %d levels", TOML_MAX_DEPTH);
        goto exit;
    }
    e.val_start = p->pos;
    if ((r = parse_value(p, depth, &val)) != TE_OK)
        goto exit;
    e.val_end = p->pos;
    e.node = val;
    r = insert_dotted(p, table, &k, val, false);
    val = NULL; /* owned by the tree now, or freed */
    if (r != TE_OK)
        goto exit;
    if ((r = tl_end_of_line(p, "the value")) != TE_OK)
        goto exit;
    e.end = p->pos;
    r = add_entry(p, &e);
exit:
    tl_key_free(&k);
    return r;
}

int toml_parse_doc(struct toml_doc *doc, struct te_error *err)
{
    struct toml_parser p = {.doc = doc, .s = doc->text, .len = doc->len, .line = 1, .err = err};
    size_t bad = tl_utf8_check((const unsigned char *)doc->text, doc->len);
    int r;

    if (bad < doc->len)
        return tl_err(&p, bad, TE_ERR_MALFORMED, "invalid UTF-8");
    /* Refused rather than skipped: an edit would otherwise have to drop it or keep it, and
     * either silently changes bytes that someone's editor put there. */
    if (doc->len >= sizeof(UTF8_BOM) - 1 && memcmp(doc->text, UTF8_BOM, sizeof(UTF8_BOM) - 1) == 0)
        return tl_err(&p, 0, TE_ERR_MALFORMED,
                      "a UTF-8 byte order mark is not supported; remove it");
    if ((r = add_block(&p, doc->root, 0)) != TE_OK)
        return r;
    while (p.pos < p.len) {
        int c;
        tl_skip_ws(&p);
        c = tl_peek(&p);
        if (c == -1)
            break;
        if (c == '#' || tl_at_newline(&p))
            r = tl_end_of_line(&p, "the comment");
        else if (c == '[')
            r = parse_header(&p);
        else if (c == '\r')
            r = tl_err(&p, p.pos, TE_ERR_MALFORMED, "carriage return without a line feed");
        else
            r = parse_keyval(&p);
        if (r != TE_OK)
            return r;
    }
    return TE_OK;
}
