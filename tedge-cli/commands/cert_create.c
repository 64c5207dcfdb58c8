/* `tedge cert create`: a self-signed device certificate; in mode off with a new key file, with an
 * HSM for the key already on the token. Nothing is written unless everything can be. */
#include "tedge-cli/commands/cert_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/pk.h>

#include "common/buf.h"
#include "tedge-cli/key/x509_write.h"

#define NOT_BEFORE_SLACK (24 * 3600) /* upstream: valid from yesterday, so valid "today" anywhere */

/* Upstream's message when the file appeared after the first check. */
static int exists_error(int ret, bool is_key, const char *path, struct te_error *err)
{
    if (ret == TE_ERR_EXISTS && is_key)
        te_error_set(err, TE_ERR_EXISTS, CERT_MSG_KEY_EXISTS, path);
    else if (ret == TE_ERR_EXISTS)
        te_error_set(err, TE_ERR_EXISTS, CERT_MSG_CERT_EXISTS, path);
    return ret;
}

/* Mode off: a new key, the certificate for it, then both files (the key first: a key without a
 * certificate is removed again, so a failure leaves neither). */
static int create_with_new_key(const struct device_key_config *k,
                               const struct x509_subject *subject, unsigned days,
                               struct te_error *err)
{
    struct x509_key key = {0};
    mbedtls_pk_context pk;
    char *cert_pem = NULL, *key_pem = NULL;
    int ret;

    mbedtls_pk_init(&pk);
    if ((ret = x509_new_ec_key(&pk, err)) != TE_OK ||
        (ret = x509_key_from_pk(&key, &pk, err)) != TE_OK ||
        (ret = x509_write_self_signed(&key, subject, time(NULL) - NOT_BEFORE_SLACK, days,
                                      &cert_pem, err)) != TE_OK ||
        (ret = x509_key_to_pkcs8_pem(&pk, &key_pem, err)) != TE_OK)
        goto exit;
    ret = cert_write_new(k->key_path, key_pem, strlen(key_pem), CERT_KEY_FILE_MODE, err);
    if (exists_error(ret, true, k->key_path, err) != TE_OK)
        goto exit;
    ret = cert_write_new(k->cert_path, cert_pem, strlen(cert_pem), CERT_FILE_MODE, err);
    if (exists_error(ret, false, k->cert_path, err) != TE_OK) {
        unlink(k->key_path);
        goto exit;
    }
    cert_give_to_tedge(k->key_path);
    cert_give_to_tedge(k->cert_path);
exit:
    te_free_secret(key_pem);
    free(cert_pem);
    x509_key_clear(&key);
    mbedtls_pk_free(&pk); /* mbedTLS zeroizes the private key */
    return ret;
}

/* HSM: the key is on the token already; only the certificate is written. */
static int create_with_hsm(const struct device_key_config *k, const struct x509_subject *subject,
                           unsigned days, struct te_error *err)
{
    struct x509_key key = {0};
    struct signer *s = NULL;
    char *cert_pem = NULL;
    int ret;

    if ((ret = cert_open_device_key(k, "cert create", &s, &key, err)) != TE_OK)
        goto exit;
    if ((ret = x509_write_self_signed(&key, subject, time(NULL) - NOT_BEFORE_SLACK, days,
                                      &cert_pem, err)) != TE_OK)
        goto exit;
    ret = cert_write_new(k->cert_path, cert_pem, strlen(cert_pem), CERT_FILE_MODE, err);
    if (exists_error(ret, false, k->cert_path, err) == TE_OK)
        cert_give_to_tedge(k->cert_path);
exit:
    free(cert_pem);
    x509_key_clear(&key);
    signer_close(s);
    return ret;
}

int cert_create(const struct cli_ctx *ctx, const struct cert_opts *o)
{
    struct te_error err = {0};
    struct device_key_config *k = NULL;
    struct cert_template t = {0};
    struct x509_subject subject = {0};
    struct cfg *c = NULL;
    char *id = NULL, what[X509_CN_MAX * 4 + 64];
    int ret = CLI_EXIT_ERROR;

    /* like upstream: without --device-id, the CN of the existing certificate (which then
     * stops the command because it exists) */
    if ((ret = cert_load_with_id(ctx, o, &c, &k, &id)) != CLI_EXIT_OK)
        goto exit;
    snprintf(what, sizeof(what), "create a test certificate for the device %.*s.", X509_CN_MAX * 2,
             id);
    for (char *p = what; *p != '\0'; p++) /* the id is not checked yet: no control characters */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (cert_subject_load(c, id, &t, &subject, &err) != TE_OK) {
        ret = cert_fail(what, &err);
        goto exit;
    }
    if (cert_path_exists(k->cert_path)) {
        te_error_set(&err, TE_ERR_EXISTS, CERT_MSG_CERT_EXISTS, k->cert_path);
        ret = cert_fail(what, &err);
        goto exit;
    }
    if (!device_key_in_hsm(k) && cert_path_exists(k->key_path)) {
        te_error_set(&err, TE_ERR_EXISTS, CERT_MSG_KEY_EXISTS, k->key_path);
        ret = cert_fail(what, &err);
        goto exit;
    }
    if ((device_key_in_hsm(k) ? create_with_hsm(k, &subject, t.days, &err)
                              : create_with_new_key(k, &subject, t.days, &err)) != TE_OK) {
        ret = cert_fail(what, &err);
        goto exit;
    }
    fprintf(stderr, "Certificate created successfully\n"
                    "    => the certificate has to be uploaded to the cloud\n"
                    "    => before the device can be connected\n\n");
    ret = cert_print(k->cert_path, &err) == TE_OK ? CLI_EXIT_OK : cert_fail(what, &err);
exit:
    free(id);
    cert_template_free(&t);
    device_key_free(k);
    cfg_free(c);
    return ret;
}
