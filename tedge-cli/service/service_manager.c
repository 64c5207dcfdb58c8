/* The service manager: reads the [init] table of system.toml (systemd when absent) and runs its
 * commands with the service name in place of "{}", without a shell, within a deadline. */
#include "tedge-cli/service/service_manager.h"

#include "common/clock.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/toml.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SVC_NAME_MAX 64          /* the init system's name, shown in one summary line */
#define SVC_ARGV_MAX 64          /* more arguments than any init command needs */
#define SVC_ARG_MAX 4096         /* longest single argument (a path, a service name) */
#define SVC_WAIT_STEP_NS 10000000L /* how often a running command is polled (10 ms) */
#define SVC_PLACEHOLDER "{}"

struct svc_command {
    char **argv;  /* NULL-terminated; each string malloc'd */
    size_t argc;
};

struct svc_manager {
    char name[SVC_NAME_MAX];
    char path[4096];              /* system.toml, for messages */
    struct svc_command actions[SVC_N_ACTIONS];
};

static const char *const action_names[SVC_N_ACTIONS] = {
    "is_available", "restart", "stop", "start", "enable", "disable", "is_active",
};

/* systemd, as upstream's default InitConfig. */
static const char *const systemd_default[SVC_N_ACTIONS][4] = {
    {"/bin/systemctl", "--version", NULL},
    {"/bin/systemctl", "restart", SVC_PLACEHOLDER, NULL},
    {"/bin/systemctl", "stop", SVC_PLACEHOLDER, NULL},
    {"/bin/systemctl", "start", SVC_PLACEHOLDER, NULL},
    {"/bin/systemctl", "enable", SVC_PLACEHOLDER, NULL},
    {"/bin/systemctl", "disable", SVC_PLACEHOLDER, NULL},
    {"/bin/systemctl", "is-active", SVC_PLACEHOLDER, NULL},
};

const char *svc_action_name(enum svc_action a)
{
    return (unsigned)a < SVC_N_ACTIONS ? action_names[a] : "unknown";
}

const char *svc_manager_name(const struct svc_manager *m)
{
    return m->name;
}

static void command_clear(struct svc_command *c)
{
    if (c->argv != NULL) {
        for (size_t i = 0; i < c->argc; i++)
            free(c->argv[i]);
        free(c->argv);
    }
    c->argv = NULL;
    c->argc = 0;
}

void svc_manager_free(struct svc_manager *m)
{
    if (m == NULL)
        return;
    for (int a = 0; a < SVC_N_ACTIONS; a++)
        command_clear(&m->actions[a]);
    free(m);
}

/* Copies n strings into c (replacing what it held). */
static int command_set(struct svc_command *c, const char *const *args, size_t n)
{
    char **argv = calloc(n + 1, sizeof(*argv));
    if (argv == NULL)
        return TE_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((argv[i] = strdup(args[i])) == NULL) {
            for (size_t j = 0; j < i; j++)
                free(argv[j]);
            free(argv);
            return TE_ERR_NOMEM;
        }
    }
    command_clear(c);
    c->argv = argv;
    c->argc = n;
    return TE_OK;
}

static int set_defaults(struct svc_manager *m)
{
    int r;
    snprintf(m->name, sizeof(m->name), "systemd");
    for (int a = 0; a < SVC_N_ACTIONS; a++) {
        size_t n = 0;
        while (systemd_default[a][n] != NULL)
            n++;
        if ((r = command_set(&m->actions[a], systemd_default[a], n)) != TE_OK)
            return r;
    }
    return TE_OK;
}

static int type_error(const struct svc_manager *m, const struct toml_value *v, const char *key,
                      const char *what, struct te_error *err)
{
    return te_error_set(err, TE_ERR_CONFIG,
                        "%s:%u:%u: `init.%s` must be %s. Fix %s and try "
                        "again.", m->path, v->line, v->col, key, what, m->path);
}

/* One action of [init]: an array of 1..SVC_ARGV_MAX strings. */
static int read_action(struct svc_manager *m, const struct toml_value *v, int a,
                       struct te_error *err)
{
    const char *args[SVC_ARGV_MAX];
    const char *key = action_names[a];

