/*  curve.c - CURVE on a server's sockets, and who may do what (see curve.h).

    Two ideas carry it. Authentication is a ZAP handler of ours (a thread
    that answers libzmq's inproc://zeromq.zap.01), so libzmq refuses a
    stranger before any message of it reaches us; it reads the trust
    folder again at a handshake when the folder changed. Authorisation is
    ours too: a map from public key to role, built from which subfolder
    each certificate sits in, looked up with the User-Id (the client's
    key) that libzmq attaches to every message of an authenticated
    connection. The folders' signature (each file's name, inode, size and
    time) tells either when to read the folder again. Both read it the
    same forgiving way: a key met twice counts once (the larger role), a
    folder or file that cannot be read is skipped. (czmq's zauth asserted
    on both, and took the whole process down with it.)

    The monitor thread owns one PAIR socket per watched server socket,
    connected to that socket's libzmq monitor endpoint; it only logs and
    counts, so it shares nothing with the owner but atomic counters. It
    tells a refusal from a dropped handshake: libzmq reports a peer it
    refused (ZAP said no: HANDSHAKE_FAILED_AUTH) or one that spoke
    wrongly (no CURVE, another server key, a malformed handshake:
    HANDSHAKE_FAILED_PROTOCOL), and, as HANDSHAKE_FAILED_NO_DETAIL with
    an errno, a connection that closed or timed out before its handshake
    completed. Those come by the dozen when this process was paused
    (SIGSTOP) or its peers restarted: the connections clients opened and
    gave up on meanwhile. A client without CURVE keys can end that way
    too, when it sees the mechanism differ and hangs up before this side
    does (a race: otherwise it is a PROTOCOL refusal); a key that is not
    trusted never does (ZAP refuses it: AUTH). So they are counted apart
    and summed up in one line that names both causes and blames no key.
*/
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include "curve.h"
#include "log.h"
#include "sock.h"
#include "walcast.h"

/*  The failed handshakes, and MONITOR_STOPPED: libzmq sends that one only
    when asked, and without it the monitor thread would never learn that a
    watched socket closed and would keep its PAIR socket for ever. */
#define S_MONITOR_EVENTS (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL \
                          | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL \
                          | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH \
                          | ZMQ_EVENT_MONITOR_STOPPED)


/*  One trusted key. */
typedef struct {
    wc_peer_t role;
    char name [NAME_MAX + 1];           /* its certificate's file name */
} s_peer_t;

/*  What the monitor thread counts, for the owner's metrics. */
typedef struct {
    atomic_uint_fast64_t refused;       /* handshakes refused (AUTH, PROTOCOL) */
    atomic_uint_fast64_t dropped;       /* handshakes the connection ended */
} s_counts_t;

struct wc_curve {
    wc_certs_keys_t keys;
    char trust [PATH_MAX];
    zactor_t *auth;                     /* our ZAP handler (s_zap_actor) */
    zactor_t *monitor;                  /* logs failed handshakes */
    zhashx_t *peers;                    /* public key (Z85) -> s_peer_t */
    uint64_t signature;                 /* of the role folders, at the last read */
    int64_t next_look_ms;               /* wc_curve_tick's next look */
    unsigned watched;                   /* sockets handed to the monitor */
    char unknown [96];                  /* wc_curve_role's name of a key without
                                           a certificate (owner's thread) */
    s_counts_t counts;                  /* the monitor's, read by the owner */
};

static int s_zap_trust (zactor_t *auth, const char *trust);     /* the ZAP handler */

/* --- the role folders ---------------------------------------------------- */

/*  Mix v into h (FNV-1a over its bytes). */
static uint64_t
s_mix (uint64_t h, const void *v, size_t len)
{
    const unsigned char *p = (const unsigned char *) v;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p [i]) * 1099511628211ull;
    return h;
}

/*  Mix one folder's entries into h: every entry's name, inode, size and
    change time. When subs, the entries that are folders are mixed in
    the same way, one level down. */
