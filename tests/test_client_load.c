/*  test_client_load.c - every async write has its own outcome (issue 6,
    defect 8).

    What a loader relies on: `walcast load` says, for each line that did
    not land, whether the node refused it ("failed KEY: MESSAGE") or
    whether nobody can know ("unknown KEY: MESSAGE": sent, no answer),
    exits 3 when there is any, and prints `COUNT LAST_SEQ` of what landed
    as before; resubmitting exactly the reported lines is safe, so a
    later line of a key whose earlier line failed is not sent (it is
    reported instead). The library gives each async write its outcome,
    tagged by the caller, in submission order, and never drops one: a
    sync call that times out turns the async writes in flight into
    "unknown" outcomes, reported as such.

    The node is a fake (tests/fake.h) that answers PUTs by their key:
    "bad..." is refused (ENOSPC), "lost..." is never answered, anything
    else gets the next seq. The per-write tests send each write alone
    (--batch 1, walcast_set_batch 1); a batch (WRITE_BATCH) is answered
    as a primary commits one: in order, its writes before the first
    "bad..." land and the rest are refused with it, and a batch holding a
    "lost..." is never answered.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cluster.h"
#include "fake.h"

/*  The fake node's state, shared with its thread. */
typedef struct {
    atomic_ullong seq;          /* last seq handed out */
    atomic_int    puts_bad2;    /* PUTs of key bad2 received */
    atomic_int    batches;      /* WRITE_BATCHes received */
    atomic_int    batch_writes; /* writes in the last one */
} s_node_t;

static bool
s_starts (const wc_bytes_t *key, const char *prefix)
{
    size_t len = strlen (prefix);
    return key->len >= len && memcmp (key->ptr, prefix, len) == 0;
}

//  A WRITE_BATCH, answered as a primary commits it (see the top).
static bool
s_on_batch (s_node_t *node, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    atomic_fetch_add (&node->batches, 1);
    atomic_store (&node->batch_writes, (int) req->u.batch.count);
    uint32_t taken = 0;
    bool refused = false;
    for (uint32_t i = 0; i < req->u.batch.count; i++) {
        wc_write_t w;
        if (wc_write_from_object (&req->u.batch.items [i], &w))
            return wc_error_encode (req->rid, WALCAST_EPROTO, NULL, NULL, reply) == 0;
        if (s_starts (&w.key, "lost"))
            return false;
        if (s_starts (&w.key, "bad"))
            refused = true;
        if (!refused)
            taken++;
    }
    if (taken == 0)
        return wc_error_encode (req->rid, WALCAST_ENOSPC, "disk full", NULL, reply) == 0;
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = WC_MSG_WRITES_OK;
    msg.rid = req->rid;
    msg.u.writes_ok.epoch = 1;
    msg.u.writes_ok.first_seq = atomic_fetch_add (&node->seq, taken) + 1;
    msg.u.writes_ok.count = taken;
    if (refused) {
        msg.u.writes_ok.code = wc_err_to_wire (WALCAST_ENOSPC);
        //  As a node says it: its text is the code's own words
        const char *text = walcast_strerror (WALCAST_ENOSPC);
        msg.u.writes_ok.text = (wc_bytes_t) { (const uint8_t *) text,
                                              (uint32_t) strlen (text) };
    }
    return wc_msg_encode (&msg, reply) == 0;
}

//  The fake node: a primary that answers PING, PUT and WRITE_BATCH (by
//  key, see the top), never GET.
static bool
s_on_request (void *arg, int port, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    (void) port;
    s_node_t *node = (s_node_t *) arg;
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.rid = req->rid;
    if (req->type == WC_MSG_PING) {
        msg.type = WC_MSG_PONG;
        msg.u.pong.epoch = 1;
        msg.u.pong.seq = atomic_load (&node->seq);
        msg.u.pong.role = WC_ROLE_PRIMARY;
        msg.u.pong.id.ptr = (const uint8_t *) "f1";
        msg.u.pong.id.len = 2;
        return wc_msg_encode (&msg, reply) == 0;
    }
    if (req->type == WC_MSG_WRITE_BATCH)
        return s_on_batch (node, req, reply);
    if (req->type != WC_MSG_PUT && req->type != WC_MSG_DEL)
        return false;
    if (req->u.req.key.len == 4 && memcmp (req->u.req.key.ptr, "bad2", 4) == 0)
        atomic_fetch_add (&node->puts_bad2, 1);
    if (s_starts (&req->u.req.key, "bad"))
        return wc_error_encode (req->rid, WALCAST_ENOSPC, "disk full", NULL, reply) == 0;
    if (s_starts (&req->u.req.key, "lost"))
        return false;
    msg.type = WC_MSG_WRITE_OK;
    msg.u.write_ok.epoch = 1;
    msg.u.write_ok.seq = atomic_fetch_add (&node->seq, 1) + 1;
    return wc_msg_encode (&msg, reply) == 0;
}

