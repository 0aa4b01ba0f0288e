/*  test_epochs.c - the epoch history (storage/epochs.c) and the small
    files it is kept in (storage/files.c).

    What a node relies on: EPOCH_END answers with the largest epoch at or
    below the one asked and the seq before the next epoch began (or the
    end of the log), so that a replica finds the fork point exactly; the
    history is fitted to a log that lost its tail without losing the
    latest epoch (a primary begins it before writing); and the file on
    disk is either the old history or the new one after any failure, and
    a damaged file is refused, never half read.
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
#include <unistd.h>

#include "walcast.h"
#include "epochs.h"
#include "files.h"
#include "log.h"
#include "vfs.h"

static char s_dir [64];

//  A history from pairs e1, s1, e2, s2, ... (0-terminated).
static wc_epochs_t *
s_history (const uint64_t *pairs)
{
    wc_epochs_t *h = wc_epochs_new ();
    assert_non_null (h);
    for (size_t i = 0; pairs [i]; i += 2)
        assert_int_equal (wc_epochs_add (h, pairs [i], pairs [i + 1]), 0);
    return h;
}

static void
s_assert_history (const wc_epochs_t *h, const uint64_t *pairs)
{
    size_t n = 0;
    while (pairs [2 * n])
        n++;
    assert_int_equal (wc_epochs_count (h), n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal (wc_epochs_items (h) [i].epoch, pairs [2 * i]);
        assert_int_equal (wc_epochs_items (h) [i].first_seq, pairs [2 * i + 1]);
    }
}

static void
s_assert_end (const wc_epochs_t *h, uint64_t epoch, uint64_t last, uint64_t want_found,
              uint64_t want_end)
{
    uint64_t found = 99, end = 99;
    wc_epochs_end (h, epoch, last, &found, &end);
    assert_int_equal (found, want_found);
    assert_int_equal (end, want_end);
}

/*  Epochs only go up, first seqs never down. */
static void
test_add_rules (void **state)
{
    (void) state;
    wc_epochs_t *h = wc_epochs_new ();
    assert_int_equal (wc_epochs_latest (h), 0);
    assert_int_equal (wc_epochs_add (h, 1, 0), WALCAST_EINVAL);
    assert_int_equal (wc_epochs_add (h, 1, 1), 0);
    assert_int_equal (wc_epochs_add (h, 1, 5), WALCAST_EINVAL);
    assert_int_equal (wc_epochs_add (h, 3, 10), 0);
    assert_int_equal (wc_epochs_add (h, 2, 20), WALCAST_EINVAL);
    assert_int_equal (wc_epochs_add (h, 4, 9), WALCAST_EINVAL);
    assert_int_equal (wc_epochs_add (h, 4, 10), 0);      //  begun, no write
    assert_int_equal (wc_epochs_latest (h), 4);
    assert_int_equal (wc_epochs_latest_first (h), 10);
    s_assert_history (h, (uint64_t []) { 1, 1, 3, 10, 4, 10, 0 });
    char text [64];
    assert_string_equal (wc_epochs_text (h, text, sizeof text), "1@1 3@10 4@10");
    assert_string_equal (wc_epochs_text (h, text, 14), "1@1 3@10 ...");
    assert_string_equal (wc_epochs_text (h, text, 12), "1@1 ...");
    wc_epochs_destroy (&h);
    wc_epochs_destroy (&h);
}

/*  EPOCH_END, and a node's own last seq of an epoch: the fork point is
    the smaller of the two. */
