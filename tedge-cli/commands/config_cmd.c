/* `tedge config get|set|unset|list`: upstream thin-edge.io's names, output formats and
 * messages, on top of the config model in common/config.h. */
#include "common/config.h"
#include "common/p11.h"
#include "tedge-cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET_MASK "********" /* what `list` prints for a PIN (`get` shows it) */
/* Redacting can lengthen a URI ("a" -> "a=***" per unknown query attribute): room for that. */
#define REDACT_GROWTH 5
#define CONFIG_MAX_ARGS 8      /* positional arguments any config subcommand takes, plus slack */

static const char config_usage[] = "tedge config [OPTIONS] <COMMAND>";

static void print_config_help(FILE *out)
{
    fprintf(out, "Configure Thin Edge\n\nUsage: %s\n\nCommands:\n"
                 "  get    Get the value of the provided configuration key\n"
                 "  set    Set or update the provided configuration key with the given value\n"
                 "  unset  Unset the provided configuration key\n"
                 "  list   Print the configuration keys and their values\n"
                 "\nOptions:\n", config_usage);
    cli_print_options(out, NULL, 0, false);
}

struct sub {
    const char *name;
    const char *usage;
    const char *about;
    const char *args_help;
    int min_args, max_args;
    bool has_profile;
};

static const struct cli_option profile_option = {
    "--profile <PROFILE>",
    "The cloud profile to use for a cloud key (c8y.*, az.*, aws.*) [env: TEDGE_CLOUD_PROFILE]"};
static const struct cli_option list_options[] = {
    {"--all", "Prints all the configuration keys, even those without a configured value"},
    {"--doc", "Prints all keys and descriptions with example values"},
};
static const char key_help[] =
    "  <KEY>  Configuration key. Run `tedge config list --doc` for available keys\n";

static const struct sub subs[] = {
    {"get", "tedge config get [OPTIONS] <KEY>", "Get the value of the provided configuration key",
     key_help, 1, 1, true},
    {"set", "tedge config set [OPTIONS] <KEY> <VALUE>",
     "Set or update the provided configuration key with the given value",
     "  <KEY>    Configuration key. Run `tedge config list --doc` for available keys\n"
     "  <VALUE>  Configuration value.\n", 2, 2, true},
    {"unset", "tedge config unset [OPTIONS] <KEY>", "Unset the provided configuration key",
     key_help, 1, 1, true},
    {"list", "tedge config list [OPTIONS] [FILTER]",
     "Print the configuration keys and their values",
     "  [FILTER]  Prints only the keys that contain the provided filter string\n", 0, 1, false},
};

static void print_sub_help(const struct sub *s)
{
    printf("%s\n\nUsage: %s\n\nArguments:\n%s\nOptions:\n", s->about, s->usage, s->args_help);
    if (s->has_profile)
        cli_print_options(stdout, &profile_option, 1, false);
    else
        cli_print_options(stdout, list_options, 2, false);
}

/* "c8y.url" with profile "foo" -> "c8y.profiles.foo.url"; other keys stay as they are. */
static int apply_profile(const char *key, const char *profile, char *out, size_t size)
{
    static const char *const clouds[] = {"c8y.", "az.", "aws."};
    if (profile != NULL && profile[0] != '\0') {
        for (size_t i = 0; i < sizeof(clouds) / sizeof(clouds[0]); i++) {
            size_t cl = strlen(clouds[i]);
            if (strncmp(key, clouds[i], cl) == 0 && strncmp(key + cl, "profiles.", 9) != 0) {
                snprintf(out, size, "%.*sprofiles.%s.%s", (int)cl, key, profile, key + cl);
                return 0;
            }
        }
    }
    return snprintf(out, size, "%s", key) >= (int)size ? -1 : 0;
}

static int load(const struct cli_ctx *ctx, struct cfg **c)
{
    struct te_error err = {0};
    if (cfg_load(ctx->config_dir, c, &err) != TE_OK)
        return cli_fail("%s", te_error_message(&err));
    return CLI_EXIT_OK;
}