typedef struct {
    cluster_t *cluster;
    fake_t    *fake;
    s_node_t   node;
    char       addr [32];
} s_world_t;

static int
s_setup (void **state)
{
    s_world_t *w = calloc (1, sizeof *w);
    w->cluster = cluster_new ("client_load");
    if (w->cluster) {
        atomic_init (&w->node.seq, 0);
        atomic_init (&w->node.puts_bad2, 0);
        atomic_init (&w->node.batches, 0);
        atomic_init (&w->node.batch_writes, 0);
        int port = cluster_spare_port (w->cluster);
        snprintf (w->addr, sizeof w->addr, "127.0.0.1:%d", port);
        w->fake = fake_new (s_on_request, NULL, &w->node);
        if (!w->fake || fake_bind_router (w->fake, port) || fake_start (w->fake))
            fake_destroy (&w->fake);
    }
    *state = w;
    return 0;
}

static int
s_teardown (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    fake_destroy (&w->fake);
    cluster_destroy (&w->cluster);
    free (w);
    return 0;
}

//  How many lines of text start with prefix.
static int
s_count_lines (const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen (prefix);
    for (const char *line = text; line && *line; ) {
        if (strncmp (line, prefix, len) == 0)
            n++;
        line = strchr (line, '\n');
        if (line)
            line++;
    }
    return n;
}

//  walcast load against the fake: a refused line, a line never answered,
//  a later line of a key that failed; the rest land.
static void
test_load_cli (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->fake)
        fail_msg ("the test could not be set up (see above)");
    const char *input =
        "a 1\n"
        "bad1 x\n"
        "b 2\n"
        "lost1 y\n"
        "bad2 first\n"
        "c 3\n"
        "bad2 second\n"
        "d 4\n";
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, input, &out, &err, "--node", w->addr,
                          "--timeout", "1000", "load", "--batch", "1", NULL);
    print_message ("exit %d\nstdout:\n%sstderr:\n%s", rc, out, err);
    assert_int_equal (rc, 3);
    //  a, b, c, d landed, at seqs 1..4
    assert_string_equal (out, "4 4\n");
    assert_int_equal (s_count_lines (err, "failed bad1: "), 1);
    assert_int_equal (s_count_lines (err, "unknown lost1: "), 1);
    assert_int_equal (s_count_lines (err, "failed bad2: "), 2);
    assert_int_equal (s_count_lines (err, "failed "), 3);
    assert_int_equal (s_count_lines (err, "unknown "), 1);
    //  In input order
    const char *bad1 = strstr (err, "failed bad1: ");
    const char *lost1 = strstr (err, "unknown lost1: ");
    assert_true (bad1 < lost1);
    //  The second bad2 was not sent: its first failed, and resending
    //  both lines must leave "second"
    assert_int_equal (atomic_load (&w->node.puts_bad2), 1);
    free (out);
    free (err);

    //  In batches (the refusal then comes in WRITES_OK, the node's words
    //  as its text): each message said once
    const char *batched = "e 5\nf 6\nbad3 x\n";   /* f and bad3: one batch */
    rc = cluster_cli (w->cluster, batched, &out, &err, "--node", w->addr,
                      "--timeout", "1000", "load", NULL);
    print_message ("batched: exit %d\nstderr:\n%s", rc, err);
    assert_int_equal (rc, 3);
    assert_int_equal (s_count_lines (err, "failed bad3: no space left on the node's disk; "
                                          "the write was not made\n"), 1);
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

