/*  test_cluster_streamlimit.c - a replica's stream link survives an
    oversized message.

    A replica's SUB socket has a message size limit (ZMQ_MAXMSGSIZE), so a
    frame over it makes libzmq drop the connection. libzmq 4.3 treats that
    as a protocol error and does NOT reconnect that session: unless the
    replica notices and rebuilds its subscription, it never hears its
    primary again, and since heartbeats are what reveal new entries on an
    idle stream, it silently stops replicating.

    What a user relies on: a replica keeps following its primary whatever
    arrives on the link. A test-owned fake primary (PUB + ROUTERs on the
    test's spare ports) serves seq 1, publishes one message over the
    limit, then serves seq 2 (heartbeats, the live entry, FETCH): the
    replica must reach seq 2.
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
#include <msgpack.h>
#include "cluster.h"
#include "codec.h"

#define OVERSIZED  (2u * 1024u * 1024u)     /* over the stream limit (~1 MiB) */

static int
s_setup (void **state)
{
    *state = cluster_new ("streamlimit");
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
    void           *service;    /* ROUTER, F (unused by replicas, bound anyway) */
    void           *pub;        /* PUB, F+1 */
    void           *catchup;    /* ROUTER, F+2 */
    uint64_t        last;       /* seqs 1..last are served */
    msgpack_sbuffer out;
} s_fake_t;

static void *
s_bind (void *ctx, int type, int port)
{
    void *sock = zmq_socket (ctx, type);
    assert_non_null (sock);
    int linger = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    if (zmq_bind (sock, endpoint) != 0)
        fail_msg ("bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
    return sock;
}

//  The fake's entry n: key "k%08d", value of round 1, epoch 1.
static wc_entry_t
s_entry (uint64_t seq, char *key, char *value)
{
    cluster_key ((int) seq, key, 32);
    cluster_value ((int) seq, 1, value);
    wc_entry_t entry = {
        .seq = seq, .epoch = 1, .ts_ms = 1700000000000ull, .op = WC_OP_PUT,
        .key = { (const uint8_t *) key, (uint32_t) strlen (key) },
        .value = { (const uint8_t *) value, CLUSTER_VALUE_LEN }
    };
    return entry;
}

//  Publish the newest entry and a heartbeat, as a primary does.
static void
s_publish (s_fake_t *fake)
{
    char key [32], value [CLUSTER_VALUE_LEN + 1];
    wc_msg_t msg = { .type = WC_MSG_ENTRY };
    msg.u.entry = s_entry (fake->last, key, value);
    fake->out.size = 0;
    assert_int_equal (wc_msg_encode (&msg, &fake->out), 0);
    zmq_send (fake->pub, key, strlen (key), ZMQ_SNDMORE);
    zmq_send (fake->pub, fake->out.data, fake->out.size, 0);

    memset (&msg, 0, sizeof msg);
    msg.type = WC_MSG_HEARTBEAT;
    msg.u.heartbeat.epoch = 1;
    msg.u.heartbeat.last_seq = fake->last;
    msg.u.heartbeat.clock_ms = 1700000000000ull;
    fake->out.size = 0;
    assert_int_equal (wc_msg_encode (&msg, &fake->out), 0);
    zmq_send (fake->pub, "", 0, ZMQ_SNDMORE);
    zmq_send (fake->pub, fake->out.data, fake->out.size, 0);
}

//  Answer FETCHes with the entries the fake holds.
static void
s_serve (s_fake_t *fake)
{
    zmq_pollitem_t item = { fake->catchup, 0, ZMQ_POLLIN, 0 };
    while (zmq_poll (&item, 1, 0) > 0) {
        zmq_msg_t frames [8];
        int count = 0, more = 1;
        while (more) {
            zmq_msg_t frame;
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, fake->catchup, 0) == -1) {
                zmq_msg_close (&frame);
                break;
            }
            more = zmq_msg_more (&frame);
            if (count < 8) {
                zmq_msg_init (&frames [count]);
                zmq_msg_move (&frames [count++], &frame);
            }
            zmq_msg_close (&frame);
        }
        msgpack_unpacked unpacked;
        msgpack_unpacked_init (&unpacked);
        wc_msg_t msg;
        if (count >= 2
        &&  wc_msg_decode (zmq_msg_data (&frames [count - 1]),
                           zmq_msg_size (&frames [count - 1]), &unpacked, &msg) == 0
        &&  msg.type == WC_MSG_EPOCH_END) {
            //  The fake's history: epoch 1 from seq 1
            wc_msg_t reply = { .type = WC_MSG_EPOCH_END_REPLY, .rid = msg.rid };
            reply.u.epoch_end.epoch = msg.u.epoch_end.epoch ? 1 : 0;
            reply.u.epoch_end.end_seq = msg.u.epoch_end.epoch ? fake->last : 0;
            reply.u.epoch_end.latest = 1;
            fake->out.size = 0;
            assert_int_equal (wc_msg_encode (&reply, &fake->out), 0);
            for (int i = 0; i < count - 1; i++)
                zmq_send (fake->catchup, zmq_msg_data (&frames [i]),
                          zmq_msg_size (&frames [i]), ZMQ_SNDMORE);
            zmq_send (fake->catchup, fake->out.data, fake->out.size, 0);
        }
        else
        if (count >= 2
        &&  wc_msg_decode (zmq_msg_data (&frames [count - 1]),
                           zmq_msg_size (&frames [count - 1]), &unpacked, &msg) == 0
        &&  msg.type == WC_MSG_FETCH) {
            uint64_t from = msg.u.fetch.from_seq;
            uint32_t n = from >= 1 && from <= fake->last
                       ? (uint32_t) (fake->last - from + 1) : 0;
            fake->out.size = 0;
            assert_int_equal (wc_entries_encode_header (msg.rid, fake->last, n,
                                                        &fake->out), 0);
            for (uint64_t seq = from; n && seq <= fake->last; seq++) {
                char key [32], value [CLUSTER_VALUE_LEN + 1];
                wc_entry_t entry = s_entry (seq, key, value);
                assert_int_equal (wc_entry_encode (&entry, &fake->out), 0);
            }
            for (int i = 0; i < count - 1; i++)
                zmq_send (fake->catchup, zmq_msg_data (&frames [i]),
                          zmq_msg_size (&frames [i]), ZMQ_SNDMORE);
            zmq_send (fake->catchup, fake->out.data, fake->out.size, 0);
        }
        msgpack_unpacked_destroy (&unpacked);
        for (int i = 0; i < count; i++)
            zmq_msg_close (&frames [i]);
    }
}

