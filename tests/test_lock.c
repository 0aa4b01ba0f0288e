/*  test_lock.c - one process per data directory (storage/lock.c).

    What an operator relies on: a second process started on a directory
    that a live process holds is refused and told which process holds it;
    a lock left behind by a process killed with SIGKILL never stops a
    restart; releasing the lock lets the next one in. The holders here are
    real child processes (fork), one of them SIGKILLed.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "walcast.h"
#include "lock.h"
#include "log.h"
#include "vfs.h"

static int
setup_dir (void **state)
{
    char *dir = strdup ("/tmp/test_lock.XXXXXX");
    if (!dir || !mkdtemp (dir))
        return -1;
    *state = dir;
    return 0;
}

static int
teardown_dir (void **state)
{
    char *dir = (char *) *state;
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    int rc = system (cmd);
    free (dir);
    return rc == 0 ? 0 : -1;
}

static char *
s_read_lock_file (const char *dir)
{
    static char text [512];
    char path [256];
    assert_true (snprintf (path, sizeof path, "%s/LOCK", dir) < (int) sizeof path);
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    size_t got = fread (text, 1, sizeof text - 1, f);
    fclose (f);
    text [got] = '\0';
    return text;
}

//  A child process that holds the lock of dir as owner: it tells the
//  parent (one byte on ready) and then waits until release is closed.
typedef struct {
    pid_t pid;
    int ready;              /* parent reads the child's byte here */
    int release;            /* parent closes this to let the child go */
} holder_t;

static holder_t
s_start_holder (const char *dir, const char *owner, bool raw_flock)
{
    int ready [2], release [2];
    assert_int_equal (pipe (ready), 0);
    assert_int_equal (pipe (release), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        close (ready [0]);
        close (release [1]);
        char byte = 'k';
        if (raw_flock) {
            //  Holds the lock without writing its line (as a holder that
            //  is between its flock and its write).
            char path [256];
            assert_true (snprintf (path, sizeof path, "%s/LOCK", dir) < (int) sizeof path);
            int fd = open (path, O_RDWR | O_CREAT, 0644);
            if (fd < 0 || flock (fd, LOCK_EX) != 0 || ftruncate (fd, 0) != 0)
                byte = 'x';
        }
        else {
            int err;
            if (!wc_lock_new (dir, owner, &err, NULL, 0))
                byte = 'x';
        }
        if (write (ready [1], &byte, 1) != 1)
            _exit (2);
        char dummy;
        while (read (release [0], &dummy, 1) > 0)
            ;
        _exit (byte == 'k' ? 0 : 1);
    }
    close (ready [1]);
    close (release [0]);
    char byte = 0;
    assert_int_equal (read (ready [0], &byte, 1), 1);
    assert_int_equal (byte, 'k');
    return (holder_t) { pid, ready [0], release [1] };
}

static int
s_stop_holder (holder_t *holder, bool kill_it)
{
    if (kill_it)
        kill (holder->pid, SIGKILL);
    close (holder->release);
    close (holder->ready);
    int status;
    assert_int_equal (waitpid (holder->pid, &status, 0), holder->pid);
    return status;
}

static void
test_take_and_release (void **state)
{
    const char *dir = (const char *) *state;
    char sub [256], why [256];
    snprintf (sub, sizeof sub, "%s/a/b", dir);
    int err = 1;
    wc_lock_t *lock = wc_lock_new (sub, "walcast-node --id us1", &err, why, sizeof why);
    assert_non_null (lock);
    assert_int_equal (err, 0);
    assert_string_equal (why, "");
    char want [128];
    snprintf (want, sizeof want, "%ld walcast-node --id us1\n", (long) getpid ());
    assert_string_equal (s_read_lock_file (sub), want);
    wc_lock_destroy (&lock);
    assert_null (lock);
    wc_lock_destroy (&lock);            //  safe twice
    //  Released: it can be taken again; the line is rewritten, one line.
    lock = wc_lock_new (sub, "other\nowner", &err, why, sizeof why);
    assert_non_null (lock);
    snprintf (want, sizeof want, "%ld other owner\n", (long) getpid ());
    assert_string_equal (s_read_lock_file (sub), want);
    wc_lock_destroy (&lock);
}

