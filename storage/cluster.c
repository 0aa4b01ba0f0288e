/*  cluster.c - the cluster id of a data directory (see cluster.h).

    The file is text so that an operator can read it (cat DIR/cluster) and
    compare two nodes; it is checked strictly all the same (exactly 16 hex
    digits and a newline, not 0), since an id read wrong would let another
    cluster's history in, or keep ours out.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "walcast.h"
#include "cluster.h"
#include "files.h"

#define S_DIGITS 16

int
wc_cluster_load (int dirfd, uint64_t *id, char *why, size_t why_size)
{
    *id = 0;
    char *text = NULL;
    size_t len = 0;
    int rc = wc_files_read (dirfd, WC_CLUSTER_FILE, 64, &text, &len, why, why_size);
    if (rc == WALCAST_ENOTFOUND)
        return 0;
    if (rc == WALCAST_ETOOBIG) {
        snprintf (why, why_size, "%s is not a cluster id (too long)", WC_CLUSTER_FILE);
        return WALCAST_EPROTO;
    }
    if (rc != 0)
        return rc;
    uint64_t value = 0;
    bool ok = len == S_DIGITS + 1 && text [S_DIGITS] == '\n';
    for (size_t i = 0; ok && i < S_DIGITS; i++) {
        char c = text [i];
        int digit = c >= '0' && c <= '9' ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        ok = digit >= 0;
        value = (value << 4) | (uint64_t) (digit & 0xf);
    }
    free (text);
    if (!ok || value == 0) {
        snprintf (why, why_size, "%s is not a cluster id (16 lowercase hex digits, "
                  "not all 0, and a newline)", WC_CLUSTER_FILE);
        return WALCAST_EPROTO;
    }
    *id = value;
    return 0;
}

int
wc_cluster_save (int dirfd, uint64_t id, char *why, size_t why_size)
{
    if (id == 0) {
        snprintf (why, why_size, "0 is no cluster id");
        return WALCAST_EINVAL;
    }
    char text [S_DIGITS + 2];
    snprintf (text, sizeof text, "%016" PRIx64 "\n", id);
    return wc_files_replace (dirfd, WC_CLUSTER_FILE, text, S_DIGITS + 1, why, why_size);
}

uint64_t
wc_cluster_new_id (void)
{
    uint64_t id = 0;
    while (id == 0) {
        ssize_t got = getrandom (&id, sizeof id, 0);
        if (got == (ssize_t) sizeof id)
            continue;
        if (got < 0 && errno == EINTR)
            continue;
        //  No entropy source (a very old kernel): time and pid still make
        //  two clusters' ids differ in practice
        struct timespec ts;
        clock_gettime (CLOCK_REALTIME, &ts);
        id = ((uint64_t) ts.tv_sec << 32) ^ (uint64_t) ts.tv_nsec
           ^ ((uint64_t) getpid () << 16);
    }
    return id;
}

const char *
wc_cluster_text (uint64_t id, char *buf, size_t size)
{
    snprintf (buf, size, "%016" PRIx64, id);
    return buf;
}
