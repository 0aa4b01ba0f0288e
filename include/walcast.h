/*  walcast.h - the public C API of walcast, a replication fabric on ZeroMQ.

    A walcast_t is a client handle. Add one or more nodes with
    walcast_connect() (or learn them from a broker with
    walcast_connect_broker()); writes (put, del) go to the primary, reads
    (get) are routed by the read preference and consistency. Every call
    is bounded by the handle's timeout (walcast_set_timeout) and returns
    0 on success or a negative WALCAST_E* code; walcast_strerror() says
    what it means and walcast_last_detail() gives the detail.

    Writes return their position in the log, an (epoch, seq) pair. A
    write may ask that replicas hold it before it is acknowledged
    (walcast_set_acks, walcast_put_ex). For bulk loading,
    walcast_put_async() keeps many writes in flight on one connection;
    each one gets its own outcome (applied, not confirmed replicated,
    refused, or unknown), reported with the caller's tag, in submission
    order.

    Memory: what the library allocates and hands out (a value from
    walcast_get) is freed with walcast_free(). Strings it returns are
    its own, valid as each function says.

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
#define WALCAST_VERSION_MINOR 9
#define WALCAST_VERSION_PATCH 0

/*  The version of the library linked in, "MAJOR.MINOR.PATCH" (a static
    string); each pointer that is not NULL gets its part. It may differ
    from the WALCAST_VERSION_* of the header a program was built with. */
WALCAST_EXPORT const char *walcast_version (int *major, int *minor, int *patch);

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
    WALCAST_ECONFLICT    = -15,   /* refused: conflicts with the cluster (an id in use, another cluster) */
    WALCAST_ENOTREPLICATED = -16, /* durable on the primary, but fewer replicas than
                                     asked confirmed it in time */
    WALCAST_EFEWREPLICAS = -17,   /* refused: fewer replicas than --min-replicas are current */
    WALCAST_EFENCED      = -18,   /* refused: from an older epoch than the node's */
    WALCAST_EPERM        = -19,   /* refused: the key's role does not allow it */
    WALCAST_EWRITE       = -20    /* the node could not write its log (a read-only
                                     or failing disk): the write was not made */
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
    char     role [16];          /* "primary", "candidate" (started with a
                                    broker, not promoted yet: takes no writes)
                                    or "replica" */
    uint64_t epoch;
    uint64_t applied_seq;        /* last entry applied to its state */
    char     primary [256];      /* HOST:PORT of its primary; "" on a primary */
    uint64_t primary_seq;        /* primary's last seq as last heard */
    uint64_t lag;                /* primary_seq - applied_seq, in entries */
    uint64_t lag_ms;             /* staleness estimate: the age, by the primary's clock,
                                    of the newest heartbeat the node had caught up
                                    with (PROTOCOL.md, "Reads"); 0 on a primary */
} walcast_status_t;

typedef struct walcast walcast_t;

/*  Create a handle with no nodes. Returns NULL when out of memory. */
WALCAST_EXPORT walcast_t *walcast_new (void);

/*  Close every socket and free the handle; sets *self_p to NULL. Safe to
    call with *self_p already NULL. Async writes still unanswered are
    reported to the outcome function first, as WALCAST_WRITE_UNKNOWN with
    err WALCAST_ETIMEOUT and the detail "the handle was destroyed before
    ..." (call walcast_flush before, to give them their time). */
WALCAST_EXPORT void walcast_destroy (walcast_t **self_p);

/*  Free what the library handed out (a value from walcast_get or
    walcast_get_ex). NULL is fine. */
WALCAST_EXPORT void walcast_free (void *ptr);

/*  Add a node by "HOST:PORT" (the node's base port). Writes start at the
    first node added and go to the primary; reads follow the read
    preference (below). WALCAST_EINVAL when host_port is not HOST:PORT
    with a port of 1..65533 (nothing is connected). */
WALCAST_EXPORT int walcast_connect (walcast_t *self, const char *host_port);

