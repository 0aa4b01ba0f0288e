/*  acker.h - a replica tells its upstream what it holds (ACK).

    One DEALER to the upstream's service port. ACK (id, epoch, seq, and
    the cluster id when there is one) goes
    out when seq moved, but at most once every WC_ACKER_GAP_US (each ACK
    costs the primary a turn of its loop: a replica that took a batch a
    turn sent it as many ACKs as stream messages), and at least every
    WC_ACKER_INTERVAL_MS so that the upstream knows the replica is
    current; no reply comes. A primary
    counts ACKs for writes that asked for acks and for --min-replicas
    (acks.h); a relay (a replica others follow) takes and ignores them.
    Fire-and-forget, like the beats to the broker: a full queue drops an
    ACK, and the next one says more.
*/
#ifndef WC_ACKER_H_INCLUDED
#define WC_ACKER_H_INCLUDED

#include <stdint.h>

#define WC_ACKER_INTERVAL_MS  100
#define WC_ACKER_GAP_US       1000

typedef struct wc_acker wc_acker_t;

/*  To the upstream whose base port is at endpoint "tcp://HOST:P"; id is
    this node's; server_key the upstream's CURVE public key (Z85, or ""
    without CURVE). NULL when the socket cannot be made (logged). */
wc_acker_t *wc_acker_new (const char *endpoint, const char *id, const char *server_key);
void wc_acker_destroy (wc_acker_t **self_p);

/*  Send an ACK of seq in epoch, from a replica of cluster (0: none),
    when due. Returns ms until the next is due. */
int wc_acker_tick (wc_acker_t *self, uint64_t epoch, uint64_t seq, uint64_t cluster);

#endif
