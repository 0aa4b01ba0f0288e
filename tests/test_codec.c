/*  test_codec.c - the wire format: messages, WAL entries, error codes.

    What peers rely on: every message survives encode -> decode unchanged;
    anything malformed (truncated, trailing bytes, a wrong type in any
    field, over a limit, another version) is refused with the right code
    and never crashes; messages with extra trailing elements from a newer
    peer are still understood; decoded bytes borrow the input buffer.
    Optional trailing fields (GET's consistency fields, PONG's identity,
    PUT's and DEL's acks, WRITE_OK's acked, node_info's flags and
    handover_seq) are zero when absent, so an older peer's messages still
    decode, and left out when zero, so older peers get the same bytes.

    Malformed messages are built from valid ones: s_rebuild unpacks a
    valid message, replaces or appends elements and packs it again, so each
    test changes exactly one thing. The fuzz tests (fixed seed) copy every
    input into a buffer of exactly its size, so ASan sees any over-read.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "addr.h"
#include "codec.h"

//  ---------------------------------------------------------------------
//  Helpers

static wc_bytes_t
s_bytes (const char *s)
{
    wc_bytes_t b = { (const uint8_t *) s, (uint32_t) strlen (s) };
    return b;
}

static bool
s_bytes_equal (wc_bytes_t a, wc_bytes_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp (a.ptr, b.ptr, a.len) == 0);
}

//  True when b is empty or lies inside buf [0..len).
static bool
s_inside (wc_bytes_t b, const void *buf, size_t len)
{
    const uint8_t *start = (const uint8_t *) buf;
    return b.len == 0
        || (b.ptr >= start && b.ptr + b.len <= start + len);
}

static bool
s_entry_equal (const wc_entry_t *a, const wc_entry_t *b)
{
    return a->seq == b->seq && a->epoch == b->epoch && a->ts_ms == b->ts_ms
        && a->op == b->op && s_bytes_equal (a->key, b->key)
        && s_bytes_equal (a->value, b->value);
}

static bool
s_node_equal (const wc_node_info_t *a, const wc_node_info_t *b)
{
    return s_bytes_equal (a->id, b->id) && s_bytes_equal (a->region, b->region)
        && a->role == b->role && a->epoch == b->epoch
        && a->applied_seq == b->applied_seq
        && s_bytes_equal (a->addr, b->addr)
        && s_bytes_equal (a->primary, b->primary)
        && a->lag == b->lag && a->lag_ms == b->lag_ms
        && a->up == b->up && a->silent_ms == b->silent_ms
        && a->flags == b->flags && a->handover_seq == b->handover_seq
        && s_bytes_equal (a->curve_key, b->curve_key);
}

//  Field by field comparison of two messages of the same type.
static bool
s_msg_equal (const wc_msg_t *a, const wc_msg_t *b)
{
    if (a->type != b->type || a->rid != b->rid)
        return false;
    switch (a->type) {
        case WC_MSG_PUT:
        case WC_MSG_DEL:
        case WC_MSG_GET:
            return s_bytes_equal (a->u.req.key, b->u.req.key)
                && s_bytes_equal (a->u.req.value, b->u.req.value)
                && a->u.req.min_seq == b->u.req.min_seq
                && a->u.req.max_staleness_ms == b->u.req.max_staleness_ms
                && a->u.req.wait_ms == b->u.req.wait_ms
                && a->u.req.acks == b->u.req.acks
                && a->u.req.ack_timeout_ms == b->u.req.ack_timeout_ms;
        case WC_MSG_PING:
        case WC_MSG_STATUS:
        case WC_MSG_DIGEST:
        case WC_MSG_SNAPSHOT:
        case WC_MSG_TOPOLOGY_GET:
            return true;
        case WC_MSG_WRITE_OK:
            return a->u.write_ok.epoch == b->u.write_ok.epoch
                && a->u.write_ok.seq == b->u.write_ok.seq
                && a->u.write_ok.acked == b->u.write_ok.acked;
        case WC_MSG_ACK:
            return s_bytes_equal (a->u.ack.id, b->u.ack.id)
                && a->u.ack.epoch == b->u.ack.epoch
                && a->u.ack.seq == b->u.ack.seq;
        case WC_MSG_SNAPSHOT_DONE:
            return a->u.snapshot_done.seq == b->u.snapshot_done.seq
                && a->u.snapshot_done.bytes == b->u.snapshot_done.bytes;
        case WC_MSG_EPOCH_END:
        case WC_MSG_EPOCH_END_REPLY:
            return a->u.epoch_end.epoch == b->u.epoch_end.epoch
                && a->u.epoch_end.end_seq == b->u.epoch_end.end_seq
                && a->u.epoch_end.latest == b->u.epoch_end.latest;
        case WC_MSG_SNAPSHOT_GET:
            return a->u.snapshot_get.seq == b->u.snapshot_get.seq
                && a->u.snapshot_get.offset == b->u.snapshot_get.offset
                && a->u.snapshot_get.max_bytes == b->u.snapshot_get.max_bytes;
        case WC_MSG_SNAPSHOT_CHUNK:
            return a->u.snapshot_chunk.seq == b->u.snapshot_chunk.seq
                && a->u.snapshot_chunk.size == b->u.snapshot_chunk.size
                && a->u.snapshot_chunk.offset == b->u.snapshot_chunk.offset
                && s_bytes_equal (a->u.snapshot_chunk.data, b->u.snapshot_chunk.data);
        case WC_MSG_PROMOTE:
            return a->u.promote.epoch == b->u.promote.epoch;
        case WC_MSG_FOLLOW:
            return a->u.follow.epoch == b->u.follow.epoch
                && s_bytes_equal (a->u.follow.primary, b->u.follow.primary)
                && s_bytes_equal (a->u.follow.primary_key, b->u.follow.primary_key);
        case WC_MSG_HANDOVER:
            return a->u.handover.epoch == b->u.handover.epoch
                && s_bytes_equal (a->u.handover.target_id, b->u.handover.target_id)
                && s_bytes_equal (a->u.handover.target_addr, b->u.handover.target_addr);
        case WC_MSG_SWITCHOVER:
            return s_bytes_equal (a->u.switchover.node_id, b->u.switchover.node_id);
        case WC_MSG_FORGET:
            return s_bytes_equal (a->u.forget.node_id, b->u.forget.node_id);
        case WC_MSG_SWITCHOVER_DONE:
            return a->u.switchover_done.epoch == b->u.switchover_done.epoch
                && s_bytes_equal (a->u.switchover_done.primary,
                                  b->u.switchover_done.primary);
        case WC_MSG_VALUE:
            return a->u.value.found == b->u.value.found
                && s_bytes_equal (a->u.value.value, b->u.value.value)
                && a->u.value.seq == b->u.value.seq
                && a->u.value.epoch == b->u.value.epoch;
        case WC_MSG_PONG:
            return a->u.pong.epoch == b->u.pong.epoch
                && a->u.pong.seq == b->u.pong.seq
                && a->u.pong.clock_ms == b->u.pong.clock_ms
                && a->u.pong.role == b->u.pong.role
                && s_bytes_equal (a->u.pong.id, b->u.pong.id)
                && s_bytes_equal (a->u.pong.region, b->u.pong.region)
                && a->u.pong.lag_ms == b->u.pong.lag_ms;
        case WC_MSG_STATUS_REPLY:
            return s_bytes_equal (a->u.status.id, b->u.status.id)
                && s_bytes_equal (a->u.status.region, b->u.status.region)
                && a->u.status.role == b->u.status.role
                && a->u.status.epoch == b->u.status.epoch
                && a->u.status.applied_seq == b->u.status.applied_seq
                && s_bytes_equal (a->u.status.primary, b->u.status.primary)
                && a->u.status.primary_seq == b->u.status.primary_seq
                && a->u.status.lag_ms == b->u.status.lag_ms
                && a->u.status.flags == b->u.status.flags;
        case WC_MSG_DIGEST_REPLY:
            return a->u.digest.seq == b->u.digest.seq
                && a->u.digest.hash == b->u.digest.hash;
        case WC_MSG_ERROR:
            return a->u.error.code == b->u.error.code
                && s_bytes_equal (a->u.error.text, b->u.error.text)
                && s_bytes_equal (a->u.error.detail, b->u.error.detail);
        case WC_MSG_ENTRY:
            return s_entry_equal (&a->u.entry, &b->u.entry);
        case WC_MSG_HEARTBEAT:
            return a->u.heartbeat.epoch == b->u.heartbeat.epoch
                && a->u.heartbeat.last_seq == b->u.heartbeat.last_seq
                && a->u.heartbeat.clock_ms == b->u.heartbeat.clock_ms;
        case WC_MSG_FETCH:
            return a->u.fetch.from_seq == b->u.fetch.from_seq
                && a->u.fetch.max_bytes == b->u.fetch.max_bytes;
        case WC_MSG_REGISTER:
        case WC_MSG_NODE_HEARTBEAT:
            return s_node_equal (&a->u.node, &b->u.node);
        default:
            return false;
    }
}

//  Decode buf from a heap copy of exactly len bytes (so ASan catches any
//  read past the end) and return the result code. The decoded message is
//  discarded.
static int
s_decode_copy (const void *buf, size_t len)
{
    uint8_t *copy = malloc (len ? len : 1);
    assert_non_null (copy);
    if (len)
        memcpy (copy, buf, len);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t msg;
    int rc = wc_msg_decode (copy, len, &up, &msg);
    msgpack_unpacked_destroy (&up);
    free (copy);
    return rc;
}

static int
s_entry_decode_copy (const void *buf, size_t len)
{
    uint8_t *copy = malloc (len ? len : 1);
    assert_non_null (copy);
    if (len)
        memcpy (copy, buf, len);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_entry_t entry;
    int rc = wc_entry_decode (copy, len, &up, &entry);
    msgpack_unpacked_destroy (&up);
    free (copy);
    return rc;
}

//  Unpack the array in buf, replace element pos (if pos >= 0) by *repl,
//  append n_extra elements, and pack the result into out (reset first).
static void
s_rebuild (const void *buf, size_t len, int pos, const msgpack_object *repl,
           const msgpack_object *extra, uint32_t n_extra, msgpack_sbuffer *out)
{
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&up, buf, len, &off),
                      MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (up.data.type, MSGPACK_OBJECT_ARRAY);
    uint32_t n = up.data.via.array.size;
    msgpack_object *items = calloc (n + n_extra, sizeof *items);
    assert_non_null (items);
    memcpy (items, up.data.via.array.ptr, n * sizeof *items);
    if (pos >= 0) {
        assert_true ((uint32_t) pos < n);
        items [pos] = *repl;
    }
    for (uint32_t i = 0; i < n_extra; i++)
        items [n + i] = extra [i];
    msgpack_object top;
    top.type = MSGPACK_OBJECT_ARRAY;
    top.via.array.size = n + n_extra;
    top.via.array.ptr = items;
    msgpack_sbuffer_clear (out);
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    assert_int_equal (msgpack_pack_object (&pk, top), 0);
    free (items);
    msgpack_unpacked_destroy (&up);
}

//  Objects of every kind, to put where they do not belong.
static msgpack_object
s_obj_nil (void)
{
    msgpack_object o;
    memset (&o, 0, sizeof o);
    o.type = MSGPACK_OBJECT_NIL;
    return o;
}

static msgpack_object
s_obj_bool (bool b)
{
    msgpack_object o = s_obj_nil ();
    o.type = MSGPACK_OBJECT_BOOLEAN;
    o.via.boolean = b;
    return o;
}

static msgpack_object
s_obj_uint (uint64_t v)
{
    msgpack_object o = s_obj_nil ();
    o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o.via.u64 = v;
    return o;
}

static msgpack_object
s_obj_int (int64_t v)
{
    msgpack_object o = s_obj_nil ();
    o.type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
    o.via.i64 = v;
    return o;
}

static msgpack_object
s_obj_float (double v)
{
    msgpack_object o = s_obj_nil ();
    o.type = MSGPACK_OBJECT_FLOAT64;
    o.via.f64 = v;
    return o;
}

static msgpack_object
s_obj_str (const char *s)
{
    msgpack_object o = s_obj_nil ();
    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t) strlen (s);
    return o;
}

static msgpack_object
s_obj_bin (const char *s, uint32_t len)
{
    msgpack_object o = s_obj_nil ();
    o.type = MSGPACK_OBJECT_BIN;
    o.via.bin.ptr = s;
    o.via.bin.size = len;
    return o;
}

static msgpack_object
s_obj_array (msgpack_object *items, uint32_t n)
{
    msgpack_object o = s_obj_nil ();
    o.type = MSGPACK_OBJECT_ARRAY;
    o.via.array.ptr = items;
    o.via.array.size = n;
    return o;
}

static msgpack_object
s_obj_map (void)
{
    msgpack_object o = s_obj_nil ();
    o.type = MSGPACK_OBJECT_MAP;
    return o;
}


//  ---------------------------------------------------------------------
//  One valid sample of every message, and the kind of each of its fields

static const char s_big_value [] = "a value with \0 a zero byte in it";

static wc_entry_t
s_sample_entry (uint8_t op)
{
    wc_entry_t e;
    memset (&e, 0, sizeof e);
    e.seq = 123456789012ULL;
    e.epoch = 3;
    e.ts_ms = 1764400000123ULL;
    e.op = op;
    e.key = s_bytes ("user:1");
    if (op == WC_OP_PUT) {
        e.value.ptr = (const uint8_t *) s_big_value;
        e.value.len = sizeof s_big_value;
    }
    return e;
}

//  Node k of the samples: 0 a primary, 1 a replica following it.
static wc_node_info_t
s_sample_node (int k)
{
    wc_node_info_t n;
    memset (&n, 0, sizeof n);
    if (k == 0) {
        n.id = s_bytes ("us1");
        n.region = s_bytes ("us-east");
        n.role = WC_ROLE_PRIMARY;
        n.epoch = 4;
        n.applied_seq = 1010;
        n.addr = s_bytes ("127.0.0.1:7100");
        n.up = true;
        n.silent_ms = 120;
    }
    else {
        n.id = s_bytes ("eu1");
        n.region = s_bytes ("eu-west");
        n.role = WC_ROLE_REPLICA;
        n.epoch = 4;
        n.applied_seq = 1000;
        n.addr = s_bytes ("127.0.0.1:7200");
        n.primary = s_bytes ("127.0.0.1:7100");
        n.lag = 10;
        n.lag_ms = 35;
        n.up = false;
        n.silent_ms = UINT64_MAX;
    }
    return n;
}

//  Number of sample messages; sample i has kinds s_kinds [i]:
//  V version, T type, U uint, K key (1.. bytes), B bytes, ? bool,
//  A entry array, L list of entries, N node_info array, M list of them.
//  Samples 0, 1, 2, 6 and 9 are the short forms of PUT, DEL, GET,
//  WRITE_OK and PONG; 24, 25, 18, 26 and 19 their long forms with every
//  optional field. Samples 24 to 38 are issue 7's messages.
#define S_NSAMPLES 39
#define S_PUT_SHORT  0
#define S_DEL_SHORT  1
#define S_GET_SHORT  2
#define S_WRITE_OK_SHORT 6
#define S_PONG_SHORT 9
#define S_STATUS_REPLY 10
#define S_HEARTBEAT  15
#define S_FETCH      16
#define S_ENTRIES    17
#define S_GET_LONG   18
#define S_PONG_LONG  19
#define S_REGISTER   20
#define S_TOPOLOGY   23
#define S_PUT_LONG   24
#define S_DEL_LONG   25
#define S_WRITE_OK_LONG 26
#define S_ACK        27
#define S_EPOCH_END_REPLY 31
#define S_SNAPSHOT_GET   32
#define S_SNAPSHOT_CHUNK 33
#define S_PROMOTE    34
#define S_FOLLOW     35
#define S_HANDOVER   36
#define S_SWITCHOVER_DONE 38

static const char *s_kinds [S_NSAMPLES] = {
    "VTUKB", "VTUK", "VTUK", "VTU", "VTU", "VTU", "VTUUU", "VTU?BU",
    "VTU?BU", "VTUUUU", "VTUKBUUUBUU", "VTUUU", "VTUUBB", "VTA", "VTA",
    "VTUUU", "VTUUU", "VTUUL",
    "VTUKUUU", "VTUUUUUKBU", "VTUN", "VTUN", "VTU", "VTUUM",
    "VTUKBUU", "VTUKUU", "VTUUUU", "VTUKUU", "VTU", "VTUUU", "VTUU", "VTUUUU",
    "VTUUUU", "VTUUUUB", "VTUU", "VTUUK", "VTUUBB", "VTUK", "VTUUK"
};

//  Kinds of the node_info fields [id, region, role, epoch, applied_seq,
//  addr, primary, lag, lag_ms, up, silent_ms, flags, handover_seq].
static const char s_node_kinds [] = "KBUUUKBUU?UUU";

//  The fields of samples 24 to 38, issue 7's messages (see s_sample).
static void
s_sample_issue7 (int i, wc_msg_t *m)
{
    switch (i) {
        case S_PUT_LONG:
            m->u.req.key = s_bytes ("k");
            m->u.req.value = s_bytes ("v");
            m->u.req.acks = 2;
            m->u.req.ack_timeout_ms = 1500;
            break;
        case S_DEL_LONG:                    //  a zero timeout goes along
            m->u.req.key = s_bytes ("k");
            m->u.req.acks = WC_ACKS_ALL;
            break;
        case S_WRITE_OK_LONG:
            m->u.write_ok.epoch = 2;
            m->u.write_ok.seq = 1000;
            m->u.write_ok.acked = 3;
            break;
        case S_ACK:                         //  sent with rid 0
            m->rid = 0;
            m->u.ack.id = s_bytes ("eu1");
            m->u.ack.epoch = 4;
            m->u.ack.seq = 1000;
            break;
        case 29:
            m->u.snapshot_done.seq = 1000000;
            m->u.snapshot_done.bytes = 123456789;
            break;
        case 30:
            m->u.epoch_end.epoch = 5;
            break;
        case 31:
            m->u.epoch_end.epoch = 4;
            m->u.epoch_end.end_seq = 1000;
            m->u.epoch_end.latest = 6;
            break;
        case S_SNAPSHOT_GET:
            m->u.snapshot_get.seq = 1000000;
            m->u.snapshot_get.offset = 2u * 1024 * 1024;
            m->u.snapshot_get.max_bytes = WC_MAX_SNAPSHOT_CHUNK;
            break;
        case S_SNAPSHOT_CHUNK:
            m->u.snapshot_chunk.seq = 1000000;
            m->u.snapshot_chunk.size = 123456789;
            m->u.snapshot_chunk.offset = 2u * 1024 * 1024;
            m->u.snapshot_chunk.data.ptr = (const uint8_t *) s_big_value;
            m->u.snapshot_chunk.data.len = sizeof s_big_value;
            break;
        case S_PROMOTE:
            m->u.promote.epoch = 5;
            break;
        case S_FOLLOW:
            m->u.follow.epoch = 5;
            m->u.follow.primary = s_bytes ("127.0.0.1:7200");
            break;
        case S_HANDOVER:
            m->u.handover.epoch = 4;
            m->u.handover.target_id = s_bytes ("eu1");
            m->u.handover.target_addr = s_bytes ("127.0.0.1:7200");
            break;
        case 37:
            m->u.switchover.node_id = s_bytes ("eu1");
            break;
        case S_SWITCHOVER_DONE:
            m->u.switchover_done.epoch = 5;
            m->u.switchover_done.primary = s_bytes ("127.0.0.1:7200");
            break;
        default:                            //  SNAPSHOT (28): no fields
            break;
    }
}

//  Sample i (not ENTRIES or TOPOLOGY, which have no wc_msg_encode form).
static wc_msg_t
s_sample (int i)
{
    static const int types [S_NSAMPLES] = {
        WC_MSG_PUT, WC_MSG_DEL, WC_MSG_GET, WC_MSG_PING, WC_MSG_STATUS,
        WC_MSG_DIGEST, WC_MSG_WRITE_OK, WC_MSG_VALUE, WC_MSG_VALUE,
        WC_MSG_PONG, WC_MSG_STATUS_REPLY, WC_MSG_DIGEST_REPLY, WC_MSG_ERROR,
        WC_MSG_ENTRY, WC_MSG_ENTRY, WC_MSG_HEARTBEAT, WC_MSG_FETCH,
        WC_MSG_ENTRIES,
        WC_MSG_GET, WC_MSG_PONG, WC_MSG_REGISTER, WC_MSG_NODE_HEARTBEAT,
        WC_MSG_TOPOLOGY_GET, WC_MSG_TOPOLOGY,
        WC_MSG_PUT, WC_MSG_DEL, WC_MSG_WRITE_OK, WC_MSG_ACK, WC_MSG_SNAPSHOT,
        WC_MSG_SNAPSHOT_DONE, WC_MSG_EPOCH_END, WC_MSG_EPOCH_END_REPLY,
        WC_MSG_SNAPSHOT_GET, WC_MSG_SNAPSHOT_CHUNK, WC_MSG_PROMOTE,
        WC_MSG_FOLLOW, WC_MSG_HANDOVER, WC_MSG_SWITCHOVER,
        WC_MSG_SWITCHOVER_DONE
    };
    wc_msg_t m;
    memset (&m, 0, sizeof m);
    m.type = types [i];
    m.rid = 0x0123456789abcdefULL + (uint64_t) i;
    switch (i) {
        case 0:
            m.u.req.key = s_bytes ("user:1");
            m.u.req.value.ptr = (const uint8_t *) s_big_value;
            m.u.req.value.len = sizeof s_big_value;
            break;
        case 1: case 2:
            m.u.req.key = s_bytes ("k");
            break;
        case 6:
            m.u.write_ok.epoch = 2;
            m.u.write_ok.seq = UINT64_MAX;
            break;
        case 7:
            m.u.value.found = true;
            m.u.value.value = s_bytes ("Alice");
            m.u.value.seq = 99;
            break;
        case 8:
            m.u.value.found = true;     // found, empty value
            m.u.value.seq = 1;
            break;
        case 9:
            m.u.pong.epoch = 7;
            m.u.pong.seq = 1u << 20;
            m.u.pong.clock_ms = 1764400000123ULL;
            break;
        case 10:
            m.u.status.id = s_bytes ("eu1");
            m.u.status.region = s_bytes ("eu-west");
            m.u.status.role = WC_ROLE_REPLICA;
            m.u.status.epoch = 4;
            m.u.status.applied_seq = 1000;
            m.u.status.primary = s_bytes ("127.0.0.1:7100");
            m.u.status.primary_seq = 1010;
            m.u.status.lag_ms = 12;
            break;
        case 11:
            m.u.digest.seq = 55;
            m.u.digest.hash = 0xdeadbeefcafebabeULL;
            break;
        case 12:
            m.u.error.code = wc_err_to_wire (WALCAST_ENOTPRIMARY);
            m.u.error.text = s_bytes ("node is not the primary");
            m.u.error.detail = s_bytes ("127.0.0.1:7100");
            break;
        case 13:
            m.rid = 0;
            m.u.entry = s_sample_entry (WC_OP_PUT);
            break;
        case 14:
            m.rid = 0;
            m.u.entry = s_sample_entry (WC_OP_DEL);
            break;
        case 15:
            m.rid = 0;
            m.u.heartbeat.epoch = 3;
            m.u.heartbeat.last_seq = 0;
            m.u.heartbeat.clock_ms = 1764400000123ULL;
            break;
        case 16:
            m.u.fetch.from_seq = 17;
            m.u.fetch.max_bytes = WC_MAX_FETCH_BYTES;
            break;
        case S_GET_LONG:
            m.u.req.key = s_bytes ("k");
            m.u.req.min_seq = 1000;
            m.u.req.max_staleness_ms = 250;
            m.u.req.wait_ms = 200;
            break;
        case S_PONG_LONG:
            m.u.pong.epoch = 7;
            m.u.pong.seq = 1u << 20;
            m.u.pong.clock_ms = 1764400000123ULL;
            m.u.pong.role = WC_ROLE_REPLICA;
            m.u.pong.id = s_bytes ("eu1");
            m.u.pong.region = s_bytes ("eu-west");
            m.u.pong.lag_ms = 35;
            break;
        case S_REGISTER:
            m.u.node = s_sample_node (0);
            m.u.node.silent_ms = 0;             // as a node sends it
            break;
        case 21:
            m.u.node = s_sample_node (1);
            m.u.node.up = true;
            m.u.node.silent_ms = 0;
            break;
        default:
            s_sample_issue7 (i, &m);
            break;
    }
    return m;
}

//  Encode sample i into out (reset first). ENTRIES gets two entries,
//  TOPOLOGY (version 77) the two sample nodes.
static void
s_encode_sample (int i, msgpack_sbuffer *out)
{
    msgpack_sbuffer_clear (out);
    wc_msg_t m = s_sample (i);
    if (m.type == WC_MSG_TOPOLOGY) {
        assert_int_equal (wc_topology_encode_header (m.rid, 77, 2, out), 0);
        wc_node_info_t n0 = s_sample_node (0), n1 = s_sample_node (1);
        assert_int_equal (wc_node_info_encode (&n0, out), 0);
        assert_int_equal (wc_node_info_encode (&n1, out), 0);
    }
    else
    if (m.type == WC_MSG_ENTRIES) {
        assert_int_equal (wc_entries_encode_header (m.rid, 42, 2, out), 0);
        wc_entry_t e1 = s_sample_entry (WC_OP_PUT);
        wc_entry_t e2 = s_sample_entry (WC_OP_DEL);
        e2.seq = e1.seq + 1;
        assert_int_equal (wc_entry_encode (&e1, out), 0);
        assert_int_equal (wc_entry_encode (&e2, out), 0);
    }
    else
        assert_int_equal (wc_msg_encode (&m, out), 0);
}

//  Objects of the wrong type for a field of the given kind.
static int
s_wrong_for (char kind, msgpack_object *wrong)
{
    static char one [] = "1";
    int n = 0;
    switch (kind) {
        case 'V': case 'T': case 'U':
            wrong [n++] = s_obj_nil ();
            wrong [n++] = s_obj_bool (true);
            wrong [n++] = s_obj_int (-1);
            wrong [n++] = s_obj_int (INT64_MIN);
            wrong [n++] = s_obj_float (1.0);
            wrong [n++] = s_obj_str ("1");
            wrong [n++] = s_obj_bin (one, 1);
            wrong [n++] = s_obj_array (NULL, 0);
            wrong [n++] = s_obj_map ();
            break;
        case 'K': case 'B':
            wrong [n++] = s_obj_nil ();
            wrong [n++] = s_obj_bool (false);
            wrong [n++] = s_obj_uint (7);
            wrong [n++] = s_obj_int (-1);
            wrong [n++] = s_obj_float (0.5);
            wrong [n++] = s_obj_array (NULL, 0);
            wrong [n++] = s_obj_map ();
            break;
        case '?':
            wrong [n++] = s_obj_nil ();
            wrong [n++] = s_obj_uint (1);
            wrong [n++] = s_obj_uint (0);
            wrong [n++] = s_obj_str ("true");
            break;
        case 'A':
            wrong [n++] = s_obj_nil ();
            wrong [n++] = s_obj_uint (1);
            wrong [n++] = s_obj_str ("entry");
            wrong [n++] = s_obj_array (NULL, 0);
            wrong [n++] = s_obj_map ();
            break;
        case 'L': case 'M':
            wrong [n++] = s_obj_nil ();
            wrong [n++] = s_obj_uint (1);
            wrong [n++] = s_obj_str ("entries");
            wrong [n++] = s_obj_bool (true);
            wrong [n++] = s_obj_map ();
            break;
        case 'N':
            wrong [n++] = s_obj_nil ();
            wrong [n++] = s_obj_uint (1);
            wrong [n++] = s_obj_str ("node");
            wrong [n++] = s_obj_bool (true);
            wrong [n++] = s_obj_array (NULL, 0);
            wrong [n++] = s_obj_map ();
            break;
        default:
            fail_msg ("unknown kind %c", kind);
    }
    return n;
}


//  ---------------------------------------------------------------------
//  Round trips

static void
test_roundtrip_every_message (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    for (int i = 0; i < S_NSAMPLES; i++) {
        wc_msg_t in = s_sample (i);
        s_encode_sample (i, &sb);
        wc_msg_t out;
        assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &out), 0);
        assert_int_equal (out.type, in.type);
        if (in.type == WC_MSG_ENTRIES) {
            assert_int_equal (out.rid, in.rid);
            assert_int_equal (out.u.entries.last_seq, 42);
            assert_int_equal (out.u.entries.count, 2);
            wc_entry_t e1 = s_sample_entry (WC_OP_PUT);
            wc_entry_t e2 = s_sample_entry (WC_OP_DEL);
            e2.seq = e1.seq + 1;
            wc_entry_t got;
            assert_int_equal (wc_entry_from_object (&out.u.entries.items [0], &got), 0);
            assert_true (s_entry_equal (&got, &e1));
            assert_int_equal (wc_entry_from_object (&out.u.entries.items [1], &got), 0);
            assert_true (s_entry_equal (&got, &e2));
            assert_true (s_inside (got.key, sb.data, sb.size));
        }
        else
        if (in.type == WC_MSG_TOPOLOGY) {
            assert_int_equal (out.rid, in.rid);
            assert_int_equal (out.u.topology.version, 77);
            assert_int_equal (out.u.topology.count, 2);
            for (int k = 0; k < 2; k++) {
                wc_node_info_t want = s_sample_node (k), got;
                assert_int_equal (wc_node_info_from_object (
                                  &out.u.topology.items [k], &got), 0);
                assert_true (s_node_equal (&got, &want));
            }
        }
        else {
            if (!s_msg_equal (&in, &out))
                fail_msg ("%s (sample %d) changed in a round trip",
                          wc_msg_type_name (in.type), i);
        }
    }
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

//  Decoded byte strings point into the input buffer (msgpack-c 4.0.0
//  references str and bin in place): nothing is copied.
static void
test_decode_borrows_input (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;

    s_encode_sample (0, &sb);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_true (s_inside (m.u.req.key, sb.data, sb.size));
    assert_true (s_inside (m.u.req.value, sb.data, sb.size));
    assert_ptr_equal (m.u.req.value.ptr,
                      (const uint8_t *) sb.data + sb.size - sizeof s_big_value);

    s_encode_sample (10, &sb);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_true (s_inside (m.u.status.id, sb.data, sb.size));
    assert_true (s_inside (m.u.status.region, sb.data, sb.size));
    assert_true (s_inside (m.u.status.primary, sb.data, sb.size));

    s_encode_sample (S_PONG_LONG, &sb);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_true (s_inside (m.u.pong.id, sb.data, sb.size));
    assert_true (s_inside (m.u.pong.region, sb.data, sb.size));

    s_encode_sample (S_SNAPSHOT_CHUNK, &sb);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_ptr_equal (m.u.snapshot_chunk.data.ptr,
                      (const uint8_t *) sb.data + sb.size - sizeof s_big_value);
    s_encode_sample (S_ACK, &sb);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_true (s_inside (m.u.ack.id, sb.data, sb.size));
    s_encode_sample (S_HANDOVER, &sb);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_true (s_inside (m.u.handover.target_id, sb.data, sb.size));
    assert_true (s_inside (m.u.handover.target_addr, sb.data, sb.size));

    s_encode_sample (21, &sb);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_true (s_inside (m.u.node.id, sb.data, sb.size));
    assert_true (s_inside (m.u.node.region, sb.data, sb.size));
    assert_true (s_inside (m.u.node.addr, sb.data, sb.size));
    assert_true (s_inside (m.u.node.primary, sb.data, sb.size));

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_entry_roundtrip (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    for (uint8_t op = WC_OP_PUT; op <= WC_OP_DEL; op++) {
        wc_entry_t in = s_sample_entry (op);
        msgpack_sbuffer_clear (&sb);
        assert_int_equal (wc_entry_encode (&in, &sb), 0);
        wc_entry_t out;
        assert_int_equal (wc_entry_decode (sb.data, sb.size, &up, &out), 0);
        assert_true (s_entry_equal (&in, &out));
        assert_true (s_inside (out.key, sb.data, sb.size));
    }
    //  A DEL is encoded with a nil value
    wc_entry_t del = s_sample_entry (WC_OP_DEL);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&del, &sb), 0);
    assert_int_equal ((uint8_t) sb.data [sb.size - 1], 0xc0);
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

//  An ENTRY message built from the raw WAL payload is byte for byte the
//  one wc_msg_encode builds, so nodes can publish without re-encoding.
static void
test_entry_raw_matches_encoded (void **state)
{
    (void) state;
    msgpack_sbuffer entry, raw, full;
    msgpack_sbuffer_init (&entry);
    msgpack_sbuffer_init (&raw);
    msgpack_sbuffer_init (&full);
    for (uint8_t op = WC_OP_PUT; op <= WC_OP_DEL; op++) {
        msgpack_sbuffer_clear (&entry);
        msgpack_sbuffer_clear (&raw);
        msgpack_sbuffer_clear (&full);
        wc_msg_t m;
        memset (&m, 0, sizeof m);
        m.type = WC_MSG_ENTRY;
        m.u.entry = s_sample_entry (op);
        assert_int_equal (wc_entry_encode (&m.u.entry, &entry), 0);
        assert_int_equal (wc_entry_msg_encode_raw (entry.data, entry.size, &raw), 0);
        assert_int_equal (wc_msg_encode (&m, &full), 0);
        assert_int_equal (raw.size, full.size);
        assert_memory_equal (raw.data, full.data, raw.size);
    }
    assert_int_equal (wc_entry_msg_encode_raw (NULL, 0, &raw), WALCAST_EINVAL);
    msgpack_sbuffer_destroy (&entry);
    msgpack_sbuffer_destroy (&raw);
    msgpack_sbuffer_destroy (&full);
}

//  ---------------------------------------------------------------------
//  Golden bytes: the exact encoding of every message. The wire is a
//  product surface (an independent client is written from PROTOCOL.md),
//  so any change of even one byte must be deliberate: these strings are
//  what the encoder produced when they were written, and the examples of
//  PROTOCOL.md are checked the same way.

//  True when buf holds exactly the bytes of hex: pairs of hex digits,
//  spaces ignored, and text in double quotes for its own bytes (as the
//  examples of PROTOCOL.md write strings). On a mismatch, print what was produced, so a
//  deliberate wire change can update the string.
static bool
s_golden_ok (const char *what, const void *buf, size_t len, const char *hex)
{
    const uint8_t *bytes = (const uint8_t *) buf;
    size_t n = 0;
    bool same = true;
    bool quoted = false;
    for (const char *p = hex; *p; ) {
        unsigned int byte = 0;
        if (*p == '"') {
            quoted = !quoted;
            p++;
            continue;
        }
        if (quoted)
            byte = (uint8_t) *p++;
        else
        if (*p == ' ') {
            p++;
            continue;
        }
        else {
            assert_int_equal (sscanf (p, "%2x", &byte), 1);
            p += 2;
        }
        if (n >= len || bytes [n] != byte)
            same = false;
        n++;
    }
    if (same && n == len)
        return true;
    print_message ("%s: got\n    \"", what);
    for (size_t i = 0; i < len; i++)
        print_message ("%02x%s", bytes [i], i + 1 < len ? " " : "\"\n");
    return false;
}

//  Sample i of s_sample, as s_encode_sample encodes it.
static const char *s_golden_samples [S_NSAMPLES] = {
    /* sample 0 (PUT) */
    "95 01 01 cf 01 23 45 67 89 ab cd ef c4 06 75 73 65 72 3a 31 c4 21 "
    "61 20 76 61 6c 75 65 20 77 69 74 68 20 00 20 61 20 7a 65 72 6f 20 "
    "62 79 74 65 20 69 6e 20 69 74 00",
    /* sample 1 (DEL) */
    "94 01 02 cf 01 23 45 67 89 ab cd f0 c4 01 6b",
    /* sample 2 (GET) */
    "94 01 03 cf 01 23 45 67 89 ab cd f1 c4 01 6b",
    /* sample 3 (PING) */
    "93 01 04 cf 01 23 45 67 89 ab cd f2",
    /* sample 4 (STATUS) */
    "93 01 05 cf 01 23 45 67 89 ab cd f3",
    /* sample 5 (DIGEST) */
    "93 01 06 cf 01 23 45 67 89 ab cd f4",
    /* sample 6 (WRITE_OK) */
    "95 01 10 cf 01 23 45 67 89 ab cd f5 02 cf ff ff ff ff ff ff ff ff",
    /* sample 7 (VALUE) */
    "96 01 11 cf 01 23 45 67 89 ab cd f6 c3 c4 05 41 6c 69 63 65 63",
    /* sample 8 (VALUE) */
    "96 01 11 cf 01 23 45 67 89 ab cd f7 c3 c4 00 01",
    /* sample 9 (PONG) */
    "96 01 12 cf 01 23 45 67 89 ab cd f8 07 ce 00 10 00 00 cf 00 00 01 "
    "9a ce 6f 6c 7b",
    /* sample 10 (STATUS_REPLY) */
    "9b 01 13 cf 01 23 45 67 89 ab cd f9 a3 65 75 31 a7 65 75 2d 77 65 "
    "73 74 02 04 cd 03 e8 ae 31 32 37 2e 30 2e 30 2e 31 3a 37 31 30 30 "
    "cd 03 f2 0c",
    /* sample 11 (DIGEST_REPLY) */
    "95 01 14 cf 01 23 45 67 89 ab cd fa 37 cf de ad be ef ca fe ba be",
    /* sample 12 (ERROR) */
    "96 01 1f cf 01 23 45 67 89 ab cd fb 06 b7 6e 6f 64 65 20 69 73 20 "
    "6e 6f 74 20 74 68 65 20 70 72 69 6d 61 72 79 ae 31 32 37 2e 30 2e "
    "30 2e 31 3a 37 31 30 30",
    /* sample 13 (ENTRY) */
    "93 01 20 96 cf 00 00 00 1c be 99 1a 14 03 cf 00 00 01 9a ce 6f 6c "
    "7b 01 c4 06 75 73 65 72 3a 31 c4 21 61 20 76 61 6c 75 65 20 77 69 "
    "74 68 20 00 20 61 20 7a 65 72 6f 20 62 79 74 65 20 69 6e 20 69 74 "
    "00",
    /* sample 14 (ENTRY) */
    "93 01 20 96 cf 00 00 00 1c be 99 1a 14 03 cf 00 00 01 9a ce 6f 6c "
    "7b 02 c4 06 75 73 65 72 3a 31 c0",
    /* sample 15 (HEARTBEAT) */
    "95 01 21 03 00 cf 00 00 01 9a ce 6f 6c 7b",
    /* sample 16 (FETCH) */
    "95 01 30 cf 01 23 45 67 89 ab cd ff 11 ce 00 40 00 00",
    /* sample 17 (ENTRIES) */
    "95 01 31 cf 01 23 45 67 89 ab ce 00 2a 92 96 cf 00 00 00 1c be 99 "
    "1a 14 03 cf 00 00 01 9a ce 6f 6c 7b 01 c4 06 75 73 65 72 3a 31 c4 "
    "21 61 20 76 61 6c 75 65 20 77 69 74 68 20 00 20 61 20 7a 65 72 6f "
    "20 62 79 74 65 20 69 6e 20 69 74 00 96 cf 00 00 00 1c be 99 1a 15 "
    "03 cf 00 00 01 9a ce 6f 6c 7b 02 c4 06 75 73 65 72 3a 31 c0",
    /* sample 18 (GET) */
    "97 01 03 cf 01 23 45 67 89 ab ce 01 c4 01 6b cd 03 e8 cc fa cc c8",
    /* sample 19 (PONG) */
    "9a 01 12 cf 01 23 45 67 89 ab ce 02 07 ce 00 10 00 00 cf 00 00 01 "
    "9a ce 6f 6c 7b 02 a3 65 75 31 a7 65 75 2d 77 65 73 74 23",
    /* sample 20 (REGISTER) */
    "94 01 40 cf 01 23 45 67 89 ab ce 03 9d a3 75 73 31 a7 75 73 2d 65 "
    "61 73 74 01 04 cd 03 f2 ae 31 32 37 2e 30 2e 30 2e 31 3a 37 31 30 "
    "30 a0 00 00 c3 00 00 00",
    /* sample 21 (NODE_HEARTBEAT) */
    "94 01 41 cf 01 23 45 67 89 ab ce 04 9d a3 65 75 31 a7 65 75 2d 77 "
    "65 73 74 02 04 cd 03 e8 ae 31 32 37 2e 30 2e 30 2e 31 3a 37 32 30 "
    "30 ae 31 32 37 2e 30 2e 30 2e 31 3a 37 31 30 30 0a 23 c3 00 00 00",
    /* sample 22 (TOPOLOGY_GET) */
    "93 01 42 cf 01 23 45 67 89 ab ce 05",
    /* sample 23 (TOPOLOGY) */
    "95 01 43 cf 01 23 45 67 89 ab ce 06 4d 92 9d a3 75 73 31 a7 75 73 "
    "2d 65 61 73 74 01 04 cd 03 f2 ae 31 32 37 2e 30 2e 30 2e 31 3a 37 "
    "31 30 30 a0 00 00 c3 78 00 00 9d a3 65 75 31 a7 65 75 2d 77 65 73 "
    "74 02 04 cd 03 e8 ae 31 32 37 2e 30 2e 30 2e 31 3a 37 32 30 30 ae "
    "31 32 37 2e 30 2e 30 2e 31 3a 37 31 30 30 0a 23 c2 cf ff ff ff ff "
    "ff ff ff ff 00 00",
    /* sample 24 (PUT) */
    "97 01 01 cf 01 23 45 67 89 ab ce 07 c4 01 6b c4 01 76 02 cd 05 dc",
    /* sample 25 (DEL) */
    "96 01 02 cf 01 23 45 67 89 ab ce 08 c4 01 6b cc ff 00",
    /* sample 26 (WRITE_OK) */
    "96 01 10 cf 01 23 45 67 89 ab ce 09 02 cd 03 e8 03",
    /* sample 27 (ACK) */
    "96 01 07 00 a3 65 75 31 04 cd 03 e8",
    /* sample 28 (SNAPSHOT) */
    "93 01 08 cf 01 23 45 67 89 ab ce 0b",
    /* sample 29 (SNAPSHOT_DONE) */
    "95 01 15 cf 01 23 45 67 89 ab ce 0c ce 00 0f 42 40 ce 07 5b cd 15",
    /* sample 30 (EPOCH_END) */
    "94 01 32 cf 01 23 45 67 89 ab ce 0d 05",
    /* sample 31 (EPOCH_END_REPLY) */
    "96 01 33 cf 01 23 45 67 89 ab ce 0e 04 cd 03 e8 06",
    /* sample 32 (SNAPSHOT_GET) */
    "96 01 34 cf 01 23 45 67 89 ab ce 0f ce 00 0f 42 40 ce 00 20 00 00 "
    "ce 00 10 00 00",
    /* sample 33 (SNAPSHOT_CHUNK) */
    "97 01 35 cf 01 23 45 67 89 ab ce 10 ce 00 0f 42 40 ce 07 5b cd 15 "
    "ce 00 20 00 00 c4 21 61 20 76 61 6c 75 65 20 77 69 74 68 20 00 20 "
    "61 20 7a 65 72 6f 20 62 79 74 65 20 69 6e 20 69 74 00",
    /* sample 34 (PROMOTE) */
    "94 01 44 cf 01 23 45 67 89 ab ce 11 05",
    /* sample 35 (FOLLOW) */
    "95 01 45 cf 01 23 45 67 89 ab ce 12 05 ae 31 32 37 2e 30 2e 30 2e "
    "31 3a 37 32 30 30",
    /* sample 36 (HANDOVER) */
    "96 01 46 cf 01 23 45 67 89 ab ce 13 04 a3 65 75 31 ae 31 32 37 2e "
    "30 2e 30 2e 31 3a 37 32 30 30",
    /* sample 37 (SWITCHOVER) */
    "94 01 47 cf 01 23 45 67 89 ab ce 14 a3 65 75 31",
    /* sample 38 (SWITCHOVER_DONE) */
    "95 01 48 cf 01 23 45 67 89 ab ce 15 05 ae 31 32 37 2e 30 2e 30 2e "
    "31 3a 37 32 30 30"
};

