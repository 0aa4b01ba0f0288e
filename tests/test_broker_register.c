/*  test_broker_register.c - one bad registration cannot break the broker's
    clients (issue 6, defect 4).

    What a user relies on: whatever a node (or anything that speaks to the
    broker's port) registers, every `walcast --broker` call keeps working,
    and the topology the broker serves lists only well-formed nodes. A node
    whose registration is refused is told why: an ERROR with its rid, whose
    text starts with the field at fault.

    With a real primary and replica registered, a fake node (a raw DEALER
    owned by the test) registers the four addresses of the report
    (`nocolon`, `127.0.0.1:0`, `:99999`, `a b:5`), then every other way a
    node_info can be wrong: bad grammar, wrong types, limits, a short
    array, a primary that follows someone. After each of the four, and at
    the end, the CLI's status and get through the broker work, and the
    TOPOLOGY (read raw, so the client's own checks cannot hide anything)
    lists p1 and r1 only, every address well-formed. A known node's bad
    heartbeat is refused too and leaves its entry as it was. And a real
    node started with a region the broker cannot take logs the refusal
    once, with the flag to fix.

    A second node started with the id of a live node, at another address,
    is refused (ECONFLICT) for as long as that node is up: it can neither
    demote a healthy primary nor make the entry flap between two
    addresses. Before, the broker took the newcomer's empty log for the
    primary restarting with less, failed over, and then moved the entry
    back and forth at every beat (a helper counted 38 "moved to" lines in
    10 s).

    A node forgotten (FORGET) is told to the cluster's primary, a FORGET
    of its id on the primary's next three beats, and to no other node, so
    the primary drops it from its /metrics (fake nodes, read raw).

    A broker killed and restarted on its --data lists the nodes it knew
    that are down (the dead primary among them) until they beat or are
    forgotten, and a forgotten node stays forgotten.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zmq.h>
#include "addr.h"
#include "broker_peer.h"
#include "cluster.h"

#define REPLY_MS  3000

static int
s_setup (void **state)
{
    *state = cluster_new ("broker_register");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

//  Read replies until the one with rid; 0 with *msg filled, -1 (printed).
static int
s_reply_for (broker_peer_t *peer, uint64_t rid, wc_msg_t *msg)
{
    int64_t deadline = cluster_now_ms () + REPLY_MS;
    while (cluster_now_ms () < deadline) {
        int rc = broker_peer_recv (peer, 100, msg);
        if (rc == 0 && msg->rid == rid)
            return 0;
    }
    fprintf (stderr, "no reply to rid %llu within %d ms\n", (unsigned long long) rid,
             REPLY_MS);
    return -1;
}

//  The broker's TOPOLOGY, read raw: every node well-formed, and the ids
//  exactly those of want[0..count). 0 or -1 (printed).
static int
s_check_topology (broker_peer_t *peer, const char *const *want, size_t count)
{
    static uint64_t rid = 1000000;
    wc_msg_t msg;
    if (broker_peer_topology (peer, ++rid, REPLY_MS, &msg) != 0)
        return -1;
    int bad = 0;
    size_t found = 0;
    for (uint32_t i = 0; i < msg.u.topology.count; i++) {
        wc_node_info_t info;
        char id [80] = "", addr [300] = "", primary [300] = "";
        int rc = wc_node_info_from_object (&msg.u.topology.items [i], &info);
        if (rc == 0) {
            wc_bytes_printable (id, sizeof id, &info.id);
            wc_bytes_printable (addr, sizeof addr, &info.addr);
            wc_bytes_printable (primary, sizeof primary, &info.primary);
        }
        bool listed = false;
        for (size_t k = 0; k < count; k++)
            listed |= strcmp (id, want [k]) == 0;
        if (rc || !listed || !wc_addr_check ((const char *) info.addr.ptr, info.addr.len,
                                             65533, NULL)
        ||  (info.primary.len && !wc_addr_check ((const char *) info.primary.ptr,
                                                  info.primary.len, 65533, NULL))) {
            fprintf (stderr, "topology item %u: id \"%s\" addr \"%s\" primary \"%s\" "
                     "(%s)\n", i, id, addr, primary,
                     rc ? walcast_errname (rc) : listed ? "bad address" : "unexpected");
            bad++;
        }
        else
            found++;
    }
    if (bad || found != count) {
        fprintf (stderr, "topology version %llu: %u nodes, %d bad, %zu of %zu expected\n",
                 (unsigned long long) msg.u.topology.version, msg.u.topology.count,
                 bad, found, count);
        return -1;
    }
    return 0;
}

//  The CLI through the broker: status exits 0 and lists p1 and r1 up and
//  nothing else; a get of key answers value.
static void
s_check_cli (cluster_t *c, const char *key, const char *value)
{
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                          "--timeout", "3000", "status", NULL);
    if (rc != 0)
        fail_msg ("walcast --broker status: exit %d: %s", rc, err ? err : "");
    int lines = 0;
    for (const char *at = out; at && *at; at = strchr (at, '\n'), at = at ? at + 1 : NULL)
        lines++;
    if (cluster_status_state (out, "p1") != 1 || cluster_status_state (out, "r1") != 1
    ||  lines != 3)
        fail_msg ("walcast --broker status lists more or less than p1 and r1 up:\n%s", out);
    free (out);
    free (err);
    char got [64];
    const char *args [] = { "--broker", cluster_broker_addr (c), "--timeout", "3000",
                            "-v", "get", key, NULL };
    assert_int_equal (cluster_cli_read (c, args, got, sizeof got, NULL, 0, NULL, 0), 0);
    assert_string_equal (got, value);
}

typedef struct {
    const char *what;          /* for the messages */
    int         field;         /* node_info field replaced, or -1 */
    const char *str;           /* replacement, packed as str (NULL: raw) */
    const char *raw;           /* replacement msgpack bytes when str is NULL */
    size_t      raw_len;
    int         nfields;       /* node_info elements sent */
    int         code;          /* WALCAST_E* expected */
    const char *starts;        /* the ERROR text starts with this */
} s_bad_t;

