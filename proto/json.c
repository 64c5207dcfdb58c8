/* Strict JSON for the protocol (see json_internal.h): a pre-scan that rejects what cJSON would
 * let through (bad UTF-8, NUL, control bytes, lax numbers, deep nesting), typed getters, base64. */
#include "proto/json_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/base64.h>

#include "common/buf.h"
#include "common/err.h"
#include "proto/frame.h"
#include "proto/msg.h"

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates, <= U+10FFFF),
 * or 0 when it is not one. */
static size_t utf8_seq_len(const uint8_t *p, size_t left)
{
    uint8_t b0 = p[0], lo = 0x80, hi = 0xBF;
    size_t n;

    if (b0 < 0x80)
        return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF)
        n = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF)
        n = 3;
    else if (b0 >= 0xF0 && b0 <= 0xF4)
        n = 4;
    else
        return 0;
    if (b0 == 0xE0)
        lo = 0xA0;
    else if (b0 == 0xED)
        hi = 0x9F;
    else if (b0 == 0xF0)
        lo = 0x90;
    else if (b0 == 0xF4)
        hi = 0x8F;
    if (left < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static bool is_hex(uint8_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of the RFC 8259 number at p, or 0 when it is not one (cJSON's strtod would accept
 * "01", "1." or "-.5"). */
static size_t number_len(const uint8_t *p, size_t left)
{
    size_t i = 0;
    if (i < left && p[i] == '-')
        i++;
    if (i < left && p[i] == '0')
        i++;
    else if (i < left && p[i] >= '1' && p[i] <= '9')
        while (i < left && is_digit(p[i]))
            i++;
    else
        return 0;
    if (i < left && p[i] == '.') {
        size_t start = ++i;
        while (i < left && is_digit(p[i]))
            i++;
        if (i == start)
            return 0;
    }
    if (i < left && (p[i] == 'e' || p[i] == 'E')) {
        size_t start;
        i++;
        if (i < left && (p[i] == '+' || p[i] == '-'))
            i++;
        start = i;
        while (i < left && is_digit(p[i]))
            i++;
        if (i == start)
            return 0;
    }
    /* what cJSON would still take as part of the number */
    if (i < left && (is_digit(p[i]) || p[i] == '.' || p[i] == 'e' || p[i] == 'E' ||
                     p[i] == '+' || p[i] == '-'))
        return 0;
    return i;
}

static int malformed(struct te_error *err, const char *what, size_t at)
{
    return te_error_set(err, TE_ERR_MALFORMED, "The message is not valid JSON: %s at byte %zu.",
                        what, at);
}

/* Checks the bytes before cJSON sees them; cJSON then checks the grammar. */
static int prescan(const uint8_t *p, size_t len, struct te_error *err)
{
    size_t i = 0, depth = 0;
    bool in_string = false;

    while (i < len) {
        uint8_t c = p[i];
        if (c == 0)
            return malformed(err, "a NUL byte", i);
        if (c >= 0x80) {
            size_t n = utf8_seq_len(p + i, len - i);
            if (n == 0)
                return malformed(err, "invalid UTF-8", i);
            if (!in_string)
                return malformed(err, "a non-ASCII character outside a string", i);
            i += n;
            continue;
        }
        if (in_string) {
            if (c < 0x20)
                return malformed(err, "a control character in a string", i);
            if (c == '"') {
                in_string = false;
            } else if (c == '\\') {
                if (i + 1 >= len)
                    return malformed(err, "an unfinished escape", i);
                if (p[i + 1] == 'u') {
                    if (i + 6 > len || !is_hex(p[i + 2]) || !is_hex(p[i + 3]) ||
                        !is_hex(p[i + 4]) || !is_hex(p[i + 5]))
                        return malformed(err, "a bad \\u escape", i);
                    if (memcmp(p + i + 2, "0000", 4) == 0)
                        return malformed(err, "an escaped NUL (\\u0000)", i);
                    i += 6;
                    continue;
                }
                i += 2;
                continue;
            }
            i++;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > PROTO_JSON_MAX_DEPTH)
                return malformed(err, "nesting deeper than the protocol allows", i);
        } else if (c == '}' || c == ']') {
            if (depth > 0)
                depth--;
        } else if (c == '-' || is_digit(c)) {
            size_t n = number_len(p + i, len - i);
            if (n == 0)
                return malformed(err, "a bad number", i);
            i += n;
            continue;
        } else if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return malformed(err, "a control character", i);
        }
        i++;
    }
    if (in_string)
        return malformed(err, "an unterminated string", len);
    return TE_OK;
}

