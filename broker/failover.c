/*  failover.c - the cluster's primary and epoch (see failover.h).

    The module holds the saved state (epoch, primary id and address), the
    largest epoch any node has reported ("heard"), and at most one
    switchover. Everything else it needs it reads from the directory:
    who is up, what each node last said.

    On each beat the node is one of four kinds, and each kind has one rule
    (docs/PROTOCOL.md, "Failover", says the same for implementers of
    nodes):
    - the primary: it must serve (role 1, no CANDIDATE flag) at the
      state's epoch, else it gets PROMOTE. When that epoch is no longer
      fresh (some node reported it: the primary restarted as a candidate
      with it in its history) a new one is saved first: "again at epoch N";
    - another node claiming the primary role: FOLLOW the primary, unless
      it serves at an epoch newer than anything known (a primary the
      broker forgot: it becomes the primary);
    - a replica: left alone when it follows the primary or a relay that is
      up and healthy (a cascade), else FOLLOW the primary; a replica that
      follows the primary a switchover replaced counts as following a
      relay only when both are of the same (named) region: that node was
      its primary, not its region's relay; and a former primary (one this
      broker replaced) back behind a node other than the primary is sent
      to the primary, unless that node is of its region;
    - with no primary known: a serving primary is adopted at once; a
      candidate is elected by the tick, once every live node had the time
      to beat (the node timeout after start).

    The tick fails over when the primary has been silent past the
    failover timeout, and times out switchovers. A switchover is a small
    state machine driven by the beats of the two nodes it concerns:

        HANDOVER   the primary gets HANDOVER(target) until its beat says
                   HANDED_OVER (it stopped writes and the target holds its
                   last seq); the new state is then saved: PROMOTING
        PROMOTING  the target gets PROMOTE, the old primary FOLLOW (the
                   ordinary rules); done when the target serves
        CANCEL     the deadline passed in HANDOVER: the primary gets
                   HANDOVER with an empty target on its next beats, so it
                   takes writes again
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "failover.h"
#include "log.h"

#define S_MAX_HOPS       8        /* a cascade longer than this is not walked */
#define S_CANCEL_BEATS   3        /* beats of the old primary that get the cancel */
#define S_WARN_MS        10000    /* a warning that repeats: at most this often */
#define S_LIST           640      /* room for the list of nodes considered */
#define S_MAX_FORMER     8        /* former primaries remembered (oldest dropped) */

typedef enum {
    S_SW_NONE,
    S_SW_HANDOVER,
    S_SW_PROMOTING,
    S_SW_CANCEL
} s_phase_t;

/*  A node considered for the primary role. */
typedef struct {
    char     id [WC_MAX_ID + 1];
    char     addr [WC_MAX_ADDR + 1];
    char     region [WC_MAX_ID + 1];
    uint64_t epoch;
    uint64_t seq;
    size_t   rank;                /* its region's place in --region-priority */
    bool     found;
} s_pick_t;

struct wc_failover {
    wc_failover_config_t cfg;
    char      regions [WC_FAILOVER_MAX_REGIONS][WC_MAX_ID + 1];
    size_t    nregions;           /* entries of --region-priority */
    wc_failover_save_fn *save;
    void     *save_arg;
    wc_failover_event_fn *event;  /* told of every change of primary; or NULL */
    void     *event_arg;
    wc_state_t state;             /* as saved: the only state acted upon */
    uint64_t  heard;              /* largest epoch any node reported */
    int64_t   started_ms;         /* the primary's silence counts from here */
    bool      loaded;             /* the state is the one loaded at start, not
                                     one this broker decided since */
    int64_t   stuck_warned_ms;    /* last "no node can take over" warning */
    uint64_t  failovers;          /* silent primaries replaced (for /metrics) */
    char      deposed [WC_MAX_ID + 1];  /* the primary the last switchover
                                           replaced; "" none */
    struct {
        char  id [WC_MAX_ID + 1];
        bool  told;               /* its FOLLOW was logged */
    }         former [S_MAX_FORMER];
                                  /* primaries replaced since this broker
                                     started that have not followed the
                                     primary since, oldest first */
    size_t    nformer;
    struct {
        s_phase_t phase;
        char      target [WC_MAX_ID + 1];
        char      target_addr [WC_MAX_ADDR + 1];
        char      from [WC_MAX_ID + 1];     /* the primary handing over */
        uint64_t  from_epoch;               /* its epoch */
        int64_t   started_ms;
        int64_t   deadline_ms;
        int       cancel_beats;             /* CANCEL: beats left */
        bool      ended;                    /* result waits to be taken */
        wc_switchover_result_t result;
    } sw;
};

/* --- helpers ----------------------------------------------------------- */

/*  bytes as a C string. The directory admits only printable ids and
    addresses, so nothing needs escaping; the copy is cut to fit. */
static char *
s_str (char *buf, size_t size, const wc_bytes_t *bytes)
{
    size_t len = bytes->len < size - 1 ? bytes->len : size - 1;
    if (len)
        memcpy (buf, bytes->ptr, len);
    buf [len] = '\0';
    return buf;
}

static bool
s_is (const wc_bytes_t *bytes, const char *text)
{
    size_t len = strlen (text);
    return bytes->len == len && (len == 0 || memcmp (bytes->ptr, text, len) == 0);
}

/*  A primary at work: role 1, not a candidate, at epoch. */
static bool
s_serving (const wc_node_info_t *info, uint64_t epoch)
{
    return info->role == WC_ROLE_PRIMARY && !(info->flags & WC_NODE_CANDIDATE)
        && info->epoch == epoch;
}

/*  The epoch the next promotion gets: one above all the broker knows. */
static uint64_t
s_next_epoch (wc_failover_t *self)
{
    uint64_t known = self->state.epoch > self->heard ? self->state.epoch : self->heard;
    return known + 1;
}

