/*  test_syncer.c - fsync off the loop thread (storage/syncer.c).

    What the node relies on: the syncer reports durable seqs in order and
    only once everything before them is synced; jobs that queue while a
    sync runs are combined (one sync per distinct file); a failed sync is
    reported as WALCAST_EIO and stays that way; destroying it with jobs
    pending finishes the sync in progress and closes every descriptor.

    The jobs come from a real WAL (storage/wal.c). A vfs hook holds the
    syncer thread inside a sync, so the tests control when it ends without
    any sleep. Run under AddressSanitizer, the suite also checks that
    nothing leaks.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>

#include "walcast.h"
#include "log.h"
#include "syncer.h"
#include "vfs.h"
#include "wal.h"
#include "wal_util.h"

static pthread_t s_main;            /* the test's thread */

//  A gate in the vfs hook: when armed, the next sync made by another
//  thread than the test's waits there until the test opens the gate.
typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool armed;             /* hold the next sync of the syncer thread */
    bool held;              /* a sync is being held */
    bool open;              /* let it go */
} gate_t;

static gate_t s_gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                         false, false, false };

static void
s_gate_hook (wc_vfs_op_t op, int fd, void *arg)
{
    (void) fd;
    gate_t *gate = (gate_t *) arg;
    if (op != WC_VFS_SYNC || pthread_equal (pthread_self (), s_main))
        return;
    pthread_mutex_lock (&gate->mutex);
    if (gate->armed) {
        gate->armed = false;
        gate->held = true;
        pthread_cond_broadcast (&gate->cond);
        while (!gate->open)
            pthread_cond_wait (&gate->cond, &gate->mutex);
    }
    pthread_mutex_unlock (&gate->mutex);
}

static void
s_gate_arm (void)
{
    pthread_mutex_lock (&s_gate.mutex);
    s_gate.armed = true;
    s_gate.held = false;
    s_gate.open = false;
    pthread_mutex_unlock (&s_gate.mutex);
    wc_vfs_set_hook (s_gate_hook, &s_gate);
}

//  Wait (10 s at most) until the syncer thread is held at the gate.
static void
s_gate_wait_held (void)
{
    struct timespec deadline;
    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock (&s_gate.mutex);
    int rc = 0;
    while (!s_gate.held && rc == 0)
        rc = pthread_cond_timedwait (&s_gate.cond, &s_gate.mutex, &deadline);
    bool held = s_gate.held;
    pthread_mutex_unlock (&s_gate.mutex);
    assert_true (held);
}

static void
s_gate_open (void)
{
    pthread_mutex_lock (&s_gate.mutex);
    s_gate.open = true;
    pthread_cond_broadcast (&s_gate.cond);
    pthread_mutex_unlock (&s_gate.mutex);
}

//  Poll the syncer until its result reaches want (10 s at most); returns
//  the results seen, in order, in seen (up to max).
static size_t
s_wait_durable (wc_syncer_t *syncer, uint64_t want, uint64_t *seen, size_t max)
{
    zpoller_t *poller = zpoller_new (wc_syncer_sock (syncer), NULL);
    assert_non_null (poller);
    int64_t deadline = zclock_mono () + 10000;
    size_t n = 0;
    uint64_t last = 0;
    while (last < want) {
        assert_true (zclock_mono () < deadline);
        zpoller_wait (poller, 100);
        uint64_t seq;
        int rc = wc_syncer_result (syncer, &seq);
        assert_true (rc == 0 || rc == 1);
        if (rc == 1) {
            assert_true (seq > last);
            last = seq;
            if (n < max)
                seen [n++] = seq;
        }
    }
    zpoller_destroy (&poller);
    return n;
}

//  Append from..to to wal, flush, and submit the sync job.
static void
s_write_and_submit (wc_wal_t *wal, wc_syncer_t *syncer, uint64_t from, uint64_t to)
{
    wt_append_range (wal, from, to);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_sync_job_t job;
    assert_int_equal (wc_wal_sync_job (wal, &job), 1);
    assert_int_equal (job.seq, to);
    assert_int_equal (wc_syncer_submit (syncer, &job), 0);
    assert_null (job.fds);
    assert_int_equal (job.nfds, 0);
}

