/* File helpers (see fileutil.h). Atomic replacement never leaves a half-written file:
 * readers see the old content or the new one. */
#include "common/fileutil.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_read_all(const char *path, size_t max, char **out, size_t *out_len,
                  struct te_error *err)
{
    int fd, ret;
    struct stat st;
    char *data = NULL;
    size_t len = 0, cap;

    *out = NULL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            return te_error_set(err, TE_ERR_NOT_FOUND, "File '%s' does not exist.", path);
        return te_error_set(err, TE_ERR_IO, "Cannot open '%s': %s.", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        ret = te_error_set(err, TE_ERR_IO, "'%s' is not a readable file.", path);
        goto exit;
    }
    cap = (st.st_size > 0 && (size_t)st.st_size <= max) ? (size_t)st.st_size + 1 : 4096;
    if (cap > max + 1)
        cap = max + 1;
    if ((data = malloc(cap)) == NULL) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory reading '%s'.", path);
        goto exit;
    }
    for (;;) {
        ssize_t n;
        if (len + 1 >= cap) {
            char *nd, probe;
            if (cap > max) {
                /* Exactly max bytes read: the file fits only if nothing follows. */
                ssize_t p;
                while ((p = read(fd, &probe, 1)) < 0 && errno == EINTR)
                    ;
                if (p == 0)
                    break;
                ret = te_error_set(err, TE_ERR_TOO_LARGE,
                                   "File '%s' is larger than the limit of %zu bytes.", path, max);
                goto exit;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            if ((nd = realloc(data, ncap)) == NULL) {
                ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory reading '%s'.", path);
                goto exit;
            }
            data = nd;
            cap = ncap;
        }
        n = read(fd, data + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = te_error_set(err, TE_ERR_IO, "Cannot read '%s': %s.", path, strerror(errno));
            goto exit;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    data[len] = '\0';
    *out = data;
    data = NULL;
    if (out_len != NULL)
        *out_len = len;
    ret = TE_OK;
exit:
    free(data);
    close(fd);
    return ret;
}

void path_dirname(const char *path, char *out, size_t out_size)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL) {
        snprintf(out, out_size, ".");
        return;
    }
    n = (size_t)(slash - path);
    if (n == 0)
        n = 1; /* "/file" -> "/" */
    if (n >= out_size)
        n = out_size - 1;
    memcpy(out, path, n);
    out[n] = '\0';
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* no progress on a regular file: do not spin */
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Moves tmp to path unless path exists: renameat2(RENAME_NOREPLACE), or link()+unlink() on file
 * systems without it. Either way a reader sees no file or the whole file. */
static int rename_without_replacing(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (link(tmp, path) != 0)
        return -1;
    unlink(tmp);
    return 0;
}

/* What file_write_atomic replaces for path: path itself, or when path is a symbolic link, the
 * file the link finally points to (so the link stays a link, as the administrator made it). A
 * dangling link is refused rather than followed: its target may be on a file system that is not
 * mounted, and a new file there would hide the real one. */
static int replace_target(const char *path, char *out, size_t size, struct te_error *err)
{
    struct stat lst;
    char *real;
    int ret = TE_OK;

    if (lstat(path, &lst) != 0 || !S_ISLNK(lst.st_mode)) {
        if (snprintf(out, size, "%s", path) >= (int)size)
            return te_error_set(err, TE_ERR_INVALID, "Path '%s' is too long.", path);
        return TE_OK;
    }
    if ((real = realpath(path, NULL)) == NULL) {
        if (errno == ENOENT)
            return te_error_set(err, TE_ERR_NOT_FOUND,
                                "'%s' is a symbolic link to a file that does not exist. Create "
                                "the file it points to, or replace the link with a file.", path);
        return te_error_set(err, TE_ERR_IO, "Cannot follow the symbolic link '%s': %s.", path,
                            strerror(errno));
    }
    if (snprintf(out, size, "%s", real) >= (int)size)
        ret = te_error_set(err, TE_ERR_INVALID, "The target of '%s' has a path that is too long.",
                           path);
    free(real);
    return ret;
}

/* The one temp file + fsync + rename writer behind file_write_atomic (replace: writes through a
 * symbolic link, and an existing file keeps its mode and owner) and file_create_atomic (never
 * replaces: TE_ERR_EXISTS). */
static int write_via_temp(const char *given, const void *data, size_t len, mode_t new_mode,
                          bool replace, struct te_error *err)
{
    char tmp[PATH_MAX], dir[PATH_MAX], target[PATH_MAX];
    const char *path = given;
    struct stat st;
    int fd = -1, dfd, ret;
    bool existed = false;

    if (replace) {
        if ((ret = replace_target(given, target, sizeof(target), err)) != TE_OK)
            return ret;
        path = target;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return te_error_set(err, TE_ERR_INVALID, "Path '%s' is too long.", path);
    if (replace)
        existed = stat(path, &st) == 0;
    else if (lstat(path, &st) == 0) /* even a dangling link is in the way */
        return te_error_set(err, TE_ERR_EXISTS, "'%s' already exists.", path);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        return te_error_set(err, TE_ERR_IO, "Cannot create a temporary file next to '%s': %s.",
                            path, strerror(errno));
    if (fchmod(fd, existed ? (st.st_mode & 07777) : new_mode) != 0) {
        ret = te_error_set(err, TE_ERR_IO, "Cannot set the mode of '%s': %s.", tmp, strerror(errno));
        goto fail;
    }
    if (existed && (st.st_uid != geteuid() || st.st_gid != getegid()))
        (void)!fchown(fd, st.st_uid, st.st_gid); /* best effort: only root may give files away */
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        ret = te_error_set(err, TE_ERR_IO, "Cannot write '%s': %s.", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        ret = te_error_set(err, TE_ERR_IO, "Cannot write '%s': %s.", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (replace && rename(tmp, path) != 0) {
        ret = te_error_set(err, TE_ERR_IO, "Cannot replace '%s': %s.", path, strerror(errno));
        goto fail;
    }
    if (!replace && rename_without_replacing(tmp, path) != 0) {
        ret = errno == EEXIST ? te_error_set(err, TE_ERR_EXISTS, "'%s' already exists.", path)
                              : te_error_set(err, TE_ERR_IO, "Cannot create '%s': %s.", path,
                                             strerror(errno));
        goto fail;
    }
    path_dirname(path, dir, sizeof(dir));
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return TE_OK;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return ret;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t new_mode,
                      struct te_error *err)
{
    return write_via_temp(path, data, len, new_mode, true, err);
}

int file_create_atomic(const char *path, const void *data, size_t len, mode_t mode,
                       struct te_error *err)
{
    return write_via_temp(path, data, len, mode, false, err);
}

int mkdir_p(const char *path, mode_t mode, struct te_error *err)
{
    char p[PATH_MAX];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(p))
        return te_error_set(err, TE_ERR_INVALID, "Invalid directory path '%s'.", path);
    memcpy(p, path, len + 1);
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) != 0 && errno != EEXIST)
                return te_error_set(err, TE_ERR_IO, "Cannot create directory '%s': %s.", p,
                                    strerror(errno));
            *s = c;
            if (c == '\0')
                break;
        }
    }
    return TE_OK;
}

