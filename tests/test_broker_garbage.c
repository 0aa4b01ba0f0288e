/*  test_broker_garbage.c - the broker answers bad input as a node does
    (issue 6, defect 10).

    What a user relies on: a client (or a tool written from PROTOCOL.md)
    that sends the broker something it cannot take learns why at once,
    with an ERROR whose code says what was wrong (EVERSION, EPROTO) and
    whose rid is the request's when it could be read, 0 otherwise,
    instead of waiting for its timeout; and nothing it sends changes the
    broker's directory or stops it serving.

    Through a raw DEALER and a raw REQ (whose envelope has an empty
    delimiter frame): a wrong version, an unknown type, bytes that are not
    msgpack, an empty body, a truncated array, a map, a rid that is not a
    uint, node and stream messages sent to the broker (the broker's own
    directives included), a SWITCHOVER without a node, a REGISTER of
    another version; and a message of too many frames, which is dropped
    without a reply, as on a node. Afterwards the broker still lists the
    real primary, for the raw peer and for the CLI.
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

#define REPLY_MS  3000

static int
s_setup (void **state)
{
    *state = cluster_new ("broker_garbage");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

typedef struct {
    const char *what;
    const char *body;          /* raw bytes */
    size_t      len;
    int         code;          /* WALCAST_E* of the ERROR */
    uint64_t    rid;           /* rid of the ERROR */
} s_case_t;

#define S(text)  text, sizeof text - 1

static const s_case_t s_cases [] = {
    { "version 2 TOPOLOGY_GET",  S ("\x93\x02\x42\x07"), WALCAST_EVERSION, 0 },
    { "version 0",               S ("\x93\x00\x42\x07"), WALCAST_EVERSION, 0 },
    { "version 2 REGISTER",      S ("\x94\x02\x40\x07\x90"), WALCAST_EVERSION, 0 },
    { "unknown type 99",         S ("\x93\x01\x63\x07"), WALCAST_EPROTO, 0 },
    { "unknown type 74",         S ("\x93\x01\x4a\x07"), WALCAST_EPROTO, 0 },
    { "a FORGET without node_id", S ("\x93\x01\x49\x07"), WALCAST_EPROTO, 7 },
    { "a FORGET of an empty id", S ("\x94\x01\x49\x08\xa0"), WALCAST_EPROTO, 8 },
    { "not msgpack",             S ("\xc1hello, broker"), WALCAST_EPROTO, 0 },
    { "plain text",              S ("GET / HTTP/1.0\r\n\r\n"), WALCAST_EPROTO, 0 },
    { "empty body",              "", 0, WALCAST_EPROTO, 0 },
    { "truncated array",         S ("\x93\x01\x42"), WALCAST_EPROTO, 0 },
    { "trailing bytes",          S ("\x93\x01\x42\x07\x00"), WALCAST_EPROTO, 0 },
    { "a map",                   S ("\x81\x01\x42"), WALCAST_EPROTO, 0 },
    { "an empty array",          S ("\x90"), WALCAST_EPROTO, 0 },
    { "rid a string",            S ("\x93\x01\x42\xa1x"), WALCAST_EPROTO, 0 },
    { "no rid",                  S ("\x92\x01\x42"), WALCAST_EPROTO, 0 },
    { "a GET",                   S ("\x94\x01\x03\x09\xc4\x01k"), WALCAST_EPROTO, 9 },
    { "a PING",                  S ("\x93\x01\x04\x0a"), WALCAST_EPROTO, 10 },
    { "a TOPOLOGY",              S ("\x95\x01\x43\x0b\x00\x90"), WALCAST_EPROTO, 11 },
    { "an ERROR",                S ("\x96\x01\x1f\x0c\x02\xa1x\xa0"), WALCAST_EPROTO, 12 },
    { "a HEARTBEAT",             S ("\x95\x01\x21\x01\x02\x03"), WALCAST_EPROTO, 0 },
    { "a PROMOTE",               S ("\x94\x01\x44\x0d\x02"), WALCAST_EPROTO, 13 },
    { "a PROMOTE of epoch 0",    S ("\x94\x01\x44\x0e\x00"), WALCAST_EPROTO, 14 },
    { "a SWITCHOVER_DONE",       S ("\x95\x01\x48\x0f\x02\xa3h:1"), WALCAST_EPROTO, 15 },
    { "a SWITCHOVER, no node",   S ("\x93\x01\x47\x10"), WALCAST_EPROTO, 16 },
    { "a SWITCHOVER, empty node", S ("\x94\x01\x47\x11\xa0"), WALCAST_EPROTO, 17 },
};

