/* Helpers every tedge program and subcommand shares: error and usage output in one format, the
 * global options (parsing, help text, log level), option values and help-flag detection. */
#include "tedge-cli/cli.h"

#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CLI_HELP_INDENT 2       /* where a short flag starts */
#define CLI_HELP_LONG_INDENT 6  /* where a long-only flag starts: after room for "-x, " */
#define CLI_HELP_GAP 2          /* spaces between the longest flags and the descriptions */

static const struct cli_option global_options[] = {
    {"--config-dir <CONFIG_DIR>",
     "Directory of tedge.toml [env: TEDGE_CONFIG_DIR] [default: /etc/tedge]"},
    {"--log-level <LOG_LEVEL>",
     "Configures the logging level [possible values: error, warn, info, debug, trace]"},
    {"--debug", "Turn-on the DEBUG log level"},
};
static const struct cli_option help_option = {"-h, --help", "Print help"};
static const struct cli_option version_option = {"-V, --version", "Print version"};

static size_t flags_indent(const struct cli_option *o)
{
    return strncmp(o->flags, "--", 2) == 0 ? CLI_HELP_LONG_INDENT : CLI_HELP_INDENT;
}

static size_t flags_width(const struct cli_option *o) { return flags_indent(o) + strlen(o->flags); }

static void print_option(FILE *out, const struct cli_option *o, size_t width)
{
    fprintf(out, "%*s%-*s%*s%s\n", (int)flags_indent(o), "",
            (int)(width - flags_indent(o)), o->flags, CLI_HELP_GAP, "", o->help);
}

void cli_print_options(FILE *out, const struct cli_option *own, size_t n, bool version)
{
    size_t n_global = sizeof(global_options) / sizeof(global_options[0]);
    size_t width = flags_width(&help_option);

    for (size_t i = 0; i < n; i++)
        if (flags_width(&own[i]) > width)
            width = flags_width(&own[i]);
    for (size_t i = 0; i < n_global; i++)
        if (flags_width(&global_options[i]) > width)
            width = flags_width(&global_options[i]);
    if (version && flags_width(&version_option) > width)
        width = flags_width(&version_option);
    for (size_t i = 0; i < n; i++)
        print_option(out, &own[i], width);
    for (size_t i = 0; i < n_global; i++)
        print_option(out, &global_options[i], width);
    print_option(out, &help_option, width);
    if (version)
        print_option(out, &version_option, width);
}

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

bool cli_option_value(const char *opt, int argc, char **argv, int *i, const char **value)
{
    size_t ol = strlen(opt);

    if (strncmp(argv[*i], opt, ol) != 0 || (argv[*i][ol] != '\0' && argv[*i][ol] != '='))
        return false;
    if (argv[*i][ol] == '=')
        *value = argv[*i] + ol + 1;
    else
        *value = *i + 1 < argc ? argv[++*i] : NULL;
    return true;
}

enum cli_global_result cli_global_take(struct cli_globals *g, int argc, char **argv, int *i)
{
    const char *value;

    if (cli_option_value("--config-dir", argc, argv, i, &value)) {
        if (value == NULL || value[0] == '\0') {
            cli_usage_error(g->config_dir_usage,
                            "a value is required for '--config-dir <CONFIG_DIR>'");
            return CLI_GLOBAL_USAGE_ERROR;
        }
        g->config_dir = value;
    } else if (cli_option_value("--log-level", argc, argv, i, &value)) {
        if (value == NULL) {
            cli_usage_error(g->log_level_usage,
                            "a value is required for '--log-level <LOG_LEVEL>'");
            return CLI_GLOBAL_USAGE_ERROR;
        }
        g->log_level = value;
    } else if (strcmp(argv[*i], "--debug") == 0) {
        g->debug = true;
    } else {
        return CLI_GLOBAL_NONE;
    }
    return CLI_GLOBAL_TAKEN;
}

int cli_global_apply(const struct cli_globals *g)
{
    int lvl;

    if (g->log_level != NULL) {
        if ((lvl = log_level_from_name(g->log_level)) < 0)
            return cli_usage_error(g->log_level_usage,
                                   "invalid value '%s' for '--log-level <LOG_LEVEL>' [possible "
                                   "values: error, warn, info, debug, trace]", g->log_level);
        log_set_level((enum log_level)lvl);
    }
    if (g->debug)
        log_set_level(LOG_LVL_DEBUG);
    return CLI_EXIT_OK;
}
