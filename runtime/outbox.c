/*  outbox.c - replies to ROUTER peers, bounded in bytes per peer (see
    outbox.h).

    Peers that have replies waiting, large replies in flight, or that are
    cut off live in a hash table keyed by their routing id in hex; every
    other peer costs nothing. Each has a FIFO of waiting replies (each one
    block holding its frames back to back) and a gauge: the bytes of its
    large replies libzmq has not written yet. The gauge is shared with
    libzmq's I/O thread, which lowers it from the free callback of each
    zero-copy message, so it is atomic and reference counted (the peer
    record and every message in flight hold a reference).

    A reply is refused by the ROUTER only on its first frame (the routing
    id picks the queue), so a multipart reply is never sent half.
*/
#include <czmq.h>
#include <stdatomic.h>
#include <string.h>
#include "clock.h"
#include "log.h"
#include "outbox.h"
#include "wc_limits.h"

#define S_STUCK_MS    10000     /* a queue that moves not for this long: cut off */
#define S_CUT_MS      30000     /* how long a cut-off peer's requests are refused */
#define S_RETRY_MS    2         /* wait before retrying a queue that did not move */
#define S_SWEEP_MS    1000      /* forget idle peers this often */

/*  Bytes of a peer's large replies libzmq still holds. */
typedef struct {
    atomic_size_t inflight;
    atomic_int    refs;
} s_gauge_t;

/*  A large reply body handed to libzmq without a copy. */
typedef struct {
    s_gauge_t *gauge;
    size_t     len;
    uint8_t    data [];
} s_large_t;

/*  One waiting reply: its frames back to back in data. */
typedef struct s_reply {
    struct s_reply *next;
    int             nframes;
    size_t          sizes [WC_MAX_FRAMES];
    size_t          total;
    uint8_t         data [];
} s_reply_t;

/*  A peer the outbox tracks. */
typedef struct {
    s_reply_t *head, *tail;     /* waiting replies, oldest first */
    size_t     bytes;           /* their total size */
    int64_t    moved_ms;        /* when its queue last moved (or began) */
    int64_t    cut_ms;          /* when it was cut off; 0 when it is not */
    s_gauge_t *gauge;           /* its large replies in flight */
} s_peer_t;

struct wc_outbox {
    void     *router;           /* the ROUTER, not owned */
    char      name [32];        /* the socket's name, for logs */
    size_t    budget;           /* bytes in flight, and waiting, per peer */
    zhashx_t *peers;            /* hex routing id -> s_peer_t */
    size_t    waiting;          /* peers with replies waiting */
    size_t    cut;              /* peers cut off */
    size_t    bytes;            /* bytes waiting, all peers */
    int64_t   swept_ms;         /* when idle peers were last forgotten */
    uint64_t  dropped;          /* replies dropped */
    uint64_t  cut_offs;         /* peers cut off, ever */
};


//  --------------------------------------------------------------------
//  Gauges and peers

static void
s_gauge_release (s_gauge_t *gauge)
{
    if (atomic_fetch_sub (&gauge->refs, 1) == 1)
        free (gauge);
}

//  libzmq is done with a large reply (it was written, or dropped).
//  Runs in libzmq's I/O thread.
static void
s_large_free (void *data, void *hint)
{
    (void) data;
    s_large_t *large = (s_large_t *) hint;
    atomic_fetch_sub (&large->gauge->inflight, large->len);
    s_gauge_release (large->gauge);
    free (large);
}

static void
s_peer_clear (wc_outbox_t *self, s_peer_t *peer)
{
    while (peer->head) {
        s_reply_t *reply = peer->head;
        peer->head = reply->next;
        self->bytes -= reply->total;
        self->dropped++;
        free (reply);
    }
    peer->tail = NULL;
    if (peer->bytes)
        self->waiting--;
    peer->bytes = 0;
}

