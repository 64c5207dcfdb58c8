/* The bridge's settings from tedge.toml (see bridge.h): the c8y keys of a profile, the local
 * broker, the reconnect policy, the device key (device_key.h) and the device id from its cert. */
#include "tedge-cli/bridge/bridge.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/x509_name.h"
#include "tedge-cli/bridge/bridge_queue.h"

#define BRIDGE_KEEPALIVE_MIN_S 5       /* libmosquitto refuses less */
#define BRIDGE_KEEPALIVE_MAX_S 65535   /* MQTT's 16-bit keepalive field */

/* "c8y.<rest>" or "c8y.profiles.<profile>.<rest>". */
static void cloud_key(const char *profile, const char *rest, char *out, size_t size)
{
    if (profile != NULL)
        snprintf(out, size, "c8y.profiles.%s.%s", profile, rest);
    else
        snprintf(out, size, "c8y.%s", rest);
}

/* The Common Name of the certificate at path (the device id, as upstream derives it). */
static int cert_common_name(const char *path, char **out, struct te_error *err)
{
    int detail, ret = x509_file_cn(path, out, &detail);

    if (ret == TE_ERR_NOT_FOUND || ret == TE_ERR_PERMISSION)
        return te_error_set(err, TE_ERR_CONFIG,
                            "Cannot read the device certificate '%s': %s. Create it with `tedge "
                            "cert create` (or set c8y.device.cert_path / device.cert_path).", path,
                            strerror(detail));
    if (ret == TE_ERR_MALFORMED)
        return te_error_set(err, TE_ERR_CONFIG,
                            "The device certificate '%s' is not a PEM or DER certificate.", path);
    if (ret == TE_ERR_NOMEM)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    if (ret != TE_OK)
        return te_error_set(err, TE_ERR_CONFIG,
                            "The device certificate '%s' has no usable Common Name (the device "
                            "id).", path);
    return TE_OK;
}

/* A positive size from the environment variable name, else def. */
static int env_size(const char *name, size_t def, size_t *out, struct te_error *err)
{
    const char *v = getenv(name);
    char *end = NULL;
    unsigned long long n;

    *out = def;
    if (v == NULL || v[0] == '\0')
        return TE_OK;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n == 0 || n > SIZE_MAX || v[0] == '-')
        return te_error_set(err, TE_ERR_CONFIG,
                            "%s='%.32s' is not a positive number: unset it or give a count.",
                            name, v);
    *out = (size_t)n;
    return TE_OK;
}

static int load_cloud(struct bridge_config *bc, const struct cfg *c, struct te_error *err)
{
    char key[CFG_KEY_MAX], url_key[CFG_KEY_MAX];
    uint64_t ms = 0;
    int ret;

    cloud_key(bc->profile, "bridge.topic_prefix", key, sizeof(key));
    if ((ret = cfg_get_string(c, key, &bc->prefix, err)) != TE_OK)
        return ret;
    cloud_key(bc->profile, "mqtt", key, sizeof(key));
    cloud_key(bc->profile, "url", url_key, sizeof(url_key));
    ret = cfg_get_host_port(c, key, &bc->cloud_host, &bc->cloud_port, err);
    if (ret == TE_ERR_NOT_FOUND)
        return te_error_set(err, TE_ERR_CONFIG,
                            "The Cumulocity endpoint is not configured: set it with `tedge config "
                            "set %s <tenant>.cumulocity.com`.", url_key);
    if (ret != TE_OK)
        return ret;
    cloud_key(bc->profile, "root_cert_path", key, sizeof(key));
    if ((ret = cfg_get_string(c, key, &bc->ca_path, err)) != TE_OK)
        return ret;
    cloud_key(bc->profile, "bridge.keepalive_interval", key, sizeof(key));
    if ((ret = cfg_get_duration_ms(c, key, &ms, err)) != TE_OK)
        return ret;
    if (ms < BRIDGE_KEEPALIVE_MIN_S * 1000ULL) {
        log_warn("%s is below %d s: using %d s", key, BRIDGE_KEEPALIVE_MIN_S,
                 BRIDGE_KEEPALIVE_MIN_S);
        ms = BRIDGE_KEEPALIVE_MIN_S * 1000ULL;
    }
    if (ms > BRIDGE_KEEPALIVE_MAX_S * 1000ULL) {
        log_warn("%s is above %d s: using %d s", key, BRIDGE_KEEPALIVE_MAX_S,
                 BRIDGE_KEEPALIVE_MAX_S);
        ms = BRIDGE_KEEPALIVE_MAX_S * 1000ULL;
    }
    bc->keepalive_s = (int)(ms / 1000);
    return TE_OK;
}

