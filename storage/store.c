/*  store.c - the node's key-value state (see store.h).

    The table is open addressing with Robin Hood linear probing over a
    power-of-two array of slots. Each slot holds the key's 64-bit table
    hash and a pointer to one heap block carrying the key and the value
    together. An entry sits at some distance from its home slot (hash &
    mask); on insert, an entry that is further from home than the one
    occupying a slot takes that slot and the displaced one moves on. That
    keeps probe sequences short and sorted by distance, so a lookup stops
    as soon as it meets an entry closer to home than it would be. Deleting
    shifts the following entries of the run back by one (backward shift),
    so there are no tombstones and the table never degrades. The table
    doubles before it passes 70% load and halves below 15%; resizing
    reuses the stored hashes, so keys are never hashed again.

    Two hashes, one function. The table hash is seeded at random per store
    so crafted keys cannot aim at one bucket. The digest hash of a pair is
    unseeded and byte-order fixed, H(k, v) = hash (v, seed = hash (k, C)),
    with each length folded into its own hash, so ("ab", "c") and ("a",
    "bc") differ and every node on every machine computes the same value.
    The digest is the sum of H over all pairs, mod 2^64: put adds the new
    pair's H and takes away the old one's (kept in the entry), del takes it
    away. The hash itself is a small multiply-and-fold function in the
    style of wyhash, written for this file.
*/
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include "walcast.h"
#include "store.h"

/*  One key and its value in a single allocation. */
typedef struct {
    uint64_t pair_hash;         /* H(key, value): this pair's share of the digest */
    size_t key_len;             /* bytes of key at data */
    size_t value_len;           /* bytes of value at data + key_len */
    size_t value_cap;           /* bytes reserved for the value */
    unsigned char data [];      /* key, then value */
} s_entry_t;

/*  A table slot; free when entry is NULL. */
typedef struct {
    uint64_t hash;              /* seeded table hash of the entry's key */
    s_entry_t *entry;           /* the entry, or NULL */
} s_slot_t;

struct wc_store {
    s_slot_t *slots;            /* mask + 1 slots, a power of two */
    size_t mask;                /* capacity - 1 */
    size_t count;               /* entries held */
    uint64_t seed;              /* per-store random seed of the table hash */
    uint64_t digest;            /* sum of every entry's pair_hash, mod 2^64 */
};

#define S_MIN_CAPACITY  16

/*  Mixing constants (odd, roughly half their bits set) and the fixed seed
    of the digest hash. Changing any of them changes every digest: nodes
    of different versions would then disagree. */
static const uint64_t s_k0 = 0x9e3779b185ebca87ull;
static const uint64_t s_k1 = 0xc2b2ae3d27d4eb4full;
static const uint64_t s_k2 = 0x165667b19e3779f9ull;
static const uint64_t s_k3 = 0x85ebca77c2b2ae63ull;
static const uint64_t s_digest_seed = 0x27d4eb2f165667c5ull;


//  --------------------------------------------------------------------------
//  Hashing

//  Little-endian loads, so a hash does not depend on the machine. GCC
//  compiles these to single loads on x86 and arm64.

static inline uint64_t
s_load64 (const unsigned char *p)
{
    return (uint64_t) p [0]       | (uint64_t) p [1] << 8
         | (uint64_t) p [2] << 16 | (uint64_t) p [3] << 24
         | (uint64_t) p [4] << 32 | (uint64_t) p [5] << 40
         | (uint64_t) p [6] << 48 | (uint64_t) p [7] << 56;
}

static inline uint64_t
s_load32 (const unsigned char *p)
{
    return (uint64_t) p [0]       | (uint64_t) p [1] << 8
         | (uint64_t) p [2] << 16 | (uint64_t) p [3] << 24;
}

//  Full 64x64 -> 128 multiply; each half is xored into an input, so a
//  zero factor cannot wipe out what the other one carries. Targets
//  without a 128-bit type (32-bit ones) build it from four 32x32
//  products, with the same result.

