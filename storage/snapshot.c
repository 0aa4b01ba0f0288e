/*  snapshot.c - snapshots of the state: the file, and the thread that
    writes it (see snapshot.h).

    Writing packs the header and then the pairs into a buffer that goes
    to the file whenever it passes 1 MiB, the CRC32C running over every
    chunk written, and ends with the CRC; then fdatasync, rename, fsync of
    the directory. The cancel flag is looked at once a chunk, so a
    truncation or an install that must replace the state waits for at
    most one chunk of a write in progress.

    Reading goes the other way, 1 MiB at a time with the CRC running over
    what is read. Each object's structure is walked (wc_msgpack_check)
    before msgpack builds it: it may never span more than it can be (the
    header: 64 MiB; a pair: the largest key and value) nor run past the
    end of the file, and no count may claim more elements than those
    bytes can hold, so a wild length or count in a damaged file is
    malformed and costs nothing. Only the CRC at the end can vouch for
    the bytes, so the state built along the way is thrown away unless
    everything checks out: the CRC, the count, and the digest recomputed
    by the new store. That store's tables are sized for the header's
    count before the first pair, and while a pair is put the slot of the
    one four after it is loaded (a cache miss overlapped, not waited for).
    Both are hints: a bad count or pair costs memory or nothing, never
    correctness.

    The writer thread shares with the loop a small state under a mutex
    (the result of the write started last, and whether it is done) and
    the pairs of the frozen view, which it only reads. Its pipe carries
    "WRITE" and a pointer to the job one way, and "R" (a write ended) the
    other, at most one per job, so the loop's poller sees the end.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>

#include "walcast.h"
#include "wc_limits.h"
#include "clock.h"
#include "codec.h"
#include "crc32c.h"
#include "files.h"
#include "log.h"
#include "snapshot.h"
#include "vfs.h"

#define S_MAGIC         "walcast-snapshot"
#define S_FIELDS        7                       /* header fields this format has */
#define S_CHUNK         (1024u * 1024u)         /* write and read size */
#define S_HEADER_MAX    (64u * 1024u * 1024u)   /* bytes a header may take */
#define S_PAIR_MAX      (WC_MAX_KEY + WC_MAX_VALUE + 16u)   /* and a pair */
#define S_PREFIX        "snapshot-"
#define S_SUFFIX        ".snap"
#define S_TEMP          ".tmp"
#define S_AHEAD         4                       /* pairs whose slots are loaded ahead */


//  --------------------------------------------------------------------
//  Names

const char *
wc_snapshot_name (char *buf, uint64_t seq)
{
    snprintf (buf, WC_SNAPSHOT_NAME_SIZE, S_PREFIX "%020llu" S_SUFFIX,
              (unsigned long long) seq);
    return buf;
}

uint64_t
wc_snapshot_parse_name (const char *name)
{
    size_t prefix = strlen (S_PREFIX), suffix = strlen (S_SUFFIX);
    if (strlen (name) != prefix + 20 + suffix
    ||  memcmp (name, S_PREFIX, prefix) != 0
    ||  memcmp (name + prefix + 20, S_SUFFIX, suffix) != 0)
        return 0;
    uint64_t seq = 0;
    for (size_t i = prefix; i < prefix + 20; i++) {
        if (name [i] < '0' || name [i] > '9')
            return 0;
        uint64_t digit = (uint64_t) (name [i] - '0');
        if (seq > (UINT64_MAX - digit) / 10)
            return 0;
        seq = seq * 10 + digit;
    }
    return seq;
}

/*  The seqs found so far by wc_snapshot_list. */
typedef struct {
    uint64_t *seqs;
    size_t count;
    size_t cap;
} s_found_t;

static int
s_collect (void *arg, const char *name)
{
    s_found_t *found = (s_found_t *) arg;
    uint64_t seq = wc_snapshot_parse_name (name);
    if (seq == 0)
        return 0;
    if (found->count == found->cap) {
        size_t cap = found->cap ? found->cap * 2 : 8;
        uint64_t *grown = (uint64_t *) realloc (found->seqs, cap * sizeof *grown);
        if (!grown)
            return WALCAST_ENOMEM;
        found->seqs = grown;
        found->cap = cap;
    }
    found->seqs [found->count++] = seq;
    return 0;
}

static int
s_seq_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

