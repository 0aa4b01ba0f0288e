/*  test_cluster_foreign.c - a replica takes nothing from another cluster.

    What a user relies on: a replica whose primary died, and at whose
    address a node of another cluster now answers (the port reused by
    another deployment, a machine moved, a data directory replaced), does
    not take that node's history for its primary's. It says so, keeps what
    it has (refusing reads meanwhile: a client that writes to that node and
    reads from this one would see two histories mixed), and follows its
    primary again once it is back, serving again.

    Before walcast 0.7 nothing told two clusters apart: epochs and seqs are
    small numbers that clusters share. A helper found a replica marked
    DIVERGED for good after a test suite's node took its dead primary's
    port; with broker epochs (1, 2, ...) it could as well have applied the
    other cluster's entries. Now every node keeps a cluster id (its data
    directory's file "cluster"), and EPOCH_END_REPLY, FETCH, the stream
    and ACKs carry it.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>
#include <zmq.h>
#include "cluster.h"
#include "codec.h"

#define ROUND1  1000        /* keys 0..999 into the first primary */
#define FOREIGN 2000        /* keys into the other cluster's node */
#define ROUND3  500         /* keys 1000..1499 once the primary is back */

static int
s_setup (void **state)
{
    *state = cluster_new ("foreign");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_destroy ((cluster_t **) state);
    return 0;
}

//  The text of DIR/cluster of node i ("" when there is none).
static void
s_cluster_file (cluster_t *c, int i, char *buf, size_t size)
{
    char path [4200];
    snprintf (path, sizeof path, "%s/cluster", cluster_data_path (c, i));
    buf [0] = '\0';
    FILE *f = fopen (path, "r");
    if (!f)
        return;
    size_t got = fread (buf, 1, size - 1, f);
    buf [got] = '\0';
    fclose (f);
}

//  Swap node i's data directory with the one named suffix (renamed, so
//  the node starts on the other next time).
static void
s_swap_data (cluster_t *c, int i, const char *put_aside_as, const char *take_from)
{
    char aside [4200], from [4200];
    snprintf (aside, sizeof aside, "%s.%s", cluster_data_path (c, i), put_aside_as);
    assert_int_equal (rename (cluster_data_path (c, i), aside), 0);
    if (take_from) {
        snprintf (from, sizeof from, "%s.%s", cluster_data_path (c, i), take_from);
        assert_int_equal (rename (from, cluster_data_path (c, i)), 0);
    }
}

