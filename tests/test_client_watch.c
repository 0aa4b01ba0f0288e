/*  test_client_watch.c - the change feed loses nothing (issue 6, defect 11).

    What a user relies on:
    - a `walcast watch PREFIX` that falls behind (stopped with SIGSTOP
      during a load of 100,000 writes, so the node's stream drops what it
      cannot queue) still prints every change to a key under PREFIX,
      exactly once, in seq order, once it runs again: it finds the loss
      and fetches what it missed over the catch-up channel, as a replica
      does;
    - `watch --from SEQ` prints every change from SEQ on, history
      included, so a consumer that restarts from the seq after the last
      one it printed misses nothing and repeats nothing;
    - when the node no longer holds SEQ, the watch goes on from another
      node that does, or, when none does, says so on stderr and exits 3
      instead of printing a feed with a hole;
    - walcast_watch reports where it stopped and goes on from there;
    - a tail of changes the stream never delivered, known only from the
      heartbeat's last_seq, is fetched and printed too;
    - when a failover rolls back changes the watch already printed (it
      watched a deposed primary), it says so and from which seq to watch
      again, and exits 3, instead of printing the new history's later
      changes as if the printed ones had stayed.

    Real nodes run the SIGSTOP, --from and position tests; fake ones
    (tests/fake.h) the others: one whose catch-up port answers every
    FETCH with ERANGE, one whose stream carries heartbeats only.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cluster.h"
#include "fake.h"

/*  Writes while the watcher is stopped, and the size of their values:
    enough bytes (about 80 MB) to overflow what the node's stream queue
    (WC_NODE_STREAM_BUDGET) and the kernel hold for a subscriber that does
    not read, so the watcher must repair. */
#define LOAD_LINES   100000
#define VALUE_LEN    800

static int
s_setup (void **state)
{
    *state = cluster_new ("client_watch");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

static uint64_t
s_put (walcast_t *h, const char *key, const char *value)
{
    walcast_pos_t pos;
    assert_int_equal (walcast_put (h, key, strlen (key), value, strlen (value), &pos), 0);
    return pos.seq;
}

//  Poll a background CLI's stdout until it contains needle; 0 or -1
//  (said on stderr unless quiet).
static int
s_wait_output_q (cluster_t *c, int proc, const char *needle, int timeout_ms, bool quiet)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (true) {
        char *out = cluster_proc_output (c, proc);
        bool found = strstr (out, needle) != NULL;
        if (found || cluster_now_ms () > deadline) {
            if (!found && !quiet) {
                size_t len = strlen (out);
                fprintf (stderr, "watch output has no \"%s\" after %d ms; it ends "
                         "with:\n%s\n", needle, timeout_ms,
                         len > 600 ? out + len - 600 : out);
            }
            free (out);
            return found ? 0 : -1;
        }
        free (out);
        if (!cluster_proc_running (c, proc))
            return -1;
        cluster_nap_ms (20);
    }
}

//  A whole file, NUL-terminated (malloc'd; "" when it cannot be read).
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "r");
    char *text = NULL;
    size_t len = 0;
    if (file) {
        fseek (file, 0, SEEK_END);
        long size = ftell (file);
        fseek (file, 0, SEEK_SET);
        text = malloc (size > 0 ? (size_t) size + 1 : 1);
        if (text && size > 0)
            len = fread (text, 1, (size_t) size, file);
        fclose (file);
    }
    if (!text)
        text = malloc (1);
    assert_non_null (text);
    text [len] = 0;
    return text;
}

static int
s_wait_output (cluster_t *c, int proc, const char *needle, int timeout_ms)
{
    return s_wait_output_q (c, proc, needle, timeout_ms, false);
}

//  Write markers under prefix until the watcher prints one: its
//  subscription is live. Returns the seq of the last marker, which the
//  watcher printed.
static uint64_t
s_sync (cluster_t *c, walcast_t *h, int watcher, const char *prefix)
{
    int64_t deadline = cluster_now_ms () + 10000;
    uint64_t seq = 0;
    char key [64], line [96];
    for (int marker = 0; ; marker++) {
        snprintf (key, sizeof key, "%ssync%d", prefix, marker);
        seq = s_put (h, key, "x");
        snprintf (line, sizeof line, "%llu put %s x\n", (unsigned long long) seq, key);
        if (s_wait_output_q (c, watcher, line, 100, true) == 0)
            return seq;
        assert_true (cluster_proc_running (c, watcher));
        assert_true (cluster_now_ms () < deadline);
    }
}

