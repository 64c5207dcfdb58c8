/* Files of `tedge cert`: new certificates and keys appear whole or not at all and never replace
 * an existing file; requests replace the old one atomically; ownership like upstream. */
#include "tedge-cli/commands/cert_cmd.h"

#include <errno.h>
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

int cert_write_new(const char *path, const void *data, size_t len, mode_t mode,
                   struct te_error *err)
{
    int ret = make_parent(path, err);

    return ret != TE_OK ? ret : file_create_atomic(path, data, len, mode, err);
}

int cert_write_replace(const char *path, const void *data, size_t len, mode_t mode,
                       struct te_error *err)
{
    int ret = make_parent(path, err);

    return ret != TE_OK ? ret : file_write_atomic(path, data, len, mode, err);
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
