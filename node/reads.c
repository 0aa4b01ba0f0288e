/*  reads.c - answer reads: GET (with consistency rules), PING, STATUS, DIGEST.

    Reads are answered from the store at once, with the node's applied
    seq, which is what makes session consistency possible: a client sends
    the highest seq it wrote or saw (min_seq) and a node only answers once
    it has applied that far.

    - A GET whose min_seq is ahead of the node is parked: the envelope
      frames (shared, not copied: zmq_msg_copy), the rid and a copy of the
      key are kept, and the GET is answered as soon as applied reaches
      min_seq, or with ESTALE ("applied=N") when its wait_ms runs out. A
      GET with wait_ms 0 gets ESTALE at once. Parked GETs are bounded
      (WC_READS_MAX_PARKED); past that a GET gets ESTALE at once.
    - A GET with max_staleness_ms gets ESTALE ("lag_ms=N") from a replica
      whose staleness estimate (replica.c) is larger. A primary is never
      stale.
*/
#include <string.h>
#include "log.h"
#include "reads.h"
#include "replica.h"
#include "role.h"

#define WC_READS_MAX_PARKED  10000

/*  A GET waiting for the node to apply min_seq. */
typedef struct {
    zmq_msg_t envelope [WC_REQUEST_MAX_FRAMES];   /* routing frames to reply through */
    int       nenvelope;
    uint64_t  rid;
    uint8_t  *key;                             /* owned copy */
    uint32_t  key_len;
    uint64_t  min_seq;
    uint64_t  min_epoch;
    int64_t   deadline_ms;                     /* monotonic */
} s_parked_t;

struct wc_reads {
    wc_node_t  *node;
    s_parked_t *parked;       /* WC_READS_MAX_PARKED slots */
    size_t      nparked;
};

wc_reads_t *
wc_reads_new (wc_node_t *node)
{
    wc_reads_t *self = (wc_reads_t *) calloc (1, sizeof (wc_reads_t));
    if (!self)
        return NULL;
    self->node = node;
    self->parked = (s_parked_t *) calloc (WC_READS_MAX_PARKED, sizeof (s_parked_t));
    if (!self->parked)
        wc_reads_destroy (&self);
    return self;
}

static void
s_parked_free (s_parked_t *parked)
{
    for (int i = 0; i < parked->nenvelope; i++)
        zmq_msg_close (&parked->envelope [i]);
    parked->nenvelope = 0;
    free (parked->key);
    parked->key = NULL;
}

/*  Move a parked GET to another slot (zmq_msg_t must not be copied as a
    struct: zmq_msg_move it). */
static void
s_parked_move (s_parked_t *dst, s_parked_t *src)
{
    *dst = *src;
    for (int i = 0; i < src->nenvelope; i++) {
        zmq_msg_init (&dst->envelope [i]);
        zmq_msg_move (&dst->envelope [i], &src->envelope [i]);
        zmq_msg_close (&src->envelope [i]);
    }
    src->nenvelope = 0;
    src->key = NULL;
}

void
wc_reads_destroy (wc_reads_t **self_p)
{
    wc_reads_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nparked; i++)
        s_parked_free (&self->parked [i]);
    free (self->parked);
    free (self);
    *self_p = NULL;
}

/*  Send node->out through the given envelope on the service socket. */
static void
s_send (wc_node_t *node, zmq_msg_t *envelope, int nenvelope)
{
    node->stats.bytes_out [WC_NODE_SERVICE] += node->out.size;
    if (wc_outbox_send (node->outbox, envelope, nenvelope, node->out.data,
                        node->out.size) != 0)
        node->send_failures++;
}

/*  Encode into node->out the VALUE answer for key. */
static int
s_encode_value (wc_node_t *node, uint64_t rid, const void *key, size_t key_len)
{
    const void *value = NULL;
    size_t len = 0;
    wc_msg_t reply = { .type = WC_MSG_VALUE, .rid = rid };
    reply.u.value.found = wc_store_get (wc_engine_store (node->engine), key, key_len, &value, &len) == 0;
    reply.u.value.value.ptr = (const uint8_t *) value;
    reply.u.value.value.len = (uint32_t) len;
    reply.u.value.seq = node->applied;
    reply.u.value.epoch = node->epoch;
    node->out.size = 0;
    return wc_msg_encode (&reply, &node->out);
}

/*  Encode into node->out an ESTALE answer saying how far we are. */
static int
s_encode_stale (wc_node_t *node, uint64_t rid, const char *what, uint64_t value)
{
    char detail [64];
    snprintf (detail, sizeof detail, "%s=%llu", what, (unsigned long long) value);
    node->out.size = 0;
    wc_node_count_refusal (node, WALCAST_ESTALE);
    return wc_error_encode (rid, WALCAST_ESTALE, NULL, detail, &node->out);
}

