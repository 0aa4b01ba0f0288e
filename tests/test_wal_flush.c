/*  test_wal_flush.c - the WAL's commit contract on a failing disk, and
    its sync jobs.

    What the storage engine relies on: when wc_wal_flush fails, at any
    step (create a segment, write, a write cut short by a full disk, cut a
    partial record back, remove an empty new segment) and with any error
    (ENOSPC, EDQUOT, EIO, EMFILE), it says ENOSPC or EIO, the log holds
    exactly the records up to wc_wal_written (a reopen replays exactly
    those), last_seq is that seq, and writing resumes on the same handle
    as soon as the fault is gone. Flushing never syncs; a sync job names
    every file a sync must cover and the seq it makes durable.

    Faults come from the vfs layer (storage/vfs.h). Each test works in
    its own mkdtemp directory.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walcast.h"
#include "log.h"
#include "vfs.h"
#include "wal.h"
#include "wal_util.h"

#define BASE_LAST   20u         /* the log before the batch: 1..20 */
#define BATCH_LAST  60u         /* the batch: 21..60, across 4+ segments */

static int
setup_dir (void **state)
{
    wc_vfs_reset ();
    return wt_setup_dir (state);
}

static int
teardown_dir (void **state)
{
    wc_vfs_reset ();
    return wt_teardown_dir (state);
}

//  The log 1..BASE_LAST, opened, with BASE_LAST+1..BATCH_LAST buffered.
static wc_wal_t *
s_start (const char *dir)
{
    wt_clear_dir (dir);
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BASE_LAST);
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, BASE_LAST, NULL);
    wt_append_range (wal, BASE_LAST + 1, BATCH_LAST);
    return wal;
}

//  Calls of each operation made by the batch's flush, without faults.
static void
s_count_flush (const char *dir, uint64_t *counts)
{
    wc_wal_t *wal = s_start (dir);
    wc_vfs_reset ();
    assert_int_equal (wc_wal_flush (wal), 0);
    for (int op = 0; op < WC_VFS_NOPS; op++)
        counts [op] = wc_vfs_count ((wc_vfs_op_t) op);
    wc_wal_destroy (&wal);
}

//  After a failed flush: the log holds exactly 1..written, on the handle
//  and on disk, with no partial record; then the fault goes and the same
//  handle writes on. Returns written.
static uint64_t
s_check_after_failure (const char *dir, wc_wal_t *wal, int rc, int want_rc)
{
    assert_int_equal (rc, want_rc);
    uint64_t written = wc_wal_written (wal);
    assert_true (written >= BASE_LAST && written < BATCH_LAST);
    assert_int_equal (wc_wal_last_seq (wal), written);
    assert_true (strlen (wc_wal_last_error (wal)) > 0);
    wt_check_read (wal, 1, SIZE_MAX, (int) written);
    assert_int_equal (wc_wal_read (wal, written + 1, 100, NULL, NULL), 0);
    //  A wrong seq is still refused; the right one is taken.
    uint8_t buf [256];
    assert_int_equal (wc_wal_append (wal, BATCH_LAST + 1, buf, 1), WALCAST_EINVAL);
    wc_vfs_reset ();
    wt_append_range (wal, written + 1, BATCH_LAST + 10);
    assert_int_equal (wc_wal_flush (wal), 0);
    assert_int_equal (wc_wal_written (wal), BATCH_LAST + 10);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, BATCH_LAST + 10, NULL);
    wt_check_read (wal, 1, SIZE_MAX, BATCH_LAST + 10);
    //  No segment file is left empty.
    uint64_t seqs [64];
    size_t n = wt_segments (dir, seqs, 64);
    for (size_t i = 0; i < n; i++)
        assert_true (wt_file_size (wt_path (dir, seqs [i])) > 0);
    wc_wal_destroy (&wal);
    return written;
}

//  Reopen dir while wal is still open and check it replays 1..written.
static void
s_check_disk (const char *dir, uint64_t written)
{
    wc_wal_info_t info;
    wc_wal_t *other = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, written, &info);
    assert_int_equal (info.truncated_bytes, 0);
    assert_false (info.damaged);
    wc_wal_destroy (&other);
}

