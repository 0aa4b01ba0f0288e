/*  addr.h - the HOST:PORT grammar of node addresses.

    Every address that crosses the wire (a node's addr and primary in
    REGISTER, NODE_HEARTBEAT and TOPOLOGY, the detail of ENOTPRIMARY) and
    every address a flag takes is checked by this one function, by the
    grammar docs/PROTOCOL.md gives ("Addresses"):

        host-port = host ":" port
        host      = reg-name / IPv4address / "[" IPv6address "]"
        reg-name  = 1*( ALPHA / DIGIT / "-" / "." / "_" )
        port      = 1*5DIGIT            ; 1..65535, no leading zero

    A checked address can be turned into a ZeroMQ endpoint
    ("tcp://" HOST ":" PORT) without surprises: no spaces, no control
    bytes, no second colon outside brackets, a port that exists.
*/
#ifndef WC_ADDR_H_INCLUDED
#define WC_ADDR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

/*  True when addr[0..len) is a well-formed HOST:PORT of at most
    WC_MAX_ADDR octets whose port is in 1..max_port (a node's base port
    must leave room for P+1 and P+2: pass 65533; else 65535). When it is,
    *port (if not NULL) is the port. */
bool wc_addr_check (const char *addr, size_t len, int max_port, int *port);

/*  Node ids and regions (node_info's id and region) are printable octets
    without spaces, 0x21..0x7E: the broker admits no others, and a node
    refuses such flags at start. True when name[0..len) is; else *bad_at
    (if not NULL) is the offset of the first octet that is not. */
bool wc_name_check (const void *name, size_t len, size_t *bad_at);

#endif
