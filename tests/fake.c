/*  fake.c - fake walcast peers for client tests (see fake.h).

    One thread polls every ROUTER of the fake and calls on_tick on a
    20 ms clock. Sockets are created and bound in the test's thread
    before the fake's thread starts, and used only by that thread after
    (ZeroMQ sockets may move between threads across such a barrier).
    A deferred reply is kept (its envelope and body copied) in a small
    table the same thread sends from when it is due.

    The fake node and the fake broker are on_request / on_tick pairs
    over a fake of their own; what the test may change while they run
    sits behind a mutex, taken for the length of one request.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>
#include "fake.h"

#define FAKE_MAX_SOCKETS 8
#define FAKE_TICK_MS     20
#define FAKE_MAX_DEFERRED 64

/*  A reply that waits for its time. */
typedef struct {
    void    *sock;                  /* NULL: free slot */
    uint8_t  identity [256];
    size_t   identity_len;
    void    *body;
    size_t   body_len;
    int64_t  due_ms;
} s_deferred_t;

typedef struct {
    void *sock;
    int   port;
    int   type;                     /* ZMQ_ROUTER or ZMQ_PUB */
} s_socket_t;

struct fake {
    void            *ctx;
    s_socket_t       socks [FAKE_MAX_SOCKETS];
    int              nsocks;
    fake_request_fn *on_request;
    fake_tick_fn    *on_tick;
    void            *arg;
    atomic_int       stop;
    pthread_t        thread;
    bool             running;
    int              defer_ms;      /* set by fake_defer during on_request */
    char             curve_secret [41];     /* CURVE server key (Z85), "" none */
    s_deferred_t     deferred [FAKE_MAX_DEFERRED];
};

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

fake_t *
fake_new (fake_request_fn *on_request, fake_tick_fn *on_tick, void *arg)
{
    fake_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = zmq_ctx_new ();
    if (!self->ctx) {
        free (self);
        return NULL;
    }
    self->on_request = on_request;
    self->on_tick = on_tick;
    self->arg = arg;
    atomic_init (&self->stop, 0);
    return self;
}

void
fake_destroy (fake_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fake_t *self = *self_p;
    if (self->running) {
        atomic_store (&self->stop, 1);
        pthread_join (self->thread, NULL);
    }
    for (int i = 0; i < self->nsocks; i++)
        zmq_close (self->socks [i].sock);
    for (int i = 0; i < FAKE_MAX_DEFERRED; i++)
        free (self->deferred [i].body);
    zmq_ctx_term (self->ctx);
    free (self);
    *self_p = NULL;
}

static int
s_bind (fake_t *self, int type, int port)
{
    if (self->running || self->nsocks == FAKE_MAX_SOCKETS)
        return -1;
    void *sock = zmq_socket (self->ctx, type);
    if (!sock)
        return -1;
    int linger = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    if (self->curve_secret [0]) {
        int on = 1;
        zmq_setsockopt (sock, ZMQ_CURVE_SERVER, &on, sizeof on);
        zmq_setsockopt (sock, ZMQ_CURVE_SECRETKEY, self->curve_secret, 40);
    }
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    if (zmq_bind (sock, endpoint)) {
        fprintf (stderr, "fake: bind %s: %s\n", endpoint, zmq_strerror (zmq_errno ()));
        zmq_close (sock);
        return -1;
    }
    self->socks [self->nsocks].sock = sock;
    self->socks [self->nsocks].port = port;
    self->socks [self->nsocks].type = type;
    self->nsocks++;
    return 0;
}

void
fake_curve_server (fake_t *self, const char *secret_key)
{
    snprintf (self->curve_secret, sizeof self->curve_secret, "%s",
              secret_key ? secret_key : "");
}

int
fake_bind_router (fake_t *self, int port)
{
    return s_bind (self, ZMQ_ROUTER, port);
}

int
fake_bind_pub (fake_t *self, int port)
{
    return s_bind (self, ZMQ_PUB, port);
}

int
fake_publish (fake_t *self, int port, const void *topic, size_t topic_len,
              const void *body, size_t body_len)
{
    for (int i = 0; i < self->nsocks; i++)
        if (self->socks [i].port == port && self->socks [i].type == ZMQ_PUB) {
            if (zmq_send (self->socks [i].sock, topic, topic_len, ZMQ_SNDMORE) < 0)
                return -1;
            return zmq_send (self->socks [i].sock, body, body_len, 0) < 0 ? -1 : 0;
        }
    return -1;
}

