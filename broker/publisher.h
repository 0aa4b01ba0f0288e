/*  publisher.h - the broker's topology socket (B+1): pushes, and only the
    subscriptions the protocol defines.

    A PUB socket keeps every subscription a peer sends, whatever its size
    or topic, until the peer leaves: 200 subscriptions of 60 KB took a
    broker to 384 MB. The publisher is an XPUB with ZMQ_XPUB_MANUAL, so
    libzmq hands each (un)subscription to us instead of applying it, and
    applies only `topology` and `""` (the two PROTOCOL.md defines). The
    rest are dropped and counted. Memory stays bounded in bytes:
    - a frame over WC_PUBLISHER_MAX_FRAME (subscriptions are 9 bytes)
      makes libzmq drop that peer's connection;
    - libzmq still keeps each foreign subscription in a table of its own
      until the peer leaves, and offers no way to drop one peer from an
      XPUB; so past WC_PUBLISHER_FOREIGN_BUDGET bytes of them the socket
      is rebuilt (every subscriber reconnects and subscribes again,
      within ZeroMQ's reconnect interval) and the tables go with it;
    - queues are bounded per subscriber by the HWMs (see publisher.c).

    The broker polls wc_publisher_socket for POLLIN and calls
    wc_publisher_handle, pushes with wc_publisher_send, and calls
    wc_publisher_tick from its timers to bind again after a rebuild.
*/
#ifndef WC_PUBLISHER_H_INCLUDED
#define WC_PUBLISHER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/*  Largest frame a subscriber may send: a subscription to `topology` is 9
    bytes; the rest is room for ZMTP handshake commands (READY with a
    255-byte identity, CURVE's HELLO of 200 bytes). */
#define WC_PUBLISHER_MAX_FRAME        512

/*  Bytes of foreign subscriptions taken before the socket is rebuilt. */
#define WC_PUBLISHER_FOREIGN_BUDGET   (4 * 1024)

typedef struct wc_publisher wc_publisher_t;

/*  Bind an XPUB at tcp://bind:port. NULL when the port cannot be bound
    or memory runs out, with the reason and the remedy in why. */
wc_publisher_t *wc_publisher_new (const char *bind, int port, char *why,
                                  size_t why_size);

/*  Close the socket; *self_p becomes NULL; safe with NULL. */
void wc_publisher_destroy (wc_publisher_t **self_p);

/*  The libzmq socket to poll for POLLIN, or NULL while it is rebuilt. */
void *wc_publisher_socket (wc_publisher_t *self);

/*  Take the (un)subscriptions waiting, applying the protocol's and
    counting the others; rebuild the socket when they pass the budget. */
void wc_publisher_handle (wc_publisher_t *self);

/*  Publish [topic "topology"][body] without blocking (a subscriber whose
    queue is full misses it). Returns 0, or -1 while the socket is being
    rebuilt (the caller pushes again later). */
int wc_publisher_send (wc_publisher_t *self, const void *body, size_t len);

/*  Bind again after a rebuild when due. Returns ms until it wants to be
    called again (INT32_MAX-ish when all is well). */
int wc_publisher_tick (wc_publisher_t *self, int64_t now_ms);

/*  Counters for the broker's stop line: foreign subscriptions dropped,
    rebuilds. */
uint64_t wc_publisher_foreign (wc_publisher_t *self);
uint64_t wc_publisher_rebuilds (wc_publisher_t *self);

#endif
