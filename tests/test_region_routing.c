/*  test_region_routing.c - client routing when nodes are behind, silent,
    gone or lying.

    What a user relies on:
    - a strong (or --read primary) read is served by the primary or by
      nobody: never by a replica standing in for a primary the client
      does not know; a client given only a replica finds the primary
      through it;
    - a session read whose replicas are behind reaches the primary, even
      when another replica times out after the first said ESTALE, even
      with a timeout shorter than the session wait, and even when every
      replica was marked unreachable;
    - no call blocks much past the handle's timeout (a write retried
      after ENOTPRIMARY, a write or a listing with the broker dead), and
      a write that timed out is not sent again;
    - a node that answers a read with a seq below the read's min_seq
      does not serve it, and one that claims a seq near 2^64 does not
      break the session for good;
    - `walcast watch` moves to the next node when the one it watches
      dies, and says so on stderr; with --read replica and no replica it
      fails with "no replica is up" (and so does get).

    Real nodes run from the harness (tests/cluster.h). Lying and silent
    nodes are fakes owned by the test: a ROUTER on a spare port, served
    by a thread, answering PING, GET, PUT and STATUS as told.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <cmocka.h>
#include <zmq.h>
#include "cluster.h"
#include "codec.h"

#define SLACK_MS    1000        /* what a call may take past its timeout */

/* --- fake nodes -------------------------------------------------------- */

/*  What a fake does with a GET. */
enum { FAKE_VALUE, FAKE_ESTALE, FAKE_SILENT };

/*  A fake node: a ROUTER on port, answered by its own thread. */
typedef struct {
    int          port;
    const char  *id;
    int          role;              /* in PONG and STATUS: 1 primary, 2 replica */
    atomic_int   pong;              /* answers PING */
    int          pong_delay_ms;     /* ... after this long */
    atomic_int   get_mode;          /* FAKE_* */
    atomic_ullong value_seq;        /* seq of its VALUE (and PONG) */
    const char  *value;             /* its VALUE */
    int          put_delay_ms;      /* PUT: ENOTPRIMARY after this long; < 0 silent */
    const char  *put_detail;        /* ... naming this primary */
    atomic_int   gets;              /* GETs received */
    atomic_int   puts;              /* PUTs received */
    atomic_int   stop;
    void        *sock;
    pthread_t    thread;
    bool         running;
} fake_t;

/*  The fakes running and their context, stopped by the teardown even
    when a test fails half-way (their ports must be free for the next). */
#define MAX_FAKES 4
static fake_t *s_fakes [MAX_FAKES];
static int s_nfakes;
static void *s_ctx;

static void
s_nap (int ms)
{
    if (ms > 0)
        cluster_nap_ms (ms);
}

//  Send one reply frame to identity on the fake's ROUTER.
static void
s_fake_reply (fake_t *fake, zmq_msg_t *identity, msgpack_sbuffer *out)
{
    zmq_msg_t id;
    zmq_msg_init (&id);
    zmq_msg_copy (&id, identity);
    if (zmq_msg_send (&id, fake->sock, ZMQ_SNDMORE) < 0)
        zmq_msg_close (&id);
    else
        zmq_send (fake->sock, out->data, out->size, 0);
}

