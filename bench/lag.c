/*  lag.c - walcast-bench-lag: replication lag from the primary's append to
    each replica's apply, in percentiles (bench/compare, issue 8).

    A node publishes an entry on its stream when its storage engine has
    applied it (node/node.c, s_on_apply: on the primary right after the
    commit wrote it, on a replica after it wrote and applied what it
    received). So a walcast_watch on the primary sees each seq when the
    primary appended it, and a watch on a replica sees it when that replica
    applied it. One thread per node runs such a watch, on a handle that
    knows that node alone, and stamps every seq it is handed with
    CLOCK_MONOTONIC in microseconds: one machine, one clock. The lag of a
    replica for seq s is stamp_replica(s) - stamp_primary(s); both include
    one stream hop to this process, so that hop mostly cancels out.

    Meanwhile the main thread writes at a paced rate with
    walcast_put_async (12-byte keys "lag:%08d", 100-byte values): it
    sleeps until the next write is due and sends every write due by then,
    so at 100k writes/s and more it wakes about every 100 us (the kernel's
    timer slack rounds the short sleeps up) and sends a few dozen. The first
    --warmup seconds are not counted (the watches subscribe meanwhile, and
    what they missed before is fetched, which would look like lag). Every
    seq of the measured part must reach every watch: the watch loses
    nothing, and a seq that never came is an error.

    With --replica-metrics PORT (one per --replica, in their order) no
    watch runs: each replica measures its own lag, entry by entry, from
    the stamp its upstream puts on each stream message (the primary's
    wall clock, in microseconds, once it applied the message's entries,
    as it publishes it) to its own apply of them, into the histogram
    walcast_replication_apply_lag_seconds of its /metrics. The bench
    reads that histogram when the warm-up ends and again once the replica
    applied the last write, and gives the percentiles of the difference,
    interpolated inside its buckets as Prometheus does (exact at the
    bounds: 1 ms is one), plus the share of entries at or under 1 ms.
    This measures what the watches cannot: the lag without three more
    subscribers and their threads on the same cores. In this mode the
    process runs SCHED_BATCH (--writer-sched): see s_writer_sched.

    Only the public surfaces are used: include/walcast.h, and /metrics.
*/
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "walcast.h"
#include "http_get.h"

#define S_MAX_REPLICAS   8
#define S_KEY_SIZE       12          /* "lag:%08d" */
#define S_VALUE_SIZE     100
#define S_SLICE_MS       200         /* a watch call returns this often when idle */
#define S_FINISH_US      30000000    /* the last seq must reach every watch by then */
#define S_TIMEOUT_MS     5000        /* each library call */
#define S_LAG_FAMILY     "walcast_replication_apply_lag_seconds"
#define S_MAX_BUCKETS    32          /* of the histogram, +Inf included */

static const char *s_usage =
    "usage: walcast-bench-lag --primary HOST:PORT --replica HOST:PORT\n"
    "                         [--replica HOST:PORT ...] --rate N\n"
    "                         [--seconds S] [--warmup S] [--timeline FILE]\n"
    "                         [--replica-metrics PORT ...] [--keys K]\n"
    "                         [--writer-sched batch|normal]\n"
    "\n"
    "Writes N writes/s (12-byte keys lag:%08d, 100-byte values) into the\n"
    "primary for WARMUP + S seconds while one thread per node watches that\n"
    "node's stream, and prints, per replica, the lag from the primary's\n"
    "append to the replica's apply of the writes after the warm-up:\n"
    "  lag HOST:PORT samples=N p50_ms=X p99_ms=X p999_ms=X max_ms=X min_ms=X repairs=N\n"
    "after a line about the writes:\n"
    "  lag-writes: W writes in T s (R/s, asked N/s); measured seqs A..B\n"
    "\n"
    "  --primary HOST:PORT  the primary (base port)\n"
    "  --replica HOST:PORT  a replica of it (1 to 8 of them)\n"
    "  --rate N             writes per second\n"
    "  --seconds S          measured time, default 3\n"
    "  --warmup S           time before it, not counted, default 1\n"
    "  --replica-metrics PORT  the /metrics port of a replica (127.0.0.1), one\n"
    "                       per --replica in the same order: no watches; the\n"
    "                       replicas' own apply-lag histograms, read at the end\n"
    "                       of the warm-up and at the end, give the lines\n"
    "                       (\"from=metrics\", and under_1ms=FRACTION)\n"
    "  --keys K             write K keys over and over (lag:0..K-1), as a\n"
    "                       store in steady state; default: every write a new\n"
    "                       key, so the nodes' tables grow all the run\n"
    "  --writer-sched batch|normal  with --replica-metrics, the scheduling\n"
    "                       class of this process (the writer): batch, the\n"
    "                       default, so that its wake-ups do not preempt the\n"
    "                       nodes it measures on the same cores (clients would\n"
    "                       run elsewhere); normal, as any process\n"
    "  --timeline FILE      write, per millisecond of the primary's appends,\n"
    "                       \"T_MS APPENDS LATE_MS MAXLAG_MS...\": LATE_MS the\n"
    "                       most an append came after its write was due, then\n"
    "                       one column per replica: when the lag grows, where\n"
    "  -h, --help           this help\n"
    "Exit: 0 done, 1 failed (a write refused, a seq missing), 2 bad usage.\n";

