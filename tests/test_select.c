/*  test_select.c - the read-routing rules, without a network.

    What a user relies on, checked on hand-made node tables:
    - "nearest" reads go to the nodes within the latency window of the
      lowest RTT, the client's own region first, then to the others by
      RTT; nodes never measured come last; down or silent nodes never;
    - "replica", "primary", "region=NAME" and "strong" pick only what
      they say; "session" keeps the primary as the last resort;
    - the primary is the up one of the highest epoch;
    - the RTT average moves by a fifth of each honest sample (not the
      first PING of a connection, not a PONG left queued); a PING
      unanswered for 2 s makes a node unreachable, and PINGs go out
      once a second;
    - the session token only grows and is what a session read sends,
      except for a read the primary proves false (a node that claimed a
      seq the primary does not have); a node may wait for it at most
      half the call's time left;
    - the node table is bounded: when full, a new node takes the slot of
      one that is gone, never of one the application added.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <zmq.h>
#include "walcast.h"
#include "codec.h"
#include "select.h"
#include "session.h"
#include "topology.h"

#define P  WC_ROLE_PRIMARY
#define R  WC_ROLE_REPLICA

//  A node: role, region, rtt (< 0 unknown); up and reachable.
static wc_select_node_t
s_node (uint8_t role, const char *region, double rtt)
{
    wc_select_node_t node = { role, region, 1, true, true, rtt };
    return node;
}

static wc_select_query_t
s_query (const char *pref, const char *consistency, const char *region)
{
    wc_select_query_t query;
    memset (&query, 0, sizeof query);
    assert_int_equal (wc_select_parse_read (pref, &query.pref), 0);
    assert_int_equal (wc_select_parse_consistency (consistency, &query.consistency), 0);
    query.region = region;
    query.window_ms = 15;
    return query;
}

//  Run the selection and compare with the expected indexes (-1 ends).
static void
s_expect (const wc_select_node_t *nodes, size_t count,
          const wc_select_query_t *query, const int *expect)
{
    size_t out [16];
    bool appended;
    size_t n = wc_select_candidates (nodes, count, query, out, 16, &appended);
    size_t want = 0;
    while (expect [want] >= 0)
        want++;
    for (size_t i = 0; i < n; i++)
        print_message ("  got [%zu] = %zu\n", i, out [i]);
    assert_int_equal (n, want);
    for (size_t i = 0; i < n; i++)
        assert_int_equal (out [i], (size_t) expect [i]);
}

static void
test_nearest_window (void **state)
{
    (void) state;
    wc_select_node_t nodes [] = {
        s_node (R, "us", 30),       // 0: outside the window
        s_node (R, "eu", 20),       // 1: inside (10 + 15 = 25)
        s_node (P, "us", 50),       // 2: outside
        s_node (R, "ap", 10),       // 3: the lowest
        s_node (R, "eu", 25),       // 4: on the edge: inside
    };
    wc_select_query_t q = s_query ("nearest", "eventual", "");
    s_expect (nodes, 5, &q, (int []) { 3, 1, 4, 0, 2, -1 });

    //  Region "us": node 0 is not in the window, so it gets no preference
    q.region = "us";
    s_expect (nodes, 5, &q, (int []) { 3, 1, 4, 0, 2, -1 });
    //  A 20 ms window takes it in (30 <= 10 + 20): now it comes first
    q.window_ms = 20;
    s_expect (nodes, 5, &q, (int []) { 0, 3, 1, 4, 2, -1 });
    //  Region "eu": its two nodes in the window come first...
    q.region = "eu";
    q.window_ms = 15;
    s_expect (nodes, 5, &q, (int []) { 1, 4, 3, 0, 2, -1 });
    //  ... unless the window is 0: only the lowest is in it
    q.window_ms = 0;
    s_expect (nodes, 5, &q, (int []) { 3, 1, 4, 0, 2, -1 });
}

static void
test_nearest_prefers_own_region (void **state)
{
    (void) state;
    wc_select_node_t nodes [] = {
        s_node (P, "us", 1),        // 0: lowest, other region
        s_node (R, "eu", 12),       // 1: in the window, ours
        s_node (R, "eu", 9),        // 2: in the window, ours, closer
        s_node (R, "eu", 40),       // 3: ours but far outside the window
        s_node (R, "ap", 5),        // 4: in the window, other region
    };
    wc_select_query_t q = s_query ("nearest", "eventual", "eu");
    s_expect (nodes, 5, &q, (int []) { 2, 1, 0, 4, 3, -1 });

    //  No region: by RTT only
    q.region = "";
    s_expect (nodes, 5, &q, (int []) { 0, 4, 2, 1, 3, -1 });
    //  A region nobody is in: the same
    q.region = "mars";
    s_expect (nodes, 5, &q, (int []) { 0, 4, 2, 1, 3, -1 });
}

static void
test_down_and_unreachable_skipped (void **state)
{
    (void) state;
    wc_select_node_t nodes [] = {
        s_node (R, "eu", 1),
        s_node (R, "eu", 2),
        s_node (R, "eu", 3),
        s_node (P, "us", 4),
    };
    nodes [0].reachable = false;        // stopped answering PINGs
    nodes [1].up = false;               // the broker says down
    wc_select_query_t q = s_query ("nearest", "eventual", "eu");
    s_expect (nodes, 4, &q, (int []) { 2, 3, -1 });
    q = s_query ("replica", "eventual", "");
    s_expect (nodes, 4, &q, (int []) { 2, -1 });
    q = s_query ("region=eu", "eventual", "");
    s_expect (nodes, 4, &q, (int []) { 2, -1 });

    //  Every node silent: no candidate (the handle then decides)
    for (int i = 0; i < 4; i++)
        nodes [i].reachable = false;
    q = s_query ("nearest", "eventual", "");
    s_expect (nodes, 4, &q, (int []) { -1 });
}

static void
test_unknown_rtt_last (void **state)
{
    (void) state;
    wc_select_node_t nodes [] = {
        s_node (R, "us", -1),       // never measured, other region
        s_node (R, "eu", 80),       // measured, far
        s_node (R, "eu", -1),       // never measured, ours
        s_node (P, "us", 3),
    };
    wc_select_query_t q = s_query ("nearest", "eventual", "eu");
    s_expect (nodes, 4, &q, (int []) { 3, 1, 2, 0, -1 });
    q = s_query ("replica", "eventual", "eu");
    s_expect (nodes, 4, &q, (int []) { 1, 0, 2, -1 });

    //  Nothing measured yet: own region first, then table order
    for (int i = 0; i < 4; i++)
        nodes [i].rtt_ms = -1;
    q = s_query ("nearest", "eventual", "eu");
    s_expect (nodes, 4, &q, (int []) { 1, 2, 0, 3, -1 });
}

static void
test_replica_primary_region (void **state)
{
    (void) state;
    wc_select_node_t nodes [] = {
        s_node (P, "us", 1),
        s_node (R, "eu", 30),
        s_node (R, "us", 20),
        s_node (0, "eu", 10),       // role not known yet
    };
    //  replica: replicas only (a node of unknown role is not one)
    wc_select_query_t q = s_query ("replica", "eventual", "");
    s_expect (nodes, 4, &q, (int []) { 2, 1, -1 });
    //  primary: the primary only, whatever the consistency
    q = s_query ("primary", "eventual", "");
    s_expect (nodes, 4, &q, (int []) { 0, -1 });
    q = s_query ("primary", "session", "");
    s_expect (nodes, 4, &q, (int []) { 0, -1 });
    //  region=NAME: that region only, by RTT
    q = s_query ("region=eu", "eventual", "us");
    s_expect (nodes, 4, &q, (int []) { 3, 1, -1 });
    q = s_query ("region=ap", "eventual", "");
    s_expect (nodes, 4, &q, (int []) { -1 });
    //  strong: the primary, whatever the preference
    q = s_query ("replica", "strong", "");
    s_expect (nodes, 4, &q, (int []) { 0, -1 });
    q = s_query ("nearest", "strong", "eu");
    s_expect (nodes, 4, &q, (int []) { 0, -1 });
    //  No primary known: strong has no candidate
    nodes [0].role = R;
    s_expect (nodes, 4, &q, (int []) { -1 });
}

static void
test_session_appends_primary (void **state)
{
    (void) state;
    wc_select_node_t nodes [] = {
        s_node (R, "eu", 2),
        s_node (P, "us", 90),       // far outside the window
        s_node (R, "eu", 3),
    };
    //  replica + session: the replicas, then the primary, marked as added
    wc_select_query_t q = s_query ("replica", "session", "eu");
    s_expect (nodes, 3, &q, (int []) { 0, 2, 1, -1 });
    size_t out [4];
    bool appended = false;
    assert_int_equal (wc_select_candidates (nodes, 3, &q, out, 4, &appended), 3);
    assert_true (appended);
    //  region=eu + session: the same
    q = s_query ("region=eu", "session", "");
    s_expect (nodes, 3, &q, (int []) { 0, 2, 1, -1 });
    //  nearest + session: the primary is already a fallback, not twice
    q = s_query ("nearest", "session", "eu");
    s_expect (nodes, 3, &q, (int []) { 0, 2, 1, -1 });
    assert_int_equal (wc_select_candidates (nodes, 3, &q, out, 4, &appended), 3);
    assert_false (appended);
    //  eventual: no primary added
    q = s_query ("replica", "eventual", "eu");
    s_expect (nodes, 3, &q, (int []) { 0, 2, -1 });
    //  a primary the broker says is down is not added
    nodes [1].up = false;
    q = s_query ("replica", "session", "eu");
    s_expect (nodes, 3, &q, (int []) { 0, 2, -1 });
    //  an unreachable one still is: it is the only node that is never behind
    nodes [1].up = true;
    nodes [1].reachable = false;
    s_expect (nodes, 3, &q, (int []) { 0, 2, 1, -1 });
}

static void
test_max_keeps_the_best (void **state)
{
    (void) state;
    wc_select_node_t nodes [] = {
        s_node (R, "", 40), s_node (R, "", 30), s_node (R, "", 20),
        s_node (R, "", 10), s_node (R, "", -1),
    };
    wc_select_query_t q = s_query ("nearest", "eventual", "");
    size_t out [2];
    assert_int_equal (wc_select_candidates (nodes, 5, &q, out, 2, NULL), 2);
    assert_int_equal (out [0], 3);
    assert_int_equal (out [1], 2);
    assert_int_equal (wc_select_candidates (nodes, 5, &q, out, 0, NULL), 0);
    assert_int_equal (wc_select_candidates (nodes, 0, &q, out, 2, NULL), 0);
}

static void
test_primary_choice (void **state)
{
    (void) state;
    wc_select_node_t nodes [] = {
        s_node (P, "", 1),          // old primary, epoch 1
        s_node (R, "", 1),
        s_node (P, "", 1),          // new primary, epoch 2
    };
    nodes [2].epoch = 2;
    assert_int_equal (wc_select_primary (nodes, 3), 2);
    //  the broker says the new one is down: the up one wins
    nodes [2].up = false;
    assert_int_equal (wc_select_primary (nodes, 3), 0);
    //  no primary at all
    nodes [0].role = R;
    nodes [2].role = R;
    assert_int_equal (wc_select_primary (nodes, 3), WC_SELECT_NONE);
}

static void
test_parse (void **state)
{
    (void) state;
    wc_read_pref_t pref;
    int c;
    assert_int_equal (wc_select_parse_read ("nearest", &pref), 0);
    assert_int_equal (pref.mode, WC_READ_NEAREST);
    assert_int_equal (wc_select_parse_read ("region=eu-west", &pref), 0);
    assert_int_equal (pref.mode, WC_READ_REGION);
    assert_string_equal (pref.region, "eu-west");
    assert_int_equal (wc_select_parse_read ("region=", &pref), WALCAST_EINVAL);
    assert_int_equal (wc_select_parse_read ("closest", &pref), WALCAST_EINVAL);
    assert_int_equal (wc_select_parse_read ("Primary", &pref), WALCAST_EINVAL);
    assert_int_equal (wc_select_parse_read (NULL, &pref), WALCAST_EINVAL);
    char longname [80];
    memset (longname, 'x', sizeof longname);
    memcpy (longname, "region=", 7);
    longname [7 + 65] = 0;          // 65 bytes: one too many
    assert_int_equal (wc_select_parse_read (longname, &pref), WALCAST_EINVAL);
    longname [7 + 64] = 0;
    assert_int_equal (wc_select_parse_read (longname, &pref), 0);
    assert_int_equal (wc_select_parse_consistency ("strong", &c), 0);
    assert_int_equal (c, WC_CONSISTENCY_STRONG);
    assert_int_equal (wc_select_parse_consistency ("linearizable", &c), WALCAST_EINVAL);

    //  The public setters say the same
    walcast_t *w = walcast_new ();
    assert_non_null (w);
    assert_int_equal (walcast_set_read (w, WALCAST_READ_REPLICA, NULL), 0);
    assert_int_equal (walcast_set_read (w, WALCAST_READ_REGION, "eu-west"), 0);
    assert_int_equal (walcast_set_read (w, WALCAST_READ_REGION, NULL), WALCAST_EINVAL);
    assert_int_equal (walcast_set_read (w, WALCAST_READ_REGION, ""), WALCAST_EINVAL);
    assert_int_equal (walcast_set_read (w, WALCAST_READ_REGION, longname + 7), 0);
    assert_int_equal (walcast_set_read (w, WALCAST_READ_PRIMARY, "eu"), WALCAST_EINVAL);
    assert_int_equal (walcast_set_read (w, (walcast_read_t) 9, NULL), WALCAST_EINVAL);
    assert_int_equal (walcast_set_consistency (w, WALCAST_EVENTUAL), 0);
    assert_int_equal (walcast_set_consistency (w, (walcast_consistency_t) 7),
                      WALCAST_EINVAL);
    //  The parsers a command line uses say the same as the module's
    walcast_read_t read;
    const char *region = "x";
    assert_int_equal (walcast_read_parse ("nearest", &read, &region), 0);
    assert_int_equal (read, WALCAST_READ_NEAREST);
    assert_null (region);
    assert_int_equal (walcast_read_parse ("region=eu-west", &read, &region), 0);
    assert_int_equal (read, WALCAST_READ_REGION);
    assert_string_equal (region, "eu-west");
    assert_int_equal (walcast_read_parse ("nope", &read, &region), WALCAST_EINVAL);
    walcast_consistency_t level;
    assert_int_equal (walcast_consistency_parse ("strong", &level), 0);
    assert_int_equal (level, WALCAST_STRONG);
    assert_int_equal (walcast_consistency_parse ("", &level), WALCAST_EINVAL);
    assert_int_equal (walcast_session_seq (w), 0);
    walcast_destroy (&w);
    //  The version, as a string and in parts; walcast_free takes NULL
    int major = -1, minor = -1, patch = -1;
    assert_string_equal (walcast_version (&major, &minor, &patch), "0.9.0");
    assert_int_equal (major, WALCAST_VERSION_MAJOR);
    assert_int_equal (minor, WALCAST_VERSION_MINOR);
    assert_int_equal (patch, WALCAST_VERSION_PATCH);
    assert_non_null (walcast_version (NULL, NULL, NULL));
    walcast_free (NULL);
    assert_null (w);
}

static void
test_ewma (void **state)
{
    (void) state;
    double avg = wc_topology_ewma (-1, 10);     // first sample as it is
    assert_true (avg == 10);
    avg = wc_topology_ewma (avg, 20);            // 0.8 * 10 + 0.2 * 20
    assert_true (avg > 11.999 && avg < 12.001);
    avg = wc_topology_ewma (avg, 2);             // 0.8 * 12 + 0.2 * 2
    assert_true (avg > 9.999 && avg < 10.001);
    //  A steady input converges to it
    for (int i = 0; i < 100; i++)
        avg = wc_topology_ewma (avg, 50);
    assert_true (avg > 49.99 && avg < 50.01);
}

static void
test_ping_timing (void **state)
{
    (void) state;
    wc_peer_t node;
    memset (&node, 0, sizeof node);
    node.reachable = true;
    node.rtt_ms = -1;
    int64_t t = 5000000;
    assert_true (wc_topology_ping_due (&node, t));        // never pinged
    node.ping_rid = 7;
    node.ping_sent_us = t;
    assert_false (wc_topology_ping_due (&node, t + 1500000));   // in flight
    assert_true (node.reachable);

    //  The first PONG on a connection: identity and life, but no
    //  sample (that PING waited for the handshakes); PING again at once
    wc_msg_t pong;
    memset (&pong, 0, sizeof pong);
    pong.type = WC_MSG_PONG;
    pong.rid = 7;
    pong.u.pong.role = WC_ROLE_REPLICA;
    pong.u.pong.id.ptr = (const uint8_t *) "eu1";
    pong.u.pong.id.len = 3;
    pong.u.pong.region.ptr = (const uint8_t *) "eu\nwest";
    pong.u.pong.region.len = 7;
    pong.u.pong.seq = 42;
    assert_true (wc_topology_pong (&node, &pong, t + 12000, true));
    assert_true (node.rtt_ms < 0);
    assert_int_equal (node.ping_rid, 0);
    assert_string_equal (node.id, "eu1");
    assert_string_equal (node.region, "eu?west");       // control bytes masked
    assert_int_equal (node.role, WC_ROLE_REPLICA);
    assert_int_equal (node.applied_seq, 42);

    //  A first sample read late (the process was not looking: a loaded
    //  machine) is no sample either, and a node never measured is asked
    //  again, or a one-shot client would route without its RTT
    node.ping_rid = 7;
    node.ping_sent_us = t;
    pong.rid = 7;
    assert_true (wc_topology_pong (&node, &pong, t + 40000, false));
    assert_true (node.rtt_ms < 0);
    assert_int_equal (node.ping_rid, 0);

    //  The next one is the first sample (3 ms), taken as it is
    node.ping_rid = 8;
    node.ping_sent_us = t;
    pong.rid = 8;
    assert_false (wc_topology_pong (&node, &pong, t + 3000, true));
    assert_true (node.rtt_ms > 2.999 && node.rtt_ms < 3.001);
    assert_int_equal (node.ping_rid, 0);

    //  A PONG read late (it sat in the queue) is no sample
    node.ping_rid = 9;
    node.ping_sent_us = t;
    pong.rid = 9;
    assert_false (wc_topology_pong (&node, &pong, t + 1200000, false));
    assert_true (node.rtt_ms > 2.999 && node.rtt_ms < 3.001);
    assert_int_equal (node.ping_rid, 0);
    assert_true (node.reachable);

    //  Next PING a second after the last
    assert_false (wc_topology_ping_due (&node, t + 999999));
    assert_true (wc_topology_ping_due (&node, t + 1000000));
    node.ping_rid = 10;
    node.ping_sent_us = t + 1000000;
    //  Unanswered for 2 s: unreachable, and a new PING is due
    assert_false (wc_topology_ping_due (&node, t + 2999999));
    assert_true (node.reachable);
    assert_true (wc_topology_ping_due (&node, t + 3000000));
    assert_false (node.reachable);
    //  A late PONG for an older PING brings it back, without a sample
    pong.rid = 8;
    assert_false (wc_topology_pong (&node, &pong, t + 3500000, true));
    assert_true (node.reachable);
    assert_true (node.rtt_ms > 2.999 && node.rtt_ms < 3.001);
}

static void
test_session_token (void **state)
{
    (void) state;
    wc_session_t s;
    wc_session_reset (&s);
    assert_int_equal (wc_session_min_seq (&s, true, 0), 0);
    assert_int_equal (wc_session_wait_ms (0, 200, 5000), 0);   // nothing to wait for
    wc_session_note (&s, 1, 10);
    wc_session_read (&s, 7, 0, 100);    // older: no effect
    assert_int_equal (s.seq, 10);
    assert_int_equal (wc_session_min_seq (&s, true, 0), 10);
    assert_int_equal (wc_session_min_seq (&s, true, 12), 12);   // explicit larger
    assert_int_equal (wc_session_min_seq (&s, false, 0), 0);    // eventual
    assert_int_equal (wc_session_min_seq (&s, false, 5), 5);
    assert_int_equal (wc_session_wait_ms (10, 200, 5000), 200);
    assert_int_equal (wc_session_wait_ms (10, 0, 5000), 0);
    assert_int_equal (wc_session_wait_ms (10, 1000000, 1000000000), WC_MAX_WAIT_MS);
    //  At most half the time left, so another node can still be tried
    assert_int_equal (wc_session_wait_ms (10, 200, 150), 75);
    assert_int_equal (wc_session_wait_ms (10, 200, 0), 0);
    //  The token's epoch goes with it (a node of an older epoch declines),
    //  the newest of the writes', never down
    assert_int_equal (wc_session_min_epoch (&s, true), 1);
    assert_int_equal (wc_session_min_epoch (&s, false), 0);
    wc_session_note (&s, 3, 11);
    wc_session_note (&s, 2, 9);
    assert_int_equal (wc_session_min_epoch (&s, true), 3);
    //  ... and of the reads': a value read from a node at epoch 4 keeps
    //  a node still at 3 (a deposed primary) from serving the next read
    wc_session_read (&s, 11, 4, 200);
    assert_int_equal (wc_session_min_epoch (&s, true), 4);
    wc_session_read (&s, 12, 2, 300);
    assert_int_equal (wc_session_min_epoch (&s, true), 4);
    //  A node of epoch 5 whose epochs up to 4 end at 8: the session's
    //  9..12 were rolled back; the token goes back to 8, in epoch 5
    wc_session_rollback (&s, 8, 5);
    assert_int_equal (s.seq, 8);
    assert_int_equal (wc_session_min_seq (&s, true, 0), 8);
    assert_int_equal (wc_session_min_epoch (&s, true), 5);
    assert_int_equal (s.pending, 0);
}

static void
test_session_false_reads (void **state)
{
    (void) state;
    wc_session_t s;
    wc_session_reset (&s);
    wc_session_note (&s, 1, 10);                //  wrote 10: the primary has 10
    //  A replica further than the primary was known to be: the token
    //  follows it (monotonic reads), as pending
    wc_session_read (&s, 15, 0, 1000);
    assert_int_equal (s.seq, 15);
    assert_int_equal (s.confirmed, 10);
    assert_int_equal (s.pending, 15);
    //  The primary's answer to a PING sent before that read proves
    //  nothing: the primary may have had 12 then and 15 now
    assert_false (wc_session_primary (&s, 12, 900));
    assert_int_equal (s.seq, 15);
    //  Asked after the read, it has 16: the read was real
    assert_false (wc_session_primary (&s, 16, 1100));
    assert_int_equal (s.seq, 15);
    assert_int_equal (s.pending, 0);
    assert_int_equal (s.confirmed, 15);

    //  A node that claims a seq near 2^64...
    wc_session_read (&s, UINT64_MAX - 1, 0, 2000);
    assert_true (s.seq == UINT64_MAX - 1);
    //  ...is proved wrong by the primary, asked after, at 17: forgotten
    assert_true (wc_session_primary (&s, 17, 2000));
    assert_int_equal (s.seq, 16);       //  as far as the primary was known to be
    assert_int_equal (s.pending, 0);
    //  The broker's word (time unknown) raises what the primary is known
    //  to have, but proves no read false
    wc_session_read (&s, 30, 0, 3000);
    assert_false (wc_session_primary (&s, 20, 0));
    assert_int_equal (s.seq, 30);
    assert_false (wc_session_primary (&s, 31, 0));
    assert_int_equal (s.seq, 30);
    assert_int_equal (s.pending, 0);
    //  A write moves it on as before
    wc_session_note (&s, 2, 40);
    assert_int_equal (s.seq, 40);
    assert_int_equal (s.epoch, 2);
}

static void
test_table_bounded (void **state)
{
    (void) state;
    void *ctx = zmq_ctx_new ();
    assert_non_null (ctx);
    wc_topology_t *t = wc_topology_new (ctx);
    assert_non_null (t);
    size_t index;
    bool replaced = true;
    //  The application's own node is pinned
    assert_int_equal (wc_topology_add (t, "127.0.0.1:1000", true, &index, &replaced), 0);
    assert_false (replaced);
    char addr [64];
    for (int i = 1; i < WC_TOPOLOGY_MAX; i++) {
        snprintf (addr, sizeof addr, "127.0.0.1:%d", 1000 + i);
        assert_int_equal (wc_topology_add (t, addr, false, &index, &replaced), 0);
        assert_int_equal (index, (size_t) i);
        assert_false (replaced);
    }
    assert_int_equal (wc_topology_size (t), WC_TOPOLOGY_MAX);
    //  Full of nodes that answer: no room
    assert_int_equal (wc_topology_add (t, "127.0.0.1:2000", false, &index, &replaced),
                      WALCAST_ETOOBIG);
    //  A known address is found, full or not
    assert_int_equal (wc_topology_add (t, "127.0.0.1:1007", false, &index, &replaced), 0);
    assert_int_equal (index, 7);
    //  A pinned node that stopped answering keeps its slot; another does not
    wc_topology_peer (t, 0)->reachable = false;
    wc_topology_peer (t, 9)->reachable = false;
    assert_int_equal (wc_topology_add (t, "127.0.0.1:2000", false, &index, &replaced), 0);
    assert_int_equal (index, 9);
    assert_true (replaced);
    assert_string_equal (wc_topology_peer (t, 9)->addr, "127.0.0.1:2000");
    assert_true (wc_topology_peer (t, 9)->reachable);
    assert_int_equal (wc_topology_size (t), WC_TOPOLOGY_MAX);

    //  A node the broker describes goes only once it is down and gone
    //  from the broker's list
    wc_topology_peer (t, 11)->from_broker = true;
    wc_topology_peer (t, 11)->reachable = false;
    wc_topology_peer (t, 11)->listed = true;
    wc_topology_peer (t, 11)->up = false;
    assert_int_equal (wc_topology_add (t, "127.0.0.1:2001", false, &index, &replaced),
                      WALCAST_ETOOBIG);
    wc_topology_begin (t);
    wc_topology_end (t);        //  a TOPOLOGY that does not list it
    assert_false (wc_topology_peer (t, 11)->listed);
    assert_int_equal (wc_topology_add (t, "127.0.0.1:2001", false, &index, &replaced), 0);
    assert_int_equal (index, 11);
    assert_true (replaced);

    //  A STATUS reply names the node and who it follows
    wc_msg_t status;
    memset (&status, 0, sizeof status);
    status.type = WC_MSG_STATUS_REPLY;
    status.u.status.role = WC_ROLE_REPLICA;
    status.u.status.id.ptr = (const uint8_t *) "r1";
    status.u.status.id.len = 2;
    status.u.status.applied_seq = 5;
    status.u.status.primary.ptr = (const uint8_t *) "127.0.0.1:7100";
    status.u.status.primary.len = 14;
    wc_topology_status (wc_topology_peer (t, 11), &status);
    assert_string_equal (wc_topology_peer (t, 11)->id, "r1");
    assert_string_equal (wc_topology_peer (t, 11)->primary, "127.0.0.1:7100");
    assert_int_equal (wc_topology_peer (t, 11)->role, WC_ROLE_REPLICA);
    assert_int_equal (wc_topology_peer (t, 11)->applied_seq, 5);

    wc_topology_destroy (&t);
    assert_null (t);
    zmq_ctx_term (ctx);
}

static void
test_endpoint (void **state)
{
    (void) state;
    char ep [300];
    bool ipv6;
    assert_int_equal (wc_topology_endpoint ("127.0.0.1:7000", 1, ep, sizeof ep, &ipv6), 0);
    assert_string_equal (ep, "tcp://127.0.0.1:7001");
    assert_false (ipv6);
    assert_int_equal (wc_topology_endpoint ("[::1]:7000", 0, ep, sizeof ep, &ipv6), 0);
    assert_string_equal (ep, "tcp://[::1]:7000");
    assert_true (ipv6);
    assert_int_equal (wc_topology_endpoint ("h:65535", 1, ep, sizeof ep, NULL), WALCAST_EINVAL);
    assert_int_equal (wc_topology_endpoint ("h:0", 0, ep, sizeof ep, NULL), WALCAST_EINVAL);
    assert_int_equal (wc_topology_endpoint ("::1:7000", 0, ep, sizeof ep, NULL), WALCAST_EINVAL);
    assert_int_equal (wc_topology_endpoint ("host", 0, ep, sizeof ep, NULL), WALCAST_EINVAL);
    assert_int_equal (wc_topology_endpoint ("a b:1", 0, ep, sizeof ep, NULL), WALCAST_EINVAL);
    //  A node's address is its base port P, and it binds P+1 and P+2: the
    //  table (walcast_connect) takes 1..65533, as the header says
    void *ctx = zmq_ctx_new ();
    assert_non_null (ctx);
    wc_topology_t *t = wc_topology_new (ctx);
    assert_non_null (t);
    size_t index;
    assert_int_equal (wc_topology_add (t, "h:65534", true, &index, NULL), WALCAST_EINVAL);
    assert_int_equal (wc_topology_add (t, "h:65535", true, &index, NULL), WALCAST_EINVAL);
    assert_int_equal (wc_topology_add (t, "h:65533", true, &index, NULL), 0);
    assert_int_equal (wc_topology_size (t), 1);
    wc_topology_destroy (&t);
    zmq_ctx_term (ctx);
}

//  A TOPOLOGY that lists a dead node and a live one at the same address
//  (a machine replaced under a new id): the live one has the slot, in
//  whichever order the two come, and keeps it from one TOPOLOGY to the
//  next. Before, the last one applied took the slot each time, so status
//  showed the live node down (a helper) or flapped between the two.
static wc_node_info_t
s_listed (const char *id, const char *addr, bool up)
{
    wc_node_info_t info;
    memset (&info, 0, sizeof info);
    info.id = (wc_bytes_t) { (const uint8_t *) id, (uint32_t) strlen (id) };
    info.addr = (wc_bytes_t) { (const uint8_t *) addr, (uint32_t) strlen (addr) };
    info.role = WC_ROLE_REPLICA;
    info.up = up;
    return info;
}

static void
test_address_reused (void **state)
{
    (void) state;
    void *ctx = zmq_ctx_new ();
    assert_non_null (ctx);
    wc_topology_t *t = wc_topology_new (ctx);
    assert_non_null (t);
    wc_node_info_t dead = s_listed ("old", "127.0.0.1:4000", false);
    wc_node_info_t live = s_listed ("new", "127.0.0.1:4000", true);
    const wc_node_info_t *orders [2][2] = { { &dead, &live }, { &live, &dead } };
    for (int round = 0; round < 4; round++) {
        wc_topology_begin (t);
        for (int k = 0; k < 2; k++) {
            size_t index;
            bool moved;
            int rc = wc_topology_apply (t, orders [round % 2][k], &index, &moved);
            assert_true (rc == 0 || rc == WC_TOPOLOGY_SKIPPED);
        }
        wc_topology_end (t);
        size_t at = wc_topology_find (t, "127.0.0.1:4000");
        assert_true (at != WC_SELECT_NONE);
        assert_string_equal (wc_topology_peer (t, at)->id, "new");
        assert_true (wc_topology_peer (t, at)->up);
        assert_int_equal (wc_topology_size (t), 1);
    }
    wc_topology_destroy (&t);
    zmq_ctx_term (ctx);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_nearest_window),
        cmocka_unit_test (test_nearest_prefers_own_region),
        cmocka_unit_test (test_down_and_unreachable_skipped),
        cmocka_unit_test (test_unknown_rtt_last),
        cmocka_unit_test (test_replica_primary_region),
        cmocka_unit_test (test_session_appends_primary),
        cmocka_unit_test (test_max_keeps_the_best),
        cmocka_unit_test (test_primary_choice),
        cmocka_unit_test (test_parse),
        cmocka_unit_test (test_ewma),
        cmocka_unit_test (test_ping_timing),
        cmocka_unit_test (test_session_token),
        cmocka_unit_test (test_session_false_reads),
        cmocka_unit_test (test_table_bounded),
        cmocka_unit_test (test_address_reused),
        cmocka_unit_test (test_endpoint),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
