/*  reads.c - walcast-bench-reads: reads per second from replicas with
    session consistency (bench/compare, issue 8).

    T threads, each with its own handle that knows the replicas given
    (walcast_connect, no broker), read preference "replica" and the
    session consistency, read random keys "key:%08d" of 0..N-1 with
    walcast_get_ex for S seconds, one read at a time per thread. Each read
    carries --min-seq as a session token (the LAST_SEQ that `walcast load`
    printed): a replica behind it would wait, so every read is a
    read-your-writes read of the load. Every key must be there with a
    100-byte value; anything else counts as an error.

    Only the public API (include/walcast.h) is used.
*/
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "walcast.h"

#define S_MAX_NODES     8
#define S_MAX_THREADS   16
#define S_VALUE_SIZE    100
#define S_TIMEOUT_MS    5000

static const char *s_usage =
    "usage: walcast-bench-reads --node HOST:PORT [--node HOST:PORT ...] --keys N\n"
    "                           [--seconds S] [--threads T] [--min-seq SEQ]\n"
    "\n"
    "Reads random keys key:%08d (0..N-1, 100-byte values) from the replicas\n"
    "given, read preference replica, consistency session, for S seconds in\n"
    "T threads (one handle and one read in flight each), and prints\n"
    "  reads: R in S s (X/s), T threads, E errors; served: ID=COUNT ...\n"
    "\n"
    "  --node HOST:PORT  a replica (1 to 8 of them)\n"
    "  --keys N          keys loaded, key:00000000 .. key:N-1\n"
    "  --seconds S       how long, default 3\n"
    "  --threads T       readers, default 2 (at most 16)\n"
    "  --min-seq SEQ     session token every read carries, default 0\n"
    "  -h, --help        this help\n"
    "Exit: 0 done, every read found its key; 1 failed; 2 bad usage.\n";

/*  Who served how many reads. */
typedef struct {
    char id [65];
    uint64_t count;
} s_tally_t;

/*  What one reader thread is given and finds. */
typedef struct {
    const char **nodes;
    size_t nnodes;
    uint64_t keys, min_seq;
    int64_t until_us;               /* stop then */
    unsigned seed;
    uint64_t reads, errors;
    int first_err;
    s_tally_t served [S_MAX_NODES + 1];
    pthread_t thread;
    bool started;
} s_reader_t;

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*  Count one read served by id. */
static void
s_tally (s_reader_t *self, const char *id)
{
    size_t k = 0;
    for (; k < S_MAX_NODES && self->served [k].id [0]; k++)
        if (strcmp (self->served [k].id, id) == 0)
            break;
    if (!self->served [k].id [0])
        snprintf (self->served [k].id, sizeof self->served [k].id, "%s", id);
    self->served [k].count++;
}

/*  A handle for the replicas, with the read settings of the run. */
static walcast_t *
s_handle (const s_reader_t *self)
{
    walcast_t *handle = walcast_new ();
    if (!handle)
        return NULL;
    walcast_set_timeout (handle, S_TIMEOUT_MS);
    int rc = walcast_set_read (handle, WALCAST_READ_REPLICA, NULL);
    if (rc == 0)
        rc = walcast_set_consistency (handle, WALCAST_SESSION);
    for (size_t k = 0; k < self->nnodes && rc == 0; k++)
        rc = walcast_connect (handle, self->nodes [k]);
    if (rc) {
        fprintf (stderr, "walcast-bench-reads: %s (%s)\n", walcast_strerror (rc),
                 walcast_last_detail (handle));
        walcast_destroy (&handle);
    }
    return handle;
}

/*  A reader: read random keys until the time is up. */
static void *
s_read_thread (void *arg)
{
    s_reader_t *self = (s_reader_t *) arg;
    walcast_t *handle = s_handle (self);
    if (!handle) {
        self->errors++;
        self->first_err = WALCAST_EUNAVAILABLE;
        return NULL;
    }
    char key [32];
    while (s_now_us () < self->until_us) {
        uint64_t i = (uint64_t) rand_r (&self->seed) % self->keys;
        int len = snprintf (key, sizeof key, "key:%08" PRIu64, i);
        void *value = NULL;
        size_t size = 0;
        walcast_served_t served;
        int rc = walcast_get_ex (handle, key, (size_t) len, self->min_seq, &value, &size,
                                 &served);
        walcast_free (value);
        if (rc == 0 && size != S_VALUE_SIZE)
            rc = WALCAST_EPROTO;
        if (rc) {
            if (self->errors++ == 0)
                self->first_err = rc;
            continue;
        }
        self->reads++;
        s_tally (self, served.id);
    }
    walcast_destroy (&handle);
    return NULL;
}

