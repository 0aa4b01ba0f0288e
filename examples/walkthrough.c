/*  walkthrough.c - the classic walk-through: one primary, two replicas,
    one write, read back from a replica.

        walkthrough [PRIMARY_PORT [REPLICA1_PORT REPLICA2_PORT]]

    It starts three walcast-node processes itself (ports 7100, 7110 and
    7120 unless given; one port gives the primary's, the replicas get
    +10 and +20), each with its own data directory in a fresh temporary
    directory, and narrates every step on stdout. The node binary is
    $WALCAST_NODE, else the one built next to this example.

    Two things it shows about walcast:
    - A write is acknowledged by the primary with its position in the log,
      (epoch, seq). Replicas apply the log on their own time, so a read
      from a replica right after a write may not see it yet; every read
      reply carries the replica's applied seq, and a reader who needs the
      write waits until that seq has reached the write's.
    - Every node can say where it stands (status) and what it holds
      (digest): nodes at the same seq give the same digest.

    Nothing here sleeps for a fixed time: each wait polls for the thing
    it needs, under a deadline. Whatever happens, the nodes this program
    started are stopped (and killed if they do not stop) before it exits;
    a node started here also dies if this program is killed outright
    (PR_SET_PDEATHSIG). Node logs go to a file per node, shown when a
    step fails.
*/
/*  POSIX and GNU calls (clock_gettime, nftw, O_CLOEXEC, sigaction): an
    application defines this before any header, as the build does here. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "walcast.h"

#ifndef WALCAST_NODE_PATH
#   define WALCAST_NODE_PATH "walcast-node"    // found on $PATH
#endif

#define S_NNODES            3
#define S_START_TIMEOUT_MS  10000   // a node must answer STATUS within this
#define S_READ_TIMEOUT_MS   10000   // a replica must apply the write within this
#define S_STOP_TIMEOUT_MS   10000   // a node must exit after SIGTERM within this
#define S_REQUEST_TIMEOUT   1000    // bound on each request
#define S_POLL_MS           20      // pause between two polls of a node

/*  One node this program runs. */
typedef struct {
    const char *id;             /* "primary", "replica1", "replica2" */
    int         port;           /* base port */
    char        data [4096];    /* its data directory */
    char        log [4096];     /* its stderr and stdout */
    pid_t       pid;            /* running child, or 0 */
    walcast_t  *client;         /* a client handle talking to it */
} s_node_t;

static s_node_t s_nodes [S_NNODES] = {
    { .id = "primary",  .port = 7100 },
    { .id = "replica1", .port = 7110 },
    { .id = "replica2", .port = 7120 },
};

static volatile sig_atomic_t s_interrupted = 0;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_interrupted = 1;
}

static int64_t
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Pause between two polls. Waits are always "until X or a deadline";
//  this only keeps the poll from spinning.
static void
s_pause (void)
{
    struct timespec ts = { 0, S_POLL_MS * 1000000L };
    nanosleep (&ts, NULL);
}

//  Say why the walk-through failed, on stderr.
static void
s_fail (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "walkthrough: FAILED: ");
    vfprintf (stderr, fmt, args);
    fprintf (stderr, "\n");
    va_end (args);
}

//  Show the end of a node's log, to explain a failure.
static void
s_show_log (const s_node_t *node)
{
    FILE *file = fopen (node->log, "r");
    if (!file)
        return;
    //  Keep the last 20 lines in a ring.
    char lines [20][512];
    size_t count = 0;
    while (fgets (lines [count % 20], sizeof lines [0], file))
        count++;
    fclose (file);
    if (count == 0)
        return;
    fprintf (stderr, "--- last lines of %s's log (%s) ---\n", node->id,
             node->log);
    for (size_t i = count > 20 ? count - 20 : 0; i < count; i++)
        fputs (lines [i % 20], stderr);
    fprintf (stderr, "---\n");
}

