/*  test_engine_snapshot.c - the engine's snapshots: taking them while
    writes go on, loading them at open, retention, serving them in
    chunks, installing one (storage/engine.h).

    What a node relies on: a snapshot holds exactly the state at its seq
    even though the loop went on writing while the thread wrote it; a
    restart loads the newest good snapshot and the log after it, and falls
    back to the one before a damaged one; the log keeps at least its
    retention bound and never loses what no snapshot covers; a snapshot
    read in chunks is the file; an install replaces state, history and
    log at once, and a failure at any step of it leaves, after a restart,
    the old state or the new one, whole.

    The writer thread is held inside its first write by a vfs hook
    (vfs_gate.h) while the test writes, so nothing waits with a sleep.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "walcast.h"
#include "clock.h"
#include "crc32c.h"
#include "engine.h"
#include "engine_util.h"
#include "log.h"
#include "snapshot.h"
#include "vfs.h"
#include "vfs_gate.h"

static char s_dir [128];
static char s_dir2 [128];

typedef struct {
    eu_t a;                     /* the engine under test */
    eu_t b;                     /* a second one (an upstream, a replica) */
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    eu_init (&f->a, s_dir);
    eu_init (&f->b, s_dir2);
    wc_vfs_reset ();
    gate_install (WC_VFS_WRITE);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    gate_open ();
    wc_vfs_reset ();
    eu_fini (&f->a);
    eu_fini (&f->b);
    free (f);
    return 0;
}

//  Load the snapshot file of seq from dir; returns its digest.
static uint64_t
s_snapshot_digest (const char *dir, uint64_t seq)
{
    char name [WC_SNAPSHOT_NAME_SIZE], path [256];
    snprintf (path, sizeof path, "%s/%s", dir, wc_snapshot_name (name, seq));
    FILE *file = fopen (path, "rb");
    assert_non_null (file);
    wc_store_t *store = NULL;
    wc_snapshot_info_t info;
    char why [256];
    int rc = wc_snapshot_read_fd (fileno (file), &store, NULL, &info, why, sizeof why);
    fclose (file);
    if (rc != 0)
        fail_msg ("snapshot %llu: %s", (unsigned long long) seq, why);
    uint64_t digest = wc_store_digest (store);
    assert_true (digest == info.digest);
    wc_store_destroy (&store);
    return digest;
}

/*  A snapshot taken while writes go on holds the state at its seq: the
    writer is held in its first write while entries rewrite and delete
    what it is writing. A restart loads it and replays the rest. */
static void
test_snapshot_consistent (void **state)
{
    eu_t *e = &((fixture_t *) *state)->a;
    eu_open (e);
    eu_load (e, 3000, 500, 1);
    gate_close ();
    assert_int_equal (wc_engine_snapshot (e->engine), 0);
    uint64_t seq = 0, bytes = 0;
    assert_int_equal (wc_engine_on_snapshot (e->engine, &seq, &bytes), 0);
    gate_wait_hold (0);
    assert_int_equal (wc_engine_snapshot (e->engine), WALCAST_EBUSY);
    eu_load (e, 2000, 500, 2);                      //  the loop goes on
    eu_assert_state (e, 5000);
    gate_open ();
    assert_int_equal (eu_wait_snapshot (e, &seq, &bytes), 1);
    assert_int_equal (seq, 3000);
    assert_true (s_snapshot_digest (e->dir, 3000) == eu_model_digest (e, 3000));
    assert_true (eu_model_digest (e, 3000) != eu_model_digest (e, 5000));
    assert_int_equal (wc_engine_snapshot_seq (e->engine), 3000);
    eu_close (e);
    eu_open (e);
    assert_int_equal (e->info.snapshot_seq, 3000);
    assert_false (e->info.missing_start);
    eu_assert_state (e, 5000);
    assert_int_equal (wc_engine_epoch (e->engine), 2);
    assert_int_equal (wc_engine_applied_ts (e->engine), 1000 + 5000);
}

/*  A damaged newest snapshot: set aside, the one before it used, the log
    replayed from there. */
