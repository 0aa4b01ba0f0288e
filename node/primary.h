/*  primary.h - the primary role: group commit of writes, heartbeats.

    The node's loop takes a batch of requests off the service socket and
    hands the writes to wc_primary_commit, which gives each the next seq,
    appends the whole batch to the WAL with one write (and one fsync under
    --fsync always), applies and publishes the entries, and records each
    write's outcome in its request for the loop to answer.
*/
#ifndef WC_PRIMARY_H_INCLUDED
#define WC_PRIMARY_H_INCLUDED

#include "node.h"

wc_primary_t *wc_primary_new (wc_node_t *node);
void wc_primary_destroy (wc_primary_t **self_p);

/*  Commit the PUT/DEL requests among reqs[0..n). Each write's rc, epoch
    and seq are set: 0 and its position, or the error that refused it
    (then nothing of the batch was applied). */
void wc_primary_commit (wc_primary_t *self, wc_request_t *reqs, size_t n);

/*  Periodic work: a heartbeat every 100 ms. Returns ms until it next
    needs to run. */
int wc_primary_tick (wc_primary_t *self);

#endif
