/*  scan.c - a fast reader of the canonical entry encodings (see scan.h).

    Each reader takes one msgpack object off the front of the bytes and
    insists on the shortest form for its value, which is what msgpack-c's
    packer writes: a positive fixint below 128, else the smallest uint
    format that holds the value; bin8 below 256 bytes, then bin16, bin32;
    a fixarray below 16 elements, then array16, array32. Whatever breaks
    a rule makes the scan give up (WALCAST_EPROTO): the codec, which
    accepts every valid form, has the last word.
*/
#include <string.h>
#include "scan.h"

/*  A read position in a byte buffer. */
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} s_in_t;

/*  The n bytes at p, big-endian; n is 1, 2, 4 or 8 (s_take's callers). */
static uint64_t
s_be (const uint8_t *p, int n)
{
    switch (n) {
        case 1: return p [0];
        case 2: return (uint64_t) p [0] << 8 | p [1];
        case 4: return (uint64_t) p [0] << 24 | (uint64_t) p [1] << 16
                     | (uint64_t) p [2] << 8 | p [3];
        default: return (uint64_t) p [0] << 56 | (uint64_t) p [1] << 48
                      | (uint64_t) p [2] << 40 | (uint64_t) p [3] << 32
                      | (uint64_t) p [4] << 24 | (uint64_t) p [5] << 16
                      | (uint64_t) p [6] << 8  | p [7];
    }
}

/*  Read n bytes of big-endian length or value after a one-byte tag. */
static bool
s_take (s_in_t *in, int n, uint64_t *v)
{
    if (in->end - in->p < 1 + n)
        return false;
    *v = s_be (in->p + 1, n);
    in->p += 1 + n;
    return true;
}

/*  An unsigned integer in its shortest form. */
static bool
s_uint (s_in_t *in, uint64_t *v)
{
    if (in->p >= in->end)
        return false;
    uint8_t tag = *in->p;
    if (tag < 0x80) {
        *v = tag;
        in->p++;
        return true;
    }
    switch (tag) {
        case 0xcc: return s_take (in, 1, v) && *v >= 0x80;
        case 0xcd: return s_take (in, 2, v) && *v > 0xff;
        case 0xce: return s_take (in, 4, v) && *v > 0xffff;
        case 0xcf: return s_take (in, 8, v) && *v > 0xffffffffu;
        default:   return false;
    }
}

/*  An array head in its shortest form. */
static bool
s_array (s_in_t *in, uint64_t *n)
{
    if (in->p >= in->end)
        return false;
    uint8_t tag = *in->p;
    if ((tag & 0xf0) == 0x90) {
        *n = tag & 0x0f;
        in->p++;
        return true;
    }
    if (tag == 0xdc)
        return s_take (in, 2, n) && *n >= 16;
    if (tag == 0xdd)
        return s_take (in, 4, n) && *n > 0xffff;
    return false;
}

/*  A bin in its shortest form, of at most max bytes; borrowed. */
static bool
s_bin (s_in_t *in, uint32_t max, wc_bytes_t *out)
{
    if (in->p >= in->end)
        return false;
    uint64_t len;
    bool ok;
    switch (*in->p) {
        case 0xc4: ok = s_take (in, 1, &len); break;
        case 0xc5: ok = s_take (in, 2, &len) && len > 0xff; break;
        case 0xc6: ok = s_take (in, 4, &len) && len > 0xffff; break;
        default:   return false;
    }
    if (!ok || len > max || (uint64_t) (in->end - in->p) < len)
        return false;
    out->ptr = len ? in->p : NULL;
    out->len = (uint32_t) len;
    in->p += len;
    return true;
}

/*  The body of an entry after its array head: the fields, their limits
    and the value's presence exactly as codec.c's entry table has them. */
/*  op, key, value|nil: the tail an entry and a write share (a PUT has a
    bin value, a DEL nil; the key is 1..WC_MAX_KEY octets). */
static bool
s_op_key_value (s_in_t *in, uint8_t *op_out, wc_bytes_t *key, wc_bytes_t *value)
{
    uint64_t op;
    if (!s_uint (in, &op) || (op != WC_OP_PUT && op != WC_OP_DEL)
    ||  !s_bin (in, WC_MAX_KEY, key) || key->len < 1)
        return false;
    *op_out = (uint8_t) op;
    *value = (wc_bytes_t) { NULL, 0 };
    if (op == WC_OP_PUT)
        return s_bin (in, WC_MAX_VALUE, value);
    if (in->p >= in->end || *in->p != 0xc0)
        return false;
    in->p++;
    return true;
}