static uint64_t
s_mix_folder (uint64_t h, const char *dir, bool subs)
{
    DIR *d = opendir (dir);
    if (!d)
        return s_mix (h, dir, strlen (dir));       /* unreadable: a state too */
    struct dirent *e;
    while ((e = readdir (d))) {
        struct stat st;
        if (e->d_name [0] == '.' || fstatat (dirfd (d), e->d_name, &st, 0) != 0)
            continue;
        h = s_mix (h, e->d_name, strlen (e->d_name) + 1);
        h = s_mix (h, &st.st_ino, sizeof st.st_ino);
        h = s_mix (h, &st.st_size, sizeof st.st_size);
        h = s_mix (h, &st.st_ctim, sizeof st.st_ctim);
        h = s_mix (h, &st.st_mtim, sizeof st.st_mtim);
        if (subs && S_ISDIR (st.st_mode)) {
            char sub [PATH_MAX + NAME_MAX + 2];
            snprintf (sub, sizeof sub, "%s/%s", dir, e->d_name);
            h = s_mix_folder (h, sub, false);
        }
    }
    closedir (d);
    return h;
}

/*  What the trust folder holds now, as one number: its entries and
    those of its subfolders (the role folders among them). */
static uint64_t
s_signature (const char *trust)
{
    return s_mix_folder (14695981039346656037ull, trust, true);
}

static bool
s_ends_with (const char *s, const char *tail)
{
    size_t n = strlen (s), t = strlen (tail);
    return n >= t && strcmp (s + n - t, tail) == 0;
}

/*  Called with each public certificate of a folder. */
typedef void (s_cert_fn) (void *arg, const char *file, const wc_certs_keys_t *keys);

/*  Call fn for each public certificate directly in dir: regular files
    (after symlinks), not dotfiles, not NAME_secret. One that does not
    load is skipped, with a warning when loud. */
