/*  wal.h - the write-ahead log: segmented, append-only, checksummed files.

    A WAL is a directory of segment files named wal-<first seq, 20 digits>.log.
    Each record is framed as

        len:u32le | crc:u32le | seq:u64le | payload (len bytes)

    where crc is CRC32C over seq and payload. Sequence numbers are
    consecutive across records and segments. Appends are buffered in
    memory until wc_wal_flush writes them (one write per segment); a new
    segment starts when the current one has passed the segment size.

    The commit contract. wc_wal_flush either writes every buffered record
    or fails with WALCAST_ENOSPC / WALCAST_EIO, and then the log holds
    exactly the records up to wc_wal_written: whatever was wholly written
    stays, a partial record is cut back, the rest of the buffer is
    discarded and appends continue from wc_wal_written + 1. A later flush
    works as soon as the cause is gone. Flushing never syncs: durability
    comes from sync jobs (wc_wal_sync_job) that a syncer thread runs off
    the caller's thread (see syncer.h), or from wc_wal_sync.

    Opening replays every record in order. A torn tail (a bad record in
    the last segment with no valid record after it in that segment) is
    cut. Damage anywhere else (a bad record followed by valid ones, a bad
    record in an earlier segment, a missing segment) changes nothing on
    disk: replay stops before it, the open succeeds, wc_wal_info_t says
    where the damage is and which seqs are intact after it, and the log
    refuses appends until the caller sets the damaged part aside
    (wc_wal_set_aside). Files named *.damaged* are never read again.

    The log can also be shortened on purpose: wc_wal_truncate drops a tail
    (a replica that held entries its new upstream never had), wc_wal_retain
    drops whole segments from the front (a snapshot holds what they held).

    Every file operation goes through vfs.h, so tests can fail any of them.
    Not thread-safe: one owner calls everything (sync jobs are plain data
    and may go to another thread).
*/
#ifndef WC_WAL_H_INCLUDED
#define WC_WAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wc_wal wc_wal_t;

/*  Called once per valid record, in order. Return 0 to go on.
    WALCAST_EPROTO means "this payload is not an entry": the record counts
    as bad (a torn tail when nothing valid follows it in the last segment,
    damage otherwise) and the callback must not have applied it. Any other
    non-zero return stops the open with that error. payload is valid only
    during the call. */
typedef int (wc_wal_record_fn) (void *arg, uint64_t seq,
                                const uint8_t *payload, size_t len);

/*  What wc_wal_open found; filled in when not NULL. */
typedef struct {
    uint64_t records;           /* valid records replayed */
    uint64_t first_seq;         /* first replayed seq; 0 when none */
    uint64_t last_seq;          /* last replayed seq; 0 when none */
    uint64_t truncated_bytes;   /* bytes cut from a torn tail */
    uint32_t removed_segments;  /* segment files removed for holding no record */

    //  Damage in the middle: nothing was changed on disk.
    bool damaged;               /* replay stopped before damage */
    char damage_file [64];      /* the file where it is, e.g. "wal-...log" */
    uint64_t damage_offset;     /* byte offset of the bad record in that file */
    uint64_t damage_seq;        /* first seq not replayed */
    uint64_t damage_valid_from; /* seq range of the valid records found */
    uint64_t damage_valid_to;   /*   after the damage; 0, 0 when none */
    char damage_reason [160];   /* what is wrong there, for the operator */
} wc_wal_info_t;

/*  What a sync must cover: descriptors of every segment written since the
    previous job (and of the directory when files were created or removed
    since then), and the seq that is durable once all of them are synced. */
typedef struct {
    int *fds;                   /* descriptors the job owns */
    size_t nfds;                /* how many */
    uint64_t seq;               /* wc_wal_written when the job was made */
} wc_wal_sync_job_t;

#define WC_WAL_SEGMENT_BYTES_DEFAULT  (64u * 1024u * 1024u)
#define WC_WAL_MAX_RECORD             (16u * 1024u * 1024u)

/*  Open (creating dir when missing) and replay the log through fn (may be
    NULL). segment_bytes 0 means the default. A damaged log opens (see
    info->damaged). On failure returns NULL and sets *err (a WALCAST_E*
    code, WALCAST_EIO for file errors, with errno logged, or fn's error). */
wc_wal_t *wc_wal_open (const char *dir, size_t segment_bytes,
                       wc_wal_record_fn *fn, void *arg,
                       wc_wal_info_t *info, int *err);

/*  Write what is buffered (like fclose; no sync), close the files and free
    the log. *self_p becomes NULL; safe twice. */
void wc_wal_destroy (wc_wal_t **self_p);

/*  Buffer one record. seq must be last_seq + 1 (any seq >= 1 when the log
    is empty). Returns 0, WALCAST_EINVAL (wrong seq, payload too big),
    WALCAST_ENOMEM, or WALCAST_EIO when the log is damaged. */
int wc_wal_append (wc_wal_t *self, uint64_t seq, const void *payload, size_t len);