static void
s_peer_destroy (void **item)
{
    s_peer_t *peer = (s_peer_t *) *item;
    if (peer)
        s_gauge_release (peer->gauge);
    free (peer);
    *item = NULL;
}

//  The hash key of a routing id: its bytes in hex; key holds 511 bytes.
static const char *
s_key (const zmq_msg_t *identity, char *key)
{
    static const char hex [] = "0123456789abcdef";
    const uint8_t *data = (const uint8_t *) zmq_msg_data ((zmq_msg_t *) identity);
    size_t size = zmq_msg_size ((zmq_msg_t *) identity);
    if (size > WC_MAX_ENVELOPE_FRAME)
        size = WC_MAX_ENVELOPE_FRAME;
    for (size_t i = 0; i < size; i++) {
        key [2 * i] = hex [data [i] >> 4];
        key [2 * i + 1] = hex [data [i] & 15];
    }
    key [2 * size] = '\0';
    return key;
}

//  The peer record for key, made when make is true; NULL otherwise.
static s_peer_t *
s_peer (wc_outbox_t *self, const char *key, bool make)
{
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, key);
    if (peer || !make)
        return peer;
    peer = (s_peer_t *) calloc (1, sizeof *peer);
    s_gauge_t *gauge = (s_gauge_t *) calloc (1, sizeof *gauge);
    if (!peer || !gauge) {
        free (peer);
        free (gauge);
        return NULL;
    }
    atomic_init (&gauge->inflight, 0);
    atomic_init (&gauge->refs, 1);
    peer->gauge = gauge;
    if (zhashx_insert (self->peers, key, peer) != 0) {
        s_peer_destroy ((void **) &peer);
        return NULL;
    }
    return peer;
}


//  --------------------------------------------------------------------
//  Sending

wc_outbox_t *
wc_outbox_new (void *router, const char *name, size_t budget)
{
    wc_outbox_t *self = (wc_outbox_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->router = router;
    snprintf (self->name, sizeof self->name, "%s", name);
    self->budget = budget;
    self->peers = zhashx_new ();
    if (!self->peers) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->peers, s_peer_destroy);
    return self;
}

void
wc_outbox_destroy (wc_outbox_t **self_p)
{
    wc_outbox_t *self = *self_p;
    if (!self)
        return;
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        s_peer_clear (self, peer);
    zhashx_destroy (&self->peers);
    free (self);
    *self_p = NULL;
}

//  Send the frames of one reply; the last one zero-copy when gauge is
//  given (a large reply). Returns 0, or -1 with zmq_errno set (EAGAIN:
//  the peer's queue is full, nothing was sent).
static int
s_send_frames (void *router, int nframes, const void *const *data,
               const size_t *sizes, s_gauge_t *gauge)
{
    for (int i = 0; i < nframes - 1; i++)
        if (zmq_send (router, data [i], sizes [i], ZMQ_DONTWAIT | ZMQ_SNDMORE) == -1)
            return -1;
    size_t len = sizes [nframes - 1];
    if (!gauge)
        return zmq_send (router, data [nframes - 1], len, ZMQ_DONTWAIT) == -1 ? -1 : 0;
    s_large_t *large = (s_large_t *) malloc (sizeof *large + len);
    zmq_msg_t msg;
    if (!large)
        return zmq_send (router, data [nframes - 1], len, ZMQ_DONTWAIT) == -1 ? -1 : 0;
    memcpy (large->data, data [nframes - 1], len);
    large->len = len;
    large->gauge = gauge;
    atomic_fetch_add (&gauge->refs, 1);
    atomic_fetch_add (&gauge->inflight, len);
    zmq_msg_init_data (&msg, large->data, len, s_large_free, large);
    int rc = zmq_msg_send (&msg, router, ZMQ_DONTWAIT);
    if (rc == -1)
        zmq_msg_close (&msg);               //  calls s_large_free
    return rc == -1 ? -1 : 0;
}

