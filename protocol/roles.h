/*  roles.h - what a key's role allows it to send (issue 9).

    With CURVE on, a server knows which key sent each message, and each
    trusted key has one role, named by the trust subfolder its certificate
    is in (runtime/curve.h): readers/, writers/ or nodes/. The table of
    which message each role may send is part of the protocol
    (docs/PROTOCOL.md, "Security"), so it lives here, beside the codec;
    a server refuses the others with EPERM.
*/
#ifndef WC_ROLES_H_INCLUDED
#define WC_ROLES_H_INCLUDED

#include <stdbool.h>

/*  A peer's role; a larger one is not a superset of a smaller one (a
    node may not write). */
typedef enum {
    WC_PEER_NONE   = 0,     /* not trusted (any more), or in no role folder */
    WC_PEER_READER = 1,     /* readers/: GET, watch (stream, FETCH, EPOCH_END), STATUS,
                               DIGEST */
    WC_PEER_WRITER = 2,     /* writers/: what a reader may, writes, SNAPSHOT, SWITCHOVER, FORGET */
    WC_PEER_NODE   = 3      /* nodes/: replicate (SNAPSHOT_GET, ACK), REGISTER and
                               NODE_HEARTBEAT, and what a reader may */
} wc_peer_t;

/*  May a peer of this role send a message of this type (wc_msg_type_t)? */
bool wc_peer_may (wc_peer_t peer, int msg_type);

/*  The role's folder name: "readers", "writers", "nodes", or "none". */
const char *wc_peer_name (wc_peer_t peer);

#endif
