/* The accept loop: peer credentials, a thread per connection up to --max-clients, a "busy"
 * reply past it, signals through a signalfd, and a bounded, clean shutdown. */
#include "p11-server/server.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/frame.h"

#define SRV_THREAD_STACK (1024 * 1024) /* PKCS#11 modules may use deep stacks; virtual only */
#define SRV_REJECT_MAX 32              /* refused connections held open so they can read why */
#define SRV_REJECT_LINGER_MS 1000      /* how long a refused client gets to read the reply */
#define SRV_BUSY_WRITE_MS 100          /* the busy reply goes into an empty socket buffer */
#define SRV_ACCEPT_PAUSE_MS 100        /* back-off when accept() fails for lack of fds/memory */
#define SRV_SHUTDOWN_GRACE_MS 2000     /* in-flight requests get this long to finish */
#define SRV_SHUTDOWN_FORCE_MS 3000     /* then their sockets are shut; then we give up */

/* A connection thread's slot. Threads are joined, not detached: a thread's exit runs the
 * PKCS#11 module's thread-local destructors, which must be over before the module is closed. */
enum slot_state { SLOT_FREE = 0, SLOT_RUNNING, SLOT_DONE };

struct slot {
    struct server *srv;
    enum slot_state state;
    pthread_t th;                      /* valid unless SLOT_FREE */
    int fd;                            /* the connection while SLOT_RUNNING, else -1 */
    struct srv_peer peer;
};

struct reject {
    int fd;
    int64_t since_ms;              /* te_monotonic_ms() when it was rejected */
};

struct server {
    struct srv_ctx *ctx;
    const struct srv_acl *acl;
    const struct srv_limits *lim;
    pthread_mutex_t mu;
    pthread_cond_t done;               /* signalled when a connection thread ends */
    unsigned active;                   /* slots in SLOT_RUNNING */
    unsigned finished;                 /* slots in SLOT_DONE */
    struct slot *slots;                /* lim->max_clients */
    int stop_fd;                       /* eventfd: readable once shutdown starts */
    struct reject rejects[SRV_REJECT_MAX];
    size_t n_rejects;
};

