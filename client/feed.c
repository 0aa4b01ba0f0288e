/*  feed.c - a change feed that loses nothing (see feed.h).

    The state is a position and a repair in progress:

      next        the seq the caller gets next; everything below it was
                  delivered (or filtered out) exactly once;
      held        stream entries that arrived ahead of next, in seq order
                  (the stream is ordered, so they only ever append),
                  bounded in count and bytes: what does not fit is let go
                  and fetched later;
      want_fetch  a gap is known (an entry ahead of next, or a heartbeat
                  at or past next): a FETCH from next goes out as soon as
                  none is in flight and the backoff allows;
      fetching    the FETCH in flight (its rid, when it was sent).

    Delivery happens in one place, s_advance, which hands over one entry
    at seq next and then whatever held entries it makes next. So the
    stream and the catch-up channel may race each other freely: whatever
    arrives first for a seq is delivered, the other copy is a duplicate.

    The FETCH socket is a DEALER, not a REQ: a late reply to a FETCH we
    gave up on is recognised by its rid and dropped, and a timeout costs
    one socket, not a stuck state.

    History: what was delivered must stay true. Every entry carries the
    epoch of the primary that wrote it, so before the first entry of an
    epoch newer than the last one delivered is handed over, the feed asks
    the node where that last epoch ended in its history (EPOCH_END, as a
    replica does). When it ended before next - 1, a failover rolled back
    entries the caller already has (a deposed primary's, say): the feed
    ends with ECONFLICT and says from which seq to watch again, instead of
    going on as if they had stayed. An entry of an epoch older than the
    last one delivered (a node behind in history) is never delivered.
    The same check runs when a heartbeat shows a newer epoch (the new
    history may be shorter than ours, and no entry would ever reveal it),
    when a resumed feed starts (the history may have changed between two
    calls), and before ERANGE is reported (a node that no longer holds
    next may have rolled back what came before it).
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>
#include "clock.h"
#include "codec.h"
#include "feed.h"
#include "scan.h"
#include "topology.h"

#define S_FETCH_BYTES       (2u * 1024u * 1024u)  /* asked per FETCH */
#define S_FETCH_TIMEOUT_MS  3000
#define S_BACKOFF_MIN_MS    100
#define S_BACKOFF_MAX_MS    3200
#define S_HOLD_MAX          100000                /* entries kept ahead */
#define S_HOLD_MAX_BYTES    (32u * 1024u * 1024u)
#define S_BURST             4096                  /* stream messages per run */
#define S_DETAIL_SIZE       (WC_MAX_TEXT + WC_MAX_ADDR + 128)
#define S_STOP              1           /* the caller's fn asked to stop */
#define S_CHECK             2           /* an entry of a newer epoch: check first */
#define S_BEHIND_MAX_MS     10000       /* a node behind our epoch, at most this long */

/*  A stream message whose entries arrived ahead of next. */
typedef struct {
    uint64_t  seq;          /* the first of its entries we need */
    uint64_t  last;         /* its last seq */
    zmq_msg_t body;         /* the ENTRY or ENTRIES message as received */
} s_held_t;

struct wc_feed {
    void           *ctx;            /* zmq context (not owned) */
    uint8_t         prefix [WC_MAX_KEY];
    size_t          prefix_len;
    char            name [WC_MAX_ADDR + 1];     /* the node, for messages */
    void           *sub;            /* its stream, everything */
    void           *fetch;          /* DEALER to its catch-up port */
    char            fetch_ep [WC_MAX_ADDR + 16];
    bool            fetch_ipv6;
    bool            curve;          /* keys hold our key pair */
    wc_certs_keys_t keys;
    char            server_key [41];    /* the node's, with keys */
    uint64_t        next;           /* next seq to deliver */
    uint64_t        epoch;          /* of the last entry delivered; 0: none yet */
    uint64_t        checked;        /* newest epoch the node's history was
                                       checked to continue ours into */
    bool            check;          /* an EPOCH_END is wanted, or in flight */
    bool            range_pending;  /* ERANGE waits for that check (detail set) */
    bool            checking;       /* ... in flight (rid check_rid) */
    int64_t         behind_ms;      /* since when the node's history is behind
                                       our epoch (no verdict), 0: it is not */
    uint64_t        check_rid;
    int64_t         check_sent_ms;

