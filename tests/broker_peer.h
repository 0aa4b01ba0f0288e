/*  broker_peer.h - a raw peer of walcast-broker, for the broker's tests.

    A test plays a node or a client by hand: it connects a DEALER (or a
    REQ) to the broker's port B, sends any body it likes (well-formed or
    not) and reads the broker's reply, with a deadline. A second helper
    packs REGISTER / NODE_HEARTBEAT bodies whose node_info can be broken
    in one field (wrong type, bad value) or cut short, since the codec's
    encoder refuses to produce most of them.

    A fake node (broker_fake_t) beats whatever node_info the test puts in
    it and reports what the broker told it (issue 7's directives, and the
    FORGET of a node forgotten that a primary is told). After
    each beat it asks for the TOPOLOGY on the same socket: the broker
    answers one peer's messages in order, so when the TOPOLOGY comes
    first, the broker had nothing to say, known without sleeping.
*/
#ifndef BROKER_PEER_H_INCLUDED
#define BROKER_PEER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>
#include "codec.h"

typedef struct broker_peer broker_peer_t;

/*  Connect a socket of type (ZMQ_DEALER or ZMQ_REQ) to "tcp://" addr.
    NULL (printed) on failure. */
broker_peer_t *broker_peer_new (const char *addr, int type);

/*  Close the socket; *self_p becomes NULL; safe with NULL. */
void broker_peer_destroy (broker_peer_t **self_p);

/*  Send one body frame. 0, or -1 (printed). */
int broker_peer_send (broker_peer_t *self, const void *body, size_t len);

/*  Wait up to timeout_ms for a reply and decode it into *msg (valid until
    the next recv or destroy). Returns 0, the codec's error when the
    reply does not decode, or 1 when nothing came in time. */
int broker_peer_recv (broker_peer_t *self, int timeout_ms, wc_msg_t *msg);

/*  Send TOPOLOGY_GET with rid and wait for the TOPOLOGY, skipping
    replies to other rids; 0 or -1 (printed). */
int broker_peer_topology (broker_peer_t *self, uint64_t rid, int timeout_ms,
                          wc_msg_t *msg);

/*  Pack [1, type, rid, node_info] into out (emptied first). node_info
    holds the first nfields (0..14) fields of info (11..13 are the
    optional flags, handover_seq and curve_key); when bad_field is
    0..13, that field is the raw msgpack bytes bad[0..bad_len) instead. */
void broker_peer_pack_node (msgpack_sbuffer *out, int type, uint64_t rid,
                            const wc_node_info_t *info, int nfields,
                            int bad_field, const void *bad, size_t bad_len);

/*  A node_info a node would send: epoch 1, applied_seq 0, up true. */
wc_node_info_t broker_peer_info (const char *id, const char *region, int role,
                                 const char *addr, const char *primary);

/*  Text of an ERROR as a NUL-terminated string (for strstr). */
void broker_peer_error_text (const wc_msg_t *msg, char *buf, size_t size);

/* --- fake nodes ------------------------------------------------------- */

typedef struct {
    broker_peer_t *peer;          /* a DEALER to the broker */
    char     id [16];
    char     region [16];
    char     addr [32];
    char     primary [32];        /* "" on a primary or a candidate */
    int      role;                /* wc_role_t */
    uint64_t epoch, seq, flags, handover_seq;
    uint64_t rid;                 /* of the last message sent */
    bool     admitted;            /* a REGISTER was answered with a TOPOLOGY */
} broker_fake_t;

/*  What the broker told a fake after one beat. */
typedef struct {
    int      type;                /* 0: nothing; PROMOTE, FOLLOW, HANDOVER, ERROR */
    uint64_t epoch;
    char     addr [64];           /* FOLLOW: the primary; HANDOVER: the target */
    char     target [16];         /* HANDOVER: the target's id */
    char     forgotten [16];      /* the id of a FORGET that came too; "" none */
} broker_told_t;

/*  A fake node connected to broker, not admitted yet (its first beat is a
    REGISTER). primary NULL for a primary or a candidate. 0 or -1. */
int broker_fake_init (broker_fake_t *f, const char *broker, const char *id,
                      const char *addr, int role, const char *primary,
                      uint64_t epoch, uint64_t seq, uint64_t flags);

/*  Close its socket. */
void broker_fake_fini (broker_fake_t *f);

/*  One beat (REGISTER until admitted, then NODE_HEARTBEAT) and what the
    broker answered to it. 0, or -1 (printed) when no answer came. */
int broker_fake_beat (broker_fake_t *f, broker_told_t *told);

/*  "FOLLOW(3, \"\", \"127.0.0.1:7200\")" or "nothing", into buf. */
const char *broker_told_str (const broker_told_t *told, char *buf, size_t size);

/*  Beat every fake of all[0..count) every 100 ms until fake who is told
    type (with that epoch and addr, unless 0 / NULL). Returns the ms it
    took, or -1 (printed) after timeout_ms. */
int64_t broker_fake_until (broker_fake_t **all, size_t count, broker_fake_t *who,
                           int type, uint64_t epoch, const char *addr, int timeout_ms);

/*  One beat of f, which must be told exactly type (0: nothing), with
    epoch and addr (unless NULL). 0 or -1 (printed). */
int broker_fake_expect (broker_fake_t *f, int type, uint64_t epoch, const char *addr);

/*  Lines of the file at path that contain text; the first into line
    (may be NULL). */
int broker_log_count (const char *path, const char *text, char *line, size_t size);

#endif
