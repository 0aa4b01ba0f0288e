/*  history.c - lag samples and recent changes of primary (see history.h).

    The records sit in an array of pointers sorted by id (a binary search
    finds one), WC_MAX_NODES slots allocated at the start, one malloc'd
    record per node. A sample moves one shared head forward and writes
    that slot in every node's ring; a node first seen gets a ring of gaps,
    so its history starts where it appeared. A record whose node the
    directory no longer holds is freed at the next sample, which keeps the
    records no more than the directory's nodes.

    Samples are 32-bit, saturated at WC_HISTORY_MAX_LAG; UINT32_MAX in
    lag_ms marks a gap.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include "history.h"
#include "walcast.h"

#define S_GAP  UINT32_MAX

typedef struct {
    uint32_t lag;                     /* entries behind its primary */
    uint32_t lag_ms;                  /* its staleness estimate; S_GAP: no sample */
} s_sample_t;

/*  One node's ring. */
typedef struct {
    char       id [WC_MAX_ID + 1];
    bool       seen;                  /* in the directory at this sample */
    s_sample_t samples [WC_HISTORY_SAMPLES];
} s_record_t;

/*  One change of primary, copied out of the failover event. */
typedef struct {
    int64_t  wall_ms;
    char     kind [16];
    char     from [WC_MAX_ID + 1];
    char     to [WC_MAX_ID + 1];
    char     addr [WC_MAX_ADDR + 1];
    uint64_t epoch;
    char     reason [160];
} s_event_t;

struct wc_history {
    s_record_t **records;             /* WC_MAX_NODES slots, [0..nrecords) by id */
    size_t       nrecords;
    int          head;                /* slot of the newest sample */
    int          count;               /* samples taken, at most WC_HISTORY_SAMPLES */
    int64_t      last_ms;             /* wall-clock time of the newest sample */
    s_event_t    events [WC_HISTORY_EVENTS];     /* a ring */
    int          nevents;             /* events kept */
    int          next_event;          /* slot the next event goes to */
};

wc_history_t *
wc_history_new (void)
{
    wc_history_t *self = (wc_history_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->records = (s_record_t **) calloc (WC_MAX_NODES, sizeof (s_record_t *));
    if (!self->records) {
        free (self);
        return NULL;
    }
    self->head = WC_HISTORY_SAMPLES - 1;
    return self;
}

void
wc_history_destroy (wc_history_t **self_p)
{
    wc_history_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nrecords; i++)
        free (self->records [i]);
    free (self->records);
    free (self);
    *self_p = NULL;
}

/*  The index of id's record, or -1 with where it would go in *at. */
static ssize_t
s_search (wc_history_t *self, const char *id, size_t *at)
{
    size_t low = 0, high = self->nrecords;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int cmp = strcmp (self->records [mid]->id, id);
        if (cmp == 0)
            return (ssize_t) mid;
        if (cmp < 0)
            low = mid + 1;
        else
            high = mid;
    }
    *at = low;
    return -1;
}

/*  id's record, made (all gaps) when new; NULL when out of memory or
    when every slot is taken. */
static s_record_t *
s_record (wc_history_t *self, const char *id)
{
    size_t at = 0;
    ssize_t found = s_search (self, id, &at);
    if (found >= 0)
        return self->records [found];
    if (self->nrecords >= WC_MAX_NODES)
        return NULL;
    s_record_t *record = (s_record_t *) malloc (sizeof *record);
    if (!record)
        return NULL;
    memset (record->samples, 0xff, sizeof record->samples);
    snprintf (record->id, sizeof record->id, "%s", id);
    memmove (&self->records [at + 1], &self->records [at],
             (self->nrecords - at) * sizeof (s_record_t *));
    self->records [at] = record;
    self->nrecords++;
    return record;
}

static uint32_t
s_saturate (uint64_t value)
{
    return value > WC_HISTORY_MAX_LAG ? WC_HISTORY_MAX_LAG : (uint32_t) value;
}

/*  Free the records of nodes that were not in the directory. */
static void
s_forget_unseen (wc_history_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->nrecords; i++) {
        if (self->records [i]->seen)
            self->records [kept++] = self->records [i];
        else
            free (self->records [i]);
    }
    self->nrecords = kept;
}

