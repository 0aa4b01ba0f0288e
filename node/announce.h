/*  announce.h - tell the broker about this node, and hear whether it agrees.

    A node with --broker sends REGISTER until the broker admits it, then a
    NODE_HEARTBEAT every 500 ms, each carrying everything the broker shows
    of it (id, region, role, epoch, applied seq, advertised address,
    primary, lag), so a broker that restarts learns the whole cluster
    again within a beat. Replication never waits on the broker.

    The broker answers an admitted REGISTER with a TOPOLOGY and refuses a
    registration or a heartbeat with an ERROR (a field it cannot take, a
    second primary, a full directory). The node reads those replies in
    wc_announce_tick, without waiting, and logs each episode once:
    `broker refused us: REASON (CODE); REMEDY` when it starts, `broker
    accepts us again ...` when an admitted REGISTER ends it.
*/
#ifndef WC_ANNOUNCE_H_INCLUDED
#define WC_ANNOUNCE_H_INCLUDED

#include "node.h"

#define WC_ANNOUNCE_INTERVAL_MS  500

wc_announce_t *wc_announce_new (wc_node_t *node, const char *broker);
void wc_announce_destroy (wc_announce_t **self_p);

/*  Read the broker's replies that arrived, then send the beat if it is
    due. Never blocks. Returns ms until the next beat. */
int wc_announce_tick (wc_announce_t *self);

/*  The socket the broker's replies arrive on (to poll), and reading them:
    a directive (PROMOTE, FOLLOW, HANDOVER) is carried out at once. */
void *wc_announce_socket (wc_announce_t *self);
void wc_announce_read (wc_announce_t *self);

#endif
