/* The table of tedge.toml keys (names, types, defaults, docs and examples: the single source of
 * truth), key resolution including cloud profiles, "did you mean" and TEDGE_* variable names. */
#include "common/config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char *const cryptoki_modes[] = {"off", "module", "socket", NULL};

/* Doc texts shared by the device keys of every cloud (upstream thin-edge.io's wording). */
#define DOC_KEY_PATH "Path where the device's private key is stored"
#define DOC_CERT_PATH "Path where the device's certificate is stored"
#define DOC_CSR_PATH "Path where the device's certificate signing request is stored"
#define DOC_KEY_URI "A PKCS#11 URI of the private key. See RFC #7512."
#define DOC_KEY_PIN                                                                           \
    "User PIN value for logging into the PKCS#11 token provided by the consumer. This "       \
    "differs from cryptoki.pin in that cryptoki.pin is used by PKCS#11 provider, e.g. "       \
    "tedge-p11-server as a default PIN for all tokens, but device.key_pin is the PIN "        \
    "provided by the consumer (tedge) with a given `key_uri`. In practice, this can be used " \
    "to define separate keys and separate PINs for different connection profiles."
#define NOTE_ROOT_CERT "The value can be a directory path as well as the path of the certificate file."
#define EX_KEY_PATH "/etc/tedge/device-certs/tedge-private-key.pem"
#define EX_CERT_PATH "/etc/tedge/device-certs/tedge-certificate.pem"
#define EX_CSR_PATH "/etc/tedge/device-certs/tedge.csr"
#define EX_KEY_URI "pkcs11:token=my-pkcs11-token;object=my-key"

/* A cloud's device.* keys fall back to the global device.* keys. */
#define CLOUD_DEVICE_KEYS(cloud)                                                              \
    {cloud ".device.key_path", CFG_ABS_PATH, CFG_F_CLOUD, CFG_DEF_KEY, "device.key_path", 0,   \
     NULL, DOC_KEY_PATH, NULL, {EX_KEY_PATH, NULL}},                                          \
    {cloud ".device.cert_path", CFG_ABS_PATH, CFG_F_CLOUD, CFG_DEF_KEY, "device.cert_path", 0, \
     NULL, DOC_CERT_PATH, NULL, {EX_CERT_PATH, NULL}},                                        \
    {cloud ".device.csr_path", CFG_ABS_PATH, CFG_F_CLOUD, CFG_DEF_KEY, "device.csr_path", 0,   \
     NULL, DOC_CSR_PATH, NULL, {EX_CSR_PATH, NULL}},                                          \
    {cloud ".device.key_uri", CFG_P11_URI, CFG_F_CLOUD, CFG_DEF_KEY, "device.key_uri", 0,      \
     NULL, DOC_KEY_URI, NULL, {EX_KEY_URI, NULL}},                                            \
    {cloud ".device.key_pin", CFG_STRING, CFG_F_CLOUD | CFG_F_SECRET, CFG_DEF_KEY,             \
     "device.key_pin", 0, NULL, DOC_KEY_PIN, NULL, {"123456", "my-pin", NULL}}

