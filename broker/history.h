/*  history.h - what the status page shows of the past: each node's lag
    over the last minutes, and the recent changes of primary.

    A pure data module, like directory.c: the broker samples the
    directory into it once a second (wc_history_sample) and tells it of
    every change of primary (wc_history_event); statuspage.c writes both
    into its JSON. Memory is bounded whatever the network does: at most
    one record per node the directory holds (WC_MAX_NODES), each a fixed
    ring of WC_HISTORY_SAMPLES samples of 8 bytes (2.4 MiB at the very
    most), and a ring of WC_HISTORY_EVENTS events.

    Every node's ring is indexed like the others, by the sample's number,
    so the history of all nodes shares one time axis: sample k of every
    node was taken at the same moment. A node that was down, or not yet
    known, has a gap there.
*/
#ifndef WC_HISTORY_H_INCLUDED
#define WC_HISTORY_H_INCLUDED

#include <stdint.h>
#include "directory.h"
#include "failover.h"
#include "json.h"

#define WC_HISTORY_SAMPLES   300      /* one a second: five minutes */
#define WC_HISTORY_EVENTS    32       /* changes of primary kept */
#define WC_HISTORY_MAX_LAG   4294967294u    /* samples saturate here */

typedef struct wc_history wc_history_t;

/*  A new, empty history, or NULL when out of memory. */
wc_history_t *wc_history_new (void);

/*  Free it; *self_p becomes NULL; safe twice. */
void wc_history_destroy (wc_history_t **self_p);

/*  Take one sample of every node of dir at monotonic time now_ms, stamped
    with wall-clock time wall_ms: lag and lag_ms of each node that is up,
    a gap for the others. Nodes the directory no longer holds are
    forgotten. Returns 0 or WALCAST_ENOMEM (a new node then has no
    history; the others are sampled). */
int wc_history_sample (wc_history_t *self, wc_directory_t *dir, int64_t now_ms,
                       int64_t wall_ms);

/*  Keep a change of primary (failover.h), stamped with wall_ms; the
    oldest goes when WC_HISTORY_EVENTS are kept. */
void wc_history_event (wc_history_t *self, const wc_failover_event_t *event,
                       int64_t wall_ms);

/*  Samples taken so far, up to WC_HISTORY_SAMPLES, and the wall-clock
    time of the newest (0 before the first). */
int wc_history_count (wc_history_t *self);
int64_t wc_history_last_ms (wc_history_t *self);

/*  Write node id's samples into json as an array, oldest first, one
    item per sample taken (wc_history_count): [lag, lag_ms], or null
    for a gap. A node without a history gets nulls. */
void wc_history_json_node (wc_history_t *self, const char *id, wc_json_t *json);

/*  Write the events into json as an array, newest first: objects with
    time_ms, kind, from, to, addr, epoch and reason. */
void wc_history_json_events (wc_history_t *self, wc_json_t *json);

#endif
