/* The session pool of a token: persistent sessions handed to one caller at a time (callers wait
 * on the context's condition variable when all are busy), closing bad or stale sessions, and the
 * exclusive section a PIN check needs while it logs out and in. Called with ctx->lock held. */
#include "common/p11_internal.h"

#include "common/log.h"

/* A session we just opened tells us whether the token is still logged in for us: closing the
 * last session ends a login, and tokens may drop it on their own. */
static void check_login_state(struct p11_ctx *ctx, struct p11_token *tok, CK_SESSION_HANDLE h)
{
    CK_SESSION_INFO si;
    bool user;

    if (!tok->login_required || ctx->fn->C_GetSessionInfo(h, &si) != CKR_OK)
        return;
    user = si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS;
    if (tok->logged_in && !user) {
        log_info("token '%s' is no longer logged in; logging in again on next use", tok->label);
        p11_login_lost(ctx, tok);
    }
}

static struct p11_session *idle_session(struct p11_token *tok, unsigned max)
{
    for (unsigned i = 0; i < max; i++)
        if (tok->sessions[i].open && !tok->sessions[i].busy)
            return &tok->sessions[i];
    return NULL;
}

/* Opens one more session when the pool has room. NULL with *rv = CKR_OK when it is full. */
static struct p11_session *open_session(struct p11_ctx *ctx, struct p11_token *tok, CK_RV *rv)
{
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;

    *rv = CKR_OK;
    for (unsigned i = 0; i < ctx->max_sessions; i++) {
        struct p11_session *s = &tok->sessions[i];
        if (s->open)
            continue;
        /* Read-only is enough for signing and keeps us clear of SO sessions. */
        if ((*rv = ctx->fn->C_OpenSession(tok->slot, CKF_SERIAL_SESSION, NULL, NULL, &h)) != CKR_OK)
            return NULL;
        s->handle = h;
        s->gen = tok->gen;
        s->open = true;
        s->busy = false;
        check_login_state(ctx, tok, h);
        return s;
    }
    return NULL;
}

static void take(struct p11_ctx *ctx, struct p11_token *tok, struct p11_session *s)
{
    s->busy = true;
    tok->busy++;
    ctx->busy_total++;
}

int p11_session_acquire(struct p11_ctx *ctx, struct p11_token *tok, struct p11_session **out,
                        struct te_error *err)
{
    unsigned gen = tok->gen;
    struct p11_session *s;
    CK_RV rv;

    tok->users++;
    for (;;) {
        rv = CKR_OK;
        if (tok->gen != gen || !tok->present) {
            tok->users--;
            return P11_RETRY;
        }
        if (!ctx->reloading && !tok->exclusive) {
            if ((s = idle_session(tok, ctx->max_sessions)) == NULL)
                s = open_session(ctx, tok, &rv);
            if (s != NULL) {
                take(ctx, tok, s);
                tok->users--;
                *out = s;
                return TE_OK;
            }
            /* Out of sessions with none of ours to wait for: the token's limit is lower. */
            if (rv != CKR_OK && !(rv == CKR_SESSION_COUNT && tok->busy > 0)) {
                tok->users--;
                return p11_rv_error(err, rv, "Opening a session on token '%s' failed",
                                    tok->label);
            }
        }
        pthread_cond_wait(&ctx->cond, &ctx->lock);
    }
}

int p11_session_acquire_ready(struct p11_ctx *ctx, struct p11_token *tok,
                              const struct p11_key *key, struct p11_session **out,
                              struct te_error *err)
{
    int ret = p11_session_acquire(ctx, tok, out, err);

    /* While we waited, the login may have ended (a session showed it) or another caller's
     * PIN check logged out and in, which may give private keys new handles. */
    if (ret == TE_OK && ((tok->login_required && !tok->logged_in) ||
                         (key != NULL && key->key_epoch != tok->key_epoch))) {
        p11_session_release(ctx, tok, *out, false);
        return P11_RETRY;
    }
    return ret;
}

static bool other_session_open(const struct p11_ctx *ctx, const struct p11_token *tok)
{
    for (unsigned i = 0; i < ctx->max_sessions; i++)
        if (tok->sessions[i].open)
            return true;
    return false;
}

void p11_session_release(struct p11_ctx *ctx, struct p11_token *tok, struct p11_session *s,
                         bool bad)
{
    bool stale = s->gen != tok->gen || !tok->present;

    s->busy = false;
    tok->busy--;
    ctx->busy_total--;
    if (bad || stale) {
        /* Its handle may be gone already; closing is only tidying up. */
        ctx->fn->C_CloseSession(s->handle);
        s->open = false;
        /* Closing the application's last session ends its login (PKCS#11 5.6). */
        if (!stale && !other_session_open(ctx, tok) && tok->logged_in) {
            log_debug("closed the last session of token '%s'; its login ended", tok->label);
            p11_login_lost(ctx, tok);
        }
    }
    pthread_cond_broadcast(&ctx->cond);
}

int p11_token_exclusive_begin(struct p11_ctx *ctx, struct p11_token *tok)
{
    unsigned gen = tok->gen;

    tok->users++;
    while (tok->exclusive || ctx->reloading)
        pthread_cond_wait(&ctx->cond, &ctx->lock);
    tok->exclusive = true;
    while (tok->busy > 0)
        pthread_cond_wait(&ctx->cond, &ctx->lock);
    tok->users--;
    if (tok->gen != gen || !tok->present) {
        p11_token_exclusive_end(ctx, tok);
        return P11_RETRY;
    }
    return TE_OK;
}

void p11_token_exclusive_end(struct p11_ctx *ctx, struct p11_token *tok)
{
    tok->exclusive = false;
    pthread_cond_broadcast(&ctx->cond);
}

int p11_session_for_owner(struct p11_ctx *ctx, struct p11_token *tok, CK_SESSION_HANDLE *out,
                          struct te_error *err)
{
    struct p11_session *s = idle_session(tok, ctx->max_sessions);
    CK_RV rv = CKR_OK;

    if (s == NULL)
        s = open_session(ctx, tok, &rv);
    if (s == NULL)
        return p11_rv_error(err, rv != CKR_OK ? rv : CKR_SESSION_COUNT,
                            "Opening a session on token '%s' failed", tok->label);
    *out = s->handle;
    return TE_OK;
}

void p11_sessions_close_idle(struct p11_ctx *ctx, struct p11_token *tok)
{
    for (unsigned i = 0; i < ctx->max_sessions; i++) {
        struct p11_session *s = &tok->sessions[i];
        if (s->open && !s->busy) {
            ctx->fn->C_CloseSession(s->handle);
            s->open = false;
        }
    }
}
