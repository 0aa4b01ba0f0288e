/*  primary.c - the primary role: group commit of writes.

    Writes arrive in batches: the loop (node.c) drains every request the
    service socket holds, up to WC_NODE_BATCH, and hands them here. The
    batch becomes one commit:

      1. each well-formed PUT/DEL gets the next seq and the current epoch
         and is encoded once, as the bare entry that the WAL stores, the
         stream publishes and FETCH serves;
      2. the WAL takes the whole batch in one write(), and under
         --fsync always one fdatasync covers every write of the batch
         (concurrent writers share the sync);
      3. only then are the entries applied to the store and published, and
         the loop replies WRITE_OK (epoch, seq) to each writer.

    If the log cannot be written (disk full...), the WAL cuts itself back
    to its last good record, nothing of the batch is applied, every writer
    of the batch is told WALCAST_EIO, and the node stays up for reads and
    later writes.
*/
#include "buffer.h"
#include "log.h"
#include "node.h"
#include "primary.h"

struct wc_primary {
    wc_node_t      *node;       /* the node we are the role of */
    msgpack_sbuffer entries;    /* encodings of the batch's entries */
    size_t         *offsets;    /* per request: where its entry starts */
    size_t         *lengths;    /* per request: its entry's length */
    uint64_t        commits;    /* batches committed, for the log */
    uint64_t        failed;     /* writes refused because the WAL failed */
};

wc_primary_t *
wc_primary_new (wc_node_t *node)
{
    wc_primary_t *self = (wc_primary_t *) calloc (1, sizeof (wc_primary_t));
    if (!self)
        return NULL;
    self->node = node;
    msgpack_sbuffer_init (&self->entries);
    self->offsets = (size_t *) calloc (WC_NODE_BATCH, sizeof (size_t));
    self->lengths = (size_t *) calloc (WC_NODE_BATCH, sizeof (size_t));
    if (!self->offsets || !self->lengths)
        wc_primary_destroy (&self);
    return self;
}

void
wc_primary_destroy (wc_primary_t **self_p)
{
    wc_primary_t *self = *self_p;
    if (!self)
        return;
    msgpack_sbuffer_destroy (&self->entries);
    free (self->offsets);
    free (self->lengths);
    free (self);
    *self_p = NULL;
}

/*  The entry a write request becomes. */
static wc_entry_t
s_entry_of (const wc_request_t *req, uint64_t epoch, uint64_t ts_ms)
{
    wc_entry_t entry = {
        .seq = req->seq, .epoch = epoch, .ts_ms = ts_ms,
        .op = req->msg.type == WC_MSG_PUT ? WC_OP_PUT : WC_OP_DEL,
        .key = req->msg.u.req.key,
    };
    if (entry.op == WC_OP_PUT)
        entry.value = req->msg.u.req.value;
    return entry;
}

/*  Refuse every write of the batch with err. */
static void
s_refuse_batch (wc_primary_t *self, wc_request_t *reqs, size_t n, int err)
{
    for (size_t i = 0; i < n; i++)
        if (wc_request_is_write (&reqs [i])) {
            reqs [i].rc = err;
            self->failed++;
        }
}

void
wc_primary_commit (wc_primary_t *self, wc_request_t *reqs, size_t n)
{
    wc_node_t *node = self->node;
    if (node->fatal) {
        /*  An fsync failed and the node is stopping: take no more. */
        s_refuse_batch (self, reqs, n, WALCAST_EIO);
        return;
    }
    uint64_t ts_ms = wc_clock_wall_ms ();
    uint64_t seq = node->applied;
    size_t writes = 0;
    self->entries.size = 0;

    for (size_t i = 0; i < n; i++) {
        wc_request_t *req = &reqs [i];
        if (!wc_request_is_write (req))
            continue;
        req->seq = seq + 1;
        req->epoch = node->epoch;
        wc_entry_t entry = s_entry_of (req, node->epoch, ts_ms);
        self->offsets [i] = self->entries.size;
        int rc = wc_entry_encode (&entry, &self->entries);
        self->lengths [i] = self->entries.size - self->offsets [i];
        if (rc == 0)
            rc = wc_wal_append (node->wal, entry.seq,
                                self->entries.data + self->offsets [i],
                                self->lengths [i]);
        if (rc) {
            /*  Only memory can fail here. What was staged before stays a
                whole, in-order prefix: commit it, refuse this write and
                every one after it. */
            wc_log_error ("cannot stage write %llu: %s; refusing the rest "
                          "of the batch", (unsigned long long) req->seq,
                          walcast_strerror (rc));
            self->entries.size = self->offsets [i];
            s_refuse_batch (self, reqs + i, n - i, rc);
            break;
        }
        seq++;
        writes++;
    }
    if (writes == 0)
        return;

    int rc = wc_node_flush (node, false);
    if (rc) {
        wc_log_error ("wal: cannot write %zu entries (%llu..%llu): %s; "
                      "refusing them", writes,
                      (unsigned long long) node->applied + 1,
                      (unsigned long long) seq, walcast_strerror (rc));
        s_refuse_batch (self, reqs, n, WALCAST_EIO);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        wc_request_t *req = &reqs [i];
        if (!wc_request_is_write (req))
            continue;
        wc_entry_t entry = s_entry_of (req, req->epoch, ts_ms);
        if (wc_node_apply (node, &entry, self->entries.data + self->offsets [i],
                           self->lengths [i]) != 0) {
            req->rc = WALCAST_ENOMEM;
            break;
        }
    }
    self->commits++;
    wc_buffer_trim (&self->entries, 1024u * 1024u);
}

int
wc_primary_tick (wc_primary_t *self)
{
    (void) self;
    return 1000;
}
