/*  statuspage.c - the broker's status page (see statuspage.h).

    Publishing is the whole job: the HTML once at start, the JSON on every
    tick that has something new (for changes, at most every S_CHANGE_MS:
    the document of a large cluster weighs megabytes). The JSON is written from a snapshot of
    the directory's nodes sorted by region, then id (one qsort of at most
    WC_MAX_NODES records a second), so each region is one run of nodes.
    Everything that came from the network (ids, regions, addresses) goes
    through json.c's escaping; the page itself only ever puts text into
    the document as text (textContent), never as markup.
*/
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "history.h"
#include "httpd.h"
#include "json.h"
#include "log.h"
#include "statuspage.h"
#include "walcast.h"

#define S_SAMPLE_MS  1000             /* one lag sample and one publish a second */
#define S_CHANGE_MS  100              /* publishes for changes: at most this often */

/*  The page, from statuspage.html (built by embed.cmake). */
extern const char   wc_statuspage_html [];
extern const size_t wc_statuspage_html_len;

struct wc_statuspage {
    wc_httpd_t     *httpd;            /* serves what we publish */
    wc_history_t   *history;          /* lag samples, changes of primary */
    wc_json_t       json;             /* scratch: the document being written */
    wc_node_info_t *nodes;            /* scratch: WC_MAX_NODES, sorted by region */
    int64_t         next_sample_ms;   /* monotonic; 0: sample at the next tick */
    int64_t         published_ms;     /* monotonic time of the last publish */
    uint64_t        version;          /* directory version last published */
    bool            changed;          /* an event since the last publish */
    bool            published;        /* a JSON went out at all */
};

wc_statuspage_t *
wc_statuspage_new (const char *bind, int port, char *why, size_t why_size)
{
    wc_statuspage_t *self = (wc_statuspage_t *) calloc (1, sizeof *self);
    snprintf (why, why_size, "out of memory");
    if (!self)
        return NULL;
    wc_json_init (&self->json);
    self->history = wc_history_new ();
    self->nodes = (wc_node_info_t *) calloc (WC_MAX_NODES, sizeof (wc_node_info_t));
    if (!self->history || !self->nodes)
        goto error;
    self->httpd = wc_httpd_new ("status page", bind, port, why, why_size);
    if (!self->httpd)
        goto error;
    if (wc_httpd_publish (self->httpd, "/", "text/html; charset=utf-8",
                          wc_statuspage_html, wc_statuspage_html_len) != 0) {
        snprintf (why, why_size, "out of memory");
        goto error;
    }
    wc_log_info ("status page on http://%s:%d/ (JSON at /api/topology)", bind, port);
    return self;

error:
    wc_statuspage_destroy (&self);
    return NULL;
}

void
wc_statuspage_destroy (wc_statuspage_t **self_p)
{
    wc_statuspage_t *self = *self_p;
    if (!self)
        return;
    wc_httpd_destroy (&self->httpd);
    wc_history_destroy (&self->history);
    wc_json_fini (&self->json);
    free (self->nodes);
    free (self);
    *self_p = NULL;
}

void
wc_statuspage_event (void *arg, const wc_failover_event_t *event)
{
    wc_statuspage_t *self = (wc_statuspage_t *) arg;
    wc_history_event (self->history, event, (int64_t) wc_clock_wall_ms ());
    self->changed = true;
}

/*  Compare byte strings like strcmp. */
static int
s_bytes_cmp (const wc_bytes_t *a, const wc_bytes_t *b)
{
    size_t len = a->len < b->len ? a->len : b->len;
    int cmp = len ? memcmp (a->ptr, b->ptr, len) : 0;
    if (cmp)
        return cmp;
    return a->len < b->len ? -1 : a->len > b->len;
}

/*  qsort: by region, then by id. */
static int
s_by_region (const void *a, const void *b)
{
    const wc_node_info_t *x = (const wc_node_info_t *) a;
    const wc_node_info_t *y = (const wc_node_info_t *) b;
    int cmp = s_bytes_cmp (&x->region, &y->region);
    return cmp ? cmp : s_bytes_cmp (&x->id, &y->id);
}

/*  One node's object. */
static void
s_json_node (wc_statuspage_t *self, const wc_node_info_t *node,
             const wc_state_t *state)
{
    wc_json_t *json = &self->json;
    char id [WC_MAX_ID + 1];
    size_t len = node->id.len < WC_MAX_ID ? node->id.len : WC_MAX_ID;
    memcpy (id, node->id.ptr, len);
    id [len] = '\0';
    wc_json_object (json);
    wc_json_key (json, "id");
    wc_json_str (json, node->id.ptr, node->id.len);
    wc_json_key (json, "addr");
    wc_json_str (json, node->addr.ptr, node->addr.len);
    wc_json_key (json, "role");
    wc_json_cstr (json, node->role == WC_ROLE_PRIMARY ? "primary" : "replica");
    wc_json_key (json, "cluster_primary");
    wc_json_bool (json, strcmp (id, state->primary) == 0);
    wc_json_key (json, "follows");
    wc_json_str (json, node->primary.ptr, node->primary.len);
    wc_json_key (json, "epoch");
    wc_json_u64 (json, node->epoch);
    wc_json_key (json, "applied_seq");
    wc_json_u64 (json, node->applied_seq);
    wc_json_key (json, "state");
    wc_json_cstr (json, node->up ? "up" : "down");
    wc_json_key (json, "silent_ms");
    wc_json_u64 (json, node->silent_ms);
    wc_json_key (json, "candidate");
    wc_json_bool (json, (node->flags & WC_NODE_CANDIDATE) != 0);
    wc_json_key (json, "diverged");
    wc_json_bool (json, (node->flags & WC_NODE_DIVERGED) != 0);
    wc_json_key (json, "stalled");
    wc_json_bool (json, (node->flags & WC_NODE_STALLED) != 0);
    wc_json_key (json, "lag");
    wc_json_u64 (json, node->lag);
    wc_json_key (json, "lag_ms");
    wc_json_u64 (json, node->lag_ms);
    wc_json_key (json, "lag_history");
    wc_history_json_node (self->history, id, json);
    wc_json_object_end (json);
}