/* --- security (CURVE) -------------------------------------------------------

    Without these calls every socket uses ZeroMQ's NULL mechanism, as
    before. With a key pair (walcast_set_curve_cert) every socket the
    handle opens is a CURVE client (docs/PROTOCOL.md, "Security"), and
    needs the public key of the server it connects to:

      - a node learned from the broker: the key its TOPOLOGY entry gives;
      - a node added with walcast_connect (or learned by address, from a
        NOT_PRIMARY or a STATUS): walcast_set_curve_server's;
      - the broker: walcast_set_curve_broker's.

    A node for which the handle has keys but no server key (or a server
    key but no keys of its own) is never asked: calls that would go to
    it fail with WALCAST_EUNAVAILABLE and a detail that says which key
    is missing (walcast_connect fails so at once, and
    walcast_connect_broker for the broker's). A handshake that fails (a
    wrong server key, or a client key the server does not trust) is not
    reported by ZeroMQ: the request meets silence, WALCAST_ETIMEOUT. A
    request the server refuses for the role of the client's key returns
    WALCAST_EPERM (its detail names the role), and is not tried on
    another node.

    Certificates are files in czmq's format: `walcast keygen NAME`
    writes NAME (the public key) and NAME_secret (both keys, mode 0600).
    These calls come before walcast_connect and walcast_connect_broker
    (after them: WALCAST_EINVAL). Each returns 0, or WALCAST_EINVAL with
    walcast_last_detail naming the file and what is wrong with it. */

/*  The handle's own key pair: the NAME_secret file of `walcast keygen`. */
WALCAST_EXPORT int walcast_set_curve_cert (walcast_t *self, const char *secret_cert_path);

/*  The public key of the nodes added with walcast_connect (their public
    certificate: the NAME file; a secret one is read for its public key). */
WALCAST_EXPORT int walcast_set_curve_server (walcast_t *self,
                                             const char *public_cert_path);

/*  The broker's public key (its public certificate). */
WALCAST_EXPORT int walcast_set_curve_broker (walcast_t *self,
                                             const char *public_cert_path);

/*  Bound every call by timeout_ms (default 5000). */
WALCAST_EXPORT void walcast_set_timeout (walcast_t *self, int timeout_ms);

/*  Detail of the last error, or "" (for WALCAST_ENOTPRIMARY: the
    primary's HOST:PORT as the node knows it; for WALCAST_EUNAVAILABLE:
    what was missing, "no primary known after 5000 ms: the broker lists 0
    nodes up"). Valid until the next call. */
WALCAST_EXPORT const char *walcast_last_detail (walcast_t *self);

/*  Be told, one line at a time, what the library noticed and handled on
    its own: a bad node entry in a topology skipped, a watch repairing a
    gap. For debugging; fn NULL stops it. The line is valid during the
    call. */
typedef void (walcast_log_fn) (void *arg, const char *line);
WALCAST_EXPORT void walcast_set_log (walcast_t *self, walcast_log_fn *fn, void *arg);

/*  Write key = value on the primary. On success *pos (if not NULL) is the
    write's position. Keys are 1..1024 bytes, values 0..1 MiB (an empty
    key is WALCAST_EINVAL, a longer key or value WALCAST_ETOOBIG). With the
    handle's acks set (walcast_set_acks), WALCAST_ENOTREPLICATED says the
    write is on the primary but not confirmed replicated. WALCAST_ENOSPC,
    WALCAST_EWRITE: the node's disk is full, or refuses writes (read-only,
    failing): it was not made, and the detail says why. WALCAST_ETIMEOUT:
    it was sent and not answered, so it may or may not have been made
    (the detail: "no answer from HOST:PORT within MS ms: the write was
    sent, so it may or may not have been made"; with a broker, as soon as
    the topology names another primary and lists that node down and a
    PING of the handle's to it since found no connection or no answer in
    2 s, without waiting out the timeout: "the primary moved to HOST:PORT
    and the broker lists HOST:PORT down, ..."; once a PING finds that the
    connection it went on dropped: "the connection to HOST:PORT dropped
    with the write unanswered ..."; it is never sent again);
    WALCAST_EUNAVAILABLE: it was not made (no primary found, or no
    connection to it within the timeout: the detail says which). */
