/*  download.h - a replica pulls its upstream's newest snapshot.

    When its upstream answers a FETCH with ERANGE (the entries it needs
    are older than the upstream's log keeps), the replica downloads the
    upstream's newest snapshot over the catch-up channel, SNAPSHOT_GET by
    SNAPSHOT_GET, into a temporary file of its data directory, and the
    storage engine installs it (storage/engine.h). This module owns the
    file and checks that the chunks fit together: one snapshot (its seq
    and size never change), offsets that follow each other, sizes within
    the announced one. The REQ socket and the install stay in replica.c.
*/
#ifndef WC_DOWNLOAD_H_INCLUDED
#define WC_DOWNLOAD_H_INCLUDED

#include <stdint.h>
#include "codec.h"

typedef struct wc_download wc_download_t;

/*  A download into path (created, truncated). NULL when out of memory. */
wc_download_t *wc_download_new (const char *path);

/*  Close and free; the file is removed unless it was complete and taken
    (wc_download_take). */
void wc_download_destroy (wc_download_t **self_p);

/*  The next SNAPSHOT_GET to send (type and fields; the caller sets rid). */
void wc_download_ask (wc_download_t *self, wc_msg_t *msg);

/*  A SNAPSHOT_CHUNK arrived for the last ask: 0 when more is needed, 1
    when the file is complete (written and fsynced), or an error:
    WALCAST_EPROTO (a chunk that does not fit: start again), WALCAST_EIO
    / WALCAST_ENOSPC (the file could not be written). why says what. */
int wc_download_on_chunk (wc_download_t *self, const wc_msg_t *msg,
                          char *why, size_t why_size);

/*  The snapshot's seq and size (0 before the first chunk), the bytes
    received so far, and the file's path. */
uint64_t wc_download_seq (const wc_download_t *self);
uint64_t wc_download_size (const wc_download_t *self);
uint64_t wc_download_received (const wc_download_t *self);
const char *wc_download_path (const wc_download_t *self);

/*  The complete file is the engine's now (installed or removed by it):
    destroy no longer removes it. */
void wc_download_take (wc_download_t *self);

#endif
