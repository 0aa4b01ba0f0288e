/*  test_client_failover.c - writes move to the new primary (issue 7, the
    client's part).

    What a user relies on, with a broker (or several nodes):
    - a write refused by a primary that has been replaced (EFENCED, which
      names no successor) is not failed at once: it waits, within its
      deadline, for the topology to name another primary, and is sent
      there (it was not applied, so it cannot be applied twice);
    - a write sent during a switchover, refused by the old primary with
      ENOTPRIMARY naming the target and then by the target (not yet
      promoted) naming the old one, lands on the target once the broker
      has promoted it, instead of failing after the first redirect, and
      on the old primary when the switchover is cancelled;
    - a write that timed out is never sent again: the old primary may
      have applied it; and one sent to a primary that dies, which the
      broker then lists down with another named, says its outcome is
      unknown at once, without waiting out its timeout (also when it
      runs again by then), while one whose old primary answers every
      PING waits for its answer; and one whose connection dropped (the
      primary restarted) says so, whoever the primary is;
    - when no new primary appears within the timeout, the refusal is
      what the call returns, with its detail, and the CLI says the write
      was not made.

    The broker and the nodes are fakes (tests/fake.h). The write runs in
    a thread of its own while the test plays the failover around it.

    Built twice: test_client_failover_pings is this file with
    WC_TEST_NO_MONITOR, where libzmq's socket monitor cannot start (the
    binary's zmq_socket_monitor refuses every call), so a sync write sees
    its connection drop through its PINGs alone, as a client does where
    a monitor fails to start; it runs the cases a PING can see (the node
    down for 1.5 s, or frozen and replaced).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <stdatomic.h>
#include <zmq.h>
#include "cluster.h"
#include "fake.h"

#ifdef WC_TEST_NO_MONITOR
static atomic_int s_monitors_refused;

//  Stands in for libzmq's: no monitor ever starts in this binary.
int
zmq_socket_monitor (void *socket, const char *endpoint, int events)
{
    (void) socket;
    (void) events;
    if (endpoint)
        atomic_fetch_add (&s_monitors_refused, 1);
    errno = ENOTSUP;
    return -1;
}
#endif

//  In the PING-only build, a case that passed must have done without the
//  monitor its sync write asked for.
static void
s_pings_alone (void)
{
#ifdef WC_TEST_NO_MONITOR
    assert_true (atomic_load (&s_monitors_refused) > 0);
#endif
}

typedef struct {
    cluster_t     *cluster;
    fake_broker_t *broker;
    fake_node_t   *p1;              /* the primary of epoch 1 */
    fake_node_t   *r1;              /* its replica, promoted in epoch 2 */
    char           broker_addr [32];
    char           p1_addr [32];
    char           r1_addr [32];
} s_world_t;

//  The broker's directory: p1 and r1, primary names which one is, at
//  epoch.
static void
s_directory (s_world_t *w, const char *primary, uint64_t epoch)
{
    fake_broker_node_t nodes [2] = {
        { "p1", "", 0, epoch, true, 0 },
        { "r1", "", 0, epoch, true, 0 },
    };
    snprintf (nodes [0].addr, sizeof nodes [0].addr, "%s", w->p1_addr);
    snprintf (nodes [1].addr, sizeof nodes [1].addr, "%s", w->r1_addr);
    nodes [0].role = strcmp (primary, "p1") == 0 ? WC_ROLE_PRIMARY : WC_ROLE_REPLICA;
    nodes [1].role = strcmp (primary, "r1") == 0 ? WC_ROLE_PRIMARY : WC_ROLE_REPLICA;
    fake_broker_set_nodes (w->broker, nodes, 2);
}

//  The broker's directory after a failover: r1 the primary of epoch 2,
//  p1 still claiming epoch 1 and listed down.
static void
s_p1_replaced (s_world_t *w)
{
    fake_broker_node_t nodes [2] = {
        { "p1", "", WC_ROLE_PRIMARY, 1, false, 0 },
        { "r1", "", WC_ROLE_PRIMARY, 2, true, 0 },
    };
    snprintf (nodes [0].addr, sizeof nodes [0].addr, "%s", w->p1_addr);
    snprintf (nodes [1].addr, sizeof nodes [1].addr, "%s", w->r1_addr);
    fake_broker_set_nodes (w->broker, nodes, 2);
}

//  The broker's directory of epoch 1 with p1, the primary, at addr.
static void
s_p1_at (s_world_t *w, const char *addr)
{
    fake_broker_node_t nodes [2] = {
        { "p1", "", WC_ROLE_PRIMARY, 1, true, 0 },
        { "r1", "", WC_ROLE_REPLICA, 1, true, 0 },
    };
    snprintf (nodes [0].addr, sizeof nodes [0].addr, "%s", addr);
    snprintf (nodes [1].addr, sizeof nodes [1].addr, "%s", w->r1_addr);
    fake_broker_set_nodes (w->broker, nodes, 2);
}

//  Set a fake node's role, epoch and how it refuses writes.
static void
s_node (fake_node_t *node, int role, uint64_t epoch, int refuse, bool silent,
        const char *detail)
{
    fake_node_conf_t conf;
    fake_node_conf (node, &conf);
    conf.role = role;
    conf.epoch = epoch;
    conf.refuse = refuse;
    conf.silent_writes = silent;
    snprintf (conf.detail, sizeof conf.detail, "%s", detail);
    fake_node_set (node, &conf);
}

static int
s_writes (fake_node_t *node)
{
    fake_node_seen_t seen;
    fake_node_seen (node, &seen);
    return seen.writes;
}