WALCAST_EXPORT int walcast_put (walcast_t *self, const void *key, size_t key_len,
                 const void *value, size_t value_len, walcast_pos_t *pos);

/*  Delete key (succeeds whether or not it existed). */
WALCAST_EXPORT int walcast_del (walcast_t *self, const void *key, size_t key_len,
                 walcast_pos_t *pos);

/* --- write acknowledgements ------------------------------------------------

    By default a write is acknowledged once it is in the primary's log.
    A write may instead ask that `acks` replicas hold it durably first:
    the primary answers once that many replicas have confirmed it, or,
    when its ack timeout passes before, with WALCAST_ENOTREPLICATED: the
    write IS in the primary's log (it reaches the replicas as they catch
    up) but is not confirmed replicated, so a failover before they do
    may lose it. Sending it again is safe (a put applied twice leaves
    what it leaves once). A node that ignores acks (older than this
    library) answers as if none were asked; that too is
    WALCAST_ENOTREPLICATED ("acked=0 of N"), never success.

    A write that asks for acks may take up to its ack timeout longer
    than the handle's timeout: waiting for the replicas is part of it.
    The handle's setting applies to walcast_put, walcast_del and the
    async writes; walcast_put_ex and walcast_del_ex take their own. */

#define WALCAST_MAX_ACKS        254     /* acks a write may ask for, as a number */
#define WALCAST_ACKS_ALL        255     /* every current replica (at least one) */
#define WALCAST_MAX_ACK_TIMEOUT 60000   /* ms */

/*  What one write asks for. */
typedef struct {
    int acks;               /* 0 (the primary's log only), 1..254 or WALCAST_ACKS_ALL */
    int ack_timeout_ms;     /* how long the primary waits for them: 1..60000,
                               or 0 for the node's default (5000) */
} walcast_write_opts_t;

/*  What one write got back. */
typedef struct {
    walcast_pos_t pos;      /* its position; (0, 0) when the answer did not
                               say (WALCAST_ENOTREPLICATED from the node) */
    uint32_t      acked;    /* replicas that confirmed it (WALCAST_ENOTREPLICATED:
                               how many did in time) */
} walcast_write_result_t;

/*  The acks every write of the handle asks for (default 0, 0).
    WALCAST_EINVAL (and no change) when out of range. */
WALCAST_EXPORT int walcast_set_acks (walcast_t *self, int acks, int ack_timeout_ms);

/*  walcast_put / walcast_del with their own acks (opts NULL: the
    handle's). Returns 0 (replicated as asked), WALCAST_ENOTREPLICATED
    (durable on the primary, not confirmed replicated; detail "acked=K
    of N"), or an error as walcast_put. *result (if not NULL) is filled
    for both 0 and WALCAST_ENOTREPLICATED. */
WALCAST_EXPORT int walcast_put_ex (walcast_t *self, const void *key, size_t key_len,
                                   const void *value, size_t value_len,
                                   const walcast_write_opts_t *opts,
                                   walcast_write_result_t *result);
WALCAST_EXPORT int walcast_del_ex (walcast_t *self, const void *key, size_t key_len,
                                   const walcast_write_opts_t *opts,
                                   walcast_write_result_t *result);

/*  Read key (routed by the read preference and consistency, see below).
    On success *value is a copy the caller frees with walcast_free (NULL
    when value_len is 0) and *applied_seq (if not NULL) is the node's
    applied seq. Returns WALCAST_ENOTFOUND when absent, and (session
    consistency) WALCAST_ECONFLICT once when a failover rolled back what
    the handle wrote or read (see below). */
WALCAST_EXPORT int walcast_get (walcast_t *self, const void *key, size_t key_len,
                 void **value, size_t *value_len, uint64_t *applied_seq);

/*  Ask the first node added (or, with a broker, the primary) about itself. */
WALCAST_EXPORT int walcast_status (walcast_t *self, walcast_status_t *status);

/*  The first node's (with a broker: the primary's) applied seq and a
    hash of its whole key-value state; nodes that hold the same data give
    the same hash. */
