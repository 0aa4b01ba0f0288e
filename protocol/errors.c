/*  errors.c - names and messages of walcast error codes, and their wire form.

    One table gives every WALCAST_E* code of include/walcast.h its short
    name and its message; walcast_errname, walcast_strerror and the wire
    mapping all read it, so adding a code means adding one line here.

    On the wire an ERROR message carries the code negated (a positive
    integer). A wire code this build does not know becomes WALCAST_EPROTO:
    a newer peer may have codes we cannot name, and "unexpected reply" is
    the honest reading of one.
*/
#include <stddef.h>
#include "errors.h"

typedef struct {
    int         code;       /* WALCAST_E*, 0 or negative */
    const char *name;       /* "ENOTPRIMARY" */
    const char *message;    /* human text */
} s_error_t;

static const s_error_t s_errors [] = {
    { WALCAST_OK,           "OK",           "success" },
    { WALCAST_EINVAL,       "EINVAL",       "invalid argument" },
    { WALCAST_EPROTO,       "EPROTO",       "malformed or unexpected message" },
    { WALCAST_EVERSION,     "EVERSION",     "unsupported protocol version" },
    { WALCAST_ETOOBIG,      "ETOOBIG",      "key, value or message over its limit" },
    { WALCAST_ENOTFOUND,    "ENOTFOUND",    "key not found" },
    { WALCAST_ENOTPRIMARY,  "ENOTPRIMARY",  "node is not the primary" },
    { WALCAST_ETIMEOUT,     "ETIMEOUT",     "no answer within the timeout" },
    { WALCAST_EIO,          "EIO",          "the node could not write or sync its log" },
    { WALCAST_ENOMEM,       "ENOMEM",       "out of memory" },
    { WALCAST_ERANGE,       "ERANGE",       "sequence number outside what the node holds" },
    { WALCAST_EUNAVAILABLE, "EUNAVAILABLE", "no node to send to, or socket failure" },
    { WALCAST_EBUSY,        "EBUSY",        "node overloaded or not ready; retry later" },
    { WALCAST_ESTALE,       "ESTALE",       "node is behind what the read asked for" },
    { WALCAST_ENOSPC,       "ENOSPC",       "no space left on the node's disk; the write was not made" },
    { WALCAST_ECONFLICT,    "ECONFLICT",    "refused: it conflicts with the cluster's state" },
    { WALCAST_ENOTREPLICATED, "ENOTREPLICATED",
      "durable on the primary, but fewer replicas than asked confirmed it in time" },
    { WALCAST_EFEWREPLICAS, "EFEWREPLICAS",
      "refused: fewer replicas than the primary requires are current" },
    { WALCAST_EFENCED,      "EFENCED",      "refused: it comes from an older epoch" },
    { WALCAST_EPERM,        "EPERM",        "refused: the key's role does not allow it" },
    { WALCAST_EWRITE,       "EWRITE",
      "the node could not write its log (a read-only or failing disk); the write was "
      "not made" }
};

#define S_NERRORS (sizeof s_errors / sizeof s_errors [0])

//  Table entry for a library code, or NULL.
static const s_error_t *
s_lookup (int err)
{
    for (size_t i = 0; i < S_NERRORS; i++)
        if (s_errors [i].code == err)
            return &s_errors [i];
    return NULL;
}

WALCAST_EXPORT const char *
walcast_errname (int err)
{
    const s_error_t *e = s_lookup (err);
    return e ? e->name : "EUNKNOWN";
}

WALCAST_EXPORT const char *
walcast_strerror (int err)
{
    const s_error_t *e = s_lookup (err);
    return e ? e->message : "unknown error";
}

//  Library code -> wire code. Every code a node sends is in the table; an
//  unknown or non-negative one is a bug in the caller and goes out as
//  EPROTO rather than as a number the peer cannot read.
uint32_t
wc_err_to_wire (int err)
{
    if (err < 0 && s_lookup (err))
        return (uint32_t) -err;
    return (uint32_t) -WALCAST_EPROTO;
}

//  Wire code -> library code; 0 and codes we do not know are EPROTO.
int
wc_err_from_wire (uint64_t code)
{
    if (code == 0 || code > (uint64_t) S_NERRORS)
        return WALCAST_EPROTO;
    const s_error_t *e = s_lookup (-(int) code);
    return e ? e->code : WALCAST_EPROTO;
}
