/*  test_engine_epochs.c - the engine's history identity: the epoch
    history, EPOCH_END, truncation to a fork point, the diverged marker
    (storage/engine.h).

    What a node relies on: an epoch is on disk before any entry of it, so
    a crash between the two never loses the epoch (and never invents
    entries); entries of an older epoch are refused; EPOCH_END and the
    node's own last seq of an epoch give the fork point; a truncation
    leaves exactly the log, the history and the state as of the cut,
    across restarts and across segments, refuses to cut below what the
    log can rebuild, and leaves a log without a hole whatever step fails;
    the diverged marker survives a restart; the first epoch of an empty
    history picks the cluster id, which a restart keeps and a later epoch
    does not change.

    Each test checks the engine's state against a model replayed on the
    side (engine_util.h).
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
#include "engine.h"
#include "engine_util.h"
#include "log.h"
#include "vfs.h"

static char s_dir [128];

static int
s_setup (void **state)
{
    eu_t *e = calloc (1, sizeof *e);
    eu_init (e, s_dir);
    wc_vfs_reset ();
    *state = e;
    return 0;
}

static int
s_teardown (void **state)
{
    eu_t *e = (eu_t *) *state;
    wc_vfs_reset ();
    eu_fini (e);
    free (e);
    return 0;
}

//  Assert the engine's history is exactly pairs e1, s1, ... (0-ended).
static void
s_assert_epochs (eu_t *e, const uint64_t *pairs)
{
    const wc_epochs_t *h = wc_engine_epochs (e->engine);
    size_t n = 0;
    while (pairs [2 * n])
        n++;
    char text [256];
    if (wc_epochs_count (h) != n)
        fail_msg ("history %s", wc_epochs_text (h, text, sizeof text));
    for (size_t i = 0; i < n; i++)
        if (wc_epochs_items (h) [i].epoch != pairs [2 * i]
        ||  wc_epochs_items (h) [i].first_seq != pairs [2 * i + 1])
            fail_msg ("history %s", wc_epochs_text (h, text, sizeof text));
}

static void
s_assert_end (eu_t *e, uint64_t epoch, uint64_t want_found, uint64_t want_end)
{
    uint64_t found = 99, end = 99;
    assert_int_equal (wc_engine_epoch_end (e->engine, epoch, &found, &end), 0);
    assert_int_equal (found, want_found);
    assert_int_equal (end, want_end);
}

/*  Epochs are written as entries of new epochs are staged and as a
    primary begins one, and read back at open; an older epoch is fenced. */
static void
test_epochs_persisted (void **state)
{
    eu_t *e = (eu_t *) *state;
    eu_open (e);
    assert_int_equal (wc_engine_epoch (e->engine), 0);
    s_assert_end (e, 5, 0, 0);
    eu_load (e, 10, 50, 1);                         //  1..10 in epoch 1
    eu_put (e, 1, 10, 'x', 3);                      //  11 opens epoch 3
    eu_commit (e);
    assert_int_equal (wc_engine_epoch (e->engine), 3);
    assert_int_equal (eu_try_put (e, 1, 10, 'y', 2), WALCAST_EFENCED);
    assert_int_equal (eu_try_put (e, 1, 10, 'y', 1), WALCAST_EFENCED);
    assert_int_equal (wc_engine_next_seq (e->engine), 12);
    assert_int_equal (wc_engine_begin_epoch (e->engine, 3), WALCAST_EINVAL);
    assert_int_equal (wc_engine_begin_epoch (e->engine, 5), 0);    //  at seq 12
    s_assert_epochs (e, (uint64_t []) { 1, 1, 3, 11, 5, 12, 0 });
    eu_close (e);

    eu_open (e);
    s_assert_epochs (e, (uint64_t []) { 1, 1, 3, 11, 5, 12, 0 });
    assert_int_equal (wc_engine_epoch (e->engine), 5);
    eu_assert_state (e, 11);
    s_assert_end (e, 0, 0, 0);
    s_assert_end (e, 1, 1, 10);
    s_assert_end (e, 2, 1, 10);
    s_assert_end (e, 3, 3, 11);
    s_assert_end (e, 4, 3, 11);
    s_assert_end (e, 5, 5, 11);                     //  the latest: the applied seq
    s_assert_end (e, 9, 5, 11);
    assert_int_equal (wc_engine_epoch_last_seq (e->engine, 1), 10);
    assert_int_equal (wc_engine_epoch_last_seq (e->engine, 3), 11);
    assert_int_equal (wc_engine_epoch_last_seq (e->engine, 0), 0);
    assert_int_equal (eu_try_put (e, 2, 10, 'z', 4), WALCAST_EFENCED);
    eu_put (e, 2, 10, 'z', 5);
    eu_commit (e);
    s_assert_end (e, 5, 5, 12);
}

