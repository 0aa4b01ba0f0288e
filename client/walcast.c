/*  walcast.c - libwalcast, the client side of include/walcast.h.

    A handle talks to each node it knows through one ZeroMQ DEALER socket
    connected to the node's service ROUTER (base port P). Every request is
    one frame, a msgpack message from the codec, carrying a request id
    (rid) that the node echoes in its reply. Three ideas make it work:

    - Replies are matched by rid, never by order. The handle hands out
      rids from one counter; a reply whose rid is the synchronous request
      being waited for ends that wait, one whose rid is an async write in
      flight settles that write, and anything else (a reply that arrived
      after its request timed out) is dropped. So pipelined writes, a
      sync call made while async writes are in flight, and late replies
      all share one socket safely.

    - Lazy Pirate. Every call is bounded by the handle's timeout: we
      zmq_poll with the time that remains. When it runs out, the node's
      socket is closed (ZMQ_LINGER 0 drops what it still queues) and a
      fresh one is connected, so the next call starts clean and nothing
      the old connection receives later can be mistaken for a reply to a
      new request. Async writes in flight on that socket are lost with
      it: their outcome is unknown, and walcast_flush reports
      WALCAST_ETIMEOUT for them.

    - An async window. walcast_put_async sends at once and remembers the
      rid in a small ring (slot = rid % ring size, the slot holds the
      rid); it reads whatever replies are already there without waiting
      and blocks only while the window (WC_ASYNC_WINDOW writes) is full.
      The ring has twice as many slots as the window, so a free slot is
      always a few rids away: rids are skipped until one is found.
      walcast_flush waits for the rest and reports the first error, the
      highest (epoch, seq) acknowledged and the count acknowledged since
      the previous flush.

    Writes go to the "write node" (the first node added, until discovery
    follows the primary), reads to the first node. ENOTPRIMARY is
    returned as it is, with the primary's HOST:PORT kept for
    walcast_last_detail; it is not followed.

    This file uses plain libzmq (not czmq) to keep the library's
    dependencies small.
*/
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>
#include "walcast.h"
#include "codec.h"
#include "errors.h"

/*  Writes in flight per handle for walcast_put_async, and the size of the
    ring that tracks them (twice the window, see above). */
#define WC_ASYNC_WINDOW     4096
#define WC_ASYNC_RING       (2 * WC_ASYNC_WINDOW)

/*  Send and receive queues of each DEALER: large, so that a full window
    of pipelined writes never blocks in libzmq. */
#define WC_SOCKET_HWM       100000

/*  ZMTP heartbeats, so a dead TCP peer is noticed (ms). */
#define WC_HEARTBEAT_IVL    1000
#define WC_HEARTBEAT_TTL    5000

#define WC_DEFAULT_TIMEOUT  5000

/*  Room for an error's detail (a HOST:PORT, or text), NUL included. */
#define WC_DETAIL_SIZE      (WC_MAX_TEXT + 1)

/*  One node the handle knows. */
typedef struct {
    char *host_port;        /* "HOST:PORT" as given */
    char *endpoint;         /* "tcp://HOST:PORT" */
    bool  ipv6;             /* host is a bracketed IPv6 address */
    void *sock;             /* DEALER, connected; NULL after a failed reset */
} s_node_t;

struct walcast {
    void            *ctx;           /* zmq context, one per handle */
    s_node_t        *nodes;         /* nodes in the order added */
    size_t           nnodes;
    size_t           nodes_cap;
    size_t           write_node;    /* index of the node writes go to */
    int              timeout_ms;    /* bound on every call */
    uint64_t         next_rid;      /* next request id to hand out, >= 1 */
    msgpack_sbuffer  out;           /* encode buffer, reused */
    char             detail [WC_DETAIL_SIZE];   /* last error's detail */

