/* Changing tedge.toml (validated set/unset that re-read the file, edit it in place and replace
 * it atomically, never over a file that does not parse) and listing every concrete key. */
#include "common/config_internal.h"
#include "common/buf.h"
#include "common/fileutil.h"
#include "common/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define CFG_MAX_PROFILES 64 /* profiles listed per cloud */
#define CFG_DIR_MODE 0755   /* a config dir we create (the file itself is 0640) */

extern char **environ;

static const char *const clouds[] = {"c8y", "az", "aws"};

int cfg_read_file(const char *path, struct toml_doc **out, struct te_error *err)
{
    char msg[TE_ERROR_MSG_MAX];
    char *data = NULL;
    size_t len = 0;
    int r;

    *out = NULL;
    r = file_read_all(path, TOML_MAX_SIZE, &data, &len, err);
    if (r == TE_ERR_NOT_FOUND) {
        te_error_clear(err);
        return TE_OK;
    }
    if (r != TE_OK)
        return r;
    r = toml_parse(data, len, path, out, err);
    te_wipe(data, len); /* may hold a PIN */
    free(data);
    if (r != TE_OK && err != NULL) {
        snprintf(msg, sizeof(msg), "%s", err->msg);
        te_error_set(err, r, "Cannot parse the configuration file: %.400s. Fix the file by hand "
                     "(tedge never rewrites a file it cannot parse).", msg);
    }
    return r;
}

/* Re-reads the file, lets edit change the document, and writes it back when it changed. */
static int edit_file(struct cfg *c, const char *key,
                     int (*edit)(struct toml_doc *doc, const char *const *parts, size_t n,
                                 const void *arg, struct te_error *err),
                     const void *arg, bool create, struct te_error *err)
{
    char buf[CFG_KEY_MAX];
    const char *parts[TOML_MAX_DEPTH];
    struct toml_doc *doc = NULL;
    char *before = NULL;
    const char *text;
    size_t n, len, before_len = 0;
    int r;

    if (toml_split_key(key, buf, sizeof(buf), parts, TOML_MAX_DEPTH, &n) != TE_OK)
        return te_error_set(err, TE_ERR_INVALID, "Invalid key '%s'.", key);
    if ((r = cfg_read_file(c->path, &doc, err)) != TE_OK)
        return r;
    if (doc == NULL) {
        if (!create)
            return TE_OK; /* nothing to remove from a file that does not exist */
        if ((r = toml_parse("", 0, c->path, &doc, err)) != TE_OK)
            return r;
    } else {
        text = toml_text(doc, &before_len);
        if ((before = malloc(before_len + 1)) == NULL) {
            r = te_error_set(err, TE_ERR_NOMEM, "Out of memory editing %s.", c->path);
            goto exit;
        }
        memcpy(before, text, before_len + 1);
    }
    if ((r = edit(doc, parts, n, arg, err)) != TE_OK)
        goto exit;
    text = toml_text(doc, &len);
    if (before != NULL && len == before_len && memcmp(text, before, len) == 0) {
        r = TE_OK; /* unchanged: keep the file and its mtime */
    } else {
        if (before == NULL && (r = mkdir_p(c->dir, CFG_DIR_MODE, err)) != TE_OK)
            goto exit;
        if ((r = file_write_atomic(c->path, text, len, CFG_FILE_MODE, err)) != TE_OK)
            goto exit;
    }
    toml_free(c->doc);
    c->doc = doc;
    doc = NULL;
exit:
    if (before != NULL) {
        te_wipe(before, before_len);
        free(before);
    }
    toml_free(doc);
    return r;
}

static int do_set(struct toml_doc *doc, const char *const *parts, size_t n, const void *arg,
                  struct te_error *err)
{
    return toml_set(doc, parts, n, arg, err);
}

static int do_unset(struct toml_doc *doc, const char *const *parts, size_t n, const void *arg,
                    struct te_error *err)
{
    int r = toml_unset(doc, parts, n, err);
    (void)arg;
    return r == TE_ERR_NOT_FOUND ? TE_OK : r;
}

static int refuse_readonly(const struct cfg_key_ref *ref, const char *verb, struct te_error *err)
{
    return te_error_set(err, TE_ERR_INVALID,
                        "Cannot %s '%s': it is read-only (derived from the Common Name of the "
                        "device certificate). Create a certificate with `tedge cert create` "
                        "instead.", verb, ref->name);
}

int cfg_set(struct cfg *c, const char *key, const char *value, struct te_error *err)
{
    struct cfg_key_ref ref;
    struct toml_value v = {.type = TOML_STRING, .str = value};
    uint16_t port;
    int r;

    CHECK_ARG(c != NULL && key != NULL, TE_ERR_INVALID);
    if ((r = cfg_key_resolve(key, &ref, err)) != TE_OK)
        return r;
    if (ref.def->flags & CFG_F_READONLY)
        return refuse_readonly(&ref, "set", err);
    if ((r = cfg_validate(ref.def, ref.name, value, err)) != TE_OK)
        return r;
    if (ref.def->type == CFG_BOOL) {
        v.type = TOML_BOOL;
        (void)cfg_parse_bool(value, &v.boolean);
    } else if (ref.def->type == CFG_PORT && cfg_parse_port(value, &port) == TE_OK) {
        v.type = TOML_INTEGER;
        v.integer = port;
    }
    if ((r = edit_file(c, ref.name, do_set, &v, true, err)) == TE_OK)
        log_debug("config set key=%s file=%s", ref.name, c->path);
    return r;
}

