/*  test_scan.c - the fast entry reader agrees with the codec.

    What the node relies on: every entry the codec writes, the scan reads
    back unchanged and says how many bytes it took (so a replica can append
    those bytes to its log as they are); the scan never accepts anything
    the codec would refuse or read differently (checked over many random
    mutations of valid entries, each in a buffer of exactly its size so
    ASan sees an over-read); valid but non-canonical forms (longer ints,
    extra elements) are left to the codec; an ENTRIES body is read entry
    by entry and must end where its last entry does.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "codec.h"
#include "scan.h"

static bool
s_bytes_equal (wc_bytes_t a, wc_bytes_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp (a.ptr, b.ptr, a.len) == 0);
}

static bool
s_entry_equal (const wc_entry_t *a, const wc_entry_t *b)
{
    return a->seq == b->seq && a->epoch == b->epoch && a->ts_ms == b->ts_ms
        && a->op == b->op && s_bytes_equal (a->key, b->key)
        && s_bytes_equal (a->value, b->value);
}

//  Encode entry, scan it from a buffer of exactly its size, compare; and
//  the scan's writer writes exactly the codec's bytes.
static void
s_round_trip (const wc_entry_t *entry)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    assert_int_equal (wc_entry_encode (entry, &buf), 0);
    size_t room = WC_SCAN_ENTRY_OVERHEAD + entry->key.len + entry->value.len;
    uint8_t *written = malloc (room);
    assert_int_equal (wc_scan_write_entry (written, entry), buf.size);
    assert_memory_equal (written, buf.data, buf.size);
    free (written);
    uint8_t *exact = malloc (buf.size);
    memcpy (exact, buf.data, buf.size);
    wc_entry_t got;
    size_t used = 0;
    assert_int_equal (wc_scan_entry (exact, buf.size, &got, &used), 0);
    assert_int_equal (used, buf.size);
    assert_true (s_entry_equal (entry, &got));
    free (exact);
    msgpack_sbuffer_destroy (&buf);
}

//  Every int and length at each boundary of msgpack's forms.
static void
test_round_trip_boundaries (void **state)
{
    (void) state;
    static const uint64_t ints [] = {
        1, 127, 128, 255, 256, 65535, 65536, 0xffffffffu, 0x100000000ull, UINT64_MAX
    };
    static const uint32_t lens [] = { 0, 1, 255, 256, 65535, 65536, WC_MAX_VALUE };
    uint8_t *big = calloc (1, WC_MAX_VALUE);
    for (size_t i = 0; i < sizeof ints / sizeof ints [0]; i++) {
        wc_entry_t e = { .seq = ints [i], .epoch = ints [(i + 3) % 10],
                         .ts_ms = ints [(i + 5) % 10] - 1, .op = WC_OP_PUT,
                         .key = { big, 1 + (uint32_t) (i * 113 % WC_MAX_KEY) } };
        s_round_trip (&e);
        e.op = WC_OP_DEL;
        s_round_trip (&e);
    }
    for (size_t i = 0; i < sizeof lens / sizeof lens [0]; i++) {
        wc_entry_t e = { .seq = 7, .epoch = 1, .ts_ms = 0, .op = WC_OP_PUT,
                         .key = { big, lens [i] == 0 ? 1 : (lens [i] > WC_MAX_KEY
                                                            ? WC_MAX_KEY : lens [i]) },
                         .value = { lens [i] ? big : NULL, lens [i] } };
        s_round_trip (&e);
    }
    free (big);
}

//  What the scan accepts, the codec accepts the same way: over random
//  mutations (byte changes, cuts, extensions) of valid entries.
static void
test_agrees_with_codec (void **state)
{
    (void) state;
    srand (12345);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    uint8_t key [300], value [300];
    int accepted = 0;
    for (int round = 0; round < 200000; round++) {
        for (size_t i = 0; i < sizeof key; i++)
            key [i] = (uint8_t) rand (), value [i] = (uint8_t) rand ();
        wc_entry_t e = { .seq = 1 + (uint64_t) rand () * (round % 7 ? 1 : 100000),
                         .epoch = 1 + (uint64_t) (rand () % 300), .ts_ms = (uint64_t) rand (),
                         .op = rand () % 4 ? WC_OP_PUT : WC_OP_DEL,
                         .key = { key, 1 + (uint32_t) (rand () % 290) } };
        if (e.op == WC_OP_PUT)
            e.value = (wc_bytes_t) { value, (uint32_t) (rand () % 290) };
        buf.size = 0;
        assert_int_equal (wc_entry_encode (&e, &buf), 0);
        size_t len = buf.size + (rand () % 5 == 0 ? (size_t) (rand () % 3) : 0);
        uint8_t *m = malloc (len ? len : 1);
        memcpy (m, buf.data, buf.size < len ? buf.size : len);
        for (size_t i = buf.size; i < len; i++)
            m [i] = (uint8_t) rand ();
        int flips = rand () % 3;
        for (int f = 0; f < flips; f++)
            m [(size_t) rand () % len] = (uint8_t) rand ();
        if (rand () % 4 == 0)
            len = (size_t) rand () % (len + 1);
        uint8_t *exact = malloc (len ? len : 1);
        memcpy (exact, m, len);
        wc_entry_t fast, slow;
        size_t used = 0;
        if (wc_scan_entry (exact, len, &fast, &used) == 0) {
            accepted++;
            assert_true (used <= len);
            assert_int_equal (wc_entry_decode (exact, used, &storage, &slow), 0);
            assert_true (s_entry_equal (&fast, &slow));
            //  and canonical: the codec writes exactly these bytes, and
            //  so does the scan's writer
            buf.size = 0;
            assert_int_equal (wc_entry_encode (&fast, &buf), 0);
            assert_int_equal (buf.size, used);
            assert_memory_equal (buf.data, exact, used);
            uint8_t out [WC_SCAN_ENTRY_OVERHEAD + 600];
            assert_int_equal (wc_scan_write_entry (out, &fast), used);
            assert_memory_equal (out, exact, used);
        }
        free (exact);
        free (m);
    }
    assert_true (accepted > 1000);      //  the unmutated ones, at least
    msgpack_unpacked_destroy (&storage);
    msgpack_sbuffer_destroy (&buf);
}

//  Valid forms the packer does not write, and values over a limit: the
//  scan leaves them to the codec, which takes the valid ones.
static void
test_non_canonical_left_to_codec (void **state)
{
    (void) state;
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_entry_t e;
    size_t used;
    //  [5 as uint8, 1, 0, 1, bin "k", bin ""]
    static const uint8_t long_int [] = { 0x96, 0xcc, 0x05, 0x01, 0x00, 0x01,
                                         0xc4, 0x01, 'k', 0xc4, 0x00 };
    assert_int_equal (wc_scan_entry (long_int, sizeof long_int, &e, &used), WALCAST_EPROTO);
    assert_int_equal (wc_entry_decode (long_int, sizeof long_int, &storage, &e), 0);
    assert_int_equal (e.seq, 5);
    //  seven elements (a newer peer's extra field)
    static const uint8_t extra [] = { 0x97, 0x05, 0x01, 0x00, 0x01,
                                      0xc4, 0x01, 'k', 0xc4, 0x00, 0x07 };
    assert_int_equal (wc_scan_entry (extra, sizeof extra, &e, &used), WALCAST_EPROTO);
    assert_int_equal (wc_entry_decode (extra, sizeof extra, &storage, &e), 0);
    //  a key in bin16
    static const uint8_t bin16 [] = { 0x96, 0x05, 0x01, 0x00, 0x01,
                                      0xc5, 0x00, 0x01, 'k', 0xc4, 0x00 };
    assert_int_equal (wc_scan_entry (bin16, sizeof bin16, &e, &used), WALCAST_EPROTO);
    assert_int_equal (wc_entry_decode (bin16, sizeof bin16, &storage, &e), 0);
    //  a DEL with an empty bin for its nil: valid, not canonical
    static const uint8_t del_bin [] = { 0x96, 0x05, 0x01, 0x00, 0x02,
                                        0xc4, 0x01, 'k', 0xc4, 0x00 };
    assert_int_equal (wc_scan_entry (del_bin, sizeof del_bin, &e, &used), WALCAST_EPROTO);
    assert_int_equal (wc_entry_decode (del_bin, sizeof del_bin, &storage, &e), 0);
    //  seq 0, op 3, a DEL with a value, a PUT with nil: refused by both
    static const uint8_t bad [][11] = {
        { 0x96, 0x00, 0x01, 0x00, 0x01, 0xc4, 0x01, 'k', 0xc4, 0x00, 0 },
        { 0x96, 0x05, 0x01, 0x00, 0x03, 0xc4, 0x01, 'k', 0xc4, 0x00, 0 },
        { 0x96, 0x05, 0x01, 0x00, 0x02, 0xc4, 0x01, 'k', 0xc4, 0x01, 'v' },
        { 0x96, 0x05, 0x01, 0x00, 0x01, 0xc4, 0x01, 'k', 0xc0, 0, 0 },
    };
    static const size_t bad_len [] = { 10, 10, 11, 9 };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal (wc_scan_entry (bad [i], bad_len [i], &e, &used), WALCAST_EPROTO);
        assert_int_not_equal (wc_entry_decode (bad [i], bad_len [i], &storage, &e), 0);
    }
    //  a key over WC_MAX_KEY
    uint8_t *key = calloc (1, WC_MAX_KEY + 1);
    uint8_t over [WC_MAX_KEY + 16];
    size_t n = 0;
    over [n++] = 0x96; over [n++] = 5; over [n++] = 1; over [n++] = 0; over [n++] = 1;
    over [n++] = 0xc5; over [n++] = (WC_MAX_KEY + 1) >> 8; over [n++] = (WC_MAX_KEY + 1) & 0xff;
    memcpy (over + n, key, WC_MAX_KEY + 1);
    n += WC_MAX_KEY + 1;
    over [n++] = 0xc4; over [n++] = 0;
    assert_int_equal (wc_scan_entry (over, n, &e, &used), WALCAST_EPROTO);
    assert_int_not_equal (wc_entry_decode (over, n, &storage, &e), 0);
    free (key);
    msgpack_unpacked_destroy (&storage);
}

//  Build an ENTRIES body of n entries with seqs first.. into buf.
static void
s_entries_body (msgpack_sbuffer *buf, uint64_t first, uint32_t n)
{
    buf->size = 0;
    assert_int_equal (wc_entries_encode_header (42, first + n - 1, n, buf), 0);
    for (uint32_t i = 0; i < n; i++) {
        char key [32];
        int len = snprintf (key, sizeof key, "key:%u", i);
        wc_entry_t e = { .seq = first + i, .epoch = 3, .ts_ms = 1700000000000ull,
                         .op = i % 5 ? WC_OP_PUT : WC_OP_DEL,
                         .key = { (const uint8_t *) key, (uint32_t) len } };
        if (e.op == WC_OP_PUT)
            e.value = (wc_bytes_t) { (const uint8_t *) "some value", 10 };
        assert_int_equal (wc_entry_encode (&e, buf), 0);
    }
}

//  An ENTRIES body read by cursor gives every entry, each with its own
//  bytes, and ends exactly at the end of the body.
static void
test_entries_cursor (void **state)
{
    (void) state;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    static const uint32_t counts [] = { 0, 1, 15, 16, 300, 70000 };
    for (size_t c = 0; c < sizeof counts / sizeof counts [0]; c++) {
        s_entries_body (&buf, 1000, counts [c]);
        wc_scan_entries_t cur;
        assert_int_equal (wc_scan_entries (buf.data, buf.size, &cur), 0);
        assert_int_equal (cur.rid, 42);
        assert_int_equal (cur.count, counts [c]);
        wc_entry_t e;
        const uint8_t *raw;
        size_t raw_len;
        uint32_t i = 0;
        int rc;
        while ((rc = wc_scan_entries_next (&cur, &e, &raw, &raw_len)) == 1) {
            assert_int_equal (e.seq, 1000 + i);
            assert_int_equal (e.op, i % 5 ? WC_OP_PUT : WC_OP_DEL);
            wc_entry_t again;
            size_t used;
            assert_int_equal (wc_scan_entry (raw, raw_len, &again, &used), 0);
            assert_int_equal (used, raw_len);
            i++;
        }
        assert_int_equal (rc, 0);
        assert_int_equal (i, counts [c]);
    }
    //  a trailing byte, a missing entry, another version: not canonical
    s_entries_body (&buf, 1, 3);
    msgpack_sbuffer_write (&buf, "\xc0", 1);
    wc_scan_entries_t cur;
    wc_entry_t e;
    const uint8_t *raw;
    size_t raw_len;
    assert_int_equal (wc_scan_entries (buf.data, buf.size, &cur), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), 1);
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), WALCAST_EPROTO);
    s_entries_body (&buf, 1, 3);
    assert_int_equal (wc_scan_entries (buf.data, buf.size - 12, &cur), 0);
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), 1);
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), 1);
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), WALCAST_EPROTO);
    buf.data [1] = 2;
    assert_int_equal (wc_scan_entries (buf.data, buf.size, &cur), WALCAST_EPROTO);
    msgpack_sbuffer_destroy (&buf);
}

//  Read every entry of body; returns how many, and whether any came
//  without canonical bytes (through the codec).
static int
s_read_body (const void *data, size_t len, int *kind, bool *slow, uint64_t first)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_scan_body_t body;
    wc_msg_t msg;
    *kind = wc_scan_body (&body, data, len, &storage, &msg);
    int n = 0;
    *slow = false;
    wc_entry_t e;
    const uint8_t *raw;
    size_t raw_len;
    while (*kind == 0 && wc_scan_body_next (&body, &e, &raw, &raw_len) == 1) {
        assert_int_equal (e.seq, first + (uint64_t) n);
        if (!raw)
            *slow = true;
        n++;
    }
    msgpack_unpacked_destroy (&storage);
    return n;
}

//  An ENTRIES body of two entries, the second with its seq in a longer
//  int form than the shortest (valid, not canonical: the codec's); e is
//  the first, a DEL of "k".
static void
s_longer_form_body (msgpack_sbuffer *buf, wc_entry_t *e)
{
    buf->size = 0;
    assert_int_equal (wc_entries_encode_header (0, 2, 2, buf), 0);
    *e = (wc_entry_t) { .seq = 1, .epoch = 1, .op = WC_OP_DEL,
                        .key = { (const uint8_t *) "k", 1 } };
    assert_int_equal (wc_entry_encode (e, buf), 0);
    msgpack_sbuffer_write (buf, "\x96\xcc\x02\x01\x00\x02\xc4\x01k\xc0", 10);
}

//  A body is read whole by the scan, or whole by the codec; one
//  malformed as a whole gives no entry at all.
static void
test_body_forms (void **state)
{
    (void) state;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    int kind;
    bool slow;
    s_entries_body (&buf, 10, 50);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 50);
    assert_int_equal (kind, 0);
    assert_false (slow);
    //  a trailing byte: malformed, nothing read
    msgpack_sbuffer_write (&buf, "\xc0", 1);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 0);
    assert_true (kind < 0);
    //  the last entry in a longer int form: valid, read by the codec
    wc_entry_t e;
    s_longer_form_body (&buf, &e);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 1), 2);
    assert_true (slow);
    //  a single ENTRY; a HEARTBEAT is another message
    buf.size = 0;
    wc_msg_t one = { .type = WC_MSG_ENTRY };
    one.u.entry = e;
    assert_int_equal (wc_msg_encode (&one, &buf), 0);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 1), 1);
    assert_false (slow);
    buf.size = 0;
    wc_msg_t hb = { .type = WC_MSG_HEARTBEAT };
    hb.u.heartbeat.epoch = 1;
    assert_int_equal (wc_msg_encode (&hb, &buf), 0);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 1), 0);
    assert_int_equal (kind, 1);
    msgpack_sbuffer_destroy (&buf);
}

//  A stream ENTRIES carries applied_us after its entries: the scan and
//  the codec read the same value, in any int form; a head that promises
//  it without it, or something else in its place, is malformed.
static void
s_stream_body_flags (msgpack_sbuffer *buf, uint32_t n, uint64_t cluster, uint64_t flags,
                     const char *trailer, size_t trailer_len)
{
    msgpack_sbuffer tmp;
    msgpack_sbuffer_init (&tmp);
    s_entries_body (&tmp, 10, n);
    buf->size = 0;
    assert_int_equal (wc_entries_encode_stream_header (10 + n - 1, n, cluster, flags, buf),
                      0);
    //  the entries of tmp, after its 5-element head
    wc_scan_entries_t cur;
    assert_int_equal (wc_scan_entries (tmp.data, tmp.size, &cur), 0);
    msgpack_sbuffer_write (buf, tmp.data + cur.pos, tmp.size - cur.pos);
    msgpack_sbuffer_write (buf, trailer, trailer_len);
    msgpack_sbuffer_destroy (&tmp);
}

static void
s_stream_body_of (msgpack_sbuffer *buf, uint32_t n, uint64_t cluster, const char *trailer,
                  size_t trailer_len)
{
    s_stream_body_flags (buf, n, cluster, 0, trailer, trailer_len);
}

static void
s_stream_body (msgpack_sbuffer *buf, uint32_t n, const char *trailer, size_t trailer_len)
{
    s_stream_body_of (buf, n, 0, trailer, trailer_len);
}

static void
test_stream_applied_us (void **state)
{
    (void) state;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_scan_body_t body;
    wc_msg_t msg;
    int kind;
    bool slow;

    //  shortest form: the scan reads it, before the first entry
    s_stream_body (&buf, 20, "\xcf\x00\x06\x44\xd8\xa9\x0d\x82\x40", 9);
    assert_int_equal (wc_scan_body (&body, buf.data, buf.size, &storage, &msg), 0);
    assert_true (body.applied_us == 1764547200123456);
    assert_int_equal (body.count, 20);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 20);
    assert_false (slow);
    //  the same value in a longer form: the codec's, the same value
    s_stream_body (&buf, 3, "\xcf\x00\x00\x00\x00\x00\x00\x00\x07", 9);
    assert_int_equal (wc_scan_body (&body, buf.data, buf.size, &storage, &msg), 0);
    assert_int_equal (body.applied_us, 7);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 3);
    assert_true (slow);
    //  missing, or not a uint: malformed, no entry read
    s_stream_body (&buf, 3, "", 0);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 0);
    assert_true (kind < 0);
    s_stream_body (&buf, 3, "\xc0", 1);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 0);
    assert_true (kind < 0);
    //  the cursor: applied_us once every entry was read, then the end again
    s_stream_body (&buf, 2, "\x2a", 1);
    wc_scan_entries_t cur;
    assert_int_equal (wc_scan_entries (buf.data, buf.size, &cur), 0);
    wc_entry_t e;
    const uint8_t *raw;
    size_t raw_len;
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), 1);
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), 1);
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), 0);
    assert_int_equal (cur.applied_us, 42);
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), 0);
    //  a catch-up reply has none: 0
    s_entries_body (&buf, 10, 2);
    assert_int_equal (wc_scan_body (&body, buf.data, buf.size, &storage, &msg), 0);
    assert_int_equal (body.applied_us, 0);
    assert_true (body.cluster == 0);
    msgpack_unpacked_destroy (&storage);
    msgpack_sbuffer_destroy (&buf);
}

//  A stream ENTRIES of walcast 0.7 carries the cluster id after
//  applied_us: the scan and the codec read the same id, in any int form;
//  a head that promises it without it, or a non-uint there, is malformed.
static void
test_stream_cluster (void **state)
{
    (void) state;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_scan_body_t body;
    wc_msg_t msg;
    int kind;
    bool slow;
    const uint64_t id = UINT64_C (0x9e3779b97f4a7c15);

    //  shortest forms: the scan reads both, before the first entry
    s_stream_body_of (&buf, 5, id, "\x2a\xcf\x9e\x37\x79\xb9\x7f\x4a\x7c\x15", 10);
    assert_int_equal (wc_scan_body (&body, buf.data, buf.size, &storage, &msg), 0);
    assert_int_equal (body.applied_us, 42);
    assert_true (body.cluster == id);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 5);
    assert_false (slow);
    //  the codec reads the same message the same way
    assert_int_equal (wc_msg_decode (buf.data, buf.size, &storage, &msg), 0);
    assert_true (msg.u.entries.cluster == id);
    assert_int_equal (msg.u.entries.applied_us, 42);
    //  a small id in a longer form: the codec's, the same value
    s_stream_body_of (&buf, 2, 7, "\x2a\xcf\x00\x00\x00\x00\x00\x00\x00\x07", 10);
    assert_int_equal (wc_scan_body (&body, buf.data, buf.size, &storage, &msg), 0);
    assert_true (body.cluster == 7);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 2);
    assert_true (slow);
    //  promised but missing, or not a uint: malformed, no entry read
    s_stream_body_of (&buf, 3, id, "\x2a", 1);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 0);
    assert_true (kind < 0);
    s_stream_body_of (&buf, 3, id, "\x2a\xa1" "x", 3);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 0);
    assert_true (kind < 0);
    //  the cursor: both once every entry was read
    s_stream_body_of (&buf, 1, id, "\x2a\xcf\x9e\x37\x79\xb9\x7f\x4a\x7c\x15", 10);
    wc_scan_entries_t cur;
    assert_int_equal (wc_scan_entries (buf.data, buf.size, &cur), 0);
    wc_entry_t e;
    const uint8_t *raw;
    size_t raw_len;
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), 1);
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), 0);
    assert_int_equal (cur.applied_us, 42);
    assert_true (cur.cluster == id);
    msgpack_unpacked_destroy (&storage);
    msgpack_sbuffer_destroy (&buf);
}

//  A stream ENTRIES of walcast 0.9 may carry flags after the cluster id
//  (0 when it has none): the scan and the codec read the same flags, in
//  any int form; a head that promises them without them, or a non-uint
//  there, is malformed; a message without them has flags 0.
static void
test_stream_flags (void **state)
{
    (void) state;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_scan_body_t body;
    wc_msg_t msg;
    int kind;
    bool slow;

    //  shortest forms: the scan reads all three, before the first entry
    s_stream_body_flags (&buf, 4, 0, WC_ENTRIES_ACK_WANTED, "\x2a\x00\x01", 3);
    assert_int_equal (wc_scan_body (&body, buf.data, buf.size, &storage, &msg), 0);
    assert_int_equal (body.applied_us, 42);
    assert_true (body.cluster == 0);
    assert_true (body.flags == WC_ENTRIES_ACK_WANTED);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 4);
    assert_false (slow);
    assert_int_equal (wc_msg_decode (buf.data, buf.size, &storage, &msg), 0);
    assert_true (msg.u.entries.flags == WC_ENTRIES_ACK_WANTED);
    //  bits this revision does not know are read (and ignored by nodes)
    s_stream_body_flags (&buf, 1, 7, 0x80, "\x2a\x07\xcc\x80", 4);
    assert_int_equal (wc_scan_body (&body, buf.data, buf.size, &storage, &msg), 0);
    assert_true (body.cluster == 7 && body.flags == 0x80);
    //  a longer form: the codec's, the same value
    s_stream_body_flags (&buf, 2, 0, 1, "\x2a\x00\xcf\x00\x00\x00\x00\x00\x00\x00\x01", 11);
    assert_int_equal (wc_scan_body (&body, buf.data, buf.size, &storage, &msg), 0);
    assert_true (body.flags == 1);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 2);
    assert_true (slow);
    //  promised but missing, or not a uint: malformed, no entry read
    s_stream_body_flags (&buf, 3, 0, 1, "\x2a\x00", 2);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 0);
    assert_true (kind < 0);
    s_stream_body_flags (&buf, 3, 0, 1, "\x2a\x00\xc3", 3);
    assert_int_equal (s_read_body (buf.data, buf.size, &kind, &slow, 10), 0);
    assert_true (kind < 0);
    //  the cursor: all three once every entry was read
    s_stream_body_flags (&buf, 1, 9, 1, "\x2a\x09\x01", 3);
    wc_scan_entries_t cur;
    assert_int_equal (wc_scan_entries (buf.data, buf.size, &cur), 0);
    wc_entry_t e;
    const uint8_t *raw;
    size_t raw_len;
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), 1);
    assert_int_equal (wc_scan_entries_next (&cur, &e, &raw, &raw_len), 0);
    assert_true (cur.applied_us == 42 && cur.cluster == 9 && cur.flags == 1);
    //  without them: 0
    s_stream_body_of (&buf, 1, 9, "\x2a\x09", 2);
    assert_int_equal (wc_scan_body (&body, buf.data, buf.size, &storage, &msg), 0);
    assert_true (body.flags == 0);
    msgpack_unpacked_destroy (&storage);
    msgpack_sbuffer_destroy (&buf);
}

//  Open data with wc_scan_body and with wc_scan_body_keep (room for cap
//  entries in keep): both give the same kind, trailer, entries and
//  entry bytes. Returns how many entries were read.
static int
s_read_both (const void *data, size_t len, wc_scan_kept_t *keep, uint32_t cap, int *kind)
{
    msgpack_unpacked storage, kept_storage;
    msgpack_unpacked_init (&storage);
    msgpack_unpacked_init (&kept_storage);
    wc_scan_body_t body, kept;
    wc_msg_t msg, kept_msg;
    *kind = wc_scan_body (&body, data, len, &storage, &msg);
    assert_int_equal (wc_scan_body_keep (&kept, data, len, &kept_storage, &kept_msg,
                                         keep, cap), *kind);
    int n = 0;
    if (*kind == 0) {
        assert_int_equal (kept.count, body.count);
        assert_true (kept.applied_us == body.applied_us && kept.cluster == body.cluster);
        assert_int_equal (wc_scan_body_whole (&kept), wc_scan_body_whole (&body));
        wc_entry_t a, b;
        const uint8_t *raw_a, *raw_b;
        size_t len_a, len_b;
        int rc;
        while ((rc = wc_scan_body_next (&body, &a, &raw_a, &len_a)) == 1) {
            assert_int_equal (wc_scan_body_next (&kept, &b, &raw_b, &len_b), 1);
            assert_true (s_entry_equal (&a, &b));
            assert_ptr_equal (raw_a, raw_b);
            assert_int_equal (len_a, len_b);
            n++;
        }
        assert_int_equal (wc_scan_body_next (&kept, &b, &raw_b, &len_b), rc);
        assert_int_equal (wc_scan_body_next (&kept, &b, &raw_b, &len_b), rc);
    }
    msgpack_unpacked_destroy (&storage);
    msgpack_unpacked_destroy (&kept_storage);
    return n;
}

//  A replica keeps what the check of a stream message read, so that it
//  reads each entry once: the entries it then gets are those a second
//  reading gives, for every form of body; a body of more entries than
//  the room is read twice, the room untouched.
static void
test_body_kept (void **state)
{
    (void) state;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    wc_scan_kept_t keep [64];
    int kind;

    //  canonical: kept, read once (the room holds them as the check read them)
    s_entries_body (&buf, 10, 50);
    assert_int_equal (s_read_both (buf.data, buf.size, keep, 64, &kind), 50);
    assert_int_equal (kind, 0);
    assert_int_equal (keep [49].entry.seq, 59);
    wc_scan_entries_t cur;
    assert_int_equal (wc_scan_entries (buf.data, buf.size, &cur), 0);
    assert_ptr_equal (keep [0].raw, (const uint8_t *) buf.data + cur.pos);
    assert_ptr_equal (keep [49].raw + keep [49].raw_len, (const uint8_t *) buf.data + buf.size);
    //  the same room, reused for the next body
    s_entries_body (&buf, 100, 3);
    assert_int_equal (s_read_both (buf.data, buf.size, keep, 64, &kind), 3);
    assert_int_equal (keep [2].entry.seq, 102);
    //  exactly as many as the room, and one more: read twice, room untouched
    s_entries_body (&buf, 1, 64);
    assert_int_equal (s_read_both (buf.data, buf.size, keep, 64, &kind), 64);
    assert_int_equal (keep [63].entry.seq, 64);
    memset (keep, 0xab, sizeof keep);
    s_entries_body (&buf, 1, 65);
    assert_int_equal (s_read_both (buf.data, buf.size, keep, 64, &kind), 65);
    for (size_t i = 0; i < sizeof keep; i++)
        assert_int_equal (((const uint8_t *) keep) [i], 0xab);
    //  no room at all: read twice
    assert_int_equal (s_read_both (buf.data, buf.size, NULL, 0, &kind), 65);
    //  a trailing byte: malformed, nothing read
    s_entries_body (&buf, 10, 5);
    msgpack_sbuffer_write (&buf, "\xc0", 1);
    assert_int_equal (s_read_both (buf.data, buf.size, keep, 64, &kind), 0);
    assert_true (kind < 0);
    //  the last entry in a longer int form: the codec's, as without the room
    wc_entry_t e;
    s_longer_form_body (&buf, &e);
    assert_int_equal (s_read_both (buf.data, buf.size, keep, 64, &kind), 2);
    assert_int_equal (kind, 0);
    //  a stream message: applied_us and the cluster id read with them
    s_stream_body_of (&buf, 20, 7, "\x2a\x07", 2);
    assert_int_equal (s_read_both (buf.data, buf.size, keep, 64, &kind), 20);
    assert_int_equal (keep [19].entry.seq, 29);
    //  a single ENTRY: not an ENTRIES, read as before
    buf.size = 0;
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 3);
    msgpack_pack_uint8 (&pk, WC_PROTOCOL_VERSION);
    msgpack_pack_uint8 (&pk, WC_MSG_ENTRY);
    assert_int_equal (wc_entry_encode (&e, &buf), 0);
    assert_int_equal (s_read_both (buf.data, buf.size, keep, 64, &kind), 1);
    msgpack_sbuffer_destroy (&buf);
}

//  A WRITE_BATCH the scan takes, the codec takes the same way: over
//  random mutations of valid batches; and the writes read back.
static void
test_write_batch_agrees (void **state)
{
    (void) state;
    srand (777);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    uint8_t key [64], value [200];
    int accepted = 0;
    for (int round = 0; round < 50000; round++) {
        uint32_t n = 1 + (uint32_t) (rand () % 5);
        buf.size = 0;
        assert_int_equal (wc_write_batch_encode_header ((uint64_t) rand (), (uint8_t) (rand () % 3),
                                                        (uint32_t) (rand () % 70000), n, &buf), 0);
        for (uint32_t i = 0; i < n; i++) {
            for (size_t k = 0; k < sizeof key; k++)
                key [k] = (uint8_t) rand ();
            wc_write_t w = { .op = rand () % 3 ? WC_OP_PUT : WC_OP_DEL,
                             .key = { key, 1 + (uint32_t) (rand () % 60) } };
            if (w.op == WC_OP_PUT)
                w.value = (wc_bytes_t) { value, (uint32_t) (rand () % 200) };
            assert_int_equal (wc_write_encode (&w, &buf), 0);
        }
        size_t len = buf.size;
        uint8_t *m = malloc (len + 2);
        memcpy (m, buf.data, len);
        if (rand () % 4 == 0)
            m [len++] = (uint8_t) rand ();
        for (int f = rand () % 3; f > 0; f--)
            m [(size_t) rand () % len] = (uint8_t) rand ();
        if (rand () % 5 == 0)
            len = (size_t) rand () % (len + 1);
        uint8_t *exact = malloc (len ? len : 1);
        memcpy (exact, m, len);
        wc_scan_writes_t cur;
        if (wc_scan_write_batch (exact, len, &cur) == 0) {
            accepted++;
            wc_msg_t msg;
            assert_int_equal (wc_msg_decode (exact, len, &storage, &msg), 0);
            assert_int_equal (msg.type, WC_MSG_WRITE_BATCH);
            assert_true (msg.rid == cur.rid);
            assert_int_equal (msg.u.batch.acks, cur.acks);
            assert_int_equal (msg.u.batch.ack_timeout_ms, cur.ack_timeout_ms);
            assert_int_equal (msg.u.batch.count, cur.count);
            wc_scan_writes_t again;
            assert_int_equal (wc_scan_writes_begin (exact, len, &again), 0);
            for (uint32_t i = 0; i < cur.count; i++) {
                wc_write_t a, b;
                assert_int_equal (wc_scan_writes_next (&again, &a), 1);
                assert_int_equal (wc_write_from_object (&msg.u.batch.items [i], &b), 0);
                assert_int_equal (a.op, b.op);
                assert_true (s_bytes_equal (a.key, b.key));
                assert_true (s_bytes_equal (a.value, b.value));
            }
            assert_int_equal (wc_scan_writes_next (&again, &(wc_write_t) { 0 }), 0);
        }
        free (exact);
        free (m);
    }
    assert_true (accepted > 1000);
    msgpack_unpacked_destroy (&storage);
    msgpack_sbuffer_destroy (&buf);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip_boundaries),
        cmocka_unit_test (test_agrees_with_codec),
        cmocka_unit_test (test_non_canonical_left_to_codec),
        cmocka_unit_test (test_entries_cursor),
        cmocka_unit_test (test_body_forms),
        cmocka_unit_test (test_stream_applied_us),
        cmocka_unit_test (test_stream_cluster),
        cmocka_unit_test (test_stream_flags),
        cmocka_unit_test (test_body_kept),
        cmocka_unit_test (test_write_batch_agrees),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