static inline void
s_mum (uint64_t *a, uint64_t *b)
{
#if defined (__SIZEOF_INT128__)
    __extension__ unsigned __int128 r = (unsigned __int128) *a * *b;
    uint64_t lo = (uint64_t) r;
    uint64_t hi = (uint64_t) (r >> 64);
#else
    uint64_t a_lo = (uint32_t) *a, a_hi = *a >> 32;
    uint64_t b_lo = (uint32_t) *b, b_hi = *b >> 32;
    uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi;
    uint64_t hl = a_hi * b_lo, hh = a_hi * b_hi;
    uint64_t mid = (ll >> 32) + (uint32_t) lh + (uint32_t) hl;
    uint64_t lo = (mid << 32) | (uint32_t) ll;
    uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
#endif
    *a ^= lo;
    *b ^= hi;
}

static inline uint64_t
s_fold (uint64_t a, uint64_t b)
{
    s_mum (&a, &b);
    return a ^ b;
}

//  64-bit hash of len bytes under seed. Short inputs (the usual key) take
//  two overlapping reads and two multiplies; long ones run three lanes of
//  16 bytes. The length is folded into the result, so inputs that differ
//  only by trailing bytes the reads overlap still differ.

static uint64_t
s_hash (const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t a, b;
    seed ^= s_fold (seed ^ s_k0, s_k1);
    if (len <= 16) {
        if (len >= 4) {
            size_t mid = (len >> 3) << 2;           //  0 below 8 bytes, else 4
            a = s_load32 (p) << 32 | s_load32 (p + mid);
            b = s_load32 (p + len - 4) << 32 | s_load32 (p + len - 4 - mid);
        }
        else
        if (len > 0) {
            a = (uint64_t) p [0] << 16 | (uint64_t) p [len >> 1] << 8 | p [len - 1];
            b = 0;
        }
        else
            a = b = 0;
    }
    else {
        size_t left = len;
        if (left > 48) {
            uint64_t lane1 = seed, lane2 = seed;
            do {
                seed  = s_fold (s_load64 (p)      ^ s_k1, s_load64 (p + 8)  ^ seed);
                lane1 = s_fold (s_load64 (p + 16) ^ s_k2, s_load64 (p + 24) ^ lane1);
                lane2 = s_fold (s_load64 (p + 32) ^ s_k3, s_load64 (p + 40) ^ lane2);
                p += 48;
                left -= 48;
            } while (left > 48);
            seed ^= lane1 ^ lane2;
        }
        while (left > 16) {
            seed = s_fold (s_load64 (p) ^ s_k1, s_load64 (p + 8) ^ seed);
            p += 16;
            left -= 16;
        }
        //  The last 16 bytes of the input, overlapping what went before
        a = s_load64 (p + left - 16);
        b = s_load64 (p + left - 8);
    }
    a ^= s_k1;
    b ^= seed;
    s_mum (&a, &b);
    return s_fold (a ^ s_k0 ^ (uint64_t) len, b ^ s_k1);
}

//  The digest hash of one pair: deterministic everywhere, and the key's
//  hash (which covers its length) seeds the value's hash.

static uint64_t
s_pair_hash (const void *key, size_t key_len, const void *value, size_t value_len)
{
    return s_hash (value, value_len, s_hash (key, key_len, s_digest_seed));
}

//  A seed for the table hash: from the kernel, or failing that from the
//  clock and an address.

