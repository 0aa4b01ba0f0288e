/*  test_statuspage_json.c - the broker's /api/topology (issue 10), read
    with a bare HTTP GET over a TCP socket, and the modules behind it.

    What a user relies on:
    - the JSON writer escapes every string so any bytes make valid JSON
      (quotes, backslashes, control bytes, bytes past ASCII, and '<', '>',
      '&' so the text is safe next to HTML);
    - the lag history keeps five minutes of one-a-second samples per node
      (never more), with a gap where the node was down;
    - `walcast-broker --http-port` serves the page at / (with nothing
      loaded from elsewhere) and the cluster at /api/topology: regions,
      their nodes with id, addr, role, epoch, applied seq, state, flags,
      lag and its history, and the recent changes of primary; a node id
      made of quotes and backslashes (printable: the broker admits it)
      comes back whole, escaped; an id with a control byte never gets in;
      a failover shows up at once as the new primary, the old one down
      and an event that says who took over from whom;
    - a taken --http-port stops the broker at start, naming the port.
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
#include "broker_peer.h"
#include "cluster.h"
#include "directory.h"
#include "history.h"
#include "http_get.h"
#include "json.h"
#include "json_value.h"

#define NODE_TIMEOUT_MS      1000
#define FAILOVER_TIMEOUT_MS  1500
#define WAIT_MS              10000

/*  A printable id the broker admits, and whose every odd byte needs care
    in JSON or HTML. */
#define ODD_ID      "q\"\\<x>&'"
#define ODD_REGION  "r\\\""

/* --- the writer and the history (no processes) --------------------------- */

static void
test_json_escapes_everything (void **state)
{
    (void) state;
    wc_json_t json;
    wc_json_init (&json);
    const char raw [] = "a\"b\\c\x01\x1f\x7f<>&\xff/";
    wc_json_object (&json);
    wc_json_key (&json, "s");
    wc_json_str (&json, raw, sizeof raw - 1);
    wc_json_key (&json, "a");
    wc_json_array (&json);
    wc_json_u64 (&json, 18446744073709551615ull);
    wc_json_null (&json);
    wc_json_bool (&json, true);
    wc_json_array (&json);
    wc_json_array_end (&json);
    wc_json_i64 (&json, -5);
    wc_json_array_end (&json);
    wc_json_key (&json, "o");
    wc_json_object (&json);
    wc_json_object_end (&json);
    wc_json_object_end (&json);
    assert_false (wc_json_failed (&json));
    assert_string_equal (json.data,
        "{\"s\":\"a\\\"b\\\\c\\u0001\\u001f\\u007f\\u003c\\u003e\\u0026\\u00ff/\","
        "\"a\":[18446744073709551615,null,true,[],-5],\"o\":{}}");

    //  A strict parser takes it and gives the bytes back (0xff as U+00FF)
    jv_t *doc = jv_parse (json.data, json.size);
    assert_non_null (doc);
    assert_string_equal (jv_get_str (doc, "s"), "a\"b\\c\x01\x1f\x7f<>&\xc3\xbf/");
    jv_free (&doc);

    //  Reset starts a new document on the same memory
    wc_json_reset (&json);
    wc_json_array (&json);
    wc_json_cstr (&json, "x");
    wc_json_array_end (&json);
    assert_string_equal (json.data, "[\"x\"]");
    wc_json_fini (&json);
}

/*  Node id's lag history as the page gets it, parsed. */
static jv_t *
s_history_of (wc_history_t *history, const char *id)
{
    wc_json_t json;
    wc_json_init (&json);
    wc_history_json_node (history, id, &json);
    jv_t *doc = jv_parse (json.data, json.size);
    wc_json_fini (&json);
    assert_non_null (doc);
    assert_int_equal (doc->type, JV_ARRAY);
    return doc;
}

