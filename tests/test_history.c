/*  test_history.c - history identity on real nodes, without a broker.

    What a user relies on (issue 7):

    - a primary that loses the unsynced tail of its log (a power cut
      under --fsync batch), restarts and takes new writes before its
      replica hears from it: the restart begins a new epoch, and the
      replica finds the fork point exactly, drops the entries the primary
      lost and converges on the primary's new history;
    - a replica that was down while its primary's log moved past what the
      primary retains catches up from the primary's snapshot, installed
      atomically, then from the log; digests equal;
    - `walcast snapshot` takes a snapshot on demand and prints SEQ BYTES,
      and says at once when there is nothing to take;
    - a relay emptied by an operator catches up again, and the replica
      behind it waits for it rather than diverging.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cluster.h"
#include "engine.h"

#define WAIT_MS  60000

static int
s_setup (void **state)
{
    *state = cluster_new ("history");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

static cluster_t *
s_cluster (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    return c;
}

/*  What a power cut does to a log whose last entries were not synced:
    open node i's data directory (the node is down) and drop every entry
    after seq, as the storage engine would find it. */
static void
s_lose_tail (cluster_t *c, int i, uint64_t seq)
{
    wc_engine_config_t cfg = { .dir = cluster_data_path (c, i), .fsync = WC_FSYNC_BATCH,
                               .owner = "test_history" };
    wc_engine_info_t info;
    char why [512];
    int err = 0;
    wc_engine_t *engine = wc_engine_open (&cfg, &info, &err, why, sizeof why);
    if (!engine)
        fail_msg ("cannot open %s: %s", cfg.dir, why);
    assert_int_equal (wc_engine_truncate (engine, seq), 0);
    assert_int_equal (wc_engine_close (engine), 0);
    wc_engine_destroy (&engine);
}

/*  The primary loses its unsynced tail (entries 901..1000), restarts (a
    new epoch) and takes 50 new writes (901..950) before its replica,
    which holds 1..1000, hears from it. The replica must drop exactly
    901..1000 and take the primary's 901..950. */
