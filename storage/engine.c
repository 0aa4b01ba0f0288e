/*  engine.c - the storage engine: one commit contract over the WAL, the
    store and the syncer, with the epoch history, truncation and
    snapshots (see engine.h).

    Staged and written entries wait in `pending` (seq, length, payload,
    back to back) until they are applied: at once after a commit under
    --fsync batch and never, when the syncer reports them durable under
    always. Applying decodes the payload again (the bytes the log holds
    are the only copy the engine keeps), puts it into the store and tells
    the node. A commit that writes only a prefix cuts `pending` at the
    same seq, so the log, `pending` and the store never disagree.

    Disk trouble comes in episodes: the first failed commit is logged with
    its cause, the ones after it only counted, and the first commit that
    works again says how long it lasted.

    The state is the newest valid snapshot (`base`, 0 without one) plus
    the log after it. At open, the snapshot is loaded first and the
    replay applies only what follows it, without a hole (a log that
    begins past base + 1 is a missing beginning); the epochs the replay
    sees are merged into the history file's, with the snapshot's, and
    fitted to where the log ends. The same pieces rebuild the state for
    a truncation: the newest snapshot at or below the cut, then the log.

    Changing files in an order that a crash cannot turn into a mix:
    - a new epoch is in the history file before any entry of it is in
      the log (it is written at stage, before the commit);
    - a truncation writes the shorter history, removes the snapshots
      past the cut, then cuts the log (a crash before the cut leaves the
      old entries, which the replay puts back into the history);
    - an install writes the marker "install" (seq and CRC of the new
      snapshot), renames the snapshot in (the switch), then removes the
      other snapshots and the log, writes the new history and removes the
      marker; an open that finds the marker and that snapshot finishes
      the job, one that finds only the marker drops it.

    Snapshots: a freeze of the store (store.h) at the applied seq, then
    the writer thread (snapshot.h) does the rest; the loop thaws the
    store when the writer is done (seen in wc_engine_on_snapshot, or in
    the next commit or tick: the store never stays frozen because a node
    did not ask), keeps the two newest files and removes the log
    segments they cover beyond retain_bytes. A
    truncation or an install first cancels a write in progress and waits
    for it; its result is kept for wc_engine_on_snapshot, whose socket
    stays readable until then.
*/
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "buffer.h"
#include "clock.h"
#include "cluster.h"
#include "engine.h"
#include "files.h"
#include "lock.h"
#include "log.h"
#include "scan.h"
#include "snapshot.h"
#include "syncer.h"
#include "vfs.h"

#define S_BATCH_SYNC_MS   10          /* --fsync batch: sync this long after a write */
#define S_CLOSE_WAIT_MS   10000       /* a clean stop waits this long for syncs */
#define S_STOP_WAIT_MS    10000       /* and for a snapshot write to stop */
#define S_PENDING_KEEP    (4u * 1024u * 1024u)    /* buffer kept when emptied */
#define S_PENDING_COMPACT (256u * 1024u)          /* applied bytes moved out */
#define S_SNAPSHOTS_KEPT  2           /* snapshot files kept */
#define S_SNAPSHOT_RETRY_MS 10000     /* a failed snapshot is retried this much later */
#define S_HISTORY_LOG_MS  60000       /* a history write failing again: logged this often */
#define S_PREPARE_SHARE   32          /* a freeze's memory is made ready in the last
                                         1/32 of the entries before it is due */
#define S_PREPARE_MIN     (256u << 10)    /* bytes faulted in a turn: at least */
#define S_PREPARE_MAX     (4u << 20)      /* and at most */
#define S_PREPARE_IDLE_MS 1000        /* dropped when nothing was applied this long */
#define S_HISTORY_RETRY_MS 1000       /* a history stall: the disk tried this often */
#define S_REBUILD_CHUNK   (4u * 1024u * 1024u)    /* log read at a time to rebuild */
#define S_DIVERGED_FILE   "DIVERGED"
#define S_INSTALL_FILE    "install"
#define S_DOWNLOAD_FILE   "snapshot.download.tmp"
#define S_MARKER_MAX      4096        /* bytes of a marker file we read */

/*  The head of one entry in `pending`; its payload follows. When the
    entry staged came with its key and value inside its payload (a
    replica stages the bytes it received, already read), the head keeps
    where they are, and applying it needs no second reading. */
typedef struct {
    uint64_t seq;
    uint64_t len;
    uint64_t epoch;
    uint64_t ts_ms;
    uint32_t key_at, key_len;       //  offsets into the payload
    uint32_t value_at, value_len;
    uint8_t  op;                    //  0: not kept, read the payload
} s_head_t;

//  The head of a staged entry: where its key and value are, when they
//  lie in its payload.
static s_head_t
s_head_of (const wc_entry_t *entry, const void *payload, size_t len)
{
    s_head_t head = { .seq = entry->seq, .len = len };
    const uint8_t *start = (const uint8_t *) payload, *end = start + len;
    const wc_bytes_t *k = &entry->key, *v = &entry->value;
    bool inside = k->ptr >= start && k->ptr + k->len <= end
               && (v->len == 0 || (v->ptr >= start && v->ptr + v->len <= end));
    if (inside) {
        head.epoch = entry->epoch;
        head.ts_ms = entry->ts_ms;
        head.key_at = (uint32_t) (k->ptr - start);
        head.key_len = k->len;
        head.value_at = v->len ? (uint32_t) (v->ptr - start) : 0;
        head.value_len = v->len;
        head.op = entry->op;
    }
    return head;
}

struct wc_engine {
    char              *dir;         /* the data directory, for logs */
    int                dirfd;       /* the data directory, for files */
    uint64_t           history_failures;    /* writes of the history failed in a row */
    char               history_why [256];   /* why the last of them failed */
    int64_t            history_logged_ms;   /* when the last of them was logged */
    wc_fsync_t         fsync;       /* when entries are synced and applied */
    size_t             segment_bytes;   /* of the WAL */
    wc_lock_t         *lock;        /* the directory is ours */
    wc_wal_t          *wal;         /* the log */
    wc_store_t        *store;       /* the state */
    wc_syncer_t       *syncer;      /* fsync off the loop thread */
    msgpack_unpacked   unpacked;    /* decoding entries to apply */
    msgpack_sbuffer    pending;     /* staged and written, not applied */
    size_t             pending_at;  /* first unapplied byte of pending */
    uint64_t           staged;      /* last seq staged (written or not) */
    uint64_t           written;     /* last seq in the log's files */
    uint64_t           requested;   /* last seq a sync was asked for */
    uint64_t           here_seq;    /* synced on this thread (fallback) ... */
    uint64_t           here_after;  /* ... durable once the syncer's jobs up to
                                       this seq are done too */
    uint64_t           durable;     /* last seq synced */
    uint64_t           applied;     /* last seq in the state */
    uint64_t           applied_ts;  /* primary clock of the last applied entry */
    int64_t            sync_due_ms; /* batch: when the next sync is due; 0 none */
    bool               fatal;       /* a sync failed: nothing more is written */
    bool               closed;      /* wc_engine_close ran */
    wc_engine_apply_fn *apply_fn;   /* the node, told of each applied entry */
    void              *apply_arg;
    wc_engine_info_t   info;        /* what the open found */
    bool               stalled;     /* commits, or a new epoch's history, fail */
    bool               stall_history;   /* it is the history's (s_stall_history) */
    int64_t            history_retry_ms;    /* when the tick tries the history again */
    int64_t            stall_ms;    /* since when */
    uint64_t           stall_fails; /* commits or stages failed in this episode */
    char               stall_why [256];

    wc_epochs_t       *epochs;      /* the history, as the file says */
    wc_epochs_t       *seen;        /* at open: the epochs the replay saw */
    bool               hole;        /* at open: the log does not follow base */
    uint64_t           base;        /* the snapshot the state was built from */
    uint64_t          *snaps;       /* snapshot files, ascending seq */
    size_t             nsnaps;      /* how many */
    size_t             snaps_cap;   /* allocated entries in snaps */
    uint64_t           snapshot_every;  /* entries between snapshots; 0 none */
    uint64_t           retain_bytes;    /* log kept after a snapshot */
    wc_snapshotter_t  *writer;      /* the snapshot thread */
    uint64_t           snapshot_phase;  /* snapshots at seqs s: (s + phase) % every == 0 */
    uint64_t           snap_from;   /* applied seq of the last snapshot begun */
    uint64_t           prep_seq;    /* applied when the freeze's memory was last
                                       readied (or dropped: not again until it moves) */
    int64_t            prep_ms;     /* when; 0: none is held */
    uint64_t           maybe_seq;   /* applied at the last look for a snapshot */
    int64_t            snap_retry_ms;   /* not before this after a failure */
    bool               snap_report; /* a result waits for wc_engine_on_snapshot */
    wc_snapshot_result_t snap_result;   /* that result */
    int                read_fd;     /* snapshot file open for reading; -1 */
    uint64_t           read_seq;    /* its seq */
    uint64_t           cluster;     /* the cluster id (cluster.h); 0: none yet */
    bool               restored;    /* opened on a snapshot alone, no id: its
                                       first epoch begins a new cluster */
    bool               diverged;    /* the marker is there */
    char               diverged_why [512];  /* its text */
    char              *temp_path;   /* where a download goes */
};


static int s_fatal (wc_engine_t *self);
static int s_request_sync (wc_engine_t *self);
static int s_snapshot_stop (wc_engine_t *self);
static void s_snapshot_maybe (wc_engine_t *self);


//  --------------------------------------------------------------------
//  Applying entries

//  Read a WAL payload: the fast scan for the canonical form every node
//  writes, the codec for anything else. 0 or the codec's error.
static int
s_entry_read (wc_engine_t *self, const uint8_t *payload, size_t len, wc_entry_t *entry)
{
    size_t used;
    if (wc_scan_entry (payload, len, entry, &used) == 0 && used == len)
        return 0;
    return wc_entry_decode (payload, len, &self->unpacked, entry);
}

