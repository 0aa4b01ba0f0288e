/*  wal_util.c - helpers shared by the WAL tests (see wal_util.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walcast.h"
#include "crc32c.h"
#include "wal.h"
#include "wal_util.h"

//  The payload of record seq: its length and bytes follow from seq, so
//  any record can be checked on its own.
size_t
wt_payload (uint64_t seq, uint8_t *buf)
{
    size_t len = (size_t) ((seq * 7919u) % 200u);
    for (size_t i = 0; i < len; i++)
        buf [i] = (uint8_t) (seq * 13u + i * 31u);
    return len;
}

int
wt_collect (void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    wt_collect_t *c = (wt_collect_t *) arg;
    if (c->reject_seq && seq == c->reject_seq)
        return WALCAST_EPROTO;          //  "not an entry": not counted
    uint8_t want [256];
    size_t want_len = wt_payload (seq, want);
    if ((c->next && seq != c->next) || len != want_len
    ||  (len && memcmp (payload, want, len) != 0))
        c->bad = 1;
    if (c->count == 0)
        c->first = seq;
    c->next = seq + 1;
    c->count++;
    c->bytes += len;
    if (c->stop_at_count && c->count == (uint64_t) c->stop_at_count)
        return c->stop_rc;
    return 0;
}

void
wt_append_range (wc_wal_t *wal, uint64_t from, uint64_t to)
{
    uint8_t buf [256];
    for (uint64_t seq = from; seq <= to; seq++) {
        size_t len = wt_payload (seq, buf);
        assert_int_equal (wc_wal_append (wal, seq, buf, len), 0);
    }
}

//  Open dir and check it replays exactly first..last (0, 0: empty).
wc_wal_t *
wt_open_reject (const char *dir, size_t segment_bytes, uint64_t first,
                uint64_t last, wc_wal_info_t *info, uint64_t reject_seq)
{
    wt_collect_t c = { .next = first, .reject_seq = reject_seq };
    int err = 1;
    wc_wal_info_t local;
    if (!info)
        info = &local;
    wc_wal_t *wal = wc_wal_open (dir, segment_bytes, wt_collect, &c, info, &err);
    assert_non_null (wal);
    assert_int_equal (err, 0);
    assert_int_equal (c.bad, 0);
    assert_int_equal (c.count, last ? last - first + 1 : 0);
    assert_int_equal (info->records, c.count);
    assert_int_equal (info->first_seq, last ? first : 0);
    assert_int_equal (info->last_seq, last);
    assert_int_equal (wc_wal_first_seq (wal), last ? first : 0);
    assert_int_equal (wc_wal_last_seq (wal), last);
    return wal;
}

wc_wal_t *
wt_open_expect (const char *dir, size_t segment_bytes, uint64_t first,
                uint64_t last, wc_wal_info_t *info)
{
    return wt_open_reject (dir, segment_bytes, first, last, info, 0);
}

//  Build a log of first..last, flushed and closed.
void
wt_make_log (const char *dir, size_t segment_bytes, uint64_t first, uint64_t last)
{
    int err;
    wc_wal_t *wal = wc_wal_open (dir, segment_bytes, NULL, NULL, NULL, &err);
    assert_non_null (wal);
    wt_append_range (wal, first, last);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_destroy (&wal);
    assert_null (wal);
}

char *
wt_path (const char *dir, uint64_t seq)
{
    static char path [512];
    snprintf (path, sizeof path, "%s/wal-%020llu.log", dir, (unsigned long long) seq);
    return path;
}

int64_t
wt_file_size (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 ? (int64_t) st.st_size : -1;
}

//  Segment files in dir, ascending by first seq; returns how many.
size_t
wt_segments (const char *dir, uint64_t *seqs, size_t max)
{
    DIR *d = opendir (dir);
    assert_non_null (d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir (d))) {
        unsigned long long seq;
        char tail [8];
        if (strlen (e->d_name) == 28
        &&  sscanf (e->d_name, "wal-%20llu%4s", &seq, tail) == 2
        &&  strcmp (tail, ".log") == 0 && n < max)
            seqs [n++] = seq;
    }
    closedir (d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && seqs [j - 1] > seqs [j]; j--) {
            uint64_t t = seqs [j]; seqs [j] = seqs [j - 1]; seqs [j - 1] = t;
        }
    return n;
}

//  Byte offset of record seq inside the segment starting at first.
uint64_t
wt_offset_of (uint64_t first, uint64_t seq)
{
    uint8_t buf [256];
    uint64_t off = 0;
    for (uint64_t s = first; s < seq; s++)
        off += 16 + wt_payload (s, buf);
    return off;
}

void
wt_write_at (const char *path, uint64_t offset, const void *buf, size_t len)
{
    int fd = open (path, O_WRONLY);
    assert_true (fd >= 0);
    assert_int_equal (pwrite (fd, buf, len, (off_t) offset), (ssize_t) len);
    close (fd);
}

void
wt_append_file (const char *path, const void *buf, size_t len)
{
    int fd = open (path, O_WRONLY | O_APPEND);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, buf, len), (ssize_t) len);
    close (fd);
}

//  A well-formed frame (good CRC) for any seq and payload.
size_t
wt_frame (uint8_t *out, uint32_t len_field, uint64_t seq, const uint8_t *payload,
         size_t len)
{
    for (int i = 0; i < 4; i++)
        out [i] = (uint8_t) (len_field >> (8 * i));
    for (int i = 0; i < 8; i++)
        out [8 + i] = (uint8_t) (seq >> (8 * i));
    memcpy (out + 16, payload, len);
    uint32_t crc = wc_crc32c (0, out + 8, 8 + len);
    for (int i = 0; i < 4; i++)
        out [4 + i] = (uint8_t) (crc >> (8 * i));
    return 16 + len;
}

//  Empty the test directory (for loops that rebuild a log).
void
wt_clear_dir (const char *dir)
{
    DIR *d = opendir (dir);
    assert_non_null (d);
    struct dirent *e;
    char path [512];
    while ((e = readdir (d)))
        if (strcmp (e->d_name, ".") && strcmp (e->d_name, "..")) {
            snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
            assert_int_equal (unlink (path), 0);
        }
    closedir (d);
}

//  Read from from_seq with a budget and check what came back.
void
wt_check_read (wc_wal_t *wal, uint64_t from, size_t max_bytes, int want_count)
{
    wt_collect_t c = { .next = from };
    int rc = wc_wal_read (wal, from, max_bytes, wt_collect, &c);
    assert_int_equal (rc, want_count);
    assert_int_equal (c.count, (uint64_t) want_count);
    assert_int_equal (c.bad, 0);
}

static int
s_rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

int
wt_setup_dir (void **state)
{
    char *dir = strdup ("/tmp/test_wal.XXXXXX");
    if (!dir || !mkdtemp (dir))
        return -1;
    *state = dir;
    return 0;
}

int
wt_teardown_dir (void **state)
{
    char *dir = (char *) *state;
    nftw (dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free (dir);
    return 0;
}

uint32_t
wt_file_prefix_crc (const char *dir, const char *name, uint64_t len)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    int fd = open (path, O_RDONLY);
    assert_true (fd >= 0);
    uint8_t buf [4096];
    uint32_t crc = 0;
    uint64_t off = 0;
    while (off < len) {
        size_t want = len - off < sizeof buf ? (size_t) (len - off) : sizeof buf;
        ssize_t got = pread (fd, buf, want, (off_t) off);
        assert_true (got > 0);
        crc = wc_crc32c (crc, buf, (size_t) got);
        off += (uint64_t) got;
    }
    close (fd);
    return crc;
}

uint32_t
wt_file_crc (const char *dir, const char *name, int64_t *size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    *size = wt_file_size (path);
    return *size < 0 ? 0 : wt_file_prefix_crc (dir, name, (uint64_t) *size);
}

static int
s_file_compare (const void *a, const void *b)
{
    return strcmp (((const wt_file_t *) a)->name, ((const wt_file_t *) b)->name);
}

void
wt_snapshot (const char *dir, wt_snapshot_t *snap)
{
    snap->count = 0;
    DIR *d = opendir (dir);
    assert_non_null (d);
    struct dirent *e;
    while ((e = readdir (d))) {
        if (e->d_name [0] == '.')
            continue;
        assert_true (snap->count < sizeof snap->files / sizeof snap->files [0]);
        wt_file_t *file = &snap->files [snap->count++];
        assert_true (strlen (e->d_name) < sizeof file->name);
        memcpy (file->name, e->d_name, strlen (e->d_name) + 1);
        file->crc = wt_file_crc (dir, e->d_name, &file->size);
    }
    closedir (d);
    qsort (snap->files, snap->count, sizeof snap->files [0], s_file_compare);
}

void
wt_assert_same (const wt_snapshot_t *a, const wt_snapshot_t *b)
{
    assert_int_equal (a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        assert_string_equal (a->files [i].name, b->files [i].name);
        assert_int_equal (a->files [i].size, b->files [i].size);
        assert_int_equal (a->files [i].crc, b->files [i].crc);
    }
}

const wt_file_t *
wt_snapshot_find (const wt_snapshot_t *snap, const char *name)
{
    for (size_t i = 0; i < snap->count; i++)
        if (strcmp (snap->files [i].name, name) == 0)
            return &snap->files [i];
    return NULL;
}

void
wt_flip (const char *path, uint64_t offset, uint8_t mask)
{
    int fd = open (path, O_RDWR);
    assert_true (fd >= 0);
    uint8_t byte;
    assert_int_equal (pread (fd, &byte, 1, (off_t) offset), 1);
    byte ^= mask;
    assert_int_equal (pwrite (fd, &byte, 1, (off_t) offset), 1);
    close (fd);
}

const char *
wt_name (uint64_t seq)
{
    static char name [64];
    snprintf (name, sizeof name, "wal-%020llu.log", (unsigned long long) seq);
    return name;
}
