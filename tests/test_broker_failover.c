/*  test_broker_failover.c - the broker process moves the primary role
    (issue 7), as fake nodes see it on the wire.

    Each fake node is a raw DEALER owned by the test (broker_peer.h),
    beating REGISTER and NODE_HEARTBEAT with whatever node_info the test
    gives it, and reading the broker's replies: the TOPOLOGY that admits a
    REGISTER, then the directive (PROMOTE, FOLLOW, HANDOVER) when the
    broker has one for it.

    What a user relies on:
    - a new cluster's first candidate is promoted at epoch 1 and a second
      candidate is told to follow it; a replica of an unknown address is
      pointed at the primary;
    - the primary silent past --failover-timeout is replaced by the
      replica with the most data, at a new epoch, and the others are told
      to follow it, in one log line that says why and whom it considered;
    - the state survives SIGKILL of the broker (--data): the old primary,
      beating first after the restart, is told to follow the new one, not
      taken back; without --data the broker says at start that it could go
      back in epochs;
    - a bad --failover-timeout, a damaged state file, a data directory in
      use are refused at start, with the cause and the remedy;
    - a broker that was stopped (SIGSTOP, a paused VM) for longer than the
      failover timeout does not count its own pause against the nodes: on
      resuming it marks none down and fails nothing over, and says why.
      Before, it marked every node down at once and, depending on whose
      queued beat it read first, replaced the healthy primary.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>
#include "broker_peer.h"
#include "cluster.h"

#define NODE_TIMEOUT_MS      1000
#define FAILOVER_TIMEOUT_MS  1500

static int
s_setup (void **state)
{
    *state = cluster_new ("broker_failover");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

/*  A fake node at the spare port + offset. */
static void
s_fake (broker_fake_t *f, cluster_t *c, const char *id, int offset, int role,
        const char *primary, uint64_t epoch, uint64_t seq, uint64_t flags)
{
    char addr [32];
    snprintf (addr, sizeof addr, "127.0.0.1:%d", cluster_spare_port (c) + offset);
    assert_int_equal (broker_fake_init (f, cluster_broker_addr (c), id, addr, role,
                                        primary, epoch, seq, flags), 0);
}

static void
s_expect (broker_fake_t *f, int type, uint64_t epoch, const char *addr)
{
    if (broker_fake_expect (f, type, epoch, addr) != 0)
        fail_msg ("%s was not told what it should have (see above)", f->id);
}

static int64_t
s_until_told (broker_fake_t **all, size_t count, broker_fake_t *who, int type,
              uint64_t epoch, const char *addr, int timeout_ms)
{
    int64_t took = broker_fake_until (all, count, who, type, epoch, addr, timeout_ms);
    if (took < 0)
        fail_msg ("%s was not told %s in time (see above)", who->id,
                  wc_msg_type_name (type));
    return took;
}

static int
s_broker_log (cluster_t *c, const char *text, char *line, size_t size)
{
    return broker_log_count (cluster_broker_log_path (c), text, line, size);
}

/* --- the tests --------------------------------------------------------- */

