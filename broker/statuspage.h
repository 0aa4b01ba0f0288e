/*  statuspage.h - the broker's status page: an HTML page at / and the
    cluster as JSON at /api/topology, served on --http-port.

    The broker's loop owns everything here. It calls wc_statuspage_tick
    on every turn: once a second the page samples every node's lag into
    its history (history.h) and publishes a new JSON document, and it
    publishes at once (within 100 ms) when the directory's version moved
    (a node up or down, a new role) or the primary changed hands
    (wc_statuspage_event, called by failover.c through
    wc_failover_on_event). The documents
    go to runtime/httpd.h, whose thread serves the latest copy: the HTTP
    side never reads the broker's state.

    The page (statuspage.html, built into the binary) is plain HTML with
    inline script and style and no outside resource: it fetches
    /api/topology every second and draws it. README.md ("Status page")
    documents the JSON.
*/
#ifndef WC_STATUSPAGE_H_INCLUDED
#define WC_STATUSPAGE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "directory.h"
#include "failover.h"
#include "state.h"

typedef struct wc_statuspage wc_statuspage_t;

/*  Serve the page on bind:port. NULL on failure, with the cause and the
    remedy in why (a port in use...). */
wc_statuspage_t *wc_statuspage_new (const char *bind, int port, char *why,
                                    size_t why_size);

/*  Stop serving and free it; *self_p becomes NULL; safe twice. */
void wc_statuspage_destroy (wc_statuspage_t **self_p);

/*  A wc_failover_event_fn: keep the change of primary (arg is the page)
    and publish on the next tick. */
void wc_statuspage_event (void *arg, const wc_failover_event_t *event);

/*  The loop's turn at monotonic time now_ms: sample and publish when due
    (see above). state is the cluster's (failover.c's). Returns the
    monotonic time of the next sample. */
int64_t wc_statuspage_tick (wc_statuspage_t *self, wc_directory_t *dir,
                            const wc_state_t *state, int64_t now_ms);

#endif
