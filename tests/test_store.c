/*  test_store.c - the node's key-value state (storage/store.c).

    What the node relies on: a key reads back exactly what was last put,
    binary-safe and at any size of table; deleting removes only that key;
    and two stores with the same content have the same digest however the
    content was reached, while any difference changes it. The digest is
    compared between nodes, so one test pins its value for a fixed content:
    if that test fails, the hash changed and nodes of different builds
    would no longer agree. A snapshot relies on a frozen view: it keeps
    the content of the moment it was made, whatever the store does next.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "walcast.h"
#include "store.h"
#include "wc_limits.h"

//  A small deterministic PRNG (xorshift64*), so failures reproduce.

static uint64_t
s_rand (uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1dull;
}

static void
s_shuffle (size_t *items, size_t count, uint64_t *state)
{
    for (size_t i = count; i > 1; i--) {
        size_t j = (size_t) (s_rand (state) % i);
        size_t t = items [i - 1];
        items [i - 1] = items [j];
        items [j] = t;
    }
}

//  Key and value text for number n.

static size_t
s_key (char *buf, size_t size, size_t n)
{
    return (size_t) snprintf (buf, size, "key:%zu", n);
}

static size_t
s_value (char *buf, size_t size, size_t n)
{
    return (size_t) snprintf (buf, size, "value-%zu-%zx", n, n * 2654435761u);
}

//  Put key:n -> value-n for every n in [from, to).
static void
s_put_range (wc_store_t *store, size_t from, size_t to)
{
    char key [32], value [64];
    for (size_t n = from; n < to; n++)
        assert_int_equal (wc_store_put (store, key, s_key (key, sizeof key, n),
                                        value, s_value (value, sizeof value, n)), 0);
}

//  Assert that key reads back as exactly value.

static void
s_assert_value (wc_store_t *store, const void *key, size_t key_len,
                const void *value, size_t value_len)
{
    const void *got = NULL;
    size_t got_len = 12345;
    assert_int_equal (wc_store_get (store, key, key_len, &got, &got_len), 0);
    assert_int_equal (got_len, value_len);
    assert_non_null (got);
    if (value_len)
        assert_memory_equal (got, value, value_len);
}

static void
s_assert_missing (wc_store_t *store, const void *key, size_t key_len)
{
    const void *got;
    size_t got_len;
    assert_int_equal (wc_store_get (store, key, key_len, &got, &got_len),
                      WALCAST_ENOTFOUND);
}

static void
s_put_str (wc_store_t *store, const char *key, const char *value)
{
    assert_int_equal (wc_store_put (store, key, strlen (key), value, strlen (value)), 0);
}


static void
test_new_and_destroy (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    assert_int_equal (wc_store_count (store), 0);
    assert_true (wc_store_digest (store) == 0);
    s_put_str (store, "a", "1");
    wc_store_destroy (&store);
    assert_null (store);
    wc_store_destroy (&store);          //  safe twice
    assert_null (store);
}

static void
test_put_get_overwrite_del (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);

    s_assert_missing (store, "user:1", 6);
    s_put_str (store, "user:1", "Alice");
    s_put_str (store, "user:2", "Bob");
    assert_int_equal (wc_store_count (store), 2);
    s_assert_value (store, "user:1", 6, "Alice", 5);
    s_assert_value (store, "user:2", 6, "Bob", 3);

    //  Overwrite: same size, smaller, much larger, much smaller
    s_put_str (store, "user:1", "Alicf");
    s_assert_value (store, "user:1", 6, "Alicf", 5);
    s_put_str (store, "user:1", "Al");
    s_assert_value (store, "user:1", 6, "Al", 2);
    char big [5000];
    memset (big, 'x', sizeof big);
    assert_int_equal (wc_store_put (store, "user:1", 6, big, sizeof big), 0);
    s_assert_value (store, "user:1", 6, big, sizeof big);
    s_put_str (store, "user:1", "A");
    s_assert_value (store, "user:1", 6, "A", 1);
    assert_int_equal (wc_store_count (store), 2);
    s_assert_value (store, "user:2", 6, "Bob", 3);

    //  Prefixes and extensions of a key are other keys
    s_assert_missing (store, "user:", 5);
    s_assert_missing (store, "user:12", 7);
    s_assert_missing (store, "user:3", 6);

    //  Delete; deleting again or deleting a missing key is fine
    assert_int_equal (wc_store_del (store, "user:1", 6), 0);
    s_assert_missing (store, "user:1", 6);
    s_assert_value (store, "user:2", 6, "Bob", 3);
    assert_int_equal (wc_store_count (store), 1);
    assert_int_equal (wc_store_del (store, "user:1", 6), 0);
    assert_int_equal (wc_store_del (store, "nobody", 6), 0);
    assert_int_equal (wc_store_count (store), 1);

    //  A deleted key can come back
    s_put_str (store, "user:1", "Carol");
    s_assert_value (store, "user:1", 6, "Carol", 5);
    assert_int_equal (wc_store_count (store), 2);
    wc_store_destroy (&store);
}

//  A value from get may be put back (whole or in part) under its own key
//  or another one: the store must copy it before freeing anything.

static void
test_put_from_own_value (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    s_put_str (store, "k", "0123456789abcdef");

    const void *v;
    size_t n;
    assert_int_equal (wc_store_get (store, "k", 1, &v, &n), 0);
    assert_int_equal (wc_store_put (store, "k", 1, (const char *) v + 4, 10), 0);
    s_assert_value (store, "k", 1, "456789abcd", 10);

    assert_int_equal (wc_store_get (store, "k", 1, &v, &n), 0);
    assert_int_equal (wc_store_put (store, "k", 1, v, 2), 0);      //  rebuilt
    s_assert_value (store, "k", 1, "45", 2);

    assert_int_equal (wc_store_get (store, "k", 1, &v, &n), 0);
    assert_int_equal (wc_store_put (store, "copy", 4, v, n), 0);
    s_assert_value (store, "copy", 4, "45", 2);
    wc_store_destroy (&store);
}

static void
test_binary_keys_and_values (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    //  Keys that differ only after or at a NUL byte, or by trailing NULs
    const char k1 [] = { 'a', 0, 'b' };
    const char k2 [] = { 'a', 0, 'c' };
    const char k3 [] = { 'a' };
    const char k4 [] = { 'a', 0 };
    const char k5 [] = { 0 };
    const char k6 [] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    const char v1 [] = { 0, 1, 2, 0, (char) 0xff };
    const char v2 [] = { 0 };
    assert_int_equal (wc_store_put (store, k1, sizeof k1, v1, sizeof v1), 0);
    assert_int_equal (wc_store_put (store, k2, sizeof k2, v2, sizeof v2), 0);
    assert_int_equal (wc_store_put (store, k3, sizeof k3, "3", 1), 0);
    assert_int_equal (wc_store_put (store, k4, sizeof k4, "4", 1), 0);
    assert_int_equal (wc_store_put (store, k5, sizeof k5, "5", 1), 0);
    assert_int_equal (wc_store_put (store, k6, sizeof k6, "6", 1), 0);
    assert_int_equal (wc_store_count (store), 6);
    s_assert_value (store, k1, sizeof k1, v1, sizeof v1);
    s_assert_value (store, k2, sizeof k2, v2, sizeof v2);
    s_assert_value (store, k3, sizeof k3, "3", 1);
    s_assert_value (store, k4, sizeof k4, "4", 1);
    s_assert_value (store, k5, sizeof k5, "5", 1);
    s_assert_value (store, k6, sizeof k6, "6", 1);
    s_assert_missing (store, k6, sizeof k6 - 1);
    assert_int_equal (wc_store_del (store, k4, sizeof k4), 0);
    s_assert_missing (store, k4, sizeof k4);
    s_assert_value (store, k3, sizeof k3, "3", 1);
    s_assert_value (store, k1, sizeof k1, v1, sizeof v1);
    wc_store_destroy (&store);
}

static void
test_empty_values (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    assert_int_equal (wc_store_put (store, "e1", 2, NULL, 0), 0);
    assert_int_equal (wc_store_put (store, "e2", 2, "ignored", 0), 0);
    assert_int_equal (wc_store_count (store), 2);
    s_assert_value (store, "e1", 2, "", 0);
    s_assert_value (store, "e2", 2, "", 0);
    //  An empty value is not the same content as no key
    uint64_t with_empty = wc_store_digest (store);
    assert_true (with_empty != 0);
    //  Empty -> something -> empty
    s_put_str (store, "e1", "now set");
    s_assert_value (store, "e1", 2, "now set", 7);
    assert_int_equal (wc_store_put (store, "e1", 2, NULL, 0), 0);
    s_assert_value (store, "e1", 2, "", 0);
    assert_true (wc_store_digest (store) == with_empty);
    assert_int_equal (wc_store_del (store, "e1", 2), 0);
    assert_int_equal (wc_store_del (store, "e2", 2), 0);
    assert_true (wc_store_digest (store) == 0);
    wc_store_destroy (&store);
}

//  A key must have at least one byte; bad sizes fail cleanly.

static void
test_bad_arguments (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    s_put_str (store, "k", "v");
    uint64_t digest = wc_store_digest (store);
    assert_int_equal (wc_store_put (store, "", 0, "v", 1), WALCAST_EINVAL);
    s_assert_missing (store, "", 0);
    assert_int_equal (wc_store_del (store, "", 0), 0);
    assert_int_equal (wc_store_count (store), 1);
    assert_true (wc_store_digest (store) == digest);
    wc_store_destroy (&store);
}

//  A put that cannot get its memory leaves the store unchanged. A size no
//  allocation can satisfy takes that path without touching the buffer.

static void
test_enomem_leaves_store_unchanged (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    s_put_str (store, "k", "v");
    uint64_t digest = wc_store_digest (store);
    char tiny [1] = { 0 };
    assert_int_equal (wc_store_put (store, "k", 1, tiny, SIZE_MAX), WALCAST_ENOMEM);
    assert_int_equal (wc_store_put (store, "k", 1, tiny, (size_t) PTRDIFF_MAX),
                      WALCAST_ENOMEM);
    assert_int_equal (wc_store_put (store, "new", 3, tiny, SIZE_MAX - 2), WALCAST_ENOMEM);
    assert_int_equal (wc_store_put (store, tiny, SIZE_MAX, "v", 1), WALCAST_ENOMEM);
    assert_int_equal (wc_store_count (store), 1);
    assert_true (wc_store_digest (store) == digest);
    s_assert_value (store, "k", 1, "v", 1);
    s_assert_missing (store, "new", 3);
    wc_store_destroy (&store);
}

//  200k keys: many doublings, every key readable after each phase; then
//  half deleted (the table shrinks along the way) and put back.

#define GROWTH_KEYS 200000

static void
test_growth_and_mass_delete (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    char key [32], value [64];
    for (size_t n = 0; n < GROWTH_KEYS; n++) {
        size_t kl = s_key (key, sizeof key, n);
        size_t vl = s_value (value, sizeof value, n);
        assert_int_equal (wc_store_put (store, key, kl, value, vl), 0);
    }
    assert_int_equal (wc_store_count (store), GROWTH_KEYS);
    for (size_t n = 0; n < GROWTH_KEYS; n++) {
        size_t kl = s_key (key, sizeof key, n);
        size_t vl = s_value (value, sizeof value, n);
        s_assert_value (store, key, kl, value, vl);
    }
    s_assert_missing (store, "key:200000", 10);

    //  Delete the odd keys
    for (size_t n = 1; n < GROWTH_KEYS; n += 2) {
        size_t kl = s_key (key, sizeof key, n);
        assert_int_equal (wc_store_del (store, key, kl), 0);
    }
    assert_int_equal (wc_store_count (store), GROWTH_KEYS / 2);
    for (size_t n = 0; n < GROWTH_KEYS; n++) {
        size_t kl = s_key (key, sizeof key, n);
        if (n % 2)
            s_assert_missing (store, key, kl);
        else {
            size_t vl = s_value (value, sizeof value, n);
            s_assert_value (store, key, kl, value, vl);
        }
    }
    //  Delete all but 100 (several shrinks), check, then refill
    for (size_t n = 200; n < GROWTH_KEYS; n += 2) {
        size_t kl = s_key (key, sizeof key, n);
        assert_int_equal (wc_store_del (store, key, kl), 0);
    }
    assert_int_equal (wc_store_count (store), 100);
    for (size_t n = 0; n < 200; n += 2) {
        size_t kl = s_key (key, sizeof key, n);
        size_t vl = s_value (value, sizeof value, n);
        s_assert_value (store, key, kl, value, vl);
    }
    for (size_t n = 0; n < GROWTH_KEYS; n++) {
        size_t kl = s_key (key, sizeof key, n);
        size_t vl = s_value (value, sizeof value, n);
        assert_int_equal (wc_store_put (store, key, kl, value, vl), 0);
    }
    assert_int_equal (wc_store_count (store), GROWTH_KEYS);
    for (size_t n = 0; n < GROWTH_KEYS; n++) {
        size_t kl = s_key (key, sizeof key, n);
        size_t vl = s_value (value, sizeof value, n);
        s_assert_value (store, key, kl, value, vl);
    }
    wc_store_destroy (&store);
}

//  Random puts, overwrites, deletes and gets over a small key space,
//  checked against a plain array after every operation. Deletes in a full
//  probe run are where backward shift can go wrong.

#define MODEL_KEYS 3000
#define MODEL_OPS  300000

//  Value number v for the model: lengths vary from 0 up, to exercise
//  in-place and rebuilt overwrites.

static size_t
s_model_value (char *buf, size_t size, size_t v)
{
    size_t len = (size_t) snprintf (buf, size, "%zx-%0*zu", v, (int) (v % 40), v);
    return v % 11 == 0? 0: len;
}

static void
test_random_ops_match_model (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    //  model [n] is 0 when key n is absent, else 1 + its value's number
    size_t *model = calloc (MODEL_KEYS, sizeof (size_t));
    assert_non_null (model);
    size_t present = 0;
    uint64_t rng = 0x1234567887654321ull;
    char key [32], value [64];
    for (size_t op = 0; op < MODEL_OPS; op++) {
        uint64_t r = s_rand (&rng);
        size_t n = (size_t) (r % MODEL_KEYS);
        size_t kl = s_key (key, sizeof key, n);
        switch ((r >> 32) % 4) {
            case 0:
            case 1: {
                size_t v = (size_t) (r >> 40);
                size_t vl = s_model_value (value, sizeof value, v);
                assert_int_equal (wc_store_put (store, key, kl, value, vl), 0);
                if (!model [n])
                    present++;
                model [n] = 1 + v;
                break;
            }
            case 2:
                assert_int_equal (wc_store_del (store, key, kl), 0);
                if (model [n])
                    present--;
                model [n] = 0;
                break;
            default:
                if (model [n]) {
                    size_t v = model [n] - 1;
                    size_t vl = s_model_value (value, sizeof value, v);
                    s_assert_value (store, key, kl, value, vl);
                }
                else
                    s_assert_missing (store, key, kl);
        }
        assert_int_equal (wc_store_count (store), present);
    }
    //  Same content built afresh has the same digest
    wc_store_t *fresh = wc_store_new ();
    assert_non_null (fresh);
    for (size_t n = 0; n < MODEL_KEYS; n++) {
        size_t kl = s_key (key, sizeof key, n);
        if (model [n]) {
            size_t v = model [n] - 1;
            size_t vl = s_model_value (value, sizeof value, v);
            s_assert_value (store, key, kl, value, vl);
            assert_int_equal (wc_store_put (fresh, key, kl, value, vl), 0);
        }
        else
            s_assert_missing (store, key, kl);
    }
    assert_true (wc_store_digest (fresh) == wc_store_digest (store));
    wc_store_destroy (&fresh);
    wc_store_destroy (&store);
    free (model);
}

//  --------------------------------------------------------------------------
//  Incremental rehashing: a resize moves a bounded number of keys per
//  operation while both tables live, and nothing is lost on the way.

//  No operation so far moved more keys, or looked at more old slots,
//  than the bound (the counters keep the most since the store began).
//  Counters, never a clock.

static void
s_assert_bounded (wc_store_t *store)
{
    wc_store_stats_t stats;
    wc_store_stats (store, &stats);
    assert_true (stats.moved_max <= WC_STORE_REHASH_MOVES);
    assert_true (stats.visited_max <= WC_STORE_REHASH_VISITS);
}

#define REHASH_KEYS 200000

static void
test_rehash_bounded (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    char key [32], value [64];
    wc_store_stats_t stats;
    //  Puts while a resize ran, and the puts each resize ran through
    size_t during = 0, resize_puts = 0;
    for (size_t n = 0; n < REHASH_KEYS; n++) {
        size_t kl = s_key (key, sizeof key, n);
        size_t vl = s_value (value, sizeof value, n);
        assert_int_equal (wc_store_put (store, key, kl, value, vl), 0);
        wc_store_stats (store, &stats);
        during += stats.resizing > 0;
        resize_puts += stats.resizing;
        //  Keys that are not there, while part of an old array is gone.
        if (stats.old_capacity && n % 16 == 0) {
            char absent [32];
            size_t al = (size_t) snprintf (absent, sizeof absent, "absent:%zu", n);
            s_assert_missing (store, absent, al);
        }
    }
    //  Every shard from 16 slots to 4096 or more: 8 doublings or more
    //  each, every one spread over many puts; every shard holds its keys
    //  under its load limit, at most 85%.
    s_assert_bounded (store);
    wc_store_stats (store, &stats);
    assert_true (stats.resizes >= 8 * WC_STORE_SHARDS);
    assert_true (stats.capacity * 85 / 100 >= REHASH_KEYS);
    assert_true (during > 1000);
    assert_true (resize_puts / stats.resizes > 1000);
    //  Reading every key once finishes what is left of them
    for (size_t n = 0; n < REHASH_KEYS; n++) {
        size_t kl = s_key (key, sizeof key, n);
        size_t vl = s_value (value, sizeof value, n);
        s_assert_value (store, key, kl, value, vl);
    }
    wc_store_stats (store, &stats);
    assert_int_equal (stats.resizing, 0);
    assert_int_equal (stats.old_capacity, 0);
    assert_int_equal (stats.old_count, 0);
    //  Shrinking, the same way: every shard back to 64 slots or fewer.
    uint64_t grown = stats.resizes;
    for (size_t n = 10; n < REHASH_KEYS; n++) {
        size_t kl = s_key (key, sizeof key, n);
        assert_int_equal (wc_store_del (store, key, kl), 0);
    }
    s_assert_bounded (store);
    wc_store_stats (store, &stats);
    assert_true (stats.resizes >= grown + 6 * WC_STORE_SHARDS);
    assert_true (stats.capacity <= 64 * WC_STORE_SHARDS);
    assert_int_equal (wc_store_count (store), 10);
    for (size_t n = 0; n < 10; n++) {
        size_t kl = s_key (key, sizeof key, n);
        size_t vl = s_value (value, sizeof value, n);
        s_assert_value (store, key, kl, value, vl);
    }
    wc_store_destroy (&store);
}

//  Reads alone finish a resize: a replica that only serves GETs after a
//  burst of writes does not keep two tables for ever.

static void
test_rehash_by_reads (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    char key [32], value [64];
    wc_store_stats_t stats;
    size_t n = 0;
    do {
        size_t kl = s_key (key, sizeof key, n);
        size_t vl = s_value (value, sizeof value, n);
        assert_int_equal (wc_store_put (store, key, kl, value, vl), 0);
        n++;
        assert_true (n < 1000000);          //  a resize must have begun by then
        wc_store_stats (store, &stats);
    } while (n < 5000 || stats.old_capacity == 0);
    //  One get of every key is enough: a shard's keys outnumber the steps
    //  its resize needs
    size_t gets = 0;
    while (stats.old_capacity != 0) {
        size_t k = gets % n;
        size_t kl = s_key (key, sizeof key, k);
        size_t vl = s_value (value, sizeof value, k);
        s_assert_value (store, key, kl, value, vl);
        gets++;
        assert_true (gets <= n);
        wc_store_stats (store, &stats);
    }
    assert_int_equal (stats.resizing, 0);
    s_assert_bounded (store);
    for (size_t k = 0; k < n; k++) {
        size_t kl = s_key (key, sizeof key, k);
        size_t vl = s_value (value, sizeof value, k);
        s_assert_value (store, key, kl, value, vl);
    }
    wc_store_destroy (&store);
}

//  A store that grows spreads its resizes over the puts instead of
//  doing them all at one count: every node of a cluster reaches that
//  count at the same write, and a resize makes every put dearer while it
//  runs, so resizes that come together become a burst of lag. Over one
//  doubling of the content (250,000 to 500,000 keys), no window of
//  10,000 consecutive puts sees more than a quarter of the resizes that
//  begin in it, and past the first 20,000 keys never more than half the
//  content waits in old tables to be moved. Counters, never a clock,
//  looked at every STAGGER_EVERY puts.

#define STAGGER_FROM    250000
#define STAGGER_KEYS    500000
#define STAGGER_WINDOW  10000
#define STAGGER_EVERY   8

static void
test_resizes_staggered (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    size_t *starts = calloc (STAGGER_KEYS, sizeof (size_t));
    assert_non_null (starts);
    size_t nstarts = 0, most = 0, pending_most = 0, pending_at = 0;
    uint64_t resizes = 0;
    char key [32], value [64];
    for (size_t n = 0; n < STAGGER_KEYS; n++) {
        assert_int_equal (wc_store_put (store, key, s_key (key, sizeof key, n),
                                        value, s_value (value, sizeof value, n)), 0);
        if (n % STAGGER_EVERY)
            continue;
        wc_store_stats_t stats;
        wc_store_stats (store, &stats);
        for (; resizes < stats.resizes; resizes++)
            if (n >= STAGGER_FROM)
                starts [nstarts++] = n;
        //  The content waiting to be moved, in thousandths of all of it
        size_t pending = stats.old_count * 1000 / (n + 1);
        if (n >= 20000 && pending > pending_most) {
            pending_most = pending;
            pending_at = n;
        }
    }
    //  The most resize starts any window of consecutive puts holds
    for (size_t first = 0, last = 0; last < nstarts; last++) {
        while (starts [last] - starts [first] >= STAGGER_WINDOW)
            first++;
        if (last - first + 1 > most)
            most = last - first + 1;
    }
    printf ("%zu resizes began in one doubling, at most %zu within %d puts; "
            "at most %zu/1000 of the content in old tables (at put %zu)\n",
            nstarts, most, STAGGER_WINDOW, pending_most, pending_at);
    assert_true (nstarts >= 1);
    assert_true (most * 4 <= nstarts);
    assert_true (pending_most <= 500);
    s_assert_bounded (store);
    free (starts);
    wc_store_destroy (&store);
}

//  Puts, overwrites, deletes and gets interleaved through phases that grow
//  the store and shrink it again, across several resizes each way, checked
//  against a plain array: after every operation the count, while a resize
//  runs a sample of keys (some in each table), after each phase every key
//  and the digest of a store built fresh from the array.

#define PHASE_KEYS  60000
#define PHASE_OPS   250000

static void
s_check_all (wc_store_t *store, const size_t *model)
{
    char key [32], value [64];
    wc_store_t *fresh = wc_store_new ();
    assert_non_null (fresh);
    for (size_t n = 0; n < PHASE_KEYS; n++) {
        size_t kl = s_key (key, sizeof key, n);
        if (model [n]) {
            size_t vl = s_model_value (value, sizeof value, model [n] - 1);
            s_assert_value (store, key, kl, value, vl);
            assert_int_equal (wc_store_put (fresh, key, kl, value, vl), 0);
        }
        else
            s_assert_missing (store, key, kl);
    }
    assert_int_equal (wc_store_count (fresh), wc_store_count (store));
    assert_true (wc_store_digest (fresh) == wc_store_digest (store));
    wc_store_destroy (&fresh);
}

static void
s_check_sample (wc_store_t *store, const size_t *model, uint64_t *rng)
{
    char key [32], value [64];
    for (int i = 0; i < 50; i++) {
        size_t n = (size_t) (s_rand (rng) % PHASE_KEYS);
        size_t kl = s_key (key, sizeof key, n);
        if (model [n]) {
            size_t vl = s_model_value (value, sizeof value, model [n] - 1);
            s_assert_value (store, key, kl, value, vl);
        }
        else
            s_assert_missing (store, key, kl);
    }
}

//  One operation of a phase: put (new or overwrite) with weight puts,
//  delete with weight dels, get otherwise (out of 100).

static void
s_phase_op (wc_store_t *store, size_t *model, size_t *present, uint64_t *rng,
            unsigned puts, unsigned dels)
{
    char key [32], value [64];
    uint64_t r = s_rand (rng);
    size_t n = (size_t) (r % PHASE_KEYS);
    size_t kl = s_key (key, sizeof key, n);
    unsigned pick = (unsigned) ((r >> 32) % 100);
    if (pick < puts) {
        size_t v = (size_t) (r >> 40);
        size_t vl = s_model_value (value, sizeof value, v);
        assert_int_equal (wc_store_put (store, key, kl, value, vl), 0);
        *present += model [n] == 0;
        model [n] = 1 + v;
    }
    else
    if (pick < puts + dels) {
        assert_int_equal (wc_store_del (store, key, kl), 0);
        *present -= model [n] != 0;
        model [n] = 0;
    }
    else
    if (model [n]) {
        size_t vl = s_model_value (value, sizeof value, model [n] - 1);
        s_assert_value (store, key, kl, value, vl);
    }
    else
        s_assert_missing (store, key, kl);
}

static void
test_rehash_interleaved (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    size_t *model = calloc (PHASE_KEYS, sizeof (size_t));
    assert_non_null (model);
    size_t present = 0;
    uint64_t rng = 0x0ddc0ffee0ddf00dull;
    //  Grow (to ~52k keys), shrink (to ~7k), grow, shrink.
    unsigned weights [4][2] = { { 70, 10 }, { 10, 70 }, { 70, 10 }, { 10, 70 } };
    wc_store_stats_t stats;
    uint64_t sampled = 0, resizes = 0;
    for (int phase = 0; phase < 4; phase++) {
        for (size_t op = 0; op < PHASE_OPS; op++) {
            s_phase_op (store, model, &present, &rng, weights [phase][0], weights [phase][1]);
            assert_int_equal (wc_store_count (store), present);
            if (op % 97 != 0)
                continue;
            wc_store_stats (store, &stats);
            if (stats.old_capacity) {
                s_check_sample (store, model, &rng);
                sampled++;
            }
        }
        s_assert_bounded (store);
        s_check_all (store, model);
        wc_store_stats (store, &stats);
        assert_true (stats.resizes >= resizes + 2);
        resizes = stats.resizes;
    }
    assert_true (sampled > 100);
    wc_store_destroy (&store);
    free (model);
}

//  Build the content {key:n -> value n, n < count} in a random order, with
//  wrong values put first and overwritten, and extra keys put and deleted
//  along the way.

static wc_store_t *
s_build_shuffled (size_t count, uint64_t seed)
{
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    size_t *order = malloc (count * sizeof (size_t));
    assert_non_null (order);
    for (size_t i = 0; i < count; i++)
        order [i] = i;
    uint64_t rng = seed;
    s_shuffle (order, count, &rng);
    char key [32], value [64];
    for (size_t i = 0; i < count; i++) {
        size_t n = order [i];
        size_t kl = s_key (key, sizeof key, n);
        uint64_t r = s_rand (&rng);
        if (r % 3 == 0) {
            //  A wrong value first (other size, other bytes)
            size_t vl = s_value (value, sizeof value, n + 1 + (size_t) (r >> 8) % 1000);
            assert_int_equal (wc_store_put (store, key, kl, value, vl), 0);
        }
        if (r % 5 == 0) {
            //  An extra key that will not survive
            char extra [32];
            size_t el = (size_t) snprintf (extra, sizeof extra, "extra:%zu", n);
            assert_int_equal (wc_store_put (store, extra, el, "x", 1), 0);
            assert_int_equal (wc_store_del (store, extra, el), 0);
        }
        if (r % 7 == 0) {
            //  Put the real value, delete it, and put it again below
            size_t vl = s_value (value, sizeof value, n);
            assert_int_equal (wc_store_put (store, key, kl, value, vl), 0);
            assert_int_equal (wc_store_del (store, key, kl), 0);
        }
        size_t vl = s_value (value, sizeof value, n);
        assert_int_equal (wc_store_put (store, key, kl, value, vl), 0);
    }
    free (order);
    assert_int_equal (wc_store_count (store), count);
    return store;
}

static void
test_digest_order_independent (void **state)
{
    (void) state;
    wc_store_t *a = s_build_shuffled (20000, 1);
    wc_store_t *b = s_build_shuffled (20000, 2);
    wc_store_t *c = s_build_shuffled (20000, 3);
    assert_true (wc_store_digest (a) != 0);
    assert_true (wc_store_digest (a) == wc_store_digest (b));
    assert_true (wc_store_digest (a) == wc_store_digest (c));
    wc_store_destroy (&a);
    wc_store_destroy (&b);
    wc_store_destroy (&c);
}

static void
test_digest_sees_differences (void **state)
{
    (void) state;
    wc_store_t *a = s_build_shuffled (1000, 7);
    wc_store_t *b = s_build_shuffled (1000, 8);
    assert_true (wc_store_digest (a) == wc_store_digest (b));

    //  One byte of one value
    char value [64];
    size_t vl = s_value (value, sizeof value, 500);
    value [vl - 1] ^= 1;
    assert_int_equal (wc_store_put (b, "key:500", 7, value, vl), 0);
    assert_true (wc_store_digest (a) != wc_store_digest (b));
    //  Restoring it restores the digest
    value [vl - 1] ^= 1;
    assert_int_equal (wc_store_put (b, "key:500", 7, value, vl), 0);
    assert_true (wc_store_digest (a) == wc_store_digest (b));
    //  One value one byte shorter
    assert_int_equal (wc_store_put (b, "key:500", 7, value, vl - 1), 0);
    assert_true (wc_store_digest (a) != wc_store_digest (b));
    wc_store_destroy (&a);
    wc_store_destroy (&b);

    //  Where the key ends and the value starts is part of the content
    wc_store_t *x = wc_store_new ();
    wc_store_t *y = wc_store_new ();
    assert_non_null (x);
    assert_non_null (y);
    s_put_str (x, "ab", "c");
    s_put_str (y, "a", "bc");
    assert_true (wc_store_digest (x) != wc_store_digest (y));
    //  Values that differ only by trailing NUL bytes
    const char zeros [40] = { 0 };
    uint64_t seen [40];
    for (size_t len = 0; len < 40; len++) {
        assert_int_equal (wc_store_put (x, "z", 1, zeros, len), 0);
        seen [len] = wc_store_digest (x);
        for (size_t earlier = 0; earlier < len; earlier++)
            assert_true (seen [earlier] != seen [len]);
    }
    //  A value swapped between two keys
    wc_store_destroy (&x);
    wc_store_destroy (&y);
    x = wc_store_new ();
    y = wc_store_new ();
    assert_non_null (x);
    assert_non_null (y);
    s_put_str (x, "k1", "v1");
    s_put_str (x, "k2", "v2");
    s_put_str (y, "k1", "v2");
    s_put_str (y, "k2", "v1");
    assert_true (wc_store_digest (x) != wc_store_digest (y));
    wc_store_destroy (&x);
    wc_store_destroy (&y);
}

static void
test_digest_put_del_round_trip (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    assert_true (wc_store_digest (store) == 0);
    s_put_str (store, "a", "1");
    assert_true (wc_store_digest (store) != 0);
    assert_int_equal (wc_store_del (store, "a", 1), 0);
    assert_true (wc_store_digest (store) == 0);

    wc_store_t *base = s_build_shuffled (5000, 11);
    uint64_t before = wc_store_digest (base);
    s_put_str (base, "extra", "value");
    assert_true (wc_store_digest (base) != before);
    s_put_str (base, "extra", "another value");
    assert_true (wc_store_digest (base) != before);
    assert_int_equal (wc_store_del (base, "extra", 5), 0);
    assert_true (wc_store_digest (base) == before);
    //  Deleting a missing key changes nothing
    assert_int_equal (wc_store_del (base, "extra", 5), 0);
    assert_true (wc_store_digest (base) == before);
    //  Overwriting with the same value changes nothing
    char value [64];
    size_t vl = s_value (value, sizeof value, 42);
    assert_int_equal (wc_store_put (base, "key:42", 6, value, vl), 0);
    assert_true (wc_store_digest (base) == before);
    wc_store_destroy (&base);
    wc_store_destroy (&store);
}

//  The digest of a fixed content is a fixed number on every machine and in
//  every process (the table's hash seed is random, the digest's is not).
//  Covers every length path of the hash: 1-3, 4-7, 8-16, 17-48 and >48.

static void
test_digest_is_stable (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    char buf [300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf [i] = (char) (i * 7 + 3);
    for (size_t len = 1; len <= 200; len++)
        assert_int_equal (wc_store_put (store, buf, len, buf + 100, len % 97), 0);
    s_put_str (store, "user:1", "Alice");
    uint64_t digest = wc_store_digest (store);
    //  Print it so a deliberate hash change can update the constant below
    printf ("digest of the fixed content: 0x%016llx\n", (unsigned long long) digest);
    assert_true (digest == 0xc8ea292c895505d6ull);
    wc_store_destroy (&store);
}

//  A store made from a frozen view's pairs, to compare with the view.

static wc_store_t *
s_store_of_view (const wc_store_frozen_t *view)
{
    wc_store_t *copy = wc_store_new ();
    assert_non_null (copy);
    size_t found = 0;
    for (size_t i = 0; i < wc_store_frozen_slots (view); i++) {
        wc_store_pair_t pair;
        if (!wc_store_frozen_pair (view, i, &pair))
            continue;
        found++;
        assert_int_equal (wc_store_put (copy, pair.key, pair.key_len, pair.value,
                                        pair.value_len), 0);
    }
    assert_int_equal (found, wc_store_frozen_count (view));
    return copy;
}

//  Check that the view holds key:n -> value-n for n < count, and nothing
//  else, with the digest of that content.

static void
s_assert_view_original (const wc_store_frozen_t *view, size_t count, uint64_t digest)
{
    assert_int_equal (wc_store_frozen_count (view), count);
    assert_true (wc_store_frozen_digest (view) == digest);
    for (size_t i = 0; i < wc_store_frozen_slots (view); i++) {
        wc_store_pair_t pair;
        if (!wc_store_frozen_pair (view, i, &pair))
            continue;
        char key [32], value [64];
        assert_true (pair.key_len > 4 && pair.key_len < sizeof key);
        memcpy (key, pair.key, pair.key_len);
        key [pair.key_len] = '\0';
        size_t n = (size_t) strtoull (key + 4, NULL, 10);
        assert_true (n < count);
        size_t len = s_value (value, sizeof value, n);
        assert_int_equal (pair.value_len, len);
        assert_memory_equal (pair.value, value, len);
    }
    wc_store_t *copy = s_store_of_view (view);
    assert_int_equal (wc_store_count (copy), count);
    assert_true (wc_store_digest (copy) == digest);
    wc_store_destroy (&copy);
}

#define FREEZE_KEYS 20000

//  A freeze into prepared memory: wc_store_prepare_freeze faults in at
//  most its budget a call, the freeze takes that memory (none is left
//  prepared after it), the view is whole and stays so while the store
//  changes; memory prepared for tables that have since outgrown it is not
//  used, and the freeze maps its own.

static void
test_freeze_prepared (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    char key [32];
    s_put_range (store, 0, FREEZE_KEYS);
    assert_int_equal (wc_store_prepared_bytes (store), 0);
    assert_int_equal (wc_store_prepare_freeze (store, 8192), 0);
    assert_int_equal (wc_store_prepared_bytes (store), 8192);
    size_t calls = 1, before = 0;
    while (wc_store_prepared_bytes (store) > before) {
        size_t now = wc_store_prepared_bytes (store);
        assert_true (now - before <= 8192);
        before = now;
        assert_int_equal (wc_store_prepare_freeze (store, 8192), 0);
        calls++;
    }
    wc_store_stats_t stats;
    wc_store_stats (store, &stats);
    //  All of it, a quarter more than the slots, in budget-sized steps
    assert_true (before >= stats.capacity * 8 * 5 / 4);
    assert_true (calls > before / 8192);
    uint64_t digest = wc_store_digest (store);
    const wc_store_frozen_t *view = NULL;
    assert_int_equal (wc_store_freeze (store, &view), 0);
    assert_int_equal (wc_store_prepared_bytes (store), 0);
    for (size_t n = 0; n < FREEZE_KEYS; n += 2)
        assert_int_equal (wc_store_del (store, key, s_key (key, sizeof key, n)), 0);
    s_put_range (store, FREEZE_KEYS, 2 * FREEZE_KEYS);
    s_assert_view_original (view, FREEZE_KEYS, digest);
    wc_store_thaw (store);

    //  Prepared for 15k keys; the tables grow past it before the freeze
    assert_int_equal (wc_store_prepare_freeze (store, SIZE_MAX), 0);
    assert_true (wc_store_prepared_bytes (store) > 0);
    s_put_range (store, 2 * FREEZE_KEYS, 6 * FREEZE_KEYS);
    assert_int_equal (wc_store_prepared_bytes (store), 0);
    assert_int_equal (wc_store_freeze (store, &view), 0);
    wc_store_t *copy = s_store_of_view (view);
    assert_true (wc_store_digest (copy) == wc_store_digest (store));
    wc_store_destroy (&copy);
    wc_store_thaw (store);
    //  Prepared memory that no freeze took is given back at destroy (ASan)
    assert_int_equal (wc_store_prepare_freeze (store, 4096), 0);
    wc_store_destroy (&store);
}

//  A frozen view keeps the content of the freeze while the store goes on:
//  values rewritten in place-sized and larger, keys deleted, keys added
//  (enough to start a resize), and the view never moves. The live store
//  is right all along, and the thaw gives back what only the view held.


static void
test_freeze_keeps_view (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    char key [32], value [64];
    s_put_range (store, 0, FREEZE_KEYS);
    uint64_t digest = wc_store_digest (store);
    const wc_store_frozen_t *view = NULL;
    assert_int_equal (wc_store_freeze (store, &view), 0);
    assert_int_equal (wc_store_freeze (store, &view), WALCAST_EBUSY);
    for (size_t n = 0; n < FREEZE_KEYS; n++) {
        size_t klen = s_key (key, sizeof key, n);
        size_t vlen = s_value (value, sizeof value, n);
        if (n % 4 == 0)
            assert_int_equal (wc_store_del (store, key, klen), 0);
        else
        if (n % 4 == 1) {
            value [0] = 'V';            //  same size: would be written in place
            assert_int_equal (wc_store_put (store, key, klen, value, vlen), 0);
        }
        else
        if (n % 4 == 2)
            assert_int_equal (wc_store_put (store, key, klen, "a longer value than before",
                                            26), 0);
    }
    s_put_range (store, FREEZE_KEYS, 3 * FREEZE_KEYS);
    s_assert_view_original (view, FREEZE_KEYS, digest);
    assert_true (wc_store_dead_bytes (store) > 0);

    //  The live store has the new content
    size_t klen = s_key (key, sizeof key, 1);
    size_t vlen = s_value (value, sizeof value, 1);
    value [0] = 'V';
    s_assert_value (store, key, klen, value, vlen);
    s_assert_missing (store, key, s_key (key, sizeof key, 4));
    s_assert_value (store, key, s_key (key, sizeof key, 6), "a longer value than before", 26);
    assert_int_equal (wc_store_count (store), FREEZE_KEYS / 4 * 3 + 2 * FREEZE_KEYS);

    wc_store_thaw (store);
    assert_int_equal (wc_store_dead_bytes (store), 0);
    //  A new view sees the new content
    assert_int_equal (wc_store_freeze (store, &view), 0);
    wc_store_t *copy = s_store_of_view (view);
    assert_true (wc_store_digest (copy) == wc_store_digest (store));
    wc_store_destroy (&copy);
    wc_store_thaw (store);
    wc_store_destroy (&store);
}

//  A freeze in the middle of a resize collects the keys of both tables.

static void
test_freeze_during_resize (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    char key [32], value [64];
    size_t n = 0;
    wc_store_stats_t stats;
    do {
        assert_int_equal (wc_store_put (store, key, s_key (key, sizeof key, n),
                                        value, s_value (value, sizeof value, n)), 0);
        n++;
        wc_store_stats (store, &stats);
    } while (n < 1000 || stats.old_count < 100);
    uint64_t digest = wc_store_digest (store);
    const wc_store_frozen_t *view = NULL;
    assert_int_equal (wc_store_freeze (store, &view), 0);
    //  Deletes empty the old table while the view is held
    for (size_t k = 0; k < n; k += 2)
        assert_int_equal (wc_store_del (store, key, s_key (key, sizeof key, k)), 0);
    s_assert_view_original (view, n, digest);
    wc_store_destroy (&store);          //  frozen: destroy frees it all
}

//  Thawing with nothing frozen, and an empty store's view.

static void
test_freeze_empty (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    wc_store_thaw (store);
    const wc_store_frozen_t *view = NULL;
    assert_int_equal (wc_store_freeze (store, &view), 0);
    assert_int_equal (wc_store_frozen_count (view), 0);
    assert_true (wc_store_frozen_digest (view) == 0);
    s_put_str (store, "k", "v");
    wc_store_thaw (store);
    wc_store_thaw (store);
    s_assert_value (store, "k", 1, "v", 1);
    wc_store_destroy (&store);
}

//  A store made of the given pairs from scratch, for digests to compare.

static uint64_t
s_digest_of (const char *const *keys, const size_t *key_lens, const char *const *values,
             const size_t *value_lens, size_t count)
{
    wc_store_t *fresh = wc_store_new ();
    assert_non_null (fresh);
    for (size_t i = 0; i < count; i++)
        assert_int_equal (wc_store_put (fresh, keys [i], key_lens [i], values [i],
                                        value_lens [i]), 0);
    uint64_t digest = wc_store_digest (fresh);
    wc_store_destroy (&fresh);
    return digest;
}

//  Lengths at every size an entry's header encodes differently (1, 2 and
//  3 bytes a length), up to the largest key and value the protocol allows
//  and past them (the store itself has no such limit): each reads back,
//  survives overwrites across those sizes and a frozen view, and the
//  digest is that of the same content put in directly.

#define SIZES 9

static void
test_entry_sizes (void **state)
{
    (void) state;
    static const size_t key_lens [SIZES] = {
        1, 127, 128, 129, 300, WC_MAX_KEY - 1, WC_MAX_KEY, WC_MAX_KEY + 1, 20000 };
    static const size_t value_lens [SIZES] = {
        0, 127, 128, 16383, 16384, 16385, WC_MAX_VALUE, WC_MAX_VALUE + 1, 1 };
    char *buf = malloc (2 * WC_MAX_VALUE + 64);
    assert_non_null (buf);
    for (size_t i = 0; i < 2 * WC_MAX_VALUE + 64; i++)
        buf [i] = (char) (i * 131 + i / 251);
    const char *keys [SIZES], *values [SIZES];
    size_t vlens [SIZES];
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    for (size_t i = 0; i < SIZES; i++) {
        keys [i] = buf + i;             //  distinct keys: they start at different bytes
        values [i] = buf + 7 * i + 1;
        vlens [i] = value_lens [i];
        assert_int_equal (wc_store_put (store, keys [i], key_lens [i], values [i],
                                        vlens [i]), 0);
    }
    for (size_t i = 0; i < SIZES; i++)
        s_assert_value (store, keys [i], key_lens [i], values [i], vlens [i]);
    assert_true (wc_store_digest (store)
                 == s_digest_of (keys, key_lens, values, vlens, SIZES));
    const wc_store_frozen_t *view = NULL;
    assert_int_equal (wc_store_freeze (store, &view), 0);
    uint64_t frozen_digest = wc_store_digest (store);
    //  Every key gets the next key's value length, then back in place
    for (size_t round = 0; round < 2; round++)
        for (size_t i = 0; i < SIZES; i++) {
            vlens [i] = value_lens [(i + 1 - round) % SIZES];
            values [i] = buf + 3 * i + round;
            assert_int_equal (wc_store_put (store, keys [i], key_lens [i], values [i],
                                            vlens [i]), 0);
            s_assert_value (store, keys [i], key_lens [i], values [i], vlens [i]);
        }
    assert_true (wc_store_digest (store)
                 == s_digest_of (keys, key_lens, values, vlens, SIZES));
    assert_true (wc_store_frozen_digest (view) == frozen_digest);
    for (size_t i = 0; i < wc_store_frozen_slots (view); i++) {
        wc_store_pair_t pair;
        if (!wc_store_frozen_pair (view, i, &pair))
            continue;
        size_t n;
        for (n = 0; n < SIZES; n++)
            if (pair.key_len == key_lens [n] && memcmp (pair.key, buf + n, key_lens [n]) == 0)
                break;
        assert_true (n < SIZES);
        assert_int_equal (pair.value_len, value_lens [n]);
        assert_memory_equal (pair.value, buf + 7 * n + 1, value_lens [n]);
    }
    wc_store_thaw (store);
    for (size_t i = 0; i < SIZES; i++)
        assert_int_equal (wc_store_del (store, keys [i], key_lens [i]), 0);
    assert_int_equal (wc_store_count (store), 0);
    assert_true (wc_store_digest (store) == 0);
    wc_store_destroy (&store);
    free (buf);
}

//  A 12-byte key and a 100-byte value (the pair issue 8 measures) take at
//  most 120 bytes, so glibc serves them from a 128-byte chunk: the store's
//  share of a replica's memory depends on it. wc_store_dead_bytes says
//  what an entry takes once a frozen view holds it alone.

static void
test_entry_is_compact (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    char value [100];
    memset (value, 'v', sizeof value);
    assert_int_equal (wc_store_put (store, "key:00000001", 12, value, sizeof value), 0);
    const wc_store_frozen_t *view = NULL;
    assert_int_equal (wc_store_freeze (store, &view), 0);
    assert_int_equal (wc_store_del (store, "key:00000001", 12), 0);
    assert_true (wc_store_dead_bytes (store) >= 112);
    assert_true (wc_store_dead_bytes (store) <= 120);
    wc_store_destroy (&store);
}

//  Keys aimed at the same home slots of one shard (found with the
//  store's own table hash), so that runs grow far past the distance a
//  slot can record (255): reads, misses, overwrites, deletes with their
//  backward shifts, resizes both ways and a frozen view all stay right,
//  runs that wrap around the end of the table included. The keys are
//  binary ("far:" and 8 bytes of a number): one in 65,536 qualifies, and
//  formatting millions of them as text would take seconds.

#define FAR_KEYS 600

static void
test_far_from_home (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    static char keys [FAR_KEYS][24];
    size_t lens [FAR_KEYS];
    size_t found = 0;
    for (uint64_t n = 0; found < FAR_KEYS; n++) {
        char key [24] = "far:";
        size_t len = 4 + sizeof n;
        memcpy (key + 4, &n, sizeof n);
        uint64_t home = wc_store_test_hash (store, key, len) & 2047;
        //  Two homes: 2047 (its run wraps to slot 0) and 5, in shard 0
        if ((home == 2047 || home == 5) && wc_store_test_shard (store, key, len) == 0) {
            memcpy (keys [found], key, len);
            lens [found++] = len;
        }
    }
    char value [32];
    for (size_t i = 0; i < FAR_KEYS; i++)
        assert_int_equal (wc_store_put (store, keys [i], lens [i], value,
                                        s_value (value, sizeof value, i)), 0);
    uint64_t digest = wc_store_digest (store);
    const wc_store_frozen_t *view = NULL;
    assert_int_equal (wc_store_freeze (store, &view), 0);
    for (size_t i = 0; i < FAR_KEYS; i++)
        s_assert_value (store, keys [i], lens [i], value, s_value (value, sizeof value, i));
    s_assert_missing (store, "far:none", 8);
    //  Overwrite every third key (a copy: the view shares it), delete every
    //  other one, then read everything back
    for (size_t i = 0; i < FAR_KEYS; i += 3)
        assert_int_equal (wc_store_put (store, keys [i], lens [i], "new", 3), 0);
    for (size_t i = 1; i < FAR_KEYS; i += 2)
        assert_int_equal (wc_store_del (store, keys [i], lens [i]), 0);
    for (size_t i = 0; i < FAR_KEYS; i++) {
        if (i % 2 == 1)
            s_assert_missing (store, keys [i], lens [i]);
        else
        if (i % 3 == 0)
            s_assert_value (store, keys [i], lens [i], "new", 3);
        else
            s_assert_value (store, keys [i], lens [i], value,
                            s_value (value, sizeof value, i));
    }
    assert_int_equal (wc_store_frozen_count (view), FAR_KEYS);
    assert_true (wc_store_frozen_digest (view) == digest);
    wc_store_t *copy = s_store_of_view (view);
    assert_true (wc_store_digest (copy) == digest);
    wc_store_destroy (&copy);
    wc_store_thaw (store);
    //  Delete the rest: the table shrinks past the far runs
    for (size_t i = 0; i < FAR_KEYS; i += 2)
        assert_int_equal (wc_store_del (store, keys [i], lens [i]), 0);
    assert_int_equal (wc_store_count (store), 0);
    assert_true (wc_store_digest (store) == 0);
    wc_store_stats_t stats;
    wc_store_stats (store, &stats);
    assert_true (stats.resizes >= 8);
    wc_store_destroy (&store);
}

//  The generation is 32 bits: once in 2^32 freezes it wraps, and every
//  entry starts again at generation 1. Entries made just before the wrap
//  must stay shared with the views after it: a view made after the wrap
//  keeps its values while the store overwrites them in place.

static void
test_generation_wrap (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    s_put_str (store, "old", "value-0");
    wc_store_test_set_generation (store, UINT32_MAX - 1);
    s_put_str (store, "x", "value-1");              //  generation 2^32 - 2
    const wc_store_frozen_t *view = NULL;
    for (int round = 0; round < 4; round++) {
        assert_int_equal (wc_store_freeze (store, &view), 0);
        if (round == 0)
            s_put_str (store, "y", "value-2");      //  generation 2^32 - 1
        wc_store_thaw (store);
    }
    assert_int_equal (wc_store_freeze (store, &view), 0);
    uint64_t digest = wc_store_digest (store);
    s_put_str (store, "old", "VALUE-0");            //  same length: in place if not shared
    s_put_str (store, "x", "VALUE-1");
    s_put_str (store, "y", "VALUE-2");
    assert_int_equal (wc_store_frozen_count (view), 3);
    assert_true (wc_store_frozen_digest (view) == digest);
    for (size_t i = 0; i < wc_store_frozen_slots (view); i++) {
        wc_store_pair_t pair;
        if (!wc_store_frozen_pair (view, i, &pair))
            continue;
        assert_int_equal (pair.value_len, 7);
        assert_memory_equal (pair.value, "value-", 6);
    }
    assert_true (wc_store_dead_bytes (store) > 0);
    wc_store_thaw (store);
    s_assert_value (store, "x", 1, "VALUE-1", 7);
    s_assert_value (store, "y", 1, "VALUE-2", 7);
    wc_store_destroy (&store);
}

//  A store told of 100,000 keys to come resizes each shard once, to the
//  size of its share, and not again while they arrive; keys already in
//  it stay readable. A hint it cannot use (a resize running, nothing
//  new) changes nothing.
static void
test_reserve (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    assert_int_equal (wc_store_put (store, "early", 5, "1", 1), 0);
    wc_store_stats_t before, after;
    wc_store_stats (store, &before);
    assert_int_equal (wc_store_reserve (store, 100000), 0);
    wc_store_stats (store, &after);
    assert_int_equal (after.resizes, before.resizes + WC_STORE_SHARDS);
    assert_true (after.capacity * 85 / 100 >= 100001);
    assert_int_equal (wc_store_reserve (store, 100000), 0);     //  room already
    wc_store_stats (store, &before);
    assert_int_equal (before.resizes, after.resizes);
    char key [32];
    for (int i = 0; i < 100000; i++) {
        int len = snprintf (key, sizeof key, "key:%d", i);
        assert_int_equal (wc_store_put (store, key, (size_t) len, "v", 1), 0);
    }
    wc_store_stats (store, &before);
    assert_int_equal (before.resizes, after.resizes);
    const void *value = NULL;
    size_t len = 0;
    assert_int_equal (wc_store_get (store, "early", 5, &value, &len), 0);
    assert_int_equal (len, 1);
    assert_int_equal (wc_store_reserve (store, 0), 0);
    assert_int_equal (wc_store_reserve (store, (size_t) WC_STORE_RESERVE_MAX + 1), 0);
    wc_store_stats (store, &after);
    assert_int_equal (after.resizes, before.resizes);
    wc_store_destroy (&store);
}

//  Deletes right after a reserve find the table far below 15% load
//  while the reserve's resize still runs: a halving begun then would
//  first finish that resize in one operation, moving every key left in
//  the old table at once. The halving waits for the resize to end, no
//  operation moves more than the bound, and the table does shrink.

#define SHRINK_KEYS 100000

static void
test_reserve_then_delete (void **state)
{
    (void) state;
    wc_store_t *store = wc_store_new ();
    assert_non_null (store);
    char key [32], value [64];
    s_put_range (store, 0, SHRINK_KEYS);
    //  Reading every key finishes the resizes of the growth
    for (size_t n = 0; n < SHRINK_KEYS; n++)
        s_assert_value (store, key, s_key (key, sizeof key, n),
                        value, s_value (value, sizeof value, n));
    wc_store_stats_t stats;
    wc_store_stats (store, &stats);
    assert_int_equal (stats.old_capacity, 0);
    assert_int_equal (wc_store_reserve (store, 10 * SHRINK_KEYS), 0);
    wc_store_stats (store, &stats);
    assert_true (stats.old_count > SHRINK_KEYS / 2);
    size_t reserved = stats.capacity;
    for (size_t n = 0; n < SHRINK_KEYS; n++) {
        assert_int_equal (wc_store_del (store, key, s_key (key, sizeof key, n)), 0);
        if (n % 1000 == 0 && n + 1 < SHRINK_KEYS)
            s_assert_value (store, key, s_key (key, sizeof key, n + 1),
                            value, s_value (value, sizeof value, n + 1));
    }
    s_assert_bounded (store);
    assert_int_equal (wc_store_count (store), 0);
    wc_store_stats (store, &stats);
    assert_true (stats.capacity < reserved / 8);
    wc_store_destroy (&store);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_new_and_destroy),
        cmocka_unit_test (test_put_get_overwrite_del),
        cmocka_unit_test (test_put_from_own_value),
        cmocka_unit_test (test_binary_keys_and_values),
        cmocka_unit_test (test_empty_values),
        cmocka_unit_test (test_bad_arguments),
        cmocka_unit_test (test_enomem_leaves_store_unchanged),
        cmocka_unit_test (test_growth_and_mass_delete),
        cmocka_unit_test (test_random_ops_match_model),
        cmocka_unit_test (test_rehash_bounded),
        cmocka_unit_test (test_rehash_by_reads),
        cmocka_unit_test (test_rehash_interleaved),
        cmocka_unit_test (test_resizes_staggered),
        cmocka_unit_test (test_digest_order_independent),
        cmocka_unit_test (test_digest_sees_differences),
        cmocka_unit_test (test_digest_put_del_round_trip),
        cmocka_unit_test (test_digest_is_stable),
        cmocka_unit_test (test_freeze_keeps_view),
        cmocka_unit_test (test_freeze_during_resize),
        cmocka_unit_test (test_freeze_empty),
        cmocka_unit_test (test_freeze_prepared),
        cmocka_unit_test (test_entry_sizes),
        cmocka_unit_test (test_entry_is_compact),
        cmocka_unit_test (test_far_from_home),
        cmocka_unit_test (test_generation_wrap),
        cmocka_unit_test (test_reserve),
        cmocka_unit_test (test_reserve_then_delete),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
