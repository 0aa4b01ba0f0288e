/*  primary.c - the primary role: group commit of writes.

    Writes arrive in batches: the loop (node.c) drains the requests the
    service socket holds, up to WC_NODE_BATCH, and hands them here. The
    batch becomes one commit:

      1. each well-formed PUT/DEL gets the next seq and the current epoch
         and is encoded once, as the bare entry that the WAL stores, the
         stream publishes and FETCH serves, and staged in the engine;
      2. the engine writes the whole batch with one write() and applies
         it (storage/engine.h): at once under --fsync batch and never,
         once the syncer has made it durable under always, when one
         fsync covers every write made before it (group commit);
      3. the loop replies WRITE_OK (epoch, seq) to each writer once its
         entry is applied; a reply that must wait for a sync waits here.

    If the log cannot be written (disk full...), the engine keeps exactly
    the prefix it wrote: those writes stand and are acknowledged, the rest
    are refused with the cause (ENOSPC, or EWRITE for any other failure:
    a read-only file system, EIO), and the node stays up for
    reads and for later writes, which succeed as soon as the cause is gone.
*/
#include "buffer.h"
#include "acks.h"
#include "log.h"
#include "node.h"
#include "primary.h"
#include "role.h"
#include "scan.h"
#include <string.h>

#define S_HANDOVER_QUIET_MS 3000    /* the broker repeats HANDOVER every beat (500 ms):
                                       this long without one, it stopped */
#define S_HANDOVER_WARN_MS  10000   /* a hand-over stuck on a silent broker: say so */

/*  The reply to a write that waits for its entry to be applied, and for
    as many replicas as it asked to hold it. */
typedef struct {
    zmq_msg_t envelope [WC_REQUEST_MAX_FRAMES - 1];   /* shared, not copied */
    int       nenvelope;
    uint64_t  rid, epoch, seq;  /* a batch: its last seq */
    bool      batch;            /* a WRITE_BATCH: answer WRITES_OK */
    uint32_t  taken;            /* a batch: writes taken, ending at seq */
    int       refused;          /* a batch: why the others were not, 0 */
    uint32_t  acks;             /* replicas it waits for; 0: none */
    int64_t   deadline_ms;      /* when it stops waiting for them */
    int64_t   arrived_us;       /* when its request was taken (for /metrics) */
} s_held_t;

struct wc_primary {
    wc_node_t      *node;       /* the node we are the role of */
    msgpack_sbuffer entries;    /* scratch: the encoding of an entry */
    wc_write_t     *writes;     /* scratch: a WRITE_BATCH's writes, decoded */
    s_held_t       *held;       /* replies waiting, in seq order */
    size_t          held_count, held_cap;
    size_t          awaiting;   /* of them, those waiting for ACKs */
    bool            commit_acks;    /* the last commit took a write asking for ACKs */
    wc_acks_t      *acks;       /* what each replica holds */
    bool            fenced;     /* a replica follows a newer epoch: replaced */
    char            handover [WC_MAX_ID + 1];       /* switchover target, "" none */
    char            handover_addr [WC_MAX_ADDR + 1];
    uint64_t        handover_seq;   /* the seq the target was seen to hold */
    bool            handed_over;    /* the target holds all we have (seq may be 0) */
    int64_t         handover_heard_ms;  /* the broker's last HANDOVER(target) */
    bool            handover_reported;  /* a beat said the target holds all */
    int64_t         handover_warn_ms;   /* the last warning of a silent broker */
    uint64_t        commits;    /* batches committed */
    uint64_t        refused;    /* writes refused because the log failed */
    uint64_t        unconfirmed;    /* writes answered ENOTREPLICATED */
    char            detail [WC_MAX_ADDR + 256]; /* wc_primary_detail's */
    uint64_t        own_id_acks;    /* ACKs dropped for carrying our own id */
    int64_t         own_id_log_ms;  /* when that was last said */
};

