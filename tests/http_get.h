/*  http_get.h - a minimal HTTP/1.0 GET over a TCP socket, for tests of
    the broker's status page (no library between the test and the wire).
*/
#ifndef HTTP_GET_H_INCLUDED
#define HTTP_GET_H_INCLUDED

#include <stddef.h>

typedef struct {
    int    status;            /* 200, 404...; 0 when no answer */
    char   content_type [128];
    char  *body;              /* malloc'd, NUL-terminated; the caller frees */
    size_t body_len;
} http_reply_t;

/*  GET path from 127.0.0.1:port (method "GET" or another). Returns 0 and
    fills *reply, or -1 (printed unless quiet) when nothing whole came
    back within timeout_ms (connection refused, a timeout). */
int http_request (int port, const char *method, const char *path, int timeout_ms,
                  http_reply_t *reply, int quiet);

/*  Free reply->body. */
void http_reply_free (http_reply_t *reply);

#endif
