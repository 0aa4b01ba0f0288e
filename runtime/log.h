/*  log.h - one-line log messages on stderr.

    Each line reads "2026-11-29T12:00:00.123Z walcast-node[us1] INFO: text".
    Logs are for operators: say what happened and the context that explains
    it (seqs, addresses, errno text), one event a line.
*/
#ifndef WC_LOG_H_INCLUDED
#define WC_LOG_H_INCLUDED

typedef enum {
    WC_LOG_ERROR = 0,
    WC_LOG_WARN  = 1,
    WC_LOG_INFO  = 2,
    WC_LOG_DEBUG = 3
} wc_log_level_t;

/*  Name shown in every line, e.g. "walcast-node[us1]" (copied). */
void wc_log_set_name (const char *name);

/*  Lines above this level are dropped (default WC_LOG_INFO). */
void wc_log_set_level (wc_log_level_t level);

void wc_log (wc_log_level_t level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#define wc_log_error(...) wc_log (WC_LOG_ERROR, __VA_ARGS__)
#define wc_log_warn(...)  wc_log (WC_LOG_WARN, __VA_ARGS__)
#define wc_log_info(...)  wc_log (WC_LOG_INFO, __VA_ARGS__)
#define wc_log_debug(...) wc_log (WC_LOG_DEBUG, __VA_ARGS__)

#endif