/* --- former primaries ---------------------------------------------------- */

/*  Where id is among the former primaries, or -1. */
static int
s_former_find (const wc_failover_t *self, const char *id)
{
    for (size_t i = 0; i < self->nformer; i++)
        if (strcmp (self->former [i].id, id) == 0)
            return (int) i;
    return -1;
}

static void
s_former_remove (wc_failover_t *self, const char *id)
{
    int at = s_former_find (self, id);
    if (at < 0)
        return;
    size_t after = self->nformer - (size_t) at - 1;
    memmove (&self->former [at], &self->former [at + 1], after * sizeof self->former [0]);
    self->nformer--;
}

/*  Remember id as a former primary; the oldest is dropped when full. */
static void
s_former_add (wc_failover_t *self, const char *id)
{
    s_former_remove (self, id);
    if (self->nformer == S_MAX_FORMER) {
        memmove (&self->former [0], &self->former [1],
                 (S_MAX_FORMER - 1) * sizeof self->former [0]);
        self->nformer--;
    }
    snprintf (self->former [self->nformer].id, sizeof self->former [0].id, "%s", id);
    self->former [self->nformer].told = false;
    self->nformer++;
}

/*  Save next, then make it the state. Epochs never go back. Returns 0,
    or the save's error (the state is then unchanged). */
static int
s_commit (wc_failover_t *self, wc_directory_t *dir, const wc_state_t *next)
{
    if (next->epoch < self->state.epoch)
        return WALCAST_EINVAL;
    int rc = self->save ? self->save (self->save_arg, next) : 0;
    if (rc)
        return rc;
    if (self->state.primary [0] && strcmp (self->state.primary, next->primary) != 0)
        s_former_add (self, self->state.primary);
    s_former_remove (self, next->primary);
    self->state = *next;
    self->loaded = false;
    wc_directory_set_primary (dir, self->state.primary);
    return 0;
}

/*  Tell the event callback that the state just saved changed the
    primary (from: the one before, "" if none). */
static void
s_event (wc_failover_t *self, const char *kind, const char *from, const char *reason)
{
    if (!self->event)
        return;
    wc_failover_event_t event = {
        .kind = kind, .from = from, .to = self->state.primary,
        .addr = self->state.primary_addr, .epoch = self->state.epoch,
        .reason = reason
    };
    self->event (self->event_arg, &event);
}

/*  A new state: primary id at addr, at epoch. */
static wc_state_t
s_state (uint64_t epoch, const char *id, const char *addr)
{
    wc_state_t state;
    memset (&state, 0, sizeof state);
    state.epoch = epoch;
    snprintf (state.primary, sizeof state.primary, "%s", id);
    snprintf (state.primary_addr, sizeof state.primary_addr, "%s", addr);
    return state;
}

static void
s_directive (wc_directive_t *d, int type, uint64_t epoch, const char *target,
             const char *addr)
{
    d->type = type;
    d->epoch = epoch;
    snprintf (d->target, sizeof d->target, "%s", target);
    snprintf (d->addr, sizeof d->addr, "%s", addr);
}

/* --- regions ------------------------------------------------------------ */

/*  Split list into regions [][WC_MAX_ID + 1]; see wc_failover_check_regions. */
static int
s_parse_regions (const char *list, char regions [][WC_MAX_ID + 1], size_t *count,
                 char *why, size_t size)
{
    *count = 0;
    if (!list || !*list)
        return 0;
    for (const char *at = list; ; at++) {
        size_t len = strcspn (at, ",");
        if (len == 0 || len > WC_MAX_ID) {
            snprintf (why, size, "--region-priority: region %zu is %s; regions are "
                      "1..%u characters, separated by commas", *count + 1,
                      len ? "too long" : "empty", WC_MAX_ID);
            return WALCAST_EINVAL;
        }
        for (size_t i = 0; i < len; i++)
            if (at [i] < 0x21 || at [i] > 0x7e) {
                snprintf (why, size, "--region-priority: region %zu has byte 0x%02X; "
                          "regions are printable, without spaces", *count + 1,
                          (unsigned char) at [i]);
                return WALCAST_EINVAL;
            }
        char name [WC_MAX_ID + 1];
        snprintf (name, sizeof name, "%.*s", (int) len, at);
        for (size_t k = 0; k < *count; k++)
            if (strcmp (regions [k], name) == 0) {
                snprintf (why, size, "--region-priority: region %s is listed twice", name);
                return WALCAST_EINVAL;
            }
        if (*count == WC_FAILOVER_MAX_REGIONS) {
            snprintf (why, size, "--region-priority: at most %d regions",
                      WC_FAILOVER_MAX_REGIONS);
            return WALCAST_EINVAL;
        }
        snprintf (regions [(*count)++], WC_MAX_ID + 1, "%s", name);
        at += len;
        if (*at == '\0')
            return 0;
    }
}

int
wc_failover_check_regions (const char *list, char *why, size_t size)
{
    char regions [WC_FAILOVER_MAX_REGIONS][WC_MAX_ID + 1];
    size_t count;
    return s_parse_regions (list, regions, &count, why, size);
}

/*  Place of region in --region-priority; unlisted regions come last. */
static size_t
s_rank (wc_failover_t *self, const wc_bytes_t *region)
{
    for (size_t i = 0; i < self->nregions; i++)
        if (s_is (region, self->regions [i]))
            return i;
    return self->nregions;
}

/* --- choosing a primary ---------------------------------------------------- */

/*  Why info cannot take the primary role ("" when it can). Eligible: up,
    a replica (or, when candidates is true, a candidate too), neither
    diverged nor stalled. */