//  The fake's thread: answer requests until told to stop.
static void *
s_fake_run (void *arg)
{
    fake_t *fake = (fake_t *) arg;
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    while (!atomic_load (&fake->stop)) {
        zmq_pollitem_t item = { fake->sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 20) <= 0)
            continue;
        zmq_msg_t identity, body;
        zmq_msg_init (&identity);
        zmq_msg_init (&body);
        if (zmq_msg_recv (&identity, fake->sock, 0) < 0
        ||  !zmq_msg_more (&identity)
        ||  zmq_msg_recv (&body, fake->sock, 0) < 0) {
            zmq_msg_close (&identity);
            zmq_msg_close (&body);
            continue;
        }
        msgpack_unpacked storage;
        msgpack_unpacked_init (&storage);
        wc_msg_t req;
        out.size = 0;
        int rc = wc_msg_decode (zmq_msg_data (&body), zmq_msg_size (&body),
                                &storage, &req);
        wc_msg_t reply;
        memset (&reply, 0, sizeof reply);
        reply.rid = req.rid;
        uint64_t seq = atomic_load (&fake->value_seq);
        if (rc != 0) {
            //  not for us
        }
        else
        if (req.type == WC_MSG_PING && atomic_load (&fake->pong)) {
            s_nap (fake->pong_delay_ms);
            reply.type = WC_MSG_PONG;
            reply.u.pong.epoch = 1;
            reply.u.pong.seq = seq;
            reply.u.pong.role = (uint8_t) fake->role;
            reply.u.pong.id.ptr = (const uint8_t *) fake->id;
            reply.u.pong.id.len = (uint32_t) strlen (fake->id);
            if (wc_msg_encode (&reply, &out) == 0)
                s_fake_reply (fake, &identity, &out);
        }
        else
        if (req.type == WC_MSG_STATUS) {
            reply.type = WC_MSG_STATUS_REPLY;
            reply.u.status.id.ptr = (const uint8_t *) fake->id;
            reply.u.status.id.len = (uint32_t) strlen (fake->id);
            reply.u.status.role = (uint8_t) fake->role;
            reply.u.status.epoch = 1;
            reply.u.status.applied_seq = seq;
            reply.u.status.primary_seq = seq;
            if (wc_msg_encode (&reply, &out) == 0)
                s_fake_reply (fake, &identity, &out);
        }
        else
        if (req.type == WC_MSG_GET) {
            atomic_fetch_add (&fake->gets, 1);
            int mode = atomic_load (&fake->get_mode);
            if (mode == FAKE_VALUE) {
                reply.type = WC_MSG_VALUE;
                reply.u.value.found = true;
                reply.u.value.value.ptr = (const uint8_t *) fake->value;
                reply.u.value.value.len = (uint32_t) strlen (fake->value);
                reply.u.value.seq = seq;
                if (wc_msg_encode (&reply, &out) == 0)
                    s_fake_reply (fake, &identity, &out);
            }
            else
            if (mode == FAKE_ESTALE) {
                char detail [40];
                snprintf (detail, sizeof detail, "applied=%llu", (unsigned long long) seq);
                if (wc_error_encode (req.rid, WALCAST_ESTALE, NULL, detail, &out) == 0)
                    s_fake_reply (fake, &identity, &out);
            }
        }
        else
        if (req.type == WC_MSG_PUT || req.type == WC_MSG_DEL) {
            atomic_fetch_add (&fake->puts, 1);
            if (fake->put_delay_ms >= 0) {
                s_nap (fake->put_delay_ms);
                if (wc_error_encode (req.rid, WALCAST_ENOTPRIMARY, NULL,
                                     fake->put_detail, &out) == 0)
                    s_fake_reply (fake, &identity, &out);
            }
        }
        msgpack_unpacked_destroy (&storage);
        zmq_msg_close (&identity);
        zmq_msg_close (&body);
    }
    msgpack_sbuffer_destroy (&out);
    return NULL;
}

//  Describe a fake: port, id, role; it answers PINGs (after pong_delay_ms),
//  GETs as get_mode says with value at value_seq, PUTs not at all.
static void
s_fake_init (fake_t *fake, int port, const char *id, int role, int pong_delay_ms,
             int get_mode, uint64_t value_seq, const char *value)
{
    memset (fake, 0, sizeof *fake);
    fake->port = port;
    fake->id = id;
    fake->role = role;
    atomic_init (&fake->pong, 1);
    fake->pong_delay_ms = pong_delay_ms;
    atomic_init (&fake->get_mode, get_mode);
    atomic_init (&fake->value_seq, value_seq);
    fake->value = value;
    fake->put_delay_ms = -1;
    fake->put_detail = "";
    atomic_init (&fake->gets, 0);
    atomic_init (&fake->puts, 0);
    atomic_init (&fake->stop, 0);
}