static void
test_snapshot_fallback (void **state)
{
    eu_t *e = &((fixture_t *) *state)->a;
    eu_open (e);
    eu_load (e, 200, 50, 1);
    assert_int_equal (eu_snapshot (e), 200);
    eu_load (e, 100, 50, 1);
    assert_int_equal (eu_snapshot (e), 300);
    eu_load (e, 50, 50, 2);
    eu_close (e);
    char name [WC_SNAPSHOT_NAME_SIZE];
    eu_shell ("printf 'X' | dd of=%s/%s bs=1 seek=100 conv=notrunc status=none", e->dir,
              wc_snapshot_name (name, 300));
    eu_open (e);
    assert_int_equal (e->info.snapshot_seq, 200);
    assert_int_equal (e->info.snapshots_damaged, 1);
    eu_assert_state (e, 350);
    assert_int_equal (eu_count_files (e->dir, "snapshot-"), 2);   //  one is *.damaged
    assert_int_equal (wc_engine_snapshot_seq (e->engine), 200);
    eu_close (e);
    //  Both damaged: none used, the log from seq 1
    eu_shell ("printf 'X' | dd of=%s/%s bs=1 seek=100 conv=notrunc status=none", e->dir,
              wc_snapshot_name (name, 200));
    eu_open (e);
    assert_int_equal (e->info.snapshot_seq, 0);
    eu_assert_state (e, 350);
}

/*  The same with the least retention (--retain-bytes 0: before, 0 meant
    the default 256 MiB, so nothing went): the log from the older of the
    two snapshots kept is kept too, or the fallback would have nothing to
    replay. Before, retention removed the log up to the newest snapshot,
    and a node whose newest snapshot was damaged could not start ("seqs
    ... are missing (a segment file was deleted or lost)"), a helper
    found. */
static void
test_snapshot_fallback_retained (void **state)
{
    eu_t *e = &((fixture_t *) *state)->a;
    e->cfg.retain_bytes = 0;
    eu_open (e);
    eu_load (e, 200, 50, 1);
    assert_int_equal (eu_snapshot (e), 200);
    eu_load (e, 100, 50, 1);
    assert_int_equal (eu_snapshot (e), 300);
    eu_load (e, 100, 50, 1);
    assert_int_equal (eu_snapshot (e), 400);
    eu_load (e, 50, 50, 2);
    //  The log was cut, but not past the older snapshot kept (300)
    assert_true (wc_engine_first_seq (e->engine) > 1);
    assert_true (wc_engine_first_seq (e->engine) <= 301);
    eu_close (e);
    char name [WC_SNAPSHOT_NAME_SIZE];
    eu_shell ("printf 'X' | dd of=%s/%s bs=1 seek=100 conv=notrunc status=none", e->dir,
              wc_snapshot_name (name, 400));
    eu_open (e);
    assert_int_equal (e->info.snapshot_seq, 300);
    assert_int_equal (e->info.snapshots_damaged, 1);
    eu_assert_state (e, 450);
}

/*  Retention: after a snapshot, segments it covers go while the log keeps
    its bound; the two newest snapshots stay; a read below the log is
    ERANGE; a restart is not "missing its start". */
static void
test_retention (void **state)
{
    eu_t *e = &((fixture_t *) *state)->a;
    e->cfg.retain_bytes = 5 * 4096;
    eu_open (e);
    eu_load (e, 1000, 100, 1);
    size_t before = eu_count_files (e->dir, "wal-");
    assert_int_equal (eu_snapshot (e), 1000);
    size_t after = eu_count_files (e->dir, "wal-");
    assert_true (after < before && after >= 5 && after <= 7);
    uint64_t first = wc_engine_first_seq (e->engine);
    assert_true (first > 1 && first <= 1000);
    assert_int_equal (wc_engine_read (e->engine, first - 1, 1 << 20, NULL, NULL),
                      WALCAST_ERANGE);
    assert_true (wc_engine_read (e->engine, first, 1 << 20, NULL, NULL) > 0);
    eu_load (e, 300, 100, 1);
    assert_int_equal (eu_snapshot (e), 1300);
    eu_load (e, 300, 100, 1);
    assert_int_equal (eu_snapshot (e), 1600);
    assert_int_equal (eu_count_files (e->dir, "snapshot-"), 2);
    assert_true (wc_engine_first_seq (e->engine) > first);
    eu_close (e);
    eu_open (e);
    assert_false (e->info.missing_start);
    assert_false (wc_engine_damage (e->engine, NULL, 0));
    eu_assert_state (e, 1600);
    assert_int_equal (e->info.snapshot_seq, 1600);
}

