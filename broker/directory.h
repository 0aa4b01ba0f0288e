/*  directory.h - the broker's directory of nodes: who exists, where, in
    which role, and whether it is alive.

    A pure data module: no sockets, no clock of its own. The broker feeds
    it every REGISTER and NODE_HEARTBEAT (wc_directory_update), ticks it
    with the monotonic time (wc_directory_tick) and encodes it into
    TOPOLOGY messages (wc_directory_encode_topology). Tests drive it with
    a fake clock.

    The directory keeps a version: a counter that goes up by one at every
    change a client must route around (a node appears, goes up or down,
    changes role, address, region, the primary it follows or its flags;
    the broker names another primary). Progress numbers (epoch, applied
    seq, lag, handover_seq) are kept but do not move the version: they
    change with every heartbeat.

    Nodes are kept sorted by id, so a TOPOLOGY lists them in a stable
    order. At most WC_MAX_NODES are kept; when the directory is full a new
    node takes the place of the node that has been down the longest, and
    is refused when every node is up.

    Only what a client can use gets in: every update is checked by
    wc_nodeinfo_check. Several nodes may claim the primary role (a new
    candidate, an old primary back from the dead): the directory lists
    what each says, and failover.c decides which one is the cluster's
    primary and tells the others to follow it. The directory is told that
    decision (wc_directory_set_primary) so that a TOPOLOGY never offers
    clients a second primary: a claimant that is not the cluster's primary
    is listed with up = false until it follows.
*/
#ifndef WC_DIRECTORY_H_INCLUDED
#define WC_DIRECTORY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>
#include "codec.h"

typedef struct wc_directory wc_directory_t;

/*  Largest TOPOLOGY the directory encodes: a header (< 32 bytes) and
    WC_MAX_NODES node_infos of at most 712 bytes each (array header 1; id
    and region str8 2 + 64 each; role 1; epoch, applied_seq 9 each; addr
    and primary str8 2 + 255 each; lag, lag_ms 9 each; up 1; silent_ms,
    flags, handover_seq 9 each): 712 KiB. Queues that hold topologies are
    sized by it. */
#define WC_DIRECTORY_NODE_MAX      712
#define WC_DIRECTORY_MAX_TOPOLOGY  (32 + WC_MAX_NODES * WC_DIRECTORY_NODE_MAX)

/*  Why the directory refused an update: one line for the ERROR text and
    the log, starting with the field at fault when a field is. */
typedef struct {
    char text [WC_MAX_TEXT + 1];
    char detail [WC_MAX_ADDR + 1];    /* machine-usable detail, or "" */
} wc_refusal_t;

/*  A new, empty directory (version 0), or NULL when out of memory. */
wc_directory_t *wc_directory_new (void);

/*  Free the directory and set *self_p to NULL; safe with *self_p NULL. */
void wc_directory_destroy (wc_directory_t **self_p);

/*  A node said where and what it is (REGISTER or NODE_HEARTBEAT) at
    monotonic time now_ms. Creates or updates the node with id info->id:
    copies every field (the directory owns its copies; info may point into
    a buffer that goes away afterwards), marks the node up and heard at
    now_ms. info->up and info->silent_ms are ignored (the broker's view is
    its own). Logs appearances, returns and role/address/region/primary/
    flag changes. Returns 1 when the version went up, 0 when it did not,
    or a refusal, which changes nothing and says why in *why (may be
    NULL): WALCAST_EPROTO or WALCAST_ETOOBIG when a field breaks the
    admission rules (wc_nodeinfo_check), WALCAST_ECONFLICT when a node
    with that id is up at another address (two processes with one id: the
    one known keeps it; a node that moved is taken once the other is seen
    down), WALCAST_EBUSY when the node is new and the directory is full of
    nodes that are up, WALCAST_ENOMEM. */
int wc_directory_update (wc_directory_t *self, const wc_node_info_t *info,
                         int64_t now_ms, wc_refusal_t *why);

/*  Put back a node the broker knew before it restarted (broker/roster.c
    read it from the data directory): listed with everything info says,
    down, silent since now_ms, until its next REGISTER or NODE_HEARTBEAT.
    Returns 0 (the version went up), or a refusal that changes nothing:
    the errors of wc_directory_update, or WALCAST_ECONFLICT when the id is
    listed already. */
int wc_directory_restore (wc_directory_t *self, const wc_node_info_t *info,
                          int64_t now_ms, wc_refusal_t *why);

/*  The cluster's primary, as failover.c decided it: its id ("" or NULL:
    none known). A TOPOLOGY lists every other node that claims role 1
    with up = false, so clients never send writes to it. Moves the version
    when it changes (clients must route writes elsewhere). */
void wc_directory_set_primary (wc_directory_t *self, const char *id);

/*  How long node id has been up at now_ms (since it was last heard after
    being down, or first heard), or -1 when it is down or unknown. */
int64_t wc_directory_up_for (wc_directory_t *self, const char *id, int64_t now_ms);

/*  The broker did not run for gap_ms (stopped, or starved of CPU): that
    time says nothing about the nodes, so every node's last beat is moved
    gap_ms later (never past now_ms), and none is marked down for it. */
void wc_directory_forgive (wc_directory_t *self, int64_t gap_ms, int64_t now_ms);

/*  Mark down every up node not heard for timeout_ms or more at now_ms,
    logging each. Returns 1 when the version went up, else 0. */
int wc_directory_tick (wc_directory_t *self, int64_t now_ms, int64_t timeout_ms);

/*  The version: 0 for a new directory, +1 at every change. */
uint64_t wc_directory_version (wc_directory_t *self);

/*  Number of nodes known (up or down). */
size_t wc_directory_size (wc_directory_t *self);

/*  Number of nodes known and up. */
size_t wc_directory_up_count (wc_directory_t *self);

/*  Node number index (0 .. size-1, in id order) as it would appear in a
    TOPOLOGY at now_ms: its strings point into the directory and stay
    valid until the next update or tick. Returns 0, or WALCAST_EINVAL when
    index is out of range. */
int wc_directory_get (wc_directory_t *self, size_t index, int64_t now_ms,
                      wc_node_info_t *info);

/*  The node with this id (a NUL-terminated string), as wc_directory_get
    gives it. Returns 0, or WALCAST_ENOTFOUND. */
int wc_directory_find (wc_directory_t *self, const char *id, int64_t now_ms,
                       wc_node_info_t *info);

/*  Drop the node with this id (an operator's FORGET: it was removed for
    good). Only a node that is down: WALCAST_ECONFLICT for one that is up
    (it would register again at its next beat), WALCAST_ENOTFOUND for an
    unknown id; 0 when it is gone, the version moved on. */
int wc_directory_forget (wc_directory_t *self, const char *id, int64_t now_ms);

/*  A node whose addr is addr (len octets): the first that is up, else the
    first found. Returns 0, or WALCAST_ENOTFOUND. */
int wc_directory_find_addr (wc_directory_t *self, const void *addr, size_t len,
                            int64_t now_ms, wc_node_info_t *info);

/*  Append a whole TOPOLOGY message (rid, the version and every node, each
    with up and silent_ms as of now_ms, up false for a claimant of the
    primary role that is not the cluster's primary) to out. Returns 0 or
    WALCAST_ENOMEM (out is then as it was). */
int wc_directory_encode_topology (wc_directory_t *self, uint64_t rid,
                                  int64_t now_ms, msgpack_sbuffer *out);

#endif
