/*  test_request.c - runtime/request.c: replies on a ROUTER socket.

    What a user relies on: a peer that reads its replies gets every one,
    however fast they come. The broker's ROUTER holds about 5 replies per
    peer (its byte budget over the largest TOPOLOGY) and refuses a send
    past that (ROUTER_MANDATORY). libzmq learns how much a peer has read
    from commands of its I/O thread, which a send looks at only about once
    a millisecond, so replies sent in quick bursts to a peer that had read
    them all met a "full" queue and were dropped: a refused REGISTER went
    unanswered in CI. A peer that reads nothing still loses the replies
    past its queue, at once.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <zmq.h>
#include "request.h"

#define HWM     5
#define BURST   3           /* at least (HWM + 1) / 2: libzmq's low-water mark */
#define ROUNDS  2000

typedef struct {
    void *ctx;
    void *router;
    void *dealer;
} s_pair_t;

static void
s_pair_open (s_pair_t *pair)
{
    pair->ctx = zmq_ctx_new ();
    assert_non_null (pair->ctx);
    pair->router = zmq_socket (pair->ctx, ZMQ_ROUTER);
    int hwm = HWM, one = 1, timeout = 5000;
    assert_int_equal (zmq_setsockopt (pair->router, ZMQ_SNDHWM, &hwm, sizeof hwm), 0);
    assert_int_equal (zmq_setsockopt (pair->router, ZMQ_ROUTER_MANDATORY, &one,
                                      sizeof one), 0);
    //  Port 0: the system picks a free one
    assert_int_equal (zmq_bind (pair->router, "tcp://127.0.0.1:*"), 0);
    char endpoint [64];
    size_t len = sizeof endpoint;
    assert_int_equal (zmq_getsockopt (pair->router, ZMQ_LAST_ENDPOINT, endpoint, &len), 0);
    pair->dealer = zmq_socket (pair->ctx, ZMQ_DEALER);
    assert_int_equal (zmq_setsockopt (pair->dealer, ZMQ_RCVTIMEO, &timeout,
                                      sizeof timeout), 0);
    assert_int_equal (zmq_connect (pair->dealer, endpoint), 0);
}

static void
s_pair_close (s_pair_t *pair)
{
    int linger = 0;
    zmq_setsockopt (pair->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (pair->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (pair->router);
    zmq_close (pair->dealer);
    zmq_ctx_term (pair->ctx);
}

//  A PING from the dealer, taken off the router (waiting up to 5 s).
static void
s_take_request (s_pair_t *pair, wc_request_t *req)
{
    static const uint8_t ping [] = { 0x93, 0x01, 0x04, 0x07 };   /* PING: [1, 4, 7] */
    assert_int_equal (zmq_send (pair->dealer, ping, sizeof ping, 0), (int) sizeof ping);
    zmq_pollitem_t item = { pair->router, 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 5000), 1);
    assert_int_equal (wc_request_recv (pair->router, req), 1);
}

static void
test_bursts_reach_a_reading_peer (void **state)
{
    (void) state;
    s_pair_t pair;
    s_pair_open (&pair);
    wc_request_t req;
    wc_request_init (&req);
    s_take_request (&pair, &req);
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < BURST; i++)
            if (wc_request_reply (pair.router, &req, "reply", 5) != 0)
                fail_msg ("round %d: reply %d refused (%s) though the peer has read "
                          "every earlier one", round, i, zmq_strerror (zmq_errno ()));
        char buf [16];
        for (int i = 0; i < BURST; i++)
            assert_int_equal (zmq_recv (pair.dealer, buf, sizeof buf, 0), 5);
    }
    wc_request_destroy (&req);
    s_pair_close (&pair);
}

static void
test_a_peer_that_reads_nothing_loses_replies (void **state)
{
    (void) state;
    s_pair_t pair;
    s_pair_open (&pair);
    wc_request_t req;
    wc_request_init (&req);
    s_take_request (&pair, &req);
    //  1 MiB replies: the socket buffers hold a few, the queue HWM more
    static char big [1 << 20];
    int sent = 0;
    while (sent < 1000 && wc_request_reply (pair.router, &req, big, sizeof big) == 0)
        sent++;
    assert_true (sent < 1000);
    assert_int_equal (zmq_errno (), EAGAIN);
    wc_request_destroy (&req);
    s_pair_close (&pair);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_bursts_reach_a_reading_peer),
        cmocka_unit_test (test_a_peer_that_reads_nothing_loses_replies),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
