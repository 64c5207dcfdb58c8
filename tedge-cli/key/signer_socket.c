/* Socket backend of the signer (mode socket): signs through tedge-p11-server.
 * Not available yet: it arrives with the daemon (proto/ client). */
#include "tedge-cli/key/signer_internal.h"

int signer_socket_open(struct signer *s, const struct signer_config *cfg, struct te_error *err)
{
    (void)s;
    (void)cfg;
    return te_error_set(err, TE_ERR_UNSUPPORTED,
                        "device.cryptoki.mode 'socket' is not supported by this build yet.");
}
