/*  node.c - the node's loop: sockets, batches of requests, reads, shutdown.

    One thread does everything, in turns. Each turn runs the timers
    (heartbeats, the replica link's timeouts, parked GETs, beats to the
    broker, replies waiting in the outbox, the engine's batch syncs), polls
    the sockets, then:

    1. takes the syncer's results: entries became durable, and under
       --fsync always applied, so the writes that waited for them are
       answered (primary.c);
    2. takes up to WC_NODE_BATCH requests (or WC_NODE_BATCH_BYTES) off the
       service socket without blocking. A run of consecutive writes is one
       commit (primary.c: one write, and one fsync on the syncer's thread),
       and the requests are answered in arrival order, reads from what is
       applied when they are reached: a read never sees a write that
       arrived after it, nor one that is not durable under --fsync always;
    3. lets the replica link take what its sockets hold (replica.c), serves
       FETCH (fetch.c) and subscriptions on the stream (runtime/publisher);
    4. commits what the replica staged.

    The storage engine (storage/engine.h) owns the log, the state and the
    applied seq; the node learns of each entry as it is applied and
    publishes it then, so nothing leaves the node before it is in its log
    (and synced, under --fsync always).

    Nothing that arrives from the network is trusted: a request is decoded
    and checked by the codec, and anything malformed gets an ERROR reply or
    is dropped and counted; the node's state is only changed by well-formed
    writes (primary) or in-order entries (replica). What one peer can make
    the node hold is bounded in bytes (runtime/sock.h, runtime/outbox.h).
*/
#include <errno.h>
#include <string.h>
#include <time.h>
#if defined (__GLIBC__)
#   include <malloc.h>
#endif
#include "fetch.h"
#include "log.h"
#include "node.h"
#include "announce.h"
#include "buffer.h"
#include "notify.h"
#include "exporter.h"
#include "publisher.h"
#include "roles.h"
#include "signals.h"
#include "sock.h"
#include "primary.h"
#include "reads.h"
#include "replica.h"
#include "role.h"
#include "snapshots.h"

#define S_STOP_LINGER_MS  1000      /* the last replies' time to leave at a stop */

void
wc_node_stop (void)
{
    wc_signals_stop ();
}

/* --- start-up ----------------------------------------------------------- */

/*  The node's three sockets. Budgets are bytes per peer (runtime/sock.h
    turns them into HWMs): a peer that sends or leaves unread more than
    that loses messages or, on the service socket, is cut off (outbox). */
static const wc_sock_spec_t s_service_spec = {
    .type = ZMQ_ROUTER, .name = "service", .max_in = WC_MAX_REQUEST,
    .max_out = WC_OUTBOX_SMALL, .budget = WC_NODE_PEER_BUDGET,
    .in_budget = WC_NODE_REQUEST_BUDGET, .min_hwm = 16
};
/*  The stream honours only the empty subscription (watchers filter keys
    themselves): no peer can make libzmq keep a tree of long prefixes. */
static const char *const s_stream_topics [] = { "", NULL };
static const wc_publisher_spec_t s_stream_spec = {
    .name = "stream", .topics = s_stream_topics,
    .max_frame = WC_MAX_SUBSCRIPTION + WC_ZMTP_SUBSCRIBE_EXTRA,
    .max_out = WC_MAX_STREAM_MESSAGE, .budget = WC_NODE_STREAM_BUDGET,
    .foreign_budget = 4096
};
static const wc_sock_spec_t s_catchup_spec = {
    .type = ZMQ_ROUTER, .name = "catch-up", .max_in = WC_MAX_CATCHUP_REQUEST,
    .max_out = WC_MAX_MESSAGE, .budget = WC_NODE_CATCHUP_BUDGET, .min_hwm = 4
};

/*  Bind the node's three sockets; 0, or -1 with the reason in why. */
static int
s_bind_all (wc_node_t *self, char *why, size_t why_size)
{
    const char *addr = self->cfg.bind;
    int port = self->cfg.port;
    self->service = wc_sock_bind (&s_service_spec, addr, port, why, why_size);
    if (self->service)
        self->stream = wc_publisher_new (&s_stream_spec, addr, port + 1, why, why_size);
    if (self->stream)
        self->catchup = wc_sock_bind (&s_catchup_spec, addr, port + 2, why, why_size);
    return self->catchup ? 0 : -1;
}

static void s_on_apply (void *arg, const wc_entry_t *entry, const void *payload,
                        size_t len);

