/*  announce.c - tell the broker about this node (see announce.h).

    One DEALER socket to the broker's ROUTER. ZMQ_IMMEDIATE keeps libzmq
    from queueing beats for a broker that is not connected, and a small
    send queue with non-blocking sends means a dead or slow broker costs
    the node nothing: beats are dropped, and the next one after the broker
    returns re-registers the node (a beat carries all a REGISTER does).

    The link has two states, told apart by the broker's replies, which
    are read without waiting at every tick:
    - not admitted (at start, and after any refusal): the beat is a
      REGISTER; the broker answers an admitted one with a TOPOLOGY;
    - admitted: the beat is a NODE_HEARTBEAT, answered only by an ERROR
      when the broker refuses it (a second primary registered while this
      one was away, say), which sends the link back to the first state.
    A refusal is logged once per episode (again only if its code
    changes), with the remedy the operator needs; the TOPOLOGY that ends
    the episode is logged too.

    Besides, the broker sends directives (PROMOTE, FOLLOW, HANDOVER:
    role.c acts on them) and, to the primary, the FORGET of a replica an
    operator removed for good (`walcast forget`), which primary.c drops
    from its ACK table and its /metrics. Anything else is counted and
    dropped.
*/
#include <string.h>
#include "announce.h"
#include "certs.h"
#include "sock.h"
#include "log.h"
#include "primary.h"
#include "replica.h"
#include "role.h"

/*  Replies read per tick: the broker sends at most one per beat. */
#define S_REPLIES_PER_TICK  16

/*  Beats that cannot go (no connection to the broker) this long: say so. */
#define S_UNSENT_WARN_MS  3000

/*  A change of role is beaten at once, but not more often than this. */
#define S_CHANGE_BEAT_MS  50

/*  What a beat says of the node's role: a change is beaten at once, so
    that the broker learns of a promotion, a move or a finished hand-over
    without waiting for the next beat. */
typedef struct {
    int      role;
    uint64_t epoch;
    uint32_t flags;
    uint64_t handover_seq;
    char     primary [WC_MAX_ADDR + 1];
} s_shape_t;

struct wc_announce {
    wc_node_t       *node;
    zsock_t         *dealer;          /* to the broker's ROUTER */
    char             broker [WC_MAX_ADDR + 1];
    bool             admitted;        /* the broker answered a REGISTER */
    bool             refused;         /* in a refusal episode (logged) */
    int              refused_code;    /* code of the refusal logged */
    uint64_t         rid;             /* rid of the last beat sent */
    s_shape_t        sent;            /* what the last beat said of the role */
    int64_t          sent_ms;         /* when */
    int64_t          next_beat_ms;
    uint64_t         dropped;         /* beats the socket would not take */
    int64_t          unsent_ms;       /* since when none could go; 0: they go */
    bool             unsent_told;     /* ... and the log said so */
    uint64_t         bad_replies;     /* replies that were not ours to read */
    msgpack_sbuffer  buf;
    msgpack_unpacked unpacked;        /* owns the decoded reply */
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
    msgpack_unpacked_init (&self->unpacked);
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
    /*  Replies: an ERROR, or a TOPOLOGY, which clients must take up to
        WC_MAX_MESSAGE from a broker. A few queued at most; the broker
        sends one per beat and the tick reads them all. */
    zsock_set_rcvhwm (self->dealer, 4);
    zsock_set_maxmsgsize (self->dealer, (int64_t) WC_MAX_MESSAGE);
    char why [512];
    if (wc_sock_secure_client (self->dealer, broker, node->cfg.curve_broker, why,
                               sizeof why) != 0) {
        wc_log_error ("--broker %s: %s", broker, why);
        wc_announce_destroy (&self);
        return NULL;
    }
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
    msgpack_unpacked_destroy (&self->unpacked);
    free (self);
    *self_p = NULL;
}

static wc_bytes_t
s_bytes (const char *text)
{
    return (wc_bytes_t) { (const uint8_t *) text, (uint32_t) strlen (text) };
}

