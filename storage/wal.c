/*  wal.c - the write-ahead log: segmented, append-only, checksummed files.

    On disk a WAL is a directory of segments, wal-<first seq>.log, each a
    run of records framed as len:u32le | crc:u32le | seq:u64le | payload,
    with crc = CRC32C over the 8 seq bytes and the payload. Sequence
    numbers go up by one from record to record and from segment to
    segment; a segment's name is the seq of its first record. Other files
    in the directory are left alone. Every file operation goes through the
    vfs layer (vfs.h), so tests can fail any of them.

    In memory the log is a list of segments. Each knows its size on disk
    (whole records only) and its planned end (size plus what is buffered
    for it). Appends only copy the framed record into one write buffer;
    when the last segment has passed segment_bytes the record starts a
    planned segment that has no file yet. wc_wal_flush walks the buffer
    segment by segment: create the file if it is planned, one pwrite loop.

    The commit contract. When a create or a write fails, the records that
    reached the file whole stay (the buffer is walked record by record to
    find them), a partial record is cut back with ftruncate, a segment
    created by this flush that holds no whole record is unlinked, and the
    rest of the buffer is dropped: the log then holds exactly the records
    up to wc_wal_written and appends go on from there. A cut or an unlink
    that fails too is remembered as a debt that the next flush pays before
    it writes anything, so a leftover never sits under new records. The
    error comes back as WALCAST_ENOSPC or WALCAST_EIO with the reason in
    wc_wal_last_error, and nothing is logged: the caller logs an episode
    once. Flushing never syncs. Each segment remembers that it was
    written since the last sync, and the directory that files came or
    went; wc_wal_sync_job hands descriptors of exactly those (a duplicate
    of the current segment and of the directory, the very descriptors of
    finished segments, which the log keeps open until then) to whoever
    syncs, with the seq they make durable.

    Opening replays every segment in order with large buffered reads and
    stops at the first record that is short, oversized, fails its CRC, is
    not the next seq, or whose payload the caller rejects. What happens
    then depends on what follows. A scan of the rest of that segment looks
    for a valid record of a plausible later seq (the seq field is compared
    before any CRC is computed, and a record at offset p after the bad one
    at b can be at most (p - b) / 16 seqs further, so the scan is cheap and
    junk rarely even reaches a CRC). None found in the last segment: a
    torn tail, cut there and logged. Found, or in any earlier segment, or
    a missing segment: damage in the middle, and nothing on disk changes.
    Replay stops before it, the records after it are scanned (without the
    callback) for the seq range they hold, the open succeeds, and the log
    refuses appends until wc_wal_set_aside moves the damaged part into
    *.damaged files: copy and cut the segment holding the first seq set
    aside, rename every later file, sync it all.

    A sparse index remembers (seq, segment, offset) about every 64 KiB of
    log. wc_wal_read finds the segment by binary search on first seq, the
    closest index entry by a second binary search, and scans forward from
    there, so a catch-up read costs at most ~64 KiB of scanning whatever
    its starting seq. Reads only look at written bytes.

    Not thread-safe: one owner calls everything.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "walcast.h"
#include "clock.h"
#include "crc32c.h"
#include "log.h"
#include "vfs.h"
#include "wal.h"

#define S_HEADER        16u                 /* len, crc, seq */
#define S_NAME_LEN      28u                 /* "wal-" + 20 digits + ".log" */
#define S_NAME_SIZE     32u                 /* a segment name and its NUL */
#define S_INDEX_EVERY   (64u * 1024u)       /* bytes of log between index entries */
#define S_REPLAY_CHUNK  (1024u * 1024u)     /* read size when replaying */
#define S_SCAN_CHUNK    (1024u * 1024u)     /* read size when scanning for a record */
#define S_COPY_CHUNK    (1024u * 1024u)     /* read size when copying a segment aside */
#define S_READ_CHUNK_MIN (64u * 1024u)      /* read sizes for wc_wal_read */
#define S_READ_CHUNK_MAX (1024u * 1024u)
#define S_READ_KEEP_MAX (4u * 1024u * 1024u)   /* bigger read buffers are freed after use */
#define S_WRITE_KEEP_MAX (4u * 1024u * 1024u)  /* and bigger write buffers once written */

//  One segment file, on disk or planned.
typedef struct {
    uint64_t first_seq;     /* seq of its first record; its file name */
    uint64_t last_seq;      /* its last record, buffered ones too (first_seq - 1: none) */
    uint64_t flushed_last;  /* its last record wholly on disk */
    uint64_t size;          /* bytes on disk: whole records only */
    uint64_t end;           /* size plus the bytes buffered for it */
    int fd;                 /* O_RDWR, or -1: open for the last on-disk segment
                               and for older ones until a sync covers them */
    bool unsynced;          /* written since the last sync job or sync */
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

    int rfd;                /* an older segment opened for reading; -1 */
    size_t rfd_seg;         /* which segment rfd is */

    uint8_t *wbuf;          /* framed records not yet written */
    size_t wlen;            /* bytes used in wbuf */
    size_t wcap;            /* bytes allocated in wbuf */

    uint8_t *rbuf;          /* read buffer, reused by replay and reads */
    size_t rcap;            /* bytes allocated in rbuf */

    s_index_t *index;       /* sparse index, ascending seq */
    size_t nindex;          /* entries used */
    size_t index_cap;       /* entries allocated */
    uint64_t since_index;   /* log bytes since the last index entry */

    uint64_t flushed_last;  /* last seq wholly written; 0 when none */
    uint64_t unsynced;      /* bytes written since the last sync job or sync */
    bool dir_unsynced;      /* files created or removed since then */
    bool cut_pending;       /* the last on-disk segment may hold a partial
                               record past its size (a cut failed) */
    char unlink_pending [S_NAME_SIZE];  /* an empty segment a failed flush
                                           could not remove; "" when none */
    bool damaged;           /* appends refused until a set-aside works */
    char damage [320];      /* why, for the error of a refused append */
    char error [320];       /* wc_wal_last_error */
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

//  What recovery is working on: the file list and the file being replayed.
typedef struct {
    const uint64_t *seqs;   /* segment files, ascending first seq */
    size_t count;           /* how many */
    size_t i;               /* the one being replayed */
    char name [S_NAME_SIZE];    /* its name */
    int fd;                 /* its descriptor */
    uint64_t size;          /* its size */
    uint64_t expect;        /* the seq the next record must have */
    wc_wal_record_fn *fn;   /* the replay callback */
    void *arg;              /* its argument */
    wc_wal_info_t *info;    /* what the open reports */
} s_recovery_t;


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

//  The file name of the segment that starts at seq.
static const char *
s_segment_name (char *buf, uint64_t seq)
{
    snprintf (buf, S_NAME_SIZE, "wal-%020llu.log", (unsigned long long) seq);
    return buf;
}

//  Parse a segment file name; returns its first seq, or 0 when the name
//  is not exactly wal-<20 digits>.log (or names seq 0, which cannot be).
//  So wal-...log.damaged and every other file is not ours.
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

//  The log ends at flushed_last and has nsegs segments: drop the index
//  entries and the cached read descriptor that point past that.
static void
s_forget_past_end (wc_wal_t *self)
{
    while (self->nindex > 0
       && (self->index [self->nindex - 1].seq > self->flushed_last
       ||  self->index [self->nindex - 1].segment >= self->nsegs))
        self->nindex--;
    if (self->rfd >= 0 && self->rfd_seg >= self->nsegs_disk) {
        wc_vfs_close (self->rfd);
        self->rfd = -1;
    }
}

//  The WALCAST_E* code for a failed file operation's errno.
static int
s_code (int err)
{
    return err == ENOSPC || err == EDQUOT || err == EFBIG ? WALCAST_ENOSPC : WALCAST_EIO;
}

//  Set the reason of the last failure and return the code for errno err.
static int
s_fail (wc_wal_t *self, int err, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (wc_wal_t *self, int err, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, args);
    va_end (args);
    return s_code (err);
}

//  Read len bytes at offset (fewer only at the end of the file). Returns
//  the bytes read, or -1 with errno set.
static ssize_t
s_pread_all (int fd, uint8_t *buf, size_t len, uint64_t offset)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = wc_vfs_pread (fd, buf + got, len - got, (off_t) (offset + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t) n;
    }
    return (ssize_t) got;
}