static void
test_failover_on_the_wire (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    char data [512], timeout [16];
    snprintf (data, sizeof data, "%s/broker-data", cluster_dir (c));
    snprintf (timeout, sizeof timeout, "%d", FAILOVER_TIMEOUT_MS);
    const char *flags [] = { "--data", data, "--failover-timeout", timeout, NULL };
    cluster_set_broker_extra (c, flags);
    assert_int_equal (cluster_broker_start (c, NODE_TIMEOUT_MS), 0);

    //  A new cluster: p1 starts as a candidate, and is promoted at epoch 1
    //  once the broker had the node timeout to hear from every live node
    broker_fake_t p1, r1, r2, c2;
    s_fake (&p1, c, "p1", 0, WC_ROLE_PRIMARY, NULL, 0, 0, WC_NODE_CANDIDATE);
    broker_fake_t *one [] = { &p1 };
    int64_t took = s_until_told (one, 1, &p1, WC_MSG_PROMOTE, 1, NULL, 5000);
    print_message ("p1 promoted at epoch 1 after %lld ms\n", (long long) took);
    p1.flags = 0;
    p1.epoch = 1;
    s_expect (&p1, 0, 0, NULL);
    s_expect (&p1, 0, 0, NULL);
    char line [2048];
    assert_int_equal (s_broker_log (c, "promote: node p1 at", line, sizeof line), 1);
    print_message ("broker: %s", line);

    //  Its replica is left alone; a replica of an unknown address and a
    //  second candidate are pointed at p1
    s_fake (&r1, c, "r1", 1, WC_ROLE_REPLICA, p1.addr, 1, 0, 0);
    s_expect (&r1, 0, 0, NULL);
    s_fake (&r2, c, "r2", 2, WC_ROLE_REPLICA, "127.0.0.1:9", 1, 0, 0);
    s_expect (&r2, WC_MSG_FOLLOW, 1, p1.addr);
    snprintf (r2.primary, sizeof r2.primary, "%s", p1.addr);
    s_expect (&r2, 0, 0, NULL);
    s_fake (&c2, c, "c2", 3, WC_ROLE_PRIMARY, NULL, 0, 0, WC_NODE_CANDIDATE);
    s_expect (&c2, WC_MSG_FOLLOW, 1, p1.addr);
    broker_fake_fini (&c2);

    //  Writes happened: r1 holds more than r2. p1 dies (stops beating).
    p1.seq = 100;
    r1.seq = 100;
    r2.seq = 90;
    s_expect (&p1, 0, 0, NULL);
    broker_fake_t *replicas [] = { &r1, &r2 };
    took = s_until_told (replicas, 2, &r1, WC_MSG_PROMOTE, 2, NULL, 10000);
    print_message ("r1 promoted at epoch 2, %lld ms after p1's last beat (failover "
                   "timeout %d ms)\n", (long long) took, FAILOVER_TIMEOUT_MS);
    assert_true (took >= FAILOVER_TIMEOUT_MS - 200);
    s_expect (&r2, WC_MSG_FOLLOW, 2, r1.addr);
    assert_int_equal (s_broker_log (c, "failover: primary p1 at", line, sizeof line), 1);
    print_message ("broker: %s", line);
    assert_non_null (strstr (line, "node r1 at"));
    assert_non_null (strstr (line, "epoch 2"));
    assert_non_null (strstr (line, "r2 (epoch 1, seq 90, region -)"));

    //  r1 obeys; the broker is killed (SIGKILL) and restarted on its data
    r1.role = WC_ROLE_PRIMARY;
    r1.primary [0] = '\0';
    r1.epoch = 2;
    s_expect (&r1, 0, 0, NULL);
    assert_int_equal (cluster_broker_kill (c), 0);
    assert_int_equal (cluster_broker_start (c, NODE_TIMEOUT_MS), 0);

    //  The old primary beats first, serving at epoch 1: without the saved
    //  state the broker would take it as the primary; it is told to follow
    //  r1, and r1 is left alone
    p1.admitted = false;
    broker_fake_t *back [] = { &p1 };
    s_until_told (back, 1, &p1, WC_MSG_FOLLOW, 2, r1.addr, 5000);
    r1.admitted = false;
    s_expect (&r1, 0, 0, NULL);
    s_expect (&p1, WC_MSG_FOLLOW, 2, r1.addr);
    assert_int_equal (s_broker_log (c, "cluster state from", line, sizeof line), 2);

    broker_fake_fini (&p1);
    broker_fake_fini (&r1);
    broker_fake_fini (&r2);
    cluster_pass (c);
}

/*  Run the broker with args (after --port P), up to 10 s; its exit status
    and what it wrote on stderr. */
