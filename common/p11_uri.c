/* RFC 7512 URIs through p11-kit: parsing that names the bad or unrecognized part, the merge of
 * a request with the scope URI (the scope wins), the effective PIN, and URIs for tokens/keys. */
#include "common/p11_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/fileutil.h"

#define URI_PART_MAX 128 /* longest attribute we quote back in a message */
#define SLOT_ID_DIGITS_MAX 20 /* ULONG_MAX has 20 decimal digits */

void p11_trim(const unsigned char *field, size_t size, char *out)
{
    size_t n = size;
    while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\0'))
        n--;
    memcpy(out, field, n);
    out[n] = '\0';
}

static bool name_is(const char *p, size_t len, const char *name)
{
    size_t k = strlen(name);
    /* case-insensitive: a PIN under "PIN-VALUE=" must not leak into a log either */
    return len >= k && strncasecmp(p, name, k) == 0 && (len == k || p[k] == '=');
}

static bool query_name_known(const char *p, size_t len)
{
    static const char *const known[] = {"pin-value", "pin-source", "module-name", "module-path"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (name_is(p, len, known[i]))
            return true;
    return false;
}

/* Whether an attribute's value may be shown: never pin-value, and in the query only the
 * attributes we know (a misspelled "pin-vaule=1234" must not leak either). */
static bool value_showable(const char *p, size_t len, bool query)
{
    return !name_is(p, len, "pin-value") && (!query || query_name_known(p, len));
}

/* Appends to out (bounded, always NUL-terminated). */
static void emit(char *out, size_t size, size_t *o, const char *p, size_t len)
{
    if (*o + 1 >= size)
        return;
    if (len > size - 1 - *o)
        len = size - 1 - *o;
    memcpy(out + *o, p, len);
    *o += len;
    out[*o] = '\0';
}

void p11_uri_redact(const char *uri, char *out, size_t size)
{
    const char *p = uri;
    size_t o = 0;
    bool query = false, wrote = false;

    if (size == 0)
        return;
    out[0] = '\0';
    if (uri == NULL)
        return;
    if (strncmp(p, "pkcs11:", 7) == 0) {
        emit(out, size, &o, p, 7);
        p += 7;
    }
    while (*p != '\0') {
        size_t len = strcspn(p, query ? "&" : ";?");
        if (len > 0 && !name_is(p, len, "pin-value")) {
            if (wrote || query)
                emit(out, size, &o, !wrote ? "?" : query ? "&" : ";", 1);
            if (value_showable(p, len, query)) {
                emit(out, size, &o, p, len);
            } else {
                emit(out, size, &o, p, strcspn(p, "="));
                emit(out, size, &o, "=***", 4);
            }
            wrote = true;
        }
        p += len;
        if (*p == '\0')
            break;
        if (*p == '?') {
            query = true;
            wrote = false;
        }
        p++;
    }
}

/* Quotes part of a URI for a message: at most URI_PART_MAX bytes, and never a value that may
 * be a PIN. */
static void quote_part(const char *part, size_t len, bool query, char *out, size_t size)
{
    if (!value_showable(part, len, query))
        len = strcspn(part, "=") < len ? strcspn(part, "=") : len;
    if (len > URI_PART_MAX)
        len = URI_PART_MAX;
    snprintf(out, size, "'%.*s'", (int)len, part);
}

/* Parses one attribute of the path ("token=x") or the query ("pin-source=x") on its own.
 * Returns the p11-kit result; *unrecognized says whether p11-kit did not know it. */
static int parse_part(const char *part, size_t len, bool query, bool *unrecognized)
{
    char text[P11_URI_MAX + 16];
    P11KitUri *u;
    int r;

    *unrecognized = false;
    if (query && !query_name_known(part, len)) {
        *unrecognized = true;
        return P11_KIT_URI_OK;
    }
    snprintf(text, sizeof(text), "pkcs11:%s%.*s", query ? "?" : "", (int)len, part);
    if ((u = p11_kit_uri_new()) == NULL)
        return P11_KIT_URI_UNEXPECTED;
    r = p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, u);
    *unrecognized = r == P11_KIT_URI_OK && p11_kit_uri_any_unrecognized(u);
    te_wipe(text, sizeof(text));
    p11_uri_free(u);
    return r;
}