    /* the reply being looked at: frame, decoded storage, message */
    zmq_msg_t        rx_frame;
    msgpack_unpacked rx_unpacked;
    wc_msg_t         rx;
    bool             rx_held;       /* rx_* hold the sync reply */
    uint64_t         sync_rid;      /* rid of the sync request, 0 = none */
    bool             saw_malformed; /* a frame we could not decode arrived */

    /* async writes */
    uint64_t        *ring;          /* WC_ASYNC_RING slots: rid or 0 */
    size_t           inflight;      /* writes sent, not yet settled */
    size_t           async_node;    /* node the writes in flight went to */
    uint64_t         acked;         /* acknowledged since the last flush */
    walcast_pos_t    last;          /* highest position acknowledged */
    int              async_err;     /* first error since the last flush */
    char             async_detail [WC_DETAIL_SIZE];
};

//  Monotonic clock in ms.
static int64_t
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Copy untrusted bytes into a NUL-terminated buffer of size `size`,
//  truncating, and replacing control bytes (NUL, ESC, newline ...) by '?'
//  so that what a node sends can be printed safely.
static void
s_copy_text (char *dest, size_t size, const wc_bytes_t *src)
{
    size_t len = src->len < size - 1 ? src->len : size - 1;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = src->ptr [i];
        dest [i] = (c < 0x20 || c == 0x7f) ? '?' : (char) c;
    }
    dest [len] = 0;
}

//  Check a key and a value against the protocol's limits.
static int
s_check_kv (const void *key, size_t key_len, const void *value,
            size_t value_len, bool has_value)
{
    if (!key || key_len == 0)
        return WALCAST_EINVAL;
    if (key_len > WC_MAX_KEY)
        return WALCAST_ETOOBIG;
    if (has_value) {
        if (!value && value_len > 0)
            return WALCAST_EINVAL;
        if (value_len > WC_MAX_VALUE)
            return WALCAST_ETOOBIG;
    }
    return 0;
}

//  Parse "HOST:PORT" (HOST may be a bracketed IPv6 address) into the
//  node's endpoint. Port must be 1..65535.
static int
s_parse_host_port (const char *host_port, s_node_t *node)
{
    size_t len = strlen (host_port);
    if (len == 0 || len > WC_MAX_ADDR)
        return WALCAST_EINVAL;
    const char *colon = strrchr (host_port, ':');
    if (!colon || colon == host_port)
        return WALCAST_EINVAL;
    size_t host_len = (size_t) (colon - host_port);
    for (size_t i = 0; i < host_len; i++) {
        char c = host_port [i];
        if (c <= ' ' || c == '/' || c >= 0x7f)
            return WALCAST_EINVAL;
    }
    bool ipv6 = host_port [0] == '[';
    if (ipv6 && (host_len < 3 || host_port [host_len - 1] != ']'))
        return WALCAST_EINVAL;
    if (!ipv6 && memchr (host_port, ':', host_len))
        return WALCAST_EINVAL;      // bare IPv6 needs brackets

    const char *digits = colon + 1;
    size_t ndigits = strlen (digits);
    if (ndigits == 0 || ndigits > 5)
        return WALCAST_EINVAL;
    long port = 0;
    for (size_t i = 0; i < ndigits; i++) {
        if (digits [i] < '0' || digits [i] > '9')
            return WALCAST_EINVAL;
        port = port * 10 + (digits [i] - '0');
    }
    if (port < 1 || port > 65535)
        return WALCAST_EINVAL;

    node->host_port = strdup (host_port);
    node->endpoint = malloc (len + sizeof "tcp://");
    if (!node->host_port || !node->endpoint) {
        free (node->host_port);
        free (node->endpoint);
        node->host_port = node->endpoint = NULL;
        return WALCAST_ENOMEM;
    }
    snprintf (node->endpoint, len + sizeof "tcp://", "tcp://%s", host_port);
    node->ipv6 = ipv6;
    return 0;
}

