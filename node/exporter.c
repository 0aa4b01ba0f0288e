/*  exporter.c - the node's /metrics (see exporter.h).

    The families are declared once, from a table; each second s_update
    sets every series from the node's own numbers (counters are totals
    the node keeps, so setting them is exact), the per-replica series are
    cleared and made again from the ACK table (replicas come and go), and
    the text is published. Names follow Prometheus's conventions: a
    walcast_ prefix, counters in _total, durations in seconds.
*/
#include <stdlib.h>
#include "acks.h"
#include "applylag.h"
#include "exporter.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "primary.h"
#include "publisher.h"
#include "sock.h"
#include "walcast.h"

#define S_EVERY_MS  1000

struct wc_exporter {
    wc_node_t    *node;         /* what we show */
    wc_metrics_t *metrics;      /* the registry, the loop's only */
    wc_httpd_t   *httpd;        /* serves the published text */
    int64_t       next_ms;      /* when to render next */
};

static const char *const s_socket [] = { "socket", NULL };
static const char *const s_code [] = { "code", NULL };
static const char *const s_replica [] = { "replica", NULL };
static const char *const s_role [] = { "role", NULL };

typedef struct {
    const char        *name;
    wc_metric_type_t   type;
    const char *const *labels;
    const char        *help;
    const double      *bounds;      /* a histogram's; NULL: the latency bounds */
    size_t             nbounds;     /* how many bounds, with bounds */
} s_family_t;

static const s_family_t s_families [] = {
    { "walcast_writes_total", WC_METRIC_COUNTER, NULL,
      "Writes (PUT, DEL, each write of a batch) the primary committed to its log.", NULL, 0 },
    { "walcast_reads_total", WC_METRIC_COUNTER, NULL, "GETs answered with a value.", NULL, 0 },
    { "walcast_entries_published_total", WC_METRIC_COUNTER, NULL,
      "Entries applied and published on the stream.", NULL, 0 },
    { "walcast_fetches_served_total", WC_METRIC_COUNTER, NULL,
      "FETCH requests answered with entries (catch-up socket).", NULL, 0 },
    { "walcast_gaps_repaired_total", WC_METRIC_COUNTER, NULL,
      "Gaps this replica found in the stream and repaired by FETCH.", NULL, 0 },
    { "walcast_snapshot_resyncs_total", WC_METRIC_COUNTER, NULL,
      "Snapshots this replica installed to catch up.", NULL, 0 },
    { "walcast_bytes_received_total", WC_METRIC_COUNTER, s_socket,
      "Request bytes received, by socket.", NULL, 0 },
    { "walcast_bytes_sent_total", WC_METRIC_COUNTER, s_socket,
      "Reply and stream bytes sent, by socket.", NULL, 0 },
    { "walcast_refused_requests_total", WC_METRIC_COUNTER, s_code,
      "Requests answered with an error, by error code.", NULL, 0 },
    { "walcast_malformed_messages_total", WC_METRIC_COUNTER, NULL,
      "Requests dropped as malformed (too many or too big frames, not a request, "
      "a peer that does not read its replies).", NULL, 0 },
    { "walcast_refused_connections_total", WC_METRIC_COUNTER, NULL,
      "Connections refused at the CURVE handshake (no keys, or a key not trusted).", NULL, 0 },
    { "walcast_handshakes_dropped_total", WC_METRIC_COUNTER, NULL,
      "CURVE handshakes that failed because the connection closed or timed out before "
      "they completed (peers that went away or gave up: not refusals).", NULL, 0 },
    { "walcast_refused_subscriptions_total", WC_METRIC_COUNTER, NULL,
      "Stream subscriptions refused: their key has no role (CURVE).", NULL, 0 },
    { "walcast_replica_lag_entries", WC_METRIC_GAUGE, s_replica,
      "Entries a replica lacks, from its last ACK (primary only).", NULL, 0 },
    { "walcast_replica_lag_seconds", WC_METRIC_GAUGE, s_replica,
      "Age of the first entry a replica lacks, from its last ACK (primary only).", NULL, 0 },
    { "walcast_replicas_connected", WC_METRIC_GAUGE, NULL,
      "Replicas that ACKed this epoch within --replica-lag (primary only).", NULL, 0 },
    { "walcast_wal_bytes", WC_METRIC_GAUGE, NULL, "Bytes of the log's segment files.", NULL, 0 },
    { "walcast_wal_segments", WC_METRIC_GAUGE, NULL, "Segment files of the log.", NULL, 0 },
    { "walcast_fsync_duration_seconds", WC_METRIC_HISTOGRAM, NULL,
      "Duration of each fdatasync/fsync of the log.", NULL, 0 },
    { "walcast_write_ack_duration_seconds", WC_METRIC_HISTOGRAM, NULL,
      "From a write's arrival to its reply (primary).", NULL, 0 },
    { "walcast_replication_apply_lag_seconds", WC_METRIC_HISTOGRAM, NULL,
      "Each streamed entry, from its upstream's apply to this replica's apply, "
      "by the two nodes' wall clocks (replica).", wc_applylag_bounds,
      WC_APPLYLAG_BUCKETS },
    { "walcast_epoch", WC_METRIC_GAUGE, NULL, "The node's epoch.", NULL, 0 },
    { "walcast_applied_seq", WC_METRIC_GAUGE, NULL, "The last seq the node applied.", NULL, 0 },
    { "walcast_role", WC_METRIC_GAUGE, s_role,
      "1 for the node's role (primary, candidate, replica), 0 for the others.", NULL, 0 },
};