/* Walks the attributes after "pkcs11:" and reports the first that does not parse alone, or
 * lists every unrecognized one. Returns TE_OK when every part is fine on its own. */
static int check_parts(const char *text, const char *shown, struct te_error *err)
{
    char list[TE_ERROR_MSG_MAX / 2], q[URI_PART_MAX + 8];
    const char *p = text + strlen("pkcs11:");
    bool query = false, unrec;
    size_t used = 0;
    int r;

    list[0] = '\0';
    while (*p != '\0') {
        size_t len = strcspn(p, query ? "&" : ";?");
        if (len > 0) {
            r = parse_part(p, len, query, &unrec);
            quote_part(p, len, query, q, sizeof(q));
            if (r == P11_KIT_URI_BAD_ENCODING)
                return te_error_set(err, TE_ERR_URI,
                                    "The PKCS#11 URI '%s' is invalid: the attribute %s is not "
                                    "percent-encoded correctly. Fix that part of the URI.",
                                    shown, q);
            if (r != P11_KIT_URI_OK)
                return te_error_set(err, TE_ERR_URI,
                                    "The PKCS#11 URI '%s' is invalid: the attribute %s is not a "
                                    "valid RFC 7512 attribute (%s). Fix that part of the URI.",
                                    shown, q, p11_kit_uri_message(r));
            if (unrec && used < sizeof(list))
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                         used ? ", " : "", q);
        }
        p += len;
        if (*p == '?')
            query = true;
        if (*p != '\0')
            p++;
    }
    if (used > 0)
        return te_error_set(err, TE_ERR_URI,
                            "The PKCS#11 URI '%s' has attributes that are not recognized: %s. "
                            "Remove them or correct their spelling (see RFC 7512).",
                            shown, list);
    return TE_OK;
}

/* p11-kit reads slot-id with no overflow check (99999999999999999999 becomes another
 * number), takes an empty value as slot 0, and uses ULONG_MAX for "not set": so a slot-id is
 * accepted only as 1 to 20 decimal digits below ULONG_MAX. */
static int check_slot_ids(const char *text, const char *shown, struct te_error *err)
{
    char q[URI_PART_MAX + 8];
    const char *p = text + strlen("pkcs11:");

    while (*p != '\0' && *p != '?') {
        size_t len = strcspn(p, ";?");
        if (name_is(p, len, "slot-id")) {
            const char *v = p + strlen("slot-id=");
            size_t vlen = len > strlen("slot-id") ? len - strlen("slot-id=") : 0;
            char digits[SLOT_ID_DIGITS_MAX + 1];
            unsigned long long id;
            bool ok = vlen > 0 && vlen <= SLOT_ID_DIGITS_MAX && strspn(v, "0123456789") >= vlen;
            if (ok) {
                memcpy(digits, v, vlen);
                digits[vlen] = '\0';
                errno = 0;
                id = strtoull(digits, NULL, 10);
                ok = errno == 0 && id < ULONG_MAX;
            }
            if (!ok) {
                quote_part(p, len, false, q, sizeof(q));
                return te_error_set(err, TE_ERR_URI,
                                    "The PKCS#11 URI '%s' is invalid: the attribute %s is not a "
                                    "slot number from 0 to %lu. Fix that part of the URI.",
                                    shown, q, ULONG_MAX - 1);
            }
        }
        p += len;
        if (*p == ';')
            p++;
    }
    return TE_OK;
}

/* Whether the query of a URI has the attribute name (whatever its value, even empty). */
static bool query_has(const char *text, const char *name)
{
    const char *p = strchr(text, '?');

    while (p != NULL && *p != '\0') {
        size_t len;
        p++;
        len = strcspn(p, "&");
        if (name_is(p, len, name))
            return true;
        p += len;
    }
    return false;
}

