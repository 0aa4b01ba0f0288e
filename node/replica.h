/*  replica.h - the replica role: follow a primary's stream, repair gaps.

    The link is a state machine (see replica.c): subscribe to the
    primary's stream, FETCH from applied+1 over a REQ socket until caught
    up while buffering live entries, then apply the stream in seq order;
    any hole (a skipped seq, a heartbeat ahead of us) sends it back to
    fetching. Timeouts and retries live in wc_replica_tick.
*/
#ifndef WC_REPLICA_H_INCLUDED
#define WC_REPLICA_H_INCLUDED

#include "node.h"

/*  Follow primary (HOST:PORT), once its latest epoch is at least epoch
    (0: any not older than ours). NULL on failure (logged). */
wc_replica_t *wc_replica_new (wc_node_t *node, const char *primary, uint64_t epoch);
void wc_replica_destroy (wc_replica_t **self_p);

/*  Add the replica's sockets to items (at most max); returns how many. */
int wc_replica_poll_items (wc_replica_t *self, zmq_pollitem_t *items, int max);

/*  Handle whatever is readable on the items wc_replica_poll_items added. */
void wc_replica_handle (wc_replica_t *self, zmq_pollitem_t *items, int count);

/*  Timeouts, retries, progress lines. Returns ms until it next needs to run. */
int wc_replica_tick (wc_replica_t *self);

/*  The broker says the cluster is at epoch: follow no upstream older. */
void wc_replica_want_epoch (wc_replica_t *self, uint64_t epoch);

/*  After each loop turn: an ACK to the upstream when what we hold moved. */
void wc_replica_after_turn (wc_replica_t *self);

/*  What STATUS reports of the link. */
uint64_t wc_replica_primary_seq (const wc_replica_t *self);
uint64_t wc_replica_lag_ms (const wc_replica_t *self);

/*  The primary's clock (ms) of the newest heartbeat whose seq we had
    applied; 0 when none yet. What our own heartbeats carry downstream. */
uint64_t wc_replica_fresh_clock_ms (const wc_replica_t *self);

/*  Our data is known to match the primary's as of clock_ms (wall clock):
    a primary that handed over everything it had to the new one, say. */
void wc_replica_set_fresh (wc_replica_t *self, uint64_t clock_ms);
const char *wc_replica_primary (const wc_replica_t *self);

/*  True once the upstream was found behind us (it lost entries we hold):
    the replica stops following and reads are refused. */
bool wc_replica_diverged (const wc_replica_t *self);

/*  True while the upstream's last answer said it is a node of another
    cluster (its data directory was replaced, or another deployment took
    its address): the replica waits for its own cluster there, and reads
    are refused meanwhile, as they would mix two histories for a client
    that writes to that node. */
bool wc_replica_foreign (const wc_replica_t *self);

#endif