/* file_read_secret: one answer for every failure, so that a caller reading a path named by
 * someone else learns nothing about it (existence, type, size) from the error. */
#define SECRET_READ_CHUNK 256 /* bytes per read(); secrets are a line or two */

static int secret_unusable(struct te_error *err, const char *path, size_t max)
{
    return te_error_set(err, TE_ERR_INVALID,
                        "'%s' cannot be used: it must be a readable regular file (not a symbolic "
                        "link, FIFO or device) of at most %zu bytes.", path, max);
}

int file_read_secret(const char *path, size_t max, char **out, size_t *out_len,
                     struct te_error *err)
{
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    int fd, ret;

    *out = NULL;
    /* O_NONBLOCK: opening a FIFO with no writer must not hang the caller; O_NOFOLLOW: the
     * last component is not a link planted to point elsewhere. */
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) < 0)
        return secret_unusable(err, path, max);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        (uint64_t)st.st_size > (uint64_t)max) {
        ret = secret_unusable(err, path, max);
        goto exit;
    }
    if ((data = malloc(max + 2)) == NULL) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
        goto exit;
    }
    /* The size was checked, but the file may grow: read at most max + 1 bytes to notice. */
    while (len <= max) {
        size_t want = max + 1 - len < SECRET_READ_CHUNK ? max + 1 - len : SECRET_READ_CHUNK;
        ssize_t n = read(fd, data + len, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = secret_unusable(err, path, max);
            goto exit;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max) {
        ret = secret_unusable(err, path, max);
        goto exit;
    }
    data[len] = '\0';
    *out = data;
    data = NULL;
    if (out_len != NULL)
        *out_len = len;
    ret = TE_OK;
exit:
    if (data != NULL) {
        explicit_bzero(data, max + 2);
        free(data);
    }
    close(fd);
    return ret;
}