/*  A damaged log (issue 6): a primary must not serve it, since its next
    write would reuse a seq replicas may hold; a replica keeps what is
    valid and fetches the rest. Returns 0, or -1 with why set. */
static int
s_handle_damage (wc_node_t *self, char *why, size_t why_size)
{
    char damage [512];
    if (!wc_engine_damage (self->engine, damage, sizeof damage))
        return 0;
    if (!self->cfg.replica_of [0]) {
        snprintf (why, why_size, "%s. A primary cannot serve a log with a hole, so "
                  "this node does not start; nothing was deleted. To repair it: start "
                  "it as a replica (--replica-of HOST:PORT of a node that holds these "
                  "seqs) to keep what is valid and fetch the rest, or restore the file "
                  "from a backup", damage);
        return -1;
    }
    wc_log_warn ("%s; keeping what is valid and fetching the rest from %s (the "
                 "damaged files are kept, renamed *.damaged)", damage,
                 self->cfg.replica_of);
    if (wc_engine_set_aside (self->engine) != 0) {
        snprintf (why, why_size, "%s, and it could not be set aside (see above)", damage);
        return -1;
    }
    return 0;
}

/*  Where in each --snapshot-every this node snapshots: a hash of its id
    (FNV-1a), so the nodes of a cluster, which apply the same entries, do
    not all freeze and write a snapshot at the same write. */
static uint64_t
s_snapshot_phase (const char *id)
{
    uint64_t hash = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *) id; *p; p++)
        hash = (hash ^ *p) * 0x100000001b3ull;
    return hash;
}

/*  Open the storage engine (lock, replay) and say what it found. */
static int
s_open_state (wc_node_t *self, char *why, size_t why_size)
{
    char owner [128];
    snprintf (owner, sizeof owner, "walcast-node --id %s", self->cfg.id);
    wc_engine_config_t cfg = { .dir = self->cfg.data_dir, .fsync = self->cfg.fsync,
                               .segment_bytes = self->cfg.segment_bytes, .owner = owner,
                               .snapshot_every = self->cfg.snapshot_every,
                               .snapshot_phase = s_snapshot_phase (self->cfg.id),
                               .retain_bytes = self->cfg.retain_bytes };
    wc_engine_info_t info;
    int err = 0;
    self->engine = wc_engine_open (&cfg, &info, &err, why, why_size);
    if (!self->engine)
        return -1;
    //  (after a snapshot the log may hold nothing: say where the state is)
    char state [96] = "";
    if (info.snapshot_seq > 0)
        snprintf (state, sizeof state, "; the state is at seq %llu (snapshot %llu and "
                  "the log)", (unsigned long long) wc_engine_applied (self->engine),
                  (unsigned long long) info.snapshot_seq);
    wc_log_info ("wal: recovered %llu entries, last seq %llu "
                 "(%llu bytes truncated, %u segments removed) in %.3f s%s",
                 (unsigned long long) info.wal.records,
                 (unsigned long long) info.wal.last_seq,
                 (unsigned long long) info.wal.truncated_bytes,
                 info.wal.removed_segments, info.seconds, state);
    if (s_handle_damage (self, why, why_size) != 0)
        return -1;
    self->applied = wc_engine_applied (self->engine);
    self->applied_ts_ms = wc_engine_applied_ts (self->engine);
    if (wc_engine_epoch (self->engine) > self->epoch)
        self->epoch = wc_engine_epoch (self->engine);
    wc_engine_set_apply (self->engine, s_on_apply, self);
    return 0;
}

/*  The rest of what a node needs; 0, or -1 with the reason in why. */
static int
s_make_parts (wc_node_t *self, char *why, size_t why_size)
{
    snprintf (why, why_size, "out of memory");
    self->outbox = wc_outbox_new (zsock_resolve (self->service), "service",
                                  WC_NODE_OUTBOX_BUDGET);
    self->reads = wc_reads_new (self);
    self->snapshots = wc_snapshots_new (self);
    if (!self->outbox || !self->reads || !self->snapshots)
        return -1;
    if (self->cfg.metrics_port
    && !(self->exporter = wc_exporter_new (self, self->cfg.metrics_port, why, why_size)))
        return -1;
    if (self->cfg.broker [0]) {
        self->announce = wc_announce_new (self, self->cfg.broker);
        if (!self->announce) {
            snprintf (why, why_size, "cannot announce to the broker at %s (see above)",
                      self->cfg.broker);
            return -1;
        }
    }
    return wc_role_start (self, why, why_size);
}