static void
s_each_cert (const char *dir, bool loud, s_cert_fn *fn, void *arg)
{
    DIR *d = opendir (dir);
    if (!d) {
        if (loud && errno != ENOENT)
            wc_log_warn ("trust: skipping the folder %s: %s", dir, strerror (errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir (d))) {
        struct stat st;
        if (e->d_name [0] == '.' || s_ends_with (e->d_name, "_secret")
        ||  fstatat (dirfd (d), e->d_name, &st, 0) != 0 || !S_ISREG (st.st_mode))
            continue;
        char path [PATH_MAX * 2 + 32], why [512];
        snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
        wc_certs_keys_t keys;
        if (wc_certs_load (path, false, &keys, why, sizeof why) != 0) {
            if (loud)
                wc_log_warn ("trust: skipping %s: %s", path, why);
            continue;
        }
        fn (arg, e->d_name, &keys);
    }
    closedir (d);
}

/*  A role folder's walk: its folder's role, and the map to fill. */
typedef struct {
    wc_peer_t role;
    zhashx_t *peers;
} s_role_walk_t;

/*  A key of a role folder: in two folders, the larger role. */
static void
s_add_peer (void *arg, const char *file, const wc_certs_keys_t *keys)
{
    s_role_walk_t *walk = (s_role_walk_t *) arg;
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (walk->peers, keys->public_key);
    if (peer && peer->role >= walk->role)
        return;
    if (!peer) {
        peer = (s_peer_t *) calloc (1, sizeof *peer);
        if (!peer)
            return;
        zhashx_insert (walk->peers, keys->public_key, peer);
    }
    peer->role = walk->role;
    snprintf (peer->name, sizeof peer->name, "%s", file);
}

/*  Add the public certificates of one role folder to peers. */
static void
s_load_folder (const char *trust, wc_peer_t role, zhashx_t *peers)
{
    char dir [PATH_MAX + 16];
    snprintf (dir, sizeof dir, "%s/%s", trust, wc_peer_name (role));
    s_role_walk_t walk = { role, peers };
    s_each_cert (dir, true, s_add_peer, &walk);
}

static void
s_peer_free (void **item)
{
    free (*item);
    *item = NULL;
}

/*  A fresh map of the role folders. */
static zhashx_t *
s_load_peers (const char *trust)
{
    zhashx_t *peers = zhashx_new ();
    if (!peers)
        return NULL;
    zhashx_set_destructor (peers, s_peer_free);
    for (int role = WC_PEER_READER; role <= WC_PEER_NODE; role++)
        s_load_folder (trust, (wc_peer_t) role, peers);
    return peers;
}

/*  Log how new differs from old; true when a key of old lost its role
    or has a smaller one in new. */
static bool
s_log_changes (zhashx_t *old, zhashx_t *new_peers)
{
    bool lost = false;
    for (s_peer_t *p = (s_peer_t *) zhashx_first (old); p;
         p = (s_peer_t *) zhashx_next (old)) {
        const char *key = (const char *) zhashx_cursor (old);
        s_peer_t *now = (s_peer_t *) zhashx_lookup (new_peers, key);
        if (!now || now->role < p->role) {
            wc_log_warn ("trust: key %s (%s) %s; its requests are refused (EPERM) "
                         "and its subscriptions dropped", p->name, key,
                         now ? "lost a role" : "removed");
            lost = true;
        }
    }
    for (s_peer_t *p = (s_peer_t *) zhashx_first (new_peers); p;
         p = (s_peer_t *) zhashx_next (new_peers)) {
        const char *key = (const char *) zhashx_cursor (new_peers);
        s_peer_t *was = (s_peer_t *) zhashx_lookup (old, key);
        if (!was || was->role != p->role)
            wc_log_info ("trust: key %s (%s) is now in %s/", p->name, key,
                         wc_peer_name (p->role));
    }
    return lost;
}

bool
wc_curve_refresh (wc_curve_t *self)
{
    uint64_t signature = s_signature (self->trust);
    if (signature == self->signature)
        return false;
    zhashx_t *peers = s_load_peers (self->trust);
    if (!peers)
        return false;                   /* out of memory: keep the old map */
    self->signature = signature;
    bool lost = s_log_changes (self->peers, peers);
    zhashx_destroy (&self->peers);
    self->peers = peers;
    return lost;
}

const char *
wc_curve_trust (const wc_curve_t *self)
{
    return self->trust;
}

int
wc_curve_set_trust (wc_curve_t *self, const char *trust_dir, char *why, size_t why_size)
{
    struct stat st;
    if (stat (trust_dir, &st) != 0 || !S_ISDIR (st.st_mode)) {
        snprintf (why, why_size, "curve-trust %s is not a folder (make one with "
                  "nodes/, writers/ and readers/ in it)", trust_dir);
        return -1;
    }
    if (s_zap_trust (self->auth, trust_dir) != 0) {
        snprintf (why, why_size, "cannot point CURVE authentication at %s", trust_dir);
        return -1;
    }
    snprintf (self->trust, sizeof self->trust, "%s", trust_dir);
    self->signature = 0;                /* the next refresh reads it */
    return 0;
}

bool
wc_curve_tick (wc_curve_t *self, int64_t now_ms, int *due_ms)
{
    if (now_ms < self->next_look_ms) {
        *due_ms = (int) (self->next_look_ms - now_ms);
        return false;
    }
    self->next_look_ms = now_ms + 1000;
    *due_ms = 1000;
    return wc_curve_refresh (self);
}

void
wc_curve_refresh_soon (wc_curve_t *self)
{
    self->next_look_ms = 0;
}

wc_peer_t
wc_curve_role (wc_curve_t *self, zmq_msg_t *frame, const char **name)
{
    const char *user = zmq_msg_gets (frame, "User-Id");
    s_peer_t *peer = user ? (s_peer_t *) zhashx_lookup (self->peers, user) : NULL;
    if (name && peer)
        *name = peer->name;
    else
    if (name && user) {
        //  Its certificate was removed since it connected: the public
        //  key is all there is to tell the operator which one it was
        snprintf (self->unknown, sizeof self->unknown,
                  "%.40s (no certificate in the trust folder)", user);
        *name = self->unknown;
    }
    else
    if (name)
        *name = "?";
    return peer ? peer->role : WC_PEER_NONE;
}


/* --- the threads ------------------------------------------------------------ */

/*  An actor thread takes no signal: the owner's thread handles them
    (SIGHUP reloads, SIGTERM stops), and a signal here would only break
    its wait. It is named, for top -H and the tests. */
static void
s_thread_start (const char *name)
{
    sigset_t all;
    sigfillset (&all);
    pthread_sigmask (SIG_BLOCK, &all, NULL);
    pthread_setname_np (pthread_self (), name);
}

/*  zpoller_wait gave nothing: true when that is for good (the context is
    ending), false for an interrupted wait, which the thread goes on
    from. Ending the ZAP handler on a stray signal would leave libzmq
    with no handler, and then it lets every CURVE key in. */
static bool
s_poll_ended (void)
{
    return zmq_errno () == ETERM;
}

/* --- authentication: the ZAP handler ------------------------------------- */

/*  ZAP (ZeroMQ RFC 27) is how libzmq asks whether a client may connect:
    it sends the handshake's facts to inproc://zeromq.zap.01 of its
    context and waits for a status. */
#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"

/*  What the handler thread owns: the keys that may connect, as read
    from the trust folder when its signature was `signature`. */
typedef struct {
    char      trust [PATH_MAX];
    uint64_t  signature;
    zhashx_t *keys;             /* Z85 public key -> s_zap_key (no values) */
    bool      bound;
} s_zap_t;

static char s_zap_key;          /* the one item of every key in s_zap_t.keys */

static void
s_add_key (void *arg, const char *file, const wc_certs_keys_t *keys)
{
    (void) file;
    zhashx_t *set = (zhashx_t *) arg;
    if (!zhashx_lookup (set, keys->public_key))
        zhashx_insert (set, keys->public_key, &s_zap_key);
}

/*  The keys that may connect: every certificate directly in the trust
    folder or directly in one of its subfolders (the role folders give a
    role too; others, none). Quiet: the owner's map says what it skips. */
static zhashx_t *
s_load_keys (const char *trust)
{
    zhashx_t *set = zhashx_new ();
    if (!set)
        return NULL;
    s_each_cert (trust, false, s_add_key, set);
    DIR *d = opendir (trust);
    struct dirent *e;
    while (d && (e = readdir (d))) {
        struct stat st;
        if (e->d_name [0] == '.' || fstatat (dirfd (d), e->d_name, &st, 0) != 0
        ||  !S_ISDIR (st.st_mode))
            continue;
        char sub [PATH_MAX + NAME_MAX + 2];
        snprintf (sub, sizeof sub, "%s/%s", trust, e->d_name);
        s_each_cert (sub, false, s_add_key, set);
    }
    if (d)
        closedir (d);
    return set;
}

/*  Is key (Z85) trusted now? The folder is read again when it changed. */
static bool
s_zap_trusted (s_zap_t *zap, const char *key)
{
    uint64_t signature = s_signature (zap->trust);
    if (signature != zap->signature || !zap->keys) {
        zhashx_t *keys = s_load_keys (zap->trust);
        if (keys) {                     /* out of memory: keep the old set */
            zhashx_destroy (&zap->keys);
            zap->keys = keys;
            zap->signature = signature;
        }
    }
    return zap->keys && zhashx_lookup (zap->keys, key) != NULL;
}

/*  Answer one ZAP request: 200 with the client's key as User-Id when it
    is trusted, else 400. A request that is not CURVE's (libzmq sends
    none other to a CURVE server) is refused. */
static void
s_zap_answer (s_zap_t *zap, zsock_t *handler)
{
    zmsg_t *req = zmsg_recv (handler);
    if (!req)
        return;
    char *version = zmsg_popstr (req);
    zframe_t *request_id = zmsg_pop (req);
    char *domain = zmsg_popstr (req), *address = zmsg_popstr (req);
    zframe_t *identity = zmsg_pop (req);
    char *mechanism = zmsg_popstr (req);
    zframe_t *credentials = zmsg_pop (req);
    char key [41] = "";
    const char *status = "400", *text = "not trusted";
    if (version && streq (version, "1.0") && mechanism && streq (mechanism, "CURVE")
    &&  credentials && zframe_size (credentials) == 32
    &&  zmq_z85_encode (key, zframe_data (credentials), 32) && s_zap_trusted (zap, key)) {
        status = "200";
        text = "OK";
    }
    else
        key [0] = '\0';
    zmsg_t *reply = zmsg_new ();
    if (reply) {
        zmsg_addstr (reply, "1.0");
        if (request_id)
            zmsg_append (reply, &request_id);
        else
            zmsg_addstr (reply, "");
        zmsg_addstr (reply, status);
        zmsg_addstr (reply, text);
        zmsg_addstr (reply, key);
        zmsg_addmem (reply, NULL, 0);           /* no metadata */
        zmsg_send (&reply, handler);
    }
    zframe_destroy (&request_id);
    zframe_destroy (&identity);
    zframe_destroy (&credentials);
    zstr_free (&version);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&mechanism);
    zmsg_destroy (&req);
}

