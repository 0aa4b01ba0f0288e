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
    buckets up to 1 ms (one counter each) plus an exact maximum.

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

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: walcast-store-stall [--keys N]\n"
                  "  Puts N keys (default 10000000) into an empty store and reports the\n"
                  "  worst single put against the median put of the same run.\n");
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
        char *end;
        if (opt != 'n' || (keys = strtoull (optarg, &end, 10)) == 0 || *end) {
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
    uint32_t *hist = calloc (S_BUCKETS, sizeof *hist);
    wc_store_t *store = wc_store_new ();
    if (!hist || !store) {
        fprintf (stderr, "walcast-store-stall: out of memory\n");
        return 1;
    }
    uint64_t worst = 0, worst_at = 0, total = 0;
    uint64_t started = s_now_ns ();
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
            return 1;
        }
        total += took;
        if (took < S_BUCKETS)
            hist [took]++;
        if (took > worst) {
            worst = took;
            worst_at = n;
        }
    }
    double wall = (double) (s_now_ns () - started) / 1e9;
    uint64_t median = s_quantile (hist, keys, worst, 0.5);
    printf ("store_stall: %" PRIu64 " puts in %.2f s (mean %.0f ns)\n",
            keys, wall, (double) total / (double) keys);
    printf ("store_stall: median %" PRIu64 " ns, p99 %" PRIu64 " ns, p99.99 %" PRIu64
            " ns, worst %" PRIu64 " ns (put %" PRIu64 ")\n", median,
            s_quantile (hist, keys, worst, 0.99), s_quantile (hist, keys, worst, 0.9999),
            worst, worst_at);
    printf ("store_stall: worst/median = %.0f\n",
            (double) worst / (double) (median ? median : 1));
    wc_store_destroy (&store);
    free (hist);
    return 0;
}