/*  The token (min_epoch, min_seq) is not in this node's history: an
    epoch after min_epoch begins here at or before min_seq, while the
    session saw min_seq in min_epoch or earlier (a deposed primary's
    writes, rolled back by a failover). *end gets the last seq of the
    epochs up to min_epoch here. A node in min_epoch or before cannot
    tell (it waits, as a node behind). */
static bool
s_rolled_back (const wc_node_t *node, uint64_t min_seq, uint64_t min_epoch,
               uint64_t *end)
{
    if (min_epoch == 0 || node->epoch <= min_epoch)
        return false;
    *end = wc_epochs_last_seq (wc_engine_epochs (node->engine), min_epoch, UINT64_MAX);
    return *end < min_seq;
}

/*  Encode into node->out the ECONFLICT of a token this history does not
    hold: "end=X epoch=F", X the last seq of the token's epoch here, F
    our latest epoch. */
static int
s_encode_rolled_back (wc_node_t *node, uint64_t rid, uint64_t end)
{
    char detail [64];
    snprintf (detail, sizeof detail, "end=%llu epoch=%llu", (unsigned long long) end,
              (unsigned long long) node->epoch);
    node->out.size = 0;
    wc_node_count_refusal (node, WALCAST_ECONFLICT);
    return wc_error_encode (rid, WALCAST_ECONFLICT, NULL, detail, &node->out);
}

/*  The node holds the token (min_epoch, min_seq): it applied min_seq and
    its history reached min_epoch. A node still in an older epoch (a
    deposed primary, a replica cut off with it) may have applied more
    seqs than the token's, of another history. */
static bool
s_caught_up (const wc_node_t *node, uint64_t min_seq, uint64_t min_epoch)
{
    return node->applied >= min_seq && node->epoch >= min_epoch;
}

/*  Keep a GET until min_seq is applied; false when there is no room. */
static bool
s_park (wc_reads_t *self, wc_request_t *req)
{
    if (self->nparked == WC_READS_MAX_PARKED)
        return false;
    s_parked_t *parked = &self->parked [self->nparked];
    const wc_bytes_t *key = &req->msg.u.req.key;
    parked->key = (uint8_t *) malloc (key->len);
    if (!parked->key)
        return false;
    memcpy (parked->key, key->ptr, key->len);
    parked->key_len = key->len;
    parked->rid = req->msg.rid;
    parked->min_seq = req->msg.u.req.min_seq;
    parked->min_epoch = req->msg.u.req.min_epoch;
    parked->deadline_ms = wc_clock_ms () + req->msg.u.req.wait_ms;
    parked->nenvelope = 0;
    for (int i = 0; i < req->nframes - 1; i++) {
        zmq_msg_init (&parked->envelope [i]);
        zmq_msg_copy (&parked->envelope [i], &req->frames [i]);
        parked->nenvelope++;
    }
    self->nparked++;
    return true;
}

static void
s_answer_get (wc_reads_t *self, wc_request_t *req)
{
    wc_node_t *node = self->node;
    const wc_msg_t *msg = &req->msg;
    uint32_t max_staleness = msg->u.req.max_staleness_ms;
    if (node->replica && max_staleness > 0) {
        uint64_t lag = wc_replica_lag_ms (node->replica);
        if (lag > max_staleness) {
            if (s_encode_stale (node, msg->rid, "lag_ms", lag) == 0)
                wc_node_reply (node, node->service, req);
            return;
        }
    }
    uint64_t end = 0;
    if (s_rolled_back (node, msg->u.req.min_seq, msg->u.req.min_epoch, &end)) {
        if (s_encode_rolled_back (node, msg->rid, end) == 0)
            wc_node_reply (node, node->service, req);
        return;
    }
    if (!s_caught_up (node, msg->u.req.min_seq, msg->u.req.min_epoch)) {
        if (msg->u.req.wait_ms > 0 && s_park (self, req))
            return;
        if (s_encode_stale (node, msg->rid, "applied", node->applied) == 0)
            wc_node_reply (node, node->service, req);
        return;
    }
    node->stats.reads++;
    if (s_encode_value (node, msg->rid, msg->u.req.key.ptr, msg->u.req.key.len) == 0)
        wc_node_reply (node, node->service, req);
}

