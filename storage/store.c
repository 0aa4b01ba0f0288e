/*  store.c - the node's key-value state (see store.h).

    The table is open addressing with Robin Hood linear probing over a
    power-of-two array of slots. An entry sits at some distance from its
    home slot (hash & mask); on insert, an entry that is further from home
    than the one occupying a slot takes that slot and the displaced one
    moves on. That keeps probe sequences short and sorted by distance, so a
    lookup stops as soon as it meets an entry closer to home than it would
    be. Deleting shifts the following entries of the run back by one
    (backward shift), so there are no tombstones and the table never
    degrades.

    Memory is the point of the layout: a store of a million small pairs is
    most of a replica's memory. A slot is one 64-bit word: the pointer to
    the entry's heap block in the low 48 bits (user-space addresses fit;
    an allocation that does not counts as out of memory), the entry's
    distance from home in the next 8 and the top 8 bits of its table hash
    (a tag) in the last 8. Probing needs only the distance, and a key is
    compared only where distance and tag both match, so lookups rarely
    touch an entry that is not theirs. A distance of 255 or more is stored
    as 255 and worked out from the key's hash when it matters (a seeded
    hash makes that practically never). The block is the key and the value
    behind a 4-byte generation and the two lengths as varints: 6 bytes of
    header for a short key and value, where fixed fields would take 40.
    The pair's digest hash is not kept: put and del compute the old pair's
    again from its key and value, which costs one hash of bytes at hand.
    The blocks come from the store's own slab (slab.h): a 12-byte key and
    a 100-byte value take 120 bytes there, where malloc gave them a
    128-byte chunk among the loop's buffers (store alone, 1M such pairs:
    1.30x their raw size with malloc, 1.24x with the slab; walcast-store-
    mem), and a destroy frees them all at once.

    The store is WC_STORE_SHARDS (64) such tables, the shards, each with
    its own resize; a key's shard is picked by bits 48 to 53 of its table
    hash, which neither the home slot (the low bits) nor the tag (the top
    8) use. A shard doubles before it passes its load limit and halves
    below 15%, a little at a time, as Redis's dict.c does: a resize
    allocates the new array and from then on both live. New keys go to
    the new one; every put, del and get first moves at most
    WC_STORE_REHASH_MOVES entries out of the old one of its key's shard,
    looking at no more than WC_STORE_REHASH_VISITS of its slots, and a
    lookup consults both. The old array is emptied from slot 0 upwards:
    at the scan position an entry is moved to the new array (its table
    hash computed again from its key: the slot keeps only a tag) and
    removed from the old one with the same backward shift as a delete,
    which keeps the old array a valid Robin Hood table (lookups in it
    stay correct) and only ever moves entries into slots that were full,
    so the slots behind the scan position stay empty.

    Why shards, and why their limits differ: a resize makes a put about
    twice as dear (the moves, the lookup of a new key in the old array
    too, two arrays competing for the cache), and with one table every
    node of a cluster paid that at the same write, for a third of each
    doubling: on 2 cores, three nodes at +100% at once turned into a
    backlog (replication lag p99 5-56 ms at 300k writes/s). Shard k
    grows past 50% x 1.7^(k/64) of its slots, so the limits are spread
    evenly in log2 over [50%, 85%): in each doubling of the content the
    shards begin their resizes one after another over three quarters of
    it, about a fifth of them are resizing at any moment, and the extra
    cost is spread over every put instead of coming all at once. The
    price is a little memory: the slots vary less with the count but are
    a few more on average than with one 70% limit (about 2% of a store
    of small pairs; the same at 1M keys).

    The budgets end every resize before its shard's next one can be due.
    A resize of an old array of c slots holding m entries ends within m/6
    + c/59 + 1 operations on that shard: every step but the last either
    moves 6 entries or looks at 64 slots of which at most 5 are full,
    passing at least 59 empty ones, and the scan passes each slot once. A
    growth begins with m <= Lc entries (L, the shard's limit, is at least
    1/2, so c/59 <= Lc/29), needs at most 0.21 Lc + 1 steps (at L = 85%,
    0.16c), and the next growth is due when the count reaches 2Lc, Lc
    puts later. A halving begins below 0.15c entries and needs at most
    0.042c + 1 steps; the next growth (of the halved table, limit at least
    c/4) is 0.1c puts away. No halving begins while a resize runs (a later
    del begins it), so growth is the only resize that can fall due during
    another; a reserve's resize begins like a growth, with the next one
    further away. So the one-step fallback in s_resize_begin never runs;
    a counter of the most any operation moved shows it. Why 6: with one
    table, 8 moves a put made each resize, which every node began at the
    same write, add more work than a busy 2-core machine had to spare (lag
    at 150k writes/s: p99 3-6 ms with 8, 1.4-2.3 ms with 3), so it was 3.
    With the resizes spread out, more moves an operation make them
    shorter, and fewer puts pay what a resize costs whatever it moves (a
    new key looked up in the old array too): 6 moves cost the node ~5%
    less CPU than 3. Nor does an idle loop help: moving keys whenever a
    node's poll found nothing made lag worse (p99 6-10 ms at 150k/s),
    every node spinning at once.

    Big slot arrays (32 KiB and more) are not allocated one by one: the
    arrays of one size, all shards', are the 64 slices of one mapping, a
    region, mapped when its first slice is wanted, unmapped when its last
    is freed, and offered to the kernel for huge pages. Every put lands
    on a random slot, and with 4 KiB pages nearly every one was a TLB miss
    too (the slots of a 1M-key store span 4096 pages, and a shard's array
    is too small for a huge page of its own: puts took ~10% longer with
    one calloc a shard). As the scan passes, the old array is given back
    to the kernel 64 KiB at a time (lookups treat the slots behind the
    scan as empty, which they are), the rest when the resize ends, and
    what was given back is kept out of huge pages, or the kernel would
    fill it again to make one. A region the shards are growing into holds
    up to a huge page (2 MiB) more than its slices use: the shards grow
    in the order of their limits, which is the order of their slices.

    Two hashes, one function. The table hash is seeded at random per store
    so crafted keys cannot aim at one bucket. The digest hash of a pair is
    unseeded and byte-order fixed, H(k, v) = hash (v, seed = hash (k, C)),
    with each length folded into its own hash, so ("ab", "c") and ("a",
    "bc") differ and every node on every machine computes the same value.
    The digest is the sum of H over all pairs, mod 2^64: put adds the new
    pair's H and takes away the old one's, del takes it away. The hash
    itself is a small multiply-and-fold function in the style of wyhash,
    written for this file.

    Freezing (for snapshots) is copy-on-write by generation. Each entry
    records the generation it was made in; wc_store_freeze collects the
    entry pointers of every table, remembers the digest, and moves the
    store to a new generation. From then on an entry of an older
    generation is shared with the frozen view: a put to its key makes a
    new entry instead of writing in place, and a put or del that drops it
    moves it to a list of dead entries instead of freeing it. So the
    entries the view points to never change until wc_store_thaw, which
    frees the dead ones, and another thread may read them meanwhile. The
    freeze touches the slot arrays only, never the entries themselves:
    the view is a copy of every shard's slots (a memcpy; readers skip the
    empty ones), and only once in 2^32 freezes, when the generation would
    wrap, does it renumber every entry.

    The freeze is the loop's only pause for a snapshot, so it copies into
    memory that is ready: wc_store_prepare_freeze, called in the turns
    before a snapshot is due, maps an array a quarter larger than the
    slots and faults it in a little at a time. With 1M keys the freeze
    took 8.7 ms on the benchmark VM when it gathered the entry pointers
    (8 MiB) into fresh memory, a third of it page faults and the rest the
    scan that compacted them; the copy of the slots (16 MiB, twice as
    much) into prepared memory takes 3.0 ms (walcast-snapshot-bench). A
    freeze that finds no prepared memory big enough maps its own.
*/
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/random.h>
#include "walcast.h"
#include "slab.h"
#include "store.h"

