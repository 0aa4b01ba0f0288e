/*  test_protocol_wire.c - docs/PROTOCOL.md against real nodes.

    An independent client was written from PROTOCOL.md alone; where the
    document and the nodes disagreed, it was wrong about the nodes. These
    tests hold each rule it tripped on to what a real node does on the
    wire, through raw ZeroMQ sockets and the codec, as such a client would:
    - the FETCH budget ("Catch-up"): max_bytes counts the payload octets
      of the entries; at least one entry; the last may pass the budget;
    - the digest's text form ("Digest"): `walcast digest` prints
      "SEQ HASH", the hash as 16 lowercase hex digits;
    - lag_ms ("Reads", Lag estimate): 0 on a primary; on a replica, the
      age by the primary's clock of the newest heartbeat it had caught up
      with, so it grows by the time the primary has been silent;
    - the staleness floor: a max_staleness_ms below the heartbeat period
      refuses even a current replica;
    - frames ("Framing", "Limits"): a ROUTER message has at most
      WC_MAX_FRAMES frames in all, the identity frame the ROUTER adds
      included;
    - subscriptions ("Framing", Stream socket): the longest a node allows
      does not cost the subscriber its connection.
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
    zmq_msg_t        reply;         /* body of the last reply; msg borrows it */
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) calloc (1, sizeof (fixture_t));
    f->cluster = cluster_new ("protocol_wire");
    f->ctx = zmq_ctx_new ();
    msgpack_unpacked_init (&f->unpacked);
    zmq_msg_init (&f->reply);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_destroy (&f->cluster);
    msgpack_unpacked_destroy (&f->unpacked);
    zmq_msg_close (&f->reply);
    zmq_ctx_term (f->ctx);
    free (f);
    return 0;
}

//  A DEALER connected to 127.0.0.1:port.
static void *
s_dealer (fixture_t *f, int port)
{
    void *sock = zmq_socket (f->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    assert_int_equal (zmq_connect (sock, endpoint), 0);
    return sock;
}

static void
s_send (void *sock, const wc_msg_t *msg)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    assert_int_equal (wc_msg_encode (msg, &buf), 0);
    assert_int_equal (zmq_send (sock, buf.data, buf.size, 0), (int) buf.size);
    msgpack_sbuffer_destroy (&buf);
}

//  Wait up to timeout_ms for a reply of one frame and decode it into
//  *msg (valid until the next call). 0, or -1 on timeout.
static int
s_recv (fixture_t *f, void *sock, int timeout_ms, wc_msg_t *msg)
{
    zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) != 1)
        return -1;
    assert_true (zmq_msg_recv (&f->reply, sock, 0) >= 0);
    assert_false (zmq_msg_more (&f->reply));
    assert_int_equal (wc_msg_decode (zmq_msg_data (&f->reply), zmq_msg_size (&f->reply),
                                     &f->unpacked, msg), 0);
    return 0;
}

//  FETCH from_seq with max_bytes on the catch-up socket; the reply in *msg.
static void
s_fetch (fixture_t *f, void *sock, uint64_t rid, uint64_t from, uint32_t max_bytes,
         wc_msg_t *msg)
{
    wc_msg_t fetch = { .type = WC_MSG_FETCH, .rid = rid };
    fetch.u.fetch.from_seq = from;
    fetch.u.fetch.max_bytes = max_bytes;
    s_send (sock, &fetch);
    assert_int_equal (s_recv (f, sock, 10000, msg), 0);
    assert_int_equal (msg->rid, rid);
}

//  A primary and a replica that follows it, both with seq entries.
static void
s_pair (cluster_t *c, int *p, int *r, int entries)
{
    *p = cluster_add (c, "p1", NULL, NULL);
    *r = cluster_add (c, "r1", cluster_addr (c, *p), NULL);
    assert_int_equal (cluster_start (c, *p), 0);
    assert_int_equal (cluster_start (c, *r), 0);
    assert_int_equal (cluster_wait_ready (c, *p, 30000), 0);
    assert_int_equal (cluster_wait_ready (c, *r, 30000), 0);
    assert_int_equal (cluster_load (c, *p, 0, entries, 1, NULL), 0);
    int both [] = { *p, *r };
    assert_int_equal (cluster_wait_converged (c, both, 2, (uint64_t) entries, 30000,
                                              NULL, NULL), 0);
}

