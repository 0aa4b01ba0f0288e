/*  zmq_baseline.c - the ceiling for walcast's request path, in plain libzmq.

    walcast-zmq-baseline measures what ZeroMQ alone does on this machine
    with the same socket pattern as a walcast write, so bench/run.sh can
    report walcast's figures as a ratio against a baseline measured in the
    same run (the absolute numbers of a noisy 2-core box mean little).

    Requests: a ROUTER "server" thread receives each request and answers it
    with a small reply, as a node does, but with no WAL, no state and no
    msgpack. A DEALER client pipelines N requests of a 12-byte key and a
    100-byte value with at most 4096 in flight, as `walcast load` does
    (same window, same queue sizes). The time runs from the first send to
    the last reply.

    Stream (--pub): an XPUB thread publishes N 120-byte messages (a 12-byte
    topic frame and a 108-byte body, like a node's stream entry) to one SUB.
    XPUB, not PUB, so the publisher waits for the subscription to arrive
    before it starts (no late-joiner loss). PUB drops at its high-water
    mark, so the figure is messages received per second, and the drop count
    is printed beside it. The time runs from the first send to the last
    message received.

    Both sides use TCP on 127.0.0.1 with ports chosen by the kernel.
*/
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

/*  Same figures as the client library and the node. */
#define S_WINDOW        4096        /* requests in flight, like walcast load */
#define S_SOCKET_HWM    100000      /* DEALER/ROUTER queues */
#define S_STREAM_HWM    10000       /* PUB and SUB queues of a node's stream */

#define S_KEY_SIZE      12          /* "key:%08d" */
#define S_VALUE_SIZE    100
#define S_REPLY_SIZE    16          /* about an (epoch, seq) reply */
#define S_PUB_TOPIC     12
#define S_PUB_BODY      108         /* topic + body = 120 bytes */

#define S_TIMEOUT_MS    5000        /* no reply for this long: give up */
#define S_PUB_IDLE_MS   1000        /* stream quiet this long: it is over */

static const char *s_usage =
    "usage: walcast-zmq-baseline [-n N] [--pub]\n"
    "\n"
    "The ZeroMQ ceiling for walcast's request path: a DEALER pipelines N\n"
    "requests (12-byte key, 100-byte value, 4096 in flight) to a ROUTER\n"
    "thread that replies to each with 16 bytes, no WAL and no state.\n"
    "Prints \"zmq-baseline: N requests in S s (R/s)\".\n"
    "\n"
    "  -n N        requests (and stream messages), default 1000000\n"
    "  --pub       also measure a PUB->SUB stream of N 120-byte messages:\n"
    "              \"zmq-baseline pub: N sent, M received in S s (R/s)\"\n"
    "  -h, --help  this help\n";

/*  What a server or publisher thread is given. */
typedef struct {
    void *ctx;                  /* the process's context */
    char endpoint [256];        /* where the thread's socket is bound */
    uint64_t count;             /* messages to publish (publisher only) */
    int64_t start_us;           /* when the first one was sent (publisher) */
    uint64_t sent;              /* how many were sent (publisher) */
    int rc;                     /* 0, or -1 when the thread failed */
    pthread_mutex_t lock;       /* guards start_us and sent */
    pthread_cond_t ready;       /* the socket is bound */
    bool bound;                 /* endpoint is valid (or rc says why not) */
    bool started;               /* the thread runs: join it */
    pthread_t thread;           /* valid when started */
} s_thread_t;

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*  Set the options every socket of the bench shares. */
static int
s_setup (void *sock, int hwm)
{
    int linger = 0;
    return zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger)
        || zmq_setsockopt (sock, ZMQ_SNDHWM, &hwm, sizeof hwm)
        || zmq_setsockopt (sock, ZMQ_RCVHWM, &hwm, sizeof hwm) ? -1 : 0;
}

/*  Bind sock to a kernel-chosen loopback port, tell the waiting main
    thread where, and return 0; on failure tell it that, and return -1. */
