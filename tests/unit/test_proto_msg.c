/* Unit tests for proto/msg: request and reply round trips for every operation and error shape,
 * byte-exact agreement with the examples in proto/PROTOCOL.md, strict rejection of malformed
 * input with the documented codes, and PIN wiping (request struct and cJSON's heap blocks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fileutil.h"
#include "proto/frame.h"
#include "proto/msg.h"

#define PROTOCOL_MD "proto/PROTOCOL.md" /* the tests run from the repository root */

static struct buf *new_buf(void)
{
    struct buf *b = buf_new(PROTO_MAX_FRAME);
    assert_non_null(b);
    return b;
}

static const uint8_t *bytes(const char *s) { return (const uint8_t *)s; }

static void set_str(char *dst, size_t cap, const char *s)
{
    assert_true(strlen(s) < cap);
    memcpy(dst, s, strlen(s) + 1);
}

/* ---- requests: round trips ----------------------------------------------------------- */

static void round_trip_request(const struct proto_request *in)
{
    struct buf *b = new_buf();
    struct proto_request out;
    struct te_error err = {0};

    assert_int_equal(proto_encode_request(b, in, &err), TE_OK);
    assert_int_equal(proto_decode_request(buf_data(b), buf_len(b), &out, &err), TE_OK);
    /* both structs start zeroed, so a byte compare covers every field */
    assert_memory_equal(&out, in, sizeof(out));
    proto_request_free(&out);
    buf_free(b);
}

static void test_request_round_trip_every_op(void **state)
{
    (void)state;
    struct proto_request r;

    for (int op = 0; op < PROTO_OP_COUNT; op++) {
        proto_request_init(&r, (enum proto_op)op);
        r.has_id = true;
        r.id = 1000 + (uint64_t)op;
        switch ((enum proto_op)op) {
        case PROTO_OP_SIGN:
            r.scheme = SIG_RSA_PSS_SHA384;
            r.digest_len = 48;
            for (size_t i = 0; i < 48; i++)
                r.digest[i] = (uint8_t)(0xF0 ^ i);
            __attribute__((fallthrough)); /* sign takes uri and pin too */
        case PROTO_OP_KEY_INFO:
        case PROTO_OP_PUBLIC_KEY:
        case PROTO_OP_LIST_KEYS:
        case PROTO_OP_DELETE_KEY:
            r.has_uri = true;
            set_str(r.uri, sizeof(r.uri), "pkcs11:token=t%20x;object=k;type=private");
            r.has_pin = true;
            set_str(r.pin, sizeof(r.pin), "12\"34\\56 \xc3\xa9");
            break;
        case PROTO_OP_INIT_TOKEN:
            r.has_uri = true;
            set_str(r.uri, sizeof(r.uri), "pkcs11:slot-id=3");
            r.has_so_pin = true;
            set_str(r.so_pin, sizeof(r.so_pin), "so-secret");
            r.has_label = true;
            set_str(r.label, sizeof(r.label), "exactly-thirty-two-bytes-label!!");
            r.has_pin = true;
            set_str(r.pin, sizeof(r.pin), "user-secret");
            break;
        case PROTO_OP_CREATE_KEY:
            r.has_pin = true;
            set_str(r.pin, sizeof(r.pin), "1234");
            r.key_type = PROTO_KEY_EC;
            r.curve = PROTO_CURVE_P521;
            r.has_label = true;
            set_str(r.label, sizeof(r.label), "new key");
            r.has_key_id = true;
            r.key_id_len = 3;
            memcpy(r.key_id, "\x00\xff\x10", 3);
            break;
        case PROTO_OP_CHANGE_PIN:
            r.user = PROTO_USER_SO;
            r.has_old_pin = true;
            set_str(r.old_pin, sizeof(r.old_pin), "old");
            r.has_new_pin = true;
            set_str(r.new_pin, sizeof(r.new_pin), "new");
            break;
        default:
            break;
        }
        round_trip_request(&r);
        proto_request_free(&r);
    }

    /* RSA create_key with bits, no optional members, no id */
    proto_request_init(&r, PROTO_OP_CREATE_KEY);
    r.key_type = PROTO_KEY_RSA;
    r.bits = 3072;
    r.has_label = true;
    set_str(r.label, sizeof(r.label), "rsa");
    round_trip_request(&r);
}

static void test_request_limits_exactly_at_max_are_accepted(void **state)
{
    (void)state;
    struct proto_request r;

    proto_request_init(&r, PROTO_OP_SIGN);
    r.has_uri = true;
    memset(r.uri, 'u', PROTO_URI_MAX);
    r.has_pin = true;
    memset(r.pin, 'p', PROTO_PIN_MAX);
    r.scheme = SIG_ECDSA_SHA512;
    r.digest_len = 64;
    round_trip_request(&r);
    proto_request_free(&r);
}

static void test_encode_request_refuses_bad_input(void **state)
{
    (void)state;
    struct proto_request r;
    struct buf *b = new_buf();
    struct te_error err = {0};

    proto_request_init(&r, PROTO_OP_SIGN);
    r.scheme = SIG_ECDSA_SHA256;
    r.digest_len = 20; /* not a SHA-256 digest */
    assert_int_equal(proto_encode_request(b, &r, &err), TE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "needs a 32-byte sha256 digest"));
    assert_int_equal(buf_len(b), 0);

    proto_request_init(&r, PROTO_OP_DELETE_KEY); /* uri is required */
    assert_int_equal(proto_encode_request(b, &r, &err), TE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "\"uri\""));

    proto_request_init(&r, PROTO_OP_KEY_INFO);
    r.has_pin = true;
    memset(r.pin, 'p', sizeof(r.pin)); /* not NUL-terminated within the limit */
    assert_int_equal(proto_encode_request(b, &r, &err), TE_ERR_INVALID);
    proto_request_free(&r);

    proto_request_init(&r, PROTO_OP_COUNT);
    assert_int_equal(proto_encode_request(b, &r, &err), TE_ERR_INVALID);
    buf_free(b);
}

/* ---- requests: strict decoding --------------------------------------------------------- */

struct bad_case {
    const char *body;
    size_t len; /* 0: strlen(body) */
    int code;
    const char *msg_part; /* NULL: not checked */
};

