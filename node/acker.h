/*  acker.h - a replica tells its upstream what it holds (ACK).

    One DEALER to the upstream's service port. ACK (id, epoch, seq, and
    the cluster id when there is one) goes out when seq moved, and at
    least every WC_ACKER_INTERVAL_MS so that the upstream knows the
    replica is current; no reply comes. A primary counts ACKs for writes
    that asked for acks and for --min-replicas (acks.h); a relay (a
    replica others follow) takes and ignores them. Fire-and-forget, like
    the beats to the broker: a full queue drops an ACK, and the next one
    says more.

    The one idea: ACK promptly only when someone waits. Each ACK costs
    the replica a send and the primary a turn of its loop, at every
    moved seq. So when seq moved the ACK goes at most once every
    WC_ACKER_GAP_US while the primary waits for ACKs (its stream said so,
    WC_ENTRIES_ACK_WANTED, for entries the last ACK did not cover: a
    write asking for acks waits on this gap), and at most once every
    WC_ACKER_RELAXED_US otherwise (nobody waits; the upstream's view of
    the replica is that much older at most).
*/
#ifndef WC_ACKER_H_INCLUDED
#define WC_ACKER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define WC_ACKER_INTERVAL_MS  100
#define WC_ACKER_GAP_US       1000
#define WC_ACKER_RELAXED_US   20000

typedef struct wc_acker wc_acker_t;

/*  To the upstream whose base port is at endpoint "tcp://HOST:P"; id is
    this node's; server_key the upstream's CURVE public key (Z85, or ""
    without CURVE). NULL when the socket cannot be made (logged). */
wc_acker_t *wc_acker_new (const char *endpoint, const char *id, const char *server_key);
void wc_acker_destroy (wc_acker_t **self_p);

/*  Send an ACK of seq in epoch, from a replica of cluster (0: none),
    when due; wanted is the last seq of the stream messages that asked for
    a prompt ACK (0: none did). Returns ms until the next is due. */
int wc_acker_tick (wc_acker_t *self, uint64_t epoch, uint64_t seq, uint64_t cluster,
                   uint64_t wanted);

/*  The rule wc_acker_tick follows: us since the last ACK went, whether
    seq (or epoch) moved since, whether the upstream waits for it (prompt);
    0 when an ACK is due now, else the ms until it is (at least 1). */
int wc_acker_due_ms (int64_t since_us, bool moved, bool prompt);

#endif
