/*  vfs.c - the storage engine's file operations, with fault injection.

    Each wrapper counts its call, asks s_enter whether this call must fail
    (and with which errno), and otherwise makes the system call. The fast
    path is what production runs: nothing is programmed and no fault file
    is configured, so s_enter is one relaxed atomic add, a pthread_once
    check and two relaxed loads.

    Two sources of faults, independent of each other:

    - Programmed faults (unit tests): per operation, a count of calls to
      let through and a count of calls to fail, under one mutex; a flag
      read without the lock says whether anything is programmed at all. A
      short write is one more programmed fault on pwrite. The test hook is
      called outside the mutex, so it may block (a test holds the syncer
      thread inside an fdatasync that way).

    - The fault file (cluster tests, WALCAST_FAULT_FILE): every call
      stats the file, under a mutex, and re-reads it when its inode, size,
      mtime or ctime changed, so a call that starts after a test replaced
      the file obeys the new rules. (An earlier version looked at most every
      10 ms; a test could then replace the file, make the node write, and
      see the write go through under the old rules.) A stat per call costs
      a microsecond, and only processes started with the variable pay it.

    errno is set by the wrappers exactly as the system call would: a failed
    injected call returns -1 with errno = the chosen error.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vfs.h"

#define S_STALL          (-1)   /* not an errno: the call waits while the line is there */
#define S_FILE_MAX        4096      /* bytes of the fault file we read */

//  One programmed fault.
typedef struct {
    uint64_t after;         /* calls still to let through first */
    int times;              /* calls to fail then: -1 for ever, 0 none */
    int err;                /* errno of the failed calls */
} s_fault_t;

//  A programmed short write.
typedef struct {
    bool armed;             /* a short write is waiting */
    uint64_t after;         /* writes still to let through first */
    size_t keep;            /* bytes the short write writes */
    int err;                /* errno of the write after it */
} s_short_t;

static pthread_mutex_t s_mutex = PTHREAD_MUTEX_INITIALIZER;
static s_fault_t s_faults [WC_VFS_NOPS];    /* under s_mutex */
static s_short_t s_short;                   /* under s_mutex */
static wc_vfs_hook_fn *s_hook;              /* under s_mutex */
static void *s_hook_arg;                    /* under s_mutex */
static atomic_bool s_programmed;            /* anything above is set */
static _Atomic uint64_t s_counts [WC_VFS_NOPS];

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static char *s_file_path;                   /* WALCAST_FAULT_FILE, or NULL */
static atomic_int s_file_err [WC_VFS_NOPS]; /* errno per op from the file */
static pthread_mutex_t s_file_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct stat s_file_seen;             /* the file at the last read; s_file_mutex */
static bool s_file_existed;                 /* it existed then; s_file_mutex */

static const char *s_op_names [WC_VFS_NOPS] = {
    "open", "read", "write", "sync", "truncate", "rename", "unlink", "mkdir"
};

//  The errno names a fault file may use.
static const struct {
    const char *name;
    int value;
} s_errnos [] = {
    { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT }, { "EFBIG", EFBIG },
    { "EIO", EIO }, { "EMFILE", EMFILE }, { "ENFILE", ENFILE },
    { "EACCES", EACCES }, { "EPERM", EPERM }, { "EROFS", EROFS },
    { "ENOMEM", ENOMEM }, { "EAGAIN", EAGAIN }, { "EINTR", EINTR },
    { "EBADF", EBADF }, { "EEXIST", EEXIST }, { "ENOENT", ENOENT },
    { "EINVAL", EINVAL }, { "EBUSY", EBUSY }, { "EXDEV", EXDEV },
    { "ENOTDIR", ENOTDIR }, { "EISDIR", EISDIR }, { "ENAMETOOLONG", ENAMETOOLONG },
    { "ELOOP", ELOOP }, { "ENODEV", ENODEV }, { "ETXTBSY", ETXTBSY },
    { "STALL", S_STALL }
};


//  --------------------------------------------------------------------
//  The fault file

static void
s_init (void)
{
    const char *path = getenv ("WALCAST_FAULT_FILE");
    if (path && *path)
        s_file_path = strdup (path);
}

