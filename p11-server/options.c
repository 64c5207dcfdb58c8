/* tedge-p11-server's options: command line, environment, [device.cryptoki] in tedge.toml and
 * defaults, in that order of precedence; PIN sources (flag, file, env, systemd credential). */
#include "p11-server/server.h"
#include "p11-server/srv_config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/fileutil.h"
#include "common/log.h"

#define ENV_SOCKET_PATH "TEDGE_DEVICE_CRYPTOKI_SOCKET_PATH"
#define ENV_MODULE_PATH "TEDGE_DEVICE_CRYPTOKI_MODULE_PATH"
#define ENV_PIN "TEDGE_DEVICE_CRYPTOKI_PIN"
#define ENV_URI "TEDGE_DEVICE_CRYPTOKI_URI"
#define ENV_CONFIG_DIR "TEDGE_CONFIG_DIR"
#define ENV_LOG_LEVEL "TEDGE_LOG_LEVEL"
#define CREDENTIAL_NAME "pin" /* LoadCredential=pin:... in the service unit */

enum opt_id {
    OPT_SOCKET_PATH = 256,
    OPT_MODULE_PATH,
    OPT_PIN,
    OPT_PIN_FILE,
    OPT_URI,
    OPT_LOG_LEVEL,
    OPT_CONFIG_DIR,
    OPT_MAX_CLIENTS,
    OPT_SOCKET_MODE,
    OPT_SOCKET_GROUP,
    OPT_ALLOW_UID,
    OPT_ALLOW_GID,
    OPT_ADMIN_UID,
    OPT_ADMIN_GID,
    OPT_FRAME_TIMEOUT,
    OPT_IDLE_TIMEOUT,
};