/*  One key and its value in a single allocation: after gen, the key's
    length and the value's as varints (7 bits a byte, low first, the top
    bit set on every byte but the last), then the key, then the value. */
typedef struct {
    uint32_t gen;               /* the store's generation when it was made */
    unsigned char data [];      /* key_len, value_len, key, value */
} s_entry_t;

/*  An entry's parts, decoded. */
typedef struct {
    unsigned char *key;
    size_t key_len;
    unsigned char *value;       /* right after the key */
    size_t value_len;
} s_parts_t;

/*  A table slot (see the top): 0 when free, else the entry's address,
    its distance from home (at most S_DIST_FAR) and its hash tag. */
typedef uint64_t s_slot_t;

#define S_PTR_BITS      48
#define S_PTR_MASK      ((UINT64_C (1) << S_PTR_BITS) - 1)
#define S_DIST_FAR      255u    /* stored distance: this far or further */
#define S_VARINT_MAX    10      /* bytes of a 64-bit varint */
#define S_HEADER_MAX    (sizeof (s_entry_t) + 2 * S_VARINT_MAX)

/*  One open-addressing array. */
typedef struct {
    s_slot_t *slots;            /* mask + 1 slots, a power of two; NULL: none */
    size_t mask;                /* capacity - 1 */
    size_t live_from;           /* slots below this are empty (and may be
                                   given back): 0, or the rehash position */
    size_t released;            /* bytes at the start given back already */
    bool mapped;                /* the slots are a slice of a region, not
                                   from calloc */
    uint64_t seed;              /* the store's table hash seed */
} s_table_t;

/*  One table with its own incremental resize: a key lives in the shard
    its table hash picks (see s_shard_index), and an operation moves
    entries only within that shard. */
typedef struct {
    s_table_t table;            /* the table new keys go to */
    s_table_t old;              /* while a resize runs, the one being emptied */
    size_t rehash_at;           /* old slots below this are empty */
    size_t old_count;           /* entries still in old */
    size_t count;               /* entries held, in both */
    size_t grow_load;           /* the table grows past this load, in 1/1024 */
} s_shard_t;

/*  The slot arrays of one size, for all the shards: shard k's array is
    slice k (see the top). */
typedef struct {
    s_slot_t *slots;            /* S_SHARDS arrays in a row; NULL: unmapped */
    size_t users;               /* slices in use */
} s_region_t;

#define S_SHARDS        WC_STORE_SHARDS     /* a power of two, at most 256 */
#define S_SIZES         64      /* array sizes: 2^0 to 2^63 slots */
#define S_SHARD_SHIFT   48      /* the shard is picked by the hash bits from here */
#define S_LOAD_LOW      512     /* the lowest growth load, in 1/1024 (50%) */
#define S_LOAD_HIGH     870     /* and the highest, excluded (85%) */

struct wc_store {
    s_shard_t shards [S_SHARDS];    /* the tables */
    s_region_t regions [S_SIZES];   /* their big arrays, by log2 of the size */
    size_t count;               /* entries held, in all shards */
    uint64_t seed;              /* per-store random seed of the table hash */
    uint64_t digest;            /* sum of every pair's digest hash, mod 2^64 */
    uint64_t resizes;           /* resizes begun */
    size_t moved_max;           /* most entries one operation moved */
    size_t visited_max;         /* most old slots one operation looked at */
    uint32_t gen;               /* generation of entries made now */
    wc_store_frozen_t *view;    /* the frozen view, or NULL */
    s_entry_t **dead;           /* entries dropped while frozen, freed at thaw */
    size_t ndead;               /* how many */
    size_t dead_cap;            /* allocated entries in dead */
    size_t dead_bytes;          /* their bytes */
    s_slot_t *spare;            /* mapped for the next freeze's copy, or NULL */
    size_t spare_slots;         /* its size */
    size_t spare_ready;         /* bytes of it faulted in so far */
    wc_slab_t *slab;            /* the entries' memory */
};