static int cmd_get(const struct cli_ctx *ctx, const char *key)
{
    struct te_error err = {0};
    struct cfg_key_ref ref;
    struct cfg_value v;
    struct cfg *c = NULL;
    int r, ret;

    if (cfg_key_resolve(key, &ref, &err) != TE_OK)
        return cli_fail("%s", te_error_message(&err));
    if ((ret = load(ctx, &c)) != CLI_EXIT_OK)
        return ret;
    r = cfg_get(c, key, &v, &err);
    if (r == TE_OK) {
        printf("%s\n", v.value);
        ret = CLI_EXIT_OK;
    } else if (r == TE_ERR_NOT_FOUND) {
        fprintf(stderr, "%s\n", te_error_message(&err)); /* upstream's wording, no prefix */
        ret = CLI_EXIT_ERROR;
    } else {
        ret = cli_fail("%s", te_error_message(&err));
    }
    cfg_value_clear(&v);
    cfg_free(c);
    return ret;
}

static int cmd_set_unset(const struct cli_ctx *ctx, const char *key, const char *value)
{
    struct te_error err = {0};
    struct cfg_key_ref ref;
    struct cfg *c = NULL;
    char env_name[CFG_KEY_MAX + 8];
    const char *env;
    int r, ret;

    if (cfg_key_resolve(key, &ref, &err) != TE_OK)
        return cli_fail("%s", te_error_message(&err));
    if ((ret = load(ctx, &c)) != CLI_EXIT_OK)
        return ret;
    r = value != NULL ? cfg_set(c, key, value, &err) : cfg_unset(c, key, &err);
    cfg_free(c);
    if (r != TE_OK)
        return cli_fail("%s", te_error_message(&err));
    cfg_env_name(key, env_name, sizeof(env_name));
    if (value != NULL && (env = getenv(env_name)) != NULL && env[0] != '\0')
        fprintf(stderr, "Warning: the environment variable %s is set and overrides the value "
                        "of '%s' in tedge.toml.\n", env_name, key);
    return CLI_EXIT_OK;
}

struct list_state {
    const struct cfg *c;
    const char *filter;
    bool all;
    char **unset;       /* keys without a value, printed last with --all */
    size_t n_unset, cap_unset;
    int ret;
};

/* One `key=value` line of `list`: a PIN is masked, and a URI loses its pin-value (the shared
 * rule of p11_uri_redact); `get` of the same key prints it, because it was asked for. */
static int print_listed(const char *key, const struct cfg_key_def *def, const char *value)
{
    size_t size;
    char *shown;

    if (def->flags & CFG_F_SECRET) {
        printf("%s=%s\n", key, SECRET_MASK);
        return TE_OK;
    }
    if (def->type != CFG_P11_URI) {
        printf("%s=%s\n", key, value);
        return TE_OK;
    }
    size = strlen(value) * REDACT_GROWTH + 8;
    if ((shown = malloc(size)) == NULL)
        return TE_ERR_NOMEM;
    p11_uri_redact(value, shown, size);
    printf("%s=%s\n", key, shown);
    free(shown);
    return TE_OK;
}

static int list_one(const char *key, const struct cfg_key_def *def, void *arg)
{
    struct list_state *st = arg;
    struct te_error err = {0};
    struct cfg_value v;
    int r;

    if (st->filter != NULL && strstr(key, st->filter) == NULL)
        return TE_OK;
    r = cfg_get(st->c, key, &v, &err);
    if (r == TE_OK) {
        if (st->all || v.source == CFG_SRC_FILE || v.source == CFG_SRC_ENV)
            r = print_listed(key, def, v.value);
        cfg_value_clear(&v);
        if (r != TE_OK)
            return r;
    } else if (r == TE_ERR_NOT_FOUND) {
        if (st->all) {
            if (st->n_unset == st->cap_unset) {
                size_t ncap = st->cap_unset ? st->cap_unset * 2 : 16;
                char **nu = realloc(st->unset, ncap * sizeof(*nu));
                if (nu == NULL)
                    return TE_ERR_NOMEM;
                st->unset = nu;
                st->cap_unset = ncap;
            }
            if ((st->unset[st->n_unset] = strdup(key)) == NULL)
                return TE_ERR_NOMEM;
            st->n_unset++;
        }
    } else {
        st->ret = cli_fail("%s", te_error_message(&err));
    }
    return TE_OK;
}