//  Cut a peer off: drop what waits for it, refuse it for a while.
static void
s_cut_off (wc_outbox_t *self, s_peer_t *peer, const char *key, const char *why)
{
    size_t bytes = peer->bytes;
    s_peer_clear (self, peer);
    if (!peer->cut_ms)
        self->cut++;
    peer->cut_ms = wc_clock_ms ();
    self->cut_offs++;
    wc_log_warn ("cut off: a peer of the %s socket (routing id %.16s%s) %s "
                 "(%zu bytes of replies waiting); its replies are dropped and its "
                 "requests refused for %d s", self->name, key,
                 strlen (key) > 16 ? "..." : "", why, bytes, S_CUT_MS / 1000);
}

//  Keep a reply for a peer that cannot take it now.
static int
s_keep (wc_outbox_t *self, s_peer_t *peer, const char *key, int nframes,
        const void *const *data, const size_t *sizes, size_t total)
{
    if (peer->bytes + total > self->budget) {
        s_cut_off (self, peer, key, "is not reading its replies");
        self->dropped++;
        return -1;
    }
    s_reply_t *reply = (s_reply_t *) malloc (sizeof *reply + total);
    if (!reply) {
        self->dropped++;
        return -1;
    }
    reply->next = NULL;
    reply->nframes = nframes;
    reply->total = total;
    size_t at = 0;
    for (int i = 0; i < nframes; i++) {
        reply->sizes [i] = sizes [i];
        memcpy (reply->data + at, data [i], sizes [i]);
        at += sizes [i];
    }
    if (!peer->head) {
        self->waiting++;
        peer->moved_ms = wc_clock_ms ();
        peer->head = reply;
    }
    else
        peer->tail->next = reply;
    peer->tail = reply;
    peer->bytes += total;
    self->bytes += total;
    return 0;
}

//  True when a large reply of len bytes may go to peer now.
static bool
s_room (wc_outbox_t *self, s_peer_t *peer, size_t len)
{
    return atomic_load (&peer->gauge->inflight) + len <= self->budget;
}

int
wc_outbox_send (wc_outbox_t *self, const zmq_msg_t *envelope, int nenvelope,
                const void *body, size_t len)
{
    if (nenvelope < 1 || nenvelope >= (int) WC_MAX_FRAMES)
        return -1;
    const void *data [WC_MAX_FRAMES];
    size_t sizes [WC_MAX_FRAMES], total = len;
    for (int i = 0; i < nenvelope; i++) {
        data [i] = zmq_msg_data ((zmq_msg_t *) &envelope [i]);
        sizes [i] = zmq_msg_size ((zmq_msg_t *) &envelope [i]);
        total += sizes [i];
    }
    data [nenvelope] = body;
    sizes [nenvelope] = len;
    int nframes = nenvelope + 1;
    bool large = len > WC_OUTBOX_SMALL;

    char key [2 * WC_MAX_ENVELOPE_FRAME + 1] = "";
    s_peer_t *peer = NULL;
    if (large || zhashx_size (self->peers) > 0)
        peer = s_peer (self, s_key (&envelope [0], key), large);
    if (peer && peer->cut_ms) {
        self->dropped++;
        return -1;
    }
    if (large && !peer) {
        self->dropped++;                    //  out of memory
        return -1;
    }
    if ((!peer || !peer->head) && (!large || s_room (self, peer, len))) {
        if (s_send_frames (self->router, nframes, data, sizes,
                           large ? peer->gauge : NULL) == 0)
            return 0;
        if (zmq_errno () != EAGAIN) {
            self->dropped++;                //  the peer is gone
            return -1;
        }
    }
    if (!*key)
        s_key (&envelope [0], key);
    peer = peer ? peer : s_peer (self, key, true);
    if (!peer) {
        self->dropped++;
        return -1;
    }
    return s_keep (self, peer, key, nframes, data, sizes, total);
}


//  --------------------------------------------------------------------
//  Retrying