static void *conn_thread(void *arg)
{
    struct slot *s = arg;
    struct server *srv = s->srv;

    srv_conn_serve(srv->ctx, srv->lim, s->fd, &s->peer, srv->stop_fd);
    pthread_mutex_lock(&srv->mu);
    close(s->fd);
    s->fd = -1;
    s->state = SLOT_DONE;
    srv->active--;
    srv->finished++;
    pthread_cond_broadcast(&srv->done);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

/* Joins every finished connection thread and frees its slot. A SLOT_DONE thread has nothing
 * left to do but exit, so the joins do not wait on a client. */
static void reap_threads(struct server *srv)
{
    unsigned left;

    pthread_mutex_lock(&srv->mu);
    left = srv->finished;
    pthread_mutex_unlock(&srv->mu);
    for (unsigned i = 0; i < srv->lim->max_clients && left > 0; i++) {
        struct slot *s = &srv->slots[i];
        bool done;

        pthread_mutex_lock(&srv->mu);
        done = s->state == SLOT_DONE;
        pthread_mutex_unlock(&srv->mu);
        if (!done)
            continue;
        pthread_join(s->th, NULL);
        pthread_mutex_lock(&srv->mu);
        s->state = SLOT_FREE;
        srv->finished--;
        pthread_mutex_unlock(&srv->mu);
        left--;
    }
}

/* Sends a refusal (busy) and keeps the fd briefly so the client reads it before the close. */
static void reject(struct server *srv, int fd, const struct srv_peer *peer, int code,
                   const char *msg)
{
    struct te_error e = {0};
    struct buf *reply = buf_new(PROTO_MAX_FRAME);
    struct te_error werr;

    te_error_set(&e, code, "%s", msg);
    e.retryable = code == TE_ERR_BUSY;
    if (reply != NULL) {
        srv_reply_error(peer, &e, reply);
        if (buf_len(reply) > 0)
            proto_frame_write_buf(fd, reply, SRV_BUSY_WRITE_MS, &werr);
        buf_free(reply);
    }
    shutdown(fd, SHUT_WR);
    if (srv->n_rejects == SRV_REJECT_MAX) {
        close(fd);
        return;
    }
    srv->rejects[srv->n_rejects].fd = fd;
    srv->rejects[srv->n_rejects].since_ms = te_monotonic_ms();
    srv->n_rejects++;
}

/* Drops a rejected connection once the client sent something, hung up or had its time. */
static void reap_rejects(struct server *srv, const struct pollfd *pfds, bool all)
{
    size_t i = 0;
    char sink[4096];

    while (i < srv->n_rejects) {
        struct reject *r = &srv->rejects[i];
        bool done = all || te_monotonic_ms() - r->since_ms >= SRV_REJECT_LINGER_MS ||
                    (pfds != NULL && pfds[i].revents != 0);
        if (!done) {
            i++;
            continue;
        }
        /* Reading what the client sent avoids a reset that could hide our reply from it. */
        for (int k = 0; k < 16 && recv(r->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; k++)
            ;
        close(r->fd);
        *r = srv->rejects[--srv->n_rejects];
        if (pfds != NULL)
            pfds = NULL; /* indices moved: re-check the rest on the next round */
    }
}

static void accept_one(struct server *srv, int listen_fd, int64_t *paused_ms)
{
    pthread_attr_t attr;
    struct srv_peer peer;
    struct te_error err = {0};
    struct slot *s = NULL;
    char msg[160];
    int fd;

    fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            log_error("Cannot accept a connection: %s; pausing %d ms", strerror(errno),
                      SRV_ACCEPT_PAUSE_MS);
            *paused_ms = te_monotonic_ms();
        }
        return;
    }
    if (srv_peer_from_socket(fd, &peer, &err) != TE_OK) {
        log_warn("%s", te_error_message(&err));
        close(fd);
        return;
    }
    srv_peer_authorize(srv->acl, &peer);
    log_debug("connection from peer_pid=%ld peer_uid=%lu peer_gid=%lu allowed=%d",
              (long)peer.pid, (unsigned long)peer.uid, (unsigned long)peer.gid, peer.allowed);

    reap_threads(srv);
    pthread_mutex_lock(&srv->mu);
    for (unsigned i = 0; i < srv->lim->max_clients && s == NULL; i++)
        if (srv->slots[i].state == SLOT_FREE)
            s = &srv->slots[i];
    if (s != NULL) {
        s->state = SLOT_RUNNING;
        s->fd = fd;
        s->peer = peer;
        srv->active++;
    }
    pthread_mutex_unlock(&srv->mu);
    if (s == NULL) {
        snprintf(msg, sizeof(msg), "%s is serving its maximum of %u clients; try again later.",
                 SRV_NAME, srv->lim->max_clients);
        reject(srv, fd, &peer, TE_ERR_BUSY, msg);
        return;
    }

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SRV_THREAD_STACK);
    /* s->th is written under the lock: reap_threads() reads it once the thread is done */
    pthread_mutex_lock(&srv->mu);
    int r = pthread_create(&s->th, &attr, conn_thread, s);
    if (r != 0) {
        s->state = SLOT_FREE;
        s->fd = -1;
        srv->active--;
    }
    pthread_mutex_unlock(&srv->mu);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        log_error("Cannot start a thread for a connection: %s", strerror(r));
        snprintf(msg, sizeof(msg), "%s cannot take more clients right now; try again later.",
                 SRV_NAME);
        reject(srv, fd, &peer, TE_ERR_BUSY, msg);
    }
}

/* True when a stop signal arrived. */
static bool read_signals(int signal_fd)
{
    struct signalfd_siginfo si;
    bool stop = false;

    while (read(signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            log_info("SIGHUP ignored: restart %s to apply configuration changes", SRV_NAME);
            continue;
        }
        log_info("Received signal %u: shutting down", si.ssi_signo);
        stop = true;
    }
    return stop;
}

/* Waits until no connection thread is left or timeout_ms passed; called with srv->mu held. */
static void wait_idle(struct server *srv, int timeout_ms)
{
    struct timespec deadline;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    while (srv->active > 0)
        if (pthread_cond_timedwait(&srv->done, &srv->mu, &deadline) == ETIMEDOUT)
            break;
}

