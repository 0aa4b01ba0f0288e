/*  topology.c - the node table of a client handle (see topology.h).

    Two ideas:
    - Whatever a node or the broker tells us is untrusted and may be
      stale, so every update is a merge, field by field, into one table
      keyed by node id (or address, before the id is known), and every
      string is copied bounded and with control bytes masked.
    - Liveness and distance come from one mechanism, the PING: at most
      one in flight per node, its answer is both an RTT sample and proof
      of life, its silence for 2 s is the proof of death.
    - The table is bounded, and what fills it comes from the network (a
      TOPOLOGY with new ids, ENOTPRIMARY details with new addresses), so
      a full table recycles the slot of a node that is gone rather than
      grow: the socket count stays under libzmq's limit whatever peers
      send.
    - A node's CURVE key is part of where it is: a key that changes is
      a socket that is replaced, like an address that changes.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>
#include "walcast.h"
#include "addr.h"
#include "topology.h"

/*  Socket options of every client socket. */
#define S_SOCKET_HWM        100000      /* large, so a window of writes never blocks */
#define S_HEARTBEAT_IVL     1000        /* ZMTP heartbeats (ms) */
#define S_HEARTBEAT_TTL     60000       /* silence that drops a connection */
#define S_KEEPALIVE_IDLE_S  5           /* TCP keepalive: a dead host */
#define S_KEEPALIVE_INTVL_S 1
#define S_KEEPALIVE_CNT     5

struct wc_topology {
    void      *ctx;         /* zmq context of the handle (not owned) */
    bool       curve;       /* keys holds our key pair */
    wc_certs_keys_t keys;
    char       default_key [41];    /* server key of nodes without one, "" none */
    wc_peer_t *nodes;       /* the table */
    size_t     size;
    size_t     cap;
    uint64_t   sock_ids;    /* sockets opened so far (wc_peer_t.sock_id) */
};

//  Same bytes as the NUL-terminated string?
static bool
s_bytes_eq (const wc_bytes_t *bytes, const char *str)
{
    size_t len = strlen (str);
    return bytes->len == len && (len == 0 || memcmp (bytes->ptr, str, len) == 0);
}

int
wc_topology_endpoint (const char *addr, int offset, char *endpoint,
                      size_t size, bool *ipv6_p)
{
    //  One grammar for every address (protocol/addr.h), with room for
    //  the port plus offset
    int port;
    if (!addr || offset < 0 || offset > 2
    ||  !wc_addr_check (addr, strlen (addr), 65535 - offset, &port))
        return WALCAST_EINVAL;
    size_t host_len = (size_t) (strrchr (addr, ':') - addr);
    int n = snprintf (endpoint, size, "tcp://%.*s:%d", (int) host_len, addr,
                      port + offset);
    if (n < 0 || (size_t) n >= size)
        return WALCAST_EINVAL;
    if (ipv6_p)
        *ipv6_p = addr [0] == '[';
    return 0;
}

