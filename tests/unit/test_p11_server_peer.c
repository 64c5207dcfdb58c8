/* Unit tests for tedge-p11-server's peer checks (SO_PEERCRED, allow-lists, admin gate) and the
 * URI redaction that keeps pin-value out of the request log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "p11-server/server.h"

static struct srv_peer peer_of(uid_t uid, gid_t gid)
{
    struct srv_peer p = {.pid = 42, .uid = uid, .gid = gid};
    return p;
}

static void add(struct srv_idset *s, unsigned id)
{
    s->ids[s->n++] = id;
}

static void test_peer_from_socketpair_is_us(void **state)
{
    (void)state;
    int sv[2];
    struct srv_peer p;
    struct te_error err = {0};

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(srv_peer_from_socket(sv[0], &p, &err), TE_OK);
    assert_int_equal(p.pid, getpid());
    assert_int_equal(p.uid, geteuid());
    assert_int_equal(p.gid, getegid());
    close(sv[0]);
    close(sv[1]);
    /* a closed fd: an error, not garbage credentials */
    assert_int_equal(srv_peer_from_socket(sv[0], &p, &err), TE_ERR_IO);
}

static void test_empty_allow_list_allows_everyone_admin_is_root_only(void **state)
{
    (void)state;
    struct srv_acl acl = {0};
    struct srv_peer p = peer_of(1000, 1000);

    srv_peer_authorize(&acl, &p);
    assert_true(p.allowed);
    assert_false(p.admin);
    p = peer_of(0, 0);
    srv_peer_authorize(&acl, &p);
    assert_true(p.allowed);
    assert_true(p.admin);
}

static void test_allow_lists_by_uid_gid_and_supplementary_group(void **state)
{
    (void)state;
    struct srv_acl acl = {0};
    struct srv_peer p;

    add(&acl.allow_uid, 1000);
    add(&acl.allow_gid, 2000);
    p = peer_of(1000, 5);
    srv_peer_authorize(&acl, &p);
    assert_true(p.allowed);
    p = peer_of(1001, 2000);
    srv_peer_authorize(&acl, &p);
    assert_true(p.allowed);
    p = peer_of(1002, 5);
    p.groups[p.n_groups++] = 7;
    srv_peer_authorize(&acl, &p);
    assert_false(p.allowed);
    assert_false(p.admin);
    p.groups[p.n_groups++] = 2000;
    srv_peer_authorize(&acl, &p);
    assert_true(p.allowed);
    /* root always passes: it can read the token store anyway */
    p = peer_of(0, 0);
    srv_peer_authorize(&acl, &p);
    assert_true(p.allowed);
}

static void test_admin_list(void **state)
{
    (void)state;
    struct srv_acl acl = {0};
    struct srv_peer p;

    add(&acl.admin_gid, 3000);
    add(&acl.allow_uid, 1000);
    p = peer_of(1000, 3000);
    srv_peer_authorize(&acl, &p);
    assert_true(p.allowed);
    assert_true(p.admin);
    /* an admin group does not bypass the allow-list */
    p = peer_of(1001, 3000);
    srv_peer_authorize(&acl, &p);
    assert_false(p.allowed);
    assert_false(p.admin);
}

static void test_uri_redaction(void **state)
{
    (void)state;
    char out[256];

    srv_uri_redact("pkcs11:token=t;object=k?pin-value=1234", out, sizeof(out));
    assert_string_equal(out, "pkcs11:token=t;object=k");
    srv_uri_redact("pkcs11:token=t?module-path=/x.so&pin-value=99&x=1", out, sizeof(out));
    assert_string_equal(out, "pkcs11:token=t?module-path=/x.so&x=***");
    srv_uri_redact("pkcs11:PIN-VALUE=abc;token=t", out, sizeof(out));
    assert_null(strstr(out, "abc"));
    srv_uri_redact("pkcs11:token=t", out, sizeof(out));
    assert_string_equal(out, "pkcs11:token=t");
    srv_uri_redact(NULL, out, sizeof(out));
    assert_string_equal(out, "-");
    /* a cut line never leaks a PIN either */
    srv_uri_redact("pkcs11:token=t?pin-value=123456789", out, 20);
    assert_null(strstr(out, "123"));
    assert_true(strlen(out) < 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_from_socketpair_is_us),
        cmocka_unit_test(test_empty_allow_list_allows_everyone_admin_is_root_only),
        cmocka_unit_test(test_allow_lists_by_uid_gid_and_supplementary_group),
        cmocka_unit_test(test_admin_list),
        cmocka_unit_test(test_uri_redaction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