    if (v->type != TOML_ARRAY)
        return type_error(m, v, key, "an array of strings like [\"/bin/systemctl\", \"restart\", "
                          "\"{}\"]", err);
    if (v->n_items == 0 || v->n_items > SVC_ARGV_MAX)
        return type_error(m, v, key, "a non-empty array of at most 64 strings (the program "
                          "and its arguments)", err);
    for (size_t i = 0; i < v->n_items; i++) {
        if (v->items[i]->type != TOML_STRING)
            return type_error(m, v, key, "an array of strings", err);
        if (strlen(v->items[i]->str) > SVC_ARG_MAX ||
            (i == 0 && v->items[i]->str[0] == '\0'))
            return type_error(m, v, key, "an array whose first string names a program", err);
        args[i] = v->items[i]->str;
    }
    if (command_set(&m->actions[a], args, v->n_items) != TE_OK)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory reading %s.", m->path);
    return TE_OK;
}

static int read_init_table(struct svc_manager *m, const struct toml_value *init,
                           struct te_error *err)
{
    const struct toml_value *v;
    int r;

    if (init->type != TOML_TABLE)
        return type_error(m, init, "init", "a table", err);
    if ((v = toml_table_get(init, "name")) != NULL) {
        if (v->type != TOML_STRING || v->str[0] == '\0' || strlen(v->str) >= SVC_NAME_MAX)
            return type_error(m, v, "name", "a non-empty string of at most 63 bytes", err);
        snprintf(m->name, sizeof(m->name), "%s", v->str);
    }
    for (int a = 0; a < SVC_N_ACTIONS; a++) {
        if ((v = toml_table_get(init, action_names[a])) == NULL)
            continue;
        if ((r = read_action(m, v, a, err)) != TE_OK)
            return r;
    }
    return TE_OK;
}

