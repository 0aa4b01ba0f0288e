/*  files.c - small files of the data directory, replaced whole (see
    files.h).

    Replacing is the classic sequence: write NAME.tmp (created fresh),
    fdatasync it, rename it over NAME, fsync the directory. Until the
    rename a reader sees the old file; after it, the new one, whole,
    because its bytes were synced before its name moved. Every step goes
    through the vfs layer, so a test can fail each one and check that
    what a restart reads is one whole version or the other.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walcast.h"
#include "files.h"
#include "log.h"
#include "vfs.h"

#define S_TEMP_SUFFIX ".tmp"

int
wc_files_code (int err)
{
    return err == ENOSPC || err == EDQUOT || err == EFBIG ? WALCAST_ENOSPC : WALCAST_EIO;
}

int
wc_files_pwrite_all (int fd, const void *buf, size_t len, uint64_t offset)
{
    const uint8_t *bytes = (const uint8_t *) buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = wc_vfs_pwrite (fd, bytes + done, len - done, (off_t) (offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        done += (size_t) n;
    }
    return 0;
}

ssize_t
wc_files_pread_all (int fd, void *buf, size_t len, uint64_t offset)
{
    uint8_t *bytes = (uint8_t *) buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = wc_vfs_pread (fd, bytes + got, len - got, (off_t) (offset + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t) n;
    }
    return (ssize_t) got;
}

//  Write data to dirfd/temp (created or emptied) and sync it. Returns 0,
//  or -1 with errno set (the temp file may be left: harmless).
static int
s_write_temp (int dirfd, const char *temp, const void *data, size_t len)
{
    int fd = wc_vfs_openat (dirfd, temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = wc_files_pwrite_all (fd, data, len, 0);
    if (rc == 0)
        rc = wc_vfs_fdatasync (fd);
    int saved = errno;
    wc_vfs_close (fd);
    errno = saved;
    return rc;
}

int
wc_files_replace (int dirfd, const char *name, const void *data, size_t len,
                  char *why, size_t why_size)
{
    char temp [256];
    if ((size_t) snprintf (temp, sizeof temp, "%s%s", name, S_TEMP_SUFFIX) >= sizeof temp) {
        snprintf (why, why_size, "file name too long: %s", name);
        return WALCAST_EINVAL;
    }
    if (s_write_temp (dirfd, temp, data, len) != 0) {
        int err = errno;
        snprintf (why, why_size, "cannot write %s: %s", temp, strerror (err));
        wc_vfs_unlinkat (dirfd, temp, 0);
        return wc_files_code (err);
    }
    if (wc_vfs_renameat (dirfd, temp, dirfd, name) != 0) {
        int err = errno;
        snprintf (why, why_size, "cannot rename %s to %s: %s", temp, name, strerror (err));
        wc_vfs_unlinkat (dirfd, temp, 0);
        return wc_files_code (err);
    }
    if (wc_vfs_fsync (dirfd) != 0) {
        snprintf (why, why_size, "cannot sync the directory after writing %s: %s",
                  name, strerror (errno));
        return WALCAST_EIO;
    }
    return 0;
}

int
wc_files_read (int dirfd, const char *name, size_t max, char **data, size_t *len,
               char *why, size_t why_size)
{
    *data = NULL;
    *len = 0;
    int fd = wc_vfs_openat (dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return WALCAST_ENOTFOUND;
    struct stat st;
    if (fd < 0 || fstat (fd, &st) != 0) {
        snprintf (why, why_size, "cannot open %s: %s", name, strerror (errno));
        if (fd >= 0)
            wc_vfs_close (fd);
        return WALCAST_EIO;
    }
    int rc = 0;
    size_t size = (size_t) st.st_size;
    char *buf = NULL;
    if ((uint64_t) st.st_size > max) {
        snprintf (why, why_size, "%s is %lld bytes, more than the %zu it may have", name,
                  (long long) st.st_size, max);
        rc = WALCAST_ETOOBIG;
    }
    else
    if (!(buf = (char *) malloc (size + 1)))
        rc = WALCAST_ENOMEM;
    else {
        ssize_t got = wc_files_pread_all (fd, buf, size, 0);
        if (got < 0) {
            snprintf (why, why_size, "cannot read %s: %s", name, strerror (errno));
            rc = WALCAST_EIO;
        }
        else
            size = (size_t) got;
    }
    wc_vfs_close (fd);
    if (rc != 0) {
        free (buf);
        return rc;
    }
    buf [size] = '\0';
    *data = buf;
    *len = size;
    return 0;
}

int
wc_files_remove (int dirfd, const char *name, bool sync_dir, char *why, size_t why_size)
{
    if (wc_vfs_unlinkat (dirfd, name, 0) != 0 && errno != ENOENT) {
        snprintf (why, why_size, "cannot remove %s: %s", name, strerror (errno));
        return WALCAST_EIO;
    }
    if (sync_dir && wc_vfs_fsync (dirfd) != 0) {
        snprintf (why, why_size, "cannot sync the directory after removing %s: %s", name,
                  strerror (errno));
        return WALCAST_EIO;
    }
    return 0;
}

int
wc_files_each (int dirfd, wc_files_name_fn *fn, void *arg)
{
    int fd = wc_vfs_dup (dirfd);
    DIR *dir = fd >= 0 ? fdopendir (fd) : NULL;
    if (!dir) {
        int err = errno;
        if (fd >= 0)
            wc_vfs_close (fd);
        return err == ENOMEM ? WALCAST_ENOMEM : WALCAST_EIO;
    }
    rewinddir (dir);
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir (dir)))
        if (strcmp (entry->d_name, ".") != 0 && strcmp (entry->d_name, "..") != 0)
            rc = fn (arg, entry->d_name);
    closedir (dir);
    return rc;
}

/*  What wc_files_remove_temps works with. */
typedef struct {
    int dirfd;
    const char *dir;
} s_temps_t;

static int
s_remove_temp (void *arg, const char *name)
{
    s_temps_t *temps = (s_temps_t *) arg;
    size_t len = strlen (name), suffix = strlen (S_TEMP_SUFFIX);
    if (len <= suffix || strcmp (name + len - suffix, S_TEMP_SUFFIX) != 0)
        return 0;
    if (wc_vfs_unlinkat (temps->dirfd, name, 0) != 0 && errno != ENOENT) {
        wc_log_error ("storage %s: cannot remove the leftover %s: %s", temps->dir, name,
                      strerror (errno));
        return WALCAST_EIO;
    }
    wc_log_info ("storage %s: removed %s, left by an interrupted write", temps->dir, name);
    return 0;
}

int
wc_files_remove_temps (int dirfd, const char *dir)
{
    s_temps_t temps = { dirfd, dir };
    int rc = wc_files_each (dirfd, s_remove_temp, &temps);
    if (rc != 0)
        wc_log_error ("storage %s: cannot clear the leftovers of interrupted writes: %s",
                      dir, walcast_strerror (rc));
    return rc;
}