static const struct option long_options[] = {
    {"socket-path", required_argument, NULL, OPT_SOCKET_PATH},
    {"module-path", required_argument, NULL, OPT_MODULE_PATH},
    {"pin", required_argument, NULL, OPT_PIN},
    {"pin-file", required_argument, NULL, OPT_PIN_FILE},
    {"uri", required_argument, NULL, OPT_URI},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"config-dir", required_argument, NULL, OPT_CONFIG_DIR},
    {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
    {"socket-mode", required_argument, NULL, OPT_SOCKET_MODE},
    {"socket-group", required_argument, NULL, OPT_SOCKET_GROUP},
    {"allow-uid", required_argument, NULL, OPT_ALLOW_UID},
    {"allow-gid", required_argument, NULL, OPT_ALLOW_GID},
    {"admin-uid", required_argument, NULL, OPT_ADMIN_UID},
    {"admin-gid", required_argument, NULL, OPT_ADMIN_GID},
    {"frame-timeout", required_argument, NULL, OPT_FRAME_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char help_text[] =
    "thin-edge.io service for passing PKCS#11 cryptographic tokens\n"
    "\n"
    "Usage: " SRV_NAME " [OPTIONS]\n"
    "\n"
    "Options:\n"
    "      --socket-path <SOCKET_PATH>\n"
    "          A path where the UNIX socket listener will be created\n"
    "          [env: " ENV_SOCKET_PATH "] [config: device.cryptoki.socket_path]\n"
    "          [default: " SRV_DEFAULT_SOCKET_PATH "]\n"
    "      --module-path <MODULE_PATH>\n"
    "          The path to the PKCS#11 module (required)\n"
    "          [env: " ENV_MODULE_PATH "] [config: device.cryptoki.module_path]\n"
    "      --pin <PIN>\n"
    "          The PIN for the PKCS#11 token. Visible to other users in the process list:\n"
    "          prefer --pin-file, the environment or a systemd credential\n"
    "          [env: " ENV_PIN "] [config: device.cryptoki.pin]\n"
    "      --pin-file <PATH>\n"
    "          Read the PIN from this file (one line). Without --pin/--pin-file/env, the\n"
    "          systemd credential $CREDENTIALS_DIRECTORY/" CREDENTIAL_NAME " is used when present.\n"
    "          There is no default PIN\n"
    "      --uri <URI>\n"
    "          A URI of the token/object to use. See RFC #7512. Its attributes win over\n"
    "          those of a client's URI\n"
    "          [env: " ENV_URI "] [config: device.cryptoki.uri]\n"
    "      --log-level <LOG_LEVEL>\n"
    "          One of error/warn/info/debug/trace [env: " ENV_LOG_LEVEL "] [default: info]\n"
    "      --config-dir <CONFIG_DIR>\n"
    "          Where tedge.toml is [env: " ENV_CONFIG_DIR "] [default: " SRV_DEFAULT_CONFIG_DIR "]\n"
    "      --max-clients <N>\n"
    "          Connections served at once; more get a \"busy\" error [default: 64]\n"
    "      --socket-mode <MODE>\n"
    "          Octal permissions of the socket this server creates [default: 0660]\n"
    "      --socket-group <GROUP>\n"
    "          Group (name or gid) of the socket this server creates\n"
    "      --allow-uid <USER>, --allow-gid <GROUP>\n"
    "          Only these users/groups may use the socket (repeatable; root always may)\n"
    "          [default: everyone who can open the socket]\n"
    "      --admin-uid <USER>, --admin-gid <GROUP>\n"
    "          Who may use the token administration operations (repeatable) [default: root]\n"
    "      --frame-timeout <DURATION>\n"
    "          Deadline for reading one request, e.g. 500ms, 5s [default: 5s]\n"
    "      --idle-timeout <DURATION>\n"
    "          An idle connection is closed after this, e.g. 60s, 10m [default: 60s]\n"
    "  -h, --help\n"
    "          Print help\n"
    "  -V, --version\n"
    "          Print version\n"
    "\n"
    "Precedence: command line > environment (empty = unset) > tedge.toml > default.\n";

/* What the command line said, before the other sources are consulted. */
struct cli_values {
    const char *socket_path, *module_path, *uri, *config_dir, *log_level, *pin_file;
    char *pin;      /* a copy; the argv string is wiped */
};

static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : NULL;
}

static int dup_into(char **dst, const char *src, struct te_error *err)
{
    if ((*dst = strdup(src)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory while reading the options.");
    return TE_OK;
}

/* flag > env > tedge.toml > dflt (may be NULL). */
static int resolve(const char *flag_val, const char *flag, const char *env, struct srv_config *cfg,
                   const char *key, const char *dflt, char **out, const char **from,
                   struct te_error *err)
{
    const char *v;
    int r;

    if (flag_val != NULL && flag_val[0] != '\0') {
        *from = flag;
        return dup_into(out, flag_val, err);
    }
    if ((v = env_value(env)) != NULL) {
        *from = env;
        return dup_into(out, v, err);
    }
    if ((r = srv_config_get(cfg, key, out, err)) != TE_OK)
        return r;
    if (*out != NULL) {
        *from = "tedge.toml";
        return TE_OK;
    }
    *from = "default";
    return dflt != NULL ? dup_into(out, dflt, err) : TE_OK;
}

/* Reads a PIN file: one line, the trailing newline dropped; never logs the content. */
static int read_pin_file(const char *path, const char *what, char **out, struct te_error *err)
{
    struct te_error cause = {0};
    char *data = NULL;
    size_t len = 0;
    struct stat st;
    int r;

    if ((r = file_read_all(path, SRV_PIN_MAX + 2, &data, &len, &cause)) != TE_OK) {
        if (r == TE_ERR_TOO_LARGE)
            return te_error_set(err, TE_ERR_CONFIG, "The %s '%s' is longer than %d bytes; it must "
                                "hold only the PIN.", what, path, SRV_PIN_MAX);
        return te_error_set(err, TE_ERR_CONFIG, "Cannot read the %s: %s", what,
                            te_error_message(&cause));
    }
    if (len > 0 && data[len - 1] == '\n')
        data[--len] = '\0';
    if (len > 0 && data[len - 1] == '\r')
        data[--len] = '\0';
    if (len == 0 || memchr(data, '\n', len) != NULL || strlen(data) != len || len > SRV_PIN_MAX) {
        r = te_error_set(err, TE_ERR_CONFIG,
                         "The %s '%s' must contain the PIN on a single line (at most %d bytes).",
                         what, path, SRV_PIN_MAX);
        te_wipe(data, len);
        free(data);
        return r;
    }
    if (stat(path, &st) == 0 && (st.st_mode & S_IROTH) != 0)
        log_warn("The %s '%s' is readable by every user; restrict it with chmod 600.", what, path);
    *out = data;
    return TE_OK;
}

/* --pin/--pin-file > env > systemd credential > tedge.toml; no default. */
static int find_pin(struct cli_values *cli, struct srv_options *o, struct srv_config *cfg,
                    struct te_error *err)
{
    const char *v, *creds;
    char path[4096];
    struct stat st;
    int r;

    if (cli->pin != NULL && cli->pin_file != NULL)
        return te_error_set(err, TE_ERR_CONFIG,
                            "--pin and --pin-file cannot be used together; keep only --pin-file.");
    if (cli->pin != NULL) {
        log_warn("--pin on the command line is visible to other users in the process list; "
                 "use --pin-file or a systemd credential");
        o->pin = cli->pin;
        cli->pin = NULL;
        o->pin_from = "--pin";
        return TE_OK;
    }
    if (cli->pin_file != NULL) {
        o->pin_from = "--pin-file";
        return read_pin_file(cli->pin_file, "PIN file", &o->pin, err);
    }
    if ((v = env_value(ENV_PIN)) != NULL) {
        o->pin_from = ENV_PIN;
        if ((r = dup_into(&o->pin, v, err)) != TE_OK)
            return r;
        /* environ's strings are writable: blank it, so /proc/<pid>/environ no longer shows it */
        te_wipe((char *)v, strlen(v));
        return TE_OK;
    }
    if ((creds = env_value("CREDENTIALS_DIRECTORY")) != NULL) {
        snprintf(path, sizeof(path), "%s/%s", creds, CREDENTIAL_NAME);
        if (stat(path, &st) == 0) {
            o->pin_from = "systemd credential";
            return read_pin_file(path, "systemd credential", &o->pin, err);
        }
    }
    if ((r = srv_config_get(cfg, "device.cryptoki.pin", &o->pin, err)) != TE_OK)
        return r;
    o->pin_from = o->pin != NULL ? "tedge.toml" : "none";
    return TE_OK;
}

static int resolve_pin(struct cli_values *cli, struct srv_options *o, struct srv_config *cfg,
                       struct te_error *err)
{
    int r = find_pin(cli, o, cfg, err);

    if (r == TE_OK && o->pin != NULL && strlen(o->pin) > SRV_PIN_MAX)
        r = te_error_set(err, TE_ERR_CONFIG, "The PIN (from %s) is longer than %d bytes.",
                         o->pin_from, SRV_PIN_MAX);
    return r;
}

static int add_id(struct srv_idset *set, const char *flag, const char *arg, bool group,
                  struct te_error *err)
{
    unsigned id;
    int r = group ? srv_parse_gid(arg, &id) : srv_parse_uid(arg, &id);

    if (r != TE_OK)
        return te_error_set(err, TE_ERR_CONFIG, "%s '%s': no such %s on this system.", flag, arg,
                            group ? "group" : "user");
    if (set->n >= SRV_ID_LIST_MAX)
        return te_error_set(err, TE_ERR_CONFIG, "%s is given more than %d times; use a group "
                            "instead.", flag, SRV_ID_LIST_MAX);
    set->ids[set->n++] = id;
    return TE_OK;
}

static int bad_value(struct te_error *err, const char *flag, const char *arg, const char *want)
{
    return te_error_set(err, TE_ERR_CONFIG, "Invalid value '%s' for %s: expected %s.", arg, flag,
                        want);
}

/* One option that is not a plain string source; the string sources are kept in cli. */
static int apply_option(int c, const char *arg, struct cli_values *cli, struct srv_options *o,
                        struct te_error *err)
{
    unsigned long n;
    char *end;

    switch (c) {
    case OPT_SOCKET_PATH: cli->socket_path = arg; return TE_OK;
    case OPT_MODULE_PATH: cli->module_path = arg; return TE_OK;
    case OPT_URI: cli->uri = arg; return TE_OK;
    case OPT_CONFIG_DIR: cli->config_dir = arg; return TE_OK;
    case OPT_LOG_LEVEL: cli->log_level = arg; return TE_OK;
    case OPT_PIN_FILE: cli->pin_file = arg; return TE_OK;
    case OPT_MAX_CLIENTS:
        errno = 0;
        n = strtoul(arg, &end, 10);
        if (errno != 0 || *end != '\0' || arg[0] < '0' || arg[0] > '9' || n == 0 ||
            n > SRV_MAX_CLIENTS_LIMIT)
            return bad_value(err, "--max-clients", arg, "a number from 1 to 4096");
        o->max_clients = (unsigned)n;
        return TE_OK;
    case OPT_SOCKET_MODE:
        if (srv_parse_mode(arg, &o->socket_mode) != TE_OK)
            return bad_value(err, "--socket-mode", arg, "an octal mode such as 0660");
        return TE_OK;
    case OPT_SOCKET_GROUP: {
        unsigned gid;
        if (srv_parse_gid(arg, &gid) != TE_OK)
            return te_error_set(err, TE_ERR_CONFIG, "--socket-group '%s': no such group on this "
                                "system.", arg);
        o->has_socket_group = true;
        o->socket_group = (gid_t)gid;
        return TE_OK;
    }
    case OPT_ALLOW_UID: return add_id(&o->acl.allow_uid, "--allow-uid", arg, false, err);
    case OPT_ALLOW_GID: return add_id(&o->acl.allow_gid, "--allow-gid", arg, true, err);
    case OPT_ADMIN_UID: return add_id(&o->acl.admin_uid, "--admin-uid", arg, false, err);
    case OPT_ADMIN_GID: return add_id(&o->acl.admin_gid, "--admin-gid", arg, true, err);
    case OPT_FRAME_TIMEOUT:
        if (srv_parse_duration_ms(arg, &o->frame_timeout_ms) != TE_OK)
            return bad_value(err, "--frame-timeout", arg, "a duration such as 500ms or 5s");
        return TE_OK;
    case OPT_IDLE_TIMEOUT:
        if (srv_parse_duration_ms(arg, &o->idle_timeout_ms) != TE_OK)
            return bad_value(err, "--idle-timeout", arg, "a duration such as 60s or 10m");
        return TE_OK;
    default:
        return te_error_set(err, TE_ERR_INTERNAL, "Unhandled option %d.", c);
    }
}

static int parse_argv(int argc, char **argv, struct cli_values *cli, struct srv_options *o,
                      bool *exit_now, struct te_error *err)
{
    int c, r;

    opterr = 0;
    optind = 0; /* 0, not 1: glibc then also resets its GNU extensions (tests parse twice) */
    while ((c = getopt_long(argc, argv, ":hV", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(help_text, stdout);
            *exit_now = true;
            return TE_OK;
        case 'V':
            printf("%s %s\n", SRV_NAME, TEDGE_VERSION);
            *exit_now = true;
            return TE_OK;
        case ':':
            return te_error_set(err, TE_ERR_CONFIG, "The option '%s' needs a value. Run '%s "
                                "--help' for the options.", argv[optind - 1], SRV_NAME);
        case '?':
            return te_error_set(err, TE_ERR_CONFIG, "Unknown option '%s'. Run '%s --help' for the "
                                "options.", argv[optind - 1], SRV_NAME);
        case OPT_PIN:
            te_free_secret(cli->pin);
            if ((cli->pin = strdup(optarg)) == NULL)
                return te_error_set(err, TE_ERR_NOMEM, "Out of memory while reading the options.");
            /* Hide it from /proc/<pid>/cmdline from now on (it was visible until here). */
            te_wipe(optarg, strlen(optarg));
            break;
        default:
            if ((r = apply_option(c, optarg, cli, o, err)) != TE_OK)
                return r;
        }
    }
    if (optind < argc)
        return te_error_set(err, TE_ERR_CONFIG, "Unexpected argument '%s'. Run '%s --help' for "
                            "the options.", argv[optind], SRV_NAME);
    return TE_OK;
}

static int resolve_log_level(const struct cli_values *cli, struct srv_options *o,
                             struct te_error *err)
{
    const char *v = cli->log_level, *from = "--log-level";

    if (v == NULL || v[0] == '\0') {
        v = env_value(ENV_LOG_LEVEL);
        from = ENV_LOG_LEVEL;
    }
    if (v == NULL)
        return TE_OK;
    if ((o->log_level = log_level_from_name(v)) < 0)
        return te_error_set(err, TE_ERR_CONFIG, "Invalid log level '%s' (%s): expected one of "
                            "error, warn, info, debug, trace.", v, from);
    return TE_OK;
}

int srv_options_load(int argc, char **argv, struct srv_options *o, bool *exit_now,
                     struct te_error *err)
{
    struct cli_values cli = {0};
    struct srv_config *cfg = NULL;
    const char *config_from;
    int r;

    memset(o, 0, sizeof(*o));
    *exit_now = false;
    o->log_level = LOG_LVL_INFO;
    o->max_clients = SRV_DEFAULT_MAX_CLIENTS;
    o->socket_mode = SRV_DEFAULT_SOCKET_MODE;
    o->frame_timeout_ms = SRV_DEFAULT_FRAME_TIMEOUT_MS;
    o->idle_timeout_ms = SRV_DEFAULT_IDLE_TIMEOUT_MS;

    if ((r = parse_argv(argc, argv, &cli, o, exit_now, err)) != TE_OK || *exit_now)
        goto exit;
    if ((r = resolve_log_level(&cli, o, err)) != TE_OK)
        goto exit;
    log_set_level((enum log_level)o->log_level);

    if (cli.config_dir != NULL && cli.config_dir[0] != '\0')
        r = dup_into(&o->config_dir, cli.config_dir, err), config_from = "--config-dir";
    else if (env_value(ENV_CONFIG_DIR) != NULL)
        r = dup_into(&o->config_dir, env_value(ENV_CONFIG_DIR), err), config_from = ENV_CONFIG_DIR;
    else
        r = dup_into(&o->config_dir, SRV_DEFAULT_CONFIG_DIR, err), config_from = "default";
    if (r != TE_OK)
        goto exit;
    log_debug("config dir %s (from %s)", o->config_dir, config_from);
    if ((r = srv_config_new(o->config_dir, &cfg, err)) != TE_OK)
        goto exit;

    if ((r = resolve(cli.module_path, "--module-path", ENV_MODULE_PATH, cfg,
                     "device.cryptoki.module_path", NULL, &o->module_path, &o->module_path_from,
                     err)) != TE_OK)
        goto exit;
    if (o->module_path == NULL) {
        r = te_error_set(err, TE_ERR_CONFIG,
                         "No PKCS#11 module is configured. Pass --module-path, set %s, or set "
                         "device.cryptoki.module_path in %s%s.", ENV_MODULE_PATH,
                         srv_config_path(cfg), srv_config_exists(cfg) ? "" : " (which does not "
                         "exist)");
        goto exit;
    }
    if ((r = resolve(cli.socket_path, "--socket-path", ENV_SOCKET_PATH, cfg,
                     "device.cryptoki.socket_path", SRV_DEFAULT_SOCKET_PATH, &o->socket_path,
                     &o->socket_path_from, err)) != TE_OK)
        goto exit;
    if ((r = resolve(cli.uri, "--uri", ENV_URI, cfg, "device.cryptoki.uri", NULL, &o->uri,
                     &o->uri_from, err)) != TE_OK)
        goto exit;
    if (o->uri == NULL)
        o->uri_from = "none";
    r = resolve_pin(&cli, o, cfg, err);
exit:
    te_free_secret(cli.pin);
    srv_config_free(cfg);
    if (r != TE_OK)
        srv_options_free(o);
    return r;
}

void srv_options_free(struct srv_options *o)
{
    if (o == NULL)
        return;
    free(o->socket_path);
    free(o->module_path);
    free(o->uri);
    free(o->config_dir);
    te_free_secret(o->pin);
    memset(o, 0, sizeof(*o));
}