/*  No beat can go: the socket has no connection to the broker (it is
    down, or cut off from us: libzmq's heartbeats close a connection that
    stopped answering). Said once per episode: a primary cut off from its
    broker goes on taking writes while the broker may be replacing it. */
static void
s_unsent (wc_announce_t *self)
{
    int64_t now = wc_clock_ms ();
    if (!self->unsent_ms)
        self->unsent_ms = now;
    if (self->unsent_told || now - self->unsent_ms < S_UNSENT_WARN_MS)
        return;
    self->unsent_told = true;
    bool primary = self->node->primary && !self->node->candidate;
    wc_log_warn ("broker %s: no beat could be sent for %lld ms (it is down, or cut off "
                 "from this node%s)%s", self->broker, (long long) (now - self->unsent_ms),
                 wc_sock_curve () ? ", or it refused our CURVE handshake: check that "
                 "--curve-broker is the broker's public certificate and that the "
                 "broker's trust folder has ours in nodes/" : "",
                 primary ? "; this primary goes on taking writes, but the broker may "
                           "be replacing it: writes taken meanwhile can be lost "
                           "(ARCHITECTURE.md, Partitions)" : "");
}

static void
s_sent (wc_announce_t *self)
{
    if (self->unsent_told)
        wc_log_info ("broker %s: beats go through again, after %lld ms", self->broker,
                     (long long) (wc_clock_ms () - self->unsent_ms));
    self->unsent_ms = 0;
    self->unsent_told = false;
}

/*  Send one REGISTER or NODE_HEARTBEAT with the node's current state. */
static void
s_send (wc_announce_t *self, int type)
{
    wc_node_t *node = self->node;
    wc_msg_t msg = { .type = type, .rid = ++self->rid };
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
    info->flags = wc_role_flags (node);
    info->handover_seq = wc_role_handover_seq (node);
    if (wc_sock_curve ())
        info->curve_key = s_bytes (wc_curve_keys (wc_sock_curve ())->public_key);
    self->buf.size = 0;
    if (wc_msg_encode (&msg, &self->buf) != 0)
        return;
    if (zmq_send (zsock_resolve (self->dealer), self->buf.data, self->buf.size,
                  ZMQ_DONTWAIT) == -1) {
        self->dropped++;
        s_unsent (self);
    }
    else {
        wc_role_handover_sent (node, (uint32_t) info->flags);
        s_sent (self);
    }
}

/*  The flag that sets the node_info field a refusal names (the first
    word of the broker's text), or NULL for a field no flag sets. */
static const char *
s_flag_of (const char *text)
{
    static const char *fields [][2] = {
        { "id",      "--id" },
        { "region",  "--region" },
        { "addr",    "--advertise (or --bind and --port, its default)" },
        { "primary", "--replica-of" }
    };
    size_t word = strcspn (text, " ");
    for (size_t i = 0; i < sizeof fields / sizeof fields [0]; i++)
        if (strlen (fields [i][0]) == word && strncmp (text, fields [i][0], word) == 0)
            return fields [i][1];
    return NULL;
}

/*  What the operator can do about a refusal, by its code and, for a
    field at fault, by the flag that sets it. */