static const struct bad_case bad_requests[] = {
    /* not a JSON object at all: malformed */
    {"", 0, TE_ERR_MALFORMED, "empty"},
    {"not json", 0, TE_ERR_MALFORMED, NULL},
    {"[1,2]", 0, TE_ERR_MALFORMED, "not an object"},
    {"\"ping\"", 0, TE_ERR_MALFORMED, "not an object"},
    {"{\"v\":1,\"op\":\"ping\"", 0, TE_ERR_MALFORMED, NULL},
    {"{\"v\":1,\"op\":\"ping\"} {}", 0, TE_ERR_MALFORMED, "after the JSON object"},
    {"{\"v\":1,\"op\":\"pi\0ng\"}", 20, TE_ERR_MALFORMED, "NUL"},
    {"{\"v\":1,\"op\":\"key_info\",\"pin\":\"12\\u000034\"}", 0, TE_ERR_MALFORMED, "\\u0000"},
    {"{\"v\":1,\"op\":\"key_info\",\"pin\":\"\xff\"}", 0, TE_ERR_MALFORMED, "UTF-8"},
    {"{\"v\":1,\"op\":\"key_info\",\"pin\":\"\xc0\xaf\"}", 0, TE_ERR_MALFORMED, "UTF-8"},
    {"{\"v\":1,\"op\":\"key_info\",\"pin\":\"\xed\xa0\x80\"}", 0, TE_ERR_MALFORMED, "UTF-8"},
    {"{\"v\":1,\"op\":\"key_info\",\"pin\":\"\xf4\x90\x80\x80\"}", 0, TE_ERR_MALFORMED, "UTF-8"},
    {"{\"v\":1,\"op\":\"key_info\",\"pin\":\"a\x01\"}", 0, TE_ERR_MALFORMED, "control"},
    {"{\"v\":1,\x01\"op\":\"ping\"}", 0, TE_ERR_MALFORMED, "control"},
    {"\xef\xbb\xbf{\"v\":1,\"op\":\"ping\"}", 0, TE_ERR_MALFORMED, "outside a string"},
    {"{\"v\":01,\"op\":\"ping\"}", 0, TE_ERR_MALFORMED, "number"},
    {"{\"v\":1.,\"op\":\"ping\"}", 0, TE_ERR_MALFORMED, "number"},
    {"{\"v\":-.5,\"op\":\"ping\"}", 0, TE_ERR_MALFORMED, "number"},
    {"{\"v\":1e,\"op\":\"ping\"}", 0, TE_ERR_MALFORMED, "number"},
    {"{\"v\":+1,\"op\":\"ping\"}", 0, TE_ERR_MALFORMED, NULL},
    {"{\"v\":1,\"op\":\"ping\",\"x\":[[[[[[[[1]]]]]]]]}", 0, TE_ERR_MALFORMED, "nesting"},
    /* depth 8 exactly passes the byte checks; it fails later, as an unknown member */
    {"{\"v\":1,\"op\":\"ping\",\"x\":[[[[[[[1]]]]]]]}", 0, TE_ERR_PROTOCOL, "does not take"},
    {"{\"v\":1,\"op\":\"ping\",\"x\":\"abc}", 0, TE_ERR_MALFORMED, "unterminated"},
    {"{\"v\":1,\"op\":\"ping\",\"x\":\"\\u12\"}", 0, TE_ERR_MALFORMED, "escape"},
    /* JSON, but not a valid request: protocol_error */
    {"{\"op\":\"ping\"}", 0, TE_ERR_PROTOCOL, "\"v\" is missing"},
    {"{\"v\":\"1\",\"op\":\"ping\"}", 0, TE_ERR_PROTOCOL, "\"v\" must be a number"},
    {"{\"v\":2,\"op\":\"ping\"}", 0, TE_ERR_PROTOCOL, "supports version 1"},
    {"{\"v\":1.5,\"op\":\"ping\"}", 0, TE_ERR_PROTOCOL, NULL},
    {"{\"v\":1}", 0, TE_ERR_PROTOCOL, "\"op\" is missing"},
    {"{\"v\":1,\"op\":7}", 0, TE_ERR_PROTOCOL, "\"op\" must be a string"},
    {"{\"v\":1,\"op\":\"frobnicate\"}", 0, TE_ERR_PROTOCOL, "\"frobnicate\" is unknown"},
    {"{\"v\":1,\"op\":\"PING\"}", 0, TE_ERR_PROTOCOL, "unknown"},
    {"{\"v\":1,\"op\":\"a-very-long-operation-name-that-no-one-knows\"}", 0, TE_ERR_PROTOCOL,
     "unknown"},
    {"{\"v\":1,\"id\":3,\"ok\":true,\"result\":{}}", 0, TE_ERR_PROTOCOL, "is a response"},
    {"{\"v\":1,\"op\":\"ping\",\"error\":{}}", 0, TE_ERR_PROTOCOL, "is a response"},
    {"{\"v\":1,\"op\":\"ping\",\"pni\":\"1234\"}", 0, TE_ERR_PROTOCOL, "member \"pni\""},
    {"{\"v\":1,\"op\":\"ping\",\"uri\":\"pkcs11:\"}", 0, TE_ERR_PROTOCOL, "does not take"},
    {"{\"v\":1,\"op\":\"ping\",\"op\":\"sign\"}", 0, TE_ERR_PROTOCOL, "more than once"},
    {"{\"v\":1,\"op\":\"key_info\",\"pin\":\"1\",\"pin\":\"2\"}", 0, TE_ERR_PROTOCOL, "\"pin\" more"},
    {"{\"v\":1,\"op\":\"key_info\",\"uri\":5}", 0, TE_ERR_PROTOCOL, "\"uri\" must be a string"},
    {"{\"v\":1,\"op\":\"key_info\",\"pin\":true}", 0, TE_ERR_PROTOCOL, "\"pin\" must be"},
    {"{\"v\":1,\"op\":\"ping\",\"id\":\"7\"}", 0, TE_ERR_PROTOCOL, "\"id\""},
    {"{\"v\":1,\"op\":\"ping\",\"id\":-1}", 0, TE_ERR_PROTOCOL, "\"id\""},
    {"{\"v\":1,\"op\":\"ping\",\"id\":1.5}", 0, TE_ERR_PROTOCOL, "\"id\""},
    {"{\"v\":1,\"op\":\"ping\",\"id\":9007199254740992}", 0, TE_ERR_PROTOCOL, "\"id\""},
    {"{\"v\":1,\"op\":\"ping\",\"id\":1e400}", 0, TE_ERR_PROTOCOL, "\"id\""},
    {"{\"v\":1,\"op\":\"sign\",\"scheme\":\"ecdsa_sha256\"}", 0, TE_ERR_PROTOCOL,
     "needs the member \"digest\""},
    {"{\"v\":1,\"op\":\"sign\",\"digest\":\"\"}", 0, TE_ERR_PROTOCOL, "\"scheme\""},
    {"{\"v\":1,\"op\":\"sign\",\"scheme\":\"ecdsa_md5\",\"digest\":\"\"}", 0, TE_ERR_PROTOCOL,
     "known signature scheme"},
    {"{\"v\":1,\"op\":\"sign\",\"scheme\":\"ecdsa_sha256\",\"digest\":\"abc\"}", 0,
     TE_ERR_PROTOCOL, "base64"},
    {"{\"v\":1,\"op\":\"sign\",\"scheme\":\"ecdsa_sha256\",\"digest\":\"ab=c\"}", 0,
     TE_ERR_PROTOCOL, "base64"},
    {"{\"v\":1,\"op\":\"sign\",\"scheme\":\"ecdsa_sha256\",\"digest\":\"QR==\"}", 0,
     TE_ERR_PROTOCOL, "base64"},
    {"{\"v\":1,\"op\":\"sign\",\"scheme\":\"ecdsa_sha256\",\"digest\":\"QQ==\\n\"}", 0,
     TE_ERR_PROTOCOL, "base64"},
    {"{\"v\":1,\"op\":\"sign\",\"scheme\":\"ecdsa_sha256\",\"digest\":\"Q Q=\"}", 0,
     TE_ERR_PROTOCOL, "base64"},
    {"{\"v\":1,\"op\":\"sign\",\"scheme\":\"ecdsa_sha256\",\"digest\":\"-_-_\"}", 0,
     TE_ERR_PROTOCOL, "base64"},
    {"{\"v\":1,\"op\":\"sign\",\"scheme\":\"ecdsa_sha256\",\"digest\":\"====\"}", 0,
     TE_ERR_PROTOCOL, "base64"},
    {"{\"v\":1,\"op\":\"sign\",\"scheme\":\"ecdsa_sha256\",\"digest\":\"QQ==\"}", 0,
     TE_ERR_INVALID, "needs a 32-byte sha256 digest"},
    {"{\"v\":1,\"op\":\"create_key\",\"key_type\":\"dsa\",\"label\":\"k\"}", 0, TE_ERR_PROTOCOL,
     "\"key_type\""},
    {"{\"v\":1,\"op\":\"create_key\",\"key_type\":\"ec\",\"curve\":\"P-192\",\"label\":\"k\"}", 0,
     TE_ERR_PROTOCOL, "\"curve\""},
    {"{\"v\":1,\"op\":\"create_key\",\"key_type\":\"rsa\",\"curve\":\"P-256\",\"label\":\"k\"}",
     0, TE_ERR_INVALID, "not \"curve\""},
    {"{\"v\":1,\"op\":\"create_key\",\"key_type\":\"ec\",\"bits\":2048,\"label\":\"k\"}", 0,
     TE_ERR_INVALID, "not \"bits\""},
    {"{\"v\":1,\"op\":\"create_key\",\"key_type\":\"rsa\",\"bits\":512,\"label\":\"k\"}", 0,
     TE_ERR_INVALID, "\"bits\""},
    {"{\"v\":1,\"op\":\"create_key\",\"key_type\":\"rsa\",\"bits\":20000,\"label\":\"k\"}", 0,
     TE_ERR_INVALID, "\"bits\""},
    {"{\"v\":1,\"op\":\"create_key\",\"key_type\":\"rsa\"}", 0, TE_ERR_PROTOCOL, "\"label\""},
    {"{\"v\":1,\"op\":\"change_pin\",\"user\":\"admin\",\"old_pin\":\"1\",\"new_pin\":\"2\"}", 0,
     TE_ERR_PROTOCOL, "\"user\""},
    {"{\"v\":1,\"op\":\"change_pin\",\"old_pin\":\"1\"}", 0, TE_ERR_PROTOCOL, "\"new_pin\""},
    {"{\"v\":1,\"op\":\"delete_key\"}", 0, TE_ERR_PROTOCOL, "\"uri\""},
    {"{\"v\":1,\"op\":\"init_token\",\"so_pin\":\"1\",\"pin\":\"2\",\"label\":"
     "\"thirty-three-bytes-is-one-too-many\"}", 0, TE_ERR_TOO_LARGE, "limit is 32 bytes"},
};

