/*  announce.c - tell the broker about this node (see announce.h).

    One DEALER socket to the broker's ROUTER. ZMQ_IMMEDIATE keeps libzmq
    from queueing beats for a broker that is not connected, and a small
    send queue with non-blocking sends means a dead or slow broker costs
    the node nothing: beats are dropped, and the next one after the broker
    returns re-registers the node (a beat carries all a REGISTER does).
*/
#include <string.h>
#include "announce.h"
#include "log.h"
#include "replica.h"

struct wc_announce {
    wc_node_t      *node;
    zsock_t        *dealer;           /* to the broker's ROUTER */
    char            broker [WC_MAX_ADDR + 1];
    bool            registered;       /* REGISTER sent */
    int64_t         next_beat_ms;
    uint64_t        dropped;          /* beats the socket would not take */
    msgpack_sbuffer buf;
};

wc_announce_t *
wc_announce_new (wc_node_t *node, const char *broker)
{
    wc_announce_t *self = (wc_announce_t *) calloc (1, sizeof (wc_announce_t));
    if (!self)
        return NULL;
    self->node = node;
    snprintf (self->broker, sizeof self->broker, "%s", broker);
    msgpack_sbuffer_init (&self->buf);
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer) {
        wc_announce_destroy (&self);
        return NULL;
    }
    zsock_set_linger (self->dealer, 0);
    zsock_set_immediate (self->dealer, 1);
    zsock_set_sndhwm (self->dealer, 8);
    zsock_set_heartbeat_ivl (self->dealer, 1000);
    zsock_set_heartbeat_timeout (self->dealer, 5000);
    zsock_set_maxmsgsize (self->dealer, 65536);
    if (zsock_connect (self->dealer, "tcp://%s", broker) != 0) {
        wc_log_error ("--broker %s: cannot connect (expected HOST:PORT)", broker);
        wc_announce_destroy (&self);
        return NULL;
    }
    wc_log_info ("announcing to broker %s as %s", broker, node->cfg.advertise);
    return self;
}

void
wc_announce_destroy (wc_announce_t **self_p)
{
    wc_announce_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->dealer);
    msgpack_sbuffer_destroy (&self->buf);
    free (self);
    *self_p = NULL;
}

static wc_bytes_t
s_bytes (const char *text)
{
    return (wc_bytes_t) { (const uint8_t *) text, (uint32_t) strlen (text) };
}

/*  Send one REGISTER or NODE_HEARTBEAT with the node's current state. */
static void
s_send (wc_announce_t *self, int type)
{
    wc_node_t *node = self->node;
    wc_msg_t msg = { .type = type };
    wc_node_info_t *info = &msg.u.node;
    info->id = s_bytes (node->cfg.id);
    info->region = s_bytes (node->cfg.region);
    info->role = (uint8_t) node->role;
    info->epoch = node->epoch;
    info->applied_seq = node->applied;
    info->addr = s_bytes (node->cfg.advertise);
    info->primary = s_bytes (node->replica ? wc_replica_primary (node->replica) : "");
    if (node->replica) {
        uint64_t primary_seq = wc_replica_primary_seq (node->replica);
        info->lag = primary_seq > node->applied ? primary_seq - node->applied : 0;
        info->lag_ms = wc_replica_lag_ms (node->replica);
    }
    info->up = true;
    self->buf.size = 0;
    if (wc_msg_encode (&msg, &self->buf) != 0)
        return;
    if (zmq_send (zsock_resolve (self->dealer), self->buf.data, self->buf.size,
                  ZMQ_DONTWAIT) == -1)
        self->dropped++;
    else
    if (type == WC_MSG_REGISTER)
        self->registered = true;
}

int
wc_announce_tick (wc_announce_t *self)
{
    int64_t now = wc_clock_ms ();
    if (now >= self->next_beat_ms) {
        s_send (self, self->registered ? WC_MSG_NODE_HEARTBEAT : WC_MSG_REGISTER);
        self->next_beat_ms = now + WC_ANNOUNCE_INTERVAL_MS;
    }
    return (int) (self->next_beat_ms - now);
}
