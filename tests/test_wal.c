/*  test_wal.c - the write-ahead log and its checksum.

    What a user of the WAL relies on: records come back after a reopen
    exactly as appended, across segments; catch-up reads start at any seq
    and respect their byte budget; whatever a crash leaves at the tail
    (torn record, flipped bit, garbage, a wild length field, a stray
    segment) is cut off cleanly, with every record before it kept and new
    appends going on from there; and damage in the middle of the log (a
    flipped byte, a deleted segment, a record that is not an entry) never
    deletes anything: the open says where it is and which seqs are intact
    after it, appends are refused until the damaged part is set aside,
    and setting it aside keeps every byte in *.damaged files. A failed
    flush (file size limit standing in for a full disk) keeps exactly the
    records that were written whole. test_wal_flush.c fails every step of
    a flush in turn. A tail dropped on purpose (truncation) and segments
    dropped from the front (retention) are gone for good, and a failure
    in the middle of either leaves a log without a hole.

    Every test works in its own mkdtemp directory under /tmp, removed at
    the end.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "walcast.h"
#include "crc32c.h"
#include "log.h"
#include "vfs.h"
#include "wal.h"
#include "wal_util.h"

//  --------------------------------------------------------------------
//  Set-up

static void s_unlimit_file_size (void);
static int s_limited;                   /* a test lowered RLIMIT_FSIZE */

static int
setup_dir (void **state)
{
    return wt_setup_dir (state);
}