/*  Snapshots every snapshot_every applied entries, by themselves. */
static void
test_auto_snapshot (void **state)
{
    eu_t *e = &((fixture_t *) *state)->a;
    e->cfg.snapshot_every = 100;
    eu_open (e);
    eu_load (e, 99, 20, 1);
    uint64_t seq = 0, bytes = 0;
    assert_int_equal (wc_engine_on_snapshot (e->engine, &seq, &bytes), 0);
    eu_load (e, 1, 20, 1);
    assert_int_equal (eu_wait_snapshot (e, &seq, &bytes), 1);
    assert_int_equal (seq, 100);
    eu_load (e, 150, 20, 1);
    assert_int_equal (eu_wait_snapshot (e, &seq, &bytes), 1);
    assert_true (seq >= 200 && seq <= 250);
    eu_close (e);
    //  At open, a log longer than snapshot_every gets one at the first tick
    e->cfg.snapshot_every = 10;
    eu_open (e);
    wc_engine_tick (e->engine);
    assert_int_equal (eu_wait_snapshot (e, &seq, &bytes), 1);
    assert_int_equal (seq, 250);
}

/*  A phase moves the grid: with snapshot_every 320 and phase 30 the
    snapshots fall at 290, 610, ... (nodes with different ids do not all
    snapshot at the same write); one begun by hand does not move it. In
    the last 1/32 of the entries before one is due, the store's memory
    for the freeze is made ready; it is given back when nothing is
    applied for a second, and the freeze takes it. */
static void
test_snapshot_phase (void **state)
{
    eu_t *e = &((fixture_t *) *state)->a;
    e->cfg.snapshot_every = 320;
    e->cfg.snapshot_phase = 30;
    eu_open (e);
    wc_store_t *store = wc_engine_store (e->engine);
    eu_load (e, 270, 20, 1);
    assert_int_equal (wc_store_prepared_bytes (store), 0);
    eu_load (e, 15, 20, 1);                         //  285: 5 before it is due
    uint64_t seq = 0, bytes = 0;
    assert_int_equal (wc_engine_on_snapshot (e->engine, &seq, &bytes), 0);
    assert_true (wc_store_prepared_bytes (store) > 0);
    int64_t deadline = wc_clock_ms () + 10000;
    while (wc_store_prepared_bytes (store) > 0 && wc_clock_ms () < deadline) {
        wc_engine_tick (e->engine);
        usleep (10 * 1000);
    }
    assert_int_equal (wc_store_prepared_bytes (store), 0);     //  idle: given back
    eu_load (e, 2, 20, 1);                          //  287: made ready again
    assert_true (wc_store_prepared_bytes (store) > 0);
    eu_load (e, 3, 20, 1);
    assert_int_equal (eu_wait_snapshot (e, &seq, &bytes), 1);
    assert_int_equal (seq, 290);
    assert_int_equal (wc_store_prepared_bytes (store), 0);     //  the freeze took it
    eu_load (e, 110, 20, 1);
    assert_int_equal (eu_snapshot (e), 400);        //  by hand
    eu_load (e, 209, 20, 1);
    assert_int_equal (wc_engine_on_snapshot (e->engine, &seq, &bytes), 0);
    eu_load (e, 1, 20, 1);
    assert_int_equal (eu_wait_snapshot (e, &seq, &bytes), 1);
    assert_int_equal (seq, 610);
}

/*  A node that does not look at the snapshot socket at once: the next
    tick takes the ended write in (the store is no longer frozen, old
    snapshots are gone), and the result still waits for the node. */
static void
test_snapshot_taken_in_by_tick (void **state)
{
    eu_t *e = &((fixture_t *) *state)->a;
    eu_open (e);
    eu_load (e, 100, 50, 1);
    assert_int_equal (wc_engine_snapshot (e->engine), 0);
    zmq_pollitem_t item = { wc_engine_snapshot_socket (e->engine), 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 10000), 1);      //  ended; not asked yet
    wc_engine_tick (e->engine);
    eu_put (e, 1, 10, 'n', 1);                     //  no copy kept for a view
    eu_commit (e);
    assert_int_equal (wc_store_dead_bytes (wc_engine_store (e->engine)), 0);
    assert_int_equal (wc_engine_snapshot (e->engine), WALCAST_EBUSY);     //  not told yet
    uint64_t seq, bytes;
    assert_int_equal (wc_engine_on_snapshot (e->engine, &seq, &bytes), 1);
    assert_int_equal (seq, 100);
    assert_int_equal (wc_engine_on_snapshot (e->engine, &seq, &bytes), 0);
    assert_int_equal (eu_snapshot (e), 101);
}

/*  Serving a snapshot in chunks: the chunks are the file; a removed
    snapshot is ERANGE, none at all ENOTFOUND. */
