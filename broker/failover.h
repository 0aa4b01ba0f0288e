/*  failover.h - the cluster's primary and epoch: who the primary is, at
    which epoch, and what every node must do about it.

    A pure decision module, like directory.c: no sockets, no clock, no
    files of its own. The broker feeds it every admitted beat
    (wc_failover_beat, after the directory took it) and ticks it with the
    monotonic time (wc_failover_tick); it answers with the directive the
    beating node must get back (PROMOTE, FOLLOW, HANDOVER, or none), and
    hands every new state to a save function before acting on it. Tests
    drive it with a fake clock, fake beats and a fake save.

    The ideas that make it safe:
    - Directives are not events but a function of the state and of what a
      node last said: on every beat the node gets the directive that
      brings it where the state wants it, until its beat shows it there.
      A lost reply, a restarted node or a restarted broker cost one beat.
    - Every PROMOTE carries an epoch no node has reported (the largest
      epoch the broker saved or heard, plus one), saved before it is sent,
      so no epoch ever has two primaries, and a restarted broker never
      goes back in epochs.
    - The primary role changes hands in three ways only, each logged in
      one line: a promotion (a new cluster's first candidate, the primary
      restarting, a primary with a newer epoch), a failover (the primary
      silent past the failover timeout: the best eligible node takes
      over), a switchover (asked by an operator: the primary hands over
      once the target holds all it has).

    docs/PROTOCOL.md ("Failover") states the rules this module follows.
*/
#ifndef WC_FAILOVER_H_INCLUDED
#define WC_FAILOVER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec.h"
#include "directory.h"
#include "state.h"

/*  Most regions --region-priority may list. */
#define WC_FAILOVER_MAX_REGIONS  32

typedef struct {
    int64_t     node_timeout_ms;      /* the directory's: silent this long = down */
    int64_t     failover_timeout_ms;  /* the primary silent this long: fail over; >= node timeout */
    int64_t     switchover_timeout_ms;    /* a switchover not done by then: cancelled */
    const char *region_priority;      /* "R1,R2,...": ties go to the first; NULL: none */
    bool        state_saved;          /* the state survives a restart (--data): a
                                         primary reporting a hand-over this broker
                                         does not know of is told to cancel it */
} wc_failover_config_t;

/*  Save state durably before the module acts on it: 0, or a negative
    WALCAST_E* code (the module then keeps its old state and retries
    later). arg is the one given to wc_failover_new. */
typedef int (wc_failover_save_fn) (void *arg, const wc_state_t *state);

/*  What a node must do, sent as the reply to its beat. */
typedef struct {
    int      type;                    /* 0: nothing; WC_MSG_PROMOTE, FOLLOW or HANDOVER */
    uint64_t epoch;                   /* PROMOTE: the new epoch; else the primary's */
    char     target [WC_MAX_ID + 1];  /* HANDOVER: the target's id; "" cancels */
    char     addr [WC_MAX_ADDR + 1];  /* FOLLOW: the primary's; HANDOVER: the target's */
} wc_directive_t;

/*  How a switchover ended: code 0 (SWITCHOVER_DONE: the epoch and address
    of the new primary) or a WALCAST_E* code with text (an ERROR; addr is
    then its detail, possibly empty). */
typedef struct {
    int      code;
    uint64_t epoch;
    char     addr [WC_MAX_ADDR + 1];
    char     text [WC_MAX_TEXT + 1];
} wc_switchover_result_t;

/*  A change of primary, as it happens: kind is "promotion" (a first
    primary, a primary restarted or found at a newer epoch), "failover"
    (the primary silent, or back holding less) or "switchover" (asked by
    an operator); from is the primary before ("" when none was known), to
    the primary after, at addr and epoch; reason says why in a few words.
    The strings live until the callback returns. */
typedef struct {
    const char *kind;
    const char *from;
    const char *to;
    const char *addr;
    uint64_t    epoch;
    const char *reason;
} wc_failover_event_t;

typedef void (wc_failover_event_fn) (void *arg, const wc_failover_event_t *event);

typedef struct wc_failover wc_failover_t;

/*  Check a --region-priority list: comma-separated region names, each
    1..WC_MAX_ID printable characters other than ',', no name twice, at
    most WC_FAILOVER_MAX_REGIONS. Returns 0, or WALCAST_EINVAL with why. */
int wc_failover_check_regions (const char *list, char *why, size_t size);

/*  A new module starting from the saved state (all zero for a new
    cluster) at monotonic time now_ms. save is called with every new
    state before it is acted upon. NULL when out of memory or when the
    configuration is invalid (why says which). */
wc_failover_t *wc_failover_new (const wc_failover_config_t *cfg,
                                const wc_state_t *saved, int64_t now_ms,
                                wc_failover_save_fn *save, void *arg,
                                char *why, size_t why_size);

/*  Free it; *self_p becomes NULL; safe twice. */
void wc_failover_destroy (wc_failover_t **self_p);

/*  Call fn (with arg) after every change of primary, once saved (NULL:
    none). For the broker's status page; decisions do not depend on it. */
void wc_failover_on_event (wc_failover_t *self, wc_failover_event_fn *fn, void *arg);

/*  A node's beat (REGISTER or NODE_HEARTBEAT), already admitted into dir
    at now_ms: decide what the node must do and fill *directive. May move
    the state (saved first) and tell dir who the primary is. */
void wc_failover_beat (wc_failover_t *self, wc_directory_t *dir,
                       const wc_node_info_t *info, int64_t now_ms,
                       wc_directive_t *directive);

/*  The timers: fail over when the primary has been silent past the
    failover timeout, elect a first primary, end a switchover that took
    too long. Call it at least every tenth of the node timeout. */
void wc_failover_tick (wc_failover_t *self, wc_directory_t *dir, int64_t now_ms);

/*  A client asks that node_id become the primary. Returns 0 when the
    switchover has begun (its end comes from wc_failover_switchover_result)
    or, with the reason in why, WALCAST_EINVAL (the request cannot succeed
    as the cluster stands: unknown node, already the primary, not a direct
    replica, diverged), WALCAST_EUNAVAILABLE (not now: a node down, the
    primary not serving, the target stalled) or WALCAST_EBUSY (another
    switchover is under way). */
int wc_failover_switchover (wc_failover_t *self, wc_directory_t *dir,
                            const wc_bytes_t *node_id, int64_t now_ms,
                            char *why, size_t why_size);

/*  True, once, when the switchover begun last has ended: *result says how. */
bool wc_failover_switchover_result (wc_failover_t *self,
                                    wc_switchover_result_t *result);

/*  A new failover timeout (SIGHUP): 0, or WALCAST_EINVAL when it is
    shorter than the node timeout (nothing changed). */
int wc_failover_set_timeout (wc_failover_t *self, int64_t failover_timeout_ms);

/*  Node id was forgotten (FORGET): drop what is remembered of it (as a
    primary a failover or the last switchover replaced), so that a new
    node given its id starts afresh. */
void wc_failover_forget (wc_failover_t *self, const char *id);

/*  The saved state (what the broker acts on). */
const wc_state_t *wc_failover_state (wc_failover_t *self);

/*  The largest epoch the broker saved or any node reported. */
uint64_t wc_failover_epoch (wc_failover_t *self);

/*  Failovers made (a silent primary replaced; not switchovers). */
uint64_t wc_failover_count (const wc_failover_t *self);

#endif
