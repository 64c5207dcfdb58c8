/* The bridge's own messages (see bridge_health.h): names and topics derived from the prefix,
 * profile and device id, and the SmartREST 102 lines with CSV quoting. */
#include "tedge-cli/bridge/bridge_health.h"

#include <stdio.h>
#include <string.h>

bool bridge_csv_field(char *out, size_t out_size, const char *field)
{
    size_t n = strnlen(out, out_size);
    bool quote = strpbrk(field, ",\"\r\n") != NULL;
    size_t need = strlen(field) + (quote ? 2 : 0);

    for (const char *p = field; *p != '\0'; p++)
        need += *p == '"';
    if (n >= out_size || need >= out_size - n)
        return false;
    if (quote)
        out[n++] = '"';
    for (const char *p = field; *p != '\0'; p++) {
        if (*p == '"')
            out[n++] = '"';
        out[n++] = *p;
    }
    if (quote)
        out[n++] = '"';
    out[n] = '\0';
    return true;
}

/* "102,<xid>,service,<service>,<status>" into out: false when it does not fit. */
static bool smartrest_102(char *out, size_t size, const char *xid, const char *service,
                          const char *status)
{
    const char *fields[] = {"102", xid, BRIDGE_SERVICE_TYPE, service, status};

    out[0] = '\0';
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (i > 0) {
            size_t n = strlen(out);
            if (n + 1 >= size)
                return false;
            out[n] = ',';
            out[n + 1] = '\0';
        }
        if (!bridge_csv_field(out, size, fields[i]))
            return false;
    }
    return true;
}

/* a + b + c into out: false when it does not fit. */
static bool join3(char *out, size_t size, const char *a, const char *b, const char *c)
{
    int n = snprintf(out, size, "%s%s%s", a, b, c);
    return n >= 0 && (size_t)n < size;
}

int bridge_health_init(struct bridge_health *h, const char *prefix, const char *profile,
                       const char *device_id, struct te_error *err)
{
    char xid[BRIDGE_NAME_MAX];
    bool with_profile = profile != NULL && profile[0] != '\0';
    int ret = TE_OK;

    memset(h, 0, sizeof(*h));
    if (prefix == NULL || prefix[0] == '\0' || device_id == NULL || device_id[0] == '\0')
        return te_error_set(err, TE_ERR_INVALID,
                            "The bridge needs a topic prefix and a device id.");
    if (!join3(h->service, sizeof(h->service), BRIDGE_SERVICE_PREFIX, prefix, "") ||
        !join3(h->topic, sizeof(h->topic), "te/device/main/service/", h->service,
               "/status/health") ||
        !join3(h->local_client_id, sizeof(h->local_client_id), BRIDGE_LOCAL_CLIENT_ID,
               with_profile ? "@" : "", with_profile ? profile : "") ||
        !join3(xid, sizeof(xid), device_id, ":device:main:service:", h->service) ||
        !smartrest_102(h->smartrest_up, sizeof(h->smartrest_up), xid, h->service, "up") ||
        !smartrest_102(h->smartrest_down, sizeof(h->smartrest_down), xid, h->service, "down")) {
        ret = te_error_set(err, TE_ERR_CONFIG,
                           "The device id or the topic prefix is too long for the bridge's "
                           "service name (at most %d characters).", BRIDGE_NAME_MAX / 2);
        goto exit;
    }
exit:
    return ret;
}
