/* The `tedge connect c8y` flow (also `--test` and the connect half of reconnect): summary, device
 * creation with the device key, bridge marker, mosquitto, mapper, connection and tenant checks. */
#include "tedge-cli/commands/connect_internal.h"

#include "common/config.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "tedge-cli/key/device_key.h"
#include "tedge-cli/key/signer.h"

#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MOSQUITTO_LISTEN_TIMEOUT_MS 20000 /* upstream's MOSQUITTO_RESTART_TIMEOUT_SECONDS */
#define CHECK_ATTEMPTS 5                  /* connection checks before giving up */
#define CHECK_BACKOFF_FIRST_MS 1000       /* pause after the first failed check, then doubled */
#define MARKER_MODE 0644                  /* upstream's mode for the bridge file */
#define BRIDGE_DIR_MODE 0755

/* Everything the flow reads from the configuration, resolved once. */
struct connect_ctx {
    const struct connect_opts *o;
    struct connect_target target;
    struct cfg *cfg;
    struct svc_manager *svc;
    struct device_key_config *key;
    char *url;                 /* c8y.url (may be NULL when only c8y.mqtt is set) */
    char *mqtt_host;           /* c8y.mqtt */
    uint16_t mqtt_port;
    char *root_cert;           /* c8y.root_cert_path */
    char *topic_prefix;        /* c8y.bridge.topic_prefix */
    char *local_host;          /* mqtt.client.host */
    uint16_t local_port;
    char device_id[CONNECT_ID_MAX];
    char cloud_host[CONNECT_URL_MAX];
    char cryptoki[1200];
};

static const char *what_failed(const struct connect_opts *o)
{
    return o->mode == CONNECT_TEST ? "test connection to Cumulocity cloud."
           : o->mode == CONNECT_RECONNECT ? "reconnect to Cumulocity cloud."
                                          : "connect to Cumulocity cloud.";
}

static void ctx_free(struct connect_ctx *x)
{
    device_key_free(x->key);
    svc_manager_free(x->svc);
    cfg_free(x->cfg);
    free(x->url);
    free(x->mqtt_host);
    free(x->root_cert);
    free(x->topic_prefix);
    free(x->local_host);
}

/* Reads a cloud key (c8y.<rest> or c8y.profiles.<p>.<rest>). */
static int cloud_string(struct connect_ctx *x, const char *rest, char **out, struct te_error *err)
{
    char key[CFG_KEY_MAX];
    connect_cloud_key(&x->target, rest, key, sizeof(key));
    return cfg_get_string(x->cfg, key, out, err);
}

static int load_settings(struct connect_ctx *x, struct te_error *err)
{
    char key[CFG_KEY_MAX];
    unsigned long port = 0;
    bool built_in = true;
    int r;

    if ((r = cfg_get_bool(x->cfg, "mqtt.bridge.built_in", &built_in, err)) != TE_OK)
        return r;
    if (!built_in)
        return te_error_set(err, TE_ERR_UNSUPPORTED,
                            "mqtt.bridge.built_in is false, but this tedge only has the built-in "
                            "bridge (a PKCS#11 key cannot be used by a mosquitto bridge). Run "
                            "`tedge config set mqtt.bridge.built_in true` and try again.");
    r = cloud_string(x, "url", &x->url, err);
    if (r != TE_OK && r != TE_ERR_NOT_FOUND)
        return r;
    connect_cloud_key(&x->target, "mqtt", key, sizeof(key));
    r = cfg_get_host_port(x->cfg, key, &x->mqtt_host, &x->mqtt_port, err);
    if (r == TE_ERR_NOT_FOUND) {
        connect_cloud_key(&x->target, "url", key, sizeof(key));
        return te_error_set(err, TE_ERR_CONFIG, "Required configuration item is not provided "
                            "'%s', run 'tedge config set %s <value>' to add it to config.",
                            key, key);
    }
    if (r != TE_OK)
        return r;
    if ((r = cloud_string(x, "root_cert_path", &x->root_cert, err)) != TE_OK ||
        (r = cloud_string(x, "bridge.topic_prefix", &x->topic_prefix, err)) != TE_OK ||
        (r = cfg_get_string(x->cfg, "mqtt.client.host", &x->local_host, err)) != TE_OK ||
        (r = cfg_get_uint(x->cfg, "mqtt.client.port", &port, err)) != TE_OK)
        return r;
    x->local_port = (uint16_t)port;
    if ((r = device_key_load(x->cfg, "c8y", x->target.profile, &x->key, err)) != TE_OK)
        return r;
    r = connect_cert_cn(x->key->cert_path, x->device_id, sizeof(x->device_id), err);
    if (r == TE_ERR_NOT_FOUND)
        return te_error_set(err, TE_ERR_NOT_FOUND,
                            "No device certificate found at '%s' (%scert_path). Run `tedge cert "
                            "create --device-id <id>` to create one, or install the certificate "
                            "issued for this device there, and try again.", x->key->cert_path,
                            x->key->prefix);
    if (r != TE_OK)
        return r;
    snprintf(x->cloud_host, sizeof(x->cloud_host), strchr(x->mqtt_host, ':') ? "[%s]:%u" : "%s:%u",
             x->mqtt_host, x->mqtt_port);
    connect_cryptoki_status(x->key->mode, x->key->key_uri, x->cryptoki, sizeof(x->cryptoki));
    return TE_OK;
}