static int
s_setup (void **state)
{
    s_world_t *w = calloc (1, sizeof *w);
    *state = w;
    w->cluster = cluster_new ("client_failover");
    if (!w->cluster)
        return 0;
    int port = cluster_spare_port (w->cluster);
    snprintf (w->broker_addr, sizeof w->broker_addr, "127.0.0.1:%d", port);
    snprintf (w->p1_addr, sizeof w->p1_addr, "127.0.0.1:%d", port + 3);
    snprintf (w->r1_addr, sizeof w->r1_addr, "127.0.0.1:%d", port + 6);
    w->broker = fake_broker_new (port);
    w->p1 = fake_node_new (port + 3, "p1");
    w->r1 = fake_node_new (port + 6, "r1");
    if (w->broker && w->p1 && w->r1) {
        s_directory (w, "p1", 1);
        s_node (w->r1, WC_ROLE_REPLICA, 1, 0, false, w->p1_addr);
    }
    return 0;
}

static int
s_teardown (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    fake_node_destroy (&w->r1);
    fake_node_destroy (&w->p1);
    fake_broker_destroy (&w->broker);
    cluster_destroy (&w->cluster);
    free (w);
    return 0;
}

static s_world_t *
s_world (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->broker || !w->p1 || !w->r1)
        fail_msg ("the test could not be set up (see above)");
    return w;
}

/*  A put run in a thread of its own, on its own handle. */
typedef struct {
    s_world_t    *w;
    int           timeout_ms;
    bool          direct;       /* to p1 alone (walcast_connect), no broker */
    pthread_t     thread;
    int           rc;
    walcast_pos_t pos;
    char          detail [256];
    int64_t       took_ms;
} s_put_t;

static void *
s_put_run (void *arg)
{
    s_put_t *put = (s_put_t *) arg;
    walcast_t *h = walcast_new ();
    put->rc = WALCAST_ENOMEM;
    if (!h)
        return NULL;
    walcast_set_timeout (h, put->timeout_ms);
    int64_t started = cluster_now_ms ();
    put->rc = put->direct ? walcast_connect (h, put->w->p1_addr)
                          : walcast_connect_broker (h, put->w->broker_addr);
    if (put->rc == 0)
        put->rc = walcast_put (h, "k", 1, "v", 1, &put->pos);
    put->took_ms = cluster_now_ms () - started;
    snprintf (put->detail, sizeof put->detail, "%s", walcast_last_detail (h));
    walcast_destroy (&h);
    return NULL;
}

static void
s_put_start_to (s_put_t *put, s_world_t *w, int timeout_ms, bool direct)
{
    memset (put, 0, sizeof *put);
    put->w = w;
    put->timeout_ms = timeout_ms;
    put->direct = direct;
    assert_int_equal (pthread_create (&put->thread, NULL, s_put_run, put), 0);
}

static void
s_put_start (s_put_t *put, s_world_t *w, int timeout_ms)
{
    s_put_start_to (put, w, timeout_ms, false);
}

static void
s_put_join (s_put_t *put)
{
    pthread_join (put->thread, NULL);
    print_message ("put: %s (%d) in %lld ms at (%llu, %llu); detail '%s'\n",
                   walcast_errname (put->rc), put->rc, (long long) put->took_ms,
                   (unsigned long long) put->pos.epoch,
                   (unsigned long long) put->pos.seq, put->detail);
}

//  Poll until node has received at least n writes; false after 5 s.
static bool
s_wait_writes (fake_node_t *node, int n)
{
    int64_t deadline = cluster_now_ms () + 5000;
    while (s_writes (node) < n) {
        if (cluster_now_ms () > deadline)
            return false;
        cluster_nap_ms (5);
    }
    return true;
}

//  A put of 30 s that p1 took and holds unanswered (sent through the
//  broker, or with direct to p1 alone).
static void
s_put_held (s_put_t *put, s_world_t *w, bool direct)
{
    s_node (w->p1, WC_ROLE_PRIMARY, 1, 0, true, "");
    s_put_start_to (put, w, 30000, direct);
    assert_true (s_wait_writes (w->p1, 1));
}

//  The broker promotes r1 in epoch 2; p1 follows it.
static void
s_promote_r1 (s_world_t *w)
{
    s_node (w->r1, WC_ROLE_PRIMARY, 2, 0, false, "");
    s_node (w->p1, WC_ROLE_REPLICA, 2, 0, false, w->r1_addr);
    s_directory (w, "r1", 2);
}

//  p1 was replaced and knows it (an ACK of a newer epoch), not by whom.
static void
test_fenced_waits_for_new_primary (void **state)
{
    s_world_t *w = s_world (state);
    s_node (w->p1, WC_ROLE_PRIMARY, 1, WALCAST_EFENCED, false, "epoch 1 ended");
    s_put_t put;
    s_put_start (&put, w, 5000);
    bool refused = s_wait_writes (w->p1, 1);
    s_promote_r1 (w);
    s_put_join (&put);
    assert_true (refused);
    assert_int_equal (put.rc, 0);
    assert_int_equal (put.pos.epoch, 2);
    assert_int_equal (put.pos.seq, 1);
    assert_int_equal (s_writes (w->p1), 1);
    assert_int_equal (s_writes (w->r1), 1);
    cluster_pass (w->cluster);
}

//  A switchover under way: p1 names r1, which is not promoted yet and
//  names p1. The write lands on r1 once the broker has promoted it.
static void
test_switchover_redirects (void **state)
{
    s_world_t *w = s_world (state);
    s_node (w->p1, WC_ROLE_PRIMARY, 1, WALCAST_ENOTPRIMARY, false, w->r1_addr);
    s_put_t put;
    s_put_start (&put, w, 5000);
    bool redirected = s_wait_writes (w->r1, 1);
    s_promote_r1 (w);
    s_put_join (&put);
    assert_true (redirected);
    assert_int_equal (put.rc, 0);
    assert_int_equal (put.pos.epoch, 2);
    assert_int_equal (s_writes (w->p1), 1);
    assert_int_equal (s_writes (w->r1), 2);
    cluster_pass (w->cluster);
}