wc_node_t *
wc_node_new (const wc_node_config_t *cfg, char *why, size_t why_size)
{
    wc_node_t *self = (wc_node_t *) zmalloc (sizeof (wc_node_t));
    snprintf (why, why_size, "out of memory");
    if (!self)
        return NULL;
    self->cfg = *cfg;
    snprintf (self->upstream_key, sizeof self->upstream_key, "%s", cfg->curve_server);
    self->epoch = 0;                   /* the history's latest, once open */
    msgpack_sbuffer_init (&self->out);
    msgpack_sbuffer_init (&self->scratch);
    msgpack_sbuffer_init (&self->published);
    self->batch = (wc_request_t *) calloc (WC_NODE_BATCH, sizeof (wc_request_t));
    if (!self->batch)
        goto error;
    for (size_t i = 0; i < WC_NODE_BATCH; i++)
        wc_request_init (&self->batch [i]);
    if (s_open_state (self, why, why_size) != 0
    ||  s_bind_all (self, why, why_size) != 0
    ||  s_make_parts (self, why, why_size) != 0)
        goto error;
    wc_log_info ("%s %s (region %s) at seq %llu, epoch %llu, serving on "
                 "%s:%d (stream %d, catch-up %d), fsync %s",
                 self->candidate ? "candidate primary"
                 : self->role == WC_ROLE_PRIMARY ? "primary" : "replica",
                 cfg->id, cfg->region [0] ? cfg->region : "-",
                 (unsigned long long) self->applied,
                 (unsigned long long) self->epoch, cfg->bind, cfg->port,
                 cfg->port + 1, cfg->port + 2,
                 cfg->fsync == WC_FSYNC_ALWAYS ? "always"
                 : cfg->fsync == WC_FSYNC_BATCH ? "batch" : "never");
    return self;

error:
    wc_node_destroy (&self);
    return NULL;
}

void
wc_node_destroy (wc_node_t **self_p)
{
    wc_node_t *self = *self_p;
    if (!self)
        return;
    wc_exporter_destroy (&self->exporter);
    wc_announce_destroy (&self->announce);
    wc_reads_destroy (&self->reads);
    wc_snapshots_destroy (&self->snapshots);
    wc_primary_destroy (&self->primary);
    wc_replica_destroy (&self->replica);
    wc_outbox_destroy (&self->outbox);
    zsock_destroy (&self->service);
    wc_publisher_destroy (&self->stream);
    zsock_destroy (&self->catchup);
    wc_engine_destroy (&self->engine);
    if (self->batch) {
        for (size_t i = 0; i < WC_NODE_BATCH; i++)
            wc_request_destroy (&self->batch [i]);
        free (self->batch);
    }
    msgpack_sbuffer_destroy (&self->out);
    msgpack_sbuffer_destroy (&self->scratch);
    msgpack_sbuffer_destroy (&self->published);
    free (self);
    *self_p = NULL;
}

/* --- shared operations ------------------------------------------------- */

/*  Publish what was applied since the last flush as one ENTRIES message
    on the stream: ["" topic][ENTRIES, rid 0, last seq, entries]. PUB
    never blocks: a subscriber whose queue is full loses it and repairs
    the gap by FETCH. A primary whose writes wait for ACKs flags the
    message so that replicas send theirs promptly. */
static void s_send_heartbeat (wc_node_t *self, uint64_t last_seq, uint64_t clock_ms);

/*  The entries wait in `published` behind S_HEAD_ROOM octets kept free
    for the message's head, written there (right-aligned) when it goes,
    so the message is sent from one buffer without a copy. */
#define S_HEAD_ROOM 32

static void
s_stream_flush (wc_node_t *self)
{
    if (self->published_count == 0)
        return;
    self->scratch.size = 0;
    uint64_t cluster = wc_engine_cluster (self->engine);
    uint64_t flags = self->primary && wc_primary_awaits_acks (self->primary)
                   ? WC_ENTRIES_ACK_WANTED : 0;
    if (wc_entries_encode_stream_header (self->published_last, self->published_count,
                                         cluster, flags, &self->scratch) == 0
    &&  self->scratch.size <= S_HEAD_ROOM
    &&  wc_entries_encode_trailer (wc_clock_wall_us (), cluster, flags,
                                   &self->published) == 0) {
        char *start = self->published.data + S_HEAD_ROOM - self->scratch.size;
        memcpy (start, self->scratch.data, self->scratch.size);
        size_t len = self->published.size - S_HEAD_ROOM + self->scratch.size;
        if (wc_publisher_send (self->stream, "", 0, start, len) == 0)
            self->stats.bytes_out [WC_NODE_STREAM] += len;
    }
    self->published_count = 0;
    wc_buffer_trim (&self->published, 4 * WC_MAX_STREAM_BATCH);
}

