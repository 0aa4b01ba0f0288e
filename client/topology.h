/*  topology.h - the nodes a client handle knows, and how far each one is.

    One wc_peer_t per node (a peer: the client's record of a node, not
    the node itself): where it is (HOST:PORT and the DEALER socket
    connected to its service port), who it is (id, region, role, epoch,
    applied seq, lag: from the broker's TOPOLOGY or from its own PONGs),
    whether the broker thinks it is up, whether it answers us
    (reachable), and its round-trip time as an exponentially weighted
    moving average. walcast.c sends the requests and reads the replies;
    this module keeps the table and the rules that update it:

    - RTT: each PONG is a sample, avg = 0.8 * avg + 0.2 * sample, the
      first sample taken as it is (wc_topology_ewma). Only honest
      samples count: not the first PING of a connection (it waited for
      the handshakes, several round trips), not a PONG that sat in the
      queue while the handle was not looking (it would measure the time
      between two calls, not the link).
    - Liveness: one PING in flight per node at most; a new one goes out
      when the last is 1 s old and answered. A PING unanswered for 2 s
      makes the node unreachable (reads skip it) until a PONG comes back;
      so does a request that timed out (walcast.c).
    - Discovery: a TOPOLOGY is a full list. Nodes are matched by id (or,
      for a node added by address and not yet named, by address); a
      node whose address changed gets its socket moved; a node the
      broker described before but no longer lists is marked down.

    - CURVE: with keys (wc_topology_set_curve) every socket is a CURVE
      client of its node. A node's server key is the one its TOPOLOGY
      entry gives (curve_key), else the table's default (the key of the
      nodes named by address, walcast_set_curve_server). A node whose
      key and the table's keys do not go together (keys and no server
      key, or a server key and no keys of our own) gets no socket: it
      is refused (curve_refusal says why) rather than asked in vain.

    The table is bounded (WC_TOPOLOGY_MAX nodes, each with a socket that
    is PINGed, well under libzmq's 1023 sockets per context and the
    usual 1024 file descriptors). When it is full, a new node takes the
    slot of one that is gone: down and no longer listed by the broker,
    or, for a node the broker never described, unreachable; never a node
    added with walcast_connect (pinned). Indexes are stable otherwise:
    a slot changes hands only in wc_topology_add / wc_topology_apply,
    which say so (*replaced, *moved). Node pointers do not survive
    either call.
*/
#ifndef WC_TOPOLOGY_H_INCLUDED
#define WC_TOPOLOGY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "certs.h"
#include "codec.h"
#include "select.h"

/*  PING timing, in microseconds of the monotonic clock. */
#define WC_PING_INTERVAL_US     1000000     /* a new PING after 1 s */
#define WC_PING_DEAD_US         2000000     /* unanswered 2 s: unreachable */

/*  Most nodes a table holds (see above). */
#define WC_TOPOLOGY_MAX         256

/*  Why a node has no socket although its address is good. */
typedef enum {
    WC_CURVE_OK = 0,            /* nothing refused */
    WC_CURVE_NO_SERVER_KEY,     /* we have keys, no key is known for it */
    WC_CURVE_NO_CERT            /* it has a key, we have none of our own */
} wc_curve_refusal_t;

