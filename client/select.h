/*  select.h - which nodes may serve a read, and in which order to try them.

    A pure module: no sockets, no clock. The handle describes every node
    it knows in a wc_select_node_t (role, region, up, reachable, RTT) and
    asks for the candidates of one read; it then tries them in order
    until one answers. Keeping the rules here, apart from the networking,
    is what lets tests/test_select.c check them one by one.

    The rules (include/walcast.h says what users see):
    - "strong" consistency, or the "primary" preference: the primary only.
    - "replica": the up, reachable replicas, by RTT.
    - "region=NAME": the up, reachable nodes of NAME, by RTT.
    - "nearest": among the up, reachable nodes, those within the latency
      window of the lowest RTT, the client's own region first, then by
      RTT; then the other reachable nodes by RTT, as fallbacks.
    - Nodes whose RTT is not known yet come after every measured one.
    - "session": the primary is appended when missing (it is never
      behind the session token), so a read whose replicas are all behind
      still has somewhere to go (and only then: see *appended).
    Ties keep the table's order, so the result is deterministic.
*/
#ifndef WC_SELECT_H_INCLUDED
#define WC_SELECT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "wc_limits.h"

/*  No node (an index that is not one). */
#define WC_SELECT_NONE  ((size_t) -1)

/*  Read preferences. */
typedef enum {
    WC_READ_NEAREST = 0,
    WC_READ_PRIMARY = 1,
    WC_READ_REPLICA = 2,
    WC_READ_REGION  = 3
} wc_read_mode_t;

/*  Consistency levels. */
typedef enum {
    WC_CONSISTENCY_SESSION  = 0,
    WC_CONSISTENCY_EVENTUAL = 1,
    WC_CONSISTENCY_STRONG   = 2
} wc_consistency_t;

/*  A parsed read preference. */
typedef struct {
    int  mode;                      /* wc_read_mode_t */
    char region [WC_MAX_ID + 1];    /* WC_READ_REGION: the region's name */
} wc_read_pref_t;

/*  What selection needs to know of one node. */
typedef struct {
    uint8_t     role;           /* wc_role_t; 0 when unknown */
    const char *region;         /* "" (or NULL) when none */
    uint64_t    epoch;          /* its epoch, to pick among primaries */
    bool        up;             /* the broker's view (true without one) */
    bool        reachable;      /* answers PINGs */
    double      rtt_ms;         /* RTT average; < 0 when unknown */
} wc_select_node_t;

/*  One read's question. */
typedef struct {
    wc_read_pref_t pref;
    int            consistency;     /* wc_consistency_t */
    const char    *region;          /* the client's region; "" or NULL: none */
    double         window_ms;       /* "nearest" latency window */
} wc_select_query_t;

/*  Parse "nearest", "primary", "replica" or "region=NAME" (NAME 1..64
    bytes). Returns 0 or WALCAST_EINVAL (pref untouched). */
int wc_select_parse_read (const char *text, wc_read_pref_t *pref);

/*  Parse "eventual", "session" or "strong". 0 or WALCAST_EINVAL. */
int wc_select_parse_consistency (const char *text, int *consistency);

/*  The primary among nodes[0..count): a node whose role is primary,
    preferring up ones, then the highest epoch, then reachable ones, then
    the first in the table. WC_SELECT_NONE when no node is a primary. */
size_t wc_select_primary (const wc_select_node_t *nodes, size_t count);

/*  The candidates for a read, in the order to try them, as indexes into
    nodes; at most max are written to out. Returns how many were written
    (0: no node fits the preference). *appended (if not NULL) says
    whether the last one is the primary added by "session" outside the
    preference: a fallback for replicas that are behind, which the
    caller tries only when one of them said so (ESTALE), so that
    "replica" never reads the primary just because no replica is up. */
size_t wc_select_candidates (const wc_select_node_t *nodes, size_t count,
                             const wc_select_query_t *query,
                             size_t *out, size_t max, bool *appended);

#endif