static void test_decode_request_rejects_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
        const struct bad_case *c = &bad_requests[i];
        struct proto_request req;
        struct te_error err = {0};
        size_t len = c->len ? c->len : strlen(c->body);
        int r = proto_decode_request(bytes(c->body), len, &req, &err);
        if (r != c->code || (c->msg_part && !strstr(err.msg, c->msg_part)))
            fail_msg("case %zu (%s): got %d (%s), want %d with \"%s\"", i, c->body, r, err.msg,
                     c->code, c->msg_part ? c->msg_part : "");
        assert_int_equal(err.code, c->code);
        assert_true(strlen(err.msg) > 10);
        proto_request_free(&req);
    }
}

static void test_decode_request_string_limits(void **state)
{
    (void)state;
    char body[2048], big[1100];
    struct proto_request req;
    struct te_error err = {0};

    memset(big, 'a', sizeof(big));
    big[PROTO_URI_MAX + 1] = '\0';
    snprintf(body, sizeof(body), "{\"v\":1,\"op\":\"key_info\",\"uri\":\"%s\"}", big);
    assert_int_equal(proto_decode_request(bytes(body), strlen(body), &req, &err), TE_ERR_TOO_LARGE);
    assert_non_null(strstr(err.msg, "limit is 1024 bytes"));
    proto_request_free(&req);

    big[PROTO_PIN_MAX + 1] = '\0';
    snprintf(body, sizeof(body), "{\"v\":1,\"op\":\"key_info\",\"pin\":\"%s\"}", big);
    assert_int_equal(proto_decode_request(bytes(body), strlen(body), &req, &err), TE_ERR_TOO_LARGE);
    assert_null(strstr(err.msg, big)); /* the PIN is never echoed */
    proto_request_free(&req);

    /* 65 bytes of digest: over PROTO_DIGEST_MAX before any scheme check */
    snprintf(body, sizeof(body), "{\"v\":1,\"op\":\"sign\",\"scheme\":\"ecdsa_sha512\",\"digest\":"
             "\"%s\"}", "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=");
    assert_int_equal(proto_decode_request(bytes(body), strlen(body), &req, &err), TE_ERR_TOO_LARGE);
    proto_request_free(&req);

    /* too many members */
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"v\":1,\"op\":\"ping\"");
    for (int i = 0; i < 70; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, ",\"m%d\":0", i);
    snprintf(body + n, sizeof(body) - n, "}");
    assert_int_equal(proto_decode_request(bytes(body), strlen(body), &req, &err), TE_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "more than 64 members"));
    proto_request_free(&req);
}

