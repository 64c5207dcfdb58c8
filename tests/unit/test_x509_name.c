/* Unit tests for common/x509_name: the first CN only, the rules for a usable CN (no control
 * characters or NUL, a length bound), and the certificate file checks with their codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "common/err.h"
#include "common/rand.h"
#include "common/x509_name.h"
#include "unit_helpers.h"

#define CERT_PEM_MAX 4096 /* a P-256 self-signed certificate is under 1 KiB */

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_x509_name.XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return unit_remove_dir(dir);
}

static const char *in_dir(const char *name)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

/* One attribute of a hand-made name list (oid from mbedtls/oid.h). */
static void attr(mbedtls_x509_name *n, const char *oid, size_t oid_len, const char *val,
                 size_t val_len, mbedtls_x509_name *next)
{
    memset(n, 0, sizeof(*n));
    n->oid.p = (unsigned char *)oid;
    n->oid.len = oid_len;
    n->val.p = (unsigned char *)val;
    n->val.len = val_len;
    n->next = next;
}

#define CN_OID MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN)
#define O_OID MBEDTLS_OID_AT_ORGANIZATION, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORGANIZATION)

static void test_first_cn_after_other_attributes(void **state)
{
    mbedtls_x509_name o, cn;
    char out[X509_NAME_CN_MAX + 1];

    (void)state;
    attr(&cn, CN_OID, "dev-1", 5, NULL);
    attr(&o, O_OID, "Thin Edge", 9, &cn);
    assert_int_equal(x509_name_cn(&o, out, sizeof(out)), TE_OK);
    assert_string_equal(out, "dev-1");
    /* no CN at all */
    attr(&o, O_OID, "Thin Edge", 9, NULL);
    assert_int_equal(x509_name_cn(&o, out, sizeof(out)), TE_ERR_NOT_FOUND);
    assert_string_equal(out, "");
}

static void test_only_the_first_cn_counts(void **state)
{
    mbedtls_x509_name first, second;
    char out[X509_NAME_CN_MAX + 1];

    (void)state;
    attr(&second, CN_OID, "good", 4, NULL);
    attr(&first, CN_OID, "", 0, &second);
    assert_int_equal(x509_name_cn(&first, out, sizeof(out)), TE_ERR_NOT_FOUND);
    attr(&first, CN_OID, "bad\x01", 4, &second);
    assert_int_equal(x509_name_cn(&first, out, sizeof(out)), TE_ERR_NOT_FOUND);
    attr(&first, CN_OID, "one", 3, &second);
    assert_int_equal(x509_name_cn(&first, out, sizeof(out)), TE_OK);
    assert_string_equal(out, "one");
}

static void test_control_characters_and_nul_are_refused(void **state)
{
    static const char *const bad[] = {"a\nb", "a\tb", "a\x7f", "\x1b[31m"};
    mbedtls_x509_name cn;
    char out[X509_NAME_CN_MAX + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        attr(&cn, CN_OID, bad[i], strlen(bad[i]), NULL);
        assert_int_equal(x509_name_cn(&cn, out, sizeof(out)), TE_ERR_NOT_FOUND);
    }
    attr(&cn, CN_OID, "dev\0ice", 7, NULL); /* a NUL would cut the id short */
    assert_int_equal(x509_name_cn(&cn, out, sizeof(out)), TE_ERR_NOT_FOUND);
    attr(&cn, CN_OID, "thin edge (x)=1", 15, NULL); /* printable is fine */
    assert_int_equal(x509_name_cn(&cn, out, sizeof(out)), TE_OK);
    assert_string_equal(out, "thin edge (x)=1");
}

static void test_length_bound(void **state)
{
    char val[X509_NAME_CN_MAX + 1], out[X509_NAME_CN_MAX + 8], small[8];
    mbedtls_x509_name cn;

    (void)state;
    memset(val, 'x', sizeof(val));
    attr(&cn, CN_OID, val, X509_NAME_CN_MAX, NULL);
    assert_int_equal(x509_name_cn(&cn, out, sizeof(out)), TE_OK);
    assert_int_equal(strlen(out), X509_NAME_CN_MAX);
    attr(&cn, CN_OID, val, X509_NAME_CN_MAX + 1, NULL);
    assert_int_equal(x509_name_cn(&cn, out, sizeof(out)), TE_ERR_NOT_FOUND);
    /* a buffer too small for the CN is refused, never written past */
    attr(&cn, CN_OID, val, sizeof(small), NULL);
    assert_int_equal(x509_name_cn(&cn, small, sizeof(small)), TE_ERR_NOT_FOUND);
    attr(&cn, CN_OID, val, sizeof(small) - 1, NULL);
    assert_int_equal(x509_name_cn(&cn, small, sizeof(small)), TE_OK);
}

/* A self-signed P-256 certificate with subject (mbedTLS's "CN=...,O=..." syntax) at path. */
static void write_cert(const char *path, const char *subject)
{
    mbedtls_x509write_cert w;
    mbedtls_pk_context key;
    mbedtls_mpi serial;
    unsigned char pem[CERT_PEM_MAX];

    mbedtls_pk_init(&key);
    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi_init(&serial);
    assert_int_equal(mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
    assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), te_random,
                                         NULL), 0);
    assert_int_equal(mbedtls_mpi_lset(&serial, 1), 0);
    mbedtls_x509write_crt_set_subject_key(&w, &key);
    mbedtls_x509write_crt_set_issuer_key(&w, &key);
    assert_int_equal(mbedtls_x509write_crt_set_subject_name(&w, subject), 0);
    assert_int_equal(mbedtls_x509write_crt_set_issuer_name(&w, "O=Test CA"), 0);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    assert_int_equal(mbedtls_x509write_crt_set_serial(&w, &serial), 0);
    assert_int_equal(mbedtls_x509write_crt_set_validity(&w, "20240101000000", "20990101000000"), 0);
    assert_int_equal(mbedtls_x509write_crt_pem(&w, pem, sizeof(pem), te_random, NULL), 0);
    unit_write_file(path, (const char *)pem, 0644);
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&w);
    mbedtls_pk_free(&key);
}

