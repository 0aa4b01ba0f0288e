/*  test_region_broker.c - the broker is not in the data path.

    What a user relies on: when the broker dies, reads and writes go on,
    both for clients that were given the nodes (--node) and for clients
    that found them through the broker before it died; when the broker
    comes back on the same port, the nodes register again and within a
    few seconds its topology lists every node up, both for a new client
    and for the one that found the nodes before it died. A read for a
    region whose only node is down waits for it within its timeout.
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

#define NODE_TIMEOUT_MS  1000
#define COMEBACK_MS      5000      /* topology complete again within this */

static int
s_setup (void **state)
{
    *state = cluster_new ("region_broker");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

//  Put key = value and read it back through h.
static void
s_put_get (walcast_t *h, const char *who, const char *key, const char *value)
{
    walcast_pos_t pos;
    int rc = walcast_put (h, key, strlen (key), value, strlen (value), &pos);
    if (rc != 0)
        fprintf (stderr, "%s: put %s: %s (%s)\n", who, key, walcast_errname (rc),
                 walcast_last_detail (h));
    assert_int_equal (rc, 0);
    void *got = NULL;
    size_t len = 0;
    walcast_served_t served;
    rc = walcast_get_ex (h, key, strlen (key), 0, &got, &len, &served);
    if (rc != 0)
        fprintf (stderr, "%s: get %s: %s (%s)\n", who, key, walcast_errname (rc),
                 walcast_last_detail (h));
    assert_int_equal (rc, 0);
    assert_int_equal (len, strlen (value));
    assert_memory_equal (got, value, len);
    walcast_free (got);
}

//  Poll walcast_nodes on h until p1 and r1 are both listed up; returns
//  the ms it took, or -1.
static long long
s_wait_handle_up (walcast_t *h, int timeout_ms)
{
    int64_t started = cluster_now_ms ();
    while (true) {
        walcast_node_info_t nodes [8];
        size_t count = 0;
        int rc = walcast_nodes (h, nodes, 8, &count);
        int up = 0;
        for (size_t i = 0; rc == 0 && i < count; i++)
            if ((strcmp (nodes [i].id, "p1") == 0 || strcmp (nodes [i].id, "r1") == 0)
            &&  nodes [i].up)
                up++;
        if (up == 2)
            return (long long) (cluster_now_ms () - started);
        if (cluster_now_ms () - started > timeout_ms) {
            fprintf (stderr, "the broker client lists %d of p1, r1 up after %d ms "
                     "(walcast_nodes: %s, %zu nodes)\n", up, timeout_ms,
                     walcast_errname (rc), count);
            for (size_t i = 0; rc == 0 && i < count; i++)
                fprintf (stderr, "  %s %s %s\n", nodes [i].id, nodes [i].role,
                         nodes [i].up ? "up" : "down");
            return -1;
        }
        cluster_nap_ms (100);
    }
}

//  Poll `walcast --broker status` until p1 and r1 are both listed up;
//  returns the ms it took, or -1.
static long long
s_wait_all_up (cluster_t *c, int timeout_ms)
{
    int64_t started = cluster_now_ms ();
    char *out = NULL;
    while (true) {
        free (out);
        out = NULL;
        int rc = cluster_cli (c, NULL, &out, NULL, "--broker", cluster_broker_addr (c),
                              "--timeout", "1000", "status", NULL);
        if (rc == 0 && cluster_status_state (out, "p1") == 1
        &&  cluster_status_state (out, "r1") == 1) {
            print_message ("walcast status --broker:\n%s", out);
            free (out);
            return (long long) (cluster_now_ms () - started);
        }
        if (cluster_now_ms () - started > timeout_ms) {
            fprintf (stderr, "topology incomplete after %d ms; last status (exit %d):\n%s\n",
                     timeout_ms, rc, out ? out : "");
            free (out);
            return -1;
        }
        cluster_nap_ms (100);
    }
}

/*  A broker, and p1 with its replica r1 (of these regions, NULL none)
    registered with it and ready; returns p1's index (r1's is the next). */
static int
s_pair (cluster_t *c, const char *p_region, const char *r_region)
{
    assert_int_equal (cluster_broker_start (c, NODE_TIMEOUT_MS), 0);
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    assert_int_equal (r, p + 1);
    if (p_region)
        cluster_set_region (c, p, p_region);
    if (r_region)
        cluster_set_region (c, r, r_region);
    for (int i = p; i <= r; i++) {
        cluster_set_broker (c, i, true);
        assert_int_equal (cluster_start (c, i), 0);
    }
    for (int i = p; i <= r; i++)
        assert_int_equal (cluster_wait_ready (c, i, 30000), 0);
    return p;
}

static void
test_broker (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = s_pair (c, NULL, NULL), r = p + 1;
    assert_true (s_wait_all_up (c, 10000) >= 0);

    //  One client found the nodes through the broker, one was given them
    walcast_t *found = cluster_broker_client (c, 3000);
    assert_non_null (found);
    walcast_t *given = walcast_new ();
    assert_non_null (given);
    walcast_set_timeout (given, 3000);
    assert_int_equal (walcast_connect (given, cluster_addr (c, p)), 0);
    assert_int_equal (walcast_connect (given, cluster_addr (c, r)), 0);
    s_put_get (found, "broker client", "a", "1");
    s_put_get (given, "node-list client", "b", "1");

    //  Broker gone: both go on, and so does a new --node client
    assert_int_equal (cluster_broker_kill (c), 0);
    for (int k = 0; k < 10; k++) {
        char value [16];
        snprintf (value, sizeof value, "%d", k + 2);
        s_put_get (found, "broker client", "a", value);
        s_put_get (given, "node-list client", "b", value);
    }
    char *out = NULL, *err = NULL;
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--node", cluster_addr (c, p),
                                   "--node", cluster_addr (c, r), "put", "c", "1", NULL), 0);
    free (out);
    free (err);
    char got [64];
    const char *get_c [] = { "--node", cluster_addr (c, p), "--node", cluster_addr (c, r),
                             "get", "c", NULL };
    assert_int_equal (cluster_cli_read (c, get_c, got, sizeof got, NULL, 0, NULL, 0), 0);
    assert_string_equal (got, "1");
    //  Replication did not need it either
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, 0, 10000, NULL, NULL), 0);

    //  Broker back on the same port: the topology fills again
    assert_int_equal (cluster_broker_start (c, NODE_TIMEOUT_MS), 0);
    long long took = s_wait_all_up (c, COMEBACK_MS);
    print_message ("broker restarted: all nodes up in its topology after %lld ms\n", took);
    assert_true (took >= 0);

    //  The client that found the nodes through the broker follows it
    //  again: its view of the topology comes back
    took = s_wait_handle_up (found, COMEBACK_MS);
    print_message ("broker restarted: the old broker client lists all nodes up after "
                   "%lld ms\n", took);
    assert_true (took >= 0);

    //  Clients are still fine, and a new broker client works
    s_put_get (found, "broker client", "a", "after");
    s_put_get (given, "node-list client", "b", "after");
    walcast_t *fresh = cluster_broker_client (c, 3000);
    assert_non_null (fresh);
    s_put_get (fresh, "new broker client", "d", "1");
    walcast_destroy (&fresh);
    walcast_destroy (&found);
    walcast_destroy (&given);

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  Poll `walcast --broker status` until node id's state is want (1 up,
//  0 down); false after timeout_ms.
static bool
s_wait_state (cluster_t *c, const char *id, int want, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (cluster_now_ms () < deadline) {
        char *out = NULL;
        int rc = cluster_cli (c, NULL, &out, NULL, "--broker", cluster_broker_addr (c),
                              "--timeout", "1000", "status", NULL);
        bool there = rc == 0 && cluster_status_state (out, id) == want;
        free (out);
        if (there)
            return true;
        cluster_nap_ms (100);
    }
    return false;
}

