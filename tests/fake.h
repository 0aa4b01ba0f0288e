/*  fake.h - fake walcast peers for client tests.

    A fake is a set of sockets a test binds on spare ports (ROUTERs that
    stand for a node's service or catch-up port or a broker's port, PUBs
    that stand for a stream or a topology socket), served by a thread of
    its own. The test says what the fake does with two callbacks, both run
    in that thread:

    - on_request, for every well-formed request on one of its ROUTERs:
      encode the reply into `reply` and return true to send it, or return
      false to stay silent (a node that never answers);
    - on_tick, every 20 ms: publish with fake_publish (heartbeats, a
      topology), or anything else that must happen on a clock.

    What the callbacks share with the test (counters, modes) is the
    test's to protect (atomics). A fake's sockets have linger 0 and are
    closed by fake_destroy, so the ports are free again afterwards.

        fake_t *f = fake_new (on_request, on_tick, &state);
        fake_bind_router (f, port);         // before fake_start
        fake_start (f);
        ...
        fake_destroy (&f);

    A reply can wait (fake_defer): a primary that answers a write only
    when its ack timeout has passed, a snapshot that takes seconds.

    Two ready-made peers are built on it: a fake node (fake_node_t: a
    primary or a replica that answers PING, STATUS, PUT, DEL and SNAPSHOT
    as the test configures it, honouring the acks a write asks for, and
    counts what it was sent) and a fake broker (fake_broker_t: serves and
    pushes the directory the test sets, answers SWITCHOVER as the test
    says). Their settings may change while they run (a mutex guards them).
*/
#ifndef WC_TEST_FAKE_H_INCLUDED
#define WC_TEST_FAKE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>
#include "codec.h"

typedef struct fake fake_t;

typedef bool (fake_request_fn) (void *arg, int port, const wc_msg_t *req,
                                msgpack_sbuffer *reply);
typedef void (fake_tick_fn) (void *arg, fake_t *fake);

/*  A fake with its callbacks (either may be NULL); NULL on failure. */
fake_t *fake_new (fake_request_fn *on_request, fake_tick_fn *on_tick, void *arg);

/*  Stop the thread, close every socket, free; *self_p becomes NULL. */
void fake_destroy (fake_t **self_p);

/*  Make the sockets bound from now on CURVE servers with this secret
    key (Z85; NULL or "": plain again). No ZAP handler: any client key
    is let in, a client without CURVE or with another server key is not. */
void fake_curve_server (fake_t *self, const char *secret_key);

/*  Bind a ROUTER or a PUB on 127.0.0.1:port (before fake_start). 0 or -1
    (printed). */
int fake_bind_router (fake_t *self, int port);
int fake_bind_pub (fake_t *self, int port);

/*  Start serving. 0 or -1. */
int fake_start (fake_t *self);

/*  From on_tick (the fake's thread): send [topic][body] on the PUB bound
    to port. 0 or -1. */
int fake_publish (fake_t *self, int port, const void *topic, size_t topic_len,
                  const void *body, size_t body_len);

/*  From on_request (the fake's thread): send the reply being encoded
    ms from now instead of at once (at most 64 replies wait; past that
    they go at once). */
void fake_defer (fake_t *self, int ms);

/* --- a fake node ----------------------------------------------------------- */

typedef struct fake_node fake_node_t;

/*  How a fake node behaves. A write (PUT, DEL, or a WRITE_BATCH's writes
    together) is, in this order: not
    answered (silent_writes); refused with `refuse` and `detail`; refused
    ENOTPRIMARY with `detail` (its primary) when role is a replica; else
    given the next seq and answered as the acks it asks for say:
    WRITE_OK(acked = replicas) when `replicas` are enough (acks N <=
    replicas; WC_ACKS_ALL: every replica, at least one), else, once its
    ack_timeout_ms (0: 5000) has passed, ERROR ENOTREPLICATED "acked=R
    of N". */