int cfg_unset(struct cfg *c, const char *key, struct te_error *err)
{
    struct cfg_key_ref ref;
    int r;

    CHECK_ARG(c != NULL && key != NULL, TE_ERR_INVALID);
    if ((r = cfg_key_resolve(key, &ref, err)) != TE_OK)
        return r;
    if (ref.def->flags & CFG_F_READONLY)
        return refuse_readonly(&ref, "unset", err);
    if ((r = edit_file(c, ref.name, do_unset, NULL, false, err)) == TE_OK)
        log_debug("config unset key=%s file=%s", ref.name, c->path);
    return r;
}

/* Profile names of one cloud: tables under <cloud>.profiles in the file, then
 * TEDGE_<CLOUD>_PROFILES_<NAME>_<KEY> variables (names lower-cased, like upstream). */
static size_t find_profiles(const struct cfg *c, const char *cloud,
                            char names[][CFG_PROFILE_MAX], size_t max)
{
    const char *parts[2] = {cloud, "profiles"};
    const struct toml_value *t = c->doc ? toml_get(c->doc, parts, 2) : NULL;
    char prefix[64], key[CFG_KEY_MAX];
    struct cfg_key_ref ref;
    size_t count = 0, cl = strlen(cloud), plen;

    for (size_t i = 0; t != NULL && t->type == TOML_TABLE && i < t->n_items && count < max; i++) {
        snprintf(key, sizeof(key), "%s.profiles.%s.url", cloud, t->items[i]->key);
        if (t->items[i]->type == TOML_TABLE && cfg_key_resolve(key, &ref, NULL) == TE_OK)
            snprintf(names[count++], CFG_PROFILE_MAX, "%s", ref.profile);
    }
    snprintf(prefix, sizeof(prefix), "TEDGE_%s_PROFILES_", cloud);
    plen = strlen(prefix);
    for (char **e = environ; e != NULL && *e != NULL && count < max; e++) {
        const char *rest = *e + plen, *eq = strchr(*e, '=');
        size_t best = 0, rlen;
        if (eq == NULL || strncasecmp(*e, prefix, plen) != 0 || eq <= rest || eq[1] == '\0')
            continue;
        rlen = (size_t)(eq - rest);
        /* The longest key suffix that ends the variable name leaves the profile name. */
        for (size_t k = 0; k < cfg_key_count(); k++) {
            const struct cfg_key_def *d = cfg_key_at(k);
            char suffix[CFG_KEY_MAX];
            size_t sl;
            if (!(d->flags & CFG_F_CLOUD) || strncmp(d->name, cloud, cl) != 0 || d->name[cl] != '.')
                continue;
            cfg_env_name(d->name + cl + 1, suffix, sizeof(suffix));
            memmove(suffix, suffix + strlen(CFG_ENV_PREFIX), strlen(suffix) - strlen(CFG_ENV_PREFIX) + 1);
            sl = strlen(suffix);
            if (sl + 1 < rlen && sl > best && rest[rlen - sl - 1] == '_' &&
                strncasecmp(rest + rlen - sl, suffix, sl) == 0)
                best = sl;
        }
        if (best == 0 || rlen - best - 1 >= CFG_PROFILE_MAX)
            continue;
        char name[CFG_PROFILE_MAX];
        size_t nl = rlen - best - 1;
        bool dup = false;
        for (size_t i = 0; i < nl; i++)
            name[i] = (char)tolower((unsigned char)rest[i]);
        name[nl] = '\0';
        snprintf(key, sizeof(key), "%s.profiles.%s.url", cloud, name);
        for (size_t i = 0; i < count; i++)
            dup = dup || strcmp(names[i], name) == 0;
        if (!dup && cfg_key_resolve(key, &ref, NULL) == TE_OK)
            snprintf(names[count++], CFG_PROFILE_MAX, "%s", name);
    }
    return count;
}

int cfg_foreach_key(const struct cfg *c, int (*fn)(const char *key, const struct cfg_key_def *def,
                                                   void *ctx), void *ctx)
{
    char names[CFG_MAX_PROFILES][CFG_PROFILE_MAX];
    int r;

    CHECK_ARG(c != NULL && fn != NULL, TE_ERR_INVALID);
    for (size_t i = 0; i < cfg_key_count(); i++)
        if ((r = fn(cfg_key_at(i)->name, cfg_key_at(i), ctx)) != TE_OK)
            return r;
    for (size_t ci = 0; ci < sizeof(clouds) / sizeof(clouds[0]); ci++) {
        size_t np = find_profiles(c, clouds[ci], names, CFG_MAX_PROFILES), cl = strlen(clouds[ci]);
        for (size_t p = 0; p < np; p++) {
            for (size_t i = 0; i < cfg_key_count(); i++) {
                const struct cfg_key_def *d = cfg_key_at(i);
                char key[CFG_KEY_MAX];
                if (!(d->flags & CFG_F_CLOUD) || strncmp(d->name, clouds[ci], cl) != 0 ||
                    d->name[cl] != '.')
                    continue;
                snprintf(key, sizeof(key), "%s.profiles.%s.%s", clouds[ci], names[p],
                         d->name + cl + 1);
                if ((r = fn(key, d, ctx)) != TE_OK)
                    return r;
            }
        }
    }
    return TE_OK;
}