static void
test_history_keeps_five_minutes (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    wc_history_t *history = wc_history_new ();
    assert_non_null (dir);
    assert_non_null (history);
    wc_node_info_t info = broker_peer_info ("r1", "eu", WC_ROLE_REPLICA,
                                            "127.0.0.1:7000", "127.0.0.1:7100");
    int64_t now = 1000;
    for (int k = 0; k < WC_HISTORY_SAMPLES + 20; k++, now += 1000) {
        //  r1 is down (silent past the timeout) for samples 310..314
        if (k < 310 || k >= 315) {
            info.lag = (uint64_t) k;
            info.lag_ms = (uint64_t) k * 10;
            assert_true (wc_directory_update (dir, &info, now, NULL) >= 0);
        }
        wc_directory_tick (dir, now, NODE_TIMEOUT_MS);
        assert_int_equal (wc_history_sample (history, dir, now, 5000000 + now), 0);
    }
    assert_int_equal (wc_history_count (history), WC_HISTORY_SAMPLES);
    assert_int_equal (wc_history_last_ms (history), 5000000 + now - 1000);

    //  300 samples, oldest first: sample 20 .. 319, a gap where it was down
    jv_t *doc = s_history_of (history, "r1");
    assert_int_equal (doc->count, WC_HISTORY_SAMPLES);
    for (size_t i = 0; i < doc->count; i++) {
        int k = (int) i + 20;
        jv_t *sample = doc->items [i];
        if (k >= 310 && k < 315) {       /* silent a node timeout: down */
            assert_int_equal (sample->type, JV_NULL);
            continue;
        }
        assert_int_equal (sample->type, JV_ARRAY);
        assert_int_equal (sample->count, 2);
        assert_int_equal ((int) sample->items [0]->number, k);
        assert_int_equal ((int) sample->items [1]->number, k * 10);
    }
    jv_free (&doc);

    //  A node without a history gets one null per sample
    doc = s_history_of (history, "nobody");
    assert_int_equal (doc->count, WC_HISTORY_SAMPLES);
    assert_int_equal (doc->items [0]->type, JV_NULL);
    jv_free (&doc);

    //  The events ring keeps the newest WC_HISTORY_EVENTS, newest first
    for (int i = 0; i < WC_HISTORY_EVENTS + 3; i++) {
        char to [16];
        snprintf (to, sizeof to, "n%d", i);
        wc_failover_event_t event = { "failover", "old", to, "127.0.0.1:7000",
                                      (uint64_t) i + 1, "the primary went silent" };
        wc_history_event (history, &event, 1000 + i);
    }
    wc_json_t json;
    wc_json_init (&json);
    wc_history_json_events (history, &json);
    doc = jv_parse (json.data, json.size);
    wc_json_fini (&json);
    assert_non_null (doc);
    assert_int_equal (doc->count, WC_HISTORY_EVENTS);
    char newest [16];
    snprintf (newest, sizeof newest, "n%d", WC_HISTORY_EVENTS + 2);
    assert_string_equal (jv_get_str (doc->items [0], "to"), newest);
    assert_string_equal (jv_get_str (doc->items [WC_HISTORY_EVENTS - 1], "to"), "n3");
    assert_int_equal ((int) jv_get_num (doc->items [0], "epoch"), WC_HISTORY_EVENTS + 3);
    jv_free (&doc);

    wc_history_destroy (&history);
    wc_history_destroy (&history);
    wc_directory_destroy (&dir);
}

/* --- the broker over HTTP ------------------------------------------------ */

