/* Value types of tedge.toml keys: parsers for booleans, ports, durations and host:port, and
 * the validator that explains why a value is refused (never quoting a secret). */
#include "common/config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_VALUE_MAX 4096             /* longest value we accept for any key */
#define CFG_DURATION_MAX_MS (100ULL * 365 * 24 * 3600 * 1000) /* 100 years: beyond is a typo */

int cfg_parse_bool(const char *s, bool *out)
{
    if (strcmp(s, "true") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0)
        *out = false;
    else
        return TE_ERR_INVALID;
    return TE_OK;
}

int cfg_parse_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;
    if (*s == '\0' || strlen(s) > 5)
        return TE_ERR_INVALID;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return TE_ERR_INVALID;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return TE_ERR_INVALID;
    *out = (uint16_t)v;
    return TE_OK;
}

int cfg_parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct { const char *unit; uint64_t ms; } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    uint64_t total = 0;
    const char *p = s;
    bool any = false, plain = true;

    for (const char *q = s; *q; q++)
        if (!isdigit((unsigned char)*q))
            plain = false;
    while (*p) {
        uint64_t n = 0, mul = 0;
        size_t ulen = 0;
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        if (!isdigit((unsigned char)*p))
            return TE_ERR_INVALID;
        for (; isdigit((unsigned char)*p); p++) {
            if (n > CFG_DURATION_MAX_MS)
                return TE_ERR_INVALID;
            n = n * 10 + (uint64_t)(*p - '0');
        }
        if (plain) {
            mul = 1000; /* a bare number is seconds, as upstream */
        } else {
            while (isalpha((unsigned char)p[ulen]))
                ulen++;
            for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (strlen(units[i].unit) == ulen && strncmp(p, units[i].unit, ulen) == 0)
                    mul = units[i].ms;
            if (mul == 0)
                return TE_ERR_INVALID;
            p += ulen;
        }
        if (n > CFG_DURATION_MAX_MS / mul || total + n * mul > CFG_DURATION_MAX_MS)
            return TE_ERR_INVALID;
        total += n * mul;
        any = true;
    }
    if (!any)
        return TE_ERR_INVALID;
    *out = total;
    return TE_OK;
}

static bool host_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

int cfg_parse_host_port(const char *s, unsigned default_port, char **host, uint16_t *port)
{
    const char *h = s, *colon;
    size_t hlen;
    uint16_t pt = (uint16_t)default_port;

    *host = NULL;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close == s + 1)
            return TE_ERR_INVALID;
        h = s + 1;
        hlen = (size_t)(close - h);
        for (size_t i = 0; i < hlen; i++)
            if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
                return TE_ERR_INVALID;
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] != '\0' && colon == NULL)
            return TE_ERR_INVALID;
    } else {
        colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL)
            return TE_ERR_INVALID; /* an IPv6 address needs [brackets] */
        hlen = colon ? (size_t)(colon - s) : strlen(s);
        if (hlen == 0)
            return TE_ERR_INVALID;
        for (size_t i = 0; i < hlen; i++)
            if (!host_char_ok(s[i]))
                return TE_ERR_INVALID;
    }
    if (colon != NULL && cfg_parse_port(colon + 1, &pt) != TE_OK)
        return TE_ERR_INVALID;
    if (pt == 0)
        return TE_ERR_INVALID;
    if ((*host = strndup(h, hlen)) == NULL)
        return TE_ERR_NOMEM;
    *port = pt;
    return TE_OK;
}

/* Fills err with "Invalid value for 'key': 'value'. <why>" (no value for secrets). */
static int refuse(struct te_error *err, const struct cfg_key_def *def, const char *key,
                  const char *value, const char *why)
{
    /* A PIN, or a URI that carries one, is never repeated back. */
    if ((def->flags & CFG_F_SECRET) || strstr(value, "pin-value") != NULL ||
        strstr(value, "pin-source") != NULL)
        return te_error_set(err, TE_ERR_INVALID, "Invalid value for '%s': %s", key, why);
    return te_error_set(err, TE_ERR_INVALID, "Invalid value for '%s': '%.200s'. %s", key, value,
                        why);
}