/*  One node's watch, run by its own thread. */
typedef struct {
    const char *addr;               /* HOST:PORT of the node */
    walcast_t *handle;              /* knows this node only */
    uint64_t first_seq;             /* stamp [0] is this seq */
    size_t cap;                     /* slots in stamp */
    int64_t *stamp;                 /* µs when each seq came; 0: not yet */
    uint64_t highest;               /* highest seq handed over */
    uint64_t outside;               /* seqs past cap (should be none) */
    atomic_uint_fast64_t target;    /* stop once this seq came (0: not known) */
    atomic_int_fast64_t target_us;  /* when target was set */
    atomic_int_fast64_t measure_us; /* repairs after this count */
    atomic_bool quit;               /* the run failed: stop now */
    unsigned repairs;               /* gaps the watch fetched, after measure_us */
    int rc;                         /* 0, or why the watch failed */
    char why [300];                 /* its detail */
    bool started;                   /* thread is to be joined */
    pthread_t thread;
} s_watcher_t;

/*  The writer's view of its outcomes. */
typedef struct {
    uint64_t warm;                  /* tag of the first measured write */
    uint64_t first_seq;             /* its seq */
    uint64_t failed;                /* writes not OK */
    int first_err;                  /* the first failure's code */
} s_writer_t;

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*  The watch hands over one change: stamp it. Stops the watch once the
    last seq written has come. */
static int
s_on_change (void *arg, uint64_t seq, int op, const void *key, size_t key_len,
             const void *value, size_t value_len)
{
    (void) op; (void) key; (void) key_len; (void) value; (void) value_len;
    s_watcher_t *self = (s_watcher_t *) arg;
    int64_t now = s_now_us ();
    if (seq >= self->first_seq && seq - self->first_seq < self->cap)
        self->stamp [seq - self->first_seq] = now;
    else
        self->outside++;
    if (seq > self->highest)
        self->highest = seq;
    uint64_t target = atomic_load (&self->target);
    return (target && seq >= target) || atomic_load (&self->quit) ? 1 : 0;
}

/*  The library's debugging lines: count the gaps a watch repaired after
    the warm-up (entries fetched rather than streamed arrive late). */
static void
s_on_log (void *arg, const char *line)
{
    s_watcher_t *self = (s_watcher_t *) arg;
    int64_t measure = atomic_load (&self->measure_us);
    if (strstr (line, "gap") && measure && s_now_us () >= measure)
        self->repairs++;
}

/*  A watcher thread: watch the node from first_seq until the target seq
    has come, or S_FINISH_US after it was set. */
static void *
s_watch_thread (void *arg)
{
    s_watcher_t *self = (s_watcher_t *) arg;
    uint64_t position = self->first_seq;
    while (true) {
        int rc = walcast_watch (self->handle, NULL, 0, &position, s_on_change, self,
                                S_SLICE_MS);
        if (rc < 0) {
            self->rc = rc;
            snprintf (self->why, sizeof self->why, "%s (%s)", walcast_strerror (rc),
                      walcast_last_detail (self->handle));
            break;
        }
        uint64_t target = atomic_load (&self->target);
        if ((target && self->highest >= target) || atomic_load (&self->quit))
            break;
        int64_t set_at = atomic_load (&self->target_us);
        if (set_at && s_now_us () - set_at > S_FINISH_US) {
            self->rc = WALCAST_ETIMEOUT;
            snprintf (self->why, sizeof self->why, "seq %" PRIu64 " did not come "
                      "within %d s (highest %" PRIu64 ")", target,
                      S_FINISH_US / 1000000, self->highest);
            break;
        }
    }
    return NULL;
}