void *
wc_topology_socket (void *ctx, int type, const char *endpoint, bool ipv6,
                    int rcvhwm, bool immediate, const wc_certs_keys_t *keys,
                    const char *server_key, int *err)
{
    void *sock = zmq_socket (ctx, type);
    if (!sock) {
        *err = WALCAST_EUNAVAILABLE;
        return NULL;
    }
    int linger = 0;
    int hwm = S_SOCKET_HWM;
    int rhwm = rcvhwm > 0 ? rcvhwm : S_SOCKET_HWM;
    /*  No ZMTP heartbeats on a SUB (see runtime/sock.c: with a full
        queue, a heartbeat timeout makes libzmq abort the process at the
        next read, issue #3937). Elsewhere they time out after a minute
        only: a node whose request queue from us is full (a slow disk
        under a pipeline) reads nothing of ours, PINGs included, and
        answers nothing until it catches up; a 5 s timeout dropped the
        connection, and the replies to writes it then applied, under
        requests still within their own timeouts, which are what notices
        a silent node. TCP keepalive notices a dead host on every socket. */
    bool sub = type == ZMQ_SUB;
    int ivl = sub ? 0 : S_HEARTBEAT_IVL;
    int ttl = sub ? 0 : S_HEARTBEAT_TTL;
    int keepalive = 1, idle = S_KEEPALIVE_IDLE_S, intvl = S_KEEPALIVE_INTVL_S,
        cnt = S_KEEPALIVE_CNT;
    int v6 = ipv6 ? 1 : 0;
    int imm = immediate ? 1 : 0;
    int64_t maxmsg = WC_MAX_MESSAGE;
    if (zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger)
    ||  zmq_setsockopt (sock, ZMQ_SNDHWM, &hwm, sizeof hwm)
    ||  zmq_setsockopt (sock, ZMQ_RCVHWM, &rhwm, sizeof rhwm)
    ||  zmq_setsockopt (sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl)
    ||  zmq_setsockopt (sock, ZMQ_HEARTBEAT_TIMEOUT, &ttl, sizeof ttl)
    ||  zmq_setsockopt (sock, ZMQ_HEARTBEAT_TTL, &ttl, sizeof ttl)
    ||  zmq_setsockopt (sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg)
    ||  zmq_setsockopt (sock, ZMQ_IPV6, &v6, sizeof v6)
    ||  zmq_setsockopt (sock, ZMQ_IMMEDIATE, &imm, sizeof imm)
    ||  zmq_setsockopt (sock, ZMQ_TCP_KEEPALIVE, &keepalive, sizeof keepalive)
    ||  zmq_setsockopt (sock, ZMQ_TCP_KEEPALIVE_IDLE, &idle, sizeof idle)
    ||  zmq_setsockopt (sock, ZMQ_TCP_KEEPALIVE_INTVL, &intvl, sizeof intvl)
    ||  zmq_setsockopt (sock, ZMQ_TCP_KEEPALIVE_CNT, &cnt, sizeof cnt)
    ||  (keys && wc_certs_client (sock, keys, server_key))) {
        zmq_close (sock);
        *err = WALCAST_EUNAVAILABLE;
        return NULL;
    }
    if (zmq_connect (sock, endpoint)) {
        *err = errno == EINVAL ? WALCAST_EINVAL : WALCAST_EUNAVAILABLE;
        zmq_close (sock);
        return NULL;
    }
    return sock;
}

//  Close a node's socket. Its monitor (client/dropwatch.c), if any, is
//  stopped first: zmq_close only hands the socket to libzmq's reaper, and
//  until the reaper stops the monitor an event sent to it, with our end
//  of it closed meanwhile, would block libzmq's I/O thread for good.
static void
s_close_node_sock (void *sock)
{
    zmq_socket_monitor (sock, NULL, 0);
    zmq_close (sock);
}

//  (Re)connect node's DEALER to its endpoint; sock stays NULL on failure,
//  and when its key and ours do not go together (curve_refusal says so:
//  not an error, the node stays in the table, unreachable, and a
//  request to it fails saying which key is missing).
static int
s_node_open (wc_topology_t *self, wc_peer_t *node)
{
    if (node->sock) {
        s_close_node_sock (node->sock);
        node->sock = NULL;
    }
    node->sock_id = 0;
    node->curve_refusal = (uint8_t) wc_topology_curve_check (self, node->server_key);
    if (node->curve_refusal != WC_CURVE_OK) {
        node->reachable = false;
        return 0;
    }
    int err = 0;
    node->sock = wc_topology_socket (self->ctx, ZMQ_DEALER, node->endpoint,
                                     node->ipv6, 0, true,
                                     self->curve ? &self->keys : NULL,
                                     node->server_key, &err);
    if (node->sock)
        node->sock_id = ++self->sock_ids;
    return node->sock ? 0 : err;
}

void
wc_topology_set_curve (wc_topology_t *self, const wc_certs_keys_t *keys,
                       const char *default_key)
{
    self->curve = keys != NULL;
    if (keys)
        self->keys = *keys;
    else
        memset (&self->keys, 0, sizeof self->keys);
    snprintf (self->default_key, sizeof self->default_key, "%s",
              default_key ? default_key : "");
}

int
wc_topology_curve_check (wc_topology_t *self, const char *server_key)
{
    if (self->curve && !server_key [0])
        return WC_CURVE_NO_SERVER_KEY;
    if (!self->curve && server_key [0])
        return WC_CURVE_NO_CERT;
    return WC_CURVE_OK;
}