wc_primary_t *
wc_primary_new (wc_node_t *node)
{
    wc_primary_t *self = (wc_primary_t *) calloc (1, sizeof (wc_primary_t));
    if (!self)
        return NULL;
    self->node = node;
    msgpack_sbuffer_init (&self->entries);
    self->acks = wc_acks_new (node->cfg.replica_lag_ms);
    self->writes = (wc_write_t *) calloc (WC_MAX_WRITE_BATCH, sizeof (wc_write_t));
    if (!self->acks || !self->writes)
        wc_primary_destroy (&self);
    return self;
}

static void
s_held_free (s_held_t *held)
{
    for (int i = 0; i < held->nenvelope; i++)
        zmq_msg_close (&held->envelope [i]);
    held->nenvelope = 0;
}

void
wc_primary_destroy (wc_primary_t **self_p)
{
    wc_primary_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->held_count; i++)
        s_held_free (&self->held [i]);
    free (self->held);
    wc_acks_destroy (&self->acks);
    msgpack_sbuffer_destroy (&self->entries);
    free (self->writes);
    free (self);
    *self_p = NULL;
}

/*  The entry a write request becomes. */
static wc_entry_t
s_entry_of (const wc_request_t *req, uint64_t ts_ms)
{
    wc_entry_t entry = {
        .seq = req->seq, .epoch = req->epoch, .ts_ms = ts_ms,
        .op = req->msg.type == WC_MSG_PUT ? WC_OP_PUT : WC_OP_DEL,
        .key = req->msg.u.req.key,
    };
    if (entry.op == WC_OP_PUT)
        entry.value = req->msg.u.req.value;
    return entry;
}

/*  Stage one entry in the engine, at the next seq of the current epoch,
    written in its canonical form (protocol/scan.h). Returns 0 or the
    error that refuses it. */
static int
s_stage_entry (wc_primary_t *self, wc_entry_t *entry)
{
    wc_node_t *node = self->node;
    entry->seq = wc_engine_next_seq (node->engine);
    entry->epoch = node->epoch;
    size_t room = WC_SCAN_ENTRY_OVERHEAD + entry->key.len + entry->value.len;
    if (self->entries.alloc < room) {
        char *grown = (char *) realloc (self->entries.data, room);
        if (!grown)
            return WALCAST_ENOMEM;
        self->entries.data = grown;
        self->entries.alloc = room;
    }
    self->entries.size = wc_scan_write_entry ((uint8_t *) self->entries.data, entry);
    int rc = wc_engine_stage (node->engine, entry, self->entries.data, self->entries.size);
    //  Staging only buffers: an EIO here (a log damaged by an earlier
    //  failure, an engine that failed for good) refuses a write that was
    //  not made
    return rc == WALCAST_EIO ? WALCAST_EWRITE : rc;
}

/*  Stage one PUT or DEL. Returns 0 or the error that refuses it. */
static int
s_stage (wc_primary_t *self, wc_request_t *req, uint64_t ts_ms)
{
    wc_entry_t entry = s_entry_of (req, ts_ms);
    int rc = s_stage_entry (self, &entry);
    req->seq = entry.seq;
    req->epoch = entry.epoch;
    return rc;
}

/*  The writes of a WRITE_BATCH, into self->writes: from the body when
    the scan took it (checked whole already), else from the codec's
    objects, each checked. 0 or WALCAST_EPROTO. */
static int
s_read_writes (wc_primary_t *self, const wc_request_t *req)
{
    uint32_t count = req->msg.u.batch.count;
    if (req->msg.u.batch.raw) {
        wc_scan_writes_t cursor;
        if (wc_scan_writes_begin (req->msg.u.batch.raw, req->msg.u.batch.raw_len,
                                  &cursor) != 0)
            return WALCAST_EPROTO;
        for (uint32_t i = 0; i < count; i++)
            if (wc_scan_writes_next (&cursor, &self->writes [i]) != 1)
                return WALCAST_EPROTO;
        return 0;
    }
    for (uint32_t i = 0; i < count; i++)
        if (wc_write_from_object (&req->msg.u.batch.items [i], &self->writes [i]) != 0)
            return WALCAST_EPROTO;
    return 0;
}

/*  Stage the writes of a WRITE_BATCH, in order, once every one of them is
    known to be well-formed (a malformed one refuses the whole batch with
    EPROTO, before anything is staged). Returns 0, or the error that
    refused the writes from req->taken on. */
