/* `tedge cert show`: upstream's fields (subject, issuer, status, validity in RFC 2822, serial,
 * SHA-1 thumbprint) plus the public key's type and size. */
#include "tedge-cli/commands/cert_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/sha1.h>
#include <mbedtls/x509_crt.h>

#include "common/x509_name.h"

#define SHOW_DN_MAX 1024       /* subject or issuer as text */
#define SHOW_SERIAL_MAX 128    /* a 20-byte serial is 49 decimal digits */
#define SECS_PER_YEAR 31557600 /* 365.25 days, as upstream's humantime counts */
#define SECS_PER_MONTH 2630016 /* 30.44 days, likewise */

/* Parses the certificate file; the messages say what is wrong with the file. */
static int load_crt(const char *path, mbedtls_x509_crt *crt, struct te_error *err)
{
    int detail, ret = x509_crt_load_file(crt, path, &detail);

    if (ret == TE_ERR_NOT_FOUND && detail == ENOENT)
        return te_error_set(err, TE_ERR_NOT_FOUND, CERT_MSG_CERT_MISSING, path);
    if (ret == TE_ERR_NOT_FOUND || ret == TE_ERR_PERMISSION)
        return te_error_set(err, TE_ERR_PERMISSION, "Cannot read the certificate '%s': %s.", path,
                            strerror(detail));
    if (ret != TE_OK)
        return te_error_set(err, TE_ERR_MALFORMED,
                            "The file '%s' does not hold a PEM or DER X.509 certificate: replace "
                            "it, or run `tedge cert remove` and `tedge cert create`.", path);
    return TE_OK;
}

/* Appends to out without ever writing past size; *used stays below size. */
static void append_text(char *out, size_t size, size_t *used, const char *text, size_t len)
{
    for (size_t i = 0; i < len && *used + 1 < size; i++) {
        unsigned char ch = (unsigned char)text[i];
        out[(*used)++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch; /* no control characters */
    }
    out[*used] = '\0';
}

/* "CN=dev-1, O=Thin Edge, OU=Device": short names and raw values like upstream's x509-parser
 * (mbedtls_x509_dn_gets would escape ',' and '='). */
static void format_dn(const mbedtls_x509_name *dn, char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (const mbedtls_x509_name *n = dn; n != NULL && n->oid.p != NULL; n = n->next) {
        const char *sn = NULL;
        char oid[64];

        if (mbedtls_oid_get_attr_short_name(&n->oid, &sn) != 0) {
            if (mbedtls_oid_get_numeric_string(oid, sizeof(oid), &n->oid) < 0)
                snprintf(oid, sizeof(oid), "?");
            sn = oid;
        }
        append_text(out, size, &used, sn, strlen(sn));
        append_text(out, size, &used, "=", 1);
        append_text(out, size, &used, (const char *)n->val.p, n->val.len);
        if (n->next != NULL && n->next->oid.p != NULL)
            append_text(out, size, &used, n->next_merged ? " + " : ", ", n->next_merged ? 3 : 2);
    }
}

static time_t x509_time_to_epoch(const mbedtls_x509_time *t)
{
    struct tm tm = {0};

    tm.tm_year = t->year - 1900;
    tm.tm_mon = t->mon - 1;
    tm.tm_mday = t->day;
    tm.tm_hour = t->hour;
    tm.tm_min = t->min;
    tm.tm_sec = t->sec;
    return timegm(&tm);
}

/* "Wed, 31 Mar 2021 15:39:57 +0000" (RFC 2822, as upstream prints validity). */
static void format_rfc2822(time_t t, char *out, size_t size)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
        snprintf(out, size, "(invalid date)");
}

static void append_unit(char *out, size_t size, uint64_t n, const char *unit, bool plural)
{
    size_t used = strlen(out);

    if (n == 0 || used >= size)
        return;
    snprintf(out + used, size - used, "%s%" PRIu64 "%s%s", used ? " " : "", n, unit,
             plural && n > 1 ? "s" : "");
}

/* Upstream's humantime format to the second: "11months 29days 5h 2m 1s". */
static void format_duration(uint64_t secs, char *out, size_t size)
{
    uint64_t rem = secs % SECS_PER_YEAR;

    out[0] = '\0';
    if (secs == 0) {
        snprintf(out, size, "0s");
        return;
    }
    append_unit(out, size, secs / SECS_PER_YEAR, "year", true);
    append_unit(out, size, rem / SECS_PER_MONTH, "month", true);
    rem %= SECS_PER_MONTH;
    append_unit(out, size, rem / 86400, "day", true);
    rem %= 86400;
    append_unit(out, size, rem / 3600, "h", false);
    append_unit(out, size, rem % 3600 / 60, "m", false);
    append_unit(out, size, rem % 60, "s", false);
}

