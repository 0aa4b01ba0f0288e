/*  test_node_directives.c - a node carries out the broker's directives.

    A real node with --broker pointed at a fake broker (a ROUTER of the
    test's) that answers its beats with PROMOTE, FOLLOW and HANDOVER, as
    docs/PROTOCOL.md ("Failover") says a broker does. What a user relies
    on (issue 7):

    - a candidate refuses writes until PROMOTE, then takes them in the
      epoch it was given, and its beats say so at once;
    - HANDOVER stops writes (ENOTPRIMARY naming the target), an empty
      target cancels it;
    - FOLLOW makes it a replica of the node named; a directive it cannot
      carry out (an address that is not HOST:PORT, an epoch not newer than
      its own) is refused in its log, and the node goes on as it was.
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
#include "cluster.h"
#include "codec.h"

#define WAIT_MS  20000

typedef struct {
    cluster_t *c;
    void      *ctx;
    void      *router;      /* the fake broker */
    wc_node_info_t last;    /* the node's last beat */
    msgpack_unpacked up;
} s_fake_t;

static int
s_setup (void **state)
{
    *state = cluster_new ("node_directives");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

/*  The fake broker's ROUTER, bound at the broker's address. */
static void
s_fake_bind (s_fake_t *fake)
{
    fake->router = zmq_socket (fake->ctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt (fake->router, ZMQ_LINGER, &linger, sizeof linger);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://%s", cluster_broker_addr (fake->c));
    assert_int_equal (zmq_bind (fake->router, endpoint), 0);
}

/*  Wait for the node's next beat (REGISTER or NODE_HEARTBEAT) and answer
    it with reply (type 0: nothing); keep what it said in fake->last. */
static void
s_beat (s_fake_t *fake, const wc_msg_t *reply)
{
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    while (cluster_now_ms () < deadline) {
        zmq_pollitem_t item = { fake->router, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) <= 0)
            continue;
        zmq_msg_t id, body;
        zmq_msg_init (&id);
        zmq_msg_init (&body);
        assert_true (zmq_msg_recv (&id, fake->router, 0) >= 0);
        assert_true (zmq_msg_more (&id));
        assert_true (zmq_msg_recv (&body, fake->router, 0) >= 0);
        wc_msg_t beat;
        assert_int_equal (wc_msg_decode (zmq_msg_data (&body), zmq_msg_size (&body),
                                         &fake->up, &beat), 0);
        assert_true (beat.type == WC_MSG_REGISTER || beat.type == WC_MSG_NODE_HEARTBEAT);
        fake->last = beat.u.node;
        if (reply->type) {
            wc_msg_t out = *reply;
            out.rid = beat.rid;
            msgpack_sbuffer sb;
            msgpack_sbuffer_init (&sb);
            assert_int_equal (wc_msg_encode (&out, &sb), 0);
            zmq_send (fake->router, zmq_msg_data (&id), zmq_msg_size (&id), ZMQ_SNDMORE);
            zmq_send (fake->router, sb.data, sb.size, 0);
            msgpack_sbuffer_destroy (&sb);
        }
        zmq_msg_close (&id);
        zmq_msg_close (&body);
        return;
    }
    fail_msg ("the node sent no beat in %d ms", WAIT_MS);
}

/*  Beat until the node's beat satisfies want (answering none). */
static void
s_beat_until (s_fake_t *fake, int role, uint64_t epoch, uint32_t flags, const char *what)
{
    wc_msg_t none = { .type = 0 };
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    do {
        s_beat (fake, &none);
        if (fake->last.role == role && fake->last.epoch == epoch
        &&  fake->last.flags == flags)
            return;
    } while (cluster_now_ms () < deadline);
    fail_msg ("the node's beats never showed %s (last: role %u, epoch %llu, flags %llu)",
              what, fake->last.role, (unsigned long long) fake->last.epoch,
              (unsigned long long) fake->last.flags);
}

/*  A PUT to the node: 0 when WRITE_OK, else the error code (detail into
    detail, if not NULL). */
static int
s_put (cluster_t *c, int i, char *detail, size_t size)
{
    walcast_t *client = cluster_client (c, i);
    assert_non_null (client);
    int rc = walcast_put (client, "k", 1, "v", 1, NULL);
    if (detail)
        snprintf (detail, size, "%s", walcast_last_detail (client));
    walcast_destroy (&client);
    return rc;
}

/*  The fake broker bound, and node n1 started with it as its broker;
    returns n1's index. */
static int
s_start (cluster_t *c, s_fake_t *fake)
{
    memset (fake, 0, sizeof *fake);
    fake->c = c;
    msgpack_unpacked_init (&fake->up);
    fake->ctx = zmq_ctx_new ();
    s_fake_bind (fake);
    int n = cluster_add (c, "n1", NULL, NULL);
    cluster_set_broker (c, n, true);
    assert_int_equal (cluster_start (c, n), 0);
    assert_int_equal (cluster_wait_ready (c, n, WAIT_MS), 0);
    return n;
}

/*  The fake broker gone. */
static void
s_end (s_fake_t *fake)
{
    zmq_close (fake->router);
    zmq_ctx_destroy (fake->ctx);
    msgpack_unpacked_destroy (&fake->up);
}

static void
test_directives (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    s_fake_t fake;
    int n = s_start (c, &fake);
    long mark = cluster_start_mark (c, n);

    //  A candidate: role primary, epoch 0 (nothing in its history)
    s_beat_until (&fake, WC_ROLE_PRIMARY, 0, WC_NODE_CANDIDATE, "a candidate");
    char detail [256];
    assert_int_equal (s_put (c, n, detail, sizeof detail), WALCAST_ENOTPRIMARY);
    //  ... and its STATUS says candidate, not primary (it takes no writes)
    walcast_status_t status;
    assert_int_equal (cluster_status (c, n, &status), 0);
    assert_string_equal (status.role, "candidate");

    //  FOLLOW with an address that is not HOST:PORT: refused, nothing breaks
    wc_msg_t follow = { .type = WC_MSG_FOLLOW };
    follow.u.follow.epoch = 1;
    follow.u.follow.primary = (wc_bytes_t) { (const uint8_t *) "nocolon", 7 };
    s_beat (&fake, &follow);
    assert_int_equal (cluster_wait_log (c, n, "broker 127.0.0.1", mark, WAIT_MS), 0);
    char line [512];
    assert_int_equal (cluster_log_find (c, n, "broker 127.0.0.1", mark, 0, line,
                                        sizeof line), 0);
    assert_non_null (strstr (line, "\"nocolon\", which is not HOST:PORT; ignored"));
    assert_true (cluster_running (c, n));

    //  PROMOTE: writes in epoch 5, and the beat says so
    wc_msg_t promote = { .type = WC_MSG_PROMOTE };
    promote.u.promote.epoch = 5;
    s_beat (&fake, &promote);
    s_beat_until (&fake, WC_ROLE_PRIMARY, 5, 0, "the primary of epoch 5");
    assert_int_equal (s_put (c, n, NULL, 0), 0);
    assert_int_equal (cluster_status (c, n, &status), 0);
    assert_string_equal (status.role, "primary");

    //  HANDOVER to a target that never acks: writes refused, naming it;
    //  an empty target cancels
    wc_msg_t handover = { .type = WC_MSG_HANDOVER };
    handover.u.handover.epoch = 5;
    handover.u.handover.target_id = (wc_bytes_t) { (const uint8_t *) "n9", 2 };
    handover.u.handover.target_addr = (wc_bytes_t) { (const uint8_t *) "127.0.0.1:9", 11 };
    s_beat (&fake, &handover);
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    int rc = 0;
    while ((rc = s_put (c, n, detail, sizeof detail)) == 0 && cluster_now_ms () < deadline)
        cluster_nap_ms (20);
    assert_int_equal (rc, WALCAST_ENOTPRIMARY);
    assert_string_equal (detail, "127.0.0.1:9");
    assert_int_equal (fake.last.handover_seq, 0);
    assert_int_equal (fake.last.flags & WC_NODE_HANDED_OVER, 0);
    handover.u.handover.target_id = (wc_bytes_t) { (const uint8_t *) "", 0 };
    handover.u.handover.target_addr = (wc_bytes_t) { (const uint8_t *) "", 0 };
    s_beat (&fake, &handover);
    deadline = cluster_now_ms () + WAIT_MS;
    while ((rc = s_put (c, n, NULL, 0)) != 0 && cluster_now_ms () < deadline)
        cluster_nap_ms (20);
    assert_int_equal (rc, 0);

    //  PROMOTE to an epoch not newer than its own: ignored
    promote.u.promote.epoch = 4;
    s_beat (&fake, &promote);
    assert_int_equal (cluster_wait_log (c, n, "broker asks for epoch 4", mark, WAIT_MS), 0);
    assert_int_equal (s_put (c, n, NULL, 0), 0);

    //  FOLLOW: a replica of the node named (nobody there: it keeps trying)
    char addr [32];
    snprintf (addr, sizeof addr, "127.0.0.1:%d", cluster_spare_port (c));
    follow.u.follow.epoch = 6;
    follow.u.follow.primary = (wc_bytes_t) { (const uint8_t *) addr, (uint32_t) strlen (addr) };
    s_beat (&fake, &follow);
    s_beat_until (&fake, WC_ROLE_REPLICA, 5, 0, "a replica");
    assert_int_equal (cluster_status (c, n, &status), 0);
    assert_string_equal (status.role, "replica");
    assert_string_equal (status.primary, addr);
    assert_int_equal (s_put (c, n, NULL, 0), WALCAST_ENOTPRIMARY);
    assert_true (cluster_running (c, n));

    s_end (&fake);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  A switchover of a primary that has written nothing, to a target that
    never connected: the target holds "everything" (nothing) only once
    its ACK of this epoch says it shares the history, so the beats must
    not say HANDED_OVER. Before, at seq 0 the hand-over needed no ACK at
    all, and the broker could promote a node that never agreed with this
    history (a deposed primary holding rolled-back entries, say: a
    reviewer's find). */
static void
test_handover_needs_the_target (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    s_fake_t fake;
    int n = s_start (c, &fake);
    s_beat_until (&fake, WC_ROLE_PRIMARY, 0, WC_NODE_CANDIDATE, "a candidate");
    wc_msg_t promote = { .type = WC_MSG_PROMOTE };
    promote.u.promote.epoch = 3;
    s_beat (&fake, &promote);
    s_beat_until (&fake, WC_ROLE_PRIMARY, 3, 0, "the primary of epoch 3");
    wc_msg_t handover = { .type = WC_MSG_HANDOVER };
    handover.u.handover.epoch = 3;
    handover.u.handover.target_id = (wc_bytes_t) { (const uint8_t *) "n9", 2 };
    handover.u.handover.target_addr = (wc_bytes_t) { (const uint8_t *) "127.0.0.1:9", 11 };
    for (int beat = 0; beat < 4; beat++) {
        s_beat (&fake, &handover);          /* the broker repeats it */
        print_message ("beat %d after HANDOVER(n9): flags %llu, handover_seq %llu\n", beat,
                       (unsigned long long) fake.last.flags,
                       (unsigned long long) fake.last.handover_seq);
        if (beat > 0)
            assert_int_equal (fake.last.flags & WC_NODE_HANDED_OVER, 0);
    }
    char detail [256];
    assert_int_equal (s_put (c, n, detail, sizeof detail), WALCAST_ENOTPRIMARY);
    s_end (&fake);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  The broker goes away (its socket closed: no connection): the node
    says so once, a primary with what that risks, and says when beats go
    through again. Before, a primary cut off from its broker logged
    nothing at all while the broker failed it over (a helper). */
static void
test_broker_gone (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    s_fake_t fake;
    int n = s_start (c, &fake);
    long mark = cluster_start_mark (c, n);
    s_beat_until (&fake, WC_ROLE_PRIMARY, 0, WC_NODE_CANDIDATE, "a candidate");
    wc_msg_t promote = { .type = WC_MSG_PROMOTE };
    promote.u.promote.epoch = 3;
    s_beat (&fake, &promote);
    s_beat_until (&fake, WC_ROLE_PRIMARY, 3, 0, "the primary of epoch 3");
    //  The broker's socket goes: nothing to beat to
    zmq_close (fake.router);
    char prefix [96], line [512];
    snprintf (prefix, sizeof prefix, "broker %s: no beat could be sent for ",
              cluster_broker_addr (c));
    assert_int_equal (cluster_wait_log (c, n, prefix, mark, WAIT_MS), 0);
    assert_int_equal (cluster_log_find (c, n, prefix, mark, 0, line, sizeof line), 0);
    print_message ("n1: %s\n", line);
    assert_non_null (strstr (line, "this primary goes on taking writes"));
    assert_int_equal (s_put (c, n, NULL, 0), 0);
    //  Back: beats go through, said once
    s_fake_bind (&fake);
    snprintf (prefix, sizeof prefix, "broker %s: beats go through again",
              cluster_broker_addr (c));
    assert_int_equal (cluster_wait_log (c, n, prefix, mark, WAIT_MS), 0);
    snprintf (prefix, sizeof prefix, "broker %s: no beat could be sent",
              cluster_broker_addr (c));
    assert_int_equal (cluster_log_count (c, n, prefix, mark), 1);
    s_end (&fake);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_directives, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_broker_gone, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_handover_needs_the_target, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