//  Compare what a watcher printed after the line that starts with
//  `marker` with expect, line by line; print the first difference. 0
//  when equal.
static int
s_compare (const char *out, const char *marker, const char *expect)
{
    const char *got = strstr (out, marker);
    if (!got || !strchr (got, '\n')) {
        fprintf (stderr, "watch output has no line \"%s...\"\n", marker);
        return -1;
    }
    got = strchr (got, '\n') + 1;
    int line = 1;
    const char *got_line = got, *expect_line = expect;
    while (*got && *got == *expect) {
        if (*got == '\n') {
            line++;
            got_line = got + 1;
            expect_line = expect + 1;
        }
        got++;
        expect++;
    }
    if (*got == 0 && *expect == 0)
        return 0;
    fprintf (stderr, "watch output differs at line %d after the marker:\n"
             "  got:      %.*s\n  expected: %.*s\n", line,
             (int) strcspn (got_line, "\n"), got_line,
             (int) strcspn (expect_line, "\n"), expect_line);
    return -1;
}

static void
test_sigstop_during_load (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    walcast_t *h = cluster_client (c, p);
    assert_non_null (h);

    int watcher = cluster_cli_spawn (c, "--debug", "--node", cluster_addr (c, p), "watch",
                                     "a:", NULL);
    assert_true (watcher >= 0);
    uint64_t base = s_sync (c, h, watcher, "a:");
    char after [96];
    snprintf (after, sizeof after, "%llu put a:sync", (unsigned long long) base);

    //  The load, half of it under the prefix, while the watcher sleeps
    size_t cap = (size_t) LOAD_LINES * (VALUE_LEN + 40);
    char pad [VALUE_LEN + 1];
    for (int i = 0; i < VALUE_LEN; i++)
        pad [i] = "0123456789abcdefghijklmnopqrstuvwxyz" [i % 36];
    pad [VALUE_LEN] = 0;
    char *input = malloc (cap);
    char *expect = malloc (cap);
    assert_non_null (input);
    assert_non_null (expect);
    size_t in_len = 0, ex_len = 0;
    for (int i = 0; i < LOAD_LINES; i++) {
        char line [VALUE_LEN + 40];
        int n = snprintf (line, sizeof line, "%s:%07d v%d-%s", i % 2 ? "b" : "a", i, i,
                          pad);
        memcpy (input + in_len, line, (size_t) n);
        in_len += (size_t) n;
        input [in_len++] = '\n';
        if (i % 2 == 0)
            ex_len += (size_t) snprintf (expect + ex_len, cap - ex_len, "%llu put %s\n",
                                         (unsigned long long) (base + 1 + (uint64_t) i),
                                         line);
    }
    input [in_len] = 0;
    assert_int_equal (cluster_proc_signal (c, watcher, SIGSTOP), 0);
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (c, input, &out, &err, "--node", cluster_addr (c, p), "load", NULL);
    assert_int_equal (rc, 0);
    char counts [64];
    snprintf (counts, sizeof counts, "%d %llu\n", LOAD_LINES,
              (unsigned long long) (base + LOAD_LINES));
    assert_string_equal (out, counts);
    free (out);
    free (err);
    free (input);
    assert_int_equal (cluster_proc_signal (c, watcher, SIGCONT), 0);

    uint64_t end = s_put (h, "a:end", "1");
    ex_len += (size_t) snprintf (expect + ex_len, cap - ex_len, "%llu put a:end 1\n",
                                 (unsigned long long) end);
    assert_int_equal (s_wait_output (c, watcher, "put a:end 1\n", 60000), 0);
    char *printed = cluster_proc_output (c, watcher);
    int same = s_compare (printed, after, expect);
    print_message ("watcher stopped during a load of %d writes printed %s\n", LOAD_LINES,
                   same == 0 ? "every change under a:, once, in order" : "a different feed");
    assert_int_equal (same, 0);
    free (printed);
    free (expect);
    //  ... and it did have to repair: the stream lost changes while it
    //  was stopped (its stderr is cliN.log, N its process index)
    char log_path [4096];
    snprintf (log_path, sizeof log_path, "%s/cli%d.log", cluster_dir (c), watcher);
    char *log = s_slurp (log_path);
    print_message ("the watcher's debug lines:\n%s", log);
    assert_non_null (strstr (log, "watch: gap: "));
    assert_non_null (strstr (log, "watch: repaired seqs "));
    free (log);
    assert_int_equal (cluster_proc_stop (c, watcher, 5000), 0);
    walcast_destroy (&h);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

//  The last "SEQ put" line of a watcher's output: its seq.
static uint64_t
s_last_seq (const char *out)
{
    const char *last = NULL;
    for (const char *line = out; *line; ) {
        if (*line >= '0' && *line <= '9')
            last = line;
        line = strchr (line, '\n');
        if (!line)
            break;
        line++;
    }
    return last ? strtoull (last, NULL, 10) : 0;
}

static void
test_from_across_restart (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    walcast_t *h = cluster_client (c, p);
    assert_non_null (h);

    //  History, written before any watcher: seqs 1..20
    char expect [4096] = "";
    size_t len = 0;
    for (int i = 0; i < 20; i++) {
        char key [16];
        snprintf (key, sizeof key, "%s:%d", i % 2 ? "b" : "a", i);
        uint64_t seq = s_put (h, key, "old");
        if (i % 2 == 0)
            len += (size_t) snprintf (expect + len, sizeof expect - len, "%llu put %s old\n",
                                      (unsigned long long) seq, key);
    }
    //  The first consumer reads from the start, then stops
    int first = cluster_cli_spawn (c, "--node", cluster_addr (c, p), "watch", "--from", "1",
                                   "a:", NULL);
    assert_true (first >= 0);
    assert_int_equal (s_wait_output (c, first, "put a:18 old\n", 10000), 0);
    assert_int_equal (cluster_proc_stop (c, first, 5000), 0);
    char *out1 = cluster_proc_output (c, first);
    assert_string_equal (out1, expect);
    uint64_t last = s_last_seq (out1);
    assert_int_equal (last, 19);

    //  Changes while no consumer runs, then the consumer comes back
    //  from the seq after its last
    len = 0;
    expect [0] = 0;
    for (int i = 20; i < 40; i++) {
        char key [16];
        snprintf (key, sizeof key, "%s:%d", i % 2 ? "b" : "a", i);
        uint64_t seq = s_put (h, key, "new");
        if (i % 2 == 0)
            len += (size_t) snprintf (expect + len, sizeof expect - len, "%llu put %s new\n",
                                      (unsigned long long) seq, key);
    }
    char from [32];
    snprintf (from, sizeof from, "%llu", (unsigned long long) (last + 1));
    int second = cluster_cli_spawn (c, "--node", cluster_addr (c, p), "watch", "--from", from,
                                    "a:", NULL);
    assert_true (second >= 0);
    assert_int_equal (s_wait_output (c, second, "put a:38 new\n", 10000), 0);
    //  ... and goes on live
    uint64_t live = s_put (h, "a:live", "now");
    len += (size_t) snprintf (expect + len, sizeof expect - len, "%llu put a:live now\n",
                              (unsigned long long) live);
    assert_int_equal (s_wait_output (c, second, "put a:live now\n", 10000), 0);
    char *out2 = cluster_proc_output (c, second);
    assert_string_equal (out2, expect);
    print_message ("watch --from %s after a restart printed:\n%s", from, out2);
    free (out1);
    free (out2);
    assert_int_equal (cluster_proc_stop (c, second, 5000), 0);

    //  A position whose epoch no node has reached (a mistyped --epoch, or
    //  one of another cluster): the watch says so and exits 3, printing
    //  nothing. Before, it waited for ever for the node to reach that
    //  epoch (an auditor's find)
    walcast_status_t st;
    assert_int_equal (cluster_status (c, p, &st), 0);
    char ahead [32], said [64];
    snprintf (ahead, sizeof ahead, "%llu", (unsigned long long) st.epoch + 99);
    snprintf (said, sizeof said, "epoch %s", ahead);
    int wrong = cluster_cli_spawn (c, "--node", cluster_addr (c, p), "watch", "--from", "3",
                                   "--epoch", ahead, "a:", NULL);
    assert_true (wrong >= 0);
    int status = cluster_proc_wait (c, wrong, 30000);
    char *out3 = cluster_proc_output (c, wrong), *err3 = cluster_proc_errors (c, wrong);
    print_message ("watch --from 3 --epoch %s: exit %d, stdout '%s', stderr '%s'\n",
                   ahead, status, out3, err3);
    if (status < 0)
        cluster_proc_stop (c, wrong, 5000);
    assert_int_equal (status, 3);
    assert_string_equal (out3, "");
    assert_non_null (strstr (err3, said));
    free (out3);
    free (err3);
    walcast_destroy (&h);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/* --- the library's position ---------------------------------------------- */

/*  What a library watch handed over. */
typedef struct {
    uint64_t seqs [16];
    int      count;
    int      stop_after;        /* return 7 after this many; 0 never */
    int      halt_after;        /* walcast_watch_stop after this many; 0 never */
    walcast_t *watcher;         /* the handle to stop */
} s_seen_t;

static int
s_collect (void *arg, uint64_t seq, int op, const void *key, size_t key_len,
           const void *value, size_t value_len)
{
    (void) op; (void) key; (void) key_len; (void) value; (void) value_len;
    s_seen_t *seen = (s_seen_t *) arg;
    if (seen->count < 16)
        seen->seqs [seen->count++] = seq;
    if (seen->halt_after && seen->count == seen->halt_after)
        walcast_watch_stop (seen->watcher);
    return seen->stop_after && seen->count == seen->stop_after ? 7 : 0;
}

//  walcast_watch says where it stopped, and goes on from there when
//  given it back: nothing skipped, nothing twice.
static void
test_library_position (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    int p = cluster_add (c, "p1", NULL, NULL);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 30000), 0);
    walcast_t *h = cluster_client (c, p);
    assert_non_null (h);
    s_put (h, "a:1", "x");                      // seq 1
    s_put (h, "b:2", "x");                      // seq 2
    s_put (h, "a:3", "x");                      // seq 3

    walcast_t *w = cluster_client (c, p);
    assert_non_null (w);
    //  From now: nothing comes in 300 ms; the position is after seq 3
    s_seen_t seen = { .count = 0 };
    uint64_t position = 0;
    assert_int_equal (walcast_watch (w, "a:", 2, &position, s_collect, &seen, 300), 0);
    assert_int_equal (seen.count, 0);
    assert_int_equal (position, 4);
    s_put (h, "a:4", "x");                      // seq 4
    s_put (h, "b:5", "x");                      // seq 5
    s_put (h, "a:6", "x");                      // seq 6
    assert_int_equal (walcast_watch (w, "a:", 2, &position, s_collect, &seen, 300), 0);
    assert_int_equal (seen.count, 2);
    assert_int_equal (seen.seqs [0], 4);
    assert_int_equal (seen.seqs [1], 6);
    assert_int_equal (position, 7);

    //  From the start, stopped by fn after the first change: the value
    //  comes back and the position is right after it
    memset (&seen, 0, sizeof seen);
    seen.stop_after = 1;
    position = 1;
    assert_int_equal (walcast_watch (w, "a:", 2, &position, s_collect, &seen, 5000), 7);
    assert_int_equal (seen.seqs [0], 1);
    assert_int_equal (position, 2);
    seen.stop_after = 0;
    assert_int_equal (walcast_watch (w, "a:", 2, &position, s_collect, &seen, 300), 0);
    uint64_t expect [] = { 1, 3, 4, 6 };
    assert_int_equal (seen.count, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal (seen.seqs [i], expect [i]);
    assert_int_equal (position, 7);

    //  walcast_watch_stop (here from fn) ends the watch before the next
    //  change, even in the middle of a catch-up reply that holds more:
    //  0, and the position right after the last one handed over. (It was
    //  checked only between replies: a slow fn got every change of a
    //  reply, thousands, before the watch returned.)
    memset (&seen, 0, sizeof seen);
    seen.halt_after = 1;
    seen.watcher = w;
    position = 1;
    assert_int_equal (walcast_watch (w, "a:", 2, &position, s_collect, &seen, 5000), 0);
    assert_int_equal (seen.count, 1);
    assert_int_equal (seen.seqs [0], 1);
    assert_int_equal (position, 2);
    seen.halt_after = 0;
    assert_int_equal (walcast_watch (w, "a:", 2, &position, s_collect, &seen, 300), 0);
    assert_int_equal (seen.count, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal (seen.seqs [i], expect [i]);
    walcast_destroy (&w);
    walcast_destroy (&h);
    assert_int_equal (cluster_term_all (c), 0);
    cluster_pass (c);
}

/*  A fake node at port (service), port + 1 (stream), port + 2 (catch-up),
    started. */
static fake_t *
s_fake_node (fake_request_fn *on_request, fake_tick_fn *on_tick, void *arg, int port)
{
    fake_t *fake = fake_new (on_request, on_tick, arg);
    assert_non_null (fake);
    assert_int_equal (fake_bind_router (fake, port), 0);
    assert_int_equal (fake_bind_pub (fake, port + 1), 0);
    assert_int_equal (fake_bind_router (fake, port + 2), 0);
    assert_int_equal (fake_start (fake), 0);
    return fake;
}

/* --- a node that no longer holds the seq --------------------------------- */

typedef struct {
    int port;                   /* the fake's base port */
    atomic_int fetches;
} s_fake_node_t;

static bool
s_fake_request (void *arg, int port, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    s_fake_node_t *node = (s_fake_node_t *) arg;
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.rid = req->rid;
    if (port == node->port && req->type == WC_MSG_PING) {
        msg.type = WC_MSG_PONG;
        msg.u.pong.epoch = 1;
        msg.u.pong.seq = 100;
        msg.u.pong.role = WC_ROLE_PRIMARY;
        msg.u.pong.id.ptr = (const uint8_t *) "f1";
        msg.u.pong.id.len = 2;
        msg.u.pong.region.ptr = (const uint8_t *) "near";
        msg.u.pong.region.len = 4;
        return wc_msg_encode (&msg, reply) == 0;
    }
    if (port == node->port + 2 && req->type == WC_MSG_FETCH) {
        atomic_fetch_add (&node->fetches, 1);
        return wc_error_encode (req->rid, WALCAST_ERANGE, NULL, "oldest=50", reply) == 0;
    }
    return false;
}

static void
s_fake_tick (void *arg, fake_t *fake)
{
    s_fake_node_t *node = (s_fake_node_t *) arg;
    wc_msg_t hb;
    memset (&hb, 0, sizeof hb);
    hb.type = WC_MSG_HEARTBEAT;
    hb.u.heartbeat.epoch = 1;
    hb.u.heartbeat.last_seq = 100;
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    if (wc_msg_encode (&hb, &out) == 0)
        fake_publish (fake, node->port + 1, "", 0, out.data, out.size);
    msgpack_sbuffer_destroy (&out);
}

static void
test_from_gone (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    s_fake_node_t node;
    node.port = cluster_spare_port (c);
    atomic_init (&node.fetches, 0);
    fake_t *fake = s_fake_node (s_fake_request, s_fake_tick, &node, node.port);
    char addr [32];
    snprintf (addr, sizeof addr, "127.0.0.1:%d", node.port);

    char *out = NULL, *err = NULL;
    int rc = cluster_cli (c, NULL, &out, &err, "--node", addr, "watch", "--from", "3",
                          "a:", NULL);
    print_message ("watch --from 3 on a node whose log starts at 50: exit %d\n%s", rc, err);
    fake_destroy (&fake);
    assert_int_equal (rc, 3);
    assert_string_equal (out, "");
    assert_non_null (strstr (err, "seq 3"));
    assert_non_null (strstr (err, "sequence number outside what the node holds"));
    assert_true (atomic_load (&node.fetches) >= 1);
    free (out);
    free (err);
    cluster_pass (c);
}

/* --- a lost tail, revealed by a heartbeat --------------------------------- */

/*  A fake node whose stream carries heartbeats only: its entries are all
    "lost", and only its catch-up port hands them out. */
typedef struct {
    int           port;
    atomic_ullong last;         /* its last seq */
    atomic_int    fetches;
} s_tail_node_t;

static bool
s_tail_request (void *arg, int port, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    s_tail_node_t *node = (s_tail_node_t *) arg;
    if (port == node->port && req->type == WC_MSG_PING) {
        wc_msg_t msg;
        memset (&msg, 0, sizeof msg);
        msg.type = WC_MSG_PONG;
        msg.rid = req->rid;
        msg.u.pong.epoch = 1;
        msg.u.pong.seq = atomic_load (&node->last);
        msg.u.pong.role = WC_ROLE_PRIMARY;
        msg.u.pong.id.ptr = (const uint8_t *) "t1";
        msg.u.pong.id.len = 2;
        return wc_msg_encode (&msg, reply) == 0;
    }
    if (port != node->port + 2 || req->type != WC_MSG_FETCH)
        return false;
    atomic_fetch_add (&node->fetches, 1);
    uint64_t last = atomic_load (&node->last);
    uint64_t from = req->u.fetch.from_seq;
    uint32_t count = from >= 1 && from <= last ? (uint32_t) (last - from + 1) : 0;
    if (wc_entries_encode_header (req->rid, last, count, reply))
        return false;
    for (uint32_t i = 0; i < count; i++) {
        char key [16];
        snprintf (key, sizeof key, "%s:%llu", (from + i) % 2 ? "a" : "b",
                  (unsigned long long) (from + i));
        wc_entry_t e = { .seq = from + i, .epoch = 1, .ts_ms = 1, .op = WC_OP_PUT };
        e.key.ptr = (const uint8_t *) key;
        e.key.len = (uint32_t) strlen (key);
        e.value.ptr = (const uint8_t *) "tail";
        e.value.len = 4;
        if (wc_entry_encode (&e, reply))
            return false;
    }
    return true;
}

static void
s_tail_tick (void *arg, fake_t *fake)
{
    s_tail_node_t *node = (s_tail_node_t *) arg;
    wc_msg_t hb;
    memset (&hb, 0, sizeof hb);
    hb.type = WC_MSG_HEARTBEAT;
    hb.u.heartbeat.epoch = 1;
    hb.u.heartbeat.last_seq = atomic_load (&node->last);
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    if (wc_msg_encode (&hb, &out) == 0)
        fake_publish (fake, node->port + 1, "", 0, out.data, out.size);
    msgpack_sbuffer_destroy (&out);
}

//  Entries that never came on the stream, after the watcher caught up:
//  only the heartbeat says they exist, and the watcher must fetch them.
static void
test_lost_tail (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    s_tail_node_t node;
    node.port = cluster_spare_port (c);
    atomic_init (&node.last, 0);
    atomic_init (&node.fetches, 0);
    fake_t *fake = s_fake_node (s_tail_request, s_tail_tick, &node, node.port);
    char addr [32];
    snprintf (addr, sizeof addr, "127.0.0.1:%d", node.port);

    int watcher = cluster_cli_spawn (c, "--debug", "--node", addr, "watch", "a:", NULL);
    assert_true (watcher >= 0);
    //  It asked once (nothing to fetch yet) and follows the heartbeats
    int64_t deadline = cluster_now_ms () + 10000;
    while (atomic_load (&node.fetches) < 1) {
        assert_true (cluster_proc_running (c, watcher));
        assert_true (cluster_now_ms () < deadline);
        cluster_nap_ms (10);
    }
    int asked = atomic_load (&node.fetches);
    atomic_store (&node.last, 5);           // seqs 1..5, none on the stream
    assert_int_equal (s_wait_output (c, watcher, "5 put a:5 tail\n", 10000), 0);
    char *out = cluster_proc_output (c, watcher);
    assert_string_equal (out, "1 put a:1 tail\n3 put a:3 tail\n5 put a:5 tail\n");
    assert_true (atomic_load (&node.fetches) > asked);
    free (out);
    assert_int_equal (cluster_proc_stop (c, watcher, 5000), 0);
    char log_path [4096];
    snprintf (log_path, sizeof log_path, "%s/cli%d.log", cluster_dir (c), watcher);
    char *log = s_slurp (log_path);
    print_message ("the watcher's debug lines:\n%s", log);
    assert_non_null (strstr (log, "heartbeat at 5"));
    free (log);
    fake_destroy (&fake);
    cluster_pass (c);
}

/*  Two nodes: f1, the nearest (the client's region), no longer holds seq
    3 (its log starts at 50); t1 holds everything. The watch goes on from
    t1. Before, the first node's ERANGE ended the watch (exit 3) though
    another node still held the seq (a helper's find: nodes compact their
    logs at seqs of their own). */
static void
test_from_gone_elsewhere (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    s_fake_node_t gone;
    gone.port = cluster_spare_port (c);
    atomic_init (&gone.fetches, 0);
    fake_t *f1 = s_fake_node (s_fake_request, s_fake_tick, &gone, gone.port);
    s_tail_node_t all;
    all.port = cluster_spare_port (c) + 3;
    atomic_init (&all.last, 10);
    atomic_init (&all.fetches, 0);
    fake_t *t1 = s_fake_node (s_tail_request, s_tail_tick, &all, all.port);
    char f1_addr [32], t1_addr [32];
    snprintf (f1_addr, sizeof f1_addr, "127.0.0.1:%d", gone.port);
    snprintf (t1_addr, sizeof t1_addr, "127.0.0.1:%d", all.port);

    int watcher = cluster_cli_spawn (c, "--debug", "--region", "near", "--node", f1_addr,
                                     "--node", t1_addr, "watch", "--from", "3", "a:",
                                     NULL);
    assert_true (watcher >= 0);
    int found = s_wait_output (c, watcher, "9 put a:9 tail\n", 10000);
    char *out = cluster_proc_output (c, watcher);
    print_message ("watch --from 3, f1 (nearest) starts at 50, t1 holds all:\n%s", out);
    free (out);
    bool running = cluster_proc_running (c, watcher);
    if (running)
        assert_int_equal (cluster_proc_stop (c, watcher, 5000), 0);
    fake_destroy (&t1);
    fake_destroy (&f1);
    assert_true (atomic_load (&gone.fetches) >= 1);    /* f1 was asked first */
    assert_int_equal (found, 0);
    assert_true (running);
    cluster_pass (c);
}

/* --- a rolled-back history ----------------------------------------------- */

/*  A fake node whose history is replaced while it is watched: first seqs
    1..4 of epoch 1; then (a failover, this node deposed and rejoined) seq
    1 of epoch 1 and seqs 2.. of epoch 2: up to 6 (S_FORK_LONGER), up to
    3 only (S_FORK_SHORTER: the new history has not reached the watch's
    position), or up to 10 with 2..9 no longer in its log (S_FORK_TRIMMED:
    FETCH gets ERANGE; its heartbeats still say epoch 1, so that only the
    ERANGE can reveal the fork). */
enum { S_FORK_FIRST, S_FORK_LONGER, S_FORK_SHORTER, S_FORK_TRIMMED };

typedef struct {
    int           port;
    atomic_int    history;      /* S_FORK_* */
    atomic_int    checks;       /* EPOCH_ENDs received */
} s_fork_node_t;

static uint64_t
s_fork_last (s_fork_node_t *node)
{
    static const uint64_t last [] = { 4, 6, 3, 10 };
    return last [atomic_load (&node->history)];
}

static uint64_t
s_fork_epoch (s_fork_node_t *node, uint64_t seq)
{
    return atomic_load (&node->history) && seq >= 2 ? 2 : 1;
}

static bool
s_fork_request (void *arg, int port, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    s_fork_node_t *node = (s_fork_node_t *) arg;
    if (port != node->port + 2)
        return false;
    uint64_t last = s_fork_last (node);
    if (req->type == WC_MSG_EPOCH_END) {
        atomic_fetch_add (&node->checks, 1);
        bool forked = atomic_load (&node->history);
        wc_msg_t msg;
        memset (&msg, 0, sizeof msg);
        msg.type = WC_MSG_EPOCH_END_REPLY;
        msg.rid = req->rid;
        msg.u.epoch_end.epoch = req->u.epoch_end.epoch >= 1 ? 1 : 0;
        msg.u.epoch_end.end_seq = forked ? 1 : last;
        msg.u.epoch_end.latest = forked ? 2 : 1;
        return wc_msg_encode (&msg, reply) == 0;
    }
    if (req->type != WC_MSG_FETCH)
        return false;
    uint64_t from = req->u.fetch.from_seq;
    if (atomic_load (&node->history) == S_FORK_TRIMMED && from < 10)
        return wc_error_encode (req->rid, WALCAST_ERANGE, "seq before the log",
                                "first=10", reply) == 0;
    uint32_t count = from >= 1 && from <= last ? (uint32_t) (last - from + 1) : 0;
    if (wc_entries_encode_header (req->rid, last, count, reply))
        return false;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t seq = from + i;
        char key [16];
        snprintf (key, sizeof key, "a:%llu", (unsigned long long) seq);
        const char *value = s_fork_epoch (node, seq) == 2 ? "new" : "old";
        wc_entry_t e = { .seq = seq, .epoch = s_fork_epoch (node, seq), .ts_ms = 1,
                         .op = WC_OP_PUT };
        e.key.ptr = (const uint8_t *) key;
        e.key.len = (uint32_t) strlen (key);
        e.value.ptr = (const uint8_t *) value;
        e.value.len = 3;
        if (wc_entry_encode (&e, reply))
            return false;
    }
    return true;
}

static void
s_fork_tick (void *arg, fake_t *fake)
{
    s_fork_node_t *node = (s_fork_node_t *) arg;
    uint64_t last = s_fork_last (node);
    wc_msg_t hb;
    memset (&hb, 0, sizeof hb);
    hb.type = WC_MSG_HEARTBEAT;
    hb.u.heartbeat.epoch = atomic_load (&node->history) == S_FORK_TRIMMED
                         ? 1 : s_fork_epoch (node, last);
    hb.u.heartbeat.last_seq = last;
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    if (wc_msg_encode (&hb, &out) == 0)
        fake_publish (fake, node->port + 1, "", 0, out.data, out.size);
    msgpack_sbuffer_destroy (&out);
}

//  The fork node, started; its address in addr.
static fake_t *
s_fork_start (cluster_t *c, s_fork_node_t *node, char *addr, size_t size)
{
    node->port = cluster_spare_port (c);
    atomic_init (&node->history, S_FORK_FIRST);
    atomic_init (&node->checks, 0);
    fake_t *fake = s_fake_node (s_fork_request, s_fork_tick, node, node->port);
    snprintf (addr, size, "127.0.0.1:%d", node->port);
    return fake;
}

//  The watch printed 1..4 of the first history; the node's history then
//  keeps only seq 1 of it, followed by history. The watch must stop with
//  the remedy and print nothing more.
static void
s_rolled_back (void **state, int history)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    s_fork_node_t node;
    char addr [32];
    fake_t *fake = s_fork_start (c, &node, addr, sizeof addr);
    int watcher = cluster_cli_spawn (c, "--node", addr, "watch", "--from", "1", "a:",
                                     NULL);
    assert_true (watcher >= 0);
    assert_int_equal (s_wait_output (c, watcher, "4 put a:4 old\n", 10000), 0);
    atomic_store (&node.history, history);
    //  It asks where epoch 1 ended, learns 1, and stops with the remedy
    int status = cluster_proc_wait (c, watcher, 10000);
    char *out = cluster_proc_output (c, watcher);
    assert_string_equal (out, "1 put a:1 old\n2 put a:2 old\n3 put a:3 old\n"
                              "4 put a:4 old\n");
    free (out);
    char *log = cluster_proc_errors (c, watcher);
    print_message ("the watcher's stderr:\n%s", log);
    assert_non_null (strstr (log, "seqs 2..4 (epoch 1) were rolled back"));
    assert_non_null (strstr (log, "--from 2"));
    free (log);
    assert_int_equal (status, 3);
    assert_true (atomic_load (&node.checks) >= 1);
    fake_destroy (&fake);
    cluster_pass (c);
}

