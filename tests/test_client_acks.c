/*  test_client_acks.c - writes that ask for replicas' acknowledgements
    (issue 7, the client's part).

    What a user relies on:
    - `walcast put --acks N [--ack-timeout MS] KEY VALUE` sends N (a
      number, or `all`) and MS in the PUT; it prints the seq when the
      primary answers WRITE_OK, and when the primary answers
      ENOTREPLICATED it exits 3 and says on stderr that the write is
      durable on the primary but not confirmed replicated, and that
      sending it again is safe. It waits for the primary's ack timeout
      on top of --timeout, so a short --timeout does not turn that
      answer into "unknown".
    - `walcast load --acks N` asks the same for every line, and reports a
      line the replicas did not confirm as `unknown KEY: MESSAGE`, the
      message saying it is durable on the primary.
    - The library: walcast_set_acks for the handle (sync and async
      writes), walcast_put_ex / walcast_del_ex per call, the number of
      replicas that confirmed a write (result.acked, outcome.acked), and
      ENOTREPLICATED as its own outcome (WALCAST_WRITE_NOTREPLICATED),
      told apart from OK and FAILED. A node that ignores acks (older
      than them) is never taken for one that honoured them.

    The node is a fake (tests/fake.h) with a set number of replicas that
    confirm every write at once; a write asking for more is answered
    ENOTREPLICATED when its ack timeout has passed.
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
    cluster_t   *cluster;
    fake_node_t *node;
    char         addr [32];
} s_world_t;

static int
s_setup (void **state)
{
    s_world_t *w = calloc (1, sizeof *w);
    w->cluster = cluster_new ("client_acks");
    if (w->cluster) {
        int port = cluster_spare_port (w->cluster);
        snprintf (w->addr, sizeof w->addr, "127.0.0.1:%d", port);
        w->node = fake_node_new (port, "p1");
    }
    *state = w;
    return 0;
}

static int
s_teardown (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    fake_node_destroy (&w->node);
    cluster_destroy (&w->cluster);
    free (w);
    return 0;
}

static s_world_t *
s_world (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->node)
        fail_msg ("the test could not be set up (see above)");
    return w;
}

//  Give the fake node this many replicas (and whether it ignores acks).
static void
s_replicas (s_world_t *w, int replicas, bool ignore_acks)
{
    fake_node_conf_t conf;
    fake_node_conf (w->node, &conf);
    conf.replicas = replicas;
    conf.ignore_acks = ignore_acks;
    fake_node_set (w->node, &conf);
}

static fake_node_seen_t
s_seen (s_world_t *w)
{
    fake_node_seen_t seen;
    fake_node_seen (w->node, &seen);
    return seen;
}

//  How many lines of text start with prefix.
static int
s_count_lines (const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen (prefix);
    for (const char *line = text; line && *line; ) {
        if (strncmp (line, prefix, len) == 0)
            n++;
        line = strchr (line, '\n');
        if (line)
            line++;
    }
    return n;
}

//  Run the CLI with argv (NULL-terminated, after "--node ADDR") and
//  check its exit code; out and err are returned (caller frees).
static int
s_cli (s_world_t *w, const char *input, char **out, char **err, const char *const *argv)
{
    const char *args [16] = { "--node", w->addr };
    int n = 2;
    for (int i = 0; argv [i] && n < 15; i++)
        args [n++] = argv [i];
    args [n] = NULL;
    int rc = cluster_cli_argv (w->cluster, input, out, err, args);
    print_message ("walcast");
    for (int i = 0; args [i]; i++)
        print_message (" %s", args [i]);
    print_message (": exit %d, stdout '%s', stderr '%s'\n", rc, *out, *err);
    return rc;
}

static void
test_put_acks_cli (void **state)
{
    s_world_t *w = s_world (state);
    s_replicas (w, 1, false);
    char *out, *err;

    //  Enough replicas: the seq, as ever; the fields reach the wire
    const char *put1 [] = { "put", "--acks", "1", "k", "v", NULL };
    assert_int_equal (s_cli (w, NULL, &out, &err, put1), 0);
    assert_string_equal (out, "1\n");
    assert_int_equal (s_seen (w).last_acks, 1);
    assert_int_equal (s_seen (w).last_ack_timeout_ms, 0);
    free (out); free (err);
    const char *put_all [] = { "put", "--acks=all", "--ack-timeout", "1500", "k", "v", NULL };
    assert_int_equal (s_cli (w, NULL, &out, &err, put_all), 0);
    assert_string_equal (out, "2\n");
    assert_int_equal (s_seen (w).last_acks, 255);
    assert_int_equal (s_seen (w).last_ack_timeout_ms, 1500);
    free (out); free (err);
    const char *del1 [] = { "del", "--acks", "1", "k", NULL };
    assert_int_equal (s_cli (w, NULL, &out, &err, del1), 0);
    assert_string_equal (out, "3\n");
    assert_int_equal (s_seen (w).last_acks, 1);
    free (out); free (err);

    //  Not enough: exit 3, nothing on stdout, and the message says what
    //  happened to the write. A --timeout shorter than the ack timeout
    //  still gets the primary's answer, not a timeout.
    const char *put2 [] = { "--timeout", "300", "put", "--acks", "2", "--ack-timeout",
                            "1200", "k", "v", NULL };
    int64_t started = cluster_now_ms ();
    assert_int_equal (s_cli (w, NULL, &out, &err, put2), 3);
    int64_t took = cluster_now_ms () - started;
    assert_string_equal (out, "");
    assert_non_null (strstr (err, "walcast: put: the write is durable on the primary "
                                  "but not confirmed replicated (acked=1 of 2: "));
    assert_non_null (strstr (err, "sending it again is safe"));
    assert_true (took >= 1100);
    free (out); free (err);

    //  A key that starts with "--" is still a key (options come before it)
    const char *dashed [] = { "put", "--acks", "v", NULL };
    assert_int_equal (s_cli (w, NULL, &out, &err, dashed), 0);
    assert_int_equal (s_seen (w).last_acks, 0);
    free (out); free (err);
    cluster_pass (w->cluster);
}

static void
test_put_acks_usage (void **state)
{
    s_world_t *w = s_world (state);
    const char *bad [][8] = {
        { "put", "--acks", "255", "k", "v", NULL },
        { "put", "--acks", "x", "k", "v", NULL },
        { "put", "--acks", "-1", "k", "v", NULL },
        { "put", "--ack-timeout", "50", "k", "v", NULL },
        { "put", "--acks", "1", "--ack-timeout", "60001", "k", "v" },
        { "put", "--acks", "1", "k", NULL },
        { "put", "--ackz", "1", "k", "v", NULL },
        { "load", "--acks", NULL },
        { "put", "", "v", NULL },
        { "del", "--acks", "1", "", NULL },
        { "get", "", NULL },
    };
    const char *why [] = { "--acks: expected", "--acks: expected", "--acks: expected",
                           "--ack-timeout needs --acks", "--ack-timeout: expected",
                           "expected [--acks N]", "unknown option '--ackz'",
                           "--acks needs a value", "put: KEY is empty",
                           "del: KEY is empty", "get: KEY is empty" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        const char *argv [9];
        memcpy (argv, bad [i], sizeof bad [i]);
        argv [8] = NULL;
        char *out, *err;
        assert_int_equal (s_cli (w, NULL, &out, &err, argv), 2);
        assert_non_null (strstr (err, why [i]));
        free (out); free (err);
    }
    //  A key over the protocol's 1024 bytes is the user's mistake too
    static char long_key [1026];
    memset (long_key, 'k', 1025);
    const char *too_long [][4] = {
        { "put", long_key, "v", NULL }, { "get", long_key, NULL }, { "del", long_key, NULL },
    };
    for (size_t i = 0; i < sizeof too_long / sizeof too_long [0]; i++) {
        char *out, *err;
        assert_int_equal (s_cli (w, NULL, &out, &err, too_long [i]), 2);
        assert_non_null (strstr (err, "KEY is 1025 bytes; keys are 1..1024 bytes"));
        free (out); free (err);
    }
    assert_int_equal (s_seen (w).writes, 0);
    cluster_pass (w->cluster);
}

static void
test_load_acks_cli (void **state)
{
    s_world_t *w = s_world (state);
    s_replicas (w, 1, false);
    char *out, *err;
    const char *load1 [] = { "load", "--acks", "1", NULL };
    assert_int_equal (s_cli (w, "a 1\nb 2\nc 3\n", &out, &err, load1), 0);
    assert_string_equal (out, "3 3\n");
    assert_int_equal (s_seen (w).last_acks, 1);
    free (out); free (err);

    //  Two replicas asked, one confirms: every line is unknown, and says
    //  why; no line counts as landed
    const char *load2 [] = { "--timeout", "500", "load", "--acks", "2", "--ack-timeout",
                             "200", NULL };
    assert_int_equal (s_cli (w, "a 1\nb 2\nc 3\n", &out, &err, load2), 3);
    assert_string_equal (out, "0 0\n");
    assert_int_equal (s_count_lines (err, "unknown "), 3);
    assert_int_equal (s_count_lines (err, "unknown b: durable on the primary, but fewer "
                                          "replicas than asked confirmed it in time: "
                                          "acked=1 of 2"), 1);
    assert_non_null (strstr (err, "resubmitting exactly those lines, in their order, "
                                  "is safe"));
    assert_int_equal (s_seen (w).writes, 6);
    assert_int_equal (s_seen (w).last_ack_timeout_ms, 200);
    free (out); free (err);
    cluster_pass (w->cluster);
}

/* --- the library -------------------------------------------------------- */