/*  A command on the pipe: "TRUST dir" (answered with a signal, 0 when
    the handler is bound), "$TERM". False on $TERM. */
static bool
s_zap_command (s_zap_t *zap, zsock_t *pipe)
{
    char *cmd = NULL, *dir = NULL;
    if (zstr_recvx (pipe, &cmd, &dir, NULL) < 1 || streq (cmd, "$TERM")) {
        zstr_free (&cmd);
        zstr_free (&dir);
        return false;
    }
    if (streq (cmd, "TRUST") && dir) {
        snprintf (zap->trust, sizeof zap->trust, "%s", dir);
        zap->signature = 0;
        zhashx_destroy (&zap->keys);
        zsock_signal (pipe, zap->bound ? 0 : 1);
    }
    zstr_free (&cmd);
    zstr_free (&dir);
    return true;
}

/*  The handler thread. */
static void
s_zap_actor (zsock_t *pipe, void *arg)
{
    (void) arg;
    s_thread_start ("wc-curve-zap");
    s_zap_t zap;
    memset (&zap, 0, sizeof zap);
    zsock_t *handler = zsock_new (ZMQ_REP);
    //  A handler just closed (a handle destroyed and made again) may hold
    //  the endpoint until libzmq's reaper lets it go: try for a second
    for (int tries = 0; handler && tries < 100; tries++) {
        zap.bound = zsock_bind (handler, S_ZAP_ENDPOINT) == 0;
        if (zap.bound || zmq_errno () != EADDRINUSE)
            break;
        zclock_sleep (10);
    }
    zpoller_t *poller = zpoller_new (pipe, NULL);
    if (poller && zap.bound)
        zpoller_add (poller, handler);
    zsock_signal (pipe, 0);
    while (poller) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, -1);
        if (which == pipe) {
            if (!s_zap_command (&zap, pipe))
                break;
        }
        else
        if (which == handler)
            s_zap_answer (&zap, handler);
        else
        if (s_poll_ended ())
            break;
    }
    zpoller_destroy (&poller);
    if (zap.bound)
        zsock_unbind (handler, S_ZAP_ENDPOINT);
    zsock_destroy (&handler);
    zhashx_destroy (&zap.keys);
}

