/*  test_httpd.c - runtime/httpd.c: only the published paths answer.

    What a user relies on: the node's /metrics and the broker's status
    page (/, /api/topology, /metrics) answer 200 at exactly the paths the
    documentation names, and anything else is 404, so a scanner, a typo
    or a proxy that rewrites paths never gets a document it did not ask
    for. Before the fix libmicrohttpd percent-decoded the path and the
    server compared it as a C string: GET /%00 was "/" and got the
    status page, GET /metrics%00x got the metrics.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "http_get.h"
#include "httpd.h"
#include "ports.h"

#define TIMEOUT_MS  5000

typedef struct {
    wc_httpd_t *httpd;
    int         port;
} s_world_t;

static int
s_setup (void **state)
{
    s_world_t *w = (s_world_t *) calloc (1, sizeof *w);
    assert_non_null (w);
    w->port = test_ports_reserve (1);
    assert_true (w->port > 0);
    char why [512];
    w->httpd = wc_httpd_new ("status page", "127.0.0.1", w->port, why, sizeof why);
    if (!w->httpd)
        fail_msg ("cannot serve: %s", why);
    static const char page [] = "<html>page</html>";
    static const char metrics [] = "walcast_up 1\n";
    assert_int_equal (wc_httpd_publish (w->httpd, "/", "text/html", page,
                                        sizeof page - 1), 0);
    assert_int_equal (wc_httpd_publish (w->httpd, "/metrics", "text/plain", metrics,
                                        sizeof metrics - 1), 0);
    *state = w;
    return 0;
}

static int
s_teardown (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    wc_httpd_destroy (&w->httpd);
    free (w);
    return 0;
}

/*  The status of GET path. */
static int
s_status (s_world_t *w, const char *path)
{
    http_reply_t reply;
    assert_int_equal (http_request (w->port, "GET", path, TIMEOUT_MS, &reply, 0), 0);
    int status = reply.status;
    http_reply_free (&reply);
    return status;
}

static void
test_published_paths_answer (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    assert_int_equal (s_status (w, "/"), 200);
    assert_int_equal (s_status (w, "/metrics"), 200);
    assert_int_equal (s_status (w, "/metrics?name=x"), 200);   /* a query is no path */
    assert_int_equal (s_status (w, "/nothing"), 404);
}

static void
test_odd_paths_are_not_found (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    const char *odd [] = {
        "/%00", "/%00index.html", "/metrics%00", "/metrics%00.txt", "/%2F",
        "/%6detrics", "/metrics/", "//", "/./metrics", "/metrics%20", "%2F",
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd [0]; i++) {
        int status = s_status (w, odd [i]);
        if (status != 404)
            fail_msg ("GET %s: %d, expected 404", odd [i], status);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_published_paths_answer, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_odd_paths_are_not_found, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
