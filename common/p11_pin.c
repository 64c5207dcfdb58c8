/* Login and PIN rules: log in only when the token requires it; a PIN that differs from the one
 * the token is logged in with is checked for real (log out, log in); wrong PINs are kept from
 * locking the token (refused PINs are never sent again, a cooldown after each refusal, no
 * untried PIN once the token counts failures); PINs are salted hashes here and wiped after use. */
#include "common/p11_internal.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/sha256.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"

static void pin_hash(const struct p11_ctx *ctx, const char *pin, uint8_t out[P11_HASH_LEN])
{
    mbedtls_sha256_context h;
    /* A domain byte keeps "no PIN" (protected authentication path) apart from "". */
    unsigned char tag = pin != NULL ? 1 : 0;

    mbedtls_sha256_init(&h);
    mbedtls_sha256_starts_ret(&h, 0);
    mbedtls_sha256_update_ret(&h, ctx->salt, sizeof(ctx->salt));
    mbedtls_sha256_update_ret(&h, &tag, 1);
    if (pin != NULL)
        mbedtls_sha256_update_ret(&h, (const unsigned char *)pin, strlen(pin));
    mbedtls_sha256_finish_ret(&h, out);
    mbedtls_sha256_free(&h);
}

static bool hash_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;
    for (size_t i = 0; i < P11_HASH_LEN; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

static bool refused_before(const struct p11_token *tok, const uint8_t *hash)
{
    for (unsigned i = 0; i < tok->nfailed; i++)
        if (hash_equal(tok->failed[i], hash))
            return true;
    return false;
}

/* A PIN the token accepted in this process: the one PIN that is tried whatever the counters. */
static bool proven(const struct p11_token *tok, const uint8_t *hash)
{
    return tok->has_proven && hash_equal(tok->proven_hash, hash);
}

void p11_login_lost(struct p11_ctx *ctx, struct p11_token *tok)
{
    tok->logged_in = false;
    te_free_secret(tok->login_pin);
    tok->login_pin = NULL;
    te_wipe(tok->login_hash, sizeof(tok->login_hash));
    /* Private objects may get new handles after a new login. */
    p11_keys_forget(ctx, tok);
}

static int login_succeeded(struct p11_token *tok, const char *pin, const uint8_t *hash,
                           struct te_error *err)
{
    char *copy = NULL;

    if (pin != NULL && (copy = strdup(pin)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    te_free_secret(tok->login_pin);
    tok->login_pin = copy;
    memcpy(tok->login_hash, hash, P11_HASH_LEN);
    memcpy(tok->proven_hash, hash, P11_HASH_LEN);
    tok->has_proven = true;
    tok->logged_in = true;
    return TE_OK;
}

/* Tokens lock after a few wrong PINs: this one is never sent again, and the cooldown starts. */
static void remember_refused(struct p11_token *tok, const uint8_t *hash)
{
    int64_t now = te_monotonic_ms();

    memcpy(tok->failed[tok->failed_next], hash, P11_HASH_LEN);
    tok->failed_next = (tok->failed_next + 1) % P11_FAILED_PINS;
    if (tok->nfailed < P11_FAILED_PINS)
        tok->nfailed++;
    if (proven(tok, hash)) {
        /* The token's PIN was changed: what worked before is wrong now. */
        tok->has_proven = false;
        te_wipe(tok->proven_hash, sizeof(tok->proven_hash));
    }
    tok->refused_at_ms = now != 0 ? now : 1;
}

/* Where the PIN came from, as the subject of a sentence ("... is incorrect"). */
static const char *pin_words(const struct p11_ctx *ctx, enum p11_pin_origin o)
{
    switch (o) {
    case P11_PIN_URI: return "the PIN in the URI's pin-value";
    case P11_PIN_SOURCE: return "the PIN in the URI's pin-source file";
    case P11_PIN_CALLER: return "the PIN given for the key (device.key_pin or the request's PIN)";
    case P11_PIN_DEFAULT:
        return ctx->default_pin_name ? ctx->default_pin_name
                                     : "the configured PIN (device.cryptoki.pin)";
    case P11_PIN_NONE: break;
    }
    return "the PIN entered on the token's PIN pad";
}

/* The token's PIN counters in plain words, from freshly read token flags. */
static const char *pin_flags_words(struct p11_ctx *ctx, struct p11_token *tok)
{
    CK_TOKEN_INFO ti;

    if (ctx->fn->C_GetTokenInfo(tok->slot, &ti) == CKR_OK)
        tok->info.flags = ti.flags;
    if (tok->info.flags & CKF_USER_PIN_LOCKED)
        return " The PIN is now locked: unlock it with the SO PIN.";
    if (tok->info.flags & CKF_USER_PIN_FINAL_TRY)
        return " One more wrong PIN will lock the token.";
    if (tok->info.flags & CKF_USER_PIN_COUNT_LOW)
        return " The token has counted wrong PINs; a few more will lock it.";
    return "";
}

static int refused_before_error(struct p11_ctx *ctx, struct p11_token *tok,
                                const struct p11_request *req, struct te_error *err)
{
    return te_error_set_ckr(err, TE_ERR_PIN_INCORRECT, CKR_PIN_INCORRECT, false,
                            "Token '%s' refused %s before (CKR_PIN_INCORRECT); it is not sent "
                            "again so that the token does not lock. Use the right PIN.",
                            tok->label, pin_words(ctx, req->pin_origin));
}

/* The last word before a PIN that the token never accepted here goes to C_Login: called with
 * the lock held, right before the call, so that what other callers did meanwhile counts. */
static int may_try_pin(struct p11_ctx *ctx, struct p11_token *tok, const struct p11_request *req,
                       const uint8_t *hash, struct te_error *err)
{
    int64_t since = te_monotonic_ms() - tok->refused_at_ms;
    int64_t cooldown_ms = ctx->pin_cooldown_ms;
    const char *flag;
    CK_TOKEN_INFO ti;
    CK_RV rv;

    /* A peer's PIN is held back by the cooldown and the token's counter; the operator's own
     * (the daemon's configured PIN, or any PIN in module mode) only at the final try. */
    bool from_peer = ctx->requests_from_peers && req->pin_origin != P11_PIN_DEFAULT &&
                     req->pin_origin != P11_PIN_SOURCE;
    CK_FLAGS hold_back = from_peer ? (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY)
                                   : CKF_USER_PIN_FINAL_TRY;

    if (refused_before(tok, hash))
        return refused_before_error(ctx, tok, req, err);
    if (proven(tok, hash))
        return TE_OK;
    /* None of these refusals carries a CKR_*: the token was not asked. */
    if (from_peer && tok->refused_at_ms != 0 && since < cooldown_ms) {
        te_error_set(err, TE_ERR_BUSY,
                     "Token '%s' refused a wrong PIN %lld s ago; so that wrong PINs cannot lock "
                     "it, %s is not tried for another %lld s, because it has not worked here "
                     "before. Try again then, with the right PIN.", tok->label,
                     (long long)(since / 1000), pin_words(ctx, req->pin_origin),
                     (long long)((cooldown_ms - since + 999) / 1000));
        err->retryable = true;
        return TE_ERR_BUSY;
    }
    /* The token's own counters, as they are now: another process may have failed a login. */
    if ((rv = ctx->fn->C_GetTokenInfo(tok->slot, &ti)) != CKR_OK)
        return p11_rv_error(err, rv, "Reading the PIN state of token '%s' failed", tok->label);
    tok->info.flags = ti.flags;
    if (ti.flags & CKF_USER_PIN_LOCKED)
        return te_error_set(err, TE_ERR_PIN_LOCKED,
                            "Token '%s' reports that its PIN is locked (CKF_USER_PIN_LOCKED), so "
                            "%s was not tried: unlock the PIN with the SO PIN.", tok->label,
                            pin_words(ctx, req->pin_origin));
    if (ti.flags & hold_back) {
        flag = (ti.flags & CKF_USER_PIN_FINAL_TRY) ? "CKF_USER_PIN_FINAL_TRY"
                                                   : "CKF_USER_PIN_COUNT_LOW";
        log_info("token '%s' counts wrong PINs (%s): a PIN that has not worked here is not tried",
                 tok->label, flag);
        te_error_set(err, TE_ERR_PERMISSION,
                     "Token '%s' has counted wrong PINs (%s), so %s, which has not worked here "
                     "before, was not tried: one more wrong PIN could lock the token. Log in once "
                     "with the right PIN using the token's own tool (for example pkcs11-tool "
                     "--login --test), which resets the count, then try again.", tok->label, flag,
                     pin_words(ctx, req->pin_origin));
        /* Retrying helps once someone has logged in with the right PIN. */
        err->retryable = true;
        return TE_ERR_PERMISSION;
    }
    return TE_OK;
}

static int login_failed(struct p11_ctx *ctx, struct p11_token *tok, CK_RV rv,
                        const struct p11_request *req, const uint8_t *hash, struct te_error *err)
{
    const char *who = pin_words(ctx, req->pin_origin);

    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID ||
        rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_EXPIRED)
        remember_refused(tok, hash);
    if (rv == CKR_PIN_INCORRECT && req->pin_origin == P11_PIN_DEFAULT &&
        ctx->default_pin_name != NULL)
        log_error("Logging in to token '%s' failed: %s is incorrect (CKR_PIN_INCORRECT); correct "
                  "it and restart the service", tok->label, who);
    if (rv == CKR_PIN_INCORRECT)
        return te_error_set_ckr(err, TE_ERR_PIN_INCORRECT, rv, false,
                                "Logging in to token '%s' failed: %s is incorrect "
                                "(CKR_PIN_INCORRECT).%s Use the right PIN.", tok->label, who,
                                pin_flags_words(ctx, tok));
    if (rv == CKR_PIN_LOCKED)
        return te_error_set_ckr(err, TE_ERR_PIN_LOCKED, rv, false,
                                "Logging in to token '%s' failed: the PIN is locked: unlock it "
                                "with the SO PIN (CKR_PIN_LOCKED).", tok->label);
    return p11_rv_error(err, rv, "Logging in to token '%s' failed", tok->label);
}

static CK_RV do_login(struct p11_ctx *ctx, CK_SESSION_HANDLE s, const char *pin)
{
    ctx->logins++;
    return ctx->fn->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, pin ? strlen(pin) : 0);
}

/* The token is logged in, but with another PIN (or one we do not know): log out and in with
 * this one, holding everyone else off; on failure log back in with the PIN that worked. */
static int check_other_pin(struct p11_ctx *ctx, struct p11_token *tok,
                           const struct p11_request *req, const uint8_t *hash,
                           struct te_error *err)
{
    CK_SESSION_HANDLE s;
    CK_RV rv, rv_logout;
    int ret;

    if ((ret = p11_token_exclusive_begin(ctx, tok)) != TE_OK)
        return ret;
    /* Another caller may have logged in with this very PIN while we waited. */
    if (tok->logged_in && hash_equal(hash, tok->login_hash)) {
        ret = TE_OK;
        goto exit;
    }
    if ((ret = may_try_pin(ctx, tok, req, hash, err)) != TE_OK)
        goto exit;
    if ((ret = p11_session_for_owner(ctx, tok, &s, err)) != TE_OK)
        goto exit;
    rv_logout = ctx->fn->C_Logout(s);
    log_debug("checking a different PIN for token '%s' (logout: %s)", tok->label,
              p11_rv_name(rv_logout));
    /* Handles of private objects may change across a logout. */
    p11_keys_forget(ctx, tok);
    rv = do_login(ctx, s, req->pin);
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
        ret = login_succeeded(tok, req->pin, hash, err);
        goto exit;
    }
    ret = login_failed(ctx, tok, rv, req, hash, err);
    if (tok->login_pin == NULL || do_login(ctx, s, tok->login_pin) != CKR_OK) {
        log_warn("token '%s' is logged out after a refused PIN", tok->label);
        p11_login_lost(ctx, tok);
    }
exit:
    p11_token_exclusive_end(ctx, tok);
    return ret;
}

