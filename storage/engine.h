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

    History identity (issue 7). The engine keeps the epoch history
    (epochs.h), persisted before the first entry of a new epoch is
    written; it refuses entries of an epoch older than its latest
    (WALCAST_EFENCED), answers EPOCH_END, and can truncate the log to a
    fork point (the entries after it are gone, the state rebuilt). A
    diverged marker survives restarts.

    Snapshots. The state at the applied seq is written to a snapshot
    file (snapshot.h) by a thread of its own, after a freeze of the store
    (copy on write) that is the only pause of the loop: every
    snapshot_every entries (at seqs offset by snapshot_phase, so nodes
    given different phases do not pause at the same write; the store's
    memory for the freeze is made ready in the entries just before) and
    on demand. The two newest are kept; after each, WAL segments the
    older of them covers are removed while the log keeps at least
    retain_bytes (so that the older one, with the log after it, can stand
    in for a damaged newest). The
    open loads the newest valid snapshot (a damaged one is set aside as
    *.damaged and the one before it used) and replays the log after it.
    A replica whose upstream no longer has the entries it needs installs
    the upstream's snapshot: state, history and log replaced at once; an
    "install" marker lets a restart finish an install a crash
    interrupted, so the directory holds the old state or the new one,
    never a mix.

    Files of the data directory: LOCK, wal-<seq>.log, epochs,
    snapshot-<seq>.snap, DIVERGED (when diverged), install (during an
    install), *.tmp (a write in progress; removed at open), *.damaged*
    (set aside, never read again).
*/
#ifndef WC_ENGINE_H_INCLUDED
#define WC_ENGINE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec.h"
#include "epochs.h"
#include "metrics.h"
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
    uint64_t    snapshot_every; /* a snapshot every this many applied entries;
                                   0: only on demand */
    uint64_t    snapshot_phase; /* where: at the seqs s with (s + snapshot_phase)
                                   % snapshot_every == 0, so nodes given
                                   different phases do not snapshot at once */
    uint64_t    retain_bytes;   /* log kept after a snapshot (0: only what the
                                   older snapshot kept needs; the node's
                                   default is WC_ENGINE_RETAIN_DEFAULT) */
} wc_engine_config_t;

#define WC_ENGINE_RETAIN_DEFAULT  (256ull * 1024 * 1024)

/*  What the open found. */
typedef struct {
    wc_wal_info_t wal;          /* the log's replay */
    bool          missing_start;    /* the log does not begin right after the
                                       snapshot (or at seq 1 without one) */
    uint64_t      snapshot_seq; /* the snapshot the state was loaded from; 0 none */
    uint32_t      snapshots_damaged;    /* damaged snapshots set aside */
    bool          install_finished; /* an interrupted install was completed */
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
    beginning: seqs between the snapshot, or seq 1, and the log's first
    are not there): false when none; else true, with what is wrong,
    where, which seqs are lost and what the operator can do, in text. */
bool wc_engine_damage (const wc_engine_t *self, char *text, size_t size);

/*  Keep the valid prefix of a damaged log as the live log and move the
    rest aside (nothing is deleted), so a replica can refetch it. 0 or an
    error (logged). */
int wc_engine_set_aside (wc_engine_t *self);

/*  The seq the next staged entry must have. */
uint64_t wc_engine_next_seq (const wc_engine_t *self);

/*  Stage one entry (entry->seq == wc_engine_next_seq; payload its
    encoding, copied). An entry of an epoch newer than the latest of the
    history adds (epoch, seq) to it, persisted before this returns (so
    before the entry is written). 0, WALCAST_ENOMEM, WALCAST_EINVAL
    (wrong seq), WALCAST_EFENCED (an epoch older than the latest),
    WALCAST_EIO / WALCAST_ENOSPC (the history could not be written: the
    entry is not staged). */
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
    unsynced; snapshots: one that is due is started, one that ended is
    taken in). Returns ms until it next needs to run. */
int wc_engine_tick (wc_engine_t *self);

/*  Where entries are (see above), and the last applied entry's primary
    clock. */
uint64_t wc_engine_written (const wc_engine_t *self);

/*  About `entries` entries are on their way (a replica's catch-up): let
    the state make room for them at once (wc_store_reserve), for at most
    WC_STORE_RESERVE_MAX of them (they may overwrite each other, and a
    table is 8 bytes a slot: the most this maps ahead is 64 MiB). */
void wc_engine_expect (wc_engine_t *self, uint64_t entries);
uint64_t wc_engine_durable (const wc_engine_t *self);
uint64_t wc_engine_applied (const wc_engine_t *self);
uint64_t wc_engine_applied_ts (const wc_engine_t *self);