static const struct cfg_key_def keys[] = {
    {"device.id", CFG_STRING, CFG_F_READONLY, CFG_DEF_CERT_CN, NULL, 0, NULL,
     "Identifier of the device within the fleet. It must be globally unique and is derived "
     "from the device certificate.", NULL,
     {"Raspberrypi-4d18303a-6d3a-11eb-b1a6-175f6bb72665", NULL}},
    {"device.key_path", CFG_ABS_PATH, 0, CFG_DEF_IN_DIR, "device-certs/tedge-private-key.pem",
     0, NULL, DOC_KEY_PATH, NULL, {EX_KEY_PATH, NULL}},
    {"device.cert_path", CFG_ABS_PATH, 0, CFG_DEF_IN_DIR, "device-certs/tedge-certificate.pem",
     0, NULL, DOC_CERT_PATH, NULL, {EX_CERT_PATH, NULL}},
    {"device.csr_path", CFG_ABS_PATH, 0, CFG_DEF_IN_DIR, "device-certs/tedge.csr", 0, NULL,
     DOC_CSR_PATH, NULL, {EX_CSR_PATH, NULL}},
    {"device.key_uri", CFG_P11_URI, 0, CFG_DEF_NONE, NULL, 0, NULL, DOC_KEY_URI, NULL,
     {EX_KEY_URI, NULL}},
    {"device.key_pin", CFG_STRING, CFG_F_SECRET, CFG_DEF_NONE, NULL, 0, NULL, DOC_KEY_PIN, NULL,
     {"123456", "my-pin", NULL}},
    {"device.cryptoki.mode", CFG_ENUM, 0, CFG_DEF_VALUE, "off", 0, cryptoki_modes,
     "Whether to use a Hardware Security Module for authenticating the MQTT connection with "
     "the cloud. \"off\" to not use the HSM, \"module\" to use the provided cryptoki dynamic "
     "module, \"socket\" to access the HSM via tedge-p11-server signing service.", NULL,
     {"off", "module", "socket", NULL}},
    {"device.cryptoki.module_path", CFG_ABS_PATH, 0, CFG_DEF_NONE, NULL, 0, NULL,
     "A path to the PKCS#11 module used for interaction with the HSM. Needs to be set when "
     "`device.cryptoki.mode` is set to `module`", NULL,
     {"/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so", NULL}},
    {"device.cryptoki.pin", CFG_STRING, CFG_F_SECRET, CFG_DEF_NONE, NULL, 0, NULL,
     "A default User PIN value for logging into the PKCS11 token. May be overridden on a "
     "per-key basis using device.key_pin config setting.",
     "Unlike upstream thin-edge.io there is no default PIN (upstream uses 123456).",
     {"123456", NULL}},
    {"device.cryptoki.uri", CFG_P11_URI, 0, CFG_DEF_NONE, NULL, 0, NULL,
     "A URI of the token/object to be used by tedge-p11-server. If set, tedge-p11-server will "
     "by default use this URI to select a key for signing if a client does not provide its URI "
     "in the request. If the client provides the URI, then the attributes of this server URI "
     "will be used as a base onto which client-provided URI attributes will be appended, "
     "potentially limiting the scope of keys or tokens that can be used by the clients. For "
     "example, if `cryptoki.uri=pkcs11:token=token1` and "
     "`device.key_uri=pkcs11:token2;object=key1`, `tedge-p11-server` will use URI "
     "`pkcs11:token1;object=key1`. For more information about PKCS11 URIs, see RFC7512.", NULL,
     {EX_KEY_URI, NULL}},
    {"device.cryptoki.socket_path", CFG_PATH, 0, CFG_DEF_VALUE,
     "/run/tedge-p11-server/tedge-p11-server.sock", 0, NULL,
     "A path to the tedge-p11-server socket. Needs to be set when `device.cryptoki.mode` is "
     "set to `socket`", NULL, {"/run/tedge-p11-server/tedge-p11-server.sock", NULL}},

    {"c8y.url", CFG_CONNECT_URL, CFG_F_CLOUD, CFG_DEF_NONE, NULL, 0, NULL,
     "Endpoint URL of Cumulocity tenant", NULL, {"your-tenant.cumulocity.com", NULL}},
    {"c8y.mqtt", CFG_HOST_PORT, CFG_F_CLOUD, CFG_DEF_URL_HOST, "c8y.url", 8883, NULL,
     "MQTT Endpoint for the Cumulocity tenant, with optional port.", NULL,
     {"mqtt.your-tenant.cumulocity.com:1234", NULL}},
    {"c8y.root_cert_path", CFG_ABS_PATH, CFG_F_CLOUD, CFG_DEF_VALUE, "/etc/ssl/certs", 0, NULL,
     "The path where Cumulocity root certificate(s) are stored", NOTE_ROOT_CERT,
     {"/etc/tedge/c8y-trusted-root-certificates.pem", NULL}},
    CLOUD_DEVICE_KEYS("c8y"),
    {"c8y.bridge.topic_prefix", CFG_TOPIC_PREFIX, CFG_F_CLOUD, CFG_DEF_VALUE, "c8y", 0, NULL,
     "The topic prefix that will be used for the bridge MQTT topic. For instance, if this is "
     "set to \"c8y\", then messages published to `c8y/s/us` will be forwarded to Cumulocity "
     "on the `s/us` topic", NULL, {"c8y", NULL}},
    {"c8y.bridge.keepalive_interval", CFG_DURATION, CFG_F_CLOUD, CFG_DEF_VALUE, "60s", 0, NULL,
     "The amount of time after which the bridge should send a ping if no other traffic has "
     "occurred", NULL, {"60s", NULL}},

    {"az.url", CFG_CONNECT_URL, CFG_F_CLOUD, CFG_DEF_NONE, NULL, 0, NULL,
     "Endpoint URL of Azure IoT tenant", NULL, {"myazure.azure-devices.net", NULL}},
    {"az.root_cert_path", CFG_ABS_PATH, CFG_F_CLOUD, CFG_DEF_VALUE, "/etc/ssl/certs", 0, NULL,
     "The path where Azure IoT root certificate(s) are stored", NOTE_ROOT_CERT,
     {"/etc/tedge/az-trusted-root-certificates.pem", NULL}},
    CLOUD_DEVICE_KEYS("az"),

    {"aws.url", CFG_CONNECT_URL, CFG_F_CLOUD, CFG_DEF_NONE, NULL, 0, NULL,
     "Endpoint URL of AWS IoT tenant", NULL, {"your-endpoint.amazonaws.com", NULL}},
    {"aws.root_cert_path", CFG_ABS_PATH, CFG_F_CLOUD, CFG_DEF_VALUE, "/etc/ssl/certs", 0, NULL,
     "The path where AWS IoT root certificate(s) are stored", NOTE_ROOT_CERT,
     {"/etc/tedge/aws-trusted-root-certificates.pem", NULL}},
    CLOUD_DEVICE_KEYS("aws"),

    {"mqtt.client.host", CFG_STRING, 0, CFG_DEF_VALUE, "localhost", 0, NULL,
     "The host that the thin-edge MQTT client should connect to", NULL, {"127.0.0.1", NULL}},
    {"mqtt.client.port", CFG_PORT, 0, CFG_DEF_VALUE, "1883", 0, NULL,
     "The port that the thin-edge MQTT client should connect to", NULL, {"1883", NULL}},
    {"mqtt.bridge.built_in", CFG_BOOL, 0, CFG_DEF_VALUE, "true", 0, NULL,
     "Enables the built-in bridge when running tedge-mapper",
     "After changing this value, run `tedge reconnect <cloud>` to apply the changes. This "
     "implementation only has the built-in bridge, so the default is true (upstream: false).",
     {"true", NULL}},
    {"mqtt.bridge.reconnect_policy.initial_interval", CFG_DURATION, 0, CFG_DEF_VALUE, "5s", 0,
     NULL, "The minimum time the built-in bridge will wait before reconnecting", NULL,
     {"30s", NULL}},
    {"mqtt.bridge.reconnect_policy.maximum_interval", CFG_DURATION, 0, CFG_DEF_VALUE, "10m", 0,
     NULL, "The maximum time the built-in bridge will wait before reconnecting", NULL,
     {"10m", NULL}},
    {"mqtt.bridge.reconnect_policy.reset_window", CFG_DURATION, 0, CFG_DEF_VALUE, "15m", 0, NULL,
     "How long to wait after successful reconnection before resetting the reconnect timeout",
     NULL, {"5m", NULL}},
};

