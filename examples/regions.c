/*  regions.c - three regions on one machine: each client reads locally.

        regions [BASE_PORT]        (default 7300)

    Starts a walcast-broker, a primary in us-east (us1), replicas in
    eu-west (eu1) and ap-south (ap1), all registered with the broker,
    and then one client per region. Every byte a client exchanges with a
    node goes through a latency proxy (walcast-latency-proxy) whose delay
    comes from a distance table, so each client sees the world from its
    own region: its own region's node about 2 ms away, the others tens
    of milliseconds. Each client then reads user:1 and says who served it
    and how far that node is:

        client in eu-west: user:1 = Alice, served by eu1 (eu-west, 2.1 ms)

    A proxy's delay belongs to the proxy, not to the client, so every
    (client region, node) pair has its own proxy: nine of them. The
    clients use walcast_connect on their own proxies' addresses and
    walcast_set_region; the library measures the RTTs and picks the
    nearest node.

    Ports: broker BASE (and BASE+1), nodes BASE+10, +20, +30 (three
    each), proxies BASE+40 .. BASE+68. Binaries: $WALCAST_NODE,
    $WALCAST_BROKER and $WALCAST_PROXY, else the ones built with this
    example. Everything it starts is stopped before it exits, whether it
    succeeds, fails or is interrupted, and dies with it if it is killed
    outright (PR_SET_PDEATHSIG). Logs go to a temporary directory, which
    is kept (and its logs' tails shown) when something fails.
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
#   define WALCAST_NODE_PATH "walcast-node"
#endif
#ifndef WALCAST_BROKER_PATH
#   define WALCAST_BROKER_PATH "walcast-broker"
#endif
#ifndef WALCAST_PROXY_PATH
#   define WALCAST_PROXY_PATH "walcast-latency-proxy"
#endif

#define S_REGIONS        3
#define S_MAX_CHILDREN   16
#define S_START_MS       15000      // a child must be ready within this
#define S_STOP_MS        10000      // a child must exit after SIGTERM within this
#define S_POLL_MS        10

static const char *s_region [S_REGIONS] = { "us-east", "eu-west", "ap-south" };
static const char *s_node_id [S_REGIONS] = { "us1", "eu1", "ap1" };

/*  One-way delay in ms between two regions; a round trip is twice that. */
static const int s_distance [S_REGIONS][S_REGIONS] = {
    /*             us-east  eu-west  ap-south */
    /* us-east */ {    1,      40,      80 },
    /* eu-west */ {   40,       1,      70 },
    /* ap-south */{   80,      70,       1 },
};

/*  A process this program started. */
typedef struct {
    char  name [32];             /* "broker", "us1", "proxy eu-west->us1" */
    char  log [600];             /* its stdout and stderr */
    pid_t pid;                   /* 0 once reaped */
} s_child_t;

static s_child_t s_children [S_MAX_CHILDREN];
static int s_nchildren = 0;
static char s_dir [256];
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

static void
s_pause (void)
{
    struct timespec ts = { 0, S_POLL_MS * 1000000L };
    nanosleep (&ts, NULL);
}

static void
s_fail (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "regions: FAILED: ");
    vfprintf (stderr, fmt, args);
    fprintf (stderr, "\n");
    va_end (args);
}

//  A binary's path: $env if set, else the built-in one.
static const char *
s_binary (const char *env, const char *builtin)
{
    const char *path = getenv (env);
    return path && *path ? path : builtin;
}

//  Start argv[0] as a child named name, output to a log in s_dir.
//  Returns the child's index, or -1.
static int
s_spawn (const char *name, const char **argv)
{
    if (s_nchildren == S_MAX_CHILDREN) {
        s_fail ("too many children");
        return -1;
    }
    s_child_t *child = &s_children [s_nchildren];
    snprintf (child->name, sizeof child->name, "%s", name);
    snprintf (child->log, sizeof child->log, "%s/%s.log", s_dir, name);
    for (char *c = child->log + strlen (s_dir) + 1; *c; c++)
        if (*c == ' ' || *c == '>')
            *c = '_';
    int fd = open (child->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        s_fail ("cannot create %s: %s", child->log, strerror (errno));
        return -1;
    }
    fflush (NULL);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid < 0) {
        s_fail ("fork: %s", strerror (errno));
        close (fd);
        return -1;
    }
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        dup2 (fd, STDOUT_FILENO);
        dup2 (fd, STDERR_FILENO);
        execvp (argv [0], (char **) argv);
        dprintf (STDERR_FILENO, "regions: cannot execute %s: %s\n", argv [0],
                 strerror (errno));
        _exit (127);
    }
    close (fd);
    child->pid = pid;
    return s_nchildren++;
}

