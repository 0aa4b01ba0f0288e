/*  outbox.h - replies to ROUTER peers, bounded in bytes per peer.

    libzmq bounds a peer's queue in messages (HWM), not bytes. The outbox
    makes the bound hold in bytes with two ideas:

    - Small replies (at most WC_OUTBOX_SMALL bytes, nearly all of them)
      go straight to the socket, whose send HWM is a byte budget divided
      by WC_OUTBOX_SMALL (runtime/sock.h), so bursts of small replies to
      a pipelining client fit while their bytes stay bounded.
    - Large replies (GET of a big value) are sent zero-copy, and libzmq
      calls back when it has written one to the connection: the outbox
      counts each peer's large bytes in flight exactly, and holds a large
      reply back while that peer has `budget` bytes in flight.

    A reply the socket or the in-flight bound refuses waits in the outbox,
    behind any earlier one for the same peer, and goes out on a later
    turn, in order. At most `budget` bytes wait per peer: a peer that
    passes it, or whose queue does not move for 10 s, is cut off: what
    waits for it is dropped, the event is logged ("cut off: ..."), and
    its requests are refused (wc_outbox_refused) for a while. (A ROUTER
    cannot close one peer's connection; libzmq's heartbeats close it once
    the peer's own queues are full and it stops answering them.) A client
    that misbehaves loses its service, not the node its memory.
*/
#ifndef WC_OUTBOX_H_INCLUDED
#define WC_OUTBOX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef struct wc_outbox wc_outbox_t;

/*  Replies up to this size are "small" (see above). */
#define WC_OUTBOX_SMALL  4096u

/*  An outbox for router (a libzmq ROUTER handle, ROUTER_MANDATORY set);
    name is the socket's, for logs; budget the bytes of large replies in
    flight, and the bytes waiting, per peer. NULL when out of memory. */
wc_outbox_t *wc_outbox_new (void *router, const char *name, size_t budget);

/*  Drop whatever waits and free the outbox; *self_p becomes NULL. */
void wc_outbox_destroy (wc_outbox_t **self_p);

/*  Send body through the envelope frames (envelope [0] is the peer's
    routing id), or keep it for later. Returns 0 when sent or kept, -1
    when dropped (the peer is gone or cut off). */
int wc_outbox_send (wc_outbox_t *self, const zmq_msg_t *envelope, int nenvelope,
                    const void *body, size_t len);

/*  Send what waits, as far as the peers' queues allow. Returns ms until
    it is worth trying again: 0 when something went out (try at once), a
    few ms when nothing could, -1 when nothing waits. */
int wc_outbox_flush (wc_outbox_t *self);

/*  True when the peer whose routing id is identity is cut off: drop its
    request. */
bool wc_outbox_refused (wc_outbox_t *self, const zmq_msg_t *identity);

/*  Bytes waiting, replies dropped, peers cut off so far. */
size_t wc_outbox_bytes (const wc_outbox_t *self);
uint64_t wc_outbox_dropped (const wc_outbox_t *self);
uint64_t wc_outbox_cut_offs (const wc_outbox_t *self);

#endif