void p11_uri_free(P11KitUri *u)
{
    const char *pin;

    if (u == NULL)
        return;
    /* p11-kit frees its strings without wiping them; the PIN is a heap string of its own. */
    if ((pin = p11_kit_uri_get_pin_value(u)) != NULL)
        te_wipe((char *)pin, strlen(pin));
    p11_kit_uri_free(u);
}

int p11_uri_parse(const char *text, P11KitUri **out, struct te_error *err)
{
    char shown[P11_URI_MAX];
    P11KitUri *u = NULL;
    int r, ret;

    if (text == NULL || *text == '\0')
        text = "pkcs11:";
    p11_uri_redact(text, shown, sizeof(shown));
    if (strlen(text) >= P11_URI_MAX)
        return te_error_set(err, TE_ERR_URI,
                            "The PKCS#11 URI '%.64s...' is longer than %d bytes; use a shorter "
                            "URI that still selects the key.", shown, P11_URI_MAX - 1);
    if ((u = p11_kit_uri_new()) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory while parsing a PKCS#11 URI.");
    r = p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, u);
    if (r == P11_KIT_URI_BAD_SCHEME) {
        ret = te_error_set(err, TE_ERR_URI,
                           "The PKCS#11 URI '%s' is invalid: it must start with 'pkcs11:'.", shown);
        goto fail;
    }
    if (r != P11_KIT_URI_OK || p11_kit_uri_any_unrecognized(u)) {
        if ((ret = check_parts(text, shown, err)) == TE_OK)
            ret = te_error_set(err, TE_ERR_URI, "The PKCS#11 URI '%s' is invalid: %s.", shown,
                               r != P11_KIT_URI_OK ? p11_kit_uri_message(r)
                                                   : "it has unrecognized attributes");
        goto fail;
    }
    /* p11-kit accepts any query attribute as vendor-specific; we refuse unknown ones too. */
    if (strchr(text, '?') != NULL && (ret = check_parts(text, shown, err)) != TE_OK)
        goto fail;
    if ((ret = check_slot_ids(text, shown, err)) != TE_OK)
        goto fail;
    *out = u;
    return TE_OK;
fail:
    p11_uri_free(u);
    return ret;
}

/* Copies a space-padded field from the scope when the scope sets it (p11-kit zero-fills
 * fields that the URI does not mention). */
static void copy_if_set(unsigned char *dst, const unsigned char *src, size_t size)
{
    if (src[0] != '\0')
        memcpy(dst, src, size);
}

/* The scope URI is the base and its attributes win over the request's (upstream rule). */
static void merge_scope(P11KitUri *dst, P11KitUri *scope)
{
    CK_TOKEN_INFO *dt = p11_kit_uri_get_token_info(dst), *st = p11_kit_uri_get_token_info(scope);
    CK_INFO *dm = p11_kit_uri_get_module_info(dst), *sm = p11_kit_uri_get_module_info(scope);
    CK_SLOT_INFO *ds = p11_kit_uri_get_slot_info(dst), *ss = p11_kit_uri_get_slot_info(scope);
    CK_ATTRIBUTE *attrs;
    CK_ULONG n = 0;

    copy_if_set(dt->label, st->label, sizeof(dt->label));
    copy_if_set(dt->manufacturerID, st->manufacturerID, sizeof(dt->manufacturerID));
    copy_if_set(dt->model, st->model, sizeof(dt->model));
    copy_if_set(dt->serialNumber, st->serialNumber, sizeof(dt->serialNumber));
    copy_if_set(dm->manufacturerID, sm->manufacturerID, sizeof(dm->manufacturerID));
    copy_if_set(dm->libraryDescription, sm->libraryDescription, sizeof(dm->libraryDescription));
    if (sm->libraryVersion.major != (CK_BYTE)-1)
        dm->libraryVersion = sm->libraryVersion;
    copy_if_set(ds->slotDescription, ss->slotDescription, sizeof(ds->slotDescription));
    copy_if_set(ds->manufacturerID, ss->manufacturerID, sizeof(ds->manufacturerID));
    if (p11_kit_uri_get_slot_id(scope) != (CK_SLOT_ID)-1)
        p11_kit_uri_set_slot_id(dst, p11_kit_uri_get_slot_id(scope));
    attrs = p11_kit_uri_get_attributes(scope, &n);
    for (CK_ULONG i = 0; i < n; i++)
        p11_kit_uri_set_attribute(dst, &attrs[i]);
    if (p11_kit_uri_get_pin_value(scope) != NULL)
        p11_kit_uri_set_pin_value(dst, p11_kit_uri_get_pin_value(scope));
    if (p11_kit_uri_get_pin_source(scope) != NULL)
        p11_kit_uri_set_pin_source(dst, p11_kit_uri_get_pin_source(scope));
}