void
fake_defer (fake_t *self, int ms)
{
    self->defer_ms = ms;
}

//  Keep the reply in out for [identity] on sock until defer_ms from
//  now. 0, or -1 when the table is full (then it goes at once).
static int
s_defer (fake_t *self, void *sock, zmq_msg_t *identity, msgpack_sbuffer *out)
{
    for (int i = 0; i < FAKE_MAX_DEFERRED; i++) {
        s_deferred_t *d = &self->deferred [i];
        if (d->sock || zmq_msg_size (identity) > sizeof d->identity)
            continue;
        d->body = malloc (out->size);
        if (!d->body)
            return -1;
        memcpy (d->body, out->data, out->size);
        d->body_len = out->size;
        d->identity_len = zmq_msg_size (identity);
        memcpy (d->identity, zmq_msg_data (identity), d->identity_len);
        d->due_ms = s_now_ms () + self->defer_ms;
        d->sock = sock;
        return 0;
    }
    return -1;
}

//  Send the deferred replies that are due; the time until the next one
//  is due (ms), or `wait` when that comes first.
static int64_t
s_send_due (fake_t *self, int64_t wait)
{
    int64_t now = s_now_ms ();
    for (int i = 0; i < FAKE_MAX_DEFERRED; i++) {
        s_deferred_t *d = &self->deferred [i];
        if (!d->sock)
            continue;
        if (d->due_ms <= now) {
            if (zmq_send (d->sock, d->identity, d->identity_len, ZMQ_SNDMORE) >= 0)
                zmq_send (d->sock, d->body, d->body_len, 0);
            free (d->body);
            memset (d, 0, sizeof *d);
        }
        else
        if (d->due_ms - now < wait)
            wait = d->due_ms - now;
    }
    return wait;
}

//  Read one request [identity][body] from a ROUTER and answer it as
//  on_request says (now, or later after fake_defer). Anything of
//  another shape is dropped.
static void
s_serve (fake_t *self, s_socket_t *s, msgpack_sbuffer *out)
{
    zmq_msg_t identity, body;
    zmq_msg_init (&identity);
    zmq_msg_init (&body);
    bool ok = zmq_msg_recv (&identity, s->sock, ZMQ_DONTWAIT) >= 0
           && zmq_msg_more (&identity)
           && zmq_msg_recv (&body, s->sock, ZMQ_DONTWAIT) >= 0;
    if (ok && zmq_msg_more (&body)) {           // not a request: drop it all
        ok = false;
        bool more = true;
        while (more) {
            zmq_msg_t extra;
            zmq_msg_init (&extra);
            more = zmq_msg_recv (&extra, s->sock, ZMQ_DONTWAIT) >= 0
                && zmq_msg_more (&extra);
            zmq_msg_close (&extra);
        }
    }
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_msg_t req;
    out->size = 0;
    self->defer_ms = 0;
    if (ok && self->on_request
    &&  wc_msg_decode (zmq_msg_data (&body), zmq_msg_size (&body), &storage, &req) == 0
    &&  self->on_request (self->arg, s->port, &req, out)) {
        if (self->defer_ms > 0 && s_defer (self, s->sock, &identity, out) == 0)
            ;                                   // sent when due
        else
        if (zmq_msg_send (&identity, s->sock, ZMQ_SNDMORE) >= 0)
            zmq_send (s->sock, out->data, out->size, 0);
    }
    msgpack_unpacked_destroy (&storage);
    zmq_msg_close (&identity);
    zmq_msg_close (&body);
}

