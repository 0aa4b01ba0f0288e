/*  test_cluster_latejoin.c - a replica that joins late gets the history.

    What a user relies on: a new replica added to a primary that already
    holds data fetches everything from the first entry and ends up with
    exactly what the primary holds, whatever the size of its entries.
    A replica reads the entries of a FETCH reply once when it has room
    for them, and twice (checked whole first) when the reply holds more
    than its room (node/replica.c, FETCH_KEEP_MAX): the second test's
    first reply is of that kind (tens of thousands of tiny entries), the
    replies after it of the first.
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

#define WRITES  20000
#define TINY    40000           /* 1-byte values: ~31 octets an entry */

static int
s_setup (void **state)
{
    *state = cluster_new ("latejoin");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

//  Keys 0 .. count-1 with the 1-byte value "t", through node i.
static int
s_load_tiny (cluster_t *c, int i, int count)
{
    walcast_t *client = cluster_client (c, i);
    if (!client)
        return -1;
    char key [32];
    int rc = 0;
    for (int n = 0; rc == 0 && n < count; n++) {
        cluster_key (n, key, sizeof key);
        rc = walcast_put_async (client, key, strlen (key), "t", 1, (uint64_t) n);
    }
    uint64_t acked = 0;
    if (rc == 0)
        rc = walcast_flush (client, NULL, &acked);
    if (rc == 0 && acked != (uint64_t) count)
        rc = -1;
    walcast_destroy (&client);
    return rc;
}

//  Key n of those s_load_tiny wrote reads "t" on node i.
static void
s_check_tiny (cluster_t *c, int i, int n)
{
    walcast_t *client = cluster_client (c, i);
    assert_non_null (client);
    char key [32];
    cluster_key (n, key, sizeof key);
    void *value = NULL;
    size_t len = 0;
    assert_int_equal (walcast_get (client, key, strlen (key), &value, &len, NULL), 0);
    assert_int_equal (len, 1);
    assert_memory_equal (value, "t", 1);
    free (value);
    walcast_destroy (&client);
}

//  A primary that took `tiny` writes of 1-byte values (keys 0 ..
//  tiny-1), then WRITES of 100-byte values over keys 0 .. WRITES-1; a
//  replica that joins after them fetches everything from seq 1 and
//  holds what the primary holds.
static void
s_latejoin (cluster_t *c, int tiny)
{
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    if (tiny > 0)
        assert_int_equal (s_load_tiny (c, p, tiny), 0);
    assert_int_equal (cluster_load (c, p, 0, WRITES, 1, NULL), 0);

    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, (uint64_t) (tiny + WRITES), 60000,
                                              NULL, NULL), 0);

    char line [512];
    unsigned long long from = 0, to = 0;
    assert_int_equal (cluster_log_find (c, r, "catch-up: from seq ", 0, 0,
                                        line, sizeof line), 0);
    print_message ("r1: %s\n", line);
    assert_int_equal (sscanf (line, "catch-up: from seq %llu to %llu", &from, &to), 2);
    assert_int_equal (from, 1);

    for (int n = 0; n < WRITES; n += WRITES / 10)
        assert_int_equal (cluster_check_key (c, r, n, 1), 0);
    assert_int_equal (cluster_check_key (c, r, WRITES - 1, 1), 0);
    for (int n = WRITES; n < tiny; n += (tiny - WRITES) / 10)
        s_check_tiny (c, r, n);

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

static void
test_latejoin (void **state)
{
    s_latejoin ((cluster_t *) *state, 0);
}

static void
test_latejoin_tiny_entries (void **state)
{
    s_latejoin ((cluster_t *) *state, TINY);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_latejoin, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_latejoin_tiny_entries, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
