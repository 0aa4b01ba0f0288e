/*  test_metrics.c - the metrics registry writes Prometheus's text format.

    What a scraper relies on: each family opens with # HELP and # TYPE;
    a counter and a gauge are one line each, `name{labels} value`, with
    integers written as integers; a histogram's buckets are cumulative,
    end at le="+Inf" and agree with _count; label values with a quote, a
    backslash or a newline are escaped so the line still parses; a
    counter's name must end in _total where we said so, and a family is
    declared once. The expected texts are written out whole.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "metrics.h"
#include "walcast.h"

//  Render self and compare with the expected text, whole.
static void
s_expect (wc_metrics_t *self, const char *expected)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal (wc_metrics_render (self, &text, &len), 0);
    assert_non_null (text);
    assert_int_equal (len, strlen (text));
    assert_string_equal (text, expected);
    free (text);
}

static void
test_counter_and_gauge (void **state)
{
    (void) state;
    wc_metrics_t *self = wc_metrics_new ();
    assert_non_null (self);
    assert_int_equal (wc_metrics_family (self, "walcast_writes_total", WC_METRIC_COUNTER,
                                         "Writes committed.", NULL, NULL, 0), 0);
    const char *const code [] = { "code", NULL };
    assert_int_equal (wc_metrics_family (self, "walcast_refused_total", WC_METRIC_COUNTER,
                                         "Requests refused, by error code.", code,
                                         NULL, 0), 0);
    assert_int_equal (wc_metrics_family (self, "walcast_epoch", WC_METRIC_GAUGE,
                                         "The node's epoch.", NULL, NULL, 0), 0);
    wc_metric_t *writes = wc_metrics_series (self, "walcast_writes_total", NULL);
    wc_metric_add (writes, 3);
    wc_metric_add (writes, 4);
    const char *const eperm [] = { "EPERM" };
    const char *const enotprimary [] = { "ENOTPRIMARY" };
    wc_metric_add (wc_metrics_series (self, "walcast_refused_total", enotprimary), 2);
    wc_metric_add (wc_metrics_series (self, "walcast_refused_total", eperm), 1);
    wc_metric_add (wc_metrics_series (self, "walcast_refused_total", enotprimary), 1);
    wc_metric_set (wc_metrics_series (self, "walcast_epoch", NULL), 12345678901.0);
    s_expect (self,
        "# HELP walcast_writes_total Writes committed.\n"
        "# TYPE walcast_writes_total counter\n"
        "walcast_writes_total 7\n"
        "# HELP walcast_refused_total Requests refused, by error code.\n"
        "# TYPE walcast_refused_total counter\n"
        "walcast_refused_total{code=\"ENOTPRIMARY\"} 3\n"
        "walcast_refused_total{code=\"EPERM\"} 1\n"
        "# HELP walcast_epoch The node's epoch.\n"
        "# TYPE walcast_epoch gauge\n"
        "walcast_epoch 12345678901\n");

    //  A family's series can be forgotten (a replica that left)
    wc_metrics_clear (self, "walcast_refused_total");
    wc_metric_set (wc_metrics_series (self, "walcast_epoch", NULL), 0.5);
    s_expect (self,
        "# HELP walcast_writes_total Writes committed.\n"
        "# TYPE walcast_writes_total counter\n"
        "walcast_writes_total 7\n"
        "# HELP walcast_refused_total Requests refused, by error code.\n"
        "# TYPE walcast_refused_total counter\n"
        "# HELP walcast_epoch The node's epoch.\n"
        "# TYPE walcast_epoch gauge\n"
        "walcast_epoch 0.5\n");
    wc_metrics_destroy (&self);
    assert_null (self);
    wc_metrics_destroy (&self);
}

static void
test_histogram (void **state)
{
    (void) state;
    static const double bounds [] = { 0.001, 0.01, 0.1 };
    wc_metrics_t *self = wc_metrics_new ();
    const char *const labels [] = { "replica", NULL };
    assert_int_equal (wc_metrics_family (self, "walcast_fsync_seconds", WC_METRIC_HISTOGRAM,
                                         "fsync latency.", labels, bounds, 3), 0);
    const char *const r1 [] = { "r1" };
    wc_metric_t *h = wc_metrics_series (self, "walcast_fsync_seconds", r1);
    wc_metric_observe (h, 0.0005);
    wc_metric_observe (h, 0.001);       /* le is inclusive */
    wc_metric_observe (h, 0.05);
    wc_metric_observe (h, 2);
    s_expect (self,
        "# HELP walcast_fsync_seconds fsync latency.\n"
        "# TYPE walcast_fsync_seconds histogram\n"
        "walcast_fsync_seconds_bucket{replica=\"r1\",le=\"0.001\"} 2\n"
        "walcast_fsync_seconds_bucket{replica=\"r1\",le=\"0.01\"} 2\n"
        "walcast_fsync_seconds_bucket{replica=\"r1\",le=\"0.1\"} 3\n"
        "walcast_fsync_seconds_bucket{replica=\"r1\",le=\"+Inf\"} 4\n"
        "walcast_fsync_seconds_sum{replica=\"r1\"} 2.0515\n"
        "walcast_fsync_seconds_count{replica=\"r1\"} 4\n");

    //  A tally made elsewhere replaces the counts
    wc_metrics_tally_t tally;
    memset (&tally, 0, sizeof tally);
    wc_metrics_tally_add (&tally, bounds, 3, 0.02);
    wc_metric_set_tally (h, &tally);
    s_expect (self,
        "# HELP walcast_fsync_seconds fsync latency.\n"
        "# TYPE walcast_fsync_seconds histogram\n"
        "walcast_fsync_seconds_bucket{replica=\"r1\",le=\"0.001\"} 0\n"
        "walcast_fsync_seconds_bucket{replica=\"r1\",le=\"0.01\"} 0\n"
        "walcast_fsync_seconds_bucket{replica=\"r1\",le=\"0.1\"} 1\n"
        "walcast_fsync_seconds_bucket{replica=\"r1\",le=\"+Inf\"} 1\n"
        "walcast_fsync_seconds_sum{replica=\"r1\"} 0.02\n"
        "walcast_fsync_seconds_count{replica=\"r1\"} 1\n");
    wc_metrics_destroy (&self);
}

