/* Arguments and help of `tedge connect|reconnect|disconnect <cloud>` (upstream's names and
 * texts); the work is done by connect_c8y.c and disconnect.c. */
#include "tedge-cli/cli.h"
#include "tedge-cli/commands/connect_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROFILE_ENV "TEDGE_CLOUD_PROFILE" /* upstream's env for --profile */

enum verb { VERB_CONNECT, VERB_DISCONNECT, VERB_RECONNECT };

struct verb_info {
    const char *name;
    const char *about;      /* `tedge <verb> --help` */
    const char *c8y_about;  /* `tedge <verb> c8y --help` */
};

static const struct verb_info verbs[] = {
    [VERB_CONNECT] = {"connect", "Connect to cloud provider",
                      "Create connection to Cumulocity\n\nThe command will create config and "
                      "start edge relay from the device to c8y instance"},
    [VERB_DISCONNECT] = {"disconnect", "Remove bridge connection for a provider",
                         "Remove bridge connection to Cumulocity"},
    [VERB_RECONNECT] = {"reconnect", "Reconnect command, calls disconnect followed by connect",
                        "Remove bridge connection and reconnect to Cumulocity"},
};

static void print_verb_help(FILE *out, enum verb v)
{
    fprintf(out, "%s\n\nUsage: tedge %s [OPTIONS] <COMMAND>\n\nCommands:\n"
           "  c8y   %.*s\n  help  Print this message or the help of the given subcommand(s)\n"
           "\nOptions:\n", verbs[v].about, verbs[v].name,
           (int)strcspn(verbs[v].c8y_about, "\n"), verbs[v].c8y_about);
    cli_print_options(out, NULL, 0, false);
}

static void print_c8y_help(enum verb v)
{
    static const struct cli_option opts[] = {
        {"--test", "Test connection to Cumulocity"},
        {"--profile <PROFILE>", "The cloud profile you wish to use [env: " PROFILE_ENV "=]"},
    };

    printf("%s\n\nUsage: tedge %s c8y [OPTIONS]\n\nOptions:\n", verbs[v].c8y_about,
           verbs[v].name);
    /* --test is connect's own */
    if (v == VERB_CONNECT)
        cli_print_options(stdout, opts, 2, false);
    else
        cli_print_options(stdout, opts + 1, 1, false);
}

static int run_verb(enum verb v, const struct cli_ctx *ctx, int argc, char **argv)
{
    char usage[64];
    const char *profile = getenv(PROFILE_ENV), *cloud = NULL;
    bool test = false;
    struct connect_opts o = {.config_dir = ctx->config_dir};

    snprintf(usage, sizeof(usage), "tedge %s [OPTIONS] <COMMAND>", verbs[v].name);
    if (argc < 2) { /* like clap: the help on stderr, usage exit status */
        print_verb_help(stderr, v);
        return CLI_EXIT_USAGE;
    }
    if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        if (strcmp(argv[1], "help") == 0 && argc > 2 && strcmp(argv[2], "c8y") == 0)
            print_c8y_help(v);
        else
            print_verb_help(stdout, v);
        return CLI_EXIT_OK;
    }
    cloud = argv[1];
    if (strcmp(cloud, "az") == 0 || strcmp(cloud, "aws") == 0)
        return cli_fail("'tedge %s %s' is not supported: this tedge connects to Cumulocity only. "
                        "Use `tedge %s c8y`.", verbs[v].name, cloud, verbs[v].name);
    if (strcmp(cloud, "c8y") != 0)
        return cli_usage_error(usage, "unrecognized subcommand '%s'", cloud);
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            print_c8y_help(v);
            return CLI_EXIT_OK;
        } else if (v == VERB_CONNECT && strcmp(argv[i], "--test") == 0) {
            test = true;
        } else if (strcmp(argv[i], "--profile") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0')
                return cli_usage_error("tedge connect c8y --profile <PROFILE>",
                                       "a value is required for '--profile <PROFILE>' but none "
                                       "was supplied");
            profile = argv[++i];
        } else if (strncmp(argv[i], "--profile=", 10) == 0) {
            profile = argv[i] + 10;
        } else {
            snprintf(usage, sizeof(usage), "tedge %s c8y [OPTIONS]", verbs[v].name);
            return cli_usage_error(usage, "unexpected argument '%s' found", argv[i]);
        }
    }
    if (profile != NULL && profile[0] == '\0')
        profile = NULL;
    o.profile = profile;
    switch (v) {
    case VERB_DISCONNECT:
        return disconnect_c8y_run(ctx->config_dir, profile, false);
    case VERB_RECONNECT: {
        int code = disconnect_c8y_run(ctx->config_dir, profile, true);
        if (code != CLI_EXIT_OK)
            return code;
        o.mode = CONNECT_RECONNECT;
        return connect_c8y_run(&o);
    }
    case VERB_CONNECT:
    default:
        o.mode = test ? CONNECT_TEST : CONNECT_NEW;
        return connect_c8y_run(&o);
    }
}

int cli_connect(const struct cli_ctx *ctx, int argc, char **argv)
{
    return run_verb(VERB_CONNECT, ctx, argc, argv);
}

int cli_disconnect(const struct cli_ctx *ctx, int argc, char **argv)
{
    return run_verb(VERB_DISCONNECT, ctx, argc, argv);
}

int cli_reconnect(const struct cli_ctx *ctx, int argc, char **argv)
{
    return run_verb(VERB_RECONNECT, ctx, argc, argv);
}