static void
test_fork_found_after_lost_tail (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    int both [] = { p, r };
    for (int i = 0; i < 2; i++)
        assert_int_equal (cluster_start (c, both [i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal (cluster_wait_ready (c, both [i], WAIT_MS), 0);
    assert_int_equal (cluster_load (c, p, 0, 1000, 1, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, both, 2, 1000, WAIT_MS, NULL, NULL), 0);

    //  The replica is cut off from the primary while it restarts: it must
    //  not hear of the new epoch before the new writes are in
    assert_int_equal (cluster_signal (c, r, SIGSTOP), 0);
    assert_int_equal (cluster_kill (c, p), 0);
    s_lose_tail (c, p, 900);
    long pmark = cluster_log_mark (c, p);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, WAIT_MS), 0);
    assert_int_equal (cluster_wait_log (c, p, "primary p1 (region -) at seq 900, epoch ",
                                        pmark, WAIT_MS), 0);
    assert_int_equal (cluster_load (c, p, 2000, 50, 2, NULL), 0);
    long rmark = cluster_log_mark (c, r);
    assert_int_equal (cluster_signal (c, r, SIGCONT), 0);

    assert_int_equal (cluster_wait_log (c, r, "history: 127.0.0.1", rmark, WAIT_MS), 0);
    char line [512];
    assert_int_equal (cluster_log_find (c, r, "history:", rmark, 0, line, sizeof line), 0);
    print_message ("r1: %s\n", line);
    assert_non_null (strstr (line, "forks from ours after seq 900; dropped our entries "
                                   "901..1000"));
    assert_int_equal (cluster_wait_converged (c, both, 2, 950, WAIT_MS, NULL, NULL), 0);
    //  What the primary lost is gone from the replica; what it kept and
    //  what it wrote since are there
    assert_int_equal (cluster_check_key (c, r, 899, 1), 0);
    assert_int_equal (cluster_check_key (c, r, 2049, 2), 0);
    assert_int_not_equal (cluster_check_key (c, r, 900, 1), 0);
    assert_int_equal (cluster_log_count (c, r, "diverged:", rmark), 0);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  A replica down while 50,000 writes pass the primary's retention
    bound restarts and resyncs from a snapshot. */
static void
test_snapshot_resync (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    static const char *const p_flags [] = { "--segment-bytes", "65536", "--retain-bytes",
                                            "262144", "--snapshot-every", "20000", NULL };
    cluster_set_extra (c, p, p_flags);
    int both [] = { p, r };
    for (int i = 0; i < 2; i++)
        assert_int_equal (cluster_start (c, both [i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal (cluster_wait_ready (c, both [i], WAIT_MS), 0);
    assert_int_equal (cluster_load (c, p, 0, 1000, 1, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, both, 2, 1000, WAIT_MS, NULL, NULL), 0);

    assert_int_equal (cluster_kill (c, r), 0);
    long pmark = cluster_log_mark (c, p);
    for (int round = 0; round < 5; round++)
        assert_int_equal (cluster_load (c, p, round * 10000, 10000, 2, NULL), 0);
    //  On demand too: `walcast snapshot` prints SEQ BYTES
    char *out = NULL;
    char node_arg [64];
    snprintf (node_arg, sizeof node_arg, "%s", cluster_addr (c, p));
    assert_int_equal (cluster_cli (c, NULL, &out, NULL, "--node", node_arg, "snapshot",
                                   NULL), 0);
    unsigned long long seq = 0, bytes = 0;
    assert_int_equal (sscanf (out, "%llu %llu", &seq, &bytes), 2);
    print_message ("walcast snapshot: %s", out);
    free (out);
    assert_int_equal (seq, 51000);
    assert_true (bytes > 50000 * 100);
    assert_true (cluster_log_count (c, p, "snapshot", pmark) >= 2);

    long rmark = cluster_log_mark (c, r);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_converged (c, both, 2, 51000, WAIT_MS, NULL, NULL), 0);
    assert_int_equal (cluster_log_count (c, r, "snapshot: installed seq", rmark), 1);
    assert_int_equal (cluster_check_key (c, r, 49999, 2), 0);
    assert_int_equal (cluster_check_key (c, r, 0, 2), 0);

    //  The installed snapshot and the log after it survive a restart
    assert_int_equal (cluster_kill (c, r), 0);
    assert_int_equal (cluster_load (c, p, 60000, 100, 3, NULL), 0);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_converged (c, both, 2, 51100, WAIT_MS, NULL, NULL), 0);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  A replica installing a snapshot stays responsive: the install reads
    and checks the file off the node's loop. With every read stalled
    (the fault file: a disk that hangs), an empty replica behind the
    primary's retention downloads the snapshot and begins to install it;
    meanwhile it answers STATUS, and says it is installing. Then the disk
    comes back and it converges. Before, the loop read the whole file
    itself: a 3M-key install froze the node for 5 s, long enough for the
    broker to call it down. */
static void
test_install_off_the_loop (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    static const char *const p_flags [] = { "--segment-bytes", "65536", "--retain-bytes",
                                            "262144", "--snapshot-every", "20000", NULL };
    cluster_set_extra (c, p, p_flags);
    cluster_use_faults (c, r);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, WAIT_MS), 0);
    for (int round = 0; round < 3; round++)
        assert_int_equal (cluster_load (c, p, round * 10000, 10000, 1, NULL), 0);
    char *out = NULL;
    assert_int_equal (cluster_cli (c, NULL, &out, NULL, "--node", cluster_addr (c, p),
                                   "snapshot", NULL), 0);
    free (out);

    //  r1 starts empty (nothing to read) with every read stalled
    assert_int_equal (cluster_set_faults (c, r, "read STALL\n"), 0);
    long rmark = cluster_log_mark (c, r);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_log (c, r, "snapshot: installing seq", rmark, WAIT_MS), 0);
    walcast_status_t status;
    int64_t deadline = cluster_now_ms () + 10000;
    int answered = 0;
    while (answered < 3 && cluster_now_ms () < deadline) {
        if (cluster_status (c, r, &status) == 0)
            answered++;
        cluster_nap_ms (100);
    }
    print_message ("r1 answered %d STATUS while its install was stalled\n", answered);
    assert_int_equal (answered, 3);
    assert_int_equal (cluster_log_count (c, r, "snapshot: installed seq", rmark), 0);

    //  The disk comes back: the install ends, and r1 follows
    assert_int_equal (cluster_set_faults (c, r, ""), 0);
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, 30000, WAIT_MS, NULL, NULL), 0);
    assert_int_equal (cluster_log_count (c, r, "snapshot: installed seq", rmark), 1);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  Kill node i, empty its data directory and start it again; return
    once it takes the log (its first FETCH reply), with a log mark of node
    watcher taken before the start. */
