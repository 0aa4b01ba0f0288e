/*  test_broker_state.c - the broker's cluster state on disk
    (broker/state.c).

    What an operator relies on: the epoch and primary the broker saved are
    what it reads back after a restart, whatever happened to the process;
    a state file that is damaged in any way stops the broker with the
    file's name and what to do, instead of letting it start from epoch 0
    (it would hand out epochs that were already used); a temporary file
    left by a crash in the middle of a save changes nothing; and two
    brokers cannot share a data directory.

    And its node list (broker/roster.c): the nodes the directory held are
    listed again, down, after a restart; a file that is missing, damaged,
    from a newer broker or hostile costs only those nodes, never a node
    that a REGISTER could not have put in.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "walcast.h"
#include "codec.h"
#include "directory.h"
#include "roster.h"
#include "state.h"

static char s_dir [64];

//  CRC32C (Castagnoli), as the file carries it; "123456789" gives e3069283.
static uint32_t
s_crc32c (const void *buf, size_t len)
{
    const uint8_t *p = (const uint8_t *) buf;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p [i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
    }
    return ~crc;
}

static int
s_setup (void **state)
{
    (void) state;
    snprintf (s_dir, sizeof s_dir, "/tmp/walcast-test-state-XXXXXX");
    return mkdtemp (s_dir) ? 0 : -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    return system (cmd) == 0 ? 0 : -1;
}

static void
s_write_file (const char *name, const char *text, size_t len)
{
    char path [256];
    assert_true (snprintf (path, sizeof path, "%s/%s", s_dir, name) < (int) sizeof path);
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (text, 1, len, file), len);
    fclose (file);
}

//  Encode, then decode: the same state; the text is what an operator sees.
static void
test_text (void **state)
{
    (void) state;
    wc_state_t in = { .epoch = 7, .primary = "us2", .primary_addr = "10.0.0.2:7100" };
    char text [512];
    int len = wc_state_encode (&in, text, sizeof text);
    assert_true (len > 0);
    print_message ("%s", text);
    assert_non_null (strstr (text, "\nepoch=7\nprimary=us2\nprimary_addr=10.0.0.2:7100\n"
                                   "crc32c="));
    assert_int_equal (s_crc32c ("123456789", 9), 0xe3069283);
    char crc [32];
    snprintf (crc, sizeof crc, "crc32c=%08x\n", s_crc32c (text, (size_t) len - 16));
    assert_non_null (strstr (text, crc));
    wc_state_t out;
    char why [256];
    assert_int_equal (wc_state_decode (text, (size_t) len, &out, why, sizeof why), 0);
    assert_int_equal (out.epoch, 7);
    assert_string_equal (out.primary, "us2");
    assert_string_equal (out.primary_addr, "10.0.0.2:7100");

    //  No primary yet; the largest epoch
    wc_state_t none = { .epoch = 0 };
    len = wc_state_encode (&none, text, sizeof text);
    assert_int_equal (wc_state_decode (text, (size_t) len, &out, why, sizeof why), 0);
    assert_int_equal (out.epoch, 0);
    assert_string_equal (out.primary, "");
    wc_state_t big = { .epoch = UINT64_MAX, .primary = "p", .primary_addr = "[::1]:1" };
    len = wc_state_encode (&big, text, sizeof text);
    assert_int_equal (wc_state_decode (text, (size_t) len, &out, why, sizeof why), 0);
    assert_true (out.epoch == UINT64_MAX);
    assert_int_equal (wc_state_encode (&in, text, 40), -1);
}

//  Every way a file can be damaged is refused, none read as a state.
static void
test_damaged (void **state)
{
    (void) state;
    wc_state_t in = { .epoch = 12, .primary = "p1", .primary_addr = "h:7100" };
    char good [512];
    int len = wc_state_encode (&in, good, sizeof good);
    wc_state_t out;
    char why [256];

    //  One flipped bit anywhere (the CRC line included)
    for (int i = 0; i < len; i++) {
        char bad [512];
        memcpy (bad, good, (size_t) len);
        bad [i] ^= 0x04;
        int rc = wc_state_decode (bad, (size_t) len, &out, why, sizeof why);
        if (rc == 0)
            fail_msg ("a flipped bit at offset %d is read as epoch %llu", i,
                      (unsigned long long) out.epoch);
    }
    //  Cut short anywhere, or with something after it
    for (int cut = 0; cut < len; cut++)
        assert_int_not_equal (wc_state_decode (good, (size_t) cut, &out, why, sizeof why), 0);
    char longer [600];
    memcpy (longer, good, (size_t) len);
    memcpy (longer + len, "x\n", 2);
    assert_int_equal (wc_state_decode (longer, (size_t) len + 2, &out, why, sizeof why),
                      WALCAST_EPROTO);

    //  Well checksummed, but against the rules (the CRC is recomputed by
    //  writing the text by hand)
    struct { const char *body; int code; } cases [] = {
        { "format=2\nepoch=1\nprimary=\nprimary_addr=\n", WALCAST_EVERSION },
        { "format=1\nepoch=01\nprimary=\nprimary_addr=\n", WALCAST_EPROTO },
        { "format=1\nepoch=-1\nprimary=\nprimary_addr=\n", WALCAST_EPROTO },
        { "format=1\nepoch=18446744073709551616\nprimary=\nprimary_addr=\n",
          WALCAST_EPROTO },
        { "format=1\nepoch=\nprimary=\nprimary_addr=\n", WALCAST_EPROTO },
        { "format=1\nepoch=3\nprimary=a b\nprimary_addr=h:1\n", WALCAST_EPROTO },
        { "format=1\nepoch=3\nprimary=p\nprimary_addr=nocolon\n", WALCAST_EPROTO },
        { "format=1\nepoch=3\nprimary=p\nprimary_addr=h:65534\n", WALCAST_EPROTO },
        { "format=1\nepoch=3\nprimary=p\nprimary_addr=\n", WALCAST_EPROTO },
        { "format=1\nepoch=3\nprimary=\nprimary_addr=h:1\n", WALCAST_EPROTO },
        { "format=1\nepoch=0\nprimary=p\nprimary_addr=h:1\n", WALCAST_EPROTO },
        { "format=1\nprimary=p\nepoch=3\nprimary_addr=h:1\n", WALCAST_EPROTO },
        { "format=1\nepoch=3\nprimary=p\nprimary_addr=h:1\nextra=1\n", WALCAST_EPROTO },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char text [512];
        int n = snprintf (text, sizeof text, "# walcast-broker cluster state; written "
                          "by the broker, do not edit\n%s", cases [i].body);
        n += snprintf (text + n, sizeof text - (size_t) n, "crc32c=%08x\n",
                       s_crc32c (text, (size_t) n));
        int rc = wc_state_decode (text, (size_t) n, &out, why, sizeof why);
        if (rc != cases [i].code)
            fail_msg ("case %zu: %s (%s), expected %s", i, walcast_errname (rc), why,
                      walcast_errname (cases [i].code));
    }
}

//  Saved, then read back by the next opener; the first opener of an
//  empty directory reads a new cluster; a temporary file left by a crash
//  is not read; a second broker cannot take the directory.
static void
test_file (void **state)
{
    (void) state;
    char sub [128];
    snprintf (sub, sizeof sub, "%s/a/b", s_dir);          // created, like mkdir -p
    wc_state_t got;
    int err = 0;
    char why [512];
    wc_state_file_t *file = wc_state_file_open (sub, &got, &err, why, sizeof why);
    assert_non_null (file);
    assert_int_equal (got.epoch, 0);
    assert_string_equal (got.primary, "");

    //  One broker per directory
    wc_state_file_t *second = wc_state_file_open (sub, &got, &err, why, sizeof why);
    assert_null (second);
    assert_int_equal (err, WALCAST_EBUSY);
    print_message ("second opener: %s\n", why);
    assert_non_null (strstr (why, "walcast-broker"));

    for (uint64_t epoch = 1; epoch <= 5; epoch++) {
        wc_state_t next = { .epoch = epoch, .primary = "p1", .primary_addr = "h:7100" };
        assert_int_equal (wc_state_file_save (file, &next, why, sizeof why), 0);
    }
    wc_state_file_destroy (&file);
    assert_null (file);
    wc_state_file_destroy (&file);

    //  A save that crashed before its rename: the temporary is ignored
    char path [256];
    snprintf (path, sizeof path, "a/b/%s.tmp", WC_STATE_FILE);
    s_write_file (path, "garbage", 7);
    file = wc_state_file_open (sub, &got, &err, why, sizeof why);
    assert_non_null (file);
    assert_int_equal (got.epoch, 5);
    assert_string_equal (got.primary, "p1");
    assert_string_equal (got.primary_addr, "h:7100");
    wc_state_t next = { .epoch = 6, .primary = "r1", .primary_addr = "h:7200" };
    assert_int_equal (wc_state_file_save (file, &next, why, sizeof why), 0);
    wc_state_file_destroy (&file);
    file = wc_state_file_open (sub, &got, &err, why, sizeof why);
    assert_non_null (file);
    assert_int_equal (got.epoch, 6);
    assert_string_equal (got.primary, "r1");
    wc_state_file_destroy (&file);

    //  Damaged on disk: refused, naming the file and the way out
    snprintf (path, sizeof path, "a/b/%s", WC_STATE_FILE);
    s_write_file (path, "# walcast-broker cluster state; written by the broker, "
                  "do not edit\nformat=1\nepoch=9\n", 80);
    file = wc_state_file_open (sub, &got, &err, why, sizeof why);
    assert_null (file);
    assert_int_equal (err, WALCAST_EPROTO);
    print_message ("damaged: %s\n", why);
    assert_non_null (strstr (why, WC_STATE_FILE));
    assert_non_null (strstr (why, "move it away"));
    //  A huge one too
    char *huge = calloc (1, 10000);
    assert_non_null (huge);
    memset (huge, 'x', 9999);
    s_write_file (path, huge, 9999);
    free (huge);
    assert_null (wc_state_file_open (sub, &got, &err, why, sizeof why));
    assert_int_equal (err, WALCAST_EPROTO);
    //  A data directory that is a file
    snprintf (path, sizeof path, "%s/a/b/%s", s_dir, WC_STATE_FILE);
    assert_null (wc_state_file_open (path, &got, &err, why, sizeof why));
    assert_int_equal (err, WALCAST_EIO);
    print_message ("not a directory: %s\n", why);
}

//  A node_info as a node would register it.
static wc_node_info_t
s_info (const char *id, const char *region, int role, const char *addr,
        const char *primary, uint64_t seq)
{
    wc_node_info_t info;
    memset (&info, 0, sizeof info);
    info.id = (wc_bytes_t) { (const uint8_t *) id, (uint32_t) strlen (id) };
    info.region = (wc_bytes_t) { (const uint8_t *) region, (uint32_t) strlen (region) };
    info.role = (uint8_t) role;
    info.epoch = 3;
    info.applied_seq = seq;
    info.addr = (wc_bytes_t) { (const uint8_t *) addr, (uint32_t) strlen (addr) };
    info.primary = (wc_bytes_t) { (const uint8_t *) primary, (uint32_t) strlen (primary) };
    info.up = true;
    return info;
}

//  The roster file for a TOPOLOGY body: magic, format, CRC32C, body.
static void
s_write_roster (char format, const msgpack_sbuffer *body)
{
    char *file = malloc (12 + body->size);
    assert_non_null (file);
    memcpy (file, "WCNODES", 7);
    file [7] = format;
    uint32_t crc = s_crc32c (body->data, body->size);
    for (int i = 0; i < 4; i++)
        file [8 + i] = (char) (crc >> (24 - 8 * i));
    memcpy (file + 12, body->data, body->size);
    s_write_file (WC_ROSTER_FILE, file, 12 + body->size);
    free (file);
}

//  Saved, then read back into a new directory: every node, each down,
//  with what it last said; a missing file is an empty list; a damaged,
//  newer or hostile one is refused or filtered, with the file named.
static void
test_roster (void **state)
{
    (void) state;
    char why [512];
    size_t skipped = 99;
    wc_directory_t *dir = wc_directory_new ();
    assert_non_null (dir);
    assert_int_equal (wc_roster_load (s_dir, dir, 0, &skipped, why, sizeof why), 0);
    assert_int_equal (skipped, 0);

    wc_node_info_t p1 = s_info ("p1", "us", WC_ROLE_PRIMARY, "h1:7100", "", 42);
    wc_node_info_t r1 = s_info ("r1", "eu", WC_ROLE_REPLICA, "h2:7100", "h1:7100", 40);
    assert_int_equal (wc_directory_update (dir, &p1, 1000, NULL), 1);
    assert_int_equal (wc_directory_update (dir, &r1, 1000, NULL), 1);
    assert_int_equal (wc_roster_save (s_dir, dir, 1000, why, sizeof why), 0);
    wc_directory_destroy (&dir);

    dir = wc_directory_new ();
    assert_non_null (dir);
    assert_int_equal (wc_roster_load (s_dir, dir, 5000, &skipped, why, sizeof why), 2);
    assert_int_equal (skipped, 0);
    assert_int_equal (wc_directory_size (dir), 2);
    assert_int_equal (wc_directory_up_count (dir), 0);
    assert_true (wc_directory_version (dir) > 0);
    wc_node_info_t got;
    assert_int_equal (wc_directory_find (dir, "r1", 5600, &got), 0);
    assert_false (got.up);
    assert_int_equal (got.silent_ms, 600);
    assert_int_equal (got.role, WC_ROLE_REPLICA);
    assert_int_equal (got.applied_seq, 40);
    assert_memory_equal (got.region.ptr, "eu", 2);
    assert_memory_equal (got.primary.ptr, "h1:7100", 7);
    //  It beats again: up, as any node that returns
    assert_int_equal (wc_directory_update (dir, &r1, 5700, NULL), 1);
    assert_int_equal (wc_directory_up_count (dir), 1);
    //  A second restore of a listed id is refused
    assert_int_equal (wc_directory_restore (dir, &p1, 5700, NULL), WALCAST_ECONFLICT);

    //  A bit flipped on disk: damaged, named; nothing restored
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    assert_int_equal (wc_directory_encode_topology (dir, 0, 5700, &body), 0);
    s_write_roster ('1', &body);
    wc_directory_t *fresh = wc_directory_new ();
    assert_non_null (fresh);
    assert_int_equal (wc_roster_load (s_dir, fresh, 0, &skipped, why, sizeof why), 2);
    wc_directory_destroy (&fresh);
    char path [256];
    snprintf (path, sizeof path, "%s/%s", s_dir, WC_ROSTER_FILE);
    FILE *f = fopen (path, "r+b");
    assert_non_null (f);
    long at = 12 + (long) body.size / 2;
    assert_int_equal (fseek (f, at, SEEK_SET), 0);
    assert_true (fputc ((unsigned char) body.data [at - 12] ^ 0x10, f) != EOF);
    fclose (f);
    fresh = wc_directory_new ();
    assert_non_null (fresh);
    assert_int_equal (wc_roster_load (s_dir, fresh, 0, &skipped, why, sizeof why),
                      WALCAST_EPROTO);
    print_message ("damaged: %s\n", why);
    assert_non_null (strstr (why, WC_ROSTER_FILE));
    assert_non_null (strstr (why, "crc32c"));
    assert_int_equal (wc_directory_size (fresh), 0);
    //  kept aside for the operator, where the next save will not go
    char aside [300];
    snprintf (aside, sizeof aside, "%s.bad", path);
    assert_int_equal (access (aside, F_OK), 0);
    assert_int_equal (access (path, F_OK), -1);
    assert_non_null (strstr (why, "kept as"));

    //  From a newer broker
    s_write_roster ('2', &body);
    assert_int_equal (wc_roster_load (s_dir, fresh, 0, &skipped, why, sizeof why),
                      WALCAST_EVERSION);
    print_message ("newer: %s\n", why);
    //  Not a roster at all
    s_write_file (WC_ROSTER_FILE, "garbage", 7);
    assert_int_equal (wc_roster_load (s_dir, fresh, 0, &skipped, why, sizeof why),
                      WALCAST_EPROTO);
    //  A valid CRC over something that is not a TOPOLOGY
    msgpack_sbuffer other;
    msgpack_sbuffer_init (&other);
    msgpack_sbuffer_write (&other, "\x93\x01\x02\x03", 4);
    s_write_roster ('1', &other);
    assert_int_equal (wc_roster_load (s_dir, fresh, 0, &skipped, why, sizeof why),
                      WALCAST_EPROTO);
    msgpack_sbuffer_destroy (&other);

    //  Hostile, with a valid CRC: a node a REGISTER could not put in (an
    //  address that is not HOST:PORT) is skipped, the others restored
    msgpack_sbuffer_init (&other);
    assert_int_equal (wc_topology_encode_header (0, 7, 2, &other), 0);
    wc_node_info_t bad = s_info ("x1", "", WC_ROLE_REPLICA, "a b:5", "h1:7100", 1);
    assert_int_equal (wc_node_info_encode (&bad, &other), 0);
    assert_int_equal (wc_node_info_encode (&r1, &other), 0);
    s_write_roster ('1', &other);
    assert_int_equal (wc_roster_load (s_dir, fresh, 0, &skipped, why, sizeof why), 1);
    assert_int_equal (skipped, 1);
    assert_int_equal (wc_directory_size (fresh), 1);
    assert_int_equal (wc_directory_find (fresh, "x1", 0, &got), WALCAST_ENOTFOUND);
    msgpack_sbuffer_destroy (&other);
    msgpack_sbuffer_destroy (&body);
    wc_directory_destroy (&fresh);
    wc_directory_destroy (&dir);

    //  Not a regular file (a FIFO would block a read): refused at once
    unlink (path);
    assert_int_equal (mkfifo (path, 0600), 0);
    dir = wc_directory_new ();
    assert_int_equal (wc_roster_load (s_dir, dir, 0, &skipped, why, sizeof why),
                      WALCAST_EIO);
    print_message ("fifo: %s\n", why);
    wc_directory_destroy (&dir);
    unlink (path);

    //  A data directory that cannot be written: the save fails and says why
    snprintf (path, sizeof path, "%s/nosuch", s_dir);
    dir = wc_directory_new ();
    assert_int_equal (wc_roster_save (path, dir, 0, why, sizeof why), WALCAST_EIO);
    print_message ("cannot save: %s\n", why);
    wc_directory_destroy (&dir);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_text),
        cmocka_unit_test (test_damaged),
        cmocka_unit_test_setup_teardown (test_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_roster, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
