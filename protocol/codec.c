/*  codec.c - walcast messages and WAL entries <-> msgpack (see codec.h).

    Every message is described once, in a table ("Message descriptions"):
    the elements after [version, type, rid], each with its kind (uint,
    bytes, bool, a nested entry or node_info, a list), the C member it
    fills and its limits. One encoder and one decoder walk these
    descriptions, so the two directions cannot disagree about a message,
    and the WAL entry and node_info are described the same way.

    Encoding checks the C fields against the description (EINVAL), then
    packs them through one msgpack_packer over the caller's sbuffer, every
    msgpack_pack_* result checked; on failure the buffer is cut back to
    where it was, so a failed append leaves no half message.

    Decoding happens in two passes over the bytes:
    1. wc_msgpack_check walks the msgpack structure without building anything. It
       finds where the object ends (truncated input and trailing bytes are
       malformed) and checks that every array or map count fits in the
       bytes that remain (each element takes at least one byte), and that
       containers nest at most S_MAX_DEPTH deep. msgpack-c allocates
       count * sizeof (msgpack_object) as soon as it reads an array
       header, so without this a 5-byte message could ask it for 96 GB;
       with it, the unpacker's memory stays proportional to the input.
    2. msgpack_unpack builds the object tree in the zone of the caller's
       msgpack_unpacked, which is reused from one decode to the next. In
       msgpack-c 4.0.0 (src/unpack.c, template_callback_str/bin) str and
       bin objects point into the input buffer and are never copied, which
       is what lets wc_bytes_t borrow.
    Then the elements are checked against the description in two more
    passes, as PROTOCOL.md ("Validation") orders them: first the type
    and the allowed values of every element, nested entry or node_info
    included (obj.type before the via union; EPROTO), then the length of
    every byte string and list (EPROTO or ETOOBIG), each pass in array
    order. Unsigned integers must be msgpack positive integers (negative
    integers and floats are malformed).
    Optional trailing fields (GET's consistency fields, PONG's identity,
    PUT's and DEL's acks and ack_timeout_ms, WRITE_OK's acked) are checked
    like the others when present and zero when absent; the encoder leaves
    them out when they are zero, so older peers see the exact bytes they
    always did. node_info's optional flags and handover_seq are zero when
    absent too (an older peer sends 11 elements), but always sent.

    On a failed decode msg->type and msg->rid hold whatever could be read
    before the failure (0 otherwise), so a node can still address an ERROR
    reply to the request.
*/
#include <stddef.h>
#include <string.h>
#include "codec.h"

#define S_COUNT(array) ((uint32_t) (sizeof (array) / sizeof ((array) [0])))

//  ---------------------------------------------------------------------
//  Message descriptions

//  What an element holds on the wire, and the C member it fills.
typedef enum {
    S_U64,          /* uint -> uint64_t; at least min */
    S_U32,          /* uint -> uint32_t; over 2^32-1 is malformed, over
                       clamp (when not 0) becomes clamp */
    S_U32_SAT,      /* uint -> uint32_t; over 2^32-1 becomes 2^32-1 */
    S_U8,           /* uint -> uint8_t; min..max (an enum: role, op) */
    S_BOOL,         /* bool -> bool */
    S_BIN,          /* bytes, sent as bin -> wc_bytes_t of min..max octets */
    S_STR,          /* bytes, sent as str -> wc_bytes_t of min..max octets */
    S_BIN_IF,       /* like S_BIN where present () says so; elsewhere nil
                       (sent) or empty bytes (accepted) */
    S_RECORD,       /* a nested array: a WAL entry or a node_info */
    S_LIST          /* an array of at most max items, each left to the
                       caller to check (ENTRIES, TOPOLOGY) */
} s_kind_t;

typedef struct s_record s_record_t;

//  One element of a message or of a nested array.
typedef struct {
    s_kind_t          kind;
    size_t            offset;   /* of its C member in the message (or entry,
                                   node_info); S_LIST: of the item count */
    uint64_t          min;      /* S_U64, S_U8: least value; bytes: octets */
    uint64_t          max;      /* S_U8: largest value; bytes: octets;
                                   S_LIST: items */
    uint32_t          clamp;    /* S_U32: larger values become this; 0: none */
    const s_record_t *record;   /* S_RECORD: what the nested array holds */
    size_t            items;    /* S_LIST: offset of the items pointer */
    bool            (*present) (const void *base);  /* S_BIN_IF */
} s_field_t;

//  A nested array (the WAL entry, node_info). The first nrequired
//  elements are required, the others may be left off from the end (0
//  when absent); more are ignored. The encoder sends the first nsent
//  always, and those after only up to the last that is set (not 0 or
//  empty), so a record without them is byte for byte what older peers
//  send.
struct s_record {
    const s_field_t *fields;
    uint32_t         nfields;
    uint32_t         nrequired;
    uint32_t         nsent;
};

//  How a message's trailing optional elements behave.
typedef enum {
    S_OPT_NONE,     /* every element is required */
    S_OPT_EACH,     /* each may be left off from the end (absent: 0); the
                       encoder sends all of them when any is not 0 (GET) */
    S_OPT_GROUP     /* all or none; the encoder sends them when the first
                       is not 0 (PONG: role 0 means no identity) */
} s_opt_t;

//  One message type: [version, type, rid (when rid), fields...].
typedef struct {
    const char      *name;      /* NULL: not a message type */
    bool             rid;
    const s_field_t *fields;
    uint32_t         nfields;
    uint32_t         nrequired; /* the rest are optional, as opt says */
    s_opt_t          opt;
} s_msg_desc_t;

//  S_OPT_EACH: how many of a message's optional fields go out together
//  when one of them is not 0 (all, but for GET, whose min_epoch of 0.7
//  came after its three, and ENTRIES, whose flags of 0.9 came after
//  applied_us and cluster); each later one goes only up to the last that
//  is not 0, so a message without them is what older peers send.
static uint32_t
s_together (int type, uint32_t noptional)
{
    return type == WC_MSG_GET ? 3 : type == WC_MSG_ENTRIES ? 2 : noptional;
}

//  Where a VALUE's and an entry's value bytes are present.
static bool
s_value_found (const void *base)
{
    return ((const wc_msg_t *) base)->u.value.found;
}

static bool
s_entry_is_put (const void *base)
{
    return ((const wc_entry_t *) base)->op == WC_OP_PUT;
}

#define S_ENTRY(member) offsetof (wc_entry_t, member)
#define S_NODE(member)  offsetof (wc_node_info_t, member)
#define S_MSG(member)   offsetof (wc_msg_t, u.member)

//  The WAL entry: [seq, epoch, ts_ms, op, key, value|nil].
static const s_field_t s_entry_fields [] = {
    { .kind = S_U64, .offset = S_ENTRY (seq), .min = 1 },
    { .kind = S_U64, .offset = S_ENTRY (epoch), .min = 1 },
    { .kind = S_U64, .offset = S_ENTRY (ts_ms) },
    { .kind = S_U8,  .offset = S_ENTRY (op), .min = WC_OP_PUT, .max = WC_OP_DEL },
    { .kind = S_BIN, .offset = S_ENTRY (key), .min = 1, .max = WC_MAX_KEY },
    { .kind = S_BIN_IF, .offset = S_ENTRY (value), .max = WC_MAX_VALUE,
      .present = s_entry_is_put }
};
static const s_record_t s_entry_record = { s_entry_fields, S_COUNT (s_entry_fields),
                                           S_COUNT (s_entry_fields),
                                           S_COUNT (s_entry_fields) };