static int
s_stage_batch (wc_primary_t *self, wc_request_t *req, uint64_t ts_ms)
{
    if (s_read_writes (self, req) != 0) {
        req->rc = WALCAST_EPROTO;
        return 0;
    }
    uint32_t count = req->msg.u.batch.count;
    int rc = 0;
    for (uint32_t i = 0; i < count && rc == 0; i++) {
        const wc_write_t *write = &self->writes [i];
        wc_entry_t entry = { .ts_ms = ts_ms, .op = write->op, .key = write->key,
                             .value = write->value };
        rc = s_stage_entry (self, &entry);
        if (rc == 0) {
            req->seq = entry.seq;
            req->epoch = entry.epoch;
            req->taken++;
        }
    }
    return rc;
}

/*  The refusal of a write the log could not take (rc from a commit or
    from beginning the epoch): a full disk is ENOSPC; anything else
    (a read-only file system, EIO, no descriptor) is EWRITE. Either way
    the write was not made (the engine keeps exactly the prefix it
    wrote), and the client is told so: EIO would read as "may or may not
    have been applied". */
static int
s_log_refusal (int rc)
{
    return rc == WALCAST_ENOSPC ? WALCAST_ENOSPC : WALCAST_EWRITE;
}

/*  A batch the commit took only a part of: the rest is refused with rc;
    none of it, the whole batch is. */
static void
s_refuse_rest (wc_request_t *req, int rc)
{
    if (req->taken == 0)
        req->rc = rc;
    else
        req->refused = rc;
}

//  The acks a write request asks for (0..WC_ACKS_ALL).
static uint8_t
s_acks_asked (const wc_request_t *req)
{
    return req->msg.type == WC_MSG_WRITE_BATCH ? req->msg.u.batch.acks
                                               : req->msg.u.req.acks;
}

void
wc_primary_commit (wc_primary_t *self, wc_request_t *reqs, size_t n)
{
    wc_node_t *node = self->node;
    uint64_t ts_ms = wc_clock_wall_ms ();
    size_t staged = 0;
    int rc = node->fatal ? WALCAST_EWRITE : wc_primary_refusal (self);  /* stopping */
    self->commit_acks = false;
    for (size_t i = 0; i < n; i++) {
        wc_request_t *req = &reqs [i];
        if (!wc_request_is_write (req))
            continue;
        self->commit_acks = self->commit_acks || s_acks_asked (req) > 0;
        if (req->msg.type == WC_MSG_WRITE_BATCH) {
            rc = rc ? rc : s_stage_batch (self, req, ts_ms);
            if (rc)
                s_refuse_rest (req, rc);    /* and every write after it */
            staged += req->taken;
            self->refused += rc ? req->msg.u.batch.count - req->taken : 0;
            continue;
        }
        if (rc == 0)
            rc = s_stage (self, req, ts_ms);
        if (rc) {
            req->rc = rc;               /* and every write after it */
            req->seq = 0;
            self->refused++;
        }
        else
            staged++;
    }
    wc_buffer_trim (&self->entries, 1024u * 1024u);
    if (staged == 0)
        return;
    rc = wc_node_commit (node);
    node->stats.writes += staged;       /* less those the log refused, below */
    wc_primary_release (self);          /* earlier writes this commit applied */
    uint64_t written = wc_engine_written (node->engine);
    for (size_t i = 0; rc && i < n; i++) {
        wc_request_t *req = &reqs [i];
        if (!wc_request_is_write (req) || req->seq <= written)
            continue;
        int why = s_log_refusal (rc);
        if (req->msg.type == WC_MSG_WRITE_BATCH) {
            uint64_t first = req->seq - req->taken + 1;
            uint32_t kept = written >= first ? (uint32_t) (written - first + 1) : 0;
            self->refused += req->taken - kept;
            node->stats.writes -= req->taken - kept;
            req->taken = kept;
            req->seq = kept ? written : 0;
            s_refuse_rest (req, why);
            continue;
        }
        req->rc = why;
        self->refused++;
        node->stats.writes--;
    }
    self->commits++;
}

