/* The step printer of `tedge connect|disconnect`: upstream's "Title... ✓/✗" lines, warnings,
 * info lines and the final "Error: failed to ..." block, all on stderr. */
#include "tedge-cli/commands/connect_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ANSI_RESET "\033[0m"
#define ANSI_GREEN_BOLD "\033[1;32m"
#define ANSI_RED_BOLD "\033[1;31m"
#define ANSI_YELLOW_BOLD "\033[1;33m"

static int color_state = -1; /* -1 unknown, 0 off, 1 on */

static bool use_color(void)
{
    if (color_state < 0) {
        const char *no_color = getenv("NO_COLOR");
        color_state = isatty(STDERR_FILENO) && (no_color == NULL || no_color[0] == '\0');
    }
    return color_state == 1;
}

const char *connect_color(const char *ansi)
{
    if (!use_color())
        return "";
    return ansi != NULL ? ansi : ANSI_RESET;
}

void connect_step_start(struct connect_step *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->title, sizeof(s->title), fmt, ap);
    va_end(ap);
    /* On a terminal the title shows while the step runs; in a log the line is written whole
     * when it finishes, so that nothing printed meanwhile splits it. */
    if (use_color()) {
        fprintf(stderr, "%s... ", s->title);
        fflush(stderr);
    }
}

int connect_step_finish(struct connect_step *s, int rc, const struct te_error *err)
{
    if (!use_color())
        fprintf(stderr, "%s... ", s->title);
    if (rc == TE_OK) {
        fprintf(stderr, "%s✓%s\n", connect_color(ANSI_GREEN_BOLD), connect_color(NULL));
    } else {
        fprintf(stderr, "%s✗%s\n", connect_color(ANSI_RED_BOLD), connect_color(NULL));
        fprintf(stderr, "%serror:%s %s\n", connect_color(ANSI_RED_BOLD), connect_color(NULL),
                err != NULL ? te_error_message(err) : te_strerror(rc));
    }
    fflush(stderr);
    return rc;
}

/* One line on stderr: "<label>: <message>" with the label coloured on a terminal, or the
 * message alone when label is NULL. */
static void print_line(const char *color, const char *label, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void print_line(const char *color, const char *label, const char *fmt, va_list ap)
{
    if (label != NULL)
        fprintf(stderr, "%s%s:%s ", connect_color(color), label, connect_color(NULL));
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void connect_warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_line(ANSI_YELLOW_BOLD, "warning", fmt, ap);
    va_end(ap);
}

void connect_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_line(ANSI_GREEN_BOLD, "info", fmt, ap);
    va_end(ap);
}

void connect_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_line(NULL, NULL, fmt, ap);
    va_end(ap);
}

int connect_fail(const char *what, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "Error: failed to %s\n\nCaused by:\n    ", what);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    return 1;
}