//  A write of a WRITE_BATCH: [op, key, value|nil].
static bool
s_write_is_put (const void *base)
{
    return ((const wc_write_t *) base)->op == WC_OP_PUT;
}

#define S_WRITE(member) offsetof (wc_write_t, member)
static const s_field_t s_write_fields [] = {
    { .kind = S_U8,  .offset = S_WRITE (op), .min = WC_OP_PUT, .max = WC_OP_DEL },
    { .kind = S_BIN, .offset = S_WRITE (key), .min = 1, .max = WC_MAX_KEY },
    { .kind = S_BIN_IF, .offset = S_WRITE (value), .max = WC_MAX_VALUE,
      .present = s_write_is_put }
};
static const s_record_t s_write_record = { s_write_fields, S_COUNT (s_write_fields),
                                           S_COUNT (s_write_fields),
                                           S_COUNT (s_write_fields) };

//  node_info: [id, region, role, epoch, applied_seq, addr, primary, lag,
//  lag_ms, up, silent_ms, flags, handover_seq, curve_key]; the last three
//  optional; curve_key sent only when the node has one.
static const s_field_t s_node_fields [] = {
    { .kind = S_STR, .offset = S_NODE (id), .min = 1, .max = WC_MAX_ID },
    { .kind = S_STR, .offset = S_NODE (region), .max = WC_MAX_ID },
    { .kind = S_U8,  .offset = S_NODE (role), .min = WC_ROLE_PRIMARY,
      .max = WC_ROLE_REPLICA },
    { .kind = S_U64, .offset = S_NODE (epoch) },
    { .kind = S_U64, .offset = S_NODE (applied_seq) },
    { .kind = S_STR, .offset = S_NODE (addr), .min = 1, .max = WC_MAX_ADDR },
    { .kind = S_STR, .offset = S_NODE (primary), .max = WC_MAX_ADDR },
    { .kind = S_U64, .offset = S_NODE (lag) },
    { .kind = S_U64, .offset = S_NODE (lag_ms) },
    { .kind = S_BOOL, .offset = S_NODE (up) },
    { .kind = S_U64, .offset = S_NODE (silent_ms) },
    { .kind = S_U64, .offset = S_NODE (flags) },
    { .kind = S_U64, .offset = S_NODE (handover_seq) },
    { .kind = S_STR, .offset = S_NODE (curve_key), .max = WC_CURVE_KEY_LEN }
};
static const s_record_t s_node_record = { s_node_fields, S_COUNT (s_node_fields), 11,
                                          13 };