/*  A crash after the history write and before the entry's: the epoch
    stays (its first seq brought to the log's end + 1), no entry appears;
    a failed history write stages nothing and changes nothing. */
static void
test_epoch_crash_between (void **state)
{
    eu_t *e = (eu_t *) *state;
    eu_open (e);
    eu_load (e, 10, 50, 1);
    //  The history write fails: nothing staged, history unchanged
    wc_vfs_fail (WC_VFS_RENAME, 0, 1, EIO);
    assert_int_equal (eu_try_put (e, 1, 10, 'x', 2), WALCAST_EIO);
    wc_vfs_reset ();
    assert_int_equal (wc_engine_next_seq (e->engine), 11);
    assert_int_equal (wc_engine_epoch (e->engine), 1);
    //  The history is written, then the entry cannot be
    eu_put (e, 1, 10, 'x', 2);
    wc_vfs_fail (WC_VFS_WRITE, 0, -1, ENOSPC);
    assert_int_equal (wc_engine_commit (e->engine), WALCAST_ENOSPC);
    eu_close (e);
    wc_vfs_reset ();

    eu_open (e);
    eu_assert_state (e, 10);
    s_assert_epochs (e, (uint64_t []) { 1, 1, 2, 11, 0 });
    assert_int_equal (eu_try_put (e, 1, 10, 'y', 1), WALCAST_EFENCED);
    s_assert_end (e, 1, 1, 10);
    s_assert_end (e, 2, 2, 10);
}

/*  The log loses a tail the history had epochs in (a power cut under
    --fsync batch): the epochs past its end go, the latest stays. */
static void
test_epochs_fit_a_lost_tail (void **state)
{
    eu_t *e = (eu_t *) *state;
    eu_open (e);
    eu_load (e, 30, 50, 1);
    uint64_t last_whole = 0;                        //  where the log ends then
    for (uint32_t epoch = 2; epoch <= 4; epoch++)
        eu_load (e, 30, 50, epoch);                 //  31, 61, 91
    eu_close (e);
    //  Keep the first two segments only, as a lost tail would
    eu_shell ("ls %s/wal-*.log | tail -n +3 | xargs rm", e->dir);
    eu_open (e);
    last_whole = wc_engine_applied (e->engine);
    assert_true (last_whole > 31 && last_whole < 90);
    eu_assert_state (e, last_whole);
    uint64_t want [10] = { 1, 1 }, *w = want + 2;
    for (uint64_t epoch = 2, first = 31; epoch <= 3; epoch++, first += 30)
        if (first <= last_whole + 1) {
            *w++ = epoch;
            *w++ = first;
        }
    *w++ = 4;
    *w++ = last_whole + 1;                          //  the latest, brought down
    s_assert_epochs (e, want);
    eu_put (e, 1, 5, 'q', 4);
    eu_commit (e);
    eu_close (e);
    eu_open (e);
    s_assert_epochs (e, want);
    eu_assert_state (e, last_whole + 1);
}

/*  eu_truncate (e, seq) with what it logs caught in said (size bytes). */
static int
s_truncate_said (eu_t *e, uint64_t seq, char *said, size_t size)
{
    fflush (stderr);
    FILE *catch = tmpfile ();
    assert_non_null (catch);
    int saved = dup (STDERR_FILENO);
    assert_true (saved >= 0);
    assert_true (dup2 (fileno (catch), STDERR_FILENO) >= 0);
    wc_log_level_t level = wc_log_get_level ();
    wc_log_set_level (WC_LOG_INFO);
    int rc = eu_truncate (e, seq);
    wc_log_set_level (level);
    fflush (stderr);
    dup2 (saved, STDERR_FILENO);
    close (saved);
    rewind (catch);
    size_t got = fread (said, 1, size - 1, catch);
    said [got] = 0;
    fclose (catch);
    fprintf (stderr, "%s", said);
    return rc;
}

/*  A truncation across segments: the log, the history and the state are
    those of the cut, after a restart too, and writing goes on from it. */