//  Write all of len bytes at offset. Returns 0, or -1 with errno set.
static int
s_pwrite_all (int fd, const uint8_t *buf, size_t len, uint64_t offset)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = wc_vfs_pwrite (fd, buf + done, len - done, (off_t) (offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        done += (size_t) n;
    }
    return 0;
}

//  The descriptor of on-disk segment i for writing, opening it when it
//  has none (the last segment after an empty one was removed). Returns
//  -1 with the reason set.
static int
s_segment_fd (wc_wal_t *self, size_t i)
{
    s_segment_t *seg = &self->segs [i];
    if (seg->fd < 0) {
        char name [S_NAME_SIZE];
        s_segment_name (name, seg->first_seq);
        seg->fd = wc_vfs_openat (self->dirfd, name, O_RDWR | O_CLOEXEC);
        if (seg->fd < 0)
            s_fail (self, errno, "cannot open %s: %s", name, strerror (errno));
    }
    return seg->fd;
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
//  Finding valid records after a bad one

//  Is the record whose header is at buf [i] (file offset p, length len)
//  whole and CRC-valid? buf holds got bytes; a record that runs past
//  them is read on its own. Returns 1, 0, or WALCAST_EIO/ENOMEM.
static int
s_record_valid (int fd, const uint8_t *buf, size_t got, size_t i, uint64_t p,
                uint32_t len)
{
    uint32_t crc = s_get32 (buf + i + 4);
    if (i + S_HEADER + len <= got)
        return wc_crc32c (0, buf + i + 8, 8 + (size_t) len) == crc;
    uint8_t *whole = (uint8_t *) malloc (8 + (size_t) len);
    if (!whole)
        return WALCAST_ENOMEM;
    ssize_t n = s_pread_all (fd, whole, 8 + (size_t) len, p + 8);
    int rc = n < 0 ? WALCAST_EIO
           : (size_t) n == 8 + (size_t) len && wc_crc32c (0, whole, (size_t) n) == crc;
    free (whole);
    return rc;
}

//  Look in the file (file_end bytes) for a valid record after the bad one
//  at bad_off, which should have been seq expect. A record at offset p
//  can only be seq expect + 1 .. expect + (p - bad_off) / 16, since every
//  record takes at least 16 bytes; that test comes first, so junk almost
//  never costs a CRC. Returns 1 (found, *found_off, *found_seq set), 0,
//  or WALCAST_EIO / WALCAST_ENOMEM.
static int
s_scan_for_record (int fd, uint64_t file_end, uint64_t bad_off, uint64_t expect,
                   uint64_t *found_off, uint64_t *found_seq)
{
    uint8_t *buf = (uint8_t *) malloc (S_SCAN_CHUNK);
    if (!buf)
        return WALCAST_ENOMEM;
    int rc = 0;
    uint64_t base = bad_off + 1;
    while (rc == 0 && base + S_HEADER <= file_end) {
        size_t want = file_end - base < S_SCAN_CHUNK ? (size_t) (file_end - base)
                                                     : S_SCAN_CHUNK;
        ssize_t got = s_pread_all (fd, buf, want, base);
        if (got < (ssize_t) S_HEADER) {
            rc = got < 0 ? WALCAST_EIO : 0;
            break;
        }
        for (size_t i = 0; rc == 0 && i + S_HEADER <= (size_t) got; i++) {
            uint64_t p = base + i;
            uint64_t seq = s_get64 (buf + i + 8);
            uint32_t len = s_get32 (buf + i);
            if (seq <= expect || seq - expect > (p - bad_off) / S_HEADER
            ||  len > WC_WAL_MAX_RECORD || p + S_HEADER + len > file_end)
                continue;
            rc = s_record_valid (fd, buf, (size_t) got, i, p, len);
            if (rc == 1) {
                *found_off = p;
                *found_seq = seq;
            }
        }
        base += (uint64_t) got - S_HEADER + 1;
    }
    free (buf);
    return rc;
}

//  From file i of the list, at offset off, follow consecutive valid
//  records (across files whose names continue them) as far as they go:
//  *from, *to is the seq range, 0, 0 when the first record is not valid.
//  Only informs the operator, so a file that cannot be read ends it.
static void
s_scan_run (wc_wal_t *self, const s_recovery_t *rec, size_t i, uint64_t off,
            uint64_t *from, uint64_t *to)
{
    *from = *to = 0;
    for (uint64_t expect = 0; i < rec->count; i++, off = 0) {
        char name [S_NAME_SIZE];
        if (expect && rec->seqs [i] != expect)
            return;
        int fd = wc_vfs_openat (self->dirfd, s_segment_name (name, rec->seqs [i]),
                                O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat (fd, &st) != 0) {
            if (fd >= 0)
                wc_vfs_close (fd);
            return;
        }
        s_cursor_t cur;
        s_cursor_init (&cur, fd, off, (uint64_t) st.st_size, S_REPLAY_CHUNK);
        s_record_t record;
        s_rec_t found;
        while ((found = s_cursor_next (self, &cur, &record)) == S_REC_OK
           &&  (!expect || record.seq == expect)) {
            if (!*from)
                *from = record.seq;
            *to = record.seq;
            expect = record.seq + 1;
        }
        wc_vfs_close (fd);
        if (found != S_REC_END || !expect)
            return;
    }
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
        wc_vfs_close (fd);
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

//  Replay the file rec->fd from its start into the last segment entry,
//  calling fn for each good record and indexing it; rec->expect moves on.
//  Returns 0 at the end of the file or at a bad record (*bad_off and
//  reason set, *bad true), else WALCAST_EIO, WALCAST_ENOMEM or fn's own
//  error.
static int
s_replay_file (wc_wal_t *self, s_recovery_t *rec, bool *bad, uint64_t *bad_off,
               char *reason, size_t reason_size)
{
    s_segment_t *seg = &self->segs [self->nsegs - 1];
    s_cursor_t cur;
    s_cursor_init (&cur, rec->fd, 0, rec->size, S_REPLAY_CHUNK);
    *bad = false;
    while (true) {
        s_record_t record;
        s_rec_t found = s_cursor_next (self, &cur, &record);
        *bad_off = record.offset;
        if (found == S_REC_END)
            return 0;
        if (found == S_REC_EIO || found == S_REC_NOMEM) {
            wc_log_error ("wal %s: cannot read %s at offset %llu: %s", self->dir,
                          rec->name, (unsigned long long) record.offset,
                          found == S_REC_EIO ? strerror (errno) : "out of memory");
            return found == S_REC_EIO ? WALCAST_EIO : WALCAST_ENOMEM;
        }
        *bad = true;
        if (found != S_REC_OK) {
            snprintf (reason, reason_size, "%s", s_rec_reasons [found]);
            return 0;
        }
        if (record.seq != rec->expect) {
            snprintf (reason, reason_size, "out-of-sequence record (seq %llu, expected %llu)",
                      (unsigned long long) record.seq, (unsigned long long) rec->expect);
            return 0;
        }
        int rc = rec->fn ? rec->fn (rec->arg, record.seq, record.payload, record.len) : 0;
        if (rc == WALCAST_EPROTO) {
            snprintf (reason, reason_size, "the payload of seq %llu is not an entry",
                      (unsigned long long) record.seq);
            return 0;
        }
        if (rc != 0)
            return rc;
        *bad = false;
        s_index_note (self, record.seq, self->nsegs - 1, record.offset, S_HEADER + record.len);
        seg->last_seq = seg->flushed_last = record.seq;
        seg->size = seg->end = record.offset + S_HEADER + record.len;
        rec->expect++;
    }
}

//  Say the log is damaged at (file, offset) of rec: nothing is replayed
//  from rec->expect on. The valid run after it starts at (run_file,
//  run_off).
static void
s_note_damage (wc_wal_t *self, s_recovery_t *rec, const char *file, uint64_t offset,
               const char *reason, size_t run_file, uint64_t run_off)
{
    wc_wal_info_t *info = rec->info;
    info->damaged = true;
    snprintf (info->damage_file, sizeof info->damage_file, "%s", file);
    info->damage_offset = offset;
    info->damage_seq = rec->expect;
    snprintf (info->damage_reason, sizeof info->damage_reason, "%s at offset %llu: %s",
              file, (unsigned long long) offset, reason);
    s_scan_run (self, rec, run_file, run_off, &info->damage_valid_from,
                &info->damage_valid_to);
    self->damaged = true;
    snprintf (self->damage, sizeof self->damage, "the log is damaged (%s); appends are "
              "refused until it is set aside", info->damage_reason);
}

//  Replay found a bad record at bad_off of the file: a torn tail when it
//  is the last file and nothing valid follows (cut it there), damage
//  otherwise (note it). Returns 0 or a WALCAST_E* code.
static int
s_bad_record (wc_wal_t *self, s_recovery_t *rec, uint64_t bad_off, const char *reason)
{
    uint64_t found_off = 0, found_seq = 0;
    int found = s_scan_for_record (rec->fd, rec->size, bad_off, rec->expect,
                                   &found_off, &found_seq);
    if (found < 0) {
        wc_log_error ("wal %s: cannot read %s: %s", self->dir, rec->name,
                      walcast_strerror (found));
        return found;
    }
    if (found || rec->i + 1 < rec->count) {
        if (found)
            s_note_damage (self, rec, rec->name, bad_off, reason, rec->i, found_off);
        else
            s_note_damage (self, rec, rec->name, bad_off, reason, rec->i + 1, 0);
        return 0;
    }
    uint64_t dropped = rec->size - bad_off;
    wc_log_warn ("wal %s: %s: %s at offset %llu (seq %llu); torn tail: cutting %llu "
                 "bytes from there (log now ends at seq %llu)", self->dir, rec->name,
                 reason, (unsigned long long) bad_off, (unsigned long long) rec->expect,
                 (unsigned long long) dropped, (unsigned long long) (rec->expect - 1));
    if (wc_vfs_ftruncate (rec->fd, (off_t) bad_off) != 0 || wc_vfs_fsync (rec->fd) != 0) {
        wc_log_error ("wal %s: cannot cut %s to %llu bytes: %s", self->dir, rec->name,
                      (unsigned long long) bad_off, strerror (errno));
        return WALCAST_EIO;
    }
    rec->info->truncated_bytes += dropped;
    return 0;
}

//  The segment just replayed holds no valid record: forget it. An empty
//  last file (a crash right after creating it, or a tail cut to nothing)
//  is removed; an empty file in the middle is damage.
static int
s_drop_empty (wc_wal_t *self, s_recovery_t *rec)
{
    self->nsegs--;
    if (rec->info->damaged)
        return 0;
    if (rec->i + 1 < rec->count) {
        s_note_damage (self, rec, rec->name, 0, "segment file holds no record",
                       rec->i + 1, 0);
        return 0;
    }
    if (wc_vfs_unlinkat (self->dirfd, rec->name, 0) != 0) {
        wc_log_error ("wal %s: cannot remove %s: %s", self->dir, rec->name,
                      strerror (errno));
        return WALCAST_EIO;
    }
    wc_log_warn ("wal %s: removed %s: it holds no record", self->dir, rec->name);
    rec->info->removed_segments++;
    self->dir_unsynced = true;
    return 0;
}

//  Replay file rec->i (whose name is the expected seq). Returns 0 or a
//  WALCAST_E* code.
static int
s_recover_file (wc_wal_t *self, s_recovery_t *rec)
{
    bool last = rec->i + 1 == rec->count;
    s_segment_name (rec->name, rec->seqs [rec->i]);
    rec->fd = wc_vfs_openat (self->dirfd, rec->name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (rec->fd < 0 || fstat (rec->fd, &st) != 0) {
        wc_log_error ("wal %s: cannot open %s: %s", self->dir, rec->name, strerror (errno));
        if (rec->fd >= 0)
            wc_vfs_close (rec->fd);
        return WALCAST_EIO;
    }
    rec->size = (uint64_t) st.st_size;
    if (s_segs_reserve (self) != 0) {
        wc_vfs_close (rec->fd);
        return WALCAST_ENOMEM;
    }
    uint64_t first = rec->seqs [rec->i];
    self->segs [self->nsegs++] = (s_segment_t) { first, first - 1, first - 1, 0, 0, -1, false };
    bool bad;
    uint64_t bad_off;
    char reason [96] = "";
    int rc = s_replay_file (self, rec, &bad, &bad_off, reason, sizeof reason);
    if (rc == 0 && bad)
        rc = s_bad_record (self, rec, bad_off, reason);
    if (rc == 0 && self->segs [self->nsegs - 1].size == 0)
        rc = s_drop_empty (self, rec);
    wc_vfs_close (rec->fd);
    rec->fd = -1;
    return rc;
}

//  The next file does not start where the log ends: a missing segment,
//  or one that overlaps the previous. Damage, at that file's start.
static void
s_gap (wc_wal_t *self, s_recovery_t *rec)
{
    char name [S_NAME_SIZE], reason [128];
    uint64_t next = rec->seqs [rec->i];
    s_segment_name (name, next);
    if (next > rec->expect)
        snprintf (reason, sizeof reason, "segments missing: the log reaches seq %llu and "
                  "the next file starts at seq %llu", (unsigned long long) (rec->expect - 1),
                  (unsigned long long) next);
    else
        snprintf (reason, sizeof reason, "overlapping segment: the log reaches seq %llu "
                  "and the next file starts at seq %llu", (unsigned long long) (rec->expect - 1),
                  (unsigned long long) next);
    s_note_damage (self, rec, name, 0, reason, rec->i, 0);
}

//  Log the damage once, with what the operator needs to know.
static void
s_log_damage (wc_wal_t *self, const wc_wal_info_t *info)
{
    char after [96] = "no valid record found after it";
    if (info->damage_valid_from)
        snprintf (after, sizeof after, "valid records after it: seq %llu..%llu",
                  (unsigned long long) info->damage_valid_from,
                  (unsigned long long) info->damage_valid_to);
    wc_log_warn ("wal %s: DAMAGED: %s; replay stopped before seq %llu (%s); no file "
                 "was changed", self->dir, info->damage_reason,
                 (unsigned long long) info->damage_seq, after);
}

//  Replay every segment, cut a torn tail, stop at damage; leave the last
//  live segment open. Returns 0 or a WALCAST_E* code.
static int
s_recover (wc_wal_t *self, wc_wal_record_fn *fn, void *arg, wc_wal_info_t *info)
{
    uint64_t *seqs;
    size_t count;
    if (s_list_segments (self, &seqs, &count) != 0) {
        wc_log_error ("wal %s: cannot list directory: %s", self->dir, strerror (errno));
        return errno == ENOMEM ? WALCAST_ENOMEM : WALCAST_EIO;
    }
    s_recovery_t rec = { seqs, count, 0, "", -1, 0, count ? seqs [0] : 0, fn, arg, info };
    int rc = 0;
    for (rec.i = 0; rec.i < count && rc == 0 && !info->damaged; rec.i++) {
        if (seqs [rec.i] != rec.expect)
            s_gap (self, &rec);
        else
            rc = s_recover_file (self, &rec);
    }
    free (seqs);
    if (rc == 0 && info->damaged)
        s_log_damage (self, info);
    if (rc == 0 && self->dir_unsynced && wc_vfs_fsync (self->dirfd) != 0) {
        wc_log_error ("wal %s: cannot fsync directory: %s", self->dir, strerror (errno));
        rc = WALCAST_EIO;
    }
    self->dir_unsynced = false;
    self->nsegs_disk = self->nsegs;
    self->flushed_last = self->nsegs ? self->segs [self->nsegs - 1].last_seq : 0;
    if (rc == 0 && self->nsegs && s_segment_fd (self, self->nsegs - 1) < 0) {
        wc_log_error ("wal %s: %s", self->dir, self->error);
        rc = WALCAST_EIO;
    }
    return rc;
}

wc_wal_t *
wc_wal_open (const char *dir, size_t segment_bytes, wc_wal_record_fn *fn,
             void *arg, wc_wal_info_t *info, int *err)
{
    int err_local;
    wc_wal_info_t info_local;
    if (!err)
        err = &err_local;
    if (!info)
        info = &info_local;
    memset (info, 0, sizeof *info);
    wc_wal_t *self = dir && *dir ? (wc_wal_t *) calloc (1, sizeof *self) : NULL;
    if (!self || !(self->dir = strdup (dir))) {
        *err = dir && *dir ? WALCAST_ENOMEM : WALCAST_EINVAL;
        free (self);
        return NULL;
    }
    self->dirfd = -1;
    self->rfd = -1;
    self->segment_bytes = segment_bytes ? segment_bytes : WC_WAL_SEGMENT_BYTES_DEFAULT;
    if (wc_vfs_mkdirs (dir, 0755, NULL, 0) != 0
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
    info->first_seq = wc_wal_first_seq (self);
    info->last_seq = wc_wal_last_seq (self);
    info->records = info->last_seq ? info->last_seq - info->first_seq + 1 : 0;
    wc_log_info ("wal %s: opened, %llu records (seq %llu..%llu) in %zu segments, "
                 "replayed in %.3f s%s", dir, (unsigned long long) info->records,
                 (unsigned long long) info->first_seq, (unsigned long long) info->last_seq,
                 self->nsegs, (double) (wc_clock_us () - started) / 1e6,
                 self->damaged ? "; damaged, appends refused" : "");
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
    if (self->wlen > 0 && wc_wal_flush (self) != 0)
        wc_log_error ("wal %s: closing: %s; the log ends at seq %llu", self->dir,
                      self->error, (unsigned long long) self->flushed_last);
    for (size_t i = 0; i < self->nsegs_disk; i++)
        if (self->segs [i].fd >= 0)
            wc_vfs_close (self->segs [i].fd);
    if (self->rfd >= 0)
        wc_vfs_close (self->rfd);
    if (self->dirfd >= 0)
        wc_vfs_close (self->dirfd);
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
    if (self->damaged) {
        snprintf (self->error, sizeof self->error, "%s", self->damage);
        return WALCAST_EIO;
    }
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
        self->segs [self->nsegs++] = (s_segment_t) { seq, seq - 1, seq - 1, 0, 0, -1, false };
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

//  Before writing anything, settle what an earlier failed flush could not
//  clean up: an empty segment to remove, a partial record to cut. Returns
//  0 or the error (the reason set).
static int
s_pay_debts (wc_wal_t *self)
{
    if (self->unlink_pending [0]) {
        if (wc_vfs_unlinkat (self->dirfd, self->unlink_pending, 0) != 0 && errno != ENOENT)
            return s_fail (self, errno, "cannot remove the empty %s a failed write left: %s",
                           self->unlink_pending, strerror (errno));
        self->unlink_pending [0] = '\0';
        self->dir_unsynced = true;
    }
    if (self->cut_pending) {
        s_segment_t *seg = &self->segs [self->nsegs_disk - 1];
        char name [S_NAME_SIZE];
        s_segment_name (name, seg->first_seq);
        int fd = s_segment_fd (self, self->nsegs_disk - 1);
        if (fd < 0)
            return s_code (errno);
        if (wc_vfs_ftruncate (fd, (off_t) seg->size) != 0)
            return s_fail (self, errno, "cannot cut %s back to %llu bytes after a failed "
                           "write: %s", name, (unsigned long long) seg->size, strerror (errno));
        self->cut_pending = false;
    }
    return 0;
}

//  Make the planned segment i a file (no sync: the directory is marked
//  for the next sync job). The previous segment's descriptor stays open
//  when a sync still has to cover it. Returns 0 or the error.
static int
s_create_segment (wc_wal_t *self, size_t i)
{
    char name [S_NAME_SIZE];
    s_segment_name (name, self->segs [i].first_seq);
    int fd = wc_vfs_openat (self->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return s_fail (self, errno, "cannot create %s: %s", name, strerror (errno));
    if (i > 0 && !self->segs [i - 1].unsynced && self->segs [i - 1].fd >= 0) {
        wc_vfs_close (self->segs [i - 1].fd);
        self->segs [i - 1].fd = -1;
    }
    self->segs [i].fd = fd;
    self->nsegs_disk = i + 1;
    self->dir_unsynced = true;
    return 0;
}

//  A write to segment i failed after done of its bytes (at wbuf + off)
//  reached the file: keep the whole records among them, cut the partial
//  one back (or remember to), and say why. Returns the error.
static int
s_write_failed (wc_wal_t *self, size_t i, size_t off, size_t done, int err)
{
    s_segment_t *seg = &self->segs [i];
    uint64_t from = seg->flushed_last + 1, at = seg->size;
    size_t whole = 0;
    while (whole + S_HEADER <= done) {
        size_t total = S_HEADER + s_get32 (self->wbuf + off + whole);
        if (whole + total > done)
            break;
        whole += total;
        seg->flushed_last++;
    }
    seg->size += whole;
    self->flushed_last = seg->flushed_last;
    self->unsynced += whole;
    if (done > 0)
        seg->unsynced = true;
    char cut [96] = "";
    if (done > whole && wc_vfs_ftruncate (seg->fd, (off_t) seg->size) != 0) {
        self->cut_pending = true;
        snprintf (cut, sizeof cut, "; cannot cut a partial record back: %s", strerror (errno));
    }
    char name [S_NAME_SIZE];
    return s_fail (self, err, "cannot write %s at offset %llu (seq %llu..%llu): %s%s",
                   s_segment_name (name, seg->first_seq), (unsigned long long) at,
                   (unsigned long long) from, (unsigned long long) seg->last_seq,
                   strerror (err), cut);
}

//  Write the buffered bytes of segment i (at wbuf + off), creating its
//  file first when it is a planned one. Returns 0 or the error.
static int
s_write_segment (wc_wal_t *self, size_t i, size_t off)
{
    if (i >= self->nsegs_disk) {
        int rc = s_create_segment (self, i);
        if (rc != 0)
            return rc;
    }
    s_segment_t *seg = &self->segs [i];
    size_t n = (size_t) (seg->end - seg->size);
    if (n == 0)
        return 0;
    int fd = s_segment_fd (self, i);
    if (fd < 0)
        return s_code (errno);
    size_t done = 0;
    while (done < n) {
        ssize_t wrote = wc_vfs_pwrite (fd, self->wbuf + off + done, n - done,
                                       (off_t) (seg->size + done));
        if (wrote > 0)
            done += (size_t) wrote;
        else
        if (wrote < 0 && errno == EINTR)
            continue;
        else
            return s_write_failed (self, i, off, done, wrote < 0 ? errno : EIO);
    }
    seg->size = seg->end;
    seg->flushed_last = seg->last_seq;
    seg->unsynced = true;
    self->flushed_last = seg->last_seq;
    self->unsynced += n;
    return 0;
}

//  After a failed flush: drop the planned segments and the rest of the
//  buffer, and remove a segment this flush created that holds no whole
//  record (when that fails, the next flush does it).
static void
s_discard (wc_wal_t *self)
{
    self->nsegs = self->nsegs_disk;
    if (self->nsegs > 0 && self->segs [self->nsegs - 1].size == 0) {
        s_segment_t *seg = &self->segs [self->nsegs - 1];
        char name [S_NAME_SIZE];
        s_segment_name (name, seg->first_seq);
        if (seg->fd >= 0)
            wc_vfs_close (seg->fd);
        if (wc_vfs_unlinkat (self->dirfd, name, 0) != 0)
            memcpy (self->unlink_pending, name, sizeof name);
        self->cut_pending = false;          //  that was the file to cut
        self->dir_unsynced = true;
        self->nsegs--;
        self->nsegs_disk--;
    }
    if (self->nsegs > 0) {
        s_segment_t *last = &self->segs [self->nsegs - 1];
        last->end = last->size;
        last->last_seq = last->flushed_last;
    }
    self->flushed_last = self->nsegs ? self->segs [self->nsegs - 1].flushed_last : 0;
    s_forget_past_end (self);
    self->wlen = 0;
}

int
wc_wal_flush (wc_wal_t *self)
{
    if (self->wlen == 0)
        return 0;
    int rc = s_pay_debts (self);
    size_t off = 0;
    size_t start = self->nsegs_disk ? self->nsegs_disk - 1 : 0;
    for (size_t i = start; i < self->nsegs && rc == 0; i++) {
        size_t n = (size_t) (self->segs [i].end - self->segs [i].size);
        rc = s_write_segment (self, i, off);
        off += n;
    }
    if (rc != 0)
        s_discard (self);
    else {
        self->wlen = 0;
        self->error [0] = '\0';
    }
    //  A batch of large values grew the buffer: do not keep that much
    if (self->wcap > S_WRITE_KEEP_MAX) {
        free (self->wbuf);
        self->wbuf = NULL;
        self->wcap = 0;
    }
    return rc;
}

uint64_t
wc_wal_written (const wc_wal_t *self)
{
    return self->flushed_last;
}

const char *
wc_wal_last_error (const wc_wal_t *self)
{
    return self->error;
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

bool
wc_wal_damaged (const wc_wal_t *self)
{
    return self->damaged;
}


//  --------------------------------------------------------------------
//  Syncing

//  The job takes duplicates of the directory and of the current segment
//  (the only steps that can fail, so they come first), then the very
//  descriptors of finished segments, which the log no longer needs.
int
wc_wal_sync_job (wc_wal_t *self, wc_wal_sync_job_t *job)
{
    memset (job, 0, sizeof *job);
    size_t wanted = self->dir_unsynced ? 1 : 0;
    for (size_t i = 0; i < self->nsegs_disk; i++)
        wanted += self->segs [i].unsynced;
    if (wanted == 0)
        return 0;
    int *fds = (int *) malloc (wanted * sizeof *fds);
    if (!fds)
        return WALCAST_ENOMEM;
    size_t n = 0, last = self->nsegs_disk ? self->nsegs_disk - 1 : 0;
    bool ok = true;
    if (self->dir_unsynced && (ok = (fds [n] = wc_vfs_dup (self->dirfd)) >= 0))
        n++;
    if (ok && self->nsegs_disk && self->segs [last].unsynced
    &&  (ok = (fds [n] = wc_vfs_dup (self->segs [last].fd)) >= 0))
        n++;
    if (!ok) {
        s_fail (self, errno, "cannot duplicate a descriptor for a sync: %s", strerror (errno));
        while (n > 0)
            wc_vfs_close (fds [--n]);
        free (fds);
        return WALCAST_EIO;
    }
    for (size_t i = 0; i + 1 < self->nsegs_disk; i++)
        if (self->segs [i].unsynced) {
            fds [n++] = self->segs [i].fd;
            self->segs [i].fd = -1;
            self->segs [i].unsynced = false;
        }
    if (self->nsegs_disk)
        self->segs [last].unsynced = false;
    self->dir_unsynced = false;
    self->unsynced = 0;
    *job = (wc_wal_sync_job_t) { fds, n, self->flushed_last };
    return 1;
}

void
wc_wal_sync_job_release (wc_wal_sync_job_t *job)
{
    if (!job)
        return;
    for (size_t i = 0; i < job->nfds; i++)
        if (job->fds [i] >= 0)
            wc_vfs_close (job->fds [i]);
    free (job->fds);
    memset (job, 0, sizeof *job);
}

int
wc_wal_sync (wc_wal_t *self)
{
    for (size_t i = 0; i < self->nsegs_disk; i++) {
        s_segment_t *seg = &self->segs [i];
        if (!seg->unsynced)
            continue;
        if (wc_vfs_fdatasync (seg->fd) != 0) {
            char name [S_NAME_SIZE];
            s_fail (self, errno, "fdatasync of %s failed: %s",
                    s_segment_name (name, seg->first_seq), strerror (errno));
            wc_log_error ("wal %s: %s", self->dir, self->error);
            return WALCAST_EIO;
        }
        seg->unsynced = false;
        if (i + 1 < self->nsegs_disk) {
            wc_vfs_close (seg->fd);
            seg->fd = -1;
        }
    }
    if (self->dir_unsynced && wc_vfs_fsync (self->dirfd) != 0) {
        s_fail (self, errno, "fsync of the directory failed: %s", strerror (errno));
        wc_log_error ("wal %s: %s", self->dir, self->error);
        return WALCAST_EIO;
    }
    self->dir_unsynced = false;
    self->unsynced = 0;
    return 0;
}

uint64_t
wc_wal_unsynced_bytes (const wc_wal_t *self)
{
    return self->unsynced;
}


//  --------------------------------------------------------------------
//  Setting aside

//  A free name for name set aside: name.damaged, name.damaged.1, ...
//  Returns 0 or -1 with errno set.
static int
s_aside_name (wc_wal_t *self, const char *name, char *aside, size_t size)
{
    for (int k = 0; k < 100000; k++) {
        if (k == 0)
            snprintf (aside, size, "%s.damaged", name);
        else
            snprintf (aside, size, "%s.damaged.%d", name, k);
        struct stat st;
        if (fstatat (self->dirfd, aside, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return errno == ENOENT ? 0 : -1;
    }
    errno = EEXIST;
    return -1;
}

//  Rename the file name to a free name.damaged*. Returns 0 or the error.
static int
s_rename_aside (wc_wal_t *self, const char *name)
{
    char aside [64];
    struct stat st;
    if (s_aside_name (self, name, aside, sizeof aside) != 0
    ||  wc_vfs_renameat (self->dirfd, name, self->dirfd, aside) != 0)
        return s_fail (self, errno, "cannot set %s aside: %s", name, strerror (errno));
    self->dir_unsynced = true;
    long long bytes = fstatat (self->dirfd, aside, &st, 0) == 0 ? (long long) st.st_size : -1;
    wc_log_warn ("wal %s: set %s aside as %s (%lld bytes)", self->dir, name, aside, bytes);
    return 0;
}

//  Is the file of first seq a live segment that stays (starts before
//  from_seq)? Sets *live to its index when it is live at all.
static bool
s_keeps (const wc_wal_t *self, uint64_t seq, uint64_t from_seq, size_t *live)
{
    *live = SIZE_MAX;
    for (size_t i = 0; i < self->nsegs_disk; i++)
        if (self->segs [i].first_seq == seq)
            *live = i;
    return *live != SIZE_MAX && seq < from_seq;
}

//  Rename every segment file but the live ones that start before
//  from_seq, the last first, so what is left is always a log that begins
//  where it did. Live segments renamed leave the list. Returns 0 or the
//  error.
static int
s_rename_later (wc_wal_t *self, uint64_t from_seq)
{
    uint64_t *seqs;
    size_t count;
    if (s_list_segments (self, &seqs, &count) != 0)
        return s_fail (self, errno, "cannot list the directory: %s", strerror (errno));
    int rc = 0;
    for (size_t k = count; k-- > 0 && rc == 0; ) {
        size_t live;
        if (s_keeps (self, seqs [k], from_seq, &live))
            continue;
        char name [S_NAME_SIZE];
        s_segment_name (name, seqs [k]);
        if (live != SIZE_MAX && self->segs [live].unsynced
        &&  wc_vfs_fdatasync (self->segs [live].fd) != 0) {
            rc = s_fail (self, errno, "cannot sync %s: %s", name, strerror (errno));
            break;
        }
        rc = s_rename_aside (self, name);
        if (rc == 0 && live != SIZE_MAX) {
            //  Live segments that go are the tail of the list.
            if (self->segs [live].fd >= 0)
                wc_vfs_close (self->segs [live].fd);
            self->nsegs = self->nsegs_disk = live;
            self->flushed_last = live ? self->segs [live - 1].flushed_last : 0;
            s_forget_past_end (self);
        }
    }
    free (seqs);
    return rc;
}

//  Copy on-disk segment i (size bytes of fd) to a free name.damaged*,
//  synced. Returns 0 or the error (the partial copy removed).
static int
s_copy_aside (wc_wal_t *self, int fd, uint64_t size, const char *name, char *aside,
              size_t aside_size)
{
    if (s_aside_name (self, name, aside, aside_size) != 0)
        return s_fail (self, errno, "cannot name a copy of %s: %s", name, strerror (errno));
    uint8_t *buf = (uint8_t *) malloc (S_COPY_CHUNK);
    int out = buf ? wc_vfs_openat (self->dirfd, aside, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                                   0644) : -1;
    int rc = 0;
    if (!buf || out < 0)
        rc = s_fail (self, buf ? errno : ENOMEM, "cannot create %s: %s", aside,
                     strerror (buf ? errno : ENOMEM));
    for (uint64_t off = 0; rc == 0 && off < size; ) {
        size_t want = size - off < S_COPY_CHUNK ? (size_t) (size - off) : S_COPY_CHUNK;
        ssize_t got = s_pread_all (fd, buf, want, off);
        if (got <= 0)
            rc = s_fail (self, got < 0 ? errno : EIO, "cannot read %s to copy it: %s", name,
                         got < 0 ? strerror (errno) : "file shorter than expected");
        else
        if (s_pwrite_all (out, buf, (size_t) got, off) != 0)
            rc = s_fail (self, errno, "cannot write %s: %s", aside, strerror (errno));
        off += got > 0 ? (uint64_t) got : 0;
    }
    if (rc == 0 && wc_vfs_fdatasync (out) != 0)
        rc = s_fail (self, errno, "cannot sync %s: %s", aside, strerror (errno));
    if (out >= 0)
        wc_vfs_close (out);
    if (rc != 0 && out >= 0)
        wc_vfs_unlinkat (self->dirfd, aside, 0);
    free (buf);
    return rc;
}

//  Where record seq starts in the last live segment (its size when seq
//  is past its last record). Returns 0 or the error.
static int
s_offset_of (wc_wal_t *self, uint64_t seq, uint64_t *offset)
{
    size_t last = self->nsegs_disk - 1;
    s_segment_t *seg = &self->segs [last];
    *offset = seg->size;
    if (seq > seg->flushed_last)
        return 0;
    *offset = 0;
    uint64_t at = seg->first_seq;
    for (size_t k = self->nindex; k-- > 0; )
        if (self->index [k].segment == last && self->index [k].seq <= seq) {
            *offset = self->index [k].offset;
            at = self->index [k].seq;
            break;
        }
    s_cursor_t cur;
    s_cursor_init (&cur, seg->fd, *offset, seg->size, S_READ_CHUNK_MIN);
    for (; at < seq; at++) {
        s_record_t rec;
        if (s_cursor_next (self, &cur, &rec) != S_REC_OK)
            return s_fail (self, EIO, "cannot find seq %llu in the log",
                           (unsigned long long) seq);
    }
    *offset = cur.buf_off + cur.pos;
    return 0;
}

//  The last live segment holds bytes from seq from_seq on (records to set
//  aside, or the damaged part of its file): copy the whole file aside,
//  then cut the live one before from_seq. Returns 0 or the error.
static int
s_cut_last (wc_wal_t *self, uint64_t from_seq)
{
    if (self->nsegs_disk == 0)
        return 0;
    size_t last = self->nsegs_disk - 1;
    s_segment_t *seg = &self->segs [last];
    char name [S_NAME_SIZE], aside [64];
    s_segment_name (name, seg->first_seq);
    uint64_t offset;
    struct stat st;
    int fd = s_segment_fd (self, last);
    if (fd < 0 || fstat (fd, &st) != 0)
        return s_fail (self, errno, "cannot open %s: %s", name, strerror (errno));
    int rc = s_offset_of (self, from_seq, &offset);
    if (rc != 0 || (uint64_t) st.st_size <= offset)
        return rc;
    rc = s_copy_aside (self, fd, (uint64_t) st.st_size, name, aside, sizeof aside);
    if (rc != 0)
        return rc;
    if (wc_vfs_ftruncate (fd, (off_t) offset) != 0 || wc_vfs_fdatasync (fd) != 0) {
        rc = s_fail (self, errno, "cannot cut %s at offset %llu: %s", name,
                     (unsigned long long) offset, strerror (errno));
        wc_vfs_unlinkat (self->dirfd, aside, 0);
        return rc;
    }
    self->dir_unsynced = true;
    seg->size = seg->end = offset;
    seg->last_seq = seg->flushed_last = from_seq - 1;
    seg->unsynced = false;
    self->flushed_last = from_seq - 1;
    s_forget_past_end (self);
    wc_log_warn ("wal %s: copied %s to %s (%lld bytes) and cut it at offset %llu: the "
                 "log now ends at seq %llu", self->dir, name, aside, (long long) st.st_size,
                 (unsigned long long) offset, (unsigned long long) (from_seq - 1));
    return 0;
}

int
wc_wal_set_aside (wc_wal_t *self, uint64_t from_seq)
{
    int rc = 0;
    if (self->wlen > 0)
        rc = wc_wal_flush (self);
    if (rc == 0)
        rc = s_pay_debts (self);
    if (rc != 0)
        return rc;
    if (from_seq == 0 || (self->nsegs_disk > 0 && from_seq > self->flushed_last + 1)) {
        s_fail (self, EINVAL, "cannot set aside from seq %llu: the log holds seq %llu..%llu",
                (unsigned long long) from_seq, (unsigned long long) wc_wal_first_seq (self),
                (unsigned long long) self->flushed_last);
        return WALCAST_ERANGE;
    }
    rc = s_rename_later (self, from_seq);
    if (rc == 0)
        rc = s_cut_last (self, from_seq);
    if (rc == 0 && self->dir_unsynced && wc_vfs_fsync (self->dirfd) != 0)
        rc = s_fail (self, errno, "cannot fsync the directory: %s", strerror (errno));
    if (rc != 0) {
        self->damaged = true;
        snprintf (self->damage, sizeof self->damage, "setting the log aside from seq %llu "
                  "did not finish (%.120s); appends are refused until it does",
                  (unsigned long long) from_seq, self->error);
        return rc;
    }
    self->dir_unsynced = false;
    self->damaged = false;
    self->error [0] = '\0';
    return 0;
}


//  --------------------------------------------------------------------
//  Shortening the log on purpose

//  Forget what is buffered (records not yet written): the planned
//  segments go, the last segment ends where its file does.
static void
s_drop_buffer (wc_wal_t *self)
{
    self->nsegs = self->nsegs_disk;
    if (self->nsegs > 0) {
        s_segment_t *last = &self->segs [self->nsegs - 1];
        last->end = last->size;
        last->last_seq = last->flushed_last;
    }
    self->wlen = 0;
    s_forget_past_end (self);
}

//  Remove the file of the last on-disk segment and sync the directory.
//  Returns 0 or the error (the reason set).
static int
s_remove_last (wc_wal_t *self)
{
    size_t last = self->nsegs_disk - 1;
    s_segment_t *seg = &self->segs [last];
    char name [S_NAME_SIZE];
    s_segment_name (name, seg->first_seq);
    if (wc_vfs_unlinkat (self->dirfd, name, 0) != 0 && errno != ENOENT)
        return s_fail (self, errno, "cannot remove %s: %s", name, strerror (errno));
    if (seg->fd >= 0)
        wc_vfs_close (seg->fd);
    self->nsegs = self->nsegs_disk = last;
    self->flushed_last = last ? self->segs [last - 1].flushed_last : 0;
    s_forget_past_end (self);
    if (wc_vfs_fsync (self->dirfd) != 0)
        return s_fail (self, errno, "cannot sync the directory after removing %s: %s",
                       name, strerror (errno));
    return 0;
}

//  Cut the last on-disk segment after record seq (one of its records)
//  and sync it. Returns 0 or the error (the reason set).
static int
s_cut_after (wc_wal_t *self, uint64_t seq)
{
    s_segment_t *seg = &self->segs [self->nsegs_disk - 1];
    char name [S_NAME_SIZE];
    s_segment_name (name, seg->first_seq);
    uint64_t offset;
    int fd = s_segment_fd (self, self->nsegs_disk - 1);
    if (fd < 0)
        return s_code (errno);
    int rc = s_offset_of (self, seq + 1, &offset);
    if (rc != 0)
        return rc;
    if (wc_vfs_ftruncate (fd, (off_t) offset) != 0 || wc_vfs_fdatasync (fd) != 0)
        return s_fail (self, errno, "cannot cut %s at offset %llu: %s", name,
                       (unsigned long long) offset, strerror (errno));
    seg->size = seg->end = offset;
    seg->last_seq = seg->flushed_last = seq;
    seg->unsynced = false;
    self->flushed_last = seq;
    s_forget_past_end (self);
    return 0;
}

int
wc_wal_truncate (wc_wal_t *self, uint64_t seq)
{
    if (self->damaged) {
        snprintf (self->error, sizeof self->error, "%s", self->damage);
        return WALCAST_EIO;
    }
    if (seq > self->flushed_last) {
        s_fail (self, EINVAL, "cannot truncate after seq %llu: the log ends at seq %llu",
                (unsigned long long) seq, (unsigned long long) self->flushed_last);
        return WALCAST_ERANGE;
    }
    s_drop_buffer (self);
    int rc = s_pay_debts (self);
    while (rc == 0 && self->nsegs_disk > 0
       &&  self->segs [self->nsegs_disk - 1].first_seq > seq)
        rc = s_remove_last (self);
    if (rc == 0 && self->nsegs_disk > 0 && self->flushed_last > seq)
        rc = s_cut_after (self, seq);
    if (rc != 0) {
        wc_log_error ("wal %s: truncating after seq %llu: %s", self->dir,
                      (unsigned long long) seq, self->error);
        return WALCAST_EIO;
    }
    wc_log_info ("wal %s: truncated after seq %llu (%zu segments left)", self->dir,
                 (unsigned long long) seq, self->nsegs_disk);
    return 0;
}

//  The first segment's file is gone: drop it from the list, the index
//  and the read cache.
static void
s_forget_first (wc_wal_t *self)
{
    memmove (self->segs, self->segs + 1, (self->nsegs - 1) * sizeof *self->segs);
    self->nsegs--;
    self->nsegs_disk--;
    size_t kept = 0;
    for (size_t i = 0; i < self->nindex; i++)
        if (self->index [i].segment > 0) {
            self->index [kept] = self->index [i];
            self->index [kept++].segment--;
        }
    self->nindex = kept;
    if (self->rfd >= 0 && self->rfd_seg == 0) {
        wc_vfs_close (self->rfd);
        self->rfd = -1;
    }
    else
    if (self->rfd >= 0)
        self->rfd_seg--;
}

int
wc_wal_retain (wc_wal_t *self, uint64_t seq, uint64_t keep_bytes)
{
    uint64_t total = wc_wal_bytes (self);
    int removed = 0;
    while (self->nsegs_disk > 1 && self->segs [0].flushed_last <= seq
       &&  total - self->segs [0].size >= keep_bytes) {
        s_segment_t *seg = &self->segs [0];
        char name [S_NAME_SIZE];
        s_segment_name (name, seg->first_seq);
        if (wc_vfs_unlinkat (self->dirfd, name, 0) != 0 && errno != ENOENT) {
            wc_log_error ("wal %s: cannot remove %s: %s", self->dir, name, strerror (errno));
            return WALCAST_EIO;
        }
        if (seg->fd >= 0)
            wc_vfs_close (seg->fd);
        total -= seg->size;
        s_forget_first (self);
        removed++;
        if (wc_vfs_fsync (self->dirfd) != 0) {
            wc_log_error ("wal %s: cannot sync the directory after removing %s: %s",
                          self->dir, name, strerror (errno));
            return WALCAST_EIO;
        }
    }
    if (removed)
        wc_log_info ("wal %s: removed %d segments at or below seq %llu; the log now "
                     "holds seq %llu..%llu in %llu bytes", self->dir, removed,
                     (unsigned long long) seq, (unsigned long long) wc_wal_first_seq (self),
                     (unsigned long long) self->flushed_last, (unsigned long long) total);
    return removed;
}

int
wc_wal_remove_all (const char *dir)
{
    wc_wal_t probe = { .dir = (char *) dir, .dirfd = -1, .rfd = -1 };
    probe.dirfd = wc_vfs_open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    uint64_t *seqs = NULL;
    size_t count = 0;
    int rc = probe.dirfd < 0 || s_list_segments (&probe, &seqs, &count) != 0 ? -1 : 0;
    if (rc != 0)
        wc_log_error ("wal %s: cannot list the directory: %s", dir, strerror (errno));
    for (size_t k = count; k-- > 0 && rc == 0; ) {
        char name [S_NAME_SIZE];
        s_segment_name (name, seqs [k]);
        if ((wc_vfs_unlinkat (probe.dirfd, name, 0) != 0 && errno != ENOENT)
        ||  wc_vfs_fsync (probe.dirfd) != 0) {
            wc_log_error ("wal %s: cannot remove %s: %s", dir, name, strerror (errno));
            rc = -1;
        }
    }
    if (rc == 0 && count)
        wc_log_info ("wal %s: removed the %zu segments of the replaced log", dir, count);
    free (seqs);
    if (probe.dirfd >= 0)
        wc_vfs_close (probe.dirfd);
    return rc == 0 ? 0 : WALCAST_EIO;
}

uint64_t
wc_wal_bytes (const wc_wal_t *self)
{
    uint64_t total = 0;
    for (size_t i = 0; i < self->nsegs_disk; i++)
        total += self->segs [i].size;
    return total;
}

size_t
wc_wal_segments (const wc_wal_t *self)
{
    return self->nsegs_disk;
}


//  --------------------------------------------------------------------
//  Reading

//  A descriptor to read on-disk segment i: its own when it has one open,
//  else one cached read-only descriptor. Returns -1 (logged).
static int
s_read_fd (wc_wal_t *self, size_t i)
{
    if (self->segs [i].fd >= 0)
        return self->segs [i].fd;
    if (self->rfd >= 0 && self->rfd_seg == i)
        return self->rfd;
    if (self->rfd >= 0)
        wc_vfs_close (self->rfd);
    char name [S_NAME_SIZE];
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
                char name [S_NAME_SIZE];
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
