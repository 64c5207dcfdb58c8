/* The request handlers: sign, key_info, public_key, list_tokens, list_keys, status and ping,
 * each a thin map from proto structs to common/p11.h calls and back. */
#include "p11-server/handlers.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/der.h"
#include "common/log.h"
#include "common/p11.h"

/* Copies a NUL-terminated string, cutting it to fit (labels are already bounded by p11.h). */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static struct p11_keyref keyref_of(const struct proto_request *req)
{
    struct p11_keyref ref = {
        .uri = req->has_uri ? req->uri : NULL,
        .pin = req->has_pin ? req->pin : NULL,
    };
    return ref;
}

static enum proto_curve curve_of(enum p11_curve c)
{
    switch (c) {
    case P11_CURVE_P256: return PROTO_CURVE_P256;
    case P11_CURVE_P384: return PROTO_CURVE_P384;
    case P11_CURVE_P521: return PROTO_CURVE_P521;
    case P11_CURVE_NONE:
    default: return PROTO_CURVE_NONE;
    }
}

static void key_info_to_proto(const struct p11_key_info *in, struct proto_key_info *out)
{
    memset(out, 0, sizeof(*out));
    out->type = in->type == P11_KEY_RSA ? PROTO_KEY_RSA
              : in->type == P11_KEY_EC  ? PROTO_KEY_EC
                                        : PROTO_KEY_UNKNOWN;
    out->bits = in->bits;
    out->curve = curve_of(in->curve);
    copy_str(out->label, sizeof(out->label), in->label);
    out->key_id_len = in->id_len <= sizeof(out->key_id) ? in->id_len : sizeof(out->key_id);
    memcpy(out->key_id, in->id, out->key_id_len);
    copy_str(out->token_label, sizeof(out->token_label), in->token_label);
    out->always_authenticate = in->always_authenticate;
    out->schemes = in->schemes;
    copy_str(out->uri, sizeof(out->uri), in->uri);
}

static void token_info_to_proto(const struct p11_token_info *in, struct proto_token_info *out)
{
    memset(out, 0, sizeof(*out));
    out->slot_id = in->slot_id;
    copy_str(out->label, sizeof(out->label), in->label);
    copy_str(out->serial, sizeof(out->serial), in->serial);
    copy_str(out->manufacturer, sizeof(out->manufacturer), in->manufacturer);
    copy_str(out->model, sizeof(out->model), in->model);
    out->flags = in->flags;
    out->login_required = in->login_required;
    out->pin_count_low = in->pin_count_low;
    out->pin_final_try = in->pin_final_try;
    out->pin_locked = in->pin_locked;
    copy_str(out->uri, sizeof(out->uri), in->uri);
}

/* A list longer than a reply may carry is cut, with a warning: the client sees the first ones. */
static size_t bounded_count(size_t count, const char *what)
{
    if (count <= PROTO_LIST_MAX)
        return count;
    log_warn("%zu %s found; replying with the first %d", count, what, PROTO_LIST_MAX);
    return PROTO_LIST_MAX;
}

int srv_handle_ping(struct srv_ctx *ctx, const struct proto_request *req,
                    struct proto_response *resp, struct te_error *e)
{
    (void)ctx;
    (void)req;
    (void)e;
    copy_str(resp->ping.server_version, sizeof(resp->ping.server_version), TEDGE_VERSION);
    resp->ping.versions = 1u << PROTO_VERSION;
    return TE_OK;
}

int srv_handle_key_info(struct srv_ctx *ctx, const struct proto_request *req,
                        struct proto_response *resp, struct te_error *e)
{
    struct p11_keyref ref = keyref_of(req);
    struct p11_key_info ki;
    int r;

    if ((r = p11_key_info(ctx->p11, &ref, &ki, e)) != TE_OK)
        return r;
    key_info_to_proto(&ki, &resp->key);
    return TE_OK;
}

int srv_handle_sign(struct srv_ctx *ctx, const struct proto_request *req,
                    struct proto_response *resp, struct te_error *e)
{
    struct p11_keyref ref = keyref_of(req);