static void
test_flush_never_syncs (void **state)
{
    const char *dir = (const char *) *state;
    uint64_t counts [WC_VFS_NOPS];
    s_count_flush (dir, counts);
    //  The batch crosses several segments: several creates, no sync.
    assert_true (counts [WC_VFS_OPEN] >= 3);
    assert_true (counts [WC_VFS_WRITE] >= 4);
    assert_int_equal (counts [WC_VFS_SYNC], 0);
    assert_int_equal (counts [WC_VFS_RENAME], 0);
    assert_int_equal (counts [WC_VFS_UNLINK], 0);
    assert_int_equal (counts [WC_VFS_TRUNCATE], 0);
}

//  Fail each call of op in turn, with err, for good (a disk that stays
//  full): the flush says want_rc and keeps exactly what it wrote.
static void
s_fail_every_step (const char *dir, wc_vfs_op_t op, int err, int want_rc)
{
    uint64_t counts [WC_VFS_NOPS];
    s_count_flush (dir, counts);
    assert_true (counts [op] > 0);
    uint64_t seen_low = UINT64_MAX, seen_high = 0;
    for (uint64_t step = 0; step < counts [op]; step++) {
        wc_wal_t *wal = s_start (dir);
        wc_vfs_reset ();
        wc_vfs_fail (op, step, -1, err);
        int rc = wc_wal_flush (wal);
        //  Still failing: another try fails the same way, losing nothing.
        uint64_t written = wc_wal_written (wal);
        uint8_t buf [256];
        if (wc_vfs_count (op) > step) {
            assert_int_equal (wc_wal_append (wal, written + 1, buf,
                                             wt_payload (written + 1, buf)), 0);
            assert_int_equal (wc_wal_flush (wal), want_rc);
            assert_int_equal (wc_wal_written (wal), written);
        }
        wc_vfs_reset ();
        s_check_disk (dir, written);
        written = s_check_after_failure (dir, wal, rc, want_rc);
        seen_low = written < seen_low ? written : seen_low;
        seen_high = written > seen_high ? written : seen_high;
    }
    //  Failing early and late keeps less and more of the batch.
    assert_true (seen_low < seen_high || counts [op] == 1);
}

static void
test_fail_create (void **state)
{
    const char *dir = (const char *) *state;
    s_fail_every_step (dir, WC_VFS_OPEN, EMFILE, WALCAST_EIO);
    s_fail_every_step (dir, WC_VFS_OPEN, ENOSPC, WALCAST_ENOSPC);
    s_fail_every_step (dir, WC_VFS_OPEN, EIO, WALCAST_EIO);
}

static void
test_fail_write (void **state)
{
    const char *dir = (const char *) *state;
    s_fail_every_step (dir, WC_VFS_WRITE, ENOSPC, WALCAST_ENOSPC);
    s_fail_every_step (dir, WC_VFS_WRITE, EDQUOT, WALCAST_ENOSPC);
    s_fail_every_step (dir, WC_VFS_WRITE, EFBIG, WALCAST_ENOSPC);
    s_fail_every_step (dir, WC_VFS_WRITE, EIO, WALCAST_EIO);
}

//  Every write cut short in turn, at several points of a record: the
//  part of a record that landed is cut back.
static void
test_fail_short_write (void **state)
{
    const char *dir = (const char *) *state;
    uint64_t counts [WC_VFS_NOPS];
    s_count_flush (dir, counts);
    size_t keeps [] = { 1, 5, 16, 16 + 3, 200, 400, 777 };
    int errs [] = { ENOSPC, EIO };
    for (uint64_t step = 0; step < counts [WC_VFS_WRITE]; step++)
        for (size_t k = 0; k < sizeof keeps / sizeof keeps [0]; k++) {
            int err = errs [(step + k) % 2];
            wc_wal_t *wal = s_start (dir);
            wc_vfs_reset ();
            wc_vfs_fail_short_write (step, keeps [k], err);
            int rc = wc_wal_flush (wal);
            wc_vfs_reset ();
            uint64_t written = wc_wal_written (wal);
            //  The last segment ends with the last whole record.
            uint64_t seqs [64];
            size_t n = wt_segments (dir, seqs, 64);
            assert_int_equal (wt_file_size (wt_path (dir, seqs [n - 1])),
                              (int64_t) wt_offset_of (seqs [n - 1], written + 1));
            s_check_disk (dir, written);
            s_check_after_failure (dir, wal, rc, err == ENOSPC ? WALCAST_ENOSPC
                                                               : WALCAST_EIO);
        }
}