//  Before, the watch went on with "5 put a:5 new" and "6 put a:6 new",
//  and never showed the changes at 2..4 that replaced the ones it had
//  printed.
static void
test_rolled_back (void **state)
{
    s_rolled_back (state, S_FORK_LONGER);
}

//  The new history is shorter than what the watch printed, and nothing
//  is written: no entry at or past its position will ever come. Before,
//  the watch sat there for good (a helper: 11 s of an idle cluster, or
//  until writes passed its position); the heartbeats' newer epoch now
//  makes it check.
static void
test_rolled_back_shorter (void **state)
{
    s_rolled_back (state, S_FORK_SHORTER);
}

//  The node no longer holds the watch's next seq, and what came before
//  it was rolled back: the rollback is the news. Before, the watch ended
//  with ERANGE ('no longer holds seq 5; watch from a later seq'), and the
//  rolled-back changes it had printed stayed unsaid.
static void
test_rolled_back_trimmed (void **state)
{
    s_rolled_back (state, S_FORK_TRIMMED);
}

//  A library watch that returned (its timeout) and is called again with
//  the position it gave: a failover between the two calls rolled back
//  what the first delivered. The handle knows the epoch it stopped in and
//  checks it first. Before, the second call took the new history's 5 and
//  6 as if nothing had happened (a helper's loop of walcast_watch calls
//  kept 37 rolled-back changes and skipped the 37 that replaced them).
static void
test_rolled_back_between_calls (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    s_fork_node_t node;
    char addr [32];
    fake_t *fake = s_fork_start (c, &node, addr, sizeof addr);
    walcast_t *w = walcast_new ();
    assert_non_null (w);
    walcast_set_timeout (w, 3000);
    assert_int_equal (walcast_connect (w, addr), 0);
    s_seen_t seen;
    memset (&seen, 0, sizeof seen);
    uint64_t position = 1;
    assert_int_equal (walcast_watch (w, "a:", 2, &position, s_collect, &seen, 500), 0);
    assert_int_equal (seen.count, 4);
    assert_int_equal (position, 5);
    atomic_store (&node.history, S_FORK_LONGER);
    int rc = walcast_watch (w, "a:", 2, &position, s_collect, &seen, 2000);
    print_message ("the second call: %s, %d delivered in all; %s\n", walcast_errname (rc),
                   seen.count, walcast_last_detail (w));
    assert_int_equal (rc, WALCAST_ECONFLICT);
    assert_int_equal (seen.count, 4);
    assert_non_null (strstr (walcast_last_detail (w), "--from 2"));
    walcast_destroy (&w);
    fake_destroy (&fake);
    cluster_pass (c);
}

