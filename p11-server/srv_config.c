/* tedge.toml for the daemon (see srv_config.h) through the common config model: loaded once,
 * lazily, so that a broken file is reported (file:line:col) only when a value had to come from it. */
#include "p11-server/srv_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

struct srv_config {
    char *dir;
    bool loaded;
    int load_rc;                 /* result of cfg_load */
    struct te_error load_err;
    struct cfg *cfg;
    char *path;                  /* <dir>/tedge.toml, for messages */
    bool exists;
};

int srv_config_new(const char *config_dir, struct srv_config **out, struct te_error *err)
{
    struct srv_config *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (c == NULL || (c->dir = strdup(config_dir)) == NULL ||
        asprintf(&c->path, "%s/%s", config_dir, CFG_FILE_NAME) < 0) {
        if (c != NULL)
            free(c->dir);
        free(c);
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory while reading the configuration.");
    }
    *out = c;
    return TE_OK;
}

void srv_config_free(struct srv_config *c)
{
    if (c == NULL)
        return;
    cfg_free(c->cfg);
    free(c->dir);
    free(c->path);
    free(c);
}

const char *srv_config_path(const struct srv_config *c)
{
    return c->cfg != NULL ? cfg_file_path(c->cfg) : c->path;
}

bool srv_config_exists(const struct srv_config *c) { return c->exists; }

static int config_load(struct srv_config *c)
{
    struct te_error cause = {0};

    c->loaded = true;
    c->load_rc = cfg_load(c->dir, &c->cfg, &cause);
    if (c->load_rc != TE_OK) {
        c->exists = true; /* only a file that exists can fail to parse */
        /* cause names the file, and line:col for a syntax error */
        c->load_rc = te_error_set(&c->load_err, TE_ERR_CONFIG, "Failed to read the "
                                  "configuration: %s", te_error_message(&cause));
    } else {
        c->exists = cfg_file_exists(c->cfg);
    }
    return c->load_rc;
}

int srv_config_get(struct srv_config *c, const char *key, char **out, struct te_error *err)
{
    struct cfg_value v = {0};
    int r;

    *out = NULL;
    if (!c->loaded)
        config_load(c);
    if (c->load_rc != TE_OK) {
        if (err != NULL)
            *err = c->load_err;
        return c->load_rc;
    }
    r = cfg_get(c->cfg, key, &v, err);
    if (r == TE_ERR_NOT_FOUND)
        return TE_OK; /* not set and no default */
    if (r != TE_OK) {
        /* an invalid value in the file: keep cfg's message, which names where it is */
        if (err != NULL)
            err->code = TE_ERR_CONFIG;
        return TE_ERR_CONFIG;
    }
    /* The daemon applies the environment and its defaults itself, in its own order. */
    if (v.source == CFG_SRC_FILE && v.value != NULL && v.value[0] != '\0') {
        *out = v.value;
        v.value = NULL;
    }
    cfg_value_clear(&v);
    return TE_OK;
}