//  A short write whose partial record cannot be cut back (ftruncate
//  fails too): the flush still reports the exact prefix, and the next
//  flush cuts the leftover before it writes.
static void
test_fail_cut_back (void **state)
{
    const char *dir = (const char *) *state;
    uint64_t counts [WC_VFS_NOPS];
    s_count_flush (dir, counts);
    int leftovers = 0;
    for (uint64_t step = 0; step < counts [WC_VFS_WRITE]; step++) {
        wc_wal_t *wal = s_start (dir);
        wc_vfs_reset ();
        wc_vfs_fail_short_write (step, 30, ENOSPC);
        wc_vfs_fail (WC_VFS_TRUNCATE, 0, -1, EIO);
        int rc = wc_wal_flush (wal);
        assert_int_equal (rc, WALCAST_ENOSPC);
        uint64_t written = wc_wal_written (wal);
        //  The leftover of a record is there...
        uint64_t seqs [64];
        size_t n = wt_segments (dir, seqs, 64);
        uint64_t last_first = seqs [n - 1];
        int64_t size = wt_file_size (wt_path (dir, last_first));
        int64_t whole = (int64_t) wt_offset_of (last_first, written + 1);
        assert_true (size >= whole);
        if (size > whole) {
            leftovers++;
            //  ... the next flush cannot cut it either: it writes nothing.
            uint8_t buf [256];
            assert_int_equal (wc_wal_append (wal, written + 1, buf,
                                             wt_payload (written + 1, buf)), 0);
            assert_int_equal (wc_wal_flush (wal), WALCAST_EIO);
            assert_int_equal (wc_wal_written (wal), written);
            assert_int_equal (wt_file_size (wt_path (dir, last_first)), size);
        }
        //  Once truncate works the leftover goes first.
        s_check_after_failure (dir, wal, rc, WALCAST_ENOSPC);
    }
    assert_true (leftovers > 0);
}

//  A new segment whose first write fails is removed; when even that
//  fails, the next flush removes it before it goes on.
static void
test_fail_remove_empty (void **state)
{
    const char *dir = (const char *) *state;
    uint64_t counts [WC_VFS_NOPS];
    s_count_flush (dir, counts);
    int left_empty = 0;
    for (uint64_t step = 0; step < counts [WC_VFS_WRITE]; step++) {
        wc_wal_t *wal = s_start (dir);
        wc_vfs_reset ();
        wc_vfs_fail (WC_VFS_WRITE, step, -1, ENOSPC);
        wc_vfs_fail (WC_VFS_UNLINK, 0, -1, EIO);
        int rc = wc_wal_flush (wal);
        uint64_t written = wc_wal_written (wal);
        uint64_t seqs [64];
        size_t n = wt_segments (dir, seqs, 64);
        bool empty = wt_file_size (wt_path (dir, seqs [n - 1])) == 0;
        if (empty) {
            left_empty++;
            assert_int_equal (seqs [n - 1], written + 1);
        }
        wc_vfs_reset ();
        wc_vfs_fail (WC_VFS_UNLINK, 0, -1, EIO);
        uint8_t buf [256];
        if (empty) {
            assert_int_equal (wc_wal_append (wal, written + 1, buf,
                                             wt_payload (written + 1, buf)), 0);
            assert_int_equal (wc_wal_flush (wal), WALCAST_EIO);
            assert_int_equal (wc_wal_written (wal), written);
        }
        s_check_after_failure (dir, wal, rc, WALCAST_ENOSPC);
    }
    assert_true (left_empty > 0);
}

