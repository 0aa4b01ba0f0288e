/*  broker_peer.h - a raw peer of walcast-broker, for the broker's tests.

    A test plays a node or a client by hand: it connects a DEALER (or a
    REQ) to the broker's port B, sends any body it likes (well-formed or
    not) and reads the broker's reply, with a deadline. A second helper
    packs REGISTER / NODE_HEARTBEAT bodies whose node_info can be broken
    in one field (wrong type, bad value) or cut short, since the codec's
    encoder refuses to produce most of them.
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
    holds the first nfields (0..11) fields of info; when bad_field is
    0..10, that field is the raw msgpack bytes bad[0..bad_len) instead. */
void broker_peer_pack_node (msgpack_sbuffer *out, int type, uint64_t rid,
                            const wc_node_info_t *info, int nfields,
                            int bad_field, const void *bad, size_t bad_len);

/*  A node_info a node would send: epoch 1, applied_seq 0, up true. */
wc_node_info_t broker_peer_info (const char *id, const char *region, int role,
                                 const char *addr, const char *primary);

/*  Text of an ERROR as a NUL-terminated string (for strstr). */
void broker_peer_error_text (const wc_msg_t *msg, char *buf, size_t size);

#endif
