/*  session.h - the session token: what a handle has written or seen.

    Session consistency (read-your-writes, monotonic reads) needs one
    number per handle: the highest seq it wrote (a WRITE_OK) or saw (the
    applied seq a VALUE reply carries). A read sends it as min_seq; a
    node that has not applied that far waits a little, then answers
    ESTALE and the handle tries the next node. Seqs grow by one per write
    across epochs (a new primary continues the log it inherited), so on
    one history the seq alone orders positions; the token's epoch (the
    newest written or read) keeps a node of an older history (a deposed
    primary) from passing for one that holds it, and lets a node of a
    newer one say that the token was rolled back.

    A read's seq is a claim by whichever node answered, and a node that
    claims too much (a seq near 2^64, say) would make every later read
    wait for a seq that never comes. So the token has two parts:
    - confirmed: seqs written, and seqs read no further than the primary
      was known to be (its WRITE_OKs, PONGs, VALUEs and STATUS, and the
      broker's word for it);
    - pending: a read further than that, not yet vouched for.
    The token is the larger of the two, so monotonic reads hold for
    honest nodes even when the handle's news of the primary is old. When
    the primary, asked after the pending read was seen, reports less
    than it (an honest primary never is behind a replica), the pending
    seq was false and is forgotten; when it reports as much, it becomes
    confirmed.

    A value type (no allocation): embed a wc_session_t, wc_session_reset
    it, feed it with wc_session_note / wc_session_read /
    wc_session_primary. Times are the caller's monotonic microseconds.
*/
#ifndef WC_SESSION_H_INCLUDED
#define WC_SESSION_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t seq;           /* the token: max (confirmed, pending); 0 = none */
    uint64_t epoch;         /* newest epoch of a write or read noted (0 unknown) */
    uint64_t confirmed;     /* written, or read and vouched for */
    uint64_t primary_seq;   /* highest seq the primary is known to have */
    uint64_t pending;       /* read beyond primary_seq, not vouched for; 0 none */
    int64_t  pending_us;    /* when pending was read */
} wc_session_t;

/*  Forget everything (token 0). */
void wc_session_reset (wc_session_t *self);

/*  Note a write the primary acknowledged at (epoch, seq). */
void wc_session_note (wc_session_t *self, uint64_t epoch, uint64_t seq);

/*  Note a read answered with applied seq `seq` by a node at `epoch` (its
    latest; 0 unknown, or not vouched for: see walcast.c), read at now_us. */
void wc_session_read (wc_session_t *self, uint64_t seq, uint64_t epoch, int64_t now_us);

/*  A node's history does not hold the token: its epochs up to the
    token's end at seq `end`, and it is at `epoch`. What the session saw
    past end was rolled back by a failover: the token goes back to end,
    in epoch. */
void wc_session_rollback (wc_session_t *self, uint64_t end, uint64_t epoch);

/*  The primary says it has applied `seq`, answering a request sent at
    asked_us (0: when is not known, as for the broker's word). Returns
    true when this proved the pending seq false (it was dropped, so the
    token went down). */
bool wc_session_primary (wc_session_t *self, uint64_t seq, int64_t asked_us);

/*  The min_seq a read sends: the larger of the token (when use_token,
    i.e. session consistency) and an explicit one (0 = none). */
uint64_t wc_session_min_seq (const wc_session_t *self, bool use_token,
                             uint64_t explicit_min);

/*  The min_epoch a read sends with it: the newest epoch of a write or a
    read noted (when use_token), so that a node still in an older epoch
    (a deposed primary, a replica cut off with it), whose seqs may be of
    another history, does not pass for one that holds the token. */
uint64_t wc_session_min_epoch (const wc_session_t *self, bool use_token);

/*  How long a node may wait for min_seq: wait_ms when there is a
    min_seq to wait for (else 0), at most half of remaining_ms (the
    call's time left, so that a node behind leaves time to try another)
    and at most WC_MAX_WAIT_MS. */
uint32_t wc_session_wait_ms (uint64_t min_seq, int wait_ms, int64_t remaining_ms);

#endif