static void
test_foreign_node_at_the_primary_address (void **state)
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
    assert_int_equal (cluster_load (c, p, 0, ROUND1, 1, NULL), 0);
    uint64_t seq1, hash1;
    assert_int_equal (cluster_wait_converged (c, both, 2, ROUND1, 60000, &seq1, &hash1), 0);

    //  Both hold the id of the cluster the primary began
    char ours [64], rs [64];
    s_cluster_file (c, p, ours, sizeof ours);
    s_cluster_file (c, r, rs, sizeof rs);
    print_message ("cluster id: %s", ours);
    assert_int_equal (strlen (ours), 17);
    assert_string_equal (ours, rs);

    //  The primary dies; a node of a new cluster starts at its address
    //  (an empty data directory: a history of its own) and takes writes
    assert_int_equal (cluster_kill (c, p), 0);
    s_swap_data (c, p, "orig", NULL);
    long mark = cluster_log_mark (c, r);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    char theirs [64];
    s_cluster_file (c, p, theirs, sizeof theirs);
    assert_int_equal (strlen (theirs), 17);
    assert_string_not_equal (theirs, ours);
    assert_int_equal (cluster_load (c, p, 0, FOREIGN, 2, NULL), 0);

    //  The replica says why it does not follow, and keeps what it has
    char prefix [128], line [512];
    snprintf (prefix, sizeof prefix, "not following %s yet: it is a node of cluster",
              cluster_addr (c, p));
    assert_int_equal (cluster_wait_log (c, r, prefix, mark, 20000), 0);
    assert_int_equal (cluster_log_find (c, r, prefix, mark, 0, line, sizeof line), 0);
    print_message ("r1: %s\n", line);
    uint64_t seq, hash;
    assert_int_equal (cluster_digest (c, r, &seq, &hash), 0);
    assert_true (seq == seq1 && hash == hash1);
    walcast_status_t st;
    assert_int_equal (cluster_status (c, r, &st), 0);
    assert_true (st.applied_seq == ROUND1);
    walcast_t *h = cluster_client (c, r);
    assert_non_null (h);
    void *value = NULL;
    size_t len = 0;
    int rc = walcast_get (h, "k00000007", 9, &value, &len, NULL);
    print_message ("GET from r1 meanwhile: %s\n", walcast_errname (rc));
    assert_int_equal (rc, WALCAST_EUNAVAILABLE);
    walcast_destroy (&h);
    //  The command line says why, and what to look at
    char *out = NULL, *err = NULL;
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--node", cluster_addr (c, r),
                                   "get", "k00000007", NULL), 3);
    print_message ("walcast get from r1 meanwhile: %s", err);
    assert_non_null (strstr (err, "its upstream is a node of another cluster"));
    assert_non_null (strstr (err, "not following"));
    free (out);
    free (err);
    assert_int_equal (cluster_log_count (c, r, "diverged:", 0), 0);
    s_cluster_file (c, r, rs, sizeof rs);
    assert_string_equal (rs, ours);

    //  The first primary comes back: the replica follows it again
    assert_int_equal (cluster_kill (c, p), 0);
    s_swap_data (c, p, "foreign", "orig");
    mark = cluster_log_mark (c, r);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    assert_int_equal (cluster_load (c, p, ROUND1, ROUND3, 3, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, both, 2, ROUND1 + ROUND3, 60000,
                                              NULL, NULL), 0);
    assert_int_equal (cluster_check_key (c, r, 7, 1), 0);
    assert_int_equal (cluster_check_key (c, r, ROUND1 + 7, 3), 0);
    assert_int_equal (cluster_log_count (c, r, "diverged:", 0), 0);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/* --- the stream of another cluster, at the same epoch ----------------------

    With a broker, epochs are 1, 2, ... in every cluster, so a node of
    another cluster can be at the replica's own epoch, and its next entry
    at the replica's next seq: nothing in the entry tells it apart. A fake
    upstream on the test's spare ports is cluster A with seqs 1..5 of
    epoch 1, then becomes cluster B, still at epoch 1, and publishes seq 6
    (and heartbeats); like a 0.7 node it refuses FETCHes of another
    cluster. Before the cluster ids, the replica applied seq 6 from the
    stream. */

#define FAKE_A  UINT64_C (0x1111111111111111)
#define FAKE_B  UINT64_C (0x2222222222222222)

typedef struct {
    void           *service, *pub, *catchup;    /* F, F+1, F+2 */
    uint64_t        last;                       /* seqs 1..last are held */
    uint64_t        cluster;                    /* the id it says it has */
    msgpack_sbuffer out;
} s_fake_t;

