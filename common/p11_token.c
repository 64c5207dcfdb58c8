/* Slots and tokens: enumeration (uninitialized slots skipped), matching a URI's token, slot
 * and module attributes, per-token state by identity, drops after device errors, mechanisms. */
#include "common/p11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"

/* Slots with a token, at most P11_MAX_SLOTS. */
static CK_RV slot_list(struct p11_ctx *ctx, CK_SLOT_ID *slots, CK_ULONG *n)
{
    CK_ULONG count = 0;
    CK_RV rv = ctx->fn->C_GetSlotList(CK_TRUE, NULL, &count);

    if (rv != CKR_OK)
        return rv;
    if (count > P11_MAX_SLOTS)
        count = P11_MAX_SLOTS;
    *n = count;
    if (count == 0)
        return CKR_OK;
    rv = ctx->fn->C_GetSlotList(CK_TRUE, slots, n);
    /* A token appeared between the two calls: take what fits. */
    if (rv == CKR_BUFFER_TOO_SMALL) {
        *n = P11_MAX_SLOTS;
        rv = ctx->fn->C_GetSlotList(CK_TRUE, slots, n);
    }
    return rv;
}

static bool module_info_matches(struct p11_ctx *ctx, P11KitUri *uri)
{
    CK_INFO *want = p11_kit_uri_get_module_info(uri), info;

    if (want->manufacturerID[0] == '\0' && want->libraryDescription[0] == '\0' &&
        want->libraryVersion.major == (CK_BYTE)-1)
        return true;
    if (ctx->fn->C_GetInfo(&info) != CKR_OK)
        return false;
    return p11_kit_uri_match_module_info(uri, &info) == 1;
}

static bool slot_matches(struct p11_ctx *ctx, P11KitUri *uri, CK_SLOT_ID slot)
{
    CK_SLOT_INFO *want = p11_kit_uri_get_slot_info(uri), info;
    CK_SLOT_ID want_id = p11_kit_uri_get_slot_id(uri);

    if (want_id != (CK_SLOT_ID)-1 && want_id != slot)
        return false;
    if (want->slotDescription[0] == '\0' && want->manufacturerID[0] == '\0')
        return true;
    if (ctx->fn->C_GetSlotInfo(slot, &info) != CKR_OK)
        return false;
    return p11_kit_uri_match_slot_info(uri, &info) == 1;
}

static bool same_identity(const CK_TOKEN_INFO *a, const CK_TOKEN_INFO *b)
{
    return memcmp(a->label, b->label, sizeof(a->label)) == 0 &&
           memcmp(a->serialNumber, b->serialNumber, sizeof(a->serialNumber)) == 0 &&
           memcmp(a->manufacturerID, b->manufacturerID, sizeof(a->manufacturerID)) == 0 &&
           memcmp(a->model, b->model, sizeof(a->model)) == 0;
}

static void token_free(struct p11_token *tok)
{
    te_free_secret(tok->login_pin);
    free(tok->sessions);
    free(tok);
}

/* Makes room for one more remembered token by forgetting one that is gone. */
static void evict_absent_token(struct p11_ctx *ctx)
{
    for (struct p11_token **pp = &ctx->tokens; *pp != NULL; pp = &(*pp)->next) {
        struct p11_token *t = *pp;
        if (!t->present && t->busy == 0 && t->users == 0) {
            p11_keys_forget(ctx, t);
            *pp = t->next;
            token_free(t);
            ctx->ntokens--;
            return;
        }
    }
}

/* The state for the token in slot with info ti, created on first sight. */
static struct p11_token *token_state(struct p11_ctx *ctx, CK_SLOT_ID slot, const CK_TOKEN_INFO *ti)
{
    struct p11_token *tok;