static const char *
s_ineligible (const wc_node_info_t *info, bool candidates)
{
    if (!info->up)
        return "down";
    if (info->flags & WC_NODE_DIVERGED)
        return "diverged";
    if (info->flags & WC_NODE_STALLED)
        return "stalled";
    if (info->role == WC_ROLE_PRIMARY && !(info->flags & WC_NODE_CANDIDATE))
        return "serving as a primary";
    if (info->role == WC_ROLE_PRIMARY && !candidates)
        return "candidate";
    if (info->role == WC_ROLE_REPLICA && candidates)
        return "replica";
    return "";
}

/*  a better than b for the primary role: the higher (epoch, seq), then
    the region listed first, then (by directory order) the lower id. */
static bool
s_better (const s_pick_t *a, const s_pick_t *b)
{
    if (!b->found)
        return true;
    if (a->epoch != b->epoch)
        return a->epoch > b->epoch;
    if (a->seq != b->seq)
        return a->seq > b->seq;
    return a->rank < b->rank;
}

/*  Append to list (of size S_LIST) one node considered, "; "-separated. */
static void
s_list_add (char *list, const wc_node_info_t *info, const char *ineligible)
{
    size_t used = strlen (list);
    if (used + 4 >= S_LIST)
        return;
    char id [WC_MAX_ID + 1], region [WC_MAX_ID + 1], item [200];
    s_str (id, sizeof id, &info->id);
    if (ineligible [0])
        snprintf (item, sizeof item, "%s (%s)", id, ineligible);
    else
        snprintf (item, sizeof item, "%s (epoch %llu, seq %llu, region %s)", id,
                  (unsigned long long) info->epoch,
                  (unsigned long long) info->applied_seq,
                  info->region.len ? s_str (region, sizeof region, &info->region) : "-");
    int room = (int) (S_LIST - used);
    int wrote = snprintf (list + used, (size_t) room, "%s%s", used ? "; " : "", item);
    if (wrote >= room)
        snprintf (list + S_LIST - 4, 4, "...");
}

/*  The best node for the primary role among those of dir other than the
    one named exclude (NULL: none); see s_ineligible for candidates. The
    nodes considered go to list (S_LIST octets), each with its figures
    or why it cannot take over. */
static s_pick_t
s_best (wc_failover_t *self, wc_directory_t *dir, int64_t now, const char *exclude,
        bool candidates, char *list)
{
    s_pick_t best;
    memset (&best, 0, sizeof best);
    list [0] = '\0';
    for (size_t i = 0; i < wc_directory_size (dir); i++) {
        wc_node_info_t info;
        if (wc_directory_get (dir, i, now, &info) != 0
        ||  (exclude && s_is (&info.id, exclude)))
            continue;
        const char *ineligible = s_ineligible (&info, candidates);
        s_list_add (list, &info, ineligible);
        if (ineligible [0])
            continue;
        s_pick_t pick = { .epoch = info.epoch, .seq = info.applied_seq,
                          .rank = s_rank (self, &info.region), .found = true };
        s_str (pick.id, sizeof pick.id, &info.id);
        s_str (pick.addr, sizeof pick.addr, &info.addr);
        s_str (pick.region, sizeof pick.region, &info.region);
        if (s_better (&pick, &best))
            best = pick;
    }
    if (!list [0])
        snprintf (list, S_LIST, "no other node");
    return best;
}

/* --- the switchover's end ------------------------------------------------- */

/*  End the switchover with code (0: done) and a result for the client. */
static void
s_switchover_end (wc_failover_t *self, int code, const char *addr, const char *format,
                  ...) __attribute__ ((format (printf, 4, 5)));

static void
s_switchover_end (wc_failover_t *self, int code, const char *addr, const char *format,
                  ...)
{
    wc_switchover_result_t *result = &self->sw.result;
    memset (result, 0, sizeof *result);
    result->code = code;
    result->epoch = self->state.epoch;
    snprintf (result->addr, sizeof result->addr, "%s", addr ? addr : "");
    va_list args;
    va_start (args, format);
    vsnprintf (result->text, sizeof result->text, format, args);
    va_end (args);
    self->sw.ended = true;
    self->sw.phase = S_SW_NONE;
    if (code)
        wc_log_warn ("switchover to %s failed (%s): %s", self->sw.target,
                     walcast_errname (code), result->text);
}

/*  A failover or a newer primary ends a switchover under way. */
static void
s_switchover_abort (wc_failover_t *self, const char *why)
{
    if (self->sw.phase == S_SW_HANDOVER || self->sw.phase == S_SW_PROMOTING)
        s_switchover_end (self, WALCAST_EUNAVAILABLE, self->state.primary_addr,
                          "%s; %s is the primary at epoch %llu", why,
                          self->state.primary, (unsigned long long) self->state.epoch);
    else
    if (self->sw.phase == S_SW_CANCEL)
        self->sw.phase = S_SW_NONE;
}

/* --- module ------------------------------------------------------------- */

