/*  test_cluster_garbage.c - hostile bytes on every socket change nothing.

    What a user relies on: a node exposed to a buggy or malicious peer
    keeps serving and never lets malformed input touch its data. With a
    primary and a replica holding data, this test sends

    - to the service and catch-up ports of both (through raw DEALER and
      REQ sockets): random bodies, empty frames, too many frames, huge
      frames (8 MiB), valid msgpack of the wrong shape, a wrong protocol
      version, wrong field types, reply and stream types sent as requests,
      writes with keys or values over the limits, deeply nested and
      length-lying msgpack, and FETCHes with from_seq 0 or huge and
      max_bytes 0 or huge;
    - raw TCP connections to each of the three ports writing random bytes
      (with and without a ZMTP signature first), one left open and idle;

    and runs a FAKE primary (a PUB and two ROUTERs owned by the test) that
    a second replica follows: it publishes malformed entries, entries of
    the wrong version, types or seq, old seqs with other values, and a
    heartbeat far ahead, and answers every FETCH with garbage (alternating
    with harmless empty replies so the replica keeps asking).

    Afterwards every node still runs and answers, every digest is what it
    was, and a new write on the primary still replicates.

    Set WALCAST_TEST_SEED to replay a run's random bytes.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>
#include <msgpack.h>
#include "cluster.h"
#include "codec.h"

#define WRITES          1000
#define HUGE_FRAME      (8u * 1024u * 1024u)
#define SENTINEL_RID    0x5E57111E1ull
#define FAKE_TIMEOUT_MS 60000

static uint64_t s_rng = 88172645463325252ull;

static uint64_t
s_rand (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static void
s_random_bytes (uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf [i] = (uint8_t) s_rand ();
}

static int
s_setup (void **state)
{
    *state = cluster_new ("garbage");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

/* --- building messages, well-formed or not ------------------------------ */

/*  A msgpack buffer with its packer. Packing only fails when out of
    memory, which would fail the test: the results are ORed into failed. */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    int             failed;
} s_mp_t;

static void
s_mp_init (s_mp_t *mp)
{
    msgpack_sbuffer_init (&mp->sb);
    msgpack_packer_init (&mp->pk, &mp->sb, msgpack_sbuffer_write);
    mp->failed = 0;
}

static void
s_mp_reset (s_mp_t *mp)
{
    mp->sb.size = 0;
}

static void s_arr (s_mp_t *mp, uint32_t n) { mp->failed |= msgpack_pack_array (&mp->pk, n); }
static void s_map (s_mp_t *mp, uint32_t n) { mp->failed |= msgpack_pack_map (&mp->pk, n); }
static void s_u (s_mp_t *mp, uint64_t v) { mp->failed |= msgpack_pack_uint64 (&mp->pk, v); }
static void s_i (s_mp_t *mp, int64_t v) { mp->failed |= msgpack_pack_int64 (&mp->pk, v); }
static void s_f (s_mp_t *mp, double v) { mp->failed |= msgpack_pack_double (&mp->pk, v); }
static void s_nil (s_mp_t *mp) { mp->failed |= msgpack_pack_nil (&mp->pk); }
static void s_true (s_mp_t *mp) { mp->failed |= msgpack_pack_true (&mp->pk); }

static void
s_bin (s_mp_t *mp, const void *ptr, size_t len)
{
    mp->failed |= msgpack_pack_bin (&mp->pk, len);
    if (len)
        mp->failed |= msgpack_pack_bin_body (&mp->pk, ptr, len);
}

static void
s_str (s_mp_t *mp, const char *text)
{
    size_t len = strlen (text);
    mp->failed |= msgpack_pack_str (&mp->pk, len);
    if (len)
        mp->failed |= msgpack_pack_str_body (&mp->pk, text, len);
}

static void
s_raw (s_mp_t *mp, const void *ptr, size_t len)
{
    mp->failed |= msgpack_sbuffer_write (&mp->sb, (const char *) ptr, len);
}

/*  A bin of len filler bytes. */
static void
s_big_bin (s_mp_t *mp, size_t len)
{
    uint8_t *bytes = calloc (1, len ? len : 1);
    if (!bytes) {
        mp->failed = 1;
        return;
    }
    memset (bytes, 'x', len);
    s_bin (mp, bytes, len);
    free (bytes);
}

/*  An entry array [seq, epoch, ts, op, key, value] with chosen fields. */
static void
s_entry (s_mp_t *mp, uint64_t seq, uint64_t epoch, uint64_t op,
         const char *key, const char *value)
{
    s_arr (mp, 6);
    s_u (mp, seq);
    s_u (mp, epoch);
    s_u (mp, 1700000000000ull);
    s_u (mp, op);
    s_bin (mp, key, strlen (key));
    if (value)
        s_bin (mp, value, strlen (value));
    else
        s_nil (mp);
}

/*  Nested arrays `depth` deep: [[[[...]]]]. */
static void
s_deep (s_mp_t *mp, int depth)
{
    for (int i = 0; i < depth; i++)
        s_arr (mp, 1);
    s_nil (mp);
}

/*  Bodies that a node must refuse on its service or catch-up socket
    (decode error, wrong shape, wrong type, over a limit): variant k of
    S_BAD_REQUESTS. None of them is a valid write. */
#define S_BAD_REQUESTS 40