static void
test_epoch_end (void **state)
{
    (void) state;
    wc_epochs_t *h = s_history ((uint64_t []) { 1, 1, 2, 57, 4, 120, 5, 120, 0 });
    s_assert_end (h, 0, 150, 0, 0);
    s_assert_end (h, 1, 150, 1, 56);
    s_assert_end (h, 2, 150, 2, 119);
    s_assert_end (h, 3, 150, 2, 119);           //  the largest at or below 3
    s_assert_end (h, 4, 150, 4, 119);           //  ended without a write
    s_assert_end (h, 5, 150, 5, 150);           //  the latest: the log's end
    s_assert_end (h, 9, 150, 5, 150);
    s_assert_end (h, 2, 100, 2, 100);           //  never past what is held
    assert_int_equal (wc_epochs_last_seq (h, 0, 150), 0);
    assert_int_equal (wc_epochs_last_seq (h, 1, 150), 56);
    assert_int_equal (wc_epochs_last_seq (h, 3, 150), 119);
    assert_int_equal (wc_epochs_last_seq (h, 5, 150), 150);
    assert_int_equal (wc_epochs_last_seq (h, 2, 80), 80);
    wc_epochs_t *empty = wc_epochs_new ();
    s_assert_end (empty, 3, 10, 0, 0);
    assert_int_equal (wc_epochs_last_seq (empty, 3, 10), 10);
    wc_epochs_destroy (&empty);

    //  A replica whose epoch 3 ran to 130 asks a new primary whose
    //  history skipped epoch 3: the answer is epoch 2 ending at 119, and
    //  the replica's own last seq of epochs <= 2 is 99: fork at 99.
    wc_epochs_t *replica = s_history ((uint64_t []) { 1, 1, 2, 57, 3, 100, 0 });
    uint64_t found, end;
    wc_epochs_end (h, wc_epochs_latest (replica), 150, &found, &end);
    assert_int_equal (found, 2);
    uint64_t own = wc_epochs_last_seq (replica, found, 130);
    assert_int_equal (own, 99);
    assert_int_equal (end < own ? end : own, 99);
    wc_epochs_destroy (&replica);
    wc_epochs_destroy (&h);
}

/*  Truncation forgets the epochs that begin after the cut. */
static void
test_cut (void **state)
{
    (void) state;
    wc_epochs_t *h = s_history ((uint64_t []) { 1, 1, 2, 57, 4, 120, 5, 120, 0 });
    wc_epochs_cut (h, 120);
    s_assert_history (h, (uint64_t []) { 1, 1, 2, 57, 4, 120, 5, 120, 0 });
    wc_epochs_cut (h, 119);
    s_assert_history (h, (uint64_t []) { 1, 1, 2, 57, 0 });
    wc_epochs_cut (h, 0);
    assert_int_equal (wc_epochs_count (h), 0);
    wc_epochs_destroy (&h);
}

/*  A log that lost its tail: epochs past its end go, but the latest
    stays, brought down to the log's end + 1. */
static void
test_reconcile (void **state)
{
    (void) state;
    wc_epochs_t *h = s_history ((uint64_t []) { 3, 50, 4, 120, 5, 125, 0 });
    assert_false (wc_epochs_reconcile (h, 130));
    assert_false (wc_epochs_reconcile (h, 124));        //  5 begins at 125 = end + 1
    assert_true (wc_epochs_reconcile (h, 110));
    s_assert_history (h, (uint64_t []) { 3, 50, 5, 111, 0 });
    assert_true (wc_epochs_reconcile (h, 0));
    s_assert_history (h, (uint64_t []) { 5, 1, 0 });
    wc_epochs_t *empty = wc_epochs_new ();
    assert_false (wc_epochs_reconcile (empty, 10));
    wc_epochs_destroy (&empty);
    wc_epochs_destroy (&h);
}

/*  A merge adds what is missing and keeps first seqs in order. */
static void
test_merge (void **state)
{
    (void) state;
    wc_epochs_t *h = s_history ((uint64_t []) { 1, 1, 3, 100, 0 });
    wc_epochs_t *log = s_history ((uint64_t []) { 3, 140, 4, 150, 0 });
    assert_int_equal (wc_epochs_merge (h, log), 0);
    s_assert_history (h, (uint64_t []) { 1, 1, 3, 100, 4, 150, 0 });
    wc_epochs_t *snap = s_history ((uint64_t []) { 1, 1, 2, 60, 0 });
    assert_int_equal (wc_epochs_merge (h, snap), 0);
    s_assert_history (h, (uint64_t []) { 1, 1, 2, 60, 3, 100, 4, 150, 0 });
    wc_epochs_t *odd = s_history ((uint64_t []) { 2, 200, 0 });
    assert_int_equal (wc_epochs_merge (odd, h), 0);     //  2 keeps the lower seq
    s_assert_history (odd, (uint64_t []) { 1, 1, 2, 60, 3, 100, 4, 150, 0 });
    wc_epochs_t *copy = wc_epochs_new ();
    assert_int_equal (wc_epochs_copy (copy, odd), 0);
    assert_true (wc_epochs_equal (copy, odd));
    wc_epochs_cut (copy, 99);
    assert_false (wc_epochs_equal (copy, odd));
    wc_epochs_destroy (&copy);
    wc_epochs_destroy (&odd);
    wc_epochs_destroy (&snap);
    wc_epochs_destroy (&log);
    wc_epochs_destroy (&h);
}