//  Every sample, byte for byte.
static void
test_golden_samples (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    bool ok = true;
    for (int i = 0; i < S_NSAMPLES; i++) {
        char what [64];
        snprintf (what, sizeof what, "sample %d (%s)", i,
                  wc_msg_type_name (s_sample (i).type));
        s_encode_sample (i, &sb);
        ok &= s_golden_ok (what, sb.data, sb.size, s_golden_samples [i]);
    }
    msgpack_sbuffer_destroy (&sb);
    if (!ok)
        fail_msg ("the encoding changed");
}

//  The forms the samples do not show: optional fields set one at a time,
//  not found, a primary's PONG, the helpers' outputs.
static void
test_golden_variants (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    bool ok = true;
    wc_msg_t m;

    m = s_sample (S_GET_SHORT);
    m.u.req.min_seq = 5;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("GET, min_seq only", sb.data, sb.size,
                       "97 01 03 cf 01 23 45 67 89 ab cd f1 c4 01 6b 05 "
                       "00 00");
    m = s_sample (S_GET_SHORT);
    m.u.req.wait_ms = WC_MAX_WAIT_MS;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("GET, wait_ms only", sb.data, sb.size,
                       "97 01 03 cf 01 23 45 67 89 ab cd f1 c4 01 6b 00 "
                       "00 cd ea 60");

    memset (&m, 0, sizeof m);
    m.type = WC_MSG_VALUE;
    m.rid = 9;
    m.u.value.seq = 4;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("VALUE, not found", sb.data, sb.size,
                       "96 01 11 09 c2 c0 04");

    m = s_sample (S_PONG_LONG);
    m.u.pong.role = WC_ROLE_PRIMARY;
    m.u.pong.region.len = 0;
    m.u.pong.lag_ms = 0;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("PONG, primary", sb.data, sb.size,
                       "9a 01 12 cf 01 23 45 67 89 ab ce 02 07 ce 00 10 "
                       "00 00 cf 00 00 01 9a ce 6f 6c 7b 01 a3 65 75 31 "
                       "a0 00");

    m = s_sample (10);
    m.u.status.role = WC_ROLE_PRIMARY;
    m.u.status.primary.len = 0;
    m.u.status.lag_ms = 0;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("STATUS_REPLY, primary", sb.data, sb.size,
                       "9b 01 13 cf 01 23 45 67 89 ab cd f9 a3 65 75 31 "
                       "a7 65 75 2d 77 65 73 74 01 04 cd 03 e8 a0 cd 03 "
                       "f2 00");

    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_error_encode (0, WALCAST_EPROTO, NULL, NULL, &sb), 0);
    ok &= s_golden_ok ("wc_error_encode", sb.data, sb.size,
                       "96 01 1f 00 02 bf 6d 61 6c 66 6f 72 6d 65 64 20 "
                       "6f 72 20 75 6e 65 78 70 65 63 74 65 64 20 6d 65 "
                       "73 73 61 67 65 a0");

    for (uint8_t op = WC_OP_PUT; op <= WC_OP_DEL; op++) {
        wc_entry_t e = s_sample_entry (op);
        msgpack_sbuffer_clear (&sb);
        assert_int_equal (wc_entry_encode (&e, &sb), 0);
        ok &= s_golden_ok (op == WC_OP_PUT ? "entry, PUT" : "entry, DEL",
                           sb.data, sb.size, op == WC_OP_PUT
                           ? "96 cf 00 00 00 1c be 99 1a 14 03 cf 00 00 01 9a "
                             "ce 6f 6c 7b 01 c4 06 75 73 65 72 3a 31 c4 21 61 "
                             "20 76 61 6c 75 65 20 77 69 74 68 20 00 20 61 20 "
                             "7a 65 72 6f 20 62 79 74 65 20 69 6e 20 69 74 00"
                           : "96 cf 00 00 00 1c be 99 1a 14 03 cf 00 00 01 9a "
                             "ce 6f 6c 7b 02 c4 06 75 73 65 72 3a 31 c0");
    }
    wc_node_info_t n = s_sample_node (1);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_node_info_encode (&n, &sb), 0);
    ok &= s_golden_ok ("node_info", sb.data, sb.size,
                       "9d a3 65 75 31 a7 65 75 2d 77 65 73 74 02 04 cd "
                       "03 e8 ae 31 32 37 2e 30 2e 30 2e 31 3a 37 32 30 "
                       "30 ae 31 32 37 2e 30 2e 30 2e 31 3a 37 31 30 30 "
                       "0a 23 c2 cf ff ff ff ff ff ff ff ff 00 00");

    //  Issue 7's forms: acks or ack_timeout_ms alone, a node_info with
    //  flags and handover_seq, a HANDOVER that cancels, the first
    //  SNAPSHOT_GET of a transfer (the newest snapshot, from offset 0)
    m = s_sample (S_PUT_LONG);
    m.u.req.ack_timeout_ms = 0;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("PUT, acks only", sb.data, sb.size,
                       "97 01 01 cf 01 23 45 67 89 ab ce 07 c4 01 6b c4 "
                       "01 76 02 00");
    m = s_sample (S_PUT_LONG);
    m.u.req.acks = 0;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("PUT, ack_timeout_ms only", sb.data, sb.size,
                       "97 01 01 cf 01 23 45 67 89 ab ce 07 c4 01 6b c4 "
                       "01 76 00 cd 05 dc");
    n = s_sample_node (0);
    n.flags = WC_NODE_CANDIDATE | WC_NODE_STALLED;
    n.handover_seq = 1010;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_node_info_encode (&n, &sb), 0);
    ok &= s_golden_ok ("node_info, flags and handover_seq", sb.data, sb.size,
                       "9d a3 75 73 31 a7 75 73 2d 65 61 73 74 01 04 cd "
                       "03 f2 ae 31 32 37 2e 30 2e 30 2e 31 3a 37 31 30 "
                       "30 a0 00 00 c3 78 05 cd 03 f2");
    m = s_sample (S_HANDOVER);
    m.u.handover.target_id.len = 0;
    m.u.handover.target_addr.len = 0;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("HANDOVER, cancel", sb.data, sb.size,
                       "96 01 46 cf 01 23 45 67 89 ab ce 13 04 a0 a0");
    m = s_sample (S_SNAPSHOT_GET);
    m.u.snapshot_get.seq = 0;
    m.u.snapshot_get.offset = 0;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("SNAPSHOT_GET, newest", sb.data, sb.size,
                       "96 01 34 cf 01 23 45 67 89 ab ce 0f 00 00 ce 00 "
                       "10 00 00");

    msgpack_sbuffer_destroy (&sb);
    if (!ok)
        fail_msg ("the encoding changed");
}

