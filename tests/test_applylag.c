/*  test_applylag.c - a replica's per-entry replication lag (node/applylag.h):
    each stamped stream message counts once per entry, when the replica's
    applied seq reaches its last seq, with the lag from the stamp to then;
    a message behind a gap waits for it; clocks apart count as 0; a full
    ring loses its oldest notes, never the newest.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "applylag.h"

/*  Observations in the bucket whose upper bound is `bound` (seconds). */
static uint64_t
s_in_bucket (const wc_metrics_tally_t *tally, double bound)
{
    for (size_t i = 0; i < WC_APPLYLAG_BUCKETS; i++)
        if (wc_applylag_bounds [i] == bound)
            return tally->counts [i];
    fail_msg ("no bucket of %g s", bound);
    return 0;
}

static void
test_counts_each_entry_when_applied (void **state)
{
    (void) state;
    wc_applylag_t lag = { 0 };
    wc_metrics_tally_t tally = { 0 };
    const uint64_t t = 1764547200000000;        /* wall clock, us */
    wc_applylag_note (&lag, 100, t, 100);       /* seqs 1..100 */
    wc_applylag_note (&lag, 150, t + 1000, 50); /* 101..150 */
    wc_applylag_note (&lag, 160, 0, 10);        /* not stamped: not noted */
    assert_int_equal (lag.len, 2);

    //  Applied up to 120: only the first message, 400 us after its stamp
    wc_applylag_drain (&lag, 120, t + 400, &tally);
    assert_int_equal (tally.count, 100);
    assert_int_equal (s_in_bucket (&tally, 0.0005), 100);
    assert_int_equal (lag.len, 1);
    //  Then the second, 2.5 ms after its stamp (it waited for a gap, say)
    wc_applylag_drain (&lag, 150, t + 3500, &tally);
    assert_int_equal (tally.count, 150);
    assert_int_equal (s_in_bucket (&tally, 0.003), 50);
    assert_true (tally.sum > 100 * 0.0004 + 50 * 0.0025 - 1e-9
                 && tally.sum < 100 * 0.0004 + 50 * 0.0025 + 1e-9);
    assert_int_equal (lag.len, 0);
    //  Nothing left: a drain adds nothing
    wc_applylag_drain (&lag, 1000, t + 9000, &tally);
    assert_int_equal (tally.count, 150);
}

static void
test_clocks_apart_count_as_zero (void **state)
{
    (void) state;
    wc_applylag_t lag = { 0 };
    wc_metrics_tally_t tally = { 0 };
    wc_applylag_note (&lag, 10, 5000000, 3);    /* stamped "after" our now */
    wc_applylag_drain (&lag, 10, 4000000, &tally);
    assert_int_equal (tally.count, 3);
    assert_int_equal (s_in_bucket (&tally, 0.0001), 3);
    assert_true (tally.sum == 0);
}

static void
test_full_ring_drops_oldest (void **state)
{
    (void) state;
    wc_applylag_t lag = { 0 };
    wc_metrics_tally_t tally = { 0 };
    for (uint64_t i = 1; i <= WC_APPLYLAG_NOTES + 5; i++)
        wc_applylag_note (&lag, i * 10, 1000000 + i, 10);
    assert_int_equal (lag.len, WC_APPLYLAG_NOTES);
    assert_int_equal (lag.dropped, 5);
    //  The oldest kept is the sixth message: everything up to it counts
    wc_applylag_drain (&lag, 60, 2000000, &tally);
    assert_int_equal (tally.count, 10);
    wc_applylag_clear (&lag);
    assert_int_equal (lag.len, 0);
    wc_applylag_drain (&lag, UINT64_MAX, 3000000, &tally);
    assert_int_equal (tally.count, 10);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_counts_each_entry_when_applied),
        cmocka_unit_test (test_clocks_apart_count_as_zero),
        cmocka_unit_test (test_full_ring_drops_oldest),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
