/* libFuzzer target for common/toml: arbitrary bytes into the parser; whatever parses must
 * dump to a canonical form that parses to an equal tree, and edits must keep both forms equal. */
#include "common/toml.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_LEAVES 64 /* leaves we remember to pick an edit target from */

struct leaf {
    const char *path[TOML_MAX_DEPTH];
    size_t n;
};

static void collect(const struct toml_value *t, const char **path, size_t depth,
                    struct leaf *out, size_t *count)
{
    for (size_t i = 0; i < t->n_items && *count < FUZZ_MAX_LEAVES; i++) {
        const struct toml_value *v = t->items[i];
        if (depth >= TOML_MAX_DEPTH)
            abort(); /* the parser promised to bound the depth */
        path[depth] = v->key;
        if (v->type == TOML_TABLE) {
            collect(v, path, depth + 1, out, count);
        } else {
            memcpy(out[*count].path, path, (depth + 1) * sizeof(path[0]));
            out[*count].n = depth + 1;
            (*count)++;
        }
    }
}

static void check(int cond)
{
    if (!cond)
        abort();
}

static bool has_leaves(const struct toml_value *t)
{
    for (size_t i = 0; i < t->n_items; i++)
        if (t->items[i]->type != TOML_TABLE || has_leaves(t->items[i]))
            return true;
    return false;
}

/* Equal values, where a table with no leaves counts as absent: unset removes a key's line,
 * which leaves an emptied [header] table behind but drops a table made by dotted keys. */
static bool same_leaves(const struct toml_value *a, const struct toml_value *b)
{
    for (size_t i = 0; i < a->n_items; i++) {
        const struct toml_value *x = a->items[i], *y = toml_table_get(b, x->key);
        if (x->type == TOML_TABLE && (y == NULL || y->type != TOML_TABLE)) {
            if (has_leaves(x))
                return false;
        } else if (x->type == TOML_TABLE) {
            if (!same_leaves(x, y))
                return false;
        } else if (!toml_equal(x, y)) {
            return false;
        }
    }
    return true;
}

/* Both documents must accept or refuse the same edit, and stay equal after it. */
static void same_edit_set(struct toml_doc *a, struct toml_doc *b, const char *const *path,
                          size_t n, const struct toml_value *v)
{
    struct te_error err = {0};
    int ra = toml_set(a, path, n, v, &err), rb = toml_set(b, path, n, v, &err);
    check(ra != TE_ERR_INTERNAL && rb != TE_ERR_INTERNAL);
    if (ra == TE_ERR_TOO_LARGE || rb == TE_ERR_TOO_LARGE)
        return;
    check(ra == rb);
    check(same_leaves(toml_root(a), toml_root(b)) && same_leaves(toml_root(b), toml_root(a)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct toml_doc *doc = NULL, *canon = NULL;
    struct te_error err = {0};
    char *d1 = NULL, *d2 = NULL;
    size_t l1 = 0, l2 = 0, count = 0;
    const char *path[TOML_MAX_DEPTH];
    struct leaf *leaves = NULL;

    if (toml_parse((const char *)data, size, "fuzz", &doc, &err) != TE_OK)
        return 0;
    check(toml_dump(doc, &d1, &l1) == TE_OK);
    if (l1 > TOML_MAX_SIZE)
        goto exit;
    check(toml_parse(d1, l1, "dump", &canon, &err) == TE_OK);
    check(toml_equal(toml_root(doc), toml_root(canon)));
    check(toml_dump(canon, &d2, &l2) == TE_OK);
    check(l1 == l2 && memcmp(d1, d2, l1) == 0);

    /* Edit one leaf in the original layout and in the canonical one: same results. */
    leaves = calloc(FUZZ_MAX_LEAVES, sizeof(*leaves));
    check(leaves != NULL);
    collect(toml_root(canon), path, 0, leaves, &count);
    if (count > 0) {
        /* copy the path: edits rebuild the trees its strings live in */
        static char keys[TOML_MAX_DEPTH][TOML_MAX_KEY_LEN + 1];
        struct leaf *l = &leaves[size % count];
        for (size_t k = 0; k < l->n; k++) {
            strcpy(keys[k], l->path[k]);
            l->path[k] = keys[k];
        }
        struct toml_value s = {.type = TOML_STRING, .str = "edited \"value\"\n"};
        const struct toml_value *got;
        same_edit_set(doc, canon, l->path, l->n, &s);
        got = toml_get(doc, l->path, l->n);
        check(got != NULL && got->type == TOML_STRING && strcmp(got->str, s.str) == 0);
        check(toml_unset(doc, l->path, l->n, &err) == TE_OK);
        check(toml_unset(canon, l->path, l->n, &err) == TE_OK);
        check(toml_get(doc, l->path, l->n) == NULL);
        check(same_leaves(toml_root(doc), toml_root(canon)) &&
              same_leaves(toml_root(canon), toml_root(doc)));
        /* a new key next to the removed one, and below it */
        {
            const char *np[TOML_MAX_DEPTH + 1];
            struct toml_value i = {.type = TOML_INTEGER, .integer = -1};
            memcpy(np, l->path, l->n * sizeof(np[0]));
            np[l->n - 1] = "fuzz-new";
            same_edit_set(doc, canon, np, l->n, &i);
            if (l->n < TOML_MAX_DEPTH) {
                np[l->n] = "leaf";
                np[l->n - 1] = "fuzz table";
                same_edit_set(doc, canon, np, l->n + 1, &s);
            }
        }
    }
exit:
    free(leaves);
    free(d1);
    free(d2);
    toml_free(canon);
    toml_free(doc);
    return 0;
}