static void remove_marker_after_failure(const struct connect_ctx *x)
{
    struct connect_step s;
    struct te_error err = {0};
    int r = TE_OK;

    connect_step_start(&s, "Cleaning up %s due to failure", x->target.marker_path);
    if (unlink(x->target.marker_path) != 0 && errno != ENOENT)
        r = te_error_set(&err, TE_ERR_IO, "Cannot remove '%s': %s.", x->target.marker_path,
                         strerror(errno));
    connect_step_finish(&s, r, &err);
}

static int write_marker(const struct connect_ctx *x, struct te_error *err)
{
    char dir[CONNECT_PATH_MAX];
    int r;

    path_dirname(x->target.marker_path, dir, sizeof(dir));
    if ((r = mkdir_p(dir, BRIDGE_DIR_MODE, err)) != TE_OK)
        return r;
    return file_write_atomic(x->target.marker_path, CONNECT_MARKER_TEXT "\n",
                             strlen(CONNECT_MARKER_TEXT "\n"), MARKER_MODE, err);
}

/* Adds what to do next to the device key's own errors (the signer says what failed). */
static void explain_key_error(const struct connect_ctx *x, struct te_error *err)
{
    char why[TE_ERROR_MSG_MAX];
    const char *msg = te_error_message(err);

    snprintf(why, sizeof(why), "%s", msg);
    switch (err->code) {
    case TE_ERR_PIN_INCORRECT:
    case TE_ERR_PIN_REQUIRED:
        te_error_set(err, err->code, "%s Set the key's PIN with `tedge config set %skey_pin "
                     "<PIN>` (or the pin-value of %skey_uri%s) and try again.", why,
                     x->key->prefix, x->key->prefix,
                     x->key->mode == CFG_CRYPTOKI_SOCKET ? ", or tedge-p11-server's PIN" : "");
        break;
    case TE_ERR_PIN_LOCKED:
        te_error_set(err, err->code, "%s Unlock the token with its security officer PIN, then "
                     "try again.", why);
        break;
    case TE_ERR_CONNECT:
    case TE_ERR_CLOSED:
        if (x->key->mode == CFG_CRYPTOKI_SOCKET && strstr(why, "tedge-p11-server") != NULL &&
            strstr(why, "systemctl") == NULL)
            te_error_set(err, err->code, "%s Start tedge-p11-server (e.g. `systemctl start "
                         "tedge-p11-server.socket`) or fix device.cryptoki.socket_path (%s), "
                         "then try again.", why, x->key->socket_path != NULL ?
                         x->key->socket_path : "not set");
        break;
    default:
        break;
    }
}

static int create_device(struct connect_ctx *x)
{
    struct connect_step s;
    struct te_error err = {0};
    struct signer *signer = NULL;
    int r;

    connect_step_start(&s, "Creating device in Cumulocity cloud");
    if ((r = signer_open(&x->key->signer, &signer, &err)) == TE_OK) {
        struct connect_cloud c = {
            .host = x->mqtt_host, .port = x->mqtt_port, .ca_path = x->root_cert,
            .cert_path = x->key->cert_path, .device_id = x->device_id, .signer = signer,
        };
        r = connect_create_device(&c, &err);
    }
    signer_close(signer);
    if (r != TE_OK)
        explain_key_error(x, &err);
    return connect_step_finish(&s, r, &err);
}