static void
test_snapshot_read (void **state)
{
    eu_t *e = &((fixture_t *) *state)->a;
    eu_open (e);
    uint8_t buf [1000];
    uint64_t snap, size;
    size_t got;
    assert_int_equal (wc_engine_snapshot_read (e->engine, 0, 0, buf, sizeof buf, &snap,
                                               &size, &got), WALCAST_ENOTFOUND);
    eu_load (e, 500, 100, 1);
    uint64_t first = eu_snapshot (e);
    eu_load (e, 10, 100, 1);
    eu_snapshot (e);
    char name [WC_SNAPSHOT_NAME_SIZE];
    int64_t file_size;
    uint32_t crc = eu_file_crc (e->dir, wc_snapshot_name (name, first), &file_size);
    uint32_t got_crc = 0;
    uint64_t offset = 0;
    do {
        assert_int_equal (wc_engine_snapshot_read (e->engine, first, offset, buf,
                                                   sizeof buf, &snap, &size, &got), 0);
        assert_int_equal (snap, first);
        assert_int_equal (size, (uint64_t) file_size);
        got_crc = wc_crc32c (got_crc, buf, got);
        offset += got;
    } while (got > 0);
    assert_int_equal (offset, (uint64_t) file_size);
    assert_int_equal (got_crc, crc);
    assert_int_equal (wc_engine_snapshot_read (e->engine, 0, 0, buf, sizeof buf, &snap,
                                               &size, &got), 0);
    assert_int_equal (snap, 510);
    assert_int_equal (wc_engine_snapshot_read (e->engine, 0, size + 1, buf, sizeof buf,
                                               &snap, &size, &got), WALCAST_EINVAL);
    eu_load (e, 10, 100, 1);
    eu_snapshot (e);                                //  the first one goes
    assert_int_equal (wc_engine_snapshot_read (e->engine, first, 0, buf, sizeof buf,
                                               &snap, &size, &got), WALCAST_ERANGE);
}

/*  A log that begins past the snapshot's seq + 1 is missing its start
    (reported, as without a snapshot); set aside, the state is the
    snapshot's. A log that ends before the snapshot is emptied: writing
    goes on after the snapshot. */
static void
test_log_and_snapshot_gaps (void **state)
{
    eu_t *e = &((fixture_t *) *state)->a;
    eu_open (e);
    eu_load (e, 300, 50, 1);
    assert_int_equal (eu_snapshot (e), 300);
    eu_load (e, 300, 50, 1);
    eu_close (e);
    //  Remove every segment that begins at or before seq 301
    eu_shell ("cd %s && for f in wal-*.log; do n=$(echo $f | sed 's/^wal-0*//; s/.log$//'); "
              "if [ $n -le 301 ]; then rm $f; fi; done", e->dir);
    eu_open (e);
    assert_true (e->info.missing_start);
    char text [512];
    assert_true (wc_engine_damage (e->engine, text, sizeof text));
    assert_non_null (strstr (text, "snapshot of seq 300"));
    eu_assert_state (e, 300);                       //  nothing past the hole
    assert_int_equal (wc_engine_set_aside (e->engine), 0);
    eu_assert_state (e, 300);
    eu_load (e, 10, 50, 1);
    eu_close (e);
    eu_open (e);
    assert_false (e->info.missing_start);
    eu_assert_state (e, 310);
    eu_close (e);

    //  Now a log that lost what the snapshot has
    eu_shell ("rm -rf %s", e->dir);
    eu_open (e);
    eu_load (e, 200, 50, 1);
    eu_close (e);
    eu_shell ("cp -r %s %s.keep", e->dir, e->dir);
    eu_open (e);
    eu_load (e, 100, 50, 1);
    assert_int_equal (eu_snapshot (e), 300);
    eu_close (e);
    eu_shell ("rm %s/wal-* && cp %s.keep/wal-* %s/ && rm -rf %s.keep", e->dir, e->dir,
              e->dir, e->dir);
    eu_open (e);
    eu_assert_state (e, 300);
    assert_int_equal (eu_count_files (e->dir, "wal-"), 0);
    assert_int_equal (wc_engine_first_seq (e->engine), 301);
    eu_load (e, 5, 50, 1);
    eu_close (e);
    eu_open (e);
    eu_assert_state (e, 305);
}

/*  A write cancelled by a truncation is still reported (EBUSY), through
    the socket; a write that fails is reported, and the engine goes on. */
