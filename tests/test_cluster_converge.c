/*  test_cluster_converge.c - a primary and two replicas end up identical.

    What a user relies on: every write acknowledged by the primary reaches
    every replica, in order and complete, so all three nodes report the
    same (seq, digest) and a read from any replica returns what was
    written. Also checks what STATUS says about each node's role.
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

#define WRITES  20000

static int
s_setup (void **state)
{
    *state = cluster_new ("converge");
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
test_converge (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int r1 = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    int r2 = cluster_add (c, "r2", cluster_addr (c, p), NULL);
    int all [] = { p, r1, r2 };
    for (int i = 0; i < 3; i++)
        assert_int_equal (cluster_start (c, all [i]), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal (cluster_wait_ready (c, all [i], 30000), 0);

    //  STATUS tells roles and who follows whom
    walcast_status_t status;
    assert_int_equal (cluster_status (c, p, &status), 0);
    assert_string_equal (status.role, "primary");
    assert_string_equal (status.id, "p1");
    assert_string_equal (status.primary, "");
    assert_int_equal (cluster_status (c, r1, &status), 0);
    assert_string_equal (status.role, "replica");
    assert_string_equal (status.id, "r1");
    assert_string_equal (status.primary, cluster_addr (c, p));

    walcast_pos_t last;
    int64_t started = cluster_now_ms ();
    assert_int_equal (cluster_load (c, p, 0, WRITES, 1, &last), 0);
    print_message ("%d writes acknowledged in %lld ms\n", WRITES,
                   (long long) (cluster_now_ms () - started));
    assert_int_equal (last.seq, WRITES);
    assert_true (last.epoch >= 1);

    uint64_t seq, hash;
    assert_int_equal (cluster_wait_converged (c, all, 3, WRITES, 60000, &seq, &hash), 0);
    print_message ("3 nodes at seq %llu, digest %016llx, %lld ms after the first write\n",
                   (unsigned long long) seq, (unsigned long long) hash,
                   (long long) (cluster_now_ms () - started));
    assert_int_equal (seq, WRITES);
    assert_int_not_equal (hash, 0);

    //  Spot checks: random keys (plus the first and the last) on every node
    unsigned seed = (unsigned) cluster_now_ms ();
    srand (seed);
    for (int i = 0; i < 3; i++) {
        assert_int_equal (cluster_check_key (c, all [i], 0, 1), 0);
        assert_int_equal (cluster_check_key (c, all [i], WRITES - 1, 1), 0);
        for (int k = 0; k < 10; k++) {
            int n = rand () % WRITES;
            if (cluster_check_key (c, all [i], n, 1) != 0)
                fail_msg ("key %d on node %d (seed %u)", n, i, seed);
        }
    }
    //  A key never written is not found on a replica, with its applied seq
    walcast_t *client = cluster_client (c, r2);
    assert_non_null (client);
    void *value = NULL;
    size_t len = 0;
    assert_int_equal (walcast_get (client, "never-written", 13, &value, &len, NULL),
                      WALCAST_ENOTFOUND);
    assert_null (value);
    walcast_destroy (&client);

    //  STATUS agrees with the digest
    assert_int_equal (cluster_status (c, r2, &status), 0);
    assert_int_equal (status.applied_seq, WRITES);

    //  SIGTERM: every node exits 0
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_converge, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
