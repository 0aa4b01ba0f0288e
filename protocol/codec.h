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

/*  One write of a WRITE_BATCH, encoded as the array [op, key:bin,
    value:bin|nil] (nil for DEL). */
typedef struct {
    uint8_t    op;        /* wc_op_t */
    wc_bytes_t key;       /* 1..WC_MAX_KEY bytes */
    wc_bytes_t value;     /* 0..WC_MAX_VALUE bytes; empty for DEL */
} wc_write_t;

/*  Message types (the second array element). */
typedef enum {
    /* service socket, client -> node */
    WC_MSG_PUT          = 1,
    WC_MSG_DEL          = 2,
    WC_MSG_GET          = 3,
    WC_MSG_PING         = 4,
    WC_MSG_STATUS       = 5,
    WC_MSG_DIGEST       = 6,
    WC_MSG_ACK          = 7,    /* replica -> its upstream: what it holds durably */
    WC_MSG_SNAPSHOT     = 8,    /* take a snapshot now */
    WC_MSG_WRITE_BATCH  = 9,    /* many writes, one commit, one reply */
    /* service socket, node -> client */
    WC_MSG_WRITE_OK     = 16,
    WC_MSG_VALUE        = 17,
    WC_MSG_PONG         = 18,
    WC_MSG_STATUS_REPLY = 19,
    WC_MSG_DIGEST_REPLY = 20,
    WC_MSG_SNAPSHOT_DONE = 21,
    WC_MSG_WRITES_OK    = 22,   /* the reply to WRITE_BATCH */
    WC_MSG_ERROR        = 31,   /* reply to any request, on any ROUTER socket */
    /* stream socket, primary -> subscribers */
    WC_MSG_ENTRY        = 32,
    WC_MSG_HEARTBEAT    = 33,
    /* catch-up socket */
    WC_MSG_FETCH        = 48,   /* replica -> primary */
    WC_MSG_ENTRIES      = 49,   /* primary -> replica */
    WC_MSG_EPOCH_END    = 50,   /* replica -> upstream: where did my epoch end? */
    WC_MSG_EPOCH_END_REPLY = 51,
    WC_MSG_SNAPSHOT_GET = 52,   /* replica -> upstream: a chunk of a snapshot */
    WC_MSG_SNAPSHOT_CHUNK = 53,
    /* broker socket (ROUTER at B); node -> broker, no reply */
    WC_MSG_REGISTER     = 64,
    WC_MSG_NODE_HEARTBEAT = 65,
    /* broker socket, client -> broker; reply TOPOLOGY */
    WC_MSG_TOPOLOGY_GET = 66,
    /* broker -> client, as a reply (rid echoed) and on the broker's PUB at
       B+1 under topic "topology" (rid 0) */
    WC_MSG_TOPOLOGY     = 67,
    /* broker -> node, on the node's DEALER (rid echoed by nothing: the
       node acts, and its next beat shows it) */
    WC_MSG_PROMOTE      = 68,   /* become the primary of epoch */
    WC_MSG_FOLLOW       = 69,   /* follow primary (epoch: the cluster's) */
    WC_MSG_HANDOVER     = 70,   /* primary: stop writes, wait for target */
    /* client -> broker; reply SWITCHOVER_DONE or ERROR */
    WC_MSG_SWITCHOVER   = 71,
    WC_MSG_SWITCHOVER_DONE = 72,
    /* client -> broker (0.7): drop a node that is down from the
       directory; reply TOPOLOGY (the directory without it) or ERROR */
    WC_MSG_FORGET       = 73
} wc_msg_type_t;

/*  node_info flags. */
#define WC_NODE_CANDIDATE  1u     /* started as a primary, awaits the broker's PROMOTE */
#define WC_NODE_DIVERGED   2u     /* its log forked from its upstream's: not eligible */
#define WC_NODE_STALLED    4u     /* its log cannot be written (disk full...) */
#define WC_NODE_HANDED_OVER 8u    /* a primary handing over: the target holds all
                                     it has, handover_seq (0.7; says so at seq 0) */

/*  ENTRIES' flags (walcast 0.9; stream messages only). */
#define WC_ENTRIES_ACK_WANTED 1u  /* the publisher waits for ACKs: send yours promptly */