//  Send one bad REGISTER (or NODE_HEARTBEAT) built from base.
static void
s_send_bad (broker_peer_t *peer, int type, uint64_t rid, const wc_node_info_t *base,
            const s_bad_t *bad)
{
    char packed [400];
    const void *raw = bad->raw;
    size_t raw_len = bad->raw_len;
    if (bad->str) {
        size_t len = strlen (bad->str);
        assert_true (len < 256 && len + 2 <= sizeof packed);
        packed [0] = (char) 0xd9;
        packed [1] = (char) len;
        memcpy (packed + 2, bad->str, len);
        raw = packed;
        raw_len = len + 2;
    }
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    broker_peer_pack_node (&body, type, rid, base, bad->nfields, bad->field, raw,
                           raw_len);
    assert_int_equal (broker_peer_send (peer, body.data, body.size), 0);
    msgpack_sbuffer_destroy (&body);
}

//  The reply to it must be an ERROR with its rid, the expected code and
//  a text that starts with the field at fault.
static void
s_expect_refusal (broker_peer_t *peer, int type, uint64_t rid, const s_bad_t *bad)
{
    wc_msg_t msg;
    if (s_reply_for (peer, rid, &msg) != 0)
        fail_msg ("%s %s: no ERROR reply", wc_msg_type_name (type), bad->what);
    char text [1100];
    broker_peer_error_text (&msg, text, sizeof text);
    print_message ("%s %s: %s \"%s\"\n", wc_msg_type_name (type), bad->what,
                   msg.type == WC_MSG_ERROR
                   ? walcast_errname (wc_err_from_wire (msg.u.error.code)) : "?", text);
    if (msg.type != WC_MSG_ERROR || wc_err_from_wire (msg.u.error.code) != bad->code
    ||  strncmp (text, bad->starts, strlen (bad->starts)) != 0)
        fail_msg ("%s %s: expected ERROR %s starting \"%s\"", wc_msg_type_name (type),
                  bad->what, walcast_errname (bad->code), bad->starts);
}

static void
s_refused (broker_peer_t *peer, int type, uint64_t rid, const wc_node_info_t *base,
           const s_bad_t *bad)
{
    s_send_bad (peer, type, rid, base, bad);
    s_expect_refusal (peer, type, rid, bad);
}

//  The four addresses of the report, one at a time, each followed by
//  the clients' view: nothing of it may reach them.
static void
s_reported_addresses (cluster_t *c, broker_peer_t *peer, const wc_node_info_t *base,
                      const char *const *nodes)
{
    static const char *addrs [] = { "nocolon", "127.0.0.1:0", ":99999", "a b:5" };
    for (size_t i = 0; i < 4; i++) {
        s_bad_t bad = { addrs [i], 5, addrs [i], NULL, 0, 11, WALCAST_EPROTO, "addr " };
        s_send_bad (peer, WC_MSG_REGISTER, 10 + i, base, &bad);
        s_check_cli (c, "a", "1");
        s_expect_refusal (peer, WC_MSG_REGISTER, 10 + i, &bad);
        assert_int_equal (s_check_topology (peer, nodes, 2), 0);
    }
}

