/*  directory.c - the broker's directory of nodes (see directory.h).

    Each node is one malloc'd record holding copies of everything the node
    last said about itself, in fixed arrays sized by the protocol limits,
    so a record never points into a message buffer and never grows. The
    records are kept in an array of pointers sorted by id: lookups are a
    binary search, and a TOPOLOGY lists nodes in id order. The array has
    room for WC_MAX_NODES pointers from the start; inserting moves
    pointers, not records.

    The version moves at most once per update or tick, however many fields
    changed together: one event, one new topology. Liveness is only ever
    judged against the times the caller passes in, so tests can run the
    clock by hand.

    Several nodes may hold the primary role at once in the directory (it
    lists what nodes say); which one is the cluster's primary is
    failover.c's decision, handed in by wc_directory_set_primary and
    applied only when a TOPOLOGY is encoded.

    Ids, regions and addresses come from the network. They are stored as
    byte strings with a length (they may hold any byte) and are made
    printable before they reach a log line.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "directory.h"
#include "log.h"
#include "nodeinfo.h"

/*  One node, as it last described itself. */
typedef struct {
    uint8_t  id [WC_MAX_ID];          /* 1..WC_MAX_ID bytes */
    uint32_t id_len;
    uint8_t  region [WC_MAX_ID];      /* 0..WC_MAX_ID bytes */
    uint32_t region_len;
    uint8_t  addr [WC_MAX_ADDR];      /* HOST:PORT for clients, 1..WC_MAX_ADDR */
    uint32_t addr_len;
    uint8_t  primary [WC_MAX_ADDR];   /* who it follows; empty on a primary */
    uint32_t primary_len;
    uint8_t  role;                    /* wc_role_t */
    uint64_t epoch;                   /* progress, as last reported */
    uint64_t applied_seq;
    uint64_t lag;
    uint64_t lag_ms;
    uint64_t flags;                   /* WC_NODE_*, as last reported */
    uint64_t handover_seq;            /* as last reported */
    uint8_t  curve_key [WC_CURVE_KEY_LEN];  /* its public key (Z85), or empty */
    uint32_t curve_key_len;
    bool     up;                      /* heard within the timeout */
    int64_t  heard_ms;                /* monotonic time it was last heard */
    int64_t  up_since_ms;             /* when it was last heard after being down
                                         (or unknown) */
} s_node_t;

struct wc_directory {
    s_node_t **nodes;                 /* WC_MAX_NODES slots, [0..size) sorted by id */
    size_t     size;                  /* nodes known, up or down */
    uint64_t   version;               /* +1 at every change */
    char       primary [WC_MAX_ID + 1];   /* the cluster's primary; "" if none */
};

/*  Room for a printable copy of the longest string we log. */
#define S_PRINTABLE  (WC_MAX_ADDR + 1)

wc_directory_t *
wc_directory_new (void)
{
    wc_directory_t *self = (wc_directory_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->nodes = (s_node_t **) calloc (WC_MAX_NODES, sizeof (s_node_t *));
    if (!self->nodes) {
        free (self);
        return NULL;
    }
    return self;
}

void
wc_directory_destroy (wc_directory_t **self_p)
{
    wc_directory_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++)
        free (self->nodes [i]);
    free (self->nodes);
    free (self);
    *self_p = NULL;
}

/* --- helpers ------------------------------------------------------------- */

/*  A copy of len bytes of src fit for a log line: control bytes become
    '?', an empty string becomes "-". */
static const char *
s_printable (char *dst, const uint8_t *src, uint32_t len)
{
    if (len == 0)
        return "-";
    if (len >= S_PRINTABLE)
        len = S_PRINTABLE - 1;
    for (uint32_t i = 0; i < len; i++)
        dst [i] = (src [i] < 0x20 || src [i] == 0x7f) ? '?' : (char) src [i];
    dst [len] = '\0';
    return dst;
}

/*  A role as logs name it: a primary that waits for its PROMOTE (the
    CANDIDATE flag) is a candidate, not a primary. */
static const char *
s_role_name (uint8_t role, uint64_t flags)
{
    if (role == WC_ROLE_PRIMARY && (flags & WC_NODE_CANDIDATE))
        return "candidate";
    return role == WC_ROLE_PRIMARY ? "primary"
         : role == WC_ROLE_REPLICA ? "replica" : "unknown";
}

