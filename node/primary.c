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
    are refused with the cause (ENOSPC or EIO), and the node stays up for
    reads and for later writes, which succeed as soon as the cause is gone.
*/
#include "buffer.h"
#include "log.h"
#include "node.h"
#include "primary.h"

/*  The reply to a write that waits for its entry to be applied. */
typedef struct {
    zmq_msg_t envelope [WC_REQUEST_MAX_FRAMES - 1];   /* shared, not copied */
    int       nenvelope;
    uint64_t  rid, epoch, seq;
} s_held_t;

struct wc_primary {
    wc_node_t      *node;       /* the node we are the role of */
    msgpack_sbuffer entries;    /* encodings of the batch's entries */
    s_held_t       *held;       /* replies waiting, a ring in seq order */
    size_t          held_head, held_count, held_cap;
    uint64_t        commits;    /* batches committed */
    uint64_t        refused;    /* writes refused because the log failed */
};

wc_primary_t *
wc_primary_new (wc_node_t *node)
{
    wc_primary_t *self = (wc_primary_t *) calloc (1, sizeof (wc_primary_t));
    if (!self)
        return NULL;
    self->node = node;
    msgpack_sbuffer_init (&self->entries);
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
        s_held_free (&self->held [(self->held_head + i) % self->held_cap]);
    free (self->held);
    msgpack_sbuffer_destroy (&self->entries);
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

/*  Stage one write in the engine. Returns 0 or the error that refuses it. */
static int
s_stage (wc_primary_t *self, wc_request_t *req, uint64_t ts_ms)
{
    wc_node_t *node = self->node;
    req->seq = wc_engine_next_seq (node->engine);
    req->epoch = node->epoch;
    wc_entry_t entry = s_entry_of (req, ts_ms);
    self->entries.size = 0;
    int rc = wc_entry_encode (&entry, &self->entries);
    if (rc == 0)
        rc = wc_engine_stage (node->engine, &entry, self->entries.data,
                              self->entries.size);
    return rc;
}

void
wc_primary_commit (wc_primary_t *self, wc_request_t *reqs, size_t n)
{
    wc_node_t *node = self->node;
    uint64_t ts_ms = wc_clock_wall_ms ();
    size_t staged = 0;
    int rc = node->fatal ? WALCAST_EIO : 0;
    for (size_t i = 0; i < n; i++) {
        wc_request_t *req = &reqs [i];
        if (!wc_request_is_write (req))
            continue;
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
    wc_primary_release (self);          /* earlier writes this commit applied */
    uint64_t written = wc_engine_written (node->engine);
    for (size_t i = 0; rc && i < n; i++)
        if (wc_request_is_write (&reqs [i]) && reqs [i].seq > written) {
            reqs [i].rc = rc == WALCAST_ENOSPC ? WALCAST_ENOSPC : WALCAST_EIO;
            self->refused++;
        }
    self->commits++;
}

void
wc_primary_hold (wc_primary_t *self, wc_request_t *req)
{
    if (self->held_count == self->held_cap) {
        size_t cap = self->held_cap ? self->held_cap * 2 : 1024;
        s_held_t *grown = (s_held_t *) calloc (cap, sizeof *grown);
        if (!grown)
            return;             /* out of memory: the client times out */
        for (size_t i = 0; i < self->held_count; i++) {
            s_held_t *from = &self->held [(self->held_head + i) % self->held_cap];
            grown [i] = *from;
            for (int k = 0; k < from->nenvelope; k++) {
                zmq_msg_init (&grown [i].envelope [k]);
                zmq_msg_move (&grown [i].envelope [k], &from->envelope [k]);
                zmq_msg_close (&from->envelope [k]);
            }
        }
        free (self->held);
        self->held = grown;
        self->held_cap = cap;
        self->held_head = 0;
    }
    s_held_t *held = &self->held [(self->held_head + self->held_count) % self->held_cap];
    held->rid = req->msg.rid;
    held->epoch = req->epoch;
    held->seq = req->seq;
    held->nenvelope = 0;
    for (int i = 0; i < req->nframes - 1; i++) {
        zmq_msg_init (&held->envelope [i]);
        zmq_msg_copy (&held->envelope [i], &req->frames [i]);
        held->nenvelope++;
    }
    self->held_count++;
}

void
wc_primary_release (wc_primary_t *self)
{
    wc_node_t *node = self->node;
    while (self->held_count > 0) {
        s_held_t *held = &self->held [self->held_head];
        if (held->seq > node->applied)
            break;
        wc_msg_t reply = { .type = WC_MSG_WRITE_OK, .rid = held->rid };
        reply.u.write_ok.epoch = held->epoch;
        reply.u.write_ok.seq = held->seq;
        node->out.size = 0;
        if (wc_msg_encode (&reply, &node->out) != 0
        ||  wc_outbox_send (node->outbox, held->envelope, held->nenvelope,
                            node->out.data, node->out.size) != 0)
            node->send_failures++;
        s_held_free (held);
        self->held_head = (self->held_head + 1) % self->held_cap;
        self->held_count--;
    }
}

size_t
wc_primary_held (const wc_primary_t *self)
{
    return self->held_count;
}

int
wc_primary_tick (wc_primary_t *self)
{
    (void) self;
    return 1000;
}