/*  One node. */
typedef struct {
    char     addr [WC_MAX_ADDR + 1];            /* "HOST:PORT" (base port) */
    char     endpoint [WC_MAX_ADDR + 8];        /* "tcp://HOST:PORT" */
    bool     ipv6;                              /* bracketed IPv6 host */
    void    *sock;              /* DEALER to the service port; NULL after a failed open */
    uint64_t sock_id;           /* sock's number, unique for the table's life
                                   (a socket opened later at the same address
                                   has another); 0 with no socket */
    char     id [WC_MAX_ID + 1];                /* "" until known */
    char     region [WC_MAX_ID + 1];            /* "" none or unknown */
    char     primary [WC_MAX_ADDR + 1];         /* who it follows (broker) */
    uint8_t  role;              /* wc_role_t, 0 unknown */
    uint64_t epoch;
    uint64_t applied_seq;
    uint64_t lag;               /* entries behind its primary (broker) */
    uint64_t lag_ms;            /* its staleness estimate */
    bool     lag_known;         /* lag came from the broker */
    bool     up;                /* broker's view; true when it never said */
    uint64_t flags;             /* WC_NODE_* as the broker's TOPOLOGY says;
                                   0 when it never said */
    uint64_t silent_ms;         /* ms since the broker heard it, as its
                                   TOPOLOGY says; 0 when it never said */
    bool     from_broker;       /* the broker described this node */
    bool     seen;              /* listed in the TOPOLOGY being applied */
    bool     listed;            /* listed in the last TOPOLOGY applied */
    bool     pinned;            /* added by the application: never evicted */
    bool     reachable;         /* answers (see above); true until proven not */
    double   rtt_ms;            /* RTT average, < 0 unknown */
    uint64_t ping_rid;          /* rid of the PING in flight, 0 none */
    int64_t  ping_sent_us;      /* when the last PING went out, 0 never (or it
                                   could not go: due again) */
    int64_t  unsent_us;         /* since when no PING could go (no connection),
                                   0 when the last one went */
    int64_t  pong_us;           /* when the last PONG came, 0 never */
    uint32_t lapses;            /* PINGs that found no connection, or went
                                   unanswered for WC_PING_DEAD_US: each says
                                   that what was sent before may never be
                                   answered (a sync write compares counts) */
    uint32_t drops;             /* of those, the PINGs that found no
                                   connection, and the drops the handle's
                                   dropwatch saw: it dropped, and what was
                                   sent on it will never be answered */
    bool     warm;              /* a PONG came back on this socket */
    unsigned key_refusals;      /* PINGs refused with EPERM since the last
                                   PONG: our key has no role there (its
                                   certificate removed) */
    char     server_key [41];   /* its CURVE public key (Z85), "" none known */
    uint8_t  curve_refusal;     /* wc_curve_refusal_t: why sock is NULL */
} wc_peer_t;

typedef struct wc_topology wc_topology_t;

/*  An empty table whose sockets live in the zmq context ctx. NULL when
    out of memory. */
wc_topology_t *wc_topology_new (void *ctx);

/*  Close every socket, free the table; *self_p becomes NULL. */
void wc_topology_destroy (wc_topology_t **self_p);

/*  Make every socket opened from now on a CURVE client: keys are ours
    (NULL: none), default_key (NULL or "": none) the server key of nodes
    no TOPOLOGY gave one for. Sockets already open are left as they are:
    call it before adding nodes. */
void wc_topology_set_curve (wc_topology_t *self, const wc_certs_keys_t *keys,
                            const char *default_key);

/*  Would a node with this server key ("" none) be refused? Its
    wc_curve_refusal_t. */
int wc_topology_curve_check (wc_topology_t *self, const char *server_key);

/*  A refusal (wc_curve_refusal_t) of the node called name, at addr, as
    a sentence into buf: which key is missing, and which flag (and
    function) gives it. "" for WC_CURVE_OK. */
void wc_topology_refusal_say (int refusal, const char *name, const char *addr,
                              char *buf, size_t size);

/*  Node i's refusal as a sentence, into buf: which key is missing and
    which flag (and function) gives it. "" when it is not refused. */
void wc_topology_refusal (wc_topology_t *self, size_t index, char *buf,
                          size_t size);

/*  Number of nodes, and node i (valid until the table grows). */
size_t wc_topology_size (wc_topology_t *self);
wc_peer_t *wc_topology_peer (wc_topology_t *self, size_t index);

/*  The node at addr, or WC_SELECT_NONE. */
size_t wc_topology_find (wc_topology_t *self, const char *addr);

/*  Add the node at "HOST:PORT" (or find it, when already there) and
    connect its socket; *index is its index. pinned marks it as the
    application's own (never evicted). *replaced (if not NULL) says
    whether the slot held another node before (evicted: whatever the
    caller remembered of that index is about someone else now).
    WALCAST_EINVAL for a bad address, WALCAST_ENOMEM, WALCAST_ETOOBIG
    when the table is full of nodes that may not be evicted,
    WALCAST_EUNAVAILABLE when libzmq refused. */