static void
s_show_log (const s_child_t *child)
{
    FILE *file = fopen (child->log, "r");
    if (!file)
        return;
    char lines [15][512];
    size_t count = 0;
    while (fgets (lines [count % 15], sizeof lines [0], file))
        count++;
    fclose (file);
    if (count == 0)
        return;
    fprintf (stderr, "--- last lines of %s (%s) ---\n", child->name, child->log);
    for (size_t i = count > 15 ? count - 15 : 0; i < count; i++)
        fputs (lines [i % 15], stderr);
}

//  True when child k has exited (reaped and reported).
static bool
s_exited (int k)
{
    s_child_t *child = &s_children [k];
    if (!child->pid)
        return true;
    int status;
    if (waitpid (child->pid, &status, WNOHANG) != child->pid)
        return false;
    child->pid = 0;
    if (WIFEXITED (status))
        s_fail ("%s exited early with status %d", child->name, WEXITSTATUS (status));
    else
        s_fail ("%s was killed by signal %d", child->name, WTERMSIG (status));
    s_show_log (child);
    return true;
}

static bool
s_port_open (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons ((uint16_t) port);
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    bool open = connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0;
    close (fd);
    return open;
}

//  Wait until child k accepts connections on port, or fail.
static int
s_wait_port (int k, int port)
{
    int64_t deadline = s_now () + S_START_MS;
    while (!s_port_open (port)) {
        if (s_exited (k))
            return -1;
        if (s_interrupted || s_now () > deadline) {
            s_fail (s_interrupted ? "interrupted" : "%s not listening on %d within %d ms",
                    s_children [k].name, port, S_START_MS);
            s_show_log (&s_children [k]);
            return -1;
        }
        s_pause ();
    }
    return 0;
}

//  Stop every child: SIGTERM, wait with a deadline, SIGKILL. Returns 0
//  when each exited with status 0.
static int
s_stop_all (void)
{
    int result = 0;
    for (int k = 0; k < s_nchildren; k++)
        if (s_children [k].pid)
            kill (s_children [k].pid, SIGTERM);
    int64_t deadline = s_now () + S_STOP_MS;
    for (int k = 0; k < s_nchildren; k++) {
        s_child_t *child = &s_children [k];
        while (child->pid) {
            int status;
            pid_t rc = waitpid (child->pid, &status, WNOHANG);
            if (rc == child->pid) {
                child->pid = 0;
                if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
                    s_fail ("%s ended with %s %d", child->name,
                            WIFEXITED (status) ? "status" : "signal",
                            WIFEXITED (status) ? WEXITSTATUS (status) : WTERMSIG (status));
                    s_show_log (child);
                    result = -1;
                }
            }
            else
            if (rc < 0 && errno != EINTR)
                child->pid = 0;
            else
            if (s_now () > deadline) {
                s_fail ("%s did not stop within %d ms; killing it", child->name, S_STOP_MS);
                kill (child->pid, SIGKILL);
                waitpid (child->pid, &status, 0);
                child->pid = 0;
                result = -1;
            }
            else
                s_pause ();
        }
    }
    return result;
}

static int
s_remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

//  Base port of node n, and of the proxy client region c uses for node n.
static int
s_node_port (int base, int n)
{
    return base + 10 + 10 * n;
}

static int
s_proxy_port (int base, int c, int n)
{
    return base + 40 + 10 * c + 3 * n;
}