static void test_decode_request_keeps_id_and_version_for_the_error_reply(void **state)
{
    (void)state;
    struct proto_request req;
    struct te_error err = {0};
    const char *body = "{\"v\":1,\"op\":\"nope\",\"id\":42}";

    assert_int_equal(proto_decode_request(bytes(body), strlen(body), &req, &err), TE_ERR_PROTOCOL);
    assert_true(req.has_id);
    assert_int_equal(req.id, 42);
    assert_int_equal(req.version, 1);
    proto_request_free(&req);

    body = "{\"v\":3,\"op\":\"ping\",\"id\":7}";
    assert_int_equal(proto_decode_request(bytes(body), strlen(body), &req, &err), TE_ERR_PROTOCOL);
    assert_true(req.has_id);
    assert_int_equal(req.version, 3);
    proto_request_free(&req);

    body = "{\"v\":1,\"op\":\"ping\",\"id\":\"seven\"}";
    assert_int_equal(proto_decode_request(bytes(body), strlen(body), &req, &err), TE_ERR_PROTOCOL);
    assert_false(req.has_id);
    proto_request_free(&req);
}

static void test_decode_request_null_is_absent_and_whitespace_is_fine(void **state)
{
    (void)state;
    struct proto_request req;
    struct te_error err = {0};
    const char *body = " \r\n{ \"op\" : \"key_info\", \"uri\": null, \"pin\":null,\t\"v\": 1 ,"
                       "\"id\":null}\n";

    assert_int_equal(proto_decode_request(bytes(body), strlen(body), &req, &err), TE_OK);
    assert_int_equal(req.op, PROTO_OP_KEY_INFO);
    assert_false(req.has_uri);
    assert_false(req.has_pin);
    assert_false(req.has_id);
    proto_request_free(&req);

    /* escapes decode to UTF-8; a non-BMP character through a surrogate pair */
    body = "{\"v\":1,\"op\":\"key_info\",\"uri\":\"pkcs11:token=\\u00e9\\ud83d\\ude00\\/x\"}";
    assert_int_equal(proto_decode_request(bytes(body), strlen(body), &req, &err), TE_OK);
    assert_string_equal(req.uri, "pkcs11:token=\xc3\xa9\xf0\x9f\x98\x80/x");
    proto_request_free(&req);

    /* a lone surrogate is not a character */
    body = "{\"v\":1,\"op\":\"key_info\",\"uri\":\"\\ud83d\"}";
    assert_int_equal(proto_decode_request(bytes(body), strlen(body), &req, &err),
                     TE_ERR_MALFORMED);
    proto_request_free(&req);
}

/* ---- PINs are wiped ---------------------------------------------------------------------- */

#define SECRET "PIN-S3cr3t-4711"

static int frees_seen;
static int frees_with_secret;

static void *hook_malloc(size_t n) { return malloc(n); }

static void hook_free(void *p)
{
    if (p != NULL) {
        frees_seen++;
        if (memmem(p, malloc_usable_size(p), SECRET, strlen(SECRET)) != NULL)
            frees_with_secret++;
    }
    free(p);
}

static void install_free_spy(void)
{
    cJSON_Hooks hooks = {.malloc_fn = hook_malloc, .free_fn = hook_free};
    frees_seen = 0;
    frees_with_secret = 0;
    cJSON_InitHooks(&hooks);
}

static void test_pins_are_wiped(void **state)
{
    (void)state;
    const char *body = "{\"v\":1,\"op\":\"change_pin\",\"old_pin\":\"" SECRET "\","
                       "\"new_pin\":\"" SECRET "\"}";
    const char *init = "{\"v\":1,\"op\":\"init_token\",\"so_pin\":\"" SECRET "\","
                       "\"label\":\"t\",\"pin\":\"" SECRET "\"}";
    struct proto_request req;
    struct te_error err = {0};
    struct buf *b = new_buf();
    static const uint8_t zero[sizeof(struct proto_request)];

    /* control: cJSON alone leaves the PIN in the blocks it frees, so the spy can see it */
    install_free_spy();
    cJSON_Delete(cJSON_Parse(body));
    assert_true(frees_with_secret > 0);

    /* the decoder wipes cJSON's copies before they are freed */
    install_free_spy();
    assert_int_equal(proto_decode_request(bytes(body), strlen(body), &req, &err), TE_OK);
    assert_string_equal(req.old_pin, SECRET);
    assert_string_equal(req.new_pin, SECRET);
    assert_true(frees_seen > 0);
    assert_int_equal(frees_with_secret, 0);
    proto_request_free(&req);
    assert_memory_equal(&req, zero, sizeof(req));

    assert_int_equal(proto_decode_request(bytes(init), strlen(init), &req, &err), TE_OK);
    assert_string_equal(req.so_pin, SECRET);
    assert_string_equal(req.pin, SECRET);
    proto_request_free(&req);
    assert_memory_equal(&req, zero, sizeof(req));

    /* a request rejected after the PIN was read: still wiped */
    const char *bad = "{\"v\":1,\"op\":\"sign\",\"pin\":\"" SECRET "\",\"scheme\":\"x\","
                      "\"digest\":\"\"}";
    frees_with_secret = 0;
    assert_int_equal(proto_decode_request(bytes(bad), strlen(bad), &req, &err), TE_ERR_PROTOCOL);
    assert_null(strstr(err.msg, SECRET));
    assert_int_equal(frees_with_secret, 0);
    proto_request_free(&req);
    assert_memory_equal(&req, zero, sizeof(req));

    /* the encoder (client side) wipes its cJSON copies too */
    proto_request_init(&req, PROTO_OP_KEY_INFO);
    req.has_pin = true;
    set_str(req.pin, sizeof(req.pin), SECRET);
    frees_seen = 0;
    frees_with_secret = 0;
    assert_int_equal(proto_encode_request(b, &req, &err), TE_OK);
    assert_non_null(memmem(buf_data(b), buf_len(b), SECRET, strlen(SECRET)));
    assert_true(frees_seen > 0);
    assert_int_equal(frees_with_secret, 0);
    proto_request_free(&req);

    cJSON_InitHooks(NULL);
    buf_free(b);
}

/* ---- replies ----------------------------------------------------------------------------- */

static void fill_key(struct proto_key_info *k, int n)
{
    memset(k, 0, sizeof(*k));
    k->type = n % 2 ? PROTO_KEY_RSA : PROTO_KEY_EC;
    k->bits = n % 2 ? 4096 : 384;
    k->curve = n % 2 ? PROTO_CURVE_NONE : PROTO_CURVE_P384;
    snprintf(k->label, sizeof(k->label), "key \"%d\"", n);
    k->key_id_len = 2;
    k->key_id[0] = (uint8_t)n;
    k->key_id[1] = 0xAB;
    set_str(k->token_label, sizeof(k->token_label), "tok");
    k->always_authenticate = n % 3 == 0;
    k->schemes = n % 2 ? (1u << SIG_RSA_PKCS1_SHA256) | (1u << SIG_RSA_PSS_SHA512)
                       : (1u << SIG_ECDSA_SHA384);
    snprintf(k->uri, sizeof(k->uri), "pkcs11:token=tok;id=%%%02x;type=private", n);
}

