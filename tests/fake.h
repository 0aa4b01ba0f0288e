/*  fake.h - fake walcast peers for client tests.

    A fake is a set of sockets a test binds on spare ports (ROUTERs that
    stand for a node's service or catch-up port or a broker's port, PUBs
    that stand for a stream or a topology socket), served by a thread of
    its own. The test says what the fake does with two callbacks, both run
    in that thread:

    - on_request, for every well-formed request on one of its ROUTERs:
      encode the reply into `reply` and return true to send it, or return
      false to stay silent (a node that never answers);
    - on_tick, every 20 ms: publish with fake_publish (heartbeats, a
      topology), or anything else that must happen on a clock.

    What the callbacks share with the test (counters, modes) is the
    test's to protect (atomics). A fake's sockets have linger 0 and are
    closed by fake_destroy, so the ports are free again afterwards.

        fake_t *f = fake_new (on_request, on_tick, &state);
        fake_bind_router (f, port);         // before fake_start
        fake_start (f);
        ...
        fake_destroy (&f);
*/
#ifndef WC_TEST_FAKE_H_INCLUDED
#define WC_TEST_FAKE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <msgpack.h>
#include "codec.h"

typedef struct fake fake_t;

typedef bool (fake_request_fn) (void *arg, int port, const wc_msg_t *req,
                                msgpack_sbuffer *reply);
typedef void (fake_tick_fn) (void *arg, fake_t *fake);

/*  A fake with its callbacks (either may be NULL); NULL on failure. */
fake_t *fake_new (fake_request_fn *on_request, fake_tick_fn *on_tick, void *arg);

/*  Stop the thread, close every socket, free; *self_p becomes NULL. */
void fake_destroy (fake_t **self_p);

/*  Bind a ROUTER or a PUB on 127.0.0.1:port (before fake_start). 0 or -1
    (printed). */
int fake_bind_router (fake_t *self, int port);
int fake_bind_pub (fake_t *self, int port);

/*  Start serving. 0 or -1. */
int fake_start (fake_t *self);

/*  From on_tick (the fake's thread): send [topic][body] on the PUB bound
    to port. 0 or -1. */
int fake_publish (fake_t *self, int port, const void *topic, size_t topic_len,
                  const void *body, size_t body_len);

#endif
