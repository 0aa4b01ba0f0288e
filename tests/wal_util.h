/*  wal_util.h - helpers shared by the WAL tests.

    Records are made from their seq alone (wt_payload), so a replay or a
    read can check every record it gets (wt_collect) without keeping what
    was written. Files are found and damaged by name and offset.
*/
#ifndef WT_WAL_UTIL_H_INCLUDED
#define WT_WAL_UTIL_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "wal.h"

#define WT_SMALL_SEGMENT 1024u

//  What a replay or a read delivered.
typedef struct {
    uint64_t first;         /* first seq seen */
    uint64_t next;          /* seq expected next (0: any) */
    uint64_t count;         /* records seen */
    uint64_t bytes;         /* payload bytes seen */
    int bad;                /* a record was out of order or wrong */
    int stop_at_count;      /* return stop_rc at this count (0: never) */
    int stop_rc;
    uint64_t reject_seq;    /* answer WALCAST_EPROTO for this seq (0: none) */
} wt_collect_t;

/*  The payload of record seq: its length and bytes follow from seq. */
size_t wt_payload (uint64_t seq, uint8_t *buf);

/*  A wc_wal_record_fn that checks each record against wt_payload; arg is
    a wt_collect_t. */
int wt_collect (void *arg, uint64_t seq, const uint8_t *payload, size_t len);

/*  Append records from..to (asserting success). */
void wt_append_range (wc_wal_t *wal, uint64_t from, uint64_t to);

/*  Open dir and check it replays exactly first..last (0, 0: empty). */
wc_wal_t *wt_open_expect (const char *dir, size_t segment_bytes, uint64_t first,
                          uint64_t last, wc_wal_info_t *info);

/*  The same, with a replay that rejects reject_seq as "not an entry". */
wc_wal_t *wt_open_reject (const char *dir, size_t segment_bytes, uint64_t first,
                          uint64_t last, wc_wal_info_t *info, uint64_t reject_seq);

/*  Build a log of first..last, flushed and closed. */
void wt_make_log (const char *dir, size_t segment_bytes, uint64_t first, uint64_t last);

/*  Path of the segment file that starts at seq (a static buffer). */
char *wt_path (const char *dir, uint64_t seq);

/*  Size of a file, -1 when missing. */
int64_t wt_file_size (const char *path);

/*  Segment files in dir, ascending by first seq; returns how many. */
size_t wt_segments (const char *dir, uint64_t *seqs, size_t max);

/*  Byte offset of record seq inside the segment starting at first. */
uint64_t wt_offset_of (uint64_t first, uint64_t seq);

void wt_write_at (const char *path, uint64_t offset, const void *buf, size_t len);
void wt_append_file (const char *path, const void *buf, size_t len);

/*  A well-formed frame (good CRC) for any seq and payload; returns its size. */
size_t wt_frame (uint8_t *out, uint32_t len_field, uint64_t seq,
                 const uint8_t *payload, size_t len);

/*  Every file of a directory: name, size and a CRC of the content. */
typedef struct {
    char name [64];
    int64_t size;
    uint32_t crc;
} wt_file_t;

typedef struct {
    wt_file_t files [256];
    size_t count;
} wt_snapshot_t;

/*  Take a snapshot of dir (files sorted by name). */
void wt_snapshot (const char *dir, wt_snapshot_t *snap);

/*  Assert two snapshots are the same: nothing changed on disk. */
void wt_assert_same (const wt_snapshot_t *a, const wt_snapshot_t *b);

/*  The entry of name in snap, or NULL. */
const wt_file_t *wt_snapshot_find (const wt_snapshot_t *snap, const char *name);

/*  CRC32C of the file dir/name, and its size in *size (-1: missing). */
uint32_t wt_file_crc (const char *dir, const char *name, int64_t *size);

/*  CRC32C of the first len bytes of dir/name. */
uint32_t wt_file_prefix_crc (const char *dir, const char *name, uint64_t len);

/*  XOR one byte of a file with mask. */
void wt_flip (const char *path, uint64_t offset, uint8_t mask);

/*  "wal-<20 digits>.log" for seq (a static buffer). */
const char *wt_name (uint64_t seq);

/*  Empty the test directory. */
void wt_clear_dir (const char *dir);

/*  Read from from_seq with a budget and check what came back. */
void wt_check_read (wc_wal_t *wal, uint64_t from, size_t max_bytes, int want_count);

/*  cmocka set-up and tear-down: a fresh mkdtemp directory in *state. */
int wt_setup_dir (void **state);
int wt_teardown_dir (void **state);

#endif