static int shutdown_connections(struct server *srv)
{
    uint64_t one = 1;
    int ret;

    /* Readable from now on: every connection stops before its next request. */
    if (write(srv->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        log_warn("Cannot signal connections to stop: %s", strerror(errno));
    reap_rejects(srv, NULL, true);
    pthread_mutex_lock(&srv->mu);
    wait_idle(srv, SRV_SHUTDOWN_GRACE_MS);
    if (srv->active > 0) {
        log_warn("%u connection(s) still busy after %d ms: closing them", srv->active,
                 SRV_SHUTDOWN_GRACE_MS);
        for (unsigned i = 0; i < srv->lim->max_clients; i++)
            if (srv->slots[i].state == SLOT_RUNNING)
                shutdown(srv->slots[i].fd, SHUT_RDWR);
        wait_idle(srv, SRV_SHUTDOWN_FORCE_MS);
    }
    ret = srv->active == 0 ? TE_OK : TE_ERR_TIMEOUT;
    if (ret != TE_OK)
        log_error("%u connection(s) did not finish (a PKCS#11 call may hang)", srv->active);
    pthread_mutex_unlock(&srv->mu);
    if (ret == TE_OK)
        reap_threads(srv);
    return ret;
}

static int server_init(struct server *srv, struct te_error *err)
{
    pthread_condattr_t ca;

    if ((srv->slots = calloc(srv->lim->max_clients, sizeof(*srv->slots))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory for %u client slots.",
                            srv->lim->max_clients);
    for (unsigned i = 0; i < srv->lim->max_clients; i++) {
        srv->slots[i].srv = srv;
        srv->slots[i].fd = -1;
    }
    if ((srv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return te_error_set(err, TE_ERR_IO, "Cannot create an eventfd: %s.", strerror(errno));
    pthread_mutex_init(&srv->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->done, &ca);
    pthread_condattr_destroy(&ca);
    return TE_OK;
}

int srv_serve(struct srv_ctx *ctx, const struct srv_acl *acl, const struct srv_limits *lim,
              int listen_fd, int signal_fd)
{
    struct server srv = {.ctx = ctx, .acl = acl, .lim = lim, .stop_fd = -1};
    struct pollfd pfds[2 + SRV_REJECT_MAX];
    int64_t paused_ms = 0;         /* when accepting stopped for want of fds; 0: it did not */
    struct te_error err = {0};
    int ret;

    if ((ret = server_init(&srv, &err)) != TE_OK) {
        log_error("%s", te_error_message(&err));
        free(srv.slots);
        return ret;
    }
    for (;;) {
        bool accepting = paused_ms == 0 || te_monotonic_ms() - paused_ms >= SRV_ACCEPT_PAUSE_MS;
        int timeout = accepting ? -1 : SRV_ACCEPT_PAUSE_MS;
        nfds_t n = 0;

        if (accepting)
            paused_ms = 0;
        pfds[n++] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
        pfds[n++] = (struct pollfd){.fd = accepting ? listen_fd : -1, .events = POLLIN};
        for (size_t i = 0; i < srv.n_rejects; i++)
            pfds[n++] = (struct pollfd){.fd = srv.rejects[i].fd, .events = POLLIN};
        if (srv.n_rejects > 0)
            timeout = SRV_REJECT_LINGER_MS / 4;
        if (poll(pfds, n, timeout) < 0 && errno != EINTR) {
            log_error("poll failed: %s", strerror(errno));
            break;
        }
        if ((pfds[0].revents & POLLIN) != 0 && read_signals(signal_fd))
            break;
        if (srv.n_rejects > 0)
            reap_rejects(&srv, pfds + 2, false);
        if ((pfds[1].revents & POLLIN) != 0)
            accept_one(&srv, listen_fd, &paused_ms);
    }
    ret = shutdown_connections(&srv);
    if (ret == TE_OK) {
        /* Threads still running would use these; with ret != TE_OK the process exits anyway. */
        pthread_cond_destroy(&srv.done);
        pthread_mutex_destroy(&srv.mu);
        close(srv.stop_fd);
        free(srv.slots);
    }
    return ret;
}
