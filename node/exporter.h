/*  exporter.h - the node's /metrics (--metrics-port).

    Once a second the loop copies what the node counts (wc_node_stats_t,
    the replicas' ACKs, the log's size, the syncer's fsync latencies)
    into a metrics registry (runtime/metrics.h), renders it and publishes
    the text to an HTTP server (runtime/httpd.h), whose thread serves the
    latest copy. The HTTP thread never reads the node.
*/
#ifndef WC_EXPORTER_H_INCLUDED
#define WC_EXPORTER_H_INCLUDED

#include "node.h"

/*  Serve /metrics for node on its --bind address at port. NULL on
    failure, with the reason (a port in use...) in why. */
wc_exporter_t *wc_exporter_new (wc_node_t *node, int port, char *why, size_t why_size);

void wc_exporter_destroy (wc_exporter_t **self_p);

/*  Render and publish when a second has passed since the last time.
    Returns ms until it is next due. */
int wc_exporter_tick (wc_exporter_t *self);

#endif
