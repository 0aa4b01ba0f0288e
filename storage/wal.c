/*  wal.c - the write-ahead log: segmented, append-only, checksummed files.

    On disk a WAL is a directory of segments, wal-<first seq>.log, each a
    run of records framed as len:u32le | crc:u32le | seq:u64le | payload,
    with crc = CRC32C over the 8 seq bytes and the payload. Sequence
    numbers go up by one from record to record and from segment to
    segment; a segment's name is the seq of its first record. Other files
    in the directory are left alone.

    In memory the log is a list of segments. Each knows its flushed size
    (bytes on disk) and its planned end (flushed size plus what is
    buffered for it). Appends only copy the framed record into one write
    buffer; when the last segment has passed segment_bytes the record
    starts a new, planned segment that has no file yet. So the buffer is
    the pending bytes of a few segments, back to back, and wc_wal_flush
    walks them: one pwrite loop per segment, creating planned segments on
    the way (the finished segment is fdatasync'ed first and the directory
    fsync'ed after the create). If a write fails the segment is cut back
    to its flushed size, a segment made by this flush and left empty is
    unlinked, the buffer is dropped and last_seq is whatever reached the
    disk: the log never holds a hole or half a record that it knows of.

    Opening replays every segment in order with large buffered reads (one
    1 MiB pread at a time, not a read per record) and stops at the first
    record that is short, oversized, fails its CRC or is not the next seq
    (a segment's first record must also match the file name). The file is
    truncated there, later segments are removed, and each drop is logged
    with file, offset, bytes and reason, so an operator sees what a crash
    cost. Segments left without a record are removed too.

    A sparse index remembers (seq, segment, offset) about every 64 KiB of
    log. wc_wal_read finds the segment by binary search on first seq, the
    closest index entry by a second binary search, and scans forward from
    there, so a catch-up read costs at most ~64 KiB of scanning whatever
    its starting seq. Reads only look at flushed bytes.

    Not thread-safe: one owner calls everything.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "walcast.h"
#include "clock.h"
#include "crc32c.h"
#include "log.h"
#include "vfs.h"
#include "wal.h"

#define S_HEADER        16u                 /* len, crc, seq */
#define S_NAME_LEN      28u                 /* "wal-" + 20 digits + ".log" */
#define S_INDEX_EVERY   (64u * 1024u)       /* bytes of log between index entries */
#define S_REPLAY_CHUNK  (1024u * 1024u)     /* read size when replaying */
#define S_READ_CHUNK_MIN (64u * 1024u)      /* read sizes for wc_wal_read */
#define S_READ_CHUNK_MAX (1024u * 1024u)
#define S_READ_KEEP_MAX (4u * 1024u * 1024u)   /* bigger read buffers are freed after use */

//  One segment file, on disk or planned.
typedef struct {
    uint64_t first_seq;     /* seq of its first record; its file name */
    uint64_t last_seq;      /* seq of its last record, buffered ones too */
    uint64_t flushed_last;  /* seq of its last record on disk (first_seq - 1: none) */
    uint64_t size;          /* bytes on disk (flushed) */
    uint64_t end;           /* size plus the bytes buffered for it */
} s_segment_t;

//  One sparse index entry: where a record starts.
typedef struct {
    uint64_t seq;           /* its seq */
    uint64_t offset;        /* its offset in the segment file */
    size_t segment;         /* index of the segment in self->segs */
} s_index_t;

struct wc_wal {
    char *dir;              /* directory path, for logs */
    int dirfd;              /* the directory, for openat/unlinkat/fsync */
    size_t segment_bytes;   /* a segment that reaches this is finished */

    s_segment_t *segs;      /* segments by first seq; on-disk ones first */
    size_t nsegs;           /* segments, planned ones included */
    size_t nsegs_disk;      /* segments whose file exists */
    size_t segs_cap;        /* allocated entries in segs */

    int wfd;                /* last on-disk segment, O_RDWR; -1 when none */
    int rfd;                /* an older segment opened for reading; -1 */
    size_t rfd_seg;         /* which segment rfd is */

    uint8_t *wbuf;          /* framed records not yet flushed */
    size_t wlen;            /* bytes used in wbuf */
    size_t wcap;            /* bytes allocated in wbuf */

    uint8_t *rbuf;          /* read buffer, reused by replay and reads */
    size_t rcap;            /* bytes allocated in rbuf */

    s_index_t *index;       /* sparse index, ascending seq */
    size_t nindex;          /* entries used */
    size_t index_cap;       /* entries allocated */
    uint64_t since_index;   /* log bytes since the last index entry */

    uint64_t flushed_last;  /* last seq on disk; 0 when none */
    uint64_t unsynced;      /* bytes flushed since the last sync */
};