static bool
s_same_file (const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev
        && a->st_size == b->st_size
        && a->st_mtim.tv_sec == b->st_mtim.tv_sec
        && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec
        && a->st_ctim.tv_sec == b->st_ctim.tv_sec
        && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

//  Parse one line "<op> <ERRNO>" into errs; returns false when it is
//  neither that nor blank/comment.
static bool
s_parse_line (char *line, int *errs)
{
    char *hash = strchr (line, '#');
    if (hash)
        *hash = '\0';
    char op [32], name [32], extra [2];
    int fields = sscanf (line, "%31s %31s %1s", op, name, extra);
    if (fields <= 0)
        return true;                //  blank
    if (fields != 2)
        return false;
    int which = -1;
    for (int i = 0; i < WC_VFS_NOPS; i++)
        if (strcmp (op, s_op_names [i]) == 0)
            which = i;
    for (size_t k = 0; which >= 0 && k < sizeof s_errnos / sizeof s_errnos [0]; k++)
        if (strcmp (name, s_errnos [k].name) == 0) {
            errs [which] = s_errnos [k].value;
            return true;
        }
    return false;
}

//  Read the fault file (NULL content: it is gone) and publish its faults,
//  with one log line saying what is now in force.
static void
s_file_apply (char *content)
{
    int errs [WC_VFS_NOPS] = { 0 };
    char bad [64] = "";
    for (char *line = content, *next; line && *line; line = next) {
        next = strchr (line, '\n');
        if (next)
            *next++ = '\0';
        if (!s_parse_line (line, errs) && !*bad)
            snprintf (bad, sizeof bad, "%.40s", line);
    }
    char said [256] = "";
    size_t used = 0;
    for (int i = 0; i < WC_VFS_NOPS; i++) {
        atomic_store (&s_file_err [i], errs [i]);
        if (errs [i] && used < sizeof said)
            used += (size_t) snprintf (said + used, sizeof said - used, "%s%s %s",
                                       used ? ", " : "", s_op_names [i],
                                       errs [i] == S_STALL ? "(stalled)"
                                                           : strerror (errs [i]));
    }
    wc_log_warn ("vfs: fault file %s: %s%s%s%s", s_file_path,
                 used ? "failing " : "no faults", said,
                 *bad ? "; ignored a line it cannot read: " : "", bad);
}

//  Look at the fault file; re-read it when it changed since last time.
static void
s_file_reload (void)
{
    struct stat st;
    if (stat (s_file_path, &st) != 0) {
        if (s_file_existed) {
            s_file_existed = false;
            s_file_apply (NULL);
        }
        return;
    }
    if (s_file_existed && s_same_file (&st, &s_file_seen))
        return;
    s_file_seen = st;
    s_file_existed = true;
    char content [S_FILE_MAX + 1];
    ssize_t got = 0;
    int fd = open (s_file_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        got = read (fd, content, S_FILE_MAX);
        close (fd);
    }
    content [got > 0 ? got : 0] = '\0';
    s_file_apply (content);
}

//  The errno the fault file sets for op (0: none), after looking at the
//  file: a change made before this call began is in force for it.
static int
s_file_fault (wc_vfs_op_t op)
{
    pthread_mutex_lock (&s_file_mutex);
    s_file_reload ();
    pthread_mutex_unlock (&s_file_mutex);
    return atomic_load_explicit (&s_file_err [op], memory_order_relaxed);
}


//  --------------------------------------------------------------------
//  Programmed faults

//  Is anything programmed? Call with s_mutex held.
static void
s_update_programmed (void)
{
    bool any = s_hook != NULL || s_short.armed;
    for (int i = 0; i < WC_VFS_NOPS; i++)
        if (s_faults [i].times != 0)
            any = true;
    atomic_store (&s_programmed, any);
}

//  Run the hook and take one call of op off its programmed fault; returns
//  the errno to fail with, or 0.
static int
s_programmed_fault (wc_vfs_op_t op, int fd)
{
    pthread_mutex_lock (&s_mutex);
    wc_vfs_hook_fn *hook = s_hook;
    void *hook_arg = s_hook_arg;
    int err = 0;
    s_fault_t *fault = &s_faults [op];
    if (fault->times != 0) {
        if (fault->after > 0)
            fault->after--;
        else {
            err = fault->err;
            if (fault->times > 0 && --fault->times == 0)
                s_update_programmed ();
        }
    }
    pthread_mutex_unlock (&s_mutex);
    if (hook)
        hook (op, fd, hook_arg);
    return err;
}

//  Count a call of op and decide whether it fails: the errno, or 0.
static int
s_enter (wc_vfs_op_t op, int fd)
{
    atomic_fetch_add_explicit (&s_counts [op], 1, memory_order_relaxed);
    pthread_once (&s_once, s_init);
    int err = s_file_path ? s_file_fault (op) : 0;
    while (err == S_STALL) {
        //  A disk that hangs: wait until the line goes away
        struct timespec nap = { 0, 5 * 1000 * 1000 };
        nanosleep (&nap, NULL);
        err = s_file_fault (op);
    }
    if (atomic_load_explicit (&s_programmed, memory_order_relaxed)) {
        int programmed = s_programmed_fault (op, fd);
        if (!err)
            err = programmed;
    }
    return err;
}

//  How many of count bytes this write may write (count unless a short
//  write is due); 0 with *err set when it must fail outright.
static size_t
s_short_write (size_t count, int *err)
{
    if (!atomic_load_explicit (&s_programmed, memory_order_relaxed))
        return count;
    pthread_mutex_lock (&s_mutex);
    size_t allowed = count;
    if (s_short.armed) {
        if (s_short.after > 0)
            s_short.after--;
        else {
            s_short.armed = false;
            allowed = s_short.keep < count ? s_short.keep : count - 1;
            s_faults [WC_VFS_WRITE] = (s_fault_t) { 0, 1, s_short.err };
            if (allowed == 0) {
                s_faults [WC_VFS_WRITE].times = 0;
                *err = s_short.err;
            }
            s_update_programmed ();
        }
    }
    pthread_mutex_unlock (&s_mutex);
    return allowed;
}


//  --------------------------------------------------------------------
//  The file operations

int
wc_vfs_open (const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list args;
        va_start (args, flags);
        mode = (mode_t) va_arg (args, int);
        va_end (args);
    }
    int err = s_enter (WC_VFS_OPEN, -1);
    if (err) {
        errno = err;
        return -1;
    }
    return open (path, flags, mode);
}

