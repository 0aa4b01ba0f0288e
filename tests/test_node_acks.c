/*  test_node_acks.c - a primary believes no ACK beyond its own log.

    What a user relies on: `put --acks N` answers acked=K only when K
    replicas hold the write. An ACK is a replica's word for how far it
    holds the log, so one that claims more than the primary itself wrote
    (in its epoch) is no replica's: the primary drops it and counts it as
    malformed (walcast_malformed_messages_total), and it confirms nothing.
    Before, two ACKs from made-up ids claiming seq 2^64-1 made a primary
    with no replica at all answer a write asking for 2 acks with acked=2.

    An ACK of a newer epoch fences a primary (another node is primary
    now), but only one from its own cluster: a replica of another cluster
    that follows this address (a node of its own used to answer here)
    holds nothing of ours, and its epochs say nothing about ours.

    An ACK carrying the primary's own id (a second process started with
    its --id) confirms nothing either.

    Replicas ACK promptly only when asked (walcast 0.9): while a write
    waits for ACKs, the primary flags every stream message it publishes
    (WC_ENTRIES_ACK_WANTED), and only then; a write asking for acks would
    otherwise wait up to the replicas' relaxed ACK gap (20 ms).

    A real primary on loopback; the ACKs come from a raw DEALER.
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

static int
s_setup (void **state)
{
    *state = cluster_new ("node_acks");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_destroy ((cluster_t **) state);
    return 0;
}

//  Send an ACK from id at (epoch, seq), of cluster (0: none), to the
//  node's service port.
static void
s_send_ack_of (void *dealer, const char *id, uint64_t epoch, uint64_t seq,
               uint64_t cluster)
{
    wc_msg_t ack;
    memset (&ack, 0, sizeof ack);
    ack.type = WC_MSG_ACK;
    ack.u.ack.id = (wc_bytes_t) { (const uint8_t *) id, (uint32_t) strlen (id) };
    ack.u.ack.epoch = epoch;
    ack.u.ack.seq = seq;
    ack.u.ack.cluster = cluster;
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    assert_int_equal (wc_msg_encode (&ack, &out), 0);
    assert_int_equal (zmq_send (dealer, out.data, out.size, 0), (int) out.size);
    msgpack_sbuffer_destroy (&out);
}

static void
s_send_ack (void *dealer, const char *id, uint64_t epoch, uint64_t seq)
{
    s_send_ack_of (dealer, id, epoch, seq, 0);
}

//  A PING behind what was sent on the same connection: once it is
//  answered, the node has taken everything before it (it reads a
//  connection in order).
static void
s_sync (void *dealer)
{
    wc_msg_t ping;
    memset (&ping, 0, sizeof ping);
    ping.type = WC_MSG_PING;
    ping.rid = 7;
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    assert_int_equal (wc_msg_encode (&ping, &out), 0);
    assert_int_equal (zmq_send (dealer, out.data, out.size, 0), (int) out.size);
    msgpack_sbuffer_destroy (&out);
    zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 10000), 1);
    zmq_msg_t reply;
    zmq_msg_init (&reply);
    assert_true (zmq_msg_recv (&reply, dealer, 0) >= 0);
    zmq_msg_close (&reply);
}

//  Send PUT key = "v" with rid, asking for 1 ack within timeout_ms.
static void
s_send_put_acked (void *dealer, uint64_t rid, const char *key, uint32_t timeout_ms)
{
    wc_msg_t put;
    memset (&put, 0, sizeof put);
    put.type = WC_MSG_PUT;
    put.rid = rid;
    put.u.req.key = (wc_bytes_t) { (const uint8_t *) key, (uint32_t) strlen (key) };
    put.u.req.value = (wc_bytes_t) { (const uint8_t *) "v", 1 };
    put.u.req.acks = 1;
    put.u.req.ack_timeout_ms = timeout_ms;
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    assert_int_equal (wc_msg_encode (&put, &out), 0);
    assert_int_equal (zmq_send (dealer, out.data, out.size, 0), (int) out.size);
    msgpack_sbuffer_destroy (&out);
}

//  What a reply to a write said.
typedef struct {
    int      type;
    uint64_t rid;
    int      error;     /* ERROR: its code (WALCAST_E*) */
    uint32_t acked;     /* WRITE_OK: replicas that confirmed it */
} s_reply_t;

//  The next reply on dealer (10 s at most).
static s_reply_t
s_reply (void *dealer)
{
    zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 10000), 1);
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    assert_true (zmq_msg_recv (&frame, dealer, 0) >= 0);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    wc_msg_t msg;
    assert_int_equal (wc_msg_decode (zmq_msg_data (&frame), zmq_msg_size (&frame),
                                     &unpacked, &msg), 0);
    s_reply_t reply = { .type = msg.type, .rid = msg.rid };
    if (msg.type == WC_MSG_ERROR)
        reply.error = wc_err_from_wire (msg.u.error.code);
    if (msg.type == WC_MSG_WRITE_OK)
        reply.acked = (uint32_t) msg.u.write_ok.acked;
    msgpack_unpacked_destroy (&unpacked);
    zmq_msg_close (&frame);
    return reply;
}

