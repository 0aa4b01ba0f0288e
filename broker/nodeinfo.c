/*  nodeinfo.c - what a node may say of itself to the broker (see
    nodeinfo.h).

    One table describes the fields of a node_info, the eleven it must
    have and the three optional ones (name, kind, length limits). The
    content check walks the decoded fields and the grammar rules the
    table cannot express (printable bytes, HOST:PORT, role against
    primary, Z85); the explanation walks the raw msgpack
    array with the same table to find the first field the codec refused.
    Every value quoted in a reason is made printable first: the reason
    goes into logs and onto the wire.
*/
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "addr.h"
#include "nodeinfo.h"

/*  A node's base port P leaves room for P+1 and P+2. */
#define S_MAX_BASE_PORT  65533

typedef enum { S_BYTES, S_UINT, S_ROLE, S_BOOL } s_kind_t;

typedef struct {
    const char *name;       /* as PROTOCOL.md names the field */
    s_kind_t    kind;
    uint32_t    min, max;   /* S_BYTES: length limits in octets */
} s_field_t;

#define S_NFIELDS  11       /* the fields a node_info must have */
#define S_NOPTIONAL 3       /* and the optional ones after them */

static const s_field_t s_fields [S_NFIELDS + S_NOPTIONAL] = {
    { "id",          S_BYTES, 1, WC_MAX_ID },
    { "region",      S_BYTES, 0, WC_MAX_ID },
    { "role",        S_ROLE,  0, 0 },
    { "epoch",       S_UINT,  0, 0 },
    { "applied_seq", S_UINT,  0, 0 },
    { "addr",        S_BYTES, 1, WC_MAX_ADDR },
    { "primary",     S_BYTES, 0, WC_MAX_ADDR },
    { "lag",         S_UINT,  0, 0 },
    { "lag_ms",      S_UINT,  0, 0 },
    { "up",          S_BOOL,  0, 0 },
    { "silent_ms",   S_UINT,  0, 0 },
    { "flags",       S_UINT,  0, 0 },
    { "handover_seq", S_UINT, 0, 0 },
    { "curve_key",   S_BYTES, 0, WC_CURVE_KEY_LEN }
};

#define S_ADDR_RULE "HOST:PORT (a name, an IPv4 address or a bracketed IPv6 " \
                    "address, ':' and a base port 1..65533)"

