/*  latency_proxy.c - walcast-latency-proxy: a TCP proxy that adds delay.

        walcast-latency-proxy --delay MS LISTEN_PORT:TARGET_PORT [...]

    Listens on 127.0.0.1:LISTEN_PORT for every pair and forwards each
    connection to 127.0.0.1:TARGET_PORT, holding every byte back for MS
    milliseconds in each direction. Tests put one proxy in front of a
    node's three ports (P, P+1, P+2 behind Q, Q+1, Q+2) and tell clients
    and other nodes to use Q: the node then looks MS*2 ms away, which is
    how a test on one machine simulates regions. A pair may carry its own
    delay, LISTEN_PORT:TARGET_PORT/MS, for tests that delay only one of a
    node's sockets.

    Two ideas make it work:
    - Every read from one side becomes a chunk stamped with the time it
      is due (arrival + delay) at the end of that direction's queue. The
      delay is the same for every chunk, so each queue is ordered by due
      time and only its head matters: the loop writes heads that are due
      and otherwise sleeps (ppoll) until the earliest head falls due.
    - Memory is bounded per direction: past S_QUEUE_LIMIT bytes queued the
      proxy stops reading that side, and TCP's own flow control pushes
      back on the sender.

    One thread, non-blocking sockets, TCP_NODELAY everywhere (Nagle would
    add its own delay). When one side closes, what it sent is still
    delivered (after the delay) and then the other side is closed too; a
    reset or write error closes both at once. SIGTERM or SIGINT end it
    with exit status 0. Once every listener is bound it prints
    "latency-proxy: ready" on stderr, which a test can wait for.
*/
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_PAIRS     32
#define S_READ_BYTES    65536                 /* one read, at most one chunk */
#define S_QUEUE_LIMIT   (64u * 1024u * 1024u) /* bytes queued per direction */
#define S_MAX_DELAY_MS  600000

/*  Bytes read from one side, waiting to be written to the other. */
typedef struct s_chunk {
    struct s_chunk *next;
    int64_t         due_us;       /* monotonic time it may be written */
    size_t          size;         /* bytes in data */
    size_t          sent;         /* bytes of data already written */
    char            data [];
} s_chunk_t;

/*  One direction of a connection: bytes from src waiting for dst. */
typedef struct {
    s_chunk_t *head;              /* oldest chunk, written first */
    s_chunk_t *tail;              /* newest chunk */
    size_t     queued;            /* bytes in the queue not yet written */
    bool       eof;               /* src said it is done (read returned 0) */
} s_flow_t;

/*  A proxied connection: fd[0] the accepted client, fd[1] the target.
    flow[0] carries client -> target, flow[1] target -> client. */
typedef struct {
    int      fd [2];
    bool     connecting;          /* non-blocking connect to target pending */
    int64_t  delay_us;
    s_flow_t flow [2];
} s_conn_t;

/*  One LISTEN:TARGET pair. */
typedef struct {
    int     listen_port;
    int     target_port;
    int64_t delay_us;
    int     fd;                   /* listening socket */
} s_pair_t;

static volatile sig_atomic_t s_terminated = 0;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_terminated = 1;
}

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
s_parse_int (const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long n = strtol (text, &end, 10);
    if (errno || end == text || n < min || n > max)
        return -1;
    *out = n;
    return (int) (end - text);
}

//  Parse "LISTEN:TARGET" or "LISTEN:TARGET/MS" into pair.
static int
s_parse_pair (const char *text, long default_delay_ms, s_pair_t *pair)
{
    long listen_port, target_port, delay_ms = default_delay_ms;
    int used = s_parse_int (text, 1, 65535, &listen_port);
    if (used < 0 || text [used] != ':')
        return -1;
    text += used + 1;
    used = s_parse_int (text, 1, 65535, &target_port);
    if (used < 0)
        return -1;
    text += used;
    if (*text == '/') {
        used = s_parse_int (text + 1, 0, S_MAX_DELAY_MS, &delay_ms);
        if (used < 0)
            return -1;
        text += used + 1;
    }
    if (*text)
        return -1;
    pair->listen_port = (int) listen_port;
    pair->target_port = (int) target_port;
    pair->delay_us = (int64_t) delay_ms * 1000;
    pair->fd = -1;
    return 0;
}

static void
s_set_socket_options (int fd)
{
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
}

static struct sockaddr_in
s_loopback (int port)
{
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons ((uint16_t) port);
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    return addr;
}

static int
s_listen (s_pair_t *pair)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = s_loopback (pair->listen_port);
    if (bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0
    ||  listen (fd, 128) != 0) {
        fprintf (stderr, "latency-proxy: cannot listen on 127.0.0.1:%d: %s\n",
                 pair->listen_port, strerror (errno));
        close (fd);
        return -1;
    }
    pair->fd = fd;
    return 0;
}

static void
s_flow_clear (s_flow_t *flow)
{
    while (flow->head) {
        s_chunk_t *next = flow->head->next;
        free (flow->head);
        flow->head = next;
    }
    flow->tail = NULL;
    flow->queued = 0;
}