static void
s_bad_request (int k, s_mp_t *mp)
{
    uint8_t noise [512];
    s_mp_reset (mp);
    switch (k) {
        case 0:  s_random_bytes (noise, 1); s_raw (mp, noise, 1); break;
        case 1:  s_random_bytes (noise, 17); s_raw (mp, noise, 17); break;
        case 2:  s_random_bytes (noise, 512); s_raw (mp, noise, 512); break;
        case 3:  s_u (mp, 5); break;                                // not an array
        case 4:  s_str (mp, "PUT k v"); break;
        case 5:  s_map (mp, 1); s_u (mp, 1); s_u (mp, 1); break;
        case 6:  s_nil (mp); break;
        case 7:  s_arr (mp, 0); break;                              // []
        case 8:  s_arr (mp, 1); s_u (mp, 1); break;                 // [version]
        case 9:  s_arr (mp, 3); s_u (mp, 2); s_u (mp, WC_MSG_STATUS); s_u (mp, 1); break;
        case 10: s_arr (mp, 3); s_u (mp, 255); s_u (mp, WC_MSG_PING); s_u (mp, 1); break;
        case 11: s_arr (mp, 3); s_u (mp, 1); s_u (mp, 99); s_u (mp, 1); break;
        case 12: s_arr (mp, 3); s_u (mp, 1); s_str (mp, "5"); s_u (mp, 1); break;
        case 13: s_arr (mp, 3); s_i (mp, -1); s_u (mp, WC_MSG_PING); s_u (mp, 1); break;
        case 14: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_PUT); s_u (mp, 1);
                 s_u (mp, 123); s_bin (mp, "v", 1); break;          // key not bytes
        case 15: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_PUT); s_u (mp, 1);
                 s_bin (mp, "", 0); s_bin (mp, "v", 1); break;      // empty key
        case 16: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_PUT); s_u (mp, 1);
                 s_big_bin (mp, WC_MAX_KEY + 1); s_bin (mp, "v", 1); break;
        case 17: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_PUT); s_u (mp, 1);
                 s_bin (mp, "k00000001", 9); s_big_bin (mp, WC_MAX_VALUE + 1); break;
        case 18: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_PUT); s_i (mp, -7);
                 s_bin (mp, "k00000001", 9); s_bin (mp, "evil", 4); break;   // negative rid
        case 19: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_PUT); s_f (mp, 1.5);
                 s_bin (mp, "k00000001", 9); s_bin (mp, "evil", 4); break;   // float rid
        case 20: s_arr (mp, 4); s_u (mp, 1); s_u (mp, WC_MSG_PUT); s_u (mp, 1);
                 s_bin (mp, "k00000001", 9); break;                 // PUT without value
        case 21: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_PUT); s_u (mp, 1);
                 s_bin (mp, "k00000001", 9); s_u (mp, 42); break;   // value not bytes
        case 22: s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_DEL); s_u (mp, 1); break;
        case 23: s_arr (mp, 4); s_u (mp, 1); s_u (mp, WC_MSG_DEL); s_u (mp, 1);
                 s_nil (mp); break;                                 // DEL key nil
        case 24: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_WRITE_OK); s_u (mp, 1);
                 s_u (mp, 1); s_u (mp, 1); break;                   // a reply type
        case 25: s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
                 s_entry (mp, 1, 1, WC_OP_PUT, "k00000001", "evil"); break;
        case 26: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_HEARTBEAT); s_u (mp, 1);
                 s_u (mp, UINT64_MAX); s_u (mp, 0); break;
        case 27: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, 1);
                 s_u (mp, 5); s_arr (mp, 1);
                 s_entry (mp, 1, 1, WC_OP_PUT, "k00000001", "evil"); break;
        case 28: s_deep (mp, 100000); break;                        // nesting
        case 29: s_raw (mp, "\xdd\xff\xff\xff\xff", 5); break;      // array of 2^32-1, no items
        case 30: s_raw (mp, "\xdf\xff\xff\xff\xff", 5); break;      // map of 2^32-1
        case 31: s_raw (mp, "\xdb\xff\xff\xff\xff" "abc", 8); break;  // str of 4 GiB, 3 bytes
        case 32: s_raw (mp, "\xc6\x7f\xff\xff\xff", 5); break;      // bin of 2 GiB
        case 33: s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_PING); s_u (mp, 1);
                 s_raw (mp, "\x01", 1); break;                      // trailing byte
        case 34: s_raw (mp, "\x93\x01\x04", 3); break;              // truncated [1, PING, ?
        case 35: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_FETCH); s_u (mp, 1);
                 s_str (mp, "1"); s_u (mp, 100); break;             // FETCH, from as str
        case 36: s_arr (mp, 4); s_u (mp, 1); s_u (mp, WC_MSG_FETCH); s_u (mp, 1);
                 s_u (mp, 1); break;                                // FETCH, no max
        case 37: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_FETCH); s_u (mp, 1);
                 s_i (mp, -1); s_i (mp, -1); break;                 // FETCH, negatives
        case 38: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_PUT); s_u (mp, 1);
                 s_true (mp); s_nil (mp); break;
        default: s_arr (mp, 2); s_f (mp, 1.0); s_f (mp, 1.0); break;
    }
}

/*  FETCHes that are well-formed but ask for odd things. */
static void
s_odd_fetch (int k, uint64_t rid, s_mp_t *mp)
{
    static const uint64_t from [] = { 0, UINT64_MAX, 1, 1, 1, 999999, WRITES, WRITES + 1 };
    static const uint64_t max [] = { 1000, 1000, 0, UINT64_MAX, 1, 1000, 0, 100 };
    s_mp_reset (mp);
    s_arr (mp, 5);
    s_u (mp, 1);
    s_u (mp, WC_MSG_FETCH);
    s_u (mp, rid);
    s_u (mp, from [k % 8]);
    s_u (mp, max [k % 8]);
}

/* --- sending ------------------------------------------------------------- */