static const s_bad_t s_bad [] = {
    { "addr port 65534",  5, "127.0.0.1:65534", NULL, 0, 11, WALCAST_EPROTO, "addr " },
    { "addr port 012",    5, "127.0.0.1:012", NULL, 0, 11, WALCAST_EPROTO, "addr " },
    { "addr two colons",  5, "a:1:2", NULL, 0, 11, WALCAST_EPROTO, "addr " },
    { "addr bad ipv6",    5, "[zz::1]:7000", NULL, 0, 11, WALCAST_EPROTO, "addr " },
    { "addr newline",     5, "host\n:7000", NULL, 0, 11, WALCAST_EPROTO, "addr " },
    { "addr empty",       5, "", NULL, 0, 11, WALCAST_EPROTO, "addr " },
    { "addr a number",    5, NULL, "\x07", 1, 11, WALCAST_EPROTO, "addr " },
    { "id empty",         0, "", NULL, 0, 11, WALCAST_EPROTO, "id " },
    { "id with a space",  0, "a b", NULL, 0, 11, WALCAST_EPROTO, "id " },
    { "id with ESC",      0, "a\x1b[2Jb", NULL, 0, 11, WALCAST_EPROTO, "id " },
    { "id of 65 octets",  0, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                          NULL, 0, 11, WALCAST_ETOOBIG, "id " },
    { "id nil",           0, NULL, "\xc0", 1, 11, WALCAST_EPROTO, "id " },
    { "region newline",   1, "eu\nwest", NULL, 0, 11, WALCAST_EPROTO, "region " },
    { "region of 65",     1, "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr",
                          NULL, 0, 11, WALCAST_ETOOBIG, "region " },
    { "role 3",           2, NULL, "\x03", 1, 11, WALCAST_EPROTO, "role " },
    { "role 0",           2, NULL, "\x00", 1, 11, WALCAST_EPROTO, "role " },
    { "role a string",    2, "replica", NULL, 0, 11, WALCAST_EPROTO, "role " },
    { "epoch a string",   3, "1", NULL, 0, 11, WALCAST_EPROTO, "epoch " },
    { "applied_seq -1",   4, NULL, "\xff", 1, 11, WALCAST_EPROTO, "applied_seq " },
    { "primary nocolon",  6, "nocolon", NULL, 0, 11, WALCAST_EPROTO, "primary " },
    { "primary empty on a replica", 6, "", NULL, 0, 11, WALCAST_EPROTO, "primary " },
    { "lag a float",      7, NULL, "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 9, 11,
                          WALCAST_EPROTO, "lag " },
    { "lag_ms nil",       8, NULL, "\xc0", 1, 11, WALCAST_EPROTO, "lag_ms " },
    { "up a number",      9, NULL, "\x01", 1, 11, WALCAST_EPROTO, "up " },
    { "silent_ms a str",  10, "0", NULL, 0, 11, WALCAST_EPROTO, "silent_ms " },
    { "flags a str",      11, "1", NULL, 0, 12, WALCAST_EPROTO, "flags " },
    { "handover_seq nil", 12, NULL, "\xc0", 1, 13, WALCAST_EPROTO, "handover_seq " },
    { "curve_key a uint", 13, NULL, "\x07", 1, 14, WALCAST_EPROTO, "curve_key " },
    { "curve_key of 41",  13, "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr", NULL, 0, 14,
                          WALCAST_ETOOBIG, "curve_key " },
    { "10 fields",        -1, NULL, NULL, 0, 10, WALCAST_EPROTO, "node_info " },
    { "no fields",        -1, NULL, NULL, 0, 0, WALCAST_EPROTO, "node_info " },
};