//  Put one decoded entry into a store. Returns 0, WALCAST_ENOMEM.
static int
s_put_entry (wc_store_t *store, const wc_entry_t *entry)
{
    return entry->op == WC_OP_PUT
         ? wc_store_put (store, entry->key.ptr, entry->key.len,
                         entry->value.ptr, entry->value.len)
         : wc_store_del (store, entry->key.ptr, entry->key.len);
}

//  Put one decoded entry into the state and note it. 0, WALCAST_ENOMEM.
static int
s_store_apply (wc_engine_t *self, const wc_entry_t *entry)
{
    int rc = s_put_entry (self->store, entry);
    if (rc)
        return rc;
    self->applied = entry->seq;
    self->applied_ts = entry->ts_ms;
    return 0;
}

//  WAL replay: each record must be the entry of its seq. Its epoch goes
//  into `seen`; it is applied when it follows the state (the snapshot's
//  entries are already in it, and nothing is applied past a hole).
static int
s_replay (void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    wc_engine_t *self = (wc_engine_t *) arg;
    wc_entry_t entry;
    int rc = s_entry_read (self, payload, len, &entry);
    if (rc == 0 && entry.seq != seq)
        rc = WALCAST_EPROTO;
    if (rc)
        return WALCAST_EPROTO;          //  not an entry: damage, for the WAL
    if (entry.epoch > wc_epochs_latest (self->seen)
    &&  wc_epochs_add (self->seen, entry.epoch, seq) == WALCAST_ENOMEM)
        return WALCAST_ENOMEM;
    if (seq <= self->base || self->hole)
        return 0;
    if (seq != self->applied + 1) {
        self->hole = true;
        return 0;
    }
    rc = s_store_apply (self, &entry);
    if (rc)
        wc_log_error ("wal: cannot apply recovered entry %llu: %s",
                      (unsigned long long) seq, walcast_strerror (rc));
    return rc;
}

//  A pending entry read ahead of its turn to be applied.
typedef struct {
    wc_entry_t  entry;
    uint64_t    seq;
    const char *payload;
    uint32_t    len;
    size_t      next_at;        //  where the pending entry after it starts
    int         rc;             //  of reading it
} s_ahead_t;

#define S_AHEAD 4               //  entries read ahead (their slots prefetched)

//  Read the pending entry at *at (when it is within limit) into ahead,
//  and have the store start loading where its key goes: applying a run
//  of entries then overlaps their cache misses instead of paying them
//  one after the other. False at the end or past limit.
static bool
s_read_ahead (wc_engine_t *self, size_t *at, uint64_t limit, s_ahead_t *ahead)
{
    if (*at >= self->pending.size)
        return false;
    s_head_t head;
    memcpy (&head, self->pending.data + *at, sizeof head);
    if (head.seq > limit)
        return false;
    ahead->seq = head.seq;
    ahead->payload = self->pending.data + *at + sizeof head;
    ahead->len = (uint32_t) head.len;
    if (head.op) {
        const uint8_t *p = (const uint8_t *) ahead->payload;
        ahead->entry = (wc_entry_t) {
            .seq = head.seq, .epoch = head.epoch, .ts_ms = head.ts_ms, .op = head.op,
            .key = { p + head.key_at, head.key_len },
            .value = { head.value_len ? p + head.value_at : NULL, head.value_len }
        };
        ahead->rc = 0;
    }
    else
        ahead->rc = s_entry_read (self, (const uint8_t *) ahead->payload, head.len,
                                  &ahead->entry);
    if (ahead->rc == 0)
        wc_store_prefetch (self->store, ahead->entry.key.ptr, ahead->entry.key.len);
    *at += sizeof head + head.len;
    ahead->next_at = *at;
    return true;
}

//  Apply pending entries up to seq limit, in order. Returns 0 or
//  WALCAST_ENOMEM (the entry stays pending; the node must stop).
static int
s_apply_upto (wc_engine_t *self, uint64_t limit)
{
    s_ahead_t ring [S_AHEAD];
    size_t read_at = self->pending_at, first = 0, held = 0;
    while (held < S_AHEAD && s_read_ahead (self, &read_at, limit, &ring [held]))
        held++;
    while (held > 0) {
        s_ahead_t *a = &ring [first];
        int rc = a->rc ? a->rc : s_store_apply (self, &a->entry);
        if (rc) {
            wc_log_error ("cannot apply entry %llu: %s", (unsigned long long) a->seq,
                          walcast_strerror (rc));
            self->fatal = true;         //  the log holds it, the state cannot
            return WALCAST_ENOMEM;
        }
        if (self->apply_fn)
            self->apply_fn (self->apply_arg, &a->entry, a->payload, a->len);
        self->pending_at = a->next_at;
        if (s_read_ahead (self, &read_at, limit, a))
            first = (first + 1) % S_AHEAD;      //  a is now the newest
        else {
            first = (first + 1) % S_AHEAD;
            held--;
        }
    }
    if (self->pending_at == self->pending.size) {
        self->pending_at = 0;
        wc_buffer_trim (&self->pending, S_PENDING_KEEP);
    }
    else
    if (self->pending_at > S_PENDING_COMPACT && self->pending_at > self->pending.size / 2) {
        //  Under steady load a tail always waits for its sync: move it to
        //  the front rather than let the applied part grow for ever.
        memmove (self->pending.data, self->pending.data + self->pending_at,
                 self->pending.size - self->pending_at);
        self->pending.size -= self->pending_at;
        self->pending_at = 0;
    }
    return 0;
}

//  Forget pending entries past seq (a commit wrote only up to it).
static void
s_cut_pending (wc_engine_t *self, uint64_t seq)
{
    size_t at = self->pending_at;
    while (at < self->pending.size) {
        s_head_t head;
        memcpy (&head, self->pending.data + at, sizeof head);
        if (head.seq > seq)
            break;
        at += sizeof head + head.len;
    }
    self->pending.size = at;
}


//  --------------------------------------------------------------------
//  Snapshot files

//  Note that the snapshot file of seq exists. 0 or WALCAST_ENOMEM.
static int
s_snaps_insert (wc_engine_t *self, uint64_t seq)
{
    size_t i = 0;
    while (i < self->nsnaps && self->snaps [i] < seq)
        i++;
    if (i < self->nsnaps && self->snaps [i] == seq)
        return 0;
    if (self->nsnaps == self->snaps_cap) {
        size_t cap = self->snaps_cap ? self->snaps_cap * 2 : 8;
        uint64_t *grown = (uint64_t *) realloc (self->snaps, cap * sizeof *grown);
        if (!grown)
            return WALCAST_ENOMEM;
        self->snaps = grown;
        self->snaps_cap = cap;
    }
    memmove (self->snaps + i + 1, self->snaps + i, (self->nsnaps - i) * sizeof *self->snaps);
    self->snaps [i] = seq;
    self->nsnaps++;
    return 0;
}

//  Forget the snapshot file of seq (and the descriptor reading it).
static void
s_snaps_forget (wc_engine_t *self, uint64_t seq)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->nsnaps; i++)
        if (self->snaps [i] != seq)
            self->snaps [kept++] = self->snaps [i];
    self->nsnaps = kept;
    if (self->read_fd >= 0 && self->read_seq == seq) {
        wc_vfs_close (self->read_fd);
        self->read_fd = -1;
    }
}

//  Remove the snapshot file of seq (no directory sync). 0 or WALCAST_EIO
//  (logged).
static int
s_snapshot_remove (wc_engine_t *self, uint64_t seq)
{
    char name [WC_SNAPSHOT_NAME_SIZE], why [256];
    wc_snapshot_name (name, seq);
    s_snaps_forget (self, seq);
    if (wc_files_remove (self->dirfd, name, false, why, sizeof why) != 0) {
        wc_log_error ("snapshot %s: %s", self->dir, why);
        return WALCAST_EIO;
    }
    return 0;
}

//  Remove the snapshot files on disk whose seq is above seq or (when
//  except is not 0) is not except, then sync the directory. 0 or
//  WALCAST_EIO / WALCAST_ENOMEM (logged).
static int
s_snapshots_drop (wc_engine_t *self, uint64_t above, uint64_t except)
{
    uint64_t *seqs;
    size_t count;
    int rc = wc_snapshot_list (self->dirfd, &seqs, &count);
    if (rc != 0) {
        wc_log_error ("snapshot %s: cannot list the directory", self->dir);
        return rc;
    }
    bool removed = false;
    for (size_t i = count; i-- > 0 && rc == 0; )
        if (seqs [i] > above || (except && seqs [i] != except)) {
            rc = s_snapshot_remove (self, seqs [i]);
            removed = true;
        }
    free (seqs);
    if (rc == 0 && removed && wc_vfs_fsync (self->dirfd) != 0) {
        wc_log_error ("snapshot %s: cannot sync the directory: %s", self->dir,
                      strerror (errno));
        rc = WALCAST_EIO;
    }
    return rc;
}

//  A damaged snapshot file: rename it name.damaged (.1, .2 ... when
//  taken) so it is never read again nor deleted, and forget it.
static void
s_snapshot_set_aside (wc_engine_t *self, uint64_t seq)
{
    char name [WC_SNAPSHOT_NAME_SIZE], aside [WC_SNAPSHOT_NAME_SIZE + 24];
    wc_snapshot_name (name, seq);
    s_snaps_forget (self, seq);
    for (int k = 0; k < 1000; k++) {
        snprintf (aside, sizeof aside, k ? "%s.damaged.%d" : "%s.damaged", name, k);
        struct stat st;
        if (fstatat (self->dirfd, aside, &st, AT_SYMLINK_NOFOLLOW) == 0)
            continue;
        if (wc_vfs_renameat (self->dirfd, name, self->dirfd, aside) != 0
        ||  wc_vfs_fsync (self->dirfd) != 0)
            wc_log_error ("snapshot %s: cannot set %s aside: %s", self->dir, name,
                          strerror (errno));
        return;
    }
}

