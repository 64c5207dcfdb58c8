/* Unit tests for common/toml: every supported construct, every error with its line:col,
 * edits that keep the document byte for byte, the canonical dump, and the limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/toml.h"

static struct toml_doc *parse_ok(const char *text)
{
    struct toml_doc *doc = NULL;
    struct te_error err = {0};
    int r = toml_parse(text, strlen(text), "t.toml", &doc, &err);
    if (r != TE_OK)
        fail_msg("parse failed: %s", err.msg);
    return doc;
}

static const struct toml_value *get(const struct toml_doc *doc, const char *dotted)
{
    char buf[512];
    const char *parts[TOML_MAX_DEPTH];
    size_t n;
    assert_int_equal(toml_split_key(dotted, buf, sizeof(buf), parts, TOML_MAX_DEPTH, &n), TE_OK);
    return toml_get(doc, parts, n);
}

static void assert_str(const struct toml_doc *doc, const char *key, const char *want)
{
    const struct toml_value *v = get(doc, key);
    assert_non_null(v);
    assert_int_equal(v->type, TOML_STRING);
    assert_string_equal(v->str, want);
}

static void test_tables_keys_and_scalars(void **state)
{
    (void)state;
    struct toml_doc *doc = parse_ok(
        "# leading comment\n"
        "top = \"root value\"   # trailing comment\n"
        "\n"
        "[device]\n"
        "cert_path = \"/etc/tedge/c.pem\"\n"
        "  indented\t=\t'literal \\n stays'\n"
        "[device.cryptoki]\n"
        "mode = \"socket\"\n"
        "[ c8y . \"quoted.part\" ]\n"
        "\"quoted key\" = true\n"
        "'literal key' = false\n"
        "bare-key_1 = -42\n"
        "plus = +1_000_000\n"
        "zero = 0\n"
        "max = 9223372036854775807\n"
        "min = -9223372036854775808\n"
        "[az]\n"
        "dotted.deeper.key = \"x\"\n"
        "dotted.other = 'y'\n");
    const struct toml_value *v;

    assert_str(doc, "top", "root value");
    assert_str(doc, "device.cert_path", "/etc/tedge/c.pem");
    assert_str(doc, "device.indented", "literal \\n stays");
    assert_str(doc, "device.cryptoki.mode", "socket");
    {
        const char *path[] = {"c8y", "quoted.part", "quoted key"};
        v = toml_get(doc, path, 3);
        assert_non_null(v);
        assert_int_equal(v->type, TOML_BOOL);
        assert_true(v->boolean);
        path[2] = "literal key";
        v = toml_get(doc, path, 3);
        assert_non_null(v);
        assert_false(v->boolean);
        path[2] = "bare-key_1";
        v = toml_get(doc, path, 3);
        assert_int_equal(v->type, TOML_INTEGER);
        assert_int_equal(v->integer, -42);
        assert_int_equal(v->line, 12);
        assert_int_equal(v->col, 1);
        path[2] = "plus";
        assert_int_equal(toml_get(doc, path, 3)->integer, 1000000);
        path[2] = "zero";
        assert_int_equal(toml_get(doc, path, 3)->integer, 0);
        path[2] = "max";
        assert_true(toml_get(doc, path, 3)->integer == INT64_MAX);
        path[2] = "min";
        assert_true(toml_get(doc, path, 3)->integer == INT64_MIN);
    }
    assert_str(doc, "az.dotted.deeper.key", "x");
    assert_str(doc, "az.dotted.other", "y");
    v = get(doc, "device");
    assert_int_equal(v->type, TOML_TABLE);
    assert_int_equal(v->n_items, 3); /* cert_path, indented, cryptoki in document order */
    assert_string_equal(v->items[0]->key, "cert_path");
    assert_string_equal(v->items[2]->key, "cryptoki");
    assert_null(get(doc, "device.missing"));
    assert_null(get(doc, "top.below_a_string"));
    toml_free(doc);
}