    /* repair */
    bool            want_fetch;
    bool            fetching;
    uint64_t        fetch_rid;      /* rid of the FETCH in flight (or last) */
    uint64_t        fetch_from;
    int64_t         fetch_sent_ms;
    int64_t         next_fetch_ms;  /* no FETCH before this (backoff) */
    int             backoff_ms;
    uint64_t        repair_from;    /* next when the repair began, 0 none */

    s_held_t       *held;           /* ring of entries ahead of next */
    size_t          held_head, held_len, held_cap, held_bytes;

    int64_t         heard_ms;       /* stream last delivered */
    uint64_t        dropped;        /* malformed messages dropped */
    walcast_log_fn *log;
    void           *log_arg;
    char            detail [S_DETAIL_SIZE];

    /* the run in progress */
    walcast_watch_fn *fn;
    void           *fn_arg;
    wc_feed_run_t  *run;
    const volatile sig_atomic_t *halt;      /* stop before the next change */
    msgpack_sbuffer out;
};

static void
s_log (wc_feed_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_log (wc_feed_t *self, const char *fmt, ...)
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

wc_feed_t *
wc_feed_new (void *ctx, const void *prefix, size_t prefix_len, uint64_t next,
             const wc_certs_keys_t *keys, walcast_log_fn *log, void *log_arg)
{
    if (!ctx || next == 0 || prefix_len > WC_MAX_KEY || (prefix_len && !prefix))
        return NULL;
    wc_feed_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = ctx;
    if (prefix_len)
        memcpy (self->prefix, prefix, prefix_len);
    self->prefix_len = prefix_len;
    self->next = next;
    if (keys) {
        self->curve = true;
        self->keys = *keys;
    }
    self->backoff_ms = S_BACKOFF_MIN_MS;
    self->log = log;
    self->log_arg = log_arg;
    msgpack_sbuffer_init (&self->out);
    return self;
}

/* --- held entries ---------------------------------------------------------- */

static s_held_t *
s_held_at (wc_feed_t *self, size_t k)
{
    return &self->held [(self->held_head + k) % self->held_cap];
}

//  Let go of the oldest held entry.
static void
s_held_pop (wc_feed_t *self)
{
    s_held_t *h = s_held_at (self, 0);
    self->held_bytes -= zmq_msg_size (&h->body);
    zmq_msg_close (&h->body);
    self->held_head = (self->held_head + 1) % self->held_cap;
    self->held_len--;
}

static void
s_held_clear (wc_feed_t *self)
{
    while (self->held_len > 0)
        s_held_pop (self);
    self->held_head = 0;
}

//  Keep a stream message whose entries from seq to last are ahead of
//  next (its body is moved out of *body). Only messages that end past the
//  last held one are kept; the rest, and whatever passes the bounds, are
//  left for a FETCH.
static void
s_held_push (wc_feed_t *self, uint64_t seq, uint64_t last, zmq_msg_t *body)
{
    if (self->held_len > 0 && last <= s_held_at (self, self->held_len - 1)->last)
        return;
    size_t size = zmq_msg_size (body);
    if (self->held_len >= S_HOLD_MAX || self->held_bytes + size > S_HOLD_MAX_BYTES)
        return;
    if (self->held_len == self->held_cap) {
        size_t cap = self->held_cap ? self->held_cap * 2 : 256;
        s_held_t *held = malloc (cap * sizeof *held);
        if (!held)
            return;
        for (size_t k = 0; k < self->held_len; k++)
            held [k] = *s_held_at (self, k);
        free (self->held);
        self->held = held;
        self->held_cap = cap;
        self->held_head = 0;
    }
    s_held_t *h = &self->held [(self->held_head + self->held_len) % self->held_cap];
    h->seq = seq;
    h->last = last;
    zmq_msg_init (&h->body);
    zmq_msg_move (&h->body, body);
    self->held_len++;
    self->held_bytes += size;
}

void
wc_feed_destroy (wc_feed_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wc_feed_t *self = *self_p;
    if (self->held_cap)
        s_held_clear (self);
    free (self->held);
    if (self->sub)
        zmq_close (self->sub);
    if (self->fetch)
        zmq_close (self->fetch);
    msgpack_sbuffer_destroy (&self->out);
    free (self);
    *self_p = NULL;
}

/* --- sockets --------------------------------------------------------------- */

//  (Re)open the DEALER to the catch-up port: Lazy Pirate.
static int
s_fetch_open (wc_feed_t *self)
{
    if (self->fetch)
        zmq_close (self->fetch);
    int err = 0;
    self->fetch = wc_topology_socket (self->ctx, ZMQ_DEALER, self->fetch_ep,
                                      self->fetch_ipv6, 16, false,
                                      self->curve ? &self->keys : NULL,
                                      self->server_key, &err);
    self->fetching = self->checking = false;
    return self->fetch ? 0 : err;
}

int
wc_feed_open (wc_feed_t *self, const char *addr, const char *name,
              const char *server_key)
{
    char stream_ep [WC_MAX_ADDR + 16];
    bool ipv6;
    if (wc_topology_endpoint (addr, 1, stream_ep, sizeof stream_ep, &ipv6)
    ||  wc_topology_endpoint (addr, 2, self->fetch_ep, sizeof self->fetch_ep,
                              &self->fetch_ipv6))
        return WALCAST_EINVAL;
    snprintf (self->name, sizeof self->name, "%s", name && *name ? name : addr);
    snprintf (self->server_key, sizeof self->server_key, "%s",
              server_key ? server_key : "");
    if (self->sub)
        zmq_close (self->sub);
    int err = 0;
    self->sub = wc_topology_socket (self->ctx, ZMQ_SUB, stream_ep, ipv6, 0, false,
                                    self->curve ? &self->keys : NULL,
                                    self->server_key, &err);
    if (!self->sub)
        return err;
    //  Everything: a feed must see every seq to tell a loss from a key
    //  it filters out, and the heartbeats that reveal a lost tail.
    if (zmq_setsockopt (self->sub, ZMQ_SUBSCRIBE, "", 0))
        return WALCAST_EUNAVAILABLE;
    s_held_clear (self);
    self->range_pending = false;        /* the new node answers for itself */
    self->behind_ms = 0;
    self->heard_ms = wc_clock_ms ();
    self->backoff_ms = S_BACKOFF_MIN_MS;
    self->next_fetch_ms = 0;
    //  What the new node has past next is not known yet: ask (a FETCH
    //  either brings it or proves the feed current).
    self->want_fetch = true;
    return s_fetch_open (self);
}

/* --- delivery -------------------------------------------------------------- */

//  Hand the entry at seq next to the caller when its key is under the
//  prefix, and move next on. Returns S_STOP when fn asks to stop (its
//  value is in run->stopped), or when the halt flag is set (the entry
//  stays next; run->interrupted).
static int
s_deliver (wc_feed_t *self, const wc_entry_t *e)
{
    if (self->halt && *self->halt) {
        self->run->interrupted = true;  /* this entry stays next */
        return S_STOP;
    }
    if (self->epoch && e->epoch > self->epoch && e->epoch > self->checked) {
        self->check = true;             /* not before the node's history is */
        return S_CHECK;
    }
    if (e->epoch < self->epoch) {
        self->dropped++;                /* a node behind in history: not ours */
        return S_CHECK;
    }
    self->epoch = e->epoch;
    self->next = e->seq + 1;
    if (e->key.len < self->prefix_len
    ||  (self->prefix_len && memcmp (e->key.ptr, self->prefix, self->prefix_len)))
        return 0;
    int op = e->op == WC_OP_DEL ? 2 : 1;
    self->run->delivered++;
    int stop = self->fn (self->fn_arg, e->seq, op, e->key.ptr, e->key.len,
                         op == 1 ? e->value.ptr : NULL, op == 1 ? e->value.len : 0);
    if (stop == 0)
        return 0;
    self->run->stopped = stop;
    return S_STOP;
}

//  Deliver the entries of a held message that are next. Returns 0 when
//  it is used up (or malformed), 1 when it still holds entries beyond a
//  hole, or the caller's stop.
static int
s_advance_held (wc_feed_t *self, s_held_t *h)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_scan_body_t body;
    wc_msg_t msg;
    wc_entry_t e;
    const uint8_t *raw;
    size_t raw_len;
    int rc = 0;
    if (wc_scan_body (&body, zmq_msg_data (&h->body), zmq_msg_size (&h->body),
                      &storage, &msg) == 0)
        while (rc == 0 && wc_scan_body_next (&body, &e, &raw, &raw_len) == 1) {
            if (e.seq < self->next)
                continue;
            if (e.seq > self->next) {
                h->seq = e.seq;
                rc = 1;
            }
            else
                rc = s_deliver (self, &e);
        }
    msgpack_unpacked_destroy (&storage);
    return rc;
}