static int
setup (void **state)
{
    wc_vfs_reset ();
    return wt_setup_dir (state);
}

static int
teardown (void **state)
{
    wc_vfs_reset ();
    return wt_teardown_dir (state);
}

static void
test_results_in_order (void **state)
{
    const char *dir = (const char *) *state;
    wc_syncer_t *syncer = wc_syncer_new ();
    assert_non_null (syncer);
    uint64_t seq;
    assert_int_equal (wc_syncer_result (syncer, &seq), 0);
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 0, 0, NULL);
    uint64_t last = 0;
    for (int round = 0; round < 20; round++) {
        s_write_and_submit (wal, syncer, last + 1, last + 1 + (uint64_t) round * 3);
        last += 1 + (uint64_t) round * 3;
    }
    assert_int_equal (wc_syncer_wait (syncer, last, 10000), 0);
    uint64_t seen [32];
    size_t n = s_wait_durable (syncer, last, seen, 32);
    assert_true (n >= 1);
    assert_int_equal (seen [n - 1], last);
    //  A seq never submitted is never durable.
    assert_int_equal (wc_syncer_wait (syncer, last + 1, 20), WALCAST_ETIMEOUT);
    assert_int_equal (wc_syncer_wait (syncer, last, 0), 0);
    //  Syncs were made, by the syncer's thread (the test made none).
    assert_true (wc_vfs_count (WC_VFS_SYNC) >= 2);
    //  Nothing new: 0.
    assert_int_equal (wc_syncer_result (syncer, &seq), 0);
    //  Everything the WAL wrote was handed over.
    wc_wal_sync_job_t job;
    assert_int_equal (wc_wal_sync_job (wal, &job), 0);
    wc_wal_destroy (&wal);
    wc_syncer_destroy (&syncer);
    assert_null (syncer);
    wc_syncer_destroy (&syncer);            //  safe twice
}

static void
test_combining (void **state)
{
    const char *dir = (const char *) *state;
    wc_syncer_t *syncer = wc_syncer_new ();
    wc_wal_t *wal = wt_open_expect (dir, 0, 0, 0, NULL);
    //  The first job (the new segment and the directory) is held in its
    //  first sync...
    s_gate_arm ();
    s_write_and_submit (wal, syncer, 1, 10);
    s_gate_wait_held ();
    //  ... while five more jobs on the same segment queue up.
    for (uint64_t k = 0; k < 5; k++)
        s_write_and_submit (wal, syncer, 11 + k * 10, 20 + k * 10);
    s_gate_open ();
    uint64_t seen [8];
    size_t n = s_wait_durable (syncer, 60, seen, 8);
    //  Two rounds: the first job (file + directory: 2 syncs), then the
    //  five others together (one file: 1 sync), not 2 + 5.
    assert_int_equal (wc_vfs_count (WC_VFS_SYNC), 3);
    assert_true (n == 1 || (n == 2 && seen [0] == 10));
    wc_wal_destroy (&wal);
    wc_syncer_destroy (&syncer);
}