int
wc_snapshot_list (int dirfd, uint64_t **seqs, size_t *count)
{
    s_found_t found = { NULL, 0, 0 };
    int rc = wc_files_each (dirfd, s_collect, &found);
    if (rc != 0) {
        free (found.seqs);
        return rc;
    }
    if (found.count > 1)
        qsort (found.seqs, found.count, sizeof *found.seqs, s_seq_compare);
    *seqs = found.seqs;
    *count = found.count;
    return 0;
}


//  --------------------------------------------------------------------
//  Writing

/*  The file being written: a buffer of packed bytes and where it goes. */
typedef struct {
    int fd;                     /* the temp file */
    uint64_t offset;            /* bytes written so far */
    uint32_t crc;               /* CRC32C of those bytes */
    msgpack_sbuffer buf;        /* packed, not yet written */
    msgpack_packer pk;          /* packs into buf */
} s_out_t;

//  Write what is buffered. 0, or -1 with errno set.
static int
s_out_flush (s_out_t *out)
{
    if (out->buf.size == 0)
        return 0;
    if (wc_files_pwrite_all (out->fd, out->buf.data, out->buf.size, out->offset) != 0)
        return -1;
    out->crc = wc_crc32c (out->crc, out->buf.data, out->buf.size);
    out->offset += out->buf.size;
    out->buf.size = 0;
    return 0;
}

//  Pack the header. 0 or -1 (out of memory).
static int
s_pack_header (s_out_t *out, const wc_snapshot_info_t *info, const wc_epochs_t *history,
               const wc_store_frozen_t *view)
{
    msgpack_packer *pk = &out->pk;
    if (msgpack_pack_array (pk, S_FIELDS) != 0
    ||  msgpack_pack_str_with_body (pk, S_MAGIC, strlen (S_MAGIC)) != 0
    ||  msgpack_pack_uint32 (pk, WC_SNAPSHOT_FORMAT) != 0
    ||  msgpack_pack_uint64 (pk, info->seq) != 0
    ||  wc_epochs_pack (history, info->seq, pk) != 0
    ||  msgpack_pack_uint64 (pk, wc_store_frozen_count (view)) != 0
    ||  msgpack_pack_uint64 (pk, wc_store_frozen_digest (view)) != 0
    ||  msgpack_pack_uint64 (pk, info->ts_ms) != 0)
        return -1;
    return 0;
}

//  Pack and write every pair, then the trailer. 0, or a WALCAST_E* code
//  with why set.
static int
s_write_body (s_out_t *out, const wc_store_frozen_t *view, const atomic_bool *cancel,
              const char *temp, char *why, size_t why_size)
{
    size_t slots = wc_store_frozen_slots (view), written = 0;
    for (size_t i = 0; i <= slots; i++) {
        if (i < slots) {
            wc_store_pair_t pair;
            if (!wc_store_frozen_pair (view, i, &pair))
                continue;
            written++;
            if (msgpack_pack_array (&out->pk, 2) != 0
            ||  msgpack_pack_bin_with_body (&out->pk, pair.key, pair.key_len) != 0
            ||  msgpack_pack_bin_with_body (&out->pk, pair.value, pair.value_len) != 0) {
                snprintf (why, why_size, "out of memory packing %s", temp);
                return WALCAST_ENOMEM;
            }
            if (out->buf.size < S_CHUNK)
                continue;
        }
        if (cancel && atomic_load (cancel)) {
            snprintf (why, why_size, "cancelled");
            return WALCAST_EBUSY;
        }
        if (s_out_flush (out) != 0) {
            snprintf (why, why_size, "cannot write %s at offset %llu: %s", temp,
                      (unsigned long long) out->offset, strerror (errno));
            return wc_files_code (errno);
        }
    }
    if (written != wc_store_frozen_count (view)) {
        snprintf (why, why_size, "the view of the state held %zu pairs, not %zu",
                  written, wc_store_frozen_count (view));
        return WALCAST_EIO;
    }
    uint8_t tail [4] = { (uint8_t) out->crc, (uint8_t) (out->crc >> 8),
                         (uint8_t) (out->crc >> 16), (uint8_t) (out->crc >> 24) };
    if (wc_files_pwrite_all (out->fd, tail, sizeof tail, out->offset) != 0) {
        snprintf (why, why_size, "cannot write %s: %s", temp, strerror (errno));
        return wc_files_code (errno);
    }
    out->offset += sizeof tail;
    return 0;
}

