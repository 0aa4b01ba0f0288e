/*  session.h - the session token: what a handle has written or seen.

    Session consistency (read-your-writes, monotonic reads) needs one
    number per handle: the highest seq it wrote (a WRITE_OK) or saw (the
    applied seq a VALUE reply carries). A read sends it as min_seq; a
    node that has not applied that far waits a little, then answers
    ESTALE and the handle tries the next node. Seqs grow by one per write
    across epochs (a new primary continues the log it inherited), so the
    seq alone orders positions; the epoch is kept for information.

    A value type (no allocation): embed a wc_session_t, wc_session_reset
    it, feed it with wc_session_note.
*/
#ifndef WC_SESSION_H_INCLUDED
#define WC_SESSION_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t seq;       /* highest seq written or seen; 0 = nothing yet */
    uint64_t epoch;     /* epoch of the newest write noted (0 unknown) */
} wc_session_t;

/*  Forget everything (token 0). */
void wc_session_reset (wc_session_t *self);

/*  Note a position written (epoch known) or seen (epoch 0). The token
    only moves forward. */
void wc_session_note (wc_session_t *self, uint64_t epoch, uint64_t seq);

/*  The min_seq a read sends: the larger of the token (when use_token,
    i.e. session consistency) and an explicit one (0 = none). */
uint64_t wc_session_min_seq (const wc_session_t *self, bool use_token,
                             uint64_t explicit_min);

/*  How long a node may wait for min_seq: wait_ms when there is a
    min_seq to wait for, else 0. */
uint32_t wc_session_wait_ms (uint64_t min_seq, int wait_ms);

#endif
