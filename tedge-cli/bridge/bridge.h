/* The built-in Cumulocity bridge of `tedge-mapper c8y`: its configuration read from tedge.toml and
 * the process that runs it (local broker <-> bridge <-> relay <-> Cumulocity) until a signal. */
#ifndef TEDGE_CLI_BRIDGE_H
#define TEDGE_CLI_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/err.h"
#include "tedge-cli/key/device_key.h"

/* Exit codes of `tedge-mapper c8y`. A configuration the bridge cannot work with (including a
 * wrong PIN, which must not be retried: tokens lock after a few) exits with BRIDGE_EXIT_CONFIG
 * (sysexits' EX_CONFIG), which the systemd unit does not restart. */
#define BRIDGE_EXIT_OK 0
#define BRIDGE_EXIT_ERROR 1
#define BRIDGE_EXIT_CONFIG 78

/* Environment knobs for the message buffer of each direction (docs/bridge.md); tedge.toml has no
 * key for them upstream. */
#define BRIDGE_ENV_QUEUE_MESSAGES "TEDGE_MAPPER_BRIDGE_QUEUE_MESSAGES"
#define BRIDGE_ENV_QUEUE_BYTES "TEDGE_MAPPER_BRIDGE_QUEUE_BYTES"

/* Everything the bridge needs, resolved from tedge.toml for one Cumulocity profile. */
struct bridge_config {
    char *profile;              /* NULL: the default connection */
    char *prefix;               /* c8y.bridge.topic_prefix */
    char *cloud_host;           /* c8y.mqtt */
    uint16_t cloud_port;
    char *ca_path;              /* c8y.root_cert_path */
    struct device_key_config *key; /* signer settings and certificate (device_key.h) */
    char *device_id;            /* Common Name of key->cert_path: the cloud client id */
    int keepalive_s;            /* c8y.bridge.keepalive_interval */
    char *local_host;           /* mqtt.client.host */
    uint16_t local_port;        /* mqtt.client.port */
    uint64_t initial_ms, max_ms, reset_window_ms; /* mqtt.bridge.reconnect_policy.* */
    size_t queue_messages, queue_bytes; /* bound of each direction's buffer */
    const char *runtime_dir;    /* where the relay socket goes; NULL = $XDG_RUNTIME_DIR or /tmp */
};

/* Reads the configuration of the c8y profile (NULL or "" = default). Every missing or invalid
 * value is an error that names the key and how to fix it (TE_ERR_CONFIG, or the code of the
 * config layer). */
int bridge_config_load(const struct cfg *c, const char *profile, struct bridge_config **out,
                       struct te_error *err);
void bridge_config_free(struct bridge_config *bc);

/* Runs the bridge until SIGTERM or SIGINT (blocked in every thread and taken with a signalfd),
 * then reports the bridge down, disconnects both sides and returns BRIDGE_EXIT_OK. A condition
 * that retrying cannot fix returns BRIDGE_EXIT_CONFIG with err set; an unexpected failure
 * BRIDGE_EXIT_ERROR. Must be called before any other thread exists. */
int bridge_run(const struct bridge_config *bc, struct te_error *err);

#endif