//  Deliver e (at seq next), then every held entry it makes next.
static int
s_advance (wc_feed_t *self, const wc_entry_t *e)
{
    int rc = s_deliver (self, e);
    while (rc == 0 && self->held_len > 0) {
        s_held_t *h = s_held_at (self, 0);
        if (h->seq > self->next)
            break;
        if (h->last >= self->next) {
            int held = s_advance_held (self, h);
            if (held == 1)
                break;
            rc = held;
        }
        s_held_pop (self);
    }
    return rc;
}

//  Say when a repair is over: nothing wanted, nothing in flight, nothing
//  held ahead.
static void
s_note_repaired (wc_feed_t *self)
{
    if (self->repair_from && self->held_len == 0 && !self->want_fetch
    &&  !self->fetching) {
        s_log (self, "watch: repaired seqs %llu..%llu from %s",
               (unsigned long long) self->repair_from,
               (unsigned long long) self->next - 1, self->name);
        self->repair_from = 0;
    }
}

//  A gap is known: fetch from next (say so once per repair).
static void
s_gap (wc_feed_t *self, const char *what, uint64_t seq)
{
    if (!self->repair_from) {
        self->repair_from = self->next;
        s_log (self, "watch: gap: expected seq %llu, %s %llu from %s; fetching",
               (unsigned long long) self->next, what, (unsigned long long) seq,
               self->name);
    }
    self->want_fetch = true;
}