static void test_string_escapes(void **state)
{
    (void)state;
    struct toml_doc *doc = parse_ok(
        "a = \"q\\\" b\\\\ t\\t n\\n r\\r f\\f b\\b\"\n"
        "u = \"\\u00e9\\u20AC\"\n"
        "U = \"\\U0001F600\"\n"
        "raw = \"caf\xc3\xa9\"\n"
        "lit = 'C:\\path\\no \"escapes\"'\n"
        "empty = \"\"\n");
    assert_str(doc, "a", "q\" b\\ t\t n\n r\r f\f b\b");
    assert_str(doc, "u", "\xc3\xa9\xe2\x82\xac");
    assert_str(doc, "U", "\xf0\x9f\x98\x80");
    assert_str(doc, "raw", "caf\xc3\xa9");
    assert_str(doc, "lit", "C:\\path\\no \"escapes\"");
    assert_str(doc, "empty", "");
    toml_free(doc);
}

static void test_arrays_inline_tables_and_crlf(void **state)
{
    (void)state;
    struct toml_doc *doc = parse_ok(
        "[c8y.smartrest]\r\n"
        "templates = [\r\n"
        "  \"t1\", # first\r\n"
        "  'two',\r\n"
        "  # a comment line\r\n"
        "]\r\n"
        "empty = []\n"
        "mixed = [1, true, \"s\"]\n"
        "inline = { a = \"x\", b.c = 2, d = { e = [\"f\"] } }\n"
        "none = {}\n");
    const struct toml_value *v = get(doc, "c8y.smartrest.templates");
    assert_int_equal(v->type, TOML_ARRAY);
    assert_int_equal(v->n_items, 2);
    assert_string_equal(v->items[0]->str, "t1");
    assert_string_equal(v->items[1]->str, "two");
    assert_int_equal(get(doc, "c8y.smartrest.empty")->n_items, 0);
    v = get(doc, "c8y.smartrest.mixed");
    assert_int_equal(v->items[0]->integer, 1);
    assert_true(v->items[1]->boolean);
    assert_str(doc, "c8y.smartrest.inline.a", "x");
    assert_int_equal(get(doc, "c8y.smartrest.inline.b.c")->integer, 2);
    assert_string_equal(get(doc, "c8y.smartrest.inline.d.e")->items[0]->str, "f");
    assert_int_equal(get(doc, "c8y.smartrest.none")->type, TOML_TABLE);
    /* an implicit table later defined by its header, and a header below dotted tables */
    toml_free(doc);
    doc = parse_ok("[a.b.c]\nx = 1\n[a]\ny = 2\n[fruit]\napple.color = 'red'\n"
                   "[fruit.apple.texture]\nsmooth = true\n");
    assert_int_equal(get(doc, "a.b.c.x")->integer, 1);
    assert_int_equal(get(doc, "a.y")->integer, 2);
    assert_true(get(doc, "fruit.apple.texture.smooth")->boolean);
    toml_free(doc);
}

struct err_case {
    const char *text;
    int code;
    const char *msg; /* the whole message */
};

