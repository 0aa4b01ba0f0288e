/*  common.c - what the fuzz targets and the seed generator share (see
    common.h).
*/
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "log.h"
#include "common.h"

static char s_scratch [4096];

static void s_remove_scratch (void);

void
fz_check (bool ok, const char *what)
{
    if (ok)
        return;
    fprintf (stderr, "fuzz: property broken: %s\n", what);
    if (s_scratch [0])
        s_remove_scratch ();        //  abort () skips atexit
    abort ();
}

void
fz_quiet (void)
{
    wc_log_set_level (getenv ("WALCAST_FUZZ_LOG") ? WC_LOG_DEBUG : WC_LOG_ERROR);
}

void
fz_clear (const char *dir)
{
    DIR *d = opendir (dir);
    if (!d)
        return;
    struct dirent *entry;
    while ((entry = readdir (d)))
        if (strcmp (entry->d_name, ".") != 0 && strcmp (entry->d_name, "..") != 0)
            unlinkat (dirfd (d), entry->d_name, 0);
    closedir (d);
}

//  At exit: the scratch directory's subdirectories (one level, as the
//  targets make them), its files, itself.
static void
s_remove_scratch (void)
{
    DIR *d = opendir (s_scratch);
    if (d) {
        struct dirent *entry;
        while ((entry = readdir (d))) {
            char path [sizeof s_scratch + 256];
            if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
                continue;
            snprintf (path, sizeof path, "%s/%s", s_scratch, entry->d_name);
            fz_clear (path);
            if (unlinkat (dirfd (d), entry->d_name, AT_REMOVEDIR) != 0)
                unlinkat (dirfd (d), entry->d_name, 0);
        }
        closedir (d);
    }
    rmdir (s_scratch);
}

const char *
fz_scratch (const char *tag)
{
    if (s_scratch [0])
        return s_scratch;
    const char *base = getenv ("TMPDIR");
    struct stat st;
    if (!base || !*base)
        base = stat ("/dev/shm", &st) == 0 && S_ISDIR (st.st_mode)
            && access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf (s_scratch, sizeof s_scratch, "%s/walcast-%s-XXXXXX", base, tag);
    if (!mkdtemp (s_scratch)) {
        perror ("fuzz: cannot make a scratch directory");
        abort ();
    }
    atexit (s_remove_scratch);
    return s_scratch;
}

uint32_t
fz_le32 (const uint8_t *p)
{
    return (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16
         | (uint32_t) p [3] << 24;
}

uint64_t
fz_le64 (const uint8_t *p)
{
    return (uint64_t) fz_le32 (p) | (uint64_t) fz_le32 (p + 4) << 32;
}
