/* tedge-p11-server internals shared by its files: options, listener, peer checks, the
 * connection loop and the dispatcher. Nothing outside p11-server/ (and its tests) includes it. */
#ifndef TEDGE_P11_SERVER_SERVER_H
#define TEDGE_P11_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/err.h"

struct buf;
struct p11_ctx;

#define SRV_NAME "tedge-p11-server"
#define SRV_DEFAULT_SOCKET_PATH "/run/tedge-p11-server/tedge-p11-server.sock"
#define SRV_DEFAULT_CONFIG_DIR "/etc/tedge"
#define SRV_DEFAULT_MAX_CLIENTS 64
#define SRV_MAX_CLIENTS_LIMIT 4096        /* a thread each; more is a misconfiguration */
#define SRV_DEFAULT_SOCKET_MODE 0660      /* owner and group (tedge) may connect */
#define SRV_DEFAULT_FRAME_TIMEOUT_MS 5000 /* a request of < 2 KiB never needs longer */
#define SRV_DEFAULT_IDLE_TIMEOUT_MS 60000 /* persistent clients reconnect after this */
#define SRV_TIMEOUT_MAX_MS 86400000       /* one day: longer deadlines are typos */
#define SRV_ID_LIST_MAX 32                /* entries per uid/gid allow-list */
#define SRV_PIN_MAX 256                   /* longest PIN accepted (the protocol's limit) */

/* ---- access control (peer.c) ------------------------------------------------------------ */

struct srv_idset {
    unsigned ids[SRV_ID_LIST_MAX];
    size_t n;
};

/* Who may use the socket (empty lists: everyone who can open it) and who may use the admin
 * operations (empty lists: root only). Root and the daemon's own uid always pass. */
struct srv_acl {
    struct srv_idset allow_uid, allow_gid;
    struct srv_idset admin_uid, admin_gid;
};

#define SRV_PEER_GROUPS_MAX 64 /* supplementary groups of a peer we look at */

struct srv_peer {
    pid_t pid;
    uid_t uid;
    gid_t gid;
    gid_t groups[SRV_PEER_GROUPS_MAX]; /* supplementary groups (SO_PEERGROUPS) */
    size_t n_groups;
    bool allowed;                      /* may use the socket at all */
    bool admin;                        /* may use init_token, create_key, ... */
};

bool srv_idset_has(const struct srv_idset *set, unsigned id);
/* Reads SO_PEERCRED (and SO_PEERGROUPS where the kernel has it) of a connected socket. */
int srv_peer_from_socket(int fd, struct srv_peer *out, struct te_error *err);
/* Sets peer->allowed and peer->admin from the allow-lists. */
void srv_peer_authorize(const struct srv_acl *acl, struct srv_peer *peer);

/* ---- options (options.c, options_parse.c) ----------------------------------------------- */

struct srv_options {
    char *socket_path;
    char *module_path;
    char *uri;                   /* NULL: no scope */
    char *pin;                   /* secret; NULL: no configured PIN */
    char *config_dir;
    /* where each value came from, for the start-up log: "--socket-path", "env ...", ... */
    const char *socket_path_from, *module_path_from, *uri_from, *pin_from;
    int log_level;               /* enum log_level */
    unsigned max_clients;
    unsigned socket_mode;
    bool has_socket_group;
    gid_t socket_group;
    struct srv_acl acl;
    int frame_timeout_ms;
    int idle_timeout_ms;
};

/* Parses argv, the environment and <config-dir>/tedge.toml (flag > env > tedge.toml > default).
 * *exit_now is set after --help/--version (printed to stdout). A --pin value is copied and wiped
 * from argv. Errors are complete sentences in err. */
int srv_options_load(int argc, char **argv, struct srv_options *o, bool *exit_now,
                     struct te_error *err);
void srv_options_free(struct srv_options *o);

/* Parsers shared with the tests: durations as in tedge.toml ("5s", "500ms", "1m 30s", "7" =
 * seconds; 1 ms to one day), octal modes, user and group names or numbers. */
int srv_parse_duration_ms(const char *s, int *out_ms);
int srv_parse_mode(const char *s, unsigned *out);
int srv_parse_uid(const char *s, unsigned *out);
int srv_parse_gid(const char *s, unsigned *out);

/* ---- listener (listener.c) ------------------------------------------------------------- */

struct srv_listener {
    int fd;                      /* listening socket, -1 when closed */
    int lock_fd;                 /* holds <socket>.lock; -1 with socket activation */
    bool activated;              /* passed by systemd: never unlink its path */
    char path[108];              /* sun_path of the socket we created */
};

struct srv_listen_config {
    const char *socket_path;
    unsigned mode;
    bool has_group;
    gid_t group;
};

/* Takes a systemd-activated socket (exactly one, an AF_UNIX SOCK_STREAM listener) or creates
 * socket_path: parent directories, <socket>.lock (flock, fails when another instance holds it),
 * stale-socket reclaim (a leftover that refuses connections is removed), explicit mode/group. */
int srv_listener_open(const struct srv_listen_config *cfg, struct srv_listener *l,
                      struct te_error *err);
/* Closes the socket; removes the path unless it was socket-activated. */
void srv_listener_close(struct srv_listener *l);

/* ---- dispatch (dispatch.c, handlers.c) --------------------------------------------------- */

/* Everything a request needs besides its bytes. */
struct srv_ctx {
    struct p11_ctx *p11;
};

/* Decodes one request body, checks the peer, runs the handler and encodes the reply into
 * reply (reset first); logs one line for the request. Never fails: every problem becomes an
 * error reply. *close_after is set when the connection must be closed after the reply. */
void srv_dispatch(struct srv_ctx *ctx, const struct srv_peer *peer, const uint8_t *body,
                  size_t len, struct buf *reply, bool *close_after);

/* An error reply to something that was not a decodable request (framing, busy, timeout),
 * logged like a request with op=-. */
void srv_reply_error(const struct srv_peer *peer, const struct te_error *e, struct buf *reply);

/* ---- request log (reqlog.c) ------------------------------------------------------------- */

/* uri with every pin-value attribute replaced by "pin-value=<redacted>"; "-" for NULL/empty. */
void srv_uri_redact(const char *uri, char *out, size_t cap);
/* "op=sign peer_pid=.. peer_uid=.. uri=.. result=ok|<code> duration_ms=..": info when result is
 * TE_OK, warn otherwise. start_ms: te_monotonic_ms() when the request began. */
void srv_log_request(const char *op, const struct srv_peer *peer, const char *uri, int result,
                     int64_t start_ms);

/* ---- connections (conn.c, server.c) ------------------------------------------------------ */

struct srv_limits {
    unsigned max_clients;
    int frame_timeout_ms;        /* from a frame's first byte to its last */
    int idle_timeout_ms;         /* between frames */
};

/* Serves one connection until EOF, error, idle timeout or stop_fd becomes readable (checked
 * between frames); closes nothing. Used by the server's threads and by the fuzz target. */
void srv_conn_serve(struct srv_ctx *ctx, const struct srv_limits *lim, int fd,
                    const struct srv_peer *peer, int stop_fd);

/* The accept loop: one thread per connection up to max_clients, "busy" past it, until a
 * signal arrives on signal_fd. Returns 0 after a clean shutdown (every connection finished),
 * TE_ERR_TIMEOUT when some connection did not finish in time (do not p11_close then), or
 * another error when it could not start (no thread was started then). */
int srv_serve(struct srv_ctx *ctx, const struct srv_acl *acl, const struct srv_limits *lim,
              int listen_fd, int signal_fd);

#endif