//  Label values are data from outside (a replica's id): escaped; help
//  text escapes backslash and newline.
static void
test_escaping (void **state)
{
    (void) state;
    wc_metrics_t *self = wc_metrics_new ();
    const char *const labels [] = { "replica", "region", NULL };
    assert_int_equal (wc_metrics_family (self, "walcast_lag_entries", WC_METRIC_GAUGE,
                                         "a \\ and a\nnewline", labels, NULL, 0), 0);
    const char *const odd [] = { "a\"b\\c\nd", "eu" };
    wc_metric_set (wc_metrics_series (self, "walcast_lag_entries", odd), 5);
    s_expect (self,
        "# HELP walcast_lag_entries a \\\\ and a\\nnewline\n"
        "# TYPE walcast_lag_entries gauge\n"
        "walcast_lag_entries{replica=\"a\\\"b\\\\c\\nd\",region=\"eu\"} 5\n");
    wc_metrics_destroy (&self);
}

//  Declarations the registry refuses, and series of unknown families.
static void
test_refusals (void **state)
{
    (void) state;
    wc_metrics_t *self = wc_metrics_new ();
    assert_int_equal (wc_metrics_family (self, "x_total", WC_METRIC_COUNTER, "x",
                                         NULL, NULL, 0), 0);
    assert_int_equal (wc_metrics_family (self, "x_total", WC_METRIC_COUNTER, "x",
                                         NULL, NULL, 0), WALCAST_EINVAL);
    assert_int_equal (wc_metrics_family (self, "9x", WC_METRIC_GAUGE, "x",
                                         NULL, NULL, 0), WALCAST_EINVAL);
    assert_int_equal (wc_metrics_family (self, "a-b", WC_METRIC_GAUGE, "x",
                                         NULL, NULL, 0), WALCAST_EINVAL);
    const char *const bad [] = { "le-x", NULL };
    assert_int_equal (wc_metrics_family (self, "y", WC_METRIC_GAUGE, "x",
                                         bad, NULL, 0), WALCAST_EINVAL);
    const char *const many [] = { "a", "b", "c", "d", "e", NULL };
    assert_int_equal (wc_metrics_family (self, "z", WC_METRIC_GAUGE, "x",
                                         many, NULL, 0), WALCAST_EINVAL);
    assert_null (wc_metrics_series (self, "nope", NULL));
    wc_metric_add (NULL, 1);            /* a NULL series is a no-op */
    wc_metrics_destroy (&self);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_counter_and_gauge),
        cmocka_unit_test (test_histogram),
        cmocka_unit_test (test_escaping),
        cmocka_unit_test (test_refusals),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
