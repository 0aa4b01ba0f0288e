/*  store_mem.c - what a store of N keys costs in memory, and its speed.

    walcast-store-mem puts N keys (default 1,000,000) of K bytes (default
    12) with values of V bytes (default 100) into an empty wc_store and
    reports the process's resident memory against the raw size of the keys
    and values (N x (K + V)): the growth of VmRSS over the puts, which is
    what the store itself costs, and the whole process's VmRSS. Issue 8
    asks a replica holding 1,000,000 such keys to stay under 1.5x the raw
    size, the whole node process included, so the store alone must stay
    well under that.

    It also times the puts, a get of every key in another order, and an
    overwrite of every key with a value of the same size (mean ns each), so
    a change of layout that saves memory shows what it costs in speed. The
    keys are "k" and a zero-padded number, the values a fixed pattern with
    the number in front, as bench/run.sh loads them.

    Prints a table and lines `RESULT name value unit`. Usage:
    walcast-store-mem [--keys N] [--key-bytes K] [--value-bytes V]; exit 0,
    1 on failure, 2 on a usage error.
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

#define S_MAX_BYTES 4096        /* largest key or value the bench makes */

static uint64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

//  VmRSS of this process in bytes, from /proc/self/status; 0 if unknown.
static uint64_t
s_rss_bytes (void)
{
    FILE *file = fopen ("/proc/self/status", "r");
    if (!file)
        return 0;
    char line [256];
    uint64_t kib = 0;
    while (fgets (line, sizeof line, file))
        if (sscanf (line, "VmRSS: %" SCNu64, &kib) == 1)
            break;
    fclose (file);
    return kib * 1024;
}

//  Key number n, exactly key_bytes long (the number's low digits when it
//  does not fit).
static void
s_make_key (char *key, size_t key_bytes, uint64_t n)
{
    key [0] = 'k';
    for (size_t i = key_bytes - 1; i >= 1; i--) {
        key [i] = (char) ('0' + n % 10);
        n /= 10;
    }
}

//  Value number n: the key number in front of a fixed pattern.
static void
s_make_value (char *value, size_t value_bytes, uint64_t n, char fill)
{
    memset (value, fill, value_bytes);
    char head [24];
    int len = snprintf (head, sizeof head, "v%" PRIu64 "-", n);
    memcpy (value, head, (size_t) len < value_bytes ? (size_t) len : value_bytes);
}

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: walcast-store-mem [--keys N] [--key-bytes K] [--value-bytes V]\n"
                  "  Puts N keys (default 1000000) of K bytes (default 12, 2..%d) with\n"
                  "  values of V bytes (default 100, 0..%d) into an empty store; prints\n"
                  "  resident memory against the raw size, and put/get/overwrite times.\n",
             S_MAX_BYTES, S_MAX_BYTES);
}

