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

static void
test_waits_for_primary (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    assert_int_equal (cluster_broker_start (c, 0), 0);
    int p = cluster_add (c, "p1", NULL, NULL);
    cluster_set_broker (c, p, true);

    //  The client first, then the node, as when a script starts everything
    //  at once (both from this thread: a fork from a second thread of a
    //  process under ASan can hang its child before it runs the binary)
    int64_t started = cluster_now_ms ();
    int put = cluster_cli_spawn (c, "--broker", cluster_broker_addr (c),
                                 "--timeout", "15000", "put", "k", "v", NULL);
    assert_true (put >= 0);
    assert_int_equal (cluster_start (c, p), 0);
    int rc = cluster_proc_wait (c, put, 30000);
    int64_t took = cluster_now_ms () - started;
    char *out = cluster_proc_output (c, put);
    print_message ("put with the node started after the client: exit %d in %lld ms, "
                   "stdout %s\n", rc, (long long) took, out);
    assert_int_equal (rc, 0);
    assert_string_equal (out, "1\n");
    free (out);
    char *err = NULL;

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