static void *
s_socket (void *ctx, int type, const char *endpoint)
{
    void *sock = zmq_socket (ctx, type);
    assert_non_null (sock);
    int linger = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    int hwm = 0;
    zmq_setsockopt (sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (type == ZMQ_REQ) {
        int on = 1;
        zmq_setsockopt (sock, ZMQ_REQ_RELAXED, &on, sizeof on);
        zmq_setsockopt (sock, ZMQ_REQ_CORRELATE, &on, sizeof on);
    }
    assert_int_equal (zmq_connect (sock, endpoint), 0);
    return sock;
}

static void
s_send (void *sock, const void *data, size_t len, int flags)
{
    if (zmq_send (sock, data, len, flags) == -1)
        fail_msg ("zmq_send: %s", zmq_strerror (zmq_errno ()));
}

/*  Read replies until one carries rid (and decodes), or timeout. Replies
    to the garbage before it are read and thrown away. */
static int
s_wait_rid (void *sock, uint64_t rid, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (cluster_now_ms () < deadline) {
        zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 50) <= 0)
            continue;
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        int more = 1, found = 0;
        while (more) {
            if (zmq_msg_recv (&frame, sock, 0) == -1)
                break;
            more = zmq_msg_more (&frame);
            if (!more) {
                msgpack_unpacked unpacked;
                msgpack_unpacked_init (&unpacked);
                wc_msg_t msg;
                if (wc_msg_decode (zmq_msg_data (&frame), zmq_msg_size (&frame),
                                   &unpacked, &msg) == 0 && msg.rid == rid)
                    found = 1;
                msgpack_unpacked_destroy (&unpacked);
            }
        }
        zmq_msg_close (&frame);
        if (found)
            return 0;
    }
    return -1;
}

/*  Spray garbage at a node's ROUTER socket through sock (DEALER or REQ),
    then send one valid request (PING on the service port, FETCH on the
    catch-up port) and wait for its answer: proof that the node read
    every message before it and is still serving. */
static void
s_spray (void *ctx, void *sock, bool catchup, const char *endpoint,
         const char *what)
{
    s_mp_t mp;
    s_mp_init (&mp);
    uint8_t noise [2048];

    for (int k = 0; k < S_BAD_REQUESTS; k++) {
        s_bad_request (k, &mp);
        assert_int_equal (mp.failed, 0);
        s_send (sock, mp.sb.data, mp.sb.size, 0);
    }
    for (int k = 0; k < 8; k++) {
        s_odd_fetch (k, 1000 + (uint64_t) k, &mp);
        s_send (sock, mp.sb.data, mp.sb.size, 0);
    }
    //  Frame shapes: empty, many frames, a valid body after junk frames
    s_send (sock, "", 0, 0);
    for (int k = 0; k < 30; k++)
        s_send (sock, "x", 1, k < 29 ? ZMQ_SNDMORE : 0);
    for (int k = 0; k < 9; k++)
        s_send (sock, "", 0, k < 8 ? ZMQ_SNDMORE : 0);
    s_bad_request (3, &mp);
    s_send (sock, "junk", 4, ZMQ_SNDMORE);
    s_send (sock, mp.sb.data, mp.sb.size, 0);
    //  Random bodies of random sizes
    for (int k = 0; k < 300; k++) {
        size_t len = 1 + s_rand () % sizeof noise;
        s_random_bytes (noise, len);
        //  A random body that starts like a message: [1, type, ...]
        if (k % 3 == 0 && len > 3) {
            noise [0] = 0x90 | (uint8_t) (s_rand () % 16);
            noise [1] = 0x01;
            noise [2] = (uint8_t) (s_rand () % 50);
        }
        s_send (sock, noise, len, 0);
    }

    //  The sentinel: a valid request whose answer must come back
    s_mp_reset (&mp);
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.rid = SENTINEL_RID;
    if (catchup) {
        msg.type = WC_MSG_FETCH;
        msg.u.fetch.from_seq = 1;
        msg.u.fetch.max_bytes = 100;
    }
    else
        msg.type = WC_MSG_PING;
    assert_int_equal (wc_msg_encode (&msg, &mp.sb), 0);
    //  The catch-up socket queues only a few replies per peer (each can
    //  be 4 MiB), so a peer that pipelines hundreds of requests without
    //  reading loses replies by design; a well-behaved replica (one FETCH
    //  at a time, on its own connection) must still be answered.
    void *sentinel = catchup ? s_socket (ctx, ZMQ_DEALER, endpoint) : sock;
    s_send (sentinel, mp.sb.data, mp.sb.size, 0);
    if (s_wait_rid (sentinel, SENTINEL_RID, 20000) != 0)
        fail_msg ("no answer to a valid request after garbage (%s)", what);
    if (sentinel != sock)
        zmq_close (sentinel);
    msgpack_sbuffer_destroy (&mp.sb);
}

/*  Send one HUGE_FRAME-byte frame (first bytes: head, the rest filler)
    through a fresh DEALER, and wait until the node drops the connection,
    which is how a ROUTER with a message size limit refuses it. */
static void
s_huge (void *ctx, const char *endpoint, const uint8_t *head, size_t head_len)
{
    static int monitors = 0;
    void *sock = s_socket (ctx, ZMQ_DEALER, endpoint);
    char monitor_ep [64];
    snprintf (monitor_ep, sizeof monitor_ep, "inproc://huge-%d", monitors++);
    assert_int_equal (zmq_socket_monitor (sock, monitor_ep, ZMQ_EVENT_DISCONNECTED), 0);
    void *monitor = zmq_socket (ctx, ZMQ_PAIR);
    assert_non_null (monitor);
    assert_int_equal (zmq_connect (monitor, monitor_ep), 0);

    uint8_t *big = malloc (HUGE_FRAME);
    assert_non_null (big);
    memset (big, 0x91, HUGE_FRAME);
    memcpy (big, head, head_len);
    s_send (sock, big, HUGE_FRAME, 0);
    free (big);

    int64_t deadline = cluster_now_ms () + 20000;
    bool dropped = false;
    while (!dropped && cluster_now_ms () < deadline) {
        zmq_pollitem_t item = { monitor, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 50) <= 0)
            continue;
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, monitor, 0) >= 2) {
            uint16_t event;
            memcpy (&event, zmq_msg_data (&frame), sizeof event);
            if (event == ZMQ_EVENT_DISCONNECTED)
                dropped = true;
        }
        while (zmq_msg_more (&frame))
            zmq_msg_recv (&frame, monitor, 0);
        zmq_msg_close (&frame);
    }
    zmq_socket_monitor (sock, NULL, 0);
    zmq_close (monitor);
    zmq_close (sock);
    if (!dropped)
        fail_msg ("%s accepted an %u-byte frame (no disconnect in 20 s)",
                  endpoint, HUGE_FRAME);
}