//  Move a held reply (its frames must be moved, not copied as a struct).
static void
s_held_move (s_held_t *to, s_held_t *from)
{
    *to = *from;
    for (int k = 0; k < from->nenvelope; k++) {
        zmq_msg_init (&to->envelope [k]);
        zmq_msg_move (&to->envelope [k], &from->envelope [k]);
        zmq_msg_close (&from->envelope [k]);
    }
    from->nenvelope = 0;
}

//  Room for one more held reply; false when out of memory.
static bool
s_held_room (wc_primary_t *self)
{
    if (self->held_count < self->held_cap)
        return true;
    size_t cap = self->held_cap ? self->held_cap * 2 : 1024;
    s_held_t *grown = (s_held_t *) calloc (cap, sizeof *grown);
    if (!grown)
        return false;
    for (size_t i = 0; i < self->held_count; i++)
        s_held_move (&grown [i], &self->held [i]);
    free (self->held);
    self->held = grown;
    self->held_cap = cap;
    return true;
}

//  How many replicas a write asks for: acks, or every current replica
//  (at least one) for WC_ACKS_ALL.
static uint32_t
s_acks_wanted (wc_primary_t *self, uint8_t acks)
{
    if (acks != WC_ACKS_ALL)
        return acks;
    uint32_t current = wc_acks_holding (self->acks, self->node->epoch, 0, wc_clock_ms ());
    return current > 0 ? current : 1;
}

void
wc_primary_hold (wc_primary_t *self, wc_request_t *req)
{
    if (!s_held_room (self))
        return;                 /* out of memory: the client times out */
    s_held_t *held = &self->held [self->held_count];
    held->rid = req->msg.rid;
    held->epoch = req->epoch;
    held->seq = req->seq;
    held->batch = req->msg.type == WC_MSG_WRITE_BATCH;
    held->taken = req->taken;
    held->refused = req->refused;
    uint8_t acks = s_acks_asked (req);
    uint32_t timeout = held->batch ? req->msg.u.batch.ack_timeout_ms
                                   : req->msg.u.req.ack_timeout_ms;
    held->acks = s_acks_wanted (self, acks);
    self->awaiting += held->acks > 0;
    if (timeout == 0)
        timeout = WC_PRIMARY_ACK_TIMEOUT_MS;
    held->deadline_ms = wc_clock_ms () + timeout;
    held->arrived_us = self->node->stats.batch_us;
    held->nenvelope = 0;
    for (int i = 0; i < req->nframes - 1; i++) {
        zmq_msg_init (&held->envelope [i]);
        zmq_msg_copy (&held->envelope [i], &req->frames [i]);
        held->nenvelope++;
    }
    self->held_count++;
}

//  Answer a held write: WRITE_OK (with the replicas that hold it), or
//  ENOTREPLICATED when fewer than it asked for did in time. A batch gets
//  WRITES_OK either way, with how many held it and how many it waited
//  for: fewer reads as not confirmed replicated. A batch abandoned (why)
//  gets ENOTREPLICATED, unless a part of it was refused: then WRITES_OK
//  with none acked of at least one wanted, and the refusal, so the writes
//  that were not written are not said to be.
static void
s_answer_held (wc_primary_t *self, s_held_t *held, uint32_t acked, const char *why)
{
    wc_node_t *node = self->node;
    node->out.size = 0;
    int rc;
    if (held->batch && (!why || held->refused)) {
        uint32_t wanted = held->acks ? held->acks : (why ? 1 : 0);
        rc = wc_primary_writes_ok (held->rid, held->epoch, held->seq, held->taken,
                                   why ? 0 : acked, wanted, held->refused, &node->out);
        if (why || acked < held->acks)
            self->unconfirmed += held->taken;
    }
    else
    if (why) {
        rc = wc_error_encode (held->rid, WALCAST_ENOTREPLICATED, NULL, why, &node->out);
        self->unconfirmed++;
    }
    else
    if (acked >= held->acks) {
        wc_msg_t reply = { .type = WC_MSG_WRITE_OK, .rid = held->rid };
        reply.u.write_ok.epoch = held->epoch;
        reply.u.write_ok.seq = held->seq;
        reply.u.write_ok.acked = acked;
        rc = wc_msg_encode (&reply, &node->out);
    }
    else {
        char detail [64];
        snprintf (detail, sizeof detail, "acked=%u of %u", acked, held->acks);
        rc = wc_error_encode (held->rid, WALCAST_ENOTREPLICATED, NULL, detail, &node->out);
        self->unconfirmed++;
    }
    if (why || (!held->batch && acked < held->acks))
        wc_node_count_refusal (node, WALCAST_ENOTREPLICATED);
    if (!why)
        wc_node_count_write_reply (node, held->arrived_us);
    node->stats.bytes_out [WC_NODE_SERVICE] += rc == 0 ? node->out.size : 0;
    if (rc != 0 || wc_outbox_send (node->outbox, held->envelope, held->nenvelope,
                                   node->out.data, node->out.size) != 0)
        node->send_failures++;
}

