/*  select.c - the read-routing rules: which nodes may serve a read, in
    which order (see select.h for the rules themselves).

    Every rule comes down to the same two steps: filter the table to the
    nodes the preference allows, then order them by a small key (group,
    RTT, table index). Groups carry the preference's structure ("inside
    the window and in my region" before "inside the window" before "the
    rest" before "never measured"), RTT orders inside a group and the
    table index breaks ties, so equal inputs always give equal outputs.
    Tables are small (a handful of nodes), so a plain insertion into the
    caller's output array does, with no memory of its own.
*/
#include <string.h>
#include "walcast.h"
#include "codec.h"
#include "select.h"

/*  The sort key of a candidate. */
typedef struct {
    int    group;       /* lower first */
    double rtt;         /* lower first inside a group; 0 when unknown */
    size_t index;       /* into the node table; lower first */
} s_key_t;

int
wc_select_parse_read (const char *text, wc_read_pref_t *pref)
{
    if (!text || !pref)
        return WALCAST_EINVAL;
    int mode;
    const char *region = "";
    if (strcmp (text, "nearest") == 0)
        mode = WC_READ_NEAREST;
    else
    if (strcmp (text, "primary") == 0)
        mode = WC_READ_PRIMARY;
    else
    if (strcmp (text, "replica") == 0)
        mode = WC_READ_REPLICA;
    else
    if (strncmp (text, "region=", 7) == 0) {
        region = text + 7;
        size_t len = strlen (region);
        if (len == 0 || len > WC_MAX_ID)
            return WALCAST_EINVAL;
        mode = WC_READ_REGION;
    }
    else
        return WALCAST_EINVAL;
    pref->mode = mode;
    strcpy (pref->region, region);      // length checked above
    return 0;
}

int
wc_select_parse_consistency (const char *text, int *consistency)
{
    if (!text || !consistency)
        return WALCAST_EINVAL;
    if (strcmp (text, "session") == 0)
        *consistency = WC_CONSISTENCY_SESSION;
    else
    if (strcmp (text, "eventual") == 0)
        *consistency = WC_CONSISTENCY_EVENTUAL;
    else
    if (strcmp (text, "strong") == 0)
        *consistency = WC_CONSISTENCY_STRONG;
    else
        return WALCAST_EINVAL;
    return 0;
}

//  True when a is better than b as a primary (see wc_select_primary).
static bool
s_better_primary (const wc_select_node_t *a, const wc_select_node_t *b)
{
    if (a->up != b->up)
        return a->up;
    if (a->epoch != b->epoch)
        return a->epoch > b->epoch;
    if (a->reachable != b->reachable)
        return a->reachable;
    return false;               // keep the first in the table
}

size_t
wc_select_primary (const wc_select_node_t *nodes, size_t count)
{
    size_t best = WC_SELECT_NONE;
    for (size_t i = 0; i < count; i++) {
        if (nodes [i].role != WC_ROLE_PRIMARY)
            continue;
        if (best == WC_SELECT_NONE || s_better_primary (&nodes [i], &nodes [best]))
            best = i;
    }
    return best;
}

//  Same region? A missing or empty region matches nothing.
static bool
s_same_region (const char *a, const char *b)
{
    return a && b && a [0] && strcmp (a, b) == 0;
}

//  True when key a sorts before key b.
static bool
s_before (const s_key_t *a, const s_key_t *b)
{
    if (a->group != b->group)
        return a->group < b->group;
    if (a->rtt != b->rtt)
        return a->rtt < b->rtt;
    return a->index < b->index;
}

//  Group of a node for "nearest": 0 in the window and in our region, 1
//  in the window, 2 measured but outside it, 3 unmeasured in our region,
//  4 unmeasured elsewhere.
static int
s_nearest_group (const wc_select_node_t *node, const wc_select_query_t *query,
                 double lowest)
{
    bool mine = s_same_region (node->region, query->region);
    if (node->rtt_ms < 0)
        return mine ? 3 : 4;
    double window = query->window_ms > 0 ? query->window_ms : 0;
    if (node->rtt_ms <= lowest + window)
        return mine ? 0 : 1;
    return 2;
}

//  Whether node i may serve the read at all (up, reachable, fits the
//  preference) and, if so, its sort key.
static bool
s_key (const wc_select_node_t *nodes, size_t i, const wc_select_query_t *query,
       double lowest, s_key_t *key)
{
    const wc_select_node_t *node = &nodes [i];
    int mode = query->pref.mode;
    if (!node->up || !node->reachable)
        return false;
    if (mode == WC_READ_REPLICA && node->role != WC_ROLE_REPLICA)
        return false;
    if (mode == WC_READ_REGION && !s_same_region (node->region, query->pref.region))
        return false;
    key->index = i;
    key->rtt = node->rtt_ms >= 0 ? node->rtt_ms : 0;
    if (mode == WC_READ_NEAREST)
        key->group = s_nearest_group (node, query, lowest);
    else
        key->group = node->rtt_ms >= 0 ? 0 : 1;
    return true;
}

size_t
wc_select_candidates (const wc_select_node_t *nodes, size_t count,
                      const wc_select_query_t *query, size_t *out, size_t max,
                      bool *appended)
{
    if (appended)
        *appended = false;
    if (!nodes || !query || !out || max == 0)
        return 0;
    size_t primary = wc_select_primary (nodes, count);
    int mode = query->pref.mode;
    if (query->consistency == WC_CONSISTENCY_STRONG || mode == WC_READ_PRIMARY) {
        if (primary == WC_SELECT_NONE)
            return 0;
        out [0] = primary;
        return 1;
    }

    //  The lowest measured RTT among the nodes "nearest" may use.
    double lowest = -1;
    for (size_t i = 0; i < count; i++) {
        const wc_select_node_t *node = &nodes [i];
        if (node->up && node->reachable && node->rtt_ms >= 0
        && (lowest < 0 || node->rtt_ms < lowest))
            lowest = node->rtt_ms;
    }

    //  Filter, then insert each node into out, kept sorted by its key;
    //  when out is full, a node that sorts after the last is dropped.
    size_t nout = 0;
    for (size_t i = 0; i < count; i++) {
        s_key_t key;
        if (!s_key (nodes, i, query, lowest, &key))
            continue;
        size_t pos = nout;
        while (pos > 0) {
            s_key_t prev;
            s_key (nodes, out [pos - 1], query, lowest, &prev);
            if (!s_before (&key, &prev))
                break;
            pos--;
        }
        if (pos >= max)
            continue;
        size_t last = nout < max ? nout : max - 1;
        memmove (out + pos + 1, out + pos, (last - pos) * sizeof out [0]);
        out [pos] = i;
        if (nout < max)
            nout++;
    }

    //  Session: the primary always satisfies the token; make it the
    //  last resort unless the broker says it is down.
    if (query->consistency == WC_CONSISTENCY_SESSION
    &&  primary != WC_SELECT_NONE && nodes [primary].up && nout < max) {
        bool listed = false;
        for (size_t k = 0; k < nout; k++)
            if (out [k] == primary)
                listed = true;
        if (!listed) {
            out [nout++] = primary;
            if (appended)
                *appended = true;
        }
    }
    return nout;
}
