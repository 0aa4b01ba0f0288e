/*  broker_peer.c - a raw peer of walcast-broker (see broker_peer.h).

    One ZeroMQ context per peer, so a test can open and close peers freely.
    Replies are received whole (every frame) and only the last frame is
    decoded: a REQ peer gets [empty][body] from libzmq as just [body], a
    DEALER gets [body].
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>
#include "broker_peer.h"
#include "cluster.h"

#define S_REPLY_MS  3000

struct broker_peer {
    void            *ctx;
    void            *sock;
    zmq_msg_t        reply;        /* last frame of the last reply */
    bool             have_reply;
    msgpack_unpacked unpacked;     /* owns the decoded reply's objects */
};

broker_peer_t *
broker_peer_new (const char *addr, int type)
{
    broker_peer_t *self = (broker_peer_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    msgpack_unpacked_init (&self->unpacked);
    self->ctx = zmq_ctx_new ();
    self->sock = self->ctx ? zmq_socket (self->ctx, type) : NULL;
    char endpoint [300];
    snprintf (endpoint, sizeof endpoint, "tcp://%s", addr);
    int linger = 0;
    if (!self->sock
    ||  zmq_setsockopt (self->sock, ZMQ_LINGER, &linger, sizeof linger)
    ||  zmq_connect (self->sock, endpoint)) {
        fprintf (stderr, "broker_peer: cannot connect to %s: %s\n", endpoint,
                 zmq_strerror (zmq_errno ()));
        broker_peer_destroy (&self);
    }
    return self;
}

void
broker_peer_destroy (broker_peer_t **self_p)
{
    broker_peer_t *self = *self_p;
    if (!self)
        return;
    if (self->have_reply)
        zmq_msg_close (&self->reply);
    msgpack_unpacked_destroy (&self->unpacked);
    if (self->sock)
        zmq_close (self->sock);
    if (self->ctx)
        zmq_ctx_term (self->ctx);
    free (self);
    *self_p = NULL;
}

int
broker_peer_send (broker_peer_t *self, const void *body, size_t len)
{
    if (zmq_send (self->sock, body, len, 0) == -1) {
        fprintf (stderr, "broker_peer: send: %s\n", zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

int
broker_peer_recv (broker_peer_t *self, int timeout_ms, wc_msg_t *msg)
{
    zmq_pollitem_t item = { self->sock, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return 1;
    if (self->have_reply)
        zmq_msg_close (&self->reply);
    zmq_msg_init (&self->reply);
    self->have_reply = true;
    int more = 1;
    while (more) {
        zmq_msg_close (&self->reply);
        zmq_msg_init (&self->reply);
        if (zmq_msg_recv (&self->reply, self->sock, 0) == -1)
            return 1;
        more = zmq_msg_more (&self->reply);
    }
    return wc_msg_decode (zmq_msg_data (&self->reply), zmq_msg_size (&self->reply),
                          &self->unpacked, msg);
}

int
broker_peer_topology (broker_peer_t *self, uint64_t rid, int timeout_ms,
                      wc_msg_t *msg)
{
    uint8_t body [16];
    msgpack_sbuffer sb = { 0 };
    msgpack_sbuffer_init (&sb);
    wc_msg_t get = { .type = WC_MSG_TOPOLOGY_GET, .rid = rid };
    int rc = wc_msg_encode (&get, &sb);
    if (rc == 0 && sb.size <= sizeof body)
        memcpy (body, sb.data, sb.size);
    size_t len = sb.size;
    msgpack_sbuffer_destroy (&sb);
    if (rc || broker_peer_send (self, body, len))
        return -1;
    //  Replies to earlier requests may come first
    do
        rc = broker_peer_recv (self, timeout_ms, msg);
    while (rc != 1 && msg->rid != rid);
    if (rc != 0 || msg->type != WC_MSG_TOPOLOGY || msg->rid != rid) {
        fprintf (stderr, "broker_peer: TOPOLOGY_GET %llu: %s (type %d, rid %llu)\n",
                 (unsigned long long) rid, rc == 1 ? "no reply" : "bad reply",
                 msg->type, (unsigned long long) msg->rid);
        return -1;
    }
    return 0;
}

static void
s_pack_bytes (msgpack_packer *pk, wc_bytes_t bytes)
{
    msgpack_pack_str (pk, bytes.len);
    if (bytes.len)
        msgpack_pack_str_body (pk, bytes.ptr, bytes.len);
}

void
broker_peer_pack_node (msgpack_sbuffer *out, int type, uint64_t rid,
                       const wc_node_info_t *info, int nfields,
                       int bad_field, const void *bad, size_t bad_len)
{
    out->size = 0;
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 4);
    msgpack_pack_uint64 (&pk, 1);
    msgpack_pack_uint64 (&pk, (uint64_t) type);
    msgpack_pack_uint64 (&pk, rid);
    msgpack_pack_array (&pk, (uint32_t) nfields);
    for (int i = 0; i < nfields; i++) {
        if (i == bad_field) {
            msgpack_sbuffer_write (out, (const char *) bad, bad_len);
            continue;
        }
        switch (i) {
            case 0:  s_pack_bytes (&pk, info->id); break;
            case 1:  s_pack_bytes (&pk, info->region); break;
            case 2:  msgpack_pack_uint64 (&pk, info->role); break;
            case 3:  msgpack_pack_uint64 (&pk, info->epoch); break;
            case 4:  msgpack_pack_uint64 (&pk, info->applied_seq); break;
            case 5:  s_pack_bytes (&pk, info->addr); break;
            case 6:  s_pack_bytes (&pk, info->primary); break;
            case 7:  msgpack_pack_uint64 (&pk, info->lag); break;
            case 8:  msgpack_pack_uint64 (&pk, info->lag_ms); break;
            case 9:  if (info->up) msgpack_pack_true (&pk);
                     else msgpack_pack_false (&pk);
                     break;
            case 10: msgpack_pack_uint64 (&pk, info->silent_ms); break;
            case 11: msgpack_pack_uint64 (&pk, info->flags); break;
            case 12: msgpack_pack_uint64 (&pk, info->handover_seq); break;
            default: s_pack_bytes (&pk, info->curve_key); break;
        }
    }
}

static wc_bytes_t
s_bytes (const char *text)
{
    return (wc_bytes_t) { (const uint8_t *) text, (uint32_t) strlen (text) };
}

wc_node_info_t
broker_peer_info (const char *id, const char *region, int role,
                  const char *addr, const char *primary)
{
    wc_node_info_t info;
    memset (&info, 0, sizeof info);
    info.id = s_bytes (id);
    info.region = s_bytes (region);
    info.role = (uint8_t) role;
    info.epoch = 1;
    info.addr = s_bytes (addr);
    info.primary = s_bytes (primary);
    info.up = true;
    return info;
}

void
broker_peer_error_text (const wc_msg_t *msg, char *buf, size_t size)
{
    if (msg->type != WC_MSG_ERROR) {
        snprintf (buf, size, "(not an ERROR: type %d)", msg->type);
        return;
    }
    wc_bytes_printable (buf, size, &msg->u.error.text);
}

/* --- fake nodes ------------------------------------------------------- */

int
broker_fake_init (broker_fake_t *f, const char *broker, const char *id,
                  const char *addr, int role, const char *primary,
                  uint64_t epoch, uint64_t seq, uint64_t flags)
{
    memset (f, 0, sizeof *f);
    f->peer = broker_peer_new (broker, ZMQ_DEALER);
    snprintf (f->id, sizeof f->id, "%s", id);
    snprintf (f->addr, sizeof f->addr, "%s", addr);
    snprintf (f->primary, sizeof f->primary, "%s", primary ? primary : "");
    f->role = role;
    f->epoch = epoch;
    f->seq = seq;
    f->flags = flags;
    return f->peer ? 0 : -1;
}

void
broker_fake_fini (broker_fake_t *f)
{
    broker_peer_destroy (&f->peer);
}

static int
s_send_msg (broker_peer_t *peer, const wc_msg_t *msg)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    int rc = wc_msg_encode (msg, &body);
    if (rc == 0)
        rc = broker_peer_send (peer, body.data, body.size);
    else
        fprintf (stderr, "broker_fake: cannot encode %s: %s\n",
                 wc_msg_type_name (msg->type), walcast_errname (rc));
    msgpack_sbuffer_destroy (&body);
    return rc;
}

/*  A reply to the beat: admitted, the directive, or a FORGET. */
static void
s_told (broker_fake_t *f, const wc_msg_t *reply, broker_told_t *told)
{
    if (reply->type == WC_MSG_TOPOLOGY) {
        f->admitted = true;
        return;
    }
    if (reply->type == WC_MSG_FORGET) {     /* beside a directive, not one */
        wc_bytes_printable (told->forgotten, sizeof told->forgotten,
                            &reply->u.forget.node_id);
        return;
    }
    told->type = reply->type;
    if (reply->type == WC_MSG_PROMOTE)
        told->epoch = reply->u.promote.epoch;
    if (reply->type == WC_MSG_FOLLOW) {
        told->epoch = reply->u.follow.epoch;
        wc_bytes_printable (told->addr, sizeof told->addr, &reply->u.follow.primary);
    }
    if (reply->type == WC_MSG_HANDOVER) {
        told->epoch = reply->u.handover.epoch;
        wc_bytes_printable (told->addr, sizeof told->addr, &reply->u.handover.target_addr);
        wc_bytes_printable (told->target, sizeof told->target,
                            &reply->u.handover.target_id);
    }
    if (reply->type == WC_MSG_ERROR)
        wc_bytes_printable (told->addr, sizeof told->addr, &reply->u.error.text);
}

int
broker_fake_beat (broker_fake_t *f, broker_told_t *told)
{
    memset (told, 0, sizeof *told);
    wc_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.type = f->admitted ? WC_MSG_NODE_HEARTBEAT : WC_MSG_REGISTER;
    msg.rid = ++f->rid;
    wc_node_info_t *info = &msg.u.node;
    info->id = (wc_bytes_t) { (const uint8_t *) f->id, (uint32_t) strlen (f->id) };
    info->region = (wc_bytes_t) { (const uint8_t *) f->region,
                                  (uint32_t) strlen (f->region) };
    info->role = (uint8_t) f->role;
    info->epoch = f->epoch;
    info->applied_seq = f->seq;
    info->addr = (wc_bytes_t) { (const uint8_t *) f->addr, (uint32_t) strlen (f->addr) };
    info->primary = (wc_bytes_t) { (const uint8_t *) f->primary,
                                   (uint32_t) strlen (f->primary) };
    info->up = true;
    info->flags = f->flags;
    info->handover_seq = f->handover_seq;
    uint64_t beat = f->rid;
    wc_msg_t get = { .type = WC_MSG_TOPOLOGY_GET, .rid = ++f->rid };
    if (s_send_msg (f->peer, &msg) || s_send_msg (f->peer, &get))
        return -1;
    int64_t deadline = cluster_now_ms () + S_REPLY_MS;
    while (cluster_now_ms () < deadline) {
        wc_msg_t reply;
        if (broker_peer_recv (f->peer, 100, &reply) != 0)
            continue;
        if (reply.type == WC_MSG_TOPOLOGY && reply.rid == get.rid)
            return 0;
        if (reply.rid == beat)
            s_told (f, &reply, told);
    }
    fprintf (stderr, "broker_fake %s: no TOPOLOGY after its beat within %d ms\n",
             f->id, S_REPLY_MS);
    return -1;
}

const char *
broker_told_str (const broker_told_t *told, char *buf, size_t size)
{
    if (told->type == 0)
        snprintf (buf, size, "nothing");
    else
        snprintf (buf, size, "%s(%llu, \"%s\", \"%s\")", wc_msg_type_name (told->type),
                  (unsigned long long) told->epoch, told->target, told->addr);
    return buf;
}

static bool
s_is_told (const broker_told_t *told, int type, uint64_t epoch, const char *addr)
{
    return told->type == type && (!type || !epoch || told->epoch == epoch)
        && (!addr || strcmp (told->addr, addr) == 0);
}

int64_t
broker_fake_until (broker_fake_t **all, size_t count, broker_fake_t *who,
                   int type, uint64_t epoch, const char *addr, int timeout_ms)
{
    int64_t start = cluster_now_ms ();
    char last [160] = "nothing";
    while (cluster_now_ms () - start < timeout_ms) {
        for (size_t i = 0; i < count; i++) {
            broker_told_t told;
            if (broker_fake_beat (all [i], &told) != 0)
                return -1;
            if (all [i] != who)
                continue;
            broker_told_str (&told, last, sizeof last);
            if (s_is_told (&told, type, epoch, addr))
                return cluster_now_ms () - start;
        }
        cluster_nap_ms (100);
    }
    fprintf (stderr, "%s was not told %s(%llu, %s) within %d ms; last told %s\n",
             who->id, wc_msg_type_name (type), (unsigned long long) epoch,
             addr ? addr : "*", timeout_ms, last);
    return -1;
}

int
broker_fake_expect (broker_fake_t *f, int type, uint64_t epoch, const char *addr)
{
    broker_told_t told;
    if (broker_fake_beat (f, &told) != 0)
        return -1;
    if (s_is_told (&told, type, epoch, addr))
        return 0;
    char got [160];
    fprintf (stderr, "%s was told %s; expected %s(%llu, %s)\n", f->id,
             broker_told_str (&told, got, sizeof got),
             type ? wc_msg_type_name (type) : "nothing", (unsigned long long) epoch,
             addr ? addr : "");
    return -1;
}

int
broker_log_count (const char *path, const char *text, char *line, size_t size)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    char buf [4096];
    int count = 0;
    while (fgets (buf, sizeof buf, file))
        if (strstr (buf, text)) {
            if (line && count == 0)
                snprintf (line, size, "%s", buf);
            count++;
        }
    fclose (file);
    return count;
}
