/*  lock.c - one process per data directory (see lock.h).

    Taking the lock is: open DIR/LOCK (creating it), flock it exclusively
    without waiting, then replace its content with "PID OWNER\n". Whoever
    fails the flock reads that line to say who holds the directory. The
    holder writes its line only after it holds the lock, so a reader can
    find the file empty (the holder is between its flock and its write)
    or, if a holder could not write, a line of an earlier holder: the
    message says "held by another process" when the line cannot be read.

    File operations go through the vfs, so tests can fail them; flock
    itself cannot fail but for EWOULDBLOCK (or a kernel out of memory).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walcast.h"
#include "lock.h"
#include "log.h"
#include "vfs.h"

#define S_LINE_MAX 256              /* bytes of "PID OWNER" we write or read */

struct wc_lock {
    int fd;                         /* DIR/LOCK, holding the flock */
    char *path;                     /* DIR/LOCK, for logs */
};

static void
s_why (char *why, size_t why_size, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_why (char *why, size_t why_size, const char *fmt, ...)
{
    if (!why || why_size == 0)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (why, why_size, fmt, args);
    va_end (args);
}

//  Say who holds the lock of the file open on fd: "held by process 1234
//  (walcast-node --id us1)", from the line the holder wrote.
static void
s_describe_holder (int fd, char *why, size_t why_size)
{
    char line [S_LINE_MAX + 1];
    ssize_t got = wc_vfs_pread (fd, line, S_LINE_MAX, 0);
    line [got > 0 ? got : 0] = '\0';
    line [strcspn (line, "\n")] = '\0';
    char *owner;
    long pid = strtol (line, &owner, 10);
    if (pid <= 0 || owner == line || (*owner && *owner != ' ')) {
        s_why (why, why_size, "held by another process (it has not written its id)");
        return;
    }
    while (*owner == ' ')
        owner++;
    if (*owner)
        s_why (why, why_size, "held by process %ld (%s)", pid, owner);
    else
        s_why (why, why_size, "held by process %ld", pid);
}

//  Write "PID OWNER\n" into the lock file, one line, printable. A failure
//  is logged and leaves the file empty where it can: the lock is what
//  matters, the line only makes the next comer's message better.
static void
s_write_owner (wc_lock_t *self, const char *owner)
{
    char line [S_LINE_MAX];
    int len = snprintf (line, sizeof line, "%ld %s", (long) getpid (), owner ? owner : "");
    if (len < 0)
        return;
    if ((size_t) len >= sizeof line - 1)
        len = (int) sizeof line - 2;
    for (int i = 0; i < len; i++)
        if ((unsigned char) line [i] < 0x20 || line [i] == 0x7f)
            line [i] = ' ';
    line [len++] = '\n';
    if (wc_vfs_ftruncate (self->fd, 0) != 0
    ||  wc_vfs_pwrite (self->fd, line, (size_t) len, 0) != (ssize_t) len) {
        wc_log_warn ("lock %s: held, but cannot record its owner: %s",
                     self->path, strerror (errno));
        wc_vfs_ftruncate (self->fd, 0);
    }
}

//  Make dir (mkdir -p) and open its LOCK file, creating it. 0, or -1
//  with why naming what failed: the directory that cannot be made, the
//  directory that cannot be written in, or the file.
static int
s_open (wc_lock_t *self, const char *dir, char *why, size_t why_size)
{
    char failed [1024];
    if (wc_vfs_mkdirs (dir, 0755, failed, sizeof failed) != 0) {
        s_why (why, why_size, "cannot create the directory %s: %s", failed,
               strerror (errno));
        return -1;
    }
    self->fd = wc_vfs_open (self->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->fd >= 0)
        return 0;
    int open_errno = errno;
    struct stat st;
    if ((open_errno == EACCES || open_errno == EPERM)
    &&  lstat (self->path, &st) == 0)       //  the file is there: it is at fault
        s_why (why, why_size, "cannot open %s for writing (owner uid %u, mode %03o; "
               "another user ran a node on this directory?): %s", self->path,
               (unsigned) st.st_uid, (unsigned) (st.st_mode & 0777),
               strerror (open_errno));
    else
    if (open_errno == EACCES || open_errno == EPERM || open_errno == EROFS)
        s_why (why, why_size, "cannot write in the directory %s (to create its "
               "LOCK file): %s", dir, strerror (open_errno));
    else
        s_why (why, why_size, "cannot create %s: %s", self->path, strerror (open_errno));
    errno = open_errno;
    return -1;
}

wc_lock_t *
wc_lock_new (const char *dir, const char *owner, int *err, char *why, size_t why_size)
{
    int err_local;
    if (!err)
        err = &err_local;
    s_why (why, why_size, "%s", "");
    wc_lock_t *self = (wc_lock_t *) calloc (1, sizeof *self);
    size_t path_size = dir ? strlen (dir) + sizeof "/LOCK" : 0;
    if (!self || !dir || !*dir || !(self->path = (char *) malloc (path_size))) {
        *err = self && (!dir || !*dir) ? WALCAST_EINVAL : WALCAST_ENOMEM;
        s_why (why, why_size, "%s", walcast_strerror (*err));
        free (self);
        return NULL;
    }
    snprintf (self->path, path_size, "%s/LOCK", dir);
    self->fd = -1;
    if (s_open (self, dir, why, why_size) != 0) {
        *err = WALCAST_EIO;
        wc_lock_destroy (&self);
        return NULL;
    }
    while (flock (self->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK) {
            s_describe_holder (self->fd, why, why_size);
            *err = WALCAST_EBUSY;
        }
        else {
            s_why (why, why_size, "cannot lock %s: %s", self->path, strerror (errno));
            *err = WALCAST_EIO;
        }
        wc_lock_destroy (&self);
        return NULL;
    }
    s_write_owner (self, owner);
    *err = 0;
    return self;
}

void
wc_lock_destroy (wc_lock_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wc_lock_t *self = *self_p;
    if (self->fd >= 0)
        wc_vfs_close (self->fd);        //  releases the flock
    free (self->path);
    free (self);
    *self_p = NULL;
}