/*  Set up a watcher of addr from first_seq with room for cap seqs, and
    start its thread. 0, or -1 (said why). */
static int
s_watcher_start (s_watcher_t *self, const char *addr, uint64_t first_seq, size_t cap)
{
    memset (self, 0, sizeof *self);
    self->addr = addr;
    self->first_seq = first_seq;
    self->cap = cap;
    self->stamp = calloc (cap, sizeof *self->stamp);
    self->handle = walcast_new ();
    if (!self->stamp || !self->handle) {
        fprintf (stderr, "walcast-bench-lag: out of memory\n");
        return -1;
    }
    walcast_set_timeout (self->handle, S_TIMEOUT_MS);
    walcast_set_log (self->handle, s_on_log, self);
    int rc = walcast_connect (self->handle, addr);
    if (rc == 0)
        rc = walcast_set_consistency (self->handle, WALCAST_EVENTUAL);
    if (rc) {
        fprintf (stderr, "walcast-bench-lag: %s: %s (%s)\n", addr, walcast_strerror (rc),
                 walcast_last_detail (self->handle));
        return -1;
    }
    if (pthread_create (&self->thread, NULL, s_watch_thread, self)) {
        fprintf (stderr, "walcast-bench-lag: cannot start a thread\n");
        return -1;
    }
    self->started = true;
    return 0;
}

/*  Join the watcher's thread (if any) and close its handle; its stamps
    stay for the report. */
static void
s_watcher_finish (s_watcher_t *self)
{
    if (self->started)
        pthread_join (self->thread, NULL);
    self->started = false;
    walcast_destroy (&self->handle);
}

/*  Outcome of an async write: note the seq of the first measured one,
    and count failures. */
static void
s_on_outcome (void *arg, const walcast_outcome_t *outcome)
{
    s_writer_t *self = (s_writer_t *) arg;
    if (outcome->state != WALCAST_WRITE_OK) {
        if (self->failed++ == 0)
            self->first_err = outcome->err;
        return;
    }
    if (outcome->tag == self->warm)
        self->first_seq = outcome->pos.seq;
}

/*  Sleep until the monotonic clock reads at_us. */
static void
s_sleep_until (int64_t at_us)
{
    int64_t wait = at_us - s_now_us ();
    if (wait <= 0)
        return;
    struct timespec ts = { (time_t) (wait / 1000000), (long) (wait % 1000000) * 1000 };
    while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
        ;
}

/*  Called once, when the measured part starts (the warm-up's end). */
typedef void (s_at_warm_fn) (void *arg);

/*  The watches, told when the measured part starts (gaps they repair
    from then on are counted). */
typedef struct {
    s_watcher_t *watchers;
    size_t n;
} s_watch_set_t;

static void
s_watches_warm (void *arg)
{
    s_watch_set_t *set = (s_watch_set_t *) arg;
    for (size_t k = 0; k < set->n; k++)
        atomic_store (&set->watchers [k].measure_us, s_now_us ());
}

/*  Key i, "lag:%08d" of i mod 10^8, without snprintf: the writer shares
    the 2 cores with the nodes it measures, and formatting was a fifth of
    its CPU. */
static void
s_key (char key [S_KEY_SIZE + 1], uint64_t i)
{
    memcpy (key, "lag:", 4);
    for (int d = S_KEY_SIZE - 1; d >= 4; d--, i /= 10)
        key [d] = (char) ('0' + i % 10);
    key [S_KEY_SIZE] = '\0';
}

/*  Write total writes at rate per second, from now, write i to key i (or
    i mod keys, when keys is not 0); call at_warm (arg) when the measured
    part starts. 0 with *last the last seq and *secs the time it took, or
    -1. */
