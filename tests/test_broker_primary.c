/*  test_broker_primary.c - one primary per broker, and a refused node is
    told why (issue 6, defect 10).

    What a user relies on: a second node started without --replica-of
    next to a running primary is not listed as a second primary (clients
    of the broker would send it writes nothing replicates). The broker
    refuses it with ECONFLICT, and the node says so once in its log:
    `broker refused us: node p1 at HOST:PORT is the primary ... (ECONFLICT);
    to follow that primary, restart this node with --replica-of HOST:PORT
    ...`, however long it keeps beating. Writes through the broker go to
    p1 only.

    When the registered primary dies (SIGKILL) the refused node is admitted
    as the primary once the broker sees p1 down, and logs `broker accepts
    us again`; the old primary is forgotten, and when it comes back as a
    primary it is the one refused, naming the new primary. At every step
    the broker's TOPOLOGY lists at most one primary.
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

//  The broker's primaries, from a raw TOPOLOGY: their number, and their
//  ids (space separated) in ids. -1 when the broker did not answer.
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
        ||  info.role != 1)
            continue;
        char id [80];
        wc_bytes_printable (id, sizeof id, &info.id);
        size_t used = strlen (ids);
        snprintf (ids + used, size - used, "%s%s%s", used ? " " : "", id,
                  info.up ? "" : "(down)");
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

//  The one "broker refused us:" line of node i since mark, which must
//  contain every string of the NULL-terminated list.
static void
s_check_refusal (cluster_t *c, int i, long mark, ...)
{
    int lines = cluster_log_count (c, i, "broker refused us:", mark);
    char line [2048] = "";
    cluster_log_find (c, i, "broker refused us:", mark, 0, line, sizeof line);
    print_message ("%s: %d line(s): %s\n", cluster_id (c, i), lines, line);
    if (lines != 1)
        fail_msg ("%s logged the refusal %d times, expected once", cluster_id (c, i),
                  lines);
    va_list args;
    va_start (args, mark);
    const char *want;
    while ((want = va_arg (args, const char *)) != NULL)
        if (!strstr (line, want))
            fail_msg ("%s's refusal does not say \"%s\"", cluster_id (c, i), want);
    va_end (args);
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
    int p2 = cluster_add (c, "p2", NULL, NULL);
    for (int i = p1; i <= p2; i++)
        cluster_set_broker (c, i, true);
    assert_int_equal (cluster_start (c, p1), 0);
    assert_int_equal (cluster_start (c, r1), 0);
    broker_peer_t *peer = broker_peer_new (cluster_broker_addr (c), ZMQ_DEALER);
    assert_non_null (peer);
    assert_int_equal (s_wait_primary (peer, "p1", 10000), 0);

    //  A second primary: refused for as long as p1 is up, told once
    assert_int_equal (cluster_start (c, p2), 0);
    assert_int_equal (cluster_wait_ready (c, p2, 30000), 0);
    assert_int_equal (s_hold_primary (peer, "p1", 2500), 0);
    assert_int_equal (cluster_wait_log (c, p1, "registered with broker", 0, 5000), 0);
    char p1_is [128], follow [128];
    snprintf (p1_is, sizeof p1_is, "node p1 at %s is the primary", cluster_addr (c, p1));
    snprintf (follow, sizeof follow, "--replica-of %s", cluster_addr (c, p1));
    s_check_refusal (c, p2, 0, p1_is, "(ECONFLICT)", follow, NULL);
    char *out = NULL, *err = NULL;
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                                   "status", NULL), 0);
    print_message ("walcast --broker status:\n%s", out);
    assert_int_equal (cluster_status_state (out, "p1"), 1);
    assert_int_equal (cluster_status_state (out, "p2"), -1);
    free (out);
    free (err);
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                                   "put", "k", "v", NULL), 0);
    free (out);
    free (err);
    int pair [] = { p1, r1 };
    assert_int_equal (cluster_wait_converged (c, pair, 2, 1, 10000, NULL, NULL), 0);
    walcast_status_t status;
    assert_int_equal (cluster_status (c, p2, &status), 0);
    assert_int_equal (status.applied_seq, 0);

    //  p1 dies: p2 takes the role once p1 is down, and says so
    long mark = cluster_log_mark (c, p2);
    assert_int_equal (cluster_kill (c, p1), 0);
    assert_int_equal (s_wait_primary (peer, "p2", 10000), 0);
    assert_int_equal (cluster_wait_log (c, p2, "broker accepts us again", mark, 5000), 0);
    assert_int_equal (cluster_log_count (c, p2, "broker refused us:", mark), 0);

    //  p1 back as a primary: the one refused now, naming p2
    assert_int_equal (cluster_start (c, p1), 0);
    mark = cluster_start_mark (c, p1);
    assert_int_equal (cluster_wait_log (c, p1, "broker refused us:", mark, 10000), 0);
    assert_int_equal (s_hold_primary (peer, "p2", 1500), 0);
    char p2_is [128];
    snprintf (p2_is, sizeof p2_is, "node p2 at %s is the primary", cluster_addr (c, p2));
    snprintf (follow, sizeof follow, "--replica-of %s", cluster_addr (c, p2));
    s_check_refusal (c, p1, mark, p2_is, follow, NULL);

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
