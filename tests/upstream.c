/*  upstream.c - a scripted upstream for a real replica to follow
    (see upstream.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <zmq.h>
#include "codec.h"
#include "errors.h"
#include "upstream.h"

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

//  Entry seq of the fake's history: key "k%08d", round 1, epoch 1.
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

//  Publish the newest entry as a stream ENTRIES, and a heartbeat, both
//  with the fake's cluster id, as a 0.7 primary does.
void
upstream_publish (upstream_t *fake)
{
    char key [32], value [CLUSTER_VALUE_LEN + 1];
    wc_entry_t entry = s_entry (fake->last, key, value);
    fake->out.size = 0;
    assert_int_equal (wc_entries_encode_stream_header (fake->last, 1, fake->cluster,
                                                       fake->flags, &fake->out), 0);
    assert_int_equal (wc_entry_encode (&entry, &fake->out), 0);
    assert_int_equal (wc_entries_encode_trailer (1700000000000000ull, fake->cluster,
                                                 fake->flags, &fake->out), 0);
    zmq_send (fake->pub, "", 0, ZMQ_SNDMORE);
    zmq_send (fake->pub, fake->out.data, fake->out.size, 0);
    wc_msg_t hb = { .type = WC_MSG_HEARTBEAT };
    hb.u.heartbeat.epoch = 1;
    hb.u.heartbeat.last_seq = fake->last;
    hb.u.heartbeat.clock_ms = 1700000000000ull;
    hb.u.heartbeat.cluster = fake->cluster;
    fake->out.size = 0;
    assert_int_equal (wc_msg_encode (&hb, &fake->out), 0);
    zmq_send (fake->pub, "", 0, ZMQ_SNDMORE);
    zmq_send (fake->pub, fake->out.data, fake->out.size, 0);
}

//  The reply to one catch-up request, into fake->out.
static void
s_answer (upstream_t *fake, const wc_msg_t *msg)
{
    fake->out.size = 0;
    if (msg->type == WC_MSG_EPOCH_END) {
        wc_msg_t reply = { .type = WC_MSG_EPOCH_END_REPLY, .rid = msg->rid };
        reply.u.epoch_end.epoch = msg->u.epoch_end.epoch ? 1 : 0;
        reply.u.epoch_end.end_seq = msg->u.epoch_end.epoch ? fake->last : 0;
        reply.u.epoch_end.latest = 1;
        reply.u.epoch_end.cluster = fake->cluster;
        assert_int_equal (wc_msg_encode (&reply, &fake->out), 0);
        return;
    }
    assert_int_equal (msg->type, WC_MSG_FETCH);
    if (msg->u.fetch.cluster && msg->u.fetch.cluster != fake->cluster) {
        assert_int_equal (wc_error_encode (msg->rid, WALCAST_ECONFLICT, "another cluster",
                                           NULL, &fake->out), 0);
        return;
    }
    uint64_t from = msg->u.fetch.from_seq;
    uint32_t n = from >= 1 && from <= fake->last ? (uint32_t) (fake->last - from + 1) : 0;
    assert_int_equal (wc_entries_encode_header (msg->rid, fake->last, n, &fake->out), 0);
    for (uint64_t seq = from; n && seq <= fake->last; seq++) {
        char key [32], value [CLUSTER_VALUE_LEN + 1];
        wc_entry_t entry = s_entry (seq, key, value);
        assert_int_equal (wc_entry_encode (&entry, &fake->out), 0);
    }
}

//  Answer what waits on the catch-up ROUTER.
void
upstream_serve (upstream_t *fake)
{
    zmq_pollitem_t item = { fake->catchup, 0, ZMQ_POLLIN, 0 };
    while (zmq_poll (&item, 1, 0) > 0) {
        zmq_msg_t frames [8];
        int count = 0, more = 1;
        while (more && count < 8) {
            zmq_msg_init (&frames [count]);
            if (zmq_msg_recv (&frames [count], fake->catchup, 0) == -1) {
                zmq_msg_close (&frames [count]);
                break;
            }
            more = zmq_msg_more (&frames [count++]);
        }
        msgpack_unpacked unpacked;
        msgpack_unpacked_init (&unpacked);
        wc_msg_t msg;
        if (count >= 2 && !more
        &&  wc_msg_decode (zmq_msg_data (&frames [count - 1]),
                           zmq_msg_size (&frames [count - 1]), &unpacked, &msg) == 0) {
            s_answer (fake, &msg);
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

//  Be the upstream until done (node r at seq want, or a log line after
//  mark when prefix is not NULL) or timeout_ms. 0 when done.
int
upstream_run_until (cluster_t *c, int r, upstream_t *fake, uint64_t want, const char *prefix,
             long mark, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (cluster_now_ms () < deadline) {
        upstream_publish (fake);
        upstream_serve (fake);
        uint64_t seq = 0, hash = 0;
        if (prefix ? cluster_log_count (c, r, prefix, mark) > 0
                   : cluster_digest (c, r, &seq, &hash) == 0 && seq == want)
            return 0;
        if (!cluster_running (c, r))
            return -1;
        zmq_pollitem_t item = { fake->catchup, 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 20);
    }
    return -1;
}

void
upstream_open (upstream_t *self, void *ctx, int port, uint64_t last, uint64_t cluster)
{
    memset (self, 0, sizeof *self);
    self->last = last;
    self->cluster = cluster;
    msgpack_sbuffer_init (&self->out);
    self->service = s_bind (ctx, ZMQ_ROUTER, port);
    self->pub = s_bind (ctx, ZMQ_PUB, port + 1);
    self->catchup = s_bind (ctx, ZMQ_ROUTER, port + 2);
}

void
upstream_close (upstream_t *self)
{
    zmq_close (self->service);
    zmq_close (self->pub);
    zmq_close (self->catchup);
    msgpack_sbuffer_destroy (&self->out);
}

int
upstream_ack (upstream_t *self, int timeout_ms, uint64_t *seq)
{
    zmq_pollitem_t item = { self->service, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) != 1)
        return 0;
    zmq_msg_t part;
    zmq_msg_init (&part);
    int parts = 0, rc = -1;
    while (zmq_msg_recv (&part, self->service, 0) >= 0) {
        parts++;
        if (!zmq_msg_more (&part))
            break;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    wc_msg_t msg;
    if (parts == 2
    &&  wc_msg_decode (zmq_msg_data (&part), zmq_msg_size (&part), &unpacked, &msg) == 0
    &&  msg.type == WC_MSG_ACK) {
        *seq = msg.u.ack.seq;
        rc = 1;
    }
    msgpack_unpacked_destroy (&unpacked);
    zmq_msg_close (&part);
    return rc;
}
