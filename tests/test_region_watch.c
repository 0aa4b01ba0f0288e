/*  test_region_watch.c - `walcast watch PREFIX` is a change feed.

    What a user relies on: a running `walcast watch user:` prints one line
    per change to a user:* key as it is published ("SEQ put KEY VALUE",
    "SEQ del KEY"), in order, with the seq the write was given, and
    nothing for other keys; line by line, so a pipe sees each change at
    once. Watched on the primary and on a replica (which republishes its
    stream), the feed is the same.
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
    *state = cluster_new ("region_watch");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

static uint64_t
s_put (walcast_t *h, const char *key, const char *value)
{
    walcast_pos_t pos;
    assert_int_equal (walcast_put (h, key, strlen (key), value, strlen (value), &pos), 0);
    return pos.seq;
}

static uint64_t
s_del (walcast_t *h, const char *key)
{
    walcast_pos_t pos;
    assert_int_equal (walcast_del (h, key, strlen (key), &pos), 0);
    return pos.seq;
}

//  Poll the watcher's output until it contains needle; 0 or -1.
static int
s_wait_output (cluster_t *c, int proc, const char *needle, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (true) {
        char *out = cluster_proc_output (c, proc);
        bool found = strstr (out, needle) != NULL;
        if (found || cluster_now_ms () > deadline) {
            if (!found)
                fprintf (stderr, "watch output has no \"%s\" after %d ms:\n%s\n", needle,
                         timeout_ms, out);
            free (out);
            return found ? 0 : -1;
        }
        free (out);
        cluster_nap_ms (10);
    }
}

static void
test_watch (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    walcast_t *h = cluster_client (c, p);
    assert_non_null (h);
    //  Written before the watch, and applied by both nodes before it
    //  starts (a replica publishes what it applies, when it applies it):
    //  neither watcher may show it
    uint64_t before = s_put (h, "user:0", "before");
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, (int) before, 30000,
                                              NULL, NULL), 0);

    int watchers [2];
    watchers [0] = cluster_cli_spawn (c, "--node", cluster_addr (c, p), "watch", "user:",
                                      NULL);
    watchers [1] = cluster_cli_spawn (c, "--node", cluster_addr (c, r), "watch", "user:",
                                      NULL);
    assert_true (watchers [0] >= 0 && watchers [1] >= 0);

    //  A subscription takes a moment to reach the publisher: write
    //  markers until both watchers print one
    int64_t deadline = cluster_now_ms () + 10000;
    uint64_t sync_seq = 0;
    int marker = 0;
    while (true) {
        char key [32];
        snprintf (key, sizeof key, "user:sync%d", marker++);
        sync_seq = s_put (h, key, "x");
        cluster_nap_ms (50);
        char *out0 = cluster_proc_output (c, watchers [0]);
        char *out1 = cluster_proc_output (c, watchers [1]);
        bool both = strstr (out0, "put user:sync") && strstr (out1, "put user:sync");
        free (out0);
        free (out1);
        if (both)
            break;
        assert_true (cluster_proc_running (c, watchers [0]));
        assert_true (cluster_proc_running (c, watchers [1]));
        assert_true (cluster_now_ms () < deadline);
    }
    //  Both have seen the last marker before the changes we check
    char needle [64];
    snprintf (needle, sizeof needle, "%llu put user:sync%d x",
              (unsigned long long) sync_seq, marker - 1);
    for (int w = 0; w < 2; w++)
        assert_int_equal (s_wait_output (c, watchers [w], needle, 5000), 0);

    char expect [512];
    uint64_t s1 = s_put (h, "user:1", "Alice");
    s_put (h, "order:7", "ignored");
    uint64_t s2 = s_put (h, "user:2", "Bob Smith");
    s_put (h, "users", "not under the prefix either");
    uint64_t s3 = s_del (h, "user:1");
    s_del (h, "order:7");
    uint64_t s4 = s_put (h, "user:end", "1");
    snprintf (expect, sizeof expect,
              "%llu put user:1 Alice\n"
              "%llu put user:2 Bob Smith\n"
              "%llu del user:1\n"
              "%llu put user:end 1\n",
              (unsigned long long) s1, (unsigned long long) s2,
              (unsigned long long) s3, (unsigned long long) s4);
    for (int w = 0; w < 2; w++) {
        assert_int_equal (s_wait_output (c, watchers [w], "put user:end 1\n", 5000), 0);
        char *out = cluster_proc_output (c, watchers [w]);
        const char *after = strstr (out, needle);
        assert_non_null (after);
        after += strcspn (after, "\n");
        if (*after)
            after++;
        if (strcmp (after, expect) != 0)
            fprintf (stderr, "watcher on %s printed, after the marker:\n%s"
                     "expected:\n%s", w ? "r1" : "p1", after, expect);
        assert_string_equal (after, expect);
        assert_null (strstr (out, "user:0"));
        assert_null (strstr (out, "order:"));
        free (out);
    }
    print_message ("both watchers printed:\n%s", expect);
    walcast_destroy (&h);

    //  The watchers end on SIGTERM (how they end is theirs to choose)
    for (int w = 0; w < 2; w++)
        cluster_proc_stop (c, watchers [w], 5000);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_watch, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
