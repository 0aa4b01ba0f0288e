/*  httpd.h - a small read-only HTTP server, for /metrics and status pages.

    Built on libmicrohttpd (Debian's libmicrohttpd-dev), which runs its own
    thread. The idea that keeps it simple and race-free: the owner's loop
    *publishes* documents (a path, a content type and a body) whenever it
    likes (every second, on a change); the HTTP thread serves the latest
    copy of each path and never looks at the owner's state. One mutex
    guards the documents; neither side ever waits on the other for longer
    than a copy. GET and HEAD only: an unknown path is 404, another method
    405. A path is compared as the request sent it, not percent-decoded.
*/
#ifndef WC_HTTPD_H_INCLUDED
#define WC_HTTPD_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct wc_httpd wc_httpd_t;

/*  Serve on bind:port (an IPv4 address; "0.0.0.0" for all). name ("metrics",
    "status page") is for messages. NULL on failure, with the reason and a
    remedy in why (a port in use...). */
wc_httpd_t *wc_httpd_new (const char *name, const char *bind, int port, char *why,
                          size_t why_size);

/*  Stop serving (waits for the HTTP thread); *self_p becomes NULL. */
void wc_httpd_destroy (wc_httpd_t **self_p);

/*  Replace the document at path ("/metrics") with a copy of body. 0, or
    WALCAST_ENOMEM (the old one stays), or WALCAST_EINVAL (more than
    WC_HTTPD_MAX_DOCS paths). */
int wc_httpd_publish (wc_httpd_t *self, const char *path, const char *content_type,
                      const void *body, size_t len);

/*  Requests answered so far (any status). */
uint64_t wc_httpd_served (wc_httpd_t *self);

#define WC_HTTPD_MAX_DOCS  16

/*  Connections held at once, and how long one may sit idle before it is
    dropped: idle connections (a client that connects and says nothing)
    must not lock scrapers out. Past the limit new ones are closed at
    once; 64 held for 10 s each did that to Prometheus. The limit stays
    well below a process's usual 1024 descriptors, which the node's log
    needs too. */
#define WC_HTTPD_MAX_CONNECTIONS  256
#define WC_HTTPD_IDLE_S           3

/*  Connections one address may hold: a client that keeps them busy (a
    header line a second: never idle) takes at most this share, and
    scrapers from other addresses find room. */
#define WC_HTTPD_MAX_PER_ADDRESS  32

#endif