//  The fields of each message, after its rid (ENTRY, HEARTBEAT: after
//  its type). PING, STATUS, DIGEST and TOPOLOGY_GET have none.
static const s_field_t s_put [] = {         /* 2 required, then the acks */
    { .kind = S_BIN, .offset = S_MSG (req.key), .min = 1, .max = WC_MAX_KEY },
    { .kind = S_BIN, .offset = S_MSG (req.value), .max = WC_MAX_VALUE },
    { .kind = S_U8,  .offset = S_MSG (req.acks), .max = WC_ACKS_ALL },
    { .kind = S_U32, .offset = S_MSG (req.ack_timeout_ms), .clamp = WC_MAX_ACK_TIMEOUT_MS }
};
static const s_field_t s_del [] = {         /* 1 required, then the acks */
    { .kind = S_BIN, .offset = S_MSG (req.key), .min = 1, .max = WC_MAX_KEY },
    { .kind = S_U8,  .offset = S_MSG (req.acks), .max = WC_ACKS_ALL },
    { .kind = S_U32, .offset = S_MSG (req.ack_timeout_ms), .clamp = WC_MAX_ACK_TIMEOUT_MS }
};
static const s_field_t s_get [] = {
    { .kind = S_BIN, .offset = S_MSG (req.key), .min = 1, .max = WC_MAX_KEY },
    { .kind = S_U64, .offset = S_MSG (req.min_seq) },
    { .kind = S_U32, .offset = S_MSG (req.max_staleness_ms) },
    { .kind = S_U32, .offset = S_MSG (req.wait_ms), .clamp = WC_MAX_WAIT_MS },
    { .kind = S_U64, .offset = S_MSG (req.min_epoch) }          /* optional (0.7) */
};
static const s_field_t s_write_ok [] = {    /* 2 required, then acked */
    { .kind = S_U64, .offset = S_MSG (write_ok.epoch) },
    { .kind = S_U64, .offset = S_MSG (write_ok.seq) },
    { .kind = S_U32, .offset = S_MSG (write_ok.acked) }
};
static const s_field_t s_write_batch [] = {
    { .kind = S_U8,  .offset = S_MSG (batch.acks), .max = WC_ACKS_ALL },
    { .kind = S_U32, .offset = S_MSG (batch.ack_timeout_ms),
      .clamp = WC_MAX_ACK_TIMEOUT_MS },
    { .kind = S_LIST, .offset = S_MSG (batch.count), .min = 1, .max = WC_MAX_WRITE_BATCH,
      .items = S_MSG (batch.items) }
};
static const s_field_t s_writes_ok [] = {   /* 4 required, then the refusal
                                               and the acks waited for */
    { .kind = S_U64, .offset = S_MSG (writes_ok.epoch) },
    { .kind = S_U64, .offset = S_MSG (writes_ok.first_seq) },
    { .kind = S_U32, .offset = S_MSG (writes_ok.count) },
    { .kind = S_U32, .offset = S_MSG (writes_ok.acked) },
    { .kind = S_U32, .offset = S_MSG (writes_ok.code) },
    { .kind = S_STR, .offset = S_MSG (writes_ok.text), .max = WC_MAX_TEXT },
    { .kind = S_U32, .offset = S_MSG (writes_ok.wanted) }
};
static const s_field_t s_ack [] = {
    { .kind = S_STR, .offset = S_MSG (ack.id), .min = 1, .max = WC_MAX_ID },
    { .kind = S_U64, .offset = S_MSG (ack.epoch) },
    { .kind = S_U64, .offset = S_MSG (ack.seq) },
    { .kind = S_U64, .offset = S_MSG (ack.cluster) }          /* optional (0.7) */
};
static const s_field_t s_snapshot_done [] = {
    { .kind = S_U64, .offset = S_MSG (snapshot_done.seq) },
    { .kind = S_U64, .offset = S_MSG (snapshot_done.bytes) }
};
static const s_field_t s_epoch_end [] = {   /* the request: epoch only */
    { .kind = S_U64, .offset = S_MSG (epoch_end.epoch) },
    { .kind = S_U64, .offset = S_MSG (epoch_end.end_seq) },
    { .kind = S_U64, .offset = S_MSG (epoch_end.latest) },
    { .kind = S_U64, .offset = S_MSG (epoch_end.cluster) }    /* optional (0.7) */
};
static const s_field_t s_snapshot_get [] = {
    { .kind = S_U64, .offset = S_MSG (snapshot_get.seq) },
    { .kind = S_U64, .offset = S_MSG (snapshot_get.offset) },
    { .kind = S_U32_SAT, .offset = S_MSG (snapshot_get.max_bytes) },
    { .kind = S_U64, .offset = S_MSG (snapshot_get.cluster) }   /* optional (0.7) */
};
static const s_field_t s_snapshot_chunk [] = {
    { .kind = S_U64, .offset = S_MSG (snapshot_chunk.seq) },
    { .kind = S_U64, .offset = S_MSG (snapshot_chunk.size) },
    { .kind = S_U64, .offset = S_MSG (snapshot_chunk.offset) },
    { .kind = S_BIN, .offset = S_MSG (snapshot_chunk.data), .max = WC_MAX_SNAPSHOT_CHUNK }
};
//  Every epoch a broker names is 1 or more: epochs start at 1.
static const s_field_t s_promote [] = {
    { .kind = S_U64, .offset = S_MSG (promote.epoch), .min = 1 }
};
static const s_field_t s_follow [] = {
    { .kind = S_U64, .offset = S_MSG (follow.epoch), .min = 1 },
    { .kind = S_STR, .offset = S_MSG (follow.primary), .min = 1, .max = WC_MAX_ADDR },
    { .kind = S_STR, .offset = S_MSG (follow.primary_key), .max = WC_CURVE_KEY_LEN }
};
static const s_field_t s_handover [] = {         /* an empty target cancels */
    { .kind = S_U64, .offset = S_MSG (handover.epoch), .min = 1 },
    { .kind = S_STR, .offset = S_MSG (handover.target_id), .max = WC_MAX_ID },
    { .kind = S_STR, .offset = S_MSG (handover.target_addr), .max = WC_MAX_ADDR }
};
static const s_field_t s_switchover [] = {
    { .kind = S_STR, .offset = S_MSG (switchover.node_id), .min = 1, .max = WC_MAX_ID }
};
static const s_field_t s_forget [] = {
    { .kind = S_STR, .offset = S_MSG (forget.node_id), .min = 1, .max = WC_MAX_ID }
};
static const s_field_t s_switchover_done [] = {
    { .kind = S_U64, .offset = S_MSG (switchover_done.epoch), .min = 1 },
    { .kind = S_STR, .offset = S_MSG (switchover_done.primary), .min = 1,
      .max = WC_MAX_ADDR }
};
static const s_field_t s_value [] = {
    { .kind = S_BOOL, .offset = S_MSG (value.found) },
    { .kind = S_BIN_IF, .offset = S_MSG (value.value), .max = WC_MAX_VALUE,
      .present = s_value_found },
    { .kind = S_U64, .offset = S_MSG (value.seq) },
    { .kind = S_U64, .offset = S_MSG (value.epoch) }            /* 0.7, optional */
};
static const s_field_t s_pong [] = {        /* 3 required, then the identity */
    { .kind = S_U64, .offset = S_MSG (pong.epoch) },
    { .kind = S_U64, .offset = S_MSG (pong.seq) },
    { .kind = S_U64, .offset = S_MSG (pong.clock_ms) },
    { .kind = S_U8,  .offset = S_MSG (pong.role), .min = WC_ROLE_PRIMARY,
      .max = WC_ROLE_REPLICA },
    { .kind = S_STR, .offset = S_MSG (pong.id), .min = 1, .max = WC_MAX_ID },
    { .kind = S_STR, .offset = S_MSG (pong.region), .max = WC_MAX_ID },
    { .kind = S_U64, .offset = S_MSG (pong.lag_ms) }
};
static const s_field_t s_status_reply [] = {
    { .kind = S_STR, .offset = S_MSG (status.id), .min = 1, .max = WC_MAX_ID },
    { .kind = S_STR, .offset = S_MSG (status.region), .max = WC_MAX_ID },
    { .kind = S_U8,  .offset = S_MSG (status.role), .min = WC_ROLE_PRIMARY,
      .max = WC_ROLE_REPLICA },
    { .kind = S_U64, .offset = S_MSG (status.epoch) },
    { .kind = S_U64, .offset = S_MSG (status.applied_seq) },
    { .kind = S_STR, .offset = S_MSG (status.primary), .max = WC_MAX_ADDR },
    { .kind = S_U64, .offset = S_MSG (status.primary_seq) },
    { .kind = S_U64, .offset = S_MSG (status.lag_ms) },
    { .kind = S_U64, .offset = S_MSG (status.flags) }        /* optional (0.6) */
};
static const s_field_t s_digest_reply [] = {
    { .kind = S_U64, .offset = S_MSG (digest.seq) },
    { .kind = S_U64, .offset = S_MSG (digest.hash) }
};
static const s_field_t s_error [] = {
    { .kind = S_U32, .offset = S_MSG (error.code) },
    { .kind = S_STR, .offset = S_MSG (error.text), .max = WC_MAX_TEXT },
    { .kind = S_STR, .offset = S_MSG (error.detail), .max = WC_MAX_TEXT }
};
static const s_field_t s_entry_msg [] = {
    { .kind = S_RECORD, .offset = S_MSG (entry), .record = &s_entry_record }
};
static const s_field_t s_heartbeat [] = {
    { .kind = S_U64, .offset = S_MSG (heartbeat.epoch) },
    { .kind = S_U64, .offset = S_MSG (heartbeat.last_seq) },
    { .kind = S_U64, .offset = S_MSG (heartbeat.clock_ms) },
    { .kind = S_U64, .offset = S_MSG (heartbeat.cluster) }      /* optional (0.7) */
};
static const s_field_t s_fetch [] = {
    { .kind = S_U64, .offset = S_MSG (fetch.from_seq) },
    { .kind = S_U32_SAT, .offset = S_MSG (fetch.max_bytes) },
    { .kind = S_U64, .offset = S_MSG (fetch.cluster) }          /* optional (0.7) */
};
static const s_field_t s_entries [] = {   /* 2 required, then applied_us, cluster, flags */
    { .kind = S_U64, .offset = S_MSG (entries.last_seq) },
    { .kind = S_LIST, .offset = S_MSG (entries.count), .max = WC_MAX_BATCH,
      .items = S_MSG (entries.items) },
    { .kind = S_U64, .offset = S_MSG (entries.applied_us) },
    { .kind = S_U64, .offset = S_MSG (entries.cluster) },       /* optional (0.7) */
    { .kind = S_U64, .offset = S_MSG (entries.flags) }          /* optional (0.9) */
};
static const s_field_t s_node_msg [] = {     /* REGISTER, NODE_HEARTBEAT */
    { .kind = S_RECORD, .offset = S_MSG (node), .record = &s_node_record }
};
static const s_field_t s_topology [] = {
    { .kind = S_U64, .offset = S_MSG (topology.version) },
    { .kind = S_LIST, .offset = S_MSG (topology.count), .max = WC_MAX_NODES,
      .items = S_MSG (topology.items) }
};