static void
test_failure (void **state)
{
    const char *dir = (const char *) *state;
    wc_syncer_t *syncer = wc_syncer_new ();
    wc_wal_t *wal = wt_open_expect (dir, 0, 0, 0, NULL);
    s_write_and_submit (wal, syncer, 1, 5);
    uint64_t seen [4];
    s_wait_durable (syncer, 5, seen, 4);
    //  The next fdatasync fails.
    wc_vfs_fail (WC_VFS_SYNC, 0, 1, EIO);
    s_write_and_submit (wal, syncer, 6, 9);
    zpoller_t *poller = zpoller_new (wc_syncer_sock (syncer), NULL);
    int64_t deadline = zclock_mono () + 10000;
    uint64_t seq = 0;
    int rc;
    while ((rc = wc_syncer_result (syncer, &seq)) == 0) {
        assert_true (zclock_mono () < deadline);
        zpoller_wait (poller, 100);
    }
    zpoller_destroy (&poller);
    assert_int_equal (rc, WALCAST_EIO);
    //  For good: later syncs would prove nothing.
    assert_int_equal (wc_syncer_result (syncer, &seq), WALCAST_EIO);
    assert_int_equal (wc_syncer_wait (syncer, 9, -1), WALCAST_EIO);
    wt_append_range (wal, 10, 12);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_sync_job_t job;
    assert_int_equal (wc_wal_sync_job (wal, &job), 1);
    assert_int_equal (wc_syncer_submit (syncer, &job), WALCAST_EIO);
    assert_non_null (job.fds);              //  still the caller's
    wc_wal_sync_job_release (&job);
    assert_int_equal (wc_syncer_result (syncer, &seq), WALCAST_EIO);
    wc_wal_destroy (&wal);
    wc_syncer_destroy (&syncer);
}

//  Opens the gate from another thread once the test is inside destroy
//  (or about to be): destroy must wait for the held sync to finish.
static void *
s_opener (void *arg)
{
    bool *opened = (bool *) arg;
    pthread_mutex_lock (&s_gate.mutex);
    *opened = true;
    s_gate.open = true;
    pthread_cond_broadcast (&s_gate.cond);
    pthread_mutex_unlock (&s_gate.mutex);
    return NULL;
}

static void
test_destroy_with_jobs_pending (void **state)
{
    const char *dir = (const char *) *state;
    wc_syncer_t *syncer = wc_syncer_new ();
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 0, 0, NULL);
    s_gate_arm ();
    s_write_and_submit (wal, syncer, 1, 10);
    s_gate_wait_held ();
    //  Jobs that will never run; remember their descriptors.
    int fds [64];
    size_t nfds = 0;
    for (uint64_t k = 0; k < 8; k++) {
        wt_append_range (wal, 11 + k * 10, 20 + k * 10);
        assert_int_equal (wc_wal_flush (wal), 0);
        wc_wal_sync_job_t job;
        assert_int_equal (wc_wal_sync_job (wal, &job), 1);
        for (size_t i = 0; i < job.nfds && nfds < 64; i++)
            fds [nfds++] = job.fds [i];
        assert_int_equal (wc_syncer_submit (syncer, &job), 0);
    }
    bool opened = false;
    pthread_t opener;
    assert_int_equal (pthread_create (&opener, NULL, s_opener, &opened), 0);
    wc_syncer_destroy (&syncer);
    //  Destroy returned after the held sync went on, and every job's
    //  descriptors are closed (nothing else opens files meanwhile).
    pthread_join (opener, NULL);
    assert_true (opened);
    for (size_t i = 0; i < nfds; i++)
        assert_true (fcntl (fds [i], F_GETFD) == -1 && errno == EBADF);
    wc_wal_destroy (&wal);
}

static void
test_destroy_idle (void **state)
{
    (void) state;
    //  A syncer that never got a job, and one whose results were never read.
    wc_syncer_t *syncer = wc_syncer_new ();
    wc_syncer_destroy (&syncer);
    const char *dir = (const char *) *state;
    syncer = wc_syncer_new ();
    wc_wal_t *wal = wt_open_expect (dir, 0, 0, 0, NULL);
    for (uint64_t k = 0; k < 50; k++)
        s_write_and_submit (wal, syncer, 1 + k, 1 + k);
    wc_wal_destroy (&wal);
    wc_syncer_destroy (&syncer);
}

int
main (void)
{
    s_main = pthread_self ();
    wc_log_set_level (WC_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_results_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown (test_combining, setup, teardown),
        cmocka_unit_test_setup_teardown (test_failure, setup, teardown),
        cmocka_unit_test_setup_teardown (test_destroy_with_jobs_pending, setup, teardown),
        cmocka_unit_test_setup_teardown (test_destroy_idle, setup, teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
