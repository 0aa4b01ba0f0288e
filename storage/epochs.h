/*  epochs.h - the epoch history: which primary tenure each run of the log
    belongs to.

    Every primary tenure has an epoch, and every entry carries the epoch
    of the primary that wrote it. A node's history is the list of (epoch,
    first seq) pairs of the epochs its log went through, ascending in both
    (two epochs may share a first seq: an epoch begun and ended without a
    write), like Kafka's leader-epoch checkpoint. It answers EPOCH_END
    ("where did my epoch E end in your log?") and gives a replica its own
    last seq of an epoch, and the two together are the fork point between
    two logs: found exactly, at the entry.

    On disk the history is the file "epochs" of the data directory, the
    msgpack array

        ["walcast-epochs", 1, [[epoch, first_seq], ...]]

    followed by the CRC32C of those bytes (u32, little-endian), replaced
    whole (files.h) before the first entry of a new epoch is written. A
    snapshot's header carries the history up to its seq in the same
    [[epoch, first_seq], ...] form.

    Plain data, one owner: no locking.
*/
#ifndef WC_EPOCHS_H_INCLUDED
#define WC_EPOCHS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

/*  One epoch and the seq of its first entry. */
typedef struct {
    uint64_t epoch;
    uint64_t first_seq;
} wc_epoch_t;

typedef struct wc_epochs wc_epochs_t;

/*  Most epochs a history may hold (a file or a snapshot with more is
    malformed). */
#define WC_EPOCHS_MAX 1000000u

/*  The file the history lives in, inside the data directory. */
#define WC_EPOCHS_FILE "epochs"

/*  A new empty history, or NULL when out of memory. */
wc_epochs_t *wc_epochs_new (void);

/*  Free it; *self_p becomes NULL; safe twice. */
void wc_epochs_destroy (wc_epochs_t **self_p);

/*  Make self a copy of src. 0 or WALCAST_ENOMEM (self unchanged). */
int wc_epochs_copy (wc_epochs_t *self, const wc_epochs_t *src);

/*  True when both hold the same pairs. */
bool wc_epochs_equal (const wc_epochs_t *a, const wc_epochs_t *b);

/*  The pairs, ascending, and how many. */
size_t wc_epochs_count (const wc_epochs_t *self);
const wc_epoch_t *wc_epochs_items (const wc_epochs_t *self);

/*  The latest epoch (0 when empty) and its first seq (0 when empty). */
uint64_t wc_epochs_latest (const wc_epochs_t *self);
uint64_t wc_epochs_latest_first (const wc_epochs_t *self);

/*  Add epoch, beginning at first_seq. epoch must be above the latest and
    first_seq at least the latest's first seq. 0, WALCAST_EINVAL,
    WALCAST_ENOMEM. */
int wc_epochs_add (wc_epochs_t *self, uint64_t epoch, uint64_t first_seq);

/*  Forget every epoch that begins after seq (a truncated log). */
void wc_epochs_cut (wc_epochs_t *self, uint64_t seq);

/*  EPOCH_END over a log whose last seq is last_seq: *found is the largest
    epoch <= epoch in the history and *end_seq the seq before the next
    epoch's first (at most last_seq), or last_seq when *found is the
    latest; 0, 0 when the history has no epoch <= epoch. */
void wc_epochs_end (const wc_epochs_t *self, uint64_t epoch, uint64_t last_seq,
                    uint64_t *found, uint64_t *end_seq);

/*  The last seq of the log (ending at last_seq) whose entries are of
    epochs <= epoch: the seq before the first epoch above it begins, or
    last_seq when none does. */
uint64_t wc_epochs_last_seq (const wc_epochs_t *self, uint64_t epoch, uint64_t last_seq);

/*  Add the epochs of other that self does not have (an epoch in both
    keeps the lower first seq), then make first seqs ascend again. 0 or
    WALCAST_ENOMEM. */
int wc_epochs_merge (wc_epochs_t *self, const wc_epochs_t *other);

/*  Fit the history to a log that ends at last_seq: epochs that begin
    past last_seq + 1 are dropped, except the latest (a primary begins its
    epoch before its first write), whose first seq is brought down to
    last_seq + 1 when it is above. True when something changed. */
bool wc_epochs_reconcile (wc_epochs_t *self, uint64_t last_seq);

/*  Pack the pairs whose first seq is at most upto_seq as
    [[epoch, first_seq], ...]. 0 or WALCAST_ENOMEM. */
int wc_epochs_pack (const wc_epochs_t *self, uint64_t upto_seq, msgpack_packer *pk);

/*  Replace self with the pairs of obj, an array as wc_epochs_pack makes
    it: checked (unsigned integers, epochs and first seqs >= 1, epochs
    strictly ascending, first seqs ascending and at most upto_seq + 1, at
    most WC_EPOCHS_MAX pairs). 0, WALCAST_EPROTO (self unchanged),
    WALCAST_ENOMEM. */
int wc_epochs_from_object (wc_epochs_t *self, const msgpack_object *obj,
                           uint64_t upto_seq);

/*  Read the history file of the directory into self. 0, WALCAST_ENOTFOUND
    (no file: self emptied), WALCAST_EPROTO (damaged: CRC, format; self
    unchanged), WALCAST_EIO, WALCAST_ENOMEM; why says what. */
int wc_epochs_load (wc_epochs_t *self, int dirfd, char *why, size_t why_size);

/*  Replace the history file with self, durably (files.h). 0,
    WALCAST_ENOSPC, WALCAST_EIO, WALCAST_ENOMEM; why says what. */
int wc_epochs_save (const wc_epochs_t *self, int dirfd, char *why, size_t why_size);

/*  The history as text, "1@1 2@57 3@120" (epoch@first seq), cut short
    with "..." when it does not fit; for logs. */
const char *wc_epochs_text (const wc_epochs_t *self, char *buf, size_t size);

#endif
