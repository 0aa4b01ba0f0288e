/*  test_client_snapshot.c - `walcast snapshot` (issue 7, the client's part).

    What an operator relies on:
    - `walcast --node N snapshot` makes that node take a snapshot (one
      SNAPSHOT request) and prints `SEQ BYTES` from its SNAPSHOT_DONE;
      `walcast --broker B snapshot` does it on the primary, not on a
      replica;
    - a snapshot of a large state takes time: the command waits up to
      60 s by default (longer than the 5 s other commands wait), and a
      shorter --timeout that runs out says the node may still be writing
      it (exit 3);
    - a node that cannot write it says why (exit 3, its detail on stderr);
    - walcast_snapshot gives the library the same.

    Nodes and the broker are fakes (tests/fake.h).
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
#include "fake.h"

typedef struct {
    cluster_t     *cluster;
    fake_node_t   *primary;
    fake_node_t   *replica;
    fake_broker_t *broker;
    char           primary_addr [32];
    char           replica_addr [32];
    char           broker_addr [32];
} s_world_t;

static int
s_setup (void **state)
{
    s_world_t *w = calloc (1, sizeof *w);
    *state = w;
    w->cluster = cluster_new ("client_snapshot");
    if (!w->cluster)
        return 0;
    int port = cluster_spare_port (w->cluster);
    snprintf (w->primary_addr, sizeof w->primary_addr, "127.0.0.1:%d", port);
    snprintf (w->replica_addr, sizeof w->replica_addr, "127.0.0.1:%d", port + 2);
    snprintf (w->broker_addr, sizeof w->broker_addr, "127.0.0.1:%d", port + 4);
    w->primary = fake_node_new (port, "p1");
    w->replica = fake_node_new (port + 2, "r1");
    w->broker = fake_broker_new (port + 4);
    if (w->replica) {
        fake_node_conf_t conf;
        fake_node_conf (w->replica, &conf);
        conf.role = WC_ROLE_REPLICA;
        snprintf (conf.detail, sizeof conf.detail, "%s", w->primary_addr);
        fake_node_set (w->replica, &conf);
    }
    if (w->broker) {
        fake_broker_node_t nodes [2] = {
            { "r1", "", WC_ROLE_REPLICA, 1, true, 0 },
            { "p1", "", WC_ROLE_PRIMARY, 1, true, 0 },
        };
        snprintf (nodes [0].addr, sizeof nodes [0].addr, "%s", w->replica_addr);
        snprintf (nodes [1].addr, sizeof nodes [1].addr, "%s", w->primary_addr);
        fake_broker_set_nodes (w->broker, nodes, 2);
    }
    return 0;
}

static int
s_teardown (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    fake_broker_destroy (&w->broker);
    fake_node_destroy (&w->replica);
    fake_node_destroy (&w->primary);
    cluster_destroy (&w->cluster);
    free (w);
    return 0;
}

static s_world_t *
s_world (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->primary || !w->replica || !w->broker)
        fail_msg ("the test could not be set up (see above)");
    return w;
}

//  Make the fake node answer SNAPSHOT after delay_ms with err (0: DONE).
static void
s_snapshot_answer (fake_node_t *node, int delay_ms, int err, const char *detail)
{
    fake_node_conf_t conf;
    fake_node_conf (node, &conf);
    conf.snapshot_ms = delay_ms;
    conf.snapshot_err = err;
    snprintf (conf.detail, sizeof conf.detail, "%s", detail);
    fake_node_set (node, &conf);
}

static int
s_snapshots (fake_node_t *node)
{
    fake_node_seen_t seen;
    fake_node_seen (node, &seen);
    return seen.snapshots;
}

static void
test_snapshot_node (void **state)
{
    s_world_t *w = s_world (state);
    //  Three writes, so the fake's snapshot holds seq 3 (100 bytes a seq + 16)
    walcast_t *h = walcast_new ();
    assert_non_null (h);
    assert_int_equal (walcast_connect (h, w->primary_addr), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal (walcast_put (h, "k", 1, "v", 1, NULL), 0);
    uint64_t seq = 0, bytes = 0;
    assert_int_equal (walcast_snapshot (h, &seq, &bytes), 0);
    assert_int_equal (seq, 3);
    assert_int_equal (bytes, 316);
    assert_int_equal (walcast_snapshot (h, NULL, &bytes), WALCAST_EINVAL);
    walcast_destroy (&h);

    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "--node", w->primary_addr,
                          "snapshot", NULL);
    print_message ("snapshot: exit %d, stdout '%s', stderr '%s'\n", rc, out, err);
    assert_int_equal (rc, 0);
    assert_string_equal (out, "3 316\n");
    assert_string_equal (err, "");
    assert_int_equal (s_snapshots (w->primary), 2);
    free (out);
    free (err);

    //  --node names the node, whatever it is
    rc = cluster_cli (w->cluster, NULL, &out, &err, "--node", w->replica_addr,
                      "snapshot", NULL);
    assert_int_equal (rc, 0);
    assert_string_equal (out, "0 16\n");
    assert_int_equal (s_snapshots (w->replica), 1);
    free (out);
    free (err);

    rc = cluster_cli (w->cluster, NULL, &out, &err, "--node", w->primary_addr,
                      "snapshot", "now", NULL);
    assert_int_equal (rc, 2);
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

//  With --broker, the primary takes it, not the replica listed first.
static void
test_snapshot_broker (void **state)
{
    s_world_t *w = s_world (state);
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "--broker", w->broker_addr,
                          "snapshot", NULL);
    print_message ("snapshot --broker: exit %d, stdout '%s', stderr '%s'\n", rc, out, err);
    assert_int_equal (rc, 0);
    assert_string_equal (out, "0 16\n");
    assert_int_equal (s_snapshots (w->primary), 1);
    assert_int_equal (s_snapshots (w->replica), 0);
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

//  A snapshot that takes longer than 5 s: the default wait is long
//  enough; a short --timeout is not, and says what that means.
static void
test_snapshot_slow (void **state)
{
    s_world_t *w = s_world (state);
    s_snapshot_answer (w->primary, 5600, 0, "");
    char *out = NULL, *err = NULL;
    int64_t started = cluster_now_ms ();
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "--node", w->primary_addr,
                          "--timeout", "400", "snapshot", NULL);
    int64_t took = cluster_now_ms () - started;
    print_message ("snapshot --timeout 400: exit %d in %lld ms, stderr '%s'\n", rc,
                   (long long) took, err);
    assert_int_equal (rc, 3);
    assert_string_equal (out, "");
    assert_non_null (strstr (err, "walcast: snapshot: no answer within the timeout: "));
    assert_non_null (strstr (err, "did not answer within 400 ms"));
    assert_non_null (strstr (err, "the node may still be writing it"));
    assert_true (took < 5000);
    free (out);
    free (err);

    started = cluster_now_ms ();
    rc = cluster_cli (w->cluster, NULL, &out, &err, "--node", w->primary_addr,
                      "snapshot", NULL);
    took = cluster_now_ms () - started;
    print_message ("snapshot taking 5.6 s: exit %d in %lld ms, stdout '%s'\n", rc,
                   (long long) took, out);
    assert_int_equal (rc, 0);
    assert_string_equal (out, "0 16\n");
    assert_true (took >= 5500);
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

static void
test_snapshot_error (void **state)
{
    s_world_t *w = s_world (state);
    s_snapshot_answer (w->primary, 0, WALCAST_EIO, "cannot write snap-3.tmp: disk gone");
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "--node", w->primary_addr,
                          "snapshot", NULL);
    print_message ("snapshot that fails: exit %d, stderr '%s'\n", rc, err);
    assert_int_equal (rc, 3);
    assert_string_equal (out, "");
    assert_non_null (strstr (err, "walcast: snapshot: "));
    assert_non_null (strstr (err, ": cannot write snap-3.tmp: disk gone"));
    free (out);
    free (err);
    //  A full disk: no write was involved, so none is said to be unmade
    //  (before: "no space left on the node's disk; the write was not
    //  made; ... then send the write again", a helper)
    s_snapshot_answer (w->primary, 0, WALCAST_ENOSPC, "");
    rc = cluster_cli (w->cluster, NULL, &out, &err, "--node", w->primary_addr,
                      "snapshot", NULL);
    print_message ("snapshot on a full disk: exit %d, stderr '%s'\n", rc, err);
    assert_int_equal (rc, 3);
    assert_null (strstr (err, "write"));
    assert_non_null (strstr (err, "the snapshot was not written"));
    assert_non_null (strstr (err, "free space on the node's disk"));
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_snapshot_node, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_broker, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_slow, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshot_error, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
