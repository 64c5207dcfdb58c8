/* Helpers the unit tests share (see unit_helpers.h); the Makefile links every .c file of
 * tests/unit/ that is not a test_ program into each unit test program. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit_helpers.h"

#define UNIT_READ_MAX 65536 /* larger than any file a unit test reads back */
#define UNIT_ENV_NAME_MAX 256 /* longest TEDGE_* variable name the tests set */
#define UNIT_RM_FDS 16 /* directory depth nftw keeps open at once */

extern char **environ;

void unit_write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(path, mode), 0);
}

char *unit_read_file(const char *path)
{
    static char buf[UNIT_READ_MAX];
    FILE *fp = fopen(path, "r");
    size_t n;

    if (fp == NULL)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

void unit_clear_tedge_env(void)
{
    for (;;) {
        char name[UNIT_ENV_NAME_MAX];
        char **e;
        for (e = environ; *e != NULL; e++)
            if (strncasecmp(*e, "TEDGE_", 6) == 0)
                break;
        if (*e == NULL)
            return;
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
        unsetenv(name);
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

int unit_remove_dir(const char *dir)
{
    return nftw(dir, remove_entry, UNIT_RM_FDS, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}