//  Bind the fake's ROUTER (in this thread, before its own takes it
//  over) and start serving. 0 or -1.
static int
s_fake_start (fake_t *fake)
{
    if (!s_ctx)
        s_ctx = zmq_ctx_new ();
    if (!s_ctx || s_nfakes == MAX_FAKES)
        return -1;
    fake->sock = zmq_socket (s_ctx, ZMQ_ROUTER);
    if (!fake->sock)
        return -1;
    int linger = 0;
    zmq_setsockopt (fake->sock, ZMQ_LINGER, &linger, sizeof linger);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", fake->port);
    if (zmq_bind (fake->sock, endpoint)) {
        fprintf (stderr, "fake %s: bind %s: %s\n", fake->id, endpoint,
                 zmq_strerror (zmq_errno ()));
        zmq_close (fake->sock);
        fake->sock = NULL;
        return -1;
    }
    atomic_store (&fake->stop, 0);
    if (pthread_create (&fake->thread, NULL, s_fake_run, fake)) {
        zmq_close (fake->sock);
        fake->sock = NULL;
        return -1;
    }
    fake->running = true;
    s_fakes [s_nfakes++] = fake;
    return 0;
}

static void
s_fake_stop (fake_t *fake)
{
    if (!fake->running)
        return;
    atomic_store (&fake->stop, 1);
    pthread_join (fake->thread, NULL);
    zmq_close (fake->sock);
    fake->sock = NULL;
    fake->running = false;
}

//  "127.0.0.1:PORT" of a port.
static const char *
s_addr (char *buf, size_t size, int port)
{
    snprintf (buf, size, "127.0.0.1:%d", port);
    return buf;
}

/* --- helpers ----------------------------------------------------------- */

static int
s_setup (void **state)
{
    *state = cluster_new ("region_routing");
    return 0;
}

static int
s_teardown (void **state)
{
    for (int i = 0; i < s_nfakes; i++)
        s_fake_stop (s_fakes [i]);
    s_nfakes = 0;
    if (s_ctx)
        zmq_ctx_term (s_ctx);
    s_ctx = NULL;
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

static uint64_t
s_put (walcast_t *h, const char *key, const char *value)
{
    walcast_pos_t pos;
    int rc = walcast_put (h, key, strlen (key), value, strlen (value), &pos);
    if (rc)
        fprintf (stderr, "put %s: %s (%s)\n", key, walcast_errname (rc),
                 walcast_last_detail (h));
    assert_int_equal (rc, 0);
    return pos.seq;
}

//  A read of key on h: the walcast code, the value (NUL-terminated, ""
//  on failure) and who served it; *took_ms how long it took.
static int
s_get (walcast_t *h, const char *key, uint64_t min_seq, char *value, size_t size,
       walcast_served_t *served, int64_t *took_ms)
{
    void *got = NULL;
    size_t len = 0;
    int64_t started = cluster_now_ms ();
    int rc = walcast_get_ex (h, key, strlen (key), min_seq, &got, &len, served);
    if (took_ms)
        *took_ms = cluster_now_ms () - started;
    value [0] = 0;
    if (rc == 0)
        snprintf (value, size, "%.*s", (int) len, got ? (char *) got : "");
    walcast_free (got);
    print_message ("  get %s: %s, \"%s\" from %s (%lld ms)\n", key, walcast_errname (rc),
                   value, rc == 0 ? served->id : "-",
                   took_ms ? (long long) *took_ms : -1LL);
    return rc;
}

//  A handle with the given timeout connected to the addresses (NULL-ended).
static walcast_t *
s_client (int timeout_ms, ...)
{
    walcast_t *h = walcast_new ();
    assert_non_null (h);
    walcast_set_timeout (h, timeout_ms);
    va_list list;
    va_start (list, timeout_ms);
    const char *addr;
    while ((addr = va_arg (list, const char *)))
        assert_int_equal (walcast_connect (h, addr), 0);
    va_end (list);
    return h;
}

//  Poll walcast_nodes on h until every node it lists has an RTT.
static void
s_wait_rtts (walcast_t *h, size_t expect)
{
    int64_t deadline = cluster_now_ms () + 10000;
    while (true) {
        walcast_node_info_t nodes [8];
        size_t count = 0;
        assert_int_equal (walcast_nodes (h, nodes, 8, &count), 0);
        bool all = count == expect;
        for (size_t i = 0; i < count; i++)
            all = all && nodes [i].rtt_ms >= 0;
        if (all)
            return;
        assert_true (cluster_now_ms () < deadline);
    }
}

//  A replica r that is behind: it had seqs 1..2 from p, then was
//  restarted following a port where nobody listens, and p took a third
//  write. Returns that write's seq.
static uint64_t
s_replica_behind (cluster_t *c, int p, int r, const char *dead)
{
    for (int i = p; i <= r; i++) {
        assert_int_equal (cluster_start (c, i), 0);
        assert_int_equal (cluster_wait_ready (c, i, 30000), 0);
    }
    walcast_t *h = cluster_client (c, p);
    assert_non_null (h);
    s_put (h, "k", "v1");
    s_put (h, "k", "v2");
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, 2, 10000, NULL, NULL), 0);
    assert_int_equal (cluster_term (c, r, 10000), 0);
    cluster_set_replica_of (c, r, dead);
    assert_int_equal (cluster_start (c, r), 0);
    assert_int_equal (cluster_wait_ready (c, r, 30000), 0);
    uint64_t seq = s_put (h, "k", "v3");
    walcast_destroy (&h);
    walcast_status_t st;
    assert_int_equal (cluster_status (c, r, &st), 0);
    assert_int_equal (st.applied_seq, 2);
    return seq;
}

