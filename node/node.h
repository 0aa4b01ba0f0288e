/*  node.h - a walcast node: the sockets, the loop, and what both roles share.

    main.c fills a wc_node_config_t and calls wc_node_new / wc_node_run.
    The rest of this header is the node's inside, shared by node.c,
    primary.c, replica.c, reads.c, fetch.c and announce.c: the node struct
    and the few operations the roles share (commit what is staged, reply).

    A node is one thread and one loop. It owns three sockets at base port
    P: service (ROUTER, P), stream (XPUB, P+1), catch-up (ROUTER, P+2), and
    a storage engine (the log and the state). The primary role writes; the
    replica role follows a primary. Either role serves reads on the service
    socket, publishes what it applies on its stream and serves FETCH from
    its log, so a replica can feed other replicas as a primary does.
*/
#ifndef WC_NODE_H_INCLUDED
#define WC_NODE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include "clock.h"
#include "codec.h"
#include "engine.h"
#include "metrics.h"
#include "outbox.h"
#include "publisher.h"
#include "request.h"

typedef struct {
    char       id [WC_MAX_ID + 1];
    char       region [WC_MAX_ID + 1];
    char       data_dir [4096];
    char       bind [WC_MAX_ADDR + 1];        /* address to bind, default 127.0.0.1 */
    int        port;                          /* base port P */
    char       replica_of [WC_MAX_ADDR + 1];  /* primary HOST:PORT, "" for a primary */
    char       broker [WC_MAX_ADDR + 1];      /* broker HOST:PORT, "" for none */
    char       advertise [WC_MAX_ADDR + 1];   /* HOST:PORT others should use */
    wc_fsync_t fsync;
    size_t     segment_bytes;                 /* 0 = WAL default */
    uint32_t   min_replicas;                  /* refuse writes below this many current */
    int64_t    replica_lag_ms;                /* a replica is current this long after its ACK */
    uint64_t   snapshot_every;                /* entries between snapshots; 0: on demand */
    uint64_t   retain_bytes;                  /* log kept after a snapshot */
    char       curve_server [41];             /* CURVE: --replica-of's public key (Z85) */
    char       curve_broker [41];             /* CURVE: the broker's public key (Z85) */
    int        metrics_port;                  /* serve /metrics here; 0: not */
} wc_node_config_t;

/*  What the node counts for /metrics (node/exporter.c renders it): plain
    numbers the loop adds to where things happen, read once a second. */
typedef enum { WC_NODE_SERVICE, WC_NODE_CATCHUP, WC_NODE_STREAM, WC_NODE_SOCKETS } wc_node_socket_t;
#define WC_NODE_ERRORS  32              /* refusals counted by -code below this */

typedef struct {
    uint64_t           writes;          /* entries the primary role wrote */
    uint64_t           reads;           /* GETs answered */
    uint64_t           published;       /* entries applied and published */
    uint64_t           fetches;         /* FETCHes served */
    uint64_t           gaps;            /* holes the replica found and fetched */
    uint64_t           resyncs;         /* snapshots the replica installed */
    uint64_t           bytes_in [WC_NODE_SOCKETS];     /* request bodies */
    uint64_t           bytes_out [WC_NODE_SOCKETS];    /* replies, stream messages */
    uint64_t           refused [WC_NODE_ERRORS];       /* ERROR replies, by -code */
    wc_metrics_tally_t write_latency;   /* a write's arrival to its reply, s */
    wc_metrics_tally_t apply_lag;       /* replica: upstream's apply to ours, s
                                           (node/applylag.h) */
    int64_t            batch_us;        /* when the batch in hand was taken */
} wc_node_stats_t;

typedef struct wc_primary wc_primary_t;
typedef struct wc_replica wc_replica_t;
typedef struct wc_reads wc_reads_t;
typedef struct wc_announce wc_announce_t;
typedef struct wc_snapshots wc_snapshots_t;
typedef struct wc_exporter wc_exporter_t;

/*  The node. Fields are shared by node.c, primary.c and replica.c. */
typedef struct wc_node {
    wc_node_config_t cfg;
    zsock_t         *service;       /* ROUTER, P: client requests */
    wc_publisher_t  *stream;        /* XPUB, P+1: entries and heartbeats */
    zsock_t         *catchup;       /* ROUTER, P+2: FETCH */
    wc_engine_t     *engine;        /* the log and the state (storage/engine.h) */
    uint64_t         epoch;         /* primary: its tenure's; replica: the latest
                                       of its history or of the upstream it
                                       reconciled with (role.c, replica.c) */
    uint64_t         applied;       /* last seq applied (the engine's, mirrored) */
    wc_role_t        role;
    wc_primary_t    *primary;       /* set when role is primary */
    wc_replica_t    *replica;       /* set when role is replica */
    wc_reads_t      *reads;         /* GET/PING/STATUS/DIGEST, parked GETs */
    wc_announce_t   *announce;      /* link to the broker, when configured */
    wc_snapshots_t  *snapshots;     /* SNAPSHOT requests waiting */
    wc_outbox_t     *outbox;        /* service replies a peer's queue could not take */
    uint64_t         applied_ts_ms; /* primary's clock in the last applied entry */
    bool             fatal;         /* an fsync failed: refuse writes, stop */
    bool             candidate;     /* a primary awaiting the broker's PROMOTE, or
                                       its epoch's history write (begin_rc) */
    int              begin_rc;      /* why the epoch wanted could not begin (a
                                       full disk): writes get it; 0 when none */
    uint64_t         begin_epoch;   /* that epoch */
    int64_t          begin_failed_ms;   /* since when */
    int64_t          begin_retry_ms;    /* not again before this */
    int64_t          next_heartbeat_ms;
    uint64_t         bad_messages;  /* dropped or refused as malformed */
    uint64_t         send_failures; /* replies the ROUTER could not route */
    msgpack_sbuffer  out;           /* scratch: encoded replies */
    msgpack_sbuffer  scratch;       /* scratch: entry encodings */
    msgpack_sbuffer  published;     /* entries applied, not yet published */
    uint32_t         published_count;
    uint64_t         published_last;
    wc_request_t    *batch;         /* WC_NODE_BATCH request slots */
    char             upstream_key [41];  /* CURVE: public key of the node it
                                            follows (--curve-server, FOLLOW) */
    uint64_t         refused;       /* requests refused: the key's role (EPERM) */
    int64_t          refused_log_ms;     /* last time one was logged */
    uint32_t         refused_unlogged;   /* refused since, not logged */
    int64_t          refused_last_ms;    /* the last refusal, logged or not */
    wc_node_stats_t  stats;         /* counted for /metrics */
    wc_exporter_t   *exporter;      /* /metrics, with --metrics-port */
    uint64_t         rest_seq;      /* applied when last seen to move */
    int64_t          rest_ms;       /* since when it has not */
    uint64_t         trim_seq;      /* applied when the heaps were last looked at */
} wc_node_t;