//  Close both sides of a connection and free what it still holds.
static void
s_conn_close (s_conn_t *conn)
{
    for (int k = 0; k < 2; k++) {
        if (conn->fd [k] >= 0)
            close (conn->fd [k]);
        conn->fd [k] = -1;
        s_flow_clear (&conn->flow [k]);
    }
}

//  Accept one connection on pair and start connecting to its target.
//  Returns 0 with *conn filled, 1 when there was nothing (more) to
//  accept, -1 when the connection could not be set up (already closed).
static int
s_accept (s_pair_t *pair, s_conn_t *conn)
{
    int client = accept4 (pair->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0)
        return 1;               //  EAGAIN, or out of descriptors: try later
    int target = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (target < 0) {
        close (client);
        return -1;
    }
    s_set_socket_options (client);
    s_set_socket_options (target);
    struct sockaddr_in addr = s_loopback (pair->target_port);
    int rc = connect (target, (struct sockaddr *) &addr, sizeof addr);
    if (rc != 0 && errno != EINPROGRESS) {
        //  Target down: the client sees its connection closed at once
        close (target);
        close (client);
        return -1;
    }
    memset (conn, 0, sizeof *conn);
    conn->fd [0] = client;
    conn->fd [1] = target;
    conn->connecting = rc != 0;
    conn->delay_us = pair->delay_us;
    return 0;
}

//  Read what src (side k) has into flow k. Returns 0, or -1 when the
//  connection must be closed.
static int
s_read_side (s_conn_t *conn, int k)
{
    s_flow_t *flow = &conn->flow [k];
    char buffer [S_READ_BYTES];
    while (!flow->eof && flow->queued < S_QUEUE_LIMIT) {
        ssize_t got = read (conn->fd [k], buffer, sizeof buffer);
        if (got == 0) {
            flow->eof = true;
            break;
        }
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        s_chunk_t *chunk = malloc (sizeof (s_chunk_t) + (size_t) got);
        if (!chunk)
            return -1;
        chunk->next = NULL;
        chunk->due_us = s_now_us () + conn->delay_us;
        chunk->size = (size_t) got;
        chunk->sent = 0;
        memcpy (chunk->data, buffer, (size_t) got);
        if (flow->tail)
            flow->tail->next = chunk;
        else
            flow->head = chunk;
        flow->tail = chunk;
        flow->queued += (size_t) got;
    }
    return 0;
}

//  Write the due head chunks of flow k to the other side. Returns 0, or
//  -1 when the connection must be closed.
static int
s_write_side (s_conn_t *conn, int k, int64_t now)
{
    s_flow_t *flow = &conn->flow [k];
    int dst = conn->fd [1 - k];
    while (flow->head && flow->head->due_us <= now) {
        s_chunk_t *chunk = flow->head;
        ssize_t put = send (dst, chunk->data + chunk->sent, chunk->size - chunk->sent,
                            MSG_NOSIGNAL);
        if (put < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        chunk->sent += (size_t) put;
        flow->queued -= (size_t) put;
        if (chunk->sent == chunk->size) {
            flow->head = chunk->next;
            if (!flow->head)
                flow->tail = NULL;
            free (chunk);
        }
    }
    return 0;
}

//  True when the connection is finished: a side that closed has had all
//  it sent delivered.
static bool
s_conn_done (s_conn_t *conn)
{
    for (int k = 0; k < 2; k++)
        if (conn->flow [k].eof && !conn->flow [k].head)
            return true;
    return false;
}

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: walcast-latency-proxy --delay MS LISTEN_PORT:TARGET_PORT[/MS] [...]\n"
        "\n"
        "Forwards 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT for each pair,\n"
        "delaying every byte by MS milliseconds in each direction (a pair's own\n"
        "/MS overrides --delay). Stop it with SIGTERM.\n");
}