//  Sync the temp file, close it, rename it and sync the directory. 0, or
//  a WALCAST_E* code with why set (the descriptor closed either way).
static int
s_finish (int dirfd, s_out_t *out, const char *temp, const char *name, char *why,
          size_t why_size)
{
    int rc = 0;
    if (wc_vfs_fdatasync (out->fd) != 0) {
        snprintf (why, why_size, "cannot sync %s: %s", temp, strerror (errno));
        rc = WALCAST_EIO;
    }
    wc_vfs_close (out->fd);
    out->fd = -1;
    if (rc == 0 && wc_vfs_renameat (dirfd, temp, dirfd, name) != 0) {
        snprintf (why, why_size, "cannot rename %s to %s: %s", temp, name, strerror (errno));
        rc = wc_files_code (errno);
    }
    else
    if (rc == 0 && wc_vfs_fsync (dirfd) != 0) {
        snprintf (why, why_size, "cannot sync the directory after renaming %s: %s", name,
                  strerror (errno));
        wc_vfs_unlinkat (dirfd, name, 0);       //  not known to be durable: not kept
        rc = WALCAST_EIO;
    }
    return rc;
}

int
wc_snapshot_write (int dirfd, const wc_snapshot_info_t *info, const wc_epochs_t *history,
                   const wc_store_frozen_t *view, const atomic_bool *cancel,
                   uint64_t *bytes, char *why, size_t why_size)
{
    char name [WC_SNAPSHOT_NAME_SIZE], temp [WC_SNAPSHOT_NAME_SIZE + 8];
    wc_snapshot_name (name, info->seq);
    snprintf (temp, sizeof temp, "%s" S_TEMP, name);
    s_out_t out = { .fd = -1 };
    msgpack_sbuffer_init (&out.buf);
    msgpack_packer_init (&out.pk, &out.buf, msgpack_sbuffer_write);
    out.fd = wc_vfs_openat (dirfd, temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = 0;
    if (out.fd < 0) {
        snprintf (why, why_size, "cannot create %s: %s", temp, strerror (errno));
        rc = wc_files_code (errno);
    }
    else
    if (s_pack_header (&out, info, history, view) != 0) {
        snprintf (why, why_size, "out of memory packing the header of %s", temp);
        rc = WALCAST_ENOMEM;
    }
    if (rc == 0)
        rc = s_write_body (&out, view, cancel, temp, why, why_size);
    if (rc == 0)
        rc = s_finish (dirfd, &out, temp, name, why, why_size);
    if (out.fd >= 0)
        wc_vfs_close (out.fd);
    if (rc != 0)
        wc_vfs_unlinkat (dirfd, temp, 0);
    msgpack_sbuffer_destroy (&out.buf);
    *bytes = rc == 0 ? out.offset : 0;
    return rc;
}


//  --------------------------------------------------------------------
//  Reading

/*  The file being read: what was read and not yet taken apart, and the
    zone the last object was built in. */
typedef struct {
    int fd;
    uint64_t end;               /* bytes before the trailer */
    uint64_t off;               /* bytes read from the file */
    uint32_t crc;               /* CRC32C of those bytes */
    size_t limit;               /* most bytes the next object may take */
    uint8_t *buf;               /* read bytes; buf [pos..len) not yet taken */
    size_t pos;
    size_t len;
    size_t cap;                 /* bytes allocated in buf */
    msgpack_zone *zone;         /* the objects s_in_next returned last */
} s_in_t;

//  Read more of the file after what the buffer holds: a chunk, or as
//  much as is held already when that is more (so an object of many
//  chunks is checked a few times, not once a chunk). 0, or WALCAST_EIO /
//  WALCAST_ENOMEM with why set.
static int
s_in_fill (s_in_t *in, char *why, size_t why_size)
{
    size_t have = in->len - in->pos;
    if (in->pos > 0)
        memmove (in->buf, in->buf + in->pos, have);
    in->pos = 0;
    in->len = have;
    size_t want = have > S_CHUNK ? have : S_CHUNK;
    if (want > in->end - in->off)
        want = (size_t) (in->end - in->off);
    if (have + want > in->cap) {
        uint8_t *grown = (uint8_t *) realloc (in->buf, have + want);
        if (!grown) {
            snprintf (why, why_size, "out of memory reading at offset %llu",
                      (unsigned long long) in->off);
            return WALCAST_ENOMEM;
        }
        in->buf = grown;
        in->cap = have + want;
    }
    ssize_t got = wc_files_pread_all (in->fd, in->buf + have, want, in->off);
    if (got != (ssize_t) want) {
        snprintf (why, why_size, "cannot read at offset %llu: %s",
                  (unsigned long long) in->off, got < 0 ? strerror (errno) : "the file shrank");
        return WALCAST_EIO;
    }
    in->crc = wc_crc32c (in->crc, in->buf + have, want);
    in->len += want;
    in->off += want;
    return 0;
}

//  The next object, in *obj until the next call: 1, 0 when the bytes
//  ended before it (nothing left), or WALCAST_EPROTO / WALCAST_EIO /
//  WALCAST_ENOMEM with why set. Its structure is checked before msgpack
//  builds it (wc_msgpack_check), so a wild count or deep nesting in a
//  damaged file is malformed, never a huge allocation or out of memory.
static int
s_in_next (s_in_t *in, msgpack_object *obj, char *why, size_t why_size)
{
    while (true) {
        size_t have = in->len - in->pos;
        uint64_t left = in->end - in->off;
        if (have == 0 && left == 0)
            return 0;
        size_t room = have + left < in->limit ? (size_t) (have + left) : in->limit;
        size_t size = 0;
        if (have > 0 && wc_msgpack_check (in->buf + in->pos, have, room, &size) != 0) {
            snprintf (why, why_size, "the object at offset %llu is malformed, cut short or "
                      "larger than it may be", (unsigned long long) (in->off - have));
            return WALCAST_EPROTO;
        }
        if (size > 0) {
            msgpack_zone_clear (in->zone);
            size_t used = 0;
            msgpack_unpack_return ret = msgpack_unpack ((const char *) in->buf + in->pos,
                                                        size, &used, in->zone, obj);
            if (ret != MSGPACK_UNPACK_SUCCESS || used != size) {
                snprintf (why, why_size, "malformed msgpack at offset %llu",
                          (unsigned long long) (in->off - have));
                return ret == MSGPACK_UNPACK_NOMEM_ERROR ? WALCAST_ENOMEM : WALCAST_EPROTO;
            }
            in->pos += size;
            return 1;
        }
        int rc = s_in_fill (in, why, why_size);
        if (rc != 0)
            return rc;
    }
}

static bool
s_is_uint (const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
}

//  Check a header object and take what it says. 0 or WALCAST_EPROTO /
//  WALCAST_ENOMEM with why set.
static int
s_check_header (const msgpack_object *o, wc_snapshot_info_t *info, wc_epochs_t *history,
                char *why, size_t why_size)
{
    const msgpack_object *f = o->type == MSGPACK_OBJECT_ARRAY
                           && o->via.array.size >= S_FIELDS ? o->via.array.ptr : NULL;
    if (!f || f [0].type != MSGPACK_OBJECT_STR
    ||  f [0].via.str.size != strlen (S_MAGIC)
    ||  memcmp (f [0].via.str.ptr, S_MAGIC, strlen (S_MAGIC)) != 0) {
        snprintf (why, why_size, "not a walcast snapshot (no header)");
        return WALCAST_EPROTO;
    }
    if (!s_is_uint (&f [1]) || f [1].via.u64 != WC_SNAPSHOT_FORMAT) {
        snprintf (why, why_size, "snapshot format %llu; this build reads format %d",
                  s_is_uint (&f [1]) ? (unsigned long long) f [1].via.u64 : 0ull,
                  WC_SNAPSHOT_FORMAT);
        return WALCAST_EPROTO;
    }
    if (!s_is_uint (&f [2]) || f [2].via.u64 == 0 || !s_is_uint (&f [4])
    ||  !s_is_uint (&f [5]) || !s_is_uint (&f [6])) {
        snprintf (why, why_size, "bad header field");
        return WALCAST_EPROTO;
    }
    int rc = wc_epochs_from_object (history, &f [3], f [2].via.u64);
    if (rc != 0) {
        snprintf (why, why_size, "bad epoch history in the header");
        return rc;
    }
    info->seq = f [2].via.u64;
    info->count = f [4].via.u64;
    info->digest = f [5].via.u64;
    info->ts_ms = f [6].via.u64;
    return 0;
}

//  Check a pair object and put it into store. 0 or WALCAST_EPROTO /
//  WALCAST_ENOMEM with why set.
static int
s_take_pair (const msgpack_object *o, wc_store_t *store, uint64_t i, char *why,
             size_t why_size)
{
    const msgpack_object *f = o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2
                            ? o->via.array.ptr : NULL;
    if (!f || f [0].type != MSGPACK_OBJECT_BIN || f [1].type != MSGPACK_OBJECT_BIN
    ||  f [0].via.bin.size == 0 || f [0].via.bin.size > WC_MAX_KEY
    ||  f [1].via.bin.size > WC_MAX_VALUE) {
        snprintf (why, why_size, "pair %llu is malformed", (unsigned long long) i);
        return WALCAST_EPROTO;
    }
    return wc_store_put (store, f [0].via.bin.ptr, f [0].via.bin.size,
                         f [1].via.bin.ptr, f [1].via.bin.size);
}

//  The length of the bin whose head is at p [*at] (n bytes in all), with
//  *at moved past the head; false when there is none or its bytes are not
//  all there.
static bool
s_bin_ahead (const uint8_t *p, size_t n, size_t *at, size_t *len)
{
    size_t i = *at, width;
    if (i >= n)
        return false;
    switch (p [i]) {
        case 0xc4: width = 1; break;
        case 0xc5: width = 2; break;
        case 0xc6: width = 4; break;
        default:   return false;
    }
    if (n - i - 1 < width)
        return false;
    size_t v = 0;
    for (size_t k = 1; k <= width; k++)
        v = v << 8 | p [i + k];
    i += 1 + width;
    if (n - i < v)
        return false;
    *at = i;
    *len = v;
    return true;
}

//  The size of the pair at p (n bytes), [bin key, bin value], and its key;
//  0 when the bytes are not such a pair, or not all there. Only a hint: the
//  pair is read and checked as any other when its turn comes.
static size_t
s_pair_ahead (const uint8_t *p, size_t n, const uint8_t **key, size_t *key_len)
{
    size_t at = 1, value_len;
    if (n == 0 || p [0] != 0x92 || !s_bin_ahead (p, n, &at, key_len))
        return 0;
    *key = p + at;
    at += *key_len;
    if (!s_bin_ahead (p, n, &at, &value_len))
        return 0;
    return at + value_len;
}

//  Have the store start loading where the key of the S_AHEAD-th pair
//  after the one being taken goes, when the buffer holds it: taking a run
//  of pairs then overlaps their cache misses instead of paying them one
//  after the other (as a log catch-up does, storage/engine.c).
static void
s_prefetch_ahead (const s_in_t *in, wc_store_t *store)
{
    const uint8_t *p = in->buf + in->pos;
    size_t n = in->len - in->pos;
    const uint8_t *key = NULL;
    size_t key_len = 0;
    for (int k = 0; k < S_AHEAD; k++) {
        size_t size = s_pair_ahead (p, n, &key, &key_len);
        if (size == 0)
            return;
        p += size;
        n -= size;
    }
    wc_store_prefetch (store, key, key_len);
}

//  Read the header and the pairs of in into a new store. 0 or an error
//  with why set (*store_p then NULL).
static int
s_read_body (s_in_t *in, wc_store_t **store_p, wc_epochs_t *history,
             wc_snapshot_info_t *info, char *why, size_t why_size)
{
    msgpack_object obj;
    wc_store_t *store = NULL;
    in->limit = S_HEADER_MAX;
    int rc = s_in_next (in, &obj, why, why_size);
    if (rc == 0) {
        snprintf (why, why_size, "truncated: no whole header");
        rc = WALCAST_EPROTO;
    }
    if (rc == 1)
        rc = s_check_header (&obj, info, history, why, why_size);
    if (rc == 0 && info->count > in->end / 4) {
        snprintf (why, why_size, "the header counts %llu pairs: more than the file can "
                  "hold", (unsigned long long) info->count);
        rc = WALCAST_EPROTO;
    }
    if (rc == 0 && !(store = wc_store_new ()))
        rc = WALCAST_ENOMEM;
    //  Tables sized for the count at once, not doubled again and again
    //  (each doubling moves every key): a hint, so a failure is no error;
    //  a count the file cannot hold was refused above
    if (rc == 0)
        wc_store_reserve (store, (size_t) info->count);
    in->limit = S_PAIR_MAX;
    for (uint64_t i = 0; rc == 0 && i < info->count; i++) {
        rc = s_in_next (in, &obj, why, why_size);
        if (rc == 0) {
            snprintf (why, why_size, "truncated after %llu of %llu pairs",
                      (unsigned long long) i, (unsigned long long) info->count);
            rc = WALCAST_EPROTO;
        }
        if (rc == 1) {
            s_prefetch_ahead (in, store);
            rc = s_take_pair (&obj, store, i, why, why_size);
        }
    }
    if (rc == 0 && (rc = s_in_next (in, &obj, why, why_size)) != 0) {
        snprintf (why, why_size, "bytes after the last pair");
        rc = WALCAST_EPROTO;
    }
    if (rc != 0)
        wc_store_destroy (&store);
    *store_p = store;
    return rc < 0 ? rc : 0;
}

//  The CRC32C at the end of the file open on fd (size bytes). 0 or
//  WALCAST_EPROTO / WALCAST_EIO.
static int
s_read_trailer (int fd, uint64_t size, uint32_t *crc)
{
    uint8_t tail [4];
    if (size < sizeof tail)
        return WALCAST_EPROTO;
    if (wc_files_pread_all (fd, tail, sizeof tail, size - sizeof tail) != sizeof tail)
        return WALCAST_EIO;
    *crc = (uint32_t) tail [0] | (uint32_t) tail [1] << 8 | (uint32_t) tail [2] << 16
         | (uint32_t) tail [3] << 24;
    return 0;
}

//  The checks that need the whole file read: CRC, count, digest.
static int
s_check_whole (const s_in_t *in, const wc_store_t *store, const wc_snapshot_info_t *info,
               char *why, size_t why_size)
{
    if (in->crc != info->crc)
        snprintf (why, why_size, "CRC mismatch (the trailer says 0x%08x, the bytes give "
                  "0x%08x)", info->crc, in->crc);
    else
    if (wc_store_count (store) != info->count)
        snprintf (why, why_size, "%llu pairs hold %zu distinct keys",
                  (unsigned long long) info->count, wc_store_count (store));
    else
    if (wc_store_digest (store) != info->digest)
        snprintf (why, why_size, "the pairs' digest 0x%016llx is not the header's 0x%016llx",
                  (unsigned long long) wc_store_digest (store),
                  (unsigned long long) info->digest);
    else
        return 0;
    return WALCAST_EPROTO;
}

int
wc_snapshot_read_fd (int fd, wc_store_t **store_p, wc_epochs_t *history,
                     wc_snapshot_info_t *info, char *why, size_t why_size)
{
    wc_snapshot_info_t got = { 0 };
    struct stat st;
    if (fstat (fd, &st) != 0) {
        snprintf (why, why_size, "cannot stat: %s", strerror (errno));
        return WALCAST_EIO;
    }
    got.bytes = (uint64_t) st.st_size;
    int rc = s_read_trailer (fd, got.bytes, &got.crc);
    if (rc != 0) {
        snprintf (why, why_size, rc == WALCAST_EPROTO ? "truncated (%llu bytes)"
                  : "cannot read the trailer (%llu bytes)", (unsigned long long) got.bytes);
        return rc;
    }
    wc_epochs_t *epochs = wc_epochs_new ();
    if (!epochs)
        return WALCAST_ENOMEM;
    s_in_t in = { .fd = fd, .end = got.bytes - 4 };
    wc_store_t *store = NULL;
    if (!(in.zone = msgpack_zone_new (MSGPACK_ZONE_CHUNK_SIZE)))
        rc = WALCAST_ENOMEM;
    else
        rc = s_read_body (&in, &store, epochs, &got, why, why_size);
    msgpack_zone_free (in.zone);
    free (in.buf);
    if (rc == 0)
        rc = s_check_whole (&in, store, &got, why, why_size);
    if (rc == 0 && history)
        rc = wc_epochs_copy (history, epochs);
    wc_epochs_destroy (&epochs);
    if (rc != 0 || !store_p)
        wc_store_destroy (&store);
    if (rc == 0 && store_p)
        *store_p = store;
    if (rc == 0)
        *info = got;
    return rc;
}

int
wc_snapshot_load (int dirfd, uint64_t seq, wc_store_t **store_p, wc_epochs_t *history,
                  wc_snapshot_info_t *info, char *why, size_t why_size)
{
    char name [WC_SNAPSHOT_NAME_SIZE], inner [224];
    wc_snapshot_name (name, seq);
    int fd = wc_vfs_openat (dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf (why, why_size, "cannot open %s: %s", name, strerror (errno));
        return errno == ENOENT ? WALCAST_ENOTFOUND : WALCAST_EIO;
    }
    int rc = wc_snapshot_read_fd (fd, store_p, history, info, inner, sizeof inner);
    wc_vfs_close (fd);
    if (rc != 0)
        snprintf (why, why_size, "%s: %s", name, inner);
    if (rc == 0 && info->seq != seq) {
        snprintf (why, why_size, "%s holds seq %llu", name, (unsigned long long) info->seq);
        if (store_p)
            wc_store_destroy (store_p);
        rc = WALCAST_EPROTO;
    }
    return rc;
}

int
wc_snapshot_crc (int dirfd, const char *name, uint32_t *crc)
{
    int fd = wc_vfs_openat (dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? WALCAST_ENOTFOUND : WALCAST_EIO;
    struct stat st;
    int rc = fstat (fd, &st) == 0 ? s_read_trailer (fd, (uint64_t) st.st_size, crc)
                                  : WALCAST_EIO;
    wc_vfs_close (fd);
    return rc;
}


//  --------------------------------------------------------------------
//  The writer thread

/*  What the loop and the thread share; every field under mutex but
    cancel, which is atomic. */
typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t ended;       /* broadcast when a write ends */
    atomic_bool cancel;         /* stop the write in progress */
    bool running;               /* a write was handed over and has not ended */
    bool done;                  /* it ended and its result is waiting */
    wc_snapshot_result_t result;
} s_shared_t;

/*  One write, owned by the loop's side, read by the thread. */
typedef struct {
    wc_snapshot_info_t info;    /* seq, ts_ms */
    wc_epochs_t *history;       /* a copy, up to the seq and beyond */
    const wc_store_frozen_t *view;
} s_job_t;

/*  What the thread is given at its start. */
typedef struct {
    s_shared_t shared;
    int dirfd;                  /* the directory, ours */
    char *dir;                  /* its name, for logs */
} s_args_t;

struct wc_snapshotter {
    zactor_t *actor;            /* the writing thread */
    s_args_t *args;             /* shared with it */
    s_job_t job;                /* the write started last */
    bool busy;                  /* started, result not taken */
};

//  Run one job on the thread and publish its result.
static void
s_run_job (s_args_t *args, const s_job_t *job, zsock_t *pipe)
{
    wc_snapshot_result_t result = { .seq = job->info.seq };
    int64_t started = wc_clock_us ();
    result.rc = wc_snapshot_write (args->dirfd, &job->info, job->history, job->view,
                                   &args->shared.cancel, &result.bytes, result.why,
                                   sizeof result.why);
    result.seconds = (double) (wc_clock_us () - started) / 1e6;
    if (result.rc == 0)
        wc_log_info ("snapshot %s: wrote seq %llu (%zu keys, %llu bytes) in %.3f s",
                     args->dir, (unsigned long long) result.seq,
                     wc_store_frozen_count (job->view), (unsigned long long) result.bytes,
                     result.seconds);
    pthread_mutex_lock (&args->shared.mutex);
    args->shared.result = result;
    args->shared.running = false;
    args->shared.done = true;
    pthread_cond_broadcast (&args->shared.ended);
    pthread_mutex_unlock (&args->shared.mutex);
    zstr_send (pipe, "R");
}

//  The actor: "WRITE" + job pointer, or "$TERM".
static void
s_actor (zsock_t *pipe, void *arg)
{
    s_args_t *args = (s_args_t *) arg;
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL;
        void *job = NULL;
        if (zsock_recv (pipe, "sp", &command, &job) != 0)
            break;                      //  interrupted
        bool write = command && streq (command, "WRITE") && job;
        bool term = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (term)
            break;
        if (write)
            s_run_job (args, (const s_job_t *) job, pipe);
    }
}