//  A switchover that is cancelled (the target could not catch up, or
//  died): p1 refused the write naming r1, r1 refused it naming p1, and
//  p1 then takes writes again at the same epoch. The write goes back to
//  p1 and lands there (it was not applied: resending is safe). Before,
//  a node that had refused was never tried again at the same epoch, and
//  the write waited out its whole timeout, then failed.
static void
test_switchover_cancelled (void **state)
{
    s_world_t *w = s_world (state);
    s_node (w->p1, WC_ROLE_PRIMARY, 1, WALCAST_ENOTPRIMARY, false, w->r1_addr);
    s_put_t put;
    s_put_start (&put, w, 5000);
    bool redirected = s_wait_writes (w->r1, 1);
    s_node (w->p1, WC_ROLE_PRIMARY, 1, 0, false, "");       /* cancelled */
    int64_t cancelled = cluster_now_ms ();
    s_put_join (&put);
    int64_t after = cluster_now_ms () - cancelled;
    print_message ("the write landed %lld ms after the cancel\n", (long long) after);
    assert_true (redirected);
    assert_int_equal (put.rc, 0);
    assert_int_equal (put.pos.epoch, 1);
    assert_true (s_writes (w->p1) >= 2);
    assert_int_equal (s_writes (w->r1), 1);
    assert_true (after < 2500);         /* not the whole 5 s timeout */
    cluster_pass (w->cluster);
}

//  A slow switchover (the target catches up for 6 s; the broker allows
//  10): p1 and r1 refuse the write naming each other all along, and it
//  lands on r1 once promoted, within its 10 s timeout. Before, resends
//  to the two nodes every half second used up a budget of 16 sends in
//  about 3.5 s and the write failed ENOTPRIMARY (a reviewer's find).
static void
test_switchover_slow (void **state)
{
    s_world_t *w = s_world (state);
    s_node (w->p1, WC_ROLE_PRIMARY, 1, WALCAST_ENOTPRIMARY, false, w->r1_addr);
    s_put_t put;
    s_put_start (&put, w, 10000);
    bool redirected = s_wait_writes (w->r1, 1);
    //  The switchover takes 6 s (the scenario)
    int64_t started = cluster_now_ms ();
    while (cluster_now_ms () - started < 6000)
        cluster_nap_ms (50);
    s_promote_r1 (w);
    s_put_join (&put);
    print_message ("sends: p1 %d, r1 %d\n", s_writes (w->p1), s_writes (w->r1));
    assert_true (redirected);
    assert_int_equal (put.rc, 0);
    assert_int_equal (put.pos.epoch, 2);
    cluster_pass (w->cluster);
}

//  A write that timed out is not sent again, even once a new primary
//  is known: p1 may have applied it; walcast_last_detail says so, naming
//  the node and the wait (before, it was empty: a soak's find).
static void
test_timeout_not_retried (void **state)
{
    s_world_t *w = s_world (state);
    s_node (w->p1, WC_ROLE_PRIMARY, 1, 0, true, "");
    //  The CLI says it once, with what to do
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "--broker", w->broker_addr,
                          "--timeout", "800", "put", "k", "v", NULL);
    print_message ("put to a silent primary: exit %d, stderr %s", rc, err);
    assert_int_equal (rc, 3);
    assert_string_equal (out, "");
    assert_non_null (strstr (err, "within 800 ms: the write was sent, so it may or may "
                                  "not have been made; check the node (walcast status), "
                                  "then read the key"));
    free (out);
    free (err);
    assert_true (s_wait_writes (w->p1, 1));

    s_put_t put;
    s_put_start (&put, w, 1500);
    bool sent = s_wait_writes (w->p1, 2);
    s_promote_r1 (w);
    s_put_join (&put);
    assert_true (sent);
    assert_int_equal (put.rc, WALCAST_ETIMEOUT);
    char want [128];
    snprintf (want, sizeof want, "no answer from %s within 1500 ms", w->p1_addr);
    assert_non_null (strstr (put.detail, want));
    assert_non_null (strstr (put.detail, "may or may not have been made"));
    assert_int_equal (s_writes (w->p1), 2);
    assert_int_equal (s_writes (w->r1), 0);
    cluster_pass (w->cluster);
}

//  A write sent to a primary that then stops with it unanswered (frozen,
//  or its host gone: nothing resets the connection), while the broker
//  names r1 and lists p1 down, and p1 no longer answers PINGs either:
//  its outcome is unknown, and the call says so once the topology and
//  the PINGs show it, instead of waiting out its whole timeout (a soak's
//  find: 30 s for a put whose primary had been replaced in 3). It is not
//  sent to r1: p1 may have applied it.
static void
test_sent_to_replaced_primary (void **state)
{
    s_world_t *w = s_world (state);
    s_put_t put;
    s_put_held (&put, w, false);
    fake_node_conf_t conf;
    fake_node_conf (w->p1, &conf);
    conf.frozen = true;
    fake_node_set (w->p1, &conf);
    s_node (w->r1, WC_ROLE_PRIMARY, 2, 0, false, "");
    s_p1_replaced (w);
    s_put_join (&put);
    assert_int_equal (put.rc, WALCAST_ETIMEOUT);
    assert_true (put.took_ms < 15000);          // not the whole timeout
    char want [160];
    snprintf (want, sizeof want, "the primary moved to %s and the broker lists %s down",
              w->r1_addr, w->p1_addr);
    assert_non_null (strstr (put.detail, want));
    assert_non_null (strstr (put.detail, "the write was sent, so it may or may not "
                                         "have been made"));
    assert_int_equal (s_writes (w->r1), 0);
    s_pings_alone ();
    cluster_pass (w->cluster);
}

