/*  engine.h - the storage engine: the log, the state and the applied seq,
    behind one commit contract.

    A node never touches the WAL or the store directly: it stages entries
    and commits them here, and is told (through the apply callback) of
    each entry as it becomes part of the state, in seq order. Three seqs
    tell where an entry is:

        written  it is in the log's files (the page cache, at least);
        durable  it is fsynced;
        applied  it is in the state, and may leave the node (replies,
                 the stream, FETCH, reads).

    The contract:
    - A commit writes every staged entry or fails with ENOSPC or EIO, and
      then the log holds exactly the entries up to `written`: the persisted
      prefix is kept and reported, the rest is dropped (its writers are
      refused), and staging goes on from written + 1 as soon as the cause
      is gone. Replies, the state and the log agree after every failure.
    - Under --fsync always an entry is applied only once it is durable, so
      nothing leaves a node beyond its synced seq; under batch and never,
      once it is written (batch syncs at most 10 ms later).
    - Syncing runs on the syncer's thread (syncer.h): the node's loop goes
      on batching while the disk works, and each sync covers every write
      made before it (group commit). A failed fsync is fatal: what reached
      the disk is unknown, so the node must stop and replay its log.

    The engine also owns the data directory's lock (one process per
    directory) and the replay at start, which stops before damage in the
    middle of the log and reports it (wc_engine_damage).
*/
#ifndef WC_ENGINE_H_INCLUDED
#define WC_ENGINE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec.h"
#include "store.h"
#include "wal.h"

typedef enum {
    WC_FSYNC_ALWAYS = 0,    /* an entry is applied (and acknowledged) once synced */
    WC_FSYNC_BATCH  = 1,    /* sync at most every 10 ms */
    WC_FSYNC_NEVER  = 2     /* leave it to the kernel (and to shutdown) */
} wc_fsync_t;

typedef struct wc_engine wc_engine_t;

typedef struct {
    const char *dir;            /* the data directory */
    size_t      segment_bytes;  /* 0: the WAL's default */
    wc_fsync_t  fsync;
    const char *owner;          /* who takes the lock: "walcast-node --id us1" */
} wc_engine_config_t;

/*  What the open found. */
typedef struct {
    wc_wal_info_t wal;          /* the log's replay */
    bool          missing_start;    /* the log does not begin at seq 1 */
    double        seconds;      /* how long the open took */
} wc_engine_info_t;

/*  An entry became applied: it is in the state (payload is its encoding,
    as the log holds it). Called in seq order, from wc_engine_commit or
    wc_engine_on_sync. */
typedef void (wc_engine_apply_fn) (void *arg, const wc_entry_t *entry,
                                   const void *payload, size_t len);

/*  Lock the directory, open the log and replay it into a new state.
    NULL on failure, with *err and the cause (and remedy) in why: EBUSY
    when another process holds the directory. */
wc_engine_t *wc_engine_open (const wc_engine_config_t *cfg, wc_engine_info_t *info,
                             int *err, char *why, size_t why_size);

/*  A clean stop: write what is staged, wait for the syncs asked for,
    sync the rest and apply it (the apply callback is still called).
    Returns 0, or an error when something could not be made durable. */
int wc_engine_close (wc_engine_t *self);

/*  Close (without calling the apply callback) unless closed, stop the
    syncer, release the lock, free. *self_p becomes NULL; safe twice. */
void wc_engine_destroy (wc_engine_t **self_p);

/*  Be told of each entry as it becomes applied (after the replay). */
void wc_engine_set_apply (wc_engine_t *self, wc_engine_apply_fn *fn, void *arg);

/*  Damage found at the open (in the middle of the log, or a missing
    beginning): false when none; else true, with what is wrong, where,
    which seqs are lost and what the operator can do, in text. */
bool wc_engine_damage (const wc_engine_t *self, char *text, size_t size);

/*  Keep the valid prefix of a damaged log as the live log and move the
    rest aside (nothing is deleted), so a replica can refetch it. 0 or an
    error (logged). */
int wc_engine_set_aside (wc_engine_t *self);

/*  The seq the next staged entry must have. */
uint64_t wc_engine_next_seq (const wc_engine_t *self);

/*  Stage one entry (entry->seq == wc_engine_next_seq; payload its
    encoding, copied). 0, WALCAST_ENOMEM, WALCAST_EINVAL (wrong seq). */
int wc_engine_stage (wc_engine_t *self, const wc_entry_t *entry,
                     const void *payload, size_t len);

/*  Write what is staged (see the contract above). Returns 0, or
    WALCAST_ENOSPC / WALCAST_EIO when only the entries up to
    wc_engine_written could be written (the rest is dropped), or
    WALCAST_ENOMEM when an entry could not be applied (the node must
    stop). The first failure of an episode is logged, with its cause, and
    the first success after it. */
int wc_engine_commit (wc_engine_t *self);

/*  The socket to poll for sync results, and what to do when it is
    readable: apply what became durable. 0, or WALCAST_EIO when a sync
    failed (the node must stop), WALCAST_ENOMEM as for commit. */
void *wc_engine_sync_socket (wc_engine_t *self);
int wc_engine_on_sync (wc_engine_t *self);

/*  Periodic work (--fsync batch: a sync every 10 ms while something is
    unsynced). Returns ms until it next needs to run. */
int wc_engine_tick (wc_engine_t *self);

/*  Where entries are (see above), and the newest entry's epoch and
    primary clock. */
uint64_t wc_engine_written (const wc_engine_t *self);
uint64_t wc_engine_durable (const wc_engine_t *self);
uint64_t wc_engine_applied (const wc_engine_t *self);
uint64_t wc_engine_epoch (const wc_engine_t *self);
uint64_t wc_engine_applied_ts (const wc_engine_t *self);

/*  Bytes the engine holds for entries staged or written and not yet
    applied (and applied ones it has not given back yet). */
size_t wc_engine_pending_bytes (const wc_engine_t *self);

/*  True once a sync failed or an entry could not be applied: nothing more
    is written, and the node must stop (a restart replays the log). */
bool wc_engine_failed (const wc_engine_t *self);

/*  True while commits fail (disk full...): the cause in text. */
bool wc_engine_stalled (const wc_engine_t *self, char *text, size_t size);

/*  The state, for reads (a read may move an incremental resize along). */
wc_store_t *wc_engine_store (wc_engine_t *self);

/*  First seq the log holds (0 when empty). */
uint64_t wc_engine_first_seq (const wc_engine_t *self);

/*  Read applied entries from from_seq on, as wc_wal_read does (payloads
    as the log holds them), never past the applied seq. */
int wc_engine_read (wc_engine_t *self, uint64_t from_seq, size_t max_bytes,
                    wc_wal_record_fn *fn, void *arg);

#endif