static void fill_token(struct proto_token_info *t, int n)
{
    memset(t, 0, sizeof(*t));
    t->slot_id = 1852049205u + (uint64_t)n;
    snprintf(t->label, sizeof(t->label), "token-%d", n);
    set_str(t->serial, sizeof(t->serial), "1f2d3c4b5a697887");
    set_str(t->manufacturer, sizeof(t->manufacturer), "SoftHSM project");
    set_str(t->model, sizeof(t->model), "SoftHSM v2");
    t->flags = 1069;
    t->login_required = true;
    t->pin_count_low = n == 1;
    t->pin_final_try = n == 2;
    t->pin_locked = n == 3;
    snprintf(t->uri, sizeof(t->uri), "pkcs11:token=token-%d", n);
}

static void round_trip_response(const struct proto_response *in)
{
    struct buf *b = new_buf();
    struct proto_response *out = calloc(1, sizeof(*out));
    struct proto_response *a = malloc(sizeof(*a)), *c = malloc(sizeof(*c));
    struct te_error err = {0};

    assert_int_equal(proto_encode_response(b, in, &err), TE_OK);
    assert_int_equal(proto_decode_response(buf_data(b), buf_len(b), in->op, out, &err), TE_OK);
    assert_int_equal(out->token_count, in->token_count);
    assert_int_equal(out->key_count, in->key_count);
    if (in->token_count)
        assert_memory_equal(out->tokens, in->tokens, in->token_count * sizeof(*in->tokens));
    if (in->key_count)
        assert_memory_equal(out->keys, in->keys, in->key_count * sizeof(*in->keys));
    memcpy(a, in, sizeof(*a));
    memcpy(c, out, sizeof(*c));
    a->tokens = c->tokens = NULL;
    a->keys = c->keys = NULL;
    assert_memory_equal(c, a, sizeof(*a));
    proto_response_free(out);
    free(out);
    free(a);
    free(c);
    buf_free(b);
}

static void test_response_round_trip_every_op(void **state)
{
    (void)state;
    struct proto_response *r = malloc(sizeof(*r));
    struct proto_request req;
    struct proto_key_info keys[3];
    struct proto_token_info tokens[4];

    assert_non_null(r);
    for (int i = 0; i < 3; i++)
        fill_key(&keys[i], i);
    for (int i = 0; i < 4; i++)
        fill_token(&tokens[i], i);
    proto_request_init(&req, PROTO_OP_PING);
    req.has_id = true;
    for (int op = 0; op < PROTO_OP_COUNT; op++) {
        req.id = 500 + (uint64_t)op;
        proto_response_init(r, &req, (enum proto_op)op);
        assert_true(r->has_id && r->id == req.id && r->ok);
        switch ((enum proto_op)op) {
        case PROTO_OP_PING:
            set_str(r->ping.server_version, sizeof(r->ping.server_version), "0.1.0");
            r->ping.versions = 1u << 1;
            break;
        case PROTO_OP_KEY_INFO:
        case PROTO_OP_CREATE_KEY:
            fill_key(&r->key, op);
            break;
        case PROTO_OP_SIGN:
            r->signature_len = PROTO_SIG_MAX;
            for (size_t i = 0; i < PROTO_SIG_MAX; i++)
                r->signature[i] = (uint8_t)(i * 13);
            break;
        case PROTO_OP_PUBLIC_KEY:
            set_str(r->pem, sizeof(r->pem),
                    "-----BEGIN PUBLIC KEY-----\nMFkw/+==\n-----END PUBLIC KEY-----\n");
            break;
        case PROTO_OP_LIST_TOKENS:
            r->tokens = tokens;
            r->token_count = 4;
            break;
        case PROTO_OP_LIST_KEYS:
            r->keys = keys;
            r->key_count = 3;
            break;
        case PROTO_OP_STATUS:
            r->status.token_present = true;
            set_str(r->status.token_label, sizeof(r->status.token_label), "tedge");
            r->status.last_success = 1718000000;
            r->status.signatures = PROTO_COUNTER_MAX;
            r->status.errors = 1;
            r->status.logins = 2;
            r->status.reloads = 3;
            set_str(r->status.module_path, sizeof(r->status.module_path), "/usr/lib/x.so");
            break;
        case PROTO_OP_INIT_TOKEN:
            fill_token(&r->token, 9);
            break;
        default:
            break;
        }
        round_trip_response(r);
    }
    /* empty lists, and a list reply without an id */
    proto_response_init(r, NULL, PROTO_OP_LIST_KEYS);
    round_trip_response(r);
    free(r);
}