#define S_NFAMILIES (sizeof s_families / sizeof s_families [0])

wc_exporter_t *
wc_exporter_new (wc_node_t *node, int port, char *why, size_t why_size)
{
    wc_exporter_t *self = (wc_exporter_t *) calloc (1, sizeof *self);
    snprintf (why, why_size, "out of memory");
    if (!self || !(self->metrics = wc_metrics_new ()))
        goto error;
    self->node = node;
    for (size_t f = 0; f < S_NFAMILIES; f++) {
        const s_family_t *family = &s_families [f];
        const double *bounds = family->bounds ? family->bounds : wc_metrics_latency_bounds;
        size_t nbounds = family->bounds ? family->nbounds : WC_METRICS_LATENCY_BUCKETS;
        if (wc_metrics_family (self->metrics, family->name, family->type, family->help,
                               family->labels, bounds, nbounds) != 0)
            goto error;
    }
    self->httpd = wc_httpd_new ("metrics", node->cfg.bind, port, why, why_size);
    if (!self->httpd)
        goto error;
    return self;                        /* the loop's first turn renders */

error:
    wc_exporter_destroy (&self);
    return NULL;
}

void
wc_exporter_destroy (wc_exporter_t **self_p)
{
    wc_exporter_t *self = *self_p;
    if (!self)
        return;
    wc_httpd_destroy (&self->httpd);
    wc_metrics_destroy (&self->metrics);
    free (self);
    *self_p = NULL;
}

/*  Set the series of name (no labels, or one label value) to value. */
static void
s_set (wc_exporter_t *self, const char *name, const char *label, double value)
{
    const char *const values [] = { label };
    wc_metric_set (wc_metrics_series (self->metrics, name, label ? values : NULL), value);
}