/*  What the outcome function was handed. */
typedef struct {
    int           count;
    int           state [8];
    int           err [8];
    uint32_t      acked [8];
    walcast_pos_t pos [8];
    char          detail [8][256];
} s_seen_t;

static void
s_on_outcome (void *arg, const walcast_outcome_t *o)
{
    s_seen_t *seen = (s_seen_t *) arg;
    if (seen->count == 8)
        return;
    int i = seen->count++;
    seen->state [i] = o->state;
    seen->err [i] = o->err;
    seen->acked [i] = o->acked;
    seen->pos [i] = o->pos;
    snprintf (seen->detail [i], sizeof seen->detail [i], "%s", o->detail);
}

static walcast_t *
s_client (s_world_t *w, int timeout_ms, s_seen_t *seen)
{
    walcast_t *h = walcast_new ();
    assert_non_null (h);
    walcast_set_timeout (h, timeout_ms);
    assert_int_equal (walcast_connect (h, w->addr), 0);
    walcast_set_outcome_fn (h, s_on_outcome, seen);
    return h;
}

static void
test_library_sync (void **state)
{
    s_world_t *w = s_world (state);
    s_replicas (w, 1, false);
    walcast_t *h = s_client (w, 1000, NULL);

    assert_int_equal (walcast_set_acks (h, 300, 0), WALCAST_EINVAL);
    assert_int_equal (walcast_set_acks (h, -1, 0), WALCAST_EINVAL);
    assert_int_equal (walcast_set_acks (h, 1, 60001), WALCAST_EINVAL);
    assert_int_equal (walcast_set_acks (h, 1, -5), WALCAST_EINVAL);
    walcast_write_opts_t bad = { 256, 0 };
    assert_int_equal (walcast_put_ex (h, "k", 1, "v", 1, &bad, NULL), WALCAST_EINVAL);
    assert_int_equal (s_seen (w).writes, 0);

    //  Per call
    walcast_write_opts_t one = { 1, 0 };
    walcast_write_result_t r;
    assert_int_equal (walcast_put_ex (h, "k", 1, "v", 1, &one, &r), 0);
    assert_int_equal (r.pos.seq, 1);
    assert_int_equal (r.pos.epoch, 1);
    assert_int_equal (r.acked, 1);
    walcast_write_opts_t two = { 2, 300 };
    memset (&r, 0xff, sizeof r);
    assert_int_equal (walcast_put_ex (h, "k", 1, "v", 1, &two, &r), WALCAST_ENOTREPLICATED);
    assert_string_equal (walcast_last_detail (h), "acked=1 of 2");
    assert_int_equal (r.acked, 1);
    assert_int_equal (r.pos.seq, 0);
    assert_int_equal (s_seen (w).last_ack_timeout_ms, 300);
    assert_int_equal (walcast_del_ex (h, "k", 1, &one, &r), 0);
    assert_int_equal (r.pos.seq, 3);

    //  Per handle: walcast_put and walcast_del ask for what it says;
    //  opts NULL too
    assert_int_equal (walcast_set_acks (h, WALCAST_ACKS_ALL, 700), 0);
    walcast_pos_t pos;
    assert_int_equal (walcast_put (h, "k", 1, "v", 1, &pos), 0);
    assert_int_equal (pos.seq, 4);
    assert_int_equal (s_seen (w).last_acks, 255);
    assert_int_equal (s_seen (w).last_ack_timeout_ms, 700);
    assert_int_equal (walcast_set_acks (h, 2, 200), 0);
    assert_int_equal (walcast_del (h, "k", 1, &pos), WALCAST_ENOTREPLICATED);
    assert_int_equal (walcast_put_ex (h, "k", 1, "v", 1, NULL, &r), WALCAST_ENOTREPLICATED);
    assert_int_equal (s_seen (w).last_acks, 2);

    //  A node that ignores acks answers WRITE_OK without acked: not
    //  replicated as asked, though its position is known
    s_replicas (w, 1, true);
    assert_int_equal (walcast_put_ex (h, "k", 1, "v", 1, &one, &r), WALCAST_ENOTREPLICATED);
    print_message ("a node that ignores acks: %s\n", walcast_last_detail (h));
    assert_non_null (strstr (walcast_last_detail (h), "acked=0 of 1"));
    assert_int_equal (r.pos.seq, s_seen (w).seq);
    assert_int_equal (r.acked, 0);
    walcast_write_opts_t none = { 0, 0 };
    assert_int_equal (walcast_put_ex (h, "k", 1, "v", 1, &none, &r), 0);
    walcast_destroy (&h);
    cluster_pass (w->cluster);
}

