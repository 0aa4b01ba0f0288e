/*  replica.c - the replica role: follow a primary, repair every gap.

    The link to the primary is a state machine with three states:

      CONNECTING   just started (or reconnected): a FETCH from applied+1 is
                   out to learn where the primary is;
      CATCHING_UP  behind: FETCH batch after batch until applied reaches
                   the primary's last seq, keeping live entries meanwhile;
      STREAMING    up to date: apply each stream entry as it arrives.

    The one idea that makes it lossless: the stream (PUB/SUB) is only a
    fast path. Every entry must be exactly applied+1; whatever else arrives
    is either old (ignored) or proof of a hole (buffered, and the hole is
    fetched over the catch-up channel). A heartbeat whose last seq is ahead
    of applied proves a lost tail on an idle stream. We subscribe before
    the first FETCH, so nothing published meanwhile is missed (the late
    joiner problem), and entries buffered during a catch-up are applied
    once the fetches reach them.

    A downloaded snapshot is read and checked on a thread of its own
    (wc_engine_install_read) while the loop goes on answering, then
    installed from the loop. wc_replica_tick owns every timeout: a FETCH
    unanswered in time closes the REQ socket and opens a fresh one (Lazy
    Pirate), with a backoff that doubles up to a few seconds; it also
    prints catch-up progress.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#if defined (__GLIBC__)
#include <malloc.h>
#endif
#include "applylag.h"
#include "acker.h"
#include "cluster.h"
#include "download.h"
#include "log.h"
#include "node.h"
#include "replica.h"
#include "scan.h"
#include "sock.h"

typedef enum {
    WC_LINK_CONNECTING,
    WC_LINK_CATCHING_UP,
    WC_LINK_STREAMING
} wc_link_state_t;

#define FETCH_BYTES        (2u * 1024u * 1024u)   /* asked per FETCH */
#define FETCH_TIMEOUT_MS   3000                   /* at least; grows with the RTT */
#define FETCH_RESENDS      3                      /* resends before a new socket */
#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     3200
#define BUFFER_MAX_ENTRIES 200000                 /* stream messages kept while behind */
#define BUFFER_MAX_BYTES   (64u * 1024u * 1024u)
#define STREAM_BURST       4096                   /* stream messages per turn */
#define SILENCE_MS         3000                   /* primary silent: say so */
#define RESUBSCRIBE_MAX_MS 60000                  /* longest wait between resubscribes */
#define STALL_RETRY_MS     1000                   /* log not writable: retry this often */
#define STALE_RETRY_MS     1000                   /* upstream of an old epoch: ask again */
#define TRIM_AFTER_ENTRIES 100000                 /* a catch-up this long gives memory back */
#define INSTALL_POLL_MS    10                     /* look for the install's end this often */
#define FETCH_KEEP_MAX     32768                  /* entries of a FETCH reply read once:
                                                     a 2 MiB reply of 100-byte values
                                                     holds ~15,500 */

/*  What the request in flight on the REQ socket asks. */
typedef enum {
    WC_ASK_FETCH,           /* entries from a seq */
    WC_ASK_EPOCH_END,       /* where our latest epoch ends in the upstream's history */
    WC_ASK_SNAPSHOT         /* a chunk of the upstream's snapshot */
} wc_ask_t;

/*  A stream message kept for later (its entries arrived ahead of
    applied+1). */
typedef struct {
    uint64_t  seq;        /* the first of its entries we need */
    uint64_t  last;       /* its last seq */
    zmq_msg_t body;       /* the ENTRY or ENTRIES message as received */
} s_buffered_t;

struct wc_replica {
    wc_node_t      *node;
    char            primary [WC_MAX_ADDR + 1];   /* HOST:PORT, as configured */
    char            stream_ep [WC_MAX_ADDR + 16];
    char            catchup_ep [WC_MAX_ADDR + 16];
    char            service_ep [WC_MAX_ADDR + 16];
    zsock_t        *sub;              /* the primary's stream */
    zsock_t        *req;              /* the primary's catch-up socket */
    wc_acker_t     *acker;            /* ACKs to the primary's service socket */
    uint64_t        ack_wanted;       /* the last seq of the stream messages that
                                         asked for a prompt ACK (a write waits) */
    wc_link_state_t state;

    /* the history check (see "epochs" below) */
    bool            agreed;           /* our log is a prefix of the upstream's */
    uint64_t        agreed_epoch;     /* the upstream's latest epoch, then */
    uint64_t        want_epoch;       /* follow no upstream older than this */
    bool            stale_logged;     /* said the upstream is too old, or behind */
    bool            foreign;          /* the upstream's last answer: it is of another
                                         cluster (reads are refused meanwhile) */
    uint64_t        closed_epoch;     /* agreed with an upstream past our latest */
    uint64_t        closed_end;       /* epoch: its epochs <= closed_epoch end at
                                         closed_end, so an entry of those epochs
                                         past it is stale (0: no such bound) */
    wc_ask_t        ask;              /* what the request in flight asks */

    /* a snapshot being pulled (the upstream's log no longer has our next seq) */
    wc_download_t  *download;
    int64_t         download_start_ms;
    int64_t         next_download_log_ms;

    /* the downloaded snapshot being read and checked, on a thread of its own
       (wc_engine_install_read): the loop goes on answering meanwhile, sends
       no FETCH, and installs it (wc_engine_install_apply) once done */
    bool            installing;       /* the thread runs, or has ended unjoined */
    pthread_t       install_thread;
    atomic_bool     install_done;     /* set by the thread as it ends */
    int             install_rc;       /* its result, once done */
    wc_engine_install_t *install;     /* what it read, once done (rc 0) */
    int64_t         install_start_ms;
    int64_t         next_install_log_ms;

    /* the FETCH in flight */
    bool            fetching;
    uint64_t        fetch_rid;
    uint64_t        fetch_from;
    int64_t         fetch_sent_ms;
    int64_t         next_fetch_ms;    /* no FETCH before this (backoff) */
    bool            want_fetch;       /* a hole is known: fetch when allowed */
    int             backoff_ms;

    /* what we know of the primary */
    uint64_t        primary_seq;      /* its last seq, as last heard */
    uint64_t        hb_seq;           /* last seq of its latest heartbeat */
    uint64_t        hb_clock_ms;      /* its clock in that heartbeat */
    uint64_t        fresh_clock_ms;   /* primary clock of the newest heartbeat
                                         whose seq we had applied: our data is
                                         at least as fresh as that instant */
    int64_t         heard_ms;         /* when it last said anything */
    int64_t         stream_heard_ms;  /* when the stream last delivered */
    bool            stream_live;      /* this subscription delivered once */
    int64_t         resubscribed_ms;  /* when the stream was last rebuilt */
    int64_t         resubscribe_ms;   /* silence that triggers a rebuild; doubles
                                         while the stream stays silent */
    int64_t         fetch_rtt_ms;     /* last FETCH round trip */
    int             timeouts;         /* FETCHes unanswered in a row */
    bool            silent_logged;

    /* the stamps of stream messages not yet applied (the lag histogram) */
    wc_applylag_t   applylag;

    /* live entries that arrived ahead of applied+1, in seq order */
    s_buffered_t   *buf;
    size_t          buf_head, buf_len, buf_cap;
    size_t          buf_bytes;

    /* the current catch-up, for its log lines */
    bool            catching;
    uint64_t        catch_start_seq;  /* applied when it began */
    int64_t         catch_start_ms;
    int64_t         next_progress_ms;

    bool            diverged;         /* upstream is behind us: stop following */
    int64_t         stall_retry_ms;   /* log not writable: next retry; 0 when fine */
    uint64_t        stall_seq;        /* the seq held when it stopped applying */
    uint64_t        stream_high;      /* highest entry seq the stream delivered */
    uint64_t        ask_from;         /* the next FETCH's from, when not applied+1 */
    uint64_t        gaps;             /* holes found */
    uint64_t        dropped;          /* malformed messages from the primary */
    msgpack_unpacked unpacked;
    wc_scan_kept_t *kept;             /* a stream message's entries, read once
                                         (WC_MAX_STREAM_COUNT of them) */
    wc_scan_kept_t *fetch_kept;       /* a FETCH reply's, read once: grown to */
    uint32_t        fetch_kept_cap;   /* the replies' counts, freed after a catch-up */
    msgpack_sbuffer entry_buf;        /* an entry encoded for the WAL, when the
                                         bytes we got were not canonical */
    msgpack_sbuffer req_buf;          /* an encoded FETCH */
};