int wc_topology_add (wc_topology_t *self, const char *addr, bool pinned,
                     size_t *index, bool *replaced);

/*  Lazy Pirate: close node i's socket (dropping whatever it queues and
    whatever would arrive later) and connect a fresh one. Its PING in
    flight is forgotten, so a new one goes out at the next tick. */
void wc_topology_reset (wc_topology_t *self, size_t index);

/*  Apply a TOPOLOGY: begin, apply each node_info, end. apply sets
    *index to the node's index and *moved when its socket was replaced
    (whatever was in flight on it is lost), which includes a slot taken
    over from an evicted node. end marks down every node the broker
    described before and did not list this time. */
void wc_topology_begin (wc_topology_t *self);
int wc_topology_apply (wc_topology_t *self, const wc_node_info_t *info,
                       size_t *index, bool *moved);
/*  apply's answer for a node that is down at an address a node the same
    TOPOLOGY lists up holds (a machine replaced under a new id): the live
    one keeps the slot, the dead one is not in the table. */
#define WC_TOPOLOGY_SKIPPED  1
void wc_topology_end (wc_topology_t *self);

/*  A PONG from node i, read at now_us: identity, position, reachable
    again, and an RTT sample when it answers the PING in flight and
    `timely` says it was read as it arrived (not left queued while the
    handle was busy or idle). The first answer on a fresh socket is no
    sample either: that PING waited for the TCP and ZMTP handshakes.
    Returns true when the caller should PING again at once: the
    handshake is over, so the next answer times the link alone; or the
    answer was read late and the node has no RTT yet, so another try
    may give it one (a handle that routes by RTT needs one). */
bool wc_topology_pong (wc_peer_t *node, const wc_msg_t *pong, int64_t now_us,
                       bool timely);

/*  A STATUS_REPLY from node (read while looking for the primary): its
    role, position and the HOST:PORT of the node it follows; its id and
    region too while the table has none (the broker's names win). */
void wc_topology_status (wc_peer_t *node, const wc_msg_t *status);

/*  Should a PING go to node now? Also where an unanswered PING makes a
    node unreachable. The caller sends it and sets ping_rid and
    ping_sent_us. */
bool wc_topology_ping_due (wc_peer_t *node, int64_t now_us);

/*  The EWMA: avg < 0 (no average yet) gives the sample itself. */
double wc_topology_ewma (double avg, double sample);

/*  "tcp://HOST:(PORT+offset)" from "HOST:PORT" (offset 0..2), into
    endpoint (size bytes). The address must be what protocol/addr.h
    accepts, with PORT+offset a port. *ipv6 (if not NULL) says whether
    the host is bracketed IPv6. 0 or WALCAST_EINVAL (bad address, port
    out of range, too long). */
int wc_topology_endpoint (const char *addr, int offset, char *endpoint,
                          size_t size, bool *ipv6);

/*  Open a socket of type `type` with the options every client socket
    uses (linger 0, ZMTP heartbeats, message size cap), connected to
    endpoint. rcvhwm is its receive high-water mark (0: the large
    default, right for replies to a window of writes). With keys (not
    NULL) it is a CURVE client of the server whose public key is
    server_key. With immediate (ZMQ_IMMEDIATE) a message is queued only
    on a connection whose handshake is done: with none a send fails
    with EAGAIN, and what was queued goes with a connection that breaks.
    So a message a node's socket took was handed to a live connection,
    and one it refused was not sent: a write that could not be sent was
    not made. NULL on failure (*err: WALCAST_EINVAL / EUNAVAILABLE). */
void *wc_topology_socket (void *ctx, int type, const char *endpoint,
                          bool ipv6, int rcvhwm, bool immediate,
                          const wc_certs_keys_t *keys, const char *server_key,
                          int *err);

/*  Describe the table for select.c: out has room for every node.
    broker_fresh says whether the broker's up/down can be trusted (a
    recent TOPOLOGY); if not, every node counts as up and only
    reachability filters. */
void wc_topology_to_select (wc_topology_t *self, wc_select_node_t *out,
                            bool broker_fresh);

#endif
