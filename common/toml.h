/* A strict TOML reader/writer for the subset tedge.toml uses, built as a document model that
 * remembers every line's span so that edits keep comments, unknown keys and ordering. */
#ifndef TEDGE_COMMON_TOML_H
#define TEDGE_COMMON_TOML_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define TOML_MAX_SIZE (1024 * 1024) /* largest document: tedge.toml is a few KiB */
#define TOML_MAX_DEPTH 16           /* deepest key path or value nesting we accept */
#define TOML_MAX_KEY_LEN 256        /* longest single key segment, in bytes */
#define TOML_MAX_TABLE_KEYS 512     /* most keys in one table: bounds the linear lookups */
#define TOML_MAX_ARRAY_ITEMS 4096   /* most items in one array */

/*
 * Supported: [tables], [dotted.headers], dotted.keys = ..., bare and quoted keys, basic strings
 * with escapes, 'literal strings', decimal integers (sign, underscores), booleans, arrays of
 * strings/integers/booleans (multi-line, trailing comma), inline tables, comments.
 * Refused with "unsupported" and file:line:col: floats, dates and times, multi-line strings,
 * hex/octal/binary integers, arrays of tables, nested arrays. NUL characters are refused too.
 */
enum toml_type {
    TOML_TABLE = 1,
    TOML_STRING,
    TOML_INTEGER,
    TOML_BOOL,
    TOML_ARRAY,
};

/* A read-only view of one value in a parsed document. Pointers stay valid until the
 * document is edited or freed. */
struct toml_value {
    enum toml_type type;
    const char *key;            /* the key in its table; NULL for the root and array items */
    const char *str;            /* TOML_STRING: NUL-terminated UTF-8 */
    long long integer;          /* TOML_INTEGER */
    bool boolean;               /* TOML_BOOL */
    struct toml_value **items;  /* TOML_TABLE: members in document order; TOML_ARRAY: items */
    size_t n_items;
    unsigned line, col;         /* where the key or header is (1-based); 0 for implicit tables */
};

struct toml_doc;

/* Parses len bytes of text. filename only labels errors ("file:line:col: message");
 * NULL means "<input>". TE_ERR_MALFORMED for a syntax error, TE_ERR_UNSUPPORTED for TOML we
 * do not support, TE_ERR_TOO_LARGE past a limit; err says where and what. */
int toml_parse(const char *text, size_t len, const char *filename, struct toml_doc **out,
               struct te_error *err);
/* NULL is a no-op. */
void toml_free(struct toml_doc *doc);

/* The document's current text (after edits); NUL-terminated. */
const char *toml_text(const struct toml_doc *doc, size_t *len);
const char *toml_filename(const struct toml_doc *doc);
const struct toml_value *toml_root(const struct toml_doc *doc);

/* The value at path (n segments), or NULL. */
const struct toml_value *toml_get(const struct toml_doc *doc, const char *const *path, size_t n);
/* Member key of table t, or NULL (also when t is not a table). */
const struct toml_value *toml_table_get(const struct toml_value *t, const char *key);

/* Splits "a.b.c" (bare segments only, as used for tedge config keys) into parts that point
 * into buf. TE_ERR_INVALID when a segment is empty, too long or there are more than max. */
int toml_split_key(const char *dotted, char *buf, size_t buf_size, const char **parts,
                   size_t max, size_t *n);

/*
 * Editing. value is a scalar or an array of scalars (a caller-built struct toml_value:
 * only type, str, integer, boolean, items and n_items are read).
 * toml_set replaces an existing value in place (the key, spacing and trailing comment of
 * its line stay), or adds the key at the end of its table's block, or appends a new
 * [table] at the end of the document. Everything else stays byte for byte.
 * TE_ERR_INVALID when path crosses a value (e.g. "a.b" when "a" is a string) or names a
 * table. The edited text is parsed again; a failure there is TE_ERR_INTERNAL and leaves
 * the document unchanged.
 */
int toml_set(struct toml_doc *doc, const char *const *path, size_t n,
             const struct toml_value *value, struct te_error *err);
/* Removes the key's line (or the member of an inline table). TE_ERR_NOT_FOUND when absent. */
int toml_unset(struct toml_doc *doc, const char *const *path, size_t n, struct te_error *err);

/* Canonical form of the data (no comments; values before sub-tables; every table as a
 * [header]): parsing it gives an equal tree. *out is malloc'd and NUL-terminated. */
int toml_dump(const struct toml_doc *doc, char **out, size_t *len);
/* Deep equality of two values (table members compared as sets). */
bool toml_equal(const struct toml_value *a, const struct toml_value *b);

#endif