//  Free the thread's arguments.
static void
s_args_destroy (s_args_t **args_p)
{
    s_args_t *args = *args_p;
    if (!args)
        return;
    pthread_cond_destroy (&args->shared.ended);
    pthread_mutex_destroy (&args->shared.mutex);
    if (args->dirfd >= 0)
        wc_vfs_close (args->dirfd);
    free (args->dir);
    free (args);
    *args_p = NULL;
}

//  The thread's arguments: a copy of the directory's descriptor and name,
//  the shared state. NULL on failure.
static s_args_t *
s_args_new (int dirfd, const char *dir)
{
    s_args_t *args = (s_args_t *) calloc (1, sizeof *args);
    if (!args)
        return NULL;
    args->dirfd = wc_vfs_dup (dirfd);
    args->dir = strdup (dir);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    bool cond = pthread_cond_init (&args->shared.ended, &attr) == 0;
    pthread_condattr_destroy (&attr);
    bool mutex = pthread_mutex_init (&args->shared.mutex, NULL) == 0;
    atomic_init (&args->shared.cancel, false);
    if (args->dirfd < 0 || !args->dir || !cond || !mutex) {
        if (cond)
            pthread_cond_destroy (&args->shared.ended);
        if (mutex)
            pthread_mutex_destroy (&args->shared.mutex);
        if (args->dirfd >= 0)
            wc_vfs_close (args->dirfd);
        free (args->dir);
        free (args);
        return NULL;
    }
    return args;
}

