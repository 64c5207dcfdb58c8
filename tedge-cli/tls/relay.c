/* The relay (see relay.h): its private socket and thread, the peer check, and the pump that
 * moves bytes between one Unix connection and one TLS session without busy-waiting. */
#include "tedge-cli/tls/relay.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

#define RELAY_BACKLOG 8               /* libmosquitto connects non-blocking: a full backlog fails it */
#define RELAY_BUF_SIZE (16 * 1024)    /* per direction: one TLS record of plaintext */
#define RELAY_DIR_PREFIX "tedge-relay." /* + mkdtemp's XXXXXX */
#define RELAY_SOCKET_NAME "mqtt.sock"
#define RELAY_SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1) /* 107 on Linux */

struct relay {
    struct tls_client *tls;             /* borrowed */
    char dir[PATH_MAX];
    char path[PATH_MAX + sizeof("/" RELAY_SOCKET_NAME)]; /* at most RELAY_SUN_PATH_MAX (checked) */
    int listen_fd;
    int wake_fd;                        /* eventfd: relay_stop wakes the thread */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;               /* guards has_err, last_err, stats */
    bool has_err;
    struct te_error last_err;
    struct relay_stats stats;
    /* relay thread only */
    bool stopping;
    int handover_fd;                    /* trusted connection to serve next (replaces the current) */
    unsigned char up[RELAY_BUF_SIZE];   /* Unix -> TLS */
    unsigned char down[RELAY_BUF_SIZE]; /* TLS -> Unix */
};

/* One session's pump state; each buffer holds [off, len). */
struct pump {
    int ufd;
    struct tls_session *tls;
    size_t up_off, up_len, down_off, down_len;
    bool unix_eof;                      /* nothing more will come from libmosquitto */
    bool tls_eof;                       /* nothing more will come from the cloud */
    short tls_wait;                     /* POLLIN/POLLOUT that mbedTLS asked for */
    bool unix_wait_out;                 /* the Unix send buffer is full */
    bool notify;                        /* end with close_notify */
};

static void count(struct relay *r, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&r->lock);
    *field += n;
    pthread_mutex_unlock(&r->lock);
}

/* A connection from anyone but this process is closed at once: root ignores the directory's
 * 0700, so the peer's pid is what keeps others off our cloud identity. Returns a trusted
 * connection, or -1. */
static int accept_peer(struct relay *r)
{
    struct ucred cred = {0};
    socklen_t len = sizeof(cred);
    int fd = accept4(r->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0)
        return -1;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid != getpid() ||
        cred.uid != geteuid()) {
        log_warn("relay: refused a connection from pid=%d uid=%d: only this process may use it",
                 (int)cred.pid, (int)cred.uid);
        close(fd);
        count(r, &r->stats.rejected_peers, 1);
        return -1;
    }
    return fd;
}

/* The listening socket or the stop signal became readable: returns TE_OK to carry on, or
 * TE_ERR_CLOSED when the current connection must end (stopping is set, or handover_fd holds
 * a trusted newcomer). */
static int relay_event(struct relay *r, int fd)
{
    int nfd;

    if (fd == r->wake_fd) {
        r->stopping = true;
        return TE_ERR_CLOSED;
    }
    if ((nfd = accept_peer(r)) < 0)
        return TE_OK;
    /* libmosquitto has one connection at a time: a new one means it gave up the current. */
    if (r->handover_fd >= 0)
        close(r->handover_fd);
    r->handover_fd = nfd;
    return TE_ERR_CLOSED;
}

static int watch_ready(void *arg, int fd) { return relay_event(arg, fd); }

/* ---- the pump ---------------------------------------------------------------------------- */