/*  Huge frames to a node's port: noise, and a PUT whose value claims the
    whole frame. */
static void
s_huge_all (void *ctx, const char *endpoint)
{
    uint8_t noise [4096];
    s_random_bytes (noise, sizeof noise);
    s_huge (ctx, endpoint, noise, sizeof noise);
    //  [1, PUT, 1, bin8 "k", bin32 of 8 MiB - 16]
    static const uint8_t put [] = {
        0x95, 0x01, 0x01, 0x01, 0xc4, 0x01, 'k', 0xc6, 0x00, 0x7f, 0xff, 0xf0
    };
    s_huge (ctx, endpoint, put, sizeof put);
}

/*  Connect over plain TCP; -1 or the socket. */
static int
s_tcp_connect (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons ((uint16_t) port);
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

/*  Raw bytes at a ZeroMQ port, in three flavours:
    0: random bytes;
    1: a ZMTP signature and version, then random bytes;
    2: a complete ZMTP 3.0 NULL handshake (greeting, READY with a socket
       type the port accepts), then a frame header claiming 2^62 bytes:
       a node must refuse the size, not try to allocate it.
    With keep_open the socket is returned (after a partial greeting) and
    left idle; otherwise it is closed and -1 returned. */
static int
s_raw_tcp (int port, int flavour, const char *peer_type, bool keep_open)
{
    int fd = s_tcp_connect (port);
    if (fd < 0)
        return -1;
    uint8_t bytes [65536];
    size_t len = sizeof bytes;
    s_random_bytes (bytes, sizeof bytes);
    if (flavour >= 1) {
        static const uint8_t signature [] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0 };
        memcpy (bytes, signature, sizeof signature);
    }
    if (flavour == 2) {
        //  Greeting: signature, version 3.0, mechanism "NULL", as-server 0
        memset (bytes + 12, 0, 52);
        memcpy (bytes + 12, "NULL", 4);
        size_t at = 64;
        //  READY command with Socket-Type
        size_t type_len = strlen (peer_type);
        bytes [at++] = 0x04;                            //  short command
        bytes [at++] = (uint8_t) (6 + 12 + 4 + type_len);
        memcpy (bytes + at, "\x05READY\x0bSocket-Type", 18);
        at += 18;
        bytes [at++] = 0; bytes [at++] = 0; bytes [at++] = 0;
        bytes [at++] = (uint8_t) type_len;
        memcpy (bytes + at, peer_type, type_len);
        at += type_len;
        //  A long message frame of 2^62 bytes, then a little of it
        bytes [at++] = 0x02;
        static const uint8_t size [] = { 0x40, 0, 0, 0, 0, 0, 0, 0 };
        memcpy (bytes + at, size, sizeof size);
        at += sizeof size;
        len = at + 1000;
    }
    //  The peer may reset the connection at any point: that is fine
    (void) !send (fd, bytes, keep_open ? 10 : len, MSG_NOSIGNAL);
    if (keep_open)
        return fd;
    if (flavour == 2) {
        //  Wait (bounded) for the node to close the connection on us
        struct timeval tv = { 5, 0 };
        setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (recv (fd, bytes, sizeof bytes, 0) > 0)
            ;
    }
    close (fd);
    return -1;
}

/* --- the fake primary ---------------------------------------------------- */

typedef struct {
    void    *service;       /* ROUTER, F */
    void    *pub;           /* PUB, F+1 */
    void    *catchup;       /* ROUTER, F+2 */
    uint64_t applied;       /* the following replica's seq */
    uint64_t epoch;         /* and its epoch: the fake continues its history */
    int      fetches;       /* FETCH requests received */
    int      epoch_ends;    /* EPOCH_END requests received */
    int      replies;       /* garbage replies sent */
} s_fake_t;

static void
s_pub (s_fake_t *fake, s_mp_t *mp, bool with_topic)
{
    if (with_topic)
        s_send (fake->pub, "k00000001", 9, ZMQ_SNDMORE);
    s_send (fake->pub, mp->sb.data, mp->sb.size, 0);
}

/*  One round of stream garbage, ending with a heartbeat far ahead; with
    huge, an over-limit entry too; with future, a well-formed entry
    beyond a hole. */
