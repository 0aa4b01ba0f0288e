/*  log.c - one-line log messages on stderr, as key=value fields (see
    log.h).

    The message is formatted first, then escaped into the line's quoted
    msg field, so whatever a message holds (a peer's text, a path with a
    newline) it cannot break the line or forge a field. Each line is
    written with a single write(), so lines from several processes
    sharing a terminal or a file do not interleave mid-line.
*/
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdatomic.h>
#include <unistd.h>
#include "log.h"

const char *const wc_log_level_names [] = { "error", "warn", "info", "debug", NULL };

static char s_proc [96] = "walcast";
static char s_id [96] = "";
/*  Read by every thread that logs (the loop, the CURVE monitor, the
    syncer), set by the loop (SIGHUP): atomic, so that is no data race. */
static atomic_int s_level = WC_LOG_INFO;

void
wc_log_set_name (const char *proc, const char *id)
{
    snprintf (s_proc, sizeof s_proc, "%s", proc ? proc : "walcast");
    snprintf (s_id, sizeof s_id, "%s", id ? id : "");
}

void
wc_log_set_level (wc_log_level_t level)
{
    atomic_store_explicit (&s_level, (int) level, memory_order_relaxed);
}

wc_log_level_t
wc_log_get_level (void)
{
    return (wc_log_level_t) atomic_load_explicit (&s_level, memory_order_relaxed);
}

/*  A growing line: appends stop (and keep the text whole up to there)
    once the buffer is full, keeping room for the closing quote. */
typedef struct {
    char   *buf;
    size_t  size;           /* of buf, > 2 */
    size_t  len;
    bool    full;           /* an append did not fit: no more appends */
} s_line_t;

static void
s_put (s_line_t *line, const char *text, size_t len)
{
    if (line->full || line->len + len + 2 > line->size) {
        line->full = true;
        return;
    }
    memcpy (line->buf + line->len, text, len);
    line->len += len;
}

/*  Append text escaped: \" \\ \n \r \t, other control bytes as \xHH. */
static void
s_put_escaped (s_line_t *line, const char *text)
{
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        char esc [8];
        if (*p == '"' || *p == '\\')
            snprintf (esc, sizeof esc, "\\%c", *p);
        else if (*p == '\n' || *p == '\r' || *p == '\t')
            snprintf (esc, sizeof esc, "\\%c", *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't');
        else if (*p < 0x20 || *p == 0x7f)
            snprintf (esc, sizeof esc, "\\x%02x", *p);
        else {
            s_put (line, (const char *) p, 1);
            continue;
        }
        s_put (line, esc, strlen (esc));
    }
}

/*  Append " key=value", quoting value when it holds a space, '=' or '"'. */
static void
s_put_field (s_line_t *line, const char *key, const char *value)
{
    s_put (line, " ", 1);
    s_put (line, key, strlen (key));
    s_put (line, "=", 1);
    bool quote = !*value || strpbrk (value, " =\"\\") != NULL;
    if (quote)
        s_put (line, "\"", 1);
    s_put_escaped (line, value);
    if (quote)
        s_put (line, "\"", 1);
}

size_t
wc_log_format (char *buf, size_t size, wc_log_level_t level, const char *msg)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    s_line_t line = { buf, size, 0, false };
    char stamp [96];
    snprintf (stamp, sizeof stamp, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
              tm.tm_min, tm.tm_sec, (long) (ts.tv_nsec / 1000000) % 1000);
    s_put (&line, stamp, strlen (stamp));
    s_put_field (&line, "level", wc_log_level_names [level]);
    s_put_field (&line, "proc", s_proc);
    if (s_id [0])
        s_put_field (&line, "id", s_id);
    s_put (&line, " msg=\"", 6);
    s_put_escaped (&line, msg);
    line.buf [line.len++] = '"';        /* s_put kept room for it */
    line.buf [line.len] = 0;
    return line.len;
}

void
wc_log (wc_log_level_t level, const char *fmt, ...)
{
    if ((int) level > atomic_load_explicit (&s_level, memory_order_relaxed))
        return;
    char msg [1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (msg, sizeof msg, fmt, args);
    va_end (args);
    char line [2560];
    size_t len = wc_log_format (line, sizeof line - 1, level, msg);
    line [len++] = '\n';
    ssize_t rc = write (STDERR_FILENO, line, len);
    (void) rc;
}
