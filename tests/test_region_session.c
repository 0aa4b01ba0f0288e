/*  test_region_session.c - read-your-writes through a replica that lags.

    What a user relies on: with session consistency (the default), a
    handle that writes and then reads sees its write, even when the node
    it reads from is the nearest replica and that replica's stream runs
    behind: the replica waits for the write, or the handle asks another
    node. With eventual consistency the same read may return the old
    value (which shows the test can fail). And a second process that
    passes the seq of a write as --min-seq reads that write too. Across
    a history a failover rolled back, a session never reads back into it,
    and one whose own write was rolled back is told so once.

    Layout: primary p1, which clients reach through a 20 ms proxy (RTT
    40 ms). Replica r1 follows p1 through a 100 ms proxy, so its stream
    is 100 ms late; clients reach r1 directly (RTT ~0: it is nearest).
    Replica r2 follows p1 through a proxy without delay, which the test
    freezes (SIGSTOP) to hold r2 behind for as long as the --min-seq
    check from separate processes takes.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <signal.h>
#include "cluster.h"

#define ROUNDS  20          /* writes then reads, per session phase */

static int
s_setup (void **state)
{
    *state = cluster_new ("region_session");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

//  Write key = value on h; returns the seq.
static uint64_t
s_put (walcast_t *h, const char *key, const char *value)
{
    walcast_pos_t pos = { 0, 0 };
    int rc = walcast_put (h, key, strlen (key), value, strlen (value), &pos);
    if (rc != 0)
        fprintf (stderr, "put %s: %s (%s)\n", key, walcast_errname (rc),
                 walcast_last_detail (h));
    assert_int_equal (rc, 0);
    return pos.seq;
}

//  Read key on h into buf (NUL-terminated); fills served.
static void
s_get (walcast_t *h, const char *key, char *buf, size_t size, walcast_served_t *served)
{
    void *value = NULL;
    size_t len = 0;
    int rc = walcast_get_ex (h, key, strlen (key), 0, &value, &len, served);
    if (rc != 0)
        fprintf (stderr, "get %s: %s (%s)\n", key, walcast_errname (rc),
                 walcast_last_detail (h));
    assert_int_equal (rc, 0);
    snprintf (buf, size, "%.*s", (int) len, value ? (char *) value : "");
    walcast_free (value);
}

static void
test_session (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int client_proxy = cluster_proxy_start (c, p, 20);
    int r1_link = cluster_proxy_start (c, p, 100);
    int r2_link = cluster_proxy_start (c, p, 0);
    assert_true (client_proxy >= 0 && r1_link >= 0 && r2_link >= 0);
    int r1 = cluster_add (c, "r1", cluster_proxy_addr (c, r1_link), NULL);
    int r2 = cluster_add (c, "r2", cluster_proxy_addr (c, r2_link), NULL);
    cluster_set_advertise (c, p, cluster_proxy_addr (c, client_proxy));
    cluster_set_region (c, p, "us-east");
    cluster_set_region (c, r1, "eu-west");
    cluster_set_region (c, r2, "ap-south");
    for (int i = p; i <= r2; i++)
        assert_int_equal (cluster_start (c, i), 0);
    for (int i = p; i <= r2; i++)
        assert_int_equal (cluster_wait_ready (c, i, 30000), 0);

    //  The primary first: writes start at the first node added
    walcast_t *h = walcast_new ();
    assert_non_null (h);
    walcast_set_timeout (h, 5000);
    assert_int_equal (walcast_connect (h, cluster_proxy_addr (c, client_proxy)), 0);
    assert_int_equal (walcast_connect (h, cluster_addr (c, r1)), 0);
    uint64_t seq = s_put (h, "greeting", "v0");
    int all [] = { p, r1, r2 };
    assert_int_equal (cluster_wait_converged (c, all, 3, seq, 20000, NULL, NULL), 0);

    //  Session, replica allowed to wait long enough: r1 serves every
    //  read, and every read sees the write just made
    char value [32], got [64];
    walcast_served_t served;
    walcast_set_session_wait (h, 2000);
    int64_t started = cluster_now_ms ();
    for (int k = 1; k <= ROUNDS; k++) {
        snprintf (value, sizeof value, "v%d", k);
        seq = s_put (h, "greeting", value);
        s_get (h, "greeting", got, sizeof got, &served);
        if (strcmp (got, value) != 0)
            fprintf (stderr, "round %d: wrote %s (seq %llu), read %s from %s\n", k, value,
                     (unsigned long long) seq, got, served.id);
        assert_string_equal (got, value);
        assert_string_equal (served.id, "r1");
        assert_true (served.applied_seq >= seq);
        assert_true (walcast_session_seq (h) >= seq);
    }
    print_message ("session, wait 2000 ms: %d reads of own writes, all served by r1 "
                   "(it waited), %lld ms\n", ROUNDS,
                   (long long) (cluster_now_ms () - started));

    //  Session, replica allowed to wait 20 ms only: it gives up, the
    //  handle asks the next node, the read is still right
    walcast_set_session_wait (h, 20);
    int by_r1 = 0, by_p1 = 0;
    started = cluster_now_ms ();
    for (int k = 1; k <= ROUNDS; k++) {
        snprintf (value, sizeof value, "w%d", k);
        seq = s_put (h, "greeting", value);
        s_get (h, "greeting", got, sizeof got, &served);
        if (strcmp (got, value) != 0)
            fprintf (stderr, "round %d: wrote %s (seq %llu), read %s from %s\n", k, value,
                     (unsigned long long) seq, got, served.id);
        assert_string_equal (got, value);
        assert_true (served.applied_seq >= seq);
        if (strcmp (served.id, "r1") == 0)
            by_r1++;
        else
        if (strcmp (served.id, "p1") == 0)
            by_p1++;
    }
    print_message ("session, wait 20 ms: %d reads of own writes: %d by r1, %d by p1, "
                   "%lld ms\n", ROUNDS, by_r1, by_p1,
                   (long long) (cluster_now_ms () - started));
    assert_true (by_p1 > 0);

    //  Eventual: the nearest replica answers at once, with the old value
    assert_int_equal (walcast_set_consistency (h, WALCAST_EVENTUAL), 0);
    int stale = 0;
    for (int k = 1; k <= 10; k++) {
        snprintf (value, sizeof value, "e%d", k);
        seq = s_put (h, "greeting", value);
        s_get (h, "greeting", got, sizeof got, &served);
        if (strcmp (got, value) != 0)
            stale++;
    }
    print_message ("eventual: %d of 10 reads right after a write were stale\n", stale);
    assert_true (stale > 0);
    walcast_destroy (&h);

    //  Another process: `put` prints the seq, and `get --min-seq SEQ`
    //  in a third one sees that write, though the nearest node, r2, is
    //  held behind it (its link frozen); without the token it does not
    const char *primary = cluster_proxy_addr (c, client_proxy);
    char *out = NULL, *err = NULL;
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--node", primary,
                                   "put", "token", "first", NULL), 0);
    free (out);
    free (err);
    int p_r2 [] = { p, r2 };
    assert_int_equal (cluster_wait_converged (c, p_r2, 2, 0, 20000, NULL, NULL), 0);
    assert_int_equal (cluster_proxy_signal (c, r2_link, SIGSTOP), 0);
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--node", primary,
                                   "put", "token", "second", NULL), 0);
    unsigned long long token = 0;
    int parsed = sscanf (out, "%llu", &token);
    print_message ("put printed \"%.*s\": token %llu\n", (int) strcspn (out, "\n"), out,
                   token);
    free (out);
    free (err);
    assert_int_equal (parsed, 1);
    char seq_arg [32];
    snprintf (seq_arg, sizeof seq_arg, "%llu", token);
    char id [65];
    const char *plain [] = { "--node", cluster_addr (c, r2), "--node", primary, "-v",
                             "get", "token", NULL };
    assert_int_equal (cluster_cli_read (c, plain, got, sizeof got, id, sizeof id, NULL, 0), 0);
    print_message ("r2 held back; get without a token: %s (served by %s)\n", got, id);
    assert_string_equal (id, "r2");
    assert_string_equal (got, "first");
    const char *with_token [] = { "--node", cluster_addr (c, r2), "--node", primary, "-v",
                                  "get", "--min-seq", seq_arg, "token", NULL };
    assert_int_equal (cluster_cli_read (c, with_token, got, sizeof got, id, sizeof id,
                                        NULL, 0), 0);
    print_message ("r2 held back; get --min-seq %llu: %s (served by %s)\n", token, got, id);
    assert_string_equal (got, "second");
    assert_string_equal (id, "p1");

    //  Link back: r2 catches up and serves the token itself
    assert_int_equal (cluster_proxy_signal (c, r2_link, SIGCONT), 0);
    assert_int_equal (cluster_wait_converged (c, p_r2, 2, token, 20000, NULL, NULL), 0);
    assert_int_equal (cluster_cli_read (c, with_token, got, sizeof got, id, sizeof id,
                                        NULL, 0), 0);
    print_message ("r2 caught up; get --min-seq %llu: %s (served by %s)\n", token, got, id);
    assert_string_equal (got, "second");
    assert_string_equal (id, "r2");

    //  A --min-seq no node has reached: ESTALE, and the remedy is about
    //  the seq asked, not about staleness or the primary
    char far [32];
    snprintf (far, sizeof far, "%llu", token + 1000000);
    char *far_out = NULL, *far_err = NULL;
    int far_rc = cluster_cli (c, NULL, &far_out, &far_err, "--node", primary,
                              "--timeout", "500", "get", "--min-seq", far, "token", NULL);
    print_message ("get --min-seq %s: exit %d, %s", far, far_rc, far_err);
    assert_int_equal (far_rc, 3);
    assert_non_null (strstr (far_err, "give a lower --min-seq"));
    assert_null (strstr (far_err, "--max-staleness"));
    free (far_out);
    free (far_err);

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  A handle given these nodes (follow mode), timeout_ms per call. */
static walcast_t *
s_handle (cluster_t *c, const int *nodes, int count, int timeout_ms)
{
    walcast_t *h = walcast_new ();
    assert_non_null (h);
    walcast_set_timeout (h, timeout_ms);
    for (int i = 0; i < count; i++)
        assert_int_equal (walcast_connect (h, cluster_addr (c, nodes [i])), 0);
    return h;
}