//  Integers take the shortest form; strings and binaries take the
//  length forms of the MessagePack spec (bin always as bin 8/16/32).
static void
test_golden_length_forms (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    char *fill = malloc (WC_MAX_VALUE);
    assert_non_null (fill);
    memset (fill, 'x', WC_MAX_VALUE);
    bool ok = true;
    char what [64];

    //  WRITE_OK [1, 16, 1, 2, seq] is "95 01 10 01 02" and the seq
    struct { uint64_t v; const char *hex; } ints [] = {
        { 0, "00" },
        { 127, "7f" },
        { 128, "cc 80" },
        { 255, "cc ff" },
        { 256, "cd 01 00" },
        { 65535, "cd ff ff" },
        { 65536, "ce 00 01 00 00" },
        { UINT32_MAX, "ce ff ff ff ff" },
        { (uint64_t) UINT32_MAX + 1, "cf 00 00 00 01 00 00 00 00" },
        { UINT64_MAX, "cf ff ff ff ff ff ff ff ff" }
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints [0]; i++) {
        wc_msg_t m = { .type = WC_MSG_WRITE_OK, .rid = 1 };
        m.u.write_ok.epoch = 2;
        m.u.write_ok.seq = ints [i].v;
        msgpack_sbuffer_clear (&sb);
        assert_int_equal (wc_msg_encode (&m, &sb), 0);
        snprintf (what, sizeof what, "WRITE_OK seq %llu",
                  (unsigned long long) ints [i].v);
        assert_memory_equal (sb.data, "\x95\x01\x10\x01\x02", 5);
        ok &= s_golden_ok (what, sb.data + 5, sb.size - 5, ints [i].hex);
    }
    //  PUT [1, 1, 1, "k", value] is "95 01 01 01 c4 01 6b", the value's
    //  header, then its bytes
    struct { uint32_t len; const char *hex; } bins [] = {
        { 0, "c4 00" },
        { 255, "c4 ff" },
        { 256, "c5 01 00" },
        { 65535, "c5 ff ff" },
        { 65536, "c6 00 01 00 00" },
        { WC_MAX_VALUE, "c6 00 10 00 00" }
    };
    for (size_t i = 0; i < sizeof bins / sizeof bins [0]; i++) {
        wc_msg_t m = { .type = WC_MSG_PUT, .rid = 1 };
        m.u.req.key = s_bytes ("k");
        m.u.req.value.ptr = (const uint8_t *) fill;
        m.u.req.value.len = bins [i].len;
        msgpack_sbuffer_clear (&sb);
        assert_int_equal (wc_msg_encode (&m, &sb), 0);
        size_t head = sb.size - bins [i].len;
        snprintf (what, sizeof what, "PUT value of %u", bins [i].len);
        assert_memory_equal (sb.data, "\x95\x01\x01\x01\xc4\x01k", 7);
        ok &= s_golden_ok (what, sb.data + 7, head - 7, bins [i].hex);
        assert_memory_equal (sb.data + head, fill, bins [i].len);
    }
    //  ERROR [1, 31, 1, 2, text, ""] is "96 01 1f 01 02", the text's
    //  header, its bytes, then "a0"
    struct { uint32_t len; const char *hex; } strs [] = {
        { 0, "a0" },
        { 31, "bf" },
        { 32, "d9 20" },
        { 255, "d9 ff" },
        { 256, "da 01 00" },
        { WC_MAX_TEXT, "da 04 00" }
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs [0]; i++) {
        wc_msg_t m = { .type = WC_MSG_ERROR, .rid = 1 };
        m.u.error.code = 2;
        m.u.error.text.ptr = (const uint8_t *) fill;
        m.u.error.text.len = strs [i].len;
        msgpack_sbuffer_clear (&sb);
        assert_int_equal (wc_msg_encode (&m, &sb), 0);
        size_t head = sb.size - strs [i].len - 1;
        snprintf (what, sizeof what, "ERROR text of %u", strs [i].len);
        assert_memory_equal (sb.data, "\x96\x01\x1f\x01\x02", 5);
        ok &= s_golden_ok (what, sb.data + 5, head - 5, strs [i].hex);
        assert_memory_equal (sb.data + head, fill, strs [i].len);
        assert_int_equal ((uint8_t) sb.data [sb.size - 1], 0xa0);
    }
    free (fill);
    msgpack_sbuffer_destroy (&sb);
    if (!ok)
        fail_msg ("the encoding changed");
}

//  The examples of PROTOCOL.md ("Examples"), as the document writes them.
static void
test_golden_protocol_examples (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    bool ok = true;
    const uint64_t clock = 0x0000019ace6f6c7bULL;
    wc_msg_t m;

#define S_ENTRY_HEX "96 2a 01 cf 00 00 01 9a ce 6f 6c 7b 01 c4 06 75 73 65 72 3a 31 " \
                    "c4 05 41 6c 69 63 65"
#define S_NODE_HEX "9d a3 65 75 31 a7 65 75 2d 77 65 73 74 02 01 29 " \
                    "ae \"127.0.0.1:7200\" ae \"127.0.0.1:7100\" 01 23 c3"

    m = (wc_msg_t) { .type = WC_MSG_PUT, .rid = 1 };
    m.u.req.key = s_bytes ("user:1");
    m.u.req.value = s_bytes ("Alice");
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("PUT", sb.data, sb.size,
                       "95 01 01 01 c4 06 75 73 65 72 3a 31 c4 05 41 6c 69 63 65");
    m = (wc_msg_t) { .type = WC_MSG_WRITE_OK, .rid = 1 };
    m.u.write_ok.epoch = 1;
    m.u.write_ok.seq = 42;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("WRITE_OK", sb.data, sb.size, "95 01 10 01 01 2a");
    m = (wc_msg_t) { .type = WC_MSG_GET, .rid = 2 };
    m.u.req.key = s_bytes ("user:1");
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("GET", sb.data, sb.size,
                       "94 01 03 02 c4 06 75 73 65 72 3a 31");
    m = (wc_msg_t) { .type = WC_MSG_VALUE, .rid = 2 };
    m.u.value.found = true;
    m.u.value.value = s_bytes ("Alice");
    m.u.value.seq = 42;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("VALUE", sb.data, sb.size,
                       "96 01 11 02 c3 c4 05 41 6c 69 63 65 2a");
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_error_encode (1, WALCAST_ENOTPRIMARY, NULL,
                                       "127.0.0.1:7100", &sb), 0);
    ok &= s_golden_ok ("ERROR", sb.data, sb.size,
                       "96 01 1f 01 06 b7 \"node is not the primary\" "
                       "ae \"127.0.0.1:7100\"");

    wc_entry_t e = { .seq = 42, .epoch = 1, .ts_ms = clock, .op = WC_OP_PUT };
    e.key = s_bytes ("user:1");
    e.value = s_bytes ("Alice");
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    ok &= s_golden_ok ("entry", sb.data, sb.size, S_ENTRY_HEX);
    m = (wc_msg_t) { .type = WC_MSG_ENTRY };
    m.u.entry = e;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("ENTRY", sb.data, sb.size, "93 01 20 " S_ENTRY_HEX);
    m = (wc_msg_t) { .type = WC_MSG_HEARTBEAT };
    m.u.heartbeat.epoch = 1;
    m.u.heartbeat.last_seq = 42;
    m.u.heartbeat.clock_ms = clock + 100;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("HEARTBEAT", sb.data, sb.size,
                       "95 01 21 01 2a cf 00 00 01 9a ce 6f 6c df");

    m = (wc_msg_t) { .type = WC_MSG_FETCH, .rid = 7 };
    m.u.fetch.from_seq = 42;
    m.u.fetch.max_bytes = 2u * 1024 * 1024;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("FETCH", sb.data, sb.size, "95 01 30 07 2a ce 00 20 00 00");
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entries_encode_header (7, 42, 1, &sb), 0);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    ok &= s_golden_ok ("ENTRIES", sb.data, sb.size, "95 01 31 07 2a 91 " S_ENTRY_HEX);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entries_encode_stream_header (42, 1, 0, 0, &sb), 0);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    assert_int_equal (wc_entries_encode_trailer (UINT64_C (1764547200123456), 0, 0, &sb), 0);
    ok &= s_golden_ok ("ENTRIES, stream", sb.data, sb.size,
                       "96 01 31 00 2a 91 " S_ENTRY_HEX " cf 00 06 44 d8 a9 0d 82 40");
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entries_encode_stream_header (42, 1, UINT64_C (0x9e3779b97f4a7c15),
                                                       0, &sb), 0);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    assert_int_equal (wc_entries_encode_trailer (UINT64_C (1764547200123456),
                                                 UINT64_C (0x9e3779b97f4a7c15), 0, &sb), 0);
    ok &= s_golden_ok ("ENTRIES, stream, cluster", sb.data, sb.size,
                       "97 01 31 00 2a 91 " S_ENTRY_HEX " cf 00 06 44 d8 a9 0d 82 40"
                       " cf 9e 37 79 b9 7f 4a 7c 15");
    //  flags (0.9): the cluster goes out too, as 0 when there is none
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entries_encode_stream_header (42, 1, 0, WC_ENTRIES_ACK_WANTED,
                                                       &sb), 0);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    assert_int_equal (wc_entries_encode_trailer (UINT64_C (1764547200123456), 0,
                                                 WC_ENTRIES_ACK_WANTED, &sb), 0);
    ok &= s_golden_ok ("ENTRIES, stream, flags", sb.data, sb.size,
                       "98 01 31 00 2a 91 " S_ENTRY_HEX " cf 00 06 44 d8 a9 0d 82 40"
                       " 00 01");
    msgpack_unpacked flagged;
    msgpack_unpacked_init (&flagged);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &flagged, &m), 0);
    assert_int_equal (m.u.entries.flags, WC_ENTRIES_ACK_WANTED);
    assert_int_equal (m.u.entries.cluster, 0);
    msgpack_unpacked_destroy (&flagged);

    m = (wc_msg_t) { .type = WC_MSG_GET, .rid = 3 };
    m.u.req.key = s_bytes ("user:1");
    m.u.req.min_seq = 42;
    m.u.req.wait_ms = 200;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("GET, min_seq", sb.data, sb.size,
                       "97 01 03 03 c4 06 75 73 65 72 3a 31 2a 00 cc c8");
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_error_encode (3, WALCAST_ESTALE, NULL, "applied=41", &sb), 0);
    ok &= s_golden_ok ("ERROR ESTALE", sb.data, sb.size,
                       "96 01 1f 03 0d d9 26 \"node is behind what the read "
                       "asked for\" aa \"applied=41\"");
    m = (wc_msg_t) { .type = WC_MSG_PONG, .rid = 4 };
    m.u.pong.epoch = 1;
    m.u.pong.seq = 42;
    m.u.pong.clock_ms = clock;
    m.u.pong.role = WC_ROLE_REPLICA;
    m.u.pong.id = s_bytes ("eu1");
    m.u.pong.region = s_bytes ("eu-west");
    m.u.pong.lag_ms = 35;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("PONG", sb.data, sb.size,
                       "9a 01 12 04 01 2a cf 00 00 01 9a ce 6f 6c 7b 02 a3 65 75 31 "
                       "a7 65 75 2d 77 65 73 74 23");

    wc_node_info_t n = { .role = WC_ROLE_REPLICA, .epoch = 1, .applied_seq = 41,
                         .lag = 1, .lag_ms = 35, .up = true };
    n.id = s_bytes ("eu1");
    n.region = s_bytes ("eu-west");
    n.addr = s_bytes ("127.0.0.1:7200");
    n.primary = s_bytes ("127.0.0.1:7100");
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_node_info_encode (&n, &sb), 0);
    ok &= s_golden_ok ("node_info", sb.data, sb.size, S_NODE_HEX " 00 00 00");
    m = (wc_msg_t) { .type = WC_MSG_REGISTER, .rid = 1 };
    m.u.node = n;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("REGISTER", sb.data, sb.size, "94 01 40 01 " S_NODE_HEX " 00 00 00");
    m = (wc_msg_t) { .type = WC_MSG_TOPOLOGY_GET, .rid = 5 };
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    ok &= s_golden_ok ("TOPOLOGY_GET", sb.data, sb.size, "93 01 42 05");
    n.silent_ms = 120;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_topology_encode_header (5, 3, 1, &sb), 0);
    assert_int_equal (wc_node_info_encode (&n, &sb), 0);
    ok &= s_golden_ok ("TOPOLOGY", sb.data, sb.size,
                       "95 01 43 05 03 91 " S_NODE_HEX " 78 00 00");
#undef S_ENTRY_HEX
#undef S_NODE_HEX

    msgpack_sbuffer_destroy (&sb);
    if (!ok)
        fail_msg ("an example of PROTOCOL.md is not what the encoder sends");
}

//  Encode m into sb (reset first) and compare with hex.
static bool
s_example_ok (const char *what, const wc_msg_t *m, msgpack_sbuffer *sb,
              const char *hex)
{
    msgpack_sbuffer_clear (sb);
    assert_int_equal (wc_msg_encode (m, sb), 0);
    return s_golden_ok (what, sb->data, sb->size, hex);
}

//  The examples of issue 7's messages in PROTOCOL.md ("Examples"), as
//  the document writes them.
static void
test_golden_protocol_examples_issue7 (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    bool ok = true;
    wc_msg_t m;

    m = (wc_msg_t) { .type = WC_MSG_PUT, .rid = 8 };
    m.u.req.key = s_bytes ("user:1");
    m.u.req.value = s_bytes ("Bob");
    m.u.req.acks = 1;
    m.u.req.ack_timeout_ms = 2000;
    ok &= s_example_ok ("PUT, acks", &m, &sb,
                        "97 01 01 08 c4 06 75 73 65 72 3a 31 c4 03 42 6f 62 01 "
                        "cd 07 d0");
    m = (wc_msg_t) { .type = WC_MSG_ACK, .rid = 0 };
    m.u.ack.id = s_bytes ("eu1");
    m.u.ack.epoch = 2;
    m.u.ack.seq = 43;
    ok &= s_example_ok ("ACK", &m, &sb, "96 01 07 00 a3 \"eu1\" 02 2b");
    m = (wc_msg_t) { .type = WC_MSG_WRITE_OK, .rid = 8 };
    m.u.write_ok.epoch = 2;
    m.u.write_ok.seq = 43;
    m.u.write_ok.acked = 1;
    ok &= s_example_ok ("WRITE_OK, acked", &m, &sb, "96 01 10 08 02 2b 01");
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_error_encode (8, WALCAST_ENOTREPLICATED, NULL,
                                       "acked=0 of 1", &sb), 0);
    ok &= s_golden_ok ("ERROR ENOTREPLICATED", sb.data, sb.size,
                       "96 01 1f 08 10 d9 4a \"durable on the primary, but fewer "
                       "replicas than asked confirmed it in time\" ac \"acked=0 of 1\"");

    m = (wc_msg_t) { .type = WC_MSG_EPOCH_END, .rid = 9 };
    m.u.epoch_end.epoch = 1;
    ok &= s_example_ok ("EPOCH_END", &m, &sb, "94 01 32 09 01");
    m = (wc_msg_t) { .type = WC_MSG_EPOCH_END_REPLY, .rid = 9 };
    m.u.epoch_end.epoch = 1;
    m.u.epoch_end.end_seq = 105;
    m.u.epoch_end.latest = 2;
    ok &= s_example_ok ("EPOCH_END_REPLY", &m, &sb, "96 01 33 09 01 69 02");
    //  walcast 0.7: the cluster ids
    const uint64_t cluster = UINT64_C (0x9e3779b97f4a7c15);
    m.u.epoch_end.cluster = cluster;
    ok &= s_example_ok ("EPOCH_END_REPLY, cluster", &m, &sb,
                        "97 01 33 09 01 69 02 cf 9e 37 79 b9 7f 4a 7c 15");
    m = (wc_msg_t) { .type = WC_MSG_FETCH, .rid = 10 };
    m.u.fetch.from_seq = 106;
    m.u.fetch.max_bytes = 2u * 1024 * 1024;
    m.u.fetch.cluster = cluster;
    ok &= s_example_ok ("FETCH, cluster", &m, &sb,
                        "96 01 30 0a 6a ce 00 20 00 00 cf 9e 37 79 b9 7f 4a 7c 15");
    m = (wc_msg_t) { .type = WC_MSG_HEARTBEAT };
    m.u.heartbeat.epoch = 1;
    m.u.heartbeat.last_seq = 42;
    m.u.heartbeat.clock_ms = 1764400000223ULL;
    m.u.heartbeat.cluster = cluster;
    ok &= s_example_ok ("HEARTBEAT, cluster", &m, &sb,
                        "96 01 21 01 2a cf 00 00 01 9a ce 6f 6c df "
                        "cf 9e 37 79 b9 7f 4a 7c 15");
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_error_encode (10, WALCAST_ECONFLICT,
                                       "this node is of cluster 0123456789abcdef, "
                                       "not 9e3779b97f4a7c15", NULL, &sb), 0);
    ok &= s_golden_ok ("ERROR ECONFLICT, cluster", sb.data, sb.size,
                       "96 01 1f 0a 0f d9 3e \"this node is of cluster 0123456789abcdef, "
                       "not 9e3779b97f4a7c15\" a0");

    m = (wc_msg_t) { .type = WC_MSG_SNAPSHOT, .rid = 10 };
    ok &= s_example_ok ("SNAPSHOT", &m, &sb, "93 01 08 0a");
    m = (wc_msg_t) { .type = WC_MSG_SNAPSHOT_DONE, .rid = 10 };
    m.u.snapshot_done.seq = 1000000;
    m.u.snapshot_done.bytes = 12345;
    ok &= s_example_ok ("SNAPSHOT_DONE", &m, &sb, "95 01 15 0a ce 00 0f 42 40 cd 30 39");
    m = (wc_msg_t) { .type = WC_MSG_SNAPSHOT_GET, .rid = 11 };
    m.u.snapshot_get.max_bytes = WC_MAX_SNAPSHOT_CHUNK;
    ok &= s_example_ok ("SNAPSHOT_GET", &m, &sb, "96 01 34 0b 00 00 ce 00 10 00 00");
    //  SNAPSHOT_CHUNK: the document writes the data as <12345 octets>
    static uint8_t data [12345];
    memset (data, 0x5a, sizeof data);
    m = (wc_msg_t) { .type = WC_MSG_SNAPSHOT_CHUNK, .rid = 11 };
    m.u.snapshot_chunk.seq = 1000000;
    m.u.snapshot_chunk.size = sizeof data;
    m.u.snapshot_chunk.data = (wc_bytes_t) { data, sizeof data };
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_true (sb.size > sizeof data);
    ok &= s_golden_ok ("SNAPSHOT_CHUNK", sb.data, sb.size - sizeof data,
                       "97 01 35 0b ce 00 0f 42 40 cd 30 39 00 c5 30 39");
    assert_memory_equal (sb.data + sb.size - sizeof data, data, sizeof data);

    wc_node_info_t n = { .role = WC_ROLE_PRIMARY, .epoch = 1, .applied_seq = 300,
                         .up = true, .flags = WC_NODE_CANDIDATE };
    n.id = s_bytes ("us1");
    n.region = s_bytes ("us-east");
    n.addr = s_bytes ("127.0.0.1:7100");
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_node_info_encode (&n, &sb), 0);
    ok &= s_golden_ok ("node_info, candidate", sb.data, sb.size,
                       "9d a3 \"us1\" a7 \"us-east\" 01 01 cd 01 2c ae "
                       "\"127.0.0.1:7100\" a0 00 00 c3 00 01 00");
    m = (wc_msg_t) { .type = WC_MSG_PROMOTE, .rid = 1 };
    m.u.promote.epoch = 3;
    ok &= s_example_ok ("PROMOTE", &m, &sb, "94 01 44 01 03");
    m = (wc_msg_t) { .type = WC_MSG_FOLLOW, .rid = 2 };
    m.u.follow.epoch = 3;
    m.u.follow.primary = s_bytes ("127.0.0.1:7200");
    ok &= s_example_ok ("FOLLOW", &m, &sb, "95 01 45 02 03 ae \"127.0.0.1:7200\"");
    m = (wc_msg_t) { .type = WC_MSG_SWITCHOVER, .rid = 6 };
    m.u.switchover.node_id = s_bytes ("us1");
    ok &= s_example_ok ("SWITCHOVER", &m, &sb, "94 01 47 06 a3 \"us1\"");
    m = (wc_msg_t) { .type = WC_MSG_HANDOVER, .rid = 3 };
    m.u.handover.epoch = 3;
    m.u.handover.target_id = s_bytes ("us1");
    m.u.handover.target_addr = s_bytes ("127.0.0.1:7100");
    ok &= s_example_ok ("HANDOVER", &m, &sb,
                        "96 01 46 03 03 a3 \"us1\" ae \"127.0.0.1:7100\"");
    m = (wc_msg_t) { .type = WC_MSG_SWITCHOVER_DONE, .rid = 6 };
    m.u.switchover_done.epoch = 4;
    m.u.switchover_done.primary = s_bytes ("127.0.0.1:7100");
    ok &= s_example_ok ("SWITCHOVER_DONE", &m, &sb,
                        "95 01 48 06 04 ae \"127.0.0.1:7100\"");
    m = (wc_msg_t) { .type = WC_MSG_FORGET, .rid = 8 };
    m.u.forget.node_id = s_bytes ("ap2");
    ok &= s_example_ok ("FORGET", &m, &sb, "94 01 49 08 a3 \"ap2\"");
    m.rid = 9;                          /* broker -> the primary (0.8) */
    ok &= s_example_ok ("FORGET", &m, &sb, "94 01 49 09 a3 \"ap2\"");
    //  and its node_id's limits, as SWITCHOVER's
    msgpack_unpacked un;
    msgpack_unpacked_init (&un);
    wc_msg_t got;
    static const char empty_id [] = "\x94\x01\x49\x08\xa0";
    ok &= wc_msg_decode (empty_id, sizeof empty_id - 1, &un, &got) == WALCAST_EPROTO;
    msgpack_unpacked_destroy (&un);

    msgpack_sbuffer_destroy (&sb);
    if (!ok)
        fail_msg ("an example of PROTOCOL.md is not what the encoder sends");
}


