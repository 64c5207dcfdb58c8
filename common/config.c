/* Loading tedge.toml and resolving a key's effective value with its origin: environment, then
 * file, then a default or a value derived from another key (or from the device certificate). */
#include "common/config_internal.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/x509_name.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CFG_DERIVE_DEPTH 4 /* longest chain of keys defaulting to keys */

extern char **environ;

const char *cfg_resolve_dir(const char *opt)
{
    const char *env = getenv("TEDGE_CONFIG_DIR");
    if (opt != NULL && opt[0] != '\0')
        return opt;
    if (env != NULL && env[0] != '\0')
        return env;
    return CFG_DEFAULT_DIR;
}

int cfg_load(const char *dir, struct cfg **out, struct te_error *err)
{
    struct cfg *c = NULL;
    size_t len;
    int ret;

    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        return te_error_set(err, TE_ERR_INVALID, "No configuration directory was given.");
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory loading the configuration.");
        goto exit;
    }
    if (dir[0] == '/') {
        c->dir = strdup(dir);
    } else { /* default paths under the dir must be absolute */
        char *cwd = getcwd(NULL, 0);
        if (cwd == NULL || asprintf(&c->dir, "%s/%s", cwd, dir) < 0)
            c->dir = NULL;
        free(cwd);
    }
    if (c->dir == NULL) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Cannot resolve the configuration directory '%s'.",
                           dir);
        goto exit;
    }
    len = strlen(c->dir);
    while (len > 1 && c->dir[len - 1] == '/')
        c->dir[--len] = '\0';
    if (asprintf(&c->path, "%s%s%s", c->dir, len > 1 || c->dir[0] != '/' ? "/" : "",
                 CFG_FILE_NAME) < 0) {
        c->path = NULL;
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory loading the configuration.");
        goto exit;
    }
    if ((ret = cfg_read_file(c->path, &c->doc, err)) != TE_OK)
        goto exit;
    *out = c;
    c = NULL;
exit:
    cfg_free(c);
    return ret;
}

void cfg_free(struct cfg *c)
{
    if (c == NULL)
        return;
    toml_free(c->doc);
    free(c->path);
    free(c->dir);
    free(c);
}

const char *cfg_dir(const struct cfg *c) { return c->dir; }
const char *cfg_file_path(const struct cfg *c) { return c->path; }
bool cfg_file_exists(const struct cfg *c) { return c->doc != NULL; }

void cfg_value_clear(struct cfg_value *v)
{
    if (v == NULL)
        return;
    te_free_secret(v->value);
    memset(v, 0, sizeof(*v));
}

static int not_set(struct te_error *err, const char *key)
{
    return te_error_set(err, TE_ERR_NOT_FOUND, "The provided config key: '%s' is not set", key);
}