/*  The content at the freeze: entries of generation <= gen, which do not
    change until the thaw, pointed at by a copy of the tables' slots. */
struct wc_store_frozen {
    s_slot_t *slots;            /* nslots copied slots, count of them full */
    size_t nslots;
    size_t mapped;              /* slots mapped for them (munmap at thaw) */
    size_t count;
    uint64_t digest;            /* the digest at the freeze */
    uint32_t gen;               /* the newest generation it shares */
};

#define S_MIN_CAPACITY  16
#define S_REGION_MIN    (32u << 10) /* arrays this big are slices of a region
                                       (of 2 MiB or more: huge pages) */
#define S_RELEASE_CHUNK (64u << 10) /* and go back 64 KiB at a time */

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
//  Entries

//  Bytes of v as a varint.

static inline size_t
s_varint_len (size_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

//  Write v as a varint at p; returns the bytes written.

static size_t
s_varint_put (unsigned char *p, size_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p [n++] = (unsigned char) (v | 0x80);
        v >>= 7;
    }
    p [n++] = (unsigned char) v;
    return n;
}

//  Read the varint at *p and move *p past it.

static inline size_t
s_varint_get (const unsigned char **p)
{
    const unsigned char *q = *p;
    size_t v = 0;
    unsigned shift = 0;
    unsigned char byte;
    do {
        byte = *q++;
        v |= (size_t) (byte & 0x7f) << shift;
        shift += 7;
    } while (byte & 0x80);
    *p = q;
    return v;
}

//  Decode entry's lengths and find its key and value.

static inline void
s_entry_parts (const s_entry_t *entry, s_parts_t *parts)
{
    const unsigned char *p = entry->data;
    parts->key_len = s_varint_get (&p);
    parts->value_len = s_varint_get (&p);
    parts->key = (unsigned char *) p;
    parts->value = parts->key + parts->key_len;
}

//  Bytes entry takes (as allocated).

static size_t
s_entry_bytes (const s_entry_t *entry)
{
    s_parts_t parts;
    s_entry_parts (entry, &parts);
    return (size_t) (parts.value + parts.value_len - (const unsigned char *) entry);
}

//  Give an entry's memory back to the store's slab.

static void
s_entry_free (wc_store_t *self, s_entry_t *entry)
{
    wc_slab_free (self->slab, entry, s_entry_bytes (entry));
}

//  A new entry of generation gen holding key and value, from slab; NULL
//  when out of memory (also when its address does not fit in a slot).
//  Sizes are checked by the caller.

static s_entry_t *
s_entry_new (wc_slab_t *slab, uint32_t gen, const void *key, size_t key_len,
             const void *value, size_t value_len)
{
    size_t header = s_varint_len (key_len) + s_varint_len (value_len);
    size_t bytes = sizeof (s_entry_t) + header + key_len + value_len;
    s_entry_t *entry = wc_slab_alloc (slab, bytes);
    if (!entry)
        return NULL;
    if ((uint64_t) (uintptr_t) entry > S_PTR_MASK) {
        wc_slab_free (slab, entry, bytes);
        return NULL;
    }
    entry->gen = gen;
    unsigned char *p = entry->data;
    p += s_varint_put (p, key_len);
    p += s_varint_put (p, value_len);
    memcpy (p, key, key_len);
    if (value_len)
        memcpy (p + key_len, value, value_len);
    return entry;
}

//  The digest hash of entry's pair.

static uint64_t
s_entry_pair_hash (const s_entry_t *entry)
{
    s_parts_t parts;
    s_entry_parts (entry, &parts);
    return s_pair_hash (parts.key, parts.key_len, parts.value, parts.value_len);
}

//  The table hash of entry's key under seed.

static uint64_t
s_entry_hash (const s_entry_t *entry, uint64_t seed)
{
    const unsigned char *p = entry->data;
    size_t key_len = s_varint_get (&p);
    s_varint_get (&p);
    return s_hash (p, key_len, seed);
}


//  --------------------------------------------------------------------------
//  The table

//  A slot's parts.

static inline s_entry_t *
s_slot_entry (s_slot_t slot)
{
    return (s_entry_t *) (uintptr_t) (slot & S_PTR_MASK);
}

static inline size_t
s_slot_dist (s_slot_t slot)
{
    return (size_t) (slot >> S_PTR_BITS) & S_DIST_FAR;
}

static inline uint64_t
s_slot_tag (s_slot_t slot)
{
    return slot >> 56;
}

//  The slot holding entry at dist from home, with tag.

static inline s_slot_t
s_slot_make (const s_entry_t *entry, size_t dist, uint64_t tag)
{
    uint64_t d = dist < S_DIST_FAR ? dist : S_DIST_FAR;
    return (uint64_t) (uintptr_t) entry | d << S_PTR_BITS | tag << 56;
}

//  How far the entry in slot i of t sits from its home slot. Only a
//  distance stored as S_DIST_FAR needs the key's hash.

static inline size_t
s_distance (const s_table_t *t, size_t i)
{
    size_t dist = s_slot_dist (t->slots [i]);
    if (dist < S_DIST_FAR)
        return dist;
    uint64_t hash = s_entry_hash (s_slot_entry (t->slots [i]), t->seed);
    return (i - ((size_t) hash & t->mask)) & t->mask;
}

