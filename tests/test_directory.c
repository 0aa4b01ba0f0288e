/*  test_directory.c - the broker's directory of nodes (broker/directory.c).

    What the broker and its clients rely on: a node that registers is
    listed with exactly what it said, whatever happens afterwards to the
    buffer it was decoded from; the version moves once for every change a
    client must route around (new node, up/down, role, address, region,
    primary) and never for mere progress (epoch, seq, lag); a node not
    heard for the timeout is down, and up again as soon as it is heard;
    a node_info against the admission rules (docs/PROTOCOL.md, "Broker")
    never enters it, and the refusal says which field is wrong; it keeps
    every node that claims the primary role, but a TOPOLOGY offers clients
    only the one failover.c named (the others are listed down); the
    directory never holds more than WC_MAX_NODES; and the TOPOLOGY it
    encodes decodes back, through the codec, into the same nodes.

    The clock is the test's: every call gets the time by hand.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "walcast.h"
#include "codec.h"
#include "directory.h"
#include "log.h"

#define S_TIMEOUT  2000

//  Byte string helpers.

static wc_bytes_t
s_bytes (const char *text)
{
    wc_bytes_t bytes = { (const uint8_t *) text, (uint32_t) strlen (text) };
    return bytes;
}

static void
s_assert_bytes (wc_bytes_t bytes, const char *text)
{
    assert_int_equal (bytes.len, strlen (text));
    if (bytes.len)
        assert_memory_equal (bytes.ptr, text, bytes.len);
}

//  A node_info as a node would send it.

static wc_node_info_t
s_info (const char *id, const char *region, uint8_t role, const char *addr,
        const char *primary)
{
    wc_node_info_t info;
    memset (&info, 0, sizeof info);
    info.id = s_bytes (id);
    info.region = s_bytes (region);
    info.role = role;
    info.epoch = 1;
    info.applied_seq = 10;
    info.addr = s_bytes (addr);
    info.primary = s_bytes (primary);
    info.lag = 0;
    info.lag_ms = 0;
    info.up = true;
    info.silent_ms = 0;
    return info;
}

//  Index of id in the directory, or -1.

static int
s_index_of (wc_directory_t *dir, const char *id, int64_t now)
{
    wc_bytes_t want = s_bytes (id);
    for (size_t i = 0; i < wc_directory_size (dir); i++) {
        wc_node_info_t info;
        assert_int_equal (wc_directory_get (dir, i, now, &info), 0);
        if (info.id.len == want.len && memcmp (info.id.ptr, want.ptr, want.len) == 0)
            return (int) i;
    }
    return -1;
}

static wc_node_info_t
s_get (wc_directory_t *dir, const char *id, int64_t now)
{
    int index = s_index_of (dir, id, now);
    assert_true (index >= 0);
    wc_node_info_t info;
    assert_int_equal (wc_directory_get (dir, (size_t) index, now, &info), 0);
    return info;
}

//  ---------------------------------------------------------------------

static void
test_new_is_empty (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    assert_non_null (dir);
    assert_int_equal (wc_directory_version (dir), 0);
    assert_int_equal (wc_directory_size (dir), 0);
    assert_int_equal (wc_directory_up_count (dir), 0);
    assert_int_equal (wc_directory_tick (dir, 100000, S_TIMEOUT), 0);
    wc_node_info_t info;
    assert_int_equal (wc_directory_get (dir, 0, 0, &info), WALCAST_EINVAL);
    wc_directory_destroy (&dir);
    assert_null (dir);
    wc_directory_destroy (&dir);        // safe twice
}

static void
test_register_copies_every_field (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    wc_node_info_t sent = s_info ("eu1", "eu-west", WC_ROLE_REPLICA,
                                  "10.0.0.2:7200", "10.0.0.1:7100");
    sent.epoch = 3;
    sent.applied_seq = 12345;
    sent.lag = 7;
    sent.lag_ms = 42;
    sent.flags = WC_NODE_STALLED;
    sent.handover_seq = 12000;
    sent.up = false;            // a node's own view is ignored...
    sent.silent_ms = 999;       // ...and so is this
    assert_int_equal (wc_directory_update (dir, &sent, 1000, NULL), 1);
    assert_int_equal (wc_directory_version (dir), 1);
    assert_int_equal (wc_directory_size (dir), 1);
    assert_int_equal (wc_directory_up_count (dir), 1);

    wc_node_info_t got = s_get (dir, "eu1", 1250);
    s_assert_bytes (got.id, "eu1");
    s_assert_bytes (got.region, "eu-west");
    assert_int_equal (got.role, WC_ROLE_REPLICA);
    assert_int_equal (got.epoch, 3);
    assert_int_equal (got.applied_seq, 12345);
    s_assert_bytes (got.addr, "10.0.0.2:7200");
    s_assert_bytes (got.primary, "10.0.0.1:7100");
    assert_int_equal (got.lag, 7);
    assert_int_equal (got.lag_ms, 42);
    assert_int_equal (got.flags, WC_NODE_STALLED);
    assert_int_equal (got.handover_seq, 12000);
    assert_true (got.up);
    assert_int_equal (got.silent_ms, 250);
    wc_directory_destroy (&dir);
}

//  Progress moves no version; every routing change moves it by one.

static void
test_version_rules (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    wc_node_info_t info = s_info ("us1", "us-east", WC_ROLE_REPLICA,
                                  "127.0.0.1:7100", "127.0.0.1:7000");
    assert_int_equal (wc_directory_update (dir, &info, 0, NULL), 1);
    assert_int_equal (wc_directory_version (dir), 1);

    //  The same again, and progress: no change.
    assert_int_equal (wc_directory_update (dir, &info, 500, NULL), 0);
    info.epoch = 2;
    info.applied_seq = 99;
    info.lag = 5;
    info.lag_ms = 60;
    assert_int_equal (wc_directory_update (dir, &info, 1000, NULL), 0);
    assert_int_equal (wc_directory_version (dir), 1);
    assert_int_equal (s_get (dir, "us1", 1000).applied_seq, 99);
    assert_int_equal (s_get (dir, "us1", 1000).epoch, 2);

    //  Each routing field, one at a time. A new address only once the
    //  old one is down (while it is up, another process has the id):
    //  down is one change, up at the new address another.
    info.addr = s_bytes ("127.0.0.1:7300");
    assert_int_equal (wc_directory_update (dir, &info, 1100, NULL), WALCAST_ECONFLICT);
    assert_int_equal (wc_directory_version (dir), 1);
    assert_int_equal (wc_directory_tick (dir, 1000 + S_TIMEOUT, S_TIMEOUT), 1);
    assert_int_equal (wc_directory_update (dir, &info, 2000 + S_TIMEOUT, NULL), 1);
    assert_int_equal (wc_directory_version (dir), 3);
    s_assert_bytes (s_get (dir, "us1", 2000 + S_TIMEOUT).addr, "127.0.0.1:7300");

    info.region = s_bytes ("us-west");
    assert_int_equal (wc_directory_update (dir, &info, 2500, NULL), 1);
    assert_int_equal (wc_directory_version (dir), 4);
    s_assert_bytes (s_get (dir, "us1", 2500).region, "us-west");

    info.primary = s_bytes ("127.0.0.1:7500");
    assert_int_equal (wc_directory_update (dir, &info, 3000, NULL), 1);
    assert_int_equal (wc_directory_version (dir), 5);
    s_assert_bytes (s_get (dir, "us1", 3000).primary, "127.0.0.1:7500");

    //  A region can become empty again, and empty equals empty.
    info.region = s_bytes ("");
    assert_int_equal (wc_directory_update (dir, &info, 3100, NULL), 1);
    assert_int_equal (wc_directory_version (dir), 6);
    assert_int_equal (wc_directory_update (dir, &info, 3200, NULL), 0);

    //  Flags are a change (a candidate is not yet a primary a client can
    //  write to); handover_seq is progress.
    info.flags = WC_NODE_DIVERGED;
    assert_int_equal (wc_directory_update (dir, &info, 3300, NULL), 1);
    assert_int_equal (wc_directory_version (dir), 7);
    info.handover_seq = 77;
    assert_int_equal (wc_directory_update (dir, &info, 3400, NULL), 0);
    assert_int_equal (s_get (dir, "us1", 3400).handover_seq, 77);
    info.flags = 0;
    assert_int_equal (wc_directory_update (dir, &info, 3450, NULL), 1);
    assert_int_equal (wc_directory_version (dir), 8);

    //  Several changes at once are one event: a replica that becomes the
    //  primary changes its role and drops its primary together.
    info.role = WC_ROLE_PRIMARY;
    info.primary = s_bytes ("");
    assert_int_equal (wc_directory_update (dir, &info, 3500, NULL), 1);
    assert_int_equal (wc_directory_version (dir), 9);
    assert_int_equal (s_get (dir, "us1", 3500).role, WC_ROLE_PRIMARY);

    //  A second node is a change; the first one's is not disturbed.
    wc_node_info_t other = s_info ("us2", "us-east", WC_ROLE_REPLICA,
                                   "127.0.0.1:7400", "127.0.0.1:7100");
    assert_int_equal (wc_directory_update (dir, &other, 4000, NULL), 1);
    assert_int_equal (wc_directory_version (dir), 10);
    assert_int_equal (wc_directory_size (dir), 2);
    assert_int_equal (s_get (dir, "us1", 4000).role, WC_ROLE_PRIMARY);
    wc_directory_destroy (&dir);
}

//  A fake clock: down at the timeout, not a millisecond before; up again
//  when heard; every transition once.

static void
test_liveness (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    wc_node_info_t a = s_info ("a", "r1", WC_ROLE_PRIMARY, "h:1", "");
    wc_node_info_t b = s_info ("b", "r1", WC_ROLE_REPLICA, "h:2", "h:1");
    assert_int_equal (wc_directory_update (dir, &a, 1000, NULL), 1);
    assert_int_equal (wc_directory_update (dir, &b, 1000, NULL), 1);
    uint64_t version = wc_directory_version (dir);

    //  b keeps talking, a goes quiet.
    assert_int_equal (wc_directory_update (dir, &b, 2500, NULL), 0);
    assert_int_equal (wc_directory_tick (dir, 2999, S_TIMEOUT), 0);
    assert_true (s_get (dir, "a", 2999).up);
    assert_int_equal (wc_directory_version (dir), version);

    assert_int_equal (wc_directory_tick (dir, 3000, S_TIMEOUT), 1);
    assert_int_equal (wc_directory_version (dir), version + 1);
    wc_node_info_t got = s_get (dir, "a", 3000);
    assert_false (got.up);
    assert_int_equal (got.silent_ms, 2000);
    assert_true (s_get (dir, "b", 3000).up);
    assert_int_equal (wc_directory_up_count (dir), 1);
    assert_int_equal (wc_directory_size (dir), 2);       // down, not gone

    //  Down once: later ticks change nothing; silent_ms keeps counting.
    assert_int_equal (wc_directory_tick (dir, 3400, S_TIMEOUT), 0);
    assert_int_equal (wc_directory_version (dir), version + 1);
    assert_int_equal (s_get (dir, "a", 3400).silent_ms, 2400);

    //  Both silent: one tick, one version, both down.
    assert_int_equal (wc_directory_tick (dir, 5000, S_TIMEOUT), 1);
    assert_int_equal (wc_directory_version (dir), version + 2);
    assert_int_equal (wc_directory_up_count (dir), 0);

    //  Heard again: up, with its fields, silent 0.
    a.applied_seq = 77;
    assert_int_equal (wc_directory_update (dir, &a, 6000, NULL), 1);
    assert_int_equal (wc_directory_version (dir), version + 3);
    got = s_get (dir, "a", 6000);
    assert_true (got.up);
    assert_int_equal (got.silent_ms, 0);
    assert_int_equal (got.applied_seq, 77);
    assert_int_equal (wc_directory_tick (dir, 7999, S_TIMEOUT), 0);
    assert_int_equal (wc_directory_tick (dir, 8000, S_TIMEOUT), 1);

    //  A clock that goes backwards never gives a negative silence.
    assert_int_equal (s_get (dir, "a", 10).silent_ms, 0);
    wc_directory_destroy (&dir);
}

//  A node_info against the admission rules is refused, changes nothing,
//  and the reason starts with the field at fault.

typedef struct {
    const char *id, *region;
    uint8_t     role;
    uint64_t    epoch;
    const char *addr, *primary;
    int         code;
    const char *starts;     /* the reason starts with this */
} s_refused_t;

