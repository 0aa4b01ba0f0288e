/*  syncer.h - fsync off the loop thread.

    The node's loop makes a sync job after each flush (wc_wal_sync_job)
    and submits it here; a thread of its own (a czmq zactor) runs
    fdatasync/fsync on the job's descriptors and reports back the highest
    seq that is durable, so the loop goes on batching while the disk
    works. Jobs run in submission order. Jobs that queue up while a sync
    runs are combined into one round that syncs each distinct file once,
    so syncs group by themselves under load.

    The loop polls wc_syncer_sock (readable when results wait) and calls
    wc_syncer_result. A failed fdatasync or fsync is final: what is on disk
    is then unknown (PostgreSQL's rule), every later result says
    WALCAST_EIO, and the node must stop.

    When the log is cut or replaced below what was synced (a truncation,
    an install), the owner waits for every job and then rebases the
    durable seq (wc_syncer_rebase), since durable otherwise only grows.

    One owner thread calls everything here; only the actor's thread syncs.
*/
#ifndef WC_SYNCER_H_INCLUDED
#define WC_SYNCER_H_INCLUDED

#include <stdint.h>
#include <czmq.h>
#include "metrics.h"
#include "wal.h"

typedef struct wc_syncer wc_syncer_t;

/*  Start the syncer thread; NULL when out of memory or threads. */
wc_syncer_t *wc_syncer_new (void);

/*  Stop it: the sync in progress finishes, jobs never run are released
    (their descriptors closed, nothing synced). *self_p becomes NULL;
    safe twice. */
void wc_syncer_destroy (wc_syncer_t **self_p);

/*  Queue job. On success the syncer owns what the job held and *job is
    zeroed; on failure (WALCAST_ENOMEM, or WALCAST_EIO once a sync has
    failed) the caller still owns it. Never waits for a sync. */
int wc_syncer_submit (wc_syncer_t *self, wc_wal_sync_job_t *job);

/*  The socket to poll for results (readable when some wait). */
zsock_t *wc_syncer_sock (wc_syncer_t *self);

/*  Without blocking: 1 and *seq = the highest seq now durable (its job
    and every earlier one synced) when it went up since the last call, 0
    when nothing new, WALCAST_EIO when a sync failed (logged with errno
    and the file). */
int wc_syncer_result (wc_syncer_t *self, uint64_t *seq);

/*  Block until seq is durable (0), a sync failed (WALCAST_EIO) or
    timeout_ms passed (WALCAST_ETIMEOUT; -1 waits for ever). For a clean
    shutdown: submit a last job and wait for its seq before destroying.
    Does not touch what wc_syncer_result reports. */
int wc_syncer_wait (wc_syncer_t *self, uint64_t seq, int timeout_ms);

/*  The log was cut or replaced below what was synced: from now on seq is
    the durable seq (and the last one reported). Only when no job is
    queued or being synced (after wc_syncer_wait reached every seq
    submitted). */
void wc_syncer_rebase (wc_syncer_t *self, uint64_t seq);

/*  How long each fdatasync/fsync the thread ran took, in seconds, over
    wc_metrics_latency_bounds (a copy, taken under the shared lock). */
void wc_syncer_latency (wc_syncer_t *self, wc_metrics_tally_t *tally);

#endif