static void
test_held_in_same_process (void **state)
{
    const char *dir = (const char *) *state;
    char why [256];
    int err;
    wc_lock_t *first = wc_lock_new (dir, "first", &err, why, sizeof why);
    assert_non_null (first);
    wc_lock_t *second = wc_lock_new (dir, "second", &err, why, sizeof why);
    assert_null (second);
    assert_int_equal (err, WALCAST_EBUSY);
    char want [128];
    snprintf (want, sizeof want, "held by process %ld (first)", (long) getpid ());
    assert_string_equal (why, want);
    //  The refused one did not touch the holder's line.
    snprintf (want, sizeof want, "%ld first\n", (long) getpid ());
    assert_string_equal (s_read_lock_file (dir), want);
    wc_lock_destroy (&first);
    second = wc_lock_new (dir, "second", &err, why, sizeof why);
    assert_non_null (second);
    wc_lock_destroy (&second);
}

static void
test_held_by_other_process (void **state)
{
    const char *dir = (const char *) *state;
    holder_t holder = s_start_holder (dir, "walcast-node --id us1", false);
    char why [256], want [128];
    int err = 0;
    assert_null (wc_lock_new (dir, "walcast-node --id y", &err, why, sizeof why));
    assert_int_equal (err, WALCAST_EBUSY);
    snprintf (want, sizeof want, "held by process %ld (walcast-node --id us1)",
              (long) holder.pid);
    assert_string_equal (why, want);
    //  why may be left out.
    assert_null (wc_lock_new (dir, "y", &err, NULL, 0));
    assert_int_equal (err, WALCAST_EBUSY);
    //  The holder lets go: the directory is free.
    int status = s_stop_holder (&holder, false);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    wc_lock_t *lock = wc_lock_new (dir, "walcast-node --id y", &err, why, sizeof why);
    assert_non_null (lock);
    wc_lock_destroy (&lock);
}

static void
test_stale_after_sigkill (void **state)
{
    const char *dir = (const char *) *state;
    holder_t holder = s_start_holder (dir, "walcast-node --id us1", false);
    pid_t dead = holder.pid;
    int status = s_stop_holder (&holder, true);
    assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
    //  The file still names the dead process, and does not matter.
    char want [128];
    snprintf (want, sizeof want, "%ld walcast-node --id us1\n", (long) dead);
    assert_string_equal (s_read_lock_file (dir), want);
    char why [256];
    int err;
    wc_lock_t *lock = wc_lock_new (dir, "walcast-node --id us1", &err, why, sizeof why);
    assert_non_null (lock);
    snprintf (want, sizeof want, "%ld walcast-node --id us1\n", (long) getpid ());
    assert_string_equal (s_read_lock_file (dir), want);
    wc_lock_destroy (&lock);
}

static void
test_holder_without_line (void **state)
{
    const char *dir = (const char *) *state;
    holder_t holder = s_start_holder (dir, NULL, true);
    char why [256];
    int err;
    assert_null (wc_lock_new (dir, "y", &err, why, sizeof why));
    assert_int_equal (err, WALCAST_EBUSY);
    assert_string_equal (why, "held by another process (it has not written its id)");
    s_stop_holder (&holder, true);
}

static void
test_cannot_create (void **state)
{
    const char *dir = (const char *) *state;
    char path [256], why [256];
    int err;
    //  The directory is a file.
    snprintf (path, sizeof path, "%s/file", dir);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fclose (f);
    assert_null (wc_lock_new (path, "x", &err, why, sizeof why));
    assert_int_equal (err, WALCAST_EIO);
    assert_non_null (strstr (why, "cannot create"));
    //  The open fails (no descriptor left).
    wc_vfs_fail (WC_VFS_OPEN, 0, 1, EMFILE);
    assert_null (wc_lock_new (dir, "x", &err, why, sizeof why));
    wc_vfs_reset ();
    assert_int_equal (err, WALCAST_EIO);
    assert_non_null (strstr (why, "Too many open files"));
    //  Bad arguments.
    assert_null (wc_lock_new ("", "x", &err, why, sizeof why));
    assert_int_equal (err, WALCAST_EINVAL);
    assert_null (wc_lock_new (NULL, "x", &err, why, sizeof why));
    assert_int_equal (err, WALCAST_EINVAL);
    //  A full disk while writing the line does not lose the lock.
    wc_vfs_fail (WC_VFS_WRITE, 0, 1, ENOSPC);
    wc_lock_t *lock = wc_lock_new (dir, "x", &err, why, sizeof why);
    wc_vfs_reset ();
    assert_non_null (lock);
    assert_null (wc_lock_new (dir, "y", &err, why, sizeof why));
    assert_int_equal (err, WALCAST_EBUSY);
    wc_lock_destroy (&lock);
}