//  A line whose key is over the protocol's limit fails and will fail
//  again: the summary says to fix it before resubmitting, and the lines
//  that failed for another reason are still safe to resubmit.
static void
test_load_too_big (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->fake)
        fail_msg ("the test could not be set up (see above)");
    static char input [1200];
    char *at = input;
    at += sprintf (at, "a 1\n");
    memset (at, 'k', 1025);
    at += 1025;
    at += sprintf (at, " v\nb 2\n");
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, input, &out, &err, "--node", w->addr,
                          "--timeout", "1000", "load", NULL);
    print_message ("exit %d\nstdout:\n%sstderr:\n%s", rc, out, err);
    assert_int_equal (rc, 3);
    assert_string_equal (out, "2 2\n");
    assert_int_equal (s_count_lines (err, "failed kkkk"), 1);
    assert_non_null (strstr (err, "1 line failed and 0 are unknown (listed above); "
                             "1 of them is over a limit (keys 1..1024 bytes, values "
                             "at most 1 MiB) and fails again until it is fixed; "
                             "resubmitting exactly the reported lines, in their order, "
                             "is safe once it is\n"));
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

//  A node that stops answering: the window of lines in flight is
//  unknown; the load sends once more (a node that restarted would answer
//  now), and when that window goes unanswered too, every line after it
//  is still reported (not sent), so the report is complete.
static void
test_load_node_silent (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->fake)
        fail_msg ("the test could not be set up (see above)");
    const int lines = 2 * WALCAST_ASYNC_WINDOW + 100;
    char *input = malloc ((size_t) lines * 24 + 16);
    assert_non_null (input);
    size_t len = (size_t) sprintf (input, "first 1\n");
    for (int i = 0; i < lines; i++)
        len += (size_t) sprintf (input + len, "lost%d v\n", i);
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, input, &out, &err, "--node", w->addr,
                          "--timeout", "500", "load", "--batch", "1", NULL);
    assert_int_equal (rc, 3);
    assert_string_equal (out, "1 1\n");
    int unknown = s_count_lines (err, "unknown lost");
    int unsent = s_count_lines (err, "failed lost");
    print_message ("%d lines to a node that stopped answering: %d unknown, %d failed "
                   "(not sent); first not sent: %.*s\n", lines, unknown, unsent,
                   (int) strcspn (strstr (err, "failed lost"), "\n"),
                   strstr (err, "failed lost"));
    assert_int_equal (unknown, 2 * WALCAST_ASYNC_WINDOW);
    assert_int_equal (unknown + unsent, lines);
    assert_non_null (strstr (err, ": not sent: no answer within the timeout"));
    free (input);
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

//  A window that goes unanswered and then a node that answers again (a
//  primary killed and restarted with its writes in flight): those writes
//  are unknown, and the rest of the input lands. The soak of stop 20 saw
//  `load` report 909,886 lines "not sent" after a primary was back in
//  half a second.
static void
test_load_goes_on (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->fake)
        fail_msg ("the test could not be set up (see above)");
    const int lost = WALCAST_ASYNC_WINDOW, after = 300;
    char *input = malloc ((size_t) (lost + after) * 24 + 16);
    assert_non_null (input);
    size_t len = (size_t) sprintf (input, "first 1\n");
    for (int i = 0; i < lost; i++)
        len += (size_t) sprintf (input + len, "lost%d v\n", i);
    for (int i = 0; i < after; i++)
        len += (size_t) sprintf (input + len, "k%d v\n", i);
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, input, &out, &err, "--node", w->addr,
                          "--timeout", "500", "load", "--batch", "1", NULL);
    int unknown = s_count_lines (err, "unknown lost");
    int failed = s_count_lines (err, "failed ");
    print_message ("%d unanswered lines, then %d answered: %d unknown, %d failed; %s",
                   lost, after, unknown, failed, out ? out : "(no output)\n");
    assert_int_equal (rc, 3);
    assert_string_equal (out, "301 301\n");
    assert_int_equal (unknown, lost);
    assert_int_equal (failed, 0);
    free (input);
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

