/*  test_cluster_ackpace.c - a replica ACKs promptly when a write waits,
    and sparingly when none does.

    What a user relies on: a write that asks for acks is confirmed about
    a millisecond after the replicas hold it, and replicas that nobody
    waits on do not spend their CPU (and their primary's) on an ACK at
    every entry. A primary flags the stream messages it publishes while
    a write waits for ACKs (WC_ENTRIES_ACK_WANTED, walcast 0.9): a replica
    then ACKs at most WC_ACKER_GAP_US (1 ms) after its last ACK, and
    otherwise at most every WC_ACKER_RELAXED_US (20 ms).

    A real replica follows a scripted upstream (tests/upstream.h) that
    publishes one entry at a time and waits for the replica's ACK of it
    before the next, round after round: with the flag each round takes
    about a millisecond, without it about twenty. The checks leave room
    for a loaded machine in the direction a load pushes (a round is never
    shorter than the gap, whatever the load): the fastest flagged round
    under 10 ms, the median unflagged one at least 12 ms.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <zmq.h>
#include "cluster.h"
#include "codec.h"
#include "upstream.h"

#define ROUNDS      31
#define FAKE_ID     UINT64_C (0x3333333333333333)

static int
s_setup (void **state)
{
    *state = cluster_new ("ackpace");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_destroy ((cluster_t **) state);
    return 0;
}

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  Drop the ACKs waiting on the upstream's service port.
static void
s_drain_acks (upstream_t *up)
{
    uint64_t seq;
    while (upstream_ack (up, 0, &seq) != 0)
        ;
}

//  ROUNDS rounds of one entry published with flags, each until the
//  replica ACKs it: their durations in us, sorted, into us [ROUNDS].
static void
s_rounds (cluster_t *c, int r, upstream_t *up, uint64_t flags, int64_t *us)
{
    up->flags = flags;
    s_drain_acks (up);
    for (int i = 0; i < ROUNDS; i++) {
        up->last++;
        int64_t start = s_now_us ();
        int64_t deadline = start + 20 * 1000000;
        upstream_publish (up);
        uint64_t seq = 0;
        while (seq < up->last) {
            if (s_now_us () > deadline)
                fail_msg ("no ACK of seq %llu within 20 s",
                          (unsigned long long) up->last);
            upstream_serve (up);        /* a lost stream message is fetched */
            if (upstream_ack (up, 5, &seq) == 0 && !cluster_running (c, r))
                fail_msg ("the replica died");
        }
        us [i] = s_now_us () - start;
    }
    qsort (us, ROUNDS, sizeof *us, s_cmp);
}

static void
test_acks_paced_by_the_stream (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    void *ctx = zmq_ctx_new ();
    assert_non_null (ctx);
    int port = cluster_spare_port (c);
    upstream_t up;
    upstream_open (&up, ctx, port, 5, FAKE_ID);
    char addr [32];
    snprintf (addr, sizeof addr, "127.0.0.1:%d", port);
    //  --fsync never: an ACK says what is written, not synced, so a
    //  round is the replica's work and its pace, not the disk's
    int r = cluster_add (c, "r1", addr, "never");
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    if (upstream_run_until (c, r, &up, 5, NULL, 0, 20000) != 0)
        fail_msg ("the replica did not follow the upstream to seq 5");

    int64_t prompt [ROUNDS], relaxed [ROUNDS];
    s_rounds (c, r, &up, WC_ENTRIES_ACK_WANTED, prompt);
    s_rounds (c, r, &up, 0, relaxed);
    print_message ("rounds, us: flagged min %lld median %lld max %lld; "
                   "unflagged min %lld median %lld max %lld\n",
                   (long long) prompt [0], (long long) prompt [ROUNDS / 2],
                   (long long) prompt [ROUNDS - 1], (long long) relaxed [0],
                   (long long) relaxed [ROUNDS / 2], (long long) relaxed [ROUNDS - 1]);
    assert_true (prompt [0] < 10000);
    assert_true (relaxed [ROUNDS / 2] >= 12000);
    //  Asked again: prompt again
    s_rounds (c, r, &up, WC_ENTRIES_ACK_WANTED, prompt);
    print_message ("flagged again: min %lld us\n", (long long) prompt [0]);
    assert_true (prompt [0] < 10000);

    upstream_close (&up);
    zmq_ctx_term (ctx);
    assert_int_equal (cluster_check_key (c, r, (int) up.last, 1), 0);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_acks_paced_by_the_stream, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