/*  Add an applied entry to the next stream message. An entry too big for
    the stream's byte budget is announced by a heartbeat at its seq
    instead, and subscribers fetch it (a heartbeat ahead of them is a
    gap). */
static void
s_publish (wc_node_t *self, uint64_t seq, const void *payload, size_t len)
{
    if (len > WC_MAX_STREAM_ENTRY) {
        s_stream_flush (self);
        s_send_heartbeat (self, seq, self->replica
                          ? wc_replica_fresh_clock_ms (self->replica)
                          : wc_clock_wall_ms ());
        return;
    }
    if (self->published_count > 0
    && (self->published.size - S_HEAD_ROOM + len > WC_MAX_STREAM_BATCH
        || self->published_count == WC_MAX_STREAM_COUNT))
        s_stream_flush (self);
    if (self->published_count == 0) {
        self->published.size = 0;
        static const char room [S_HEAD_ROOM];
        if (msgpack_sbuffer_write (&self->published, room, S_HEAD_ROOM) != 0)
            return;
    }
    if (msgpack_sbuffer_write (&self->published, (const char *) payload, len) != 0)
        return;
    self->published_count++;
    self->published_last = seq;
}

/*  The engine applied an entry (after writing it, and syncing it under
    --fsync always): note it and publish it (at the end of the turn, with
    the others of the turn). Nothing leaves a node before this, so a
    downstream replica never holds what its upstream could lose in a
    crash. */
static void
s_on_apply (void *arg, const wc_entry_t *entry, const void *payload, size_t len)
{
    wc_node_t *self = (wc_node_t *) arg;
    self->applied = entry->seq;
    self->applied_ts_ms = entry->ts_ms;
    if (entry->epoch > self->epoch)
        self->epoch = entry->epoch;
    self->stats.published++;
    s_publish (self, entry->seq, payload, len);
}

uint64_t
wc_node_received (const wc_node_t *self)
{
    return wc_engine_next_seq (self->engine) - 1;
}

/*  After any engine call: when the engine failed for good (a failed
    sync, an entry it could not apply), say so once and stop. */
static int
s_check_engine (wc_node_t *self, int rc)
{
    if (!wc_engine_failed (self->engine) || self->fatal)
        return rc;
    self->fatal = true;
    if (rc == WALCAST_ENOMEM)
        wc_log_error ("cannot apply an entry: out of memory; stopping (a restart "
                      "replays the log)");
    else
        wc_log_error ("wal: fsync failed; stopping (what reached the disk is "
                      "unknown; a restart replays what did)");
    wc_node_stop ();
    return rc;
}

int
wc_node_commit (wc_node_t *self)
{
    return s_check_engine (self, wc_engine_commit (self->engine));
}

void
wc_node_reply (wc_node_t *self, zsock_t *sock, wc_request_t *req)
{
    self->stats.bytes_out [sock == self->service ? WC_NODE_SERVICE : WC_NODE_CATCHUP]
        += self->out.size;
    int rc = sock == self->service
           ? wc_outbox_send (self->outbox, req->frames, req->nframes - 1,
                             self->out.data, self->out.size)
           : wc_request_reply (zsock_resolve (sock), req, self->out.data,
                               self->out.size);
    if (rc != 0)
        self->send_failures++;
    wc_buffer_trim (&self->out, 4u * WC_MAX_REPLY);
}

void
wc_node_reply_error (wc_node_t *self, zsock_t *sock, wc_request_t *req,
                     int err, const char *text, const char *detail)
{
    self->out.size = 0;
    wc_node_count_refusal (self, err);
    if (wc_error_encode (req->msg.rid, err, text ? text : walcast_strerror (err),
                         detail, &self->out) == 0)
        wc_node_reply (self, sock, req);
}

void
wc_node_count_refusal (wc_node_t *self, int err)
{
    if (err < 0 && -err < WC_NODE_ERRORS)
        self->stats.refused [-err]++;
}