/*  Point the handler at trust; 0, or -1 when it could not bind. */
static int
s_zap_trust (zactor_t *auth, const char *trust)
{
    if (zstr_sendx (auth, "TRUST", trust, NULL) != 0)
        return -1;
    return zsock_wait (auth) == 0 ? 0 : -1;
}


/* --- the monitor ------------------------------------------------------------ */

/*  Why a handshake was refused, from a monitor event. */
static const char *
s_failure (uint16_t event, uint32_t value)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return value == 400 ? "its key is not trusted (not under --curve-trust)"
                            : "authentication failed";
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        return "it does not speak CURVE (a client without keys?)";
    if ((value & 0xf0000000u) == ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED)
        return "our authentication handler's answer was not understood";
    return "its CURVE handshake is malformed or uses another server key";
}

/*  A dropped handshake is summed up once the first is this old, and a
    socket's next such line waits this long after the last. */
#define S_DROPPED_WINDOW_MS     1000
#define S_DROPPED_EVERY_MS      10000

/*  A watched socket's monitor, in the monitor thread. A peer that keeps
    reconnecting is refused every ~100 ms: one line a second per socket
    says so, with how many it stands for. Dropped handshakes are only
    summed up: one line when the first is a second old, then at most one
    every 10 s, with how many, and the last one's errno. */
