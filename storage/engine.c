/*  engine.c - the storage engine: one commit contract over the WAL, the
    store and the syncer (see engine.h).

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
*/
#include <czmq.h>
#include <stdio.h>
#include <string.h>
#include "buffer.h"
#include "clock.h"
#include "engine.h"
#include "lock.h"
#include "log.h"
#include "syncer.h"
#include "vfs.h"

#define S_BATCH_SYNC_MS   10          /* --fsync batch: sync this long after a write */
#define S_CLOSE_WAIT_MS   10000       /* a clean stop waits this long for syncs */
#define S_PENDING_KEEP    (4u * 1024u * 1024u)    /* buffer kept when emptied */
#define S_PENDING_COMPACT (256u * 1024u)          /* applied bytes moved out */

/*  The head of one entry in `pending`; its payload follows. */
typedef struct {
    uint64_t seq;
    uint64_t len;
} s_head_t;

struct wc_engine {
    char              *dir;         /* the data directory, for logs */
    wc_fsync_t         fsync;       /* when entries are synced and applied */
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
    uint64_t           epoch;       /* highest epoch applied */
    uint64_t           applied_ts;  /* primary clock of the last applied entry */
    int64_t            sync_due_ms; /* batch: when the next sync is due; 0 none */
    bool               fatal;       /* a sync failed: nothing more is written */
    bool               closed;      /* wc_engine_close ran */
    wc_engine_apply_fn *apply_fn;   /* the node, told of each applied entry */
    void              *apply_arg;
    wc_engine_info_t   info;        /* what the open found */
    bool               stalled;     /* commits fail (disk full...) */
    int64_t            stall_ms;    /* since when */
    uint64_t           stall_fails; /* commits failed in this episode */
    char               stall_why [256];
};


static int s_fatal (wc_engine_t *self);
static int s_request_sync (wc_engine_t *self);


//  --------------------------------------------------------------------
//  Applying entries

//  Put one decoded entry into the store and note it. Returns 0,
//  WALCAST_ENOMEM.
static int
s_store_apply (wc_engine_t *self, const wc_entry_t *entry)
{
    int rc = entry->op == WC_OP_PUT
           ? wc_store_put (self->store, entry->key.ptr, entry->key.len,
                           entry->value.ptr, entry->value.len)
           : wc_store_del (self->store, entry->key.ptr, entry->key.len);
    if (rc)
        return rc;
    self->applied = entry->seq;
    self->applied_ts = entry->ts_ms;
    if (entry->epoch > self->epoch)
        self->epoch = entry->epoch;
    return 0;
}

//  WAL replay: each record must be the entry of its seq.
static int
s_replay (void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    wc_engine_t *self = (wc_engine_t *) arg;
    wc_entry_t entry;
    int rc = wc_entry_decode (payload, len, &self->unpacked, &entry);
    if (rc == 0 && entry.seq != seq)
        rc = WALCAST_EPROTO;
    if (rc)
        return WALCAST_EPROTO;          //  not an entry: damage, for the WAL

    rc = s_store_apply (self, &entry);
    if (rc)
        wc_log_error ("wal: cannot apply recovered entry %llu: %s",
                      (unsigned long long) seq, walcast_strerror (rc));
    return rc;
}

