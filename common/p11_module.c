/* The PKCS#11 module: loading and initializing it through p11-kit (OS locking), the rate-limited
 * reload (C_Finalize + C_Initialize) that makes new tokens visible, shutdown, and status. */
#include "common/p11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/p11-kit.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/clock.h"
#include "common/rand.h"

static void ctx_free(struct p11_ctx *ctx)
{
    p11_keys_free(ctx);
    p11_tokens_free(ctx);
    p11_uri_free(ctx->scope);
    te_free_secret(ctx->default_pin);
    free(ctx->default_pin_name);
    free(ctx->module_path);
    te_wipe(ctx->salt, sizeof(ctx->salt));
    pthread_cond_destroy(&ctx->cond);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

static int load_module(struct p11_ctx *ctx, struct te_error *err)
{
    const char *why;
    CK_RV rv;

    /* Managed by p11-kit: it initializes the module with CKF_OS_LOCKING_OK. */
    ctx->fn = p11_kit_module_load(ctx->module_path, 0);
    if (ctx->fn == NULL) {
        why = p11_kit_message();
        return te_error_set(err, TE_ERR_CONFIG,
                            "Failed to load the PKCS#11 module '%s': %s. Check "
                            "device.cryptoki.module_path.", ctx->module_path,
                            why ? why : "unknown reason");
    }
    if ((rv = p11_kit_module_initialize(ctx->fn)) != CKR_OK) {
        p11_kit_module_release(ctx->fn);
        ctx->fn = NULL;
        return p11_rv_error(err, rv, "Initializing the PKCS#11 module '%s' failed",
                            ctx->module_path);
    }
    return TE_OK;
}

int p11_open(const struct p11_config *cfg, struct p11_ctx **out, struct te_error *err)
{
    struct p11_ctx *ctx;
    int ret;

    CHECK_ARG(cfg != NULL && out != NULL, TE_ERR_INVALID);
    te_error_clear(err);
    if (cfg->module_path == NULL || cfg->module_path[0] == '\0')
        return te_error_set(err, TE_ERR_CONFIG,
                            "No PKCS#11 module is configured: set device.cryptoki.module_path.");
    if (cfg->default_pin != NULL && strlen(cfg->default_pin) > P11_PIN_MAX)
        return te_error_set(err, TE_ERR_CONFIG, "The configured PIN is longer than %d characters.",
                            P11_PIN_MAX);
    if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    pthread_mutex_init(&ctx->lock, NULL);
    pthread_cond_init(&ctx->cond, NULL);
    ctx->max_sessions = cfg->max_sessions ? cfg->max_sessions : P11_DEFAULT_SESSIONS;
    if (ctx->max_sessions > P11_MAX_SESSIONS_LIMIT)
        ctx->max_sessions = P11_MAX_SESSIONS_LIMIT;
    ctx->reload_interval_s = cfg->reload_interval_s ? cfg->reload_interval_s
                                                    : P11_RELOAD_INTERVAL_S;
    ctx->pin_cooldown_ms = cfg->pin_cooldown_ms ? cfg->pin_cooldown_ms : P11_PIN_COOLDOWN_MS;
    ctx->requests_from_peers = cfg->requests_from_peers;
    ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    if ((ctx->module_path = strdup(cfg->module_path)) == NULL ||
        (cfg->default_pin != NULL && (ctx->default_pin = strdup(cfg->default_pin)) == NULL) ||
        (cfg->default_pin_name != NULL &&
         (ctx->default_pin_name = strdup(cfg->default_pin_name)) == NULL))
        goto fail;
    te_error_clear(err);
    if (cfg->scope_uri != NULL && cfg->scope_uri[0] != '\0' &&
        (ret = p11_uri_parse(cfg->scope_uri, &ctx->scope, err)) != TE_OK)
        goto fail;
    if (te_random(NULL, ctx->salt, sizeof(ctx->salt)) != 0) {
        ret = te_error_set(err, TE_ERR_INTERNAL,
                           "The kernel gave no random bytes for the PIN salt.");
        goto fail;
    }
    if ((ret = load_module(ctx, err)) != TE_OK)
        goto fail;
    log_info("loaded PKCS#11 module '%s'", ctx->module_path);
    *out = ctx;
    return TE_OK;
fail:
    ctx_free(ctx);
    return ret;
}

void p11_close(struct p11_ctx *ctx)
{
    if (ctx == NULL)
        return;
    pthread_mutex_lock(&ctx->lock);
    if (ctx->fn != NULL) {
        for (struct p11_token *tok = ctx->tokens; tok != NULL; tok = tok->next)
            p11_sessions_close_idle(ctx, tok);
        p11_kit_module_finalize(ctx->fn);
        p11_kit_module_release(ctx->fn);
        ctx->fn = NULL;
    }
    pthread_mutex_unlock(&ctx->lock);
    ctx_free(ctx);
}

int p11_module_try_reload(struct p11_ctx *ctx, struct te_error *err)
{
    time_t now = (time_t)(te_monotonic_ms() / 1000);
    CK_RV rv;

    if (ctx->reloading) {
        /* Someone else is reloading: what they find is what we would find. */
        while (ctx->reloading)
            pthread_cond_wait(&ctx->cond, &ctx->lock);
        return TE_OK;
    }
    if (ctx->reloaded_once && now - ctx->last_reload < (time_t)ctx->reload_interval_s)
        return te_error_set(err, TE_ERR_BUSY,
                            "The PKCS#11 module was reloaded less than %u s ago.",
                            ctx->reload_interval_s);
    ctx->reloading = true;
    while (ctx->busy_total > 0)
        pthread_cond_wait(&ctx->cond, &ctx->lock);
    log_info("reloading PKCS#11 module '%s' to look for new tokens and keys", ctx->module_path);
    if (ctx->fn == NULL) {
        rv = load_module(ctx, err) == TE_OK ? CKR_OK : CKR_GENERAL_ERROR;
    } else {
        p11_kit_module_finalize(ctx->fn);
        p11_tokens_reset(ctx);
        if ((rv = p11_kit_module_initialize(ctx->fn)) != CKR_OK) {
            p11_kit_module_release(ctx->fn);
            ctx->fn = NULL;
            p11_rv_error(err, rv, "Initializing the PKCS#11 module '%s' again failed",
                         ctx->module_path);
        }
    }
    if (rv != CKR_OK)
        log_error("reloading PKCS#11 module '%s' failed: %s", ctx->module_path,
                  p11_rv_name(rv));
    ctx->reloads++;
    ctx->last_reload = (time_t)(te_monotonic_ms() / 1000);
    ctx->reloaded_once = true;
    ctx->reloading = false;
    pthread_cond_broadcast(&ctx->cond);
    return rv == CKR_OK ? TE_OK : TE_ERR_PKCS11;
}

int p11_get_status(struct p11_ctx *ctx, struct p11_status *out)
{
    struct p11_token *tok = NULL;
    P11KitUri *any = NULL;

    CHECK_ARG(ctx != NULL && out != NULL, TE_ERR_INVALID);
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&ctx->lock);
    if (ctx->scope == NULL)
        any = p11_kit_uri_new();
    if ((ctx->scope != NULL || any != NULL) &&
        p11_token_find(ctx, ctx->scope ? ctx->scope : any, &tok, NULL) == TE_OK) {
        out->token_present = true;
        snprintf(out->token_label, sizeof(out->token_label), "%s", tok->label);
    }
    out->last_success = ctx->last_success;
    out->signatures = ctx->signatures;
    out->errors = ctx->errors;
    out->logins = ctx->logins;
    out->reloads = ctx->reloads;
    snprintf(out->module_path, sizeof(out->module_path), "%s", ctx->module_path);
    pthread_mutex_unlock(&ctx->lock);
    if (any != NULL)
        p11_kit_uri_free(any);
    return TE_OK;
}