static int
s_write_paced (walcast_t *handle, double rate, uint64_t total, uint64_t keys,
               uint64_t warm, s_at_warm_fn *at_warm, void *arg, uint64_t *last,
               double *secs, int64_t *t0_us)
{
    char key [S_KEY_SIZE + 1], value [S_VALUE_SIZE];
    memset (value, 'v', sizeof value);
    int64_t t0 = s_now_us ();
    *t0_us = t0;
    uint64_t i = 0;
    while (i < total) {
        uint64_t due = (uint64_t) ((double) (s_now_us () - t0) * rate / 1e6) + 1;
        if (due > total)
            due = total;
        if (i >= due) {
            s_sleep_until (t0 + (int64_t) ((double) i * 1e6 / rate));
            continue;
        }
        for (; i < due; i++) {
            if (i == warm)
                at_warm (arg);
            s_key (key, keys ? i % keys : i);
            memcpy (value, key, S_KEY_SIZE);
            int rc = walcast_put_async (handle, key, S_KEY_SIZE, value, sizeof value, i);
            if (rc) {
                fprintf (stderr, "walcast-bench-lag: write %" PRIu64 ": %s (%s)\n", i,
                         walcast_strerror (rc), walcast_last_detail (handle));
                return -1;
            }
        }
    }
    walcast_pos_t pos = { 0, 0 };
    uint64_t acked = 0;
    int rc = walcast_flush (handle, &pos, &acked);
    *secs = (double) (s_now_us () - t0) / 1e6;
    *last = pos.seq;
    if (rc || acked != total) {
        fprintf (stderr, "walcast-bench-lag: %" PRIu64 " of %" PRIu64 " writes "
                 "acknowledged: %s (%s)\n", acked, total, walcast_strerror (rc),
                 walcast_last_detail (handle));
        return -1;
    }
    return 0;
}

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

/*  The value at fraction q of the sorted v (nearest rank), in ms. */
static double
s_pct (const int64_t *v, size_t n, double q)
{
    size_t k = (size_t) (q * (double) n);
    if (k >= n)
        k = n - 1;
    return (double) v [k] / 1000.0;
}

/*  Print the lag of replica r against primary p over seqs from..to.
    0, or -1 when a seq is missing on either side. */
static int
s_report (const s_watcher_t *p, const s_watcher_t *r, uint64_t from, uint64_t to)
{
    size_t n = (size_t) (to - from + 1);
    int64_t *lag = malloc (n * sizeof *lag);
    if (!lag) {
        fprintf (stderr, "walcast-bench-lag: out of memory\n");
        return -1;
    }
    size_t got = 0, missing = 0;
    for (uint64_t s = from; s <= to; s++) {
        int64_t tp = p->stamp [s - p->first_seq], tr = r->stamp [s - r->first_seq];
        if (tp == 0 || tr == 0)
            missing++;
        else
            lag [got++] = tr - tp;
    }
    int rc = 0;
    if (missing || got == 0) {
        fprintf (stderr, "walcast-bench-lag: %zu of %zu seqs missing on %s or %s\n",
                 missing, n, p->addr, r->addr);
        rc = -1;
    }
    else {
        qsort (lag, got, sizeof *lag, s_cmp_i64);
        printf ("lag %s samples=%zu p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
                "min_ms=%.3f repairs=%u\n", r->addr, got, s_pct (lag, got, 0.50),
                s_pct (lag, got, 0.99), s_pct (lag, got, 0.999),
                (double) lag [got - 1] / 1000.0, (double) lag [0] / 1000.0, r->repairs);
    }
    free (lag);
    return rc;
}

/*  Write the timeline of seqs from..to to path: one line per millisecond
    of the primary's stamps (from the first), with the appends in it, the
    most one came after its write was due (seq from was due at due0_us,
    the next ones every 1/rate s), and the largest lag of each replica
    among them. 0, or -1 (said why). */
