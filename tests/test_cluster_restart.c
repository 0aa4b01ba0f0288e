/*  test_cluster_restart.c - a killed replica resumes from its own WAL.

    What a user relies on: a replica that crashes (SIGKILL) and comes back
    recovers what it had from its local log and fetches only what it
    missed, not the whole history; then it holds exactly what the primary
    holds.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cluster.h"

#define ROUND1   20000      /* keys 0..19999, round 1 */
#define ROUND2   20000      /* keys 10000..29999, round 2, while r1 is down */
#define SLACK    1000       /* entries a catch-up may fetch beyond the minimum */

static int
s_setup (void **state)
{
    *state = cluster_new ("restart");
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
test_restart (void **state)
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

    assert_int_equal (cluster_load (c, p, 0, ROUND1, 1, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, both, 2, ROUND1, 60000, NULL, NULL), 0);

    //  Crash the replica, write more (half overwrites, half new keys)
    assert_int_equal (cluster_kill (c, r), 0);
    walcast_pos_t last;
    assert_int_equal (cluster_load (c, p, ROUND1 / 2, ROUND2, 2, &last), 0);
    assert_int_equal (last.seq, ROUND1 + ROUND2);

    assert_int_equal (cluster_start (c, r), 0);
    long mark = cluster_start_mark (c, r);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    uint64_t hash;
    assert_int_equal (cluster_wait_converged (c, both, 2, ROUND1 + ROUND2, 60000,
                                              NULL, &hash), 0);

    //  It recovered its own log...
    char line [512];
    unsigned long long recovered = 0, recovered_seq = 0;
    assert_int_equal (cluster_log_find (c, r, "wal: recovered ", mark, 0,
                                        line, sizeof line), 0);
    assert_int_equal (sscanf (line, "wal: recovered %llu entries, last seq %llu",
                              &recovered, &recovered_seq), 2);
    print_message ("r1 after restart: %s\n", line);
    assert_true (recovered_seq > ROUND1 - SLACK);

    //  ...then fetched from there, and only the missing range
    unsigned long long from = 0, to = 0;
    assert_int_equal (cluster_log_find (c, r, "catch-up: from seq ", mark, 0,
                                        line, sizeof line), 0);
    print_message ("r1 after restart: %s\n", line);
    assert_int_equal (sscanf (line, "catch-up: from seq %llu to %llu", &from, &to), 2);
    assert_true (from > ROUND1 - SLACK);
    assert_true (from <= recovered_seq + 1);

    unsigned long long fetched = 0;
    int done = cluster_log_count (c, r, "catch-up: done at seq ", mark);
    assert_true (done >= 1);
    for (int k = 0; k < done; k++) {
        unsigned long long at = 0, entries = 0;
        assert_int_equal (cluster_log_find (c, r, "catch-up: done at seq ", mark, k,
                                            line, sizeof line), 0);
        print_message ("r1 after restart: %s\n", line);
        assert_int_equal (sscanf (line, "catch-up: done at seq %llu, %llu entries",
                                  &at, &entries), 2);
        fetched += entries;
    }
    assert_true (fetched >= ROUND2);
    assert_true (fetched <= ROUND2 + SLACK);

    //  Spot checks: untouched, overwritten and new keys
    assert_int_equal (cluster_check_key (c, r, 0, 1), 0);
    assert_int_equal (cluster_check_key (c, r, ROUND1 / 2 - 1, 1), 0);
    assert_int_equal (cluster_check_key (c, r, ROUND1 / 2, 2), 0);
    assert_int_equal (cluster_check_key (c, r, ROUND1 - 1, 2), 0);
    assert_int_equal (cluster_check_key (c, r, ROUND1 / 2 + ROUND2 - 1, 2), 0);

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_restart, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
