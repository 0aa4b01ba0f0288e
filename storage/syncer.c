/*  syncer.c - fsync off the loop thread (see syncer.h).

    A czmq actor owns the syncing. The owner and the actor share a small
    state under a mutex: the queue of jobs not yet taken, the highest
    durable seq, a failed flag, and two "a message is on its way" flags.
    The actor's pipe carries only those messages, one at a time in each
    direction: "SYNC" to wake the actor when the queue stops being empty,
    "R" to tell the owner that the result changed. So a submit never waits
    for a sync (the queue is memory, the pipe never fills), and results
    never pile up in the pipe however slowly the owner reads them: it
    reads the state, not the messages.

    The actor takes the whole queue at once, so the jobs that arrived
    while it was syncing form one round: it fstats every descriptor,
    syncs each distinct file (device, inode) once, segment files first
    (fdatasync) and directories last (fsync), and then the round's
    highest seq is durable. A failure stops everything for good: after a
    failed fsync the kernel may have dropped the dirty pages, so what is
    on disk is unknown and no later success could prove otherwise.

    Destroy marks the shared state terminating before it stops the actor,
    so the actor finishes the round in progress and takes no other; the
    jobs left in the queue are released without a sync. wc_syncer_wait,
    for a clean shutdown, waits on a condition the actor broadcasts after
    every round.
*/
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>

#include "walcast.h"
#include "clock.h"
#include "log.h"
#include "syncer.h"
#include "vfs.h"

//  What the owner and the actor share; every field under mutex.
typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t done;        /* broadcast after every round */
    wc_wal_sync_job_t *queue;   /* jobs not yet taken by the actor */
    size_t nqueue;              /* how many */
    size_t queue_cap;           /* allocated entries */
    bool wake_sent;             /* a "SYNC" is on its way to the actor */
    bool terminating;           /* destroy began: take no more jobs */
    uint64_t durable;           /* highest seq synced, with every job before it */
    bool failed;                /* a sync failed: nothing counts any more */
    bool result_sent;           /* an "R" is on its way to the owner */
    wc_metrics_tally_t latency; /* each fdatasync/fsync's duration, seconds */
} s_shared_t;

struct wc_syncer {
    zactor_t *actor;            /* the syncing thread; its pipe carries the messages */
    s_shared_t *shared;         /* the state shared with it */
    uint64_t reported;          /* the last seq wc_syncer_result gave */
};

//  One distinct file of a round.
typedef struct {
    dev_t dev;
    ino_t ino;
    int fd;                     /* one of the job's descriptors of it */
    bool dir;                   /* a directory: fsync, not fdatasync */
} s_file_t;


//  --------------------------------------------------------------------
//  The actor

//  Log a failed sync of fd, naming the file.
static void
s_log_failure (int fd, bool dir, int err)
{
    char link [64], path [512];
    snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink (link, path, sizeof path - 1);
    if (len < 0)
        len = snprintf (path, sizeof path, "descriptor %d", fd);
    path [len] = '\0';
    wc_log_error ("syncer: %s of %s failed: %s; what is on disk is unknown, the "
                  "node must stop", dir ? "fsync" : "fdatasync", path, strerror (err));
}

//  Sync each distinct file of the jobs once, files before directories;
//  *seq becomes the highest seq of the jobs, and each sync's duration goes
//  into latency. Returns 0 or -1 (logged).
static int
s_sync_round (const wc_wal_sync_job_t *jobs, size_t njobs, uint64_t *seq,
              wc_metrics_tally_t *latency)
{
    size_t total = 0;
    for (size_t j = 0; j < njobs; j++)
        total += jobs [j].nfds;
    s_file_t *files = (s_file_t *) malloc ((total ? total : 1) * sizeof *files);
    if (!files) {
        wc_log_error ("syncer: out of memory for a round of %zu descriptors", total);
        return -1;
    }
    size_t nfiles = 0;
    int rc = 0;
    for (size_t j = 0; j < njobs && rc == 0; j++) {
        *seq = jobs [j].seq > *seq ? jobs [j].seq : *seq;
        for (size_t k = 0; k < jobs [j].nfds && rc == 0; k++) {
            struct stat st;
            int fd = jobs [j].fds [k];
            if (fstat (fd, &st) != 0) {
                s_log_failure (fd, false, errno);
                rc = -1;
                break;
            }
            size_t f = 0;
            while (f < nfiles && (files [f].dev != st.st_dev || files [f].ino != st.st_ino))
                f++;
            if (f == nfiles)
                files [nfiles++] = (s_file_t) { st.st_dev, st.st_ino, fd, S_ISDIR (st.st_mode) };
        }
    }
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (size_t f = 0; f < nfiles && rc == 0; f++) {
            if (files [f].dir != (pass == 1))
                continue;
            int64_t start = wc_clock_us ();
            int done = files [f].dir ? wc_vfs_fsync (files [f].fd)
                                     : wc_vfs_fdatasync (files [f].fd);
            wc_metrics_tally_add (latency, wc_metrics_latency_bounds,
                                  WC_METRICS_LATENCY_BUCKETS,
                                  (double) (wc_clock_us () - start) / 1e6);
            if (done != 0) {
                s_log_failure (files [f].fd, files [f].dir, errno);
                rc = -1;
            }
        }
    free (files);
    return rc;
}

