/*  fuzz_wal.c - libFuzzer target: WAL recovery on arbitrary segment files.

    Each input becomes a WAL directory of one to four segment files with
    arbitrary names (seqs) and bytes, which wc_wal_open recovers the way
    the engine does: every record's payload is read as an entry (the scan,
    then the codec) and must be the entry of its seq, or recovery treats
    it as bad. Recovery must never crash, whatever the files hold: torn
    tails, damage in the middle, gaps, overlaps, wild lengths.

    What the engine relies on is checked too:
    - the records replayed are exactly the ones the open reports (count,
      first and last seq), and wc_wal_read gives back the same payloads;
    - with mode bit 3, the log is then used as the engine uses it: a
      damaged log is set aside from the damage seq (it must work, and end
      where replay stopped), records are appended and flushed, the log is
      truncated; reopened, it must hold exactly that, undamaged, with
      nothing cut.

    Input: a mode byte, then per file a 12-byte head [first seq:u64le,
    length:u32le], then the files' bytes one after another (each length
    cut to what is left; the last file takes the rest). Mode bits: 0-1
    files - 1; 2: fix every record's CRC (so mutations reach the payload
    and seq checks); 3: write after the open (as above); 4: small segments
    (256 bytes), so appends start new files.
*/
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "walcast.h"
#include "codec.h"
#include "crc32c.h"
#include "scan.h"
#include "store.h"
#include "wal.h"
#include "common.h"

#define S_HEAD          12u     /* per file: first seq, length */
#define S_MAX_FILES     4u

//  What replay (and a later read) saw.
typedef struct {
    msgpack_unpacked unpacked;  /* the codec's storage */
    wc_store_t *store;          /* the state the entries build */
    uint64_t records;           /* records taken */
    uint64_t first;             /* first seq taken; 0 when none */
    uint64_t last;              /* last seq taken */
    uint32_t chain;             /* CRC32C over every seq and payload taken */
} s_replay_t;

//  One segment file of the input.
typedef struct {
    uint64_t seq;
    uint8_t *bytes;
    size_t len;
} s_file_t;

static char s_dir [4200];

//  Read a payload as the engine does: the scan for the canonical form,
//  else the codec; it must be the entry of seq.
static int
s_entry_read (s_replay_t *replay, uint64_t seq, const uint8_t *payload, size_t len,
              wc_entry_t *entry)
{
    size_t used;
    int rc = 0;
    if (wc_scan_entry (payload, len, entry, &used) != 0 || used != len)
        rc = wc_entry_decode (payload, len, &replay->unpacked, entry);
    return rc == 0 && entry->seq == seq ? 0 : WALCAST_EPROTO;
}

//  Note a record taken: count, range, chain.
static void
s_note (s_replay_t *replay, uint64_t seq, const uint8_t *payload, size_t len)
{
    uint8_t seq_bytes [8];
    memcpy (seq_bytes, &seq, sizeof seq_bytes);
    replay->chain = wc_crc32c (replay->chain, seq_bytes, sizeof seq_bytes);
    replay->chain = wc_crc32c (replay->chain, payload, len);
    if (replay->records++ == 0)
        replay->first = seq;
    else
        fz_check (seq == replay->last + 1, "records out of order");
    replay->last = seq;
}

//  The replay callback: the engine's, with the store as its state.
static int
s_on_replay (void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    s_replay_t *replay = (s_replay_t *) arg;
    wc_entry_t entry;
    if (s_entry_read (replay, seq, payload, len, &entry) != 0)
        return WALCAST_EPROTO;
    int rc = entry.op == WC_OP_PUT
           ? wc_store_put (replay->store, entry.key.ptr, entry.key.len,
                           entry.value.ptr, entry.value.len)
           : wc_store_del (replay->store, entry.key.ptr, entry.key.len);
    if (rc != 0)
        return rc;
    s_note (replay, seq, payload, len);
    return 0;
}

//  The read callback: only notes.
static int
s_on_read (void *arg, uint64_t seq, const uint8_t *payload, size_t len)
{
    s_note ((s_replay_t *) arg, seq, payload, len);
    return 0;
}

