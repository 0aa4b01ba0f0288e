/*  outcomes.c - the FIFO of a handle's async writes (see outcomes.h).

    A ring of slots: head is the oldest write not yet handed over, size
    the number held. Slots from head on hold strictly increasing rids,
    which is what lets wc_outcomes_settle find a rid by binary search.
    A detail is kept only for writes that did not land (malloc'd, freed
    when handed over): an OK costs no allocation.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "outcomes.h"

#define S_INFLIGHT  (-1)        /* state of a slot still waiting */

typedef struct {
    uint64_t      rid;
    uint64_t      batch;        /* rid of its batch's first write */
    uint64_t      tag;
    uint8_t       acks;         /* what it asked for */
    int64_t       pushed_ms;    /* when it was pushed (about when sent) */
    int           state;        /* S_INFLIGHT or a walcast_write_state_t */
    int           err;
    walcast_pos_t pos;
    uint32_t      acked;
    char         *detail;       /* NULL: none */
} s_slot_t;

struct wc_outcomes {
    s_slot_t *slots;
    size_t    cap;
    size_t    head;             /* oldest held */
    size_t    size;             /* held */
    size_t    inflight;         /* held and still waiting */
    uint64_t  last_rid;         /* highest rid pushed */
};

wc_outcomes_t *
wc_outcomes_new (size_t cap)
{
    wc_outcomes_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->slots = calloc (cap, sizeof self->slots [0]);
    if (!self->slots) {
        free (self);
        return NULL;
    }
    self->cap = cap;
    return self;
}

void
wc_outcomes_destroy (wc_outcomes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wc_outcomes_t *self = *self_p;
    for (size_t k = 0; k < self->size; k++)
        free (self->slots [(self->head + k) % self->cap].detail);
    free (self->slots);
    free (self);
    *self_p = NULL;
}

size_t
wc_outcomes_size (wc_outcomes_t *self)
{
    return self->size;
}

size_t
wc_outcomes_inflight (wc_outcomes_t *self)
{
    return self->inflight;
}

int
wc_outcomes_push (wc_outcomes_t *self, uint64_t rid, uint64_t tag, uint8_t acks,
                  int64_t now_ms)
{
    return wc_outcomes_push_batch (self, rid, tag, acks, rid, now_ms);
}

int
wc_outcomes_push_batch (wc_outcomes_t *self, uint64_t rid, uint64_t tag, uint8_t acks,
                        uint64_t batch, int64_t now_ms)
{
    if (self->size == self->cap)
        return WALCAST_EBUSY;
    if (rid <= self->last_rid)
        return WALCAST_EINVAL;
    s_slot_t *slot = &self->slots [(self->head + self->size) % self->cap];
    memset (slot, 0, sizeof *slot);
    slot->rid = rid;
    slot->batch = batch;
    slot->tag = tag;
    slot->acks = acks;
    slot->pushed_ms = now_ms;
    slot->state = S_INFLIGHT;
    self->size++;
    self->inflight++;
    self->last_rid = rid;
    return 0;
}