//  Run rounds until the queue is empty (or destroy began), telling the
//  owner when the result changes.
static void
s_run_queue (s_shared_t *shared, zsock_t *pipe)
{
    while (true) {
        pthread_mutex_lock (&shared->mutex);
        shared->wake_sent = false;
        if (shared->terminating || shared->nqueue == 0) {
            pthread_mutex_unlock (&shared->mutex);
            return;
        }
        wc_wal_sync_job_t *jobs = shared->queue;
        size_t njobs = shared->nqueue;
        shared->queue = NULL;
        shared->nqueue = shared->queue_cap = 0;
        bool failed = shared->failed;
        pthread_mutex_unlock (&shared->mutex);

        uint64_t seq = 0;
        wc_metrics_tally_t latency;
        memset (&latency, 0, sizeof latency);
        int rc = failed ? -1 : s_sync_round (jobs, njobs, &seq, &latency);
        for (size_t j = 0; j < njobs; j++)
            wc_wal_sync_job_release (&jobs [j]);
        free (jobs);

        pthread_mutex_lock (&shared->mutex);
        bool changed = rc == 0 ? seq > shared->durable : !shared->failed;
        if (rc == 0 && seq > shared->durable)
            shared->durable = seq;
        if (rc != 0)
            shared->failed = true;
        for (size_t b = 0; b <= WC_METRICS_LATENCY_BUCKETS; b++)
            shared->latency.counts [b] += latency.counts [b];
        shared->latency.sum += latency.sum;
        shared->latency.count += latency.count;
        bool notify = changed && !shared->result_sent;
        if (notify)
            shared->result_sent = true;
        pthread_cond_broadcast (&shared->done);
        pthread_mutex_unlock (&shared->mutex);
        if (notify)
            zstr_send (pipe, "R");
    }
}

//  The actor: wait for "SYNC" (run the queue) or "$TERM" (stop).
static void
s_actor (zsock_t *pipe, void *args)
{
    s_shared_t *shared = (s_shared_t *) args;
    zsock_signal (pipe, 0);
    while (true) {
        char *command = zstr_recv (pipe);
        if (!command)
            break;                  //  interrupted
        bool term = streq (command, "$TERM");
        zstr_free (&command);
        if (term)
            break;
        s_run_queue (shared, pipe);
    }
}


//  --------------------------------------------------------------------
//  The owner's side

wc_syncer_t *
wc_syncer_new (void)
{
    wc_syncer_t *self = (wc_syncer_t *) calloc (1, sizeof *self);
    s_shared_t *shared = (s_shared_t *) calloc (1, sizeof *shared);
    pthread_condattr_t attr;
    if (!self || !shared || pthread_mutex_init (&shared->mutex, NULL) != 0) {
        free (self);
        free (shared);
        return NULL;
    }
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init (&shared->done, &attr);
    pthread_condattr_destroy (&attr);
    if (rc != 0) {
        pthread_mutex_destroy (&shared->mutex);
        free (self);
        free (shared);
        return NULL;
    }
    self->shared = shared;
    self->actor = zactor_new (s_actor, shared);
    if (!self->actor) {
        wc_log_error ("syncer: cannot start its thread");
        pthread_cond_destroy (&shared->done);
        pthread_mutex_destroy (&shared->mutex);
        free (shared);
        free (self);
        return NULL;
    }
    return self;
}