static void
s_replay_init (s_replay_t *replay)
{
    memset (replay, 0, sizeof *replay);
    msgpack_unpacked_init (&replay->unpacked);
    replay->store = wc_store_new ();
    fz_check (replay->store != NULL, "out of memory");
}

static void
s_replay_fini (s_replay_t *replay)
{
    msgpack_unpacked_destroy (&replay->unpacked);
    wc_store_destroy (&replay->store);
}

//  Split the input into files (at most S_MAX_FILES); returns how many.
static size_t
s_split (const uint8_t *data, size_t size, uint8_t mode, s_file_t *files)
{
    size_t nfiles = (size_t) (mode & 3) + 1;
    if (size < nfiles * S_HEAD)
        return 0;
    const uint8_t *body = data + nfiles * S_HEAD;
    size_t left = size - nfiles * S_HEAD;
    for (size_t i = 0; i < nfiles; i++) {
        files [i].seq = fz_le64 (data + i * S_HEAD);
        size_t len = fz_le32 (data + i * S_HEAD + 8);
        if (len > left || i + 1 == nfiles)
            len = left;
        files [i].bytes = malloc (len ? len : 1);
        fz_check (files [i].bytes != NULL, "out of memory");
        memcpy (files [i].bytes, body, len);
        files [i].len = len;
        body += len;
        left -= len;
    }
    return nfiles;
}

//  Give every whole record of the file a right CRC, walking the lengths.
static void
s_fix_crcs (s_file_t *file)
{
    size_t off = 0;
    while (file->len - off >= 16) {
        uint32_t len = fz_le32 (file->bytes + off);
        if (len > file->len - off - 16)
            break;
        uint32_t crc = wc_crc32c (0, file->bytes + off + 8, 8 + (size_t) len);
        for (int i = 0; i < 4; i++)
            file->bytes [off + 4 + (size_t) i] = (uint8_t) (crc >> (8 * i));
        off += 16 + (size_t) len;
    }
}

//  Write the files into the (emptied) WAL directory.
static void
s_write_files (const s_file_t *files, size_t nfiles)
{
    fz_clear (s_dir);
    for (size_t i = 0; i < nfiles; i++) {
        char path [sizeof s_dir + 64];
        snprintf (path, sizeof path, "%s/wal-%020llu.log", s_dir,
                  (unsigned long long) files [i].seq);
        int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        fz_check (fd >= 0, "cannot create a segment file");
        fz_check (write (fd, files [i].bytes, files [i].len) == (ssize_t) files [i].len,
                  "cannot write a segment file");
        close (fd);
    }
}

//  Read the whole log back: the same records, the same payloads.
static void
s_check_read (wc_wal_t *wal, const s_replay_t *replay)
{
    s_replay_t again;
    memset (&again, 0, sizeof again);
    uint64_t from = wc_wal_first_seq (wal);
    while (from != 0 && again.last < wc_wal_last_seq (wal)) {
        int n = wc_wal_read (wal, again.records ? again.last + 1 : from, 4096,
                             s_on_read, &again);
        fz_check (n > 0, "wc_wal_read stopped before the end of a recovered log");
    }
    fz_check (again.records == replay->records && again.first == replay->first
              && again.last == replay->last && again.chain == replay->chain,
              "wc_wal_read does not give back what recovery replayed");
}

//  A call on the log that must work: say why it did not.
static void
s_must (wc_wal_t *wal, int rc, const char *what)
{
    if (rc != 0)
        fprintf (stderr, "fuzz: %s: %s: %s\n", what, walcast_strerror (rc),
                 wc_wal_last_error (wal));
    fz_check (rc == 0, what);
}