int
wc_vfs_openat (int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list args;
        va_start (args, flags);
        mode = (mode_t) va_arg (args, int);
        va_end (args);
    }
    int err = s_enter (WC_VFS_OPEN, dirfd);
    if (err) {
        errno = err;
        return -1;
    }
    return openat (dirfd, path, flags, mode);
}

int
wc_vfs_dup (int fd)
{
    int err = s_enter (WC_VFS_OPEN, fd);
    if (err) {
        errno = err;
        return -1;
    }
    return fcntl (fd, F_DUPFD_CLOEXEC, 0);
}

ssize_t
wc_vfs_pread (int fd, void *buf, size_t count, off_t offset)
{
    int err = s_enter (WC_VFS_READ, fd);
    if (err) {
        errno = err;
        return -1;
    }
    return pread (fd, buf, count, offset);
}

ssize_t
wc_vfs_pwrite (int fd, const void *buf, size_t count, off_t offset)
{
    int err = s_enter (WC_VFS_WRITE, fd);
    size_t allowed = err || count == 0 ? count : s_short_write (count, &err);
    if (err) {
        errno = err;
        return -1;
    }
    return pwrite (fd, buf, allowed, offset);
}

int
wc_vfs_fdatasync (int fd)
{
    int err = s_enter (WC_VFS_SYNC, fd);
    if (err) {
        errno = err;
        return -1;
    }
    return fdatasync (fd);
}

int
wc_vfs_fsync (int fd)
{
    int err = s_enter (WC_VFS_SYNC, fd);
    if (err) {
        errno = err;
        return -1;
    }
    return fsync (fd);
}

int
wc_vfs_ftruncate (int fd, off_t length)
{
    int err = s_enter (WC_VFS_TRUNCATE, fd);
    if (err) {
        errno = err;
        return -1;
    }
    return ftruncate (fd, length);
}

