/*  walcast.c - libwalcast, the client side of include/walcast.h.

    A handle talks to each node it knows through one ZeroMQ DEALER socket
    connected to the node's service ROUTER (base port P); the table of
    nodes, with what the handle knows of each (identity, RTT, liveness),
    is client/topology.c. Every request is one frame, a msgpack message
    from the codec, carrying a request id (rid) that the node echoes in
    its reply. The ideas that make it work:

    - Replies are matched by rid, never by order. The handle hands out
      rids from one counter; a reply whose rid is the synchronous request
      being waited for ends that wait, a PONG feeds the node's RTT and
      liveness, a reply whose rid is an async write in flight settles
      that write, and anything else (a reply that arrived after its
      request timed out) is dropped. So pipelined writes, a sync call
      made while async writes are in flight, background PINGs and late
      replies all share one socket per node safely.

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

    - Background work rides on calls. There is no thread: every call
      starts with a "tick" (at most every 100 ms) that applies the
      broker's topology pushes, PINGs every node whose last PING is 1 s
      old, and points writes at the primary the table names; and every
      wait for a reply also collects PONGs. A handle that is used keeps
      its view of the cluster fresh; an idle one costs nothing.

    - Reads are routed, writes are not. A read asks client/select.c for
      its candidates (read preference, consistency, RTT, region) and
      tries them in order, each attempt bounded, carrying the session
      token (client/session.c) as min_seq; ESTALE (or a VALUE older than
      the min_seq sent) or silence moves it to the next candidate. Under
      session consistency the primary ends the list when the preference
      left it out, and is tried once any node said ESTALE: it is the way
      out for replicas that are behind, not a way around the preference
      when they are gone. A strong or primary read is served by a node
      known to be the primary or by none: when the table names no
      primary, the handle asks the nodes it knows for their STATUS (a
      replica names its primary's address) before giving up. Writes go
      to one node, the primary as far as the handle knows.

    - One deadline per call. Every step of a call (a retry elsewhere, a
      topology refresh, a round of PINGs, the session wait a node is
      allowed) takes its time from the same deadline, the call's start
      plus the handle's timeout, so no call blocks much past it. A write
      that timed out is not sent again: the node may have applied it,
      and a second copy elsewhere would apply it twice. Its outcome is
      unknown (WALCAST_ETIMEOUT).

    Two modes keep issue 2's contract. A handle given one node with
    walcast_connect and no broker talks to that node only: writes go
    there and ENOTPRIMARY is returned as it is, with the primary's
    HOST:PORT in walcast_last_detail. A handle with a broker, or given
    several nodes, follows: writes move to the primary the topology or
    the PONGs name, and an ENOTPRIMARY that names a primary is retried
    there once, within the same deadline (ENOTPRIMARY means the write
    was not applied, so the retry cannot apply it twice).

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
#include "clock.h"
#include "codec.h"
#include "errors.h"
#include "select.h"
#include "session.h"
#include "topology.h"


/*  Writes in flight per handle for walcast_put_async, and the size of the
    ring that tracks them (twice the window, see above). */
#define WC_ASYNC_WINDOW     4096
#define WC_ASYNC_RING       (2 * WC_ASYNC_WINDOW)

#define WC_DEFAULT_TIMEOUT  5000
#define WC_DEFAULT_WINDOW   15          /* "nearest" latency window, ms */
#define WC_DEFAULT_WAIT     200         /* session wait, ms */

#define WC_TICK_US          100000      /* background work at most this often */
#define WC_CONNECT_PING_MS  300         /* first RTT samples at connect */
#define WC_ATTEMPT_MS       1000        /* one read attempt, on top of its wait */
#define WC_BROKER_TRY_MS    1000        /* one TOPOLOGY_GET attempt */
#define WC_REFRESH_MS       2000        /* bound on a topology refresh */
#define WC_BROKER_FRESH_US  3000000     /* a TOPOLOGY older than this is stale */
#define WC_TOPO_HWM         16          /* topology pushes queued while idle */
#define WC_LEARN_ASKS       8           /* STATUS requests to find a primary */
#define WC_WATCH_LOOK_MS    100         /* a watch checks its node this often */
#define WC_WATCH_SILENT_MS  3000        /* a stream quiet this long is gone */
#define WC_SAMPLE_SLACK_US  2000        /* a PONG read this soon after the
                                           sockets were seen empty is timely */

/*  Room for an error's detail (a HOST:PORT, or text), NUL included. */
#define WC_DETAIL_SIZE      (WC_MAX_TEXT + 1)

struct walcast {
    void            *ctx;           /* zmq context, one per handle */
    wc_topology_t   *topo;          /* the nodes, their sockets and RTTs */
    size_t           first_node;    /* first node added (status, digest) */
    size_t           write_node;    /* node writes go to */
    size_t           nconnected;    /* walcast_connect calls that worked */
    int              timeout_ms;    /* bound on every call */
    uint64_t         next_rid;      /* next request id to hand out, >= 1 */
    msgpack_sbuffer  out;           /* encode buffer for requests, reused */
    msgpack_sbuffer  ping_out;      /* encode buffer for PINGs */
    char             detail [WC_DETAIL_SIZE];   /* last error's detail */

    /* the reply being looked at: frame, decoded storage, message */
    zmq_msg_t        rx_frame;
    msgpack_unpacked rx_unpacked;
    wc_msg_t         rx;
    bool             rx_held;       /* rx_* hold the sync reply */
    uint64_t         sync_rid;      /* rid of the sync request, 0 = none */
    bool             saw_malformed; /* a frame we could not decode arrived */
    int64_t          quiet_us;      /* when every node socket was last seen
                                       empty (or watched by zmq_poll) */

    /* async writes */
    uint64_t        *ring;          /* WC_ASYNC_RING slots: rid or 0 */
    size_t           inflight;      /* writes sent, not yet settled */
    size_t           async_node;    /* node the writes in flight went to */
    uint64_t         acked;         /* acknowledged since the last flush */
    walcast_pos_t    last;          /* highest position acknowledged */
    int              async_err;     /* first error since the last flush */
    char             async_detail [WC_DETAIL_SIZE];

    /* routing */
    wc_read_pref_t   read;          /* read preference */
    int              consistency;   /* wc_consistency_t */
    char             region [WC_MAX_ID + 1];    /* ours, "" none */
    int              window_ms;     /* "nearest" latency window */
    int              session_wait_ms;
    int              max_staleness_ms;
    wc_session_t     session;       /* the token */
    int64_t          next_tick_us;  /* when the next tick may run */
    wc_select_node_t *sel;          /* scratch: the table for select.c */
    size_t          *cands;         /* scratch: candidates */
    bool             cands_appended;    /* the last is session's primary */
    size_t           scratch_cap;

    /* broker */
    bool             has_broker;
    char             broker_endpoint [WC_MAX_ADDR + 8];
    char             broker_pub [WC_MAX_ADDR + 8];
    bool             broker_ipv6;
    void            *broker_sock;   /* DEALER to B, NULL until needed */
    void            *topo_sub;      /* SUB to B+1, topic "topology" */
    uint64_t         topo_version;  /* version of the last TOPOLOGY applied */
    int64_t          topo_at_us;    /* when it was applied, 0 never */

    /* watch */
    walcast_watch_switch_fn *watch_notify;   /* told when a watch moves, or NULL */
    void            *watch_notify_arg;
};

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

static wc_peer_t *
s_node (walcast_t *self, size_t index)
{
    return wc_topology_peer (self->topo, index);
}

//  Does the handle follow the primary (see the top of the file)?
static bool
s_follow_mode (walcast_t *self)
{
    return self->has_broker || self->nconnected > 1;
}