/* "Restarting mosquitto", then waits until it listens and enables it (upstream's order). */
static int restart_mosquitto(struct connect_ctx *x)
{
    struct connect_local l = {x->local_host, x->local_port, x->topic_prefix};
    struct connect_step s;
    struct te_error err = {0};
    int r;

    connect_step_start(&s, "Restarting mosquitto");
    if ((r = svc_manager_run(x->svc, SVC_STOP, SVC_MOSQUITTO, &err)) == TE_OK)
        r = svc_manager_run(x->svc, SVC_RESTART, SVC_MOSQUITTO, &err);
    if (connect_step_finish(&s, r, &err) != TE_OK) {
        remove_marker_after_failure(x);
        return r;
    }
    connect_step_start(&s, "Waiting for mosquitto to be listening for connections");
    r = connect_wait_for_broker(&l, MOSQUITTO_LISTEN_TIMEOUT_MS, &err);
    if (connect_step_finish(&s, r, &err) != TE_OK)
        return r;
    if ((r = svc_manager_run(x->svc, SVC_ENABLE, SVC_MOSQUITTO, &err)) != TE_OK) {
        connect_say("%serror:%s %s", connect_color("\033[1;31m"), connect_color(NULL),
                    te_error_message(&err));
        remove_marker_after_failure(x);
    }
    return r;
}

static void start_mapper(struct connect_ctx *x)
{
    struct connect_step s;
    struct te_error err = {0};

    if (!connect_program_installed("tedge-mapper")) {
        connect_warning("tedge-mapper is not installed.");
        return;
    }
    connect_step_start(&s, "Enabling %s", x->target.mapper_service);
    connect_step_finish(&s, svc_manager_start_and_enable(x->svc, x->target.mapper_service, &err),
                        &err);
}

/* "Verifying device is connected to cloud", up to attempts times with backoff.
 * *jwt receives the token of the successful check. */
static int verify_connection(struct connect_ctx *x, int attempts, char **jwt,
                             struct te_error *last)
{
    struct connect_local l = {x->local_host, x->local_port, x->topic_prefix};
    struct connect_step s;
    long pause_ms = CHECK_BACKOFF_FIRST_MS;
    int r = TE_OK;

    for (int attempt = 1; attempt <= attempts; attempt++) {
        te_error_clear(last);
        connect_step_start(&s, "Verifying device is connected to cloud");
        r = connect_check_once(&l, jwt, last);
        if (r != TE_OK) {
            char why[TE_ERROR_MSG_MAX];
            snprintf(why, sizeof(why), "%s", te_error_message(last));
            te_error_set(last, r, "Failed to verify device is connected to Cumulocity: %s", why);
        }
        if (connect_step_finish(&s, r, last) == TE_OK)
            return TE_OK;
        if (attempt == attempts)
            break;
        connect_say("Connection test failed, attempt %d of %d\n", attempt, attempts);
        nanosleep(&(struct timespec){pause_ms / 1000, (pause_ms % 1000) * 1000000L}, NULL);
        pause_ms *= 2;
    }
    return r;
}

/* "Checking Cumulocity is connected to intended tenant": the JWT's iss against c8y.url/mqtt.
 * A mismatch is a warning (upstream); returns false then. */
static bool check_tenant(const struct connect_ctx *x, const char *jwt)
{
    char iss[CONNECT_URL_MAX];
    struct connect_step s;
    struct te_error err = {0};
    int r;

    connect_step_start(&s, "Checking Cumulocity is connected to intended tenant");
    r = connect_jwt_issuer(jwt, iss, sizeof(iss), &err);
    if (connect_step_finish(&s, r, &err) != TE_OK)
        return false;
    if (connect_host_matches(iss, x->mqtt_host) || connect_host_matches(iss, x->url))
        return true;
    connect_warning("The device is connected to %s, but the configured URL is (mqtt=%s, "
                    "http=%s).\n    To connect the device to the intended tenant, remove the "
                    "device certificate from %s, and then run `tedge reconnect c8y`", iss,
                    x->cloud_host, x->url != NULL ? x->url : "<not set>", iss);
    return false;
}

static void enable_agent(struct connect_ctx *x)
{
    struct connect_step s;
    struct te_error err = {0};

    if (!connect_program_installed(SVC_AGENT)) {
        connect_info("Software management is not installed. So, skipping enabling related "
                     "components.");
        return;
    }
    connect_step_start(&s, "Enabling %s", SVC_AGENT);
    connect_step_finish(&s, svc_manager_start_and_enable(x->svc, SVC_AGENT, &err), &err);
}