/*  Memory back at rest: once a node that applied entries since it last
    looked has applied nothing for WC_NODE_REST_MS, it gives the free
    pages of its heaps back when they hold WC_NODE_TRIM_FREE bytes free
    or more (node.c). */
#define WC_NODE_REST_MS      500
#define WC_NODE_TRIM_FREE    (8u * 1024u * 1024u)

/*  Requests taken off the service socket per loop turn (one group commit),
    and the most bytes of request bodies one turn holds. */
#define WC_NODE_BATCH        1024
#define WC_NODE_BATCH_BYTES  (16u * 1024u * 1024u)

/*  Bytes one peer's queue may hold, each way: on the service socket
    (small replies out; requests in get WC_NODE_REQUEST_BUDGET, since
    a pipelining client's batches are as big as that queue is long, and
    256 of the largest requests keep batches of small ones near
    WC_NODE_BATCH: 0.63 of the throughput at 64 MiB, measured), and on
    the catch-up socket. Large replies to one peer are held to
    WC_NODE_OUTBOX_BUDGET in flight and as much again waiting in the
    outbox, past which the peer is cut off (runtime/outbox.h). */
#define WC_NODE_PEER_BUDGET     (64u * 1024u * 1024u)
#define WC_NODE_REQUEST_BUDGET  (256u * 1024u * 1024u)
#define WC_NODE_OUTBOX_BUDGET   (16u * 1024u * 1024u)
#define WC_NODE_CATCHUP_BUDGET  (16u * 1024u * 1024u)

/*  Bytes the stream's queues hold, each subscriber's and each of our
    subscriptions: with messages of at most WC_MAX_STREAM_MESSAGE (larger
    entries go by FETCH), the HWMs follow. */
#define WC_NODE_STREAM_BUDGET   (64u * 1024u * 1024u)

/*  Writes waiting for their sync (--fsync always) before the node stops
    taking more requests for a while. */
#define WC_NODE_HELD_MAX  (64 * 1024)

/*  FETCH requests served per loop turn. */
#define WC_NODE_FETCHES_PER_TURN  4

/*  Create a node: open the WAL (replaying it into the store), bind the
    sockets and take up the configured role. NULL on failure, with the
    cause and the remedy in why (for the operator: "cannot start: why"). */
wc_node_t *wc_node_new (const wc_node_config_t *cfg, char *why, size_t why_size);

/*  Run the loop until SIGTERM/SIGINT (or wc_node_stop); then finish the
    batch, flush and sync the WAL. Returns 0, or an error code when the
    node had to stop (e.g. its WAL failed). */
int wc_node_run (wc_node_t *self);

/*  Ask a running loop to stop (async-signal-safe). */
void wc_node_stop (void);

/*  Destroy the node; *self_p becomes NULL. */
void wc_node_destroy (wc_node_t **self_p);

/* --- shared by the roles ------------------------------------------------ */

/*  The last seq the node holds in its log or has staged for it: what a
    replica has received (an entry is applied once written, or synced
    under --fsync always). */
uint64_t wc_node_received (const wc_node_t *self);

/*  Write what is staged (storage/engine.h); entries become applied and
    are published through the engine's callback. Returns the engine's
    result; a fatal one (a failed sync, no memory) stops the node. */
int wc_node_commit (wc_node_t *self);

/*  Send self->out as the reply to req through sock (its envelope, then
    the body). Counts and drops a reply that cannot be routed. */
void wc_node_reply (wc_node_t *self, zsock_t *sock, wc_request_t *req);

/*  Encode an ERROR reply to req into self->out and send it. */
void wc_node_reply_error (wc_node_t *self, zsock_t *sock, wc_request_t *req,
                          int err, const char *text, const char *detail);

/*  For /metrics: count an ERROR reply of code err (every one sent); a
    write answered now that arrived at arrived_us (wc_clock_us). */
void wc_node_count_refusal (wc_node_t *self, int err);
void wc_node_count_write_reply (wc_node_t *self, int64_t arrived_us);

#endif