/*  What a node says about itself to the broker, and what the broker says
    of each node in a TOPOLOGY. Encoded as the array
    [id:str, region:str, role:uint, epoch, applied_seq, addr:str,
     primary:str, lag, lag_ms, up:bool, silent_ms, flags, handover_seq,
     curve_key:str]
    (the last three optional on decode, 0 or empty when absent). */
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
    uint64_t   flags;        /* WC_NODE_* */
    uint64_t   handover_seq; /* a primary handing over: its last seq, once the
                                target holds it (0: none, or nothing to hand
                                over: see WC_NODE_HANDED_OVER) */
    wc_bytes_t curve_key;    /* its CURVE public key in Z85 (WC_CURVE_KEY_LEN),
                                empty when its sockets are not encrypted */
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
           bound); and only once the node's latest epoch is >= min_epoch
           (the token's epoch: a node still in an older epoch has not
           seen the token's history, whatever its seq).
           [v, 3, rid, key, min_seq, max_staleness_ms, wait_ms, min_epoch] */
        struct {
            wc_bytes_t key;
            wc_bytes_t value;
            uint64_t   min_seq;
            uint32_t   max_staleness_ms;
            uint32_t   wait_ms;
            uint64_t   min_epoch;
            /* PUT, DEL only, optional (0 when absent): reply once acks
               replicas hold the write durably (WC_ACKS_ALL: every current
               replica, at least one), or after ack_timeout_ms (0:
               WC_DEFAULT_ACK_TIMEOUT_MS; clamped to WC_MAX_ACK_TIMEOUT_MS)
               with ENOTREPLICATED.
               [v, 1, rid, key, value, acks, ack_timeout_ms],
               [v, 2, rid, key, acks, ack_timeout_ms] */
            uint8_t    acks;
            uint32_t   ack_timeout_ms;
        } req;
        /* WRITE_BATCH [v, 9, rid, acks, ack_timeout_ms, [write...]]:
           1..WC_MAX_WRITE_BATCH writes, check each with
           wc_write_from_object; acks and ack_timeout_ms as for PUT */
        struct {
            uint8_t               acks;
            uint32_t              ack_timeout_ms;
            uint32_t              count;
            const msgpack_object *items;
            /* set instead of items by a reader that took the body with
               wc_scan_write_batch: the body, to read the writes from */
            const uint8_t        *raw;
            size_t                raw_len;
        } batch;
        /* WRITES_OK [v, 22, rid, epoch, first_seq, count, acked, code,
           text, wanted]: the first count writes of the batch hold seqs
           first_seq .. first_seq + count - 1 (count 0: first_seq 0); the
           others were refused with the wire error code and text; wanted
           is how many replicas the primary waited for (acked below it:
           not confirmed replicated). The last three are optional, each
           (absent: 0 and empty: every write taken, no count to meet) */
        struct {
            uint64_t   epoch;
            uint64_t   first_seq;
            uint32_t   count;
            uint32_t   acked;
            uint32_t   code;
            wc_bytes_t text;
            uint32_t   wanted;
        } writes_ok;
        /* WRITE_OK [v, 16, rid, epoch, seq, acked]: acked (optional, 0
           when absent) is how many replicas confirmed it */
        struct { uint64_t epoch; uint64_t seq; uint32_t acked; } write_ok;
        /* ACK [v, 7, rid 0, id, epoch, seq, cluster]: the replica id holds
           seq durably and epoch is the latest of its epoch history (0:
           none); cluster (optional, 0 when absent: unknown) is its
           cluster id; no reply */
        struct { wc_bytes_t id; uint64_t epoch; uint64_t seq; uint64_t cluster; } ack;
        /* SNAPSHOT_DONE [v, 21, rid, seq, bytes] */
        struct { uint64_t seq; uint64_t bytes; } snapshot_done;
        /* EPOCH_END [v, 50, rid, epoch]; EPOCH_END_REPLY [v, 51, rid, epoch,
           end_seq, latest, cluster]: the largest epoch <= the one asked
           that the node knows (0: none), the last seq of it (the node's
           last seq when it is its latest), the node's latest epoch, and
           its cluster id (optional, 0 when absent: unknown) */
        struct { uint64_t epoch; uint64_t end_seq; uint64_t latest; uint64_t cluster; }
            epoch_end;
        /* SNAPSHOT_GET [v, 52, rid, seq, offset, max_bytes, cluster] (seq
           0: the newest; cluster as FETCH's); SNAPSHOT_CHUNK [v, 53, rid,
           seq, size, offset, data] */
        struct { uint64_t seq; uint64_t offset; uint32_t max_bytes; uint64_t cluster; }
            snapshot_get;
        struct { uint64_t seq; uint64_t size; uint64_t offset; wc_bytes_t data; }
            snapshot_chunk;
        /* PROMOTE [v, 68, rid, epoch]. Every epoch a broker names
           (PROMOTE, FOLLOW, HANDOVER, SWITCHOVER_DONE) is >= 1. */
        struct { uint64_t epoch; } promote;
        /* FOLLOW [v, 69, rid, epoch, primary]: primary's HOST:PORT, 1..
           WC_MAX_ADDR */
        struct { uint64_t epoch; wc_bytes_t primary; wc_bytes_t primary_key; } follow;
        /* HANDOVER [v, 70, rid, epoch, target_id, target_addr]: empty
           target_id cancels */
        struct { uint64_t epoch; wc_bytes_t target_id; wc_bytes_t target_addr; }
            handover;
        /* SWITCHOVER [v, 71, rid, node_id]; SWITCHOVER_DONE [v, 72, rid,
           epoch, primary]: the new primary's epoch and HOST:PORT (1..
           WC_MAX_ADDR) */
        struct { wc_bytes_t node_id; } switchover;
        struct { uint64_t epoch; wc_bytes_t primary; } switchover_done;
        /* FORGET [v, 73, rid, node_id] (1..WC_MAX_ID) */
        struct { wc_bytes_t node_id; } forget;
        /* VALUE: found=false has an empty value; seq = node's applied seq;
           epoch = the node's latest epoch (0.7, optional: 0 unknown) */
        struct { bool found; wc_bytes_t value; uint64_t seq; uint64_t epoch; } value;
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
            uint64_t   flags;        /* WC_NODE_* (optional: absent is 0) */
        } status;
        /* DIGEST_REPLY */
        struct { uint64_t seq; uint64_t hash; } digest;
        /* ERROR: code is the wire code (positive); see wc_err_from_wire */
        struct { uint32_t code; wc_bytes_t text; wc_bytes_t detail; } error;
        /* ENTRY */
        wc_entry_t entry;
        /* HEARTBEAT: cluster (optional, 0 when absent: unknown) is the
           publisher's cluster id */
        struct { uint64_t epoch; uint64_t last_seq; uint64_t clock_ms; uint64_t cluster; }
            heartbeat;
        /* FETCH: max_bytes is clamped to WC_MAX_FETCH_BYTES by the server;
           cluster (optional, 0 when absent) the asking replica's cluster id */
        struct { uint64_t from_seq; uint32_t max_bytes; uint64_t cluster; } fetch;
        /* ENTRIES: items[0..count) are entry arrays, check each with
           wc_entry_from_object. last_seq is the sender's last seq;
           applied_us (optional, 0 when absent) the sender's wall clock,
           us, when it had applied them all (stream messages); cluster
           (optional, 0 when absent) the publisher's cluster id; flags
           (optional, 0 when absent; WC_ENTRIES_*) what the publisher asks
           of its subscribers. */
        struct { uint64_t last_seq; uint32_t count; const msgpack_object *items;
                 uint64_t applied_us; uint64_t cluster; uint64_t flags; } entries;
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