//  A write whose primary restarts before it answered: the connection it
//  went on dropped, so no answer can come on the new one, and the call
//  says so as soon as the client sees the drop, instead of waiting out
//  its whole timeout (found in review: 30 s). It is not sent again.
//  Through the broker, which names p1 the primary all along (it
//  restarted faster than the failover timeout) or, with replaced, names
//  r1 once p1 runs again; or with direct, to p1 alone and no broker. p1
//  is down for down_ms: 1.5 s, which a PING finds, or 0, a restart
//  faster than any PING (found in review: the write waited its 30 s).
static void
s_restart_p1 (s_world_t *w, bool direct, bool replaced, int down_ms)
{
    s_put_t put;
    s_put_held (&put, w, direct);
    fake_node_destroy (&w->p1);
    if (down_ms > 0)
        cluster_nap_ms (down_ms);               // down a while: the scenario
    w->p1 = fake_node_new (cluster_spare_port (w->cluster) + 3, "p1");
    assert_non_null (w->p1);
    if (replaced) {
        s_node (w->p1, WC_ROLE_REPLICA, 2, 0, true, w->r1_addr);
        s_node (w->r1, WC_ROLE_PRIMARY, 2, 0, false, "");
        s_p1_replaced (w);
    }
    s_put_join (&put);
    assert_int_equal (put.rc, WALCAST_ETIMEOUT);
    assert_true (put.took_ms < 15000);
    char want [160];
    snprintf (want, sizeof want, "the connection to %s dropped with the write "
              "unanswered", w->p1_addr);
    //  (replaced: "the primary moved to ..." when a PING was in flight
    //  as p1 died, and the drop was seen only after the move)
    assert_true (replaced || strstr (put.detail, want));
    assert_non_null (strstr (put.detail, "the write was sent, so it may or may not "
                                         "have been made"));
    assert_int_equal (s_writes (w->p1), 0);
    assert_int_equal (s_writes (w->r1), 0);
    s_pings_alone ();
}

static void
test_sent_to_primary_that_restarts (void **state)
{
    s_world_t *w = s_world (state);
    s_restart_p1 (w, false, true, 1500);
    cluster_pass (w->cluster);
}

static void
test_sent_to_primary_restarted_in_place (void **state)
{
    s_world_t *w = s_world (state);
    s_restart_p1 (w, false, false, 1500);
    cluster_pass (w->cluster);
}

static void
test_sent_to_node_restarted (void **state)
{
    s_world_t *w = s_world (state);
    s_restart_p1 (w, true, false, 1500);
    cluster_pass (w->cluster);
}

static void
test_sent_to_primary_restarted_at_once (void **state)
{
    s_world_t *w = s_world (state);
    s_restart_p1 (w, false, false, 0);
    cluster_pass (w->cluster);
}

static void
test_sent_to_node_restarted_at_once (void **state)
{
    s_world_t *w = s_world (state);
    s_restart_p1 (w, true, false, 0);
    cluster_pass (w->cluster);
}

//  One handle's sync writes go to p1, then (the broker promotes r1) to
//  r1: the handle's watch on its write's connection moves from p1's
//  socket to r1's while p1's stays open. Then p1 dies, and the handle
//  goes on writing to r1. (Found in review: a monitor left running on
//  p1's socket after its other end was closed blocks libzmq's I/O thread
//  at p1's drop, and every later request of the handle times out.)
static void
test_watch_moves_with_primary (void **state)
{
    s_world_t *w = s_world (state);
    s_node (w->p1, WC_ROLE_PRIMARY, 1, 0, false, "");
    walcast_t *h = walcast_new ();
    assert_non_null (h);
    walcast_set_timeout (h, 10000);
    assert_int_equal (walcast_connect_broker (h, w->broker_addr), 0);
    walcast_pos_t pos;
    assert_int_equal (walcast_put (h, "a", 1, "1", 1, &pos), 0);
    assert_int_equal (pos.epoch, 1);
    s_promote_r1 (w);
    assert_int_equal (walcast_put (h, "b", 1, "2", 1, &pos), 0);
    assert_int_equal (pos.epoch, 2);
    fake_node_destroy (&w->p1);
    int rc = walcast_put (h, "c", 1, "3", 1, &pos);
    print_message ("put after p1 died: %s; detail '%s'\n", walcast_errname (rc),
                   walcast_last_detail (h));
    assert_int_equal (rc, 0);
    assert_int_equal (pos.epoch, 2);
    assert_int_equal (s_writes (w->r1), 2);
    walcast_destroy (&h);
    cluster_pass (w->cluster);
}

//  A write sent to p1, which the broker then replaces (r1 named, p1
//  listed down) while p1 still runs and answers PINGs: a switchover's old
//  primary, which the broker lists down as soon as it names the target,
//  or a primary cut off from the broker only. It answers the write it
//  holds (3 s later here), and the call waits for that answer instead of
//  calling the outcome unknown.
static void
test_replaced_primary_still_answers (void **state)
{
    s_world_t *w = s_world (state);
    fake_node_conf_t conf;
    fake_node_conf (w->p1, &conf);
    conf.write_ms = 3000;
    fake_node_set (w->p1, &conf);
    s_put_t put;
    s_put_start (&put, w, 30000);
    assert_true (s_wait_writes (w->p1, 1));
    s_node (w->r1, WC_ROLE_PRIMARY, 2, 0, false, "");
    s_p1_replaced (w);
    s_put_join (&put);
    assert_int_equal (put.rc, 0);
    assert_int_equal (put.pos.epoch, 1);
    assert_int_equal (s_writes (w->r1), 0);
    cluster_pass (w->cluster);
}

