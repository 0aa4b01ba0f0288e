/*  applylag.h - a replica's replication lag, entry by entry: from the
    moment the upstream had applied a stream message's entries (the
    applied_us it stamps on each stream ENTRIES as it publishes it, by its
    wall clock) to the moment this node had applied them (the end of its
    turn, by its wall clock). Both ends are taken after a whole batch was
    applied, so a batch's own processing time is not counted twice: the
    figure is each entry's lag, as a watch of each node would see it.

    The replica notes each stamped stream message as it reads it (its last
    seq, the stamp, its entry count) and, after each turn, takes every
    noted message whose last seq it has now applied into a histogram,
    once per entry. Notes wait in a small ring: a message ahead of a gap
    waits with its stamp until the gap is repaired, so its lag includes
    the repair. Between two machines the offset of their clocks counts in
    (NTP keeps it to well under a millisecond on a LAN); on one machine
    the figure is exact to the microsecond.
*/
#ifndef WC_APPLYLAG_H_INCLUDED
#define WC_APPLYLAG_H_INCLUDED

#include <stdint.h>
#include "metrics.h"

#define WC_APPLYLAG_NOTES   64      /* messages noted and not yet applied */

/*  The histogram's bounds, in seconds: finer than the other latencies'
    around a millisecond, where a replication lag target usually is. */
#define WC_APPLYLAG_BUCKETS 16
extern const double wc_applylag_bounds [WC_APPLYLAG_BUCKETS];

typedef struct {
    uint64_t last_seq;              /* the message's last seq */
    uint64_t applied_us;            /* the upstream's stamp */
    uint32_t count;                 /* its entries */
} wc_applylag_note_t;

/*  Plain data, embedded in the replica; all zero is empty. */
typedef struct {
    wc_applylag_note_t notes [WC_APPLYLAG_NOTES];
    uint32_t head;                  /* oldest note */
    uint32_t len;                   /* notes held */
    uint64_t dropped;               /* notes pushed out by newer ones */
} wc_applylag_t;

/*  Note a stream message (applied_us 0: not stamped, nothing noted).
    When the ring is full the oldest note goes. */
void wc_applylag_note (wc_applylag_t *self, uint64_t last_seq, uint64_t applied_us,
                       uint32_t count);

/*  Everything up to applied_seq is applied as of now_us (wall clock):
    add the lag of each noted message it covers to tally (seconds, with
    wc_applylag_bounds, once per entry; a negative lag, clocks apart,
    counts as 0) and forget those notes. */
void wc_applylag_drain (wc_applylag_t *self, uint64_t applied_seq, uint64_t now_us,
                        wc_metrics_tally_t *tally);

/*  Forget every note (the upstream changed: its seqs may not come). */
void wc_applylag_clear (wc_applylag_t *self);

#endif
