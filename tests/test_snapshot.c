/*  test_snapshot.c - snapshot files and their writer thread
    (storage/snapshot.c).

    What a node relies on: a snapshot loads back as exactly the state it
    was taken from (digest, keys, the epoch history, the seq), whatever
    the loop did to the store while the writer thread worked; a file that
    is damaged anywhere (a flipped byte, a cut, junk appended, a lying
    header) is refused as damaged, never half loaded; a write that fails
    at any step, or is cancelled, leaves no snapshot file behind; and the
    writer's socket says when a write has ended.

    Nothing waits with a sleep: a vfs hook holds the writer thread inside
    its first write while the test changes the store (vfs_gate.h).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "walcast.h"
#include "wc_limits.h"
#include "crc32c.h"
#include "log.h"
#include "snapshot.h"
#include "vfs.h"
#include "vfs_gate.h"

static char s_root [64];
static char s_dir [96];

typedef struct {
    int dirfd;
    wc_store_t *store;
    wc_epochs_t *history;
} fixture_t;

static int
s_setup (void **state)
{
    static int n;
    snprintf (s_dir, sizeof s_dir, "%s/%d", s_root, ++n);
    if (mkdir (s_dir, 0755) != 0)
        return -1;
    fixture_t *f = calloc (1, sizeof *f);
    f->dirfd = open (s_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    f->store = wc_store_new ();
    f->history = wc_epochs_new ();
    wc_epochs_add (f->history, 1, 1);
    wc_epochs_add (f->history, 3, 40);
    wc_epochs_add (f->history, 4, 1000);        //  after the snapshots' seqs
    wc_vfs_reset ();
    gate_install (WC_VFS_WRITE);
    *state = f;
    return f->dirfd >= 0 && f->store && f->history ? 0 : -1;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    gate_open ();
    wc_vfs_reset ();
    wc_store_destroy (&f->store);
    wc_epochs_destroy (&f->history);
    close (f->dirfd);
    free (f);
    return 0;
}

//  Put key:n -> a value of n % 300 bytes (binary), for n in from..to-1.
static void
s_fill (wc_store_t *store, size_t from, size_t to)
{
    uint8_t value [300];
    for (size_t n = from; n < to; n++) {
        char key [32];
        int klen = snprintf (key, sizeof key, "key:%zu", n);
        for (size_t i = 0; i < n % 300; i++)
            value [i] = (uint8_t) (n + i);
        assert_int_equal (wc_store_put (store, key, (size_t) klen, value, n % 300), 0);
    }
}

//  Freeze the fixture's store and write it as snapshot seq; returns bytes.
static uint64_t
s_write (fixture_t *f, uint64_t seq)
{
    const wc_store_frozen_t *view;
    assert_int_equal (wc_store_freeze (f->store, &view), 0);
    wc_snapshot_info_t info = { .seq = seq, .ts_ms = 1234 };
    uint64_t bytes = 0;
    char why [256];
    int rc = wc_snapshot_write (f->dirfd, &info, f->history, view, NULL, &bytes, why,
                                sizeof why);
    if (rc != 0)
        fail_msg ("write: %s", why);
    wc_store_thaw (f->store);
    return bytes;
}

//  Load snapshot seq and check it holds the fixture's store as it is.
static void
s_assert_loads (fixture_t *f, uint64_t seq)
{
    wc_store_t *got = NULL;
    wc_epochs_t *history = wc_epochs_new ();
    wc_snapshot_info_t info;
    char why [256];
    int rc = wc_snapshot_load (f->dirfd, seq, &got, history, &info, why, sizeof why);
    if (rc != 0)
        fail_msg ("load: %s", why);
    assert_int_equal (info.seq, seq);
    assert_int_equal (info.ts_ms, 1234);
    assert_int_equal (info.count, wc_store_count (f->store));
    assert_true (info.digest == wc_store_digest (f->store));
    assert_true (wc_store_digest (got) == wc_store_digest (f->store));
    assert_int_equal (wc_store_count (got), wc_store_count (f->store));
    //  The history up to seq, not the epoch begun after it
    wc_epochs_t *want = wc_epochs_new ();
    assert_int_equal (wc_epochs_copy (want, f->history), 0);
    wc_epochs_cut (want, seq);
    assert_true (wc_epochs_equal (history, want));
    wc_epochs_destroy (&want);
    wc_epochs_destroy (&history);
    wc_store_destroy (&got);
}

static void
s_path (char *buf, size_t size, uint64_t seq)
{
    char name [WC_SNAPSHOT_NAME_SIZE];
    snprintf (buf, size, "%s/%s", s_dir, wc_snapshot_name (name, seq));
}

//  Files in the test directory.
static size_t
s_files (void)
{
    char command [160];
    snprintf (command, sizeof command, "ls %s | wc -l", s_dir);
    FILE *p = popen (command, "r");
    size_t n = 0;
    assert_int_equal (fscanf (p, "%zu", &n), 1);
    pclose (p);
    return n;
}

/*  Names, and a round trip of a state with empty, binary and largest
    values. */
