/* Unit tests for the PKCS#11 core's URI handling (common/p11_uri.c) and CK_RV mapping
 * (common/p11_rv.c): errors that name the bad part, redaction of pin-value, scope merge,
 * PIN precedence, slot-id bounds, pin-source files (opened safely, refused in the daemon's
 * requests). No module is loaded here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "common/p11_internal.h"

static void expect_uri_error(const char *uri, const char *needle)
{
    struct te_error err = {0};
    P11KitUri *u = NULL;

    assert_int_equal(p11_uri_parse(uri, &u, &err), TE_ERR_URI);
    assert_null(u);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message '%s' does not contain '%s'", err.msg, needle);
    /* never the PIN */
    assert_null(strstr(err.msg, "s3cret"));
}

static void test_parse_errors_name_the_part(void **state)
{
    (void)state;
    expect_uri_error("http:token=x", "must start with 'pkcs11:'");
    expect_uri_error("pkcs11:token=ok;object=bad%zz", "'object=bad%zz'");
    expect_uri_error("pkcs11:token=ok;object=bad%zz", "percent-encoded");
    expect_uri_error("pkcs11:slot-id=abc;token=x", "'slot-id=abc'");
    expect_uri_error("pkcs11:token=x;x-vendor=1;type=bogus", "'x-vendor=1', 'type=bogus'");
    expect_uri_error("pkcs11:token=x?pin-value=s3cret&foo=bar", "recognized: 'foo'.");
    expect_uri_error("pkcs11:token=x?pin-vaule=s3cret", "'pin-vaule'");
    /* a broken pin-value is named without its value */
    expect_uri_error("pkcs11:token=x?pin-value=s3cret%zz", "'pin-value'");
}

static void test_parse_accepts_rfc7512_attributes(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "pkcs11:",
        "pkcs11:token=tedge;object=tedge-key;type=private;id=%01",
        "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=abc;token=t",
        "pkcs11:slot-id=7;slot-description=mock%20slot;slot-manufacturer=x",
        "pkcs11:library-manufacturer=x;library-description=y;library-version=1.2",
        "pkcs11:object=k?pin-source=file:/tmp/pin&module-path=/usr/lib/x.so",
        "pkcs11:object=k?module-name=softhsm2",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct te_error err = {0};
        P11KitUri *u = NULL;
        if (p11_uri_parse(ok[i], &u, &err) != TE_OK)
            fail_msg("'%s' refused: %s", ok[i], err.msg);
        p11_kit_uri_free(u);
    }
}

static void test_parse_too_long(void **state)
{
    (void)state;
    char uri[P11_URI_MAX + 20];
    struct te_error err = {0};
    P11KitUri *u = NULL;

    memcpy(uri, "pkcs11:object=", 14);
    memset(uri + 14, 'a', sizeof(uri) - 15);
    uri[sizeof(uri) - 1] = '\0';
    assert_int_equal(p11_uri_parse(uri, &u, &err), TE_ERR_URI);
    assert_non_null(strstr(err.msg, "longer than"));
}

static void test_redact(void **state)
{
    (void)state;
    char out[256];

    p11_uri_redact("pkcs11:token=a?pin-value=1234", out, sizeof(out));
    assert_string_equal(out, "pkcs11:token=a");
    p11_uri_redact("pkcs11:token=a?pin-source=/x&pin-value=1234&module-name=m", out, sizeof(out));
    assert_string_equal(out, "pkcs11:token=a?pin-source=/x&module-name=m");
    p11_uri_redact("pkcs11:token=a?pin-value=1234&pin-source=/x", out, sizeof(out));
    assert_string_equal(out, "pkcs11:token=a?pin-source=/x");
    p11_uri_redact("not a uri ?pin-value", out, sizeof(out));
    assert_string_equal(out, "not a uri ");
    p11_uri_redact("pkcs11:object=x", out, 8);
    assert_string_equal(out, "pkcs11:");
    /* a PIN in the wrong place or under a misspelled name is not shown either */
    p11_uri_redact("pkcs11:pin-value=1234;token=a?pin-vaule=5678&module-path=/m.so", out,
                   sizeof(out));
    assert_string_equal(out, "pkcs11:token=a?pin-vaule=***&module-path=/m.so");
    p11_uri_redact("pkcs11:PIN-VALUE=1234;token=a?Pin-Value=5678", out, sizeof(out));
    assert_null(strstr(out, "1234"));
    assert_null(strstr(out, "5678"));
}