static int
teardown_dir (void **state)
{
    if (s_limited)
        s_unlimit_file_size ();         //  after a failed test
    return wt_teardown_dir (state);
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


//  --------------------------------------------------------------------
//  CRC32C

//  Bit at a time, straight from the definition.
static uint32_t
s_crc_reference (uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void
test_crc32c_vectors (void **state)
{
    (void) state;
    uint8_t buf [32];
    assert_int_equal (wc_crc32c (0, "123456789", 9), 0xE3069283u);
    assert_int_equal (wc_crc32c_sw (0, "123456789", 9), 0xE3069283u);
    assert_int_equal (wc_crc32c (0, "", 0), 0);
    //  RFC 3720 (iSCSI) B.4 vectors.
    memset (buf, 0, sizeof buf);
    assert_int_equal (wc_crc32c (0, buf, 32), 0x8A9136AAu);
    memset (buf, 0xFF, sizeof buf);
    assert_int_equal (wc_crc32c (0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf [i] = (uint8_t) i;
    assert_int_equal (wc_crc32c (0, buf, 32), 0x46DD794Eu);
    assert_int_equal (wc_crc32c_sw (0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf [i] = (uint8_t) (31 - i);
    assert_int_equal (wc_crc32c (0, buf, 32), 0x113FDB5Cu);
    //  Chaining: crc of a+b from crc of a.
    assert_int_equal (wc_crc32c (wc_crc32c (0, "1234", 4), "56789", 5), 0xE3069283u);
    print_message ("crc32c: CPU instruction %s\n",
                   wc_crc32c_hw_available () ? "used" : "not available");
}

static void
test_crc32c_paths_agree (void **state)
{
    (void) state;
    size_t size = 4096 + 64;
    uint8_t *data = (uint8_t *) malloc (size);
    assert_non_null (data);
    srand (42);
    for (size_t i = 0; i < size; i++)
        data [i] = (uint8_t) rand ();
    for (size_t align = 0; align < 9; align++)
        for (size_t len = 0; len < 300; len += (len < 40 ? 1 : 7)) {
            uint32_t want = s_crc_reference (0, data + align, len);
            assert_int_equal (wc_crc32c (0, data + align, len), want);
            assert_int_equal (wc_crc32c_sw (0, data + align, len), want);
            //  Split anywhere: chained result is the same.
            size_t cut = len / 3;
            uint32_t part = wc_crc32c (0, data + align, cut);
            assert_int_equal (wc_crc32c (part, data + align + cut, len - cut), want);
            part = wc_crc32c_sw (0, data + align, cut);
            assert_int_equal (wc_crc32c_sw (part, data + align + cut, len - cut), want);
        }
    assert_int_equal (wc_crc32c (0, data + 3, 4093), wc_crc32c_sw (0, data + 3, 4093));
    assert_int_equal (wc_crc32c (7, data + 1, 4095), s_crc_reference (7, data + 1, 4095));
    free (data);
}


//  --------------------------------------------------------------------
//  Appending, replaying, reading

static void
test_empty_dir (void **state)
{
    const char *dir = (const char *) *state;
    wc_wal_info_t info;
    wc_wal_t *wal = wt_open_expect (dir, 0, 0, 0, &info);
    assert_int_equal (info.truncated_bytes, 0);
    assert_int_equal (info.removed_segments, 0);
    assert_int_equal (wc_wal_read (wal, 1, 1000, NULL, NULL), 0);
    assert_int_equal (wc_wal_flush (wal), 0);
    assert_int_equal (wc_wal_sync (wal), 0);
    assert_int_equal (wc_wal_unsynced_bytes (wal), 0);
    wc_wal_destroy (&wal);
    wc_wal_destroy (&wal);      //  safe twice
    uint64_t seqs [4];
    assert_int_equal (wt_segments (dir, seqs, 4), 0);

    //  A missing directory (and its parents) is created.
    char sub [512];
    snprintf (sub, sizeof sub, "%s/a/b/wal", dir);
    wal = wt_open_expect (sub, 0, 0, 0, NULL);
    wt_append_range (wal, 1, 3);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (sub, 0, 1, 3, NULL);
    wc_wal_destroy (&wal);
}

static void
test_append_reopen (void **state)
{
    const char *dir = (const char *) *state;
    wc_wal_t *wal = wt_open_expect (dir, 0, 0, 0, NULL);
    //  Bad appends change nothing.
    uint8_t buf [16] = { 0 };
    assert_int_equal (wc_wal_append (wal, 0, buf, 1), WALCAST_EINVAL);
    assert_int_equal (wc_wal_append (wal, 1, NULL, 5), WALCAST_EINVAL);
    assert_int_equal (wc_wal_last_seq (wal), 0);
    //  An empty log takes any first seq.
    wt_append_range (wal, 100, 199);
    assert_int_equal (wc_wal_first_seq (wal), 100);
    assert_int_equal (wc_wal_last_seq (wal), 199);
    assert_int_equal (wc_wal_append (wal, 199, buf, 1), WALCAST_EINVAL);
    assert_int_equal (wc_wal_append (wal, 201, buf, 1), WALCAST_EINVAL);
    assert_int_equal (wc_wal_append (wal, 1, buf, 1), WALCAST_EINVAL);
    assert_int_equal (wc_wal_append (wal, 200, buf, WC_WAL_MAX_RECORD + 1), WALCAST_EINVAL);
    assert_int_equal (wc_wal_flush (wal), 0);
    assert_true (wc_wal_unsynced_bytes (wal) > 0);
    assert_int_equal (wc_wal_sync (wal), 0);
    assert_int_equal (wc_wal_unsynced_bytes (wal), 0);
    wt_append_range (wal, 200, 250);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_destroy (&wal);
    assert_int_equal (wt_file_size (wt_path (dir, 100)), (int64_t) wt_offset_of (100, 251));

    wal = wt_open_expect (dir, 0, 100, 250, NULL);
    wt_append_range (wal, 251, 300);
    //  Closing writes what is buffered, like fclose.
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, 0, 100, 300, NULL);
    wc_wal_destroy (&wal);

    //  The replay callback can stop the open with its error.
    wt_collect_t c = { .stop_at_count = 10, .stop_rc = WALCAST_EBUSY };
    int err = 0;
    wal = wc_wal_open (dir, 0, wt_collect, &c, NULL, &err);
    assert_null (wal);
    assert_int_equal (err, WALCAST_EBUSY);
    assert_int_equal (c.count, 10);
    c = (wt_collect_t) { .stop_at_count = 1, .stop_rc = 1 };
    wal = wc_wal_open (dir, 0, wt_collect, &c, NULL, &err);
    assert_null (wal);
    assert_int_equal (err, 1);
    //  ... and leaves the files alone.
    wal = wt_open_expect (dir, 0, 100, 300, NULL);
    wc_wal_destroy (&wal);
}

//  Checks record 2 is the big one, byte for byte.
typedef struct {
    const uint8_t *want;    /* the big payload */
    size_t len;             /* its length */
    int big_ok;             /* record 2 matched */
    int calls;              /* records seen */
} big_t;

static int
s_check_big (void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    big_t *b = (big_t *) arg;
    b->calls++;
    if (seq == 2 && len == b->len && memcmp (payload, b->want, len) == 0)
        b->big_ok = 1;
    return 0;
}

static void
test_big_record (void **state)
{
    const char *dir = (const char *) *state;
    size_t len = WC_WAL_MAX_RECORD;
    uint8_t *big = (uint8_t *) malloc (len);
    assert_non_null (big);
    for (size_t i = 0; i < len; i++)
        big [i] = (uint8_t) (i * 7 + i / 251);
    wc_wal_t *wal = wt_open_expect (dir, 0, 0, 0, NULL);
    assert_int_equal (wc_wal_append (wal, 1, "x", 1), 0);
    assert_int_equal (wc_wal_append (wal, 2, big, len), 0);
    assert_int_equal (wc_wal_append (wal, 3, "", 0), 0);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_destroy (&wal);

    //  Replay hands it over whole, though it is bigger than a read chunk.
    big_t b = { big, len, 0, 0 };
    int err;
    wc_wal_info_t info;
    wal = wc_wal_open (dir, 0, s_check_big, &b, &info, &err);
    assert_non_null (wal);
    assert_int_equal (info.records, 3);
    assert_int_equal (b.calls, 3);
    assert_true (b.big_ok);
    //  So does a read, even with a small budget.
    b = (big_t) { big, len, 0, 0 };
    assert_int_equal (wc_wal_read (wal, 1, 10, s_check_big, &b), 2);
    assert_true (b.big_ok);
    b = (big_t) { big, len, 0, 0 };
    assert_int_equal (wc_wal_read (wal, 2, 0, s_check_big, &b), 1);
    assert_true (b.big_ok);
    assert_int_equal (wc_wal_read (wal, 3, 0, s_check_big, &b), 1);
    wc_wal_destroy (&wal);
    free (big);
}

static void
test_rotation (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, 500);
    uint64_t seqs [200];
    size_t n = wt_segments (dir, seqs, 200);
    assert_true (n > 20);
    //  Names are the first seq of each file; each file passed the size
    //  only with its last record.
    assert_int_equal (seqs [0], 1);
    for (size_t i = 0; i < n; i++) {
        uint64_t last = i + 1 < n ? seqs [i + 1] - 1 : 500;
        uint64_t size = wt_offset_of (seqs [i], last + 1);
        assert_int_equal (wt_file_size (wt_path (dir, seqs [i])), (int64_t) size);
        if (i + 1 < n) {
            assert_true (size >= WT_SMALL_SEGMENT);
            assert_true (wt_offset_of (seqs [i], last) < WT_SMALL_SEGMENT);
        }
    }
    //  Replay crosses every segment, in order.
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, 500, NULL);
    //  Appends go on in new segments, one flush writing several files.
    wt_append_range (wal, 501, 700);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_destroy (&wal);
    assert_true (wt_segments (dir, seqs, 200) > n + 5);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, 700, NULL);
    wc_wal_destroy (&wal);
}

static void
test_read (void **state)
{
    const char *dir = (const char *) *state;
    //  Enough records for the sparse index to matter (~2.5 MB), in
    //  256 KiB segments.
    uint64_t first = 1000, last = 25999;
    size_t seg_bytes = 256 * 1024;
    wt_make_log (dir, seg_bytes, first, last);
    uint64_t seqs [64];
    size_t n = wt_segments (dir, seqs, 64);
    assert_true (n >= 5);
    wc_wal_t *wal = wt_open_expect (dir, seg_bytes, first, last, NULL);

    //  Every kind of start, one record each.
    wt_check_read (wal, first, 0, 1);
    wt_check_read (wal, first + 1, 0, 1);
    wt_check_read (wal, (first + last) / 2, 0, 1);
    wt_check_read (wal, last, 0, 1);
    wt_check_read (wal, last, SIZE_MAX, 1);
    for (size_t i = 1; i < n; i++) {
        wt_check_read (wal, seqs [i], 0, 1);        //  segment's first
        wt_check_read (wal, seqs [i] - 1, 0, 1);    //  previous one's last
    }
    for (uint64_t seq = first; seq <= last; seq += 37)
        wt_check_read (wal, seq, 0, 1);
    assert_int_equal (wc_wal_read (wal, last + 1, 1000, wt_collect, NULL), 0);
    assert_int_equal (wc_wal_read (wal, UINT64_MAX, 1000, wt_collect, NULL), 0);
    assert_int_equal (wc_wal_read (wal, first - 1, 1000, wt_collect, NULL), WALCAST_ERANGE);
    assert_int_equal (wc_wal_read (wal, 0, 1000, wt_collect, NULL), WALCAST_ERANGE);

    //  max_bytes: payloads add up to it, the last record may pass it.
    uint8_t buf [256];
    for (uint64_t from = first; from < last; from += 1999) {
        size_t budget = 5000;
        int count = 0;
        size_t bytes = 0;
        for (uint64_t seq = from; seq <= last && (count == 0 || bytes < budget); seq++) {
            bytes += wt_payload (seq, buf);
            count++;
        }
        wt_check_read (wal, from, budget, count);
    }
    //  A read that crosses segments runs to the end of the log.
    wt_check_read (wal, seqs [1] - 3, SIZE_MAX, (int) (last - (seqs [1] - 3) + 1));
    wt_check_read (wal, first, SIZE_MAX, (int) (last - first + 1));

    //  The callback can stop a read.
    wt_collect_t c = { .next = first + 10, .stop_at_count = 3, .stop_rc = 1 };
    assert_int_equal (wc_wal_read (wal, first + 10, SIZE_MAX, wt_collect, &c), 3);
    c = (wt_collect_t) { .next = first + 10, .stop_at_count = 3, .stop_rc = WALCAST_EBUSY };
    assert_int_equal (wc_wal_read (wal, first + 10, SIZE_MAX, wt_collect, &c), WALCAST_EBUSY);

    //  Only flushed records are readable; buffered ones still count in
    //  first/last seq.
    wt_append_range (wal, last + 1, last + 10);
    assert_int_equal (wc_wal_last_seq (wal), last + 10);
    assert_int_equal (wc_wal_read (wal, last + 1, 1000, wt_collect, NULL), 0);
    wt_check_read (wal, last, SIZE_MAX, 1);
    assert_int_equal (wc_wal_flush (wal), 0);
    wt_check_read (wal, last, SIZE_MAX, 11);
    wc_wal_destroy (&wal);

    //  A fresh log: first_seq counts buffered records, reads see nothing.
    wt_clear_dir (dir);
    wal = wt_open_expect (dir, 0, 0, 0, NULL);
    wt_append_range (wal, 5, 9);
    assert_int_equal (wc_wal_first_seq (wal), 5);
    assert_int_equal (wc_wal_read (wal, 5, 1000, wt_collect, NULL), 0);
    assert_int_equal (wc_wal_read (wal, 4, 1000, wt_collect, NULL), WALCAST_ERANGE);
    assert_int_equal (wc_wal_flush (wal), 0);
    wt_check_read (wal, 5, SIZE_MAX, 5);
    wc_wal_destroy (&wal);
}


//  --------------------------------------------------------------------
//  Recovery

static void
test_torn_tail (void **state)
{
    const char *dir = (const char *) *state;
    wc_log_set_level (WC_LOG_ERROR);
    //  seq 1..7; cut the file at every offset inside record 7.
    uint8_t buf [256];
    uint64_t good = wt_offset_of (1, 7);
    uint64_t full = good + 16 + wt_payload (7, buf);
    for (uint64_t cut = good; cut < full; cut++) {
        wt_clear_dir (dir);
        wt_make_log (dir, 0, 1, 7);
        char *path = wt_path (dir, 1);
        assert_int_equal (truncate (path, (off_t) cut), 0);
        wc_wal_info_t info;
        wc_wal_t *wal = wt_open_expect (dir, 0, 1, 6, &info);
        assert_int_equal (info.truncated_bytes, cut - good);
        assert_int_equal (info.removed_segments, 0);
        assert_int_equal (wt_file_size (path), (int64_t) good);
        //  New appends continue from the last good record.
        wt_append_range (wal, 7, 9);
        assert_int_equal (wc_wal_flush (wal), 0);
        wt_check_read (wal, 6, SIZE_MAX, 4);
        wc_wal_destroy (&wal);
        wal = wt_open_expect (dir, 0, 1, 9, &info);
        assert_int_equal (info.truncated_bytes, 0);
        wc_wal_destroy (&wal);
    }
    //  Cut inside the first record: the log is empty again and its file gone.
    wt_clear_dir (dir);
    wt_make_log (dir, 0, 1, 1);
    assert_int_equal (truncate (wt_path (dir, 1), 10), 0);
    wc_wal_t *wal = wt_open_expect (dir, 0, 0, 0, NULL);
    uint64_t seqs [4];
    assert_int_equal (wt_segments (dir, seqs, 4), 0);
    wt_append_range (wal, 1, 2);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, 0, 1, 2, NULL);
    wc_wal_destroy (&wal);
    wc_log_set_level (WC_LOG_INFO);
}

//  --------------------------------------------------------------------
//  Damage in the middle: nothing after it is deleted

//  The scenario, in small: about 80 segments of 1 KiB.
#define BIG_LOG 700u

//  A record of segment file first with a payload, at or after seq.
static uint64_t
s_victim (uint64_t seq)
{
    uint8_t buf [256];
    while (wt_payload (seq, buf) == 0)
        seq++;
    return seq;
}

//  A log of about BIG_LOG records whose last segment holds at least five
//  records (so a record in it can have records after it); returns its
//  last seq.
static uint64_t
s_make_big_log (const char *dir)
{
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    uint64_t seqs [200];
    size_t n = wt_segments (dir, seqs, 200);
    uint64_t last = BIG_LOG;
    if (last < seqs [n - 1] + 4) {
        wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, last, NULL);
        wt_append_range (wal, last + 1, seqs [n - 1] + 4);
        wc_wal_destroy (&wal);
        last = seqs [n - 1] + 4;
    }
    assert_int_equal (wt_segments (dir, seqs, 200), n);
    return last;
}

