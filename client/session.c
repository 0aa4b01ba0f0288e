/*  session.c - the session token (see session.h).

    The whole idea is a monotonic maximum: every WRITE_OK and every VALUE
    pushes the token up, nothing pulls it down, and every session read
    asks for at least the token. So a handle never reads older data than
    it wrote or already read, whichever node serves it.
*/
#include "session.h"
#include "wc_limits.h"

void
wc_session_reset (wc_session_t *self)
{
    self->seq = 0;
    self->epoch = 0;
}

void
wc_session_note (wc_session_t *self, uint64_t epoch, uint64_t seq)
{
    if (seq > self->seq)
        self->seq = seq;
    if (epoch > self->epoch)
        self->epoch = epoch;
}

uint64_t
wc_session_min_seq (const wc_session_t *self, bool use_token,
                    uint64_t explicit_min)
{
    uint64_t min_seq = explicit_min;
    if (use_token && self->seq > min_seq)
        min_seq = self->seq;
    return min_seq;
}

uint32_t
wc_session_wait_ms (uint64_t min_seq, int wait_ms)
{
    if (min_seq == 0 || wait_ms <= 0)
        return 0;
    return (uint32_t) wait_ms > WC_MAX_WAIT_MS ? WC_MAX_WAIT_MS : (uint32_t) wait_ms;
}
