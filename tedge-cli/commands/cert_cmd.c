/* `tedge cert`: the subcommand table, argument parsing and help texts (upstream's names), and
 * what the subcommands share: the device key settings and key, the template, the error format. */
#include "tedge-cli/commands/cert_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/x509_name.h"

#define CERT_DEFAULT_ORGANIZATION "Thin Edge" /* upstream certificate.organization default */
#define CERT_DEFAULT_UNIT "Device"            /* upstream certificate.organization_unit default */
#define CERT_DEFAULT_DAYS 365                 /* upstream certificate.validity.requested_duration */
#define MS_PER_DAY (86400ull * 1000ull)

enum cert_flag { F_DEVICE_ID = 1, F_OUTPUT_PATH = 2, F_CERT_PATH = 4 };

struct cert_sub {
    const char *name;
    int (*run)(const struct cli_ctx *ctx, const struct cert_opts *o);
    unsigned flags;
    const char *about;
    const char *usage;
};

static const struct cert_sub subs[] = {
    {"create", cert_create, F_DEVICE_ID, "Create a self-signed device certificate",
     "tedge cert create [OPTIONS] [CLOUD]"},
    {"create-csr", cert_create_csr, F_DEVICE_ID | F_OUTPUT_PATH,
     "Create a certificate signing request", "tedge cert create-csr [OPTIONS] [CLOUD]"},
    {"show", cert_show, F_CERT_PATH, "Show the device certificate, if any",
     "tedge cert show [OPTIONS] [CLOUD]"},
    {"remove", cert_remove, 0, "Remove the device certificate", "tedge cert remove [OPTIONS] [CLOUD]"},
};

#define N_SUBS (sizeof(subs) / sizeof(subs[0]))

static const char cert_usage[] = "tedge cert [OPTIONS] <COMMAND>";

static void print_cert_help(FILE *out)
{
    fprintf(out, "Create and manage device certificate\n\nUsage: %s\n\nCommands:\n", cert_usage);
    for (size_t i = 0; i < N_SUBS; i++)
        fprintf(out, "  %-10s  %s\n", subs[i].name, subs[i].about);
    fprintf(out, "\nOptions:\n");
    cli_print_options(out, NULL, 0, false);
}

static void print_sub_help(const struct cert_sub *s)
{
    static const struct {
        unsigned flag; /* 0: every subcommand */
        struct cli_option opt;
    } rows[] = {
        {F_DEVICE_ID, {"--device-id <ID>",
                       "The device identifier to be used as the common name for the certificate"}},
        {F_OUTPUT_PATH, {"--output-path <OUTPUT_PATH>",
                         "Path where a Certificate signing request will be stored"}},
        {F_CERT_PATH, {"--cert-path <CERT_PATH>",
                       "Path to the certificate - default to the configured device certificate"}},
        {0, {"--profile <PROFILE>", "The cloud profile to use, after CLOUD "
                                    "[env: TEDGE_CLOUD_PROFILE]"}},
    };
    struct cli_option opts[sizeof(rows) / sizeof(rows[0])];
    size_t n = 0;

    printf("%s\n\nUsage: %s\n\nArguments:\n"
           "  [CLOUD]  The cloud whose device certificate to use: c8y, az or aws (without it: "
           "the device.* settings)\n\nOptions:\n", s->about, s->usage);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i].flag == 0 || (s->flags & rows[i].flag))
            opts[n++] = rows[i].opt;
    cli_print_options(stdout, opts, n, false);
}

static int parse_sub(const struct cert_sub *s, int argc, char **argv, struct cert_opts *o,
                     bool *help)
{
    const struct { const char *opt; unsigned flag; const char **dst; const char *meta; } opts[] = {
        {"--device-id", F_DEVICE_ID, &o->device_id, "<ID>"},
        {"--output-path", F_OUTPUT_PATH, &o->output_path, "<OUTPUT_PATH>"},
        {"--cert-path", F_CERT_PATH, &o->cert_path, "<CERT_PATH>"},
        {"--profile", 0, &o->profile, "<PROFILE>"}, /* every subcommand: flag 0 */
    };
    bool options = true;

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *value = NULL;
        bool matched = false;

        if (options && cli_is_help(a)) {
            *help = true;
            return CLI_EXIT_OK;
        }
        if (options && strcmp(a, "--") == 0) {
            options = false;
            continue;
        }
        for (size_t j = 0; options && !matched && j < sizeof(opts) / sizeof(opts[0]); j++) {
            if ((opts[j].flag != 0 && !(s->flags & opts[j].flag)) ||
                !cli_option_value(opts[j].opt, argc, argv, &i, &value))
                continue;
            if (value == NULL || value[0] == '\0')
                return cli_usage_error(s->usage, "a value is required for '%s %s' but none was "
                                       "supplied", opts[j].opt, opts[j].meta);
            *opts[j].dst = value;
            matched = true;
        }
        if (matched)
            continue;
        if (options && a[0] == '-' && a[1] != '\0')
            return cli_usage_error(s->usage, "unexpected argument '%s' found", a);
        if (o->cloud != NULL)
            return cli_usage_error(s->usage, "unexpected argument '%s' found", a);
        if (strcmp(a, "c8y") != 0 && strcmp(a, "az") != 0 && strcmp(a, "aws") != 0)
            return cli_usage_error(s->usage, "invalid cloud '%s' [possible values: c8y, az, aws]",
                                   a);
        o->cloud = a;
    }
    if (o->profile != NULL && o->cloud == NULL)
        return cli_usage_error(s->usage, "'--profile <PROFILE>' needs a cloud: use e.g. "
                               "`tedge cert %s c8y --profile %s`", s->name, o->profile);
    return CLI_EXIT_OK;
}