//  No successor within the timeout: the refusal, after the timeout,
//  with its detail; the CLI says the write was not made.
//  r1 becomes the primary (p1 is gone), a second after it starts.
static void *
s_promote_later (void *arg)
{
    s_world_t *w = (s_world_t *) arg;
    cluster_nap_ms (1000);
    s_node (w->r1, WC_ROLE_PRIMARY, 2, 0, false, "");
    s_directory (w, "r1", 2);
    return NULL;
}

//  p1 is dead (SIGKILL: nothing listens at its port) and the broker
//  still names it: the write cannot reach it, so it was not made. Once
//  the broker names r1 (within the timeout) the write goes there
//  instead of waiting out the timeout as an unknown outcome.
static void
test_dead_primary_write_moves (void **state)
{
    s_world_t *w = s_world (state);
    fake_node_destroy (&w->p1);
    s_put_t put;
    s_put_start (&put, w, 5000);
    //  The broker notices a second later (the scenario, not a wait for
    //  a condition: what the write does meanwhile is what is tested)
    int64_t started = cluster_now_ms ();
    while (cluster_now_ms () - started < 1000)
        cluster_nap_ms (5);
    bool asked = fake_broker_topology_gets (w->broker) >= 1;
    s_node (w->r1, WC_ROLE_PRIMARY, 2, 0, false, "");
    s_directory (w, "r1", 2);
    s_put_join (&put);
    assert_true (asked);
    assert_int_equal (put.rc, 0);
    assert_int_equal (put.pos.epoch, 2);
    assert_int_equal (s_writes (w->r1), 1);
    cluster_pass (w->cluster);
}

//  The same while the broker's directory grows past what the client's
//  table holds (four nodes, then eight): the write that waits for a
//  connection to p1 keeps its place in the table, which may move, and
//  goes to r1 once the broker names it (under AddressSanitizer, a use of
//  the table's old memory fails the test).
static void
test_dead_primary_write_table_grows (void **state)
{
    s_world_t *w = s_world (state);
    fake_node_destroy (&w->p1);
    s_put_t put;
    s_put_start (&put, w, 5000);
    //  Once the write waits (the scenario, not a wait for a condition),
    //  three nodes more (nothing listens there)
    cluster_nap_ms (500);
    fake_broker_node_t nodes [5] = {
        { "p1", "", WC_ROLE_PRIMARY, 1, true, 0 },
        { "r1", "", WC_ROLE_REPLICA, 1, true, 0 },
        { "x1", "", WC_ROLE_REPLICA, 1, false, 0 },
        { "x2", "", WC_ROLE_REPLICA, 1, false, 0 },
        { "x3", "", WC_ROLE_REPLICA, 1, false, 0 },
    };
    snprintf (nodes [0].addr, sizeof nodes [0].addr, "%s", w->p1_addr);
    snprintf (nodes [1].addr, sizeof nodes [1].addr, "%s", w->r1_addr);
    for (int i = 2; i < 5; i++)         // past r1's (the setup's ports)
        snprintf (nodes [i].addr, sizeof nodes [i].addr, "127.0.0.1:%d",
                  cluster_spare_port (w->cluster) + 3 * i + 3);
    fake_broker_set_nodes (w->broker, nodes, 5);
    //  It pushes that every 20 ms; the client reads it within a tick
    cluster_nap_ms (500);
    s_node (w->r1, WC_ROLE_PRIMARY, 2, 0, false, "");
    nodes [0].role = WC_ROLE_REPLICA;
    nodes [0].up = false;
    nodes [1].role = WC_ROLE_PRIMARY;
    nodes [0].epoch = nodes [1].epoch = 2;
    fake_broker_set_nodes (w->broker, nodes, 5);
    s_put_join (&put);
    assert_int_equal (put.rc, 0);
    assert_int_equal (put.pos.epoch, 2);
    assert_int_equal (s_writes (w->r1), 1);
    cluster_pass (w->cluster);
}

//  The same, and no other primary appears: the write was never sent, so
//  the call says it was not made (EUNAVAILABLE), not that its outcome is
//  unknown.
static void
test_dead_primary_write_not_made (void **state)
{
    s_world_t *w = s_world (state);
    fake_node_destroy (&w->p1);
    s_put_t put;
    s_put_start (&put, w, 1500);
    s_put_join (&put);
    assert_int_equal (put.rc, WALCAST_EUNAVAILABLE);
    assert_non_null (strstr (put.detail, "not sent"));
    assert_int_equal (s_writes (w->r1), 0);
    cluster_pass (w->cluster);
}

static void
test_fenced_without_successor (void **state)
{
    s_world_t *w = s_world (state);
    s_node (w->p1, WC_ROLE_PRIMARY, 1, WALCAST_EFENCED, false, "epoch 1 ended");
    s_put_t put;
    s_put_start (&put, w, 1200);
    s_put_join (&put);
    assert_int_equal (put.rc, WALCAST_EFENCED);
    assert_string_equal (put.detail, "epoch 1 ended");
    assert_true (put.took_ms >= 1200);
    assert_int_equal (s_writes (w->r1), 0);

    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "--broker", w->broker_addr,
                          "--timeout", "800", "put", "k", "v", NULL);
    print_message ("put to a fenced primary: exit %d, stderr %s", rc, err);
    assert_int_equal (rc, 3);
    assert_string_equal (out, "");
    assert_non_null (strstr (err, "walcast: put: refused: it comes from an older epoch: "
                                  "epoch 1 ended; the write was not made"));
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

