/* The tedge.toml configuration model: the table of known keys (type, default, docs), loading
 * <config-dir>/tedge.toml, TEDGE_* environment overrides, typed getters, validated set/unset. */
#ifndef TEDGE_COMMON_CONFIG_H
#define TEDGE_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CFG_DEFAULT_DIR "/etc/tedge"       /* upstream's default config dir */
#define CFG_FILE_NAME "tedge.toml"
#define CFG_FILE_MODE 0640                 /* new files: a PIN may be inside */
#define CFG_KEY_MAX 256                    /* longest key name, profiles included */
#define CFG_PROFILE_MAX 64                 /* longest profile name */
#define CFG_ORIGIN_MAX 512                 /* "where did this value come from" text */
#define CFG_ENV_PREFIX "TEDGE_"

/*
 * Keys. Every key of the model is a row of one table (common/config_keys.c), the single
 * source of truth for names, types, defaults and documentation. Cloud keys (c8y.*, az.*,
 * aws.*) also exist per profile: c8y.profiles.<name>.url is c8y.url for profile <name>.
 */
enum cfg_type {
    CFG_STRING,        /* free text (no control characters) */
    CFG_PATH,          /* a file system path */
    CFG_ABS_PATH,      /* a path that must be absolute */
    CFG_BOOL,          /* true | false */
    CFG_PORT,          /* 1..65535, stored as a TOML integer */
    CFG_DURATION,      /* "60s", "10m", "1h 30m", "2d", "500ms" or plain seconds */
    CFG_ENUM,          /* one of def->allowed */
    CFG_HOST_PORT,     /* host[:port], def->default_port when the port is omitted */
    CFG_CONNECT_URL,   /* a host name without scheme, port or path (upstream's ConnectUrl) */
    CFG_P11_URI,       /* an RFC 7512 "pkcs11:" URI */
    CFG_TOPIC_PREFIX,  /* an MQTT topic level without wildcards or '/' */
};

#define CFG_F_READONLY 0x1u /* derived, never set (device.id) */
#define CFG_F_SECRET 0x2u   /* a PIN: never in messages or logs, masked by `list` */
#define CFG_F_CLOUD 0x4u    /* c8y/az/aws key: also valid as <cloud>.profiles.<name>.<rest> */

enum cfg_default {
    CFG_DEF_NONE,      /* unset unless configured */
    CFG_DEF_VALUE,     /* def->def_value */
    CFG_DEF_IN_DIR,    /* <config-dir>/<def_value> */
    CFG_DEF_KEY,       /* the effective value of key def_value (e.g. device.key_uri) */
    CFG_DEF_URL_HOST,  /* host of the sibling key def_value (same cloud/profile) + :default_port */
    CFG_DEF_CERT_CN,   /* Common Name of the certificate at device.cert_path */
};

struct cfg_key_def {
    const char *name;              /* "device.cryptoki.mode" */
    enum cfg_type type;
    unsigned flags;                /* CFG_F_* */
    enum cfg_default def_kind;
    const char *def_value;
    unsigned default_port;         /* CFG_HOST_PORT */
    const char *const *allowed;    /* CFG_ENUM: NULL-terminated */
    const char *doc;               /* one paragraph, upstream's text where upstream has the key */
    const char *note;              /* optional */
    const char *examples[4];       /* NULL-terminated */
};

size_t cfg_key_count(void);
const struct cfg_key_def *cfg_key_at(size_t i);

/* A key name resolved against the table: c8y.profiles.foo.url -> def "c8y.url", profile "foo". */
struct cfg_key_ref {
    const struct cfg_key_def *def;
    char name[CFG_KEY_MAX];        /* the concrete key as given */
    char profile[CFG_PROFILE_MAX]; /* "" when not a profile key */
};

/* Resolves key. Unknown: TE_ERR_NOT_FOUND with "Unknown configuration key 'x'. Did you mean
 * 'y'? ..." in err (the nearest known key by edit distance). */
int cfg_key_resolve(const char *key, struct cfg_key_ref *ref, struct te_error *err);
/* The nearest known key (profile keys keep the given profile) into out. */
void cfg_key_suggest(const char *key, char *out, size_t out_size);
/* "TEDGE_C8Y_PROFILES_FOO_URL" for "c8y.profiles.foo.url". */
void cfg_env_name(const char *key, char *out, size_t out_size);

/* Checks value against the key's type (and normalises nothing). TE_ERR_INVALID with the
 * reason, e.g. "... Supported values are: off, module, socket." Secret values are never
 * quoted in messages. */
int cfg_validate(const struct cfg_key_def *def, const char *key, const char *value,
                 struct te_error *err);

