/*  fuzz_codec.c - libFuzzer target: the message codec and the scan.

    Every input is handed to every reader of network bytes, as a node,
    a broker or a client would: wc_msg_decode (and, for the lists it
    leaves to the caller, wc_entry_from_object, wc_write_from_object,
    wc_node_info_from_object), wc_entry_decode, and the fast scan's
    wc_scan_entry, wc_scan_entries, wc_scan_write_batch and wc_scan_body
    (with and without room to keep the entries it checked).
    None may crash, read out of bounds or hit undefined behaviour.

    Beyond not crashing, the properties the node relies on are checked:
    - the scan never accepts what the codec refuses, and reads what it
      accepts exactly as the codec does (entries, ENTRIES bodies,
      WRITE_BATCH bodies, stream bodies); an entry it accepts is
      canonical, the very bytes wc_entry_encode and wc_scan_write_entry
      write;
    - whatever the codec accepts, it can encode again, and decoding that
      encoding gives the same message: encode (decode (encode (m))) ==
      encode (m) byte for byte, whatever form the input took.
*/
#include <stdlib.h>
#include <string.h>
#include "codec.h"
#include "scan.h"
#include "common.h"

//  --------------------------------------------------------------------
//  Comparing what two readers made of the same bytes

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

static bool
s_write_equal (const wc_write_t *a, const wc_write_t *b)
{
    return a->op == b->op && s_bytes_equal (a->key, b->key)
        && s_bytes_equal (a->value, b->value);
}

//  An entry the scan accepted (its bytes at raw, used of them): the codec
//  reads those bytes the same way, and both writers write exactly them.
static void
s_check_scanned_entry (const uint8_t *raw, size_t used, const wc_entry_t *fast)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_entry_t slow;
    fz_check (wc_entry_decode (raw, used, &storage, &slow) == 0,
              "the scan accepted an entry the codec refuses");
    fz_check (s_entry_equal (fast, &slow), "the scan and the codec read an entry differently");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    fz_check (wc_entry_encode (fast, &buf) == 0, "a scanned entry does not encode");
    fz_check (buf.size == used && memcmp (buf.data, raw, used) == 0,
              "a scanned entry is not what wc_entry_encode writes");
    uint8_t *out = malloc (WC_SCAN_ENTRY_OVERHEAD + fast->key.len + fast->value.len);
    fz_check (out != NULL, "out of memory");
    fz_check (wc_scan_write_entry (out, fast) == used && memcmp (out, raw, used) == 0,
              "a scanned entry is not what wc_scan_write_entry writes");
    free (out);
    msgpack_sbuffer_destroy (&buf);
    msgpack_unpacked_destroy (&storage);
}


//  --------------------------------------------------------------------
//  The codec: decode, check the items, encode again

//  The items of a list message, checked as their consumer checks them:
//  0 when every one is valid.
static int
s_check_items (const wc_msg_t *msg)
{
    int rc = 0;
    if (msg->type == WC_MSG_ENTRIES)
        for (uint32_t i = 0; i < msg->u.entries.count && rc == 0; i++) {
            wc_entry_t entry;
            rc = wc_entry_from_object (&msg->u.entries.items [i], &entry);
        }
    if (msg->type == WC_MSG_WRITE_BATCH)
        for (uint32_t i = 0; i < msg->u.batch.count && rc == 0; i++) {
            wc_write_t write;
            rc = wc_write_from_object (&msg->u.batch.items [i], &write);
        }
    if (msg->type == WC_MSG_TOPOLOGY)
        for (uint32_t i = 0; i < msg->u.topology.count && rc == 0; i++) {
            wc_node_info_t info;
            rc = wc_node_info_from_object (&msg->u.topology.items [i], &info);
            char text [64];
            if (rc == 0)
                wc_bytes_printable (text, sizeof text, &info.id);
        }
    return rc;
}

//  Append the encoding of a decoded message whose items are valid to
//  out, the list messages through their header and item encoders.
static int
s_encode (const wc_msg_t *msg, msgpack_sbuffer *out)
{
    int rc = 0;
    if (msg->type == WC_MSG_ENTRIES) {
        //  applied_us (cluster, flags) go out as a stream message does (rid 0)
        bool stream = msg->u.entries.applied_us != 0 && msg->rid == 0;
        rc = stream ? wc_entries_encode_stream_header (msg->u.entries.last_seq,
                                                       msg->u.entries.count,
                                                       msg->u.entries.cluster,
                                                       msg->u.entries.flags, out)
                    : wc_entries_encode_header (msg->rid, msg->u.entries.last_seq,
                                                msg->u.entries.count, out);
        for (uint32_t i = 0; i < msg->u.entries.count && rc == 0; i++) {
            wc_entry_t entry;
            rc = wc_entry_from_object (&msg->u.entries.items [i], &entry);
            if (rc == 0)
                rc = wc_entry_encode (&entry, out);
        }
        if (rc == 0 && stream)
            rc = wc_entries_encode_trailer (msg->u.entries.applied_us,
                                            msg->u.entries.cluster,
                                            msg->u.entries.flags, out);
        return rc;
    }
    if (msg->type == WC_MSG_WRITE_BATCH) {
        rc = wc_write_batch_encode_header (msg->rid, msg->u.batch.acks,
                                           msg->u.batch.ack_timeout_ms,
                                           msg->u.batch.count, out);
        for (uint32_t i = 0; i < msg->u.batch.count && rc == 0; i++) {
            wc_write_t write;
            rc = wc_write_from_object (&msg->u.batch.items [i], &write);
            if (rc == 0)
                rc = wc_write_encode (&write, out);
        }
        return rc;
    }
    if (msg->type == WC_MSG_TOPOLOGY) {
        rc = wc_topology_encode_header (msg->rid, msg->u.topology.version,
                                        msg->u.topology.count, out);
        for (uint32_t i = 0; i < msg->u.topology.count && rc == 0; i++) {
            wc_node_info_t info;
            rc = wc_node_info_from_object (&msg->u.topology.items [i], &info);
            if (rc == 0)
                rc = wc_node_info_encode (&info, out);
        }
        return rc;
    }
    return wc_msg_encode (msg, out);
}

