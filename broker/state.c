/*  state.c - the broker's cluster state on disk (see state.h).

    The file, DIR/broker.state, is a few lines of text an operator can
    read (and `cat` in an incident), in this order:

        # walcast-broker cluster state; written by the broker, do not edit
        format=1
        epoch=7
        primary=us2
        primary_addr=10.0.0.2:7100
        crc32c=1c2d3e4f

    crc32c is the CRC32C (Castagnoli) of every octet before the line that
    holds it, in 8 lowercase hex digits. Decoding is strict: every line in
    its place, numbers in decimal without sign or leading zero, the id
    and address by the admission rules of docs/PROTOCOL.md. Anything else
    is a damaged file.

    A save writes DIR/broker.state.tmp (O_TRUNC: a temporary left by a
    crash is overwritten), fsyncs it, renames it over broker.state and
    fsyncs DIR, so the rename itself is durable before the broker acts on
    the new state.
*/
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "addr.h"
#include "state.h"
#include "walcast.h"

#define S_FORMAT       1
#define S_MAX_FILE     4096            /* a state file is far smaller */
#define S_HEADER       "# walcast-broker cluster state; written by the broker, do not edit\n"

struct wc_state_file {
    char dir [4096];
    char path [4200];                  /* DIR/broker.state */
    char temp [4200];                  /* DIR/broker.state.tmp */
    int  lock_fd;                      /* DIR/LOCK, flocked */
};

