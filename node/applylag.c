/*  applylag.c - a replica's replication lag, entry by entry (see
    applylag.h). A fixed ring of notes: noting and draining cost a few
    stores each, nothing is allocated.
*/
#include <string.h>
#include "applylag.h"

const double wc_applylag_bounds [WC_APPLYLAG_BUCKETS] = {
    0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002,
    0.003, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10
};

void
wc_applylag_note (wc_applylag_t *self, uint64_t last_seq, uint64_t applied_us,
                  uint32_t count)
{
    if (applied_us == 0 || count == 0)
        return;
    if (self->len == WC_APPLYLAG_NOTES) {
        self->head = (self->head + 1) % WC_APPLYLAG_NOTES;
        self->len--;
        self->dropped++;
    }
    uint32_t at = (self->head + self->len) % WC_APPLYLAG_NOTES;
    self->notes [at] = (wc_applylag_note_t) { last_seq, applied_us, count };
    self->len++;
}

void
wc_applylag_drain (wc_applylag_t *self, uint64_t applied_seq, uint64_t now_us,
                   wc_metrics_tally_t *tally)
{
    while (self->len > 0 && self->notes [self->head].last_seq <= applied_seq) {
        const wc_applylag_note_t *note = &self->notes [self->head];
        double lag = now_us > note->applied_us
                   ? (double) (now_us - note->applied_us) / 1e6 : 0;
        wc_metrics_tally_add_n (tally, wc_applylag_bounds, WC_APPLYLAG_BUCKETS, lag,
                                note->count);
        self->head = (self->head + 1) % WC_APPLYLAG_NOTES;
        self->len--;
    }
}

void
wc_applylag_clear (wc_applylag_t *self)
{
    self->head = 0;
    self->len = 0;
}