static void test_error_round_trip_every_shape(void **state)
{
    (void)state;
    struct buf *b = new_buf();
    struct proto_request req;
    struct proto_response out;
    struct te_error e = {0}, got = {0}, err = {0};

    proto_request_init(&req, PROTO_OP_SIGN);
    req.has_id = true;
    req.id = 7;

    /* with a CK_RV and its name */
    te_error_set_ckr(&e, TE_ERR_PIN_INCORRECT, 0xA0, false, "The PIN is wrong.");
    assert_int_equal(proto_encode_error(b, &req, &e, "CKR_PIN_INCORRECT", &err), TE_OK);
    assert_int_equal(proto_decode_response(buf_data(b), buf_len(b), PROTO_OP_SIGN, &out, &err),
                     TE_OK);
    assert_false(out.ok);
    assert_true(out.has_id);
    assert_int_equal(out.id, 7);
    assert_string_equal(out.error.code_name, "pin_incorrect");
    assert_string_equal(out.error.ckr_name, "CKR_PIN_INCORRECT");
    assert_int_equal(out.error.supported_versions, 0);
    assert_int_equal(proto_error_to_te(&out.error, &got), TE_ERR_PIN_INCORRECT);
    assert_int_equal(got.code, TE_ERR_PIN_INCORRECT);
    assert_true(got.has_ckr);
    assert_int_equal(got.ckr, 0xA0);
    assert_false(got.retryable);
    assert_string_equal(got.msg, "The PIN is wrong.");
    proto_response_free(&out);

    /* a CK_RV without a known name: "ckr" but no "ckr_name" */
    te_error_set_ckr(&e, TE_ERR_PKCS11, 0x80000001UL, true, "Vendor error.");
    assert_int_equal(proto_encode_error(b, &req, &e, NULL, &err), TE_OK);
    assert_non_null(strstr((const char *)buf_data(b), "\"ckr\":2147483649"));
    assert_null(strstr((const char *)buf_data(b), "ckr_name"));
    assert_int_equal(proto_decode_response(buf_data(b), buf_len(b), PROTO_OP_SIGN, &out, &err),
                     TE_OK);
    assert_int_equal(proto_error_to_te(&out.error, &got), TE_ERR_PKCS11);
    assert_true(got.retryable);
    assert_int_equal(got.ckr, 0x80000001UL);
    proto_response_free(&out);

    /* no CK_RV, retryable, no request at all (busy): no id, no ckr, no versions */
    te_error_set(&e, TE_ERR_BUSY, "Too many clients.");
    e.retryable = true;
    assert_int_equal(proto_encode_error(b, NULL, &e, "CKR_IGNORED", &err), TE_OK);
    assert_string_equal((const char *)buf_data(b),
                        "{\"v\":1,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":"
                        "\"Too many clients.\",\"retryable\":true}}");
    assert_int_equal(proto_decode_response(buf_data(b), buf_len(b), PROTO_OP_PING, &out, &err),
                     TE_OK);
    assert_false(out.has_id);
    assert_int_equal(proto_error_to_te(&out.error, &got), TE_ERR_BUSY);
    assert_false(got.has_ckr);
    assert_true(got.retryable);
    proto_response_free(&out);

    /* a request in another version: the reply lists ours */
    req.version = 2;
    te_error_set(&e, TE_ERR_PROTOCOL, "Version 2 is not supported.");
    assert_int_equal(proto_encode_error(b, &req, &e, NULL, &err), TE_OK);
    assert_non_null(strstr((const char *)buf_data(b), "\"supported_versions\":[1]"));
    assert_int_equal(proto_decode_response(buf_data(b), buf_len(b), PROTO_OP_PING, &out, &err),
                     TE_OK);
    assert_int_equal(out.error.supported_versions, 1u << 1);
    proto_response_free(&out);

    /* TE_OK is never sent as an error code */
    te_error_clear(&e);
    assert_int_equal(proto_encode_error(b, NULL, &e, NULL, &err), TE_OK);
    assert_non_null(strstr((const char *)buf_data(b), "\"code\":\"internal_error\""));

    /* every code in the table survives the trip */
    for (int code = TE_ERR_NOMEM; code >= TE_ERR_INTERNAL; code--) {
        te_error_set(&e, code, "x");
        assert_int_equal(proto_encode_error(b, NULL, &e, NULL, &err), TE_OK);
        assert_int_equal(proto_decode_response(buf_data(b), buf_len(b), PROTO_OP_PING, &out, &err),
                         TE_OK);
        assert_int_equal(proto_error_to_te(&out.error, &got), code);
        assert_string_equal(out.error.code_name, te_errcode(code));
        proto_response_free(&out);
    }
    buf_free(b);
}

static void test_decode_error_unknown_code_and_long_message(void **state)
{
    (void)state;
    struct proto_response out;
    struct te_error err = {0}, got = {0};
    char body[2048];
    size_t n;

    const char *future = "{\"v\":1,\"ok\":false,\"error\":{\"code\":\"quantum_flux\","
                         "\"message\":\"Something new.\",\"retryable\":false,\"hint\":\"x\"}}";
    assert_int_equal(proto_decode_response(bytes(future), strlen(future), PROTO_OP_SIGN, &out,
                                           &err), TE_OK);
    assert_string_equal(out.error.code_name, "quantum_flux");
    assert_int_equal(proto_error_to_te(&out.error, &got), TE_ERR_INTERNAL);
    assert_string_equal(got.msg, "Something new.");
    proto_response_free(&out);

    /* a ckr_name without a ckr means nothing; versions we cannot represent are skipped */
    const char *odd = "{\"v\":1,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"m\","
                      "\"ckr_name\":\"CKR_X\",\"retryable\":true,\"supported_versions\":[0,1,40]}}";
    assert_int_equal(proto_decode_response(bytes(odd), strlen(odd), PROTO_OP_PING, &out, &err),
                     TE_OK);
    assert_false(out.error.has_ckr);
    assert_string_equal(out.error.ckr_name, "");
    assert_int_equal(out.error.supported_versions, 1u << 1);
    proto_response_free(&out);

    /* 300 two-byte characters: cut to at most 511 bytes, on a character boundary */
    n = (size_t)snprintf(body, sizeof(body), "{\"v\":1,\"ok\":false,\"error\":{\"code\":\"io_error\","
                         "\"retryable\":true,\"message\":\"");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "\xc3\xa9");
    snprintf(body + n, sizeof(body) - n, "\"}}");
    assert_int_equal(proto_decode_response(bytes(body), strlen(body), PROTO_OP_SIGN, &out, &err),
                     TE_OK);
    assert_int_equal(strlen(out.error.message), 510);
    proto_response_free(&out);
}

static const struct bad_case bad_replies[] = {
    {"{\"v\":1,\"id\":1,\"ok\":true}", 0, TE_ERR_PROTOCOL, "\"result\" is missing"},
    {"{\"v\":1,\"id\":1,\"ok\":false}", 0, TE_ERR_PROTOCOL, "\"error\" is missing"},
    {"{\"v\":1,\"ok\":true,\"result\":{\"server_version\":\"1\",\"versions\":[1]},\"error\":{}}",
     0, TE_ERR_PROTOCOL, "must not have \"error\""},
    {"{\"v\":1,\"ok\":false,\"result\":{},\"error\":{}}", 0, TE_ERR_PROTOCOL,
     "must not have \"result\""},
    {"{\"v\":1,\"op\":\"ping\",\"id\":1}", 0, TE_ERR_PROTOCOL, "request, not a reply"},
    {"{\"v\":2,\"ok\":true,\"result\":{}}", 0, TE_ERR_PROTOCOL, "version 2"},
    {"{\"ok\":true,\"result\":{}}", 0, TE_ERR_PROTOCOL, "\"v\""},
    {"{\"v\":1,\"ok\":\"yes\",\"result\":{}}", 0, TE_ERR_PROTOCOL, "\"ok\""},
    {"{\"v\":1,\"id\":\"1\",\"ok\":true,\"result\":{}}", 0, TE_ERR_PROTOCOL, "\"id\""},
    {"{\"v\":1,\"ok\":true,\"result\":[]}", 0, TE_ERR_PROTOCOL, "must be an object"},
    {"{\"v\":1,\"ok\":true,\"ok\":true,\"result\":{}}", 0, TE_ERR_PROTOCOL, "more than once"},
    {"{\"v\":1,\"ok\":false,\"error\":{\"code\":\"ok\",\"message\":\"\",\"retryable\":false}}", 0,
     TE_ERR_PROTOCOL, "\"ok\""},
    {"{\"v\":1,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"m\"}}", 0,
     TE_ERR_PROTOCOL, "\"retryable\""},
    {"{\"v\":1,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"m\",\"retryable\":true,"
     "\"ckr\":-1}}", 0, TE_ERR_PROTOCOL, "\"ckr\""},
    {"{\"v\":1,\"ok\":false,\"error\":\"busy\"}", 0, TE_ERR_PROTOCOL, "must be an object"},
    {"{\"v\":1,\"ok\":false,\"error\":{\"code\":\"\",\"message\":\"m\",\"retryable\":true}}",
     0, TE_ERR_PROTOCOL, "error code"},
    {"{\"v\":1,\"ok\":false,\"error\":{\"code\":\"Not-A-Code\",\"message\":\"m\","
     "\"retryable\":true}}", 0, TE_ERR_PROTOCOL, "error code"},
    {"not json", 0, TE_ERR_MALFORMED, NULL},
};