//  A message the codec took (items valid): its encoding decodes to a
//  message that encodes to the same bytes.
static void
s_check_round_trip (const wc_msg_t *msg)
{
    msgpack_sbuffer first, second;
    msgpack_sbuffer_init (&first);
    msgpack_sbuffer_init (&second);
    fz_check (s_encode (msg, &first) == 0, "a decoded message does not encode");
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_msg_t again;
    fz_check (wc_msg_decode (first.data, first.size, &storage, &again) == 0,
              "the encoding of a decoded message does not decode");
    fz_check (again.type == msg->type && again.rid == msg->rid,
              "a round trip changed the type or the rid");
    fz_check (msg->type != WC_MSG_ENTRIES || msg->rid != 0
              || (again.u.entries.applied_us == msg->u.entries.applied_us
                  && (msg->u.entries.applied_us == 0
                      || (again.u.entries.cluster == msg->u.entries.cluster
                          && again.u.entries.flags == msg->u.entries.flags))),
              "a round trip changed a stream ENTRIES' applied_us, cluster or flags");
    fz_check (s_encode (&again, &second) == 0, "a round trip does not encode");
    fz_check (first.size == second.size && memcmp (first.data, second.data, first.size) == 0,
              "a round trip changed the message");
    msgpack_unpacked_destroy (&storage);
    msgpack_sbuffer_destroy (&second);
    msgpack_sbuffer_destroy (&first);
}

//  The codec on the whole input, as a message; returns its result, with
//  the message in msg (valid while storage lives).
static int
s_fuzz_msg (const uint8_t *data, size_t size, msgpack_unpacked *storage, wc_msg_t *msg)
{
    int rc = wc_msg_decode (data, size, storage, msg);
    fz_check (wc_msg_type_name (msg->type) != NULL, "no name for a type");
    if (rc == 0 && s_check_items (msg) == 0)
        s_check_round_trip (msg);
    if (rc == 0 && msg->type == WC_MSG_ERROR) {
        char text [WC_MAX_TEXT + 1];
        wc_bytes_printable (text, sizeof text, &msg->u.error.text);
        fz_check (strlen (text) <= msg->u.error.text.len, "printable text grew");
    }
    return rc;
}


//  --------------------------------------------------------------------
//  The scan, against the codec

//  A bare entry, as the WAL stores it.
static void
s_fuzz_entry (const uint8_t *data, size_t size)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_entry_t slow, fast;
    int slow_rc = wc_entry_decode (data, size, &storage, &slow);
    size_t used = 0;
    if (wc_scan_entry (data, size, &fast, &used) == 0) {
        fz_check (used >= 1 && used <= size, "the scan used bytes it was not given");
        s_check_scanned_entry (data, used, &fast);
        if (used == size)
            fz_check (slow_rc == 0 && s_entry_equal (&fast, &slow),
                      "the scan took a whole entry the codec reads otherwise");
    }
    msgpack_unpacked_destroy (&storage);
}

//  An ENTRIES body read by cursor: every entry it gives is valid and
//  canonical; when it reads the body to its exact end, the codec reads
//  the same body the same way (msg, rc: what the codec made of it).
static void
s_fuzz_entries (const uint8_t *data, size_t size, int rc, const wc_msg_t *msg)
{
    wc_scan_entries_t cursor;
    if (wc_scan_entries (data, size, &cursor) != 0)
        return;
    bool whole = rc == 0 && msg->type == WC_MSG_ENTRIES;
    fz_check (!whole || (msg->rid == cursor.rid && msg->u.entries.last_seq == cursor.last_seq
                         && msg->u.entries.count == cursor.count),
              "the scan and the codec read an ENTRIES head differently");
    wc_entry_t entry;
    const uint8_t *raw;
    size_t raw_len;
    int next;
    uint32_t i = 0;
    while ((next = wc_scan_entries_next (&cursor, &entry, &raw, &raw_len)) == 1) {
        fz_check (raw >= data && raw + raw_len <= data + size, "an entry outside the body");
        s_check_scanned_entry (raw, raw_len, &entry);
        if (whole) {
            wc_entry_t slow;
            fz_check (wc_entry_from_object (&msg->u.entries.items [i], &slow) == 0
                      && s_entry_equal (&entry, &slow),
                      "the scan and the codec read an ENTRIES item differently");
        }
        i++;
    }
    fz_check (next == 0 || next == WALCAST_EPROTO, "wc_scan_entries_next: unknown result");
    if (next == 0)
        fz_check (whole && i == cursor.count
                  && cursor.applied_us == msg->u.entries.applied_us
                  && cursor.cluster == msg->u.entries.cluster
                  && cursor.flags == msg->u.entries.flags,
                  "the scan read an ENTRIES body whole that the codec refuses "
                  "or reads otherwise");
}

