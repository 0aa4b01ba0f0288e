/*  roles.c - what a key's role allows it to send (see roles.h).

    One table, by message type: a bit per role. Types not in it (replies,
    stream messages, directives, unknown types) are allowed to no one; a
    server never takes them as requests anyway.
*/
#include <stddef.h>
#include "codec.h"
#include "roles.h"

#define S_R (1u << WC_PEER_READER)
#define S_W (1u << WC_PEER_WRITER)
#define S_N (1u << WC_PEER_NODE)

static const unsigned s_allowed [] = {
    [WC_MSG_PUT]          = S_W,
    [WC_MSG_DEL]          = S_W,
    [WC_MSG_WRITE_BATCH]  = S_W,
    [WC_MSG_SNAPSHOT]     = S_W,
    [WC_MSG_SWITCHOVER]   = S_W,
    [WC_MSG_FORGET]       = S_W,
    [WC_MSG_GET]          = S_R | S_W | S_N,
    [WC_MSG_PING]         = S_R | S_W | S_N,
    [WC_MSG_STATUS]       = S_R | S_W | S_N,
    [WC_MSG_DIGEST]       = S_R | S_W | S_N,
    [WC_MSG_FETCH]        = S_R | S_W | S_N,
    [WC_MSG_TOPOLOGY_GET] = S_R | S_W | S_N,
    [WC_MSG_ACK]          = S_N,
    [WC_MSG_EPOCH_END]    = S_R | S_W | S_N,   /* a watch checks its history too */
    [WC_MSG_SNAPSHOT_GET] = S_N,
    [WC_MSG_REGISTER]     = S_N,
    [WC_MSG_NODE_HEARTBEAT] = S_N,
};

bool
wc_peer_may (wc_peer_t peer, int msg_type)
{
    if (msg_type < 0 || (size_t) msg_type >= sizeof s_allowed / sizeof s_allowed [0])
        return false;
    return (s_allowed [msg_type] & (1u << peer)) != 0;
}

const char *
wc_peer_name (wc_peer_t peer)
{
    switch (peer) {
        case WC_PEER_READER: return "readers";
        case WC_PEER_WRITER: return "writers";
        case WC_PEER_NODE:   return "nodes";
        default:             return "none";
    }
}