/*  "regions": every region, by name, with its nodes, by id. */
static void
s_json_regions (wc_statuspage_t *self, wc_directory_t *dir, const wc_state_t *state,
                int64_t now_ms)
{
    size_t count = 0, size = wc_directory_size (dir);
    for (size_t i = 0; i < size && count < WC_MAX_NODES; i++)
        if (wc_directory_get (dir, i, now_ms, &self->nodes [count]) == 0)
            count++;
    qsort (self->nodes, count, sizeof self->nodes [0], s_by_region);
    wc_json_t *json = &self->json;
    wc_json_key (json, "regions");
    wc_json_array (json);
    for (size_t i = 0; i < count; i++) {
        const wc_node_info_t *node = &self->nodes [i];
        if (i == 0 || s_bytes_cmp (&node->region, &self->nodes [i - 1].region) != 0) {
            if (i > 0) {
                wc_json_array_end (json);
                wc_json_object_end (json);
            }
            wc_json_object (json);
            wc_json_key (json, "name");
            wc_json_str (json, node->region.ptr, node->region.len);
            wc_json_key (json, "nodes");
            wc_json_array (json);
        }
        s_json_node (self, node, state);
    }
    if (count) {
        wc_json_array_end (json);
        wc_json_object_end (json);
    }
    wc_json_array_end (json);
}

/*  Write the whole document and publish it at /api/topology. */
static void
s_publish (wc_statuspage_t *self, wc_directory_t *dir, const wc_state_t *state,
           int64_t now_ms)
{
    wc_json_t *json = &self->json;
    wc_json_reset (json);
    wc_json_object (json);
    wc_json_key (json, "version");
    wc_json_u64 (json, wc_directory_version (dir));
    wc_json_key (json, "time_ms");
    wc_json_i64 (json, (int64_t) wc_clock_wall_ms ());
    wc_json_key (json, "epoch");
    wc_json_u64 (json, state->epoch);
    wc_json_key (json, "primary");
    wc_json_cstr (json, state->primary);
    wc_json_key (json, "primary_addr");
    wc_json_cstr (json, state->primary_addr);
    wc_json_key (json, "nodes_up");
    wc_json_u64 (json, wc_directory_up_count (dir));
    wc_json_key (json, "nodes_down");
    wc_json_u64 (json, wc_directory_size (dir) - wc_directory_up_count (dir));
    wc_json_key (json, "sample_ms");
    wc_json_u64 (json, S_SAMPLE_MS);
    wc_json_key (json, "sample_slots");
    wc_json_u64 (json, WC_HISTORY_SAMPLES);
    wc_json_key (json, "samples_end_ms");
    wc_json_i64 (json, wc_history_last_ms (self->history));
    s_json_regions (self, dir, state, now_ms);
    wc_json_key (json, "events");
    wc_history_json_events (self->history, json);
    wc_json_object_end (json);
    if (wc_json_failed (json)
    ||  wc_httpd_publish (self->httpd, "/api/topology", "application/json",
                          json->data, json->size) != 0) {
        wc_log_warn ("cannot publish the status page's JSON: out of memory; the page "
                     "shows the last one until the next second");
        return;
    }
    self->version = wc_directory_version (dir);
    self->published_ms = now_ms;
    self->changed = false;
    self->published = true;
}

int64_t
wc_statuspage_tick (wc_statuspage_t *self, wc_directory_t *dir,
                    const wc_state_t *state, int64_t now_ms)
{
    if (now_ms >= self->next_sample_ms) {
        if (wc_history_sample (self->history, dir, now_ms,
                               (int64_t) wc_clock_wall_ms ()) != 0)
            wc_log_warn ("status page: out of memory: a node's lag history is "
                         "missing a sample");
        self->next_sample_ms = now_ms + S_SAMPLE_MS;
        s_publish (self, dir, state, now_ms);
        return self->next_sample_ms;
    }
    bool changed = !self->published || self->changed
                || wc_directory_version (dir) != self->version;
    if (!changed)
        return self->next_sample_ms;
    /*  A flapping cluster moves the version on every turn: a document of
        up to a few MB is written at most every S_CHANGE_MS for it. */
    int64_t due = self->published_ms + S_CHANGE_MS;
    if (!self->published || now_ms >= due) {
        s_publish (self, dir, state, now_ms);
        return self->next_sample_ms;
    }
    return due < self->next_sample_ms ? due : self->next_sample_ms;
}