static const s_refused_t s_refused [] = {
    { "",    "r", 2, 1, "h:1", "h:9", WALCAST_EPROTO, "id is empty" },
    { "a b", "r", 2, 1, "h:1", "h:9", WALCAST_EPROTO, "id \"a b\" has byte 0x20 at offset 1" },
    { "a\nb", "r", 2, 1, "h:1", "h:9", WALCAST_EPROTO, "id \"a?b\" has byte 0x0A" },
    { "n\x7f", "r", 2, 1, "h:1", "h:9", WALCAST_EPROTO, "id " },
    { "n\xc3\xa9", "r", 2, 1, "h:1", "h:9", WALCAST_EPROTO, "id " },
    { "n",   "eu west", 2, 1, "h:1", "h:9", WALCAST_EPROTO, "region " },
    { "n",   "r", 0, 1, "h:1", "h:9", WALCAST_EPROTO, "role 0 is neither" },
    { "n",   "r", 3, 1, "h:1", "h:9", WALCAST_EPROTO, "role 3 is neither" },
    { "n",   "r", 2, 1, "", "h:9", WALCAST_EPROTO, "addr is empty" },
    { "n",   "r", 2, 1, "nocolon", "h:9", WALCAST_EPROTO, "addr \"nocolon\" is not HOST:PORT" },
    { "n",   "r", 2, 1, "127.0.0.1:0", "h:9", WALCAST_EPROTO, "addr " },
    { "n",   "r", 2, 1, ":99999", "h:9", WALCAST_EPROTO, "addr " },
    { "n",   "r", 2, 1, "a b:5", "h:9", WALCAST_EPROTO, "addr " },
    { "n",   "r", 2, 1, "h:65534", "h:9", WALCAST_EPROTO, "addr " },
    { "n",   "r", 2, 1, "h:1", "", WALCAST_EPROTO, "primary is empty on a replica" },
    { "n",   "r", 2, 1, "h:1", "h", WALCAST_EPROTO, "primary \"h\" is not HOST:PORT" },
    { "n",   "r", 1, 1, "h:1", "h:9", WALCAST_EPROTO, "primary \"h:9\" is set on a primary" },
};