WALCAST_EXPORT int walcast_digest (walcast_t *self, uint64_t *seq, uint64_t *hash);

/*  Make a node take a snapshot of its whole state now, and wait until
    it is on disk: the first node added with walcast_connect, else (with
    a broker) the primary, waiting for one as server selection does.
    *seq is the applied seq the snapshot holds, *bytes its size. A large
    state takes a while: give the handle a timeout that fits (the CLI
    gives this one 60 s). WALCAST_ETIMEOUT leaves the node writing it. */
WALCAST_EXPORT int walcast_snapshot (walcast_t *self, uint64_t *seq, uint64_t *bytes);

/*  A planned hand-over of the primary role to node_id, losing no write:
    the broker has the primary stop taking writes, waits until node_id
    holds every entry, promotes it with a new epoch and makes the old
    primary follow it. Needs a broker (walcast_connect_broker; else
    WALCAST_EINVAL). On success *epoch (if not NULL) is the new epoch
    and addr (size bytes, if not NULL) the new primary's HOST:PORT.
    Waits up to the handle's timeout (the CLI gives it 30 s) and is
    never resent. Fails with the broker's error, its text in
    walcast_last_detail (a node it does not know, one that cannot take
    over), or WALCAST_ETIMEOUT (the broker did not answer in time: the
    switchover may still complete; the topology says who the primary
    is). Writes sent meanwhile follow the new primary (see "discovery,
    routing and consistency" below). */
WALCAST_EXPORT int walcast_switchover (walcast_t *self, const char *node_id,
                                       uint64_t *epoch, char *addr, size_t size);

/*  Make the broker forget node_id, a node removed for good: it leaves
    the directory (status, the status page, the broker's metrics) and
    this handle's table. Only a node the broker lists down, and not the
    cluster's primary: WALCAST_ECONFLICT otherwise (detail: why),
    WALCAST_ENOTFOUND for an id the broker does not know; needs a broker
    (walcast_connect_broker; else WALCAST_EINVAL). A forgotten node that
    runs again registers again. */
WALCAST_EXPORT int walcast_forget (walcast_t *self, const char *node_id);

/* --- async writes ----------------------------------------------------------

    walcast_put_async and walcast_del_async send a write and return at
    once, blocking only while WALCAST_ASYNC_WINDOW writes wait for their
    outcome, or while the primary's connection is not up (at most the
    handle's timeout: a batch that could not be sent then fails, not
    applied). Every write they accept (return 0) gets exactly one outcome,
    which carries the caller's tag:

      WALCAST_WRITE_OK       the primary applied it at pos (and, when
                             the write asked for acks, that many replicas
                             confirmed it: acked);
      WALCAST_WRITE_NOTREPLICATED  the primary applied it, but fewer
                             replicas than it asked for confirmed it in
                             time (err ENOTREPLICATED, detail "acked=K of
                             N"; pos when the answer said it): durable on
                             the primary, not confirmed replicated;
      WALCAST_WRITE_FAILED   the node refused it (err ENOTPRIMARY, ENOSPC,
                             EWRITE, EFENCED, ...): it was not applied;
      WALCAST_WRITE_UNKNOWN  it was sent and no answer came (err ETIMEOUT:
                             the timeout, plus its ack timeout, passed
                             since it was sent, even with later writes
                             answered (the node restarted at once, say);
                             or another call on the same connection
                             timed out and reset it), or
                             the node could not tell (EIO, from a node
                             before 0.8 whose log failed): it may or may
                             not have been applied.

    Outcomes are handed to the outcome function in submission order, from
    inside walcast_put_async, walcast_del_async, walcast_flush and
    walcast_destroy only. Other calls may settle them (a reply read while
    waiting, or a timeout that turns the writes in flight into UNKNOWN):
    they are kept, never dropped, and handed over by the next of those
    four. A write that a call refuses (returns an error) was not sent and
    gets no outcome.

    Async writes travel in batches: one message, one commit on the
    primary, one reply for up to walcast_set_batch's writes. A write goes
    at once when no other is in flight and no batch went in the last
    millisecond; otherwise it may wait in the batch being filled until
    the batch is full, the writes in flight are answered and that
    millisecond is over (seen by the next call on the handle), or a call
    needs it
    sent (walcast_flush, any synchronous call, walcast_destroy). So call
    walcast_flush when you stop writing. A batch is committed in order:
    when the primary refuses a write of it (disk full), the later writes
    of the same batch are refused with it, with the same error (FAILED;
    UNKNOWN for an older node's EIO, as for a write alone).

    Async writes ask for the acks the handle's walcast_set_acks set when
    they were sent. They are not resent: one refused as not the primary
    (ENOTPRIMARY, EFENCED: a failover or switchover under way) is FAILED.
    When the primary moves, the next async write first waits for the
    outcomes of those still in flight to the old one, then goes to the
    new one: a handle's writes are never in flight to two primaries.
    When the broker lists the old one down, that wait ends at once: the
    writes sent to it are UNKNOWN. Writes not sent yet (the old one
    could not take them: it was killed before the broker noticed) go to
    the new one, including those waiting while the broker noticed.

    A write's outcome is never handed over inside the call that accepted
    it (even when it is already known: a write that could not be sent),
    so a caller may record each write after the call returns 0.

    Resending a FAILED, NOTREPLICATED or UNKNOWN write is safe as long as
    no later write of the same key has landed: a write is applied at
    most once per sending, and a put applied twice leaves what it leaves
    once. */