static int
s_setup (void **state)
{
    *state = cluster_new ("statuspage_json");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

/*  GET path, polled until the page's port answers (the broker opens it
    just after the ports cluster_broker_start waits for). */
static void
s_get (int port, const char *path, http_reply_t *reply)
{
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    while (http_request (port, "GET", path, 2000, reply, 1) != 0) {
        if (cluster_now_ms () > deadline)
            fail_msg ("no answer to GET %s on port %d within %d ms", path, port,
                      WAIT_MS);
        cluster_nap_ms (20);
    }
}

/*  The parsed /api/topology, polled until it answers 200 with valid JSON. */
static jv_t *
s_topology (int port, char **raw)
{
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    while (cluster_now_ms () < deadline) {
        http_reply_t reply;
        s_get (port, "/api/topology", &reply);
        if (reply.status == 200) {
            assert_string_equal (reply.content_type, "application/json");
            jv_t *doc = jv_parse (reply.body, reply.body_len);
            if (!doc)
                fail_msg ("/api/topology is not valid JSON: %s", reply.body);
            if (raw)
                *raw = reply.body;
            else
                http_reply_free (&reply);
            return doc;
        }
        http_reply_free (&reply);
        cluster_nap_ms (50);
    }
    fail_msg ("no /api/topology on port %d within %d ms", port, WAIT_MS);
    return NULL;
}

/*  The node with this id, in any region (NULL: not listed). */
static jv_t *
s_node (const jv_t *doc, const char *id, const char **region)
{
    jv_t *regions = jv_get (doc, "regions");
    assert_non_null (regions);
    for (size_t r = 0; r < regions->count; r++) {
        jv_t *nodes = jv_get (regions->items [r], "nodes");
        assert_non_null (nodes);
        for (size_t n = 0; n < nodes->count; n++)
            if (strcmp (jv_get_str (nodes->items [n], "id"), id) == 0) {
                if (region)
                    *region = jv_get_str (regions->items [r], "name");
                return nodes->items [n];
            }
    }
    return NULL;
}

/*  Every field of a node, with its type. */
static void
s_check_node (const jv_t *node)
{
    const char *strings [] = { "id", "addr", "role", "follows", "state" };
    for (size_t i = 0; i < sizeof strings / sizeof strings [0]; i++)
        if (!jv_get_str (node, strings [i]))
            fail_msg ("node field %s missing or not a string", strings [i]);
    const char *numbers [] = { "epoch", "applied_seq", "silent_ms", "lag", "lag_ms" };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers [0]; i++)
        if (jv_get_num (node, numbers [i]) < 0)
            fail_msg ("node field %s missing or not a number", numbers [i]);
    const char *flags [] = { "cluster_primary", "candidate", "diverged", "stalled" };
    for (size_t i = 0; i < sizeof flags / sizeof flags [0]; i++)
        if (!jv_get (node, flags [i]) || jv_get (node, flags [i])->type != JV_BOOL)
            fail_msg ("node field %s missing or not a boolean", flags [i]);
    jv_t *history = jv_get (node, "lag_history");
    assert_non_null (history);
    assert_int_equal (history->type, JV_ARRAY);
}

/*  GET / : the page, whole, with nothing loaded from elsewhere. Asked
    once the JSON is there (the page is published just before it; a
    request in the first instants after the port opens gets a 404). */
static void
s_check_page (int port)
{
    jv_t *doc = s_topology (port, NULL);
    jv_free (&doc);
    http_reply_t reply;
    s_get (port, "/", &reply);
    assert_int_equal (reply.status, 200);
    assert_string_equal (reply.content_type, "text/html; charset=utf-8");
    assert_non_null (strstr (reply.body, "<title>walcast status</title>"));
    assert_non_null (strstr (reply.body, "</html>"));
    const char *outside [] = { "src=", "<link", "@import", "url(", "https:" };
    for (size_t i = 0; i < sizeof outside / sizeof outside [0]; i++)
        if (strstr (reply.body, outside [i]))
            fail_msg ("the page refers to an outside resource (%s)", outside [i]);
    http_reply_free (&reply);
    s_get (port, "/nothing", &reply);
    assert_int_equal (reply.status, 404);
    http_reply_free (&reply);
}

/*  Beat every fake once. */
static void
s_beat_all (broker_fake_t **all, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        broker_told_t told;
        assert_int_equal (broker_fake_beat (all [i], &told), 0);
    }
}

static void
s_fake (broker_fake_t *f, cluster_t *c, const char *id, const char *region,
        int offset, int role, const char *primary, uint64_t epoch, uint64_t seq,
        uint64_t flags)
{
    char addr [32];
    snprintf (addr, sizeof addr, "127.0.0.1:%d", cluster_spare_port (c) + offset);
    assert_int_equal (broker_fake_init (f, cluster_broker_addr (c), id, addr, role,
                                        primary, epoch, seq, flags), 0);
    snprintf (f->region, sizeof f->region, "%s", region);
}

/*  The first topology with everyone in (polled: the broker publishes a
    change within 100 ms): fields, regions, escaping. */