static void test_file_cn(void **state)
{
    char *cn = (char *)"untouched";
    int detail = -1;

    (void)state;
    write_cert(in_dir("dev.pem"), "O=Thin Edge,CN=dev-42,OU=Device");
    assert_int_equal(x509_file_cn(in_dir("dev.pem"), &cn, &detail), TE_OK);
    assert_string_equal(cn, "dev-42");
    free(cn);
    /* no CN, and a CN no device id may be: the certificate parses, the name does not */
    write_cert(in_dir("no-cn.pem"), "O=Thin Edge,OU=Device");
    assert_int_equal(x509_file_cn(in_dir("no-cn.pem"), &cn, NULL), TE_ERR_INVALID);
    assert_null(cn);
    write_cert(in_dir("ctl.pem"), "CN=dev\x01" "42");
    assert_int_equal(x509_file_cn(in_dir("ctl.pem"), &cn, NULL), TE_ERR_INVALID);
    assert_null(cn);
}

static void test_file_errors_say_which_step_failed(void **state)
{
    mbedtls_x509_crt crt;
    char *cn = NULL, *big;
    int detail = 0;

    (void)state;
    assert_int_equal(x509_file_cn(in_dir("missing.pem"), &cn, &detail), TE_ERR_NOT_FOUND);
    assert_int_equal(detail, ENOENT);
    assert_null(cn);
    /* a directory is not a certificate file; mbedTLS is not asked */
    detail = -1;
    assert_int_equal(x509_file_cn(dir, &cn, &detail), TE_ERR_MALFORMED);
    assert_int_equal(detail, 0);
    /* not a certificate: mbedTLS's reason */
    unit_write_file(in_dir("junk.pem"), "not a certificate\n", 0644);
    assert_int_equal(x509_file_cn(in_dir("junk.pem"), &cn, &detail), TE_ERR_MALFORMED);
    assert_true(detail < 0);
    /* larger than any certificate chain: refused before it is read */
    big = malloc(X509_NAME_FILE_MAX + 2);
    assert_non_null(big);
    memset(big, 'A', X509_NAME_FILE_MAX + 1);
    big[X509_NAME_FILE_MAX + 1] = '\0';
    unit_write_file(in_dir("big.pem"), big, 0644);
    free(big);
    detail = -1;
    assert_int_equal(x509_file_cn(in_dir("big.pem"), &cn, &detail), TE_ERR_MALFORMED);
    assert_int_equal(detail, 0);
    /* the loader alone, with detail optional */
    write_cert(in_dir("ok.pem"), "CN=ok");
    mbedtls_x509_crt_init(&crt);
    assert_int_equal(x509_crt_load_file(&crt, in_dir("ok.pem"), NULL), TE_OK);
    assert_true(crt.raw.len > 0);
    mbedtls_x509_crt_free(&crt);
    mbedtls_x509_crt_init(&crt);
    assert_int_equal(x509_crt_load_file(&crt, in_dir("missing.pem"), NULL), TE_ERR_NOT_FOUND);
    mbedtls_x509_crt_free(&crt);
}

/* x509_file_cn's result and detail for path as an unprivileged user ("nobody"): root reads any
 * file, so as root the check runs in a child that gave up root first. */
static void file_cn_unprivileged(const char *path, int *ret, int *detail)
{
    int pipefd[2], status = 0, out[2] = {0, 0};
    char *cn = NULL;
    pid_t pid;

    if (geteuid() != 0) {
        *ret = x509_file_cn(path, &cn, detail);
        free(cn);
        return;
    }
    assert_int_equal(pipe(pipefd), 0);
    assert_true((pid = fork()) >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0)
            _exit(2);
        out[0] = x509_file_cn(path, &cn, &out[1]);
        _exit(write(pipefd[1], out, sizeof(out)) == (ssize_t)sizeof(out) ? 0 : 3);
    }
    close(pipefd[1]);
    assert_int_equal(read(pipefd[0], out, sizeof(out)), (ssize_t)sizeof(out));
    close(pipefd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    *ret = out[0];
    *detail = out[1];
}

static void test_unreadable_file_is_a_permission_error(void **state)
{
    int ret = TE_OK, detail = 0;

    (void)state;
    write_cert(in_dir("secret.pem"), "CN=secret");
    assert_int_equal(chmod(in_dir("secret.pem"), 0), 0);
    assert_int_equal(chmod(dir, 0711), 0); /* others may look up the file, not read it */
    file_cn_unprivileged(in_dir("secret.pem"), &ret, &detail);
    assert_int_equal(ret, TE_ERR_PERMISSION);
    assert_int_equal(detail, EACCES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_cn_after_other_attributes),
        cmocka_unit_test(test_only_the_first_cn_counts),
        cmocka_unit_test(test_control_characters_and_nul_are_refused),
        cmocka_unit_test(test_length_bound),
        cmocka_unit_test(test_file_cn),
        cmocka_unit_test(test_file_errors_say_which_step_failed),
        cmocka_unit_test(test_unreadable_file_is_a_permission_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
