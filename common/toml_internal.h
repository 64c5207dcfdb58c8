/* Internals shared by the TOML parser (toml_parse.c), the document model (toml.c) and the
 * writer (toml_write.c). Nothing outside common/toml*.c includes this file. */
#ifndef TEDGE_COMMON_TOML_INTERNAL_H
#define TEDGE_COMMON_TOML_INTERNAL_H

#include "common/toml.h"

#include <stdint.h>

/* How a table came to exist: TOML's redefinition rules depend on it. A table with none of
 * these flags was created implicitly by a longer [a.b.c] header. */
#define TN_HEADER 0x01u /* defined by its own [header] */
#define TN_DOTTED 0x02u /* created by a dotted key (a.b = 1 creates table a) */
#define TN_FROZEN 0x04u /* an inline table value { ... }: complete, cannot be extended */
#define TN_INLINE 0x08u /* lives inside an inline table or array value */

#define TN_NO_ENTRY SIZE_MAX

struct toml_node {
    struct toml_value v;       /* the public view: must stay the first member */
    struct toml_node *parent;
    unsigned flags;
    size_t block;              /* TN_HEADER: its block; TN_DOTTED: the block that created it */
    size_t entry;              /* the key = value line that defines it, or TN_NO_ENTRY */
    size_t cap;                /* allocated slots in v.items */
};

/* One `key = value` line at document level (its value may span lines: arrays). */
struct toml_entry {
    size_t line_start;         /* start of the line holding the key */
    size_t val_start, val_end; /* the value's bytes */
    size_t end;                /* after the line's newline (or the end of the text) */
    size_t block;
    struct toml_node *node;    /* the value it defines */
};

/* The root or one [header], and the lines under it up to the next header. */
struct toml_block {
    struct toml_node *table;
    size_t insert_at;          /* where a new key of this block goes */
};

struct toml_doc {
    char *text;
    size_t len;
    char *filename;
    struct toml_node *root;
    struct toml_entry *entries;
    size_t n_entries, cap_entries;
    struct toml_block *blocks;
    size_t n_blocks, cap_blocks;
};

static inline struct toml_node *tn_of(const struct toml_value *v)
{
    return (struct toml_node *)(uintptr_t)v;
}

/* toml.c: nodes */
struct toml_node *tn_new(enum toml_type type, const char *key, size_t key_len);
void tn_free(struct toml_node *n);
/* Appends child (to a table or an array); TE_ERR_TOO_LARGE past the limits. */
int tn_append(struct toml_node *parent, struct toml_node *child);
struct toml_node *tn_find(const struct toml_node *table, const char *key);
void tn_remove(struct toml_node *parent, struct toml_node *child);
/* Number of tables between n and the root (root = 0). */
size_t tn_depth(const struct toml_node *n);
/* A deep copy of a caller's scalar or array value, flagged TN_INLINE; NULL on bad input. */
struct toml_node *tn_from_value(const struct toml_value *v, const char *key, int depth);

/* toml_parse.c: fills doc->root, entries and blocks from doc->text/len. */
int toml_parse_doc(struct toml_doc *doc, struct te_error *err);

/* toml_lex.c: the scanner state and the lexical pieces the parser is built from. */
#define TOML_MSG_MAX 256 /* longest parser message before the file:line:col prefix */

struct toml_parser {
    struct toml_doc *doc;
    const char *s;
    size_t len, pos;
    unsigned line;       /* current line, 1-based */
    size_t line_start;   /* offset of the current line's first byte */
    size_t block;        /* index of the current block in doc->blocks */
    struct te_error *err;
};

struct toml_key {        /* a parsed dotted key */
    char *seg[TOML_MAX_DEPTH];
    size_t n;
    size_t pos;          /* where the key starts */
    unsigned line, col;
};

/* Column (1-based, in characters) of pos on the line starting at line_start. */
unsigned tl_col_of(const char *s, size_t line_start, size_t pos);
/* Sets p->err to "file:line:col: message" for byte pos and returns code. */
int tl_err(struct toml_parser *p, size_t pos, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int tl_nomem(struct toml_parser *p);
/* Offset of the first byte that is not well-formed UTF-8, or len. */
size_t tl_utf8_check(const unsigned char *s, size_t len);
int tl_peek(const struct toml_parser *p);          /* next byte, or -1 at the end */
bool tl_starts_with(const struct toml_parser *p, const char *lit);
bool tl_is_ctrl(int c);                            /* control characters TOML forbids raw */
bool tl_is_bare(int c);                            /* A-Za-z0-9_- */
void tl_skip_ws(struct toml_parser *p);
bool tl_at_newline(const struct toml_parser *p);   /* LF or CRLF */
void tl_newline(struct toml_parser *p);
int tl_comment(struct toml_parser *p);
/* Optional whitespace and comment, then a newline or the end; "expected a newline after
 * <after>" otherwise. */
int tl_end_of_line(struct toml_parser *p, const char *after);
int tl_basic_string(struct toml_parser *p, char **out, size_t *out_len);
int tl_literal_string(struct toml_parser *p, char **out, size_t *out_len);
int tl_parse_key(struct toml_parser *p, struct toml_key *k);
void tl_key_free(struct toml_key *k);
/* A decimal integer; floats, dates and other bases are refused as unsupported. */
int tl_parse_number(struct toml_parser *p, struct toml_node **out);

/* toml_write.c: renders a key (bare when possible) and a value as TOML. */
struct buf;
int tw_key(struct buf *b, const char *key);
int tw_value(struct buf *b, const struct toml_value *v);

#endif
