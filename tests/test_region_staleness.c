/*  test_region_staleness.c - --max-staleness keeps reads off a lagging
    replica.

    What a user relies on: a replica knows how far behind the primary it
    is (STATUS lag_ms, estimated from the primary's heartbeats) and a read
    that bounds staleness is not served by a replica further behind than
    the bound; the next node answers instead. Without the bound, or with
    a looser one, the lagging replica (the nearest) still serves.

    Layout: primary p1 behind a 20 ms proxy for clients (RTT 40 ms);
    replica r1's stream comes through a 1500 ms proxy (it lags ~1.5 s) and is
    reached directly (RTT ~0, the nearest; its catch-up requests take
    the same proxy with a 50 ms delay); replica r2 follows p1 directly
    (fresh) and is reached through a 10 ms proxy (RTT 20 ms).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cluster.h"

/*  r1's stream delay, as in the issue: ~1.5 s. A fresh ZeroMQ
    subscription needs about six one-way trips (signatures, greetings,
    READY, SUBSCRIBE, the first heartbeat) before anything arrives, ~9 s
    here; the replica gives a subscription that never delivered 30 s
    before rebuilding it, so the stream does come up and r1 follows it,
    ~1.5 s behind. A bound of 500 ms keeps reads off r1 and is easily met
    by the fresh r2 (0..100 ms: a heartbeat every 100 ms). */
#define LAG_MS   1500
#define BOUND_MS 500

