/* tedge-mapper entry point: global options (before or after the subcommand, like upstream's clap
 * globals), `c8y [--profile NAME]`, and the exit code of the built-in Cumulocity bridge. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "tedge-cli/bridge/bridge.h"
#include "tedge-cli/cli.h"

#define MAPPER_MAX_ARGS 64 /* more than tedge-mapper ever takes */
#define MAPPER_USAGE "tedge-mapper [OPTIONS] <COMMAND>"
#define MAPPER_C8Y_USAGE "tedge-mapper c8y [OPTIONS]"
#define MAPPER_PROFILE_ENV "TEDGE_CLOUD_PROFILE" /* upstream's env for --profile */

static void print_help(FILE *out)
{
    fprintf(out,
            "tedge-mapper runs the built-in bridge between the local MQTT broker and the cloud\n\n"
            "Usage: " MAPPER_USAGE "\n\n"
            "Commands:\n"
            "  c8y   Bridge the local broker with Cumulocity\n"
            "  help  Print this message or the help of the given subcommand\n\n"
            "Options:\n%s"
            "  -h, --help                     Print help\n"
            "  -V, --version                  Print version\n",
            cli_global_options_help);
}

static void print_c8y_help(FILE *out)
{
    fprintf(out,
            "Bridge the local broker with Cumulocity: forwards c8y/<topic> to the cloud and the\n"
            "cloud's messages to c8y/<topic> (c8y.bridge.topic_prefix), with the device key of\n"
            "device.cryptoki.mode, and reports its health on\n"
            "te/device/main/service/tedge-mapper-bridge-c8y/status/health. Runs until SIGTERM.\n\n"
            "Usage: " MAPPER_C8Y_USAGE "\n\n"
            "Options:\n"
            "      --profile <PROFILE>        The c8y profile to use "
            "[env: " MAPPER_PROFILE_ENV "]\n"
            "%s"
            "  -h, --help                     Print help\n",
            cli_global_options_help);
}

/* Takes the value of an option given as "--opt VALUE" or "--opt=VALUE"; 1 when argv[*i] is opt
 * (value NULL when missing), 0 otherwise. */
static int option_value(const char *opt, int argc, char **argv, int *i, const char **value)
{
    size_t ol = strlen(opt);

    if (strncmp(argv[*i], opt, ol) != 0)
        return 0;
    if (argv[*i][ol] == '=') {
        *value = argv[*i] + ol + 1;
        return 1;
    }
    if (argv[*i][ol] != '\0')
        return 0;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

static int run_c8y(const char *config_dir, const char *profile)
{
    struct te_error err = {0};
    struct bridge_config *bc = NULL;
    struct cfg *c = NULL;
    int code = BRIDGE_EXIT_CONFIG;

    if (cfg_load(config_dir, &c, &err) != TE_OK ||
        bridge_config_load(c, profile, &bc, &err) != TE_OK) {
        log_error("%s", te_error_message(&err));
        goto exit;
    }
    code = bridge_run(bc, &err);
    if (code != BRIDGE_EXIT_OK)
        log_error("tedge-mapper c8y stopped: %s", te_error_message(&err));
exit:
    bridge_config_free(bc);
    cfg_free(c);
    return code;
}

int main(int argc, char **argv)
{
    const char *config_dir = NULL, *level = NULL, *profile = NULL, *value;
    char *rest[MAPPER_MAX_ARGS + 1];
    bool debug = false, help = false;
    int n = 0, lvl;

    log_init("tedge-mapper");
    log_set_level(LOG_LVL_INFO);
    if (argc > MAPPER_MAX_ARGS)
        return cli_usage_error(MAPPER_USAGE, "too many arguments");
    for (int i = 1; i < argc; i++) {
        if (option_value("--config-dir", argc, argv, &i, &value)) {
            if (value == NULL || value[0] == '\0')
                return cli_usage_error(MAPPER_USAGE,
                                       "a value is required for '--config-dir <CONFIG_DIR>'");
            config_dir = value;
        } else if (option_value("--log-level", argc, argv, &i, &value)) {
            if (value == NULL)
                return cli_usage_error(MAPPER_USAGE,
                                       "a value is required for '--log-level <LOG_LEVEL>'");
            level = value;
        } else if (option_value("--profile", argc, argv, &i, &value)) {
            if (value == NULL || value[0] == '\0')
                return cli_usage_error(MAPPER_C8Y_USAGE,
                                       "a value is required for '--profile <PROFILE>'");
            profile = value;
        } else if (strcmp(argv[i], "--debug") == 0) {
            debug = true;
        } else if (cli_is_help(argv[i])) {
            help = true;
        } else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
            printf("tedge-mapper %s\n", TEDGE_VERSION);
            return CLI_EXIT_OK;
        } else {
            rest[n++] = argv[i];
        }
    }
    rest[n] = NULL;
    if (level != NULL) {
        if ((lvl = log_level_from_name(level)) < 0)
            return cli_usage_error(MAPPER_USAGE,
                                   "invalid value '%s' for '--log-level <LOG_LEVEL>' [possible "
                                   "values: error, warn, info, debug, trace]", level);
        log_set_level((enum log_level)lvl);
    }
    if (debug)
        log_set_level(LOG_LVL_DEBUG);
    if (n > 0 && strcmp(rest[0], "help") == 0) {
        if (n > 1 && strcmp(rest[1], "c8y") == 0)
            print_c8y_help(stdout);
        else if (n > 1)
            return cli_usage_error(MAPPER_USAGE, "unrecognized subcommand '%s'", rest[1]);
        else
            print_help(stdout);
        return CLI_EXIT_OK;
    }
    if (n == 0) {
        if (help) {
            print_help(stdout);
            return CLI_EXIT_OK;
        }
        print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(rest[0], "c8y") != 0) {
        if (strcmp(rest[0], "az") == 0 || strcmp(rest[0], "aws") == 0)
            return cli_fail("tedge-mapper %s is not supported by this build: only c8y is.",
                            rest[0]);
        if (rest[0][0] == '-')
            return cli_usage_error(MAPPER_USAGE, "unexpected argument '%s' found", rest[0]);
        return cli_usage_error(MAPPER_USAGE, "unrecognized subcommand '%s'", rest[0]);
    }
    if (help) {
        print_c8y_help(stdout);
        return CLI_EXIT_OK;
    }
    if (n > 1)
        return cli_usage_error(MAPPER_C8Y_USAGE, "unexpected argument '%s' found", rest[1]);
    if (profile == NULL && (value = getenv(MAPPER_PROFILE_ENV)) != NULL && value[0] != '\0')
        profile = value;
    return run_c8y(cfg_resolve_dir(config_dir), profile);
}
