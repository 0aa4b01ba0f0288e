/*  test_client_status_watch.c - `walcast status --watch` (issue 10).

    What a user relies on: `walcast --broker B status --watch` prints the
    cluster's table again and again until Ctrl-C (SIGTERM/SIGINT: exit 0)
    or --count tables; piped, each table comes after a "time ..." line and
    no terminal escapes, so a script can read it; a node killed with
    SIGKILL shows as down in a later table without restarting the watch;
    bad options are usage errors (exit 2).

    Real broker and nodes on loopback (tests/cluster.h).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cluster.h"

#define NODE_TIMEOUT_MS  1000

/*  Poll until the broker lists count nodes (20 s); 0 or -1. */
static int
s_wait_registered (cluster_t *c, size_t count)
{
    int64_t deadline = cluster_now_ms () + 20000;
    walcast_t *h = cluster_broker_client (c, 1000);
    while (h && cluster_now_ms () < deadline) {
        walcast_node_info_t nodes [4];
        size_t n = 0;
        if (walcast_nodes (h, nodes, 4, &n) == 0 && n == count) {
            walcast_destroy (&h);
            return 0;
        }
        cluster_nap_ms (50);
    }
    walcast_destroy (&h);
    fprintf (stderr, "test: the broker never listed %zu nodes\n", count);
    return -1;
}

static int
s_setup (void **state)
{
    cluster_t *c = cluster_new ("client_status_watch");
    *state = c;
    if (!c)
        return 0;
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    cluster_set_broker (c, p, true);
    cluster_set_broker (c, r, true);
    if (cluster_broker_start (c, NODE_TIMEOUT_MS) != 0
    ||  cluster_start (c, p) != 0 || cluster_start (c, r) != 0
    ||  cluster_wait_ready (c, p, 20000) != 0 || cluster_wait_ready (c, r, 20000) != 0
    ||  s_wait_registered (c, 2) != 0)
        cluster_destroy ((cluster_t **) state);
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_destroy ((cluster_t **) state);
    return 0;
}

/*  Occurrences of needle in text. */
static int
s_count (const char *text, const char *needle)
{
    int n = 0;
    for (const char *at = text; (at = strstr (at, needle)); at += strlen (needle))
        n++;
    return n;
}

/*  The last table of a watch's output (after its last "time " line). */
static const char *
s_last_table (const char *out)
{
    const char *last = NULL;
    for (const char *at = out; (at = strstr (at, "time ")); at++)
        if (at == out || at [-1] == '\n')
            last = at;
    return last;
}

/*  The line of the last table that starts with id, copied to line. */
static bool
s_row (const char *out, const char *id, char *line, size_t size)
{
    const char *table = s_last_table (out);
    for (const char *at = table; at && (at = strstr (at, "\n")); ) {
        at++;
        if (strncmp (at, id, strlen (id)) == 0 && at [strlen (id)] == ' ') {
            size_t len = strcspn (at, "\n");
            if (at [len] != '\n')
                return false;               /* not written whole yet */
            snprintf (line, size, "%.*s", (int) len, at);
            return true;
        }
    }
    return false;
}

static void
test_count_tables_piped (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                          "status", "--watch", "--interval", "100", "--count", "3", NULL);
    if (rc != 0)
        fail_msg ("status --watch --count 3: exit %d: %s", rc, err);
    assert_int_equal (s_count (out, "time "), 3);
    assert_int_equal (s_count (out, "ID "), 3);
    assert_int_equal (s_count (out, "\np1 "), 3);
    assert_int_equal (s_count (out, "\nr1 "), 3);
    assert_int_equal (s_count (out, "(every 100 ms)"), 3);
    assert_null (strchr (out, '\033'));         /* piped: no escapes */
    free (out);
    free (err);

    //  Usage errors
    const char *bad [][4] = {
        { "--interval", "5", NULL, NULL },         /* below 100 ms */
        { "--watch", "--count", "0", NULL },
        { "--watch", "--interval", NULL, NULL },
        { "--watch", "--bogus", NULL, NULL },
        { "--count", "2", NULL, NULL },            /* without --watch */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad [0]; k++) {
        const char *args [8] = { "--broker", cluster_broker_addr (c), "status" };
        for (int a = 0; a < 4 && bad [k][a]; a++)
            args [3 + a] = bad [k][a];
        rc = cluster_cli_argv (c, NULL, &out, &err, args);
        assert_int_equal (rc, 2);
        assert_non_null (strstr (err, "status"));
        free (out);
        free (err);
    }
}

/*  Poll the watch's output until its last table shows node id in state
    ("up" or "down"), the row copied to line; fails after timeout_ms. */
static void
s_wait_state (cluster_t *c, int watch, const char *id, const char *state, int timeout_ms,
              char *line, size_t size)
{
    char want [16];
    snprintf (want, sizeof want, " %s", state);
    line [0] = 0;
    int64_t deadline = cluster_now_ms () + timeout_ms;
    for (bool seen = false; !seen; ) {
        char *out = cluster_proc_output (c, watch);
        seen = out && s_row (out, id, line, size) && strstr (line, want);
        free (out);
        if (cluster_now_ms () > deadline)
            fail_msg ("the watch never showed %s %s (last row: %s)", id, state, line);
        if (!seen)
            cluster_nap_ms (50);
    }
}

/*  A watch left running sees a replica go down, and ends with exit 0 on
    SIGTERM. */
