/*  scrape.h - the broker's /metrics (--metrics-port).

    Once a second the loop hands over its counts and its directory; they
    are set in a metrics registry (runtime/metrics.h), rendered and
    published to an HTTP server (runtime/httpd.h), whose thread serves the
    latest text and never reads the broker.
*/
#ifndef WC_SCRAPE_H_INCLUDED
#define WC_SCRAPE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "directory.h"

typedef struct wc_scrape wc_scrape_t;

/*  What the broker counts, as the loop knows it now. */
typedef struct {
    uint64_t failovers;         /* silent primaries replaced */
    uint64_t epoch;             /* the cluster's */
    uint64_t version;           /* the topology's */
    uint64_t refused;           /* REGISTERs and NODE_HEARTBEATs refused */
    uint64_t bad_messages;      /* malformed or unexpected */
    uint64_t refused_eperm;     /* CURVE: requests beyond the key's role */
    uint64_t refused_eproto;    /* CURVE: a node_info with a key not its own */
    uint64_t refused_connections;   /* CURVE: handshakes refused */
    uint64_t dropped_handshakes;    /* CURVE: handshakes the connection ended */
} wc_scrape_counts_t;

/*  Serve /metrics on bind:port. NULL on failure, with the reason in why. */
wc_scrape_t *wc_scrape_new (const char *bind, int port, char *why, size_t why_size);

void wc_scrape_destroy (wc_scrape_t **self_p);

/*  Render and publish when a second has passed since the last time:
    counts, and the nodes of dir up and down per region at now_ms.
    Returns ms until it is next due. */
int wc_scrape_tick (wc_scrape_t *self, wc_directory_t *dir,
                    const wc_scrape_counts_t *counts, int64_t now_ms);

#endif