static void
s_say (char *why, size_t size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_say (char *why, size_t size, const char *format, ...)
{
    if (!why || size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (why, size, format, args);
    va_end (args);
}

/*  Length limits: what the codec checks of a string. */
static int
s_check_length (const s_field_t *field, const wc_bytes_t *bytes, char *why,
                size_t size)
{
    if (bytes->len > field->max) {
        s_say (why, size, "%s is %u octets; at most %u", field->name, bytes->len,
               field->max);
        return WALCAST_ETOOBIG;
    }
    if (bytes->len < field->min || (bytes->len && !bytes->ptr)) {
        s_say (why, size, "%s is empty; it must have %u..%u octets", field->name,
               field->min, field->max);
        return WALCAST_EPROTO;
    }
    return 0;
}

/*  Length and, for id and region, printable bytes. */
static int
s_check_text (const s_field_t *field, const wc_bytes_t *bytes, char *why, size_t size)
{
    int rc = s_check_length (field, bytes, why, size);
    if (rc)
        return rc;
    size_t at = 0;
    if (field->max == WC_MAX_ID && !wc_name_check (bytes->ptr, bytes->len, &at)) {
        char shown [WC_MAX_ID + 1];
        wc_bytes_printable (shown, sizeof shown, bytes);
        s_say (why, size, "%s \"%s\" has byte 0x%02X at offset %zu; %ss are "
               "printable characters (0x21..0x7E: no spaces, no control bytes)",
               field->name, shown, bytes->ptr [at], at, field->name);
        return WALCAST_EPROTO;
    }
    return 0;
}

/*  addr or primary: a node's HOST:PORT, whose port leaves room for the
    two after it. */
static int
s_check_addr (const char *name, const wc_bytes_t *bytes, char *why, size_t size)
{
    const char *addr = (const char *) bytes->ptr;
    if (wc_addr_check (addr, bytes->len, S_MAX_BASE_PORT, NULL))
        return 0;
    char shown [WC_MAX_ADDR + 1];
    wc_bytes_printable (shown, sizeof shown, bytes);
    int port = 0;
    if (wc_addr_check (addr, bytes->len, 65535, &port))
        s_say (why, size, "%s \"%s\" has base port %d; a node uses P, P+1 and "
               "P+2, so P is at most 65533", name, shown, port);
    else
        s_say (why, size, "%s \"%s\" is not " S_ADDR_RULE, name, shown);
    return WALCAST_EPROTO;
}

/*  The primary field must agree with the role. */
static int
s_check_primary (const wc_node_info_t *info, char *why, size_t size)
{
    if (info->role == WC_ROLE_PRIMARY && info->primary.len > 0) {
        char shown [WC_MAX_ADDR + 1];
        wc_bytes_printable (shown, sizeof shown, &info->primary);
        s_say (why, size, "primary \"%s\" is set on a primary (role 1); a primary "
               "follows no one and sends it empty", shown);
        return WALCAST_EPROTO;
    }
    if (info->role == WC_ROLE_REPLICA && info->primary.len == 0) {
        s_say (why, size, "primary is empty on a replica (role 2); a replica names "
               "the HOST:PORT of the node it follows");
        return WALCAST_EPROTO;
    }
    return info->primary.len ? s_check_addr ("primary", &info->primary, why, size) : 0;
}

/*  A CURVE public key: none, or WC_CURVE_KEY_LEN characters of Z85. */
static int
s_check_key (const wc_bytes_t *key, char *why, size_t size)
{
    static const char z85 [] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               ".-:+=^!/*?&<>()[]{}@%$#";
    if (key->len != 0 && key->len != WC_CURVE_KEY_LEN) {
        s_say (why, size, "curve_key is %u octets; a CURVE public key in Z85 is %u "
               "(or none)", key->len, WC_CURVE_KEY_LEN);
        return WALCAST_EPROTO;
    }
    for (uint32_t i = 0; i < key->len; i++)
        if (key->ptr [i] == 0 || !strchr (z85, key->ptr [i])) {
            s_say (why, size, "curve_key has a character outside Z85 at offset %u", i);
            return WALCAST_EPROTO;
        }
    return 0;
}

int
wc_nodeinfo_check (const wc_node_info_t *info, char *why, size_t size)
{
    int rc;
    if ((rc = s_check_text (&s_fields [0], &info->id, why, size))
    ||  (rc = s_check_text (&s_fields [1], &info->region, why, size)))
        return rc;
    if (info->role != WC_ROLE_PRIMARY && info->role != WC_ROLE_REPLICA) {
        s_say (why, size, "role %u is neither 1 (primary) nor 2 (replica)", info->role);
        return WALCAST_EPROTO;
    }
    if ((rc = s_check_text (&s_fields [5], &info->addr, why, size))
    ||  (rc = s_check_addr ("addr", &info->addr, why, size))
    ||  (rc = s_check_text (&s_fields [6], &info->primary, why, size))
    ||  (rc = s_check_key (&info->curve_key, why, size)))
        return rc;
    return s_check_primary (info, why, size);
}

/* --- explaining what the codec refused --------------------------------- */

static const char *
s_type_name (const msgpack_object *obj)
{
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:              return "nil";
        case MSGPACK_OBJECT_BOOLEAN:          return "a boolean";
        case MSGPACK_OBJECT_POSITIVE_INTEGER: return "an unsigned integer";
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "a negative integer";
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT:            return "a float";
        case MSGPACK_OBJECT_STR:              return "a string";
        case MSGPACK_OBJECT_BIN:              return "binary";
        case MSGPACK_OBJECT_ARRAY:            return "an array";
        case MSGPACK_OBJECT_MAP:              return "a map";
        default:                              return "an extension";
    }
}

/*  One raw field against its table entry; false with why set when the
    codec would refuse it. */
static bool
s_explain_field (const s_field_t *field, const msgpack_object *obj, char *why,
                 size_t size)
{
    bool bytes = obj->type == MSGPACK_OBJECT_STR || obj->type == MSGPACK_OBJECT_BIN;
    bool uint = obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
    if (field->kind == S_BYTES && !bytes)
        s_say (why, size, "%s is %s; expected a string", field->name, s_type_name (obj));
    else
    if (field->kind == S_BYTES) {
        wc_bytes_t value = { (const uint8_t *) obj->via.str.ptr, obj->via.str.size };
        if (obj->type == MSGPACK_OBJECT_BIN)
            value = (wc_bytes_t) { (const uint8_t *) obj->via.bin.ptr, obj->via.bin.size };
        return s_check_length (field, &value, why, size) == 0;
    }
    else
    if ((field->kind == S_UINT || field->kind == S_ROLE) && !uint)
        s_say (why, size, "%s is %s; expected an unsigned integer", field->name,
               s_type_name (obj));
    else
    if (field->kind == S_ROLE && obj->via.u64 != WC_ROLE_PRIMARY
                              && obj->via.u64 != WC_ROLE_REPLICA)
        s_say (why, size, "role %llu is neither 1 (primary) nor 2 (replica)",
               (unsigned long long) obj->via.u64);
    else
    if (field->kind == S_BOOL && obj->type != MSGPACK_OBJECT_BOOLEAN)
        s_say (why, size, "%s is %s; expected a boolean", field->name,
               s_type_name (obj));
    else
        return true;
    return false;
}

void
wc_nodeinfo_explain (const msgpack_object *message, char *why, size_t size)
{
    s_say (why, size, "node_info is malformed");
    if (message->type != MSGPACK_OBJECT_ARRAY)
        return;
    const msgpack_object *f = message->via.array.ptr;
    uint32_t n = message->via.array.size;
    if (n < 3 || f [2].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        s_say (why, size, "rid is %s; expected an unsigned integer",
               n < 3 ? "missing" : s_type_name (&f [2]));
        return;
    }
    if (n < 4) {
        s_say (why, size, "node_info is missing");
        return;
    }
    const msgpack_object *info = &f [3];
    if (info->type != MSGPACK_OBJECT_ARRAY) {
        s_say (why, size, "node_info is %s; expected an array of %d elements",
               s_type_name (info), S_NFIELDS);
        return;
    }
    if (info->via.array.size < S_NFIELDS) {
        s_say (why, size, "node_info is an array of %u elements; %d are needed",
               info->via.array.size, S_NFIELDS);
        return;
    }
    uint32_t present = info->via.array.size < S_NFIELDS + S_NOPTIONAL
                     ? info->via.array.size : S_NFIELDS + S_NOPTIONAL;
    for (uint32_t i = 0; i < present; i++)
        if (!s_explain_field (&s_fields [i], &info->via.array.ptr [i], why, size))
            return;
}
