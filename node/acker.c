/*  acker.c - a replica tells its upstream what it holds (see acker.h). */
#include <czmq.h>
#include <string.h>
#include "acker.h"
#include "clock.h"
#include "codec.h"
#include "log.h"
#include "sock.h"

struct wc_acker {
    zsock_t        *dealer;         /* to the upstream's service socket */
    char            id [WC_MAX_ID + 1];
    uint64_t        epoch, seq;     /* of the last ACK sent */
    int64_t         sent_us;        /* when it went */
    uint64_t        dropped;        /* ACKs the socket would not take */
    msgpack_sbuffer buf;
};

/*  ACKs only go out (the upstream never answers them); a few may queue. */
static const wc_sock_spec_t s_ack_spec = {
    .type = ZMQ_DEALER, .name = "ack", .max_in = 4096, .max_out = 256,
    .budget = 64 * 1024, .min_hwm = 4
};

wc_acker_t *
wc_acker_new (const char *endpoint, const char *id, const char *server_key)
{
    wc_acker_t *self = (wc_acker_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->id, sizeof self->id, "%s", id);
    msgpack_sbuffer_init (&self->buf);
    char why [512];
    self->dealer = wc_sock_connect_to (&s_ack_spec, endpoint, server_key, why, sizeof why);
    if (!self->dealer) {
        wc_log_error ("%s", why);
        wc_acker_destroy (&self);
        return NULL;
    }
    zsock_set_immediate (self->dealer, 1);
    return self;
}

void
wc_acker_destroy (wc_acker_t **self_p)
{
    wc_acker_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->dealer);
    msgpack_sbuffer_destroy (&self->buf);
    free (self);
    *self_p = NULL;
}

int
wc_acker_due_ms (int64_t since_us, bool moved, bool prompt)
{
    int64_t wait_us = !moved ? WC_ACKER_INTERVAL_MS * 1000
                    : prompt ? WC_ACKER_GAP_US : WC_ACKER_RELAXED_US;
    return since_us >= wait_us ? 0 : (int) ((wait_us - since_us + 999) / 1000);
}

int
wc_acker_tick (wc_acker_t *self, uint64_t epoch, uint64_t seq, uint64_t cluster,
               uint64_t wanted)
{
    int64_t now = wc_clock_us ();
    bool moved = seq != self->seq || epoch != self->epoch;
    bool prompt = wanted > self->seq || epoch != self->epoch;   /* a new epoch: at once */
    int due = wc_acker_due_ms (now - self->sent_us, moved, prompt);
    if (due > 0)
        return due;
    wc_msg_t ack = { .type = WC_MSG_ACK };
    ack.u.ack.id = (wc_bytes_t) { (const uint8_t *) self->id, (uint32_t) strlen (self->id) };
    ack.u.ack.epoch = epoch;
    ack.u.ack.seq = seq;
    ack.u.ack.cluster = cluster;
    self->buf.size = 0;
    if (wc_msg_encode (&ack, &self->buf) == 0
    &&  zmq_send (zsock_resolve (self->dealer), self->buf.data, self->buf.size,
                  ZMQ_DONTWAIT) == -1)
        self->dropped++;
    self->epoch = epoch;
    self->seq = seq;
    self->sent_us = now;
    return WC_ACKER_INTERVAL_MS;
}