int cli_cert(const struct cli_ctx *ctx, int argc, char **argv)
{
    struct cert_opts o = {0};
    const struct cert_sub *s = NULL;
    const char *env_profile;
    bool help = false;
    int ret;

    if (argc < 2) {
        print_cert_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_is_help(argv[1])) {
        print_cert_help(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < N_SUBS; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            s = &subs[i];
    if (s == NULL)
        return cli_usage_error(cert_usage, "unrecognized subcommand '%s'", argv[1]);
    if ((ret = parse_sub(s, argc, argv, &o, &help)) != CLI_EXIT_OK)
        return ret;
    if (help) {
        print_sub_help(s);
        return CLI_EXIT_OK;
    }
    env_profile = getenv("TEDGE_CLOUD_PROFILE");
    if (o.cloud != NULL && o.profile == NULL && env_profile != NULL && env_profile[0] != '\0')
        o.profile = env_profile;
    return s->run(ctx, &o);
}

int cert_load(const struct cli_ctx *ctx, const struct cert_opts *o, struct cfg **c,
              struct device_key_config **k, struct te_error *err)
{
    int ret;

    *c = NULL;
    *k = NULL;
    if ((ret = cfg_load(ctx->config_dir, c, err)) != TE_OK)
        return ret;
    if ((ret = device_key_load(*c, o->cloud, o->profile, k, err)) != TE_OK) {
        cfg_free(*c);
        *c = NULL;
    }
    return ret;
}

/* A string key that may be missing from the config model: the default then. */
static int template_string(const struct cfg *c, const char *key, const char *def, char **out,
                           struct te_error *err)
{
    int r = cfg_get_string(c, key, out, err);

    if (r == TE_ERR_NOT_FOUND) {
        te_error_clear(err);
        r = (*out = strdup(def)) != NULL ? TE_OK : te_error_set(err, TE_ERR_NOMEM, "Out of memory.");
    }
    return r;
}

int cert_template_load(const struct cfg *c, struct cert_template *t, struct te_error *err)
{
    uint64_t ms = 0;
    int r;

    memset(t, 0, sizeof(*t));
    t->days = CERT_DEFAULT_DAYS;
    if ((r = template_string(c, "certificate.organization", CERT_DEFAULT_ORGANIZATION,
                             &t->organization, err)) != TE_OK ||
        (r = template_string(c, "certificate.organization_unit", CERT_DEFAULT_UNIT, &t->unit,
                             err)) != TE_OK)
        return r;
    r = cfg_get_duration_ms(c, "certificate.validity.requested_duration", &ms, err);
    if (r == TE_ERR_NOT_FOUND) {
        te_error_clear(err);
        return TE_OK;
    }
    if (r == TE_OK)
        t->days = ms < MS_PER_DAY ? 1 : (unsigned)(ms / MS_PER_DAY);
    return r;
}

void cert_template_free(struct cert_template *t)
{
    free(t->organization);
    free(t->unit);
    memset(t, 0, sizeof(*t));
}

int cert_load_with_id(const struct cli_ctx *ctx, const struct cert_opts *o, struct cfg **c,
                      struct device_key_config **k, char **id)
{
    struct te_error err = {0};
    int r;

    *id = NULL;
    if (cert_load(ctx, o, c, k, &err) != TE_OK)
        return cli_fail("%s", te_error_message(&err));
    if (o->device_id != NULL)
        r = (*id = strdup(o->device_id)) != NULL ? TE_OK : TE_ERR_NOMEM;
    else
        r = x509_file_cn((*k)->cert_path, id, NULL);
    if (r != TE_OK)
        return cli_fail("%s", r == TE_ERR_NOMEM ? "Out of memory." : CERT_MSG_NO_DEVICE_ID);
    return CLI_EXIT_OK;
}

int cert_subject_load(const struct cfg *c, const char *id, struct cert_template *t,
                      struct x509_subject *subject, struct te_error *err)
{
    int ret;

    if ((ret = x509_check_device_id(id, err)) != TE_OK ||
        (ret = cert_template_load(c, t, err)) != TE_OK)
        return ret;
    subject->common_name = id;
    subject->organization = t->organization;
    subject->unit = t->unit;
    return TE_OK;
}

int cert_open_device_key(const struct device_key_config *k, const char *command,
                         struct signer **s, struct x509_key *xk, struct te_error *err)
{
    struct te_error why = {0};
    int ret;

    *s = NULL;
    memset(xk, 0, sizeof(*xk));
    if ((ret = signer_open(&k->signer, s, &why)) == TE_OK &&
        (ret = x509_key_from_signer(xk, *s, &why)) == TE_OK)
        return TE_OK;
    signer_close(*s);
    *s = NULL;
    if (device_key_in_hsm(k) && (ret == TE_ERR_NO_KEY || ret == TE_ERR_NO_TOKEN))
        return te_error_set(err, ret, "When using HSM, `tedge %s` can't create the keypair "
                            "automatically. Use `tedge hsm create-key` to create the key first.\n%s",
                            command, te_error_message(&why));
    if (err != NULL)
        *err = why;
    return ret;
}

int cert_fail(const char *what, const struct te_error *err)
{
    const char *msg = te_error_message(err);

    fprintf(stderr, "Error: failed to %s\n\nCaused by:\n    ", what);
    for (const char *p = msg; *p != '\0'; p++) {
        fputc(*p, stderr);
        if (*p == '\n' && p[1] != '\0')
            fputs("    ", stderr);
    }
    fputc('\n', stderr);
    return CLI_EXIT_ERROR;
}