//  A node that is down (no connection at all): the first batch waits for
//  one for the whole timeout, then fails as not sent, and every line after
//  it fails at once, saying for how long the node has been unreachable,
//  until a connection is back. Before, each later line waited a full
//  timeout of its own: a helper's load of 200,000 lines against a killed
//  node would have run for days.
static void
test_load_node_down (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->fake)
        fail_msg ("the test could not be set up (see above)");
    fake_destroy (&w->fake);
    const int lines = 300;
    char *input = malloc ((size_t) lines * 24 + 16);
    assert_non_null (input);
    size_t len = 0;
    for (int i = 0; i < lines; i++)
        len += (size_t) sprintf (input + len, "k%d v\n", i);
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, input, &out, &err, "--node", w->addr,
                          "--timeout", "1000", "load", NULL);
    assert_int_equal (rc, 3);
    assert_string_equal (out, "0 0\n");
    int failed = s_count_lines (err, "failed k");
    int waited = 0, at_once = 0;
    for (const char *at = err; (at = strstr (at, "not sent: no connection to ")); at++) {
        const char *end = strchr (at, '\n');
        const char *within = strstr (at, "took it within the timeout");
        const char *since = strstr (at, " for ");
        waited += within && (!end || within < end);
        at_once += since && (!end || since < end) && !(within && (!end || within < end));
    }
    print_message ("%d lines to a node that is down: %d failed; %d after waiting, %d at "
                   "once\n", lines, failed, waited, at_once);
    assert_int_equal (failed, lines);
    assert_true (waited >= 1 && waited <= 64);  //  the first batch
    assert_int_equal (waited + at_once, lines);
    free (input);
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

/* --- the library ---------------------------------------------------------- */

#define MAX_SEEN 5000

/*  What the outcome function was handed, in order. */
typedef struct {
    size_t   count;
    uint64_t tag [MAX_SEEN];
    int      state [MAX_SEEN];
    int      err [MAX_SEEN];
    uint64_t seq [MAX_SEEN];
    char     detail [8][256];           /* of the first 8 */
} s_seen_t;

static void
s_on_outcome (void *arg, const walcast_outcome_t *o)
{
    s_seen_t *seen = (s_seen_t *) arg;
    if (seen->count == MAX_SEEN)
        return;
    size_t i = seen->count++;
    seen->tag [i] = o->tag;
    seen->state [i] = o->state;
    seen->err [i] = o->err;
    seen->seq [i] = o->pos.seq;
    if (i < 8)
        snprintf (seen->detail [i], sizeof seen->detail [i], "%s", o->detail);
}

//  A handle on the fake that sends each async write alone (batch 1), or
//  in batches (0: the default).
static walcast_t *
s_client (s_world_t *w, s_seen_t *seen, int batch)
{
    walcast_t *h = walcast_new ();
    assert_non_null (h);
    walcast_set_timeout (h, 1000);
    assert_int_equal (walcast_connect (h, w->addr), 0);
    walcast_set_outcome_fn (h, s_on_outcome, seen);
    if (batch)
        assert_int_equal (walcast_set_batch (h, batch), 0);
    return h;
}

static void
s_put_async (walcast_t *h, const char *key, uint64_t tag)
{
    assert_int_equal (walcast_put_async (h, key, strlen (key), "v", 1, tag), 0);
}