static void
s_publish_garbage (s_fake_t *fake, s_mp_t *mp, bool huge, bool future)
{
    uint64_t a = fake->applied, e = fake->epoch;
    uint8_t noise [300];
    s_random_bytes (noise, sizeof noise);
    s_mp_reset (mp); s_raw (mp, noise, sizeof noise); s_pub (fake, mp, false);
    s_pub (fake, mp, true);
    s_mp_reset (mp); s_pub (fake, mp, true);                                  // empty
    s_mp_reset (mp); s_u (mp, 5); s_pub (fake, mp, true);
    //  ENTRY of the wrong version, otherwise the next entry in line
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 2); s_u (mp, WC_MSG_ENTRY);
    s_entry (mp, a + 1, e, WC_OP_PUT, "k00000001", "evil-version"); s_pub (fake, mp, true);
    //  Next in line but malformed: key type, op, seq 0, epoch 0, DEL with
    //  value, empty key, key too long, negative and float seq
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_arr (mp, 6); s_u (mp, a + 1); s_u (mp, e); s_u (mp, 0); s_u (mp, WC_OP_PUT);
    s_u (mp, 42); s_bin (mp, "evil", 4); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_entry (mp, a + 1, e, 7, "k00000001", "evil-op"); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_entry (mp, 0, e, WC_OP_PUT, "k00000001", "evil-seq0"); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_entry (mp, a + 1, 0, WC_OP_PUT, "k00000001", "evil-epoch0"); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_entry (mp, a + 1, e, WC_OP_DEL, "k00000001", "evil-del"); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_entry (mp, a + 1, e, WC_OP_PUT, "", "evil-nokey"); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_arr (mp, 6); s_u (mp, a + 1); s_u (mp, e); s_u (mp, 0); s_u (mp, WC_OP_PUT);
    s_big_bin (mp, WC_MAX_KEY + 1); s_bin (mp, "evil", 4); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_arr (mp, 6); s_i (mp, -5); s_u (mp, e); s_u (mp, 0); s_u (mp, WC_OP_PUT);
    s_bin (mp, "k00000001", 9); s_bin (mp, "evil", 4); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_arr (mp, 6); s_f (mp, (double) a + 1); s_u (mp, e); s_u (mp, 0); s_u (mp, WC_OP_PUT);
    s_bin (mp, "k00000001", 9); s_bin (mp, "evil", 4); s_pub (fake, mp, true);
    //  A well-formed entry with trailing bytes after the message
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_entry (mp, a + 1, e, WC_OP_PUT, "k00000001", "evil-trailing");
    s_raw (mp, "\x00", 1); s_pub (fake, mp, true);
    //  Well-formed entries with old seqs and other values: seen already
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_entry (mp, a, e, WC_OP_PUT, "k00000001", "evil-old"); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
    s_entry (mp, 1, e, WC_OP_DEL, "k00000000", NULL); s_pub (fake, mp, true);
    //  A well-formed entry beyond a hole: may be kept, never applied. Only
    //  now and then: a replica holding it keeps fetching, and the
    //  heartbeat's own path (a gap seen while streaming) must be taken too
    if (future) {
        s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
        s_entry (mp, a + 3, e, WC_OP_PUT, "k00000001", "evil-future");
        s_pub (fake, mp, true);
    }
    //  Short, wrong types, wrong message types, nesting, frames
    s_mp_reset (mp); s_arr (mp, 2); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_HEARTBEAT);
    s_str (mp, "x"); s_u (mp, a); s_u (mp, 0); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_HEARTBEAT);
    s_u (mp, e); s_i (mp, -1); s_u (mp, 0); s_pub (fake, mp, true);
    s_mp_reset (mp); s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_FETCH);
    s_u (mp, 1); s_u (mp, 1); s_u (mp, 100); s_pub (fake, mp, true);
    //  Deep nesting, within the stream message limit (over it the link drops)
    s_mp_reset (mp); s_deep (mp, WC_MAX_STREAM_MESSAGE - 64); s_pub (fake, mp, true);
    s_mp_reset (mp); s_raw (mp, "\xdd\xff\xff\xff\xff", 5); s_pub (fake, mp, true);
    s_send (fake->pub, "k", 1, ZMQ_SNDMORE);
    s_send (fake->pub, "a", 1, ZMQ_SNDMORE);
    s_send (fake->pub, "b", 1, 0);
    if (huge) {
        //  Over the stream's message limit: the subscriber drops the link
        //  and reconnects
        s_mp_reset (mp); s_arr (mp, 3); s_u (mp, 1); s_u (mp, WC_MSG_ENTRY);
        s_arr (mp, 6); s_u (mp, a + 1); s_u (mp, e); s_u (mp, 0); s_u (mp, WC_OP_PUT);
        s_bin (mp, "k00000001", 9); s_big_bin (mp, 2 * WC_MAX_VALUE);
        s_pub (fake, mp, true);
    }
    //  The heartbeat far ahead: the replica must look for the hole
    s_mp_reset (mp); s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_HEARTBEAT);
    s_u (mp, e); s_u (mp, a + 1000000000ull); s_u (mp, 1700000000000ull);
    s_pub (fake, mp, true);
    assert_int_equal (mp->failed, 0);
}

/*  Garbage answers to a FETCH (rid, from the replica at seq a), variant k
    of S_BAD_REPLIES. None of them holds an entry the replica may apply. */
#define S_BAD_REPLIES 22