static void test_decode_response_rejects_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_replies) / sizeof(bad_replies[0]); i++) {
        const struct bad_case *c = &bad_replies[i];
        struct proto_response out;
        struct te_error err = {0};
        int r = proto_decode_response(bytes(c->body), strlen(c->body), PROTO_OP_PING, &out, &err);
        if (r != c->code || (c->msg_part && !strstr(err.msg, c->msg_part)))
            fail_msg("case %zu (%s): got %d (%s), want %d with \"%s\"", i, c->body, r, err.msg,
                     c->code, c->msg_part ? c->msg_part : "");
        proto_response_free(&out);
    }
}

static void test_decode_response_result_checks(void **state)
{
    (void)state;
    struct proto_response out;
    struct te_error err = {0};
    char *body = malloc(PROTO_MAX_FRAME);
    size_t n;

    /* unknown members, an unknown key type and unknown scheme names are tolerated */
    const char *future = "{\"v\":1,\"id\":2,\"ok\":true,\"extra\":{\"a\":[1]},\"result\":"
                         "{\"type\":\"ed25519\",\"bits\":255,\"curve\":\"Ed25519\",\"label\":\"k\","
                         "\"key_id\":\"\",\"token_label\":\"t\",\"always_authenticate\":true,"
                         "\"schemes\":[\"eddsa\",\"ecdsa_sha256\"],\"uri\":\"pkcs11:\","
                         "\"new_field\":1}}";
    assert_int_equal(proto_decode_response(bytes(future), strlen(future), PROTO_OP_KEY_INFO, &out,
                                           &err), TE_OK);
    assert_int_equal(out.key.type, PROTO_KEY_UNKNOWN);
    assert_int_equal(out.key.curve, PROTO_CURVE_NONE);
    assert_int_equal(out.key.schemes, 1u << SIG_ECDSA_SHA256);
    assert_int_equal(out.key.key_id_len, 0);
    proto_response_free(&out);

    /* a key without "schemes" */
    const char *missing = "{\"v\":1,\"ok\":true,\"result\":{\"type\":\"ec\",\"bits\":256,"
                          "\"curve\":\"P-256\",\"label\":\"k\",\"key_id\":\"\",\"token_label\":\"t\","
                          "\"always_authenticate\":true,\"uri\":\"pkcs11:\"}}";
    assert_int_equal(proto_decode_response(bytes(missing), strlen(missing), PROTO_OP_KEY_INFO,
                                           &out, &err), TE_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "\"schemes\""));
    proto_response_free(&out);

    /* signatures: empty, not base64, over the limit */
    const char *empty = "{\"v\":1,\"ok\":true,\"result\":{\"signature\":\"\"}}";
    assert_int_equal(proto_decode_response(bytes(empty), strlen(empty), PROTO_OP_SIGN, &out, &err),
                     TE_ERR_PROTOCOL);
    proto_response_free(&out);
    const char *notb64 = "{\"v\":1,\"ok\":true,\"result\":{\"signature\":\"!!!!\"}}";
    assert_int_equal(proto_decode_response(bytes(notb64), strlen(notb64), PROTO_OP_SIGN, &out,
                                           &err), TE_ERR_PROTOCOL);
    proto_response_free(&out);
    n = (size_t)snprintf(body, PROTO_MAX_FRAME, "{\"v\":1,\"ok\":true,\"result\":{\"signature\":\"");
    for (int i = 0; i < (PROTO_SIG_MAX + 3) / 3 * 4 + 4; i++)
        body[n++] = 'A';
    n += (size_t)snprintf(body + n, PROTO_MAX_FRAME - n, "\"}}");
    assert_int_equal(proto_decode_response(bytes(body), n, PROTO_OP_SIGN, &out, &err),
                     TE_ERR_TOO_LARGE);
    proto_response_free(&out);

    /* a list longer than PROTO_LIST_MAX */
    n = (size_t)snprintf(body, PROTO_MAX_FRAME, "{\"v\":1,\"ok\":true,\"result\":{\"tokens\":[");
    for (int i = 0; i <= PROTO_LIST_MAX; i++)
        n += (size_t)snprintf(body + n, PROTO_MAX_FRAME - n, "%s{}", i ? "," : "");
    n += (size_t)snprintf(body + n, PROTO_MAX_FRAME - n, "]}}");
    assert_int_equal(proto_decode_response(bytes(body), n, PROTO_OP_LIST_TOKENS, &out, &err),
                     TE_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "more than 256"));
    proto_response_free(&out);

    /* a bad entry in the middle of a list: the entries decoded so far are freed with out */
    const char *bad_entry = "{\"v\":1,\"ok\":true,\"result\":{\"tokens\":[{\"slot_id\":1,\"label\":"
                            "\"a\",\"serial\":\"s\",\"manufacturer\":\"m\",\"model\":\"x\",\"flags\":"
                            "0,\"login_required\":true,\"pin_count_low\":false,\"pin_final_try\":"
                            "false,\"pin_locked\":false,\"uri\":\"pkcs11:\"},{\"slot_id\":\"2\"}]}}";
    assert_int_equal(proto_decode_response(bytes(bad_entry), strlen(bad_entry),
                                           PROTO_OP_LIST_TOKENS, &out, &err), TE_ERR_PROTOCOL);
    assert_int_equal(out.token_count, 1);
    proto_response_free(&out);
    free(body);
}