static void test_errors_have_line_and_column(void **state)
{
    (void)state;
    static const struct err_case cases[] = {
        {"[device]\ncert_path = \"x\"\nkey path = 1\n", TE_ERR_MALFORMED,
         "t.toml:3:5: expected '=' after key"},
        {"a = 1.5\n", TE_ERR_UNSUPPORTED, "t.toml:1:5: unsupported: floating-point numbers are not supported"},
        {"a = 1e5\n", TE_ERR_UNSUPPORTED, "t.toml:1:5: unsupported: floating-point numbers are not supported"},
        {"a = -inf\n", TE_ERR_UNSUPPORTED, "t.toml:1:5: unsupported: floating-point numbers are not supported"},
        {"\n\nd = 1979-05-27\n", TE_ERR_UNSUPPORTED,
         "t.toml:3:5: unsupported: dates and times are not supported; use a string"},
        {"t = 07:32:00\n", TE_ERR_UNSUPPORTED,
         "t.toml:1:5: unsupported: dates and times are not supported; use a string"},
        {"s = \"\"\"multi\"\"\"\n", TE_ERR_UNSUPPORTED,
         "t.toml:1:5: unsupported: multi-line strings are not supported; use one line with escapes"},
        {"s = '''multi'''\n", TE_ERR_UNSUPPORTED,
         "t.toml:1:5: unsupported: multi-line strings are not supported; use one line with escapes"},
        {"x = 1\n[[servers]]\n", TE_ERR_UNSUPPORTED,
         "t.toml:2:1: unsupported: arrays of tables ([[...]]) are not supported"},
        {"h = 0xff\n", TE_ERR_UNSUPPORTED,
         "t.toml:1:5: unsupported: hexadecimal, octal and binary integers are not supported"},
        {"n = [[1], [2]]\n", TE_ERR_UNSUPPORTED, "t.toml:1:6: unsupported: nested arrays are not supported"},
        {"n = [ {a = 1} ]\n", TE_ERR_UNSUPPORTED, "t.toml:1:7: unsupported: arrays of tables are not supported"},
        {"z = \"a\\u0000b\"\n", TE_ERR_UNSUPPORTED,
         "t.toml:1:7: unsupported: NUL characters in strings are not supported"},
        {"mode = socket\n", TE_ERR_MALFORMED, "t.toml:1:8: expected a value (strings must be in quotes)"},
        {"a = 1\nb = 2\na = 3\n", TE_ERR_MALFORMED, "t.toml:3:1: duplicate key 'a' (first defined at line 1)"},
        {"[a]\nx = 1\n[b]\n[a]\n", TE_ERR_MALFORMED, "t.toml:4:2: duplicate table [a] (first defined at line 1)"},
        {"a.b = 1\n[a]\n", TE_ERR_MALFORMED, "t.toml:2:2: table 'a' was already defined with dotted keys (line 1)"},
        {"[a.b]\n[a]\nb.c = 1\n", TE_ERR_MALFORMED, "t.toml:3:1: table 'a.b' has its own header (line 1): add the key there"},
        {"a = { x = 1 }\n[a]\n", TE_ERR_MALFORMED, "t.toml:2:2: 'a' is an inline table (line 1) and cannot be extended"},
        {"a = { x = 1 }\na.y = 2\n", TE_ERR_MALFORMED, "t.toml:2:1: 'a' is an inline table (line 1) and cannot be extended"},
        {"[a]\nb = 1\n[a.b]\n", TE_ERR_MALFORMED, "t.toml:3:2: 'a.b' is already a value (line 2)"},
        {"a = 1\na.b = 2\n", TE_ERR_MALFORMED, "t.toml:2:1: 'a' is already a value (line 1)"},
        {"i = { a = 1, }\n", TE_ERR_MALFORMED, "t.toml:1:14: trailing comma in an inline table"},
        {"i = { a = 1\n}\n", TE_ERR_MALFORMED, "t.toml:1:12: an inline table must be on one line"},
        {"i = { a = 1, a = 2 }\n", TE_ERR_MALFORMED, "t.toml:1:14: duplicate key 'a' (first defined at line 1)"},
        {"e = \"bad \\q escape\"\n", TE_ERR_MALFORMED, "t.toml:1:10: invalid escape sequence in string"},
        {"e = \"\\u12\"\n", TE_ERR_MALFORMED, "t.toml:1:8: expected 4 hexadecimal digits"},
        {"e = \"\\uD800\"\n", TE_ERR_MALFORMED, "t.toml:1:6: escape is not a Unicode scalar value"},
        {"u = \"open\n", TE_ERR_MALFORMED, "t.toml:1:5: unterminated string (missing '\"')"},
        {"u = 'open\n", TE_ERR_MALFORMED, "t.toml:1:5: unterminated literal string (missing \"'\")"},
        {"c = \"tab\tok but bell \a no\"\n", TE_ERR_MALFORMED,
         "t.toml:1:22: control characters in strings must be escaped"},
        {"arr = [\"a\", \"b\"\n", TE_ERR_MALFORMED, "t.toml:1:7: unterminated array (missing ']')"},
        {"arr = [\"a\" \"b\"]\n", TE_ERR_MALFORMED, "t.toml:1:12: expected ',' or ']' in the array"},
        {"[device\nx = 1\n", TE_ERR_MALFORMED, "t.toml:1:8: expected ']' to close the table header"},
        {"[device] x = 1\n", TE_ERR_MALFORMED, "t.toml:1:10: expected a newline after the table header"},
        {"a = \"x\" b = 2\n", TE_ERR_MALFORMED, "t.toml:1:9: expected a newline after the value"},
        {"big = 9223372036854775808\n", TE_ERR_MALFORMED, "t.toml:1:7: integer out of range"},
        {"lead = 007\n", TE_ERR_MALFORMED, "t.toml:1:8: integers cannot have leading zeros"},
        {"u = 1__0\n", TE_ERR_MALFORMED, "t.toml:1:5: invalid integer"},
        {"= 1\n", TE_ERR_MALFORMED, "t.toml:1:1: expected a key"},
        {"b = falsey\n", TE_ERR_MALFORMED, "t.toml:1:5: expected a value (strings must be in quotes)"},
        {"\"\"\"k\"\"\" = 1\n", TE_ERR_MALFORMED, "t.toml:1:1: a key cannot be a multi-line string"},
        {"# bad \x01 control\n", TE_ERR_MALFORMED, "t.toml:1:7: control character in a comment"},
        {"a = 1\rb = 2\n", TE_ERR_MALFORMED, "t.toml:1:6: expected a newline after the value"},
        {"k = \"\xc3\x28\"\n", TE_ERR_MALFORMED, "t.toml:1:6: invalid UTF-8"},
        {"\xc3\xa9\xc3\xa9 = \xff\n", TE_ERR_MALFORMED, "t.toml:1:6: invalid UTF-8"},
        /* a byte order mark at the start is named (not "expected a key"); elsewhere U+FEFF is
         * just a character that cannot start a key */
        {"\xEF\xBB\xBF" "[device]\nid = \"x\"\n", TE_ERR_MALFORMED,
         "t.toml:1:1: a UTF-8 byte order mark is not supported; remove it"},
        {"\xEF\xBB\xBF", TE_ERR_MALFORMED,
         "t.toml:1:1: a UTF-8 byte order mark is not supported; remove it"},
        {"a = 1\n\xEF\xBB\xBF" "b = 2\n", TE_ERR_MALFORMED, "t.toml:2:1: expected a key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct toml_doc *doc = NULL;
        struct te_error err = {0};
        int r = toml_parse(cases[i].text, strlen(cases[i].text), "t.toml", &doc, &err);
        if (r != cases[i].code || strcmp(err.msg, cases[i].msg) != 0)
            fail_msg("case %zu: got %d '%s', want %d '%s'", i, r, err.msg, cases[i].code,
                     cases[i].msg);
        assert_null(doc);
    }
}

static void test_limits(void **state)
{
    (void)state;
    struct toml_doc *doc = NULL;
    struct te_error err = {0};
    char *big = malloc(TOML_MAX_SIZE + 2), key[TOML_MAX_KEY_LEN + 16], deep[TOML_MAX_DEPTH * 4 + 32];
    size_t o = 0;

    /* size */
    memset(big, '#', TOML_MAX_SIZE + 1);
    assert_int_equal(toml_parse(big, TOML_MAX_SIZE + 1, "t.toml", &doc, &err), TE_ERR_TOO_LARGE);
    memcpy(big, "# ok\n", 5);
    big[TOML_MAX_SIZE - 1] = '\n';
    assert_int_equal(toml_parse(big, TOML_MAX_SIZE, "t.toml", &doc, &err), TE_OK);
    toml_free(doc);
    /* key length: TOML_MAX_KEY_LEN is fine, one more is refused */
    memset(key, 'k', TOML_MAX_KEY_LEN);
    memcpy(key + TOML_MAX_KEY_LEN, " = 1\n", 6);
    assert_int_equal(toml_parse(key, strlen(key), "t.toml", &doc, &err), TE_OK);
    toml_free(doc);
    memset(key, 'k', TOML_MAX_KEY_LEN + 1);
    memcpy(key + TOML_MAX_KEY_LEN + 1, " = 1\n", 6);
    assert_int_equal(toml_parse(key, strlen(key), "t.toml", &doc, &err), TE_ERR_TOO_LARGE);
    assert_string_equal(err.msg, "t.toml:1:1: key is longer than 256 bytes");
    /* depth: a value at depth TOML_MAX_DEPTH is fine, one deeper is refused */
    o = (size_t)sprintf(deep, "[a");
    for (int i = 0; i < TOML_MAX_DEPTH - 2; i++)
        o += (size_t)sprintf(deep + o, ".a");
    o += (size_t)sprintf(deep + o, "]\n");
    sprintf(deep + o, "z = 1\n");
    assert_int_equal(toml_parse(deep, strlen(deep), "t.toml", &doc, &err), TE_OK);
    toml_free(doc);
    sprintf(deep + o, "y.z = 1\n");
    assert_int_equal(toml_parse(deep, strlen(deep), "t.toml", &doc, &err), TE_ERR_TOO_LARGE);
    assert_string_equal(err.msg, "t.toml:2:1: tables nest deeper than 16 levels");
    /* a key of more than TOML_MAX_DEPTH parts */
    o = 0;
    for (int i = 0; i < TOML_MAX_DEPTH; i++)
        o += (size_t)sprintf(deep + o, "a.");
    sprintf(deep + o, "z = 1\n");
    assert_int_equal(toml_parse(deep, strlen(deep), "t.toml", &doc, &err), TE_ERR_TOO_LARGE);
    assert_string_equal(err.msg, "t.toml:1:33: key has more than 16 parts");
    /* nesting of inline tables counts too */
    assert_int_equal(toml_parse("a = {b = {c = {d = {e = {f = {g = {h = {i = {j = {k = {l = {m "
                                "= {n = {o = {p = {q = 1}}}}}}}}}}}}}}}}\n",
                                95, "t.toml", &doc, &err), TE_ERR_TOO_LARGE);
    /* keys per table */
    o = 0;
    for (int i = 0; i <= TOML_MAX_TABLE_KEYS; i++)
        o += (size_t)sprintf(big + o, "k%d = 1\n", i);
    assert_int_equal(toml_parse(big, o, "t.toml", &doc, &err), TE_ERR_TOO_LARGE);
    assert_non_null(strstr(err.msg, "table has more than 512 keys"));
    /* items per array */
    o = (size_t)sprintf(big, "a = [");
    for (int i = 0; i <= TOML_MAX_ARRAY_ITEMS; i++)
        o += (size_t)sprintf(big + o, "1,");
    o += (size_t)sprintf(big + o, "]\n");
    assert_int_equal(toml_parse(big, o, "t.toml", &doc, &err), TE_ERR_TOO_LARGE);
    assert_string_equal(err.msg, "t.toml:1:5: array has more than 4096 items");
    free(big);
}

/* A file as upstream thin-edge writes it, plus a user's comments and unknown tables. */
static const char upstream_doc[] =
    "# managed by hand, keep this comment\n"
    "[device]\n"
    "type = \"thin-edge.io\"   # upstream key we do not model\n"
    "cert_path = \"/etc/tedge/device-certs/tedge-certificate.pem\"\n"
    "\n"
    "# the cloud\n"
    "[c8y]\n"
    "url = \"old.example.com\" # tenant\n"
    "smartrest.templates = [\n"
    "    \"a\",\n"
    "    \"b\",\n"
    "]\n"
    "\n"
    "[software.plugin]\n"
    "default = \"apt\"\n";

static void set_str(struct toml_doc *doc, const char *dotted, const char *value)
{
    char buf[512];
    const char *parts[TOML_MAX_DEPTH];
    size_t n;
    struct te_error err = {0};
    struct toml_value v = {.type = TOML_STRING, .str = value};
    assert_int_equal(toml_split_key(dotted, buf, sizeof(buf), parts, TOML_MAX_DEPTH, &n), TE_OK);
    if (toml_set(doc, parts, n, &v, &err) != TE_OK)
        fail_msg("set %s: %s", dotted, err.msg);
}

static int unset(struct toml_doc *doc, const char *dotted)
{
    char buf[512];
    const char *parts[TOML_MAX_DEPTH];
    size_t n;
    struct te_error err = {0};
    assert_int_equal(toml_split_key(dotted, buf, sizeof(buf), parts, TOML_MAX_DEPTH, &n), TE_OK);
    return toml_unset(doc, parts, n, &err);
}

static void test_set_keeps_the_document(void **state)
{
    (void)state;
    struct toml_doc *doc = parse_ok(upstream_doc);

    /* replace in place: the key, spacing and trailing comment stay */
    set_str(doc, "c8y.url", "new.example.com");
    /* a new key goes after the last key of its table's block */
    set_str(doc, "device.key_path", "/k.pem");
    /* a table that does not exist is appended at the end */
    set_str(doc, "device.cryptoki.mode", "socket");
    /* a key of a table made by dotted keys goes into that block, dotted */
    set_str(doc, "c8y.smartrest.other", "x\"y");
    assert_string_equal(toml_text(doc, NULL),
        "# managed by hand, keep this comment\n"
        "[device]\n"
        "type = \"thin-edge.io\"   # upstream key we do not model\n"
        "cert_path = \"/etc/tedge/device-certs/tedge-certificate.pem\"\n"
        "key_path = \"/k.pem\"\n"
        "\n"
        "# the cloud\n"
        "[c8y]\n"
        "url = \"new.example.com\" # tenant\n"
        "smartrest.templates = [\n"
        "    \"a\",\n"
        "    \"b\",\n"
        "]\n"
        "smartrest.other = \"x\\\"y\"\n"
        "\n"
        "[software.plugin]\n"
        "default = \"apt\"\n"
        "\n"
        "[device.cryptoki]\n"
        "mode = \"socket\"\n");
    assert_str(doc, "device.cryptoki.mode", "socket");
    assert_str(doc, "c8y.smartrest.other", "x\"y");
    toml_free(doc);
}

static void test_unset_removes_only_the_line(void **state)
{
    (void)state;
    struct toml_doc *doc = parse_ok(upstream_doc);
    size_t len;

    assert_int_equal(unset(doc, "c8y.url"), TE_OK);
    assert_int_equal(unset(doc, "c8y.smartrest.templates"), TE_OK); /* a multi-line value */
    assert_int_equal(unset(doc, "c8y.url"), TE_ERR_NOT_FOUND);
    assert_int_equal(unset(doc, "nothing.here"), TE_ERR_NOT_FOUND);
    assert_string_equal(toml_text(doc, &len),
        "# managed by hand, keep this comment\n"
        "[device]\n"
        "type = \"thin-edge.io\"   # upstream key we do not model\n"
        "cert_path = \"/etc/tedge/device-certs/tedge-certificate.pem\"\n"
        "\n"
        "# the cloud\n"
        "[c8y]\n"
        "\n"
        "[software.plugin]\n"
        "default = \"apt\"\n");
    /* set after unset: the emptied table keeps receiving its keys */
    set_str(doc, "c8y.url", "again.example.com");
    assert_non_null(strstr(toml_text(doc, NULL), "[c8y]\nurl = \"again.example.com\"\n\n"));
    /* a table cannot be unset as a value */
    assert_int_equal(unset(doc, "device"), TE_ERR_INVALID);
    toml_free(doc);
}

static void test_set_edge_cases(void **state)
{
    (void)state;
    struct te_error err = {0};
    struct toml_value v = {.type = TOML_STRING, .str = "v"};
    const char *p_ab[] = {"a", "b"}, *p_a[] = {"a"};
    struct toml_doc *doc;

    /* empty document: a single key at the root, then a table */
    doc = parse_ok("");
    set_str(doc, "k", "1");
    set_str(doc, "t.k", "2");
    assert_string_equal(toml_text(doc, NULL), "k = \"1\"\n\n[t]\nk = \"2\"\n");
    toml_free(doc);
    /* no newline at the end of the file */
    doc = parse_ok("[t]\na = 1");
    set_str(doc, "t.b", "x");
    assert_string_equal(toml_text(doc, NULL), "[t]\na = 1\nb = \"x\"\n");
    toml_free(doc);
    doc = parse_ok("[t]");
    set_str(doc, "t.b", "x");
    assert_string_equal(toml_text(doc, NULL), "[t]\nb = \"x\"\n");
    toml_free(doc);
    /* a CRLF file gets CRLF lines */
    doc = parse_ok("[t]\r\na = 1\r\n");
    set_str(doc, "t.b", "x");
    set_str(doc, "u.c", "y");
    assert_string_equal(toml_text(doc, NULL), "[t]\r\na = 1\r\nb = \"x\"\r\n\r\n[u]\r\nc = \"y\"\r\n");
    toml_free(doc);
    /* an implicit table gets its own header at the end */
    doc = parse_ok("[a.b]\nx = 1\n");
    set_str(doc, "a.y", "z");
    assert_string_equal(toml_text(doc, NULL), "[a.b]\nx = 1\n\n[a]\ny = \"z\"\n");
    toml_free(doc);
    /* inline tables are re-rendered, order kept */
    doc = parse_ok("c8y = { url = \"a\", mqtt = \"b\" } # inline\n");
    set_str(doc, "c8y.url", "new");
    set_str(doc, "c8y.bridge.topic_prefix", "p");
    assert_string_equal(toml_text(doc, NULL),
                        "c8y = { url = \"new\", mqtt = \"b\", bridge = { topic_prefix = \"p\" } } # inline\n");
    assert_int_equal(unset(doc, "c8y.mqtt"), TE_OK);
    assert_string_equal(toml_text(doc, NULL),
                        "c8y = { url = \"new\", bridge = { topic_prefix = \"p\" } } # inline\n");
    toml_free(doc);
    /* crossing a value, or setting a table, is refused and changes nothing */
    doc = parse_ok("a = \"s\"\n[t]\nx = 1\n");
    assert_int_equal(toml_set(doc, p_ab, 2, &v, &err), TE_ERR_INVALID);
    p_a[0] = "t";
    assert_int_equal(toml_set(doc, p_a, 1, &v, &err), TE_ERR_INVALID);
    assert_string_equal(toml_text(doc, NULL), "a = \"s\"\n[t]\nx = 1\n");
    /* other value types render as TOML */
    {
        struct toml_value i = {.type = TOML_INTEGER, .integer = -7};
        struct toml_value b = {.type = TOML_BOOL, .boolean = true};
        struct toml_value s1 = {.type = TOML_STRING, .str = "x"}, s2 = {.type = TOML_STRING, .str = "y\n"};
        struct toml_value *items[] = {&s1, &s2};
        struct toml_value arr = {.type = TOML_ARRAY, .items = items, .n_items = 2};
        const char *pi[] = {"t", "i"}, *pb[] = {"t", "b"}, *pa[] = {"t", "arr"};
        assert_int_equal(toml_set(doc, pi, 2, &i, &err), TE_OK);
        assert_int_equal(toml_set(doc, pb, 2, &b, &err), TE_OK);
        assert_int_equal(toml_set(doc, pa, 2, &arr, &err), TE_OK);
        assert_string_equal(toml_text(doc, NULL),
                            "a = \"s\"\n[t]\nx = 1\ni = -7\nb = true\narr = [\"x\", \"y\\n\"]\n");
        /* keys that need quotes are quoted */
        const char *pq[] = {"t", "with space", "k"};
        assert_int_equal(toml_set(doc, pq, 3, &i, &err), TE_OK);
        assert_non_null(strstr(toml_text(doc, NULL), "[t.\"with space\"]\nk = -7\n"));
    }
    toml_free(doc);
}

static void test_dump_round_trip(void **state)
{
    (void)state;
    struct toml_doc *doc = parse_ok(upstream_doc), *again = NULL;
    struct te_error err = {0};
    char *dump = NULL, *dump2 = NULL;
    size_t len, len2;

    assert_int_equal(toml_dump(doc, &dump, &len), TE_OK);
    assert_string_equal(dump,
        "[device]\n"
        "type = \"thin-edge.io\"\n"
        "cert_path = \"/etc/tedge/device-certs/tedge-certificate.pem\"\n"
        "[c8y]\n"
        "url = \"old.example.com\"\n"
        "[c8y.smartrest]\n"
        "templates = [\"a\", \"b\"]\n"
        "[software]\n"
        "[software.plugin]\n"
        "default = \"apt\"\n");
    assert_int_equal(toml_parse(dump, len, "dump", &again, &err), TE_OK);
    assert_true(toml_equal(toml_root(doc), toml_root(again)));
    assert_int_equal(toml_dump(again, &dump2, &len2), TE_OK);
    assert_int_equal(len, len2);
    assert_memory_equal(dump, dump2, len);
    set_str(again, "device.type", "changed");
    assert_false(toml_equal(toml_root(doc), toml_root(again)));
    free(dump);
    free(dump2);
    toml_free(again);
    toml_free(doc);
}

static void test_split_key(void **state)
{
    (void)state;
    char buf[64];
    const char *parts[4];
    size_t n;
    assert_int_equal(toml_split_key("a.bb.c", buf, sizeof(buf), parts, 4, &n), TE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(parts[1], "bb");
    assert_int_equal(toml_split_key("a..b", buf, sizeof(buf), parts, 4, &n), TE_ERR_INVALID);
    assert_int_equal(toml_split_key("a.", buf, sizeof(buf), parts, 4, &n), TE_ERR_INVALID);
    assert_int_equal(toml_split_key("", buf, sizeof(buf), parts, 4, &n), TE_ERR_INVALID);
    assert_int_equal(toml_split_key("a.b.c.d.e", buf, sizeof(buf), parts, 4, &n), TE_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_keys_and_scalars),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_arrays_inline_tables_and_crlf),
        cmocka_unit_test(test_errors_have_line_and_column),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_set_keeps_the_document),
        cmocka_unit_test(test_unset_removes_only_the_line),
        cmocka_unit_test(test_set_edge_cases),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_split_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
