/*  httpd.c - a small read-only HTTP server (see httpd.h).

    libmicrohttpd answers from its internal polling thread; s_answer looks
    the path up among the published documents and copies the body into
    the response under the mutex (MHD_RESPMEM_MUST_COPY), so a document
    can be replaced while a response for it is still being sent.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "httpd.h"
#include "sock.h"
#include "walcast.h"

typedef struct {
    char  *path;
    char  *content_type;
    char  *body;
    size_t len;
} s_doc_t;

struct wc_httpd {
    struct MHD_Daemon *daemon;
    pthread_mutex_t    lock;            /* guards docs */
    s_doc_t            docs [WC_HTTPD_MAX_DOCS];
    size_t             ndocs;
    atomic_uint_fast64_t served;
};

/*  A response with a copy of body, and the headers every answer has. */
static enum MHD_Result
s_send (struct MHD_Connection *connection, unsigned status, const char *content_type,
        const char *body, size_t len)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer (len, (void *) body, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, "Content-Type", content_type);
    MHD_add_response_header (response, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

/*  libmicrohttpd's unescaper, called on the path (and on query
    arguments, which we ignore): leave it as sent, so that a path is
    found only when its bytes are a published path's. Returns its length. */
static size_t
s_unescape (void *cls, struct MHD_Connection *connection, char *uri)
{
    (void) cls; (void) connection;
    return strlen (uri);
}

/*  One request: the published document at its path. */
static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *connection, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **req_cls)
{
    (void) version; (void) upload_data; (void) req_cls;
    wc_httpd_t *self = (wc_httpd_t *) cls;
    atomic_fetch_add (&self->served, 1);
    if (*upload_data_size != 0)
        *upload_data_size = 0;          /* a body we do not want: ignore it */
    if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0) {
        static const char text [] = "only GET and HEAD\n";
        return s_send (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
                       text, sizeof text - 1);
    }
    enum MHD_Result rc = MHD_NO;
    bool found = false;
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; i < self->ndocs; i++)
        if (strcmp (self->docs [i].path, url) == 0) {
            rc = s_send (connection, MHD_HTTP_OK, self->docs [i].content_type,
                         self->docs [i].body, self->docs [i].len);
            found = true;
            break;
        }
    pthread_mutex_unlock (&self->lock);
    if (!found) {
        static const char text [] = "not found\n";
        rc = s_send (connection, MHD_HTTP_NOT_FOUND, "text/plain", text,
                     sizeof text - 1);
    }
    return rc;
}

wc_httpd_t *
wc_httpd_new (const char *name, const char *bind, int port, char *why, size_t why_size)
{
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons ((uint16_t) port);
    const char *host = strcmp (bind, "*") == 0 ? "0.0.0.0" : bind;
    if (inet_pton (AF_INET, host, &addr.sin_addr) != 1) {
        snprintf (why, why_size, "cannot serve the %s on %s:%d: not an IPv4 address; "
                  "give --bind an address like 127.0.0.1", name, bind, port);
        return NULL;
    }
    wc_httpd_t *self = (wc_httpd_t *) calloc (1, sizeof *self);
    if (!self) {
        snprintf (why, why_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    errno = 0;
    self->daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
                                     (uint16_t) port, NULL, NULL, s_answer, self,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                                     MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, NULL,
                                     MHD_OPTION_CONNECTION_LIMIT,
                                     (unsigned) WC_HTTPD_MAX_CONNECTIONS,
                                     MHD_OPTION_CONNECTION_TIMEOUT,
                                     (unsigned) WC_HTTPD_IDLE_S,
                                     MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                     (unsigned) WC_HTTPD_MAX_PER_ADDRESS,
                                     MHD_OPTION_END);
    if (!self->daemon) {
        wc_sock_bind_why (name, bind, port, errno ? errno : EADDRINUSE, why, why_size);
        wc_httpd_destroy (&self);
        return NULL;
    }
    return self;
}

void
wc_httpd_destroy (wc_httpd_t **self_p)
{
    wc_httpd_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    for (size_t i = 0; i < self->ndocs; i++) {
        free (self->docs [i].path);
        free (self->docs [i].content_type);
        free (self->docs [i].body);
    }
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

int
wc_httpd_publish (wc_httpd_t *self, const char *path, const char *content_type,
                  const void *body, size_t len)
{
    char *copy = (char *) malloc (len ? len : 1);
    char *type = strdup (content_type);
    if (!copy || !type) {
        free (copy);
        free (type);
        return WALCAST_ENOMEM;
    }
    if (len)
        memcpy (copy, body, len);
    pthread_mutex_lock (&self->lock);
    s_doc_t *doc = NULL;
    for (size_t i = 0; i < self->ndocs && !doc; i++)
        if (strcmp (self->docs [i].path, path) == 0)
            doc = &self->docs [i];
    if (!doc && self->ndocs < WC_HTTPD_MAX_DOCS) {
        doc = &self->docs [self->ndocs];
        doc->path = strdup (path);
        if (doc->path)
            self->ndocs++;
        else
            doc = NULL;
    }
    int rc = doc ? 0 : WALCAST_EINVAL;
    if (doc) {
        free (doc->body);
        free (doc->content_type);
        doc->body = copy;
        doc->content_type = type;
        doc->len = len;
    }
    pthread_mutex_unlock (&self->lock);
    if (rc) {
        free (copy);
        free (type);
    }
    return rc;
}

uint64_t
wc_httpd_served (wc_httpd_t *self)
{
    return atomic_load (&self->served);
}