static void
s_bad_reply (int k, uint64_t rid, uint64_t a, uint64_t e, s_mp_t *mp)
{
    uint8_t noise [300];
    s_mp_reset (mp);
    switch (k) {
        case 0:  s_random_bytes (noise, sizeof noise); s_raw (mp, noise, sizeof noise); break;
        case 1:  break;                                             // empty
        case 2:  s_u (mp, 7); break;
        case 3:  s_arr (mp, 5); s_u (mp, 2); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_arr (mp, 1);
                 s_entry (mp, a + 1, e, WC_OP_PUT, "k00000001", "evil-version"); break;
        case 4:  s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid + 1000);
                 s_u (mp, a + 5); s_arr (mp, 1);
                 s_entry (mp, a + 1, e, WC_OP_PUT, "k00000001", "evil-rid"); break;
        case 5:  s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_arr (mp, 1); s_str (mp, "x"); break;
        case 6:  s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_arr (mp, 1);
                 s_arr (mp, 6); s_u (mp, a + 1); s_u (mp, e); s_u (mp, 0); s_u (mp, WC_OP_PUT);
                 s_u (mp, 42); s_bin (mp, "evil", 4); break;
        case 7:  s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_arr (mp, 1);
                 s_entry (mp, a + 1, e, 9, "k00000001", "evil-op"); break;
        case 8:  s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_arr (mp, 1);
                 s_entry (mp, a + 3, e, WC_OP_PUT, "k00000001", "evil-hole"); break;
        case 9:  s_arr (mp, 6); s_u (mp, 1); s_u (mp, WC_MSG_ERROR); s_u (mp, rid);
                 s_u (mp, 8); s_str (mp, "boom \x01\x7f\xff\nFAKE: injected line"); s_str (mp, ""); break;
        case 10: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_arr (mp, 1);
                 s_entry (mp, a + 1, e, WC_OP_DEL, "k00000001", "evil-del"); break;
        case 11: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, UINT64_MAX); s_arr (mp, 0); break;        // behind, nothing sent
        case 12: s_arr (mp, 4); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); break;                            // short
        case 13: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_map (mp, 0); break;             // map, not array
        case 14: s_arr (mp, 6); s_u (mp, 1); s_u (mp, WC_MSG_VALUE); s_u (mp, rid);
                 s_true (mp); s_bin (mp, "v", 1); s_u (mp, 1); break;   // wrong reply type
        case 15: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_arr (mp, WC_MAX_BATCH + 1);
                 for (uint32_t i = 0; i < WC_MAX_BATCH + 1; i++)
                     s_nil (mp);
                 break;
        case 16: s_deep (mp, 100000); break;
        case 17: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_arr (mp, 1);
                 s_entry (mp, a + 1, e, WC_OP_PUT, "", "evil-nokey"); break;
        case 18: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_i (mp, -1);
                 s_u (mp, a + 5); s_arr (mp, 0); break;
        case 19: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_arr (mp, 3); break;             // claims 3, has none
        case 20: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_arr (mp, 1);
                 s_arr (mp, 6); s_u (mp, a + 1); s_u (mp, e); s_u (mp, 0); s_u (mp, WC_OP_PUT);
                 s_bin (mp, "k00000001", 9); s_big_bin (mp, WC_MAX_VALUE + 1); break;
        default: s_arr (mp, 5); s_u (mp, 1); s_u (mp, WC_MSG_ENTRIES); s_u (mp, rid);
                 s_u (mp, a + 5); s_arr (mp, 1);
                 s_entry (mp, a + 1, e, WC_OP_PUT, "k00000001", "evil-trailing");
                 s_raw (mp, "\xc0", 1); break;                      // trailing byte
    }
    assert_int_equal (mp->failed, 0);
}

/*  Take one request off a fake ROUTER. Returns the number of frames
    (envelope + body) stored in frames (at most 16; the rest dropped). */
static int
s_fake_recv (void *sock, zmq_msg_t *frames, int max)
{
    int count = 0, more = 1;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, sock, 0) == -1) {
            zmq_msg_close (&frame);
            break;
        }
        more = zmq_msg_more (&frame);
        if (count < max) {
            zmq_msg_init (&frames [count]);
            zmq_msg_move (&frames [count], &frame);
            count++;
        }
        zmq_msg_close (&frame);
    }
    return count;
}

/*  Answer an EPOCH_END: first with an epoch past the one asked (a bad
    reply), then as an upstream of an older epoch (not to be followed),
    then truly: the replica's epoch goes on, at its own seq. */
static void
s_fake_epoch_end (s_fake_t *fake, s_mp_t *mp, zmq_msg_t *frames, int count,
                  const wc_msg_t *msg)
{
    wc_msg_t reply = { .type = WC_MSG_EPOCH_END_REPLY, .rid = msg->rid };
    uint64_t asked = msg->u.epoch_end.epoch;
    int k = fake->epoch_ends++;
    reply.u.epoch_end.epoch = k == 0 ? asked + 5 : asked;
    reply.u.epoch_end.end_seq = fake->applied;
    reply.u.epoch_end.latest = k == 0 ? asked + 5 : k == 1 ? 0 : asked;
    for (int i = 0; i < count - 1; i++)
        s_send (fake->catchup, zmq_msg_data (&frames [i]), zmq_msg_size (&frames [i]),
                ZMQ_SNDMORE);
    s_mp_reset (mp);
    assert_int_equal (wc_msg_encode (&reply, &mp->sb), 0);
    s_send (fake->catchup, mp->sb.data, mp->sb.size, 0);
}

/*  Answer one FETCH on the fake catch-up socket: garbage variant
    *next_bad, or (every other time) a harmless empty ENTRIES at the
    replica's own seq, which puts it back to streaming so that the next
    heartbeat makes it ask again. The last garbage is an 8 MiB reply. */