static uint64_t
s_random_seed (void *salt)
{
    uint64_t seed;
    if (getrandom (&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t) sizeof seed)
        return seed;
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    seed = (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
    return s_fold (seed ^ s_k2, (uint64_t) (uintptr_t) salt ^ s_k3);
}


//  --------------------------------------------------------------------------
//  The table

//  How far the entry in slot i sits from its home slot.

static inline size_t
s_distance (const wc_store_t *self, size_t i)
{
    return (i - ((size_t) self->slots [i].hash & self->mask)) & self->mask;
}

//  Index of the slot holding key, or SIZE_MAX. Stops at a free slot or at
//  an entry closer to home than the key would be by then (Robin Hood
//  order: the key cannot be further along).

static size_t
s_find (const wc_store_t *self, const void *key, size_t key_len, uint64_t hash)
{
    size_t i = (size_t) hash & self->mask;
    for (size_t dist = 0; ; dist++) {
        const s_slot_t *slot = &self->slots [i];
        if (!slot->entry || s_distance (self, i) < dist)
            return SIZE_MAX;
        if (slot->hash == hash
        &&  slot->entry->key_len == key_len
        &&  memcmp (slot->entry->data, key, key_len) == 0)
            return i;
        i = (i + 1) & self->mask;
    }
}

//  Put an entry whose key is not in the table yet, displacing entries
//  that are closer to home (Robin Hood). There must be a free slot.

static void
s_place (s_slot_t *slots, size_t mask, uint64_t hash, s_entry_t *entry)
{
    size_t i = (size_t) hash & mask;
    size_t dist = 0;
    while (slots [i].entry) {
        size_t theirs = (i - ((size_t) slots [i].hash & mask)) & mask;
        if (theirs < dist) {
            s_slot_t carried = slots [i];
            slots [i].hash = hash;
            slots [i].entry = entry;
            hash = carried.hash;
            entry = carried.entry;
            dist = theirs;
        }
        i = (i + 1) & mask;
        dist++;
    }
    slots [i].hash = hash;
    slots [i].entry = entry;
}

//  Move every entry into a new array of capacity slots (a power of two
//  above the count). On failure the table stays as it was.

static int
s_resize (wc_store_t *self, size_t capacity)
{
    if (capacity > SIZE_MAX / sizeof (s_slot_t))
        return WALCAST_ENOMEM;
    s_slot_t *slots = calloc (capacity, sizeof (s_slot_t));
    if (!slots)
        return WALCAST_ENOMEM;
    size_t old_capacity = self->mask + 1;
    for (size_t i = 0; i < old_capacity; i++)
        if (self->slots [i].entry)
            s_place (slots, capacity - 1, self->slots [i].hash, self->slots [i].entry);
    free (self->slots);
    self->slots = slots;
    self->mask = capacity - 1;
    return 0;
}

//  Empty slot i and pull the rest of its run back by one, so no entry
//  ends up behind a hole it would have to probe past.

static void
s_remove_at (wc_store_t *self, size_t i)
{
    size_t next = (i + 1) & self->mask;
    while (self->slots [next].entry && s_distance (self, next) > 0) {
        self->slots [i] = self->slots [next];
        i = next;
        next = (next + 1) & self->mask;
    }
    self->slots [i].hash = 0;
    self->slots [i].entry = NULL;
}

//  A new entry holding key and value, or NULL.

static s_entry_t *
s_entry_new (const void *key, size_t key_len, const void *value, size_t value_len,
             uint64_t pair_hash)
{
    s_entry_t *entry = malloc (sizeof (s_entry_t) + key_len + value_len);
    if (!entry)
        return NULL;
    entry->pair_hash = pair_hash;
    entry->key_len = key_len;
    entry->value_len = value_len;
    entry->value_cap = value_len;
    memcpy (entry->data, key, key_len);
    if (value_len)
        memcpy (entry->data + key_len, value, value_len);
    return entry;
}


//  --------------------------------------------------------------------------
//  Public API

wc_store_t *
wc_store_new (void)
{
    wc_store_t *self = calloc (1, sizeof (wc_store_t));
    if (!self)
        return NULL;
    self->slots = calloc (S_MIN_CAPACITY, sizeof (s_slot_t));
    if (!self->slots) {
        free (self);
        return NULL;
    }
    self->mask = S_MIN_CAPACITY - 1;
    self->seed = s_random_seed (self);
    return self;
}

void
wc_store_destroy (wc_store_t **self_p)
{
    assert (self_p);
    wc_store_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i <= self->mask; i++)
        free (self->slots [i].entry);
    free (self->slots);
    free (self);
    *self_p = NULL;
}