static void
test_library_async (void **state)
{
    s_world_t *w = s_world (state);
    s_replicas (w, 1, false);
    s_seen_t *seen = calloc (1, sizeof *seen);
    //  A timeout shorter than the ack timeout: the outcome is still the
    //  primary's answer, not "unknown"
    walcast_t *h = s_client (w, 300, seen);
    assert_int_equal (walcast_set_acks (h, 1, 0), 0);
    assert_int_equal (walcast_put_async (h, "a", 1, "1", 1, 1), 0);
    assert_int_equal (walcast_set_acks (h, 2, 1000), 0);
    assert_int_equal (walcast_put_async (h, "b", 1, "2", 1, 2), 0);
    assert_int_equal (walcast_set_acks (h, 0, 0), 0);
    assert_int_equal (walcast_del_async (h, "c", 1, 3), 0);
    walcast_pos_t last;
    uint64_t acked = 0;
    int64_t started = cluster_now_ms ();
    assert_int_equal (walcast_flush (h, &last, &acked), WALCAST_ENOTREPLICATED);
    print_message ("flush took %lld ms\n", (long long) (cluster_now_ms () - started));
    assert_string_equal (walcast_last_detail (h), "acked=1 of 2");
    assert_int_equal (acked, 2);
    assert_int_equal (last.seq, 3);
    assert_int_equal (seen->count, 3);
    assert_int_equal (seen->state [0], WALCAST_WRITE_OK);
    assert_int_equal (seen->acked [0], 1);
    assert_int_equal (seen->state [1], WALCAST_WRITE_NOTREPLICATED);
    assert_int_equal (seen->err [1], WALCAST_ENOTREPLICATED);
    assert_int_equal (seen->acked [1], 1);
    assert_string_equal (seen->detail [1], "acked=1 of 2");
    assert_int_equal (seen->state [2], WALCAST_WRITE_OK);
    assert_int_equal (seen->acked [2], 0);

    //  A node that ignores acks: NOTREPLICATED, with the position it gave
    seen->count = 0;
    s_replicas (w, 1, true);
    assert_int_equal (walcast_set_acks (h, WALCAST_ACKS_ALL, 0), 0);
    assert_int_equal (walcast_put_async (h, "d", 1, "4", 1, 4), 0);
    assert_int_equal (walcast_flush (h, NULL, &acked), WALCAST_ENOTREPLICATED);
    assert_int_equal (seen->count, 1);
    assert_int_equal (seen->state [0], WALCAST_WRITE_NOTREPLICATED);
    assert_int_equal (seen->pos [0].seq, 4);
    assert_non_null (strstr (seen->detail [0], "acked=0 of all"));
    walcast_destroy (&h);
    free (seen);
    cluster_pass (w->cluster);
}

