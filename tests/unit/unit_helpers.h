/* Helpers the unit tests share (unit_helpers.c is linked into every unit test program): test
 * files written and read back, a clean TEDGE_* environment, and removing a test directory. */
#ifndef TEDGE_TEST_UNIT_HELPERS_H
#define TEDGE_TEST_UNIT_HELPERS_H

#include <sys/types.h>

/* Writes text to path with mode, or fails the test. */
void unit_write_file(const char *path, const char *text, mode_t mode);
/* The whole file (up to 64 KiB) in a static buffer that the next call reuses; NULL when path
 * cannot be opened. */
char *unit_read_file(const char *path);
/* Unsets every TEDGE_* variable (any case), so that the environment cannot change a result. */
void unit_clear_tedge_env(void);
/* Removes dir and everything below it; 0, or -1 when something could not be removed. */
int unit_remove_dir(const char *dir);

#endif