static void *
s_bind (void *ctx, int type, int port)
{
    void *sock = zmq_socket (ctx, type);
    assert_non_null (sock);
    int linger = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    if (zmq_bind (sock, endpoint) != 0)
        fail_msg ("bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
    return sock;
}

//  Entry seq of the fake's history: key "k%08d", round 1, epoch 1.
static wc_entry_t
s_entry (uint64_t seq, char *key, char *value)
{
    cluster_key ((int) seq, key, 32);
    cluster_value ((int) seq, 1, value);
    wc_entry_t entry = {
        .seq = seq, .epoch = 1, .ts_ms = 1700000000000ull, .op = WC_OP_PUT,
        .key = { (const uint8_t *) key, (uint32_t) strlen (key) },
        .value = { (const uint8_t *) value, CLUSTER_VALUE_LEN }
    };
    return entry;
}

//  Publish the newest entry as a stream ENTRIES, and a heartbeat, both
//  with the fake's cluster id, as a 0.7 primary does.
static void
s_publish (s_fake_t *fake)
{
    char key [32], value [CLUSTER_VALUE_LEN + 1];
    wc_entry_t entry = s_entry (fake->last, key, value);
    fake->out.size = 0;
    assert_int_equal (wc_entries_encode_stream_header (fake->last, 1, fake->cluster,
                                                       &fake->out), 0);
    assert_int_equal (wc_entry_encode (&entry, &fake->out), 0);
    assert_int_equal (wc_entries_encode_trailer (1700000000000000ull, fake->cluster,
                                                 &fake->out), 0);
    zmq_send (fake->pub, "", 0, ZMQ_SNDMORE);
    zmq_send (fake->pub, fake->out.data, fake->out.size, 0);
    wc_msg_t hb = { .type = WC_MSG_HEARTBEAT };
    hb.u.heartbeat.epoch = 1;
    hb.u.heartbeat.last_seq = fake->last;
    hb.u.heartbeat.clock_ms = 1700000000000ull;
    hb.u.heartbeat.cluster = fake->cluster;
    fake->out.size = 0;
    assert_int_equal (wc_msg_encode (&hb, &fake->out), 0);
    zmq_send (fake->pub, "", 0, ZMQ_SNDMORE);
    zmq_send (fake->pub, fake->out.data, fake->out.size, 0);
}

//  The reply to one catch-up request, into fake->out.
static void
s_answer (s_fake_t *fake, const wc_msg_t *msg)
{
    fake->out.size = 0;
    if (msg->type == WC_MSG_EPOCH_END) {
        wc_msg_t reply = { .type = WC_MSG_EPOCH_END_REPLY, .rid = msg->rid };
        reply.u.epoch_end.epoch = msg->u.epoch_end.epoch ? 1 : 0;
        reply.u.epoch_end.end_seq = msg->u.epoch_end.epoch ? fake->last : 0;
        reply.u.epoch_end.latest = 1;
        reply.u.epoch_end.cluster = fake->cluster;
        assert_int_equal (wc_msg_encode (&reply, &fake->out), 0);
        return;
    }
    assert_int_equal (msg->type, WC_MSG_FETCH);
    if (msg->u.fetch.cluster && msg->u.fetch.cluster != fake->cluster) {
        assert_int_equal (wc_error_encode (msg->rid, WALCAST_ECONFLICT, "another cluster",
                                           NULL, &fake->out), 0);
        return;
    }
    uint64_t from = msg->u.fetch.from_seq;
    uint32_t n = from >= 1 && from <= fake->last ? (uint32_t) (fake->last - from + 1) : 0;
    assert_int_equal (wc_entries_encode_header (msg->rid, fake->last, n, &fake->out), 0);
    for (uint64_t seq = from; n && seq <= fake->last; seq++) {
        char key [32], value [CLUSTER_VALUE_LEN + 1];
        wc_entry_t entry = s_entry (seq, key, value);
        assert_int_equal (wc_entry_encode (&entry, &fake->out), 0);
    }
}

//  Answer what waits on the catch-up ROUTER.
static void
s_serve (s_fake_t *fake)
{
    zmq_pollitem_t item = { fake->catchup, 0, ZMQ_POLLIN, 0 };
    while (zmq_poll (&item, 1, 0) > 0) {
        zmq_msg_t frames [8];
        int count = 0, more = 1;
        while (more && count < 8) {
            zmq_msg_init (&frames [count]);
            if (zmq_msg_recv (&frames [count], fake->catchup, 0) == -1) {
                zmq_msg_close (&frames [count]);
                break;
            }
            more = zmq_msg_more (&frames [count++]);
        }
        msgpack_unpacked unpacked;
        msgpack_unpacked_init (&unpacked);
        wc_msg_t msg;
        if (count >= 2 && !more
        &&  wc_msg_decode (zmq_msg_data (&frames [count - 1]),
                           zmq_msg_size (&frames [count - 1]), &unpacked, &msg) == 0) {
            s_answer (fake, &msg);
            for (int i = 0; i < count - 1; i++)
                zmq_send (fake->catchup, zmq_msg_data (&frames [i]),
                          zmq_msg_size (&frames [i]), ZMQ_SNDMORE);
            zmq_send (fake->catchup, fake->out.data, fake->out.size, 0);
        }
        msgpack_unpacked_destroy (&unpacked);
        for (int i = 0; i < count; i++)
            zmq_msg_close (&frames [i]);
    }
}

//  Be the upstream until done (node r at seq want, or a log line after
//  mark when prefix is not NULL) or timeout_ms. 0 when done.
static int
s_run_until (cluster_t *c, int r, s_fake_t *fake, uint64_t want, const char *prefix,
             long mark, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (cluster_now_ms () < deadline) {
        s_publish (fake);
        s_serve (fake);
        uint64_t seq = 0, hash = 0;
        if (prefix ? cluster_log_count (c, r, prefix, mark) > 0
                   : cluster_digest (c, r, &seq, &hash) == 0 && seq == want)
            return 0;
        if (!cluster_running (c, r))
            return -1;
        zmq_pollitem_t item = { fake->catchup, 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 20);
    }
    return -1;
}

static void
test_stream_of_another_cluster (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    void *ctx = zmq_ctx_new ();
    assert_non_null (ctx);
    int port = cluster_spare_port (c);
    s_fake_t fake = { .last = 5, .cluster = FAKE_A };
    msgpack_sbuffer_init (&fake.out);
    fake.service = s_bind (ctx, ZMQ_ROUTER, port);
    fake.pub = s_bind (ctx, ZMQ_PUB, port + 1);
    fake.catchup = s_bind (ctx, ZMQ_ROUTER, port + 2);
    char upstream [32];
    snprintf (upstream, sizeof upstream, "127.0.0.1:%d", port);
    int r = cluster_add (c, "r1", upstream, NULL);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    if (s_run_until (c, r, &fake, 5, NULL, 0, 20000) != 0)
        fail_msg ("the replica did not follow the fake upstream to seq 5");
    uint64_t seq5, hash5;
    assert_int_equal (cluster_digest (c, r, &seq5, &hash5), 0);

    //  Cluster B's node now, at the same epoch, with seq 6 on its stream
    long mark = cluster_log_mark (c, r);
    fake.cluster = FAKE_B;
    fake.last = 6;
    char prefix [128];
    snprintf (prefix, sizeof prefix, "not following %s yet: it is a node of cluster "
              "2222222222222222, not of ours (1111111111111111)", upstream);
    int rc = s_run_until (c, r, &fake, 0, prefix, mark, 20000);
    uint64_t seq, hash;
    assert_int_equal (cluster_digest (c, r, &seq, &hash), 0);
    print_message ("replica at seq %llu after cluster B's seq 6\n", (unsigned long long) seq);
    assert_int_equal (rc, 0);
    assert_true (seq == seq5 && hash == hash5);

    //  Cluster A again: it follows to seq 6
    fake.cluster = FAKE_A;
    if (s_run_until (c, r, &fake, 6, NULL, 0, 20000) != 0)
        fail_msg ("the replica did not follow its own cluster again");
    zmq_close (fake.service);
    zmq_close (fake.pub);
    zmq_close (fake.catchup);
    zmq_ctx_term (ctx);
    msgpack_sbuffer_destroy (&fake.out);
    assert_int_equal (cluster_check_key (c, r, 6, 1), 0);
    assert_int_equal (cluster_log_count (c, r, "diverged:", 0), 0);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_foreign_node_at_the_primary_address,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stream_of_another_cluster,
                                         s_setup, s_teardown),
    };
    if (getenv ("WALCAST_TEST_ONLY"))           /* one test, to debug it */
        cmocka_set_test_filter (getenv ("WALCAST_TEST_ONLY"));
    return cmocka_run_group_tests (tests, NULL, NULL);
}
