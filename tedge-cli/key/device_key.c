/* The device key of a cloud profile from tedge.toml (see device_key.h): key names per cloud and
 * profile, the fallback to the device.* keys, and what each key mode requires. */
#include "tedge-cli/key/device_key.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"

static const char *const clouds[] = {"c8y", "az", "aws"};

static bool known_cloud(const char *cloud)
{
    for (size_t i = 0; i < sizeof(clouds) / sizeof(clouds[0]); i++)
        if (strcmp(cloud, clouds[i]) == 0)
            return true;
    return false;
}

/* The same rule as the config model: letters, digits, '-' and '_'. */
static bool profile_ok(const char *p)
{
    size_t n = strlen(p);

    if (n == 0 || n >= CFG_PROFILE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '_')
            return false;
    return true;
}

/* Reads key into *out (NULL when it is not set). Any other failure is returned with err set. */
static int get_optional(const struct cfg *c, const char *key, char **out, struct te_error *err)
{
    int r = cfg_get_string(c, key, out, err);

    if (r == TE_ERR_NOT_FOUND) {
        te_error_clear(err);
        *out = NULL;
        return TE_OK;
    }
    return r;
}

/* <prefix><name> (the cloud's own key), else device.<name>. */
static int get_with_fallback(const struct device_key_config *k, const struct cfg *c,
                             const char *name, char **out, struct te_error *err)
{
    char key[CFG_KEY_MAX];
    int r;

    *out = NULL;
    if (strcmp(k->prefix, "device.") != 0) {
        snprintf(key, sizeof(key), "%s%s", k->prefix, name);
        if ((r = get_optional(c, key, out, err)) != TE_OK || *out != NULL)
            return r;
    }
    snprintf(key, sizeof(key), "device.%s", name);
    return get_optional(c, key, out, err);
}

/* A path key that has a default: unset means the key table lost its default. */
static int get_path(const struct device_key_config *k, const struct cfg *c, const char *name,
                    char **out, struct te_error *err)
{
    int r = get_with_fallback(k, c, name, out, err);

    if (r == TE_OK && *out == NULL)
        r = te_error_set(err, TE_ERR_CONFIG, "The configuration key '%s%s' is not set: set it with "
                         "`tedge config set %s%s <path>`.", k->prefix, name, k->prefix, name);
    return r;
}

static int load_module(struct device_key_config *k, const struct cfg *c, struct te_error *err)
{
    int r;

    if ((r = get_optional(c, "device.cryptoki.module_path", &k->module_path, err)) != TE_OK)
        return r;
    if (k->module_path == NULL)
        return te_error_set(err, TE_ERR_CONFIG,
                            "device.cryptoki.mode is 'module' but device.cryptoki.module_path is not "
                            "set: set it to the PKCS#11 module of the HSM, e.g. `tedge config set "
                            "device.cryptoki.module_path /usr/lib/softhsm/libsofthsm2.so`, or use "
                            "another device.cryptoki.mode.");
    if ((r = get_optional(c, "device.cryptoki.uri", &k->scope_uri, err)) != TE_OK ||
        (r = get_with_fallback(k, c, "key_uri", &k->key_uri, err)) != TE_OK ||
        (r = get_with_fallback(k, c, "key_pin", &k->pin, err)) != TE_OK)
        return r;
    return get_optional(c, "device.cryptoki.pin", &k->default_pin, err);
}

static int load_socket(struct device_key_config *k, const struct cfg *c, struct te_error *err)
{
    int r;

    if ((r = get_optional(c, "device.cryptoki.socket_path", &k->socket_path, err)) != TE_OK)
        return r;
    if (k->socket_path == NULL)
        return te_error_set(err, TE_ERR_CONFIG,
                            "device.cryptoki.mode is 'socket' but device.cryptoki.socket_path is not "
                            "set: set it to the socket of tedge-p11-server, e.g. `tedge config set "
                            "device.cryptoki.socket_path /run/tedge-p11-server/tedge-p11-server.sock`.");
    if ((r = get_with_fallback(k, c, "key_uri", &k->key_uri, err)) != TE_OK)
        return r;
    return get_with_fallback(k, c, "key_pin", &k->pin, err);
}