/*  The node's counters. */
static void
s_update_counts (wc_exporter_t *self)
{
    static const char *const sockets [WC_NODE_SOCKETS] = { "service", "catchup", "stream" };
    const wc_node_stats_t *stats = &self->node->stats;
    s_set (self, "walcast_writes_total", NULL, (double) stats->writes);
    s_set (self, "walcast_reads_total", NULL, (double) stats->reads);
    s_set (self, "walcast_entries_published_total", NULL, (double) stats->published);
    s_set (self, "walcast_fetches_served_total", NULL, (double) stats->fetches);
    s_set (self, "walcast_gaps_repaired_total", NULL, (double) stats->gaps);
    s_set (self, "walcast_snapshot_resyncs_total", NULL, (double) stats->resyncs);
    for (int s = 0; s < WC_NODE_SOCKETS; s++) {
        if (s != WC_NODE_STREAM)
            s_set (self, "walcast_bytes_received_total", sockets [s],
                   (double) stats->bytes_in [s]);
        s_set (self, "walcast_bytes_sent_total", sockets [s], (double) stats->bytes_out [s]);
    }
    for (int code = 1; code < WC_NODE_ERRORS; code++)      /* 0s too: see README */
        s_set (self, "walcast_refused_requests_total", walcast_errname (-code),
               (double) stats->refused [code]);
    wc_metric_set_tally (wc_metrics_series (self->metrics,
                                            "walcast_write_ack_duration_seconds", NULL),
                         &stats->write_latency);
    wc_metric_set_tally (wc_metrics_series (self->metrics,
                                            "walcast_replication_apply_lag_seconds", NULL),
                         &stats->apply_lag);
    s_set (self, "walcast_malformed_messages_total", NULL,
           (double) self->node->bad_messages);
    wc_curve_t *curve = wc_sock_curve ();
    s_set (self, "walcast_refused_connections_total", NULL,
           curve ? (double) wc_curve_refused (curve) : 0);
    s_set (self, "walcast_handshakes_dropped_total", NULL,
           curve ? (double) wc_curve_dropped (curve) : 0);
    s_set (self, "walcast_refused_subscriptions_total", NULL,
           (double) wc_publisher_refused (self->node->stream));
}

/*  The log, the role, and (on a primary) each replica's lag. */
static void
s_update_state (wc_exporter_t *self)
{
    wc_node_t *node = self->node;
    uint64_t bytes, segments;
    wc_engine_wal_size (node->engine, &bytes, &segments);
    s_set (self, "walcast_wal_bytes", NULL, (double) bytes);
    s_set (self, "walcast_wal_segments", NULL, (double) segments);
    wc_metrics_tally_t fsyncs;
    wc_engine_fsync_latency (node->engine, &fsyncs);
    wc_metric_set_tally (wc_metrics_series (self->metrics,
                                            "walcast_fsync_duration_seconds", NULL), &fsyncs);
    s_set (self, "walcast_epoch", NULL, (double) node->epoch);
    s_set (self, "walcast_applied_seq", NULL, (double) node->applied);
    bool primary = node->role == WC_ROLE_PRIMARY;
    s_set (self, "walcast_role", "primary", primary && !node->candidate);
    s_set (self, "walcast_role", "candidate", primary && node->candidate);
    s_set (self, "walcast_role", "replica", !primary);

    wc_metrics_clear (self->metrics, "walcast_replica_lag_entries");
    wc_metrics_clear (self->metrics, "walcast_replica_lag_seconds");
    const wc_acks_t *acks = node->primary ? wc_primary_acks (node->primary) : NULL;
    int64_t now = wc_clock_ms ();
    uint32_t connected = 0;
    for (size_t i = 0; acks && i < wc_acks_count (acks); i++) {
        wc_acks_lag_t lag;
        wc_acks_lag (acks, i, node->epoch, node->applied, now, &lag);
        s_set (self, "walcast_replica_lag_entries", lag.id, (double) lag.entries);
        s_set (self, "walcast_replica_lag_seconds", lag.id, (double) lag.ms / 1000.0);
        connected += lag.current;
    }
    s_set (self, "walcast_replicas_connected", NULL, connected);
}

int
wc_exporter_tick (wc_exporter_t *self)
{
    int64_t now = wc_clock_ms ();
    if (now < self->next_ms)
        return (int) (self->next_ms - now);
    self->next_ms = now + S_EVERY_MS;
    s_update_counts (self);
    s_update_state (self);
    char *text = NULL;
    size_t len = 0;
    if (wc_metrics_render (self->metrics, &text, &len) != 0
    ||  wc_httpd_publish (self->httpd, "/metrics", WC_METRICS_CONTENT_TYPE, text, len) != 0)
        wc_log_warn ("metrics: out of memory; /metrics shows the last text");
    free (text);
    return S_EVERY_MS;
}
