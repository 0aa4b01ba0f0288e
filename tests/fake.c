/*  fake.c - fake walcast peers for client tests (see fake.h).

    One thread polls every ROUTER of the fake and calls on_tick on a
    20 ms clock. Sockets are created and bound in the test's thread
    before the fake's thread starts, and used only by that thread after
    (ZeroMQ sockets may move between threads across such a barrier).
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>
#include "fake.h"

#define FAKE_MAX_SOCKETS 8
#define FAKE_TICK_MS     20

typedef struct {
    void *sock;
    int   port;
    int   type;                     /* ZMQ_ROUTER or ZMQ_PUB */
} s_socket_t;

struct fake {
    void            *ctx;
    s_socket_t       socks [FAKE_MAX_SOCKETS];
    int              nsocks;
    fake_request_fn *on_request;
    fake_tick_fn    *on_tick;
    void            *arg;
    atomic_int       stop;
    pthread_t        thread;
    bool             running;
};

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

fake_t *
fake_new (fake_request_fn *on_request, fake_tick_fn *on_tick, void *arg)
{
    fake_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = zmq_ctx_new ();
    if (!self->ctx) {
        free (self);
        return NULL;
    }
    self->on_request = on_request;
    self->on_tick = on_tick;
    self->arg = arg;
    atomic_init (&self->stop, 0);
    return self;
}

void
fake_destroy (fake_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fake_t *self = *self_p;
    if (self->running) {
        atomic_store (&self->stop, 1);
        pthread_join (self->thread, NULL);
    }
    for (int i = 0; i < self->nsocks; i++)
        zmq_close (self->socks [i].sock);
    zmq_ctx_term (self->ctx);
    free (self);
    *self_p = NULL;
}

static int
s_bind (fake_t *self, int type, int port)
{
    if (self->running || self->nsocks == FAKE_MAX_SOCKETS)
        return -1;
    void *sock = zmq_socket (self->ctx, type);
    if (!sock)
        return -1;
    int linger = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    if (zmq_bind (sock, endpoint)) {
        fprintf (stderr, "fake: bind %s: %s\n", endpoint, zmq_strerror (zmq_errno ()));
        zmq_close (sock);
        return -1;
    }
    self->socks [self->nsocks].sock = sock;
    self->socks [self->nsocks].port = port;
    self->socks [self->nsocks].type = type;
    self->nsocks++;
    return 0;
}

int
fake_bind_router (fake_t *self, int port)
{
    return s_bind (self, ZMQ_ROUTER, port);
}

int
fake_bind_pub (fake_t *self, int port)
{
    return s_bind (self, ZMQ_PUB, port);
}

int
fake_publish (fake_t *self, int port, const void *topic, size_t topic_len,
              const void *body, size_t body_len)
{
    for (int i = 0; i < self->nsocks; i++)
        if (self->socks [i].port == port && self->socks [i].type == ZMQ_PUB) {
            if (zmq_send (self->socks [i].sock, topic, topic_len, ZMQ_SNDMORE) < 0)
                return -1;
            return zmq_send (self->socks [i].sock, body, body_len, 0) < 0 ? -1 : 0;
        }
    return -1;
}

//  Read one request [identity][body] from a ROUTER and answer it as
//  on_request says. Anything of another shape is dropped.
static void
s_serve (fake_t *self, s_socket_t *s, msgpack_sbuffer *out)
{
    zmq_msg_t identity, body;
    zmq_msg_init (&identity);
    zmq_msg_init (&body);
    bool ok = zmq_msg_recv (&identity, s->sock, ZMQ_DONTWAIT) >= 0
           && zmq_msg_more (&identity)
           && zmq_msg_recv (&body, s->sock, ZMQ_DONTWAIT) >= 0;
    if (ok && zmq_msg_more (&body)) {           // not a request: drop it all
        ok = false;
        bool more = true;
        while (more) {
            zmq_msg_t extra;
            zmq_msg_init (&extra);
            more = zmq_msg_recv (&extra, s->sock, ZMQ_DONTWAIT) >= 0
                && zmq_msg_more (&extra);
            zmq_msg_close (&extra);
        }
    }
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_msg_t req;
    out->size = 0;
    if (ok && self->on_request
    &&  wc_msg_decode (zmq_msg_data (&body), zmq_msg_size (&body), &storage, &req) == 0
    &&  self->on_request (self->arg, s->port, &req, out)) {
        if (zmq_msg_send (&identity, s->sock, ZMQ_SNDMORE) >= 0)
            zmq_send (s->sock, out->data, out->size, 0);
    }
    msgpack_unpacked_destroy (&storage);
    zmq_msg_close (&identity);
    zmq_msg_close (&body);
}

static void *
s_run (void *arg)
{
    fake_t *self = (fake_t *) arg;
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    zmq_pollitem_t items [FAKE_MAX_SOCKETS];
    int map [FAKE_MAX_SOCKETS];
    int nitems = 0;
    for (int i = 0; i < self->nsocks; i++)
        if (self->socks [i].type == ZMQ_ROUTER) {
            items [nitems] = (zmq_pollitem_t) { self->socks [i].sock, 0, ZMQ_POLLIN, 0 };
            map [nitems++] = i;
        }
    int64_t next_tick = s_now_ms ();
    while (!atomic_load (&self->stop)) {
        int64_t wait = next_tick - s_now_ms ();
        if (wait < 0)
            wait = 0;
        if (zmq_poll (items, nitems, (long) wait) > 0)
            for (int k = 0; k < nitems; k++)
                if (items [k].revents & ZMQ_POLLIN)
                    s_serve (self, &self->socks [map [k]], &out);
        if (s_now_ms () >= next_tick) {
            next_tick = s_now_ms () + FAKE_TICK_MS;
            if (self->on_tick)
                self->on_tick (self->arg, self);
        }
    }
    msgpack_sbuffer_destroy (&out);
    return NULL;
}

int
fake_start (fake_t *self)
{
    if (self->running)
        return -1;
    atomic_store (&self->stop, 0);
    if (pthread_create (&self->thread, NULL, s_run, self))
        return -1;
    self->running = true;
    return 0;
}