//  Create the node's DEALER socket and connect it. Returns 0, or
//  WALCAST_EUNAVAILABLE / WALCAST_EINVAL (libzmq refused the endpoint).
static int
s_node_open (walcast_t *self, s_node_t *node)
{
    void *sock = zmq_socket (self->ctx, ZMQ_DEALER);
    if (!sock)
        return WALCAST_EUNAVAILABLE;
    int linger = 0;
    int hwm = WC_SOCKET_HWM;
    int ivl = WC_HEARTBEAT_IVL;
    int ttl = WC_HEARTBEAT_TTL;
    int ipv6 = node->ipv6 ? 1 : 0;
    int64_t maxmsg = WC_MAX_MESSAGE;
    if (zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger)
    ||  zmq_setsockopt (sock, ZMQ_SNDHWM, &hwm, sizeof hwm)
    ||  zmq_setsockopt (sock, ZMQ_RCVHWM, &hwm, sizeof hwm)
    ||  zmq_setsockopt (sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl)
    ||  zmq_setsockopt (sock, ZMQ_HEARTBEAT_TIMEOUT, &ttl, sizeof ttl)
    ||  zmq_setsockopt (sock, ZMQ_HEARTBEAT_TTL, &ttl, sizeof ttl)
    ||  zmq_setsockopt (sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg)
    ||  zmq_setsockopt (sock, ZMQ_IPV6, &ipv6, sizeof ipv6)) {
        zmq_close (sock);
        return WALCAST_EUNAVAILABLE;
    }
    if (zmq_connect (sock, node->endpoint)) {
        int rc = errno == EINVAL ? WALCAST_EINVAL : WALCAST_EUNAVAILABLE;
        zmq_close (sock);
        return rc;
    }
    node->sock = sock;
    return 0;
}

//  Forget every async write in flight (its socket is gone): they are
//  unknown, which walcast_flush reports as a timeout.
static void
s_async_abandon (walcast_t *self)
{
    if (self->inflight == 0)
        return;
    memset (self->ring, 0, WC_ASYNC_RING * sizeof self->ring [0]);
    self->inflight = 0;
    if (self->async_err == 0) {
        self->async_err = WALCAST_ETIMEOUT;
        self->async_detail [0] = 0;
    }
}

//  Lazy Pirate: close the node's socket, dropping whatever it still holds
//  or receives later, and connect a fresh one. Called after a timeout.
static void
s_node_reset (walcast_t *self, size_t index)
{
    s_node_t *node = &self->nodes [index];
    if (node->sock) {
        zmq_close (node->sock);
        node->sock = NULL;
    }
    if (index == self->async_node)
        s_async_abandon (self);
    s_node_open (self, node);       // on failure sock stays NULL: next call
                                    // retries and reports EUNAVAILABLE
}

//  Release the held reply, if any.
static void
s_rx_release (walcast_t *self)
{
    if (self->rx_held) {
        msgpack_unpacked_destroy (&self->rx_unpacked);
        zmq_msg_close (&self->rx_frame);
        self->rx_held = false;
    }
}

//  Settle the async write with this rid if it is in flight; returns true
//  if it was ours. rx holds its reply.
static bool
s_async_settle (walcast_t *self)
{
    uint64_t rid = self->rx.rid;
    if (rid == 0 || self->ring [rid % WC_ASYNC_RING] != rid)
        return false;
    self->ring [rid % WC_ASYNC_RING] = 0;
    self->inflight--;

    const wc_msg_t *msg = &self->rx;
    if (msg->type == WC_MSG_WRITE_OK) {
        self->acked++;
        uint64_t epoch = msg->u.write_ok.epoch;
        uint64_t seq = msg->u.write_ok.seq;
        if (epoch > self->last.epoch
        || (epoch == self->last.epoch && seq > self->last.seq)) {
            self->last.epoch = epoch;
            self->last.seq = seq;
        }
    }
    else
    if (self->async_err == 0) {
        if (msg->type == WC_MSG_ERROR) {
            self->async_err = wc_err_from_wire (msg->u.error.code);
            s_copy_text (self->async_detail, sizeof self->async_detail,
                         &msg->u.error.detail);
        }
        else {
            self->async_err = WALCAST_EPROTO;
            self->async_detail [0] = 0;
        }
    }
    return true;
}