//  Every message type, by type number.
static const s_msg_desc_t s_descs [] = {
    [WC_MSG_PUT]          = { "PUT", true, s_put, 4, 2, S_OPT_EACH },
    [WC_MSG_DEL]          = { "DEL", true, s_del, 3, 1, S_OPT_EACH },
    [WC_MSG_GET]          = { "GET", true, s_get, 5, 1, S_OPT_EACH },
    [WC_MSG_PING]         = { "PING", true, NULL, 0, 0, S_OPT_NONE },
    [WC_MSG_STATUS]       = { "STATUS", true, NULL, 0, 0, S_OPT_NONE },
    [WC_MSG_DIGEST]       = { "DIGEST", true, NULL, 0, 0, S_OPT_NONE },
    [WC_MSG_ACK]          = { "ACK", true, s_ack, 4, 3, S_OPT_EACH },
    [WC_MSG_SNAPSHOT]     = { "SNAPSHOT", true, NULL, 0, 0, S_OPT_NONE },
    [WC_MSG_WRITE_BATCH]  = { "WRITE_BATCH", true, s_write_batch, 3, 3, S_OPT_NONE },
    [WC_MSG_WRITE_OK]     = { "WRITE_OK", true, s_write_ok, 3, 2, S_OPT_EACH },
    [WC_MSG_VALUE]        = { "VALUE", true, s_value, 4, 3, S_OPT_EACH },
    [WC_MSG_PONG]         = { "PONG", true, s_pong, 7, 3, S_OPT_GROUP },
    [WC_MSG_STATUS_REPLY] = { "STATUS_REPLY", true, s_status_reply, 9, 8, S_OPT_EACH },
    [WC_MSG_DIGEST_REPLY] = { "DIGEST_REPLY", true, s_digest_reply, 2, 2, S_OPT_NONE },
    [WC_MSG_SNAPSHOT_DONE] = { "SNAPSHOT_DONE", true, s_snapshot_done, 2, 2, S_OPT_NONE },
    [WC_MSG_WRITES_OK]    = { "WRITES_OK", true, s_writes_ok, 7, 4, S_OPT_EACH },
    [WC_MSG_ERROR]        = { "ERROR", true, s_error, 3, 3, S_OPT_NONE },
    [WC_MSG_ENTRY]        = { "ENTRY", false, s_entry_msg, 1, 1, S_OPT_NONE },
    [WC_MSG_HEARTBEAT]    = { "HEARTBEAT", false, s_heartbeat, 4, 3, S_OPT_EACH },
    [WC_MSG_FETCH]        = { "FETCH", true, s_fetch, 3, 2, S_OPT_EACH },
    [WC_MSG_ENTRIES]      = { "ENTRIES", true, s_entries, 5, 2, S_OPT_EACH },
    [WC_MSG_EPOCH_END]    = { "EPOCH_END", true, s_epoch_end, 1, 1, S_OPT_NONE },
    [WC_MSG_EPOCH_END_REPLY] = { "EPOCH_END_REPLY", true, s_epoch_end, 4, 3, S_OPT_EACH },
    [WC_MSG_SNAPSHOT_GET] = { "SNAPSHOT_GET", true, s_snapshot_get, 4, 3, S_OPT_EACH },
    [WC_MSG_SNAPSHOT_CHUNK] = { "SNAPSHOT_CHUNK", true, s_snapshot_chunk, 4, 4, S_OPT_NONE },
    [WC_MSG_REGISTER]     = { "REGISTER", true, s_node_msg, 1, 1, S_OPT_NONE },
    [WC_MSG_NODE_HEARTBEAT] = { "NODE_HEARTBEAT", true, s_node_msg, 1, 1, S_OPT_NONE },
    [WC_MSG_TOPOLOGY_GET] = { "TOPOLOGY_GET", true, NULL, 0, 0, S_OPT_NONE },
    [WC_MSG_TOPOLOGY]     = { "TOPOLOGY", true, s_topology, 2, 2, S_OPT_NONE },
    [WC_MSG_PROMOTE]      = { "PROMOTE", true, s_promote, 1, 1, S_OPT_NONE },
    [WC_MSG_FOLLOW]       = { "FOLLOW", true, s_follow, 3, 2, S_OPT_EACH },
    [WC_MSG_HANDOVER]     = { "HANDOVER", true, s_handover, 3, 3, S_OPT_NONE },
    [WC_MSG_SWITCHOVER]   = { "SWITCHOVER", true, s_switchover, 1, 1, S_OPT_NONE },
    [WC_MSG_SWITCHOVER_DONE] = { "SWITCHOVER_DONE", true, s_switchover_done, 2, 2,
                                 S_OPT_NONE },
    [WC_MSG_FORGET]       = { "FORGET", true, s_forget, 1, 1, S_OPT_NONE }
};

//  The description of a message type this build knows, or NULL.
static const s_msg_desc_t *
s_desc (uint64_t type)
{
    if (type >= S_COUNT (s_descs) || s_descs [type].name == NULL)
        return NULL;
    return &s_descs [type];
}

const char *
wc_msg_type_name (int type)
{
    const s_msg_desc_t *desc = type < 0 ? NULL : s_desc ((uint64_t) type);
    return desc ? desc->name : "UNKNOWN";
}

//  Whether the encoder may send v in an S_U64 or S_U8 field (the decoder
//  checks the same bounds in s_decode_fields).
static bool
s_uint_ok (const s_field_t *field, uint64_t v)
{
    return v >= field->min && (field->kind != S_U8 || v <= field->max);
}

//  The C member of field in the message or record at base.
static void *
s_member (void *base, const s_field_t *field)
{
    return (char *) base + field->offset;
}

static const void *
s_member_const (const void *base, const s_field_t *field)
{
    return (const char *) base + field->offset;
}

//  The value of a uint field in the C struct at base, the length of a
//  bytes field; 0 for other kinds. An optional field is "set" when it is
//  not 0.
static uint64_t
s_uint_of (const void *base, const s_field_t *field)
{
    const void *at = s_member_const (base, field);
    switch (field->kind) {
        case S_U64: return *(const uint64_t *) at;
        case S_U32:
        case S_U32_SAT: return *(const uint32_t *) at;
        case S_U8:  return *(const uint8_t *) at;
        case S_BIN:
        case S_STR: return ((const wc_bytes_t *) at)->len;
        default:    return 0;
    }
}

//  How many of a record's fields the encoder sends (see s_record_t).
static uint32_t
s_record_sent (const s_record_t *record, const void *base)
{
    uint32_t count = record->nsent;
    for (uint32_t i = record->nsent; i < record->nfields; i++)
        if (s_uint_of (base, &record->fields [i]))
            count = i + 1;
    return count;
}

//  ---------------------------------------------------------------------
//  Structural scan (pass 1 of decoding)