static int
s_bind_and_signal (s_thread_t *self, void *sock, int hwm)
{
    int rc = s_setup (sock, hwm);
    if (rc == 0)
        rc = zmq_bind (sock, "tcp://127.0.0.1:*");
    size_t size = sizeof self->endpoint;
    if (rc == 0)
        rc = zmq_getsockopt (sock, ZMQ_LAST_ENDPOINT, self->endpoint, &size);
    if (rc != 0)
        fprintf (stderr, "zmq-baseline: bind: %s\n", zmq_strerror (zmq_errno ()));
    pthread_mutex_lock (&self->lock);
    self->rc = rc ? -1 : 0;
    self->bound = true;
    pthread_cond_signal (&self->ready);
    pthread_mutex_unlock (&self->lock);
    return self->rc;
}

/*  The server: answer every request with a small reply until the context
    is shut down (ETERM). Like a node's service socket it is a ROUTER that
    receives [identity][body] and sends [identity][reply]. */
static void *
s_server (void *arg)
{
    s_thread_t *self = (s_thread_t *) arg;
    void *router = zmq_socket (self->ctx, ZMQ_ROUTER);
    if (!router || s_bind_and_signal (self, router, S_SOCKET_HWM)) {
        if (router)
            zmq_close (router);
        return NULL;
    }
    char reply [S_REPLY_SIZE];
    memset (reply, 'r', sizeof reply);
    uint64_t served = 0;
    zmq_msg_t identity, body;
    zmq_msg_init (&identity);
    zmq_msg_init (&body);
    while (true) {
        if (zmq_msg_recv (&identity, router, 0) == -1) {
            if (zmq_errno () == EINTR)
                continue;
            break;                      // ETERM: the run is over
        }
        if (!zmq_msg_more (&identity))
            continue;                   // a bare identity: not a request
        if (zmq_msg_recv (&body, router, 0) == -1)
            break;
        while (zmq_msg_more (&body))    // extra frames: ignore them
            if (zmq_msg_recv (&body, router, 0) == -1)
                break;
        served++;
        memcpy (reply, &served, sizeof served);
        if (zmq_msg_send (&identity, router, ZMQ_SNDMORE) == -1
        ||  zmq_send (router, reply, sizeof reply, 0) == -1) {
            if (zmq_errno () == ETERM)
                break;
        }
    }
    zmq_msg_close (&identity);
    zmq_msg_close (&body);
    zmq_close (router);
    return NULL;
}

/*  The client side of the request test: pipeline count requests with at
    most S_WINDOW in flight, wait for every reply. Returns 0 and the time
    taken, or -1. */
static int
s_run_requests (void *ctx, const char *endpoint, uint64_t count, double *secs)
{
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    if (!dealer || s_setup (dealer, S_SOCKET_HWM)
    ||  zmq_connect (dealer, endpoint)) {
        fprintf (stderr, "zmq-baseline: connect %s: %s\n", endpoint,
                 zmq_strerror (zmq_errno ()));
        if (dealer)
            zmq_close (dealer);
        return -1;
    }
    char request [S_KEY_SIZE + 1 + S_VALUE_SIZE];
    memset (request, 'v', sizeof request);
    request [S_KEY_SIZE] = ' ';
    char reply [64];

    uint64_t sent = 0, acked = 0;
    int rc = 0;
    int64_t start = s_now_us ();
    while (acked < count) {
        //  Fill the window.
        while (sent < count && sent - acked < S_WINDOW) {
            char key [S_KEY_SIZE + 1];
            snprintf (key, sizeof key, "key:%08" PRIu64, sent % 100000000u);
            memcpy (request, key, S_KEY_SIZE);
            if (zmq_send (dealer, request, sizeof request, ZMQ_DONTWAIT) == -1) {
                if (zmq_errno () == EAGAIN || zmq_errno () == EINTR)
                    break;
                fprintf (stderr, "zmq-baseline: send: %s\n",
                         zmq_strerror (zmq_errno ()));
                rc = -1;
                break;
            }
            sent++;
        }
        if (rc)
            break;
        //  Wait for at least one reply, then take every one that is there.
        zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
        int ready = zmq_poll (&item, 1, S_TIMEOUT_MS);
        if (ready == -1 && zmq_errno () == EINTR)
            continue;
        if (ready <= 0) {
            fprintf (stderr, "zmq-baseline: no reply in %d ms (%" PRIu64
                     " of %" PRIu64 " acknowledged)\n", S_TIMEOUT_MS, acked, count);
            rc = -1;
            break;
        }
        int size;
        while ((size = zmq_recv (dealer, reply, sizeof reply, ZMQ_DONTWAIT)) >= 0) {
            if (size != S_REPLY_SIZE) {
                fprintf (stderr, "zmq-baseline: reply of %d bytes\n", size);
                rc = -1;
                break;
            }
            acked++;
        }
        if (rc)
            break;
    }
    *secs = (double) (s_now_us () - start) / 1e6;
    zmq_close (dealer);
    return rc;
}