//  Decode a packed object into h; returns the result.
static int
s_from_packed (wc_epochs_t *h, const msgpack_sbuffer *buf, uint64_t upto)
{
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&u, buf->data, buf->size, &off),
                      MSGPACK_UNPACK_SUCCESS);
    int rc = wc_epochs_from_object (h, &u.data, upto);
    msgpack_unpacked_destroy (&u);
    return rc;
}

//  Pack pairs as given (in any order) and decode them.
static int
s_decode_pairs (wc_epochs_t *h, const uint64_t *pairs, size_t n, uint64_t upto)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array (&pk, 2);
        msgpack_pack_uint64 (&pk, pairs [2 * i]);
        msgpack_pack_uint64 (&pk, pairs [2 * i + 1]);
    }
    int rc = s_from_packed (h, &buf, upto);
    msgpack_sbuffer_destroy (&buf);
    return rc;
}

/*  The encoded form: packed up to a seq, decoded with every check. */
static void
test_encoding (void **state)
{
    (void) state;
    wc_epochs_t *h = s_history ((uint64_t []) { 1, 1, 2, 57, 4, 120, 0 });
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    assert_int_equal (wc_epochs_pack (h, 119, &pk), 0);
    wc_epochs_t *got = wc_epochs_new ();
    assert_int_equal (s_from_packed (got, &buf, 119), 0);
    s_assert_history (got, (uint64_t []) { 1, 1, 2, 57, 0 });
    msgpack_sbuffer_destroy (&buf);

    assert_int_equal (s_decode_pairs (got, (uint64_t []) { 1, 1, 3, 5 }, 2, 10), 0);
    assert_int_equal (s_decode_pairs (got, (uint64_t []) { 1, 1, 3, 12 }, 2, 10),
                      WALCAST_EPROTO);                      //  past upto + 1
    assert_int_equal (s_decode_pairs (got, (uint64_t []) { 3, 1, 2, 5 }, 2, 10),
                      WALCAST_EPROTO);                      //  epochs go down
    assert_int_equal (s_decode_pairs (got, (uint64_t []) { 1, 6, 2, 5 }, 2, 10),
                      WALCAST_EPROTO);                      //  seqs go down
    assert_int_equal (s_decode_pairs (got, (uint64_t []) { 0, 1 }, 1, 10), WALCAST_EPROTO);
    assert_int_equal (s_decode_pairs (got, (uint64_t []) { 1, 0 }, 1, 10), WALCAST_EPROTO);
    s_assert_history (got, (uint64_t []) { 1, 1, 3, 5, 0 });  //  unchanged by failures
    assert_int_equal (s_decode_pairs (got, NULL, 0, 10), 0);
    assert_int_equal (wc_epochs_count (got), 0);
    wc_epochs_destroy (&got);
    wc_epochs_destroy (&h);
}