int cfg_validate(const struct cfg_key_def *def, const char *key, const char *value,
                 struct te_error *err)
{
    uint64_t ms;
    uint16_t port;
    bool b;
    char *host = NULL;

    if (value == NULL || value[0] == '\0')
        return te_error_set(err, TE_ERR_INVALID,
                            "An empty value is not valid for '%s'; use `tedge config unset %s` "
                            "to remove it.", key, key);
    if (strlen(value) > CFG_VALUE_MAX)
        return te_error_set(err, TE_ERR_INVALID, "The value for '%s' is longer than %d bytes.",
                            key, CFG_VALUE_MAX);
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return refuse(err, def, key, "", "Control characters are not allowed.");
    switch (def->type) {
    case CFG_STRING:
    case CFG_PATH:
        return TE_OK;
    case CFG_ABS_PATH:
        if (value[0] != '/')
            return refuse(err, def, key, value,
                          "It must be an absolute path (starting with '/').");
        return TE_OK;
    case CFG_BOOL:
        if (cfg_parse_bool(value, &b) != TE_OK)
            return refuse(err, def, key, value, "Supported values are: true, false.");
        return TE_OK;
    case CFG_PORT:
        if (cfg_parse_port(value, &port) != TE_OK)
            return refuse(err, def, key, value, "It must be a port number from 1 to 65535.");
        return TE_OK;
    case CFG_DURATION:
        if (cfg_parse_duration_ms(value, &ms) != TE_OK)
            return refuse(err, def, key, value,
                          "It must be a duration such as 60s, 10m, 1h 30m or 2d (units: ms, s, "
                          "m, h, d; a plain number is seconds).");
        return TE_OK;
    case CFG_ENUM:
        for (const char *const *a = def->allowed; a && *a; a++)
            if (strcmp(value, *a) == 0)
                return TE_OK;
        {
            char list[256] = "";
            size_t o = 0;
            for (const char *const *a = def->allowed; a && *a && o < sizeof(list); a++) {
                int w = snprintf(list + o, sizeof(list) - o, "%s%s", o ? ", " : "", *a);
                o += w > 0 ? (size_t)w : 0;
            }
            char why[300];
            snprintf(why, sizeof(why), "Supported values are: %s.", list);
            return refuse(err, def, key, value, why);
        }
    case CFG_HOST_PORT:
        if (cfg_parse_host_port(value, def->default_port, &host, &port) != TE_OK)
            return refuse(err, def, key, value,
                          "It must be a host name or address with an optional port, such as "
                          "mqtt.example.com:8883.");
        free(host);
        return TE_OK;
    case CFG_CONNECT_URL:
        if (strstr(value, "://") != NULL || strchr(value, ':') != NULL)
            return refuse(err, def, key, value,
                          "It contains a scheme or port; give only the domain, e.g. "
                          "'subdomain.cumulocity.com'.");
        for (const char *p = value; *p; p++)
            if (!host_char_ok(*p))
                return refuse(err, def, key, value,
                              "It must be a host name only, e.g. 'subdomain.cumulocity.com'.");
        return TE_OK;
    case CFG_P11_URI:
        if (strncmp(value, "pkcs11:", 7) != 0 || strchr(value, ' ') != NULL)
            return refuse(err, def, key, value,
                          "It must be a PKCS#11 URI (RFC 7512) starting with 'pkcs11:', such as "
                          "pkcs11:token=my-token;object=my-key.");
        return TE_OK;
    case CFG_TOPIC_PREFIX:
        if (strpbrk(value, "/+# ") != NULL)
            return refuse(err, def, key, value,
                          "It must be one MQTT topic level, without '/', '+', '#' or spaces.");
        return TE_OK;
    }
    return te_error_set(err, TE_ERR_INTERNAL, "Key '%s' has an unknown type.", key);
}