//  Take one frame off sock (without waiting) and dispatch it: the sync
//  reply is kept in rx (rx_held), an async reply settles its write,
//  anything else is dropped. Returns 1 when a frame was taken, 0 when
//  none was waiting, or a negative error for a socket failure.
static int
s_recv_one (walcast_t *self, void *sock)
{
    zmq_msg_init (&self->rx_frame);
    if (zmq_msg_recv (&self->rx_frame, sock, ZMQ_DONTWAIT) < 0) {
        int err = errno;
        zmq_msg_close (&self->rx_frame);
        return err == EAGAIN || err == EINTR ? 0 : WALCAST_EUNAVAILABLE;
    }
    //  A reply is one frame; drop anything with more.
    if (zmq_msg_more (&self->rx_frame)) {
        while (zmq_msg_more (&self->rx_frame)) {
            zmq_msg_close (&self->rx_frame);
            zmq_msg_init (&self->rx_frame);
            if (zmq_msg_recv (&self->rx_frame, sock, ZMQ_DONTWAIT) < 0)
                break;
        }
        zmq_msg_close (&self->rx_frame);
        self->saw_malformed = true;
        return 1;
    }
    msgpack_unpacked_init (&self->rx_unpacked);
    int rc = wc_msg_decode (zmq_msg_data (&self->rx_frame),
                            zmq_msg_size (&self->rx_frame),
                            &self->rx_unpacked, &self->rx);
    bool keep = false;
    if (rc != 0)
        self->saw_malformed = true;
    else
    if (self->sync_rid != 0 && self->rx.rid == self->sync_rid)
        keep = true;
    else
        s_async_settle (self);      // or a stale reply: dropped

    if (keep)
        self->rx_held = true;
    else {
        msgpack_unpacked_destroy (&self->rx_unpacked);
        zmq_msg_close (&self->rx_frame);
    }
    return 1;
}

//  Read every frame already waiting on any node's socket, without
//  blocking. Stops early when the sync reply arrives.
static int
s_drain (walcast_t *self)
{
    for (size_t i = 0; i < self->nnodes && !self->rx_held; i++) {
        void *sock = self->nodes [i].sock;
        if (!sock)
            continue;
        int rc;
        while ((rc = s_recv_one (self, sock)) == 1 && !self->rx_held)
            ;
        if (rc < 0)
            return rc;
    }
    return 0;
}

//  Wait until something arrives on any node's socket, or until deadline
//  (monotonic ms), then drain. Returns 0, WALCAST_ETIMEOUT when the
//  deadline passed with nothing read, or a socket error.
static int
s_wait (walcast_t *self, int64_t deadline)
{
    zmq_pollitem_t items [self->nnodes > 0 ? self->nnodes : 1];
    size_t nitems = 0;
    for (size_t i = 0; i < self->nnodes; i++) {
        if (self->nodes [i].sock) {
            items [nitems].socket = self->nodes [i].sock;
            items [nitems].fd = 0;
            items [nitems].events = ZMQ_POLLIN;
            items [nitems].revents = 0;
            nitems++;
        }
    }
    if (nitems == 0)
        return WALCAST_EUNAVAILABLE;
    int64_t remaining = deadline - s_now ();
    if (remaining <= 0)
        return WALCAST_ETIMEOUT;
    int rc = zmq_poll (items, (int) nitems, (long) remaining);
    if (rc < 0 && errno != EINTR)
        return WALCAST_EUNAVAILABLE;
    if (rc <= 0)
        return s_now () >= deadline ? WALCAST_ETIMEOUT : 0;
    return s_drain (self);
}