void
wc_syncer_destroy (wc_syncer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wc_syncer_t *self = *self_p;
    s_shared_t *shared = self->shared;
    pthread_mutex_lock (&shared->mutex);
    shared->terminating = true;
    pthread_mutex_unlock (&shared->mutex);
    zactor_destroy (&self->actor);          //  waits for the round in progress
    for (size_t j = 0; j < shared->nqueue; j++)
        wc_wal_sync_job_release (&shared->queue [j]);
    free (shared->queue);
    pthread_cond_destroy (&shared->done);
    pthread_mutex_destroy (&shared->mutex);
    free (shared);
    free (self);
    *self_p = NULL;
}

int
wc_syncer_submit (wc_syncer_t *self, wc_wal_sync_job_t *job)
{
    s_shared_t *shared = self->shared;
    pthread_mutex_lock (&shared->mutex);
    int rc = shared->failed ? WALCAST_EIO : 0;
    if (rc == 0 && shared->nqueue == shared->queue_cap) {
        size_t cap = shared->queue_cap ? shared->queue_cap * 2 : 16;
        wc_wal_sync_job_t *grown = (wc_wal_sync_job_t *)
            realloc (shared->queue, cap * sizeof *grown);
        if (grown) {
            shared->queue = grown;
            shared->queue_cap = cap;
        }
        else
            rc = WALCAST_ENOMEM;
    }
    bool wake = false;
    if (rc == 0) {
        shared->queue [shared->nqueue++] = *job;
        memset (job, 0, sizeof *job);
        wake = !shared->wake_sent;
        shared->wake_sent = true;
    }
    pthread_mutex_unlock (&shared->mutex);
    if (wake && zstr_send (self->actor, "SYNC") != 0) {
        //  The actor did not get the wake: let the next submit send it.
        wc_log_error ("syncer: cannot wake the syncer thread: %s", zmq_strerror (zmq_errno ()));
        pthread_mutex_lock (&shared->mutex);
        shared->wake_sent = false;
        pthread_mutex_unlock (&shared->mutex);
    }
    return rc;
}

zsock_t *
wc_syncer_sock (wc_syncer_t *self)
{
    return zactor_sock (self->actor);
}

int
wc_syncer_result (wc_syncer_t *self, uint64_t *seq)
{
    //  Take every notice waiting: the state says the rest.
    void *handle = zsock_resolve (zactor_sock (self->actor));
    char notice [8];
    while (zmq_recv (handle, notice, sizeof notice, ZMQ_DONTWAIT) >= 0 || zmq_errno () == EINTR)
        ;
    s_shared_t *shared = self->shared;
    pthread_mutex_lock (&shared->mutex);
    bool failed = shared->failed;
    uint64_t durable = shared->durable;
    shared->result_sent = false;
    pthread_mutex_unlock (&shared->mutex);
    if (failed)
        return WALCAST_EIO;
    if (durable <= self->reported)
        return 0;
    self->reported = durable;
    *seq = durable;
    return 1;
}

int
wc_syncer_wait (wc_syncer_t *self, uint64_t seq, int timeout_ms)
{
    s_shared_t *shared = self->shared;
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    if (timeout_ms > 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
    }
    pthread_mutex_lock (&shared->mutex);
    int rc = 0;
    while (!shared->failed && shared->durable < seq && rc == 0) {
        if (timeout_ms < 0)
            rc = pthread_cond_wait (&shared->done, &shared->mutex);
        else
            rc = pthread_cond_timedwait (&shared->done, &shared->mutex, &deadline);
    }
    bool failed = shared->failed, reached = shared->durable >= seq;
    pthread_mutex_unlock (&shared->mutex);
    return failed ? WALCAST_EIO : reached ? 0 : WALCAST_ETIMEOUT;
}

void
wc_syncer_rebase (wc_syncer_t *self, uint64_t seq)
{
    s_shared_t *shared = self->shared;
    pthread_mutex_lock (&shared->mutex);
    shared->durable = seq;
    pthread_mutex_unlock (&shared->mutex);
    self->reported = seq;
}

void
wc_syncer_latency (wc_syncer_t *self, wc_metrics_tally_t *tally)
{
    s_shared_t *shared = self->shared;
    pthread_mutex_lock (&shared->mutex);
    *tally = shared->latency;
    pthread_mutex_unlock (&shared->mutex);
}
