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
*/
#ifndef WC_ACKS_H_INCLUDED
#define WC_ACKS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec.h"

#define WC_ACKS_MAX  64

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

/*  Forget every replica (a new tenure starts). */
void wc_acks_clear (wc_acks_t *self);

#endif