/*  The names of the WC_NODE_* flags set in flags ("candidate,diverged"),
    "none" when there are none. */
static const char *
s_flag_names (char *buf, size_t size, uint64_t flags)
{
    snprintf (buf, size, "%s%s%s%s%s",
              flags & WC_NODE_CANDIDATE ? ",candidate" : "",
              flags & WC_NODE_DIVERGED ? ",diverged" : "",
              flags & WC_NODE_STALLED ? ",stalled" : "",
              flags & WC_NODE_HANDED_OVER ? ",handed-over" : "",
              flags & ~(uint64_t) (WC_NODE_CANDIDATE | WC_NODE_DIVERGED
                                   | WC_NODE_STALLED | WC_NODE_HANDED_OVER)
                  ? ",unknown" : "");
    if (buf [0] == '\0')
        snprintf (buf, size, ",none");
    return buf + 1;
}

static bool
s_same (const uint8_t *stored, uint32_t stored_len, const wc_bytes_t *bytes)
{
    return stored_len == bytes->len
        && (bytes->len == 0 || memcmp (stored, bytes->ptr, bytes->len) == 0);
}

/*  Copy bytes into a stored field (the caller checked the length). */
static void
s_set (uint8_t *stored, uint32_t *stored_len, const wc_bytes_t *bytes)
{
    if (bytes->len)
        memcpy (stored, bytes->ptr, bytes->len);
    *stored_len = bytes->len;
}

/*  Order of ids: bytewise, a prefix first. */
static int
s_compare_id (const s_node_t *node, const wc_bytes_t *id)
{
    uint32_t n = node->id_len < id->len ? node->id_len : id->len;
    int cmp = memcmp (node->id, id->ptr, n);
    if (cmp)
        return cmp;
    return node->id_len < id->len ? -1 : node->id_len > id->len ? 1 : 0;
}

/*  Binary search for id. Returns true when found at *index; otherwise
    *index is where it would be inserted. */
static bool
s_find (wc_directory_t *self, const wc_bytes_t *id, size_t *index)
{
    size_t low = 0, high = self->size;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int cmp = s_compare_id (self->nodes [mid], id);
        if (cmp == 0) {
            *index = mid;
            return true;
        }
        if (cmp < 0)
            low = mid + 1;
        else
            high = mid;
    }
    *index = low;
    return false;
}

static int64_t
s_silent_ms (const s_node_t *node, int64_t now_ms)
{
    return now_ms > node->heard_ms ? now_ms - node->heard_ms : 0;
}

/*  When the directory is full, forget the node that has been silent the
    longest among those that are down, to make room for new_id. Returns
    false when every node is up. */
static bool
s_evict (wc_directory_t *self, const wc_bytes_t *new_id, int64_t now_ms)
{
    size_t victim = self->size;
    for (size_t i = 0; i < self->size; i++) {
        const s_node_t *node = self->nodes [i];
        if (!node->up && (victim == self->size
                          || node->heard_ms < self->nodes [victim]->heard_ms))
            victim = i;
    }
    if (victim == self->size)
        return false;
    s_node_t *node = self->nodes [victim];
    char id [S_PRINTABLE], other [S_PRINTABLE];
    wc_log_warn ("directory full (%u nodes): forgetting node %s (down, silent "
                 "%lld ms) to make room for node %s", WC_MAX_NODES,
                 s_printable (id, node->id, node->id_len),
                 (long long) s_silent_ms (node, now_ms),
                 s_printable (other, new_id->ptr, new_id->len));
    free (node);
    memmove (&self->nodes [victim], &self->nodes [victim + 1],
             (self->size - victim - 1) * sizeof (s_node_t *));
    self->size--;
    return true;
}

/*  Log what changed between node (as stored) and info (as just said), and
    tell whether any of it moves the version. */