static void *
s_run (void *arg)
{
    fake_t *self = (fake_t *) arg;
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    zmq_pollitem_t items [FAKE_MAX_SOCKETS];
    int map [FAKE_MAX_SOCKETS];
    int nitems = 0;
    for (int i = 0; i < self->nsocks; i++)
        if (self->socks [i].type == ZMQ_ROUTER) {
            items [nitems] = (zmq_pollitem_t) { self->socks [i].sock, 0, ZMQ_POLLIN, 0 };
            map [nitems++] = i;
        }
    int64_t next_tick = s_now_ms ();
    while (!atomic_load (&self->stop)) {
        int64_t wait = next_tick - s_now_ms ();
        if (wait < 0)
            wait = 0;
        wait = s_send_due (self, wait);
        if (zmq_poll (items, nitems, (long) wait) > 0)
            for (int k = 0; k < nitems; k++)
                if (items [k].revents & ZMQ_POLLIN)
                    s_serve (self, &self->socks [map [k]], &out);
        if (s_now_ms () >= next_tick) {
            next_tick = s_now_ms () + FAKE_TICK_MS;
            if (self->on_tick)
                self->on_tick (self->arg, self);
        }
    }
    msgpack_sbuffer_destroy (&out);
    return NULL;
}

int
fake_start (fake_t *self)
{
    if (self->running)
        return -1;
    atomic_store (&self->stop, 0);
    if (pthread_create (&self->thread, NULL, s_run, self))
        return -1;
    self->running = true;
    return 0;
}

/* --- a fake node ------------------------------------------------------------

    One ROUTER standing for a node's service port. PING, STATUS, PUT,
    DEL, WRITE_BATCH and SNAPSHOT are answered as the configuration says (fake.h);
    anything else is not answered. */

struct fake_node {
    fake_t          *fake;
    pthread_mutex_t  lock;          /* guards conf and seen */
    char             id [65];
    fake_node_conf_t conf;
    fake_node_seen_t seen;
};

//  Encode msg (rid already set) into reply; true when it worked.
static bool
s_reply (const wc_msg_t *msg, msgpack_sbuffer *reply)
{
    return wc_msg_encode (msg, reply) == 0;
}

//  A PING or a STATUS, answered from the node's settings.
static bool
s_node_about (fake_node_t *self, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.rid = req->rid;
    wc_bytes_t id = { (const uint8_t *) self->id, (uint32_t) strlen (self->id) };
    if (req->type == WC_MSG_PING) {
        msg.type = WC_MSG_PONG;
        msg.u.pong.epoch = self->conf.epoch;
        msg.u.pong.seq = self->seen.seq;
        msg.u.pong.role = (uint8_t) self->conf.role;
        msg.u.pong.id = id;
        return s_reply (&msg, reply);
    }
    msg.type = WC_MSG_STATUS_REPLY;
    msg.u.status.id = id;
    msg.u.status.role = (uint8_t) self->conf.role;
    msg.u.status.epoch = self->conf.epoch;
    msg.u.status.applied_seq = self->seen.seq;
    msg.u.status.flags = self->conf.flags;
    if (self->conf.role == WC_ROLE_REPLICA) {
        msg.u.status.primary.ptr = (const uint8_t *) self->conf.detail;
        msg.u.status.primary.len = (uint32_t) strlen (self->conf.detail);
    }
    return s_reply (&msg, reply);
}

//  How many replicas WC_ACKS_ALL waits for: the current ones.
static int
s_all_of (const fake_node_conf_t *conf)
{
    int current = conf->current ? conf->current : conf->replicas;
    return current > 0 ? current : 1;
}

//  The refusals a write meets before any seq is given (see
//  fake_node_conf_t): true when it is refused (*answer: whether a reply
//  is in reply), false when it goes on.
static bool
s_node_refuses (fake_node_t *self, uint64_t rid, msgpack_sbuffer *reply, bool *answer)
{
    const fake_node_conf_t *conf = &self->conf;
    *answer = false;
    if (conf->silent_writes)
        return true;
    if (conf->refuse)
        *answer = wc_error_encode (rid, conf->refuse, NULL, conf->detail, reply) == 0;
    else
    if (conf->role != WC_ROLE_PRIMARY)
        *answer = wc_error_encode (rid, WALCAST_ENOTPRIMARY, NULL, conf->detail,
                                   reply) == 0;
    else
        return false;
    return true;
}