static void
test_round_trip (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char name [WC_SNAPSHOT_NAME_SIZE];
    assert_string_equal (wc_snapshot_name (name, 42), "snapshot-00000000000000000042.snap");
    assert_int_equal (wc_snapshot_parse_name (name), 42);
    assert_int_equal (wc_snapshot_parse_name ("snapshot-00000000000000000042.snap.tmp"), 0);
    assert_int_equal (wc_snapshot_parse_name ("snapshot-0000000000000000004x.snap"), 0);
    assert_int_equal (wc_snapshot_parse_name ("snapshot-99999999999999999999.snap"), 0);

    s_write (f, 5);                             //  an empty state
    s_assert_loads (f, 5);
    s_fill (f->store, 0, 5000);
    char *big = calloc (1, WC_MAX_VALUE);
    assert_int_equal (wc_store_put (f->store, "big", 3, big, WC_MAX_VALUE), 0);
    free (big);
    s_write (f, 700);
    s_assert_loads (f, 700);
    uint64_t *seqs;
    size_t count;
    assert_int_equal (wc_snapshot_list (f->dirfd, &seqs, &count), 0);
    assert_int_equal (count, 2);
    assert_int_equal (seqs [0], 5);
    assert_int_equal (seqs [1], 700);
    free (seqs);
    assert_int_equal (s_files (), 2);           //  no temp file left
    wc_snapshot_info_t info;
    char why [256];
    assert_int_equal (wc_snapshot_load (f->dirfd, 6, NULL, NULL, &info, why, sizeof why),
                      WALCAST_ENOTFOUND);
}

//  Expect the snapshot at path to be refused as damaged.
static void
s_assert_damaged (fixture_t *f, uint64_t seq)
{
    wc_store_t *got = NULL;
    wc_snapshot_info_t info;
    char why [256] = "";
    assert_int_equal (wc_snapshot_load (f->dirfd, seq, &got, NULL, &info, why, sizeof why),
                      WALCAST_EPROTO);
    assert_null (got);
    assert_true (strlen (why) > 0);
}

/*  Damage anywhere is found: every byte of a small snapshot flipped in
    turn, every length it could be cut to, junk after it. */
static void
test_damage (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_fill (f->store, 0, 20);
    uint64_t bytes = s_write (f, 77);
    char path [160];
    s_path (path, sizeof path, 77);
    FILE *file = fopen (path, "r+b");
    assert_non_null (file);
    for (uint64_t at = 0; at < bytes; at++) {
        fseek (file, (long) at, SEEK_SET);
        int c = fgetc (file);
        fseek (file, (long) at, SEEK_SET);
        fputc (c ^ 0x04, file);
        fflush (file);
        s_assert_damaged (f, 77);
        fseek (file, (long) at, SEEK_SET);
        fputc (c, file);
        fflush (file);
    }
    fclose (file);
    s_assert_loads (f, 77);
    for (uint64_t len = 0; len < bytes; len++) {
        assert_int_equal (truncate (path, (off_t) len), 0);
        s_assert_damaged (f, 77);
        s_write (f, 77);
    }
    file = fopen (path, "ab");
    fputs ("junk", file);
    fclose (file);
    s_assert_damaged (f, 77);
    //  A file whose name says another seq than its header
    s_write (f, 77);
    char other [160];
    s_path (other, sizeof other, 78);
    assert_int_equal (rename (path, other), 0);
    s_assert_damaged (f, 78);
}