static int load_local(struct bridge_config *bc, const struct cfg *c, struct te_error *err)
{
    unsigned long port = 0;
    bool built_in = true;
    int ret;

    if ((ret = cfg_get_bool(c, "mqtt.bridge.built_in", &built_in, err)) != TE_OK)
        return ret;
    if (!built_in)
        return te_error_set(err, TE_ERR_CONFIG,
                            "mqtt.bridge.built_in is false, but this tedge-mapper only has the "
                            "built-in bridge: run `tedge config set mqtt.bridge.built_in true`.");
    if ((ret = cfg_get_string(c, "mqtt.client.host", &bc->local_host, err)) != TE_OK ||
        (ret = cfg_get_uint(c, "mqtt.client.port", &port, err)) != TE_OK)
        return ret;
    if (port == 0 || port > 65535)
        return te_error_set(err, TE_ERR_CONFIG, "mqtt.client.port %lu is not a port.", port);
    bc->local_port = (uint16_t)port;
    if ((ret = cfg_get_duration_ms(c, "mqtt.bridge.reconnect_policy.initial_interval",
                                   &bc->initial_ms, err)) != TE_OK ||
        (ret = cfg_get_duration_ms(c, "mqtt.bridge.reconnect_policy.maximum_interval",
                                   &bc->max_ms, err)) != TE_OK ||
        (ret = cfg_get_duration_ms(c, "mqtt.bridge.reconnect_policy.reset_window",
                                   &bc->reset_window_ms, err)) != TE_OK)
        return ret;
    if ((ret = env_size(BRIDGE_ENV_QUEUE_MESSAGES, BRIDGE_QUEUE_DEFAULT_MAX_MESSAGES,
                        &bc->queue_messages, err)) != TE_OK ||
        (ret = env_size(BRIDGE_ENV_QUEUE_BYTES, BRIDGE_QUEUE_DEFAULT_MAX_BYTES, &bc->queue_bytes,
                        err)) != TE_OK)
        return ret;
    return TE_OK;
}

int bridge_config_load(const struct cfg *c, const char *profile, struct bridge_config **out,
                       struct te_error *err)
{
    struct bridge_config *bc;
    int ret;

    CHECK_ARG(c != NULL && out != NULL, TE_ERR_INVALID);
    *out = NULL;
    if ((bc = calloc(1, sizeof(*bc))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory reading the bridge configuration.");
    if (profile != NULL && profile[0] != '\0' && (bc->profile = strdup(profile)) == NULL) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory reading the bridge configuration.");
        goto exit;
    }
    /* the device key first: it validates the profile name for the key names built below */
    if ((ret = device_key_load(c, "c8y", bc->profile, &bc->key, err)) != TE_OK ||
        (ret = load_cloud(bc, c, err)) != TE_OK || (ret = load_local(bc, c, err)) != TE_OK ||
        (ret = cert_common_name(bc->key->cert_path, &bc->device_id, err)) != TE_OK)
        goto exit;
    log_debug("bridge config profile=%s prefix=%s cloud=%s:%u local=%s:%u device_id=%s",
              bc->profile ? bc->profile : "-", bc->prefix, bc->cloud_host, bc->cloud_port,
              bc->local_host, bc->local_port, bc->device_id);
    *out = bc;
    bc = NULL;
exit:
    bridge_config_free(bc);
    return ret;
}

void bridge_config_free(struct bridge_config *bc)
{
    if (bc == NULL)
        return;
    free(bc->profile);
    free(bc->prefix);
    free(bc->cloud_host);
    free(bc->ca_path);
    device_key_free(bc->key);
    free(bc->device_id);
    free(bc->local_host);
    free(bc);
}