static void
test_invalid_info_refused (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    wc_refusal_t why;
    for (size_t i = 0; i < sizeof s_refused / sizeof s_refused [0]; i++) {
        const s_refused_t *r = &s_refused [i];
        wc_node_info_t info = s_info (r->id, r->region, r->role, r->addr, r->primary);
        info.epoch = r->epoch;
        int rc = wc_directory_update (dir, &info, 0, &why);
        if (rc != r->code || strncmp (why.text, r->starts, strlen (r->starts)) != 0)
            fail_msg ("case %zu: %s \"%s\", expected %s \"%s...\"", i,
                      walcast_errname (rc), why.text, walcast_errname (r->code),
                      r->starts);
        assert_int_equal (wc_directory_update (dir, &info, 0, NULL), r->code);
    }
    char long_id [WC_MAX_ID + 2];
    memset (long_id, 'x', sizeof long_id - 1);
    long_id [sizeof long_id - 1] = '\0';
    char long_addr [WC_MAX_ADDR + 2];           // "yyy...y:1", 256 octets
    memset (long_addr, 'y', sizeof long_addr - 1);
    memcpy (long_addr + sizeof long_addr - 3, ":1", 3);
    wc_node_info_t info = s_info (long_id, "r", WC_ROLE_PRIMARY, "h:1", "");
    assert_int_equal (wc_directory_update (dir, &info, 0, &why), WALCAST_ETOOBIG);
    assert_string_equal (why.text, "id is 65 octets; at most 64");
    info = s_info ("n", long_id, WC_ROLE_PRIMARY, "h:1", "");
    assert_int_equal (wc_directory_update (dir, &info, 0, &why), WALCAST_ETOOBIG);
    info = s_info ("n", "r", WC_ROLE_PRIMARY, long_addr, "");
    assert_int_equal (wc_directory_update (dir, &info, 0, &why), WALCAST_ETOOBIG);
    assert_string_equal (why.text, "addr is 256 octets; at most 255");
    info = s_info ("n", "r", WC_ROLE_REPLICA, "h:1", long_addr);
    assert_int_equal (wc_directory_update (dir, &info, 0, &why), WALCAST_ETOOBIG);
    info = s_info ("n", "r", WC_ROLE_PRIMARY, "h:1", "");
    info.region.ptr = NULL;     // a length without bytes
    assert_int_equal (wc_directory_update (dir, &info, 0, &why), WALCAST_EPROTO);
    assert_int_equal (wc_directory_size (dir), 0);
    assert_int_equal (wc_directory_version (dir), 0);

    //  The longest values that are allowed are fine.
    long_id [WC_MAX_ID] = '\0';
    memmove (long_addr + 1, long_addr + 2, sizeof long_addr - 2);     // 255 octets
    info = s_info (long_id, long_id, WC_ROLE_REPLICA, long_addr + 1, long_addr + 1);
    assert_int_equal (wc_directory_update (dir, &info, 0, &why), 1);
    wc_node_info_t got = s_get (dir, long_id, 0);
    s_assert_bytes (got.region, long_id);
    s_assert_bytes (got.primary, long_addr + 1);

    //  So is epoch 0: a node whose epoch history is empty (a new node).
    wc_node_info_t fresh = s_info ("fresh", "r", WC_ROLE_PRIMARY, "h:3", "");
    fresh.epoch = 0;
    assert_int_equal (wc_directory_update (dir, &fresh, 0, &why), 1);
    assert_int_equal (s_get (dir, "fresh", 0).epoch, 0);

    //  So are IPv6 addresses and every printable character in an id.
    wc_node_info_t v6 = s_info ("!\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~", "r",
                                WC_ROLE_REPLICA, "[::1]:7000", "[2001:db8::7]:65533");
    assert_int_equal (wc_directory_update (dir, &v6, 0, &why), 1);

    //  A bad update of a known node leaves it as it was.
    wc_node_info_t bad = info;
    bad.addr = s_bytes ("nocolon");
    assert_int_equal (wc_directory_update (dir, &bad, 100, &why), WALCAST_EPROTO);
    s_assert_bytes (s_get (dir, long_id, 100).addr, long_addr + 1);
    assert_int_equal (wc_directory_version (dir), 3);
    wc_directory_destroy (&dir);
}

