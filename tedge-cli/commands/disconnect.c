/* `tedge disconnect c8y`: remove the bridge marker, restart mosquitto when it runs, stop and
 * disable the mapper. Disconnecting what is not connected succeeds (idempotent, as upstream). */
#include "tedge-cli/commands/connect_internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int disconnect_c8y_run(const char *config_dir, const char *profile, bool in_reconnect)
{
    struct connect_target t;
    struct svc_manager *svc = NULL;
    struct connect_step s;
    struct te_error err = {0};
    const char *what = in_reconnect ? "reconnect to Cumulocity cloud."
                                    : "remove the bridge to disconnect Cumulocity cloud";
    bool active = false;
    int r, code = 1;

    if (connect_target_init(&t, config_dir, profile, &err) != TE_OK ||
        svc_manager_load(config_dir, &svc, &err) != TE_OK) {
        code = connect_fail(what, "%s", te_error_message(&err));
        goto exit;
    }
    if (in_reconnect)
        connect_say("Disconnecting from Cumulocity");
    connect_step_start(&s, "Removing bridge config file");
    if (unlink(t.marker_path) != 0) {
        if (errno == ENOENT) {
            connect_step_finish(&s, TE_OK, NULL);
            connect_say("Bridge doesn't exist. Device is already disconnected from Cumulocity.");
            code = 0;
            goto exit;
        }
        r = te_error_set(&err, TE_ERR_IO, "Failed to delete %s: %s.", t.marker_path,
                         strerror(errno));
        connect_step_finish(&s, r, &err);
        goto exit;
    }
    connect_step_finish(&s, TE_OK, NULL);
    if (svc_manager_check_operational(svc, &err) != TE_OK) {
        connect_say("Service manager '%s' is not available, skipping stopping/disabling of tedge "
                    "components.", svc_manager_name(svc));
        code = 0;
        goto exit;
    }
    /* upstream: restart mosquitto only when it runs; a failure here is not fatal */
    if (svc_manager_is_active(svc, SVC_MOSQUITTO, &active, &err) == TE_OK && active) {
        connect_step_start(&s, "Restarting mosquitto to apply configuration");
        connect_step_finish(&s, svc_manager_run(svc, SVC_RESTART, SVC_MOSQUITTO, &err), &err);
    }
    code = 0;
    if (connect_program_installed("tedge-mapper")) {
        te_error_clear(&err);
        connect_step_start(&s, "Disabling %s", t.mapper_service);
        r = svc_manager_stop_and_disable(svc, t.mapper_service, &err);
        if (connect_step_finish(&s, r, &err) != TE_OK)
            code = 1;
    }
exit:
    svc_manager_free(svc);
    return code;
}
