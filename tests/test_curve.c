/*  test_curve.c - runtime/curve.c: what a server's CURVE costs over time.

    What a user relies on: a node or broker with keys can rebuild its PUB
    sockets any number of times (a key removed from the trust folder, or a
    peer flooding subscriptions makes it rebuild, and any key with a role
    can cause the latter on purpose) without holding on to anything per
    rebuild: the monitor of the refused handshakes of each closed socket
    goes with it. Before the fix every rebuild left a monitor socket open
    and a node died after ~800 rebuilds (libzmq's socket limit).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "certs.h"
#include "clock.h"
#include "curve.h"
#include "ports.h"
#include "publisher.h"
#include "sock.h"

#define REBUILDS  300

static int
s_open_fds (void)
{
    int n = 0;
    DIR *d = opendir ("/proc/self/fd");
    assert_non_null (d);
    while (readdir (d))
        n++;
    closedir (d);
    return n;
}

static const char *const s_topics [] = { "", NULL };
static const wc_publisher_spec_t s_spec = {
    .name = "stream", .topics = s_topics, .max_frame = 256, .max_out = 65536,
    .budget = 1 << 20, .foreign_budget = 4096
};

static void
test_rebuilds_hold_nothing (void **state)
{
    (void) state;
    char dir [] = "/tmp/walcast-test-curve-XXXXXX", path [256], trust [256], why [512];
    assert_non_null (mkdtemp (dir));
    snprintf (path, sizeof path, "%s/server", dir);
    snprintf (trust, sizeof trust, "%s/trust", dir);
    assert_int_equal (mkdir (trust, 0700), 0);
    assert_int_equal (wc_certs_generate (path, why, sizeof why), 0);
    strcat (path, "_secret");
    wc_curve_t *curve = NULL;
    if (wc_curve_start (path, trust, &curve, why, sizeof why) != 0)
        fail_msg ("%s", why);
    int port = test_ports_reserve (1);
    assert_true (port > 0);
    wc_publisher_t *pub = wc_publisher_new (&s_spec, "127.0.0.1", port, why, sizeof why);
    if (!pub)
        fail_msg ("%s", why);
    int before = s_open_fds ();
    for (int i = 0; i < REBUILDS; i++) {
        wc_publisher_drop_all (pub);
        int64_t deadline = wc_clock_ms () + 5000;
        while (!wc_publisher_socket (pub) && wc_clock_ms () < deadline) {
            struct timespec nap = { 0, 2000000 };
            nanosleep (&nap, NULL);
            wc_publisher_tick (pub, wc_clock_ms ());
        }
        if (!wc_publisher_socket (pub))
            fail_msg ("rebuild %d: the socket did not come back (%d fds open)", i,
                      s_open_fds ());
    }
    //  The monitor thread lets each closed socket's watch go when libzmq
    //  says the monitor stopped: wait for it (it is a thread of its own)
    int64_t deadline = wc_clock_ms () + 10000;
    int after = s_open_fds ();
    while (after > before + 8 && wc_clock_ms () < deadline) {
        struct timespec nap = { 0, 10000000 };
        nanosleep (&nap, NULL);
        after = s_open_fds ();
    }
    print_message ("%d fds before %d rebuilds, %d after\n", before, REBUILDS, after);
    assert_true (after <= before + 8);
    wc_publisher_destroy (&pub);
    wc_curve_destroy (&curve);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal (system (cmd), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_rebuilds_hold_nothing),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    zsys_shutdown ();
    return rc;
}