static void
test_truncate (void **state)
{
    eu_t *e = (eu_t *) *state;
    eu_open (e);
    eu_load (e, 300, 40, 1);
    eu_load (e, 300, 40, 2);                        //  epoch 2 from 301
    assert_true (eu_count_files (e->dir, "wal-") > 10);
    assert_int_equal (eu_truncate (e, 601), WALCAST_EINVAL);
    eu_put (e, 3, 10, 's', 2);                      //  staged, dropped by the cut
    assert_int_equal (eu_truncate (e, 450), 0);
    eu_assert_state (e, 450);
    assert_int_equal (wc_engine_durable (e->engine), 450);
    s_assert_epochs (e, (uint64_t []) { 1, 1, 2, 301, 0 });
    assert_int_equal (eu_truncate (e, 200), 0);
    eu_assert_state (e, 200);
    s_assert_epochs (e, (uint64_t []) { 1, 1, 0 });
    assert_int_equal (wc_engine_epoch (e->engine), 1);
    eu_load (e, 10, 40, 1);                         //  epoch 1 is fine again
    eu_load (e, 10, 40, 7);
    eu_close (e);

    eu_open (e);
    eu_assert_state (e, 220);
    s_assert_epochs (e, (uint64_t []) { 1, 1, 7, 211, 0 });
    char said [1024];
    assert_int_equal (s_truncate_said (e, 220, said, sizeof said), 0);  //  nothing to cut
    eu_assert_state (e, 220);
    assert_null (strstr (said, "are gone"));        //  no empty range called lost
    assert_non_null (strstr (said, "nothing after it"));
    assert_int_equal (eu_truncate (e, 0), 0);       //  everything
    eu_assert_state (e, 0);
    assert_int_equal (wc_engine_epoch (e->engine), 0);
    assert_int_equal (eu_count_files (e->dir, "wal-"), 0);
    eu_load (e, 5, 40, 8);
    eu_close (e);
    eu_open (e);
    eu_assert_state (e, 5);
    s_assert_epochs (e, (uint64_t []) { 8, 1, 0 });
}

/*  Under --fsync always, with syncs in flight: the truncation waits for
    them, and the syncs after it count from the cut. */
static void
test_truncate_always (void **state)
{
    eu_t *e = (eu_t *) *state;
    e->cfg.fsync = WC_FSYNC_ALWAYS;
    eu_open (e);
    eu_load (e, 100, 20, 1);
    assert_int_equal (eu_truncate (e, 60), 0);
    eu_assert_state (e, 60);
    eu_load (e, 20, 20, 2);
    for (int i = 0; i < 100 && wc_engine_applied (e->engine) < 80; i++) {
        zmq_pollitem_t item = { wc_engine_sync_socket (e->engine), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) > 0)
            assert_int_equal (wc_engine_on_sync (e->engine), 0);
    }
    eu_assert_state (e, 80);
    assert_int_equal (wc_engine_durable (e->engine), 80);
}

/*  A snapshot in the way: once the log no longer reaches back past the
    snapshot, nothing below it can be rebuilt (ERANGE, nothing changes);
    with the log still there, a cut below a snapshot removes it and
    rebuilds from the log, and a cut above one rebuilds from it. */
static void
test_truncate_and_snapshots (void **state)
{
    eu_t *e = (eu_t *) *state;
    eu_open (e);
    eu_load (e, 200, 30, 1);
    assert_int_equal (eu_snapshot (e), 200);
    eu_load (e, 100, 30, 2);
    assert_int_equal (wc_engine_truncate_floor (e->engine), 0);
    assert_int_equal (eu_truncate (e, 250), 0);     //  from snapshot 200
    eu_assert_state (e, 250);
    assert_int_equal (wc_engine_snapshot_seq (e->engine), 200);
    assert_int_equal (eu_truncate (e, 150), 0);     //  below it: from seq 1
    eu_assert_state (e, 150);
    assert_int_equal (wc_engine_snapshot_seq (e->engine), 0);
    assert_int_equal (eu_count_files (e->dir, "snapshot-"), 0);
    eu_close (e);

    //  Now the log keeps nothing the snapshot covers
    e->cfg.retain_bytes = 1;
    eu_open (e);
    eu_assert_state (e, 150);
    eu_load (e, 150, 30, 1);
    assert_int_equal (eu_snapshot (e), 300);
    uint64_t first = wc_engine_first_seq (e->engine);
    assert_true (first > 250 && first <= 301);
    eu_load (e, 50, 30, 1);
    assert_int_equal (wc_engine_truncate_floor (e->engine), 300);
    assert_int_equal (eu_truncate (e, 299), WALCAST_ERANGE);
    eu_assert_state (e, 350);
    assert_int_equal (eu_truncate (e, 320), 0);
    eu_assert_state (e, 320);
    eu_close (e);
    eu_open (e);
    eu_assert_state (e, 320);
    assert_false (e->info.missing_start);
}