static int
s_run_broker (cluster_t *c, const char *const *args, char *err, size_t size)
{
    const char *bin = getenv ("WALCAST_BROKER");
    assert_non_null (bin);
    char path [512], port [16];
    snprintf (path, sizeof path, "%s/run.err", cluster_dir (c));
    snprintf (port, sizeof port, "%d", cluster_spare_port (c) + 8);
    const char *argv [16] = { bin, "--port", port };
    int argc = 3;
    for (int i = 0; args [i] && argc < 15; i++)
        argv [argc++] = args [i];
    argv [argc] = NULL;
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        if (!freopen (path, "w", stderr) || !freopen ("/dev/null", "w", stdout))
            _exit (127);
        execv (bin, (char **) argv);
        _exit (127);
    }
    int status = 0;
    int64_t deadline = cluster_now_ms () + 10000;
    while (waitpid (pid, &status, WNOHANG) == 0) {
        if (cluster_now_ms () > deadline) {
            kill (pid, SIGKILL);
            waitpid (pid, &status, 0);
            fail_msg ("walcast-broker did not exit within 10 s");
        }
        cluster_nap_ms (10);
    }
    FILE *file = fopen (path, "r");
    size_t len = file ? fread (err, 1, size - 1, file) : 0;
    err [len] = '\0';
    if (file)
        fclose (file);
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static void
test_refused_at_start (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    char err [4096];
    const char *short_timeout [] = { "--node-timeout", "2000", "--failover-timeout",
                                     "1000", NULL };
    assert_int_equal (s_run_broker (c, short_timeout, err, sizeof err), 2);
    print_message ("%s", err);
    assert_non_null (strstr (err, "--failover-timeout 1000 is shorter than "
                                  "--node-timeout 2000"));
    assert_non_null (strstr (err, "raise --failover-timeout to at least 2000"));
    const char *bad_regions [] = { "--region-priority", "us-east,,eu-west", NULL };
    assert_int_equal (s_run_broker (c, bad_regions, err, sizeof err), 2);
    assert_non_null (strstr (err, "--region-priority: region 2 is empty"));

    //  A damaged state file: exit 1, naming the file and the way out
    char data [512], path [600];
    snprintf (data, sizeof data, "%s/damaged", cluster_dir (c));
    assert_int_equal (mkdir (data, 0755), 0);
    snprintf (path, sizeof path, "%s/broker.state", data);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs ("# walcast-broker cluster state; written by the broker, do not edit\n"
           "format=1\nepoch=12\nprimary=p1\nprimary_addr=127.0.0.1:7100\n"
           "crc32c=00000000\n", file);
    fclose (file);
    const char *damaged [] = { "--data", data, NULL };
    assert_int_equal (s_run_broker (c, damaged, err, sizeof err), 1);
    print_message ("%s", err);
    assert_non_null (strstr (err, "cannot start:"));
    assert_non_null (strstr (err, "broker.state: damaged: crc32c 00000000"));
    assert_non_null (strstr (err, "move it away"));

    //  A data directory another broker holds: exit 1, naming the holder
    snprintf (data, sizeof data, "%s/shared", cluster_dir (c));
    const char *flags [] = { "--data", data, NULL };
    cluster_set_broker_extra (c, flags);
    assert_int_equal (cluster_broker_start (c, 0), 0);
    assert_int_equal (s_run_broker (c, flags, err, sizeof err), 1);
    print_message ("%s", err);
    assert_non_null (strstr (err, "one broker per data directory"));

    //  Without --data: a warning at start
    cluster_set_broker_extra (c, NULL);
    assert_int_equal (cluster_broker_kill (c), 0);
    assert_int_equal (cluster_broker_start (c, 0), 0);
    char line [2048];
    assert_int_equal (s_broker_log (c, "level=warn proc=walcast-broker msg=\"no --data:",
                                    line, sizeof line), 1);
    print_message ("broker: %s", line);
    assert_non_null (strstr (line, "a restart of this broker could go back in epochs"));
    cluster_pass (c);
}

static void
test_broker_stopped (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    char timeout [16];
    snprintf (timeout, sizeof timeout, "%d", FAILOVER_TIMEOUT_MS);
    const char *flags [] = { "--failover-timeout", timeout, NULL };
    cluster_set_broker_extra (c, flags);
    assert_int_equal (cluster_broker_start (c, NODE_TIMEOUT_MS), 0);
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    cluster_set_broker (c, p, true);
    cluster_set_broker (c, r, true);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_start (c, r), 0);
    walcast_t *h = cluster_broker_client (c, 5000);
    assert_non_null (h);
    walcast_pos_t pos = { 0, 0 };
    int64_t deadline = cluster_now_ms () + 20000;
    while (walcast_put (h, "k", 1, "v", 1, &pos) != 0 && cluster_now_ms () < deadline)
        cluster_nap_ms (50);
    assert_true (pos.epoch == 1);
    //  The broker stops for twice the failover timeout (the scenario)
    long mark = cluster_broker_log_mark (c);
    pid_t broker = cluster_broker_pid (c);
    assert_true (broker > 0);
    assert_int_equal (kill (broker, SIGSTOP), 0);
    int64_t stopped = cluster_now_ms ();
    while (cluster_now_ms () - stopped < 2 * FAILOVER_TIMEOUT_MS)
        cluster_nap_ms (50);
    assert_int_equal (kill (broker, SIGCONT), 0);
    //  Once it answers again, it has run its timers since resuming
    assert_int_equal (cluster_broker_wait_log (c, "broker: its loop did not run for ",
                                               mark, 10000), 0);
    assert_int_equal (walcast_put (h, "k", 1, "w", 1, &pos), 0);
    char line [2048];
    assert_int_equal (cluster_broker_log_find (c, "broker: its loop", mark, 0, line,
                                               sizeof line), 0);
    print_message ("broker: %s\n", line);
    assert_int_equal (cluster_broker_log_find (c, "failover:", mark, 0, line,
                                               sizeof line), -1);
    assert_int_equal (cluster_broker_log_find (c, "node p1 down", mark, 0, line,
                                               sizeof line), -1);
    assert_int_equal (cluster_broker_log_find (c, "node r1 down", mark, 0, line,
                                               sizeof line), -1);
    assert_true (pos.epoch == 1);
    walcast_destroy (&h);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_failover_on_the_wire, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_refused_at_start, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_broker_stopped, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