//  Be a primary holding 1..fake->last until node r reports that seq.
static int
s_run_until (cluster_t *c, int r, s_fake_t *fake, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (cluster_now_ms () < deadline) {
        s_publish (fake);
        s_serve (fake);
        uint64_t seq = 0, hash = 0;
        if (cluster_digest (c, r, &seq, &hash) == 0 && seq == fake->last)
            return 0;
        if (!cluster_running (c, r))
            return -1;
        zmq_pollitem_t item = { fake->catchup, 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 50);
    }
    return -1;
}

static void
test_stream_limit (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    void *ctx = zmq_ctx_new ();
    assert_non_null (ctx);
    int port = cluster_spare_port (c);
    s_fake_t fake = { .last = 1 };
    msgpack_sbuffer_init (&fake.out);
    fake.service = s_bind (ctx, ZMQ_ROUTER, port);
    fake.pub = s_bind (ctx, ZMQ_PUB, port + 1);
    fake.catchup = s_bind (ctx, ZMQ_ROUTER, port + 2);

    char primary [32];
    snprintf (primary, sizeof primary, "127.0.0.1:%d", port);
    int r = cluster_add (c, "r1", primary, NULL);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);

    //  The fake works as a primary: the replica gets seq 1
    if (s_run_until (c, r, &fake, 20000) != 0)
        fail_msg ("the replica did not follow the fake primary to seq 1");

    //  One message over the subscriber's limit: its connection drops
    char *big = calloc (1, OVERSIZED);
    assert_non_null (big);
    zmq_send (fake.pub, "k", 1, ZMQ_SNDMORE);
    zmq_send (fake.pub, big, OVERSIZED, 0);
    free (big);
    long mark = cluster_log_mark (c, r);

    //  Seq 2: heartbeats, the live entry and FETCH all offer it
    fake.last = 2;
    int rc = s_run_until (c, r, &fake, 20000);
    if (rc != 0) {
        walcast_status_t status;
        if (cluster_status (c, r, &status) == 0)
            print_error ("replica: applied %llu, primary_seq %llu, lag_ms %llu; "
                         "%d \"primary ... silent\" lines since the oversized message\n",
                         (unsigned long long) status.applied_seq,
                         (unsigned long long) status.primary_seq,
                         (unsigned long long) status.lag_ms,
                         cluster_log_count (c, r, "primary ", mark));
    }
    zmq_close (fake.service);
    zmq_close (fake.pub);
    zmq_close (fake.catchup);
    zmq_ctx_term (ctx);
    msgpack_sbuffer_destroy (&fake.out);
    if (rc != 0)
        fail_msg ("the replica stopped following its primary after one oversized "
                  "stream message (still not at seq 2 after 20 s)");
    assert_int_equal (cluster_check_key (c, r, 2, 1), 0);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_stream_limit, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
