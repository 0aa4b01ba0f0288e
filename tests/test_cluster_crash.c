/*  test_cluster_crash.c - an acknowledged write survives a primary crash.

    With --fsync always, a write the primary acknowledged is on disk. A
    child process writes synchronously and records each acknowledged key
    in a file; the primary is SIGKILLed in the middle of that stream of
    writes, restarted on the same data directory, and must hold every
    acknowledged key with its value. The replicas, which never lost their
    link for long, then converge with the restarted primary. What a user
    relies on: "acknowledged" means durable, and a crash leaves the
    cluster consistent.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "cluster.h"

#define ACKED_BEFORE_CRASH  2000
#define MAX_KEYS            1000000

static int
s_setup (void **state)
{
    *state = cluster_new ("crash");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

//  The child: synchronous puts of keys 0, 1, 2... forever; each key the
//  primary acknowledged is appended to path, one "N\n" line, flushed
//  before the next put. Never returns (the parent kills it).
static void
s_writer (const char *addr, const char *path)
{
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    FILE *file = fopen (path, "w");
    walcast_t *client = walcast_new ();
    if (!file || !client)
        _exit (2);
    walcast_set_timeout (client, 2000);
    if (walcast_connect (client, addr) != 0)
        _exit (2);
    for (int n = 0; n < MAX_KEYS; n++) {
        char key [32], value [CLUSTER_VALUE_LEN + 1];
        cluster_key (n, key, sizeof key);
        cluster_value (n, 1, value);
        if (walcast_put (client, key, strlen (key), value, CLUSTER_VALUE_LEN, NULL) == 0) {
            fprintf (file, "%d\n", n);
            fflush (file);
        }
        else
            cluster_nap_ms (5);
    }
    _exit (0);
}

//  Read the acknowledged keys from path into acked (whole lines only).
//  Returns how many.
static int
s_read_acked (const char *path, int *acked, int max)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    int count = 0;
    char line [64];
    while (count < max && fgets (line, sizeof line, file)) {
        if (!strchr (line, '\n'))
            break;              //  torn last line: not acknowledged for sure
        acked [count++] = atoi (line);
    }
    fclose (file);
    return count;
}

static void
test_crash (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, "always");
    int r1 = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    int r2 = cluster_add (c, "r2", cluster_addr (c, p), NULL);
    int all [] = { p, r1, r2 };
    for (int i = 0; i < 3; i++)
        assert_int_equal (cluster_start (c, all [i]), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal (cluster_wait_ready (c, all [i], 30000), 0);

    char path [600];
    snprintf (path, sizeof path, "%s/acked.txt", cluster_dir (c));
    fflush (NULL);
    pid_t writer = fork ();
    assert_true (writer >= 0);
    if (writer == 0)
        s_writer (cluster_addr (c, p), path);

    //  Wait for enough acknowledged writes, then crash the primary while
    //  the writer keeps writing
    int *acked = calloc (MAX_KEYS, sizeof (int));
    assert_non_null (acked);
    int64_t deadline = cluster_now_ms () + 120000;
    int count = 0;
    while ((count = s_read_acked (path, acked, MAX_KEYS)) < ACKED_BEFORE_CRASH) {
        int status;
        if (waitpid (writer, &status, WNOHANG) == writer) {
            free (acked);
            fail_msg ("the writer exited early (status %d)", status);
        }
        if (cluster_now_ms () > deadline) {
            kill (writer, SIGKILL);
            waitpid (writer, NULL, 0);
            free (acked);
            fail_msg ("only %d writes acknowledged in 120 s", count);
        }
        cluster_nap_ms (5);
    }
    assert_int_equal (cluster_kill (c, p), 0);
    kill (writer, SIGKILL);
    waitpid (writer, NULL, 0);
    count = s_read_acked (path, acked, MAX_KEYS);
    print_message ("%d writes acknowledged before the crash\n", count);

    //  Restart on the same data: every acknowledged key is there
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    walcast_t *client = cluster_client (c, p);
    assert_non_null (client);
    int missing = 0, highest = -1;
    for (int k = 0; k < count; k++) {
        char key [32], expect [CLUSTER_VALUE_LEN + 1];
        cluster_key (acked [k], key, sizeof key);
        cluster_value (acked [k], 1, expect);
        void *value = NULL;
        size_t len = 0;
        int rc = walcast_get (client, key, strlen (key), &value, &len, NULL);
        if (rc != 0 || len != CLUSTER_VALUE_LEN || memcmp (value, expect, len) != 0) {
            if (missing++ < 10)
                print_error ("acknowledged key %s: %s, %zu bytes\n", key,
                             walcast_errname (rc), len);
        }
        if (acked [k] > highest)
            highest = acked [k];
        free (value);
    }
    walcast_destroy (&client);
    free (acked);
    assert_int_equal (missing, 0);

    uint64_t seq = 0, hash = 0;
    assert_int_equal (cluster_digest (c, p, &seq, &hash), 0);
    print_message ("restarted primary at seq %llu\n", (unsigned long long) seq);
    assert_true (seq >= (uint64_t) highest + 1);

    //  The replicas follow the restarted primary to the same state
    assert_int_equal (cluster_wait_converged (c, all, 3, seq, 60000, NULL, NULL), 0);

    //  And it takes new writes that replicate
    assert_int_equal (cluster_load (c, p, 0, 100, 2, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, all, 3, seq + 100, 60000, NULL, NULL), 0);
    assert_int_equal (cluster_check_key (c, r1, 99, 2), 0);

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_crash, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