//  Is the broker's view recent enough to trust its up/down?
static bool
s_broker_fresh (walcast_t *self)
{
    return self->has_broker && self->topo_at_us != 0
        && wc_clock_us () - self->topo_at_us < WC_BROKER_FRESH_US;
}

/* --- replies ----------------------------------------------------------- */

static void s_ping (walcast_t *self, size_t index, int64_t now_us);

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
    wc_topology_reset (self->topo, index);
    if (index == self->async_node)
        s_async_abandon (self);
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
        wc_session_note (&self->session, epoch, seq);
    }
    else
    if (self->async_err == 0) {
        if (msg->type == WC_MSG_ERROR) {
            self->async_err = wc_err_from_wire (msg->u.error.code);
            wc_bytes_printable (self->async_detail, sizeof self->async_detail,
                         &msg->u.error.detail);
        }
        else {
            self->async_err = WALCAST_EPROTO;
            self->async_detail [0] = 0;
        }
    }
    return true;
}

//  Take one frame off node index's socket (without waiting) and dispatch
//  it: the sync reply is kept in rx (rx_held), a PONG updates the node,
//  an async reply settles its write, anything else is dropped. Returns 1
//  when a frame was taken, 0 when none was waiting, or a negative error
//  for a socket failure.
static int
s_recv_one (walcast_t *self, size_t index)
{
    wc_peer_t *node = s_node (self, index);
    zmq_msg_init (&self->rx_frame);
    if (zmq_msg_recv (&self->rx_frame, node->sock, ZMQ_DONTWAIT) < 0) {
        int err = errno;
        zmq_msg_close (&self->rx_frame);
        return err == EAGAIN || err == EINTR ? 0 : WALCAST_EUNAVAILABLE;
    }
    //  A reply is one frame; drop anything with more.
    if (zmq_msg_more (&self->rx_frame)) {
        while (zmq_msg_more (&self->rx_frame)) {
            zmq_msg_close (&self->rx_frame);
            zmq_msg_init (&self->rx_frame);
            if (zmq_msg_recv (&self->rx_frame, node->sock, ZMQ_DONTWAIT) < 0)
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
    if (self->rx.type == WC_MSG_PONG) {
        //  Timely when the sockets were seen empty (or watched) just
        //  before: then it arrived about now, and now - sent is the RTT.
        int64_t now = wc_clock_us ();
        bool timely = now - self->quiet_us <= WC_SAMPLE_SLACK_US;
        int64_t asked = node->ping_rid != 0 && self->rx.rid == node->ping_rid
                      ? node->ping_sent_us : 0;
        bool again = wc_topology_pong (node, &self->rx, now, timely);
        //  The primary's seq vouches for (or disproves) reads that went
        //  past what we knew of it (client/session.h)
        if (node->role == WC_ROLE_PRIMARY)
            wc_session_primary (&self->session, node->applied_seq, asked);
        if (again)
            s_ping (self, index, now);
    }
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
    size_t size = wc_topology_size (self->topo);
    for (size_t i = 0; i < size && !self->rx_held; i++) {
        if (!s_node (self, i)->sock)
            continue;
        int rc;
        while ((rc = s_recv_one (self, i)) == 1 && !self->rx_held)
            ;
        if (rc < 0)
            return rc;
    }
    if (!self->rx_held)
        self->quiet_us = wc_clock_us ();   // every socket read to the end
    return 0;
}

//  Wait until something arrives on any node's socket, or until deadline
//  (monotonic ms), then drain. Returns 0, WALCAST_ETIMEOUT when the
//  deadline passed with nothing read, or a socket error.
static int
s_wait (walcast_t *self, int64_t deadline)
{
    size_t size = wc_topology_size (self->topo);
    zmq_pollitem_t items [size > 0 ? size : 1];
    size_t nitems = 0;
    for (size_t i = 0; i < size; i++) {
        void *sock = s_node (self, i)->sock;
        if (sock) {
            items [nitems].socket = sock;
            items [nitems].fd = 0;
            items [nitems].events = ZMQ_POLLIN;
            items [nitems].revents = 0;
            nitems++;
        }
    }
    if (nitems == 0)
        return WALCAST_EUNAVAILABLE;
    //  Start from empty sockets, so that whatever wakes the poll arrived
    //  while we watched (its RTT sample is honest).
    if (wc_clock_us () - self->quiet_us > WC_SAMPLE_SLACK_US) {
        int rc = s_drain (self);
        if (rc || self->rx_held)
            return rc;
    }
    int64_t remaining = deadline - wc_clock_ms ();
    if (remaining <= 0)
        return WALCAST_ETIMEOUT;
    int rc = zmq_poll (items, (int) nitems, (long) remaining);
    if (rc < 0 && errno != EINTR)
        return WALCAST_EUNAVAILABLE;
    self->quiet_us = wc_clock_us ();   // watched until now: arrivals are fresh
    if (rc <= 0)
        return wc_clock_ms () >= deadline ? WALCAST_ETIMEOUT : 0;
    return s_drain (self);
}

//  Send self->out to the node at index, waiting (and reading replies) while
//  its queue is full, until deadline.
static int
s_send (walcast_t *self, size_t index, int64_t deadline)
{
    wc_peer_t *node = s_node (self, index);
    if (!node->sock) {
        wc_topology_reset (self->topo, index);
        if (!node->sock)
            return WALCAST_EUNAVAILABLE;
    }
    while (true) {
        if (zmq_send (node->sock, self->out.data, self->out.size,
                      ZMQ_DONTWAIT) >= 0)
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return WALCAST_EUNAVAILABLE;
        zmq_pollitem_t item = { node->sock, 0, ZMQ_POLLOUT, 0 };
        int64_t remaining = deadline - wc_clock_ms ();
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

//  Send req to the node at index and wait for its reply, until deadline
//  (monotonic ms). On success self->rx holds a reply of type expect
//  (released at the next request). An ERROR reply becomes its code, with
//  its detail in self->detail; a reply of any other type is
//  WALCAST_EPROTO. On a timeout the node's socket is reset (Lazy Pirate)
//  and the node counts as unreachable until it answers a PING.
static int
s_request (walcast_t *self, size_t index, wc_msg_t *req, int expect,
           int64_t deadline)
{
    s_rx_release (self);
    self->detail [0] = 0;
    if (index >= wc_topology_size (self->topo))
        return WALCAST_EUNAVAILABLE;

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
        s_node (self, index)->reachable = false;
        if (rc == WALCAST_ETIMEOUT && self->saw_malformed)
            rc = WALCAST_EPROTO;    // the node answered, but not readably
        return rc;
    }
    if (rc)
        return rc;
    s_node (self, index)->reachable = true;
    if (self->rx.type == WC_MSG_ERROR) {
        wc_bytes_printable (self->detail, sizeof self->detail,
                     &self->rx.u.error.detail);
        return wc_err_from_wire (self->rx.u.error.code);
    }
    if (self->rx.type != expect)
        return WALCAST_EPROTO;
    return 0;
}

/* --- the table: selection, PINGs, the broker --------------------------- */

//  Make sure the scratch arrays hold one entry per node.
static int
s_scratch (walcast_t *self)
{
    size_t size = wc_topology_size (self->topo);
    if (size <= self->scratch_cap)
        return 0;
    size_t cap = size * 2;
    wc_select_node_t *sel = realloc (self->sel, cap * sizeof *sel);
    if (!sel)
        return WALCAST_ENOMEM;
    self->sel = sel;
    size_t *cands = realloc (self->cands, cap * sizeof *cands);
    if (!cands)
        return WALCAST_ENOMEM;
    self->cands = cands;
    self->scratch_cap = cap;
    return 0;
}

//  The primary as the table knows it, or WC_SELECT_NONE.
static size_t
s_primary (walcast_t *self)
{
    if (s_scratch (self))
        return WC_SELECT_NONE;
    wc_topology_to_select (self->topo, self->sel, s_broker_fresh (self));
    return wc_select_primary (self->sel, wc_topology_size (self->topo));
}

//  In follow mode, point writes at the primary the table names.
static void
s_follow_primary (walcast_t *self)
{
    if (!s_follow_mode (self))
        return;
    size_t primary = s_primary (self);
    if (primary != WC_SELECT_NONE)
        self->write_node = primary;
    else
    if (self->write_node == WC_SELECT_NONE && wc_topology_size (self->topo) > 0)
        self->write_node = 0;
}

//  Send a PING to node index now (non-blocking; a full queue skips it).
static void
s_ping (walcast_t *self, size_t index, int64_t now_us)
{
    wc_peer_t *node = s_node (self, index);
    node->ping_sent_us = now_us;
    node->ping_rid = 0;
    if (!node->sock)
        return;
    wc_msg_t ping;
    memset (&ping, 0, sizeof ping);
    ping.type = WC_MSG_PING;
    ping.rid = s_new_rid (self);
    self->ping_out.size = 0;
    if (wc_msg_encode (&ping, &self->ping_out))
        return;
    if (zmq_send (node->sock, self->ping_out.data, self->ping_out.size,
                  ZMQ_DONTWAIT) >= 0)
        node->ping_rid = ping.rid;
}

//  Slot index now holds another node, or the same node on a new socket:
//  async writes in flight there are lost, and writes must not follow
//  the old index to whoever took it.
static void
s_slot_changed (walcast_t *self, size_t index)
{
    if (index == self->async_node)
        s_async_abandon (self);
    if (index == self->write_node && index != self->first_node) {
        self->write_node = self->first_node;
        s_follow_primary (self);
    }
}

//  Add (or find) the node at addr; see wc_topology_add.
static int
s_add_node (walcast_t *self, const char *addr, bool pinned, size_t *index)
{
    bool replaced = false;
    int rc = wc_topology_add (self->topo, addr, pinned, index, &replaced);
    if (rc == 0 && replaced)
        s_slot_changed (self, *index);
    return rc;
}

//  Apply a decoded TOPOLOGY (a reply, direct, or a push). A push older
//  than what we hold is ignored, unless what we hold is stale (the
//  broker restarted and counts from 1 again). Every item is checked
//  before any is applied: a malformed message changes nothing. Nodes
//  past what the table holds (WC_TOPOLOGY_MAX, when none can be
//  evicted) are left out.
static int
s_apply_topology (walcast_t *self, const wc_msg_t *msg, bool direct)
{
    int64_t now = wc_clock_us ();
    if (!direct && self->topo_at_us != 0
    &&  msg->u.topology.version < self->topo_version
    &&  now - self->topo_at_us < WC_BROKER_FRESH_US)
        return 0;
    if (msg->u.topology.count > WC_MAX_NODES)
        return WALCAST_EPROTO;
    wc_node_info_t info;
    for (uint32_t i = 0; i < msg->u.topology.count; i++)
        if (wc_node_info_from_object (&msg->u.topology.items [i], &info))
            return WALCAST_EPROTO;

    wc_topology_begin (self->topo);
    int rc = 0;
    for (uint32_t i = 0; i < msg->u.topology.count; i++) {
        wc_node_info_from_object (&msg->u.topology.items [i], &info);
        size_t index;
        bool moved;
        int arc = wc_topology_apply (self->topo, &info, &index, &moved);
        if (arc == 0 && moved)
            s_slot_changed (self, index);
        if (arc == 0 && info.role == WC_ROLE_PRIMARY && info.up)
            wc_session_primary (&self->session, info.applied_seq, 0);
        if (arc && arc != WALCAST_ETOOBIG && rc == 0)
            rc = arc;           // a full table skips the node, no more
    }
    wc_topology_end (self->topo);
    self->topo_version = msg->u.topology.version;
    self->topo_at_us = now;
    return rc;
}

//  Receive one message from a SUB socket without waiting. Returns 0
//  when none was waiting, 1 when a [topic][payload] message is now in
//  topic and payload (both initialised by the caller), 2 when a message
//  of another shape was read and dropped.
static int
s_recv_pair (void *sock, zmq_msg_t *topic, zmq_msg_t *payload)
{
    int nframes = 0;
    bool more = true;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&frame);
            if (nframes == 0)
                return 0;
            break;              // cannot happen: parts arrive together
        }
        more = zmq_msg_more (&frame);
        if (nframes == 0)
            zmq_msg_move (topic, &frame);
        else
        if (nframes == 1)
            zmq_msg_move (payload, &frame);
        zmq_msg_close (&frame);
        nframes++;
    }
    return nframes == 2 ? 1 : 2;
}

