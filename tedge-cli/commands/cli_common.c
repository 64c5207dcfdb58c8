/* Helpers every tedge subcommand shares: error and usage output in one format, the help text
 * of the global options, and help-flag detection. */
#include "tedge-cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char cli_global_options_help[] =
    "      --config-dir <CONFIG_DIR>  Directory of tedge.toml [env: TEDGE_CONFIG_DIR] "
    "[default: /etc/tedge]\n"
    "      --log-level <LOG_LEVEL>    Configures the logging level [possible values: error, "
    "warn, info, debug, trace]\n"
    "      --debug                    Turn-on the DEBUG log level\n";

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("Error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_ERROR;
}

int cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    fputs("error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\nUsage: %s\n\nFor more information, try '--help'.\n", usage);
    return CLI_EXIT_USAGE;
}

bool cli_is_help(const char *arg)
{
    return arg != NULL && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0);
}
