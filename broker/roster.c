/*  roster.c - the broker's directory of nodes on disk (see roster.h).

    The file, DIR/broker.nodes:

        "WCNODES" format     8 octets, format "1"
        crc32c               4 octets, big-endian: CRC32C of the rest
        topology             a TOPOLOGY message (docs/PROTOCOL.md), rid 0,
                             every node the directory lists

    A save encodes the directory, writes DIR/broker.nodes.tmp (O_TRUNC: a
    temporary left by a crash is overwritten) and renames it over the
    file. A load checks the magic and the CRC, decodes the message with
    the protocol's decoder and hands each node_info to
    wc_directory_restore, which applies the admission rules of a
    REGISTER.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "codec.h"
#include "crc32c.h"
#include "roster.h"
#include "walcast.h"

#define S_MAGIC        "WCNODES"
#define S_MAGIC_LEN    7
#define S_FORMAT       '1'
#define S_HEAD         12                  /* magic, format, crc32c */
#define S_MAX_FILE     (S_HEAD + WC_DIRECTORY_MAX_TOPOLOGY)

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

/*  Write all of buf to fd. 0, or -1 with errno set. */
static int
s_write_all (int fd, const void *buf, size_t len)
{
    const char *at = (const char *) buf;
    while (len > 0) {
        ssize_t done = write (fd, at, len);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            return -1;
        at += done;
        len -= (size_t) done;
    }
    return 0;
}

int
wc_roster_save (const char *data_dir, wc_directory_t *dir, int64_t now_ms,
                char *why, size_t why_size)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    uint8_t head [S_HEAD] = { 0 };
    int rc = msgpack_sbuffer_write (&out, (const char *) head, sizeof head) == 0
           ? wc_directory_encode_topology (dir, 0, now_ms, &out) : WALCAST_ENOMEM;
    if (rc) {
        msgpack_sbuffer_destroy (&out);
        s_say (why, why_size, "out of memory");
        return WALCAST_ENOMEM;
    }
    uint32_t crc = wc_crc32c (0, out.data + S_HEAD, out.size - S_HEAD);
    memcpy (out.data, S_MAGIC, S_MAGIC_LEN);
    out.data [S_MAGIC_LEN] = S_FORMAT;
    for (int i = 0; i < 4; i++)
        out.data [8 + i] = (char) (crc >> (24 - 8 * i));

    char path [4200], temp [4210];
    snprintf (path, sizeof path, "%s/%s", data_dir, WC_ROSTER_FILE);
    snprintf (temp, sizeof temp, "%s.tmp", path);
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = 0;
    if (fd < 0 || s_write_all (fd, out.data, out.size) != 0)
        err = errno;
    if (fd >= 0 && close (fd) != 0 && !err)
        err = errno;
    if (!err && rename (temp, path) != 0)
        err = errno;
    msgpack_sbuffer_destroy (&out);
    if (!err)
        return 0;
    s_say (why, why_size, "cannot write %s: %s", err == ENOSPC ? temp : path,
           strerror (err));
    if (fd >= 0)
        unlink (temp);
    return err == ENOSPC || err == EDQUOT ? WALCAST_ENOSPC : WALCAST_EIO;
}

/*  Read the whole file into *buf (malloc'd). 0, 1 when it does not exist,
    or a negative code with why set. */
static int
s_read (const char *path, char **buf, size_t *len, char *why, size_t why_size)
{
    *buf = NULL;
    *len = 0;
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);    /* a FIFO: no wait */
    if (fd < 0 && errno == ENOENT)
        return 1;
    struct stat st;
    if (fd < 0 || fstat (fd, &st) != 0) {
        s_say (why, why_size, "cannot open %s: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return WALCAST_EIO;
    }
    if (!S_ISREG (st.st_mode)) {
        s_say (why, why_size, "%s is not a regular file", path);
        close (fd);
        return WALCAST_EIO;
    }
    if (st.st_size > S_MAX_FILE) {
        s_say (why, why_size, "%s is %lld octets, more than a directory can take "
               "(%d): not a roster", path, (long long) st.st_size, S_MAX_FILE);
        close (fd);
        return WALCAST_EPROTO;
    }
    *buf = (char *) malloc ((size_t) st.st_size + 1);
    if (!*buf) {
        s_say (why, why_size, "out of memory");
        close (fd);
        return WALCAST_ENOMEM;
    }
    while (*len < (size_t) st.st_size + 1) {
        ssize_t got = read (fd, *buf + *len, (size_t) st.st_size + 1 - *len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            s_say (why, why_size, "cannot read %s: %s", path, strerror (errno));
            close (fd);
            free (*buf);
            *buf = NULL;
            return WALCAST_EIO;
        }
        if (got == 0)
            break;
        *len += (size_t) got;
    }
    close (fd);
    return 0;
}

