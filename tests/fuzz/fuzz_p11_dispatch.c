/* libFuzzer target: the daemon's connection loop (frame reader, dispatcher, handlers) fed raw
 * bytes over a socketpair, or the dispatcher fed one body directly, against the mock module.
 *
 * Input: byte 0 selects the mode and the peer (bit 0: allowed, bit 1: admin, bit 2: direct
 * dispatch of the rest as one body; else the rest is the byte stream of a connection).
 * The mock module is $TEDGE_MOCK_MODULE, else <dir of this binary>/../libmockp11.so. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/p11.h"
#include "p11-server/server.h"
#include "proto/frame.h"

#define FUZZ_MOCK_PIN "1234"        /* the mock module's default user PIN */
#define FUZZ_FRAME_TIMEOUT_MS 2000  /* all bytes are queued before serving: never reached */
#define FUZZ_MAX_INPUT (256 * 1024) /* more than a socketpair buffers; libFuzzer stays far below */

static struct srv_ctx fuzz_ctx;

struct writer {
    int fd;
    const uint8_t *data;
    size_t len;
};

/* Plays the client: sends the bytes, half-closes, then reads every reply until EOF. */
static void *client_thread(void *arg)
{
    struct writer *w = arg;
    size_t off = 0;
    uint8_t sink[4096];

    while (off < w->len) {
        ssize_t n = send(w->fd, w->data + off, w->len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(w->fd, SHUT_WR);
    while (recv(w->fd, sink, sizeof(sink), 0) > 0)
        ;
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[PATH_MAX];
    const char *module = getenv("TEDGE_MOCK_MODULE");
    struct p11_config cfg = {.default_pin = FUZZ_MOCK_PIN, .requests_from_peers = true};
    struct te_error err = {0};
    FILE *devnull = fopen("/dev/null", "w");

    (void)argc;
    if (module == NULL || module[0] == '\0') {
        const char *self = (*argv)[0], *slash = strrchr(self, '/');
        snprintf(path, sizeof(path), "%.*s/../libmockp11.so",
                 slash ? (int)(slash - self) : 1, slash ? self : ".");
        module = path;
    }
    /* Every log line is formatted (that code runs on peer bytes too) but not printed. */
    log_set_level(LOG_LVL_TRACE);
    if (devnull != NULL)
        log_set_fd(fileno(devnull));
    cfg.module_path = module;
    if (p11_open(&cfg, &fuzz_ctx.p11, &err) != TE_OK) {
        fprintf(stderr, "fuzz_p11_dispatch: cannot load the mock module %s: %s\n", module,
                te_error_message(&err));
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct srv_limits lim = {.max_clients = 1, .frame_timeout_ms = FUZZ_FRAME_TIMEOUT_MS,
                             .idle_timeout_ms = FUZZ_FRAME_TIMEOUT_MS};
    struct srv_peer peer = {.pid = 1, .uid = 1000, .gid = 1000};
    struct writer w;
    pthread_t th;
    int sv[2];

    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    peer.allowed = (data[0] & 1) != 0;
    peer.admin = (data[0] & 2) != 0;
    if ((data[0] & 4) != 0) {
        struct buf *reply = buf_new(PROTO_MAX_FRAME);
        bool close_after;
        if (reply == NULL)
            return 0;
        srv_dispatch(&fuzz_ctx, &peer, data + 1, size - 1, reply, &close_after);
        buf_free(reply);
        return 0;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    w = (struct writer){.fd = sv[0], .data = data + 1, .len = size - 1};
    if (pthread_create(&th, NULL, client_thread, &w) != 0)
        abort();
    srv_conn_serve(&fuzz_ctx, &lim, sv[1], &peer, -1);
    shutdown(sv[1], SHUT_RDWR);
    pthread_join(th, NULL);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