static void
s_remedy (wc_announce_t *self, int code, const char *text,
          char *remedy, size_t size)
{
    const char *flag = s_flag_of (text);
    if (code == WALCAST_EBUSY)
        snprintf (remedy, size, "the broker admits this node when a slot frees up "
                  "(a node that is down makes room); retrying every %d ms",
                  WC_ANNOUNCE_INTERVAL_MS);
    else
    if (code == WALCAST_ECONFLICT && strstr (text, "in use by a live node"))
        snprintf (remedy, size, "if that is this node before it moved, the broker "
                  "admits this one once it has seen that one down (--node-timeout); "
                  "else give one of them another --id; retrying every %d ms",
                  WC_ANNOUNCE_INTERVAL_MS);
    else
    if (code == WALCAST_EPROTO && strstr (text, "registered with another key"))
        snprintf (remedy, size, "the broker still sees this id's node up with its "
                  "old key (a restart with a new key, say): it admits this node once "
                  "it has seen that one down (--node-timeout); retrying every %d ms "
                  "(if another node runs with this --id, give one of them another)",
                  WC_ANNOUNCE_INTERVAL_MS);
    else
    if (code == WALCAST_EPERM)
        snprintf (remedy, size, "only a key whose public certificate is in the "
                  "broker's --curve-trust DIR/nodes may register a node: put this "
                  "node's there (the public half of its --curve-cert; the broker "
                  "re-reads DIR), or start it with a node's key; retrying every %d ms",
                  WC_ANNOUNCE_INTERVAL_MS);
    else
    if ((code == WALCAST_EPROTO || code == WALCAST_ETOOBIG) && flag)
        snprintf (remedy, size, "fix %s and restart this node; until then clients "
                  "that use the broker do not see it", flag);
    else
    if (code == WALCAST_EPROTO || code == WALCAST_ETOOBIG)
        snprintf (remedy, size, "no flag sets that field: this node and the broker "
                  "disagree on the protocol (check that both run the same walcast "
                  "version, else report it); retrying every %d ms",
                  WC_ANNOUNCE_INTERVAL_MS);
    else
        snprintf (remedy, size, "check that --broker %s names a walcast broker of "
                  "this version; retrying every %d ms", self->broker,
                  WC_ANNOUNCE_INTERVAL_MS);
}

/*  The broker refused a beat: back to REGISTER, and say so once. */
static void
s_refused (wc_announce_t *self, const wc_msg_t *reply)
{
    self->admitted = false;
    int code = wc_err_from_wire (reply->u.error.code);
    if (self->refused && code == self->refused_code)
        return;
    char text [WC_MAX_TEXT + 1], remedy [640];
    wc_bytes_printable (text, sizeof text, &reply->u.error.text);
    s_remedy (self, code, text, remedy, sizeof remedy);
    wc_log_warn ("broker refused us: %s (%s); %s", text, walcast_errname (code), remedy);
    self->refused = true;
    self->refused_code = code;
}

/*  The broker answered a REGISTER with its TOPOLOGY: admitted. */
static void
s_admitted (wc_announce_t *self, const wc_msg_t *reply)
{
    if (self->refused)
        wc_log_info ("broker accepts us again: registered with %s (topology version "
                     "%llu, %u nodes)", self->broker,
                     (unsigned long long) reply->u.topology.version,
                     reply->u.topology.count);
    else
    if (!self->admitted)
        wc_log_info ("registered with broker %s (topology version %llu, %u nodes)",
                     self->broker, (unsigned long long) reply->u.topology.version,
                     reply->u.topology.count);
    self->refused = false;
    self->admitted = true;
}

/*  The public key a FOLLOW names for the primary at addr (CURVE on): the
    replica connects with it. A FOLLOW to another node that names no key
    forgets the old one, so the replica says that it knows no key rather
    than knock on a new door with the old node's key. */
static void
s_take_key (wc_node_t *node, const wc_bytes_t *key, const char *addr)
{
    if (key->len > 0 && wc_certs_is_key ((const char *) key->ptr, key->len)) {
        memcpy (node->upstream_key, key->ptr, key->len);
        node->upstream_key [key->len] = '\0';
        return;
    }
    const char *now = node->replica ? wc_replica_primary (node->replica)
                                    : node->cfg.replica_of;
    if (strcmp (now, addr) != 0)
        node->upstream_key [0] = '\0';
}

/*  A directive: the broker moves this node (role.c). It repeats it on
    every beat until the beats show it done, so one lost is no harm. */