/* --- sockets ------------------------------------------------------------- */

/*  Split "HOST:PORT" and build the stream and catch-up endpoints. */
static int
s_endpoints (wc_replica_t *self, const char *primary)
{
    const char *colon = strrchr (primary, ':');
    if (!colon || colon == primary || strlen (primary) > WC_MAX_ADDR)
        return WALCAST_EINVAL;
    char *end = NULL;
    long port = strtol (colon + 1, &end, 10);
    if (*end || port < 1 || port > 65533)
        return WALCAST_EINVAL;
    int host_len = (int) (colon - primary);
    snprintf (self->primary, sizeof self->primary, "%s", primary);
    snprintf (self->stream_ep, sizeof self->stream_ep, "tcp://%.*s:%ld",
              host_len, primary, port + 1);
    snprintf (self->catchup_ep, sizeof self->catchup_ep, "tcp://%.*s:%ld",
              host_len, primary, port + 2);
    snprintf (self->service_ep, sizeof self->service_ep, "tcp://%.*s:%ld",
              host_len, primary, port);
    return 0;
}

/*  Our side of the upstream's stream and catch-up sockets: what an
    upstream can make us hold is bounded in bytes too (runtime/sock.h). */
static const wc_sock_spec_t s_sub_spec = {
    .type = ZMQ_SUB, .name = "upstream stream", .max_in = WC_MAX_STREAM_MESSAGE,
    .max_out = WC_MAX_SUBSCRIPTION, .budget = WC_NODE_STREAM_BUDGET, .min_hwm = 16
};
static const wc_sock_spec_t s_req_spec = {
    .type = ZMQ_REQ, .name = "upstream catch-up", .max_in = WC_MAX_MESSAGE,
    .max_out = WC_MAX_CATCHUP_REQUEST, .budget = WC_NODE_CATCHUP_BUDGET, .min_hwm = 2
};

static zsock_t *
s_connect (const wc_replica_t *self, const wc_sock_spec_t *spec, const char *endpoint)
{
    char why [512];
    zsock_t *sock = wc_sock_connect_to (spec, endpoint, self->node->upstream_key, why,
                                        sizeof why);
    if (!sock) {
        wc_log_error ("%s", why);
        return NULL;
    }
    if (spec->type == ZMQ_SUB)
        zsock_set_subscribe (sock, "");
    if (spec->type == ZMQ_REQ) {
        /*  Resend on the same socket when a FETCH goes unanswered (the
            connection may still be coming up over a slow link); stale
            replies are told apart by ZeroMQ's request ids. */
        zsock_set_req_relaxed (sock, 1);
        zsock_set_req_correlate (sock, 1);
    }
    return sock;
}

/*  Lazy Pirate: drop the REQ socket (and whatever it was waiting for)
    and open a fresh one. */
static void
s_reset_req (wc_replica_t *self)
{
    zsock_destroy (&self->req);
    self->req = s_connect (self, &s_req_spec, self->catchup_ep);
    self->fetching = false;
}

/*  The stream has been silent too long. libzmq does not reconnect a
    connection it dropped for a protocol error (an oversized frame, say),
    so open a fresh subscription, and ask the catch-up channel where the
    primary is: a FETCH either finds entries or proves we are current. */
static void
s_resubscribe (wc_replica_t *self, int64_t now)
{
    self->resubscribed_ms = now;
    /*  A new subscription takes several one-way trips to deliver: on a slow
        link, rebuilding it too often would keep it from ever starting. */
    self->resubscribe_ms *= 2;
    if (self->resubscribe_ms > RESUBSCRIBE_MAX_MS)
        self->resubscribe_ms = RESUBSCRIBE_MAX_MS;
    zsock_t *sub = s_connect (self, &s_sub_spec, self->stream_ep);
    if (sub) {
        zsock_destroy (&self->sub);
        self->sub = sub;
        self->stream_live = false;
    }
    self->want_fetch = true;
}

/* --- the buffer of early entries ----------------------------------------- */

static s_buffered_t *
s_buf_at (wc_replica_t *self, size_t i)
{
    return &self->buf [(self->buf_head + i) % self->buf_cap];
}

static void
s_buf_pop (wc_replica_t *self)
{
    s_buffered_t *front = s_buf_at (self, 0);
    self->buf_bytes -= zmq_msg_size (&front->body);
    zmq_msg_close (&front->body);
    self->buf_head = (self->buf_head + 1) % self->buf_cap;
    self->buf_len--;
}

/*  Keep a message whose entries from seq to last arrived early. They
    come in seq order on one stream, so the buffer stays sorted; one that
    ends no later than the last kept, or that would pass the limits, is
    let go (a FETCH covers it). Takes the message when kept. */
static void
s_buf_push (wc_replica_t *self, uint64_t seq, uint64_t last, zmq_msg_t *body)
{
    if (self->buf_len == BUFFER_MAX_ENTRIES
    ||  self->buf_bytes + zmq_msg_size (body) > BUFFER_MAX_BYTES)
        return;
    if (self->buf_len > 0 && last <= s_buf_at (self, self->buf_len - 1)->last)
        return;
    if (self->buf_len == self->buf_cap) {
        size_t cap = self->buf_cap ? self->buf_cap * 2 : 1024;
        s_buffered_t *grown = (s_buffered_t *) malloc (cap * sizeof *grown);
        if (!grown)
            return;
        for (size_t i = 0; i < self->buf_len; i++) {
            grown [i].seq = s_buf_at (self, i)->seq;
            grown [i].last = s_buf_at (self, i)->last;
            zmq_msg_init (&grown [i].body);
            zmq_msg_move (&grown [i].body, &s_buf_at (self, i)->body);
            zmq_msg_close (&s_buf_at (self, i)->body);
        }
        free (self->buf);
        self->buf = grown;
        self->buf_cap = cap;
        self->buf_head = 0;
    }
    s_buffered_t *slot = s_buf_at (self, self->buf_len);
    slot->seq = seq;
    slot->last = last;
    zmq_msg_init (&slot->body);
    zmq_msg_move (&slot->body, body);
    self->buf_len++;
    self->buf_bytes += zmq_msg_size (&slot->body);
}

/*  Let every kept entry go (they were the upstream's before a fork). */
static void
s_buf_clear (wc_replica_t *self)
{
    while (self->buf_len > 0)
        s_buf_pop (self);
}

/* --- applying ----------------------------------------------------------- */

/*  What we have received: staged in the engine, written, or applied. */
static uint64_t
s_have (const wc_replica_t *self)
{
    return wc_node_received (self->node);
}

/*  Is the entry of the history we agreed on with the upstream? Not when
    the upstream moved to a newer epoch since (we must ask again first),
    nor when it is of an epoch the upstream's answer closed before its
    seq (it was sent before the upstream truncated: stale). */
static bool
s_in_history (const wc_replica_t *self, const wc_entry_t *entry)
{
    if (!self->agreed || entry->epoch > self->agreed_epoch)
        return false;
    return !(self->closed_epoch && entry->epoch <= self->closed_epoch
             && entry->seq > self->closed_end);
}

/*  Take the next entry: stage it in the engine, with the bytes it came
    in when they are canonical (protocol/scan.h), else encoded again, so
    what we store is always canonical. It is written at the end of the
    turn (or of the FETCH reply), applied and republished then, or once
    synced under --fsync always (storage/engine.h). */
static int
s_apply (wc_replica_t *self, const wc_entry_t *entry, const uint8_t *raw,
         size_t raw_len)
{
    wc_node_t *node = self->node;
    if (!s_in_history (self, entry)) {
        self->agreed = false;           /* ask the upstream again first */
        self->want_fetch = true;
        return WALCAST_EFENCED;
    }
    int rc = 0;
    if (!raw) {
        self->entry_buf.size = 0;
        rc = wc_entry_encode (entry, &self->entry_buf);
        raw = (const uint8_t *) self->entry_buf.data;
        raw_len = self->entry_buf.size;
    }
    if (rc == 0)
        rc = wc_engine_stage (node->engine, entry, raw, raw_len);
    if (rc == WALCAST_EFENCED) {
        /*  Older than our history's latest epoch: the upstream serves a
            deposed tenure; check where it stands before taking more. */
        wc_log_info ("entry %llu is of epoch %llu, older than ours (%llu); "
                     "checking %s's history", (unsigned long long) entry->seq,
                     (unsigned long long) entry->epoch,
                     (unsigned long long) wc_engine_epoch (node->engine), self->primary);
        self->agreed = false;
        self->want_fetch = true;
    }
    else
    if (rc && !wc_engine_stalled (node->engine, NULL, 0))   /* a stall says why once */
        wc_log_error ("cannot take entry %llu: %s",
                      (unsigned long long) entry->seq, walcast_strerror (rc));
    if (entry->seq > self->primary_seq)
        self->primary_seq = entry->seq;
    return rc;
}