static void
s_fake_answer (s_fake_t *fake, s_mp_t *mp, int *next_bad, bool *benign_next)
{
    zmq_msg_t frames [16];
    int count = s_fake_recv (fake->catchup, frames, 16);
    if (count < 2) {
        for (int i = 0; i < count; i++)
            zmq_msg_close (&frames [i]);
        return;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    wc_msg_t msg;
    zmq_msg_t *body = &frames [count - 1];
    int rc = wc_msg_decode (zmq_msg_data (body), zmq_msg_size (body), &unpacked, &msg);
    if (rc == 0 && msg.type == WC_MSG_EPOCH_END)
        s_fake_epoch_end (fake, mp, frames, count, &msg);
    else
    if (rc == 0 && msg.type == WC_MSG_FETCH) {
        fake->fetches++;
        uint64_t rid = msg.rid;
        for (int i = 0; i < count - 1; i++)
            s_send (fake->catchup, zmq_msg_data (&frames [i]), zmq_msg_size (&frames [i]),
                    ZMQ_SNDMORE);
        if (*benign_next || *next_bad > S_BAD_REPLIES) {
            s_mp_reset (mp);
            assert_int_equal (wc_entries_encode_header (rid, fake->applied, 0, &mp->sb), 0);
            s_send (fake->catchup, mp->sb.data, mp->sb.size, 0);
            *benign_next = false;
        }
        else
        if (*next_bad == S_BAD_REPLIES) {
            //  Last: two frames, then (next FETCH) 8 MiB
            s_send (fake->catchup, "a", 1, ZMQ_SNDMORE);
            s_send (fake->catchup, "b", 1, 0);
            (*next_bad)++;
            fake->replies++;
            *benign_next = true;
        }
        else {
            s_bad_reply (*next_bad, rid, fake->applied, fake->epoch, mp);
            s_send (fake->catchup, mp->sb.data, mp->sb.size, 0);
            (*next_bad)++;
            fake->replies++;
            *benign_next = true;
        }
    }
    msgpack_unpacked_destroy (&unpacked);
    for (int i = 0; i < count; i++)
        zmq_msg_close (&frames [i]);
}

/*  Answer the next FETCH with one frame of HUGE_FRAME bytes; returns
    once sent. */
static void
s_fake_huge_answer (s_fake_t *fake, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (cluster_now_ms () < deadline) {
        zmq_pollitem_t item = { fake->catchup, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 50) <= 0)
            continue;
        zmq_msg_t frames [16];
        int count = s_fake_recv (fake->catchup, frames, 16);
        for (int i = 0; i < count - 1; i++)
            s_send (fake->catchup, zmq_msg_data (&frames [i]), zmq_msg_size (&frames [i]),
                    ZMQ_SNDMORE);
        for (int i = 0; i < count; i++)
            zmq_msg_close (&frames [i]);
        if (count < 2)
            continue;
        uint8_t *big = malloc (HUGE_FRAME);
        assert_non_null (big);
        memset (big, 0x91, HUGE_FRAME);
        s_send (fake->catchup, big, HUGE_FRAME, 0);
        free (big);
        fake->fetches++;
        fake->replies++;
        return;
    }
    fail_msg ("the replica sent no FETCH to the fake primary in %d ms", timeout_ms);
}

/*  Run the fake primary until every garbage reply was sent and the
    replica came back for more after the last (huge) one. */
static void
s_run_fake (cluster_t *c, int r, s_fake_t *fake)
{
    s_mp_t mp;
    s_mp_init (&mp);
    int next_bad = 0;
    bool benign_next = false;
    int64_t deadline = cluster_now_ms () + FAKE_TIMEOUT_MS;
    int64_t next_publish = 0;
    int rounds = 0;
    while (next_bad <= S_BAD_REPLIES || benign_next) {
        if (cluster_now_ms () > deadline)
            fail_msg ("fake primary: only %d of %d garbage replies sent in %d ms "
                      "(%d FETCHes)", next_bad, S_BAD_REPLIES + 1, FAKE_TIMEOUT_MS,
                      fake->fetches);
        if (!cluster_running (c, r))
            fail_msg ("the replica following the fake primary died");
        if (cluster_now_ms () >= next_publish) {
            s_publish_garbage (fake, &mp, false, rounds == 60);
            rounds++;
            next_publish = cluster_now_ms () + 20;
        }
        zmq_pollitem_t items [] = {
            { fake->catchup, 0, ZMQ_POLLIN, 0 },
            { fake->service, 0, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 2, 10) <= 0)
            continue;
        if (items [0].revents & ZMQ_POLLIN)
            s_fake_answer (fake, &mp, &next_bad, &benign_next);
        if (items [1].revents & ZMQ_POLLIN) {
            //  Whatever a replica says on the service socket: drop it
            zmq_msg_t frames [16];
            int count = s_fake_recv (fake->service, frames, 16);
            for (int i = 0; i < count; i++)
                zmq_msg_close (&frames [i]);
        }
    }
    //  Finally an 8 MiB reply (over the replica's message limit): it must
    //  give up on that connection and come back with a new FETCH
    s_fake_huge_answer (fake, 20000);
    int fetches = fake->fetches;
    deadline = cluster_now_ms () + 30000;
    while (fake->fetches == fetches) {
        if (cluster_now_ms () > deadline)
            fail_msg ("the replica did not FETCH again after an oversized reply");
        s_publish_garbage (fake, &mp, false, false);
        zmq_pollitem_t item = { fake->catchup, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 20) > 0) {
            benign_next = true;
            s_fake_answer (fake, &mp, &next_bad, &benign_next);
        }
    }
    //  Last, an entry over the stream's message limit (the subscriber
    //  drops that connection), and one more round after it
    s_publish_garbage (fake, &mp, true, false);
    s_publish_garbage (fake, &mp, false, false);
    print_message ("fake primary: %d FETCHes, %d garbage replies, %d rounds of "
                   "stream garbage\n", fake->fetches, fake->replies, rounds);
    msgpack_sbuffer_destroy (&mp.sb);
}