//  Values at exactly their limits are accepted both ways.
static void
test_limits_exactly (void **state)
{
    (void) state;
    char *big = malloc (WC_MAX_VALUE);
    assert_non_null (big);
    memset (big, 'v', WC_MAX_VALUE);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);

    wc_msg_t m = s_sample (0), out;
    m.u.req.key.ptr = (const uint8_t *) big;
    m.u.req.key.len = WC_MAX_KEY;
    m.u.req.value.ptr = (const uint8_t *) big;
    m.u.req.value.len = WC_MAX_VALUE;
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_true (sb.size <= WC_MAX_REQUEST);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &out), 0);
    assert_true (s_msg_equal (&m, &out));

    m = s_sample (10);
    m.u.status.id.ptr = (const uint8_t *) big;
    m.u.status.id.len = WC_MAX_ID;
    m.u.status.region = m.u.status.id;
    m.u.status.primary.ptr = (const uint8_t *) big;
    m.u.status.primary.len = WC_MAX_ADDR;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &out), 0);
    assert_true (s_msg_equal (&m, &out));

    m = s_sample (12);
    m.u.error.text.ptr = (const uint8_t *) big;
    m.u.error.text.len = WC_MAX_TEXT;
    m.u.error.detail = m.u.error.text;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &out), 0);
    assert_true (s_msg_equal (&m, &out));

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
    free (big);
}


//  The largest valid message of each kind fits in the limits of the socket
//  it travels on (PROTOCOL.md, "Limits"), so a peer that keeps to the
//  field limits never trips a socket limit: requests in WC_MAX_REQUEST,
//  a FETCH in WC_MAX_CATCHUP_REQUEST, a REGISTER in WC_MAX_BROKER_REQUEST,
//  an ENTRY body (a stream frame) in WC_MAX_REQUEST, and an ENTRIES reply
//  that passes max_bytes by one largest entry in WC_MAX_MESSAGE.
static void
test_limits_fit_sockets (void **state)
{
    (void) state;
    char *big = malloc (WC_MAX_VALUE);
    assert_non_null (big);
    memset (big, 'v', WC_MAX_VALUE);
    wc_bytes_t key = { (const uint8_t *) big, WC_MAX_KEY };
    wc_bytes_t value = { (const uint8_t *) big, WC_MAX_VALUE };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    wc_msg_t m;

    int requests [] = { WC_MSG_PUT, WC_MSG_DEL, WC_MSG_GET };
    for (int i = 0; i < 3; i++) {
        m = (wc_msg_t) { .type = requests [i], .rid = UINT64_MAX };
        m.u.req.key = key;
        if (m.type == WC_MSG_PUT)
            m.u.req.value = value;
        if (m.type == WC_MSG_GET) {
            m.u.req.min_seq = UINT64_MAX;
            m.u.req.max_staleness_ms = m.u.req.wait_ms = UINT32_MAX;
        }
        msgpack_sbuffer_clear (&sb);
        assert_int_equal (wc_msg_encode (&m, &sb), 0);
        assert_true (sb.size <= WC_MAX_REQUEST);
    }
    wc_entry_t e = { .seq = UINT64_MAX, .epoch = UINT64_MAX, .ts_ms = UINT64_MAX,
                     .op = WC_OP_PUT, .key = key, .value = value };
    m = (wc_msg_t) { .type = WC_MSG_ENTRY };
    m.u.entry = e;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_true (sb.size <= WC_MAX_REQUEST);
    assert_true (1 + WC_MAX_KEY <= WC_MAX_SUBSCRIPTION);   //  any key prefix

    m = (wc_msg_t) { .type = WC_MSG_FETCH, .rid = UINT64_MAX };
    m.u.fetch.from_seq = UINT64_MAX;
    m.u.fetch.max_bytes = UINT32_MAX;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_true (sb.size <= WC_MAX_CATCHUP_REQUEST);

    static char id [WC_MAX_ID], addr [WC_MAX_ADDR];
    memset (id, 'i', sizeof id);
    memset (addr, 'a', sizeof addr);
    m = (wc_msg_t) { .type = WC_MSG_REGISTER, .rid = UINT64_MAX };
    m.u.node = (wc_node_info_t) {
        .id = { (const uint8_t *) id, WC_MAX_ID }, .region = { (const uint8_t *) id, WC_MAX_ID },
        .role = WC_ROLE_REPLICA, .epoch = UINT64_MAX, .applied_seq = UINT64_MAX,
        .addr = { (const uint8_t *) addr, WC_MAX_ADDR },
        .primary = { (const uint8_t *) addr, WC_MAX_ADDR },
        .lag = UINT64_MAX, .lag_ms = UINT64_MAX, .up = true, .silent_ms = UINT64_MAX
    };
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_true (sb.size <= WC_MAX_BROKER_REQUEST);

    //  Issue 7: writes with acks, and ACK and SNAPSHOT, on the service
    //  socket; EPOCH_END and SNAPSHOT_GET on the catch-up socket;
    //  SWITCHOVER on the broker's
    int writes [] = { WC_MSG_PUT, WC_MSG_DEL };
    for (int i = 0; i < 2; i++) {
        m = (wc_msg_t) { .type = writes [i], .rid = UINT64_MAX };
        m.u.req.key = key;
        if (m.type == WC_MSG_PUT)
            m.u.req.value = value;
        m.u.req.acks = WC_ACKS_ALL;
        m.u.req.ack_timeout_ms = UINT32_MAX;
        msgpack_sbuffer_clear (&sb);
        assert_int_equal (wc_msg_encode (&m, &sb), 0);
        assert_true (sb.size <= WC_MAX_REQUEST);
    }
    wc_bytes_t max_id = { (const uint8_t *) id, WC_MAX_ID };
    wc_bytes_t max_addr = { (const uint8_t *) addr, WC_MAX_ADDR };
    wc_msg_t small [9];
    memset (small, 0, sizeof small);
    small [0].type = WC_MSG_ACK;
    small [0].u.ack.id = max_id;
    small [0].u.ack.epoch = small [0].u.ack.seq = UINT64_MAX;
    small [1].type = WC_MSG_SNAPSHOT;
    small [2].type = WC_MSG_EPOCH_END;
    small [2].u.epoch_end.epoch = UINT64_MAX;
    small [3].type = WC_MSG_SNAPSHOT_GET;
    small [3].u.snapshot_get.seq = small [3].u.snapshot_get.offset = UINT64_MAX;
    small [3].u.snapshot_get.max_bytes = UINT32_MAX;
    small [4].type = WC_MSG_SWITCHOVER;
    small [4].u.switchover.node_id = max_id;
    //  what a broker sends: each fits even the smallest socket limit
    small [5].type = WC_MSG_PROMOTE;
    small [5].u.promote.epoch = UINT64_MAX;
    small [6].type = WC_MSG_FOLLOW;
    small [6].u.follow.epoch = UINT64_MAX;
    small [6].u.follow.primary = max_addr;
    small [7].type = WC_MSG_HANDOVER;
    small [7].u.handover.epoch = UINT64_MAX;
    small [7].u.handover.target_id = max_id;
    small [7].u.handover.target_addr = max_addr;
    small [8].type = WC_MSG_SWITCHOVER_DONE;
    small [8].u.switchover_done.epoch = UINT64_MAX;
    small [8].u.switchover_done.primary = max_addr;
    for (int i = 0; i < 9; i++) {
        small [i].rid = UINT64_MAX;
        msgpack_sbuffer_clear (&sb);
        assert_int_equal (wc_msg_encode (&small [i], &sb), 0);
        assert_true (sb.size <= WC_MAX_CATCHUP_REQUEST);
        assert_true (sb.size <= WC_MAX_BROKER_REQUEST);
    }
    //  Replies on the service socket fit WC_MAX_REPLY
    m = (wc_msg_t) { .type = WC_MSG_WRITE_OK, .rid = UINT64_MAX };
    m.u.write_ok.epoch = m.u.write_ok.seq = UINT64_MAX;
    m.u.write_ok.acked = UINT32_MAX;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_true (sb.size <= WC_MAX_REPLY);
    m = (wc_msg_t) { .type = WC_MSG_SNAPSHOT_DONE, .rid = UINT64_MAX };
    m.u.snapshot_done.seq = m.u.snapshot_done.bytes = UINT64_MAX;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_true (sb.size <= WC_MAX_REPLY);
    //  The largest SNAPSHOT_CHUNK is a catch-up reply within WC_MAX_MESSAGE
    m = (wc_msg_t) { .type = WC_MSG_SNAPSHOT_CHUNK, .rid = UINT64_MAX };
    m.u.snapshot_chunk.seq = m.u.snapshot_chunk.size = UINT64_MAX;
    m.u.snapshot_chunk.offset = UINT64_MAX;
    m.u.snapshot_chunk.data = (wc_bytes_t) { (const uint8_t *) big, WC_MAX_SNAPSHOT_CHUNK };
    assert_true (WC_MAX_SNAPSHOT_CHUNK <= WC_MAX_VALUE);     // big holds it
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_true (sb.size <= WC_MAX_MESSAGE);

    //  ENTRIES: entries adding up to max_bytes - 1 (three largest, one
    //  sized to fit), then one more largest entry, as "Catch-up" allows
    msgpack_sbuffer entries;
    msgpack_sbuffer_init (&entries);
    assert_int_equal (wc_entry_encode (&e, &entries), 0);
    size_t largest = entries.size;
    for (int i = 0; i < 2; i++)
        assert_int_equal (wc_entry_encode (&e, &entries), 0);
    wc_entry_t filler = e;
    filler.value.len = 70000;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&filler, &sb), 0);
    filler.value.len += (uint32_t) (WC_MAX_FETCH_BYTES - 1 - entries.size - sb.size);
    assert_int_equal (wc_entry_encode (&filler, &entries), 0);
    assert_int_equal (entries.size, WC_MAX_FETCH_BYTES - 1);
    assert_int_equal (wc_entry_encode (&e, &entries), 0);
    assert_int_equal (entries.size, WC_MAX_FETCH_BYTES - 1 + largest);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entries_encode_header (UINT64_MAX, UINT64_MAX, 5, &sb), 0);
    assert_int_equal (msgpack_sbuffer_write (&sb, entries.data, entries.size), 0);
    assert_true (sb.size <= WC_MAX_MESSAGE);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.u.entries.count, 5);
    msgpack_unpacked_destroy (&up);

    msgpack_sbuffer_destroy (&entries);
    msgpack_sbuffer_destroy (&sb);
    free (big);
}


//  ---------------------------------------------------------------------
//  Malformed input

static void
test_truncated_at_every_length (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    for (int i = 0; i < S_NSAMPLES; i++) {
        s_encode_sample (i, &sb);
        for (size_t len = 0; len < sb.size; len++)
            if (s_decode_copy (sb.data, len) != WALCAST_EPROTO)
                fail_msg ("sample %d cut to %zu of %zu bytes was accepted",
                          i, len, sb.size);
        assert_int_equal (s_decode_copy (sb.data, sb.size), 0);
    }
    wc_entry_t e = s_sample_entry (WC_OP_PUT);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    for (size_t len = 0; len < sb.size; len++)
        assert_int_equal (s_entry_decode_copy (sb.data, len), WALCAST_EPROTO);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_trailing_bytes (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    for (int i = 0; i < S_NSAMPLES; i++) {
        s_encode_sample (i, &sb);
        size_t len = sb.size;
        //  one more byte, then a whole second message
        assert_int_equal (msgpack_sbuffer_write (&sb, "\xc0", 1), 0);
        assert_int_equal (s_decode_copy (sb.data, sb.size), WALCAST_EPROTO);
        sb.size = len;
        assert_int_equal (msgpack_sbuffer_write (&sb, sb.data, len), 0);
        assert_int_equal (s_decode_copy (sb.data, sb.size), WALCAST_EPROTO);
    }
    wc_entry_t e = s_sample_entry (WC_OP_PUT);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    assert_int_equal (msgpack_sbuffer_write (&sb, "\x01", 1), 0);
    assert_int_equal (s_entry_decode_copy (sb.data, sb.size), WALCAST_EPROTO);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_wrong_type_in_every_field (void **state)
{
    (void) state;
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    msgpack_object wrong [16];
    for (int i = 0; i < S_NSAMPLES; i++) {
        s_encode_sample (i, &sb);
        const char *kinds = s_kinds [i];
        for (int pos = 0; kinds [pos]; pos++) {
            int n = s_wrong_for (kinds [pos], wrong);
            for (int w = 0; w < n; w++) {
                s_rebuild (sb.data, sb.size, pos, &wrong [w], NULL, 0, &bad);
                int rc = s_decode_copy (bad.data, bad.size);
                if (rc != WALCAST_EPROTO)
                    fail_msg ("sample %d (%s) field %d, wrong object %d: "
                              "got %s, want EPROTO", i,
                              wc_msg_type_name (s_sample (i).type), pos, w,
                              walcast_errname (rc));
            }
        }
    }
    //  Entry fields, through wc_entry_decode: seq, epoch, ts, op, key, value
    static const char entry_kinds [] = "UUUUKB";
    wc_entry_t e = s_sample_entry (WC_OP_PUT);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    for (int pos = 0; entry_kinds [pos]; pos++) {
        int n = s_wrong_for (entry_kinds [pos], wrong);
        for (int w = 0; w < n; w++) {
            s_rebuild (sb.data, sb.size, pos, &wrong [w], NULL, 0, &bad);
            assert_int_equal (s_entry_decode_copy (bad.data, bad.size),
                              WALCAST_EPROTO);
        }
    }
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
}

//  Out-of-range values with the right type.
static void
test_bad_values (void **state)
{
    (void) state;
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    msgpack_object o;

    //  PUT with an empty key, as bin and as str
    s_encode_sample (0, &sb);
    o = s_obj_bin ("", 0);
    s_rebuild (sb.data, sb.size, 3, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    o = s_obj_str ("");
    s_rebuild (sb.data, sb.size, 3, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    //  ...keys and values may come as str
    o = s_obj_str ("k");
    s_rebuild (sb.data, sb.size, 3, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), 0);
    s_rebuild (sb.data, sb.size, 4, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), 0);

    //  GET with an empty key
    s_encode_sample (2, &sb);
    o = s_obj_bin ("", 0);
    s_rebuild (sb.data, sb.size, 3, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);

    //  VALUE: found with nil, not found with a value; not found with nil is fine
    s_encode_sample (7, &sb);
    o = s_obj_nil ();
    s_rebuild (sb.data, sb.size, 4, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    o = s_obj_bool (false);
    s_rebuild (sb.data, sb.size, 3, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    wc_msg_t nf;
    memset (&nf, 0, sizeof nf);
    nf.type = WC_MSG_VALUE;
    nf.rid = 9;
    nf.u.value.seq = 4;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&nf, &sb), 0);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t out;
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &out), 0);
    assert_false (out.u.value.found);
    assert_int_equal (out.u.value.value.len, 0);
    assert_int_equal (out.u.value.seq, 4);

    //  STATUS_REPLY: role 0 and 3, empty id
    s_encode_sample (10, &sb);
    o = s_obj_uint (0);
    s_rebuild (sb.data, sb.size, 5, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    o = s_obj_uint (3);
    s_rebuild (sb.data, sb.size, 5, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    o = s_obj_str ("");
    s_rebuild (sb.data, sb.size, 3, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);

    //  ERROR: a code that does not fit 32 bits
    s_encode_sample (12, &sb);
    o = s_obj_uint ((uint64_t) UINT32_MAX + 1);
    s_rebuild (sb.data, sb.size, 3, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);

    //  FETCH: max_bytes over 32 bits saturates
    s_encode_sample (16, &sb);
    o = s_obj_uint (UINT64_MAX);
    s_rebuild (sb.data, sb.size, 4, &o, NULL, 0, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &out), 0);
    assert_int_equal (out.u.fetch.max_bytes, UINT32_MAX);

    //  Entries: seq 0, epoch 0, op 0 and 3, empty key, DEL with a value
    wc_entry_t e = s_sample_entry (WC_OP_PUT);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    struct { int pos; msgpack_object obj; } cases [] = {
        { 0, s_obj_uint (0) }, { 1, s_obj_uint (0) }, { 3, s_obj_uint (0) },
        { 3, s_obj_uint (3) }, { 4, s_obj_bin ("", 0) },
        { 3, s_obj_uint (WC_OP_DEL) },      // DEL keeping the PUT's value
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_rebuild (sb.data, sb.size, cases [i].pos, &cases [i].obj, NULL, 0, &bad);
        assert_int_equal (s_entry_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    }
    //  ...but a DEL with an empty bin (instead of nil) is fine, and a PUT
    //  needs a value (nil is not one)
    wc_entry_t del = s_sample_entry (WC_OP_DEL);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&del, &sb), 0);
    o = s_obj_bin ("", 0);
    s_rebuild (sb.data, sb.size, 5, &o, NULL, 0, &bad);
    assert_int_equal (s_entry_decode_copy (bad.data, bad.size), 0);
    o = s_obj_uint (WC_OP_PUT);
    s_rebuild (sb.data, sb.size, 3, &o, NULL, 0, &bad);
    assert_int_equal (s_entry_decode_copy (bad.data, bad.size), WALCAST_EPROTO);

    //  The same checks apply to the entry inside an ENTRY message
    s_encode_sample (13, &sb);
    msgpack_object fields [6] = {
        s_obj_uint (0), s_obj_uint (1), s_obj_uint (0), s_obj_uint (1),
        s_obj_bin ("k", 1), s_obj_bin ("v", 1)
    };
    o = s_obj_array (fields, 6);
    s_rebuild (sb.data, sb.size, 2, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    fields [0] = s_obj_uint (1);
    s_rebuild (sb.data, sb.size, 2, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), 0);

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
}

//  Every byte string field of the samples with a maximum, and one octet
//  more than that maximum.
static const struct { int sample; int pos; uint32_t len; } s_oversize [] = {
    { 0, 3, WC_MAX_KEY + 1 },       // PUT key
    { 0, 4, WC_MAX_VALUE + 1 },     // PUT value
    { 1, 3, WC_MAX_KEY + 1 },       // DEL key
    { 2, 3, WC_MAX_KEY + 1 },       // GET key
    { 7, 4, WC_MAX_VALUE + 1 },     // VALUE value
    { 10, 3, WC_MAX_ID + 1 },       // STATUS_REPLY id
    { 10, 4, WC_MAX_ID + 1 },       // region
    { 10, 8, WC_MAX_ADDR + 1 },     // primary
    { 12, 4, WC_MAX_TEXT + 1 },     // ERROR text
    { 12, 5, WC_MAX_TEXT + 1 },     // detail
    { S_GET_LONG, 3, WC_MAX_KEY + 1 },  // GET key, long form
    { S_PONG_LONG, 7, WC_MAX_ID + 1 },  // PONG id
    { S_PONG_LONG, 8, WC_MAX_ID + 1 },  // PONG region
    { S_PUT_LONG, 3, WC_MAX_KEY + 1 },  // PUT key, with acks
    { S_PUT_LONG, 4, WC_MAX_VALUE + 1 },    // PUT value, with acks
    { S_DEL_LONG, 3, WC_MAX_KEY + 1 },  // DEL key, with acks
    { S_ACK, 3, WC_MAX_ID + 1 },        // ACK id
    { S_SNAPSHOT_CHUNK, 6, WC_MAX_SNAPSHOT_CHUNK + 1 },     // chunk data
    { S_FOLLOW, 4, WC_MAX_ADDR + 1 },   // FOLLOW primary
    { S_HANDOVER, 4, WC_MAX_ID + 1 },   // HANDOVER target_id
    { S_HANDOVER, 5, WC_MAX_ADDR + 1 }, // target_addr
    { 37, 3, WC_MAX_ID + 1 },           // SWITCHOVER node_id
    { S_SWITCHOVER_DONE, 4, WC_MAX_ADDR + 1 },  // SWITCHOVER_DONE primary
};
#define S_NOVERSIZE (sizeof s_oversize / sizeof s_oversize [0])

static void
test_oversize_fields (void **state)
{
    (void) state;
    char *big = calloc (1, WC_MAX_VALUE + 1);
    assert_non_null (big);
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    msgpack_object o;

    for (size_t i = 0; i < S_NOVERSIZE; i++) {
        s_encode_sample (s_oversize [i].sample, &sb);
        o = s_obj_bin (big, s_oversize [i].len);
        s_rebuild (sb.data, sb.size, s_oversize [i].pos, &o, NULL, 0, &bad);
        assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_ETOOBIG);
        o = s_obj_bin (big, s_oversize [i].len - 1);
        s_rebuild (sb.data, sb.size, s_oversize [i].pos, &o, NULL, 0, &bad);
        assert_int_equal (s_decode_copy (bad.data, bad.size), 0);
    }

    //  Entry key and value
    wc_entry_t e = s_sample_entry (WC_OP_PUT);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    o = s_obj_bin (big, WC_MAX_KEY + 1);
    s_rebuild (sb.data, sb.size, 4, &o, NULL, 0, &bad);
    assert_int_equal (s_entry_decode_copy (bad.data, bad.size), WALCAST_ETOOBIG);
    o = s_obj_bin (big, WC_MAX_VALUE + 1);
    s_rebuild (sb.data, sb.size, 5, &o, NULL, 0, &bad);
    assert_int_equal (s_entry_decode_copy (bad.data, bad.size), WALCAST_ETOOBIG);

    //  ENTRIES with one item more than WC_MAX_BATCH
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entries_encode_header (1, 5, WC_MAX_BATCH, &sb), 0);
    for (uint32_t i = 0; i < WC_MAX_BATCH; i++)
        assert_int_equal (msgpack_sbuffer_write (&sb, "\xc0", 1), 0);
    assert_int_equal (s_decode_copy (sb.data, sb.size), 0);
    msgpack_sbuffer_clear (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal (msgpack_pack_array (&pk, 5), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, 1), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, WC_MSG_ENTRIES), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, 1), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, 5), 0);
    assert_int_equal (msgpack_pack_array (&pk, WC_MAX_BATCH + 1), 0);
    for (uint32_t i = 0; i < WC_MAX_BATCH + 1; i++)
        assert_int_equal (msgpack_pack_nil (&pk), 0);
    assert_int_equal (s_decode_copy (sb.data, sb.size), WALCAST_ETOOBIG);

    //  node_info strings one byte over their limits, inside REGISTER
    msgpack_unpacked nup;
    msgpack_unpacked_init (&nup);
    msgpack_sbuffer node, bad_node;
    msgpack_sbuffer_init (&node);
    msgpack_sbuffer_init (&bad_node);
    wc_node_info_t ni = s_sample_node (1);
    assert_int_equal (wc_node_info_encode (&ni, &node), 0);
    s_encode_sample (S_REGISTER, &sb);
    struct { int pos; uint32_t len; } ncases [] = {
        { 0, WC_MAX_ID + 1 }, { 1, WC_MAX_ID + 1 },
        { 5, WC_MAX_ADDR + 1 }, { 6, WC_MAX_ADDR + 1 }
    };
    for (size_t i = 0; i < sizeof ncases / sizeof ncases [0]; i++) {
        for (uint32_t d = 0; d < 2; d++) {
            o = s_obj_str ("");
            o.via.str.ptr = big;
            o.via.str.size = ncases [i].len - d;
            memset (big, 'a', ncases [i].len);
            s_rebuild (node.data, node.size, ncases [i].pos, &o, NULL, 0,
                       &bad_node);
            size_t off = 0;
            assert_int_equal (msgpack_unpack_next (&nup, bad_node.data,
                                                   bad_node.size, &off),
                              MSGPACK_UNPACK_SUCCESS);
            msgpack_object item = nup.data;
            s_rebuild (sb.data, sb.size, 3, &item, NULL, 0, &bad);
            assert_int_equal (s_decode_copy (bad.data, bad.size),
                              d == 0 ? WALCAST_ETOOBIG : 0);
        }
    }
    memset (big, 0, WC_MAX_VALUE + 1);
    msgpack_sbuffer_destroy (&node);
    msgpack_sbuffer_destroy (&bad_node);
    msgpack_unpacked_destroy (&nup);

    //  TOPOLOGY with one node more than WC_MAX_NODES
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_topology_encode_header (1, 5, WC_MAX_NODES, &sb), 0);
    for (uint32_t i = 0; i < WC_MAX_NODES; i++)
        assert_int_equal (msgpack_sbuffer_write (&sb, "\xc0", 1), 0);
    assert_int_equal (s_decode_copy (sb.data, sb.size), 0);
    msgpack_sbuffer_clear (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal (msgpack_pack_array (&pk, 5), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, 1), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, WC_MSG_TOPOLOGY), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, 1), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, 5), 0);
    assert_int_equal (msgpack_pack_array (&pk, WC_MAX_NODES + 1), 0);
    for (uint32_t i = 0; i < WC_MAX_NODES + 1; i++)
        assert_int_equal (msgpack_pack_nil (&pk), 0);
    assert_int_equal (s_decode_copy (sb.data, sb.size), WALCAST_ETOOBIG);

    //  A whole message over WC_MAX_MESSAGE is refused before parsing
    char *huge = calloc (1, WC_MAX_MESSAGE + 1);
    assert_non_null (huge);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;
    assert_int_equal (wc_msg_decode (huge, WC_MAX_MESSAGE + 1, &up, &m),
                      WALCAST_ETOOBIG);
    wc_entry_t ent;
    assert_int_equal (wc_entry_decode (huge, WC_MAX_MESSAGE + 1, &up, &ent),
                      WALCAST_ETOOBIG);
    msgpack_unpacked_destroy (&up);
    free (huge);

    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
    free (big);
}

