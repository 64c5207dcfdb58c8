/* The TOML document model: the node tree behind struct toml_value, loading a document,
 * lookups, key splitting and deep equality. Parsing is in toml_parse.c, edits in toml_edit.c. */
#include "common/toml_internal.h"
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

struct toml_node *tn_new(enum toml_type type, const char *key, size_t key_len)
{
    struct toml_node *n = calloc(1, sizeof(*n));
    char *k = NULL;

    if (n == NULL)
        return NULL;
    if (key != NULL) {
        if ((k = malloc(key_len + 1)) == NULL) {
            free(n);
            return NULL;
        }
        memcpy(k, key, key_len);
        k[key_len] = '\0';
    }
    n->v.type = type;
    n->v.key = k;
    n->entry = TN_NO_ENTRY;
    return n;
}

void tn_free(struct toml_node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->v.n_items; i++)
        tn_free(tn_of(n->v.items[i]));
    free(n->v.items);
    free((char *)(uintptr_t)n->v.key);
    te_free_secret((char *)(uintptr_t)n->v.str); /* values may be PINs */
    free(n);
}

int tn_append(struct toml_node *parent, struct toml_node *child)
{
    size_t limit = parent->v.type == TOML_TABLE ? TOML_MAX_TABLE_KEYS : TOML_MAX_ARRAY_ITEMS;

    if (parent->v.n_items >= limit)
        return TE_ERR_TOO_LARGE;
    if (parent->v.n_items == parent->cap) {
        size_t ncap = parent->cap ? parent->cap * 2 : 4;
        struct toml_value **ni = realloc(parent->v.items, ncap * sizeof(*ni));
        if (ni == NULL)
            return TE_ERR_NOMEM;
        parent->v.items = ni;
        parent->cap = ncap;
    }
    parent->v.items[parent->v.n_items++] = &child->v;
    child->parent = parent;
    return TE_OK;
}

struct toml_node *tn_find(const struct toml_node *table, const char *key)
{
    if (table == NULL || table->v.type != TOML_TABLE)
        return NULL;
    for (size_t i = 0; i < table->v.n_items; i++)
        if (strcmp(table->v.items[i]->key, key) == 0)
            return tn_of(table->v.items[i]);
    return NULL;
}

void tn_remove(struct toml_node *parent, struct toml_node *child)
{
    for (size_t i = 0; i < parent->v.n_items; i++) {
        if (parent->v.items[i] == &child->v) {
            memmove(&parent->v.items[i], &parent->v.items[i + 1],
                    (parent->v.n_items - i - 1) * sizeof(parent->v.items[0]));
            parent->v.n_items--;
            tn_free(child);
            return;
        }
    }
}

size_t tn_depth(const struct toml_node *n)
{
    size_t d = 0;
    for (; n != NULL && n->parent != NULL; n = n->parent)
        d++;
    return d;
}

struct toml_node *tn_from_value(const struct toml_value *v, const char *key, int depth)
{
    struct toml_node *n;

    if (v == NULL || depth > TOML_MAX_DEPTH)
        return NULL;
    if (v->type != TOML_STRING && v->type != TOML_INTEGER && v->type != TOML_BOOL &&
        v->type != TOML_ARRAY)
        return NULL;
    if ((n = tn_new(v->type, key, key ? strlen(key) : 0)) == NULL)
        return NULL;
    n->flags = TN_INLINE;
    n->v.integer = v->integer;
    n->v.boolean = v->boolean;
    if (v->type == TOML_STRING) {
        if (v->str == NULL || (n->v.str = strdup(v->str)) == NULL)
            goto fail;
    }
    if (v->type == TOML_ARRAY) {
        for (size_t i = 0; i < v->n_items; i++) {
            struct toml_node *item;
            if (v->items[i] == NULL || v->items[i]->type == TOML_ARRAY)
                goto fail; /* nested arrays are not part of our subset */
            if ((item = tn_from_value(v->items[i], NULL, depth + 1)) == NULL)
                goto fail;
            if (tn_append(n, item) != TE_OK) {
                tn_free(item);
                goto fail;
            }
        }
    }
    return n;
fail:
    tn_free(n);
    return NULL;
}

