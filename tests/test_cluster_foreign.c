/*  test_cluster_foreign.c - a replica takes nothing from another cluster.

    What a user relies on: a replica whose primary died, and at whose
    address a node of another cluster now answers (the port reused by
    another deployment, a machine moved, a data directory replaced), does
    not take that node's history for its primary's. It says so, keeps what
    it has (refusing reads meanwhile: a client that writes to that node and
    reads from this one would see two histories mixed), and follows its
    primary again once it is back, serving again.

    Before walcast 0.7 nothing told two clusters apart: epochs and seqs are
    small numbers that clusters share. A helper found a replica marked
    DIVERGED for good after a test suite's node took its dead primary's
    port; with broker epochs (1, 2, ...) it could as well have applied the
    other cluster's entries. Now every node keeps a cluster id (its data
    directory's file "cluster"), and EPOCH_END_REPLY, FETCH, the stream
    and ACKs carry it.
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

#define ROUND1  1000        /* keys 0..999 into the first primary */
#define FOREIGN 2000        /* keys into the other cluster's node */
#define ROUND3  500         /* keys 1000..1499 once the primary is back */

static int
s_setup (void **state)
{
    *state = cluster_new ("foreign");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_destroy ((cluster_t **) state);
    return 0;
}

//  The text of DIR/cluster of node i ("" when there is none).
static void
s_cluster_file (cluster_t *c, int i, char *buf, size_t size)
{
    char path [4200];
    snprintf (path, sizeof path, "%s/cluster", cluster_data_path (c, i));
    buf [0] = '\0';
    FILE *f = fopen (path, "r");
    if (!f)
        return;
    size_t got = fread (buf, 1, size - 1, f);
    buf [got] = '\0';
    fclose (f);
}

//  Swap node i's data directory with the one named suffix (renamed, so
//  the node starts on the other next time).
static void
s_swap_data (cluster_t *c, int i, const char *put_aside_as, const char *take_from)
{
    char aside [4200], from [4200];
    snprintf (aside, sizeof aside, "%s.%s", cluster_data_path (c, i), put_aside_as);
    assert_int_equal (rename (cluster_data_path (c, i), aside), 0);
    if (take_from) {
        snprintf (from, sizeof from, "%s.%s", cluster_data_path (c, i), take_from);
        assert_int_equal (rename (from, cluster_data_path (c, i)), 0);
    }
}

static void
test_foreign_node_at_the_primary_address (void **state)
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
    uint64_t seq1, hash1;
    assert_int_equal (cluster_wait_converged (c, both, 2, ROUND1, 60000, &seq1, &hash1), 0);

    //  Both hold the id of the cluster the primary began
    char ours [64], rs [64];
    s_cluster_file (c, p, ours, sizeof ours);
    s_cluster_file (c, r, rs, sizeof rs);
    print_message ("cluster id: %s", ours);
    assert_int_equal (strlen (ours), 17);
    assert_string_equal (ours, rs);

    //  The primary dies; a node of a new cluster starts at its address
    //  (an empty data directory: a history of its own) and takes writes
    assert_int_equal (cluster_kill (c, p), 0);
    s_swap_data (c, p, "orig", NULL);
    long mark = cluster_log_mark (c, r);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    char theirs [64];
    s_cluster_file (c, p, theirs, sizeof theirs);
    assert_int_equal (strlen (theirs), 17);
    assert_string_not_equal (theirs, ours);
    assert_int_equal (cluster_load (c, p, 0, FOREIGN, 2, NULL), 0);

    //  The replica says why it does not follow, and keeps what it has
    char prefix [128], line [512];
    snprintf (prefix, sizeof prefix, "not following %s yet: it is a node of cluster",
              cluster_addr (c, p));
    assert_int_equal (cluster_wait_log (c, r, prefix, mark, 20000), 0);
    assert_int_equal (cluster_log_find (c, r, prefix, mark, 0, line, sizeof line), 0);
    print_message ("r1: %s\n", line);
    uint64_t seq, hash;
    assert_int_equal (cluster_digest (c, r, &seq, &hash), 0);
    assert_true (seq == seq1 && hash == hash1);
    walcast_status_t st;
    assert_int_equal (cluster_status (c, r, &st), 0);
    assert_true (st.applied_seq == ROUND1);
    walcast_t *h = cluster_client (c, r);
    assert_non_null (h);
    void *value = NULL;
    size_t len = 0;
    int rc = walcast_get (h, "k00000007", 9, &value, &len, NULL);
    print_message ("GET from r1 meanwhile: %s\n", walcast_errname (rc));
    assert_int_equal (rc, WALCAST_EUNAVAILABLE);
    walcast_destroy (&h);
    assert_int_equal (cluster_log_count (c, r, "diverged:", 0), 0);
    s_cluster_file (c, r, rs, sizeof rs);
    assert_string_equal (rs, ours);

    //  The first primary comes back: the replica follows it again
    assert_int_equal (cluster_kill (c, p), 0);
    s_swap_data (c, p, "foreign", "orig");
    mark = cluster_log_mark (c, r);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    assert_int_equal (cluster_load (c, p, ROUND1, ROUND3, 3, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, both, 2, ROUND1 + ROUND3, 60000,
                                              NULL, NULL), 0);
    assert_int_equal (cluster_check_key (c, r, 7, 1), 0);
    assert_int_equal (cluster_check_key (c, r, ROUND1 + 7, 3), 0);
    assert_int_equal (cluster_log_count (c, r, "diverged:", 0), 0);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_foreign_node_at_the_primary_address,
                                         s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