static void
s_directive (wc_announce_t *self, const wc_msg_t *msg)
{
    char id [WC_MAX_ID + 1], addr [WC_MAX_ADDR + 1];
    switch (msg->type) {
        case WC_MSG_PROMOTE:
            wc_role_promote (self->node, msg->u.promote.epoch);
            break;
        case WC_MSG_FOLLOW:
            wc_bytes_printable (addr, sizeof addr, &msg->u.follow.primary);
            s_take_key (self->node, &msg->u.follow.primary_key, addr);
            wc_role_follow (self->node, msg->u.follow.epoch, addr);
            break;
        default:
            wc_bytes_printable (id, sizeof id, &msg->u.handover.target_id);
            wc_bytes_printable (addr, sizeof addr, &msg->u.handover.target_addr);
            wc_role_handover (self->node, id, addr);
            break;
    }
}

/*  The broker's FORGET: an operator removed that node for good. Sent on
    the primary's next few beats (a lost one is no harm), so it may come
    more than once; primary.c drops the node from its ACK table and
    /metrics the first time. A node that is not the primary has no ACK
    table: nothing to do. */
static void
s_forgotten (wc_announce_t *self, const wc_msg_t *msg)
{
    if (self->node->primary)
        wc_primary_forget (self->node->primary, &msg->u.forget.node_id);
}

/*  Read what the broker sent, without waiting. */
static void
s_read_replies (wc_announce_t *self)
{
    void *dealer = zsock_resolve (self->dealer);
    for (int i = 0; i < S_REPLIES_PER_TICK; i++) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, dealer, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&frame);
            return;
        }
        wc_msg_t reply;
        int rc = zmq_msg_more (&frame) ? WALCAST_EPROTO
               : wc_msg_decode (zmq_msg_data (&frame), zmq_msg_size (&frame),
                                &self->unpacked, &reply);
        if (rc == 0 && reply.type == WC_MSG_ERROR)
            s_refused (self, &reply);
        else
        if (rc == 0 && reply.type == WC_MSG_TOPOLOGY && reply.rid != 0)
            s_admitted (self, &reply);
        else
        if (rc == 0 && (reply.type == WC_MSG_PROMOTE || reply.type == WC_MSG_FOLLOW
                        || reply.type == WC_MSG_HANDOVER))
            s_directive (self, &reply);
        else
        if (rc == 0 && reply.type == WC_MSG_FORGET)
            s_forgotten (self, &reply);
        else {
            self->bad_replies++;
            wc_log_debug ("broker %s: ignoring a reply that is not an ERROR, a "
                          "TOPOLOGY, a directive or a FORGET (%s)", self->broker,
                          rc ? walcast_strerror (rc) : wc_msg_type_name (reply.type));
        }
        zmq_msg_close (&frame);
    }
}

void *
wc_announce_socket (wc_announce_t *self)
{
    return zsock_resolve (self->dealer);
}

void
wc_announce_read (wc_announce_t *self)
{
    s_read_replies (self);
}

/*  The node's role as a beat says it now. */
static s_shape_t
s_shape (wc_node_t *node)
{
    s_shape_t shape = { .role = (int) node->role, .epoch = node->epoch,
                        .flags = wc_role_flags (node),
                        .handover_seq = wc_role_handover_seq (node) };
    snprintf (shape.primary, sizeof shape.primary, "%s",
              node->replica ? wc_replica_primary (node->replica) : "");
    return shape;
}

static bool
s_same_shape (const s_shape_t *a, const s_shape_t *b)
{
    return a->role == b->role && a->epoch == b->epoch && a->flags == b->flags
        && a->handover_seq == b->handover_seq && strcmp (a->primary, b->primary) == 0;
}

int
wc_announce_tick (wc_announce_t *self)
{
    s_read_replies (self);
    int64_t now = wc_clock_ms ();
    s_shape_t shape = s_shape (self->node);
    bool changed = !s_same_shape (&shape, &self->sent)
                && now - self->sent_ms >= S_CHANGE_BEAT_MS;
    if (now >= self->next_beat_ms || changed) {
        s_send (self, self->admitted ? WC_MSG_NODE_HEARTBEAT : WC_MSG_REGISTER);
        self->sent = shape;
        self->sent_ms = now;
        self->next_beat_ms = now + WC_ANNOUNCE_INTERVAL_MS;
    }
    return (int) (self->next_beat_ms - now);
}