/*  STATUS: what the node is, where it is, how far behind. */
static int
s_encode_status (wc_node_t *node, uint64_t rid)
{
    wc_msg_t reply = { .type = WC_MSG_STATUS_REPLY, .rid = rid };
    const char *primary = node->replica ? wc_replica_primary (node->replica) : "";
    reply.u.status.id.ptr = (const uint8_t *) node->cfg.id;
    reply.u.status.id.len = (uint32_t) strlen (node->cfg.id);
    reply.u.status.region.ptr = (const uint8_t *) node->cfg.region;
    reply.u.status.region.len = (uint32_t) strlen (node->cfg.region);
    reply.u.status.role = (uint8_t) node->role;
    reply.u.status.epoch = node->epoch;
    reply.u.status.applied_seq = node->applied;
    reply.u.status.primary.ptr = (const uint8_t *) primary;
    reply.u.status.primary.len = (uint32_t) strlen (primary);
    reply.u.status.primary_seq = node->replica
        ? wc_replica_primary_seq (node->replica) : node->applied;
    reply.u.status.lag_ms = node->replica ? wc_replica_lag_ms (node->replica) : 0;
    reply.u.status.flags = node->candidate ? WC_NODE_CANDIDATE : 0;
    return wc_msg_encode (&reply, &node->out);
}

/*  PONG: liveness, position, clock, and who we are (for clients that have
    no broker to tell them). */
static int
s_encode_pong (wc_node_t *node, uint64_t rid)
{
    wc_msg_t reply = { .type = WC_MSG_PONG, .rid = rid };
    reply.u.pong.epoch = node->epoch;
    reply.u.pong.seq = node->applied;
    reply.u.pong.clock_ms = wc_clock_wall_ms ();
    reply.u.pong.role = (uint8_t) node->role;
    reply.u.pong.id.ptr = (const uint8_t *) node->cfg.id;
    reply.u.pong.id.len = (uint32_t) strlen (node->cfg.id);
    reply.u.pong.region.ptr = (const uint8_t *) node->cfg.region;
    reply.u.pong.region.len = (uint32_t) strlen (node->cfg.region);
    reply.u.pong.lag_ms = node->replica ? wc_replica_lag_ms (node->replica) : 0;
    return wc_msg_encode (&reply, &node->out);
}

/*  Refuse a GET with EUNAVAILABLE for why, in the detail too (a client
    shows the detail). */
static void
s_refuse_get (wc_node_t *node, wc_request_t *req, const char *why)
{
    wc_node_count_refusal (node, WALCAST_EUNAVAILABLE);
    if (wc_error_encode (req->msg.rid, WALCAST_EUNAVAILABLE, why, why, &node->out) == 0)
        wc_node_reply (node, node->service, req);
}

int
wc_reads_answer (wc_reads_t *self, wc_request_t *req)
{
    wc_node_t *node = self->node;
    node->out.size = 0;
    int rc = 0;
    switch (req->msg.type) {
        case WC_MSG_GET:
            if (wc_role_diverged (node))
                s_refuse_get (node, req, "diverged from its upstream; resync needed");
            else
            if (node->replica && wc_replica_foreign (node->replica))
                s_refuse_get (node, req, "its upstream is a node of another cluster; "
                                         "waiting for its own");
            else
                s_answer_get (self, req);
            return 0;
        case WC_MSG_PING:
            rc = s_encode_pong (node, req->msg.rid);
            break;
        case WC_MSG_STATUS:
            rc = s_encode_status (node, req->msg.rid);
            break;
        case WC_MSG_DIGEST: {
            wc_msg_t reply = { .type = WC_MSG_DIGEST_REPLY, .rid = req->msg.rid };
            reply.u.digest.seq = node->applied;
            reply.u.digest.hash = wc_store_digest (wc_engine_store (node->engine));
            rc = wc_msg_encode (&reply, &node->out);
            break;
        }
        default:
            return WALCAST_EPROTO;
    }
    if (rc == 0)
        wc_node_reply (node, node->service, req);
    return 0;
}

int
wc_reads_tick (wc_reads_t *self)
{
    if (self->nparked == 0)
        return 1000;
    wc_node_t *node = self->node;
    int64_t now = wc_clock_ms ();
    int64_t next = now + 1000;
    size_t kept = 0;
    for (size_t i = 0; i < self->nparked; i++) {
        s_parked_t *parked = &self->parked [i];
        int rc = -1;
        uint64_t end = 0;
        if (s_rolled_back (node, parked->min_seq, parked->min_epoch, &end))
            rc = s_encode_rolled_back (node, parked->rid, end);
        else
        if (s_caught_up (node, parked->min_seq, parked->min_epoch)) {
            rc = s_encode_value (node, parked->rid, parked->key, parked->key_len);
            node->stats.reads++;
        }
        else
        if (now >= parked->deadline_ms)
            rc = s_encode_stale (node, parked->rid, "applied", node->applied);
        else {
            if (parked->deadline_ms < next)
                next = parked->deadline_ms;
            if (kept != i)
                s_parked_move (&self->parked [kept], parked);
            kept++;
            continue;
        }
        if (rc == 0)
            s_send (node, parked->envelope, parked->nenvelope);
        s_parked_free (parked);
    }
    self->nparked = kept;
    return (int) (next - now);
}