//  Load the newest valid snapshot of the directory into the state (a
//  damaged one is set aside, the one before it tried); history gets its
//  history. No snapshot: an empty state. 0 or an error with why set.
static int
s_load_snapshot (wc_engine_t *self, wc_epochs_t *history, char *why, size_t why_size)
{
    uint64_t *seqs;
    size_t count;
    int rc = wc_snapshot_list (self->dirfd, &seqs, &count);
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = s_snaps_insert (self, seqs [i]);
    for (size_t i = count; rc == 0 && i-- > 0 && !self->store; ) {
        wc_snapshot_info_t info;
        char inner [256];
        rc = wc_snapshot_load (self->dirfd, seqs [i], &self->store, history, &info,
                               inner, sizeof inner);
        if (rc == 0) {
            self->base = self->applied = info.seq;
            self->applied_ts = info.ts_ms;
            self->info.snapshot_seq = info.seq;
            wc_log_info ("snapshot %s: loaded seq %llu (%llu keys)", self->dir,
                         (unsigned long long) info.seq, (unsigned long long) info.count);
        }
        else
        if (rc == WALCAST_EPROTO) {
            wc_log_warn ("snapshot %s: %s: damaged, set aside as *.damaged; trying the "
                         "one before it", self->dir, inner);
            s_snapshot_set_aside (self, seqs [i]);
            self->info.snapshots_damaged++;
            rc = 0;
        }
        else
            snprintf (why, why_size, "cannot load a snapshot in %s: %s", self->dir, inner);
    }
    free (seqs);
    if (rc == 0 && !self->store && !(self->store = wc_store_new ()))
        rc = WALCAST_ENOMEM;
    return rc;
}


//  --------------------------------------------------------------------
//  The epoch history and the markers

//  The history could be written: a stall it began (s_stall_history) is
//  over. (A commit's stall is ended by a commit that writes.)
static void
s_history_unstall (wc_engine_t *self)
{
    if (!self->stalled || !self->stall_history)
        return;
    self->stalled = false;
    self->stall_history = false;
    self->stall_fails = 0;
}

//  Replace the history with history (persisted first). 0 or an error
//  (logged; the history unchanged).
static int
s_history_replace (wc_engine_t *self, const wc_epochs_t *history)
{
    char why [256], text [256];
    int rc = wc_epochs_save (history, self->dirfd, why, sizeof why);
    if (rc == 0)
        rc = wc_epochs_copy (self->epochs, history);
    if (rc == 0 && self->history_failures > 0) {
        wc_log_info ("epochs %s: the epoch history is written again, after %llu failed "
                     "attempts", self->dir, (unsigned long long) self->history_failures);
        self->history_failures = 0;
    }
    if (rc == 0) {
        s_history_unstall (self);
        return 0;
    }
    snprintf (self->history_why, sizeof self->history_why, "%s",
              rc == WALCAST_ENOMEM ? "out of memory" : why);
    //  Retried every second while the disk is full: said once, then at
    //  most every S_HISTORY_LOG_MS with the count
    int64_t now = wc_clock_ms ();
    if (self->history_failures++ == 0 || now - self->history_logged_ms >= S_HISTORY_LOG_MS) {
        wc_log_error ("epochs %s: cannot write the epoch history (%s): %s (%llu failed "
                      "attempts in a row)", self->dir,
                      wc_epochs_text (history, text, sizeof text),
                      rc == WALCAST_ENOMEM ? "out of memory" : why,
                      (unsigned long long) self->history_failures);
        self->history_logged_ms = now;
    }
    return rc;
}

//  Add (epoch, first_seq) to the history, persisted. 0 or an error.
static int
s_history_add (wc_engine_t *self, uint64_t epoch, uint64_t first_seq)
{
    wc_epochs_t *next = wc_epochs_new ();
    int rc = next ? wc_epochs_copy (next, self->epochs) : WALCAST_ENOMEM;
    if (rc == 0)
        rc = wc_epochs_add (next, epoch, first_seq);
    if (rc == 0)
        rc = s_history_replace (self, next);
    if (rc == 0)
        wc_log_info ("epochs %s: epoch %llu begins at seq %llu", self->dir,
                     (unsigned long long) epoch, (unsigned long long) first_seq);
    wc_epochs_destroy (&next);
    return rc;
}

//  At open: the history file, merged with what the snapshot and the log
//  say, fitted to where the log ends; written back when that changed it.
//  0 or an error with why set.
static int
s_open_history (wc_engine_t *self, const wc_epochs_t *from_snapshot, char *why,
                size_t why_size)
{
    char inner [256];
    int rc = wc_epochs_load (self->epochs, self->dirfd, inner, sizeof inner);
    bool damaged = rc == WALCAST_EPROTO;
    if (damaged)
        wc_log_warn ("epochs %s: %s; rebuilding the history from the snapshot and the "
                     "log", self->dir, inner);
    if (rc != 0 && rc != WALCAST_ENOTFOUND && !damaged) {
        snprintf (why, why_size, "cannot read the epoch history in %s: %s", self->dir, inner);
        return rc;
    }
    //  A snapshot alone, with no history file and no cluster id: a
    //  restore (OPERATIONS.md), or a copy. Not the original cluster: the
    //  snapshot does not say which cluster it was of
    self->restored = rc == WALCAST_ENOTFOUND && self->cluster == 0 && self->base > 0
                  && self->applied == self->base;
    if (self->restored)
        wc_log_info ("epochs %s: the state comes from snapshot %llu alone (a restore): "
                     "its history is the snapshot's, and its first epoch begins a new "
                     "cluster unless it follows a node of one", self->dir,
                     (unsigned long long) self->base);
    else
    if (rc == WALCAST_ENOTFOUND && (self->applied > 0 || self->base > 0))
        wc_log_warn ("epochs %s: no history file (%s) although the log holds entries; "
                     "rebuilding it from the snapshot and the log", self->dir,
                     WC_EPOCHS_FILE);
    wc_epochs_t *fitted = wc_epochs_new ();
    rc = fitted ? wc_epochs_copy (fitted, self->epochs) : WALCAST_ENOMEM;
    if (rc == 0)
        rc = wc_epochs_merge (fitted, from_snapshot);
    if (rc == 0)
        rc = wc_epochs_merge (fitted, self->seen);
    if (rc == 0)
        wc_epochs_reconcile (fitted, self->applied);
    if (rc == 0 && (damaged || !wc_epochs_equal (fitted, self->epochs)))
        rc = s_history_replace (self, fitted);
    wc_epochs_destroy (&fitted);
    if (rc != 0)
        snprintf (why, why_size, "cannot write the epoch history in %s (see above)",
                  self->dir);
    return rc;
}

//  At open: the diverged marker, when there is one.
static int
s_read_diverged (wc_engine_t *self, char *why, size_t why_size)
{
    char *text;
    size_t len;
    int rc = wc_files_read (self->dirfd, S_DIVERGED_FILE, S_MARKER_MAX, &text, &len,
                            why, why_size);
    if (rc == WALCAST_ENOTFOUND)
        return 0;
    if (rc == WALCAST_ETOOBIG) {
        text = strdup ("(the marker file is too long to show)");
        rc = text ? 0 : WALCAST_ENOMEM;
    }
    if (rc != 0)
        return rc;
    text [strcspn (text, "\n")] = '\0';
    snprintf (self->diverged_why, sizeof self->diverged_why, "%s", text);
    self->diverged = true;
    free (text);
    wc_log_warn ("storage %s: DIVERGED: %s", self->dir, self->diverged_why);
    return 0;
}

//  At open: the cluster id. A damaged file is no reason not to start:
//  the node goes on without an id (a replica takes its upstream's again).
static int
s_read_cluster (wc_engine_t *self, char *why, size_t why_size)
{
    char inner [256] = "";
    int rc = wc_cluster_load (self->dirfd, &self->cluster, inner, sizeof inner);
    if (rc == WALCAST_EPROTO) {
        wc_log_warn ("storage %s: %s; going on without a cluster id (a replica takes "
                     "its upstream's again)", self->dir, inner);
        return 0;
    }
    if (rc != 0)
        snprintf (why, why_size, "cannot read %s/%s: %s", self->dir, WC_CLUSTER_FILE,
                  inner);
    return rc;
}

//  At open: an install marker. Sets *seq to the snapshot of an install
//  that got as far as its switch (its file holds the marker's CRC), else
//  removes the marker (the old state stands). 0 or an error.
static int
s_install_pending (wc_engine_t *self, uint64_t *seq, char *why, size_t why_size)
{
    char *text;
    size_t len;
    *seq = 0;
    int rc = wc_files_read (self->dirfd, S_INSTALL_FILE, S_MARKER_MAX, &text, &len,
                            why, why_size);
    if (rc == WALCAST_ENOTFOUND)
        return 0;
    if (rc != 0 && rc != WALCAST_ETOOBIG)
        return rc;                      //  cannot tell: the open fails
    unsigned long long marked = 0;
    unsigned int crc = 0, found = 0;
    char name [WC_SNAPSHOT_NAME_SIZE];
    if (rc == 0 && sscanf (text, "%llu %x", &marked, &crc) == 2 && marked > 0) {
        rc = wc_snapshot_crc (self->dirfd, wc_snapshot_name (name, marked), &found);
        if (rc == WALCAST_EIO) {
            snprintf (why, why_size, "cannot read %s to finish an install", name);
            free (text);
            return rc;
        }
        if (rc == 0 && found == crc)
            *seq = marked;
    }
    free (text);
    if (*seq) {
        wc_log_warn ("storage %s: finishing the install of snapshot %llu that a restart "
                     "interrupted", self->dir, marked);
        return 0;
    }
    wc_log_warn ("storage %s: dropping the marker of an install that did not get to "
                 "its switch; the state before it stands", self->dir);
    return wc_files_remove (self->dirfd, S_INSTALL_FILE, true, why, why_size);
}

//  The last steps of an install of snapshot seq with history (from its
//  switch on): every other snapshot and the whole log go, the history
//  becomes the snapshot's, the marker goes. 0 or an error (logged).
static int
s_install_finish (wc_engine_t *self, uint64_t seq, const wc_epochs_t *history)
{
    char why [256];
    int rc = s_snapshots_drop (self, UINT64_MAX, seq);
    if (rc == 0)
        rc = self->wal ? wc_wal_truncate (self->wal, 0) : wc_wal_remove_all (self->dir);
    if (rc == 0)
        rc = s_history_replace (self, history);
    if (rc == 0 && (rc = wc_files_remove (self->dirfd, S_INSTALL_FILE, true, why,
                                          sizeof why)) != 0)
        wc_log_error ("storage %s: %s", self->dir, why);
    return rc;
}


