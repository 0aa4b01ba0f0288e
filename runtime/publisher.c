/*  publisher.c - a PUB socket that keeps only the protocol's
    subscriptions (see publisher.h).

    Two ideas. With ZMQ_XPUB_MANUAL, a subscription reaches a subscriber's
    pipe only when we apply it: zmq_setsockopt (ZMQ_SUBSCRIBE) right after
    the zmq_recv that returned it applies it to the peer that sent it.
    And since libzmq's high-water marks count messages, each HWM below is
    a byte budget divided by the largest message its queue can hold.

    A rebuild closes the socket and binds a new one on the same port. The
    old listener is closed by libzmq's I/O thread, so the first bind may
    find the port still taken: the tick retries every S_RETRY_MS, and
    messages published meanwhile are lost, as any stream loss is.
*/
#include <czmq.h>
#include <stdbool.h>
#include <string.h>
#include "log.h"
#include "clock.h"
#include "publisher.h"
#include "sock.h"
#include "wc_limits.h"

/*  Per subscriber, frames queued in: a few subscriptions. */
#define S_IN_BUDGET      (32 * 1024)

#define S_RETRY_MS       10        /* bind again this often after a rebuild */
#define S_BATCH          1000      /* (un)subscriptions handled per call */

struct wc_publisher {
    const wc_publisher_spec_t *spec;    /* what it is */
    char      bind [WC_MAX_ADDR + 1];   /* where to bind (again) */
    int       port;
    zsock_t  *xpub;                     /* NULL while rebuilt */
    int64_t   rebuilt_ms;               /* when the socket was closed */
    int64_t   next_retry_ms;
    int64_t   warned_ms;                /* last "cannot bind again" warning */
    uint64_t  foreign;                  /* foreign subscriptions dropped */
    uint64_t  foreign_bytes;            /* their bytes since the last rebuild */
    uint64_t  rebuilds;
    uint64_t  refused;                  /* subscriptions from keys without a role */
    int64_t   refused_log_ms;           /* when the last such was logged */
    int       bind_errno;               /* why the last bind failed */
};

/*  A new XPUB bound at the publisher's port, or NULL (bind_errno says why). */
static zsock_t *
s_open (wc_publisher_t *self)
{
    zsock_t *xpub = zsock_new (ZMQ_XPUB);
    if (!xpub)
        return NULL;
    zsock_set_linger (xpub, 0);
    zsock_set_heartbeat_ivl (xpub, 1000);
    zsock_set_heartbeat_timeout (xpub, 5000);
    zsock_set_xpub_manual (xpub, 1);
    zsock_set_maxmsgsize (xpub, (int64_t) self->spec->max_frame);
    size_t sndhwm = self->spec->budget / self->spec->max_out;
    size_t rcvhwm = S_IN_BUDGET / self->spec->max_frame;
    zsock_set_sndhwm (xpub, sndhwm > 0 ? (int) sndhwm : 1);
    zsock_set_rcvhwm (xpub, rcvhwm > 0 ? (int) rcvhwm : 1);
    if (wc_sock_curve () && wc_curve_serve (wc_sock_curve (), xpub, self->spec->name)) {
        self->bind_errno = zmq_errno ();
        zsock_destroy (&xpub);
        return NULL;
    }
    if (zsock_bind (xpub, "tcp://%s:%d", self->bind, self->port) != self->port) {
        self->bind_errno = zmq_errno ();
        zsock_destroy (&xpub);
    }
    return xpub;
}

wc_publisher_t *
wc_publisher_new (const wc_publisher_spec_t *spec, const char *bind, int port,
                  char *why, size_t why_size)
{
    wc_publisher_t *self = (wc_publisher_t *) calloc (1, sizeof *self);
    snprintf (why, why_size, "out of memory");
    if (!self)
        return NULL;
    self->spec = spec;
    snprintf (self->bind, sizeof self->bind, "%s", bind);
    self->port = port;
    self->xpub = s_open (self);
    if (!self->xpub) {
        wc_sock_bind_why (spec->name, bind, port, self->bind_errno, why, why_size);
        wc_publisher_destroy (&self);
    }
    return self;
}

void
wc_publisher_destroy (wc_publisher_t **self_p)
{
    wc_publisher_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->xpub);
    free (self);
    *self_p = NULL;
}

void *
wc_publisher_socket (wc_publisher_t *self)
{
    return self->xpub ? zsock_resolve (self->xpub) : NULL;
}

/*  Close the socket, and with it every connection and libzmq's tables;
    bind again at once if the port is free, else from the tick. */
static void
s_rebuild (wc_publisher_t *self)
{
    zsock_destroy (&self->xpub);
    self->rebuilds++;
    self->foreign_bytes = 0;
    self->rebuilt_ms = wc_clock_ms ();
    self->next_retry_ms = self->rebuilt_ms;
    wc_publisher_tick (self, self->rebuilt_ms);
}