typedef struct {
    int      role;              /* WC_ROLE_PRIMARY or WC_ROLE_REPLICA */
    uint64_t epoch;             /* in PONG, STATUS_REPLY, WRITE_OK */
    int      replicas;          /* replicas that confirm each write at once */
    int      current;           /* replicas WC_ACKS_ALL waits for (0: replicas,
                                   at least one) */
    bool     ignore_acks;       /* a node older than acks: WRITE_OK, acked absent */
    int      refuse;            /* 0, or the code every write is refused with */
    bool     silent_writes;     /* never answer a write */
    bool     frozen;            /* answer nothing at all (a stopped process:
                                   its connections stay up) */
    int      write_ms;          /* answer a WRITE_OK after this long (0: at once) */
    char     detail [64];       /* the refusal's detail; a replica's primary */
    int      snapshot_ms;       /* SNAPSHOT answered after this long; < 0 never */
    int      snapshot_err;      /* 0: SNAPSHOT_DONE; else the ERROR's code */
    uint64_t flags;             /* WC_NODE_* its STATUS_REPLY carries */
} fake_node_conf_t;

/*  What a fake node was sent. */
typedef struct {
    int      writes;            /* PUT and DEL received, and writes of batches */
    int      batches;           /* WRITE_BATCH received */
    int      written;           /* of those, answered WRITE_OK */
    int      last_acks;         /* acks of the last write received */
    uint32_t last_ack_timeout_ms;   /* and its ack_timeout_ms */
    int      snapshots;         /* SNAPSHOT received */
    uint64_t seq;               /* last seq given out */
} fake_node_seen_t;

/*  A fake node with id on a ROUTER at 127.0.0.1:port, running: a primary
    of epoch 1 with no replicas. NULL on failure (printed). */
fake_node_t *fake_node_new (int port, const char *id);

/*  The same as a CURVE server with secret_key (Z85; NULL: plain). */
fake_node_t *fake_node_new_curve (int port, const char *id, const char *secret_key);

/*  Stop it and free it; *self_p becomes NULL. */
void fake_node_destroy (fake_node_t **self_p);

/*  Its settings now (to change a few and give them back). */
void fake_node_conf (fake_node_t *self, fake_node_conf_t *conf);
void fake_node_set (fake_node_t *self, const fake_node_conf_t *conf);

/*  What it was sent so far. */
void fake_node_seen (fake_node_t *self, fake_node_seen_t *seen);

/* --- a fake broker --------------------------------------------------------- */

typedef struct fake_broker fake_broker_t;

/*  A node of the fake broker's directory. */
typedef struct {
    char     id [65];
    char     addr [64];         /* HOST:PORT */
    int      role;              /* WC_ROLE_PRIMARY or WC_ROLE_REPLICA */
    uint64_t epoch;
    bool     up;
    uint64_t flags;             /* WC_NODE_* its node_info carries */
} fake_broker_node_t;

/*  How the fake broker answers SWITCHOVER, after delay_ms (< 0: never):
    err 0: SWITCHOVER_DONE (epoch: the directory's highest + 1, the
    node's addr), and the node becomes the primary of that epoch in the
    directory, the others replicas; else ERROR err with text. */
typedef struct {
    int  err;
    char text [128];
    int  delay_ms;
} fake_broker_answer_t;

/*  A fake broker: ROUTER at 127.0.0.1:port (TOPOLOGY_GET, SWITCHOVER),
    PUB at port + 1 (the directory pushed every 20 ms), running, with an
    empty directory. NULL on failure (printed). */
fake_broker_t *fake_broker_new (int port);

/*  The same as a CURVE server (both sockets) with secret_key (Z85; NULL:
    plain). */
fake_broker_t *fake_broker_new_curve (int port, const char *secret_key);

void fake_broker_destroy (fake_broker_t **self_p);

/*  The curve_key the directory gives for its node at index (0..7; NULL
    or "": none), from the next push on. */
void fake_broker_set_key (fake_broker_t *self, int index, const char *key);

/*  Replace the directory (count <= 8); its version goes up by one. */
void fake_broker_set_nodes (fake_broker_t *self, const fake_broker_node_t *nodes,
                            int count);

/*  Set how SWITCHOVER is answered (default: SWITCHOVER_DONE at once). */
void fake_broker_set_answer (fake_broker_t *self, const fake_broker_answer_t *answer);

/*  SWITCHOVERs received; the last one's node id in id (size bytes). */
int fake_broker_switchovers (fake_broker_t *self, char *id, size_t size);

/*  TOPOLOGY_GETs received. */
int fake_broker_topology_gets (fake_broker_t *self);

#endif
