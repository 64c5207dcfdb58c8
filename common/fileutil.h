/* File helpers shared by every product: bounded whole-file reads, atomic writes that keep
 * a file's mode or never replace a file (temp file, fsync, rename), and mkdir -p. */
#ifndef TEDGE_COMMON_FILEUTIL_H
#define TEDGE_COMMON_FILEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct te_error;

/* Reads all of path (at most max bytes) into a NUL-terminated malloc'd buffer.
 * TE_ERR_NOT_FOUND when the file does not exist, TE_ERR_TOO_LARGE past max. */
int file_read_all(const char *path, size_t max, char **out, size_t *out_len,
                  struct te_error *err);

/* Replaces path with data atomically: writes <path>.tmp.XXXXXX in the same directory,
 * fsyncs it, renames it over path and fsyncs the directory. An existing file keeps its
 * mode (and owner when we may set it); a new file gets new_mode. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t new_mode,
                      struct te_error *err);

/* Creates path with data and mode the same way, but never replaces anything: TE_ERR_EXISTS when
 * something (even a dangling link) is at path, before or when the file is put in place; then
 * nothing was written. */
int file_create_atomic(const char *path, const void *data, size_t len, mode_t mode,
                       struct te_error *err);

/* Creates path and its missing parents with mode (like mkdir -p). */
int mkdir_p(const char *path, mode_t mode, struct te_error *err);

/* The directory part of path in out (like dirname, without modifying path). */
void path_dirname(const char *path, char *out, size_t out_size);

#endif