/*  True when topic is one the spec honours. */
static bool
s_honoured (const wc_publisher_spec_t *spec, const uint8_t *topic, size_t size)
{
    for (int i = 0; spec->topics [i]; i++)
        if (strlen (spec->topics [i]) == size
        &&  memcmp (spec->topics [i], topic, size) == 0)
            return true;
    return false;
}

/*  One frame from a subscriber: [0|1][topic] (un)subscribes. */
static void
s_subscription (wc_publisher_t *self, void *xpub, const uint8_t *data, size_t size)
{
    bool ours = size >= 1 && (data [0] == 0 || data [0] == 1)
             && s_honoured (self->spec, data + 1, size - 1);
    if (ours)
        zmq_setsockopt (xpub, data [0] ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE,
                        data + 1, size - 1);
    else
    if (size == 0 || data [0] != 0) {
        /*  A foreign subscription, or data no subscriber should send. (A
            foreign unsubscription undoes one, and costs nothing.) */
        self->foreign++;
        self->foreign_bytes += size;
        wc_log_debug ("%s socket: dropped a subscription of %zu bytes the protocol "
                      "does not define", self->spec->name, size);
    }
}

/*  A subscription from a key without a role: count it, and log it at
    most once a second (such a peer can subscribe as fast as it likes). */
static void
s_refuse (wc_publisher_t *self, const char *name)
{
    self->refused++;
    int64_t now = wc_clock_ms ();
    if (now - self->refused_log_ms < 1000)
        return;
    wc_log_warn ("%s socket: refused a subscription from key %s: it has no role in "
                 "the trust folder (%llu refused in all)", self->spec->name, name,
                 (unsigned long long) self->refused);
    self->refused_log_ms = now;
}

void
wc_publisher_handle (wc_publisher_t *self)
{
    for (int i = 0; self->xpub && i < S_BATCH; i++) {
        void *xpub = zsock_resolve (self->xpub);
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, xpub, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&frame);
            return;
        }
        /*  An unsubscription only takes away, and libzmq makes one itself,
            with no key behind it, for each subscription of a peer whose
            connection closed: only subscriptions need a role */
        wc_curve_t *curve = wc_sock_curve ();
        const uint8_t *data = (const uint8_t *) zmq_msg_data (&frame);
        bool unsubscribe = zmq_msg_size (&frame) >= 1 && data [0] == 0;
        const char *name;
        if (curve && !unsubscribe && wc_curve_role (curve, &frame, &name) == WC_PEER_NONE)
            s_refuse (self, name);      /* trusted once, no role now: no data */
        else
            s_subscription (self, xpub, (const uint8_t *) zmq_msg_data (&frame),
                            zmq_msg_size (&frame));
        zmq_msg_close (&frame);
        if (self->foreign_bytes > self->spec->foreign_budget) {
            wc_log_warn ("%s socket: %llu bytes of subscriptions to topics the "
                         "protocol does not define (%llu dropped in all); rebuilding "
                         "it to free them (subscribers reconnect and subscribe again)",
                         self->spec->name, (unsigned long long) self->foreign_bytes,
                         (unsigned long long) self->foreign);
            s_rebuild (self);
        }
    }
}

void
wc_publisher_drop_all (wc_publisher_t *self)
{
    if (!self->xpub)
        return;
    wc_log_info ("%s socket: rebuilding it to drop a peer whose key left the trust "
                 "folder (the others reconnect and subscribe again)", self->spec->name);
    s_rebuild (self);
}

int
wc_publisher_send (wc_publisher_t *self, const void *topic, size_t topic_len,
                   const void *body, size_t len)
{
    if (!self->xpub)
        return -1;
    void *xpub = zsock_resolve (self->xpub);
    zmq_send (xpub, topic, topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (xpub, body, len, ZMQ_DONTWAIT);
    return 0;
}

int
wc_publisher_tick (wc_publisher_t *self, int64_t now_ms)
{
    if (self->xpub)
        return 60000;
    if (now_ms < self->next_retry_ms)
        return (int) (self->next_retry_ms - now_ms);
    self->xpub = s_open (self);
    if (self->xpub) {
        wc_log_info ("%s socket: bound again on %d after %lld ms", self->spec->name,
                     self->port,
                     (long long) (now_ms - self->rebuilt_ms));
        return 60000;
    }
    if (now_ms - self->rebuilt_ms >= 5000 && now_ms - self->warned_ms >= 5000) {
        wc_log_warn ("%s socket: cannot bind tcp://%s:%d again for %lld ms "
                     "(%s); subscribers get nothing until it can", self->spec->name,
                     self->bind,
                     self->port, (long long) (now_ms - self->rebuilt_ms),
                     zmq_strerror (zmq_errno ()));
        self->warned_ms = now_ms;
    }
    self->next_retry_ms = now_ms + S_RETRY_MS;
    return S_RETRY_MS;
}

uint64_t
wc_publisher_foreign (wc_publisher_t *self)
{
    return self->foreign;
}

uint64_t
wc_publisher_rebuilds (wc_publisher_t *self)
{
    return self->rebuilds;
}

uint64_t
wc_publisher_refused (wc_publisher_t *self)
{
    return self->refused;
}
