/* From a request to a usable key: token lookup, login, key lookup, the module reload when a
 * token or key is missing (rate-limited), and recovery by error class, once per class. */
#include "common/p11_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

#define P11_RESOLVE_ROUNDS 8 /* state changes (drops, reloads) we follow before giving up */

enum recovery {
    REC_SESSION = 1u << 0,   /* the session is gone: a new one */
    REC_LOGIN = 1u << 1,     /* not logged in any more: log in again */
    REC_HANDLE = 1u << 2,    /* stale object handle: look the key up again */
    REC_TOKEN = 1u << 3,     /* device removed or failing: drop it, enumerate again */
};

static unsigned recovery_class(CK_RV rv)
{
    switch (rv) {
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_OPERATION_ACTIVE:
        return REC_SESSION;
    case CKR_USER_NOT_LOGGED_IN:
        return REC_LOGIN;
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
        return REC_HANDLE;
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SLOT_ID_INVALID:
    case CKR_DEVICE_ERROR:
        return REC_TOKEN;
    }
    return 0;
}

static int no_token_error(struct p11_ctx *ctx, const struct p11_request *req,
                          const struct te_error *cause, struct te_error *err)
{
    char why[TE_ERROR_MSG_MAX / 2] = "";

    if (cause->has_ckr)
        snprintf(why, sizeof(why), " (%s)", p11_rv_name(cause->ckr));
    te_error_set(err, TE_ERR_NO_TOKEN,
                 "No PKCS#11 token matching '%s' was found in module '%s'%s; the device may be "
                 "disconnected. Plug it in, or check the URI's token attributes.",
                 req->uri_str, ctx->module_path, why);
    err->retryable = true;
    if (cause->has_ckr) {
        err->has_ckr = true;
        err->ckr = cause->ckr;
    }
    return TE_ERR_NO_TOKEN;
}

static int no_key_error(const struct p11_request *req, const struct p11_token *tok,
                        struct te_error *err)
{
    return te_error_set(err, TE_ERR_NO_KEY,
                        "No private key matching '%s' was found on token '%s'. Check the URI's "
                        "object (label), id and type attributes, or list the keys of the token.",
                        req->uri_str, tok->label);
}

int p11_resolve(struct p11_ctx *ctx, const struct p11_request *req, struct p11_token **tok,
                struct p11_key *key, struct te_error *err)
{
    struct te_error cause = {0};
    bool reloaded = false;
    int ret = TE_ERR_INTERNAL;

    for (int round = 0; round < P11_RESOLVE_ROUNDS; round++) {
        te_error_clear(&cause);
        /* A key resolved before names its token: no slot enumeration on the signing path. */
        *tok = key != NULL ? p11_key_cached_token(ctx, req) : NULL;
        ret = *tok != NULL ? TE_OK : p11_token_find(ctx, req->uri, tok, &cause);
        if (ret == TE_ERR_NO_TOKEN) {
            /* A token created or plugged in after start: SoftHSM2 and some readers only show
             * it after C_Finalize + C_Initialize. */
            if (!reloaded && p11_module_try_reload(ctx, NULL) == TE_OK) {
                reloaded = true;
                continue;
            }
            return no_token_error(ctx, req, &cause, err);
        }
        if (ret != TE_OK) {
            *err = cause;
            return ret;
        }
        if ((ret = p11_login(ctx, *tok, req, err)) == P11_RETRY)
            continue;
        if (ret != TE_OK || key == NULL)
            return ret;
        ret = p11_key_find(ctx, req, *tok, key, err);
        if (ret == P11_RETRY)
            continue;
        if (ret == TE_ERR_NO_KEY) {
            if (!reloaded && p11_module_try_reload(ctx, NULL) == TE_OK) {
                reloaded = true;
                continue;
            }
            return no_key_error(req, *tok, err);
        }
        return ret;
    }
    *tok = NULL;
    return te_error_set(err, TE_ERR_BUSY,
                        "The token for '%s' kept changing while it was looked up; try again.",
                        req->uri_str);
}

/* Resets what the error says is stale; true when one more try can help and this class of
 * error was not recovered from yet in this operation. */
static bool recover(struct p11_ctx *ctx, const struct p11_request *req, struct p11_token *tok,
                    const struct te_error *err, unsigned *tried)
{
    unsigned cls = err->has_ckr ? recovery_class(err->ckr) : 0;

    if (cls == 0 || (*tried & cls))
        return false;
    *tried |= cls;
    log_info("recovering from %s for '%s'", p11_rv_name(err->ckr), req->uri_str);
    if (tok == NULL)
        return cls == REC_TOKEN;
    switch (cls) {
    case REC_SESSION: /* the session was closed when it was released */
        break;
    case REC_LOGIN:
        p11_login_lost(ctx, tok);
        break;
    case REC_HANDLE:
        p11_key_forget_uri(ctx, req->uri_str);
        break;
    case REC_TOKEN:
        if (tok->present)
            p11_token_drop(ctx, tok, p11_rv_name(err->ckr));
        break;
    }
    return true;
}

int p11_run(struct p11_ctx *ctx, const struct p11_keyref *ref, bool need_key, p11_op_fn op,
            void *arg, struct te_error *err)
{
    struct p11_request req;
    struct p11_token *tok = NULL;
    struct p11_key key;
    unsigned tried = 0;
    int ret;

    te_error_clear(err);
    /* Outside the lock: it may read a pin-source file; the scope and default PIN are fixed. */
    ret = p11_request_init(ctx, ref, &req, err);
    pthread_mutex_lock(&ctx->lock);
    if (ret != TE_OK)
        goto exit;
    for (int round = 0; round < P11_RESOLVE_ROUNDS; round++) {
        memset(&key, 0, sizeof(key));
        ret = p11_resolve(ctx, &req, &tok, need_key ? &key : NULL, err);
        if (ret == TE_OK)
            ret = op(ctx, &req, tok, need_key ? &key : NULL, arg, err);
        if (ret == P11_RETRY)
            continue;
        if (ret == TE_OK || !recover(ctx, &req, tok, err, &tried))
            break;
        te_error_clear(err);
    }
    if (ret == P11_RETRY)
        ret = te_error_set(err, TE_ERR_BUSY,
                           "The token for '%s' kept changing during the operation; try again.",
                           req.uri_str);
    p11_request_clear(&req);
exit:
    if (ret != TE_OK)
        ctx->errors++;
    pthread_mutex_unlock(&ctx->lock);
    return ret;
}