/*  Bytes the engine holds for entries staged or written and not yet
    applied (and applied ones it has not given back yet). */
size_t wc_engine_pending_bytes (const wc_engine_t *self);

/*  True once a sync failed or an entry could not be applied: nothing more
    is written, and the node must stop (a restart replays the log). */
bool wc_engine_failed (const wc_engine_t *self);

/*  True while commits fail (disk full...), or the history of a newer
    epoch cannot be written for the entry that begins it: the cause in
    text. */
bool wc_engine_stalled (const wc_engine_t *self, char *text, size_t size);

/*  For metrics: the log's bytes and segment files on disk (0 while it is
    closed), and how long each fsync of the syncer's thread took so far
    (zero counts once the engine is closed). */
void wc_engine_wal_size (const wc_engine_t *self, uint64_t *bytes, uint64_t *segments);
void wc_engine_fsync_latency (const wc_engine_t *self, wc_metrics_tally_t *tally);

/*  The state, for reads (a read may move an incremental resize along). */
wc_store_t *wc_engine_store (wc_engine_t *self);

/*  First seq the log holds; when the log is empty, the seq after the
    snapshot the state comes from (0 when there is neither). A FETCH
    below it cannot be served from the log. */
uint64_t wc_engine_first_seq (const wc_engine_t *self);

/*  Read applied entries from from_seq on, as wc_wal_read does (payloads
    as the log holds them), never past the applied seq. WALCAST_ERANGE
    below wc_engine_first_seq. */
int wc_engine_read (wc_engine_t *self, uint64_t from_seq, size_t max_bytes,
                    wc_wal_record_fn *fn, void *arg);


//  --------------------------------------------------------------------
//  Epochs

/*  The latest epoch of the history (0 when it has none). */
uint64_t wc_engine_epoch (const wc_engine_t *self);

/*  The history itself (valid until the next call that changes it). */
const wc_epochs_t *wc_engine_epochs (const wc_engine_t *self);

/*  A primary's new tenure: epoch (above the latest) begins at
    wc_engine_next_seq, persisted before this returns. The first epoch of
    an empty history (and no cluster id) begins a new cluster: its id is
    picked and persisted first. 0, WALCAST_EINVAL
    (not above the latest), WALCAST_EIO / WALCAST_ENOSPC (not written;
    the history is unchanged), WALCAST_ENOMEM. */
int wc_engine_begin_epoch (wc_engine_t *self, uint64_t epoch);

/*  The cluster id of the data directory (storage/cluster.h): 0 until the
    node begins its first epoch (wc_engine_begin_epoch picks one when the
    history is empty) or takes its upstream's. */
uint64_t wc_engine_cluster (const wc_engine_t *self);

/*  Record id (not 0) as the directory's cluster id, durably, before this
    returns. 0, or WALCAST_EINVAL / WALCAST_EIO / WALCAST_ENOSPC (logged;
    the id is unchanged). */
int wc_engine_set_cluster (wc_engine_t *self, uint64_t id);

/*  EPOCH_END's answer over what is applied: *found the largest epoch <=
    epoch in the history, *end_seq the seq before the next epoch's first
    (at most the applied seq), or the applied seq when *found is the
    latest; 0, 0 when there is no epoch <= epoch. Returns 0. */
int wc_engine_epoch_end (wc_engine_t *self, uint64_t epoch, uint64_t *found,
                         uint64_t *end_seq);

/*  The last seq of this node's log whose entries are of epochs <= epoch
    (the seq before the first epoch above it begins, at most the written
    seq): with EPOCH_END's answer E', end, the fork point is
    min (end, wc_engine_epoch_last_seq (E')). When E' is below this
    node's latest epoch after truncating there, ask EPOCH_END again with
    the new latest epoch, until E' is the latest (as Kafka's KIP-279
    does): epochs the upstream never had may still follow. */
uint64_t wc_engine_epoch_last_seq (wc_engine_t *self, uint64_t epoch);

/*  The lowest seq wc_engine_truncate can go to: 0 when the log begins at
    seq 1, else the oldest snapshot the log continues (the log cannot
    rebuild anything before it). */
uint64_t wc_engine_truncate_floor (const wc_engine_t *self);

/*  Drop every entry after seq, for good: from the log (segments cut and
    removed, synced), from the history, and from the snapshots (those
    above seq are removed); the state is rebuilt as of seq (the newest
    snapshot at or below it, then the log). Staged entries are dropped,
    syncs in flight are waited for (under --fsync always the entries they
    make durable are applied and told first, as wc_engine_on_sync would),
    a snapshot being written is cancelled (its result still reaches
    wc_engine_on_snapshot). Applied,
    written and durable all become seq; the apply callback is not called.
    Everything is persisted before it returns. 0, WALCAST_EINVAL (seq
    past the written seq), WALCAST_ERANGE (seq below
    wc_engine_truncate_floor; nothing changed), WALCAST_ETIMEOUT (a sync
    or a snapshot write does not end; nothing changed), WALCAST_EIO /
    WALCAST_ENOMEM (logged; when the files were already being changed
    the engine has failed: the node must stop, and a restart comes back
    with the old entries or without them, whole). */