//  Send self->out to the node at index, waiting (and reading replies) while
//  its queue is full, until deadline.
static int
s_send (walcast_t *self, size_t index, int64_t deadline)
{
    s_node_t *node = &self->nodes [index];
    if (!node->sock) {
        if (s_node_open (self, node))
            return WALCAST_EUNAVAILABLE;
    }
    while (true) {
        if (zmq_send (node->sock, self->out.data, self->out.size,
                      ZMQ_DONTWAIT) >= 0)
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return WALCAST_EUNAVAILABLE;
        zmq_pollitem_t item = { node->sock, 0, ZMQ_POLLOUT, 0 };
        int64_t remaining = deadline - s_now ();
        if (remaining <= 0)
            return WALCAST_ETIMEOUT;
        if (zmq_poll (&item, 1, remaining > 10 ? 10 : (long) remaining) < 0
        &&  errno != EINTR)
            return WALCAST_EUNAVAILABLE;
        int rc = s_drain (self);
        if (rc)
            return rc;
    }
}

//  A fresh request id; never 0, never one an async write still holds.
static uint64_t
s_new_rid (walcast_t *self)
{
    uint64_t rid;
    do {
        rid = self->next_rid++;
    } while (rid == 0 || self->ring [rid % WC_ASYNC_RING] != 0);
    return rid;
}

//  Send req to the node at index and wait for its reply, bounded by the
//  timeout. On success self->rx holds a reply of type expect (released at
//  the next request). An ERROR reply becomes its code, with its detail
//  in self->detail; a reply of any other type is WALCAST_EPROTO. On a
//  timeout the node's socket is reset (Lazy Pirate).
static int
s_request (walcast_t *self, size_t index, wc_msg_t *req, int expect)
{
    s_rx_release (self);
    self->detail [0] = 0;
    if (index >= self->nnodes)
        return WALCAST_EUNAVAILABLE;

    int64_t deadline = s_now () + self->timeout_ms;
    req->rid = s_new_rid (self);
    self->out.size = 0;
    int rc = wc_msg_encode (req, &self->out);
    if (rc)
        return rc;

    self->sync_rid = req->rid;
    self->saw_malformed = false;
    rc = s_send (self, index, deadline);
    while (rc == 0 && !self->rx_held)
        rc = s_wait (self, deadline);
    self->sync_rid = 0;

    if (rc == WALCAST_ETIMEOUT || rc == WALCAST_EUNAVAILABLE) {
        s_node_reset (self, index);
        if (rc == WALCAST_ETIMEOUT && self->saw_malformed)
            rc = WALCAST_EPROTO;    // the node answered, but not readably
        return rc;
    }
    if (rc)
        return rc;
    if (self->rx.type == WC_MSG_ERROR) {
        s_copy_text (self->detail, sizeof self->detail,
                     &self->rx.u.error.detail);
        return wc_err_from_wire (self->rx.u.error.code);
    }
    if (self->rx.type != expect)
        return WALCAST_EPROTO;
    return 0;
}

walcast_t *
walcast_new (void)
{
    walcast_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->ring = calloc (WC_ASYNC_RING, sizeof self->ring [0]);
    self->ctx = zmq_ctx_new ();
    if (!self->ring || !self->ctx) {
        free (self->ring);
        if (self->ctx)
            zmq_ctx_term (self->ctx);
        free (self);
        return NULL;
    }
    msgpack_sbuffer_init (&self->out);
    self->timeout_ms = WC_DEFAULT_TIMEOUT;
    self->next_rid = 1;
    return self;
}

void
walcast_destroy (walcast_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    walcast_t *self = *self_p;
    s_rx_release (self);
    for (size_t i = 0; i < self->nnodes; i++) {
        if (self->nodes [i].sock)
            zmq_close (self->nodes [i].sock);
        free (self->nodes [i].host_port);
        free (self->nodes [i].endpoint);
    }
    free (self->nodes);
    zmq_ctx_term (self->ctx);
    msgpack_sbuffer_destroy (&self->out);
    free (self->ring);
    free (self);
    *self_p = NULL;
}