int
main (int argc, char **argv)
{
    long delay_ms = -1;
    s_pair_t pairs [S_MAX_PAIRS];
    int npairs = 0;
    for (int k = 1; k < argc; k++) {
        if (strcmp (argv [k], "--delay") == 0 && k + 1 < argc) {
            if (s_parse_int (argv [++k], 0, S_MAX_DELAY_MS, &delay_ms) < 0
            ||  argv [k][strspn (argv [k], "0123456789")] != 0) {
                fprintf (stderr, "latency-proxy: --delay expects 0..%d ms, got '%s'\n",
                         S_MAX_DELAY_MS, argv [k]);
                return 2;
            }
        }
        else
        if (strcmp (argv [k], "-h") == 0 || strcmp (argv [k], "--help") == 0) {
            s_usage ();
            return 0;
        }
        else
        if (npairs < S_MAX_PAIRS && argv [k][0] != '-'
        &&  s_parse_pair (argv [k], delay_ms < 0 ? 0 : delay_ms, &pairs [npairs]) == 0)
            npairs++;
        else {
            fprintf (stderr, "latency-proxy: bad argument '%s'\n", argv [k]);
            s_usage ();
            return 2;
        }
    }
    if (delay_ms < 0 || npairs == 0) {
        s_usage ();
        return 2;
    }

    //  SIGTERM and SIGINT stay blocked except inside ppoll, so a signal
    //  can never slip in between the flag test and the wait.
    sigset_t blocked, waitmask;
    sigemptyset (&blocked);
    sigaddset (&blocked, SIGTERM);
    sigaddset (&blocked, SIGINT);
    sigprocmask (SIG_BLOCK, &blocked, &waitmask);
    sigdelset (&waitmask, SIGTERM);
    sigdelset (&waitmask, SIGINT);
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    signal (SIGPIPE, SIG_IGN);

    int rc = 0;
    for (int k = 0; k < npairs; k++)
        if (s_listen (&pairs [k]) != 0)
            rc = 1;
    s_conn_t *conns = NULL;
    size_t nconns = 0, maxconns = 0;
    struct pollfd *fds = NULL;
    if (rc == 0) {
        for (int k = 0; k < npairs; k++)
            fprintf (stderr, "latency-proxy: 127.0.0.1:%d -> 127.0.0.1:%d, delay %lld ms\n",
                     pairs [k].listen_port, pairs [k].target_port,
                     (long long) (pairs [k].delay_us / 1000));
        fprintf (stderr, "latency-proxy: ready\n");
    }
    while (rc == 0 && !s_terminated) {
        //  Room for every listener and both sides of every connection
        size_t need = (size_t) npairs + 2 * nconns;
        struct pollfd *more = realloc (fds, (need ? need : 1) * sizeof *fds);
        if (!more) {
            rc = 1;
            break;
        }
        fds = more;
        int64_t now = s_now_us ();
        int64_t wake = -1;              //  earliest due time not yet writable
        for (int k = 0; k < npairs; k++)
            fds [k] = (struct pollfd) { pairs [k].fd, POLLIN, 0 };
        for (size_t c = 0; c < nconns; c++) {
            s_conn_t *conn = &conns [c];
            for (int k = 0; k < 2; k++) {
                short events = 0;
                if (!conn->flow [k].eof && conn->flow [k].queued < S_QUEUE_LIMIT
                &&  !(k == 1 && conn->connecting))
                    events |= POLLIN;
                //  Side k is written by flow 1 - k
                s_chunk_t *head = conn->flow [1 - k].head;
                if (k == 1 && conn->connecting)
                    events |= POLLOUT;
                else
                if (head && head->due_us <= now)
                    events |= POLLOUT;
                else
                if (head && (wake < 0 || head->due_us < wake))
                    wake = head->due_us;
                fds [npairs + 2 * c + k] = (struct pollfd) { conn->fd [k], events, 0 };
            }
        }
        struct timespec timeout, *timeout_p = NULL;
        if (wake >= 0) {
            int64_t wait_us = wake > now ? wake - now : 0;
            timeout.tv_sec = (time_t) (wait_us / 1000000);
            timeout.tv_nsec = (long) (wait_us % 1000000) * 1000;
            timeout_p = &timeout;
        }
        int ready = ppoll (fds, need, timeout_p, &waitmask);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            fprintf (stderr, "latency-proxy: ppoll: %s\n", strerror (errno));
            rc = 1;
            break;
        }
        now = s_now_us ();
        //  Move data on existing connections first (the array may grow
        //  below, and fds only describes the connections polled)
        size_t polled = nconns;
        for (size_t c = 0; c < polled; c++) {
            s_conn_t *conn = &conns [c];
            struct pollfd *pfd = &fds [npairs + 2 * c];
            bool fail = false;
            if (conn->connecting && pfd [1].revents) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt (conn->fd [1], SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0)
                    fail = true;
                else
                    conn->connecting = false;
            }
            for (int k = 0; k < 2 && !fail; k++)
                if (pfd [k].revents & (POLLIN | POLLHUP | POLLERR))
                    if (s_read_side (conn, k) != 0)
                        fail = true;
            for (int k = 0; k < 2 && !fail && !conn->connecting; k++)
                if (s_write_side (conn, k, now) != 0)
                    fail = true;
            if (fail || s_conn_done (conn))
                s_conn_close (conn);
        }
        //  Drop closed connections (keep the order: it does not matter)
        size_t kept = 0;
        for (size_t c = 0; c < nconns; c++)
            if (conns [c].fd [0] >= 0)
                conns [kept++] = conns [c];
        nconns = kept;
        //  New connections
        for (int k = 0; k < npairs; k++) {
            if (!(fds [k].revents & POLLIN))
                continue;
            while (true) {
                if (nconns == maxconns) {
                    size_t grow = maxconns ? maxconns * 2 : 16;
                    s_conn_t *bigger = realloc (conns, grow * sizeof *conns);
                    if (!bigger)
                        break;
                    conns = bigger;
                    maxconns = grow;
                }
                int got = s_accept (&pairs [k], &conns [nconns]);
                if (got == 0)
                    nconns++;
                else
                if (got == 1)
                    break;
            }
        }
    }
    for (size_t c = 0; c < nconns; c++)
        s_conn_close (&conns [c]);
    free (conns);
    free (fds);
    for (int k = 0; k < npairs; k++)
        if (pairs [k].fd >= 0)
            close (pairs [k].fd);
    return rc;
}