//  The directory owns its strings: the message buffer is gone (here:
//  overwritten) right after the update.

static void
test_strings_are_copied (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    char buffer [64];
    strcpy (buffer, "idA|regA|hostA:1|hostP:2");
    wc_node_info_t info;
    memset (&info, 0, sizeof info);
    info.id.ptr = (const uint8_t *) buffer;
    info.id.len = 3;
    info.region.ptr = (const uint8_t *) buffer + 4;
    info.region.len = 4;
    info.addr.ptr = (const uint8_t *) buffer + 9;
    info.addr.len = 7;
    info.primary.ptr = (const uint8_t *) buffer + 17;
    info.primary.len = 7;
    info.role = WC_ROLE_REPLICA;
    info.epoch = 1;
    assert_int_equal (wc_directory_update (dir, &info, 0, NULL), 1);
    memset (buffer, 'Z', sizeof buffer);

    wc_node_info_t got = s_get (dir, "idA", 0);
    s_assert_bytes (got.region, "regA");
    s_assert_bytes (got.addr, "hostA:1");
    s_assert_bytes (got.primary, "hostP:2");

    //  The same buffer, rewritten, now holds another node.
    strcpy (buffer, "idB|regB|hostB:1|hostP:2");
    assert_int_equal (wc_directory_update (dir, &info, 0, NULL), 1);
    memset (buffer, 0, sizeof buffer);
    assert_int_equal (wc_directory_size (dir), 2);
    s_assert_bytes (s_get (dir, "idA", 0).addr, "hostA:1");
    s_assert_bytes (s_get (dir, "idB", 0).addr, "hostB:1");
    wc_directory_destroy (&dir);
}