//  Check what wc_wal_open said about damage.
static void
s_assert_damage (const wc_wal_info_t *info, uint64_t file_seq, uint64_t offset,
                 uint64_t seq, uint64_t valid_from, uint64_t valid_to, const char *what)
{
    assert_true (info->damaged);
    assert_string_equal (info->damage_file, wt_name (file_seq));
    assert_int_equal (info->damage_offset, offset);
    assert_int_equal (info->damage_seq, seq);
    assert_int_equal (info->damage_valid_from, valid_from);
    assert_int_equal (info->damage_valid_to, valid_to);
    assert_non_null (strstr (info->damage_reason, what));
    assert_int_equal (info->truncated_bytes, 0);
    assert_int_equal (info->removed_segments, 0);
}

//  A damaged log refuses appends and flushes nothing, reads what it has.
static void
s_assert_refuses (wc_wal_t *wal, uint64_t last)
{
    assert_true (wc_wal_damaged (wal));
    uint8_t buf [256];
    size_t len = wt_payload (last + 1, buf);
    assert_int_equal (wc_wal_append (wal, last + 1, buf, len), WALCAST_EIO);
    assert_non_null (strstr (wc_wal_last_error (wal), "damaged"));
    assert_int_equal (wc_wal_last_seq (wal), last);
    assert_int_equal (wc_wal_flush (wal), 0);
    if (last > 0) {
        wt_check_read (wal, 1, SIZE_MAX, (int) last);
        assert_int_equal (wc_wal_read (wal, last + 1, 1000, NULL, NULL), 0);
    }
}

//  After wc_wal_set_aside: every file of before is in the directory,
//  whole, either under its own name or as <name>.damaged, except the one
//  cut at cut_offset (0: none), which must also have a whole copy.
static void
s_assert_set_aside (const char *dir, const wt_snapshot_t *before,
                    uint64_t cut_seq, uint64_t cut_offset)
{
    wt_snapshot_t after;
    wt_snapshot (dir, &after);
    for (size_t i = 0; i < before->count; i++) {
        const wt_file_t *old = &before->files [i];
        char aside [80];
        snprintf (aside, sizeof aside, "%s.damaged", old->name);
        const wt_file_t *live = wt_snapshot_find (&after, old->name);
        const wt_file_t *copy = wt_snapshot_find (&after, aside);
        if (cut_offset && strcmp (old->name, wt_name (cut_seq)) == 0) {
            assert_non_null (live);
            assert_non_null (copy);
            assert_int_equal (live->size, (int64_t) cut_offset);
            assert_int_equal (live->crc, wt_file_prefix_crc (dir, aside, cut_offset));
        }
        else {
            assert_true ((live == NULL) != (copy == NULL));
            if (!copy)
                copy = live;
        }
        assert_int_equal (copy->size, old->size);
        assert_int_equal (copy->crc, old->crc);
    }
}

