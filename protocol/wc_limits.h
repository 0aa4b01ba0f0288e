/*  wc_limits.h - sizes the wire protocol enforces.

    Every decoder checks these after decoding, so a peer can never make a
    node allocate or store more than they allow. docs/PROTOCOL.md repeats
    them; change both together.
*/
#ifndef WC_LIMITS_H_INCLUDED
#define WC_LIMITS_H_INCLUDED

#define WC_PROTOCOL_VERSION  1

#define WC_MAX_KEY           1024u              /* bytes; keys are 1..WC_MAX_KEY */
#define WC_MAX_VALUE         (1024u * 1024u)    /* bytes; values are 0..WC_MAX_VALUE */
#define WC_MAX_ID            64u                /* node id, region name */
#define WC_MAX_ADDR          255u               /* HOST:PORT strings */
#define WC_MAX_TEXT          1024u              /* error message text */
#define WC_MAX_FETCH_BYTES   (4u * 1024u * 1024u)  /* cap on FETCH max_bytes */
#define WC_MAX_BATCH         100000u            /* entries in one ENTRIES reply */
#define WC_MAX_NODES         1024u              /* nodes in one TOPOLOGY */
#define WC_MAX_WAIT_MS       60000u             /* GET wait_ms is clamped to this */

/*  Largest message a node accepts on any socket. An ENTRIES reply may pass
    max_bytes by one entry, so the cap leaves room for one more. */
#define WC_MAX_MESSAGE       (WC_MAX_FETCH_BYTES + WC_MAX_VALUE + WC_MAX_KEY + 4096u)

/*  Largest request a client may send on the service socket. */
#define WC_MAX_REQUEST       (WC_MAX_VALUE + WC_MAX_KEY + 256u)

/*  Largest reply a node sends on the service socket (a VALUE of the
    largest value, with room for its fields). */
#define WC_MAX_REPLY         (WC_MAX_VALUE + 256u)

/*  Frames of one message as a ROUTER receives it, the identity frame the
    ROUTER adds included, and the size of each frame before the body
    (routing ids are at most 255 octets). */
#define WC_MAX_FRAMES        8u
#define WC_MAX_ENVELOPE_FRAME 255u

/*  Largest message on the catch-up socket (a FETCH is a few octets), and
    largest subscription message on a stream socket (one command octet
    and a topic no longer than a key). */
#define WC_MAX_FETCH_REQUEST 4096u
#define WC_MAX_SUBSCRIPTION  (1u + WC_MAX_KEY)

/*  Largest ENTRY body a node publishes on its stream; a larger entry is
    announced by a HEARTBEAT at its seq and fetched (PROTOCOL.md, Stream).
    A stream message is at most this plus a topic of WC_MAX_KEY. */
#define WC_MAX_STREAM_ENTRY  (16u * 1024u)
#define WC_MAX_STREAM_MESSAGE (WC_MAX_STREAM_ENTRY + WC_MAX_KEY)

#endif