/*  True while the engine cannot write its log (disk full...): the
    replica takes nothing from the stream and asks for nothing, except
    one FETCH every STALL_RETRY_MS to try again. Reads go on meanwhile,
    at the last applied seq. */
static bool
s_stalled (wc_replica_t *self, int64_t now)
{
    char why [256];
    if (!wc_engine_stalled (self->node->engine, why, sizeof why)) {
        //  (the retry that found the log writable may have applied more)
        if (self->stall_retry_ms)
            wc_log_info ("applying again from seq %llu",
                         (unsigned long long) self->stall_seq + 1);
        self->stall_retry_ms = 0;
        return false;
    }
    if (self->stall_retry_ms == 0) {
        self->stall_retry_ms = now + STALL_RETRY_MS;
        self->stall_seq = s_have (self);
        wc_log_warn ("stopped applying at seq %llu: the log cannot be written (%s); "
                     "trying again every %d s, reads go on", (unsigned long long)
                     s_have (self), why, STALL_RETRY_MS / 1000);
    }
    return now < self->stall_retry_ms;
}

/*  Apply the entries of a kept message that are next in line. Returns
    true when the message is used up (or malformed), false when it still
    holds entries beyond a hole or one could not be taken. */
static bool
s_drain_one (wc_replica_t *self, s_buffered_t *front)
{
    wc_scan_body_t body;
    wc_msg_t msg;
    if (wc_scan_body (&body, zmq_msg_data (&front->body), zmq_msg_size (&front->body),
                      &self->unpacked, &msg) != 0)
        return true;
    wc_entry_t entry;
    const uint8_t *raw;
    size_t raw_len;
    int rc;
    while ((rc = wc_scan_body_next (&body, &entry, &raw, &raw_len)) == 1) {
        if (entry.seq <= s_have (self))
            continue;
        if (entry.seq != s_have (self) + 1 || s_apply (self, &entry, raw, raw_len) != 0) {
            front->seq = entry.seq;
            return false;
        }
    }
    return true;
}

/*  Apply buffered entries that are now next in line; drop older ones. */
static void
s_drain_buffer (wc_replica_t *self)
{
    while (self->buf_len > 0) {
        s_buffered_t *front = s_buf_at (self, 0);
        if (front->seq > s_have (self) + 1)
            break;
        if (front->last > s_have (self) && !s_drain_one (self, front))
            break;
        s_buf_pop (self);
    }
}

/*  The upstream went backwards: it lost entries it had published or
    served (a wiped data dir, a restored backup, power loss without
    fsync), and the seqs it hands out next will not be the entries we
    have. Following it would serve a mixed history, so stop, say so loudly
    and let reads fail until an operator resyncs this node (empty --data).

    Only two comparisons prove it, because the stream and the catch-up
    channel are not ordered with each other (a heartbeat queued on the
    stream can be older than a FETCH reply we already applied):
    - an ENTRIES reply whose last seq is below what we had applied when we
      sent the FETCH (the upstream answered after it had all of that);
    - a heartbeat whose last seq is below an entry the stream delivered
      earlier (one stream is ordered, and an upstream publishes only what
      is in its WAL file).
    A heartbeat below our applied seq that proves nothing by itself sends
    a FETCH, whose reply does. */
static void
s_diverged (wc_replica_t *self, const char *why)
{
    if (self->diverged)
        return;
    self->diverged = true;
    int rc = wc_engine_set_diverged (self->node->engine, why);
    wc_log_error ("diverged: %s. Not following it; reads are refused%s. To resync, "
                  "stop this node and empty its data directory", why,
                  rc ? "" : " (recorded: a restart does not follow either)");
}

/* --- catch-up ----------------------------------------------------------- */

/*  The next request to the upstream: where our epoch ends in its
    history until that is settled, else entries from the next seq. */
static void
s_next_ask (wc_replica_t *self, wc_msg_t *msg)
{
    if (!self->agreed) {
        wc_node_commit (self->node);        /* the history we ask about is written */
        msg->type = WC_MSG_EPOCH_END;
        msg->u.epoch_end.epoch = wc_engine_epoch (self->node->engine);
        self->ask = WC_ASK_EPOCH_END;
        return;
    }
    uint64_t cluster = wc_engine_cluster (self->node->engine);
    if (self->download) {
        wc_download_ask (self->download, msg);
        msg->u.snapshot_get.cluster = cluster;
        self->ask = WC_ASK_SNAPSHOT;
        return;
    }
    msg->type = WC_MSG_FETCH;
    msg->u.fetch.from_seq = self->ask_from ? self->ask_from : s_have (self) + 1;
    self->ask_from = 0;
    msg->u.fetch.max_bytes = FETCH_BYTES;
    msg->u.fetch.cluster = cluster;
    self->ask = WC_ASK_FETCH;
}

static void
s_send_fetch (wc_replica_t *self, int64_t now)
{
    /*  Until a FETCH is really out, the hole is still wanted: every
        failure below leaves want_fetch set for the tick to retry. */
    self->want_fetch = true;
    if (self->installing)               /* asked again once it is in */
        return;
    if (self->state == WC_LINK_STREAMING)
        self->state = WC_LINK_CATCHING_UP;
    if (s_stalled (self, now)) {
        self->next_fetch_ms = self->stall_retry_ms;
        return;
    }
    if (self->stall_retry_ms)           /* this FETCH is the retry */
        self->stall_retry_ms = now + STALL_RETRY_MS;
    if (!self->req)
        s_reset_req (self);
    if (!self->req) {
        self->next_fetch_ms = now + self->backoff_ms;
        return;
    }
    wc_msg_t fetch = { .rid = ++self->fetch_rid };
    s_next_ask (self, &fetch);
    self->req_buf.size = 0;
    if (wc_msg_encode (&fetch, &self->req_buf) != 0) {
        self->next_fetch_ms = now + self->backoff_ms;
        return;
    }
    if (zmq_send (zsock_resolve (self->req), self->req_buf.data,
                  self->req_buf.size, ZMQ_DONTWAIT) == -1) {
        s_reset_req (self);
        self->next_fetch_ms = now + self->backoff_ms;
        return;
    }
    self->fetching = true;
    self->want_fetch = false;
    self->fetch_from = fetch.type == WC_MSG_FETCH ? fetch.u.fetch.from_seq : 0;
    self->fetch_sent_ms = now;
}

/*  Note a hole and fetch it as soon as the backoff allows. */
static void
s_need_fetch (wc_replica_t *self)
{
    self->want_fetch = true;
    if (self->state == WC_LINK_STREAMING)
        self->state = WC_LINK_CATCHING_UP;
    int64_t now = wc_clock_ms ();
    if (!self->fetching && now >= self->next_fetch_ms)
        s_send_fetch (self, now);
}

static void
s_catchup_begin (wc_replica_t *self, uint64_t last_seq)
{
    if (self->catching)
        return;
    self->catching = true;
    self->catch_start_seq = s_have (self);
    self->catch_start_ms = self->fetch_sent_ms;
    self->next_progress_ms = wc_clock_ms () + 1000;
    wc_log_info ("catch-up: from seq %llu to %llu (%llu entries behind %s)",
                 (unsigned long long) s_have (self) + 1,
                 (unsigned long long) last_seq,
                 (unsigned long long) (last_seq - s_have (self)),
                 self->primary);
    wc_engine_expect (self->node->engine, last_seq - s_have (self));
}

/*  Room for the entries of the FETCH reply in data, so that its check
    reads them once (protocol/scan.h): grown to the count its header
    gives, up to FETCH_KEEP_MAX, before the check. A reply of more
    entries, or one the room cannot grow for, is read twice, as any body
    too big for its room is. Sets *cap to the room's size. */
