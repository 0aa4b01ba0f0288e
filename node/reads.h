/*  reads.h - answer reads on the service socket: GET, PING, STATUS, DIGEST.

    Either role serves reads. A GET may ask for a minimum seq (a client's
    session token) and a maximum staleness; a node that cannot give that
    yet either parks the GET until its applied seq arrives (up to the
    GET's wait) or answers ESTALE at once, so the client can try another
    node.
*/
#ifndef WC_READS_H_INCLUDED
#define WC_READS_H_INCLUDED

#include "node.h"

typedef struct wc_reads wc_reads_t;

wc_reads_t *wc_reads_new (wc_node_t *node);

/*  Frees parked GETs without answering them. */
void wc_reads_destroy (wc_reads_t **self_p);

/*  Answer a decoded read request (or park it). Returns 0, or
    WALCAST_EPROTO when req is not a read (nothing was sent). */
int wc_reads_answer (wc_reads_t *self, wc_request_t *req);

/*  Answer parked GETs whose seq has been applied or whose wait is over.
    Returns ms until the next wait ends (1000 when none is parked). */
int wc_reads_tick (wc_reads_t *self);

#endif
