/*  scan.h - a fast reader of the encodings the hot path moves.

    The codec (codec.h) decodes any well-formed message with msgpack-c:
    general, but it builds an object tree in a zone for every message.
    Replicas and the engine handle every entry of the log, so for the two
    shapes they see most this module reads the bytes directly, with no
    allocation:

    - an entry as the codec writes it (wc_entry_encode): the array
      [seq, epoch, ts_ms, op, key, value|nil] in msgpack's shortest
      forms (the only ones msgpack-c's packer produces);
    - an ENTRIES body as nodes write it: [version, ENTRIES, rid,
      last_seq, [entry...]], each entry as above, and on the stream
      applied_us (and the cluster id, and flags) after the entries.

    The one idea: a scan accepts only that canonical form, and everything
    it accepts the codec accepts too, with the same result. Anything else
    (another implementation's longer int forms, extra array elements, a
    malformed message) is "not canonical": the caller decodes it with the
    codec, which takes what is valid and names what is not. So a scan is
    never the judge of validity, only a shortcut, and because an accepted
    entry is canonical its bytes are exactly what wc_entry_encode would
    write: a replica appends them to its log as they are.
*/
#ifndef WC_SCAN_H_INCLUDED
#define WC_SCAN_H_INCLUDED

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include "codec.h"

/*  Read one canonical entry at buf (at most len bytes; it need not end
    there). On success fills entry (borrowing key and value from buf),
    sets *used to its size in bytes and returns 0; returns WALCAST_EPROTO
    when the bytes are not a canonical, valid entry (decode them with
    wc_entry_decode or wc_entry_from_object instead). */
int wc_scan_entry (const uint8_t *buf, size_t len, wc_entry_t *entry, size_t *used);

/*  A cursor over the entries of an ENTRIES body. */
typedef struct {
    const uint8_t *buf;
    size_t         len;
    size_t         pos;         /* next entry starts here */
    uint64_t       rid;
    uint64_t       last_seq;
    uint32_t       count;       /* entries in the body */
    uint32_t       read;        /* entries read so far */
    uint8_t        trailer;     /* elements after them: 0, applied_us (1),
                                   applied_us and cluster (2), or those
                                   and flags (3) */
    uint64_t       applied_us;  /* their values, once the entries were read */
    uint64_t       cluster;
    uint64_t       flags;
} wc_scan_entries_t;

/*  Start reading an ENTRIES body: 0 when its head is canonical (cursor
    ready, count known), WALCAST_EPROTO when it is not (decode it with
    wc_msg_decode). */
int wc_scan_entries (const void *buf, size_t len, wc_scan_entries_t *cursor);

/*  The next entry: 1 with entry filled (and its bytes at *raw, *raw_len),
    0 when all were read and the body ends exactly there (after
    applied_us, cluster and flags, read into the cursor, when the head
    announced them),
    WALCAST_EPROTO
    when the rest is not canonical (decode the body with wc_msg_decode;
    the entries already read were valid). */
int wc_scan_entries_next (wc_scan_entries_t *cursor, wc_entry_t *entry,
                          const uint8_t **raw, size_t *raw_len);

/*  A cursor over the writes of a WRITE_BATCH body. */
typedef struct {
    const uint8_t *buf;
    size_t         len;
    size_t         pos;         /* next write starts here */
    uint64_t       rid;
    uint8_t        acks;
    uint32_t       ack_timeout_ms;  /* clamped as the codec clamps it */
    uint32_t       count;
    uint32_t       read;
} wc_scan_writes_t;

/*  Start reading a WRITE_BATCH body and check it whole: 0 when the head
    and every write are canonical and valid and nothing follows the last
    (then wc_scan_writes_next cannot fail), WALCAST_EPROTO when not
    (decode it with wc_msg_decode, which takes what is valid). */
int wc_scan_write_batch (const void *buf, size_t len, wc_scan_writes_t *cursor);

/*  Start reading a WRITE_BATCH body that wc_scan_write_batch checked
    before (its head only): 0, or WALCAST_EPROTO. */
int wc_scan_writes_begin (const void *buf, size_t len, wc_scan_writes_t *cursor);