/* Does every transfer that can happen now; returns true when something moved. */
static bool pump_step(struct relay *r, struct pump *p)
{
    struct te_error err = {0};
    bool moved = false;
    size_t n = 0;
    ssize_t got;
    int rc;

    if (p->up_len == 0 && !p->unix_eof && !p->tls_eof) {
        got = recv(p->ufd, r->up, sizeof(r->up), MSG_DONTWAIT);
        if (got > 0) {
            p->up_off = 0;
            p->up_len = (size_t)got;
            moved = true;
        } else if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            p->unix_eof = true;
            moved = true;
        }
    }
    p->tls_wait = 0;
    if (p->up_off < p->up_len && !p->tls_eof) {
        /* After TLS_IO_WANT_* this repeats the same bytes, as mbedtls_ssl_write requires. */
        rc = tls_session_write(p->tls, r->up + p->up_off, p->up_len - p->up_off, &n, &err);
        if (rc == TE_OK) {
            count(r, &r->stats.bytes_up, n);
            p->up_off += n;
            if (p->up_off == p->up_len)
                p->up_off = p->up_len = 0;
            moved = true;
        } else if (rc == TLS_IO_WANT_READ || rc == TLS_IO_WANT_WRITE) {
            p->tls_wait |= rc == TLS_IO_WANT_READ ? POLLIN : POLLOUT;
        } else {
            log_warn("relay: %s", te_error_message(&err));
            p->tls_eof = true;
            p->notify = false;
            moved = true;
        }
    }
    if (p->down_len == 0 && !p->tls_eof) {
        rc = tls_session_read(p->tls, r->down, sizeof(r->down), &n, &err);
        if (rc == TE_OK) {
            p->down_off = 0;
            p->down_len = n;
            moved = true;
        } else if (rc == TLS_IO_WANT_READ || rc == TLS_IO_WANT_WRITE) {
            p->tls_wait |= rc == TLS_IO_WANT_READ ? POLLIN : POLLOUT;
        } else {
            if (rc != TE_ERR_CLOSED)
                log_warn("relay: %s", te_error_message(&err));
            else
                log_info("relay: %s", te_error_message(&err));
            p->tls_eof = true;
            p->notify = false;
            moved = true;
        }
    }
    p->unix_wait_out = false;
    if (p->down_off < p->down_len) {
        got = send(p->ufd, r->down + p->down_off, p->down_len - p->down_off,
                   MSG_NOSIGNAL | MSG_DONTWAIT);
        if (got > 0) {
            count(r, &r->stats.bytes_down, (uint64_t)got);
            p->down_off += (size_t)got;
            if (p->down_off == p->down_len)
                p->down_off = p->down_len = 0;
            moved = true;
        } else if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            p->unix_wait_out = true;
        } else {
            /* libmosquitto is gone: what the cloud sends has no reader any more */
            p->down_off = p->down_len = 0;
            p->unix_eof = true;
            moved = true;
        }
    }
    return moved;
}

