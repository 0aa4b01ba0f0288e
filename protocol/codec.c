/*  codec.c - walcast messages and WAL entries <-> msgpack (see codec.h).

    Encoding is straight-line: one msgpack_packer over the caller's
    sbuffer, every msgpack_pack_* result checked, and on failure the buffer
    is cut back to where it was, so a failed append leaves no half message.

    Decoding happens in two passes over the bytes:
    1. s_scan walks the msgpack structure without building anything. It
       finds where the object ends (truncated input and trailing bytes are
       malformed) and checks that every array or map count fits in the
       bytes that remain (each element takes at least one byte), and that
       containers nest at most S_MAX_DEPTH deep. msgpack-c allocates
       count * sizeof (msgpack_object) as soon as it reads an array
       header, so without this a 5-byte message could ask it for 96 GB;
       with it, the unpacker's memory stays proportional to the input.
    2. msgpack_unpack_next builds the object tree in the caller's
       msgpack_unpacked. In msgpack-c 4.0.0 (src/unpack.c,
       template_callback_str/bin) str and bin objects point into the input
       buffer and are never copied, which is what lets wc_bytes_t borrow.
    Then each message's fields are checked one by one: type first, then
    value and limit. Unsigned integers must be msgpack positive integers
    (negative integers and floats are malformed).
    Optional trailing fields (GET's consistency fields, PONG's identity)
    are checked like the others when present and zero when absent; the
    encoder leaves them out when they are all zero, so older peers see
    the exact bytes they always did.

    On a failed decode msg->type and msg->rid hold whatever could be read
    before the failure (0 otherwise), so a node can still address an ERROR
    reply to the request.
*/
#include <string.h>
#include "codec.h"

//  ---------------------------------------------------------------------
//  Message type names

typedef struct {
    int         type;
    const char *name;
} s_type_name_t;

static const s_type_name_t s_type_names [] = {
    { WC_MSG_PUT,          "PUT" },
    { WC_MSG_DEL,          "DEL" },
    { WC_MSG_GET,          "GET" },
    { WC_MSG_PING,         "PING" },
    { WC_MSG_STATUS,       "STATUS" },
    { WC_MSG_DIGEST,       "DIGEST" },
    { WC_MSG_WRITE_OK,     "WRITE_OK" },
    { WC_MSG_VALUE,        "VALUE" },
    { WC_MSG_PONG,         "PONG" },
    { WC_MSG_STATUS_REPLY, "STATUS_REPLY" },
    { WC_MSG_DIGEST_REPLY, "DIGEST_REPLY" },
    { WC_MSG_ERROR,        "ERROR" },
    { WC_MSG_ENTRY,        "ENTRY" },
    { WC_MSG_HEARTBEAT,    "HEARTBEAT" },
    { WC_MSG_FETCH,        "FETCH" },
    { WC_MSG_ENTRIES,      "ENTRIES" },
    { WC_MSG_REGISTER,     "REGISTER" },
    { WC_MSG_NODE_HEARTBEAT, "NODE_HEARTBEAT" },
    { WC_MSG_TOPOLOGY_GET, "TOPOLOGY_GET" },
    { WC_MSG_TOPOLOGY,     "TOPOLOGY" }
};

//  Name of a message type this build knows, or NULL.
static const char *
s_type_name (uint64_t type)
{
    for (size_t i = 0; i < sizeof s_type_names / sizeof s_type_names [0]; i++)
        if ((uint64_t) s_type_names [i].type == type)
            return s_type_names [i].name;
    return NULL;
}

const char *
wc_msg_type_name (int type)
{
    const char *name = type < 0 ? NULL : s_type_name ((uint64_t) type);
    return name ? name : "UNKNOWN";
}


//  ---------------------------------------------------------------------
//  Structural scan (pass 1 of decoding)

//  Read an n-byte big-endian length at buf [*pos]; false when the input
//  ends first.
static bool
s_read_be (const uint8_t *buf, size_t len, size_t *pos, int n, uint64_t *value)
{
    if (len - *pos < (size_t) n)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | buf [*pos + (size_t) i];
    *pos += (size_t) n;
    *value = v;
    return true;
}

//  Containers nested deeper than this are malformed. msgpack-c stops at 32
//  (MSGPACK_EMBED_STACK_SIZE) and reports it as out of memory; stopping
//  first keeps that code for real allocation failures. walcast messages
//  nest three deep (ENTRIES, its list, an entry; TOPOLOGY, its list, a
//  node_info).
#define S_MAX_DEPTH 16

