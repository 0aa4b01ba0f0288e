/*  files.h - small files of the data directory, replaced whole.

    The epoch history, the diverged marker and the install marker are
    small files that must never be seen half written: a crash leaves
    either the old content or the new one. wc_files_replace writes the new
    content to NAME.tmp, syncs it, renames it over NAME and syncs the
    directory, so the rename is the one step that switches, and it is
    durable when the call returns. A leftover NAME.tmp (a crash before
    the rename) is never read; wc_files_remove_temps clears them at open.

    Everything goes through vfs.h, so tests can fail any step. The
    directory is passed as a descriptor (one the caller keeps open).
*/
#ifndef WC_FILES_H_INCLUDED
#define WC_FILES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*  Replace dirfd/name with len bytes of data, durably (see above).
    Returns 0, WALCAST_ENOSPC or WALCAST_EIO with the cause in why; the
    old content is then still there (or the new one, when only the last
    directory sync failed: the caller cannot know, so it must treat that
    as a failed sync). */
int wc_files_replace (int dirfd, const char *name, const void *data, size_t len,
                      char *why, size_t why_size);

/*  Read the whole of dirfd/name, at most max bytes, into a new buffer
    (*data, to free; NUL-terminated past *len for text). Returns 0,
    WALCAST_ENOTFOUND when there is no such file, WALCAST_ETOOBIG when it
    is over max, WALCAST_ENOMEM, WALCAST_EIO (why set). */
int wc_files_read (int dirfd, const char *name, size_t max, char **data, size_t *len,
                   char *why, size_t why_size);

/*  Remove dirfd/name (gone already is fine) and sync the directory when
    sync_dir. Returns 0 or WALCAST_EIO (why set). */
int wc_files_remove (int dirfd, const char *name, bool sync_dir, char *why,
                     size_t why_size);

/*  Write all of len bytes at offset. Returns 0, or -1 with errno set. */
int wc_files_pwrite_all (int fd, const void *buf, size_t len, uint64_t offset);

/*  Read up to len bytes at offset (fewer only at the end of the file).
    Returns the count, or -1 with errno set. */
ssize_t wc_files_pread_all (int fd, void *buf, size_t len, uint64_t offset);

/*  Call fn for each name in the directory (not "." and ".."); a non-zero
    return from fn stops the walk and is returned. Returns 0, or
    WALCAST_EIO / WALCAST_ENOMEM when the directory cannot be read. */
typedef int (wc_files_name_fn) (void *arg, const char *name);
int wc_files_each (int dirfd, wc_files_name_fn *fn, void *arg);

/*  Remove every NAME.tmp the directory holds (a crash's leftovers of
    wc_files_replace and of snapshots being written). Returns 0 or
    WALCAST_EIO (logged). */
int wc_files_remove_temps (int dirfd, const char *dir);

/*  The WALCAST_E* code for a failed file operation's errno: ENOSPC for
    ENOSPC, EDQUOT and EFBIG, EIO for anything else. */
int wc_files_code (int err);

#endif