void
wc_topology_refusal_say (int refusal, const char *name, const char *addr,
                         char *buf, size_t size)
{
    char who [2 * WC_MAX_ADDR + 8];
    if (strcmp (name, addr) == 0)
        snprintf (who, sizeof who, "%s", addr);
    else
        snprintf (who, sizeof who, "%s (%s)", name, addr);
    if (refusal == WC_CURVE_NO_SERVER_KEY)
        snprintf (buf, size, "no CURVE key is known for node %s: give its public "
                  "certificate with --curve-server (walcast_set_curve_server), or "
                  "reach it through a broker that lists its key", who);
    else
    if (refusal == WC_CURVE_NO_CERT)
        snprintf (buf, size, "node %s has a CURVE key and this client has no key "
                  "pair: give --curve-cert SECRET_CERT (walcast_set_curve_cert)", who);
    else
    if (size > 0)
        buf [0] = 0;
}

void
wc_topology_refusal (wc_topology_t *self, size_t index, char *buf, size_t size)
{
    const wc_peer_t *node = wc_topology_peer (self, index);
    if (!node) {
        wc_topology_refusal_say (WC_CURVE_OK, "", "", buf, size);
        return;
    }
    wc_topology_refusal_say (node->curve_refusal, node->id [0] ? node->id : node->addr,
                             node->addr, buf, size);
}

wc_topology_t *
wc_topology_new (void *ctx)
{
    wc_topology_t *self = calloc (1, sizeof *self);
    if (self)
        self->ctx = ctx;
    return self;
}

void
wc_topology_destroy (wc_topology_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wc_topology_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++)
        if (self->nodes [i].sock)
            s_close_node_sock (self->nodes [i].sock);
    free (self->nodes);
    free (self);
    *self_p = NULL;
}

size_t
wc_topology_size (wc_topology_t *self)
{
    return self->size;
}

wc_peer_t *
wc_topology_peer (wc_topology_t *self, size_t index)
{
    return index < self->size ? &self->nodes [index] : NULL;
}

size_t
wc_topology_find (wc_topology_t *self, const char *addr)
{
    for (size_t i = 0; i < self->size; i++)
        if (strcmp (self->nodes [i].addr, addr) == 0)
            return i;
    return WC_SELECT_NONE;
}

//  May node i's slot go to a new node? Not when the application added
//  it, nor while the TOPOLOGY being applied lists it; a node the broker
//  described must be down and gone from its last TOPOLOGY, any other
//  node must have stopped answering.
static bool
s_evictable (const wc_peer_t *node)
{
    if (node->pinned || node->seen)
        return false;
    if (node->from_broker)
        return !node->listed && !node->up;
    return !node->reachable;
}

int
wc_topology_add (wc_topology_t *self, const char *addr, bool pinned,
                 size_t *index, bool *replaced)
{
    if (replaced)
        *replaced = false;
    //  A node's base port P leaves room for P+1 and P+2
    if (!addr || !wc_addr_check (addr, strlen (addr), 65533, NULL))
        return WALCAST_EINVAL;
    wc_peer_t node;
    memset (&node, 0, sizeof node);
    int rc = wc_topology_endpoint (addr, 0, node.endpoint, sizeof node.endpoint,
                                   &node.ipv6);
    if (rc)
        return rc;
    size_t found = wc_topology_find (self, addr);
    if (found != WC_SELECT_NONE) {
        if (pinned)
            self->nodes [found].pinned = true;
        *index = found;
        return 0;
    }
    //  Where it goes: a new slot while there is room, else a gone one's.
    size_t slot = self->size;
    if (self->size == WC_TOPOLOGY_MAX) {
        slot = WC_SELECT_NONE;
        for (size_t i = 0; i < self->size && slot == WC_SELECT_NONE; i++)
            if (s_evictable (&self->nodes [i]))
                slot = i;
        if (slot == WC_SELECT_NONE)
            return WALCAST_ETOOBIG;
    }
    else
    if (self->size == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 4;
        if (cap > WC_TOPOLOGY_MAX)
            cap = WC_TOPOLOGY_MAX;
        wc_peer_t *nodes = realloc (self->nodes, cap * sizeof *nodes);
        if (!nodes)
            return WALCAST_ENOMEM;
        self->nodes = nodes;
        self->cap = cap;
    }
    snprintf (node.addr, sizeof node.addr, "%s", addr);    // length checked
    node.up = true;
    node.reachable = true;
    node.pinned = pinned;
    node.rtt_ms = -1;
    snprintf (node.server_key, sizeof node.server_key, "%s", self->default_key);
    rc = s_node_open (self, &node);
    if (rc)
        return rc;
    if (slot < self->size) {
        if (self->nodes [slot].sock)
            s_close_node_sock (self->nodes [slot].sock);
        if (replaced)
            *replaced = true;
    }
    else
        self->size++;
    self->nodes [slot] = node;
    *index = slot;
    return 0;
}