static void
test_damage_flipped_byte (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    uint64_t seqs [200];
    size_t n = wt_segments (dir, seqs, 200);
    assert_true (n > 70);
    //  One byte of a payload in the middle of segment 35.
    uint64_t victim = s_victim (seqs [35] + 2);
    assert_true (victim < seqs [36]);
    uint64_t off = wt_offset_of (seqs [35], victim);
    wt_flip (wt_path (dir, seqs [35]), off + 16, 0x01);
    wt_snapshot_t before, now;
    wt_snapshot (dir, &before);

    wc_wal_info_t info;
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, victim - 1, &info);
    wt_snapshot (dir, &now);
    wt_assert_same (&before, &now);
    s_assert_damage (&info, seqs [35], off, victim, victim + 1, BIG_LOG, "CRC mismatch");
    char where [64];
    snprintf (where, sizeof where, "offset %llu", (unsigned long long) off);
    assert_non_null (strstr (info.damage_reason, where));
    assert_non_null (strstr (info.damage_reason, wt_name (seqs [35])));
    s_assert_refuses (wal, victim - 1);
    //  Opening again finds the same, and still changes nothing.
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, victim - 1, &info);
    s_assert_damage (&info, seqs [35], off, victim, victim + 1, BIG_LOG, "CRC mismatch");
    wt_snapshot (dir, &now);
    wt_assert_same (&before, &now);

    //  Set aside from the damage: the log ends before it, appends go on.
    assert_int_equal (wc_wal_set_aside (wal, victim), 0);
    assert_false (wc_wal_damaged (wal));
    assert_int_equal (wc_wal_last_seq (wal), victim - 1);
    assert_int_equal (wc_wal_written (wal), victim - 1);
    s_assert_set_aside (dir, &before, seqs [35], off);
    wt_append_range (wal, victim, victim + 50);
    assert_int_equal (wc_wal_flush (wal), 0);
    wt_check_read (wal, victim - 3, SIZE_MAX, 54);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, victim + 50, &info);
    assert_false (info.damaged);
    assert_false (wc_wal_damaged (wal));
    wc_wal_destroy (&wal);
}

static void
test_damage_missing_segment (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    uint64_t seqs [200];
    size_t n = wt_segments (dir, seqs, 200);
    assert_int_equal (unlink (wt_path (dir, seqs [35])), 0);
    wt_snapshot_t before, now;
    wt_snapshot (dir, &before);
    wc_wal_info_t info;
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, seqs [35] - 1, &info);
    wt_snapshot (dir, &now);
    wt_assert_same (&before, &now);
    s_assert_damage (&info, seqs [36], 0, seqs [35], seqs [36], BIG_LOG, "missing");
    s_assert_refuses (wal, seqs [35] - 1);

    assert_int_equal (wc_wal_set_aside (wal, seqs [35]), 0);
    s_assert_set_aside (dir, &before, 0, 0);
    uint64_t left [200];
    assert_int_equal (wt_segments (dir, left, 200), 35);
    assert_int_equal (before.count, n - 1);
    wt_append_range (wal, seqs [35], BIG_LOG + 10);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, BIG_LOG + 10, &info);
    assert_false (info.damaged);
    wc_wal_destroy (&wal);
}

static void
test_damage_missing_first (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    uint64_t seqs [200];
    wt_segments (dir, seqs, 200);
    assert_int_equal (unlink (wt_path (dir, seqs [0])), 0);
    wt_snapshot_t before, now;
    wt_snapshot (dir, &before);
    //  The log says where it starts; whether that is a missing beginning
    //  is for the engine to say.
    wc_wal_info_t info;
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, seqs [1], BIG_LOG, &info);
    assert_false (info.damaged);
    wt_snapshot (dir, &now);
    wt_assert_same (&before, &now);
    assert_int_equal (wc_wal_read (wal, 1, 100, NULL, NULL), WALCAST_ERANGE);

    //  Setting the whole log aside leaves it empty, every byte kept.
    assert_int_equal (wc_wal_set_aside (wal, seqs [1]), 0);
    s_assert_set_aside (dir, &before, 0, 0);
    uint64_t left [4];
    assert_int_equal (wt_segments (dir, left, 4), 0);
    assert_int_equal (wc_wal_first_seq (wal), 0);
    assert_int_equal (wc_wal_last_seq (wal), 0);
    wt_append_range (wal, 1, 30);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, 30, &info);
    assert_false (info.damaged);
    wc_wal_destroy (&wal);
}

static void
test_damage_rejected_payload (void **state)
{
    const char *dir = (const char *) *state;
    uint64_t end = s_make_big_log (dir);
    uint64_t seqs [200];
    size_t n = wt_segments (dir, seqs, 200);
    wt_snapshot_t before, now;
    wt_snapshot (dir, &before);
    //  A CRC-valid record in a middle segment that is not an entry.
    uint64_t bad = seqs [20] + 3;
    uint64_t off = wt_offset_of (seqs [20], bad);
    wc_wal_info_t info;
    wc_wal_t *wal = wt_open_reject (dir, WT_SMALL_SEGMENT, 1, bad - 1, &info, bad);
    s_assert_damage (&info, seqs [20], off, bad, bad + 1, end, "not an entry");
    char where [96];
    snprintf (where, sizeof where, "%s at offset %llu", wt_name (seqs [20]),
              (unsigned long long) off);
    assert_non_null (strstr (info.damage_reason, where));
    s_assert_refuses (wal, bad - 1);
    wc_wal_destroy (&wal);
    wt_snapshot (dir, &now);
    wt_assert_same (&before, &now);

    //  The same in the last segment with records after it: damage too.
    bad = seqs [n - 1] + 1;
    assert_true (bad < end);
    wal = wt_open_reject (dir, WT_SMALL_SEGMENT, 1, bad - 1, &info, bad);
    s_assert_damage (&info, seqs [n - 1], wt_offset_of (seqs [n - 1], bad), bad,
                     bad + 1, end, "not an entry");
    wc_wal_destroy (&wal);
    wt_snapshot (dir, &now);
    wt_assert_same (&before, &now);

    //  The very last record: a torn tail, cut.
    wal = wt_open_reject (dir, WT_SMALL_SEGMENT, 1, end - 1, &info, end);
    assert_false (info.damaged);
    uint8_t buf [256];
    assert_int_equal (info.truncated_bytes, 16 + wt_payload (end, buf));
    assert_int_equal (wt_file_size (wt_path (dir, seqs [n - 1])),
                      (int64_t) wt_offset_of (seqs [n - 1], end));
    wc_wal_destroy (&wal);

    //  Any other error from the callback stops the open, as before.
    wt_collect_t c = { .stop_at_count = 5, .stop_rc = WALCAST_ENOMEM };
    int err = 0;
    assert_null (wc_wal_open (dir, WT_SMALL_SEGMENT, wt_collect, &c, NULL, &err));
    assert_int_equal (err, WALCAST_ENOMEM);
}

static void
test_damage_last_segment (void **state)
{
    const char *dir = (const char *) *state;
    uint64_t end = s_make_big_log (dir);
    uint64_t seqs [200];
    size_t n = wt_segments (dir, seqs, 200);
    uint64_t first = seqs [n - 1];
    assert_true (end - first >= 3);
    //  A flipped bit in the seq of a record with records after it.
    uint64_t bad = first + 1;
    uint64_t off = wt_offset_of (first, bad);
    wt_flip (wt_path (dir, first), off + 8, 0x80);
    wt_snapshot_t before, now;
    wt_snapshot (dir, &before);
    wc_wal_info_t info;
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, bad - 1, &info);
    s_assert_damage (&info, first, off, bad, bad + 1, end, "CRC mismatch");
    wt_snapshot (dir, &now);
    wt_assert_same (&before, &now);
    wc_wal_destroy (&wal);

    //  A wild length field in the middle of the last segment.
    wt_flip (wt_path (dir, first), off + 8, 0x80);
    wt_flip (wt_path (dir, first), off + 3, 0x40);
    wt_snapshot (dir, &before);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, bad - 1, &info);
    s_assert_damage (&info, first, off, bad, bad + 1, end, "length");
    wc_wal_destroy (&wal);
    wt_snapshot (dir, &now);
    wt_assert_same (&before, &now);
}