/*  Each step of a truncation fails in turn. The call says so; after a
    restart the engine holds a whole prefix of the old log (the old one,
    the cut one, or one in between), with the matching state and history,
    and a second truncation finishes the job. */
static void
test_truncate_faults (void **state)
{
    eu_t *e = (eu_t *) *state;
    struct { wc_vfs_op_t op; uint64_t after; int err; } faults [] = {
        { WC_VFS_OPEN, 0, EMFILE }, { WC_VFS_WRITE, 0, ENOSPC }, { WC_VFS_RENAME, 0, EIO },
        { WC_VFS_SYNC, 0, EIO }, { WC_VFS_SYNC, 2, EIO }, { WC_VFS_UNLINK, 0, EIO },
        { WC_VFS_UNLINK, 3, EIO }, { WC_VFS_SYNC, 5, EIO }, { WC_VFS_TRUNCATE, 0, EIO },
        { WC_VFS_READ, 0, EIO },
    };
    for (size_t k = 0; k < sizeof faults / sizeof faults [0]; k++) {
        eu_shell ("rm -rf %s", e->dir);
        memset (e->ops, 0, (EU_MAX_OPS + 1) * sizeof *e->ops);
        eu_open (e);
        eu_load (e, 200, 30, 1);
        eu_load (e, 200, 30, 2);
        wc_vfs_fail (faults [k].op, faults [k].after, -1, faults [k].err);
        int rc = eu_truncate (e, 150);
        wc_vfs_reset ();
        assert_true (rc != 0);
        eu_close (e);
        eu_open (e);
        uint64_t at = wc_engine_applied (e->engine);
        assert_true (at >= 150 && at <= 400);
        eu_assert_state (e, at);
        assert_int_equal (wc_engine_epoch (e->engine), at >= 201 ? 2 : 1);
        assert_int_equal (eu_truncate (e, 150), 0);
        eu_assert_state (e, 150);
        s_assert_epochs (e, (uint64_t []) { 1, 1, 0 });
        eu_close (e);
    }
}

/*  The diverged marker: set, and still there after a restart. */
static void
test_diverged (void **state)
{
    eu_t *e = (eu_t *) *state;
    eu_open (e);
    char why [128] = "unchanged";
    assert_false (wc_engine_diverged (e->engine, why, sizeof why));
    assert_string_equal (why, "unchanged");
    wc_vfs_fail (WC_VFS_SYNC, 0, 1, EIO);
    assert_int_equal (wc_engine_set_diverged (e->engine, "fork at 10"), WALCAST_EIO);
    wc_vfs_reset ();
    assert_false (wc_engine_diverged (e->engine, NULL, 0));
    assert_int_equal (wc_engine_set_diverged (e->engine, "fork at 10 below snapshot 20\nx"), 0);
    assert_true (wc_engine_diverged (e->engine, why, sizeof why));
    assert_string_equal (why, "fork at 10 below snapshot 20");
    eu_close (e);
    eu_open (e);
    assert_true (wc_engine_diverged (e->engine, why, sizeof why));
    assert_string_equal (why, "fork at 10 below snapshot 20");
}

//  The text of the directory's file "cluster" ("" when none).
static void
s_cluster_file (char *buf, size_t size)
{
    char path [256];
    snprintf (path, sizeof path, "%s/cluster", s_dir);
    buf [0] = '\0';
    FILE *f = fopen (path, "r");
    if (!f)
        return;
    size_t got = fread (buf, 1, size - 1, f);
    buf [got] = '\0';
    fclose (f);
}

/*  The cluster id: none in a new directory; the first epoch picks one
    (on disk as 16 hex digits before the epoch is); a restart and later
    epochs keep it; a replica's (set) is kept the same way; a damaged file
    is no id, not a failed open; a failed write changes nothing. */