//  Send what waits for one peer; true when its queue moved.
static bool
s_flush_peer (wc_outbox_t *self, s_peer_t *peer, const char *key, int64_t now)
{
    bool moved = false;
    while (peer->head) {
        s_reply_t *reply = peer->head;
        const void *data [WC_MAX_FRAMES];
        size_t at = 0;
        for (int i = 0; i < reply->nframes; i++) {
            data [i] = reply->data + at;
            at += reply->sizes [i];
        }
        size_t len = reply->sizes [reply->nframes - 1];
        bool large = len > WC_OUTBOX_SMALL;
        int rc = 0;                     //  1: wait, -1: the peer is gone
        if (large && !s_room (self, peer, len))
            rc = 1;                     //  until libzmq writes what is in flight
        else
        if (s_send_frames (self->router, reply->nframes, data, reply->sizes,
                           large ? peer->gauge : NULL) != 0)
            rc = zmq_errno () == EAGAIN ? 1 : -1;
        if (rc < 0)
            s_peer_clear (self, peer);  //  nobody to tell
        if (rc > 0 && now - peer->moved_ms >= S_STUCK_MS)
            s_cut_off (self, peer, key, "has not read a reply for 10 s");
        if (rc != 0)
            return moved;
        peer->head = reply->next;
        peer->bytes -= reply->total;
        self->bytes -= reply->total;
        free (reply);
        moved = true;
        peer->moved_ms = now;
    }
    peer->tail = NULL;
    self->waiting--;
    return moved;
}

//  True when the outbox may forget this peer: nothing waits, nothing in
//  flight, not cut off.
static bool
s_idle (const s_peer_t *peer)
{
    return !peer->head && !peer->cut_ms
        && atomic_load (&((s_peer_t *) peer)->gauge->inflight) == 0;
}

int
wc_outbox_flush (wc_outbox_t *self)
{
    int64_t now = wc_clock_ms ();
    if (!self->waiting
    &&  (zhashx_size (self->peers) == 0 || now - self->swept_ms < S_SWEEP_MS))
        return zhashx_size (self->peers) ? S_SWEEP_MS : -1;
    self->swept_ms = now;
    bool moved = false;
    zlistx_t *idle = zlistx_new ();
    if (idle) {
        zlistx_set_duplicator (idle, (czmq_duplicator *) strdup);
        zlistx_set_destructor (idle, (czmq_destructor *) zstr_free);
    }
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers)) {
        const char *key = (const char *) zhashx_cursor (self->peers);
        if (peer->head)
            moved |= s_flush_peer (self, peer, key, now);
        if (peer->cut_ms && now - peer->cut_ms >= S_CUT_MS) {
            peer->cut_ms = 0;
            self->cut--;
        }
        if (s_idle (peer) && idle)
            zlistx_add_end (idle, (void *) key);
    }
    //  Forget idle peers (not while iterating the table)
    if (idle) {
        for (const char *key = (const char *) zlistx_first (idle); key;
             key = (const char *) zlistx_next (idle))
            zhashx_delete (self->peers, key);
        zlistx_destroy (&idle);
    }
    if (self->waiting)
        return moved ? 0 : S_RETRY_MS;
    return zhashx_size (self->peers) ? S_SWEEP_MS : -1;
}

bool
wc_outbox_refused (wc_outbox_t *self, const zmq_msg_t *identity)
{
    if (!self->cut)
        return false;
    char key [2 * WC_MAX_ENVELOPE_FRAME + 1];
    s_peer_t *peer = s_peer (self, s_key (identity, key), false);
    return peer && peer->cut_ms;
}

size_t
wc_outbox_bytes (const wc_outbox_t *self)
{
    return self->bytes;
}

uint64_t
wc_outbox_dropped (const wc_outbox_t *self)
{
    return self->dropped;
}

uint64_t
wc_outbox_cut_offs (const wc_outbox_t *self)
{
    return self->cut_offs;
}