//  Parse a number from optarg into *out, within lo..hi. Returns 0 or -1.
static int
s_parse (const char *name, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull (optarg, &end, 10);
    if (*optarg == '\0' || *end || v < lo || v > hi) {
        fprintf (stderr, "walcast-store-mem: %s takes a number from %" PRIu64 " to %" PRIu64
                 "\n", name, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

//  Parse the command line. Returns 0, 1 after --help, or 2.
static int
s_options (int argc, char **argv, uint64_t *keys, uint64_t *key_bytes, uint64_t *value_bytes)
{
    static const struct option options [] = {
        { "keys", required_argument, NULL, 'n' },
        { "key-bytes", required_argument, NULL, 'k' },
        { "value-bytes", required_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt, rc = 0;
    while (rc == 0 && (opt = getopt_long (argc, argv, "n:k:v:h", options, NULL)) != -1) {
        if (opt == 'h') {
            s_usage (stdout);
            return 1;
        }
        if (opt == 'n')
            rc = s_parse ("--keys", 1, UINT32_MAX, keys);
        else
        if (opt == 'k')
            rc = s_parse ("--key-bytes", 2, S_MAX_BYTES, key_bytes);
        else
        if (opt == 'v')
            rc = s_parse ("--value-bytes", 0, S_MAX_BYTES, value_bytes);
        else
            rc = -1;                    //  getopt said what is wrong
    }
    if (rc == 0 && optind < argc) {
        fprintf (stderr, "walcast-store-mem: unexpected argument '%s'\n", argv [optind]);
        rc = -1;
    }
    if (rc != 0) {
        s_usage (stderr);
        return 2;
    }
    return 0;
}

//  Put (fill 'a'), get or overwrite (fill 'b') every key; gets go in a
//  scattered order (a stride prime to the count). Returns the mean ns per
//  operation, or -1 after saying what failed.
static double
s_pass (wc_store_t *store, uint64_t keys, size_t key_bytes, size_t value_bytes, char what)
{
    char key [S_MAX_BYTES], value [S_MAX_BYTES];
    uint64_t stride = keys > 7919 && keys % 7919 ? 7919 : 1;
    uint64_t started = s_now_ns ();
    for (uint64_t i = 0, n = 0; i < keys; i++, n = (n + stride) % keys) {
        uint64_t k = what == 'g' ? n : i;
        s_make_key (key, key_bytes, k);
        int rc;
        if (what == 'g') {
            const void *got;
            size_t got_len;
            rc = wc_store_get (store, key, key_bytes, &got, &got_len);
            if (rc == 0 && got_len != value_bytes)
                rc = WALCAST_EPROTO;
        }
        else {
            s_make_value (value, value_bytes, k, what == 'p' ? 'a' : 'b');
            rc = wc_store_put (store, key, key_bytes, value, value_bytes);
        }
        if (rc != 0) {
            fprintf (stderr, "walcast-store-mem: %c of key %" PRIu64 " failed: %s\n",
                     what, k, walcast_strerror (rc));
            return -1;
        }
    }
    return (double) (s_now_ns () - started) / (double) keys;
}

int
main (int argc, char **argv)
{
    uint64_t keys = 1000000, key_bytes = 12, value_bytes = 100;
    int rc = s_options (argc, argv, &keys, &key_bytes, &value_bytes);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    wc_store_t *store = wc_store_new ();
    if (!store) {
        fprintf (stderr, "walcast-store-mem: out of memory\n");
        return 1;
    }
    uint64_t before = s_rss_bytes ();
    double put_ns = s_pass (store, keys, key_bytes, value_bytes, 'p');
    uint64_t after = s_rss_bytes ();
    double get_ns = put_ns < 0 ? -1 : s_pass (store, keys, key_bytes, value_bytes, 'g');
    double over_ns = get_ns < 0 ? -1 : s_pass (store, keys, key_bytes, value_bytes, 'o');
    uint64_t after_over = s_rss_bytes ();
    if (over_ns >= 0) {
        double raw = (double) keys * (double) (key_bytes + value_bytes);
        wc_store_stats_t stats;
        wc_store_stats (store, &stats);
        printf ("store_mem: %" PRIu64 " keys of %" PRIu64 " + %" PRIu64 " bytes, raw %.1f MB,"
                " table %zu slots\n", keys, key_bytes, value_bytes, raw / 1e6, stats.capacity);
        printf ("store_mem: store %.1f MB (%.1f bytes a key), process RSS %.1f MB,"
                " after overwrites %.1f MB\n", (double) (after - before) / 1e6,
                (double) (after - before) / (double) keys, (double) after / 1e6,
                (double) after_over / 1e6);
        printf ("store_mem: put %.0f ns, get %.0f ns, overwrite %.0f ns (means)\n",
                put_ns, get_ns, over_ns);
        printf ("RESULT store_mem_ratio %.3f x\n", (double) (after - before) / raw);
        printf ("RESULT store_process_ratio %.3f x\n", (double) after / raw);
        printf ("RESULT store_put_ns %.0f ns\n", put_ns);
        printf ("RESULT store_get_ns %.0f ns\n", get_ns);
        printf ("RESULT store_overwrite_ns %.0f ns\n", over_ns);
    }
    wc_store_destroy (&store);
    return over_ns >= 0 ? 0 : 1;
}