wc_failover_t *
wc_failover_new (const wc_failover_config_t *cfg, const wc_state_t *saved,
                 int64_t now_ms, wc_failover_save_fn *save, void *arg,
                 char *why, size_t why_size)
{
    snprintf (why, why_size, "out of memory");
    if (cfg->failover_timeout_ms < cfg->node_timeout_ms) {
        snprintf (why, why_size, "--failover-timeout %lld ms is shorter than "
                  "--node-timeout %lld ms: the primary must be seen down before it "
                  "is replaced", (long long) cfg->failover_timeout_ms,
                  (long long) cfg->node_timeout_ms);
        return NULL;
    }
    wc_failover_t *self = (wc_failover_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    self->cfg.region_priority = NULL;     /* parsed into regions; not kept */
    if (s_parse_regions (cfg->region_priority, self->regions, &self->nregions, why,
                         why_size)) {
        free (self);
        return NULL;
    }
    self->save = save;
    self->save_arg = arg;
    self->state = *saved;
    self->heard = saved->epoch;
    self->started_ms = now_ms;
    self->loaded = true;
    return self;
}

void
wc_failover_destroy (wc_failover_t **self_p)
{
    wc_failover_t *self = *self_p;
    if (!self)
        return;
    free (self);
    *self_p = NULL;
}

void
wc_failover_on_event (wc_failover_t *self, wc_failover_event_fn *fn, void *arg)
{
    self->event = fn;
    self->event_arg = arg;
}

int
wc_failover_set_timeout (wc_failover_t *self, int64_t failover_timeout_ms)
{
    if (failover_timeout_ms < self->cfg.node_timeout_ms)
        return WALCAST_EINVAL;
    self->cfg.failover_timeout_ms = failover_timeout_ms;
    return 0;
}

const wc_state_t *
wc_failover_state (wc_failover_t *self)
{
    return &self->state;
}

uint64_t
wc_failover_count (const wc_failover_t *self)
{
    return self->failovers;
}

uint64_t
wc_failover_epoch (wc_failover_t *self)
{
    return s_next_epoch (self) - 1;
}

bool
wc_failover_switchover_result (wc_failover_t *self, wc_switchover_result_t *result)
{
    if (!self->sw.ended)
        return false;
    *result = self->sw.result;
    self->sw.ended = false;
    return true;
}

/* --- beats ---------------------------------------------------------------- */

/*  No primary known, and info serves as a primary at an epoch no node has
    passed: it is the primary the broker forgot (a broker restarted
    without --data). Adopted at once, at its own epoch. */
static void
s_adopt (wc_failover_t *self, wc_directory_t *dir, const wc_node_info_t *info,
         const char *id)
{
    if (!s_serving (info, info->epoch) || info->epoch == 0
    ||  info->epoch < self->state.epoch || info->epoch < self->heard)
        return;
    char addr [WC_MAX_ADDR + 1];
    wc_state_t next = s_state (info->epoch, id, s_str (addr, sizeof addr, &info->addr));
    if (s_commit (self, dir, &next) != 0)
        return;
    wc_log_info ("promote: node %s at %s is the primary at epoch %llu: it serves "
                 "as the primary and the broker knew none", id, addr,
                 (unsigned long long) info->epoch);
    s_event (self, "promotion", "", "it serves as the primary and the broker knew none");
}

/*  The switchover's part of the primary's beat. Returns true when the
    beat's directive is decided here (HANDOVER, or its cancel). */
static bool
s_switchover_beat (wc_failover_t *self, wc_directory_t *dir,
                   const wc_node_info_t *info, const char *id, int64_t now,
                   wc_directive_t *d);

/*  The primary does not serve (it restarted: a candidate, or a replica
    when its command line names an upstream) and holds less than a
    replica, by (epoch, seq) (by seq alone for a replica named primary
    that has not served yet: see below): it lost the tail of its log (unsynced under
    --fsync batch), or all of it (an empty data directory), that the
    replica holds, writes acknowledged with acks >= 1 among them. The
    replica takes over, as in a failover, and the primary follows it.
    Returns true when it did. */
static bool
s_restarted_behind (wc_failover_t *self, wc_directory_t *dir, const wc_node_info_t *info,
                    const char *id, int64_t now)
{
    char list [S_LIST];
    s_pick_t best = s_best (self, dir, now, id, false, list);
    if (!best.found || best.epoch < info->epoch
    ||  (best.epoch == info->epoch && best.seq <= info->applied_seq))
        return false;
    //  A node named primary that has not served the state's epoch yet (no
    //  node reported it) and beats as a replica is on its way to serving:
    //  a promotion it has not acted on. Its latest epoch may be older than
    //  its old primary's (that one began an epoch and wrote nothing in it),
    //  so only more entries elsewhere mean it lost some
    if (!(info->flags & WC_NODE_CANDIDATE) && self->heard < self->state.epoch
    &&  best.seq <= info->applied_seq)
        return false;
    wc_state_t next = s_state (s_next_epoch (self), best.id, best.addr);
    if (s_commit (self, dir, &next) != 0)
        return false;
    wc_log_info ("failover: primary %s restarted holding less (epoch %llu, seq %llu) "
                 "than node %s at %s (epoch %llu, seq %llu), which becomes the primary "
                 "at epoch %llu (considered: %s)", id, (unsigned long long) info->epoch,
                 (unsigned long long) info->applied_seq, best.id, best.addr,
                 (unsigned long long) best.epoch, (unsigned long long) best.seq,
                 (unsigned long long) next.epoch, list);
    char why [128];
    snprintf (why, sizeof why, "the primary %s restarted holding less than %s", id,
              best.id);
    s_event (self, "failover", id, why);
    s_switchover_abort (self, why);
    return true;
}

/*  The primary's beat: it must serve at the state's epoch. */
static void
s_primary_beat (wc_failover_t *self, wc_directory_t *dir, const wc_node_info_t *info,
                const char *id, int64_t now, wc_directive_t *d)
{
    wc_state_t next = self->state;
    char addr [WC_MAX_ADDR + 1];
    if (!s_is (&info->addr, self->state.primary_addr)) {
        s_str (next.primary_addr, sizeof next.primary_addr, &info->addr);
        if (s_commit (self, dir, &next) == 0)
            wc_log_info ("primary %s moved to %s", id, next.primary_addr);
    }
    if (s_switchover_beat (self, dir, info, id, now, d)
    ||  s_serving (info, self->state.epoch)
    ||  strcmp (id, self->state.primary) != 0)
        return;
    if (s_serving (info, info->epoch) && info->epoch > self->state.epoch) {
        next = self->state;                 /* it went ahead: follow it */
        next.epoch = info->epoch;
        s_commit (self, dir, &next);
        return;
    }
    //  Right after this broker started, with the primary its saved state
    //  names, not every live node has beaten yet: one may hold more than
    //  this primary (writes a deposed primary took and that replica
    //  acknowledged, after this broker decided the failover its state
    //  names and before anyone heard of it). So no PROMOTE until every
    //  live node had the time to beat, as a first election waits
    if (self->loaded && now - self->started_ms < self->cfg.node_timeout_ms)
        return;
    if (s_restarted_behind (self, dir, info, id, now))
        return;
    if (self->heard >= self->state.epoch) {
        /*  The state's epoch was reported by a node (this one restarted
            with it in its history): promote with a new one. */
        next = self->state;
        next.epoch = s_next_epoch (self);
        if (s_commit (self, dir, &next) != 0)
            return;
        wc_log_info ("promote: node %s at %s becomes the primary at epoch %llu: it "
                     "beats as a %s%s at epoch %llu, seq %llu", id,
                     s_str (addr, sizeof addr, &info->addr),
                     (unsigned long long) next.epoch,
                     info->role == WC_ROLE_PRIMARY ? "primary" : "replica",
                     info->flags & WC_NODE_CANDIDATE ? " candidate (it restarted)" : "",
                     (unsigned long long) info->epoch,
                     (unsigned long long) info->applied_seq);
        s_event (self, "promotion", id, info->flags & WC_NODE_CANDIDATE
                 ? "the primary restarted: promoted again at a new epoch"
                 : "the primary lost its epoch: promoted again at a new epoch");
    }
    s_directive (d, WC_MSG_PROMOTE, self->state.epoch, "", "");
}

/*  Another node claims the primary role: FOLLOW, unless it serves at an
    epoch newer than the primary's and than any reported (then the broker
    had forgotten it, and it is the primary). */
static void
s_claimant_beat (wc_failover_t *self, wc_directory_t *dir, const wc_node_info_t *info,
                 const char *id, wc_directive_t *d)
{
    if (s_serving (info, info->epoch) && info->epoch > self->state.epoch
    &&  info->epoch >= self->heard) {
        char addr [WC_MAX_ADDR + 1], was [WC_MAX_ID + 1];
        snprintf (was, sizeof was, "%s", self->state.primary);
        uint64_t was_epoch = self->state.epoch;
        wc_state_t next = s_state (info->epoch, id, s_str (addr, sizeof addr, &info->addr));
        if (s_commit (self, dir, &next) != 0)
            return;
        wc_log_info ("promote: node %s at %s is the primary at epoch %llu: it serves "
                     "at an epoch newer than %s's %llu", id, addr,
                     (unsigned long long) info->epoch, was, (unsigned long long) was_epoch);
        s_event (self, "promotion", was, "it serves at an epoch newer than the "
                 "primary's");
        s_switchover_abort (self, "a primary with a newer epoch appeared");
        return;
    }
    s_directive (d, WC_MSG_FOLLOW, self->state.epoch, "", self->state.primary_addr);
}

/*  A replica's upstream is fine when it is the primary, or a relay: a
    known replica, up, neither diverged nor stalled, whose own upstreams
    do not lead back to this node. What lies past the relay is the
    relay's business (it gets its own directives). */
static bool
s_upstream_ok (wc_failover_t *self, wc_directory_t *dir, const wc_node_info_t *info,
               int64_t now)
{
    if (s_is (&info->primary, self->state.primary_addr))
        return true;
    wc_bytes_t addr = info->primary;
    for (int hop = 0; hop < S_MAX_HOPS; hop++) {
        wc_node_info_t next;
        if (wc_directory_find_addr (dir, addr.ptr, addr.len, now, &next) != 0)
            return hop > 0;
        if (s_is (&next.id, self->state.primary))
            return true;
        bool relay = next.up && next.role == WC_ROLE_REPLICA
                  && !(next.flags & (WC_NODE_DIVERGED | WC_NODE_STALLED));
        if (!relay)
            return hop > 0;
        if (next.id.len == info->id.len
        &&  memcmp (next.id.ptr, info->id.ptr, info->id.len) == 0)
            return false;               /* a cycle through this node */
        addr = next.primary;
    }
    return true;
}

/*  Does the replica follow the primary a switchover replaced, now a
    replica itself, from outside its region? That node was its primary,
    not its region's relay: it goes to the new primary (one wide-area
    crossing, not two; and a later switchover to it finds a direct
    replica). A replica of the old primary's own region (both regions
    named and equal) keeps it as the region's relay. */
static bool
s_follows_deposed (wc_failover_t *self, wc_directory_t *dir, const wc_node_info_t *info,
                   int64_t now)
{
    if (!self->deposed [0] || strcmp (self->deposed, self->state.primary) == 0)
        return false;
    wc_node_info_t old;
    if (wc_directory_find (dir, self->deposed, now, &old) != 0
    ||  old.addr.len != info->primary.len
    ||  memcmp (old.addr.ptr, info->primary.ptr, old.addr.len) != 0)
        return false;
    bool same_region = old.region.len > 0 && old.region.len == info->region.len
                    && memcmp (old.region.ptr, info->region.ptr, old.region.len) == 0;
    return !same_region;
}

/*  Is the replica a former primary back behind a node other than the
    primary? Its command line named the upstream it had before it was
    promoted, now a replica like it: that is no cascade anyone chose, and
    it goes to the primary, unless that upstream is of its own (named)
    region (kept as its region's relay, as for s_follows_deposed). Once
    it follows the primary, it is no former primary any more: a later
    restart with the same command line is its operator's choice, so the
    first FOLLOW is logged with the flag to change. */
static bool
s_former_astray (wc_failover_t *self, wc_directory_t *dir, const wc_node_info_t *info,
                 const char *id, int64_t now)
{
    int at = s_former_find (self, id);
    if (at < 0)
        return false;
    if (s_is (&info->primary, self->state.primary_addr)) {
        s_former_remove (self, id);
        return false;
    }
    wc_node_info_t upstream;
    bool astray = true;
    if (wc_directory_find_addr (dir, info->primary.ptr, info->primary.len, now,
                                &upstream) == 0)
        astray = !(info->region.len > 0 && upstream.region.len == info->region.len
                   && memcmp (upstream.region.ptr, info->region.ptr,
                              info->region.len) == 0);
    if (astray && !self->former [at].told) {
        char was [WC_MAX_ADDR + 1];
        s_str (was, sizeof was, &info->primary);
        wc_log_warn ("node %s, a primary this broker replaced, came back behind %s: "
                     "told to follow the primary %s; change its --replica-of, "
                     "or it will be back behind %s at its next restart",
                     id, was, self->state.primary_addr, was);
        self->former [at].told = true;
    }
    return astray;
}

void
wc_failover_forget (wc_failover_t *self, const char *id)
{
    s_former_remove (self, id);
    if (strcmp (self->deposed, id) == 0)
        self->deposed [0] = '\0';
}

void
wc_failover_beat (wc_failover_t *self, wc_directory_t *dir,
                  const wc_node_info_t *info, int64_t now_ms,
                  wc_directive_t *directive)
{
    memset (directive, 0, sizeof *directive);
    wc_directory_set_primary (dir, self->state.primary);
    if (info->epoch > self->heard)
        self->heard = info->epoch;
    char id [WC_MAX_ID + 1];
    s_str (id, sizeof id, &info->id);
    if (!self->state.primary [0])
        s_adopt (self, dir, info, id);
    if (!self->state.primary [0])
        return;
    if (strcmp (id, self->state.primary) == 0) {
        s_primary_beat (self, dir, info, id, now_ms, directive);
        if (directive->type || strcmp (id, self->state.primary) == 0)
            return;
        /*  It just handed the role over: it follows like any claimant. */
    }
    if (info->role == WC_ROLE_PRIMARY)
        s_claimant_beat (self, dir, info, id, directive);
    else
    if (!(info->flags & WC_NODE_DIVERGED)
    &&  (s_former_astray (self, dir, info, id, now_ms)
         || s_follows_deposed (self, dir, info, now_ms)
         || !s_upstream_ok (self, dir, info, now_ms)))
        s_directive (directive, WC_MSG_FOLLOW, self->state.epoch, "",
                     self->state.primary_addr);
}

/* --- the tick: a first primary, failover ------------------------------- */

/*  True when the warning that repeats may be logged now. */
static bool
s_warn_due (wc_failover_t *self, int64_t now)
{
    if (self->stuck_warned_ms && now - self->stuck_warned_ms < S_WARN_MS)
        return false;
    self->stuck_warned_ms = now;
    return true;
}

/*  No primary known: once every live node had the time to beat (the node
    timeout after start), the best candidate becomes the primary, unless
    a replica holds more than it (it would then truncate that away). */
static void
s_elect (wc_failover_t *self, wc_directory_t *dir, int64_t now)
{
    if (now - self->started_ms < self->cfg.node_timeout_ms)
        return;
    char list [S_LIST], replicas [S_LIST];
    s_pick_t best = s_best (self, dir, now, NULL, true, list);
    if (!best.found)
        return;
    s_pick_t replica = s_best (self, dir, now, NULL, false, replicas);
    if (replica.found && (replica.epoch > best.epoch
                          || (replica.epoch == best.epoch && replica.seq > best.seq))) {
        if (s_warn_due (self, now))
            wc_log_warn ("no primary: not promoting candidate %s (epoch %llu, seq %llu): "
                         "replica %s holds more (epoch %llu, seq %llu); start the node "
                         "it follows, or restart it without --replica-of", best.id,
                         (unsigned long long) best.epoch, (unsigned long long) best.seq,
                         replica.id, (unsigned long long) replica.epoch,
                         (unsigned long long) replica.seq);
        return;
    }
    wc_state_t next = s_state (s_next_epoch (self), best.id, best.addr);
    if (s_commit (self, dir, &next) != 0)
        return;
    self->stuck_warned_ms = 0;
    wc_log_info ("promote: node %s at %s becomes the primary at epoch %llu: the best "
                 "candidate, no primary being known (considered: %s)", best.id,
                 best.addr, (unsigned long long) next.epoch, list);
    s_event (self, "promotion", "", "the best candidate, no primary being known");
}

/*  The primary silent past the failover timeout (counted from the
    broker's start when it has not been heard since): the best eligible
    node takes over at a new epoch. */
static void
s_failover (wc_failover_t *self, wc_directory_t *dir, int64_t now)
{
    wc_node_info_t info;
    bool known = wc_directory_find (dir, self->state.primary, now, &info) == 0;
    if (known && info.up)
        return;
    int64_t silent = known ? (int64_t) info.silent_ms : now - self->started_ms;
    if (silent < self->cfg.failover_timeout_ms)
        return;
    char list [S_LIST];
    s_pick_t best = s_best (self, dir, now, self->state.primary, false, list);
    if (!best.found) {
        if (s_warn_due (self, now))
            wc_log_warn ("failover: primary %s at %s silent %lld ms, and no node can "
                         "take over (considered: %s)", self->state.primary,
                         self->state.primary_addr, (long long) silent, list);
        return;
    }
    /*  The primary's silence proves something only while the candidate
        could be heard: when both were cut off from the broker (its link
        broke, then healed), the candidate's first beat may come before
        the primary's. So the candidate must have been up for a node
        timeout, the time in which a live primary beats twice. */
    if (wc_directory_up_for (dir, best.id, now) < self->cfg.node_timeout_ms)
        return;
    wc_state_t was = self->state;
    wc_state_t next = s_state (s_next_epoch (self), best.id, best.addr);
    if (s_commit (self, dir, &next) != 0)
        return;
    self->stuck_warned_ms = 0;
    self->failovers++;
    wc_log_info ("failover: primary %s at %s (epoch %llu) silent %lld ms, past "
                 "--failover-timeout %lld ms: node %s at %s becomes the primary at "
                 "epoch %llu (epoch %llu, seq %llu; considered: %s)", was.primary,
                 was.primary_addr, (unsigned long long) was.epoch, (long long) silent,
                 (long long) self->cfg.failover_timeout_ms, best.id, best.addr,
                 (unsigned long long) next.epoch, (unsigned long long) best.epoch,
                 (unsigned long long) best.seq, list);
    char why [128];
    snprintf (why, sizeof why, "the primary was silent %lld ms, past the failover "
              "timeout", (long long) silent);
    s_event (self, "failover", was.primary, why);
    snprintf (why, sizeof why, "the primary %s went silent", was.primary);
    s_switchover_abort (self, why);
}

/*  A switchover past its deadline: cancelled while the primary has not
    handed over, reported as not confirmed once it has. */
static void
s_switchover_tick (wc_failover_t *self, int64_t now)
{
    if (self->sw.phase == S_SW_NONE || now < self->sw.deadline_ms)
        return;
    long long waited = (long long) (now - self->sw.started_ms);
    if (self->sw.phase == S_SW_HANDOVER) {
        s_switchover_end (self, WALCAST_ETIMEOUT, "", "%s did not report within %lld "
                          "ms that %s holds its last seq; cancelled, %s takes writes "
                          "again", self->sw.from, waited, self->sw.target, self->sw.from);
        self->sw.phase = S_SW_CANCEL;
        self->sw.cancel_beats = S_CANCEL_BEATS;
        self->sw.deadline_ms = now + self->cfg.switchover_timeout_ms;
    }
    else
    if (self->sw.phase == S_SW_PROMOTING)
        s_switchover_end (self, WALCAST_ETIMEOUT, self->state.primary_addr,
                          "%s is the primary at epoch %llu, but has not confirmed it "
                          "within %lld ms; the broker keeps promoting it",
                          self->state.primary, (unsigned long long) self->state.epoch,
                          waited);
    else
        self->sw.phase = S_SW_NONE;     /* the old primary never beat again */
}

void
wc_failover_tick (wc_failover_t *self, wc_directory_t *dir, int64_t now_ms)
{
    wc_directory_set_primary (dir, self->state.primary);
    s_switchover_tick (self, now_ms);
    if (self->state.primary [0])
        s_failover (self, dir, now_ms);
    else
        s_elect (self, dir, now_ms);
}

/* --- switchover ------------------------------------------------------------ */

/*  Why node_id cannot take over from the primary now (the code), with the
    reason in why; 0 when it can (target filled). */
static int
s_switchover_check (wc_failover_t *self, wc_directory_t *dir, const char *node_id,
                    int64_t now, wc_node_info_t *target, char *why, size_t size)
{
    wc_node_info_t primary;
    const char *p = self->state.primary;
    if (!p [0] || wc_directory_find (dir, p, now, &primary) != 0 || !primary.up) {
        snprintf (why, size, "%s%s is not up: the cluster has no primary to hand over "
                  "from", p [0] ? "the primary " : "no primary is known", p);
        return WALCAST_EUNAVAILABLE;
    }
    if (!s_serving (&primary, self->state.epoch)) {
        snprintf (why, size, "the primary %s is not serving yet (it is being promoted "
                  "to epoch %llu)", p, (unsigned long long) self->state.epoch);
        return WALCAST_EUNAVAILABLE;
    }
    if (strcmp (node_id, p) == 0) {
        snprintf (why, size, "node %s is already the primary (epoch %llu)", p,
                  (unsigned long long) self->state.epoch);
        return WALCAST_EINVAL;
    }
    if (wc_directory_find (dir, node_id, now, target) != 0) {
        snprintf (why, size, "no node %s in the directory", node_id);
        return WALCAST_EINVAL;
    }
    const char *flaw = s_ineligible (target, false);
    if (flaw [0]) {
        snprintf (why, size, "node %s cannot take over: %s", node_id, flaw);
        return strcmp (flaw, "down") == 0 || strcmp (flaw, "stalled") == 0
             ? WALCAST_EUNAVAILABLE : WALCAST_EINVAL;
    }
    if (!s_is (&target->primary, self->state.primary_addr)) {
        char follows [WC_MAX_ADDR + 1];
        snprintf (why, size, "node %s follows %s, not the primary %s at %s: only a "
                  "direct replica of the primary can take over", node_id,
                  s_str (follows, sizeof follows, &target->primary), p,
                  self->state.primary_addr);
        return WALCAST_EINVAL;
    }
    return 0;
}

int
wc_failover_switchover (wc_failover_t *self, wc_directory_t *dir,
                        const wc_bytes_t *node_id, int64_t now_ms,
                        char *why, size_t why_size)
{
    char id [WC_MAX_ID + 1];
    wc_bytes_printable (id, sizeof id, node_id);
    for (uint32_t i = 0; i < node_id->len; i++)
        if (node_id->ptr [i] < 0x21 || node_id->ptr [i] > 0x7e) {
            snprintf (why, why_size, "no node \"%s\": node ids are printable "
                      "characters (0x21..0x7E)", id);
            return WALCAST_EINVAL;
        }
    if (self->sw.phase == S_SW_HANDOVER || self->sw.phase == S_SW_PROMOTING) {
        snprintf (why, why_size, "a switchover to %s is under way (for %lld ms)",
                  self->sw.target, (long long) (now_ms - self->sw.started_ms));
        return WALCAST_EBUSY;
    }
    wc_node_info_t target;
    int rc = s_switchover_check (self, dir, id, now_ms, &target, why, why_size);
    if (rc) {
        wc_log_warn ("switchover to %s refused (%s): %s", id, walcast_errname (rc), why);
        return rc;
    }
    self->sw.phase = S_SW_HANDOVER;
    snprintf (self->sw.target, sizeof self->sw.target, "%s", id);
    s_str (self->sw.target_addr, sizeof self->sw.target_addr, &target.addr);
    snprintf (self->sw.from, sizeof self->sw.from, "%s", self->state.primary);
    self->sw.from_epoch = self->state.epoch;
    self->sw.started_ms = now_ms;
    self->sw.deadline_ms = now_ms + self->cfg.switchover_timeout_ms;
    self->sw.cancel_beats = 0;
    wc_log_info ("switchover: to %s at %s asked; the primary %s (epoch %llu) gets "
                 "HANDOVER and stops taking writes until %s holds all it has (%s "
                 "at seq %llu)", id, self->sw.target_addr, self->sw.from,
                 (unsigned long long) self->sw.from_epoch, id, id,
                 (unsigned long long) target.applied_seq);
    return 0;
}

/*  The primary's beat says the switchover's target holds all it has:
    WC_NODE_HANDED_OVER, or from a node before it, handover_seq > 0 (such
    a node cannot say so when it has nothing). */
static bool
s_handed_over (const wc_node_info_t *info)
{
    return (info->flags & WC_NODE_HANDED_OVER) || info->handover_seq > 0;
}

/*  The primary reported the hand-over: save the target as the primary at
    a new epoch (the ordinary rules then PROMOTE it and make the old
    primary FOLLOW). Returns 0, or -1 to keep waiting (the target is down
    or does not say it holds handover_seq yet, the save failed). */
static int
s_switchover_commit (wc_failover_t *self, wc_directory_t *dir,
                     const wc_node_info_t *info, int64_t now)
{
    wc_node_info_t target;
    if (wc_directory_find (dir, self->sw.target, now, &target) != 0 || !target.up)
        return -1;
    //  The target's own word too: its ACKs may have covered entries it
    //  lost since (a restart under --fsync never), so not before its beat
    //  says it holds the primary's last seq
    if (target.applied_seq < info->handover_seq)
        return -1;
    char addr [WC_MAX_ADDR + 1];
    wc_state_t next = s_state (s_next_epoch (self), self->sw.target,
                               s_str (addr, sizeof addr, &target.addr));
    if (s_commit (self, dir, &next) != 0)
        return -1;
    snprintf (self->sw.target_addr, sizeof self->sw.target_addr, "%s", addr);
    snprintf (self->deposed, sizeof self->deposed, "%s", self->sw.from);
    self->sw.phase = S_SW_PROMOTING;
    wc_log_info ("switchover: the primary %s handed over at seq %llu after %lld ms: "
                 "node %s at %s (seq %llu) becomes the primary at epoch %llu",
                 self->sw.from, (unsigned long long) info->handover_seq,
                 (long long) (now - self->sw.started_ms), next.primary, addr,
                 (unsigned long long) target.applied_seq,
                 (unsigned long long) next.epoch);
    char why [96];
    snprintf (why, sizeof why, "asked by an operator; handed over at seq %llu",
              (unsigned long long) info->handover_seq);
    s_event (self, "switchover", self->sw.from, why);
    return 0;
}

static bool
s_switchover_beat (wc_failover_t *self, wc_directory_t *dir,
                   const wc_node_info_t *info, const char *id, int64_t now,
                   wc_directive_t *d)
{
    /*  The primary reports a hand-over this broker knows nothing of (it
        restarted since it began one). With the state saved, the state
        naming this node proves the target was never promoted (the new
        primary is saved before any PROMOTE): cancel it. Without, a
        promotion may have been lost with the memory: say nothing. */
    if (self->sw.phase == S_SW_NONE && self->cfg.state_saved && s_handed_over (info)
    &&  strcmp (id, self->state.primary) == 0 && s_serving (info, self->state.epoch)) {
        if (s_warn_due (self, now))
            wc_log_warn ("switchover: the primary %s reports a hand-over this broker "
                         "does not know of (it restarted since); cancelled, %s takes "
                         "writes again", id, id);
        s_directive (d, WC_MSG_HANDOVER, self->state.epoch, "", "");
        return true;
    }
    if (self->sw.phase == S_SW_PROMOTING && strcmp (id, self->sw.target) == 0
    &&  s_serving (info, self->state.epoch)) {
        wc_log_info ("switchover: done in %lld ms: %s at %s serves as the primary at "
                     "epoch %llu", (long long) (now - self->sw.started_ms), id,
                     self->state.primary_addr, (unsigned long long) self->state.epoch);
        s_switchover_end (self, 0, self->state.primary_addr, "done");
        return false;
    }
    bool from = strcmp (id, self->sw.from) == 0;
    if (!from || (self->sw.phase != S_SW_HANDOVER && self->sw.phase != S_SW_CANCEL))
        return false;
    if (!s_serving (info, self->sw.from_epoch)) {
        /*  It restarted (or stepped down): whatever it was told is gone. */
        if (self->sw.phase == S_SW_HANDOVER)
            s_switchover_end (self, WALCAST_EUNAVAILABLE, "", "the primary %s "
                              "restarted during the switchover", id);
        self->sw.phase = S_SW_NONE;
        return false;
    }
    if (self->sw.phase == S_SW_HANDOVER) {
        if (s_handed_over (info) && s_switchover_commit (self, dir, info, now) == 0)
            return false;
        s_directive (d, WC_MSG_HANDOVER, self->state.epoch, self->sw.target,
                     self->sw.target_addr);
        return true;
    }
    s_directive (d, WC_MSG_HANDOVER, self->state.epoch, "", "");
    if (--self->sw.cancel_beats == 0)
        self->sw.phase = S_SW_NONE;
    return true;
}