/*  Parse a positive integer into *out; false when it is not one. */
static bool
s_number (const char *text, uint64_t *out, bool zero_ok)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno || end == text || *end || *text == '-' || (!zero_ok && v == 0))
        return false;
    *out = v;
    return true;
}

/*  What the command line asks for. */
typedef struct {
    const char *nodes [S_MAX_NODES];
    size_t nnodes;
    uint64_t keys, seconds, threads, min_seq;
} s_args_t;

/*  Parse the command line: 0, 1 (help printed), or 2 (usage error). */
static int
s_parse (int argc, char **argv, s_args_t *args)
{
    static const struct option options [] = {
        { "node", required_argument, NULL, 'n' },
        { "keys", required_argument, NULL, 'k' },
        { "seconds", required_argument, NULL, 's' },
        { "threads", required_argument, NULL, 't' },
        { "min-seq", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    memset (args, 0, sizeof *args);
    args->seconds = 3;
    args->threads = 2;
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        bool ok = true;
        if (opt == 'n' && args->nnodes < S_MAX_NODES)
            args->nodes [args->nnodes++] = optarg;
        else if (opt == 'k')
            ok = s_number (optarg, &args->keys, false);
        else if (opt == 's')
            ok = s_number (optarg, &args->seconds, false);
        else if (opt == 't')
            ok = s_number (optarg, &args->threads, false) && args->threads <= S_MAX_THREADS;
        else if (opt == 'm')
            ok = s_number (optarg, &args->min_seq, true);
        else if (opt == 'h') {
            fputs (s_usage, stdout);
            return 1;
        }
        else
            ok = false;
        if (!ok) {
            fprintf (stderr, "walcast-bench-reads: bad option or value%s%s\n%s",
                     optarg ? ": " : "", optarg ? optarg : "", s_usage);
            return 2;
        }
    }
    if (optind < argc || !args->nnodes || !args->keys) {
        fprintf (stderr, "walcast-bench-reads: --node and --keys are needed\n%s", s_usage);
        return 2;
    }
    return 0;
}

/*  Sum up the readers and print the line: 0, or 1 when any read failed. */
static int
s_report (const s_reader_t *readers, size_t n, double secs)
{
    uint64_t reads = 0, errors = 0;
    int first_err = 0;
    s_tally_t total [S_MAX_NODES + 1];
    memset (total, 0, sizeof total);
    for (size_t t = 0; t < n; t++) {
        reads += readers [t].reads;
        if (readers [t].errors && !errors)
            first_err = readers [t].first_err;
        errors += readers [t].errors;
        for (size_t k = 0; k < S_MAX_NODES && readers [t].served [k].id [0]; k++)
            for (size_t j = 0; j < S_MAX_NODES; j++)
                if (!total [j].id [0] || !strcmp (total [j].id, readers [t].served [k].id)) {
                    memcpy (total [j].id, readers [t].served [k].id, sizeof total [j].id);
                    total [j].count += readers [t].served [k].count;
                    break;
                }
    }
    printf ("reads: %" PRIu64 " in %.3f s (%.0f/s), %zu threads, %" PRIu64 " errors; "
            "served:", reads, secs, (double) reads / secs, n, errors);
    for (size_t j = 0; j < S_MAX_NODES && total [j].id [0]; j++)
        printf (" %s=%" PRIu64, total [j].id, total [j].count);
    printf ("\n");
    if (errors)
        fprintf (stderr, "walcast-bench-reads: %" PRIu64 " reads failed, the first with "
                 "%s\n", errors, walcast_strerror (first_err));
    return errors || !reads ? 1 : 0;
}

int
main (int argc, char **argv)
{
    s_args_t args;
    int rc = s_parse (argc, argv, &args);
    if (rc)
        return rc == 1 ? 0 : 2;
    s_reader_t readers [S_MAX_THREADS];
    memset (readers, 0, sizeof readers);
    int64_t start = s_now_us ();
    size_t n = (size_t) args.threads;
    for (size_t t = 0; t < n; t++) {
        s_reader_t *r = &readers [t];
        r->nodes = args.nodes;
        r->nnodes = args.nnodes;
        r->keys = args.keys;
        r->min_seq = args.min_seq;
        r->until_us = start + (int64_t) args.seconds * 1000000;
        r->seed = (unsigned) (t * 7919 + 1);
        r->started = pthread_create (&r->thread, NULL, s_read_thread, r) == 0;
        if (!r->started) {
            fprintf (stderr, "walcast-bench-reads: cannot start a thread\n");
            r->errors++;
        }
    }
    for (size_t t = 0; t < n; t++)
        if (readers [t].started)
            pthread_join (readers [t].thread, NULL);
    double secs = (double) (s_now_us () - start) / 1e6;
    return s_report (readers, n, secs);
}
