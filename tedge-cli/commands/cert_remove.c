/* `tedge cert remove`: deletes the device certificate, and in mode off its key file too (a key
 * in an HSM is never deleted here); upstream's messages. */
#include "tedge-cli/commands/cert_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REMOVE_WHAT "remove the device certificate"

/* 1 when removed, 0 when there was nothing, negative with err set on failure. */
static int remove_file(const char *path, const char *what, struct te_error *err)
{
    if (unlink(path) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    return te_error_set(err, TE_ERR_IO, "Cannot remove the %s '%s': %s.", what, path,
                        strerror(errno));
}

int cert_remove(const struct cli_ctx *ctx, const struct cert_opts *o)
{
    struct te_error err = {0};
    struct device_key_config *k = NULL;
    struct cfg *c = NULL;
    int ret = CLI_EXIT_ERROR, cert = 0, key = 0;

    if (cert_load(ctx, o, &c, &k, &err) != TE_OK) {
        ret = cli_fail("%s", te_error_message(&err));
        goto exit;
    }
    if ((cert = remove_file(k->cert_path, "certificate", &err)) < 0 ||
        (!device_key_in_hsm(k) && (key = remove_file(k->key_path, "private key", &err)) < 0)) {
        ret = cert_fail(REMOVE_WHAT, &err);
        goto exit;
    }
    fprintf(stderr, cert > 0 || key > 0 ? "Certificate was successfully removed\n"
                                        : "There is no certificate to remove\n");
    ret = CLI_EXIT_OK;
exit:
    device_key_free(k);
    cfg_free(c);
    return ret;
}
