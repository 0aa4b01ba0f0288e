/*  test_wal.c - the write-ahead log and its checksum.

    What a user of the WAL relies on: records come back after a reopen
    exactly as appended, across segments; catch-up reads start at any seq
    and respect their byte budget; and whatever a crash or a bad disk
    leaves at the tail (torn record, flipped bit, garbage, a wild length
    field, a stray segment) is cut off cleanly, with every record before
    it kept and new appends going on from there. A failed flush (file
    size limit standing in for a full disk) leaves the log whole.

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

static void
test_corrupt_middle (void **state)
{
    const char *dir = (const char *) *state;
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, 300);
    uint64_t seqs [100];
    size_t n = wt_segments (dir, seqs, 100);
    assert_true (n > 6);
    //  Flip one payload byte of a record in the middle of segment 3.
    uint64_t first = seqs [3];
    uint64_t victim = first + 2;
    uint8_t buf [256];
    while (wt_payload (victim, buf) == 0)
        victim++;
    assert_true (victim < seqs [4]);
    uint64_t off = wt_offset_of (first, victim);
    char *path = wt_path (dir, first);
    int64_t size = wt_file_size (path);
    uint8_t byte;
    int fd = open (path, O_RDWR);
    assert_int_equal (pread (fd, &byte, 1, (off_t) off + 16), 1);
    byte ^= 0x01;
    assert_int_equal (pwrite (fd, &byte, 1, (off_t) off + 16), 1);
    close (fd);

    wc_wal_info_t info;
    wc_wal_t *wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, victim - 1, &info);
    assert_int_equal (info.truncated_bytes, (uint64_t) size - off);
    assert_int_equal (info.removed_segments, n - 4);
    assert_int_equal (wt_file_size (wt_path (dir, first)), (int64_t) off);
    uint64_t now [100];
    assert_int_equal (wt_segments (dir, now, 100), 4);
    //  The log goes on from there; later segment names are reused.
    wt_append_range (wal, victim, 400);
    assert_int_equal (wc_wal_flush (wal), 0);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, 400, &info);
    assert_int_equal (info.truncated_bytes, 0);
    wt_check_read (wal, 1, SIZE_MAX, 400);
    wc_wal_destroy (&wal);

    //  A flipped bit in a seq is caught as well.
    n = wt_segments (dir, seqs, 100);
    off = wt_offset_of (seqs [1], seqs [1] + 1);
    byte = 0;
    fd = open (wt_path (dir, seqs [1]), O_RDWR);
    assert_int_equal (pread (fd, &byte, 1, (off_t) off + 8), 1);
    byte ^= 0x80;
    assert_int_equal (pwrite (fd, &byte, 1, (off_t) off + 8), 1);
    close (fd);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, seqs [1], &info);
    assert_int_equal (info.removed_segments, n - 2);
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
    assert_int_equal (wt_file_size (wt_path (dir, 1)), good);
    //  A repeated seq is out of sequence too.
    wc_wal_destroy (&wal);
    len = wt_payload (20, buf);
    flen = wt_frame (frame, (uint32_t) len, 20, buf, len);
    wt_append_file (wt_path (dir, 1), frame, flen);
    wal = wt_open_expect (dir, 0, 1, 20, &info);
    assert_int_equal (info.truncated_bytes, flen);
    wc_wal_destroy (&wal);

    //  A segment whose first record does not match its name.
    wt_clear_dir (dir);
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, 100);
    uint64_t seqs [50];
    size_t n = wt_segments (dir, seqs, 50);
    assert_true (n > 3);
    len = wt_payload (seqs [2] + 1, buf);
    flen = wt_frame (frame, (uint32_t) len, seqs [2] + 1, buf, len);
    wt_write_at (wt_path (dir, seqs [2]), 0, frame, flen);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, seqs [2] - 1, &info);
    assert_int_equal (info.removed_segments, n - 3);
    //  ... the file left with no record is gone as well.
    uint64_t now [50];
    assert_int_equal (wt_segments (dir, now, 50), 2);
    wc_wal_destroy (&wal);

    //  A missing middle segment: the later ones cannot follow.
    wt_clear_dir (dir);
    wt_make_log (dir, WT_SMALL_SEGMENT, 1, 100);
    n = wt_segments (dir, seqs, 50);
    assert_int_equal (unlink (wt_path (dir, seqs [1])), 0);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, seqs [1] - 1, &info);
    assert_int_equal (info.removed_segments, n - 2);
    assert_int_equal (info.truncated_bytes, 0);
    assert_int_equal (wt_segments (dir, now, 50), 1);
    wt_append_range (wal, seqs [1], 150);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, WT_SMALL_SEGMENT, 1, 150, NULL);
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
    //  One segment: the write crosses the limit, half of it lands.
    wt_make_log (dir, 0, 1, 10);
    char *path = wt_path (dir, 1);
    int64_t good = wt_file_size (path);
    wc_wal_t *wal = wt_open_expect (dir, 0, 1, 10, NULL);
    s_limit_file_size ((rlim_t) good + 500);
    wt_append_range (wal, 11, 60);
    assert_int_equal (wc_wal_flush (wal), WALCAST_EIO);
    s_unlimit_file_size ();
    assert_int_equal (wt_file_size (path), good);
    assert_int_equal (wc_wal_last_seq (wal), 10);
    assert_int_equal (wc_wal_read (wal, 11, 1000, NULL, NULL), 0);
    wt_check_read (wal, 1, SIZE_MAX, 10);
    //  The log goes on once there is room.
    wt_append_range (wal, 11, 60);
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
    assert_int_equal (wc_wal_flush (wal), WALCAST_EIO);
    assert_int_equal (wc_wal_last_seq (wal), last);
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

    //  An empty log that cannot write its first segment is empty again.
    wt_clear_dir (dir);
    wal = wt_open_expect (dir, 0, 0, 0, NULL);
    s_limit_file_size (100);
    wt_append_range (wal, 7, 20);
    assert_int_equal (wc_wal_flush (wal), WALCAST_EIO);
    s_unlimit_file_size ();
    assert_int_equal (wc_wal_first_seq (wal), 0);
    assert_int_equal (wc_wal_last_seq (wal), 0);
    assert_int_equal (wt_segments (dir, seqs, 8), 0);
    wt_append_range (wal, 3, 5);
    wc_wal_destroy (&wal);
    wal = wt_open_expect (dir, 0, 3, 5, NULL);
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
        cmocka_unit_test_setup_teardown (test_corrupt_middle, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_out_of_sequence, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_garbage_and_huge_length, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_stray_files, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_truncate_reopen_cycles, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_flush_failure, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_bulk, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
