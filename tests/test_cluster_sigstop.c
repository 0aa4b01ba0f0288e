/*  test_cluster_sigstop.c - a replica that stalls under load loses nothing.

    A replica frozen with SIGSTOP while the primary takes a heavy load
    cannot read its stream: the primary's PUB queue for it fills and
    ZeroMQ drops entries (that is how PUB works). After SIGCONT the
    replica must notice the hole ("gap:" in its log), repair it by
    fetching, and end up identical to the primary. What a user relies on:
    a slow or paused replica catches up by itself, with no lost writes.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <cmocka.h>
#include "cluster.h"

#define WARMUP  1000        /* writes before the stall, so the link is up */
#define LOAD    700000      /* writes during the stall: far past every queue
                               (about 90 MB of entries; the primary's stream
                               queue for one subscriber holds at most 64 MiB
                               of them, WC_NODE_STREAM_BUDGET) */

static int
s_setup (void **state)
{
    *state = cluster_new ("sigstop");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

static void
test_sigstop (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    int both [] = { p, r };
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    assert_int_equal (cluster_load (c, p, 0, WARMUP, 1, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, both, 2, WARMUP, 60000, NULL, NULL), 0);

    long mark = cluster_log_mark (c, r);
    assert_int_equal (cluster_signal (c, r, SIGSTOP), 0);
    int64_t started = cluster_now_ms ();
    walcast_pos_t last;
    assert_int_equal (cluster_load (c, p, WARMUP, LOAD, 1, &last), 0);
    assert_int_equal (last.seq, WARMUP + LOAD);
    print_message ("%d writes in %lld ms while r1 was stopped\n", LOAD,
                   (long long) (cluster_now_ms () - started));
    assert_int_equal (cluster_signal (c, r, SIGCONT), 0);

    started = cluster_now_ms ();
    assert_int_equal (cluster_wait_converged (c, both, 2, WARMUP + LOAD, 120000,
                                              NULL, NULL), 0);
    print_message ("r1 converged %lld ms after SIGCONT\n",
                   (long long) (cluster_now_ms () - started));

    //  The loss path was taken: the stream lost entries and the replica
    //  fetched them. It notices by a skipped seq ("gap:") or, when the
    //  primary's ZMTP heartbeat timed the stopped subscriber out and its
    //  queue went with the connection, by the silent stream; either way the
    //  entries come back through a catch-up.
    int gaps = cluster_log_count (c, r, "gap:", mark);
    int catchups = cluster_log_count (c, r, "catch-up: from seq", mark);
    char line [512];
    if (cluster_log_find (c, r, "catch-up: from seq", mark, 0, line, sizeof line) == 0)
        print_message ("r1: %d gap lines, %d catch-ups, first: %s\n", gaps,
                       catchups, line);
    assert_true (catchups >= 1);

    assert_int_equal (cluster_check_key (c, r, 0, 1), 0);
    assert_int_equal (cluster_check_key (c, r, WARMUP, 1), 0);
    assert_int_equal (cluster_check_key (c, r, WARMUP + LOAD / 2, 1), 0);
    assert_int_equal (cluster_check_key (c, r, WARMUP + LOAD - 1, 1), 0);

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_sigstop, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
