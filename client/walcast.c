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
      new request. Async writes in flight on that socket lose their
      answer with it: they are settled UNKNOWN, with the reason, never
      dropped.

    - Every async write has its own outcome (client/outcomes.c).
      walcast_put_async puts the write, with its rid and the caller's
      tag, at the tail of a FIFO; replies settle it (matched by rid),
      timeouts and resets settle what is in flight as UNKNOWN, and
      outcomes are handed to the caller from the head, in submission
      order, by the async calls only (so no callback runs in the middle
      of a sync call). The FIFO holds at most WC_ASYNC_WINDOW writes:
      walcast_put_async waits while it is full.

    - Async writes travel in batches (WRITE_BATCH: one message, one
      commit on the primary, one reply), the way Nagle's algorithm sends
      TCP segments: a write goes at once when no batch is in flight and
      none went in the last S_BATCH_GAP_US, and otherwise waits in the
      batch being filled until it is full (walcast_set_batch's writes, or
      S_BATCH_BYTES), nothing is in flight and that gap is over, or a
      call needs it sent (walcast_flush, any sync call, a
      wait for room). So one write alone pays no delay, and a pipeline
      sends hundreds of writes per message. The writes of a batch have
      consecutive rids; the batch's rid is its first.

    - Server selection waits. A call that has no suitable node (no
      primary for a write, no candidate for a read) polls the topology
      (the broker's pushes, a TOPOLOGY_GET every WC_SELECT_POLL_MS, the
      nodes' PONGs) until one appears or its deadline passes, and then
      says what was missing ("no primary known after 5000 ms: the broker
      lists 0 nodes up"). A client started with its cluster waits for
      the cluster instead of failing at once.

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
      unknown (WALCAST_ETIMEOUT). But a node's socket queues only on a
      live connection (ZMQ_IMMEDIATE), so a write it would not take was
      never sent: it waits for the connection, follows the primary when
      the topology moves it meanwhile (a primary killed before the broker
      noticed), and when the time runs out it was not made
      (WALCAST_EUNAVAILABLE, saying so), not unknown. A write that asks for replicas' acks
      (walcast_set_acks) is the one exception to the bound: its reply
      may take the primary's ack timeout on top, since waiting for the
      replicas is part of the write; its answer is then known
      (ENOTREPLICATED: in the primary's log, not confirmed replicated)
      where giving up earlier would leave it unknown.

    - A watch loses nothing. walcast_watch picks the node and moves to
      another when it goes silent; client/feed.c follows the node's
      stream (everything, filtered here) and repairs every gap over its
      catch-up port, as a replica does, from a position the caller can
      keep and give back.

    Two modes keep issue 2's contract. A handle given one node with
    walcast_connect and no broker talks to that node only: writes go
    there and ENOTPRIMARY is returned as it is, with the primary's
    HOST:PORT in walcast_last_detail. A handle with a broker, or given
    several nodes, follows: writes move to the primary the topology or
    the PONGs name, and a write refused as not the primary (ENOTPRIMARY,
    or EFENCED from a primary that was replaced: either means it was
    not applied, so sending it again cannot apply it twice) goes to the
    primary the refusal names, or, when that is nobody or a node that
    refused it already (a switchover in progress, a failover the
    topology has not shown yet), waits for the topology to name a
    primary that has not refused it, or one whose ENOTPRIMARY is half a
    second old (a cancelled switchover's primary takes writes again at
    the same epoch): one deadline.

    - CURVE is a property of the handle, set before it connects
      (walcast_set_curve_*): with a key pair every socket it opens is a
      CURVE client, of the server key the node's TOPOLOGY entry gives,
      else the one given for the nodes named by address, and of the
      broker's key for the broker. A node whose keys do not go together
      with ours is not asked in vain: the call fails at once, saying
      which key to give. A request refused for its key's role (EPERM)
      is the caller's answer, never tried elsewhere: every node would
      say the same.

    This file uses plain libzmq for its sockets; czmq only reads
    certificate files (runtime/certs.c).
*/
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>
#include "walcast.h"
#include "clock.h"
#include "codec.h"
#include "addr.h"
#include "certs.h"
#include "dropwatch.h"
#include "errors.h"
#include "feed.h"
#include "outcomes.h"
#include "select.h"
#include "session.h"
#include "topology.h"


/*  Async writes held per handle (in flight or not yet handed over). */
#define WC_ASYNC_WINDOW     WALCAST_ASYNC_WINDOW

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
#define WC_SELECT_POLL_MS   250         /* TOPOLOGY_GET while waiting for a node */
#define WC_SELECT_NAP_MS    50          /* longest nap while waiting for a node */
#define WC_NODE_ACK_TIMEOUT 5000        /* a node's ack timeout when asked 0 */

/*  A number as a string literal (for walcast_version). */
#define S_STR_(x)           #x
#define S_STR(x)            S_STR_ (x)

/*  Room for an error's detail (a HOST:PORT, or text), NUL included. */
#define WC_DETAIL_SIZE      (WC_MAX_TEXT + 1)

/*  The most octets of writes an async batch holds. */
#define S_BATCH_BYTES       (64u * 1024u)

/*  How often an async write looks for replies, at most (microseconds):
    a write that waits in the batch being filled waits about this long
    for the replies that let it go. */
#define S_REPLIES_US        50

/*  The least time between two batches that are not full (microseconds). */
#define S_BATCH_GAP_US      1000

/*  The nodes that refused a sync write as not (or no longer) the
    primary, each with the epoch the table gave it then. The write goes
    to none of them again unless that epoch has risen since (the node
    was promoted after all: a switchover's target), or, for an
    ENOTPRIMARY, S_REFUSED_RETRY_MS have passed: a primary handing over
    refuses writes until the switchover ends, and when the broker
    cancels it, it takes them again at the same epoch. So resends are
    paced (at most one per refuser each S_REFUSED_RETRY_MS), and the
    write's deadline alone bounds them: a switchover may take the
    broker's whole 10 s. */
#define S_REFUSERS          16
#define S_REFUSED_RETRY_MS  500
typedef struct {
    char     addr [S_REFUSERS][WC_MAX_ADDR + 1];
    uint64_t epoch [S_REFUSERS];
    int64_t  retry_ms [S_REFUSERS];     /* may be tried again from; 0: never */
    int      count;
} s_refusals_t;

struct walcast {
    void            *ctx;           /* zmq context, one per handle */
    wc_topology_t   *topo;          /* the nodes, their sockets and RTTs */
    size_t           first_node;    /* first node added (status, digest) */
    size_t           write_node;    /* node writes go to */
    bool             sending_write; /* s_send carries a sync write (s_write) */
    bool             sending_batch; /* s_send carries the async batch */
    uint64_t         replies;       /* replies s_request got, of any type */
    const s_refusals_t *refusals;   /* during a sync write's retry: who
                                       refused it (selection skips them) */
    size_t           nconnected;    /* walcast_connect calls that worked */
    int              timeout_ms;    /* bound on every call */
    walcast_write_opts_t acks;      /* what writes ask for (walcast_set_acks) */
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
    uint32_t         sync_lapses;   /* its node's lapses when it was sent */
    uint32_t         sync_drops;    /* and its drops */
    wc_dropwatch_t  *dropwatch;     /* on the socket of the last node a
                                       sync write went to (dropwatch.h) */
    size_t           watch_index;   /* ... that node's index */
    bool             saw_malformed; /* a frame we could not decode arrived */
    int64_t          quiet_us;      /* when every node socket was last seen
                                       empty (or watched by zmq_poll) */
    uint64_t         frames_in;     /* frames read from node sockets */

    /* async writes */
    wc_outcomes_t   *outcomes;      /* in flight and settled, in order */
    msgpack_sbuffer  batch;         /* writes of the batch being filled */
    uint32_t         batch_count;   /* ... how many (in outcomes, in flight) */
    uint64_t         batch_rid;     /* ... the rid of its first */
    uint32_t         batch_max;     /* walcast_set_batch's; 1: a PUT or DEL alone */
    walcast_write_opts_t batch_acks;    /* ... what they ask for */
    size_t           async_node;    /* node the writes in flight went to */
    int              async_ack_ms;  /* longest ack timeout among them */
    int64_t          replies_us;    /* when an async write last read replies */
    int64_t          batch_sent_us; /* when the last batch went */
    int64_t          async_dead_ms; /* since when no batch could go to
                                       async_dead_node (a full timeout
                                       passed): the next fail at once */
    size_t           async_dead_node;
    walcast_outcome_fn *outcome_fn; /* where outcomes go, or NULL */
    void            *outcome_arg;
    uint64_t         acked;         /* handed over OK since the last flush */
    walcast_pos_t    last;          /* highest position among them */
    int              async_err;     /* first error handed over since then */
    char             async_detail [WC_DETAIL_SIZE];
    char             outcome_detail [WC_DETAIL_SIZE];   /* the one handed over */
    bool             delivering;    /* in the outcome function */

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
    uint64_t         topo_skipped;  /* node entries skipped as unusable */

    /* CURVE (walcast_set_curve_*) */
    bool             curve;         /* keys holds our key pair */
    wc_certs_keys_t  keys;
    char             server_key [41];   /* nodes named by address, "" none */
    char             broker_key [41];   /* the broker's, "" none */

    /* debugging */
    walcast_log_fn  *log;           /* told what the handle handled itself */
    void            *log_arg;

    /* watch */
    walcast_watch_switch_fn *watch_notify;   /* told when a watch moves, or NULL */
    volatile sig_atomic_t watch_stop;       /* walcast_watch_stop was called */
    uint64_t         watch_next;    /* where the last watch stopped, and the */
    uint64_t         watch_epoch;   /* epoch of the change before it (0: none) */
    wc_feed_t       *watch_feed;    /* the feed of the watch running, or NULL */
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

//  Is node one the broker lists as a candidate (role 1, WC_NODE_CANDIDATE:
//  not promoted, or not serving its promotion yet)? The broker's TOPOLOGY
//  lists such a node down whether it runs or not, so that no write goes
//  to it (docs/PROTOCOL.md, "One primary").
static bool
s_candidate (const wc_peer_t *node)
{
    return node->from_broker && node->role == WC_ROLE_PRIMARY
        && (node->flags & WC_NODE_CANDIDATE);
}

//  A candidate the broker heard lately (within WC_PING_DEAD_US): one
//  that runs, as far as it knows, though its TOPOLOGY lists it down.
//  walcast_nodes waits for its PONG to show it up; one silent longer is
//  down for the broker too, and is not waited for.
static bool
s_heard_candidate (const wc_peer_t *node)
{
    return s_candidate (node) && node->silent_ms * 1000 < WC_PING_DEAD_US;
}

/* --- replies ----------------------------------------------------------- */

static void s_ping (walcast_t *self, size_t index, int64_t now_us);
static void s_tick (walcast_t *self);

//  Tell the application's log function (if any) about something the
//  handle noticed and handled itself.
static void
s_log (walcast_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_log (walcast_t *self, const char *fmt, ...)
{
    if (!self->log)
        return;
    char line [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    self->log (self->log_arg, line);
}

//  The writes of the batch being filled will not be sent: each fails,
//  with err and why.
static void
s_batch_drop (walcast_t *self, int err, const char *why)
{
    if (self->batch_count == 0)
        return;
    char detail [WC_DETAIL_SIZE];
    if (snprintf (detail, sizeof detail, "not sent: %s", why) >= (int) sizeof detail)
        memcpy (detail + sizeof detail - 4, "...", 4);     //  a long why, cut short
    wc_outcome_end_t end = { WALCAST_WRITE_FAILED, err, 0, detail };
    walcast_pos_t none = { 0, 0 };
    wc_outcomes_settle_batch (self->outcomes, self->batch_rid, 0, &end, none, &end);
    self->batch_count = 0;
    self->batch.size = 0;
}

//  The async writes sent to async_node and still waiting for their
//  outcomes (the batch being filled is in flight too, but not sent).
static size_t
s_async_sent (walcast_t *self)
{
    size_t inflight = wc_outcomes_inflight (self->outcomes);
    return inflight > self->batch_count ? inflight - self->batch_count : 0;
}

//  The async writes sent lost their connection: settle them UNKNOWN,
//  saying why. The batch being filled, not sent, is left as it is.
static void
s_async_lose_sent (walcast_t *self, int err, const char *why)
{
    if (s_async_sent (self) == 0)
        return;
    const wc_peer_t *node = s_node (self, self->async_node);
    char detail [WC_DETAIL_SIZE];
    snprintf (detail, sizeof detail, "sent to %s; %s; it may or may not have "
              "been applied", node ? node->addr : "?", why);
    size_t lost = wc_outcomes_lose_before (self->outcomes, self->batch_count
                                           ? self->batch_rid : UINT64_MAX, err, detail);
    s_log (self, "%zu async write%s in flight on %s now unknown: %s", lost,
           lost == 1 ? "" : "s", node ? node->addr : "?", why);
}

//  The async writes in flight lost their connection (it timed out, was
//  reset or replaced): settle them UNKNOWN, saying why (those not sent
//  yet fail).
static void
s_async_lose (walcast_t *self, int err, const char *why)
{
    s_batch_drop (self, err, why);
    s_async_lose_sent (self, err, why);
}

//  Lazy Pirate: close the node's socket, dropping whatever it still holds
//  or receives later, and connect a fresh one. Called after a timeout;
//  why says what happened, for the async writes that were in flight.
static void
s_node_reset (walcast_t *self, size_t index, const char *why)
{
    if (index == self->async_node)
        s_async_lose (self, WALCAST_ETIMEOUT, why);
    wc_topology_reset (self->topo, index);
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

//  Did a write the node refused with this wire code surely not apply?
//  EIO may follow a WAL write whose fsync failed, ETIMEOUT a write whose
//  end nobody knows, ENOMEM a write half done; ENOTREPLICATED is a write
//  applied (an outcome of its own); a code this build does not know
//  tells nothing.
static bool
s_refused (uint64_t code)
{
    int err = wc_err_from_wire (code);
    if (wc_err_to_wire (err) != code)
        return false;
    return err != WALCAST_EIO && err != WALCAST_ETIMEOUT && err != WALCAST_ENOMEM
        && err != WALCAST_ENOTREPLICATED;
}

//  Does a WRITE_OK with `acked` give a write that asked for `asked`
//  what it asked? (WC_ACKS_ALL: at least one replica; the node counts
//  the others.) A node older than acks sends no acked: 0.
static bool
s_acks_met (uint8_t asked, uint32_t acked)
{
    if (asked == WC_ACKS_ALL)
        return acked >= 1;
    return acked >= asked;
}

//  The K of an ENOTREPLICATED detail ("acked=K of N"); 0 when it says
//  something else.
static uint32_t
s_acked_of (const char *detail)
{
    unsigned long k = 0;
    if (strncmp (detail, "acked=", 6) == 0 && detail [6] >= '0' && detail [6] <= '9')
        k = strtoul (detail + 6, NULL, 10);
    return k > UINT32_MAX ? UINT32_MAX : (uint32_t) k;
}

//  The detail of a WRITE_OK that did not meet its acks, into buf.
static void
s_unmet_detail (uint8_t asked, uint32_t acked, char *buf, size_t size)
{
    char of [16];
    if (asked == WC_ACKS_ALL)
        snprintf (of, sizeof of, "all");
    else
        snprintf (of, sizeof of, "%u", asked);
    snprintf (buf, size, "acked=%u of %s: the node did not wait for its replicas "
              "(does it predate write acknowledgements?)", acked, of);
}

//  A WRITES_OK for the batch in rx: its first count writes landed (OK,
//  or NOTREPLICATED when fewer replicas confirmed them than they asked
//  for), the rest were refused with the code it gives.
static bool
s_async_settle_batch (walcast_t *self, uint8_t asked)
{
    const wc_msg_t *msg = &self->rx;
    uint32_t count = msg->u.writes_ok.count;
    uint32_t acked = msg->u.writes_ok.acked;
    walcast_pos_t first = { msg->u.writes_ok.epoch, msg->u.writes_ok.first_seq };
    if (count > 0)
        wc_session_note (&self->session, first.epoch, first.seq + count - 1);
    char unmet [WC_DETAIL_SIZE], why [WC_DETAIL_SIZE];
    wc_outcome_end_t ok = { WALCAST_WRITE_OK, 0, acked, NULL };
    uint32_t wanted = msg->u.writes_ok.wanted;
    if (wanted ? acked < wanted : !s_acks_met (asked, acked)) {
        //  A primary answers a batch whose replicas did not confirm it in
        //  time with how many did of how many it waited for (absent from
        //  an older node: the count asked, or "all")
        if (wanted)
            snprintf (unmet, sizeof unmet, "acked=%u of %u", acked, wanted);
        else
        if (asked == WC_ACKS_ALL)
            snprintf (unmet, sizeof unmet, "acked=%u of all", acked);
        else
            snprintf (unmet, sizeof unmet, "acked=%u of %u", acked, asked);
        ok = (wc_outcome_end_t) { WALCAST_WRITE_NOTREPLICATED, WALCAST_ENOTREPLICATED,
                                  acked, unmet };
    }
    uint32_t code = msg->u.writes_ok.code;
    wc_bytes_printable (why, sizeof why, &msg->u.writes_ok.text);
    wc_outcome_end_t rest = { s_refused (code) ? WALCAST_WRITE_FAILED
                                               : WALCAST_WRITE_UNKNOWN,
                              code ? wc_err_from_wire (code) : WALCAST_EPROTO, 0,
                              code ? why : "the node took a part of the batch "
                                           "and said nothing of the rest" };
    return wc_outcomes_settle_batch (self->outcomes, msg->rid, count, &ok, first,
                                     &rest) > 0;
}

//  Settle the async write whose reply is in rx; false when its rid is
//  not an async write in flight.
static bool
s_async_settle (walcast_t *self)
{
    const wc_msg_t *msg = &self->rx;
    uint8_t asked = 0;
    if (!wc_outcomes_waits_for (self->outcomes, msg->rid, &asked))
        return false;
    walcast_pos_t pos = { 0, 0 };
    char detail [WC_DETAIL_SIZE];
    if (msg->type == WC_MSG_WRITES_OK)
        return s_async_settle_batch (self, asked);
    if (msg->type == WC_MSG_WRITE_OK) {
        pos.epoch = msg->u.write_ok.epoch;
        pos.seq = msg->u.write_ok.seq;
        uint32_t acked = msg->u.write_ok.acked;
        wc_session_note (&self->session, pos.epoch, pos.seq);
        if (s_acks_met (asked, acked))
            return wc_outcomes_settle (self->outcomes, msg->rid, WALCAST_WRITE_OK, 0,
                                       pos, acked, NULL);
        s_unmet_detail (asked, acked, detail, sizeof detail);
        return wc_outcomes_settle (self->outcomes, msg->rid,
                                   WALCAST_WRITE_NOTREPLICATED,
                                   WALCAST_ENOTREPLICATED, pos, acked, detail);
    }
    if (msg->type == WC_MSG_ERROR) {
        wc_bytes_printable (detail, sizeof detail, &msg->u.error.detail);
        int err = wc_err_from_wire (msg->u.error.code);
        int state = s_refused (msg->u.error.code) ? WALCAST_WRITE_FAILED
                                                  : WALCAST_WRITE_UNKNOWN;
        uint32_t acked = 0;
        if (err == WALCAST_ENOTREPLICATED) {
            state = WALCAST_WRITE_NOTREPLICATED;
            acked = s_acked_of (detail);
        }
        //  The whole batch (a write sent alone is a batch of one)
        wc_outcome_end_t end = { state, err, acked, detail };
        return wc_outcomes_settle_batch (self->outcomes, msg->rid, 0, &end, pos,
                                         &end) > 0;
    }
    return wc_outcomes_settle (self->outcomes, msg->rid, WALCAST_WRITE_UNKNOWN,
                               WALCAST_EPROTO, pos, 0,
                               "the node answered with another message type");
}

static void s_async_deliver_but (walcast_t *self, size_t keep);

//  Hand the settled outcomes at the head of the FIFO over, in submission
//  order, and sum them up for walcast_flush. Not reentrant: called from
//  inside the outcome function (which may send more writes), it leaves
//  the handing over to the loop already running.
static void
s_async_deliver (walcast_t *self)
{
    s_async_deliver_but (self, 0);
}

//  The same, leaving the newest `keep` writes held: walcast_put_async
//  keeps the one it is accepting, whose outcome may already be known
//  (it could not be sent), so that no outcome is handed over before the
//  call that accepted its write has returned. A caller that records a
//  write once the call says it was accepted then always has it recorded
//  when its outcome comes.
static void
s_async_deliver_but (walcast_t *self, size_t keep)
{
    if (self->delivering)
        return;
    self->delivering = true;
    walcast_outcome_t outcome;
    while (wc_outcomes_size (self->outcomes) > keep
       &&  wc_outcomes_pop (self->outcomes, &outcome, self->outcome_detail,
                            sizeof self->outcome_detail)) {
        if (outcome.state == WALCAST_WRITE_OK) {
            self->acked++;
            if (outcome.pos.epoch > self->last.epoch
            || (outcome.pos.epoch == self->last.epoch
                && outcome.pos.seq > self->last.seq))
                self->last = outcome.pos;
        }
        else
        if (self->async_err == 0) {
            self->async_err = outcome.err;
            snprintf (self->async_detail, sizeof self->async_detail, "%s",
                      outcome.detail);
        }
        if (self->outcome_fn)
            self->outcome_fn (self->outcome_arg, &outcome);
    }
    self->delivering = false;
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
    self->frames_in++;
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
    if (self->rx.type == WC_MSG_ERROR && node->ping_rid != 0
    &&  self->rx.rid == node->ping_rid) {
        //  A PING refused: with EPERM, our key has lost its role there
        node->ping_rid = 0;
        if (wc_err_from_wire (self->rx.u.error.code) == WALCAST_EPERM)
            node->key_refusals++;
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

//  Count the drops the dropwatch saw as the PING's are counted (a lapse
//  and a drop of the node), while the node still has the socket watched.
static void
s_watch_read (walcast_t *self)
{
    uint32_t drops = wc_dropwatch_read (self->dropwatch);
    wc_peer_t *node = s_node (self, self->watch_index);
    if (drops == 0 || !node || node->sock_id != wc_dropwatch_id (self->dropwatch))
        return;
    node->lapses += drops;
    node->drops += drops;
}

//  Watch the socket of the node at index for its connection dropping,
//  from before a sync write is sent on it. The socket watched until now
//  is released: stopped first when it is still open (see dropwatch.h:
//  a monitor must never outlive our end of it). When the monitor cannot
//  start, the PINGs alone tell of a drop, as they do for any node.
static void
s_watch (walcast_t *self, size_t index)
{
    wc_peer_t *node = s_node (self, index);
    if (!node || (node->sock_id != 0 && node->sock_id == wc_dropwatch_id (self->dropwatch)))
        return;
    s_watch_read (self);
    wc_peer_t *old = s_node (self, self->watch_index);
    bool open = old && old->sock && old->sock_id == wc_dropwatch_id (self->dropwatch);
    wc_dropwatch_release (self->dropwatch, open ? old->sock : NULL);
    self->watch_index = index;
    wc_dropwatch_attach (self->dropwatch, node->sock, node->sock_id);
}

//  Wait until something arrives on any node's socket, or until deadline
//  (monotonic ms), then drain. Returns 0, WALCAST_ETIMEOUT when the
//  deadline passed with nothing read, or a socket error. A connection
//  drop the dropwatch reports wakes it too (counted on its node).
static int
s_wait (walcast_t *self, int64_t deadline)
{
    size_t size = wc_topology_size (self->topo);
    zmq_pollitem_t items [size + 1];
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
    void *watch = wc_dropwatch_socket (self->dropwatch);
    if (watch)
        items [nitems] = (zmq_pollitem_t) { watch, 0, ZMQ_POLLIN, 0 };
    //  Start from empty sockets, so that whatever wakes the poll arrived
    //  while we watched (its RTT sample is honest). What that drain read
    //  may be what the caller waits for (every async write in flight
    //  settled, say): then return, or the poll would wait for nothing.
    if (wc_clock_us () - self->quiet_us > WC_SAMPLE_SLACK_US) {
        uint64_t before = self->frames_in;
        int rc = s_drain (self);
        if (rc || self->rx_held || self->frames_in != before)
            return rc;
    }
    int64_t remaining = deadline - wc_clock_ms ();
    if (remaining <= 0)
        return WALCAST_ETIMEOUT;
    int rc = zmq_poll (items, (int) nitems + (watch ? 1 : 0), (long) remaining);
    if (rc < 0 && errno != EINTR)
        return WALCAST_EUNAVAILABLE;
    self->quiet_us = wc_clock_us ();   // watched until now: arrivals are fresh
    //  A drop the watch saw: the node sockets are read too (rc counts the
    //  watch), since an answer that came just before the connection
    //  closed may have come after zmq_poll looked at its socket (it is in
    //  the pipe before the drop is told)
    if (watch && (items [nitems].revents & ZMQ_POLLIN))
        s_watch_read (self);
    if (rc <= 0)
        return wc_clock_ms () >= deadline ? WALCAST_ETIMEOUT : 0;
    return s_drain (self);
}

//  s_send could not send a write (sync, or the async batch), and the
//  primary moved meanwhile: it was not made, and goes to self->write_node
//  instead.
#define S_NOT_SENT_MOVED    1

//  A sync write was sent, and while its answer was awaited the topology
//  moved the primary away from that node and listed it down: no answer is
//  coming (see s_write_wait).
#define S_SENT_REPLACED     2

//  A sync write was sent, and while its answer was awaited the connection
//  it went on dropped: the answer can never come (see s_write_wait).
#define S_SENT_LOST         3

//  A sync write s_send could not send to the node at index before its
//  deadline: say that it was not made.
static void
s_not_sent (walcast_t *self, size_t index, int64_t waited_ms)
{
    snprintf (self->detail, sizeof self->detail, "the write was not sent, so it "
              "was not made: no connection to %s in %lld ms (the node is down or "
              "cannot be reached%s)", s_node (self, index)->addr,
              (long long) waited_ms, self->curve ? ", or its CURVE handshake failed: "
              "check the node's public key and that it trusts this client's key" : "");
}

//  Send self->out to the node at index, waiting (and reading replies) while
//  it cannot take it, until deadline: its socket queues only on a live
//  connection (wc_topology_socket), so until then nothing was sent. A sync
//  write (write: a PUT or DEL of s_write) that could not go says so
//  (EUNAVAILABLE, not ETIMEOUT: its outcome is known), and in follow mode
//  it, or the async batch (sending_batch), goes where the topology moves
//  the primary meanwhile (S_NOT_SENT_MOVED): a primary killed before the
//  broker noticed is the common case. A batch whose writes the topology
//  settled meanwhile (its node moved: s_slot_changed) is not sent.
static int
s_send (walcast_t *self, size_t index, int64_t deadline, bool write)
{
    int64_t started = wc_clock_ms ();
    wc_peer_t *node = s_node (self, index);
    if (!node->sock) {
        wc_topology_reset (self->topo, index);
        if (!node->sock) {
            wc_topology_refusal (self->topo, index, self->detail, sizeof self->detail);
            return WALCAST_EUNAVAILABLE;
        }
    }
    while (true) {
        if (zmq_send (node->sock, self->out.data, self->out.size,
                      ZMQ_DONTWAIT) >= 0)
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return WALCAST_EUNAVAILABLE;
        if ((write || self->sending_batch) && s_follow_mode (self)) {
            s_tick (self);                  // topology pushes move write_node
            if (self->write_node != WC_SELECT_NONE && self->write_node != index)
                return S_NOT_SENT_MOVED;
            if (self->sending_batch && self->batch_count == 0)
                return S_NOT_SENT_MOVED;    // failed, said so: nothing to send
            node = s_node (self, index);    // the tick may have grown the table
            if (!node->sock) {
                wc_topology_refusal (self->topo, index, self->detail,
                                     sizeof self->detail);
                return WALCAST_EUNAVAILABLE;
            }
        }
        zmq_pollitem_t item = { node->sock, 0, ZMQ_POLLOUT, 0 };
        int64_t remaining = deadline - wc_clock_ms ();
        if (remaining <= 0 && write) {
            s_not_sent (self, index, wc_clock_ms () - started);
            return WALCAST_EUNAVAILABLE;
        }
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

//  A fresh request id: one counter, never 0, never reused (2^64 rids).
static uint64_t
s_new_rid (walcast_t *self)
{
    return self->next_rid++;
}

//  A PUT or DEL request for key (and value) asking for opts' acks.
static void
s_write_req (wc_msg_t *req, int type, const void *key, size_t key_len,
             const void *value, size_t value_len, const walcast_write_opts_t *opts)
{
    memset (req, 0, sizeof *req);
    req->type = type;
    req->u.req.key.ptr = key;
    req->u.req.key.len = (uint32_t) key_len;
    req->u.req.value.ptr = value_len ? value : (const void *) "";
    req->u.req.value.len = (uint32_t) value_len;
    req->u.req.acks = (uint8_t) opts->acks;
    req->u.req.ack_timeout_ms = (uint32_t) opts->ack_timeout_ms;
}

//  Send the batch being filled to async_node, waiting for room in its
//  queue until deadline. When it cannot go, its writes fail (said in
//  their outcomes) and the connection is reset. Returns 0, why it could
//  not go, or S_NOT_SENT_MOVED (the batch is kept) when the primary
//  moved while it waited.
static int
s_batch_send_to (walcast_t *self, int64_t deadline)
{
    if (self->batch_count == 0)
        return 0;
    self->out.size = 0;
    int rc = self->batch_max == 1 ? 0       /* a PUT or DEL as it is */
           : wc_write_batch_encode_header (self->batch_rid,
                                           (uint8_t) self->batch_acks.acks,
                                           (uint32_t) self->batch_acks.ack_timeout_ms,
                                           self->batch_count, &self->out);
    if (rc == 0 && msgpack_sbuffer_write (&self->out, self->batch.data,
                                          self->batch.size) != 0)
        rc = WALCAST_ENOMEM;
    //  A node no batch could reach for a whole timeout is down: the batches
    //  after it try once, without waiting (else a load of N lines against
    //  a dead node would take N timeouts), until one goes again
    bool dead = self->async_dead_ms && self->async_dead_node == self->async_node;
    if (rc == 0) {
        self->sending_batch = true;
        rc = s_send (self, self->async_node, dead ? wc_clock_ms () : deadline, false);
        self->sending_batch = false;
    }
    if (rc == S_NOT_SENT_MOVED)
        return rc;
    if (rc == WALCAST_ETIMEOUT) {       /* never sent: say why */
        char why [WC_DETAIL_SIZE];
        if (dead)
            snprintf (why, sizeof why, "no connection to %s for %lld ms (the node is "
                      "down or cannot be reached)", s_node (self, self->async_node)->addr,
                      (long long) (wc_clock_ms () - self->async_dead_ms));
        else
            snprintf (why, sizeof why, "no connection to %s took it within the "
                      "timeout (the node is down or cannot be reached)",
                      s_node (self, self->async_node)->addr);
        s_batch_drop (self, rc, why);
        if (!dead) {
            //  (once: a socket reset at every write would never connect)
            s_node_reset (self, self->async_node, "the connection could not take "
                          "another write and was reset");
            self->async_dead_node = self->async_node;
            self->async_dead_ms = wc_clock_ms () - self->timeout_ms;
        }
        return rc;
    }
    if (rc == 0) {
        self->async_dead_ms = 0;
        self->batch_count = 0;
        self->batch.size = 0;
        self->batch_sent_us = wc_clock_us ();
        if (self->batch.alloc > 4 * S_BATCH_BYTES) {    /* after a big value */
            msgpack_sbuffer_destroy (&self->batch);
            msgpack_sbuffer_init (&self->batch);
        }
        return 0;
    }
    s_batch_drop (self, rc, walcast_strerror (rc));
    if (rc == WALCAST_ETIMEOUT || rc == WALCAST_EUNAVAILABLE)
        s_node_reset (self, self->async_node, "the connection could not take "
                      "another write and was reset");
    return rc;
}

//  Has the primary moved away from the node async writes go to? In
//  follow mode write_node is the primary the table names
//  (s_follow_primary, at every tick and topology refresh), so this
//  costs nothing on the hot path.
static bool
s_async_primary_moved (walcast_t *self)
{
    return s_follow_mode (self) && self->write_node != WC_SELECT_NONE
        && self->write_node != self->async_node;
}

//  Send the batch being filled to the node async writes go to, or to
//  the new primary when the primary moved away from it (before or while
//  the batch waited for a connection) and no write sent to the old one
//  waits for its outcome any more: the writes of a handle are never in
//  flight to two primaries at once. S_NOT_SENT_MOVED: the primary moved,
//  and the batch waits for those outcomes. Otherwise as s_batch_send_to.
static int
s_batch_send (walcast_t *self, int64_t deadline)
{
    for (int moves = 0; self->batch_count > 0 && moves < 4; moves++) {
        if (s_async_primary_moved (self)) {
            if (s_async_sent (self) > 0)
                return S_NOT_SENT_MOVED;
            self->async_node = self->write_node;
        }
        int rc = s_batch_send_to (self, deadline);
        if (rc != S_NOT_SENT_MOVED)
            return rc;
    }
    return self->batch_count > 0 ? S_NOT_SENT_MOVED : 0;
}

//  Is the batch being filled due to go: full, or nothing else in flight
//  and no batch sent in the last S_BATCH_GAP_US (so a write alone goes at
//  once, and a steady trickle goes a few hundred writes a message rather
//  than one or two: every message costs each node a turn)?
static bool
s_batch_due (walcast_t *self, int64_t now_us)
{
    if (self->batch_count >= self->batch_max || self->batch.size >= S_BATCH_BYTES)
        return true;
    return wc_outcomes_inflight (self->outcomes) == self->batch_count
        && now_us - self->batch_sent_us >= S_BATCH_GAP_US;
}

//  A batch of at most one write is sent as a PUT or DEL message, which
//  any node understands: encode it whole into the batch buffer.
static int
s_write_single (walcast_t *self, const wc_write_t *write, uint64_t rid)
{
    wc_msg_t req;
    s_write_req (&req, write->op == WC_OP_PUT ? WC_MSG_PUT : WC_MSG_DEL,
                 write->key.ptr, write->key.len, write->value.ptr, write->value.len,
                 &self->acks);
    req.rid = rid;
    return wc_msg_encode (&req, &self->batch);
}

static int s_async_wait_all (walcast_t *self, int64_t deadline);

//  Add one write to the batch being filled (a new batch when there is
//  none, or when the write asks for other acks than it). 0 or an error
//  (the write was not taken).
static int
s_batch_add (walcast_t *self, int type, const void *key, size_t key_len,
             const void *value, size_t value_len, uint64_t tag, int64_t deadline,
             int64_t now_ms)
{
    //  A batch asks for one acks setting, and stays within S_BATCH_BYTES
    //  unless it is one write alone (so a body always fits the node's
    //  request limit, WC_MAX_REQUEST)
    if (self->batch_count > 0
    && (self->batch_acks.acks != self->acks.acks
        || self->batch_acks.ack_timeout_ms != self->acks.ack_timeout_ms
        || self->batch.size + key_len + value_len + 16 > S_BATCH_BYTES)
    &&  s_batch_send (self, deadline) == S_NOT_SENT_MOVED && self->batch_count > 0)
        //  Kept: the primary moved while it waited for a connection, and
        //  it goes once the writes sent to the old one are settled
        s_async_wait_all (self, deadline);
    wc_write_t write = {
        .op = type == WC_MSG_PUT ? WC_OP_PUT : WC_OP_DEL,
        .key = { (const uint8_t *) key, (uint32_t) key_len },
        .value = { (const uint8_t *) value, type == WC_MSG_PUT ? (uint32_t) value_len : 0 }
    };
    size_t before = self->batch.size;
    uint64_t rid = s_new_rid (self);
    int rc = self->batch_max > 1 ? wc_write_encode (&write, &self->batch)
                                 : s_write_single (self, &write, rid);
    uint64_t first = self->batch_count ? self->batch_rid : rid;
    if (rc == 0)
        rc = wc_outcomes_push_batch (self->outcomes, rid, tag, (uint8_t) self->acks.acks,
                                     first, now_ms);
    if (rc) {
        self->batch.size = before;
        return rc;
    }
    if (self->batch_count == 0) {
        self->batch_rid = rid;
        self->batch_acks = self->acks;
    }
    self->batch_count++;
    return 0;
}

//  A node that never answered on this connection of a CURVE handle: a
//  handshake that fails (a wrong server key, our key not in its trust
//  folder) is silence to a client (libzmq retries it and reports nothing
//  on the socket), so say it may be that.
static void
s_curve_silence (walcast_t *self, size_t index)
{
    const wc_peer_t *node = s_node (self, index);
    snprintf (self->detail, sizeof self->detail, "no answer from %s; with CURVE a "
              "failed handshake looks the same: check the node's public key "
              "(--curve-server, or the broker's TOPOLOGY) and that the node "
              "trusts this client's key", node->addr);
}

//  Wait as s_wait, until deadline, for at most WC_TICK_US, then tick
//  (topology pushes, PINGs): 0 when that slice ended before deadline.
static int
s_wait_ticking (walcast_t *self, int64_t deadline)
{
    int64_t slice = wc_clock_ms () + WC_TICK_US / 1000;
    int rc = s_wait (self, slice < deadline ? slice : deadline);
    if (rc == WALCAST_ETIMEOUT && wc_clock_ms () < deadline)
        rc = 0;
    s_tick (self);
    return rc;
}

//  Wait for the answer to the sync write sent to the node at index, as
//  s_wait, ticking (PINGs; in follow mode topology pushes too): when the
//  topology moves the primary away from that node and lists it down, and
//  a PING since the write was sent found no connection or went
//  unanswered (it died, or is cut off: nothing may ever reset the
//  connection; or it died and runs again, on a connection that knows
//  nothing of the write), waiting out the timeout would tell the caller
//  nothing more than it knows now, that the outcome is unknown:
//  S_SENT_REPLACED. A node whose PINGs are answered all along may yet
//  answer the write, and is waited for: a switchover's old primary, which
//  the broker lists down as soon as it names the target, answers what it
//  held; so does a primary cut off from the broker only. Whoever the
//  primary is, the connection the write went on dropping (the node
//  restarted, or the network broke) means no answer can come on a new
//  one (S_SENT_LOST): the dropwatch sees it close, a PING that found no
//  connection sees a link that broke without closing (or any drop, when
//  the monitor could not start).
static int
s_write_wait (walcast_t *self, size_t index, int64_t deadline)
{
    int rc = s_wait_ticking (self, deadline);
    const wc_peer_t *node = s_node (self, index);
    if (rc || self->rx_held || !node)
        return rc;
    if (s_follow_mode (self) && s_broker_fresh (self)
    &&  self->write_node != WC_SELECT_NONE && self->write_node != index
    &&  node->from_broker && !node->up && node->lapses != self->sync_lapses)
        return S_SENT_REPLACED;
    if (node->drops != self->sync_drops)
        return S_SENT_LOST;
    return 0;
}

//  Send req to the node at index and wait for its reply, until deadline
//  (monotonic ms). On success self->rx holds a reply of type expect
//  (released at the next request). An ERROR reply becomes its code, with
//  its detail in self->detail; a reply of any other type is
//  WALCAST_EPROTO. On a timeout the node's socket is reset (Lazy Pirate)
//  and the node counts as unreachable until it answers a PING. The sync
//  write itself (a PUT or DEL of s_write) waits as s_write_wait says;
//  the requests it makes on the way (a STATUS to learn the primary) as
//  any other.
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
    bool write = self->sending_write
              && (req->type == WC_MSG_PUT || req->type == WC_MSG_DEL);
    if (write)
        s_watch (self, index);
    rc = s_send (self, index, deadline, write);
    if (rc == 0 && write) {
        //  What dropped before the write went was reported before the
        //  send returned: counted now, it is not taken for the write's
        //  connection dropping. (A socket s_send replaced is watched from
        //  now on; a drop in between is for the PINGs to see.)
        s_watch (self, index);
        s_watch_read (self);
    }
    if (rc == 0) {
        self->sync_lapses = s_node (self, index)->lapses;
        self->sync_drops = s_node (self, index)->drops;
    }
    while (rc == 0 && !self->rx_held)
        rc = write ? s_write_wait (self, index, deadline) : s_wait (self, deadline);
    self->sync_rid = 0;
    if (rc == S_NOT_SENT_MOVED || rc == S_SENT_LOST)
        return rc;              // (the connection is a new one already)
    if (rc == S_SENT_REPLACED) {
        s_node_reset (self, index, "the broker lists it down, and another node "
                      "is the primary");
        s_node (self, index)->reachable = false;
        return rc;
    }

    if (rc == WALCAST_ETIMEOUT || rc == WALCAST_EUNAVAILABLE) {
        bool refused = s_node (self, index)->curve_refusal != WC_CURVE_OK;
        if (rc == WALCAST_ETIMEOUT && self->curve && !s_node (self, index)->warm)
            s_curve_silence (self, index);
        if (!refused)
            s_node_reset (self, index, "the connection was reset when another "
                          "request on it timed out");
        s_node (self, index)->reachable = false;
        if (rc == WALCAST_ETIMEOUT && self->saw_malformed)
            rc = WALCAST_EPROTO;    // the node answered, but not readably
        return rc;
    }
    if (rc)
        return rc;
    self->replies++;
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
                  ZMQ_DONTWAIT) >= 0) {
        node->ping_rid = ping.rid;
        node->unsent_us = 0;
        return;
    }
    //  No connection (the socket queues only on one that is up): due
    //  again at the next tick, and a node no PING could reach for as long
    //  as an unanswered one is given counts as unreachable, as it would
    node->ping_sent_us = 0;
    if (node->unsent_us == 0) {
        node->unsent_us = now_us;
        node->lapses++;             // the connection dropped
        node->drops++;
    }
    else
    if (now_us - node->unsent_us >= WC_PING_DEAD_US)
        node->reachable = false;
}

//  Slot index now holds another node, or the same node on a new socket:
//  async writes in flight there are lost, and writes must not follow
//  the old index to whoever took it.
static void
s_slot_changed (walcast_t *self, size_t index)
{
    if (index == self->async_dead_node)
        self->async_dead_ms = 0;        /* another node, or a fresh socket */
    if (index == self->async_node)
        s_async_lose (self, WALCAST_EUNAVAILABLE,
                      "the node moved and its connection was replaced");
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

//  Check item i of a TOPOLOGY: a node_info whose address (and primary,
//  when it names one) a client can connect to. An unusable entry (a
//  broker that let a bad REGISTER through, or a newer one) is skipped
//  and counted, and said at debug level when tell: one bad node must
//  not hide the others (docs/PROTOCOL.md, "TOPOLOGY").
static bool
s_usable_node (walcast_t *self, const msgpack_object *item, uint32_t i,
               wc_node_info_t *info, bool tell)
{
    const char *why = NULL;
    if (wc_node_info_from_object (item, info))
        why = "not a well-formed node_info";
    else
    if (!wc_addr_check ((const char *) info->addr.ptr, info->addr.len, 65533, NULL))
        why = "its addr is not HOST:PORT with a base port of 1..65533";
    else
    if (info->primary.len > 0
    &&  !wc_addr_check ((const char *) info->primary.ptr, info->primary.len,
                        65533, NULL))
        why = "its primary is not HOST:PORT with a base port of 1..65533";
    else
    if (info->curve_key.len > 0
    &&  !wc_certs_is_key ((const char *) info->curve_key.ptr, info->curve_key.len))
        why = "its curve_key is not a CURVE public key (40 characters of Z85)";
    if (!why)
        return true;
    self->topo_skipped++;
    if (tell) {
        char id [WC_MAX_ID + 1] = "", addr [WC_MAX_ADDR + 1] = "";
        if (item->type == MSGPACK_OBJECT_ARRAY && item->via.array.size >= 6) {
            wc_bytes_printable (id, sizeof id, &info->id);
            wc_bytes_printable (addr, sizeof addr, &info->addr);
        }
        s_log (self, "topology: skipped node entry %u (id '%s', addr '%s'): %s "
               "(%llu skipped so far)", i, id, addr, why,
               (unsigned long long) self->topo_skipped);
    }
    return false;
}

//  Apply a decoded TOPOLOGY (a reply, direct, or a push). A push older
//  than what we hold is ignored, unless what we hold is stale (the
//  broker restarted and counts from 1 again). Unusable entries are
//  skipped (s_usable_node); nodes past what the table holds
//  (WC_TOPOLOGY_MAX, when none can be evicted) are left out.
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
    //  Say what was skipped once per directory version, not at every
    //  push and refresh
    bool tell = self->topo_at_us == 0 || msg->u.topology.version != self->topo_version;

    wc_topology_begin (self->topo);
    int rc = 0;
    for (uint32_t i = 0; i < msg->u.topology.count; i++) {
        wc_node_info_t info;
        if (!s_usable_node (self, &msg->u.topology.items [i], i, &info, tell))
            continue;
        size_t index;
        bool moved;
        int arc = wc_topology_apply (self->topo, &info, &index, &moved);
        if (arc == 0 && moved)
            s_slot_changed (self, index);
        if (arc == 0 && info.role == WC_ROLE_PRIMARY && info.up)
            wc_session_primary (&self->session, info.applied_seq, 0);
        if (arc < 0 && arc != WALCAST_ETOOBIG && arc != WALCAST_EPROTO && rc == 0)
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

//  Open the DEALER to the broker unless it is open. 0 or an error.
static int
s_broker_socket (walcast_t *self)
{
    if (self->broker_sock)
        return 0;
    int err = 0;
    self->broker_sock = wc_topology_socket (self->ctx, ZMQ_DEALER,
                                            self->broker_endpoint,
                                            self->broker_ipv6, 0, false,
                                            self->curve ? &self->keys : NULL,
                                            self->broker_key, &err);
    return self->broker_sock ? 0 : err;
}

//  Send req (with a fresh rid) on the broker's DEALER (open) and wait
//  until deadline (ms) for the reply with that rid, dropping anything
//  else (a late reply to an earlier request, a malformed frame). 0 with
//  the reply held in rx; WALCAST_ETIMEOUT, WALCAST_EUNAVAILABLE when it
//  could not be sent, or an encoding error. After a failure the caller
//  closes the socket (Lazy Pirate).
static int
s_broker_ask (walcast_t *self, wc_msg_t *req, int64_t deadline)
{
    s_rx_release (self);
    req->rid = s_new_rid (self);
    self->out.size = 0;
    int rc = wc_msg_encode (req, &self->out);
    if (rc)
        return rc;
    if (zmq_send (self->broker_sock, self->out.data, self->out.size,
                  ZMQ_DONTWAIT) < 0)
        return WALCAST_EUNAVAILABLE;
    while (true) {
        int64_t remaining = deadline - wc_clock_ms ();
        if (remaining <= 0)
            return WALCAST_ETIMEOUT;
        zmq_pollitem_t item = { self->broker_sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, (long) remaining) <= 0)
            continue;
        zmq_msg_init (&self->rx_frame);
        if (zmq_msg_recv (&self->rx_frame, self->broker_sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&self->rx_frame);
            continue;
        }
        bool more = zmq_msg_more (&self->rx_frame);
        msgpack_unpacked_init (&self->rx_unpacked);
        bool ours = !more
                 && wc_msg_decode (zmq_msg_data (&self->rx_frame),
                                   zmq_msg_size (&self->rx_frame),
                                   &self->rx_unpacked, &self->rx) == 0
                 && self->rx.rid == req->rid;
        while (more) {              // drop the rest of a multipart
            zmq_msg_t frame;
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, self->broker_sock, ZMQ_DONTWAIT) < 0)
                more = false;
            else
                more = zmq_msg_more (&frame);
            zmq_msg_close (&frame);
        }
        self->rx_held = true;
        if (ours)
            return 0;
        s_rx_release (self);
    }
}

static int s_broker_error (walcast_t *self);

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
        rc = s_broker_socket (self);
        if (rc)
            return rc;
        wc_msg_t req;
        memset (&req, 0, sizeof req);
        req.type = WC_MSG_TOPOLOGY_GET;
        int64_t attempt = wc_clock_ms () + WC_BROKER_TRY_MS;
        if (attempt > deadline)
            attempt = deadline;
        rc = s_broker_ask (self, &req, attempt);
        if (rc == 0) {
            if (self->rx.type == WC_MSG_TOPOLOGY)
                rc = s_apply_topology (self, &self->rx, true);
            else
            if (self->rx.type == WC_MSG_ERROR)
                rc = s_broker_error (self);
            else
                rc = WALCAST_EPROTO;
            s_rx_release (self);
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
//  now: the monotonic clock in us, which a caller has often just read
//  (a clock read is ~40 ns on the benchmark VM, an async write ~600).
static void
s_tick_at (walcast_t *self, int64_t now)
{
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

static void
s_tick (walcast_t *self)
{
    s_tick_at (self, wc_clock_us ());
}

//  What every synchronous call starts with: read what came in since the
//  last call (late replies, PONGs), then the tick.
static void
s_begin (walcast_t *self)
{
    s_rx_release (self);
    s_batch_send (self, wc_clock_ms () + self->timeout_ms);     /* ours come first */
    s_drain (self);
    s_tick (self);
}

//  One round of PINGs: ping node `only` (or, with WC_SELECT_NONE, every
//  node not known to be down) unless a PING is already in flight, and
//  wait until they have all answered or wait_ms passed. With
//  mark_silent (walcast_nodes, which shows who answers), nodes still
//  silent after a wait of WC_PING_DEAD_US count as unreachable, and a
//  candidate the broker heard lately is waited for too.
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
        bool waiting = false, unsent = false;
        now = wc_clock_us ();
        for (size_t i = 0; i < size; i++) {
            wc_peer_t *node = s_node (self, i);
            if (only != WC_SELECT_NONE && i != only)
                continue;
            if (fresh && !node->up && !(mark_silent && s_heard_candidate (node)))
                continue;           // the broker says down: do not wait for it
            if (node->sock && node->ping_rid == 0 && node->ping_sent_us == 0)
                s_ping (self, i, now);      // its connection is not up yet
            if (node->ping_rid != 0)
                waiting = true;
            else
            if (node->sock && node->ping_sent_us == 0)
                waiting = unsent = true;
        }
        if (!waiting)
            break;
        //  A PING that could not go yet is tried again every millisecond
        int64_t until = deadline;
        if (unsent && wc_clock_ms () + 1 < deadline)
            until = wc_clock_ms () + 1;
        int rc = s_wait (self, until);
        if (rc == WALCAST_ETIMEOUT && until < deadline)
            continue;
        if (rc)
            break;
    }
    if (mark_silent && (int64_t) wait_ms * 1000 >= WC_PING_DEAD_US)
        for (size_t i = 0; i < size; i++) {
            wc_peer_t *node = s_node (self, i);
            if ((node->ping_rid != 0 || (node->sock && node->ping_sent_us == 0))
            &&  (only == WC_SELECT_NONE || i == only))
                node->reachable = false;
        }
}

//  A handle that knows no node yet (no walcast_connect, and no broker or
//  a broker that lists none): true, with the detail saying so.
static bool
s_no_node (walcast_t *self)
{
    if (wc_topology_size (self->topo) > 0)
        return false;
    snprintf (self->detail, sizeof self->detail, "no node known: %s",
              self->has_broker ? "the broker lists none"
                               : "add one first (walcast_connect or "
                                 "walcast_connect_broker)");
    return true;
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

//  The candidates of a read into self->cands; returns how many. When no
//  node fits the preference because none is reachable (or up), the
//  rules are applied again as if all were: trying a node that may
//  answer beats failing without trying. (The primary that session
//  consistency appends does not count as fitting: it is tried only
//  after an ESTALE.) A read that wants the primary gets it or nothing.
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

/* --- server selection --------------------------------------------------- */

/*  What a call waits for. */
typedef enum {
    S_WANT_WRITE,           /* where writes go */
    S_WANT_PRIMARY,         /* the primary: a strong or primary read */
    S_WANT_READ,            /* a candidate of the read preference */
    S_WANT_WATCH            /* a node to watch */
} s_want_t;

static size_t s_watch_pick (walcast_t *self, size_t skip, bool only_reachable);

//  Did node index refuse the sync write being retried, and is its epoch
//  still the one it had then?
static bool
s_refused_by (walcast_t *self, size_t index)
{
    const s_refusals_t *refused = self->refusals;
    const wc_peer_t *node = s_node (self, index);
    for (int i = 0; refused && node && i < refused->count; i++)
        if (strcmp (refused->addr [i], node->addr) == 0
        &&  node->epoch <= refused->epoch [i]
        &&  (refused->retry_ms [i] == 0 || wc_clock_ms () < refused->retry_ms [i]))
            return true;
    return false;
}

//  The primary, when the table names one that is up (as far as a
//  recent TOPOLOGY says); else WC_SELECT_NONE.
static size_t
s_primary_up (walcast_t *self)
{
    size_t primary = s_primary (self);
    if (primary != WC_SELECT_NONE && s_broker_fresh (self)
    &&  s_node (self, primary)->from_broker && !s_node (self, primary)->up)
        return WC_SELECT_NONE;
    return primary;
}

//  A node for want now, or WC_SELECT_NONE. Writes go to the primary
//  that is up; without a broker, when none is known, to the node writes
//  went to so far (a replica's ENOTPRIMARY names the primary), and a
//  handle that talks to one node only (issue 2's mode) writes to it,
//  whatever it is. With a broker, a write waits for the broker (or a
//  replica's STATUS) to name a primary.
static size_t
s_suitable (walcast_t *self, int want)
{
    if (want == S_WANT_WRITE && !s_follow_mode (self))
        return self->write_node;
    if (want == S_WANT_WRITE) {
        size_t primary = s_primary_up (self);
        if (primary != WC_SELECT_NONE && s_refused_by (self, primary))
            primary = WC_SELECT_NONE;
        return primary != WC_SELECT_NONE || self->has_broker || self->refusals
             ? primary : self->write_node;
    }
    if (want == S_WANT_PRIMARY)
        return s_primary_up (self);
    if (want == S_WANT_WATCH)
        return s_watch_pick (self, WC_SELECT_NONE, false);
    size_t n = s_candidates (self);
    return n == 0 || (n == 1 && self->cands_appended) ? WC_SELECT_NONE
                                                      : self->cands [0];
}

//  Nap until something arrives (a topology push, a reply, a PONG) or
//  until `until` (monotonic ms), then read it.
static void
s_nap (walcast_t *self, int64_t until)
{
    size_t size = wc_topology_size (self->topo);
    zmq_pollitem_t items [size + 1];
    size_t n = 0;
    if (self->topo_sub)
        items [n++] = (zmq_pollitem_t) { self->topo_sub, 0, ZMQ_POLLIN, 0 };
    for (size_t i = 0; i < size; i++)
        if (s_node (self, i)->sock)
            items [n++] = (zmq_pollitem_t) { s_node (self, i)->sock, 0, ZMQ_POLLIN, 0 };
    int64_t wait = until - wc_clock_ms ();
    if (wait > 0)
        zmq_poll (items, (int) n, (long) wait);
    s_drain (self);
    s_topology_poll (self);
}

//  "the broker lists 2 nodes up: r1 (replica), r2 (replica)", or what
//  the handle knows without a broker, into buf; then the first candidate
//  the broker lists, which takes no writes yet, and why when its flags
//  say (a promoted one whose disk is full cannot begin its epoch).
static void
s_known_nodes (walcast_t *self, char *buf, size_t size)
{
    size_t nodes = wc_topology_size (self->topo), up = 0;
    bool fresh = s_broker_fresh (self);
    for (size_t i = 0; i < nodes; i++) {
        const wc_peer_t *node = s_node (self, i);
        if (self->has_broker ? (node->from_broker && node->up && fresh)
                             : node->reachable)
            up++;
    }
    int len;
    if (self->has_broker && self->topo_at_us == 0)
        len = snprintf (buf, size, "the broker has not answered");
    else
    if (self->has_broker)
        len = snprintf (buf, size, "the broker lists %zu node%s up", up,
                        up == 1 ? "" : "s");
    else
        len = snprintf (buf, size, "%zu of the %zu node%s known answer%s", up,
                        nodes, nodes == 1 ? "" : "s", up == 1 ? "s" : "");
    for (size_t i = 0, shown = 0; i < nodes && len > 0 && (size_t) len < size; i++) {
        const wc_peer_t *node = s_node (self, i);
        if (self->has_broker && !(node->from_broker && node->up && fresh))
            continue;
        if (!self->has_broker && !node->reachable)
            continue;
        const char *role = node->role == WC_ROLE_PRIMARY ? "primary"
                         : node->role == WC_ROLE_REPLICA ? "replica" : "role unknown";
        len += snprintf (buf + len, size - (size_t) len, "%s%s (%s)",
                         shown == 0 ? ": " : ", ",
                         node->id [0] ? node->id : node->addr, role);
        if (++shown == 4 && up > 4) {
            len += snprintf (buf + len, size - (size_t) len, ", ...");
            break;
        }
    }
    for (size_t i = 0; self->has_broker && fresh && i < nodes; i++) {
        const wc_peer_t *node = s_node (self, i);
        if (len < 0 || (size_t) len >= size || !s_candidate (node))
            continue;
        len += snprintf (buf + len, size - (size_t) len, "; candidate %s takes no "
                         "writes yet: %s", node->id [0] ? node->id : node->addr,
                         node->flags & WC_NODE_STALLED
                         ? "its log cannot be written (its disk is full or failing)"
                         : node->flags & WC_NODE_DIVERGED
                         ? "its log diverged from the cluster's"
                         : "the broker has not promoted it, or it has not begun its "
                           "epoch");
        break;
    }
}

//  Say in the detail what a call waited for in vain (asked: the nodes
//  that fit were asked, and none answered), and what it knows.
static void
s_selection_detail (walcast_t *self, int want, bool asked)
{
    char missing [WC_MAX_ID + 64];
    if (want == S_WANT_WRITE || want == S_WANT_PRIMARY || s_wants_primary (self))
        snprintf (missing, sizeof missing, asked ? "the primary did not answer"
                                                 : "no primary known");
    else
    if (self->read.mode == WC_READ_REPLICA)
        snprintf (missing, sizeof missing, "no replica %s", asked ? "answered" : "is up");
    else
    if (self->read.mode == WC_READ_REGION)
        snprintf (missing, sizeof missing, "no node of region %s %s",
                  self->read.region, asked ? "answered" : "is up");
    else
        snprintf (missing, sizeof missing, asked ? "no node answered" : "no node known");
    char known [WC_DETAIL_SIZE - sizeof missing - 32];
    s_known_nodes (self, known, sizeof known);
    snprintf (self->detail, sizeof self->detail, "%s after %d ms: %s", missing,
              self->timeout_ms, known);
}

//  Server selection: a node for want, waiting for one until deadline
//  (monotonic ms) as MongoDB drivers do (serverSelectionTimeoutMS). The
//  wait polls: topology pushes and PONGs as they come, a TOPOLOGY_GET
//  every WC_SELECT_POLL_MS, and, when no node is known as the primary,
//  the nodes' STATUS (a replica names its primary). WC_SELECT_NONE when
//  the deadline passed without one; the detail then says what was
//  missing and what the handle knows.
static size_t
s_select_wait (walcast_t *self, int want, int64_t deadline)
{
    int64_t next_poll = wc_clock_ms ();
    bool told = false;
    while (true) {
        size_t found = s_suitable (self, want);
        if (found != WC_SELECT_NONE)
            return found;
        int64_t now = wc_clock_ms ();
        if (now >= deadline)
            break;
        if (!told) {
            s_log (self, "selection: waiting up to %lld ms for a node",
                   (long long) (deadline - now));
            told = true;
        }
        if (now >= next_poll) {
            int64_t end = now + WC_BROKER_TRY_MS < deadline ? now + WC_BROKER_TRY_MS
                                                            : deadline;
            if (self->has_broker)
                s_broker_refresh (self, end);
            if ((want == S_WANT_WRITE || want == S_WANT_PRIMARY
                 || s_wants_primary (self))
            &&  s_primary (self) == WC_SELECT_NONE)
                s_learn_primary (self, end);
            next_poll = wc_clock_ms () + WC_SELECT_POLL_MS;
            continue;
        }
        int64_t until = now + WC_SELECT_NAP_MS < deadline ? now + WC_SELECT_NAP_MS
                                                          : deadline;
        s_nap (self, until < next_poll ? until : next_poll);
        s_tick (self);
    }
    s_selection_detail (self, want, false);
    return WC_SELECT_NONE;
}

/* --- the handle -------------------------------------------------------- */

walcast_t *
walcast_new (void)
{
    walcast_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->outcomes = wc_outcomes_new (WC_ASYNC_WINDOW);
    self->ctx = zmq_ctx_new ();
    self->topo = self->ctx ? wc_topology_new (self->ctx) : NULL;
    self->dropwatch = self->ctx ? wc_dropwatch_new (self->ctx) : NULL;
    if (!self->outcomes || !self->ctx || !self->topo || !self->dropwatch) {
        wc_outcomes_destroy (&self->outcomes);
        wc_topology_destroy (&self->topo);
        wc_dropwatch_destroy (&self->dropwatch);
        if (self->ctx)
            zmq_ctx_term (self->ctx);
        free (self);
        return NULL;
    }
    msgpack_sbuffer_init (&self->out);
    msgpack_sbuffer_init (&self->ping_out);
    msgpack_sbuffer_init (&self->batch);
    self->timeout_ms = WC_DEFAULT_TIMEOUT;
    self->batch_max = WALCAST_MAX_BATCH;
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
    //  The writes of the batch being filled go as they would have; and
    //  nothing goes without its outcome, not even at the end
    s_batch_send (self, wc_clock_ms () + self->timeout_ms);
    s_async_lose (self, WALCAST_ETIMEOUT, "the handle was destroyed before "
                  "the answer came");
    s_async_deliver (self);
    wc_topology_destroy (&self->topo);     // closes the socket watched first
    wc_dropwatch_destroy (&self->dropwatch);
    if (self->broker_sock)
        zmq_close (self->broker_sock);
    if (self->topo_sub)
        zmq_close (self->topo_sub);
    zmq_ctx_term (self->ctx);
    msgpack_sbuffer_destroy (&self->out);
    msgpack_sbuffer_destroy (&self->ping_out);
    msgpack_sbuffer_destroy (&self->batch);
    wc_outcomes_destroy (&self->outcomes);
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
    self->detail [0] = 0;
    //  A node named by address has the key given for such nodes: when
    //  that and ours do not go together, say so now, not at every call
    int refusal = wc_topology_curve_check (self->topo, self->server_key);
    char endpoint [WC_MAX_ADDR + 8];
    if (refusal != WC_CURVE_OK
    &&  wc_topology_find (self->topo, host_port) == WC_SELECT_NONE
    &&  wc_topology_endpoint (host_port, 0, endpoint, sizeof endpoint, NULL) == 0) {
        wc_topology_refusal_say (refusal, host_port, host_port, self->detail,
                                 sizeof self->detail);
        return WALCAST_EUNAVAILABLE;
    }
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

//  Do the broker's key and ours go together? When not, say which flag
//  is missing, in the detail, and return true.
static bool
s_broker_refused (walcast_t *self, const char *host_port)
{
    if (self->curve && !self->broker_key [0])
        snprintf (self->detail, sizeof self->detail, "no CURVE key is known for "
                  "the broker %s: give its public certificate with --curve-broker "
                  "(walcast_set_curve_broker)", host_port);
    else
    if (!self->curve && self->broker_key [0])
        snprintf (self->detail, sizeof self->detail, "the broker %s has a CURVE "
                  "key and this client has no key pair: give --curve-cert "
                  "SECRET_CERT (walcast_set_curve_cert)", host_port);
    else
        return false;
    return true;
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
    self->detail [0] = 0;
    if (s_broker_refused (self, host_port))
        return WALCAST_EUNAVAILABLE;

    //  Subscribe first, then ask: no change falls between the two.
    int err = 0;
    int64_t deadline = wc_clock_ms () + self->timeout_ms;
    void *sub = wc_topology_socket (self->ctx, ZMQ_SUB, pub, ipv6, WC_TOPO_HWM, false,
                                    self->curve ? &self->keys : NULL,
                                    self->broker_key, &err);
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
    if (rc == WALCAST_ETIMEOUT && self->curve)
        snprintf (self->detail, sizeof self->detail, "no answer from the broker at "
                  "%s; with CURVE a failed handshake looks the same: check the "
                  "broker's public key (--curve-broker) and that the broker trusts "
                  "this client's key", host_port);
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

//  May the handle's CURVE settings change? Only before it connects: the
//  sockets it has are what they were when they opened. When not, say so.
static int
s_curve_settable (walcast_t *self)
{
    if (wc_topology_size (self->topo) == 0 && !self->has_broker)
        return 0;
    snprintf (self->detail, sizeof self->detail, "CURVE keys are set before "
              "walcast_connect and walcast_connect_broker: the sockets open "
              "already would stay as they are");
    return WALCAST_EINVAL;
}

//  Load the certificate at path for a walcast_set_curve_* setter: 0, or
//  WALCAST_EINVAL with the file and the reason in the detail.
static int
s_curve_load (walcast_t *self, const char *path, bool need_secret,
              wc_certs_keys_t *keys)
{
    self->detail [0] = 0;
    if (!path || !*path) {
        snprintf (self->detail, sizeof self->detail, "no certificate file given");
        return WALCAST_EINVAL;
    }
    int rc = s_curve_settable (self);
    if (rc == 0)
        rc = wc_certs_load (path, need_secret, keys, self->detail,
                            sizeof self->detail);
    return rc;
}

int
walcast_set_curve_cert (walcast_t *self, const char *secret_cert_path)
{
    if (!self)
        return WALCAST_EINVAL;
    wc_certs_keys_t keys;
    int rc = s_curve_load (self, secret_cert_path, true, &keys);
    if (rc)
        return rc;
    self->curve = true;
    self->keys = keys;
    wc_topology_set_curve (self->topo, &self->keys, self->server_key);
    return 0;
}

int
walcast_set_curve_server (walcast_t *self, const char *public_cert_path)
{
    if (!self)
        return WALCAST_EINVAL;
    wc_certs_keys_t keys;
    int rc = s_curve_load (self, public_cert_path, false, &keys);
    if (rc)
        return rc;
    snprintf (self->server_key, sizeof self->server_key, "%s", keys.public_key);
    wc_topology_set_curve (self->topo, self->curve ? &self->keys : NULL,
                           self->server_key);
    return 0;
}

int
walcast_set_curve_broker (walcast_t *self, const char *public_cert_path)
{
    if (!self)
        return WALCAST_EINVAL;
    wc_certs_keys_t keys;
    int rc = s_curve_load (self, public_cert_path, false, &keys);
    if (rc == 0)
        snprintf (self->broker_key, sizeof self->broker_key, "%s", keys.public_key);
    return rc;
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
walcast_set_read (walcast_t *self, walcast_read_t read, const char *region)
{
    if (!self)
        return WALCAST_EINVAL;
    wc_read_pref_t pref;
    memset (&pref, 0, sizeof pref);
    switch (read) {
        case WALCAST_READ_NEAREST:
        case WALCAST_READ_PRIMARY:
        case WALCAST_READ_REPLICA:
            if (region)
                return WALCAST_EINVAL;
            break;
        case WALCAST_READ_REGION:
            if (!region || !*region || strlen (region) > WC_MAX_ID)
                return WALCAST_EINVAL;
            strcpy (pref.region, region);
            break;
        default:
            return WALCAST_EINVAL;
    }
    pref.mode = (int) read;     // wc_read_mode_t has the same values
    self->read = pref;
    return 0;
}

int
walcast_set_consistency (walcast_t *self, walcast_consistency_t consistency)
{
    if (!self || (consistency != WALCAST_SESSION && consistency != WALCAST_EVENTUAL
                  && consistency != WALCAST_STRONG))
        return WALCAST_EINVAL;
    self->consistency = (int) consistency;  // wc_consistency_t: same values
    return 0;
}

int
walcast_read_parse (const char *text, walcast_read_t *read, const char **region)
{
    wc_read_pref_t pref;
    if (!read || !region || wc_select_parse_read (text, &pref))
        return WALCAST_EINVAL;
    *read = (walcast_read_t) pref.mode;
    *region = pref.mode == WC_READ_REGION ? text + strlen ("region=") : NULL;
    return 0;
}

int
walcast_consistency_parse (const char *text, walcast_consistency_t *consistency)
{
    int level;
    if (!consistency || wc_select_parse_consistency (text, &level))
        return WALCAST_EINVAL;
    *consistency = (walcast_consistency_t) level;
    return 0;
}

void
walcast_set_log (walcast_t *self, walcast_log_fn *fn, void *arg)
{
    if (self) {
        self->log = fn;
        self->log_arg = arg;
    }
}

void
walcast_free (void *ptr)
{
    free (ptr);
}

const char *
walcast_version (int *major, int *minor, int *patch)
{
    if (major)
        *major = WALCAST_VERSION_MAJOR;
    if (minor)
        *minor = WALCAST_VERSION_MINOR;
    if (patch)
        *patch = WALCAST_VERSION_PATCH;
    return S_STR (WALCAST_VERSION_MAJOR) "." S_STR (WALCAST_VERSION_MINOR) "."
           S_STR (WALCAST_VERSION_PATCH);
}

void
walcast_set_max_staleness (walcast_t *self, int ms)
{
    if (!self)
        return;
    if (ms > 0 && ms < WALCAST_STALENESS_FLOOR_MS) {
        s_log (self, "max staleness %d ms is below the %d ms staleness floor "
               "(replicas hear from their primary every 100 ms): raised to %d ms",
               ms, WALCAST_STALENESS_FLOOR_MS, WALCAST_STALENESS_FLOOR_MS);
        ms = WALCAST_STALENESS_FLOOR_MS;
    }
    self->max_staleness_ms = ms > 0 ? ms : 0;
}

int
walcast_max_staleness (walcast_t *self)
{
    return self ? self->max_staleness_ms : 0;
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

//  Are these acks a write may ask for? EINVAL when not.
static int
s_check_acks (const walcast_write_opts_t *opts)
{
    if (opts->acks < 0 || (opts->acks > WALCAST_MAX_ACKS && opts->acks != WALCAST_ACKS_ALL)
    ||  opts->ack_timeout_ms < 0 || opts->ack_timeout_ms > WALCAST_MAX_ACK_TIMEOUT)
        return WALCAST_EINVAL;
    return 0;
}

//  How long past the handle's timeout a write with these acks may wait
//  for its reply: the primary's wait for the replicas (ms).
static int
s_ack_wait_ms (const walcast_write_opts_t *opts)
{
    if (opts->acks == 0)
        return 0;
    return opts->ack_timeout_ms > 0 ? opts->ack_timeout_ms : WC_NODE_ACK_TIMEOUT;
}

int
walcast_set_acks (walcast_t *self, int acks, int ack_timeout_ms)
{
    if (!self)
        return WALCAST_EINVAL;
    walcast_write_opts_t opts = { acks, ack_timeout_ms };
    int rc = s_check_acks (&opts);
    if (rc == 0)
        self->acks = opts;
    return rc;
}

//  The reply to a sync write is in rx (rc 0: a WRITE_OK) or was an
//  ERROR (rc): fill *result, note the session, and turn a WRITE_OK that
//  did not meet the acks asked into WALCAST_ENOTREPLICATED.
static int
s_write_done (walcast_t *self, int rc, uint8_t asked, walcast_write_result_t *result)
{
    walcast_write_result_t r;
    memset (&r, 0, sizeof r);
    if (rc == 0) {
        r.pos.epoch = self->rx.u.write_ok.epoch;
        r.pos.seq = self->rx.u.write_ok.seq;
        r.acked = self->rx.u.write_ok.acked;
        wc_session_note (&self->session, r.pos.epoch, r.pos.seq);
        if (!s_acks_met (asked, r.acked)) {
            s_unmet_detail (asked, r.acked, self->detail, sizeof self->detail);
            rc = WALCAST_ENOTREPLICATED;
        }
    }
    else
    if (rc == WALCAST_ENOTREPLICATED)
        r.acked = s_acked_of (self->detail);
    if (result && (rc == 0 || rc == WALCAST_ENOTREPLICATED))
        *result = r;
    return rc;
}

//  Is rc a refusal that says the node is not the primary (so the write
//  was not applied)?
static bool
s_not_primary (int rc)
{
    return rc == WALCAST_ENOTPRIMARY || rc == WALCAST_EFENCED;
}

//  Note node's refusal (rc) of a sync write: it is not sent there again
//  at this epoch, or, for an ENOTPRIMARY, not for S_REFUSED_RETRY_MS.
static void
s_refusal_note (s_refusals_t *refused, const wc_peer_t *node, int rc)
{
    int i = 0;
    while (i < refused->count && strcmp (refused->addr [i], node->addr) != 0)
        i++;
    if (i == S_REFUSERS) {              /* more nodes than that: the oldest */
        i = 0;                          /* ENOTPRIMARY goes (EFENCED stays) */
        for (int k = 1; k < S_REFUSERS; k++)
            if (refused->retry_ms [k] != 0
            &&  (refused->retry_ms [i] == 0 || refused->retry_ms [k] < refused->retry_ms [i]))
                i = k;
    }
    else
    if (i == refused->count)
        refused->count++;
    snprintf (refused->addr [i], sizeof refused->addr [0], "%s", node->addr);
    refused->epoch [i] = node->epoch;
    refused->retry_ms [i] = rc == WALCAST_ENOTPRIMARY ? wc_clock_ms () + S_REFUSED_RETRY_MS
                                                     : 0;
}

//  Node target refused the write as not the primary (rc, its detail in
//  self->detail): where to send it next, waiting until deadline, or
//  WC_SELECT_NONE (the refusal's detail is then back in self->detail).
//  It was not applied, so sending it elsewhere cannot apply it twice.
//  An ENOTPRIMARY that names a node that has not refused it is believed
//  at once. Otherwise (EFENCED, which names nobody, an ENOTPRIMARY that
//  names nobody, or one naming a node that refused already: a
//  switchover's target not promoted yet) it waits, as server selection
//  does, for the topology to name a primary that has not refused it,
//  or one that has, with a newer epoch.
static size_t
s_write_next (walcast_t *self, size_t target, int rc, s_refusals_t *refused,
              int64_t deadline)
{
    char said [WC_DETAIL_SIZE];
    memcpy (said, self->detail, sizeof said);
    wc_peer_t *node = s_node (self, target);
    s_refusal_note (refused, node, rc);
    node->role = WC_ROLE_REPLICA;       // until the topology says otherwise
    char from [WC_MAX_ADDR + 1];
    snprintf (from, sizeof from, "%s", node->addr);

    size_t next = WC_SELECT_NONE, named;
    self->refusals = refused;
    if (rc == WALCAST_ENOTPRIMARY && said [0]
    &&  s_add_node (self, said, false, &named) == 0 && !s_refused_by (self, named))
        next = named;
    if (next == WC_SELECT_NONE) {
        s_log (self, "write: %s refused it (%s%s%s); waiting for another primary",
               from, walcast_errname (rc), said [0] ? ": " : "", said);
        next = s_select_wait (self, S_WANT_WRITE, deadline);
    }
    self->refusals = NULL;
    if (next == WC_SELECT_NONE || wc_clock_ms () >= deadline) {
        memcpy (self->detail, said, sizeof self->detail);
        return WC_SELECT_NONE;
    }
    s_log (self, "write: %s refused it (%s); sending it to %s", from,
           walcast_errname (rc), s_node (self, next)->addr);
    self->write_node = next;
    return next;
}

//  PUT or DEL, synchronously, to the primary, asking for opts' acks. In
//  follow mode a refusal that says the node is not the primary is
//  followed (s_write_next), paced (see s_refusals_t), within the same
//  deadline, and so is a move of the primary while the write
//  could not be sent (no connection: see s_send). Never sent again after
//  a timeout: the node may have applied it (see the top).
static int
s_write (walcast_t *self, int type, const void *key, size_t key_len,
         const void *value, size_t value_len, const walcast_write_opts_t *opts,
         walcast_write_result_t *result)
{
    if (!self)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    int rc = s_check_kv (key, key_len, value, value_len, type == WC_MSG_PUT);
    if (rc == 0)
        rc = s_check_acks (opts);
    if (rc)
        return rc;
    //  Selection waits within the handle's timeout; the reply may take
    //  the primary's wait for the replicas on top of it
    int64_t started = wc_clock_ms ();
    int64_t deadline = started + self->timeout_ms;
    int64_t reply_by = deadline + s_ack_wait_ms (opts);
    s_begin (self);
    wc_msg_t req;
    s_write_req (&req, type, key, key_len, value, value_len, opts);

    size_t target = s_select_wait (self, S_WANT_WRITE, deadline);
    if (target == WC_SELECT_NONE)
        return WALCAST_EUNAVAILABLE;
    s_refusals_t refused;
    refused.count = 0;
    self->sending_write = true;
    while (true) {
        rc = s_request (self, target, &req, WC_MSG_WRITE_OK, reply_by);
        if (rc == S_NOT_SENT_MOVED) {       // not a send: it never left
            s_log (self, "write: not sent to %s (no connection); the primary is "
                   "now %s", s_node (self, target)->addr,
                   s_node (self, self->write_node)->addr);
            target = self->write_node;
            continue;
        }
        if (!s_not_primary (rc) || !s_follow_mode (self))
            break;
        target = s_write_next (self, target, rc, &refused, deadline);
        if (target == WC_SELECT_NONE)
            break;
    }
    self->sending_write = false;
    if (rc == S_SENT_REPLACED) {
        snprintf (self->detail, sizeof self->detail, "the primary moved to %s and the "
                  "broker lists %s down, with the write unanswered after %lld ms: the "
                  "write was sent, so it may or may not have been made",
                  s_node (self, self->write_node)->addr, s_node (self, target)->addr,
                  (long long) (wc_clock_ms () - started));
        rc = WALCAST_ETIMEOUT;
    }
    if (rc == S_SENT_LOST) {
        snprintf (self->detail, sizeof self->detail, "the connection to %s dropped "
                  "with the write unanswered after %lld ms (the node restarted, or "
                  "the network broke): the write was sent, so it may or may not have "
                  "been made", s_node (self, target)->addr,
                  (long long) (wc_clock_ms () - started));
        rc = WALCAST_ETIMEOUT;
    }
    if (rc == WALCAST_ETIMEOUT && !self->detail [0])
        snprintf (self->detail, sizeof self->detail, "no answer from %s within %lld ms: "
                  "the write was sent, so it may or may not have been made",
                  s_node (self, target)->addr, (long long) (reply_by - started));
    rc = s_write_done (self, rc, (uint8_t) opts->acks, result);
    s_rx_release (self);
    return rc;
}

int
walcast_put_ex (walcast_t *self, const void *key, size_t key_len,
                const void *value, size_t value_len, const walcast_write_opts_t *opts,
                walcast_write_result_t *result)
{
    if (!self)
        return WALCAST_EINVAL;
    return s_write (self, WC_MSG_PUT, key, key_len, value, value_len,
                    opts ? opts : &self->acks, result);
}

int
walcast_del_ex (walcast_t *self, const void *key, size_t key_len,
                const walcast_write_opts_t *opts, walcast_write_result_t *result)
{
    if (!self)
        return WALCAST_EINVAL;
    return s_write (self, WC_MSG_DEL, key, key_len, NULL, 0,
                    opts ? opts : &self->acks, result);
}

int
walcast_put (walcast_t *self, const void *key, size_t key_len,
             const void *value, size_t value_len, walcast_pos_t *pos)
{
    walcast_write_result_t result;
    int rc = walcast_put_ex (self, key, key_len, value, value_len, NULL, &result);
    if (rc == 0 && pos)
        *pos = result.pos;
    return rc;
}

int
walcast_del (walcast_t *self, const void *key, size_t key_len,
             walcast_pos_t *pos)
{
    walcast_write_result_t result;
    int rc = walcast_del_ex (self, key, key_len, NULL, &result);
    if (rc == 0 && pos)
        *pos = result.pos;
    return rc;
}

void
walcast_set_outcome_fn (walcast_t *self, walcast_outcome_fn *fn, void *arg)
{
    if (self) {
        self->outcome_fn = fn;
        self->outcome_arg = arg;
    }
}

//  Wait for replies to async writes, as s_wait, until deadline; in
//  follow mode a tick at least every WC_TICK_US meanwhile, so that a
//  topology moving the primary is seen while a dead one is waited for.
static int
s_async_wait (walcast_t *self, int64_t deadline)
{
    if (!s_follow_mode (self))
        return s_wait (self, deadline);
    return s_wait_ticking (self, deadline);
}

//  The primary moved, and writes sent to the old one wait for their
//  outcomes (the batch being filled, if any, waits for them): are they
//  still worth waiting for? Not when the broker lists the old one down
//  (killed, most likely): they are unknown now, and the batch, never
//  sent, can go to the new primary. Nor when rc says they did not come
//  by the deadline and a batch waits: it then has a timeout of its own.
//  Returns true when the writes sent were given up.
static bool
s_async_give_up_old (walcast_t *self, int rc, int64_t *deadline)
{
    if (!s_async_primary_moved (self) || s_async_sent (self) == 0)
        return false;
    const wc_peer_t *old = s_node (self, self->async_node);
    if (rc == 0 && old && old->up)
        return false;
    if (rc && self->batch_count == 0)
        return false;                   /* the caller's timeout, as before */
    char why [96];
    if (rc == 0)
        snprintf (why, sizeof why, "the primary moved and the broker lists this node down");
    else
        snprintf (why, sizeof why, "no answer within %d ms, and the primary moved",
                  self->timeout_ms);
    s_async_lose_sent (self, rc ? rc : WALCAST_EUNAVAILABLE, why);
    wc_topology_reset (self->topo, self->async_node);
    s_async_deliver (self);
    if (rc)
        *deadline = wc_clock_ms () + self->timeout_ms;
    return true;
}

//  Make room in the FIFO: wait for replies while it holds the whole
//  window, handing outcomes over as they come. When nothing comes for
//  the whole timeout, the writes in flight become UNKNOWN (reported)
//  and the call fails: the node does not answer.
static int
s_async_room (walcast_t *self, int64_t deadline)
{
    if (wc_outcomes_size (self->outcomes) >= WC_ASYNC_WINDOW && !self->delivering) {
        //  What would free room; sending may read replies (when the
        //  socket's queue is full), and what they settled must be handed
        //  over before waiting for more, or the wait is for nothing
        s_batch_send (self, deadline);
        s_async_deliver (self);
    }
    while (wc_outcomes_size (self->outcomes) >= WC_ASYNC_WINDOW) {
        if (self->delivering) {
            snprintf (self->detail, sizeof self->detail, "the async window is "
                      "full and outcomes cannot be handed over from inside the "
                      "outcome function");
            return WALCAST_EBUSY;
        }
        if (s_async_give_up_old (self, 0, &deadline)) {
            s_batch_send (self, deadline);
            continue;
        }
        int rc = s_async_wait (self, deadline);
        if (rc) {
            size_t inflight = wc_outcomes_inflight (self->outcomes);
            char why [64];
            snprintf (why, sizeof why, "no answer within %d ms", self->timeout_ms);
            s_async_lose (self, rc == WALCAST_ETIMEOUT ? rc : WALCAST_EUNAVAILABLE,
                          why);
            wc_topology_reset (self->topo, self->async_node);
            s_async_deliver (self);
            const wc_peer_t *node = s_node (self, self->async_node);
            snprintf (self->detail, sizeof self->detail, "%s answered none of the "
                      "%zu writes in flight within %d ms", node ? node->addr : "?",
                      inflight, self->timeout_ms);
            return rc;
        }
        s_async_deliver (self);
    }
    return 0;
}

//  Writes sent and unanswered for a whole timeout (and the acks they may
//  wait for) are unknown now. Their connection may look fine: a node
//  killed and restarted at once at the same address is reconnected by
//  libzmq, and what was in flight on the old connection is gone. Nothing
//  else would end that wait, and every later outcome waits behind them
//  (outcomes come in submission order). Cheap: it looks at the oldest.
static void
s_async_expire (walcast_t *self, int64_t now_ms)
{
    if (s_async_sent (self) == 0)
        return;
    int64_t before = now_ms - self->timeout_ms - self->async_ack_ms;
    size_t lost = wc_outcomes_expire (self->outcomes, before, self->batch_count
                                      ? self->batch_rid : UINT64_MAX, WALCAST_ETIMEOUT,
                                      "no answer within the timeout (the node may have "
                                      "restarted); it may or may not have been applied");
    if (lost)
        s_log (self, "%zu async write%s unanswered for %d ms now unknown", lost,
               lost == 1 ? "" : "s", self->timeout_ms + (int) self->async_ack_ms);
}

//  Has the primary moved away from the node the async writes in flight
//  went to?
static bool
s_async_moved (walcast_t *self)
{
    return wc_outcomes_inflight (self->outcomes) > 0 && s_async_primary_moved (self);
}

//  Send one async PUT or DEL tagged tag. The writes in flight all go to
//  one node; when the primary moves, the next write waits for their
//  outcomes (those unanswered by the deadline become unknown) and goes
//  to the new one, so the writes of one handle are never in flight to
//  two primaries at once. Server selection waits for a primary when
//  none is known (up to the timeout).
static int
s_write_async (walcast_t *self, int type, const void *key, size_t key_len,
               const void *value, size_t value_len, uint64_t tag)
{
    if (!self)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    int rc = s_check_kv (key, key_len, value, value_len, type == WC_MSG_PUT);
    if (rc)
        return rc;
    int64_t now_us = wc_clock_us ();
    int64_t deadline = now_us / 1000 + self->timeout_ms;
    //  Waiting for room is waiting for answers, which may take the ack
    //  timeout of the writes in flight on top
    int64_t room_by = deadline + self->async_ack_ms;
    //  The hot path: settle what the node writes go to has sent back
    //  (every socket is read at the tick, ten times a second). Reading
    //  an empty socket costs libzmq a poll(2): look at most every
    //  S_REPLIES_US, or when the batch is full and a reply may let room.
    s_rx_release (self);
    s_tick_at (self, now_us);
    const wc_peer_t *node = s_node (self, self->async_node);
    if (node && node->sock
    && (now_us - self->replies_us >= S_REPLIES_US
        || wc_outcomes_size (self->outcomes) >= WC_ASYNC_WINDOW)) {
        self->replies_us = now_us;
        while (s_recv_one (self, self->async_node) == 1)
            ;
    }
    s_async_deliver (self);
    s_async_expire (self, now_us / 1000);
    s_async_deliver (self);
    rc = s_async_room (self, room_by);
    if (rc == 0 && s_async_moved (self))
        s_async_wait_all (self, room_by);   // then the new primary takes over
    if (rc == 0 && wc_outcomes_inflight (self->outcomes) == 0) {
        self->async_ack_ms = 0;
        size_t target = s_select_wait (self, S_WANT_WRITE, deadline);
        if (target == WC_SELECT_NONE)
            rc = WALCAST_EUNAVAILABLE;
        else
            self->async_node = target;
    }
    if (rc)
        return rc;

    rc = s_batch_add (self, type, key, key_len, value, value_len, tag, deadline,
                      now_us / 1000);
    if (rc)
        return rc;
    if (s_ack_wait_ms (&self->acks) > self->async_ack_ms)
        self->async_ack_ms = s_ack_wait_ms (&self->acks);
    if (s_batch_due (self, now_us))
        s_batch_send (self, deadline);      /* a failure is the writes' outcome */
    s_async_deliver_but (self, 1);          /* this write's comes at a later call */
    return 0;
}

int
walcast_set_batch (walcast_t *self, int max_writes)
{
    if (!self || max_writes < 1 || max_writes > WALCAST_MAX_BATCH)
        return WALCAST_EINVAL;
    s_batch_send (self, wc_clock_ms () + self->timeout_ms);
    self->batch_max = (uint32_t) max_writes;
    return 0;
}

int
walcast_put_async (walcast_t *self, const void *key, size_t key_len,
                   const void *value, size_t value_len, uint64_t tag)
{
    return s_write_async (self, WC_MSG_PUT, key, key_len, value, value_len, tag);
}

int
walcast_del_async (walcast_t *self, const void *key, size_t key_len, uint64_t tag)
{
    return s_write_async (self, WC_MSG_DEL, key, key_len, NULL, 0, tag);
}

//  Wait until every async write in flight has its outcome, or until
//  deadline, handing outcomes over as they come. What has not answered
//  by then is unknown: said, not dropped, and its connection reset.
//  Returns 0, or the error that ended the wait (WALCAST_ETIMEOUT).
static int
s_async_wait_all (walcast_t *self, int64_t deadline)
{
    int rc = s_batch_send (self, deadline);
    while ((rc == 0 || rc == S_NOT_SENT_MOVED)
       &&  wc_outcomes_inflight (self->outcomes) > 0) {
        if (!s_async_give_up_old (self, 0, &deadline)) {
            rc = s_async_wait (self, deadline);
            s_async_deliver (self);
            if (rc && !s_async_give_up_old (self, rc, &deadline))
                break;
        }
        //  The outcome function may have written: those go now too
        rc = s_batch_send (self, deadline);
    }
    if (rc == S_NOT_SENT_MOVED)
        rc = 0;
    if (rc) {
        char why [64];
        snprintf (why, sizeof why, "no answer within %d ms", self->timeout_ms);
        s_async_lose (self, rc == WALCAST_ETIMEOUT ? rc : WALCAST_EUNAVAILABLE, why);
        wc_topology_reset (self->topo, self->async_node);
        s_async_deliver (self);
    }
    return rc;
}

int
walcast_flush (walcast_t *self, walcast_pos_t *last, uint64_t *acked)
{
    if (!self)
        return WALCAST_EINVAL;
    s_begin (self);
    s_async_deliver (self);
    int64_t deadline = wc_clock_ms () + self->timeout_ms + self->async_ack_ms;
    s_async_wait_all (self, deadline);
    if (last)
        *last = self->last;
    if (acked)
        *acked = self->acked;
    int rc = self->async_err;
    snprintf (self->detail, sizeof self->detail, "%s", rc ? self->async_detail : "");
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
        || rc == WALCAST_ENOMEM || rc == WALCAST_EVERSION || rc == WALCAST_EPERM;
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

//  The part of a node's epoch the session may take into its token: no
//  newer than the primary's (as the broker or the primary says), so that
//  one node claiming an absurd epoch cannot make every later read wait
//  for it.
static uint64_t
s_vouched_epoch (walcast_t *self, uint64_t epoch)
{
    size_t primary = s_primary (self);
    uint64_t known = primary != WC_SELECT_NONE ? s_node (self, primary)->epoch : 0;
    return epoch < known ? epoch : known;
}

//  A node answered a session read ECONFLICT "end=X epoch=F": the token
//  (min_seq, its epoch) is not in its history, F, whose epochs up to the
//  token's end at X. What the handle wrote or read past X was rolled
//  back by a failover: the token goes back to X, and the detail says so.
static void
s_rolled_back (walcast_t *self, size_t index, uint64_t min_seq)
{
    unsigned long long end = 0, epoch = 0;
    if (sscanf (self->detail, "end=%llu epoch=%llu", &end, &epoch) != 2)
        return;                             /* not a node's word on the token */
    uint64_t token_epoch = self->session.epoch;
    wc_session_rollback (&self->session, end, s_vouched_epoch (self, epoch));
    char name [WC_MAX_ADDR + 1];
    const wc_peer_t *node = s_node (self, index);
    snprintf (name, sizeof name, "%s", node->id [0] ? node->id : node->addr);
    snprintf (self->detail, sizeof self->detail, "this session wrote or read up to seq "
              "%llu (epoch %llu), and %s's history (epoch %llu) ends that epoch at seq "
              "%llu: a failover rolled back seqs %llu..%llu; the session goes on from "
              "seq %llu", (unsigned long long) min_seq, (unsigned long long) token_epoch,
              name, epoch, end, end + 1, (unsigned long long) min_seq, end);
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
        req.u.req.min_epoch = wc_session_min_epoch (&self->session, session);
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
            wc_session_read (&self->session, seq, s_vouched_epoch (self,
                             self->rx.u.value.epoch), wc_clock_us ());
            rc = s_take_value (self, index, value, value_len, served);
        }
        else
        if (rc == WALCAST_ECONFLICT)
            s_rolled_back (self, index, min_seq);
        s_rx_release (self);
        return rc;
    }
    return rc;
}

//  One round of a read: server selection, then the candidates in order
//  (and, for a session read that met a node behind, the primary last),
//  until one answers with the value or a final error, within deadline.
static int
s_read_round (walcast_t *self, const void *key, size_t key_len, uint64_t min_seq,
              int64_t deadline, void **value, size_t *value_len,
              walcast_served_t *served)
{
    int rc;
    bool session = self->consistency == WC_CONSISTENCY_SESSION;

    //  Server selection: strong and primary reads get the primary or
    //  nobody; the others a candidate of the preference. Either waits
    //  for one, up to the deadline.
    if (s_select_wait (self, s_wants_primary (self) ? S_WANT_PRIMARY : S_WANT_READ,
                       deadline) == WC_SELECT_NONE)
        return WALCAST_EUNAVAILABLE;
    size_t primary = s_primary (self);
    size_t ncands = s_candidates (self);

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
        if (rc == 0 || rc == WALCAST_ENOTFOUND || rc == WALCAST_ECONFLICT
        ||  s_final_error (rc))
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
walcast_get_ex (walcast_t *self, const void *key, size_t key_len,
                uint64_t min_seq, void **value, size_t *value_len,
                walcast_served_t *served)
{
    if (!self)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    if (!value || !value_len)
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
    //  A round in which no node answered (every candidate down or cut
    //  off: a region whose only node died) is not the end: wait for a
    //  node that fits, as server selection does, until the deadline
    while (true) {
        uint64_t replies = self->replies;
        rc = s_read_round (self, key, key_len, min_seq, deadline, value, value_len,
                           served);
        if ((rc != WALCAST_ETIMEOUT && rc != WALCAST_EUNAVAILABLE)
        ||  self->replies != replies)
            return rc;                  /* a node answered: its answer */
        int64_t now = wc_clock_ms ();
        if (now >= deadline)
            break;
        s_nap (self, now + WC_SELECT_NAP_MS < deadline ? now + WC_SELECT_NAP_MS
                                                       : deadline);
        s_tick (self);
    }
    if (!self->detail [0])              /* (with CURVE it says a key may be why) */
        s_selection_detail (self, s_wants_primary (self) ? S_WANT_PRIMARY : S_WANT_READ,
                            true);
    return rc;
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
    if (!self)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    if (!status)
        return WALCAST_EINVAL;
    s_begin (self);
    if (s_no_node (self))
        return WALCAST_EUNAVAILABLE;
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
        if (self->rx.u.status.role == WC_ROLE_PRIMARY
        &&  (self->rx.u.status.flags & WC_NODE_CANDIDATE))
            role = "candidate";         /* awaits the broker: takes no writes */
        else
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
    if (!self)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    if (!seq || !hash)
        return WALCAST_EINVAL;
    s_begin (self);
    if (s_no_node (self))
        return WALCAST_EUNAVAILABLE;
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
walcast_snapshot (walcast_t *self, uint64_t *seq, uint64_t *bytes)
{
    if (!self || !seq || !bytes)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    int64_t deadline = wc_clock_ms () + self->timeout_ms;
    s_begin (self);
    size_t target = self->first_node;
    if (target == WC_SELECT_NONE)
        target = s_select_wait (self, S_WANT_PRIMARY, deadline);
    if (target == WC_SELECT_NONE)
        return WALCAST_EUNAVAILABLE;
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = WC_MSG_SNAPSHOT;
    int rc = s_request (self, target, &req, WC_MSG_SNAPSHOT_DONE, deadline);
    if (rc == 0) {
        *seq = self->rx.u.snapshot_done.seq;
        *bytes = self->rx.u.snapshot_done.bytes;
    }
    else
    if (rc == WALCAST_ETIMEOUT)
        snprintf (self->detail, sizeof self->detail, "%s did not answer within %d ms",
                  s_node (self, target)->addr, self->timeout_ms);
    s_rx_release (self);
    return rc;
}

//  The ERROR in rx, from the broker: its code, and its text and detail
//  in self->detail (the text only when it says more than the code).
static int
s_broker_error (walcast_t *self)
{
    int err = wc_err_from_wire (self->rx.u.error.code);
    char text [WC_DETAIL_SIZE / 2], detail [WC_DETAIL_SIZE / 2];
    wc_bytes_printable (text, sizeof text, &self->rx.u.error.text);
    wc_bytes_printable (detail, sizeof detail, &self->rx.u.error.detail);
    if (strcmp (text, walcast_strerror (err)) == 0)
        text [0] = 0;
    snprintf (self->detail, sizeof self->detail, "%s%s%s", text,
              text [0] && detail [0] ? ": " : "", detail);
    return err;
}

//  Send the broker a request about node_id (SWITCHOVER, FORGET) and wait
//  for its reply, held in rx. what says, when there is no broker, why
//  one is needed. A node id that cannot be one is EINVAL, with the
//  limit; a broker that does not answer gets a fresh socket (Lazy
//  Pirate). Returns 0 with the reply held, or the error.
static int
s_broker_node_request (walcast_t *self, int type, const char *node_id, const char *what)
{
    if (!node_id || !*node_id || strlen (node_id) > WC_MAX_ID) {
        if (node_id)
            snprintf (self->detail, sizeof self->detail, "the node id is %zu bytes; "
                      "ids are 1..%u bytes", strlen (node_id), WC_MAX_ID);
        return WALCAST_EINVAL;
    }
    if (!self->has_broker) {
        snprintf (self->detail, sizeof self->detail, "%s: connect to it first "
                  "(walcast_connect_broker)", what);
        return WALCAST_EINVAL;
    }
    int64_t deadline = wc_clock_ms () + self->timeout_ms;
    s_begin (self);
    int rc = s_broker_socket (self);
    if (rc)
        return rc;
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = type;
    wc_bytes_t id = { (const uint8_t *) node_id, (uint32_t) strlen (node_id) };
    if (type == WC_MSG_SWITCHOVER)
        req.u.switchover.node_id = id;
    else
        req.u.forget.node_id = id;
    rc = s_broker_ask (self, &req, deadline);
    if (rc == WALCAST_ETIMEOUT || rc == WALCAST_EUNAVAILABLE) {
        zmq_close (self->broker_sock);      // Lazy Pirate: start clean
        self->broker_sock = NULL;
    }
    return rc;
}

int
walcast_switchover (walcast_t *self, const char *node_id, uint64_t *epoch,
                    char *addr, size_t size)
{
    if (!self)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    if (!addr && size > 0)
        return WALCAST_EINVAL;
    int rc = s_broker_node_request (self, WC_MSG_SWITCHOVER, node_id,
                                    "a switchover is the broker's to run");
    if (rc == WALCAST_ETIMEOUT || rc == WALCAST_EUNAVAILABLE)
        snprintf (self->detail, sizeof self->detail, "the broker did not answer "
                  "within %d ms; the switchover may still complete", self->timeout_ms);
    if (rc)
        return rc;
    if (self->rx.type == WC_MSG_SWITCHOVER_DONE) {
        if (epoch)
            *epoch = self->rx.u.switchover_done.epoch;
        if (addr && size > 0)
            wc_bytes_printable (addr, size, &self->rx.u.switchover_done.primary);
    }
    else
    if (self->rx.type == WC_MSG_ERROR)
        rc = s_broker_error (self);
    else
        rc = WALCAST_EPROTO;
    s_rx_release (self);
    return rc;
}

int
walcast_forget (walcast_t *self, const char *node_id)
{
    if (!self)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    int rc = s_broker_node_request (self, WC_MSG_FORGET, node_id,
                                    "the directory is the broker's");
    if (rc)
        return rc;
    if (self->rx.type == WC_MSG_TOPOLOGY)
        rc = s_apply_topology (self, &self->rx, true);  /* without it now */
    else
    if (self->rx.type == WC_MSG_ERROR)
        rc = s_broker_error (self);
    else
        rc = WALCAST_EPROTO;
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
    //  WC_REFRESH_MS of it. A broker that does not answer leaves the
    //  last topology (and the PINGs' view of up and down): the list is
    //  still an answer, and the detail says where it came from
    char unheard [WC_DETAIL_SIZE] = "";
    if (self->has_broker) {
        int64_t started = wc_clock_ms (), end = started + WC_REFRESH_MS;
        int rc = s_broker_refresh (self, end < deadline ? end : deadline);
        //  A broker that never answered left no topology to speak of
        if (rc)
            snprintf (unheard, sizeof unheard, "the broker at %s did not answer in "
                      "%lld ms (%s): %s", self->broker_endpoint + 6,
                      (long long) (wc_clock_ms () - started), walcast_errname (rc),
                      self->topo_at_us ? "the list is its last topology, up and "
                                         "down as the nodes' PINGs say"
                                       : "there is no topology from it yet");
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
        //  A node the broker described, and no longer lists (a restarted
        //  broker forgot it): gone, as a fresh handle would not know it
        if (node->from_broker && !node->listed && !node->pinned)
            continue;
        walcast_node_info_t *info = &nodes [n++];
        memset (info, 0, sizeof *info);
        snprintf (info->id, sizeof info->id, "%s", node->id);
        snprintf (info->region, sizeof info->region, "%s", node->region);
        bool candidate = s_candidate (node);
        snprintf (info->role, sizeof info->role, "%s",
                  candidate ? "candidate"
                : node->role == WC_ROLE_PRIMARY ? "primary"
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
        //  Without the broker's word, up is what the PINGs showed: a node
        //  that never answered one is not up, even before it counts as
        //  unreachable (an unanswered PING takes WC_PING_DEAD_US to). A
        //  candidate the broker lists down whether it runs or not (no
        //  write must go to it): the PINGs say that too
        info->up = (node->from_broker && fresh && !candidate) ? node->up
                 : node->reachable && node->pong_us != 0;
    }
    *count = n;
    memcpy (self->detail, unheard, sizeof self->detail);
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

//  The node a watch follows: the first candidate of the read preference
//  other than skip, never the primary that session adds (a watch
//  carries no token: that primary is no replica). With only_reachable,
//  nodes that do not answer are not candidates either (a watch moving
//  on must not go round dead nodes). WC_SELECT_NONE when there is none.
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

/*  Nodes a watch asks for its next seq before it gives up (ERANGE). */
#define S_WATCH_GONE  8

/*  A watch in progress: the feed (client/feed.c) and the node it follows. */
typedef struct {
    wc_feed_t *feed;
    size_t     current;                     /* the node's index */
    char       watching [WC_MAX_ADDR + 1];  /* its address */
    int64_t    opened_ms;                   /* when the feed moved to it */
    int64_t    lost_ms;                     /* since when no node fits, 0 */
    bool       retried;                     /* the silent node followed again */
    char       gone [S_WATCH_GONE][WC_MAX_ADDR + 1];    /* nodes that do not
                                               hold seq gone_at (ERANGE) */
    int        gone_count;
    uint64_t   gone_at;
} s_watch_t;

//  Name of node index for messages: its id, else its address.
static void
s_watch_name (walcast_t *self, size_t index, char *name, size_t size)
{
    const wc_peer_t *node = s_node (self, index);
    snprintf (name, size, "%s", node ? (node->id [0] ? node->id : node->addr) : "?");
}

//  Where a watch "from now" starts: after the node's applied seq, as its
//  PONG says. Whatever the node applies later reaches the feed, by the
//  stream or by a FETCH.
static int
s_watch_start (walcast_t *self, size_t index, int64_t deadline, uint64_t *from)
{
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = WC_MSG_PING;
    int rc = s_request (self, index, &req, WC_MSG_PONG, deadline);
    if (rc == 0)
        *from = self->rx.u.pong.seq + 1;
    s_rx_release (self);
    return rc;
}

//  Point the feed at node index (it keeps its position).
static int
s_watch_follow (walcast_t *self, s_watch_t *w, size_t index)
{
    char name [WC_MAX_ADDR + 1];
    s_watch_name (self, index, name, sizeof name);
    const wc_peer_t *node = s_node (self, index);
    if (node->curve_refusal != WC_CURVE_OK) {
        wc_topology_refusal (self->topo, index, self->detail, sizeof self->detail);
        return WALCAST_EUNAVAILABLE;
    }
    int rc = wc_feed_open (w->feed, node->addr, name, node->server_key);
    if (rc)
        return rc;
    w->current = index;
    snprintf (w->watching, sizeof w->watching, "%s", node->addr);
    w->opened_ms = wc_clock_ms ();
    return 0;
}

//  Has the watched node gone? It stopped answering PINGs (the handle
//  keeps PINGing while it watches; a node picked while it did not
//  answer gets the time of one PING to prove it lives), the broker says
//  it is down, or its stream, which carries a heartbeat every 100 ms,
//  has been quiet for WC_WATCH_SILENT_MS.
static bool
s_watch_silent (walcast_t *self, const s_watch_t *w)
{
    const wc_peer_t *node = s_node (self, w->current);
    if (!node || strcmp (node->addr, w->watching) != 0)
        return true;            // its slot went to another node
    int64_t now = wc_clock_ms ();
    if (!node->reachable && now - w->opened_ms > WC_PING_DEAD_US / 1000)
        return true;
    if (s_broker_fresh (self) && node->from_broker && !node->up)
        return true;
    return now - wc_feed_heard_ms (w->feed) > WC_WATCH_SILENT_MS;
}

//  The watched node is silent: follow the next candidate, or the same
//  node again, once, when it still answers (its stream may come back on
//  a new subscription), from the same seq. When no node fits (the
//  primary of a --read primary watch died and none is promoted yet), wait
//  for one as server selection does, up to the handle's timeout: the
//  caller comes back every WC_WATCH_LOOK_MS, and the topology moves on.
static int
s_watch_move (walcast_t *self, s_watch_t *w)
{
    size_t next = s_watch_pick (self, w->current, true);
    const wc_peer_t *node = s_node (self, w->current);
    bool same_node = node && strcmp (node->addr, w->watching) == 0;
    char from [WC_MAX_ADDR + 1], to [WC_MAX_ADDR + 1];
    snprintf (from, sizeof from, "%s", w->watching);
    if (same_node)
        s_watch_name (self, w->current, from, sizeof from);
    if (next == WC_SELECT_NONE && same_node && node->reachable && !w->retried) {
        w->retried = true;
        next = w->current;
    }
    if (next == WC_SELECT_NONE) {
        int64_t now = wc_clock_ms ();
        if (w->lost_ms == 0) {
            w->lost_ms = now;
            s_log (self, "watch: %s silent and no other node fits; waiting up to "
                   "%d ms for one", from, self->timeout_ms);
        }
        if (now - w->lost_ms < self->timeout_ms)
            return 0;
        snprintf (self->detail, sizeof self->detail,
                  "%s is silent and no other node fit within %d ms", from,
                  self->timeout_ms);
        return WALCAST_EUNAVAILABLE;
    }
    w->lost_ms = 0;
    if (next != w->current || !same_node)
        w->retried = false;
    s_watch_name (self, next, to, sizeof to);
    s_log (self, "watch: %s silent; following %s from seq %llu", from, to,
           (unsigned long long) wc_feed_next (w->feed));
    if (self->watch_notify && !(same_node && next == w->current))
        self->watch_notify (self->watch_notify_arg, from, to);  /* a move only */
    return s_watch_follow (self, w, next);
}

//  Did the node at addr say it does not hold the watch's next seq?
static bool
s_watch_gone (const s_watch_t *w, const char *addr)
{
    for (int i = 0; i < w->gone_count; i++)
        if (strcmp (w->gone [i], addr) == 0)
            return true;
    return false;
}

//  The watched node no longer holds the next seq (ERANGE): another node
//  that fits and has not said so may still hold it (nodes compact their
//  logs at seqs of their own). Follow it; else (or after S_WATCH_GONE
//  nodes) WC_SELECT_NONE.
static size_t
s_watch_range_next (walcast_t *self, s_watch_t *w)
{
    uint64_t next = wc_feed_next (w->feed);
    if (next != w->gone_at) {           /* about another seq: nobody said */
        w->gone_count = 0;
        w->gone_at = next;
    }
    if (!s_watch_gone (w, w->watching)) {
        if (w->gone_count == S_WATCH_GONE)
            return WC_SELECT_NONE;
        snprintf (w->gone [w->gone_count++], sizeof w->gone [0], "%s", w->watching);
    }
    if (s_scratch (self))
        return WC_SELECT_NONE;
    size_t n = s_select (self);
    if (n > 0 && self->cands_appended)
        n--;
    for (size_t k = 0; k < n; k++)
        if (!s_watch_gone (w, s_node (self, self->cands [k])->addr))
            return self->cands [k];
    return WC_SELECT_NONE;
}

//  Run the feed until fn stops it, timeout_ms passes without a change
//  (< 0: never), a signal interrupts the wait, or it fails.
static int
s_watch_loop (walcast_t *self, s_watch_t *w, walcast_watch_fn *fn, void *arg,
              int timeout_ms)
{
    int64_t deadline = timeout_ms >= 0 ? wc_clock_ms () + timeout_ms : -1;
    while (true) {
        if (self->watch_stop) {
            self->watch_stop = 0;
            return 0;
        }
        long wait = WC_WATCH_LOOK_MS;
        if (deadline >= 0) {
            int64_t remaining = deadline - wc_clock_ms ();
            if (remaining <= 0)
                return 0;
            if (remaining < wait)
                wait = (long) remaining;
        }
        wc_feed_run_t run;
        int rc = wc_feed_run (w->feed, (int) wait, fn, arg, &run);
        size_t other;
        if (rc == WALCAST_ERANGE && (other = s_watch_range_next (self, w)) != WC_SELECT_NONE) {
            char to [WC_MAX_ADDR + 1];
            s_watch_name (self, other, to, sizeof to);
            s_log (self, "watch: %s; following %s from seq %llu", wc_feed_detail (w->feed),
                   to, (unsigned long long) wc_feed_next (w->feed));
            if ((rc = s_watch_follow (self, w, other)) != 0)
                return rc;
            continue;
        }
        if (rc == WALCAST_ERANGE || rc == WALCAST_ECONFLICT || rc == WALCAST_EPERM)
            snprintf (self->detail, sizeof self->detail, "%s", wc_feed_detail (w->feed));
        if (rc)
            return rc;
        if (run.stopped)
            return run.stopped;
        if (run.interrupted) {              /* a signal, or walcast_watch_stop */
            self->watch_stop = 0;
            return 0;
        }
        if (run.delivered > 0 && deadline >= 0)
            deadline = wc_clock_ms () + timeout_ms;
        //  Is the node still there? (PINGs go out and PONGs come in here.)
        s_tick (self);
        //  Two PINGs in a row refused for our key (one could meet a trust
        //  folder caught while a certificate is moved)
        const wc_peer_t *watched = s_node (self, w->current);
        if (watched && watched->key_refusals >= 2) {
            char name [WC_MAX_ADDR + 1];
            s_watch_name (self, w->current, name, sizeof name);
            snprintf (self->detail, sizeof self->detail, "%s refused this watch's key "
                      "(EPERM): it has no role there any more (its certificate was "
                      "removed from the node's trust folder?)", name);
            return WALCAST_EPERM;
        }
        if (!s_watch_silent (self, w)) {
            w->lost_ms = 0;                 /* it works: a later silence starts */
            w->retried = false;             /* over, and may retry it once */
        }
        else
        if ((rc = s_watch_move (self, w)) != 0)
            return rc;
    }
}

uint64_t
walcast_watch_epoch (walcast_t *self)
{
    if (self && self->watch_feed)       /* from fn: the change handed over */
        return wc_feed_epoch (self->watch_feed);
    return self ? self->watch_epoch : 0;
}

int
walcast_watch_resume (walcast_t *self, uint64_t position, uint64_t epoch)
{
    if (!self || position == 0 || epoch == 0)
        return WALCAST_EINVAL;
    self->watch_next = position;
    self->watch_epoch = epoch;
    return 0;
}

void
walcast_watch_stop (walcast_t *self)
{
    if (self)
        self->watch_stop = 1;
}

int
walcast_watch (walcast_t *self, const void *prefix, size_t prefix_len,
               uint64_t *position, walcast_watch_fn *fn, void *arg, int timeout_ms)
{
    if (!self)
        return WALCAST_EINVAL;
    self->detail [0] = 0;
    if (!fn || (prefix_len > 0 && !prefix) || prefix_len > WC_MAX_KEY) {
        if (prefix_len > WC_MAX_KEY)
            snprintf (self->detail, sizeof self->detail, "the prefix is %zu bytes; "
                      "prefixes are 0..%u bytes, as keys are at most %u", prefix_len,
                      WC_MAX_KEY, WC_MAX_KEY);
        return WALCAST_EINVAL;
    }
    s_begin (self);
    int64_t deadline = wc_clock_ms () + self->timeout_ms;
    size_t first = s_select_wait (self, S_WANT_WATCH, deadline);
    if (first == WC_SELECT_NONE)
        return WALCAST_EUNAVAILABLE;
    uint64_t from = position ? *position : 0;
    int rc = 0;
    if (from == 0)
        rc = s_watch_start (self, first, deadline, &from);
    if (rc)
        return rc;
    s_watch_t w;
    memset (&w, 0, sizeof w);
    w.feed = wc_feed_new (self->ctx, prefix, prefix_len, from,
                          self->curve ? &self->keys : NULL, self->log,
                          self->log_arg);
    if (!w.feed)
        return WALCAST_ENOMEM;
    wc_feed_set_halt (w.feed, &self->watch_stop);      /* checked at every change */
    //  Going on where the last watch of this handle stopped: its epoch
    //  there is known, and the history is checked to still hold it (a
    //  failover between the two calls may have rolled it back)
    if (position && *position == self->watch_next)
        wc_feed_resume_epoch (w.feed, self->watch_epoch);
    rc = s_watch_follow (self, &w, first);
    self->watch_feed = w.feed;
    if (rc == 0)
        rc = s_watch_loop (self, &w, fn, arg, timeout_ms);
    self->watch_feed = NULL;
    if (position)
        *position = wc_feed_next (w.feed);
    self->watch_next = rc == WALCAST_ECONFLICT ? 0 : wc_feed_next (w.feed);
    self->watch_epoch = rc == WALCAST_ECONFLICT ? 0 : wc_feed_epoch (w.feed);
    wc_feed_destroy (&w.feed);
    return rc;
}