//  Types come before limits (PROTOCOL.md, "Validation", steps 6 and 7):
//  a message with a field over its limit and another of the wrong type
//  is EPROTO, wherever the two are. The same inside an entry and a
//  node_info, and for the values a field may not hold (a DEL entry or a
//  VALUE not found with a value, over the limit or not).
static void
test_types_before_limits (void **state)
{
    (void) state;
    char *big = calloc (1, WC_MAX_VALUE + 1);
    assert_non_null (big);
    memset (big, 'b', WC_MAX_VALUE + 1);
    msgpack_sbuffer sb, one, two;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&one);
    msgpack_sbuffer_init (&two);
    msgpack_object wrong [16], o;

    for (size_t i = 0; i < S_NOVERSIZE; i++) {
        int sample = s_oversize [i].sample;
        s_encode_sample (sample, &sb);
        o = s_obj_bin (big, s_oversize [i].len);
        s_rebuild (sb.data, sb.size, s_oversize [i].pos, &o, NULL, 0, &one);
        assert_int_equal (s_decode_copy (one.data, one.size), WALCAST_ETOOBIG);
        const char *kinds = s_kinds [sample];
        for (int pos = 2; kinds [pos]; pos++) {
            if (pos == s_oversize [i].pos)
                continue;
            int n = s_wrong_for (kinds [pos], wrong);
            for (int w = 0; w < n; w++) {
                s_rebuild (one.data, one.size, pos, &wrong [w], NULL, 0, &two);
                int rc = s_decode_copy (two.data, two.size);
                if (rc != WALCAST_EPROTO)
                    fail_msg ("sample %d (%s): field %d over its limit, field %d "
                              "of the wrong type (object %d): got %s, want EPROTO",
                              sample, wc_msg_type_name (s_sample (sample).type),
                              s_oversize [i].pos, pos, w, walcast_errname (rc));
            }
        }
    }

    //  An entry with a key over its limit and a wrong value, op or seq
    static const char entry_kinds [] = "UUUUKB";
    wc_entry_t e = s_sample_entry (WC_OP_PUT);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    o = s_obj_bin (big, WC_MAX_KEY + 1);
    s_rebuild (sb.data, sb.size, 4, &o, NULL, 0, &one);
    assert_int_equal (s_entry_decode_copy (one.data, one.size), WALCAST_ETOOBIG);
    for (int pos = 0; entry_kinds [pos]; pos++) {
        if (pos == 4)
            continue;
        int n = s_wrong_for (entry_kinds [pos], wrong);
        for (int w = 0; w < n; w++) {
            s_rebuild (one.data, one.size, pos, &wrong [w], NULL, 0, &two);
            assert_int_equal (s_entry_decode_copy (two.data, two.size),
                              WALCAST_EPROTO);
        }
    }
    msgpack_object values [] = { s_obj_uint (0), s_obj_uint (3) };    // seq 0, op 3
    s_rebuild (one.data, one.size, 0, &values [0], NULL, 0, &two);
    assert_int_equal (s_entry_decode_copy (two.data, two.size), WALCAST_EPROTO);
    s_rebuild (one.data, one.size, 3, &values [1], NULL, 0, &two);
    assert_int_equal (s_entry_decode_copy (two.data, two.size), WALCAST_EPROTO);

    //  A DEL entry with a value over WC_MAX_VALUE: it may hold no value at all
    wc_entry_t del = s_sample_entry (WC_OP_DEL);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&del, &sb), 0);
    o = s_obj_bin (big, WC_MAX_VALUE + 1);
    s_rebuild (sb.data, sb.size, 5, &o, NULL, 0, &one);
    assert_int_equal (s_entry_decode_copy (one.data, one.size), WALCAST_EPROTO);
    //  ...and a VALUE not found with one
    wc_msg_t nf = { .type = WC_MSG_VALUE, .rid = 9 };
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&nf, &sb), 0);
    s_rebuild (sb.data, sb.size, 4, &o, NULL, 0, &one);
    assert_int_equal (s_decode_copy (one.data, one.size), WALCAST_EPROTO);

    //  REGISTER whose node_info has an id over its limit and a wrong field
    msgpack_sbuffer node;
    msgpack_sbuffer_init (&node);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_node_info_t ni = s_sample_node (1);
    assert_int_equal (wc_node_info_encode (&ni, &node), 0);
    o = s_obj_str ("");
    o.via.str.ptr = big;
    o.via.str.size = WC_MAX_ID + 1;
    s_rebuild (node.data, node.size, 0, &o, NULL, 0, &one);
    s_encode_sample (S_REGISTER, &sb);
    for (int pos = 1; s_node_kinds [pos]; pos++) {
        int n = s_wrong_for (s_node_kinds [pos], wrong);
        for (int w = -1; w < n; w++) {
            msgpack_sbuffer_clear (&two);
            if (w < 0)                  //  the long id alone: ETOOBIG
                assert_int_equal (msgpack_sbuffer_write (&two, one.data, one.size), 0);
            else
                s_rebuild (one.data, one.size, pos, &wrong [w], NULL, 0, &two);
            size_t off = 0;
            assert_int_equal (msgpack_unpack_next (&up, two.data, two.size, &off),
                              MSGPACK_UNPACK_SUCCESS);
            msgpack_object item = up.data;
            s_rebuild (sb.data, sb.size, 3, &item, NULL, 0, &node);
            assert_int_equal (s_decode_copy (node.data, node.size),
                              w < 0 ? WALCAST_ETOOBIG : WALCAST_EPROTO);
        }
    }

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&node);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&one);
    msgpack_sbuffer_destroy (&two);
    free (big);
}

static void
test_version_and_type (void **state)
{
    (void) state;
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    msgpack_object o;

    //  Another version is EVERSION for every message, whatever follows
    for (int i = 0; i < S_NSAMPLES; i++) {
        s_encode_sample (i, &sb);
        o = s_obj_uint (2);
        s_rebuild (sb.data, sb.size, 0, &o, NULL, 0, &bad);
        assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EVERSION);
        o = s_obj_uint (0);
        s_rebuild (sb.data, sb.size, 0, &o, NULL, 0, &bad);
        assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EVERSION);
    }
    //  ...even when the rest would not make sense in version 1
    assert_int_equal (s_decode_copy ("\x92\x02\xa3" "abc", 6), WALCAST_EVERSION);
    assert_int_equal (s_decode_copy ("\x91\x07", 2), WALCAST_EVERSION);
    //  version 1 with nothing else
    assert_int_equal (s_decode_copy ("\x91\x01", 2), WALCAST_EPROTO);

    //  Unknown types
    s_encode_sample (3, &sb);          // PING
    uint64_t unknown [] = { 0, 9, 15, 22, 30, 34, 47, 54, 63, 74, 79, 255,
                            256, 65537, UINT64_MAX };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown [0]; i++) {
        o = s_obj_uint (unknown [i]);
        s_rebuild (sb.data, sb.size, 1, &o, NULL, 0, &bad);
        assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    }

    //  Short arrays: every sample cut to fewer elements than it needs
    for (int i = 0; i < S_NSAMPLES; i++) {
        s_encode_sample (i, &sb);
        msgpack_unpacked up;
        msgpack_unpacked_init (&up);
        size_t off = 0;
        assert_int_equal (msgpack_unpack_next (&up, sb.data, sb.size, &off),
                          MSGPACK_UNPACK_SUCCESS);
        msgpack_object top = up.data;
        uint32_t n = top.via.array.size;
        assert_int_equal (n, strlen (s_kinds [i]));
        for (uint32_t k = 0; k < n; k++) {
            top.via.array.size = k;
            msgpack_sbuffer_clear (&bad);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &bad, msgpack_sbuffer_write);
            assert_int_equal (msgpack_pack_object (&pk, top), 0);
            //  The long forms cut back to a shorter valid form are fine:
            //  GET's, PUT's, DEL's and WRITE_OK's optional fields one by
            //  one, PONG's identity all at once.
            bool valid = (i == S_GET_LONG && k >= 4)
                      || (i == S_PONG_LONG && k == 6)
                      || (i == S_PUT_LONG && k >= 5)
                      || (i == S_DEL_LONG && k >= 4)
                      || (i == S_WRITE_OK_LONG && k >= 5);
            assert_int_equal (s_decode_copy (bad.data, bad.size),
                              valid ? 0 : WALCAST_EPROTO);
        }
        msgpack_unpacked_destroy (&up);
    }
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
}

static void
test_not_an_array (void **state)
{
    (void) state;
    struct { const char *bytes; size_t len; } cases [] = {
        { "\x01", 1 },                      // int
        { "\xc0", 1 },                      // nil
        { "\xa3" "PUT", 4 },                // str
        { "\x81\x01\x01", 3 },              // map {1: 1}
        { "\x90", 1 },                      // []
        { "\xc4\x00", 2 },                  // empty bin
        { "\xcb\x3f\xf0\0\0\0\0\0\0", 9 },  // 1.0
        { "\xc1", 1 },                      // reserved byte
        { "", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        assert_int_equal (s_decode_copy (cases [i].bytes, cases [i].len),
                          WALCAST_EPROTO);
        assert_int_equal (s_entry_decode_copy (cases [i].bytes, cases [i].len),
                          WALCAST_EPROTO);
    }
    //  NULL buffer
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;
    assert_int_equal (wc_msg_decode (NULL, 0, &up, &m), WALCAST_EPROTO);
    msgpack_unpacked_destroy (&up);
}

//  Headers that declare more elements than the input could hold are
//  refused without making msgpack-c allocate for them; nesting past
//  msgpack-c's depth limit is refused too.
static void
test_hostile_shapes (void **state)
{
    (void) state;
    struct { const char *bytes; size_t len; } cases [] = {
        { "\xdd\xff\xff\xff\xff", 5 },                          // array32 4G
        { "\x93\x01\x04\xdd\xff\xff\xff\xff", 8 },               // nested
        { "\x93\x01\x04\xdf\xff\xff\xff\xff", 8 },               // map32 4G
        { "\x93\x01\x04\xdc\xff\xff", 6 },                      // array16
        { "\x93\x01\x04\xc6\xff\xff\xff\xff", 8 },               // bin32 4G
        { "\x93\x01\x04\xdb\x7f\xff\xff\xff", 8 },               // str32 2G
        { "\x93\x01\x04\xc9\xff\xff\xff\xff\x01", 9 },           // ext32
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++)
        assert_int_equal (s_decode_copy (cases [i].bytes, cases [i].len),
                          WALCAST_EPROTO);

    //  PING with an extra element nested 40 deep
    uint8_t deep [64];
    size_t n = 0;
    deep [n++] = 0x94;
    deep [n++] = 0x01;
    deep [n++] = WC_MSG_PING;
    deep [n++] = 0x01;
    for (int i = 0; i < 40; i++)
        deep [n++] = 0x91;
    deep [n++] = 0xc0;
    assert_int_equal (s_decode_copy (deep, n), WALCAST_EPROTO);

    //  ...and nested 8 deep is just an extra element
    n = 4;
    for (int i = 0; i < 8; i++)
        deep [n++] = 0x91;
    deep [n++] = 0xc0;
    assert_int_equal (s_decode_copy (deep, n), 0);

    //  Ext types are well-formed msgpack: fine as extra elements
    assert_int_equal (s_decode_copy ("\x94\x01\x04\x01\xd4\x01\x02", 7), 0);
    assert_int_equal (s_decode_copy ("\x94\x01\x04\x01\xc7\x02\x05\xaa\xbb", 9), 0);
}

//  STATUS_REPLY's flags (walcast 0.6) come after lag_ms only when not 0:
//  a node not a candidate sends what 0.5 nodes sent, and a reply without
//  them reads as flags 0.
static void
test_status_flags (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    for (uint64_t flags = 0; flags <= WC_NODE_CANDIDATE; flags++) {
        wc_msg_t m = { .type = WC_MSG_STATUS_REPLY, .rid = 3 };
        m.u.status.id = (wc_bytes_t) { (const uint8_t *) "n1", 2 };
        m.u.status.role = WC_ROLE_PRIMARY;
        m.u.status.flags = flags;
        sb.size = 0;
        assert_int_equal (wc_msg_encode (&m, &sb), 0);
        assert_int_equal ((uint8_t) sb.data [0], flags ? 0x9c : 0x9b);  /* 12 or 11 */
        wc_msg_t d;
        assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &d), 0);
        assert_int_equal (d.u.status.flags, flags);
    }
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

//  The cluster ids of walcast 0.7 (HEARTBEAT, FETCH, ENTRIES, ACK,
//  EPOCH_END_REPLY, SNAPSHOT_GET): an id of 0 is not sent, so the message
//  is byte for byte what 0.6 sends; one that is set goes out as one more
//  element and comes back; a message of 0.6 (without it) reads as 0; a
//  non-uint in its place is malformed; what follows it is ignored.
static uint64_t *
s_cluster_of (wc_msg_t *m)
{
    switch (m->type) {
        case WC_MSG_HEARTBEAT:       return &m->u.heartbeat.cluster;
        case WC_MSG_FETCH:           return &m->u.fetch.cluster;
        case WC_MSG_ACK:             return &m->u.ack.cluster;
        case WC_MSG_EPOCH_END_REPLY: return &m->u.epoch_end.cluster;
        case WC_MSG_SNAPSHOT_GET:    return &m->u.snapshot_get.cluster;
        default:                     return NULL;
    }
}

static void
test_cluster_fields (void **state)
{
    (void) state;
    static const int samples [] = { S_HEARTBEAT, S_FETCH, S_ACK, S_EPOCH_END_REPLY,
                                    S_SNAPSHOT_GET };
    const uint64_t id = UINT64_C (0x9e3779b97f4a7c15);
    msgpack_sbuffer plain, with, bad;
    msgpack_sbuffer_init (&plain);
    msgpack_sbuffer_init (&with);
    msgpack_sbuffer_init (&bad);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    for (size_t k = 0; k < sizeof samples / sizeof samples [0]; k++) {
        wc_msg_t m = s_sample (samples [k]);
        uint64_t *cluster = s_cluster_of (&m);
        assert_non_null (cluster);
        assert_true (*cluster == 0);
        plain.size = with.size = 0;
        assert_int_equal (wc_msg_encode (&m, &plain), 0);
        *cluster = id;
        assert_int_equal (wc_msg_encode (&m, &with), 0);
        //  one element more: the 9-octet id
        assert_int_equal ((uint8_t) with.data [0], (uint8_t) plain.data [0] + 1);
        assert_int_equal (with.size, plain.size + 9);
        assert_memory_equal (with.data + 1, plain.data + 1, plain.size - 1);
        wc_msg_t d;
        assert_int_equal (wc_msg_decode (with.data, with.size, &up, &d), 0);
        assert_true (*s_cluster_of (&d) == id);
        assert_int_equal (wc_msg_decode (plain.data, plain.size, &up, &d), 0);
        assert_true (*s_cluster_of (&d) == 0);
        //  junk in its place: malformed; after it: ignored
        msgpack_object junk [2] = { s_obj_str ("x"), s_obj_int (-1) };
        for (int j = 0; j < 2; j++) {
            s_rebuild (plain.data, plain.size, -1, NULL, &junk [j], 1, &bad);
            assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
        }
        msgpack_object after [2] = { s_obj_uint (5), s_obj_str ("later") };
        s_rebuild (plain.data, plain.size, -1, NULL, after, 2, &bad);
        assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &d), 0);
        assert_true (*s_cluster_of (&d) == 5);
    }
    //  GET's min_epoch (0.7): after its three optional fields, sent only
    //  when not 0, so a GET without it is what 0.6 sends
    wc_msg_t g = s_sample (S_GET_LONG);
    plain.size = with.size = 0;
    assert_int_equal (wc_msg_encode (&g, &plain), 0);
    g.u.req.min_epoch = 7;
    assert_int_equal (wc_msg_encode (&g, &with), 0);
    assert_int_equal ((uint8_t) with.data [0], (uint8_t) plain.data [0] + 1);
    assert_int_equal (with.size, plain.size + 1);
    wc_msg_t d;
    assert_int_equal (wc_msg_decode (with.data, with.size, &up, &d), 0);
    assert_true (d.u.req.min_epoch == 7 && d.u.req.min_seq == g.u.req.min_seq);
    assert_int_equal (wc_msg_decode (plain.data, plain.size, &up, &d), 0);
    assert_true (d.u.req.min_epoch == 0);
    //  only min_epoch set: the three before it go out as 0
    wc_msg_t only = s_sample (S_GET_SHORT);
    only.u.req.min_epoch = 9;
    with.size = 0;
    assert_int_equal (wc_msg_encode (&only, &with), 0);
    assert_int_equal ((uint8_t) with.data [0], 0x98);
    assert_int_equal (wc_msg_decode (with.data, with.size, &up, &d), 0);
    assert_true (d.u.req.min_epoch == 9 && d.u.req.min_seq == 0);
    msgpack_object junk = s_obj_str ("x");
    s_rebuild (plain.data, plain.size, -1, NULL, &junk, 1, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    //  VALUE's epoch (0.7): sent when not 0, after applied_seq, so a
    //  VALUE without it is what 0.6 sends; a 6-element VALUE reads as 0
    wc_msg_t v = { .type = WC_MSG_VALUE, .rid = 3 };
    v.u.value.found = true;
    v.u.value.value = (wc_bytes_t) { (const uint8_t *) "v", 1 };
    v.u.value.seq = 41;
    plain.size = with.size = 0;
    assert_int_equal (wc_msg_encode (&v, &plain), 0);
    assert_int_equal ((uint8_t) plain.data [0], 0x96);
    v.u.value.epoch = 1796194944670ull;
    assert_int_equal (wc_msg_encode (&v, &with), 0);
    assert_int_equal ((uint8_t) with.data [0], 0x97);
    assert_int_equal (wc_msg_decode (with.data, with.size, &up, &d), 0);
    assert_true (s_msg_equal (&v, &d));
    assert_int_equal (wc_msg_decode (plain.data, plain.size, &up, &d), 0);
    assert_true (d.u.value.epoch == 0 && d.u.value.seq == 41);
    s_rebuild (plain.data, plain.size, -1, NULL, &junk, 1, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&plain);
    msgpack_sbuffer_destroy (&with);
    msgpack_sbuffer_destroy (&bad);
}

//  A newer peer may append fields: they are ignored, the rest is decoded.
static void
test_extra_elements_accepted (void **state)
{
    (void) state;
    msgpack_sbuffer sb, more;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&more);
    msgpack_unpacked up1, up2;
    msgpack_unpacked_init (&up1);
    msgpack_unpacked_init (&up2);
    msgpack_object inner [2] = { s_obj_uint (1), s_obj_str ("x") };
    msgpack_object extra [4] = {
        s_obj_nil (), s_obj_str ("future"), s_obj_array (inner, 2),
        s_obj_int (-5)
    };
    for (int i = 0; i < S_NSAMPLES; i++) {
        //  After the short forms of PUT, DEL, GET, WRITE_OK and PONG come
        //  their optional fields, not extras: see
        //  test_optional_fields_partial and test_acks_fields (FOLLOW's
        //  key: test_curve_keys; the cluster ids: test_cluster_fields;
        //  VALUE's epoch, samples 7 and 8: test_cluster_fields).
        if (i == S_PUT_SHORT || i == S_DEL_SHORT || i == S_GET_SHORT || i == 7 || i == 8
        ||  i == S_WRITE_OK_SHORT || i == S_PONG_SHORT || i == S_FOLLOW
        ||  i == S_ENTRIES || i == S_STATUS_REPLY || i == S_HEARTBEAT
        ||  i == S_FETCH || i == S_ACK || i == S_EPOCH_END_REPLY
        ||  i == S_SNAPSHOT_GET || i == S_GET_LONG)
            continue;
        s_encode_sample (i, &sb);
        s_rebuild (sb.data, sb.size, -1, NULL, extra, 4, &more);
        wc_msg_t a, b;
        assert_int_equal (wc_msg_decode (sb.data, sb.size, &up1, &a), 0);
        assert_int_equal (wc_msg_decode (more.data, more.size, &up2, &b), 0);
        if (a.type == WC_MSG_ENTRIES) {
            assert_int_equal (a.u.entries.count, b.u.entries.count);
            assert_int_equal (a.u.entries.last_seq, b.u.entries.last_seq);
        }
        else
        if (a.type == WC_MSG_TOPOLOGY) {
            assert_int_equal (a.u.topology.count, b.u.topology.count);
            assert_int_equal (a.u.topology.version, b.u.topology.version);
        }
        else
            assert_true (s_msg_equal (&a, &b));
    }
    //  A node_info with extra elements, inside REGISTER
    msgpack_sbuffer node;
    msgpack_sbuffer_init (&node);
    wc_node_info_t ni = s_sample_node (1), ngot;
    ni.curve_key = s_bytes ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");    /* all 14 */
    assert_int_equal (wc_node_info_encode (&ni, &node), 0);
    s_rebuild (node.data, node.size, -1, NULL, extra, 4, &more);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&up1, more.data, more.size, &off),
                      MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (wc_node_info_from_object (&up1.data, &ngot), 0);
    assert_true (s_node_equal (&ni, &ngot));
    s_encode_sample (S_REGISTER, &sb);
    msgpack_object longer = up1.data;
    s_rebuild (sb.data, sb.size, 3, &longer, NULL, 0, &node);
    wc_msg_t r;
    assert_int_equal (wc_msg_decode (node.data, node.size, &up2, &r), 0);
    assert_true (s_node_equal (&ni, &r.u.node));
    msgpack_sbuffer_destroy (&node);
    //  Entries too: a bare one, and one inside ENTRY
    wc_entry_t e = s_sample_entry (WC_OP_PUT), got;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    s_rebuild (sb.data, sb.size, -1, NULL, extra, 4, &more);
    assert_int_equal (wc_entry_decode (more.data, more.size, &up1, &got), 0);
    assert_true (s_entry_equal (&e, &got));

    msgpack_unpacked_destroy (&up1);
    msgpack_unpacked_destroy (&up2);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&more);
}

//  ENTRIES decodes its outer shape; a bad item is found by
//  wc_entry_from_object, item by item.
static void
test_entries_with_bad_item (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    assert_int_equal (wc_entries_encode_header (8, 3, 3, &sb), 0);
    wc_entry_t e = s_sample_entry (WC_OP_PUT);
    e.seq = 1;
    assert_int_equal (wc_entry_encode (&e, &sb), 0);
    //  item 2: an entry whose op is 9
    const char bad_entry [] = "\x96\x02\x01\x00\x09\xc4\x01k\xc0";
    assert_int_equal (msgpack_sbuffer_write (&sb, bad_entry,
                                             sizeof bad_entry - 1), 0);
    //  item 3: not even an array
    assert_int_equal (msgpack_sbuffer_write (&sb, "\x07", 1), 0);

    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.type, WC_MSG_ENTRIES);
    assert_int_equal (m.rid, 8);
    assert_int_equal (m.u.entries.last_seq, 3);
    assert_int_equal (m.u.entries.count, 3);
    wc_entry_t got;
    assert_int_equal (wc_entry_from_object (&m.u.entries.items [0], &got), 0);
    assert_true (s_entry_equal (&e, &got));
    assert_int_equal (wc_entry_from_object (&m.u.entries.items [1], &got),
                      WALCAST_EPROTO);
    assert_int_equal (wc_entry_from_object (&m.u.entries.items [2], &got),
                      WALCAST_EPROTO);

    //  An empty list is a valid reply (nothing after from_seq)
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_entries_encode_header (9, 3, 0, &sb), 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.u.entries.count, 0);

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

//  ---------------------------------------------------------------------
//  Optional fields, node_info and the broker's messages

