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
    WALCAST_EBUSY        = -12    /* node overloaded or not ready; retry later */
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

/*  Add a node by "HOST:PORT" (the node's base port). The first node added
    serves reads; writes start there and go to the primary. */
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

/*  Read key from the read node. On success *value is a malloc'd copy the
    caller frees (NULL when value_len is 0) and *applied_seq (if not NULL)
    is the node's applied seq. Returns WALCAST_ENOTFOUND when absent. */
WALCAST_EXPORT int walcast_get (walcast_t *self, const void *key, size_t key_len,
                 void **value, size_t *value_len, uint64_t *applied_seq);

/*  Ask the read node about itself. */
WALCAST_EXPORT int walcast_status (walcast_t *self, walcast_status_t *status);

/*  The read node's applied seq and a hash of its whole key-value state;
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

#ifdef __cplusplus
}
#endif

#endif
