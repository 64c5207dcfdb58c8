/* The tenant check of `tedge connect c8y`: the `iss` of the JWT Cumulocity sends on s/dat, and
 * whether it names the configured host. The token is untrusted input: every bound is checked. */
#include "tedge-cli/commands/connect_internal.h"

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define JWT_MAX 16384          /* Cumulocity's device tokens are ~1 KiB */
#define JWT_SHOWN_MAX 200      /* how much of a bad token a message quotes */

static int invalid(const char *jwt, const char *reason, struct te_error *err)
{
    return te_error_set(err, TE_ERR_MALFORMED,
                        "The JWT token received from Cumulocity is invalid.\nToken: %.*s%s\n"
                        "Reason: %s", JWT_SHOWN_MAX, jwt,
                        strlen(jwt) > JWT_SHOWN_MAX ? "..." : "", reason);
}

int connect_jwt_issuer(const char *jwt, char *out, size_t size, struct te_error *err)
{
    const char *dot1, *dot2;
    unsigned char *decoded = NULL;
    char *b64 = NULL;
    size_t plen, blen, dlen = 0;
    cJSON *json = NULL;
    const cJSON *iss;
    int ret;

    out[0] = '\0';
    if (strlen(jwt) > JWT_MAX)
        return invalid(jwt, "The token is too long.", err);
    if ((dot1 = strchr(jwt, '.')) == NULL || (dot2 = strchr(dot1 + 1, '.')) == NULL)
        return invalid(jwt, "JWT token format must be <header>.<payload>.<signature>.", err);
    plen = (size_t)(dot2 - dot1 - 1);
    /* base64url without padding -> standard base64 with padding, for mbedTLS */
    if ((b64 = malloc(plen + 4)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory decoding the JWT token.");
    for (size_t i = 0; i < plen; i++) {
        char ch = dot1[1 + i];
        if (ch == '=') {
            ret = invalid(jwt, "Cannot decode the payload of JWT token by Base64 without "
                          "padding.", err);
            goto exit;
        }
        b64[i] = ch == '-' ? '+' : ch == '_' ? '/' : ch;
    }
    blen = plen;
    while (blen % 4 != 0)
        b64[blen++] = '=';
    b64[blen] = '\0';
    if (plen % 4 == 1 || plen == 0 ||
        mbedtls_base64_decode(NULL, 0, &dlen, (const unsigned char *)b64, blen) ==
            MBEDTLS_ERR_BASE64_INVALID_CHARACTER ||
        (decoded = malloc(dlen + 1)) == NULL ||
        mbedtls_base64_decode(decoded, dlen + 1, &dlen, (const unsigned char *)b64, blen) != 0) {
        ret = invalid(jwt, "Cannot decode the payload of JWT token by Base64 without padding.",
                      err);
        goto exit;
    }
    decoded[dlen] = '\0';
    if ((json = cJSON_ParseWithLength((const char *)decoded, dlen)) == NULL ||
        !cJSON_IsObject(json)) {
        ret = invalid(jwt, "The payload of JWT token is not JSON.", err);
        goto exit;
    }
    iss = cJSON_GetObjectItemCaseSensitive(json, "iss");
    if (!cJSON_IsString(iss) || iss->valuestring == NULL) {
        ret = invalid(jwt, "The JSON decoded from JWT token doesn't contain 'iss' field.", err);
        goto exit;
    }
    if (strlen(iss->valuestring) >= size) {
        ret = invalid(jwt, "The 'iss' field is too long.", err);
        goto exit;
    }
    snprintf(out, size, "%s", iss->valuestring);
    ret = TE_OK;
exit:
    cJSON_Delete(json);
    free(decoded);
    free(b64);
    return ret;
}

/* The host part of "https://host:port/path", "host:port" or "host". */
static void host_of(const char *s, char *out, size_t size)
{
    const char *p = strstr(s, "://"), *end;
    size_t len;

    p = p != NULL ? p + 3 : s;
    if (*p == '[') { /* [v6]:port */
        end = strchr(p, ']');
        p++;
        len = end != NULL ? (size_t)(end - p) : strlen(p);
    } else {
        len = strcspn(p, ":/?#");
    }
    if (len >= size)
        len = size - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

bool connect_host_matches(const char *issuer, const char *configured_host)
{
    char a[CONNECT_URL_MAX], b[CONNECT_URL_MAX];

    if (issuer == NULL || configured_host == NULL || configured_host[0] == '\0')
        return false;
    host_of(issuer, a, sizeof(a));
    host_of(configured_host, b, sizeof(b));
    return a[0] != '\0' && strcasecmp(a, b) == 0;
}