static wc_scan_kept_t *
s_fetch_room (wc_replica_t *self, const void *data, size_t len, uint32_t *cap)
{
    wc_scan_entries_t head;
    if (wc_scan_entries (data, len, &head) == 0 && head.count > self->fetch_kept_cap
    &&  head.count <= FETCH_KEEP_MAX) {
        uint32_t want = self->fetch_kept_cap * 2 > head.count ? self->fetch_kept_cap * 2
                                                              : head.count;
        if (want > FETCH_KEEP_MAX)
            want = FETCH_KEEP_MAX;
        wc_scan_kept_t *room = (wc_scan_kept_t *) malloc (want * sizeof *room);
        if (room) {
            free (self->fetch_kept);
            self->fetch_kept = room;
            self->fetch_kept_cap = want;
        }
    }
    *cap = self->fetch_kept_cap;
    return self->fetch_kept;
}

/*  A replica that caught up has no use for a catch-up's room. */
static void
s_fetch_room_free (wc_replica_t *self)
{
    free (self->fetch_kept);
    self->fetch_kept = NULL;
    self->fetch_kept_cap = 0;
}

static void
s_catchup_end (wc_replica_t *self)
{
    if (!self->catching)
        return;
    self->catching = false;
    double secs = (double) (wc_clock_ms () - self->catch_start_ms) / 1000.0;
    wc_log_info ("catch-up: done at seq %llu, %llu entries in %.3f s",
                 (unsigned long long) s_have (self),
                 (unsigned long long) (s_have (self) > self->catch_start_seq
                                       ? s_have (self) - self->catch_start_seq : 0),
                 secs);
    s_fetch_room_free (self);
#if defined (__GLIBC__)
    //  A long catch-up's buffers (2 MiB replies, their staging) came and
    //  went between the store's entries: give the pages they left free
    //  back (not after every repaired gap: a trim walks the whole heap)
    if (s_have (self) - self->catch_start_seq >= TRIM_AFTER_ENTRIES)
        malloc_trim (0);
#endif
}

/*  A reply that is no use: count it and back off before asking again. */
static void
s_bad_reply (wc_replica_t *self, const char *why)
{
    self->dropped++;
    wc_log_warn ("catch-up: bad reply from %s (%s); retrying in %d ms",
                 self->primary, why, self->backoff_ms);
    self->next_fetch_ms = wc_clock_ms () + self->backoff_ms;
    if (self->backoff_ms < BACKOFF_MAX_MS)
        self->backoff_ms *= 2;
    self->want_fetch = true;
}

/* --- epochs: is our log a prefix of the upstream's history? ---------------

    Every entry carries the epoch of the primary tenure that wrote it, and
    every node keeps its epoch history, where each epoch began (storage/).
    One (epoch, seq) is one entry everywhere, so the last seq up to which
    our log is a prefix of the upstream's is found by asking the upstream
    where our latest epoch L ended in its history (EPOCH_END): it answers
    with the largest epoch E' <= L it knows, its last seq there, and its
    own latest epoch. The fork is at min(end, our last seq of E'); we
    truncate there and, when E' was older than L, ask again about our new
    latest epoch, until the answer is about our latest epoch.

    We ask when we start following an upstream, and whenever it shows an
    epoch newer than the one we agreed at (a heartbeat, an entry) or seems
    to have gone back (the stream and FETCH replies are not ordered with
    each other, so only its answer can tell). Until we agree, nothing from
    it is applied: stream entries wait in the buffer. An upstream whose
    latest epoch is older than ours (or than the broker said to expect) is
    not followed: it is a deposed primary, or not yet promoted. One in our
    own latest epoch that ends before our last seq lost entries it had
    served: no truncation can mend that fork (diverged).
*/

static void
s_heard_reply (wc_replica_t *self)
{
    self->heard_ms = wc_clock_ms ();
    self->fetch_rtt_ms = self->heard_ms - self->fetch_sent_ms;
    self->timeouts = 0;
}

/*  Nothing more is taken from the upstream until EPOCH_END is answered
    again. */
static void
s_forget_agreement (wc_replica_t *self)
{
    wc_applylag_clear (&self->applylag);
    self->agreed = false;
    self->stream_high = 0;
}

/*  Check the history with the upstream again before taking more. */
static void
s_renegotiate (wc_replica_t *self)
{
    s_forget_agreement (self);
    if (!self->fetching)
        s_need_fetch (self);
}

/*  The upstream cannot be followed yet (why, logged once): ask again soon. */
static void
s_wait_upstream (wc_replica_t *self, const char *why)
{
    if (!self->stale_logged)
        wc_log_warn ("not following %s yet: %s; asking again every %d ms",
                     self->primary, why, STALE_RETRY_MS);
    self->stale_logged = true;
    s_buf_clear (self);
    self->want_fetch = true;
    self->next_fetch_ms = wc_clock_ms () + STALE_RETRY_MS;
}

/*  Drop our entries after fork. 0, or an error (logged; diverged when the
    fork is below what the log can give back: our newest snapshot). */
static int
s_truncate (wc_replica_t *self, uint64_t fork)
{
    wc_node_t *node = self->node;
    uint64_t have = s_have (self);
    int rc = wc_engine_truncate (node->engine, fork);
    char why [WC_MAX_ADDR + 160];
    if (rc == WALCAST_ERANGE) {
        snprintf (why, sizeof why, "%s's history forks from ours after seq %llu, "
                  "below our snapshot", self->primary, (unsigned long long) fork);
        s_diverged (self, why);
        return rc;
    }
    if (rc) {
        wc_log_error ("cannot drop our entries after seq %llu: %s; trying again",
                      (unsigned long long) fork, walcast_strerror (rc));
        s_bad_reply (self, "truncation failed");
        return rc;
    }
    node->applied = wc_engine_applied (node->engine);
    node->applied_ts_ms = wc_engine_applied_ts (node->engine);
    node->epoch = wc_engine_epoch (node->engine);
    s_buf_clear (self);
    if (fork < have)
        wc_log_warn ("history: %s forks from ours after seq %llu; dropped our entries "
                     "%llu..%llu, which it does not hold", self->primary,
                     (unsigned long long) fork, (unsigned long long) fork + 1,
                     (unsigned long long) have);
    else
        wc_log_info ("history: %s never had our epochs after seq %llu (they hold no "
                     "entry); dropped them", self->primary, (unsigned long long) fork);
    return 0;
}

/*  Our log is a prefix of the upstream's, whose latest epoch is theirs. */
static void
s_agree (wc_replica_t *self, uint64_t theirs, uint64_t asked, uint64_t end)
{
    self->agreed = true;
    self->ack_wanted = 0;               /* another history's seqs, maybe */
    self->agreed_epoch = theirs;
    self->closed_epoch = theirs > asked ? asked : 0;
    self->closed_end = end;
    self->backoff_ms = BACKOFF_MIN_MS;
    s_buf_clear (self);             /* they may predate the upstream's answer */
    s_send_fetch (self, wc_clock_ms ());
}

/*  The upstream's answer can be followed now? Else say why and wait
    (it is a deposed primary, not promoted yet, or behind us in our own
    epoch: a relay catching up), or diverge (it shares no epoch with us). */
static bool
s_can_follow (wc_replica_t *self, uint64_t asked, uint64_t at, uint64_t end,
              uint64_t theirs, uint64_t cluster)
{
    uint64_t have = s_have (self);
    uint64_t floor = asked > self->want_epoch ? asked : self->want_epoch;
    uint64_t ours = wc_engine_cluster (self->node->engine);
    char why [WC_MAX_ADDR + 200], a [24], b [24];
    self->foreign = cluster != 0 && ours != 0 && cluster != ours;
    if (self->foreign)
        snprintf (why, sizeof why, "it is a node of cluster %s, not of ours (%s): "
                  "another cluster's node answers at that address, or its data "
                  "directory was replaced; reads are refused meanwhile",
                  wc_cluster_text (cluster, a, sizeof a),
                  wc_cluster_text (ours, b, sizeof b));
    else
    if (theirs < floor)
        snprintf (why, sizeof why, "its epoch is %llu, older than %llu (a deposed "
                  "primary, or one not promoted yet)", (unsigned long long) theirs,
                  (unsigned long long) floor);
    else
    if (theirs == asked && end < have)
        snprintf (why, sizeof why, "it holds seq %llu of our epoch %llu, we hold %llu "
                  "(it is catching up)", (unsigned long long) end,
                  (unsigned long long) asked, (unsigned long long) have);
    else
    if (at == 0 && have > 0) {
        snprintf (why, sizeof why, "%s shares no epoch with us (its history begins "
                  "after our epoch %llu: its data was replaced)", self->primary,
                  (unsigned long long) asked);
        s_diverged (self, why);
        return false;
    }
    else {
        if (self->stale_logged)
            wc_log_info ("following %s now (epoch %llu)", self->primary,
                         (unsigned long long) theirs);
        self->stale_logged = false;
        return true;
    }
    s_wait_upstream (self, why);
    return false;
}

