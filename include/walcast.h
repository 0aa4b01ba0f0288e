/*  walcast.h - the public C API of walcast, a replication fabric on ZeroMQ.

    A walcast_t is a client handle. Add one or more nodes with
    walcast_connect(); writes (put, del) go to the primary, reads (get,
    status, digest) go to the first node added. Every call is bounded by
    the handle's timeout (walcast_set_timeout) and returns 0 on success or
    a negative WALCAST_E* code; walcast_strerror() says what it means.

    Writes return their position in the log, an (epoch, seq) pair. For bulk
    loading, walcast_put_async() keeps many writes in flight on one
    connection and walcast_flush() waits for them all.

    The handle is not thread-safe: use one per thread.
*/
#ifndef WALCAST_H_INCLUDED
#define WALCAST_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  Symbols of the shared library that are part of the API. */
#if defined(__GNUC__)
#   define WALCAST_EXPORT __attribute__ ((visibility ("default")))
#else
#   define WALCAST_EXPORT
#endif

#define WALCAST_VERSION_MAJOR 0
#define WALCAST_VERSION_MINOR 1
#define WALCAST_VERSION_PATCH 0

/*  Error codes. Every function that can fail returns one of these (0 is
    success). The same codes travel on the wire, negated, in ERROR
    replies (docs/PROTOCOL.md). Keep this list and the table in
    protocol/errors.c in step. */
enum {
    WALCAST_OK           =   0,
    WALCAST_EINVAL       =  -1,   /* invalid argument */
    WALCAST_EPROTO       =  -2,   /* malformed or unexpected message */
    WALCAST_EVERSION     =  -3,   /* unsupported protocol version */
    WALCAST_ETOOBIG      =  -4,   /* key, value or message over its limit */
    WALCAST_ENOTFOUND    =  -5,   /* key not found */
    WALCAST_ENOTPRIMARY  =  -6,   /* node is not the primary; detail names it */
    WALCAST_ETIMEOUT     =  -7,   /* no answer within the timeout */
    WALCAST_EIO          =  -8,   /* the node could not write or sync its log */
    WALCAST_ENOMEM       =  -9,   /* out of memory */
    WALCAST_ERANGE       = -10,   /* sequence number outside what the node holds */
    WALCAST_EUNAVAILABLE = -11,   /* no node to send to, or socket failure */
    WALCAST_EBUSY        = -12,   /* node overloaded or not ready; retry later */
    WALCAST_ESTALE       = -13,   /* node is behind what the read asked for */
    WALCAST_ENOSPC       = -14,   /* the node's disk is full: the write was not made */
    WALCAST_ECONFLICT    = -15    /* refused: conflicts with the cluster (a second primary) */
};

/*  Short name ("ENOTPRIMARY") and human message for an error code. Both
    return static strings; unknown codes give "EUNKNOWN" / "unknown error". */
WALCAST_EXPORT const char *walcast_errname (int err);
WALCAST_EXPORT const char *walcast_strerror (int err);

/*  A position in the replicated log. */
typedef struct {
    uint64_t epoch;
    uint64_t seq;
} walcast_pos_t;

/*  What a node says about itself (walcast_status). Strings are
    NUL-terminated and truncated to fit. */
typedef struct {
    char     id [65];
    char     region [65];
    char     role [16];          /* "primary" or "replica" */
    uint64_t epoch;
    uint64_t applied_seq;        /* last entry applied to its state */
    char     primary [256];      /* HOST:PORT of its primary; "" on a primary */
    uint64_t primary_seq;        /* primary's last seq as last heard */
    uint64_t lag;                /* primary_seq - applied_seq, in entries */
    uint64_t lag_ms;             /* ms since the node last heard it was up to date */
} walcast_status_t;

typedef struct walcast walcast_t;

/*  Create a handle with no nodes. Returns NULL when out of memory. */
WALCAST_EXPORT walcast_t *walcast_new (void);

/*  Close every socket and free the handle; sets *self_p to NULL. Safe to
    call with *self_p already NULL. Unanswered async writes are abandoned. */
WALCAST_EXPORT void walcast_destroy (walcast_t **self_p);

/*  Add a node by "HOST:PORT" (the node's base port). Writes start at the
    first node added and go to the primary; reads follow the read
    preference (below). */
WALCAST_EXPORT int walcast_connect (walcast_t *self, const char *host_port);

