/*  announce.h - tell the broker about this node.

    A node with --broker sends REGISTER once and a NODE_HEARTBEAT every
    500 ms, each carrying everything the broker shows of it (id, region,
    role, epoch, applied seq, advertised address, primary, lag), so a
    broker that restarts learns the whole cluster again within a beat.
    Fire-and-forget: replication never waits on the broker.
*/
#ifndef WC_ANNOUNCE_H_INCLUDED
#define WC_ANNOUNCE_H_INCLUDED

#include "node.h"

#define WC_ANNOUNCE_INTERVAL_MS  500

wc_announce_t *wc_announce_new (wc_node_t *node, const char *broker);
void wc_announce_destroy (wc_announce_t **self_p);

/*  Send what is due. Returns ms until the next beat. */
int wc_announce_tick (wc_announce_t *self);

#endif