/*  The publisher: wait for the one subscription, then publish count
    messages as fast as PUB takes them (it drops at its high-water mark,
    as a node's stream does), then stop. */
static void *
s_publisher (void *arg)
{
    s_thread_t *self = (s_thread_t *) arg;
    void *xpub = zmq_socket (self->ctx, ZMQ_XPUB);
    if (!xpub || s_bind_and_signal (self, xpub, S_STREAM_HWM)) {
        if (xpub)
            zmq_close (xpub);
        return NULL;
    }
    //  The first message on an XPUB is a subscription: the SUB is ready.
    char sub [64];
    while (zmq_recv (xpub, sub, sizeof sub, 0) == -1 && zmq_errno () == EINTR)
        ;
    char topic [S_PUB_TOPIC + 1];
    char body [S_PUB_BODY];
    memset (body, 'b', sizeof body);
    uint64_t sent = 0;
    pthread_mutex_lock (&self->lock);
    self->start_us = s_now_us ();
    pthread_mutex_unlock (&self->lock);
    for (uint64_t i = 0; i < self->count; i++) {
        snprintf (topic, sizeof topic, "key:%08" PRIu64, i % 100000000u);
        memcpy (body, &i, sizeof i);
        if (zmq_send (xpub, topic, S_PUB_TOPIC, ZMQ_SNDMORE) == -1
        ||  zmq_send (xpub, body, sizeof body, 0) == -1) {
            if (zmq_errno () == ETERM)
                break;
            continue;
        }
        sent++;
    }
    pthread_mutex_lock (&self->lock);
    self->sent = sent;
    pthread_mutex_unlock (&self->lock);
    //  Stay until the run is over so queued messages are still delivered.
    while (zmq_recv (xpub, sub, sizeof sub, 0) != -1 || zmq_errno () == EINTR)
        ;
    zmq_close (xpub);
    return NULL;
}

/*  The subscriber side of the stream test: count what arrives until all
    count messages did or the stream has been quiet for S_PUB_IDLE_MS.
    Returns 0 with the received count and the time from the publisher's
    first send to the last message, or -1. */
static int
s_run_stream (void *ctx, const char *endpoint, s_thread_t *pub,
              uint64_t count, uint64_t *received, double *secs)
{
    void *sub = zmq_socket (ctx, ZMQ_SUB);
    if (!sub || s_setup (sub, S_STREAM_HWM)
    ||  zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "key:", 4)
    ||  zmq_connect (sub, endpoint)) {
        fprintf (stderr, "zmq-baseline: subscribe %s: %s\n", endpoint,
                 zmq_strerror (zmq_errno ()));
        if (sub)
            zmq_close (sub);
        return -1;
    }
    char buf [256];
    uint64_t got = 0;
    int64_t last = 0;
    while (got < count) {
        zmq_pollitem_t item = { sub, 0, ZMQ_POLLIN, 0 };
        int ready = zmq_poll (&item, 1, got ? S_PUB_IDLE_MS : S_TIMEOUT_MS);
        if (ready == -1 && zmq_errno () == EINTR)
            continue;
        if (ready <= 0)
            break;
        while (zmq_recv (sub, buf, sizeof buf, ZMQ_DONTWAIT) >= 0) {
            int more = 0;
            size_t size = sizeof more;
            zmq_getsockopt (sub, ZMQ_RCVMORE, &more, &size);
            if (!more) {
                got++;
                last = s_now_us ();
            }
        }
    }
    zmq_close (sub);
    pthread_mutex_lock (&pub->lock);
    int64_t start = pub->start_us;
    pthread_mutex_unlock (&pub->lock);
    *received = got;
    *secs = got && start ? (double) (last - start) / 1e6 : 0.0;
    if (!got)
        fprintf (stderr, "zmq-baseline: pub: nothing received\n");
    return got ? 0 : -1;
}

