/* Files of `tedge cert`: new certificates and keys appear whole or not at all and never replace
 * an existing file; requests replace the old one atomically; ownership like upstream. */
#include "tedge-cli/commands/cert_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileutil.h"
#include "common/log.h"

bool cert_path_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static int make_parent(const char *path, struct te_error *err)
{
    char dir[PATH_MAX];
    struct stat st;

    path_dirname(path, dir, sizeof(dir));
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? TE_OK
                                   : te_error_set(err, TE_ERR_IO, "Cannot write '%s': '%s' is not "
                                                  "a directory.", path, dir);
    return mkdir_p(dir, CERT_DIR_MODE, err);
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    int dfd;

    path_dirname(path, dir, sizeof(dir));
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
}

/* Moves tmp to path unless path exists: renameat2(RENAME_NOREPLACE), or link()+unlink() on file
 * systems without it. Either way a reader sees no file or the whole file. */
static int place_without_replacing(const char *tmp, const char *path)
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

int cert_write_new(const char *path, const void *data, size_t len, mode_t mode,
                   struct te_error *err)
{
    char tmp[PATH_MAX];
    int fd = -1, ret;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return te_error_set(err, TE_ERR_INVALID, "The path '%s' is too long.", path);
    if (cert_path_exists(path))
        return te_error_set(err, TE_ERR_EXISTS, "'%s' already exists.", path);
    if ((ret = make_parent(path, err)) != TE_OK)
        return ret;
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        return te_error_set(err, TE_ERR_IO, "Cannot create a file next to '%s': %s.", path,
                            strerror(errno));
    if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        ret = te_error_set(err, TE_ERR_IO, "Cannot write '%s': %s.", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        ret = te_error_set(err, TE_ERR_IO, "Cannot write '%s': %s.", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (place_without_replacing(tmp, path) != 0) {
        ret = errno == EEXIST ? te_error_set(err, TE_ERR_EXISTS, "'%s' already exists.", path)
                              : te_error_set(err, TE_ERR_IO, "Cannot create '%s': %s.", path,
                                             strerror(errno));
        goto fail;
    }
    sync_dir_of(path);
    return TE_OK;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return ret;
}

int cert_write_replace(const char *path, const void *data, size_t len, mode_t mode,
                       struct te_error *err)
{
    int ret;

    if ((ret = make_parent(path, err)) != TE_OK)
        return ret;
    return file_write_atomic(path, data, len, mode, err);
}

void cert_give_to_tedge(const char *path)
{
    struct passwd *pw;
    struct group *gr;

    if (geteuid() != 0 || (pw = getpwnam(CERT_TEDGE_USER)) == NULL)
        return;
    gr = getgrnam(CERT_TEDGE_USER);
    if (lchown(path, pw->pw_uid, gr != NULL ? gr->gr_gid : pw->pw_gid) != 0)
        log_debug("chown to %s failed path=%s error=%s", CERT_TEDGE_USER, path, strerror(errno));
}
