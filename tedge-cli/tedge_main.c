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
    fprintf(out, "\nOptions:\n%s", cli_global_options_help);
    fprintf(out, "  -h, --help                     Print help\n"
                 "  -V, --version                  Print version\n");
}

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Takes the value of a global option given as "--opt VALUE" or "--opt=VALUE". */
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
    if (*i + 1 >= argc) {
        *value = NULL;
        return 1;
    }
    *value = argv[++*i];
    return 1;
}

int main(int argc, char **argv)
{
    const char *config_dir = NULL, *level = NULL, *value;
    char *rest[TEDGE_MAX_ARGS + 1];
    int n = 0, lvl;
    bool debug = false, passthrough = false;
    struct cli_ctx ctx = {.prog = "tedge"};
    const struct cli_command *cmd;

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
        } else if (option_value("--config-dir", argc, argv, &i, &value)) {
            if (value == NULL || value[0] == '\0')
                return cli_usage_error("tedge --config-dir <CONFIG_DIR> <COMMAND>",
                                       "a value is required for '--config-dir <CONFIG_DIR>'");
            config_dir = value;
        } else if (option_value("--log-level", argc, argv, &i, &value)) {
            if (value == NULL)
                return cli_usage_error("tedge --log-level <LOG_LEVEL> <COMMAND>",
                                       "a value is required for '--log-level <LOG_LEVEL>'");
            level = value;
        } else if (strcmp(argv[i], "--debug") == 0) {
            debug = true;
        } else {
            rest[n++] = argv[i];
        }
    }
    rest[n] = NULL;
    if (level != NULL) {
        if ((lvl = log_level_from_name(level)) < 0)
            return cli_usage_error("tedge --log-level <LOG_LEVEL> <COMMAND>",
                                   "invalid value '%s' for '--log-level <LOG_LEVEL>' [possible "
                                   "values: error, warn, info, debug, trace]", level);
        log_set_level((enum log_level)lvl);
    }
    if (debug)
        log_set_level(LOG_LVL_DEBUG);
    ctx.config_dir = cfg_resolve_dir(config_dir);

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
