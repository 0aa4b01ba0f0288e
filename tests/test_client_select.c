/*  test_client_select.c - server selection waits for a suitable node
    (issue 6, defect 9).

    What a user relies on: a client started together with the cluster
    (`walcast --broker B put k v` right after the nodes start, before the
    broker has heard a primary) waits, within its timeout, until the
    broker knows a primary, as MongoDB drivers do with
    serverSelectionTimeoutMS; and when the timeout runs out with none,
    the error says what was missing and what the broker knows ("no
    primary known after 1500 ms: the broker lists 0 nodes up"), after
    the timeout, not at once.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>
#include "cluster.h"

static int
s_setup (void **state)
{
    *state = cluster_new ("client_select");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

typedef struct {
    cluster_t *cluster;
    int        node;
    int        rc;
} s_starter_t;

//  Start the node a moment after the client: the client is up first,
//  as when a script starts everything at once.
static void *
s_start_later (void *arg)
{
    s_starter_t *starter = (s_starter_t *) arg;
    cluster_nap_ms (300);
    starter->rc = cluster_start (starter->cluster, starter->node);
    return NULL;
}

static void
test_waits_for_primary (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    assert_int_equal (cluster_broker_start (c, 0), 0);
    int p = cluster_add (c, "p1", NULL, NULL);
    cluster_set_broker (c, p, true);

    s_starter_t starter = { c, p, -1 };
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_start_later, &starter), 0);
    int64_t started = cluster_now_ms ();
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                          "--timeout", "15000", "put", "k", "v", NULL);
    int64_t took = cluster_now_ms () - started;
    pthread_join (thread, NULL);
    assert_int_equal (starter.rc, 0);
    print_message ("put with the node started after the client: exit %d in %lld ms, "
                   "stdout %s stderr %s\n", rc, (long long) took, out, err);
    assert_int_equal (rc, 0);
    assert_string_equal (out, "1\n");
    free (out);
    free (err);

    //  A read started with the cluster waits the same way (the node is
    //  known now; this one just must not fail)
    rc = cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                      "get", "k", NULL);
    assert_int_equal (rc, 0);
    assert_string_equal (out, "v\n");
    free (out);
    free (err);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  Run the CLI against a broker that knows no node; it must fail after
//  its timeout (not before), with the message expect.
static void
s_fails_after_timeout (cluster_t *c, const char *cmd, const char *key,
                       const char *value, const char *expect)
{
    int64_t started = cluster_now_ms ();
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                          "--timeout", "1500", cmd, key, value, NULL);
    int64_t took = cluster_now_ms () - started;
    print_message ("%s with no node: exit %d in %lld ms: %s", cmd, rc,
                   (long long) took, err);
    assert_int_equal (rc, 3);
    assert_non_null (strstr (err, expect));
    assert_true (took >= 1400);
    assert_true (took < 6000);
    free (out);
    free (err);
}

static void
test_says_what_is_missing (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    assert_int_equal (cluster_broker_start (c, 0), 0);
    s_fails_after_timeout (c, "put", "k", "v",
                           "no primary known after 1500 ms: the broker lists 0 nodes up");
    s_fails_after_timeout (c, "get", "k", NULL,
                           "no node known after 1500 ms: the broker lists 0 nodes up");
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_waits_for_primary, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_says_what_is_missing, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
