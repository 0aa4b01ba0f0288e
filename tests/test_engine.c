/*  test_engine.c - the storage engine's commit contract (storage/engine.h).

    The engine under the faults a disk can throw at it (storage/vfs.h):
    what it reports written, durable and applied must always describe
    what really is in the log, and what the node is told (the apply
    callback, in seq order) must never run ahead of it:

    - a commit writes the whole batch or exactly a prefix, and goes on
      from there once the cause is gone;
    - under --fsync always an entry is applied only once its sync, and
      every sync before it, is done; a failed sync stops everything;
    - when the syncer cannot take a job (no descriptor to spare) the sync
      is made on the caller's thread, and still counts only once the jobs
      before it are done;
    - under steady load the engine's buffer of unapplied entries stays
      bounded.

    A vfs hook holds the syncer thread inside a sync until the test lets
    it go (vfs_gate.h), so nothing here waits with a sleep. The epochs,
    truncation and snapshots are tested in test_engine_epochs.c and
    test_engine_snapshot.c.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "engine.h"
#include "log.h"
#include "vfs.h"
#include "vfs_gate.h"

static char s_dir [128];

/* --- the engine under test ---------------------------------------------- */

typedef struct {
    wc_engine_t *engine;
    uint64_t     applied [64];      /* seqs the callback saw, in order */
    size_t       napplied;
    uint64_t     last;              /* the last seq the callback saw */
} fixture_t;

static void
s_on_apply (void *arg, const wc_entry_t *entry, const void *payload, size_t len)
{
    (void) payload;
    (void) len;
    fixture_t *f = (fixture_t *) arg;
    assert_int_equal (entry->seq, f->last + 1);         //  in order, once
    f->last = entry->seq;
    if (f->napplied < 64)
        f->applied [f->napplied++] = entry->seq;
}

static void
s_open (fixture_t *f, wc_fsync_t fsync, size_t segment_bytes)
{
    wc_engine_config_t cfg = { .dir = s_dir, .fsync = fsync,
                               .segment_bytes = segment_bytes, .owner = "test_engine" };
    int err = 0;
    char why [256];
    f->engine = wc_engine_open (&cfg, NULL, &err, why, sizeof why);
    if (!f->engine)
        fail_msg ("open: %s", why);
    wc_engine_set_apply (f->engine, s_on_apply, f);
    f->last = wc_engine_applied (f->engine);
    //  As a node does: its epoch is in the history before it writes
    if (wc_engine_epoch (f->engine) < 1)
        assert_int_equal (wc_engine_begin_epoch (f->engine, 1), 0);
}

static int
s_setup (void **state)
{
    char command [256];
    snprintf (command, sizeof command, "rm -rf %s", s_dir);
    assert_int_equal (system (command), 0);
    wc_vfs_reset ();
    gate_install (WC_VFS_SYNC);
    fixture_t *f = calloc (1, sizeof *f);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    gate_open ();
    wc_vfs_reset ();
    wc_engine_destroy (&f->engine);
    free (f);
    return 0;
}

//  Stage one PUT of a value of len bytes at the next seq.
static void
s_stage (fixture_t *f, size_t len)
{
    static char value [4096];
    memset (value, 'v', sizeof value);
    wc_entry_t entry = { .seq = wc_engine_next_seq (f->engine), .epoch = 1, .ts_ms = 1,
                         .op = WC_OP_PUT, .key = { (const uint8_t *) "key", 3 },
                         .value = { (const uint8_t *) value, (uint32_t) len } };
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    assert_int_equal (wc_entry_encode (&entry, &buf), 0);
    assert_int_equal (wc_engine_stage (f->engine, &entry, buf.data, buf.size), 0);
    msgpack_sbuffer_destroy (&buf);
}

