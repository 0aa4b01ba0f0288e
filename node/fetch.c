/*  fetch.c - serve FETCH requests from the WAL (see fetch.h).

    The reply is built in two buffers: the WAL's payloads are copied as
    they are into a body buffer while counting them, then the ENTRIES head
    (which carries the count) is written and the body appended. Entries
    are never decoded or re-encoded on this path.
*/
#include <stdio.h>
#include "cluster.h"
#include "fetch.h"
#include "log.h"
#include "role.h"

/*  Collects WAL payloads for one reply. */
typedef struct {
    uint64_t         applied;     /* serve nothing past what we applied */
    msgpack_sbuffer *body;
    uint32_t         count;
    int              rc;
} s_collect_t;

static int
s_collect (void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    s_collect_t *collect = (s_collect_t *) arg;
    if (collect->count == WC_MAX_BATCH || seq > collect->applied)
        return 1;
    if (msgpack_sbuffer_write (collect->body, (const char *) payload, len) != 0) {
        collect->rc = WALCAST_ENOMEM;
        return 1;
    }
    collect->count++;
    return 0;
}

/*  EPOCH_END: where the epoch asked (or the newest one before it) ends in
    our history; our last applied seq when that is our latest epoch. */
static void
s_serve_epoch_end (wc_node_t *node, wc_request_t *req)
{
    uint64_t found = 0, end = 0;
    wc_engine_epoch_end (node->engine, req->msg.u.epoch_end.epoch, &found, &end);
    if (found != 0 && found == wc_engine_epoch (node->engine))
        end = node->applied;
    wc_msg_t reply = { .type = WC_MSG_EPOCH_END_REPLY, .rid = req->msg.rid };
    reply.u.epoch_end.epoch = found;
    reply.u.epoch_end.end_seq = end;
    reply.u.epoch_end.latest = wc_engine_epoch (node->engine);
    reply.u.epoch_end.cluster = wc_engine_cluster (node->engine);
    node->out.size = 0;
    if (wc_msg_encode (&reply, &node->out) == 0)
        wc_node_reply (node, node->catchup, req);
}

/*  SNAPSHOT_GET: a chunk of one of our snapshots (a replica that needs
    entries our log no longer holds installs it). */
static void
s_serve_snapshot_get (wc_node_t *node, wc_request_t *req)
{
    size_t max = req->msg.u.snapshot_get.max_bytes;
    if (max > WC_MAX_SNAPSHOT_CHUNK)
        max = WC_MAX_SNAPSHOT_CHUNK;
    void *buf = malloc (max ? max : 1);
    if (!buf) {
        wc_node_reply_error (node, node->catchup, req, WALCAST_ENOMEM, NULL, NULL);
        return;
    }
    uint64_t snap_seq = 0, size = 0;
    size_t got = 0;
    int rc = wc_engine_snapshot_read (node->engine, req->msg.u.snapshot_get.seq,
                                      req->msg.u.snapshot_get.offset, buf, max,
                                      &snap_seq, &size, &got);
    if (rc) {
        const char *text = rc == WALCAST_ENOTFOUND ? "this node has no snapshot"
                         : rc == WALCAST_ERANGE ? "that snapshot is gone; ask for the newest"
                         : rc == WALCAST_EINVAL ? "offset past the end of the snapshot" : NULL;
        wc_node_reply_error (node, node->catchup, req, rc, text, NULL);
    }
    else {
        wc_msg_t reply = { .type = WC_MSG_SNAPSHOT_CHUNK, .rid = req->msg.rid };
        reply.u.snapshot_chunk.seq = snap_seq;
        reply.u.snapshot_chunk.size = size;
        reply.u.snapshot_chunk.offset = req->msg.u.snapshot_get.offset;
        reply.u.snapshot_chunk.data = (wc_bytes_t) { (const uint8_t *) buf, (uint32_t) got };
        node->out.size = 0;
        if (wc_msg_encode (&reply, &node->out) == 0)
            wc_node_reply (node, node->catchup, req);
    }
    free (buf);
}

/*  A FETCH or SNAPSHOT_GET from a replica of another cluster gets
    ECONFLICT and nothing of our history: it follows an address where a
    node of its own cluster used to answer. An id of 0 (none yet, or a
    peer before 0.7) is not checked. */
static bool
s_same_cluster (wc_node_t *node, wc_request_t *req)
{
    uint64_t theirs = req->msg.type == WC_MSG_FETCH ? req->msg.u.fetch.cluster
                    : req->msg.type == WC_MSG_SNAPSHOT_GET ? req->msg.u.snapshot_get.cluster
                    : 0;
    uint64_t ours = wc_engine_cluster (node->engine);
    if (theirs == 0 || ours == 0 || theirs == ours)
        return true;
    char text [WC_MAX_TEXT], a [24], b [24];
    snprintf (text, sizeof text, "this node is of cluster %s, not %s",
              wc_cluster_text (ours, a, sizeof a), wc_cluster_text (theirs, b, sizeof b));
    wc_node_reply_error (node, node->catchup, req, WALCAST_ECONFLICT, text, NULL);
    return false;
}

void
wc_fetch_serve (wc_node_t *node, wc_request_t *req)
{
    if (req->rc) {
        wc_node_reply_error (node, node->catchup, req, req->rc, NULL, NULL);
        return;
    }
    if (wc_role_diverged (node)) {
        //  Its history forked: passing it on would spread the fork
        wc_node_reply_error (node, node->catchup, req, WALCAST_EUNAVAILABLE,
                             "this node diverged from its upstream; resync needed", NULL);
        return;
    }
    if (req->msg.type == WC_MSG_EPOCH_END) {
        s_serve_epoch_end (node, req);
        return;
    }
    if (!s_same_cluster (node, req))
        return;
    if (req->msg.type == WC_MSG_SNAPSHOT_GET) {
        s_serve_snapshot_get (node, req);
        return;
    }
    if (req->msg.type != WC_MSG_FETCH) {
        node->bad_messages++;
        wc_node_reply_error (node, node->catchup, req, WALCAST_EPROTO,
                             "not a catch-up request", NULL);
        return;
    }
    uint64_t from = req->msg.u.fetch.from_seq;
    uint64_t first = wc_engine_first_seq (node->engine);
    if (from == 0 || (first > 0 && from < first)) {
        wc_node_reply_error (node, node->catchup, req, WALCAST_ERANGE,
                             "seq below the oldest retained entry", NULL);
        return;
    }
    size_t max_bytes = req->msg.u.fetch.max_bytes;
    if (max_bytes > WC_MAX_FETCH_BYTES)
        max_bytes = WC_MAX_FETCH_BYTES;

    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    s_collect_t collect = { .applied = node->applied, .body = &body };
    int rc = 0;
    if (from <= node->applied)
        rc = wc_engine_read (node->engine, from, max_bytes, s_collect, &collect);
    if (rc < 0 || collect.rc) {
        rc = rc < 0 ? rc : collect.rc;
        wc_log_error ("catch-up: cannot read the log from seq %llu: %s",
                      (unsigned long long) from, walcast_strerror (rc));
        wc_node_reply_error (node, node->catchup, req, rc, NULL, NULL);
    }
    else {
        node->out.size = 0;
        if (wc_entries_encode_header (req->msg.rid, node->applied, collect.count,
                                      &node->out) == 0
        &&  msgpack_sbuffer_write (&node->out, body.data, body.size) == 0)
            wc_node_reply (node, node->catchup, req);
        node->stats.fetches++;
    }
    msgpack_sbuffer_destroy (&body);
}