//  The case: a batch that crosses a segment boundary and half
//  fails (no descriptor left for the new segment).
static void
test_half_failed_batch (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, 3);
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, 3, NULL);
    uint64_t last = 3;
    while (wt_offset_of (1, last + 1) < WT_SMALL_SEGMENT)
        last++;         //  record last passes the segment size
    wt_append_range (wal, 4, last + 5);
    wc_vfs_fail (WC_VFS_OPEN, 0, -1, EMFILE);
    assert_int_equal (wc_wal_flush (wal), WALCAST_EIO);
    char name [64];
    snprintf (name, sizeof name, "cannot create %s", wt_name (last + 1));
    assert_non_null (strstr (wc_wal_last_error (wal), name));
    assert_non_null (strstr (wc_wal_last_error (wal), "Too many open files"));
    //  The first segment's records are all in; the new segment's are not.
    assert_int_equal (wc_wal_written (wal), last);
    assert_int_equal (wc_wal_last_seq (wal), last);
    wt_check_read (wal, 1, SIZE_MAX, (int) last);
    //  Still no descriptor: the next batch fails whole, nothing changes.
    wt_append_range (wal, last + 1, last + 3);
    assert_int_equal (wc_wal_flush (wal), WALCAST_EIO);
    assert_int_equal (wc_wal_written (wal), last);
    //  Descriptors come back: the same handle goes on.
    wc_vfs_reset ();
    wt_append_range (wal, last + 1, last + 30);
    assert_int_equal (wc_wal_flush (wal), 0);
    assert_int_equal (wc_wal_written (wal), last + 30);
    assert_string_equal (wc_wal_last_error (wal), "");
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, last + 30, NULL);
    wc_wal_destroy (&wal);
}

//  A disk that stays full for a while: every flush fails, nothing is
//  lost, and writing resumes without a reopen when space comes back.
static void
test_full_disk_episode (void **state)
{
    const char *dir = (const char *) *state;
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 0, 0, NULL);
    wt_append_range (wal, 1, 100);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_vfs_fail (WC_VFS_WRITE, 0, -1, ENOSPC);
    for (int round = 0; round < 5; round++) {
        wt_append_range (wal, 101, 110);
        assert_int_equal (wc_wal_flush (wal), WALCAST_ENOSPC);
        assert_int_equal (wc_wal_written (wal), 100);
        assert_int_equal (wc_wal_last_seq (wal), 100);
        assert_non_null (strstr (wc_wal_last_error (wal), "No space left on device"));
    }
    wc_vfs_reset ();
    wt_append_range (wal, 101, 200);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, 200, NULL);
    wc_wal_destroy (&wal);
}


//  --------------------------------------------------------------------
//  Sync jobs

//  The file behind fd is dir/name.
static bool
s_fd_is (int fd, const char *dir, const char *name)
{
    char path [512];
    snprintf (path, sizeof path, "%s%s%s", dir, name ? "/" : "", name ? name : "");
    struct stat a, b;
    return fstat (fd, &a) == 0 && stat (path, &b) == 0
        && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

//  Does the job hold a descriptor of dir/name (name NULL: dir itself)?
static bool
s_job_has (const wc_wal_sync_job_t *job, const char *dir, const char *name)
{
    for (size_t i = 0; i < job->nfds; i++)
        if (s_fd_is (job->fds [i], dir, name))
            return true;
    return false;
}

static void
test_sync_jobs (void **state)
{
    const char *dir = (const char *) *state;
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 0, 0, NULL);
    wc_wal_sync_job_t job = { NULL, 0, 0 };
    assert_int_equal (wc_wal_sync_job (wal, &job), 0);
    //  The first segment: its file and the directory.
    wt_append_range (wal, 1, 3);
    assert_int_equal (wc_wal_sync_job (wal, &job), 0);      //  not written yet
    assert_int_equal (wc_wal_flush (wal), 0);
    assert_true (wc_wal_unsynced_bytes (wal) > 0);
    assert_int_equal (wc_wal_sync_job (wal, &job), 1);
    assert_int_equal (job.seq, 3);
    assert_int_equal (job.nfds, 2);
    assert_true (s_job_has (&job, dir, wt_name (1)));
    assert_true (s_job_has (&job, dir, NULL));
    assert_int_equal (wc_wal_unsynced_bytes (wal), 0);
    wc_wal_sync_job_release (&job);
    assert_null (job.fds);
    assert_int_equal (job.nfds, 0);
    wc_wal_sync_job_release (&job);                         //  safe twice
    assert_int_equal (wc_wal_sync_job (wal, &job), 0);
    //  More records in the same segment: just the file.
    wt_append_range (wal, 4, 5);
    assert_int_equal (wc_wal_flush (wal), 0);
    assert_int_equal (wc_wal_sync_job (wal, &job), 1);
    assert_int_equal (job.seq, 5);
    assert_int_equal (job.nfds, 1);
    assert_true (s_job_has (&job, dir, wt_name (1)));
    wc_wal_sync_job_release (&job);
    //  A flush across segments: every file it wrote, and the directory.
    wt_append_range (wal, 6, 60);
    assert_int_equal (wc_wal_flush (wal), 0);
    uint64_t seqs [64];
    size_t n = wt_segments (dir, seqs, 64);
    assert_true (n >= 4);
    assert_int_equal (wc_wal_sync_job (wal, &job), 1);
    assert_int_equal (job.seq, 60);
    assert_int_equal (job.nfds, n + 1);
    for (size_t i = 0; i < n; i++)
        assert_true (s_job_has (&job, dir, wt_name (seqs [i])));
    assert_true (s_job_has (&job, dir, NULL));
    //  The job is plain data: it outlives the log.
    wc_wal_destroy (&wal);
    for (size_t i = 0; i < job.nfds; i++)
        assert_int_equal (fsync (job.fds [i]), 0);
    wc_wal_sync_job_release (&job);
}

