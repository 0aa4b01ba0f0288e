/*  acks.c - the primary's table of replica ACKs (see acks.h).

    A small array searched linearly: a primary has a handful of direct
    replicas, and a write asks about them once per commit at most.
*/
#include <stdlib.h>
#include <string.h>
#include "acks.h"

typedef struct {
    char     id [WC_MAX_ID];     /* bytes, not a string: it may hold a NUL */
    uint32_t id_len;
    uint64_t epoch;             /* of its last ACK */
    uint64_t seq;               /* the seq of its last ACK */
    int64_t  heard_ms;          /* when its last ACK came */
} s_replica_t;

//  The primary had applied up to seq at ms.
typedef struct {
    uint64_t seq;
    int64_t  ms;
} s_sample_t;

struct wc_acks {
    s_replica_t replicas [WC_ACKS_MAX];
    size_t      count;
    int64_t     lag_ms;         /* current while heard this recently */
    s_sample_t  samples [WC_ACKS_SAMPLES];  /* a ring, oldest at first */
    size_t      first, nsamples;
};

wc_acks_t *
wc_acks_new (int64_t lag_ms)
{
    wc_acks_t *self = (wc_acks_t *) calloc (1, sizeof *self);
    if (self)
        self->lag_ms = lag_ms;
    return self;
}

void
wc_acks_destroy (wc_acks_t **self_p)
{
    free (*self_p);
    *self_p = NULL;
}

//  The slot of id: its own, a free one, or the longest silent one's.
static s_replica_t *
s_slot (wc_acks_t *self, const wc_bytes_t *id)
{
    s_replica_t *oldest = NULL;
    for (size_t i = 0; i < self->count; i++) {
        s_replica_t *r = &self->replicas [i];
        if (r->id_len == id->len && memcmp (r->id, id->ptr, id->len) == 0)
            return r;
        if (!oldest || r->heard_ms < oldest->heard_ms)
            oldest = r;
    }
    s_replica_t *slot = self->count < WC_ACKS_MAX ? &self->replicas [self->count++]
                                                  : oldest;
    memset (slot, 0, sizeof *slot);
    memcpy (slot->id, id->ptr, id->len);
    slot->id_len = id->len;
    return slot;
}

void
wc_acks_update (wc_acks_t *self, const wc_bytes_t *id, uint64_t epoch,
                uint64_t seq, int64_t now_ms)
{
    if (id->len == 0 || id->len > WC_MAX_ID)
        return;
    s_replica_t *r = s_slot (self, id);
    r->epoch = epoch;           /* the latest replaces it, even lower: the */
    r->seq = seq;               /* replica lost or truncated entries */
    r->heard_ms = now_ms;
}

uint32_t
wc_acks_holding (const wc_acks_t *self, uint64_t epoch, uint64_t seq,
                 int64_t now_ms)
{
    uint32_t holding = 0;
    for (size_t i = 0; i < self->count; i++) {
        const s_replica_t *r = &self->replicas [i];
        if (r->epoch == epoch && r->seq >= seq && now_ms - r->heard_ms <= self->lag_ms)
            holding++;
    }
    return holding;
}

uint64_t
wc_acks_seq_of (const wc_acks_t *self, const wc_bytes_t *id, uint64_t epoch)
{
    for (size_t i = 0; i < self->count; i++) {
        const s_replica_t *r = &self->replicas [i];
        if (r->id_len == id->len && memcmp (r->id, id->ptr, id->len) == 0)
            return r->epoch == epoch ? r->seq : 0;
    }
    return 0;
}

bool
wc_acks_heard (const wc_acks_t *self, const wc_bytes_t *id, uint64_t epoch)
{
    for (size_t i = 0; i < self->count; i++) {
        const s_replica_t *r = &self->replicas [i];
        if (r->id_len == id->len && memcmp (r->id, id->ptr, id->len) == 0)
            return r->epoch == epoch;
    }
    return false;
}

void
wc_acks_applied (wc_acks_t *self, uint64_t seq, int64_t now_ms)
{
    s_sample_t *last = self->nsamples
        ? &self->samples [(self->first + self->nsamples - 1) % WC_ACKS_SAMPLES] : NULL;
    if (last && seq <= last->seq)
        return;
    if (last && now_ms - last->ms < WC_ACKS_SAMPLE_MS) {
        last->seq = seq;        /* these entries look a little older */
        return;
    }
    if (self->nsamples == WC_ACKS_SAMPLES)
        self->first = (self->first + 1) % WC_ACKS_SAMPLES;
    else
        self->nsamples++;
    self->samples [(self->first + self->nsamples - 1) % WC_ACKS_SAMPLES] =
        (s_sample_t) { seq, now_ms };
}

size_t
wc_acks_count (const wc_acks_t *self)
{
    return self->count;
}

//  When the primary applied the entry after seq: the first sample that
//  covers it (the oldest when the ring no longer reaches back so far).
static int64_t
s_applied_ms (const wc_acks_t *self, uint64_t seq, int64_t now_ms)
{
    for (size_t k = 0; k < self->nsamples; k++) {
        const s_sample_t *sample = &self->samples [(self->first + k) % WC_ACKS_SAMPLES];
        if (sample->seq > seq || k + 1 == self->nsamples)
            return sample->ms;
    }
    return now_ms;
}

void
wc_acks_lag (const wc_acks_t *self, size_t i, uint64_t epoch, uint64_t head,
             int64_t now_ms, wc_acks_lag_t *lag)
{
    const s_replica_t *r = &self->replicas [i];
    memcpy (lag->id, r->id, r->id_len);
    lag->id [r->id_len] = '\0';
    for (uint32_t k = 0; k < r->id_len; k++)
        if ((unsigned char) lag->id [k] < 0x20 || lag->id [k] == 0x7f)
            lag->id [k] = '?';          /* bytes from the network */
    lag->entries = head > r->seq ? head - r->seq : 0;
    lag->ms = lag->entries ? now_ms - s_applied_ms (self, r->seq, now_ms) : 0;
    lag->current = r->epoch == epoch && now_ms - r->heard_ms <= self->lag_ms;
}

bool
wc_acks_remove (wc_acks_t *self, const wc_bytes_t *id)
{
    for (size_t i = 0; i < self->count; i++) {
        s_replica_t *r = &self->replicas [i];
        if (r->id_len == id->len && memcmp (r->id, id->ptr, id->len) == 0) {
            memmove (r, r + 1, (self->count - i - 1) * sizeof *r);
            self->count--;      /* the others keep their order (/metrics) */
            return true;
        }
    }
    return false;
}

void
wc_acks_clear (wc_acks_t *self)
{
    self->count = 0;
}
