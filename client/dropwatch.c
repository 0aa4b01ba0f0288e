/*  dropwatch.c - see the moment one socket's connection drops (see
    dropwatch.h).

    libzmq's socket monitor binds a PAIR socket at an inproc endpoint we
    name and sends it one two-frame message per event: 2 octets of event
    number and 4 of value in the first frame (native byte order), the
    peer's endpoint in the second. We connect our PAIR there and read it
    without blocking. Each attach names a new endpoint, so a monitor left
    on an earlier socket can never reach the PAIR of a later one. Our
    PAIR is connected before the monitor starts (libzmq lets an inproc
    connect come before the bind), so no event ever finds it missing; and
    it takes events without a bound (ZMQ_RCVHWM 0 makes the inproc pipe
    unbounded): at a full pipe libzmq's I/O thread would wait for room.
*/
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>
#include "walcast.h"
#include "dropwatch.h"

#define S_READ_MAX  1000            /* events taken per read, at most */

struct wc_dropwatch {
    void    *ctx;                   /* not owned */
    void    *pair;                  /* our end, NULL when nothing is watched */
    uint64_t id;                    /* the caller's id of the socket watched */
    uint64_t endpoints;             /* inproc endpoints named so far */
};

wc_dropwatch_t *
wc_dropwatch_new (void *ctx)
{
    wc_dropwatch_t *self = (wc_dropwatch_t *) calloc (1, sizeof (wc_dropwatch_t));
    if (self)
        self->ctx = ctx;
    return self;
}

static void
s_close_pair (wc_dropwatch_t *self)
{
    if (self->pair)
        zmq_close (self->pair);
    self->pair = NULL;
    self->id = 0;
}

void
wc_dropwatch_release (wc_dropwatch_t *self, void *sock)
{
    if (self->pair && sock)
        zmq_socket_monitor (sock, NULL, 0);
    s_close_pair (self);
}

void
wc_dropwatch_destroy (wc_dropwatch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_close_pair (*self_p);
    free (*self_p);
    *self_p = NULL;
}

int
wc_dropwatch_attach (wc_dropwatch_t *self, void *sock, uint64_t id)
{
    if (self->pair && self->id == id)
        return 0;
    assert (!self->pair);               /* released first (see dropwatch.h) */
    s_close_pair (self);
    if (!sock || id == 0)
        return WALCAST_EUNAVAILABLE;
    char endpoint [80];
    snprintf (endpoint, sizeof endpoint, "inproc://walcast-dropwatch-%p-%llu",
              (void *) self, (unsigned long long) ++self->endpoints);
    void *pair = zmq_socket (self->ctx, ZMQ_PAIR);
    int linger = 0, unbounded = 0;
    if (!pair
    ||  zmq_setsockopt (pair, ZMQ_LINGER, &linger, sizeof linger) != 0
    ||  zmq_setsockopt (pair, ZMQ_RCVHWM, &unbounded, sizeof unbounded) != 0
    ||  zmq_connect (pair, endpoint) != 0
    ||  zmq_socket_monitor (sock, endpoint, ZMQ_EVENT_DISCONNECTED) != 0) {
        if (pair)
            zmq_close (pair);           /* the monitor did not start */
        return WALCAST_EUNAVAILABLE;
    }
    self->pair = pair;
    self->id = id;
    return 0;
}

uint64_t
wc_dropwatch_id (const wc_dropwatch_t *self)
{
    return self->pair ? self->id : 0;
}

void *
wc_dropwatch_socket (const wc_dropwatch_t *self)
{
    return self->pair;
}

uint32_t
wc_dropwatch_read (wc_dropwatch_t *self)
{
    uint32_t drops = 0;
    if (!self->pair)
        return 0;
    zmq_msg_t frame;
    for (int i = 0; i < S_READ_MAX; i++) {
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, self->pair, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&frame);
            break;
        }
        uint16_t event = 0;
        if (zmq_msg_size (&frame) >= sizeof event)
            memcpy (&event, zmq_msg_data (&frame), sizeof event);
        if (event == ZMQ_EVENT_DISCONNECTED)
            drops++;
        while (zmq_msg_more (&frame)) {         /* the endpoint */
            zmq_msg_close (&frame);
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, self->pair, 0) == -1)
                break;
        }
        zmq_msg_close (&frame);
    }
    return drops;
}