static void
test_sync_job_without_descriptors (void **state)
{
    const char *dir = (const char *) *state;
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 0, 0, NULL);
    wt_append_range (wal, 1, 60);
    assert_int_equal (wc_wal_flush (wal), 0);
    //  No descriptor can be made, at any point of the job: nothing changes.
    uint64_t dups = 0;
    wc_wal_sync_job_t job = { NULL, 0, 0 };
    for (uint64_t step = 0; ; step++) {
        wc_vfs_reset ();
        wc_vfs_fail (WC_VFS_OPEN, step, 1, EMFILE);
        int rc = wc_wal_sync_job (wal, &job);
        if (rc == 1) {
            dups = wc_vfs_count (WC_VFS_OPEN);
            break;
        }
        assert_true (rc < 0);
        assert_null (job.fds);
        assert_true (wc_wal_unsynced_bytes (wal) > 0);
    }
    assert_true (dups >= 1);
    wc_vfs_reset ();
    wc_wal_sync_job_release (&job);
    //  wc_wal_sync needs no new descriptor.
    wt_append_range (wal, 61, 120);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_vfs_reset ();
    wc_vfs_fail (WC_VFS_OPEN, 0, -1, EMFILE);
    assert_int_equal (wc_wal_sync_job (wal, &job), WALCAST_EIO);
    assert_int_equal (wc_wal_sync (wal), 0);
    assert_true (wc_vfs_count (WC_VFS_SYNC) >= 2);          //  files and directory
    assert_int_equal (wc_wal_unsynced_bytes (wal), 0);
    wc_vfs_reset ();
    assert_int_equal (wc_wal_sync_job (wal, &job), 0);      //  all synced
    assert_int_equal (wc_wal_sync (wal), 0);
    assert_int_equal (wc_vfs_count (WC_VFS_SYNC), 0);       //  nothing to do
    //  A failed fsync is an error.
    wt_append_range (wal, 121, 122);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_vfs_fail (WC_VFS_SYNC, 0, 1, EIO);
    assert_int_equal (wc_wal_sync (wal), WALCAST_EIO);
    wc_vfs_reset ();
    wc_wal_destroy (&wal);
}

//  After a failed flush a job makes durable exactly what was written.
static void
test_sync_job_after_failure (void **state)
{
    const char *dir = (const char *) *state;
    wc_wal_t *wal = s_start (dir);
    wc_vfs_fail (WC_VFS_WRITE, 2, -1, ENOSPC);
    assert_int_equal (wc_wal_flush (wal), WALCAST_ENOSPC);
    wc_vfs_reset ();
    uint64_t written = wc_wal_written (wal);
    wc_wal_sync_job_t job = { NULL, 0, 0 };
    assert_int_equal (wc_wal_sync_job (wal, &job), 1);
    assert_int_equal (job.seq, written);
    wc_wal_sync_job_release (&job);
    wc_wal_destroy (&wal);
}

int
main (void)
{
    wc_log_set_level (WC_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_flush_never_syncs, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_fail_create, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_fail_write, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_fail_short_write, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_fail_cut_back, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_fail_remove_empty, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_half_failed_batch, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_full_disk_episode, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_sync_jobs, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_sync_job_without_descriptors, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_sync_job_after_failure, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
