/*  role.c - which role a node plays, and moving between roles.

    Two ideas keep a move safe:

    - Every primary tenure is a new epoch, persisted by the engine before
      the first write of it (storage/engine.h: wc_engine_begin_epoch), so
      no two tenures can write different entries under one (epoch, seq).
      A standalone primary takes its history's last epoch + 1 at every
      start; with a broker, the broker picks the epoch (it knows every
      node's) and the node waits for it as a candidate.
    - A node leaves the primary role by first answering what waits for
      replicas (ENOTREPLICATED: durable here, not confirmed elsewhere; a
      client may resubmit) and then follows like any replica: the epoch
      negotiation of the replica role (replica.c) truncates whatever of
      its tail the new primary does not hold.
*/
#include <string.h>
#include "addr.h"
#include "log.h"
#include "primary.h"
#include "replica.h"
#include "role.h"

bool
wc_role_diverged (const wc_node_t *node)
{
    return wc_engine_diverged (node->engine, NULL, 0)
        || (node->replica && wc_replica_diverged (node->replica));
}

/*  Begin epoch in the engine (persisted before any entry of it). A
    failure (a full disk) is said once per episode, and kept in
    node->begin_rc: writes are refused with it meanwhile, reads go on,
    and wc_role_tick (or the broker's next PROMOTE) tries again. */
static int
s_begin_epoch (wc_node_t *node, uint64_t epoch)
{
    wc_node_commit (node);              /* what a replica role staged */
    int rc = wc_engine_begin_epoch (node->engine, epoch);
    if (rc) {
        if (rc != node->begin_rc)
            wc_log_error ("cannot begin epoch %llu: %s; writes are refused with it, "
                          "reads go on; trying again every second",
                          (unsigned long long) epoch, walcast_strerror (rc));
        if (!node->begin_rc)
            node->begin_failed_ms = wc_clock_ms ();
        node->begin_rc = rc;
        node->begin_epoch = epoch;
        return rc;
    }
    if (node->begin_rc)
        wc_log_info ("began epoch %llu after %.1f s of trying: taking writes",
                     (unsigned long long) epoch,
                     (double) (wc_clock_ms () - node->begin_failed_ms) / 1000.0);
    node->begin_rc = 0;
    node->epoch = epoch;
    return 0;
}

/*  A disk problem (full, or failing) is worth waiting out; anything
    else is a bug or a bad directory. */
static bool
s_transient (int rc)
{
    return rc == WALCAST_ENOSPC || rc == WALCAST_EIO;
}

/*  Become the primary (from a replica, a candidate, or a fenced tenure:
    a fresh one), of no epoch yet. The new role is made before the old
    one goes: when it cannot be, the node stays what it was. */
static int
s_become_primary (wc_node_t *node)
{
    if (node->primary && !wc_primary_fenced (node->primary))
        return 0;
    wc_primary_t *primary = wc_primary_new (node);
    if (!primary)
        return WALCAST_ENOMEM;
    wc_node_commit (node);
    if (node->primary) {
        wc_primary_abandon (node->primary);
        wc_primary_destroy (&node->primary);
    }
    wc_replica_destroy (&node->replica);
    node->primary = primary;
    node->role = WC_ROLE_PRIMARY;
    return 0;
}

/*  The primary handed over all it applied to the switchover's target. */
static bool
s_handed_over_all (wc_node_t *node)
{
    uint64_t seq;
    return wc_primary_handed_over (node->primary, &seq) && seq == node->applied;
}

/*  Become a replica of primary; the primary role's held replies are
    answered first. When the replica role cannot be made, the node stays
    what it was. */
static int
s_become_replica (wc_node_t *node, const char *primary, uint64_t epoch)
{
    wc_replica_t *replica = wc_replica_new (node, primary, epoch);
    if (!replica)
        return WALCAST_ENOMEM;
    /*  A primary that handed everything it had over to the new one (a
        switchover) is exactly as fresh as it, now; one that was fenced or
        replaced behind its back is only as fresh as its last entry */
    if (node->primary && !wc_primary_fenced (node->primary)
    &&  s_handed_over_all (node))
        wc_replica_set_fresh (replica, wc_clock_wall_ms ());
    if (node->primary) {
        wc_node_commit (node);
        wc_primary_abandon (node->primary);
        wc_primary_destroy (&node->primary);
    }
    wc_replica_destroy (&node->replica);
    node->replica = replica;
    node->candidate = false;
    node->begin_rc = 0;                 /* no epoch of ours to begin any more */
    node->role = WC_ROLE_REPLICA;
    return 0;
}

/*  The epoch a primary without a broker begins at its start: above its
    history's, and at least the wall clock in milliseconds, so that a
    node whose data directory was emptied (its history gone) cannot reuse
    an epoch its replicas hold: they would take its new entries for the
    old ones. With a broker, the broker knows every epoch and picks. */
static uint64_t
s_standalone_epoch (const wc_node_t *node)
{
    uint64_t next = wc_engine_epoch (node->engine) + 1;
    uint64_t now_ms = wc_clock_wall_ms ();
    return next > now_ms ? next : now_ms;
}

