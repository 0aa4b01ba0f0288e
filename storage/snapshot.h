/*  snapshot.h - snapshots of the state: the file, and the thread that
    writes it while the loop goes on.

    A snapshot is the whole state at one applied seq, in the file
    snapshot-<seq, 20 digits>.snap of the data directory:

        header   msgpack array ["walcast-snapshot", format 1, seq,
                 [[epoch, first_seq], ...] (the history up to seq),
                 count, digest, ts_ms (the primary clock of entry seq)]
        pairs    count msgpack arrays [key:bin, value:bin]
        trailer  CRC32C of every byte before it (u32, little-endian)

    It is written to snapshot-<seq>.snap.tmp, synced, renamed and the
    directory synced, so a snapshot file is whole or absent. Loading
    checks everything as if it came from the network (the CRC, every
    type and limit, that the pairs are count distinct keys whose digest is
    the header's) and builds a new store; anything wrong is WALCAST_EPROTO,
    so the caller can fall back to an older snapshot.

    The writer (wc_snapshotter) is a czmq actor, as the syncer is. The
    loop freezes the store (store.h: a view of the pairs that stays as it
    was while the store changes, copy on write) and hands the view to the
    writer; the writer's thread packs and writes it and tells the loop
    through its socket when it is done; the loop then thaws the store.
    Only the view's pairs are shared between the threads, and the loop
    does not change them until the thaw.
*/
#ifndef WC_SNAPSHOT_H_INCLUDED
#define WC_SNAPSHOT_H_INCLUDED

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "epochs.h"
#include "store.h"

#define WC_SNAPSHOT_FORMAT      1
#define WC_SNAPSHOT_NAME_SIZE   48      /* a snapshot file name and its NUL */

/*  What a snapshot's header and trailer say. */
typedef struct {
    uint64_t seq;               /* the last entry it holds */
    uint64_t ts_ms;             /* that entry's primary clock */
    uint64_t count;             /* pairs */
    uint64_t digest;            /* the state's digest (store.h) */
    uint32_t crc;               /* the trailer */
    uint64_t bytes;             /* the file's size */
} wc_snapshot_info_t;

/*  "snapshot-<seq, 20 digits>.snap" into buf (WC_SNAPSHOT_NAME_SIZE). */
const char *wc_snapshot_name (char *buf, uint64_t seq);

/*  The seq a snapshot file name says, or 0 when name is not exactly one
    (so *.tmp and *.damaged are not snapshots). */
uint64_t wc_snapshot_parse_name (const char *name);

/*  The seqs of the snapshot files of the directory, ascending (*seqs to
    free). 0, WALCAST_EIO, WALCAST_ENOMEM. */
int wc_snapshot_list (int dirfd, uint64_t **seqs, size_t *count);

/*  Write the view as the snapshot described by info (seq, ts_ms; count
    and digest are the view's), with history up to info->seq, on this
    thread (see the top for the steps). *cancel (may be NULL) is looked at
    between chunks: when it is set the write stops, its temp file is
    removed and the result is WALCAST_EBUSY. Returns 0 with *bytes the
    file's size, or WALCAST_ENOSPC / WALCAST_EIO / WALCAST_ENOMEM /
    WALCAST_EBUSY with why set (no file left). */
int wc_snapshot_write (int dirfd, const wc_snapshot_info_t *info,
                       const wc_epochs_t *history, const wc_store_frozen_t *view,
                       const atomic_bool *cancel, uint64_t *bytes,
                       char *why, size_t why_size);

/*  Check the snapshot file open on fd (read from its start) and build its
    state: *store_p (NULL: checked, then dropped) a new store, history
    (may be NULL) its history, info what it says. Returns 0,
    WALCAST_EPROTO (damaged or not a snapshot: why says what and where),
    WALCAST_EIO, WALCAST_ENOMEM. Nothing is returned on failure. */
int wc_snapshot_read_fd (int fd, wc_store_t **store_p, wc_epochs_t *history,
                         wc_snapshot_info_t *info, char *why, size_t why_size);

/*  The same for the snapshot file of seq in the directory. */
int wc_snapshot_load (int dirfd, uint64_t seq, wc_store_t **store_p,
                      wc_epochs_t *history, wc_snapshot_info_t *info,
                      char *why, size_t why_size);

/*  The trailer (CRC) of the snapshot file of seq: 0 and *crc, or
    WALCAST_ENOTFOUND, WALCAST_EPROTO (too short), WALCAST_EIO. */
int wc_snapshot_crc (int dirfd, const char *name, uint32_t *crc);


//  --------------------------------------------------------------------
//  The writer thread

typedef struct wc_snapshotter wc_snapshotter_t;

/*  How a write ended. */
typedef struct {
    int rc;                     /* 0, or why it failed (WALCAST_EBUSY: cancelled) */
    uint64_t seq;               /* the snapshot's seq */
    uint64_t bytes;             /* its size when written */
    double seconds;             /* how long the write took */
    char why [256];             /* the cause when it failed */
} wc_snapshot_result_t;

/*  Start the thread, writing into the directory dirfd (duplicated; dir
    names it in logs). NULL when out of memory, threads or descriptors. */
wc_snapshotter_t *wc_snapshotter_new (int dirfd, const char *dir);

/*  Cancel a write in progress, wait for it, stop the thread.
    *self_p becomes NULL; safe twice. */
void wc_snapshotter_destroy (wc_snapshotter_t **self_p);

/*  Write the view as the snapshot of info->seq (ts_ms) on the thread.
    The history is copied; the view must stay frozen until the result is
    taken. 0, WALCAST_EBUSY (a write runs or its result was not taken),
    WALCAST_ENOMEM. */
int wc_snapshotter_start (wc_snapshotter_t *self, const wc_snapshot_info_t *info,
                          const wc_epochs_t *history, const wc_store_frozen_t *view);

/*  True from a start until its result is taken. */
bool wc_snapshotter_busy (const wc_snapshotter_t *self);

/*  Ask the write in progress to stop soon (its result is WALCAST_EBUSY,
    unless it had finished). */
void wc_snapshotter_cancel (wc_snapshotter_t *self);

/*  The socket to poll: readable when a write has ended. */
void *wc_snapshotter_sock (wc_snapshotter_t *self);

/*  Take the notices waiting on the socket (so that it is readable again
    only when another write ends). */
void wc_snapshotter_drain (wc_snapshotter_t *self);

/*  When the write started last has ended: 1 and *result (the view may be
    thawed now); else 0 after waiting up to timeout_ms (0: not at all,
    -1: for ever). Does not touch the socket. */
int wc_snapshotter_take (wc_snapshotter_t *self, int timeout_ms,
                         wc_snapshot_result_t *result);

#endif
