/*  request.c - one request on a ROUTER socket (see request.h).

    Frames are moved, not copied, into the request's slot, so a body the
    codec decodes in place stays valid until the slot is released. Only the
    first frame is awaited without blocking: the rest of a multipart message
    arrives with it. A message cut short (EINTR between frames), with too
    many frames or with an envelope frame longer than a routing id can be
    is dropped whole, so the next message starts clean.
*/
#include <errno.h>
#include <string.h>
#include "request.h"
#include "scan.h"

void
wc_request_init (wc_request_t *req)
{
    memset (req, 0, sizeof *req);
    msgpack_unpacked_init (&req->unpacked);
}

void
wc_request_destroy (wc_request_t *req)
{
    wc_request_release (req);
    msgpack_unpacked_destroy (&req->unpacked);
}

bool
wc_request_is_write (const wc_request_t *req)
{
    return req->rc == 0
        && (req->msg.type == WC_MSG_PUT || req->msg.type == WC_MSG_DEL
            || req->msg.type == WC_MSG_WRITE_BATCH);
}

void
wc_request_release (wc_request_t *req)
{
    for (int i = 0; i < req->nframes; i++)
        zmq_msg_close (&req->frames [i]);
    req->nframes = 0;
}

/*  A WRITE_BATCH in the canonical form (every writer of ours sends it) is
    read by the scan, without building msgpack-c's objects for each
    write: the primary reads the writes from the body (msg.u.batch.raw).
    Anything else goes to the codec. */
static bool
s_scan_batch (wc_request_t *req, const void *data, size_t len)
{
    wc_scan_writes_t cursor;
    if (wc_scan_write_batch (data, len, &cursor) != 0)
        return false;
    req->msg.type = WC_MSG_WRITE_BATCH;
    req->msg.rid = cursor.rid;
    req->msg.u.batch.acks = cursor.acks;
    req->msg.u.batch.ack_timeout_ms = cursor.ack_timeout_ms;
    req->msg.u.batch.count = cursor.count;
    req->msg.u.batch.raw = (const uint8_t *) data;
    req->msg.u.batch.raw_len = len;
    return true;
}

int
wc_request_recv (void *router, wc_request_t *req)
{
    req->nframes = 0;
    bool dropped = false;
    int more = 1;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        bool first = req->nframes == 0 && !dropped;
        if (zmq_msg_recv (&frame, router, first ? ZMQ_DONTWAIT : 0) == -1) {
            zmq_msg_close (&frame);
            if (first)
                return 0;           /* nothing waiting (or EINTR) */
            dropped = true;         /* cut short */
            break;
        }
        more = zmq_msg_more (&frame);
        //  Routing ids are short: a longer envelope frame is an attack on
        //  memory (a parked GET keeps its envelope), never a real route.
        if (more && zmq_msg_size (&frame) > WC_MAX_ENVELOPE_FRAME)
            dropped = true;
        if (dropped || req->nframes == WC_REQUEST_MAX_FRAMES) {
            dropped = true;
            zmq_msg_close (&frame);
            continue;
        }
        zmq_msg_init (&req->frames [req->nframes]);
        zmq_msg_move (&req->frames [req->nframes], &frame);
        zmq_msg_close (&frame);
        req->nframes++;
    }
    if (dropped || req->nframes < 2) {
        wc_request_release (req);
        return -1;
    }
    zmq_msg_t *body = &req->frames [req->nframes - 1];
    memset (&req->msg, 0, sizeof req->msg);
    req->epoch = req->seq = 0;
    req->taken = 0;
    req->refused = 0;
    if (s_scan_batch (req, zmq_msg_data (body), zmq_msg_size (body)))
        req->rc = 0;
    else
        req->rc = wc_msg_decode (zmq_msg_data (body), zmq_msg_size (body),
                                 &req->unpacked, &req->msg);
    return 1;
}

/*  The first frame of a reply (the routing id picks the peer's queue; a
    ROUTER refuses a reply there or not at all). libzmq learns what a peer
    has read from its I/O thread's commands, and a send looks at them only
    about once a millisecond: a burst of replies meets a queue "full" of
    what the peer has long read. Reading ZMQ_EVENTS takes in every pending
    command; then the frame is tried once more. */
static int
s_send_first (void *router, zmq_msg_t *frame)
{
    const int flags = ZMQ_SNDMORE | ZMQ_DONTWAIT;
    void *data = zmq_msg_data (frame);
    size_t size = zmq_msg_size (frame);
    if (zmq_send (router, data, size, flags) != -1)
        return 0;
    if (zmq_errno () != EAGAIN)
        return -1;
    int events;
    size_t events_len = sizeof events;
    if (zmq_getsockopt (router, ZMQ_EVENTS, &events, &events_len) == -1)
        return -1;
    return zmq_send (router, data, size, flags) == -1 ? -1 : 0;
}

int
wc_request_reply (void *router, wc_request_t *req, const void *body, size_t len)
{
    for (int i = 0; i < req->nframes - 1; i++) {
        zmq_msg_t *frame = &req->frames [i];
        int rc = i == 0 ? s_send_first (router, frame)
               : zmq_send (router, zmq_msg_data (frame), zmq_msg_size (frame),
                           ZMQ_SNDMORE | ZMQ_DONTWAIT);
        if (rc == -1)
            return -1;
    }
    return zmq_send (router, body, len, ZMQ_DONTWAIT) == -1 ? -1 : 0;
}
