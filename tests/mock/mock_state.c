/* Mock PKCS#11 module: the global state and its lock, configuration from the environment,
 * call counters with the exported mock_p11_get_count() and the MOCK_P11_STATS_FILE writer. */
#include "mock_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define MOCK_STATS_MAX 4096 /* the stats text: ~25 short lines */

struct mock_state mock = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char *const fn_names[MOCK_FN_COUNT] = {
#define MOCK_FN_NAME(name) #name,
    MOCK_FN_LIST(MOCK_FN_NAME)
#undef MOCK_FN_NAME
};

void mock_lock(void) { pthread_mutex_lock(&mock.lock); }
void mock_unlock(void) { pthread_mutex_unlock(&mock.lock); }
void mock_count(enum mock_fn fn) { mock.calls[fn]++; }

/* The extra counters, by name, for the stats file and mock_p11_get_count(). */
static const struct {
    const char *name;
    const unsigned long *value;
} extra_stats[] = {
    {"login_user", &mock.login_user},
    {"login_context", &mock.login_context},
    {"login_failed", &mock.login_failed},
    {"max_concurrent_sign", &mock.max_concurrent_signs},
    {"session_conflicts", &mock.session_conflicts},
    {"init_os_locking", &mock.init_os_locking},
    {"last_sign_len", &mock.last_sign_len},
};

static size_t open_sessions(void)
{
    size_t n = 0;
    for (size_t i = 0; i < MOCK_MAX_SESSIONS; i++)
        n += mock.sessions[i].handle != 0;
    return n;
}

/* Exported for unit tests that dlopen() the module: a counter by function name ("C_Login") or
 * extra name ("max_concurrent_sign", "open_sessions", "logged_in"). */
__attribute__((visibility("default"))) unsigned long mock_p11_get_count(const char *name)
{
    unsigned long v = 0;

    mock_lock();
    for (int i = 0; i < MOCK_FN_COUNT; i++)
        if (strcmp(name, fn_names[i]) == 0)
            v = mock.calls[i];
    for (size_t i = 0; i < sizeof(extra_stats) / sizeof(extra_stats[0]); i++)
        if (strcmp(name, extra_stats[i].name) == 0)
            v = *extra_stats[i].value;
    if (strcmp(name, "open_sessions") == 0)
        v = open_sessions();
    if (strcmp(name, "logged_in") == 0)
        v = mock.logged_in;
    mock_unlock();
    return v;
}

/* Exported: zeroes every counter (not the token state). */
__attribute__((visibility("default"))) void mock_p11_reset_counts(void)
{
    mock_lock();
    memset(mock.calls, 0, sizeof(mock.calls));
    mock.login_user = mock.login_context = mock.login_failed = 0;
    mock.max_concurrent_signs = mock.session_conflicts = 0;
    mock_unlock();
}

void mock_write_stats(void)
{
    char text[MOCK_STATS_MAX], tmp[MOCK_PATH_MAX + 16];
    size_t n = 0;
    int fd;

    if (mock.cfg.stats_file[0] == '\0')
        return;
    for (int i = 0; i < MOCK_FN_COUNT && n < sizeof(text); i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s=%lu\n", fn_names[i], mock.calls[i]);
    for (size_t i = 0; i < sizeof(extra_stats) / sizeof(extra_stats[0]) && n < sizeof(text); i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s=%lu\n", extra_stats[i].name,
                              *extra_stats[i].value);
    if (n < sizeof(text))
        n += (size_t)snprintf(text + n, sizeof(text) - n, "open_sessions=%zu\nlogged_in=%d\n",
                              open_sessions(), mock.logged_in ? 1 : 0);
    if (n > sizeof(text))
        n = sizeof(text);
    /* Written beside the target and renamed, so a reader never sees half a file. */
    snprintf(tmp, sizeof(tmp), "%s.tmp", mock.cfg.stats_file);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, text, n) == (ssize_t)n)
        rename(tmp, mock.cfg.stats_file);
    close(fd);
}

int mock_random(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    while (len > 0) {
        ssize_t r = getrandom(out, len, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        out += r;
        len -= (size_t)r;
    }
    return 0;
}

CK_RV mock_rv_from_name(const char *name)
{
    static const struct {
        const char *name;
        CK_RV rv;
    } rvs[] = {
        {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
        {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
        {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
        {"CKR_SLOT_ID_INVALID", CKR_SLOT_ID_INVALID},
        {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
        {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
        {"CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN},
        {"CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID},
        {"CKR_OBJECT_HANDLE_INVALID", CKR_OBJECT_HANDLE_INVALID},
        {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
        {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
        {"CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY},
        {"CKR_PIN_EXPIRED", CKR_PIN_EXPIRED},
    };
    char *end;
    unsigned long v;

    if (name == NULL || *name == '\0')
        return CKR_DEVICE_REMOVED;
    for (size_t i = 0; i < sizeof(rvs) / sizeof(rvs[0]); i++)
        if (strcmp(name, rvs[i].name) == 0)
            return rvs[i].rv;
    /* anything else as a number, e.g. 0x30 */
    errno = 0;
    v = strtoul(name, &end, 0);
    return (errno == 0 && *end == '\0') ? (CK_RV)v : CKR_GENERAL_ERROR;
}

static bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static unsigned long env_ulong(const char *name, unsigned long def)
{
    const char *v = getenv(name);
    char *end;
    unsigned long r;

    if (v == NULL || *v == '\0')
        return def;
    errno = 0;
    r = strtoul(v, &end, 10);
    return (errno == 0 && *end == '\0') ? r : def;
}

void mock_read_config(struct mock_config *cfg)
{
    const char *v;

    memset(cfg, 0, sizeof(*cfg));
    v = getenv("MOCK_P11_PIN");
    snprintf(cfg->pin, sizeof(cfg->pin), "%s", v != NULL ? v : "1234");
    cfg->fail_after = env_ulong("MOCK_P11_FAIL_SIGN_AFTER", 0);
    cfg->fail_times = env_ulong("MOCK_P11_FAIL_TIMES", 1);
    cfg->fail_rv = mock_rv_from_name(getenv("MOCK_P11_FAIL_RV"));
    v = getenv("MOCK_P11_FAIL_FN");
    cfg->fail_fn = (v != NULL && strcmp(v, "C_SignInit") == 0) ? MOCK_C_SignInit : MOCK_C_Sign;
    cfg->sign_delay_ms = (unsigned)env_ulong("MOCK_P11_SIGN_DELAY_MS", 0);
    cfg->no_token = env_flag("MOCK_P11_NO_TOKEN");
    cfg->no_login = env_flag("MOCK_P11_NO_LOGIN");
    cfg->always_auth = env_flag("MOCK_P11_ALWAYS_AUTH");
    cfg->no_public = env_flag("MOCK_P11_NO_PUBLIC");
    cfg->dup_label = env_flag("MOCK_P11_DUP_LABEL");
    cfg->no_pss = env_flag("MOCK_P11_NO_PSS");
    v = getenv("MOCK_P11_RSA_ALLOWED");
    cfg->rsa_pkcs_only = v != NULL && strcmp(v, "CKM_RSA_PKCS") == 0;
    cfg->pin_failures = (unsigned)env_ulong("MOCK_P11_PIN_FAILURES", 0);
    v = getenv("MOCK_P11_STATS_FILE");
    snprintf(cfg->stats_file, sizeof(cfg->stats_file), "%s", v != NULL ? v : "");
}