static bool
s_log_changes (const s_node_t *node, const wc_node_info_t *info, int64_t now_ms)
{
    char id [S_PRINTABLE], now [S_PRINTABLE], was [S_PRINTABLE];
    s_printable (id, node->id, node->id_len);
    bool changed = false;
    if (!node->up) {
        wc_log_info ("node %s up again (silent %lld ms; role %s, addr %s)", id,
                     (long long) s_silent_ms (node, now_ms),
                     s_role_name (info->role, info->flags),
                     s_printable (now, info->addr.ptr, info->addr.len));
        changed = true;
    }
    if (node->role != info->role) {
        wc_log_info ("node %s is now %s (was %s; epoch %llu)", id,
                     s_role_name (info->role, info->flags),
                     s_role_name (node->role, node->flags),
                     (unsigned long long) info->epoch);
        changed = true;
    }
    if (!s_same (node->addr, node->addr_len, &info->addr)) {
        wc_log_info ("node %s moved to %s (was %s)", id,
                     s_printable (now, info->addr.ptr, info->addr.len),
                     s_printable (was, node->addr, node->addr_len));
        changed = true;
    }
    if (!s_same (node->region, node->region_len, &info->region)) {
        wc_log_info ("node %s moved to region %s (was %s)", id,
                     s_printable (now, info->region.ptr, info->region.len),
                     s_printable (was, node->region, node->region_len));
        changed = true;
    }
    if (!s_same (node->primary, node->primary_len, &info->primary)) {
        wc_log_info ("node %s now follows %s (was %s)", id,
                     s_printable (now, info->primary.ptr, info->primary.len),
                     s_printable (was, node->primary, node->primary_len));
        changed = true;
    }
    if (!s_same (node->curve_key, node->curve_key_len, &info->curve_key)) {
        wc_log_info ("node %s now has CURVE key %s (was %s)", id,
                     info->curve_key.len ? s_printable (now, info->curve_key.ptr,
                                                        info->curve_key.len) : "none",
                     node->curve_key_len ? s_printable (was, node->curve_key,
                                                        node->curve_key_len) : "none");
        changed = true;
    }
    if (node->flags != info->flags) {
        wc_log_info ("node %s now flags %s (was %s; epoch %llu, seq %llu)", id,
                     s_flag_names (now, sizeof now, info->flags),
                     s_flag_names (was, sizeof was, node->flags),
                     (unsigned long long) info->epoch,
                     (unsigned long long) info->applied_seq);
        changed = true;
    }
    return changed;
}

/* --- the directory ------------------------------------------------------- */

/*  Make room for a new node at index (where s_find put it) and log it,
    saying how it came (registered, or restored from the broker's disk).
    Returns 0 with *node_p the new, empty record (id set), or a refusal. */
static int
s_insert (wc_directory_t *self, const wc_node_info_t *info, size_t index,
          int64_t now_ms, const char *how, wc_refusal_t *why, s_node_t **node_p)
{
    s_node_t *node = (s_node_t *) calloc (1, sizeof *node);
    if (!node) {
        snprintf (why->text, sizeof why->text, "the broker is out of memory");
        return WALCAST_ENOMEM;
    }
    if (self->size == WC_MAX_NODES) {
        if (!s_evict (self, &info->id, now_ms)) {
            free (node);
            snprintf (why->text, sizeof why->text, "directory full: %u nodes, all "
                      "up; a new node gets in when one goes down", WC_MAX_NODES);
            return WALCAST_EBUSY;
        }
        s_find (self, &info->id, &index);
    }
    memmove (&self->nodes [index + 1], &self->nodes [index],
             (self->size - index) * sizeof (s_node_t *));
    self->nodes [index] = node;
    self->size++;
    s_set (node->id, &node->id_len, &info->id);
    char id [S_PRINTABLE], region [S_PRINTABLE], addr [S_PRINTABLE];
    wc_log_info ("node %s %s (region %s, role %s, addr %s)",
                 s_printable (id, info->id.ptr, info->id.len), how,
                 s_printable (region, info->region.ptr, info->region.len),
                 s_role_name (info->role, info->flags),
                 s_printable (addr, info->addr.ptr, info->addr.len));
    *node_p = node;
    return 0;
}

/*  Keep a copy of what info says of the node. */
static void
s_keep (s_node_t *node, const wc_node_info_t *info)
{
    s_set (node->region, &node->region_len, &info->region);
    s_set (node->addr, &node->addr_len, &info->addr);
    s_set (node->primary, &node->primary_len, &info->primary);
    s_set (node->curve_key, &node->curve_key_len, &info->curve_key);
    node->role = info->role;
    node->epoch = info->epoch;
    node->applied_seq = info->applied_seq;
    node->lag = info->lag;
    node->lag_ms = info->lag_ms;
    node->flags = info->flags;
    node->handover_seq = info->handover_seq;
}

/*  Clear *why and check info by the admission rules (nodeinfo.c): 0, or
    the refusal's code with its text in why. */