static bool
s_entry_fields (s_in_t *in, wc_entry_t *entry)
{
    return s_uint (in, &entry->seq) && entry->seq >= 1
        && s_uint (in, &entry->epoch) && entry->epoch >= 1
        && s_uint (in, &entry->ts_ms)
        && s_op_key_value (in, &entry->op, &entry->key, &entry->value);
}

int
wc_scan_entry (const uint8_t *buf, size_t len, wc_entry_t *entry, size_t *used)
{
    memset (entry, 0, sizeof *entry);
    s_in_t in = { buf, buf + len };
    if (len == 0 || *buf != 0x96)       /* fixarray of 6 */
        return WALCAST_EPROTO;
    in.p++;
    if (!s_entry_fields (&in, entry)) {
        memset (entry, 0, sizeof *entry);
        return WALCAST_EPROTO;
    }
    *used = (size_t) (in.p - buf);
    return 0;
}

int
wc_scan_entries (const void *buf, size_t len, wc_scan_entries_t *cursor)
{
    memset (cursor, 0, sizeof *cursor);
    s_in_t in = { (const uint8_t *) buf, (const uint8_t *) buf + len };
    uint64_t n;
    if (len < 3 || in.p [0] < 0x95 || in.p [0] > 0x98
    ||  in.p [1] != WC_PROTOCOL_VERSION || in.p [2] != WC_MSG_ENTRIES)
        return WALCAST_EPROTO;
    cursor->trailer = (uint8_t) (in.p [0] - 0x95);
    in.p += 3;
    if (!s_uint (&in, &cursor->rid) || !s_uint (&in, &cursor->last_seq)
    ||  !s_array (&in, &n) || n > WC_MAX_BATCH)
        return WALCAST_EPROTO;
    cursor->buf = (const uint8_t *) buf;
    cursor->len = len;
    cursor->pos = (size_t) (in.p - cursor->buf);
    cursor->count = (uint32_t) n;
    return 0;
}

int
wc_scan_entries_next (wc_scan_entries_t *cursor, wc_entry_t *entry,
                      const uint8_t **raw, size_t *raw_len)
{
    if (cursor->read == cursor->count) {
        if (cursor->trailer) {          /* applied_us (cluster, flags), once */
            s_in_t in = { cursor->buf + cursor->pos, cursor->buf + cursor->len };
            if (!s_uint (&in, &cursor->applied_us)
            ||  (cursor->trailer >= 2 && !s_uint (&in, &cursor->cluster))
            ||  (cursor->trailer == 3 && !s_uint (&in, &cursor->flags)))
                return WALCAST_EPROTO;
            cursor->pos = (size_t) (in.p - cursor->buf);
            cursor->trailer = 0;
        }
        return cursor->pos == cursor->len ? 0 : WALCAST_EPROTO;
    }
    size_t used;
    const uint8_t *at = cursor->buf + cursor->pos;
    if (wc_scan_entry (at, cursor->len - cursor->pos, entry, &used) != 0)
        return WALCAST_EPROTO;
    *raw = at;
    *raw_len = used;
    cursor->pos += used;
    cursor->read++;
    return 1;
}

/*  A single ENTRY in canonical form: [version, ENTRY, entry]. */
static bool
s_single_fast (wc_scan_body_t *body)
{
    const uint8_t *d = body->data;
    size_t used;
    if (body->len < 4 || d [0] != 0x93 || d [1] != WC_PROTOCOL_VERSION
    ||  d [2] != WC_MSG_ENTRY
    ||  wc_scan_entry (d + 3, body->len - 3, &body->single, &used) != 0
    ||  used != body->len - 3)
        return false;
    body->type = WC_MSG_ENTRY;
    body->single_at = 3;
    return true;
}

/*  An ENTRIES body canonical from end to end: its head, every entry,
    and nothing after the last. Checked whole before any entry is handed
    over, so a body is either read entirely by the scan or entirely by
    the codec, and a malformed one gives nothing. The entries the check
    reads go into keep when they fit (cap of them), so that they are not
    read again. */