/* --- the stream ------------------------------------------------------------ */

//  The entries of a stream message, in order: each next one delivered,
//  the message kept from the first one past a hole (body is moved).
static int
s_on_stream_entries (wc_feed_t *self, wc_scan_body_t *entries, zmq_msg_t *body)
{
    wc_entry_t e;
    const uint8_t *raw;
    size_t raw_len;
    int rc = 0, more;
    while (rc == 0 && (more = wc_scan_body_next (entries, &e, &raw, &raw_len)) == 1) {
        if (e.seq < self->next)
            continue;
        if (e.seq > self->next) {
            s_gap (self, "got", e.seq);
            s_held_push (self, e.seq, entries->last_seq, body);
            return 0;
        }
        rc = s_advance (self, &e);
    }
    if (rc == 0 && more < 0)
        self->dropped++;
    return rc;
}

//  One stream message [topic][body]; body may be moved into held.
static int
s_on_stream (wc_feed_t *self, zmq_msg_t *body)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_msg_t msg;
    wc_scan_body_t entries;
    int kind = wc_scan_body (&entries, zmq_msg_data (body), zmq_msg_size (body),
                             &storage, &msg);
    int rc = 0;
    if (kind < 0)
        self->dropped++;
    else
    if (kind == 0)
        rc = s_on_stream_entries (self, &entries, body);
    else
    if (msg.type == WC_MSG_HEARTBEAT) {
        if (self->epoch && msg.u.heartbeat.epoch > self->epoch
        &&  msg.u.heartbeat.epoch > self->checked)
            self->check = true;         /* a newer history: does it hold ours? */
        if (msg.u.heartbeat.last_seq >= self->next)
            s_gap (self, "heartbeat at", msg.u.heartbeat.last_seq);
    }
    else
        self->dropped++;
    msgpack_unpacked_destroy (&storage);
    return rc;
}

//  Read what the stream holds, at most S_BURST messages. A message that
//  is not [topic][body] is dropped.
static int
s_read_stream (wc_feed_t *self)
{
    int rc = 0;
    for (int n = 0; n < S_BURST && rc == 0; n++) {
        zmq_msg_t topic, body;
        zmq_msg_init (&topic);
        zmq_msg_init (&body);
        int parts = 0;
        bool more = true;
        while (more) {
            zmq_msg_t frame;
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, self->sub, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&frame);
                break;              // parts arrive together: only at 0
            }
            more = zmq_msg_more (&frame);
            if (parts == 0)
                zmq_msg_move (&topic, &frame);
            else
            if (parts == 1)
                zmq_msg_move (&body, &frame);
            zmq_msg_close (&frame);
            parts++;
        }
        if (parts > 0)
            self->heard_ms = wc_clock_ms ();
        if (parts == 2)
            rc = s_on_stream (self, &body);
        else
        if (parts > 0)
            self->dropped++;
        zmq_msg_close (&topic);
        zmq_msg_close (&body);
        if (parts == 0)
            break;
    }
    return rc;
}