int toml_parse(const char *text, size_t len, const char *filename, struct toml_doc **out,
               struct te_error *err)
{
    struct toml_doc *doc = NULL;
    int ret;

    *out = NULL;
    if (text == NULL && len > 0)
        return te_error_set(err, TE_ERR_INVALID, "No TOML text was given.");
    if (len > TOML_MAX_SIZE)
        return te_error_set(err, TE_ERR_TOO_LARGE,
                            "%s: the document is larger than the limit of %d bytes.",
                            filename ? filename : "<input>", TOML_MAX_SIZE);
    if ((doc = calloc(1, sizeof(*doc))) == NULL ||
        (doc->text = malloc(len + 1)) == NULL ||
        (doc->filename = strdup(filename ? filename : "<input>")) == NULL ||
        (doc->root = tn_new(TOML_TABLE, NULL, 0)) == NULL) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory parsing TOML.");
        goto exit;
    }
    if (len > 0)
        memcpy(doc->text, text, len);
    doc->text[len] = '\0';
    doc->len = len;
    if ((ret = toml_parse_doc(doc, err)) != TE_OK)
        goto exit;
    *out = doc;
    doc = NULL;
exit:
    toml_free(doc);
    return ret;
}

void toml_free(struct toml_doc *doc)
{
    if (doc == NULL)
        return;
    tn_free(doc->root);
    free(doc->entries);
    free(doc->blocks);
    free(doc->filename);
    te_wipe(doc->text, doc->len);
    free(doc->text);
    free(doc);
}

const char *toml_text(const struct toml_doc *doc, size_t *len)
{
    if (len != NULL)
        *len = doc->len;
    return doc->text;
}

const char *toml_filename(const struct toml_doc *doc) { return doc->filename; }
const struct toml_value *toml_root(const struct toml_doc *doc) { return &doc->root->v; }

const struct toml_value *toml_table_get(const struct toml_value *t, const char *key)
{
    struct toml_node *n = t ? tn_find(tn_of(t), key) : NULL;
    return n ? &n->v : NULL;
}

const struct toml_value *toml_get(const struct toml_doc *doc, const char *const *path, size_t n)
{
    const struct toml_value *v = &doc->root->v;

    for (size_t i = 0; i < n && v != NULL; i++)
        v = toml_table_get(v, path[i]);
    return v;
}

int toml_split_key(const char *dotted, char *buf, size_t buf_size, const char **parts,
                   size_t max, size_t *n)
{
    size_t len = strlen(dotted), count = 0;
    char *seg;

    *n = 0;
    if (len == 0 || len >= buf_size)
        return TE_ERR_INVALID;
    memcpy(buf, dotted, len + 1);
    seg = buf;
    for (char *p = buf;; p++) {
        if (*p == '.' || *p == '\0') {
            bool last = *p == '\0';
            size_t seg_len = (size_t)(p - seg);
            if (seg_len == 0 || seg_len > TOML_MAX_KEY_LEN || count >= max)
                return TE_ERR_INVALID;
            *p = '\0';
            parts[count++] = seg;
            if (last)
                break;
            seg = p + 1;
        }
    }
    *n = count;
    return TE_OK;
}

bool toml_equal(const struct toml_value *a, const struct toml_value *b)
{
    if (a == NULL || b == NULL || a->type != b->type)
        return false;
    switch (a->type) {
    case TOML_STRING:
        return strcmp(a->str, b->str) == 0;
    case TOML_INTEGER:
        return a->integer == b->integer;
    case TOML_BOOL:
        return a->boolean == b->boolean;
    case TOML_ARRAY:
        if (a->n_items != b->n_items)
            return false;
        for (size_t i = 0; i < a->n_items; i++)
            if (!toml_equal(a->items[i], b->items[i]))
                return false;
        return true;
    case TOML_TABLE:
        if (a->n_items != b->n_items)
            return false;
        for (size_t i = 0; i < a->n_items; i++)
            if (!toml_equal(a->items[i], toml_table_get(b, a->items[i]->key)))
                return false;
        return true;
    }
    return false;
}