static void fill_signer(struct device_key_config *k)
{
    struct signer_config *s = &k->signer;

    memset(s, 0, sizeof(*s));
    switch (k->mode) {
    case CFG_CRYPTOKI_OFF:
        s->kind = SIGNER_FILE;
        s->key_path = k->key_path;
        break;
    case CFG_CRYPTOKI_MODULE:
        s->kind = SIGNER_MODULE;
        s->module_path = k->module_path;
        s->scope_uri = k->scope_uri;
        s->key_uri = k->key_uri;
        s->pin = k->pin;
        s->default_pin = k->default_pin;
        break;
    case CFG_CRYPTOKI_SOCKET:
        s->kind = SIGNER_SOCKET;
        s->socket_path = k->socket_path;
        s->key_uri = k->key_uri;
        s->pin = k->pin;
        break;
    }
}

int device_key_load(const struct cfg *c, const char *cloud, const char *profile,
                    struct device_key_config **out, struct te_error *err)
{
    struct device_key_config *k = NULL;
    int ret;

    CHECK_ARG(c != NULL && out != NULL, TE_ERR_INVALID);
    *out = NULL;
    if (profile != NULL && profile[0] == '\0')
        profile = NULL;
    if (cloud != NULL && !known_cloud(cloud))
        return te_error_set(err, TE_ERR_INVALID, "Unknown cloud '%.64s': use c8y, az or aws.",
                            cloud);
    if (profile != NULL && cloud == NULL)
        return te_error_set(err, TE_ERR_INVALID,
                            "A profile ('%.64s') needs a cloud: name the cloud (c8y, az or aws) "
                            "before --profile.", profile);
    if (profile != NULL && !profile_ok(profile))
        return te_error_set(err, TE_ERR_INVALID,
                            "Invalid profile name '%.64s': use at most %d letters, digits, '-' and "
                            "'_'.", profile, CFG_PROFILE_MAX - 1);
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory reading the device key settings.");
    if (cloud == NULL)
        snprintf(k->prefix, sizeof(k->prefix), "device.");
    else if (profile == NULL)
        snprintf(k->prefix, sizeof(k->prefix), "%s.device.", cloud);
    else
        snprintf(k->prefix, sizeof(k->prefix), "%s.profiles.%s.device.", cloud, profile);

    if ((ret = cfg_get_cryptoki_mode(c, &k->mode, err)) != TE_OK ||
        (ret = get_path(k, c, "cert_path", &k->cert_path, err)) != TE_OK ||
        (ret = get_path(k, c, "csr_path", &k->csr_path, err)) != TE_OK ||
        (ret = get_path(k, c, "key_path", &k->key_path, err)) != TE_OK)
        goto exit;
    if (k->mode == CFG_CRYPTOKI_MODULE && (ret = load_module(k, c, err)) != TE_OK)
        goto exit;
    if (k->mode == CFG_CRYPTOKI_SOCKET && (ret = load_socket(k, c, err)) != TE_OK)
        goto exit;
    fill_signer(k);
    log_debug("device key prefix=%s mode=%s", k->prefix, device_key_mode_name(k->mode));
    *out = k;
    k = NULL;
exit:
    device_key_free(k);
    return ret;
}

void device_key_free(struct device_key_config *k)
{
    if (k == NULL)
        return;
    free(k->cert_path);
    free(k->csr_path);
    free(k->key_path);
    free(k->module_path);
    free(k->scope_uri);
    te_free_secret(k->key_uri); /* a URI may carry pin-value */
    te_free_secret(k->pin);
    te_free_secret(k->default_pin);
    free(k->socket_path);
    te_wipe(k, sizeof(*k));
    free(k);
}

const char *device_key_mode_name(enum cfg_cryptoki_mode mode)
{
    switch (mode) {
    case CFG_CRYPTOKI_OFF: return "off";
    case CFG_CRYPTOKI_MODULE: return "module";
    case CFG_CRYPTOKI_SOCKET: return "socket";
    }
    return "unknown";
}

bool device_key_in_hsm(const struct device_key_config *k)
{
    return k->mode != CFG_CRYPTOKI_OFF;
}