typedef struct {
    zsock_t *pair;
    char     name [32];
    char     addr [64];             /* the socket's endpoint, as the monitor said */
    int64_t  logged_ms;             /* when the last refusal line was written */
    uint64_t unlogged;              /* refusals since, not logged */
    int64_t  dropped_logged_ms;     /* when the last dropped line was written */
    int64_t  dropped_first_ms;      /* the first not summed up yet; 0: none */
    uint64_t dropped;               /* dropped handshakes not summed up */
    int      dropped_errno;         /* the last one's */
} s_watch_t;

/*  When watch's dropped handshakes are due to be summed up (0: none). */
static int64_t
s_dropped_due (const s_watch_t *watch)
{
    if (!watch->dropped)
        return 0;
    int64_t due = watch->dropped_first_ms + S_DROPPED_WINDOW_MS;
    int64_t next = watch->dropped_logged_ms ? watch->dropped_logged_ms + S_DROPPED_EVERY_MS
                                            : 0;
    return due > next ? due : next;
}

/*  Sum up watch's dropped handshakes when due, or at once when now is 0
    (the socket closed). */
static void
s_dropped_flush (s_watch_t *watch, int64_t now)
{
    if (!watch->dropped || (now && now < s_dropped_due (watch)))
        return;
    if (!now)
        now = zclock_mono ();
    wc_log_info ("handshakes dropped on the %s socket (%s): %llu connections closed or "
                 "timed out before their handshake completed, in the last %.1f s (peers "
                 "that gave up waiting while this process was paused or busy, or that "
                 "restarted; or a client without CURVE keys that hung up at once); the "
                 "last: %s", watch->name, watch->addr [0] ? watch->addr : "?",
                 (unsigned long long) watch->dropped,
                 (double) (now - watch->dropped_first_ms) / 1000.0,
                 watch->dropped_errno ? strerror (watch->dropped_errno) : "no answer in time");
    watch->dropped_logged_ms = now;
    watch->dropped = 0;
    watch->dropped_first_ms = 0;
}

/*  Log or count one event from a watched socket's monitor. False when
    the monitor stopped (the socket was closed). */
static bool
s_monitor_event (s_watch_t *watch, s_counts_t *counts)
{
    zsock_t *pair = watch->pair;
    zframe_t *head = zframe_recv (pair);
    char *addr = zsock_rcvmore (pair) ? zstr_recv (pair) : NULL;
    bool live = true;
    if (head && zframe_size (head) >= 6) {
        uint16_t event;
        uint32_t value;
        memcpy (&event, zframe_data (head), 2);
        memcpy (&value, zframe_data (head) + 2, 4);
        int64_t now = zclock_mono ();
        if (addr && addr [0])
            snprintf (watch->addr, sizeof watch->addr, "%s", addr);
        if (event == ZMQ_EVENT_MONITOR_STOPPED)
            live = false;
        else
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            //  The connection ended (value: EPIPE when the peer closed
            //  it, ECONNRESET...) or the handshake timed out (value:
            //  whatever errno was then, EAGAIN mostly)
            atomic_fetch_add (&counts->dropped, 1);
            if (!watch->dropped)
                watch->dropped_first_ms = now;
            watch->dropped++;
            watch->dropped_errno = (int) value == EAGAIN ? 0 : (int) value;
        }
        else {
            atomic_fetch_add (&counts->refused, 1);
            if (now - watch->logged_ms >= 1000) {
                wc_log_warn ("refused a connection on the %s socket (%s): %s (%llu more "
                             "refused since the last such line)", watch->name,
                             addr ? addr : "?", s_failure (event, value),
                             (unsigned long long) watch->unlogged);
                watch->logged_ms = now;
                watch->unlogged = 0;
            }
            else
                watch->unlogged++;
        }
    }
    zframe_destroy (&head);
    zstr_free (&addr);
    return live;
}

