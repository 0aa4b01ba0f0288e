/*  sock.c - ZeroMQ sockets set up the walcast way (see sock.h). */
#include <errno.h>
#include <string.h>
#include "sock.h"

#define S_HEARTBEAT_IVL_MS      1000
#define S_HEARTBEAT_TIMEOUT_MS  5000
#define S_KEEPALIVE_IDLE_S      5       /* SUB sockets: TCP keepalive instead */
#define S_KEEPALIVE_INTVL_S     1
#define S_KEEPALIVE_CNT         5

//  Messages of up to `largest` bytes that fit in budget.
static int
s_hwm (const wc_sock_spec_t *spec, size_t budget, size_t largest)
{
    size_t hwm = largest ? budget / largest : 0;
    if ((int) hwm < spec->min_hwm || hwm > 1000000)
        hwm = hwm > 1000000 ? 1000000 : (size_t) spec->min_hwm;
    return hwm < 1 ? 1 : (int) hwm;
}

/*  The process's CURVE (wc_sock_set_curve), or NULL. Set once at start,
    before any socket, by the main thread, which makes every socket. */
static wc_curve_t *s_curve;

static zsock_t *
s_new (const wc_sock_spec_t *spec)
{
    zsock_t *sock = zsock_new (spec->type);
    if (!sock)
        return NULL;
    zsock_set_linger (sock, 0);
    if (spec->type == ZMQ_SUB || spec->type == ZMQ_ROUTER) {
        /*  No ZMTP heartbeats where a peer can fill our incoming queue:
            when it is full libzmq stops reading the connection, so the
            peer's PONGs go unread and the heartbeat times out under a
            live peer. On a SUB the connection is then replaced under the
            stopped queue and the next read aborts the process (Assertion
            failed: _input_stopped, libzmq issue #3937); on a ROUTER (a
            node's service and catch-up ports) the peer is
            dropped, and the replies to what it had queued are lost: a
            client pipelining writes to a node whose disk was slow for
            5 s lost the replies to hundreds of applied writes. TCP
            keepalive notices a dead peer instead; the stream's own
            heartbeats a silent upstream, and requests' timeouts a
            silent node. */
        zsock_set_tcp_keepalive (sock, 1);
        zsock_set_tcp_keepalive_idle (sock, S_KEEPALIVE_IDLE_S);
        zsock_set_tcp_keepalive_intvl (sock, S_KEEPALIVE_INTVL_S);
        zsock_set_tcp_keepalive_cnt (sock, S_KEEPALIVE_CNT);
    }
    else {
        zsock_set_heartbeat_ivl (sock, S_HEARTBEAT_IVL_MS);
        zsock_set_heartbeat_timeout (sock, S_HEARTBEAT_TIMEOUT_MS);
    }
    zsock_set_maxmsgsize (sock, (int64_t) spec->max_in);
    zsock_set_rcvhwm (sock, s_hwm (spec, spec->in_budget ? spec->in_budget
                                                         : spec->budget, spec->max_in));
    zsock_set_sndhwm (sock, s_hwm (spec, spec->budget, spec->max_out));
    if (spec->type == ZMQ_ROUTER)
        zsock_set_router_mandatory (sock, 1);
    if (spec->type == ZMQ_XPUB)
        zsock_set_xpub_manual (sock, 1);
    return sock;
}

zsock_t *
wc_sock_bind (const wc_sock_spec_t *spec, const char *addr, int port,
              char *why, size_t why_size)
{
    zsock_t *sock = s_new (spec);
    if (!sock) {
        snprintf (why, why_size, "cannot create the %s socket: %s", spec->name,
                  zmq_strerror (zmq_errno ()));
        return NULL;
    }
    if (s_curve && wc_curve_serve (s_curve, sock, spec->name) != 0) {
        snprintf (why, why_size, "cannot make the %s socket a CURVE server: %s",
                  spec->name, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    if (zsock_bind (sock, "tcp://%s:%d", addr, port) == port)
        return sock;
    wc_sock_bind_why (spec->name, addr, port, zmq_errno (), why, why_size);
    zsock_destroy (&sock);
    return NULL;
}

void
wc_sock_bind_why (const char *name, const char *addr, int port, int err,
                  char *why, size_t why_size)
{
    if (err == EADDRINUSE)
        snprintf (why, why_size, "cannot bind the %s socket to %s:%d: the port is "
                  "in use (another walcast process?); stop it or choose another "
                  "port", name, addr, port);
    else
    if (err == EADDRNOTAVAIL || err == ENODEV)
        snprintf (why, why_size, "cannot bind the %s socket to %s:%d: no such "
                  "local address; give --bind an address of this machine",
                  name, addr, port);
    else
    if (err == EACCES)
        snprintf (why, why_size, "cannot bind the %s socket to %s:%d: permission "
                  "denied (ports below 1024 need privileges); choose another port",
                  name, addr, port);
    else
        snprintf (why, why_size, "cannot bind the %s socket to %s:%d: %s",
                  name, addr, port, zmq_strerror (err));
}

void
wc_sock_set_curve (wc_curve_t *curve)
{
    s_curve = curve;
}

wc_curve_t *
wc_sock_curve (void)
{
    return s_curve;
}

int
wc_sock_secure_client (zsock_t *sock, const char *endpoint, const char *server_key,
                       char *why, size_t why_size)
{
    if (!s_curve)
        return 0;
    if (!server_key || !wc_certs_is_key (server_key, strlen (server_key))) {
        snprintf (why, why_size, "no CURVE public key is known for %s: give the node "
                  "--curve-server (its upstream's public certificate) or "
                  "--curve-broker (the broker's), or let the broker name it", endpoint);
        return -1;
    }
    if (wc_certs_client (zsock_resolve (sock), wc_curve_keys (s_curve), server_key) != 0) {
        snprintf (why, why_size, "cannot set CURVE on the socket to %s: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

zsock_t *
wc_sock_connect (const wc_sock_spec_t *spec, const char *endpoint,
                 char *why, size_t why_size)
{
    return wc_sock_connect_to (spec, endpoint, NULL, why, why_size);
}

zsock_t *
wc_sock_connect_to (const wc_sock_spec_t *spec, const char *endpoint,
                    const char *server_key, char *why, size_t why_size)
{
    zsock_t *sock = s_new (spec);
    if (!sock) {
        snprintf (why, why_size, "cannot create the %s socket: %s", spec->name,
                  zmq_strerror (zmq_errno ()));
        return NULL;
    }
    if (wc_sock_secure_client (sock, endpoint, server_key, why, why_size) != 0) {
        zsock_destroy (&sock);
        return NULL;
    }
    if (zsock_connect (sock, "%s", endpoint) == 0)
        return sock;
    snprintf (why, why_size, "cannot connect the %s socket to %s: %s",
              spec->name, endpoint, zmq_strerror (zmq_errno ()));
    zsock_destroy (&sock);
    return NULL;
}