/*  Take the upstream's cluster id when we have none (a new replica, or a
    data directory from before 0.7); false when it cannot be recorded. */
static bool
s_join_cluster (wc_replica_t *self, uint64_t cluster)
{
    wc_engine_t *engine = self->node->engine;
    if (cluster == 0 || wc_engine_cluster (engine) != 0)
        return true;
    if (wc_engine_set_cluster (engine, cluster) != 0) {
        s_bad_reply (self, "cannot record its cluster id");
        return false;
    }
    char text [24];
    wc_log_info ("cluster %s: joined, as %s's replica",
                 wc_cluster_text (cluster, text, sizeof text), self->primary);
    return true;
}

/*  Where our latest epoch ended in the upstream's history. */
static void
s_on_epoch_end (wc_replica_t *self, const wc_msg_t *msg)
{
    wc_node_t *node = self->node;
    s_heard_reply (self);
    uint64_t asked = wc_engine_epoch (node->engine);
    uint64_t at = msg->u.epoch_end.epoch, end = msg->u.epoch_end.end_seq;
    uint64_t theirs = msg->u.epoch_end.latest, have = s_have (self);
    if (at > asked || at > theirs || (at == 0 && end != 0)) {
        s_bad_reply (self, "EPOCH_END_REPLY about an epoch we did not ask");
        return;
    }
    if (!s_can_follow (self, asked, at, end, theirs, msg->u.epoch_end.cluster))
        return;
    uint64_t ours = at == asked ? have : wc_engine_epoch_last_seq (node->engine, at);
    uint64_t fork = end < ours ? end : ours;
    //  Below our latest epoch, truncate even when no entry goes: epochs of
    //  ours the upstream never had leave the history, or we would ask
    //  about them again and again
    if ((fork < have || at != asked) && s_truncate (self, fork) != 0)
        return;
    if (at != asked)
        s_send_fetch (self, wc_clock_ms ());    /* about our new latest epoch */
    else
    if (s_join_cluster (self, msg->u.epoch_end.cluster))
        s_agree (self, theirs, asked, end);
}

/* --- snapshots: when the upstream's log no longer has our next seq ------ */

/*  FETCH was answered ERANGE: pull the upstream's newest snapshot. */
static void
s_download_begin (wc_replica_t *self)
{
    wc_download_destroy (&self->download);
    self->download = wc_download_new (wc_engine_snapshot_temp_path (self->node->engine));
    if (!self->download) {
        s_bad_reply (self, "out of memory for a snapshot download");
        return;
    }
    int64_t now = wc_clock_ms ();
    self->download_start_ms = now;
    self->next_download_log_ms = now + 1000;
    wc_log_info ("snapshot: %s no longer holds seq %llu in its log; downloading its "
                 "newest snapshot", self->primary, (unsigned long long) s_have (self) + 1);
    s_send_fetch (self, now);
}

/*  The install thread: read and check the downloaded file. */
static void *
s_install_run (void *arg)
{
    wc_replica_t *self = (wc_replica_t *) arg;
    self->install_rc = wc_engine_install_read (self->node->engine,
                                               wc_download_path (self->download),
                                               &self->install);
    atomic_store (&self->install_done, true);
    return NULL;
}

/*  The download is complete: read and check it on a thread of its own, so
    the loop goes on answering (a snapshot of millions of keys takes
    seconds to read); s_install_end installs it once that is done. */
static void
s_install (wc_replica_t *self)
{
    uint64_t seq = wc_download_seq (self->download), bytes = wc_download_size (self->download);
    wc_log_info ("snapshot: installing seq %llu from %s (%llu bytes): reading and "
                 "checking it", (unsigned long long) seq, self->primary,
                 (unsigned long long) bytes);
    wc_node_commit (self->node);
    self->install = NULL;
    self->install_rc = 0;
    atomic_store (&self->install_done, false);
    self->install_start_ms = wc_clock_ms ();
    self->next_install_log_ms = self->install_start_ms + 1000;
    self->want_fetch = false;           /* nothing to ask until it is in */
    if (pthread_create (&self->install_thread, NULL, s_install_run, self) == 0)
        self->installing = true;
    else {
        s_install_run (self);           /* no thread: here, then */
        self->installing = true;
        self->install_thread = pthread_self ();
    }
}

/*  Wait for the install thread (it cannot be stopped: it ends when the
    file is read). */
static void
s_install_join (wc_replica_t *self)
{
    if (!self->installing)
        return;
    if (!pthread_equal (self->install_thread, pthread_self ()))
        pthread_join (self->install_thread, NULL);
    self->installing = false;
}

/*  The install thread is done: install what it read (state, history and
    log replaced), or start over. */
static void
s_install_end (wc_replica_t *self)
{
    wc_node_t *node = self->node;
    s_install_join (self);
    uint64_t seq = wc_download_seq (self->download), bytes = wc_download_size (self->download);
    wc_node_commit (node);
    int rc = self->install_rc;
    if (rc == 0)
        rc = wc_engine_install_apply (node->engine, wc_download_path (self->download),
                                      &self->install);
    if (rc == 0)
        wc_download_take (self->download);
    wc_download_destroy (&self->download);
    if (rc) {
        wc_log_error ("snapshot: cannot install seq %llu from %s: %s; trying again",
                      (unsigned long long) seq, self->primary, walcast_strerror (rc));
        wc_node_commit (node);          /* stops the node if the engine failed */
        s_bad_reply (self, "snapshot not installed");
        return;
    }
    node->stats.resyncs++;
    node->applied = wc_engine_applied (node->engine);
    node->applied_ts_ms = wc_engine_applied_ts (node->engine);
    if (wc_engine_epoch (node->engine) > node->epoch)
        node->epoch = wc_engine_epoch (node->engine);
    wc_log_info ("snapshot: installed seq %llu from %s (%llu bytes in %.1f s); "
                 "fetching from seq %llu", (unsigned long long) seq, self->primary,
                 (unsigned long long) bytes,
                 (double) (wc_clock_ms () - self->download_start_ms) / 1000.0,
                 (unsigned long long) s_have (self) + 1);
    s_drain_buffer (self);
    s_send_fetch (self, wc_clock_ms ());
}

static int s_ack (wc_replica_t *self);

/*  The tick while the install thread runs: install once it is done,
    else say how long it has been reading, once a second, and go on
    ACKing what we hold. Returns ms until the next tick. */
static int
s_install_tick (wc_replica_t *self)
{
    if (atomic_load (&self->install_done)) {
        s_install_end (self);
        return 0;
    }
    int64_t now = wc_clock_ms ();
    if (now >= self->next_install_log_ms) {
        wc_log_info ("snapshot: installing seq %llu from %s: reading and checking it "
                     "(%.1f s so far)", (unsigned long long) wc_download_seq (self->download),
                     self->primary, (double) (now - self->install_start_ms) / 1000.0);
        self->next_install_log_ms = now + 1000;
    }
    int next = s_ack (self);
    return next < INSTALL_POLL_MS ? next : INSTALL_POLL_MS;
}

