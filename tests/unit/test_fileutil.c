/* Unit tests for common/fileutil: bounded reads, atomic writes keeping the mode and writing
 * through symbolic links, atomic creation that never replaces a file, mkdir -p. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/fileutil.h"
#include "unit_helpers.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/te-fileutil-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return unit_remove_dir(dir);
}

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static int count_entries(const char *prefix)
{
    struct dirent *de;
    int entries = 0;
    DIR *d = opendir(dir);

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            entries++;
    closedir(d);
    return entries;
}

static void test_write_new_file_mode_and_content(void **state)
{
    (void)state;
    char p[300], *data;
    size_t len;
    struct stat st;
    path_in(p, sizeof(p), "new.toml");
    umask(022);
    assert_int_equal(file_write_atomic(p, "a = 1\n", 6, 0640, NULL), TE_OK);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(file_read_all(p, 1024, &data, &len, NULL), TE_OK);
    assert_int_equal(len, 6);
    assert_string_equal(data, "a = 1\n");
    free(data);
}

static void test_rewrite_keeps_mode_and_leaves_no_temp(void **state)
{
    (void)state;
    char p[300];
    struct stat st;
    path_in(p, sizeof(p), "keep.toml");
    assert_int_equal(file_write_atomic(p, "x", 1, 0600, NULL), TE_OK);
    assert_int_equal(chmod(p, 0604), 0);
    assert_int_equal(file_write_atomic(p, "yy", 2, 0640, NULL), TE_OK);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0604);
    assert_int_equal(st.st_size, 2);
    assert_int_equal(count_entries("keep.toml"), 1);
}

static int count_entries_in(const char *sub, const char *prefix)
{
    char d[300];
    struct dirent *de;
    int entries = 0;
    DIR *dd;

    snprintf(d, sizeof(d), "%s/%s", dir, sub);
    assert_non_null(dd = opendir(d));
    while ((de = readdir(dd)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            entries++;
    closedir(dd);
    return entries;
}

/* cfg/tedge.toml -> ../real/tedge.toml (and cfg/hop -> tedge.toml): a rewrite goes to the real
 * file, keeps its mode, and every link stays the link it was. */
