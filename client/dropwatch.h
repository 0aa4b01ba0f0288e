/*  dropwatch.h - see the moment one socket's connection drops.

    A sync write waits for its answer on the connection it went on. When
    that connection drops (the node died, restarted, or the network broke)
    the answer can never come, and the call should say so at once instead
    of waiting out its timeout. A PING finds no connection only while the
    node is down; one restarted faster than that is missed. A ZeroMQ
    socket monitor sees every disconnect, so the handle keeps one, on the
    socket of the node its sync write waits for (one at a time: a monitor
    costs two file descriptors, and a table holds up to 256 nodes).

    The monitor's events arrive on a PAIR socket that the caller polls
    with its own sockets; wc_dropwatch_read counts the disconnects among
    them. Attaching to another socket starts a new monitor on a new
    inproc endpoint, so no event of an earlier socket is ever counted for
    a later one.

    One rule the caller keeps: libzmq's I/O thread sends each event and
    blocks, for good, when our PAIR is gone while the monitor still runs.
    So our PAIR is closed only once the monitor is stopped: by
    wc_dropwatch_release on the socket while it is open, or by
    zmq_socket_monitor (sock, NULL, 0) before closing it (zmq_close alone
    stops the monitor later, on libzmq's reaper thread; the node table
    does this for every socket it closes). Likewise the watch is
    destroyed after the socket it watches.
    (Events never fill our PAIR: it queues without a bound, and they are
    few, one per dropped connection.)
*/
#ifndef WC_DROPWATCH_H
#define WC_DROPWATCH_H

#include <stdint.h>

typedef struct wc_dropwatch wc_dropwatch_t;

/*  A watch in the zmq context ctx, on no socket yet. NULL when out of
    memory. */
wc_dropwatch_t *wc_dropwatch_new (void *ctx);

/*  Close the PAIR socket; *self_p becomes NULL. Call it after the socket
    watched was closed (or released) and before the context is
    terminated. */
void wc_dropwatch_destroy (wc_dropwatch_t **self_p);

/*  Stop watching. sock is the socket watched when it is still open (its
    monitor is stopped first), NULL when it was closed. */
void wc_dropwatch_release (wc_dropwatch_t *self, void *sock);

/*  Watch sock, known to the caller as id (unique for the life of the
    handle: a socket opened later at the same address has another id).
    Nothing is done when sock is watched already; a socket watched before
    must have been closed or released. 0, or WALCAST_EUNAVAILABLE when
    the monitor could not start (nothing is watched then, and the caller
    falls back to its PINGs). */
int wc_dropwatch_attach (wc_dropwatch_t *self, void *sock, uint64_t id);

/*  The id of the socket watched, 0 when none. */
uint64_t wc_dropwatch_id (const wc_dropwatch_t *self);

/*  The PAIR socket to poll for ZMQ_POLLIN, NULL when nothing is watched. */
void *wc_dropwatch_socket (const wc_dropwatch_t *self);

/*  Take every event waiting, without blocking; returns how many of them
    said the watched socket's connection dropped. */
uint32_t wc_dropwatch_read (wc_dropwatch_t *self);

#endif