static void *
s_bind (void *ctx, int type, int port)
{
    void *sock = zmq_socket (ctx, type);
    assert_non_null (sock);
    int linger = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    int hwm = 0;
    zmq_setsockopt (sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    if (zmq_bind (sock, endpoint) != 0)
        fail_msg ("bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
    return sock;
}

/* --- the test ------------------------------------------------------------ */

static void
s_expect_digest (cluster_t *c, int i, uint64_t seq, uint64_t hash, const char *when)
{
    uint64_t now_seq = 0, now_hash = 0;
    int rc = cluster_digest (c, i, &now_seq, &now_hash);
    if (rc != 0)
        fail_msg ("node %d: digest failed %s: %s", i, when, walcast_errname (rc));
    if (now_seq != seq || now_hash != hash)
        fail_msg ("node %d: digest %s is (%llu, %016llx), was (%llu, %016llx)", i, when,
                  (unsigned long long) now_seq, (unsigned long long) now_hash,
                  (unsigned long long) seq, (unsigned long long) hash);
}

static void
test_garbage (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    const char *seed = getenv ("WALCAST_TEST_SEED");
    s_rng = seed ? strtoull (seed, NULL, 0) : (uint64_t) cluster_now_ms () | 1;
    print_message ("WALCAST_TEST_SEED=%llu\n", (unsigned long long) s_rng);

    int p = cluster_add (c, "p1", NULL, NULL);
    int r1 = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    int r2 = cluster_add (c, "r2", cluster_addr (c, p), NULL);
    int all [] = { p, r1, r2 };
    for (int i = 0; i < 3; i++)
        assert_int_equal (cluster_start (c, all [i]), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal (cluster_wait_ready (c, all [i], 30000), 0);
    assert_int_equal (cluster_load (c, p, 0, WRITES, 1, NULL), 0);
    uint64_t seq, hash;
    assert_int_equal (cluster_wait_converged (c, all, 3, WRITES, 30000, &seq, &hash), 0);

    void *ctx = zmq_ctx_new ();
    assert_non_null (ctx);

    //  1. The fake primary, followed by r2 (restarted on its data)
    int fport = cluster_spare_port (c);
    walcast_status_t pstatus;
    assert_int_equal (cluster_status (c, p, &pstatus), 0);
    s_fake_t fake = { .applied = seq, .epoch = pstatus.epoch };
    fake.service = s_bind (ctx, ZMQ_ROUTER, fport);
    fake.pub = s_bind (ctx, ZMQ_PUB, fport + 1);
    fake.catchup = s_bind (ctx, ZMQ_ROUTER, fport + 2);
    assert_int_equal (cluster_term (c, r2, 20000), 0);
    char faddr [32];
    snprintf (faddr, sizeof faddr, "127.0.0.1:%d", fport);
    cluster_set_replica_of (c, r2, faddr);
    assert_int_equal (cluster_start (c, r2), 0);
    long mark = cluster_start_mark (c, r2);
    assert_int_equal (cluster_wait_ready (c, r2, 30000), 0);
    s_expect_digest (c, r2, seq, hash, "after restart");

    s_run_fake (c, r2, &fake);
    assert_true (cluster_running (c, r2));
    walcast_status_t status;
    assert_int_equal (cluster_status (c, r2, &status), 0);
    assert_string_equal (status.role, "replica");
    assert_string_equal (status.primary, faddr);
    s_expect_digest (c, r2, seq, hash, "after the fake primary");
    //  The garbage reached the replica's logic, not just its sockets
    print_message ("r2: %d bad catch-up replies, %d gaps logged\n",
                   cluster_log_count (c, r2, "catch-up: bad reply", mark),
                   cluster_log_count (c, r2, "gap:", mark));
    assert_true (cluster_log_count (c, r2, "catch-up: bad reply", mark) >= 1);
    assert_true (cluster_log_count (c, r2, "gap:", mark) >= 1);
    zmq_close (fake.service);
    zmq_close (fake.pub);
    zmq_close (fake.catchup);

    //  2. Raw TCP on every port of every node; one idle connection each
    //  stays open through the rest of the test
    int idle [9];
    int nidle = 0;
    const char *peer_types [] = { "DEALER", "SUB", "DEALER" };
    for (int i = 0; i < 3; i++)
        for (int port = 0; port < 3; port++) {
            int base = cluster_port (c, all [i]) + port;
            s_raw_tcp (base, 0, NULL, false);
            s_raw_tcp (base, 1, NULL, false);
            s_raw_tcp (base, 2, peer_types [port], false);
            int fd = s_raw_tcp (base, 1, NULL, true);
            if (fd >= 0)
                idle [nidle++] = fd;
        }
    for (int i = 0; i < 3; i++)
        if (!cluster_running (c, all [i]))
            fail_msg ("node %d died of raw TCP bytes on its ports", all [i]);

    //  3. ZeroMQ garbage on the service and catch-up ports of p and r1
    int targets [] = { p, r1 };
    for (int t = 0; t < 2; t++) {
        char service [64], catchup [64], what [64];
        snprintf (service, sizeof service, "tcp://%s", cluster_addr (c, targets [t]));
        snprintf (catchup, sizeof catchup, "tcp://127.0.0.1:%d",
                  cluster_port (c, targets [t]) + 2);
        int types [] = { ZMQ_DEALER, ZMQ_REQ };
        for (int k = 0; k < 2; k++) {
            void *sock = s_socket (ctx, types [k], service);
            snprintf (what, sizeof what, "service port of node %d, %s", targets [t],
                      k ? "REQ" : "DEALER");
            s_spray (ctx, sock, false, service, what);
            zmq_close (sock);
            sock = s_socket (ctx, types [k], catchup);
            snprintf (what, sizeof what, "catch-up port of node %d, %s", targets [t],
                      k ? "REQ" : "DEALER");
            s_spray (ctx, sock, true, catchup, what);
            zmq_close (sock);
        }
        s_huge_all (ctx, service);
        s_huge_all (ctx, catchup);
    }
    //  Huge frames to r2's ports too
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://%s", cluster_addr (c, r2));
    s_huge_all (ctx, endpoint);

    //  4. Everyone still serves, nothing changed
    for (int i = 0; i < 3; i++) {
        assert_true (cluster_running (c, all [i]));
        assert_int_equal (cluster_wait_ready (c, all [i], 10000), 0);
        s_expect_digest (c, all [i], seq, hash, "after the garbage");
    }

    //  5. A new write still replicates (to the replica of the real primary)
    assert_int_equal (cluster_load (c, p, 0, 1, 2, NULL), 0);
    int real [] = { p, r1 };
    assert_int_equal (cluster_wait_converged (c, real, 2, seq + 1, 30000, NULL, NULL), 0);
    assert_int_equal (cluster_check_key (c, r1, 0, 2), 0);
    assert_int_equal (cluster_check_key (c, r1, 1, 1), 0);

    for (int i = 0; i < nidle; i++)
        close (idle [i]);
    zmq_ctx_term (ctx);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_garbage, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