static int
s_timeline (const char *path, const s_watcher_t *w, size_t n, uint64_t from,
            uint64_t to, double due0_us, double rate)
{
    FILE *file = fopen (path, "w");
    if (!file) {
        fprintf (stderr, "walcast-bench-lag: %s: %s\n", path, strerror (errno));
        return -1;
    }
    int64_t t0 = w [0].stamp [from - w [0].first_seq];
    int64_t bucket = -1, max [S_MAX_REPLICAS], late = 0;
    size_t count = 0;
    for (uint64_t s = from; s <= to + 1; s++) {
        int64_t tp = s <= to ? w [0].stamp [s - w [0].first_seq] : INT64_MAX;
        int64_t ms = s <= to ? (tp - t0) / 1000 : -2;
        if (ms != bucket && count > 0) {
            fprintf (file, "%" PRId64 " %zu %.3f", bucket, count, (double) late / 1000.0);
            for (size_t k = 1; k < n; k++)
                fprintf (file, " %.3f", (double) max [k - 1] / 1000.0);
            fputc ('\n', file);
            count = 0;
        }
        if (s > to)
            break;
        if (count == 0) {
            late = INT64_MIN;
            for (size_t k = 1; k < n; k++)
                max [k - 1] = INT64_MIN;
        }
        bucket = ms;
        count++;
        int64_t due = (int64_t) (due0_us + (double) (s - from) * 1e6 / rate);
        if (tp - due > late)
            late = tp - due;
        for (size_t k = 1; k < n; k++) {
            int64_t lag = w [k].stamp [s - w [k].first_seq] - tp;
            if (lag > max [k - 1])
                max [k - 1] = lag;
        }
    }
    if (fclose (file)) {
        fprintf (stderr, "walcast-bench-lag: %s: %s\n", path, strerror (errno));
        return -1;
    }
    return 0;
}

/*  A replica's apply-lag histogram as /metrics shows it: cumulative
    counts per upper bound (seconds; the last +Inf), and its applied seq
    at the same render. */
typedef struct {
    double   bound [S_MAX_BUCKETS];
    double   cum [S_MAX_BUCKETS];
    size_t   n;
    uint64_t applied;
} s_hist_t;

/*  Read the histogram of the text at one line: false when it is not one
    of its bucket lines (or there is no room). */
static bool
s_hist_line (s_hist_t *h, const char *line)
{
    static const char prefix [] = S_LAG_FAMILY "_bucket{le=\"";
    if (strncmp (line, prefix, sizeof prefix - 1) != 0 || h->n == S_MAX_BUCKETS)
        return false;
    const char *le = line + sizeof prefix - 1;
    const char *value = strstr (le, "} ");
    if (!value)
        return false;
    h->bound [h->n] = strncmp (le, "+Inf", 4) == 0 ? INFINITY : strtod (le, NULL);
    h->cum [h->n] = strtod (value + 2, NULL);
    h->n++;
    return true;
}

/*  GET /metrics from 127.0.0.1:port into h. 0, or -1 (said why). */
static int
s_scrape (int port, s_hist_t *h)
{
    memset (h, 0, sizeof *h);
    http_reply_t reply;
    if (http_request (port, "GET", "/metrics", S_TIMEOUT_MS, &reply, 1) != 0
    ||  reply.status != 200) {
        if (reply.status)
            http_reply_free (&reply);
        fprintf (stderr, "walcast-bench-lag: no /metrics on 127.0.0.1:%d "
                 "(start the replica with --metrics-port %d)\n", port, port);
        return -1;
    }
    bool applied = false;
    for (char *line = strtok (reply.body, "\n"); line; line = strtok (NULL, "\n")) {
        if (s_hist_line (h, line))
            continue;
        if (strncmp (line, "walcast_applied_seq ", 20) == 0) {
            h->applied = (uint64_t) strtod (line + 20, NULL);
            applied = true;
        }
    }
    http_reply_free (&reply);
    if (h->n == 0 || !isinf (h->bound [h->n - 1]) || !applied) {
        fprintf (stderr, "walcast-bench-lag: 127.0.0.1:%d: no %s histogram (a node "
                 "before walcast 0.6?)\n", port, S_LAG_FAMILY);
        return -1;
    }
    return 0;
}

/*  The value under which fraction q of the entries of the difference
    d (non-cumulative per bucket, total n) lie, in ms: linear inside its
    bucket, as Prometheus's histogram_quantile; a quantile in the +Inf
    bucket is the last finite bound. */
static double
s_quantile (const s_hist_t *h, const double *d, double n, double q)
{
    double rank = q * n, below = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (below + d [i] >= rank && d [i] > 0) {
            double lo = i ? h->bound [i - 1] : 0;
            if (isinf (h->bound [i]))
                return lo * 1000;
            return (lo + (h->bound [i] - lo) * (rank - below) / d [i]) * 1000;
        }
        below += d [i];
    }
    return h->n > 1 ? h->bound [h->n - 2] * 1000 : 0;
}

/*  Print the lag line of replica addr from the histograms at the start
    (a) and the end (b) of the measured part. 0, or -1 (nothing measured). */