//  The slot holding rid, or NULL: binary search over the held slots,
//  whose rids grow from the head.
static s_slot_t *
s_find (wc_outcomes_t *self, uint64_t rid)
{
    size_t lo = 0, hi = self->size;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        s_slot_t *slot = &self->slots [(self->head + mid) % self->cap];
        if (slot->rid == rid)
            return slot;
        if (slot->rid < rid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool
wc_outcomes_waits_for (wc_outcomes_t *self, uint64_t rid, uint8_t *acks)
{
    if (rid == 0 || self->inflight == 0)
        return false;
    s_slot_t *slot = s_find (self, rid);
    if (!slot || slot->state != S_INFLIGHT)
        return false;
    if (acks)
        *acks = slot->acks;
    return true;
}

//  Give slot its outcome.
static void
s_settle (wc_outcomes_t *self, s_slot_t *slot, int state, int err,
          walcast_pos_t pos, uint32_t acked, const char *detail)
{
    slot->state = state;
    slot->err = err;
    slot->pos = pos;
    slot->acked = acked;
    slot->detail = detail && *detail ? strdup (detail) : NULL;
    self->inflight--;
}

bool
wc_outcomes_settle (wc_outcomes_t *self, uint64_t rid, int state, int err,
                    walcast_pos_t pos, uint32_t acked, const char *detail)
{
    s_slot_t *slot = rid ? s_find (self, rid) : NULL;
    if (!slot || slot->state != S_INFLIGHT)
        return false;
    s_settle (self, slot, state, err, pos, acked, detail);
    return true;
}

size_t
wc_outcomes_settle_batch (wc_outcomes_t *self, uint64_t batch, uint32_t taken,
                          const wc_outcome_end_t *ok, walcast_pos_t first,
                          const wc_outcome_end_t *rest)
{
    s_slot_t *slot = batch ? s_find (self, batch) : NULL;
    if (!slot || slot->state != S_INFLIGHT)
        return 0;
    size_t k = (size_t) (slot - self->slots + self->cap - self->head) % self->cap;
    size_t settled = 0;
    walcast_pos_t none = { 0, 0 };
    for (; k < self->size; k++, settled++) {
        slot = &self->slots [(self->head + k) % self->cap];
        if (slot->batch != batch || slot->state != S_INFLIGHT)
            break;
        walcast_pos_t pos = { first.epoch, first.seq + settled };
        const wc_outcome_end_t *end = settled < taken ? ok : rest;
        s_settle (self, slot, end->state, end->err, settled < taken ? pos : none,
                  end->acked, end->detail);
    }
    return settled;
}

size_t
wc_outcomes_lose_all (wc_outcomes_t *self, int err, const char *detail)
{
    return wc_outcomes_lose_before (self, UINT64_MAX, err, detail);
}

size_t
wc_outcomes_lose_before (wc_outcomes_t *self, uint64_t rid, int err,
                         const char *detail)
{
    size_t lost = 0;
    walcast_pos_t none = { 0, 0 };
    for (size_t k = 0; k < self->size && self->inflight > 0; k++) {
        s_slot_t *slot = &self->slots [(self->head + k) % self->cap];
        if (slot->rid >= rid)
            break;                      /* rids grow from the head */
        if (slot->state == S_INFLIGHT) {
            s_settle (self, slot, WALCAST_WRITE_UNKNOWN, err, none, 0, detail);
            lost++;
        }
    }
    return lost;
}

size_t
wc_outcomes_expire (wc_outcomes_t *self, int64_t before_ms, uint64_t below_rid,
                    int err, const char *detail)
{
    size_t lost = 0;
    walcast_pos_t none = { 0, 0 };
    for (size_t k = 0; k < self->size && self->inflight > 0; k++) {
        s_slot_t *slot = &self->slots [(self->head + k) % self->cap];
        if (slot->pushed_ms >= before_ms || slot->rid >= below_rid)
            break;                      /* pushed in order: the rest are newer */
        if (slot->state == S_INFLIGHT) {
            s_settle (self, slot, WALCAST_WRITE_UNKNOWN, err, none, 0, detail);
            lost++;
        }
    }
    return lost;
}

bool
wc_outcomes_pop (wc_outcomes_t *self, walcast_outcome_t *outcome, char *buf,
                 size_t size)
{
    if (self->size == 0)
        return false;
    s_slot_t *slot = &self->slots [self->head];
    if (slot->state == S_INFLIGHT)
        return false;
    outcome->tag = slot->tag;
    outcome->state = slot->state;
    outcome->err = slot->err;
    outcome->pos = slot->pos;
    outcome->acked = slot->acked;
    if (slot->detail)
        snprintf (buf, size, "%s", slot->detail);
    else
    if (size > 0)
        buf [0] = 0;
    outcome->detail = buf;
    free (slot->detail);
    slot->detail = NULL;
    self->head = (self->head + 1) % self->cap;
    self->size--;
    return true;
}