//  Apply the newest topology push waiting on the SUB, without blocking.
//  A push is [topic "topology"][TOPOLOGY, rid 0]; anything else is
//  dropped. Every push is the whole directory, so the older ones queued
//  while the handle was idle (at most WC_TOPO_HWM) are read and dropped
//  undecoded.
static void
s_topology_poll (walcast_t *self)
{
    if (!self->topo_sub)
        return;
    zmq_msg_t topic, payload, newest;
    zmq_msg_init (&topic);
    zmq_msg_init (&payload);
    zmq_msg_init (&newest);
    bool have = false;
    int rc;
    while ((rc = s_recv_pair (self->topo_sub, &topic, &payload)) != 0) {
        if (rc != 1 || zmq_msg_size (&topic) != 8
        ||  memcmp (zmq_msg_data (&topic), "topology", 8) != 0)
            continue;
        zmq_msg_move (&newest, &payload);
        have = true;
    }
    if (have) {
        msgpack_unpacked storage;
        msgpack_unpacked_init (&storage);
        wc_msg_t msg;
        if (wc_msg_decode (zmq_msg_data (&newest), zmq_msg_size (&newest),
                           &storage, &msg) == 0
        &&  msg.type == WC_MSG_TOPOLOGY)
            s_apply_topology (self, &msg, false);
        msgpack_unpacked_destroy (&storage);
    }
    zmq_msg_close (&topic);
    zmq_msg_close (&payload);
    zmq_msg_close (&newest);
}