/*  A chunk of the snapshot being pulled. */
static void
s_on_chunk (wc_replica_t *self, const wc_msg_t *msg)
{
    s_heard_reply (self);
    char why [512];
    int rc = wc_download_on_chunk (self->download, msg, why, sizeof why);
    if (rc < 0) {
        wc_log_warn ("snapshot: download from %s failed (%s); starting again",
                     self->primary, why);
        wc_download_destroy (&self->download);
        s_bad_reply (self, "snapshot chunk");
        return;
    }
    self->backoff_ms = BACKOFF_MIN_MS;
    if (rc == 1) {
        s_install (self);
        return;
    }
    int64_t now = wc_clock_ms ();
    if (now >= self->next_download_log_ms) {
        uint64_t got = wc_download_received (self->download);
        uint64_t size = wc_download_size (self->download);
        wc_log_info ("snapshot: downloading seq %llu from %s: %llu of %llu bytes (%.0f%%)",
                     (unsigned long long) wc_download_seq (self->download), self->primary,
                     (unsigned long long) got, (unsigned long long) size,
                     size ? 100.0 * (double) got / (double) size : 0.0);
        self->next_download_log_ms = now + 1000;
    }
    s_send_fetch (self, now);
}

/*  Apply an ENTRIES reply; returns how many entries it applied (entries
    the stream delivered meanwhile are skipped), or -1 when an item was
    malformed or the reply did not start at the seq we asked for. */
static int
s_apply_entries (wc_replica_t *self, wc_scan_body_t *body, uint64_t asked)
{
    int applied = 0;
    wc_entry_t entry;
    const uint8_t *raw;
    size_t raw_len;
    int rc;
    for (uint32_t i = 0; (rc = wc_scan_body_next (body, &entry, &raw, &raw_len)) == 1; i++) {
        if (i == 0 && entry.seq != asked)
            return -1;      /* a reply starts where we asked */
        if (entry.seq <= s_have (self))
            continue;
        if (entry.seq != s_have (self) + 1)
            return -1;
        if (s_apply (self, &entry, raw, raw_len) != 0)
            return -1;
        applied++;
    }
    return rc == 0 ? applied : -1;
}

/*  A whole, well-formed ENTRIES reply of count entries from asked that
    leaves us behind its last seq: ask for the next ones now, before
    applying these, so the upstream reads them from its log while we
    apply (the REQ socket is relaxed: this is the one request out). If
    these are not all taken after all, the next reply does not follow
    what we hold and is asked again (s_on_entries). True when it went. */
static bool
s_fetch_ahead (wc_replica_t *self, const wc_scan_body_t *body, uint64_t asked)
{
    if (body->count == 0 || !wc_scan_body_whole (body) || !self->agreed
    ||  asked != s_have (self) + 1 || asked + body->count > body->last_seq)
        return false;
    self->ask_from = asked + body->count;
    s_send_fetch (self, wc_clock_ms ());
    self->ask_from = 0;             /* used, or the FETCH did not go */
    return self->fetching;
}

/*  An ENTRIES reply to our FETCH: take its entries, write them (so the
    next FETCH knows whether the log took them), and ask for more while
    behind (before taking these, when they are well-formed). */
static void
s_on_entries (wc_replica_t *self, wc_scan_body_t *body)
{
    uint64_t last = body->last_seq;
    uint32_t count = body->count;
    self->heard_ms = wc_clock_ms ();
    self->fetch_rtt_ms = self->heard_ms - self->fetch_sent_ms;
    self->timeouts = 0;
    if (s_have (self) + 1 < self->fetch_from) {
        /*  Our log went back since we asked (a commit failed): these
            entries do not follow what we hold; ask again when we may. */
        self->want_fetch = true;
        self->next_fetch_ms = self->stall_retry_ms;
        return;
    }
    if (last > self->primary_seq)
        self->primary_seq = last;
    if (count > 0 && last > s_have (self))
        s_catchup_begin (self, last);
    uint64_t asked = self->fetch_from;
    bool ahead = s_fetch_ahead (self, body, asked);
    int applied = s_apply_entries (self, body, asked);
    if (applied < 0 && !self->agreed) {
        wc_node_commit (self->node);    /* what came before it stands */
        s_send_fetch (self, wc_clock_ms ());    /* its history moved on: ask */
        return;
    }
    if (applied < 0 && !wc_engine_stalled (self->node->engine, NULL, 0)) {
        s_bad_reply (self, "malformed or out-of-order entry");
        return;
    }
    //  (an entry our disk could not take is no fault of the reply: what
    //  came before it stands, and the stall below asks again)
    self->backoff_ms = BACKOFF_MIN_MS;
    s_drain_buffer (self);
    wc_node_commit (self->node);
    int64_t now = wc_clock_ms ();
    bool stalled = s_stalled (self, now);   /* says so when a stall just ended */
    if (s_have (self) < last && stalled) {
        self->want_fetch = true;        /* the retry comes from the tick */
        self->next_fetch_ms = self->stall_retry_ms;
    }
    else
    if (s_have (self) < last && count > 0) {
        if (!ahead || !self->fetching)
            s_send_fetch (self, now);
    }
    else
    if (s_have (self) < last)
        s_bad_reply (self, "no entries although behind");
    else {
        s_catchup_end (self);
        self->state = WC_LINK_STREAMING;
        if (self->buf_len > 0) {
            /*  Entries beyond a hole: the primary has them by now. If this
                reply brought nothing, give it a moment. */
            if (count == 0)
                self->next_fetch_ms = now + BACKOFF_MIN_MS;
            s_need_fetch (self);
        }
    }
}

/*  The catch-up socket answered. */
static void
s_on_fetch_reply (wc_replica_t *self)
{
    zmq_msg_t body;
    zmq_msg_init (&body);
    if (zmq_msg_recv (&body, zsock_resolve (self->req), ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&body);
        return;
    }
    bool more = zmq_msg_more (&body);
    if (self->installing) {
        /*  Nothing is asked while the install thread reads the download
            (s_send_fetch waits), so this is no answer of ours; and the
            download must not change under the thread */
        zmq_msg_close (&body);
        if (more)
            s_reset_req (self);
        return;
    }
    self->fetching = false;
    wc_msg_t msg;
    wc_scan_body_t entries;
    uint32_t cap = 0;
    wc_scan_kept_t *room = more ? NULL : s_fetch_room (self, zmq_msg_data (&body),
                                                       zmq_msg_size (&body), &cap);
    int rc = more ? WALCAST_EPROTO
                  : wc_scan_body_keep (&entries, zmq_msg_data (&body), zmq_msg_size (&body),
                                       &self->unpacked, &msg, room, cap);
    if (rc == 0) {                      /* entries: the fast path */
        msg.type = entries.type;
        msg.rid = entries.rid;
    }
    if (more)
        s_reset_req (self);       /* a REQ reply is one frame; start clean */
    if (rc < 0)
        s_bad_reply (self, walcast_strerror (rc));
    else
    if (msg.type == WC_MSG_ERROR && msg.rid == self->fetch_rid
    &&  wc_err_from_wire (msg.u.error.code) == WALCAST_ERANGE
    &&  (self->ask == WC_ASK_FETCH || self->ask == WC_ASK_SNAPSHOT))
        s_download_begin (self);        /* not in its log, or that snapshot is gone */
    else
    if (msg.type == WC_MSG_ERROR) {
        char text [WC_MAX_TEXT + 1];
        wc_bytes_printable (text, sizeof text, &msg.u.error.text);
        if (self->ask == WC_ASK_SNAPSHOT)
            wc_download_destroy (&self->download);
        if (wc_err_from_wire (msg.u.error.code) == WALCAST_ECONFLICT)
            s_forget_agreement (self);  /* another cluster's: EPOCH_END says so */
        s_bad_reply (self, text);
    }
    else
    if (msg.rid != self->fetch_rid)
        s_bad_reply (self, "not the reply to our request");
    else
    if (self->ask == WC_ASK_EPOCH_END && msg.type == WC_MSG_EPOCH_END_REPLY)
        s_on_epoch_end (self, &msg);
    else
    if (self->ask == WC_ASK_SNAPSHOT && msg.type == WC_MSG_SNAPSHOT_CHUNK)
        s_on_chunk (self, &msg);
    else
    if (self->ask != WC_ASK_FETCH || msg.type != WC_MSG_ENTRIES)
        s_bad_reply (self, "not the reply to our request");
    else
    if (!self->agreed)                  /* asked before the upstream moved on */
        s_send_fetch (self, wc_clock_ms ());
    else
    if (entries.last_seq < self->fetch_from - 1)
        s_renegotiate (self);       /* behind us: its answer tells why */
    else
        s_on_entries (self, &entries);
    zmq_msg_close (&body);
}

/* --- the stream ------------------------------------------------------------ */