/* --- the catch-up channel -------------------------------------------------- */

//  Ask the node where the epoch of the last entry delivered ended in its
//  history (before any entry of a newer one is delivered).
static void
s_send_check (wc_feed_t *self)
{
    int64_t now = wc_clock_ms ();
    if (!self->check || self->checking || self->fetching || now < self->next_fetch_ms)
        return;
    if (!self->fetch && s_fetch_open (self))
        return;
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = WC_MSG_EPOCH_END;
    req.rid = ++self->fetch_rid;
    req.u.epoch_end.epoch = self->epoch;
    self->out.size = 0;
    if (wc_msg_encode (&req, &self->out)
    ||  zmq_send (self->fetch, self->out.data, self->out.size, ZMQ_DONTWAIT) < 0) {
        self->next_fetch_ms = now + self->backoff_ms;
        return;
    }
    self->checking = true;
    self->check_rid = req.rid;
    self->check_sent_ms = now;
}

static void s_backoff (wc_feed_t *self);

//  Where our last epoch ended in the node's history: on with the feed
//  when it holds everything delivered, else the feed ends (ECONFLICT).
static int
s_on_epoch_end (wc_feed_t *self, const wc_msg_t *msg)
{
    uint64_t at = msg->u.epoch_end.epoch, end = msg->u.epoch_end.end_seq;
    uint64_t delivered = self->next - 1;
    if (msg->u.epoch_end.latest < self->epoch) {
        //  Behind our history: no verdict yet. A node that stays behind
        //  (cut off), or an epoch no node has (a mistyped --epoch, one of
        //  another cluster), is said after S_BEHIND_MAX_MS: ERANGE, so
        //  the watch asks another node, or ends saying why
        int64_t now = wc_clock_ms ();
        if (!self->behind_ms)
            self->behind_ms = now;
        if (now - self->behind_ms >= S_BEHIND_MAX_MS) {
            snprintf (self->detail, sizeof self->detail, "%s's history ends at epoch "
                      "%llu, before this watch's epoch %llu, and has not reached it in "
                      "%d ms: the node is behind or cut off, or the epoch is not one "
                      "of this cluster (check --epoch)", self->name,
                      (unsigned long long) msg->u.epoch_end.latest,
                      (unsigned long long) self->epoch, S_BEHIND_MAX_MS);
            return WALCAST_ERANGE;
        }
        s_backoff (self);
        return 0;
    }
    self->behind_ms = 0;
    if (at == self->epoch && end >= delivered) {
        self->check = false;
        self->checked = msg->u.epoch_end.latest;
        self->backoff_ms = S_BACKOFF_MIN_MS;
        self->want_fetch = true;        /* what was set aside meanwhile */
        if (self->range_pending)
            return WALCAST_ERANGE;      /* true history, truly gone: as said */
        return 0;
    }
    uint64_t fork = end < delivered ? end : delivered;
    snprintf (self->detail, sizeof self->detail, "%s's history no longer holds what "
              "this watch delivered: seqs %llu..%llu (epoch %llu) were rolled back by "
              "a failover, and seqs from %llu on are now other changes (or epoch %llu "
              "is not the one this watch's position came with); watch again with "
              "--from %llu", self->name, (unsigned long long) fork + 1,
              (unsigned long long) delivered, (unsigned long long) self->epoch,
              (unsigned long long) fork + 1, (unsigned long long) self->epoch,
              (unsigned long long) fork + 1);
    return WALCAST_ECONFLICT;
}

