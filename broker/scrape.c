/*  scrape.c - the broker's /metrics (see scrape.h).

    Counters are totals the broker keeps, so each second sets them
    exactly; the per-region node counts are cleared and counted again
    from the directory (regions come and go), each region with both an
    "up" and a "down" series so a region whose nodes all went down shows
    a 0, not nothing.
*/
#include <stdlib.h>
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "scrape.h"
#include "walcast.h"

#define S_EVERY_MS  1000

struct wc_scrape {
    wc_metrics_t *metrics;      /* the registry, the loop's only */
    wc_httpd_t   *httpd;        /* serves the published text */
    int64_t       next_ms;      /* when to render next */
};

static const char *const s_node_labels [] = { "region", "state", NULL };
static const char *const s_code [] = { "code", NULL };

wc_scrape_t *
wc_scrape_new (const char *bind, int port, char *why, size_t why_size)
{
    wc_scrape_t *self = (wc_scrape_t *) calloc (1, sizeof *self);
    snprintf (why, why_size, "out of memory");
    if (!self || !(self->metrics = wc_metrics_new ()))
        goto error;
    wc_metrics_t *m = self->metrics;
    if (wc_metrics_family (m, "walcast_broker_nodes", WC_METRIC_GAUGE,
                           "Nodes in the directory, by region and state (up, down).",
                           s_node_labels, NULL, 0)
    ||  wc_metrics_family (m, "walcast_broker_failovers_total", WC_METRIC_COUNTER,
                           "Failovers: a silent primary replaced.", NULL, NULL, 0)
    ||  wc_metrics_family (m, "walcast_broker_epoch", WC_METRIC_GAUGE,
                           "The cluster's epoch.", NULL, NULL, 0)
    ||  wc_metrics_family (m, "walcast_broker_topology_version", WC_METRIC_GAUGE,
                           "The directory's version (it goes up at every change).",
                           NULL, NULL, 0)
    ||  wc_metrics_family (m, "walcast_broker_registrations_refused_total",
                           WC_METRIC_COUNTER, "REGISTERs and NODE_HEARTBEATs refused by the admission rules (refusals to a CURVE key: walcast_broker_refused_requests_total).",
                           NULL, NULL, 0)
    ||  wc_metrics_family (m, "walcast_broker_refused_requests_total", WC_METRIC_COUNTER,
                           "Requests refused to the key they came from (CURVE), by "
                           "error code.", s_code, NULL, 0)
    ||  wc_metrics_family (m, "walcast_broker_refused_connections_total",
                           WC_METRIC_COUNTER, "Connections refused at the CURVE "
                           "handshake (no keys, or a key not trusted).", NULL, NULL, 0)
    ||  wc_metrics_family (m, "walcast_broker_handshakes_dropped_total",
                           WC_METRIC_COUNTER, "CURVE handshakes that failed because the "
                           "connection closed or timed out before they completed (peers "
                           "that went away or gave up: not refusals).", NULL, NULL, 0)
    ||  wc_metrics_family (m, "walcast_broker_bad_messages_total", WC_METRIC_COUNTER,
                           "Malformed or unexpected messages, dropped or refused.",
                           NULL, NULL, 0))
        goto error;
    self->httpd = wc_httpd_new ("metrics", bind, port, why, why_size);
    if (!self->httpd)
        goto error;
    return self;

error:
    wc_scrape_destroy (&self);
    return NULL;
}

void
wc_scrape_destroy (wc_scrape_t **self_p)
{
    wc_scrape_t *self = *self_p;
    if (!self)
        return;
    wc_httpd_destroy (&self->httpd);
    wc_metrics_destroy (&self->metrics);
    free (self);
    *self_p = NULL;
}

/*  The nodes of dir up and down, per region. */
static void
s_count_nodes (wc_scrape_t *self, wc_directory_t *dir, int64_t now_ms)
{
    wc_metrics_clear (self->metrics, "walcast_broker_nodes");
    for (size_t i = 0; i < wc_directory_size (dir); i++) {
        wc_node_info_t info;
        if (wc_directory_get (dir, i, now_ms, &info) != 0)
            continue;
        char region [WC_MAX_ID + 1];
        wc_bytes_printable (region, sizeof region, &info.region);
        const char *const up [] = { region, "up" };
        const char *const down [] = { region, "down" };
        wc_metric_t *series_up = wc_metrics_series (self->metrics, "walcast_broker_nodes", up);
        wc_metric_t *series_down = wc_metrics_series (self->metrics, "walcast_broker_nodes",
                                                      down);
        wc_metric_add (info.up ? series_up : series_down, 1);
    }
}

int
wc_scrape_tick (wc_scrape_t *self, wc_directory_t *dir, const wc_scrape_counts_t *counts,
                int64_t now_ms)
{
    if (now_ms < self->next_ms)
        return (int) (self->next_ms - now_ms);
    self->next_ms = now_ms + S_EVERY_MS;
    wc_metrics_t *m = self->metrics;
    s_count_nodes (self, dir, now_ms);
    wc_metric_set (wc_metrics_series (m, "walcast_broker_failovers_total", NULL),
                   (double) counts->failovers);
    wc_metric_set (wc_metrics_series (m, "walcast_broker_epoch", NULL),
                   (double) counts->epoch);
    wc_metric_set (wc_metrics_series (m, "walcast_broker_topology_version", NULL),
                   (double) counts->version);
    wc_metric_set (wc_metrics_series (m, "walcast_broker_registrations_refused_total",
                                      NULL), (double) counts->refused);
    wc_metric_set (wc_metrics_series (m, "walcast_broker_bad_messages_total", NULL),
                   (double) counts->bad_messages);
    const char *const eperm [] = { "EPERM" }, *const eproto [] = { "EPROTO" };
    wc_metric_set (wc_metrics_series (m, "walcast_broker_refused_requests_total", eperm),
                   (double) counts->refused_eperm);
    wc_metric_set (wc_metrics_series (m, "walcast_broker_refused_requests_total", eproto),
                   (double) counts->refused_eproto);
    wc_metric_set (wc_metrics_series (m, "walcast_broker_refused_connections_total",
                                      NULL), (double) counts->refused_connections);
    wc_metric_set (wc_metrics_series (m, "walcast_broker_handshakes_dropped_total",
                                      NULL), (double) counts->dropped_handshakes);
    char *text = NULL;
    size_t len = 0;
    if (wc_metrics_render (m, &text, &len) != 0
    ||  wc_httpd_publish (self->httpd, "/metrics", WC_METRICS_CONTENT_TYPE, text, len) != 0)
        wc_log_warn ("metrics: out of memory; /metrics shows the last text");
    free (text);
    return S_EVERY_MS;
}