/* Parsers shared by the getters and the validator. */
int cfg_parse_bool(const char *s, bool *out);
int cfg_parse_port(const char *s, uint16_t *out);
/* Milliseconds; plain numbers are seconds. */
int cfg_parse_duration_ms(const char *s, uint64_t *out);
/* host[:port] or [v6]:port; *host is malloc'd (brackets removed). */
int cfg_parse_host_port(const char *s, unsigned default_port, char **host, uint16_t *port);

/*
 * A loaded configuration.
 */
struct cfg;

enum cfg_source {
    CFG_SRC_UNSET = 0,
    CFG_SRC_FILE,      /* tedge.toml */
    CFG_SRC_ENV,       /* TEDGE_* variable */
    CFG_SRC_DEFAULT,   /* a built-in default */
    CFG_SRC_DERIVED,   /* from another key (fallback like c8y.device.key_uri -> device.key_uri,
                          c8y.mqtt from c8y.url, device.id from the certificate) */
};

struct cfg_value {
    char *value;                   /* effective value (malloc'd; wiped on clear); NULL if unset */
    enum cfg_source source;
    char origin[CFG_ORIGIN_MAX];   /* "/etc/tedge/tedge.toml:12", "TEDGE_C8Y_URL", "default",
                                      "device.key_uri (/etc/tedge/tedge.toml:3)" */
};

/* The config dir to use: opt when given, else $TEDGE_CONFIG_DIR when not empty, else
 * /etc/tedge. */
const char *cfg_resolve_dir(const char *opt);

/* Loads <dir>/tedge.toml. A missing file is an empty configuration; a file that does not
 * parse is an error naming file:line:col (TE_ERR_MALFORMED / TE_ERR_UNSUPPORTED). */
int cfg_load(const char *dir, struct cfg **out, struct te_error *err);
void cfg_free(struct cfg *c);
const char *cfg_dir(const struct cfg *c);
const char *cfg_file_path(const struct cfg *c);
bool cfg_file_exists(const struct cfg *c);

/* The effective value of key: environment, then file, then default/derived.
 * TE_OK with out->value set; TE_ERR_NOT_FOUND when unset and without default (err says
 * "The provided config key: 'x' is not set"); TE_ERR_NOT_FOUND from cfg_key_resolve for an
 * unknown key; TE_ERR_CONFIG when the configured value is invalid (err names its origin).
 * An empty TEDGE_* variable counts as not set. */
int cfg_get(const struct cfg *c, const char *key, struct cfg_value *out, struct te_error *err);
void cfg_value_clear(struct cfg_value *v);

/* Typed getters over cfg_get (same errors); cfg_get_string's *out is malloc'd: release a
 * PIN (device.key_pin, device.cryptoki.pin, ...) with te_free_secret() so it is wiped.
 * cfg_get_uint reads ports; cfg_get_host_port fills in the key's default port. */
int cfg_get_string(const struct cfg *c, const char *key, char **out, struct te_error *err);
int cfg_get_bool(const struct cfg *c, const char *key, bool *out, struct te_error *err);
int cfg_get_uint(const struct cfg *c, const char *key, unsigned long *out, struct te_error *err);
int cfg_get_duration_ms(const struct cfg *c, const char *key, uint64_t *out,
                        struct te_error *err);
int cfg_get_host_port(const struct cfg *c, const char *key, char **host, uint16_t *port,
                      struct te_error *err);

enum cfg_cryptoki_mode { CFG_CRYPTOKI_OFF = 0, CFG_CRYPTOKI_MODULE, CFG_CRYPTOKI_SOCKET };
int cfg_get_cryptoki_mode(const struct cfg *c, enum cfg_cryptoki_mode *out, struct te_error *err);

/* Validates and writes key = value into tedge.toml (re-read from disk first), atomically:
 * an existing file keeps its mode, a new one gets CFG_FILE_MODE; a file that does not parse
 * is never overwritten. Read-only keys and invalid values are refused (TE_ERR_INVALID). */
int cfg_set(struct cfg *c, const char *key, const char *value, struct te_error *err);
/* Removes key from tedge.toml; not set in the file is success without writing. */
int cfg_unset(struct cfg *c, const char *key, struct te_error *err);

/* Calls fn for every concrete key in table order, then for each profile found in the file
 * or the environment (TEDGE_<CLOUD>_PROFILES_<NAME>_...) every key of that cloud. */
int cfg_foreach_key(const struct cfg *c, int (*fn)(const char *key, const struct cfg_key_def *def,
                                                   void *ctx), void *ctx);

#endif