//  Each async write's outcome, by tag, in submission order; a sync call
//  that times out makes the writes in flight unknown without dropping
//  them; destroy reports what is left.
static void
test_outcomes (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->fake)
        fail_msg ("the test could not be set up (see above)");
    s_seen_t *seen = calloc (1, sizeof *seen);
    walcast_t *h = s_client (w, seen, 1);
    s_put_async (h, "a", 1);
    s_put_async (h, "bad1", 2);
    s_put_async (h, "b", 3);
    s_put_async (h, "lost1", 4);
    s_put_async (h, "c", 5);
    assert_int_equal (walcast_del_async (h, "d", 1, 6), 0);
    walcast_pos_t last;
    uint64_t acked;
    assert_int_equal (walcast_flush (h, &last, &acked), WALCAST_ENOSPC);
    assert_int_equal (acked, 4);
    assert_int_equal (last.seq, 4);
    assert_int_equal (seen->count, 6);
    const int states [] = { WALCAST_WRITE_OK, WALCAST_WRITE_FAILED, WALCAST_WRITE_OK,
                            WALCAST_WRITE_UNKNOWN, WALCAST_WRITE_OK, WALCAST_WRITE_OK };
    const int errs [] = { 0, WALCAST_ENOSPC, 0, WALCAST_ETIMEOUT, 0, 0 };
    const uint64_t seqs [] = { 1, 0, 2, 0, 3, 4 };
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal (seen->tag [i], i + 1);
        assert_int_equal (seen->state [i], states [i]);
        assert_int_equal (seen->err [i], errs [i]);
        assert_int_equal (seen->seq [i], seqs [i]);
    }
    print_message ("unknown outcome: %s\n", seen->detail [3]);
    assert_non_null (strstr (seen->detail [3], w->addr));

    //  A sync call on the same connection times out (the fake never
    //  answers GET): the write in flight is not dropped, it is unknown,
    //  and handed over by the next async call, not inside the get
    seen->count = 0;
    s_put_async (h, "e", 7);
    s_put_async (h, "lost2", 8);
    //  (e's outcome may come inside the second put_async already, if its
    //  answer was there: an async call; what matters is not in the get)
    size_t before = seen->count;
    void *value = NULL;
    size_t len = 0;
    assert_int_equal (walcast_get (h, "e", 1, &value, &len, NULL), WALCAST_ETIMEOUT);
    assert_int_equal (seen->count, before);
    assert_int_equal (walcast_flush (h, NULL, &acked), WALCAST_ETIMEOUT);
    assert_int_equal (acked, 1);
    assert_int_equal (seen->count, 2);
    assert_int_equal (seen->tag [0], 7);
    assert_int_equal (seen->state [0], WALCAST_WRITE_OK);
    assert_int_equal (seen->tag [1], 8);
    assert_int_equal (seen->state [1], WALCAST_WRITE_UNKNOWN);
    print_message ("after a sync timeout: %s\n", seen->detail [1]);
    assert_non_null (strstr (seen->detail [1], "reset"));

    //  What is still in flight at the end is reported by destroy
    seen->count = 0;
    s_put_async (h, "lost3", 9);
    walcast_destroy (&h);
    assert_int_equal (seen->count, 1);
    assert_int_equal (seen->tag [0], 9);
    assert_int_equal (seen->state [0], WALCAST_WRITE_UNKNOWN);
    free (seen);
    cluster_pass (w->cluster);
}

//  A window of writes nobody answers: the next write is refused after
//  the timeout (not sent, no outcome), and every write of the window is
//  reported unknown, in order.
static void
test_window_unanswered (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->fake)
        fail_msg ("the test could not be set up (see above)");
    s_seen_t *seen = calloc (1, sizeof *seen);
    walcast_t *h = s_client (w, seen, 1);
    char key [32];
    for (uint64_t i = 0; i < WALCAST_ASYNC_WINDOW; i++) {
        snprintf (key, sizeof key, "lost%llu", (unsigned long long) i);
        s_put_async (h, key, i);
    }
    assert_int_equal (seen->count, 0);
    int64_t started = cluster_now_ms ();
    assert_int_equal (walcast_put_async (h, "one-more", 8, "v", 1, 99999), WALCAST_ETIMEOUT);
    assert_true (cluster_now_ms () - started >= 900);
    assert_int_equal (seen->count, WALCAST_ASYNC_WINDOW);
    for (size_t i = 0; i < WALCAST_ASYNC_WINDOW; i++) {
        assert_int_equal (seen->tag [i], i);
        assert_int_equal (seen->state [i], WALCAST_WRITE_UNKNOWN);
    }
    //  The handle goes on: the next write lands (flush sums up every
    //  outcome since the last flush: the window's are in it)
    s_put_async (h, "after", 100000);
    uint64_t acked = 0;
    assert_int_equal (walcast_flush (h, NULL, &acked), WALCAST_ETIMEOUT);
    assert_int_equal (acked, 1);
    assert_int_equal (seen->count, WALCAST_ASYNC_WINDOW + 1);
    assert_int_equal (seen->state [WALCAST_ASYNC_WINDOW], WALCAST_WRITE_OK);
    walcast_destroy (&h);
    free (seen);
    cluster_pass (w->cluster);
}

