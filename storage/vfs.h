/*  vfs.h - every file operation of the storage engine, through one layer.

    The WAL, the directory lock, the engine's small files (files.h) and
    the snapshots call these instead of the system calls, as SQLite's
    pager goes through its VFS. Each has the signature and the
    semantics of the system call of the same name (a result of -1 sets
    errno), so in production the layer is a pass-through: one relaxed
    atomic add (the call count) and one load per call.

    What the layer adds is fault injection, so tests can make any open,
    read, write, sync, truncate, rename, unlink or mkdir fail at any step
    with the errno they choose (ENOSPC, EIO, EMFILE...) and check that the
    engine survives it:

    - Unit tests (in process, thread-safe: the syncer thread calls
      wc_vfs_fdatasync): wc_vfs_fail lets `after` more calls of an operation
      succeed and then fails `times` calls (-1: until wc_vfs_reset) with
      errno err; wc_vfs_fail_short_write makes one write short, as a disk
      that fills inside a write; wc_vfs_count counts calls, so a test can
      fail every step of a scenario in turn; wc_vfs_set_hook runs a
      function before every call (to hold a thread inside an fdatasync).

    - Cluster tests (TEST HOOK, real node processes): when the environment
      variable WALCAST_FAULT_FILE names a file when the process starts,
      every call checks that file's status and re-reads it whenever it
      changed: a call that starts after the file was replaced obeys it.
      Each line is "<op> <ERRNO-NAME>", op one of open, read, write, sync,
      truncate, rename, unlink, mkdir, e.g.

          write ENOSPC
          sync EIO
          open EMFILE

      and every call of that operation fails with that errno while the line
      is there ("sync STALL" instead makes every sync wait until the line is
      gone: a disk that hangs); '#' starts a comment. An empty or missing file means no
      faults. Replace the file (write a new one, rename it over) so that a
      change is always seen; the layer compares inode, size and times.
      This lets a test fill the disk of a running node and give the space
      back. Never set it in production.

    wc_vfs_dup makes a descriptor, so it counts (and fails) as WC_VFS_OPEN;
    wc_vfs_fsync and wc_vfs_fdatasync are both WC_VFS_SYNC. wc_vfs_close is
    never failed.
*/
#ifndef WC_VFS_H_INCLUDED
#define WC_VFS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum {
    WC_VFS_OPEN,            /* open, openat, dup */
    WC_VFS_READ,            /* pread */
    WC_VFS_WRITE,           /* pwrite */
    WC_VFS_SYNC,            /* fdatasync, fsync */
    WC_VFS_TRUNCATE,        /* ftruncate */
    WC_VFS_RENAME,          /* renameat */
    WC_VFS_UNLINK,          /* unlinkat */
    WC_VFS_MKDIR,           /* mkdir */
    WC_VFS_NOPS
} wc_vfs_op_t;

//  --------------------------------------------------------------------
//  The file operations (as the system calls)

int wc_vfs_open (const char *path, int flags, ...);
int wc_vfs_openat (int dirfd, const char *path, int flags, ...);
int wc_vfs_dup (int fd);
ssize_t wc_vfs_pread (int fd, void *buf, size_t count, off_t offset);
ssize_t wc_vfs_pwrite (int fd, const void *buf, size_t count, off_t offset);
int wc_vfs_fdatasync (int fd);
int wc_vfs_fsync (int fd);
int wc_vfs_ftruncate (int fd, off_t length);
int wc_vfs_unlinkat (int dirfd, const char *path, int flags);
int wc_vfs_renameat (int olddirfd, const char *oldpath, int newdirfd,
                     const char *newpath);
int wc_vfs_mkdir (const char *path, mode_t mode);
int wc_vfs_close (int fd);

/*  Create path and every missing parent, like mkdir -p (each mkdir is a
    WC_VFS_MKDIR call; path itself is tried first). Returns 0, or -1 with
    errno set and the directory that could not be made in failed (may be
    NULL): path or one of its parents. */
int wc_vfs_mkdirs (const char *path, mode_t mode, char *failed, size_t failed_size);

//  --------------------------------------------------------------------
//  Fault injection, for tests

/*  Let `after` more calls of op succeed, then fail `times` calls (-1: every
    call until wc_vfs_reset) with errno err. Replaces what was set for op. */
void wc_vfs_fail (wc_vfs_op_t op, uint64_t after, int times, int err);

/*  Let `after` more writes succeed; the next one writes only its first
    `keep` bytes (never all of them: at most count - 1) and returns that
    short count, and the write after it fails with errno err, as a disk
    that fills inside a write. When that leaves nothing to write, the
    write fails with err at once. */
void wc_vfs_fail_short_write (uint64_t after, size_t keep, int err);

/*  Called before every file operation, from the calling thread, with the
    operation and its descriptor (-1 for path operations). */
typedef void (wc_vfs_hook_fn) (wc_vfs_op_t op, int fd, void *arg);

/*  Install fn (NULL removes it). */
void wc_vfs_set_hook (wc_vfs_hook_fn *fn, void *arg);

/*  Forget every programmed fault and the hook, and set the counts to 0.
    Faults from WALCAST_FAULT_FILE are not affected. */
void wc_vfs_reset (void);

/*  Calls of op since the start or the last wc_vfs_reset, failed ones too. */
uint64_t wc_vfs_count (wc_vfs_op_t op);

/*  "open", "read", ... as in the fault file; "?" for anything else. */
const char *wc_vfs_op_name (wc_vfs_op_t op);

#endif
