/*  wc_limits.h - sizes the wire protocol enforces.

    Every decoder checks these after decoding, and every socket is set up
    with the ones for its part of the wire, so a peer can never make a
    node allocate or store more than they allow. docs/PROTOCOL.md
    ("Limits") states each of them once, with the same name and value;
    change both together.
*/
#ifndef WC_LIMITS_H_INCLUDED
#define WC_LIMITS_H_INCLUDED

#define WC_PROTOCOL_VERSION  1

//  Fields
#define WC_MAX_KEY           1024u              /* bytes; keys are 1..WC_MAX_KEY */
#define WC_MAX_VALUE         (1024u * 1024u)    /* bytes; values are 0..WC_MAX_VALUE */
#define WC_MAX_ID            64u                /* node id, region name */
#define WC_MAX_ADDR          255u               /* HOST:PORT strings */
#define WC_CURVE_KEY_LEN     40u                /* a CURVE public key in Z85 */
#define WC_MAX_TEXT          1024u              /* error message text */
#define WC_MAX_FETCH_BYTES   (4u * 1024u * 1024u)  /* cap on FETCH max_bytes */
#define WC_MAX_BATCH         100000u            /* entries in one ENTRIES reply */
#define WC_MAX_NODES         1024u              /* nodes in one TOPOLOGY */
#define WC_MAX_WRITE_BATCH   4096u              /* writes in one WRITE_BATCH */
#define WC_MAX_WAIT_MS       60000u             /* GET wait_ms is clamped to this */
#define WC_MAX_ACKS          254u               /* acks a write may count on: 1..254 */
#define WC_ACKS_ALL          255u               /* acks: every current replica, at least 1 */
#define WC_MAX_ACK_TIMEOUT_MS 60000u            /* ack_timeout_ms is clamped to this */
#define WC_MAX_SNAPSHOT_CHUNK (1024u * 1024u)   /* SNAPSHOT_CHUNK data, octets */

//  Time. A node publishes a HEARTBEAT every WC_HEARTBEAT_MS, so a
//  replica's lag estimate is never below it for long: a GET's
//  max_staleness_ms under it refuses even current replicas (PROTOCOL.md,
//  "Staleness floor").
#define WC_HEARTBEAT_MS      100u

//  Write acknowledgements (PROTOCOL.md, "Write acknowledgements"). A
//  write that asks for acks with ack_timeout_ms 0 waits this long for
//  them; a replica sends its upstream an ACK at least this often.
#define WC_DEFAULT_ACK_TIMEOUT_MS 5000u
#define WC_ACK_INTERVAL_MS   100u

//  Bodies. The largest body any peer sends; receivers of catch-up and
//  broker replies accept up to it. An ENTRIES reply may pass max_bytes
//  by one entry, so the cap leaves room for one more.
#define WC_MAX_MESSAGE       (WC_MAX_FETCH_BYTES + WC_MAX_VALUE + WC_MAX_KEY + 4096u)

//  Frames sent to each socket (a frame: one ZeroMQ message part). A
//  message with a larger frame is dropped and counted; a node sets
//  ZMQ_MAXMSGSIZE to the limit, so libzmq closes the connection of the
//  peer that sent it.
//  - service socket (ROUTER, P): any valid request fits;
#define WC_MAX_REQUEST       (WC_MAX_VALUE + WC_MAX_KEY + 256u)
//  - catch-up socket (ROUTER, P+2): a FETCH is small;
#define WC_MAX_CATCHUP_REQUEST  4096u
//  - broker socket (ROUTER, B): a REGISTER is under 1 KiB;
#define WC_MAX_BROKER_REQUEST   4096u
//  - stream socket (XPUB, P+1): a subscription is one octet (1: subscribe,
//    0: cancel) and a prefix. A node honours only the empty prefix (every
//    message; watchers filter by key themselves) and ignores the others.
#define WC_MAX_SUBSCRIPTION  (1u + WC_MAX_KEY)
//    A ZMTP 3.1 peer (libzmq 4.3) sends it as a SUBSCRIBE command, whose
//    frame is 9 octets longer than that (the name "\x09SUBSCRIBE" where
//    3.0 has the one octet), and libzmq holds that frame to the limit.
#define WC_ZMTP_SUBSCRIBE_EXTRA  9u

//  Every message a ROUTER socket receives: at most WC_MAX_FRAMES frames
//  in all, the identity frame the ROUTER adds included, and each
//  envelope frame (every frame but the body) at most
//  WC_MAX_ENVELOPE_FRAME octets (routing ids are at most 255 octets).
#define WC_MAX_FRAMES        8u
#define WC_MAX_ENVELOPE_FRAME  255u

/*  Largest reply a node sends on the service socket (a VALUE of the
    largest value, with room for its fields). */
#define WC_MAX_REPLY         (WC_MAX_VALUE + 256u)

/*  Largest ENTRY body a node publishes on its stream; a larger entry is
    announced by a HEARTBEAT at its seq and fetched (PROTOCOL.md, Stream).
    A stream message is at most this plus a topic of WC_MAX_KEY. */
#define WC_MAX_STREAM_ENTRY  (16u * 1024u)

/*  A node publishes what it applied in a turn as ENTRIES of at most this
    many octets of entries (one entry more when it is the first) and at
    most WC_MAX_STREAM_COUNT entries, so a stream message is at most
    WC_MAX_STREAM_MESSAGE octets with its head and topic. */
#define WC_MAX_STREAM_BATCH  (64u * 1024u)
#define WC_MAX_STREAM_COUNT  4096u
#define WC_MAX_STREAM_MESSAGE (WC_MAX_STREAM_BATCH + WC_MAX_STREAM_ENTRY + WC_MAX_KEY + 64u)

#endif
