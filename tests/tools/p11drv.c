/* p11drv: a small driver over the PKCS#11 core (common/p11.h) for the integration tests:
 * list tokens and keys, export public keys, sign digests, sign in loops and threads. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "common/buf.h"
#include "common/der.h"
#include "common/err.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/p11.h"
#include "common/rand.h"

#define EXIT_USAGE 64     /* sysexits EX_USAGE */
#define EXIT_OP_FAILED 2  /* the core returned an error (printed on stderr) */
#define DRV_PIN_MAX 256   /* PIN file size limit */
#define DRV_THREADS_MAX 64

static const char usage[] =
    "usage: p11drv --module PATH [--scope URI] [--pin PIN | --pin-file FILE] [--max-sessions N]\n"
    "              [--reload-interval S] [--log-level LEVEL] [--out FILE] [--stats]\n"
    "              COMMAND [ARGS]\n"
    "  --stats prints the core's counters on stderr after the command\n"
    "commands:\n"
    "  tokens                          list initialized tokens\n"
    "  keys URI                        list the private keys the URI matches\n"
    "  info URI                        the key the URI selects\n"
    "  pubkey URI                      its public key (PEM; DER to --out)\n"
    "  sign URI SCHEME HEXDIGEST       signature as hex (raw bytes to --out)\n"
    "  sign-loop URI SCHEME N          N signatures of random digests, each verified\n"
    "  threads URI SCHEME N T          T threads with N verified signatures each\n"
    "  wait-and-sign URI SCHEME HEX    sign, wait for a line on stdin, sign again\n"
    "  status                          counters of the core\n";

struct drv {
    struct p11_ctx *ctx;
    const char *pin;
    const char *out;
};

static int fail(const struct te_error *err)
{
    fprintf(stderr, "error code=%s ckr=%s retryable=%d: %s\n", te_errcode(err->code),
            err->has_ckr ? p11_rv_name(err->ckr) : "none", err->retryable ? 1 : 0,
            te_error_message(err));
    return EXIT_OP_FAILED;
}

