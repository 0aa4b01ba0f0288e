/*  ports.c - free TCP ports for tests (see ports.h).

    The lock files make the choice safe between test processes; the bind
    check makes it safe against anything else that listens. A block is
    taken only when its lock is ours and every port in it binds.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "ports.h"

#define S_FIRST_PORT   20000
#define S_BLOCK        100
#define S_BLOCKS       120              /* 20000 .. 31999 */
#define S_LOCK_DIR     "/tmp/walcast-test-ports"

//  True when a listener could bind 127.0.0.1:port (as libzmq binds: with
//  SO_REUSEADDR, so a port in TIME_WAIT counts as free).
static int
s_port_free (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int on = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons ((uint16_t) port);
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int ok = bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0;
    close (fd);
    return ok;
}

//  Take block b's lock; returns the lock's descriptor or -1.
static int
s_lock_block (int b)
{
    char path [64];
    snprintf (path, sizeof path, "%s/block-%d.lock", S_LOCK_DIR, b);
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return -1;
    if (flock (fd, LOCK_EX | LOCK_NB) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

int
test_ports_reserve (int count)
{
    if (count < 1 || count > S_BLOCK)
        return -1;
    mode_t mask = umask (0);
    if (mkdir (S_LOCK_DIR, 01777) != 0 && errno != EEXIST) {
        umask (mask);
        fprintf (stderr, "ports: cannot create %s: %s\n", S_LOCK_DIR, strerror (errno));
        return -1;
    }
    umask (mask);
    unsigned start = (unsigned) getpid () ^ (unsigned) time (NULL);
    for (int i = 0; i < S_BLOCKS; i++) {
        int b = (int) ((start + (unsigned) i) % S_BLOCKS);
        int fd = s_lock_block (b);
        if (fd < 0)
            continue;
        int base = S_FIRST_PORT + b * S_BLOCK;
        int port = base;
        while (port < base + count && s_port_free (port))
            port++;
        if (port == base + count)
            return base;            //  the lock stays held until we exit
        close (fd);
    }
    fprintf (stderr, "ports: no block of %d free ports in %d..%d\n", count,
             S_FIRST_PORT, S_FIRST_PORT + S_BLOCKS * S_BLOCK - 1);
    return -1;
}