/*  One entry of a stream message (body, whose entries end at last):
    apply it when it is next, keep the message from it on when it is
    ahead of a hole or of the history we agreed on. True to go on with
    the message's next entry. */
static bool
s_on_entry (wc_replica_t *self, const wc_entry_t *entry, const uint8_t *raw,
            size_t raw_len, uint64_t last, zmq_msg_t *body)
{
    if (!self->agreed || entry->epoch > self->agreed_epoch) {
        if (self->agreed)
            s_renegotiate (self);       /* the upstream's history moved on */
        s_buf_push (self, entry->seq, last, body);
        return false;
    }
    if (entry->seq > self->stream_high)
        self->stream_high = entry->seq;
    uint64_t applied = s_have (self);
    if (entry->seq <= applied)
        return true;                            /* seen already */
    if (wc_engine_stalled (self->node->engine, NULL, 0))
        return false;                           /* no room */
    if (entry->seq == applied + 1 && self->buf_len == 0)
        return s_apply (self, entry, raw, raw_len) == 0;
    if (self->state == WC_LINK_STREAMING && self->buf_len == 0) {
        self->gaps++;
        self->node->stats.gaps++;
        wc_log_info ("gap: expected seq %llu, got %llu; fetching",
                     (unsigned long long) applied + 1,
                     (unsigned long long) entry->seq);
    }
    s_buf_push (self, entry->seq, last, body);
    if (last > self->primary_seq)
        self->primary_seq = last;
    if (!self->fetching)
        s_need_fetch (self);
    return false;
}

/*  The entries of a stream message, in order, until one is kept for
    later (with the rest of the message) or cannot be taken. */
static void
s_on_entries_msg (wc_replica_t *self, wc_scan_body_t *entries, zmq_msg_t *body)
{
    wc_entry_t entry;
    const uint8_t *raw;
    size_t raw_len;
    int rc;
    while ((rc = wc_scan_body_next (entries, &entry, &raw, &raw_len)) == 1)
        if (!s_on_entry (self, &entry, raw, raw_len, entries->last_seq, body))
            return;
    if (rc < 0)
        self->dropped++;
}

static void
s_on_heartbeat (wc_replica_t *self, uint64_t epoch, uint64_t last_seq,
                uint64_t clock_ms)
{
    if (!self->agreed)
        return;                         /* the answer to EPOCH_END comes first */
    if (epoch > self->agreed_epoch || last_seq < self->stream_high) {
        s_renegotiate (self);           /* moved on, or back: its answer tells */
        return;
    }
    if (last_seq < s_have (self)) {
        /*  Behind what we hold, but maybe only old (queued before a FETCH
            reply we applied): ask, and let the reply's last seq decide. */
        if (!self->fetching)
            s_need_fetch (self);
        return;
    }
    self->hb_seq = last_seq;
    self->hb_clock_ms = clock_ms;
    if (last_seq > self->primary_seq)
        self->primary_seq = last_seq;
    if (last_seq > s_have (self) && !self->fetching) {
        if (self->state == WC_LINK_STREAMING) {
            self->gaps++;
            self->node->stats.gaps++;
            wc_log_info ("gap: heartbeat at seq %llu, applied %llu; fetching",
                         (unsigned long long) last_seq,
                         (unsigned long long) s_have (self));
        }
        s_need_fetch (self);
    }
}

/*  A stream message of another cluster (0: no id, not checked) is not
    ours to take: the address we follow is another cluster's node now.
    Ask EPOCH_END again, whose answer says so and waits. */
static bool
s_our_cluster (wc_replica_t *self, uint64_t cluster)
{
    uint64_t ours = wc_engine_cluster (self->node->engine);
    if (cluster == 0 || ours == 0 || cluster == ours)
        return true;
    if (self->agreed)
        s_renegotiate (self);
    return false;
}

/*  Take one message off the stream; false when none is waiting. */
static bool
s_on_stream (wc_replica_t *self)
{
    void *sub = zsock_resolve (self->sub);
    zmq_msg_t topic, body;
    zmq_msg_init (&topic);
    if (zmq_msg_recv (&topic, sub, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&topic);
        return false;
    }
    bool well_framed = zmq_msg_more (&topic);
    zmq_msg_init (&body);
    if (well_framed) {
        zmq_msg_recv (&body, sub, 0);
        well_framed = !zmq_msg_more (&body);
        while (zmq_msg_more (&body)) {           /* drain extra frames */
            zmq_msg_close (&body);
            zmq_msg_init (&body);
            zmq_msg_recv (&body, sub, 0);
        }
    }
    wc_msg_t msg;
    wc_scan_body_t entries;
    int rc = well_framed ? wc_scan_body_keep (&entries, zmq_msg_data (&body),
                                              zmq_msg_size (&body), &self->unpacked,
                                              &msg, self->kept, WC_MAX_STREAM_COUNT)
                         : WALCAST_EPROTO;
    uint64_t cluster = rc == 0 ? entries.cluster
                     : rc == 1 && msg.type == WC_MSG_HEARTBEAT ? msg.u.heartbeat.cluster : 0;
    if (!s_our_cluster (self, cluster))
        rc = -1;                        /* counted as dropped, below */
    if (rc == 0) {
        self->heard_ms = self->stream_heard_ms = wc_clock_ms ();
        self->stream_live = true;
        wc_applylag_note (&self->applylag, entries.last_seq, entries.applied_us,
                          entries.count);
        if ((entries.flags & WC_ENTRIES_ACK_WANTED) && entries.last_seq > self->ack_wanted)
            self->ack_wanted = entries.last_seq;
        s_on_entries_msg (self, &entries, &body);
    }
    else
    if (rc == 1 && msg.type == WC_MSG_HEARTBEAT) {
        self->heard_ms = self->stream_heard_ms = wc_clock_ms ();
        self->stream_live = true;
        s_on_heartbeat (self, msg.u.heartbeat.epoch, msg.u.heartbeat.last_seq,
                        msg.u.heartbeat.clock_ms);
    }
    else
        self->dropped++;
    zmq_msg_close (&topic);
    zmq_msg_close (&body);
    return true;
}

/*  Receive and drop whatever the stream holds. */
static void
s_drain_stream (wc_replica_t *self)
{
    void *sub = zsock_resolve (self->sub);
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    for (int i = 0; i < STREAM_BURST; i++)
        if (zmq_msg_recv (&frame, sub, ZMQ_DONTWAIT) == -1)
            break;
    zmq_msg_close (&frame);
}

/* --- the role's interface ------------------------------------------------ */

wc_replica_t *
wc_replica_new (wc_node_t *node, const char *primary, uint64_t epoch)
{
    wc_replica_t *self = (wc_replica_t *) calloc (1, sizeof (wc_replica_t));
    if (!self)
        return NULL;
    self->node = node;
    self->backoff_ms = BACKOFF_MIN_MS;
    self->state = WC_LINK_CONNECTING;
    self->heard_ms = self->stream_heard_ms = self->resubscribed_ms = wc_clock_ms ();
    self->resubscribe_ms = SILENCE_MS;
    self->want_epoch = epoch;
    self->diverged = wc_engine_diverged (node->engine, NULL, 0);   /* for good */
    /*  Until a heartbeat says otherwise, our data is as fresh as the last
        entry we hold (by the primary's clock); an empty replica is
        infinitely stale. Better to decline a bounded read than to serve
        old data as new after a restart. */
    self->fresh_clock_ms = node->applied_ts_ms;
    msgpack_unpacked_init (&self->unpacked);
    msgpack_sbuffer_init (&self->entry_buf);
    msgpack_sbuffer_init (&self->req_buf);
    self->kept = (wc_scan_kept_t *) calloc (WC_MAX_STREAM_COUNT, sizeof *self->kept);
    if (!self->kept) {
        wc_replica_destroy (&self);
        return NULL;
    }
    if (s_endpoints (self, primary) != 0) {
        wc_log_error ("--replica-of %s: expected HOST:PORT", primary);
        wc_replica_destroy (&self);
        return NULL;
    }
    /*  Subscribe first, then fetch: whatever is published while the
        first FETCH is out is kept. */
    self->sub = s_connect (self, &s_sub_spec, self->stream_ep);
    s_reset_req (self);
    self->acker = wc_acker_new (self->service_ep, node->cfg.id, node->upstream_key);
    if (!self->sub || !self->req || !self->acker) {
        wc_replica_destroy (&self);
        return NULL;
    }
    wc_log_info ("following primary %s from seq %llu", self->primary,
                 (unsigned long long) s_have (self) + 1);
    s_send_fetch (self, wc_clock_ms ());
    return self;
}

