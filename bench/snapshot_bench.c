/*  snapshot_bench.c - what a snapshot costs the loop, the disk and memory.

    walcast-snapshot-bench fills a wc_store with N keys (default
    1,000,000) of V-byte values (default 100), then takes a snapshot the
    way the engine does: wc_store_freeze on the calling thread (the only
    pause of the node's loop), then the writer thread writes the file
    (wc_snapshotter) while this thread, standing in for the loop,
    overwrites a share of the keys (--overwrite PERCENT, default 0), which
    copy on write must keep apart from the snapshot. It prints:

        freeze     the time the loop stops for the freeze (a copy of the
                   store's slots into memory made ready before, as the
                   engine does in the turns before a snapshot is due;
                   and how long that took, in how many calls)
        write      the writer thread's time: pack, write, fdatasync, rename
        size       the file's size
        load       the time to check and load the file back into a store
        memory     resident memory before the snapshot, while it is being
                   written (the frozen view, plus every entry the loop
                   replaced meanwhile) and after the thaw

    The file goes to --dir DIR (default: a new directory under /tmp,
    removed at the end). Usage: walcast-snapshot-bench [--keys N]
    [--value V] [--overwrite PERCENT] [--dir DIR]; exit 0, 1 on failure,
    2 on a usage error.
*/
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "walcast.h"
#include "log.h"
#include "snapshot.h"
#include "store.h"

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