//  --------------------------------------------------------------------
//  Opening and closing

//  Say what the open found to be damaged, once, in info.
static void
s_check_damage (wc_engine_t *self)
{
    uint64_t first = self->info.wal.first_seq;
    self->info.missing_start = first > self->base + 1;
}

//  The log ends before the snapshot (it lost a tail the snapshot has):
//  everything it holds is in the snapshot, and it cannot continue it, so
//  it is emptied. 0 or WALCAST_EIO.
static int
s_settle_log (wc_engine_t *self)
{
    uint64_t last = wc_wal_last_seq (self->wal);
    if (last == 0 || last >= self->base || wc_wal_damaged (self->wal))
        return 0;
    wc_log_warn ("wal %s: the log ends at seq %llu, before the snapshot of seq %llu: "
                 "emptying it (the snapshot holds all of it)", self->dir,
                 (unsigned long long) last, (unsigned long long) self->base);
    return wc_wal_truncate (self->wal, 0);
}

//  Lock, directory, threads. 0 or -1 (why set).
static int
s_open_parts (wc_engine_t *self, const wc_engine_config_t *cfg, int *err,
              char *why, size_t why_size)
{
    char held [1200] = "";
    self->lock = wc_lock_new (cfg->dir, cfg->owner, err, held, sizeof held);
    if (!self->lock) {
        if (*err == WALCAST_EBUSY)
            snprintf (why, why_size, "the data directory %s is in use: %s; stop that "
                      "process, or give this node another --data", cfg->dir, held);
        else
            snprintf (why, why_size, "cannot use the data directory %s: %s",
                      cfg->dir, held);
        return -1;
    }
    self->dirfd = wc_vfs_open (cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dirfd < 0) {
        *err = WALCAST_EIO;
        snprintf (why, why_size, "cannot open the data directory %s: %s", cfg->dir,
                  strerror (errno));
        return -1;
    }
    self->syncer = wc_syncer_new ();
    self->writer = wc_snapshotter_new (self->dirfd, cfg->dir);
    self->epochs = wc_epochs_new ();
    self->seen = wc_epochs_new ();
    if (!self->syncer || !self->writer || !self->epochs || !self->seen) {
        *err = WALCAST_ENOMEM;
        snprintf (why, why_size, "out of memory (or threads, or descriptors)");
        return -1;
    }
    return 0;
}

//  The snapshot (finishing an interrupted install first), the log after
//  it, the history. 0 or -1 (*err and why set).
static int
s_open_state (wc_engine_t *self, int *err, char *why, size_t why_size)
{
    uint64_t install = 0;
    wc_epochs_t *history = wc_epochs_new ();
    *err = history ? s_install_pending (self, &install, why, why_size) : WALCAST_ENOMEM;
    if (*err == 0 && install)
        *err = s_snapshots_drop (self, UINT64_MAX, install);
    if (*err == 0)
        *err = wc_files_remove_temps (self->dirfd, self->dir);
    if (*err == 0)
        *err = s_read_diverged (self, why, why_size);
    if (*err == 0)
        *err = s_read_cluster (self, why, why_size);
    if (*err == 0)
        *err = s_load_snapshot (self, history, why, why_size);
    if (*err == 0 && install) {
        *err = s_install_finish (self, install, history);
        self->info.install_finished = *err == 0;
    }
    if (*err == 0) {
        self->wal = wc_wal_open (self->dir, self->segment_bytes, s_replay, self,
                                 &self->info.wal, err);
        //  (an I/O error at open is a read: EIO's text speaks of writes)
        if (!self->wal)
            snprintf (why, why_size, "cannot open the log in %s: %s (see above)",
                      self->dir, *err == WALCAST_EIO ? "it could not be read"
                                                     : walcast_strerror (*err));
    }
    if (*err == 0)
        *err = s_settle_log (self);
    if (*err == 0)
        *err = s_open_history (self, history, why, why_size);
    wc_epochs_destroy (&history);
    wc_epochs_destroy (&self->seen);
    if (*err != 0 && !why [0])
        snprintf (why, why_size, "cannot open the data directory %s: %s (see above)",
                  self->dir, walcast_strerror (*err));
    return *err ? -1 : 0;
}

//  Take the configuration in. Returns false when out of memory.
static bool
s_configure (wc_engine_t *self, const wc_engine_config_t *cfg)
{
    self->dirfd = self->read_fd = -1;
    self->fsync = cfg->fsync;
    self->segment_bytes = cfg->segment_bytes;
    self->snapshot_every = cfg->snapshot_every;
    self->snapshot_phase = cfg->snapshot_every ? cfg->snapshot_phase % cfg->snapshot_every : 0;
    self->retain_bytes = cfg->retain_bytes;
    msgpack_unpacked_init (&self->unpacked);
    msgpack_sbuffer_init (&self->pending);
    self->dir = strdup (cfg->dir);
    self->temp_path = self->dir ? malloc (strlen (cfg->dir) + sizeof S_DOWNLOAD_FILE + 1)
                                : NULL;
    if (self->temp_path)
        sprintf (self->temp_path, "%s/%s", cfg->dir, S_DOWNLOAD_FILE);
    return self->temp_path != NULL;
}

wc_engine_t *
wc_engine_open (const wc_engine_config_t *cfg, wc_engine_info_t *info,
                int *err, char *why, size_t why_size)
{
    int64_t started = wc_clock_us ();
    wc_engine_t *self = (wc_engine_t *) calloc (1, sizeof *self);
    *err = WALCAST_ENOMEM;
    snprintf (why, why_size, "out of memory");
    if (!self)
        return NULL;
    if (!s_configure (self, cfg)) {
        wc_engine_destroy (&self);
        return NULL;
    }
    why [0] = '\0';
    if (s_open_parts (self, cfg, err, why, why_size) != 0
    ||  s_open_state (self, err, why, why_size) != 0) {
        wc_engine_destroy (&self);
        return NULL;
    }
    self->staged = self->written = self->durable = self->requested = self->applied;
    self->snap_from = self->nsnaps ? self->snaps [self->nsnaps - 1] : 0;
    s_check_damage (self);
    self->info.seconds = (double) (wc_clock_us () - started) / 1e6;
    if (info)
        *info = self->info;
    *err = 0;
    return self;
}

//  Wait (bounded) for the syncs asked for so far to finish. Returns 0
//  when durable has reached requested, else an error (EIO: a sync failed;
//  ETIMEOUT: the disk is still at it).
static int
s_drain_syncs (wc_engine_t *self, int timeout_ms)
{
    if (self->fatal)
        return WALCAST_EIO;
    if (self->durable >= self->requested)
        return 0;
    int rc = wc_syncer_wait (self->syncer, self->requested, timeout_ms);
    if (rc == 0)
        rc = wc_engine_on_sync (self);
    if (rc == 0 && self->durable < self->requested)
        rc = WALCAST_ETIMEOUT;
    return self->fatal ? WALCAST_EIO : rc;
}

int
wc_engine_close (wc_engine_t *self)
{
    if (self->closed)
        return self->fatal ? WALCAST_EIO : 0;
    self->closed = true;
    if (!self->wal || self->fatal)
        return WALCAST_EIO;
    s_snapshot_stop (self);
    int rc = wc_engine_commit (self);
    if (!self->fatal && s_request_sync (self) != 0)
        return WALCAST_EIO;
    int synced = s_drain_syncs (self, S_CLOSE_WAIT_MS);
    if (synced != 0) {
        //  Not durable: say so, apply nothing more (nothing is acknowledged)
        wc_log_error ("wal %s: the log could not be synced at stop (%s); what "
                      "was not acknowledged may be lost", self->dir,
                      walcast_strerror (synced));
        return synced;
    }
    wc_syncer_destroy (&self->syncer);
    if (wc_wal_sync (self->wal) != 0)
        return s_fatal (self);
    self->durable = self->written;
    if (self->fsync == WC_FSYNC_ALWAYS && !rc)
        rc = s_apply_upto (self, self->durable);
    return rc;
}

