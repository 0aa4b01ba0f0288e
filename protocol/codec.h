/*  codec.h - walcast messages and WAL entries <-> msgpack.

    Every message is one msgpack array: [version, type, ...fields]. Request
    and reply messages carry a request id right after the type, echoed in
    the reply. docs/PROTOCOL.md is the normative description; this header
    is its C face.

    Two ideas make the codec cheap and safe:
    - Decoding borrows: wc_bytes_t fields point into the caller's buffer
      (msgpack-c's unpacker references str/bin data in place), so a decoded
      message is valid only while that buffer and the msgpack_unpacked that
      decoded it are alive. Nothing is copied until a consumer keeps it.
    - A WAL entry has one encoding, the bare entry array. The WAL stores it,
      ENTRY messages wrap it, ENTRIES replies concatenate it: nodes move
      entries from disk to the wire without re-encoding them.

    Decoders never assert on input: they check every type, size and limit
    (protocol/wc_limits.h), treat truncated input and trailing bytes as
    malformed, and return a WALCAST_E* code, checking the types of every
    field before any length, as PROTOCOL.md ("Validation") orders it.
    Arrays longer than a message needs are accepted and the extra
    elements ignored (forward compatibility), shorter ones are malformed.
    Each message's fields are described once, in a table in codec.c that
    both the encoder and the decoder follow.
*/
#ifndef WC_CODEC_H_INCLUDED
#define WC_CODEC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>
#include "wc_limits.h"
#include "errors.h"

/*  A borrowed byte string (not NUL-terminated). */
typedef struct {
    const uint8_t *ptr;
    uint32_t       len;
} wc_bytes_t;

/*  Operations of a WAL entry. */
typedef enum {
    WC_OP_PUT = 1,
    WC_OP_DEL = 2
} wc_op_t;

/*  Node roles, as carried in STATUS replies. */
typedef enum {
    WC_ROLE_PRIMARY = 1,
    WC_ROLE_REPLICA = 2
} wc_role_t;

/*  One entry of the write-ahead log. Encoded as the array
    [seq, epoch, ts_ms, op, key:bin, value:bin|nil] (nil for DEL). */
typedef struct {
    uint64_t   seq;       /* 1, 2, 3 ... without holes */
    uint64_t   epoch;     /* primary term that wrote it, >= 1 */
    uint64_t   ts_ms;     /* primary's wall clock, ms since 1970 */
    uint8_t    op;        /* wc_op_t */
    wc_bytes_t key;       /* 1..WC_MAX_KEY bytes */
    wc_bytes_t value;     /* 0..WC_MAX_VALUE bytes; empty for DEL */
} wc_entry_t;

/*  Message types (the second array element). */
typedef enum {
    /* service socket, client -> node */
    WC_MSG_PUT          = 1,
    WC_MSG_DEL          = 2,
    WC_MSG_GET          = 3,
    WC_MSG_PING         = 4,
    WC_MSG_STATUS       = 5,
    WC_MSG_DIGEST       = 6,
    /* service socket, node -> client */
    WC_MSG_WRITE_OK     = 16,
    WC_MSG_VALUE        = 17,
    WC_MSG_PONG         = 18,
    WC_MSG_STATUS_REPLY = 19,
    WC_MSG_DIGEST_REPLY = 20,
    WC_MSG_ERROR        = 31,   /* reply to any request, on any ROUTER socket */
    /* stream socket, primary -> subscribers */
    WC_MSG_ENTRY        = 32,
    WC_MSG_HEARTBEAT    = 33,
    /* catch-up socket */
    WC_MSG_FETCH        = 48,   /* replica -> primary */
    WC_MSG_ENTRIES      = 49,   /* primary -> replica */
    /* broker socket (ROUTER at B); node -> broker, no reply */
    WC_MSG_REGISTER     = 64,
    WC_MSG_NODE_HEARTBEAT = 65,
    /* broker socket, client -> broker; reply TOPOLOGY */
    WC_MSG_TOPOLOGY_GET = 66,
    /* broker -> client, as a reply (rid echoed) and on the broker's PUB at
       B+1 under topic "topology" (rid 0) */
    WC_MSG_TOPOLOGY     = 67
} wc_msg_type_t;

