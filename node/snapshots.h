/*  snapshots.h - SNAPSHOT requests: take one now, answer when written.

    A client's SNAPSHOT starts a snapshot in the storage engine (written
    on the engine's own thread) and waits here for it. When the engine
    says it was written, every request it covers gets SNAPSHOT_DONE (seq,
    bytes), or an ERROR when it failed. A request that arrives while a
    snapshot (automatic or asked) is being written waits for the next one,
    which starts at once after: the answer is never older than the request.
*/
#ifndef WC_SNAPSHOTS_H_INCLUDED
#define WC_SNAPSHOTS_H_INCLUDED

#include "node.h"

typedef struct wc_snapshots wc_snapshots_t;

wc_snapshots_t *wc_snapshots_new (wc_node_t *node);

/*  Free; requests still waiting are dropped (their clients time out). */
void wc_snapshots_destroy (wc_snapshots_t **self_p);

/*  A SNAPSHOT request from the service socket. */
void wc_snapshots_request (wc_snapshots_t *self, wc_request_t *req);

/*  The engine's snapshot socket is readable: answer what the snapshot
    that ended covers, and start the next one for those still waiting. */
void wc_snapshots_on_done (wc_snapshots_t *self);

#endif