int
wc_vfs_unlinkat (int dirfd, const char *path, int flags)
{
    int err = s_enter (WC_VFS_UNLINK, dirfd);
    if (err) {
        errno = err;
        return -1;
    }
    return unlinkat (dirfd, path, flags);
}

int
wc_vfs_renameat (int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    int err = s_enter (WC_VFS_RENAME, olddirfd);
    if (err) {
        errno = err;
        return -1;
    }
    return renameat (olddirfd, oldpath, newdirfd, newpath);
}

int
wc_vfs_mkdir (const char *path, mode_t mode)
{
    int err = s_enter (WC_VFS_MKDIR, -1);
    if (err) {
        errno = err;
        return -1;
    }
    return mkdir (path, mode);
}

int
wc_vfs_close (int fd)
{
    return close (fd);
}

//  mkdir -p on copy, a path we may cut: the deepest directory first, its
//  parents only when it says they are missing, so the directory that
//  cannot be made is the one named in failed. 0, or -1 with errno set.
static int
s_mkdirs (char *copy, mode_t mode, char *failed, size_t failed_size)
{
    if (wc_vfs_mkdir (copy, mode) == 0 || errno == EEXIST)
        return 0;
    char *slash = strrchr (copy, '/');
    if (errno == ENOENT && slash && slash != copy) {
        *slash = '\0';
        int rc = s_mkdirs (copy, mode, failed, failed_size);
        *slash = '/';
        if (rc != 0)
            return rc;
        if (wc_vfs_mkdir (copy, mode) == 0 || errno == EEXIST)
            return 0;
    }
    if (failed && failed_size)
        snprintf (failed, failed_size, "%s", copy);
    return -1;
}

int
wc_vfs_mkdirs (const char *path, mode_t mode, char *failed, size_t failed_size)
{
    if (failed && failed_size)
        snprintf (failed, failed_size, "%s", path);
    if (!*path) {
        errno = ENOENT;
        return -1;
    }
    char *copy = strdup (path);
    if (!copy)
        return -1;
    size_t len = strlen (copy);
    while (len > 1 && copy [len - 1] == '/')
        copy [--len] = '\0';               //  "a/b/" is "a/b"
    int rc = s_mkdirs (copy, mode, failed, failed_size);
    int saved_errno = errno;
    free (copy);
    errno = saved_errno;
    return rc;
}


//  --------------------------------------------------------------------
//  Programming faults

void
wc_vfs_fail (wc_vfs_op_t op, uint64_t after, int times, int err)
{
    if ((int) op < 0 || op >= WC_VFS_NOPS)
        return;
    pthread_mutex_lock (&s_mutex);
    s_faults [op] = (s_fault_t) { after, times, err };
    s_update_programmed ();
    pthread_mutex_unlock (&s_mutex);
}

void
wc_vfs_fail_short_write (uint64_t after, size_t keep, int err)
{
    pthread_mutex_lock (&s_mutex);
    s_short = (s_short_t) { true, after, keep, err };
    s_update_programmed ();
    pthread_mutex_unlock (&s_mutex);
}

void
wc_vfs_set_hook (wc_vfs_hook_fn *fn, void *arg)
{
    pthread_mutex_lock (&s_mutex);
    s_hook = fn;
    s_hook_arg = arg;
    s_update_programmed ();
    pthread_mutex_unlock (&s_mutex);
}

void
wc_vfs_reset (void)
{
    pthread_mutex_lock (&s_mutex);
    memset (s_faults, 0, sizeof s_faults);
    memset (&s_short, 0, sizeof s_short);
    s_hook = NULL;
    s_hook_arg = NULL;
    s_update_programmed ();
    for (int i = 0; i < WC_VFS_NOPS; i++)
        atomic_store (&s_counts [i], 0);
    pthread_mutex_unlock (&s_mutex);
}

uint64_t
wc_vfs_count (wc_vfs_op_t op)
{
    if ((int) op < 0 || op >= WC_VFS_NOPS)
        return 0;
    return atomic_load (&s_counts [op]);
}

const char *
wc_vfs_op_name (wc_vfs_op_t op)
{
    if ((int) op < 0 || op >= WC_VFS_NOPS)
        return "?";
    return s_op_names [op];
}
