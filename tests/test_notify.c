/*  test_notify.c - systemd readiness, Type=notify (issue 10).

    What a user relies on: under systemd (examples/systemd/, whose units are
    Type=notify) walcast-node and walcast-broker say READY=1 once their
    ports are bound and they serve, so units ordered after them start only
    then, and STOPPING=1 when asked to stop; run by hand (no
    $NOTIFY_SOCKET) they send nothing. The test plays systemd: a datagram
    socket named by $NOTIFY_SOCKET, a real node and broker started with
    it, and runtime/notify.c alone for the corner cases (the abstract
    namespace, a bad socket name).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>
#include "cluster.h"
#include "notify.h"

/*  A datagram socket bound at path ('@': abstract). */
static int
s_listen (const char *path)
{
    int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true (fd >= 0);
    struct sockaddr_un addr;
    memset (&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t len = strlen (path);
    assert_true (len < sizeof addr.sun_path);
    memcpy (addr.sun_path, path, len);
    if (path [0] == '@')
        addr.sun_path [0] = '\0';
    socklen_t addr_len = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + len);
    assert_int_equal (bind (fd, (struct sockaddr *) &addr, addr_len), 0);
    return fd;
}

/*  The next datagram within timeout_ms into buf, NUL-terminated; its
    length, or -1 at the deadline. */
static int
s_next (int fd, char *buf, size_t size, int timeout_ms)
{
    struct pollfd item = { fd, POLLIN, 0 };
    if (poll (&item, 1, timeout_ms) != 1)
        return -1;
    ssize_t n = recv (fd, buf, size - 1, 0);
    if (n < 0)
        return -1;
    buf [n] = '\0';
    return (int) n;
}

static void
test_notify_alone (void **state)
{
    (void) state;
    char buf [256];
    unsetenv ("NOTIFY_SOCKET");
    assert_int_equal (wc_notify ("READY=1"), 0);        /* not under systemd */

    char name [64];
    snprintf (name, sizeof name, "@walcast-test-notify-%d", (int) getpid ());
    int fd = s_listen (name);
    setenv ("NOTIFY_SOCKET", name, 1);
    assert_int_equal (wc_notify ("READY=1"), 0);
    assert_int_equal (s_next (fd, buf, sizeof buf, 5000), 7);
    assert_string_equal (buf, "READY=1");
    close (fd);

    setenv ("NOTIFY_SOCKET", "relative/name", 1);       /* neither / nor @ */
    assert_int_equal (wc_notify ("READY=1"), -1);
    unsetenv ("NOTIFY_SOCKET");
}

/*  A node and a broker, each under its own "systemd". */
static void
test_node_and_broker (void **state)
{
    (void) state;
    cluster_t *c = cluster_new ("notify");
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    char path [600], buf [256];
    snprintf (path, sizeof path, "%s/broker.notify", cluster_dir (c));
    int broker_fd = s_listen (path);
    setenv ("NOTIFY_SOCKET", path, 1);
    assert_int_equal (cluster_broker_start (c, 1000), 0);
    if (s_next (broker_fd, buf, sizeof buf, 10000) < 0)
        fail_msg ("the broker never said it was ready");
    assert_string_equal (buf, "READY=1");

    snprintf (path, sizeof path, "%s/node.notify", cluster_dir (c));
    int node_fd = s_listen (path);
    setenv ("NOTIFY_SOCKET", path, 1);
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    unsetenv ("NOTIFY_SOCKET");
    if (s_next (node_fd, buf, sizeof buf, 10000) < 0)
        fail_msg ("the node never said it was ready");
    assert_string_equal (buf, "READY=1");
    //  Ready means serving: it answers at once
    walcast_status_t status;
    assert_int_equal (cluster_status (c, p, &status), 0);

    assert_int_equal (cluster_term (c, p, 10000), 0);
    if (s_next (node_fd, buf, sizeof buf, 5000) < 0)
        fail_msg ("the node never said it was stopping");
    assert_string_equal (buf, "STOPPING=1");
    close (node_fd);
    close (broker_fd);
    cluster_pass (c);
    cluster_destroy (&c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_notify_alone),
        cmocka_unit_test (test_node_and_broker),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