//  The CLI across a restart of its own: stopped, it says how to go on
//  (--from 5 --epoch 1); a failover then rolls back 2..4; the watch
//  started again with what it said checks first and says what was rolled
//  back. Without --epoch it could not know: the seq alone is 5 either way.
static void
test_rolled_back_while_stopped (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    s_fork_node_t node;
    char addr [32];
    fake_t *fake = s_fork_start (c, &node, addr, sizeof addr);
    int watcher = cluster_cli_spawn (c, "--node", addr, "watch", "--from", "1", "a:",
                                     NULL);
    assert_true (watcher >= 0);
    assert_int_equal (s_wait_output (c, watcher, "4 put a:4 old\n", 10000), 0);
    assert_int_equal (cluster_proc_stop (c, watcher, 5000), 0);
    char *log = cluster_proc_errors (c, watcher);
    print_message ("stopped: %s", log);
    assert_non_null (strstr (log, "go on with --from 5 --epoch 1\n"));
    free (log);
    atomic_store (&node.history, S_FORK_LONGER);
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (c, NULL, &out, &err, "--node", addr, "watch", "--from", "5",
                          "--epoch", "1", "a:", NULL);
    print_message ("again: exit %d, %s", rc, err);
    assert_int_equal (rc, 3);
    assert_string_equal (out, "");
    assert_non_null (strstr (err, "seqs 2..4 (epoch 1) were rolled back"));
    assert_non_null (strstr (err, "--from 2"));
    free (out);
    free (err);
    fake_destroy (&fake);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_sigstop_during_load, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_from_across_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_from_gone, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_from_gone_elsewhere, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_library_position, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lost_tail, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rolled_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rolled_back_shorter, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rolled_back_trimmed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rolled_back_between_calls, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_rolled_back_while_stopped, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