static void
test_damage_ranges (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    uint64_t seqs [200];
    size_t n = wt_segments (dir, seqs, 200);
    uint8_t buf [256];
    //  Two damaged records: the valid range after the first ends before
    //  the second.
    uint64_t a = s_victim (seqs [10] + 1), b = s_victim (seqs [50] + 1);
    wt_flip (wt_path (dir, seqs [10]), wt_offset_of (seqs [10], a) + 16, 0x10);
    wt_flip (wt_path (dir, seqs [50]), wt_offset_of (seqs [50], b) + 16, 0x10);
    wc_wal_info_t info;
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, a - 1, &info);
    s_assert_damage (&info, seqs [10], wt_offset_of (seqs [10], a), a, a + 1, b - 1,
                     "CRC mismatch");
    wc_wal_destroy (&wal);

    //  The last record of a middle segment: the valid range starts with
    //  the next file.
    wt_clear_dir (dir);
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    a = seqs [30] - 1;
    wt_flip (wt_path (dir, seqs [29]), wt_offset_of (seqs [29], a) + 4, 0x10);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, a - 1, &info);
    s_assert_damage (&info, seqs [29], wt_offset_of (seqs [29], a), a, seqs [30],
                     BIG_LOG, "CRC mismatch");
    wc_wal_destroy (&wal);

    //  An empty file in the middle.
    wt_clear_dir (dir);
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    assert_int_equal (truncate (wt_path (dir, seqs [5]), 0), 0);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, seqs [5] - 1, &info);
    s_assert_damage (&info, seqs [5], 0, seqs [5], seqs [6], BIG_LOG, "no record");
    wc_wal_destroy (&wal);

    //  A segment whose first record is not the one its name says.
    wt_clear_dir (dir);
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    size_t len = wt_payload (seqs [2] + 7, buf);
    uint8_t frame [300];
    size_t flen = wt_frame (frame, (uint32_t) len, seqs [2] + 7, buf, len);
    wt_write_at (wt_path (dir, seqs [2]), 0, frame, flen);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, seqs [2] - 1, &info);
    assert_true (info.damaged);
    assert_string_equal (info.damage_file, wt_name (seqs [2]));
    assert_int_equal (info.damage_offset, 0);
    assert_int_equal (info.damage_seq, seqs [2]);
    assert_true (info.damage_valid_from > seqs [2]);
    assert_true (info.damage_valid_from < seqs [3]);
    assert_int_equal (info.damage_valid_to, BIG_LOG);
    assert_non_null (strstr (info.damage_reason, "out-of-sequence"));
    //  Nothing valid after the damage at all: 0, 0.
    wc_wal_destroy (&wal);
    wt_clear_dir (dir);
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    n = wt_segments (dir, seqs, 200);
    for (size_t i = 4; i < n; i++)
        assert_int_equal (truncate (wt_path (dir, seqs [i]), 5), 0);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, seqs [4] - 1, &info);
    s_assert_damage (&info, seqs [4], 0, seqs [4], 0, 0, "torn record");
    wc_wal_destroy (&wal);
}

static void
test_set_aside (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    uint64_t seqs [200];
    wt_segments (dir, seqs, 200);
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, BIG_LOG, NULL);
    //  Out of range.
    assert_int_equal (wc_wal_set_aside (wal, 0), WALCAST_ERANGE);
    assert_int_equal (wc_wal_set_aside (wal, BIG_LOG + 2), WALCAST_ERANGE);
    //  Past the end: nothing to move.
    wt_snapshot_t before, now;
    wt_snapshot (dir, &before);
    assert_int_equal (wc_wal_set_aside (wal, BIG_LOG + 1), 0);
    wt_snapshot (dir, &now);
    wt_assert_same (&before, &now);
    //  Buffered records are written first.
    wt_append_range (wal, BIG_LOG + 1, BIG_LOG + 5);
    assert_int_equal (wc_wal_written (wal), BIG_LOG);
    assert_int_equal (wc_wal_set_aside (wal, BIG_LOG + 6), 0);
    assert_int_equal (wc_wal_written (wal), BIG_LOG + 5);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, BIG_LOG + 5, NULL);
    wt_snapshot (dir, &before);
    //  From a seq inside a segment of a clean log (a divergent tail).
    uint64_t from = seqs [40] + 2;
    assert_int_equal (wc_wal_set_aside (wal, from), 0);
    s_assert_set_aside (dir, &before, seqs [40], wt_offset_of (seqs [40], from));
    assert_int_equal (wc_wal_last_seq (wal), from - 1);
    wt_check_read (wal, 1, SIZE_MAX, (int) (from - 1));
    wt_append_range (wal, from, from + 3);
    assert_int_equal (wc_wal_flush (wal), 0);
    //  Again from the same segment: its copy is .damaged.1.
    assert_int_equal (wc_wal_set_aside (wal, from + 1), 0);
    char path [512];
    snprintf (path, sizeof path, "%s/%s.damaged.1", dir, wt_name (seqs [40]));
    assert_int_equal (wt_file_size (path),
                      (int64_t) wt_offset_of (seqs [40], from + 4));
    //  From the first record of a segment: renamed whole.
    assert_int_equal (wc_wal_set_aside (wal, seqs [20]), 0);
    snprintf (path, sizeof path, "%s/%s.damaged", dir, wt_name (seqs [20]));
    assert_true (wt_file_size (path) > 0);
    assert_int_equal (wt_file_size (wt_path (dir, seqs [20])), -1);
    assert_int_equal (wc_wal_last_seq (wal), seqs [20] - 1);
    wt_append_range (wal, seqs [20], seqs [20] + 100);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, seqs [20] + 100, NULL);
    wc_wal_destroy (&wal);
}

static void
test_set_aside_failures (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    uint64_t seqs [200];
    wt_segments (dir, seqs, 200);
    uint64_t victim = s_victim (seqs [35] + 2);
    wt_flip (wt_path (dir, seqs [35]), wt_offset_of (seqs [35], victim) + 16, 0x01);
    wt_snapshot_t before;
    wt_snapshot (dir, &before);
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, victim - 1, NULL);
    //  Each step fails in turn; the log stays damaged until a call works,
    //  and no byte is lost on the way.
    struct { wc_vfs_op_t op; int err; int want; } faults [] = {
        { WC_VFS_RENAME, EIO, WALCAST_EIO }, { WC_VFS_OPEN, EMFILE, WALCAST_EIO },
        { WC_VFS_WRITE, ENOSPC, WALCAST_ENOSPC }, { WC_VFS_SYNC, EIO, WALCAST_EIO },
        { WC_VFS_TRUNCATE, EIO, WALCAST_EIO }
    };
    for (size_t k = 0; k < sizeof faults / sizeof faults [0]; k++) {
        wc_vfs_fail (faults [k].op, k == 0 ? 3 : 0, -1, faults [k].err);
        assert_int_equal (wc_wal_set_aside (wal, victim), faults [k].want);
        wc_vfs_reset ();
        assert_true (wc_wal_damaged (wal));
        uint8_t buf [256];
        assert_int_equal (wc_wal_append (wal, victim, buf, wt_payload (victim, buf)),
                          WALCAST_EIO);
        assert_true (strlen (wc_wal_last_error (wal)) > 0);
    }
    assert_int_equal (wc_wal_set_aside (wal, victim), 0);
    s_assert_set_aside (dir, &before, seqs [35], wt_offset_of (seqs [35], victim));
    wt_append_range (wal, victim, victim + 10);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, victim + 10, NULL);
    wc_wal_destroy (&wal);
}

