/*  broker.h - walcast-broker: the directory of nodes and the cluster's
    primary, served on two sockets.

    main.c fills a wc_broker_config_t and calls wc_broker_new and
    wc_broker_run. The broker binds, at base port B:
      B    ROUTER  nodes send REGISTER (answered with a TOPOLOGY) and
                   NODE_HEARTBEAT; either is answered with an ERROR when
                   refused (nodeinfo.h, directory.h), and with the
                   directive the node must follow when it has one
                   (failover.h: PROMOTE, FOLLOW, HANDOVER); clients send
                   TOPOLOGY_GET and get a TOPOLOGY back, and SWITCHOVER,
                   answered when it is over (SWITCHOVER_DONE or ERROR);
      B+1  XPUB    [topic "topology"][TOPOLOGY, rid 0], pushed at once
                   when the directory's version changes and at least
                   once a second anyway; only the subscriptions the
                   protocol defines are kept (publisher.h).
    The cluster's epoch and primary are kept in --data DIR (state.h),
    saved before any directive that depends on them goes out; without
    --data they live in memory only. The directory itself is never
    saved: after a restart the nodes' heartbeats (every 500 ms) rebuild
    it within a second.
*/
#ifndef WC_BROKER_H_INCLUDED
#define WC_BROKER_H_INCLUDED

#include <stdint.h>
#include "wc_limits.h"

typedef struct {
    char bind [WC_MAX_ADDR + 1];   /* address to bind, default 127.0.0.1 */
    int  port;                     /* base port B; B+1 is the PUB */
    int  node_timeout_ms;          /* silence after which a node is down */
    int  failover_timeout_ms;      /* the primary silent this long is replaced */
    char data_dir [1024];          /* where the cluster state is kept; "": memory */
    char region_priority [1024];   /* "R1,R2,...": failover ties; "": none */
    int  http_port;                /* status page (statuspage.h); 0: none */
    int  metrics_port;             /* serve /metrics here; 0: not */
} wc_broker_config_t;

typedef struct wc_broker wc_broker_t;

/*  Bind the sockets. Returns the broker, or NULL with the cause and the
    remedy in why (for the operator: "cannot start: why"). */
wc_broker_t *wc_broker_new (const wc_broker_config_t *cfg, char *why, size_t why_size);

/*  Close the sockets and free the directory; sets *self_p to NULL. */
void wc_broker_destroy (wc_broker_t **self_p);

/*  Serve until SIGTERM or SIGINT (installed here) or wc_broker_stop.
    Returns 0 after a clean stop, WALCAST_EUNAVAILABLE when polling failed. */
int wc_broker_run (wc_broker_t *self);

/*  Ask the running loop to stop (async-signal-safe). */
void wc_broker_stop (void);

/*  Change the failover timeout of a running broker (SIGHUP): 0, or
    WALCAST_EINVAL when it is shorter than its node timeout. */
int wc_broker_set_failover_timeout (wc_broker_t *self, int failover_timeout_ms);

#endif
