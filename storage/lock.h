/*  lock.h - one process per data directory.

    A node takes the lock of its data directory before it opens the WAL,
    as PostgreSQL's postmaster.pid or Kafka's .lock: a second process
    started on the same directory is refused and told who holds it.

    The lock is flock (LOCK_EX | LOCK_NB) on DIR/LOCK, and the file says
    "PID OWNER" for the error message of the next comer. The kernel drops
    an flock when the process dies however it dies, so a LOCK file left by
    a SIGKILL never blocks a restart: only a live holder does. The file
    itself is never removed (removing it would let two processes lock two
    different files of the same name).
*/
#ifndef WC_LOCK_H_INCLUDED
#define WC_LOCK_H_INCLUDED

#include <stddef.h>

typedef struct wc_lock wc_lock_t;

/*  Take the lock of dir (created when missing, like mkdir -p) for owner,
    a short text naming this process, e.g. "walcast-node --id us1". On
    failure returns NULL, sets *err and writes why into why (may be NULL):
    WALCAST_EBUSY when another process holds it ("held by process 1234
    (walcast-node --id us1)"), WALCAST_EIO when the directory or the file
    cannot be made ("cannot create the directory /srv/wc: Permission
    denied" names the directory that could not be made, "cannot write in
    the directory ..." one that exists but cannot be written in). */
wc_lock_t *wc_lock_new (const char *dir, const char *owner, int *err,
                        char *why, size_t why_size);

/*  Release the lock; *self_p becomes NULL; safe twice. */
void wc_lock_destroy (wc_lock_t **self_p);

#endif
