/*  test_region_nearest.c - reads go to the nearest node, and move on when
    it dies.

    What a user relies on: with a broker, a client reads from the node
    that answers fastest (within the latency window, its own region
    first), honours --read primary / replica / region=NAME, and when that
    node is killed its reads move to the next nearest within seconds; the
    broker's status shows every node, the killed one as down.

    Three regions on loopback: each node sits behind a latency proxy and
    advertises the proxy's address, so the client sees RTTs of about
    2 ms (eu1, eu-west), 30 ms (ap1, ap-south) and 70 ms (us1, us-east,
    the primary). The latency window is 15 ms, so "nearest" alone means
    eu1, and ap1 is the next one.
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

#define NODE_TIMEOUT_MS  1000       /* broker: silent this long = down */
#define FAILOVER_MS      10000      /* reads must move within this */

static int
s_setup (void **state)
{
    *state = cluster_new ("region_nearest");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

//  One CLI read of user:1 through the broker with extra flags (up to 4,
//  NULL-terminated); asserts it succeeds with "Alice" and copies who
//  served it into id and region.
static void
s_cli_get (cluster_t *c, char *id, char *region, ...)
{
    const char *args [16] = { "--broker", cluster_broker_addr (c), "-v",
                              "--timeout", "5000" };
    int n = 5;
    va_list list;
    va_start (list, region);
    const char *arg;
    while ((arg = va_arg (list, const char *)) && n < 12)
        args [n++] = arg;
    va_end (list);
    args [n++] = "get";
    args [n++] = "user:1";
    args [n] = NULL;
    char value [64];
    assert_int_equal (cluster_cli_read (c, args, value, sizeof value, id, 65, region, 65), 0);
    assert_string_equal (value, "Alice");
    assert_true (*id);
}

//  Poll `walcast --broker status` until every (id, state) pair holds.
static int
s_wait_states (cluster_t *c, int timeout_ms, const char *const *ids, const int *states,
               int count)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    char *out = NULL;
    while (true) {
        free (out);
        out = NULL;
        int rc = cluster_cli (c, NULL, &out, NULL, "--broker", cluster_broker_addr (c),
                              "--timeout", "2000", "status", NULL);
        bool all = rc == 0;
        for (int k = 0; all && k < count; k++)
            if (cluster_status_state (out, ids [k]) != states [k])
                all = false;
        if (all) {
            print_message ("walcast status --broker:\n%s", out);
            free (out);
            return 0;
        }
        if (cluster_now_ms () > deadline) {
            fprintf (stderr, "status never showed the expected states; last:\n%s\n",
                     out ? out : "");
            free (out);
            return -1;
        }
        cluster_nap_ms (100);
    }
}

//  A library read of user:1 on handle h; returns the walcast code and
//  fills served.
static int
s_lib_get (walcast_t *h, walcast_served_t *served)
{
    void *value = NULL;
    size_t len = 0;
    memset (served, 0, sizeof *served);
    int rc = walcast_get_ex (h, "user:1", 6, 0, &value, &len, served);
    if (rc == 0 && (len != 5 || memcmp (value, "Alice", 5) != 0)) {
        fprintf (stderr, "read user:1 from %s: \"%.*s\"\n", served->id, (int) len,
                 (char *) value);
        rc = WALCAST_EPROTO;
    }
    walcast_free (value);
    return rc;
}

//  walcast_nodes on h (one more round of PINGs) must list us1, eu1 and
//  ap1 with RTTs close to expect[] (what the proxies add; loopback adds
//  little, a loaded machine under a sanitizer up to a few ms a sample),
//  in the links' order. Returns true when they are.
static bool
s_rtts_right (walcast_t *h, const double *expect)
{
    const char *ids [] = { "us1", "eu1", "ap1" };
    walcast_node_info_t nodes [8];
    size_t count = 0;
    assert_int_equal (walcast_nodes (h, nodes, 8, &count), 0);
    assert_int_equal (count, 3);
    bool right = true;
    double rtt [3] = { -1, -1, -1 };
    for (size_t k = 0; k < count; k++) {
        for (int i = 0; i < 3; i++) {
            if (strcmp (nodes [k].id, ids [i]) != 0)
                continue;
            rtt [i] = nodes [k].rtt_ms;
            bool close = nodes [k].rtt_ms >= expect [i] * 0.8
                      && nodes [k].rtt_ms <= expect [i] * 1.3 + 15;
            print_message ("%s: RTT %.1f ms (the link's: %.0f ms)%s\n", ids [i],
                           nodes [k].rtt_ms, expect [i], close ? "" : "  WRONG");
            right = right && close;
        }
    }
    //  eu1 (2 ms) < ap1 (30 ms) < us1 (70 ms)
    bool ordered = rtt [1] >= 0 && rtt [1] < rtt [2] && rtt [2] < rtt [0];
    if (!ordered)
        print_message ("RTTs out of the links' order  WRONG\n");
    return right && ordered;
}