int proto_json_parse(const uint8_t *body, size_t len, cJSON **out, struct te_error *err)
{
    const char *end = NULL;
    cJSON *root = NULL;
    int r;

    *out = NULL;
    if (body == NULL || len == 0)
        return te_error_set(err, TE_ERR_MALFORMED, "The message is empty.");
    if ((r = prescan(body, len, err)) != TE_OK)
        return r;
    root = cJSON_ParseWithLengthOpts((const char *)body, len, &end, 0);
    if (root == NULL)
        return te_error_set(err, TE_ERR_MALFORMED, "The message is not valid JSON.");
    for (size_t i = (size_t)(end - (const char *)body); i < len; i++) {
        uint8_t c = body[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            proto_json_free(root);
            return malformed(err, "data after the JSON object", i);
        }
    }
    if (!cJSON_IsObject(root)) {
        proto_json_free(root);
        return te_error_set(err, TE_ERR_MALFORMED, "The message is JSON but not an object.");
    }
    *out = root;
    return TE_OK;
}

static void wipe_tree(cJSON *item)
{
    for (; item != NULL; item = item->next) {
        if (item->type & cJSON_IsReference)
            continue;
        if (item->string != NULL && !(item->type & cJSON_StringIsConst))
            te_wipe(item->string, strlen(item->string));
        if (item->valuestring != NULL)
            te_wipe(item->valuestring, strlen(item->valuestring));
        wipe_tree(item->child);
    }
}

void proto_json_free(cJSON *root)
{
    if (root == NULL)
        return;
    wipe_tree(root);
    cJSON_Delete(root);
}

void proto_json_shown_name(const char *name, char *out, size_t out_size)
{
    size_t n = 0;
    if (out_size == 0)
        return;
    for (; name != NULL && name[n] != '\0' && n < PROTO_JSON_NAME_SHOWN && n + 1 < out_size; n++)
        out[n] = (name[n] >= 0x20 && name[n] < 0x7f) ? name[n] : '?';
    out[n] = '\0';
}

int proto_json_check_members(const cJSON *obj, const char *where, struct te_error *err)
{
    size_t count = 0;
    char shown[PROTO_JSON_NAME_SHOWN + 1];

    for (const cJSON *a = obj->child; a != NULL; a = a->next) {
        if (++count > PROTO_JSON_MAX_MEMBERS)
            return te_error_set(err, TE_ERR_PROTOCOL, "The %s has more than %d members.", where,
                                PROTO_JSON_MAX_MEMBERS);
        for (const cJSON *b = obj->child; b != a; b = b->next) {
            if (strcmp(a->string, b->string) == 0) {
                proto_json_shown_name(a->string, shown, sizeof(shown));
                return te_error_set(err, TE_ERR_PROTOCOL,
                                    "The %s has the member \"%s\" more than once.", where, shown);
            }
        }
    }
    return TE_OK;
}

static int missing_or_type(const cJSON *item, const char *name, const char *type,
                           struct te_error *err)
{
    if (item == NULL)
        return te_error_set(err, TE_ERR_PROTOCOL, "The member \"%s\" is missing.", name);
    return te_error_set(err, TE_ERR_PROTOCOL, "The member \"%s\" must be %s.", name, type);
}

int proto_json_get_string(const cJSON *item, const char *name, char *dst, size_t max_len,
                          struct te_error *err)
{
    size_t n;
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return missing_or_type(item, name, "a string", err);
    n = strlen(item->valuestring);
    if (n > max_len)
        return te_error_set(err, TE_ERR_TOO_LARGE,
                            "The member \"%s\" is %zu bytes long; the limit is %zu bytes.", name,
                            n, max_len);
    memcpy(dst, item->valuestring, n + 1);
    return TE_OK;
}

int proto_json_get_uint(const cJSON *item, const char *name, uint64_t max, uint64_t *out,
                        struct te_error *err)
{
    double d;
    if (!cJSON_IsNumber(item))
        return missing_or_type(item, name, "a number", err);
    d = item->valuedouble;
    if (!(d >= 0.0) || d != floor(d) || d > (double)max)
        return te_error_set(err, TE_ERR_PROTOCOL,
                            "The member \"%s\" must be an integer from 0 to %llu.", name,
                            (unsigned long long)max);
    *out = (uint64_t)d;
    return TE_OK;
}

int proto_json_get_bool(const cJSON *item, const char *name, bool *out, struct te_error *err)
{
    if (!cJSON_IsBool(item))
        return missing_or_type(item, name, "true or false", err);
    *out = cJSON_IsTrue(item);
    return TE_OK;
}