static void
test_snapshot_cancel_and_failure (void **state)
{
    eu_t *e = &((fixture_t *) *state)->a;
    eu_open (e);
    eu_load (e, 3000, 500, 1);
    gate_close ();
    assert_int_equal (wc_engine_snapshot (e->engine), 0);
    gate_wait_hold (0);
    eu_load (e, 100, 500, 1);
    gate_open ();
    assert_int_equal (eu_truncate (e, 2950), 0);    //  cancels it, or it was done
    uint64_t seq, bytes;
    int rc = eu_wait_snapshot (e, &seq, &bytes);
    //  Either way the truncation removed what is past the cut
    assert_true (rc == WALCAST_EBUSY || (rc == 1 && seq == 3000));
    assert_int_equal (eu_count_files (e->dir, "snapshot-"), 0);
    eu_assert_state (e, 2950);

    wc_vfs_fail (WC_VFS_SYNC, 0, -1, EIO);          //  the writer's fdatasync
    assert_int_equal (wc_engine_snapshot (e->engine), 0);
    assert_int_equal (eu_wait_snapshot (e, &seq, &bytes), WALCAST_EIO);
    wc_vfs_reset ();
    gate_install (WC_VFS_WRITE);
    assert_int_equal (eu_count_files (e->dir, "snapshot-"), 0);
    eu_load (e, 10, 500, 1);
    assert_int_equal (eu_snapshot (e), 2960);       //  on demand works at once
}


//  --------------------------------------------------------------------
//  Installing

//  The upstream: entries 1..300 in epochs 1 and 3, a snapshot at 300,
//  more entries after it.
static void
s_make_upstream (eu_t *a)
{
    eu_open (a);
    eu_load (a, 150, 60, 1);
    eu_load (a, 150, 60, 3);
    assert_int_equal (eu_snapshot (a), 300);
    eu_load (a, 20, 60, 3);
}

//  The replica: its own history (epoch 1, other values), a snapshot.
static void
s_make_replica (eu_t *b)
{
    eu_shell ("rm -rf %s", b->dir);
    memset (b->ops, 0, (EU_MAX_OPS + 1) * sizeof *b->ops);
    eu_open (b);
    for (uint32_t i = 0; i < 80; i++)
        eu_put (b, i % 30, 40, 'B', 1);
    eu_commit (b);
    assert_int_equal (eu_snapshot (b), 80);
    for (uint32_t i = 0; i < 40; i++)
        eu_put (b, i % 30, 50, 'C', 2);
    eu_commit (b);
}

//  Copy the upstream's newest snapshot into the replica's download path,
//  chunk by chunk as SNAPSHOT_GET would.
static void
s_download (eu_t *a, eu_t *b)
{
    const char *path = wc_engine_snapshot_temp_path (b->engine);
    assert_non_null (strstr (path, b->dir));
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    uint8_t buf [4096];
    uint64_t offset = 0, seq = 0, snap, size;
    size_t got;
    do {
        assert_int_equal (wc_engine_snapshot_read (a->engine, seq, offset, buf, sizeof buf,
                                                   &snap, &size, &got), 0);
        seq = snap;
        assert_int_equal (fwrite (buf, 1, got, file), got);
        offset += got;
    } while (got > 0);
    fclose (file);
}

//  Assert the replica holds the installed state (and its own entries
//  after it: none yet).
static void
s_assert_installed (eu_t *a, eu_t *b)
{
    memcpy (b->ops, a->ops, 301 * sizeof *a->ops);
    eu_assert_state (b, 300);
    const wc_epochs_t *h = wc_engine_epochs (b->engine);
    assert_int_equal (wc_epochs_count (h), 2);
    assert_int_equal (wc_epochs_items (h) [1].epoch, 3);
    assert_int_equal (wc_epochs_items (h) [1].first_seq, 151);
    assert_int_equal (wc_engine_first_seq (b->engine), 301);
    assert_int_equal (wc_engine_snapshot_seq (b->engine), 300);
    assert_int_equal (eu_count_files (b->dir, "wal-"), 0);
    assert_int_equal (eu_count_files (b->dir, "snapshot-"), 1);
    assert_int_equal (eu_count_files (b->dir, "install"), 0);
}

/*  An install replaces the state, the history and the log; writing goes
    on after it, across a restart; a bad file changes nothing. */
