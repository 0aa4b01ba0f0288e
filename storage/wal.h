/*  wal.h - the write-ahead log: segmented, append-only, checksummed files.

    A WAL is a directory of segment files named wal-<first seq, 20 digits>.log.
    Each record is framed as

        len:u32le | crc:u32le | seq:u64le | payload (len bytes)

    where crc is CRC32C over seq and payload. Sequence numbers are
    consecutive across records and segments. Appends are buffered in
    memory until wc_wal_flush writes them with one write() per segment;
    wc_wal_sync makes them durable. A new segment starts when the current
    one has passed the segment size; the finished one is synced first.

    Opening a WAL replays every record in order and stops at the first
    torn (short), oversized, corrupt (CRC mismatch) or out-of-sequence
    record: the file is truncated there, later segments are removed, and
    what was dropped is logged. A sparse in-memory index (seq -> segment,
    offset) lets catch-up reads start near any seq without a scan.
*/
#ifndef WC_WAL_H_INCLUDED
#define WC_WAL_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct wc_wal wc_wal_t;

/*  Called once per valid record, in order. Return 0 to go on, anything
    else to stop the open with that error. payload is valid only during
    the call. */
typedef int (wc_wal_record_fn) (void *arg, uint64_t seq,
                                const uint8_t *payload, size_t len);

/*  What wc_wal_open found; filled in when not NULL. */
typedef struct {
    uint64_t records;          /* valid records replayed */
    uint64_t first_seq;        /* 0 when empty */
    uint64_t last_seq;         /* 0 when empty */
    uint64_t truncated_bytes;  /* bytes dropped from a torn/corrupt tail */
    uint32_t removed_segments; /* whole segments dropped after the bad record */
} wc_wal_info_t;

#define WC_WAL_SEGMENT_BYTES_DEFAULT  (64u * 1024u * 1024u)
#define WC_WAL_MAX_RECORD             (16u * 1024u * 1024u)

/*  Open (creating dir when missing) and replay the log through fn (may be
    NULL). segment_bytes 0 means the default. On failure returns NULL and
    sets *err (a WALCAST_E* code; WALCAST_EIO for file errors, with errno
    logged). */
wc_wal_t *wc_wal_open (const char *dir, size_t segment_bytes,
                       wc_wal_record_fn *fn, void *arg,
                       wc_wal_info_t *info, int *err);

/*  Close the files and free the log; does not sync. *self_p becomes NULL. */
void wc_wal_destroy (wc_wal_t **self_p);

/*  Buffer one record. seq must be last_seq + 1 (any seq >= 1 when the log
    is empty). Returns 0, WALCAST_EINVAL (wrong seq, payload too big) or
    WALCAST_ENOMEM. */
int wc_wal_append (wc_wal_t *self, uint64_t seq, const void *payload, size_t len);

/*  Write every buffered record to the segment files. On failure
    (WALCAST_EIO: disk full...) the buffered records are discarded, the
    segment is cut back to its last good size and last_seq goes back to
    what was on disk, so the log stays whole. */
int wc_wal_flush (wc_wal_t *self);

/*  fdatasync what has been flushed. */
int wc_wal_sync (wc_wal_t *self);

/*  First and last seq in the log (including buffered records); 0 when empty. */
uint64_t wc_wal_first_seq (const wc_wal_t *self);
uint64_t wc_wal_last_seq (const wc_wal_t *self);

/*  Bytes written (flushed) but not yet synced. */
uint64_t wc_wal_unsynced_bytes (const wc_wal_t *self);

/*  Read flushed records from from_seq on, calling fn for each, until their
    payloads add up to max_bytes (at least one record is read) or the log
    ends. Returns the number of records read (0 when from_seq is past the
    end), WALCAST_ERANGE when from_seq is below first_seq, WALCAST_EIO. */
int wc_wal_read (wc_wal_t *self, uint64_t from_seq, size_t max_bytes,
                 wc_wal_record_fn *fn, void *arg);

#endif
