/* Logging: one line per event, `level component: message key=value`, written with one
 * write(2) so lines from threads never interleave; journald priority prefix under systemd. */
#ifndef TEDGE_COMMON_LOG_H
#define TEDGE_COMMON_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG, LOG_LVL_TRACE };

/* Names the component in every line ("tedge-p11-server") and checks whether stderr is the
 * journal ($JOURNAL_STREAM). Call once at start-up; safe to skip in tests. */
void log_init(const char *component);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn", "info", "debug" or "trace" (case-insensitive); -1 when unknown. */
int log_level_from_name(const char *name);
/* Send lines to fd instead of stderr (tests). */
void log_set_fd(int fd);
bool log_enabled(enum log_level level);

void log_emit(enum log_level level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...) log_emit(LOG_LVL_ERROR, __func__, __VA_ARGS__)
#define log_warn(...)  log_emit(LOG_LVL_WARN, __func__, __VA_ARGS__)
#define log_info(...)  log_emit(LOG_LVL_INFO, __func__, __VA_ARGS__)
#define log_debug(...) log_emit(LOG_LVL_DEBUG, __func__, __VA_ARGS__)
#define log_trace(...) log_emit(LOG_LVL_TRACE, __func__, __VA_ARGS__)

/* Precondition check for public functions: logs the failed expression and returns rv. */
#define CHECK_ARG(expr, rv)                                                  \
    do {                                                                     \
        if (!(expr)) {                                                       \
            log_emit(LOG_LVL_ERROR, __func__, "precondition failed: %s", #expr); \
            return (rv);                                                     \
        }                                                                    \
    } while (0)

#endif