/* --- tests ------------------------------------------------------------- */

//  A: strong and primary reads never come from a replica standing in for
//  an unknown primary. C: a session read with a timeout shorter than the
//  session wait still reaches the primary.
static void
test_replica_behind (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    char dead [32];
    s_addr (dead, sizeof dead, cluster_spare_port (c) + 9);
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    uint64_t seq = s_replica_behind (c, p, r, dead);
    assert_int_equal (seq, 3);

    //  A, from the command line: the primary r1 names is dead, so there
    //  is no one to serve a strong read; r1's "v2" must not come back
    const char *modes [][2] = { { "--consistency", "strong" }, { "--read", "primary" } };
    for (int m = 0; m < 2; m++) {
        char *out = NULL, *err = NULL;
        int rc = cluster_cli (c, NULL, &out, &err, "--node", cluster_addr (c, r), "-v",
                              "--timeout", "3000", modes [m][0], modes [m][1],
                              "get", "k", NULL);
        print_message ("walcast --node r1 %s %s get k: exit %d, stdout \"%s\", stderr %s",
                       modes [m][0], modes [m][1], rc, out, err);
        bool stale = strstr (out, "v2") != NULL || strstr (err, "served by r1") != NULL;
        bool said = strstr (err, "no primary known") != NULL;
        free (out);
        free (err);
        assert_false (stale);
        assert_int_equal (rc, 3);
        assert_true (said);
    }
    //  A, from the library: r1 alone, and r1 first with a dead node
    //  second (r1 is then the write node, which used to stand in for a
    //  primary nobody named)
    char value [64];
    walcast_served_t served;
    walcast_t *h = s_client (3000, cluster_addr (c, r), NULL);
    assert_int_equal (walcast_set_consistency (h, WALCAST_STRONG), 0);
    assert_int_equal (s_get (h, "k", 0, value, sizeof value, &served, NULL),
                      WALCAST_EUNAVAILABLE);
    //  ... and says what was missing, after how long, and what it knows
    print_message ("strong read with no primary: %s\n", walcast_last_detail (h));
    assert_int_equal (strncmp (walcast_last_detail (h), "no primary known after 3000 ms: ",
                               32), 0);
    walcast_destroy (&h);
    h = s_client (3000, cluster_addr (c, r), dead, NULL);
    assert_int_equal (walcast_set_read (h, WALCAST_READ_PRIMARY, NULL), 0);
    assert_int_equal (s_get (h, "k", 0, value, sizeof value, &served, NULL),
                      WALCAST_EUNAVAILABLE);
    walcast_destroy (&h);

    //  C: r1 is behind the session (the handle wrote seq 4); with a 600 ms
    //  timeout and a 1000 ms session wait, r1 may wait only part of it,
    //  and the primary gets the rest
    h = s_client (600, cluster_addr (c, p), cluster_addr (c, r), NULL);
    walcast_set_timeout (h, 10000);
    uint64_t seq4 = s_put (h, "k", "v4");
    walcast_set_timeout (h, 600);
    walcast_set_session_wait (h, 1000);
    assert_int_equal (walcast_set_read (h, WALCAST_READ_REPLICA, NULL), 0);
    int64_t took;
    assert_int_equal (s_get (h, "k", 0, value, sizeof value, &served, &took), 0);
    assert_string_equal (value, "v4");
    assert_string_equal (served.id, "p1");
    assert_true (took <= 600 + SLACK_MS);
    walcast_destroy (&h);
    //  ... and from the command line, with --timeout shorter than the
    //  default session wait (200 ms)
    char min_seq [24];
    snprintf (min_seq, sizeof min_seq, "%llu", (unsigned long long) seq4);
    const char *args [] = { "--node", cluster_addr (c, p), "--node", cluster_addr (c, r),
                            "-v", "--timeout", "190", "--read", "replica",
                            "get", "--min-seq", min_seq, "k", NULL };
    char id [65];
    assert_int_equal (cluster_cli_read (c, args, value, sizeof value, id, sizeof id,
                                        NULL, 0), 0);
    assert_string_equal (value, "v4");
    assert_string_equal (id, "p1");

    //  r1 follows p1 again: given r1 alone, a strong read finds p1
    //  through it, and is served there
    assert_int_equal (cluster_term (c, r, 10000), 0);
    cluster_set_replica_of (c, r, cluster_addr (c, p));
    assert_int_equal (cluster_start (c, r), 0);
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, seq4, 10000, NULL, NULL), 0);
    h = s_client (3000, cluster_addr (c, r), NULL);
    assert_int_equal (walcast_set_consistency (h, WALCAST_STRONG), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal (s_get (h, "k", 0, value, sizeof value, &served, NULL), 0);
        assert_string_equal (value, "v4");
        assert_string_equal (served.id, "p1");
    }
    walcast_destroy (&h);
    const char *strong [] = { "--node", cluster_addr (c, r), "-v", "--consistency", "strong",
                              "get", "k", NULL };
    assert_int_equal (cluster_cli_read (c, strong, value, sizeof value, id, sizeof id,
                                        NULL, 0), 0);
    assert_string_equal (id, "p1");

    //  --read replica with no replica up says so, for get and for watch
    const char *kinds [] = { "get", "watch" };
    for (int k = 0; k < 2; k++) {
        char *out = NULL, *err = NULL;
        int rc = cluster_cli (c, NULL, &out, &err, "--node", cluster_addr (c, p),
                              "--read", "replica", kinds [k], "k", NULL);
        print_message ("walcast --node p1 --read replica %s k: exit %d, %s", kinds [k],
                       rc, err);
        bool said = strstr (err, "no replica is up") != NULL;
        free (out);
        free (err);
        assert_int_equal (rc, 3);
        assert_true (said);
    }

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  B: an ESTALE, then a replica that times out: the primary is still
//  tried. Then every replica unreachable: a session read tries them
//  again, as an eventual one does, instead of failing at once. E: a
//  VALUE below the min_seq sent is not served, and a seq near 2^64
//  does not poison the session.
static void
test_replicas_lying (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    int spare = cluster_spare_port (c);
    static fake_t behind, mute;
    s_fake_init (&behind, spare, "behind", WC_ROLE_REPLICA, 0, FAKE_ESTALE, 0, "stale");
    s_fake_init (&mute, spare + 3, "mute", WC_ROLE_REPLICA, 30, FAKE_SILENT, 0, "stale");
    assert_int_equal (s_fake_start (&behind), 0);
    assert_int_equal (s_fake_start (&mute), 0);
    char behind_addr [32], mute_addr [32];
    s_addr (behind_addr, sizeof behind_addr, behind.port);
    s_addr (mute_addr, sizeof mute_addr, mute.port);

    //  B: "behind" (nearest) says ESTALE, "mute" (30 ms) never answers;
    //  the session's way out, the primary, must still be tried
    walcast_t *h = s_client (4000, cluster_addr (c, p), behind_addr, mute_addr, NULL);
    s_wait_rtts (h, 3);
    s_put (h, "k", "fresh");
    s_put (h, "k", "fresh");
    uint64_t seq = s_put (h, "k", "fresh");
    assert_int_equal (walcast_set_read (h, WALCAST_READ_REPLICA, NULL), 0);
    char value [64];
    walcast_served_t served;
    int64_t took;
    assert_int_equal (s_get (h, "k", 0, value, sizeof value, &served, &took), 0);
    assert_string_equal (served.id, "p1");
    assert_string_equal (value, "fresh");
    assert_int_equal (atomic_load (&behind.gets), 1);
    assert_int_equal (atomic_load (&mute.gets), 1);
    assert_true (took <= 4000 + SLACK_MS);

    //  B: every replica unreachable ("mute" timed out above and no
    //  longer answers PINGs; now "behind" times out too, on an eventual
    //  read), then "behind" answers again: a session read tries the
    //  replicas anyway
    atomic_store (&mute.pong, 0);
    atomic_store (&behind.get_mode, FAKE_SILENT);
    assert_int_equal (walcast_set_consistency (h, WALCAST_EVENTUAL), 0);
    assert_int_equal (s_get (h, "k", 0, value, sizeof value, &served, NULL),
                      WALCAST_ETIMEOUT);
    atomic_store (&behind.value_seq, seq);
    atomic_store (&behind.get_mode, FAKE_VALUE);
    assert_int_equal (walcast_set_consistency (h, WALCAST_SESSION), 0);
    assert_int_equal (s_get (h, "k", 0, value, sizeof value, &served, NULL), 0);
    assert_string_equal (served.id, "behind");
    walcast_destroy (&h);

    //  E: "behind" answers VALUE with seq 1 to a read that asked for 3:
    //  not served; the session goes on to the primary
    atomic_store (&behind.value_seq, 1);
    h = s_client (3000, cluster_addr (c, p), behind_addr, NULL);
    s_put (h, "k", "fresh");
    assert_true (walcast_session_seq (h) >= 3);
    assert_int_equal (walcast_set_read (h, WALCAST_READ_REPLICA, NULL), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal (s_get (h, "k", 0, value, sizeof value, &served, NULL), 0);
        assert_string_equal (served.id, "p1");
        assert_string_equal (value, "fresh");
    }
    //  ...and an explicit token is honoured the same way
    assert_int_equal (walcast_set_consistency (h, WALCAST_EVENTUAL), 0);
    assert_int_equal (s_get (h, "k", 3, value, sizeof value, &served, NULL),
                      WALCAST_ESTALE);
    assert_int_equal (s_get (h, "k", 0, value, sizeof value, &served, NULL), 0);
    assert_string_equal (served.id, "behind");

    //  E: "behind" claims it has applied 2^64 - 2. Whatever it serves, the
    //  session must still read from the primary afterwards
    atomic_store (&behind.value_seq, UINT64_MAX - 1);
    assert_int_equal (walcast_set_consistency (h, WALCAST_SESSION), 0);
    s_get (h, "k", 0, value, sizeof value, &served, NULL);
    assert_int_equal (walcast_set_read (h, WALCAST_READ_PRIMARY, NULL), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal (s_get (h, "k", 0, value, sizeof value, &served, &took), 0);
        assert_string_equal (served.id, "p1");
        assert_string_equal (value, "fresh");
    }
    print_message ("session token after the lie: %llu\n",
                   (unsigned long long) walcast_session_seq (h));
    assert_true (walcast_session_seq (h) < 1000);
    walcast_destroy (&h);

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  D: calls end within their timeout (plus slack) on the paths that once
//  took two: a write retried after a slow ENOTPRIMARY, a write that
//  times out with the broker dead, a listing with the broker dead and a
//  node silent. A write that timed out is not sent again.
static void
test_deadlines (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int spare = cluster_spare_port (c);
    char slow_addr [32], mute_addr [32];
    s_addr (slow_addr, sizeof slow_addr, spare);
    s_addr (mute_addr, sizeof mute_addr, spare + 3);
    //  "slow" takes 1.4 s to say the primary is "mute", which never answers
    static fake_t slow, mute;
    s_fake_init (&slow, spare, "slow", WC_ROLE_REPLICA, 0, FAKE_SILENT, 0, "");
    slow.put_delay_ms = 1400;
    slow.put_detail = mute_addr;
    s_fake_init (&mute, spare + 3, "mute", WC_ROLE_PRIMARY, 0, FAKE_SILENT, 0, "");
    atomic_store (&mute.pong, 0);
    assert_int_equal (s_fake_start (&slow), 0);
    assert_int_equal (s_fake_start (&mute), 0);

    walcast_t *h = s_client (2000, slow_addr, mute_addr, NULL);
    int64_t started = cluster_now_ms ();
    walcast_pos_t pos;
    int rc = walcast_put (h, "k", 1, "v", 1, &pos);
    int64_t took = cluster_now_ms () - started;
    print_message ("put via a slow ENOTPRIMARY to a silent primary: %s in %lld ms\n",
                   walcast_errname (rc), (long long) took);
    assert_int_equal (rc, WALCAST_ETIMEOUT);
    assert_true (took <= 2000 + SLACK_MS);
    assert_int_equal (atomic_load (&slow.puts), 1);
    assert_int_equal (atomic_load (&mute.puts), 1);
    //  The next write goes to "mute" and times out: sent once, not again
    rc = walcast_put (h, "k", 1, "v", 1, &pos);
    assert_int_equal (rc, WALCAST_ETIMEOUT);
    assert_int_equal (atomic_load (&mute.puts), 2);
    assert_int_equal (atomic_load (&slow.puts), 1);
    walcast_destroy (&h);

    //  A cluster with a broker, which then dies
    assert_int_equal (cluster_broker_start (c, 1000), 0);
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    for (int i = p; i <= r; i++) {
        cluster_set_broker (c, i, true);
        assert_int_equal (cluster_start (c, i), 0);
        assert_int_equal (cluster_wait_ready (c, i, 30000), 0);
    }
    walcast_t *b = cluster_broker_client (c, 2500);
    assert_non_null (b);
    int64_t deadline = cluster_now_ms () + 10000;
    while (true) {              // until the broker has listed both
        walcast_node_info_t nodes [8];
        size_t count = 0;
        assert_int_equal (walcast_nodes (b, nodes, 8, &count), 0);
        if (count == 2 && nodes [0].up && nodes [1].up)
            break;
        assert_true (cluster_now_ms () < deadline);
        cluster_nap_ms (100);
    }
    s_put (b, "k", "v");
    assert_int_equal (cluster_broker_kill (c), 0);

    //  walcast_nodes with the broker dead and r1 silent
    assert_int_equal (cluster_signal (c, r, SIGSTOP), 0);
    walcast_node_info_t nodes [8];
    size_t count = 0;
    started = cluster_now_ms ();
    assert_int_equal (walcast_nodes (b, nodes, 8, &count), 0);
    took = cluster_now_ms () - started;
    print_message ("walcast_nodes, broker dead, r1 stopped: %lld ms (timeout 2500)\n",
                   (long long) took);
    assert_true (took <= 2500 + SLACK_MS);
    assert_int_equal (cluster_signal (c, r, SIGCONT), 0);

    //  A write to a silent primary with the broker dead
    assert_int_equal (cluster_signal (c, p, SIGSTOP), 0);
    started = cluster_now_ms ();
    rc = walcast_put (b, "k", 1, "w", 1, &pos);
    took = cluster_now_ms () - started;
    print_message ("put, broker dead, p1 stopped: %s in %lld ms (timeout 2500)\n",
                   walcast_errname (rc), (long long) took);
    assert_int_equal (rc, WALCAST_ETIMEOUT);
    assert_true (took <= 2500 + SLACK_MS);
    assert_int_equal (cluster_signal (c, p, SIGCONT), 0);
    walcast_destroy (&b);

    //  Connecting to the dead broker
    b = walcast_new ();
    assert_non_null (b);
    walcast_set_timeout (b, 1000);
    started = cluster_now_ms ();
    rc = walcast_connect_broker (b, cluster_broker_addr (c));
    took = cluster_now_ms () - started;
    assert_int_not_equal (rc, 0);
    assert_true (took <= 1000 + SLACK_MS);
    walcast_destroy (&b);

    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  Read a whole file (malloc'd, NUL-terminated; "" when missing).
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "rb");
    char *text = NULL;
    size_t size = 0;
    if (file) {
        fseek (file, 0, SEEK_END);
        long len = ftell (file);
        fseek (file, 0, SEEK_SET);
        if (len > 0) {
            text = malloc ((size_t) len + 1);
            if (text)
                size = fread (text, 1, (size_t) len, file);
        }
        fclose (file);
    }
    if (!text)
        text = malloc (1);
    assert_non_null (text);
    text [size] = 0;
    return text;
}

//  Poll a background CLI's stdout (or its stderr log) until it holds
//  needle; 0 or -1.
static int
s_wait_text (cluster_t *c, int proc, bool err, const char *needle, int timeout_ms,
             bool quiet)
{
    char path [512];
    snprintf (path, sizeof path, "%s/cli%d.log", cluster_dir (c), proc);
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (true) {
        char *text = err ? s_slurp (path) : cluster_proc_output (c, proc);
        bool found = strstr (text, needle) != NULL;
        if (found || cluster_now_ms () > deadline) {
            if (!found && !quiet)
                fprintf (stderr, "no \"%s\" on the watcher's %s after %d ms:\n%s\n",
                         needle, err ? "stderr" : "stdout", timeout_ms, text);
            free (text);
            return found ? 0 : -1;
        }
        free (text);
        cluster_nap_ms (20);
    }
}

//  H: a watch on r1 (the client's region) moves to p1 when r1 dies, says
//  so on stderr, and goes on printing changes.
static void
test_watch_moves (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    cluster_set_region (c, p, "us");
    cluster_set_region (c, r, "eu");
    for (int i = p; i <= r; i++) {
        assert_int_equal (cluster_start (c, i), 0);
        assert_int_equal (cluster_wait_ready (c, i, 30000), 0);
    }
    walcast_t *h = cluster_client (c, p);
    assert_non_null (h);
    int w = cluster_cli_spawn (c, "--node", cluster_addr (c, p), "--node", cluster_addr (c, r),
                               "--region", "eu", "watch", "user:", NULL);
    assert_true (w >= 0);
    //  Until the subscription is in place
    int64_t deadline = cluster_now_ms () + 10000;
    int marker = 0;
    while (true) {
        char key [32], needle [64];
        snprintf (key, sizeof key, "user:sync%d", marker++);
        uint64_t seq = s_put (h, key, "x");
        snprintf (needle, sizeof needle, "%llu put %s x", (unsigned long long) seq, key);
        if (s_wait_text (c, w, false, needle, 100, true) == 0)
            break;
        assert_true (cluster_proc_running (c, w));
        assert_true (cluster_now_ms () < deadline);
    }
    assert_int_equal (cluster_kill (c, r), 0);
    assert_int_equal (s_wait_text (c, w, true, "watch: r1 silent, now watching p1", 10000,
                                  false), 0);
    assert_true (cluster_proc_running (c, w));
    //  Changes keep coming, now from p1 (polled: its subscription takes a
    //  moment)
    deadline = cluster_now_ms () + 10000;
    while (true) {
        char key [32], needle [64];
        snprintf (key, sizeof key, "user:after%d", marker++);
        uint64_t seq = s_put (h, key, "y");
        snprintf (needle, sizeof needle, "%llu put %s y", (unsigned long long) seq, key);
        if (s_wait_text (c, w, false, needle, 100, true) == 0)
            break;
        assert_true (cluster_proc_running (c, w));
        assert_true (cluster_now_ms () < deadline);
    }
    walcast_destroy (&h);
    cluster_proc_stop (c, w, 5000);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_replica_behind, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replicas_lying, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_deadlines, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_watch_moves, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