static void
s_watch_free (void **item)
{
    s_watch_t *watch = (s_watch_t *) *item;
    if (watch)
        zsock_destroy (&watch->pair);
    free (watch);
    *item = NULL;
}

/*  Take a command off the pipe: "WATCH endpoint name" connects to that
    monitor endpoint. False on $TERM. */
static bool
s_monitor_command (zsock_t *pipe, zpoller_t *poller, zhashx_t *watches)
{
    char *cmd = NULL, *endpoint = NULL, *name = NULL;
    bool go_on = zstr_recvx (pipe, &cmd, &endpoint, &name, NULL) >= 1
              && !streq (cmd, "$TERM");
    s_watch_t *watch = go_on && endpoint && name
                     ? (s_watch_t *) calloc (1, sizeof *watch) : NULL;
    if (watch) {
        watch->pair = zsock_new_pair (endpoint);
        snprintf (watch->name, sizeof watch->name, "%s", name);
        if (watch->pair && zpoller_add (poller, watch->pair) == 0)
            zhashx_insert (watches, endpoint, watch);
        else {
            void *item = watch;
            s_watch_free (&item);
        }
    }
    zstr_free (&cmd);
    zstr_free (&endpoint);
    zstr_free (&name);
    return go_on;
}

/*  Sum up the dropped handshakes that are due; the ms until the next
    are, or -1 when none is pending. */
static int
s_dropped_tick (zhashx_t *watches)
{
    int64_t now = zclock_mono (), next = 0;
    for (s_watch_t *w = (s_watch_t *) zhashx_first (watches); w;
         w = (s_watch_t *) zhashx_next (watches)) {
        s_dropped_flush (w, now);
        int64_t due = s_dropped_due (w);
        if (due && (!next || due < next))
            next = due;
    }
    return next ? (int) (next > now ? next - now : 0) : -1;
}

/*  The monitor thread: logs what the watched sockets refuse, and sums
    up the handshakes their connections dropped. */
static void
s_monitor_actor (zsock_t *pipe, void *arg)
{
    s_thread_start ("wc-curve-mon");
    s_counts_t *counts = (s_counts_t *) arg;
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zhashx_t *watches = zhashx_new ();     /* endpoint -> s_watch_t */
    if (watches)
        zhashx_set_destructor (watches, s_watch_free);
    zsock_signal (pipe, 0);
    int wait_ms = -1;
    while (poller && watches) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, wait_ms);
        if (which == pipe) {
            if (!s_monitor_command (pipe, poller, watches))
                break;
        }
        else
        if (!which) {
            if (!zpoller_expired (poller) && s_poll_ended ())
                break;
        }
        else {
            for (s_watch_t *w = (s_watch_t *) zhashx_first (watches); w;
                 w = (s_watch_t *) zhashx_next (watches))
                if (w->pair == which) {
                    if (!s_monitor_event (w, counts)) {
                        s_dropped_flush (w, 0);
                        zpoller_remove (poller, which);
                        zhashx_delete (watches, zhashx_cursor (watches));
                    }
                    break;
                }
        }
        wait_ms = s_dropped_tick (watches);
    }
    zhashx_destroy (&watches);
    zpoller_destroy (&poller);
}