//  If the node's process has exited, reap it and say so. Returns true
//  when it is gone.
static bool
s_node_exited (s_node_t *node)
{
    if (node->pid == 0)
        return true;
    int status;
    pid_t rc = waitpid (node->pid, &status, WNOHANG);
    if (rc == 0)
        return false;
    node->pid = 0;
    if (rc > 0 && WIFEXITED (status))
        s_fail ("%s exited early with status %d", node->id,
                WEXITSTATUS (status));
    else
    if (rc > 0 && WIFSIGNALED (status))
        s_fail ("%s was killed by signal %d", node->id, WTERMSIG (status));
    else
        s_fail ("%s: waitpid: %s", node->id, strerror (errno));
    s_show_log (node);
    return true;
}

//  True if nothing listens on 127.0.0.1 at the node's three ports (P, P+1,
//  P+2): we can bind them, as the node will (with SO_REUSEADDR, as libzmq
//  does). Otherwise whatever answers there is not ours.
static bool
s_ports_free (const s_node_t *node)
{
    for (int port = node->port; port < node->port + 3; port++) {
        int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return false;
        int on = 1;
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        struct sockaddr_in addr;
        memset (&addr, 0, sizeof addr);
        addr.sin_family = AF_INET;
        addr.sin_port = htons ((uint16_t) port);
        addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        int rc = bind (fd, (struct sockaddr *) &addr, sizeof addr);
        int err = errno;
        close (fd);
        if (rc != 0) {
            s_fail ("port %d (for %s) is in use: %s; pick other ports "
                    "(walkthrough PRIMARY_PORT)", port, node->id,
                    strerror (err));
            return false;
        }
    }
    return true;
}

//  Start walcast-node for this node: fork, send its output to its log
//  file, exec. replica_of is the primary's HOST:PORT, or NULL.
static int
s_node_start (s_node_t *node, const char *binary, const char *replica_of)
{
    char port [16];
    snprintf (port, sizeof port, "%d", node->port);
    const char *argv [] = {
        binary, "--id", node->id, "--data", node->data, "--port", port,
        replica_of ? "--replica-of" : NULL, replica_of, NULL
    };
    int log_fd = open (node->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                       0644);
    if (log_fd < 0) {
        s_fail ("cannot create %s: %s", node->log, strerror (errno));
        return -1;
    }
    fflush (NULL);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid < 0) {
        s_fail ("fork: %s", strerror (errno));
        close (log_fd);
        return -1;
    }
    if (pid == 0) {
        //  Child: only async-signal-safe calls until exec. Die with the
        //  parent, even if it is killed outright.
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        dup2 (log_fd, STDOUT_FILENO);
        dup2 (log_fd, STDERR_FILENO);
        execv (binary, (char **) argv);
        const char *msg = "walkthrough: cannot execute walcast-node\n";
        ssize_t rc = write (STDERR_FILENO, msg, strlen (msg));
        (void) rc;
        _exit (127);
    }
    close (log_fd);
    node->pid = pid;
    return 0;
}

//  Wait until the node answers STATUS (it has opened its log and bound
//  its sockets), or fail at the deadline or if it exits. The answer must
//  come from our node: its id, and our process still running.
static int
s_node_wait_ready (s_node_t *node, walcast_status_t *status)
{
    int64_t deadline = s_now () + S_START_TIMEOUT_MS;
    int rc;
    while (true) {
        rc = walcast_status (node->client, status);
        if (s_node_exited (node))
            return -1;
        if (rc == 0 && strcmp (status->id, node->id) == 0)
            return 0;
        if (rc == 0) {
            s_fail ("port %d answers as node '%s', not %s", node->port,
                    status->id, node->id);
            return -1;
        }
        if (s_interrupted) {
            s_fail ("interrupted");
            return -1;
        }
        if (s_now () >= deadline)
            break;
        if (rc != WALCAST_ETIMEOUT)
            s_pause ();
    }
    s_fail ("%s did not answer on port %d within %d ms (last error: %s)",
            node->id, node->port, S_START_TIMEOUT_MS, walcast_strerror (rc));
    s_show_log (node);
    return -1;
}