//  A forward reader over one segment file, through self->rbuf.
typedef struct {
    int fd;                 /* the segment */
    uint64_t file_end;      /* bytes of the file to look at */
    uint64_t buf_off;       /* file offset of rbuf [0] */
    size_t len;             /* valid bytes in rbuf */
    size_t pos;             /* next record starts at rbuf [pos] */
    size_t chunk;           /* how much to read at once */
} s_cursor_t;

//  What s_cursor_next found.
typedef enum {
    S_REC_OK = 0,           /* a whole record with a good CRC */
    S_REC_END,              /* clean end of the file */
    S_REC_SHORT,            /* a torn record: the file ends inside it */
    S_REC_BIG,              /* length field over WC_WAL_MAX_RECORD */
    S_REC_CRC,              /* CRC mismatch */
    S_REC_EIO,              /* read error (errno set) */
    S_REC_NOMEM             /* could not grow the buffer */
} s_rec_t;

static const char *s_rec_reasons [] = {
    "ok", "end", "torn record (file ends inside it)",
    "length field over WC_WAL_MAX_RECORD", "CRC mismatch",
    "read error", "out of memory"
};

//  One record as the cursor sees it.
typedef struct {
    uint64_t seq;
    uint64_t offset;        /* offset of its header in the file */
    const uint8_t *payload; /* inside rbuf, valid until the next read */
    size_t len;
} s_record_t;


//  --------------------------------------------------------------------
//  Small helpers

static void
s_put32 (uint8_t *p, uint32_t v)
{
    p [0] = (uint8_t) v;
    p [1] = (uint8_t) (v >> 8);
    p [2] = (uint8_t) (v >> 16);
    p [3] = (uint8_t) (v >> 24);
}

static void
s_put64 (uint8_t *p, uint64_t v)
{
    s_put32 (p, (uint32_t) v);
    s_put32 (p + 4, (uint32_t) (v >> 32));
}

static uint32_t
s_get32 (const uint8_t *p)
{
    return (uint32_t) p [0] | (uint32_t) p [1] << 8
         | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
}

static uint64_t
s_get64 (const uint8_t *p)
{
    return (uint64_t) s_get32 (p) | (uint64_t) s_get32 (p + 4) << 32;
}

//  The file name of the segment that starts at seq; buf holds 32 bytes.
static const char *
s_segment_name (char *buf, uint64_t seq)
{
    snprintf (buf, 32, "wal-%020llu.log", (unsigned long long) seq);
    return buf;
}

//  Parse a segment file name; returns its first seq, or 0 when the name
//  is not exactly wal-<20 digits>.log (or names seq 0, which cannot be).
static uint64_t
s_parse_name (const char *name)
{
    if (strlen (name) != S_NAME_LEN
    ||  memcmp (name, "wal-", 4) != 0
    ||  memcmp (name + 24, ".log", 4) != 0)
        return 0;
    uint64_t seq = 0;
    for (int i = 4; i < 24; i++) {
        if (name [i] < '0' || name [i] > '9')
            return 0;
        uint64_t digit = (uint64_t) (name [i] - '0');
        if (seq > (UINT64_MAX - digit) / 10)
            return 0;
        seq = seq * 10 + digit;
    }
    return seq;
}

//  Grow *buf to at least need bytes (doubling). Returns 0 or -1.
static int
s_reserve (uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t cap_new = *cap ? *cap : 4096;
    while (cap_new < need)
        cap_new *= 2;
    uint8_t *grown = (uint8_t *) realloc (*buf, cap_new);
    if (!grown)
        return -1;
    *buf = grown;
    *cap = cap_new;
    return 0;
}

//  Make sure segs can hold one more entry. Returns 0 or -1.
static int
s_segs_reserve (wc_wal_t *self)
{
    if (self->nsegs < self->segs_cap)
        return 0;
    size_t cap_new = self->segs_cap ? self->segs_cap * 2 : 16;
    s_segment_t *grown = (s_segment_t *) realloc (self->segs, cap_new * sizeof *grown);
    if (!grown)
        return -1;
    self->segs = grown;
    self->segs_cap = cap_new;
    return 0;
}

//  Count a record of total framed bytes starting at (segment, offset) and
//  add an index entry when S_INDEX_EVERY bytes have gone by since the
//  last one. The index is a hint: when it cannot grow it just stays
//  sparser.
static void
s_index_note (wc_wal_t *self, uint64_t seq, size_t segment, uint64_t offset,
              size_t total)
{
    if (self->since_index >= S_INDEX_EVERY) {
        if (self->nindex == self->index_cap) {
            size_t cap_new = self->index_cap ? self->index_cap * 2 : 256;
            s_index_t *grown = (s_index_t *) realloc (self->index,
                                                      cap_new * sizeof *grown);
            if (!grown)
                goto count;
            self->index = grown;
            self->index_cap = cap_new;
        }
        self->index [self->nindex].seq = seq;
        self->index [self->nindex].offset = offset;
        self->index [self->nindex].segment = segment;
        self->nindex++;
        self->since_index = 0;
    }
count:
    self->since_index += total;
}