static int
s_admit (const wc_node_info_t *info, wc_refusal_t *why)
{
    why->text [0] = why->detail [0] = '\0';
    return wc_nodeinfo_check (info, why->text, sizeof why->text);
}

int
wc_directory_update (wc_directory_t *self, const wc_node_info_t *info,
                     int64_t now_ms, wc_refusal_t *why)
{
    wc_refusal_t unused;
    if (!why)
        why = &unused;
    int rc = s_admit (info, why);
    if (rc)
        return rc;
    size_t index;
    s_node_t *node;
    bool changed = true;
    if (s_find (self, &info->id, &index)) {
        node = self->nodes [index];
        if (node->up && !s_same (node->addr, node->addr_len, &info->addr)) {
            //  Two live processes with one id: the one we know keeps it
            char id [S_PRINTABLE], addr [S_PRINTABLE];
            s_printable (id, node->id, node->id_len);
            s_printable (addr, node->addr, node->addr_len);
            snprintf (why->text, sizeof why->text, "node id %s is in use by a live "
                      "node at %s (heard %lld ms ago)", id, addr,
                      (long long) s_silent_ms (node, now_ms));
            snprintf (why->detail, sizeof why->detail, "%s", addr);
            return WALCAST_ECONFLICT;
        }
        changed = s_log_changes (node, info, now_ms);
    }
    else
    if ((rc = s_insert (self, info, index, now_ms, "registered", why, &node)))
        return rc;
    s_keep (node, info);
    if (!node->up)
        node->up_since_ms = now_ms;
    node->up = true;
    node->heard_ms = now_ms;
    if (changed)
        self->version++;
    return changed ? 1 : 0;
}

int
wc_directory_restore (wc_directory_t *self, const wc_node_info_t *info,
                      int64_t now_ms, wc_refusal_t *why)
{
    wc_refusal_t unused;
    if (!why)
        why = &unused;
    int rc = s_admit (info, why);
    if (rc)
        return rc;
    size_t index;
    s_node_t *node;
    if (s_find (self, &info->id, &index)) {
        snprintf (why->text, sizeof why->text, "id is listed already");
        return WALCAST_ECONFLICT;
    }
    if ((rc = s_insert (self, info, index, now_ms, "listed from before the broker "
                        "restarted, down until it beats", why, &node)))
        return rc;
    s_keep (node, info);
    node->up = false;
    node->heard_ms = now_ms;
    self->version++;
    return 0;
}


int
wc_directory_tick (wc_directory_t *self, int64_t now_ms, int64_t timeout_ms)
{
    bool changed = false;
    for (size_t i = 0; i < self->size; i++) {
        s_node_t *node = self->nodes [i];
        int64_t silent = s_silent_ms (node, now_ms);
        if (node->up && silent >= timeout_ms) {
            node->up = false;
            char id [S_PRINTABLE];
            wc_log_warn ("node %s down (silent %lld ms)",
                         s_printable (id, node->id, node->id_len),
                         (long long) silent);
            changed = true;
        }
    }
    if (changed)
        self->version++;
    return changed ? 1 : 0;
}

uint64_t
wc_directory_version (wc_directory_t *self)
{
    return self->version;
}

size_t
wc_directory_size (wc_directory_t *self)
{
    return self->size;
}

size_t
wc_directory_up_count (wc_directory_t *self)
{
    size_t count = 0;
    for (size_t i = 0; i < self->size; i++)
        if (self->nodes [i]->up)
            count++;
    return count;
}

int
wc_directory_get (wc_directory_t *self, size_t index, int64_t now_ms,
                  wc_node_info_t *info)
{
    if (index >= self->size)
        return WALCAST_EINVAL;
    const s_node_t *node = self->nodes [index];
    memset (info, 0, sizeof *info);
    info->id.ptr = node->id;
    info->id.len = node->id_len;
    info->region.ptr = node->region;
    info->region.len = node->region_len;
    info->role = node->role;
    info->epoch = node->epoch;
    info->applied_seq = node->applied_seq;
    info->addr.ptr = node->addr;
    info->addr.len = node->addr_len;
    info->primary.ptr = node->primary;
    info->primary.len = node->primary_len;
    info->lag = node->lag;
    info->lag_ms = node->lag_ms;
    info->flags = node->flags;
    info->handover_seq = node->handover_seq;
    info->curve_key.ptr = node->curve_key;
    info->curve_key.len = node->curve_key_len;
    info->up = node->up;
    info->silent_ms = (uint64_t) s_silent_ms (node, now_ms);
    return 0;
}