static void
test_watch_sees_a_node_die (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int watch = cluster_cli_spawn (c, "--broker", cluster_broker_addr (c), "status",
                                   "--watch", "--interval", "100", NULL);
    assert_true (watch >= 0);
    char line [512];
    s_wait_state (c, watch, "r1", "up", 10000, line, sizeof line);
    assert_int_equal (cluster_kill (c, 1), 0);
    int64_t killed = cluster_now_ms ();
    s_wait_state (c, watch, "r1", "down", 15000, line, sizeof line);
    print_message ("r1 shown down %lld ms after SIGKILL: %s\n",
                   (long long) (cluster_now_ms () - killed), line);
    assert_true (cluster_proc_running (c, watch));
    assert_int_equal (cluster_proc_stop (c, watch, 5000), 0);
    cluster_pass (c);
}

/*  A watch left running keeps nothing a restarted broker no longer lists:
    r1, dead and listed down, is forgotten by a broker restarted without
    its state, and drops out of the watch's table as it would from a
    fresh status. Before, the watch showed it down for as long as it ran
    (a helper). (It runs after r1 was killed.) */
static void
test_watch_forgets_what_the_broker_forgot (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int watch = cluster_cli_spawn (c, "--broker", cluster_broker_addr (c), "status",
                                   "--watch", "--interval", "100", NULL);
    assert_true (watch >= 0);
    char line [512];
    s_wait_state (c, watch, "r1", "down", 10000, line, sizeof line);
    assert_int_equal (cluster_broker_kill (c), 0);
    assert_int_equal (cluster_broker_start (c, NODE_TIMEOUT_MS), 0);
    int64_t deadline = cluster_now_ms () + 15000;
    for (bool gone = false; !gone; ) {
        char *out = cluster_proc_output (c, watch);
        char p1 [512];
        gone = out && s_row (out, "p1", p1, sizeof p1) && strstr (p1, " up")
            && !s_row (out, "r1", line, sizeof line);
        free (out);
        if (cluster_now_ms () > deadline)
            fail_msg ("the watch still shows r1 (%s)", line);
        if (!gone)
            cluster_nap_ms (50);
    }
    assert_true (cluster_proc_running (c, watch));
    assert_int_equal (cluster_proc_stop (c, watch, 5000), 0);
    cluster_pass (c);
}

/*  Poll (15 s) until the watch's stderr holds both needles, and return it
    (malloc'd); fail with what, and the stderr, if it does not, or if the
    watch exits first. */
static char *
s_wait_errors (cluster_t *c, int watch, const char *needle, const char *also,
               const char *what)
{
    int64_t deadline = cluster_now_ms () + 15000;
    char *err = NULL;
    for (bool told = false; !told; ) {
        free (err);
        err = cluster_proc_errors (c, watch);
        told = strstr (err, needle) && strstr (err, also);
        if (!told && (cluster_now_ms () > deadline || !cluster_proc_running (c, watch)))
            fail_msg ("%s (stderr: %s)", what, err);
        if (!told)
            cluster_nap_ms (50);
    }
    return err;
}

/*  A watch left running whose broker is killed says so on stderr, at
    each refresh that cannot reach it, and goes on (its nodes still
    answer). Before, it kept printing the last topology without a word.
    (It runs after r1 was killed: p1 is the node still up.) */
static void
test_watch_sees_the_broker_die (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int watch = cluster_cli_spawn (c, "--broker", cluster_broker_addr (c), "status",
                                   "--watch", "--interval", "100", NULL);
    assert_true (watch >= 0);
    char line [512];
    s_wait_state (c, watch, "p1", "up", 10000, line, sizeof line);
    assert_int_equal (cluster_broker_kill (c), 0);
    char *err = s_wait_errors (c, watch, "the broker at ", " did not answer",
                               "the watch never said the broker is gone");
    print_message ("stderr: %s", err);
    free (err);
    assert_true (cluster_proc_running (c, watch));
    assert_int_equal (cluster_proc_stop (c, watch, 5000), 0);
    cluster_pass (c);
}

//  A watch started while the broker is down (restarting, say) does not
//  give up: it says so, goes on, and shows the nodes once the broker is
//  back (it exited 3 at start, a helper found). Until then it does not
//  speak of a last topology it never had (an operator's find). Runs after
//  test_watch_sees_the_broker_die, which leaves the broker dead.
static void
test_watch_starts_before_the_broker (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    cluster_broker_kill (c);                /* (dead already, normally) */
    int watch = cluster_cli_spawn (c, "--broker", cluster_broker_addr (c), "--timeout",
                                   "500", "status", "--watch", "--interval", "100", NULL);
    assert_true (watch >= 0);
    //  Its tables say the broker did not answer, and claim no last
    //  topology: it never sent one (they did, next to "no node known")
    char *err = s_wait_errors (c, watch, "the watch goes on", "no topology from it yet",
                               "the watch did not say the broker never answered");
    print_message ("stderr: %s", err);
    assert_null (strstr (err, "last topology"));
    assert_non_null (strstr (err, "no node known"));
    free (err);
    assert_int_equal (cluster_broker_start (c, NODE_TIMEOUT_MS), 0);
    char line [512];
    s_wait_state (c, watch, "p1", "up", 20000, line, sizeof line);
    print_message ("once the broker is back: %s\n", line);
    assert_int_equal (cluster_proc_stop (c, watch, 5000), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_count_tables_piped),
        cmocka_unit_test (test_watch_sees_a_node_die),
        cmocka_unit_test (test_watch_forgets_what_the_broker_forgot),
        cmocka_unit_test (test_watch_sees_the_broker_die),
        cmocka_unit_test (test_watch_starts_before_the_broker),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