void
wc_node_count_write_reply (wc_node_t *self, int64_t arrived_us)
{
    int64_t took = wc_clock_us () - arrived_us;
    wc_metrics_tally_add (&self->stats.write_latency, wc_metrics_latency_bounds,
                          WC_METRICS_LATENCY_BUCKETS, took > 0 ? (double) took / 1e6 : 0);
}

/* --- requests ------------------------------------------------------------ */

/*  Take one request off a ROUTER socket; see wc_request_recv. Counts
    what had to be dropped or could not be decoded. */
/*  A request its key's role does not allow (CURVE on): answer EPERM,
    count it, and log it (at most one line a second, with how many were
    not logged). True when refused (the request was released). */
static bool
s_refuse_role (wc_node_t *self, zsock_t *sock, wc_request_t *req)
{
    wc_curve_t *curve = wc_sock_curve ();
    if (!curve || req->rc)
        return false;
    const char *name;
    wc_peer_t role = wc_curve_role (curve, &req->frames [req->nframes - 1], &name);
    if (wc_peer_may (role, req->msg.type))
        return false;
    self->refused++;
    int64_t now = wc_clock_ms ();
    self->refused_last_ms = now;
    if (now - self->refused_log_ms >= 1000) {
        wc_log_warn ("refused %s from key %s (role %s): EPERM (%u more refused since "
                     "the last such line, %llu in all)", wc_msg_type_name (req->msg.type),
                     name, wc_peer_name (role), self->refused_unlogged,
                     (unsigned long long) self->refused);
        self->refused_log_ms = now;
        self->refused_unlogged = 0;
    }
    else
        self->refused_unlogged++;
    char detail [64];
    snprintf (detail, sizeof detail, "role=%s", wc_peer_name (role));
    wc_node_reply_error (self, sock, req, WALCAST_EPERM, role == WC_PEER_NONE
                         ? "the key is not trusted (any more)"
                         : "the key's role does not allow this request", detail);
    wc_request_release (req);
    return true;
}

/*  Take one request off sock: 1 with req filled, 0 when none is waiting,
    -1 when one was taken and dealt with (dropped as malformed, or refused
    to its key's role). */
static int
s_recv_request (wc_node_t *self, zsock_t *sock, wc_request_t *req)
{
    int rc = wc_request_recv (zsock_resolve (sock), req);
    if (rc < 0 || (rc == 1 && req->rc))
        self->bad_messages++;
    if (rc == 1)
        self->stats.bytes_in [sock == self->service ? WC_NODE_SERVICE : WC_NODE_CATCHUP]
            += zmq_msg_size (&req->frames [req->nframes - 1]);
    if (rc == 1 && s_refuse_role (self, sock, req))
        return -1;
    return rc;
}

/*  A write the commit took: WRITE_OK now, or once it is applied (and
    held by as many replicas as it asked for). */
static void
s_answer_write (wc_node_t *self, wc_request_t *req)
{
    if (self->role != WC_ROLE_PRIMARY) {
        wc_node_reply_error (self, self->service, req, WALCAST_ENOTPRIMARY,
                             NULL, self->replica ? wc_replica_primary (self->replica) : "");
        return;
    }
    bool batch = req->msg.type == WC_MSG_WRITE_BATCH;
    uint8_t acks = batch ? req->msg.u.batch.acks : req->msg.u.req.acks;
    if (req->seq > self->applied || acks > 0) {
        wc_primary_hold (self->primary, req);
        return;
    }
    wc_node_count_write_reply (self, self->stats.batch_us);
    self->out.size = 0;
    if (batch) {
        if (wc_primary_writes_ok (req->msg.rid, req->epoch, req->seq, req->taken, 0, 0,
                                  req->refused, &self->out) == 0)
            wc_node_reply (self, self->service, req);
        return;
    }
    wc_msg_t reply = { .type = WC_MSG_WRITE_OK, .rid = req->msg.rid };
    reply.u.write_ok.epoch = req->epoch;
    reply.u.write_ok.seq = req->seq;
    self->out.size = 0;
    if (wc_msg_encode (&reply, &self->out) == 0)
        wc_node_reply (self, self->service, req);
}

