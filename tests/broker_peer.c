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
            default: msgpack_pack_uint64 (&pk, info->silent_ms); break;
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
