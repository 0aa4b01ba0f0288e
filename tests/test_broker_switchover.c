/*  test_broker_switchover.c - the broker coordinates `walcast switchover`
    (issue 7), as fake nodes and a raw client see it on the wire.

    What an operator relies on: SWITCHOVER(node) is answered only once it
    is over. The primary is told to hand over (HANDOVER, target and its
    address) until it reports handover_seq (it stopped writes and the
    target holds its last seq); only then does the broker raise the epoch,
    promote the target and make the old primary and the other replicas
    follow it; the client gets SWITCHOVER_DONE(epoch, address) when the
    target serves. A request that cannot succeed is refused at once with
    the reason (EINVAL, EUNAVAILABLE, EBUSY for a second one); one the
    primary does not complete within 10 s is cancelled (the primary is
    told HANDOVER with no target, so it takes writes again) and answered
    ETIMEOUT. REQ and DEALER clients both work.
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
    *state = cluster_new ("broker_switchover");
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
s_fake (broker_fake_t *f, cluster_t *c, const char *id, int offset, int role,
        const char *primary, uint64_t epoch, uint64_t seq)
{
    char addr [32];
    snprintf (addr, sizeof addr, "127.0.0.1:%d", cluster_spare_port (c) + offset);
    assert_int_equal (broker_fake_init (f, cluster_broker_addr (c), id, addr, role,
                                        primary, epoch, seq, 0), 0);
}

static void
s_expect (broker_fake_t *f, int type, uint64_t epoch, const char *addr)
{
    if (broker_fake_expect (f, type, epoch, addr) != 0)
        fail_msg ("%s was not told what it should have (see above)", f->id);
}

/*  Send SWITCHOVER(node) with rid. */
static void
s_ask (broker_peer_t *client, const char *node, uint64_t rid)
{
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = WC_MSG_SWITCHOVER;
    msg.rid = rid;
    msg.u.switchover.node_id = (wc_bytes_t) { (const uint8_t *) node,
                                              (uint32_t) strlen (node) };
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    assert_int_equal (wc_msg_encode (&msg, &body), 0);
    assert_int_equal (broker_peer_send (client, body.data, body.size), 0);
    msgpack_sbuffer_destroy (&body);
}

/*  The reply to rid on a DEALER client, within timeout_ms. */
static void
s_reply (broker_peer_t *client, uint64_t rid, int timeout_ms, wc_msg_t *reply)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (cluster_now_ms () < deadline)
        if (broker_peer_recv (client, 100, reply) == 0 && reply->rid == rid)
            return;
    fail_msg ("no reply to rid %llu within %d ms", (unsigned long long) rid, timeout_ms);
}

/*  The DEALER client has had no answer to its SWITCHOVER yet: a
    TOPOLOGY_GET sent now is answered first. */
static void
s_no_answer_yet (broker_peer_t *client, uint64_t get_rid)
{
    wc_msg_t msg;
    if (broker_peer_topology (client, get_rid, 3000, &msg) != 0)
        fail_msg ("the SWITCHOVER was answered early, or the broker is silent");
}

static void
s_assert_error (const wc_msg_t *msg, int code, const char *says)
{
    char text [1100];
    broker_peer_error_text (msg, text, sizeof text);
    print_message ("ERROR %s: %s\n", msg->type == WC_MSG_ERROR
                   ? walcast_errname (wc_err_from_wire (msg->u.error.code)) : "-", text);
    assert_int_equal (msg->type, WC_MSG_ERROR);
    assert_int_equal (wc_err_from_wire (msg->u.error.code), code);
    assert_non_null (strstr (text, says));
}

