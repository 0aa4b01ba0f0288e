/*  test_client_switchover.c - `walcast switchover NODE` (issue 7, the
    client's part).

    What an operator relies on:
    - `walcast --broker B switchover NODE` sends one SWITCHOVER(NODE) to
      the broker, waits for its answer (up to 30 s by default, as long
      as a hand-over takes) and prints `EPOCH HOST:PORT` of the new
      primary;
    - when the broker refuses (a node it does not know, one that cannot
      take over, a hand-over it cancelled), the command exits 3 with the
      broker's own words on stderr; when the broker does not answer in
      time it exits 3 and says the switchover may still complete;
    - without --broker it is a usage error (exit 2): only the broker
      can run it;
    - walcast_switchover gives the library the same.

    The broker is a fake (tests/fake.h); the nodes it lists are not
    needed to run, the broker speaks for them.
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
#include "fake.h"

typedef struct {
    cluster_t     *cluster;
    fake_broker_t *broker;
    char           broker_addr [32];
    char           r1_addr [64];
} s_world_t;

static int
s_setup (void **state)
{
    s_world_t *w = calloc (1, sizeof *w);
    *state = w;
    w->cluster = cluster_new ("client_switchover");
    if (!w->cluster)
        return 0;
    int port = cluster_spare_port (w->cluster);
    snprintf (w->broker_addr, sizeof w->broker_addr, "127.0.0.1:%d", port);
    w->broker = fake_broker_new (port);
    if (!w->broker)
        return 0;
    fake_broker_node_t nodes [2] = {
        { "p1", "", WC_ROLE_PRIMARY, 3, true, 0 },
        { "r1", "", WC_ROLE_REPLICA, 3, true, 0 },
    };
    snprintf (nodes [0].addr, sizeof nodes [0].addr, "127.0.0.1:%d", port + 3);
    snprintf (nodes [1].addr, sizeof nodes [1].addr, "127.0.0.1:%d", port + 6);
    snprintf (w->r1_addr, sizeof w->r1_addr, "%s", nodes [1].addr);
    fake_broker_set_nodes (w->broker, nodes, 2);
    return 0;
}

static int
s_teardown (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    fake_broker_destroy (&w->broker);
    cluster_destroy (&w->cluster);
    free (w);
    return 0;
}

static s_world_t *
s_world (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->broker)
        fail_msg ("the test could not be set up (see above)");
    return w;
}

static void
s_answer (s_world_t *w, int err, const char *text, int delay_ms)
{
    fake_broker_answer_t answer;
    memset (&answer, 0, sizeof answer);
    answer.err = err;
    snprintf (answer.text, sizeof answer.text, "%s", text);
    answer.delay_ms = delay_ms;
    fake_broker_set_answer (w->broker, &answer);
}

//  `walcast [--timeout MS] --broker B switchover node`: its exit code,
//  output in out / err (caller frees), and how long it took in *took.
static int
s_switchover (s_world_t *w, const char *timeout, const char *node, char **out,
              char **err, int64_t *took)
{
    int64_t started = cluster_now_ms ();
    int rc = timeout
           ? cluster_cli (w->cluster, NULL, out, err, "--broker", w->broker_addr,
                          "--timeout", timeout, "switchover", node, NULL)
           : cluster_cli (w->cluster, NULL, out, err, "--broker", w->broker_addr,
                          "switchover", node, NULL);
    *took = cluster_now_ms () - started;
    print_message ("switchover %s: exit %d in %lld ms, stdout '%s', stderr '%s'\n",
                   node, rc, (long long) *took, *out, *err);
    return rc;
}

static void
test_switchover_done (void **state)
{
    s_world_t *w = s_world (state);
    //  The hand-over takes a while: the command waits for it
    s_answer (w, 0, "", 1500);
    char *out, *err;
    int64_t took;
    assert_int_equal (s_switchover (w, NULL, "r1", &out, &err, &took), 0);
    char expect [80];
    snprintf (expect, sizeof expect, "4 %s\n", w->r1_addr);
    assert_string_equal (out, expect);
    assert_string_equal (err, "");
    assert_true (took >= 1500);
    char id [65];
    assert_int_equal (fake_broker_switchovers (w->broker, id, sizeof id), 1);
    assert_string_equal (id, "r1");
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

static void
test_switchover_refused (void **state)
{
    s_world_t *w = s_world (state);
    const struct {
        int         err;
        const char *text;
        const char *node;
        const char *expect;
    } cases [] = {
        { WALCAST_ENOTFOUND, "no node r9 in the directory", "r9",
          "walcast: switchover: no node r9 in the directory (ENOTFOUND); give the id "
          "of a node the broker lists" },
        { WALCAST_ECONFLICT, "r1 cannot take over: its log diverged", "r1",
          "walcast: switchover: r1 cannot take over: its log diverged (ECONFLICT)" },
        { WALCAST_ETIMEOUT, "r1 did not catch up within 10000 ms; cancelled", "r1",
          "walcast: switchover: r1 did not catch up within 10000 ms; cancelled "
          "(ETIMEOUT); see which node is the primary now" },
        //  refused at once: no longer --timeout would help
        { WALCAST_EUNAVAILABLE, "node r1 cannot take over: down", "r1",
          "walcast: switchover: node r1 cannot take over: down (EUNAVAILABLE); see "
          "which nodes are up and current (walcast --broker ... status), then try "
          "again\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_answer (w, cases [i].err, cases [i].text, 0);
        char *out, *err;
        int64_t took;
        assert_int_equal (s_switchover (w, NULL, cases [i].node, &out, &err, &took), 3);
        assert_string_equal (out, "");
        assert_non_null (strstr (err, cases [i].expect));
        free (out);
        free (err);
    }
    assert_int_equal (fake_broker_switchovers (w->broker, NULL, 0), 4);
    cluster_pass (w->cluster);
}

//  The broker does not answer: exit 3 once --timeout has passed, saying
//  the switchover may still complete; the request was sent once.
static void
test_switchover_silent (void **state)
{
    s_world_t *w = s_world (state);
    s_answer (w, 0, "", -1);
    char *out, *err;
    int64_t took;
    assert_int_equal (s_switchover (w, "700", "r1", &out, &err, &took), 3);
    assert_string_equal (out, "");
    assert_non_null (strstr (err, "walcast: switchover: the broker did not answer within "
                                  "700 ms; the switchover may still complete (ETIMEOUT)"));
    assert_true (took >= 700);
    assert_true (took < 5000);
    assert_int_equal (fake_broker_switchovers (w->broker, NULL, 0), 1);
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

static void
test_switchover_usage (void **state)
{
    s_world_t *w = s_world (state);
    char *out, *err;
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "--node", w->r1_addr,
                          "switchover", "r1", NULL);
    print_message ("switchover without --broker: exit %d, %s", rc, err);
    assert_int_equal (rc, 2);
    assert_non_null (strstr (err, "walcast: switchover needs --broker HOST:PORT"));
    free (out);
    free (err);
    rc = cluster_cli (w->cluster, NULL, &out, &err, "--broker", w->broker_addr,
                      "switchover", NULL);
    assert_int_equal (rc, 2);
    free (out);
    free (err);
    //  A NODE that cannot be a node id: a usage error that says why
    //  (it was exit 3, 'invalid argument')
    char long_id [80];
    memset (long_id, 'n', 65);
    long_id [65] = '\0';
    const char *bad [] = { "", long_id };
    for (int i = 0; i < 2; i++) {
        rc = cluster_cli (w->cluster, NULL, &out, &err, "--broker", w->broker_addr,
                          "switchover", bad [i], NULL);
        print_message ("switchover '%s': exit %d, %s", bad [i], rc, err);
        assert_int_equal (rc, 2);
        assert_non_null (strstr (err, "node ids are 1..64 bytes"));
        free (out);
        free (err);
    }
    assert_int_equal (fake_broker_switchovers (w->broker, NULL, 0), 0);
    cluster_pass (w->cluster);
}

static void
test_switchover_library (void **state)
{
    s_world_t *w = s_world (state);
    walcast_t *h = walcast_new ();
    assert_non_null (h);
    uint64_t epoch = 0;
    char addr [64];
    assert_int_equal (walcast_switchover (h, "r1", &epoch, addr, sizeof addr),
                      WALCAST_EINVAL);
    print_message ("without a broker: %s\n", walcast_last_detail (h));
    assert_non_null (strstr (walcast_last_detail (h), "walcast_connect_broker"));
    walcast_set_timeout (h, 2000);
    assert_int_equal (walcast_connect_broker (h, w->broker_addr), 0);
    assert_int_equal (walcast_switchover (h, "", &epoch, addr, sizeof addr),
                      WALCAST_EINVAL);
    assert_int_equal (walcast_switchover (h, "r1", &epoch, addr, sizeof addr), 0);
    assert_int_equal (epoch, 4);
    assert_string_equal (addr, w->r1_addr);
    //  Again: r1 is the primary of 4 now, so the broker's answer says 5
    assert_int_equal (walcast_switchover (h, "r1", NULL, NULL, 0), 0);
    s_answer (w, WALCAST_EBUSY, "a switchover to r1 is under way", 0);
    assert_int_equal (walcast_switchover (h, "r1", &epoch, addr, sizeof addr),
                      WALCAST_EBUSY);
    assert_string_equal (walcast_last_detail (h), "a switchover to r1 is under way");
    //  A bad id after that: its own detail, not the last call's
    char long_id [80];
    memset (long_id, 'n', 70);
    long_id [70] = '\0';
    assert_int_equal (walcast_switchover (h, long_id, &epoch, addr, sizeof addr),
                      WALCAST_EINVAL);
    print_message ("a 70-byte id: %s\n", walcast_last_detail (h));
    assert_non_null (strstr (walcast_last_detail (h), "ids are 1..64 bytes"));
    walcast_destroy (&h);

    //  A handle that knows no node: status and digest say so
    h = walcast_new ();
    assert_non_null (h);
    walcast_status_t status;
    assert_int_equal (walcast_status (h, &status), WALCAST_EUNAVAILABLE);
    assert_non_null (strstr (walcast_last_detail (h), "no node known"));
    uint64_t seq, hash;
    assert_int_equal (walcast_digest (h, &seq, &hash), WALCAST_EUNAVAILABLE);
    assert_non_null (strstr (walcast_last_detail (h), "no node known"));
    walcast_destroy (&h);
    cluster_pass (w->cluster);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_switchover_done, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_switchover_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_switchover_silent, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_switchover_usage, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_switchover_library, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