wc_snapshotter_t *
wc_snapshotter_new (int dirfd, const char *dir)
{
    wc_snapshotter_t *self = (wc_snapshotter_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->args = s_args_new (dirfd, dir);
    self->job.history = wc_epochs_new ();
    if (self->args && self->job.history)
        self->actor = zactor_new (s_actor, self->args);
    if (!self->actor) {
        wc_log_error ("snapshot %s: cannot start the writer thread", dir);
        wc_epochs_destroy (&self->job.history);
        s_args_destroy (&self->args);
        free (self);
        return NULL;
    }
    return self;
}

void
wc_snapshotter_destroy (wc_snapshotter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wc_snapshotter_t *self = *self_p;
    wc_snapshotter_cancel (self);
    zactor_destroy (&self->actor);      //  the write in progress ends first
    wc_epochs_destroy (&self->job.history);
    s_args_destroy (&self->args);
    free (self);
    *self_p = NULL;
}

int
wc_snapshotter_start (wc_snapshotter_t *self, const wc_snapshot_info_t *info,
                      const wc_epochs_t *history, const wc_store_frozen_t *view)
{
    if (self->busy)
        return WALCAST_EBUSY;
    if (wc_epochs_copy (self->job.history, history) != 0)
        return WALCAST_ENOMEM;
    self->job.info = *info;
    self->job.view = view;
    s_shared_t *shared = &self->args->shared;
    pthread_mutex_lock (&shared->mutex);
    atomic_store (&shared->cancel, false);
    shared->running = true;
    shared->done = false;
    pthread_mutex_unlock (&shared->mutex);
    if (zsock_send (self->actor, "sp", "WRITE", &self->job) != 0) {
        pthread_mutex_lock (&shared->mutex);
        shared->running = false;
        pthread_mutex_unlock (&shared->mutex);
        return WALCAST_ENOMEM;
    }
    self->busy = true;
    return 0;
}

bool
wc_snapshotter_busy (const wc_snapshotter_t *self)
{
    return self->busy;
}

void
wc_snapshotter_cancel (wc_snapshotter_t *self)
{
    atomic_store (&self->args->shared.cancel, true);
}

void *
wc_snapshotter_sock (wc_snapshotter_t *self)
{
    return zsock_resolve (zactor_sock (self->actor));
}

void
wc_snapshotter_drain (wc_snapshotter_t *self)
{
    char notice [8];
    void *handle = wc_snapshotter_sock (self);
    while (zmq_recv (handle, notice, sizeof notice, ZMQ_DONTWAIT) >= 0 || zmq_errno () == EINTR)
        ;
}

int
wc_snapshotter_take (wc_snapshotter_t *self, int timeout_ms, wc_snapshot_result_t *result)
{
    if (!self->busy)
        return 0;
    s_shared_t *shared = &self->args->shared;
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms > 0 ? timeout_ms / 1000 : 0;
    deadline.tv_nsec += timeout_ms > 0 ? (long) (timeout_ms % 1000) * 1000000 : 0;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock (&shared->mutex);
    int rc = 0;
    while (!shared->done && timeout_ms != 0 && rc == 0)
        rc = timeout_ms < 0 ? pthread_cond_wait (&shared->ended, &shared->mutex)
                            : pthread_cond_timedwait (&shared->ended, &shared->mutex,
                                                      &deadline);
    bool done = shared->done;
    if (done) {
        *result = shared->result;
        shared->done = false;
    }
    pthread_mutex_unlock (&shared->mutex);
    if (done)
        self->busy = false;
    return done ? 1 : 0;
}