//  What follows the first byte of a msgpack object.
typedef enum {
    S_FIX = 0,      /* n bytes of payload (fixint, nil, bool, fixstr, numbers) */
    S_ITEMS,        /* n elements (fixarray; fixmap: 2 per pair) */
    S_LEN,          /* an n-byte length, then that many bytes (str, bin) */
    S_EXT,          /* an n-byte length, a type byte, that many bytes */
    S_ARR,          /* an n-byte count of elements */
    S_MAP,          /* an n-byte count of key-value pairs */
    S_BAD           /* 0xc1, never used */
} s_fmt_kind_t;

typedef struct {
    uint8_t kind;   /* s_fmt_kind_t */
    uint8_t n;
} s_fmt_t;

//  Every first byte; those not listed (positive and negative fixint) are
//  { S_FIX, 0 }.
static const s_fmt_t s_formats [256] = {
    [0x80] = { S_ITEMS, 0 }, { S_ITEMS, 2 }, { S_ITEMS, 4 }, { S_ITEMS, 6 },
    { S_ITEMS, 8 }, { S_ITEMS, 10 }, { S_ITEMS, 12 }, { S_ITEMS, 14 },
    { S_ITEMS, 16 }, { S_ITEMS, 18 }, { S_ITEMS, 20 }, { S_ITEMS, 22 },
    { S_ITEMS, 24 }, { S_ITEMS, 26 }, { S_ITEMS, 28 }, { S_ITEMS, 30 },
    [0x90] = { S_ITEMS, 0 }, { S_ITEMS, 1 }, { S_ITEMS, 2 }, { S_ITEMS, 3 },
    { S_ITEMS, 4 }, { S_ITEMS, 5 }, { S_ITEMS, 6 }, { S_ITEMS, 7 },
    { S_ITEMS, 8 }, { S_ITEMS, 9 }, { S_ITEMS, 10 }, { S_ITEMS, 11 },
    { S_ITEMS, 12 }, { S_ITEMS, 13 }, { S_ITEMS, 14 }, { S_ITEMS, 15 },
    [0xa0] = { S_FIX, 0 }, { S_FIX, 1 }, { S_FIX, 2 }, { S_FIX, 3 },
    { S_FIX, 4 }, { S_FIX, 5 }, { S_FIX, 6 }, { S_FIX, 7 },
    { S_FIX, 8 }, { S_FIX, 9 }, { S_FIX, 10 }, { S_FIX, 11 },
    { S_FIX, 12 }, { S_FIX, 13 }, { S_FIX, 14 }, { S_FIX, 15 },
    { S_FIX, 16 }, { S_FIX, 17 }, { S_FIX, 18 }, { S_FIX, 19 },
    { S_FIX, 20 }, { S_FIX, 21 }, { S_FIX, 22 }, { S_FIX, 23 },
    { S_FIX, 24 }, { S_FIX, 25 }, { S_FIX, 26 }, { S_FIX, 27 },
    { S_FIX, 28 }, { S_FIX, 29 }, { S_FIX, 30 }, { S_FIX, 31 },
    [0xc0] = { S_FIX, 0 }, { S_BAD, 0 },            /* nil, never used */
    { S_FIX, 0 }, { S_FIX, 0 },                     /* false, true */
    { S_LEN, 1 }, { S_LEN, 2 }, { S_LEN, 4 },       /* bin 8, 16, 32 */
    { S_EXT, 1 }, { S_EXT, 2 }, { S_EXT, 4 },       /* ext 8, 16, 32 */
    { S_FIX, 4 }, { S_FIX, 8 },                     /* float 32, 64 */
    { S_FIX, 1 }, { S_FIX, 2 }, { S_FIX, 4 }, { S_FIX, 8 },     /* uint */
    { S_FIX, 1 }, { S_FIX, 2 }, { S_FIX, 4 }, { S_FIX, 8 },     /* int */
    { S_FIX, 2 }, { S_FIX, 3 }, { S_FIX, 5 }, { S_FIX, 9 },     /* fixext */
    { S_FIX, 17 },
    { S_LEN, 1 }, { S_LEN, 2 }, { S_LEN, 4 },       /* str 8, 16, 32 */
    { S_ARR, 2 }, { S_ARR, 4 },                     /* array 16, 32 */
    { S_MAP, 2 }, { S_MAP, 4 }                      /* map 16, 32 */
};

//  Read an n-byte (1, 2 or 4) big-endian number at buf [*pos]; false
//  when the input ends first.
static bool
s_read_be (const uint8_t *buf, size_t len, size_t *pos, int n, uint64_t *value)
{
    if (len - *pos < (size_t) n)
        return false;
    const uint8_t *p = buf + *pos;
    if (n == 1)
        *value = p [0];
    else
    if (n == 2)
        *value = (uint64_t) p [0] << 8 | p [1];
    else
        *value = (uint64_t) p [0] << 24 | (uint64_t) p [1] << 16
               | (uint64_t) p [2] << 8 | p [3];
    *pos += (size_t) n;
    return true;
}

//  Read the rest of a header whose format carries a length or a count
//  (buf [*pos] is the byte after the first): set *skip to the payload
//  bytes that follow and *items to the elements a container adds. False
//  when the input ends inside the header or the byte is never used.
static bool
s_header (s_fmt_t fmt, const uint8_t *buf, size_t len, size_t *pos,
          uint64_t *skip, uint64_t *items)
{
    uint64_t n = 0;
    if (fmt.kind == S_BAD || !s_read_be (buf, len, pos, fmt.n, &n))
        return false;
    if (fmt.kind == S_LEN)
        *skip = n;
    else
    if (fmt.kind == S_EXT)
        *skip = n + 1;
    else
        *items = fmt.kind == S_MAP ? 2 * n : n;
    return true;
}

//  Containers nested deeper than this are malformed. msgpack-c stops at 32
//  (MSGPACK_EMBED_STACK_SIZE) and reports it as out of memory; stopping
//  first keeps that code for real allocation failures. walcast messages
//  nest three deep (ENTRIES, its list, an entry; TOPOLOGY, its list, a
//  node_info).
#define S_MAX_DEPTH 16

//  The header of a format that carries a length or a count, when its
//  bytes are at hand (buf [*pos] is the byte after the first): 1, with
//  *skip and *items set (s_header); 0 when they go on past have but fit
//  in room; -1 when they cannot (or the byte is never used).
static int
s_header_at (s_fmt_t fmt, const uint8_t *buf, size_t have, size_t room, size_t *pos,
             uint64_t *skip, uint64_t *items)
{
    if (fmt.kind != S_BAD && have - *pos < fmt.n)
        return room - *pos < fmt.n ? -1 : 0;
    return s_header (fmt, buf, have, pos, skip, items) ? 1 : -1;
}