//  Walk one msgpack object at buf [0..len) without building it. Returns
//  the number of bytes it spans, or 0 when it is truncated, uses the
//  reserved byte 0xc1, nests deeper than S_MAX_DEPTH, or declares more
//  container elements than there are bytes left. left [d] counts the
//  elements still to read at depth d; pending is their sum.
static size_t
s_scan (const uint8_t *buf, size_t len)
{
    uint64_t left [S_MAX_DEPTH + 1];
    int depth = 0;
    left [0] = 1;
    uint64_t pending = 1;
    size_t pos = 0;
    while (pending > 0) {
        while (left [depth] == 0)
            depth--;            // this container is complete
        if (pos >= len)
            return 0;
        uint8_t b = buf [pos++];
        uint64_t skip = 0;      // payload bytes after the header
        uint64_t items = 0;     // elements a container adds
        uint64_t n = 0;
        if (b <= 0x7f || b >= 0xe0)
            ;                                   // fixint
        else
        if (b <= 0x8f)
            items = 2 * (uint64_t) (b & 0x0f);  // fixmap
        else
        if (b <= 0x9f)
            items = b & 0x0f;                   // fixarray
        else
        if (b <= 0xbf)
            skip = b & 0x1f;                    // fixstr
        else {
            bool ok = true;
            switch (b) {
                case 0xc0: case 0xc2: case 0xc3:            // nil, false, true
                    break;
                case 0xc4: case 0xd9:                       // bin8, str8
                    ok = s_read_be (buf, len, &pos, 1, &skip);
                    break;
                case 0xc5: case 0xda:                       // bin16, str16
                    ok = s_read_be (buf, len, &pos, 2, &skip);
                    break;
                case 0xc6: case 0xdb:                       // bin32, str32
                    ok = s_read_be (buf, len, &pos, 4, &skip);
                    break;
                case 0xc7:                                  // ext8
                    ok = s_read_be (buf, len, &pos, 1, &n);
                    skip = n + 1;
                    break;
                case 0xc8:                                  // ext16
                    ok = s_read_be (buf, len, &pos, 2, &n);
                    skip = n + 1;
                    break;
                case 0xc9:                                  // ext32
                    ok = s_read_be (buf, len, &pos, 4, &n);
                    skip = n + 1;
                    break;
                case 0xcc: case 0xd0: skip = 1; break;      // uint8, int8
                case 0xcd: case 0xd1: skip = 2; break;
                case 0xca: case 0xce: case 0xd2: skip = 4; break;
                case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
                case 0xd4: skip = 2; break;                 // fixext 1..16
                case 0xd5: skip = 3; break;
                case 0xd6: skip = 5; break;
                case 0xd7: skip = 9; break;
                case 0xd8: skip = 17; break;
                case 0xdc:                                  // array16
                    ok = s_read_be (buf, len, &pos, 2, &items);
                    break;
                case 0xdd:                                  // array32
                    ok = s_read_be (buf, len, &pos, 4, &items);
                    break;
                case 0xde:                                  // map16
                    ok = s_read_be (buf, len, &pos, 2, &n);
                    items = 2 * n;
                    break;
                case 0xdf:                                  // map32
                    ok = s_read_be (buf, len, &pos, 4, &n);
                    items = 2 * n;
                    break;
                default:                                    // 0xc1, reserved
                    ok = false;
                    break;
            }
            if (!ok)
                return 0;
        }
        if (skip > len - pos)
            return 0;
        pos += (size_t) skip;
        left [depth]--;
        pending--;
        if (items > 0) {
            if (depth == S_MAX_DEPTH)
                return 0;
            left [++depth] = items;
            pending += items;
            if (pending > len - pos)
                return 0;       // each element takes at least one byte
        }
    }
    return pos;
}

//  Pass 1 and 2: check the size and shape of buf, then unpack it into
//  storage. Returns 0, WALCAST_ETOOBIG, WALCAST_EPROTO or WALCAST_ENOMEM.
static int
s_unpack (const void *buf, size_t len, msgpack_unpacked *storage)
{
    if (len > WC_MAX_MESSAGE)
        return WALCAST_ETOOBIG;
    if (buf == NULL || len == 0 || s_scan ((const uint8_t *) buf, len) != len)
        return WALCAST_EPROTO;
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (storage, (const char *) buf,
                                                    len, &off);
    if (rc == MSGPACK_UNPACK_NOMEM_ERROR)
        return WALCAST_ENOMEM;
    if (rc != MSGPACK_UNPACK_SUCCESS || off != len)
        return WALCAST_EPROTO;
    return 0;
}


//  ---------------------------------------------------------------------
//  Field decoders (after both passes)

