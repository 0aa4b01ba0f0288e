/*  acks.h - what each replica says it holds: the primary's table of ACKs.

    Replicas send ACK (id, epoch, seq) to their upstream's service socket:
    seq is the last entry they hold as durably as their --fsync says. The
    primary keeps the newest ACK of each replica, with when it came, and
    answers two questions from it:
    - how many current replicas hold a seq (a write's acks=N);
    - how many replicas are current at all (--min-replicas).
    A replica is current while its last ACK is younger than the lag bound
    (--replica-lag). ACKs of an older epoch than the primary's are not
    counted (fencing); the table is bounded (WC_ACKS_MAX replicas; the
    longest silent one makes room).

    For /metrics the table also says how far behind each replica is, in
    entries and in time: the primary notes when it applied what (a sample
    per WC_ACKS_SAMPLE_MS, the last WC_ACKS_SAMPLES), and a replica's lag
    in ms is the age of the first entry it does not hold.
*/
#ifndef WC_ACKS_H_INCLUDED
#define WC_ACKS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec.h"

#define WC_ACKS_MAX  64
#define WC_ACKS_SAMPLES    1024
#define WC_ACKS_SAMPLE_MS  10

typedef struct wc_acks wc_acks_t;

wc_acks_t *wc_acks_new (int64_t lag_ms);
void wc_acks_destroy (wc_acks_t **self_p);

/*  A replica id (1..WC_MAX_ID bytes) acked seq in epoch at now_ms. */
void wc_acks_update (wc_acks_t *self, const wc_bytes_t *id, uint64_t epoch,
                     uint64_t seq, int64_t now_ms);

/*  Current replicas of epoch at now_ms that hold seq (seq 0: all current). */
uint32_t wc_acks_holding (const wc_acks_t *self, uint64_t epoch, uint64_t seq,
                          int64_t now_ms);

/*  The seq replica id last acked in epoch (0 when none). */
uint64_t wc_acks_seq_of (const wc_acks_t *self, const wc_bytes_t *id, uint64_t epoch);

/*  Has replica id ACKed in epoch (its log agreed to be a prefix of this
    history), whatever the seq, even 0? */
bool wc_acks_heard (const wc_acks_t *self, const wc_bytes_t *id, uint64_t epoch);

/*  The primary has applied every entry up to seq, at now_ms (called
    after commits and syncs; cheap when nothing changed). */
void wc_acks_applied (wc_acks_t *self, uint64_t seq, int64_t now_ms);

/*  One replica as /metrics shows it. */
typedef struct {
    char     id [WC_MAX_ID + 1];    /* printable */
    uint64_t entries;               /* behind head */
    int64_t  ms;                    /* age of the first entry it lacks, 0: none */
    bool     current;               /* acked epoch within the lag bound */
} wc_acks_lag_t;

/*  Replicas in the table, and replica i's lag behind head (the primary's
    applied seq) in epoch at now_ms. */
size_t wc_acks_count (const wc_acks_t *self);
void wc_acks_lag (const wc_acks_t *self, size_t i, uint64_t epoch, uint64_t head,
                  int64_t now_ms, wc_acks_lag_t *lag);

/*  Drop replica id (an operator forgot it at the broker: it was removed
    for good), with its /metrics series. True when it was in the table.
    A replica that still ACKs is back at its next ACK. */
bool wc_acks_remove (wc_acks_t *self, const wc_bytes_t *id);

/*  Forget every replica (a new tenure starts). */
void wc_acks_clear (wc_acks_t *self);

#endif