int
wc_role_start (wc_node_t *node, char *why, size_t why_size)
{
    char diverged [512];
    if (wc_engine_diverged (node->engine, diverged, sizeof diverged))
        wc_log_error ("diverged: %s. This node does not follow and refuses reads "
                      "until it is resynced: stop it and empty %s", diverged,
                      node->cfg.data_dir);
    if (node->cfg.replica_of [0]) {
        if (s_become_replica (node, node->cfg.replica_of, 0) != 0) {
            snprintf (why, why_size, "cannot follow %s (see above)",
                      node->cfg.replica_of);
            return -1;
        }
        return 0;
    }
    if (s_become_primary (node) != 0) {
        snprintf (why, why_size, "out of memory");
        return -1;
    }
    if (node->cfg.broker [0]) {
        node->candidate = true;
        wc_log_info ("candidate primary: refusing writes until broker %s promotes "
                     "this node (or names the primary to follow)", node->cfg.broker);
        return 0;
    }
    uint64_t epoch = s_standalone_epoch (node);
    int rc = s_begin_epoch (node, epoch);
    if (rc != 0 && s_transient (rc)) {
        node->candidate = true;         /* no write before the epoch is on disk */
        return 0;
    }
    if (rc != 0) {
        snprintf (why, why_size, "cannot begin epoch %llu (see above)",
                  (unsigned long long) epoch);
        return -1;
    }
    return 0;
}

int
wc_role_tick (wc_node_t *node)
{
    if (!node->begin_rc || node->cfg.broker [0] || !node->primary)
        return 1000;                    /* (with a broker, PROMOTE repeats) */
    int64_t now = wc_clock_ms ();
    if (now < node->begin_retry_ms)     /* (the loop runs timers every turn) */
        return (int) (node->begin_retry_ms - now);
    node->begin_retry_ms = now + 1000;
    uint64_t epoch = s_standalone_epoch (node);
    if (epoch < node->begin_epoch)
        epoch = node->begin_epoch;
    if (s_begin_epoch (node, epoch) == 0)
        node->candidate = false;
    return 1000;
}

void
wc_role_promote (wc_node_t *node, uint64_t epoch)
{
    if (node->primary && !node->candidate && node->epoch == epoch
    &&  !wc_primary_fenced (node->primary))
        return;                             /* done already */
    if (wc_role_diverged (node)) {
        wc_log_error ("not taking epoch %llu: this node diverged", (unsigned long long) epoch);
        return;
    }
    if (epoch <= wc_engine_epoch (node->engine)) {
        wc_log_warn ("broker asks for epoch %llu, not newer than ours (%llu); "
                     "ignored", (unsigned long long) epoch,
                     (unsigned long long) wc_engine_epoch (node->engine));
        return;
    }
    if (s_become_primary (node) != 0) {
        wc_log_error ("cannot take up the primary role: out of memory; the next "
                      "beat tries again");
        return;
    }
    node->candidate = true;                 /* no write before the epoch is on disk */
    if (s_begin_epoch (node, epoch) != 0)
        return;                             /* the next beat repeats it */
    node->candidate = false;
    wc_log_info ("primary of epoch %llu from seq %llu (promoted by broker %s)",
                 (unsigned long long) epoch,
                 (unsigned long long) wc_node_received (node) + 1, node->cfg.broker);
}

void
wc_role_follow (wc_node_t *node, uint64_t epoch, const char *primary)
{
    if (node->replica && strcmp (wc_replica_primary (node->replica), primary) == 0) {
        wc_replica_want_epoch (node->replica, epoch);
        return;
    }
    if (!wc_addr_check (primary, strlen (primary), 65533, NULL)) {
        wc_log_warn ("broker %s says to follow \"%s\", which is not HOST:PORT; "
                     "ignored", node->cfg.broker, primary);
        return;
    }
    wc_log_info ("following %s (epoch %llu), as broker %s says%s", primary,
                 (unsigned long long) epoch, node->cfg.broker,
                 node->primary ? "; no longer the primary" : "");
    if (s_become_replica (node, primary, epoch) != 0)
        wc_log_error ("cannot follow %s (see above); the next beat tries again", primary);
}

void
wc_role_handover (wc_node_t *node, const char *target_id, const char *target_addr)
{
    if (node->primary)
        wc_primary_handover (node->primary, target_id, target_addr);
}

uint32_t
wc_role_flags (const wc_node_t *node)
{
    uint32_t flags = 0;
    //  A primary whose epoch cannot begin (a full disk) is stalled; with a
    //  broker it stays a candidate too (the broker repeats its PROMOTE,
    //  which retries), without one it is no candidate of anything
    if (node->candidate && (!node->begin_rc || node->cfg.broker [0]))
        flags |= WC_NODE_CANDIDATE;
    if (wc_role_diverged (node))
        flags |= WC_NODE_DIVERGED;
    if (wc_engine_stalled (node->engine, NULL, 0) || node->begin_rc)
        flags |= WC_NODE_STALLED;
    uint64_t seq;
    if (node->primary && wc_primary_handed_over (node->primary, &seq))
        flags |= WC_NODE_HANDED_OVER;
    return flags;
}

void
wc_role_handover_sent (wc_node_t *node, uint32_t flags)
{
    if (node->primary)
        wc_primary_handover_sent (node->primary, (flags & WC_NODE_HANDED_OVER) != 0);
}

uint64_t
wc_role_handover_seq (wc_node_t *node)
{
    uint64_t seq = 0;
    if (node->primary)
        wc_primary_handed_over (node->primary, &seq);
    return seq;
}
