/*  engine_util.c - an engine under test and its model (see
    engine_util.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "walcast.h"
#include "crc32c.h"
#include "engine_util.h"

void
eu_shell (const char *fmt, ...)
{
    char command [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (command, sizeof command, fmt, args);
    va_end (args);
    assert_int_equal (system (command), 0);
}

void
eu_init (eu_t *e, const char *dir)
{
    memset (e, 0, sizeof *e);
    snprintf (e->dir, sizeof e->dir, "%s", dir);
    eu_shell ("rm -rf %s", dir);
    e->cfg = (wc_engine_config_t) { .dir = e->dir, .fsync = WC_FSYNC_NEVER,
                                    .segment_bytes = 4096, .owner = "test",
                                    .retain_bytes = 1ull << 40 };
    e->ops = calloc (EU_MAX_OPS + 1, sizeof *e->ops);
    assert_non_null (e->ops);
}

static void
s_on_apply (void *arg, const wc_entry_t *entry, const void *payload, size_t len)
{
    (void) payload;
    (void) len;
    eu_t *e = (eu_t *) arg;
    assert_int_equal (entry->seq, e->last + 1);         //  in order, once
    e->last = entry->seq;
    e->napplied++;
}

void
eu_open (eu_t *e)
{
    int err = 0;
    char why [512];
    e->engine = wc_engine_open (&e->cfg, &e->info, &err, why, sizeof why);
    if (!e->engine)
        fail_msg ("open: %s", why);
    wc_engine_set_apply (e->engine, s_on_apply, e);
    e->last = wc_engine_applied (e->engine);
}

void
eu_close (eu_t *e)
{
    wc_engine_destroy (&e->engine);
}

void
eu_fini (eu_t *e)
{
    wc_engine_destroy (&e->engine);
    free (e->ops);
    e->ops = NULL;
    eu_shell ("rm -rf %s", e->dir);
}

//  Key and value bytes of an op.
static size_t
s_key (const eu_op_t *op, char *buf)
{
    return (size_t) sprintf (buf, "k%u", op->key);
}

static void
s_value (const eu_op_t *op, uint8_t *buf)
{
    memset (buf, op->fill, op->len);
}

//  Stage op at the next seq; returns the engine's answer.
static int
s_stage (eu_t *e, const eu_op_t *op)
{
    static uint8_t value [64 * 1024];
    char key [16];
    uint64_t seq = wc_engine_next_seq (e->engine);
    assert_true (seq <= EU_MAX_OPS && op->len <= sizeof value);
    s_value (op, value);
    wc_entry_t entry = { .seq = seq, .epoch = op->epoch, .ts_ms = 1000 + seq, .op = op->op,
                         .key = { (const uint8_t *) key, (uint32_t) s_key (op, key) },
                         .value = { value, op->op == WC_OP_PUT ? op->len : 0 } };
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    assert_int_equal (wc_entry_encode (&entry, &buf), 0);
    int rc = wc_engine_stage (e->engine, &entry, buf.data, buf.size);
    msgpack_sbuffer_destroy (&buf);
    if (rc == 0)
        e->ops [seq] = *op;
    return rc;
}

int
eu_try_put (eu_t *e, uint32_t key, uint32_t len, uint8_t fill, uint64_t epoch)
{
    eu_op_t op = { WC_OP_PUT, key, len, fill, epoch };
    return s_stage (e, &op);
}

void
eu_put (eu_t *e, uint32_t key, uint32_t len, uint8_t fill, uint64_t epoch)
{
    assert_int_equal (eu_try_put (e, key, len, fill, epoch), 0);
}

void
eu_del (eu_t *e, uint32_t key, uint64_t epoch)
{
    eu_op_t op = { WC_OP_DEL, key, 0, 0, epoch };
    assert_int_equal (s_stage (e, &op), 0);
}

void
eu_commit (eu_t *e)
{
    assert_int_equal (wc_engine_commit (e->engine), 0);
}

void
eu_load (eu_t *e, uint64_t n, uint32_t keys, uint64_t epoch)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seq = wc_engine_next_seq (e->engine);
        uint32_t key = (uint32_t) ((seq * 7919u) % keys);
        if (seq % 5 == 0)
            eu_del (e, key, epoch);
        else
            eu_put (e, key, (uint32_t) (seq * 31u % 200u), (uint8_t) ('a' + seq % 26), epoch);
        if (i % 16 == 15)
            eu_commit (e);
    }
    eu_commit (e);
}

uint64_t
eu_model_digest (const eu_t *e, uint64_t seq)
{
    wc_store_t *store = wc_store_new ();
    static uint8_t value [64 * 1024];
    for (uint64_t s = 1; s <= seq; s++) {
        const eu_op_t *op = &e->ops [s];
        char key [16];
        size_t klen = s_key (op, key);
        assert_true (op->op == WC_OP_PUT || op->op == WC_OP_DEL);
        if (op->op == WC_OP_PUT) {
            s_value (op, value);
            assert_int_equal (wc_store_put (store, key, klen, value, op->len), 0);
        }
        else
            assert_int_equal (wc_store_del (store, key, klen), 0);
    }
    uint64_t digest = wc_store_digest (store);
    wc_store_destroy (&store);
    return digest;
}

void
eu_assert_state (eu_t *e, uint64_t seq)
{
    assert_int_equal (wc_engine_applied (e->engine), seq);
    assert_int_equal (wc_engine_written (e->engine), seq);
    assert_int_equal (wc_engine_next_seq (e->engine), seq + 1);
    uint64_t want = eu_model_digest (e, seq);
    uint64_t got = wc_store_digest (wc_engine_store (e->engine));
    if (got != want)
        fail_msg ("digest at seq %llu: 0x%016llx, the model says 0x%016llx",
                  (unsigned long long) seq, (unsigned long long) got,
                  (unsigned long long) want);
}

int
eu_truncate (eu_t *e, uint64_t seq)
{
    int rc = wc_engine_truncate (e->engine, seq);
    if (rc == 0)
        e->last = seq;
    return rc;
}

int
eu_wait_snapshot (eu_t *e, uint64_t *seq, uint64_t *bytes)
{
    for (int i = 0; i < 100; i++) {
        zmq_pollitem_t item = { wc_engine_snapshot_socket (e->engine), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) <= 0)
            continue;
        int rc = wc_engine_on_snapshot (e->engine, seq, bytes);
        if (rc != 0)
            return rc;
    }
    fail_msg ("no snapshot ended within 10 s");
    return 0;
}

uint64_t
eu_snapshot (eu_t *e)
{
    assert_int_equal (wc_engine_snapshot (e->engine), 0);
    uint64_t seq = 0, bytes = 0;
    assert_int_equal (eu_wait_snapshot (e, &seq, &bytes), 1);
    assert_int_equal (seq, wc_engine_applied (e->engine));
    assert_true (bytes > 0);
    return seq;
}

uint32_t
eu_file_crc (const char *dir, const char *name, int64_t *size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen (path, "rb");
    *size = -1;
    if (!file)
        return 0;
    uint8_t buf [65536];
    uint32_t crc = 0;
    size_t n;
    *size = 0;
    while ((n = fread (buf, 1, sizeof buf, file)) > 0) {
        crc = wc_crc32c (crc, buf, n);
        *size += (int64_t) n;
    }
    fclose (file);
    return crc;
}

size_t
eu_count_files (const char *dir, const char *prefix)
{
    DIR *d = opendir (dir);
    assert_non_null (d);
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (d)))
        if (strncmp (entry->d_name, prefix, strlen (prefix)) == 0)
            count++;
    closedir (d);
    return count;
}