static void
test_cluster_id (void **state)
{
    eu_t *e = (eu_t *) *state;
    eu_open (e);
    char text [64];
    assert_true (wc_engine_cluster (e->engine) == 0);
    s_cluster_file (text, sizeof text);
    assert_string_equal (text, "");
    //  a failed write: no epoch, no id
    wc_vfs_fail (WC_VFS_SYNC, 0, 1, EIO);
    assert_int_equal (wc_engine_begin_epoch (e->engine, 1), WALCAST_EIO);
    wc_vfs_reset ();
    assert_true (wc_engine_cluster (e->engine) == 0);
    assert_true (wc_engine_epoch (e->engine) == 0);
    assert_int_equal (wc_engine_begin_epoch (e->engine, 1), 0);
    uint64_t id = wc_engine_cluster (e->engine);
    assert_true (id != 0);
    s_cluster_file (text, sizeof text);
    char want [64];
    snprintf (want, sizeof want, "%016llx\n", (unsigned long long) id);
    assert_string_equal (text, want);
    eu_put (e, 1, 10, 'a', 1);
    eu_commit (e);
    assert_int_equal (wc_engine_begin_epoch (e->engine, 2), 0);
    assert_true (wc_engine_cluster (e->engine) == id);
    eu_close (e);
    eu_open (e);
    assert_true (wc_engine_cluster (e->engine) == id);
    //  set: the same id is nothing to do; another replaces it, durably
    assert_int_equal (wc_engine_set_cluster (e->engine, id), 0);
    assert_int_equal (wc_engine_set_cluster (e->engine, 0), WALCAST_EINVAL);
    assert_int_equal (wc_engine_set_cluster (e->engine, 0xabcdefull), 0);
    eu_close (e);
    eu_open (e);
    assert_true (wc_engine_cluster (e->engine) == 0xabcdefull);
    s_cluster_file (text, sizeof text);
    assert_string_equal (text, "0000000000abcdef\n");
    //  damaged: opened all the same, without an id
    eu_close (e);
    eu_shell ("printf 'not an id\\n' > %s/cluster", s_dir);
    eu_open (e);
    assert_true (wc_engine_cluster (e->engine) == 0);
    eu_close (e);
    eu_shell ("printf '0000000000000000\\n' > %s/cluster", s_dir);
    eu_open (e);
    assert_true (wc_engine_cluster (e->engine) == 0);
    //  and a later epoch of a history that is not empty picks none
    assert_int_equal (wc_engine_begin_epoch (e->engine, 3), 0);
    assert_true (wc_engine_cluster (e->engine) == 0);
}

/*  A restore: a snapshot file alone in an empty data directory (as
    OPERATIONS.md, "Backup and restore", says). The snapshot carries the
    history but not the cluster id, so the history is not empty and no
    id was ever picked: the restored node and the replicas rebuilt from
    it checked nothing. Its first epoch now begins a new cluster (a copy
    must not pass for the original); a restored node that follows an
    upstream takes the upstream's id instead (set before any epoch). A
    data directory with a history file and no id (one of walcast 0.6)
    still picks none (test_cluster_id). */
static void
test_cluster_id_restored (void **state)
{
    eu_t *e = (eu_t *) *state;
    eu_open (e);
    assert_int_equal (wc_engine_begin_epoch (e->engine, 1), 0);
    uint64_t original = wc_engine_cluster (e->engine);
    assert_true (original != 0);
    for (uint32_t k = 0; k < 10; k++)
        eu_put (e, k, 10, 'a', 1);
    eu_commit (e);
    uint64_t seq = eu_snapshot (e);
    assert_true (seq == 10);
    eu_close (e);
    eu_shell ("mkdir %s.keep && mv %s/snapshot-*.snap %s.keep/ && rm -rf %s && "
              "mv %s.keep %s", s_dir, s_dir, s_dir, s_dir, s_dir, s_dir);
    eu_open (e);
    assert_true (wc_engine_applied (e->engine) == 10);
    assert_true (wc_engine_cluster (e->engine) == 0);
    assert_int_equal (wc_engine_begin_epoch (e->engine, 2), 0);
    uint64_t restored = wc_engine_cluster (e->engine);
    assert_true (restored != 0 && restored != original);
    eu_close (e);
    eu_open (e);
    assert_true (wc_engine_cluster (e->engine) == restored);
    assert_int_equal (wc_engine_begin_epoch (e->engine, 3), 0);
    assert_true (wc_engine_cluster (e->engine) == restored);
}

int
main (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/test_engine_epochs.%d", (int) getpid ());
    wc_log_set_level (WC_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_epochs_persisted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_epoch_crash_between, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_epochs_fit_a_lost_tail, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_truncate, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_truncate_always, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_truncate_and_snapshots, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_truncate_faults, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_diverged, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cluster_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cluster_id_restored, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