//  An unsigned integer: a msgpack positive integer, nothing else.
static int
s_get_uint (const msgpack_object *obj, uint64_t *value)
{
    if (obj->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return WALCAST_EPROTO;
    *value = obj->via.u64;
    return 0;
}

//  A byte string of min..max bytes, sent as str or bin. Borrowed.
static int
s_get_bytes (const msgpack_object *obj, uint32_t min, uint32_t max,
             wc_bytes_t *bytes)
{
    if (obj->type == MSGPACK_OBJECT_BIN) {
        bytes->ptr = (const uint8_t *) obj->via.bin.ptr;
        bytes->len = obj->via.bin.size;
    }
    else
    if (obj->type == MSGPACK_OBJECT_STR) {
        bytes->ptr = (const uint8_t *) obj->via.str.ptr;
        bytes->len = obj->via.str.size;
    }
    else
        return WALCAST_EPROTO;
    if (bytes->len < min)
        return WALCAST_EPROTO;
    if (bytes->len > max)
        return WALCAST_ETOOBIG;
    return 0;
}

//  Like s_get_bytes, but nil is accepted as the empty string.
static int
s_get_bytes_or_nil (const msgpack_object *obj, uint32_t max, wc_bytes_t *bytes)
{
    if (obj->type == MSGPACK_OBJECT_NIL) {
        bytes->ptr = NULL;
        bytes->len = 0;
        return 0;
    }
    return s_get_bytes (obj, 0, max, bytes);
}

//  Check and convert one entry array [seq, epoch, ts_ms, op, key, value].
int
wc_entry_from_object (const msgpack_object *obj, wc_entry_t *entry)
{
    memset (entry, 0, sizeof *entry);
    if (obj->type != MSGPACK_OBJECT_ARRAY || obj->via.array.size < 6)
        return WALCAST_EPROTO;
    const msgpack_object *f = obj->via.array.ptr;
    uint64_t op = 0;
    int rc;
    if ((rc = s_get_uint (&f [0], &entry->seq))
    ||  (rc = s_get_uint (&f [1], &entry->epoch))
    ||  (rc = s_get_uint (&f [2], &entry->ts_ms))
    ||  (rc = s_get_uint (&f [3], &op)))
        return rc;
    if (entry->seq == 0 || entry->epoch == 0)
        return WALCAST_EPROTO;
    if (op != WC_OP_PUT && op != WC_OP_DEL)
        return WALCAST_EPROTO;
    entry->op = (uint8_t) op;
    if ((rc = s_get_bytes (&f [4], 1, WC_MAX_KEY, &entry->key)))
        return rc;
    if (op == WC_OP_PUT)
        rc = s_get_bytes (&f [5], 0, WC_MAX_VALUE, &entry->value);
    else {
        rc = s_get_bytes_or_nil (&f [5], WC_MAX_VALUE, &entry->value);
        if (rc == 0 && entry->value.len > 0)
            rc = WALCAST_EPROTO;        // a delete carries no value
    }
    return rc;
}

//  A uint that must fit 32 bits.
static int
s_get_uint32 (const msgpack_object *obj, uint32_t *value)
{
    uint64_t v = 0;
    int rc = s_get_uint (obj, &v);
    if (rc)
        return rc;
    if (v > UINT32_MAX)
        return WALCAST_EPROTO;
    *value = (uint32_t) v;
    return 0;
}

//  A role: WC_ROLE_PRIMARY or WC_ROLE_REPLICA.
static int
s_get_role (const msgpack_object *obj, uint8_t *role)
{
    uint64_t v = 0;
    int rc = s_get_uint (obj, &v);
    if (rc)
        return rc;
    if (v != WC_ROLE_PRIMARY && v != WC_ROLE_REPLICA)
        return WALCAST_EPROTO;
    *role = (uint8_t) v;
    return 0;
}

//  Check and convert one node_info array [id, region, role, epoch,
//  applied_seq, addr, primary, lag, lag_ms, up, silent_ms].
int
wc_node_info_from_object (const msgpack_object *obj, wc_node_info_t *info)
{
    memset (info, 0, sizeof *info);
    if (obj->type != MSGPACK_OBJECT_ARRAY || obj->via.array.size < 11)
        return WALCAST_EPROTO;
    const msgpack_object *f = obj->via.array.ptr;
    int rc;
    if ((rc = s_get_bytes (&f [0], 1, WC_MAX_ID, &info->id))
    ||  (rc = s_get_bytes (&f [1], 0, WC_MAX_ID, &info->region))
    ||  (rc = s_get_role (&f [2], &info->role))
    ||  (rc = s_get_uint (&f [3], &info->epoch))
    ||  (rc = s_get_uint (&f [4], &info->applied_seq))
    ||  (rc = s_get_bytes (&f [5], 1, WC_MAX_ADDR, &info->addr))
    ||  (rc = s_get_bytes (&f [6], 0, WC_MAX_ADDR, &info->primary))
    ||  (rc = s_get_uint (&f [7], &info->lag))
    ||  (rc = s_get_uint (&f [8], &info->lag_ms)))
        return rc;
    if (f [9].type != MSGPACK_OBJECT_BOOLEAN)
        return WALCAST_EPROTO;
    info->up = f [9].via.boolean;
    return s_get_uint (&f [10], &info->silent_ms);
}

//  Fields after [version, type] of each message, checked in wire order.
//  f points at the version; n is the array size, already >= 2.
static int
s_decode_body (const msgpack_object *f, uint32_t n, wc_msg_t *msg)
{
    int rc = 0;
    //  Every message but ENTRY and HEARTBEAT has its rid third.
    if (msg->type != WC_MSG_ENTRY && msg->type != WC_MSG_HEARTBEAT) {
        if (n < 3)
            return WALCAST_EPROTO;
        if ((rc = s_get_uint (&f [2], &msg->rid)))
            return rc;
    }
    uint64_t v = 0;
    switch (msg->type) {
        case WC_MSG_PUT:
            if (n < 5)
                return WALCAST_EPROTO;
            if ((rc = s_get_bytes (&f [3], 1, WC_MAX_KEY, &msg->u.req.key)))
                return rc;
            return s_get_bytes (&f [4], 0, WC_MAX_VALUE, &msg->u.req.value);

        case WC_MSG_DEL:
            if (n < 4)
                return WALCAST_EPROTO;
            return s_get_bytes (&f [3], 1, WC_MAX_KEY, &msg->u.req.key);

        case WC_MSG_GET:
            //  min_seq, max_staleness_ms and wait_ms are each optional
            //  (trailing): an absent one is 0.
            if (n < 4)
                return WALCAST_EPROTO;
            if ((rc = s_get_bytes (&f [3], 1, WC_MAX_KEY, &msg->u.req.key)))
                return rc;
            if (n > 4 && (rc = s_get_uint (&f [4], &msg->u.req.min_seq)))
                return rc;
            if (n > 5
            &&  (rc = s_get_uint32 (&f [5], &msg->u.req.max_staleness_ms)))
                return rc;
            if (n > 6 && (rc = s_get_uint32 (&f [6], &msg->u.req.wait_ms)))
                return rc;
            //  Clamp, not refuse: a long wait is a request, not an error.
            if (msg->u.req.wait_ms > WC_MAX_WAIT_MS)
                msg->u.req.wait_ms = WC_MAX_WAIT_MS;
            return 0;

        case WC_MSG_PING:
        case WC_MSG_STATUS:
        case WC_MSG_DIGEST:
            return 0;

        case WC_MSG_WRITE_OK:
            if (n < 5)
                return WALCAST_EPROTO;
            if ((rc = s_get_uint (&f [3], &msg->u.write_ok.epoch)))
                return rc;
            return s_get_uint (&f [4], &msg->u.write_ok.seq);

        case WC_MSG_VALUE:
            if (n < 6)
                return WALCAST_EPROTO;
            if (f [3].type != MSGPACK_OBJECT_BOOLEAN)
                return WALCAST_EPROTO;
            msg->u.value.found = f [3].via.boolean;
            if (msg->u.value.found)
                rc = s_get_bytes (&f [4], 0, WC_MAX_VALUE, &msg->u.value.value);
            else {
                rc = s_get_bytes_or_nil (&f [4], WC_MAX_VALUE, &msg->u.value.value);
                if (rc == 0 && msg->u.value.value.len > 0)
                    rc = WALCAST_EPROTO;    // not found has no value
            }
            if (rc)
                return rc;
            return s_get_uint (&f [5], &msg->u.value.seq);

        case WC_MSG_PONG:
            if (n < 6)
                return WALCAST_EPROTO;
            if ((rc = s_get_uint (&f [3], &msg->u.pong.epoch))
            ||  (rc = s_get_uint (&f [4], &msg->u.pong.seq))
            ||  (rc = s_get_uint (&f [5], &msg->u.pong.clock_ms)))
                return rc;
            //  The identity (role, id, region, lag_ms) is optional, but
            //  all or nothing: a PONG from an older node has none of it.
            if (n == 6)
                return 0;
            if (n < 10)
                return WALCAST_EPROTO;
            if ((rc = s_get_role (&f [6], &msg->u.pong.role))
            ||  (rc = s_get_bytes (&f [7], 1, WC_MAX_ID, &msg->u.pong.id))
            ||  (rc = s_get_bytes (&f [8], 0, WC_MAX_ID, &msg->u.pong.region)))
                return rc;
            return s_get_uint (&f [9], &msg->u.pong.lag_ms);

        case WC_MSG_STATUS_REPLY:
            if (n < 11)
                return WALCAST_EPROTO;
            if ((rc = s_get_bytes (&f [3], 1, WC_MAX_ID, &msg->u.status.id))
            ||  (rc = s_get_bytes (&f [4], 0, WC_MAX_ID, &msg->u.status.region))
            ||  (rc = s_get_role (&f [5], &msg->u.status.role))
            ||  (rc = s_get_uint (&f [6], &msg->u.status.epoch))
            ||  (rc = s_get_uint (&f [7], &msg->u.status.applied_seq))
            ||  (rc = s_get_bytes (&f [8], 0, WC_MAX_ADDR, &msg->u.status.primary))
            ||  (rc = s_get_uint (&f [9], &msg->u.status.primary_seq)))
                return rc;
            return s_get_uint (&f [10], &msg->u.status.lag_ms);

        case WC_MSG_DIGEST_REPLY:
            if (n < 5)
                return WALCAST_EPROTO;
            if ((rc = s_get_uint (&f [3], &msg->u.digest.seq)))
                return rc;
            return s_get_uint (&f [4], &msg->u.digest.hash);

        case WC_MSG_ERROR:
            if (n < 6)
                return WALCAST_EPROTO;
            if ((rc = s_get_uint (&f [3], &v)))
                return rc;
            if (v > UINT32_MAX)
                return WALCAST_EPROTO;
            msg->u.error.code = (uint32_t) v;
            if ((rc = s_get_bytes (&f [4], 0, WC_MAX_TEXT, &msg->u.error.text)))
                return rc;
            return s_get_bytes (&f [5], 0, WC_MAX_TEXT, &msg->u.error.detail);

        case WC_MSG_ENTRY:
            if (n < 3)
                return WALCAST_EPROTO;
            return wc_entry_from_object (&f [2], &msg->u.entry);

        case WC_MSG_HEARTBEAT:
            if (n < 5)
                return WALCAST_EPROTO;
            if ((rc = s_get_uint (&f [2], &msg->u.heartbeat.epoch))
            ||  (rc = s_get_uint (&f [3], &msg->u.heartbeat.last_seq)))
                return rc;
            return s_get_uint (&f [4], &msg->u.heartbeat.clock_ms);

        case WC_MSG_FETCH:
            if (n < 5)
                return WALCAST_EPROTO;
            if ((rc = s_get_uint (&f [3], &msg->u.fetch.from_seq))
            ||  (rc = s_get_uint (&f [4], &v)))
                return rc;
            //  Saturate: the server clamps to WC_MAX_FETCH_BYTES anyway.
            msg->u.fetch.max_bytes = v > UINT32_MAX ? UINT32_MAX : (uint32_t) v;
            return 0;

        case WC_MSG_ENTRIES:
            if (n < 5)
                return WALCAST_EPROTO;
            if ((rc = s_get_uint (&f [3], &msg->u.entries.last_seq)))
                return rc;
            if (f [4].type != MSGPACK_OBJECT_ARRAY)
                return WALCAST_EPROTO;
            if (f [4].via.array.size > WC_MAX_BATCH)
                return WALCAST_ETOOBIG;
            msg->u.entries.count = f [4].via.array.size;
            msg->u.entries.items = f [4].via.array.ptr;
            return 0;

        case WC_MSG_REGISTER:
        case WC_MSG_NODE_HEARTBEAT:
            if (n < 4)
                return WALCAST_EPROTO;
            return wc_node_info_from_object (&f [3], &msg->u.node);

        case WC_MSG_TOPOLOGY_GET:
            return 0;

        case WC_MSG_TOPOLOGY:
            if (n < 5)
                return WALCAST_EPROTO;
            if ((rc = s_get_uint (&f [3], &msg->u.topology.version)))
                return rc;
            if (f [4].type != MSGPACK_OBJECT_ARRAY)
                return WALCAST_EPROTO;
            if (f [4].via.array.size > WC_MAX_NODES)
                return WALCAST_ETOOBIG;
            msg->u.topology.count = f [4].via.array.size;
            msg->u.topology.items = f [4].via.array.ptr;
            return 0;

        default:
            return WALCAST_EPROTO;
    }
}

//  Decode one whole message: shape, version, type, then the fields.
int
wc_msg_decode (const void *buf, size_t len, msgpack_unpacked *storage,
               wc_msg_t *msg)
{
    memset (msg, 0, sizeof *msg);
    int rc = s_unpack (buf, len, storage);
    if (rc)
        return rc;
    const msgpack_object *top = &storage->data;
    if (top->type != MSGPACK_OBJECT_ARRAY || top->via.array.size < 1)
        return WALCAST_EPROTO;
    const msgpack_object *f = top->via.array.ptr;
    uint32_t n = top->via.array.size;
    uint64_t version = 0;
    if ((rc = s_get_uint (&f [0], &version)))
        return rc;
    if (version != WC_PROTOCOL_VERSION)
        return WALCAST_EVERSION;

    uint64_t type = 0;
    if (n < 2 || (rc = s_get_uint (&f [1], &type)))
        return WALCAST_EPROTO;
    if (s_type_name (type) == NULL)
        return WALCAST_EPROTO;
    msg->type = (int) type;
    return s_decode_body (f, n, msg);
}

int
wc_entry_decode (const void *buf, size_t len, msgpack_unpacked *storage,
                 wc_entry_t *entry)
{
    memset (entry, 0, sizeof *entry);
    int rc = s_unpack (buf, len, storage);
    if (rc)
        return rc;
    return wc_entry_from_object (&storage->data, entry);
}


//  ---------------------------------------------------------------------
//  Encoding

//  A byte string the caller gave us: min..max bytes, and a pointer
//  whenever there are bytes.
static bool
s_bytes_ok (const wc_bytes_t *bytes, uint32_t min, uint32_t max)
{
    return bytes->len >= min && bytes->len <= max
        && (bytes->len == 0 || bytes->ptr != NULL);
}

static bool
s_entry_ok (const wc_entry_t *entry)
{
    return entry->seq >= 1 && entry->epoch >= 1
        && (entry->op == WC_OP_PUT
            || (entry->op == WC_OP_DEL && entry->value.len == 0))
        && s_bytes_ok (&entry->key, 1, WC_MAX_KEY)
        && s_bytes_ok (&entry->value, 0, WC_MAX_VALUE);
}

static bool
s_pack_bin (msgpack_packer *pk, const wc_bytes_t *bytes)
{
    return msgpack_pack_bin (pk, bytes->len) == 0
        && (bytes->len == 0
            || msgpack_pack_bin_body (pk, bytes->ptr, bytes->len) == 0);
}

static bool
s_pack_str (msgpack_packer *pk, const void *ptr, size_t len)
{
    return msgpack_pack_str (pk, len) == 0
        && (len == 0 || msgpack_pack_str_body (pk, ptr, len) == 0);
}

//  [version, type, and the first of n - 2 fields follow]
static bool
s_pack_head (msgpack_packer *pk, uint32_t n, int type)
{
    return msgpack_pack_array (pk, n) == 0
        && msgpack_pack_uint8 (pk, WC_PROTOCOL_VERSION) == 0
        && msgpack_pack_uint8 (pk, (uint8_t) type) == 0;
}

static bool
s_node_info_ok (const wc_node_info_t *info)
{
    return s_bytes_ok (&info->id, 1, WC_MAX_ID)
        && s_bytes_ok (&info->region, 0, WC_MAX_ID)
        && (info->role == WC_ROLE_PRIMARY || info->role == WC_ROLE_REPLICA)
        && s_bytes_ok (&info->addr, 1, WC_MAX_ADDR)
        && s_bytes_ok (&info->primary, 0, WC_MAX_ADDR);
}

//  [id, region, role, epoch, applied_seq, addr, primary, lag, lag_ms, up,
//   silent_ms]
static bool
s_pack_node_info (msgpack_packer *pk, const wc_node_info_t *info)
{
    return msgpack_pack_array (pk, 11) == 0
        && s_pack_str (pk, info->id.ptr, info->id.len)
        && s_pack_str (pk, info->region.ptr, info->region.len)
        && msgpack_pack_uint8 (pk, info->role) == 0
        && msgpack_pack_uint64 (pk, info->epoch) == 0
        && msgpack_pack_uint64 (pk, info->applied_seq) == 0
        && s_pack_str (pk, info->addr.ptr, info->addr.len)
        && s_pack_str (pk, info->primary.ptr, info->primary.len)
        && msgpack_pack_uint64 (pk, info->lag) == 0
        && msgpack_pack_uint64 (pk, info->lag_ms) == 0
        && (info->up ? msgpack_pack_true (pk) : msgpack_pack_false (pk)) == 0
        && msgpack_pack_uint64 (pk, info->silent_ms) == 0;
}

//  [seq, epoch, ts_ms, op, key, value|nil]
static bool
s_pack_entry (msgpack_packer *pk, const wc_entry_t *entry)
{
    return msgpack_pack_array (pk, 6) == 0
        && msgpack_pack_uint64 (pk, entry->seq) == 0
        && msgpack_pack_uint64 (pk, entry->epoch) == 0
        && msgpack_pack_uint64 (pk, entry->ts_ms) == 0
        && msgpack_pack_uint8 (pk, entry->op) == 0
        && s_pack_bin (pk, &entry->key)
        && (entry->op == WC_OP_DEL
            ? msgpack_pack_nil (pk) == 0
            : s_pack_bin (pk, &entry->value));
}

//  Close an append: on failure cut out back to its size before the append.
static int
s_finish (bool ok, msgpack_sbuffer *out, size_t start)
{
    if (ok)
        return 0;
    if (out->size > start)
        out->size = start;
    return WALCAST_ENOMEM;
}

//  Check the fields against the limits, then pack the message.
int
wc_msg_encode (const wc_msg_t *msg, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    size_t start = out->size;
    bool ok = false;

    switch (msg->type) {
        case WC_MSG_PUT:
            if (!s_bytes_ok (&msg->u.req.key, 1, WC_MAX_KEY)
            ||  !s_bytes_ok (&msg->u.req.value, 0, WC_MAX_VALUE))
                return WALCAST_EINVAL;
            ok = s_pack_head (&pk, 5, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0
              && s_pack_bin (&pk, &msg->u.req.key)
              && s_pack_bin (&pk, &msg->u.req.value);
            break;

        case WC_MSG_DEL:
            if (!s_bytes_ok (&msg->u.req.key, 1, WC_MAX_KEY))
                return WALCAST_EINVAL;
            ok = s_pack_head (&pk, 4, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0
              && s_pack_bin (&pk, &msg->u.req.key);
            break;

        case WC_MSG_GET: {
            //  The consistency fields go out only when one is set, so a
            //  plain GET stays the 4-element form older nodes read.
            if (!s_bytes_ok (&msg->u.req.key, 1, WC_MAX_KEY))
                return WALCAST_EINVAL;
            bool extended = msg->u.req.min_seq != 0
                         || msg->u.req.max_staleness_ms != 0
                         || msg->u.req.wait_ms != 0;
            ok = s_pack_head (&pk, extended ? 7 : 4, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0
              && s_pack_bin (&pk, &msg->u.req.key)
              && (!extended
                  || (msgpack_pack_uint64 (&pk, msg->u.req.min_seq) == 0
                      && msgpack_pack_uint32 (&pk, msg->u.req.max_staleness_ms) == 0
                      && msgpack_pack_uint32 (&pk, msg->u.req.wait_ms) == 0));
            break;
        }

        case WC_MSG_PING:
        case WC_MSG_STATUS:
        case WC_MSG_DIGEST:
        case WC_MSG_TOPOLOGY_GET:
            ok = s_pack_head (&pk, 3, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0;
            break;

        case WC_MSG_WRITE_OK:
            ok = s_pack_head (&pk, 5, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0
              && msgpack_pack_uint64 (&pk, msg->u.write_ok.epoch) == 0
              && msgpack_pack_uint64 (&pk, msg->u.write_ok.seq) == 0;
            break;

        case WC_MSG_VALUE:
            if (!s_bytes_ok (&msg->u.value.value, 0, WC_MAX_VALUE))
                return WALCAST_EINVAL;
            ok = s_pack_head (&pk, 6, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0
              && (msg->u.value.found
                  ? msgpack_pack_true (&pk) == 0
                    && s_pack_bin (&pk, &msg->u.value.value)
                  : msgpack_pack_false (&pk) == 0
                    && msgpack_pack_nil (&pk) == 0)
              && msgpack_pack_uint64 (&pk, msg->u.value.seq) == 0;
            break;

        case WC_MSG_PONG:
            //  role 0: no identity, the 6-element form.
            if (msg->u.pong.role != 0
            &&  ((msg->u.pong.role != WC_ROLE_PRIMARY
                  && msg->u.pong.role != WC_ROLE_REPLICA)
                 || !s_bytes_ok (&msg->u.pong.id, 1, WC_MAX_ID)
                 || !s_bytes_ok (&msg->u.pong.region, 0, WC_MAX_ID)))
                return WALCAST_EINVAL;
            ok = s_pack_head (&pk, msg->u.pong.role ? 10 : 6, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0
              && msgpack_pack_uint64 (&pk, msg->u.pong.epoch) == 0
              && msgpack_pack_uint64 (&pk, msg->u.pong.seq) == 0
              && msgpack_pack_uint64 (&pk, msg->u.pong.clock_ms) == 0
              && (msg->u.pong.role == 0
                  || (msgpack_pack_uint8 (&pk, msg->u.pong.role) == 0
                      && s_pack_str (&pk, msg->u.pong.id.ptr, msg->u.pong.id.len)
                      && s_pack_str (&pk, msg->u.pong.region.ptr,
                                     msg->u.pong.region.len)
                      && msgpack_pack_uint64 (&pk, msg->u.pong.lag_ms) == 0));
            break;

        case WC_MSG_STATUS_REPLY:
            if (!s_bytes_ok (&msg->u.status.id, 1, WC_MAX_ID)
            ||  !s_bytes_ok (&msg->u.status.region, 0, WC_MAX_ID)
            ||  !s_bytes_ok (&msg->u.status.primary, 0, WC_MAX_ADDR)
            ||  (msg->u.status.role != WC_ROLE_PRIMARY
                 && msg->u.status.role != WC_ROLE_REPLICA))
                return WALCAST_EINVAL;
            ok = s_pack_head (&pk, 11, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0
              && s_pack_str (&pk, msg->u.status.id.ptr, msg->u.status.id.len)
              && s_pack_str (&pk, msg->u.status.region.ptr,
                             msg->u.status.region.len)
              && msgpack_pack_uint8 (&pk, msg->u.status.role) == 0
              && msgpack_pack_uint64 (&pk, msg->u.status.epoch) == 0
              && msgpack_pack_uint64 (&pk, msg->u.status.applied_seq) == 0
              && s_pack_str (&pk, msg->u.status.primary.ptr,
                             msg->u.status.primary.len)
              && msgpack_pack_uint64 (&pk, msg->u.status.primary_seq) == 0
              && msgpack_pack_uint64 (&pk, msg->u.status.lag_ms) == 0;
            break;

        case WC_MSG_DIGEST_REPLY:
            ok = s_pack_head (&pk, 5, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0
              && msgpack_pack_uint64 (&pk, msg->u.digest.seq) == 0
              && msgpack_pack_uint64 (&pk, msg->u.digest.hash) == 0;
            break;

        case WC_MSG_ERROR:
            if (!s_bytes_ok (&msg->u.error.text, 0, WC_MAX_TEXT)
            ||  !s_bytes_ok (&msg->u.error.detail, 0, WC_MAX_TEXT))
                return WALCAST_EINVAL;
            ok = s_pack_head (&pk, 6, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0
              && msgpack_pack_uint32 (&pk, msg->u.error.code) == 0
              && s_pack_str (&pk, msg->u.error.text.ptr, msg->u.error.text.len)
              && s_pack_str (&pk, msg->u.error.detail.ptr,
                             msg->u.error.detail.len);
            break;

        case WC_MSG_ENTRY:
            if (!s_entry_ok (&msg->u.entry))
                return WALCAST_EINVAL;
            ok = s_pack_head (&pk, 3, msg->type)
              && s_pack_entry (&pk, &msg->u.entry);
            break;

        case WC_MSG_HEARTBEAT:
            ok = s_pack_head (&pk, 5, msg->type)
              && msgpack_pack_uint64 (&pk, msg->u.heartbeat.epoch) == 0
              && msgpack_pack_uint64 (&pk, msg->u.heartbeat.last_seq) == 0
              && msgpack_pack_uint64 (&pk, msg->u.heartbeat.clock_ms) == 0;
            break;

        case WC_MSG_FETCH:
            ok = s_pack_head (&pk, 5, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0
              && msgpack_pack_uint64 (&pk, msg->u.fetch.from_seq) == 0
              && msgpack_pack_uint32 (&pk, msg->u.fetch.max_bytes) == 0;
            break;

        case WC_MSG_REGISTER:
        case WC_MSG_NODE_HEARTBEAT:
            if (!s_node_info_ok (&msg->u.node))
                return WALCAST_EINVAL;
            ok = s_pack_head (&pk, 4, msg->type)
              && msgpack_pack_uint64 (&pk, msg->rid) == 0
              && s_pack_node_info (&pk, &msg->u.node);
            break;

        default:        // ENTRIES and TOPOLOGY have their own encoders;
            return WALCAST_EINVAL;      // the rest are unknown
    }
    return s_finish (ok, out, start);
}

int
wc_entry_encode (const wc_entry_t *entry, msgpack_sbuffer *out)
{
    if (!s_entry_ok (entry))
        return WALCAST_EINVAL;
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    size_t start = out->size;
    return s_finish (s_pack_entry (&pk, entry), out, start);
}

//  The entry bytes are a WAL payload the node wrote itself; they are
//  copied as they are, not checked again.
int
wc_entry_msg_encode_raw (const void *entry_bytes, size_t len,
                         msgpack_sbuffer *out)
{
    if (entry_bytes == NULL || len == 0 || len > WC_MAX_MESSAGE)
        return WALCAST_EINVAL;
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    size_t start = out->size;
    bool ok = s_pack_head (&pk, 3, WC_MSG_ENTRY)
           && msgpack_sbuffer_write (out, (const char *) entry_bytes, len) == 0;
    return s_finish (ok, out, start);
}

int
wc_entries_encode_header (uint64_t rid, uint64_t last_seq, uint32_t count,
                          msgpack_sbuffer *out)
{
    if (count > WC_MAX_BATCH)
        return WALCAST_EINVAL;
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    size_t start = out->size;
    bool ok = s_pack_head (&pk, 5, WC_MSG_ENTRIES)
           && msgpack_pack_uint64 (&pk, rid) == 0
           && msgpack_pack_uint64 (&pk, last_seq) == 0
           && msgpack_pack_array (&pk, count) == 0;
    return s_finish (ok, out, start);
}

int
wc_topology_encode_header (uint64_t rid, uint64_t version, uint32_t count,
                           msgpack_sbuffer *out)
{
    if (count > WC_MAX_NODES)
        return WALCAST_EINVAL;
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    size_t start = out->size;
    bool ok = s_pack_head (&pk, 5, WC_MSG_TOPOLOGY)
           && msgpack_pack_uint64 (&pk, rid) == 0
           && msgpack_pack_uint64 (&pk, version) == 0
           && msgpack_pack_array (&pk, count) == 0;
    return s_finish (ok, out, start);
}

int
wc_node_info_encode (const wc_node_info_t *info, msgpack_sbuffer *out)
{
    if (!s_node_info_ok (info))
        return WALCAST_EINVAL;
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    size_t start = out->size;
    return s_finish (s_pack_node_info (&pk, info), out, start);
}

//  Length of s cut to at most max bytes, never in the middle of a UTF-8
//  sequence (peers in other languages may decode str as UTF-8).
static size_t
s_clip (const char *s, size_t max)
{
    size_t len = strnlen (s, max + 1);
    if (len <= max)
        return len;
    len = max;
    while (len > 0 && ((uint8_t) s [len] & 0xc0) == 0x80)
        len--;
    return len;
}

//  Text and detail longer than WC_MAX_TEXT are cut, not refused: an error
//  reply must always be sendable.
int
wc_error_encode (uint64_t rid, int err, const char *text,
                 const char *detail, msgpack_sbuffer *out)
{
    if (text == NULL)
        text = walcast_strerror (err);
    if (detail == NULL)
        detail = "";
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = WC_MSG_ERROR;
    msg.rid = rid;
    msg.u.error.code = wc_err_to_wire (err);
    msg.u.error.text.ptr = (const uint8_t *) text;
    msg.u.error.text.len = (uint32_t) s_clip (text, WC_MAX_TEXT);
    msg.u.error.detail.ptr = (const uint8_t *) detail;
    msg.u.error.detail.len = (uint32_t) s_clip (detail, WC_MAX_TEXT);
    return wc_msg_encode (&msg, out);
}

void
wc_bytes_printable (char *dest, size_t size, const wc_bytes_t *src)
{
    size_t len = src->len < size - 1 ? src->len : size - 1;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = src->ptr [i];
        dest [i] = (c < 0x20 || c == 0x7f) ? '?' : (char) c;
    }
    dest [len] = 0;
}