//  A get on h: its code; the value (NUL-terminated) in buf when 0.
static int
s_try_get (walcast_t *h, const char *key, char *buf, size_t size)
{
    void *value = NULL;
    size_t len = 0;
    int rc = walcast_get (h, key, strlen (key), &value, &len, NULL);
    snprintf (buf, size, "%.*s", (int) len, value ? (char *) value : "");
    walcast_free (value);
    print_message ("get %s: %s '%s' (%s)\n", key, walcast_errname (rc), buf,
                   walcast_last_detail (h));
    return rc;
}

/*  Sessions across a history that a failover rolled back. No broker: p1
    takes a write ("mine", acks 0) its replica r1 never gets, and r1 is
    made a primary of its own (a newer epoch, without that write).
    - Monotonic reads: a handle that read r1's "new" then finds only p1
      (deposed, still serving its older epoch) must not read p1's "mine",
      a value of a history it has moved past. Before, the token's epoch
      came from writes only, and p1 served it.
    - A write rolled back: the handle that wrote "mine" gets ECONFLICT
      once, saying which seqs a failover rolled back, and its next read
      goes on from the new history. Before, every read was ESTALE (the
      token's seq was not there yet), then, once the new history passed
      that seq, its reads quietly went on without the write. */
static void
test_session_across_rollback (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    int both [] = { p, r };
    for (int i = 0; i < 2; i++) {
        assert_int_equal (cluster_start (c, both [i]), 0);
        assert_int_equal (cluster_wait_ready (c, both [i], 30000), 0);
    }
    walcast_t *writer = s_handle (c, both, 2, 3000);
    uint64_t old_seq = s_put (writer, "k", "old");
    assert_int_equal (cluster_wait_converged (c, both, 2, old_seq, 30000, NULL, NULL), 0);
    assert_int_equal (cluster_kill (c, r), 0);
    uint64_t mine = s_put (writer, "k", "mine");            /* p1 alone has it */
    assert_int_equal (mine, old_seq + 1);
    cluster_set_replica_of (c, r, NULL);                    /* r1: a primary now */
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    walcast_t *other = s_handle (c, &r, 1, 3000);
    assert_int_equal (s_put (other, "k", "new"), old_seq + 1);
    walcast_destroy (&other);

    //  Monotonic reads: "new" from r1, then only p1 is left
    walcast_t *reader = s_handle (c, &r, 1, 3000);
    char value [64];
    assert_int_equal (s_try_get (reader, "k", value, sizeof value), 0);
    assert_string_equal (value, "new");
    assert_int_equal (walcast_connect (reader, cluster_addr (c, p)), 0);
    assert_int_equal (cluster_kill (c, r), 0);
    int rc = s_try_get (reader, "k", value, sizeof value);
    assert_int_not_equal (rc, 0);
    assert_string_not_equal (value, "mine");
    walcast_destroy (&reader);

    //  The rolled-back write: r1 back (a newer epoch still), p1 gone
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    assert_int_equal (cluster_kill (c, p), 0);
    rc = s_try_get (writer, "k", value, sizeof value);
    assert_int_equal (rc, WALCAST_ECONFLICT);
    char expect [96];
    snprintf (expect, sizeof expect, "rolled back seqs %llu..%llu",
              (unsigned long long) mine, (unsigned long long) mine);
    assert_non_null (strstr (walcast_last_detail (writer), expect));
    assert_int_equal (s_try_get (writer, "k", value, sizeof value), 0);
    assert_string_equal (value, "new");
    walcast_destroy (&writer);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_session, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_session_across_rollback, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