//  Send a FETCH from next when one is wanted and allowed.
static void
s_send_fetch (wc_feed_t *self)
{
    int64_t now = wc_clock_ms ();
    if (!self->want_fetch || self->fetching || self->check || now < self->next_fetch_ms)
        return;
    if (!self->fetch && s_fetch_open (self))
        return;
    wc_msg_t req;
    memset (&req, 0, sizeof req);
    req.type = WC_MSG_FETCH;
    req.rid = ++self->fetch_rid;
    req.u.fetch.from_seq = self->next;
    req.u.fetch.max_bytes = S_FETCH_BYTES;
    self->out.size = 0;
    if (wc_msg_encode (&req, &self->out)
    ||  zmq_send (self->fetch, self->out.data, self->out.size, ZMQ_DONTWAIT) < 0) {
        self->next_fetch_ms = now + self->backoff_ms;
        return;
    }
    self->fetching = true;
    self->want_fetch = false;
    self->fetch_from = self->next;
    self->fetch_sent_ms = now;
}

//  A reply that is not what we asked for: retry after the backoff.
static void
s_backoff (wc_feed_t *self)
{
    self->want_fetch = true;
    self->next_fetch_ms = wc_clock_ms () + self->backoff_ms;
    if (self->backoff_ms < S_BACKOFF_MAX_MS)
        self->backoff_ms *= 2;
}

//  An ERROR to our FETCH: ERANGE ends the feed, anything else is retried.
static int
s_on_fetch_error (wc_feed_t *self, const wc_msg_t *msg)
{
    int err = wc_err_from_wire (msg->u.error.code);
    char detail [WC_MAX_TEXT + 1];
    wc_bytes_printable (detail, sizeof detail, &msg->u.error.detail);
    if (err == WALCAST_ERANGE) {
        snprintf (self->detail, sizeof self->detail, "%s no longer holds seq %llu%s%s%s",
                  self->name, (unsigned long long) self->fetch_from,
                  *detail ? " (" : "", detail, *detail ? ")" : "");
        if (!self->epoch || self->range_pending)
            return WALCAST_ERANGE;
        //  Was what came before next rolled back? That is the news, not
        //  the seq the node no longer holds: check first
        self->range_pending = true;
        self->check = true;
        return 0;
    }
    s_log (self, "watch: FETCH from %llu refused by %s: %s%s%s; retrying",
           (unsigned long long) self->fetch_from, self->name, walcast_strerror (err),
           *detail ? ": " : "", detail);
    s_backoff (self);
    return 0;
}

//  ENTRIES for our FETCH: deliver them in order, and fetch again while
//  the node has more than we have.
static int
s_on_entries (wc_feed_t *self, const wc_msg_t *msg)
{
    uint32_t count = msg->u.entries.count;
    for (uint32_t i = 0; i < count; i++) {
        wc_entry_t e;
        if (wc_entry_from_object (&msg->u.entries.items [i], &e)
        ||  e.seq != self->fetch_from + i) {
            self->dropped++;
            s_backoff (self);
            return 0;           // a bad reply: what came before it stands
        }
        if (e.seq == self->next) {
            int rc = s_advance (self, &e);
            if (rc)
                return rc;
        }
    }
    self->backoff_ms = S_BACKOFF_MIN_MS;
    uint64_t last = msg->u.entries.last_seq;
    if (count > 0 && last >= self->next)
        self->want_fetch = true;        // more to come: pull again
    else
    if (count == 0 && last >= self->fetch_from)
        s_backoff (self);               // says it has them, sent none
    return 0;
}

//  Read the replies waiting on the catch-up socket; the one to the FETCH
//  in flight is acted on, any other (a late reply to a FETCH we gave up
//  on, or garbage) dropped.
static int
s_read_fetch (wc_feed_t *self)
{
    int rc = 0;
    while (rc == 0 && self->fetch) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, self->fetch, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&frame);
            break;
        }
        bool more = zmq_msg_more (&frame);
        msgpack_unpacked storage;
        msgpack_unpacked_init (&storage);
        wc_msg_t msg;
        bool decoded = !more && wc_msg_decode (zmq_msg_data (&frame),
                                               zmq_msg_size (&frame), &storage, &msg) == 0;
        if (decoded && self->checking && msg.rid == self->check_rid) {
            self->checking = false;
            if (msg.type == WC_MSG_EPOCH_END_REPLY)
                rc = s_on_epoch_end (self, &msg);
            else
            if (msg.type == WC_MSG_ERROR
            &&  wc_err_from_wire (msg.u.error.code) == WALCAST_EPERM) {
                //  Our key may not ask (a node before readers could): the
                //  history cannot be checked, so nothing more is delivered
                char detail [WC_MAX_TEXT + 1];
                wc_bytes_printable (detail, sizeof detail, &msg.u.error.detail);
                snprintf (self->detail, sizeof self->detail, "%s refused this watch's "
                          "history check (EPOCH_END): %s; its key needs a role that "
                          "may ask it", self->name, detail);
                rc = WALCAST_EPERM;
            }
            else
                s_backoff (self);       /* an error (diverged, say): ask again */
        }
        else
        if (decoded && self->fetching && msg.rid == self->fetch_rid) {
            self->fetching = false;
            if (msg.type == WC_MSG_ENTRIES)
                rc = s_on_entries (self, &msg);
            else
            if (msg.type == WC_MSG_ERROR)
                rc = s_on_fetch_error (self, &msg);
            else
                s_backoff (self);
        }
        else
            self->dropped++;
        msgpack_unpacked_destroy (&storage);
        zmq_msg_close (&frame);
        while (more) {                  // the rest of a multipart: dropped
            zmq_msg_init (&frame);
            more = zmq_msg_recv (&frame, self->fetch, ZMQ_DONTWAIT) >= 0
                && zmq_msg_more (&frame);
            zmq_msg_close (&frame);
        }
    }
    return rc;
}

