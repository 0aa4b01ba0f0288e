/*  test_slab.c - memory for the store's entries (storage/slab.c).

    What the store relies on: a block holds the bytes asked for and keeps
    them until it is freed, whatever else is allocated and freed around
    it; blocks of a class are packed (a 118-byte entry costs 120 bytes,
    not malloc's 128); a freed block is used again before new memory is
    taken; blocks too big for a class work the same way; a slab far
    bigger than one of its regions holds every block apart; destroy gives
    back everything, blocks still in use included (the suite runs under
    AddressSanitizer, which would report a leak or a touch of a freed
    block).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slab.h"

#define BLOCKS 20000

//  Size of block n: every class, and some sizes past WC_SLAB_MAX.
static size_t
s_size (size_t n)
{
    return 1 + (n * 37) % (WC_SLAB_MAX + 200);
}

static void
s_fill (unsigned char *block, size_t size, size_t n)
{
    for (size_t i = 0; i < size; i++)
        block [i] = (unsigned char) (n + i);
}

static void
s_assert_filled (const unsigned char *block, size_t size, size_t n)
{
    for (size_t i = 0; i < size; i++)
        assert_int_equal (block [i], (unsigned char) (n + i));
}

//  Blocks of every size keep their bytes while others come and go, and
//  are aligned for the store's 4-byte generation (8 bytes, or malloc's).
static void
test_blocks_keep_content (void **state)
{
    (void) state;
    wc_slab_t *slab = wc_slab_new ();
    assert_non_null (slab);
    unsigned char **blocks = calloc (BLOCKS, sizeof *blocks);
    assert_non_null (blocks);
    for (size_t n = 0; n < BLOCKS; n++) {
        blocks [n] = wc_slab_alloc (slab, s_size (n));
        assert_non_null (blocks [n]);
        assert_int_equal ((uintptr_t) blocks [n] % WC_SLAB_GRAIN, 0);
        s_fill (blocks [n], s_size (n), n);
    }
    for (size_t n = 0; n < BLOCKS; n += 2) {        //  every other one goes
        wc_slab_free (slab, blocks [n], s_size (n));
        blocks [n] = NULL;
    }
    for (size_t n = 0; n < BLOCKS; n += 2) {        //  and comes back, refilled
        blocks [n] = wc_slab_alloc (slab, s_size (n));
        assert_non_null (blocks [n]);
        s_fill (blocks [n], s_size (n), n + 1);
    }
    for (size_t n = 0; n < BLOCKS; n++)
        s_assert_filled (blocks [n], s_size (n), n % 2 ? n : n + 1);
    for (size_t n = 0; n < BLOCKS; n += 3)
        wc_slab_free (slab, blocks [n], s_size (n));
    wc_slab_free (slab, NULL, 10);                  //  nothing to do
    wc_slab_destroy (&slab);                        //  the rest, all at once
    assert_null (slab);
    wc_slab_destroy (&slab);
    free (blocks);
}

//  118-byte blocks (a 12-byte key, a 100-byte value and the entry's
//  header) take 120 bytes each: 100,000 of them fit in the runs they
//  need, within one run; and a freed block is the next one handed out.
static void
test_packed_and_reused (void **state)
{
    (void) state;
    wc_slab_t *slab = wc_slab_new ();
    assert_non_null (slab);
    assert_int_equal (wc_slab_bytes (slab), 0);
    void *first = NULL, *last = NULL;
    for (size_t n = 0; n < 100000; n++) {
        last = wc_slab_alloc (slab, 118);
        assert_non_null (last);
        if (!first)
            first = last;
    }
    size_t packed = 100000 * 120;
    assert_true (wc_slab_bytes (slab) >= packed);
    assert_true (wc_slab_bytes (slab) <= packed + WC_SLAB_RUN * 3);
    size_t before = wc_slab_bytes (slab);
    wc_slab_free (slab, first, 118);
    wc_slab_free (slab, last, 113);                 //  the same class: 113..120
    assert_ptr_equal (wc_slab_alloc (slab, 120), last);
    assert_ptr_equal (wc_slab_alloc (slab, 117), first);
    assert_int_equal (wc_slab_bytes (slab), before);
    wc_slab_destroy (&slab);
}

//  Blocks bigger than WC_SLAB_MAX: counted at their size while they
//  live, given back when freed, and freed by destroy when they are not.
static void
test_big_blocks (void **state)
{
    (void) state;
    wc_slab_t *slab = wc_slab_new ();
    assert_non_null (slab);
    unsigned char *a = wc_slab_alloc (slab, WC_SLAB_MAX + 1);
    unsigned char *b = wc_slab_alloc (slab, 100000);
    unsigned char *c = wc_slab_alloc (slab, 5000);
    assert_non_null (a);
    assert_non_null (b);
    assert_non_null (c);
    assert_int_equal (wc_slab_bytes (slab), WC_SLAB_MAX + 1 + 100000 + 5000);
    memset (a, 'a', WC_SLAB_MAX + 1);
    memset (b, 'b', 100000);
    memset (c, 'c', 5000);
    wc_slab_free (slab, b, 100000);                 //  the middle of the list
    assert_int_equal (wc_slab_bytes (slab), WC_SLAB_MAX + 1 + 5000);
    assert_int_equal (a [WC_SLAB_MAX], 'a');
    assert_int_equal (c [4999], 'c');
    wc_slab_free (slab, c, 5000);                   //  the head
    assert_int_equal (wc_slab_bytes (slab), WC_SLAB_MAX + 1);
    assert_non_null (wc_slab_alloc (slab, 70000));  //  left for destroy
    wc_slab_destroy (&slab);
}

//  A slab as big as a replica's million entries (130 MB, more than its
//  largest region of runs, so regions of every size and several of the
//  largest): every block keeps its own bytes, no two blocks share one,
//  and the slab counts what it handed out.
static void
test_many_regions (void **state)
{
    (void) state;
    size_t count = 1100000;
    unsigned char **blocks = calloc (count, sizeof *blocks);
    assert_non_null (blocks);
    wc_slab_t *slab = wc_slab_new ();
    assert_non_null (slab);
    for (size_t n = 0; n < count; n++) {
        blocks [n] = wc_slab_alloc (slab, 118);
        assert_non_null (blocks [n]);
        memcpy (blocks [n], &n, sizeof n);
        memset (blocks [n] + sizeof n, (int) (n & 0xff), 118 - sizeof n);
    }
    for (size_t n = 0; n < count; n++) {
        size_t seen;
        memcpy (&seen, blocks [n], sizeof seen);
        assert_int_equal (seen, n);
        assert_int_equal (blocks [n] [117], n & 0xff);
    }
    assert_true (wc_slab_bytes (slab) >= count * 120);
    assert_true (wc_slab_bytes (slab) <= count * 120 + WC_SLAB_RUN * 2);
    wc_slab_destroy (&slab);
    free (blocks);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_blocks_keep_content),
        cmocka_unit_test (test_packed_and_reused),
        cmocka_unit_test (test_big_blocks),
        cmocka_unit_test (test_many_regions),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