static void
s_check_first (int port)
{
    char *raw = NULL;
    jv_t *doc = NULL;
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    for (;;) {
        doc = s_topology (port, &raw);
        if (jv_get_num (doc, "nodes_up") == 3 || cluster_now_ms () > deadline)
            break;
        jv_free (&doc);
        free (raw);
        cluster_nap_ms (20);
    }
    assert_string_equal (jv_get_str (doc, "primary"), "p1");
    assert_int_equal ((int) jv_get_num (doc, "epoch"), 1);
    assert_int_equal ((int) jv_get_num (doc, "nodes_up"), 3);
    assert_int_equal ((int) jv_get_num (doc, "nodes_down"), 0);
    assert_true (jv_get_num (doc, "version") >= 3);
    assert_true (jv_get_num (doc, "time_ms") > 1.6e12);
    assert_int_equal ((int) jv_get_num (doc, "sample_ms"), 1000);
    assert_int_equal ((int) jv_get_num (doc, "sample_slots"), WC_HISTORY_SAMPLES);

    //  Regions by name, nodes by id
    jv_t *regions = jv_get (doc, "regions");
    assert_int_equal (regions->count, 3);
    assert_string_equal (jv_get_str (regions->items [0], "name"), "eu");
    assert_string_equal (jv_get_str (regions->items [1], "name"), ODD_REGION);
    assert_string_equal (jv_get_str (regions->items [2], "name"), "us");
    const char *region = NULL;
    jv_t *p1 = s_node (doc, "p1", &region);
    assert_non_null (p1);
    s_check_node (p1);
    assert_string_equal (region, "us");
    assert_string_equal (jv_get_str (p1, "role"), "primary");
    assert_string_equal (jv_get_str (p1, "state"), "up");
    assert_true (jv_get (p1, "cluster_primary")->boolean);
    assert_false (jv_get (p1, "candidate")->boolean);
    assert_int_equal ((int) jv_get_num (p1, "applied_seq"), 50);
    jv_t *r1 = s_node (doc, "r1", &region);
    assert_non_null (r1);
    s_check_node (r1);
    assert_string_equal (region, "eu");
    assert_string_equal (jv_get_str (r1, "role"), "replica");
    assert_string_equal (jv_get_str (r1, "follows"), jv_get_str (p1, "addr"));
    assert_false (jv_get (r1, "cluster_primary")->boolean);

    //  The odd id comes back byte for byte, escaped in the raw text; the
    //  one with a control byte was refused and is not listed
    jv_t *odd = s_node (doc, ODD_ID, &region);
    assert_non_null (odd);
    s_check_node (odd);
    assert_string_equal (region, ODD_REGION);
    assert_non_null (strstr (raw, "\"id\":\"q\\\"\\\\\\u003cx\\u003e\\u0026'\""));
    assert_null (strstr (raw, "ctl"));

    //  The promotion of p1 is the first event
    jv_t *events = jv_get (doc, "events");
    assert_int_equal (events->count, 1);
    assert_string_equal (jv_get_str (events->items [0], "kind"), "promotion");
    assert_string_equal (jv_get_str (events->items [0], "from"), "");
    assert_string_equal (jv_get_str (events->items [0], "to"), "p1");
    free (raw);
    jv_free (&doc);
}

/*  Poll until the JSON says r1 took over from p1, which is down. Returns
    the ms it took. */
static int64_t
s_wait_failover (int port, broker_fake_t **all, size_t count)
{
    int64_t start = cluster_now_ms ();
    while (cluster_now_ms () - start < WAIT_MS) {
        s_beat_all (all, count);
        jv_t *doc = s_topology (port, NULL);
        jv_t *p1 = s_node (doc, "p1", NULL);
        jv_t *events = jv_get (doc, "events");
        bool done = strcmp (jv_get_str (doc, "primary"), "r1") == 0
                 && strcmp (jv_get_str (p1, "state"), "down") == 0
                 && events->count == 2;
        if (done) {
            jv_t *event = events->items [0];
            assert_string_equal (jv_get_str (event, "kind"), "failover");
            assert_string_equal (jv_get_str (event, "from"), "p1");
            assert_string_equal (jv_get_str (event, "to"), "r1");
            assert_int_equal ((int) jv_get_num (event, "epoch"), 2);
            assert_non_null (strstr (jv_get_str (event, "reason"), "silent"));
            assert_true (jv_get_num (event, "time_ms") > 1.6e12);
            assert_false (jv_get (p1, "cluster_primary")->boolean);
            assert_true (jv_get (s_node (doc, "r1", NULL), "cluster_primary")->boolean);
            assert_int_equal ((int) jv_get_num (doc, "nodes_down"), 1);
        }
        jv_free (&doc);
        if (done)
            return cluster_now_ms () - start;
        cluster_nap_ms (100);
    }
    fail_msg ("the JSON did not show r1 taking over from p1 within %d ms", WAIT_MS);
    return -1;
}