//  Ids are compared as bytes: a prefix or a case makes another id. Nodes
//  are listed in id order.

static void
test_ids_are_bytes_in_order (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    const char *ids [] = { "node-2", "node", "node-10", "a~b", "Node", "node-1" };
    for (size_t i = 0; i < 6; i++) {
        wc_node_info_t info = s_info (ids [i], "", WC_ROLE_REPLICA, "h:1", "h:9");
        assert_int_equal (wc_directory_update (dir, &info, 0, NULL), 1);
    }
    assert_int_equal (wc_directory_size (dir), 6);
    const char *sorted [] = { "Node", "a~b", "node", "node-1", "node-10", "node-2" };
    for (size_t i = 0; i < 6; i++) {
        wc_node_info_t got;
        assert_int_equal (wc_directory_get (dir, i, 0, &got), 0);
        s_assert_bytes (got.id, sorted [i]);
    }
    wc_directory_destroy (&dir);
}

//  At most WC_MAX_NODES: a new node is refused while all are up, and
//  takes the place of the longest-silent down node otherwise.

static void
test_limit (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    char id [32];
    for (unsigned i = 0; i < WC_MAX_NODES; i++) {
        snprintf (id, sizeof id, "n%04u", i);
        wc_node_info_t info = s_info (id, "r", WC_ROLE_REPLICA, "h:1", "h:9");
        assert_int_equal (wc_directory_update (dir, &info, (int64_t) i, NULL), 1);
    }
    assert_int_equal (wc_directory_size (dir), WC_MAX_NODES);
    uint64_t version = wc_directory_version (dir);
    assert_int_equal (version, WC_MAX_NODES);

    //  Full of up nodes: refused, nothing changes; known nodes still update.
    wc_node_info_t extra = s_info ("extra", "r", WC_ROLE_REPLICA, "h:9", "h:9");
    assert_int_equal (wc_directory_update (dir, &extra, 1500, NULL), WALCAST_EBUSY);
    assert_int_equal (wc_directory_size (dir), WC_MAX_NODES);
    assert_int_equal (wc_directory_version (dir), version);
    assert_int_equal (s_index_of (dir, "extra", 1500), -1);
    wc_node_info_t known = s_info ("n0000", "r", WC_ROLE_REPLICA, "h:1", "h:9");
    assert_int_equal (wc_directory_update (dir, &known, 1500, NULL), 0);

    //  The whole directory fits in one TOPOLOGY the codec accepts.
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    assert_int_equal (wc_directory_encode_topology (dir, 1, 1500, &out), 0);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    wc_msg_t msg;
    assert_int_equal (wc_msg_decode (out.data, out.size, &unpacked, &msg), 0);
    assert_int_equal (msg.u.topology.count, WC_MAX_NODES);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&out);

    //  At 2100, n0001..n0100 (heard at 1..100) have been silent for the
    //  timeout: down. The longest silent of them (n0001) makes room.
    assert_int_equal (wc_directory_tick (dir, 2100, S_TIMEOUT), 1);
    assert_int_equal (wc_directory_up_count (dir), WC_MAX_NODES - 100);
    assert_int_equal (wc_directory_update (dir, &extra, 2100, NULL), 1);
    assert_int_equal (wc_directory_size (dir), WC_MAX_NODES);
    assert_true (s_index_of (dir, "extra", 2100) >= 0);
    assert_int_equal (s_index_of (dir, "n0001", 2100), -1);
    assert_true (s_index_of (dir, "n0000", 2100) >= 0);
    assert_true (s_index_of (dir, "n0002", 2100) >= 0);
    wc_directory_destroy (&dir);
}

