/* What the files of `tedge connect|reconnect|disconnect` share: the cloud target (profile, marker
 * file, mapper service), the step printer, the summary, and the cloud/broker checks. */
#ifndef TEDGE_CLI_CONNECT_INTERNAL_H
#define TEDGE_CLI_CONNECT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/config.h"
#include "common/err.h"
#include "tedge-cli/service/service_manager.h"

#define CONNECT_PATH_MAX 4096
#define CONNECT_BRIDGE_DIR "mosquitto-conf"   /* upstream's <config-dir>/mosquitto-conf */
/* What upstream writes into the bridge file when the built-in bridge is used: the file only
 * marks "connected" (tedge connect refuses a second time, disconnect removes it). */
#define CONNECT_MARKER_TEXT "# This file is left empty as the built-in bridge is enabled"
#define CONNECT_DEVICE_TYPE "thin-edge.io"    /* upstream's default device.type */
#define CONNECT_HEALTH_SERVICE "tedge-mapper-bridge-" /* + topic prefix: the bridge's health */
#define CONNECT_URL_MAX 512                   /* a host name or host:port from the config */
#define CONNECT_ID_MAX 256                    /* a device id (certificate CN) */

/* One cloud connection: Cumulocity, optionally a named profile. */
struct connect_target {
    char profile[CFG_PROFILE_MAX];              /* "" for the default connection */
    char mapper_service[SVC_SERVICE_NAME_MAX];  /* tedge-mapper-c8y or tedge-mapper-c8y@<p> */
    char marker_path[CONNECT_PATH_MAX];         /* <dir>/mosquitto-conf/c8y[@<p>]-bridge.conf */
    char disconnect_cmd[CFG_PROFILE_MAX + 48];  /* "tedge disconnect c8y[ --profile <p>]" */
};

/* Fills t for profile (NULL or "" = the default connection). TE_ERR_INVALID for a profile name
 * that is not a single lowercase token. */
int connect_target_init(struct connect_target *t, const char *config_dir, const char *profile,
                        struct te_error *err);
/* Whether program is installed next to this tedge binary (a build or install dir) or on PATH
 * (upstream: `which`). */
bool connect_program_installed(const char *name);
/* "c8y.url" or "c8y.profiles.<p>.url" for rest = "url". */
void connect_cloud_key(const struct connect_target *t, const char *rest, char *out, size_t size);

/*
 * Output (connect_steps.c). Like upstream, everything goes to stderr: "Title... ✓" or
 * "Title... ✗" followed by "error: <message>"; colours only on a terminal without NO_COLOR.
 */
struct connect_step {
    char title[256];
};

void connect_step_start(struct connect_step *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints ✓ when rc is TE_OK, else ✗ and "error: <err message>"; returns rc. */
int connect_step_finish(struct connect_step *s, int rc, const struct te_error *err);
void connect_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void connect_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A plain line on stderr. */
void connect_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* upstream's final error: "Error: failed to <what>\n\nCaused by:\n    <message>"; returns 1. */
int connect_fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bold key names and the like: colour helpers that are empty strings off a terminal. */
const char *connect_color(const char *ansi);

/*
 * The summary printed before anything happens (connect_summary.c).
 */
struct connect_summary {
    const char *title;           /* "Connecting to Cumulocity" */
    const char *device_id;
    const char *profile;         /* NULL or "" -> <none> */
    const char *cloud_host;      /* "host:port" of the MQTT endpoint */
    const char *cert_path;
    const char *cryptoki;        /* connect_cryptoki_status() */
    const char *service_manager; /* svc_manager_name() */
};

void connect_summary_print(const struct connect_summary *s);
/* "off", "module", "socket", or "<mode> (key: <uri without pin-value>)". */
void connect_cryptoki_status(enum cfg_cryptoki_mode mode, const char *key_uri, char *out,
                             size_t size);

/*
 * Cloud and local broker (connect_cloud.c, connect_verify.c, connect_jwt.c).
 */
struct signer;
struct tls_client;

/* Waits on cond (lock held) until it is signalled or ms have passed: the MQTT checks re-test
 * their state and deadline after every wake-up. */
void connect_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long ms);

/* The Common Name of the certificate at path into out (common/x509_name.h's rules).
 * TE_ERR_NOT_FOUND when the file is missing, TE_ERR_MALFORMED when it cannot be read, does not
 * parse or has no usable CN. */
int connect_cert_cn(const char *path, char *out, size_t size, struct te_error *err);

struct connect_cloud {
    const char *host;            /* c8y.mqtt host */
    uint16_t port;
    const char *ca_path;         /* c8y.root_cert_path */
    const char *cert_path;
    const char *device_id;
    struct signer *signer;       /* borrowed */
};

/* Creates the device: a direct MQTT connection through the relay with the device key, SmartREST
 * `100,<id>,thin-edge.io` on `s/us` at QoS 1, done at PUBACK. err explains every failure. */
int connect_create_device(const struct connect_cloud *c, struct te_error *err);

struct connect_local {
    const char *host;            /* mqtt.client.host */
    uint16_t port;               /* mqtt.client.port */
    const char *topic_prefix;    /* c8y.bridge.topic_prefix */
};

/* Waits until the local broker accepts TCP connections, up to timeout_ms. */
int connect_wait_for_broker(const struct connect_local *l, int timeout_ms, struct te_error *err);

/* One connection check through the local broker: `<prefix>/s/uat` (sent once the bridge reports
 * up, or after a grace period) -> `71,<jwt>` on `<prefix>/s/dat`. *jwt is malloc'd. */
int connect_check_once(const struct connect_local *l, char **jwt, struct te_error *err);

/* The `iss` of a JWT's payload (the tenant host) into out; TE_ERR_MALFORMED with upstream's
 * reasons otherwise. */
int connect_jwt_issuer(const char *jwt, char *out, size_t size, struct te_error *err);

/* Compares a JWT issuer (possibly a URL) with a configured host: equal hosts, case-insensitive. */
bool connect_host_matches(const char *issuer, const char *configured_host);

/*
 * Flows (connect_c8y.c, disconnect.c).
 */
enum connect_mode { CONNECT_NEW = 0, CONNECT_RECONNECT, CONNECT_TEST };

struct connect_opts {
    const char *config_dir;
    const char *profile;         /* NULL = default */
    enum connect_mode mode;
};

/* Returns the process exit code. */
int connect_c8y_run(const struct connect_opts *o);
/* in_reconnect: the first half of `tedge reconnect` (a heading, reconnect's error text). Returns the
 * exit code. */
int disconnect_c8y_run(const char *config_dir, const char *profile, bool in_reconnect);

#endif
