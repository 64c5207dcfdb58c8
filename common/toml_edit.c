/* Edits that keep the document: set/unset splice new bytes into the original text (one
 * value, one line, or one new [table] at the end), then parse the result again. */
#include "common/toml_internal.h"
#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replaces text[start, end) with ins and re-parses; on any failure doc is unchanged. */
static int splice(struct toml_doc *doc, size_t start, size_t end, const struct buf *ins,
                  struct te_error *err)
{
    size_t ins_len = ins ? buf_len(ins) : 0, len;
    struct toml_doc *fresh = NULL;
    struct te_error perr = {0};
    char *text;
    int r;

    if (doc->len - (end - start) > TOML_MAX_SIZE - ins_len)
        return te_error_set(err, TE_ERR_TOO_LARGE, "%s would grow past the limit of %d bytes.",
                            doc->filename, TOML_MAX_SIZE);
    len = doc->len - (end - start) + ins_len;
    if ((text = malloc(len + 1)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory editing %s.", doc->filename);
    memcpy(text, doc->text, start);
    if (ins_len > 0)
        memcpy(text + start, buf_data(ins), ins_len);
    memcpy(text + start + ins_len, doc->text + end, doc->len - end);
    text[len] = '\0';
    r = toml_parse(text, len, doc->filename, &fresh, &perr);
    te_wipe(text, len); /* the text may hold a PIN */
    free(text);
    if (r != TE_OK)
        return te_error_set(err, TE_ERR_INTERNAL,
                            "Editing %s produced invalid TOML (%s); the file was left unchanged.",
                            doc->filename, te_error_message(&perr));
    /* Swap the fresh document's contents into the caller's handle. */
    struct toml_doc tmp = *doc;
    *doc = *fresh;
    *fresh = tmp;
    toml_free(fresh);
    return TE_OK;
}

/* Rebuilds the tree from the unchanged text after a failed in-tree edit. */
static void restore(struct toml_doc *doc)
{
    (void)splice(doc, 0, 0, NULL, NULL);
}

static int check_path(const char *const *path, size_t n, struct te_error *err)
{
    if (path == NULL || n == 0 || n > TOML_MAX_DEPTH)
        return te_error_set(err, TE_ERR_INVALID, "A key needs between 1 and %d parts.", TOML_MAX_DEPTH);
    for (size_t i = 0; i < n; i++)
        if (path[i] == NULL || strlen(path[i]) > TOML_MAX_KEY_LEN)
            return te_error_set(err, TE_ERR_INVALID, "A key part is missing or too long.");
    return TE_OK;
}

static int put_keys(struct buf *b, const char *const *path, size_t from, size_t to)
{
    int r = TE_OK;
    for (size_t i = from; r == TE_OK && i < to; i++) {
        if (i > from)
            r = buf_put_u8(b, '.');
        if (r == TE_OK)
            r = tw_key(b, path[i]);
    }
    return r;
}

/* Re-renders the entry that holds node inside an inline value, after the tree was changed. */
static int rerender_entry(struct toml_doc *doc, size_t entry, struct te_error *err)
{
    struct toml_entry *e = &doc->entries[entry];
    struct buf *b = buf_new(TOML_MAX_SIZE);
    int r;

    if (b == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory editing %s.", doc->filename);
    if ((r = tw_value(b, &e->node->v)) != TE_OK)
        r = te_error_set(err, r, "Cannot render the new value for %s.", doc->filename);
    else
        r = splice(doc, e->val_start, e->val_end, b, err);
    buf_free(b);
    return r;
}

/* Adds a new leaf into an inline table (creating inline sub-tables) or replaces one there. */
static int set_in_inline(struct toml_doc *doc, struct toml_node *cur, const char *const *path,
                         size_t k, size_t n, const struct toml_value *value, struct te_error *err)
{
    size_t entry = cur->entry;
    struct toml_node *leaf, *chain = NULL, *tail = NULL;

    if ((leaf = tn_from_value(value, path[n - 1], 0)) == NULL)
        return te_error_set(err, TE_ERR_INVALID, "The value to write is not a scalar or array.");
    for (size_t i = k; i + 1 < n; i++) {
        struct toml_node *t = tn_new(TOML_TABLE, path[i], strlen(path[i]));
        if (t == NULL || (tail != NULL && tn_append(tail, t) != TE_OK)) {
            tn_free(t);
            tn_free(chain);
            tn_free(leaf);
            return te_error_set(err, TE_ERR_NOMEM, "Out of memory editing %s.", doc->filename);
        }
        if (chain == NULL)
            chain = t;
        tail = t;
    }
    if (tail != NULL && tn_append(tail, leaf) != TE_OK) {
        tn_free(chain);
        tn_free(leaf);
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory editing %s.", doc->filename);
    }
    if (tn_append(cur, chain ? chain : leaf) != TE_OK) {
        tn_free(chain ? chain : leaf);
        return te_error_set(err, TE_ERR_TOO_LARGE, "The inline table in %s is full.", doc->filename);
    }
    return rerender_entry(doc, entry, err);
}

/* The document's line ending: CRLF when its first line ends so, else LF. */
static const char *eol_of(const struct toml_doc *doc)
{
    const char *nl = memchr(doc->text, '\n', doc->len);
    return nl != NULL && nl > doc->text && nl[-1] == '\r' ? "\r\n" : "\n";
}

static int insert_line(struct toml_doc *doc, size_t at, bool new_table, const char *const *path,
                       size_t rel_from, size_t n, const struct toml_value *value,
                       struct te_error *err)
{
    struct buf *b = buf_new(TOML_MAX_SIZE);
    const char *eol = eol_of(doc);
    int r = TE_OK;

    if (b == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory editing %s.", doc->filename);
    if (at > 0 && doc->text[at - 1] != '\n')
        r = buf_put_str(b, eol);
    if (r == TE_OK && new_table) {
        if (at > 0)
            r = buf_put_str(b, eol);
        if (r == TE_OK)
            r = buf_put_u8(b, '[');
        if (r == TE_OK)
            r = put_keys(b, path, 0, n - 1);
        if (r == TE_OK)
            r = buf_put_u8(b, ']');
        if (r == TE_OK)
            r = buf_put_str(b, eol);
    }
    if (r == TE_OK)
        r = put_keys(b, path, rel_from, n);
    if (r == TE_OK)
        r = buf_put_str(b, " = ");
    if (r == TE_OK)
        r = tw_value(b, value);
    if (r == TE_OK)
        r = buf_put_str(b, eol);
    if (r != TE_OK)
        r = te_error_set(err, r, "Cannot render the new value for %s.", doc->filename);
    else
        r = splice(doc, at, at, b, err);
    buf_free(b);
    return r;
}

static bool value_ok(const struct toml_value *v)
{
    if (v == NULL)
        return false;
    if (v->type == TOML_STRING)
        return v->str != NULL;
    if (v->type == TOML_ARRAY) {
        for (size_t i = 0; i < v->n_items; i++)
            if (v->items[i] == NULL || v->items[i]->type == TOML_ARRAY ||
                v->items[i]->type == TOML_TABLE || !value_ok(v->items[i]))
                return false;
        return true;
    }
    return v->type == TOML_INTEGER || v->type == TOML_BOOL;
}

int toml_set(struct toml_doc *doc, const char *const *path, size_t n,
             const struct toml_value *value, struct te_error *err)
{
    struct toml_node *cur = doc->root, *child;
    struct toml_block *blk;
    size_t k = 0;
    int r;

    if ((r = check_path(path, n, err)) != TE_OK)
        return r;
    if (!value_ok(value))
        return te_error_set(err, TE_ERR_INVALID, "The value to write is not a scalar or array.");
    while (k < n && (child = tn_find(cur, path[k])) != NULL) {
        cur = child;
        k++;
        if (k < n && cur->v.type != TOML_TABLE)
            return te_error_set(err, TE_ERR_INVALID,
                                "Cannot set a key below '%s' in %s: it already holds a value. Edit "
                                "the file by hand.",
                                path[k - 1], doc->filename);
    }
    if (k == n) {
        struct toml_entry *e;
        struct buf *b;
        if (cur->v.type == TOML_TABLE)
            return te_error_set(err, TE_ERR_INVALID,
                                "'%s' is a table in %s; set one of its keys instead.",
                                path[n - 1], doc->filename);
        e = &doc->entries[cur->entry];
        if (e->node != cur) { /* a member of an inline table: swap it, render that value */
            struct toml_node *parent = cur->parent, *fresh;
            size_t entry = cur->entry;
            if ((fresh = tn_from_value(value, cur->v.key, 0)) == NULL)
                return te_error_set(err, TE_ERR_NOMEM, "Out of memory editing %s.", doc->filename);
            for (size_t i = 0; i < parent->v.n_items; i++)
                if (parent->v.items[i] == &cur->v)
                    parent->v.items[i] = &fresh->v;
            fresh->parent = parent;
            tn_free(cur);
            if ((r = rerender_entry(doc, entry, err)) != TE_OK)
                restore(doc);
            return r;
        }
        if ((b = buf_new(TOML_MAX_SIZE)) == NULL)
            return te_error_set(err, TE_ERR_NOMEM, "Out of memory editing %s.", doc->filename);
        if ((r = tw_value(b, value)) == TE_OK)
            r = splice(doc, e->val_start, e->val_end, b, err);
        else
            r = te_error_set(err, r, "Cannot render the new value for %s.", doc->filename);
        buf_free(b);
        return r;
    }
    if (cur->v.type != TOML_TABLE)
        return te_error_set(err, TE_ERR_INVALID,
                            "Cannot set a key below '%s' in %s: it already holds a value. Edit "
                                "the file by hand.",
                            path[k - 1], doc->filename);
    if (cur->flags & (TN_FROZEN | TN_INLINE)) {
        if ((r = set_in_inline(doc, cur, path, k, n, value, err)) != TE_OK)
            restore(doc);
        return r;
    }
    if (k + 1 < n || (cur != doc->root && !(cur->flags & (TN_HEADER | TN_DOTTED))))
        /* The key's table does not exist or has no block of its own: new [table] at the end. */
        return insert_line(doc, doc->len, true, path, n - 1, n, value, err);
    blk = &doc->blocks[cur->block];
    return insert_line(doc, blk->insert_at, false, path, tn_depth(blk->table), n, value, err);
}

int toml_unset(struct toml_doc *doc, const char *const *path, size_t n, struct te_error *err)
{
    struct toml_node *cur = doc->root;
    struct toml_entry *e;
    int r;

    if ((r = check_path(path, n, err)) != TE_OK)
        return r;
    for (size_t i = 0; i < n && cur != NULL; i++)
        cur = tn_find(cur, path[i]);
    if (cur == NULL)
        return TE_ERR_NOT_FOUND;
    if (cur->v.type == TOML_TABLE)
        return te_error_set(err, TE_ERR_INVALID, "'%s' is a table in %s; unset its keys instead.",
                            path[n - 1], doc->filename);
    e = &doc->entries[cur->entry];
    if (e->node == cur)
        return splice(doc, e->line_start, e->end, NULL, err);
    tn_remove(cur->parent, cur);
    if ((r = rerender_entry(doc, (size_t)(e - doc->entries), err)) != TE_OK)
        restore(doc);
    return r;
}