/*  A data directory that cannot be made (its parent is not writable): the
    error names that directory and the cause, not the LOCK file inside it
    (before: "cannot create DIR/LOCK: Permission denied", which sends an
    operator after a file that was never there). The parent's permissions
    stop only a user that is not root; the fault layer stops anyone. */
static void
test_unwritable_parent (void **state)
{
    const char *dir = (const char *) *state;
    char parent [256], data [300], why [512];
    int err = 0;
    snprintf (parent, sizeof parent, "%s/parent", dir);
    snprintf (data, sizeof data, "%s/data", parent);
    assert_int_equal (mkdir (parent, 0555), 0);
    if (geteuid () != 0) {
        assert_null (wc_lock_new (data, "x", &err, why, sizeof why));
        assert_int_equal (err, WALCAST_EIO);
        assert_non_null (strstr (why, data));
        assert_non_null (strstr (why, "Permission denied"));
        assert_null (strstr (why, "LOCK"));
        //  Two levels missing: the one that cannot be made is named
        snprintf (data, sizeof data, "%s/a/b", parent);
        assert_null (wc_lock_new (data, "x", &err, why, sizeof why));
        char first [300];
        snprintf (first, sizeof first, "the directory %s/a: Permission denied", parent);
        assert_non_null (strstr (why, first));
        snprintf (data, sizeof data, "%s/data", parent);
    }
    assert_int_equal (chmod (parent, 0755), 0);
    wc_vfs_fail (WC_VFS_MKDIR, 0, -1, EACCES);
    assert_null (wc_lock_new (data, "x", &err, why, sizeof why));
    wc_vfs_reset ();
    assert_int_equal (err, WALCAST_EIO);
    print_message ("%s\n", why);
    char want [600];
    snprintf (want, sizeof want, "cannot create the directory %s: Permission denied", data);
    assert_non_null (strstr (why, want));
    assert_null (strstr (why, "LOCK"));
    //  A read-only file system the same way
    wc_vfs_fail (WC_VFS_MKDIR, 0, -1, EROFS);
    assert_null (wc_lock_new (data, "x", &err, why, sizeof why));
    wc_vfs_reset ();
    assert_non_null (strstr (why, "Read-only file system"));
    assert_non_null (strstr (why, data));
    //  The directory exists but cannot be written in: the directory is named
    snprintf (data, sizeof data, "%s/ro", parent);
    assert_int_equal (mkdir (data, 0755), 0);
    wc_vfs_fail (WC_VFS_OPEN, 0, 1, EACCES);
    assert_null (wc_lock_new (data, "x", &err, why, sizeof why));
    wc_vfs_reset ();
    print_message ("%s\n", why);
    snprintf (want, sizeof want, "cannot write in the directory %s", data);
    assert_non_null (strstr (why, want));
    assert_non_null (strstr (why, "Permission denied"));
    //  The LOCK file exists but cannot be opened for writing (a node run
    //  once as root, then as its own user): the file is named, not the
    //  directory, which is writable
    char path [400];
    snprintf (path, sizeof path, "%s/LOCK", data);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fclose (file);
    wc_vfs_fail (WC_VFS_OPEN, 0, 1, EACCES);
    assert_null (wc_lock_new (data, "x", &err, why, sizeof why));
    wc_vfs_reset ();
    print_message ("%s\n", why);
    snprintf (want, sizeof want, "cannot open %s for writing", path);
    assert_non_null (strstr (why, want));
    assert_non_null (strstr (why, "owner uid "));
    assert_null (strstr (why, "cannot write in the directory"));
    //  Once it can be made, the lock is taken
    snprintf (data, sizeof data, "%s/data", parent);
    wc_lock_t *lock = wc_lock_new (data, "x", &err, why, sizeof why);
    assert_non_null (lock);
    wc_lock_destroy (&lock);
}

int
main (void)
{
    wc_log_set_level (WC_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_take_and_release, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_held_in_same_process, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_held_by_other_process, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_stale_after_sigkill, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_holder_without_line, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_cannot_create, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown (test_unwritable_parent, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