static const char *const clouds[] = {"c8y", "az", "aws"};

size_t cfg_key_count(void) { return sizeof(keys) / sizeof(keys[0]); }

const struct cfg_key_def *cfg_key_at(size_t i)
{
    return i < cfg_key_count() ? &keys[i] : NULL;
}

static const struct cfg_key_def *find_def(const char *name, unsigned need_flags)
{
    for (size_t i = 0; i < cfg_key_count(); i++)
        if ((keys[i].flags & need_flags) == need_flags && strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static bool profile_name_ok(const char *s, size_t len)
{
    if (len == 0 || len >= CFG_PROFILE_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* Splits "<cloud>.profiles.<name>.<rest>": the cloud index, name and rest. */
static bool split_profile_key(const char *key, size_t *cloud, const char **name,
                              size_t *name_len, const char **rest)
{
    for (size_t c = 0; c < sizeof(clouds) / sizeof(clouds[0]); c++) {
        size_t cl = strlen(clouds[c]);
        const char *p, *dot;
        if (strncmp(key, clouds[c], cl) != 0 || strncmp(key + cl, ".profiles.", 10) != 0)
            continue;
        p = key + cl + 10;
        if ((dot = strchr(p, '.')) == NULL || !profile_name_ok(p, (size_t)(dot - p)))
            return false;
        *cloud = c;
        *name = p;
        *name_len = (size_t)(dot - p);
        *rest = dot + 1;
        return true;
    }
    return false;
}

/* Levenshtein distance of two short strings (bounded by CFG_KEY_MAX). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strnlen(a, CFG_KEY_MAX), lb = strnlen(b, CFG_KEY_MAX);
    size_t prev[CFG_KEY_MAX + 1], cur[CFG_KEY_MAX + 1];

    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
    }
    return prev[lb];
}

void cfg_key_suggest(const char *key, char *out, size_t out_size)
{
    size_t best = (size_t)-1, cloud, name_len;
    const char *name, *rest;
    bool profiled = split_profile_key(key, &cloud, &name, &name_len, &rest);

    out[0] = '\0';
    for (size_t i = 0; i < cfg_key_count(); i++) {
        char cand[CFG_KEY_MAX];
        size_t d;
        if (profiled) {
            size_t cl = strlen(clouds[cloud]);
            if (!(keys[i].flags & CFG_F_CLOUD) || strncmp(keys[i].name, clouds[cloud], cl) != 0 ||
                keys[i].name[cl] != '.')
                continue;
            snprintf(cand, sizeof(cand), "%s.profiles.%.*s.%s", clouds[cloud], (int)name_len,
                     name, keys[i].name + cl + 1);
        } else if (keys[i].flags & CFG_F_READONLY) {
            continue;
        } else {
            snprintf(cand, sizeof(cand), "%s", keys[i].name);
        }
        if ((d = edit_distance(key, cand)) < best) {
            best = d;
            snprintf(out, out_size, "%s", cand);
        }
    }
}

int cfg_key_resolve(const char *key, struct cfg_key_ref *ref, struct te_error *err)
{
    char suggestion[CFG_KEY_MAX];
    size_t cloud, name_len;
    const char *name, *rest;

    memset(ref, 0, sizeof(*ref));
    if (key == NULL || key[0] == '\0')
        return te_error_set(err, TE_ERR_NOT_FOUND,
                            "No configuration key was given. Run `tedge config list --doc` to "
                            "see the available keys.");
    if (strlen(key) < CFG_KEY_MAX) {
        snprintf(ref->name, sizeof(ref->name), "%s", key);
        if ((ref->def = find_def(key, 0)) != NULL)
            return TE_OK;
        if (split_profile_key(key, &cloud, &name, &name_len, &rest)) {
            char base[CFG_KEY_MAX];
            snprintf(base, sizeof(base), "%s.%s", clouds[cloud], rest);
            if ((ref->def = find_def(base, CFG_F_CLOUD)) != NULL) {
                memcpy(ref->profile, name, name_len);
                ref->profile[name_len] = '\0';
                return TE_OK;
            }
        }
    }
    memset(ref, 0, sizeof(*ref));
    cfg_key_suggest(key, suggestion, sizeof(suggestion));
    return te_error_set(err, TE_ERR_NOT_FOUND,
                        "Unknown configuration key '%.*s'. Did you mean '%s'? Run `tedge config "
                        "list --doc` to see the available keys.",
                        CFG_KEY_MAX, key, suggestion);
}

void cfg_env_name(const char *key, char *out, size_t out_size)
{
    size_t o = 0, plen = strlen(CFG_ENV_PREFIX);

    if (out_size == 0)
        return;
    if (plen >= out_size)
        plen = out_size - 1;
    memcpy(out, CFG_ENV_PREFIX, plen);
    o = plen;
    for (const char *p = key; *p && o + 1 < out_size; p++)
        out[o++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    out[o] = '\0';
}
