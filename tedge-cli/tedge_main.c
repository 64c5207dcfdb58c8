/* tedge entry point: global options (accepted before or after the subcommand, like upstream's
 * clap globals) and the table-driven subcommand dispatcher. */
#include "common/config.h"
#include "common/log.h"
#include "tedge-cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEDGE_MAX_ARGS 256 /* more arguments than any tedge command takes */

/* Add a subcommand here: {name, handler (declared in cli.h), one-line summary}. */
static const struct cli_command commands[] = {
    {"config", cli_config, "Configure Thin Edge"},
    {"cert", cli_cert, "Create and manage device certificate"},
    {"connect", cli_connect, "Connect to cloud provider"},
    {"disconnect", cli_disconnect, "Remove bridge connection for a provider"},
    {"reconnect", cli_reconnect, "Reconnect command, calls disconnect followed by connect"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_help(FILE *out)
{
    size_t width = 4; /* "help" */
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strlen(commands[i].name) > width)
            width = strlen(commands[i].name);
    fprintf(out, "tedge is the command line tool for thin-edge.io with hardware security module "
                 "support\n\nUsage: tedge [OPTIONS] <COMMAND>\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-*s  %s\n", (int)width, commands[i].name, commands[i].summary);
    fprintf(out, "  %-*s  %s\n", (int)width, "help",
            "Print this message or the help of the given subcommand");
    fprintf(out, "\nOptions:\n");
    cli_print_options(out, NULL, 0, true);
}

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    struct cli_globals g = {.config_dir_usage = "tedge --config-dir <CONFIG_DIR> <COMMAND>",
                            .log_level_usage = "tedge --log-level <LOG_LEVEL> <COMMAND>"};
    char *rest[TEDGE_MAX_ARGS + 1];
    int n = 0;
    bool passthrough = false;
    struct cli_ctx ctx = {.prog = "tedge"};
    const struct cli_command *cmd;
    enum cli_global_result taken;

    log_init("tedge");
    log_set_level(LOG_LVL_WARN);
    if (argc > TEDGE_MAX_ARGS)
        return cli_usage_error("tedge [OPTIONS] <COMMAND>", "too many arguments");
    /* Global options may come anywhere before a "--" (upstream: clap global arguments). */
    for (int i = 1; i < argc; i++) {
        if (passthrough) {
            rest[n++] = argv[i];
        } else if (strcmp(argv[i], "--") == 0) {
            passthrough = true;
            rest[n++] = argv[i];
        } else if ((taken = cli_global_take(&g, argc, argv, &i)) == CLI_GLOBAL_USAGE_ERROR) {
            return CLI_EXIT_USAGE;
        } else if (taken == CLI_GLOBAL_NONE) {
            rest[n++] = argv[i];
        }
    }
    rest[n] = NULL;
    if (cli_global_apply(&g) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    ctx.config_dir = cfg_resolve_dir(g.config_dir);

    if (n == 0) {
        print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_is_help(rest[0])) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(rest[0], "-V") == 0 || strcmp(rest[0], "--version") == 0) {
        printf("tedge %s\n", TEDGE_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(rest[0], "help") == 0) {
        if (n == 1) {
            print_help(stdout);
            return CLI_EXIT_OK;
        }
        if ((cmd = find_command(rest[1])) == NULL)
            return cli_usage_error("tedge help [COMMAND]", "unrecognized subcommand '%s'", rest[1]);
        char *help_argv[] = {rest[1], "--help", NULL};
        return cmd->run(&ctx, 2, help_argv);
    }
    if (rest[0][0] == '-')
        return cli_usage_error("tedge [OPTIONS] <COMMAND>", "unexpected argument '%s' found",
                               rest[0]);
    if ((cmd = find_command(rest[0])) == NULL)
        return cli_usage_error("tedge [OPTIONS] <COMMAND>", "unrecognized subcommand '%s'",
                               rest[0]);
    log_debug("command=%s config_dir=%s", cmd->name, ctx.config_dir);
    return cmd->run(&ctx, n, rest);
}