static void
test_out_of_sequence (void **state)
{
    const char *dir = (const char *) *state;
    uint8_t frame [300], buf [256];
    //  A well-formed record with the wrong seq at the end of a file.
    wt_make_log (dir, 0, 1, 20);
    size_t len = wt_payload (22, buf);
    size_t flen = wt_frame (frame, (uint32_t) len, 22, buf, len);
    int64_t good = wt_file_size (wt_path (dir, 1));
    wt_append_file (wt_path (dir, 1), frame, flen);
    wc_wal_info_t info;
    wc_wal_t *wal = wt_open_expect (dir, 0, 1, 20, &info);
    assert_int_equal (info.truncated_bytes, flen);
    assert_false (info.damaged);
    assert_int_equal (wt_file_size (wt_path (dir, 1)), good);
    //  A repeated seq is out of sequence too.
    wc_wal_destroy (&wal);
    len = wt_payload (20, buf);
    flen = wt_frame (frame, (uint32_t) len, 20, buf, len);
    wt_append_file (wt_path (dir, 1), frame, flen);
    wal = wt_open_expect (dir, 0, 1, 20, &info);
    assert_int_equal (info.truncated_bytes, flen);
    wc_wal_destroy (&wal);
    //  Old records after the good ones (a stale tail): cut as well.
    wt_clear_dir (dir);
    wt_make_log (dir, 0, 1, 20);
    good = wt_file_size (wt_path (dir, 1));
    for (uint64_t seq = 5; seq < 9; seq++) {
        len = wt_payload (seq, buf);
        flen = wt_frame (frame, (uint32_t) len, seq, buf, len);
        wt_append_file (wt_path (dir, 1), frame, flen);
    }
    wal = wt_open_expect (dir, 0, 1, 20, &info);
    assert_false (info.damaged);
    assert_int_equal (wt_file_size (wt_path (dir, 1)), good);
    wc_wal_destroy (&wal);
}

static void
test_garbage_and_huge_length (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, 0, 1, 50);
    char *path = wt_path (dir, 1);
    int64_t good = wt_file_size (path);
    uint8_t junk [1000];
    srand (7);
    for (size_t i = 0; i < sizeof junk; i++)
        junk [i] = (uint8_t) rand ();
    wt_append_file (path, junk, sizeof junk);
    wc_wal_info_t info;
    wc_wal_t *wal = wt_open_expect (dir, 0, 1, 50, &info);
    assert_int_equal (info.truncated_bytes, sizeof junk);
    assert_int_equal (wt_file_size (path), good);
    wc_wal_destroy (&wal);

    //  Zeros (a preallocated or half-written tail) are cut too.
    memset (junk, 0, sizeof junk);
    wt_append_file (path, junk, sizeof junk);
    wal = wt_open_expect (dir, 0, 1, 50, &info);
    assert_int_equal (info.truncated_bytes, sizeof junk);
    wc_wal_destroy (&wal);

    //  Length fields over the limit, with enough bytes behind them that
    //  only the limit can reject them.
    uint32_t lens [] = { 0xFFFFFFFFu, 0x80000000u, WC_WAL_MAX_RECORD + 1 };
    for (size_t k = 0; k < 3; k++) {
        uint8_t head [16] = { 0 };
        for (int i = 0; i < 4; i++)
            head [i] = (uint8_t) (lens [k] >> (8 * i));
        head [8] = 51;
        wt_append_file (path, head, sizeof head);
        wt_append_file (path, junk, sizeof junk);
        wal = wt_open_expect (dir, 0, 1, 50, &info);
        assert_int_equal (info.truncated_bytes, sizeof head + sizeof junk);
        assert_int_equal (wt_file_size (path), good);
        wc_wal_destroy (&wal);
    }
    //  A length that runs past the end of the file is a torn record.
    uint8_t head [16] = { 0x00, 0x10, 0, 0 };
    wt_append_file (path, head, sizeof head);
    wal = wt_open_expect (dir, 0, 1, 50, &info);
    assert_int_equal (info.truncated_bytes, sizeof head);
    //  Appending after all that, then reopening, keeps everything.
    wt_append_range (wal, 51, 80);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, 0, 1, 80, NULL);
    wc_wal_destroy (&wal);
}

static void
test_stray_files (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, 60);
    //  Unrelated files stay and are ignored.
    const char *others [] = { "notes.txt", "wal-123.log", "wal-00000000000000000001.log.bak",
                              "wal-0000000000000000000x.log", "wal-00000000000000000000.log" };
    char path [512];
    for (size_t i = 0; i < 5; i++) {
        snprintf (path, sizeof path, "%s/%s", dir, others [i]);
        FILE *f = fopen (path, "w");
        assert_non_null (f);
        fputs ("hello", f);
        fclose (f);
    }
    uint64_t seqs [50];
    size_t n = wt_segments (dir, seqs, 50);
    //  An empty last segment (crash right after creating it) goes away.
    uint64_t next = 61;
    FILE *f = fopen (wt_path (dir, next), "w");
    fclose (f);
    wc_wal_info_t info;
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, 60, &info);
    assert_int_equal (info.truncated_bytes, 0);
    assert_int_equal (wt_segments (dir, seqs, 50), n);
    wt_append_range (wal, 61, 100);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, 100, NULL);
    wc_wal_destroy (&wal);
    for (size_t i = 0; i < 5; i++) {
        snprintf (path, sizeof path, "%s/%s", dir, others [i]);
        assert_int_equal (wt_file_size (path), 5);
    }
}

static void
test_truncate_reopen_cycles (void **state)
{
    const char *dir = (const char *) *state;
    wc_log_set_level (WC_LOG_ERROR);
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, 100);
    uint64_t last = 100;
    for (int round = 0; round < 5; round++) {
        //  Tear the last record of the last segment.
        uint64_t seqs [200];
        size_t n = wt_segments (dir, seqs, 200);
        char *path = wt_path (dir, seqs [n - 1]);
        int64_t size = wt_file_size (path);
        uint64_t keep = wt_offset_of (seqs [n - 1], last);
        assert_int_equal (truncate (path, (off_t) (keep + ((uint64_t) size - keep) / 2)), 0);
        last--;
        wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, last, NULL);
        wt_append_range (wal, last + 1, last + 30);
        last += 30;
        assert_int_equal (wc_wal_flush (wal), 0);
        wc_wal_destroy (&wal);
        wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, last, NULL);
        wt_check_read (wal, 1, SIZE_MAX, (int) last);
        wc_wal_destroy (&wal);
    }
    wc_log_set_level (WC_LOG_INFO);
}


//  --------------------------------------------------------------------
//  Flush failures: RLIMIT_FSIZE makes writes past a size fail (EFBIG),
//  the way a full disk makes them fail with ENOSPC.

static struct rlimit s_saved_limit;

static void
s_limit_file_size (rlim_t bytes)
{
    signal (SIGXFSZ, SIG_IGN);
    assert_int_equal (getrlimit (RLIMIT_FSIZE, &s_saved_limit), 0);
    struct rlimit lim = s_saved_limit;
    lim.rlim_cur = bytes;
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &lim), 0);
    s_limited = 1;
}

static void
s_unlimit_file_size (void)
{
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &s_saved_limit), 0);
    s_limited = 0;
}