int
wc_primary_writes_ok (uint64_t rid, uint64_t epoch, uint64_t last_seq, uint32_t taken,
                      uint32_t acked, uint32_t wanted, int refused, msgpack_sbuffer *out)
{
    wc_msg_t reply = { .type = WC_MSG_WRITES_OK, .rid = rid };
    reply.u.writes_ok.epoch = epoch;
    reply.u.writes_ok.first_seq = taken ? last_seq - taken + 1 : 0;
    reply.u.writes_ok.count = taken;
    reply.u.writes_ok.acked = acked;
    reply.u.writes_ok.wanted = wanted;
    if (refused) {
        const char *text = walcast_strerror (refused);
        reply.u.writes_ok.code = wc_err_to_wire (refused);
        reply.u.writes_ok.text = (wc_bytes_t) { (const uint8_t *) text,
                                                (uint32_t) strlen (text) };
    }
    return wc_msg_encode (&reply, out);
}

void
wc_primary_release (wc_primary_t *self)
{
    wc_node_t *node = self->node;
    int64_t now = wc_clock_ms ();
    wc_acks_applied (self->acks, node->applied, now);
    size_t kept = 0, i = 0;
    for (; i < self->held_count; i++) {
        s_held_t *held = &self->held [i];
        if (held->seq > node->applied)
            break;              /* nor any after it: seq order */
        uint32_t acked = held->acks
                       ? wc_acks_holding (self->acks, node->epoch, held->seq, now) : 0;
        if (acked >= held->acks || now >= held->deadline_ms) {
            s_answer_held (self, held, acked, NULL);
            self->awaiting -= held->acks > 0;
            s_held_free (held);
        }
        else
        if (kept != i)
            s_held_move (&self->held [kept++], held);
        else
            kept++;
    }
    for (; i < self->held_count; i++, kept++)
        if (kept != i)
            s_held_move (&self->held [kept], &self->held [i]);
    self->held_count = kept;
}

void
wc_primary_abandon (wc_primary_t *self)
{
    for (size_t i = 0; i < self->held_count; i++) {
        s_answer_held (self, &self->held [i], 0, "no longer the primary");
        s_held_free (&self->held [i]);
    }
    self->held_count = 0;
    self->awaiting = 0;
}