static void
test_bad_registrations (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    assert_int_equal (cluster_broker_start (c, 0), 0);
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    for (int i = p; i <= r; i++) {
        cluster_set_broker (c, i, true);
        assert_int_equal (cluster_start (c, i), 0);
    }
    for (int i = p; i <= r; i++)
        assert_int_equal (cluster_wait_ready (c, i, 30000), 0);
    char *out = NULL, *err = NULL;
    //  Through the broker: p1 takes writes once the broker promoted it
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                                   "--timeout", "15000", "put", "a", "1", NULL), 0);
    free (out);
    free (err);
    const char *nodes [] = { "p1", "r1" };
    broker_peer_t *peer = broker_peer_new (cluster_broker_addr (c), ZMQ_DEALER);
    assert_non_null (peer);
    int64_t deadline = cluster_now_ms () + 10000;
    while (s_check_topology (peer, nodes, 2) != 0) {
        assert_true (cluster_now_ms () < deadline);
        cluster_nap_ms (100);
    }

    char fake_addr [32];
    snprintf (fake_addr, sizeof fake_addr, "127.0.0.1:%d", cluster_spare_port (c));
    wc_node_info_t base = broker_peer_info ("fake", "test", 2, fake_addr,
                                            cluster_addr (c, p));
    s_reported_addresses (c, peer, &base, nodes);

    //  Every other way to be wrong, as REGISTER and as NODE_HEARTBEAT
    uint64_t rid = 100;
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad [0]; i++) {
        s_refused (peer, WC_MSG_REGISTER, rid++, &base, &s_bad [i]);
        s_refused (peer, WC_MSG_NODE_HEARTBEAT, rid++, &base, &s_bad [i]);
    }
    //  A primary follows no one
    wc_node_info_t as_primary = base;
    as_primary.role = 1;
    s_bad_t follows = { "primary set on a primary", -1, NULL, NULL, 0, 11,
                        WALCAST_EPROTO, "primary " };
    s_refused (peer, WC_MSG_REGISTER, rid++, &as_primary, &follows);
    s_check_cli (c, "a", "1");
    assert_int_equal (s_check_topology (peer, nodes, 2), 0);

    //  A known node's bad heartbeat changes nothing of its entry. (It is
    //  new: epoch 0, an empty epoch history, is admitted.)
    base.epoch = 0;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    broker_peer_pack_node (&body, WC_MSG_REGISTER, rid++, &base, 11, -1, NULL, 0);
    assert_int_equal (broker_peer_send (peer, body.data, body.size), 0);
    msgpack_sbuffer_destroy (&body);
    const char *three [] = { "fake", "p1", "r1" };
    deadline = cluster_now_ms () + 10000;
    while (s_check_topology (peer, three, 3) != 0) {
        assert_true (cluster_now_ms () < deadline);
        cluster_nap_ms (100);
    }
    s_bad_t moved = { "known node's addr nocolon", 5, "nocolon", NULL, 0, 11,
                      WALCAST_EPROTO, "addr " };
    s_refused (peer, WC_MSG_NODE_HEARTBEAT, rid++, &base, &moved);
    assert_int_equal (s_check_topology (peer, three, 3), 0);

    broker_peer_destroy (&peer);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  A real node whose flags would make a node_info the broker cannot take