static long
s_restart_empty (cluster_t *c, int i, int watcher)
{
    assert_int_equal (cluster_kill (c, i), 0);
    char command [700];
    snprintf (command, sizeof command, "rm -rf '%s'", cluster_data_path (c, i));
    assert_int_equal (system (command), 0);
    long mark = cluster_log_mark (c, watcher);
    long own = cluster_log_mark (c, i);
    assert_int_equal (cluster_start (c, i), 0);
    //  Its log says so as the first FETCH reply arrives: sooner than a
    //  STATUS could tell
    assert_int_equal (cluster_wait_log (c, i, "catch-up: from seq", own, WAIT_MS), 0);
    return mark;
}

/*  Node i's applied seq once it stops moving (the same twice, 300 ms
    apart): what it holds after what was on its way arrived. */
static uint64_t
s_settled_seq (cluster_t *c, int i)
{
    walcast_status_t status = { .applied_seq = 0 };
    uint64_t last = UINT64_MAX;
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    while (cluster_now_ms () < deadline) {
        if (cluster_status (c, i, &status) == 0) {
            if (status.applied_seq == last)
                return last;
            last = status.applied_seq;
        }
        cluster_nap_ms (300);
    }
    return last;
}

/*  A relay whose data directory an operator emptied catches up again
    from its primary; the replica that follows it waits for it (it is
    behind in their own epoch) instead of diverging, and converges. */
static void
test_relay_resync (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    int relay = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    int leaf = cluster_add (c, "r2", cluster_addr (c, relay), NULL);
    int all [] = { p, relay, leaf };
    for (int i = 0; i < 3; i++)
        assert_int_equal (cluster_start (c, all [i]), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal (cluster_wait_ready (c, all [i], WAIT_MS), 0);
    for (int k = 0; k < 10; k++)
        assert_int_equal (cluster_load (c, p, k * 20000, 20000, 1, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, all, 3, 200000, WAIT_MS, NULL, NULL), 0);

    //  The relay starts over; the primary is frozen once the relay has
    //  some of the log, so the leaf meets a relay behind it. A catch-up
    //  is quick (200,000 entries in well under a second), so the freeze
    //  may land after its end: then the relay starts over again.
    long mark = 0;
    uint64_t held = 200000;
    for (int attempt = 0; attempt < 30 && held >= 200000; attempt++) {
        mark = s_restart_empty (c, relay, leaf);
        assert_int_equal (cluster_signal (c, p, SIGSTOP), 0);
        held = s_settled_seq (c, relay);
        print_message ("primary frozen with the relay at seq %llu of 200000\n",
                       (unsigned long long) held);
        if (held >= 200000)
            assert_int_equal (cluster_signal (c, p, SIGCONT), 0);
    }
    assert_true (held < 200000);
    assert_int_equal (cluster_wait_log (c, leaf, "not following", mark, WAIT_MS), 0);
    assert_int_equal (cluster_signal (c, p, SIGCONT), 0);
    assert_int_equal (cluster_load (c, p, 200000, 100, 1, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, all, 3, 200100, WAIT_MS, NULL, NULL), 0);
    assert_int_equal (cluster_log_count (c, leaf, "diverged:", mark), 0);
    assert_int_equal (cluster_check_key (c, leaf, 200099, 1), 0);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  `walcast snapshot` on a node with nothing applied says so at once. */
static void
test_snapshot_of_nothing (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, WAIT_MS), 0);
    char *out = NULL, *err = NULL;
    int64_t start = cluster_now_ms ();
    int rc = cluster_cli (c, NULL, &out, &err, "--node", cluster_addr (c, p), "snapshot",
                          NULL);
    print_message ("walcast snapshot on an empty node: exit %d in %lld ms: %s", rc,
                   (long long) (cluster_now_ms () - start), err ? err : "");
    assert_int_equal (rc, 3);
    assert_non_null (strstr (err, "nothing applied yet"));
    assert_true (cluster_now_ms () - start < 3000);
    free (out);
    free (err);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_fork_found_after_lost_tail, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_resync, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_install_off_the_loop, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_relay_resync, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_of_nothing, s_setup, s_teardown),
    };
    if (getenv ("WALCAST_TEST_ONLY"))           /* one test, to debug it */
        cmocka_set_test_filter (getenv ("WALCAST_TEST_ONLY"));
    return cmocka_run_group_tests (tests, NULL, NULL);
}
