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
            "Options:\n");
    cli_print_options(out, NULL, 0, true);
}

static const struct cli_option profile_option = {
    "--profile <PROFILE>", "The c8y profile to use [env: " MAPPER_PROFILE_ENV "]"};

static void print_c8y_help(FILE *out)
{
    fprintf(out,
            "Bridge the local broker with Cumulocity: forwards c8y/<topic> to the cloud and the\n"
            "cloud's messages to c8y/<topic> (c8y.bridge.topic_prefix), with the device key of\n"
            "device.cryptoki.mode, and reports its health on\n"
            "te/device/main/service/tedge-mapper-bridge-c8y/status/health. Runs until SIGTERM.\n\n"
            "Usage: " MAPPER_C8Y_USAGE "\n\n"
            "Options:\n");
    cli_print_options(out, &profile_option, 1, false);
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
    struct cli_globals g = {.config_dir_usage = MAPPER_USAGE, .log_level_usage = MAPPER_USAGE};
    const char *profile = NULL, *value;
    char *rest[MAPPER_MAX_ARGS + 1];
    bool help = false;
    int n = 0;
    enum cli_global_result taken;

    log_init("tedge-mapper");
    log_set_level(LOG_LVL_INFO);
    if (argc > MAPPER_MAX_ARGS)
        return cli_usage_error(MAPPER_USAGE, "too many arguments");
    for (int i = 1; i < argc; i++) {
        if ((taken = cli_global_take(&g, argc, argv, &i)) == CLI_GLOBAL_USAGE_ERROR)
            return CLI_EXIT_USAGE;
        if (taken == CLI_GLOBAL_TAKEN)
            continue;
        if (cli_option_value("--profile", argc, argv, &i, &value)) {
            if (value == NULL || value[0] == '\0')
                return cli_usage_error(MAPPER_C8Y_USAGE,
                                       "a value is required for '--profile <PROFILE>'");
            profile = value;
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
    if (cli_global_apply(&g) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
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
    return run_c8y(cfg_resolve_dir(g.config_dir), profile);
}
