/*  broker.c - the broker's loop: one thread, one ROUTER, one XPUB
    (publisher.c), two timers.

    Each turn polls the ROUTER and the XPUB until the next timer is due,
    then:

    1. takes up to S_BATCH messages off the ROUTER without blocking. A
       REGISTER or NODE_HEARTBEAT updates the directory (a REGISTER is
       answered with the TOPOLOGY), or is refused with an ERROR that says
       why (a field at fault, nodeinfo.c: the directory only ever holds
       nodes a client can use; a full directory); an admitted one goes to
       failover.c, and the directive it decides (PROMOTE, FOLLOW,
       HANDOVER) is sent back as one more reply, and to the primary the
       FORGET of a node forgotten lately (below). A TOPOLOGY_GET is
       answered with the whole directory; a SWITCHOVER is checked and
       parked until failover.c says how it ended (one at a time); a
       FORGET drops a node that is down; anything else is counted and
       answered with an ERROR, as a node answers it; then takes the
       subscriptions waiting on the XPUB;
    2. ticks the directory and failover.c (every tenth of the node
       timeout, at most every 100 ms) so silent nodes go down, a silent
       primary is replaced, a switchover times out; answers the parked
       SWITCHOVER when it has ended;
    3. pushes the topology on the XPUB when the version moved during the
       turn, or a second has passed since the last push. Changes that
       arrive together (a restarted broker hearing from every node at
       once) are pushed once, with the latest version: subscribers may see
       the version jump by more than one.

    Frames on the ROUTER are [envelope...][body], as on a node's service
    socket: every frame before the last is echoed on the reply, so both
    DEALER and REQ peers work. Every message is untrusted: it is size
    limited by the socket (S_MAX_REQUEST), decoded and checked by the
    codec, and the directory stays bounded (WC_MAX_NODES). What the broker
    queues for a peer is bounded in bytes (S_RCVHWM, S_SNDHWM): a peer
    that does not read its replies loses them, not the broker its memory.
    Subscriptions on the XPUB are taken in the same turn (publisher.c).
*/
#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include "broker.h"
#include "clock.h"
#include "codec.h"
#include "directory.h"
#include "failover.h"
#include "log.h"
#include "nodeinfo.h"
#include "notify.h"
#include "publisher.h"
#include "request.h"
#include "roles.h"
#include "roster.h"
#include "scrape.h"
#include "signals.h"
#include "sock.h"
#include "state.h"
#include "statuspage.h"

/*  Largest request: a REGISTER with every string at its limit is about
    720 bytes. A larger frame makes libzmq drop the peer's connection. */
#define S_MAX_REQUEST   WC_MAX_BROKER_REQUEST

/*  Largest reply: a whole TOPOLOGY. */
#define S_MAX_REPLY     WC_DIRECTORY_MAX_TOPOLOGY

/*  Queues per peer, in bytes. libzmq's HWMs count messages, so each is a
    byte budget divided by the largest message of its queue: requests in,
    256 KiB / 4 KiB = 64; replies out, 4 MiB / 712 KiB = 5. A peer that
    sends requests without reading the replies loses the replies past
    that (ROUTER_MANDATORY: the send fails, is counted and dropped). */
#define S_RCVHWM        ((256 * 1024) / S_MAX_REQUEST)
#define S_SNDHWM        ((4 * 1024 * 1024) / S_MAX_REPLY)
_Static_assert (S_RCVHWM >= 1 && S_SNDHWM >= 1, "a HWM of 0 means no limit");

#define S_BATCH         1000           /* messages handled per turn */
#define S_PUSH_MS       1000           /* push at least this often */
#define S_REFUSED_LOG_MS 10000         /* warn about refused nodes this often */
#define S_SAVE_LOG_MS   10000          /* say that saving fails this often */
#define S_SWITCHOVER_MS 10000          /* a switchover not done by then is cancelled */
#define S_FORGET_BEATS  3              /* primary's beats that get each FORGET */
#define S_FORGET_MAX    16             /* FORGETs waiting for them; the oldest gives way */

/*  A node forgotten, to be told to the primary. */
typedef struct {
    char     id [WC_MAX_ID + 1];
    int      beats;                     /* of the primary's that still get it */
} s_forgotten_t;

struct wc_broker {
    wc_broker_config_t cfg;
    zsock_t         *router;            /* ROUTER, B: nodes and clients */
    wc_publisher_t  *publisher;         /* XPUB, B+1: topology pushes */
    wc_directory_t  *directory;
    wc_failover_t   *failover;          /* the cluster's primary and epoch */
    wc_state_file_t *state_file;        /* --data: where they are saved; else NULL */
    uint64_t         roster_version;    /* directory version in DIR/broker.nodes */
    int64_t          roster_failed_ms;  /* last "cannot save the node list" line */
    int64_t          roster_next_ms;    /* no save before (one a second at most) */
    wc_statuspage_t *statuspage;        /* --http-port; else NULL */
    int64_t          save_failed_ms;    /* last "cannot save" line */
    wc_request_t     req;               /* the message being handled */
    wc_request_t     switchover;        /* a SWITCHOVER waiting for its end */
    uint64_t         switchover_rid;    /* its rid */
    msgpack_sbuffer  out;               /* scratch: encoded replies and pushes */
    int64_t          tick_ms;           /* how often the directory is ticked */
    int64_t          next_tick_ms;
    int64_t          last_timers_ms;    /* when the timers last ran (s_own_stall) */
    int64_t          next_push_ms;
    uint64_t         pushed_version;    /* version of the last push */
    bool             pushed;            /* a push happened at all */
    uint64_t         bad_messages;      /* malformed or unexpected, dropped or refused */
    uint64_t         send_failures;     /* replies the ROUTER could not route */
    uint64_t         refused;           /* REGISTERs and NODE_HEARTBEATs refused */
    uint64_t         refused_keys;      /* requests refused to their key (CURVE) */
    uint64_t         refused_eperm;     /* ... beyond the key's role */
    uint64_t         refused_eproto;    /* ... a node_info with a key not its own */
    int64_t          refused_key_log_ms;
    uint64_t         refused_key_unlogged;  /* refused since that line */
    int64_t          refused_key_last_ms;   /* the last refusal, logged or not */
    uint64_t         refused_logged;    /* value of refused at the last warning */
    int64_t          refused_log_ms;    /* when that warning was logged */
    wc_scrape_t     *scrape;            /* /metrics, with --metrics-port */
    s_forgotten_t    forgotten [S_FORGET_MAX];  /* to tell the primary, in turn */
    size_t           nforgotten;
};

