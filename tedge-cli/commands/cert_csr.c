/* `tedge cert create-csr`: a certificate signing request signed by the device key (the key file,
 * made first when mode off has none, or the HSM key); the request replaces the previous one. */
#include "tedge-cli/commands/cert_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/pk.h>

#include "common/buf.h"
#include "tedge-cli/key/x509_write.h"

#define CSR_WHAT "generate a certificate signing request."

/* The request, and in mode off without a key file the new key's PEM for the caller to write. */
static int build_request(const struct device_key_config *k, const struct x509_subject *subject,
                         char **csr_pem, char **new_key_pem, struct te_error *err)
{
    struct x509_key key = {0};
    struct signer *s = NULL;
    mbedtls_pk_context pk;
    int ret;

    mbedtls_pk_init(&pk);
    if (!device_key_in_hsm(k) && !cert_path_exists(k->key_path)) {
        if ((ret = x509_new_ec_key(&pk, err)) != TE_OK ||
            (ret = x509_key_from_pk(&key, &pk, err)) != TE_OK ||
            (ret = x509_key_to_pkcs8_pem(&pk, new_key_pem, err)) != TE_OK)
            goto exit;
    } else if ((ret = cert_open_device_key(k, "cert create-csr", &s, &key, err)) != TE_OK) {
        goto exit;
    }
    ret = x509_write_csr(&key, subject, csr_pem, err);
exit:
    x509_key_clear(&key);
    signer_close(s);
    mbedtls_pk_free(&pk);
    return ret;
}

static int write_files(const struct device_key_config *k, const char *csr_path,
                       const char *csr_pem, const char *new_key_pem, struct te_error *err)
{
    int ret;

    if (new_key_pem != NULL) {
        ret = cert_write_new(k->key_path, new_key_pem, strlen(new_key_pem), CERT_KEY_FILE_MODE,
                             err);
        if (ret == TE_ERR_EXISTS)
            te_error_set(err, ret, CERT_MSG_KEY_EXISTS, k->key_path);
        if (ret != TE_OK)
            return ret;
    }
    if ((ret = cert_write_replace(csr_path, csr_pem, strlen(csr_pem), CERT_FILE_MODE, err)) !=
        TE_OK) {
        if (new_key_pem != NULL)
            unlink(k->key_path); /* no request: no new key either */
        return ret;
    }
    if (new_key_pem != NULL)
        cert_give_to_tedge(k->key_path);
    cert_give_to_tedge(csr_path);
    return TE_OK;
}

int cert_create_csr(const struct cli_ctx *ctx, const struct cert_opts *o)
{
    struct te_error err = {0};
    struct device_key_config *k = NULL;
    struct cert_template t = {0};
    struct x509_subject subject = {0};
    struct cfg *c = NULL;
    char *id = NULL, *csr_pem = NULL, *key_pem = NULL;
    int ret = CLI_EXIT_ERROR;

    /* without --device-id: the CN of the current certificate, as upstream */
    if ((ret = cert_load_with_id(ctx, o, &c, &k, &id)) != CLI_EXIT_OK)
        goto exit;
    if (cert_subject_load(c, id, &t, &subject, &err) != TE_OK) {
        ret = cert_fail(CSR_WHAT, &err);
        goto exit;
    }
    if (build_request(k, &subject, &csr_pem, &key_pem, &err) != TE_OK ||
        write_files(k, o->output_path != NULL ? o->output_path : k->csr_path, csr_pem, key_pem,
                    &err) != TE_OK) {
        ret = cert_fail(CSR_WHAT, &err);
        goto exit;
    }
    fprintf(stderr, "Certificate Signing Request was successfully created.\n");
    ret = CLI_EXIT_OK;
exit:
    te_free_secret(key_pem);
    free(csr_pem);
    free(id);
    cert_template_free(&t);
    device_key_free(k);
    cfg_free(c);
    return ret;
}
