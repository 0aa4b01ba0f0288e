/*  gen_corpus.c - write the seed corpus of the fuzz targets.

    gen_corpus DIR writes DIR/codec/seed-*, DIR/wal/seed-* and
    DIR/snapshot/seed-*, replacing the seed-* files there and leaving
    every other file (regress-*: inputs that once broke something) alone.
    Every seed is made by the real writers: messages by the codec's
    encoders, segment files by wc_wal_append and wc_wal_flush, snapshots
    by wc_snapshot_write; then a few are damaged on purpose the way a disk
    or a crash damages them (a torn tail, a bad record in the middle, a
    missing segment), so the fuzzer starts from every path recovery has.
    The output is the same on every run, so the seeds in the tree only
    change when a format does.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "walcast.h"
#include "codec.h"
#include "crc32c.h"
#include "epochs.h"
#include "snapshot.h"
#include "store.h"
#include "wal.h"
#include "common.h"

static char s_out [4096];       /* DIR/<target> being written */

//  --------------------------------------------------------------------
//  Output

static void
s_die (const char *what)
{
    fprintf (stderr, "gen_corpus: %s: %s\n", what, strerror (errno));
    exit (1);
}

//  Start writing the seeds of target: make DIR/target, drop its seed-*.
static void
s_target (const char *dir, const char *target)
{
    snprintf (s_out, sizeof s_out, "%s/%s", dir, target);
    if (mkdir (s_out, 0755) != 0 && errno != EEXIST)
        s_die (s_out);
    DIR *d = opendir (s_out);
    if (!d)
        s_die (s_out);
    struct dirent *entry;
    while ((entry = readdir (d)))
        if (strncmp (entry->d_name, "seed-", 5) == 0)
            unlinkat (dirfd (d), entry->d_name, 0);
    closedir (d);
}

//  Write one seed: head (may be NULL) and body.
static void
s_seed (const char *name, const void *head, size_t head_len, const void *body,
        size_t body_len)
{
    char path [sizeof s_out + 128];
    snprintf (path, sizeof path, "%s/seed-%s", s_out, name);
    FILE *f = fopen (path, "wb");
    if (!f
    ||  (head_len && fwrite (head, 1, head_len, f) != head_len)
    ||  (body_len && fwrite (body, 1, body_len, f) != body_len)
    ||  fclose (f) != 0)
        s_die (path);
}

static void
s_check (int rc, const char *what)
{
    if (rc != 0) {
        fprintf (stderr, "gen_corpus: %s: %s\n", what, walcast_strerror (rc));
        exit (1);
    }
}

static wc_bytes_t
s_b (const char *s)
{
    return (wc_bytes_t) { (const uint8_t *) s, (uint32_t) strlen (s) };
}


//  --------------------------------------------------------------------
//  Messages

static void
s_msg_seed (const char *name, const wc_msg_t *msg)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    s_check (wc_msg_encode (msg, &buf), name);
    s_seed (name, NULL, 0, buf.data, buf.size);
    msgpack_sbuffer_destroy (&buf);
}

static wc_entry_t
s_entry (uint64_t seq, uint8_t op, const char *key, const char *value)
{
    wc_entry_t e = { .seq = seq, .epoch = 2, .ts_ms = 1700000000000ull + seq, .op = op,
                     .key = s_b (key) };
    if (op == WC_OP_PUT)
        e.value = s_b (value);
    return e;
}

static wc_node_info_t
s_node (const char *id, const char *region, uint8_t role, const char *addr,
        const char *primary)
{
    return (wc_node_info_t) { .id = s_b (id), .region = s_b (region), .role = role,
                              .epoch = 3, .applied_seq = 1234, .addr = s_b (addr),
                              .primary = s_b (primary), .lag = 2, .lag_ms = 40,
                              .up = true, .silent_ms = 15, .flags = WC_NODE_CANDIDATE,
                              .handover_seq = 0 };
}