//  Writes that wait while another is in flight go as one batch, and a
//  batch is committed in order: the writes before a refused one land,
//  the refused one and those after it fail with its error, each with
//  its own outcome, in submission order.
static void
test_batch_prefix (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->fake)
        fail_msg ("the test could not be set up (see above)");
    s_seen_t *seen = calloc (1, sizeof *seen);
    walcast_t *h = s_client (w, seen, 0);
    s_put_async (h, "lost0", 1);            //  goes alone, never answered
    s_put_async (h, "a", 2);                //  these wait for it, then go
    s_put_async (h, "b", 3);                //  together at the flush
    s_put_async (h, "bad1", 4);
    s_put_async (h, "c", 5);
    assert_int_equal (walcast_del_async (h, "d", 1, 6), 0);
    int64_t deadline = cluster_now_ms () + 5000;           //  lost0's arrives
    while (atomic_load (&w->node.batches) < 1 && cluster_now_ms () < deadline)
        cluster_nap_ms (5);
    assert_int_equal (atomic_load (&w->node.batches), 1);   //  and only it
    uint64_t acked = 0;
    assert_int_equal (walcast_flush (h, NULL, &acked), WALCAST_ETIMEOUT);
    assert_int_equal (atomic_load (&w->node.batches), 2);
    assert_int_equal (atomic_load (&w->node.batch_writes), 5);
    assert_int_equal (acked, 2);
    assert_int_equal (seen->count, 6);
    const int states [] = { WALCAST_WRITE_UNKNOWN, WALCAST_WRITE_OK, WALCAST_WRITE_OK,
                            WALCAST_WRITE_FAILED, WALCAST_WRITE_FAILED,
                            WALCAST_WRITE_FAILED };
    const int errs [] = { WALCAST_ETIMEOUT, 0, 0, WALCAST_ENOSPC, WALCAST_ENOSPC,
                          WALCAST_ENOSPC };
    const uint64_t seqs [] = { 0, 1, 2, 0, 0, 0 };
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal (seen->tag [i], i + 1);
        assert_int_equal (seen->state [i], states [i]);
        assert_int_equal (seen->err [i], errs [i]);
        assert_int_equal (seen->seq [i], seqs [i]);
    }
    print_message ("refused with the batch: %s\n", seen->detail [4]);
    assert_non_null (strstr (seen->detail [4], "no space left on the node's disk"));
    walcast_destroy (&h);
    free (seen);
    cluster_pass (w->cluster);
}

//  The outcome function writes again (a retry, a refill): the new write
//  goes out during the flush that handed the outcome over, and the flush
//  ends with both landed, without waiting for its timeout.
typedef struct {
    walcast_t *h;
    s_seen_t  *seen;
} s_refill_t;

static void
s_refill (void *arg, const walcast_outcome_t *o)
{
    s_refill_t *r = (s_refill_t *) arg;
    s_on_outcome (r->seen, o);
    if (o->tag == 1)
        assert_int_equal (walcast_put_async (r->h, "again", 5, "v", 1, 2), 0);
}

static void
test_write_from_outcome (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster || !w->fake)
        fail_msg ("the test could not be set up (see above)");
    s_seen_t *seen = calloc (1, sizeof *seen);
    walcast_t *h = s_client (w, seen, 0);
    walcast_set_timeout (h, 3000);
    s_refill_t refill = { h, seen };
    walcast_set_outcome_fn (h, s_refill, &refill);
    s_put_async (h, "first", 1);
    uint64_t acked = 0;
    int64_t started = cluster_now_ms ();
    assert_int_equal (walcast_flush (h, NULL, &acked), 0);
    int64_t took = cluster_now_ms () - started;
    print_message ("flush with a write from the outcome function: %lld ms\n",
                   (long long) took);
    assert_true (took < 2000);
    assert_int_equal (acked, 2);
    assert_int_equal (seen->count, 2);
    assert_int_equal (seen->state [0], WALCAST_WRITE_OK);
    assert_int_equal (seen->state [1], WALCAST_WRITE_OK);
    walcast_destroy (&h);
    free (seen);
    cluster_pass (w->cluster);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_load_cli, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_load_too_big, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_load_node_silent, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_load_goes_on, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_load_node_down, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_batch_prefix, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_write_from_outcome, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_outcomes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_window_unanswered, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