//  Pack [1, type, rid, ...] the way the codec did before the optional
//  fields existed: GET [v, 3, rid, key], PONG [v, 18, rid, epoch, seq,
//  clock_ms].
static void
s_pack_old_form (const wc_msg_t *m, msgpack_sbuffer *out)
{
    msgpack_sbuffer_clear (out);
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    bool get = m->type == WC_MSG_GET;
    assert_int_equal (msgpack_pack_array (&pk, get ? 4 : 6), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, 1), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, (uint8_t) m->type), 0);
    assert_int_equal (msgpack_pack_uint64 (&pk, m->rid), 0);
    if (get) {
        assert_int_equal (msgpack_pack_bin (&pk, m->u.req.key.len), 0);
        assert_int_equal (msgpack_pack_bin_body (&pk, m->u.req.key.ptr,
                                                 m->u.req.key.len), 0);
    }
    else {
        assert_int_equal (msgpack_pack_uint64 (&pk, m->u.pong.epoch), 0);
        assert_int_equal (msgpack_pack_uint64 (&pk, m->u.pong.seq), 0);
        assert_int_equal (msgpack_pack_uint64 (&pk, m->u.pong.clock_ms), 0);
    }
}

//  Old peers keep working: a GET or PONG without the new fields is
//  encoded exactly as before and decodes with them zero.
static void
test_old_forms_unchanged (void **state)
{
    (void) state;
    msgpack_sbuffer sb, old;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&old);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;

    int shorts [] = { S_GET_SHORT, S_PONG_SHORT };
    for (int i = 0; i < 2; i++) {
        wc_msg_t in = s_sample (shorts [i]);
        s_encode_sample (shorts [i], &sb);
        s_pack_old_form (&in, &old);
        assert_int_equal (sb.size, old.size);
        assert_memory_equal (sb.data, old.data, sb.size);
        assert_int_equal (wc_msg_decode (old.data, old.size, &up, &m), 0);
        assert_true (s_msg_equal (&in, &m));
    }
    s_encode_sample (S_GET_SHORT, &sb);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.u.req.min_seq, 0);
    assert_int_equal (m.u.req.max_staleness_ms, 0);
    assert_int_equal (m.u.req.wait_ms, 0);
    s_encode_sample (S_PONG_SHORT, &sb);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.u.pong.role, 0);
    assert_int_equal (m.u.pong.id.len, 0);
    assert_int_equal (m.u.pong.region.len, 0);
    assert_int_equal (m.u.pong.lag_ms, 0);

    //  Any one of GET's fields set sends all three
    for (int k = 0; k < 3; k++) {
        wc_msg_t g = s_sample (S_GET_SHORT);
        if (k == 0) g.u.req.min_seq = 1;
        if (k == 1) g.u.req.max_staleness_ms = 1;
        if (k == 2) g.u.req.wait_ms = 1;
        msgpack_sbuffer_clear (&sb);
        assert_int_equal (wc_msg_encode (&g, &sb), 0);
        assert_int_equal ((uint8_t) sb.data [0], 0x97);     // fixarray 7
        assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
        assert_true (s_msg_equal (&g, &m));
    }
    //  A PONG with a role sends the identity, a region may be empty
    wc_msg_t p = s_sample (S_PONG_LONG);
    p.u.pong.role = WC_ROLE_PRIMARY;
    p.u.pong.region.len = 0;
    p.u.pong.lag_ms = 0;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&p, &sb), 0);
    assert_int_equal ((uint8_t) sb.data [0], 0x9a);         // fixarray 10
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_true (s_msg_equal (&p, &m));

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&old);
}

//  GET's optional fields may stop after any of them; PONG's identity is
//  all or nothing; whatever follows a short form must be those fields.
static void
test_optional_fields_partial (void **state)
{
    (void) state;
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;

    //  GET with min_seq only, then with min_seq and max_staleness_ms
    s_encode_sample (S_GET_SHORT, &sb);
    msgpack_object f [2] = { s_obj_uint (42), s_obj_uint (300) };
    s_rebuild (sb.data, sb.size, -1, NULL, f, 1, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), 0);
    assert_int_equal (m.u.req.min_seq, 42);
    assert_int_equal (m.u.req.max_staleness_ms, 0);
    assert_int_equal (m.u.req.wait_ms, 0);
    s_rebuild (sb.data, sb.size, -1, NULL, f, 2, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), 0);
    assert_int_equal (m.u.req.min_seq, 42);
    assert_int_equal (m.u.req.max_staleness_ms, 300);
    assert_int_equal (m.u.req.wait_ms, 0);
    //  ...an explicit zero is the same as absent
    msgpack_object zeros [3] = { s_obj_uint (0), s_obj_uint (0), s_obj_uint (0) };
    s_rebuild (sb.data, sb.size, -1, NULL, zeros, 3, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), 0);
    wc_msg_t plain = s_sample (S_GET_SHORT);
    assert_true (s_msg_equal (&plain, &m));

    //  Something else after the key is malformed, not ignored
    msgpack_object junk [3] = { s_obj_nil (), s_obj_str ("x"), s_obj_int (-1) };
    for (int k = 0; k < 3; k++) {
        s_rebuild (sb.data, sb.size, -1, NULL, &junk [k], 1, &bad);
        assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    }

    //  ENTRIES with applied_us (and cluster, and flags): read; anything
    //  but a uint there is malformed; what comes after them is ignored
    s_encode_sample (S_ENTRIES, &sb);
    msgpack_object applied [4] = { s_obj_uint (1764547200123456), s_obj_uint (77),
                                   s_obj_uint (WC_ENTRIES_ACK_WANTED | 6),
                                   s_obj_str ("later") };
    s_rebuild (sb.data, sb.size, -1, NULL, applied, 1, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), 0);
    assert_int_equal (m.u.entries.count, 2);
    assert_true (m.u.entries.applied_us == 1764547200123456);
    assert_true (m.u.entries.cluster == 0);
    assert_true (m.u.entries.flags == 0);
    s_rebuild (sb.data, sb.size, -1, NULL, applied, 2, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), 0);
    assert_true (m.u.entries.cluster == 77);
    assert_true (m.u.entries.flags == 0);
    s_rebuild (sb.data, sb.size, -1, NULL, applied, 4, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), 0);
    assert_true (m.u.entries.applied_us == 1764547200123456);
    assert_true (m.u.entries.cluster == 77);
    assert_true (m.u.entries.flags == (WC_ENTRIES_ACK_WANTED | 6));  /* unknown bits kept */
    msgpack_object not_flags [3] = { s_obj_uint (1), s_obj_uint (0), s_obj_str ("1") };
    s_rebuild (sb.data, sb.size, -1, NULL, not_flags, 3, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.u.entries.applied_us, 0);           /* absent */
    for (int k = 0; k < 3; k++) {
        s_rebuild (sb.data, sb.size, -1, NULL, &junk [k], 1, &bad);
        assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    }

    //  PONG with one, two or three of the four identity fields
    s_encode_sample (S_PONG_SHORT, &sb);
    msgpack_object id [4] = {
        s_obj_uint (WC_ROLE_REPLICA), s_obj_str ("eu1"), s_obj_str ("eu"),
        s_obj_uint (5)
    };
    for (uint32_t k = 1; k < 4; k++) {
        s_rebuild (sb.data, sb.size, -1, NULL, id, k, &bad);
        assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    }
    s_rebuild (sb.data, sb.size, -1, NULL, id, 4, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), 0);
    assert_int_equal (m.u.pong.role, WC_ROLE_REPLICA);
    assert_true (s_bytes_equal (m.u.pong.id, s_bytes ("eu1")));
    assert_true (s_bytes_equal (m.u.pong.region, s_bytes ("eu")));
    assert_int_equal (m.u.pong.lag_ms, 5);
    //  ...ids may come as bin too
    id [1] = s_obj_bin ("eu1", 3);
    s_rebuild (sb.data, sb.size, -1, NULL, id, 4, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), 0);

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
}

//  GET's two millisecond fields must fit 32 bits; wait_ms is clamped to
//  WC_MAX_WAIT_MS. PONG's role is 1 or 2 and its id is not empty.
static void
test_get_and_pong_values (void **state)
{
    (void) state;
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;
    msgpack_object o;

    s_encode_sample (S_GET_LONG, &sb);
    o = s_obj_uint ((uint64_t) UINT32_MAX + 1);
    s_rebuild (sb.data, sb.size, 5, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    s_rebuild (sb.data, sb.size, 6, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    o = s_obj_uint (UINT32_MAX);
    s_rebuild (sb.data, sb.size, 5, &o, NULL, 0, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), 0);
    assert_int_equal (m.u.req.max_staleness_ms, UINT32_MAX);
    //  min_seq takes all 64 bits
    o = s_obj_uint (UINT64_MAX);
    s_rebuild (sb.data, sb.size, 4, &o, NULL, 0, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), 0);
    assert_true (m.u.req.min_seq == UINT64_MAX);
    //  wait_ms: at the cap it stays, above it is clamped, not refused
    uint64_t waits [] = { WC_MAX_WAIT_MS, WC_MAX_WAIT_MS + 1, UINT32_MAX };
    for (int k = 0; k < 3; k++) {
        o = s_obj_uint (waits [k]);
        s_rebuild (sb.data, sb.size, 6, &o, NULL, 0, &bad);
        assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), 0);
        assert_int_equal (m.u.req.wait_ms, WC_MAX_WAIT_MS);
    }
    //  ...also when this side encodes a larger one
    wc_msg_t g = s_sample (S_GET_LONG);
    g.u.req.wait_ms = UINT32_MAX;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&g, &sb), 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.u.req.wait_ms, WC_MAX_WAIT_MS);

    //  PONG: role 0 and 3, empty id are malformed; empty region is fine
    s_encode_sample (S_PONG_LONG, &sb);
    o = s_obj_uint (0);
    s_rebuild (sb.data, sb.size, 6, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    o = s_obj_uint (3);
    s_rebuild (sb.data, sb.size, 6, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    o = s_obj_str ("");
    s_rebuild (sb.data, sb.size, 7, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
    s_rebuild (sb.data, sb.size, 8, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), 0);

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
}

//  Replace field pos of the sample node_info (sample node 1) by *repl,
//  or keep only its first pos elements when repl is NULL, and put the
//  result in a REGISTER (into reg) and as the second node of a TOPOLOGY
//  (into topo).
static void
s_bad_node (int pos, const msgpack_object *repl, msgpack_sbuffer *reg,
            msgpack_sbuffer *topo)
{
    msgpack_sbuffer node, tmp;
    msgpack_sbuffer_init (&node);
    msgpack_sbuffer_init (&tmp);
    wc_node_info_t n = s_sample_node (1);
    assert_int_equal (wc_node_info_encode (&n, &node), 0);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&up, node.data, node.size, &off),
                      MSGPACK_UNPACK_SUCCESS);
    msgpack_object item = up.data;
    if (repl == NULL)
        item.via.array.size = (uint32_t) pos;
    else
        item.via.array.ptr [pos] = *repl;

    s_encode_sample (S_REGISTER, &tmp);
    s_rebuild (tmp.data, tmp.size, 3, &item, NULL, 0, reg);

    //  TOPOLOGY [v, 67, rid, version, [good node, item]]
    msgpack_sbuffer_clear (topo);
    assert_int_equal (wc_topology_encode_header (5, 6, 2, topo), 0);
    wc_node_info_t good = s_sample_node (0);
    assert_int_equal (wc_node_info_encode (&good, topo), 0);
    msgpack_packer pk;
    msgpack_packer_init (&pk, topo, msgpack_sbuffer_write);
    assert_int_equal (msgpack_pack_object (&pk, item), 0);

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&node);
    msgpack_sbuffer_destroy (&tmp);
}

//  Decode topo (from s_bad_node) and check its second node with
//  wc_node_info_from_object; the outer message itself must decode.
static int
s_topology_item_rc (const msgpack_sbuffer *topo)
{
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;
    assert_int_equal (wc_msg_decode (topo->data, topo->size, &up, &m), 0);
    assert_int_equal (m.type, WC_MSG_TOPOLOGY);
    assert_int_equal (m.u.topology.count, 2);
    wc_node_info_t n;
    assert_int_equal (wc_node_info_from_object (&m.u.topology.items [0], &n), 0);
    int rc = wc_node_info_from_object (&m.u.topology.items [1], &n);
    msgpack_unpacked_destroy (&up);
    return rc;
}

//  Every node_info field is checked, in REGISTER (the whole message is
//  refused) and in TOPOLOGY (the item is refused by
//  wc_node_info_from_object, the message is not).
static void
test_node_info_fields (void **state)
{
    (void) state;
    msgpack_sbuffer reg, topo;
    msgpack_sbuffer_init (&reg);
    msgpack_sbuffer_init (&topo);
    msgpack_object wrong [16];

    for (int pos = 0; s_node_kinds [pos]; pos++) {
        int n = s_wrong_for (s_node_kinds [pos], wrong);
        for (int w = 0; w < n; w++) {
            s_bad_node (pos, &wrong [w], &reg, &topo);
            int rc = s_decode_copy (reg.data, reg.size);
            if (rc != WALCAST_EPROTO)
                fail_msg ("node_info field %d, wrong object %d: got %s",
                          pos, w, walcast_errname (rc));
            assert_int_equal (s_topology_item_rc (&topo), WALCAST_EPROTO);
        }
    }
    //  Right types, wrong values
    struct { int pos; msgpack_object obj; int rc; } cases [] = {
        { 0, s_obj_str (""), WALCAST_EPROTO },          // empty id
        { 2, s_obj_uint (0), WALCAST_EPROTO },          // role 0
        { 2, s_obj_uint (3), WALCAST_EPROTO },          // role 3
        { 5, s_obj_str (""), WALCAST_EPROTO },          // empty addr
        { 1, s_obj_str (""), 0 },                       // no region: fine
        { 6, s_obj_str (""), 0 },                       // no primary: fine
        { 0, s_obj_bin ("eu1", 3), 0 },                 // bin for str: fine
        { 9, s_obj_bool (true), 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_bad_node (cases [i].pos, &cases [i].obj, &reg, &topo);
        assert_int_equal (s_decode_copy (reg.data, reg.size), cases [i].rc);
        assert_int_equal (s_topology_item_rc (&topo), cases [i].rc);
    }
    //  Ten elements are one too few; eleven (an older peer's, without
    //  flags and handover_seq) and twelve are enough
    s_bad_node (10, NULL, &reg, &topo);
    assert_int_equal (s_decode_copy (reg.data, reg.size), WALCAST_EPROTO);
    assert_int_equal (s_topology_item_rc (&topo), WALCAST_EPROTO);
    s_bad_node (11, NULL, &reg, &topo);
    assert_int_equal (s_decode_copy (reg.data, reg.size), 0);
    assert_int_equal (s_topology_item_rc (&topo), 0);
    s_bad_node (12, NULL, &reg, &topo);
    assert_int_equal (s_decode_copy (reg.data, reg.size), 0);
    assert_int_equal (s_topology_item_rc (&topo), 0);

    msgpack_sbuffer_destroy (&reg);
    msgpack_sbuffer_destroy (&topo);
}

//  TOPOLOGY decodes its outer shape; a bad item is found by
//  wc_node_info_from_object, item by item. An empty list is valid.
static void
test_topology_with_bad_item (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    assert_int_equal (wc_topology_encode_header (8, 3, 3, &sb), 0);
    wc_node_info_t n = s_sample_node (0), got;
    assert_int_equal (wc_node_info_encode (&n, &sb), 0);
    assert_int_equal (msgpack_sbuffer_write (&sb, "\x07", 1), 0);   // not an array
    assert_int_equal (msgpack_sbuffer_write (&sb, "\x90", 1), 0);   // []

    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.rid, 8);
    assert_int_equal (m.u.topology.version, 3);
    assert_int_equal (m.u.topology.count, 3);
    assert_int_equal (wc_node_info_from_object (&m.u.topology.items [0], &got), 0);
    assert_true (s_node_equal (&n, &got));
    assert_true (s_inside (got.id, sb.data, sb.size));
    assert_true (s_inside (got.addr, sb.data, sb.size));
    assert_int_equal (wc_node_info_from_object (&m.u.topology.items [1], &got),
                      WALCAST_EPROTO);
    assert_int_equal (wc_node_info_from_object (&m.u.topology.items [2], &got),
                      WALCAST_EPROTO);

    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_topology_encode_header (0, 1, 0, &sb), 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.type, WC_MSG_TOPOLOGY);
    assert_int_equal (m.rid, 0);
    assert_int_equal (m.u.topology.count, 0);

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

//  A TOPOLOGY of WC_MAX_NODES nodes with every string at its limit fits
//  in one message; PONG identity and node_info strings at their limits
//  round-trip.
static void
test_broker_limits_exactly (void **state)
{
    (void) state;
    static char id [WC_MAX_ID], addr [WC_MAX_ADDR];
    memset (id, 'i', sizeof id);
    memset (addr, 'a', sizeof addr);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m, out;

    m = s_sample (S_PONG_LONG);
    m.u.pong.id.ptr = (const uint8_t *) id;
    m.u.pong.id.len = WC_MAX_ID;
    m.u.pong.region = m.u.pong.id;
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &out), 0);
    assert_true (s_msg_equal (&m, &out));

    wc_node_info_t n = s_sample_node (1);
    n.id.ptr = (const uint8_t *) id;
    n.id.len = WC_MAX_ID;
    n.region = n.id;
    n.addr.ptr = (const uint8_t *) addr;
    n.addr.len = WC_MAX_ADDR;
    n.primary = n.addr;
    n.epoch = n.applied_seq = n.lag = n.lag_ms = n.silent_ms = UINT64_MAX;
    m = s_sample (21);
    m.u.node = n;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &out), 0);
    assert_true (s_msg_equal (&m, &out));

    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_topology_encode_header (1, UINT64_MAX, WC_MAX_NODES,
                                                 &sb), 0);
    for (uint32_t i = 0; i < WC_MAX_NODES; i++)
        assert_int_equal (wc_node_info_encode (&n, &sb), 0);
    assert_true (sb.size <= WC_MAX_MESSAGE);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &out), 0);
    assert_int_equal (out.u.topology.count, WC_MAX_NODES);
    assert_true (out.u.topology.version == UINT64_MAX);
    wc_node_info_t got;
    assert_int_equal (wc_node_info_from_object (
                      &out.u.topology.items [WC_MAX_NODES - 1], &got), 0);
    assert_true (s_node_equal (&n, &got));

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}


//  After a failed decode, type and rid say what could be read, so a node
//  can address its ERROR reply.
static void
test_failed_decode_keeps_rid (void **state)
{
    (void) state;
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;

    s_encode_sample (0, &sb);
    msgpack_object o = s_obj_bin ("", 0);
    s_rebuild (sb.data, sb.size, 3, &o, NULL, 0, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), WALCAST_EPROTO);
    assert_int_equal (m.type, WC_MSG_PUT);
    assert_int_equal (m.rid, s_sample (0).rid);

    assert_int_equal (wc_msg_decode (sb.data, sb.size - 1, &up, &m), WALCAST_EPROTO);
    assert_int_equal (m.type, 0);
    assert_int_equal (m.rid, 0);

    //  ...also when the broken part is a GET's optional field
    s_encode_sample (S_GET_LONG, &sb);
    o = s_obj_str ("soon");
    s_rebuild (sb.data, sb.size, 6, &o, NULL, 0, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), WALCAST_EPROTO);
    assert_int_equal (m.type, WC_MSG_GET);
    assert_int_equal (m.rid, s_sample (S_GET_LONG).rid);

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
}


//  The readable-rid rule (PROTOCOL.md, "Malformed messages"): after a
//  failed decode, msg.rid is the request's rid exactly when the body
//  passed steps 1 to 5 of "Validation", its type carries a rid and its
//  third element is a uint; whatever failed after that (a type, a value,
//  a length) does not lose it. Otherwise it is 0, and so is the type when
//  the version or type could not be read.
static void
test_readable_rid (void **state)
{
    (void) state;
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;
    msgpack_object o;
    uint64_t rid = s_sample (0).rid;
    char *big = calloc (1, WC_MAX_KEY + 1);
    assert_non_null (big);

    //  Readable: a wrong type, a bad value, a length over its limit
    s_encode_sample (0, &sb);
    struct { int pos; msgpack_object obj; int rc; } kept [] = {
        { 4, s_obj_uint (7), WALCAST_EPROTO },
        { 3, s_obj_bin ("", 0), WALCAST_EPROTO },
        { 3, s_obj_bin (big, WC_MAX_KEY + 1), WALCAST_ETOOBIG },
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept [0]; i++) {
        s_rebuild (sb.data, sb.size, kept [i].pos, &kept [i].obj, NULL, 0, &bad);
        assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), kept [i].rc);
        assert_int_equal (m.type, WC_MSG_PUT);
        assert_true (m.rid == rid);
    }
    //  ...and a message cut short after its rid
    msgpack_object head [3] = { s_obj_uint (1), s_obj_uint (WC_MSG_PUT), s_obj_uint (rid) };
    o = s_obj_array (head, 3);
    msgpack_sbuffer_clear (&bad);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &bad, msgpack_sbuffer_write);
    assert_int_equal (msgpack_pack_object (&pk, o), 0);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), WALCAST_EPROTO);
    assert_true (m.rid == rid);

    //  Not readable: another version, an unknown type, a rid that is not
    //  a uint, no third element, a body that is not well-formed
    o = s_obj_uint (2);
    s_rebuild (sb.data, sb.size, 0, &o, NULL, 0, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), WALCAST_EVERSION);
    assert_int_equal (m.type, 0);
    assert_int_equal (m.rid, 0);
    o = s_obj_uint (10);
    s_rebuild (sb.data, sb.size, 1, &o, NULL, 0, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), WALCAST_EPROTO);
    assert_int_equal (m.type, 0);
    assert_int_equal (m.rid, 0);
    o = s_obj_str ("12");
    s_rebuild (sb.data, sb.size, 2, &o, NULL, 0, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), WALCAST_EPROTO);
    assert_int_equal (m.type, WC_MSG_PUT);
    assert_int_equal (m.rid, 0);
    assert_int_equal (wc_msg_decode ("\x92\x01\x01", 3, &up, &m), WALCAST_EPROTO);
    assert_int_equal (m.rid, 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size - 1, &up, &m), WALCAST_EPROTO);
    assert_int_equal (m.rid, 0);

    //  ENTRY and HEARTBEAT carry no rid: a HEARTBEAT's epoch is not one
    s_encode_sample (15, &sb);
    o = s_obj_str ("late");
    s_rebuild (sb.data, sb.size, 4, &o, NULL, 0, &bad);
    assert_int_equal (wc_msg_decode (bad.data, bad.size, &up, &m), WALCAST_EPROTO);
    assert_int_equal (m.type, WC_MSG_HEARTBEAT);
    assert_int_equal (m.rid, 0);

    free (big);
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
}


//  ---------------------------------------------------------------------
//  Issue 7: write acknowledgements, epochs, snapshots, broker directives

//  Pack a PUT, DEL or WRITE_OK the way the codec did before acks existed:
//  PUT [v, 1, rid, key, value], DEL [v, 2, rid, key], WRITE_OK [v, 16,
//  rid, epoch, seq].
static void
s_pack_pre_acks (const wc_msg_t *m, msgpack_sbuffer *out)
{
    msgpack_sbuffer_clear (out);
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    uint32_t n = m->type == WC_MSG_DEL ? 4 : 5;
    assert_int_equal (msgpack_pack_array (&pk, n), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, 1), 0);
    assert_int_equal (msgpack_pack_uint8 (&pk, (uint8_t) m->type), 0);
    assert_int_equal (msgpack_pack_uint64 (&pk, m->rid), 0);
    if (m->type == WC_MSG_WRITE_OK) {
        assert_int_equal (msgpack_pack_uint64 (&pk, m->u.write_ok.epoch), 0);
        assert_int_equal (msgpack_pack_uint64 (&pk, m->u.write_ok.seq), 0);
        return;
    }
    assert_int_equal (msgpack_pack_bin (&pk, m->u.req.key.len), 0);
    assert_int_equal (msgpack_pack_bin_body (&pk, m->u.req.key.ptr,
                                             m->u.req.key.len), 0);
    if (m->type == WC_MSG_PUT) {
        assert_int_equal (msgpack_pack_bin (&pk, m->u.req.value.len), 0);
        assert_int_equal (msgpack_pack_bin_body (&pk, m->u.req.value.ptr,
                                                 m->u.req.value.len), 0);
    }
}