/*  Answer one request of a batch (after the batch's writes committed). */
static void
s_answer (wc_node_t *self, wc_request_t *req)
{
    if (req->rc) {
        /*  Malformed, or a write the commit refused (a primary that does
            not take writes names where to go, when it knows) */
        const char *detail = self->primary ? wc_primary_detail (self->primary, req->rc)
                                           : NULL;
        wc_node_reply_error (self, self->service, req, req->rc, NULL, detail);
        return;
    }
    switch (req->msg.type) {
        case WC_MSG_PUT:
        case WC_MSG_DEL:
        case WC_MSG_WRITE_BATCH:
            s_answer_write (self, req);
            return;
        case WC_MSG_ACK:                /* from a replica: no reply */
            if (self->primary)
                wc_primary_on_ack (self->primary, &req->msg);
            return;
        case WC_MSG_SNAPSHOT:
            wc_snapshots_request (self->snapshots, req);
            return;
        default:
            if (wc_reads_answer (self->reads, req) == 0)
                return;
            self->bad_messages++;
            wc_node_reply_error (self, self->service, req, WALCAST_EPROTO,
                                 "not a service request", NULL);
            return;
    }
}

/*  One turn of the service socket: a batch, its commits, its answers. */
static void
s_handle_service (wc_node_t *self)
{
    size_t n = 0, bytes = 0;
    self->stats.batch_us = wc_clock_us ();
    while (n < WC_NODE_BATCH && bytes < WC_NODE_BATCH_BYTES) {
        wc_request_t *req = &self->batch [n];
        int rc = s_recv_request (self, self->service, req);
        if (rc == 0)
            break;
        if (rc == 1 && wc_outbox_refused (self->outbox, &req->frames [0])) {
            self->bad_messages++;           /* a peer that does not read */
            wc_request_release (req);
            continue;
        }
        if (rc == 1) {
            bytes += zmq_msg_size (&req->frames [req->nframes - 1]);
            n++;
        }
    }
    /*  Requests are answered in arrival order. A read is answered from
        what is committed when it is reached, so it never sees a write that
        arrived after it; a run of consecutive writes is one commit. */
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && wc_request_is_write (&self->batch [j]))
            j++;
        if (j == i)
            j = i + 1;                      /* a read (or malformed) */
        else
        if (self->primary)
            wc_primary_commit (self->primary, self->batch + i, j - i);
        for (; i < j; i++) {
            s_answer (self, &self->batch [i]);
            wc_request_release (&self->batch [i]);
        }
    }
}

/*  One turn of the catch-up socket. The WAL is flushed first so a FETCH
    sees every entry this node has applied. A few FETCHes a turn (each
    reads up to 4 MiB of log) keep commits flowing while replicas catch up. */
static void
s_handle_catchup (wc_node_t *self)
{
    wc_node_commit (self);              /* serve what this turn received */
    wc_request_t *req = &self->batch [0];
    for (int i = 0; i < WC_NODE_FETCHES_PER_TURN; i++) {
        int rc = s_recv_request (self, self->catchup, req);
        if (rc == 0)
            break;
        if (rc == 1) {
            wc_fetch_serve (self, req);
            wc_request_release (req);
        }
    }
}

/* --- the loop ------------------------------------------------------------ */

/*  Publish a HEARTBEAT: the node's epoch, a last seq and a clock. */
static void
s_send_heartbeat (wc_node_t *self, uint64_t last_seq, uint64_t clock_ms)
{
    wc_msg_t hb = { .type = WC_MSG_HEARTBEAT };
    s_stream_flush (self);              /* the entries it vouches for first */
    hb.u.heartbeat.epoch = self->epoch;
    hb.u.heartbeat.last_seq = last_seq;
    hb.u.heartbeat.clock_ms = clock_ms;
    hb.u.heartbeat.cluster = wc_engine_cluster (self->engine);
    self->scratch.size = 0;
    if (wc_msg_encode (&hb, &self->scratch) == 0
    &&  wc_publisher_send (self->stream, "", 0, self->scratch.data,
                           self->scratch.size) == 0)
        self->stats.bytes_out [WC_NODE_STREAM] += self->scratch.size;
}

/*  Publish a HEARTBEAT when one is due (every 100 ms): the node's epoch,
    last applied seq and clock. Subscribers learn from it that the stream
    is alive and whether they missed its tail. Returns ms until the next.
    A replica passes on the primary's clock of the newest moment its data
    is known fresh, so a replica of a replica measures its staleness
    against the primary, not against its upstream. */
static int
s_heartbeat (wc_node_t *self)
{
    int64_t now = wc_clock_ms ();
    if (now >= self->next_heartbeat_ms) {
        s_send_heartbeat (self, self->applied, self->replica
                          ? wc_replica_fresh_clock_ms (self->replica)
                          : wc_clock_wall_ms ());
        self->next_heartbeat_ms = now + 100;
    }
    return (int) (self->next_heartbeat_ms - now);
}

