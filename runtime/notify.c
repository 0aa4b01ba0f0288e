/*  notify.c - tell systemd a service is ready, reloading or stopping
    (see notify.h). One sendto per call; the socket is not kept.
*/
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "log.h"
#include "notify.h"

int
wc_notify (const char *state)
{
    const char *path = getenv ("NOTIFY_SOCKET");
    if (!path || !path [0])
        return 0;
    struct sockaddr_un addr;
    memset (&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t len = strlen (path);
    if ((path [0] != '/' && path [0] != '@') || len >= sizeof addr.sun_path) {
        wc_log_warn ("systemd: $NOTIFY_SOCKET %s is not a socket name; not telling it %s",
                     path, state);
        errno = EINVAL;
        return -1;
    }
    memcpy (addr.sun_path, path, len);
    if (path [0] == '@')
        addr.sun_path [0] = '\0';       /* the abstract namespace */
    int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        wc_log_warn ("systemd: cannot make a socket to tell it %s: %s", state,
                     strerror (errno));
        return -1;
    }
    socklen_t addr_len = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + len);
    ssize_t sent = sendto (fd, state, strlen (state), MSG_NOSIGNAL,
                           (struct sockaddr *) &addr, addr_len);
    int err = errno;
    close (fd);
    errno = err;
    if (sent == (ssize_t) strlen (state))
        return 0;
    wc_log_warn ("systemd: cannot send %s to $NOTIFY_SOCKET %s: %s", state, path,
                 strerror (err));
    errno = err;
    return -1;
}