//  A FETCH unanswered in time: a new socket (a late reply would come on
//  the old one), and again after the backoff.
static void
s_check_fetch_timeout (wc_feed_t *self)
{
    if (self->checking && wc_clock_ms () - self->check_sent_ms >= S_FETCH_TIMEOUT_MS) {
        s_log (self, "watch: EPOCH_END unanswered by %s for %d ms; reconnecting",
               self->name, S_FETCH_TIMEOUT_MS);
        self->checking = false;
        s_fetch_open (self);
        s_backoff (self);
        return;
    }
    if (!self->fetching
    ||  wc_clock_ms () - self->fetch_sent_ms < S_FETCH_TIMEOUT_MS)
        return;
    s_log (self, "watch: FETCH from %llu unanswered by %s for %d ms; reconnecting",
           (unsigned long long) self->fetch_from, self->name, S_FETCH_TIMEOUT_MS);
    s_fetch_open (self);
    s_backoff (self);
}

/* --- the run --------------------------------------------------------------- */

void
wc_feed_set_halt (wc_feed_t *self, const volatile sig_atomic_t *halt)
{
    self->halt = halt;
}

int
wc_feed_run (wc_feed_t *self, int wait_ms, walcast_watch_fn *fn, void *arg,
             wc_feed_run_t *run)
{
    memset (run, 0, sizeof *run);
    if (!self->sub)
        return WALCAST_EUNAVAILABLE;
    self->fn = fn;
    self->fn_arg = arg;
    self->run = run;
    s_send_check (self);
    s_send_fetch (self);
    zmq_pollitem_t items [2] = {
        { self->sub, 0, ZMQ_POLLIN, 0 },
        { self->fetch, 0, ZMQ_POLLIN, 0 }
    };
    int n = zmq_poll (items, self->fetch ? 2 : 1, wait_ms);
    if (n < 0) {
        if (errno != EINTR)
            return WALCAST_EUNAVAILABLE;
        run->interrupted = true;
        return 0;
    }
    //  The catch-up reply first: it moves next on, so that the stream
    //  entries read after it are more likely next than ahead.
    int fetched = s_read_fetch (self);
    int rc = fetched == S_CHECK ? 0 : fetched;
    if (rc == 0)
        rc = s_read_stream (self);
    if ((fetched == S_CHECK || rc == S_CHECK) && !self->check)
        s_backoff (self);               /* a node behind in history: later */
    s_check_fetch_timeout (self);
    s_send_check (self);
    s_send_fetch (self);
    s_note_repaired (self);
    return rc == S_STOP || rc == S_CHECK ? 0 : rc;
}

uint64_t
wc_feed_epoch (wc_feed_t *self)
{
    return self->epoch;
}

void
wc_feed_resume_epoch (wc_feed_t *self, uint64_t epoch)
{
    if (epoch == 0 || self->epoch != 0)
        return;
    self->epoch = epoch;
    self->check = true;
}

uint64_t
wc_feed_next (wc_feed_t *self)
{
    return self->next;
}

int64_t
wc_feed_heard_ms (wc_feed_t *self)
{
    return self->heard_ms;
}

const char *
wc_feed_detail (wc_feed_t *self)
{
    return self->detail;
}