/*  Start fn in a thread bound to a fresh endpoint; 0 once it is bound. */
static int
s_start (s_thread_t *self, void *ctx, uint64_t count, void *(*fn) (void *))
{
    memset (self, 0, sizeof *self);
    self->ctx = ctx;
    self->count = count;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->ready, NULL);
    if (pthread_create (&self->thread, NULL, fn, self) != 0) {
        fprintf (stderr, "zmq-baseline: cannot start a thread\n");
        return -1;
    }
    self->started = true;
    pthread_mutex_lock (&self->lock);
    while (!self->bound)
        pthread_cond_wait (&self->ready, &self->lock);
    int rc = self->rc;
    pthread_mutex_unlock (&self->lock);
    return rc;
}

static void
s_finish (s_thread_t *self)
{
    if (self->started)
        pthread_join (self->thread, NULL);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->ready);
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "pub",  no_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    uint64_t count = 1000000;
    bool pub = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "n:h", options, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
            case 'n':
                errno = 0;
                count = strtoull (optarg, &end, 10);
                if (errno || !*optarg || *end || *optarg == '-' || count == 0) {
                    fprintf (stderr, "zmq-baseline: -n expects a positive "
                             "number, got '%s'\n", optarg);
                    return 2;
                }
                break;
            case 'p':
                pub = true;
                break;
            case 'h':
                fputs (s_usage, stdout);
                return 0;
            default:
                fputs (s_usage, stderr);
                return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "zmq-baseline: unexpected argument '%s'\n", argv [optind]);
        return 2;
    }

    void *ctx = zmq_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "zmq-baseline: zmq_ctx_new: %s\n", zmq_strerror (zmq_errno ()));
        return 1;
    }
    int status = 0;

    //  Requests: DEALER -> ROUTER -> DEALER.
    s_thread_t server;
    double secs = 0;
    if (s_start (&server, ctx, count, s_server) == 0) {
        if (s_run_requests (ctx, server.endpoint, count, &secs) == 0)
            printf ("zmq-baseline: %" PRIu64 " requests in %.3f s (%.0f/s)\n",
                    count, secs, (double) count / (secs > 1e-6 ? secs : 1e-6));
        else
            status = 1;
    }
    else
        status = 1;

    //  Stream: XPUB -> SUB, in its own context so the server's shutdown
    //  does not end it.
    void *pub_ctx = pub && status == 0 ? zmq_ctx_new () : NULL;
    s_thread_t publisher;
    if (pub_ctx) {
        if (s_start (&publisher, pub_ctx, count, s_publisher) == 0) {
            uint64_t received = 0;
            if (s_run_stream (pub_ctx, publisher.endpoint, &publisher, count,
                              &received, &secs) == 0) {
                pthread_mutex_lock (&publisher.lock);
                uint64_t sent = publisher.sent;
                pthread_mutex_unlock (&publisher.lock);
                printf ("zmq-baseline pub: %" PRIu64 " sent, %" PRIu64
                        " received in %.3f s (%.0f/s)\n", sent, received,
                        secs, (double) received / (secs > 1e-6 ? secs : 1e-6));
            }
            else
                status = 1;
        }
        else
            status = 1;
    }
    else if (pub && status == 0) {
        fprintf (stderr, "zmq-baseline: zmq_ctx_new: %s\n", zmq_strerror (zmq_errno ()));
        status = 1;
    }

    //  Shut the contexts down: blocked threads get ETERM and close.
    zmq_ctx_shutdown (ctx);
    s_finish (&server);
    zmq_ctx_term (ctx);
    if (pub_ctx) {
        zmq_ctx_shutdown (pub_ctx);
        s_finish (&publisher);
        zmq_ctx_term (pub_ctx);
    }
    return status;
}