/*  What a node says about itself to the broker, and what the broker says
    of each node in a TOPOLOGY. Encoded as the array
    [id:str, region:str, role:uint, epoch, applied_seq, addr:str,
     primary:str, lag, lag_ms, up:bool, silent_ms]. */
typedef struct {
    wc_bytes_t id;           /* 1..WC_MAX_ID */
    wc_bytes_t region;       /* 0..WC_MAX_ID */
    uint8_t    role;         /* wc_role_t */
    uint64_t   epoch;
    uint64_t   applied_seq;
    wc_bytes_t addr;         /* 1..WC_MAX_ADDR: HOST:PORT clients should use */
    wc_bytes_t primary;      /* 0..WC_MAX_ADDR: who it follows; empty on a primary */
    uint64_t   lag;          /* entries behind its primary, as it knows */
    uint64_t   lag_ms;       /* its staleness estimate */
    bool       up;           /* broker's view; a node sends true */
    uint64_t   silent_ms;    /* ms since the broker last heard it; a node sends 0 */
} wc_node_info_t;

/*  A decoded (or to-be-encoded) message. Only the member named by `type`
    is meaningful. */
typedef struct {
    int      type;               /* wc_msg_type_t */
    uint64_t rid;                /* request id; 0 on stream messages */
    union {
        /* PUT, DEL, GET (DEL and GET leave value empty). GET only, all
           optional on the wire (0 when absent): answer only once applied
           >= min_seq, waiting up to wait_ms for it (else ESTALE); refuse
           with ESTALE when the node's lag_ms > max_staleness_ms (0: no
           bound). [v, 3, rid, key, min_seq, max_staleness_ms, wait_ms] */
        struct {
            wc_bytes_t key;
            wc_bytes_t value;
            uint64_t   min_seq;
            uint32_t   max_staleness_ms;
            uint32_t   wait_ms;
        } req;
        /* WRITE_OK */
        struct { uint64_t epoch; uint64_t seq; } write_ok;
        /* VALUE: found=false has an empty value; seq = node's applied seq */
        struct { bool found; wc_bytes_t value; uint64_t seq; } value;
        /* PONG [v, 18, rid, epoch, seq, clock_ms, role, id, region, lag_ms];
           the last four are optional on decode (role 0, empty, 0) */
        struct {
            uint64_t   epoch;
            uint64_t   seq;
            uint64_t   clock_ms;
            uint8_t    role;
            wc_bytes_t id;
            wc_bytes_t region;
            uint64_t   lag_ms;
        } pong;
        /* STATUS_REPLY */
        struct {
            wc_bytes_t id;           /* 1..WC_MAX_ID */
            wc_bytes_t region;       /* 0..WC_MAX_ID */
            uint8_t    role;         /* wc_role_t */
            uint64_t   epoch;
            uint64_t   applied_seq;
            wc_bytes_t primary;      /* 0..WC_MAX_ADDR; empty on a primary */
            uint64_t   primary_seq;
            uint64_t   lag_ms;
        } status;
        /* DIGEST_REPLY */
        struct { uint64_t seq; uint64_t hash; } digest;
        /* ERROR: code is the wire code (positive); see wc_err_from_wire */
        struct { uint32_t code; wc_bytes_t text; wc_bytes_t detail; } error;
        /* ENTRY */
        wc_entry_t entry;
        /* HEARTBEAT */
        struct { uint64_t epoch; uint64_t last_seq; uint64_t clock_ms; } heartbeat;
        /* FETCH: max_bytes is clamped to WC_MAX_FETCH_BYTES by the server */
        struct { uint64_t from_seq; uint32_t max_bytes; } fetch;
        /* ENTRIES: items[0..count) are entry arrays, check each with
           wc_entry_from_object. last_seq is the sender's last seq. */
        struct { uint64_t last_seq; uint32_t count; const msgpack_object *items; } entries;
        /* REGISTER, NODE_HEARTBEAT: [v, 64|65, rid, node_info] */
        wc_node_info_t node;
        /* TOPOLOGY_GET: [v, 66, rid] (no fields) */
        /* TOPOLOGY: [v, 67, rid, version, [node_info...]]; items[0..count)
           are node_info arrays, check each with wc_node_info_from_object.
           version goes up by one at every change the broker sees. */
        struct { uint64_t version; uint32_t count; const msgpack_object *items; } topology;
    } u;
} wc_msg_t;