static void
test_topology_over_http (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int port = cluster_spare_port (c) + 5;
    char http [16], timeout [16];
    snprintf (http, sizeof http, "%d", port);
    snprintf (timeout, sizeof timeout, "%d", FAILOVER_TIMEOUT_MS);
    const char *flags [] = { "--http-port", http, "--failover-timeout", timeout, NULL };
    cluster_set_broker_extra (c, flags);
    assert_int_equal (cluster_broker_start (c, NODE_TIMEOUT_MS), 0);
    s_check_page (port);

    //  p1 (us) is promoted; r1 (eu) and the odd one follow it
    broker_fake_t p1, r1, odd, bad;
    s_fake (&p1, c, "p1", "us", 0, WC_ROLE_PRIMARY, NULL, 0, 0, WC_NODE_CANDIDATE);
    broker_fake_t *one [] = { &p1 };
    assert_true (broker_fake_until (one, 1, &p1, WC_MSG_PROMOTE, 1, NULL, WAIT_MS) >= 0);
    p1.flags = 0;
    p1.epoch = 1;
    p1.seq = 50;
    s_fake (&r1, c, "r1", "eu", 1, WC_ROLE_REPLICA, p1.addr, 1, 50, 0);
    s_fake (&odd, c, ODD_ID, ODD_REGION, 2, WC_ROLE_REPLICA, p1.addr, 1, 40, 0);
    broker_fake_t *all [] = { &p1, &r1, &odd };
    s_beat_all (all, 3);

    //  A control byte in an id: refused at admission
    s_fake (&bad, c, "ctl\x01id", "eu", 3, WC_ROLE_REPLICA, p1.addr, 1, 0, 0);
    broker_told_t told;
    assert_int_equal (broker_fake_beat (&bad, &told), 0);
    assert_int_equal (told.type, WC_MSG_ERROR);
    broker_fake_fini (&bad);
    s_check_first (port);

    //  p1 falls silent: r1 (more data than the odd one) takes over
    int64_t took = s_wait_failover (port, all + 1, 2);
    print_message ("the JSON showed the failover %lld ms after p1's last beat "
                   "(failover timeout %d ms)\n", (long long) took, FAILOVER_TIMEOUT_MS);

    broker_fake_fini (&p1);
    broker_fake_fini (&r1);
    broker_fake_fini (&odd);
    cluster_pass (c);
}

/*  --http-port on a port that is taken: exit 1 at start, naming it. */
static void
test_http_port_taken (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int taken = cluster_spare_port (c) + 6;
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons ((uint16_t) taken) };
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal (bind (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    assert_int_equal (listen (fd, 4), 0);

    char port [16], http [16], path [512];
    snprintf (port, sizeof port, "%d", cluster_spare_port (c) + 8);
    snprintf (http, sizeof http, "%d", taken);
    snprintf (path, sizeof path, "%s/taken.err", cluster_dir (c));
    const char *bin = getenv ("WALCAST_BROKER");
    assert_non_null (bin);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        if (!freopen (path, "w", stderr))
            _exit (127);
        execl (bin, bin, "--port", port, "--http-port", http, (char *) NULL);
        _exit (127);
    }
    int status = 0;
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    while (waitpid (pid, &status, WNOHANG) == 0 && cluster_now_ms () < deadline)
        cluster_nap_ms (20);
    close (fd);
    if (cluster_now_ms () >= deadline) {
        kill (pid, SIGKILL);
        waitpid (pid, &status, 0);
        fail_msg ("the broker kept running with --http-port %s taken", http);
    }
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 1);
    char line [2048];
    assert_int_equal (broker_log_count (path, "cannot start", line, sizeof line), 1);
    print_message ("broker: %s", line);
    assert_non_null (strstr (line, "status page"));
    assert_non_null (strstr (line, http));
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_json_escapes_everything),
        cmocka_unit_test (test_history_keeps_five_minutes),
        cmocka_unit_test_setup_teardown (test_topology_over_http, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_http_port_taken, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
