/*  test_region_cascade.c - a replica of a replica holds what the primary
    holds.

    What a user relies on: a region can pull the stream once across the
    wide-area link (replica A of the primary) and feed its local replicas
    from it (replica B with --replica-of A). B converges on the primary's
    data; a crashed B restarts, catches up from A, converges again; each
    node's STATUS says whom it follows.
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

#define ROUND1   20000      /* keys 0..19999 */
#define ROUND2   10000      /* keys 15000..24999, while B is down */

static int
s_setup (void **state)
{
    *state = cluster_new ("region_cascade");
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
test_cascade (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int a = cluster_add (c, "a1", cluster_addr (c, p), NULL);
    int b = cluster_add (c, "b1", cluster_addr (c, a), NULL);
    int all [] = { p, a, b };
    for (int i = p; i <= b; i++)
        assert_int_equal (cluster_start (c, i), 0);
    for (int i = p; i <= b; i++)
        assert_int_equal (cluster_wait_ready (c, i, 30000), 0);

    int64_t started = cluster_now_ms ();
    assert_int_equal (cluster_load (c, p, 0, ROUND1, 1, NULL), 0);
    uint64_t hash1;
    assert_int_equal (cluster_wait_converged (c, all, 3, ROUND1, 60000, NULL, &hash1), 0);
    print_message ("p1 -> a1 -> b1: %d writes converged in %lld ms (digest %016llx)\n",
                   ROUND1, (long long) (cluster_now_ms () - started),
                   (unsigned long long) hash1);

    //  Who follows whom
    walcast_status_t status;
    assert_int_equal (cluster_status (c, a, &status), 0);
    assert_string_equal (status.role, "replica");
    assert_string_equal (status.primary, cluster_addr (c, p));
    assert_int_equal (cluster_status (c, b, &status), 0);
    assert_string_equal (status.role, "replica");
    assert_string_equal (status.primary, cluster_addr (c, a));
    assert_int_equal (status.applied_seq, ROUND1);

    //  B crashes, the primary takes more writes, B comes back
    assert_int_equal (cluster_kill (c, b), 0);
    walcast_pos_t last;
    assert_int_equal (cluster_load (c, p, ROUND1 - 5000, ROUND2, 2, &last), 0);
    assert_int_equal (last.seq, ROUND1 + ROUND2);
    int pa [] = { p, a };
    assert_int_equal (cluster_wait_converged (c, pa, 2, ROUND1 + ROUND2, 60000, NULL, NULL), 0);
    started = cluster_now_ms ();
    assert_int_equal (cluster_start (c, b), 0);
    assert_int_equal (cluster_wait_ready (c, b, 30000), 0);
    uint64_t hash2;
    assert_int_equal (cluster_wait_converged (c, all, 3, ROUND1 + ROUND2, 60000, NULL,
                                              &hash2), 0);
    print_message ("b1 restarted and caught up in %lld ms\n",
                   (long long) (cluster_now_ms () - started));
    assert_true (hash2 != hash1);
    assert_int_equal (cluster_status (c, b, &status), 0);
    assert_string_equal (status.primary, cluster_addr (c, a));

    //  Spot checks on B: untouched, overwritten, new
    assert_int_equal (cluster_check_key (c, b, 0, 1), 0);
    assert_int_equal (cluster_check_key (c, b, ROUND1 - 5001, 1), 0);
    assert_int_equal (cluster_check_key (c, b, ROUND1 - 5000, 2), 0);
    assert_int_equal (cluster_check_key (c, b, ROUND1 - 5000 + ROUND2 - 1, 2), 0);

    //  And live writes still flow down the chain
    walcast_t *h = cluster_client (c, p);
    assert_non_null (h);
    walcast_pos_t pos;
    assert_int_equal (walcast_put (h, "live", 4, "yes", 3, &pos), 0);
    walcast_destroy (&h);
    assert_int_equal (cluster_wait_converged (c, all, 3, pos.seq, 10000, NULL, NULL), 0);

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_cascade, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