/*  Append the encoding of msg to out. Fails with WALCAST_EINVAL for a type
    this function does not encode (ENTRIES: use wc_entries_encode_header)
    or fields over their limits, WALCAST_ENOMEM when the buffer cannot grow. */
int wc_msg_encode (const wc_msg_t *msg, msgpack_sbuffer *out);

/*  Decode one whole message from buf. storage must be initialised by the
    caller (msgpack_unpacked_init) and destroyed after msg is no longer
    used; the next decode into the same storage reuses its memory, so it
    ends the life of the previous message. Returns 0, WALCAST_EPROTO
    (malformed, truncated, trailing bytes, wrong types, unknown type),
    WALCAST_EVERSION, WALCAST_ETOOBIG or WALCAST_ENOMEM. */
int wc_msg_decode (const void *buf, size_t len, msgpack_unpacked *storage,
                   wc_msg_t *msg);

/*  Append the bare entry array (the WAL payload) to out. */
int wc_entry_encode (const wc_entry_t *entry, msgpack_sbuffer *out);

/*  Decode a bare entry array, as stored in the WAL. Same rules as
    wc_msg_decode. */
int wc_entry_decode (const void *buf, size_t len, msgpack_unpacked *storage,
                     wc_entry_t *entry);

/*  Check and convert one decoded entry array (an item of ENTRIES). */
int wc_entry_from_object (const msgpack_object *obj, wc_entry_t *entry);

/*  Append an ENTRY message whose entry is already encoded (a WAL payload):
    [version, ENTRY, <entry bytes as they are>]. */
int wc_entry_msg_encode_raw (const void *entry_bytes, size_t len,
                             msgpack_sbuffer *out);

/*  Append the head of an ENTRIES reply: [version, ENTRIES, rid, last_seq,
    array of count]. The caller then appends exactly count encoded entries
    (raw WAL payloads) with msgpack_sbuffer_write. */
int wc_entries_encode_header (uint64_t rid, uint64_t last_seq, uint32_t count,
                              msgpack_sbuffer *out);

/*  Append the head of a TOPOLOGY message: [version, TOPOLOGY, rid,
    version, array of count]; then append count wc_node_info_encode. */
int wc_topology_encode_header (uint64_t rid, uint64_t version, uint32_t count,
                               msgpack_sbuffer *out);

/*  Append one bare node_info array. */
int wc_node_info_encode (const wc_node_info_t *info, msgpack_sbuffer *out);

/*  Check and convert one decoded node_info array (an item of TOPOLOGY). */
int wc_node_info_from_object (const msgpack_object *obj, wc_node_info_t *info);

/*  Convenience: append an ERROR reply for library code err (negative)
    with a message and an optional detail (may be NULL). */
int wc_error_encode (uint64_t rid, int err, const char *text,
                     const char *detail, msgpack_sbuffer *out);

/*  Copy untrusted bytes into dest (size >= 1) as a NUL-terminated string,
    truncated to fit, with control bytes (NUL, ESC, newline...) replaced by
    '?', so what a peer sent can be logged or printed safely. */
void wc_bytes_printable (char *dest, size_t size, const wc_bytes_t *src);

/*  Name of a message type ("PUT"), or "UNKNOWN". For logs. */
const char *wc_msg_type_name (int type);

#endif
