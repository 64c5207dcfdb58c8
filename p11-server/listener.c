/* The listening socket: taken from systemd socket activation, or created by us under a lock
 * file, with stale-socket reclaim after a kill -9 and an explicit mode and group. */
#include "p11-server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/fileutil.h"
#include "common/log.h"

#define SRV_LISTEN_BACKLOG 128   /* connections waiting for accept(); busy ones are answered */
#define SRV_SOCKET_DIR_MODE 0755 /* the socket's own mode is the access control */
#define SRV_LOCK_FILE_MODE 0600

static int set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static int take_activated(int n, struct srv_listener *l, struct te_error *err)
{
    int fd = SD_LISTEN_FDS_START;

    if (n > 1)
        return te_error_set(err, TE_ERR_CONFIG, "systemd passed %d sockets, but %s serves exactly "
                            "one: give tedge-p11-server.socket a single ListenStream=.", n,
                            SRV_NAME);
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0)
        return te_error_set(err, TE_ERR_CONFIG, "The socket passed by systemd is not a listening "
                            "Unix stream socket: use ListenStream=<path> in the socket unit.");
    if (set_nonblock_cloexec(fd) != 0)
        return te_error_set(err, TE_ERR_IO, "Cannot configure the socket passed by systemd: %s.",
                            strerror(errno));
    l->fd = fd;
    l->activated = true;
    log_info("Using the socket passed by systemd (socket activation)");
    return TE_OK;
}

static int take_lock(const char *path, struct srv_listener *l, struct te_error *err)
{
    char lock_path[sizeof(l->path) + 8];

    snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    l->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, SRV_LOCK_FILE_MODE);
    if (l->lock_fd < 0)
        return te_error_set(err, TE_ERR_IO, "Failed to acquire the socket lock at '%s': %s.",
                            lock_path, strerror(errno));
    if (flock(l->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return te_error_set(err, TE_ERR_EXISTS, "Another %s is already serving %s (lock %s "
                                "held).", SRV_NAME, path, lock_path);
        return te_error_set(err, TE_ERR_IO, "Failed to acquire the socket lock at '%s': %s.",
                            lock_path, strerror(errno));
    }
    return TE_OK;
}

/* A socket file left at path: refuse it if something answers there, remove it if nobody does. */
static int reclaim_leftover(const struct sockaddr_un *sa, struct te_error *err)
{
    const char *path = sa->sun_path;
    struct stat st;
    int fd = -1, ret;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return TE_OK;
        return te_error_set(err, TE_ERR_IO, "Cannot inspect '%s': %s.", path, strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        return te_error_set(err, TE_ERR_EXISTS, "'%s' exists and is not a socket: remove it or "
                            "choose another --socket-path.", path);
    /* We hold the lock, so a listener here means flock is a no-op on this file system or
     * someone serves without the lock: never steal the socket from a live server. */
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
        ret = te_error_set(err, TE_ERR_IO, "Cannot create a socket: %s.", strerror(errno));
        goto exit;
    }
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN ||
        errno == EINPROGRESS) {
        ret = te_error_set(err, TE_ERR_EXISTS, "Another server is already listening on '%s'; "
                           "stop it first or choose another --socket-path.", path);
        goto exit;
    }
    if (errno != ECONNREFUSED) {
        ret = te_error_set(err, TE_ERR_IO, "Cannot check the existing socket '%s': %s.", path,
                           strerror(errno));
        goto exit;
    }
    log_warn("Removing stale socket file '%s' left over by a previous run", path);
    if (unlink(path) != 0 && errno != ENOENT) {
        ret = te_error_set(err, TE_ERR_IO, "Failed to remove the stale socket file '%s': %s.",
                           path, strerror(errno));
        goto exit;
    }
    ret = TE_OK;
exit:
    if (fd >= 0)
        close(fd);
    return ret;
}

static int bind_socket(const struct srv_listen_config *cfg, const struct sockaddr_un *sa,
                       struct srv_listener *l, struct te_error *err)
{
    mode_t old_mask;
    int r;

    if ((l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
        return te_error_set(err, TE_ERR_IO, "Cannot create a socket: %s.", strerror(errno));
    /* Nobody may connect before the mode and group are right: bind with no permissions (no
     * threads run yet, so the process-wide umask is ours to change). */
    old_mask = umask(0777);
    r = bind(l->fd, (const struct sockaddr *)sa, sizeof(*sa));
    umask(old_mask);
    if (r != 0)
        return te_error_set(err, TE_ERR_IO, "Failed to bind to socket at '%s': %s.", sa->sun_path,
                            strerror(errno));
    snprintf(l->path, sizeof(l->path), "%s", sa->sun_path);
    if (cfg->has_group && chown(sa->sun_path, (uid_t)-1, cfg->group) != 0)
        return te_error_set(err, TE_ERR_IO, "Cannot give the socket '%s' to group %u: %s.",
                            sa->sun_path, (unsigned)cfg->group, strerror(errno));
    if (chmod(sa->sun_path, (mode_t)cfg->mode) != 0)
        return te_error_set(err, TE_ERR_IO, "Cannot set mode %04o on the socket '%s': %s.",
                            cfg->mode, sa->sun_path, strerror(errno));
    if (listen(l->fd, SRV_LISTEN_BACKLOG) != 0)
        return te_error_set(err, TE_ERR_IO, "Cannot listen on '%s': %s.", sa->sun_path,
                            strerror(errno));
    return TE_OK;
}

int srv_listener_open(const struct srv_listen_config *cfg, struct srv_listener *l,
                      struct te_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char dir[sizeof(sa.sun_path)];
    int n, r;

    memset(l, 0, sizeof(*l));
    l->fd = -1;
    l->lock_fd = -1;
    if ((n = sd_listen_fds(1)) < 0)
        return te_error_set(err, TE_ERR_IO, "Failed to obtain activated sockets from systemd: %s.",
                            strerror(-n));
    if (n > 0) {
        r = take_activated(n, l, err);
        goto exit;
    }
    if (cfg->socket_path == NULL || cfg->socket_path[0] == '\0' ||
        strlen(cfg->socket_path) >= sizeof(sa.sun_path))
        return te_error_set(err, TE_ERR_CONFIG, "The socket path '%s' must be 1 to %zu "
                            "characters long.", cfg->socket_path ? cfg->socket_path : "",
                            sizeof(sa.sun_path) - 1);
    memcpy(sa.sun_path, cfg->socket_path, strlen(cfg->socket_path) + 1);
    path_dirname(sa.sun_path, dir, sizeof(dir));
    if ((r = mkdir_p(dir, SRV_SOCKET_DIR_MODE, err)) != TE_OK)
        goto exit;
    if ((r = take_lock(sa.sun_path, l, err)) != TE_OK)
        goto exit;
    if ((r = reclaim_leftover(&sa, err)) != TE_OK)
        goto exit;
    r = bind_socket(cfg, &sa, l, err);
exit:
    if (r != TE_OK)
        srv_listener_close(l);
    return r;
}

void srv_listener_close(struct srv_listener *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    /* Only the path we bound, and before the lock goes, so a successor never loses its socket. */
    if (!l->activated && l->path[0] != '\0' && unlink(l->path) != 0 && errno != ENOENT)
        log_warn("Cannot remove the socket '%s': %s", l->path, strerror(errno));
    l->path[0] = '\0';
    if (l->lock_fd >= 0)
        close(l->lock_fd);
    l->lock_fd = -1;
}