//  Apply pending entries up to seq limit, in order. Returns 0 or
//  WALCAST_ENOMEM (the entry stays pending; the node must stop).
static int
s_apply_upto (wc_engine_t *self, uint64_t limit)
{
    while (self->pending_at < self->pending.size) {
        s_head_t head;
        memcpy (&head, self->pending.data + self->pending_at, sizeof head);
        if (head.seq > limit)
            break;
        const char *payload = self->pending.data + self->pending_at + sizeof head;
        wc_entry_t entry;
        int rc = wc_entry_decode (payload, head.len, &self->unpacked, &entry);
        if (rc == 0)
            rc = s_store_apply (self, &entry);
        if (rc) {
            wc_log_error ("cannot apply entry %llu: %s", (unsigned long long) head.seq,
                          walcast_strerror (rc));
            self->fatal = true;         //  the log holds it, the state cannot
            return WALCAST_ENOMEM;
        }
        if (self->apply_fn)
            self->apply_fn (self->apply_arg, &entry, payload, head.len);
        self->pending_at += sizeof head + head.len;
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
//  Opening and closing

//  Say what the open found to be damaged, once, in info.
static void
s_check_damage (wc_engine_t *self)
{
    wc_wal_info_t *wal = &self->info.wal;
    self->info.missing_start = wal->first_seq > 1;
}

//  Everything of an open but the replay's report; 0 or -1 (why set).
static int
s_open_parts (wc_engine_t *self, const wc_engine_config_t *cfg, int *err,
              char *why, size_t why_size)
{
    char held [256] = "";
    self->lock = wc_lock_new (cfg->dir, cfg->owner, err, held, sizeof held);
    if (!self->lock) {
        if (*err == WALCAST_EBUSY)
            snprintf (why, why_size, "the data directory %s is in use: %s; stop that "
                      "process, or give this node another --data", cfg->dir, held);
        else
            snprintf (why, why_size, "cannot lock the data directory %s: %s",
                      cfg->dir, held);
        return -1;
    }
    self->store = wc_store_new ();
    self->syncer = wc_syncer_new ();
    if (!self->store || !self->syncer) {
        *err = WALCAST_ENOMEM;
        snprintf (why, why_size, "out of memory");
        return -1;
    }
    self->wal = wc_wal_open (cfg->dir, cfg->segment_bytes, s_replay, self,
                             &self->info.wal, err);
    if (!self->wal) {
        snprintf (why, why_size, "cannot open the log in %s: %s (see above)",
                  cfg->dir, walcast_strerror (*err));
        return -1;
    }
    return 0;
}

wc_engine_t *
wc_engine_open (const wc_engine_config_t *cfg, wc_engine_info_t *info,
                int *err, char *why, size_t why_size)
{
    int64_t started = wc_clock_us ();
    wc_engine_t *self = (wc_engine_t *) calloc (1, sizeof *self);
    *err = WALCAST_ENOMEM;
    snprintf (why, why_size, "out of memory");
    if (!self || !(self->dir = strdup (cfg->dir))) {
        free (self);
        return NULL;
    }
    self->fsync = cfg->fsync;
    msgpack_unpacked_init (&self->unpacked);
    msgpack_sbuffer_init (&self->pending);
    if (s_open_parts (self, cfg, err, why, why_size) != 0) {
        wc_engine_destroy (&self);
        return NULL;
    }
    self->staged = self->written = self->durable = self->requested = self->applied;
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
    wc_syncer_destroy (&self->syncer);
    wc_wal_destroy (&self->wal);
    wc_store_destroy (&self->store);
    wc_lock_destroy (&self->lock);
    msgpack_unpacked_destroy (&self->unpacked);
    msgpack_sbuffer_destroy (&self->pending);
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
        snprintf (text, size, "the log in %s begins at seq %llu: seqs 1..%llu are "
                  "missing (a segment file was deleted or lost)%s", self->dir,
                  (unsigned long long) wal->first_seq,
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
    if (self->info.missing_start) {
        //  Nothing of it could be used: start from an empty state.
        wc_store_destroy (&self->store);
        self->store = wc_store_new ();
        if (!self->store)
            return WALCAST_ENOMEM;
        self->applied = self->epoch = self->applied_ts = 0;
    }
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

int
wc_engine_stage (wc_engine_t *self, const wc_entry_t *entry,
                 const void *payload, size_t len)
{
    if (entry->seq != self->staged + 1)
        return WALCAST_EINVAL;
    if (self->fatal)
        return WALCAST_EIO;
    int rc = wc_wal_append (self->wal, entry->seq, payload, len);
    if (rc)
        return rc;
    s_head_t head = { entry->seq, len };
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
                  : "writes are refused (EIO) until the log can be written; reads go on");
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
        s_unstall (self);
    int sync_rc = 0;
    if (self->fsync == WC_FSYNC_ALWAYS)
        sync_rc = s_request_sync (self);
    else {
        if (self->fsync == WC_FSYNC_BATCH && self->sync_due_ms == 0)
            self->sync_due_ms = wc_clock_ms () + S_BATCH_SYNC_MS;
        sync_rc = s_apply_upto (self, self->written);
    }
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
    if (self->fsync == WC_FSYNC_ALWAYS)
        return s_apply_upto (self, self->durable);
    return 0;
}

int
wc_engine_tick (wc_engine_t *self)
{
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
//  What the node reads

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
wc_engine_epoch (const wc_engine_t *self)
{
    return self->epoch;
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
    return wc_wal_first_seq (self->wal);
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
    if (from_seq > self->applied)
        return from_seq < wc_wal_first_seq (self->wal) ? WALCAST_ERANGE : 0;
    s_read_t read = { self->applied, fn, arg };
    return wc_wal_read (self->wal, from_seq, max_bytes, s_read_record, &read);
}