static int
s_hist_report (const char *addr, const s_hist_t *a, const s_hist_t *b)
{
    if (a->n != b->n) {
        fprintf (stderr, "walcast-bench-lag: %s: the histogram changed shape\n", addr);
        return -1;
    }
    double d [S_MAX_BUCKETS], n = 0, under_1ms = 0;
    size_t lowest = b->n, highest = 0;
    for (size_t i = 0; i < b->n; i++) {
        d [i] = (b->cum [i] - (i ? b->cum [i - 1] : 0)) - (a->cum [i] - (i ? a->cum [i - 1] : 0));
        n += d [i];
        if (b->bound [i] <= 0.001)
            under_1ms += d [i];
        if (d [i] > 0) {
            lowest = lowest < i ? lowest : i;
            highest = i;
        }
    }
    if (n <= 0) {
        fprintf (stderr, "walcast-bench-lag: %s counted no entry: is it a replica of the "
                 "primary?\n", addr);
        return -1;
    }
    double max = isinf (b->bound [highest]) ? b->bound [highest - 1] : b->bound [highest];
    printf ("lag %s samples=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
            "min_ms=%.3f repairs=0 under_1ms=%.4f from=metrics\n", addr, n,
            s_quantile (b, d, n, 0.50), s_quantile (b, d, n, 0.99),
            s_quantile (b, d, n, 0.999), max * 1000,
            lowest ? b->bound [lowest - 1] * 1000 : 0, under_1ms / n);
    return 0;
}

/*  The replicas' /metrics, read when the measured part starts. */
typedef struct {
    const int *ports;
    size_t n;
    s_hist_t start [S_MAX_REPLICAS];
    int rc;
} s_scrapes_t;

static void
s_scrapes_warm (void *arg)
{
    s_scrapes_t *self = (s_scrapes_t *) arg;
    for (size_t k = 0; k < self->n && self->rc == 0; k++)
        self->rc = s_scrape (self->ports [k], &self->start [k]);
}

/*  What the command line asks for. */
typedef struct {
    const char *primary;
    const char *replicas [S_MAX_REPLICAS];
    size_t nreplicas;
    double rate, seconds, warmup;
    const char *timeline;           /* file for the lag per ms, or NULL */
    uint64_t keys;                  /* writes cycle over this many keys; 0: all new */
    int metrics [S_MAX_REPLICAS];   /* each replica's /metrics port */
    size_t nmetrics;
    bool normal_sched;              /* --writer-sched normal */
} s_args_t;

/*  Parse a positive number into *out; false when it is not one. */
static bool
s_positive (const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod (text, &end);
    if (errno || end == text || *end || !(v > 0) || v > 1e9)
        return false;
    *out = v;
    return true;
}

