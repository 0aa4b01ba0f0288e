/*  sock.h - ZeroMQ sockets set up the walcast way.

    Every socket a node or broker binds or connects gets the same basics:
    no linger, ZMTP heartbeats (TCP keepalive on SUB and ROUTER sockets:
    see sock.c) so a dead TCP peer is noticed, and limits
    in BYTES per peer. libzmq bounds its queues in messages (HWM) and a
    single frame in bytes (MAXMSGSIZE); a socket is described here by the
    largest message a peer may send it, the largest it sends, and the
    bytes one peer's queue may hold each way, and the HWMs follow:

        receive HWM = (in_budget or budget) / largest incoming message
        send HWM    = budget / largest outgoing message

    so that what one peer can make the process hold is bounded by the
    budget, whatever the mix of message sizes.

    With CURVE on in the process (wc_sock_set_curve, issue 9), every socket
    bound here is a CURVE server that authenticates its clients (curve.h),
    and every socket connected here a CURVE client of the server key it is
    given; a connect without one fails, saying which flag gives it.
*/
#ifndef WC_SOCK_H_INCLUDED
#define WC_SOCK_H_INCLUDED

#include <czmq.h>
#include <stddef.h>
#include "curve.h"

typedef struct {
    int         type;           /* ZMQ_ROUTER, ZMQ_XPUB, ZMQ_SUB, ... */
    const char *name;           /* "service", for logs */
    size_t      max_in;         /* largest frame a peer may send (MAXMSGSIZE) */
    size_t      max_out;        /* largest message we send */
    size_t      budget;         /* bytes one peer's queue may hold, each way */
    size_t      in_budget;      /* bytes of its incoming queue, when not budget */
    int         min_hwm;        /* never fewer messages than this per queue */
} wc_sock_spec_t;

/*  A socket per spec, bound to tcp://addr:port. NULL on failure, with
    the reason and a remedy in why (e.g. the port is taken). */
zsock_t *wc_sock_bind (const wc_sock_spec_t *spec, const char *addr, int port,
                       char *why, size_t why_size);

/*  Say in why why a bind of the named socket to addr:port failed with
    errno err, and what to do about it. */
void wc_sock_bind_why (const char *name, const char *addr, int port, int err,
                       char *why, size_t why_size);

/*  A socket per spec, connected to endpoint (tcp://HOST:PORT). NULL on
    failure, with the reason in why. */
zsock_t *wc_sock_connect (const wc_sock_spec_t *spec, const char *endpoint,
                          char *why, size_t why_size);

/*  The same, as a CURVE client of server_key (Z85; NULL or "" when the
    server has none) when CURVE is on. */
zsock_t *wc_sock_connect_to (const wc_sock_spec_t *spec, const char *endpoint,
                             const char *server_key, char *why, size_t why_size);

/*  Turn CURVE on for every socket made from now on (NULL: off). The
    process keeps ownership of curve. */
void wc_sock_set_curve (wc_curve_t *curve);

/*  The process's CURVE, or NULL when it is off. */
wc_curve_t *wc_sock_curve (void);

/*  Make sock a CURVE client of server_key when CURVE is on; 0, or -1
    with the reason in why (no key known for endpoint). */
int wc_sock_secure_client (zsock_t *sock, const char *endpoint, const char *server_key,
                           char *why, size_t why_size);

#endif