//  A batch that asks for every current replica (WC_ACKS_ALL) and is
//  confirmed by fewer than the primary waited for is not replicated:
//  WRITES_OK says how many it waited for, and the client compares.
static void
test_batch_acks_all (void **state)
{
    s_world_t *w = s_world (state);
    fake_node_conf_t conf;
    fake_node_conf (w->node, &conf);
    conf.replicas = 1;                  //  one confirms ...
    conf.current = 2;                   //  ... of the two it waits for
    conf.ignore_acks = false;
    fake_node_set (w->node, &conf);
    s_seen_t *seen = calloc (1, sizeof *seen);
    walcast_t *h = s_client (w, 3000, seen);
    assert_int_equal (walcast_set_acks (h, WALCAST_ACKS_ALL, 200), 0);
    assert_int_equal (walcast_put_async (h, "a", 1, "1", 1, 1), 0);
    assert_int_equal (walcast_put_async (h, "b", 1, "2", 1, 2), 0);
    assert_int_equal (walcast_flush (h, NULL, NULL), WALCAST_ENOTREPLICATED);
    assert_int_equal (seen->count, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal (seen->state [i], WALCAST_WRITE_NOTREPLICATED);
        assert_int_equal (seen->acked [i], 1);
        assert_string_equal (seen->detail [i], "acked=1 of 2");
    }
    //  All it waited for confirmed: OK
    conf.replicas = 2;
    fake_node_set (w->node, &conf);
    seen->count = 0;
    assert_int_equal (walcast_put_async (h, "c", 1, "3", 1, 3), 0);
    assert_int_equal (walcast_flush (h, NULL, NULL), 0);
    assert_int_equal (seen->state [0], WALCAST_WRITE_OK);
    walcast_destroy (&h);
    free (seen);
    cluster_pass (w->cluster);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_put_acks_cli, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_put_acks_usage, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_load_acks_cli, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_library_sync, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_library_async, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_batch_acks_all, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