void
wc_topology_reset (wc_topology_t *self, size_t index)
{
    if (index >= self->size)
        return;
    wc_peer_t *node = &self->nodes [index];
    s_node_open (self, node);       // on failure the next request retries
    node->ping_rid = 0;
    node->ping_sent_us = 0;
    node->warm = false;
}

//  Node is now at addr, with CURVE key key: a fresh socket, and nothing
//  known of its distance. 0, or WALCAST_EINVAL for a bad address.
static int
s_node_move (wc_topology_t *self, wc_peer_t *node, const char *addr,
             const char *key)
{
    char endpoint [sizeof node->endpoint];
    bool ipv6;
    if (wc_topology_endpoint (addr, 0, endpoint, sizeof endpoint, &ipv6))
        return WALCAST_EINVAL;
    snprintf (node->addr, sizeof node->addr, "%s", addr);
    memcpy (node->endpoint, endpoint, sizeof endpoint);
    node->ipv6 = ipv6;
    snprintf (node->server_key, sizeof node->server_key, "%s", key);
    node->reachable = true;
    s_node_open (self, node);
    node->ping_rid = 0;
    node->ping_sent_us = 0;
    node->rtt_ms = -1;          // another place, another distance
    node->warm = false;
    return 0;
}

void
wc_topology_begin (wc_topology_t *self)
{
    for (size_t i = 0; i < self->size; i++)
        self->nodes [i].seen = false;
}

int
wc_topology_apply (wc_topology_t *self, const wc_node_info_t *info,
                   size_t *index, bool *moved)
{
    *moved = false;
    char addr [WC_MAX_ADDR + 1];
    wc_bytes_printable (addr, sizeof addr, &info->addr);
    if (info->id.len == 0 || info->id.len > WC_MAX_ID)
        return WALCAST_EPROTO;

    //  Find it: by id, else an unnamed node at its address.
    size_t found = WC_SELECT_NONE;
    for (size_t i = 0; i < self->size && found == WC_SELECT_NONE; i++)
        if (s_bytes_eq (&info->id, self->nodes [i].id))
            found = i;
    for (size_t i = 0; i < self->size && found == WC_SELECT_NONE; i++)
        if (self->nodes [i].id [0] == 0 && strcmp (self->nodes [i].addr, addr) == 0)
            found = i;

    //  Its key: the entry's, else the default (a node without CURVE)
    char key [sizeof self->nodes [0].server_key];
    wc_bytes_printable (key, sizeof key, &info->curve_key);
    if (!key [0])
        snprintf (key, sizeof key, "%s", self->default_key);

    //  Its address held by another node of this TOPOLOGY: a machine
    //  replaced under a new id, both listed. The live one keeps it.
    size_t other = found == WC_SELECT_NONE ? wc_topology_find (self, addr)
                                           : WC_SELECT_NONE;
    if (other != WC_SELECT_NONE && self->nodes [other].id [0] != 0
    &&  self->nodes [other].seen && self->nodes [other].up && !info->up)
        return WC_TOPOLOGY_SKIPPED;
    if (found == WC_SELECT_NONE) {
        int rc = wc_topology_add (self, addr, false, &found, moved);
        if (rc)
            return rc == WALCAST_EINVAL ? WALCAST_EPROTO : rc;
    }
    wc_peer_t *node = &self->nodes [found];
    if (strcmp (node->addr, addr) != 0 || strcmp (node->server_key, key) != 0) {
        //  It moved, or has another key: follow it with a fresh socket.
        if (s_node_move (self, node, addr, key))
            return WALCAST_EPROTO;
        *moved = true;
    }
    wc_bytes_printable (node->id, sizeof node->id, &info->id);
    wc_bytes_printable (node->region, sizeof node->region, &info->region);
    wc_bytes_printable (node->primary, sizeof node->primary, &info->primary);
    node->role = info->role == WC_ROLE_PRIMARY || info->role == WC_ROLE_REPLICA
               ? info->role : 0;
    node->epoch = info->epoch;
    node->applied_seq = info->applied_seq;
    node->lag = info->lag;
    node->lag_ms = info->lag_ms;
    node->lag_known = true;
    node->up = info->up;
    node->flags = info->flags;
    node->silent_ms = info->silent_ms;
    node->from_broker = true;
    node->seen = true;
    *index = found;
    return 0;
}