//  up of node id as a TOPOLOGY lists it.
static bool
s_listed_up (wc_directory_t *dir, const char *id, int64_t now)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    assert_int_equal (wc_directory_encode_topology (dir, 1, now, &out), 0);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    wc_msg_t msg;
    assert_int_equal (wc_msg_decode (out.data, out.size, &unpacked, &msg), 0);
    int up = -1;
    for (uint32_t i = 0; i < msg.u.topology.count; i++) {
        wc_node_info_t info;
        assert_int_equal (wc_node_info_from_object (&msg.u.topology.items [i], &info), 0);
        if (info.id.len == strlen (id) && memcmp (info.id.ptr, id, info.id.len) == 0)
            up = info.up;
    }
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&out);
    assert_true (up >= 0);
    return up == 1;
}

//  Every claimant of the primary role is kept, as it said; a TOPOLOGY
//  lists as up only the one the broker named (failover.c), never a
//  candidate (it takes no writes: before, the candidates of a new cluster
//  were listed as up primaries until the first promotion), and naming
//  another moves the version (clients must send writes elsewhere).
static void
test_claimants (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    wc_refusal_t why;
    wc_node_info_t p1 = s_info ("p1", "r", WC_ROLE_PRIMARY, "h:7100", "");
    wc_node_info_t p2 = s_info ("p2", "r", WC_ROLE_PRIMARY, "h:7200", "");
    p2.flags = WC_NODE_CANDIDATE;
    wc_node_info_t r1 = s_info ("r1", "r", WC_ROLE_REPLICA, "h:7300", "h:7100");
    assert_int_equal (wc_directory_update (dir, &p1, 0, &why), 1);
    assert_int_equal (wc_directory_update (dir, &r1, 0, &why), 1);
    assert_int_equal (wc_directory_update (dir, &p2, 100, &why), 1);
    assert_int_equal (wc_directory_size (dir), 3);
    assert_int_equal (s_get (dir, "p2", 100).role, WC_ROLE_PRIMARY);
    assert_int_equal (s_get (dir, "p2", 100).flags, WC_NODE_CANDIDATE);
    //  No primary named: a serving claimant as it is, a candidate down
    assert_true (s_listed_up (dir, "p1", 100));
    assert_false (s_listed_up (dir, "p2", 100));
    assert_true (s_get (dir, "p2", 100).up);         // the broker's own view

    uint64_t version = wc_directory_version (dir);
    wc_directory_set_primary (dir, "p1");
    assert_int_equal (wc_directory_version (dir), version + 1);
    wc_directory_set_primary (dir, "p1");
    assert_int_equal (wc_directory_version (dir), version + 1);
    assert_true (s_listed_up (dir, "p1", 100));
    assert_false (s_listed_up (dir, "p2", 100));
    assert_true (s_listed_up (dir, "r1", 100));
    assert_true (s_get (dir, "p2", 100).up);         // the broker's own view

    //  p2 follows: listed up; p1 no longer the one named: listed down
    wc_node_info_t p2_follows = s_info ("p2", "r", WC_ROLE_REPLICA, "h:7200", "h:7100");
    assert_int_equal (wc_directory_update (dir, &p2_follows, 200, &why), 1);
    assert_true (s_listed_up (dir, "p2", 200));
    wc_directory_set_primary (dir, "r1");
    assert_int_equal (wc_directory_version (dir), version + 3);
    assert_false (s_listed_up (dir, "p1", 200));
    wc_directory_set_primary (dir, NULL);
    assert_true (s_listed_up (dir, "p1", 200));

    //  Lookups by id and by address; an up node before a down one at the
    //  same address
    wc_node_info_t got;
    assert_int_equal (wc_directory_find (dir, "r1", 200, &got), 0);
    s_assert_bytes (got.addr, "h:7300");
    assert_int_equal (wc_directory_find (dir, "r9", 200, &got), WALCAST_ENOTFOUND);
    assert_int_equal (wc_directory_find (dir, "", 200, &got), WALCAST_ENOTFOUND);
    assert_int_equal (wc_directory_find_addr (dir, "h:7200", 6, 200, &got), 0);
    s_assert_bytes (got.id, "p2");
    assert_int_equal (wc_directory_find_addr (dir, "h:72", 4, 200, &got),
                      WALCAST_ENOTFOUND);
    assert_int_equal (wc_directory_tick (dir, 2300, S_TIMEOUT), 1);     // all down
    wc_node_info_t a0 = s_info ("a0", "r", WC_ROLE_REPLICA, "h:7200", "h:7100");
    assert_int_equal (wc_directory_update (dir, &a0, 2400, &why), 1);
    assert_int_equal (wc_directory_find_addr (dir, "h:7200", 6, 2400, &got), 0);
    s_assert_bytes (got.id, "a0");
    assert_int_equal (wc_directory_update (dir, &p2_follows, 2500, &why), 1);
    assert_int_equal (wc_directory_tick (dir, 4450, S_TIMEOUT), 1);     // a0 down
    assert_int_equal (wc_directory_find_addr (dir, "h:7200", 6, 4450, &got), 0);
    s_assert_bytes (got.id, "p2");
    wc_directory_destroy (&dir);
}