//  Send body; the reply must be ERROR code with rid. 0 or -1 (printed).
static int
s_expect_error (broker_peer_t *peer, const s_case_t *c, const char *via)
{
    if (broker_peer_send (peer, c->body, c->len) != 0)
        return -1;
    wc_msg_t msg;
    int rc = broker_peer_recv (peer, REPLY_MS, &msg);
    if (rc == 1) {
        fprintf (stderr, "%s via %s: no reply within %d ms\n", c->what, via, REPLY_MS);
        return -1;
    }
    char text [1100] = "";
    if (rc == 0)
        broker_peer_error_text (&msg, text, sizeof text);
    int code = rc == 0 && msg.type == WC_MSG_ERROR ? wc_err_from_wire (msg.u.error.code) : 0;
    print_message ("%s via %s: %s rid %llu \"%s\"\n", c->what, via,
                   code ? walcast_errname (code) : "not an ERROR",
                   (unsigned long long) msg.rid, text);
    if (rc != 0 || code != c->code || msg.rid != c->rid) {
        fprintf (stderr, "%s via %s: expected ERROR %s with rid %llu\n", c->what, via,
                 walcast_errname (c->code), (unsigned long long) c->rid);
        return -1;
    }
    return 0;
}

//  A message of nine frames (identity + 8): dropped, no reply; the
//  next request on the same connection is answered.
static void
s_too_many_frames (broker_peer_t *peer, void *raw_dealer)
{
    for (int i = 0; i < 7; i++)
        assert_int_equal (zmq_send (raw_dealer, "x", 1, ZMQ_SNDMORE), 1);
    assert_int_equal (zmq_send (raw_dealer, "\x93\x01\x42\x05", 4, 0), 4);
    zmq_pollitem_t item = { raw_dealer, 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 500), 0);
    wc_msg_t msg;
    assert_int_equal (broker_peer_topology (peer, 77, REPLY_MS, &msg), 0);
}

static void
test_garbage (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    assert_int_equal (cluster_broker_start (c, 0), 0);
    int p = cluster_add (c, "p1", NULL, NULL);
    cluster_set_broker (c, p, true);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);

    broker_peer_t *dealer = broker_peer_new (cluster_broker_addr (c), ZMQ_DEALER);
    assert_non_null (dealer);
    int failed = 0;
    size_t count = sizeof s_cases / sizeof s_cases [0];
    for (size_t i = 0; i < count; i++)
        failed += s_expect_error (dealer, &s_cases [i], "DEALER") != 0;
    //  REQ: one request, one reply; a fresh socket per case keeps a lost
    //  reply from wedging the rest
    for (size_t i = 0; i < count; i++) {
        broker_peer_t *req = broker_peer_new (cluster_broker_addr (c), ZMQ_REQ);
        assert_non_null (req);
        failed += s_expect_error (req, &s_cases [i], "REQ") != 0;
        broker_peer_destroy (&req);
    }
    if (failed)
        fail_msg ("%d bad requests were not answered with the right ERROR", failed);

    //  Too many frames: dropped, as on a node
    void *ctx = zmq_ctx_new ();
    void *raw = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (raw, ZMQ_LINGER, &linger, sizeof linger);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://%s", cluster_broker_addr (c));
    assert_int_equal (zmq_connect (raw, endpoint), 0);
    s_too_many_frames (dealer, raw);
    zmq_close (raw);
    zmq_ctx_term (ctx);

    //  The directory is as it was
    wc_msg_t msg;
    int64_t deadline = cluster_now_ms () + 10000;
    uint64_t rid = 1000;
    while (true) {
        assert_int_equal (broker_peer_topology (dealer, ++rid, REPLY_MS, &msg), 0);
        if (msg.u.topology.count == 1)
            break;
        assert_true (msg.u.topology.count == 0 && cluster_now_ms () < deadline);
        cluster_nap_ms (100);
    }
    wc_node_info_t info;
    assert_int_equal (wc_node_info_from_object (&msg.u.topology.items [0], &info), 0);
    assert_int_equal (info.id.len, 2);
    assert_memory_equal (info.id.ptr, "p1", 2);
    broker_peer_destroy (&dealer);
    //  and the CLI sees p1 up once the broker promoted it (a candidate,
    //  which takes no writes, is listed down until then)
    int listed = -1;
    deadline = cluster_now_ms () + 10000;
    while (listed != 1 && cluster_now_ms () < deadline) {
        char *out = NULL;
        assert_int_equal (cluster_cli (c, NULL, &out, NULL, "--broker",
                                       cluster_broker_addr (c), "status", NULL), 0);
        listed = cluster_status_state (out, "p1");
        free (out);
        if (listed != 1)
            cluster_nap_ms (100);
    }
    assert_int_equal (listed, 1);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_garbage, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