#define WALCAST_ASYNC_WINDOW 4096
#define WALCAST_MAX_BATCH    1024

/*  The most async writes one batch carries: 1..WALCAST_MAX_BATCH (the
    default). 1 sends every write alone as a PUT or DEL, which nodes
    older than 0.4 also understand. Returns 0 or WALCAST_EINVAL. */
WALCAST_EXPORT int walcast_set_batch (walcast_t *self, int max_writes);

typedef enum {
    WALCAST_WRITE_OK      = 0,
    WALCAST_WRITE_FAILED  = 1,
    WALCAST_WRITE_UNKNOWN = 2,
    WALCAST_WRITE_NOTREPLICATED = 3
} walcast_write_state_t;

/*  The outcome of one async write. */
typedef struct {
    uint64_t      tag;          /* the caller's tag */
    int           state;        /* walcast_write_state_t */
    int           err;          /* 0 when OK, else why (a WALCAST_E* code) */
    walcast_pos_t pos;          /* OK: the write's position */
    const char   *detail;       /* the error's detail, or "" (ENOTPRIMARY:
                                   the primary's HOST:PORT); valid during
                                   the call */
    uint32_t      acked;        /* OK, NOTREPLICATED: replicas that confirmed it */
} walcast_outcome_t;

/*  Called once per async write, in submission order. It may send more
    async writes; it must not destroy the handle. */
typedef void (walcast_outcome_fn) (void *arg, const walcast_outcome_t *outcome);

/*  Where outcomes go (fn NULL: nowhere; walcast_flush still sums them up). */
WALCAST_EXPORT void walcast_set_outcome_fn (walcast_t *self, walcast_outcome_fn *fn,
                                            void *arg);

/*  Send a put (or a delete) without waiting for its reply; tag comes
    back with its outcome. Returns 0 (its outcome will come), or an error
    for a write that was not sent: EINVAL or ETOOBIG for a bad key or
    value, EUNAVAILABLE when no primary was found within the timeout,
    ETIMEOUT when the window stayed full for the whole timeout (the
    writes in it are then UNKNOWN, and reported). */
WALCAST_EXPORT int walcast_put_async (walcast_t *self, const void *key, size_t key_len,
                                      const void *value, size_t value_len, uint64_t tag);
WALCAST_EXPORT int walcast_del_async (walcast_t *self, const void *key, size_t key_len,
                                      uint64_t tag);