static void
test_install (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_make_upstream (&f->a);
    s_make_replica (&f->b);
    eu_t *b = &f->b;
    //  A damaged download first
    s_download (&f->a, b);
    eu_shell ("printf 'X' | dd of=%s bs=1 seek=300 conv=notrunc status=none",
              wc_engine_snapshot_temp_path (b->engine));
    assert_int_equal (wc_engine_install_snapshot (b->engine,
                      wc_engine_snapshot_temp_path (b->engine)), WALCAST_EPROTO);
    eu_assert_state (b, 120);
    assert_int_equal (wc_engine_epoch (b->engine), 2);
    assert_int_equal (wc_engine_install_snapshot (b->engine, "/nonexistent/x"),
                      WALCAST_ENOTFOUND);

    s_download (&f->a, b);
    assert_int_equal (wc_engine_install_snapshot (b->engine,
                      wc_engine_snapshot_temp_path (b->engine)), 0);
    b->last = 300;
    s_assert_installed (&f->a, b);
    assert_int_equal (eu_try_put (b, 1, 5, 'x', 2), WALCAST_EFENCED);
    //  A truncation to the snapshot's seq with an empty log
    eu_put (b, 1, 5, 'x', 3);
    assert_int_equal (wc_engine_truncate_floor (b->engine), 300);
    assert_int_equal (eu_truncate (b, 299), WALCAST_ERANGE);
    assert_int_equal (eu_truncate (b, 300), 0);
    s_assert_installed (&f->a, b);
    eu_load (b, 10, 60, 3);
    eu_close (b);
    eu_open (b);
    eu_assert_state (b, 310);
    assert_false (b->info.missing_start);
    assert_int_equal (b->info.snapshot_seq, 300);
}

//  Install in b with the op-th call failing from after on (every later
//  call of it failing too, as a disk that died there), restart, and say
//  which state came back: 0 the old one, 1 the new one.
static int
s_install_with_fault (fixture_t *f, wc_vfs_op_t op, uint64_t after)
{
    eu_t *b = &f->b;
    s_make_replica (b);
    s_download (&f->a, b);
    uint64_t old_digest = eu_model_digest (b, 120);
    wc_vfs_reset ();
    wc_vfs_fail (op, after, -1, op == WC_VFS_WRITE ? ENOSPC : EIO);
    int rc = wc_engine_install_snapshot (b->engine, wc_engine_snapshot_temp_path (b->engine));
    eu_close (b);
    wc_vfs_reset ();
    gate_install (WC_VFS_WRITE);
    eu_open (b);
    assert_int_equal (eu_count_files (b->dir, "install"), 0);
    assert_int_equal (eu_count_files (b->dir, "snapshot.download"), 0);
    if (wc_engine_applied (b->engine) == 120) {
        assert_true (rc != 0);
        assert_true (wc_store_digest (wc_engine_store (b->engine)) == old_digest);
        assert_int_equal (wc_engine_epoch (b->engine), 2);
        eu_close (b);
        return 0;
    }
    s_assert_installed (&f->a, b);
    eu_close (b);
    return 1;
}

/*  Every file operation of an install fails in turn, at every call: a
    restart always finds one whole state, the old or the new. */
static void
test_install_faults (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_make_upstream (&f->a);
    //  How many calls of each operation an install makes
    s_make_replica (&f->b);
    s_download (&f->a, &f->b);
    wc_vfs_reset ();
    assert_int_equal (wc_engine_install_snapshot (f->b.engine,
                      wc_engine_snapshot_temp_path (f->b.engine)), 0);
    uint64_t counts [WC_VFS_NOPS];
    for (int op = 0; op < WC_VFS_NOPS; op++)
        counts [op] = wc_vfs_count ((wc_vfs_op_t) op);
    eu_close (&f->b);
    gate_install (WC_VFS_WRITE);
    int runs = 0, old = 0, fresh = 0;
    for (int op = 0; op < WC_VFS_NOPS; op++)
        for (uint64_t after = 0; after < counts [op]; after++) {
            int got = s_install_with_fault (f, (wc_vfs_op_t) op, after);
            old += got == 0;
            fresh += got == 1;
            runs++;
        }
    printf ("install with a failing step: %d runs, %d came back old, %d new\n", runs, old,
            fresh);
    assert_true (runs > 20 && old > 0 && fresh > 0);
}

int
main (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/test_engine_snapshot.%d", (int) getpid ());
    snprintf (s_dir2, sizeof s_dir2, "/tmp/test_engine_snapshot.%d.b", (int) getpid ());
    wc_log_set_level (WC_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_snapshot_consistent, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_fallback, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_retention, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_fallback_retained, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_auto_snapshot, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_phase, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_taken_in_by_tick, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_read, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_log_and_snapshot_gaps, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_cancel_and_failure, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_install, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_install_faults, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
