/* Reading a certificate's subject Common Name (see x509_name.h): the file checks, the parse
 * and the rules for a usable CN live only here. */
#include "common/x509_name.h"
#include "common/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/oid.h>

int x509_name_cn(const mbedtls_x509_name *name, char *out, size_t size)
{
    const mbedtls_x509_name *n;

    if (size > 0)
        out[0] = '\0';
    for (n = name; n != NULL; n = n->next)
        if (n->oid.p != NULL && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0)
            break;
    if (n == NULL || n->val.len == 0 || n->val.len > X509_NAME_CN_MAX || n->val.len >= size)
        return TE_ERR_NOT_FOUND; /* only the first CN counts: a later one is not the subject's */
    for (size_t i = 0; i < n->val.len; i++)
        if (n->val.p[i] < 0x20 || n->val.p[i] == 0x7f)
            return TE_ERR_NOT_FOUND;
    memcpy(out, n->val.p, n->val.len);
    out[n->val.len] = '\0';
    return TE_OK;
}

int x509_crt_load_file(mbedtls_x509_crt *crt, const char *path, int *detail)
{
    struct stat st;
    int r, unused;

    if (detail == NULL)
        detail = &unused;
    *detail = 0;
    if (stat(path, &st) != 0) {
        *detail = errno;
        return TE_ERR_NOT_FOUND;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > X509_NAME_FILE_MAX)
        return TE_ERR_MALFORMED;
    if (access(path, R_OK) != 0) {
        *detail = errno;
        return TE_ERR_PERMISSION;
    }
    if ((r = mbedtls_x509_crt_parse_file(crt, path)) < 0 || crt->raw.len == 0) {
        *detail = r < 0 ? r : 0;
        return TE_ERR_MALFORMED;
    }
    return TE_OK;
}

int x509_file_cn(const char *path, char **out, int *detail)
{
    mbedtls_x509_crt crt;
    char cn[X509_NAME_CN_MAX + 1];
    int ret;

    *out = NULL;
    mbedtls_x509_crt_init(&crt);
    if ((ret = x509_crt_load_file(&crt, path, detail)) != TE_OK)
        goto exit;
    if (x509_name_cn(&crt.subject, cn, sizeof(cn)) != TE_OK) {
        ret = TE_ERR_INVALID;
        goto exit;
    }
    if ((*out = strdup(cn)) == NULL)
        ret = TE_ERR_NOMEM;
exit:
    mbedtls_x509_crt_free(&crt);
    return ret;
}
