/*  test_dropwatch.c - the client's watch on a sync write's connection
    (client/dropwatch.c).

    What a user relies on: a sync write whose connection closes ends at
    once as an unknown outcome (tests/test_client_failover.c shows that
    end to end). Here, the parts it stands on: a closed connection is
    counted once it closes; the events of a socket watched before never
    count for the one watched now; attaching to the socket watched already
    changes nothing; a released socket's drop is not counted, and does
    not stop libzmq (a monitor whose PAIR is gone blocks its I/O thread at
    the next event: wc_dropwatch_release stops it first); and with no
    socket there is nothing to poll.

    Loopback only: a ROUTER on 127.0.0.1 at a port the kernel picks, and
    a DEALER connected to it.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <zmq.h>
#include "dropwatch.h"
#include "walcast.h"

#define S_DEADLINE_MS 10000

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*  A ROUTER bound on loopback and a DEALER connected to it (with
    ZMQ_IMMEDIATE, as the client's: it sends only on a live connection),
    the connection up (a message went through). */
typedef struct {
    void *router;
    void *dealer;
} s_link_t;

static void
s_link_open (void *ctx, s_link_t *link)
{
    int linger = 0;
    link->router = zmq_socket (ctx, ZMQ_ROUTER);
    assert_non_null (link->router);
    zmq_setsockopt (link->router, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal (zmq_bind (link->router, "tcp://127.0.0.1:*"), 0);
    char endpoint [64];
    size_t size = sizeof endpoint;
    assert_int_equal (zmq_getsockopt (link->router, ZMQ_LAST_ENDPOINT, endpoint, &size), 0);
    link->dealer = zmq_socket (ctx, ZMQ_DEALER);
    assert_non_null (link->dealer);
    int immediate = 1;
    zmq_setsockopt (link->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (link->dealer, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
    assert_int_equal (zmq_connect (link->dealer, endpoint), 0);
    assert_int_equal (zmq_send (link->dealer, "hi", 2, 0), 2);
    char buf [16];
    int timeout = S_DEADLINE_MS;
    zmq_setsockopt (link->router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    assert_true (zmq_recv (link->router, buf, sizeof buf, 0) > 0);     /* identity */
    assert_int_equal (zmq_recv (link->router, buf, sizeof buf, 0), 2);
}

static void
s_link_close (s_link_t *link)
{
    if (link->router)
        zmq_close (link->router);
    if (link->dealer)
        zmq_close (link->dealer);
    link->router = link->dealer = NULL;
}

/*  True once the DEALER has no connection left to send on (so the drop
    went through its socket, and its monitor, if any, was told), within
    the deadline. */
static bool
s_link_gone (s_link_t *link)
{
    int64_t deadline = s_now_ms () + S_DEADLINE_MS;
    while (s_now_ms () < deadline) {
        if (zmq_send (link->dealer, "x", 1, ZMQ_DONTWAIT) == -1 && zmq_errno () == EAGAIN)
            return true;
        zmq_pollitem_t item = { link->dealer, 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 10);
    }
    return false;
}

/*  Drops counted until at least one came, or the deadline passed. */
static uint32_t
s_wait_drops (wc_dropwatch_t *watch)
{
    uint32_t drops = 0;
    int64_t deadline = s_now_ms () + S_DEADLINE_MS;
    while (drops == 0 && s_now_ms () < deadline) {
        zmq_pollitem_t item = { wc_dropwatch_socket (watch), 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 100);
        drops += wc_dropwatch_read (watch);
    }
    return drops;
}

static void
test_closed_connection_counted (void **state)
{
    (void) state;
    void *ctx = zmq_ctx_new ();
    wc_dropwatch_t *watch = wc_dropwatch_new (ctx);
    assert_non_null (watch);
    s_link_t link;
    s_link_open (ctx, &link);
    assert_int_equal (wc_dropwatch_attach (watch, link.dealer, 7), 0);
    assert_int_equal (wc_dropwatch_id (watch), 7);
    assert_non_null (wc_dropwatch_socket (watch));
    assert_int_equal (wc_dropwatch_read (watch), 0);      /* up: nothing */
    zmq_close (link.router);                                /* the node dies */
    link.router = NULL;
    assert_int_equal (s_wait_drops (watch), 1);
    s_link_close (&link);                                   /* then the watch */
    wc_dropwatch_destroy (&watch);
    assert_null (watch);
    zmq_ctx_term (ctx);
}

static void
test_earlier_socket_not_counted (void **state)
{
    (void) state;
    void *ctx = zmq_ctx_new ();
    wc_dropwatch_t *watch = wc_dropwatch_new (ctx);
    s_link_t a, b;
    s_link_open (ctx, &a);
    s_link_open (ctx, &b);
    assert_int_equal (wc_dropwatch_attach (watch, a.dealer, 1), 0);
    void *pair_a = wc_dropwatch_socket (watch);
    assert_int_equal (wc_dropwatch_attach (watch, a.dealer, 1), 0);   /* again: nothing */
    assert_ptr_equal (wc_dropwatch_socket (watch), pair_a);
    wc_dropwatch_release (watch, a.dealer);                 /* a is still open */
    assert_null (wc_dropwatch_socket (watch));
    assert_int_equal (wc_dropwatch_attach (watch, b.dealer, 2), 0);
    assert_int_equal (wc_dropwatch_id (watch), 2);
    //  a's connection drops: its socket sees it (libzmq's I/O thread
    //  did not block on a's monitor), and b's watch counts nothing
    zmq_close (a.router);
    a.router = NULL;
    assert_true (s_link_gone (&a));
    assert_int_equal (wc_dropwatch_read (watch), 0);
    //  b's does: counted
    zmq_close (b.router);
    b.router = NULL;
    assert_int_equal (s_wait_drops (watch), 1);
    s_link_close (&a);
    s_link_close (&b);
    wc_dropwatch_destroy (&watch);
    zmq_ctx_term (ctx);
}

static void
test_no_socket (void **state)
{
    (void) state;
    void *ctx = zmq_ctx_new ();
    wc_dropwatch_t *watch = wc_dropwatch_new (ctx);
    assert_null (wc_dropwatch_socket (watch));
    assert_int_equal (wc_dropwatch_id (watch), 0);
    assert_int_equal (wc_dropwatch_read (watch), 0);
    assert_int_equal (wc_dropwatch_attach (watch, NULL, 3), WALCAST_EUNAVAILABLE);
    assert_null (wc_dropwatch_socket (watch));
    wc_dropwatch_destroy (&watch);
    wc_dropwatch_destroy (&watch);                         /* twice: no-op */
    zmq_ctx_term (ctx);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_closed_connection_counted),
        cmocka_unit_test (test_earlier_socket_not_counted),
        cmocka_unit_test (test_no_socket),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