void
wc_primary_on_ack (wc_primary_t *self, const wc_msg_t *ack)
{
    wc_node_t *node = self->node;
    /*  A replica of another cluster (one that followed this address when
        a node of its own answered here) holds nothing of ours, and its
        epochs are not ours to be fenced by */
    uint64_t cluster = wc_engine_cluster (node->engine);
    if (ack->u.ack.cluster != 0 && cluster != 0 && ack->u.ack.cluster != cluster) {
        node->bad_messages++;
        char id [WC_MAX_ID + 1];
        wc_bytes_printable (id, sizeof id, &ack->u.ack.id);
        wc_log_debug ("dropped an ACK from %s, a replica of another cluster", id);
        return;
    }
    if (ack->u.ack.epoch > node->epoch && !self->fenced) {
        char id [WC_MAX_ID + 1];
        wc_bytes_printable (id, sizeof id, &ack->u.ack.id);
        wc_log_warn ("fenced: replica %s follows epoch %llu, newer than ours (%llu): "
                     "another node is primary now; not taking writes", id,
                     (unsigned long long) ack->u.ack.epoch,
                     (unsigned long long) node->epoch);
        self->fenced = true;
        return;
    }
    /*  A second process started with our id (the broker refuses it as a
        duplicate, but it can still follow us) is no replica: its ACKs
        would confirm writes and give it a lag series under our name (its
        newer epoch, above, is still news of a newer primary) */
    if (ack->u.ack.id.len == strlen (node->cfg.id)
    &&  memcmp (ack->u.ack.id.ptr, node->cfg.id, ack->u.ack.id.len) == 0) {
        node->bad_messages++;
        self->own_id_acks++;
        int64_t now = wc_clock_ms ();
        if (self->own_id_log_ms == 0 || now - self->own_id_log_ms >= 60000) {
            wc_log_warn ("dropped ACKs from a replica with our own id %s (%llu so far): "
                         "two processes started with one --id? It confirms no write",
                         node->cfg.id, (unsigned long long) self->own_id_acks);
            self->own_id_log_ms = now;
        }
        return;
    }
    /*  A replica holds at most what we wrote: an ACK of our epoch past
        that is no replica's word, and must confirm nothing */
    if (ack->u.ack.epoch == node->epoch && ack->u.ack.seq > wc_engine_written (node->engine)) {
        node->bad_messages++;
        char id [WC_MAX_ID + 1];
        wc_bytes_printable (id, sizeof id, &ack->u.ack.id);
        wc_log_debug ("dropped an ACK from %s for seq %llu, past our log's end %llu",
                      id, (unsigned long long) ack->u.ack.seq,
                      (unsigned long long) wc_engine_written (node->engine));
        return;
    }
    wc_acks_update (self->acks, &ack->u.ack.id, ack->u.ack.epoch, ack->u.ack.seq,
                    wc_clock_ms ());
    wc_primary_release (self);
}

int
wc_primary_refusal (wc_primary_t *self)
{
    wc_node_t *node = self->node;
    if (self->fenced)
        return WALCAST_EFENCED;
    if (wc_role_diverged (node))
        return WALCAST_EUNAVAILABLE;
    if (node->candidate && node->begin_rc)
        return s_log_refusal (node->begin_rc);  /* its epoch could not begin */
    if (node->candidate || self->handover [0])
        return WALCAST_ENOTPRIMARY;
    if (node->cfg.min_replicas > 0
    &&  wc_acks_holding (self->acks, node->epoch, 0, wc_clock_ms ())
        < node->cfg.min_replicas)
        return WALCAST_EFEWREPLICAS;
    return 0;
}

const char *
wc_primary_detail (wc_primary_t *self, int rc)
{
    wc_node_t *node = self->node;
    self->detail [0] = '\0';
    if (rc == WALCAST_ENOTPRIMARY)
        snprintf (self->detail, sizeof self->detail, "%s", self->handover_addr);
    else
    if (rc == WALCAST_EWRITE)           /* the cause: "...: Read-only file system" */
        wc_engine_stalled (node->engine, self->detail, sizeof self->detail);
    else
    if (rc == WALCAST_EFEWREPLICAS)
        snprintf (self->detail, sizeof self->detail, "current=%u of %u",
                  wc_acks_holding (self->acks, node->epoch, 0, wc_clock_ms ()),
                  node->cfg.min_replicas);
    else
    if (rc == WALCAST_EUNAVAILABLE)
        snprintf (self->detail, sizeof self->detail, "diverged: resync needed");
    return self->detail;
}

void
wc_primary_handover (wc_primary_t *self, const char *target_id, const char *target_addr)
{
    if (!*target_id) {
        if (self->handover [0])
            wc_log_info ("switchover cancelled: taking writes again");
        self->handover [0] = self->handover_addr [0] = '\0';
        self->handover_seq = 0;
        self->handed_over = false;
        return;
    }
    if (strcmp (self->handover, target_id) != 0) {
        wc_log_info ("switchover to %s (%s): not taking writes; waiting until it "
                     "holds seq %llu", target_id, target_addr,
                     (unsigned long long) self->node->applied);
        self->handover_seq = 0;         /* what another target reached */
        self->handed_over = false;
        self->handover_reported = false;
        self->handover_warn_ms = 0;
    }
    self->handover_heard_ms = wc_clock_ms ();
    snprintf (self->handover, sizeof self->handover, "%s", target_id);
    snprintf (self->handover_addr, sizeof self->handover_addr, "%s", target_addr);
}