//  Ask the broker for the topology and apply it, Lazy Pirate style:
//  attempts of up to WC_BROKER_TRY_MS, each on a fresh socket, until
//  deadline (ms). 0, an error the broker sent, or WALCAST_ETIMEOUT.
static int
s_broker_refresh (walcast_t *self, int64_t deadline)
{
    if (!self->has_broker)
        return WALCAST_EUNAVAILABLE;
    int rc = WALCAST_ETIMEOUT;
    while (wc_clock_ms () < deadline) {
        if (!self->broker_sock) {
            int err = 0;
            self->broker_sock = wc_topology_socket (self->ctx, ZMQ_DEALER,
                                                    self->broker_endpoint,
                                                    self->broker_ipv6, 0, &err);
            if (!self->broker_sock)
                return err;
        }
        wc_msg_t req;
        memset (&req, 0, sizeof req);
        req.type = WC_MSG_TOPOLOGY_GET;
        req.rid = s_new_rid (self);
        self->out.size = 0;
        rc = wc_msg_encode (&req, &self->out);
        if (rc)
            return rc;
        rc = WALCAST_ETIMEOUT;
        if (zmq_send (self->broker_sock, self->out.data, self->out.size,
                      ZMQ_DONTWAIT) < 0)
            rc = WALCAST_EUNAVAILABLE;
        int64_t attempt = wc_clock_ms () + WC_BROKER_TRY_MS;
        if (attempt > deadline)
            attempt = deadline;
        while (rc == WALCAST_ETIMEOUT) {
            int64_t remaining = attempt - wc_clock_ms ();
            if (remaining <= 0)
                break;
            zmq_pollitem_t item = { self->broker_sock, 0, ZMQ_POLLIN, 0 };
            if (zmq_poll (&item, 1, (long) remaining) <= 0)
                continue;
            zmq_msg_t frame;
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, self->broker_sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&frame);
                continue;
            }
            bool more = zmq_msg_more (&frame);
            msgpack_unpacked storage;
            msgpack_unpacked_init (&storage);
            wc_msg_t msg;
            if (!more
            &&  wc_msg_decode (zmq_msg_data (&frame), zmq_msg_size (&frame),
                               &storage, &msg) == 0
            &&  msg.rid == req.rid) {
                if (msg.type == WC_MSG_TOPOLOGY)
                    rc = s_apply_topology (self, &msg, true);
                else
                if (msg.type == WC_MSG_ERROR)
                    rc = wc_err_from_wire (msg.u.error.code);
                else
                    rc = WALCAST_EPROTO;
            }
            msgpack_unpacked_destroy (&storage);
            zmq_msg_close (&frame);
            while (more) {              // drop the rest of a multipart
                zmq_msg_init (&frame);
                if (zmq_msg_recv (&frame, self->broker_sock, ZMQ_DONTWAIT) < 0)
                    more = false;
                else
                    more = zmq_msg_more (&frame);
                zmq_msg_close (&frame);
            }
        }
        if (rc != WALCAST_ETIMEOUT && rc != WALCAST_EUNAVAILABLE)
            break;
        zmq_close (self->broker_sock);  // Lazy Pirate: start clean
        self->broker_sock = NULL;
    }
    if (rc == 0)
        s_follow_primary (self);
    return rc;
}

//  The background work every call starts with (at most every
//  WC_TICK_US): topology pushes, PINGs that are due, where writes go.
static void
s_tick (walcast_t *self)
{
    int64_t now = wc_clock_us ();
    if (now < self->next_tick_us)
        return;
    self->next_tick_us = now + WC_TICK_US;
    //  What came in since the last look first: PONGs before deciding
    //  who is silent. (Not timely, unless the last look just ended.)
    if (!self->rx_held)
        s_drain (self);
    s_topology_poll (self);
    size_t size = wc_topology_size (self->topo);
    for (size_t i = 0; i < size; i++)
        if (wc_topology_ping_due (s_node (self, i), now))
            s_ping (self, i, now);
    s_follow_primary (self);
}

//  What every synchronous call starts with: read what came in since the
//  last call (late replies, PONGs), then the tick.
static void
s_begin (walcast_t *self)
{
    s_rx_release (self);
    s_drain (self);
    s_tick (self);
}

//  One round of PINGs: ping node `only` (or, with WC_SELECT_NONE, every
//  node not known to be down) unless a PING is already in flight, and
//  wait until they have all answered or wait_ms passed. With
//  mark_silent, nodes still silent after a wait of WC_PING_DEAD_US
//  count as unreachable.
static void
s_ping_round (walcast_t *self, size_t only, int wait_ms, bool mark_silent)
{
    int64_t now = wc_clock_us ();
    int64_t deadline = wc_clock_ms () + wait_ms;
    size_t size = wc_topology_size (self->topo);
    bool fresh = s_broker_fresh (self);
    for (size_t i = 0; i < size; i++) {
        wc_peer_t *node = s_node (self, i);
        if (only != WC_SELECT_NONE && i != only)
            continue;
        if (node->ping_rid == 0 || now - node->ping_sent_us >= WC_PING_DEAD_US)
            s_ping (self, i, now);
    }
    while (true) {
        bool waiting = false;
        for (size_t i = 0; i < size; i++) {
            wc_peer_t *node = s_node (self, i);
            if (only != WC_SELECT_NONE && i != only)
                continue;
            if (fresh && !node->up)
                continue;           // the broker says down: do not wait for it
            if (node->ping_rid != 0)
                waiting = true;
        }
        if (!waiting)
            break;
        if (s_wait (self, deadline))
            break;
    }
    if (mark_silent && (int64_t) wait_ms * 1000 >= WC_PING_DEAD_US)
        for (size_t i = 0; i < size; i++)
            if (s_node (self, i)->ping_rid != 0
            &&  (only == WC_SELECT_NONE || i == only))
                s_node (self, i)->reachable = false;
}

//  The node status and digest ask: the primary with a broker, else the
//  first node added.
static size_t
s_home_node (walcast_t *self)
{
    if (self->has_broker) {
        size_t primary = s_primary (self);
        if (primary != WC_SELECT_NONE)
            return primary;
    }
    if (self->first_node != WC_SELECT_NONE)
        return self->first_node;
    return wc_topology_size (self->topo) > 0 ? 0 : WC_SELECT_NONE;
}

//  The candidates of a read into self->cands; returns how many. When no
//  node fits the preference because none is reachable (or up), the
//  rules are applied again as if all were: trying a node that may
//  answer beats failing without trying. (The primary that session
//  consistency appends does not count as fitting: it is tried only
//  after an ESTALE.) A read that wants the primary gets it or nothing.
/*  The handle's read settings as a selection query. */
static wc_select_query_t
s_query (walcast_t *self)
{
    wc_select_query_t query;
    query.pref = self->read;
    query.consistency = self->consistency;
    query.region = self->region;
    query.window_ms = self->window_ms;
    return query;
}

/*  Fill self->cands from the node table as it is (unreachable and down
    nodes left out); how many. Call s_scratch first. */
static size_t
s_select (walcast_t *self)
{
    size_t size = wc_topology_size (self->topo);
    wc_topology_to_select (self->topo, self->sel, s_broker_fresh (self));
    wc_select_query_t query = s_query (self);
    return wc_select_candidates (self->sel, size, &query, self->cands, size,
                                 &self->cands_appended);
}

static size_t
s_candidates (walcast_t *self)
{
    if (s_scratch (self))
        return 0;
    size_t size = wc_topology_size (self->topo);
    wc_select_query_t query = s_query (self);
    size_t n = s_select (self);
    if (n == 0 || (n == 1 && self->cands_appended)) {
        for (size_t i = 0; i < size; i++) {
            self->sel [i].up = true;
            self->sel [i].reachable = true;
        }
        n = wc_select_candidates (self->sel, size, &query, self->cands, size,
                                  &self->cands_appended);
    }
    return n;
}

//  Does a read with the handle's settings want the primary only?
static bool
s_wants_primary (walcast_t *self)
{
    return self->consistency == WC_CONSISTENCY_STRONG
        || self->read.mode == WC_READ_PRIMARY;
}

//  Say in the detail why a read (or watch) has no node to go to.
static void
s_no_candidate_detail (walcast_t *self)
{
    if (s_wants_primary (self))
        snprintf (self->detail, sizeof self->detail, "no primary known");
    else
    if (self->read.mode == WC_READ_REPLICA)
        snprintf (self->detail, sizeof self->detail, "no replica is up");
    else
    if (self->read.mode == WC_READ_REGION)
        snprintf (self->detail, sizeof self->detail,
                  "no node of region %s is up", self->read.region);
    else
        snprintf (self->detail, sizeof self->detail, "no node known");
}

//  The next node to ask for its STATUS while looking for the primary:
//  one not asked yet, those that answer and are up first.
static size_t
s_unasked (walcast_t *self, const bool *asked)
{
    size_t size = wc_topology_size (self->topo);
    bool fresh = s_broker_fresh (self);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < size; i++) {
            const wc_peer_t *node = s_node (self, i);
            if (asked [i])
                continue;
            if (pass == 0 && (!node->reachable || (fresh && !node->up)))
                continue;
            return i;
        }
    return WC_SELECT_NONE;
}