/*  What the outcome function was handed. */
typedef struct {
    int           count;
    int           state [8];
    int           err [8];
    walcast_pos_t pos [8];
    uint64_t      accepting;    /* tag of the write being submitted, 0 none */
    int           early;        /* outcomes of that write handed over inside
                                   the call that accepted it */
} s_seen_t;

static void
s_on_outcome (void *arg, const walcast_outcome_t *o)
{
    s_seen_t *seen = (s_seen_t *) arg;
    if (seen->accepting && o->tag == seen->accepting)
        seen->early++;
    if (seen->count < 8) {
        seen->state [seen->count] = o->state;
        seen->err [seen->count] = o->err;
        seen->pos [seen->count] = o->pos;
    }
    seen->count++;
}

//  A handle on the broker with this timeout whose async outcomes go to
//  *seen (emptied).
static walcast_t *
s_async_handle (s_world_t *w, int timeout_ms, s_seen_t *seen)
{
    memset (seen, 0, sizeof *seen);
    walcast_t *h = walcast_new ();
    assert_non_null (h);
    walcast_set_timeout (h, timeout_ms);
    assert_int_equal (walcast_connect_broker (h, w->broker_addr), 0);
    walcast_set_outcome_fn (h, s_on_outcome, seen);
    return h;
}

//  Async writes in flight to p1 when the topology moves the primary to
//  r1: the next write goes to r1 (once those in flight are answered),
//  not to p1, which refuses it now.
static void
test_async_follow (void **state)
{
    s_world_t *w = s_world (state);
    fake_node_conf_t conf;
    fake_node_conf (w->p1, &conf);
    conf.write_ms = 800;
    fake_node_set (w->p1, &conf);
    s_seen_t seen;
    walcast_t *h = s_async_handle (w, 3000, &seen);
    assert_int_equal (walcast_put_async (h, "a", 1, "1", 1, 1), 0);
    assert_true (s_wait_writes (w->p1, 1));

    //  The failover, and the handle learns it (walcast_nodes refreshes)
    s_promote_r1 (w);
    walcast_node_info_t nodes [4];
    size_t count = 0;
    assert_int_equal (walcast_nodes (h, nodes, 4, &count), 0);
    for (size_t i = 0; i < count; i++)
        print_message ("%s: %s, epoch %llu\n", nodes [i].id, nodes [i].role,
                       (unsigned long long) nodes [i].epoch);
    assert_int_equal (walcast_put_async (h, "b", 1, "2", 1, 2), 0);
    uint64_t acked = 0;
    int rc = walcast_flush (h, NULL, &acked);
    print_message ("flush: %s, %llu acked; outcomes:", walcast_errname (rc),
                   (unsigned long long) acked);
    for (int i = 0; i < seen.count && i < 8; i++)
        print_message (" [%d: %s at (%llu, %llu)]", seen.state [i],
                       walcast_errname (seen.err [i]),
                       (unsigned long long) seen.pos [i].epoch,
                       (unsigned long long) seen.pos [i].seq);
    print_message ("\n");
    assert_int_equal (rc, 0);
    assert_int_equal (acked, 2);
    assert_int_equal (seen.count, 2);
    assert_int_equal (seen.pos [0].epoch, 1);
    assert_int_equal (seen.pos [1].epoch, 2);
    assert_int_equal (s_writes (w->p1), 1);
    assert_int_equal (s_writes (w->r1), 1);
    walcast_destroy (&h);
    cluster_pass (w->cluster);
}

//  Async writes to a primary that is dead (the broker still names it),
//  the broker naming r1 a second later: every write gets exactly one
//  outcome, never inside the call that accepted it, and all of them land
//  on r1, within the timeout: none was sent to p1, so none is unknown.
//  Found as `walcast load` losing its first line after a SIGKILL,
//  neither landed nor reported: that write could not be sent, its
//  outcome came inside walcast_put_async, before load had recorded the
//  line, and every later outcome was paired with the line before. And
//  later as `walcast load` failing a timeout's worth of lines "not sent"
//  across a failover: the batch waited for the dead primary's
//  connection until its deadline, blind to the broker naming r1.
static void
test_dead_primary_async (void **state)
{
    s_world_t *w = s_world (state);
    fake_node_destroy (&w->p1);
    s_seen_t seen;
    walcast_t *h = s_async_handle (w, 3000, &seen);
    //  The failover, from a thread of its own a second from now
    pthread_t promoter;
    assert_int_equal (pthread_create (&promoter, NULL, s_promote_later, w), 0);
    int sent = 0;
    const char *keys [] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        seen.accepting = (uint64_t) i + 1;
        if (walcast_put_async (h, keys [i], 1, "v", 1, (uint64_t) i + 1) == 0)
            sent++;
        seen.accepting = 0;
    }
    uint64_t acked = 0;
    int rc = walcast_flush (h, NULL, &acked);
    pthread_join (promoter, NULL);
    print_message ("%d accepted, flush %s, %llu acked, %d outcomes, r1 got %d\n", sent,
                   walcast_errname (rc), (unsigned long long) acked, seen.count,
                   s_writes (w->r1));
    for (int i = 0; i < seen.count && i < 8; i++)
        print_message ("  outcome %d: state %d, %s at (%llu, %llu)\n", i, seen.state [i],
                       walcast_errname (seen.err [i]),
                       (unsigned long long) seen.pos [i].epoch,
                       (unsigned long long) seen.pos [i].seq);
    assert_int_equal (seen.count, sent);
    assert_int_equal ((int) acked, s_writes (w->r1));
    assert_int_equal (rc, 0);
    assert_int_equal (sent, 3);
    assert_int_equal ((int) acked, 3);
    //  No outcome before the call that accepted its write returned: an
    //  application (walcast load) records a write once accepted
    assert_int_equal (seen.early, 0);
    walcast_destroy (&h);
    cluster_pass (w->cluster);
}

