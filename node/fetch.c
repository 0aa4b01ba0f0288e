/*  fetch.c - serve FETCH requests from the WAL (see fetch.h).

    The reply is built in two buffers: the WAL's payloads are copied as
    they are into a body buffer while counting them, then the ENTRIES head
    (which carries the count) is written and the body appended. Entries
    are never decoded or re-encoded on this path.
*/
#include "fetch.h"
#include "log.h"

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

void
wc_fetch_serve (wc_node_t *node, wc_request_t *req)
{
    if (req->rc) {
        wc_node_reply_error (node, node->catchup, req, req->rc, NULL, NULL);
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
    }
    msgpack_sbuffer_destroy (&body);
}