/* Moves bytes until one side ends, the relay stops, or a new connection takes over. */
static void pump_run(struct relay *r, struct pump *p)
{
    struct pollfd pfd[4];

    for (;;) {
        while (pump_step(r, p))
            ;
        if (p->unix_eof && p->up_len == 0) {
            log_info("relay: the MQTT client closed its connection; closing the TLS session");
            return;
        }
        if (p->tls_eof && p->down_len == 0) {
            /* libmosquitto sees "connection lost" and reconnects with its backoff. */
            shutdown(p->ufd, SHUT_RDWR);
            return;
        }
        /* Bytes mbedTLS holds do not wake poll(). We sleep on the TCP socket only after
         * mbedtls_ssl_read itself said WANT_READ, and it fetches one record at a time, so then
         * it holds nothing and the rest is in the kernel where poll() sees it. When reading
         * stopped because the Unix side was full, it resumes without waiting on TCP. (Looping
         * on mbedtls_ssl_check_pending here instead would spin whenever mbedTLS holds a
         * handshake message it cannot finish before the socket is writable.) */
        pfd[0] = (struct pollfd){.fd = r->wake_fd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
        pfd[2] = (struct pollfd){.fd = p->ufd,
                                 .events = (short)((p->up_len == 0 && !p->unix_eof ? POLLIN : 0) |
                                                   (p->unix_wait_out ? POLLOUT : 0))};
        pfd[3] = (struct pollfd){.fd = tls_session_fd(p->tls), .events = p->tls_wait};
        /* An fd we expect nothing from stays out: its POLLHUP would wake us forever. */
        for (int i = 2; i < 4; i++)
            if (pfd[i].events == 0)
                pfd[i].fd = -1;
        if (poll(pfd, 4, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("relay: poll failed: %s", strerror(errno));
            return;
        }
        for (int i = 0; i < 2; i++)
            if (pfd[i].revents != 0 && relay_event(r, pfd[i].fd) != TE_OK)
                return;
    }
}

/* One accepted connection: one TLS session (one handshake, one signature). */
static void serve(struct relay *r, int ufd)
{
    struct tls_watch watch = {.fds = {r->listen_fd, r->wake_fd}, .nfds = 2,
                              .ready = watch_ready, .arg = r};
    struct te_error err = {0};
    struct pump p = {.ufd = ufd, .notify = true};
    struct relay_stats st;
    int ret;

    ret = tls_session_open(r->tls, &watch, &p.tls, &err);
    if (ret != TE_OK) {
        if (!r->stopping && r->handover_fd < 0) {
            bool again;
            pthread_mutex_lock(&r->lock);
            /* libmosquitto retries every few seconds: say the same thing once */
            again = r->has_err && strcmp(r->last_err.msg, err.msg) == 0;
            r->last_err = err;
            r->has_err = true;
            r->stats.failures++;
            pthread_mutex_unlock(&r->lock);
            if (again)
                log_debug("relay: %s", te_error_message(&err));
            else
                log_warn("relay: %s", te_error_message(&err));
        }
        close(ufd); /* libmosquitto sees the connection lost and retries by itself */
        return;
    }
    pthread_mutex_lock(&r->lock);
    r->has_err = false;
    r->stats.sessions++;
    st = r->stats;
    pthread_mutex_unlock(&r->lock);
    log_info("relay: session %llu to %s open suite=%s", (unsigned long long)st.sessions,
             tls_client_endpoint(r->tls), tls_session_suite(p.tls));
    pump_run(r, &p);
    tls_session_close(p.tls, p.notify);
    close(ufd);
}

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    struct pollfd pfd[2];
    int ufd;

    while (!r->stopping) {
        if (r->handover_fd >= 0) {
            ufd = r->handover_fd;
            r->handover_fd = -1;
            serve(r, ufd);
            continue;
        }
        pfd[0] = (struct pollfd){.fd = r->wake_fd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("relay: poll failed: %s", strerror(errno));
            break;
        }
        /* sets stopping, or hands a trusted connection over to the next turn */
        for (int i = 0; i < 2; i++)
            if (pfd[i].revents != 0)
                relay_event(r, pfd[i].fd);
    }
    if (r->handover_fd >= 0)
        close(r->handover_fd);
    r->handover_fd = -1;
    return NULL;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static const char *runtime_base(const char *runtime_dir)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");

    if (runtime_dir != NULL)
        return runtime_dir;
    /* The socket path must fit sun_path: fall back to /tmp when $XDG_RUNTIME_DIR is too deep. */
    if (xdg != NULL && xdg[0] == '/' &&
        strlen(xdg) + sizeof("/" RELAY_DIR_PREFIX "XXXXXX/" RELAY_SOCKET_NAME) - 1 <= RELAY_SUN_PATH_MAX)
        return xdg;
    return "/tmp";
}

static int relay_listen(struct relay *r, const char *base, struct te_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(r->dir, sizeof(r->dir), "%s/" RELAY_DIR_PREFIX "XXXXXX", base);

    if (n < 0 || (size_t)n + sizeof("/" RELAY_SOCKET_NAME) - 1 > RELAY_SUN_PATH_MAX)
        return te_error_set(err, TE_ERR_CONFIG,
                            "The runtime directory '%s' is too long for a Unix socket path "
                            "(at most %zu characters): use a shorter one.", base,
                            (size_t)RELAY_SUN_PATH_MAX);
    if (mkdtemp(r->dir) == NULL) { /* mode 0700 */
        r->dir[0] = '\0';
        return te_error_set(err, TE_ERR_IO,
                            "Cannot create a private directory for the MQTT relay in '%s': %s.",
                            base, strerror(errno));
    }
    snprintf(r->path, sizeof(r->path), "%s/" RELAY_SOCKET_NAME, r->dir);
    memcpy(sa.sun_path, r->path, strlen(r->path) + 1); /* fits: length checked above */
    r->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->listen_fd < 0 || bind(r->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        chmod(r->path, 0600) != 0 || listen(r->listen_fd, RELAY_BACKLOG) != 0)
        return te_error_set(err, TE_ERR_IO, "Cannot listen on the MQTT relay socket '%s': %s.",
                            r->path, strerror(errno));
    return TE_OK;
}

int relay_start(struct tls_client *tls, const char *runtime_dir, struct relay **out,
                struct te_error *err)
{
    struct relay *r;
    sigset_t all, old;
    int ret;

    CHECK_ARG(tls != NULL && out != NULL, TE_ERR_INVALID);
    *out = NULL;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    r->tls = tls;
    r->listen_fd = r->wake_fd = r->handover_fd = -1;
    pthread_mutex_init(&r->lock, NULL);
    if ((ret = relay_listen(r, runtime_base(runtime_dir), err)) != TE_OK)
        goto exit;
    if ((r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        ret = te_error_set(err, TE_ERR_IO, "Cannot create the MQTT relay: %s.", strerror(errno));
        goto exit;
    }
    /* Signals stay with the application's threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = pthread_create(&r->thread, NULL, relay_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret != 0) {
        ret = te_error_set(err, TE_ERR_IO, "Cannot start the MQTT relay thread: %s.", strerror(ret));
        goto exit;
    }
    r->thread_started = true;
    log_debug("relay: listening on %s for %s", r->path, tls_client_endpoint(tls));
    *out = r;
    r = NULL;
exit:
    relay_stop(r);
    return ret;
}

void relay_stop(struct relay *r)
{
    if (r == NULL)
        return;
    if (r->thread_started) {
        eventfd_write(r->wake_fd, 1);
        pthread_join(r->thread, NULL);
    }
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    if (r->listen_fd >= 0)
        close(r->listen_fd);
    if (r->path[0] != '\0')
        unlink(r->path);
    if (r->dir[0] != '\0')
        rmdir(r->dir);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

const char *relay_socket_path(const struct relay *r) { return r->path; }

bool relay_last_error(struct relay *r, struct te_error *out)
{
    bool has;

    pthread_mutex_lock(&r->lock);
    has = r->has_err;
    if (has && out != NULL)
        *out = r->last_err;
    pthread_mutex_unlock(&r->lock);
    return has;
}

void relay_get_stats(struct relay *r, struct relay_stats *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->stats;
    pthread_mutex_unlock(&r->lock);
}