void
wc_replica_destroy (wc_replica_t **self_p)
{
    wc_replica_t *self = *self_p;
    if (!self)
        return;
    s_install_join (self);             /* it ends when the file is read */
    wc_engine_install_destroy (&self->install);
    while (self->buf_len > 0)
        s_buf_pop (self);
    free (self->buf);
    zsock_destroy (&self->sub);
    zsock_destroy (&self->req);
    wc_acker_destroy (&self->acker);
    wc_download_destroy (&self->download);
    msgpack_unpacked_destroy (&self->unpacked);
    msgpack_sbuffer_destroy (&self->entry_buf);
    msgpack_sbuffer_destroy (&self->req_buf);
    free (self->kept);
    s_fetch_room_free (self);
    free (self);
    *self_p = NULL;
}

int
wc_replica_poll_items (wc_replica_t *self, zmq_pollitem_t *items, int max)
{
    if (max < 2)
        return 0;
    items [0] = (zmq_pollitem_t) { zsock_resolve (self->sub), 0, ZMQ_POLLIN, 0 };
    if (!self->req)
        return 1;
    items [1] = (zmq_pollitem_t) { zsock_resolve (self->req), 0, ZMQ_POLLIN, 0 };
    return 2;
}

/*  Tell the upstream what we hold as durably as --fsync says, once we
    know our log is a prefix of its history. Returns ms until the next. */
static int
s_ack (wc_replica_t *self)
{
    if (!self->agreed || self->diverged)
        return WC_ACKER_INTERVAL_MS;
    wc_engine_t *engine = self->node->engine;
    uint64_t seq = self->node->cfg.fsync == WC_FSYNC_NEVER
                 ? wc_engine_written (engine) : wc_engine_durable (engine);
    return wc_acker_tick (self->acker, self->agreed_epoch, seq, wc_engine_cluster (engine),
                          self->ack_wanted);
}

void
wc_replica_after_turn (wc_replica_t *self)
{
    if (self->applylag.len > 0)
        wc_applylag_drain (&self->applylag, self->node->applied, wc_clock_wall_us (),
                           &self->node->stats.apply_lag);
    s_ack (self);
}

void
wc_replica_handle (wc_replica_t *self, zmq_pollitem_t *items, int count)
{
    if (self->diverged) {
        /*  Drain and drop: nothing from this upstream is applied. */
        if (count > 1 && (items [1].revents & ZMQ_POLLIN))
            s_reset_req (self);
        if (items [0].revents & ZMQ_POLLIN)
            s_drain_stream (self);
        return;
    }
    if (count > 1 && (items [1].revents & ZMQ_POLLIN))     /* late replies too */
        s_on_fetch_reply (self);
    if (items [0].revents & ZMQ_POLLIN)
        for (int i = 0; i < STREAM_BURST && s_on_stream (self); i++)
            ;
    if (self->hb_clock_ms && self->node->applied >= self->hb_seq)
        self->fresh_clock_ms = self->hb_clock_ms;
}

/*  How long to wait for a FETCH reply: at least FETCH_TIMEOUT_MS, more
    on a link whose round trip is long. */
static int64_t
s_fetch_timeout (const wc_replica_t *self)
{
    int64_t timeout = 4 * self->fetch_rtt_ms;
    return timeout > FETCH_TIMEOUT_MS ? (timeout < 60000 ? timeout : 60000)
                                      : FETCH_TIMEOUT_MS;
}

/*  How long the stream may stay silent before we rebuild it: the current
    backoff, and never less than a few FETCH round trips. A subscription
    that never delivered is most likely still being set up over a slow
    link (it takes several one-way trips): give it much longer. */
static int64_t
s_resubscribe_after (const wc_replica_t *self)
{
    int64_t after = 8 * self->fetch_rtt_ms;
    if (after < self->resubscribe_ms)
        after = self->resubscribe_ms;
    if (!self->stream_live && after < 10 * SILENCE_MS)
        after = 10 * SILENCE_MS;
    return after;
}

int
wc_replica_tick (wc_replica_t *self)
{
    if (self->diverged)
        return 1000;
    if (self->installing)
        return s_install_tick (self);
    int64_t now = wc_clock_ms ();
    int64_t fetch_timeout = s_fetch_timeout (self);
    if (self->fetching && now - self->fetch_sent_ms >= fetch_timeout) {
        /*  Resend on the same socket a few times (a slow link may still be
            connecting), then Lazy Pirate: a fresh socket. */
        bool fresh = ++self->timeouts > FETCH_RESENDS;
        wc_log_warn ("catch-up: no answer from %s in %lld ms; %s (next try "
                     "in %d ms)", self->primary, (long long) fetch_timeout,
                     fresh ? "reconnecting" : "asking again", self->backoff_ms);
        if (fresh) {
            s_reset_req (self);
            self->timeouts = 0;
        }
        self->fetching = false;
        self->want_fetch = true;
        self->next_fetch_ms = now + self->backoff_ms;
        if (self->backoff_ms < BACKOFF_MAX_MS)
            self->backoff_ms *= 2;
    }
    if (!self->fetching && self->want_fetch && now >= self->next_fetch_ms)
        s_send_fetch (self, now);
    if (self->catching && now >= self->next_progress_ms) {
        double secs = (double) (now - self->catch_start_ms) / 1000.0;
        uint64_t have = s_have (self);
        uint64_t done = have > self->catch_start_seq ? have - self->catch_start_seq : 0;
        wc_log_info ("catch-up: at seq %llu of %llu (%.0f entries/s)",
                     (unsigned long long) s_have (self),
                     (unsigned long long) self->primary_seq,
                     secs > 0 ? (double) done / secs : 0.0);
        self->next_progress_ms = now + 1000;
    }
    if (now - self->heard_ms >= SILENCE_MS && !self->silent_logged) {
        wc_log_warn ("primary %s silent for %d ms (applied seq %llu)",
                     self->primary, SILENCE_MS,
                     (unsigned long long) s_have (self));
        self->silent_logged = true;
    }
    else
    if (now - self->heard_ms < SILENCE_MS && self->silent_logged) {
        wc_log_info ("primary %s heard again", self->primary);
        self->silent_logged = false;
    }
    if (now - self->stream_heard_ms < SILENCE_MS)
        self->resubscribe_ms = SILENCE_MS;
    else
    if (now - self->resubscribed_ms >= s_resubscribe_after (self))
        s_resubscribe (self, now);
    int next = s_ack (self);
    if (self->fetching) {
        int64_t left = fetch_timeout - (now - self->fetch_sent_ms);
        if (left < next)
            next = left > 0 ? (int) left : 0;
    }
    if (!self->fetching && self->want_fetch) {
        int64_t left = self->next_fetch_ms - now;
        if (left < next)
            next = left > 0 ? (int) left : 0;
    }
    return next;
}

void
wc_replica_want_epoch (wc_replica_t *self, uint64_t epoch)
{
    if (epoch > self->want_epoch)
        self->want_epoch = epoch;
}

uint64_t
wc_replica_primary_seq (const wc_replica_t *self)
{
    return self->primary_seq;
}

/*  Staleness estimate: how long ago, by the primary's clock, was the
    newest moment our data is known to match. It grows when the stream is
    slow or silent, whatever the reason. Assumes clocks roughly in step. */
uint64_t
wc_replica_lag_ms (const wc_replica_t *self)
{
    uint64_t now = wc_clock_wall_ms ();
    return now > self->fresh_clock_ms ? now - self->fresh_clock_ms : 0;
}

void
wc_replica_set_fresh (wc_replica_t *self, uint64_t clock_ms)
{
    if (clock_ms > self->fresh_clock_ms)
        self->fresh_clock_ms = clock_ms;
}

uint64_t
wc_replica_fresh_clock_ms (const wc_replica_t *self)
{
    return self->fresh_clock_ms;
}

bool
wc_replica_foreign (const wc_replica_t *self)
{
    return self->foreign;
}

bool
wc_replica_diverged (const wc_replica_t *self)
{
    return self->diverged;
}

const char *
wc_replica_primary (const wc_replica_t *self)
{
    return self->primary;
}
