/*  test_acker.c - when a replica's ACK goes out (node/acker.h).

    What a user relies on: a write that asks for acks is confirmed within
    about a millisecond of the replicas holding it, and a replica that
    nobody waits on does not spend its CPU (and its primary's) on an ACK
    at every moved seq. So with seq moved an ACK is due WC_ACKER_GAP_US
    after the last when the upstream asked for one (its stream's
    WC_ENTRIES_ACK_WANTED), WC_ACKER_RELAXED_US after it otherwise; with
    nothing moved, every WC_ACKER_INTERVAL_MS (the upstream's sign of
    life).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "acker.h"

static void
test_prompt_when_asked (void **state)
{
    (void) state;
    assert_int_equal (wc_acker_due_ms (0, true, true), 1);
    assert_int_equal (wc_acker_due_ms (400, true, true), 1);
    assert_int_equal (wc_acker_due_ms (WC_ACKER_GAP_US, true, true), 0);
    assert_int_equal (wc_acker_due_ms (INT64_MAX / 2, true, true), 0);   /* the first */
}

static void
test_relaxed_when_nobody_waits (void **state)
{
    (void) state;
    assert_true (WC_ACKER_RELAXED_US > WC_ACKER_GAP_US);
    assert_int_equal (wc_acker_due_ms (WC_ACKER_GAP_US, true, false),
                      (WC_ACKER_RELAXED_US - WC_ACKER_GAP_US) / 1000);
    assert_int_equal (wc_acker_due_ms (WC_ACKER_RELAXED_US - 1, true, false), 1);
    assert_int_equal (wc_acker_due_ms (WC_ACKER_RELAXED_US, true, false), 0);
}

static void
test_alive_when_nothing_moved (void **state)
{
    (void) state;
    //  Asked or not: nothing new to say, so only the sign of life
    assert_int_equal (wc_acker_due_ms (WC_ACKER_RELAXED_US, false, true),
                      WC_ACKER_INTERVAL_MS - WC_ACKER_RELAXED_US / 1000);
    assert_int_equal (wc_acker_due_ms (WC_ACKER_GAP_US, false, false),
                      WC_ACKER_INTERVAL_MS - 1);
    assert_int_equal (wc_acker_due_ms (WC_ACKER_INTERVAL_MS * 1000, false, false), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_prompt_when_asked),
        cmocka_unit_test (test_relaxed_when_nobody_waits),
        cmocka_unit_test (test_alive_when_nothing_moved),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