static void
test_nearest (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    assert_int_equal (cluster_broker_start (c, NODE_TIMEOUT_MS), 0);
    int us = cluster_add (c, "us1", NULL, NULL);
    int eu = cluster_add (c, "eu1", cluster_addr (c, us), NULL);
    int ap = cluster_add (c, "ap1", cluster_addr (c, us), NULL);
    const char *regions [] = { "us-east", "eu-west", "ap-south" };
    const int delays [] = { 35, 1, 15 };    //  one way: RTT 70, 2, 30 ms
    const double rtts [] = { 70, 2, 30 };
    for (int i = us; i <= ap; i++) {
        int proxy = cluster_proxy_start (c, i, delays [i]);
        assert_true (proxy >= 0);
        cluster_set_region (c, i, regions [i]);
        cluster_set_advertise (c, i, cluster_proxy_addr (c, proxy));
        cluster_set_broker (c, i, true);
        assert_int_equal (cluster_start (c, i), 0);
    }
    for (int i = us; i <= ap; i++)
        assert_int_equal (cluster_wait_ready (c, i, 30000), 0);
    const char *ids [] = { "us1", "eu1", "ap1" };
    const int all_up [] = { 1, 1, 1 };
    assert_int_equal (s_wait_states (c, 10000, ids, all_up, 3), 0);

    char *out = NULL;
    assert_int_equal (cluster_cli (c, NULL, &out, NULL, "--broker", cluster_broker_addr (c),
                                   "put", "user:1", "Alice", NULL), 0);
    free (out);
    int nodes [] = { us, eu, ap };
    assert_int_equal (cluster_wait_converged (c, nodes, 3, 0, 10000, NULL, NULL), 0);

    //  Nearest: eu1, the only node within 15 ms of the lowest RTT
    char id [65], region [65];
    s_cli_get (c, id, region, NULL);
    print_message ("nearest: served by %s (%s)\n", id, region);
    assert_string_equal (id, "eu1");
    assert_string_equal (region, "eu-west");

    //  A region tag does not pull reads out of the window: still eu1
    s_cli_get (c, id, region, "--region", "ap-south", NULL);
    assert_string_equal (id, "eu1");

    //  Explicit preferences
    s_cli_get (c, id, region, "--read", "primary", NULL);
    assert_string_equal (id, "us1");
    s_cli_get (c, id, region, "--read", "region=ap-south", NULL);
    assert_string_equal (id, "ap1");
    assert_string_equal (region, "ap-south");
    s_cli_get (c, id, region, "--read", "region=us-east", NULL);
    assert_string_equal (id, "us1");
    s_cli_get (c, id, region, "--read", "replica", NULL);
    assert_string_equal (id, "eu1");

    //  A fresh handle's RTTs are the links' RTTs (checked at the end, so
    //  that a wrong estimate does not hide the rest). Two fresh handles
    //  of three must get them right: a mistake of the client (a sample
    //  that times the handshakes, say) is in every handle's first
    //  samples, while a machine that stalls for 30 ms under a parallel
    //  test spoils one sample now and then. Ten more rounds of PINGs on
    //  the last handle make sure of it before the window is put to the test
    walcast_t *h = NULL;
    int fresh_right = 0;
    for (int k = 0; k < 3 && fresh_right < 2; k++) {
        walcast_destroy (&h);
        h = cluster_broker_client (c, 5000);
        assert_non_null (h);
        print_message ("fresh handle %d's RTTs:\n", k + 1);
        if (s_rtts_right (h, rtts))
            fresh_right++;
    }
    bool fresh_rtts_right = fresh_right >= 2;
    for (int k = 0; k < 9; k++) {
        walcast_node_info_t nodes [8];
        size_t count;
        assert_int_equal (walcast_nodes (h, nodes, 8, &count), 0);
    }
    print_message ("after ten rounds of PINGs:\n");
    assert_true (s_rtts_right (h, rtts));

    //  With a window wide enough for ap1, its region wins
    walcast_set_latency_window (h, 50);
    assert_int_equal (walcast_set_region (h, "ap-south"), 0);
    walcast_served_t served;
    for (int k = 0; k < 5; k++) {
        assert_int_equal (s_lib_get (h, &served), 0);
        assert_string_equal (served.id, "ap1");
        assert_string_equal (served.region, "ap-south");
    }
    print_message ("window 50 ms, region ap-south: served by %s (%s, %.1f ms)\n",
                   served.id, served.region, served.rtt_ms);

    //  The same handle, back to the defaults, read now and then: the nap
    //  is the behaviour under test (an application idle between reads,
    //  long enough for the handle's next PINGs to fall due), not a wait
    //  for something to happen. Its RTTs must stay the links' RTTs.
    walcast_set_latency_window (h, 15);
    assert_int_equal (walcast_set_region (h, NULL), 0);
    for (int k = 0; k < 2; k++) {
        assert_int_equal (s_lib_get (h, &served), 0);
        print_message ("read %d of an intermittent reader: served by %s (%.1f ms)\n",
                       k + 1, served.id, served.rtt_ms);
        assert_string_equal (served.id, "eu1");
        cluster_nap_ms (1200);
    }
    print_message ("the intermittent reader's RTTs:\n");
    bool idle_rtts_right = s_rtts_right (h, rtts);

    //  The handle reads from eu1...
    assert_int_equal (s_lib_get (h, &served), 0);
    assert_string_equal (served.id, "eu1");

    //  ...moves to ap1, the next nearest, once eu1 dies; no read fails
    assert_int_equal (cluster_kill (c, eu), 0);
    int64_t killed = cluster_now_ms ();
    int reads = 0;
    while (true) {
        int rc = s_lib_get (h, &served);
        reads++;
        if (rc != 0)
            fprintf (stderr, "read %d after the kill: %s\n", reads, walcast_errname (rc));
        assert_int_equal (rc, 0);
        if (strcmp (served.id, "eu1") != 0)
            break;
        assert_true (cluster_now_ms () - killed < FAILOVER_MS);
    }
    print_message ("eu1 killed: read %d, %lld ms later, served by %s (%s, %.1f ms)\n",
                   reads, (long long) (cluster_now_ms () - killed), served.id,
                   served.region, served.rtt_ms);
    assert_string_equal (served.id, "ap1");
    for (int k = 0; k < 5; k++) {
        assert_int_equal (s_lib_get (h, &served), 0);
        assert_string_equal (served.id, "ap1");
    }
    walcast_destroy (&h);

    //  A fresh CLI goes to ap1 too (polled: the broker may still list eu1)
    int64_t deadline = cluster_now_ms () + FAILOVER_MS;
    do {
        s_cli_get (c, id, region, NULL);
        assert_true (cluster_now_ms () < deadline);
    } while (strcmp (id, "ap1") != 0);
    s_cli_get (c, id, region, "--read", "replica", NULL);
    assert_string_equal (id, "ap1");

    //  The broker shows eu1 down once its timeout passes
    const int eu_down [] = { 1, 0, 1 };
    assert_int_equal (s_wait_states (c, NODE_TIMEOUT_MS + 5000, ids, eu_down, 3), 0);

    //  No replica left: --read replica fails rather than read the primary
    assert_int_equal (cluster_kill (c, ap), 0);
    char *err = NULL;
    int rc = cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c), "-v",
                          "--timeout", "2000", "--read", "replica", "get", "user:1", NULL);
    print_message ("--read replica with no replica: exit %d, %s", rc, err);
    bool hit_primary = strstr (err, "served by us1") != NULL;
    free (out);
    free (err);
    assert_false (hit_primary);
    assert_true (rc != 0);
    s_cli_get (c, id, region, NULL);
    assert_string_equal (id, "us1");

    //  A one-shot client (the CLI, or any fresh handle) routes by its
    //  first RTT samples: they must be right, not just eventually right
    if (!fresh_rtts_right)
        print_message ("fresh handles' RTTs were wrong twice (see above)\n");
    assert_true (fresh_rtts_right);
    //  And a handle used now and then keeps measuring the links, not the
    //  time between its calls
    if (!idle_rtts_right)
        print_message ("an intermittent reader's RTTs grew (see above)\n");
    assert_true (idle_rtts_right);

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_nearest, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
