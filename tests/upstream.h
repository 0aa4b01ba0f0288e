/*  upstream.h - a scripted upstream for a real replica to follow.

    The three sockets of a node (service, stream, catch-up) bound on a
    test's spare ports, P, P+1 and P+2, holding a history of seqs 1..last
    of epoch 1 (key cluster_key (seq), value cluster_value (seq, 1)) in
    the cluster it says it has. It answers EPOCH_END and FETCH on the
    catch-up port as a 0.7 node does (refusing a FETCH of another cluster
    with ECONFLICT), publishes its newest entry and a heartbeat on the
    stream when told, with the flags it is given, and reads the ACKs the
    replica sends to its service port. The test drives it from its own thread, between its
    checks: nothing runs behind its back.

        upstream_t up;
        upstream_open (&up, ctx, port, 5, id);
        ... cluster_add (c, "r1", "127.0.0.1:PORT", ...) ...
        upstream_run_until (c, r, &up, 5, NULL, 0, 20000);
        upstream_close (&up);
*/
#ifndef WC_TEST_UPSTREAM_H_INCLUDED
#define WC_TEST_UPSTREAM_H_INCLUDED

#include <stdint.h>
#include <msgpack.h>
#include "cluster.h"

typedef struct {
    void           *service, *pub, *catchup;    /* P, P+1, P+2 */
    uint64_t        last;                       /* seqs 1..last are held */
    uint64_t        cluster;                    /* the id it says it has */
    uint64_t        flags;                      /* its stream ENTRIES' (0.9) */
    msgpack_sbuffer out;
} upstream_t;

/*  Bind the three sockets in ctx at port, port + 1, port + 2 (fails the
    test when one cannot be bound). */
void upstream_open (upstream_t *self, void *ctx, int port, uint64_t last, uint64_t cluster);

/*  Close the sockets and free what the upstream holds. */
void upstream_close (upstream_t *self);

/*  Publish the newest entry as a stream ENTRIES, and a heartbeat, both
    with the upstream's cluster id. */
void upstream_publish (upstream_t *self);

/*  Answer what waits on the catch-up port. */
void upstream_serve (upstream_t *self);

/*  The next message on the service port, up to timeout_ms: 1 with *seq
    when it is an ACK, 0 when none came, -1 when it is something else. */
int upstream_ack (upstream_t *self, int timeout_ms, uint64_t *seq);

/*  Be the upstream (publish, serve, every 20 ms) until node r is at seq
    want, or has a log line starting with prefix after mark when prefix
    is not NULL, or timeout_ms passed. 0 when done, -1 otherwise. */
int upstream_run_until (cluster_t *c, int r, upstream_t *fake, uint64_t want,
                        const char *prefix, long mark, int timeout_ms);

#endif