/*  Wait until every async write has its outcome (those still unanswered
    when the timeout passes become UNKNOWN) and hand each one over. Sums
    up the writes handed over since the previous flush: *last (if not
    NULL) is the highest position acknowledged, *acked (if not NULL) how
    many were acknowledged (OK); returns 0 when every one was, else the
    error of the first that was not (its detail in walcast_last_detail;
    WALCAST_ENOTREPLICATED for a write not confirmed replicated). A
    write that asks for acks is given its ack timeout on top of the
    handle's timeout. */
WALCAST_EXPORT int walcast_flush (walcast_t *self, walcast_pos_t *last, uint64_t *acked);

/* --- discovery, routing and consistency ----------------------------------

    With a broker, the handle learns every node (id, region, role,
    address, up/down) from the broker's TOPOLOGY and follows its pushes;
    without one, it learns them from the nodes added with walcast_connect
    (their PONGs). It PINGs every node it knows about once a second, in
    the course of its calls, and keeps a round-trip time per node as an
    exponentially weighted moving average (new sample weight 0.2). A node
    that stops answering is skipped until it answers again. A node entry
    of a TOPOLOGY that cannot be used (an address that is not HOST:PORT)
    is skipped, and the rest are used.

    Server selection waits. A call that finds no suitable node (no
    primary known for a write or a strong read, no node of the
    preference for a read or a watch) polls the topology and the nodes
    until one appears or the call's timeout passes, as MongoDB drivers do
    with serverSelectionTimeoutMS; it then fails with
    WALCAST_EUNAVAILABLE and a detail that says what was missing ("no
    primary known after 5000 ms: the broker lists 0 nodes up").

    Reads pick nodes by the read preference, then the consistency:
      WALCAST_READ_NEAREST (default)  nodes within the latency window
                           (default 15 ms) of the lowest RTT, the handle's
                           region first;
      WALCAST_READ_PRIMARY the primary only;
      WALCAST_READ_REPLICA replicas only, nearest first;
      WALCAST_READ_REGION  nodes of one region only, nearest first.
    Consistency:
      WALCAST_EVENTUAL     any node of the preference;
      WALCAST_SESSION (default)  read-your-writes and monotonic reads
                           within the handle: each read carries the highest
                           seq the handle wrote or saw, and the newest
                           epoch it wrote or read in; a node behind it
                           waits up to the session wait (default 200 ms),
                           then the handle tries the next node, and the
                           primary last. When a failover rolled back what
                           the handle wrote or read, one read returns
                           WALCAST_ECONFLICT (detail: which seqs), and the
                           handle goes on from the new history. Async
                           writes count once their outcome is known
                           (walcast_flush);
      WALCAST_STRONG       the primary only.
    A max staleness (ms, 0 = none) makes replicas whose lag estimate is
    larger decline the read, which then goes to the next node.

    Writes go to the primary: the broker's, or the one a NOT_PRIMARY
    answer names. A write refused as not the primary (ENOTPRIMARY, or
    EFENCED from a primary that has been replaced) was not applied, so
    it follows the primary: to the one the refusal names, once; and when
    the refusal names nobody, or a node that refused it too (the target
    of a switchover not promoted yet), it waits, as server selection
    does, for the topology to name a primary that has not refused it (or
    one that has, with a newer epoch, or one whose ENOTPRIMARY is 500 ms
    old: a primary whose switchover was cancelled takes writes again at
    the same epoch). When no primary takes it within the deadline, the
    call returns the last refusal. A
    write that times out is NOT retried: its outcome is unknown (the old
    primary may have applied it), and the call returns WALCAST_ETIMEOUT.
    Every call, retries included, is bounded by one deadline: the
    handle's timeout (plus the ack timeout of a write that asks for
    acks). A handle given a single node and no broker does not follow:
    it returns ENOTPRIMARY, naming the primary, as it is.

    Strong and primary reads are served only by a node known to be the
    primary; when none is known the handle asks the nodes it knows (a
    replica's STATUS names its primary), and fails with
    WALCAST_EUNAVAILABLE ("no primary known ...") rather than read a
    replica. A VALUE whose applied seq is below the min_seq sent counts
    as ESTALE. */