//  Append count entries after the log's end and flush them.
static void
s_append (wc_wal_t *wal, uint64_t from, int count)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    for (int i = 0; i < count; i++) {
        wc_entry_t entry = { .seq = from + (uint64_t) i, .epoch = 1, .ts_ms = 7,
                             .op = WC_OP_PUT, .key = { (const uint8_t *) "key", 3 },
                             .value = { (const uint8_t *) "value:fuzz", 10 } };
        buf.size = 0;
        fz_check (wc_entry_encode (&entry, &buf) == 0, "cannot encode an entry");
        s_must (wal, wc_wal_append (wal, entry.seq, buf.data, buf.size),
                "an append after recovery failed");
    }
    s_must (wal, wc_wal_flush (wal), "a flush after recovery failed");
    msgpack_sbuffer_destroy (&buf);
}

//  Use the recovered log as the engine would, then reopen it: it holds
//  exactly what it should, undamaged, with nothing to cut.
static void
s_write_and_reopen (wc_wal_t **wal_p, const wc_wal_info_t *info, size_t segment_bytes,
                    uint8_t pick)
{
    wc_wal_t *wal = *wal_p;
    if (info->damaged) {
        s_must (wal, wc_wal_set_aside (wal, info->damage_seq),
                "setting a damaged log aside from its damage seq failed");
        fz_check (!wc_wal_damaged (wal) && wc_wal_last_seq (wal) == info->last_seq,
                  "a set-aside log is damaged or does not end where replay stopped");
    }
    uint64_t last = wc_wal_last_seq (wal);
    if (last < UINT64_MAX - 8) {
        s_append (wal, last ? last + 1 : 1 + pick, 1 + pick % 3);
        last = wc_wal_last_seq (wal);
        uint64_t first = wc_wal_first_seq (wal);
        uint64_t cut = pick % 4;                //  cut 0..3 records
        uint64_t keep = last > cut ? last - cut : 0;
        s_must (wal, wc_wal_truncate (wal, keep), "truncating after recovery failed");
        last = keep < first ? 0 : keep;
        fz_check (wc_wal_last_seq (wal) == last, "a truncated log does not end there");
    }
    wc_wal_destroy (wal_p);

    s_replay_t replay;
    s_replay_init (&replay);
    wc_wal_info_t again;
    int err = 0;
    *wal_p = wc_wal_open (s_dir, segment_bytes, s_on_replay, &replay, &again, &err);
    fz_check (*wal_p != NULL, "the log does not reopen after writing");
    fz_check (!again.damaged && again.truncated_bytes == 0 && again.removed_segments == 0
              && again.last_seq == last && replay.last == last,
              "the reopened log is not what was written");
    s_replay_fini (&replay);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_dir [0]) {
        fz_quiet ();
        snprintf (s_dir, sizeof s_dir, "%s/wal", fz_scratch ("fuzz-wal"));
        fz_check (mkdir (s_dir, 0755) == 0, "cannot make the WAL directory");
    }
    if (size < 1)
        return 0;
    uint8_t mode = data [0];
    s_file_t files [S_MAX_FILES];
    size_t nfiles = s_split (data + 1, size - 1, mode, files);
    if (nfiles == 0)
        return 0;
    for (size_t i = 0; i < nfiles && (mode & 4); i++)
        s_fix_crcs (&files [i]);
    s_write_files (files, nfiles);
    size_t segment_bytes = mode & 16 ? 256 : 0;

    s_replay_t replay;
    s_replay_init (&replay);
    wc_wal_info_t info;
    int err = 0;
    wc_wal_t *wal = wc_wal_open (s_dir, segment_bytes, s_on_replay, &replay, &info, &err);
    if (wal) {
        fz_check (info.records == replay.records && info.last_seq == replay.last
                  && (replay.records == 0 || info.first_seq == replay.first),
                  "the open reports other records than it replayed");
        fz_check (wc_wal_damaged (wal) == info.damaged, "damage reported two ways");
        s_check_read (wal, &replay);
        if (mode & 8)
            s_write_and_reopen (&wal, &info, segment_bytes, data [size - 1]);
    }
    else
        fz_check (err != 0, "a failed open without an error");
    wc_wal_destroy (&wal);
    s_replay_fini (&replay);
    for (size_t i = 0; i < nfiles; i++)
        free (files [i].bytes);
    return 0;
}