/*  Bound every call by timeout_ms (default 5000). */
WALCAST_EXPORT void walcast_set_timeout (walcast_t *self, int timeout_ms);

/*  Detail of the last error, or "" (for WALCAST_ENOTPRIMARY: the
    primary's HOST:PORT as the node knows it). Valid until the next call. */
WALCAST_EXPORT const char *walcast_last_detail (walcast_t *self);

/*  Write key = value on the primary. On success *pos (if not NULL) is the
    write's position. Keys are 1..1024 bytes, values 0..1 MiB. */
WALCAST_EXPORT int walcast_put (walcast_t *self, const void *key, size_t key_len,
                 const void *value, size_t value_len, walcast_pos_t *pos);

/*  Delete key (succeeds whether or not it existed). */
WALCAST_EXPORT int walcast_del (walcast_t *self, const void *key, size_t key_len,
                 walcast_pos_t *pos);

/*  Read key (routed by the read preference and consistency, see below).
    On success *value is a malloc'd copy the
    caller frees (NULL when value_len is 0) and *applied_seq (if not NULL)
    is the node's applied seq. Returns WALCAST_ENOTFOUND when absent. */
WALCAST_EXPORT int walcast_get (walcast_t *self, const void *key, size_t key_len,
                 void **value, size_t *value_len, uint64_t *applied_seq);

/*  Ask the first node added (or, with a broker, the primary) about itself. */
WALCAST_EXPORT int walcast_status (walcast_t *self, walcast_status_t *status);

/*  The first node's (with a broker: the primary's) applied seq and a hash of its whole key-value state;
    nodes that hold the same data give the same hash. */
WALCAST_EXPORT int walcast_digest (walcast_t *self, uint64_t *seq, uint64_t *hash);

/*  Queue a put without waiting for its reply; blocks only while the
    window of writes in flight is full. Errors from earlier writes are
    reported by walcast_flush. */
WALCAST_EXPORT int walcast_put_async (walcast_t *self, const void *key, size_t key_len,
                       const void *value, size_t value_len);

/*  Wait for every async write. *last (if not NULL) is the highest position
    acknowledged, *acked (if not NULL) the count acknowledged since the
    previous flush. Returns the first error any of them met, or 0. */
WALCAST_EXPORT int walcast_flush (walcast_t *self, walcast_pos_t *last, uint64_t *acked);

/* --- discovery, routing and consistency --------------------------------

    With a broker, the handle learns every node (id, region, role,
    address, up/down) from the broker's TOPOLOGY and follows its pushes;
    without one, it learns them from the nodes added with walcast_connect
    (their PONGs). It PINGs every node it knows about once a second, in
    the course of its calls, and keeps a round-trip time per node as an
    exponentially weighted moving average (new sample weight 0.2). A node
    that stops answering is skipped until it answers again.

    Reads pick nodes by the read preference, then the consistency:
      "nearest" (default)  nodes within the latency window (default 15 ms)
                           of the lowest RTT, the handle's region first;
      "primary"            the primary only;
      "replica"            replicas only, nearest first;
      "region=NAME"        nodes of region NAME only, nearest first.
    Consistency:
      "eventual"           any node of the preference;
      "session" (default)  read-your-writes and monotonic reads within the
                           handle: each read carries the highest seq the
                           handle wrote or saw; a node behind it waits up to
                           the session wait (default 200 ms), then the
                           handle tries the next node, and the primary last;
      "strong"             the primary only.
    A max staleness (ms, 0 = none) makes replicas whose lag estimate is
    larger decline the read, which then goes to the next node.

    Writes go to the primary: the broker's, or the one a NOT_PRIMARY
    answer names (then retried once: NOT_PRIMARY means it was not
    applied). A write that times out is NOT retried: its outcome is
    unknown (the old primary may have applied it), and the call returns
    WALCAST_ETIMEOUT. Every call, retries included, is bounded by one
    deadline: the handle's timeout.

    "strong" and "primary" reads are served only by a node known to be the
    primary; when none is known the handle asks the nodes it knows (a
    replica's STATUS names its primary), and fails with
    WALCAST_EUNAVAILABLE ("no primary known") rather than read a replica.
    A VALUE whose applied seq is below the min_seq sent counts as ESTALE. */