/*  Learn the cluster from a broker at "HOST:PORT" (its base port). Asks
    for the topology (bounded by the timeout), connects to every node in
    it and subscribes to the broker's topology pushes. WALCAST_EINVAL for
    an address that is not HOST:PORT; WALCAST_ETIMEOUT when the broker
    did not answer within the timeout (the handle keeps the broker and
    asks again at later calls). */
WALCAST_EXPORT int walcast_connect_broker (walcast_t *self, const char *host_port);

/*  The client's own region, for "nearest" ("" or NULL: none). */
WALCAST_EXPORT int walcast_set_region (walcast_t *self, const char *region);

/*  Read preferences. */
typedef enum {
    WALCAST_READ_NEAREST = 0,
    WALCAST_READ_PRIMARY = 1,
    WALCAST_READ_REPLICA = 2,
    WALCAST_READ_REGION  = 3
} walcast_read_t;

/*  Consistency levels. */
typedef enum {
    WALCAST_SESSION  = 0,
    WALCAST_EVENTUAL = 1,
    WALCAST_STRONG   = 2
} walcast_consistency_t;

/*  Set the read preference; region names the region for
    WALCAST_READ_REGION (1..64 bytes) and must be NULL otherwise.
    WALCAST_EINVAL for anything else (the setting is then unchanged). */
WALCAST_EXPORT int walcast_set_read (walcast_t *self, walcast_read_t read,
                                     const char *region);

/*  Set the consistency; WALCAST_EINVAL for a value not in the enum. */
WALCAST_EXPORT int walcast_set_consistency (walcast_t *self,
                                            walcast_consistency_t consistency);

/*  For command lines and configuration files: parse "nearest",
    "primary", "replica" or "region=NAME" (then *region points at NAME,
    inside text; else NULL), and "eventual", "session" or "strong".
    0, or WALCAST_EINVAL (nothing written). */
WALCAST_EXPORT int walcast_read_parse (const char *text, walcast_read_t *read,
                                       const char **region);
WALCAST_EXPORT int walcast_consistency_parse (const char *text,
                                              walcast_consistency_t *consistency);

/*  Bound on replica staleness for reads, ms; 0 (default) = none. A bound
    below the staleness floor, WALCAST_STALENESS_FLOOR_MS (replicas hear
    from their primary every 100 ms, so a smaller bound refuses even
    current replicas for part of every period), is raised to it, and the
    handle's log says so; walcast_max_staleness gives the bound in use. */
#define WALCAST_STALENESS_FLOOR_MS  100
WALCAST_EXPORT void walcast_set_max_staleness (walcast_t *self, int ms);
WALCAST_EXPORT int walcast_max_staleness (walcast_t *self);

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
    NULL) says who answered. *value is freed with walcast_free. */
WALCAST_EXPORT int walcast_get_ex (walcast_t *self, const void *key, size_t key_len,
                                   uint64_t min_seq, void **value, size_t *value_len,
                                   walcast_served_t *served);

/*  The session token: the highest seq this handle wrote or read. */
WALCAST_EXPORT uint64_t walcast_session_seq (walcast_t *self);

/*  One node as the handle sees it. */
typedef struct {
    char     id [65];
    char     region [65];
    char     role [16];        /* "primary", "replica", "candidate" (the
                                  broker lists it as one: it takes no
                                  writes yet) or "" when unknown */
    char     addr [256];
    char     primary [256];    /* who it follows; "" on a primary */
    uint64_t epoch;
    uint64_t applied_seq;
    uint64_t lag;              /* entries */
    uint64_t lag_ms;
    double   rtt_ms;           /* < 0 when unknown */
    int      up;               /* 1 up, 0 down (broker's view, else pings;
                                  a candidate's from the pings, as the
                                  broker lists every candidate down) */
} walcast_node_info_t;

/*  Refresh (topology, one round of PINGs bounded by the timeout) and list
    the nodes the handle knows, at most max of them, in *count: those the
    broker's last topology lists (a node it no longer lists is left out,
    as a fresh handle would not know it) and those added by hand. When the
    broker did not answer, the list is its last topology with up/down
    from the PINGs (none, when it never answered), and walcast_last_detail
    says so (the call still returns 0); otherwise the detail is empty. */