//  The requests clients and replicas send.
static void
s_requests (void)
{
    wc_msg_t m = { .type = WC_MSG_PUT, .rid = 1 };
    m.u.req.key = s_b ("user:1");
    m.u.req.value = s_b ("Alice");
    s_msg_seed ("put", &m);
    m.u.req.acks = WC_ACKS_ALL;
    m.u.req.ack_timeout_ms = 2500;
    s_msg_seed ("put-acks", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_DEL, m.rid = 2, m.u.req.key = s_b ("user:1"), m.u.req.acks = 1;
    s_msg_seed ("del", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_GET, m.rid = 3, m.u.req.key = s_b ("user:1");
    s_msg_seed ("get", &m);
    m.u.req.min_seq = 77, m.u.req.max_staleness_ms = 500, m.u.req.wait_ms = 100;
    s_msg_seed ("get-consistent", &m);
    static const int bare [] = { WC_MSG_PING, WC_MSG_STATUS, WC_MSG_DIGEST,
                                 WC_MSG_SNAPSHOT, WC_MSG_TOPOLOGY_GET };
    static const char *bare_names [] = { "ping", "status", "digest", "snapshot",
                                         "topology-get" };
    for (size_t i = 0; i < 5; i++) {
        memset (&m, 0, sizeof m);
        m.type = bare [i], m.rid = 10 + i;
        s_msg_seed (bare_names [i], &m);
    }
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_ACK, m.u.ack.id = s_b ("eu1"), m.u.ack.epoch = 2, m.u.ack.seq = 99;
    s_msg_seed ("ack", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_FETCH, m.rid = 4, m.u.fetch.from_seq = 1000;
    m.u.fetch.max_bytes = 1u << 20;
    m.u.fetch.cluster = 0x5eedc1a55eedc1a5ull;
    s_msg_seed ("fetch", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_EPOCH_END, m.rid = 5, m.u.epoch_end.epoch = 2;
    s_msg_seed ("epoch-end", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_SNAPSHOT_GET, m.rid = 6, m.u.snapshot_get.seq = 500;
    m.u.snapshot_get.offset = 65536, m.u.snapshot_get.max_bytes = 65536;
    s_msg_seed ("snapshot-get", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_SWITCHOVER, m.rid = 7, m.u.switchover.node_id = s_b ("eu1");
    s_msg_seed ("switchover", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_FORGET, m.rid = 8, m.u.forget.node_id = s_b ("ap2");
    s_msg_seed ("forget", &m);
}

//  The replies nodes and brokers send.
static void
s_replies (void)
{
    wc_msg_t m = { .type = WC_MSG_WRITE_OK, .rid = 1 };
    m.u.write_ok.epoch = 2, m.u.write_ok.seq = 100, m.u.write_ok.acked = 1;
    s_msg_seed ("write-ok", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_WRITES_OK, m.rid = 2, m.u.writes_ok.epoch = 2;
    m.u.writes_ok.first_seq = 101, m.u.writes_ok.count = 2, m.u.writes_ok.acked = 0;
    m.u.writes_ok.code = 7, m.u.writes_ok.text = s_b ("too big"), m.u.writes_ok.wanted = 1;
    s_msg_seed ("writes-ok", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_VALUE, m.rid = 3, m.u.value.found = true;
    m.u.value.value = s_b ("Alice"), m.u.value.seq = 100;
    s_msg_seed ("value", &m);
    m.u.value.found = false, m.u.value.value = (wc_bytes_t) { NULL, 0 };
    s_msg_seed ("value-missing", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_PONG, m.rid = 4, m.u.pong.epoch = 2, m.u.pong.seq = 100;
    m.u.pong.clock_ms = 1700000000000ull, m.u.pong.role = WC_ROLE_REPLICA;
    m.u.pong.id = s_b ("eu1"), m.u.pong.region = s_b ("eu-west"), m.u.pong.lag_ms = 12;
    s_msg_seed ("pong", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_STATUS_REPLY, m.rid = 5, m.u.status.id = s_b ("eu1");
    m.u.status.region = s_b ("eu-west"), m.u.status.role = WC_ROLE_REPLICA;
    m.u.status.epoch = 2, m.u.status.applied_seq = 98;
    m.u.status.primary = s_b ("127.0.0.1:7100"), m.u.status.primary_seq = 100;
    m.u.status.lag_ms = 12;
    s_msg_seed ("status-reply", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_DIGEST_REPLY, m.rid = 6, m.u.digest.seq = 100;
    m.u.digest.hash = 0x0123456789abcdefull;
    s_msg_seed ("digest-reply", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_SNAPSHOT_DONE, m.rid = 7, m.u.snapshot_done.seq = 100;
    m.u.snapshot_done.bytes = 123456;
    s_msg_seed ("snapshot-done", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_EPOCH_END_REPLY, m.rid = 8, m.u.epoch_end.epoch = 2;
    m.u.epoch_end.end_seq = 90, m.u.epoch_end.latest = 3;
    m.u.epoch_end.cluster = 0x5eedc1a55eedc1a5ull;
    s_msg_seed ("epoch-end-reply", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_SNAPSHOT_CHUNK, m.rid = 9, m.u.snapshot_chunk.seq = 500;
    m.u.snapshot_chunk.size = 4096, m.u.snapshot_chunk.offset = 0;
    m.u.snapshot_chunk.data = s_b ("\x97\xb0walcast-snapshot\x01");
    s_msg_seed ("snapshot-chunk", &m);
    memset (&m, 0, sizeof m);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    s_check (wc_error_encode (10, WALCAST_ENOTPRIMARY, NULL, "127.0.0.1:7100", &buf),
             "error");
    s_seed ("error", NULL, 0, buf.data, buf.size);
    msgpack_sbuffer_destroy (&buf);
}

//  The stream, and the broker's directives.
static void
s_stream_and_broker (void)
{
    wc_msg_t m = { .type = WC_MSG_ENTRY };
    m.u.entry = s_entry (100, WC_OP_PUT, "user:1", "Alice");
    s_msg_seed ("entry", &m);
    m.u.entry = s_entry (101, WC_OP_DEL, "user:1", NULL);
    s_msg_seed ("entry-del", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_HEARTBEAT, m.u.heartbeat.epoch = 2, m.u.heartbeat.last_seq = 101;
    m.u.heartbeat.clock_ms = 1700000000000ull;
    m.u.heartbeat.cluster = 0x5eedc1a55eedc1a5ull;
    s_msg_seed ("heartbeat", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_REGISTER, m.rid = 1;
    m.u.node = s_node ("us1", "us-east", WC_ROLE_PRIMARY, "127.0.0.1:7100", "");
    s_msg_seed ("register", &m);
    m.type = WC_MSG_NODE_HEARTBEAT;
    m.u.node = s_node ("eu1", "eu-west", WC_ROLE_REPLICA, "127.0.0.1:7200",
                       "127.0.0.1:7100");
    s_msg_seed ("node-heartbeat", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_PROMOTE, m.rid = 2, m.u.promote.epoch = 4;
    s_msg_seed ("promote", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_FOLLOW, m.rid = 3, m.u.follow.epoch = 4;
    m.u.follow.primary = s_b ("127.0.0.1:7200");
    s_msg_seed ("follow", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_HANDOVER, m.rid = 4, m.u.handover.epoch = 4;
    m.u.handover.target_id = s_b ("eu1"), m.u.handover.target_addr = s_b ("127.0.0.1:7200");
    s_msg_seed ("handover", &m);
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_SWITCHOVER_DONE, m.rid = 5, m.u.switchover_done.epoch = 5;
    m.u.switchover_done.primary = s_b ("127.0.0.1:7200");
    s_msg_seed ("switchover-done", &m);
}

//  The list messages (header, then items) and bare entries.
static void
s_lists (void)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    s_check (wc_entries_encode_header (42, 103, 3, &buf), "entries");
    for (uint64_t seq = 101; seq <= 103; seq++) {
        wc_entry_t e = s_entry (seq, seq == 102 ? WC_OP_DEL : WC_OP_PUT, "key", "value");
        s_check (wc_entry_encode (&e, &buf), "entries");
    }
    s_seed ("entries", NULL, 0, buf.data, buf.size);
    buf.size = 0;
    s_check (wc_entries_encode_stream_header (103, 2, 0x5eedc1a55eedc1a5ull, 0, &buf),
             "entries-stream");
    for (uint64_t seq = 102; seq <= 103; seq++) {
        wc_entry_t e = s_entry (seq, WC_OP_PUT, "key", "value");
        s_check (wc_entry_encode (&e, &buf), "entries-stream");
    }
    s_check (wc_entries_encode_trailer (1764547200123456ull, 0x5eedc1a55eedc1a5ull, 0, &buf),
             "entries-stream");
    s_seed ("entries-stream", NULL, 0, buf.data, buf.size);
    buf.size = 0;
    s_check (wc_entries_encode_stream_header (104, 1, 0, WC_ENTRIES_ACK_WANTED, &buf),
             "entries-stream-acks");
    wc_entry_t acked = s_entry (104, WC_OP_PUT, "key", "value");
    s_check (wc_entry_encode (&acked, &buf), "entries-stream-acks");
    s_check (wc_entries_encode_trailer (1764547200123456ull, 0, WC_ENTRIES_ACK_WANTED, &buf),
             "entries-stream-acks");
    s_seed ("entries-stream-acks", NULL, 0, buf.data, buf.size);
    buf.size = 0;
    s_check (wc_entries_encode_header (43, 0, 0, &buf), "entries-empty");
    s_seed ("entries-empty", NULL, 0, buf.data, buf.size);
    buf.size = 0;
    s_check (wc_write_batch_encode_header (44, 1, 1000, 3, &buf), "write-batch");
    for (int i = 0; i < 3; i++) {
        wc_write_t w = { .op = i == 1 ? WC_OP_DEL : WC_OP_PUT, .key = s_b ("k") };
        if (w.op == WC_OP_PUT)
            w.value = s_b ("v");
        s_check (wc_write_encode (&w, &buf), "write-batch");
    }
    s_seed ("write-batch", NULL, 0, buf.data, buf.size);
    buf.size = 0;
    s_check (wc_topology_encode_header (45, 17, 2, &buf), "topology");
    wc_node_info_t a = s_node ("us1", "us-east", WC_ROLE_PRIMARY, "127.0.0.1:7100", "");
    wc_node_info_t b = s_node ("eu1", "eu-west", WC_ROLE_REPLICA, "127.0.0.1:7200",
                               "127.0.0.1:7100");
    s_check (wc_node_info_encode (&a, &buf), "topology");
    s_check (wc_node_info_encode (&b, &buf), "topology");
    s_seed ("topology", NULL, 0, buf.data, buf.size);
    buf.size = 0;
    wc_entry_t e = s_entry (7, WC_OP_PUT, "user:7", "a value of some length");
    s_check (wc_entry_encode (&e, &buf), "bare entry");
    s_seed ("bare-entry", NULL, 0, buf.data, buf.size);
    //  the same entry with seq in a longer form than needed: valid, for
    //  the codec only
    static const uint8_t long_seq [] = { 0x96, 0xcf, 0, 0, 0, 0, 0, 0, 0, 7, 0x02, 0x00,
                                         0x02, 0xc4, 0x01, 'k', 0xc0 };
    s_seed ("bare-entry-long", NULL, 0, long_seq, sizeof long_seq);
    msgpack_sbuffer_destroy (&buf);
}


//  --------------------------------------------------------------------
//  WAL segment files, in fuzz_wal's input format

//  A file read whole into memory.
typedef struct {
    uint64_t seq;
    uint8_t *bytes;
    size_t len;
} s_file_t;

static void
s_put_le (uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

//  Write a fresh log of count entries (seqs first..) into dir with
//  segment_bytes, and read its segment files back (at most 4).
static size_t
s_make_log (const char *dir, uint64_t first, int count, size_t segment_bytes,
            s_file_t *files)
{
    fz_clear (dir);
    int err = 0;
    wc_wal_t *wal = wc_wal_open (dir, segment_bytes, NULL, NULL, NULL, &err);
    s_check (err, "wal open");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    for (int i = 0; i < count; i++) {
        char key [32], value [48];
        snprintf (key, sizeof key, "key:%d", i % 5);
        snprintf (value, sizeof value, "value number %d", i);
        wc_entry_t e = s_entry (first + (uint64_t) i, i % 4 == 3 ? WC_OP_DEL : WC_OP_PUT,
                                key, value);
        buf.size = 0;
        s_check (wc_entry_encode (&e, &buf), "entry");
        s_check (wc_wal_append (wal, e.seq, buf.data, buf.size), "wal append");
    }
    s_check (wc_wal_flush (wal), "wal flush");
    wc_wal_destroy (&wal);
    msgpack_sbuffer_destroy (&buf);
    size_t n = 0;
    DIR *d = opendir (dir);
    struct dirent *entry;
    while (d && (entry = readdir (d)) && n < 4) {
        unsigned long long seq;
        if (sscanf (entry->d_name, "wal-%20llu.log", &seq) != 1)
            continue;
        char path [4200];
        snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
        struct stat st;
        FILE *f = fopen (path, "rb");
        if (!f || stat (path, &st) != 0)
            s_die (path);
        files [n].seq = seq;
        files [n].len = (size_t) st.st_size;
        files [n].bytes = malloc (files [n].len + 1);
        if (!files [n].bytes || fread (files [n].bytes, 1, files [n].len, f) != files [n].len)
            s_die (path);
        fclose (f);
        n++;
    }
    if (d)
        closedir (d);
    //  in seq order, as the input lists them
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && files [j - 1].seq > files [j].seq; j--) {
            s_file_t t = files [j];
            files [j] = files [j - 1];
            files [j - 1] = t;
        }
    return n;
}

//  One fuzz_wal input: the mode (its file count bits set here), the heads,
//  the bytes.
static void
s_wal_seed (const char *name, uint8_t mode, const s_file_t *files, size_t n)
{
    uint8_t head [1 + 4 * 12];
    size_t total = 0;
    head [0] = (uint8_t) ((mode & ~3u) | (uint8_t) (n - 1));
    for (size_t i = 0; i < n; i++) {
        s_put_le (head + 1 + i * 12, files [i].seq, 8);
        s_put_le (head + 1 + i * 12 + 8, files [i].len, 4);
        total += files [i].len;
    }
    uint8_t *body = malloc (total + 1);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy (body + at, files [i].bytes, files [i].len);
        at += files [i].len;
    }
    s_seed (name, head, 1 + n * 12, body, total);
    free (body);
}

static void
s_free_files (s_file_t *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free (files [i].bytes);
}

static void
s_wal_seeds (const char *scratch)
{
    char dir [4200];
    snprintf (dir, sizeof dir, "%s/wal", scratch);
    s_file_t files [4];
    size_t n = s_make_log (dir, 1, 4, 0, files);
    s_wal_seed ("one-segment", 0, files, n);
    s_wal_seed ("one-segment-write", 8, files, n);
    //  a torn tail: the last record cut in half
    files [0].len -= 9;
    s_wal_seed ("torn-tail", 8, files, n);
    files [0].len += 9;
    //  a bad byte in the second record's payload: damage in the middle
    files [0].bytes [files [0].len / 3] ^= 0x20;
    s_wal_seed ("damaged-middle", 8, files, n);
    s_wal_seed ("damaged-middle-fixed-crc", 4 | 8, files, n);
    s_free_files (files, n);

    n = s_make_log (dir, 50, 12, 200, files);
    s_wal_seed ("segments", 0, files, n);
    s_wal_seed ("segments-small-write", 8 | 16, files, n);
    //  a missing segment
    if (n >= 3) {
        s_file_t gap [2] = { files [0], files [2] };
        s_wal_seed ("segment-missing", 8, gap, 2);
    }
    //  an empty last segment, as a crash right after creating it leaves it
    if (n >= 2) {
        s_file_t empty [2] = { files [0], { files [1].seq, files [1].bytes, 0 } };
        s_wal_seed ("empty-last", 8, empty, 2);
    }
    s_free_files (files, n);
}


//  --------------------------------------------------------------------
//  Snapshots, in fuzz_snapshot's input format

//  One object of a file: where it starts and how long it is.
typedef struct {
    const uint8_t *at;
    size_t len;
} s_span_t;

static int
s_span_compare (const void *a, const void *b)
{
    const s_span_t *x = (const s_span_t *) a, *y = (const s_span_t *) b;
    int c = memcmp (x->at, y->at, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

//  The store writes its pairs in the order of its table, whose hash is
//  seeded at random: put them in the order of their bytes and make the
//  trailer again, so the seed is the same on every run (the reader takes
//  the pairs in any order).
static void
s_sort_pairs (uint8_t *data, size_t len)
{
    size_t end = len - 4, off = 0, n = 0;
    s_span_t spans [64];
    msgpack_zone *zone = msgpack_zone_new (MSGPACK_ZONE_CHUNK_SIZE);
    while (off < end && n < 64) {
        size_t start = off;
        msgpack_object obj;
        msgpack_unpack_return ret = zone ? msgpack_unpack ((const char *) data, end, &off,
                                                           zone, &obj)
                                         : MSGPACK_UNPACK_NOMEM_ERROR;
        if (ret != MSGPACK_UNPACK_SUCCESS && ret != MSGPACK_UNPACK_EXTRA_BYTES)
            s_die ("re-reading a snapshot");
        spans [n++] = (s_span_t) { data + start, off - start };
    }
    if (off != end)
        s_die ("a snapshot with too many pairs for the generator");
    uint8_t *sorted = malloc (end);
    if (!sorted)
        s_die ("out of memory");
    qsort (spans + 1, n - 1, sizeof spans [0], s_span_compare);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy (sorted + at, spans [i].at, spans [i].len);
        at += spans [i].len;
    }
    memcpy (data, sorted, end);
    s_put_le (data + end, wc_crc32c (0, data, end), 4);
    free (sorted);
    msgpack_zone_free (zone);
}

//  Write a snapshot of pairs key:i -> value at seq with a history of
//  epochs 1 and 2, and read the file back.
static uint8_t *
s_make_snapshot (int dirfd, uint64_t seq, int pairs, size_t *len)
{
    wc_store_t *store = wc_store_new ();
    wc_epochs_t *history = wc_epochs_new ();
    if (!store || !history)
        s_die ("out of memory");
    for (int i = 0; i < pairs; i++) {
        char key [32], value [64];
        snprintf (key, sizeof key, "key:%d", i);
        snprintf (value, sizeof value, "value of key %d", i);
        s_check (wc_store_put (store, key, strlen (key), value, strlen (value)), "put");
    }
    s_check (wc_epochs_add (history, 1, 1), "epochs");
    s_check (wc_epochs_add (history, 2, seq > 2 ? seq / 2 : 1), "epochs");
    const wc_store_frozen_t *view;
    s_check (wc_store_freeze (store, &view), "freeze");
    wc_snapshot_info_t info = { .seq = seq, .ts_ms = 1700000000000ull };
    uint64_t bytes;
    char why [256];
    s_check (wc_snapshot_write (dirfd, &info, history, view, NULL, &bytes, why,
                                sizeof why), "snapshot write");
    char name [WC_SNAPSHOT_NAME_SIZE];
    int fd = openat (dirfd, wc_snapshot_name (name, seq), O_RDONLY);
    uint8_t *data = malloc (bytes + 1);
    if (fd < 0 || !data || read (fd, data, bytes) != (ssize_t) bytes)
        s_die ("reading a snapshot back");
    close (fd);
    unlinkat (dirfd, name, 0);
    s_sort_pairs (data, bytes);
    wc_store_destroy (&store);
    wc_epochs_destroy (&history);
    *len = bytes;
    return data;
}

static void
s_snapshot_seeds (const char *scratch)
{
    int dirfd = open (scratch, O_RDONLY | O_DIRECTORY);
    if (dirfd < 0)
        s_die (scratch);
    static const struct { const char *name; uint64_t seq; int pairs; } made [] = {
        { "empty", 1, 0 }, { "three", 40, 3 }, { "twenty", 1000, 20 }
    };
    for (size_t i = 0; i < sizeof made / sizeof made [0]; i++) {
        size_t len;
        uint8_t *data = s_make_snapshot (dirfd, made [i].seq, made [i].pairs, &len);
        char name [64];
        uint8_t mode = 0;
        snprintf (name, sizeof name, "%s", made [i].name);
        s_seed (name, &mode, 1, data, len);
        //  the same without its trailer, for the mode that appends it
        mode = 1;
        snprintf (name, sizeof name, "%s-fixed-crc", made [i].name);
        s_seed (name, &mode, 1, data, len - 4);
        mode = 2;
        snprintf (name, sizeof name, "%s-check-only", made [i].name);
        s_seed (name, &mode, 1, data, len);
        free (data);
    }
    close (dirfd);
}

int
main (int argc, char *argv [])
{
    if (argc != 2) {
        fprintf (stderr, "usage: gen_corpus DIR (writes DIR/{codec,wal,snapshot}/seed-*)\n");
        return 2;
    }
    fz_quiet ();
    const char *scratch = fz_scratch ("gen-corpus");
    s_target (argv [1], "codec");
    s_requests ();
    s_replies ();
    s_stream_and_broker ();
    s_lists ();
    s_target (argv [1], "wal");
    s_wal_seeds (scratch);
    s_target (argv [1], "snapshot");
    s_snapshot_seeds (scratch);
    return 0;
}