int
walcast_connect (walcast_t *self, const char *host_port)
{
    if (!self || !host_port)
        return WALCAST_EINVAL;
    if (self->nnodes == self->nodes_cap) {
        size_t cap = self->nodes_cap ? self->nodes_cap * 2 : 4;
        s_node_t *nodes = realloc (self->nodes, cap * sizeof *nodes);
        if (!nodes)
            return WALCAST_ENOMEM;
        self->nodes = nodes;
        self->nodes_cap = cap;
    }
    s_node_t node = { NULL, NULL, false, NULL };
    int rc = s_parse_host_port (host_port, &node);
    if (rc == 0)
        rc = s_node_open (self, &node);
    if (rc) {
        free (node.host_port);
        free (node.endpoint);
        return rc;
    }
    self->nodes [self->nnodes++] = node;
    return 0;
}

void
walcast_set_timeout (walcast_t *self, int timeout_ms)
{
    if (self)
        self->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
}

const char *
walcast_last_detail (walcast_t *self)
{
    return self ? self->detail : "";
}

//  PUT or DEL, synchronously, on the write node.
static int
s_write (walcast_t *self, int type, const void *key, size_t key_len,
         const void *value, size_t value_len, walcast_pos_t *pos)
{
    if (!self)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    int rc = s_check_kv (key, key_len, value, value_len, type == WC_MSG_PUT);
    if (rc)
        return rc;
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = type;
    req.u.req.key.ptr = key;
    req.u.req.key.len = (uint32_t) key_len;
    req.u.req.value.ptr = value_len ? value : (const void *) "";
    req.u.req.value.len = (uint32_t) value_len;
    rc = s_request (self, self->write_node, &req, WC_MSG_WRITE_OK);
    if (rc == 0 && pos) {
        pos->epoch = self->rx.u.write_ok.epoch;
        pos->seq = self->rx.u.write_ok.seq;
    }
    s_rx_release (self);
    return rc;
}

int
walcast_put (walcast_t *self, const void *key, size_t key_len,
             const void *value, size_t value_len, walcast_pos_t *pos)
{
    return s_write (self, WC_MSG_PUT, key, key_len, value, value_len, pos);
}

int
walcast_del (walcast_t *self, const void *key, size_t key_len,
             walcast_pos_t *pos)
{
    return s_write (self, WC_MSG_DEL, key, key_len, NULL, 0, pos);
}

int
walcast_get (walcast_t *self, const void *key, size_t key_len,
             void **value, size_t *value_len, uint64_t *applied_seq)
{
    if (!self || !value || !value_len)
        return WALCAST_EINVAL;
    *value = NULL;
    *value_len = 0;
    self->detail [0] = 0;
    int rc = s_check_kv (key, key_len, NULL, 0, false);
    if (rc)
        return rc;
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = WC_MSG_GET;
    req.u.req.key.ptr = key;
    req.u.req.key.len = (uint32_t) key_len;
    rc = s_request (self, 0, &req, WC_MSG_VALUE);
    if (rc == 0) {
        const wc_bytes_t *v = &self->rx.u.value.value;
        if (applied_seq)
            *applied_seq = self->rx.u.value.seq;
        if (!self->rx.u.value.found)
            rc = WALCAST_ENOTFOUND;
        else
        if (v->len > WC_MAX_VALUE)
            rc = WALCAST_EPROTO;
        else
        if (v->len > 0) {
            *value = malloc (v->len);
            if (*value) {
                memcpy (*value, v->ptr, v->len);
                *value_len = v->len;
            }
            else
                rc = WALCAST_ENOMEM;
        }
    }
    s_rx_release (self);
    return rc;
}