//  Start the broker, the three nodes and the nine proxies; wait until
//  every node answers and the broker lists all three up.
static int
s_start_cluster (int base)
{
    char port [16], node_timeout [] = "2000";
    snprintf (port, sizeof port, "%d", base);
    const char *broker_argv [] = { s_binary ("WALCAST_BROKER", WALCAST_BROKER_PATH),
                                   "--port", port, "--node-timeout", node_timeout, NULL };
    int broker = s_spawn ("broker", broker_argv);
    if (broker < 0 || s_wait_port (broker, base) != 0)
        return -1;
    printf ("1. broker on 127.0.0.1:%d\n", base);

    char broker_addr [32], primary_addr [32];
    snprintf (broker_addr, sizeof broker_addr, "127.0.0.1:%d", base);
    snprintf (primary_addr, sizeof primary_addr, "127.0.0.1:%d", s_node_port (base, 0));
    int nodes [S_REGIONS];
    for (int n = 0; n < S_REGIONS; n++) {
        char node_port [16], data [400];
        snprintf (node_port, sizeof node_port, "%d", s_node_port (base, n));
        snprintf (data, sizeof data, "%s/%s", s_dir, s_node_id [n]);
        const char *argv [] = { s_binary ("WALCAST_NODE", WALCAST_NODE_PATH),
                                "--id", s_node_id [n], "--region", s_region [n],
                                "--data", data, "--port", node_port,
                                "--broker", broker_addr,
                                n ? "--replica-of" : NULL, primary_addr, NULL };
        nodes [n] = s_spawn (s_node_id [n], argv);
        if (nodes [n] < 0)
            return -1;
    }
    for (int n = 0; n < S_REGIONS; n++) {
        if (s_wait_port (nodes [n], s_node_port (base, n)) != 0)
            return -1;
        printf ("2. %s (%s, %s) on 127.0.0.1:%d\n", s_node_id [n], s_region [n],
                n ? "replica of us1" : "primary", s_node_port (base, n));
    }

    const char *proxy_bin = s_binary ("WALCAST_PROXY", WALCAST_PROXY_PATH);
    for (int c = 0; c < S_REGIONS; c++) {
        for (int n = 0; n < S_REGIONS; n++) {
            char name [32], delay [16], pairs [3][32];
            snprintf (name, sizeof name, "proxy %s->%s", s_region [c], s_node_id [n]);
            snprintf (delay, sizeof delay, "%d", s_distance [c][n]);
            for (int p = 0; p < 3; p++)
                snprintf (pairs [p], sizeof pairs [p], "%d:%d",
                          s_proxy_port (base, c, n) + p, s_node_port (base, n) + p);
            const char *argv [] = { proxy_bin, "--delay", delay, pairs [0], pairs [1],
                                    pairs [2], NULL };
            int k = s_spawn (name, argv);
            if (k < 0)
                return -1;
            for (int p = 0; p < 3; p++)
                if (s_wait_port (k, s_proxy_port (base, c, n) + p) != 0)
                    return -1;
        }
        printf ("3. proxies for clients in %-8s: us1 %2d ms, eu1 %2d ms, ap1 %2d ms "
                "each way\n", s_region [c], s_distance [c][0], s_distance [c][1],
                s_distance [c][2]);
    }

    //  The broker's view: every node registered and up
    walcast_t *watcher = walcast_new ();
    if (!watcher)
        return -1;
    walcast_set_timeout (watcher, 2000);
    int64_t deadline = s_now () + S_START_MS;
    walcast_node_info_t info [8];
    size_t count = 0, up = 0;
    int rc = walcast_connect_broker (watcher, broker_addr);
    while (true) {
        up = 0;
        bool serving = false;       /* the broker has promoted the primary */
        if (rc == 0 && walcast_nodes (watcher, info, 8, &count) == 0)
            for (size_t k = 0; k < count; k++) {
                up += info [k].up ? 1 : 0;
                if (info [k].up && strcmp (info [k].role, "primary") == 0
                &&  info [k].epoch >= 1)
                    serving = true;
            }
        if (up == S_REGIONS && serving)
            break;
        if (s_interrupted || s_now () > deadline) {
            s_fail ("the broker lists %zu of %d nodes up", up, S_REGIONS);
            walcast_destroy (&watcher);
            return -1;
        }
        if (rc != 0)
            rc = walcast_connect_broker (watcher, broker_addr);
        s_pause ();
    }
    printf ("4. the broker's topology:\n");
    for (size_t k = 0; k < count; k++)
        printf ("     %-4s %-9s %-8s %s\n", info [k].id, info [k].region, info [k].role,
                info [k].addr);
    walcast_destroy (&watcher);
    return 0;
}

