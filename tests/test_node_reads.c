/*  test_node_reads.c - the node's side of routed reads, on the wire.

    Talks to real nodes with a raw DEALER, so what is checked is exactly
    what docs/PROTOCOL.md promises any client:
    - a GET whose min_seq is ahead of the node waits (parked) and is
      answered as soon as the entry arrives; with no wait, or when the wait
      runs out, it gets ESTALE saying how far the node is;
    - a GET with max_staleness_ms is refused by a replica that lost its
      primary's heartbeats for longer than that, and served again once the
      stream is back; a primary is never stale;
    - PONG says who the node is (id, region, role);
    - replies on one connection follow arrival order (a pipelined GET does
      not see a later PUT);
    - a replica whose primary comes back with less than it holds stops
      following and refuses reads.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zmq.h>
#include "cluster.h"
#include "codec.h"

typedef struct {
    cluster_t       *cluster;
    void            *ctx;
    msgpack_unpacked unpacked;
    char             reply [4096];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) calloc (1, sizeof (fixture_t));
    f->cluster = cluster_new ("node_reads");
    f->ctx = zmq_ctx_new ();
    msgpack_unpacked_init (&f->unpacked);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_destroy (&f->cluster);
    msgpack_unpacked_destroy (&f->unpacked);
    zmq_ctx_term (f->ctx);
    free (f);
    return 0;
}

static void *
s_dealer (fixture_t *f, cluster_t *c, int node)
{
    void *sock = zmq_socket (f->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", cluster_port (c, node));
    assert_int_equal (zmq_connect (sock, endpoint), 0);
    return sock;
}

static void
s_send_get_in (void *sock, uint64_t rid, const char *key, uint64_t min_seq,
               uint32_t max_staleness_ms, uint32_t wait_ms, uint64_t min_epoch)
{
    wc_msg_t msg = { .type = WC_MSG_GET, .rid = rid };
    msg.u.req.key.ptr = (const uint8_t *) key;
    msg.u.req.key.len = (uint32_t) strlen (key);
    msg.u.req.min_seq = min_seq;
    msg.u.req.min_epoch = min_epoch;
    msg.u.req.max_staleness_ms = max_staleness_ms;
    msg.u.req.wait_ms = wait_ms;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    assert_int_equal (wc_msg_encode (&msg, &buf), 0);
    assert_int_equal (zmq_send (sock, buf.data, buf.size, 0), (int) buf.size);
    msgpack_sbuffer_destroy (&buf);
}

static void
s_send_get (void *sock, uint64_t rid, const char *key, uint64_t min_seq,
            uint32_t max_staleness_ms, uint32_t wait_ms)
{
    s_send_get_in (sock, rid, key, min_seq, max_staleness_ms, wait_ms, 0);
}

/*  Wait up to timeout_ms for a reply; 0 and *msg decoded, or -1. */
static int
s_recv (fixture_t *f, void *sock, int timeout_ms, wc_msg_t *msg)
{
    zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) != 1)
        return -1;
    int size = zmq_recv (sock, f->reply, sizeof f->reply, 0);
    assert_true (size > 0 && size <= (int) sizeof f->reply);
    assert_int_equal (wc_msg_decode (f->reply, (size_t) size, &f->unpacked, msg), 0);
    return 0;
}

static void
s_expect_stale (wc_msg_t *msg, uint64_t rid, const char *detail_prefix)
{
    assert_int_equal (msg->type, WC_MSG_ERROR);
    assert_int_equal (msg->rid, rid);
    assert_int_equal (wc_err_from_wire (msg->u.error.code), WALCAST_ESTALE);
    assert_true (msg->u.error.detail.len >= strlen (detail_prefix));
    assert_memory_equal (msg->u.error.detail.ptr, detail_prefix, strlen (detail_prefix));
}

static uint64_t
s_put (cluster_t *c, int node, const char *key, const char *value)
{
    walcast_pos_t pos;
    walcast_t *client = cluster_client (c, node);
    assert_non_null (client);
    int rc = walcast_put (client, key, strlen (key), value, strlen (value), &pos);
    walcast_destroy (&client);
    assert_int_equal (rc, 0);
    return pos.seq;
}