void
wc_engine_destroy (wc_engine_t **self_p)
{
    wc_engine_t *self = *self_p;
    if (!self)
        return;
    self->apply_fn = NULL;              //  the node may be gone already
    if (self->wal)
        wc_engine_close (self);
    wc_snapshotter_destroy (&self->writer);     //  before the store it reads
    wc_syncer_destroy (&self->syncer);
    wc_wal_destroy (&self->wal);
    wc_store_destroy (&self->store);
    wc_epochs_destroy (&self->epochs);
    wc_epochs_destroy (&self->seen);
    if (self->read_fd >= 0)
        wc_vfs_close (self->read_fd);
    if (self->dirfd >= 0)
        wc_vfs_close (self->dirfd);
    wc_lock_destroy (&self->lock);
    msgpack_unpacked_destroy (&self->unpacked);
    msgpack_sbuffer_destroy (&self->pending);
    free (self->snaps);
    free (self->temp_path);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

void
wc_engine_set_apply (wc_engine_t *self, wc_engine_apply_fn *fn, void *arg)
{
    self->apply_fn = fn;
    self->apply_arg = arg;
}


//  --------------------------------------------------------------------
//  Damage found at the open

bool
wc_engine_damage (const wc_engine_t *self, char *text, size_t size)
{
    const wc_wal_info_t *wal = &self->info.wal;
    if (self->info.missing_start) {
        char from [96] = "seq 1";
        if (self->base)
            snprintf (from, sizeof from, "the snapshot of seq %llu",
                      (unsigned long long) self->base);
        snprintf (text, size, "the log in %s begins at seq %llu, and %s is the state it "
                  "should follow: seqs %llu..%llu are missing (a segment file was "
                  "deleted or lost)%s", self->dir, (unsigned long long) wal->first_seq,
                  from, (unsigned long long) self->base + 1,
                  (unsigned long long) wal->first_seq - 1,
                  wal->damaged ? ", and it is damaged further on" : "");
        return true;
    }
    if (wal->damaged) {
        char after [96] = "";
        if (wal->damage_valid_from)
            snprintf (after, sizeof after, "; valid records %llu..%llu follow it",
                      (unsigned long long) wal->damage_valid_from,
                      (unsigned long long) wal->damage_valid_to);
        snprintf (text, size, "the log in %s is damaged (%s): it cannot be replayed "
                  "past seq %llu%s", self->dir, wal->damage_reason,
                  (unsigned long long) wal->damage_seq - 1, after);
        return true;
    }
    return false;
}

//  The replay stopped before a hole or damage, so the state is the
//  snapshot's (or empty) plus the log up to there, which is what remains
//  after the set-aside; a log left ending before the snapshot is
//  emptied, and the history fitted to the new end.
int
wc_engine_set_aside (wc_engine_t *self)
{
    const wc_wal_info_t *wal = &self->info.wal;
    uint64_t from = self->info.missing_start ? wal->first_seq
                  : wal->damaged ? wal->damage_seq : 0;
    if (from == 0)
        return 0;
    int rc = wc_wal_set_aside (self->wal, from);
    if (rc) {
        wc_log_error ("wal %s: cannot set the damaged part aside: %s", self->dir,
                      wc_wal_last_error (self->wal));
        return rc;
    }
    rc = s_settle_log (self);
    wc_epochs_t *fitted = wc_epochs_new ();
    if (rc == 0)
        rc = fitted ? wc_epochs_copy (fitted, self->epochs) : WALCAST_ENOMEM;
    if (rc == 0 && wc_epochs_reconcile (fitted, self->applied))
        rc = s_history_replace (self, fitted);
    wc_epochs_destroy (&fitted);
    if (rc)
        return rc;
    self->staged = self->written = self->durable = self->requested = self->applied;
    self->info.wal.damaged = false;
    self->info.missing_start = false;
    return 0;
}


//  --------------------------------------------------------------------
//  Staging and committing

uint64_t
wc_engine_next_seq (const wc_engine_t *self)
{
    return self->staged + 1;
}

//  An entry of a newer epoch could not be staged: the history that must
//  say where that epoch begins could not be written (s_history_replace
//  logged why). The engine stalls as for a failed commit, so that a
//  replica stops taking entries, says so once and tries again. The
//  episode ends when the history can be written: with the entry, or, the
//  upstream gone, when the tick finds the disk takes the history again
//  (s_history_retry), so that the node is not left stalled for ever.
static void
s_stall_history (wc_engine_t *self)
{
    self->stall_fails++;
    self->history_retry_ms = wc_clock_ms () + S_HISTORY_RETRY_MS;
    self->stall_history = true;
    if (self->stalled)
        return;
    self->stalled = true;
    self->stall_ms = wc_clock_ms ();
    snprintf (self->stall_why, sizeof self->stall_why, "the epoch history: %.200s",
              self->history_why);
}

int
wc_engine_stage (wc_engine_t *self, const wc_entry_t *entry,
                 const void *payload, size_t len)
{
    if (entry->seq != self->staged + 1)
        return WALCAST_EINVAL;
    if (self->fatal)
        return WALCAST_EIO;
    uint64_t latest = wc_epochs_latest (self->epochs);
    if (entry->epoch < latest)
        return WALCAST_EFENCED;
    if (entry->epoch > latest) {
        int rc = s_history_add (self, entry->epoch, entry->seq);
        if (rc) {
            s_stall_history (self);
            return rc;
        }
    }
    int rc = wc_wal_append (self->wal, entry->seq, payload, len);
    if (rc)
        return rc;
    s_head_t head = s_head_of (entry, payload, len);
    if (msgpack_sbuffer_write (&self->pending, (const char *) &head, sizeof head)
    ||  msgpack_sbuffer_write (&self->pending, (const char *) payload, len))
        return WALCAST_ENOMEM;          //  unreachable: msgpack aborts
    self->staged = entry->seq;
    return 0;
}

//  A commit failed: start or go on with the episode.
static void
s_stall (wc_engine_t *self, int rc, uint64_t first, uint64_t last)
{
    self->stall_fails++;
    if (self->stalled)
        return;
    self->stalled = true;
    self->stall_ms = wc_clock_ms ();
    snprintf (self->stall_why, sizeof self->stall_why, "%s",
              wc_wal_last_error (self->wal));
    wc_log_error ("wal: cannot write seqs %llu..%llu: %s; %s", (unsigned long long) first,
                  (unsigned long long) last, self->stall_why,
                  rc == WALCAST_ENOSPC
                  ? "writes are refused (ENOSPC) until space returns; reads go on"
                  : "writes are refused (EWRITE) until the log can be written; reads go on");
}

static void
s_unstall (wc_engine_t *self)
{
    if (!self->stalled)
        return;
    wc_log_info ("wal: writing again after %.1f s (%llu commits refused meanwhile)",
                 (double) (wc_clock_ms () - self->stall_ms) / 1000.0,
                 (unsigned long long) self->stall_fails);
    self->stalled = false;
    self->stall_history = false;
    self->stall_fails = 0;
}

//  A sync failed: what reached the disk is unknown. Nothing more is
//  written; the node must stop and replay its log.
static int
s_fatal (wc_engine_t *self)
{
    self->fatal = true;
    return WALCAST_EIO;
}

//  Sync a job on this thread (the syncer could not take it). Every
//  descriptor gets one fsync; a failure is a failure (never retried).
static int
s_sync_here (wc_wal_sync_job_t *job)
{
    for (size_t i = 0; i < job->nfds; i++)
        if (wc_vfs_fsync (job->fds [i]) != 0)
            return WALCAST_EIO;
    return 0;
}

//  What was synced on this thread becomes durable once every job the
//  syncer had before it is done too (durable only ever covers a prefix).
static void
s_here_durable (wc_engine_t *self)
{
    if (self->here_seq > self->durable && self->durable >= self->here_after)
        self->durable = self->here_seq < self->written ? self->here_seq : self->written;
}

//  Ask the syncer to make everything written durable. When it cannot
//  take the job (no memory, no descriptor to spare), sync here; that
//  counts as durable once the jobs before it are done.
static int
s_request_sync (wc_engine_t *self)
{
    wc_wal_sync_job_t job;
    int rc = wc_wal_sync_job (self->wal, &job);
    if (rc == 0)
        return 0;                       //  nothing unsynced
    uint64_t seq = rc == 1 ? job.seq : self->written;
    if (rc == 1) {
        rc = wc_syncer_submit (self->syncer, &job);
        if (rc == 0) {
            self->requested = seq;
            return 0;
        }
        if (rc != WALCAST_EIO)
            rc = s_sync_here (&job);
        wc_wal_sync_job_release (&job);
    }
    else
        rc = wc_wal_sync (self->wal);
    if (rc)
        return s_fatal (self);
    self->here_after = self->requested;
    self->here_seq = self->requested = seq;
    s_here_durable (self);
    return self->fsync == WC_FSYNC_ALWAYS ? s_apply_upto (self, self->durable) : 0;
}

int
wc_engine_commit (wc_engine_t *self)
{
    if (self->fatal)
        return WALCAST_EIO;
    if (self->staged == self->written)
        return 0;
    uint64_t first = self->written + 1, last = self->staged;
    int rc = wc_wal_flush (self->wal);
    self->written = wc_wal_written (self->wal);
    if (rc) {
        s_cut_pending (self, self->written);
        self->staged = self->written;
        s_stall (self, rc, first, last);
    }
    else
    if (!self->stall_history)           /* ended by the history, not a commit */
        s_unstall (self);
    int sync_rc = 0;
    if (self->fsync == WC_FSYNC_ALWAYS)
        sync_rc = s_request_sync (self);
    else {
        if (self->fsync == WC_FSYNC_BATCH && self->sync_due_ms == 0)
            self->sync_due_ms = wc_clock_ms () + S_BATCH_SYNC_MS;
        sync_rc = s_apply_upto (self, self->written);
    }
    s_snapshot_maybe (self);
    return sync_rc ? sync_rc : rc;
}


//  --------------------------------------------------------------------
//  Syncing

void *
wc_engine_sync_socket (wc_engine_t *self)
{
    return zsock_resolve (wc_syncer_sock (self->syncer));
}

int
wc_engine_on_sync (wc_engine_t *self)
{
    uint64_t seq;
    int rc;
    while ((rc = wc_syncer_result (self->syncer, &seq)) == 1)
        if (seq > self->durable)
            self->durable = seq < self->written ? seq : self->written;
    if (rc < 0)
        return s_fatal (self);
    s_here_durable (self);
    if (self->fsync != WC_FSYNC_ALWAYS)
        return 0;
    rc = s_apply_upto (self, self->durable);
    s_snapshot_maybe (self);
    return rc;
}

//  A history stall (s_stall_history) whose entry may never come again
//  (its upstream gone): once a second, save the history as it is; when
//  the disk takes it, the stall is over.
static void
s_history_retry (wc_engine_t *self)
{
    if (!self->stalled || !self->stall_history || wc_clock_ms () < self->history_retry_ms)
        return;
    self->history_retry_ms = wc_clock_ms () + S_HISTORY_RETRY_MS;
    char why [256];
    if (wc_epochs_save (self->epochs, self->dirfd, why, sizeof why) != 0)
        return;
    wc_log_info ("epochs %s: the disk takes the epoch history again, after %.1f s",
                 self->dir, (double) (wc_clock_ms () - self->stall_ms) / 1000.0);
    self->history_failures = 0;
    s_history_unstall (self);
}

int
wc_engine_tick (wc_engine_t *self)
{
    s_snapshot_maybe (self);
    s_history_retry (self);
    if (self->prep_ms && self->applied == self->prep_seq
    &&  wc_clock_ms () - self->prep_ms >= S_PREPARE_IDLE_MS) {
        wc_store_drop_prepared (self->store);   //  no writes: do not hold it
        self->prep_ms = 0;
    }
    if (self->fsync != WC_FSYNC_BATCH || self->sync_due_ms == 0)
        return 1000;
    int64_t now = wc_clock_ms ();
    if (now < self->sync_due_ms)
        return (int) (self->sync_due_ms - now);
    self->sync_due_ms = 0;
    if (!self->fatal && s_request_sync (self) != 0)
        return 0;                       //  fatal: the node sees it at once
    return 1000;
}


//  --------------------------------------------------------------------
//  Epochs

uint64_t
wc_engine_epoch (const wc_engine_t *self)
{
    return wc_epochs_latest (self->epochs);
}

const wc_epochs_t *
wc_engine_epochs (const wc_engine_t *self)
{
    return self->epochs;
}

int
wc_engine_begin_epoch (wc_engine_t *self, uint64_t epoch)
{
    if (epoch <= wc_epochs_latest (self->epochs)) {
        wc_log_error ("epochs %s: cannot begin epoch %llu: the history is at epoch %llu",
                      self->dir, (unsigned long long) epoch,
                      (unsigned long long) wc_epochs_latest (self->epochs));
        return WALCAST_EINVAL;
    }
    if (self->fatal)
        return WALCAST_EIO;
    if ((wc_epochs_latest (self->epochs) == 0 || self->restored) && self->cluster == 0) {
        //  The first epoch of a history, or of a restored snapshot: a new
        //  cluster
        int rc = wc_engine_set_cluster (self, wc_cluster_new_id ());
        if (rc)
            return rc;
        char text [24];
        wc_log_info ("storage %s: a new history%s: cluster %s", self->dir,
                     self->restored ? " (restored from a snapshot)" : "",
                     wc_cluster_text (self->cluster, text, sizeof text));
    }
    return s_history_add (self, epoch, self->staged + 1);
}

uint64_t
wc_engine_cluster (const wc_engine_t *self)
{
    return self->cluster;
}

int
wc_engine_set_cluster (wc_engine_t *self, uint64_t id)
{
    if (id == self->cluster)
        return 0;
    char why [256];
    int rc = wc_cluster_save (self->dirfd, id, why, sizeof why);
    if (rc) {
        wc_log_error ("storage %s: cannot record the cluster id: %s", self->dir, why);
        return rc;
    }
    self->cluster = id;
    return 0;
}

int
wc_engine_epoch_end (wc_engine_t *self, uint64_t epoch, uint64_t *found, uint64_t *end_seq)
{
    wc_epochs_end (self->epochs, epoch, self->applied, found, end_seq);
    return 0;
}

uint64_t
wc_engine_epoch_last_seq (wc_engine_t *self, uint64_t epoch)
{
    return wc_epochs_last_seq (self->epochs, epoch, self->written);
}

bool
wc_engine_diverged (const wc_engine_t *self, char *why, size_t size)
{
    if (self->diverged && why)
        snprintf (why, size, "%s", self->diverged_why);
    return self->diverged;
}

int
wc_engine_set_diverged (wc_engine_t *self, const char *why)
{
    char text [sizeof self->diverged_why + 1], err [256];
    int len = snprintf (text, sizeof text, "%.*s\n", (int) sizeof self->diverged_why - 1,
                        why);
    int rc = wc_files_replace (self->dirfd, S_DIVERGED_FILE, text, (size_t) len, err,
                               sizeof err);
    if (rc != 0) {
        wc_log_error ("storage %s: cannot write the diverged marker: %s", self->dir, err);
        return rc;
    }
    snprintf (self->diverged_why, sizeof self->diverged_why, "%s", why);
    self->diverged_why [strcspn (self->diverged_why, "\n")] = '\0';
    self->diverged = true;
    wc_log_error ("storage %s: DIVERGED: %s; this node follows no one until its data "
                  "directory is emptied", self->dir, self->diverged_why);
    return 0;
}


//  --------------------------------------------------------------------
//  Truncation

uint64_t
wc_engine_truncate_floor (const wc_engine_t *self)
{
    uint64_t first = wc_wal_first_seq (self->wal);
    if (first == 0)
        return self->applied;           //  nothing in the log to rebuild with
    if (first == 1)
        return 0;
    for (size_t i = 0; i < self->nsnaps; i++)
        if (self->snaps [i] + 1 >= first)
            return self->snaps [i];
    return self->applied;
}

/*  A state rebuilt as of a seq, for a truncation. */
typedef struct {
    wc_engine_t *engine;
    wc_store_t *store;          /* the new state */
    uint64_t base;              /* the snapshot it starts from; 0 none */
    uint64_t applied;           /* the last entry in it */
    uint64_t ts_ms;             /* that entry's primary clock */
    uint64_t upto;              /* where to stop */
    int rc;                     /* why a record was refused */
} s_rebuild_t;

//  One record of the log into the rebuilt state (in order, up to upto).
static int
s_rebuild_record (void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    s_rebuild_t *rebuild = (s_rebuild_t *) arg;
    if (seq > rebuild->upto)
        return 1;
    wc_entry_t entry;
    int rc = wc_entry_decode (payload, len, &rebuild->engine->unpacked, &entry);
    if (rc == 0 && (entry.seq != seq || seq != rebuild->applied + 1))
        rc = WALCAST_EPROTO;
    if (rc == 0)
        rc = s_put_entry (rebuild->store, &entry);
    if (rc != 0)
        return rebuild->rc = rc;
    rebuild->applied = seq;
    rebuild->ts_ms = entry.ts_ms;
    return 0;
}

//  The store to rebuild from: the newest snapshot at or below seq that
//  the log continues (a damaged one is set aside), or an empty one when
//  the log begins at seq 1. 0 or an error (logged).
static int
s_rebuild_base (wc_engine_t *self, uint64_t seq, s_rebuild_t *rebuild)
{
    uint64_t first = wc_wal_first_seq (self->wal);
    for (size_t i = self->nsnaps; i-- > 0 && !rebuild->store; ) {
        uint64_t snap = self->snaps [i];
        if (snap > seq || snap + 1 < first)
            continue;
        wc_snapshot_info_t info;
        char why [256];
        int rc = wc_snapshot_load (self->dirfd, snap, &rebuild->store, NULL, &info, why,
                                   sizeof why);
        if (rc == 0) {
            rebuild->base = rebuild->applied = snap;
            rebuild->ts_ms = info.ts_ms;
        }
        else
        if (rc == WALCAST_EPROTO) {
            wc_log_warn ("snapshot %s: %s: damaged, set aside", self->dir, why);
            s_snapshot_set_aside (self, snap);
            i = self->nsnaps;
        }
        else {
            wc_log_error ("snapshot %s: %s", self->dir, why);
            return rc;
        }
    }
    if (!rebuild->store && first > 1) {
        wc_log_error ("storage %s: no snapshot left to rebuild the state as of seq %llu",
                      self->dir, (unsigned long long) seq);
        return WALCAST_ERANGE;
    }
    if (!rebuild->store && !(rebuild->store = wc_store_new ()))
        return WALCAST_ENOMEM;
    return 0;
}

//  Rebuild the state as of seq into rebuild, reading the log. Nothing
//  of the engine changes. 0 or an error (logged).
static int
s_rebuild (wc_engine_t *self, uint64_t seq, s_rebuild_t *rebuild)
{
    *rebuild = (s_rebuild_t) { .engine = self, .upto = seq };
    int rc = s_rebuild_base (self, seq, rebuild);
    while (rc == 0 && rebuild->applied < seq) {
        int n = wc_wal_read (self->wal, rebuild->applied + 1, S_REBUILD_CHUNK,
                             s_rebuild_record, rebuild);
        if (n < 0 || rebuild->rc)
            rc = rebuild->rc ? rebuild->rc : n;
        else
        if (n == 0)
            rc = WALCAST_EIO;
        if (rc)
            wc_log_error ("storage %s: cannot rebuild the state as of seq %llu: the log "
                          "stops at seq %llu (%s)", self->dir, (unsigned long long) seq,
                          (unsigned long long) rebuild->applied, walcast_strerror (rc));
    }
    if (rc)
        wc_store_destroy (&rebuild->store);
    return rc;
}

//  The syncs asked for are done and a snapshot write stops (its result
//  kept for the node), so that the files can change under nobody. In
//  that order: applying what the syncs made durable may start a write.
static int
s_quiesce (wc_engine_t *self)
{
    int rc = s_drain_syncs (self, S_CLOSE_WAIT_MS);
    if (rc == 0)
        rc = s_snapshot_stop (self);
    if (rc)
        wc_log_error ("storage %s: cannot stop the work in flight: %s", self->dir,
                      walcast_strerror (rc));
    return rc;
}

//  The files of a truncation after seq, in their order (see the top).
//  Returns 0 or an error; past the history, a failure is fatal.
static int
s_truncate_files (wc_engine_t *self, uint64_t seq)
{
    wc_epochs_t *cut = wc_epochs_new ();
    int rc = cut ? wc_epochs_copy (cut, self->epochs) : WALCAST_ENOMEM;
    if (rc == 0) {
        wc_epochs_cut (cut, seq);
        if (!wc_epochs_equal (cut, self->epochs))
            rc = s_history_replace (self, cut);
    }
    wc_epochs_destroy (&cut);
    if (rc)
        return rc;
    rc = s_snapshots_drop (self, seq, 0);
    //  The log may end before seq (it is empty after an install): then
    //  only what is buffered goes
    uint64_t written = wc_wal_written (self->wal);
    if (rc == 0 && wc_wal_last_seq (self->wal) > seq)
        rc = wc_wal_truncate (self->wal, seq < written ? seq : written);
    if (rc == 0 && (rc = wc_wal_sync (self->wal)) != 0)
        wc_log_error ("wal %s: %s", self->dir, wc_wal_last_error (self->wal));
    if (rc)
        s_fatal (self);
    return rc;
}

//  Everything is at seq now: the state (when rebuilt), the seqs, the
//  syncer; nothing pending.
static void
s_reset_to (wc_engine_t *self, uint64_t seq, s_rebuild_t *rebuild)
{
    if (rebuild->store) {
        wc_store_destroy (&self->store);
        self->store = rebuild->store;
        self->base = rebuild->base;
        self->applied_ts = rebuild->ts_ms;
        rebuild->store = NULL;
    }
    self->applied = self->staged = self->written = self->durable = self->requested = seq;
    self->here_seq = self->here_after = 0;
    self->sync_due_ms = 0;
    self->pending.size = self->pending_at = 0;
    wc_buffer_trim (&self->pending, S_PENDING_KEEP);
    wc_syncer_rebase (self->syncer, seq);
    if (self->snap_from > seq)
        self->snap_from = seq;
}

int
wc_engine_truncate (wc_engine_t *self, uint64_t seq)
{
    if (self->fatal)
        return WALCAST_EIO;
    if (seq > self->written || wc_wal_damaged (self->wal)) {
        wc_log_error ("storage %s: cannot truncate after seq %llu: %s", self->dir,
                      (unsigned long long) seq, seq > self->written
                      ? "past the log's end" : "the log is damaged (set it aside first)");
        return seq > self->written ? WALCAST_EINVAL : WALCAST_EIO;
    }
    int rc = s_quiesce (self);
    if (rc)
        return rc;
    uint64_t floor = wc_engine_truncate_floor (self), was = self->written;
    if (seq < floor) {
        wc_log_error ("storage %s: cannot truncate after seq %llu: the log cannot rebuild "
                      "the state before seq %llu (its snapshot)", self->dir,
                      (unsigned long long) seq, (unsigned long long) floor);
        return WALCAST_ERANGE;
    }
    s_rebuild_t rebuild = { .store = NULL };
    if (seq < self->applied && (rc = s_rebuild (self, seq, &rebuild)) != 0)
        return rc;
    rc = s_truncate_files (self, seq);
    if (rc) {
        wc_store_destroy (&rebuild.store);
        return rc;
    }
    s_reset_to (self, seq, &rebuild);
    if (was == seq)                     //  the log already ended there
        wc_log_info ("storage %s: truncated after seq %llu: nothing after it to "
                     "remove; latest epoch %llu", self->dir, (unsigned long long) seq,
                     (unsigned long long) wc_epochs_latest (self->epochs));
    else
        wc_log_warn ("storage %s: truncated after seq %llu (entries %llu..%llu are "
                     "gone); latest epoch %llu", self->dir, (unsigned long long) seq,
                     (unsigned long long) seq + 1, (unsigned long long) was,
                     (unsigned long long) wc_epochs_latest (self->epochs));
    return 0;
}


//  --------------------------------------------------------------------
//  Snapshots

//  Freeze the state at the applied seq and hand it to the writer.
static int
s_snapshot_start (wc_engine_t *self)
{
    if (self->fatal)
        return WALCAST_EIO;
    if (wc_snapshotter_busy (self->writer) || self->snap_report)
        return WALCAST_EBUSY;
    if (self->applied == 0)
        return WALCAST_EINVAL;
    int64_t started = wc_clock_us ();
    size_t ready = wc_store_prepared_bytes (self->store);
    const wc_store_frozen_t *view;
    int rc = wc_store_freeze (self->store, &view);
    wc_snapshot_info_t info = { .seq = self->applied, .ts_ms = self->applied_ts };
    if (rc == 0 && (rc = wc_snapshotter_start (self->writer, &info, self->epochs, view)))
        wc_store_thaw (self->store);
    if (rc) {
        wc_log_error ("snapshot %s: cannot start one at seq %llu: %s", self->dir,
                      (unsigned long long) self->applied, walcast_strerror (rc));
        return rc;
    }
    self->snap_from = self->applied;
    wc_log_info ("snapshot %s: taking seq %llu (%zu keys; the state was frozen in %.1f ms, "
                 "%.1f MiB of its memory made ready before)",
                 self->dir, (unsigned long long) self->applied, wc_store_count (self->store),
                 (double) (wc_clock_us () - started) / 1000.0, (double) ready / 1048576.0);
    return 0;
}

//  Keep the newest snapshots and remove the log that the oldest of them
//  covers beyond the retention bound (failures are logged; they cost
//  disk, nothing else). The older snapshot is kept for when the newest
//  is found damaged at open, and it is of use only with the log after it.
static void
s_snapshot_retain (wc_engine_t *self, uint64_t seq)
{
    bool removed = false;
    while (self->nsnaps > S_SNAPSHOTS_KEPT)
        removed |= s_snapshot_remove (self, self->snaps [0]) == 0;
    if (removed && wc_vfs_fsync (self->dirfd) != 0)
        wc_log_error ("snapshot %s: cannot sync the directory: %s", self->dir,
                      strerror (errno));
    uint64_t oldest = self->nsnaps > 0 && self->snaps [0] < seq ? self->snaps [0] : seq;
    wc_wal_retain (self->wal, oldest, self->retain_bytes);
}

//  A write ended: thaw, note the file, and (retain) make room. The
//  result waits for wc_engine_on_snapshot.
static void
s_snapshot_done (wc_engine_t *self, const wc_snapshot_result_t *result, bool retain)
{
    wc_store_thaw (self->store);
    self->snap_result = *result;
    self->snap_report = true;
    if (result->rc != 0) {
        if (result->rc != WALCAST_EBUSY) {
            wc_log_error ("snapshot %s: seq %llu could not be written: %s; trying again "
                          "in %d s at the earliest", self->dir,
                          (unsigned long long) result->seq, result->why,
                          S_SNAPSHOT_RETRY_MS / 1000);
            self->snap_retry_ms = wc_clock_ms () + S_SNAPSHOT_RETRY_MS;
        }
        return;
    }
    self->snap_retry_ms = 0;
    if (s_snaps_insert (self, result->seq) != 0)
        return;                         //  the file stays; the next open sees it
    if (retain)
        s_snapshot_retain (self, result->seq);
}

//  Cancel a write in progress and wait for its end. 0 or
//  WALCAST_ETIMEOUT (it does not end: the disk hangs).
static int
s_snapshot_stop (wc_engine_t *self)
{
    if (!wc_snapshotter_busy (self->writer))
        return 0;
    wc_snapshotter_cancel (self->writer);
    wc_snapshot_result_t result;
    if (wc_snapshotter_take (self->writer, S_STOP_WAIT_MS, &result) != 1)
        return WALCAST_ETIMEOUT;
    s_snapshot_done (self, &result, false);
    return 0;
}

//  A write that ended is taken in (the store thawed, old files removed)
//  even before the node asks, so that a store never stays frozen.
static void
s_snapshot_collect (wc_engine_t *self)
{
    wc_snapshot_result_t result;
    if (wc_snapshotter_busy (self->writer) && wc_snapshotter_take (self->writer, 0, &result) == 1)
        s_snapshot_done (self, &result, true);
}

//  The seq the next periodic snapshot is due at: the first after the
//  last one begun where seq + phase is a multiple of snapshot_every. So
//  a node's snapshots keep to one grid (one begun by hand or late does
//  not move it), and nodes with different phases snapshot at different
//  writes instead of all at once.
static uint64_t
s_snapshot_due (const wc_engine_t *self)
{
    uint64_t every = self->snapshot_every;
    return ((self->snap_from + self->snapshot_phase) / every + 1) * every
           - self->snapshot_phase;
}

//  Fault in some of the memory the freeze will copy the store's slots
//  into (store.h): what it needs spread over the turns left before seq
//  due, if they apply as many entries as this one did.
static void
s_snapshot_prepare (wc_engine_t *self, uint64_t due, uint64_t turn)
{
    uint64_t need = wc_store_freeze_bytes (self->store);
    uint64_t turns = (due - self->applied) / (turn ? turn : 1) + 1;
    uint64_t budget = need / turns;
    budget = budget < S_PREPARE_MIN ? S_PREPARE_MIN
           : budget > S_PREPARE_MAX ? S_PREPARE_MAX : budget;
    (void) wc_store_prepare_freeze (self->store, (size_t) budget);
    self->prep_seq = self->applied;
    self->prep_ms = wc_clock_ms ();
}

//  Start one when it is due; in the entries just before, get the store's
//  memory for the freeze ready a little each turn (store.h).
static void
s_snapshot_maybe (wc_engine_t *self)
{
    s_snapshot_collect (self);
    if (!self->snapshot_every || self->fatal || self->closed
    ||  wc_snapshotter_busy (self->writer) || self->snap_report)
        return;
    uint64_t due = s_snapshot_due (self);
    uint64_t turn = self->applied > self->maybe_seq ? self->applied - self->maybe_seq : 0;
    self->maybe_seq = self->applied;
    if (self->applied < due) {
        if (due - self->applied <= self->snapshot_every / S_PREPARE_SHARE
        &&  self->prep_seq != self->applied)
            s_snapshot_prepare (self, due, turn);
        return;
    }
    self->prep_ms = 0;
    if (self->snap_retry_ms && wc_clock_ms () < self->snap_retry_ms)
        return;
    if (s_snapshot_start (self) != 0)
        self->snap_retry_ms = wc_clock_ms () + S_SNAPSHOT_RETRY_MS;
}

int
wc_engine_snapshot (wc_engine_t *self)
{
    return s_snapshot_start (self);
}

void *
wc_engine_snapshot_socket (wc_engine_t *self)
{
    return wc_snapshotter_sock (self->writer);
}

int
wc_engine_on_snapshot (wc_engine_t *self, uint64_t *seq, uint64_t *bytes)
{
    wc_snapshotter_drain (self->writer);
    s_snapshot_collect (self);
    if (!self->snap_report)
        return 0;
    self->snap_report = false;
    if (self->snap_result.rc != 0)
        return self->snap_result.rc;
    *seq = self->snap_result.seq;
    *bytes = self->snap_result.bytes;
    return 1;
}

uint64_t
wc_engine_snapshot_seq (const wc_engine_t *self)
{
    return self->nsnaps ? self->snaps [self->nsnaps - 1] : 0;
}

int
wc_engine_snapshot_read (wc_engine_t *self, uint64_t seq, uint64_t offset, void *buf,
                         size_t max, uint64_t *snap_seq, uint64_t *size, size_t *got)
{
    if (self->nsnaps == 0)
        return WALCAST_ENOTFOUND;
    if (seq == 0)
        seq = self->snaps [self->nsnaps - 1];
    size_t i = 0;
    while (i < self->nsnaps && self->snaps [i] != seq)
        i++;
    if (i == self->nsnaps)
        return WALCAST_ERANGE;
    if (self->read_fd < 0 || self->read_seq != seq) {
        char name [WC_SNAPSHOT_NAME_SIZE];
        if (self->read_fd >= 0)
            wc_vfs_close (self->read_fd);
        self->read_fd = wc_vfs_openat (self->dirfd, wc_snapshot_name (name, seq),
                                       O_RDONLY | O_CLOEXEC);
        self->read_seq = seq;
        if (self->read_fd < 0) {
            wc_log_error ("snapshot %s: cannot open %s: %s", self->dir, name, strerror (errno));
            return errno == ENOENT ? WALCAST_ERANGE : WALCAST_EIO;
        }
    }
    struct stat st;
    if (fstat (self->read_fd, &st) != 0)
        return WALCAST_EIO;
    if (offset > (uint64_t) st.st_size)
        return WALCAST_EINVAL;
    uint64_t left = (uint64_t) st.st_size - offset;
    ssize_t n = wc_files_pread_all (self->read_fd, buf, left < max ? (size_t) left : max,
                                    offset);
    if (n < 0) {
        wc_log_error ("snapshot %s: cannot read seq %llu: %s", self->dir,
                      (unsigned long long) seq, strerror (errno));
        return WALCAST_EIO;
    }
    *snap_seq = seq;
    *size = (uint64_t) st.st_size;
    *got = (size_t) n;
    return 0;
}

const char *
wc_engine_snapshot_temp_path (wc_engine_t *self)
{
    return self->temp_path;
}


//  --------------------------------------------------------------------
//  Installing a snapshot

//  Check the file at path whole and build its state; sync it, since it
//  is about to become the only copy. 0 or an error (logged).
static int
s_install_check (const wc_engine_t *self, const char *path, wc_store_t **store,
                 wc_epochs_t *history, wc_snapshot_info_t *info)
{
    char why [256] = "";
    int fd = wc_vfs_open (path, O_RDONLY | O_CLOEXEC);
    int rc = fd < 0 ? (errno == ENOENT ? WALCAST_ENOTFOUND : WALCAST_EIO)
                    : wc_snapshot_read_fd (fd, store, history, info, why, sizeof why);
    if (fd < 0)
        snprintf (why, sizeof why, "cannot open it: %s", strerror (errno));
    else
    if (rc == 0 && wc_vfs_fdatasync (fd) != 0) {
        snprintf (why, sizeof why, "cannot sync it: %s", strerror (errno));
        rc = WALCAST_EIO;
    }
    if (fd >= 0)
        wc_vfs_close (fd);
    if (rc != 0) {
        wc_log_error ("snapshot %s: cannot install %s: %s", self->dir, path, why);
        wc_store_destroy (store);
    }
    return rc;
}

//  The switch: the marker, then the rename. 0 when it happened; an error
//  before it (nothing changed; logged), or a fatal one when it cannot be
//  known whether it happened (a restart decides, by the marker).
static int
s_install_switch (wc_engine_t *self, const char *path, const wc_snapshot_info_t *info)
{
    char marker [64], name [WC_SNAPSHOT_NAME_SIZE], why [256];
    int len = snprintf (marker, sizeof marker, "%llu %08x\n",
                        (unsigned long long) info->seq, info->crc);
    int rc = wc_files_replace (self->dirfd, S_INSTALL_FILE, marker, (size_t) len, why,
                               sizeof why);
    if (rc != 0) {
        wc_log_error ("snapshot %s: cannot install seq %llu: %s", self->dir,
                      (unsigned long long) info->seq, why);
        wc_files_remove (self->dirfd, S_INSTALL_FILE, true, why, sizeof why);
        return rc;
    }
    wc_snapshot_name (name, info->seq);
    if (wc_vfs_renameat (AT_FDCWD, path, self->dirfd, name) != 0) {
        rc = wc_files_code (errno);
        wc_log_error ("snapshot %s: cannot install seq %llu: cannot rename %s to %s: %s",
                      self->dir, (unsigned long long) info->seq, path, name, strerror (errno));
        if (wc_files_remove (self->dirfd, S_INSTALL_FILE, true, why, sizeof why) != 0)
            s_fatal (self);             //  a restart sees the marker, no switch
        return rc;
    }
    if (wc_vfs_fsync (self->dirfd) != 0) {
        wc_log_error ("snapshot %s: installing seq %llu: cannot sync the directory: %s",
                      self->dir, (unsigned long long) info->seq, strerror (errno));
        return s_fatal (self);
    }
    return 0;
}

//  The new state is in: everything moves to its seq.
static void
s_install_adopt (wc_engine_t *self, wc_store_t *store, const wc_snapshot_info_t *info)
{
    s_rebuild_t rebuild = { .store = store, .base = info->seq, .ts_ms = info->ts_ms };
    self->nsnaps = 0;
    s_snaps_insert (self, info->seq);   //  cannot fail: the array has room
    if (self->read_fd >= 0) {
        wc_vfs_close (self->read_fd);
        self->read_fd = -1;
    }
    s_reset_to (self, info->seq, &rebuild);
    self->snap_from = info->seq;
}

/*  A snapshot read and checked, waiting to be installed. */
struct wc_engine_install {
    wc_store_t         *store;
    wc_epochs_t        *history;
    wc_snapshot_info_t  info;
};

void
wc_engine_install_destroy (wc_engine_install_t **install_p)
{
    wc_engine_install_t *install = *install_p;
    if (!install)
        return;
    wc_store_destroy (&install->store);
    wc_epochs_destroy (&install->history);
    free (install);
    *install_p = NULL;
}

int
wc_engine_install_read (const wc_engine_t *self, const char *path,
                        wc_engine_install_t **install_p)
{
    *install_p = NULL;
    wc_engine_install_t *install = calloc (1, sizeof *install);
    if (install)
        install->history = wc_epochs_new ();
    int rc = install && install->history
           ? s_install_check (self, path, &install->store, install->history,
                              &install->info)
           : WALCAST_ENOMEM;
    if (rc == 0)
        *install_p = install;
    else
        wc_engine_install_destroy (&install);
    return rc;
}

int
wc_engine_install_apply (wc_engine_t *self, const char *path,
                         wc_engine_install_t **install_p)
{
    wc_engine_install_t *install = *install_p;
    *install_p = NULL;
    const wc_snapshot_info_t *info = &install->info;
    int rc = self->fatal ? WALCAST_EIO : s_snaps_insert (self, info->seq);
    if (rc == 0)
        s_snaps_forget (self, info->seq);       //  so that s_install_adopt has room
    if (rc == 0)
        rc = s_quiesce (self);
    if (rc == 0)
        rc = s_install_switch (self, path, info);
    if (rc == 0 && (rc = s_install_finish (self, info->seq, install->history)) != 0)
        s_fatal (self);
    if (rc == 0) {
        s_install_adopt (self, install->store, info);
        install->store = NULL;
        char text [256];
        wc_log_warn ("snapshot %s: installed seq %llu (%llu keys, %llu bytes); the old "
                     "state and log are gone; epochs %s", self->dir,
                     (unsigned long long) info->seq, (unsigned long long) info->count,
                     (unsigned long long) info->bytes,
                     wc_epochs_text (self->epochs, text, sizeof text));
    }
    wc_engine_install_destroy (&install);
    return rc;
}

int
wc_engine_install_snapshot (wc_engine_t *self, const char *path)
{
    if (self->fatal)
        return WALCAST_EIO;
    wc_engine_install_t *install = NULL;
    int rc = wc_engine_install_read (self, path, &install);
    return rc ? rc : wc_engine_install_apply (self, path, &install);
}


//  --------------------------------------------------------------------
//  What the node reads

void
wc_engine_expect (wc_engine_t *self, uint64_t entries)
{
    wc_store_reserve (self->store, entries < WC_STORE_RESERVE_MAX
                                   ? (size_t) entries : WC_STORE_RESERVE_MAX);
}

uint64_t
wc_engine_written (const wc_engine_t *self)
{
    return self->written;
}

uint64_t
wc_engine_durable (const wc_engine_t *self)
{
    return self->durable;
}

uint64_t
wc_engine_applied (const wc_engine_t *self)
{
    return self->applied;
}

uint64_t
wc_engine_applied_ts (const wc_engine_t *self)
{
    return self->applied_ts;
}

size_t
wc_engine_pending_bytes (const wc_engine_t *self)
{
    return self->pending.size;
}

bool
wc_engine_failed (const wc_engine_t *self)
{
    return self->fatal;
}

void
wc_engine_wal_size (const wc_engine_t *self, uint64_t *bytes, uint64_t *segments)
{
    *bytes = self->wal ? wc_wal_bytes (self->wal) : 0;
    *segments = self->wal ? wc_wal_segments (self->wal) : 0;
}

void
wc_engine_fsync_latency (const wc_engine_t *self, wc_metrics_tally_t *tally)
{
    memset (tally, 0, sizeof *tally);
    if (self->syncer)
        wc_syncer_latency (self->syncer, tally);
}

bool
wc_engine_stalled (const wc_engine_t *self, char *text, size_t size)
{
    if (self->stalled && text)
        snprintf (text, size, "%s", self->stall_why);
    return self->stalled;
}

wc_store_t *
wc_engine_store (wc_engine_t *self)
{
    return self->store;
}

uint64_t
wc_engine_first_seq (const wc_engine_t *self)
{
    uint64_t first = wc_wal_first_seq (self->wal);
    return first ? first : self->base ? self->base + 1 : 0;
}

/*  Passes records on to the reader's callback, stopping past applied. */
typedef struct {
    uint64_t          applied;
    wc_wal_record_fn *fn;
    void             *arg;
} s_read_t;

static int
s_read_record (void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    s_read_t *read = (s_read_t *) arg;
    if (seq > read->applied)
        return 1;
    return read->fn ? read->fn (read->arg, seq, payload, len) : 0;
}

int
wc_engine_read (wc_engine_t *self, uint64_t from_seq, size_t max_bytes,
                wc_wal_record_fn *fn, void *arg)
{
    uint64_t first = wc_engine_first_seq (self);
    if (from_seq < first || from_seq == 0)
        return WALCAST_ERANGE;
    if (from_seq > self->applied)
        return 0;
    s_read_t read = { self->applied, fn, arg };
    return wc_wal_read (self->wal, from_seq, max_bytes, s_read_record, &read);
}