//  Walk one msgpack object at buf without building it (see codec.h,
//  wc_msgpack_check): have bytes at hand, at most room in all.
int
wc_msgpack_check (const void *data, size_t have, size_t room, size_t *size)
{
    const uint8_t *buf = (const uint8_t *) data;
    uint64_t outer [S_MAX_DEPTH];   // elements left in the enclosing containers
    int depth = 0;
    uint64_t left = 1;              // elements left in the current one
    uint64_t pending = 1;           // left plus the sum of outer [0..depth)
    size_t pos = 0;
    *size = 0;
    if (have > room)
        have = room;
    while (pending > 0) {
        while (left == 0)
            left = outer [--depth];     // this container is complete
        if (pos >= have)
            return pos >= room ? WALCAST_EPROTO : 0;
        s_fmt_t fmt = s_formats [buf [pos++]];
        uint64_t skip = 0, items = 0;
        if (fmt.kind == S_FIX)
            skip = fmt.n;
        else
        if (fmt.kind == S_ITEMS)
            items = fmt.n;
        else {
            int rc = s_header_at (fmt, buf, have, room, &pos, &skip, &items);
            if (rc <= 0)
                return rc < 0 ? WALCAST_EPROTO : 0;
        }
        if (skip > room - pos)
            return WALCAST_EPROTO;
        if (skip > have - pos)
            return 0;
        pos += (size_t) skip;
        left--;
        pending--;
        if (items > 0) {
            if (depth == S_MAX_DEPTH)
                return WALCAST_EPROTO;
            outer [depth++] = left;
            left = items;
            pending += items;
            if (pending > room - pos)
                return WALCAST_EPROTO;  // each element takes at least one byte
        }
    }
    *size = pos;
    return 0;
}

//  Pass 1 and 2: check the size and shape of buf, then unpack it into
//  storage. Returns 0, WALCAST_ETOOBIG, WALCAST_EPROTO or WALCAST_ENOMEM.
//  The zone of storage is kept from one decode to the next and cleared
//  (msgpack_zone_clear frees every chunk but the first): a zone made and
//  freed per message, as msgpack_unpack_next does, is a third of the cost
//  of decoding a small one. What the previous decode returned points into
//  that zone, so it is invalid from here on, as codec.h says.
static int
s_unpack (const void *buf, size_t len, msgpack_unpacked *storage)
{
    if (len > WC_MAX_MESSAGE)
        return WALCAST_ETOOBIG;
    size_t size = 0;
    if (buf == NULL || len == 0 || wc_msgpack_check (buf, len, len, &size) != 0
    ||  size != len)
        return WALCAST_EPROTO;
    if (storage->zone == NULL)
        storage->zone = msgpack_zone_new (MSGPACK_ZONE_CHUNK_SIZE);
    else
        msgpack_zone_clear (storage->zone);
    if (storage->zone == NULL)
        return WALCAST_ENOMEM;
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack ((const char *) buf, len, &off,
                                               storage->zone, &storage->data);
    if (rc == MSGPACK_UNPACK_NOMEM_ERROR)
        return WALCAST_ENOMEM;
    if (rc != MSGPACK_UNPACK_SUCCESS || off != len)
        return WALCAST_EPROTO;
    return 0;
}


//  ---------------------------------------------------------------------
//  Decoding the fields (after both passes)

static inline int s_decode_fields (const s_field_t *fields, uint32_t count,
                                   const msgpack_object *items, void *base);

//  A byte string, sent as str or bin. Borrowed. (str and bin share their
//  layout, the common initial sequence of two members of
//  msgpack_object_union, so via.bin reads either.) Its length is checked
//  later, with the other limits (s_check_lengths).
static int
s_get_bytes (const msgpack_object *obj, wc_bytes_t *bytes)
{
    if (obj->type != MSGPACK_OBJECT_BIN && obj->type != MSGPACK_OBJECT_STR)
        return WALCAST_EPROTO;
    bytes->ptr = (const uint8_t *) obj->via.bin.ptr;
    bytes->len = obj->via.bin.size;
    return 0;
}

//  The value of a VALUE or an entry: bytes where present; elsewhere nil,
//  or empty bytes (any bytes there are a value the message may not hold).
static int
s_get_bin_if (const msgpack_object *obj, const s_field_t *field,
              const void *base, wc_bytes_t *bytes)
{
    bool present = field->present (base);
    if (obj->type == MSGPACK_OBJECT_NIL && !present) {
        bytes->ptr = NULL;
        bytes->len = 0;
        return 0;
    }
    int rc = s_get_bytes (obj, bytes);
    if (rc == 0 && !present && bytes->len > 0)
        rc = WALCAST_EPROTO;            // not found, or a DEL: no value
    return rc;
}

//  A nested array: at least the record's required elements; those of its
//  optional ones that are present; more are ignored.
static int
s_decode_record (const msgpack_object *obj, const s_record_t *record,
                 void *base)
{
    if (obj->type != MSGPACK_OBJECT_ARRAY
    ||  obj->via.array.size < record->nrequired)
        return WALCAST_EPROTO;
    uint32_t count = obj->via.array.size < record->nfields
                   ? obj->via.array.size : record->nfields;
    return s_decode_fields (record->fields, count, obj->via.array.ptr, base);
}

//  A list: its count and items are kept; the caller checks each item.
static int
s_get_list (const msgpack_object *obj, const s_field_t *field, void *base)
{
    if (obj->type != MSGPACK_OBJECT_ARRAY)
        return WALCAST_EPROTO;
    *(uint32_t *) s_member (base, field) = obj->via.array.size;
    *(const msgpack_object **) ((char *) base + field->items) = obj->via.array.ptr;
    return 0;
}