/* Upstream's --doc layout: key right-aligned, its doc, then Note: and Example(s): lines. */
static int list_doc(const char *filter)
{
    size_t width = 0;
    bool tty = isatty(STDOUT_FILENO);

    for (size_t i = 0; i < cfg_key_count(); i++) {
        const struct cfg_key_def *d = cfg_key_at(i);
        if ((filter == NULL || strstr(d->name, filter) != NULL) && strlen(d->name) > width)
            width = strlen(d->name);
    }
    for (size_t i = 0; i < cfg_key_count(); i++) {
        const struct cfg_key_def *d = cfg_key_at(i);
        size_t dl = strlen(d->doc), ne = 0;
        if (filter != NULL && strstr(d->name, filter) == NULL)
            continue;
        printf("%*s  %s%s\n", (int)width, d->name, d->doc,
               dl > 0 && d->doc[dl - 1] == '.' ? "" : ".");
        if (d->note != NULL)
            printf("%*s  Note: %s\n", (int)width, "", d->note);
        while (ne < 4 && d->examples[ne] != NULL)
            ne++;
        if (ne > 0) {
            printf("%*s  %s ", (int)width, "", ne == 1 ? "Example:" : "Examples:");
            for (size_t k = 0; k < ne; k++)
                printf("%s%s", k ? ", " : "", d->examples[k]);
            putchar('\n');
        }
        if (!tty)
            putchar('\n');
    }
    return CLI_EXIT_OK;
}

static int cmd_list(const struct cli_ctx *ctx, bool all, bool doc, const char *filter)
{
    struct list_state st = {.filter = filter, .all = all, .ret = CLI_EXIT_OK};
    struct cfg *c = NULL;
    int ret;

    if (doc)
        return list_doc(filter);
    if ((ret = load(ctx, &c)) != CLI_EXIT_OK)
        return ret;
    st.c = c;
    if (cfg_foreach_key(c, list_one, &st) != TE_OK)
        st.ret = cli_fail("Out of memory listing the configuration.");
    if (all && st.n_unset > 0) {
        putchar('\n');
        for (size_t i = 0; i < st.n_unset; i++)
            printf("%s=\n", st.unset[i]);
    }
    for (size_t i = 0; i < st.n_unset; i++)
        free(st.unset[i]);
    free(st.unset);
    cfg_free(c);
    return st.ret;
}

int cli_config(const struct cli_ctx *ctx, int argc, char **argv)
{
    const char *pos[CONFIG_MAX_ARGS], *profile = getenv("TEDGE_CLOUD_PROFILE");
    const struct sub *s = NULL;
    bool all = false, doc = false, options = true;
    char key[CFG_KEY_MAX];
    int np = 0;

    if (argc < 2) {
        print_config_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_is_help(argv[1])) {
        print_config_help(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            s = &subs[i];
    if (s == NULL)
        return cli_usage_error(config_usage, "unrecognized subcommand '%s'", argv[1]);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = false;
        } else if (options && cli_is_help(a)) {
            print_sub_help(s);
            return CLI_EXIT_OK;
        } else if (options && s->has_profile && strcmp(a, "--profile") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(s->usage, "a value is required for '--profile <PROFILE>'");
            profile = argv[++i];
        } else if (options && s->has_profile && strncmp(a, "--profile=", 10) == 0) {
            profile = a + 10;
        } else if (options && !s->has_profile && strcmp(a, "--all") == 0) {
            all = true;
        } else if (options && !s->has_profile && strcmp(a, "--doc") == 0) {
            doc = true;
        } else if (options && a[0] == '-' && a[1] != '\0') {
            return cli_usage_error(s->usage, "unexpected argument '%s' found; to pass it as a "
                                   "value, use '-- %s'", a, a);
        } else if (np >= s->max_args) {
            return cli_usage_error(s->usage, "unexpected argument '%s' found", a);
        } else {
            pos[np++] = a;
        }
    }
    if (np < s->min_args)
        return cli_usage_error(s->usage, "the following required arguments were not provided: %s",
                               np == 0 ? "<KEY>" : "<VALUE>");
    if (strcmp(s->name, "list") == 0)
        return cmd_list(ctx, all, doc, np ? pos[0] : NULL);
    if (apply_profile(pos[0], profile, key, sizeof(key)) != 0)
        return cli_fail("The key '%.64s...' is too long.", pos[0]);
    if (strcmp(s->name, "get") == 0)
        return cmd_get(ctx, key);
    return cmd_set_unset(ctx, key, strcmp(s->name, "set") == 0 ? pos[1] : NULL);
}