//  A PUT or a DEL (see fake_node_conf_t).
static bool
s_node_write (fake_node_t *self, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    const fake_node_conf_t *conf = &self->conf;
    self->seen.writes++;
    self->seen.last_acks = req->u.req.acks;
    self->seen.last_ack_timeout_ms = req->u.req.ack_timeout_ms;
    bool answer;
    if (s_node_refuses (self, req->rid, reply, &answer))
        return answer;
    uint64_t seq = ++self->seen.seq;
    int asked = conf->ignore_acks ? 0 : req->u.req.acks;
    int need = asked == WC_ACKS_ALL ? s_all_of (conf) : asked;
    if (asked > 0 && conf->replicas < need) {
        char detail [64];
        snprintf (detail, sizeof detail, "acked=%d of %d", conf->replicas, need);
        fake_defer (self->fake, req->u.req.ack_timeout_ms ? (int) req->u.req.ack_timeout_ms
                                                          : 5000);
        return wc_error_encode (req->rid, WALCAST_ENOTREPLICATED, NULL, detail,
                                reply) == 0;
    }
    self->seen.written++;
    if (conf->write_ms > 0)
        fake_defer (self->fake, conf->write_ms);
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = WC_MSG_WRITE_OK;
    msg.rid = req->rid;
    msg.u.write_ok.epoch = conf->epoch;
    msg.u.write_ok.seq = seq;
    msg.u.write_ok.acked = asked > 0 ? (uint32_t) conf->replicas : 0;
    return s_reply (&msg, reply);
}

//  A WRITE_BATCH, as a PUT but for every write of it at once: one reply,
//  WRITES_OK with the acks (below what it asked when the replicas are
//  too few, after its ack timeout, as a primary answers).
static bool
s_node_batch (fake_node_t *self, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    const fake_node_conf_t *conf = &self->conf;
    uint32_t count = req->u.batch.count;
    self->seen.writes += (int) count;
    self->seen.batches++;
    self->seen.last_acks = req->u.batch.acks;
    self->seen.last_ack_timeout_ms = req->u.batch.ack_timeout_ms;
    bool answer;
    if (s_node_refuses (self, req->rid, reply, &answer))
        return answer;
    uint64_t first = self->seen.seq + 1;
    self->seen.seq += count;
    int asked = conf->ignore_acks ? 0 : req->u.batch.acks;
    int need = asked == WC_ACKS_ALL ? s_all_of (conf) : asked;
    if (asked > 0 && conf->replicas < need)
        fake_defer (self->fake, req->u.batch.ack_timeout_ms
                                ? (int) req->u.batch.ack_timeout_ms : 5000);
    else {
        self->seen.written += (int) count;
        if (conf->write_ms > 0)
            fake_defer (self->fake, conf->write_ms);
    }
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = WC_MSG_WRITES_OK;
    msg.rid = req->rid;
    msg.u.writes_ok.epoch = conf->epoch;
    msg.u.writes_ok.first_seq = first;
    msg.u.writes_ok.count = count;
    msg.u.writes_ok.acked = asked > 0 ? (uint32_t) conf->replicas : 0;
    msg.u.writes_ok.wanted = asked > 0 ? (uint32_t) need : 0;
    return s_reply (&msg, reply);
}

//  A SNAPSHOT: SNAPSHOT_DONE (seq, 100 bytes a seq) or an ERROR, after
//  snapshot_ms; never when that is negative.
static bool
s_node_snapshot (fake_node_t *self, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    self->seen.snapshots++;
    if (self->conf.snapshot_ms < 0)
        return false;
    if (self->conf.snapshot_ms > 0)
        fake_defer (self->fake, self->conf.snapshot_ms);
    if (self->conf.snapshot_err)
        return wc_error_encode (req->rid, self->conf.snapshot_err, NULL,
                                self->conf.detail, reply) == 0;
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = WC_MSG_SNAPSHOT_DONE;
    msg.rid = req->rid;
    msg.u.snapshot_done.seq = self->seen.seq;
    msg.u.snapshot_done.bytes = 100 * self->seen.seq + 16;
    return s_reply (&msg, reply);
}

static bool
s_node_request (void *arg, int port, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    (void) port;
    fake_node_t *self = (fake_node_t *) arg;
    bool answer = false;
    pthread_mutex_lock (&self->lock);
    if (self->conf.frozen)
        answer = false;
    else
    if (req->type == WC_MSG_PING || req->type == WC_MSG_STATUS)
        answer = s_node_about (self, req, reply);
    else
    if (req->type == WC_MSG_PUT || req->type == WC_MSG_DEL)
        answer = s_node_write (self, req, reply);
    else
    if (req->type == WC_MSG_WRITE_BATCH)
        answer = s_node_batch (self, req, reply);
    else
    if (req->type == WC_MSG_SNAPSHOT)
        answer = s_node_snapshot (self, req, reply);
    pthread_mutex_unlock (&self->lock);
    return answer;
}