static int pin_source_unusable(const char *src, struct te_error *err)
{
    return te_error_set(err, TE_ERR_INVALID,
                        "'%s' (the URI's pin-source) cannot be used as a PIN source: it must be "
                        "a regular file (not a symbolic link, FIFO or device) that this process "
                        "can read, holding the PIN on one line of 1 to %d characters.",
                        src, P11_PIN_MAX);
}

/* Reads a PIN from a pin-source: a file path or a file: URI; one line, newline stripped. Every
 * failure to use the file gets the same words: they must not tell the caller whether a path
 * exists, what it is or how large it is. */
static int pin_from_source(const char *src, char **out, struct te_error *err)
{
    const char *path = src, *colon = strchr(src, ':'), *slash = strchr(src, '/');
    char *data = NULL;
    size_t len = 0;
    int ret;

    if (strncmp(src, "file://", 7) == 0)
        path = src + 7;
    else if (strncmp(src, "file:", 5) == 0)
        path = src + 5;
    else if (colon != NULL && (slash == NULL || colon < slash))
        return te_error_set(err, TE_ERR_URI,
                            "The pin-source '%s' is not supported: give a file path or a file: "
                            "URI.", src);
    /* + 2: the PIN and a CRLF */
    if ((ret = file_read_secret(path, P11_PIN_MAX + 2, &data, &len, NULL)) != TE_OK)
        return ret == TE_ERR_NOMEM ? te_error_set(err, ret, "Out of memory.")
                                   : pin_source_unusable(src, err);
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        data[--len] = '\0';
    if (len == 0 || len > P11_PIN_MAX || strlen(data) != len || strchr(data, '\n') != NULL) {
        te_free_secret(data);
        return pin_source_unusable(src, err);
    }
    *out = data;
    return TE_OK;
}