//  "Catch-up", The budget: max_bytes counts the payload octets of the
//  entries (each entry array as the WAL stores it); the node adds entries
//  while the sum of those already in is below max_bytes, so there is at
//  least one, and the last may pass the budget.
static void
test_fetch_budget (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_t *c = f->cluster;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    enum { N = 10 };
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    assert_int_equal (cluster_load (c, p, 0, N, 1, NULL), 0);
    void *sock = s_dealer (f, cluster_port (c, p) + 2);
    wc_msg_t msg;

    //  Everything, to learn each entry's payload size (its encoding is
    //  canonical: encoding the decoded entry again gives its bytes)
    size_t size [N];
    s_fetch (f, sock, 1, 1, WC_MAX_FETCH_BYTES, &msg);
    assert_int_equal (msg.type, WC_MSG_ENTRIES);
    assert_int_equal (msg.u.entries.last_seq, N);
    assert_int_equal (msg.u.entries.count, N);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    for (int i = 0; i < N; i++) {
        wc_entry_t e;
        assert_int_equal (wc_entry_from_object (&msg.u.entries.items [i], &e), 0);
        assert_int_equal (e.seq, (uint64_t) i + 1);
        msgpack_sbuffer_clear (&sb);
        assert_int_equal (wc_entry_encode (&e, &sb), 0);
        size [i] = sb.size;
    }
    msgpack_sbuffer_destroy (&sb);

    //  Budgets around the sums: 0, the first entry, one octet more, ...
    size_t sum2 = size [0] + size [1], sum3 = sum2 + size [2];
    struct { size_t max_bytes; uint32_t want; } cases [] = {
        { 0, 1 }, { 1, 1 }, { size [0], 1 }, { size [0] + 1, 2 },
        { sum2, 2 }, { sum2 + 1, 3 }, { sum3 - 1, 3 }, { sum3, 3 }, { sum3 + 1, 4 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_fetch (f, sock, 10 + i, 1, (uint32_t) cases [i].max_bytes, &msg);
        assert_int_equal (msg.type, WC_MSG_ENTRIES);
        if (msg.u.entries.count != cases [i].want)
            fail_msg ("FETCH max_bytes %zu (entries of %zu, %zu, %zu octets): "
                      "%u entries, want %u", cases [i].max_bytes, size [0], size [1],
                      size [2], msg.u.entries.count, cases [i].want);
    }
    //  From the middle, and the end of the log: the budget starts there
    s_fetch (f, sock, 30, N, 0, &msg);
    assert_int_equal (msg.type, WC_MSG_ENTRIES);
    assert_int_equal (msg.u.entries.count, 1);
    s_fetch (f, sock, 31, N - 1, (uint32_t) size [N - 2], &msg);
    assert_int_equal (msg.u.entries.count, 1);
    s_fetch (f, sock, 32, N - 1, (uint32_t) size [N - 2] + 1, &msg);
    assert_int_equal (msg.u.entries.count, 2);
    //  Past the end: an empty list saying where the node is; seq 0: ERANGE
    s_fetch (f, sock, 33, N + 1, WC_MAX_FETCH_BYTES, &msg);
    assert_int_equal (msg.type, WC_MSG_ENTRIES);
    assert_int_equal (msg.u.entries.count, 0);
    assert_int_equal (msg.u.entries.last_seq, N);
    s_fetch (f, sock, 34, 0, WC_MAX_FETCH_BYTES, &msg);
    assert_int_equal (msg.type, WC_MSG_ERROR);
    assert_int_equal (wc_err_from_wire (msg.u.error.code), WALCAST_ERANGE);

    zmq_close (sock);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  "Digest", Text form: one line, the applied seq in decimal, a space,
//  the hash as exactly 16 lowercase hex digits, a line feed; the same
//  numbers as DIGEST_REPLY.
static void
test_digest_text (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_t *c = f->cluster;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            assert_int_equal (cluster_load (c, p, 0, 25, 1, NULL), 0);
        void *sock = s_dealer (f, cluster_port (c, p));
        wc_msg_t digest = { .type = WC_MSG_DIGEST, .rid = 7 }, msg;
        s_send (sock, &digest);
        assert_int_equal (s_recv (f, sock, 10000, &msg), 0);
        assert_int_equal (msg.type, WC_MSG_DIGEST_REPLY);
        char want [64];
        snprintf (want, sizeof want, "%llu %016llx\n",
                  (unsigned long long) msg.u.digest.seq,
                  (unsigned long long) msg.u.digest.hash);
        zmq_close (sock);

        char *out = NULL;
        assert_int_equal (cluster_cli (c, NULL, &out, NULL, "--node", cluster_addr (c, p),
                                       "digest", NULL), 0);
        assert_non_null (out);
        assert_string_equal (out, want);
        //  The grammar, character by character
        const char *s = out;
        assert_true (*s >= '0' && *s <= '9');
        assert_false (*s == '0' && s [1] != ' ');       //  no leading zeros
        while (*s >= '0' && *s <= '9')
            s++;
        assert_int_equal (*s++, ' ');
        for (int i = 0; i < 16; i++, s++)
            assert_true ((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'));
        assert_string_equal (s, "\n");
        free (out);
    }
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  STATUS_REPLY's and PONG's lag_ms in one request each.
static uint64_t
s_status_lag (fixture_t *f, void *sock, uint64_t rid)
{
    wc_msg_t status = { .type = WC_MSG_STATUS, .rid = rid }, msg;
    s_send (sock, &status);
    assert_int_equal (s_recv (f, sock, 10000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_STATUS_REPLY);
    return msg.u.status.lag_ms;
}

static uint64_t
s_pong_lag (fixture_t *f, void *sock, uint64_t rid)
{
    wc_msg_t ping = { .type = WC_MSG_PING, .rid = rid }, msg;
    s_send (sock, &ping);
    assert_int_equal (s_recv (f, sock, 10000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_PONG);
    return msg.u.pong.lag_ms;
}

//  "Reads", Lag estimate: 0 on a primary; on a replica, the age by the
//  primary's clock of the newest heartbeat it had caught up with. While
//  the primary is stopped, that heartbeat is one it sent before it
//  stopped, so the estimate is at least the time since, and at most that
//  plus a heartbeat period (and the time it took to arrive).
static void
test_lag_ms (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_t *c = f->cluster;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p, r;
    s_pair (c, &p, &r, 10);
    void *primary = s_dealer (f, cluster_port (c, p));
    void *replica = s_dealer (f, cluster_port (c, r));
    uint64_t rid = 0;
    assert_int_equal (s_status_lag (f, primary, ++rid), 0);
    assert_int_equal (s_pong_lag (f, primary, ++rid), 0);

    //  Current: within a heartbeat period and the loopback's delay (a
    //  loaded test machine gets a generous second for the delay)
    int64_t deadline = cluster_now_ms () + 15000;
    uint64_t lag = UINT64_MAX;
    while (cluster_now_ms () < deadline
       &&  (lag = s_status_lag (f, replica, ++rid)) > WC_HEARTBEAT_MS + 1000)
        cluster_nap_ms (20);
    assert_true (lag <= WC_HEARTBEAT_MS + 1000);

    //  Silent primary: the estimate counts from its last heartbeat
    assert_int_equal (cluster_signal (c, p, SIGSTOP), 0);
    int64_t stopped = cluster_now_ms ();
    int64_t asked = stopped, answered = stopped;
    deadline = stopped + 15000;
    while (cluster_now_ms () < deadline) {
        asked = cluster_now_ms ();
        lag = s_status_lag (f, replica, ++rid);
        answered = cluster_now_ms ();
        if (asked - stopped >= 1500)
            break;
        cluster_nap_ms (100);
    }
    assert_true (asked - stopped >= 1500);
    if ((int64_t) lag + 20 < asked - stopped
    ||  (int64_t) lag > answered - stopped + WC_HEARTBEAT_MS + 1000)
        fail_msg ("lag_ms %llu, %lld ms after the primary stopped (asked at %lld, "
                  "answered at %lld)", (unsigned long long) lag,
                  (long long) (asked - stopped), (long long) (asked - stopped),
                  (long long) (answered - stopped));
    uint64_t pong = s_pong_lag (f, replica, ++rid);
    assert_true (pong >= lag);                      //  the same clock, later

    //  Back: the estimate falls to a heartbeat period again
    assert_int_equal (cluster_signal (c, p, SIGCONT), 0);
    deadline = cluster_now_ms () + 15000;
    while (cluster_now_ms () < deadline
       &&  (lag = s_status_lag (f, replica, ++rid)) > WC_HEARTBEAT_MS + 1000)
        cluster_nap_ms (20);
    assert_true (lag <= WC_HEARTBEAT_MS + 1000);

    zmq_close (primary);
    zmq_close (replica);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  "Reads", Staleness floor: a replica that has every entry still has a
//  lag estimate of up to a heartbeat period, so a bound of 1 ms refuses
//  it (ESTALE lag_ms=N, with N within a period and the delay), while a
//  bound of a few periods is served.
static void
test_staleness_floor (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_t *c = f->cluster;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p, r;
    s_pair (c, &p, &r, 10);
    void *replica = s_dealer (f, cluster_port (c, r));
    char key [32];
    cluster_key (0, key, sizeof key);
    uint64_t rid = 0;
    int refused = 0, served = 0;
    int64_t deadline = cluster_now_ms () + 20000;
    while (cluster_now_ms () < deadline && (refused == 0 || served == 0)) {
        uint32_t bound = refused == 0 ? 1 : 10 * WC_HEARTBEAT_MS;
        wc_msg_t get = { .type = WC_MSG_GET, .rid = ++rid }, msg;
        get.u.req.key.ptr = (const uint8_t *) key;
        get.u.req.key.len = (uint32_t) strlen (key);
        get.u.req.max_staleness_ms = bound;
        s_send (replica, &get);
        assert_int_equal (s_recv (f, replica, 10000, &msg), 0);
        if (msg.type == WC_MSG_ERROR && bound == 1) {
            assert_int_equal (wc_err_from_wire (msg.u.error.code), WALCAST_ESTALE);
            char detail [64];
            wc_bytes_printable (detail, sizeof detail, &msg.u.error.detail);
            unsigned long long lag = 0;
            assert_int_equal (sscanf (detail, "lag_ms=%llu", &lag), 1);
            if (lag <= WC_HEARTBEAT_MS + 1000)     //  current, yet refused
                refused++;
        }
        else
        if (msg.type == WC_MSG_VALUE && bound > 1)
            served++;
        cluster_nap_ms (7);
    }
    assert_true (refused > 0);
    assert_true (served > 0);
    zmq_close (replica);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  Send a PING with nenvelope frames before it ("e" each) from a DEALER;
//  the ROUTER receives nenvelope + 2 frames (its identity frame first).
static void
s_send_framed (void *sock, int nenvelope, uint64_t rid)
{
    for (int i = 0; i < nenvelope; i++)
        assert_int_equal (zmq_send (sock, "e", 1, ZMQ_SNDMORE), 1);
    wc_msg_t ping = { .type = WC_MSG_PING, .rid = rid };
    s_send (sock, &ping);
}

//  "Framing": at most WC_MAX_FRAMES frames in all, the identity frame the
//  ROUTER adds included. 8 are answered, through the same envelope; 9 are
//  dropped without a reply (the next request's reply comes first, as a
//  node answers one connection's requests in order).
static void
test_router_frames (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_t *c = f->cluster;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    void *sock = s_dealer (f, cluster_port (c, p));
    int most = WC_MAX_FRAMES - 2;           //  envelope frames after the identity

    s_send_framed (sock, most, 1);
    zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 10000), 1);
    for (int i = 0; i < most; i++) {
        char frame [8];
        assert_int_equal (zmq_recv (sock, frame, sizeof frame, 0), 1);
        assert_int_equal (frame [0], 'e');
        int more = 0;
        size_t size = sizeof more;
        zmq_getsockopt (sock, ZMQ_RCVMORE, &more, &size);
        assert_true (more);
    }
    wc_msg_t msg;
    assert_int_equal (s_recv (f, sock, 1000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_PONG);
    assert_int_equal (msg.rid, 1);

    s_send_framed (sock, most + 1, 2);      //  WC_MAX_FRAMES + 1 in all
    s_send_framed (sock, 0, 3);
    assert_int_equal (s_recv (f, sock, 10000, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_PONG);
    assert_int_equal (msg.rid, 3);

    zmq_close (sock);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  "Framing", Stream socket: a subscription message is at most
//  WC_MAX_SUBSCRIPTION octets, the octet 1 and a prefix of up to
//  WC_MAX_KEY. A prefix of that length is ignored, like any but "", and
//  the subscriber still gets every message through "". (libzmq 4.3 sends
//  a subscription as a ZMTP 3.1 SUBSCRIBE command, 9 octets longer than
//  the 3.0 form: nodes took that for an oversized frame and dropped the
//  connection, over and over, from a prefix of 1016 octets.)
static void
test_longest_subscription (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    cluster_t *c = f->cluster;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    void *sub = zmq_socket (f->ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt (sub, ZMQ_LINGER, &linger, sizeof linger);
    static char prefix [WC_MAX_SUBSCRIPTION - 1];
    memset (prefix, 'k', sizeof prefix);
    assert_int_equal (zmq_setsockopt (sub, ZMQ_SUBSCRIBE, prefix, sizeof prefix), 0);
    assert_int_equal (zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "", 0), 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", cluster_port (c, p) + 1);
    assert_int_equal (zmq_connect (sub, endpoint), 0);
    //  Heartbeats come at least once a second; writes until one arrives
    int64_t deadline = cluster_now_ms () + 20000;
    int got = 0;
    while (!got && cluster_now_ms () < deadline) {
        assert_int_equal (cluster_load (c, p, 0, 1, 1, NULL), 0);
        zmq_pollitem_t item = { sub, 0, ZMQ_POLLIN, 0 };
        got = zmq_poll (&item, 1, 200);
    }
    if (!got)
        fail_msg ("a subscriber with a %zu-octet prefix and \"\" got nothing in 20 s",
                  sizeof prefix);
    zmq_close (sub);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_fetch_budget, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_digest_text, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lag_ms, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_staleness_floor, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_router_frames, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_longest_subscription, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