//  Everything that can fail (size checks, allocation, growing the table)
//  happens before the table or the digest change, so a failed put leaves
//  the store as it was. A replaced value is copied in place when it fits
//  and uses at least half the room; otherwise the entry is rebuilt and the
//  old one freed only after the copy, so value may point into the store
//  (at what an earlier get returned).

int
wc_store_put (wc_store_t *self, const void *key, size_t key_len,
              const void *value, size_t value_len)
{
    assert (self);
    assert (key || key_len == 0);
    assert (value || value_len == 0);
    if (key_len == 0)
        return WALCAST_EINVAL;
    //  No single object may be larger than PTRDIFF_MAX
    size_t room = (size_t) PTRDIFF_MAX - sizeof (s_entry_t);
    if (key_len > room || value_len > room - key_len)
        return WALCAST_ENOMEM;

    uint64_t hash = s_hash (key, key_len, self->seed);
    uint64_t pair_hash = s_pair_hash (key, key_len, value, value_len);
    size_t i = s_find (self, key, key_len, hash);
    if (i != SIZE_MAX) {
        s_entry_t *entry = self->slots [i].entry;
        uint64_t old_hash = entry->pair_hash;
        if (value_len <= entry->value_cap && value_len >= entry->value_cap / 2) {
            if (value_len)
                memmove (entry->data + key_len, value, value_len);
            entry->value_len = value_len;
            entry->pair_hash = pair_hash;
        }
        else {
            s_entry_t *fresh = s_entry_new (key, key_len, value, value_len, pair_hash);
            if (!fresh)
                return WALCAST_ENOMEM;
            self->slots [i].entry = fresh;
            free (entry);
        }
        self->digest += pair_hash - old_hash;
        return 0;
    }

    s_entry_t *entry = s_entry_new (key, key_len, value, value_len, pair_hash);
    if (!entry)
        return WALCAST_ENOMEM;
    size_t capacity = self->mask + 1;
    if ((self->count + 1) * 10 > capacity * 7) {
        int rc = s_resize (self, capacity * 2);
        if (rc) {
            free (entry);
            return rc;
        }
    }
    s_place (self->slots, self->mask, hash, entry);
    self->count++;
    self->digest += pair_hash;
    return 0;
}

//  Removing below 15% load halves the table (best effort: when the
//  smaller array cannot be had, the table just stays large).

int
wc_store_del (wc_store_t *self, const void *key, size_t key_len)
{
    assert (self);
    assert (key || key_len == 0);
    if (key_len == 0)
        return 0;
    size_t i = s_find (self, key, key_len, s_hash (key, key_len, self->seed));
    if (i == SIZE_MAX)
        return 0;
    s_entry_t *entry = self->slots [i].entry;
    self->digest -= entry->pair_hash;
    free (entry);
    s_remove_at (self, i);
    self->count--;

    size_t capacity = self->mask + 1;
    if (capacity > S_MIN_CAPACITY && self->count * 20 < capacity * 3)
        s_resize (self, capacity / 2);
    return 0;
}

int
wc_store_get (const wc_store_t *self, const void *key, size_t key_len,
              const void **value, size_t *value_len)
{
    assert (self);
    assert (key || key_len == 0);
    if (key_len == 0)
        return WALCAST_ENOTFOUND;
    size_t i = s_find (self, key, key_len, s_hash (key, key_len, self->seed));
    if (i == SIZE_MAX)
        return WALCAST_ENOTFOUND;
    const s_entry_t *entry = self->slots [i].entry;
    if (value)
        *value = entry->data + entry->key_len;
    if (value_len)
        *value_len = entry->value_len;
    return 0;
}

size_t
wc_store_count (const wc_store_t *self)
{
    assert (self);
    return self->count;
}

uint64_t
wc_store_digest (const wc_store_t *self)
{
    assert (self);
    return self->digest;
}