static int connection_check_failed(const struct connect_ctx *x, const struct te_error *last)
{
    connect_warning("Bridge has been configured, but Cumulocity connection check failed.");
    return connect_fail(what_failed(x->o),
                        "Connection check failed. %s\n    The bridge is configured and %s was "
                        "started, but no reply came from Cumulocity through it. Check the "
                        "mapper's log (e.g. `journalctl -u %s`) and the cloud connection, then "
                        "run `tedge connect c8y --test` or `tedge reconnect c8y`.",
                        te_error_message(last), x->target.mapper_service,
                        x->target.mapper_service);
}

static int run_test(struct connect_ctx *x)
{
    struct te_error last = {0};
    char *jwt = NULL;

    if (access(x->target.marker_path, F_OK) != 0)
        return connect_fail(what_failed(x->o), "Device is not connected to Cumulocity cloud. "
                            "Run `tedge connect c8y%s%s` first.", x->target.profile[0] ?
                            " --profile " : "", x->target.profile);
    /* upstream's --test checks once: the connection is supposed to be up already */
    if (verify_connection(x, 1, &jwt, &last) != TE_OK)
        return connect_fail(what_failed(x->o), "Connection check failed. %s\n    Check that "
                            "%s runs (and its log), then try again or run `tedge reconnect c8y`.",
                            te_error_message(&last), x->target.mapper_service);
    /* a tenant mismatch was a warning: then the check did not succeed, but nothing failed */
    if (check_tenant(x, jwt))
        connect_say("Connection check to Cumulocity cloud is successful.");
    free(jwt);
    return 0;
}

static int run_connect(struct connect_ctx *x)
{
    struct te_error err = {0}, last = {0};
    char *jwt = NULL;
    int operational;

    if (access(x->target.marker_path, F_OK) == 0)
        return connect_fail(what_failed(x->o), "Connection is already established. To remove "
                            "the existing connection, run `%s` and try again.",
                            x->target.disconnect_cmd);
    operational = svc_manager_check_operational(x->svc, &err);
    if (operational != TE_OK)
        connect_warning("'%s' service manager is not available on the system.",
                        svc_manager_name(x->svc));
    if (create_device(x) != TE_OK)
        return 1;
    if (write_marker(x, &err) != TE_OK)
        return connect_fail(what_failed(x->o), "%s", te_error_message(&err));
    if (operational != TE_OK) {
        connect_say("'tedge connect' configured the necessary tedge components, but you will "
                    "have to start the required services on your own.");
        connect_say("Start/restart mosquitto and other thin edge components.");
        connect_say("thin-edge.io works seamlessly with 'systemd'.\n");
        return 0;
    }
    if (restart_mosquitto(x) != TE_OK)
        return 1;
    start_mapper(x);
    if (verify_connection(x, CHECK_ATTEMPTS, &jwt, &last) != TE_OK) {
        enable_agent(x);
        return connection_check_failed(x, &last);
    }
    check_tenant(x, jwt);
    enable_agent(x);
    free(jwt);
    return 0;
}

int connect_c8y_run(const struct connect_opts *o)
{
    struct connect_ctx x = {.o = o};
    struct connect_summary sum;
    struct te_error err = {0};
    const char *title;
    int code;

    mosquitto_lib_init();
    if (connect_target_init(&x.target, o->config_dir, o->profile, &err) != TE_OK ||
        cfg_load(o->config_dir, &x.cfg, &err) != TE_OK ||
        svc_manager_load(o->config_dir, &x.svc, &err) != TE_OK ||
        load_settings(&x, &err) != TE_OK) {
        code = connect_fail(what_failed(o), "%s", te_error_message(&err));
        goto exit;
    }
    title = o->mode == CONNECT_TEST ? "Testing connection to Cumulocity"
            : o->mode == CONNECT_RECONNECT ? "Reconnecting to Cumulocity"
                                           : "Connecting to Cumulocity";
    sum = (struct connect_summary){
        .title = title, .device_id = x.device_id, .profile = x.target.profile,
        .cloud_host = x.cloud_host, .cert_path = x.key->cert_path, .cryptoki = x.cryptoki,
        .service_manager = svc_manager_name(x.svc),
    };
    connect_summary_print(&sum);
    code = o->mode == CONNECT_TEST ? run_test(&x) : run_connect(&x);
exit:
    ctx_free(&x);
    mosquitto_lib_cleanup();
    return code;
}