//  Read key from a replica until the replica has applied seq, then check
//  the value. Prints "ID: KEY = VALUE (applied seq N)".
static int
s_read_back (s_node_t *node, const char *key, const char *expected,
             uint64_t seq)
{
    int64_t deadline = s_now () + S_READ_TIMEOUT_MS;
    uint64_t applied = 0;
    int rc;
    while (true) {
        void *value = NULL;
        size_t value_len = 0;
        applied = 0;
        rc = walcast_get (node->client, key, strlen (key), &value,
                          &value_len, &applied);
        if ((rc == 0 || rc == WALCAST_ENOTFOUND) && applied >= seq) {
            if (rc == WALCAST_ENOTFOUND) {
                s_fail ("%s has applied seq %" PRIu64 " but has no %s",
                        node->id, applied, key);
                return -1;
            }
            bool same = value_len == strlen (expected)
                     && memcmp (value, expected, value_len) == 0;
            printf ("   %s: %s = %.*s (applied seq %" PRIu64 ")\n", node->id,
                    key, (int) value_len, value_len ? (char *) value : "",
                    applied);
            walcast_free (value);
            if (!same) {
                s_fail ("%s holds a different value for %s", node->id, key);
                return -1;
            }
            return 0;
        }
        walcast_free (value);
        if (rc != 0 && rc != WALCAST_ENOTFOUND && rc != WALCAST_ETIMEOUT) {
            s_fail ("reading %s from %s: %s", key, node->id,
                    walcast_strerror (rc));
            return -1;
        }
        if (s_node_exited (node))
            return -1;
        if (s_interrupted) {
            s_fail ("interrupted");
            return -1;
        }
        if (s_now () >= deadline)
            break;
        s_pause ();
    }
    s_fail ("%s did not apply seq %" PRIu64 " within %d ms (applied %"
            PRIu64 ", last answer: %s)", node->id, seq, S_READ_TIMEOUT_MS,
            applied, rc ? walcast_strerror (rc) : "behind");
    s_show_log (node);
    return -1;
}

//  Stop every node still running: SIGTERM, then wait for it with a
//  deadline, then SIGKILL. Returns 0 if each exited cleanly (status 0).
static int
s_stop_all (void)
{
    int result = 0;
    for (int i = 0; i < S_NNODES; i++)
        if (s_nodes [i].pid > 0)
            kill (s_nodes [i].pid, SIGTERM);

    int64_t deadline = s_now () + S_STOP_TIMEOUT_MS;
    for (int i = 0; i < S_NNODES; i++) {
        s_node_t *node = &s_nodes [i];
        while (node->pid > 0) {
            int status;
            pid_t rc = waitpid (node->pid, &status, WNOHANG);
            if (rc == node->pid) {
                node->pid = 0;
                if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
                    if (WIFSIGNALED (status))
                        s_fail ("%s was killed by signal %d", node->id,
                                WTERMSIG (status));
                    else
                        s_fail ("%s exited with status %d", node->id,
                                WEXITSTATUS (status));
                    s_show_log (node);
                    result = -1;
                }
            }
            else
            if (rc < 0 && errno != EINTR) {
                node->pid = 0;          // not ours any more
                result = -1;
            }
            else
            if (s_now () >= deadline) {
                s_fail ("%s did not stop within %d ms of SIGTERM; killing it",
                        node->id, S_STOP_TIMEOUT_MS);
                kill (node->pid, SIGKILL);
                waitpid (node->pid, &status, 0);
                node->pid = 0;
                result = -1;
            }
            else
                s_pause ();
        }
    }
    return result;
}

static int
s_remove_entry (const char *path, const struct stat *st, int flag,
                struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    if (remove (path) != 0)
        fprintf (stderr, "walkthrough: cannot remove %s: %s\n", path,
                 strerror (errno));
    return 0;
}

