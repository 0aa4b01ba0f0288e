/*  store_stall.c - the longest single put while the store grows.

    walcast-store-stall puts N keys (default 10,000,000) into an empty
    wc_store, timing every put on its own, and prints the median put, a few
    percentiles and the worst single put, with the worst reported as a
    ratio of the median of the same run. A store that doubles its table in
    one step stops for the whole copy on the put that crosses the load
    limit: at 10M keys that put costs hundreds of milliseconds, while the
    node's loop (heartbeats, reads, commits) waits. With incremental
    rehashing every put moves a bounded number of entries, so the worst put
    should stay within a small multiple of the median (page faults and the
    allocation of the new table remain).

    The figure to compare between runs is the ratio: absolute times on a
    shared machine are noisy. Latencies are kept in a histogram of 1 ns
    buckets up to 1 ms (one counter each) plus an exact maximum. A busy
    machine also preempts the process now and then, which makes some put
    look slow wherever it falls (on a shared virtual machine, by several
    milliseconds); so besides the worst put overall the bench reports the
    worst of the puts that began a resize (the ones a one-step resize
    makes slow; wc_store_stats says which) and where the five worst puts
    fell: at the doublings, or anywhere.

    Usage: walcast-store-stall [--keys N]; exit 0, 1 on failure, 2 on a
    usage error.
*/
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "walcast.h"
#include "store.h"

#define S_BUCKETS   1000000         /* 1 ns buckets, up to 1 ms */
#define S_TOP       5               /* worst puts listed */

static uint64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

//  The latency at quantile q (0..1) of count samples in the histogram;
//  samples past the last bucket count as the maximum.
static uint64_t
s_quantile (const uint32_t *hist, uint64_t count, uint64_t max, double q)
{
    uint64_t goal = (uint64_t) ((double) count * q);
    uint64_t seen = 0;
    for (uint64_t ns = 0; ns < S_BUCKETS; ns++) {
        seen += hist [ns];
        if (seen > goal)
            return ns;
    }
    return max;
}

//  Keep the S_TOP largest latencies (descending) and where they fell.
static void
s_note_top (uint64_t *top, uint64_t *top_at, uint64_t took, uint64_t n)
{
    if (took <= top [S_TOP - 1])
        return;
    int i = S_TOP - 1;
    while (i > 0 && top [i - 1] < took) {
        top [i] = top [i - 1];
        top_at [i] = top_at [i - 1];
        i--;
    }
    top [i] = took;
    top_at [i] = n;
}

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: walcast-store-stall [--keys N]\n"
                  "  Puts N keys (default 10000000) into an empty store and reports the\n"
                  "  worst single put against the median put of the same run.\n");
}

//  What a run measured.
typedef struct {
    uint32_t *hist;             /* puts per latency in ns, below S_BUCKETS */
    uint64_t total;             /* ns of all puts */
    uint64_t worst, worst_at;   /* the slowest put and its number */
    uint64_t resize_worst;      /* the slowest put that began a resize */
    uint64_t resize_at;
    uint64_t top [S_TOP];       /* the slowest puts, descending */
    uint64_t top_at [S_TOP];
    uint64_t resizes;           /* resizes begun */
} s_run_t;

//  Put keys keys into store, timing each put. Returns 0 or -1 (said).
static int
s_measure (wc_store_t *store, uint64_t keys, s_run_t *run)
{
    wc_store_stats_t stats;
    wc_store_stats (store, &stats);
    run->resizes = stats.resizes;
    for (uint64_t n = 0; n < keys; n++) {
        char key [32], value [32];
        int key_len = snprintf (key, sizeof key, "key:%012" PRIu64, n);
        int value_len = snprintf (value, sizeof value, "v%" PRIu64, n * 7);
        uint64_t t0 = s_now_ns ();
        int rc = wc_store_put (store, key, (size_t) key_len, value, (size_t) value_len);
        uint64_t took = s_now_ns () - t0;
        if (rc != 0) {
            fprintf (stderr, "walcast-store-stall: put %" PRIu64 " failed: %s\n",
                     n, walcast_strerror (rc));
            return -1;
        }
        run->total += took;
        if (took < S_BUCKETS)
            run->hist [took]++;
        if (took > run->worst) {
            run->worst = took;
            run->worst_at = n;
        }
        s_note_top (run->top, run->top_at, took, n);
        wc_store_stats (store, &stats);
        if (stats.resizes != run->resizes && took > run->resize_worst) {
            run->resize_worst = took;
            run->resize_at = n;
        }
        run->resizes = stats.resizes;
    }
    return 0;
}

static void
s_report (const s_run_t *run, uint64_t keys, double wall)
{
    uint64_t median = s_quantile (run->hist, keys, run->worst, 0.5);
    if (median == 0)
        median = 1;
    printf ("store_stall: %" PRIu64 " puts in %.2f s (mean %.0f ns), %" PRIu64 " resizes\n",
            keys, wall, (double) run->total / (double) keys, run->resizes);
    printf ("store_stall: median %" PRIu64 " ns, p99 %" PRIu64 " ns, p99.99 %" PRIu64
            " ns\n", median, s_quantile (run->hist, keys, run->worst, 0.99),
            s_quantile (run->hist, keys, run->worst, 0.9999));
    printf ("store_stall: worst put %" PRIu64 " ns (put %" PRIu64 "), worst/median = %.0f\n",
            run->worst, run->worst_at, (double) run->worst / (double) median);
    printf ("store_stall: worst put that began a resize %" PRIu64 " ns (put %" PRIu64
            "), worst/median = %.0f\n", run->resize_worst, run->resize_at,
            (double) run->resize_worst / (double) median);
    printf ("store_stall: five worst puts:");
    for (int i = 0; i < S_TOP; i++)
        printf (" %" PRIu64 " ns (put %" PRIu64 ")", run->top [i], run->top_at [i]);
    printf ("\n");
}

int
main (int argc, char **argv)
{
    uint64_t keys = 10000000;
    static const struct option options [] = {
        { "keys", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "n:h", options, NULL)) != -1) {
        if (opt == 'h') {
            s_usage (stdout);
            return 0;
        }
        if (opt != 'n') {               //  getopt said what is wrong
            s_usage (stderr);
            return 2;
        }
        char *end;
        if ((keys = strtoull (optarg, &end, 10)) == 0 || *end) {
            fprintf (stderr, "walcast-store-stall: --keys takes a positive number\n");
            s_usage (stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "walcast-store-stall: unexpected argument '%s'\n", argv [optind]);
        s_usage (stderr);
        return 2;
    }
    s_run_t run = { .hist = calloc (S_BUCKETS, sizeof (uint32_t)) };
    wc_store_t *store = wc_store_new ();
    if (!run.hist || !store) {
        fprintf (stderr, "walcast-store-stall: out of memory\n");
        return 1;
    }
    uint64_t started = s_now_ns ();
    int rc = s_measure (store, keys, &run);
    if (rc == 0)
        s_report (&run, keys, (double) (s_now_ns () - started) / 1e9);
    wc_store_destroy (&store);
    free (run.hist);
    return rc == 0 ? 0 : 1;
}
