/*  test_node_errors.c - what an operator reads when a node cannot do its job.

    Every error a user sees names the cause and, where there is one, the
    remedy (issue 6, defect 13). These tests provoke the failures an
    operator meets first and read the node's log and exit status:

    - its port is taken: the log names the port and says to stop the
      other process or choose another port, and nothing else pretends the
      problem is a client's ("no node to send to"); the broker likewise;
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "cluster.h"

static int
s_setup (void **state)
{
    *state = cluster_new ("node_errors");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

/*  Listen on 127.0.0.1:port; returns the socket or -1. */
static int
s_listen (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    int on = 1;         //  as libzmq binds: a port in TIME_WAIT is free
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons ((uint16_t) port);
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0
    ||  listen (fd, 1) != 0) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    return fd;
}

/*  Wait until node i has exited; true when it did within the deadline. */
static bool
s_wait_exit (cluster_t *c, int i, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (cluster_now_ms () < deadline) {
        if (!cluster_running (c, i))
            return true;
        cluster_nap_ms (20);
    }
    return false;
}

/*  Each of the node's three ports taken in turn. */
static void
test_port_taken (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    for (int k = 0; k < 3; k++) {
        int port = cluster_port (c, p) + k;
        int fd = s_listen (port);
        assert_true (fd >= 0);
        long mark = cluster_log_mark (c, p);
        assert_int_equal (cluster_start (c, p), 0);
        assert_true (s_wait_exit (c, p, 20000));
        close (fd);
        char line [512], port_text [32];
        snprintf (port_text, sizeof port_text, ":%d: the port is in use", port);
        assert_int_equal (cluster_log_find (c, p, "cannot start:", mark, 0, line,
                                            sizeof line), 0);
        printf ("port %d taken: %s\n", port, line);
        assert_non_null (strstr (line, port_text));
        assert_non_null (strstr (line, "choose another port"));
        char needle [] = "no node to send to";
        assert_int_equal (cluster_log_count (c, p, needle, mark), 0);
        FILE *log = fopen (cluster_log_path (c, p), "r");
        assert_non_null (log);
        fseek (log, mark, SEEK_SET);
        while (fgets (line, sizeof line, log))
            assert_null (strstr (line, needle));
        fclose (log);
    }
    cluster_pass (c);
}

/*  The broker's two ports taken in turn: it exits 1 and says why. */
static void
test_broker_port_taken (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    const char *broker = getenv ("WALCAST_BROKER");
    assert_non_null (broker);
    const char *colon = strrchr (cluster_broker_addr (c), ':');
    assert_non_null (colon);
    int base = atoi (colon + 1);        //  the cluster's own broker ports
    for (int k = 0; k < 2; k++) {
        int fd = s_listen (base + k);
        assert_true (fd >= 0);
        char command [1024], output [4096] = "";
        snprintf (command, sizeof command, "%s --port %d 2>&1", broker, base);
        FILE *run = popen (command, "r");
        assert_non_null (run);
        size_t len = fread (output, 1, sizeof output - 1, run);
        output [len] = '\0';
        int status = pclose (run);
        close (fd);
        printf ("broker, port %d taken: %s", base + k, output);
        assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 1);
        char expect [64];
        snprintf (expect, sizeof expect, ":%d: the port is in use", base + k);
        assert_non_null (strstr (output, "cannot start: cannot bind"));
        assert_non_null (strstr (output, expect));
        assert_non_null (strstr (output, "choose another port"));
        assert_null (strstr (output, "no node to send to"));
    }
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_port_taken, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_broker_port_taken, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
