/* The tedge command line: the context every subcommand receives, the handler type, and the
 * helpers they share. A new subcommand is a handler declared here plus one row in the command
 * table of tedge_main.c. */
#ifndef TEDGE_CLI_CLI_H
#define TEDGE_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_ERROR 1 /* the command ran and failed */
#define CLI_EXIT_USAGE 2 /* wrong arguments (the exit code clap uses upstream) */

/* Resolved global options. They may appear anywhere on the command line (before or after
 * the subcommand); tedge_main.c removes them before calling a handler. */
struct cli_ctx {
    const char *prog;       /* "tedge" */
    const char *config_dir; /* --config-dir, else $TEDGE_CONFIG_DIR, else /etc/tedge */
};

/* argv[0] is the subcommand's name ("config"); returns the process exit code. */
typedef int (*cli_handler)(const struct cli_ctx *ctx, int argc, char **argv);

struct cli_command {
    const char *name;
    cli_handler run;
    const char *summary; /* one line for `tedge --help` */
};

/* Subcommands (tedge-cli/commands/). */
int cli_config(const struct cli_ctx *ctx, int argc, char **argv);
int cli_cert(const struct cli_ctx *ctx, int argc, char **argv);
int cli_connect(const struct cli_ctx *ctx, int argc, char **argv);
int cli_disconnect(const struct cli_ctx *ctx, int argc, char **argv);
int cli_reconnect(const struct cli_ctx *ctx, int argc, char **argv);

/* One row of an "Options:" block in --help: flags as typed ("--device-id <ID>", "-h, --help")
 * and the one-line description. */
struct cli_option {
    const char *flags;
    const char *help;
};

/* Prints the rows of an "Options:" block the way clap lays them out upstream: long-only flags
 * indented past where a short flag would be, every description aligned two columns after the
 * longest flags of the block. own (n rows, may be NULL) comes first, then the global options,
 * "-h, --help" and, with version, "-V, --version". */
void cli_print_options(FILE *out, const struct cli_option *own, size_t n, bool version);

/* Prints "Error: <message>" on stderr and returns CLI_EXIT_ERROR. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "error: <message>" and a pointer to --help on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool cli_is_help(const char *arg); /* -h or --help */

/* Takes an option given as "--opt VALUE" or "--opt=VALUE": true when argv[*i] is opt, with
 * *value (NULL when missing) and *i past the value; false when argv[*i] is another argument. */
bool cli_option_value(const char *opt, int argc, char **argv, int *i, const char **value);

/* The options every program (tedge, tedge-mapper) takes anywhere on its command line, like
 * upstream's clap globals: --config-dir, --log-level and --debug. */
struct cli_globals {
    const char *config_dir_usage; /* in: the usage line printed with an error about --config-dir */
    const char *log_level_usage;  /* in: likewise for --log-level */
    const char *config_dir;       /* --config-dir, NULL when not given */
    const char *log_level;        /* --log-level, NULL when not given */
    bool debug;                   /* --debug */
};

enum cli_global_result {
    CLI_GLOBAL_NONE = 0,          /* not a global option */
    CLI_GLOBAL_TAKEN,             /* taken into the struct (with its value) */
    CLI_GLOBAL_USAGE_ERROR,       /* its value is missing; the error is printed */
};

/* Takes argv[*i] into g when it is a global option (*i advances past a separate value). */
enum cli_global_result cli_global_take(struct cli_globals *g, int argc, char **argv, int *i);
/* Sets the log level that --log-level and --debug ask for: CLI_EXIT_OK, or CLI_EXIT_USAGE with
 * the error printed for a level that does not exist. */
int cli_global_apply(const struct cli_globals *g);

#endif
