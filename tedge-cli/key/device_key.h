/* The device key and certificate of a cloud profile, as tedge.toml configures them: the one place
 * that knows which keys to read for each key mode and how cloud keys fall back to device.* keys. */
#ifndef TEDGE_CLI_DEVICE_KEY_H
#define TEDGE_CLI_DEVICE_KEY_H

#include "common/config.h"
#include "common/err.h"
#include "tedge-cli/key/signer.h"

#define DEVICE_KEY_PREFIX_MAX (CFG_PROFILE_MAX + 32) /* "c8y.profiles.<name>.device." */

/*
 * What device_key_load resolved. The strings are owned by this struct (PINs are wiped on free);
 * `signer` points into them and can be passed to signer_open() as it is.
 *
 * Rules (cloud "c8y" shown; az and aws alike; a profile reads c8y.profiles.<name>.device.*):
 *   cert_path, csr_path, key_path: c8y.device.<key>, else device.<key> (which has a default)
 *   mode off:    the key file key_path
 *   mode module: device.cryptoki.module_path (required), scope device.cryptoki.uri, key
 *                c8y.device.key_uri else device.key_uri, PIN c8y.device.key_pin else
 *                device.key_pin, default PIN device.cryptoki.pin
 *   mode socket: device.cryptoki.socket_path, key URI and PIN as for module
 * Without a cloud, the device.* keys are read directly.
 */
struct device_key_config {
    enum cfg_cryptoki_mode mode;
    struct signer_config signer;
    char *cert_path;
    char *csr_path;
    char *key_path;            /* always resolved; the key itself only in mode off */
    char *module_path;
    char *scope_uri;
    char *key_uri;
    char *pin;                 /* secret */
    char *default_pin;         /* secret */
    char *socket_path;
    char prefix[DEVICE_KEY_PREFIX_MAX]; /* "device." or "c8y.profiles.foo.device.", for messages */
};

/* Resolves the device key of cloud ("c8y", "az", "aws" or NULL for the device.* keys) and
 * profile (NULL or "" = the default profile; only with a cloud). TE_ERR_INVALID for an unknown
 * cloud or a bad profile name, TE_ERR_CONFIG when a value the mode needs is missing or a
 * configured value is invalid (the message names the key and how to fix it). */
int device_key_load(const struct cfg *c, const char *cloud, const char *profile,
                    struct device_key_config **out, struct te_error *err);
void device_key_free(struct device_key_config *k);

/* "off", "module" or "socket". */
const char *device_key_mode_name(enum cfg_cryptoki_mode mode);
/* Whether the key lives in an HSM (module or socket), where tedge never creates or deletes it. */
bool device_key_in_hsm(const struct device_key_config *k);

#endif