int
wc_history_sample (wc_history_t *self, wc_directory_t *dir, int64_t now_ms,
                   int64_t wall_ms)
{
    self->head = (self->head + 1) % WC_HISTORY_SAMPLES;
    if (self->count < WC_HISTORY_SAMPLES)
        self->count++;
    self->last_ms = wall_ms;
    for (size_t i = 0; i < self->nrecords; i++)
        self->records [i]->seen = false;
    int rc = 0;
    size_t size = wc_directory_size (dir);
    for (size_t i = 0; i < size; i++) {
        wc_node_info_t info;
        if (wc_directory_get (dir, i, now_ms, &info) != 0)
            continue;
        char id [WC_MAX_ID + 1];
        size_t len = info.id.len < WC_MAX_ID ? info.id.len : WC_MAX_ID;
        memcpy (id, info.id.ptr, len);
        id [len] = '\0';
        s_record_t *record = s_record (self, id);
        if (!record) {
            rc = WALCAST_ENOMEM;
            continue;
        }
        record->seen = true;
        s_sample_t *sample = &record->samples [self->head];
        sample->lag = info.up ? s_saturate (info.lag) : 0;
        sample->lag_ms = info.up ? s_saturate (info.lag_ms) : S_GAP;
    }
    s_forget_unseen (self);
    return rc;
}

void
wc_history_event (wc_history_t *self, const wc_failover_event_t *event, int64_t wall_ms)
{
    s_event_t *kept = &self->events [self->next_event];
    kept->wall_ms = wall_ms;
    snprintf (kept->kind, sizeof kept->kind, "%s", event->kind);
    snprintf (kept->from, sizeof kept->from, "%s", event->from);
    snprintf (kept->to, sizeof kept->to, "%s", event->to);
    snprintf (kept->addr, sizeof kept->addr, "%s", event->addr);
    snprintf (kept->reason, sizeof kept->reason, "%s", event->reason);
    kept->epoch = event->epoch;
    self->next_event = (self->next_event + 1) % WC_HISTORY_EVENTS;
    if (self->nevents < WC_HISTORY_EVENTS)
        self->nevents++;
}

int
wc_history_count (wc_history_t *self)
{
    return self->count;
}

int64_t
wc_history_last_ms (wc_history_t *self)
{
    return self->last_ms;
}

void
wc_history_json_node (wc_history_t *self, const char *id, wc_json_t *json)
{
    size_t at = 0;
    ssize_t found = s_search (self, id, &at);
    const s_record_t *record = found >= 0 ? self->records [found] : NULL;
    wc_json_array (json);
    for (int k = 0; k < self->count; k++) {
        int slot = (self->head - self->count + 1 + k + WC_HISTORY_SAMPLES)
                 % WC_HISTORY_SAMPLES;
        const s_sample_t *sample = record ? &record->samples [slot] : NULL;
        if (!sample || sample->lag_ms == S_GAP) {
            wc_json_null (json);
            continue;
        }
        wc_json_array (json);
        wc_json_u64 (json, sample->lag);
        wc_json_u64 (json, sample->lag_ms);
        wc_json_array_end (json);
    }
    wc_json_array_end (json);
}

void
wc_history_json_events (wc_history_t *self, wc_json_t *json)
{
    wc_json_array (json);
    for (int k = 1; k <= self->nevents; k++) {
        const s_event_t *event = &self->events [(self->next_event - k
                                                 + WC_HISTORY_EVENTS) % WC_HISTORY_EVENTS];
        wc_json_object (json);
        wc_json_key (json, "time_ms");
        wc_json_i64 (json, event->wall_ms);
        wc_json_key (json, "kind");
        wc_json_cstr (json, event->kind);
        wc_json_key (json, "from");
        wc_json_cstr (json, event->from);
        wc_json_key (json, "to");
        wc_json_cstr (json, event->to);
        wc_json_key (json, "addr");
        wc_json_cstr (json, event->addr);
        wc_json_key (json, "epoch");
        wc_json_u64 (json, event->epoch);
        wc_json_key (json, "reason");
        wc_json_cstr (json, event->reason);
        wc_json_object_end (json);
    }
    wc_json_array_end (json);
}
