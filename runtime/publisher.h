/*  publisher.h - a PUB socket that keeps only the subscriptions the
    protocol defines: a node's stream (P+1) and the broker's topology
    socket (B+1).

    A PUB socket keeps every subscription a peer sends, whatever its size
    or topic, until the peer leaves: 200 subscriptions of 60 KB took a
    process to 384 MB. The publisher is an XPUB with ZMQ_XPUB_MANUAL, so
    libzmq hands each (un)subscription to us instead of applying it, and
    applies only the topics its spec names (a node's stream: "", the
    broker's: `topology` and ""). The rest are dropped and counted.
    Memory stays bounded in bytes:
    - a frame over the spec's max_frame (a subscription is a few bytes)
      makes libzmq drop that peer's connection;
    - libzmq still keeps each foreign subscription in a table of its own
      until the peer leaves, and offers no way to drop one peer from an
      XPUB; so past the spec's foreign_budget bytes of them the socket is
      rebuilt (every subscriber reconnects and subscribes again, within
      ZeroMQ's reconnect interval; a replica repairs what it missed
      meanwhile like any other loss) and the tables go with it;
    - queues are bounded per subscriber by HWMs from the spec's budget.
    With CURVE on (sock.h), the socket is a CURVE server, and a
    subscription from a key without a role (runtime/curve.h) is not
    applied.

    The owner polls wc_publisher_socket for POLLIN and calls
    wc_publisher_handle, publishes with wc_publisher_send, and calls
    wc_publisher_tick from its timers to bind again after a rebuild.
*/
#ifndef WC_PUBLISHER_H_INCLUDED
#define WC_PUBLISHER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/*  What a publisher is. Specs are static: the publisher keeps a pointer. */
typedef struct {
    const char        *name;            /* "stream", "topology": for logs */
    const char *const *topics;          /* honoured, NULL-terminated; "" = all */
    size_t             max_frame;       /* largest frame a subscriber may send */
    size_t             max_out;         /* largest message published */
    size_t             budget;          /* bytes queued per subscriber, out */
    size_t             foreign_budget;  /* bytes of other subscriptions
                                           taken before a rebuild */
} wc_publisher_spec_t;

typedef struct wc_publisher wc_publisher_t;

/*  Bind an XPUB per spec at tcp://bind:port. NULL when the port cannot
    be bound or memory runs out, with the reason and the remedy in why. */
wc_publisher_t *wc_publisher_new (const wc_publisher_spec_t *spec, const char *bind,
                                  int port, char *why, size_t why_size);

/*  Close the socket; *self_p becomes NULL; safe with NULL. */
void wc_publisher_destroy (wc_publisher_t **self_p);

/*  The libzmq socket to poll for POLLIN, or NULL while it is rebuilt. */
void *wc_publisher_socket (wc_publisher_t *self);

/*  Take the (un)subscriptions waiting, applying the protocol's and
    counting the others; rebuild the socket when they pass the budget. */
void wc_publisher_handle (wc_publisher_t *self);

/*  Publish [topic][body] without blocking (a subscriber whose queue is
    full misses it). Returns 0, or -1 while the socket is being rebuilt
    (subscribers repair what they missed, or get the next push). */
int wc_publisher_send (wc_publisher_t *self, const void *topic, size_t topic_len,
                       const void *body, size_t len);

/*  Bind again after a rebuild when due. Returns ms until it wants to be
    called again (INT32_MAX-ish when all is well). */
int wc_publisher_tick (wc_publisher_t *self, int64_t now_ms);

/*  Counters for the broker's stop line: foreign subscriptions dropped,
    rebuilds. */
uint64_t wc_publisher_foreign (wc_publisher_t *self);
uint64_t wc_publisher_rebuilds (wc_publisher_t *self);

/*  Subscriptions refused because their key has no role (CURVE on). */
uint64_t wc_publisher_refused (wc_publisher_t *self);

/*  Close the socket and bind a new one (as after too many foreign
    subscriptions): every subscriber reconnects, and one whose key left
    the trust folder cannot (CURVE on, curve.h). */
void wc_publisher_drop_all (wc_publisher_t *self);

#endif
