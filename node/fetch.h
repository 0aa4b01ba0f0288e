/*  fetch.h - serve FETCH requests from the node's WAL (catch-up socket).

    A FETCH names a first seq and a byte budget; the answer is an ENTRIES
    reply holding consecutive WAL payloads exactly as stored (no
    re-encoding), bounded by the budget so one reply never floods the
    socket: the replica pulls the next batch when it has applied this one.
*/
#ifndef WC_FETCH_H_INCLUDED
#define WC_FETCH_H_INCLUDED

#include "node.h"

/*  Answer one decoded request from the catch-up socket. */
void wc_fetch_serve (wc_node_t *node, wc_request_t *req);

#endif