//  Resident memory in MiB.
static double
s_rss_mib (void)
{
    long pages = 0, resident = 0;
    FILE *file = fopen ("/proc/self/statm", "r");
    if (!file)
        return 0;
    if (fscanf (file, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose (file);
    return (double) resident * (double) sysconf (_SC_PAGESIZE) / (1024.0 * 1024.0);
}

//  Put key n with a value of len bytes made from n and round.
static int
s_put (wc_store_t *store, size_t n, size_t len, unsigned round)
{
    char key [32];
    unsigned char value [4096];
    int klen = snprintf (key, sizeof key, "key:%zu", n);
    for (size_t i = 0; i < len; i++)
        value [i] = (unsigned char) (n * 31 + i + round);
    return wc_store_put (store, key, (size_t) klen, value, len);
}

typedef struct {
    size_t keys;
    size_t value;
    unsigned overwrite;
    char dir [256];
    bool own_dir;
} s_args_t;

static int
s_parse (int argc, char **argv, s_args_t *args)
{
    *args = (s_args_t) { 1000000, 100, 0, "", false };
    static struct option options [] = {
        { "keys", required_argument, NULL, 'k' }, { "value", required_argument, NULL, 'v' },
        { "overwrite", required_argument, NULL, 'o' }, { "dir", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
    };
    int c;
    while ((c = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (c == 'k')
            args->keys = (size_t) strtoull (optarg, NULL, 10);
        else if (c == 'v')
            args->value = (size_t) strtoull (optarg, NULL, 10);
        else if (c == 'o')
            args->overwrite = (unsigned) strtoul (optarg, NULL, 10);
        else if (c == 'd')
            snprintf (args->dir, sizeof args->dir, "%s", optarg);
        else {
            fprintf (c == 'h' ? stdout : stderr, "usage: walcast-snapshot-bench [--keys N] "
                     "[--value BYTES<=4096] [--overwrite PERCENT] [--dir DIR]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (args->keys == 0 || args->value > 4096 || args->overwrite > 100) {
        fprintf (stderr, "walcast-snapshot-bench: bad arguments (see --help)\n");
        return 2;
    }
    if (!args->dir [0]) {
        snprintf (args->dir, sizeof args->dir, "/tmp/walcast-snapshot-bench.XXXXXX");
        if (!mkdtemp (args->dir)) {
            perror ("walcast-snapshot-bench: mkdtemp");
            return 1;
        }
        args->own_dir = true;
    }
    return -1;
}

//  The loop's side while the writer works: overwrite a share of the keys.
//  Returns the peak resident memory seen.
static double
s_churn (wc_store_t *store, wc_snapshotter_t *writer, const s_args_t *args,
         wc_snapshot_result_t *result)
{
    double peak = s_rss_mib ();
    size_t todo = args->keys / 100 * args->overwrite;
    for (size_t n = 0; n < todo; n++) {
        s_put (store, n, args->value, 1);
        if (n % 65536 == 0 && s_rss_mib () > peak)
            peak = s_rss_mib ();
    }
    double rss = s_rss_mib ();
    peak = rss > peak ? rss : peak;
    while (wc_snapshotter_take (writer, 100, result) != 1)
        ;
    return peak;
}

int
main (int argc, char **argv)
{
    s_args_t args;
    int rc = s_parse (argc, argv, &args);
    if (rc >= 0)
        return rc;
    wc_log_set_level (WC_LOG_WARN);
    wc_store_t *store = wc_store_new ();
    for (size_t n = 0; n < args.keys; n++)
        if (s_put (store, n, args.value, 0) != 0)
            return 1;
    int dirfd = open (args.dir, O_RDONLY | O_DIRECTORY);
    wc_snapshotter_t *writer = dirfd >= 0 ? wc_snapshotter_new (dirfd, args.dir) : NULL;
    wc_epochs_t *history = wc_epochs_new ();
    if (!writer || !history || wc_epochs_add (history, 1, 1) != 0)
        return 1;
    double before = s_rss_mib ();

    //  The engine makes the freeze's memory ready a little a turn in the
    //  entries before a snapshot is due (512 KiB a call): so does this.
    double t0 = s_now ();
    size_t calls = 0, ready;
    do {
        ready = wc_store_prepared_bytes (store);
        if (wc_store_prepare_freeze (store, 512u << 10) != 0)
            return 1;
        calls++;
    } while (wc_store_prepared_bytes (store) > ready);
    double prepare = s_now () - t0;
    t0 = s_now ();
    const wc_store_frozen_t *view;
    if (wc_store_freeze (store, &view) != 0)
        return 1;
    double freeze = s_now () - t0;
    wc_snapshot_info_t info = { .seq = args.keys, .ts_ms = 1 };
    if (wc_snapshotter_start (writer, &info, history, view) != 0)
        return 1;
    wc_snapshot_result_t result;
    double during = s_churn (store, writer, &args, &result);
    size_t dead = wc_store_dead_bytes (store);
    wc_store_thaw (store);
    double after = s_rss_mib ();
    if (result.rc != 0) {
        fprintf (stderr, "walcast-snapshot-bench: the write failed: %s\n", result.why);
        return 1;
    }

    t0 = s_now ();
    wc_store_t *loaded = NULL;
    char why [256];
    if (wc_snapshot_load (dirfd, info.seq, &loaded, NULL, &info, why, sizeof why) != 0) {
        fprintf (stderr, "walcast-snapshot-bench: cannot load it back: %s\n", why);
        return 1;
    }
    double load = s_now () - t0;
    printf ("keys       %zu of %zu-byte values, %u%% overwritten during the write\n",
            args.keys, args.value, args.overwrite);
    printf ("freeze     %.1f ms (its %.1f MiB made ready before in %zu calls, %.1f ms)\n",
            freeze * 1000.0, (double) ready / 1048576.0, calls, prepare * 1000.0);
    printf ("write      %.3f s (pack, write, fdatasync, rename)\n", result.seconds);
    printf ("size       %.1f MiB\n", (double) result.bytes / (1024.0 * 1024.0));
    printf ("load       %.3f s (check and rebuild the store)\n", load);
    printf ("memory     %.0f MiB before, %.0f MiB at most while written (%.0f MiB of "
            "replaced entries kept for it), %.0f MiB after the thaw\n", before, during,
            (double) dead / (1024.0 * 1024.0), after);
    wc_store_destroy (&loaded);
    wc_snapshotter_destroy (&writer);
    wc_epochs_destroy (&history);
    wc_store_destroy (&store);
    if (args.own_dir) {
        char command [300];
        snprintf (command, sizeof command, "rm -rf %s", args.dir);
        if (system (command) != 0)
            rc = 1;
    }
    close (dirfd);
    return 0;
}
