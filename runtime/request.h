/*  request.h - one request on a ROUTER socket: receive, decode, reply.

    A request arrives as [routing envelope frames...][body]: one frame of
    envelope from a DEALER, more from a REQ or through proxies. The reply
    goes back through the same envelope frames, then one body frame. The
    node's service and catch-up sockets and the broker's socket all speak
    this way, so they share this code.
*/
#ifndef WC_REQUEST_H_INCLUDED
#define WC_REQUEST_H_INCLUDED

#include <stdbool.h>
#include <zmq.h>
#include "codec.h"

/*  Most frames a request may carry: routing envelope plus body. */
#define WC_REQUEST_MAX_FRAMES  WC_MAX_FRAMES

typedef struct {
    zmq_msg_t        frames [WC_REQUEST_MAX_FRAMES];   /* envelope..., body */
    int              nframes;
    msgpack_unpacked unpacked;                         /* owns msg's objects */
    wc_msg_t         msg;       /* decoded body; type and rid set when readable */
    int              rc;        /* decode result; later, the outcome */
    uint64_t         epoch, seq;                       /* a write's position (a
                                                          batch's: its last) */
    uint32_t         taken;     /* WRITE_BATCH: writes taken, from the first */
    int              refused;   /* WRITE_BATCH: why the others were not, 0 */
} wc_request_t;

/*  Prepare / free a request slot (its decode storage). */
void wc_request_init (wc_request_t *req);
void wc_request_destroy (wc_request_t *req);

/*  Take one request off a ROUTER socket (a libzmq handle) without waiting
    for the first frame. Returns 1 with req filled (req->rc is the decode
    result), 0 when nothing is waiting, -1 when a message was dropped (more
    than WC_REQUEST_MAX_FRAMES frames, an envelope frame over
    WC_MAX_ENVELOPE_FRAME octets, no body, or cut short). */
int wc_request_recv (void *router, wc_request_t *req);

/*  A well-formed PUT or DEL (decoded, not refused). */
bool wc_request_is_write (const wc_request_t *req);

/*  Close the request's frames (the slot can be reused). */
void wc_request_release (wc_request_t *req);

/*  Send body back through req's envelope, never blocking. Returns 0, or
    -1 when the peer is gone or its queue is full (the reply is dropped). */
int wc_request_reply (void *router, wc_request_t *req, const void *body,
                      size_t len);

#endif