    for (tok = ctx->tokens; tok != NULL; tok = tok->next)
        if (same_identity(&tok->info, ti))
            break;
    if (tok == NULL) {
        if (ctx->ntokens >= P11_MAX_TOKENS)
            evict_absent_token(ctx);
        if ((tok = calloc(1, sizeof(*tok))) == NULL)
            return NULL;
        if ((tok->sessions = calloc(ctx->max_sessions, sizeof(*tok->sessions))) == NULL) {
            free(tok);
            return NULL;
        }
        tok->next = ctx->tokens;
        ctx->tokens = tok;
        ctx->ntokens++;
    } else if (tok->present && tok->slot != slot) {
        p11_token_drop(ctx, tok, "the token moved to another slot");
    }
    tok->info = *ti;
    tok->slot = slot;
    tok->present = true;
    tok->login_required = (ti->flags & CKF_LOGIN_REQUIRED) != 0;
    p11_trim(ti->label, sizeof(ti->label), tok->label);
    p11_trim(ti->serialNumber, sizeof(ti->serialNumber), tok->serial);
    return tok;
}

int p11_token_find(struct p11_ctx *ctx, P11KitUri *uri, struct p11_token **out,
                   struct te_error *err)
{
    CK_SLOT_ID slots[P11_MAX_SLOTS];
    CK_ULONG n = 0;
    CK_RV rv;

