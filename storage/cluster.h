/*  cluster.h - the cluster id of a data directory.

    A cluster is the nodes that share one history: the one that began its
    first epoch, and every node that followed it since. The node that
    begins a history (its first epoch, on an empty log) picks a random
    64-bit id; a replica takes its upstream's the first time it agrees
    with it, and keeps it. From then on it follows no upstream of another
    cluster: epochs and seqs are small numbers that two clusters share, so
    without an id a node of another cluster that answers at the address of
    a dead primary (a reused port, a moved machine) would pass for it, and
    its entries be taken for ours.

    On disk the id is the file "cluster" of the data directory: 16
    lowercase hexadecimal digits and a newline, replaced whole (files.h).
    0 means no id: a data directory from before walcast 0.7, or one that
    has not followed or begun a history yet.
*/
#ifndef WC_CLUSTER_H_INCLUDED
#define WC_CLUSTER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/*  The file the id lives in, inside the data directory. */
#define WC_CLUSTER_FILE "cluster"

/*  Read the id of the directory into *id (0 when there is no file).
    Returns 0, WALCAST_EPROTO (the file is not an id: *id 0, why says
    what), WALCAST_EIO (why set). */
int wc_cluster_load (int dirfd, uint64_t *id, char *why, size_t why_size);

/*  Replace the file with id (not 0), durably. 0, WALCAST_EINVAL,
    WALCAST_ENOSPC, WALCAST_EIO (why set). */
int wc_cluster_save (int dirfd, uint64_t id, char *why, size_t why_size);

/*  A new random id, never 0. */
uint64_t wc_cluster_new_id (void);

/*  The id as 16 hex digits in buf (at least 17 octets); returns buf. */
const char *wc_cluster_text (uint64_t id, char *buf, size_t size);

#endif
