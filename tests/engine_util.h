/*  engine_util.h - an engine under test, and a model of what it must hold.

    Every entry a test stages is remembered by seq (eu_op_t), so that the
    state the engine must hold at any seq can be rebuilt on the side
    (eu_model_digest) and compared with the engine's digest, whatever the
    engine did to get there (replay, snapshot, truncation, install).
    Values are made from a length and a fill byte, so nothing else needs
    keeping.
*/
#ifndef ENGINE_UTIL_H_INCLUDED
#define ENGINE_UTIL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "engine.h"

#define EU_MAX_OPS 20000

/*  One staged entry. */
typedef struct {
    uint8_t op;                 /* WC_OP_PUT, WC_OP_DEL */
    uint32_t key;               /* the key is "k<key>" */
    uint32_t len;               /* the value is len bytes of fill */
    uint8_t fill;
    uint64_t epoch;
} eu_op_t;

typedef struct {
    char dir [128];             /* the data directory */
    wc_engine_config_t cfg;     /* how eu_open opens it */
    wc_engine_t *engine;        /* open, or NULL */
    wc_engine_info_t info;      /* what the last open found */
    eu_op_t *ops;               /* by seq, 1..EU_MAX_OPS */
    uint64_t last;              /* the last seq the apply callback saw */
    uint64_t napplied;          /* how many it saw */
} eu_t;

/*  A fresh (emptied) directory dir and a configuration: --fsync never,
    small segments (4 KiB), no automatic snapshot, a large retention. */
void eu_init (eu_t *e, const char *dir);

/*  Open (failing the test on error), with the apply callback checking
    that entries come in order. */
void eu_open (eu_t *e);

/*  Destroy the engine (a clean stop), keep the directory. */
void eu_close (eu_t *e);

/*  Destroy, free, remove the directory. */
void eu_fini (eu_t *e);

/*  Stage a PUT of "k<key>" = len bytes of fill in epoch at the next seq;
    returns the engine's answer (the op is remembered when it is 0). */
int eu_try_put (eu_t *e, uint32_t key, uint32_t len, uint8_t fill, uint64_t epoch);

/*  The same, asserting success. */
void eu_put (eu_t *e, uint32_t key, uint32_t len, uint8_t fill, uint64_t epoch);

/*  Stage a DEL of "k<key>" in epoch, asserting success. */
void eu_del (eu_t *e, uint32_t key, uint64_t epoch);

/*  Commit, asserting success. */
void eu_commit (eu_t *e);

/*  Stage and commit n entries in epoch over keys 0..keys-1 (every fifth a
    delete), varied values. */
void eu_load (eu_t *e, uint64_t n, uint32_t keys, uint64_t epoch);

/*  The digest of the state after the entries 1..seq the test staged. */
uint64_t eu_model_digest (const eu_t *e, uint64_t seq);

/*  Assert the engine is at seq (applied, written) with the state of the
    model at seq. */
void eu_assert_state (eu_t *e, uint64_t seq);

/*  wc_engine_truncate, and the apply callback's expectations follow it
    (the entries it rebuilds are not told). Returns its answer. */
int eu_truncate (eu_t *e, uint64_t seq);

/*  Poll the snapshot socket (10 s at most) until wc_engine_on_snapshot
    says something; returns what it said. */
int eu_wait_snapshot (eu_t *e, uint64_t *seq, uint64_t *bytes);

/*  Take a snapshot now and wait for it; returns its seq. */
uint64_t eu_snapshot (eu_t *e);

/*  Copy the size and CRC32C of dir/name into *size (-1: missing). */
uint32_t eu_file_crc (const char *dir, const char *name, int64_t *size);

/*  Number of files in dir whose name starts with prefix. */
size_t eu_count_files (const char *dir, const char *prefix);

/*  Run a shell command, asserting it works. */
void eu_shell (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

#endif
