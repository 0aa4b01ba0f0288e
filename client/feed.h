/*  feed.h - a change feed that loses nothing: walcast_watch's engine.

    A feed follows one node at a time: a SUB socket on its stream (P+1)
    subscribed to everything, and a DEALER on its catch-up port (P+2).
    It hands changes to the caller strictly in seq order, each once,
    from the seq it was told to start at, whatever the stream drops. The
    rules are the replica's (docs/PROTOCOL.md, "Stream" and "Catch-up"):

    - an ENTRY with seq = next is delivered; below next it is a
      duplicate; above next it proves a gap: it is kept (bounded) and
      the gap is fetched from next;
    - a HEARTBEAT whose last_seq >= next proves a lost tail: fetched too;
    - FETCH replies are applied in order and fetching goes on until next
      passes the reply's last_seq; a FETCH unanswered in time closes the
      DEALER and opens a new one (Lazy Pirate), with a backoff;
    - ERROR ERANGE (the node no longer holds next) ends the feed: a feed
      with a hole is not a feed.

    The caller owns the choice of node: wc_feed_open moves the feed to
    another node, keeping its position (seqs are positions in the one
    log, the same on every node). Filtering by key prefix happens here,
    after the seq rules: a feed cannot tell a lost change from a change
    to another key by seq alone, so it must see them all.
*/
#ifndef WC_FEED_H_INCLUDED
#define WC_FEED_H_INCLUDED

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "certs.h"
#include "walcast.h"

typedef struct wc_feed wc_feed_t;

/*  What one wc_feed_run did. */
typedef struct {
    uint64_t delivered;     /* changes handed to fn */
    int      stopped;       /* fn's non-zero return, 0 if it did not stop */
    bool     interrupted;   /* a signal interrupted the wait, or the halt
                               flag was set (wc_feed_set_halt) */
} wc_feed_run_t;

/*  A feed of changes to keys under prefix (copied; prefix_len 0: all),
    from seq next (>= 1) on, whose sockets live in the zmq context ctx.
    With keys (copied; NULL: none) its sockets are CURVE clients.
    log (may be NULL) is told about gaps and repairs. NULL when out of
    memory or for a bad argument. */
wc_feed_t *wc_feed_new (void *ctx, const void *prefix, size_t prefix_len,
                        uint64_t next, const wc_certs_keys_t *keys,
                        walcast_log_fn *log, void *log_arg);

/*  Close its sockets, free it; *self_p becomes NULL. */
void wc_feed_destroy (wc_feed_t **self_p);

/*  Follow the node at addr ("HOST:PORT", its base port; name is how
    messages call it; server_key its CURVE public key, used when the feed
    has keys): subscribe to its stream, connect to its catch-up
    port. Entries kept from the node followed before are dropped; the
    position stays. 0, WALCAST_EINVAL or WALCAST_EUNAVAILABLE. */
int wc_feed_open (wc_feed_t *self, const char *addr, const char *name,
                  const char *server_key);

/*  Wait up to wait_ms for the stream or a FETCH reply, act on what came
    and hand the changes that are next to fn. 0, or WALCAST_ERANGE (the
    node no longer holds the next seq: see wc_feed_detail),
    WALCAST_ECONFLICT (the node's history rolled back changes already
    delivered: wc_feed_detail says from which seq to watch again) or
    WALCAST_EUNAVAILABLE (a socket failed); *run says what happened. */
int wc_feed_run (wc_feed_t *self, int wait_ms, walcast_watch_fn *fn, void *arg,
                 wc_feed_run_t *run);

/*  A flag (NULL: none) that, once set (from a signal handler, another
    thread, or fn), makes a run hand over nothing more: it returns with
    run->interrupted before the next change, which stays next. */
void wc_feed_set_halt (wc_feed_t *self, const volatile sig_atomic_t *halt);

/*  The next seq the feed will deliver. */
uint64_t wc_feed_next (wc_feed_t *self);

/*  The epoch of the entry at next - 1 (the last delivered or filtered
    out); 0 when the feed has not seen one. */
uint64_t wc_feed_epoch (wc_feed_t *self);

/*  Before anything is delivered: the entry at next - 1 is known to be of
    epoch (a feed that ended there, resumed). The first run then asks the
    node whether its history still holds it, and ends with ECONFLICT when
    a failover rolled it back meanwhile. 0 does nothing. */
void wc_feed_resume_epoch (wc_feed_t *self, uint64_t epoch);

/*  When the stream last delivered a message (monotonic ms; the time of
    wc_feed_open before the first). */
int64_t wc_feed_heard_ms (wc_feed_t *self);

/*  Why the feed ended (after WALCAST_ERANGE or WALCAST_ECONFLICT), or "". */
const char *wc_feed_detail (wc_feed_t *self);

#endif