void
wc_directory_set_primary (wc_directory_t *self, const char *id)
{
    if (!id)
        id = "";
    if (strcmp (self->primary, id) == 0)
        return;
    snprintf (self->primary, sizeof self->primary, "%s", id);
    self->version++;
}

int64_t
wc_directory_up_for (wc_directory_t *self, const char *id, int64_t now_ms)
{
    wc_bytes_t want = { (const uint8_t *) id, (uint32_t) strlen (id) };
    size_t index;
    if (want.len == 0 || want.len > WC_MAX_ID || !s_find (self, &want, &index)
    ||  !self->nodes [index]->up)
        return -1;
    int64_t since = self->nodes [index]->up_since_ms;
    return now_ms > since ? now_ms - since : 0;
}

void
wc_directory_forgive (wc_directory_t *self, int64_t gap_ms, int64_t now_ms)
{
    for (size_t i = 0; i < self->size; i++) {
        s_node_t *node = self->nodes [i];
        node->heard_ms += gap_ms;
        if (node->heard_ms > now_ms)
            node->heard_ms = now_ms;
    }
}

int
wc_directory_find (wc_directory_t *self, const char *id, int64_t now_ms,
                   wc_node_info_t *info)
{
    wc_bytes_t want = { (const uint8_t *) id, (uint32_t) strlen (id) };
    size_t index;
    if (want.len == 0 || want.len > WC_MAX_ID || !s_find (self, &want, &index))
        return WALCAST_ENOTFOUND;
    return wc_directory_get (self, index, now_ms, info);
}

int
wc_directory_forget (wc_directory_t *self, const char *id, int64_t now_ms)
{
    wc_bytes_t want = { (const uint8_t *) id, (uint32_t) strlen (id) };
    size_t index;
    if (want.len == 0 || want.len > WC_MAX_ID || !s_find (self, &want, &index))
        return WALCAST_ENOTFOUND;
    s_node_t *node = self->nodes [index];
    if (node->up)
        return WALCAST_ECONFLICT;
    char shown [S_PRINTABLE];
    wc_log_info ("node %s forgotten (down, silent %lld ms; an operator's FORGET)",
                 s_printable (shown, node->id, node->id_len),
                 (long long) s_silent_ms (node, now_ms));
    free (node);
    memmove (&self->nodes [index], &self->nodes [index + 1],
             (self->size - index - 1) * sizeof (s_node_t *));
    self->size--;
    self->version++;
    return 0;
}

int
wc_directory_find_addr (wc_directory_t *self, const void *addr, size_t len,
                        int64_t now_ms, wc_node_info_t *info)
{
    size_t found = self->size;
    for (size_t i = 0; i < self->size; i++) {
        const s_node_t *node = self->nodes [i];
        if (node->addr_len != len || memcmp (node->addr, addr, len) != 0)
            continue;
        if (found == self->size || (node->up && !self->nodes [found]->up))
            found = i;
    }
    if (found == self->size)
        return WALCAST_ENOTFOUND;
    return wc_directory_get (self, found, now_ms, info);
}

/*  True when node claims the primary role but cannot take writes: a
    candidate (not promoted, or not serving its promotion yet), or a node
    other than the one failover.c named the cluster's primary. Clients
    must not see it as usable. */
static bool
s_masked (wc_directory_t *self, const s_node_t *node)
{
    if (node->role != WC_ROLE_PRIMARY)
        return false;
    if (node->flags & WC_NODE_CANDIDATE)
        return true;
    return self->primary [0] != '\0'
        && (node->id_len != strlen (self->primary)
            || memcmp (node->id, self->primary, node->id_len) != 0);
}

int
wc_directory_encode_topology (wc_directory_t *self, uint64_t rid,
                              int64_t now_ms, msgpack_sbuffer *out)
{
    size_t start = out->size;
    int rc = wc_topology_encode_header (rid, self->version,
                                        (uint32_t) self->size, out);
    for (size_t i = 0; rc == 0 && i < self->size; i++) {
        wc_node_info_t info;
        wc_directory_get (self, i, now_ms, &info);
        if (s_masked (self, self->nodes [i]))
            info.up = false;
        rc = wc_node_info_encode (&info, out);
    }
    if (rc && out->size > start)
        out->size = start;
    return rc;
}