/*  CURVE on: look at the trust folder every second; when a key left it
    (or lost its role), drop the stream's subscribers so that key cannot
    come back (its requests get EPERM from now on). Returns ms until due. */
static int
s_trust_tick (wc_node_t *self)
{
    wc_curve_t *curve = wc_sock_curve ();
    int due = 60000;
    if (curve && wc_curve_tick (curve, wc_clock_ms (), &due))
        wc_publisher_drop_all (self->stream);
    //  Refusals held back by the one-line-a-second rule are said once
    //  they stop for a second, not only at the next refusal (while they
    //  go on, the next one's own line counts them)
    int64_t now = wc_clock_ms ();
    if (self->refused_unlogged > 0) {
        if (now - self->refused_last_ms >= 1000) {
            wc_log_warn ("refused %u more requests (EPERM) since the last such line, "
                         "%llu in all", self->refused_unlogged,
                         (unsigned long long) self->refused);
            self->refused_log_ms = now;
            self->refused_unlogged = 0;
        }
        else
        if (self->refused_last_ms + 1000 - now < due)
            due = (int) (self->refused_last_ms + 1000 - now);
    }
    return due;
}

/*  Give memory back once the load stops. A burst leaves the buffers it
    needed free in the heaps (a replica's stream messages queued while it
    was behind, a pipeline's batches on the primary: most in libzmq's I/O
    thread's arena), and glibc keeps free memory that is not at a heap's
    top. The store's entries live in the slab's own mappings (storage/
    slab.h), so the heaps are small and a trim is quick; it runs once the
    node has applied nothing for WC_NODE_REST_MS after applying something,
    when the heaps hold at least WC_NODE_TRIM_FREE bytes free.
    Returns ms until it is next worth a look. */
static int
s_trim_at_rest (wc_node_t *self)
{
    int64_t now = wc_clock_ms ();
    if (self->applied != self->rest_seq) {
        self->rest_seq = self->applied;
        self->rest_ms = now;
    }
    if (self->applied == self->trim_seq)        /* nothing since the last trim */
        return 1000;
    if (now - self->rest_ms < WC_NODE_REST_MS)
        return (int) (self->rest_ms + WC_NODE_REST_MS - now);
    self->trim_seq = self->applied;
#if defined (__GLIBC__)
    //  Only when there is much to give: a trickle of writes would have
    //  the node give back and fault in again the same few pages
    struct mallinfo2 heaps = mallinfo2 ();
    if (heaps.fordblks >= WC_NODE_TRIM_FREE)
        malloc_trim (0);
#endif
    return 1000;
}

/*  Run the timers; returns ms until one of them is next due. Timers run
    before the poll: a tick may replace a socket (Lazy Pirate). */
static int
s_timers (wc_node_t *self)
{
    int timeout = self->primary ? wc_primary_tick (self->primary)
                : self->replica ? wc_replica_tick (self->replica) : 1000;
    int role_next = wc_role_tick (self);
    timeout = role_next < timeout ? role_next : timeout;
    int next = s_heartbeat (self);
    timeout = next < timeout ? next : timeout;
    next = wc_reads_tick (self->reads);
    timeout = next < timeout ? next : timeout;
    if (self->announce) {
        next = wc_announce_tick (self->announce);
        timeout = next < timeout ? next : timeout;
    }
    next = wc_outbox_flush (self->outbox);
    if (next >= 0 && next < timeout)
        timeout = next;
    next = wc_publisher_tick (self->stream, wc_clock_ms ());
    timeout = next < timeout ? next : timeout;
    next = s_trust_tick (self);
    timeout = next < timeout ? next : timeout;
    if (self->exporter) {
        next = wc_exporter_tick (self->exporter);
        timeout = next < timeout ? next : timeout;
    }
    next = wc_engine_tick (self->engine);
    timeout = next < timeout ? next : timeout;
    next = s_trim_at_rest (self);
    s_check_engine (self, 0);
    s_stream_flush (self);              /* whatever a timer applied goes now */
    return next < timeout ? next : timeout;
}

/*  The syncer reported: entries became durable, and under --fsync always
    applied; answer the writes that waited for that. */
static void
s_handle_sync (wc_node_t *self)
{
    s_check_engine (self, wc_engine_on_sync (self->engine));
    if (self->primary)
        wc_primary_release (self->primary);
}

