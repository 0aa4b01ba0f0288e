/*  store.h - the node's key-value state.

    Open-addressing hash tables of binary keys to binary values, owned
    by the node's single thread. Keys and values are copied in. The keys
    are spread over WC_STORE_SHARDS tables, each of which grows and
    shrinks incrementally: no single put, del or get moves more than
    WC_STORE_REHASH_MOVES keys, so a resize never stops the loop; and the
    tables resize at different counts, so their resizes do not all come
    at once.

    The store keeps a digest of its whole content up to date on every put
    and delete: the sum (mod 2^64) of a 64-bit hash of each (key, value)
    pair. A sum does not depend on the order entries were applied in, so
    two nodes hold the same data exactly when (barring hash collisions)
    their digests match, and reading it costs nothing.

    A snapshot needs the content at one moment while the loop goes on
    changing it: wc_store_freeze makes a frozen view (a list of the pairs
    and the digest, in time linear in the table's size but without
    touching the pairs), and until wc_store_thaw the pairs it lists never
    change nor go away (copy on write: a put or del that would change one
    leaves it to the view). The view may be read from another thread; the
    store itself stays single-threaded.
*/
#ifndef WC_STORE_H_INCLUDED
#define WC_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wc_store wc_store_t;

/*  New empty store, or NULL when out of memory. */
wc_store_t *wc_store_new (void);

/*  Free the store and everything in it; *self_p becomes NULL. */
void wc_store_destroy (wc_store_t **self_p);

/*  Set key (1+ bytes) to value (0+ bytes). Returns 0 or WALCAST_ENOMEM
    (the store is unchanged then). */
int wc_store_put (wc_store_t *self, const void *key, size_t key_len,
                  const void *value, size_t value_len);

/*  Remove key; 0 whether or not it was there (WALCAST_ENOMEM only while
    frozen, see below). */
int wc_store_del (wc_store_t *self, const void *key, size_t key_len);

/*  Make room for about `more` new keys at once: when they would take a
    shard's table past its load limit, start the resize to the size they
    need now, rather than doubling again and again as they come (each
    doubling moves every entry, re-hashing its key). Nothing happens to a
    shard while it resizes. A hint: 0, or WALCAST_ENOMEM (the content
    unchanged; the shards that could make room did). */
int wc_store_reserve (wc_store_t *self, size_t more);
#define WC_STORE_RESERVE_MAX  (4u * 1024u * 1024u)     /* keys; more is ignored */

/*  Start loading, in the background, what a put or get of key will look
    at first (its slot in the table): a caller that knows its next keys
    overlaps their cache misses. Changes nothing. */
void wc_store_prefetch (const wc_store_t *self, const void *key, size_t key_len);

/*  Look key up. Returns 0 and points *value / *value_len at the stored
    bytes (valid until the next put or del; gets do not move them), or
    WALCAST_ENOTFOUND. Not const: a get helps a resize along. */
int wc_store_get (wc_store_t *self, const void *key, size_t key_len,
                  const void **value, size_t *value_len);

/*  Number of keys. */
size_t wc_store_count (const wc_store_t *self);

/*  Order-independent hash of the whole content; 0 for an empty store. */
uint64_t wc_store_digest (const wc_store_t *self);

/*  A resize never moves more than this many keys in one operation, nor
    looks at more than this many slots of the table being emptied. */
#define WC_STORE_REHASH_MOVES   6
#define WC_STORE_REHASH_VISITS  64

/*  The store is WC_STORE_SHARDS tables, each with its own resize; a key
    lives in one of them, picked by its hash. */
#define WC_STORE_SHARDS         64

/*  How the tables are doing, for tests and operators: sums over the
    shards, but for the two maxima. */
typedef struct {
    size_t capacity;        /* slots of the tables that take new keys */
    size_t old_capacity;    /* slots of the tables being emptied; 0 when no resize runs */
    size_t old_count;       /* keys still in those */
    size_t resizing;        /* shards with a resize running */
    uint64_t resizes;       /* resizes started, growing or shrinking */
    size_t moved_max;       /* most keys any single operation moved between tables */
    size_t visited_max;     /* most old slots any single operation looked at */
} wc_store_stats_t;

void wc_store_stats (const wc_store_t *self, wc_store_stats_t *stats);

/*  A frozen view of the content (see the top). */
typedef struct wc_store_frozen wc_store_frozen_t;

/*  One pair of a frozen view; valid until the thaw. */
typedef struct {
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
} wc_store_pair_t;

/*  Freeze the content as it is now: *frozen_p points at the view, owned
    by the store. Returns 0, WALCAST_EBUSY when a view exists already,
    WALCAST_ENOMEM. While a view exists, put and del may also fail with
    WALCAST_ENOMEM when the dead list cannot grow (the store unchanged).
    The freeze copies the tables' slots (8 bytes a slot); into memory
    that wc_store_prepare_freeze got ready, that copy is all it costs. */
int wc_store_freeze (wc_store_t *self, const wc_store_frozen_t **frozen_p);

/*  Get memory ready for the next freeze's copy, faulting in at most
    budget more bytes of it (rounded up to a page) per call, so the
    freeze's pause is the copy and no page faults. Call it in the turns
    before a freeze is due: it maps an array a quarter larger than the
    slots are now and remaps when the tables have outgrown it. Returns 0
    or WALCAST_ENOMEM (a freeze then maps its own). */
int wc_store_prepare_freeze (wc_store_t *self, size_t budget);

/*  Bytes wc_store_prepare_freeze would map for a freeze now: what the
    caller spreads its budgets over. */
size_t wc_store_freeze_bytes (const wc_store_t *self);

/*  Give the prepared memory back (a freeze that is not coming soon). */
void wc_store_drop_prepared (wc_store_t *self);

/*  Bytes of prepared memory that a freeze now would use (0 when none, or
    when the tables have outgrown it). */
size_t wc_store_prepared_bytes (const wc_store_t *self);

/*  Drop the view (if any) and free what only it held. The view must no
    longer be read, by any thread. wc_store_destroy thaws too. */
void wc_store_thaw (wc_store_t *self);

/*  The view's number of pairs and digest (as wc_store_count and
    wc_store_digest were at the freeze). Its pairs are in its slots, in
    no particular order: wc_store_frozen_pair gives the pair in slot i
    (0 <= i < wc_store_frozen_slots), or false for an empty slot. Safe
    from any thread until the thaw. */
size_t wc_store_frozen_count (const wc_store_frozen_t *frozen);
uint64_t wc_store_frozen_digest (const wc_store_frozen_t *frozen);
size_t wc_store_frozen_slots (const wc_store_frozen_t *frozen);
bool wc_store_frozen_pair (const wc_store_frozen_t *frozen, size_t i,
                           wc_store_pair_t *pair);

/*  Bytes of entries kept only for the view (replaced or deleted since
    the freeze); 0 when none. */
size_t wc_store_dead_bytes (const wc_store_t *self);

/*  For tests only. The store's (seeded) table hash of key and the shard
    (0 to WC_STORE_SHARDS - 1) it puts key in, so a test can pick keys
    that share a home slot (the hash's low bits) in one shard; and moving
    the generation counter forward to gen (no view may exist), so a test
    can reach the wrap of the 32-bit generation that wc_store_freeze
    handles once in 2^32. */
uint64_t wc_store_test_hash (const wc_store_t *self, const void *key, size_t key_len);
size_t wc_store_test_shard (const wc_store_t *self, const void *key, size_t key_len);
void wc_store_test_set_generation (wc_store_t *self, uint32_t gen);

#endif