int wc_engine_truncate (wc_engine_t *self, uint64_t seq);

/*  Persist the diverged marker with why (a line for the operator). 0 or
    WALCAST_EIO / WALCAST_ENOSPC (logged). */
int wc_engine_set_diverged (wc_engine_t *self, const char *why);

/*  True when the data directory holds the diverged marker (until an
    operator empties the directory), with its text in why (may be NULL). */
bool wc_engine_diverged (const wc_engine_t *self, char *why, size_t size);


//  --------------------------------------------------------------------
//  Snapshots

/*  Start a snapshot of the state at the applied seq now, written by the
    snapshot thread. 0, WALCAST_EBUSY (one is being written, or its result
    was not taken yet), WALCAST_EINVAL (nothing applied yet),
    WALCAST_ENOMEM, WALCAST_EIO (the engine has failed). */
int wc_engine_snapshot (wc_engine_t *self);

/*  The socket to poll: readable when a snapshot write has ended. */
void *wc_engine_snapshot_socket (wc_engine_t *self);

/*  What to do when it is readable: 1 with *seq and *bytes when a
    snapshot was written (older ones and covered log segments have been
    removed by then), 0 when nothing ended, or the error of a write that
    failed (logged; the node goes on, and the engine tries again 10 s
    later at the earliest). A write cancelled by a truncation or an
    install ends with WALCAST_EBUSY. */
int wc_engine_on_snapshot (wc_engine_t *self, uint64_t *seq, uint64_t *bytes);

/*  The seq of the newest snapshot (0: none). */
uint64_t wc_engine_snapshot_seq (const wc_engine_t *self);

/*  Read up to max bytes at offset of the snapshot file of seq (0: the
    newest) into buf: *snap_seq its seq, *size its size, *got the bytes
    read (0 at the end). 0, WALCAST_ENOTFOUND (no snapshot at all),
    WALCAST_ERANGE (that snapshot is gone), WALCAST_EINVAL (offset past
    the end), WALCAST_EIO. */
int wc_engine_snapshot_read (wc_engine_t *self, uint64_t seq, uint64_t offset,
                             void *buf, size_t max, uint64_t *snap_seq,
                             uint64_t *size, size_t *got);

/*  A path inside the data directory to download a snapshot into (a
    *.tmp name: a leftover is removed at the next open). */
const char *wc_engine_snapshot_temp_path (wc_engine_t *self);

/*  Install the snapshot file at path (in the data directory: it is
    renamed, not copied): check it whole (CRC, header, digest), then make
    it this node's only snapshot and replace the state, the history and
    the log with it (the old entries are gone). Applied, written and
    durable become its seq; the apply callback is not called. A snapshot
    write in progress is cancelled, syncs in flight waited for. 0,
    WALCAST_EPROTO (not a valid snapshot: nothing changed),
    WALCAST_ETIMEOUT, WALCAST_EIO / WALCAST_ENOSPC / WALCAST_ENOMEM
    (logged; before the switch nothing changed, after it the engine has
    failed and a restart finishes the install). */
int wc_engine_install_snapshot (wc_engine_t *self, const char *path);

/*  The same in two halves, so that the long one can run off the owner's
    thread (reading and checking a snapshot of millions of keys takes
    seconds; a node must go on answering meanwhile). A snapshot read and
    checked, not yet installed: */
typedef struct wc_engine_install wc_engine_install_t;

/*  First half: read and check the snapshot at path into a new state
    (*install). It reads nothing of the engine but its directory's name,
    and writes only the file's page cache and new objects, so it may run
    on another thread while the engine goes on. 0, or WALCAST_EPROTO,
    WALCAST_ENOTFOUND, WALCAST_EIO, WALCAST_ENOMEM (logged; *install NULL). */
int wc_engine_install_read (const wc_engine_t *self, const char *path,
                            wc_engine_install_t **install);

/*  Second half, on the engine's thread: make *install (read from path,
    still in place) the node's state, history and log, as
    wc_engine_install_snapshot says. *install is taken (NULL after). */
int wc_engine_install_apply (wc_engine_t *self, const char *path,
                             wc_engine_install_t **install);

/*  Drop a read snapshot that will not be installed. */
void wc_engine_install_destroy (wc_engine_install_t **install);

#endif