/* A context with just what p11_request_init reads: the scope and the default PIN. */
static void fake_ctx(struct p11_ctx *ctx, const char *scope, const char *default_pin)
{
    struct te_error err = {0};

    memset(ctx, 0, sizeof(*ctx));
    if (scope != NULL)
        assert_int_equal(p11_uri_parse(scope, &ctx->scope, &err), TE_OK);
    ctx->default_pin = default_pin ? strdup(default_pin) : NULL;
}

static void fake_ctx_free(struct p11_ctx *ctx)
{
    if (ctx->scope)
        p11_kit_uri_free(ctx->scope);
    free(ctx->default_pin);
}

static void test_scope_attributes_win(void **state)
{
    (void)state;
    struct p11_ctx ctx;
    struct p11_request req;
    struct p11_keyref ref = {"pkcs11:token=request;object=key1;id=%02", NULL};
    struct te_error err = {0};

    fake_ctx(&ctx, "pkcs11:token=scope;id=%01;slot-id=3", NULL);
    assert_int_equal(p11_request_init(&ctx, &ref, &req, &err), TE_OK);
    assert_non_null(strstr(req.uri_str, "token=scope"));
    assert_null(strstr(req.uri_str, "token=request"));
    assert_non_null(strstr(req.uri_str, "object=key1"));   /* request fills what scope lacks */
    assert_non_null(strstr(req.uri_str, "id=%01"));
    assert_non_null(strstr(req.uri_str, "slot-id=3"));
    p11_request_clear(&req);
    /* no request URI: the scope alone */
    ref.uri = NULL;
    assert_int_equal(p11_request_init(&ctx, &ref, &req, &err), TE_OK);
    assert_string_equal(req.uri_str, "pkcs11:slot-id=3;token=scope;id=%01");
    p11_request_clear(&req);
    fake_ctx_free(&ctx);
}

static void test_pin_precedence(void **state)
{
    (void)state;
    char path[] = "/tmp/test_p11_uri_pinXXXXXX";
    char uri[128];
    struct p11_ctx ctx;
    struct p11_request req;
    struct te_error err = {0};
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "from-file\n", 10), 10);
    close(fd);
    fake_ctx(&ctx, NULL, "from-default");

    struct p11_keyref r1 = {"pkcs11:object=k?pin-value=from-uri", "from-caller"};
    assert_int_equal(p11_request_init(&ctx, &r1, &req, &err), TE_OK);
    assert_string_equal(req.pin, "from-uri");
    assert_int_equal(req.pin_origin, P11_PIN_URI);
    assert_null(strstr(req.uri_str, "pin-value")); /* the cache key and messages hold no PIN */
    p11_request_clear(&req);

    snprintf(uri, sizeof(uri), "pkcs11:object=k?pin-source=file:%s", path);
    struct p11_keyref r2 = {uri, "from-caller"};
    assert_int_equal(p11_request_init(&ctx, &r2, &req, &err), TE_OK);
    assert_string_equal(req.pin, "from-file");
    assert_int_equal(req.pin_origin, P11_PIN_SOURCE);
    assert_null(strstr(req.uri_str, "pin-source"));
    p11_request_clear(&req);

    snprintf(uri, sizeof(uri), "pkcs11:object=k?pin-source=%s", path);
    assert_int_equal(p11_request_init(&ctx, &r2, &req, &err), TE_OK);
    assert_string_equal(req.pin, "from-file");
    p11_request_clear(&req);

    struct p11_keyref r3 = {"pkcs11:object=k", "from-caller"};
    assert_int_equal(p11_request_init(&ctx, &r3, &req, &err), TE_OK);
    assert_string_equal(req.pin, "from-caller");
    p11_request_clear(&req);

    struct p11_keyref r4 = {"pkcs11:object=k", NULL};
    assert_int_equal(p11_request_init(&ctx, &r4, &req, &err), TE_OK);
    assert_string_equal(req.pin, "from-default");
    assert_int_equal(req.pin_origin, P11_PIN_DEFAULT);
    p11_request_clear(&req);
    fake_ctx_free(&ctx);

    fake_ctx(&ctx, NULL, NULL);
    assert_int_equal(p11_request_init(&ctx, &r4, &req, &err), TE_OK);
    assert_null(req.pin);
    assert_int_equal(req.pin_origin, P11_PIN_NONE);
    p11_request_clear(&req);

    /* a missing pin-source file is named */
    unlink(path);
    snprintf(uri, sizeof(uri), "pkcs11:object=k?pin-source=%s", path);
    struct p11_keyref r5 = {uri, NULL};
    assert_int_not_equal(p11_request_init(&ctx, &r5, &req, &err), TE_OK);
    assert_non_null(strstr(err.msg, path));
    struct p11_keyref r6 = {"pkcs11:object=k?pin-source=https://example.com/pin", NULL};
    assert_int_equal(p11_request_init(&ctx, &r6, &req, &err), TE_ERR_URI);
    fake_ctx_free(&ctx);
}

