/* Shared helpers of the PKCS#11 core unit tests that run against the mock module
 * (tests/mock/README.md): finding it, its call counters (dlsym), its MOCK_P11_* settings,
 * opening the core on it, verifying signatures and capturing log lines. Header-only. */
#ifndef TEDGE_TEST_P11_HELPERS_H
#define TEDGE_TEST_P11_HELPERS_H

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/md.h>
#include <mbedtls/pk.h>

#include "common/err.h"
#include "common/log.h"
#include "common/p11.h"

#include <p11-kit/pkcs11.h>

#define MOCK_URI_EC "pkcs11:token=mock;object=mock-ec"
#define MOCK_URI_RSA "pkcs11:token=mock;object=mock-rsa"
#define MOCK_PIN "1234"
#define LOG_CAPTURE_MAX 65536 /* log text one test captures */

static void *mock_dl;
static unsigned long (*mock_get_count_fn)(const char *);
static void (*mock_reset_counts_fn)(void);

/* The mock module's path; a unit test must not be skipped, so a missing one fails it. */
static inline const char *mock_module(void)
{
    const char *p = getenv("TEDGE_MOCK_MODULE");
    if (p == NULL || *p == '\0')
        fail_msg("TEDGE_MOCK_MODULE is not set: run the unit tests with `make unit`, which "
                 "builds the mock PKCS#11 module and sets it.");
    if (access(p, R_OK) != 0)
        fail_msg("TEDGE_MOCK_MODULE=%s does not exist: build it with `make tests-build`.", p);
    if (mock_dl == NULL) {
        /* The same file as the one p11-kit loads, so the same counters. */
        mock_dl = dlopen(p, RTLD_NOW);
        if (mock_dl == NULL)
            fail_msg("dlopen(%s) failed: %s", p, dlerror());
        *(void **)&mock_get_count_fn = dlsym(mock_dl, "mock_p11_get_count");
        *(void **)&mock_reset_counts_fn = dlsym(mock_dl, "mock_p11_reset_counts");
        if (mock_get_count_fn == NULL || mock_reset_counts_fn == NULL)
            fail_msg("the mock module does not export its counters");
    }
    return p;
}

static inline unsigned long mock_count(const char *name) { return mock_get_count_fn(name); }
static inline void mock_reset(void) { mock_reset_counts_fn(); }

static inline void mock_env_clear(void)
{
    static const char *const vars[] = {
        "MOCK_P11_PIN", "MOCK_P11_FAIL_SIGN_AFTER", "MOCK_P11_FAIL_TIMES", "MOCK_P11_FAIL_RV",
        "MOCK_P11_FAIL_FN", "MOCK_P11_SIGN_DELAY_MS", "MOCK_P11_NO_TOKEN", "MOCK_P11_NO_LOGIN",
        "MOCK_P11_ALWAYS_AUTH", "MOCK_P11_NO_PUBLIC", "MOCK_P11_DUP_LABEL", "MOCK_P11_NO_PSS",
        "MOCK_P11_RSA_ALLOWED", "MOCK_P11_STATS_FILE", "MOCK_P11_PIN_FAILURES"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

/* Opens the core on the mock with cfg (module_path is filled in; settings come from MOCK_P11_*
 * set before) and zeroes the counters. */
static inline struct p11_ctx *mock_open_cfg(struct p11_config cfg)
{
    struct te_error err = {0};
    struct p11_ctx *ctx = NULL;

    cfg.module_path = mock_module();
    if (p11_open(&cfg, &ctx, &err) != TE_OK)
        fail_msg("p11_open on the mock failed: %s", err.msg);
    mock_reset();
    return ctx;
}

static inline struct p11_ctx *mock_open(const char *scope, const char *default_pin,
                                        unsigned max_sessions)
{
    struct p11_config cfg = {.scope_uri = scope, .default_pin = default_pin,
                             .max_sessions = max_sessions};
    return mock_open_cfg(cfg);
}

static inline void fill_digest(uint8_t *d, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        d[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

/* Signs a made-up digest with the scheme; returns the te_err code, fills err. */
static inline int sign_with(struct p11_ctx *ctx, const char *uri, const char *pin,
                            enum sig_scheme scheme, unsigned seed, uint8_t *sig, size_t *sig_len,
                            struct te_error *err)
{
    struct p11_keyref ref = {uri, pin};
    uint8_t dg[64];
    size_t len = sig_hash_len(sig_scheme_hash(scheme));
    uint8_t local[P11_SIG_MAX];
    size_t local_len = 0;

    fill_digest(dg, len, seed);
    te_error_clear(err);
    return p11_sign(ctx, &ref, scheme, dg, len, sig ? sig : local, P11_SIG_MAX,
                    sig_len ? sig_len : &local_len, err);
}

/* Verifies a signature made by sign_with() against the key's public key from the core. */
static inline void assert_verifies(struct p11_ctx *ctx, const char *uri, const char *pin,
                                   enum sig_scheme scheme, unsigned seed, const uint8_t *sig,
                                   size_t sig_len)
{
    static const mbedtls_md_type_t mds[] = {MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA384,
                                            MBEDTLS_MD_SHA512};
    struct p11_keyref ref = {uri, pin};
    struct te_error err = {0};
    mbedtls_md_type_t md = mds[sig_scheme_hash(scheme)];
    size_t len = sig_hash_len(sig_scheme_hash(scheme)), der_len = 0;
    mbedtls_pk_context pk;
    uint8_t dg[64], *der = NULL;
    int r;

    fill_digest(dg, len, seed);
    if (p11_public_key(ctx, &ref, &der, &der_len, &err) != TE_OK)
        fail_msg("p11_public_key: %s", err.msg);
    mbedtls_pk_init(&pk);
    assert_int_equal(mbedtls_pk_parse_public_key(&pk, der, der_len), 0);
    if (sig_scheme_alg(scheme) == SIG_ALG_RSA_PSS) {
        mbedtls_pk_rsassa_pss_options opts = {md, (int)len};
        r = mbedtls_pk_verify_ext(MBEDTLS_PK_RSASSA_PSS, &opts, &pk, md, dg, len, sig, sig_len);
    } else {
        r = mbedtls_pk_verify(&pk, md, dg, len, sig, sig_len);
    }
    if (r != 0)
        fail_msg("%s signature does not verify: -0x%04x", sig_scheme_name(scheme), -r);
    mbedtls_pk_free(&pk);
    free(der);
}

/* Captures log lines in a pipe until log_capture_end(), which returns them (malloc'd). */
static int log_pipe[2] = {-1, -1};

static inline void log_capture_begin(void)
{
    assert_int_equal(pipe2(log_pipe, O_NONBLOCK), 0);
    log_set_fd(log_pipe[1]);
}

static inline char *log_capture_end(void)
{
    char *text = calloc(1, LOG_CAPTURE_MAX);
    ssize_t n = read(log_pipe[0], text, LOG_CAPTURE_MAX - 1);

    log_set_fd(STDERR_FILENO);
    close(log_pipe[0]);
    close(log_pipe[1]);
    if (n > 0)
        text[n] = '\0';
    return text;
}

#endif