static void
test_flush_failure (void **state)
{
    const char *dir = (const char *) *state;
    //  One segment: the write crosses the limit; the records that fit
    //  whole stay, the one cut in two goes.
    wt_make_log (dir, 0, 1, 10);
    char *path = wt_path (dir, 1);
    int64_t good = wt_file_size (path);
    wc_wal_t *wal = wt_open_expect (dir, 0, 1, 10, NULL);
    s_limit_file_size ((rlim_t) good + 500);
    wt_append_range (wal, 11, 60);
    assert_int_equal (wc_wal_flush (wal), WALCAST_ENOSPC);
    s_unlimit_file_size ();
    uint64_t fits = 10;
    while (wt_offset_of (1, fits + 2) <= (uint64_t) good + 500)
        fits++;
    assert_true (fits > 10 && fits < 60);
    assert_int_equal (wc_wal_written (wal), fits);
    assert_int_equal (wc_wal_last_seq (wal), fits);
    assert_int_equal (wt_file_size (path), (int64_t) wt_offset_of (1, fits + 1));
    assert_non_null (strstr (wc_wal_last_error (wal), "File too large"));
    assert_int_equal (wc_wal_read (wal, fits + 1, 1000, NULL, NULL), 0);
    wt_check_read (wal, 1, SIZE_MAX, (int) fits);
    //  The log goes on once there is room.
    wt_append_range (wal, fits + 1, 60);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, 0, 1, 60, NULL);
    wc_wal_destroy (&wal);

    //  Across a rotation: the first segment fills, the new one cannot be
    //  written and is removed, the full one keeps its records.
    wt_clear_dir (dir);
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, 3);
    good = wt_file_size (wt_path (dir, 1));
    assert_true (good < WT_SMALL_SEGMENT);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, 3, NULL);
    uint64_t last = 3;
    while (wt_offset_of (1, last + 1) < WT_SMALL_SEGMENT)
        last++;         //  record last passes the segment size
    s_limit_file_size ((rlim_t) wt_offset_of (1, last + 1) + 50);
    wt_append_range (wal, 4, last);
    //  One record in the new segment, too big for the limit.
    static uint8_t big [3000];
    assert_int_equal (wc_wal_append (wal, last + 1, big, sizeof big), 0);
    assert_int_equal (wc_wal_flush (wal), WALCAST_ENOSPC);
    assert_int_equal (wc_wal_last_seq (wal), last);
    assert_int_equal (wc_wal_written (wal), last);
    assert_int_equal (wc_wal_first_seq (wal), 1);
    s_unlimit_file_size ();
    uint64_t seqs [8];
    assert_int_equal (wt_segments (dir, seqs, 8), 1);
    assert_int_equal (wt_file_size (wt_path (dir, 1)), (int64_t) wt_offset_of (1, last + 1));
    wt_check_read (wal, 1, SIZE_MAX, (int) last);
    wt_append_range (wal, last + 1, last + 40);
    assert_int_equal (wc_wal_flush (wal), 0);
    assert_true (wt_segments (dir, seqs, 8) >= 2);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, last + 40, NULL);
    wc_wal_destroy (&wal);

    //  An empty log whose first record does not fit is empty again, and
    //  takes any first seq.
    wt_clear_dir (dir);
    wal = wt_open_expect (dir, 0, 0, 0, NULL);
    s_limit_file_size (10);
    wt_append_range (wal, 7, 20);
    assert_int_equal (wc_wal_flush (wal), WALCAST_ENOSPC);
    s_unlimit_file_size ();
    assert_int_equal (wc_wal_first_seq (wal), 0);
    assert_int_equal (wc_wal_last_seq (wal), 0);
    assert_int_equal (wt_segments (dir, seqs, 8), 0);
    wt_append_range (wal, 3, 5);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, 0, 3, 5, NULL);
    wc_wal_destroy (&wal);
    //  ... and when its first record fits, the log holds it.
    wt_clear_dir (dir);
    wal = wt_open_expect (dir, 0, 0, 0, NULL);
    uint8_t buf [256];
    s_limit_file_size ((rlim_t) (16 + wt_payload (7, buf) + 10));
    wt_append_range (wal, 7, 20);
    assert_int_equal (wc_wal_flush (wal), WALCAST_ENOSPC);
    s_unlimit_file_size ();
    assert_int_equal (wc_wal_first_seq (wal), 7);
    assert_int_equal (wc_wal_last_seq (wal), 7);
    wt_append_range (wal, 8, 20);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, 0, 7, 20, NULL);
    wc_wal_destroy (&wal);
}


//  --------------------------------------------------------------------
//  Speed: 1M records of ~120 bytes, appended and flushed in batches,
//  then replayed and read back.

static int
s_count_only (void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    (void) seq; (void) payload;
    *(uint64_t *) arg += len;
    return 0;
}

static void
test_bulk (void **state)
{
    const char *dir = (const char *) *state;
    const uint64_t total = 1000000;
    uint8_t payload [120];
    for (size_t i = 0; i < sizeof payload; i++)
        payload [i] = (uint8_t) (i * 3);
    wc_wal_t *wal = wt_open_expect (dir, 0, 0, 0, NULL);
    double t0 = s_now ();
    for (uint64_t seq = 1; seq <= total; seq++) {
        memcpy (payload, &seq, sizeof seq);
        assert_int_equal (wc_wal_append (wal, seq, payload, sizeof payload), 0);
        if (seq % 1000 == 0)
            assert_int_equal (wc_wal_flush (wal), 0);
    }
    assert_int_equal (wc_wal_flush (wal), 0);
    double t1 = s_now ();
    wc_wal_destroy (&wal);

    uint64_t bytes = 0;
    wc_wal_info_t info;
    int err;
    double t2 = s_now ();
    wal = wc_wal_open (dir, 0, s_count_only, &bytes, &info, &err);
    double t3 = s_now ();
    assert_non_null (wal);
    assert_int_equal (info.records, total);
    assert_int_equal (bytes, total * sizeof payload);
    //  Catch-up style reads of ~1 MiB from spread-out seqs.
    double t4 = s_now ();
    int reads = 0;
    for (uint64_t from = 1; from <= total; from += 9973) {
        bytes = 0;
        assert_true (wc_wal_read (wal, from, 1024 * 1024, s_count_only, &bytes) > 0);
        reads++;
    }
    double t5 = s_now ();
    wc_wal_destroy (&wal);
    print_message ("bulk: 1M x 120 B: append+flush %.3f s, replay %.3f s, "
                   "%d reads of 1 MiB %.3f s (%.1f us each)\n",
                   t1 - t0, t3 - t2, reads, t5 - t4, (t5 - t4) * 1e6 / reads);
}

//  --------------------------------------------------------------------
//  Shortening the log on purpose

//  Open dir expecting a clean log that begins at first and ends
//  somewhere in lo..hi; returns where it ends.
static uint64_t
s_open_ends_between (const char *dir, uint64_t first, uint64_t lo, uint64_t hi)
{
    wt_collect_t c = { .next = first };
    wc_wal_info_t info;
    int err = 0;
    wc_wal_t *wal = wc_wal_open (dir, WT_SMALL_SEGMENT, wt_collect, &c, &info, &err);
    assert_non_null (wal);
    assert_false (info.damaged);
    assert_int_equal (c.bad, 0);
    assert_int_equal (info.first_seq, first);
    assert_true (info.last_seq >= lo && info.last_seq <= hi);
    wc_wal_destroy (&wal);
    return info.last_seq;
}