static void
test_switchover (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    char data [512];
    snprintf (data, sizeof data, "%s/broker-data", cluster_dir (c));
    const char *flags [] = { "--data", data, NULL };
    cluster_set_broker_extra (c, flags);
    assert_int_equal (cluster_broker_start (c, NODE_TIMEOUT_MS), 0);

    //  p1 serves at epoch 1 (taken as the primary at once); r1 and r2 are
    //  its replicas
    broker_fake_t p1, r1, r2;
    s_fake (&p1, c, "p1", 0, WC_ROLE_PRIMARY, NULL, 1, 40);
    s_expect (&p1, 0, 0, NULL);
    s_fake (&r1, c, "r1", 1, WC_ROLE_REPLICA, p1.addr, 1, 38);
    s_fake (&r2, c, "r2", 2, WC_ROLE_REPLICA, p1.addr, 1, 30);
    s_expect (&r1, 0, 0, NULL);
    s_expect (&r2, 0, 0, NULL);

    //  Refused at once, with the reason
    broker_peer_t *dealer = broker_peer_new (cluster_broker_addr (c), ZMQ_DEALER);
    assert_non_null (dealer);
    wc_msg_t reply;
    s_ask (dealer, "zz", 1);
    s_reply (dealer, 1, 3000, &reply);
    s_assert_error (&reply, WALCAST_EINVAL, "no node zz in the directory");
    s_ask (dealer, "p1", 2);
    s_reply (dealer, 2, 3000, &reply);
    s_assert_error (&reply, WALCAST_EINVAL, "node p1 is already the primary");

    //  To r1, from a REQ client: p1 is told to hand over, and nothing is
    //  answered until it is over
    broker_peer_t *req = broker_peer_new (cluster_broker_addr (c), ZMQ_REQ);
    assert_non_null (req);
    s_ask (req, "r1", 7);
    broker_fake_t *all [] = { &p1, &r1, &r2 };
    assert_true (broker_fake_until (all, 3, &p1, WC_MSG_HANDOVER, 1, r1.addr, 5000) >= 0);
    s_ask (dealer, "r2", 3);
    s_reply (dealer, 3, 3000, &reply);
    s_assert_error (&reply, WALCAST_EBUSY, "a switchover to r1 is under way");
    s_expect (&p1, WC_MSG_HANDOVER, 1, r1.addr);
    s_expect (&r1, 0, 0, NULL);
    assert_int_equal (broker_peer_recv (req, 0, &reply), 1);

    //  p1 stopped writes at 42 and r1 holds it (its own beat says so too):
    //  r1 is promoted at epoch 2, p1 and r2 follow it
    p1.seq = r1.seq = 42;
    s_expect (&r1, 0, 0, NULL);
    p1.handover_seq = 42;
    s_expect (&p1, WC_MSG_FOLLOW, 2, r1.addr);
    s_expect (&r1, WC_MSG_PROMOTE, 2, NULL);
    s_expect (&r2, WC_MSG_FOLLOW, 2, r1.addr);
    assert_int_equal (broker_peer_recv (req, 0, &reply), 1);
    r1.role = WC_ROLE_PRIMARY;
    r1.primary [0] = '\0';
    r1.epoch = 2;
    s_expect (&r1, 0, 0, NULL);
    assert_int_equal (broker_peer_recv (req, 3000, &reply), 0);
    assert_int_equal (reply.type, WC_MSG_SWITCHOVER_DONE);
    assert_int_equal (reply.rid, 7);
    assert_int_equal (reply.u.switchover_done.epoch, 2);
    char addr [64];
    wc_bytes_printable (addr, sizeof addr, &reply.u.switchover_done.primary);
    assert_string_equal (addr, r1.addr);
    char line [2048];
    const char *log = cluster_broker_log_path (c);
    assert_int_equal (broker_log_count (log, "switchover: to r1 at", line, sizeof line), 1);
    print_message ("broker: %s", line);
    assert_int_equal (broker_log_count (log, "switchover: the primary p1 handed over at "
                                        "seq 42", line, sizeof line), 1);
    print_message ("broker: %s", line);
    assert_int_equal (broker_log_count (log, "switchover: done in", line, sizeof line), 1);
    print_message ("broker: %s", line);

    //  Back to p1, which follows r1 now; r1 never reports: after 10 s the
    //  client gets ETIMEOUT and r1 is told to take writes again
    p1.role = r2.role = WC_ROLE_REPLICA;
    snprintf (p1.primary, sizeof p1.primary, "%s", r1.addr);
    snprintf (r2.primary, sizeof r2.primary, "%s", r1.addr);
    p1.handover_seq = 0;
    s_expect (&p1, 0, 0, NULL);
    s_expect (&r2, 0, 0, NULL);
    int64_t asked = cluster_now_ms ();
    s_ask (dealer, "p1", 4);
    broker_fake_t *cancel [] = { &p1, &r2, &r1 };
    assert_true (broker_fake_until (cancel, 3, &r1, WC_MSG_HANDOVER, 2, p1.addr, 5000)
                 >= 0);
    s_no_answer_yet (dealer, 100);
    assert_true (broker_fake_until (cancel, 3, &r1, WC_MSG_HANDOVER, 2, "", 15000) >= 0);
    int64_t took = cluster_now_ms () - asked;
    s_reply (dealer, 4, 3000, &reply);
    s_assert_error (&reply, WALCAST_ETIMEOUT, "cancelled, r1 takes writes again");
    print_message ("switchover to p1 cancelled after %lld ms\n", (long long) took);
    assert_true (took >= 9000);
    s_expect (&r1, WC_MSG_HANDOVER, 2, "");
    s_expect (&r1, WC_MSG_HANDOVER, 2, "");
    s_expect (&r1, 0, 0, NULL);
    s_expect (&p1, 0, 0, NULL);

    broker_peer_destroy (&req);
    broker_peer_destroy (&dealer);
    broker_fake_fini (&p1);
    broker_fake_fini (&r1);
    broker_fake_fini (&r2);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_switchover, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