/*  The same for a stream ENTRIES that carries applied_us (not 0) and,
    when cluster is not 0, the publisher's cluster id, and when flags is
    not 0, its flags: the head says six, seven or eight elements,
    [version, ENTRIES, 0, last_seq, array of count, applied_us (, cluster
    (, flags))], cluster going out (as 0) when flags does; the caller
    appends the count entries and then wc_entries_encode_trailer
    (applied_us, cluster, flags), with the same cluster and flags. */
int wc_entries_encode_stream_header (uint64_t last_seq, uint32_t count, uint64_t cluster,
                                     uint64_t flags, msgpack_sbuffer *out);
int wc_entries_encode_trailer (uint64_t applied_us, uint64_t cluster, uint64_t flags,
                               msgpack_sbuffer *out);

/*  Append the head of a WRITE_BATCH: [version, WRITE_BATCH, rid, acks,
    ack_timeout_ms, array of count]; then append count wc_write_encode. */
int wc_write_batch_encode_header (uint64_t rid, uint8_t acks, uint32_t ack_timeout_ms,
                                  uint32_t count, msgpack_sbuffer *out);

/*  Append one bare write array [op, key, value|nil]. */
int wc_write_encode (const wc_write_t *write, msgpack_sbuffer *out);

/*  Check and convert one decoded write array (an item of WRITE_BATCH). */
int wc_write_from_object (const msgpack_object *obj, wc_write_t *write);

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

/*  Check the structure of the one msgpack object that starts at buf,
    without building it (what msgpack-c would allocate for it is then
    proportional to its bytes): have bytes of it are at hand and it may
    span room bytes at most (have beyond room is not looked at). Returns
    0 with *size its size when it is whole within have; 0 with *size 0
    when it goes on past have but may fit in room (read more, ask again);
    WALCAST_EPROTO when it cannot be valid within room: it would span
    more, declares more container elements than the bytes left can hold
    (one byte each at least), nests containers deeper than 16, or uses
    the reserved byte 0xc1. wc_msg_decode checks every message this way,
    with have = room = its length. */
int wc_msgpack_check (const void *buf, size_t have, size_t room, size_t *size);

/*  Name of a message type ("PUT"), or "UNKNOWN". For logs. */
const char *wc_msg_type_name (int type);

#endif