static void test_rewrite_through_symlinks_keeps_the_links(void **state)
{
    (void)state;
    char real_dir[300], cfg_dir[300], real[300], link_path[300], hop[300], got[300];
    struct stat st;
    ssize_t n;

    path_in(real_dir, sizeof(real_dir), "real");
    path_in(cfg_dir, sizeof(cfg_dir), "cfg");
    assert_int_equal(mkdir(real_dir, 0700), 0);
    assert_int_equal(mkdir(cfg_dir, 0700), 0);
    path_in(real, sizeof(real), "real/tedge.toml");
    path_in(link_path, sizeof(link_path), "cfg/tedge.toml");
    path_in(hop, sizeof(hop), "cfg/hop");
    unit_write_file(real, "old = 1\n", 0604);
    assert_int_equal(symlink("../real/tedge.toml", link_path), 0);
    assert_int_equal(symlink("tedge.toml", hop), 0);

    assert_int_equal(file_write_atomic(link_path, "new = 2\n", 8, 0640, NULL), TE_OK);
    assert_int_equal(lstat(link_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(n = readlink(link_path, got, sizeof(got) - 1), 18);
    got[n] = '\0';
    assert_string_equal(got, "../real/tedge.toml");
    assert_string_equal(unit_read_file(real), "new = 2\n");
    assert_int_equal(stat(real, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0604);

    /* two links deep */
    assert_int_equal(file_write_atomic(hop, "third = 3\n", 10, 0640, NULL), TE_OK);
    assert_int_equal(lstat(hop, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(link_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_string_equal(unit_read_file(real), "third = 3\n");
    /* the temp files lived next to the target and are gone */
    assert_int_equal(count_entries_in("real", "tedge.toml"), 1);
    assert_int_equal(count_entries_in("cfg", "tedge.toml"), 1);
}

static void test_rewrite_through_a_dangling_link_is_refused(void **state)
{
    (void)state;
    char link_path[300], target[300];
    struct stat st;
    struct te_error e;

    path_in(link_path, sizeof(link_path), "dangling.toml");
    path_in(target, sizeof(target), "nowhere/tedge.toml");
    assert_int_equal(symlink(target, link_path), 0);
    assert_int_equal(file_write_atomic(link_path, "x", 1, 0600, &e), TE_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, link_path));
    assert_non_null(strstr(e.msg, "symbolic link to a file that does not exist"));
    assert_int_equal(lstat(link_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(count_entries("dangling.toml"), 1);
}

static void test_read_limits_and_missing(void **state)
{
    (void)state;
    char p[300], *data = NULL;
    struct te_error e;
    path_in(p, sizeof(p), "big");
    assert_int_equal(file_write_atomic(p, "0123456789", 10, 0600, NULL), TE_OK);
    assert_int_equal(file_read_all(p, 9, &data, NULL, &e), TE_ERR_TOO_LARGE);
    assert_null(data);
    assert_non_null(strstr(e.msg, p));
    assert_int_equal(file_read_all(p, 10, &data, NULL, &e), TE_OK);
    free(data);
    path_in(p, sizeof(p), "missing");
    assert_int_equal(file_read_all(p, 10, &data, NULL, &e), TE_ERR_NOT_FOUND);
    assert_int_equal(file_read_all(dir, 10, &data, NULL, &e), TE_ERR_IO);
}

static void test_write_into_missing_dir_fails_cleanly(void **state)
{
    (void)state;
    char p[300];
    struct te_error e;
    path_in(p, sizeof(p), "nodir/file");
    assert_int_equal(file_write_atomic(p, "x", 1, 0600, &e), TE_ERR_IO);
    assert_non_null(strstr(e.msg, "nodir"));
}

static void test_create_never_replaces(void **state)
{
    (void)state;
    char p[300], link_path[300], *data;
    struct stat st;
    struct te_error e;
    path_in(p, sizeof(p), "new.pem");
    umask(022);
    assert_int_equal(file_create_atomic(p, "one", 3, 0444, NULL), TE_OK);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    /* a second create is refused and leaves the first file as it was, with no temp file */
    assert_int_equal(file_create_atomic(p, "two", 3, 0600, &e), TE_ERR_EXISTS);
    assert_non_null(strstr(e.msg, p));
    assert_int_equal(file_read_all(p, 1024, &data, NULL, NULL), TE_OK);
    assert_string_equal(data, "one");
    free(data);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    assert_int_equal(count_entries("new.pem"), 1);
    /* a dangling link is in the way too: nothing is written through it */
    path_in(link_path, sizeof(link_path), "dangling.pem");
    path_in(p, sizeof(p), "target.pem");
    assert_int_equal(symlink(p, link_path), 0);
    assert_int_equal(file_create_atomic(link_path, "x", 1, 0600, NULL), TE_ERR_EXISTS);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(count_entries("dangling.pem"), 1);
    /* a missing directory fails cleanly */
    path_in(p, sizeof(p), "nodir/new.pem");
    assert_int_equal(file_create_atomic(p, "x", 1, 0600, &e), TE_ERR_IO);
    assert_non_null(strstr(e.msg, "nodir"));
}

static void test_mkdir_p_and_dirname(void **state)
{
    (void)state;
    char p[300], d[300];
    struct stat st;
    path_in(p, sizeof(p), "a/b/c");
    assert_int_equal(mkdir_p(p, 0750, NULL), TE_OK);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(mkdir_p(p, 0750, NULL), TE_OK); /* idempotent */
    path_dirname("/x/y/z.sock", d, sizeof(d));
    assert_string_equal(d, "/x/y");
    path_dirname("/z.sock", d, sizeof(d));
    assert_string_equal(d, "/");
    path_dirname("z.sock", d, sizeof(d));
    assert_string_equal(d, ".");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_new_file_mode_and_content),
        cmocka_unit_test(test_rewrite_keeps_mode_and_leaves_no_temp),
        cmocka_unit_test(test_rewrite_through_symlinks_keeps_the_links),
        cmocka_unit_test(test_rewrite_through_a_dangling_link_is_refused),
        cmocka_unit_test(test_read_limits_and_missing),
        cmocka_unit_test(test_write_into_missing_dir_fails_cleanly),
        cmocka_unit_test(test_create_never_replaces),
        cmocka_unit_test(test_mkdir_p_and_dirname),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
