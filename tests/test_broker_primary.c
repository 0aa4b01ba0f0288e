/*  test_broker_primary.c - one primary per cluster: a second node that
    claims the role is told to follow the primary (issue 6, defect 10;
    issue 7).

    What a user relies on: a second node that claims the primary role
    next to a running primary (started without --replica-of, or an old
    primary back from the dead) is never offered to clients as a second
    primary: clients of the broker would send it writes nothing
    replicates. Since issue 7 the broker does not refuse it (ECONFLICT)
    but answers its beats with FOLLOW(epoch, the primary's address), until
    its beats show it follows; meanwhile the TOPOLOGY lists it down.

    A real primary p1 and replica r1, and a fake claimant p2 (a raw
    DEALER, since the node's obedience is tested with the node): p2
    serving at an older or the same epoch, or starting as a candidate, is
    told to follow p1; every TOPOLOGY lists one usable primary, p1;
    `walcast --broker status` shows p2 down and writes through the broker
    reach p1 and its replica; once p2 beats as p1's replica it is told
    nothing and listed up.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zmq.h>
#include "broker_peer.h"
#include "cluster.h"

#define NODE_TIMEOUT_MS  1000

static int
s_setup (void **state)
{
    *state = cluster_new ("broker_primary");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

//  The primaries a client may use, from a raw TOPOLOGY (role 1 and up):
//  their number, and their ids (space separated) in ids. -1 when the
//  broker did not answer.
static int
s_primaries (broker_peer_t *peer, char *ids, size_t size)
{
    static uint64_t rid = 0;
    wc_msg_t msg;
    if (broker_peer_topology (peer, ++rid, 3000, &msg) != 0)
        return -1;
    int count = 0;
    ids [0] = '\0';
    for (uint32_t i = 0; i < msg.u.topology.count; i++) {
        wc_node_info_t info;
        if (wc_node_info_from_object (&msg.u.topology.items [i], &info) != 0
        ||  info.role != 1 || !info.up)
            continue;
        char id [80];
        wc_bytes_printable (id, sizeof id, &info.id);
        size_t used = strlen (ids);
        snprintf (ids + used, size - used, "%s%s", used ? " " : "", id);
        count++;
    }
    return count;
}

//  Poll until the broker's only primary is want (up); -1 (printed) after
//  timeout_ms.
static int
s_wait_primary (broker_peer_t *peer, const char *want, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    char ids [256] = "";
    while (cluster_now_ms () < deadline) {
        if (s_primaries (peer, ids, sizeof ids) == 1 && strcmp (ids, want) == 0)
            return 0;
        cluster_nap_ms (50);
    }
    fprintf (stderr, "the broker's primaries after %d ms: \"%s\" (wanted \"%s\")\n",
             timeout_ms, ids, want);
    return -1;
}

//  For `ms`, every TOPOLOGY lists exactly the primary want. 0 or -1.
static int
s_hold_primary (broker_peer_t *peer, const char *want, int ms)
{
    int64_t until = cluster_now_ms () + ms;
    char ids [256];
    while (cluster_now_ms () < until) {
        int count = s_primaries (peer, ids, sizeof ids);
        if (count != 1 || strcmp (ids, want) != 0) {
            fprintf (stderr, "the broker lists %d primaries: %s (wanted only %s)\n",
                     count, ids, want);
            return -1;
        }
        cluster_nap_ms (100);
    }
    return 0;
}

static void
s_expect (broker_fake_t *f, int type, uint64_t epoch, const char *addr)
{
    if (broker_fake_expect (f, type, epoch, addr) != 0)
        fail_msg ("%s was not told what it should have (see above)", f->id);
}

//  The state column of `walcast --broker status` for id (1 up, 0 down,
//  -1 not listed).
static int
s_status_state (cluster_t *c, const char *id)
{
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                          "status", NULL);
    if (rc != 0)
        fail_msg ("walcast --broker status: exit %d: %s", rc, err ? err : "");
    print_message ("walcast --broker status:\n%s", out);
    int state = cluster_status_state (out, id);
    free (out);
    free (err);
    return state;
}

static void
test_one_primary (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    assert_int_equal (cluster_broker_start (c, NODE_TIMEOUT_MS), 0);
    int p1 = cluster_add (c, "p1", NULL, NULL);
    int r1 = cluster_add (c, "r1", cluster_addr (c, p1), NULL);
    for (int i = p1; i <= r1; i++) {
        cluster_set_broker (c, i, true);
        assert_int_equal (cluster_start (c, i), 0);
    }
    broker_peer_t *peer = broker_peer_new (cluster_broker_addr (c), ZMQ_DEALER);
    assert_non_null (peer);
    assert_int_equal (s_wait_primary (peer, "p1", 10000), 0);
    //  p1 starts as a candidate (epoch 0: an empty history) and serves
    //  once the broker has promoted it
    walcast_status_t status = { .epoch = 0 };
    int64_t deadline = cluster_now_ms () + 10000;
    while ((cluster_status (c, p1, &status) != 0 || status.epoch == 0)
    &&     cluster_now_ms () < deadline)
        cluster_nap_ms (20);
    assert_true (status.epoch >= 1);
    uint64_t epoch = status.epoch;
    //  The broker's log calls it what it was: a candidate, not a primary
    char line [512];
    assert_int_equal (cluster_broker_log_find (c, "node p1 registered (region -, role "
                                               "candidate,", 0, 0, line, sizeof line), 0);

    //  A second primary, at the same epoch and at an older one: told to
    //  follow p1, listed down, for as long as it claims the role
    char addr [32];
    snprintf (addr, sizeof addr, "127.0.0.1:%d", cluster_spare_port (c));
    broker_fake_t p2;
    assert_int_equal (broker_fake_init (&p2, cluster_broker_addr (c), "p2", addr,
                                        WC_ROLE_PRIMARY, NULL, epoch, 0, 0), 0);
    s_expect (&p2, WC_MSG_FOLLOW, epoch, cluster_addr (c, p1));
    s_expect (&p2, WC_MSG_FOLLOW, epoch, cluster_addr (c, p1));
    assert_int_equal (s_hold_primary (peer, "p1", 1500), 0);
    assert_int_equal (s_status_state (c, "p1"), 1);
    assert_int_equal (s_status_state (c, "p2"), 0);
    p2.epoch = epoch - 1;
    s_expect (&p2, WC_MSG_FOLLOW, epoch, cluster_addr (c, p1));
    //  Started again as a candidate: the same
    p2.epoch = 0;
    p2.flags = WC_NODE_CANDIDATE;
    s_expect (&p2, WC_MSG_FOLLOW, epoch, cluster_addr (c, p1));

    //  Writes through the broker go to p1, and reach r1
    char *out = NULL, *err = NULL;
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                                   "put", "k", "v", NULL), 0);
    free (out);
    free (err);
    int pair [] = { p1, r1 };
    assert_int_equal (cluster_wait_converged (c, pair, 2, 1, 10000, NULL, NULL), 0);

    //  p2 follows p1: nothing more to tell it, listed up as a replica
    p2.role = WC_ROLE_REPLICA;
    p2.flags = 0;
    snprintf (p2.primary, sizeof p2.primary, "%s", cluster_addr (c, p1));
    s_expect (&p2, 0, 0, NULL);
    assert_int_equal (s_hold_primary (peer, "p1", 500), 0);
    assert_int_equal (s_status_state (c, "p2"), 1);

    broker_fake_fini (&p2);
    broker_peer_destroy (&peer);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_one_primary, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
