/*  log.c - one-line log messages on stderr (see log.h).

    Each line is formatted into one buffer and written with a single
    write(), so lines from several processes sharing a terminal or a file
    do not interleave mid-line.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "log.h"

static char s_name [96] = "walcast";
static wc_log_level_t s_level = WC_LOG_INFO;

static const char *s_level_names [] = { "ERROR", "WARN", "INFO", "DEBUG" };

void
wc_log_set_name (const char *name)
{
    snprintf (s_name, sizeof s_name, "%s", name);
}

void
wc_log_set_level (wc_log_level_t level)
{
    s_level = level;
}

void
wc_log (wc_log_level_t level, const char *fmt, ...)
{
    if (level > s_level)
        return;
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);

    char line [1024];
    int n = snprintf (line, sizeof line,
                      "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                      s_name, s_level_names [level]);
    va_list args;
    va_start (args, fmt);
    int m = vsnprintf (line + n, sizeof line - (size_t) n - 1, fmt, args);
    va_end (args);
    size_t len = (size_t) n + (m < 0 ? 0 : (size_t) m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line [len++] = '\n';
    ssize_t rc = write (STDERR_FILENO, line, len);
    (void) rc;
}
