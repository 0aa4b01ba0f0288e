/*  download.c - a replica pulls its upstream's newest snapshot (see
    download.h). The first SNAPSHOT_GET asks for the newest (seq 0); its
    chunk names the seq and size, and every later one must match them, so
    the file is one snapshot from start to end. A snapshot the upstream
    replaced meanwhile (ERANGE) means starting again, which replica.c does
    by making a new download.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/statvfs.h>
#include "download.h"
#include "wc_limits.h"

struct wc_download {
    char     path [4096];
    int      fd;
    uint64_t seq;           /* the snapshot's; 0 until the first chunk */
    uint64_t size;
    uint64_t offset;        /* bytes written */
    bool     taken;
};

wc_download_t *
wc_download_new (const char *path)
{
    wc_download_t *self = (wc_download_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->path, sizeof self->path, "%s", path);
    self->fd = -1;
    return self;
}

void
wc_download_destroy (wc_download_t **self_p)
{
    wc_download_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0)
        close (self->fd);
    if (!self->taken)
        unlink (self->path);
    free (self);
    *self_p = NULL;
}

void
wc_download_ask (wc_download_t *self, wc_msg_t *msg)
{
    msg->type = WC_MSG_SNAPSHOT_GET;
    msg->u.snapshot_get.seq = self->seq;
    msg->u.snapshot_get.offset = self->offset;
    msg->u.snapshot_get.max_bytes = WC_MAX_SNAPSHOT_CHUNK;
}

/*  Does the chunk belong where we are? 0, or WALCAST_EPROTO with why. */
static int
s_check (wc_download_t *self, const wc_msg_t *msg, char *why, size_t why_size)
{
    uint64_t seq = msg->u.snapshot_chunk.seq, size = msg->u.snapshot_chunk.size;
    uint64_t offset = msg->u.snapshot_chunk.offset, len = msg->u.snapshot_chunk.data.len;
    if (seq == 0 || size == 0)
        snprintf (why, why_size, "a chunk of snapshot %llu of %llu bytes",
                  (unsigned long long) seq, (unsigned long long) size);
    else
    if (self->seq && (seq != self->seq || size != self->size))
        snprintf (why, why_size, "a chunk of snapshot %llu (%llu bytes) while "
                  "downloading %llu (%llu bytes)", (unsigned long long) seq,
                  (unsigned long long) size, (unsigned long long) self->seq,
                  (unsigned long long) self->size);
    else
    if (offset != self->offset || len > size - offset || (len == 0 && offset < size))
        snprintf (why, why_size, "a chunk of %llu bytes at offset %llu, expected "
                  "offset %llu of %llu", (unsigned long long) len,
                  (unsigned long long) offset, (unsigned long long) self->offset,
                  (unsigned long long) size);
    else
        return 0;
    return WALCAST_EPROTO;
}

/*  Does the file system hold a snapshot of size bytes? The size comes
    from the upstream: a wrong one must not fill the disk first. */
static bool
s_room_for (wc_download_t *self, uint64_t size, char *why, size_t why_size)
{
    char dir [sizeof self->path];
    snprintf (dir, sizeof dir, "%s", self->path);
    char *slash = strrchr (dir, '/');
    if (slash)
        *slash = '\0';
    struct statvfs fs;
    if (statvfs (slash ? dir : ".", &fs) != 0)
        return true;                    /* cannot tell: the writes will */
    uint64_t avail = (uint64_t) fs.f_bavail * (uint64_t) fs.f_frsize;
    if (size <= avail)
        return true;
    snprintf (why, why_size, "the snapshot has %llu bytes, the disk of %s has %llu free",
              (unsigned long long) size, slash ? dir : ".", (unsigned long long) avail);
    return false;
}

/*  Write all of data; 0 or the error (why set). */
static int
s_write (wc_download_t *self, const uint8_t *data, size_t len, char *why, size_t why_size)
{
    while (len > 0) {
        ssize_t n = write (self->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            snprintf (why, why_size, "cannot write %s: %s", self->path, strerror (err));
            return err == ENOSPC ? WALCAST_ENOSPC : WALCAST_EIO;
        }
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

int
wc_download_on_chunk (wc_download_t *self, const wc_msg_t *msg, char *why,
                      size_t why_size)
{
    int rc = s_check (self, msg, why, why_size);
    if (rc)
        return rc;
    if (self->fd < 0 && !s_room_for (self, msg->u.snapshot_chunk.size, why, why_size))
        return WALCAST_ENOSPC;
    if (self->fd < 0) {
        self->fd = open (self->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (self->fd < 0) {
            int err = errno;
            snprintf (why, why_size, "cannot create %s: %s", self->path, strerror (err));
            return err == ENOSPC ? WALCAST_ENOSPC : WALCAST_EIO;
        }
        self->seq = msg->u.snapshot_chunk.seq;
        self->size = msg->u.snapshot_chunk.size;
    }
    rc = s_write (self, msg->u.snapshot_chunk.data.ptr, msg->u.snapshot_chunk.data.len,
                  why, why_size);
    if (rc)
        return rc;
    self->offset += msg->u.snapshot_chunk.data.len;
    if (self->offset < self->size)
        return 0;
    if (fsync (self->fd) != 0) {
        snprintf (why, why_size, "cannot sync %s: %s", self->path, strerror (errno));
        return WALCAST_EIO;
    }
    close (self->fd);
    self->fd = -1;
    return 1;
}

uint64_t
wc_download_seq (const wc_download_t *self)
{
    return self->seq;
}

uint64_t
wc_download_size (const wc_download_t *self)
{
    return self->size;
}

uint64_t
wc_download_received (const wc_download_t *self)
{
    return self->offset;
}

const char *
wc_download_path (const wc_download_t *self)
{
    return self->path;
}

void
wc_download_take (wc_download_t *self)
{
    self->taken = true;
}
