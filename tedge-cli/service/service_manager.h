/* The service manager used by `tedge connect|disconnect`: systemd by default, or the init system
 * described by the [init] table of <config-dir>/system.toml (upstream thin-edge.io's format). */
#ifndef TEDGE_CLI_SERVICE_MANAGER_H
#define TEDGE_CLI_SERVICE_MANAGER_H

#include <stdbool.h>

#include "common/err.h"

#define SVC_CONFIG_FILE "system.toml"      /* <config-dir>/system.toml, as upstream */
#define SVC_COMMAND_TIMEOUT_MS 120000      /* a service start may wait for a slow daemon */
#define SVC_SERVICE_NAME_MAX 128           /* "tedge-mapper-c8y@<profile>" and the like */

/* Service names as the init system knows them (upstream's unit names). */
#define SVC_MOSQUITTO "mosquitto"
#define SVC_MAPPER_C8Y "tedge-mapper-c8y"
#define SVC_AGENT "tedge-agent"

/*
 * [init] keys. Every action is an argv array; in every action but is_available the element "{}"
 * is replaced by the service name. A missing key keeps systemd's command (upstream's default);
 * other keys of [init] (upstream's custom actions) are accepted and ignored.
 *
 *   [init]
 *   name = "systemd"
 *   is_available = ["/bin/systemctl", "--version"]
 *   restart = ["/bin/systemctl", "restart", "{}"]
 *   stop = ["/bin/systemctl", "stop", "{}"]
 *   start = ["/bin/systemctl", "start", "{}"]
 *   enable = ["/bin/systemctl", "enable", "{}"]
 *   disable = ["/bin/systemctl", "disable", "{}"]
 *   is_active = ["/bin/systemctl", "is-active", "{}"]
 */
enum svc_action {
    SVC_IS_AVAILABLE = 0,
    SVC_RESTART,
    SVC_STOP,
    SVC_START,
    SVC_ENABLE,
    SVC_DISABLE,
    SVC_IS_ACTIVE,
    SVC_N_ACTIONS
};

struct svc_manager;

/* Reads <config_dir>/system.toml; a missing file means systemd. A file that does not parse or
 * holds a wrong type is an error naming file:line:col (TE_ERR_CONFIG). */
int svc_manager_load(const char *config_dir, struct svc_manager **out, struct te_error *err);
void svc_manager_free(struct svc_manager *m);

/* The [init] name ("systemd"), shown in the connect summary. */
const char *svc_manager_name(const struct svc_manager *m);
/* "systemctl" style key name of an action ("is_available", "restart", ...). */
const char *svc_action_name(enum svc_action a);

/* Runs is_available: TE_OK when it exits 0, else TE_ERR_UNSUPPORTED with
 * "Service manager '<name>' is not available on the system ...". */
int svc_manager_check_operational(struct svc_manager *m, struct te_error *err);

/* Runs an action for service; TE_OK only when the command exits 0. A non-zero exit is
 * TE_ERR_IO "Service command <"..."> failed with code: N.", a command that cannot be
 * started TE_ERR_NOT_FOUND, an action without "{}" or without a program TE_ERR_CONFIG. */
int svc_manager_run(struct svc_manager *m, enum svc_action a, const char *service,
                    struct te_error *err);
/* is_active: *active is whether the command exited 0. An error only when it could not run. */
int svc_manager_is_active(struct svc_manager *m, const char *service, bool *active,
                          struct te_error *err);

/* start then enable; stop then disable (upstream's pairs). */
int svc_manager_start_and_enable(struct svc_manager *m, const char *service, struct te_error *err);
int svc_manager_stop_and_disable(struct svc_manager *m, const char *service, struct te_error *err);

/* The argv of an action with "{}" replaced (tests and messages); NULL-terminated, malloc'd as
 * one block, free() it. */
int svc_manager_argv(const struct svc_manager *m, enum svc_action a, const char *service,
                     char ***argv_out, struct te_error *err);

#endif