//  Ports from argv: none (defaults), one (primary; replicas +10, +20) or
//  three. Returns 0 or -1 after printing usage.
static int
s_parse_ports (int argc, char **argv)
{
    if (argc != 1 && argc != 2 && argc != 4) {
        fprintf (stderr, "usage: walkthrough [PRIMARY_PORT [REPLICA1_PORT "
                 "REPLICA2_PORT]]\n");
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        char *end;
        long port = strtol (argv [i], &end, 10);
        if (end == argv [i] || *end || port < 1 || port > 65533) {
            fprintf (stderr, "walkthrough: bad port '%s'\n", argv [i]);
            return -1;
        }
        s_nodes [i - 1].port = (int) port;
    }
    if (argc == 2) {
        if (s_nodes [0].port > 65533 - 20) {
            fprintf (stderr, "walkthrough: port %d leaves no room for the "
                     "replicas (+10, +20)\n", s_nodes [0].port);
            return -1;
        }
        s_nodes [1].port = s_nodes [0].port + 10;
        s_nodes [2].port = s_nodes [0].port + 20;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc > 1 && (strcmp (argv [1], "-h") == 0
                 ||  strcmp (argv [1], "--help") == 0)) {
        printf ("usage: walkthrough [PRIMARY_PORT [REPLICA1_PORT "
                "REPLICA2_PORT]]\nStarts a primary and two replicas, "
                "writes one key and reads it back.\n");
        return 0;
    }
    if (s_parse_ports (argc, argv))
        return 2;
    setvbuf (stdout, NULL, _IOLBF, 0);

    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGHUP, &sa, NULL);

    const char *binary = getenv ("WALCAST_NODE");
    if (!binary || !*binary)
        binary = WALCAST_NODE_PATH;
    if (strchr (binary, '/') && access (binary, X_OK) != 0) {
        fprintf (stderr, "walkthrough: cannot run %s: %s (set WALCAST_NODE "
                 "to the walcast-node binary)\n", binary, strerror (errno));
        return 1;
    }

    char tmpdir [] = "/tmp/walcast-walkthrough.XXXXXX";
    if (!mkdtemp (tmpdir)) {
        fprintf (stderr, "walkthrough: mkdtemp: %s\n", strerror (errno));
        return 1;
    }
    int result = 1;
    for (int i = 0; i < S_NNODES; i++) {
        s_node_t *node = &s_nodes [i];
        snprintf (node->data, sizeof node->data, "%s/%s", tmpdir, node->id);
        snprintf (node->log, sizeof node->log, "%s/%s.log", tmpdir, node->id);
        node->client = walcast_new ();
        char addr [32];
        snprintf (addr, sizeof addr, "127.0.0.1:%d", node->port);
        if (!node->client || walcast_connect (node->client, addr) != 0) {
            s_fail ("cannot create a client for %s", addr);
            goto cleanup;
        }
        walcast_set_timeout (node->client, S_REQUEST_TIMEOUT);
    }
    s_node_t *primary = &s_nodes [0];
    char primary_addr [32];
    snprintf (primary_addr, sizeof primary_addr, "127.0.0.1:%d",
              primary->port);

    printf ("walcast walk-through: one primary, two replicas, one write.\n"
            "Node binary: %s\nWorking directory: %s (removed at the end)\n\n",
            binary, tmpdir);

    for (int i = 0; i < S_NNODES; i++)
        if (!s_ports_free (&s_nodes [i]))
            goto cleanup;

    //  1. The primary.
    printf ("1. Starting the primary on port %d. It keeps its write-ahead "
            "log in %s.\n", primary->port, primary->data);
    walcast_status_t st;
    if (s_node_start (primary, binary, NULL)
    ||  s_node_wait_ready (primary, &st))
        goto cleanup;
    printf ("   The primary is up: role %s, epoch %" PRIu64 ", applied seq %"
            PRIu64 ".\n\n", st.role, st.epoch, st.applied_seq);

    //  2. The replicas.
    printf ("2. Starting two replicas that follow it (--replica-of %s).\n"
            "   Each subscribes to the primary's stream of log entries and "
            "keeps its own copy.\n", primary_addr);
    for (int i = 1; i < S_NNODES; i++) {
        s_node_t *node = &s_nodes [i];
        if (s_node_start (node, binary, primary_addr))
            goto cleanup;
    }
    for (int i = 1; i < S_NNODES; i++) {
        s_node_t *node = &s_nodes [i];
        if (s_node_wait_ready (node, &st))
            goto cleanup;
        printf ("   %s is up on port %d: role %s, following %s.\n", node->id,
                node->port, st.role, st.primary [0] ? st.primary : "-");
    }
    printf ("\n");

    //  3. A write.
    printf ("3. Writing user:1 = Alice on the primary.\n");
    walcast_pos_t pos;
    int rc = walcast_put (primary->client, "user:1", 6, "Alice", 5, &pos);
    if (rc) {
        s_fail ("put on the primary: %s", walcast_strerror (rc));
        s_show_log (primary);
        goto cleanup;
    }
    printf ("   The primary appended it to its log and acknowledged it: "
            "seq %" PRIu64 ", epoch %" PRIu64 ".\n\n", pos.seq, pos.epoch);

    //  4. Read it back from the replicas.
    printf ("4. Reading user:1 from the replicas. They apply the log on their "
            "own time,\n   so we poll each until its applied seq reaches "
            "%" PRIu64 ".\n", pos.seq);
    for (int i = 1; i < S_NNODES; i++)
        if (s_read_back (&s_nodes [i], "user:1", "Alice", pos.seq))
            goto cleanup;
    printf ("\n");

    //  5. Status.
    printf ("5. What each node says about itself (walcast status):\n");
    printf ("   %-9s %-8s %5s %11s %-16s %4s %7s\n", "id", "role", "epoch",
            "applied_seq", "primary", "lag", "lag_ms");
    for (int i = 0; i < S_NNODES; i++) {
        s_node_t *node = &s_nodes [i];
        rc = walcast_status (node->client, &st);
        if (rc) {
            s_fail ("status of %s: %s", node->id, walcast_strerror (rc));
            goto cleanup;
        }
        printf ("   %-9s %-8s %5" PRIu64 " %11" PRIu64 " %-16s %4" PRIu64
                " %7" PRIu64 "\n", st.id, st.role, st.epoch, st.applied_seq,
                st.primary [0] ? st.primary : "-", st.lag, st.lag_ms);
    }
    printf ("\n");

    //  6. Digests.
    printf ("6. Comparing what they hold (walcast digest): the same seq must "
            "give the same hash.\n");
    uint64_t first_hash = 0;
    for (int i = 0; i < S_NNODES; i++) {
        s_node_t *node = &s_nodes [i];
        uint64_t seq, hash;
        rc = walcast_digest (node->client, &seq, &hash);
        if (rc) {
            s_fail ("digest of %s: %s", node->id, walcast_strerror (rc));
            goto cleanup;
        }
        printf ("   %-9s seq %" PRIu64 "  hash %016" PRIx64 "\n", node->id,
                seq, hash);
        if (i == 0)
            first_hash = hash;
        else
        if (seq == pos.seq && hash != first_hash) {
            s_fail ("%s holds different data than the primary at seq %"
                    PRIu64, node->id, seq);
            goto cleanup;
        }
    }
    printf ("\n");
    result = 0;

cleanup:
    for (int i = 0; i < S_NNODES; i++)
        walcast_destroy (&s_nodes [i].client);
    if (result == 0)
        printf ("7. Stopping the nodes (SIGTERM) and removing %s.\n", tmpdir);
    if (s_stop_all () != 0)
        result = 1;
    nftw (tmpdir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (result == 0)
        printf ("\nDone. Next: run walcast-node yourself and try the walcast "
                "command (walcast --help).\n");
    return result;
}