//  The primary, when the table names none: ask the nodes we know for
//  their STATUS. A node that says it is the primary is taken at its
//  word; a replica names the address of the node it follows, which is
//  added to the table and asked next (a relay names another replica).
//  At most WC_LEARN_ASKS requests, each within WC_ATTEMPT_MS and the
//  call's deadline. Returns the primary's index or WC_SELECT_NONE.
static size_t
s_learn_primary (walcast_t *self, int64_t deadline)
{
    size_t primary = s_primary (self);
    if (primary != WC_SELECT_NONE)
        return primary;
    bool asked [WC_TOPOLOGY_MAX];
    memset (asked, 0, sizeof asked);
    size_t next = WC_SELECT_NONE;
    for (int n = 0; n < WC_LEARN_ASKS; n++) {
        int64_t now = wc_clock_ms ();
        if (now >= deadline)
            break;
        size_t index = next;
        next = WC_SELECT_NONE;
        if (index == WC_SELECT_NONE || asked [index])
            index = s_unasked (self, asked);
        if (index == WC_SELECT_NONE)
            break;
        asked [index] = true;

        wc_msg_t req;
        memset (&req, 0, sizeof req);
        req.type = WC_MSG_STATUS;
        int64_t end = now + WC_ATTEMPT_MS < deadline ? now + WC_ATTEMPT_MS : deadline;
        int64_t asked_us = wc_clock_us ();
        if (s_request (self, index, &req, WC_MSG_STATUS_REPLY, end)) {
            s_rx_release (self);
            continue;
        }
        wc_peer_t *node = s_node (self, index);
        wc_topology_status (node, &self->rx);
        s_rx_release (self);
        if (node->role == WC_ROLE_PRIMARY) {
            wc_session_primary (&self->session, node->applied_seq, asked_us);
            s_follow_primary (self);
            return index;
        }
        char addr [WC_MAX_ADDR + 1];
        snprintf (addr, sizeof addr, "%s", node->primary);
        size_t found;
        if (addr [0] && s_add_node (self, addr, false, &found) == 0)
            next = found;
    }
    return WC_SELECT_NONE;
}

/* --- the handle -------------------------------------------------------- */

walcast_t *
walcast_new (void)
{
    walcast_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->ring = calloc (WC_ASYNC_RING, sizeof self->ring [0]);
    self->ctx = zmq_ctx_new ();
    self->topo = self->ctx ? wc_topology_new (self->ctx) : NULL;
    if (!self->ring || !self->ctx || !self->topo) {
        free (self->ring);
        wc_topology_destroy (&self->topo);
        if (self->ctx)
            zmq_ctx_term (self->ctx);
        free (self);
        return NULL;
    }
    msgpack_sbuffer_init (&self->out);
    msgpack_sbuffer_init (&self->ping_out);
    self->timeout_ms = WC_DEFAULT_TIMEOUT;
    self->next_rid = 1;
    self->first_node = WC_SELECT_NONE;
    self->write_node = WC_SELECT_NONE;
    self->async_node = WC_SELECT_NONE;
    self->read.mode = WC_READ_NEAREST;
    self->consistency = WC_CONSISTENCY_SESSION;
    self->window_ms = WC_DEFAULT_WINDOW;
    self->session_wait_ms = WC_DEFAULT_WAIT;
    wc_session_reset (&self->session);
    return self;
}

void
walcast_destroy (walcast_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    walcast_t *self = *self_p;
    s_rx_release (self);
    wc_topology_destroy (&self->topo);
    if (self->broker_sock)
        zmq_close (self->broker_sock);
    if (self->topo_sub)
        zmq_close (self->topo_sub);
    zmq_ctx_term (self->ctx);
    msgpack_sbuffer_destroy (&self->out);
    msgpack_sbuffer_destroy (&self->ping_out);
    free (self->ring);
    free (self->sel);
    free (self->cands);
    free (self);
    *self_p = NULL;
}

//  Milliseconds for the first PING round: WC_CONNECT_PING_MS, or the
//  timeout when smaller.
static int
s_connect_wait (walcast_t *self)
{
    return self->timeout_ms < WC_CONNECT_PING_MS ? self->timeout_ms
                                                 : WC_CONNECT_PING_MS;
}

int
walcast_connect (walcast_t *self, const char *host_port)
{
    if (!self || !host_port)
        return WALCAST_EINVAL;
    size_t index;
    int rc = s_add_node (self, host_port, true, &index);
    if (rc)
        return rc;
    if (self->first_node == WC_SELECT_NONE)
        self->first_node = index;
    if (self->write_node == WC_SELECT_NONE)
        self->write_node = index;
    self->nconnected++;
    s_ping_round (self, index, s_connect_wait (self), false);
    s_follow_primary (self);
    return 0;
}

int
walcast_connect_broker (walcast_t *self, const char *host_port)
{
    if (!self || !host_port)
        return WALCAST_EINVAL;
    char endpoint [sizeof self->broker_endpoint];
    char pub [sizeof self->broker_pub];
    bool ipv6;
    if (wc_topology_endpoint (host_port, 0, endpoint, sizeof endpoint, &ipv6)
    ||  wc_topology_endpoint (host_port, 1, pub, sizeof pub, NULL))
        return WALCAST_EINVAL;

    //  Subscribe first, then ask: no change falls between the two.
    int err = 0;
    int64_t deadline = wc_clock_ms () + self->timeout_ms;
    void *sub = wc_topology_socket (self->ctx, ZMQ_SUB, pub, ipv6, WC_TOPO_HWM,
                                    &err);
    if (!sub)
        return err;
    if (zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "topology", 8)) {
        zmq_close (sub);
        return WALCAST_EUNAVAILABLE;
    }
    if (self->topo_sub)
        zmq_close (self->topo_sub);
    if (self->broker_sock)
        zmq_close (self->broker_sock);
    self->broker_sock = NULL;
    self->topo_sub = sub;
    memcpy (self->broker_endpoint, endpoint, sizeof endpoint);
    memcpy (self->broker_pub, pub, sizeof pub);
    self->broker_ipv6 = ipv6;
    self->has_broker = true;
    self->topo_at_us = 0;
    self->topo_version = 0;

    int rc = s_broker_refresh (self, deadline);
    if (rc)
        return rc;
    int64_t left = deadline - wc_clock_ms ();
    int wait = s_connect_wait (self);
    if (wait > left)
        wait = left > 0 ? (int) left : 0;
    if (wait > 0)
        s_ping_round (self, WC_SELECT_NONE, wait, false);
    s_follow_primary (self);
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

int
walcast_set_region (walcast_t *self, const char *region)
{
    if (!self)
        return WALCAST_EINVAL;
    if (!region)
        region = "";
    if (strlen (region) > WC_MAX_ID)
        return WALCAST_EINVAL;
    strcpy (self->region, region);
    return 0;
}

int
walcast_set_read (walcast_t *self, const char *preference)
{
    if (!self)
        return WALCAST_EINVAL;
    return wc_select_parse_read (preference, &self->read);
}

int
walcast_set_consistency (walcast_t *self, const char *consistency)
{
    if (!self)
        return WALCAST_EINVAL;
    return wc_select_parse_consistency (consistency, &self->consistency);
}

void
walcast_set_max_staleness (walcast_t *self, int ms)
{
    if (self)
        self->max_staleness_ms = ms > 0 ? ms : 0;
}

void
walcast_set_latency_window (walcast_t *self, int ms)
{
    if (self)
        self->window_ms = ms > 0 ? ms : 0;
}

void
walcast_set_session_wait (walcast_t *self, int ms)
{
    if (self)
        self->session_wait_ms = ms > 0 ? ms : 0;
}

uint64_t
walcast_session_seq (walcast_t *self)
{
    return self ? self->session.seq : 0;
}