static int
s_open_dir (void)
{
    int fd = open (s_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true (fd >= 0);
    return fd;
}

/*  The file: saved, loaded, replaced; a missing file is an empty history,
    a damaged one is refused. */
static void
test_file_round_trip (void **state)
{
    (void) state;
    int dirfd = s_open_dir ();
    char why [256];
    wc_epochs_t *got = wc_epochs_new ();
    assert_int_equal (wc_epochs_load (got, dirfd, why, sizeof why), WALCAST_ENOTFOUND);
    wc_epochs_t *h = s_history ((uint64_t []) { 1, 1, 2, 57, 0 });
    assert_int_equal (wc_epochs_save (h, dirfd, why, sizeof why), 0);
    assert_int_equal (wc_epochs_load (got, dirfd, why, sizeof why), 0);
    assert_true (wc_epochs_equal (got, h));
    assert_int_equal (wc_epochs_add (h, 7, 90), 0);
    assert_int_equal (wc_epochs_save (h, dirfd, why, sizeof why), 0);
    assert_int_equal (wc_epochs_load (got, dirfd, why, sizeof why), 0);
    assert_true (wc_epochs_equal (got, h));

    //  Every byte flipped in turn is caught
    char path [128];
    snprintf (path, sizeof path, "%s/%s", s_dir, WC_EPOCHS_FILE);
    FILE *f = fopen (path, "r+b");
    assert_non_null (f);
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    for (long at = 0; at < size; at++) {
        fseek (f, at, SEEK_SET);
        int c = fgetc (f);
        fseek (f, at, SEEK_SET);
        fputc (c ^ 0x10, f);
        fflush (f);
        assert_int_equal (wc_epochs_load (got, dirfd, why, sizeof why), WALCAST_EPROTO);
        assert_true (strlen (why) > 0);
        fseek (f, at, SEEK_SET);
        fputc (c, f);
        fflush (f);
    }
    assert_int_equal (ftruncate (fileno (f), size - 1), 0);
    fclose (f);
    assert_int_equal (wc_epochs_load (got, dirfd, why, sizeof why), WALCAST_EPROTO);
    assert_true (wc_epochs_equal (got, h));             //  unchanged by failures
    wc_epochs_destroy (&got);
    wc_epochs_destroy (&h);
    close (dirfd);
}

/*  Every step of a save fails in turn: the call says so, and the file
    then holds the old history or the new one, whole. Only a failed
    directory sync may leave the new one (the caller treats it as a
    failure). */
static void
test_file_faults (void **state)
{
    (void) state;
    int dirfd = s_open_dir ();
    char why [256];
    wc_epochs_t *old = s_history ((uint64_t []) { 1, 1, 0 });
    wc_epochs_t *fresh = s_history ((uint64_t []) { 1, 1, 2, 40, 0 });
    wc_epochs_t *got = wc_epochs_new ();
    wc_vfs_op_t ops [] = { WC_VFS_OPEN, WC_VFS_WRITE, WC_VFS_SYNC, WC_VFS_RENAME };
    for (size_t k = 0; k < sizeof ops / sizeof ops [0]; k++)
        for (uint64_t after = 0; after < 2; after++) {
            assert_int_equal (wc_epochs_save (old, dirfd, why, sizeof why), 0);
            wc_vfs_reset ();
            wc_vfs_fail (ops [k], after, 1, ops [k] == WC_VFS_WRITE ? ENOSPC : EIO);
            int rc = wc_epochs_save (fresh, dirfd, why, sizeof why);
            uint64_t calls = wc_vfs_count (ops [k]);
            wc_vfs_reset ();
            if (after >= calls) {
                assert_int_equal (rc, 0);               //  not reached: no fault
                continue;
            }
            assert_int_equal (rc, ops [k] == WC_VFS_WRITE ? WALCAST_ENOSPC : WALCAST_EIO);
            assert_true (strlen (why) > 0);
            assert_int_equal (wc_epochs_load (got, dirfd, why, sizeof why), 0);
            if (ops [k] == WC_VFS_SYNC && after == 1)
                assert_true (wc_epochs_equal (got, fresh));     //  the directory sync
            else
                assert_true (wc_epochs_equal (got, old));
        }
    //  A leftover temp file is cleared at open, and never read
    int fd = openat (dirfd, "epochs.tmp", O_WRONLY | O_CREAT, 0644);
    assert_true (fd >= 0 && write (fd, "junk", 4) == 4);
    close (fd);
    assert_int_equal (wc_files_remove_temps (dirfd, s_dir), 0);
    assert_true (faccessat (dirfd, "epochs.tmp", F_OK, 0) != 0);
    assert_int_equal (wc_epochs_load (got, dirfd, why, sizeof why), 0);
    wc_epochs_destroy (&got);
    wc_epochs_destroy (&fresh);
    wc_epochs_destroy (&old);
    close (dirfd);
}

int
main (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/test_epochs.XXXXXX");
    if (!mkdtemp (s_dir))
        return 1;
    wc_log_set_level (WC_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_add_rules),
        cmocka_unit_test (test_epoch_end),
        cmocka_unit_test (test_cut),
        cmocka_unit_test (test_reconcile),
        cmocka_unit_test (test_merge),
        cmocka_unit_test (test_encoding),
        cmocka_unit_test (test_file_round_trip),
        cmocka_unit_test (test_file_faults),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s", s_dir);
    if (system (command) != 0)
        rc = 1;
    return rc;
}