static bool
s_entries_fast (wc_scan_body_t *body, wc_scan_kept_t *keep, uint32_t cap)
{
    wc_scan_entries_t check;
    if (wc_scan_entries (body->data, body->len, &body->cursor) != 0)
        return false;
    check = body->cursor;
    if (!keep || check.count > cap)
        keep = NULL;
    wc_entry_t entry;
    const uint8_t *raw;
    size_t raw_len;
    int rc;
    uint32_t n = 0;                     /* never more than count, so <= cap */
    while ((rc = wc_scan_entries_next (&check, keep ? &keep [n].entry : &entry,
                                       &raw, &raw_len)) == 1)
        if (keep) {
            keep [n].raw = raw;
            keep [n].raw_len = raw_len;
            n++;
        }
    body->applied_us = check.applied_us;
    body->cluster = check.cluster;
    body->flags = check.flags;
    if (rc == 0 && keep)
        body->kept = keep;
    return rc == 0;
}

int
wc_scan_body (wc_scan_body_t *body, const void *data, size_t len,
              msgpack_unpacked *storage, wc_msg_t *msg)
{
    return wc_scan_body_keep (body, data, len, storage, msg, NULL, 0);
}

int
wc_scan_body_keep (wc_scan_body_t *body, const void *data, size_t len,
                   msgpack_unpacked *storage, wc_msg_t *msg,
                   wc_scan_kept_t *keep, uint32_t cap)
{
    memset (body, 0, sizeof *body);
    body->data = (const uint8_t *) data;
    body->len = len;
    body->storage = storage;
    if (s_entries_fast (body, keep, cap)) {
        body->type = WC_MSG_ENTRIES;
        body->rid = body->cursor.rid;
        body->last_seq = body->cursor.last_seq;
        body->count = body->cursor.count;
        return 0;
    }
    if (s_single_fast (body)) {
        body->last_seq = body->single.seq;
        body->count = 1;
        return 0;
    }
    int rc = wc_msg_decode (data, len, storage, msg);
    if (rc)
        return rc;
    body->slow = true;
    body->type = msg->type;
    body->rid = msg->rid;
    if (msg->type == WC_MSG_ENTRY) {
        body->single = msg->u.entry;
        body->last_seq = msg->u.entry.seq;
        body->count = 1;
        return 0;
    }
    if (msg->type != WC_MSG_ENTRIES)
        return 1;
    body->last_seq = msg->u.entries.last_seq;
    body->count = msg->u.entries.count;
    body->items = msg->u.entries.items;
    body->applied_us = msg->u.entries.applied_us;
    body->cluster = msg->u.entries.cluster;
    body->flags = msg->u.entries.flags;
    return 0;
}

int
wc_scan_body_next (wc_scan_body_t *body, wc_entry_t *entry,
                   const uint8_t **raw, size_t *raw_len)
{
    *raw = NULL;
    *raw_len = 0;
    if (body->type == WC_MSG_ENTRY) {
        if (body->single_read)
            return 0;
        body->single_read = true;
        *entry = body->single;
        if (!body->slow) {
            *raw = body->data + body->single_at;
            *raw_len = body->len - body->single_at;
        }
        return 1;
    }
    if (body->kept) {
        if (body->next == body->count)
            return 0;
        const wc_scan_kept_t *kept = &body->kept [body->next++];
        *entry = kept->entry;
        *raw = kept->raw;
        *raw_len = kept->raw_len;
        return 1;
    }
    if (!body->slow)
        return wc_scan_entries_next (&body->cursor, entry, raw, raw_len);
    if (body->next == body->count)
        return 0;
    if (wc_entry_from_object (&body->items [body->next++], entry) != 0)
        return WALCAST_EPROTO;
    return 1;
}

/*  Write v big-endian in n octets at out. */
static uint8_t *
s_put_be (uint8_t *out, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out [i] = (uint8_t) v;
        v >>= 8;
    }
    return out + n;
}

/*  An unsigned int in its shortest form. */
static uint8_t *
s_put_uint (uint8_t *out, uint64_t v)
{
    if (v < 0x80) {
        *out = (uint8_t) v;
        return out + 1;
    }
    if (v <= 0xff) {
        *out = 0xcc;
        return s_put_be (out + 1, v, 1);
    }
    if (v <= 0xffff) {
        *out = 0xcd;
        return s_put_be (out + 1, v, 2);
    }
    if (v <= 0xffffffffu) {
        *out = 0xce;
        return s_put_be (out + 1, v, 4);
    }
    *out = 0xcf;
    return s_put_be (out + 1, v, 8);
}