/*  The next write: 1 with write filled (borrowing the body), 0 after the
    last, WALCAST_EPROTO when it is not canonical (never, in a body
    wc_scan_write_batch checked). */
int wc_scan_writes_next (wc_scan_writes_t *cursor, wc_write_t *write);

/*  The most octets wc_scan_write_entry adds to the key and value. */
#define WC_SCAN_ENTRY_OVERHEAD  40u

/*  Write entry in the canonical form at out, which has room for
    WC_SCAN_ENTRY_OVERHEAD + key.len + value.len octets; returns the
    octets written: exactly what wc_entry_encode appends, without
    msgpack-c's packer. The entry must be valid (the caller built it). */
size_t wc_scan_write_entry (uint8_t *out, const wc_entry_t *entry);

/*  An entry a whole-body check read, kept so that it is not read twice
    (wc_scan_body_keep). */
typedef struct {
    wc_entry_t     entry;
    const uint8_t *raw;
    size_t         raw_len;
} wc_scan_kept_t;

/*  The entries of a stream or catch-up body, whatever its form: an ENTRY
    (one entry) or an ENTRIES (many), read with the scan when the whole
    body is canonical (checked before the first entry is handed over),
    else with the codec, as before: a body malformed as a whole gives no
    entry, and an item the codec cannot take ends the reading there. The
    entries borrow the body's bytes (and, with the codec, the storage), so
    both must outlive their use. */
typedef struct {
    int                     type;       /* WC_MSG_ENTRY or WC_MSG_ENTRIES */
    uint64_t                rid;        /* ENTRIES: the request id (0 on a stream) */
    uint64_t                last_seq;   /* ENTRIES: the sender's last seq; ENTRY:
                                           the entry's seq */
    uint32_t                count;      /* entries in the body */
    uint64_t                applied_us; /* ENTRIES: when the sender had
                                           applied them, 0 when absent */
    uint64_t                cluster;    /* ENTRIES: the sender's cluster id,
                                           0 when absent */
    uint64_t                flags;      /* ENTRIES: WC_ENTRIES_*, 0 when absent */
    /* private */
    const uint8_t          *data;
    size_t                  len;
    msgpack_unpacked       *storage;
    wc_scan_entries_t       cursor;
    const msgpack_object   *items;      /* the codec's, in codec mode */
    const wc_scan_kept_t   *kept;       /* the check's, when it kept them */
    uint32_t                next;       /* next item, in codec or kept mode */
    bool                    slow;
    bool                    single_read;
    wc_entry_t              single;
    size_t                  single_at;  /* where the single entry's bytes start */
} wc_scan_body_t;

/*  Open a body. Returns 0 when it is an ENTRY or ENTRIES (then read its
    entries with wc_scan_body_next), 1 when it is another valid message
    (decoded into msg with storage), or the codec's error when it is
    malformed. */
int wc_scan_body (wc_scan_body_t *body, const void *data, size_t len,
                  msgpack_unpacked *storage, wc_msg_t *msg);

/*  The same, keeping what the check of a canonical ENTRIES body reads in
    keep, the caller's room for cap entries (reused from body to body):
    wc_scan_body_next then hands the entries over without reading them a
    second time. A body of more than cap entries is read twice, as
    wc_scan_body reads it. keep must outlive the body's use, and serve
    one open body at a time. */
int wc_scan_body_keep (wc_scan_body_t *body, const void *data, size_t len,
                       msgpack_unpacked *storage, wc_msg_t *msg,
                       wc_scan_kept_t *keep, uint32_t cap);

/*  Was the body checked whole before its first entry (read by the scan:
    every entry well-formed, nothing after the last)? */
bool wc_scan_body_whole (const wc_scan_body_t *body);

/*  The next entry of an open body: 1 with entry filled, and *raw,
    *raw_len its canonical bytes (NULL, 0 when it came through the codec:
    encode it to store it); 0 at the end; WALCAST_EPROTO when the rest is
    malformed (the entries read before it were valid). */
int wc_scan_body_next (wc_scan_body_t *body, wc_entry_t *entry,
                       const uint8_t **raw, size_t *raw_len);

#endif