//  Pass 1 of checking: the type of every element and the values it may
//  hold, into the C struct at base, field by field in array order,
//  obj.type before the via union; all EPROTO. Stops at the first failure.
//  Inlined where the table is a constant (an entry, a node_info) and
//  unrolled, the loop folds into straight-line code, as fast as a
//  hand-written decoder.
static inline int
s_decode_fields (const s_field_t *fields, uint32_t count,
                 const msgpack_object *items, void *base)
{
#pragma GCC unroll 12
    for (uint32_t i = 0; i < count; i++) {
        const s_field_t *field = &fields [i];
        const msgpack_object *obj = &items [i];
        void *at = s_member (base, field);
        bool is_uint = obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        int rc = 0;
        switch (field->kind) {
            case S_U64:
                if (!is_uint || obj->via.u64 < field->min)
                    return WALCAST_EPROTO;
                *(uint64_t *) at = obj->via.u64;
                break;
            case S_U32:
                if (!is_uint || obj->via.u64 > UINT32_MAX)
                    return WALCAST_EPROTO;
                *(uint32_t *) at = field->clamp && obj->via.u64 > field->clamp
                                 ? field->clamp : (uint32_t) obj->via.u64;
                break;
            case S_U32_SAT:
                if (!is_uint)
                    return WALCAST_EPROTO;
                *(uint32_t *) at = obj->via.u64 > UINT32_MAX
                                 ? UINT32_MAX : (uint32_t) obj->via.u64;
                break;
            case S_U8:
                if (!is_uint || obj->via.u64 < field->min
                ||  obj->via.u64 > field->max)
                    return WALCAST_EPROTO;
                *(uint8_t *) at = (uint8_t) obj->via.u64;
                break;
            case S_BOOL:
                if (obj->type != MSGPACK_OBJECT_BOOLEAN)
                    return WALCAST_EPROTO;
                *(bool *) at = obj->via.boolean;
                break;
            case S_BIN:
            case S_STR:
                rc = s_get_bytes (obj, (wc_bytes_t *) at);
                break;
            case S_BIN_IF:
                rc = s_get_bin_if (obj, field, base, (wc_bytes_t *) at);
                break;
            case S_RECORD:
                rc = s_decode_record (obj, field->record, at);
                break;
            case S_LIST:
                rc = s_get_list (obj, field, base);
                break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

//  Whether a length (of a byte string, or of a list) is within the
//  field's limits: 0, WALCAST_EPROTO when shorter than its minimum,
//  WALCAST_ETOOBIG when longer than its maximum.
static int
s_length_rc (const s_field_t *field, uint64_t len)
{
    if (len < field->min)
        return WALCAST_EPROTO;
    if (len > field->max)
        return WALCAST_ETOOBIG;
    return 0;
}

//  Pass 2 of checking, once every type is known to be right: the length
//  of every byte string and list of the C struct at base, nested records
//  included, in array order. Stops at the first failure.
static inline int
s_check_lengths (const s_field_t *fields, uint32_t count, const void *base)
{
#pragma GCC unroll 12
    for (uint32_t i = 0; i < count; i++) {
        const s_field_t *field = &fields [i];
        const void *at = s_member_const (base, field);
        int rc = 0;
        if (field->kind == S_BIN || field->kind == S_STR || field->kind == S_BIN_IF)
            rc = s_length_rc (field, ((const wc_bytes_t *) at)->len);
        else
        if (field->kind == S_LIST)
            rc = s_length_rc (field, *(const uint32_t *) at);
        else
        if (field->kind == S_RECORD)
            rc = s_check_lengths (field->record->fields,
                                  field->record->nfields, at);
        if (rc)
            return rc;
    }
    return 0;
}

//  How many of the message's fields an array of n elements after the rid
//  holds: all required ones, and the optional ones as desc->opt allows.
static int
s_fields_present (const s_msg_desc_t *desc, uint32_t n, uint32_t *count)
{
    if (n < desc->nrequired)
        return WALCAST_EPROTO;
    if (n >= desc->nfields)
        *count = desc->nfields;
    else
    if (desc->opt == S_OPT_EACH || n == desc->nrequired)
        *count = n;
    else
        return WALCAST_EPROTO;          // part of an all-or-nothing group
    return 0;
}

//  Decode one whole message: shape, version, type, rid, then the fields.
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
    if (f [0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return WALCAST_EPROTO;
    if (f [0].via.u64 != WC_PROTOCOL_VERSION)
        return WALCAST_EVERSION;
    if (n < 2 || f [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return WALCAST_EPROTO;
    const s_msg_desc_t *desc = s_desc (f [1].via.u64);
    if (desc == NULL)
        return WALCAST_EPROTO;
    msg->type = (int) f [1].via.u64;
    uint32_t first = 2;
    if (desc->rid) {
        if (n < 3 || f [2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return WALCAST_EPROTO;
        msg->rid = f [2].via.u64;
        first = 3;
    }
    uint32_t count = 0;
    if ((rc = s_fields_present (desc, n - first, &count))
    ||  (rc = s_decode_fields (desc->fields, count, f + first, msg)))
        return rc;
    return s_check_lengths (desc->fields, count, msg);
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

int
wc_entry_from_object (const msgpack_object *obj, wc_entry_t *entry)
{
    memset (entry, 0, sizeof *entry);
    if (obj->type != MSGPACK_OBJECT_ARRAY
    ||  obj->via.array.size < S_COUNT (s_entry_fields))
        return WALCAST_EPROTO;
    int rc = s_decode_fields (s_entry_fields, S_COUNT (s_entry_fields),
                              obj->via.array.ptr, entry);
    if (rc)
        return rc;
    return s_check_lengths (s_entry_fields, S_COUNT (s_entry_fields), entry);
}

int
wc_write_from_object (const msgpack_object *obj, wc_write_t *write)
{
    memset (write, 0, sizeof *write);
    int rc = s_decode_record (obj, &s_write_record, write);
    if (rc)
        return rc;
    return s_check_lengths (s_write_fields, S_COUNT (s_write_fields), write);
}

int
wc_node_info_from_object (const msgpack_object *obj, wc_node_info_t *info)
{
    memset (info, 0, sizeof *info);
    int rc = s_decode_record (obj, &s_node_record, info);
    if (rc)
        return rc;
    return s_check_lengths (s_node_fields, S_COUNT (s_node_fields), info);
}


//  ---------------------------------------------------------------------
//  Encoding

static int s_pack_fields (msgpack_packer *pk, const s_field_t *fields,
                          uint32_t count, const void *base);

//  A byte string field: min..max octets and a pointer whenever there are
//  bytes; for S_BIN_IF, no bytes where the value is absent (sent as nil).
static inline int
s_pack_bytes (msgpack_packer *pk, const s_field_t *field, const void *base)
{
    const wc_bytes_t *bytes = (const wc_bytes_t *) s_member_const (base, field);
    bool present = field->kind != S_BIN_IF || field->present (base);
    if (s_length_rc (field, bytes->len)
    ||  (bytes->len > 0 && (bytes->ptr == NULL || !present)))
        return WALCAST_EINVAL;
    bool ok;
    if (!present)
        ok = msgpack_pack_nil (pk) == 0;
    else
    if (field->kind == S_STR)
        ok = msgpack_pack_str (pk, bytes->len) == 0
          && (bytes->len == 0
              || msgpack_pack_str_body (pk, bytes->ptr, bytes->len) == 0);
    else
        ok = msgpack_pack_bin (pk, bytes->len) == 0
          && (bytes->len == 0
              || msgpack_pack_bin_body (pk, bytes->ptr, bytes->len) == 0);
    return ok ? 0 : WALCAST_ENOMEM;
}

//  One field: check it against the description (WALCAST_EINVAL), then
//  pack it in the shortest form its kind allows (WALCAST_ENOMEM when the
//  buffer cannot grow).
static inline int
s_pack_field (msgpack_packer *pk, const s_field_t *field, const void *base)
{
    const void *at = s_member_const (base, field);
    bool ok = false;
    switch (field->kind) {
        case S_U64:
            if (!s_uint_ok (field, *(const uint64_t *) at))
                return WALCAST_EINVAL;
            ok = msgpack_pack_uint64 (pk, *(const uint64_t *) at) == 0;
            break;
        case S_U32:
        case S_U32_SAT:
            ok = msgpack_pack_uint32 (pk, *(const uint32_t *) at) == 0;
            break;
        case S_U8:
            if (!s_uint_ok (field, *(const uint8_t *) at))
                return WALCAST_EINVAL;
            ok = msgpack_pack_uint8 (pk, *(const uint8_t *) at) == 0;
            break;
        case S_BOOL:
            ok = (*(const bool *) at ? msgpack_pack_true (pk)
                                     : msgpack_pack_false (pk)) == 0;
            break;
        case S_BIN:
        case S_STR:
        case S_BIN_IF:
            return s_pack_bytes (pk, field, base);
        case S_RECORD:
        {
            uint32_t count = s_record_sent (field->record, at);
            if (msgpack_pack_array (pk, count) != 0)
                return WALCAST_ENOMEM;
            return s_pack_fields (pk, field->record->fields, count, at);
        }
        case S_LIST:        //  only the header; the caller appends the items
            if (s_length_rc (field, *(const uint32_t *) at))
                return WALCAST_EINVAL;
            ok = msgpack_pack_array (pk, *(const uint32_t *) at) == 0;
            break;
    }
    return ok ? 0 : WALCAST_ENOMEM;
}

static int
s_pack_fields (msgpack_packer *pk, const s_field_t *fields, uint32_t count,
               const void *base)
{
    for (uint32_t i = 0; i < count; i++) {
        int rc = s_pack_field (pk, &fields [i], base);
        if (rc)
            return rc;
    }
    return 0;
}

//  [version, type, and the first of n - 2 elements follow]
static bool
s_pack_head (msgpack_packer *pk, uint32_t n, int type)
{
    return msgpack_pack_array (pk, n) == 0
        && msgpack_pack_uint8 (pk, WC_PROTOCOL_VERSION) == 0
        && msgpack_pack_uint8 (pk, (uint8_t) type) == 0;
}

//  Close an append: on failure cut out back to its size before the append,
//  so a failed append leaves no half message.
static int
s_finish (int rc, msgpack_sbuffer *out, size_t start)
{
    if (rc && out->size > start)
        out->size = start;
    return rc;
}

//  How many of the message's fields go out: the optional ones only when
//  they carry something (so a message without them is byte for byte what
//  older peers send).
static uint32_t
s_fields_sent (const s_msg_desc_t *desc, const wc_msg_t *msg)
{
    uint32_t noptional = desc->nfields - desc->nrequired;
    if (noptional == 0)
        return desc->nrequired;     //  (PING's fields are NULL: no offset from it)
    const s_field_t *optional = desc->fields + desc->nrequired;
    if (desc->opt == S_OPT_GROUP)
        noptional = s_uint_of (msg, &optional [0]) ? noptional : 0;
    else
    if (desc->opt == S_OPT_EACH) {
        uint32_t together = s_together (msg->type, noptional);
        bool any = false;
        for (uint32_t i = 0; i < together; i++)
            any = any || s_uint_of (msg, &optional [i]) != 0;
        uint32_t sent = any ? together : 0;
        for (uint32_t i = together; i < noptional; i++)
            if (s_uint_of (msg, &optional [i]) != 0)
                sent = i + 1;
        noptional = sent;
    }
    return desc->nrequired + noptional;
}

//  Check msg against its description while appending it.
static int
s_encode (const s_msg_desc_t *desc, const wc_msg_t *msg, msgpack_sbuffer *out)
{
    uint32_t count = s_fields_sent (desc, msg);
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    size_t start = out->size;
    int rc = WALCAST_ENOMEM;
    if (s_pack_head (&pk, 2 + (desc->rid ? 1 : 0) + count, msg->type)
    &&  (!desc->rid || msgpack_pack_uint64 (&pk, msg->rid) == 0))
        rc = s_pack_fields (&pk, desc->fields, count, msg);
    return s_finish (rc, out, start);
}

int
wc_msg_encode (const wc_msg_t *msg, msgpack_sbuffer *out)
{
    const s_msg_desc_t *desc = msg->type < 0 ? NULL : s_desc ((uint64_t) msg->type);
    if (desc == NULL)
        return WALCAST_EINVAL;
    //  ENTRIES, WRITE_BATCH and TOPOLOGY hold a list, whose items the
    //  caller appends: they have their own encoders.
    for (uint32_t i = 0; i < desc->nfields; i++)
        if (desc->fields [i].kind == S_LIST)
            return WALCAST_EINVAL;
    return s_encode (desc, msg, out);
}

//  A bare entry or node_info array.
static inline int
s_encode_record (const s_record_t *record, const void *base,
                 msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    size_t start = out->size;
    int rc = WALCAST_ENOMEM;
    uint32_t count = s_record_sent (record, base);
    if (msgpack_pack_array (&pk, count) == 0)
        rc = s_pack_fields (&pk, record->fields, count, base);
    return s_finish (rc, out, start);
}

int
wc_entry_encode (const wc_entry_t *entry, msgpack_sbuffer *out)
{
    return s_encode_record (&s_entry_record, entry, out);
}

int
wc_write_encode (const wc_write_t *write, msgpack_sbuffer *out)
{
    return s_encode_record (&s_write_record, write, out);
}

int
wc_write_batch_encode_header (uint64_t rid, uint8_t acks, uint32_t ack_timeout_ms,
                              uint32_t count, msgpack_sbuffer *out)
{
    wc_msg_t msg = { .type = WC_MSG_WRITE_BATCH, .rid = rid };
    msg.u.batch.acks = acks;
    msg.u.batch.ack_timeout_ms = ack_timeout_ms;
    msg.u.batch.count = count;
    return s_encode (&s_descs [WC_MSG_WRITE_BATCH], &msg, out);
}

int
wc_node_info_encode (const wc_node_info_t *info, msgpack_sbuffer *out)
{
    return s_encode_record (&s_node_record, info, out);
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
    return s_finish (ok ? 0 : WALCAST_ENOMEM, out, start);
}

int
wc_entries_encode_header (uint64_t rid, uint64_t last_seq, uint32_t count,
                          msgpack_sbuffer *out)
{
    wc_msg_t msg = { .type = WC_MSG_ENTRIES, .rid = rid };
    msg.u.entries.last_seq = last_seq;
    msg.u.entries.count = count;
    return s_encode (&s_descs [WC_MSG_ENTRIES], &msg, out);
}

int
wc_entries_encode_stream_header (uint64_t last_seq, uint32_t count, uint64_t cluster,
                                 uint64_t flags, msgpack_sbuffer *out)
{
    if (count > WC_MAX_BATCH)
        return WALCAST_EINVAL;
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    size_t start = out->size;
    bool ok = s_pack_head (&pk, flags ? 8 : cluster ? 7 : 6, WC_MSG_ENTRIES)
           && msgpack_pack_uint64 (&pk, 0) == 0                  /* rid */
           && msgpack_pack_uint64 (&pk, last_seq) == 0
           && msgpack_pack_array (&pk, count) == 0;
    return s_finish (ok ? 0 : WALCAST_ENOMEM, out, start);
}

int
wc_entries_encode_trailer (uint64_t applied_us, uint64_t cluster, uint64_t flags,
                           msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    size_t start = out->size;
    bool ok = msgpack_pack_uint64 (&pk, applied_us) == 0
           && ((cluster == 0 && flags == 0) || msgpack_pack_uint64 (&pk, cluster) == 0)
           && (flags == 0 || msgpack_pack_uint64 (&pk, flags) == 0);
    return s_finish (ok ? 0 : WALCAST_ENOMEM, out, start);
}

int
wc_topology_encode_header (uint64_t rid, uint64_t version, uint32_t count,
                           msgpack_sbuffer *out)
{
    wc_msg_t msg = { .type = WC_MSG_TOPOLOGY, .rid = rid };
    msg.u.topology.version = version;
    msg.u.topology.count = count;
    return s_encode (&s_descs [WC_MSG_TOPOLOGY], &msg, out);
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