/* The non-empty TEDGE_* variable for key (matched case-insensitively, like upstream). */
static const char *env_value(const char *key, char *name, size_t name_size)
{
    const char *v;
    size_t l;

    cfg_env_name(key, name, name_size);
    if ((v = getenv(name)) == NULL) {
        l = strlen(name);
        for (char **e = environ; e != NULL && *e != NULL; e++) {
            if (strncasecmp(*e, name, l) == 0 && (*e)[l] == '=') {
                v = *e + l + 1;
                memcpy(name, *e, l); /* report the variable as it is spelled */
                break;
            }
        }
    }
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The file's value for key as text, and "path:line". TE_ERR_NOT_FOUND when absent. */
static int file_value(const struct cfg *c, const char *key, char **out, char *origin,
                      size_t origin_size, struct te_error *err)
{
    char buf[CFG_KEY_MAX];
    const char *parts[TOML_MAX_DEPTH];
    const struct toml_value *v;
    size_t n;

    *out = NULL;
    if (c->doc == NULL ||
        toml_split_key(key, buf, sizeof(buf), parts, TOML_MAX_DEPTH, &n) != TE_OK ||
        (v = toml_get(c->doc, parts, n)) == NULL)
        return TE_ERR_NOT_FOUND;
    snprintf(origin, origin_size, "%s:%u", c->path, v->line);
    switch (v->type) {
    case TOML_STRING:
        *out = strdup(v->str);
        break;
    case TOML_BOOL:
        *out = strdup(v->boolean ? "true" : "false");
        break;
    case TOML_INTEGER:
        if (asprintf(out, "%lld", v->integer) < 0)
            *out = NULL;
        break;
    default:
        return te_error_set(err, TE_ERR_CONFIG,
                            "'%s' in %s must be a single value, not a %s. Fix the file by hand.",
                            key, origin, v->type == TOML_TABLE ? "table" : "list");
    }
    if (*out == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory reading '%s'.", key);
    return TE_OK;
}

/* Validates a configured value and stores it, normalised, into out. */
static int accept_value(const struct cfg_key_ref *ref, const char *value, enum cfg_source src,
                        const char *origin, struct cfg_value *out, struct te_error *err)
{
    const struct cfg_key_def *def = ref->def;
    struct te_error verr = {0};
    char *host = NULL, *norm = NULL;
    uint16_t port;

    if (cfg_validate(def, ref->name, value, &verr) != TE_OK) {
        if (src == CFG_SRC_ENV)
            return te_error_set(err, TE_ERR_CONFIG, "%s It comes from the environment variable "
                                "%s: fix or unset that variable.", verr.msg, origin);
        return te_error_set(err, TE_ERR_CONFIG, "%s It is set in %s: change it with `tedge "
                            "config set %s <value>`.", verr.msg, origin, ref->name);
    }
    if (def->type == CFG_HOST_PORT) { /* upstream shows host:port, with the default port */
        if (cfg_parse_host_port(value, def->default_port, &host, &port) == TE_OK &&
            asprintf(&norm, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port) < 0)
            norm = NULL;
        free(host);
    } else {
        norm = strdup(value);
    }
    if (norm == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory reading '%s'.", ref->name);
    out->value = norm;
    out->source = src;
    snprintf(out->origin, sizeof(out->origin), "%s", origin);
    return TE_OK;
}

/* Common Name of the first certificate in path, or why there is none (for the message). */
static int cert_common_name(const char *path, char **out, char *why, size_t why_size)
{
    int detail, ret = x509_file_cn(path, out, &detail);

    if (ret == TE_ERR_NOT_FOUND || ret == TE_ERR_PERMISSION)
        snprintf(why, why_size, "cannot read the device certificate %s (%s)", path,
                 strerror(detail));
    else if (ret == TE_ERR_MALFORMED)
        snprintf(why, why_size, "%s is not a PEM or DER certificate", path);
    else if (ret != TE_OK)
        snprintf(why, why_size, "the device certificate %s has no Common Name", path);
    return ret == TE_OK ? TE_OK : TE_ERR_NOT_FOUND;
}

static int get_effective(const struct cfg *c, const struct cfg_key_ref *ref,
                         struct cfg_value *out, struct te_error *err, int depth);

/* Effective value of another key, whose origin becomes "key (origin)". */
static int derive_from(const struct cfg *c, const char *key, struct cfg_value *out,
                       struct te_error *err, int depth)
{
    struct cfg_key_ref sub;
    struct cfg_value v = {0};
    int r;

    if (cfg_key_resolve(key, &sub, err) != TE_OK)
        return te_error_set(err, TE_ERR_INTERNAL, "The key table derives from unknown key '%s'.", key);
    if ((r = get_effective(c, &sub, &v, err, depth + 1)) != TE_OK)
        return r;
    out->value = v.value;
    out->source = CFG_SRC_DERIVED;
    snprintf(out->origin, sizeof(out->origin), "%s (%.400s)", key, v.origin);
    return TE_OK;
}

static int default_value(const struct cfg *c, const struct cfg_key_ref *ref,
                         struct cfg_value *out, struct te_error *err, int depth)
{
    const struct cfg_key_def *def = ref->def;
    char why[CFG_ORIGIN_MAX], sibling[CFG_KEY_MAX];
    struct cfg_value path = {0};
    size_t cl;
    int r;

    switch (def->def_kind) {
    case CFG_DEF_NONE:
        return not_set(err, ref->name);
    case CFG_DEF_VALUE:
    case CFG_DEF_IN_DIR:
        if (def->def_kind == CFG_DEF_VALUE)
            out->value = strdup(def->def_value);
        else if (asprintf(&out->value, "%s/%s", c->dir, def->def_value) < 0)
            out->value = NULL;
        if (out->value == NULL)
            return te_error_set(err, TE_ERR_NOMEM, "Out of memory reading '%s'.", ref->name);
        out->source = CFG_SRC_DEFAULT;
        snprintf(out->origin, sizeof(out->origin), "default");
        return TE_OK;
    case CFG_DEF_KEY:
        r = derive_from(c, def->def_value, out, err, depth);
        return r == TE_ERR_NOT_FOUND ? not_set(err, ref->name) : r;
    case CFG_DEF_URL_HOST:
        /* the sibling in the same cloud and profile: c8y.profiles.foo.url for c8y.profiles.foo.mqtt */
        cl = strcspn(def->name, ".");
        if (ref->profile[0] != '\0')
            snprintf(sibling, sizeof(sibling), "%.*s.profiles.%s.%s", (int)cl, def->name,
                     ref->profile, def->def_value + cl + 1);
        else
            snprintf(sibling, sizeof(sibling), "%s", def->def_value);
        if ((r = derive_from(c, sibling, out, err, depth)) != TE_OK)
            return r == TE_ERR_NOT_FOUND ? not_set(err, ref->name) : r;
        {
            char *hp = NULL;
            if (asprintf(&hp, "%s:%u", out->value, def->default_port) < 0) {
                cfg_value_clear(out);
                return te_error_set(err, TE_ERR_NOMEM, "Out of memory reading '%s'.", ref->name);
            }
            free(out->value);
            out->value = hp;
        }
        return TE_OK;
    case CFG_DEF_CERT_CN:
        if ((r = derive_from(c, "device.cert_path", &path, err, depth)) != TE_OK)
            return r;
        r = cert_common_name(path.value, &out->value, why, sizeof(why));
        if (r != TE_OK) {
            cfg_value_clear(&path);
            return te_error_set(err, TE_ERR_NOT_FOUND,
                                "The provided config key: '%s' is not configured: %s", ref->name,
                                why);
        }
        out->source = CFG_SRC_DERIVED;
        snprintf(out->origin, sizeof(out->origin), "certificate %.400s", path.value);
        cfg_value_clear(&path);
        return TE_OK;
    }
    return te_error_set(err, TE_ERR_INTERNAL, "Key '%s' has an unknown default.", ref->name);
}

static int get_effective(const struct cfg *c, const struct cfg_key_ref *ref,
                         struct cfg_value *out, struct te_error *err, int depth)
{
    char origin[CFG_ORIGIN_MAX], env_name[CFG_KEY_MAX + 8];
    const char *env;
    char *raw = NULL;
    int r;

    memset(out, 0, sizeof(*out));
    if (depth > CFG_DERIVE_DEPTH)
        return te_error_set(err, TE_ERR_INTERNAL, "Key '%s' derives from too many keys.", ref->name);
    if (!(ref->def->flags & CFG_F_READONLY)) {
        if ((env = env_value(ref->name, env_name, sizeof(env_name))) != NULL)
            return accept_value(ref, env, CFG_SRC_ENV, env_name, out, err);
        r = file_value(c, ref->name, &raw, origin, sizeof(origin), err);
        if (r == TE_OK) {
            r = accept_value(ref, raw, CFG_SRC_FILE, origin, out, err);
            te_free_secret(raw);
            return r;
        }
        if (r != TE_ERR_NOT_FOUND)
            return r;
    }
    return default_value(c, ref, out, err, depth);
}

static const char *source_name(enum cfg_source s)
{
    static const char *const names[] = {"unset", "file", "env", "default", "derived"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int cfg_get(const struct cfg *c, const char *key, struct cfg_value *out, struct te_error *err)
{
    struct cfg_key_ref ref;
    int r;

    memset(out, 0, sizeof(*out));
    CHECK_ARG(c != NULL && key != NULL, TE_ERR_INVALID);
    if ((r = cfg_key_resolve(key, &ref, err)) != TE_OK)
        return r;
    if ((r = get_effective(c, &ref, out, err, 0)) == TE_OK)
        log_debug("config key=%s source=%s origin=%s", key, source_name(out->source), out->origin);
    return r;
}

int cfg_get_string(const struct cfg *c, const char *key, char **out, struct te_error *err)
{
    struct cfg_value v;
    int r = cfg_get(c, key, &v, err);
    *out = NULL;
    if (r == TE_OK)
        *out = v.value;
    return r;
}

static int typed(const struct cfg *c, const char *key, struct cfg_value *v, enum cfg_type type,
                 struct te_error *err)
{
    struct cfg_key_ref ref;
    int r;
    memset(v, 0, sizeof(*v)); /* callers clear v whatever happens */
    if ((r = cfg_key_resolve(key, &ref, err)) != TE_OK)
        return r;
    if (ref.def->type != type)
        return te_error_set(err, TE_ERR_INVALID, "Key '%s' does not hold this type of value.", key);
    return cfg_get(c, key, v, err);
}

int cfg_get_bool(const struct cfg *c, const char *key, bool *out, struct te_error *err)
{
    struct cfg_value v;
    int r = typed(c, key, &v, CFG_BOOL, err);
    if (r == TE_OK && cfg_parse_bool(v.value, out) != TE_OK)
        r = te_error_set(err, TE_ERR_CONFIG, "'%s' is not a boolean.", key);
    cfg_value_clear(&v);
    return r;
}

int cfg_get_uint(const struct cfg *c, const char *key, unsigned long *out, struct te_error *err)
{
    struct cfg_value v;
    uint16_t port;
    int r = typed(c, key, &v, CFG_PORT, err);
    if (r == TE_OK && cfg_parse_port(v.value, &port) != TE_OK)
        r = te_error_set(err, TE_ERR_CONFIG, "'%s' is not a number.", key);
    if (r == TE_OK)
        *out = port;
    cfg_value_clear(&v);
    return r;
}

int cfg_get_duration_ms(const struct cfg *c, const char *key, uint64_t *out,
                        struct te_error *err)
{
    struct cfg_value v;
    int r = typed(c, key, &v, CFG_DURATION, err);
    if (r == TE_OK && cfg_parse_duration_ms(v.value, out) != TE_OK)
        r = te_error_set(err, TE_ERR_CONFIG, "'%s' is not a duration.", key);
    cfg_value_clear(&v);
    return r;
}

int cfg_get_host_port(const struct cfg *c, const char *key, char **host, uint16_t *port,
                      struct te_error *err)
{
    struct cfg_key_ref ref;
    struct cfg_value v;
    int r;

    *host = NULL;
    if ((r = typed(c, key, &v, CFG_HOST_PORT, err)) != TE_OK)
        return r;
    (void)cfg_key_resolve(key, &ref, NULL);
    r = cfg_parse_host_port(v.value, ref.def->default_port, host, port);
    if (r != TE_OK)
        r = te_error_set(err, r == TE_ERR_NOMEM ? r : TE_ERR_CONFIG, "'%s' is not host:port.", key);
    cfg_value_clear(&v);
    return r;
}

int cfg_get_cryptoki_mode(const struct cfg *c, enum cfg_cryptoki_mode *out, struct te_error *err)
{
    struct cfg_value v;
    int r = cfg_get(c, "device.cryptoki.mode", &v, err);
    if (r != TE_OK)
        return r;
    if (strcmp(v.value, "module") == 0)
        *out = CFG_CRYPTOKI_MODULE;
    else if (strcmp(v.value, "socket") == 0)
        *out = CFG_CRYPTOKI_SOCKET;
    else
        *out = CFG_CRYPTOKI_OFF;
    cfg_value_clear(&v);
    return TE_OK;
}
