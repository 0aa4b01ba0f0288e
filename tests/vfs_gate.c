/*  vfs_gate.c - hold a background thread inside a file operation (see
    vfs_gate.h). A mutex, a condition and two counts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include "vfs_gate.h"

typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t  cond;
    pthread_t       main;       /* never held */
    wc_vfs_op_t     op;         /* the operation held */
    bool            armed;      /* hold calls now */
    int             held;       /* calls being held */
    uint64_t        holds;      /* calls held since the gate closed */
} gate_t;

static gate_t s_gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                         0, WC_VFS_SYNC, false, 0, 0 };

static void
s_hook (wc_vfs_op_t op, int fd, void *arg)
{
    (void) fd;
    (void) arg;
    pthread_mutex_lock (&s_gate.mutex);
    if (op != s_gate.op || pthread_equal (pthread_self (), s_gate.main)) {
        pthread_mutex_unlock (&s_gate.mutex);
        return;
    }
    s_gate.held++;
    if (s_gate.armed)
        s_gate.holds++;
    pthread_cond_broadcast (&s_gate.cond);
    while (s_gate.armed)
        pthread_cond_wait (&s_gate.cond, &s_gate.mutex);
    s_gate.held--;
    pthread_cond_broadcast (&s_gate.cond);
    pthread_mutex_unlock (&s_gate.mutex);
}

void
gate_install (wc_vfs_op_t op)
{
    gate_open ();
    pthread_mutex_lock (&s_gate.mutex);
    s_gate.main = pthread_self ();
    s_gate.op = op;
    pthread_mutex_unlock (&s_gate.mutex);
    wc_vfs_set_hook (s_hook, NULL);
}

void
gate_close (void)
{
    pthread_mutex_lock (&s_gate.mutex);
    s_gate.armed = true;
    s_gate.holds = 0;
    pthread_mutex_unlock (&s_gate.mutex);
}

static void
s_deadline (struct timespec *deadline)
{
    clock_gettime (CLOCK_REALTIME, deadline);
    deadline->tv_sec += 10;
}

void
gate_open (void)
{
    struct timespec deadline;
    s_deadline (&deadline);
    pthread_mutex_lock (&s_gate.mutex);
    s_gate.armed = false;
    pthread_cond_broadcast (&s_gate.cond);
    int rc = 0;
    while (s_gate.held > 0 && rc == 0)
        rc = pthread_cond_timedwait (&s_gate.cond, &s_gate.mutex, &deadline);
    pthread_mutex_unlock (&s_gate.mutex);
}

uint64_t
gate_holds (void)
{
    pthread_mutex_lock (&s_gate.mutex);
    uint64_t holds = s_gate.holds;
    pthread_mutex_unlock (&s_gate.mutex);
    return holds;
}

void
gate_wait_hold (uint64_t after)
{
    struct timespec deadline;
    s_deadline (&deadline);
    pthread_mutex_lock (&s_gate.mutex);
    int rc = 0;
    while (s_gate.holds <= after && rc == 0)
        rc = pthread_cond_timedwait (&s_gate.cond, &s_gate.mutex, &deadline);
    uint64_t holds = s_gate.holds;
    pthread_mutex_unlock (&s_gate.mutex);
    assert_true (holds > after);
}