fake_node_t *
fake_node_new (int port, const char *id)
{
    return fake_node_new_curve (port, id, NULL);
}

fake_node_t *
fake_node_new_curve (int port, const char *id, const char *secret_key)
{
    fake_node_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init (&self->lock, NULL);
    snprintf (self->id, sizeof self->id, "%s", id);
    self->conf.role = WC_ROLE_PRIMARY;
    self->conf.epoch = 1;
    self->fake = fake_new (s_node_request, NULL, self);
    if (self->fake)
        fake_curve_server (self->fake, secret_key);
    if (!self->fake || fake_bind_router (self->fake, port) || fake_start (self->fake))
        fake_node_destroy (&self);
    return self;
}

void
fake_node_destroy (fake_node_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fake_node_t *self = *self_p;
    fake_destroy (&self->fake);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
fake_node_conf (fake_node_t *self, fake_node_conf_t *conf)
{
    pthread_mutex_lock (&self->lock);
    *conf = self->conf;
    pthread_mutex_unlock (&self->lock);
}

void
fake_node_set (fake_node_t *self, const fake_node_conf_t *conf)
{
    pthread_mutex_lock (&self->lock);
    self->conf = *conf;
    pthread_mutex_unlock (&self->lock);
}

void
fake_node_seen (fake_node_t *self, fake_node_seen_t *seen)
{
    pthread_mutex_lock (&self->lock);
    *seen = self->seen;
    pthread_mutex_unlock (&self->lock);
}

/* --- a fake broker ----------------------------------------------------------

    A ROUTER at B (TOPOLOGY_GET, SWITCHOVER) and a PUB at B+1 that pushes
    the directory on every tick. */

#define FAKE_BROKER_NODES 8

struct fake_broker {
    fake_t              *fake;
    int                  port;
    pthread_mutex_t      lock;      /* guards everything below */
    fake_broker_node_t   nodes [FAKE_BROKER_NODES];
    char                 keys [FAKE_BROKER_NODES][41];  /* curve_key, "" none */
    int                  count;
    uint64_t             version;
    fake_broker_answer_t answer;
    int                  switchovers;
    char                 last_id [65];
    int                  topology_gets;
};

//  The directory as a TOPOLOGY with rid (0: a push) into out.
static int
s_broker_topology (fake_broker_t *self, uint64_t rid, msgpack_sbuffer *out)
{
    int rc = wc_topology_encode_header (rid, self->version, (uint32_t) self->count, out);
    for (int i = 0; i < self->count && rc == 0; i++) {
        const fake_broker_node_t *n = &self->nodes [i];
        wc_node_info_t info;
        memset (&info, 0, sizeof info);
        info.id = (wc_bytes_t) { (const uint8_t *) n->id, (uint32_t) strlen (n->id) };
        info.addr = (wc_bytes_t) { (const uint8_t *) n->addr, (uint32_t) strlen (n->addr) };
        info.role = (uint8_t) n->role;
        info.epoch = n->epoch;
        info.up = n->up;
        info.flags = n->flags;
        info.curve_key = (wc_bytes_t) { (const uint8_t *) self->keys [i],
                                        (uint32_t) strlen (self->keys [i]) };
        rc = wc_node_info_encode (&info, out);
    }
    return rc;
}

//  A SWITCHOVER: as self->answer says (fake.h).
static bool
s_broker_switchover (fake_broker_t *self, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    self->switchovers++;
    wc_bytes_printable (self->last_id, sizeof self->last_id, &req->u.switchover.node_id);
    const fake_broker_answer_t *answer = &self->answer;
    if (answer->delay_ms < 0)
        return false;
    if (answer->delay_ms > 0)
        fake_defer (self->fake, answer->delay_ms);
    if (answer->err)
        return wc_error_encode (req->rid, answer->err, answer->text, NULL, reply) == 0;
    uint64_t epoch = 0;
    const char *addr = "";
    for (int i = 0; i < self->count; i++)
        if (self->nodes [i].epoch > epoch)
            epoch = self->nodes [i].epoch;
    epoch++;
    for (int i = 0; i < self->count; i++) {
        bool target = strcmp (self->nodes [i].id, self->last_id) == 0;
        self->nodes [i].role = target ? WC_ROLE_PRIMARY : WC_ROLE_REPLICA;
        if (target) {
            self->nodes [i].epoch = epoch;
            addr = self->nodes [i].addr;
        }
    }
    self->version++;
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = WC_MSG_SWITCHOVER_DONE;
    msg.rid = req->rid;
    msg.u.switchover_done.epoch = epoch;
    msg.u.switchover_done.primary = (wc_bytes_t) { (const uint8_t *) addr,
                                                   (uint32_t) strlen (addr) };
    return s_reply (&msg, reply);
}

static bool
s_broker_request (void *arg, int port, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    (void) port;
    fake_broker_t *self = (fake_broker_t *) arg;
    bool answer = false;
    pthread_mutex_lock (&self->lock);
    if (req->type == WC_MSG_TOPOLOGY_GET) {
        self->topology_gets++;
        answer = s_broker_topology (self, req->rid, reply) == 0;
    }
    else
    if (req->type == WC_MSG_SWITCHOVER)
        answer = s_broker_switchover (self, req, reply);
    pthread_mutex_unlock (&self->lock);
    return answer;
}

static void
s_broker_tick (void *arg, fake_t *fake)
{
    fake_broker_t *self = (fake_broker_t *) arg;
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    pthread_mutex_lock (&self->lock);
    int rc = s_broker_topology (self, 0, &out);
    pthread_mutex_unlock (&self->lock);
    if (rc == 0)
        fake_publish (fake, self->port + 1, "topology", 8, out.data, out.size);
    msgpack_sbuffer_destroy (&out);
}

fake_broker_t *
fake_broker_new (int port)
{
    return fake_broker_new_curve (port, NULL);
}

void
fake_broker_set_key (fake_broker_t *self, int index, const char *key)
{
    if (index < 0 || index >= FAKE_BROKER_NODES)
        return;
    pthread_mutex_lock (&self->lock);
    snprintf (self->keys [index], sizeof self->keys [index], "%s", key ? key : "");
    self->version++;
    pthread_mutex_unlock (&self->lock);
}

fake_broker_t *
fake_broker_new_curve (int port, const char *secret_key)
{
    fake_broker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init (&self->lock, NULL);
    self->port = port;
    self->version = 1;
    self->fake = fake_new (s_broker_request, s_broker_tick, self);
    if (self->fake)
        fake_curve_server (self->fake, secret_key);
    if (!self->fake || fake_bind_router (self->fake, port)
    ||  fake_bind_pub (self->fake, port + 1) || fake_start (self->fake))
        fake_broker_destroy (&self);
    return self;
}

void
fake_broker_destroy (fake_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fake_broker_t *self = *self_p;
    fake_destroy (&self->fake);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
fake_broker_set_nodes (fake_broker_t *self, const fake_broker_node_t *nodes, int count)
{
    pthread_mutex_lock (&self->lock);
    self->count = count < FAKE_BROKER_NODES ? count : FAKE_BROKER_NODES;
    memcpy (self->nodes, nodes, (size_t) self->count * sizeof nodes [0]);
    self->version++;
    pthread_mutex_unlock (&self->lock);
}

void
fake_broker_set_answer (fake_broker_t *self, const fake_broker_answer_t *answer)
{
    pthread_mutex_lock (&self->lock);
    self->answer = *answer;
    pthread_mutex_unlock (&self->lock);
}

int
fake_broker_switchovers (fake_broker_t *self, char *id, size_t size)
{
    pthread_mutex_lock (&self->lock);
    int n = self->switchovers;
    if (id && size > 0)
        snprintf (id, size, "%s", self->last_id);
    pthread_mutex_unlock (&self->lock);
    return n;
}

int
fake_broker_topology_gets (fake_broker_t *self)
{
    pthread_mutex_lock (&self->lock);
    int n = self->topology_gets;
    pthread_mutex_unlock (&self->lock);
    return n;
}
