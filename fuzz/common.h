/*  common.h - what the fuzz targets and the seed generator share.

    A fuzz target states the properties it checks with fz_check: a broken
    one aborts, and libFuzzer saves the input that broke it, as it does
    for a crash. Targets that need files (the WAL, the snapshot writer)
    get a private scratch directory, on tmpfs when there is one, since
    recovery syncs files and directories and a disk would make every run
    wait for it.
*/
#ifndef WC_FUZZ_COMMON_H_INCLUDED
#define WC_FUZZ_COMMON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Abort with "fuzz: property broken: what" on stderr unless ok. */
void fz_check (bool ok, const char *what);

/*  Keep only the library's ERROR lines (a target runs a million times,
    and damaged input is its normal case), or every line when the
    environment sets WALCAST_FUZZ_LOG. */
void fz_quiet (void);

/*  A new empty directory for this process, named after tag, removed with
    everything in it at exit. Aborts when it cannot be made. */
const char *fz_scratch (const char *tag);

/*  Remove every file directly in dir (not the directory). */
void fz_clear (const char *dir);

/*  Little-endian loads, for inputs that carry numbers. */
uint32_t fz_le32 (const uint8_t *p);
uint64_t fz_le64 (const uint8_t *p);

#endif
