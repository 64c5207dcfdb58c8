/* tedge-p11-server entry point: options, signals, the listener, the PKCS#11 module, readiness
 * for systemd, the accept loop, and an orderly shutdown that removes the socket we created. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/p11.h"
#include "p11-server/server.h"

/* Signals go to a signalfd read by the accept loop; blocked in every thread we start. */
static int open_signalfd(struct te_error *err)
{
    sigset_t set;
    int fd;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
        (fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
        return te_error_set(err, TE_ERR_IO, "Cannot set up signal handling.");
    return fd;
}

static void log_configuration(const struct srv_options *o)
{
    char uri[P11_URI_MAX + 32];

    srv_uri_redact(o->uri, uri, sizeof(uri));
    log_info("Using cryptoki configuration module_path=%s (from %s) uri=%s (from %s) pin=%s "
             "(from %s)", o->module_path, o->module_path_from, uri, o->uri_from,
             o->pin != NULL ? "set" : "unset", o->pin_from);
    log_info("Limits max_clients=%u frame_timeout_ms=%d idle_timeout_ms=%d allow_uids=%zu "
             "allow_gids=%zu admin_uids=%zu admin_gids=%zu", o->max_clients, o->frame_timeout_ms,
             o->idle_timeout_ms, o->acl.allow_uid.n, o->acl.allow_gid.n, o->acl.admin_uid.n,
             o->acl.admin_gid.n);
}

int main(int argc, char **argv)
{
    struct srv_options opt;
    struct srv_listener lis = {.fd = -1, .lock_fd = -1};
    struct srv_listen_config lc;
    struct p11_config pc;
    struct srv_limits lim;
    struct srv_ctx ctx = {0};
    struct te_error err = {0};
    bool exit_now = false;
    const char *where;
    int sig_fd = -1, status = 1, r;

    log_init(SRV_NAME);
    signal(SIGPIPE, SIG_IGN);
    if (srv_options_load(argc, argv, &opt, &exit_now, &err) != TE_OK) {
        log_error("%s", te_error_message(&err));
        return 1;
    }
    if (exit_now) {
        srv_options_free(&opt);
        return 0;
    }
    log_info("Starting %s %s", SRV_NAME, TEDGE_VERSION);
    log_configuration(&opt);
    if ((sig_fd = open_signalfd(&err)) < 0)
        goto exit;

    lc = (struct srv_listen_config){
        .socket_path = opt.socket_path,
        .mode = opt.socket_mode,
        .has_group = opt.has_socket_group,
        .group = opt.socket_group,
    };
    if (srv_listener_open(&lc, &lis, &err) != TE_OK)
        goto exit;

    pc = (struct p11_config){
        .module_path = opt.module_path,
        .scope_uri = opt.uri,
        .default_pin = opt.pin,
        /* Requests come from peers: only our own --uri may name a PIN file (we would open any
         * path, as root, for any client), and their untried PINs must not burn token tries. */
        .requests_from_peers = true,
        .default_pin_name = "the PIN configured for " SRV_NAME
                            " (--pin/--pin-file/credential/device.cryptoki.pin)",
    };
    if (p11_open(&pc, &ctx.p11, &err) != TE_OK)
        goto exit;
    /* p11 keeps its own copy of the PIN */
    te_free_secret(opt.pin);
    opt.pin = NULL;

    where = lis.activated ? "the socket passed by systemd" : lis.path;
    log_info("Server listening on %s", where);
    sd_notifyf(0, "READY=1\nSTATUS=Serving %s with module %s", where, opt.module_path);

    lim = (struct srv_limits){
        .max_clients = opt.max_clients,
        .frame_timeout_ms = opt.frame_timeout_ms,
        .idle_timeout_ms = opt.idle_timeout_ms,
    };
    r = srv_serve(&ctx, &opt.acl, &lim, lis.fd, sig_fd);
    sd_notify(0, "STOPPING=1\nSTATUS=Shutting down");
    srv_listener_close(&lis);
    if (r == TE_ERR_TIMEOUT) {
        /* A thread is still inside the module: finalizing it, or running exit handlers under
         * it, could crash. Leave at once; the kernel releases the token's sessions. */
        log_error("%s stopped without finalizing the PKCS#11 module: some requests did not "
                  "finish", SRV_NAME);
        _exit(1);
    }
    if (r != TE_OK) {
        te_error_set(&err, r, "The server could not run: %s.", te_strerror(r));
        goto exit;
    }
    p11_close(ctx.p11);
    ctx.p11 = NULL;
    log_info("%s stopped", SRV_NAME);
    status = 0;
exit:
    if (status != 0) {
        log_error("%s", te_error_message(&err));
        sd_notifyf(0, "STATUS=Failed: %s", te_error_message(&err));
    }
    p11_close(ctx.p11);
    srv_listener_close(&lis);
    if (sig_fd >= 0)
        close(sig_fd);
    srv_options_free(&opt);
    return status;
}