static int login_fresh(struct p11_ctx *ctx, struct p11_token *tok, const struct p11_request *req,
                       const uint8_t *hash, struct te_error *err)
{
    struct p11_session *s;
    CK_RV rv;
    int ret;

    if ((ret = p11_session_acquire(ctx, tok, &s, err)) != TE_OK)
        return ret;
    if (tok->logged_in) {
        /* Another caller logged in while we waited for a session. */
        p11_session_release(ctx, tok, s, false);
        return P11_RETRY;
    }
    if ((ret = may_try_pin(ctx, tok, req, hash, err)) != TE_OK) {
        p11_session_release(ctx, tok, s, false);
        return ret;
    }
    rv = do_login(ctx, s->handle, req->pin);
    p11_session_release(ctx, tok, s, rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED);
    if (rv == CKR_OK)
        return login_succeeded(tok, req->pin, hash, err);
    if (rv == CKR_USER_ALREADY_LOGGED_IN) {
        /* Logged in by someone we do not know about, so this PIN is unproven: check it. */
        tok->logged_in = true;
        te_wipe(tok->login_hash, sizeof(tok->login_hash));
        return check_other_pin(ctx, tok, req, hash, err);
    }
    return login_failed(ctx, tok, rv, req, hash, err);
}

int p11_login(struct p11_ctx *ctx, struct p11_token *tok, const struct p11_request *req,
              struct te_error *err)
{
    uint8_t hash[P11_HASH_LEN];
    int ret;

