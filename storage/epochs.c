/*  epochs.c - the epoch history (see epochs.h).

    A sorted array of (epoch, first seq). Everything a node asks of it is
    a scan: histories hold one pair per tenure, a handful in practice.

    Two ideas. EPOCH_END and a node's own last seq of an epoch are both
    "the seq before the next epoch begins", capped by the end of the log
    they speak for; the replica truncates to the smaller of the two, which
    is the last entry both logs hold under the same epochs. And the file
    is checked as strictly as a message from the network (CRC, types,
    order), since a history that is wrong could let a fork through.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walcast.h"
#include "crc32c.h"
#include "epochs.h"
#include "files.h"

#define S_MAGIC       "walcast-epochs"
#define S_VERSION     1
#define S_FILE_MAX    (64u * 1024u * 1024u)   /* bytes a history file may have */

struct wc_epochs {
    wc_epoch_t *items;          /* ascending epoch, ascending first seq */
    size_t count;               /* pairs held */
    size_t cap;                 /* pairs allocated */
};


//  --------------------------------------------------------------------
//  The list

wc_epochs_t *
wc_epochs_new (void)
{
    return (wc_epochs_t *) calloc (1, sizeof (wc_epochs_t));
}

void
wc_epochs_destroy (wc_epochs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->items);
    free (*self_p);
    *self_p = NULL;
}

//  Room for count pairs. 0 or WALCAST_ENOMEM.
static int
s_reserve (wc_epochs_t *self, size_t count)
{
    if (count <= self->cap)
        return 0;
    size_t cap = self->cap ? self->cap : 8;
    while (cap < count)
        cap *= 2;
    wc_epoch_t *grown = (wc_epoch_t *) realloc (self->items, cap * sizeof *grown);
    if (!grown)
        return WALCAST_ENOMEM;
    self->items = grown;
    self->cap = cap;
    return 0;
}

int
wc_epochs_copy (wc_epochs_t *self, const wc_epochs_t *src)
{
    if (s_reserve (self, src->count) != 0)
        return WALCAST_ENOMEM;
    if (src->count)
        memcpy (self->items, src->items, src->count * sizeof *src->items);
    self->count = src->count;
    return 0;
}

bool
wc_epochs_equal (const wc_epochs_t *a, const wc_epochs_t *b)
{
    return a->count == b->count
        && (a->count == 0 || memcmp (a->items, b->items, a->count * sizeof *a->items) == 0);
}

size_t
wc_epochs_count (const wc_epochs_t *self)
{
    return self->count;
}

const wc_epoch_t *
wc_epochs_items (const wc_epochs_t *self)
{
    return self->items;
}

uint64_t
wc_epochs_latest (const wc_epochs_t *self)
{
    return self->count ? self->items [self->count - 1].epoch : 0;
}

uint64_t
wc_epochs_latest_first (const wc_epochs_t *self)
{
    return self->count ? self->items [self->count - 1].first_seq : 0;
}

int
wc_epochs_add (wc_epochs_t *self, uint64_t epoch, uint64_t first_seq)
{
    if (epoch <= wc_epochs_latest (self) || first_seq == 0
    ||  first_seq < wc_epochs_latest_first (self) || self->count >= WC_EPOCHS_MAX)
        return WALCAST_EINVAL;
    if (s_reserve (self, self->count + 1) != 0)
        return WALCAST_ENOMEM;
    self->items [self->count++] = (wc_epoch_t) { epoch, first_seq };
    return 0;
}

void
wc_epochs_cut (wc_epochs_t *self, uint64_t seq)
{
    while (self->count > 0 && self->items [self->count - 1].first_seq > seq)
        self->count--;
}

//  Index of the largest epoch <= epoch, or SIZE_MAX.
static size_t
s_find (const wc_epochs_t *self, uint64_t epoch)
{
    size_t i = self->count;
    while (i > 0 && self->items [i - 1].epoch > epoch)
        i--;
    return i ? i - 1 : SIZE_MAX;
}

void
wc_epochs_end (const wc_epochs_t *self, uint64_t epoch, uint64_t last_seq,
               uint64_t *found, uint64_t *end_seq)
{
    size_t i = s_find (self, epoch);
    *found = *end_seq = 0;
    if (i == SIZE_MAX)
        return;
    *found = self->items [i].epoch;
    *end_seq = last_seq;
    if (i + 1 < self->count && self->items [i + 1].first_seq - 1 < last_seq)
        *end_seq = self->items [i + 1].first_seq - 1;
}