static void
s_say (char *why, size_t size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_say (char *why, size_t size, const char *format, ...)
{
    if (!why || size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (why, size, format, args);
    va_end (args);
}

/*  CRC32C, bit by bit: the file is a few hundred octets. */
static uint32_t
s_crc32c (const void *buf, size_t len)
{
    const uint8_t *p = (const uint8_t *) buf;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p [i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

/* --- the text ------------------------------------------------------------ */

int
wc_state_encode (const wc_state_t *state, char *buf, size_t size)
{
    int len = snprintf (buf, size, S_HEADER "format=%d\nepoch=%" PRIu64 "\nprimary=%s\n"
                        "primary_addr=%s\n", S_FORMAT, state->epoch, state->primary,
                        state->primary_addr);
    if (len < 0 || (size_t) len >= size)
        return -1;
    int tail = snprintf (buf + len, size - (size_t) len, "crc32c=%08" PRIx32 "\n",
                         s_crc32c (buf, (size_t) len));
    if (tail < 0 || (size_t) (len + tail) >= size)
        return -1;
    return len + tail;
}

/*  The next line of text [*at, end) must be "key=" value "\n": the value
    goes to value (NUL-terminated, at most size - 1 octets). */
static bool
s_line (const char *text, size_t end, size_t *at, const char *key, char *value,
        size_t size)
{
    size_t keylen = strlen (key);
    if (end - *at < keylen + 2 || memcmp (text + *at, key, keylen) != 0
    ||  text [*at + keylen] != '=')
        return false;
    size_t start = *at + keylen + 1, stop = start;
    while (stop < end && text [stop] != '\n')
        stop++;
    if (stop == end || stop - start >= size)
        return false;
    memcpy (value, text + start, stop - start);
    value [stop - start] = '\0';
    *at = stop + 1;
    return true;
}

/*  A decimal number without sign or leading zero, up to UINT64_MAX. */
static bool
s_number (const char *text, uint64_t *value)
{
    size_t len = strlen (text);
    if (len == 0 || len > 20 || (len > 1 && text [0] == '0'))
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text [i] < '0' || text [i] > '9')
            return false;
        uint64_t digit = (uint64_t) (text [i] - '0');
        if (n > (UINT64_MAX - digit) / 10)
            return false;
        n = n * 10 + digit;
    }
    *value = n;
    return true;
}

/*  The primary's id and address by the admission rules: both empty, or
    a printable id and a node's HOST:PORT. */
static bool
s_primary_ok (const wc_state_t *state)
{
    size_t id_len = strlen (state->primary), addr_len = strlen (state->primary_addr);
    if (id_len == 0 || addr_len == 0)
        return id_len == 0 && addr_len == 0;
    for (size_t i = 0; i < id_len; i++)
        if (state->primary [i] < 0x21 || state->primary [i] > 0x7e)
            return false;
    return wc_addr_check (state->primary_addr, addr_len, 65533, NULL);
}

int
wc_state_decode (const char *text, size_t len, wc_state_t *state, char *why,
                 size_t why_size)
{
    memset (state, 0, sizeof *state);
    size_t at = strlen (S_HEADER);
    char format [16], epoch [32], crc [16];
    if (len < at || memcmp (text, S_HEADER, at) != 0
    ||  !s_line (text, len, &at, "format", format, sizeof format)) {
        s_say (why, why_size, "not a walcast-broker state file (no header)");
        return WALCAST_EPROTO;
    }
    uint64_t number = 0;
    if (!s_number (format, &number) || number != S_FORMAT) {
        s_say (why, why_size, "format %s: this broker reads format %d only (written "
               "by a newer broker?)", format, S_FORMAT);
        return WALCAST_EVERSION;
    }
    bool lines = s_line (text, len, &at, "epoch", epoch, sizeof epoch)
              && s_line (text, len, &at, "primary", state->primary,
                         sizeof state->primary)
              && s_line (text, len, &at, "primary_addr", state->primary_addr,
                         sizeof state->primary_addr);
    size_t covered = at;
    if (!lines || !s_line (text, len, &at, "crc32c", crc, sizeof crc) || at != len) {
        s_say (why, why_size, "damaged: a line is missing, too long or out of place");
        return WALCAST_EPROTO;
    }
    char expected [16];
    snprintf (expected, sizeof expected, "%08" PRIx32, s_crc32c (text, covered));
    if (strcmp (crc, expected) != 0) {
        s_say (why, why_size, "damaged: crc32c %s, the content gives %s", crc, expected);
        return WALCAST_EPROTO;
    }
    if (!s_number (epoch, &state->epoch) || !s_primary_ok (state)
    ||  (state->epoch == 0 && state->primary [0])) {
        s_say (why, why_size, "damaged: epoch \"%s\", primary \"%s\" at \"%s\" break "
               "the rules", epoch, state->primary, state->primary_addr);
        return WALCAST_EPROTO;
    }
    return 0;
}

/* --- the directory --------------------------------------------------------- */

/*  mkdir -p dir. */
static int
s_mkdirs (const char *dir, char *why, size_t why_size)
{
    char path [4096];
    snprintf (path, sizeof path, "%s", dir);
    for (char *p = path + 1; ; p++) {
        bool last = *p == '\0';
        if (*p != '/' && !last)
            continue;
        *p = '\0';
        if (mkdir (path, 0755) != 0 && errno != EEXIST) {
            s_say (why, why_size, "cannot create the data directory %s: %s", path,
                   strerror (errno));
            return WALCAST_EIO;
        }
        if (last)
            return 0;
        *p = '/';
    }
}

/*  Take DIR/LOCK with flock, and write our pid in it for the next comer. */
static int
s_lock (wc_state_file_t *self, char *why, size_t why_size)
{
    char path [4200];
    snprintf (path, sizeof path, "%s/LOCK", self->dir);
    self->lock_fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->lock_fd < 0) {
        s_say (why, why_size, "cannot open %s: %s", path, strerror (errno));
        return WALCAST_EIO;
    }
    if (flock (self->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        char holder [128] = "";
        ssize_t got = pread (self->lock_fd, holder, sizeof holder - 1, 0);
        holder [got > 0 ? got : 0] = '\0';
        holder [strcspn (holder, "\n")] = '\0';
        s_say (why, why_size, "%s is held by process %s: one broker per data "
               "directory", path, holder [0] ? holder : "(unknown)");
        return busy ? WALCAST_EBUSY : WALCAST_EIO;
    }
    char pid [64];
    int len = snprintf (pid, sizeof pid, "%ld walcast-broker\n", (long) getpid ());
    if (ftruncate (self->lock_fd, 0) != 0 || pwrite (self->lock_fd, pid, (size_t) len, 0)
                                             != len) {
        s_say (why, why_size, "cannot write %s: %s", path, strerror (errno));
        return WALCAST_EIO;
    }
    return 0;
}

/*  Read the state file; a missing one is a new cluster (all zero). */
static int
s_load (wc_state_file_t *self, wc_state_t *state, char *why, size_t why_size)
{
    memset (state, 0, sizeof *state);
    int fd = open (self->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        s_say (why, why_size, "cannot open %s: %s", self->path, strerror (errno));
        return WALCAST_EIO;
    }
    char text [S_MAX_FILE + 1];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof text && (got = read (fd, text + len, sizeof text - len)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            s_say (why, why_size, "cannot read %s: %s", self->path, strerror (errno));
            close (fd);
            return WALCAST_EIO;
        }
        len += (size_t) got;
    }
    close (fd);
    char reason [256];
    int rc = len > S_MAX_FILE ? WALCAST_EPROTO
           : wc_state_decode (text, len, state, reason, sizeof reason);
    if (len > S_MAX_FILE)
        snprintf (reason, sizeof reason, "damaged: over %d octets", S_MAX_FILE);
    if (rc)
        s_say (why, why_size, "%s: %s; the cluster's epoch is unknown, so the broker "
               "will not guess it: restore the file, or move it away to start from "
               "the largest epoch the nodes report", self->path, reason);
    return rc;
}

wc_state_file_t *
wc_state_file_open (const char *dir, wc_state_t *state, int *err, char *why,
                    size_t why_size)
{
    wc_state_file_t *self = (wc_state_file_t *) calloc (1, sizeof *self);
    *err = WALCAST_ENOMEM;
    s_say (why, why_size, "out of memory");
    if (!self)
        return NULL;
    self->lock_fd = -1;
    if (strlen (dir) == 0 || strlen (dir) >= sizeof self->dir) {
        *err = WALCAST_EINVAL;
        s_say (why, why_size, "data directory \"%s\": empty or too long", dir);
        wc_state_file_destroy (&self);
        return NULL;
    }
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    snprintf (self->path, sizeof self->path, "%s/" WC_STATE_FILE, dir);
    snprintf (self->temp, sizeof self->temp, "%s/" WC_STATE_FILE ".tmp", dir);
    if ((*err = s_mkdirs (dir, why, why_size)) == 0
    &&  (*err = s_lock (self, why, why_size)) == 0
    &&  (*err = s_load (self, state, why, why_size)) == 0)
        return self;
    wc_state_file_destroy (&self);
    return NULL;
}

/*  fsync a directory, so a rename in it is durable. */
static int
s_sync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    close (fd);
    return rc;
}