    if (!tok->login_required)
        return TE_OK;
    if (req->pin == NULL && !(tok->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH))
        return te_error_set(err, TE_ERR_PIN_REQUIRED,
                            "Token '%s' requires a PIN to use its keys, but none was given. "
                            "Give one with %s; there is no default PIN.", tok->label,
                            ctx->requests_from_peers
                                ? "the request's PIN (device.key_pin) or configure it on the "
                                  "server"
                                : "the URI's pin-source, the request's PIN (device.key_pin) or "
                                  "the configured PIN (device.cryptoki.pin)");
    /* An empty PIN is a wrong PIN on every token we know: it would only use up a try. */
    if (req->pin != NULL && req->pin[0] == '\0')
        return te_error_set(err, TE_ERR_INVALID,
                            "Token '%s' was not asked to log in: %s is empty, and an empty PIN "
                            "would only count as a wrong try. Give the token's PIN.", tok->label,
                            pin_words(ctx, req->pin_origin));
    pin_hash(ctx, req->pin, hash);
    if (tok->logged_in && hash_equal(hash, tok->login_hash))
        ret = TE_OK;
    else if (refused_before(tok, hash))
        ret = refused_before_error(ctx, tok, req, err);
    else if (tok->logged_in)
        ret = check_other_pin(ctx, tok, req, hash, err);
    else
        ret = login_fresh(ctx, tok, req, hash, err);
    te_wipe(hash, sizeof(hash));
    return ret;
}