//  The cluster id of node i (its data directory's file "cluster").
static uint64_t
s_cluster_id (cluster_t *c, int i)
{
    char path [4200];
    snprintf (path, sizeof path, "%s/cluster", cluster_data_path (c, i));
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    unsigned long long id = 0;
    assert_int_equal (fscanf (f, "%16llx", &id), 1);
    fclose (f);
    assert_true (id != 0);
    return (uint64_t) id;
}

//  A primary, p1, that took one write (at *pos); its index.
static int
s_primary (cluster_t *c, walcast_pos_t *pos)
{
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    walcast_t *h = cluster_client (c, p);
    assert_non_null (h);
    assert_int_equal (walcast_put (h, "k", 1, "v", 1, pos), 0);
    walcast_destroy (&h);
    return p;
}

//  A raw DEALER to node p's service port, in ctx.
static void *
s_dealer (void *ctx, cluster_t *c, int p)
{
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://%s", cluster_addr (c, p));
    assert_int_equal (zmq_connect (dealer, endpoint), 0);
    return dealer;
}

static void
test_ack_beyond_the_log (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    walcast_pos_t pos;
    int p = s_primary (c, &pos);
    walcast_t *h = cluster_client (c, p);
    assert_non_null (h);

    void *ctx = zmq_ctx_new ();
    void *dealer = s_dealer (ctx, c, p);
    s_send_ack (dealer, "ghost1", pos.epoch, UINT64_MAX);
    s_send_ack (dealer, "ghost2", pos.epoch, UINT64_MAX);
    s_sync (dealer);

    walcast_write_opts_t opts = { 2, 300 };
    walcast_write_result_t result;
    int rc = walcast_put_ex (h, "k2", 2, "v", 1, &opts, &result);
    print_message ("put --acks 2 with two forged ACKs: %s, acked=%u\n",
                   walcast_errname (rc), (unsigned) result.acked);
    assert_int_equal (rc, WALCAST_ENOTREPLICATED);
    assert_int_equal (result.acked, 0);
    walcast_destroy (&h);
    zmq_close (dealer);
    zmq_ctx_term (ctx);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

static void
test_ack_of_another_cluster (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    walcast_pos_t pos;
    int p = s_primary (c, &pos);
    walcast_t *h = cluster_client (c, p);
    assert_non_null (h);
    uint64_t ours = s_cluster_id (c, p);

    void *ctx = zmq_ctx_new ();
    void *dealer = s_dealer (ctx, c, p);

    //  A newer epoch, from a replica of another cluster: still primary
    s_send_ack_of (dealer, "stranger", pos.epoch + 1, 1, ours ^ 1);
    s_sync (dealer);
    int rc = walcast_put (h, "k2", 2, "v", 1, &pos);
    print_message ("put after another cluster's ACK of epoch+1: %s\n", walcast_errname (rc));
    assert_int_equal (rc, 0);
    //  The same from our own cluster: another node is primary, fenced
    s_send_ack_of (dealer, "r9", pos.epoch + 1, 1, ours);
    s_sync (dealer);
    rc = walcast_put (h, "k3", 2, "v", 1, &pos);
    print_message ("put after our cluster's ACK of epoch+1: %s\n", walcast_errname (rc));
    assert_int_equal (rc, WALCAST_EFENCED);
    walcast_destroy (&h);
    zmq_close (dealer);
    zmq_ctx_term (ctx);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  A second process started with the primary's own id (a copy-pasted
//  unit, the broker refusing it as a duplicate) that follows the primary
//  is no replica of it: its ACKs confirm nothing, and it gets no lag
//  series. Before, they answered acks=1 writes, counted as a replica in
//  walcast_replicas_connected, and left a series named after the
//  primary that nothing could remove (operator walkthrough).
static void
test_ack_with_our_own_id (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    walcast_pos_t pos;
    int p = s_primary (c, &pos);
    void *ctx = zmq_ctx_new ();
    void *writer = s_dealer (ctx, c, p);
    void *impostor = s_dealer (ctx, c, p);

    //  A PUT that waits for 1 ack (2 s at most), then a PING behind it:
    //  once the PONG is in, the write is in the log, waiting
    s_send_put_acked (writer, 41, "k2", 2000);
    s_sync (writer);
    s_send_ack (impostor, "p1", pos.epoch, pos.seq + 1);
    s_sync (impostor);

    s_reply_t reply = s_reply (writer);
    print_message ("put --acks 1 with an ACK from our own id: %s\n",
                   wc_msg_type_name (reply.type));
    assert_int_equal (reply.rid, 41);
    assert_int_equal (reply.type, WC_MSG_ERROR);
    assert_int_equal (reply.error, WALCAST_ENOTREPLICATED);
    assert_int_equal (cluster_wait_log (c, p, "dropped ACKs from a replica with our own id",
                                        0, 10000), 0);
    zmq_close (writer);
    zmq_close (impostor);
    zmq_ctx_term (ctx);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  Read sub until the stream message that holds key (10 s at most):
//  returns its flags, its last seq in *last_seq.
static uint64_t
s_flags_of (void *sub, const char *key, uint64_t *last_seq)
{
    int64_t deadline = cluster_now_ms () + 10000;
    size_t key_len = strlen (key);
    while (cluster_now_ms () < deadline) {
        zmq_pollitem_t item = { sub, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) != 1)
            continue;
        zmq_msg_t part;
        zmq_msg_init (&part);
        assert_true (zmq_msg_recv (&part, sub, 0) >= 0);       /* topic */
        assert_true (zmq_msg_more (&part));
        assert_true (zmq_msg_recv (&part, sub, 0) >= 0);       /* body */
        msgpack_unpacked unpacked;
        msgpack_unpacked_init (&unpacked);
        wc_msg_t msg;
        assert_int_equal (wc_msg_decode (zmq_msg_data (&part), zmq_msg_size (&part),
                                         &unpacked, &msg), 0);
        bool found = false;
        for (uint32_t i = 0; msg.type == WC_MSG_ENTRIES && i < msg.u.entries.count; i++) {
            wc_entry_t entry;
            assert_int_equal (wc_entry_from_object (&msg.u.entries.items [i], &entry), 0);
            found = found || (entry.key.len == key_len
                              && memcmp (entry.key.ptr, key, key_len) == 0);
        }
        uint64_t flags = msg.type == WC_MSG_ENTRIES ? msg.u.entries.flags : 0;
        *last_seq = msg.type == WC_MSG_ENTRIES ? msg.u.entries.last_seq : 0;
        msgpack_unpacked_destroy (&unpacked);
        zmq_msg_close (&part);
        if (found)
            return flags;
    }
    fail_msg ("no stream message held %s within 10 s", key);
    return 0;
}

//  Put key (acks 0) and return the flags of the stream message holding it.
static uint64_t
s_put_flags (walcast_t *h, void *sub, const char *key)
{
    assert_int_equal (walcast_put (h, key, strlen (key), "v", 1, NULL), 0);
    uint64_t last_seq;
    return s_flags_of (sub, key, &last_seq);
}

static void
test_stream_asks_for_acks_while_writes_wait (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    walcast_pos_t pos;
    int p = s_primary (c, &pos);
    walcast_t *h = cluster_client (c, p);
    assert_non_null (h);
    void *ctx = zmq_ctx_new ();
    void *writer = s_dealer (ctx, c, p);
    void *replica = s_dealer (ctx, c, p);
    void *sub = zmq_socket (ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt (sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "", 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", cluster_port (c, p) + 1);
    assert_int_equal (zmq_connect (sub, endpoint), 0);
    //  Subscribed once a write shows on the stream (heartbeats may come first)
    int64_t deadline = cluster_now_ms () + 10000;
    bool subscribed = false;
    while (!subscribed && cluster_now_ms () < deadline) {
        assert_int_equal (walcast_put (h, "warm", 4, "v", 1, NULL), 0);
        zmq_pollitem_t item = { sub, 0, ZMQ_POLLIN, 0 };
        subscribed = zmq_poll (&item, 1, 100) == 1;
    }
    assert_true (subscribed);

    //  Nobody waits: no flag
    uint64_t before = s_put_flags (h, sub, "before");
    assert_int_equal (before, 0);
    //  A PUT that waits for 1 ack: its message asks for prompt ACKs, and
    //  so does every message while it waits
    s_send_put_acked (writer, 41, "sync", 30000);
    uint64_t sync_seq = 0;
    uint64_t flags = s_flags_of (sub, "sync", &sync_seq);
    print_message ("stream flags: before %d, the acks=1 write's %d\n", (int) before,
                   (int) flags);
    assert_int_equal (flags, WC_ENTRIES_ACK_WANTED);
    assert_int_equal (s_put_flags (h, sub, "during"), WC_ENTRIES_ACK_WANTED);
    //  A replica's ACK answers it: no flag any more
    s_send_ack (replica, "r1", pos.epoch, sync_seq);
    s_reply_t reply = s_reply (writer);
    assert_int_equal (reply.rid, 41);
    assert_int_equal (reply.type, WC_MSG_WRITE_OK);
    assert_int_equal (reply.acked, 1);
    assert_int_equal (s_put_flags (h, sub, "after"), 0);

    walcast_destroy (&h);
    zmq_close (sub);
    zmq_close (writer);
    zmq_close (replica);
    zmq_ctx_term (ctx);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_ack_beyond_the_log, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_ack_of_another_cluster, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_ack_with_our_own_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stream_asks_for_acks_while_writes_wait,
                                         s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