//  The largest TOPOLOGY (every node at every limit) fits the size the
//  broker's queues are budgeted by, and nearly fills it.

static void
test_max_topology_size (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    char id [WC_MAX_ID + 1], region [WC_MAX_ID + 1], addr [WC_MAX_ADDR + 1];
    memset (region, 'r', WC_MAX_ID);
    region [WC_MAX_ID] = '\0';
    memset (addr, 'h', WC_MAX_ADDR);
    memcpy (addr + WC_MAX_ADDR - 6, ":65533", 7);
    for (unsigned i = 0; i < WC_MAX_NODES; i++) {
        memset (id, 'n', WC_MAX_ID);
        id [WC_MAX_ID] = '\0';
        char number [16];
        snprintf (number, sizeof number, "%04u", i);
        memcpy (id, number, 4);
        wc_node_info_t info = s_info (id, region, WC_ROLE_REPLICA, addr, addr);
        info.epoch = info.applied_seq = info.lag = info.lag_ms = UINT64_MAX;
        info.flags = info.handover_seq = UINT64_MAX;
        assert_int_equal (wc_directory_update (dir, &info, 0, NULL), 1);
    }
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    assert_int_equal (wc_directory_encode_topology (dir, UINT64_MAX, INT64_MAX, &out), 0);
    print_message ("largest TOPOLOGY: %zu bytes (budgeted: %u)\n", out.size,
                   (unsigned) WC_DIRECTORY_MAX_TOPOLOGY);
    assert_true (out.size <= WC_DIRECTORY_MAX_TOPOLOGY);
    assert_true (out.size > WC_DIRECTORY_MAX_TOPOLOGY - 64);
    msgpack_sbuffer_destroy (&out);
    wc_directory_destroy (&dir);
}

