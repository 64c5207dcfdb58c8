/* Logging (see log.h). Lines carry a UTC timestamp on a terminal or file, and a
 * journald `<N>` priority prefix instead when stderr is connected to the journal. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048 /* longer lines are truncated, never split */

static const char *log_component = "tedge";
static enum log_level log_level = LOG_LVL_INFO;
static int log_fd = STDERR_FILENO;
static bool log_to_journal;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
/* syslog priorities for journald's stream protocol */
static const int level_prio[] = {3, 4, 6, 7, 7};

static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return false;
    if (fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *component)
{
    if (component != NULL)
        log_component = component;
    log_to_journal = stderr_is_journal();
}

void log_set_level(enum log_level level) { log_level = level; }
enum log_level log_get_level(void) { return log_level; }
void log_set_fd(int fd) { log_fd = fd; }
bool log_enabled(enum log_level level) { return level <= log_level; }

int log_level_from_name(const char *name)
{
    static const char *const lower[] = {"error", "warn", "info", "debug", "trace"};

    if (name == NULL)
        return -1;
    for (int i = 0; i < 5; i++)
        if (strcasecmp(name, lower[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return LOG_LVL_WARN;
    return -1;
}

void log_emit(enum log_level level, const char *func, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    size_t n = 0;
    int r;
    va_list ap;

    if (level > log_level)
        return;
    if (log_to_journal) {
        r = snprintf(line, sizeof(line), "<%d>", level_prio[level]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        r = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000);
    }
    n = r > 0 ? (size_t)r : 0;
    r = snprintf(line + n, sizeof(line) - n, "%s %s: ", level_names[level], log_component);
    if (r > 0)
        n += (size_t)r;
    if (level >= LOG_LVL_DEBUG && func != NULL && n < sizeof(line)) {
        r = snprintf(line + n, sizeof(line) - n, "%s: ", func);
        if (r > 0)
            n += (size_t)r;
    }
    if (n < sizeof(line)) {
        size_t start = n;
        va_start(ap, fmt);
        r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
        if (r > 0)
            n += (size_t)r;
        if (n > sizeof(line) - 2)
            n = sizeof(line) - 2;
        /* A peer's bytes in a message must not forge extra log lines. */
        for (size_t i = start; i < n; i++)
            if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
                line[i] = '?';
    }
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    /* One write so that concurrent lines never interleave; nothing useful to do on failure. */
    ssize_t w = write(log_fd, line, n);
    (void)w;
}