/*  A bin in its shortest form. */
static uint8_t *
s_put_bin (uint8_t *out, const wc_bytes_t *bytes)
{
    uint32_t len = bytes->len;
    if (len <= 0xff) {
        *out = 0xc4;
        out = s_put_be (out + 1, len, 1);
    }
    else
    if (len <= 0xffff) {
        *out = 0xc5;
        out = s_put_be (out + 1, len, 2);
    }
    else {
        *out = 0xc6;
        out = s_put_be (out + 1, len, 4);
    }
    if (len)
        memcpy (out, bytes->ptr, len);
    return out + len;
}

size_t
wc_scan_write_entry (uint8_t *out, const wc_entry_t *entry)
{
    uint8_t *p = out;
    *p++ = 0x96;
    p = s_put_uint (p, entry->seq);
    p = s_put_uint (p, entry->epoch);
    p = s_put_uint (p, entry->ts_ms);
    p = s_put_uint (p, entry->op);
    p = s_put_bin (p, &entry->key);
    if (entry->op == WC_OP_PUT)
        p = s_put_bin (p, &entry->value);
    else
        *p++ = 0xc0;
    return (size_t) (p - out);
}

bool
wc_scan_body_whole (const wc_scan_body_t *body)
{
    return !body->slow;
}

/*  One write [op, key, value|nil] in canonical form, as codec.c's write
    table has it. */
static bool
s_write (s_in_t *in, wc_write_t *write)
{
    if (in->p >= in->end || *in->p != 0x93)
        return false;
    in->p++;
    return s_op_key_value (in, &write->op, &write->key, &write->value);
}

/*  The head of a WRITE_BATCH: [version, 9, rid, acks, ack_timeout_ms,
    array of 1..WC_MAX_WRITE_BATCH]. */
static bool
s_write_batch_head (s_in_t *in, wc_scan_writes_t *cursor)
{
    uint64_t acks, timeout, n;
    if (in->end - in->p < 3 || in->p [0] != 0x96 || in->p [1] != WC_PROTOCOL_VERSION
    ||  in->p [2] != WC_MSG_WRITE_BATCH)
        return false;
    in->p += 3;
    if (!s_uint (in, &cursor->rid) || !s_uint (in, &acks) || acks > WC_ACKS_ALL
    ||  !s_uint (in, &timeout) || timeout > UINT32_MAX
    ||  !s_array (in, &n) || n < 1 || n > WC_MAX_WRITE_BATCH)
        return false;
    cursor->acks = (uint8_t) acks;
    cursor->ack_timeout_ms = timeout > WC_MAX_ACK_TIMEOUT_MS ? WC_MAX_ACK_TIMEOUT_MS
                                                             : (uint32_t) timeout;
    cursor->count = (uint32_t) n;
    return true;
}

int
wc_scan_writes_begin (const void *buf, size_t len, wc_scan_writes_t *cursor)
{
    memset (cursor, 0, sizeof *cursor);
    s_in_t in = { (const uint8_t *) buf, (const uint8_t *) buf + len };
    if (!s_write_batch_head (&in, cursor))
        return WALCAST_EPROTO;
    cursor->buf = (const uint8_t *) buf;
    cursor->len = len;
    cursor->pos = (size_t) (in.p - cursor->buf);
    return 0;
}

int
wc_scan_write_batch (const void *buf, size_t len, wc_scan_writes_t *cursor)
{
    if (wc_scan_writes_begin (buf, len, cursor) != 0)
        return WALCAST_EPROTO;
    s_in_t in = { cursor->buf + cursor->pos, cursor->buf + len };
    wc_write_t write;
    for (uint32_t i = 0; i < cursor->count; i++)
        if (!s_write (&in, &write))
            return WALCAST_EPROTO;
    return in.p == in.end ? 0 : WALCAST_EPROTO;
}

int
wc_scan_writes_next (wc_scan_writes_t *cursor, wc_write_t *write)
{
    if (cursor->read == cursor->count)
        return 0;
    s_in_t in = { cursor->buf + cursor->pos, cursor->buf + cursor->len };
    if (!s_write (&in, write))
        return WALCAST_EPROTO;
    cursor->pos = (size_t) (in.p - cursor->buf);
    cursor->read++;
    return 1;
}