//  A PUT, DEL or WRITE_OK that asks for no acknowledgement is byte for
//  byte what it was before acks existed, so older nodes and clients see
//  nothing new; what they send decodes with acks, ack_timeout_ms and
//  acked 0. Any one of the optional fields set sends all of them.
static void
test_acks_old_forms_unchanged (void **state)
{
    (void) state;
    msgpack_sbuffer sb, old;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&old);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;

    int shorts [] = { S_PUT_SHORT, S_DEL_SHORT, S_WRITE_OK_SHORT };
    for (int i = 0; i < 3; i++) {
        wc_msg_t in = s_sample (shorts [i]);
        s_encode_sample (shorts [i], &sb);
        s_pack_pre_acks (&in, &old);
        assert_int_equal (sb.size, old.size);
        assert_memory_equal (sb.data, old.data, sb.size);
        assert_int_equal (wc_msg_decode (old.data, old.size, &up, &m), 0);
        assert_true (s_msg_equal (&in, &m));
        if (m.type == WC_MSG_WRITE_OK)
            assert_int_equal (m.u.write_ok.acked, 0);
        else {
            assert_int_equal (m.u.req.acks, 0);
            assert_int_equal (m.u.req.ack_timeout_ms, 0);
        }
    }
    //  acks or ack_timeout_ms alone sends both (PUT: 7 elements, DEL: 6)
    for (int k = 0; k < 4; k++) {
        wc_msg_t w = s_sample (k < 2 ? S_PUT_SHORT : S_DEL_SHORT);
        if (k % 2 == 0)
            w.u.req.acks = 1;
        else
            w.u.req.ack_timeout_ms = 1;
        msgpack_sbuffer_clear (&sb);
        assert_int_equal (wc_msg_encode (&w, &sb), 0);
        assert_int_equal ((uint8_t) sb.data [0], k < 2 ? 0x97 : 0x96);
        assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
        assert_true (s_msg_equal (&w, &m));
    }
    //  WRITE_OK with acked: 6 elements
    s_encode_sample (S_WRITE_OK_LONG, &sb);
    assert_int_equal ((uint8_t) sb.data [0], 0x96);

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&old);
}

//  Decode buf, which must be valid, and return the message.
static wc_msg_t
s_decode_ok (const msgpack_sbuffer *buf, msgpack_unpacked *up)
{
    wc_msg_t m;
    int rc = wc_msg_decode (buf->data, buf->size, up, &m);
    if (rc != 0)
        fail_msg ("decode: %s", walcast_errname (rc));
    return m;
}

//  acks is 0..255 (WC_ACKS_ALL = 255), more is malformed; ack_timeout_ms
//  must fit 32 bits and is clamped to WC_MAX_ACK_TIMEOUT_MS; each may be
//  left off from the end (0 when absent), and nothing but a uint may
//  follow a PUT's value or a DEL's key. WRITE_OK's acked is a 32-bit
//  count, optional too.
static void
test_acks_fields (void **state)
{
    (void) state;
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    msgpack_object o;
    wc_msg_t m;

    //  PUT's acks at 4, DEL's at 3; the timeout follows
    int longs [] = { S_PUT_LONG, S_DEL_LONG };
    for (int i = 0; i < 2; i++) {
        int at = longs [i] == S_PUT_LONG ? 5 : 4;
        s_encode_sample (longs [i], &sb);
        uint64_t acks [] = { 0, 1, WC_MAX_ACKS, WC_ACKS_ALL };
        for (int k = 0; k < 4; k++) {
            o = s_obj_uint (acks [k]);
            s_rebuild (sb.data, sb.size, at, &o, NULL, 0, &bad);
            assert_int_equal (s_decode_ok (&bad, &up).u.req.acks, acks [k]);
        }
        uint64_t too_many [] = { WC_ACKS_ALL + 1, 65535, UINT64_MAX };
        for (int k = 0; k < 3; k++) {
            o = s_obj_uint (too_many [k]);
            s_rebuild (sb.data, sb.size, at, &o, NULL, 0, &bad);
            assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
        }
        //  the timeout: 0 and the cap stay, above it is clamped, past 32
        //  bits is malformed
        struct { uint64_t in; uint32_t out; } t [] = {
            { 0, 0 }, { 1, 1 }, { WC_MAX_ACK_TIMEOUT_MS, WC_MAX_ACK_TIMEOUT_MS },
            { WC_MAX_ACK_TIMEOUT_MS + 1, WC_MAX_ACK_TIMEOUT_MS },
            { UINT32_MAX, WC_MAX_ACK_TIMEOUT_MS }
        };
        for (int k = 0; k < 5; k++) {
            o = s_obj_uint (t [k].in);
            s_rebuild (sb.data, sb.size, at + 1, &o, NULL, 0, &bad);
            assert_int_equal (s_decode_ok (&bad, &up).u.req.ack_timeout_ms, t [k].out);
        }
        o = s_obj_uint ((uint64_t) UINT32_MAX + 1);
        s_rebuild (sb.data, sb.size, at + 1, &o, NULL, 0, &bad);
        assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
        //  ...also when this side encodes a larger one
        wc_msg_t w = s_sample (longs [i]);
        w.u.req.ack_timeout_ms = UINT32_MAX;
        msgpack_sbuffer_clear (&bad);
        assert_int_equal (wc_msg_encode (&w, &bad), 0);
        assert_int_equal (s_decode_ok (&bad, &up).u.req.ack_timeout_ms,
                          WC_MAX_ACK_TIMEOUT_MS);
    }

    //  acks alone (no timeout): the timeout is 0, the node's default
    s_encode_sample (S_PUT_SHORT, &sb);
    o = s_obj_uint (2);
    s_rebuild (sb.data, sb.size, -1, NULL, &o, 1, &bad);
    m = s_decode_ok (&bad, &up);
    assert_int_equal (m.u.req.acks, 2);
    assert_int_equal (m.u.req.ack_timeout_ms, 0);
    s_encode_sample (S_DEL_SHORT, &sb);
    s_rebuild (sb.data, sb.size, -1, NULL, &o, 1, &bad);
    m = s_decode_ok (&bad, &up);
    assert_int_equal (m.u.req.acks, 2);
    assert_true (s_bytes_equal (m.u.req.key, s_bytes ("k")));

    //  After a PUT's value or a DEL's key, anything but a uint is
    //  malformed, not ignored: those places now hold acks
    msgpack_object junk [4] = { s_obj_nil (), s_obj_str ("x"), s_obj_int (-1),
                                s_obj_bin ("v", 1) };
    int shorts [] = { S_PUT_SHORT, S_DEL_SHORT, S_WRITE_OK_SHORT };
    for (int i = 0; i < 3; i++) {
        s_encode_sample (shorts [i], &sb);
        for (int k = 0; k < 4; k++) {
            s_rebuild (sb.data, sb.size, -1, NULL, &junk [k], 1, &bad);
            assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);
        }
    }

    //  WRITE_OK's acked: any 32-bit count
    s_encode_sample (S_WRITE_OK_LONG, &sb);
    o = s_obj_uint (UINT32_MAX);
    s_rebuild (sb.data, sb.size, 5, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_ok (&bad, &up).u.write_ok.acked, UINT32_MAX);
    o = s_obj_uint ((uint64_t) UINT32_MAX + 1);
    s_rebuild (sb.data, sb.size, 5, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_EPROTO);

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
}

//  node_info's flags and handover_seq: an older peer's node_info of 11
//  elements decodes with both 0, in REGISTER and in TOPOLOGY; set, they
//  round-trip over their whole range; the encoder always sends both.
static void test_node_info_flags (void **state);

//  The number of elements of the array at the top of buf, or of its
//  element at (when at >= 0).
static uint32_t
s_array_size (const void *buf, size_t len, int at)
{
    msgpack_unpacked whole;
    msgpack_unpacked_init (&whole);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&whole, buf, len, &off),
                      MSGPACK_UNPACK_SUCCESS);
    msgpack_object obj = at < 0 ? whole.data : whole.data.via.array.ptr [at];
    uint32_t size = obj.via.array.size;
    msgpack_unpacked_destroy (&whole);
    return size;
}

//  Issue 9: a node's CURVE public key rides in node_info (REGISTER,
//  TOPOLOGY) and FOLLOW, each sent only when there is one, so without
//  keys the bytes are what 0.4 peers send; with one it round-trips, and
//  one longer than a Z85 key is refused.
static void
test_curve_keys (void **state)
{
    (void) state;
    const char *key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t in = s_sample (S_REGISTER), out;
    assert_int_equal (wc_msg_encode (&in, &sb), 0);
    assert_int_equal (s_array_size (sb.data, sb.size, 3), 13);
    in.u.node.curve_key = s_bytes (key);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&in, &sb), 0);
    assert_int_equal (s_array_size (sb.data, sb.size, 3), 14);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &out), 0);
    assert_true (s_msg_equal (&in, &out));
    char longer [WC_CURVE_KEY_LEN + 2];
    memset (longer, 'a', sizeof longer - 1);
    longer [sizeof longer - 1] = '\0';
    in.u.node.curve_key = s_bytes (longer);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&in, &sb), WALCAST_EINVAL);

    in = s_sample (S_FOLLOW);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&in, &sb), 0);
    assert_int_equal (s_array_size (sb.data, sb.size, -1), 5);
    in.u.follow.primary_key = s_bytes (key);
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&in, &sb), 0);
    assert_int_equal (s_array_size (sb.data, sb.size, -1), 6);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &out), 0);
    assert_true (s_msg_equal (&in, &out));
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_node_info_flags (void **state)
{
    (void) state;
    msgpack_sbuffer reg, topo;
    msgpack_sbuffer_init (&reg);
    msgpack_sbuffer_init (&topo);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;

    //  [.., up, silent_ms] with nothing after: flags = handover_seq = 0
    s_bad_node (11, NULL, &reg, &topo);
    assert_int_equal (wc_msg_decode (reg.data, reg.size, &up, &m), 0);
    wc_node_info_t want = s_sample_node (1);
    assert_true (s_node_equal (&m.u.node, &want));
    assert_int_equal (m.u.node.flags, 0);
    assert_int_equal (m.u.node.handover_seq, 0);
    assert_int_equal (wc_msg_decode (topo.data, topo.size, &up, &m), 0);
    wc_node_info_t got;
    assert_int_equal (wc_node_info_from_object (&m.u.topology.items [1], &got), 0);
    assert_true (s_node_equal (&got, &want));
    //  ...twelve: flags only
    wc_msg_t in = s_sample (S_REGISTER);
    in.u.node.flags = WC_NODE_DIVERGED;
    in.u.node.handover_seq = 9;
    msgpack_sbuffer_clear (&reg);
    assert_int_equal (wc_msg_encode (&in, &reg), 0);
    msgpack_unpacked whole;
    msgpack_unpacked_init (&whole);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&whole, reg.data, reg.size, &off),
                      MSGPACK_UNPACK_SUCCESS);
    msgpack_object node = whole.data.via.array.ptr [3];
    assert_int_equal (node.via.array.size, 13);
    node.via.array.size = 12;
    s_rebuild (reg.data, reg.size, 3, &node, NULL, 0, &topo);
    msgpack_unpacked_destroy (&whole);
    assert_int_equal (wc_msg_decode (topo.data, topo.size, &up, &m), 0);
    assert_int_equal (m.u.node.flags, WC_NODE_DIVERGED);
    assert_int_equal (m.u.node.handover_seq, 0);

    //  Every flag, unknown bits included, and any handover_seq
    uint64_t values [] = { WC_NODE_CANDIDATE, WC_NODE_DIVERGED, WC_NODE_STALLED,
                           WC_NODE_CANDIDATE | WC_NODE_STALLED, WC_NODE_HANDED_OVER,
                           UINT64_MAX };
    for (int k = 0; k < 6; k++) {
        wc_msg_t in = s_sample (S_REGISTER);
        in.u.node.flags = values [k];
        in.u.node.handover_seq = values [k] == UINT64_MAX ? UINT64_MAX : 1000;
        msgpack_sbuffer_clear (&reg);
        assert_int_equal (wc_msg_encode (&in, &reg), 0);
        assert_int_equal (wc_msg_decode (reg.data, reg.size, &up, &m), 0);
        assert_true (s_msg_equal (&in, &m));
    }
    //  The four flags are distinct bits
    assert_int_equal (WC_NODE_CANDIDATE & WC_NODE_DIVERGED, 0);
    assert_int_equal ((WC_NODE_CANDIDATE | WC_NODE_DIVERGED) & WC_NODE_STALLED, 0);
    assert_int_equal ((WC_NODE_CANDIDATE | WC_NODE_DIVERGED | WC_NODE_STALLED)
                      & WC_NODE_HANDED_OVER, 0);

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&reg);
    msgpack_sbuffer_destroy (&topo);
}

//  The values each new message may hold: every epoch a broker names
//  (PROMOTE, FOLLOW, HANDOVER, SWITCHOVER_DONE) is 1 or more, since
//  epochs start at 1; FOLLOW and SWITCHOVER_DONE name a primary; ACK and
//  SWITCHOVER a node id; a HANDOVER with an empty target cancels one; SNAPSHOT_GET's max_bytes saturates at
//  32 bits; SNAPSHOT_CHUNK carries 0..WC_MAX_SNAPSHOT_CHUNK octets; an
//  EPOCH_END asks with one epoch (what follows is an extra).
static void
test_issue7_values (void **state)
{
    (void) state;
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    msgpack_object o;
    wc_msg_t m;

    struct { int sample; int pos; msgpack_object obj; int rc; } cases [] = {
        { S_PROMOTE, 3, s_obj_uint (0), WALCAST_EPROTO },
        { S_PROMOTE, 3, s_obj_uint (1), 0 },
        { S_PROMOTE, 3, s_obj_uint (UINT64_MAX), 0 },
        { S_FOLLOW, 3, s_obj_uint (0), WALCAST_EPROTO },
        { S_FOLLOW, 4, s_obj_str (""), WALCAST_EPROTO },
        { S_HANDOVER, 3, s_obj_uint (0), WALCAST_EPROTO },
        { S_SWITCHOVER_DONE, 3, s_obj_uint (0), WALCAST_EPROTO },
        { S_SWITCHOVER_DONE, 4, s_obj_str (""), WALCAST_EPROTO },
        { S_FOLLOW, 4, s_obj_bin ("h:1", 3), 0 },
        { S_ACK, 3, s_obj_str (""), WALCAST_EPROTO },
        { S_ACK, 4, s_obj_uint (0), 0 },            // a replica with no epoch yet
        { S_ACK, 5, s_obj_uint (0), 0 },            // ...that holds nothing
        { 37, 3, s_obj_str (""), WALCAST_EPROTO },  // SWITCHOVER to nobody
        { S_HANDOVER, 4, s_obj_str (""), 0 },       // cancel
        { S_HANDOVER, 5, s_obj_str (""), 0 },
        { S_SNAPSHOT_GET, 3, s_obj_uint (0), 0 },   // the newest snapshot
        { S_SNAPSHOT_CHUNK, 6, s_obj_bin ("", 0), 0 },  // past the end
        { S_SNAPSHOT_CHUNK, 6, s_obj_str ("abc"), 0 },
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_encode_sample (cases [i].sample, &sb);
        s_rebuild (sb.data, sb.size, cases [i].pos, &cases [i].obj, NULL, 0, &bad);
        int rc = s_decode_copy (bad.data, bad.size);
        if (rc != cases [i].rc) {
            print_message ("case %zu (%s field %d): got %s, want %s\n", i,
                           wc_msg_type_name (s_sample (cases [i].sample).type),
                           cases [i].pos, walcast_errname (rc),
                           walcast_errname (cases [i].rc));
            ok = false;
        }
    }
    if (!ok)
        fail_msg ("a value was decoded wrong");
    //  The encoder refuses the same
    m = s_sample (S_PROMOTE);
    m.u.promote.epoch = 0;
    assert_int_equal (wc_msg_encode (&m, &bad), WALCAST_EINVAL);
    m = s_sample (S_FOLLOW);
    m.u.follow.primary.len = 0;
    assert_int_equal (wc_msg_encode (&m, &bad), WALCAST_EINVAL);
    m = s_sample (S_FOLLOW);
    m.u.follow.epoch = 0;
    assert_int_equal (wc_msg_encode (&m, &bad), WALCAST_EINVAL);
    m = s_sample (S_HANDOVER);
    m.u.handover.epoch = 0;
    assert_int_equal (wc_msg_encode (&m, &bad), WALCAST_EINVAL);
    m = s_sample (S_SWITCHOVER_DONE);
    m.u.switchover_done.epoch = 0;
    assert_int_equal (wc_msg_encode (&m, &bad), WALCAST_EINVAL);
    m = s_sample (S_SWITCHOVER_DONE);
    m.u.switchover_done.primary.len = 0;
    assert_int_equal (wc_msg_encode (&m, &bad), WALCAST_EINVAL);
    m = s_sample (S_ACK);
    m.u.ack.id.len = 0;
    assert_int_equal (wc_msg_encode (&m, &bad), WALCAST_EINVAL);
    m = s_sample (37);
    m.u.switchover.node_id.len = WC_MAX_ID + 1;
    assert_int_equal (wc_msg_encode (&m, &bad), WALCAST_EINVAL);

    //  SNAPSHOT_GET max_bytes: over 32 bits saturates, like FETCH's
    s_encode_sample (S_SNAPSHOT_GET, &sb);
    o = s_obj_uint (UINT64_MAX);
    s_rebuild (sb.data, sb.size, 5, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_ok (&bad, &up).u.snapshot_get.max_bytes, UINT32_MAX);

    //  SNAPSHOT_CHUNK data at exactly its limit, both ways; one more
    //  octet is refused both ways
    char *data = calloc (1, WC_MAX_SNAPSHOT_CHUNK + 1);
    assert_non_null (data);
    m = s_sample (S_SNAPSHOT_CHUNK);
    m.u.snapshot_chunk.data.ptr = (const uint8_t *) data;
    m.u.snapshot_chunk.data.len = WC_MAX_SNAPSHOT_CHUNK;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    wc_msg_t out = s_decode_ok (&sb, &up);
    assert_true (s_msg_equal (&m, &out));
    m.u.snapshot_chunk.data.len++;
    assert_int_equal (wc_msg_encode (&m, &bad), WALCAST_EINVAL);
    o = s_obj_bin (data, WC_MAX_SNAPSHOT_CHUNK + 1);
    s_rebuild (sb.data, sb.size, 6, &o, NULL, 0, &bad);
    assert_int_equal (s_decode_copy (bad.data, bad.size), WALCAST_ETOOBIG);
    free (data);

    //  EPOCH_END is [v, 50, rid, epoch]: a second number is an extra,
    //  not an end_seq; EPOCH_END_REPLY needs all three
    s_encode_sample (30, &sb);
    o = s_obj_uint (77);
    s_rebuild (sb.data, sb.size, -1, NULL, &o, 1, &bad);
    m = s_decode_ok (&bad, &up);
    assert_int_equal (m.u.epoch_end.epoch, 5);
    assert_int_equal (m.u.epoch_end.end_seq, 0);
    msgpack_sbuffer_clear (&sb);
    m = s_sample (31);
    m.u.epoch_end.end_seq = 0;
    assert_int_equal (wc_msg_encode (&m, &sb), 0);
    assert_int_equal ((uint8_t) sb.data [0], 0x96);      // end_seq 0 is sent

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
}


//  ---------------------------------------------------------------------
//  Encoder checks

static void
test_encode_refuses_bad_fields (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    assert_int_equal (msgpack_sbuffer_write (&sb, "prefix", 6), 0);
    wc_msg_t m;

    m = s_sample (0);
    m.u.req.key.len = 0;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    m.u.req.key.len = WC_MAX_KEY + 1;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    m = s_sample (0);
    m.u.req.value.len = WC_MAX_VALUE + 1;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    m.u.req.value.ptr = NULL;
    m.u.req.value.len = 3;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);

    m = s_sample (10);
    m.u.status.role = 0;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    m = s_sample (10);
    m.u.status.id.len = 0;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);

    m = s_sample (12);
    m.u.error.text.len = WC_MAX_TEXT + 1;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);

    m = s_sample (13);
    m.u.entry.seq = 0;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    m = s_sample (13);
    m.u.entry.op = 3;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    wc_entry_t e = s_sample_entry (WC_OP_DEL);
    e.value = s_bytes ("x");
    assert_int_equal (wc_entry_encode (&e, &sb), WALCAST_EINVAL);
    e = s_sample_entry (WC_OP_PUT);
    e.epoch = 0;
    assert_int_equal (wc_entry_encode (&e, &sb), WALCAST_EINVAL);

    memset (&m, 0, sizeof m);
    m.type = WC_MSG_ENTRIES;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    m.type = 99;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    assert_int_equal (wc_entries_encode_header (1, 1, WC_MAX_BATCH + 1, &sb),
                      WALCAST_EINVAL);

    //  PONG: identity with a bad role, an empty or long id, a long region
    m = s_sample (S_PONG_LONG);
    m.u.pong.role = 3;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    m = s_sample (S_PONG_LONG);
    m.u.pong.id.len = 0;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    m.u.pong.id.len = WC_MAX_ID + 1;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    m = s_sample (S_PONG_LONG);
    m.u.pong.region.len = WC_MAX_ID + 1;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    m = s_sample (S_GET_LONG);
    m.u.req.key.len = 0;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);

    //  node_info, in REGISTER, NODE_HEARTBEAT and on its own
    for (int k = 0; k < 7; k++) {
        wc_node_info_t n = s_sample_node (1);
        switch (k) {
            case 0: n.id.len = 0; break;
            case 1: n.id.len = WC_MAX_ID + 1; break;
            case 2: n.region.len = WC_MAX_ID + 1; break;
            case 3: n.role = 0; break;
            case 4: n.addr.len = 0; break;
            case 5: n.primary.len = WC_MAX_ADDR + 1; break;
            case 6: n.addr.ptr = NULL; break;
        }
        m = s_sample (S_REGISTER);
        m.u.node = n;
        assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
        m.type = WC_MSG_NODE_HEARTBEAT;
        assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
        assert_int_equal (wc_node_info_encode (&n, &sb), WALCAST_EINVAL);
    }
    //  TOPOLOGY has its own encoder, with a cap on the count
    memset (&m, 0, sizeof m);
    m.type = WC_MSG_TOPOLOGY;
    assert_int_equal (wc_msg_encode (&m, &sb), WALCAST_EINVAL);
    assert_int_equal (wc_topology_encode_header (1, 1, WC_MAX_NODES + 1, &sb),
                      WALCAST_EINVAL);

    //  Nothing was appended by any refused call
    assert_int_equal (sb.size, 6);
    msgpack_sbuffer_destroy (&sb);
}