WALCAST_EXPORT int walcast_nodes (walcast_t *self, walcast_node_info_t *nodes,
                                  size_t max, size_t *count);

/* --- change feed -----------------------------------------------------------

    walcast_watch calls a function for every change to keys under a
    prefix, in seq order, each exactly once, with no seq skipped among
    the matching keys. It follows a node's stream (the node the read
    preference picks) and, as a replica does, finds every change the
    stream lost (a gap in the seqs, or a heartbeat ahead of the last
    change seen) and fetches it over the node's catch-up channel. So it
    takes every change of the stream and filters by prefix itself. */

/*  A change seen by walcast_watch. op is 1 (put) or 2 (delete; value
    empty). Return 0 to go on, anything else to stop the watch. */
typedef int (walcast_watch_fn) (void *arg, uint64_t seq, int op,
                                const void *key, size_t key_len,
                                const void *value, size_t value_len);

/*  Call fn for every change to keys starting with prefix (prefix_len 0:
    all), from the seq *position on (0, or position NULL: from now, the
    node's applied seq when the watch starts). Blocks until fn returns
    non-zero (then returns that value), timeout_ms passes with no change
    (timeout_ms < 0: forever), walcast_watch_stop is called, or a signal
    interrupts the wait (then 0). When it returns, *position (if not
    NULL) is the seq the watch would have handed over next: pass it back
    to go on where it stopped, nothing skipped, nothing repeated.
    When the watched node goes silent (PINGs unanswered, its stream
    quiet, or the broker marks it down) the watch moves to the next
    candidate and goes on from the same seq, or returns
    WALCAST_EUNAVAILABLE when there is none. When the node no longer
    holds a seq the watch needs, the watch moves to another candidate
    that has not said so; returns WALCAST_ERANGE when none holds it
    (detail: which, of the last node asked): the feed would have a hole;
    WALCAST_ECONFLICT when a failover rolled back
    changes it already handed over (a deposed primary's writes): the
    detail names the seq to watch again from, with the new history.
    A position passed back to the same handle carries what the seq alone
    does not: the epoch of the change before it. The next call first
    checks that the cluster's history still holds that change, so a
    rollback between two calls is ECONFLICT too. A consumer that keeps
    its position elsewhere (and restarts) keeps walcast_watch_epoch with
    it and gives it back with walcast_watch_resume; a bare seq from
    elsewhere cannot be checked. */
WALCAST_EXPORT int walcast_watch (walcast_t *self, const void *prefix, size_t prefix_len,
                                  uint64_t *position, walcast_watch_fn *fn, void *arg,
                                  int timeout_ms);

/*  The epoch of the change just before the position the last
    walcast_watch of this handle returned (0: it handed over nothing and
    knew none); called from the watch's fn, the epoch of the change being
    handed over (a consumer that saves seq + 1 there saves this with it). */
WALCAST_EXPORT uint64_t walcast_watch_epoch (walcast_t *self);

/*  The next walcast_watch from position first checks that the change at
    position - 1 is still the one of epoch `epoch` (what walcast_watch_epoch
    said when that position was returned), and returns WALCAST_ECONFLICT,
    naming the seq to watch again from, when a failover rolled it back.
    WALCAST_EINVAL for position 0 or epoch 0. */
WALCAST_EXPORT int walcast_watch_resume (walcast_t *self, uint64_t position,
                                         uint64_t epoch);

/*  Make a running walcast_watch return 0 within about 100 ms (or the
    next one at once). Safe to call from a signal handler: it only sets
    a flag. */
WALCAST_EXPORT void walcast_watch_stop (walcast_t *self);

/*  Called when a watch moves from one node to another (ids of both). */
typedef void (walcast_watch_switch_fn) (void *arg, const char *from, const char *to);

/*  Be told when a watch moves (fn NULL: stop being told). */
WALCAST_EXPORT void walcast_set_watch_notify (walcast_t *self,
                                              walcast_watch_switch_fn *fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