//  Write a file of the given header fields and pairs (key i -> "v") with
//  a good CRC, as a lying writer would.
static void
s_craft (uint64_t seq, uint64_t format, uint64_t count, uint64_t digest,
         const char **keys, size_t nkeys)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 7);
    msgpack_pack_str_with_body (&pk, "walcast-snapshot", 16);
    msgpack_pack_uint64 (&pk, format);
    msgpack_pack_uint64 (&pk, seq);
    msgpack_pack_array (&pk, 0);
    msgpack_pack_uint64 (&pk, count);
    msgpack_pack_uint64 (&pk, digest);
    msgpack_pack_uint64 (&pk, 1234);
    for (size_t i = 0; i < nkeys; i++) {
        msgpack_pack_array (&pk, 2);
        msgpack_pack_bin_with_body (&pk, keys [i], strlen (keys [i]));
        msgpack_pack_bin_with_body (&pk, "v", 1);
    }
    uint32_t crc = wc_crc32c (0, buf.data, buf.size);
    uint8_t tail [4] = { (uint8_t) crc, (uint8_t) (crc >> 8), (uint8_t) (crc >> 16),
                         (uint8_t) (crc >> 24) };
    msgpack_sbuffer_write (&buf, (const char *) tail, 4);
    char path [160];
    s_path (path, sizeof path, seq);
    FILE *file = fopen (path, "wb");
    assert_int_equal (fwrite (buf.data, 1, buf.size, file), buf.size);
    fclose (file);
    msgpack_sbuffer_destroy (&buf);
}

/*  A header that lies is caught even under a good CRC. */
static void
test_lying_header (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    wc_store_put (f->store, "a", 1, "v", 1);
    wc_store_put (f->store, "b", 1, "v", 1);
    uint64_t digest = wc_store_digest (f->store);
    const char *keys [] = { "a", "b", "a" };
    s_craft (9, 1, 2, digest, keys, 2);
    s_write (f, 10);
    s_assert_loads (f, 10);                     //  the crafting is right...
    wc_store_t *got = NULL;
    wc_snapshot_info_t info;
    char why [256];
    assert_int_equal (wc_snapshot_load (f->dirfd, 9, &got, NULL, &info, why, sizeof why), 0);
    wc_store_destroy (&got);
    s_craft (9, 2, 2, digest, keys, 2);      //  ...and each lie is refused
    s_assert_damaged (f, 9);
    s_craft (9, 1, 2, digest + 1, keys, 2);
    s_assert_damaged (f, 9);
    s_craft (9, 1, 3, digest, keys, 3);      //  a key twice
    s_assert_damaged (f, 9);
    s_craft (9, 1, 3, digest, keys, 2);      //  fewer pairs than counted
    s_assert_damaged (f, 9);
    s_craft (9, 1, 1, digest, keys, 2);      //  more
    s_assert_damaged (f, 9);
    s_craft (9, 1, UINT64_MAX, digest, keys, 2);
    s_assert_damaged (f, 9);
}

/*  Every step of a write fails in turn: the error says so and nothing is
    left in the directory. */
static void
test_write_faults (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_fill (f->store, 0, 30000);                //  several chunks
    struct { wc_vfs_op_t op; uint64_t after; int err; int want; } faults [] = {
        { WC_VFS_OPEN, 0, EMFILE, WALCAST_EIO }, { WC_VFS_WRITE, 0, ENOSPC, WALCAST_ENOSPC },
        { WC_VFS_WRITE, 2, EIO, WALCAST_EIO }, { WC_VFS_SYNC, 0, EIO, WALCAST_EIO },
        { WC_VFS_RENAME, 0, EIO, WALCAST_EIO }, { WC_VFS_SYNC, 1, EIO, WALCAST_EIO },
    };
    const wc_store_frozen_t *view;
    assert_int_equal (wc_store_freeze (f->store, &view), 0);
    wc_snapshot_info_t info = { .seq = 30, .ts_ms = 1234 };
    for (size_t k = 0; k < sizeof faults / sizeof faults [0]; k++) {
        wc_vfs_fail (faults [k].op, faults [k].after, 1, faults [k].err);
        uint64_t bytes = 99;
        char why [256] = "";
        assert_int_equal (wc_snapshot_write (f->dirfd, &info, f->history, view, NULL,
                                             &bytes, why, sizeof why), faults [k].want);
        wc_vfs_reset ();
        gate_install (WC_VFS_WRITE);
        assert_int_equal (bytes, 0);
        assert_true (strlen (why) > 0);
        assert_int_equal (s_files (), 0);
    }
    atomic_bool cancel;
    atomic_init (&cancel, true);
    uint64_t bytes;
    char why [256];
    assert_int_equal (wc_snapshot_write (f->dirfd, &info, f->history, view, &cancel,
                                         &bytes, why, sizeof why), WALCAST_EBUSY);
    assert_int_equal (s_files (), 0);
    wc_store_thaw (f->store);
}

//  Wait (10 s at most) until the writer's socket is readable.
static void
s_wait_readable (wc_snapshotter_t *writer)
{
    zmq_pollitem_t item = { wc_snapshotter_sock (writer), 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 10000), 1);
}

/*  The writer thread writes the view of the freeze while the store
    changes under it (held inside its first write meanwhile), and its
    socket says when it is done. */
