/* Shared by the `tedge cert` subcommands (cert_*.c): parsed options, upstream's messages, the
 * error format, the certificate template, and the file helpers that never leave half a file. */
#ifndef TEDGE_CLI_CERT_CMD_H
#define TEDGE_CLI_CERT_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/err.h"
#include "tedge-cli/cli.h"
#include "tedge-cli/key/device_key.h"
#include "tedge-cli/key/signer.h"
#include "tedge-cli/key/x509_key.h"
#include "tedge-cli/key/x509_write.h"

#define CERT_FILE_MODE 0444      /* certificates and requests are public and never edited */
#define CERT_KEY_FILE_MODE 0600  /* a private key only its owner reads */
#define CERT_DIR_MODE 0755       /* device-certs/ holds public certificates */
#define CERT_TEDGE_USER "tedge"  /* who runs the built-in bridge and reads these files */

/* Upstream's messages (continuation lines are indented as upstream prints them). */
#define CERT_MSG_CERT_EXISTS                                                                    \
    "A certificate already exists and would be overwritten.\n        Existing file: \"%s\"\n"   \
    "        Run `tedge cert remove` first to generate a new certificate."
#define CERT_MSG_KEY_EXISTS                                                                     \
    "A private key already exists and would be overwritten.\n        Existing file: \"%s\"\n"   \
    "        Run `tedge cert remove` first to generate a new certificate and private key."
#define CERT_MSG_CERT_MISSING                                                                   \
    "No certificate has been attached to that device.\n        Missing file: \"%s\"\n"         \
    "        Run `tedge cert create` to generate a new certificate."
#define CERT_MSG_NO_DEVICE_ID                                                                   \
    "No device ID is provided. Use `--device-id <name>` option to specify the device ID."
#define CERT_MSG_HSM_NO_KEY                                                                     \
    "When using HSM, `tedge cert create` can't create the keypair automatically. Use `tedge "  \
    "hsm create-key` to create the key first."

struct cert_opts {
    const char *device_id;   /* --device-id */
    const char *output_path; /* create-csr --output-path */
    const char *cert_path;   /* show --cert-path */
    const char *cloud;       /* c8y, az, aws or NULL */
    const char *profile;     /* --profile (with a cloud) */
};

/* What a self-signed certificate and a request say about the device (upstream's
 * certificate.* settings: organization "Thin Edge", unit "Device", 365 days). */
struct cert_template {
    char *organization;
    char *unit;
    unsigned days;
};

int cert_create(const struct cli_ctx *ctx, const struct cert_opts *o);
int cert_create_csr(const struct cli_ctx *ctx, const struct cert_opts *o);
int cert_show(const struct cli_ctx *ctx, const struct cert_opts *o);
int cert_remove(const struct cli_ctx *ctx, const struct cert_opts *o);

/* Opens the configured device key as a signer and reads its public key into xk (release with
 * x509_key_clear, then signer_close). A key or token missing from the HSM gets upstream's hint
 * that `tedge <command>` does not create HSM keys, followed by the reason. */
int cert_open_device_key(const struct device_key_config *k, const char *command,
                         struct signer **s, struct x509_key *xk, struct te_error *err);

/* Loads tedge.toml and the device key of the options' cloud and profile. */
int cert_load(const struct cli_ctx *ctx, const struct cert_opts *o, struct cfg **c,
              struct device_key_config **k, struct te_error *err);
/* Reads the template from the certificate.* keys when the config model has them. */
int cert_template_load(const struct cfg *c, struct cert_template *t, struct te_error *err);
void cert_template_free(struct cert_template *t);

/* What `cert create` and `cert create-csr` start with: cert_load, then the device id of the new
 * certificate or request (malloc'd): --device-id, else (like upstream) the Common Name of the
 * existing certificate. CLI_EXIT_OK, or CLI_EXIT_ERROR with the error printed (upstream's
 * when there is no id); the caller frees what was loaded either way. */
int cert_load_with_id(const struct cli_ctx *ctx, const struct cert_opts *o, struct cfg **c,
                      struct device_key_config **k, char **id);
/* Checks id against upstream's device id rule, loads the template into t and fills subject
 * (which points into id and t). */
int cert_subject_load(const struct cfg *c, const char *id, struct cert_template *t,
                      struct x509_subject *subject, struct te_error *err);

/* Prints upstream's "Error: failed to <what>\n\nCaused by:\n    <message>" on stderr and
 * returns CLI_EXIT_ERROR. */
int cert_fail(const char *what, const struct te_error *err);

/* Prints what `tedge cert show` prints for the certificate at path (stdout). */
int cert_print(const char *path, struct te_error *err);

/* lstat(path) succeeds: something (even a dangling link) is there. */
bool cert_path_exists(const char *path);
/* Writes a new file atomically (temp file, fsync, rename without replacing) with mode, creating
 * missing parent directories; TE_ERR_EXISTS when path exists, and then nothing was written. */
int cert_write_new(const char *path, const void *data, size_t len, mode_t mode,
                   struct te_error *err);
/* Replaces path atomically (a new file gets mode), creating missing parent directories. */
int cert_write_replace(const char *path, const void *data, size_t len, mode_t mode,
                       struct te_error *err);
/* Gives path to the tedge user and group when running as root and they exist (upstream does
 * the same, ignoring failures). */
void cert_give_to_tedge(const char *path);

#endif