//  Encoders append: several messages in one buffer decode one by one.
static void
test_encode_appends (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    wc_msg_t a = s_sample (3), b = s_sample (6);
    assert_int_equal (wc_msg_encode (&a, &sb), 0);
    size_t first = sb.size;
    assert_int_equal (wc_msg_encode (&b, &sb), 0);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;
    assert_int_equal (wc_msg_decode (sb.data, first, &up, &m), 0);
    assert_true (s_msg_equal (&a, &m));
    assert_int_equal (wc_msg_decode (sb.data + first, sb.size - first, &up, &m), 0);
    assert_true (s_msg_equal (&b, &m));
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_error_encode (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t m;

    assert_int_equal (wc_error_encode (5, WALCAST_ENOTPRIMARY, NULL,
                                       "127.0.0.1:7100", &sb), 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.type, WC_MSG_ERROR);
    assert_int_equal (m.rid, 5);
    assert_int_equal (wc_err_from_wire (m.u.error.code), WALCAST_ENOTPRIMARY);
    assert_true (s_bytes_equal (m.u.error.text,
                                s_bytes (walcast_strerror (WALCAST_ENOTPRIMARY))));
    assert_true (s_bytes_equal (m.u.error.detail, s_bytes ("127.0.0.1:7100")));

    //  NULL detail is empty; text over the limit is cut on a UTF-8 boundary
    char *text = malloc (WC_MAX_TEXT + 10);
    assert_non_null (text);
    memset (text, 'x', WC_MAX_TEXT + 9);
    text [WC_MAX_TEXT + 9] = 0;
    text [WC_MAX_TEXT - 1] = (char) 0xc3;       // "é" straddles the limit
    text [WC_MAX_TEXT] = (char) 0xa9;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_error_encode (0, WALCAST_EPROTO, text, NULL, &sb), 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.u.error.text.len, WC_MAX_TEXT - 1);
    assert_int_equal (m.u.error.detail.len, 0);
    assert_int_equal (m.rid, 0);
    free (text);

    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

//  WRITE_BATCH: a head and its writes decode back, each write checked on
//  its own; an empty batch, one over WC_MAX_WRITE_BATCH and a malformed
//  write are refused. WRITES_OK carries its refusal only when there is one.
static void
test_write_batch (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    assert_int_equal (wc_write_batch_encode_header (77, 2, 900, 3, &sb), 0);
    wc_write_t w [3] = {
        { WC_OP_PUT, s_bytes ("a"), s_bytes ("1") },
        { WC_OP_DEL, s_bytes ("b"), { NULL, 0 } },
        { WC_OP_PUT, s_bytes ("c"), { NULL, 0 } },
    };
    for (int i = 0; i < 3; i++)
        assert_int_equal (wc_write_encode (&w [i], &sb), 0);
    wc_msg_t m;
    assert_int_equal (s_decode_copy (sb.data, sb.size), 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.type, WC_MSG_WRITE_BATCH);
    assert_int_equal (m.rid, 77);
    assert_int_equal (m.u.batch.acks, 2);
    assert_int_equal (m.u.batch.ack_timeout_ms, 900);
    assert_int_equal (m.u.batch.count, 3);
    for (int i = 0; i < 3; i++) {
        wc_write_t got;
        assert_int_equal (wc_write_from_object (&m.u.batch.items [i], &got), 0);
        assert_int_equal (got.op, w [i].op);
        assert_true (s_bytes_equal (got.key, w [i].key));
        assert_true (s_bytes_equal (got.value, w [i].value));
    }
    //  no writes, too many: refused by the decoder
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_write_batch_encode_header (1, 0, 0, 0, &sb), WALCAST_EINVAL);
    msgpack_sbuffer_clear (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 6);
    msgpack_pack_uint8 (&pk, 1);
    msgpack_pack_uint8 (&pk, WC_MSG_WRITE_BATCH);
    msgpack_pack_uint8 (&pk, 1);
    msgpack_pack_uint8 (&pk, 0);
    msgpack_pack_uint8 (&pk, 0);
    size_t head = sb.size;
    msgpack_pack_array (&pk, 0);
    assert_int_not_equal (s_decode_copy (sb.data, sb.size), 0);
    sb.size = head;
    msgpack_pack_array (&pk, WC_MAX_WRITE_BATCH + 1);
    for (uint32_t i = 0; i < WC_MAX_WRITE_BATCH + 1; i++)
        assert_int_equal (wc_write_encode (&w [0], &sb), 0);
    assert_int_not_equal (s_decode_copy (sb.data, sb.size), 0);
    //  a write with op 3, a DEL with a value, an empty key: refused
    static const char *const bad [] = {
        "\x93\x03\xc4\x01k\xc0", "\x93\x02\xc4\x01k\xc4\x01v", "\x93\x01\xc4\x00\xc4\x00"
    };
    static const size_t bad_len [] = { 6, 8, 6 };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal (msgpack_unpack_next (&up, bad [i], bad_len [i], NULL),
                          MSGPACK_UNPACK_SUCCESS);
        wc_write_t got;
        assert_int_not_equal (wc_write_from_object (&up.data, &got), 0);
    }
    //  WRITES_OK: the refusal only when there is one
    wc_msg_t ok = { .type = WC_MSG_WRITES_OK, .rid = 5 };
    ok.u.writes_ok.epoch = 3;
    ok.u.writes_ok.first_seq = 100;
    ok.u.writes_ok.count = 10;
    ok.u.writes_ok.acked = 1;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&ok, &sb), 0);
    size_t plain = sb.size;
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.u.writes_ok.first_seq, 100);
    assert_int_equal (m.u.writes_ok.count, 10);
    assert_int_equal (m.u.writes_ok.acked, 1);
    assert_int_equal (m.u.writes_ok.code, 0);
    ok.u.writes_ok.code = 28;
    ok.u.writes_ok.text = s_bytes ("no space left");
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&ok, &sb), 0);
    assert_true (sb.size > plain);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.u.writes_ok.code, 28);
    assert_true (s_bytes_equal (m.u.writes_ok.text, s_bytes ("no space left")));
    assert_int_equal (m.u.writes_ok.wanted, 0);
    //  the acks the primary waited for, without a refusal: all three sent
    ok.u.writes_ok.code = 0;
    ok.u.writes_ok.text = (wc_bytes_t) { NULL, 0 };
    ok.u.writes_ok.wanted = 2;
    msgpack_sbuffer_clear (&sb);
    assert_int_equal (wc_msg_encode (&ok, &sb), 0);
    assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &m), 0);
    assert_int_equal (m.u.writes_ok.code, 0);
    assert_int_equal (m.u.writes_ok.wanted, 2);
    assert_int_equal (m.u.writes_ok.acked, 1);
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_type_names (void **state)
{
    (void) state;
    assert_string_equal (wc_msg_type_name (WC_MSG_PUT), "PUT");
    assert_string_equal (wc_msg_type_name (WC_MSG_STATUS_REPLY), "STATUS_REPLY");
    assert_string_equal (wc_msg_type_name (WC_MSG_ENTRIES), "ENTRIES");
    assert_string_equal (wc_msg_type_name (WC_MSG_REGISTER), "REGISTER");
    assert_string_equal (wc_msg_type_name (WC_MSG_NODE_HEARTBEAT), "NODE_HEARTBEAT");
    assert_string_equal (wc_msg_type_name (WC_MSG_TOPOLOGY_GET), "TOPOLOGY_GET");
    assert_string_equal (wc_msg_type_name (WC_MSG_TOPOLOGY), "TOPOLOGY");
    //  Issue 7's messages, by their numbers in PROTOCOL.md
    static const struct { int type; const char *name; } added [] = {
        { 7, "ACK" }, { 8, "SNAPSHOT" }, { 21, "SNAPSHOT_DONE" },
        { 50, "EPOCH_END" }, { 51, "EPOCH_END_REPLY" }, { 52, "SNAPSHOT_GET" },
        { 53, "SNAPSHOT_CHUNK" }, { 68, "PROMOTE" }, { 69, "FOLLOW" },
        { 70, "HANDOVER" }, { 71, "SWITCHOVER" }, { 72, "SWITCHOVER_DONE" },
        { 9, "WRITE_BATCH" }, { 22, "WRITES_OK" },     /* issue 8's */
        { 73, "FORGET" }                               /* 0.7 */
    };
    for (size_t i = 0; i < sizeof added / sizeof added [0]; i++)
        assert_string_equal (wc_msg_type_name (added [i].type), added [i].name);
    assert_string_equal (wc_msg_type_name (74), "UNKNOWN");
    assert_string_equal (wc_msg_type_name (0), "UNKNOWN");
    assert_string_equal (wc_msg_type_name (-1), "UNKNOWN");
    assert_string_equal (wc_msg_type_name (10), "UNKNOWN");
    assert_string_equal (wc_msg_type_name (54), "UNKNOWN");
}


//  ---------------------------------------------------------------------
//  Error codes

static const int s_codes [] = {
    WALCAST_OK, WALCAST_EINVAL, WALCAST_EPROTO, WALCAST_EVERSION,
    WALCAST_ETOOBIG, WALCAST_ENOTFOUND, WALCAST_ENOTPRIMARY, WALCAST_ETIMEOUT,
    WALCAST_EIO, WALCAST_ENOMEM, WALCAST_ERANGE, WALCAST_EUNAVAILABLE,
    WALCAST_EBUSY, WALCAST_ESTALE, WALCAST_ENOSPC, WALCAST_ECONFLICT,
    WALCAST_ENOTREPLICATED, WALCAST_EFEWREPLICAS, WALCAST_EFENCED, WALCAST_EPERM,
    WALCAST_EWRITE
};
#define S_NCODES (sizeof s_codes / sizeof s_codes [0])

static void
test_error_names (void **state)
{
    (void) state;
    for (size_t i = 0; i < S_NCODES; i++) {
        const char *name = walcast_errname (s_codes [i]);
        const char *msg = walcast_strerror (s_codes [i]);
        assert_string_not_equal (name, "EUNKNOWN");
        assert_string_not_equal (msg, "unknown error");
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal (name, walcast_errname (s_codes [j]));
            assert_string_not_equal (msg, walcast_strerror (s_codes [j]));
        }
    }
    assert_string_equal (walcast_errname (WALCAST_ENOTPRIMARY), "ENOTPRIMARY");
    assert_string_equal (walcast_errname (WALCAST_OK), "OK");
    assert_string_equal (walcast_errname (WALCAST_ESTALE), "ESTALE");
    assert_string_equal (walcast_errname (WALCAST_ENOSPC), "ENOSPC");
    assert_string_equal (walcast_errname (WALCAST_ENOTREPLICATED), "ENOTREPLICATED");
    assert_string_equal (walcast_errname (WALCAST_EFEWREPLICAS), "EFEWREPLICAS");
    assert_string_equal (walcast_errname (WALCAST_EFENCED), "EFENCED");
    assert_string_equal (walcast_errname (WALCAST_EPERM), "EPERM");
    assert_string_equal (walcast_errname (WALCAST_EWRITE), "EWRITE");
    assert_string_equal (walcast_errname (-21), "EUNKNOWN");
    assert_string_equal (walcast_errname (1), "EUNKNOWN");
    assert_string_equal (walcast_strerror (-1000), "unknown error");
}

static void
test_error_wire (void **state)
{
    (void) state;
    for (size_t i = 1; i < S_NCODES; i++) {
        uint32_t wire = wc_err_to_wire (s_codes [i]);
        assert_int_equal (wire, (uint32_t) -s_codes [i]);
        assert_int_equal (wc_err_from_wire (wire), s_codes [i]);
    }
    //  ESTALE is wire code 13 (docs/PROTOCOL.md)
    assert_int_equal (wc_err_to_wire (WALCAST_ESTALE), 13);
    assert_int_equal (wc_err_from_wire (13), WALCAST_ESTALE);
    //  Codes this build does not know are EPROTO, both ways
    assert_int_equal (wc_err_from_wire (0), WALCAST_EPROTO);
    assert_int_equal (wc_err_to_wire (WALCAST_ENOSPC), 14);
    //  ENOTREPLICATED, EFEWREPLICAS, EFENCED are 16, 17, 18 (PROTOCOL.md)
    assert_int_equal (wc_err_to_wire (WALCAST_ENOTREPLICATED), 16);
    assert_int_equal (wc_err_to_wire (WALCAST_EFEWREPLICAS), 17);
    assert_int_equal (wc_err_to_wire (WALCAST_EFENCED), 18);
    assert_int_equal (wc_err_from_wire (16), WALCAST_ENOTREPLICATED);
    assert_int_equal (wc_err_from_wire (18), WALCAST_EFENCED);
    //  EPERM is 19 (issue 9)
    assert_int_equal (wc_err_to_wire (WALCAST_EPERM), 19);
    assert_int_equal (wc_err_from_wire (19), WALCAST_EPERM);
    //  EWRITE is 20 (walcast 0.8)
    assert_int_equal (wc_err_to_wire (WALCAST_EWRITE), 20);
    assert_int_equal (wc_err_from_wire (20), WALCAST_EWRITE);
    assert_int_equal (wc_err_from_wire (21), WALCAST_EPROTO);
    assert_int_equal (wc_err_from_wire (1000), WALCAST_EPROTO);
    assert_int_equal (wc_err_from_wire (UINT64_MAX), WALCAST_EPROTO);
    assert_int_equal (wc_err_from_wire ((uint64_t) 1 << 32 | 6), WALCAST_EPROTO);
    assert_int_equal (wc_err_to_wire (WALCAST_OK), (uint32_t) -WALCAST_EPROTO);
    assert_int_equal (wc_err_to_wire (-999), (uint32_t) -WALCAST_EPROTO);
}


//  ---------------------------------------------------------------------
//  Fuzz: random bytes and mutated messages never crash, and whatever is
//  accepted is within limits and survives re-encoding.

static uint64_t s_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
s_rand (void)
{
    //  xorshift64*
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return s_rng * 0x2545f4914f6cdd1dULL;
}

//  Check an accepted message, then encode and decode it again.
static void
s_check_accepted (const wc_msg_t *m, const void *buf, size_t len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    wc_msg_t again;
    switch (m->type) {
        case WC_MSG_PUT:
            assert_true (m->u.req.key.len >= 1 && m->u.req.key.len <= WC_MAX_KEY);
            assert_true (m->u.req.value.len <= WC_MAX_VALUE);
            assert_true (m->u.req.ack_timeout_ms <= WC_MAX_ACK_TIMEOUT_MS);
            assert_true (s_inside (m->u.req.key, buf, len));
            assert_true (s_inside (m->u.req.value, buf, len));
            break;
        case WC_MSG_STATUS_REPLY:
            assert_true (s_inside (m->u.status.id, buf, len));
            assert_true (s_inside (m->u.status.primary, buf, len));
            break;
        case WC_MSG_ENTRY:
            assert_true (s_inside (m->u.entry.key, buf, len));
            assert_true (s_inside (m->u.entry.value, buf, len));
            break;
        case WC_MSG_GET:
            assert_true (m->u.req.wait_ms <= WC_MAX_WAIT_MS);
            break;
        case WC_MSG_DEL:
            assert_true (m->u.req.ack_timeout_ms <= WC_MAX_ACK_TIMEOUT_MS);
            assert_true (s_inside (m->u.req.key, buf, len));
            break;
        case WC_MSG_ACK:
            assert_true (m->u.ack.id.len >= 1 && m->u.ack.id.len <= WC_MAX_ID);
            assert_true (s_inside (m->u.ack.id, buf, len));
            break;
        case WC_MSG_SNAPSHOT_CHUNK:
            assert_true (m->u.snapshot_chunk.data.len <= WC_MAX_SNAPSHOT_CHUNK);
            assert_true (s_inside (m->u.snapshot_chunk.data, buf, len));
            break;
        case WC_MSG_PROMOTE:
            assert_true (m->u.promote.epoch >= 1);
            break;
        case WC_MSG_FOLLOW:
            assert_true (m->u.follow.primary.len >= 1
                         && m->u.follow.primary.len <= WC_MAX_ADDR);
            assert_true (s_inside (m->u.follow.primary, buf, len));
            break;
        case WC_MSG_HANDOVER:
            assert_true (m->u.handover.target_id.len <= WC_MAX_ID);
            assert_true (m->u.handover.target_addr.len <= WC_MAX_ADDR);
            assert_true (s_inside (m->u.handover.target_id, buf, len));
            assert_true (s_inside (m->u.handover.target_addr, buf, len));
            break;
        case WC_MSG_PONG:
            assert_true (m->u.pong.role == 0
                         || m->u.pong.role == WC_ROLE_PRIMARY
                         || m->u.pong.role == WC_ROLE_REPLICA);
            assert_true (m->u.pong.role == 0 || m->u.pong.id.len >= 1);
            assert_true (m->u.pong.id.len <= WC_MAX_ID);
            assert_true (m->u.pong.region.len <= WC_MAX_ID);
            assert_true (s_inside (m->u.pong.id, buf, len));
            assert_true (s_inside (m->u.pong.region, buf, len));
            break;
        case WC_MSG_REGISTER:
        case WC_MSG_NODE_HEARTBEAT:
            assert_true (s_inside (m->u.node.id, buf, len));
            assert_true (s_inside (m->u.node.addr, buf, len));
            assert_true (s_inside (m->u.node.primary, buf, len));
            break;
        default:
            break;
    }
    if (m->type == WC_MSG_TOPOLOGY) {
        assert_true (m->u.topology.count <= WC_MAX_NODES);
        for (uint32_t i = 0; i < m->u.topology.count; i++) {
            wc_node_info_t n;
            int rc = wc_node_info_from_object (&m->u.topology.items [i], &n);
            assert_true (rc == 0 || rc == WALCAST_EPROTO || rc == WALCAST_ETOOBIG);
            if (rc == 0) {
                assert_true (n.role == WC_ROLE_PRIMARY || n.role == WC_ROLE_REPLICA);
                assert_true (s_inside (n.id, buf, len));
                assert_true (s_inside (n.region, buf, len));
                assert_true (s_inside (n.addr, buf, len));
                assert_true (s_inside (n.primary, buf, len));
                assert_int_equal (wc_node_info_encode (&n, &sb), 0);
            }
        }
    }
    else
    if (m->type == WC_MSG_ENTRIES) {
        assert_true (m->u.entries.count <= WC_MAX_BATCH);
        for (uint32_t i = 0; i < m->u.entries.count; i++) {
            wc_entry_t e;
            int rc = wc_entry_from_object (&m->u.entries.items [i], &e);
            assert_true (rc == 0 || rc == WALCAST_EPROTO || rc == WALCAST_ETOOBIG);
            if (rc == 0) {
                assert_true (s_inside (e.key, buf, len));
                assert_int_equal (wc_entry_encode (&e, &sb), 0);
            }
        }
    }
    else {
        assert_int_equal (wc_msg_encode (m, &sb), 0);
        assert_int_equal (wc_msg_decode (sb.data, sb.size, &up, &again), 0);
        assert_true (s_msg_equal (m, &again));
    }
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}

//  Decode a heap copy of buf; the result must be a decoder error or a
//  message that passes s_check_accepted.
static void
s_fuzz_one (const uint8_t *buf, size_t len, msgpack_unpacked *up)
{
    uint8_t *copy = malloc (len ? len : 1);
    assert_non_null (copy);
    if (len)
        memcpy (copy, buf, len);
    wc_msg_t m;
    int rc = wc_msg_decode (copy, len, up, &m);
    if (rc == 0)
        s_check_accepted (&m, copy, len);
    else
    if (rc != WALCAST_EPROTO && rc != WALCAST_EVERSION && rc != WALCAST_ETOOBIG)
        fail_msg ("decode returned %s", walcast_errname (rc));
    wc_entry_t e;
    rc = wc_entry_decode (copy, len, up, &e);
    assert_true (rc == 0 || rc == WALCAST_EPROTO || rc == WALCAST_ETOOBIG);
    free (copy);
}

static void
test_fuzz_random_bytes (void **state)
{
    (void) state;
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    uint8_t buf [64];
    for (int iter = 0; iter < 100000; iter++) {
        size_t len = (size_t) (s_rand () % sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf [i] = (uint8_t) s_rand ();
        //  Half of them look like a version 1 message of a known type, so
        //  the field decoders see random fields too.
        if (len >= 3 && (iter & 1)) {
            static const uint8_t types [] = { 1, 2, 3, 4, 5, 6, 7, 8, 16,
                                              17, 18, 19, 20, 21, 31, 32,
                                              33, 48, 49, 50, 51, 52, 53,
                                              64, 65, 66, 67, 68, 69, 70,
                                              71, 72 };
            buf [0] = (uint8_t) (0x92 + s_rand () % 10);
            buf [1] = 0x01;
            buf [2] = types [s_rand () % sizeof types];
        }
        s_fuzz_one (buf, len, &up);
    }
    msgpack_unpacked_destroy (&up);
}

static void
test_fuzz_mutations (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    static const uint8_t interesting [] = {
        0x00, 0x01, 0x7f, 0x80, 0x90, 0x9f, 0xa0, 0xc0, 0xc1, 0xc2, 0xc3,
        0xc4, 0xc6, 0xca, 0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd4, 0xd8, 0xd9,
        0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff
    };
    uint8_t buf [256];
    for (int iter = 0; iter < 100000; iter++) {
        s_encode_sample ((int) (s_rand () % S_NSAMPLES), &sb);
        size_t len = sb.size < sizeof buf ? sb.size : sizeof buf;
        memcpy (buf, sb.data, len);
        int edits = 1 + (int) (s_rand () % 4);
        for (int k = 0; k < edits && len > 0; k++) {
            size_t at = (size_t) (s_rand () % len);
            switch (s_rand () % 5) {
                case 0:         // random byte
                    buf [at] = (uint8_t) s_rand ();
                    break;
                case 1:         // interesting byte
                    buf [at] = interesting [s_rand () % sizeof interesting];
                    break;
                case 2:         // flip a bit
                    buf [at] ^= (uint8_t) (1u << (s_rand () % 8));
                    break;
                case 3:         // cut
                    len = at;
                    break;
                case 4:         // insert a byte
                    if (len < sizeof buf) {
                        memmove (buf + at + 1, buf + at, len - at);
                        buf [at] = interesting [s_rand () % sizeof interesting];
                        len++;
                    }
                    break;
            }
        }
        s_fuzz_one (buf, len, &up);
    }
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}


//  ---------------------------------------------------------------------
//  Addresses: the HOST:PORT grammar (protocol/addr.c)

static bool
s_addr (const char *addr, int max_port)
{
    return wc_addr_check (addr, strlen (addr), max_port, NULL);
}

static void
test_addr_grammar (void **state)
{
    (void) state;
    int port = 0;
    assert_true (wc_addr_check ("127.0.0.1:7100", 14, 65533, &port));
    assert_int_equal (port, 7100);
    assert_true (s_addr ("node-1.eu_west.example:65533", 65533));
    assert_true (s_addr ("[::1]:7000", 65535));
    assert_true (s_addr ("[2001:db8::7]:1", 65535));
    assert_true (s_addr ("h:65535", 65535));
    //  What broke every client of the broker (issue 6), and its cousins
    const char *bad [] = {
        "nocolon", "127.0.0.1:0", ":99999", "a b:5", ":5", "host:", "host:07",
        "host:65536", "host:1x", "::1:7000", "[::1]7000", "[]:7", "[x::1]:7",
        "ho\nst:5", "host:5 ", "tcp://host:5", "host:-5", "[::1:7000"
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        if (s_addr (bad [i], 65535))
            fail_msg ("'%s' was accepted", bad [i]);
    assert_false (s_addr ("h:65534", 65533));       //  no room for P+1, P+2
    assert_false (wc_addr_check ("a\0b:5", 5, 65535, NULL));
    char long_host [300];
    memset (long_host, 'a', sizeof long_host);
    snprintf (long_host + 251, 49, ":7000");          //  256 octets
    assert_false (s_addr (long_host, 65535));
    long_host [245] = '\0';
    assert_true (s_addr (strcat (long_host, ":7000"), 65535));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_roundtrip_every_message),
        cmocka_unit_test (test_decode_borrows_input),
        cmocka_unit_test (test_entry_roundtrip),
        cmocka_unit_test (test_entry_raw_matches_encoded),
        cmocka_unit_test (test_golden_samples),
        cmocka_unit_test (test_golden_variants),
        cmocka_unit_test (test_golden_length_forms),
        cmocka_unit_test (test_golden_protocol_examples),
        cmocka_unit_test (test_golden_protocol_examples_issue7),
        cmocka_unit_test (test_limits_exactly),
        cmocka_unit_test (test_limits_fit_sockets),
        cmocka_unit_test (test_truncated_at_every_length),
        cmocka_unit_test (test_trailing_bytes),
        cmocka_unit_test (test_wrong_type_in_every_field),
        cmocka_unit_test (test_bad_values),
        cmocka_unit_test (test_oversize_fields),
        cmocka_unit_test (test_types_before_limits),
        cmocka_unit_test (test_version_and_type),
        cmocka_unit_test (test_not_an_array),
        cmocka_unit_test (test_hostile_shapes),
        cmocka_unit_test (test_extra_elements_accepted),
        cmocka_unit_test (test_status_flags),
        cmocka_unit_test (test_entries_with_bad_item),
        cmocka_unit_test (test_old_forms_unchanged),
        cmocka_unit_test (test_optional_fields_partial),
        cmocka_unit_test (test_cluster_fields),
        cmocka_unit_test (test_get_and_pong_values),
        cmocka_unit_test (test_node_info_fields),
        cmocka_unit_test (test_topology_with_bad_item),
        cmocka_unit_test (test_acks_old_forms_unchanged),
        cmocka_unit_test (test_acks_fields),
        cmocka_unit_test (test_node_info_flags),
        cmocka_unit_test (test_curve_keys),
        cmocka_unit_test (test_issue7_values),
        cmocka_unit_test (test_broker_limits_exactly),
        cmocka_unit_test (test_failed_decode_keeps_rid),
        cmocka_unit_test (test_readable_rid),
        cmocka_unit_test (test_encode_refuses_bad_fields),
        cmocka_unit_test (test_encode_appends),
        cmocka_unit_test (test_error_encode),
        cmocka_unit_test (test_write_batch),
        cmocka_unit_test (test_type_names),
        cmocka_unit_test (test_error_names),
        cmocka_unit_test (test_error_wire),
        cmocka_unit_test (test_addr_grammar),
        cmocka_unit_test (test_fuzz_random_bytes),
        cmocka_unit_test (test_fuzz_mutations),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
