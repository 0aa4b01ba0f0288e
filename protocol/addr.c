/*  addr.c - the HOST:PORT grammar (see addr.h).

    A small hand-written recogniser: the grammar is three alternatives for
    the host and a number for the port, simpler than any library call that
    would also resolve names (getaddrinfo) or accept more than we want.
*/
#include <string.h>
#include "addr.h"
#include "wc_limits.h"

//  A reg-name or an IPv4 address (which is a reg-name too, by its bytes).
static bool
s_reg_name (const char *host, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = host [i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
               || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

//  "[" IPv6address "]": hex digits, colons and dots (an embedded IPv4),
//  at least two colons.
static bool
s_ipv6 (const char *host, size_t len)
{
    if (len < 4 || host [0] != '[' || host [len - 1] != ']')
        return false;
    int colons = 0;
    for (size_t i = 1; i + 1 < len; i++) {
        char c = host [i];
        bool ok = (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
               || (c >= '0' && c <= '9') || c == ':' || c == '.';
        if (!ok)
            return false;
        colons += c == ':';
    }
    return colons >= 2;
}

bool
wc_addr_check (const char *addr, size_t len, int max_port, int *port)
{
    if (!addr || len < 3 || len > WC_MAX_ADDR)
        return false;
    const char *colon = NULL;
    for (size_t i = len; i-- > 0; )
        if (addr [i] == ':') {
            colon = addr + i;
            break;
        }
    if (!colon)
        return false;
    size_t host_len = (size_t) (colon - addr);
    size_t port_len = len - host_len - 1;
    if (port_len < 1 || port_len > 5 || colon [1] == '0')
        return false;
    long value = 0;
    for (size_t i = 0; i < port_len; i++) {
        if (colon [1 + i] < '0' || colon [1 + i] > '9')
            return false;
        value = value * 10 + (colon [1 + i] - '0');
    }
    if (value < 1 || value > max_port)
        return false;
    bool host_ok = addr [0] == '[' ? s_ipv6 (addr, host_len)
                                   : s_reg_name (addr, host_len);
    if (host_ok && port)
        *port = (int) value;
    return host_ok;
}

bool
wc_name_check (const void *name, size_t len, size_t *bad_at)
{
    const unsigned char *octets = (const unsigned char *) name;
    for (size_t i = 0; i < len; i++)
        if (octets [i] < 0x21 || octets [i] > 0x7e) {
            if (bad_at)
                *bad_at = i;
            return false;
        }
    return true;
}