//  A tail dropped on purpose is gone (not set aside), across segments;
//  buffered records go too; appends go on from the cut; truncating to 0
//  empties the log, which then takes any seq.
static void
test_truncate (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    uint64_t seqs [200];
    size_t nsegs = wt_segments (dir, seqs, 200);
    assert_true (nsegs > 45);
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, BIG_LOG, NULL);
    assert_int_equal (wc_wal_truncate (wal, BIG_LOG + 1), WALCAST_ERANGE);
    wt_append_range (wal, BIG_LOG + 1, BIG_LOG + 5);
    uint64_t cut = seqs [40] + 2;
    assert_int_equal (wc_wal_truncate (wal, cut), 0);
    assert_int_equal (wc_wal_last_seq (wal), cut);
    assert_int_equal (wc_wal_written (wal), cut);
    assert_int_equal (wt_segments (dir, seqs, 200), 41);
    assert_int_equal (wt_file_size (wt_path (dir, seqs [40])),
                      (int64_t) wt_offset_of (seqs [40], cut + 1));
    wt_check_read (wal, 1, SIZE_MAX, (int) cut);
    wt_check_read (wal, cut + 1, SIZE_MAX, 0);
    wt_append_range (wal, cut + 1, cut + 10);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, cut + 10, NULL);

    //  At the last record of a segment: the next file goes whole
    uint64_t size_19 = (uint64_t) wt_file_size (wt_path (dir, seqs [19]));
    assert_int_equal (wc_wal_truncate (wal, seqs [20] - 1), 0);
    assert_int_equal (wt_segments (dir, seqs, 200), 20);
    assert_int_equal (wt_file_size (wt_path (dir, seqs [19])), (int64_t) size_19);

    //  Everything
    assert_int_equal (wc_wal_truncate (wal, 0), 0);
    assert_int_equal (wt_segments (dir, seqs, 200), 0);
    assert_int_equal (wc_wal_first_seq (wal), 0);
    assert_int_equal (wc_wal_last_seq (wal), 0);
    wt_append_range (wal, 500, 510);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 500, 510, NULL);
    wc_wal_destroy (&wal);
    //  No file was set aside on the way
    wt_snapshot_t now;
    wt_snapshot (dir, &now);
    for (size_t i = 0; i < now.count; i++)
        assert_null (strstr (now.files [i].name, ".damaged"));
}

//  Each step of a truncation fails in turn: the call says so, the log on
//  disk is always a clean run from seq 1 ending between the cut and its
//  old end (never a hole), and a second call finishes the job.
static void
test_truncate_failures (void **state)
{
    const char *dir = (const char *) *state;
    struct { wc_vfs_op_t op; uint64_t after; } faults [] = {
        { WC_VFS_UNLINK, 0 }, { WC_VFS_UNLINK, 3 }, { WC_VFS_SYNC, 0 },
        { WC_VFS_SYNC, 4 }, { WC_VFS_TRUNCATE, 0 }, { WC_VFS_OPEN, 0 },
    };
    for (size_t k = 0; k < sizeof faults / sizeof faults [0]; k++) {
        wt_clear_dir (dir);
        wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
        uint64_t seqs [200];
        wt_segments (dir, seqs, 200);
        uint64_t cut = seqs [30] + 2;
        wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, BIG_LOG, NULL);
        wc_vfs_fail (faults [k].op, faults [k].after, -1, EIO);
        assert_int_equal (wc_wal_truncate (wal, cut), WALCAST_EIO);
        wc_vfs_reset ();
        assert_true (strlen (wc_wal_last_error (wal)) > 0);
        wt_check_read (wal, 1, SIZE_MAX, (int) wc_wal_last_seq (wal));
        //  The same log object finishes the job...
        assert_int_equal (wc_wal_truncate (wal, cut), 0);
        assert_int_equal (wc_wal_last_seq (wal), cut);
        wc_wal_destroy (&wal);
        wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, cut, NULL);
        wc_wal_destroy (&wal);

        //  ...and so does a restart after the failure
        wt_clear_dir (dir);
        wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
        wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, BIG_LOG, NULL);
        wc_vfs_fail (faults [k].op, faults [k].after, -1, EIO);
        assert_int_equal (wc_wal_truncate (wal, cut), WALCAST_EIO);
        wc_vfs_reset ();
        wc_wal_destroy (&wal);
        uint64_t last = s_open_ends_between (dir, 1, cut, BIG_LOG);
        wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, last, NULL);
        assert_int_equal (wc_wal_truncate (wal, cut), 0);
        wc_wal_destroy (&wal);
        wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, cut, NULL);
        wc_wal_destroy (&wal);
    }
}

//  Whole segments go from the front while they are at or below the seq
//  and the log keeps its byte budget; never the last segment.
static void
test_retain (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, BIG_LOG);
    uint64_t seqs [200];
    size_t nsegs = wt_segments (dir, seqs, 200);
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, BIG_LOG, NULL);
    assert_int_equal (wc_wal_retain (wal, seqs [1] - 2, 0), 0);
    assert_int_equal (wc_wal_retain (wal, seqs [10] - 1, 0), 10);
    assert_int_equal (wc_wal_first_seq (wal), seqs [10]);
    assert_int_equal (wt_segments (dir, seqs + 100, 100), nsegs - 10);
    assert_int_equal (wc_wal_read (wal, seqs [10] - 1, SIZE_MAX, wt_collect,
                                   &(wt_collect_t) { 0 }), WALCAST_ERANGE);
    wt_check_read (wal, seqs [10], SIZE_MAX, (int) (BIG_LOG - seqs [10] + 1));
    wt_check_read (wal, BIG_LOG - 3, SIZE_MAX, 4);

    //  A byte budget stops it
    uint64_t keep = wc_wal_bytes (wal) - 5 * WT_SMALL_SEGMENT;
    int removed = wc_wal_retain (wal, BIG_LOG, keep);
    assert_true (removed >= 4);
    assert_true (wc_wal_bytes (wal) >= keep);
    uint64_t first = wc_wal_first_seq (wal);
    assert_true (wc_wal_bytes (wal) - (uint64_t) wt_file_size (wt_path (dir, first)) < keep);

    //  A fault: nothing more is removed, the log stays readable
    wc_vfs_fail (WC_VFS_UNLINK, 0, -1, EIO);
    assert_int_equal (wc_wal_retain (wal, BIG_LOG, 0), WALCAST_EIO);
    wc_vfs_reset ();
    assert_int_equal (wc_wal_first_seq (wal), first);
    wt_check_read (wal, first, SIZE_MAX, (int) (BIG_LOG - first + 1));

    //  Never the last segment, and appends go on
    assert_true (wc_wal_retain (wal, BIG_LOG, 0) > 0);
    assert_int_equal (wt_segments (dir, seqs, 200), 1);
    first = wc_wal_first_seq (wal);
    wt_append_range (wal, BIG_LOG + 1, BIG_LOG + 50);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, first, BIG_LOG + 50, NULL);
    wc_wal_destroy (&wal);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_crc32c_vectors),
        cmocka_unit_test (test_crc32c_paths_agree),
        cmocka_unit_test_setup_teardown (test_empty_dir, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_append_reopen, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_big_record, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_rotation, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_read, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_torn_tail, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_damage_flipped_byte, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_damage_missing_segment, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_damage_missing_first, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_damage_rejected_payload, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_damage_last_segment, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_damage_ranges, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_set_aside, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_set_aside_failures, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_out_of_sequence, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_garbage_and_huge_length, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_stray_files, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_truncate_reopen_cycles, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_flush_failure, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_bulk, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_truncate, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_truncate_failures, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_retain, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
