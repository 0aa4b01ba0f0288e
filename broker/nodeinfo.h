/*  nodeinfo.h - what a node may say of itself to the broker.

    The codec checks the shape of a node_info (types, lengths, a role of 1
    or 2). The broker also checks what it says, by the grammar of
    docs/PROTOCOL.md ("Broker", admission rules): printable ids and
    regions, addresses that are HOST:PORT with a base port a node can
    have, a primary field that agrees with the role (an epoch of 0 is
    fine: a node whose epoch history is empty). Only a node_info that
    passes both enters the directory, so every TOPOLOGY the broker serves
    is one a client can use whole.

    Both checks say why in one line that starts with the field at fault
    ("addr \"nocolon\" is not HOST:PORT ..."): the broker sends it back in
    its ERROR, so the refused node can log it and its operator fix it.
*/
#ifndef WC_NODEINFO_H_INCLUDED
#define WC_NODEINFO_H_INCLUDED

#include <stddef.h>
#include <msgpack.h>
#include "codec.h"

/*  Check the content of a decoded node_info. Returns 0, WALCAST_EPROTO
    (a value outside what the grammar allows) or WALCAST_ETOOBIG (a string
    over its limit); on failure why (may be NULL) gets the reason. */
int wc_nodeinfo_check (const wc_node_info_t *info, char *why, size_t size);

/*  The codec refused a REGISTER or NODE_HEARTBEAT whose body unpacked
    into message (the whole [version, type, rid, node_info] array): write
    into why which field is wrong and how. Always writes something. */
void wc_nodeinfo_explain (const msgpack_object *message, char *why, size_t size);

#endif