//  Take the syncer's results until durable reaches want (10 s at most).
static void
s_wait_durable (fixture_t *f, uint64_t want)
{
    for (int i = 0; i < 100 && wc_engine_durable (f->engine) < want; i++) {
        zmq_pollitem_t item = { wc_engine_sync_socket (f->engine), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) > 0)
            assert_int_equal (wc_engine_on_sync (f->engine), 0);
    }
    assert_true (wc_engine_durable (f->engine) >= want);
}

/* --- the tests -------------------------------------------------------- */

/*  --fsync never: a commit writes and applies the batch, in order. */
static void
test_commit_applies (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_open (f, WC_FSYNC_NEVER, 0);
    for (int i = 0; i < 3; i++)
        s_stage (f, 100);
    assert_int_equal (wc_engine_written (f->engine), 0);
    assert_int_equal (wc_engine_commit (f->engine), 0);
    assert_int_equal (wc_engine_written (f->engine), 3);
    assert_int_equal (wc_engine_applied (f->engine), 3);
    assert_int_equal (f->napplied, 3);
}

/*  A write that fails inside a batch that crosses segments: exactly the
    whole records before it stand; the rest is dropped; the next commit
    continues from there once the disk has room again. */
static void
test_partial_commit (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_open (f, WC_FSYNC_NEVER, 4096);
    for (int i = 0; i < 30; i++)
        s_stage (f, 300);                   //  ~330 bytes a record: 3 segments
    wc_vfs_fail_short_write (1, 500, ENOSPC);
    assert_int_equal (wc_engine_commit (f->engine), WALCAST_ENOSPC);
    uint64_t written = wc_engine_written (f->engine);
    assert_true (written > 0 && written < 30);
    assert_int_equal (wc_engine_applied (f->engine), written);
    assert_int_equal (f->last, written);
    assert_int_equal (wc_engine_next_seq (f->engine), written + 1);
    char why [256];
    assert_true (wc_engine_stalled (f->engine, why, sizeof why));
    wc_vfs_reset ();
    s_stage (f, 300);
    assert_int_equal (wc_engine_commit (f->engine), 0);
    assert_false (wc_engine_stalled (f->engine, NULL, 0));
    assert_int_equal (wc_engine_applied (f->engine), written + 1);
    //  And the log says the same after a reopen
    wc_engine_destroy (&f->engine);
    f->last = 0;
    f->napplied = 0;
    s_open (f, WC_FSYNC_NEVER, 4096);
    assert_int_equal (wc_engine_applied (f->engine), written + 1);
}

/*  --fsync always: written at once, applied only once synced. */
static void
test_always_waits_for_sync (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_open (f, WC_FSYNC_ALWAYS, 0);
    gate_close ();
    s_stage (f, 100);
    assert_int_equal (wc_engine_commit (f->engine), 0);
    gate_wait_hold (0);
    assert_int_equal (wc_engine_written (f->engine), 1);
    assert_int_equal (wc_engine_applied (f->engine), 0);
    s_stage (f, 100);                       //  the loop goes on meanwhile
    assert_int_equal (wc_engine_commit (f->engine), 0);
    assert_int_equal (wc_engine_written (f->engine), 2);
    assert_int_equal (f->napplied, 0);
    gate_open ();
    s_wait_durable (f, 2);
    assert_int_equal (wc_engine_applied (f->engine), 2);
    assert_int_equal (f->napplied, 2);
}

/*  The syncer cannot take a job (no descriptor to spare): the engine
    syncs on its own thread, but that sync counts only once the job the
    syncer is still on is done. */
static void
test_fallback_waits_for_earlier_syncs (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_open (f, WC_FSYNC_ALWAYS, 0);
    gate_close ();
    s_stage (f, 100);
    assert_int_equal (wc_engine_commit (f->engine), 0);
    gate_wait_hold (0);                    //  job 1 hangs in the syncer
    wc_vfs_fail (WC_VFS_OPEN, 0, -1, EMFILE);
    s_stage (f, 100);
    assert_int_equal (wc_engine_commit (f->engine), 0);
    assert_int_equal (wc_engine_written (f->engine), 2);
    assert_int_equal (wc_engine_durable (f->engine), 0);
    assert_int_equal (wc_engine_applied (f->engine), 0);
    assert_int_equal (f->napplied, 0);
    wc_vfs_reset ();
    gate_install (WC_VFS_SYNC);             //  opens the gate too
    s_wait_durable (f, 2);
    assert_int_equal (wc_engine_applied (f->engine), 2);
}