//  Does the entry in slot (at i of t, dist from where key's probe began)
//  hold key? Only one with the key's home and tag can.

static inline bool
s_slot_holds (const s_table_t *t, size_t i, size_t dist, uint64_t tag,
              const void *key, size_t key_len)
{
    s_slot_t slot = t->slots [i];
    if (s_slot_tag (slot) != tag || s_distance (t, i) != dist)
        return false;
    s_parts_t parts;
    s_entry_parts (s_slot_entry (slot), &parts);
    return parts.key_len == key_len && memcmp (parts.key, key, key_len) == 0;
}

//  Index of the slot of t holding key, or SIZE_MAX. Stops at a free slot
//  or at an entry closer to home than the key would be by then (Robin
//  Hood order: the key cannot be further along).

static size_t
s_find (const s_table_t *t, const void *key, size_t key_len, uint64_t hash)
{
    if (!t->slots)
        return SIZE_MAX;
    size_t i = (size_t) hash & t->mask;
    uint64_t tag = hash >> 56;
    for (size_t dist = 0; ; dist++) {
        if (i < t->live_from)
            return SIZE_MAX;            //  empty, perhaps given back
        if (!t->slots [i] || s_distance (t, i) < dist)
            return SIZE_MAX;
        if (s_slot_holds (t, i, dist, tag, key, key_len))
            return i;
        i = (i + 1) & t->mask;
    }
}

//  Put an entry whose key is not in t yet, displacing entries that are
//  closer to home (Robin Hood). There must be a free slot.

static void
s_place (s_table_t *t, uint64_t hash, s_entry_t *entry)
{
    size_t i = (size_t) hash & t->mask;
    size_t dist = 0;
    uint64_t tag = hash >> 56;
    while (t->slots [i]) {
        size_t theirs = s_distance (t, i);
        if (theirs < dist) {
            s_slot_t carried = t->slots [i];
            t->slots [i] = s_slot_make (entry, dist, tag);
            entry = s_slot_entry (carried);
            tag = s_slot_tag (carried);
            dist = theirs;
        }
        i = (i + 1) & t->mask;
        dist++;
    }
    t->slots [i] = s_slot_make (entry, dist, tag);
}

//  Empty slot i of t and pull the rest of its run back by one, so no
//  entry ends up behind a hole it would have to probe past. Entries only
//  move into slots that were full.

static void
s_remove_at (s_table_t *t, size_t i)
{
    size_t next = (i + 1) & t->mask;
    size_t dist;
    while (next >= t->live_from && t->slots [next] && (dist = s_distance (t, next)) > 0) {
        s_slot_t slot = t->slots [next];
        t->slots [i] = s_slot_make (s_slot_entry (slot), dist - 1, s_slot_tag (slot));
        i = next;
        next = (next + 1) & t->mask;
    }
    t->slots [i] = 0;
}

//  The region of the arrays of capacity slots (a power of two).

static s_region_t *
s_region_of (wc_store_t *self, size_t capacity)
{
    size_t log2 = 0;
    while (((size_t) 1 << log2) < capacity)
        log2++;
    return &self->regions [log2];
}

//  Give the bytes at p back to the kernel (which reads them as zeros
//  from then on), and keep it from putting them back into a huge page
//  while the rest of that page is in use. Returns 0 or -1.

static int
s_give_back (void *p, size_t bytes)
{
#ifdef MADV_NOHUGEPAGE
    (void) madvise (p, bytes, MADV_NOHUGEPAGE);
#endif
    return madvise (p, bytes, MADV_DONTNEED);
}

//  A mapping of n slots (at least one), or NULL.