/*  Write every buffered record to the segment files (no sync). Returns 0,
    WALCAST_ENOSPC (ENOSPC, EDQUOT, EFBIG) or WALCAST_EIO (anything else:
    EMFILE, EIO...). After a failure the log holds exactly the records up
    to wc_wal_written, the rest of the buffer is gone, last_seq equals
    wc_wal_written and wc_wal_last_error says why. Nothing is logged. */
int wc_wal_flush (wc_wal_t *self);

/*  The last seq wholly written to the files (0 when none). */
uint64_t wc_wal_written (const wc_wal_t *self);

/*  Why the last failed call failed (file, offset, seqs, strerror), or "". */
const char *wc_wal_last_error (const wc_wal_t *self);

/*  Fill job with what a sync must cover now. Returns 1 (job filled; the
    caller owns it and releases it with wc_wal_sync_job_release), 0 (all
    written data was handed to earlier jobs or synced) or a WALCAST_E*
    code when a descriptor could not be duplicated (nothing changes: call
    wc_wal_sync instead). job->seq only ever grows, but a later
    wc_wal_set_aside may cut the log below a job's seq. */
int wc_wal_sync_job (wc_wal_t *self, wc_wal_sync_job_t *job);

/*  Close the job's descriptors and free it; the struct is zeroed. */
void wc_wal_sync_job_release (wc_wal_sync_job_t *job);

/*  fdatasync every segment written since the last job or sync and fsync
    the directory when it changed, here and now, with descriptors the log
    already holds (no new one is needed, so it works when dup fails).
    What went to earlier jobs is those jobs' business: at shutdown, let
    the syncer finish them (wc_syncer_wait) before destroying it. Returns
    0 or WALCAST_EIO (logged). */
int wc_wal_sync (wc_wal_t *self);

/*  Bytes written but not yet handed to a sync job or synced. */
uint64_t wc_wal_unsynced_bytes (const wc_wal_t *self);

/*  First and last seq in the log (including buffered records); 0 when empty. */
uint64_t wc_wal_first_seq (const wc_wal_t *self);
uint64_t wc_wal_last_seq (const wc_wal_t *self);

/*  True while the log is damaged (appends refused until wc_wal_set_aside). */
bool wc_wal_damaged (const wc_wal_t *self);

/*  Move every record from from_seq on out of the live log without deleting
    anything. The segment holding from_seq is copied to <name>.damaged and
    the live file cut before that record (renamed whole when from_seq is
    its first record); every later segment file, and any file the replay
    could not use, is renamed to <name>.damaged (.1, .2... when taken).
    Buffered records are flushed first. Everything is synced before it
    returns. Afterwards the log ends at from_seq - 1 (is empty when
    from_seq <= first seq), is no longer damaged, and appends continue.
    from_seq may be at most wc_wal_written + 1 (the damage seq of a
    damaged log). Returns 0, WALCAST_ERANGE, WALCAST_ENOSPC or
    WALCAST_EIO (the log then stays or becomes damaged; call it again). */
int wc_wal_set_aside (wc_wal_t *self, uint64_t from_seq);

/*  Drop every record after seq, for good: buffered records are
    discarded, the segment files that start after seq are removed (the
    newest first, the directory synced after each, so that a crash always
    leaves a prefix of the log), and the segment holding seq is cut after
    it and synced. seq 0, or a seq below the first, empties the log (which
    then takes any seq). seq may be at most wc_wal_written. Returns 0,
    WALCAST_ERANGE (seq too high, nothing changed), WALCAST_EIO (the log
    is damaged, or a step failed: the log then ends somewhere between seq
    and where it ended, and a later call can finish the job). */
int wc_wal_truncate (wc_wal_t *self, uint64_t seq);

/*  Remove whole segment files from the oldest on, while all the records
    of the oldest are at or below seq, it is not the last segment, and the
    log keeps at least keep_bytes without it. The directory is synced
    after each removal, so the log always begins where the removed part
    ended. Returns the number of files removed, or WALCAST_EIO (logged;
    what was removed stays removed). */
int wc_wal_retain (wc_wal_t *self, uint64_t seq, uint64_t keep_bytes);

/*  Remove every segment file of dir, newest first, syncing the directory
    after each: the log of a state that an installed snapshot replaced.
    For a log that is not open. Returns 0 or WALCAST_EIO (logged). */
int wc_wal_remove_all (const char *dir);

/*  Bytes of the log's segment files (whole records). */
uint64_t wc_wal_bytes (const wc_wal_t *self);

/*  Segment files the log has on disk. */
size_t wc_wal_segments (const wc_wal_t *self);

/*  Read written records from from_seq on, calling fn for each, until their
    payloads add up to max_bytes (at least one record is read) or the log
    ends. Returns the number of records read (0 when from_seq is past the
    end), WALCAST_ERANGE when from_seq is below first_seq, WALCAST_EIO. */
int wc_wal_read (wc_wal_t *self, uint64_t from_seq, size_t max_bytes,
                 wc_wal_record_fn *fn, void *arg);

#endif