/* --- writes ------------------------------------------------------------ */

//  PUT or DEL, synchronously, on the write node; in follow mode, retried
//  once where an ENOTPRIMARY points, within the same deadline. Never
//  retried after a timeout: the node may have applied it (see the top).
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
    int64_t deadline = wc_clock_ms () + self->timeout_ms;
    s_begin (self);
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = type;
    req.u.req.key.ptr = key;
    req.u.req.key.len = (uint32_t) key_len;
    req.u.req.value.ptr = value_len ? value : (const void *) "";
    req.u.req.value.len = (uint32_t) value_len;

    size_t target = self->write_node;
    rc = s_request (self, target, &req, WC_MSG_WRITE_OK, deadline);
    if (rc == WALCAST_ENOTPRIMARY && s_follow_mode (self) && self->detail [0]) {
        //  It says who the primary is: believe it, once. The write was
        //  not applied, so sending it there cannot apply it twice.
        char addr [WC_DETAIL_SIZE];
        memcpy (addr, self->detail, sizeof addr);
        size_t index;
        s_node (self, target)->role = WC_ROLE_REPLICA;
        if (s_add_node (self, addr, false, &index) == 0 && index != target) {
            self->write_node = index;
            if (wc_clock_ms () < deadline)
                rc = s_request (self, index, &req, WC_MSG_WRITE_OK, deadline);
            else
                memcpy (self->detail, addr, sizeof self->detail);
        }
    }
    if (rc == 0) {
        wc_session_note (&self->session, self->rx.u.write_ok.epoch,
                         self->rx.u.write_ok.seq);
        if (pos) {
            pos->epoch = self->rx.u.write_ok.epoch;
            pos->seq = self->rx.u.write_ok.seq;
        }
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
walcast_put_async (walcast_t *self, const void *key, size_t key_len,
                   const void *value, size_t value_len)
{
    if (!self)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    int rc = s_check_kv (key, key_len, value, value_len, true);
    if (rc)
        return rc;
    //  The hot path: settle what the node writes go to has sent back
    //  (every socket is read at the tick, ten times a second).
    s_rx_release (self);
    s_tick (self);
    //  Writes in flight all go to one node; a new primary takes over
    //  once they are settled.
    if (self->inflight == 0)
        self->async_node = self->write_node;
    if (self->async_node >= wc_topology_size (self->topo))
        return WALCAST_EUNAVAILABLE;
    if (s_node (self, self->async_node)->sock) {
        while ((rc = s_recv_one (self, self->async_node)) == 1)
            ;
    }

    //  Wait while the window is full; no reply within the timeout loses
    //  the whole window.
    int64_t deadline = wc_clock_ms () + self->timeout_ms;
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
    if (self->inflight == 0)
        self->async_node = self->write_node;
    rc = s_send (self, self->async_node, deadline);
    if (rc) {
        s_node_reset (self, self->async_node);
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
    s_begin (self);
    int64_t deadline = wc_clock_ms () + self->timeout_ms;
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

/* --- reads ------------------------------------------------------------- */

//  Errors that every node would give the same: no use trying another.
static bool
s_final_error (int rc)
{
    return rc == WALCAST_EINVAL || rc == WALCAST_ETOOBIG
        || rc == WALCAST_ENOMEM || rc == WALCAST_EVERSION;
}

//  The applied seq an ESTALE detail gives ("applied=N"); false when it
//  says something else (a staleness refusal says "lag_ms=N").
static bool
s_estale_applied (const char *detail, uint64_t *seq)
{
    if (strncmp (detail, "applied=", 8) != 0)
        return false;
    const char *digits = detail + 8;
    if (*digits < '0' || *digits > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long value = strtoull (digits, &end, 10);
    if (errno || *end)
        return false;
    *seq = (uint64_t) value;
    return true;
}

//  The reply in rx is a VALUE from node index: copy it out (and say who
//  served it). Returns 0, WALCAST_ENOTFOUND, EPROTO or ENOMEM.
static int
s_take_value (walcast_t *self, size_t index, void **value, size_t *value_len,
              walcast_served_t *served)
{
    const wc_bytes_t *v = &self->rx.u.value.value;
    if (served) {
        const wc_peer_t *node = s_node (self, index);
        snprintf (served->id, sizeof served->id, "%s", node->id);
        snprintf (served->region, sizeof served->region, "%s", node->region);
        snprintf (served->addr, sizeof served->addr, "%s", node->addr);
        served->rtt_ms = node->rtt_ms;
        served->applied_seq = self->rx.u.value.seq;
    }
    if (!self->rx.u.value.found)
        return WALCAST_ENOTFOUND;
    if (v->len > WC_MAX_VALUE)
        return WALCAST_EPROTO;
    if (v->len > 0) {
        *value = malloc (v->len);
        if (!*value)
            return WALCAST_ENOMEM;
        memcpy (*value, v->ptr, v->len);
        *value_len = v->len;
    }
    return 0;
}

//  One read attempt: GET key from node index with the token as min_seq,
//  until at most deadline (with reserve, leaving a quarter of the time
//  left for the nodes after it). The node may wait for the token at
//  most half the time left. A VALUE older than the min_seq sent is
//  ESTALE (a node that ignores min_seq must not break the session).
//  When the primary is behind the session token, the token holds a
//  read the primary disproves (client/session.h): it is dropped and the
//  primary asked again.
static int
s_read_one (walcast_t *self, size_t index, const void *key, size_t key_len,
            uint64_t explicit_min, int64_t deadline, bool reserve,
            void **value, size_t *value_len, walcast_served_t *served)
{
    bool session = self->consistency == WC_CONSISTENCY_SESSION;
    int rc = WALCAST_ETIMEOUT;
    for (int round = 0; round < 2; round++) {
        int64_t now = wc_clock_ms ();
        int64_t remaining = deadline - now;
        if (remaining <= 0)
            return WALCAST_ETIMEOUT;
        uint64_t min_seq = wc_session_min_seq (&self->session, session, explicit_min);
        uint32_t wait_ms = wc_session_wait_ms (min_seq, self->session_wait_ms,
                                               remaining);
        int64_t attempt = WC_ATTEMPT_MS + (int64_t) wait_ms;
        int64_t cap = reserve ? remaining - remaining / 4 : remaining;
        if (attempt > cap)
            attempt = cap;

        wc_msg_t req;
        memset (&req, 0, sizeof req);
        req.type = WC_MSG_GET;
        req.u.req.key.ptr = key;
        req.u.req.key.len = (uint32_t) key_len;
        req.u.req.min_seq = min_seq;
        req.u.req.max_staleness_ms = (uint32_t) self->max_staleness_ms;
        req.u.req.wait_ms = wait_ms;
        int64_t asked_us = wc_clock_us ();
        rc = s_request (self, index, &req, WC_MSG_VALUE, now + attempt);

        //  What the node says it has applied, when it says
        uint64_t seq = 0;
        bool know_seq = false;
        if (rc == 0) {
            seq = self->rx.u.value.seq;
            know_seq = true;
            if (seq < min_seq) {
                rc = WALCAST_ESTALE;
                snprintf (self->detail, sizeof self->detail, "applied=%llu",
                          (unsigned long long) seq);
            }
        }
        else
        if (rc == WALCAST_ESTALE)
            know_seq = s_estale_applied (self->detail, &seq);

        if (know_seq && s_node (self, index)->role == WC_ROLE_PRIMARY
        &&  wc_session_primary (&self->session, seq, asked_us)) {
            //  The token was past the primary on a false read: now it
            //  is not. A VALUE that meets the corrected min_seq is good;
            //  an ESTALE is asked again.
            min_seq = wc_session_min_seq (&self->session, session, explicit_min);
            if (rc == WALCAST_ESTALE && self->rx_held
            &&  self->rx.type == WC_MSG_VALUE && seq >= min_seq)
                rc = 0;
            else
            if (rc == WALCAST_ESTALE) {
                s_rx_release (self);
                continue;
            }
        }
        if (rc == 0) {
            wc_session_read (&self->session, seq, wc_clock_us ());
            rc = s_take_value (self, index, value, value_len, served);
        }
        s_rx_release (self);
        return rc;
    }
    return rc;
}

int
walcast_get_ex (walcast_t *self, const void *key, size_t key_len,
                uint64_t min_seq, void **value, size_t *value_len,
                walcast_served_t *served)
{
    if (!self || !value || !value_len)
        return WALCAST_EINVAL;
    *value = NULL;
    *value_len = 0;
    if (served) {
        memset (served, 0, sizeof *served);
        served->rtt_ms = -1;
    }
    self->detail [0] = 0;
    int rc = s_check_kv (key, key_len, NULL, 0, false);
    if (rc)
        return rc;
    int64_t deadline = wc_clock_ms () + self->timeout_ms;
    s_rx_release (self);
    s_begin (self);
    bool session = self->consistency == WC_CONSISTENCY_SESSION;

    //  Strong and primary reads: the primary or nobody. When the table
    //  names none, find it first.
    if (s_wants_primary (self)
    &&  s_learn_primary (self, deadline) == WC_SELECT_NONE) {
        s_no_candidate_detail (self);
        return WALCAST_EUNAVAILABLE;
    }
    size_t primary = s_primary (self);
    size_t ncands = s_candidates (self);
    if (ncands == 0 || (ncands == 1 && self->cands_appended)) {
        s_no_candidate_detail (self);
        return WALCAST_EUNAVAILABLE;
    }

    //  self->cands is walked in place: nothing below adds a node until
    //  the loop is over.
    bool saw_estale = false;
    int last = WALCAST_EUNAVAILABLE;
    for (size_t k = 0; k < ncands; k++) {
        size_t index = self->cands [k];
        //  The primary session added is for replicas that are behind,
        //  not for replicas that are gone.
        if (k == ncands - 1 && self->cands_appended && !saw_estale)
            break;
        if (wc_clock_ms () >= deadline) {
            last = WALCAST_ETIMEOUT;
            break;
        }
        bool reserve = k + 1 < ncands || (session && index != primary);
        rc = s_read_one (self, index, key, key_len, min_seq, deadline, reserve,
                         value, value_len, served);
        if (rc == 0 || rc == WALCAST_ENOTFOUND || s_final_error (rc))
            return rc;
        if (rc == WALCAST_ESTALE)
            saw_estale = true;
        last = rc;
    }

    //  Session, after an ESTALE: the primary last, even when the table
    //  did not name one (a single replica given with walcast_connect).
    if (session && saw_estale && primary == WC_SELECT_NONE
    &&  wc_clock_ms () < deadline) {
        size_t found = s_learn_primary (self, deadline);
        if (found != WC_SELECT_NONE) {
            rc = s_read_one (self, found, key, key_len, min_seq, deadline, false,
                             value, value_len, served);
            if (rc == 0 || rc == WALCAST_ENOTFOUND || s_final_error (rc))
                return rc;
            last = rc;
        }
    }
    return last;
}

int
walcast_get (walcast_t *self, const void *key, size_t key_len,
             void **value, size_t *value_len, uint64_t *applied_seq)
{
    walcast_served_t served;
    int rc = walcast_get_ex (self, key, key_len, 0, value, value_len, &served);
    if ((rc == 0 || rc == WALCAST_ENOTFOUND) && applied_seq)
        *applied_seq = served.applied_seq;
    return rc;
}

int
walcast_status (walcast_t *self, walcast_status_t *status)
{
    if (!self || !status)
        return WALCAST_EINVAL;
    s_begin (self);
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = WC_MSG_STATUS;
    int rc = s_request (self, s_home_node (self), &req, WC_MSG_STATUS_REPLY,
                        wc_clock_ms () + self->timeout_ms);
    if (rc == 0) {
        memset (status, 0, sizeof *status);
        wc_bytes_printable (status->id, sizeof status->id, &self->rx.u.status.id);
        wc_bytes_printable (status->region, sizeof status->region,
                     &self->rx.u.status.region);
        wc_bytes_printable (status->primary, sizeof status->primary,
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
    s_begin (self);
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = WC_MSG_DIGEST;
    int rc = s_request (self, s_home_node (self), &req, WC_MSG_DIGEST_REPLY,
                        wc_clock_ms () + self->timeout_ms);
    if (rc == 0) {
        *seq = self->rx.u.digest.seq;
        *hash = self->rx.u.digest.hash;
    }
    s_rx_release (self);
    return rc;
}

int
walcast_nodes (walcast_t *self, walcast_node_info_t *nodes, size_t max,
               size_t *count)
{
    if (!self || !count || (!nodes && max > 0))
        return WALCAST_EINVAL;
    *count = 0;
    int64_t deadline = wc_clock_ms () + self->timeout_ms;
    s_rx_release (self);
    s_begin (self);
    //  The refresh and the PINGs share the call's time, each at most
    //  WC_REFRESH_MS of it
    if (self->has_broker) {
        int64_t end = wc_clock_ms () + WC_REFRESH_MS;
        s_broker_refresh (self, end < deadline ? end : deadline);  // else: the last one
    }
    int64_t left = deadline - wc_clock_ms ();
    if (left > WC_REFRESH_MS)
        left = WC_REFRESH_MS;
    if (left > 0)
        s_ping_round (self, WC_SELECT_NONE, (int) left, true);

    bool fresh = s_broker_fresh (self);
    size_t primary = s_primary (self);
    const wc_peer_t *pnode = primary != WC_SELECT_NONE ? s_node (self, primary) : NULL;
    size_t size = wc_topology_size (self->topo);
    size_t n = 0;
    for (size_t i = 0; i < size && n < max; i++) {
        const wc_peer_t *node = s_node (self, i);
        walcast_node_info_t *info = &nodes [n++];
        memset (info, 0, sizeof *info);
        snprintf (info->id, sizeof info->id, "%s", node->id);
        snprintf (info->region, sizeof info->region, "%s", node->region);
        snprintf (info->role, sizeof info->role, "%s",
                  node->role == WC_ROLE_PRIMARY ? "primary"
                : node->role == WC_ROLE_REPLICA ? "replica" : "");
        snprintf (info->addr, sizeof info->addr, "%s", node->addr);
        snprintf (info->primary, sizeof info->primary, "%s", node->primary);
        info->epoch = node->epoch;
        info->applied_seq = node->applied_seq;
        if (node->lag_known)
            info->lag = node->lag;
        else
        if (pnode && node->pong_us != 0 && pnode->applied_seq > node->applied_seq)
            info->lag = pnode->applied_seq - node->applied_seq;
        info->lag_ms = node->lag_ms;
        info->rtt_ms = node->rtt_ms;
        info->up = (node->from_broker && fresh) ? node->up : node->reachable;
    }
    *count = n;
    return 0;
}

/* --- change feed ------------------------------------------------------- */

void
walcast_set_watch_notify (walcast_t *self, walcast_watch_switch_fn *fn, void *arg)
{
    if (self) {
        self->watch_notify = fn;
        self->watch_notify_arg = arg;
    }
}

//  The node a watch subscribes to: the first candidate of the read
//  preference other than skip, never the primary that session adds (a
//  watch carries no token: that primary is no replica). With
//  only_reachable, nodes that do not answer are not candidates either
//  (a watch moving on must not go round dead nodes). WC_SELECT_NONE
//  when there is none.
static size_t
s_watch_pick (walcast_t *self, size_t skip, bool only_reachable)
{
    size_t n;
    if (only_reachable) {
        if (s_scratch (self))
            return WC_SELECT_NONE;
        n = s_select (self);
    }
    else
        n = s_candidates (self);
    if (n > 0 && self->cands_appended)
        n--;
    for (size_t k = 0; k < n; k++)
        if (self->cands [k] != skip)
            return self->cands [k];
    return WC_SELECT_NONE;
}

//  Subscribe to node index's stream for keys under prefix; *sub_p gets
//  the SUB socket.
static int
s_watch_open (walcast_t *self, size_t index, const void *prefix,
              size_t prefix_len, void **sub_p)
{
    const wc_peer_t *node = s_node (self, index);
    char endpoint [WC_MAX_ADDR + 8];
    bool ipv6;
    if (wc_topology_endpoint (node->addr, 1, endpoint, sizeof endpoint, &ipv6))
        return WALCAST_EINVAL;
    int err = 0;
    void *sub = wc_topology_socket (self->ctx, ZMQ_SUB, endpoint, ipv6, 0, &err);
    if (!sub)
        return err;
    if (zmq_setsockopt (sub, ZMQ_SUBSCRIBE, prefix_len ? prefix : "", prefix_len)) {
        zmq_close (sub);
        return WALCAST_EUNAVAILABLE;
    }
    *sub_p = sub;
    return 0;
}

//  Has the watched node gone? It stopped answering PINGs (the handle
//  keeps PINGing while it watches; a node picked while it did not
//  answer gets the time of one PING to prove it lives), the broker says
//  it is down, or, when the watch takes every key (and so the heartbeat
//  published every 100 ms), its stream has been quiet for
//  WC_WATCH_SILENT_MS. heard_ms is when the stream last delivered, < 0
//  when it cannot tell; opened_ms when the watch subscribed.
static bool
s_watch_silent (walcast_t *self, size_t index, const char *addr,
                int64_t heard_ms, int64_t opened_ms)
{
    const wc_peer_t *node = s_node (self, index);
    if (!node || strcmp (node->addr, addr) != 0)
        return true;            // its slot went to another node
    if (!node->reachable && wc_clock_ms () - opened_ms > WC_PING_DEAD_US / 1000)
        return true;
    if (s_broker_fresh (self) && node->from_broker && !node->up)
        return true;
    return heard_ms >= 0 && wc_clock_ms () - heard_ms > WC_WATCH_SILENT_MS;
}

//  Name of node index for the watch notice: its id, else its address.
static void
s_watch_name (walcast_t *self, size_t index, char *name, size_t size)
{
    const wc_peer_t *node = s_node (self, index);
    snprintf (name, size, "%s", node ? (node->id [0] ? node->id : node->addr) : "?");
}

int
walcast_watch (walcast_t *self, const void *prefix, size_t prefix_len,
               walcast_watch_fn *fn, void *arg, int timeout_ms)
{
    if (!self || !fn || (prefix_len > 0 && !prefix) || prefix_len > WC_MAX_KEY)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    s_rx_release (self);
    s_begin (self);
    if (s_wants_primary (self))
        s_learn_primary (self, wc_clock_ms () + self->timeout_ms);
    size_t current = s_watch_pick (self, WC_SELECT_NONE, false);
    if (current == WC_SELECT_NONE) {
        s_no_candidate_detail (self);
        return WALCAST_EUNAVAILABLE;
    }
    void *sub = NULL;
    int rc = s_watch_open (self, current, prefix, prefix_len, &sub);
    if (rc)
        return rc;
    char watching [WC_MAX_ADDR + 1];
    snprintf (watching, sizeof watching, "%s", s_node (self, current)->addr);

    //  A signal that interrupts the wait (a handler returned) ends the
    //  watch like the timeout does: that is how a program stops it.
    int64_t deadline = timeout_ms >= 0 ? wc_clock_ms () + timeout_ms : -1;
    int64_t heard = wc_clock_ms ();
    int64_t opened = heard;
    uint64_t last_seq = 0;
    int result = 0;
    zmq_msg_t topic, payload;
    zmq_msg_init (&topic);
    zmq_msg_init (&payload);
    while (true) {
        long wait = WC_WATCH_LOOK_MS;
        if (deadline >= 0) {
            int64_t remaining = deadline - wc_clock_ms ();
            if (remaining <= 0)
                break;
            if (remaining < wait)
                wait = (long) remaining;
        }
        zmq_pollitem_t item = { sub, 0, ZMQ_POLLIN, 0 };
        rc = zmq_poll (&item, 1, wait);
        if (rc < 0) {
            if (errno != EINTR)
                result = WALCAST_EUNAVAILABLE;
            break;
        }
        bool stop = false;
        int got;
        while (rc > 0 && !stop && (got = s_recv_pair (sub, &topic, &payload)) != 0) {
            heard = wc_clock_ms ();
            if (got != 1)
                continue;       // not [topic][payload]: skipped
            msgpack_unpacked storage;
            msgpack_unpacked_init (&storage);
            wc_msg_t msg;
            if (wc_msg_decode (zmq_msg_data (&payload), zmq_msg_size (&payload),
                               &storage, &msg) == 0
            &&  msg.type == WC_MSG_ENTRY
            &&  msg.u.entry.seq > last_seq
            &&  msg.u.entry.key.len >= prefix_len
            &&  (prefix_len == 0
                 || memcmp (msg.u.entry.key.ptr, prefix, prefix_len) == 0)) {
                const wc_entry_t *e = &msg.u.entry;
                last_seq = e->seq;
                int op = e->op == WC_OP_DEL ? 2 : 1;
                int frc = fn (arg, e->seq, op, e->key.ptr, e->key.len,
                              op == 1 ? e->value.ptr : NULL,
                              op == 1 ? e->value.len : 0);
                if (frc != 0) {
                    result = frc;
                    stop = true;
                }
                if (deadline >= 0)
                    deadline = wc_clock_ms () + timeout_ms;
            }
            msgpack_unpacked_destroy (&storage);
        }
        if (stop)
            break;

        //  Is the node still there? (PINGs go out and PONGs come in here.)
        s_tick (self);
        if (!s_watch_silent (self, current, watching, prefix_len == 0 ? heard : -1,
                             opened))
            continue;
        size_t next = s_watch_pick (self, current, true);
        if (next == WC_SELECT_NONE) {
            const wc_peer_t *node = s_node (self, current);
            if (!node || strcmp (node->addr, watching) != 0 || !node->reachable) {
                char name [WC_MAX_ADDR + 1];
                s_watch_name (self, current, name, sizeof name);
                snprintf (self->detail, sizeof self->detail,
                          "%s is silent and no other node fits", name);
                result = WALCAST_EUNAVAILABLE;
                break;
            }
            next = current;     // it answers, its stream does not: again
        }
        if (self->watch_notify) {
            char from [WC_MAX_ADDR + 1], to [WC_MAX_ADDR + 1];
            snprintf (from, sizeof from, "%s", watching);
            const wc_peer_t *node = s_node (self, current);
            if (node && strcmp (node->addr, watching) == 0)
                s_watch_name (self, current, from, sizeof from);
            s_watch_name (self, next, to, sizeof to);
            self->watch_notify (self->watch_notify_arg, from, to);
        }
        zmq_close (sub);
        sub = NULL;
        rc = s_watch_open (self, next, prefix, prefix_len, &sub);
        if (rc) {
            result = rc;
            break;
        }
        current = next;
        snprintf (watching, sizeof watching, "%s", s_node (self, current)->addr);
        heard = opened = wc_clock_ms ();
    }
    zmq_msg_close (&topic);
    zmq_msg_close (&payload);
    if (sub)
        zmq_close (sub);
    return result;
}
