/*  outcomes.h - the async writes of a handle, from send to outcome.

    Every async write the handle sends takes one slot of a FIFO, in
    submission order: its rid, the caller's tag, the acks it asked for,
    and, once known, its outcome (OK with a position and the replicas
    that confirmed it, NOTREPLICATED, FAILED or UNKNOWN with an error and
    a detail). Replies settle slots in any order (matched by rid); the
    handle hands outcomes over from the head only, so the caller sees
    them in submission order. Two ideas keep it simple and cheap:

    - rids of async writes grow with the submission order (they come
      from the handle's one counter), so the slot of a rid is found by
      binary search over the FIFO: no second index, no rid reuse.
    - Nothing is ever dropped: a write whose connection is lost (a
      timeout, a reset) is settled UNKNOWN, with the reason, and waits
      in the FIFO like any other outcome until it is handed over.

    A pure module: no sockets, no clock. The FIFO is bounded by the
    capacity given to wc_outcomes_new.
*/
#ifndef WC_OUTCOMES_H_INCLUDED
#define WC_OUTCOMES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "walcast.h"

typedef struct wc_outcomes wc_outcomes_t;

/*  A FIFO of at most cap writes; NULL when out of memory. */
wc_outcomes_t *wc_outcomes_new (size_t cap);

/*  Free it (details included); *self_p becomes NULL. */
void wc_outcomes_destroy (wc_outcomes_t **self_p);

/*  Writes held (in flight or settled, not handed over), and of those
    still waiting for an answer. */
size_t wc_outcomes_size (wc_outcomes_t *self);
size_t wc_outcomes_inflight (wc_outcomes_t *self);

/*  A write sent at now_ms (monotonic) with rid (greater than every rid
    pushed before), tag and the acks it asked for. 0, or WALCAST_EBUSY
    when the FIFO is full, WALCAST_EINVAL when rid is not greater. */
int wc_outcomes_push (wc_outcomes_t *self, uint64_t rid, uint64_t tag, uint8_t acks,
                      int64_t now_ms);

/*  The same, for a write that goes in a batch: batch is the rid of the
    batch's first write (its own rid for the first), and the batch's
    writes are pushed one after the other. */
int wc_outcomes_push_batch (wc_outcomes_t *self, uint64_t rid, uint64_t tag,
                            uint8_t acks, uint64_t batch, int64_t now_ms);

/*  Settle UNKNOWN (err, detail) the writes still in flight that were
    pushed before before_ms and whose rid is below below_rid (the ones
    sent): their answer is overdue. Returns how many. Cheap when the
    oldest in flight is not overdue. */
size_t wc_outcomes_expire (wc_outcomes_t *self, int64_t before_ms, uint64_t below_rid,
                           int err, const char *detail);

/*  How a write ends: a walcast_write_state_t, an error, the replicas that
    confirmed it and a detail (copied; NULL or "" for none). */
typedef struct {
    int         state;
    int         err;
    uint32_t    acked;
    const char *detail;
} wc_outcome_end_t;

/*  Settle the writes in flight of the batch whose first write has rid
    batch: the first taken of them as ok says, at positions first,
    first + 1...; the others as rest says (position 0). Returns how many
    were settled (0: no such batch in flight, a late or stray reply). */
size_t wc_outcomes_settle_batch (wc_outcomes_t *self, uint64_t batch, uint32_t taken,
                                 const wc_outcome_end_t *ok, walcast_pos_t first,
                                 const wc_outcome_end_t *rest);

/*  Is rid the rid of a write in flight? *acks (if not NULL) gets the
    acks it asked for. */
bool wc_outcomes_waits_for (wc_outcomes_t *self, uint64_t rid, uint8_t *acks);

/*  Settle the write in flight with this rid: state (a
    walcast_write_state_t), err, pos, acked and detail (copied; NULL or
    "" for none). Returns false when no write in flight has this rid (a
    late or stray reply). */
bool wc_outcomes_settle (wc_outcomes_t *self, uint64_t rid, int state, int err,
                         walcast_pos_t pos, uint32_t acked, const char *detail);

/*  Settle every write still in flight as UNKNOWN with err and detail
    (their connection is gone). Returns how many. */
size_t wc_outcomes_lose_all (wc_outcomes_t *self, int err, const char *detail);

/*  The same for the writes in flight whose rid is below `rid` only (the
    newer ones were not sent). */
size_t wc_outcomes_lose_before (wc_outcomes_t *self, uint64_t rid, int err,
                                const char *detail);

/*  Take the head's outcome when it is settled: fills *outcome, whose
    detail points into buf (size bytes). false when the FIFO is empty or
    its head is still in flight. */
bool wc_outcomes_pop (wc_outcomes_t *self, walcast_outcome_t *outcome, char *buf,
                      size_t size);

#endif
