/*  test_cluster_notprimary.c - writes to a replica are refused and
    redirected; the walcast command's contract against a live cluster.

    What a user relies on:
    - a put or del sent to a replica fails with WALCAST_ENOTPRIMARY, and
      walcast_last_detail names the primary (HOST:PORT) to retry on; the
      CLI says "(primary is HOST:PORT)" and exits 3; the replica's data
      is untouched;
    - the CLI's documented outputs and exit codes: put prints the seq,
      get prints the value (exit 1 and "not found" when absent), digest
      prints "SEQ HASH", load prints "COUNT LAST_SEQ", usage errors exit
      2, --help exits 0, a node that does not answer exits 3.
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

#define WRITES  100

static int
s_setup (void **state)
{
    *state = cluster_new ("notprimary");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

//  Run the CLI; return its exit code, keep stdout / stderr in out / err.
//  Prints what it did, so a failing assertion has the context.
static int
s_cli (cluster_t *c, const char *input, char **out, char **err, const char *node,
       const char *a1, const char *a2, const char *a3)
{
    int rc = cluster_cli (c, input, out, err, "--node", node, a1, a2, a3, NULL);
    print_message ("walcast --node %s %s %s %s -> exit %d, stdout \"%s\", stderr \"%s\"\n",
                   node, a1 ? a1 : "", a2 ? a2 : "", a3 ? a3 : "", rc,
                   *out, *err);
    return rc;
}

static void
test_replica_refuses_writes (cluster_t *c, int p, int r)
{
    uint64_t seq0, hash0, seq1, hash1;
    assert_int_equal (cluster_digest (c, r, &seq0, &hash0), 0);

    walcast_t *client = cluster_client (c, r);
    assert_non_null (client);
    walcast_pos_t pos = { 0, 0 };
    assert_int_equal (walcast_put (client, "nk", 2, "nv", 2, &pos), WALCAST_ENOTPRIMARY);
    assert_string_equal (walcast_last_detail (client), cluster_addr (c, p));
    assert_int_equal (walcast_del (client, "k00000001", 9, &pos), WALCAST_ENOTPRIMARY);
    assert_string_equal (walcast_last_detail (client), cluster_addr (c, p));
    //  Async writes report it at flush
    assert_int_equal (walcast_put_async (client, "nk2", 3, "v", 1, 0), 0);
    assert_int_equal (walcast_flush (client, NULL, NULL), WALCAST_ENOTPRIMARY);
    //  Reads on the same handle still work
    void *value = NULL;
    size_t len = 0;
    assert_int_equal (walcast_get (client, "nk", 2, &value, &len, NULL), WALCAST_ENOTFOUND);
    walcast_destroy (&client);

    char expect [64];
    snprintf (expect, sizeof expect, "(primary is %s)", cluster_addr (c, p));
    char *out, *err;
    assert_int_equal (s_cli (c, NULL, &out, &err, cluster_addr (c, r),
                             "put", "nk", "nv"), 3);
    assert_non_null (strstr (err, expect));
    assert_string_equal (out, "");
    free (out);
    free (err);
    assert_int_equal (s_cli (c, NULL, &out, &err, cluster_addr (c, r),
                             "del", "k00000001", NULL), 3);
    assert_non_null (strstr (err, expect));
    free (out);
    free (err);

    //  Nothing changed, on the replica nor on the primary
    assert_int_equal (cluster_digest (c, r, &seq1, &hash1), 0);
    assert_int_equal (seq1, seq0);
    assert_int_equal (hash1, hash0);
    assert_int_equal (cluster_digest (c, p, &seq1, &hash1), 0);
    assert_int_equal (seq1, seq0);
    assert_int_equal (hash1, hash0);
}

static void
test_cli_contract (cluster_t *c, int p, int r)
{
    const char *node = cluster_addr (c, p);
    char *out, *err;

    //  put prints the write's seq
    assert_int_equal (s_cli (c, NULL, &out, &err, node, "put", "cli-key", "cli value"), 0);
    assert_string_equal (out, "101\n");
    free (out);
    free (err);

    //  get prints the value
    assert_int_equal (s_cli (c, NULL, &out, &err, node, "get", "cli-key", NULL), 0);
    assert_string_equal (out, "cli value\n");
    free (out);
    free (err);

    //  get of a missing key: exit 1, "not found"
    assert_int_equal (s_cli (c, NULL, &out, &err, node, "get", "no-such-key", NULL), 1);
    assert_non_null (strstr (err, "not found"));
    assert_string_equal (out, "");
    free (out);
    free (err);

    //  digest prints "SEQ HASH", HASH 16 hex digits, same as the library
    uint64_t seq, hash;
    assert_int_equal (cluster_digest (c, p, &seq, &hash), 0);
    char expect [64];
    snprintf (expect, sizeof expect, "%llu %016llx\n",
              (unsigned long long) seq, (unsigned long long) hash);
    assert_int_equal (s_cli (c, NULL, &out, &err, node, "digest", NULL, NULL), 0);
    assert_string_equal (out, expect);
    assert_int_equal (seq, 101);
    free (out);
    free (err);

    //  load reads "KEY VALUE" lines, prints "COUNT LAST_SEQ"
    assert_int_equal (s_cli (c, "la 1\nlb two words\nlc 3\n", &out, &err, node,
                             "load", NULL, NULL), 0);
    assert_string_equal (out, "3 104\n");
    free (out);
    free (err);
    assert_int_equal (s_cli (c, NULL, &out, &err, node, "get", "lb", NULL), 0);
    assert_string_equal (out, "two words\n");
    free (out);
    free (err);

    //  del, then get: not found
    assert_int_equal (s_cli (c, NULL, &out, &err, node, "del", "cli-key", NULL), 0);
    assert_string_equal (out, "105\n");
    free (out);
    free (err);
    assert_int_equal (s_cli (c, NULL, &out, &err, node, "get", "cli-key", NULL), 1);
    assert_non_null (strstr (err, "not found"));
    free (out);
    free (err);

    //  status names the role
    assert_int_equal (s_cli (c, NULL, &out, &err, node, "status", NULL, NULL), 0);
    assert_non_null (strstr (out, "primary"));
    free (out);
    free (err);

    //  The replica serves what the CLI wrote
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, 105, 30000, NULL, NULL), 0);
    assert_int_equal (s_cli (c, NULL, &out, &err, cluster_addr (c, r), "get", "lc", NULL), 0);
    assert_string_equal (out, "3\n");
    free (out);
    free (err);

    //  Usage errors exit 2, --help exits 0
    assert_int_equal (s_cli (c, NULL, &out, &err, node, "frobnicate", NULL, NULL), 2);
    free (out);
    free (err);
    assert_int_equal (s_cli (c, NULL, &out, &err, node, "put", "only-key", NULL), 2);
    free (out);
    free (err);
    //  A watch PREFIX longer than any key: a usage error that says why
    //  (it was exit 3, 'invalid argument')
    char prefix [1100];
    memset (prefix, 'p', 1025);
    prefix [1025] = '\0';
    assert_int_equal (s_cli (c, NULL, &out, &err, node, "watch", prefix, NULL), 2);
    assert_non_null (strstr (err, "prefixes are 0..1024 bytes"));
    free (out);
    free (err);
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--help", NULL), 0);
    assert_true (strlen (out) + strlen (err) > 0);
    free (out);
    free (err);

    //  A node that does not answer: exit 3, message on stderr
    char dead [32];
    snprintf (dead, sizeof dead, "127.0.0.1:%d", cluster_spare_port (c));
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--node", dead,
                                   "--timeout", "300", "get", "x", NULL), 3);
    assert_true (strlen (err) > 0);
    free (out);
    free (err);

    //  status of several nodes, one of them dead, with a short timeout:
    //  the dead one is down (it never answered), the live ones up
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--node", node, "--node", dead,
                                   "--timeout", "800", "status", NULL), 0);
    print_message ("%s", out);
    assert_int_equal (cluster_status_state (out, "p1"), 1);
    assert_int_equal (cluster_status_state (out, dead), 0);
    free (out);
    free (err);
}

static void
test_notprimary (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    int both [] = { p, r };
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    assert_int_equal (cluster_load (c, p, 0, WRITES, 1, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, both, 2, WRITES, 30000, NULL, NULL), 0);

    test_replica_refuses_writes (c, p, r);
    test_cli_contract (c, p, r);

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_notprimary, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
