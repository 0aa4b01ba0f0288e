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
#include <msgpack.h>
#include <zmq.h>
#include "cluster.h"
#include "codec.h"
#include "upstream.h"

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
    //  The command line says why, and what to look at
    char *out = NULL, *err = NULL;
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--node", cluster_addr (c, r),
                                   "get", "k00000007", NULL), 3);
    print_message ("walcast get from r1 meanwhile: %s", err);
    assert_non_null (strstr (err, "its upstream is a node of another cluster"));
    assert_non_null (strstr (err, "not following"));
    free (out);
    free (err);
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

/* --- the stream of another cluster, at the same epoch ----------------------

    With a broker, epochs are 1, 2, ... in every cluster, so a node of
    another cluster can be at the replica's own epoch, and its next entry
    at the replica's next seq: nothing in the entry tells it apart. A fake
    upstream on the test's spare ports is cluster A with seqs 1..5 of
    epoch 1, then becomes cluster B, still at epoch 1, and publishes seq 6
    (and heartbeats); like a 0.7 node it refuses FETCHes of another
    cluster. Before the cluster ids, the replica applied seq 6 from the
    stream. */

#define FAKE_A  UINT64_C (0x1111111111111111)
#define FAKE_B  UINT64_C (0x2222222222222222)

static void
test_stream_of_another_cluster (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    void *ctx = zmq_ctx_new ();
    assert_non_null (ctx);
    int port = cluster_spare_port (c);
    upstream_t fake;
    upstream_open (&fake, ctx, port, 5, FAKE_A);
    char upstream [32];
    snprintf (upstream, sizeof upstream, "127.0.0.1:%d", port);
    int r = cluster_add (c, "r1", upstream, NULL);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    if (upstream_run_until (c, r, &fake, 5, NULL, 0, 20000) != 0)
        fail_msg ("the replica did not follow the fake upstream to seq 5");
    uint64_t seq5, hash5;
    assert_int_equal (cluster_digest (c, r, &seq5, &hash5), 0);

    //  Cluster B's node now, at the same epoch, with seq 6 on its stream
    long mark = cluster_log_mark (c, r);
    fake.cluster = FAKE_B;
    fake.last = 6;
    char prefix [128];
    snprintf (prefix, sizeof prefix, "not following %s yet: it is a node of cluster "
              "2222222222222222, not of ours (1111111111111111)", upstream);
    int rc = upstream_run_until (c, r, &fake, 0, prefix, mark, 20000);
    uint64_t seq, hash;
    assert_int_equal (cluster_digest (c, r, &seq, &hash), 0);
    print_message ("replica at seq %llu after cluster B's seq 6\n", (unsigned long long) seq);
    assert_int_equal (rc, 0);
    assert_true (seq == seq5 && hash == hash5);

    //  Cluster A again: it follows to seq 6
    fake.cluster = FAKE_A;
    if (upstream_run_until (c, r, &fake, 6, NULL, 0, 20000) != 0)
        fail_msg ("the replica did not follow its own cluster again");
    upstream_close (&fake);
    zmq_ctx_term (ctx);
    assert_int_equal (cluster_check_key (c, r, 6, 1), 0);
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
        cmocka_unit_test_setup_teardown (test_stream_of_another_cluster,
                                         s_setup, s_teardown),
    };
    if (getenv ("WALCAST_TEST_ONLY"))           /* one test, to debug it */
        cmocka_set_test_filter (getenv ("WALCAST_TEST_ONLY"));
    return cmocka_run_group_tests (tests, NULL, NULL);
}