static void test_encode_response_limits(void **state)
{
    (void)state;
    struct proto_response r;
    struct buf *b = new_buf();
    struct te_error err = {0};
    struct proto_key_info *keys = calloc(PROTO_LIST_MAX + 1, sizeof(*keys));

    assert_non_null(keys);
    for (int i = 0; i <= PROTO_LIST_MAX; i++) {
        fill_key(&keys[i], i);
        memset(keys[i].uri, 'u', 400); /* 256 keys * ~600 bytes > 64 KiB */
    }
    proto_response_init(&r, NULL, PROTO_OP_LIST_KEYS);
    r.keys = keys;
    r.key_count = PROTO_LIST_MAX + 1;
    assert_int_equal(proto_encode_response(b, &r, &err), TE_ERR_TOO_LARGE);
    assert_non_null(strstr(err.msg, "256"));
    r.key_count = PROTO_LIST_MAX;
    assert_int_equal(proto_encode_response(b, &r, &err), TE_ERR_TOO_LARGE);
    assert_non_null(strstr(err.msg, "does not fit"));
    assert_int_equal(buf_len(b), 0);
    r.key_count = 10;
    assert_int_equal(proto_encode_response(b, &r, &err), TE_OK);

    /* a string that is not NUL-terminated within its limit is refused, never over-read */
    memset(keys[0].label, 'l', sizeof(keys[0].label));
    assert_int_equal(proto_encode_response(b, &r, &err), TE_ERR_INVALID);
    free(keys);

    proto_response_init(&r, NULL, PROTO_OP_SIGN); /* no signature */
    assert_int_equal(proto_encode_response(b, &r, &err), TE_ERR_INVALID);
    proto_response_init(&r, NULL, PROTO_OP_COUNT);
    assert_int_equal(proto_encode_response(b, &r, &err), TE_ERR_INVALID);
    buf_free(b);
}

/* ---- the examples in PROTOCOL.md --------------------------------------------------------- */

static void test_protocol_md_examples_are_what_the_code_writes(void **state)
{
    (void)state;
    char *doc = NULL, *line, *save = NULL;
    size_t doc_len = 0;
    struct te_error err = {0};
    struct buf *b = new_buf();
    int requests = 0, replies = 0, frames = 0;
    char kind[32] = "", last_request[PROTO_MAX_FRAME] = "";

    if (file_read_all(PROTOCOL_MD, 1 << 20, &doc, &doc_len, &err) != TE_OK)
        fail_msg("cannot read %s (run from the repository root): %s", PROTOCOL_MD, err.msg);
    for (line = strtok_r(doc, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "```json ", 8) == 0 || strncmp(line, "```hex ", 7) == 0) {
            snprintf(kind, sizeof(kind), "%s", line + 3);
            continue;
        }
        if (kind[0] == '\0')
            continue;
        if (strcmp(kind, "json bad-request") == 0) {
            /* examples of requests the daemon must refuse */
            struct proto_request req;
            assert_int_not_equal(proto_decode_request(bytes(line), strlen(line), &req, &err),
                                 TE_OK);
            proto_request_free(&req);
            requests++;
        } else if (strncmp(kind, "json request", 12) == 0) {
            struct proto_request req;
            if (proto_decode_request(bytes(line), strlen(line), &req, &err) != TE_OK)
                fail_msg("example request does not decode: %s: %s", line, err.msg);
            assert_int_equal(proto_encode_request(b, &req, &err), TE_OK);
            if (buf_len(b) != strlen(line) || memcmp(buf_data(b), line, strlen(line)) != 0)
                fail_msg("example request\n  %s\nencodes as\n  %s", line, buf_data(b));
            proto_request_free(&req);
            snprintf(last_request, sizeof(last_request), "%s", line);
            requests++;
        } else if (strncmp(kind, "json reply ", 11) == 0) {
            struct proto_response resp;
            enum proto_op op;
            assert_int_equal(proto_op_from_name(kind + 11, &op), TE_OK);
            if (proto_decode_response(bytes(line), strlen(line), op, &resp, &err) != TE_OK)
                fail_msg("example reply does not decode: %s: %s", line, err.msg);
            assert_int_equal(proto_encode_response(b, &resp, &err), TE_OK);
            if (buf_len(b) != strlen(line) || memcmp(buf_data(b), line, strlen(line)) != 0)
                fail_msg("example reply\n  %s\nencodes as\n  %s", line, buf_data(b));
            proto_response_free(&resp);
            replies++;
        } else if (strcmp(kind, "hex frame") == 0) {
            /* the hex dump is the frame of the request example just before it */
            char want[1024];
            size_t n = (size_t)snprintf(want, sizeof(want), "%02x %02x %02x %02x", 0, 0, 0,
                                        (unsigned)strlen(last_request));
            for (const char *p = last_request; *p; p++)
                n += (size_t)snprintf(want + n, sizeof(want) - n, " %02x", (uint8_t)*p);
            assert_true(strlen(last_request) < 256);
            assert_string_equal(line, want);
            frames++;
        }
        kind[0] = '\0';
    }
    /* the document has examples for every operation: make sure they were all found */
    assert_true(requests >= 11);
    assert_true(replies >= 14);
    assert_int_equal(frames, 1);
    free(doc);
    buf_free(b);
}

static void test_names(void **state)
{
    (void)state;
    enum proto_op op;
    for (int i = 0; i < PROTO_OP_COUNT; i++) {
        assert_int_equal(proto_op_from_name(proto_op_name((enum proto_op)i), &op), TE_OK);
        assert_int_equal(op, i);
        assert_int_equal(proto_op_is_admin(op), i >= PROTO_OP_INIT_TOKEN);
    }
    assert_int_equal(proto_op_from_name("nope", &op), TE_ERR_NOT_FOUND);
    assert_int_equal(proto_op_from_name(NULL, &op), TE_ERR_NOT_FOUND);
    assert_string_equal(proto_op_name(PROTO_OP_COUNT), "unknown");
    assert_string_equal(proto_curve_name(PROTO_CURVE_P256), "P-256");
    assert_string_equal(proto_key_type_name(PROTO_KEY_EC), "ec");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip_every_op),
        cmocka_unit_test(test_request_limits_exactly_at_max_are_accepted),
        cmocka_unit_test(test_encode_request_refuses_bad_input),
        cmocka_unit_test(test_decode_request_rejects_malformed),
        cmocka_unit_test(test_decode_request_string_limits),
        cmocka_unit_test(test_decode_request_keeps_id_and_version_for_the_error_reply),
        cmocka_unit_test(test_decode_request_null_is_absent_and_whitespace_is_fine),
        cmocka_unit_test(test_pins_are_wiped),
        cmocka_unit_test(test_response_round_trip_every_op),
        cmocka_unit_test(test_error_round_trip_every_shape),
        cmocka_unit_test(test_decode_error_unknown_code_and_long_message),
        cmocka_unit_test(test_decode_response_rejects_malformed),
        cmocka_unit_test(test_decode_response_result_checks),
        cmocka_unit_test(test_encode_response_limits),
        cmocka_unit_test(test_protocol_md_examples_are_what_the_code_writes),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
