/*  primary.h - the primary role: group commit of writes, and the replies
    that wait for their sync.

    The node's loop takes a batch of requests off the service socket and
    hands the writes to wc_primary_commit, which gives each the next seq,
    stages the batch in the storage engine and commits it with one write.
    Each write's outcome is recorded in its request for the loop to
    answer: refused, or acknowledged once the entry is applied, which
    under --fsync always is when the syncer has made it durable. Such
    replies wait here (wc_primary_hold) until then (wc_primary_release).
*/
#ifndef WC_PRIMARY_H_INCLUDED
#define WC_PRIMARY_H_INCLUDED

#include "node.h"

/*  A write that asks for acks without a timeout waits this long (ms). */
#define WC_PRIMARY_ACK_TIMEOUT_MS  5000

wc_primary_t *wc_primary_new (wc_node_t *node);

/*  Free the role; replies still waiting are dropped (their clients time
    out: the outcome of those writes is unknown to them). */
void wc_primary_destroy (wc_primary_t **self_p);

/*  Commit the PUT/DEL requests among reqs[0..n). Each write's seq and
    epoch are set, and its rc: 0, or the error that refused it (ENOSPC,
    EIO when the log could not be written; the writes before it in the
    batch that were written stand). */
void wc_primary_commit (wc_primary_t *self, wc_request_t *reqs, size_t n);

/*  Keep the reply to a committed write that is not applied yet. */
void wc_primary_hold (wc_primary_t *self, wc_request_t *req);

/*  Encode the WRITES_OK of a batch whose writes ended at last_seq: taken
    of them, acked by that many replicas of the wanted ones (0: none
    asked), the rest refused with refused (0: none). */
int wc_primary_writes_ok (uint64_t rid, uint64_t epoch, uint64_t last_seq, uint32_t taken,
                          uint32_t acked, uint32_t wanted, int refused,
                          msgpack_sbuffer *out);

/*  Send the WRITE_OK of every held write now applied. */
void wc_primary_release (wc_primary_t *self);

/*  The node leaves the primary role: answer every held write now, with
    ENOTREPLICATED (durable here, not confirmed by replicas: the new
    primary may not hold it; resubmitting it is safe). */
void wc_primary_abandon (wc_primary_t *self);

/*  A replica's ACK arrived (service socket). An ACK of a newer epoch
    than ours means another node is primary now: this one is fenced and
    takes no more writes. */
void wc_primary_on_ack (wc_primary_t *self, const wc_msg_t *ack);

/*  Why writes are refused now (0: they are not): EFENCED once an ACK
    showed a newer epoch, EUNAVAILABLE when the node diverged,
    ENOTPRIMARY while the node waits for the broker or hands over, or
    EFEWREPLICAS while fewer than --min-replicas replicas are current,
    ENOSPC or EWRITE while the epoch cannot begin (its history cannot be
    written).
    wc_primary_detail is the refusal's detail: the switchover target's
    HOST:PORT (or "") for ENOTPRIMARY, "current=C of K" for EFEWREPLICAS,
    the log's failure ("cannot write wal-...: Read-only file system") for
    EWRITE. */
int wc_primary_refusal (wc_primary_t *self);
const char *wc_primary_detail (wc_primary_t *self, int rc);
bool wc_primary_fenced (const wc_primary_t *self);

/*  Switchover (HANDOVER from the broker): stop taking writes for target
    (target_id "" cancels); wc_primary_handed_over is then true once the
    target holds everything we applied, *seq that last seq (0 until then,
    and when we applied nothing). */
void wc_primary_handover (wc_primary_t *self, const char *target_id,
                          const char *target_addr);
bool wc_primary_handed_over (wc_primary_t *self, uint64_t *seq);

/*  A beat went out to the broker, saying (handed_over) the target holds
    everything or not: once one did, the broker may promote it, so the
    hand-over no longer ends by itself when the broker falls silent (it
    does before: see wc_primary_tick). */
void wc_primary_handover_sent (wc_primary_t *self, bool handed_over);

/*  The replicas' ACKs (for /metrics). */
const struct wc_acks *wc_primary_acks (const wc_primary_t *self);

/*  The broker says replica id was forgotten (`walcast forget`: removed
    for good): drop it from the ACK table and so from /metrics, logged
    once (told again, it is no longer there). */
void wc_primary_forget (wc_primary_t *self, const wc_bytes_t *id);

/*  Writes whose reply is held. */
size_t wc_primary_held (const wc_primary_t *self);

/*  True while a write waits for replicas' ACKs, or the last commit took
    one that asks for them (its entries may be published before its reply
    is held): the stream then asks replicas to ACK promptly
    (WC_ENTRIES_ACK_WANTED). */
bool wc_primary_awaits_acks (const wc_primary_t *self);

/*  Periodic work: held replies whose acks came or whose time passed, and
    a hand-over whose broker fell silent (S_HANDOVER_QUIET_MS without a
    HANDOVER) before the target caught up, which ends here. Returns ms
    until it next needs to run. */
int wc_primary_tick (wc_primary_t *self);

#endif