/*  Check the head of the file and decode its TOPOLOGY into msg (storage
    holds it). 0 or a negative code with why set. */
static int
s_decode (const char *path, const char *buf, size_t len, msgpack_unpacked *storage,
          wc_msg_t *msg, char *why, size_t why_size)
{
    if (len < S_HEAD || memcmp (buf, S_MAGIC, S_MAGIC_LEN) != 0) {
        s_say (why, why_size, "%s is not a broker's node list (no " S_MAGIC " head)",
               path);
        return WALCAST_EPROTO;
    }
    if (buf [S_MAGIC_LEN] != S_FORMAT) {
        s_say (why, why_size, "%s is in format %c; this broker reads format %c only "
               "(written by a newer broker?)", path,
               buf [S_MAGIC_LEN] >= 0x21 && buf [S_MAGIC_LEN] < 0x7f ? buf [S_MAGIC_LEN]
                                                                      : '?', S_FORMAT);
        return WALCAST_EVERSION;
    }
    const uint8_t *head = (const uint8_t *) buf + 8;
    uint32_t want = (uint32_t) head [0] << 24 | (uint32_t) head [1] << 16
                  | (uint32_t) head [2] << 8 | head [3];
    uint32_t have = wc_crc32c (0, buf + S_HEAD, len - S_HEAD);
    if (want != have) {
        s_say (why, why_size, "%s is damaged: crc32c %08x, the content gives %08x",
               path, want, have);
        return WALCAST_EPROTO;
    }
    int rc = wc_msg_decode (buf + S_HEAD, len - S_HEAD, storage, msg);
    if (rc == 0 && msg->type != WC_MSG_TOPOLOGY)
        rc = WALCAST_EPROTO;
    if (rc)
        s_say (why, why_size, "%s is damaged: its content is not a TOPOLOGY (%s)",
               path, walcast_errname (rc));
    return rc;
}

/*  A file that cannot be read is kept for the operator as PATH.bad (the
    next save would replace it); why says so. */
static void
s_keep_aside (const char *path, char *why, size_t why_size)
{
    char bad [4210];
    snprintf (bad, sizeof bad, "%s.bad", path);
    size_t len = why ? strlen (why) : 0;
    if (rename (path, bad) == 0 && why && len < why_size)
        snprintf (why + len, why_size - len, " (kept as %s)", bad);
}

int
wc_roster_load (const char *data_dir, wc_directory_t *dir, int64_t now_ms,
                size_t *skipped, char *why, size_t why_size)
{
    size_t unused;
    if (!skipped)
        skipped = &unused;
    *skipped = 0;
    char path [4200];
    snprintf (path, sizeof path, "%s/%s", data_dir, WC_ROSTER_FILE);
    char *buf;
    size_t len;
    int rc = s_read (path, &buf, &len, why, why_size);
    if (rc == WALCAST_EPROTO)
        s_keep_aside (path, why, why_size);
    if (rc)
        return rc > 0 ? 0 : rc;
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_msg_t msg;
    rc = s_decode (path, buf, len, &storage, &msg, why, why_size);
    int restored = 0;
    for (uint32_t i = 0; rc == 0 && i < msg.u.topology.count; i++) {
        wc_node_info_t info;
        if (wc_node_info_from_object (&msg.u.topology.items [i], &info) == 0
        &&  wc_directory_restore (dir, &info, now_ms, NULL) == 0)
            restored++;
        else
            (*skipped)++;
    }
    msgpack_unpacked_destroy (&storage);
    free (buf);
    if (rc)
        s_keep_aside (path, why, why_size);
    return rc ? rc : restored;
}