//  What a client receives: the encoded TOPOLOGY decodes through the codec
//  into the same nodes, with the broker's up and silent_ms.

static void
test_topology_decodes (void **state)
{
    (void) state;
    wc_directory_t *dir = wc_directory_new ();
    wc_node_info_t p = s_info ("us1", "us-east", WC_ROLE_PRIMARY, "127.0.0.1:7100", "");
    p.epoch = 4;
    p.applied_seq = 1000;
    wc_node_info_t r = s_info ("eu1", "eu-west", WC_ROLE_REPLICA, "127.0.0.1:7200",
                               "127.0.0.1:7100");
    r.epoch = 4;
    r.applied_seq = 990;
    r.lag = 10;
    r.lag_ms = 35;
    assert_int_equal (wc_directory_update (dir, &p, 1000, NULL), 1);
    assert_int_equal (wc_directory_update (dir, &r, 1000, NULL), 1);
    assert_int_equal (wc_directory_update (dir, &p, 3500, NULL), 0);
    assert_int_equal (wc_directory_tick (dir, 3500, S_TIMEOUT), 1);     // eu1 down

    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    assert_int_equal (wc_directory_encode_topology (dir, 42, 3600, &out), 0);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    wc_msg_t msg;
    assert_int_equal (wc_msg_decode (out.data, out.size, &unpacked, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_TOPOLOGY);
    assert_int_equal (msg.rid, 42);
    assert_int_equal (msg.u.topology.version, wc_directory_version (dir));
    assert_int_equal (msg.u.topology.version, 3);
    assert_int_equal (msg.u.topology.count, 2);

    wc_node_info_t got;
    assert_int_equal (wc_node_info_from_object (&msg.u.topology.items [0], &got), 0);
    s_assert_bytes (got.id, "eu1");
    s_assert_bytes (got.region, "eu-west");
    assert_int_equal (got.role, WC_ROLE_REPLICA);
    assert_int_equal (got.epoch, 4);
    assert_int_equal (got.applied_seq, 990);
    s_assert_bytes (got.addr, "127.0.0.1:7200");
    s_assert_bytes (got.primary, "127.0.0.1:7100");
    assert_int_equal (got.lag, 10);
    assert_int_equal (got.lag_ms, 35);
    assert_false (got.up);
    assert_int_equal (got.silent_ms, 2600);

    assert_int_equal (wc_node_info_from_object (&msg.u.topology.items [1], &got), 0);
    s_assert_bytes (got.id, "us1");
    s_assert_bytes (got.region, "us-east");
    assert_int_equal (got.role, WC_ROLE_PRIMARY);
    assert_int_equal (got.applied_seq, 1000);
    s_assert_bytes (got.addr, "127.0.0.1:7100");
    s_assert_bytes (got.primary, "");
    assert_true (got.up);
    assert_int_equal (got.silent_ms, 100);
    msgpack_unpacked_destroy (&unpacked);

    //  Appends to what the buffer holds; an empty directory is an empty list.
    wc_directory_t *empty = wc_directory_new ();
    size_t before = out.size;
    assert_int_equal (wc_directory_encode_topology (empty, 0, 0, &out), 0);
    msgpack_unpacked_init (&unpacked);
    assert_int_equal (wc_msg_decode (out.data + before, out.size - before,
                                     &unpacked, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_TOPOLOGY);
    assert_int_equal (msg.rid, 0);
    assert_int_equal (msg.u.topology.version, 0);
    assert_int_equal (msg.u.topology.count, 0);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&out);
    wc_directory_destroy (&empty);
    wc_directory_destroy (&dir);
}

int
main (void)
{
    wc_log_set_level (WC_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_new_is_empty),
        cmocka_unit_test (test_register_copies_every_field),
        cmocka_unit_test (test_version_rules),
        cmocka_unit_test (test_liveness),
        cmocka_unit_test (test_invalid_info_refused),
        cmocka_unit_test (test_strings_are_copied),
        cmocka_unit_test (test_ids_are_bytes_in_order),
        cmocka_unit_test (test_limit),
        cmocka_unit_test (test_claimants),
        cmocka_unit_test (test_max_topology_size),
        cmocka_unit_test (test_topology_decodes),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
