/*  http_get.c - a minimal HTTP/1.0 client for tests (see http_get.h).

    Sends "METHOD path HTTP/1.0" with Connection: close and reads until
    the server closes, with poll() against one deadline; then splits the
    status line, the Content-Type header and the body.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "http_get.h"

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*  Everything the server sends until it closes; NULL on error/timeout. */
static char *
s_exchange (int port, const char *request, int timeout_ms, size_t *len)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0
    ||  send (fd, request, strlen (request), MSG_NOSIGNAL) != (ssize_t) strlen (request)) {
        close (fd);
        return NULL;
    }
    int64_t deadline = s_now_ms () + timeout_ms;
    size_t cap = 65536, size = 0;
    char *data = (char *) malloc (cap);
    for (;;) {
        int64_t left = deadline - s_now_ms ();
        struct pollfd item = { fd, POLLIN, 0 };
        if (left <= 0 || poll (&item, 1, (int) left) <= 0)
            break;
        if (size + 4096 + 1 > cap)
            data = (char *) realloc (data, cap *= 2);
        ssize_t got = recv (fd, data + size, cap - size - 1, 0);
        if (got == 0) {
            close (fd);
            data [size] = '\0';
            *len = size;
            return data;
        }
        if (got < 0 && errno != EINTR)
            break;
        if (got > 0)
            size += (size_t) got;
    }
    close (fd);
    free (data);
    return NULL;
}

int
http_request (int port, const char *method, const char *path, int timeout_ms,
              http_reply_t *reply, int quiet)
{
    memset (reply, 0, sizeof *reply);
    char request [512];
    snprintf (request, sizeof request, "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n"
              "Connection: close\r\n\r\n", method, path, port);
    size_t len = 0;
    char *data = s_exchange (port, request, timeout_ms, &len);
    char *body = data ? strstr (data, "\r\n\r\n") : NULL;
    if (!body || sscanf (data, "HTTP/1.%*d %d", &reply->status) != 1) {
        if (!quiet)
            fprintf (stderr, "http: %s %s on port %d: no whole answer within %d ms "
                     "(%s)\n", method, path, port, timeout_ms,
                     data ? "no status line" : strerror (errno));
        free (data);
        return -1;
    }
    *body = '\0';
    for (char *line = strstr (data, "\r\n"); line; line = strstr (line + 2, "\r\n"))
        if (strncasecmp (line + 2, "Content-Type:", 13) == 0)
            sscanf (line + 15, " %127[^\r]", reply->content_type);
    reply->body_len = len - (size_t) (body + 4 - data);
    reply->body = (char *) malloc (reply->body_len + 1);
    memcpy (reply->body, body + 4, reply->body_len);
    reply->body [reply->body_len] = '\0';
    free (data);
    return 0;
}

void
http_reply_free (http_reply_t *reply)
{
    free (reply->body);
    reply->body = NULL;
}