static void format_status(time_t from, time_t until, char *out, size_t size)
{
    time_t now = time(NULL);
    char d[128];

    if (now < from) {
        format_duration((uint64_t)(from - now), d, sizeof(d));
        snprintf(out, size, "NOT VALID YET (will be in: %s)", d);
    } else if (now > until) {
        format_duration((uint64_t)(now - until), d, sizeof(d));
        snprintf(out, size, "EXPIRED (since: %s)", d);
    } else {
        format_duration((uint64_t)(until - now), d, sizeof(d));
        snprintf(out, size, "VALID (expires in: %s)", d);
    }
}

/* "<decimal> (0x<hex>)", the hex in lower case without leading zeros, like upstream. */
static void format_serial(const mbedtls_x509_buf *serial, char *out, size_t size)
{
    char dec[SHOW_SERIAL_MAX], hex[SHOW_SERIAL_MAX] = "";
    size_t olen = 0, i = 0, used = 0;
    mbedtls_mpi n;

    mbedtls_mpi_init(&n);
    if (mbedtls_mpi_read_binary(&n, serial->p, serial->len) != 0 ||
        mbedtls_mpi_write_string(&n, 10, dec, sizeof(dec), &olen) != 0)
        snprintf(dec, sizeof(dec), "?");
    mbedtls_mpi_free(&n);
    while (i + 1 < serial->len && serial->p[i] == 0)
        i++;
    for (; i < serial->len && used + 3 < sizeof(hex); i++)
        used += (size_t)snprintf(hex + used, sizeof(hex) - used, used ? "%02x" : "%x",
                                 serial->p[i]);
    snprintf(out, size, "%s (0x%s)", dec, hex[0] ? hex : "0");
}

static void format_key(const mbedtls_pk_context *pk, char *out, size_t size)
{
    if (mbedtls_pk_can_do(pk, MBEDTLS_PK_RSA)) {
        snprintf(out, size, "RSA %zu-bit", mbedtls_pk_get_bitlen(pk));
    } else if (mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY)) {
        mbedtls_ecp_group_id id = mbedtls_pk_ec(*pk)->grp.id;
        snprintf(out, size, "EC %s",
                 id == MBEDTLS_ECP_DP_SECP256R1   ? "P-256"
                 : id == MBEDTLS_ECP_DP_SECP384R1 ? "P-384"
                 : id == MBEDTLS_ECP_DP_SECP521R1 ? "P-521"
                                                  : "(other curve)");
    } else {
        snprintf(out, size, "%s", mbedtls_pk_get_name(pk));
    }
}

int cert_print(const char *path, struct te_error *err)
{
    char subject[SHOW_DN_MAX], issuer[SHOW_DN_MAX], status[256], from[64], until[64];
    char serial[2 * SHOW_SERIAL_MAX + 8], key[64], thumb[41];
    unsigned char sha1[20];
    mbedtls_x509_crt crt;
    time_t t_from, t_until;
    int ret;

    mbedtls_x509_crt_init(&crt);
    if ((ret = load_crt(path, &crt, err)) != TE_OK)
        goto exit;
    format_dn(&crt.subject, subject, sizeof(subject));
    format_dn(&crt.issuer, issuer, sizeof(issuer));
    t_from = x509_time_to_epoch(&crt.valid_from);
    t_until = x509_time_to_epoch(&crt.valid_to);
    format_status(t_from, t_until, status, sizeof(status));
    format_rfc2822(t_from, from, sizeof(from));
    format_rfc2822(t_until, until, sizeof(until));
    format_serial(&crt.serial, serial, sizeof(serial));
    format_key(&crt.pk, key, sizeof(key));
    /* the thumbprint is the SHA-1 of the DER certificate, upper-case hex */
    mbedtls_sha1_ret(crt.raw.p, crt.raw.len, sha1);
    for (size_t i = 0; i < sizeof(sha1); i++)
        snprintf(thumb + 2 * i, 3, "%02X", sha1[i]);
    printf("Device certificate: %s\nSubject: %s\nIssuer: %s\nStatus: %s\nValid from: %s\n"
           "Valid up to: %s\nSerial number: %s\nThumbprint: %s\nPublic key: %s\n",
           path, subject, issuer, status, from, until, serial, thumb, key);
    fflush(stdout);
exit:
    mbedtls_x509_crt_free(&crt);
    return ret;
}

int cert_show(const struct cli_ctx *ctx, const struct cert_opts *o)
{
    struct te_error err = {0};
    struct device_key_config *k = NULL;
    struct cfg *c = NULL;
    int ret = CLI_EXIT_OK;

    if (o->cert_path == NULL && cert_load(ctx, o, &c, &k, &err) != TE_OK) {
        ret = cert_fail("show the device certificate", &err);
        goto exit;
    }
    if (cert_print(o->cert_path != NULL ? o->cert_path : k->cert_path, &err) != TE_OK)
        ret = cert_fail("show the device certificate", &err);
exit:
    device_key_free(k);
    cfg_free(c);
    return ret;
}