bool
wc_primary_handed_over (wc_primary_t *self, uint64_t *seq)
{
    *seq = 0;
    if (!self->handover [0])
        return false;
    //  Writes are refused now: the target is ready once its ACKs of this
    //  epoch (it agreed that its log is a prefix of this history) hold all
    //  we have, even when that is nothing (a cluster never written)
    wc_bytes_t id = { (const uint8_t *) self->handover, (uint32_t) strlen (self->handover) };
    wc_node_t *node = self->node;
    if (wc_acks_heard (self->acks, &id, node->epoch)
    &&  wc_acks_seq_of (self->acks, &id, node->epoch) >= node->applied
    &&  wc_node_received (node) == node->applied) {
        self->handover_seq = node->applied;
        self->handed_over = true;
    }
    *seq = self->handover_seq;
    return self->handed_over;
}

void
wc_primary_handover_sent (wc_primary_t *self, bool handed_over)
{
    if (self->handover [0] && handed_over)
        self->handover_reported = true;
}

/*  The broker repeats HANDOVER(target) at every beat while it waits for
    the target to catch up. When it stops (it died, restarted knowing
    nothing of the switchover, or cannot be reached), and no beat of ours
    ever said the target caught up, the broker cannot have promoted the
    target (it promotes only on that word): the hand-over ends here, and
    writes are taken again. Once a beat said so, the target may be the
    primary now, so we go on refusing writes until the broker finishes or
    cancels the switchover, and say why every S_HANDOVER_WARN_MS. */
static void
s_handover_check (wc_primary_t *self, int64_t now)
{
    if (!self->handover [0] || now - self->handover_heard_ms < S_HANDOVER_QUIET_MS)
        return;
    long long quiet = (long long) (now - self->handover_heard_ms);
    if (!self->handover_reported) {
        wc_log_warn ("switchover to %s: the broker has not asked for it for %lld ms, "
                     "and no beat of ours said %s caught up, so it cannot have been "
                     "promoted; abandoned, taking writes again", self->handover, quiet,
                     self->handover);
        self->handover [0] = self->handover_addr [0] = '\0';
        self->handover_seq = 0;
        self->handed_over = false;
        return;
    }
    if (self->handover_warn_ms && now - self->handover_warn_ms < S_HANDOVER_WARN_MS)
        return;
    self->handover_warn_ms = now;
    wc_log_warn ("switchover to %s: no word from the broker for %lld ms since %s caught "
                 "up; not taking writes, since the broker may have promoted it. The "
                 "broker finishes or cancels the switchover once it hears from us; one "
                 "restarted since knows nothing of it: then run walcast --broker ... "
                 "switchover %s again", self->handover, quiet, self->handover,
                 self->handover);
}

bool
wc_primary_fenced (const wc_primary_t *self)
{
    return self->fenced;
}

const wc_acks_t *
wc_primary_acks (const wc_primary_t *self)
{
    return self->acks;
}

void
wc_primary_forget (wc_primary_t *self, const wc_bytes_t *id)
{
    if (!wc_acks_remove (self->acks, id))
        return;                 /* never ACKed here, or told before */
    char printable [WC_MAX_ID + 1];
    wc_bytes_printable (printable, sizeof printable, id);
    wc_log_info ("acks: replica %s was forgotten at the broker (walcast forget): "
                 "dropped from the ACK table, with its /metrics series", printable);
}

size_t
wc_primary_held (const wc_primary_t *self)
{
    return self->held_count;
}

bool
wc_primary_awaits_acks (const wc_primary_t *self)
{
    return self->awaiting > 0 || self->commit_acks;
}

int
wc_primary_tick (wc_primary_t *self)
{
    s_handover_check (self, wc_clock_ms ());
    int next = self->handover [0] ? 500 : 1000;
    if (self->held_count == 0)
        return next;
    wc_primary_release (self);          /* acks that came, deadlines passed */
    return 10;
}