//  The broker moves p1 to `real` after 500 ms (a thread of its own).
typedef struct {
    s_world_t *w;
    char       gone [32];
} s_mover_t;

static void *
s_move_later (void *arg)
{
    s_mover_t *m = (s_mover_t *) arg;
    cluster_nap_ms (500);
    s_p1_at (m->w, m->w->p1_addr);
    return NULL;
}

//  An async write waits for a connection to p1, which the broker lists
//  at an address where nothing listens; the broker then lists p1 where
//  it runs (it moved). The move replaces p1's socket and fails the write
//  as not sent; it is then not sent after all: p1 gets only the write
//  made after it. Found in review: it went out on the new socket, was
//  applied, and was reported not made.
static void
test_async_write_node_moves (void **state)
{
    s_world_t *w = s_world (state);
    s_mover_t mover = { .w = w };
    snprintf (mover.gone, sizeof mover.gone, "127.0.0.1:%d",
              cluster_spare_port (w->cluster) + 9);
    s_p1_at (w, mover.gone);
    s_seen_t seen;
    walcast_t *h = s_async_handle (w, 3000, &seen);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_move_later, &mover), 0);
    int rc = walcast_put_async (h, "a", 1, "1", 1, 1);
    uint64_t acked = 0;
    int frc = walcast_flush (h, NULL, &acked);
    pthread_join (thread, NULL);
    print_message ("put_async %s, flush %s, %llu acked, %d outcomes (state %d, %s); "
                   "p1 got %d\n", walcast_errname (rc), walcast_errname (frc),
                   (unsigned long long) acked, seen.count, seen.state [0],
                   walcast_errname (seen.err [0]), s_writes (w->p1));
    assert_int_equal (rc, 0);
    assert_int_equal (seen.count, 1);
    assert_int_equal (seen.state [0], WALCAST_WRITE_FAILED);
    //  A write on the same connection, answered: p1 has read all before it
    walcast_pos_t pos;
    assert_int_equal (walcast_put (h, "b", 1, "2", 1, &pos), 0);
    assert_int_equal (s_writes (w->p1), 1);
    walcast_destroy (&h);
    cluster_pass (w->cluster);
}

//  The broker names r1 the primary, p1 down, 500 ms from now.
static void *
s_replace_later (void *arg)
{
    s_world_t *w = (s_world_t *) arg;
    cluster_nap_ms (500);
    s_node (w->r1, WC_ROLE_PRIMARY, 2, 0, false, "");
    s_p1_replaced (w);
    return NULL;
}

//  A write asking for other acks than the batch being filled sends that
//  batch first. When the batch cannot go (p1 died with a write in flight)
//  and the primary moves meanwhile, it waits for the write sent to p1
//  to be settled, and the write after it goes in a batch of its own with
//  its own acks. Found in review: it joined the kept batch, whose header
//  asked for the acks of the writes before it (none here), and was
//  reported made without the confirmation it asked for.
static void
test_async_acks_after_move (void **state)
{
    s_world_t *w = s_world (state);
    s_node (w->p1, WC_ROLE_PRIMARY, 1, 0, true, "");
    s_seen_t seen;
    walcast_t *h = s_async_handle (w, 10000, &seen);
    assert_int_equal (walcast_put_async (h, "a", 1, "1", 1, 1), 0);
    assert_true (s_wait_writes (w->p1, 1));
    fake_node_destroy (&w->p1);
    //  b waits for a connection to p1, in the batch or in the send (when
    //  its batch is due at once), until the broker names r1
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_replace_later, w), 0);
    assert_int_equal (walcast_put_async (h, "b", 1, "2", 1, 2), 0);
    assert_int_equal (walcast_set_acks (h, 1, 300), 0);
    int rc = walcast_put_async (h, "c", 1, "3", 1, 3);
    uint64_t acked = 0;
    int frc = walcast_flush (h, NULL, &acked);
    pthread_join (thread, NULL);
    fake_node_seen_t r1;
    fake_node_seen (w->r1, &r1);
    print_message ("put_async %s, flush %s, %llu acked; r1 got %d writes in %d "
                   "batches, the last asking acks %d; outcomes:", walcast_errname (rc),
                   walcast_errname (frc), (unsigned long long) acked, r1.writes,
                   r1.batches, r1.last_acks);
    for (int i = 0; i < seen.count && i < 8; i++)
        print_message (" [%d: %s]", seen.state [i], walcast_errname (seen.err [i]));
    print_message ("\n");
    assert_int_equal (rc, 0);
    assert_int_equal (seen.count, 3);
    assert_int_equal (seen.state [0], WALCAST_WRITE_UNKNOWN);   // a, p1 died
    //  Never made with its acks unconfirmed: r1 has no replica
    assert_int_not_equal (seen.state [2], WALCAST_WRITE_OK);
    //  On a busy machine the handle may see p1's connection close only
    //  after b and c went into it: all three are then unknown, and r1 got
    //  none. Otherwise b and c went to r1, c with its own acks
    if (r1.writes > 0) {
        assert_int_equal (r1.writes, 2);
        assert_int_equal (r1.last_acks, 1);
        assert_int_equal (seen.state [1], WALCAST_WRITE_OK);
        assert_int_equal (seen.state [2], WALCAST_WRITE_NOTREPLICATED);
    }
    walcast_destroy (&h);
    cluster_pass (w->cluster);
}