static void
test_writer_consistent (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_fill (f->store, 0, 20000);
    wc_snapshotter_t *writer = wc_snapshotter_new (f->dirfd, s_dir);
    assert_non_null (writer);
    const wc_store_frozen_t *view;
    assert_int_equal (wc_store_freeze (f->store, &view), 0);
    uint64_t digest = wc_store_digest (f->store);
    wc_snapshot_info_t info = { .seq = 500, .ts_ms = 1234 };
    gate_close ();
    assert_int_equal (wc_snapshotter_start (writer, &info, f->history, view), 0);
    assert_true (wc_snapshotter_busy (writer));
    assert_int_equal (wc_snapshotter_start (writer, &info, f->history, view), WALCAST_EBUSY);
    gate_wait_hold (0);
    //  The loop goes on: rewrites, deletes, new keys
    for (size_t n = 0; n < 20000; n += 3)
        assert_int_equal (wc_store_put (f->store, "key:1", 5, "xxxxxxx", (size_t) (n % 7)), 0);
    s_fill (f->store, 10000, 40000);
    for (size_t n = 0; n < 5000; n++) {
        char key [32];
        assert_int_equal (wc_store_del (f->store, key,
                          (size_t) snprintf (key, sizeof key, "key:%zu", n)), 0);
    }
    wc_snapshot_result_t result;
    assert_int_equal (wc_snapshotter_take (writer, 0, &result), 0);
    gate_open ();
    s_wait_readable (writer);
    wc_snapshotter_drain (writer);
    assert_int_equal (wc_snapshotter_take (writer, -1, &result), 1);
    assert_false (wc_snapshotter_busy (writer));
    assert_int_equal (result.rc, 0);
    assert_int_equal (result.seq, 500);
    wc_store_thaw (f->store);
    //  The file holds the state of the freeze, not the one after it
    wc_store_t *got = NULL;
    wc_snapshot_info_t loaded;
    char why [256];
    assert_int_equal (wc_snapshot_load (f->dirfd, 500, &got, NULL, &loaded, why, sizeof why),
                      0);
    assert_true (wc_store_digest (got) == digest);
    assert_true (wc_store_digest (got) != wc_store_digest (f->store));
    assert_int_equal (loaded.bytes, result.bytes);
    wc_store_destroy (&got);
    wc_snapshotter_destroy (&writer);
    wc_snapshotter_destroy (&writer);
}

/*  A write cancelled while it runs ends with WALCAST_EBUSY and leaves
    nothing; the writer then takes the next one. Destroying a writer in
    the middle of a write works too. */
static void
test_writer_cancel (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_fill (f->store, 0, 30000);
    wc_snapshotter_t *writer = wc_snapshotter_new (f->dirfd, s_dir);
    assert_non_null (writer);
    const wc_store_frozen_t *view;
    assert_int_equal (wc_store_freeze (f->store, &view), 0);
    wc_snapshot_info_t info = { .seq = 600, .ts_ms = 1234 };
    gate_close ();
    assert_int_equal (wc_snapshotter_start (writer, &info, f->history, view), 0);
    gate_wait_hold (0);
    wc_snapshotter_cancel (writer);
    gate_open ();
    wc_snapshot_result_t result;
    assert_int_equal (wc_snapshotter_take (writer, 10000, &result), 1);
    assert_int_equal (result.rc, WALCAST_EBUSY);
    assert_int_equal (s_files (), 0);
    s_wait_readable (writer);                   //  the end is still told
    assert_int_equal (wc_snapshotter_start (writer, &info, f->history, view), 0);
    assert_int_equal (wc_snapshotter_take (writer, -1, &result), 1);
    assert_int_equal (result.rc, 0);
    assert_int_equal (s_files (), 1);
    gate_close ();
    info.seq = 601;
    assert_int_equal (wc_snapshotter_start (writer, &info, f->history, view), 0);
    gate_wait_hold (0);
    gate_open ();
    wc_snapshotter_destroy (&writer);
    wc_store_thaw (f->store);
    uint64_t *seqs;
    size_t count;
    assert_int_equal (wc_snapshot_list (f->dirfd, &seqs, &count), 0);
    assert_true (count == 1 || (count == 2 && seqs [1] == 601));
    free (seqs);
}

int
main (void)
{
    snprintf (s_root, sizeof s_root, "/tmp/test_snapshot.XXXXXX");
    if (!mkdtemp (s_root))
        return 1;
    wc_log_set_level (WC_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_damage, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lying_header, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_write_faults, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_writer_consistent, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_writer_cancel, s_setup, s_teardown),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s", s_root);
    if (system (command) != 0)
        rc = 1;
    return rc;
}
