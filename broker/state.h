/*  state.h - the cluster state the broker must never forget: the epoch
    and the primary, kept in the broker's data directory (--data DIR).

    failover.c hands every new state to wc_state_file_save before it acts
    on it (a PROMOTE, a FOLLOW that names a new primary), so a broker that
    is killed and restarted reads back at least the epoch it last handed
    out: epochs never go back, and no epoch is ever given to two
    primaries.

    Two ideas make it safe:
    - The file is replaced whole, atomically: written to a temporary file,
      fsynced, renamed over the old one, and the directory fsynced. A crash
      at any point leaves either the old state or the new one.
    - What is read back is untrusted: a small text file of key=value lines
      with a CRC32C of everything before its last line. A damaged file is
      an error that stops the broker at start (the operator decides), never
      a silent fall back to epoch 0.

    One process per directory: DIR/LOCK is held with flock while the
    broker runs (the kernel drops it when the process dies, however).
*/
#ifndef WC_STATE_H_INCLUDED
#define WC_STATE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "wc_limits.h"

/*  The cluster's state. Strings are NUL-terminated and, like everything
    the broker admits, printable (ids: %x21-7E; addresses: HOST:PORT). */
typedef struct {
    uint64_t epoch;                         /* the primary's epoch; 0: none yet */
    char     primary [WC_MAX_ID + 1];       /* its id; "" when none */
    char     primary_addr [WC_MAX_ADDR + 1];    /* its HOST:PORT; "" when none */
} wc_state_t;

typedef struct wc_state_file wc_state_file_t;

/*  Name of the state file in the data directory. */
#define WC_STATE_FILE   "broker.state"

/*  Open the data directory dir (created when missing), take its lock and
    read the state into *state (all zero when there is no state file
    yet: a new cluster). Returns the handle, or NULL with *err set and the
    cause and remedy in why: WALCAST_EBUSY (another process holds the
    lock), WALCAST_EIO (cannot create, read or lock), WALCAST_EPROTO (the
    file is damaged or not a state file), WALCAST_EVERSION (written by a
    newer broker). */
wc_state_file_t *wc_state_file_open (const char *dir, wc_state_t *state, int *err,
                                     char *why, size_t why_size);

/*  Replace the state file with state, durably (see above). Returns 0, or
    WALCAST_EIO / WALCAST_ENOSPC with the cause in why: the old state is
    then still the one on disk. */
int wc_state_file_save (wc_state_file_t *self, const wc_state_t *state, char *why,
                        size_t why_size);

/*  Path of the state file (for messages). */
const char *wc_state_file_path (wc_state_file_t *self);

/*  Release the lock and free the handle; *self_p becomes NULL; safe twice. */
void wc_state_file_destroy (wc_state_file_t **self_p);

/*  Encode state as the file's text into buf (size >= 512). Returns the
    length, or -1 when it does not fit. */
int wc_state_encode (const wc_state_t *state, char *buf, size_t size);

/*  Decode the file's text (len octets) into *state. Returns 0,
    WALCAST_EPROTO or WALCAST_EVERSION, with the reason in why. */
int wc_state_decode (const char *text, size_t len, wc_state_t *state, char *why,
                     size_t why_size);

#endif