/*  Learn the cluster from a broker at "HOST:PORT" (its base port). Asks
    for the topology (bounded by the timeout), connects to every node in
    it and subscribes to the broker's topology pushes. */
WALCAST_EXPORT int walcast_connect_broker (walcast_t *self, const char *host_port);

/*  The client's own region, for "nearest" ("" or NULL: none). */
WALCAST_EXPORT int walcast_set_region (walcast_t *self, const char *region);

/*  Read preference: "nearest", "primary", "replica" or "region=NAME";
    WALCAST_EINVAL for anything else. */
WALCAST_EXPORT int walcast_set_read (walcast_t *self, const char *preference);

/*  Consistency: "eventual", "session" or "strong"; WALCAST_EINVAL otherwise. */
WALCAST_EXPORT int walcast_set_consistency (walcast_t *self, const char *consistency);

/*  Bound on replica staleness for reads, ms; 0 (default) = none. */
WALCAST_EXPORT void walcast_set_max_staleness (walcast_t *self, int ms);

/*  The "nearest" latency window, ms (default 15). */
WALCAST_EXPORT void walcast_set_latency_window (walcast_t *self, int ms);

/*  How long a node behind the session may wait before the handle moves
    on, ms (default 200). */
WALCAST_EXPORT void walcast_set_session_wait (walcast_t *self, int ms);

/*  Who served a read. */
typedef struct {
    char     id [65];
    char     region [65];
    char     addr [256];       /* HOST:PORT */
    double   rtt_ms;           /* the handle's RTT average; < 0 unknown */
    uint64_t applied_seq;      /* the node's applied seq when it answered */
} walcast_served_t;

/*  walcast_get with routing: min_seq (0 = none) is an explicit token (a
    seq another process wrote, say) added to the session's; served (may be
    NULL) says who answered. */
WALCAST_EXPORT int walcast_get_ex (walcast_t *self, const void *key, size_t key_len,
                                   uint64_t min_seq, void **value, size_t *value_len,
                                   walcast_served_t *served);

/*  The session token: the highest seq this handle wrote or read. */
WALCAST_EXPORT uint64_t walcast_session_seq (walcast_t *self);

/*  One node as the handle sees it. */
typedef struct {
    char     id [65];
    char     region [65];
    char     role [16];        /* "primary", "replica" or "" when unknown */
    char     addr [256];
    char     primary [256];    /* who it follows; "" on a primary */
    uint64_t epoch;
    uint64_t applied_seq;
    uint64_t lag;              /* entries */
    uint64_t lag_ms;
    double   rtt_ms;           /* < 0 when unknown */
    int      up;               /* 1 up, 0 down (broker's view, else pings) */
} walcast_node_info_t;

/*  Refresh (topology, one round of PINGs bounded by the timeout) and list
    the nodes the handle knows, at most max of them, in *count. */
WALCAST_EXPORT int walcast_nodes (walcast_t *self, walcast_node_info_t *nodes,
                                  size_t max, size_t *count);

/*  A change seen by walcast_watch. op is 1 (put) or 2 (delete; value
    empty). Return 0 to go on, anything else to stop the watch. */
typedef int (walcast_watch_fn) (void *arg, uint64_t seq, int op,
                                const void *key, size_t key_len,
                                const void *value, size_t value_len);

/*  Print-free change feed: subscribe to the stream of the node the read
    preference picks, for keys starting with prefix (prefix_len 0: all),
    and call fn for each change as it is published. Blocks until fn
    returns non-zero (then returns that value) or timeout_ms passes with
    no change (timeout_ms < 0: forever; then 0). A signal that interrupts
    the wait also returns 0. When the watched node goes silent (PINGs
    unanswered, or the broker marks it down) the watch moves to the next
    candidate, or returns WALCAST_EUNAVAILABLE when there is none. Entries
    the stream drops under load are not replayed: this is a live feed, not
    a log reader. */
WALCAST_EXPORT int walcast_watch (walcast_t *self, const void *prefix, size_t prefix_len,
                                  walcast_watch_fn *fn, void *arg, int timeout_ms);

/*  Called when a watch moves from one node to another (ids of both). */
typedef void (walcast_watch_switch_fn) (void *arg, const char *from, const char *to);

/*  Be told when a watch moves (fn NULL: stop being told). */
WALCAST_EXPORT void walcast_set_watch_notify (walcast_t *self,
                                              walcast_watch_switch_fn *fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