static void print_hex(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

static int parse_hex(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

static void schemes_text(unsigned schemes, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < SIG_SCHEME_COUNT && o < size; i++)
        if (schemes & (1u << i))
            o += (size_t)snprintf(out + o, size - o, "%s%s", o ? "," : "",
                                  sig_scheme_name((enum sig_scheme)i));
}

static const char *curve_name(enum p11_curve c)
{
    return c == P11_CURVE_P256 ? "P-256" : c == P11_CURVE_P384 ? "P-384"
         : c == P11_CURVE_P521 ? "P-521" : "none";
}

static void print_key(const struct p11_key_info *k)
{
    char schemes[256];
    schemes_text(k->schemes, schemes, sizeof(schemes));
    printf("uri=%s type=%s bits=%u curve=%s label=%s id=", k->uri,
           k->type == P11_KEY_EC ? "ec" : k->type == P11_KEY_RSA ? "rsa" : "other", k->bits,
           curve_name(k->curve), k->label);
    print_hex(stdout, k->id, k->id_len);
    printf(" token=%s always_authenticate=%d schemes=%s\n", k->token_label,
           k->always_authenticate ? 1 : 0, schemes);
}

static int cmd_tokens(struct drv *d)
{
    struct p11_token_info *t = NULL;
    struct te_error err = {0};
    size_t n = 0;

    if (p11_list_tokens(d->ctx, &t, &n, &err) != TE_OK)
        return fail(&err);
    for (size_t i = 0; i < n; i++)
        printf("slot=%lu label=%s serial=%s manufacturer=%s model=%s login_required=%d "
               "count_low=%d final_try=%d locked=%d uri=%s\n", t[i].slot_id, t[i].label,
               t[i].serial, t[i].manufacturer, t[i].model, t[i].login_required,
               t[i].pin_count_low, t[i].pin_final_try, t[i].pin_locked, t[i].uri);
    free(t);
    return 0;
}

static int cmd_keys(struct drv *d, const char *uri)
{
    struct p11_keyref ref = {uri, d->pin};
    struct p11_key_info *k = NULL;
    struct te_error err = {0};
    size_t n = 0;

    if (p11_list_keys(d->ctx, &ref, &k, &n, &err) != TE_OK)
        return fail(&err);
    for (size_t i = 0; i < n; i++)
        print_key(&k[i]);
    free(k);
    return 0;
}

static int cmd_info(struct drv *d, const char *uri)
{
    struct p11_keyref ref = {uri, d->pin};
    struct p11_key_info k;
    struct te_error err = {0};

    if (p11_key_info(d->ctx, &ref, &k, &err) != TE_OK)
        return fail(&err);
    print_key(&k);
    return 0;
}

static int cmd_pubkey(struct drv *d, const char *uri)
{
    struct p11_keyref ref = {uri, d->pin};
    struct te_error err = {0};
    uint8_t *der = NULL;
    size_t len = 0;
    char *pem = NULL;
    int ret = 0;

    if (p11_public_key(d->ctx, &ref, &der, &len, &err) != TE_OK)
        return fail(&err);
    if (d->out != NULL) {
        if (file_write_atomic(d->out, der, len, 0644, &err) != TE_OK)
            ret = fail(&err);
    } else if (der_to_pem("PUBLIC KEY", der, len, &pem) == TE_OK) {
        fputs(pem, stdout);
    } else {
        ret = EXIT_OP_FAILED;
    }
    free(pem);
    free(der);
    return ret;
}

static int sign_print(struct drv *d, const char *uri, enum sig_scheme scheme, const uint8_t *dg,
                      size_t dg_len, const char *tag)
{
    struct p11_keyref ref = {uri, d->pin};
    struct te_error err = {0};
    uint8_t sig[P11_SIG_MAX];
    size_t sig_len = 0;

    if (p11_sign(d->ctx, &ref, scheme, dg, dg_len, sig, sizeof(sig), &sig_len, &err) != TE_OK) {
        if (tag != NULL)
            printf("%s error code=%s\n", tag, te_errcode(err.code));
        return fail(&err);
    }
    if (d->out != NULL && file_write_atomic(d->out, sig, sig_len, 0644, &err) != TE_OK)
        return fail(&err);
    if (tag != NULL)
        printf("%s ok ", tag);
    if (d->out == NULL || tag != NULL) {
        print_hex(stdout, sig, sig_len);
        printf("\n");
    }
    fflush(stdout);
    return 0;
}

static int cmd_sign(struct drv *d, const char *uri, const char *scheme_name, const char *hex,
                    bool wait)
{
    enum sig_scheme scheme;
    uint8_t dg[64];
    size_t dg_len = 0;
    char line[64];
    int ret;

    if (sig_scheme_from_name(scheme_name, &scheme) != TE_OK ||
        parse_hex(hex, dg, sizeof(dg), &dg_len) != 0) {
        fprintf(stderr, "p11drv: bad scheme or hex digest\n%s", usage);
        return EXIT_USAGE;
    }
    if (!wait)
        return sign_print(d, uri, scheme, dg, dg_len, NULL);
    sign_print(d, uri, scheme, dg, dg_len, "sign1");
    printf("waiting\n");
    fflush(stdout);
    if (fgets(line, sizeof(line), stdin) == NULL)
        return EXIT_USAGE;
    ret = sign_print(d, uri, scheme, dg, dg_len, "sign2");
    return ret;
}

/* Verifies a signature with the public key, the way a TLS peer would. */
static int verify(mbedtls_pk_context *pk, enum sig_scheme scheme, const uint8_t *dg, size_t len,
                  const uint8_t *sig, size_t sig_len)
{
    static const mbedtls_md_type_t mds[] = {MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA384,
                                            MBEDTLS_MD_SHA512};
    mbedtls_md_type_t md = mds[sig_scheme_hash(scheme)];

    if (sig_scheme_alg(scheme) == SIG_ALG_RSA_PSS) {
        mbedtls_pk_rsassa_pss_options opts = {md, (int)len};
        return mbedtls_pk_verify_ext(MBEDTLS_PK_RSASSA_PSS, &opts, pk, md, dg, len, sig, sig_len);
    }
    return mbedtls_pk_verify(pk, md, dg, len, sig, sig_len);
}

struct loop {
    struct drv *d;
    const char *uri;
    enum sig_scheme scheme;
    unsigned long n, ok, failed, bad;
    const uint8_t *spki;          /* NULL: signatures are not verified */
    size_t spki_len;
    char first_error[TE_ERROR_MSG_MAX];
};

static void *sign_loop(void *arg)
{
    struct loop *l = arg;
    struct p11_keyref ref = {l->uri, l->d->pin};
    size_t len = sig_hash_len(sig_scheme_hash(l->scheme));
    mbedtls_pk_context pk; /* one per thread: mbedTLS caches curve tables in the context */

    mbedtls_pk_init(&pk);
    if (l->spki != NULL && mbedtls_pk_parse_public_key(&pk, l->spki, l->spki_len) != 0)
        l->spki = NULL;
    for (unsigned long i = 0; i < l->n; i++) {
        struct te_error err = {0};
        uint8_t dg[64], sig[P11_SIG_MAX];
        size_t sig_len = 0;
        te_random(NULL, dg, len);
        if (p11_sign(l->d->ctx, &ref, l->scheme, dg, len, sig, sizeof(sig), &sig_len, &err) !=
            TE_OK) {
            if (l->failed++ == 0)
                snprintf(l->first_error, sizeof(l->first_error), "%s", te_error_message(&err));
            continue;
        }
        if (l->spki != NULL && verify(&pk, l->scheme, dg, len, sig, sig_len) != 0)
            l->bad++;
        else
            l->ok++;
    }
    mbedtls_pk_free(&pk);
    return NULL;
}

static int cmd_loop(struct drv *d, const char *uri, const char *scheme_name, const char *count,
                    const char *threads)
{
    struct p11_keyref ref = {uri, d->pin};
    struct loop loops[DRV_THREADS_MAX];
    pthread_t tid[DRV_THREADS_MAX];
    unsigned long n = strtoul(count, NULL, 10), t = threads ? strtoul(threads, NULL, 10) : 1;
    unsigned long ok = 0, failed = 0, bad = 0;
    struct te_error err = {0};
    enum sig_scheme scheme;
    uint8_t *der = NULL;
    size_t der_len = 0;

    if (sig_scheme_from_name(scheme_name, &scheme) != TE_OK || n == 0 || t == 0 ||
        t > DRV_THREADS_MAX) {
        fprintf(stderr, "p11drv: bad scheme, count or thread count\n%s", usage);
        return EXIT_USAGE;
    }
    if (p11_public_key(d->ctx, &ref, &der, &der_len, &err) != TE_OK)
        fprintf(stderr, "public key (signatures not verified): %s\n", te_error_message(&err));
    for (unsigned long i = 0; i < t; i++) {
        loops[i] = (struct loop){d, uri, scheme, n, 0, 0, 0, der, der_len, ""};
        pthread_create(&tid[i], NULL, sign_loop, &loops[i]);
    }
    for (unsigned long i = 0; i < t; i++) {
        pthread_join(tid[i], NULL);
        ok += loops[i].ok;
        failed += loops[i].failed;
        bad += loops[i].bad;
        if (loops[i].failed > 0)
            fprintf(stderr, "thread %lu: %s\n", i, loops[i].first_error);
    }
    printf("signatures=%lu errors=%lu bad=%lu verified=%s\n", ok, failed, bad,
           der != NULL && loops[0].spki != NULL ? "yes" : "no");
    free(der);
    return failed == 0 && bad == 0 ? 0 : EXIT_OP_FAILED;
}

static void print_status(struct drv *d, FILE *f, const char *prefix, char sep)
{
    struct p11_status st;
    p11_get_status(d->ctx, &st);
    fprintf(f, "%stoken_present=%d%ctoken_label=%s%csignatures=%llu%cerrors=%llu%clogins=%llu%c"
            "reloads=%llu%cmodule_path=%s\n", prefix, st.token_present, sep, st.token_label, sep,
            (unsigned long long)st.signatures, sep, (unsigned long long)st.errors, sep,
            (unsigned long long)st.logins, sep, (unsigned long long)st.reloads, sep,
            st.module_path);
}

static int cmd_status(struct drv *d)
{
    print_status(d, stdout, "", '\n');
    return 0;
}

static int dispatch(struct drv *d, int argc, char **argv)
{
    const char *cmd = argv[0];
    if (strcmp(cmd, "tokens") == 0 && argc == 1)
        return cmd_tokens(d);
    if (strcmp(cmd, "status") == 0 && argc == 1)
        return cmd_status(d);
    if (strcmp(cmd, "keys") == 0 && argc == 2)
        return cmd_keys(d, argv[1]);
    if (strcmp(cmd, "info") == 0 && argc == 2)
        return cmd_info(d, argv[1]);
    if (strcmp(cmd, "pubkey") == 0 && argc == 2)
        return cmd_pubkey(d, argv[1]);
    if (strcmp(cmd, "sign") == 0 && argc == 4)
        return cmd_sign(d, argv[1], argv[2], argv[3], false);
    if (strcmp(cmd, "wait-and-sign") == 0 && argc == 4)
        return cmd_sign(d, argv[1], argv[2], argv[3], true);
    if (strcmp(cmd, "sign-loop") == 0 && argc == 4)
        return cmd_loop(d, argv[1], argv[2], argv[3], NULL);
    if (strcmp(cmd, "threads") == 0 && argc == 5)
        return cmd_loop(d, argv[1], argv[2], argv[3], argv[4]);
    fprintf(stderr, "p11drv: unknown command or wrong arguments: %s\n%s", cmd, usage);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"module", required_argument, NULL, 'm'}, {"scope", required_argument, NULL, 's'},
        {"pin", required_argument, NULL, 'p'}, {"pin-file", required_argument, NULL, 'f'},
        {"max-sessions", required_argument, NULL, 'n'},
        {"reload-interval", required_argument, NULL, 'r'},
        {"log-level", required_argument, NULL, 'l'}, {"out", required_argument, NULL, 'o'},
        {"stats", no_argument, NULL, 'S'}, {NULL, 0, NULL, 0}};
    struct p11_config cfg = {0};
    struct te_error err = {0};
    struct drv d = {0};
    char *pin_file = NULL;
    size_t pin_len = 0;
    int c, ret, level = LOG_LVL_WARN;
    bool stats = false;

    log_init("p11drv");
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'm': cfg.module_path = optarg; break;
        case 's': cfg.scope_uri = optarg; break;
        case 'p': d.pin = optarg; break;
        case 'n': cfg.max_sessions = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'r': cfg.reload_interval_s = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'o': d.out = optarg; break;
        case 'S': stats = true; break;
        case 'l':
            if ((level = log_level_from_name(optarg)) < 0) {
                fprintf(stderr, "%s", usage);
                return EXIT_USAGE;
            }
            break;
        case 'f':
            if (file_read_all(optarg, DRV_PIN_MAX, &pin_file, &pin_len, &err) != TE_OK)
                return fail(&err);
            while (pin_len > 0 && (pin_file[pin_len - 1] == '\n' || pin_file[pin_len - 1] == '\r'))
                pin_file[--pin_len] = '\0';
            d.pin = pin_file;
            break;
        default:
            fprintf(stderr, "%s", usage);
            return EXIT_USAGE;
        }
    }
    log_set_level((enum log_level)level);
    if (cfg.module_path == NULL || optind >= argc) {
        fprintf(stderr, "%s", usage);
        te_free_secret(pin_file);
        return EXIT_USAGE;
    }
    if (p11_open(&cfg, &d.ctx, &err) != TE_OK) {
        te_free_secret(pin_file);
        return fail(&err);
    }
    ret = dispatch(&d, argc - optind, argv + optind);
    if (stats)
        print_status(&d, stderr, "stats: ", ' ');
    p11_close(d.ctx);
    te_free_secret(pin_file);
    return ret;
}