static s_slot_t *
s_slots_map (size_t n)
{
    if (n > SIZE_MAX / sizeof (s_slot_t))
        return NULL;
    void *map = mmap (NULL, (n ? n : 1) * sizeof (s_slot_t), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return map == MAP_FAILED ? NULL : (s_slot_t *) map;
}

static void
s_slots_unmap (s_slot_t *slots, size_t n)
{
    if (slots)
        munmap (slots, (n ? n : 1) * sizeof (s_slot_t));
}

//  A zeroed table of capacity slots for shard k. A big one is slice k
//  of the region of its size, mapped when its first slice is wanted and
//  offered to the kernel for huge pages (a slice given back and taken
//  again is offered again). A slice is all zero when taken: a table is
//  empty when it is freed (but at destroy) and what was given back reads
//  as zeros. Returns 0 or WALCAST_ENOMEM.

static int
s_table_new (wc_store_t *self, size_t k, s_table_t *t, size_t capacity)
{
    if (capacity > SIZE_MAX / sizeof (s_slot_t) / S_SHARDS)
        return WALCAST_ENOMEM;
    size_t bytes = capacity * sizeof (s_slot_t);
    s_slot_t *slots;
    bool mapped = bytes >= S_REGION_MIN;
    if (mapped) {
        s_region_t *region = s_region_of (self, capacity);
        if (!region->slots) {
            void *map = mmap (NULL, bytes * S_SHARDS, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (map == MAP_FAILED)
                return WALCAST_ENOMEM;
#ifdef MADV_HUGEPAGE
            (void) madvise (map, bytes * S_SHARDS, MADV_HUGEPAGE);
#endif
            region->slots = map;
        }
        slots = region->slots + k * capacity;
#ifdef MADV_HUGEPAGE
        if (region->users > 0)
            (void) madvise (slots, bytes, MADV_HUGEPAGE);
#endif
        region->users++;
    }
    else
    if (!(slots = calloc (capacity, sizeof (s_slot_t))))
        return WALCAST_ENOMEM;
    *t = (s_table_t) { slots, capacity - 1, 0, 0, mapped, self->seed };
    return 0;
}

//  Give back what is left of t's array: a slice's memory (the region's
//  mapping, once no slice of it is in use), or the calloc block.

static void
s_table_free (wc_store_t *self, s_table_t *t)
{
    if (t->mapped) {
        size_t bytes = (t->mask + 1) * sizeof (s_slot_t);
        s_region_t *region = s_region_of (self, t->mask + 1);
        assert (region->users > 0);
        if (--region->users == 0) {
            munmap (region->slots, bytes * S_SHARDS);
            region->slots = NULL;
        }
        else
            (void) s_give_back ((char *) t->slots + t->released, bytes - t->released);
    }
    else
        free (t->slots);
    *t = (s_table_t) { NULL, 0, 0, 0, false, t->seed };
}

//  The rehash is past the first live_from slots of the old table: give
//  back the whole chunks among them.

static void
s_table_release (s_table_t *t)
{
    size_t done = t->live_from * sizeof (s_slot_t) / S_RELEASE_CHUNK * S_RELEASE_CHUNK;
    if (!t->mapped || done <= t->released)
        return;
    if (s_give_back ((char *) t->slots + t->released, done - t->released) == 0)
        t->released = done;
}

//  The ratio between the growth loads of shards k and k + 1: the r with
//  r^S_SHARDS = S_LOAD_HIGH / S_LOAD_LOW, found by bisection (this file
//  does without libm). Shard k grows past S_LOAD_LOW * r^k: the loads
//  are spread evenly in log2, and so are the moments the shards grow.

static double
s_load_step (void)
{
    double goal = (double) S_LOAD_HIGH / S_LOAD_LOW, low = 1, high = goal;
    for (int round = 0; round < 60; round++) {
        double mid = (low + high) / 2, power = 1;
        for (size_t k = 0; k < S_SHARDS; k++)
            power *= mid;
        if (power < goal)
            low = mid;
        else
            high = mid;
    }
    return low;
}

//  An integer's square root, rounded down.

static size_t
s_isqrt (size_t n)
{
    size_t root = n, next = (n + 1) / 2;
    while (next < root) {
        root = next;
        next = (root + n / root) / 2;
    }
    return root;
}

//  The number of the shard that holds a key whose table hash is hash:
//  picked by bits the home slot (the low ones) and the tag (the top 8)
//  do not use.

static inline size_t
s_shard_index (uint64_t hash)
{
    return (size_t) (hash >> S_SHARD_SHIFT) & (S_SHARDS - 1);
}

//  The slot of shard holding key: its index, and in *t the table it is
//  in (the new one first: that is where most keys are). SIZE_MAX when
//  absent.

static size_t
s_lookup (s_shard_t *shard, const void *key, size_t key_len, uint64_t hash,
          s_table_t **t)
{
    *t = &shard->table;
    size_t i = s_find (*t, key, key_len, hash);
    if (i == SIZE_MAX && shard->old.slots) {
        *t = &shard->old;
        i = s_find (*t, key, key_len, hash);
    }
    return i;
}

//  Ask the CPU to start loading the entries of the next `moves` full
//  slots of shard's old table at the scan position (within `visits` slots):
//  moving an entry reads its key to hash it, and a step's cache misses
//  then overlap instead of coming one after the other.

static void
s_prefetch_moves (const s_shard_t *shard, size_t moves, size_t visits)
{
#if defined (__GNUC__)
    const s_table_t *t = &shard->old;
    for (size_t i = shard->rehash_at, seen = 0; i <= t->mask && seen < visits && moves > 0;
         i++, seen++)
        if (t->slots [i]) {
            __builtin_prefetch (s_slot_entry (t->slots [i]));
            moves--;
        }
#else
    (void) shard;
    (void) moves;
    (void) visits;
#endif
}

//  Move up to max_moves entries of shard from its old table to its new
//  one, looking at no more than max_visits old slots; free the old table
//  once it is empty. Called at the start of every put, del and get, on
//  the shard of its key.

static void
s_rehash_step (wc_store_t *self, s_shard_t *shard, size_t max_moves, size_t max_visits)
{
    if (!shard->old.slots)
        return;
    if (max_moves <= WC_STORE_REHASH_MOVES)
        s_prefetch_moves (shard, max_moves, max_visits);
    size_t moved = 0, visited = 0;
    while (shard->old_count > 0 && shard->rehash_at <= shard->old.mask
       &&  moved < max_moves && visited < max_visits) {
        s_entry_t *entry = s_slot_entry (shard->old.slots [shard->rehash_at]);
        visited++;
        if (!entry) {
            shard->rehash_at++;
            continue;
        }
        s_place (&shard->table, s_entry_hash (entry, self->seed), entry);
        s_remove_at (&shard->old, shard->rehash_at);
        shard->old_count--;
        moved++;
    }
    if (moved > self->moved_max)
        self->moved_max = moved;
    if (visited > self->visited_max)
        self->visited_max = visited;
    if (shard->old_count == 0) {
        s_table_free (self, &shard->old);
        shard->rehash_at = 0;
        return;
    }
    shard->old.live_from = shard->rehash_at;
    s_table_release (&shard->old);
}

//  Begin a resize of shard to capacity slots (a power of two that holds
//  its count under its growth load): its current table becomes the old
//  one. A resize still running is finished first, in one go (never
//  happens: see the top). On failure the store stays as it was.

static int
s_resize_begin (wc_store_t *self, s_shard_t *shard, size_t capacity)
{
    s_table_t fresh;
    if (s_table_new (self, (size_t) (shard - self->shards), &fresh, capacity) != 0)
        return WALCAST_ENOMEM;
    s_rehash_step (self, shard, SIZE_MAX, SIZE_MAX);
    shard->old = shard->table;
    shard->old_count = shard->count;
    shard->rehash_at = 0;
    shard->table = fresh;
    self->resizes++;
    if (shard->old_count == 0)
        s_table_free (self, &shard->old);
    return 0;
}


//  --------------------------------------------------------------------------
//  Copy on write while frozen

//  Is entry shared with the frozen view (so it must not change)?

static inline bool
s_shared (const wc_store_t *self, const s_entry_t *entry)
{
    return self->view && entry->gen <= self->view->gen;
}

//  Room for one more dead entry. Returns 0 or WALCAST_ENOMEM.

static int
s_dead_reserve (wc_store_t *self)
{
    if (self->ndead < self->dead_cap)
        return 0;
    size_t cap = self->dead_cap ? self->dead_cap * 2 : 1024;
    s_entry_t **grown = realloc (self->dead, cap * sizeof *grown);
    if (!grown)
        return WALCAST_ENOMEM;
    self->dead = grown;
    self->dead_cap = cap;
    return 0;
}

//  The store no longer holds entry: free it, or keep it for the frozen
//  view until the thaw (room reserved by s_dead_reserve).

static void
s_drop (wc_store_t *self, s_entry_t *entry)
{
    if (s_shared (self, entry)) {
        assert (self->ndead < self->dead_cap);
        self->dead [self->ndead++] = entry;
        self->dead_bytes += s_entry_bytes (entry);
    }
    else
        s_entry_free (self, entry);
}

//  Free the dead entries.

static void
s_dead_free (wc_store_t *self)
{
    for (size_t i = 0; i < self->ndead; i++)
        s_entry_free (self, self->dead [i]);
    free (self->dead);
    self->dead = NULL;
    self->ndead = self->dead_cap = self->dead_bytes = 0;
}

//  Set the generation of every entry of t (from `from` on) to gen.

static void
s_renumber (s_table_t *t, size_t from, uint32_t gen)
{
    for (size_t i = from; t->slots && i <= t->mask; i++)
        if (t->slots [i])
            s_slot_entry (t->slots [i])->gen = gen;
}


//  --------------------------------------------------------------------------
//  Public API

wc_store_t *
wc_store_new (void)
{
    wc_store_t *self = calloc (1, sizeof (wc_store_t));
    if (!self)
        return NULL;
    if (!(self->slab = wc_slab_new ())) {
        free (self);
        return NULL;
    }
    self->seed = s_random_seed (self);
    double load = S_LOAD_LOW, step = s_load_step ();
    for (size_t k = 0; k < S_SHARDS; k++, load *= step) {
        s_shard_t *shard = &self->shards [k];
        if (s_table_new (self, k, &shard->table, S_MIN_CAPACITY) != 0) {
            wc_store_destroy (&self);
            return NULL;
        }
        shard->old.seed = self->seed;
        shard->grow_load = (size_t) load;
    }
    self->gen = 1;
    return self;
}

void
wc_store_destroy (wc_store_t **self_p)
{
    assert (self_p);
    wc_store_t *self = *self_p;
    if (!self)
        return;
    for (size_t k = 0; k < S_SHARDS; k++) {
        s_shard_t *shard = &self->shards [k];
        if (shard->table.slots)
            s_table_free (self, &shard->table);
        if (shard->old.slots)
            s_table_free (self, &shard->old);
    }
    wc_store_thaw (self);
    wc_store_drop_prepared (self);
    wc_slab_destroy (&self->slab);          //  every entry at once
    free (self);
    *self_p = NULL;
}

//  Give key (found at slot i of t) the value, with pair_hash its new
//  digest hash. The value is copied in place when it has the same length
//  and the entry is not shared with a frozen view; otherwise the entry is
//  rebuilt and the old one dropped only after the copy, so value may
//  point into the store (at what an earlier get returned). Returns 0 or
//  WALCAST_ENOMEM (the store unchanged).

static int
s_replace (wc_store_t *self, s_table_t *t, size_t i, const void *key, size_t key_len,
           const void *value, size_t value_len, uint64_t pair_hash)
{
    s_entry_t *entry = s_slot_entry (t->slots [i]);
    s_parts_t parts;
    s_entry_parts (entry, &parts);
    uint64_t old_hash = s_pair_hash (parts.key, parts.key_len, parts.value, parts.value_len);
    bool shared = s_shared (self, entry);
    if (!shared && value_len == parts.value_len) {
        if (value_len)
            memmove (parts.value, value, value_len);
    }
    else {
        if (shared && s_dead_reserve (self) != 0)
            return WALCAST_ENOMEM;
        s_entry_t *fresh = s_entry_new (self->slab, self->gen, key, key_len, value, value_len);
        if (!fresh)
            return WALCAST_ENOMEM;
        t->slots [i] = s_slot_make (fresh, s_slot_dist (t->slots [i]),
                                    s_slot_tag (t->slots [i]));
        s_drop (self, entry);
    }
    self->digest += pair_hash - old_hash;
    return 0;
}

//  Everything that can fail (size checks, allocation, beginning a resize)
//  happens before the content or the digest change, so a failed put
//  leaves the store as it was (a rehash step may have moved entries
//  between tables, which changes nothing that can be seen).

//  Each shard not resizing makes room for its share of the keys to
//  come: they fall into the shards at random, so a share is the mean and
//  four standard deviations more (a shard's 62,500 keys of 4M get 1,000
//  more).

int
wc_store_reserve (wc_store_t *self, size_t more)
{
    if (more == 0 || more > WC_STORE_RESERVE_MAX)
        return 0;
    size_t share = more / S_SHARDS + 4 * s_isqrt (more / S_SHARDS) + 1;
    int rc = 0;
    for (size_t k = 0; k < S_SHARDS; k++) {
        s_shard_t *shard = &self->shards [k];
        if (shard->old.slots)
            continue;
        size_t want = shard->count + share;
        size_t capacity = shard->table.mask + 1, grown = capacity;
        while (want * 1024 > grown * shard->grow_load)
            grown *= 2;
        if (grown != capacity && s_resize_begin (self, shard, grown) != 0)
            rc = WALCAST_ENOMEM;
    }
    return rc;
}

void
wc_store_prefetch (const wc_store_t *self, const void *key, size_t key_len)
{
#if defined (__GNUC__)
    uint64_t hash = s_hash (key, key_len, self->seed);
    const s_shard_t *shard = &self->shards [s_shard_index (hash)];
    if (shard->table.slots)
        __builtin_prefetch (&shard->table.slots [(size_t) hash & shard->table.mask]);
    if (shard->old.slots)
        __builtin_prefetch (&shard->old.slots [(size_t) hash & shard->old.mask]);
#else
    (void) self; (void) key; (void) key_len;
#endif
}

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
    size_t room = (size_t) PTRDIFF_MAX - S_HEADER_MAX;
    if (key_len > room || value_len > room - key_len)
        return WALCAST_ENOMEM;

    uint64_t hash = s_hash (key, key_len, self->seed);
    s_shard_t *shard = &self->shards [s_shard_index (hash)];
    s_rehash_step (self, shard, WC_STORE_REHASH_MOVES, WC_STORE_REHASH_VISITS);
    uint64_t pair_hash = s_pair_hash (key, key_len, value, value_len);
    s_table_t *t;
    size_t i = s_lookup (shard, key, key_len, hash, &t);
    if (i != SIZE_MAX)
        return s_replace (self, t, i, key, key_len, value, value_len, pair_hash);

    s_entry_t *entry = s_entry_new (self->slab, self->gen, key, key_len, value, value_len);
    if (!entry)
        return WALCAST_ENOMEM;
    size_t capacity = shard->table.mask + 1;
    if ((shard->count + 1) * 1024 > capacity * shard->grow_load) {
        int rc = s_resize_begin (self, shard, capacity * 2);
        if (rc) {
            s_entry_free (self, entry);
            return rc;
        }
    }
    s_place (&shard->table, hash, entry);
    shard->count++;
    self->count++;
    self->digest += pair_hash;
    return 0;
}

//  Removing below 15% load begins halving the shard's table, unless it
//  is resizing already (then a later del will), and as a best effort:
//  when the smaller array cannot be had, the table just stays large. A
//  key shared with a frozen view needs room in the dead list first.

int
wc_store_del (wc_store_t *self, const void *key, size_t key_len)
{
    assert (self);
    assert (key || key_len == 0);
    if (key_len == 0)
        return 0;
    uint64_t hash = s_hash (key, key_len, self->seed);
    s_shard_t *shard = &self->shards [s_shard_index (hash)];
    s_rehash_step (self, shard, WC_STORE_REHASH_MOVES, WC_STORE_REHASH_VISITS);
    s_table_t *t;
    size_t i = s_lookup (shard, key, key_len, hash, &t);
    if (i == SIZE_MAX)
        return 0;
    s_entry_t *entry = s_slot_entry (t->slots [i]);
    if (s_shared (self, entry) && s_dead_reserve (self) != 0)
        return WALCAST_ENOMEM;
    self->digest -= s_entry_pair_hash (entry);
    s_drop (self, entry);
    s_remove_at (t, i);
    shard->count--;
    self->count--;
    if (t == &shard->old)
        shard->old_count--;

    size_t capacity = shard->table.mask + 1;
    if (!shard->old.slots && capacity > S_MIN_CAPACITY && shard->count * 20 < capacity * 3)
        s_resize_begin (self, shard, capacity / 2);
    return 0;
}

int
wc_store_get (wc_store_t *self, const void *key, size_t key_len,
              const void **value, size_t *value_len)
{
    assert (self);
    assert (key || key_len == 0);
    if (key_len == 0)
        return WALCAST_ENOTFOUND;
    uint64_t hash = s_hash (key, key_len, self->seed);
    s_shard_t *shard = &self->shards [s_shard_index (hash)];
    s_rehash_step (self, shard, WC_STORE_REHASH_MOVES, WC_STORE_REHASH_VISITS);
    s_table_t *t;
    size_t i = s_lookup (shard, key, key_len, hash, &t);
    if (i == SIZE_MAX)
        return WALCAST_ENOTFOUND;
    s_parts_t parts;
    s_entry_parts (s_slot_entry (t->slots [i]), &parts);
    if (value)
        *value = parts.value;
    if (value_len)
        *value_len = parts.value_len;
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

void
wc_store_stats (const wc_store_t *self, wc_store_stats_t *stats)
{
    assert (self);
    *stats = (wc_store_stats_t) { 0 };
    for (size_t k = 0; k < S_SHARDS; k++) {
        const s_shard_t *shard = &self->shards [k];
        stats->capacity += shard->table.mask + 1;
        stats->old_capacity += shard->old.slots ? shard->old.mask + 1 : 0;
        stats->old_count += shard->old_count;
        stats->resizing += shard->old.slots != NULL;
    }
    stats->resizes = self->resizes;
    stats->moved_max = self->moved_max;
    stats->visited_max = self->visited_max;
}


//  --------------------------------------------------------------------------
//  Frozen views

//  Slots a freeze copies now: every shard's table, and the part of an
//  old one from its rehash position on (the slots behind it are empty,
//  perhaps given back).

static size_t
s_freeze_slots (const wc_store_t *self)
{
    size_t n = 0;
    for (size_t k = 0; k < S_SHARDS; k++) {
        const s_shard_t *shard = &self->shards [k];
        n += shard->table.slots ? shard->table.mask + 1 : 0;
        n += shard->old.slots ? shard->old.mask + 1 - shard->old.live_from : 0;
    }
    return n;
}

//  Slots to map for the next freeze: a quarter more than it would copy
//  now, for the tables to grow meanwhile.

static size_t
s_spare_slots (size_t want)
{
    return want + want / 4 + 1024;
}

size_t
wc_store_freeze_bytes (const wc_store_t *self)
{
    assert (self);
    return s_spare_slots (s_freeze_slots (self)) * sizeof (s_slot_t);
}

int
wc_store_prepare_freeze (wc_store_t *self, size_t budget)
{
    assert (self);
    size_t want = s_freeze_slots (self);
    if (self->spare && self->spare_slots < want) {
        s_slots_unmap (self->spare, self->spare_slots);
        self->spare = NULL;
    }
    if (!self->spare) {
        size_t n = s_spare_slots (want);
        if (!(self->spare = s_slots_map (n)))
            return WALCAST_ENOMEM;
        self->spare_slots = n;
        self->spare_ready = 0;
    }
    size_t bytes = self->spare_slots * sizeof (s_slot_t);
    size_t end = bytes - self->spare_ready > budget ? self->spare_ready + budget : bytes;
    unsigned char *p = (unsigned char *) self->spare;
    for (size_t at = self->spare_ready; at < end; at += 4096)
        p [at] = 0;                     //  a write faults the page in
    self->spare_ready = end;
    return 0;
}

void
wc_store_drop_prepared (wc_store_t *self)
{
    assert (self);
    s_slots_unmap (self->spare, self->spare_slots);
    self->spare = NULL;
    self->spare_slots = self->spare_ready = 0;
}

size_t
wc_store_prepared_bytes (const wc_store_t *self)
{
    assert (self);
    return self->spare && self->spare_slots >= s_freeze_slots (self) ? self->spare_ready : 0;
}

//  Copy the slots of t from `from` on to slots + n; returns the new n.

static size_t
s_copy_slots (const s_table_t *t, size_t from, s_slot_t *slots, size_t n)
{
    if (!t->slots)
        return n;
    size_t len = t->mask + 1 - from;
    memcpy (slots + n, t->slots + from, len * sizeof (s_slot_t));
    return n + len;
}

//  Copy the slots of both tables of every shard (into the prepared
//  mapping when it is big enough) and start a new generation, so that
//  the entries they point to are shared from now on. When the generation
//  would wrap, every entry starts again at generation 1 (no view exists,
//  so none is shared).

int
wc_store_freeze (wc_store_t *self, const wc_store_frozen_t **frozen_p)
{
    assert (self);
    if (self->view)
        return WALCAST_EBUSY;
    size_t nslots = s_freeze_slots (self);
    wc_store_frozen_t *view = calloc (1, sizeof *view);
    bool spare = self->spare && self->spare_slots >= nslots;
    size_t mapped = spare ? self->spare_slots : nslots;
    s_slot_t *slots = spare ? self->spare : s_slots_map (mapped);
    if (!view || !slots) {
        free (view);
        if (!spare)
            s_slots_unmap (slots, mapped);
        return WALCAST_ENOMEM;
    }
    if (spare)
        self->spare = NULL;             //  the view's now
    size_t n = 0;
    for (size_t k = 0; k < S_SHARDS; k++) {
        s_shard_t *shard = &self->shards [k];
        if (self->gen == UINT32_MAX) {
            s_renumber (&shard->table, 0, 1);
            s_renumber (&shard->old, shard->old.live_from, 1);
        }
        n = s_copy_slots (&shard->table, 0, slots, n);
        n = s_copy_slots (&shard->old, shard->old.live_from, slots, n);
    }
    if (self->gen == UINT32_MAX)
        self->gen = 1;
    assert (n == nslots);
    *view = (wc_store_frozen_t) { slots, n, mapped, self->count, self->digest, self->gen };
    self->gen++;
    self->view = view;
    *frozen_p = view;
    return 0;
}

void
wc_store_thaw (wc_store_t *self)
{
    assert (self);
    if (!self->view)
        return;
    s_dead_free (self);
    s_slots_unmap (self->view->slots, self->view->mapped);
    free (self->view);
    self->view = NULL;
}

size_t
wc_store_frozen_count (const wc_store_frozen_t *frozen)
{
    return frozen->count;
}

uint64_t
wc_store_frozen_digest (const wc_store_frozen_t *frozen)
{
    return frozen->digest;
}

size_t
wc_store_frozen_slots (const wc_store_frozen_t *frozen)
{
    return frozen->nslots;
}

bool
wc_store_frozen_pair (const wc_store_frozen_t *frozen, size_t i, wc_store_pair_t *pair)
{
    assert (i < frozen->nslots);
    s_entry_t *entry = s_slot_entry (frozen->slots [i]);
    if (!entry)
        return false;
    s_parts_t parts;
    s_entry_parts (entry, &parts);
    pair->key = parts.key;
    pair->key_len = parts.key_len;
    pair->value = parts.value;
    pair->value_len = parts.value_len;
    return true;
}

size_t
wc_store_dead_bytes (const wc_store_t *self)
{
    return self->dead_bytes;
}


//  --------------------------------------------------------------------------
//  For tests

uint64_t
wc_store_test_hash (const wc_store_t *self, const void *key, size_t key_len)
{
    assert (self);
    return s_hash (key, key_len, self->seed);
}

size_t
wc_store_test_shard (const wc_store_t *self, const void *key, size_t key_len)
{
    assert (self);
    return s_shard_index (s_hash (key, key_len, self->seed));
}

void
wc_store_test_set_generation (wc_store_t *self, uint32_t gen)
{
    assert (self && !self->view && gen >= self->gen);
    self->gen = gen;
}