    if (ctx->fn == NULL)
        return te_error_set_ckr(err, TE_ERR_NO_TOKEN, CKR_CRYPTOKI_NOT_INITIALIZED, true,
                                "The PKCS#11 module '%s' is not initialized.", ctx->module_path);
    if ((rv = slot_list(ctx, slots, &n)) != CKR_OK)
        return p11_rv_error(err, rv, "Listing the slots of the PKCS#11 module '%s' failed",
                            ctx->module_path);
    if (module_info_matches(ctx, uri)) {
        for (CK_ULONG i = 0; i < n; i++) {
            CK_TOKEN_INFO ti;
            if (ctx->fn->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
                continue; /* removed since the slot list was read */
            if (!(ti.flags & CKF_TOKEN_INITIALIZED) || !slot_matches(ctx, uri, slots[i]) ||
                p11_kit_uri_match_token_info(uri, &ti) != 1)
                continue;
            if ((*out = token_state(ctx, slots[i], &ti)) == NULL)
                return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
            return TE_OK;
        }
    }
    return te_error_set(err, TE_ERR_NO_TOKEN, "No token matches.");
}

void p11_token_drop(struct p11_ctx *ctx, struct p11_token *tok, const char *why)
{
    log_warn("dropping sessions and key handles of token '%s' (serial %s): %s", tok->label,
             tok->serial, why);
    p11_sessions_close_idle(ctx, tok);
    tok->present = false;
    tok->gen++;
    tok->mechs_known = false;
    p11_login_lost(ctx, tok);
}

void p11_tokens_reset(struct p11_ctx *ctx)
{
    for (struct p11_token *tok = ctx->tokens; tok != NULL; tok = tok->next) {
        /* The module was finalized: every session is gone already. */
        memset(tok->sessions, 0, ctx->max_sessions * sizeof(*tok->sessions));
        tok->busy = 0;
        tok->present = false;
        tok->gen++;
        tok->mechs_known = false;
        p11_login_lost(ctx, tok);
    }
}

void p11_tokens_free(struct p11_ctx *ctx)
{
    struct p11_token *tok = ctx->tokens, *next;

    for (; tok != NULL; tok = next) {
        next = tok->next;
        token_free(tok);
    }
    ctx->tokens = NULL;
    ctx->ntokens = 0;
}

/* The schemes a mechanism gives: bit (1u << scheme) for the three hashes. */
static unsigned mech_schemes(CK_MECHANISM_TYPE m)
{
    enum sig_alg alg;

    if (m == CKM_ECDSA)
        alg = SIG_ALG_ECDSA;
    else if (m == CKM_RSA_PKCS)
        alg = SIG_ALG_RSA_PKCS1;
    else if (m == CKM_RSA_PKCS_PSS)
        alg = SIG_ALG_RSA_PSS;
    else
        return 0;
    return (1u << sig_scheme_make(alg, SIG_HASH_SHA256)) |
           (1u << sig_scheme_make(alg, SIG_HASH_SHA384)) |
           (1u << sig_scheme_make(alg, SIG_HASH_SHA512));
}

unsigned p11_token_schemes(struct p11_ctx *ctx, struct p11_token *tok)
{
    static const CK_MECHANISM_TYPE wanted[] = {CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS};
    CK_MECHANISM_TYPE *list = NULL;
    CK_ULONG n = 0;
    unsigned schemes = 0;

    if (tok->mechs_known)
        return tok->mech_schemes;
    if (ctx->fn->C_GetMechanismList(tok->slot, NULL, &n) != CKR_OK || n == 0 ||
        (list = calloc(n, sizeof(*list))) == NULL ||
        ctx->fn->C_GetMechanismList(tok->slot, list, &n) != CKR_OK) {
        /* A module that cannot list its mechanisms: let the token decide at C_SignInit. */
        log_debug("token '%s' did not list its mechanisms; assuming all", tok->label);
        schemes = mech_schemes(CKM_ECDSA) | mech_schemes(CKM_RSA_PKCS) |
                  mech_schemes(CKM_RSA_PKCS_PSS);
        goto exit;
    }
    for (size_t w = 0; w < sizeof(wanted) / sizeof(wanted[0]); w++) {
        for (CK_ULONG i = 0; i < n; i++) {
            CK_MECHANISM_INFO mi;
            if (list[i] != wanted[w])
                continue;
            if (ctx->fn->C_GetMechanismInfo(tok->slot, wanted[w], &mi) == CKR_OK &&
                (mi.flags & CKF_SIGN))
                schemes |= mech_schemes(wanted[w]);
            break;
        }
    }
exit:
    free(list);
    tok->mech_schemes = schemes;
    tok->mechs_known = true;
    return schemes;
}

static void describe_info(CK_SLOT_ID slot, const CK_TOKEN_INFO *ti, struct p11_token_info *out)
{
    memset(out, 0, sizeof(*out));
    out->slot_id = slot;
    p11_trim(ti->label, sizeof(ti->label), out->label);
    p11_trim(ti->serialNumber, sizeof(ti->serialNumber), out->serial);
    p11_trim(ti->manufacturerID, sizeof(ti->manufacturerID), out->manufacturer);
    p11_trim(ti->model, sizeof(ti->model), out->model);
    out->flags = ti->flags;
    out->login_required = (ti->flags & CKF_LOGIN_REQUIRED) != 0;
    out->pin_count_low = (ti->flags & CKF_USER_PIN_COUNT_LOW) != 0;
    out->pin_final_try = (ti->flags & CKF_USER_PIN_FINAL_TRY) != 0;
    out->pin_locked = (ti->flags & CKF_USER_PIN_LOCKED) != 0;
    p11_uri_for_token(ti, out->uri, sizeof(out->uri));
}

int p11_list_tokens(struct p11_ctx *ctx, struct p11_token_info **out, size_t *count,
                    struct te_error *err)
{
    CK_SLOT_ID slots[P11_MAX_SLOTS];
    struct p11_token_info *list = NULL;
    CK_ULONG n = 0;
    size_t used = 0;
    CK_RV rv;
    int ret = TE_OK;

    CHECK_ARG(ctx != NULL && out != NULL && count != NULL, TE_ERR_INVALID);
    pthread_mutex_lock(&ctx->lock);
    if (ctx->fn == NULL) {
        ret = te_error_set(err, TE_ERR_PKCS11, "The PKCS#11 module '%s' is not initialized.",
                           ctx->module_path);
        goto exit;
    }
    if ((rv = slot_list(ctx, slots, &n)) != CKR_OK) {
        ret = p11_rv_error(err, rv, "Listing the slots of the PKCS#11 module '%s' failed",
                           ctx->module_path);
        goto exit;
    }
    if ((list = calloc(n ? n : 1, sizeof(*list))) == NULL) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
        goto exit;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (ctx->fn->C_GetTokenInfo(slots[i], &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        describe_info(slots[i], &ti, &list[used++]);
    }
    *out = list;
    *count = used;
    list = NULL;
exit:
    if (ret != TE_OK)
        ctx->errors++;
    pthread_mutex_unlock(&ctx->lock);
    free(list);
    return ret;
}
