/*  test_vfs.c - the storage engine's file layer and its fault injection.

    What the storage tests rely on: without faults every call does what
    the system call does; a programmed fault lets exactly `after` calls
    through and then fails exactly `times` calls with the chosen errno
    (for ever with -1, until reset); a short write writes part of its
    bytes and the next write fails; counts count every call; the hook
    sees every call. And for cluster tests: a fault file named by
    WALCAST_FAULT_FILE turns faults on and off in a running process.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vfs.h"

static char s_dir [64];             /* this run's temp directory */
static char s_fault_file [128];     /* WALCAST_FAULT_FILE */

static char *
s_path (const char *name)
{
    static char path [256];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    return path;
}

static int
s_open_file (const char *name)
{
    int fd = wc_vfs_open (s_path (name), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    assert_true (fd >= 0);
    return fd;
}

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_pass_through (void **state)
{
    (void) state;
    wc_vfs_reset ();
    assert_int_equal (wc_vfs_mkdirs (s_path ("a/b/c"), 0755, NULL, 0), 0);
    assert_int_equal (wc_vfs_mkdirs (s_path ("a/b/c"), 0755, NULL, 0), 0);    //  exists: fine
    assert_true (wc_vfs_count (WC_VFS_MKDIR) >= 3);
    int fd = s_open_file ("a/b/c/f");
    assert_int_equal (wc_vfs_pwrite (fd, "hello world", 11, 0), 11);
    char buf [16] = "";
    assert_int_equal (wc_vfs_pread (fd, buf, sizeof buf, 6), 5);
    assert_memory_equal (buf, "world", 5);
    assert_int_equal (wc_vfs_ftruncate (fd, 5), 0);
    assert_int_equal (wc_vfs_fdatasync (fd), 0);
    assert_int_equal (wc_vfs_fsync (fd), 0);
    int copy = wc_vfs_dup (fd);
    assert_true (copy >= 0 && copy != fd);
    assert_int_equal (fcntl (copy, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    struct stat st;
    assert_int_equal (fstat (copy, &st), 0);
    assert_int_equal (st.st_size, 5);
    wc_vfs_close (copy);
    wc_vfs_close (fd);
    int dirfd = wc_vfs_open (s_path ("a/b/c"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true (dirfd >= 0);
    fd = wc_vfs_openat (dirfd, "g", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true (fd >= 0);
    wc_vfs_close (fd);
    assert_int_equal (fstatat (dirfd, "g", &st, 0), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    assert_int_equal (wc_vfs_renameat (dirfd, "g", dirfd, "h"), 0);
    assert_int_equal (wc_vfs_unlinkat (dirfd, "h", 0), 0);
    assert_int_equal (wc_vfs_unlinkat (dirfd, "h", 0), -1);
    assert_int_equal (errno, ENOENT);
    wc_vfs_close (dirfd);
    //  Every kind of call was counted.
    for (int op = 0; op < WC_VFS_NOPS; op++)
        assert_true (wc_vfs_count ((wc_vfs_op_t) op) > 0);
    assert_int_equal (wc_vfs_count (WC_VFS_UNLINK), 2);
    assert_string_equal (wc_vfs_op_name (WC_VFS_TRUNCATE), "truncate");
    assert_string_equal (wc_vfs_op_name (WC_VFS_NOPS), "?");
    wc_vfs_reset ();
    assert_int_equal (wc_vfs_count (WC_VFS_UNLINK), 0);
}

static void
test_fail_after_times (void **state)
{
    (void) state;
    wc_vfs_reset ();
    int fd = s_open_file ("f");
    //  Two writes pass, three fail with ENOSPC, then writes work again.
    wc_vfs_fail (WC_VFS_WRITE, 2, 3, ENOSPC);
    for (int i = 0; i < 2; i++)
        assert_int_equal (wc_vfs_pwrite (fd, "x", 1, i), 1);
    for (int i = 0; i < 3; i++) {
        errno = 0;
        assert_int_equal (wc_vfs_pwrite (fd, "x", 1, 0), -1);
        assert_int_equal (errno, ENOSPC);
    }
    assert_int_equal (wc_vfs_pwrite (fd, "x", 1, 2), 1);
    assert_int_equal (wc_vfs_count (WC_VFS_WRITE), 6);
    //  Other operations are not touched.
    wc_vfs_fail (WC_VFS_SYNC, 0, 1, EIO);
    assert_int_equal (wc_vfs_pwrite (fd, "x", 1, 3), 1);
    assert_int_equal (wc_vfs_fsync (fd), -1);
    assert_int_equal (errno, EIO);
    assert_int_equal (wc_vfs_fdatasync (fd), 0);
    //  -1 fails every call until reset.
    wc_vfs_fail (WC_VFS_OPEN, 0, -1, EMFILE);
    for (int i = 0; i < 50; i++) {
        assert_int_equal (wc_vfs_dup (fd), -1);
        assert_int_equal (errno, EMFILE);
    }
    assert_int_equal (wc_vfs_open (s_path ("f"), O_RDONLY), -1);
    wc_vfs_reset ();
    int copy = wc_vfs_dup (fd);
    assert_true (copy >= 0);
    wc_vfs_close (copy);
    //  A failed call did nothing: the file is 4 bytes.
    struct stat st;
    assert_int_equal (fstat (fd, &st), 0);
    assert_int_equal (st.st_size, 4);
    //  A new fault replaces the old one.
    wc_vfs_fail (WC_VFS_TRUNCATE, 0, -1, EIO);
    wc_vfs_fail (WC_VFS_TRUNCATE, 1, 1, EROFS);
    assert_int_equal (wc_vfs_ftruncate (fd, 3), 0);
    assert_int_equal (wc_vfs_ftruncate (fd, 2), -1);
    assert_int_equal (errno, EROFS);
    assert_int_equal (wc_vfs_ftruncate (fd, 1), 0);
    wc_vfs_close (fd);
    wc_vfs_reset ();
}

static void
test_short_write (void **state)
{
    (void) state;
    wc_vfs_reset ();
    int fd = s_open_file ("short");
    assert_int_equal (wc_vfs_ftruncate (fd, 0), 0);
    wc_vfs_fail_short_write (1, 3, ENOSPC);
    assert_int_equal (wc_vfs_pwrite (fd, "abcdef", 6, 0), 6);
    //  The next write lands 3 bytes, the one after fails, then all is well.
    assert_int_equal (wc_vfs_pwrite (fd, "ghijkl", 6, 6), 3);
    assert_int_equal (wc_vfs_pwrite (fd, "jkl", 3, 9), -1);
    assert_int_equal (errno, ENOSPC);
    assert_int_equal (wc_vfs_pwrite (fd, "xy", 2, 9), 2);
    char buf [16] = "";
    assert_int_equal (wc_vfs_pread (fd, buf, sizeof buf, 0), 11);
    assert_memory_equal (buf, "abcdefghixy", 11);
    //  Never the whole write: keep >= count writes count - 1.
    wc_vfs_fail_short_write (0, 100, EIO);
    assert_int_equal (wc_vfs_pwrite (fd, "12345", 5, 0), 4);
    assert_int_equal (wc_vfs_pwrite (fd, "5", 1, 4), -1);
    assert_int_equal (errno, EIO);
    //  Nothing left to write: the write fails at once, and only it.
    wc_vfs_fail_short_write (0, 0, EDQUOT);
    assert_int_equal (wc_vfs_pwrite (fd, "12345", 5, 0), -1);
    assert_int_equal (errno, EDQUOT);
    assert_int_equal (wc_vfs_pwrite (fd, "12345", 5, 0), 5);
    wc_vfs_close (fd);
    wc_vfs_reset ();
}

typedef struct {
    int calls [WC_VFS_NOPS];
    int last_fd;
} hook_seen_t;

static void
s_hook (wc_vfs_op_t op, int fd, void *arg)
{
    hook_seen_t *seen = (hook_seen_t *) arg;
    seen->calls [op]++;
    seen->last_fd = fd;
}

static void
test_hook (void **state)
{
    (void) state;
    wc_vfs_reset ();
    hook_seen_t seen = { { 0 }, 0 };
    wc_vfs_set_hook (s_hook, &seen);
    int fd = s_open_file ("hooked");
    assert_int_equal (wc_vfs_fdatasync (fd), 0);
    assert_int_equal (seen.last_fd, fd);
    assert_int_equal (seen.calls [WC_VFS_OPEN], 1);
    assert_int_equal (seen.calls [WC_VFS_SYNC], 1);
    //  The hook sees failed calls too.
    wc_vfs_fail (WC_VFS_SYNC, 0, 1, EIO);
    assert_int_equal (wc_vfs_fdatasync (fd), -1);
    assert_int_equal (seen.calls [WC_VFS_SYNC], 2);
    wc_vfs_reset ();
    assert_int_equal (wc_vfs_fdatasync (fd), 0);
    assert_int_equal (seen.calls [WC_VFS_SYNC], 2);
    wc_vfs_close (fd);
}

//  Replace the fault file with text, as a cluster test would.
static void
s_write_fault_file (const char *text)
{
    char tmp [160];
    snprintf (tmp, sizeof tmp, "%s.tmp", s_fault_file);
    FILE *f = fopen (tmp, "w");
    assert_non_null (f);
    fputs (text, f);
    fclose (f);
    assert_int_equal (rename (tmp, s_fault_file), 0);
}

//  Poll until a write of fd fails with want (0: succeeds); since every
//  call looks at the file, the first write does.
static void
s_wait_write (int fd, int want)
{
    int64_t deadline = s_now_ms () + 5000;
    while (true) {
        errno = 0;
        ssize_t rc = wc_vfs_pwrite (fd, "x", 1, 0);
        if ((want == 0 && rc == 1) || (want != 0 && rc == -1 && errno == want))
            return;
        assert_true (s_now_ms () < deadline);
    }
}

static void
test_fault_file (void **state)
{
    (void) state;
    wc_vfs_reset ();
    int fd = s_open_file ("faulted");
    s_write_fault_file ("# a disk that fills\nwrite ENOSPC\n  sync EIO  \nnonsense here\nopen\n");
    s_wait_write (fd, ENOSPC);
    assert_int_equal (wc_vfs_fdatasync (fd), -1);
    assert_int_equal (errno, EIO);
    assert_int_equal (wc_vfs_ftruncate (fd, 0), 0);         //  not listed
    int copy = wc_vfs_dup (fd);      //  "open" without an errno was ignored
    assert_true (copy >= 0);
    wc_vfs_close (copy);
    //  Space comes back: another fault instead.
    s_write_fault_file ("open EMFILE\n");
    s_wait_write (fd, 0);
    assert_int_equal (wc_vfs_fdatasync (fd), 0);
    assert_int_equal (wc_vfs_open (s_path ("faulted"), O_RDONLY), -1);
    assert_int_equal (errno, EMFILE);
    //  An empty file: no faults.
    s_write_fault_file ("");
    int64_t deadline = s_now_ms () + 5000;
    int other;
    while ((other = wc_vfs_open (s_path ("faulted"), O_RDONLY)) < 0)
        assert_true (s_now_ms () < deadline);
    wc_vfs_close (other);
    //  A missing file: no faults either.
    s_write_fault_file ("write EIO\n");
    s_wait_write (fd, EIO);
    assert_int_equal (unlink (s_fault_file), 0);
    s_wait_write (fd, 0);
    //  Programmed faults and file faults add up.
    wc_vfs_fail (WC_VFS_SYNC, 0, 1, EROFS);
    assert_int_equal (wc_vfs_fdatasync (fd), -1);
    assert_int_equal (errno, EROFS);
    wc_vfs_close (fd);
    wc_vfs_reset ();
}

/*  A cluster test replaces the fault file and then makes the node write:
    the first call that starts after the file was replaced must obey it,
    however recently an earlier call looked at the file. */
static void
test_fault_file_seen_at_once (void **state)
{
    (void) state;
    wc_vfs_reset ();
    int fd = s_open_file ("at-once");
    for (int round = 0; round < 50; round++) {
        assert_int_equal (wc_vfs_pwrite (fd, "x", 1, 0), 1);     //  just looked
        s_write_fault_file ("write ENOSPC\n");
        errno = 0;
        assert_int_equal (wc_vfs_pwrite (fd, "x", 1, 0), -1);
        assert_int_equal (errno, ENOSPC);
        s_write_fault_file ("");
        assert_int_equal (wc_vfs_pwrite (fd, "x", 1, 0), 1);
    }
    wc_vfs_close (fd);
}

/*  "sync STALL": a sync waits, on its own thread, until the line goes. */
typedef struct {
    int         fd;
    atomic_int  done;
} s_stalled_t;

static void *
s_stalled_sync (void *arg)
{
    s_stalled_t *stalled = (s_stalled_t *) arg;
    wc_vfs_fdatasync (stalled->fd);
    atomic_store (&stalled->done, 1);
    return NULL;
}

static void
test_fault_file_stall (void **state)
{
    (void) state;
    wc_vfs_reset ();
    int fd = s_open_file ("stalled");
    s_write_fault_file ("sync STALL\nwrite EIO\n");
    s_wait_write (fd, EIO);             //  the file is in force
    s_stalled_t stalled = { .fd = fd };
    atomic_init (&stalled.done, 0);
    uint64_t syncs = wc_vfs_count (WC_VFS_SYNC);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_stalled_sync, &stalled), 0);
    int64_t entered = s_now_ms () + 5000;
    while (wc_vfs_count (WC_VFS_SYNC) == syncs)     //  it is in the sync now
        assert_true (s_now_ms () < entered);
    //  While it waits, other operations go on
    for (int i = 0; i < 20; i++) {
        assert_int_equal (wc_vfs_ftruncate (fd, 0), 0);
        assert_int_equal (atomic_load (&stalled.done), 0);
    }
    s_write_fault_file ("");
    int64_t deadline = s_now_ms () + 5000;
    while (!atomic_load (&stalled.done))
        assert_true (s_now_ms () < deadline);
    pthread_join (thread, NULL);
    wc_vfs_close (fd);
}

int
main (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/test_vfs.XXXXXX");
    if (!mkdtemp (s_dir))
        return 1;
    snprintf (s_fault_file, sizeof s_fault_file, "%s/faults", s_dir);
    setenv ("WALCAST_FAULT_FILE", s_fault_file, 1);
    wc_log_set_level (WC_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_pass_through),
        cmocka_unit_test (test_fail_after_times),
        cmocka_unit_test (test_short_write),
        cmocka_unit_test (test_hook),
        cmocka_unit_test (test_fault_file),
        cmocka_unit_test (test_fault_file_stall),
        cmocka_unit_test (test_fault_file_seen_at_once),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system (cmd) != 0)
        rc = 1;
    return rc;
}
