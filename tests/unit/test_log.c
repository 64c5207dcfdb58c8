/* Unit tests for common/log: format, levels, and that a peer's bytes cannot forge lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"

static int pipe_fds[2];

static int setup(void **state)
{
    (void)state;
    if (pipe(pipe_fds) != 0)
        return -1;
    log_init("unit");
    log_set_fd(pipe_fds[1]);
    log_set_level(LOG_LVL_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_fd(STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
}

static size_t drain(char *out, size_t cap)
{
    ssize_t n = read(pipe_fds[0], out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static void test_line_format(void **state)
{
    (void)state;
    char out[4096];
    log_info("sign ok uri=%s", "pkcs11:token=t");
    drain(out, sizeof(out));
    assert_non_null(strstr(out, "INFO unit: sign ok uri=pkcs11:token=t\n"));
    /* exactly one line */
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
}

static void test_levels_filter(void **state)
{
    (void)state;
    char out[4096];
    log_debug("hidden");
    log_warn("shown");
    drain(out, sizeof(out));
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "WARN unit: shown"));
    assert_int_equal(log_level_from_name("DEBUG"), LOG_LVL_DEBUG);
    assert_int_equal(log_level_from_name("warning"), LOG_LVL_WARN);
    assert_int_equal(log_level_from_name("loud"), -1);
}

static void test_control_chars_cannot_forge_lines(void **state)
{
    (void)state;
    char out[4096];
    log_info("peer said %s", "x\nERROR unit: forged");
    drain(out, sizeof(out));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    assert_non_null(strstr(out, "x?ERROR unit: forged"));
}

static void test_long_line_truncated_but_terminated(void **state)
{
    (void)state;
    char out[8192];
    char *big = malloc(6000);
    memset(big, 'z', 5999);
    big[5999] = '\0';
    log_info("%s", big);
    size_t n = drain(out, sizeof(out));
    assert_true(n < 2100);
    assert_int_equal(out[n - 1], '\n');
    free(big);
}

static void test_journal_prefix(void **state)
{
    (void)state;
    char out[4096], js[64];
    struct stat st;
    /* Pretend stderr is the journal stream: log_init compares $JOURNAL_STREAM with fd 2. */
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    log_init("unit");
    log_error("boom");
    unsetenv("JOURNAL_STREAM");
    log_init("unit");
    drain(out, sizeof(out));
    assert_int_equal(strncmp(out, "<3>ERROR unit: boom\n", 20), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_levels_filter),
        cmocka_unit_test(test_control_chars_cannot_forge_lines),
        cmocka_unit_test(test_long_line_truncated_but_terminated),
        cmocka_unit_test(test_journal_prefix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
