/*  session.c - the session token (see session.h).

    The idea is a monotonic maximum: every WRITE_OK and every VALUE
    pushes the token up and every session read asks for at least the
    token, so a handle never reads older data than it wrote or already
    read, whichever node serves it. Two exceptions: a read the primary
    proves false (a node claimed a seq the primary does not have): that
    part of the token, kept apart as `pending` until the primary vouches
    for it, is dropped; and a token a node's history proves rolled back
    (a failover dropped what the session wrote or read): it goes back to
    where that history has it (wc_session_rollback).
*/
#include "session.h"
#include "wc_limits.h"

//  Recompute the token from its parts.
static void
s_token (wc_session_t *self)
{
    self->seq = self->pending > self->confirmed ? self->pending : self->confirmed;
}

//  A pending seq the primary is now known to have is confirmed.
static void
s_vouch (wc_session_t *self)
{
    if (self->pending != 0 && self->pending <= self->primary_seq) {
        if (self->pending > self->confirmed)
            self->confirmed = self->pending;
        self->pending = 0;
    }
}

void
wc_session_reset (wc_session_t *self)
{
    self->seq = 0;
    self->epoch = 0;
    self->confirmed = 0;
    self->primary_seq = 0;
    self->pending = 0;
    self->pending_us = 0;
}

void
wc_session_note (wc_session_t *self, uint64_t epoch, uint64_t seq)
{
    if (seq > self->confirmed)
        self->confirmed = seq;
    if (seq > self->primary_seq)
        self->primary_seq = seq;
    if (epoch > self->epoch)
        self->epoch = epoch;
    s_vouch (self);
    s_token (self);
}

void
wc_session_read (wc_session_t *self, uint64_t seq, uint64_t epoch, int64_t now_us)
{
    if (epoch > self->epoch)
        self->epoch = epoch;
    //  As far as the primary is known to be: confirmed; beyond: pending
    uint64_t vouched = seq < self->primary_seq ? seq : self->primary_seq;
    if (vouched > self->confirmed)
        self->confirmed = vouched;
    if (seq > self->primary_seq && seq > self->pending) {
        self->pending = seq;
        self->pending_us = now_us;
    }
    s_token (self);
}

bool
wc_session_primary (wc_session_t *self, uint64_t seq, int64_t asked_us)
{
    if (seq > self->primary_seq)
        self->primary_seq = seq;
    s_vouch (self);
    bool dropped = false;
    if (self->pending != 0 && asked_us != 0 && asked_us >= self->pending_us) {
        //  Asked after the read and still behind it: the read was false
        self->pending = 0;
        dropped = true;
    }
    s_token (self);
    return dropped;
}

void
wc_session_rollback (wc_session_t *self, uint64_t end, uint64_t epoch)
{
    if (self->confirmed > end)
        self->confirmed = end;
    if (self->primary_seq > end)
        self->primary_seq = end;
    self->pending = 0;
    self->pending_us = 0;
    if (epoch > self->epoch)
        self->epoch = epoch;
    s_token (self);
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

uint64_t
wc_session_min_epoch (const wc_session_t *self, bool use_token)
{
    return use_token ? self->epoch : 0;
}

uint32_t
wc_session_wait_ms (uint64_t min_seq, int wait_ms, int64_t remaining_ms)
{
    if (min_seq == 0 || wait_ms <= 0 || remaining_ms <= 0)
        return 0;
    int64_t wait = wait_ms;
    if (wait > remaining_ms / 2)
        wait = remaining_ms / 2;
    if (wait > WC_MAX_WAIT_MS)
        wait = WC_MAX_WAIT_MS;
    return (uint32_t) wait;
}