uint64_t
wc_epochs_last_seq (const wc_epochs_t *self, uint64_t epoch, uint64_t last_seq)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->items [i].epoch > epoch)
            return self->items [i].first_seq - 1 < last_seq
                 ? self->items [i].first_seq - 1 : last_seq;
    return last_seq;
}

static int
s_compare (const void *a, const void *b)
{
    uint64_t x = ((const wc_epoch_t *) a)->epoch;
    uint64_t y = ((const wc_epoch_t *) b)->epoch;
    return x < y ? -1 : x > y;
}

int
wc_epochs_merge (wc_epochs_t *self, const wc_epochs_t *other)
{
    if (s_reserve (self, self->count + other->count) != 0)
        return WALCAST_ENOMEM;
    size_t mine = self->count;
    for (size_t k = 0; k < other->count; k++) {
        size_t i = 0;
        while (i < mine && self->items [i].epoch != other->items [k].epoch)
            i++;
        if (i == mine)
            self->items [self->count++] = other->items [k];
        else
        if (other->items [k].first_seq < self->items [i].first_seq)
            self->items [i].first_seq = other->items [k].first_seq;
    }
    if (self->count > 1)
        qsort (self->items, self->count, sizeof *self->items, s_compare);
    //  An epoch cannot begin after a later one: the later one's first
    //  seq bounds every earlier one's.
    for (size_t i = self->count; i-- > 1; )
        if (self->items [i - 1].first_seq > self->items [i].first_seq)
            self->items [i - 1].first_seq = self->items [i].first_seq;
    return 0;
}

bool
wc_epochs_reconcile (wc_epochs_t *self, uint64_t last_seq)
{
    if (self->count == 0)
        return false;
    size_t before = self->count, kept = 0;
    wc_epoch_t latest = self->items [self->count - 1];
    for (size_t i = 0; i + 1 < self->count; i++)
        if (self->items [i].first_seq <= last_seq + 1)
            self->items [kept++] = self->items [i];
    bool lowered = latest.first_seq > last_seq + 1;
    if (lowered)
        latest.first_seq = last_seq + 1;
    self->items [kept++] = latest;
    self->count = kept;
    return lowered || kept != before;
}


//  --------------------------------------------------------------------
//  Encoding

int
wc_epochs_pack (const wc_epochs_t *self, uint64_t upto_seq, msgpack_packer *pk)
{
    size_t n = 0;
    while (n < self->count && self->items [n].first_seq <= upto_seq)
        n++;
    int rc = msgpack_pack_array (pk, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = msgpack_pack_array (pk, 2);
        if (rc == 0)
            rc = msgpack_pack_uint64 (pk, self->items [i].epoch);
        if (rc == 0)
            rc = msgpack_pack_uint64 (pk, self->items [i].first_seq);
    }
    return rc == 0 ? 0 : WALCAST_ENOMEM;
}

//  Is o an [epoch, first_seq] pair that may follow prev (NULL: first)?
static bool
s_pair_ok (const msgpack_object *o, const wc_epoch_t *prev, uint64_t upto_seq,
           wc_epoch_t *pair)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2)
        return false;
    const msgpack_object *e = &o->via.array.ptr [0], *s = &o->via.array.ptr [1];
    if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || s->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    pair->epoch = e->via.u64;
    pair->first_seq = s->via.u64;
    if (pair->epoch == 0 || pair->first_seq == 0
    ||  (upto_seq < UINT64_MAX && pair->first_seq > upto_seq + 1))
        return false;
    return !prev || (pair->epoch > prev->epoch && pair->first_seq >= prev->first_seq);
}

int
wc_epochs_from_object (wc_epochs_t *self, const msgpack_object *obj, uint64_t upto_seq)
{
    if (obj->type != MSGPACK_OBJECT_ARRAY || obj->via.array.size > WC_EPOCHS_MAX)
        return WALCAST_EPROTO;
    size_t n = obj->via.array.size;
    wc_epoch_t *items = (wc_epoch_t *) malloc ((n ? n : 1) * sizeof *items);
    if (!items)
        return WALCAST_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!s_pair_ok (&obj->via.array.ptr [i], i ? &items [i - 1] : NULL, upto_seq,
                        &items [i])) {
            free (items);
            return WALCAST_EPROTO;
        }
    free (self->items);
    self->items = items;
    self->cap = n ? n : 1;
    self->count = n;
    return 0;
}


//  --------------------------------------------------------------------
//  The file