/*  Parse the command line: 0, 1 (help printed), or 2 (usage error). */
static int
s_parse (int argc, char **argv, s_args_t *args)
{
    static const struct option options [] = {
        { "primary", required_argument, NULL, 'P' },
        { "replica", required_argument, NULL, 'R' },
        { "rate", required_argument, NULL, 'r' },
        { "seconds", required_argument, NULL, 's' },
        { "warmup", required_argument, NULL, 'w' },
        { "timeline", required_argument, NULL, 't' },
        { "keys", required_argument, NULL, 'k' },
        { "replica-metrics", required_argument, NULL, 'm' },
        { "writer-sched", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    memset (args, 0, sizeof *args);
    args->seconds = 3;
    args->warmup = 1;
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        bool ok = true;
        if (opt == 'P')
            args->primary = optarg;
        else if (opt == 'R' && args->nreplicas < S_MAX_REPLICAS)
            args->replicas [args->nreplicas++] = optarg;
        else if (opt == 'r')
            ok = s_positive (optarg, &args->rate);
        else if (opt == 's')
            ok = s_positive (optarg, &args->seconds);
        else if (opt == 'w')
            ok = s_positive (optarg, &args->warmup);
        else if (opt == 't')
            args->timeline = optarg;
        else if (opt == 'k') {
            double keys;
            ok = s_positive (optarg, &keys) && keys == (uint64_t) keys;
            args->keys = ok ? (uint64_t) keys : 0;
        }
        else if (opt == 'm' && args->nmetrics < S_MAX_REPLICAS) {
            double port;
            ok = s_positive (optarg, &port) && port <= 65535 && port == (int) port;
            args->metrics [args->nmetrics++] = ok ? (int) port : 0;
        }
        else if (opt == 'S') {
            ok = strcmp (optarg, "batch") == 0 || strcmp (optarg, "normal") == 0;
            args->normal_sched = strcmp (optarg, "normal") == 0;
        }
        else if (opt == 'h') {
            fputs (s_usage, stdout);
            return 1;
        }
        else
            ok = false;
        if (!ok) {
            fprintf (stderr, "walcast-bench-lag: bad option or value%s%s\n%s",
                     optarg ? ": " : "", optarg ? optarg : "", s_usage);
            return 2;
        }
    }
    if (optind < argc || !args->primary || !args->nreplicas || !args->rate) {
        fprintf (stderr, "walcast-bench-lag: --primary, --replica and --rate are "
                 "needed\n%s", s_usage);
        return 2;
    }
    if (args->nmetrics && (args->nmetrics != args->nreplicas || args->timeline)) {
        fprintf (stderr, "walcast-bench-lag: give one --replica-metrics per --replica, "
                 "and no --timeline with them (it needs the watches)\n%s", s_usage);
        return 2;
    }
    return 0;
}

/*  Wait for the render of replica k's /metrics that shows seq last
    applied, then print its line. 0, or -1 (said why). */
static int
s_metrics_report (const s_args_t *args, const s_scrapes_t *scrapes, size_t k,
                  uint64_t last)
{
    int64_t deadline = s_now_us () + S_FINISH_US;
    s_hist_t end;
    while (true) {
        if (s_scrape (args->metrics [k], &end) != 0)
            return -1;
        if (end.applied >= last)
            return s_hist_report (args->replicas [k], &scrapes->start [k], &end);
        if (s_now_us () > deadline) {
            fprintf (stderr, "walcast-bench-lag: %s: applied %" PRIu64 ", not %" PRIu64
                     ", after %d s\n", args->replicas [k], end.applied, last,
                     S_FINISH_US / 1000000);
            return -1;
        }
        s_sleep_until (s_now_us () + 100000);
    }
}

/*  The writes, with the replicas' own histograms in place of watches:
    0 or 1. */
static int
s_run_metrics (const s_args_t *args, walcast_t *writer)
{
    uint64_t warm = (uint64_t) (args->rate * args->warmup);
    uint64_t total = warm + (uint64_t) (args->rate * args->seconds);
    s_scrapes_t scrapes = { .ports = args->metrics, .n = args->nmetrics };
    s_writer_t outcomes = { warm, 0, 0, 0 };
    walcast_set_outcome_fn (writer, s_on_outcome, &outcomes);
    uint64_t last = 0;
    double secs = 0;
    int64_t t0 = 0;
    if (s_write_paced (writer, args->rate, total, args->keys, warm, s_scrapes_warm,
                       &scrapes, &last, &secs, &t0) || scrapes.rc)
        return 1;
    if (outcomes.failed || !outcomes.first_seq) {
        fprintf (stderr, "walcast-bench-lag: %" PRIu64 " writes failed (%s)\n",
                 outcomes.failed, walcast_strerror (outcomes.first_err));
        return 1;
    }
    printf ("lag-writes: %" PRIu64 " writes in %.3f s (%.0f/s, asked %.0f/s); "
            "measured seqs %" PRIu64 "..%" PRIu64 "\n", total, secs,
            (double) total / secs, args->rate, outcomes.first_seq, last);
    int status = 0;
    for (size_t k = 0; k < args->nreplicas; k++)
        if (s_metrics_report (args, &scrapes, k, last))
            status = 1;
    return status;
}

/*  Run the watches and the writes, then report: 0 or 1. */
static int
s_run (const s_args_t *args, walcast_t *writer)
{
    uint64_t seq0 = 0, hash = 0;
    int rc = walcast_digest (writer, &seq0, &hash);
    if (rc) {
        fprintf (stderr, "walcast-bench-lag: %s: %s (%s)\n", args->primary,
                 walcast_strerror (rc), walcast_last_detail (writer));
        return 1;
    }
    uint64_t warm = (uint64_t) (args->rate * args->warmup);
    uint64_t total = warm + (uint64_t) (args->rate * args->seconds);
    size_t cap = (size_t) total + 1000;
    s_watcher_t watchers [1 + S_MAX_REPLICAS];
    size_t n = 0;
    int status = 0;
    for (; n < 1 + args->nreplicas && status == 0; n++)
        if (s_watcher_start (&watchers [n], n ? args->replicas [n - 1] : args->primary,
                             seq0 + 1, cap))
            status = 1;
    s_writer_t outcomes = { warm, 0, 0, 0 };
    walcast_set_outcome_fn (writer, s_on_outcome, &outcomes);
    uint64_t last = 0;
    double secs = 0;
    int64_t t0 = 0;
    s_watch_set_t set = { watchers, n };
    if (status == 0
    &&  s_write_paced (writer, args->rate, total, args->keys, warm, s_watches_warm,
                       &set, &last, &secs, &t0))
        status = 1;
    //  Tell every watch where to stop (a failed run: now).
    for (size_t k = 0; k < n; k++) {
        atomic_store (&watchers [k].target_us, s_now_us ());
        atomic_store (&watchers [k].target, last);
        atomic_store (&watchers [k].quit, status != 0);
    }
    for (size_t k = 0; k < n; k++) {
        s_watcher_finish (&watchers [k]);
        if (status == 0 && (watchers [k].rc || watchers [k].outside)) {
            fprintf (stderr, "walcast-bench-lag: watch of %s: %s%s\n", watchers [k].addr,
                     watchers [k].rc ? watchers [k].why : "", watchers [k].outside
                     ? "seqs outside the run came" : "");
            status = 1;
        }
    }
    if (status == 0 && (outcomes.failed || !outcomes.first_seq)) {
        fprintf (stderr, "walcast-bench-lag: %" PRIu64 " writes failed (%s)\n",
                 outcomes.failed, walcast_strerror (outcomes.first_err));
        status = 1;
    }
    if (status == 0) {
        printf ("lag-writes: %" PRIu64 " writes in %.3f s (%.0f/s, asked %.0f/s); "
                "measured seqs %" PRIu64 "..%" PRIu64 "\n", total, secs,
                (double) total / secs, args->rate, outcomes.first_seq, last);
        for (size_t k = 1; k < n; k++)
            if (s_report (&watchers [0], &watchers [k], outcomes.first_seq, last))
                status = 1;
    }
    if (status == 0 && args->timeline
    &&  s_timeline (args->timeline, watchers, n, outcomes.first_seq, last,
                    (double) t0 + (double) warm * 1e6 / args->rate, args->rate))
        status = 1;
    for (size_t k = 0; k < n; k++)
        free (watchers [k].stamp);
    return status;
}

/*  With the replicas' own histograms, this process is only the load: make
    it SCHED_BATCH (unless asked not to), which the kernel never lets
    preempt a running task when it wakes. The writer wakes thousands of
    times a second to send what is due, and on 2 shared cores each wake
    could take the core from a node in the middle of a message: the lag of
    the benchmark's own load, not of walcast. Set before the writer's
    handle exists, so its ZeroMQ I/O thread inherits it. The watches of
    the other mode stamp arrivals, so their process keeps the normal class.
    A kernel that refuses says so, and the run goes on as it is. */
static void
s_writer_sched (const s_args_t *args)
{
    if (!args->nmetrics || args->normal_sched)
        return;
    struct sched_param param = { 0 };
    if (sched_setscheduler (0, SCHED_BATCH, &param) != 0)
        fprintf (stderr, "walcast-bench-lag: SCHED_BATCH refused (%s); the writer "
                 "runs in the normal class\n", strerror (errno));
}

int
main (int argc, char **argv)
{
    s_args_t args;
    int rc = s_parse (argc, argv, &args);
    if (rc)
        return rc == 1 ? 0 : 2;
    s_writer_sched (&args);
    walcast_t *writer = walcast_new ();
    if (!writer) {
        fprintf (stderr, "walcast-bench-lag: out of memory\n");
        return 1;
    }
    walcast_set_timeout (writer, S_TIMEOUT_MS);
    rc = walcast_connect (writer, args.primary);
    if (rc) {
        fprintf (stderr, "walcast-bench-lag: %s: %s (%s)\n", args.primary,
                 walcast_strerror (rc), walcast_last_detail (writer));
        walcast_destroy (&writer);
        return 1;
    }
    int status = args.nmetrics ? s_run_metrics (&args, writer) : s_run (&args, writer);
    walcast_destroy (&writer);
    return status;
}