//  (a region with a space) is refused at start, naming the flag, rather
//  than beating in vain: the broker would refuse every REGISTER (EPROTO)
//  and clients would never see it. (A broker's refusal of a node it
//  cannot admit is said in the node's log: test_cluster_curve.)
static void
test_refused_node_says_why (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    assert_int_equal (cluster_broker_start (c, 0), 0);
    int n = cluster_add (c, "n1", NULL, NULL);
    cluster_set_broker (c, n, true);
    cluster_set_region (c, n, "eu west");
    assert_int_equal (cluster_start (c, n), 0);
    int64_t deadline = cluster_now_ms () + 10000;
    while (cluster_running (c, n) && cluster_now_ms () < deadline)
        cluster_nap_ms (20);
    assert_false (cluster_running (c, n));
    char text [8192] = "";
    FILE *log = fopen (cluster_log_path (c, n), "r");
    assert_non_null (log);
    text [fread (text, 1, sizeof text - 1, log)] = 0;
    fclose (log);
    print_message ("n1's log:\n%s", text);
    assert_non_null (strstr (text, "walcast-node: --region \"eu west\" has byte 0x20 at "
                                   "offset 2"));
    broker_peer_t *peer = broker_peer_new (cluster_broker_addr (c), ZMQ_DEALER);
    assert_non_null (peer);
    assert_int_equal (s_check_topology (peer, NULL, 0), 0);
    broker_peer_destroy (&peer);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  Start primary p1 and its replica r1, both registered with the
    broker (which runs): *p and *r are their indexes. */
static void
s_start_p1_r1 (cluster_t *c, int *p, int *r)
{
    *p = cluster_add (c, "p1", NULL, NULL);
    *r = cluster_add (c, "r1", cluster_addr (c, *p), NULL);
    cluster_set_broker (c, *p, true);
    cluster_set_broker (c, *r, true);
    assert_int_equal (cluster_start (c, *p), 0);
    assert_int_equal (cluster_start (c, *r), 0);
}

static void
test_duplicate_id_is_refused (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    assert_int_equal (cluster_broker_start (c, 1000), 0);
    int p, r;
    s_start_p1_r1 (c, &p, &r);
    walcast_status_t st = { .role = "" };
    int64_t deadline = cluster_now_ms () + 20000;
    while (strcmp (st.role, "primary") != 0 && cluster_now_ms () < deadline)
        if (cluster_status (c, p, &st) != 0 || strcmp (st.role, "primary") != 0)
            cluster_nap_ms (50);
    assert_string_equal (st.role, "primary");
    uint64_t epoch = st.epoch;
    assert_int_equal (cluster_load (c, p, 0, 10, 1, NULL), 0);

    //  Another process with p1's id, its own data and port
    long mark = cluster_broker_log_mark (c);
    int dup = cluster_add (c, "dup", NULL, NULL);
    cluster_set_broker (c, dup, true);
    const char *const same_id [] = { "--id", "p1", NULL };
    cluster_set_extra (c, dup, same_id);
    assert_int_equal (cluster_start (c, dup), 0);
    assert_int_equal (cluster_wait_log (c, dup, "broker refused us: node id p1 is in use "
                                        "by a live node at", 0, 10000), 0);
    char line [512];
    assert_int_equal (cluster_log_find (c, dup, "broker refused us:", 0, 0, line,
                                        sizeof line), 0);
    print_message ("dup: %s\n", line);
    //  The broker refused it before anything else could happen to p1's
    //  entry: no failover, no move, writes through the broker go on
    assert_int_equal (cluster_broker_log_find (c, "failover:", mark, 0, line,
                                               sizeof line), -1);
    assert_int_equal (cluster_broker_log_find (c, "node p1 moved", mark, 0, line,
                                               sizeof line), -1);
    assert_int_equal (cluster_status (c, p, &st), 0);
    assert_string_equal (st.role, "primary");
    assert_true (st.epoch == epoch);
    walcast_t *h = cluster_broker_client (c, 5000);
    assert_non_null (h);
    walcast_pos_t pos;
    assert_int_equal (walcast_put (h, "after", 5, "1", 1, &pos), 0);
    assert_true (pos.epoch == epoch);
    walcast_destroy (&h);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  `walcast forget NODE`: a replica removed for good (killed, down)
    leaves the directory, and so the table and the down count that an
    alert would watch; a node that is up, the primary and an unknown id
    are refused with the reason; a forgotten node that runs again
    registers again. Before, a removed replica stayed listed down until
    the broker restarted (a helper following OPERATIONS.md). */
static void
test_forget (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    assert_int_equal (cluster_broker_start (c, 1000), 0);
    int p, r;
    s_start_p1_r1 (c, &p, &r);
    walcast_t *h = cluster_broker_client (c, 5000);
    assert_non_null (h);
    int64_t deadline = cluster_now_ms () + 20000;
    for (bool both = false; !both; ) {
        walcast_node_info_t nodes [4];
        size_t n = 0;
        both = walcast_nodes (h, nodes, 4, &n) == 0 && n == 2 && nodes [0].up
            && nodes [1].up;
        if (cluster_now_ms () > deadline)
            fail_msg ("the broker never listed p1 and r1 up");
        if (!both)
            cluster_nap_ms (50);
    }
    assert_int_equal (walcast_forget (h, "r1"), WALCAST_ECONFLICT);
    print_message ("r1 up: %s\n", walcast_last_detail (h));
    assert_non_null (strstr (walcast_last_detail (h), "node r1 is up"));
    assert_int_equal (walcast_forget (h, "nosuch"), WALCAST_ENOTFOUND);

    //  r1 removed: killed, down, forgotten (the CLI), gone from status
    assert_int_equal (cluster_kill (c, r), 0);
    char *out = NULL, *err = NULL;
    deadline = cluster_now_ms () + 20000;
    while (true) {
        assert_int_equal (cluster_cli (c, NULL, &out, &err, "--broker",
                                       cluster_broker_addr (c), "status", NULL), 0);
        bool down = cluster_status_state (out, "r1") == 0;
        free (out);
        free (err);
        if (down)
            break;
        if (cluster_now_ms () > deadline)
            fail_msg ("r1 never listed down");
        cluster_nap_ms (50);
    }
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                                   "forget", "r1", NULL), 0);
    assert_string_equal (out, "");
    free (out);
    free (err);
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                                   "status", NULL), 0);
    print_message ("after forget r1:\n%s", out);
    assert_int_equal (cluster_status_state (out, "p1"), 1);
    assert_int_equal (cluster_status_state (out, "r1"), -1);
    free (out);
    free (err);
    char line [512];
    assert_int_equal (cluster_broker_log_find (c, "node r1 forgotten", 0, 0, line,
                                               sizeof line), 0);
    //  Again: unknown now (exit 3, the broker's words)
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                                   "forget", "r1", NULL), 3);
    assert_non_null (strstr (err, "no node r1 in the directory"));
    free (out);
    free (err);

    //  The primary, even down, is the broker's to replace
    assert_int_equal (walcast_forget (h, "p1"), WALCAST_ECONFLICT);
    assert_non_null (strstr (walcast_last_detail (h), "the cluster's primary"));

    //  r1 runs again: it registers again
    assert_int_equal (cluster_start (c, r), 0);
    deadline = cluster_now_ms () + 20000;
    while (true) {
        assert_int_equal (cluster_cli (c, NULL, &out, &err, "--broker",
                                       cluster_broker_addr (c), "status", NULL), 0);
        bool up = cluster_status_state (out, "r1") == 1;
        free (out);
        free (err);
        if (up)
            break;
        if (cluster_now_ms () > deadline)
            fail_msg ("r1 never registered again");
        cluster_nap_ms (50);
    }
    walcast_destroy (&h);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  The broker's status table: the CLI's stdout (malloc'd), polled until
    the broker answers and want(out) holds; fails the test past 20 s. */
static char *
s_status_until (cluster_t *c, int (*want) (const char *out), const char *what)
{
    int64_t deadline = cluster_now_ms () + 20000;
    while (true) {
        char *out = NULL, *err = NULL;
        int rc = cluster_cli (c, NULL, &out, &err, "--broker", cluster_broker_addr (c),
                              "status", NULL);
        free (err);
        if (rc == 0 && want (out))
            return out;
        if (cluster_now_ms () > deadline) {
            print_message ("last status (exit %d):\n%s", rc, out ? out : "");
            free (out);
            fail_msg ("status never showed %s", what);
        }
        free (out);
        cluster_nap_ms (50);
    }
}

static int s_p1_up (const char *out) { return cluster_status_state (out, "p1") == 1; }
static int s_both_up (const char *out)
{
    return cluster_status_state (out, "p1") == 1 && cluster_status_state (out, "r1") == 1;
}
static int s_r1_down (const char *out) { return cluster_status_state (out, "r1") == 0; }
static int s_p1_down (const char *out) { return cluster_status_state (out, "p1") == 0; }
static int s_listed (const char *out) { return out [0] != '\0'; }

/*  The node timeout of the broker that restarts: long enough that a
    FORGET sent at once after a restart comes within it, whatever the
    machine's load. */
#define RESTART_NODE_TIMEOUT_MS  3000

/*  The broker SIGKILLed and started again on its --data. */
static void
s_broker_restart (cluster_t *c)
{
    assert_int_equal (cluster_broker_kill (c), 0);
    assert_int_equal (cluster_broker_start (c, RESTART_NODE_TIMEOUT_MS), 0);
}

/*  A broker killed and restarted on its --data still lists the nodes
    that are down (OPERATIONS.md: a down node stays listed, and so the
    alert on down nodes stays on, until `forget`), the dead primary
    among them, and does not list again a node that was forgotten. A
    FORGET of such a node before the broker could have heard it (a node
    timeout after its start) is refused: it may still run (the second
    soak forgot a live node 166 ms after a restart). Before,
    a restarted broker listed only the nodes that beat again: a down
    replica vanished, and a dead primary was named in the cluster state
    with no row in `status` (a helper's failover soak). */
static void
test_restart_keeps_down_nodes (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    char data [512];
    snprintf (data, sizeof data, "%s/broker-data", cluster_dir (c));
    const char *flags [] = { "--data", data, NULL };
    cluster_set_broker_extra (c, flags);
    assert_int_equal (cluster_broker_start (c, RESTART_NODE_TIMEOUT_MS), 0);
    int p, r;
    s_start_p1_r1 (c, &p, &r);
    free (s_status_until (c, s_both_up, "p1 and r1 up"));

    //  r1 dies; the broker that lists it down is killed and restarted
    assert_int_equal (cluster_kill (c, r), 0);
    free (s_status_until (c, s_r1_down, "r1 down"));
    long mark = cluster_broker_log_mark (c);
    s_broker_restart (c);
    //  At once: the broker has not heard from anyone yet
    char *out = NULL, *err = NULL;
    assert_int_equal (cluster_cli (c, NULL, &out, &err, "--broker",
                                   cluster_broker_addr (c), "forget", "r1", NULL), 3);
    print_message ("forget at once: %s", err);
    assert_non_null (strstr (err, "less than the node timeout (3000 ms): the broker "
                                  "restarted (or did not run) lately"));
    assert_non_null (strstr (err, "it may still run"));
    free (out);
    free (err);
    out = s_status_until (c, s_p1_up, "p1 up after the broker's restart");
    print_message ("after the restart:\n%s", out);
    assert_int_equal (cluster_status_state (out, "r1"), 0);
    free (out);
    char line [512];
    assert_int_equal (cluster_broker_log_find (c, "directory: 2 nodes known before the "
                                               "restart", mark, 0, line, sizeof line), 0);
    assert_string_equal (line, "directory: 2 nodes known before the restart, listed "
                               "down until they beat");

    //  Forgotten once it has been silent a node timeout, it stays
    //  forgotten across a restart
    int64_t deadline = cluster_now_ms () + 20000;
    while (cluster_cli (c, NULL, &out, NULL, "--broker", cluster_broker_addr (c),
                        "forget", "r1", NULL) != 0) {
        free (out);
        if (cluster_now_ms () > deadline)
            fail_msg ("forget r1 never succeeded");
        cluster_nap_ms (100);
    }
    free (out);
    s_broker_restart (c);
    out = s_status_until (c, s_p1_up, "p1 up after the second restart");
    assert_int_equal (cluster_status_state (out, "r1"), -1);
    free (out);

    //  The primary dies, then the broker: the dead primary keeps its row
    assert_int_equal (cluster_kill (c, p), 0);
    free (s_status_until (c, s_p1_down, "p1 down"));
    s_broker_restart (c);
    out = s_status_until (c, s_listed, "a table after the third restart");
    print_message ("the primary dead, after the restart:\n%s", out);
    assert_int_equal (cluster_status_state (out, "p1"), 0);
    assert_non_null (strstr (out, "primary"));
    free (out);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  A fake node at the test's spare port + offset; primary NULL for a
    primary. */
static void
s_fake (broker_fake_t *f, cluster_t *c, const char *id, int offset, int role,
        const char *primary)
{
    char addr [32];
    snprintf (addr, sizeof addr, "127.0.0.1:%d", cluster_spare_port (c) + offset);
    assert_int_equal (broker_fake_init (f, cluster_broker_addr (c), id, addr, role,
                                        primary, 1, 40, 0), 0);
}

/*  One beat of f; the id of the FORGET it was told with it ("" none). */
static void
s_beat (broker_fake_t *f, char *forgotten, size_t size)
{
    broker_told_t told;
    if (broker_fake_beat (f, &told) != 0)
        fail_msg ("%s: no answer to its beat (see above)", f->id);
    snprintf (forgotten, size, "%s", told.forgotten);
}

/*  Beat p1 and r1 every 100 ms (neither is told of a forget) until the
    broker lists each of ids down. */
static void
s_until_down (broker_fake_t *p1, broker_fake_t *r1, broker_peer_t *client,
              uint64_t *rid, const char *const *ids, size_t count)
{
    int64_t deadline = cluster_now_ms () + 10000;
    for (;;) {
        char forgotten [16];
        s_beat (p1, forgotten, sizeof forgotten);
        assert_string_equal (forgotten, "");
        s_beat (r1, forgotten, sizeof forgotten);
        assert_string_equal (forgotten, "");
        wc_msg_t msg;
        assert_int_equal (broker_peer_topology (client, ++*rid, REPLY_MS, &msg), 0);
        size_t down = 0;
        for (uint32_t i = 0; i < msg.u.topology.count; i++) {
            wc_node_info_t info;
            assert_int_equal (wc_node_info_from_object (&msg.u.topology.items [i],
                                                        &info), 0);
            for (size_t k = 0; k < count; k++)
                down += !info.up && info.id.len == strlen (ids [k])
                     && memcmp (info.id.ptr, ids [k], info.id.len) == 0;
        }
        if (down == count)
            return;
        if (cluster_now_ms () > deadline)
            fail_msg ("the broker never listed %s down", ids [0]);
        cluster_nap_ms (100);
    }
}

/*  FORGET(id) from client with rid: the reply's type (TOPOLOGY, ERROR). */
static int
s_forget (broker_peer_t *client, const char *id, uint64_t rid)
{
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = WC_MSG_FORGET;
    msg.rid = rid;
    msg.u.forget.node_id = (wc_bytes_t) { (const uint8_t *) id, (uint32_t) strlen (id) };
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    assert_int_equal (wc_msg_encode (&msg, &body), 0);
    assert_int_equal (broker_peer_send (client, body.data, body.size), 0);
    msgpack_sbuffer_destroy (&body);
    wc_msg_t reply;
    assert_int_equal (s_reply_for (client, rid, &reply), 0);
    return reply.type;
}

/*  A node forgotten at the broker is told to the cluster's primary (a
    FORGET of its id, broker to node, with the rid of the beat it comes
    with), so that the primary drops it from its ACK table and its
    /metrics: on the primary's next three beats, for a lost reply to cost
    nothing, one FORGET a beat; to no other node, and never again. Two
    forgets in a row reach it three times each. A forgotten node that
    runs again before the primary beats is not told of. Before, the
    primary was told nothing, and kept the node's lag series. */
static void
test_forget_told_to_the_primary (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    assert_int_equal (cluster_broker_start (c, 1000), 0);
    broker_fake_t p1, r1, r2, r3;
    s_fake (&p1, c, "p1", 0, WC_ROLE_PRIMARY, NULL);
    s_fake (&r1, c, "r1", 1, WC_ROLE_REPLICA, p1.addr);
    s_fake (&r2, c, "r2", 2, WC_ROLE_REPLICA, p1.addr);
    s_fake (&r3, c, "r3", 3, WC_ROLE_REPLICA, p1.addr);
    broker_fake_t *all [] = { &p1, &r1, &r2, &r3 };
    for (size_t k = 0; k < 4; k++)
        assert_int_equal (broker_fake_expect (all [k], 0, 0, NULL), 0);
    broker_peer_t *client = broker_peer_new (cluster_broker_addr (c), ZMQ_DEALER);
    assert_non_null (client);
    uint64_t rid = 100;

    //  r2 and r3 stop, go down, and are forgotten one after the other
    const char *const gone [] = { "r2", "r3" };
    s_until_down (&p1, &r1, client, &rid, gone, 2);
    assert_int_equal (s_forget (client, "r2", ++rid), WC_MSG_TOPOLOGY);
    assert_int_equal (s_forget (client, "r3", ++rid), WC_MSG_TOPOLOGY);
    int told_r2 = 0, told_r3 = 0;
    for (int beat = 0; beat < 6; beat++) {
        char forgotten [16];
        s_beat (&p1, forgotten, sizeof forgotten);
        print_message ("p1's beat %d: told FORGET(%s)\n", beat + 1, forgotten);
        told_r2 += strcmp (forgotten, "r2") == 0;
        told_r3 += strcmp (forgotten, "r3") == 0;
        s_beat (&r1, forgotten, sizeof forgotten);
        assert_string_equal (forgotten, "");
    }
    assert_int_equal (told_r2, 3);
    assert_int_equal (told_r3, 3);
    s_until_down (&p1, &r1, client, &rid, NULL, 0);     /* and no more */

    //  r2 runs again, stops, is forgotten, and runs again before p1 beats:
    //  p1 is told nothing (the node would only ACK again)
    r2.admitted = false;
    assert_int_equal (broker_fake_expect (&r2, 0, 0, NULL), 0);
    const char *const r2_only [] = { "r2" };
    s_until_down (&p1, &r1, client, &rid, r2_only, 1);
    assert_int_equal (s_forget (client, "r2", ++rid), WC_MSG_TOPOLOGY);
    r2.admitted = false;
    assert_int_equal (broker_fake_expect (&r2, 0, 0, NULL), 0);
    for (int beat = 0; beat < 3; beat++) {
        char forgotten [16];
        s_beat (&p1, forgotten, sizeof forgotten);
        assert_string_equal (forgotten, "");
    }
    broker_peer_destroy (&client);
    for (size_t k = 0; k < 4; k++)
        broker_fake_fini (all [k]);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_bad_registrations, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_refused_node_says_why, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_duplicate_id_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_forget, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_restart_keeps_down_nodes, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_forget_told_to_the_primary, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