//  Async writes in flight to p1 when it dies (it took them and never
//  answers) and the broker promotes r1, listing p1 down: once the handle
//  knows, the writes sent are unknown at once (p1 is gone: waiting a
//  whole timeout for it tells nothing more), and the writes after them
//  land on r1, well within the timeout. Found as `walcast load` stalling
//  a timeout across a failover and then failing the lines it had not
//  sent yet.
static void
test_async_old_primary_down (void **state)
{
    s_world_t *w = s_world (state);
    s_node (w->p1, WC_ROLE_PRIMARY, 1, 0, true, "");
    s_seen_t seen;
    walcast_t *h = s_async_handle (w, 10000, &seen);
    assert_int_equal (walcast_put_async (h, "a", 1, "1", 1, 1), 0);
    assert_true (s_wait_writes (w->p1, 1));

    //  p1 dies; the broker lists it down and r1 the primary of epoch 2
    int64_t started = cluster_now_ms ();
    s_node (w->r1, WC_ROLE_PRIMARY, 2, 0, false, "");
    s_p1_replaced (w);
    walcast_node_info_t listed [4];
    size_t count = 0;
    assert_int_equal (walcast_nodes (h, listed, 4, &count), 0);
    for (int i = 0; i < 3; i++) {
        seen.accepting = (uint64_t) i + 2;
        assert_int_equal (walcast_put_async (h, "b", 1, "2", 1, (uint64_t) i + 2), 0);
        seen.accepting = 0;
    }
    uint64_t acked = 0;
    int rc = walcast_flush (h, NULL, &acked);
    int64_t took = cluster_now_ms () - started;
    print_message ("flush: %s in %lld ms, %llu acked; outcomes:", walcast_errname (rc),
                   (long long) took, (unsigned long long) acked);
    for (int i = 0; i < seen.count && i < 8; i++)
        print_message (" [%d: %s at (%llu, %llu)]", seen.state [i],
                       walcast_errname (seen.err [i]),
                       (unsigned long long) seen.pos [i].epoch,
                       (unsigned long long) seen.pos [i].seq);
    print_message ("\n");
    assert_int_equal (seen.count, 4);
    assert_int_equal (seen.state [0], WALCAST_WRITE_UNKNOWN);
    for (int i = 1; i < 4; i++) {
        assert_int_equal (seen.state [i], WALCAST_WRITE_OK);
        assert_int_equal (seen.pos [i].epoch, 2);
    }
    assert_int_equal ((int) acked, 3);
    assert_int_equal (s_writes (w->r1), 3);
    assert_int_equal (seen.early, 0);
    //  Not a whole timeout: the topology push comes every 20 ms
    assert_true (took < 5000);
    walcast_destroy (&h);
    cluster_pass (w->cluster);
}

//  A write in flight that is never answered while its connection looks
//  fine (found by a chaos helper: the primary killed and restarted at
//  once at the same address, libzmq reconnected, the write sent on the
//  old connection was gone). Its outcome is UNKNOWN once a timeout has
//  passed, and the later writes' outcomes, answered, come right after it
//  instead of waiting behind it (they waited 22 s, until the final
//  flush, since outcomes come in submission order).
static void
test_async_unanswered_write (void **state)
{
    s_world_t *w = s_world (state);
    s_node (w->p1, WC_ROLE_PRIMARY, 1, 0, true, "");     /* takes it, never answers */
    s_seen_t seen;
    walcast_t *h = s_async_handle (w, 1000, &seen);
    assert_int_equal (walcast_put_async (h, "a", 1, "1", 1, 1), 0);
    assert_true (s_wait_writes (w->p1, 1));
    s_node (w->p1, WC_ROLE_PRIMARY, 1, 0, false, "");    /* answers the others */
    int64_t started = cluster_now_ms ();
    uint64_t tag = 2;
    while (seen.count < 3 && cluster_now_ms () - started < 8000) {
        assert_int_equal (walcast_put_async (h, "b", 1, "2", 1, tag++), 0);
        cluster_nap_ms (50);
    }
    int64_t took = cluster_now_ms () - started;
    print_message ("%d outcomes after %lld ms; the first: state %d, %s\n", seen.count,
                   (long long) took, seen.state [0], walcast_errname (seen.err [0]));
    assert_true (seen.count >= 3);
    assert_int_equal (seen.state [0], WALCAST_WRITE_UNKNOWN);
    assert_int_equal (seen.state [1], WALCAST_WRITE_OK);
    assert_true (took < 4000);
    walcast_flush (h, NULL, NULL);
    walcast_destroy (&h);
    cluster_pass (w->cluster);
}

int
main (void)
{
    //  The cases a PING can see: all the PING-only build runs
    const struct CMUnitTest pings [] = {
        cmocka_unit_test_setup_teardown (test_sent_to_replaced_primary, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_sent_to_primary_that_restarts, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_sent_to_primary_restarted_in_place, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_sent_to_node_restarted, s_setup, s_teardown),
    };
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_fenced_waits_for_new_primary, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_switchover_redirects, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_switchover_cancelled, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_switchover_slow, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_timeout_not_retried, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sent_to_primary_restarted_at_once, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_sent_to_node_restarted_at_once, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_watch_moves_with_primary, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replaced_primary_still_answers, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_fenced_without_successor, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_async_follow, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_dead_primary_write_moves, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_dead_primary_write_table_grows, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_dead_primary_write_not_made, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_dead_primary_async, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_async_write_node_moves, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_async_acks_after_move, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_async_old_primary_down, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_async_unanswered_write, s_setup,
                                         s_teardown),
    };
    int failed = cmocka_run_group_tests (pings, NULL, NULL);
#ifdef WC_TEST_NO_MONITOR
    (void) tests;                       //  need a monitor, or are not about one
    return failed;
#else
    return failed + cmocka_run_group_tests (tests, NULL, NULL);
#endif
}