static void
test_min_seq_waits_for_the_entry (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_t *c = f->cluster;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    uint64_t seq = s_put (c, p, "user:1", "Alice");
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, (int) seq, 30000, NULL, NULL), 0);

    void *sock = s_dealer (f, c, r);
    wc_msg_t msg;

    //  Already applied: answered at once
    s_send_get (sock, 1, "user:1", seq, 0, 0);
    assert_int_equal (s_recv (f, sock, 5000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_VALUE);
    assert_true (msg.u.value.found);
    assert_int_equal (msg.u.value.value.len, 5);
    assert_memory_equal (msg.u.value.value.ptr, "Alice", 5);

    //  Ahead, no wait: ESTALE at once, saying where the node is
    s_send_get (sock, 2, "user:1", seq + 1, 0, 0);
    assert_int_equal (s_recv (f, sock, 5000, &msg), 0);
    s_expect_stale (&msg, 2, "applied=");

    //  Ahead with a wait: parked until the write arrives
    s_send_get (sock, 3, "user:1", seq + 1, 0, 20000);
    assert_int_equal (s_recv (f, sock, 200, &msg), -1);     // still parked
    uint64_t next = s_put (c, p, "user:1", "Bob");
    assert_int_equal (next, seq + 1);
    assert_int_equal (s_recv (f, sock, 10000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_VALUE);
    assert_int_equal (msg.rid, 3);
    assert_true (msg.u.value.seq >= seq + 1);
    assert_memory_equal (msg.u.value.value.ptr, "Bob", 3);

    //  Ahead with a short wait that runs out: ESTALE
    int64_t started = cluster_now_ms ();
    s_send_get (sock, 4, "user:1", seq + 1000, 0, 300);
    assert_int_equal (s_recv (f, sock, 10000, &msg), 0);
    s_expect_stale (&msg, 4, "applied=");
    assert_true (cluster_now_ms () - started >= 250);

    //  PONG says who the node is
    wc_msg_t ping = { .type = WC_MSG_PING, .rid = 5 };
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    assert_int_equal (wc_msg_encode (&ping, &buf), 0);
    zmq_send (sock, buf.data, buf.size, 0);
    msgpack_sbuffer_destroy (&buf);
    assert_int_equal (s_recv (f, sock, 5000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_PONG);
    assert_int_equal (msg.u.pong.role, WC_ROLE_REPLICA);
    assert_int_equal (msg.u.pong.id.len, 2);
    assert_memory_equal (msg.u.pong.id.ptr, "r1", 2);
    assert_true (msg.u.pong.seq >= seq + 1);

    zmq_close (sock);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  Poll GETs with a staleness bound until one answers with the wanted
    type, or the deadline passes. Returns the type seen last. */
static int
s_poll_staleness (fixture_t *f, void *sock, uint64_t *rid, uint32_t bound,
                  int want, int deadline_ms)
{
    int64_t deadline = cluster_now_ms () + deadline_ms;
    int type = -1;
    while (cluster_now_ms () < deadline) {
        wc_msg_t msg;
        s_send_get (sock, ++*rid, "k", 0, bound, 0);
        if (s_recv (f, sock, 5000, &msg) == 0) {
            type = msg.type;
            if (type == want)
                return type;
        }
        cluster_nap_ms (50);
    }
    return type;
}

static void
test_max_staleness (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_t *c = f->cluster;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    uint64_t seq = s_put (c, p, "k", "v");
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, (int) seq, 30000, NULL, NULL), 0);

    void *replica = s_dealer (f, c, r);
    uint64_t rid = 0;
    //  Fresh replica: served within a 1 s bound
    assert_int_equal (s_poll_staleness (f, replica, &rid, 1000, WC_MSG_VALUE, 10000),
                      WC_MSG_VALUE);

    //  The primary stops (its heartbeats stop): the replica's staleness
    //  grows past the bound and it declines
    assert_int_equal (cluster_signal (c, p, SIGSTOP), 0);
    assert_int_equal (s_poll_staleness (f, replica, &rid, 1000, WC_MSG_ERROR, 15000),
                      WC_MSG_ERROR);
    walcast_status_t status;
    assert_int_equal (cluster_status (c, r, &status), 0);
    assert_true (status.lag_ms > 1000);

    //  Back: heartbeats resume and the replica serves again
    assert_int_equal (cluster_signal (c, p, SIGCONT), 0);
    assert_int_equal (s_poll_staleness (f, replica, &rid, 1000, WC_MSG_VALUE, 15000),
                      WC_MSG_VALUE);

    //  A primary is never stale
    void *primary = s_dealer (f, c, p);
    assert_int_equal (s_poll_staleness (f, primary, &rid, 1, WC_MSG_VALUE, 5000),
                      WC_MSG_VALUE);
    zmq_close (primary);
    zmq_close (replica);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  Replies on one connection follow arrival order: a GET pipelined
    between two PUTs of the same key sees the first, never the second. */
static void
test_pipelined_get_sees_only_earlier_writes (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_t *c = f->cluster;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    void *sock = s_dealer (f, c, p);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    for (int round = 0; round < 50; round++) {
        char old_value [32], new_value [32];
        snprintf (old_value, sizeof old_value, "old-%d", round);
        snprintf (new_value, sizeof new_value, "new-%d", round);
        const char *values [2] = { old_value, new_value };
        //  PUT old, GET, PUT new: sent back to back, one batch on the node
        for (int i = 0; i < 3; i++) {
            wc_msg_t msg = { .type = i == 1 ? WC_MSG_GET : WC_MSG_PUT,
                             .rid = (uint64_t) (round * 3 + i + 1) };
            msg.u.req.key.ptr = (const uint8_t *) "pk";
            msg.u.req.key.len = 2;
            if (i != 1) {
                msg.u.req.value.ptr = (const uint8_t *) values [i / 2];
                msg.u.req.value.len = (uint32_t) strlen (values [i / 2]);
            }
            buf.size = 0;
            assert_int_equal (wc_msg_encode (&msg, &buf), 0);
            zmq_send (sock, buf.data, buf.size, 0);
        }
        for (int i = 0; i < 3; i++) {
            wc_msg_t msg;
            assert_int_equal (s_recv (f, sock, 5000, &msg), 0);
            if (msg.type == WC_MSG_VALUE) {
                assert_int_equal (msg.u.value.value.len, strlen (old_value));
                assert_memory_equal (msg.u.value.value.ptr, old_value,
                                     strlen (old_value));
            }
            else
                assert_int_equal (msg.type, WC_MSG_WRITE_OK);
        }
    }
    msgpack_sbuffer_destroy (&buf);
    zmq_close (sock);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  A primary that comes back with less than its replica holds (its data
    was wiped) must not be followed: it begins a new cluster, so the
    replica says so, keeps what it has and refuses reads rather than serve
    a mixed history, across restarts too (it asks again at once). Before
    walcast 0.7 the replica diverged (for good); now it follows again if a
    node of its own cluster answers there (test_cluster_foreign). */
static void
test_replica_detects_a_primary_that_lost_entries (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_t *c = f->cluster;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    assert_int_equal (cluster_load (c, p, 0, 100, 1, NULL), 0);
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, 100, 30000, NULL, NULL), 0);

    assert_int_equal (cluster_kill (c, p), 0);
    char command [600];
    snprintf (command, sizeof command, "rm -rf '%s/p1'", cluster_dir (c));
    assert_int_equal (system (command), 0);
    long mark = cluster_log_mark (c, r);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    char another [128];
    snprintf (another, sizeof another, "not following %s yet: it is a node of cluster",
              cluster_addr (c, p));
    assert_int_equal (cluster_wait_log (c, r, another, mark, 15000), 0);

    //  The replica refuses reads, and its applied data is left as it was
    void *sock = s_dealer (f, c, r);
    wc_msg_t msg;
    s_send_get (sock, 1, "k00000001", 0, 0, 0);
    assert_int_equal (s_recv (f, sock, 5000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_ERROR);
    assert_int_equal (wc_err_from_wire (msg.u.error.code), WALCAST_EUNAVAILABLE);
    uint64_t seq, hash;
    assert_int_equal (cluster_digest (c, r, &seq, &hash), 0);
    assert_int_equal (seq, 100);
    zmq_close (sock);

    //  After a restart it still refuses to follow and to serve, once its
    //  first question to the upstream is answered
    assert_int_equal (cluster_kill (c, r), 0);
    mark = cluster_log_mark (c, r);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    assert_int_equal (cluster_wait_log (c, r, another, mark, 15000), 0);
    sock = s_dealer (f, c, r);
    s_send_get (sock, 2, "k00000001", 0, 0, 0);
    assert_int_equal (s_recv (f, sock, 5000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_ERROR);
    assert_int_equal (wc_err_from_wire (msg.u.error.code), WALCAST_EUNAVAILABLE);
    assert_int_equal (cluster_digest (c, r, &seq, &hash), 0);
    assert_int_equal (seq, 100);
    zmq_close (sock);
    assert_int_equal (cluster_log_count (c, r, "diverged:", 0), 0);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  A session token is (epoch, seq): a node whose latest epoch is below
    the token's has not seen that history, whatever seq it applied (a
    deposed primary, or a replica cut off with it, ahead in seqs of its
    own). It declines like a node behind in seqs, after waiting. Before,
    the token was a bare seq, and a helper read stale data that way
    across a failover. */
static void
test_min_epoch (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_t *c = f->cluster;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    assert_int_equal (cluster_load (c, p, 0, 10, 1, NULL), 0);
    walcast_status_t st;
    assert_int_equal (cluster_status (c, p, &st), 0);
    uint64_t epoch = st.epoch;
    void *sock = s_dealer (f, c, p);
    wc_msg_t msg;
    //  its own epoch: served
    s_send_get_in (sock, 1, "k00000001", 5, 0, 0, epoch);
    assert_int_equal (s_recv (f, sock, 5000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_VALUE);
    //  a newer epoch: ESTALE at once, or after its wait
    s_send_get_in (sock, 2, "k00000001", 5, 0, 0, epoch + 1);
    assert_int_equal (s_recv (f, sock, 5000, &msg), 0);
    s_expect_stale (&msg, 2, "applied=");
    int64_t sent = cluster_now_ms ();
    s_send_get_in (sock, 3, "k00000001", 5, 0, 300, epoch + 1);
    assert_int_equal (s_recv (f, sock, 5000, &msg), 0);
    s_expect_stale (&msg, 3, "applied=");
    assert_true (cluster_now_ms () - sent >= 250);
    zmq_close (sock);

    //  Restarted, p1 begins a newer epoch at seq 11: a token of the old
    //  epoch up to 10 is in its history (VALUE, with the new epoch); one
    //  at 12 in the old epoch is not (the session saw writes a failover
    //  rolled back): ECONFLICT at once, saying where the old epoch ends
    assert_int_equal (cluster_kill (c, p), 0);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    assert_int_equal (cluster_status (c, p, &st), 0);
    assert_true (st.epoch > epoch);
    sock = s_dealer (f, c, p);
    s_send_get_in (sock, 4, "k00000001", 10, 0, 1000, epoch);
    assert_int_equal (s_recv (f, sock, 5000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_VALUE);
    assert_true (msg.u.value.epoch == st.epoch);
    s_send_get_in (sock, 5, "k00000001", 12, 0, 1000, epoch);
    assert_int_equal (s_recv (f, sock, 5000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_ERROR);
    assert_int_equal (wc_err_from_wire (msg.u.error.code), WALCAST_ECONFLICT);
    char detail [64], expect [64];
    wc_bytes_printable (detail, sizeof detail, &msg.u.error.detail);
    snprintf (expect, sizeof expect, "end=10 epoch=%llu", (unsigned long long) st.epoch);
    assert_string_equal (detail, expect);
    zmq_close (sock);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_min_seq_waits_for_the_entry,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_max_staleness, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_pipelined_get_sees_only_earlier_writes,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replica_detects_a_primary_that_lost_entries,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_min_epoch, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