static bool is_base64_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '+' ||
           c == '/';
}

int proto_json_get_base64(const cJSON *item, const char *name, uint8_t *dst, size_t cap,
                          size_t *out_len, struct te_error *err)
{
    const uint8_t *s;
    size_t n, pad = 0, olen = 0, check_len = 0;
    uint8_t check[PROTO_JSON_BASE64_TEXT_MAX + 1];
    int r = TE_OK;

    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return missing_or_type(item, name, "a base64 string", err);
    s = (const uint8_t *)item->valuestring;
    n = strlen(item->valuestring);
    if (n % 4 != 0)
        goto bad;
    if (n >= 1 && s[n - 1] == '=')
        pad++;
    if (n >= 2 && s[n - 2] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++)
        if (!is_base64_char(s[i]))
            goto bad;
    if (n / 4 * 3 - pad > cap || n > PROTO_JSON_BASE64_TEXT_MAX)
        return te_error_set(err, TE_ERR_TOO_LARGE,
                            "The member \"%s\" holds %zu bytes; the limit is %zu bytes.", name,
                            n / 4 * 3 - pad, cap);
    if (mbedtls_base64_decode(dst, cap, &olen, s, n) != 0)
        goto bad;
    /* canonical form only: re-encoding must give the same text (no stray pad bits) */
    if (mbedtls_base64_encode(check, sizeof(check), &check_len, dst, olen) != 0 ||
        check_len != n || memcmp(check, s, n) != 0) {
        te_wipe(dst, olen);
        goto bad;
    }
    *out_len = olen;
    goto exit;
bad:
    r = te_error_set(err, TE_ERR_PROTOCOL,
                     "The member \"%s\" is not canonical base64 (RFC 4648, padded).", name);
exit:
    te_wipe(check, check_len);
    return r;
}

static int add_item(cJSON *obj, const char *name, cJSON *item)
{
    if (item == NULL)
        return TE_ERR_NOMEM;
    if (!cJSON_AddItemToObject(obj, name, item)) {
        cJSON_Delete(item);
        return TE_ERR_NOMEM;
    }
    return TE_OK;
}

int proto_json_add_string(cJSON *obj, const char *name, const char *value)
{
    return add_item(obj, name, cJSON_CreateString(value));
}

int proto_json_add_uint(cJSON *obj, const char *name, uint64_t value)
{
    char text[24];

    if (value > PROTO_JSON_UINT_MAX)
        value = PROTO_JSON_UINT_MAX;
    /* printed by us: cJSON prints a double with %1.15g when it compares "close enough", which
     * turns 9007199254740991 into 9.00719925474099e+15 */
    snprintf(text, sizeof(text), "%llu", (unsigned long long)value);
    return add_item(obj, name, cJSON_CreateRaw(text));
}

int proto_json_add_bool(cJSON *obj, const char *name, bool value)
{
    return add_item(obj, name, cJSON_CreateBool(value));
}

int proto_json_add_base64(cJSON *obj, const char *name, const uint8_t *data, size_t len)
{
    char text[PROTO_JSON_BASE64_TEXT_MAX + 1];
    size_t olen = 0;
    int r;

    if (len > PROTO_JSON_BINARY_MAX)
        return TE_ERR_TOO_LARGE;
    if (mbedtls_base64_encode((unsigned char *)text, sizeof(text), &olen, data, len) != 0)
        return TE_ERR_INTERNAL;
    text[olen] = '\0';
    r = proto_json_add_string(obj, name, text);
    te_wipe(text, olen);
    return r;
}

int proto_json_print(const cJSON *root, struct buf *out, struct te_error *err)
{
    size_t cap = buf_max(out) < PROTO_MAX_FRAME ? buf_max(out) : PROTO_MAX_FRAME;
    uint8_t *p = NULL;
    int r;

    buf_reset(out);
    if ((r = buf_reserve(out, cap, &p)) != TE_OK)
        return te_error_set(err, r, "No memory to encode a message.");
    /* printing into our own buffer: cJSON's realloc growth would leave unwiped copies */
    if (!cJSON_PrintPreallocated((cJSON *)root, (char *)p, (int)cap + 1, 0)) {
        te_wipe(p, cap + 1);
        return te_error_set(err, TE_ERR_TOO_LARGE,
                            "The message does not fit in a frame of %zu bytes.", cap);
    }
    buf_commit(out, strlen((const char *)p));
    return TE_OK;
}