/* --- the handle ------------------------------------------------------------ */

wc_curve_t *
wc_curve_new (const char *cert_path, const char *trust_dir, char *why, size_t why_size)
{
    struct stat st;
    if (stat (trust_dir, &st) != 0 || !S_ISDIR (st.st_mode)) {
        snprintf (why, why_size, "--curve-trust %s is not a folder (make one with "
                  "nodes/, writers/ and readers/ in it)", trust_dir);
        return NULL;
    }
    wc_curve_t *self = (wc_curve_t *) calloc (1, sizeof *self);
    if (!self) {
        snprintf (why, why_size, "out of memory");
        return NULL;
    }
    if (wc_certs_load (cert_path, true, &self->keys, why, why_size) != 0) {
        wc_curve_destroy (&self);
        return NULL;
    }
    snprintf (self->trust, sizeof self->trust, "%s", trust_dir);
    self->signature = s_signature (trust_dir);
    self->peers = s_load_peers (trust_dir);
    self->auth = zactor_new (s_zap_actor, NULL);
    self->monitor = zactor_new (s_monitor_actor, &self->counts);
    if (!self->peers || !self->auth || !self->monitor
    ||  s_zap_trust (self->auth, trust_dir) != 0) {
        snprintf (why, why_size, "cannot start CURVE authentication (another ZAP "
                  "handler in this process, or out of memory)");
        wc_curve_destroy (&self);
        return NULL;
    }
    wc_log_info ("CURVE on: public key %s, %zu trusted keys in %s", self->keys.public_key,
                 zhashx_size (self->peers), trust_dir);
    return self;
}

int
wc_curve_start (const char *cert_path, const char *trust_dir, wc_curve_t **self_p,
                char *why, size_t why_size)
{
    *self_p = NULL;
    if (!cert_path [0] && !trust_dir [0]) {
        wc_log_warn ("no --curve-cert: this process's links are not encrypted and "
                     "anyone who reaches its ports can use them (see README, "
                     "\"A secured cluster\")");
        return 0;
    }
    if (!cert_path [0] || !trust_dir [0]) {
        snprintf (why, why_size, "--curve-cert and --curve-trust go together: give "
                  "both (the key pair and the folder of trusted public certificates)");
        return -1;
    }
    *self_p = wc_curve_new (cert_path, trust_dir, why, why_size);
    if (!*self_p)
        return -1;
    wc_sock_set_curve (*self_p);
    return 0;
}

void
wc_curve_destroy (wc_curve_t **self_p)
{
    wc_curve_t *self = *self_p;
    if (!self)
        return;
    if (wc_sock_curve () == self)
        wc_sock_set_curve (NULL);
    zactor_destroy (&self->monitor);
    zactor_destroy (&self->auth);
    zhashx_destroy (&self->peers);
    free (self);
    *self_p = NULL;
}

const wc_certs_keys_t *
wc_curve_keys (const wc_curve_t *self)
{
    return &self->keys;
}

int
wc_curve_serve (wc_curve_t *self, zsock_t *sock, const char *name)
{
    void *handle = zsock_resolve (sock);
    int one = 1;
    if (zmq_setsockopt (handle, ZMQ_ZAP_DOMAIN, "walcast", 7)
    ||  zmq_setsockopt (handle, ZMQ_CURVE_SERVER, &one, sizeof one)
    ||  zmq_setsockopt (handle, ZMQ_CURVE_SECRETKEY, self->keys.secret_key, 40))
        return -1;
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://wc-curve-monitor-%u", self->watched++);
    if (zmq_socket_monitor (handle, endpoint, S_MONITOR_EVENTS) != 0)
        return -1;
    zstr_sendx (self->monitor, "WATCH", endpoint, name, NULL);
    return 0;
}

uint64_t
wc_curve_refused (wc_curve_t *self)
{
    return atomic_load (&self->counts.refused);
}

uint64_t
wc_curve_dropped (wc_curve_t *self)
{
    return atomic_load (&self->counts.dropped);
}