//  A WRITE_BATCH body: when the scan checks it whole, the codec takes it
//  and reads every write the same way, and the cursor cannot fail.
static void
s_fuzz_write_batch (const uint8_t *data, size_t size, int rc, const wc_msg_t *msg)
{
    wc_scan_writes_t cursor;
    if (wc_scan_write_batch (data, size, &cursor) != 0)
        return;
    fz_check (rc == 0 && msg->type == WC_MSG_WRITE_BATCH,
              "the scan took a WRITE_BATCH the codec refuses");
    fz_check (msg->rid == cursor.rid && msg->u.batch.acks == cursor.acks
              && msg->u.batch.ack_timeout_ms == cursor.ack_timeout_ms
              && msg->u.batch.count == cursor.count,
              "the scan and the codec read a WRITE_BATCH head differently");
    fz_check (wc_scan_writes_begin (data, size, &cursor) == 0,
              "a checked WRITE_BATCH does not begin");
    wc_write_t fast, slow;
    uint32_t i = 0;
    int next;
    while ((next = wc_scan_writes_next (&cursor, &fast)) == 1) {
        fz_check (i < msg->u.batch.count, "the scan read more writes than the batch holds");
        fz_check (wc_write_from_object (&msg->u.batch.items [i], &slow) == 0
                  && s_write_equal (&fast, &slow),
                  "the scan and the codec read a write differently");
        i++;
    }
    fz_check (next == 0 && i == cursor.count, "a checked WRITE_BATCH failed to read");
}

//  A stream or catch-up body, as a replica opens it: the entries it
//  gives are those the codec gives, whichever reader it picked.
static void
s_fuzz_body (const uint8_t *data, size_t size, int rc, const wc_msg_t *msg,
             wc_scan_kept_t *keep, uint32_t cap)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_scan_body_t body;
    wc_msg_t other;
    int opened = wc_scan_body_keep (&body, data, size, &storage, &other, keep, cap);
    if (rc != 0) {
        fz_check (opened == rc, "wc_scan_body took a body the codec refuses");
        msgpack_unpacked_destroy (&storage);
        return;
    }
    bool entries = msg->type == WC_MSG_ENTRY || msg->type == WC_MSG_ENTRIES;
    fz_check (opened == (entries ? 0 : 1), "wc_scan_body and the codec disagree on the type");
    if (opened == 0) {
        fz_check (body.type == msg->type, "wc_scan_body read another type");
        fz_check (msg->type != WC_MSG_ENTRIES
                  || (body.applied_us == msg->u.entries.applied_us
                      && body.cluster == msg->u.entries.cluster
                      && body.flags == msg->u.entries.flags),
                  "wc_scan_body read another applied_us, cluster or flags");
        wc_entry_t entry;
        const uint8_t *raw;
        size_t raw_len;
        uint32_t i = 0;
        int next;
        while ((next = wc_scan_body_next (&body, &entry, &raw, &raw_len)) == 1) {
            wc_entry_t slow = msg->u.entry;
            int item = msg->type == WC_MSG_ENTRY ? 0
                     : wc_entry_from_object (&msg->u.entries.items [i], &slow);
            fz_check (item == 0 && s_entry_equal (&entry, &slow),
                      "wc_scan_body gave an entry the codec reads otherwise");
            if (raw)
                s_check_scanned_entry (raw, raw_len, &entry);
            i++;
        }
        fz_check (next != 0 || i == body.count, "wc_scan_body ended early");
        fz_check (next == 0 || !wc_scan_body_whole (&body),
                  "a body checked whole failed while reading");
    }
    msgpack_unpacked_destroy (&storage);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_msg_t msg;
    int rc = s_fuzz_msg (data, size, &storage, &msg);
    s_fuzz_entries (data, size, rc, &msg);
    s_fuzz_write_batch (data, size, rc, &msg);
    //  as a replica reads it: with room to keep the entries (a body of
    //  up to 16), and read twice
    static wc_scan_kept_t keep [16];
    s_fuzz_body (data, size, rc, &msg, keep, 16);
    s_fuzz_body (data, size, rc, &msg, NULL, 0);
    s_fuzz_entry (data, size);
    msgpack_unpacked_destroy (&storage);
    return 0;
}