int svc_manager_load(const char *config_dir, struct svc_manager **out, struct te_error *err)
{
    struct svc_manager *m = NULL;
    struct toml_doc *doc = NULL;
    struct te_error perr = {0};
    const struct toml_value *init;
    char *text = NULL;
    size_t len = 0;
    int ret;

    CHECK_ARG(config_dir != NULL && out != NULL, TE_ERR_INVALID);
    *out = NULL;
    if ((m = calloc(1, sizeof(*m))) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory loading the service manager.");
    snprintf(m->path, sizeof(m->path), "%s/%s", config_dir, SVC_CONFIG_FILE);
    if ((ret = set_defaults(m)) != TE_OK) {
        ret = te_error_set(err, ret, "Out of memory loading the service manager.");
        goto exit;
    }
    ret = file_read_all(m->path, TOML_MAX_SIZE, &text, &len, &perr);
    if (ret == TE_ERR_NOT_FOUND) {
        log_debug("no %s: using systemd", m->path);
        ret = TE_OK;
        goto exit;
    }
    if (ret != TE_OK) {
        ret = te_error_set(err, TE_ERR_CONFIG, "Cannot read the init system configuration: %s",
                           te_error_message(&perr));
        goto exit;
    }
    if ((ret = toml_parse(text, len, m->path, &doc, &perr)) != TE_OK) {
        ret = te_error_set(err, TE_ERR_CONFIG, "The init system configuration is invalid: %s",
                           te_error_message(&perr));
        goto exit;
    }
    if ((init = toml_table_get(toml_root(doc), "init")) != NULL &&
        (ret = read_init_table(m, init, err)) != TE_OK)
        goto exit;
    log_debug("service manager name=%s config=%s", m->name, m->path);
exit:
    toml_free(doc);
    free(text);
    if (ret != TE_OK)
        svc_manager_free(m);
    else
        *out = m;
    return ret;
}

/* "prog arg1 arg2" for messages (upstream's ExecCommand display). */
static void command_text(char *const *argv, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; argv[i] != NULL && used < size; i++) {
        int n = snprintf(out + used, size - used, "%s%s", i ? " " : "", argv[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int svc_manager_argv(const struct svc_manager *m, enum svc_action a, const char *service,
                     char ***argv_out, struct te_error *err)
{
    const struct svc_command *c;
    size_t total = 0, slen, i;
    bool placeholder = false;
    char **argv, *p;

    CHECK_ARG(m != NULL && argv_out != NULL && (unsigned)a < SVC_N_ACTIONS, TE_ERR_INVALID);
    *argv_out = NULL;
    c = &m->actions[a];
    if (a != SVC_IS_AVAILABLE) {
        CHECK_ARG(service != NULL, TE_ERR_INVALID);
        if (service[0] == '\0' || strlen(service) >= SVC_SERVICE_NAME_MAX)
            return te_error_set(err, TE_ERR_INVALID, "Invalid service name '%.*s'.",
                                SVC_SERVICE_NAME_MAX, service);
    }
    if (c->argc == 0)
        return te_error_set(err, TE_ERR_CONFIG,
                            "The '%s' command in %s requires 1 or more arguments. Fix the file "
                            "and try again.", action_names[a], m->path);
    slen = service != NULL ? strlen(service) : 0;
    for (i = 0; i < c->argc; i++) {
        bool is_ph = a != SVC_IS_AVAILABLE && strcmp(c->argv[i], SVC_PLACEHOLDER) == 0;
        placeholder |= is_ph;
        total += (is_ph ? slen : strlen(c->argv[i])) + 1;
    }
    if (a != SVC_IS_AVAILABLE && !placeholder)
        return te_error_set(err, TE_ERR_CONFIG,
                            "The '%s' command in %s has no placeholder '{}' for the service name. "
                            "Fix the file and try again.", action_names[a], m->path);
    /* one block: the pointer array, then the strings */
    if ((argv = malloc((c->argc + 1) * sizeof(*argv) + total)) == NULL)
        return te_error_set(err, TE_ERR_NOMEM, "Out of memory running a service command.");
    p = (char *)(argv + c->argc + 1);
    for (i = 0; i < c->argc; i++) {
        const char *s = (a != SVC_IS_AVAILABLE && strcmp(c->argv[i], SVC_PLACEHOLDER) == 0)
                            ? service : c->argv[i];
        size_t l = strlen(s) + 1;
        memcpy(p, s, l);
        argv[i] = p;
        p += l;
    }
    argv[c->argc] = NULL;
    *argv_out = argv;
    return TE_OK;
}

/* In the child: stdin from /dev/null, stdout/stderr to /dev/null unless debugging (as upstream,
 * which hides the init system's chatter), no inherited fds, its own process group. */
static void exec_child(char *const *argv, int report_fd, bool show_output)
{
    int null_fd = open("/dev/null", O_RDWR);
    sigset_t none;
    int e;

    setpgid(0, 0);
    if (report_fd <= STDERR_FILENO) /* tedge started with a standard fd closed */
        report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        if (!show_output) {
            dup2(null_fd, STDOUT_FILENO);
            dup2(null_fd, STDERR_FILENO);
        }
        if (null_fd > STDERR_FILENO)
            close(null_fd);
    }
    /* report_fd is close-on-exec: it goes away when execvp succeeds */
    if (report_fd > STDERR_FILENO + 1)
        close_range(STDERR_FILENO + 1, (unsigned)report_fd - 1, 0);
    close_range((unsigned)report_fd + 1, ~0U, 0);
    /* what tedge changed must not leak into services (libmosquitto ignores SIGPIPE) */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], argv);
    e = errno;
    if (write(report_fd, &e, sizeof(e)) < 0) {
        /* nothing left to report to */
    }
    _exit(127);
}

/* Runs argv; *status is its wait status. TE_ERR_NOT_FOUND when it cannot be executed,
 * TE_ERR_TIMEOUT (after killing its process group) past SVC_COMMAND_TIMEOUT_MS. */
static int run_command(const struct svc_manager *m, char *const *argv, int *status,
                       struct te_error *err)
{
    char text[1024];
    int pipefd[2], child_errno = 0, ret = TE_OK;
    int64_t start;
    ssize_t n;
    pid_t pid, w;

    command_text(argv, text, sizeof(text));
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return te_error_set(err, TE_ERR_IO, "Cannot run service command <\"%s\">: %s.", text,
                            strerror(errno));
    start = te_monotonic_ms();
    if ((pid = fork()) < 0) {
        ret = te_error_set(err, TE_ERR_IO, "Cannot run service command <\"%s\">: %s.", text,
                           strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return ret;
    }
    if (pid == 0)
        exec_child(argv, pipefd[1], log_enabled(LOG_LVL_DEBUG));
    close(pipefd[1]);
    do {
        n = read(pipefd[0], &child_errno, sizeof(child_errno));
    } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    for (;;) {
        w = waitpid(pid, status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            return te_error_set(err, TE_ERR_IO, "Cannot wait for service command <\"%s\">: %s.",
                                text, strerror(errno));
        }
        if (te_monotonic_ms() - start > SVC_COMMAND_TIMEOUT_MS) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
            return te_error_set(err, TE_ERR_TIMEOUT,
                                "Service command <\"%s\"> did not finish within %d s and was "
                                "killed. Check the init system configuration in %s.",
                                text, SVC_COMMAND_TIMEOUT_MS / 1000, m->path);
        }
        nanosleep(&(struct timespec){0, SVC_WAIT_STEP_NS}, NULL);
    }
    log_debug("service command=\"%s\" status=%d duration_ms=%ld", text,
              WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, (long)(te_monotonic_ms() - start));
    if (n == (ssize_t)sizeof(child_errno))
        return te_error_set(err, TE_ERR_NOT_FOUND,
                            "Service command <\"%s\"> could not be run: %s. Check the init "
                            "system configuration in %s (or install %s).", text,
                            strerror(child_errno), m->path, argv[0]);
    return TE_OK;
}

static int status_to_error(int status, const char *text, struct te_error *err)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return TE_OK;
    if (WIFEXITED(status))
        return te_error_set(err, TE_ERR_IO, "Service command <\"%s\"> failed with code: %d.",
                            text, WEXITSTATUS(status));
    return te_error_set(err, TE_ERR_IO, "Service command <\"%s\"> was terminated by signal %d.",
                        text, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int svc_manager_run(struct svc_manager *m, enum svc_action a, const char *service,
                    struct te_error *err)
{
    char **argv = NULL, text[1024];
    int status = 0, ret;

    CHECK_ARG(m != NULL, TE_ERR_INVALID);
    if ((ret = svc_manager_argv(m, a, service, &argv, err)) != TE_OK)
        return ret;
    if ((ret = run_command(m, argv, &status, err)) == TE_OK) {
        command_text(argv, text, sizeof(text));
        ret = status_to_error(status, text, err);
    }
    free(argv);
    return ret;
}

int svc_manager_check_operational(struct svc_manager *m, struct te_error *err)
{
    struct te_error why = {0};
    char **argv = NULL, text[1024];
    int status = 0, ret;

    CHECK_ARG(m != NULL, TE_ERR_INVALID);
    if ((ret = svc_manager_argv(m, SVC_IS_AVAILABLE, NULL, &argv, err)) != TE_OK)
        return ret;
    command_text(argv, text, sizeof(text));
    ret = run_command(m, argv, &status, &why);
    if (ret == TE_OK && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        goto exit;
    ret = te_error_set(err, TE_ERR_UNSUPPORTED,
                       "Service manager '%s' is not available on the system: <\"%s\"> %s. "
                       "Install it, or describe your init system in %s.", m->name, text,
                       ret != TE_OK ? "could not be run" : "failed", m->path);
exit:
    free(argv);
    return ret;
}

int svc_manager_is_active(struct svc_manager *m, const char *service, bool *active,
                          struct te_error *err)
{
    char **argv = NULL;
    int status = 0, ret;

    CHECK_ARG(m != NULL && active != NULL, TE_ERR_INVALID);
    *active = false;
    if ((ret = svc_manager_argv(m, SVC_IS_ACTIVE, service, &argv, err)) != TE_OK)
        return ret;
    if ((ret = run_command(m, argv, &status, err)) == TE_OK)
        *active = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    free(argv);
    return ret;
}

int svc_manager_start_and_enable(struct svc_manager *m, const char *service, struct te_error *err)
{
    int ret = svc_manager_run(m, SVC_START, service, err);
    return ret != TE_OK ? ret : svc_manager_run(m, SVC_ENABLE, service, err);
}

int svc_manager_stop_and_disable(struct svc_manager *m, const char *service, struct te_error *err)
{
    int ret = svc_manager_run(m, SVC_STOP, service, err);
    return ret != TE_OK ? ret : svc_manager_run(m, SVC_DISABLE, service, err);
}
