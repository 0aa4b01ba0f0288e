/*  metrics.h - a registry of metrics, rendered in Prometheus's text format.

    A process declares families (a name, a type, a help line, the names
    of its labels, and for a histogram its bucket bounds), then sets the
    values of their series (one per combination of label values) and
    renders the whole registry as the text exposition format, version
    0.0.4: for each family a "# HELP" and a "# TYPE" line, then one line
    per sample, `name{label="value",...} value`, histograms as cumulative
    `_bucket{le="..."}` lines ending at le="+Inf", then `_sum` and
    `_count`. Label values are escaped (backslash, double quote, newline).

    The registry is one thread's (the loop's): it is not locked. Counts
    made on another thread reach it as a wc_metrics_tally_t, a plain
    histogram that thread fills under its own lock and the loop copies
    (wc_metric_set_tally). A series is a pointer into the registry, good
    until its family is cleared (wc_metrics_clear) or the registry goes.
*/
#ifndef WC_METRICS_H_INCLUDED
#define WC_METRICS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef enum {
    WC_METRIC_COUNTER,
    WC_METRIC_GAUGE,
    WC_METRIC_HISTOGRAM
} wc_metric_type_t;

/*  Most labels a family has, and most buckets a histogram has (+Inf
    comes on top). */
#define WC_METRICS_MAX_LABELS   4
#define WC_METRICS_MAX_BUCKETS  16

/*  A histogram's counts as plain data: counts[i] is the observations in
    bucket i (not cumulative; counts[nbounds] is above the last bound). */
typedef struct {
    uint64_t counts [WC_METRICS_MAX_BUCKETS + 1];
    double   sum;
    uint64_t count;
} wc_metrics_tally_t;

/*  Bounds for latencies in seconds, 100 us to 10 s: 16 buckets. */
extern const double wc_metrics_latency_bounds [];
#define WC_METRICS_LATENCY_BUCKETS  16

/*  Add one observation of value to a tally with these bounds. */
void wc_metrics_tally_add (wc_metrics_tally_t *tally, const double *bounds,
                           size_t nbounds, double value);

/*  The same, n observations of value at once. */
void wc_metrics_tally_add_n (wc_metrics_tally_t *tally, const double *bounds,
                             size_t nbounds, double value, uint64_t n);

typedef struct wc_metrics wc_metrics_t;
typedef struct wc_metric wc_metric_t;

wc_metrics_t *wc_metrics_new (void);
void wc_metrics_destroy (wc_metrics_t **self_p);

/*  Declare a family. name: [a-zA-Z_:][a-zA-Z0-9_:]*, a counter's ending
    in _total; labels: NULL-terminated names (NULL for none), at most
    WC_METRICS_MAX_LABELS; bounds: a histogram's ascending upper bounds
    (at most WC_METRICS_MAX_BUCKETS; the array must outlive the
    registry). Families render in the order declared. 0, WALCAST_EINVAL
    (a bad name, a name declared twice, too many labels or buckets) or
    WALCAST_ENOMEM. */
int wc_metrics_family (wc_metrics_t *self, const char *name, wc_metric_type_t type,
                       const char *help, const char *const *labels,
                       const double *bounds, size_t nbounds);

/*  The series of family name with these label values (one per label of
    the family, in its order; NULL for a family without labels), made at
    zero when new. NULL when the family is unknown or out of memory. */
wc_metric_t *wc_metrics_series (wc_metrics_t *self, const char *name,
                                const char *const *values);

/*  Forget every series of family name (for series that come and go,
    like one per replica: clear, then set those that exist now). */
void wc_metrics_clear (wc_metrics_t *self, const char *name);

/*  Set a counter or gauge; add to one; observe a value in a histogram;
    replace a histogram's counts with a tally of the same bounds. */
void wc_metric_set (wc_metric_t *metric, double value);
void wc_metric_add (wc_metric_t *metric, double value);
void wc_metric_observe (wc_metric_t *metric, double value);
void wc_metric_set_tally (wc_metric_t *metric, const wc_metrics_tally_t *tally);

/*  The exposition text of every family, NUL-terminated, in *text (the
    caller frees it) and its length in *len. 0 or WALCAST_ENOMEM. */
int wc_metrics_render (const wc_metrics_t *self, char **text, size_t *len);

/*  The content type of the text format. */
#define WC_METRICS_CONTENT_TYPE  "text/plain; version=0.0.4; charset=utf-8"

#endif
