/*  role.h - which role a node plays, and moving between roles.

    A node starts as what its flags say: a replica of --replica-of; a
    primary of a new epoch when it has no --broker; with --broker and no
    --replica-of, a *candidate*: a primary that refuses writes until the
    broker promotes it (the broker may as well tell it to follow another
    node, the cluster's primary). Later the broker moves it (announce.c
    passes its directives here): PROMOTE makes it the primary of a new
    epoch, FOLLOW makes it a replica of the primary named, HANDOVER makes
    a primary stop taking writes until a target holds all it has.
*/
#ifndef WC_ROLE_H_INCLUDED
#define WC_ROLE_H_INCLUDED

#include "node.h"

/*  Take up the configured role at start. 0, or -1 with the reason in why. */
int wc_role_start (wc_node_t *node, char *why, size_t why_size);

/*  PROMOTE(epoch): become (or stay) the primary, of epoch. A repeat of a
    promotion already done is a no-op; an epoch not newer than the node's
    history is refused (logged). */
void wc_role_promote (wc_node_t *node, uint64_t epoch);

/*  FOLLOW(epoch, primary): become (or stay) a replica of primary
    (HOST:PORT), which must be at epoch or later before it is followed. */
void wc_role_follow (wc_node_t *node, uint64_t epoch, const char *primary);

/*  Periodic work: a standalone primary whose epoch could not begin (a
    full disk) tries again. Returns ms until it is next due. */
int wc_role_tick (wc_node_t *node);

/*  HANDOVER: a primary stops taking writes for target (id "" cancels). */
void wc_role_handover (wc_node_t *node, const char *target_id, const char *target_addr);

/*  What the node's beats say of it: node_info flags (WC_NODE_*, with
    WC_NODE_HANDED_OVER once a switchover's target holds all) and the seq
    a handover reached (0: none, or nothing to hand over). */
uint32_t wc_role_flags (const wc_node_t *node);
uint64_t wc_role_handover_seq (wc_node_t *node);

/*  A beat with these flags went out to the broker (primary.h,
    wc_primary_handover_sent). */
void wc_role_handover_sent (wc_node_t *node, uint32_t flags);

/*  True when this node's history forked from its upstream's: it neither
    follows nor serves reads until an operator empties its data directory. */
bool wc_role_diverged (const wc_node_t *node);

#endif