/*  One turn: poll the sockets for up to timeout ms and handle what is
    ready. Returns 0, or an error code when the node must stop. */
static int
s_turn (wc_node_t *self, int timeout)
{
    /*  Writes waiting for their sync hold requests back: past a bound, the
        service socket waits (TCP pushes back on the clients). */
    bool take = !self->primary || wc_primary_held (self->primary) < WC_NODE_HELD_MAX;
    void *stream = wc_publisher_socket (self->stream);     /* NULL: rebuilt */
    zmq_pollitem_t items [9] = {
        { zsock_resolve (self->service), 0, take ? ZMQ_POLLIN : 0, 0 },
        { zsock_resolve (self->catchup), 0, ZMQ_POLLIN, 0 },
        { stream ? stream : zsock_resolve (self->catchup), 0, stream ? ZMQ_POLLIN : 0, 0 },
        { wc_engine_sync_socket (self->engine), 0, ZMQ_POLLIN, 0 },
        { wc_engine_snapshot_socket (self->engine), 0, ZMQ_POLLIN, 0 },
    };
    int count = 5;
    if (self->announce)
        items [count++] = (zmq_pollitem_t) { wc_announce_socket (self->announce), 0,
                                             ZMQ_POLLIN, 0 };
    int first = count;                  /* the replica's */
    if (self->replica)
        count += wc_replica_poll_items (self->replica, items + first, 9 - first);
    if (zmq_poll (items, count, timeout) == -1) {
        if (zmq_errno () == EINTR)
            return 0;
        wc_log_error ("poll failed: %s; stopping", zmq_strerror (zmq_errno ()));
        return WALCAST_EUNAVAILABLE;
    }
    if (items [3].revents & ZMQ_POLLIN)
        s_handle_sync (self);
    if (items [0].revents & ZMQ_POLLIN)
        s_handle_service (self);
    if (self->replica)
        wc_replica_handle (self->replica, items + first, count - first);
    if (items [1].revents & ZMQ_POLLIN)
        s_handle_catchup (self);
    if (items [2].revents & ZMQ_POLLIN)
        wc_publisher_handle (self->stream);     /* subscriptions */
    if (items [4].revents & ZMQ_POLLIN)
        wc_snapshots_on_done (self->snapshots);
    if (first > 5 && (items [5].revents & ZMQ_POLLIN))
        wc_announce_read (self->announce);      /* may change the role */
    wc_node_commit (self);              /* what the replica staged */
    if (self->primary)
        wc_primary_release (self->primary); /* writes now applied */
    if (self->replica)
        wc_replica_after_turn (self->replica);  /* ACK what it now holds */
    wc_reads_tick (self->reads);        /* parked GETs the turn satisfied */
    s_stream_flush (self);              /* what the turn applied */
    return self->fatal ? WALCAST_EIO : 0;
}

int
wc_node_run (wc_node_t *self)
{
    wc_signals_catch ();
    wc_notify ("READY=1");              /* bound and serving (systemd) */

    int rc = 0;
    while (!wc_signals_stopping () && rc == 0) {
        if (wc_signals_poll_hup () && wc_sock_curve ())  /* SIGHUP: main's */
            wc_curve_refresh_soon (wc_sock_curve ());    /* reload ran; read
                                                            the trust folder now */
        rc = s_turn (self, s_timers (self));
    }
    wc_notify ("STOPPING=1");
    /*  A clean stop: what is staged is written and everything synced (and
        published, and answered: the service socket then lingers a moment
        so the last replies leave). */
    if (!self->fatal && wc_engine_close (self->engine) == 0 && self->primary)
        wc_primary_release (self->primary);
    s_stream_flush (self);
    wc_outbox_flush (self->outbox);
    zsock_set_linger (self->service, S_STOP_LINGER_MS);
    if (self->fatal && rc == 0)
        rc = WALCAST_EIO;
    wc_log_info ("stopped at seq %llu (%llu malformed messages dropped or "
                 "refused, %llu replies unroutable or dropped, %llu peers cut "
                 "off, %llu stream subscriptions refused, %llu stream rebuilds)",
                 (unsigned long long) self->applied,
                 (unsigned long long) self->bad_messages,
                 (unsigned long long) self->send_failures,
                 (unsigned long long) wc_outbox_cut_offs (self->outbox),
                 (unsigned long long) wc_publisher_foreign (self->stream),
                 (unsigned long long) wc_publisher_rebuilds (self->stream));
    return rc;
}