//  Write all of buf at offset, looping over partial writes and EINTR.
//  Returns 0, or -1 with errno set.
static int
s_pwrite_all (int fd, const uint8_t *buf, size_t len, uint64_t offset)
{
    while (len > 0) {
        ssize_t n = wc_vfs_pwrite (fd, buf, len, (off_t) offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        buf += n;
        len -= (size_t) n;
        offset += (uint64_t) n;
    }
    return 0;
}

//  --------------------------------------------------------------------
//  Reading records: a cursor over one segment file

static void
s_cursor_init (s_cursor_t *cur, int fd, uint64_t offset, uint64_t file_end,
               size_t chunk)
{
    cur->fd = fd;
    cur->file_end = file_end;
    cur->buf_off = offset;
    cur->len = 0;
    cur->pos = 0;
    cur->chunk = chunk;
}

//  Make rbuf hold at least need bytes from cur->pos on, reading up to a
//  chunk at a time but never past file_end. Returns 1 when it does, 0
//  when the file ends first, -1 on a read error (errno set), -2 when out
//  of memory.
static int
s_cursor_fill (wc_wal_t *self, s_cursor_t *cur, size_t need)
{
    if (cur->len - cur->pos >= need)
        return 1;
    uint64_t have_end = cur->buf_off + cur->len;
    if (cur->buf_off + cur->pos + need > cur->file_end)
        return 0;
    //  Keep the unread tail, at the start of the buffer.
    if (cur->pos > 0) {
        memmove (self->rbuf, self->rbuf + cur->pos, cur->len - cur->pos);
        cur->len -= cur->pos;
        cur->buf_off += cur->pos;
        cur->pos = 0;
    }
    size_t want = need > cur->chunk ? need : cur->chunk;
    if (s_reserve (&self->rbuf, &self->rcap, want) != 0)
        return -2;
    //  Read as much as fits, up to the end of what we may look at.
    uint64_t left = cur->file_end - have_end;
    size_t room = self->rcap - cur->len;
    size_t goal = left < room ? (size_t) left : room;
    size_t got = 0;
    while (cur->len < need && got < goal) {
        ssize_t n = wc_vfs_pread (cur->fd, self->rbuf + cur->len, goal - got,
                           (off_t) (have_end + got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;          //  file shorter than we thought
        got += (size_t) n;
        cur->len += (size_t) n;
    }
    return cur->len >= need ? 1 : 0;
}

//  Read the next record. On S_REC_OK fills rec and moves past it; on
//  anything else rec->offset says where the bad record starts.
static s_rec_t
s_cursor_next (wc_wal_t *self, s_cursor_t *cur, s_record_t *rec)
{
    rec->offset = cur->buf_off + cur->pos;
    if (rec->offset >= cur->file_end)
        return S_REC_END;
    int rc = s_cursor_fill (self, cur, S_HEADER);
    if (rc == 0)
        return S_REC_SHORT;
    if (rc < 0)
        return rc == -1 ? S_REC_EIO : S_REC_NOMEM;
    const uint8_t *head = self->rbuf + cur->pos;
    uint32_t len = s_get32 (head);
    uint32_t crc = s_get32 (head + 4);
    if (len > WC_WAL_MAX_RECORD)
        return S_REC_BIG;
    rc = s_cursor_fill (self, cur, S_HEADER + len);
    if (rc == 0)
        return S_REC_SHORT;
    if (rc < 0)
        return rc == -1 ? S_REC_EIO : S_REC_NOMEM;
    head = self->rbuf + cur->pos;       //  the buffer may have moved
    if (wc_crc32c (0, head + 8, 8 + (size_t) len) != crc)
        return S_REC_CRC;
    rec->seq = s_get64 (head + 8);
    rec->payload = head + S_HEADER;
    rec->len = len;
    cur->pos += S_HEADER + len;
    return S_REC_OK;
}


//  --------------------------------------------------------------------
//  Opening and recovery

static int
s_seq_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a;
    uint64_t y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

//  List the segment files of the directory, ascending. Sets *seqs (to be
//  freed) and *count. Returns 0, or -1 with errno set.
static int
s_list_segments (wc_wal_t *self, uint64_t **seqs, size_t *count)
{
    *seqs = NULL;
    *count = 0;
    int fd = wc_vfs_dup (self->dirfd);
    if (fd < 0)
        return -1;
    DIR *dir = fdopendir (fd);
    if (!dir) {
        close (fd);
        return -1;
    }
    rewinddir (dir);
    size_t cap = 0;
    struct dirent *entry;
    int rc = 0;
    while ((entry = readdir (dir))) {
        uint64_t seq = s_parse_name (entry->d_name);
        if (seq == 0)
            continue;       //  not ours
        if (*count == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *grown = (uint64_t *) realloc (*seqs, cap * sizeof *grown);
            if (!grown) {
                errno = ENOMEM;
                rc = -1;
                break;
            }
            *seqs = grown;
        }
        (*seqs) [(*count)++] = seq;
    }
    closedir (dir);
    if (rc == 0 && *count > 1)
        qsort (*seqs, *count, sizeof **seqs, s_seq_compare);
    return rc;
}

//  Remove a segment file and log why. Returns 0 or -1 (logged).
static int
s_remove_segment (wc_wal_t *self, uint64_t seq, uint64_t bytes, const char *why)
{
    char name [32];
    s_segment_name (name, seq);
    if (wc_vfs_unlinkat (self->dirfd, name, 0) != 0) {
        wc_log_error ("wal %s: cannot remove %s: %s", self->dir, name, strerror (errno));
        return -1;
    }
    wc_log_warn ("wal %s: removed %s (%llu bytes): %s",
                 self->dir, name, (unsigned long long) bytes, why);
    return 0;
}

//  Replay one segment file (fd, named first_seq) from its start, calling
//  fn for each good record, filling in the segment entry and the index.
//  *expect is the seq the next record must have and moves on. Returns 0
//  at the end of the file or at a bad record (then *bad is set, with
//  *bad_off and reason), else WALCAST_EIO, WALCAST_ENOMEM or fn's own
//  non-zero return.
static int
s_replay_segment (wc_wal_t *self, int fd, s_segment_t *seg, uint64_t file_size,
                  uint64_t *expect, wc_wal_record_fn *fn, void *arg, bool *bad,
                  uint64_t *bad_off, char *reason, size_t reason_size)
{
    *bad = false;
    s_cursor_t cur;
    s_cursor_init (&cur, fd, 0, file_size, S_REPLAY_CHUNK);
    size_t segment = self->nsegs - 1;
    while (true) {
        s_record_t rec;
        s_rec_t found = s_cursor_next (self, &cur, &rec);
        if (found == S_REC_END)
            return 0;
        if (found == S_REC_EIO) {
            char name [32];
            wc_log_error ("wal %s: cannot read %s at offset %llu: %s", self->dir,
                          s_segment_name (name, seg->first_seq),
                          (unsigned long long) rec.offset, strerror (errno));
            return WALCAST_EIO;
        }
        if (found == S_REC_NOMEM)
            return WALCAST_ENOMEM;
        if (found == S_REC_OK && rec.seq != *expect) {
            snprintf (reason, reason_size, "out-of-sequence record (seq %llu, expected %llu)",
                      (unsigned long long) rec.seq, (unsigned long long) *expect);
            *bad_off = rec.offset;
            *bad = true;
            return 0;
        }
        if (found != S_REC_OK) {
            snprintf (reason, reason_size, "%s", s_rec_reasons [found]);
            *bad_off = rec.offset;
            *bad = true;
            return 0;
        }
        if (fn) {
            int rc = fn (arg, rec.seq, rec.payload, rec.len);
            if (rc != 0)
                return rc;
        }
        s_index_note (self, rec.seq, segment, rec.offset, S_HEADER + rec.len);
        seg->last_seq = seg->flushed_last = rec.seq;
        seg->size = seg->end = rec.offset + S_HEADER + rec.len;
        (*expect)++;
    }
}

//  Remove segments seqs [from..count-1], the last first, counting them in
//  info. Returns 0 or WALCAST_EIO (logged).
static int
s_remove_later (wc_wal_t *self, const uint64_t *seqs, size_t from, size_t count,
                const char *why, wc_wal_info_t *info)
{
    for (size_t k = count; k-- > from; ) {
        char name [32];
        struct stat st;
        s_segment_name (name, seqs [k]);
        uint64_t bytes = fstatat (self->dirfd, name, &st, 0) == 0
                       ? (uint64_t) st.st_size : 0;
        if (s_remove_segment (self, seqs [k], bytes, why) != 0)
            return WALCAST_EIO;
        if (info)
            info->removed_segments++;
    }
    return 0;
}

//  Replay every segment, cut the log at the first bad record, leave the
//  last segment open in wfd. Returns 0 or a WALCAST_E* code.
static int
s_recover (wc_wal_t *self, wc_wal_record_fn *fn, void *arg, wc_wal_info_t *info)
{
    uint64_t *seqs;
    size_t count;
    if (s_list_segments (self, &seqs, &count) != 0) {
        wc_log_error ("wal %s: cannot list directory: %s", self->dir, strerror (errno));
        return errno == ENOMEM ? WALCAST_ENOMEM : WALCAST_EIO;
    }
    int rc = 0;
    uint64_t expect = count ? seqs [0] : 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        char name [32];
        s_segment_name (name, seqs [i]);
        if (seqs [i] != expect) {
            //  A gap or an overlap: this segment and the later ones cannot
            //  follow what we have.
            char why [96];
            snprintf (why, sizeof why, "the log ends at seq %llu and %s does not follow it",
                      (unsigned long long) (expect - 1), name);
            rc = s_remove_later (self, seqs, i, count, why, info);
            break;
        }
        int fd = wc_vfs_openat (self->dirfd, name, O_RDWR | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat (fd, &st) != 0) {
            wc_log_error ("wal %s: cannot open %s: %s", self->dir, name, strerror (errno));
            if (fd >= 0)
                close (fd);
            rc = WALCAST_EIO;
            break;
        }
        if (s_segs_reserve (self) != 0) {
            close (fd);
            rc = WALCAST_ENOMEM;
            break;
        }
        s_segment_t *seg = &self->segs [self->nsegs++];
        seg->first_seq = seqs [i];
        seg->last_seq = seg->flushed_last = seqs [i] - 1;
        seg->size = seg->end = 0;

        bool bad;
        uint64_t bad_off = 0;
        char reason [128] = "";
        rc = s_replay_segment (self, fd, seg, (uint64_t) st.st_size, &expect,
                               fn, arg, &bad, &bad_off, reason, sizeof reason);
        if (rc == 0 && bad) {
            //  Cut here: truncate this file and drop every later one.
            uint64_t dropped = (uint64_t) st.st_size - bad_off;
            wc_log_warn ("wal %s: %s: %s at offset %llu; dropping %llu bytes "
                         "from there (log now ends at seq %llu)",
                         self->dir, name, reason, (unsigned long long) bad_off,
                         (unsigned long long) dropped,
                         (unsigned long long) (expect - 1));
            if (info)
                info->truncated_bytes += dropped;
            if (wc_vfs_ftruncate (fd, (off_t) bad_off) != 0 || wc_vfs_fsync (fd) != 0) {
                wc_log_error ("wal %s: cannot truncate %s to %llu bytes: %s",
                              self->dir, name, (unsigned long long) bad_off,
                              strerror (errno));
                rc = WALCAST_EIO;
            }
            if (rc == 0) {
                char why [96];
                snprintf (why, sizeof why, "follows a bad record in %s", name);
                rc = s_remove_later (self, seqs, i + 1, count, why, info);
            }
            count = i + 1;
        }
        if (rc != 0)
            close (fd);
        else
        if (seg->size == 0) {
            //  Nothing valid in it: a file without records has no place.
            close (fd);
            self->nsegs--;
            if (s_remove_segment (self, seqs [i], 0, "holds no valid record") != 0)
                rc = WALCAST_EIO;
        }
        else
        if (i + 1 < count)
            close (fd);
        else
            self->wfd = fd;
    }
    free (seqs);
    if (rc == 0 && wc_vfs_fsync (self->dirfd) != 0) {
        wc_log_error ("wal %s: cannot fsync directory: %s", self->dir, strerror (errno));
        rc = WALCAST_EIO;
    }
    self->nsegs_disk = self->nsegs;
    if (self->nsegs)
        self->flushed_last = self->segs [self->nsegs - 1].last_seq;
    return rc;
}

wc_wal_t *
wc_wal_open (const char *dir, size_t segment_bytes, wc_wal_record_fn *fn,
             void *arg, wc_wal_info_t *info, int *err)
{
    int err_local;
    if (!err)
        err = &err_local;
    if (info)
        memset (info, 0, sizeof *info);
    if (!dir || !*dir) {
        *err = WALCAST_EINVAL;
        return NULL;
    }
    wc_wal_t *self = (wc_wal_t *) calloc (1, sizeof *self);
    if (!self || !(self->dir = strdup (dir))) {
        free (self);
        *err = WALCAST_ENOMEM;
        return NULL;
    }
    self->dirfd = -1;
    self->wfd = -1;
    self->rfd = -1;
    self->segment_bytes = segment_bytes ? segment_bytes : WC_WAL_SEGMENT_BYTES_DEFAULT;

    if (wc_vfs_mkdirs (dir, 0755) != 0
    ||  (self->dirfd = wc_vfs_open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        wc_log_error ("wal %s: cannot open directory: %s", dir, strerror (errno));
        *err = WALCAST_EIO;
        wc_wal_destroy (&self);
        return NULL;
    }
    int64_t started = wc_clock_us ();
    int rc = s_recover (self, fn, arg, info);
    //  The replay buffer is big; reads start small again.
    free (self->rbuf);
    self->rbuf = NULL;
    self->rcap = 0;
    if (rc != 0) {
        *err = rc;
        wc_wal_destroy (&self);
        return NULL;
    }
    uint64_t records = self->nsegs
                     ? self->flushed_last - self->segs [0].first_seq + 1 : 0;
    if (info) {
        info->records = records;
        info->first_seq = wc_wal_first_seq (self);
        info->last_seq = wc_wal_last_seq (self);
    }
    wc_log_info ("wal %s: opened, %llu records (seq %llu..%llu) in %zu segments, "
                 "replayed in %.3f s", dir, (unsigned long long) records,
                 (unsigned long long) wc_wal_first_seq (self),
                 (unsigned long long) wc_wal_last_seq (self), self->nsegs,
                 (double) (wc_clock_us () - started) / 1e6);
    *err = 0;
    return self;
}

void
wc_wal_destroy (wc_wal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wc_wal_t *self = *self_p;
    //  Like fclose: write what is buffered (no sync); a failure is logged.
    if (self->wlen > 0)
        wc_wal_flush (self);
    if (self->wfd >= 0)
        close (self->wfd);
    if (self->rfd >= 0)
        close (self->rfd);
    if (self->dirfd >= 0)
        close (self->dirfd);
    free (self->dir);
    free (self->segs);
    free (self->wbuf);
    free (self->rbuf);
    free (self->index);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------
//  Appending and flushing

int
wc_wal_append (wc_wal_t *self, uint64_t seq, const void *payload, size_t len)
{
    uint64_t last = wc_wal_last_seq (self);
    if (seq == 0 || (last != 0 && seq != last + 1))
        return WALCAST_EINVAL;
    if (len > WC_WAL_MAX_RECORD || (len > 0 && !payload))
        return WALCAST_EINVAL;
    size_t total = S_HEADER + len;
    if (s_reserve (&self->wbuf, &self->wcap, self->wlen + total) != 0)
        return WALCAST_ENOMEM;

    //  A record goes to the last segment unless it is full (or missing):
    //  then it starts a planned segment, created at the next flush.
    if (self->nsegs == 0
    ||  self->segs [self->nsegs - 1].end >= self->segment_bytes) {
        if (s_segs_reserve (self) != 0)
            return WALCAST_ENOMEM;
        s_segment_t *seg = &self->segs [self->nsegs++];
        seg->first_seq = seq;
        seg->last_seq = seg->flushed_last = seq - 1;
        seg->size = seg->end = 0;
    }
    s_segment_t *seg = &self->segs [self->nsegs - 1];
    uint8_t *p = self->wbuf + self->wlen;
    s_put32 (p, (uint32_t) len);
    s_put64 (p + 8, seq);
    if (len > 0)
        memcpy (p + S_HEADER, payload, len);
    s_put32 (p + 4, wc_crc32c (0, p + 8, 8 + len));
    s_index_note (self, seq, self->nsegs - 1, seg->end, total);
    self->wlen += total;
    seg->end += total;
    seg->last_seq = seq;
    return 0;
}

//  Make the planned segment i a file: sync and close the finished one,
//  create the new one, fsync the directory. Returns 0, or -1 with errno
//  set and a logged message; on -1 after the create the file exists and
//  is counted in nsegs_disk (the caller cleans it up).
static int
s_create_segment (wc_wal_t *self, size_t i)
{
    char name [32];
    s_segment_name (name, self->segs [i].first_seq);
    if (self->wfd >= 0 && wc_vfs_fdatasync (self->wfd) != 0) {
        wc_log_error ("wal %s: cannot sync finished segment before %s: %s",
                      self->dir, name, strerror (errno));
        return -1;
    }
    int fd = wc_vfs_openat (self->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        wc_log_error ("wal %s: cannot create %s: %s", self->dir, name, strerror (errno));
        return -1;
    }
    if (self->wfd >= 0)
        wc_vfs_close (self->wfd);
    self->wfd = fd;
    self->unsynced = 0;
    self->nsegs_disk = i + 1;
    if (wc_vfs_fsync (self->dirfd) != 0) {
        wc_log_error ("wal %s: cannot fsync directory after creating %s: %s",
                      self->dir, name, strerror (errno));
        return -1;
    }
    return 0;
}

//  Open the last on-disk segment for writing when it is not (after an
//  earlier failure). Returns 0 or -1 (logged).
static int
s_reopen_current (wc_wal_t *self)
{
    char name [32];
    s_segment_name (name, self->segs [self->nsegs_disk - 1].first_seq);
    self->wfd = wc_vfs_openat (self->dirfd, name, O_RDWR | O_CLOEXEC);
    if (self->wfd < 0) {
        wc_log_error ("wal %s: cannot open %s: %s", self->dir, name, strerror (errno));
        return -1;
    }
    return 0;
}

//  A flush failed in segment i: cut that file back to its flushed size
//  (removing it when this flush created it and nothing of it remains),
//  forget the planned segments and every buffered record.
static void
s_flush_failed (wc_wal_t *self, size_t i, bool created)
{
    char name [32];
    if (i < self->nsegs_disk && self->wfd >= 0) {
        s_segment_t *seg = &self->segs [i];
        s_segment_name (name, seg->first_seq);
        if (wc_vfs_ftruncate (self->wfd, (off_t) seg->size) != 0)
            wc_log_error ("wal %s: cannot cut %s back to %llu bytes: %s", self->dir,
                          name, (unsigned long long) seg->size, strerror (errno));
        if (created && seg->size == 0) {
            wc_vfs_close (self->wfd);
            self->wfd = -1;
            if (wc_vfs_unlinkat (self->dirfd, name, 0) != 0 || wc_vfs_fsync (self->dirfd) != 0)
                wc_log_error ("wal %s: cannot remove empty %s: %s", self->dir,
                              name, strerror (errno));
            else
                self->nsegs_disk--;
        }
    }
    self->nsegs = self->nsegs_disk;
    if (self->nsegs) {
        s_segment_t *last = &self->segs [self->nsegs - 1];
        last->end = last->size;
        last->last_seq = last->flushed_last;
    }
    self->flushed_last = self->nsegs ? self->segs [self->nsegs - 1].flushed_last : 0;
    if (self->rfd >= 0 && self->rfd_seg >= self->nsegs_disk) {
        close (self->rfd);
        self->rfd = -1;
    }
    while (self->nindex > 0 && self->index [self->nindex - 1].seq > self->flushed_last)
        self->nindex--;
    self->wlen = 0;
}

//  Write the buffered bytes of segment i (at wbuf + off), creating its
//  file first when it is a planned one (*created says so). Returns 0 or
//  -1 (logged).
static int
s_flush_segment (wc_wal_t *self, size_t i, size_t off, bool *created)
{
    s_segment_t *seg = &self->segs [i];
    *created = false;
    if (i >= self->nsegs_disk) {
        *created = true;
        if (s_create_segment (self, i) != 0)
            return -1;
    }
    size_t n = (size_t) (seg->end - seg->size);
    if (n == 0)
        return 0;
    if (self->wfd < 0 && s_reopen_current (self) != 0)
        return -1;
    if (s_pwrite_all (self->wfd, self->wbuf + off, n, seg->size) != 0) {
        char name [32];
        wc_log_error ("wal %s: cannot write %zu bytes (seq %llu..%llu) to %s at offset %llu: %s",
                      self->dir, n, (unsigned long long) seg->flushed_last + 1,
                      (unsigned long long) seg->last_seq,
                      s_segment_name (name, seg->first_seq),
                      (unsigned long long) seg->size, strerror (errno));
        return -1;
    }
    seg->size = seg->end;
    seg->flushed_last = seg->last_seq;
    self->flushed_last = seg->last_seq;
    self->unsynced += n;
    return 0;
}

int
wc_wal_flush (wc_wal_t *self)
{
    if (self->wlen == 0)
        return 0;
    size_t off = 0;
    size_t start = self->nsegs_disk ? self->nsegs_disk - 1 : 0;
    uint64_t first_pending = self->segs [start].flushed_last + 1;
    for (size_t i = start; i < self->nsegs; i++) {
        size_t n = (size_t) (self->segs [i].end - self->segs [i].size);
        bool created;
        if (s_flush_segment (self, i, off, &created) != 0) {
            uint64_t lost_from = self->flushed_last >= first_pending
                               ? self->flushed_last + 1 : first_pending;
            uint64_t lost_to = self->segs [self->nsegs - 1].last_seq;
            s_flush_failed (self, i, created);
            wc_log_error ("wal %s: flush failed, records %llu..%llu dropped; "
                          "log ends at seq %llu", self->dir,
                          (unsigned long long) lost_from, (unsigned long long) lost_to,
                          (unsigned long long) self->flushed_last);
            return WALCAST_EIO;
        }
        off += n;
    }
    self->wlen = 0;
    return 0;
}

int
wc_wal_sync (wc_wal_t *self)
{
    if (self->wfd < 0 || self->unsynced == 0)
        return 0;
    if (wc_vfs_fdatasync (self->wfd) != 0) {
        wc_log_error ("wal %s: fdatasync failed: %s", self->dir, strerror (errno));
        return WALCAST_EIO;
    }
    self->unsynced = 0;
    return 0;
}

uint64_t
wc_wal_first_seq (const wc_wal_t *self)
{
    return self->nsegs ? self->segs [0].first_seq : 0;
}

uint64_t
wc_wal_last_seq (const wc_wal_t *self)
{
    return self->nsegs ? self->segs [self->nsegs - 1].last_seq : 0;
}

uint64_t
wc_wal_unsynced_bytes (const wc_wal_t *self)
{
    return self->unsynced;
}


//  --------------------------------------------------------------------
//  Reading

//  A descriptor to read on-disk segment i: the write one for the last
//  segment, else one cached read-only descriptor. Returns -1 (logged).
static int
s_read_fd (wc_wal_t *self, size_t i)
{
    if (i + 1 == self->nsegs_disk && self->wfd >= 0)
        return self->wfd;
    if (self->rfd >= 0 && self->rfd_seg == i)
        return self->rfd;
    if (self->rfd >= 0)
        close (self->rfd);
    char name [32];
    s_segment_name (name, self->segs [i].first_seq);
    self->rfd = wc_vfs_openat (self->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (self->rfd < 0)
        wc_log_error ("wal %s: cannot open %s: %s", self->dir, name, strerror (errno));
    self->rfd_seg = i;
    return self->rfd;
}

//  Where to start scanning for from_seq: the segment, and the offset and
//  seq of the closest record at or before it that we know of.
static void
s_locate (const wc_wal_t *self, uint64_t from_seq, size_t *segment,
          uint64_t *offset, uint64_t *seq)
{
    //  Last on-disk segment whose first seq is <= from_seq.
    size_t lo = 0, hi = self->nsegs_disk;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->segs [mid].first_seq <= from_seq)
            lo = mid;
        else
            hi = mid;
    }
    *segment = lo;
    *offset = 0;
    *seq = self->segs [lo].first_seq;
    //  Last index entry whose seq is <= from_seq; use it if in that segment.
    size_t ilo = 0, ihi = self->nindex;
    while (ilo < ihi) {
        size_t mid = ilo + (ihi - ilo) / 2;
        if (self->index [mid].seq <= from_seq)
            ilo = mid + 1;
        else
            ihi = mid;
    }
    if (ilo > 0 && self->index [ilo - 1].segment == lo) {
        *offset = self->index [ilo - 1].offset;
        *seq = self->index [ilo - 1].seq;
    }
}

/*  Records from from_seq on, until their payloads reach max_bytes (so the
    last one may pass it, as wc_limits.h allows for ENTRIES replies). fn may
    be NULL; when it returns non-zero the read stops there: a negative
    value is returned as is, a positive one returns the count so far
    (that record included). A record that is damaged on disk is logged
    and gives WALCAST_EIO, unless records were read before it (their
    count is returned; the next read hits the error). */
static int
s_read (wc_wal_t *self, uint64_t from_seq, size_t max_bytes,
        wc_wal_record_fn *fn, void *arg)
{
    if (from_seq < wc_wal_first_seq (self))
        return WALCAST_ERANGE;
    if (self->flushed_last == 0 || from_seq > self->flushed_last)
        return 0;

    size_t segment;
    uint64_t offset, expect;
    s_locate (self, from_seq, &segment, &offset, &expect);
    size_t chunk = max_bytes > S_READ_CHUNK_MAX - S_READ_CHUNK_MIN
                 ? S_READ_CHUNK_MAX : max_bytes + S_READ_CHUNK_MIN;
    int count = 0;
    uint64_t bytes = 0;
    for (; segment < self->nsegs_disk; segment++, offset = 0) {
        s_segment_t *seg = &self->segs [segment];
        if (offset >= seg->size)
            continue;
        int fd = s_read_fd (self, segment);
        if (fd < 0)
            return count ? count : WALCAST_EIO;
        s_cursor_t cur;
        s_cursor_init (&cur, fd, offset, seg->size, chunk);
        while (true) {
            s_record_t rec;
            s_rec_t found = s_cursor_next (self, &cur, &rec);
            if (found == S_REC_END)
                break;
            if (found == S_REC_NOMEM)
                return count ? count : WALCAST_ENOMEM;
            if (found != S_REC_OK || rec.seq != expect) {
                char name [32];
                wc_log_error ("wal %s: %s damaged at offset %llu (%s, expected seq %llu)",
                              self->dir, s_segment_name (name, seg->first_seq),
                              (unsigned long long) rec.offset,
                              found == S_REC_EIO ? strerror (errno)
                              : found == S_REC_OK ? "wrong seq" : s_rec_reasons [found],
                              (unsigned long long) expect);
                return count ? count : WALCAST_EIO;
            }
            expect++;
            if (rec.seq < from_seq)
                continue;
            count++;
            bytes += rec.len;
            if (fn) {
                int rc = fn (arg, rec.seq, rec.payload, rec.len);
                if (rc < 0)
                    return rc;
                if (rc > 0)
                    return count;
            }
            if (bytes >= max_bytes || count == INT32_MAX)
                return count;
        }
    }
    return count;
}

int
wc_wal_read (wc_wal_t *self, uint64_t from_seq, size_t max_bytes,
             wc_wal_record_fn *fn, void *arg)
{
    int rc = s_read (self, from_seq, max_bytes, fn, arg);
    //  A huge record grew the buffer: do not keep that much around.
    if (self->rcap > S_READ_KEEP_MAX) {
        free (self->rbuf);
        self->rbuf = NULL;
        self->rcap = 0;
    }
    return rc;
}