int
walcast_status (walcast_t *self, walcast_status_t *status)
{
    if (!self || !status)
        return WALCAST_EINVAL;
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = WC_MSG_STATUS;
    int rc = s_request (self, 0, &req, WC_MSG_STATUS_REPLY);
    if (rc == 0) {
        memset (status, 0, sizeof *status);
        s_copy_text (status->id, sizeof status->id, &self->rx.u.status.id);
        s_copy_text (status->region, sizeof status->region,
                     &self->rx.u.status.region);
        s_copy_text (status->primary, sizeof status->primary,
                     &self->rx.u.status.primary);
        const char *role = "unknown";
        if (self->rx.u.status.role == WC_ROLE_PRIMARY)
            role = "primary";
        else
        if (self->rx.u.status.role == WC_ROLE_REPLICA)
            role = "replica";
        snprintf (status->role, sizeof status->role, "%s", role);
        status->epoch = self->rx.u.status.epoch;
        status->applied_seq = self->rx.u.status.applied_seq;
        status->primary_seq = self->rx.u.status.primary_seq;
        status->lag = status->primary_seq > status->applied_seq
                    ? status->primary_seq - status->applied_seq : 0;
        status->lag_ms = self->rx.u.status.lag_ms;
    }
    s_rx_release (self);
    return rc;
}

int
walcast_digest (walcast_t *self, uint64_t *seq, uint64_t *hash)
{
    if (!self || !seq || !hash)
        return WALCAST_EINVAL;
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = WC_MSG_DIGEST;
    int rc = s_request (self, 0, &req, WC_MSG_DIGEST_REPLY);
    if (rc == 0) {
        *seq = self->rx.u.digest.seq;
        *hash = self->rx.u.digest.hash;
    }
    s_rx_release (self);
    return rc;
}

int
walcast_put_async (walcast_t *self, const void *key, size_t key_len,
                   const void *value, size_t value_len)
{
    if (!self)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    int rc = s_check_kv (key, key_len, value, value_len, true);
    if (rc)
        return rc;
    if (self->write_node >= self->nnodes)
        return WALCAST_EUNAVAILABLE;
    s_rx_release (self);

    //  Settle what has already come back, then wait while the window is
    //  full; no reply within the timeout loses the whole window.
    int64_t deadline = s_now () + self->timeout_ms;
    rc = s_drain (self);
    while (rc == 0 && self->inflight >= WC_ASYNC_WINDOW)
        rc = s_wait (self, deadline);
    if (rc) {
        s_node_reset (self, self->async_node);
        return rc;
    }

    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = WC_MSG_PUT;
    req.rid = s_new_rid (self);
    req.u.req.key.ptr = key;
    req.u.req.key.len = (uint32_t) key_len;
    req.u.req.value.ptr = value_len ? value : (const void *) "";
    req.u.req.value.len = (uint32_t) value_len;
    self->out.size = 0;
    rc = wc_msg_encode (&req, &self->out);
    if (rc)
        return rc;
    self->async_node = self->write_node;
    rc = s_send (self, self->write_node, deadline);
    if (rc) {
        s_node_reset (self, self->write_node);
        return rc;
    }
    self->ring [req.rid % WC_ASYNC_RING] = req.rid;
    self->inflight++;
    return 0;
}

int
walcast_flush (walcast_t *self, walcast_pos_t *last, uint64_t *acked)
{
    if (!self)
        return WALCAST_EINVAL;
    s_rx_release (self);
    int64_t deadline = s_now () + self->timeout_ms;
    int rc = 0;
    while (rc == 0 && self->inflight > 0)
        rc = s_wait (self, deadline);
    if (rc)
        s_node_reset (self, self->async_node);     // abandons the rest

    if (last)
        *last = self->last;
    if (acked)
        *acked = self->acked;
    rc = self->async_err;
    memcpy (self->detail, self->async_detail, sizeof self->detail);
    if (rc == 0)
        self->detail [0] = 0;
    self->acked = 0;
    self->last.epoch = self->last.seq = 0;
    self->async_err = 0;
    self->async_detail [0] = 0;
    return rc;
}
