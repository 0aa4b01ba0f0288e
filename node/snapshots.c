/*  snapshots.c - SNAPSHOT requests (see snapshots.h).

    Each waiting request keeps its routing envelope (the frames are
    shared with the request, not copied) and whether the snapshot being
    written started after it arrived ("covered"): only those get its
    result; the others wait for the one started right after it.
*/
#include <string.h>
#include "log.h"
#include "snapshots.h"

typedef struct {
    zmq_msg_t envelope [WC_REQUEST_MAX_FRAMES - 1];
    int       nenvelope;
    uint64_t  rid;
    bool      covered;      /* the snapshot being written started after it */
} s_waiter_t;

/*  Most requests that may wait at once; more are refused with EBUSY. */
#define S_WAITERS_MAX  1024

struct wc_snapshots {
    wc_node_t  *node;
    s_waiter_t *waiters;
    size_t      count;
    bool        ours;       /* the snapshot being written was started here */
};

wc_snapshots_t *
wc_snapshots_new (wc_node_t *node)
{
    wc_snapshots_t *self = (wc_snapshots_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->node = node;
    self->waiters = (s_waiter_t *) calloc (S_WAITERS_MAX, sizeof (s_waiter_t));
    if (!self->waiters)
        wc_snapshots_destroy (&self);
    return self;
}

static void
s_waiter_free (s_waiter_t *waiter)
{
    for (int i = 0; i < waiter->nenvelope; i++)
        zmq_msg_close (&waiter->envelope [i]);
    waiter->nenvelope = 0;
}

void
wc_snapshots_destroy (wc_snapshots_t **self_p)
{
    wc_snapshots_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; self->waiters && i < self->count; i++)
        s_waiter_free (&self->waiters [i]);
    free (self->waiters);
    free (self);
    *self_p = NULL;
}

/*  Move a waiter (its frames must be moved, not copied as a struct). */
static void
s_waiter_move (s_waiter_t *to, s_waiter_t *from)
{
    to->rid = from->rid;
    to->covered = from->covered;
    to->nenvelope = from->nenvelope;
    for (int k = 0; k < from->nenvelope; k++) {
        zmq_msg_init (&to->envelope [k]);
        zmq_msg_move (&to->envelope [k], &from->envelope [k]);
        zmq_msg_close (&from->envelope [k]);
    }
    from->nenvelope = 0;
}

static void s_answer (wc_snapshots_t *self, int rc, uint64_t seq, uint64_t bytes);

/*  Start a snapshot for every waiter; false when none could start now
    (one is being written: the waiters wait for it to end). */
static bool
s_start (wc_snapshots_t *self)
{
    int rc = wc_engine_snapshot (self->node->engine);
    if (rc == WALCAST_EBUSY)
        return false;
    self->ours = rc == 0;
    for (size_t i = 0; i < self->count; i++)
        self->waiters [i].covered = true;
    if (rc != 0)
        s_answer (self, rc, 0, 0);          /* none is coming: say why */
    return true;
}

/*  Send the outcome to every covered waiter; keep the others. */
static void
s_answer (wc_snapshots_t *self, int rc, uint64_t seq, uint64_t bytes)
{
    wc_node_t *node = self->node;
    size_t kept = 0;
    for (size_t i = 0; i < self->count; i++) {
        s_waiter_t *waiter = &self->waiters [i];
        if (!waiter->covered) {
            if (kept != i)
                s_waiter_move (&self->waiters [kept], waiter);
            kept++;
            continue;
        }
        node->out.size = 0;
        wc_msg_t reply = { .type = WC_MSG_SNAPSHOT_DONE, .rid = waiter->rid };
        reply.u.snapshot_done.seq = seq;
        reply.u.snapshot_done.bytes = bytes;
        int erc = rc == 0 ? wc_msg_encode (&reply, &node->out)
                : wc_error_encode (waiter->rid, rc, NULL,
                                   rc == WALCAST_EINVAL ? "nothing applied yet" : NULL,
                                   &node->out);
        if (erc != 0 || wc_outbox_send (node->outbox, waiter->envelope, waiter->nenvelope,
                                        node->out.data, node->out.size) != 0)
            node->send_failures++;
        s_waiter_free (waiter);
    }
    self->count = kept;
}

void
wc_snapshots_request (wc_snapshots_t *self, wc_request_t *req)
{
    if (self->count == S_WAITERS_MAX) {
        wc_node_reply_error (self->node, self->node->service, req, WALCAST_EBUSY,
                             "too many snapshot requests waiting", NULL);
        return;
    }
    s_waiter_t *waiter = &self->waiters [self->count++];
    waiter->rid = req->msg.rid;
    waiter->covered = false;
    waiter->nenvelope = 0;
    for (int i = 0; i < req->nframes - 1; i++) {
        zmq_msg_init (&waiter->envelope [i]);
        zmq_msg_copy (&waiter->envelope [i], &req->frames [i]);
        waiter->nenvelope++;
    }
    s_start (self);
}

void
wc_snapshots_on_done (wc_snapshots_t *self)
{
    uint64_t seq = 0, bytes = 0;
    int rc = wc_engine_on_snapshot (self->node->engine, &seq, &bytes);
    if (rc == 0)
        return;                             /* nothing ended */
    s_answer (self, rc == 1 ? 0 : rc, seq, bytes);
    self->ours = false;
    if (self->count > 0)
        s_start (self);                     /* those that came meanwhile */
}