void
wc_broker_stop (void)
{
    wc_signals_stop ();
}

int
wc_broker_set_failover_timeout (wc_broker_t *self, int failover_timeout_ms)
{
    int rc = wc_failover_set_timeout (self->failover, failover_timeout_ms);
    if (rc == 0)
        self->cfg.failover_timeout_ms = failover_timeout_ms;
    return rc;
}

/* --- start-up ------------------------------------------------------------ */

/*  The ROUTER at bind:port; NULL on failure, with the reason in why. */
static zsock_t *
s_bind_router (wc_broker_t *self, int port, char *why, size_t why_size)
{
    zsock_t *sock = zsock_new (ZMQ_ROUTER);
    if (!sock)
        return NULL;
    zsock_set_linger (sock, 0);
    zsock_set_heartbeat_ivl (sock, 1000);
    zsock_set_heartbeat_timeout (sock, 5000);
    zsock_set_router_mandatory (sock, 1);
    zsock_set_sndhwm (sock, S_SNDHWM);
    zsock_set_rcvhwm (sock, S_RCVHWM);
    zsock_set_maxmsgsize (sock, S_MAX_REQUEST);
    if (wc_sock_curve () && wc_curve_serve (wc_sock_curve (), sock, "broker") != 0) {
        snprintf (why, why_size, "cannot make the broker socket a CURVE server: %s",
                  zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    if (zsock_bind (sock, "tcp://%s:%d", self->cfg.bind, port) != port) {
        wc_sock_bind_why ("broker", self->cfg.bind, port, zmq_errno (), why, why_size);
        zsock_destroy (&sock);
    }
    return sock;
}

/*  The topology socket (B+1): subscribers may ask for `topology` (or
    everything); a subscription frame is 9 bytes, 512 leaves room for the
    ZMTP handshake (READY with a 255-byte identity, CURVE's HELLO of 200);
    4 MiB of pushes per subscriber (5 of the largest, the newest of which
    matters); past 4 KiB of foreign subscriptions the socket is rebuilt. */
static const char *const s_topology_topics [] = { "topology", "", NULL };
static const wc_publisher_spec_t s_topology_spec = {
    .name = "topology", .topics = s_topology_topics, .max_frame = 512,
    .max_out = WC_DIRECTORY_MAX_TOPOLOGY, .budget = 4u * 1024u * 1024u,
    .foreign_budget = 4096
};

/*  failover.c's save: the state file, durably, before anything acts on
    the new state. A failure holds the change back (failover.c retries on
    the next beat or tick); it is logged at most every S_SAVE_LOG_MS. */
static int
s_save (void *arg, const wc_state_t *state)
{
    wc_broker_t *self = (wc_broker_t *) arg;
    if (!self->state_file)
        return 0;
    char why [512];
    int rc = wc_state_file_save (self->state_file, state, why, sizeof why);
    int64_t now = wc_clock_ms ();
    if (rc && (self->save_failed_ms == 0 || now - self->save_failed_ms >= S_SAVE_LOG_MS)) {
        wc_log_error ("cannot save the cluster state (epoch %llu, primary %s): %s; "
                      "nothing that depends on it is sent until it can be saved",
                      (unsigned long long) state->epoch,
                      state->primary [0] ? state->primary : "none", why);
        self->save_failed_ms = now;
    }
    if (rc == 0 && self->save_failed_ms) {
        wc_log_info ("cluster state saved again (epoch %llu, primary %s)",
                     (unsigned long long) state->epoch, state->primary);
        self->save_failed_ms = 0;
    }
    return rc;
}

/*  Read the cluster state (from --data, or a new one) and start
    failover.c from it. Returns 0, or -1 with the cause in why. */
static int
s_start_failover (wc_broker_t *self, char *why, size_t why_size)
{
    const wc_broker_config_t *cfg = &self->cfg;
    wc_state_t state;
    memset (&state, 0, sizeof state);
    int err = 0;
    if (cfg->data_dir [0]) {
        self->state_file = wc_state_file_open (cfg->data_dir, &state, &err, why,
                                               why_size);
        if (!self->state_file)
            return -1;
        wc_log_info ("cluster state from %s: %s%s%s epoch %llu",
                     wc_state_file_path (self->state_file),
                     state.primary [0] ? "primary " : "no primary yet,",
                     state.primary, state.primary [0] ? "," : "",
                     (unsigned long long) state.epoch);
    }
    else
        wc_log_warn ("no --data: the cluster's epoch and primary are kept in memory "
                     "only, so a restart of this broker could go back in epochs (and "
                     "promote a node over data it does not have); give --data DIR");
    wc_failover_config_t fcfg = {
        .node_timeout_ms = cfg->node_timeout_ms,
        .failover_timeout_ms = cfg->failover_timeout_ms,
        .switchover_timeout_ms = S_SWITCHOVER_MS,
        .region_priority = cfg->region_priority,
        .state_saved = cfg->data_dir [0] != '\0'
    };
    self->failover = wc_failover_new (&fcfg, &state, wc_clock_ms (), s_save, self,
                                      why, why_size);
    return self->failover ? 0 : -1;
}

/*  --data: list again, down, the nodes the broker knew before it
    restarted (roster.h). A file that cannot be read costs only that:
    the nodes that run register again within a beat. */
static void
s_load_roster (wc_broker_t *self)
{
    if (!self->cfg.data_dir [0])
        return;
    char why [512];
    size_t skipped = 0;
    int rc = wc_roster_load (self->cfg.data_dir, self->directory, wc_clock_ms (),
                             &skipped, why, sizeof why);
    if (rc < 0)
        wc_log_warn ("%s; starting without the nodes known before the restart: those "
                     "that run appear at their next beat, those that are down are "
                     "not listed", why);
    else
    if (rc > 0 || skipped) {
        char refused [64] = "";
        if (skipped)
            snprintf (refused, sizeof refused, "; %zu refused by the admission rules",
                      skipped);
        wc_log_info ("directory: %d nodes known before the restart, listed down until "
                     "they beat%s", rc, refused);
    }
    self->roster_version = wc_directory_version (self->directory);
}

/*  --data: write the directory to DIR/broker.nodes when it changed, at
    most once a second (a restarted broker hears every node at once), or
    now when forced (a FORGET, before its reply; the broker stopping). A
    failure is retried a second later and logged every S_SAVE_LOG_MS. */
static void
s_save_roster (wc_broker_t *self, int64_t now, bool force)
{
    uint64_t version = wc_directory_version (self->directory);
    if (!self->cfg.data_dir [0] || version == self->roster_version
    ||  (!force && now < self->roster_next_ms))
        return;
    self->roster_next_ms = now + 1000;
    char why [512];
    if (wc_roster_save (self->cfg.data_dir, self->directory, now, why, sizeof why)) {
        if (!self->roster_failed_ms || now - self->roster_failed_ms >= S_SAVE_LOG_MS) {
            wc_log_warn ("cannot save the node list: %s; a restart of the broker "
                         "would not list the nodes that are down", why);
            self->roster_failed_ms = now;
        }
        return;
    }
    if (self->roster_failed_ms)
        wc_log_info ("node list saved again");
    self->roster_failed_ms = 0;
    self->roster_version = version;
}

wc_broker_t *
wc_broker_new (const wc_broker_config_t *cfg, char *why, size_t why_size)
{
    wc_broker_t *self = (wc_broker_t *) calloc (1, sizeof *self);
    snprintf (why, why_size, "out of memory");
    if (!self)
        return NULL;
    self->cfg = *cfg;
    msgpack_sbuffer_init (&self->out);
    wc_request_init (&self->req);
    wc_request_init (&self->switchover);
    self->directory = wc_directory_new ();
    if (!self->directory || s_start_failover (self, why, why_size) != 0)
        goto error;
    wc_directory_set_primary (self->directory, wc_failover_state (self->failover)->primary);
    s_load_roster (self);
    self->router = s_bind_router (self, cfg->port, why, why_size);
    if (!self->router)
        goto error;
    self->publisher = wc_publisher_new (&s_topology_spec, cfg->bind, cfg->port + 1,
                                        why, why_size);
    if (!self->publisher)
        goto error;
    if (cfg->http_port) {
        self->statuspage = wc_statuspage_new (cfg->bind, cfg->http_port, why, why_size);
        if (!self->statuspage)
            goto error;
        wc_failover_on_event (self->failover, wc_statuspage_event, self->statuspage);
    }
    if (cfg->metrics_port
    && !(self->scrape = wc_scrape_new (cfg->bind, cfg->metrics_port, why, why_size)))
        goto error;

    /*  Tick often enough that a node goes down within a tenth of its
        timeout after it is due, but no more than every 10 ms. */
    self->tick_ms = cfg->node_timeout_ms / 10;
    if (self->tick_ms > 100)
        self->tick_ms = 100;
    if (self->tick_ms < 10)
        self->tick_ms = 10;
    wc_log_info ("broker on tcp://%s:%d (topology pushes on %d), node timeout %d ms, "
                 "failover timeout %d ms, region priority %s", cfg->bind, cfg->port,
                 cfg->port + 1, cfg->node_timeout_ms, cfg->failover_timeout_ms,
                 cfg->region_priority [0] ? cfg->region_priority : "none");
    return self;

error:
    wc_broker_destroy (&self);
    return NULL;
}

void
wc_broker_destroy (wc_broker_t **self_p)
{
    wc_broker_t *self = *self_p;
    if (!self)
        return;
    wc_scrape_destroy (&self->scrape);
    zsock_destroy (&self->router);
    wc_publisher_destroy (&self->publisher);
    wc_statuspage_destroy (&self->statuspage);
    wc_failover_destroy (&self->failover);
    wc_state_file_destroy (&self->state_file);
    wc_directory_destroy (&self->directory);
    wc_request_destroy (&self->req);
    wc_request_destroy (&self->switchover);
    msgpack_sbuffer_destroy (&self->out);
    free (self);
    *self_p = NULL;
}

/* --- the ROUTER ---------------------------------------------------------- */

static void s_reply_error (wc_broker_t *self, wc_request_t *req, int err,
                           const char *text);

/*  Why a node's REGISTER or NODE_HEARTBEAT that came from key user must
    be refused, or NULL: its curve_key must be that key, and an id whose
    node is up keeps the key it has (a node cannot take over another's
    id, and so its place in FOLLOWs, while that node runs; a restart with
    a new key is fine once the broker has seen it down). */
static const char *
s_foreign_key (wc_broker_t *self, const wc_node_info_t *info, const char *user)
{
    size_t len = user ? strlen (user) : 0;
    if (!user || info->curve_key.len != len || memcmp (info->curve_key.ptr, user, len))
        return "curve_key is not the key this node connected with";
    char id [WC_MAX_ID + 1];
    wc_bytes_printable (id, sizeof id, &info->id);
    wc_node_info_t known;
    if (wc_directory_find (self->directory, id, wc_clock_ms (), &known) == 0
    &&  known.up && known.curve_key.len
    &&  (known.curve_key.len != len || memcmp (known.curve_key.ptr, user, len)))
        return "node id registered with another key, and that node is up";
    return NULL;
}

static void s_reply (wc_broker_t *self, wc_request_t *req);

/*  CURVE on: the key a request came from must have a role that allows
    it (protocol/roles.h); a REGISTER or NODE_HEARTBEAT must also carry
    that very key as its node's curve_key, so no node can advertise
    another's. Refused: EPERM (or EPROTO for a key that is not its own),
    logged at most once a second and counted. True when refused. */
static bool
s_refuse_key (wc_broker_t *self, wc_request_t *req)
{
    wc_curve_t *curve = wc_sock_curve ();
    if (!curve || req->rc)
        return false;
    zmq_msg_t *frame = &req->frames [req->nframes - 1];
    const char *name, *user = zmq_msg_gets (frame, "User-Id");
    wc_peer_t role = wc_curve_role (curve, frame, &name);
    int err = 0;
    const char *text = NULL;
    if (!wc_peer_may (role, req->msg.type)) {
        err = WALCAST_EPERM;
        text = role == WC_PEER_NONE ? "the key is not trusted (any more)"
                                    : "the key's role does not allow this request";
    }
    else
    if (req->msg.type == WC_MSG_REGISTER || req->msg.type == WC_MSG_NODE_HEARTBEAT)
        text = s_foreign_key (self, &req->msg.u.node, user);
    if (!err && text)
        err = WALCAST_EPROTO;
    if (!err)
        return false;
    self->refused_keys++;
    if (err == WALCAST_EPERM)
        self->refused_eperm++;
    else
        self->refused_eproto++;
    int64_t now = wc_clock_ms ();
    self->refused_key_last_ms = now;
    if (now - self->refused_key_log_ms >= 1000) {
        wc_log_warn ("refused %s from key %s (role %s): %s: %s (%llu more refused since "
                     "the last such line, %llu in all)",
                     wc_msg_type_name (req->msg.type), name, wc_peer_name (role),
                     walcast_errname (err), text,
                     (unsigned long long) self->refused_key_unlogged,
                     (unsigned long long) self->refused_keys);
        self->refused_key_log_ms = now;
        self->refused_key_unlogged = 0;
    }
    else
        self->refused_key_unlogged++;
    //  EPERM's detail names the role (PROTOCOL.md, Error codes), as a node's
    char detail [64] = "";
    if (err == WALCAST_EPERM)
        snprintf (detail, sizeof detail, "role=%s", wc_peer_name (role));
    self->out.size = 0;
    if (wc_error_encode (req->msg.rid, err, text, detail [0] ? detail : NULL,
                         &self->out) == 0)
        s_reply (self, req);
    return true;
}

/*  Take one message off the ROUTER; see wc_request_recv. A request its
    key may not send is answered here and counts as dropped (-1). */
static int
s_recv (wc_broker_t *self, wc_request_t *req)
{
    int rc = wc_request_recv (zsock_resolve (self->router), req);
    if (rc < 0)
        self->bad_messages++;
    if (rc == 1 && s_refuse_key (self, req)) {
        wc_request_release (req);
        return -1;
    }
    return rc;
}

/*  Send self->out back through req's envelope. A peer that is gone
    (ROUTER_MANDATORY: EHOSTUNREACH) or whose queue is full loses it. */
static void
s_reply (wc_broker_t *self, wc_request_t *req)
{
    if (wc_request_reply (zsock_resolve (self->router), req, self->out.data,
                          self->out.size) != 0)
        self->send_failures++;
}

static void
s_reply_error (wc_broker_t *self, wc_request_t *req, int err, const char *text)
{
    self->out.size = 0;
    if (wc_error_encode (req->msg.rid, err, text ? text : walcast_strerror (err),
                         NULL, &self->out) == 0)
        s_reply (self, req);
}

/*  Refuse a node's REGISTER or NODE_HEARTBEAT: an ERROR with its rid and
    the reason, so the node can log why and its operator act on it. A
    refused node keeps beating (twice a second), so the warning is rate
    limited: the first refusal at once, then at most one line every
    S_REFUSED_LOG_MS, with the count of those it stands for. */
static void
s_refuse (wc_broker_t *self, wc_request_t *req, int err, const wc_refusal_t *why,
          int64_t now)
{
    self->refused++;
    self->out.size = 0;
    if (wc_error_encode (req->msg.rid, err, why->text, why->detail, &self->out) == 0)
        s_reply (self, req);
    if (self->refused_log_ms != 0 && now - self->refused_log_ms < S_REFUSED_LOG_MS)
        return;
    char id [WC_MAX_ID + 1];
    wc_bytes_printable (id, sizeof id, &req->msg.u.node.id);
    char others [80] = "";
    if (self->refused - self->refused_logged > 1)
        snprintf (others, sizeof others, " (and %llu other refusals since the last "
                  "warning)", (unsigned long long) (self->refused - self->refused_logged - 1));
    wc_log_warn ("refused %s of node %s (rid %llu, %s): %s%s",
                 wc_msg_type_name (req->msg.type), id [0] ? id : "?",
                 (unsigned long long) req->msg.rid, walcast_errname (err), why->text,
                 others);
    self->refused_logged = self->refused;
    self->refused_log_ms = now;
}

/*  Send a directive back through req's envelope, with req's rid. */
static void
s_send_directive (wc_broker_t *self, wc_request_t *req, const wc_directive_t *d)
{
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = d->type;
    msg.rid = req->msg.rid;
    wc_node_info_t primary;
    if (d->type == WC_MSG_PROMOTE)
        msg.u.promote.epoch = d->epoch;
    else
    if (d->type == WC_MSG_FOLLOW) {
        msg.u.follow.epoch = d->epoch;
        msg.u.follow.primary = (wc_bytes_t) { (const uint8_t *) d->addr,
                                              (uint32_t) strlen (d->addr) };
        /*  CURVE: the key of the node the state names primary (by id, not
            by address: another node could claim that address) */
        const wc_state_t *state = wc_failover_state (self->failover);
        if (state->primary [0] && strcmp (state->primary_addr, d->addr) == 0
        &&  wc_directory_find (self->directory, state->primary, wc_clock_ms (),
                               &primary) == 0)
            msg.u.follow.primary_key = primary.curve_key;
    }
    else {
        msg.u.handover.epoch = d->epoch;
        msg.u.handover.target_id = (wc_bytes_t) { (const uint8_t *) d->target,
                                                  (uint32_t) strlen (d->target) };
        msg.u.handover.target_addr = (wc_bytes_t) { (const uint8_t *) d->addr,
                                                    (uint32_t) strlen (d->addr) };
    }
    self->out.size = 0;
    if (wc_msg_encode (&msg, &self->out) == 0)
        s_reply (self, req);
    char id [WC_MAX_ID + 1];
    wc_bytes_printable (id, sizeof id, &req->msg.u.node.id);
    wc_log_debug ("%s to node %s: epoch %llu %s %s", wc_msg_type_name (d->type), id,
                  (unsigned long long) d->epoch, d->target, d->addr);
}

/* --- forgotten nodes, told to the primary -------------------------------

    A node an operator forgot (FORGET: removed for good) may still be in
    the primary's table of ACKs, and so in its walcast_replica_lag_*
    series, which operators alert on: nothing else would ever tell the
    primary it is gone. So the broker tells it, with a FORGET of its own
    (broker to node, the same message), sent with the primary's next
    S_FORGET_BEATS beats, as the cancel of a hand-over is (failover.c): a
    reply lost costs nothing, and the primary drops the node once. One
    FORGET per beat, the waiting ones in turn, so a beat's replies stay
    few (the node reads a handful per tick). Kept in memory only: a
    restarted broker tells nothing of what it did before, and a broker
    restart on its own (whose directory then lists only the nodes heard
    since) tells nothing either: only an operator's FORGET does. */

/*  A FORGET of id was accepted: tell the primary, on its next beats. */
static void
s_forgotten_add (wc_broker_t *self, const char *id)
{
    for (size_t i = 0; i < self->nforgotten; i++)
        if (strcmp (self->forgotten [i].id, id) == 0) {
            self->forgotten [i].beats = S_FORGET_BEATS;
            return;
        }
    if (self->nforgotten == S_FORGET_MAX) {
        wc_log_warn ("forget: %d nodes forgotten wait for the primary's beats; node %s "
                     "is not told to it (it keeps that node's lag series until it "
                     "restarts)", S_FORGET_MAX, self->forgotten [0].id);
        memmove (&self->forgotten [0], &self->forgotten [1],
                 --self->nforgotten * sizeof self->forgotten [0]);
    }
    s_forgotten_t *f = &self->forgotten [self->nforgotten++];
    snprintf (f->id, sizeof f->id, "%s", id);
    f->beats = S_FORGET_BEATS;
}

/*  A node's admitted beat (req): a node forgotten that beats again runs
    again, and is no longer told of; the primary's beat gets the first
    FORGET waiting, which then waits behind the others, or is done. */
static void
s_forgotten_beat (wc_broker_t *self, wc_request_t *req)
{
    char id [WC_MAX_ID + 1];
    wc_bytes_printable (id, sizeof id, &req->msg.u.node.id);
    for (size_t i = 0; i < self->nforgotten; i++)
        if (strcmp (self->forgotten [i].id, id) == 0) {
            memmove (&self->forgotten [i], &self->forgotten [i + 1],
                     (--self->nforgotten - i) * sizeof self->forgotten [0]);
            break;
        }
    if (self->nforgotten == 0
    ||  strcmp (id, wc_failover_state (self->failover)->primary) != 0)
        return;
    s_forgotten_t first = self->forgotten [0];
    memmove (&self->forgotten [0], &self->forgotten [1],
             --self->nforgotten * sizeof self->forgotten [0]);
    if (--first.beats > 0)
        self->forgotten [self->nforgotten++] = first;
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = WC_MSG_FORGET;
    msg.rid = req->msg.rid;
    msg.u.forget.node_id = (wc_bytes_t) { (const uint8_t *) first.id,
                                          (uint32_t) strlen (first.id) };
    self->out.size = 0;
    if (wc_msg_encode (&msg, &self->out) == 0)
        s_reply (self, req);
    wc_log_debug ("FORGET %s to the primary %s (%d more beats)", first.id, id,
                  first.beats);
}

/*  A node's REGISTER or NODE_HEARTBEAT: into the directory, or refused
    with the reason (a field against the admission rules, a full
    directory). An admitted REGISTER is answered with the TOPOLOGY the
    node just joined: that is how a node learns that a refusal is over.
    Then, to either, the directive failover.c decides, if any: repeated
    on every beat until the node's beats show it done. */
static void
s_handle_node (wc_broker_t *self, wc_request_t *req, int64_t now)
{
    wc_refusal_t why;
    int rc = wc_directory_update (self->directory, &req->msg.u.node, now, &why);
    if (rc < 0) {
        s_refuse (self, req, rc, &why, now);
        return;
    }
    wc_directive_t directive;
    wc_failover_beat (self->failover, self->directory, &req->msg.u.node, now,
                      &directive);
    if (req->msg.type == WC_MSG_REGISTER) {
        self->out.size = 0;
        if (wc_directory_encode_topology (self->directory, req->msg.rid, now,
                                          &self->out) == 0)
            s_reply (self, req);
    }
    if (directive.type)
        s_send_directive (self, req, &directive);
    s_forgotten_beat (self, req);
}

/*  Answer the parked SWITCHOVER with how it ended, and free its slot. */
static void
s_switchover_reply (wc_broker_t *self, const wc_switchover_result_t *result)
{
    if (self->switchover.nframes == 0)
        return;
    self->out.size = 0;
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = WC_MSG_SWITCHOVER_DONE;
    msg.rid = self->switchover_rid;
    msg.u.switchover_done.epoch = result->epoch;
    msg.u.switchover_done.primary = (wc_bytes_t) { (const uint8_t *) result->addr,
                                                   (uint32_t) strlen (result->addr) };
    int rc = result->code == 0 ? wc_msg_encode (&msg, &self->out)
           : wc_error_encode (self->switchover_rid, result->code, result->text,
                              result->addr, &self->out);
    if (rc == 0)
        s_reply (self, &self->switchover);
    wc_request_release (&self->switchover);
}

/*  A client's SWITCHOVER: refused at once with the reason, or begun, its
    envelope kept until failover.c says how it ended. */
static void
s_handle_switchover (wc_broker_t *self, wc_request_t *req, int64_t now)
{
    wc_switchover_result_t result;
    if (wc_failover_switchover_result (self->failover, &result))
        s_switchover_reply (self, &result);     /* the last one ended this turn */
    char why [WC_MAX_TEXT + 1];
    int rc = wc_failover_switchover (self->failover, self->directory,
                                     &req->msg.u.switchover.node_id, now, why,
                                     sizeof why);
    if (rc) {
        self->out.size = 0;
        if (wc_error_encode (req->msg.rid, rc, why, NULL, &self->out) == 0)
            s_reply (self, req);
        return;
    }
    wc_request_release (&self->switchover);     /* none is left; to be sure */
    for (int i = 0; i < req->nframes; i++) {
        zmq_msg_init (&self->switchover.frames [i]);
        zmq_msg_move (&self->switchover.frames [i], &req->frames [i]);
    }
    self->switchover.nframes = req->nframes;
    self->switchover_rid = req->msg.rid;
}

/*  A node listed down but silent for less than the node timeout: one
    the broker restored from its disk at start (roster.h), or whose
    silence it forgave (it did not run itself), and has not had the time
    to hear: it may well run. Says so in why. */
static bool
s_unsure_down (wc_broker_t *self, const char *id, int64_t now, char *why, size_t size)
{
    wc_node_info_t info;
    if (wc_directory_find (self->directory, id, now, &info) != 0 || info.up
    ||  (int64_t) info.silent_ms >= self->cfg.node_timeout_ms)
        return false;
    snprintf (why, size, "node %s has been silent for %llu ms only, less than the node "
              "timeout (%d ms): the broker restarted (or did not run) lately and "
              "cannot tell yet that it is down; it may still run; try again in %lld ms",
              id, (unsigned long long) info.silent_ms, self->cfg.node_timeout_ms,
              (long long) (self->cfg.node_timeout_ms - (int64_t) info.silent_ms));
    return true;
}

/*  A client's FORGET: drop a node that is down from the directory (it
    was removed for good), and answer the TOPOLOGY without it. Not the
    cluster's primary (the saved state names it: a failover or its
    return needs it), not a node that is up (its next beat would bring it
    back) or may be (s_unsure_down). The primary is told, on its next
    beats. */
static void
s_handle_forget (wc_broker_t *self, wc_request_t *req, int64_t now)
{
    char id [WC_MAX_ID + 1], why [WC_MAX_TEXT + 1] = "";
    wc_bytes_printable (id, sizeof id, &req->msg.u.forget.node_id);
    int rc = 0;
    if (strlen (id) != req->msg.u.forget.node_id.len)
        rc = WALCAST_ENOTFOUND;             /* not printable: no node has it */
    else
    if (strcmp (id, wc_failover_state (self->failover)->primary) == 0) {
        rc = WALCAST_ECONFLICT;
        snprintf (why, sizeof why, "node %s is the cluster's primary: the broker keeps "
                  "it (a failover replaces it when it is down; or hand the role over "
                  "with walcast switchover first)", id);
    }
    else
    if (s_unsure_down (self, id, now, why, sizeof why))
        rc = WALCAST_ECONFLICT;
    else
        rc = wc_directory_forget (self->directory, id, now);
    if (rc == WALCAST_ECONFLICT && !why [0])
        snprintf (why, sizeof why, "node %s is up: stop it first (it would register "
                  "again at its next beat)", id);
    if (rc == WALCAST_ENOTFOUND)
        snprintf (why, sizeof why, "no node %s in the directory", id);
    self->out.size = 0;
    if (rc == 0) {
        s_forgotten_add (self, id);
        wc_failover_forget (self->failover, id);
        s_save_roster (self, now, true);    /* forgotten for good, restarts too */
        rc = wc_directory_encode_topology (self->directory, req->msg.rid, now,
                                           &self->out);
    }
    if (rc)
        wc_error_encode (req->msg.rid, rc, why [0] ? why : NULL, NULL, &self->out);
    s_reply (self, req);
}

/*  Handle one decoded (or undecodable) message. Like a node, the broker
    answers everything it received whole: a malformed message with an
    ERROR of the failure's code (EVERSION, EPROTO, ETOOBIG), whose rid is
    the message's when the codec could read it and 0 otherwise, so no
    peer waits for its timeout to learn that it was not understood. */
static void
s_handle (wc_broker_t *self, wc_request_t *req, int64_t now)
{
    wc_msg_t *msg = &req->msg;
    if (req->rc
    &&  (msg->type == WC_MSG_REGISTER || msg->type == WC_MSG_NODE_HEARTBEAT)) {
        /*  The codec refused the node_info: say which field. */
        self->bad_messages++;
        wc_refusal_t why = { "", "" };
        wc_nodeinfo_explain (&req->unpacked.data, why.text, sizeof why.text);
        s_refuse (self, req, req->rc, &why, now);
        return;
    }
    if (req->rc) {
        self->bad_messages++;
        wc_log_debug ("malformed %s (rid %llu): %s", wc_msg_type_name (msg->type),
                      (unsigned long long) msg->rid, walcast_strerror (req->rc));
        s_reply_error (self, req, req->rc, NULL);
        return;
    }
    switch (msg->type) {
        case WC_MSG_REGISTER:
        case WC_MSG_NODE_HEARTBEAT:
            s_handle_node (self, req, now);
            break;
        case WC_MSG_SWITCHOVER:
            s_handle_switchover (self, req, now);
            break;
        case WC_MSG_FORGET:
            s_handle_forget (self, req, now);
            break;
        case WC_MSG_TOPOLOGY_GET:
            self->out.size = 0;
            if (wc_directory_encode_topology (self->directory, msg->rid, now,
                                              &self->out) == 0)
                s_reply (self, req);
            else
                s_reply_error (self, req, WALCAST_ENOMEM, NULL);
            break;
        default:
            /*  Well-formed, but for a node or a subscriber. */
            self->bad_messages++;
            wc_log_debug ("unexpected %s (rid %llu) on the broker socket",
                          wc_msg_type_name (msg->type),
                          (unsigned long long) msg->rid);
            s_reply_error (self, req, WALCAST_EPROTO, "not a broker request");
            break;
    }
}

/*  One turn of the ROUTER: up to S_BATCH messages. */
static void
s_handle_router (wc_broker_t *self)
{
    int64_t now = wc_clock_ms ();
    for (int i = 0; i < S_BATCH; i++) {
        int rc = s_recv (self, &self->req);
        if (rc == 0)
            break;
        if (rc == 1) {
            s_handle (self, &self->req, now);
            wc_request_release (&self->req);
        }
    }
}

/* --- the loop ------------------------------------------------------------ */

/*  Publish the topology: [topic "topology"][TOPOLOGY, rid 0]. Publishing
    never blocks: a subscriber whose queue is full misses this one and
    gets the next (a second later at most). */
static void
s_push (wc_broker_t *self, int64_t now)
{
    self->out.size = 0;
    if (wc_directory_encode_topology (self->directory, 0, now, &self->out) != 0) {
        wc_log_warn ("cannot encode the topology: out of memory");
        return;
    }
    if (wc_publisher_send (self->publisher, "topology", 8, self->out.data,
                           self->out.size) != 0)
        return;
    self->pushed = true;
    self->pushed_version = wc_directory_version (self->directory);
    self->next_push_ms = now + S_PUSH_MS;
}

/*  The loop runs its timers at least every tick (at most 100 ms). A gap
    of half a node timeout or more means the broker itself did not run
    (SIGSTOP, a paused VM, a starved CPU): the nodes' beats wait in its
    socket meanwhile, so their silence is the broker's, and counting it
    would mark live nodes down and fail over a healthy primary. */
static void
s_own_stall (wc_broker_t *self, int64_t now)
{
    int64_t gap = self->last_timers_ms ? now - self->last_timers_ms : 0;
    self->last_timers_ms = now;
    if (gap < self->cfg.node_timeout_ms / 2 || gap <= self->tick_ms)
        return;
    wc_directory_forgive (self->directory, gap - self->tick_ms, now);
    wc_log_warn ("broker: its loop did not run for %lld ms (stopped, or starved of "
                 "CPU); not counting that time against the nodes", (long long) gap);
}

/*  Run the timers and push when due. Returns ms until the next timer.
    While the topology socket is being rebuilt, pushes wait for it. */
static int
s_timers (wc_broker_t *self)
{
    int64_t now = wc_clock_ms ();
    s_own_stall (self, now);
    if (now >= self->next_tick_ms) {
        wc_directory_tick (self->directory, now, self->cfg.node_timeout_ms);
        wc_failover_tick (self->failover, self->directory, now);
        self->next_tick_ms = now + self->tick_ms;
    }
    s_save_roster (self, now, false);
    wc_switchover_result_t result;
    if (wc_failover_switchover_result (self->failover, &result))
        s_switchover_reply (self, &result);
    int due;
    if (wc_sock_curve () && wc_curve_tick (wc_sock_curve (), now, &due))
        wc_publisher_drop_all (self->publisher);
    if (self->refused_key_unlogged > 0 && now - self->refused_key_last_ms >= 1000) {
        wc_log_warn ("refused %llu more requests by their key since the last such "
                     "line, %llu in all", (unsigned long long) self->refused_key_unlogged,
                     (unsigned long long) self->refused_keys);
        self->refused_key_log_ms = now;
        self->refused_key_unlogged = 0;
    }
    int64_t next_push = now + wc_publisher_tick (self->publisher, now);
    if (wc_publisher_socket (self->publisher)) {
        if (!self->pushed || now >= self->next_push_ms
        ||  wc_directory_version (self->directory) != self->pushed_version)
            s_push (self, now);
        next_push = self->next_push_ms;
    }
    int64_t next = self->next_tick_ms < next_push ? self->next_tick_ms : next_push;
    if (self->statuspage) {
        int64_t sample = wc_statuspage_tick (self->statuspage, self->directory,
                                             wc_failover_state (self->failover), now);
        next = sample < next ? sample : next;
    }
    if (self->scrape) {
        wc_scrape_counts_t counts = {
            .failovers = wc_failover_count (self->failover),
            .epoch = wc_failover_state (self->failover)->epoch,
            .version = wc_directory_version (self->directory),
            .refused = self->refused, .bad_messages = self->bad_messages,
            .refused_eperm = self->refused_eperm, .refused_eproto = self->refused_eproto,
            .refused_connections = wc_sock_curve () ? wc_curve_refused (wc_sock_curve ())
                                                    : 0,
            .dropped_handshakes = wc_sock_curve () ? wc_curve_dropped (wc_sock_curve ())
                                                   : 0 };
        int64_t due = now + wc_scrape_tick (self->scrape, self->directory, &counts, now);
        next = due < next ? due : next;
    }
    return next > now ? (int) (next - now) : 0;
}

int
wc_broker_run (wc_broker_t *self)
{
    wc_signals_catch ();
    wc_notify ("READY=1");              /* bound and serving (systemd) */

    int rc = 0;
    while (!wc_signals_stopping ()) {
        if (wc_signals_poll_hup () && wc_sock_curve ())  /* SIGHUP: main's */
            wc_curve_refresh_soon (wc_sock_curve ());    /* reload ran; read
                                                            the trust folder now */
        int timeout = s_timers (self);
        void *publisher = wc_publisher_socket (self->publisher);
        zmq_pollitem_t items [] = {
            { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 },
            { publisher, 0, ZMQ_POLLIN, 0 }
        };
        if (zmq_poll (items, publisher ? 2 : 1, timeout) == -1) {
            if (zmq_errno () == EINTR)
                continue;
            wc_log_error ("poll failed: %s", zmq_strerror (zmq_errno ()));
            rc = WALCAST_EUNAVAILABLE;
            break;
        }
        if (items [0].revents & ZMQ_POLLIN)
            s_handle_router (self);
        if (publisher && (items [1].revents & ZMQ_POLLIN))
            wc_publisher_handle (self->publisher);
    }
    wc_notify ("STOPPING=1");
    s_save_roster (self, wc_clock_ms (), true);
    const wc_state_t *state = wc_failover_state (self->failover);
    wc_log_info ("stopped at topology version %llu with %zu nodes, %zu up, primary "
                 "%s at epoch %llu (%llu malformed or unexpected messages dropped or "
                 "refused, "
                 "%llu replies unroutable, %llu registrations refused, %llu "
                 "foreign subscriptions dropped, %llu topology socket rebuilds)",
                 (unsigned long long) wc_directory_version (self->directory),
                 wc_directory_size (self->directory),
                 wc_directory_up_count (self->directory),
                 state->primary [0] ? state->primary : "none",
                 (unsigned long long) state->epoch,
                 (unsigned long long) self->bad_messages,
                 (unsigned long long) self->send_failures,
                 (unsigned long long) self->refused,
                 (unsigned long long) wc_publisher_foreign (self->publisher),
                 (unsigned long long) wc_publisher_rebuilds (self->publisher));
    return rc;
}