static int
s_setup (void **state)
{
    *state = cluster_new ("region_staleness");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

//  Poll node i's STATUS until lag_ms is within [low, high]; returns the
//  last lag_ms seen, or -1 when it never got there.
static long long
s_wait_lag (cluster_t *c, int i, uint64_t low, uint64_t high, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    walcast_status_t status;
    long long last = -1;
    while (cluster_now_ms () < deadline) {
        if (cluster_status (c, i, &status) == 0) {
            last = (long long) status.lag_ms;
            if (status.lag_ms >= low && status.lag_ms <= high)
                return last;
        }
        cluster_nap_ms (50);
    }
    fprintf (stderr, "%s: lag_ms never within [%llu, %llu]; last %lld\n", cluster_id (c, i),
             (unsigned long long) low, (unsigned long long) high, last);
    return -1;
}

//  A library read of "k" with max staleness bound_ms; value must be "v".
static void
s_read (walcast_t *h, int bound_ms, walcast_served_t *served)
{
    walcast_set_max_staleness (h, bound_ms);
    void *value = NULL;
    size_t len = 0;
    int rc = walcast_get_ex (h, "k", 1, 0, &value, &len, served);
    if (rc != 0)
        fprintf (stderr, "get with max staleness %d: %s (%s)\n", bound_ms,
                 walcast_errname (rc), walcast_last_detail (h));
    assert_int_equal (rc, 0);
    assert_int_equal (len, 1);
    assert_memory_equal (value, "v", 1);
    walcast_free (value);
}

static void
test_staleness (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int client_proxy = cluster_proxy_start (c, p, 20);
    //  Only r1's stream is late (its catch-up link is quick): a lagging
    //  stream is what a staleness bound is about, and a fast catch-up
    //  link keeps the test short
    int r1_link = cluster_proxy_start_split (c, p, 50, LAG_MS, 50);
    assert_true (client_proxy >= 0 && r1_link >= 0);
    int r1 = cluster_add (c, "r1", cluster_proxy_addr (c, r1_link), NULL);
    int r2 = cluster_add (c, "r2", cluster_addr (c, p), NULL);
    int r2_proxy = cluster_proxy_start (c, r2, 10);
    assert_true (r2_proxy >= 0);
    cluster_set_advertise (c, p, cluster_proxy_addr (c, client_proxy));
    cluster_set_advertise (c, r2, cluster_proxy_addr (c, r2_proxy));
    for (int i = p; i <= r2; i++)
        assert_int_equal (cluster_start (c, i), 0);
    for (int i = p; i <= r2; i++)
        assert_int_equal (cluster_wait_ready (c, i, 30000), 0);

    walcast_t *h = walcast_new ();
    assert_non_null (h);
    walcast_set_timeout (h, 5000);
    assert_int_equal (walcast_connect (h, cluster_proxy_addr (c, client_proxy)), 0);
    assert_int_equal (walcast_connect (h, cluster_addr (c, r1)), 0);
    assert_int_equal (walcast_connect (h, cluster_proxy_addr (c, r2_proxy)), 0);
    walcast_pos_t pos;
    assert_int_equal (walcast_put (h, "k", 1, "v", 1, &pos), 0);
    int all [] = { p, r1, r2 };
    assert_int_equal (cluster_wait_converged (c, all, 3, pos.seq, 20000, NULL, NULL), 0);

    //  r1 knows it lags by about the link's delay; r2 knows it does not
    long long lag = s_wait_lag (c, r1, LAG_MS - 50, LAG_MS + 500, 10000);
    assert_true (lag >= 0);
    long long fresh = s_wait_lag (c, r2, 0, BOUND_MS / 2, 10000);
    assert_true (fresh >= 0);
    print_message ("STATUS lag_ms: r1 %lld (link delayed %d ms), r2 %lld\n", lag, LAG_MS,
                   fresh);

    //  No bound, or one above its lag: the nearest, r1, serves
    walcast_served_t served;
    s_read (h, 0, &served);
    print_message ("no bound: served by %s\n", served.id);
    assert_string_equal (served.id, "r1");
    s_read (h, 10000, &served);
    assert_string_equal (served.id, "r1");

    //  Bounded below r1's lag: never r1; the next nearest, r2, answers
    for (int k = 0; k < 10; k++) {
        s_read (h, BOUND_MS, &served);
        assert_string_not_equal (served.id, "r1");
        assert_string_equal (served.id, "r2");
    }
    print_message ("max staleness %d ms: served by %s\n", BOUND_MS, served.id);
    walcast_destroy (&h);

    //  The CLI flag does the same
    char id [65], got [64], bound [16];
    snprintf (bound, sizeof bound, "%d", BOUND_MS);
    const char *nodes [] = { "--node", cluster_proxy_addr (c, client_proxy),
                             "--node", cluster_addr (c, r1),
                             "--node", cluster_proxy_addr (c, r2_proxy) };
    const char *bounded [] = { nodes [0], nodes [1], nodes [2], nodes [3], nodes [4],
                               nodes [5], "-v", "--max-staleness", bound, "get", "k", NULL };
    assert_int_equal (cluster_cli_read (c, bounded, got, sizeof got, id, sizeof id,
                                        NULL, 0), 0);
    print_message ("walcast --max-staleness %s get k: %s, served by %s\n", bound, got, id);
    assert_string_equal (got, "v");
    assert_string_equal (id, "r2");
    //  A bound below the staleness floor (heartbeats every 100 ms: every
    //  replica would decline for part of each period) is a usage error,
    //  said before anything is sent (before, it was taken silently, a
    //  helper's find); the library raises it to the floor
    char *out = NULL, *err = NULL;
    assert_int_equal (cluster_cli (c, NULL, &out, &err, nodes [0], nodes [1],
                                   "--max-staleness", "1", "get", "k", NULL), 2);
    print_message ("walcast --max-staleness 1 get k: %s", err);
    assert_non_null (strstr (err, "staleness floor"));
    free (out);
    free (err);
    walcast_t *low = walcast_new ();
    assert_non_null (low);
    walcast_set_max_staleness (low, 1);
    assert_int_equal (walcast_max_staleness (low), 100);
    walcast_set_max_staleness (low, 0);
    assert_int_equal (walcast_max_staleness (low), 0);
    walcast_destroy (&low);
    //  Unbounded, the nearest (r1, direct) serves. A CLI run measures each
    //  node's RTT once: on a loaded machine one sample of r1 can come late
    //  enough to rank it behind r2 (20 ms), so a few runs may be needed
    const char *unbounded [] = { nodes [0], nodes [1], nodes [2], nodes [3], nodes [4],
                                 nodes [5], "-v", "get", "k", NULL };
    for (int attempt = 0; attempt < 5; attempt++) {
        assert_int_equal (cluster_cli_read (c, unbounded, got, sizeof got, id, sizeof id,
                                            NULL, 0), 0);
        if (strcmp (id, "r1") == 0)
            break;
        print_message ("unbounded read served by %s; again\n", id);
    }
    assert_string_equal (id, "r1");

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_staleness, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