void
wc_topology_end (wc_topology_t *self)
{
    for (size_t i = 0; i < self->size; i++) {
        wc_peer_t *node = &self->nodes [i];
        if (node->from_broker && !node->seen)
            node->up = false;
        node->listed = node->seen;
        node->seen = false;
    }
}

double
wc_topology_ewma (double avg, double sample)
{
    if (avg < 0)
        return sample;
    return 0.8 * avg + 0.2 * sample;
}

bool
wc_topology_pong (wc_peer_t *node, const wc_msg_t *pong, int64_t now_us,
                  bool timely)
{
    bool again = false;
    if (node->ping_rid != 0 && pong->rid == node->ping_rid) {
        double sample = (double) (now_us - node->ping_sent_us) / 1000.0;
        if (!node->warm)
            again = true;           // timed the handshakes: ask again
        else
        if (timely)
            node->rtt_ms = wc_topology_ewma (node->rtt_ms, sample >= 0 ? sample : 0);
        else
        if (node->rtt_ms < 0)
            again = true;           // read late, and no RTT yet: ask again
        node->ping_rid = 0;
    }
    node->warm = true;
    node->key_refusals = 0;
    node->pong_us = now_us;
    node->reachable = true;
    node->epoch = pong->u.pong.epoch;
    node->applied_seq = pong->u.pong.seq;
    node->lag_ms = pong->u.pong.lag_ms;
    //  Identity, when the node sends it (older nodes do not).
    if (pong->u.pong.role == WC_ROLE_PRIMARY || pong->u.pong.role == WC_ROLE_REPLICA)
        node->role = pong->u.pong.role;
    if (pong->u.pong.id.len > 0 && pong->u.pong.id.len <= WC_MAX_ID) {
        wc_bytes_printable (node->id, sizeof node->id, &pong->u.pong.id);
        wc_bytes_printable (node->region, sizeof node->region, &pong->u.pong.region);
    }
    return again;
}

void
wc_topology_status (wc_peer_t *node, const wc_msg_t *status)
{
    if (status->u.status.role == WC_ROLE_PRIMARY
    ||  status->u.status.role == WC_ROLE_REPLICA)
        node->role = status->u.status.role;
    node->epoch = status->u.status.epoch;
    node->applied_seq = status->u.status.applied_seq;
    node->lag_ms = status->u.status.lag_ms;
    wc_bytes_printable (node->primary, sizeof node->primary,
                        &status->u.status.primary);
    if (node->id [0] == 0
    &&  status->u.status.id.len > 0 && status->u.status.id.len <= WC_MAX_ID) {
        wc_bytes_printable (node->id, sizeof node->id, &status->u.status.id);
        wc_bytes_printable (node->region, sizeof node->region,
                            &status->u.status.region);
    }
    node->reachable = true;
}

bool
wc_topology_ping_due (wc_peer_t *node, int64_t now_us)
{
    if (node->ping_rid != 0) {
        if (now_us - node->ping_sent_us < WC_PING_DEAD_US)
            return false;
        node->reachable = false;    // silent for 2 s
        node->lapses++;
        node->ping_rid = 0;
        return true;
    }
    return node->ping_sent_us == 0
        || now_us - node->ping_sent_us >= WC_PING_INTERVAL_US;
}

void
wc_topology_to_select (wc_topology_t *self, wc_select_node_t *out,
                       bool broker_fresh)
{
    for (size_t i = 0; i < self->size; i++) {
        const wc_peer_t *node = &self->nodes [i];
        out [i].role = node->role;
        out [i].region = node->region;
        out [i].epoch = node->epoch;
        out [i].up = broker_fresh ? node->up : true;
        out [i].reachable = node->reachable;
        out [i].rtt_ms = node->rtt_ms;
    }
}