static void test_scope_pin_wins(void **state)
{
    (void)state;
    struct p11_ctx ctx;
    struct p11_request req;
    struct p11_keyref ref = {"pkcs11:object=k?pin-value=request", NULL};
    struct te_error err = {0};

    fake_ctx(&ctx, "pkcs11:token=t?pin-value=scope", NULL);
    assert_int_equal(p11_request_init(&ctx, &ref, &req, &err), TE_OK);
    assert_string_equal(req.pin, "scope");
    p11_request_clear(&req);
    fake_ctx_free(&ctx);
}

static void test_slot_id_out_of_range_is_refused(void **state)
{
    (void)state;
    struct te_error err = {0};
    P11KitUri *u = NULL;

    /* p11-kit would wrap it to 7766279631452241919 and look for that slot */
    expect_uri_error("pkcs11:slot-id=99999999999999999999;token=x",
                     "the attribute 'slot-id=99999999999999999999' is not a slot number from 0 "
                     "to 18446744073709551614");
    /* ULONG_MAX is p11-kit's "no slot-id": it would be ignored */
    expect_uri_error("pkcs11:slot-id=18446744073709551615", "'slot-id=18446744073709551615'");
    expect_uri_error("pkcs11:slot-id=;token=x", "'slot-id='");          /* p11-kit: slot 0 */
    expect_uri_error("pkcs11:token=x;slot-id= 5", "'slot-id= 5'");      /* p11-kit: slot 5 */
    expect_uri_error("pkcs11:slot-id=123456789012345678901", "is not a slot number");
    assert_int_equal(p11_uri_parse("pkcs11:slot-id=18446744073709551614", &u, &err), TE_OK);
    assert_int_equal(p11_kit_uri_get_slot_id(u), 18446744073709551614UL);
    p11_kit_uri_free(u);
    assert_int_equal(p11_uri_parse("pkcs11:token=x;slot-id=0", &u, &err), TE_OK);
    assert_int_equal(p11_kit_uri_get_slot_id(u), 0);
    p11_kit_uri_free(u);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* The daemon's setting: only its own scope may name a PIN file. */
static void test_request_pin_source_refused_when_configured(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_p11_uri_psXXXXXX", pin[64], scope[128], uri[160];
    struct p11_ctx ctx;
    struct p11_request req;
    struct te_error err = {0};
    static const char msg[] = "pin-source is not accepted in requests to tedge-p11-server; send "
                              "the PIN in the request or configure it on the server.";

    assert_non_null(mkdtemp(dir));
    snprintf(pin, sizeof(pin), "%s/pin", dir);
    write_file(pin, "4321\n");
    fake_ctx(&ctx, NULL, NULL);
    ctx.requests_from_peers = true;
    snprintf(uri, sizeof(uri), "pkcs11:object=k?pin-source=file:%s", pin);
    struct p11_keyref r1 = {uri, NULL};
    assert_int_equal(p11_request_init(&ctx, &r1, &req, &err), TE_ERR_URI);
    assert_string_equal(err.msg, msg);
    /* whatever it names, even nothing: the file is never looked at */
    struct p11_keyref r2 = {"pkcs11:object=k?pin-source=", "1234"};
    assert_int_equal(p11_request_init(&ctx, &r2, &req, &err), TE_ERR_URI);
    assert_string_equal(err.msg, msg);
    struct p11_keyref r3 = {"pkcs11:object=k?pin-value=1234&pin-source=/dev/zero", NULL};
    assert_int_equal(p11_request_init(&ctx, &r3, &req, &err), TE_ERR_URI);
    fake_ctx_free(&ctx);

    /* the scope's own pin-source is read */
    snprintf(scope, sizeof(scope), "pkcs11:token=t?pin-source=%s", pin);
    fake_ctx(&ctx, scope, NULL);
    ctx.requests_from_peers = true;
    struct p11_keyref r4 = {"pkcs11:object=k", "1111"};
    assert_int_equal(p11_request_init(&ctx, &r4, &req, &err), TE_OK);
    assert_string_equal(req.pin, "4321");
    p11_request_clear(&req);
    fake_ctx_free(&ctx);

    /* module mode (the user's own rights) keeps allowing it */
    fake_ctx(&ctx, NULL, NULL);
    assert_int_equal(p11_request_init(&ctx, &r1, &req, &err), TE_OK);
    assert_string_equal(req.pin, "4321");
    p11_request_clear(&req);
    fake_ctx_free(&ctx);
    unlink(pin);
    rmdir(dir);
}

/* Every path that is not a small regular file gets the same answer, at once. */
static void test_pin_source_is_opened_safely(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_p11_uri_fifoXXXXXX", path[64], uri[160], expect[512];
    static const char *const names[] = {"fifo", "link", "big", "missing", "dir", "empty",
                                        "two-lines"};
    struct p11_ctx ctx;
    struct p11_request req;
    struct te_error err = {0};
    char big[400];

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    snprintf(path, sizeof(path), "%s/real", dir);
    write_file(path, "1234\n");
    snprintf(uri, sizeof(uri), "%s/link", dir);
    assert_int_equal(symlink(path, uri), 0);
    memset(big, '7', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(path, sizeof(path), "%s/big", dir);
    write_file(path, big);
    snprintf(path, sizeof(path), "%s/dir", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/empty", dir);
    write_file(path, "\n");
    snprintf(path, sizeof(path), "%s/two-lines", dir);
    write_file(path, "1234\n5678\n");

    fake_ctx(&ctx, NULL, NULL);
    /* a FIFO without a writer used to block open() for good: fail the test instead */
    alarm(10);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        snprintf(uri, sizeof(uri), "pkcs11:object=k?pin-source=file:%s", path);
        struct p11_keyref ref = {uri, NULL};
        assert_int_equal(p11_request_init(&ctx, &ref, &req, &err), TE_ERR_INVALID);
        snprintf(expect, sizeof(expect), "'file:%s' (the URI's pin-source) cannot be used as a "
                 "PIN source: it must be a regular file (not a symbolic link, FIFO or device) "
                 "that this process can read, holding the PIN on one line of 1 to 256 "
                 "characters.", path);
        assert_string_equal(err.msg, expect);
        assert_null(strstr(err.msg, "7777")); /* nothing of the content */
    }
    alarm(0);
    fake_ctx_free(&ctx);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (unlink(path) != 0)
            rmdir(path);
    }
    snprintf(path, sizeof(path), "%s/real", dir);
    unlink(path);
    rmdir(dir);
}

static void test_rv_mapping(void **state)
{
    (void)state;
    struct te_error err = {0};
    bool retry = true;

    assert_string_equal(p11_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
    assert_string_equal(p11_rv_name(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED");
    assert_string_equal(p11_rv_name(CKR_VENDOR_DEFINED | 5), "CKR_VENDOR_DEFINED");
    assert_string_equal(p11_rv_name(0x7777), "CKR_UNKNOWN");
    assert_int_equal(p11_rv_code(CKR_PIN_INCORRECT, &retry), TE_ERR_PIN_INCORRECT);
    assert_false(retry);
    assert_int_equal(p11_rv_code(CKR_PIN_LOCKED, &retry), TE_ERR_PIN_LOCKED);
    assert_false(retry);
    assert_int_equal(p11_rv_code(CKR_DEVICE_REMOVED, &retry), TE_ERR_NO_TOKEN);
    assert_true(retry);
    assert_int_equal(p11_rv_code(CKR_SESSION_HANDLE_INVALID, &retry), TE_ERR_PKCS11);
    assert_true(retry);
    assert_int_equal(p11_rv_code(CKR_MECHANISM_INVALID, &retry), TE_ERR_MECHANISM);
    assert_false(retry);
    assert_int_equal(p11_rv_error(&err, CKR_PIN_LOCKED, "Logging in to token '%s' failed", "t"),
                     TE_ERR_PIN_LOCKED);
    assert_true(err.has_ckr);
    assert_int_equal(err.ckr, CKR_PIN_LOCKED);
    assert_string_equal(err.msg, "Logging in to token 't' failed: the PIN is locked: unlock it "
                                 "with the SO PIN (CKR_PIN_LOCKED).");
    assert_int_equal(p11_rv_error(&err, 0x80001234UL, "X failed"), TE_ERR_PKCS11);
    assert_string_equal(err.msg, "X failed: the module returned error 0x80001234.");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors_name_the_part),
        cmocka_unit_test(test_parse_accepts_rfc7512_attributes),
        cmocka_unit_test(test_parse_too_long),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_scope_attributes_win),
        cmocka_unit_test(test_pin_precedence),
        cmocka_unit_test(test_scope_pin_wins),
        cmocka_unit_test(test_slot_id_out_of_range_is_refused),
        cmocka_unit_test(test_request_pin_source_refused_when_configured),
        cmocka_unit_test(test_pin_source_is_opened_safely),
        cmocka_unit_test(test_rv_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