/*  `--read region=R` when R's only node is down: the read waits, within
    --timeout, for a node of R, and is served by it when it comes back;
    when none does, it fails after the timeout saying what was missing.
    Before, it asked the down node once (1 s), then failed "no answer
    within the timeout" with most of its timeout left, while a region
    with no node at all waited the whole timeout (a helper's find). */
static void
test_region_down_waits (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = s_pair (c, "us", "eu"), r = p + 1;
    assert_true (s_wait_all_up (c, 10000) >= 0);
    char *out = NULL, *err = NULL;
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                                   "put", "k", "v", NULL), 0);
    free (out);
    free (err);
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, 0, 10000, NULL, NULL), 0);

    assert_int_equal (cluster_kill (c, r), 0);
    assert_true (s_wait_state (c, "r1", 0, 10000));
    //  No eu node comes back: the read fails after its timeout, saying so
    int64_t started = cluster_now_ms ();
    out = err = NULL;
    int rc = cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                          "--timeout", "2500", "--read", "region=eu", "get", "k", NULL);
    int64_t took = cluster_now_ms () - started;
    print_message ("eu down: exit %d after %lld ms: %s", rc, (long long) took, err);
    assert_int_equal (rc, 3);
    assert_true (took >= 2400);
    assert_non_null (strstr (err, "region eu"));
    free (out);
    free (err);
    //  It comes back within the read's timeout: the read is served
    int reader = cluster_cli_spawn (c, "--broker", cluster_broker_addr (c), "--timeout",
                                    "20000", "--read", "region=eu", "get", "k", NULL);
    assert_true (reader >= 0);
    assert_int_equal (cluster_start (c, r), 0);
    int status = cluster_proc_wait (c, reader, 30000);
    char *got = cluster_proc_output (c, reader), *said = cluster_proc_errors (c, reader);
    print_message ("eu back: exit %d, stdout '%s', stderr '%s'\n", status, got, said);
    assert_int_equal (status, 0);
    assert_string_equal (got, "v\n");
    free (got);
    free (said);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_broker, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_region_down_waits, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