static int pin_copy(const char *pin, const char *what, char **out, struct te_error *err)
{
    if (strlen(pin) > P11_PIN_MAX)
        return te_error_set(err, TE_ERR_INVALID, "The %s is longer than %d characters.", what,
                            P11_PIN_MAX);
    if ((*out = strdup(pin)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    return TE_OK;
}

/* PIN precedence: URI pin-value (or pin-source) > the caller's PIN > the configured default. */
static int resolve_pin(struct p11_ctx *ctx, const struct p11_keyref *ref, struct p11_request *req,
                       struct te_error *err)
{
    const char *pv = p11_kit_uri_get_pin_value(req->uri);
    const char *ps = p11_kit_uri_get_pin_source(req->uri);
    int ret = TE_OK;

    if (pv != NULL) {
        req->pin_origin = P11_PIN_URI;
        ret = pin_copy(pv, "PIN in the URI's pin-value", &req->pin, err);
        /* p11-kit frees its copy without wiping it (see p11_uri_free). */
        te_wipe((char *)pv, strlen(pv));
    } else if (ps != NULL) {
        req->pin_origin = P11_PIN_SOURCE;
        ret = pin_from_source(ps, &req->pin, err);
    } else if (ref != NULL && ref->pin != NULL) {
        req->pin_origin = P11_PIN_CALLER;
        ret = pin_copy(ref->pin, "PIN", &req->pin, err);
    } else if (ctx->default_pin != NULL) {
        req->pin_origin = P11_PIN_DEFAULT;
        ret = pin_copy(ctx->default_pin, "configured PIN", &req->pin, err);
    }
    p11_kit_uri_set_pin_value(req->uri, NULL);
    p11_kit_uri_set_pin_source(req->uri, NULL);
    return ret;
}

int p11_request_init(struct p11_ctx *ctx, const struct p11_keyref *ref, struct p11_request *req,
                     struct te_error *err)
{
    char *text = NULL;
    int ret;

    memset(req, 0, sizeof(*req));
    if ((ret = p11_uri_parse(ref ? ref->uri : NULL, &req->uri, err)) != TE_OK)
        return ret;
    /* Checked before the merge: the scope's own pin-source stays allowed. */
    if (ctx->requests_from_peers && ref != NULL && ref->uri != NULL &&
        query_has(ref->uri, "pin-source")) {
        ret = te_error_set(err, TE_ERR_URI,
                           "pin-source is not accepted in requests to tedge-p11-server; send the "
                           "PIN in the request or configure it on the server.");
        goto fail;
    }
    if (ctx->scope != NULL)
        merge_scope(req->uri, ctx->scope);
    if ((ret = resolve_pin(ctx, ref, req, err)) != TE_OK)
        goto fail;
    if (p11_kit_uri_format(req->uri, P11_KIT_URI_FOR_ANY, &text) != P11_KIT_URI_OK) {
        ret = te_error_set(err, TE_ERR_NOMEM, "Out of memory while formatting a PKCS#11 URI.");
        goto fail;
    }
    snprintf(req->uri_str, sizeof(req->uri_str), "%s", text);
    free(text);
    return TE_OK;
fail:
    p11_request_clear(req);
    return ret;
}

void p11_request_clear(struct p11_request *req)
{
    p11_uri_free(req->uri);
    te_free_secret(req->pin);
    memset(req, 0, sizeof(*req));
}

static void format_uri(P11KitUri *u, P11KitUriType type, char *out, size_t size)
{
    char *text = NULL;

    if (p11_kit_uri_format(u, type, &text) == P11_KIT_URI_OK)
        snprintf(out, size, "%s", text);
    else
        snprintf(out, size, "pkcs11:");
    free(text);
}

void p11_uri_for_token(const CK_TOKEN_INFO *ti, char *out, size_t size)
{
    P11KitUri *u = p11_kit_uri_new();

    if (u == NULL) {
        snprintf(out, size, "pkcs11:");
        return;
    }
    memcpy(p11_kit_uri_get_token_info(u), ti, sizeof(*ti));
    format_uri(u, P11_KIT_URI_FOR_TOKEN, out, size);
    p11_kit_uri_free(u);
}

void p11_uri_for_key(const CK_TOKEN_INFO *ti, const uint8_t *id, size_t id_len,
                     const char *label, char *out, size_t size)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE a_cls = {CKA_CLASS, &cls, sizeof(cls)};
    CK_ATTRIBUTE a_id = {CKA_ID, (void *)id, id_len};
    CK_ATTRIBUTE a_label = {CKA_LABEL, (void *)label, strlen(label)};
    P11KitUri *u = p11_kit_uri_new();

    if (u == NULL) {
        snprintf(out, size, "pkcs11:");
        return;
    }
    memcpy(p11_kit_uri_get_token_info(u), ti, sizeof(*ti));
    p11_kit_uri_set_attribute(u, &a_cls);
    if (id_len > 0)
        p11_kit_uri_set_attribute(u, &a_id);
    if (label[0] != '\0')
        p11_kit_uri_set_attribute(u, &a_label);
    format_uri(u, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, out, size);
    p11_kit_uri_free(u);
}