//  Check the bytes of a history file and decode them into self.
static int
s_decode_file (wc_epochs_t *self, const char *data, size_t len, char *why, size_t why_size)
{
    if (len < 4) {
        snprintf (why, why_size, "%s is %zu bytes: too short", WC_EPOCHS_FILE, len);
        return WALCAST_EPROTO;
    }
    const uint8_t *tail = (const uint8_t *) data + len - 4;
    uint32_t crc = (uint32_t) tail [0] | (uint32_t) tail [1] << 8
                 | (uint32_t) tail [2] << 16 | (uint32_t) tail [3] << 24;
    if (wc_crc32c (0, data, len - 4) != crc) {
        snprintf (why, why_size, "%s fails its CRC", WC_EPOCHS_FILE);
        return WALCAST_EPROTO;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t off = 0;
    int rc = WALCAST_EPROTO;
    if (msgpack_unpack_next (&unpacked, data, len - 4, &off) == MSGPACK_UNPACK_SUCCESS
    &&  off == len - 4) {
        const msgpack_object *o = &unpacked.data;
        const msgpack_object *f = o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size >= 3
                                ? o->via.array.ptr : NULL;
        if (f && f [0].type == MSGPACK_OBJECT_STR
        &&  f [0].via.str.size == strlen (S_MAGIC)
        &&  memcmp (f [0].via.str.ptr, S_MAGIC, strlen (S_MAGIC)) == 0
        &&  f [1].type == MSGPACK_OBJECT_POSITIVE_INTEGER && f [1].via.u64 == S_VERSION)
            rc = wc_epochs_from_object (self, &f [2], UINT64_MAX);
    }
    msgpack_unpacked_destroy (&unpacked);
    if (rc == WALCAST_EPROTO)
        snprintf (why, why_size, "%s is not a walcast epoch history (format %d)",
                  WC_EPOCHS_FILE, S_VERSION);
    return rc;
}

int
wc_epochs_load (wc_epochs_t *self, int dirfd, char *why, size_t why_size)
{
    char *data;
    size_t len;
    int rc = wc_files_read (dirfd, WC_EPOCHS_FILE, S_FILE_MAX, &data, &len, why, why_size);
    if (rc == WALCAST_ENOTFOUND)
        self->count = 0;
    if (rc == WALCAST_ETOOBIG)
        rc = WALCAST_EPROTO;
    if (rc != 0)
        return rc;
    rc = s_decode_file (self, data, len, why, why_size);
    free (data);
    return rc;
}

int
wc_epochs_save (const wc_epochs_t *self, int dirfd, char *why, size_t why_size)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    int rc = msgpack_pack_array (&pk, 3) == 0
          && msgpack_pack_str_with_body (&pk, S_MAGIC, strlen (S_MAGIC)) == 0
          && msgpack_pack_uint32 (&pk, S_VERSION) == 0 ? 0 : WALCAST_ENOMEM;
    if (rc == 0)
        rc = wc_epochs_pack (self, UINT64_MAX, &pk);
    uint32_t crc = rc == 0 ? wc_crc32c (0, buf.data, buf.size) : 0;
    uint8_t tail [4] = { (uint8_t) crc, (uint8_t) (crc >> 8), (uint8_t) (crc >> 16),
                         (uint8_t) (crc >> 24) };
    if (rc == 0 && msgpack_sbuffer_write (&buf, (const char *) tail, sizeof tail) != 0)
        rc = WALCAST_ENOMEM;
    if (rc == 0)
        rc = wc_files_replace (dirfd, WC_EPOCHS_FILE, buf.data, buf.size, why, why_size);
    else
        snprintf (why, why_size, "out of memory");
    msgpack_sbuffer_destroy (&buf);
    return rc;
}

const char *
wc_epochs_text (const wc_epochs_t *self, char *buf, size_t size)
{
    size_t at = 0;
    if (size == 0)
        return buf;
    buf [0] = '\0';
    for (size_t i = 0; i < self->count; i++) {
        char pair [48];
        int n = snprintf (pair, sizeof pair, "%s%llu@%llu", i ? " " : "",
                          (unsigned long long) self->items [i].epoch,
                          (unsigned long long) self->items [i].first_seq);
        if (at + (size_t) n + 5 > size) {           //  room for " ..." after it
            if (at + 5 <= size)
                memcpy (buf + at, " ...", 5);
            break;
        }
        memcpy (buf + at, pair, (size_t) n + 1);
        at += (size_t) n;
    }
    if (self->count == 0)
        snprintf (buf, size, "(none)");
    return buf;
}
