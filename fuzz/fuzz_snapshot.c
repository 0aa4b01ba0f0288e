/*  fuzz_snapshot.c - libFuzzer target: the snapshot reader.

    Each input becomes a snapshot file (in memory, through memfd, so a
    run costs no disk) that wc_snapshot_read_fd checks and loads, as a
    node does at start and a replica does with a snapshot it fetched from
    its upstream. It must never crash, whatever the bytes, and anything
    it refuses is WALCAST_EPROTO with a reason.

    A snapshot it accepts must be what it says: the store holds the
    header's count of pairs with the header's digest, and writing that
    state back with wc_snapshot_write gives a file that loads to the same
    seq, clock, count, digest and history (the history up to the seq,
    which is all a writer keeps).

    Input: a mode byte, then the file. Mode bit 0: the file is the rest
    of the input followed by its CRC32C (a right trailer, so mutations get
    past the CRC to the header, the pairs, the count and the digest);
    else the rest of the input as it is. Bit 1: read without taking the
    store and history (the "check, then drop" call).
*/
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "walcast.h"
#include "crc32c.h"
#include "epochs.h"
#include "snapshot.h"
#include "store.h"
#include "common.h"

static int s_dirfd = -1;

//  A memfd holding the file the input describes.
static int
s_file (const uint8_t *data, size_t size, uint8_t mode)
{
    int fd = memfd_create ("walcast-fuzz-snapshot", MFD_CLOEXEC);
    fz_check (fd >= 0, "memfd_create failed");
    fz_check (write (fd, data, size) == (ssize_t) size, "cannot write the memfd");
    if (mode & 1) {
        uint32_t crc = wc_crc32c (0, data, size);
        uint8_t tail [4] = { (uint8_t) crc, (uint8_t) (crc >> 8), (uint8_t) (crc >> 16),
                             (uint8_t) (crc >> 24) };
        fz_check (write (fd, tail, sizeof tail) == sizeof tail, "cannot write the memfd");
    }
    return fd;
}

//  An accepted snapshot written back loads to the same state.
static void
s_check_rewrite (wc_store_t *store, const wc_epochs_t *history,
                 const wc_snapshot_info_t *info)
{
    const wc_store_frozen_t *view;
    fz_check (wc_store_freeze (store, &view) == 0, "cannot freeze a loaded store");
    uint64_t bytes = 0;
    char why [256] = "";
    fz_check (wc_snapshot_write (s_dirfd, info, history, view, NULL, &bytes, why,
                                 sizeof why) == 0, "cannot write a loaded snapshot back");
    wc_store_thaw (store);

    wc_store_t *again = NULL;
    wc_epochs_t *history_again = wc_epochs_new ();
    wc_epochs_t *kept = wc_epochs_new ();
    fz_check (history_again && kept && wc_epochs_copy (kept, history) == 0, "out of memory");
    wc_epochs_cut (kept, info->seq);
    wc_snapshot_info_t info_again;
    int rc = wc_snapshot_load (s_dirfd, info->seq, &again, history_again, &info_again,
                               why, sizeof why);
    if (rc != 0)
        fprintf (stderr, "fuzz: loading the snapshot written back: %s: %s\n",
                 walcast_strerror (rc), why);
    fz_check (rc == 0, "a snapshot written back does not load");
    fz_check (info_again.seq == info->seq && info_again.ts_ms == info->ts_ms
              && info_again.count == info->count && info_again.digest == info->digest
              && info_again.bytes == bytes
              && wc_store_count (again) == wc_store_count (store)
              && wc_store_digest (again) == wc_store_digest (store),
              "a snapshot written back loads to another state");
    fz_check (wc_epochs_equal (history_again, kept),
              "a snapshot written back loads to another history");
    wc_epochs_destroy (&kept);
    wc_epochs_destroy (&history_again);
    wc_store_destroy (&again);
    char name [WC_SNAPSHOT_NAME_SIZE];
    unlinkat (s_dirfd, wc_snapshot_name (name, info->seq), 0);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (s_dirfd < 0) {
        fz_quiet ();
        s_dirfd = open (fz_scratch ("fuzz-snapshot"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        fz_check (s_dirfd >= 0, "cannot open the scratch directory");
    }
    if (size < 1)
        return 0;
    uint8_t mode = data [0];
    int fd = s_file (data + 1, size - 1, mode);
    bool take = !(mode & 2);
    wc_store_t *store = NULL;
    wc_epochs_t *history = take ? wc_epochs_new () : NULL;
    fz_check (!take || history, "out of memory");
    wc_snapshot_info_t info;
    memset (&info, 0, sizeof info);
    char why [256] = "";
    int rc = wc_snapshot_read_fd (fd, take ? &store : NULL, history, &info, why, sizeof why);
    close (fd);
    fz_check (rc == 0 || rc == WALCAST_EPROTO, "a snapshot in memory failed but for EPROTO");
    fz_check (rc == 0 || why [0] != '\0', "a refused snapshot without a reason");
    fz_check (rc != 0 || info.bytes == size - 1 + (mode & 1 ? 4 : 0),
              "the snapshot's size is not the file's");
    if (rc == 0 && take) {
        fz_check (info.seq >= 1, "a snapshot accepted at seq 0");
        fz_check (store && wc_store_count (store) == info.count
                  && wc_store_digest (store) == info.digest,
                  "an accepted snapshot is not what its header says");
        s_check_rewrite (store, history, &info);
    }
    wc_store_destroy (&store);
    wc_epochs_destroy (&history);
    return 0;
}
