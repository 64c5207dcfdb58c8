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
 * mode (and owner when we may set it); a new file gets new_mode. When path is a symlink the
 * write goes to its final target (the link stays); a dangling link is refused. */
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

/* Reads a small secret (a PIN file) at a path that someone else may have named, without the
 * risks of file_read_all: the last component must not be a symbolic link (O_NOFOLLOW), the
 * open never blocks (O_NONBLOCK: a FIFO or device cannot hang the caller), only a regular file
 * of at most max bytes is read. Every failure but out-of-memory is the same TE_ERR_INVALID
 * message, which tells nothing about the path. The buffer is NUL-terminated and malloc'd:
 * te_free_secret() it. */
int file_read_secret(const char *path, size_t max, char **out, size_t *out_len,
                     struct te_error *err);

#endif