    return p11_sign(ctx->p11, &ref, req->scheme, req->digest, req->digest_len, resp->signature,
                    sizeof(resp->signature), &resp->signature_len, e);
}

int srv_handle_public_key(struct srv_ctx *ctx, const struct proto_request *req,
                          struct proto_response *resp, struct te_error *e)
{
    struct p11_keyref ref = keyref_of(req);
    uint8_t *der = NULL;
    char *pem = NULL;
    size_t der_len = 0;
    int r;

    if ((r = p11_public_key(ctx->p11, &ref, &der, &der_len, e)) != TE_OK)
        goto exit;
    if ((r = der_to_pem("PUBLIC KEY", der, der_len, &pem)) != TE_OK) {
        te_error_set(e, r, "The public key could not be converted to PEM.");
        goto exit;
    }
    if (strlen(pem) > PROTO_PEM_MAX) {
        r = te_error_set(e, TE_ERR_TOO_LARGE, "The public key is too large for a reply (%zu bytes "
                         "of PEM).", strlen(pem));
        goto exit;
    }
    copy_str(resp->pem, sizeof(resp->pem), pem);
exit:
    free(der);
    free(pem);
    return r;
}

int srv_handle_list_tokens(struct srv_ctx *ctx, const struct proto_request *req,
                           struct proto_response *resp, struct te_error *e)
{
    struct p11_token_info *tokens = NULL;
    size_t count = 0;
    int r;

    (void)req;
    if ((r = p11_list_tokens(ctx->p11, &tokens, &count, e)) != TE_OK)
        goto exit;
    count = bounded_count(count, "tokens");
    if (count > 0 && (resp->tokens = calloc(count, sizeof(*resp->tokens))) == NULL) {
        r = te_error_set(e, TE_ERR_NOMEM, "Out of memory listing tokens.");
        goto exit;
    }
    for (size_t i = 0; i < count; i++)
        token_info_to_proto(&tokens[i], &resp->tokens[i]);
    resp->token_count = count;
exit:
    free(tokens);
    return r;
}

int srv_handle_list_keys(struct srv_ctx *ctx, const struct proto_request *req,
                         struct proto_response *resp, struct te_error *e)
{
    struct p11_keyref ref = keyref_of(req);
    struct p11_key_info *keys = NULL;
    size_t count = 0;
    int r;

    if ((r = p11_list_keys(ctx->p11, &ref, &keys, &count, e)) != TE_OK)
        goto exit;
    count = bounded_count(count, "keys");
    if (count > 0 && (resp->keys = calloc(count, sizeof(*resp->keys))) == NULL) {
        r = te_error_set(e, TE_ERR_NOMEM, "Out of memory listing keys.");
        goto exit;
    }
    for (size_t i = 0; i < count; i++)
        key_info_to_proto(&keys[i], &resp->keys[i]);
    resp->key_count = count;
exit:
    free(keys);
    return r;
}

int srv_handle_status(struct srv_ctx *ctx, const struct proto_request *req,
                      struct proto_response *resp, struct te_error *e)
{
    struct p11_status st;
    int r;

    (void)req;
    if ((r = p11_get_status(ctx->p11, &st)) != TE_OK)
        return te_error_set(e, r, "The token status is not available.");
    resp->status.token_present = st.token_present;
    copy_str(resp->status.token_label, sizeof(resp->status.token_label), st.token_label);
    resp->status.last_success = (int64_t)st.last_success;
    resp->status.signatures = st.signatures;
    resp->status.errors = st.errors;
    resp->status.logins = st.logins;
    resp->status.reloads = st.reloads;
    copy_str(resp->status.module_path, sizeof(resp->status.module_path), st.module_path);
    return TE_OK;
}

void srv_handlers_release(struct proto_response *resp)
{
    free(resp->tokens);
    free(resp->keys);
    resp->tokens = NULL;
    resp->keys = NULL;
    /* a signature is not secret, but nothing of a reply needs to outlive it */
    te_wipe(resp, sizeof(*resp));
}
