/*  log.h - one-line log messages on stderr, as key=value fields.

    Each line reads

        ts=2026-12-01T12:00:00.123Z level=info proc=walcast-node id=us1 msg="wal: recovered 0 entries, ..."

    ts is UTC with milliseconds, level one of error, warn, info, debug,
    proc the program, id the node's id (absent for the broker and for
    tools). msg is last and always quoted: the event in words, with '"',
    '\' and control characters escaped (\", \\, \n, \r, \t, \xHH), so one
    event is always one line and a script can grep the message text it
    knows (`msg="wal: recovered `). Logs are for operators: say what
    happened and the context that explains it (seqs, addresses, errno
    text), one event a line.
*/
#ifndef WC_LOG_H_INCLUDED
#define WC_LOG_H_INCLUDED

#include <stddef.h>

typedef enum {
    WC_LOG_ERROR = 0,
    WC_LOG_WARN  = 1,
    WC_LOG_INFO  = 2,
    WC_LOG_DEBUG = 3
} wc_log_level_t;

/*  The level names in order ("error", "warn", "info", "debug"), NULL
    terminated: the choices of --log-level, indexed by wc_log_level_t. */
extern const char *const wc_log_level_names [];

/*  The program and the id shown in every line (copied); id NULL or ""
    leaves the id field out. */
void wc_log_set_name (const char *proc, const char *id);

/*  Lines above this level are dropped (default WC_LOG_INFO). */
void wc_log_set_level (wc_log_level_t level);

/*  The current level. */
wc_log_level_t wc_log_get_level (void);

void wc_log (wc_log_level_t level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/*  Format one line (without its newline) into buf: what wc_log writes,
    for the tests of the format. Returns its length. */
size_t wc_log_format (char *buf, size_t size, wc_log_level_t level, const char *msg);

#define wc_log_error(...) wc_log (WC_LOG_ERROR, __VA_ARGS__)
#define wc_log_warn(...)  wc_log (WC_LOG_WARN, __VA_ARGS__)
#define wc_log_info(...)  wc_log (WC_LOG_INFO, __VA_ARGS__)
#define wc_log_debug(...) wc_log (WC_LOG_DEBUG, __VA_ARGS__)

#endif