//  The client of region c: its own proxies, its region; reads user:1
//  (at least as new as seq) and prints who served it.
static int
s_client_read (int base, int c, uint64_t seq)
{
    walcast_t *client = walcast_new ();
    if (!client)
        return -1;
    walcast_set_timeout (client, 5000);
    int rc = walcast_set_region (client, s_region [c]);
    for (int n = 0; rc == 0 && n < S_REGIONS; n++) {
        char addr [32];
        snprintf (addr, sizeof addr, "127.0.0.1:%d", s_proxy_port (base, c, n));
        rc = walcast_connect (client, addr);
    }
    void *value = NULL;
    size_t len = 0;
    walcast_served_t served;
    int64_t started = s_now ();
    if (rc == 0)
        rc = walcast_get_ex (client, "user:1", 6, seq, &value, &len, &served);
    int64_t took = s_now () - started;
    if (rc != 0) {
        s_fail ("client in %s: get user:1: %s (%s)", s_region [c], walcast_strerror (rc),
                walcast_last_detail (client));
        walcast_destroy (&client);
        return -1;
    }
    printf ("   client in %-8s: user:1 = %.*s, served by %s (%s, %.1f ms), read in %lld ms\n",
            s_region [c], (int) len, (char *) value, served.id, served.region,
            served.rtt_ms, (long long) took);
    walcast_free (value);
    bool local = strcmp (served.region, s_region [c]) == 0;

    //  For contrast: the same read from the primary
    walcast_set_read (client, WALCAST_READ_PRIMARY, NULL);
    value = NULL;
    started = s_now ();
    rc = walcast_get_ex (client, "user:1", 6, seq, &value, &len, &served);
    took = s_now () - started;
    if (rc == 0)
        printf ("   %-20s  (with --read primary: served by %s, read in %lld ms)\n", "",
                served.id, (long long) took);
    else
        s_fail ("client in %s: get user:1 from the primary: %s", s_region [c],
                walcast_strerror (rc));
    walcast_free (value);
    walcast_destroy (&client);
    if (rc == 0 && !local) {
        s_fail ("client in %s was not served in its own region", s_region [c]);
        return -1;
    }
    return rc == 0 ? 0 : -1;
}

int
main (int argc, char **argv)
{
    int base = 7300;
    if (argc > 2 || (argc == 2 && (atoi (argv [1]) < 1 || atoi (argv [1]) > 65535 - 70))) {
        fprintf (stderr, "usage: regions [BASE_PORT]   (uses BASE_PORT .. BASE_PORT+70)\n");
        return 2;
    }
    if (argc == 2)
        base = atoi (argv [1]);
    setvbuf (stdout, NULL, _IOLBF, 0);
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    signal (SIGPIPE, SIG_IGN);

    snprintf (s_dir, sizeof s_dir, "/tmp/walcast-regions-XXXXXX");
    if (!mkdtemp (s_dir)) {
        s_fail ("mkdtemp: %s", strerror (errno));
        return 1;
    }
    printf ("regions: a broker, us1 (us-east, primary), eu1 (eu-west) and ap1 "
            "(ap-south); logs in %s\n", s_dir);

    int rc = s_start_cluster (base);
    uint64_t seq = 0;
    if (rc == 0) {
        //  One write, through the us-east client's proxy to the primary
        walcast_t *writer = walcast_new ();
        char addr [32];
        snprintf (addr, sizeof addr, "127.0.0.1:%d", s_proxy_port (base, 0, 0));
        walcast_pos_t pos = { 0, 0 };
        rc = writer ? walcast_connect (writer, addr) : WALCAST_ENOMEM;
        if (rc == 0)
            rc = walcast_put (writer, "user:1", 6, "Alice", 5, &pos);
        if (rc != 0)
            s_fail ("put user:1: %s", walcast_strerror (rc));
        else
            printf ("5. put user:1 = Alice on us1: epoch %" PRIu64 ", seq %" PRIu64 "\n",
                    pos.epoch, pos.seq);
        seq = pos.seq;
        walcast_destroy (&writer);
    }
    if (rc == 0) {
        printf ("6. one client per region reads user:1 (at least seq %" PRIu64 ", so "
                "it sees the write):\n", seq);
        for (int c = 0; rc == 0 && c < S_REGIONS; c++)
            rc = s_client_read (base, c, seq);
    }
    if (s_interrupted && rc == 0) {
        s_fail ("interrupted");
        rc = -1;
    }
    printf ("7. stopping everything\n");
    if (s_stop_all () != 0)
        rc = -1;
    if (rc == 0) {
        nftw (s_dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        printf ("regions: done\n");
        return 0;
    }
    fprintf (stderr, "regions: logs kept in %s\n", s_dir);
    return 1;
}