/*  Write all of buf to fd. */
static int
s_write_all (int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t done = write (fd, buf, len);
        if (done < 0 && errno == EINTR)
            continue;
        if (done == 0)
            errno = EIO;
        if (done <= 0)
            return -1;
        buf += done;
        len -= (size_t) done;
    }
    return 0;
}

/*  Write text to the temporary file and sync it. Returns 0, or the errno
    of the step that failed, named in *step. */
static int
s_write_temp (wc_state_file_t *self, const char *text, size_t len, const char **step)
{
    *step = "open";
    int fd = open (self->temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    int rc = 0;
    *step = "write";
    if (s_write_all (fd, text, len) != 0)
        rc = errno;
    else {
        *step = "fsync";
        if (fsync (fd) != 0)
            rc = errno;
    }
    if (close (fd) != 0 && rc == 0) {
        *step = "close";
        rc = errno;
    }
    return rc;
}

int
wc_state_file_save (wc_state_file_t *self, const wc_state_t *state, char *why,
                    size_t why_size)
{
    char text [S_MAX_FILE];
    int len = wc_state_encode (state, text, sizeof text);
    if (len < 0) {
        s_say (why, why_size, "the state does not fit in %d octets", S_MAX_FILE);
        return WALCAST_EIO;
    }
    const char *step = "write";
    const char *path = self->temp;
    int err = s_write_temp (self, text, (size_t) len, &step);
    if (err == 0 && rename (self->temp, self->path) != 0) {
        err = errno;
        step = "rename";
    }
    if (err == 0 && s_sync_dir (self->dir) != 0) {
        err = errno;
        step = "fsync";
        path = self->dir;
    }
    if (err == 0)
        return 0;
    s_say (why, why_size, "cannot %s %s: %s", step, path, strerror (err));
    return err == ENOSPC ? WALCAST_ENOSPC : WALCAST_EIO;
}

const char *
wc_state_file_path (wc_state_file_t *self)
{
    return self->path;
}

void
wc_state_file_destroy (wc_state_file_t **self_p)
{
    wc_state_file_t *self = *self_p;
    if (!self)
        return;
    if (self->lock_fd >= 0)
        close (self->lock_fd);
    free (self);
    *self_p = NULL;
}