/*  A failed sync stops everything, even what a later sync on the
    caller's thread covered: job 1's sync fails (the syncer holds it a
    moment first), and meanwhile commit 2 is synced on this thread. */
static void
test_failed_sync_is_final (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_open (f, WC_FSYNC_ALWAYS, 0);
    gate_close ();
    wc_vfs_fail (WC_VFS_SYNC, 0, 1, EIO);
    s_stage (f, 100);
    assert_int_equal (wc_engine_commit (f->engine), 0);
    gate_wait_hold (0);                    //  job 1: held, then fails
    wc_vfs_fail (WC_VFS_OPEN, 0, -1, EMFILE);
    s_stage (f, 100);
    assert_int_equal (wc_engine_commit (f->engine), 0);
    assert_int_equal (wc_engine_applied (f->engine), 0);
    gate_open ();
    for (int i = 0; i < 100 && !wc_engine_failed (f->engine); i++) {
        zmq_pollitem_t item = { wc_engine_sync_socket (f->engine), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) > 0)
            wc_engine_on_sync (f->engine);
    }
    assert_true (wc_engine_failed (f->engine));
    assert_int_equal (wc_engine_applied (f->engine), 0);
    assert_int_equal (f->napplied, 0);
    assert_int_equal (wc_engine_stage (f->engine, &(wc_entry_t) { .seq = 3 }, "x", 1),
                      WALCAST_EIO);
    assert_int_equal (wc_engine_commit (f->engine), WALCAST_EIO);
    wc_vfs_reset ();
}

/*  Steady load under --fsync always: at every moment some tail of the
    log waits for its sync, so the engine's buffer of unapplied entries
    is never empty; what was applied long ago must not stay in it. Each
    round commits a batch whose sync is held, then takes the result of
    the batch before it. */
static void
test_pending_stays_bounded (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_open (f, WC_FSYNC_ALWAYS, 0);
    //  First the segment's creation and its directory sync, so that each
    //  round's job is one sync of one file
    s_stage (f, 200);
    assert_int_equal (wc_engine_commit (f->engine), 0);
    s_wait_durable (f, 1);
    size_t most = 0;
    uint64_t done = 1;
    for (int round = 0; round < 300; round++) {
        gate_close ();
        uint64_t holds = gate_holds ();
        for (int i = 0; i < 64; i++)
            s_stage (f, 200);
        assert_int_equal (wc_engine_commit (f->engine), 0);
        gate_wait_hold (holds);           //  this batch's sync is held...
        s_wait_durable (f, done);           //  ...the one before it is done
        assert_true (wc_engine_applied (f->engine) >= done);
        size_t bytes = wc_engine_pending_bytes (f->engine);
        most = bytes > most ? bytes : most;
        done = wc_engine_written (f->engine);
        gate_open ();
    }
    s_wait_durable (f, done);
    printf ("most pending: %zu bytes after %llu entries of ~220 bytes\n", most,
            (unsigned long long) done);
    assert_int_equal (wc_engine_applied (f->engine), done);
    //  4.2 MB if nothing applied were given back
    assert_true (most < 1024u * 1024u);
}

int
main (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/test_engine.%d", (int) getpid ());
    wc_log_set_level (WC_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_commit_applies, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_partial_commit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_always_waits_for_sync, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fallback_waits_for_earlier_syncs,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failed_sync_is_final, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_pending_stays_bounded, s_setup, s_teardown),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    char command [256];
    snprintf (command, sizeof command, "rm -rf %s", s_dir);
    if (system (command) != 0)
        rc = 1;
    return rc;
}
