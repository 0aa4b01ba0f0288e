/*  cluster.c - start, stop, poll and inspect walcast nodes for tests.

    See cluster.h for the shape. Processes are plain fork + execv children
    of the test: stdin and stdout on /dev/null, stderr appended to the
    node's log file, PR_SET_PDEATHSIG = SIGKILL so a crashed or killed test
    never leaves nodes behind. Every child is reaped with waitpid, and how
    it ended is printed when that was not a clean exit.

    Polling goes through one cached client handle per node with a short
    timeout; the handle is thrown away after any error so that a restarted
    or resumed node gets a fresh connection.

    The broker, the latency proxies and background CLI runs are "procs":
    the same kind of child, in one table, each with a log file. Destroy
    stops background CLI runs first, then the nodes, then the proxies and
    the broker; a broker or proxy that does not exit 0 after SIGTERM (a
    leak report under ASan, say) fails the test like a node would.
*/
#include "cluster.h"
#include "ports.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CLUSTER_POLL_TIMEOUT_MS   1000    /* client timeout while polling */
#define CLUSTER_CLI_TIMEOUT_MS    30000
#define CLUSTER_TAIL_LINES        40
#define CLUSTER_PATH              512     /* room for any path we make */

typedef struct {
    char       id [32];           /* --id */
    char       replica_of [64];   /* --replica-of, "" for a primary */
    char       fsync [16];        /* --fsync, "" for the default */
    char       data [CLUSTER_PATH];   /* --data */
    char       log [CLUSTER_PATH];    /* stderr of every run, appended */
    char       addr [32];         /* "127.0.0.1:PORT" */
    int        port;              /* --port */
    pid_t      pid;               /* running process, 0 when none */
    bool       stopped;           /* SIGSTOPped and not yet resumed */
    int        starts;            /* times started */
    long       start_mark;        /* log offset of the latest start */
    walcast_t *client;            /* cached handle for polling, or NULL */
    char       region [65];       /* --region, "" for none */
    char       advertise [64];    /* --advertise, "" for the bound address */
    bool       use_broker;        /* --broker (the test's broker) */
    char       extra [CLUSTER_MAX_EXTRA][CLUSTER_PATH];   /* more flags, in order */
    char       curve_public [CLUSTER_PATH];     /* its public cert, for our clients */
    int        nextra;
    bool       faults;            /* WALCAST_FAULT_FILE set for it */
    char       fault_file [CLUSTER_PATH];
} cluster_node_t;

/*  A helper process: the broker, a proxy or a background CLI run. */
typedef struct {
    char  name [64];              /* "broker", "proxy1-eu1", "cli3" */
    char  log [CLUSTER_PATH];     /* its stderr, appended across runs */
    char  out [CLUSTER_PATH];     /* its stdout ("" for /dev/null) */
    pid_t pid;                    /* running process, 0 when none */
    bool  must_exit_clean;        /* SIGTERM must end it with status 0 */
    bool  stopped;                /* SIGSTOPped and not yet resumed */
} cluster_proc_t;

struct cluster {
    char           name [64];     /* test name, in messages */
    char           dir [256];     /* temporary directory */
    char           node_bin [CLUSTER_PATH];
    char           cli_bin [CLUSTER_PATH];
    int            base_port;     /* node i is base_port + 10 * i */
    bool           passed;        /* cluster_pass() was called */
    int            count;         /* nodes declared */
    cluster_node_t nodes [CLUSTER_MAX_NODES];
    char           broker_addr [32];  /* "127.0.0.1:PORT" of the broker */
    int            broker;        /* proc index of the broker, -1 before it starts */
    char           broker_extra [CLUSTER_MAX_EXTRA][CLUSTER_PATH];  /* more broker flags */
    int            nbroker_extra;
    char           broker_log [CLUSTER_PATH];     /* its stderr */
    char           curve_cert [CLUSTER_PATH];     /* our clients' secret cert, "" */
    char           curve_broker [CLUSTER_PATH];   /* the broker's public cert, "" */
    int            nproxies;      /* proxies started */
    char           proxy_addr [CLUSTER_MAX_PROXIES][32];
    int            proxy_proc [CLUSTER_MAX_PROXIES];  /* proc index of proxy k */
    int            nprocs;        /* procs used */
    cluster_proc_t procs [CLUSTER_MAX_PROCS];
};


static void s_print_file_tail (const char *path, const char *label, int lines);

int64_t
cluster_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
cluster_nap_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
        ;
}

//  Copy env var `name` into buf if it names an executable file.
static bool
s_find_binary (const char *name, char *buf, size_t size)
{
    const char *path = getenv (name);
    if (!path || !*path) {
        fprintf (stderr, "cluster: $%s is not set (run the test through ctest, "
                 "or export %s=/path/to/binary)\n", name, name);
        return false;
    }
    if (access (path, X_OK) != 0) {
        fprintf (stderr, "cluster: $%s=%s is not an executable: %s\n",
                 name, path, strerror (errno));
        return false;
    }
    snprintf (buf, size, "%s", path);
    return true;
}

cluster_t *
cluster_new (const char *name)
{
    cluster_t *self = calloc (1, sizeof (cluster_t));
    if (!self)
        return NULL;
    snprintf (self->name, sizeof self->name, "%s", name);
    if (!s_find_binary ("WALCAST_NODE", self->node_bin, sizeof self->node_bin)
    ||  !s_find_binary ("WALCAST_CLI", self->cli_bin, sizeof self->cli_bin)) {
        fprintf (stderr, "cluster: SKIPPING %s: the walcast binaries were not found\n",
                 name);
        free (self);
        return NULL;
    }
    self->base_port = test_ports_reserve (100);
    if (self->base_port < 0) {
        free (self);
        return NULL;
    }
    self->broker = -1;
    snprintf (self->broker_addr, sizeof self->broker_addr, "127.0.0.1:%d",
              self->base_port + 80);

    snprintf (self->dir, sizeof self->dir, "/tmp/walcast-%s-XXXXXX", name);
    if (!mkdtemp (self->dir)) {
        fprintf (stderr, "cluster: mkdtemp %s: %s\n", self->dir, strerror (errno));
        free (self);
        return NULL;
    }
    //  Nodes and CLI runs must not die of a broken pipe on our behalf
    signal (SIGPIPE, SIG_IGN);
    return self;
}

static int
s_rm_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb; (void) flag; (void) ftw;
    return remove (path);
}

void
cluster_destroy (cluster_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cluster_t *self = *self_p;
    //  Background CLI runs first, then the nodes, then what they lean on
    for (int k = 0; k < self->nprocs; k++)
        if (self->procs [k].pid && !self->procs [k].must_exit_clean)
            cluster_proc_stop (self, k, 5000);
    int rc = cluster_term_all (self);
    for (int k = 0; k < self->nprocs; k++)
        if (self->procs [k].pid && cluster_proc_stop (self, k, 20000) != 0)
            rc = -1;
    if (rc != 0)
        self->passed = false;     //  a node that did not exit cleanly fails the test
    for (int i = 0; i < self->count; i++)
        walcast_destroy (&self->nodes [i].client);

    if (self->passed && getenv ("WALCAST_TEST_KEEP"))
        fprintf (stderr, "cluster: %s passed; keeping %s (WALCAST_TEST_KEEP)\n",
                 self->name, self->dir);
    else
    if (self->passed)
        nftw (self->dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else {
        for (int i = 0; i < self->count; i++) {
            fprintf (stderr, "cluster: --- tail of %s (node %s, port %d) ---\n",
                     self->nodes [i].log, self->nodes [i].id, self->nodes [i].port);
            cluster_print_tail (self, i, CLUSTER_TAIL_LINES);
        }
        for (int k = 0; k < self->nprocs; k++) {
            fprintf (stderr, "cluster: --- tail of %s (%s) ---\n",
                     self->procs [k].log, self->procs [k].name);
            s_print_file_tail (self->procs [k].log, self->procs [k].name,
                               CLUSTER_TAIL_LINES);
        }
        fprintf (stderr, "cluster: %s FAILED, keeping %s\n", self->name, self->dir);
    }
    free (self);
    *self_p = NULL;
}

void
cluster_pass (cluster_t *self)
{
    self->passed = true;
}

const char *
cluster_dir (cluster_t *self)
{
    return self->dir;
}

const char *
cluster_cli_path (cluster_t *self)
{
    return self->cli_bin;
}

int
cluster_spare_port (cluster_t *self)
{
    return self->base_port + 90;
}

int
cluster_add (cluster_t *self, const char *id, const char *replica_of,
             const char *fsync)
{
    if (self->count >= CLUSTER_MAX_NODES)
        return -1;
    int i = self->count++;
    cluster_node_t *node = &self->nodes [i];
    snprintf (node->id, sizeof node->id, "%s", id);
    snprintf (node->replica_of, sizeof node->replica_of, "%s",
              replica_of ? replica_of : "");
    snprintf (node->fsync, sizeof node->fsync, "%s", fsync ? fsync : "");
    snprintf (node->data, sizeof node->data, "%s/%s", self->dir, id);
    snprintf (node->log, sizeof node->log, "%s/%s.log", self->dir, id);
    snprintf (node->fault_file, sizeof node->fault_file, "%s/%s.faults", self->dir, id);
    node->port = self->base_port + 10 * i;
    snprintf (node->addr, sizeof node->addr, "127.0.0.1:%d", node->port);
    return i;
}

void
cluster_set_replica_of (cluster_t *self, int i, const char *replica_of)
{
    cluster_node_t *node = &self->nodes [i];
    snprintf (node->replica_of, sizeof node->replica_of, "%s",
              replica_of ? replica_of : "");
}

int
cluster_port (cluster_t *self, int i)
{
    return self->nodes [i].port;
}

const char *
cluster_addr (cluster_t *self, int i)
{
    return self->nodes [i].addr;
}

const char *
cluster_data_path (cluster_t *self, int i)
{
    return self->nodes [i].data;
}

const char *
cluster_log_path (cluster_t *self, int i)
{
    return self->nodes [i].log;
}

long
cluster_start_mark (cluster_t *self, int i)
{
    return self->nodes [i].start_mark;
}

//  Report how a reaped child ended, unless it was a clean exit.
static int
s_report_exit (cluster_t *self, int i, int status, const char *when)
{
    cluster_node_t *node = &self->nodes [i];
    if (WIFEXITED (status)) {
        if (WEXITSTATUS (status) == 0)
            return 0;
        fprintf (stderr, "cluster: node %s %s: exit status %d (see %s)\n",
                 node->id, when, WEXITSTATUS (status), node->log);
    }
    else
    if (WIFSIGNALED (status))
        fprintf (stderr, "cluster: node %s %s: killed by signal %d (%s)\n",
                 node->id, when, WTERMSIG (status), strsignal (WTERMSIG (status)));
    return -1;
}

//  The environment of a node's process: ours, plus WALCAST_FAULT_FILE
//  when fault_file is given. One malloc'd array (the strings it points to
//  are environ's, and one static buffer); NULL when out of memory.
static char **
s_child_env (const char *fault_file)
{
    static char fault [CLUSTER_PATH + 32];
    size_t count = 0;
    while (environ [count])
        count++;
    char **envp = calloc (count + 2, sizeof *envp);
    if (!envp)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (strncmp (environ [i], "WALCAST_FAULT_FILE=", 19) != 0)
            envp [n++] = environ [i];
    if (fault_file) {
        snprintf (fault, sizeof fault, "WALCAST_FAULT_FILE=%s", fault_file);
        envp [n++] = fault;
    }
    envp [n] = NULL;
    return envp;
}

int
cluster_start (cluster_t *self, int i)
{
    cluster_node_t *node = &self->nodes [i];
    if (node->pid) {
        fprintf (stderr, "cluster: node %s is already running\n", node->id);
        return -1;
    }
    int fd = open (node->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf (stderr, "cluster: open %s: %s\n", node->log, strerror (errno));
        return -1;
    }
    node->starts++;
    dprintf (fd, "=== cluster: start #%d of node %s on port %d%s%s ===\n",
             node->starts, node->id, node->port,
             *node->replica_of ? ", replica of " : "", node->replica_of);
    node->start_mark = (long) lseek (fd, 0, SEEK_END);

    char port [16];
    snprintf (port, sizeof port, "%d", node->port);
    const char *argv [24 + CLUSTER_MAX_EXTRA];
    int argc = 0;
    argv [argc++] = self->node_bin;
    argv [argc++] = "--id";
    argv [argc++] = node->id;
    argv [argc++] = "--data";
    argv [argc++] = node->data;
    argv [argc++] = "--port";
    argv [argc++] = port;
    if (*node->replica_of) {
        argv [argc++] = "--replica-of";
        argv [argc++] = node->replica_of;
    }
    if (*node->fsync) {
        argv [argc++] = "--fsync";
        argv [argc++] = node->fsync;
    }
    if (*node->region) {
        argv [argc++] = "--region";
        argv [argc++] = node->region;
    }
    if (*node->advertise) {
        argv [argc++] = "--advertise";
        argv [argc++] = node->advertise;
    }
    if (node->use_broker) {
        argv [argc++] = "--broker";
        argv [argc++] = self->broker_addr;
    }
    for (int k = 0; k < node->nextra; k++)
        argv [argc++] = node->extra [k];
    argv [argc] = NULL;

    pid_t parent = getpid ();
    //  Everything that allocates is done before the fork: a child forked
    //  while another thread of the test holds an allocator lock must only
    //  make system calls until it runs the binary.
    char **envp = s_child_env (node->faults ? node->fault_file : NULL);
    int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
    if (!envp || null < 0) {
        fprintf (stderr, "cluster: cannot prepare node %s's start\n", node->id);
        free (envp);
        if (null >= 0)
            close (null);
        close (fd);
        return -1;
    }
    fflush (NULL);
    pid_t pid = fork ();
    if (pid < 0) {
        fprintf (stderr, "cluster: fork: %s\n", strerror (errno));
        free (envp);
        close (null);
        close (fd);
        return -1;
    }
    if (pid == 0) {
        //  Child: never outlive the test, then become the node
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        dup2 (null, 0);
        dup2 (null, 1);
        dup2 (fd, 2);
        signal (SIGPIPE, SIG_DFL);
        execve (argv [0], (char **) argv, envp);
        dprintf (2, "cluster: execv %s: %s\n", argv [0], strerror (errno));
        _exit (127);
    }
    free (envp);
    close (null);
    close (fd);
    node->pid = pid;
    node->stopped = false;
    walcast_destroy (&node->client);
    return 0;
}

int
cluster_signal (cluster_t *self, int i, int sig)
{
    cluster_node_t *node = &self->nodes [i];
    if (!node->pid || kill (node->pid, sig) != 0) {
        fprintf (stderr, "cluster: cannot send signal %d to node %s (pid %d)\n",
                 sig, node->id, (int) node->pid);
        return -1;
    }
    if (sig == SIGSTOP)
        node->stopped = true;
    else
    if (sig == SIGCONT)
        node->stopped = false;
    return 0;
}

int
cluster_kill (cluster_t *self, int i)
{
    cluster_node_t *node = &self->nodes [i];
    if (!node->pid)
        return -1;
    kill (node->pid, SIGKILL);
    int status;
    while (waitpid (node->pid, &status, 0) < 0 && errno == EINTR)
        ;
    node->pid = 0;
    node->stopped = false;
    walcast_destroy (&node->client);
    return 0;
}

int
cluster_term (cluster_t *self, int i, int timeout_ms)
{
    cluster_node_t *node = &self->nodes [i];
    if (!node->pid)
        return 0;
    if (node->stopped)
        kill (node->pid, SIGCONT);
    walcast_destroy (&node->client);
    kill (node->pid, SIGTERM);
    int64_t deadline = cluster_now_ms () + timeout_ms;
    int status = 0;
    while (true) {
        pid_t rc = waitpid (node->pid, &status, WNOHANG);
        if (rc == node->pid)
            break;
        if (rc < 0 && errno != EINTR) {
            fprintf (stderr, "cluster: waitpid node %s: %s\n", node->id, strerror (errno));
            node->pid = 0;
            return -1;
        }
        if (cluster_now_ms () > deadline) {
            fprintf (stderr, "cluster: node %s did not exit %d ms after SIGTERM; "
                     "sending SIGKILL\n", node->id, timeout_ms);
            cluster_kill (self, i);
            return -1;
        }
        cluster_nap_ms (5);
    }
    node->pid = 0;
    node->stopped = false;
    return s_report_exit (self, i, status, "after SIGTERM");
}

int
cluster_term_all (cluster_t *self)
{
    int rc = 0;
    for (int i = 0; i < self->count; i++)
        if (self->nodes [i].pid && cluster_term (self, i, 20000) != 0)
            rc = -1;
    return rc;
}

bool
cluster_running (cluster_t *self, int i)
{
    cluster_node_t *node = &self->nodes [i];
    if (!node->pid)
        return false;
    int status;
    pid_t rc = waitpid (node->pid, &status, WNOHANG);
    if (rc == 0)
        return true;
    if (rc == node->pid) {
        s_report_exit (self, i, status, "exited unexpectedly");
        if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
            fprintf (stderr, "cluster: node %s exited unexpectedly (status 0)\n",
                     node->id);
    }
    node->pid = 0;
    node->stopped = false;
    walcast_destroy (&node->client);
    return false;
}

//  With cluster_set_curve: give a handle of ours the clients' key pair,
//  the broker's public key and, for a handle made for one node, that
//  node's (node_public, "" or NULL for none). 0, or the library's error.
static int
s_secure (cluster_t *self, walcast_t *client, const char *node_public)
{
    int rc = 0;
    if (!self->curve_cert [0])
        return 0;
    rc = walcast_set_curve_cert (client, self->curve_cert);
    if (rc == 0 && self->curve_broker [0])
        rc = walcast_set_curve_broker (client, self->curve_broker);
    if (rc == 0 && node_public && node_public [0])
        rc = walcast_set_curve_server (client, node_public);
    if (rc)
        fprintf (stderr, "cluster: CURVE keys for a client: %s (%s)\n",
                 walcast_errname (rc), walcast_last_detail (client));
    return rc;
}

void
cluster_set_curve (cluster_t *self, const char *client_cert, const char *broker_public)
{
    snprintf (self->curve_cert, sizeof self->curve_cert, "%s", client_cert ? client_cert : "");
    snprintf (self->curve_broker, sizeof self->curve_broker, "%s",
              broker_public ? broker_public : "");
    for (int i = 0; i < self->count; i++)
        walcast_destroy (&self->nodes [i].client);
}

void
cluster_set_node_curve (cluster_t *self, int i, const char *public_cert)
{
    snprintf (self->nodes [i].curve_public, sizeof self->nodes [i].curve_public, "%s",
              public_cert ? public_cert : "");
    walcast_destroy (&self->nodes [i].client);
}

//  The cached polling handle of node i, made on demand.
static walcast_t *
s_client (cluster_t *self, int i)
{
    cluster_node_t *node = &self->nodes [i];
    if (!node->client) {
        node->client = walcast_new ();
        if (!node->client)
            return NULL;
        walcast_set_timeout (node->client, CLUSTER_POLL_TIMEOUT_MS);
        if (s_secure (self, node->client, node->curve_public) != 0
        ||  walcast_connect (node->client, node->addr) != 0)
            walcast_destroy (&node->client);
    }
    return node->client;
}

int
cluster_status (cluster_t *self, int i, walcast_status_t *status)
{
    walcast_t *client = s_client (self, i);
    if (!client)
        return WALCAST_EUNAVAILABLE;
    int rc = walcast_status (client, status);
    if (rc != 0)
        walcast_destroy (&self->nodes [i].client);
    return rc;
}

int
cluster_digest (cluster_t *self, int i, uint64_t *seq, uint64_t *hash)
{
    walcast_t *client = s_client (self, i);
    if (!client)
        return WALCAST_EUNAVAILABLE;
    int rc = walcast_digest (client, seq, hash);
    if (rc != 0)
        walcast_destroy (&self->nodes [i].client);
    return rc;
}

int
cluster_wait_ready (cluster_t *self, int i, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    int rc = 0;
    while (cluster_now_ms () < deadline) {
        if (!cluster_running (self, i)) {
            fprintf (stderr, "cluster: node %s is not running\n", self->nodes [i].id);
            return -1;
        }
        walcast_status_t status;
        rc = cluster_status (self, i, &status);
        if (rc == 0)
            return 0;
        cluster_nap_ms (10);
    }
    fprintf (stderr, "cluster: node %s not ready after %d ms (last status: %s)\n",
             self->nodes [i].id, timeout_ms, walcast_errname (rc));
    return -1;
}

int
cluster_wait_converged (cluster_t *self, const int *nodes, int count,
                        uint64_t expect_seq, int timeout_ms,
                        uint64_t *seq_p, uint64_t *hash_p)
{
    if (count < 1 || count > CLUSTER_MAX_NODES)
        return -1;
    uint64_t seqs [CLUSTER_MAX_NODES] = { 0 };
    uint64_t hashes [CLUSTER_MAX_NODES] = { 0 };
    int errs [CLUSTER_MAX_NODES] = { 0 };
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (true) {
        bool same = true;
        for (int k = 0; k < count; k++) {
            if (!cluster_running (self, nodes [k])) {
                fprintf (stderr, "cluster: waiting for convergence: node %s is not running\n",
                         self->nodes [nodes [k]].id);
                return -1;
            }
            errs [k] = cluster_digest (self, nodes [k], &seqs [k], &hashes [k]);
            if (errs [k] != 0
            ||  seqs [k] != seqs [0] || hashes [k] != hashes [0]
            ||  (expect_seq && seqs [k] != expect_seq))
                same = false;
        }
        if (same) {
            if (seq_p)
                *seq_p = seqs [0];
            if (hash_p)
                *hash_p = hashes [0];
            return 0;
        }
        if (cluster_now_ms () > deadline)
            break;
        cluster_nap_ms (20);
    }
    fprintf (stderr, "cluster: nodes did not converge within %d ms", timeout_ms);
    if (expect_seq)
        fprintf (stderr, " on seq %llu", (unsigned long long) expect_seq);
    fprintf (stderr, "; last digests:\n");
    for (int k = 0; k < count; k++) {
        if (errs [k])
            fprintf (stderr, "cluster:   %-8s error %s\n",
                     self->nodes [nodes [k]].id, walcast_errname (errs [k]));
        else
            fprintf (stderr, "cluster:   %-8s seq %llu hash %016llx\n",
                     self->nodes [nodes [k]].id, (unsigned long long) seqs [k],
                     (unsigned long long) hashes [k]);
    }
    return -1;
}

walcast_t *
cluster_client (cluster_t *self, int i)
{
    walcast_t *client = walcast_new ();
    if (!client)
        return NULL;
    walcast_set_timeout (client, 10000);
    if (s_secure (self, client, self->nodes [i].curve_public) != 0
    ||  walcast_connect (client, self->nodes [i].addr) != 0)
        walcast_destroy (&client);
    return client;
}

void
cluster_key (int n, char *buf, size_t size)
{
    snprintf (buf, size, "k%08d", n);
}

void
cluster_value (int n, int round, char *buf)
{
    int len = snprintf (buf, CLUSTER_VALUE_LEN + 1, "key %08d round %d:", n, round);
    uint64_t x = ((uint64_t) n + 1) * 0x9E3779B97F4A7C15ull
               ^ ((uint64_t) round + 1) * 0xC2B2AE3D27D4EB4Full;
    for (int k = len; k < CLUSTER_VALUE_LEN; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf [k] = (char) ('a' + x % 26);
    }
    buf [CLUSTER_VALUE_LEN] = 0;
}

int
cluster_load (cluster_t *self, int i, int first, int count, int round,
              walcast_pos_t *last)
{
    walcast_t *client = walcast_new ();
    if (!client)
        return WALCAST_ENOMEM;
    walcast_set_timeout (client, 30000);
    int rc = s_secure (self, client, self->nodes [i].curve_public);
    if (rc == 0)
        rc = walcast_connect (client, self->nodes [i].addr);
    char key [32], value [CLUSTER_VALUE_LEN + 1];
    int n = first;
    for (; rc == 0 && n < first + count; n++) {
        cluster_key (n, key, sizeof key);
        cluster_value (n, round, value);
        rc = walcast_put_async (client, key, strlen (key), value, CLUSTER_VALUE_LEN,
                               (uint64_t) n);
    }
    if (rc != 0)
        fprintf (stderr, "cluster: put_async of key %d on %s: %s (%s)\n", n - 1,
                 self->nodes [i].id, walcast_errname (rc), walcast_last_detail (client));
    uint64_t acked = 0;
    walcast_pos_t pos = { 0, 0 };
    int frc = walcast_flush (client, &pos, &acked);
    if (frc != 0)
        fprintf (stderr, "cluster: flush on %s: %s (%s)\n", self->nodes [i].id,
                 walcast_errname (frc), walcast_last_detail (client));
    if (rc == 0)
        rc = frc;
    if (rc == 0 && acked != (uint64_t) count) {
        fprintf (stderr, "cluster: load of %d writes on %s: flush acked %llu\n",
                 count, self->nodes [i].id, (unsigned long long) acked);
        rc = WALCAST_EPROTO;
    }
    if (last)
        *last = pos;
    walcast_destroy (&client);
    return rc;
}

int
cluster_check_key (cluster_t *self, int i, int n, int round)
{
    walcast_t *client = cluster_client (self, i);
    if (!client)
        return -1;
    char key [32], expect [CLUSTER_VALUE_LEN + 1];
    cluster_key (n, key, sizeof key);
    cluster_value (n, round, expect);
    void *value = NULL;
    size_t len = 0;
    int rc = walcast_get (client, key, strlen (key), &value, &len, NULL);
    int result = 0;
    if (rc != 0) {
        fprintf (stderr, "cluster: get %s from %s: %s\n", key, self->nodes [i].id,
                 walcast_errname (rc));
        result = -1;
    }
    else
    if (len != CLUSTER_VALUE_LEN || memcmp (value, expect, len) != 0) {
        fprintf (stderr, "cluster: get %s from %s: got %zu bytes \"%.*s\", expected \"%s\"\n",
                 key, self->nodes [i].id, len, (int) (len > 200 ? 200 : len),
                 value ? (const char *) value : "", expect);
        result = -1;
    }
    free (value);
    walcast_destroy (&client);
    return result;
}

//  Read the log at path from offset `from` into a malloc'd NUL-terminated
//  buffer, or NULL.
static char *
s_read_log (const char *path, long from)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    if (from < 0 || from > size)
        from = size;
    fseek (file, from, SEEK_SET);
    char *text = malloc ((size_t) (size - from) + 1);
    size_t got = text ? fread (text, 1, (size_t) (size - from), file) : 0;
    if (text)
        text [got] = 0;
    fclose (file);
    return text;
}

//  The msg value of a log line (ts=... level=... msg="..."), unescaped
//  into buf (\" \\ \n \r \t \xHH undone); NULL when the line has none.
//  line ends at eol.
static const char *
s_msg (const char *line, const char *eol, char *buf, size_t size)
{
    const char *p = line;
    while (p + 5 <= eol && memcmp (p, "msg=\"", 5) != 0)
        p++;
    if (p + 5 > eol || size == 0)
        return NULL;
    size_t len = 0;
    for (p += 5; p < eol && *p != '"' && len + 1 < size; p++) {
        char c = *p;
        if (c == '\\' && p + 1 < eol) {
            c = *++p;
            if (c == 'n' || c == 'r' || c == 't')
                c = c == 'n' ? '\n' : c == 'r' ? '\r' : '\t';
            else if (c == 'x' && p + 2 < eol) {
                char hex [3] = { p [1], p [2], 0 };
                c = (char) strtol (hex, NULL, 16);
                p += 2;
            }
        }
        buf [len++] = c;
    }
    buf [len] = 0;
    return buf;
}

//  The message of line (its msg value) when it starts with prefix, else
//  NULL. line ends at eol; buf holds the message.
static const char *
s_match (const char *line, const char *eol, const char *prefix, char *buf,
         size_t size)
{
    const char *msg = s_msg (line, eol, buf, size);
    if (msg && strncmp (msg, prefix, strlen (prefix)) == 0)
        return msg;
    return NULL;
}

//  Size of the file at path (0 when missing).
static long
s_file_size (const char *path)
{
    struct stat st;
    if (stat (path, &st) != 0)
        return 0;
    return (long) st.st_size;
}

//  The nth line of the log at path after `from` whose message starts
//  with prefix, copied into buf (may be NULL); or, with nth < 0, how many
//  there are. Returns 0 / -1 (found or not), or the count.
static int
s_log_scan (const char *path, const char *prefix, long from, int nth, char *buf,
            size_t size)
{
    char *text = s_read_log (path, from);
    if (!text)
        return nth < 0 ? 0 : -1;
    int found = 0, rc = -1;
    char *line = text;
    while (*line) {
        char *eol = strchr (line, '\n');
        if (!eol)
            eol = line + strlen (line);
        char msg [4096];
        const char *match = s_match (line, eol, prefix, msg, sizeof msg);
        if (match && nth >= 0 && found == nth) {
            if (buf && size)
                snprintf (buf, size, "%s", match);
            rc = 0;
            break;
        }
        found += match != NULL;
        line = *eol ? eol + 1 : eol;
    }
    free (text);
    return nth < 0 ? found : rc;
}

//  Poll the log at path until a line after `from` starts with prefix.
static int
s_log_wait (const char *path, const char *prefix, long from, int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (s_log_scan (path, prefix, from, -1, NULL, 0) == 0) {
        if (cluster_now_ms () > deadline) {
            fprintf (stderr, "cluster: no \"%s\" line in %s within %d ms\n",
                     prefix, path, timeout_ms);
            return -1;
        }
        cluster_nap_ms (10);
    }
    return 0;
}

long
cluster_log_mark (cluster_t *self, int i)
{
    return s_file_size (self->nodes [i].log);
}

int
cluster_log_find (cluster_t *self, int i, const char *prefix, long from,
                  int nth, char *buf, size_t size)
{
    return s_log_scan (self->nodes [i].log, prefix, from, nth < 0 ? 0 : nth, buf, size);
}

int
cluster_log_count (cluster_t *self, int i, const char *prefix, long from)
{
    return s_log_scan (self->nodes [i].log, prefix, from, -1, NULL, 0);
}

int
cluster_wait_log (cluster_t *self, int i, const char *prefix, long from,
                  int timeout_ms)
{
    return s_log_wait (self->nodes [i].log, prefix, from, timeout_ms);
}

long
cluster_broker_log_mark (cluster_t *self)
{
    return s_file_size (cluster_broker_log_path (self));
}

int
cluster_broker_log_find (cluster_t *self, const char *prefix, long from, int nth,
                         char *buf, size_t size)
{
    return s_log_scan (cluster_broker_log_path (self), prefix, from, nth < 0 ? 0 : nth,
                       buf, size);
}

int
cluster_broker_wait_log (cluster_t *self, const char *prefix, long from,
                         int timeout_ms)
{
    return s_log_wait (cluster_broker_log_path (self), prefix, from, timeout_ms);
}

void
cluster_print_tail (cluster_t *self, int i, int lines)
{
    s_print_file_tail (self->nodes [i].log, self->nodes [i].id, lines);
}

//  Print the last `lines` lines of the file at path, each prefixed by label.
static void
s_print_file_tail (const char *path, const char *label, int lines)
{
    FILE *file = fopen (path, "r");
    char *text = NULL;
    if (file) {
        fseek (file, 0, SEEK_END);
        long size = ftell (file);
        fseek (file, 0, SEEK_SET);
        text = malloc ((size_t) (size > 0 ? size : 0) + 1);
        if (text)
            text [fread (text, 1, (size_t) (size > 0 ? size : 0), file)] = 0;
        fclose (file);
    }
    if (!text) {
        fprintf (stderr, "cluster:   (no log)\n");
        return;
    }
    size_t len = strlen (text);
    size_t start = len;
    int seen = 0;
    //  Walk back over `lines` line ends (a final newline does not count)
    while (start > 0) {
        if (text [start - 1] == '\n' && start != len && ++seen == lines)
            break;
        start--;
    }
    char *line = text + start;
    while (*line) {
        char *eol = strchr (line, '\n');
        int n = eol ? (int) (eol - line) : (int) strlen (line);
        fprintf (stderr, "  %s | %.*s\n", label, n, line);
        line += n + (eol ? 1 : 0);
    }
    free (text);
}

//  Read a whole file into a malloc'd NUL-terminated string ("" if none).
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "r");
    char *text = NULL;
    size_t len = 0;
    if (file) {
        fseek (file, 0, SEEK_END);
        long size = ftell (file);
        fseek (file, 0, SEEK_SET);
        text = malloc ((size_t) (size > 0 ? size : 0) + 1);
        if (text)
            len = fread (text, 1, (size_t) (size > 0 ? size : 0), file);
        fclose (file);
    }
    if (!text)
        text = calloc (1, 1);
    else
        text [len] = 0;
    return text;
}

int
cluster_cli (cluster_t *self, const char *input, char **out, char **err, ...)
{
    const char *args [64];
    int count = 0;
    va_list list;
    va_start (list, err);
    const char *arg;
    while ((arg = va_arg (list, const char *)) && count < 63)
        args [count++] = arg;
    va_end (list);
    args [count] = NULL;
    return cluster_cli_argv (self, input, out, err, args);
}

int
cluster_cli_argv (cluster_t *self, const char *input, char **out, char **err,
                  const char *const *args)
{
    const char *argv [64];
    int argc = 0;
    argv [argc++] = self->cli_bin;
    while (args [argc - 1] && argc < 63) {
        argv [argc] = args [argc - 1];
        argc++;
    }
    argv [argc] = NULL;

    char in_path [CLUSTER_PATH], out_path [CLUSTER_PATH], err_path [CLUSTER_PATH];
    snprintf (in_path, sizeof in_path, "%s/cli.in", self->dir);
    snprintf (out_path, sizeof out_path, "%s/cli.out", self->dir);
    snprintf (err_path, sizeof err_path, "%s/cli.err", self->dir);
    FILE *file = fopen (in_path, "w");
    if (!file)
        return -1;
    if (input)
        fputs (input, file);
    fclose (file);

    pid_t parent = getpid ();
    fflush (NULL);
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        int in = open (in_path, O_RDONLY);
        int o = open (out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open (err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || e < 0)
            _exit (127);
        dup2 (in, 0);
        dup2 (o, 1);
        dup2 (e, 2);
        signal (SIGPIPE, SIG_DFL);
        execv (argv [0], (char **) argv);
        _exit (127);
    }
    int64_t deadline = cluster_now_ms () + CLUSTER_CLI_TIMEOUT_MS;
    int status = 0;
    int result = -1;
    while (true) {
        pid_t rc = waitpid (pid, &status, WNOHANG);
        if (rc == pid) {
            if (WIFEXITED (status))
                result = WEXITSTATUS (status);
            else
                fprintf (stderr, "cluster: CLI %s killed by signal %d\n",
                         argc > 3 ? argv [3] : "", WTERMSIG (status));
            break;
        }
        if (rc < 0 && errno != EINTR)
            break;
        if (cluster_now_ms () > deadline) {
            fprintf (stderr, "cluster: CLI %s ran past %d ms; killing it\n",
                     argc > 3 ? argv [3] : "", CLUSTER_CLI_TIMEOUT_MS);
            kill (pid, SIGKILL);
            waitpid (pid, &status, 0);
            break;
        }
        cluster_nap_ms (2);
    }
    if (out)
        *out = s_slurp (out_path);
    if (err)
        *err = s_slurp (err_path);
    return result;
}


/* --- regions: node flags, broker, proxies, background CLI -------------

    The broker and the proxies are found through $WALCAST_BROKER and
    $WALCAST_PROXY when first needed, so tests that use neither do not
    depend on them. */

void
cluster_set_region (cluster_t *self, int i, const char *region)
{
    snprintf (self->nodes [i].region, sizeof self->nodes [i].region, "%s",
              region ? region : "");
}

void
cluster_set_advertise (cluster_t *self, int i, const char *host_port)
{
    snprintf (self->nodes [i].advertise, sizeof self->nodes [i].advertise, "%s",
              host_port ? host_port : "");
}

void
cluster_set_broker (cluster_t *self, int i, bool on)
{
    self->nodes [i].use_broker = on;
}

void
cluster_set_extra (cluster_t *self, int i, const char *const *args)
{
    cluster_node_t *node = &self->nodes [i];
    node->nextra = 0;
    for (int k = 0; args && args [k] && k < CLUSTER_MAX_EXTRA; k++)
        snprintf (node->extra [node->nextra++], sizeof node->extra [0], "%s", args [k]);
}

void
cluster_use_faults (cluster_t *self, int i)
{
    self->nodes [i].faults = true;
}

int
cluster_set_faults (cluster_t *self, int i, const char *rules)
{
    //  Written aside and renamed, so the node never reads half a file
    char tmp [CLUSTER_PATH + 8];
    snprintf (tmp, sizeof tmp, "%s.tmp", self->nodes [i].fault_file);
    FILE *file = fopen (tmp, "w");
    if (!file || fputs (rules, file) < 0 || fclose (file) != 0) {
        fprintf (stderr, "cluster: cannot write %s: %s\n", tmp, strerror (errno));
        return -1;
    }
    if (rename (tmp, self->nodes [i].fault_file) != 0) {
        fprintf (stderr, "cluster: rename %s: %s\n", tmp, strerror (errno));
        return -1;
    }
    return 0;
}

pid_t
cluster_pid (cluster_t *self, int i)
{
    return self->nodes [i].pid;
}

long
cluster_memory_kb (pid_t pid, const char *field)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    long kb = -1;
    size_t len = strlen (field);
    while (fgets (line, sizeof line, file))
        if (strncmp (line, field, len) == 0 && line [len] == ':') {
            kb = atol (line + len + 1);
            break;
        }
    fclose (file);
    return kb;
}

const char *
cluster_id (cluster_t *self, int i)
{
    return self->nodes [i].id;
}

const char *
cluster_broker_addr (cluster_t *self)
{
    return self->broker_addr;
}

//  A new proc slot named name, or -1 when the table is full.
static int
s_proc_new (cluster_t *self, const char *name)
{
    if (self->nprocs >= CLUSTER_MAX_PROCS) {
        fprintf (stderr, "cluster: more than %d helper processes\n", CLUSTER_MAX_PROCS);
        return -1;
    }
    int k = self->nprocs++;
    cluster_proc_t *proc = &self->procs [k];
    memset (proc, 0, sizeof *proc);
    snprintf (proc->name, sizeof proc->name, "%s", name);
    snprintf (proc->log, sizeof proc->log, "%s/%s.log", self->dir, name);
    return k;
}

//  Start proc k as argv (argv[0] is the binary): stdin /dev/null, stdout
//  to proc->out (truncated) or /dev/null, stderr appended to proc->log.
static int
s_proc_spawn (cluster_t *self, int k, const char **argv)
{
    cluster_proc_t *proc = &self->procs [k];
    if (proc->pid) {
        fprintf (stderr, "cluster: %s is already running\n", proc->name);
        return -1;
    }
    int log = open (proc->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) {
        fprintf (stderr, "cluster: open %s: %s\n", proc->log, strerror (errno));
        return -1;
    }
    dprintf (log, "=== cluster: start of %s:", proc->name);
    for (int a = 0; argv [a]; a++)
        dprintf (log, " %s", argv [a]);
    dprintf (log, " ===\n");
    int out = *proc->out
            ? open (proc->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
            : open ("/dev/null", O_WRONLY | O_CLOEXEC);
    if (out < 0) {
        fprintf (stderr, "cluster: open stdout of %s: %s\n", proc->name, strerror (errno));
        close (log);
        return -1;
    }
    pid_t parent = getpid ();
    fflush (NULL);
    pid_t pid = fork ();
    if (pid < 0) {
        fprintf (stderr, "cluster: fork: %s\n", strerror (errno));
        close (log);
        close (out);
        return -1;
    }
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        int null = open ("/dev/null", O_RDONLY);
        if (null < 0)
            _exit (127);
        dup2 (null, 0);
        dup2 (out, 1);
        dup2 (log, 2);
        signal (SIGPIPE, SIG_DFL);
        execv (argv [0], (char **) argv);
        dprintf (2, "cluster: execv %s: %s\n", argv [0], strerror (errno));
        _exit (127);
    }
    close (log);
    close (out);
    proc->pid = pid;
    return 0;
}

//  Describe how proc k ended; returns its exit status, or 128 + signal.
static int
s_proc_reaped (cluster_t *self, int k, int status, const char *when)
{
    cluster_proc_t *proc = &self->procs [k];
    proc->pid = 0;
    if (WIFEXITED (status)) {
        if (WEXITSTATUS (status) != 0 && proc->must_exit_clean)
            fprintf (stderr, "cluster: %s %s: exit status %d (see %s)\n",
                     proc->name, when, WEXITSTATUS (status), proc->log);
        return WEXITSTATUS (status);
    }
    if (proc->must_exit_clean)
        fprintf (stderr, "cluster: %s %s: killed by signal %d (%s)\n", proc->name,
                 when, WTERMSIG (status), strsignal (WTERMSIG (status)));
    return 128 + WTERMSIG (status);
}

int
cluster_proc_wait (cluster_t *self, int k, int timeout_ms)
{
    if (k < 0 || k >= self->nprocs || !self->procs [k].pid)
        return -1;
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (true) {
        int status = 0;
        pid_t rc = waitpid (self->procs [k].pid, &status, WNOHANG);
        if (rc == self->procs [k].pid)
            return s_proc_reaped (self, k, status, "exited");
        if ((rc < 0 && errno != EINTR) || cluster_now_ms () > deadline)
            return -1;
        cluster_nap_ms (5);
    }
}

int
cluster_proc_stop (cluster_t *self, int k, int timeout_ms)
{
    if (k < 0 || k >= self->nprocs || !self->procs [k].pid)
        return -1;
    cluster_proc_t *proc = &self->procs [k];
    if (proc->stopped)
        kill (proc->pid, SIGCONT);
    proc->stopped = false;
    kill (proc->pid, SIGTERM);
    int64_t deadline = cluster_now_ms () + timeout_ms;
    int status = 0;
    while (true) {
        pid_t rc = waitpid (proc->pid, &status, WNOHANG);
        if (rc == proc->pid)
            return s_proc_reaped (self, k, status, "after SIGTERM");
        if (rc < 0 && errno != EINTR) {
            proc->pid = 0;
            return -1;
        }
        if (cluster_now_ms () > deadline) {
            fprintf (stderr, "cluster: %s did not exit %d ms after SIGTERM; "
                     "sending SIGKILL\n", proc->name, timeout_ms);
            kill (proc->pid, SIGKILL);
            while (waitpid (proc->pid, &status, 0) < 0 && errno == EINTR)
                ;
            proc->pid = 0;
            return 128 + SIGKILL;
        }
        cluster_nap_ms (5);
    }
}

//  True when a TCP connection to 127.0.0.1:port is accepted.
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

//  True while proc k runs (reaps it and says so otherwise).
static bool
s_proc_running (cluster_t *self, int k)
{
    cluster_proc_t *proc = &self->procs [k];
    if (!proc->pid)
        return false;
    int status;
    if (waitpid (proc->pid, &status, WNOHANG) == proc->pid) {
        s_proc_reaped (self, k, status, "exited unexpectedly");
        fprintf (stderr, "cluster: %s exited unexpectedly (see %s)\n", proc->name,
                 proc->log);
        return false;
    }
    return true;
}

bool
cluster_proc_running (cluster_t *self, int k)
{
    return k >= 0 && k < self->nprocs && s_proc_running (self, k);
}

int
cluster_broker_start (cluster_t *self, int node_timeout_ms)
{
    if (self->broker < 0) {
        int k = s_proc_new (self, "broker");
        if (k < 0)
            return -1;
        self->procs [k].must_exit_clean = true;
        self->broker = k;
    }
    char bin [CLUSTER_PATH];
    if (!s_find_binary ("WALCAST_BROKER", bin, sizeof bin))
        return -1;
    int port = self->base_port + 80;
    char port_arg [16], timeout_arg [16];
    snprintf (port_arg, sizeof port_arg, "%d", port);
    snprintf (timeout_arg, sizeof timeout_arg, "%d", node_timeout_ms);
    const char *argv [8 + CLUSTER_MAX_EXTRA] = { bin, "--port", port_arg, NULL };
    int argc = 3;
    if (node_timeout_ms > 0) {
        argv [argc++] = "--node-timeout";
        argv [argc++] = timeout_arg;
    }
    for (int a = 0; a < self->nbroker_extra; a++)
        argv [argc++] = self->broker_extra [a];
    argv [argc] = NULL;
    if (s_proc_spawn (self, self->broker, argv) != 0)
        return -1;
    int64_t deadline = cluster_now_ms () + 10000;
    while (!(s_port_open (port) && s_port_open (port + 1))) {
        if (!s_proc_running (self, self->broker))
            return -1;
        if (cluster_now_ms () > deadline) {
            fprintf (stderr, "cluster: broker not listening on %d/%d after 10 s\n",
                     port, port + 1);
            return -1;
        }
        cluster_nap_ms (5);
    }
    return 0;
}

void
cluster_set_broker_extra (cluster_t *self, const char *const *args)
{
    self->nbroker_extra = 0;
    for (int a = 0; args && args [a] && a < CLUSTER_MAX_EXTRA; a++)
        snprintf (self->broker_extra [self->nbroker_extra++], CLUSTER_PATH, "%s",
                  args [a]);
}

const char *
cluster_broker_log_path (cluster_t *self)
{
    snprintf (self->broker_log, sizeof self->broker_log, "%s/broker.log", self->dir);
    return self->broker_log;
}

int
cluster_broker_kill (cluster_t *self)
{
    if (self->broker < 0 || !self->procs [self->broker].pid)
        return -1;
    cluster_proc_t *proc = &self->procs [self->broker];
    kill (proc->pid, SIGKILL);
    int status;
    while (waitpid (proc->pid, &status, 0) < 0 && errno == EINTR)
        ;
    proc->pid = 0;
    return 0;
}

pid_t
cluster_broker_pid (cluster_t *self)
{
    if (self->broker < 0)
        return 0;
    return self->procs [self->broker].pid;
}

walcast_t *
cluster_broker_client (cluster_t *self, int timeout_ms)
{
    walcast_t *client = walcast_new ();
    if (!client)
        return NULL;
    walcast_set_timeout (client, timeout_ms);
    int rc = s_secure (self, client, NULL);
    if (rc == 0)
        rc = walcast_connect_broker (client, self->broker_addr);
    if (rc != 0) {
        fprintf (stderr, "cluster: walcast_connect_broker %s: %s (%s)\n",
                 self->broker_addr, walcast_errname (rc), walcast_last_detail (client));
        walcast_destroy (&client);
    }
    return client;
}

int
cluster_proxy_port (cluster_t *self, int k)
{
    return self->base_port + 60 + 3 * k;
}

const char *
cluster_proxy_addr (cluster_t *self, int k)
{
    return self->proxy_addr [k];
}

int
cluster_proxy_start_split (cluster_t *self, int i, int service_ms, int stream_ms,
                           int catchup_ms)
{
    if (self->nproxies >= CLUSTER_MAX_PROXIES) {
        fprintf (stderr, "cluster: more than %d proxies\n", CLUSTER_MAX_PROXIES);
        return -1;
    }
    char bin [CLUSTER_PATH];
    if (!s_find_binary ("WALCAST_PROXY", bin, sizeof bin))
        return -1;
    int k = self->nproxies;
    char name [64];
    snprintf (name, sizeof name, "proxy%d-%s", k, self->nodes [i].id);
    int proc = s_proc_new (self, name);
    if (proc < 0)
        return -1;
    self->procs [proc].must_exit_clean = true;

    int listen = cluster_proxy_port (self, k), target = self->nodes [i].port;
    int delays [3] = { service_ms, stream_ms, catchup_ms };
    char delay_arg [16], pairs [3][48];
    snprintf (delay_arg, sizeof delay_arg, "%d", service_ms);
    const char *argv [8] = { bin, "--delay", delay_arg };
    for (int p = 0; p < 3; p++) {
        snprintf (pairs [p], sizeof pairs [p], "%d:%d/%d", listen + p, target + p,
                  delays [p]);
        argv [3 + p] = pairs [p];
    }
    argv [6] = NULL;
    long mark = 0;
    struct stat st;
    if (stat (self->procs [proc].log, &st) == 0)
        mark = (long) st.st_size;
    if (s_proc_spawn (self, proc, argv) != 0)
        return -1;
    self->proxy_proc [k] = proc;
    self->nproxies++;
    snprintf (self->proxy_addr [k], sizeof self->proxy_addr [k], "127.0.0.1:%d", listen);

    //  Ready once it says so in its log
    int64_t deadline = cluster_now_ms () + 10000;
    while (true) {
        char *text = s_slurp (self->procs [proc].log);
        bool ready = strlen (text) > (size_t) mark
                  && strstr (text + mark, "latency-proxy: ready") != NULL;
        free (text);
        if (ready)
            return k;
        if (!s_proc_running (self, proc))
            return -1;
        if (cluster_now_ms () > deadline) {
            fprintf (stderr, "cluster: %s not ready after 10 s\n", name);
            return -1;
        }
        cluster_nap_ms (5);
    }
}

int
cluster_proxy_signal (cluster_t *self, int k, int sig)
{
    if (k < 0 || k >= self->nproxies)
        return -1;
    cluster_proc_t *proc = &self->procs [self->proxy_proc [k]];
    if (!proc->pid || kill (proc->pid, sig) != 0) {
        fprintf (stderr, "cluster: cannot send signal %d to %s\n", sig, proc->name);
        return -1;
    }
    if (sig == SIGSTOP)
        proc->stopped = true;
    else
    if (sig == SIGCONT)
        proc->stopped = false;
    return 0;
}

int
cluster_proxy_start (cluster_t *self, int i, int delay_ms)
{
    return cluster_proxy_start_split (self, i, delay_ms, delay_ms, delay_ms);
}

int
cluster_cli_spawn (cluster_t *self, ...)
{
    char name [32];
    snprintf (name, sizeof name, "cli%d", self->nprocs);
    int k = s_proc_new (self, name);
    if (k < 0)
        return -1;
    cluster_proc_t *proc = &self->procs [k];
    snprintf (proc->out, sizeof proc->out, "%s/%s.out", self->dir, name);
    const char *argv [64];
    int argc = 0;
    argv [argc++] = self->cli_bin;
    va_list args;
    va_start (args, self);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < 63)
        argv [argc++] = arg;
    va_end (args);
    argv [argc] = NULL;
    return s_proc_spawn (self, k, argv) == 0 ? k : -1;
}

int
cluster_proc_signal (cluster_t *self, int k, int sig)
{
    if (k < 0 || k >= self->nprocs)
        return -1;
    cluster_proc_t *proc = &self->procs [k];
    if (!proc->pid || kill (proc->pid, sig) != 0) {
        fprintf (stderr, "cluster: cannot send signal %d to %s\n", sig, proc->name);
        return -1;
    }
    if (sig == SIGSTOP)
        proc->stopped = true;
    else
    if (sig == SIGCONT)
        proc->stopped = false;
    return 0;
}

char *
cluster_proc_output (cluster_t *self, int k)
{
    if (k < 0 || k >= self->nprocs || !*self->procs [k].out)
        return calloc (1, 1);
    return s_slurp (self->procs [k].out);
}

char *
cluster_proc_errors (cluster_t *self, int k)
{
    if (k < 0 || k >= self->nprocs || !*self->procs [k].log)
        return calloc (1, 1);
    char *text = s_slurp (self->procs [k].log);
    return text ? text : calloc (1, 1);
}

int
cluster_parse_served (const char *text, char *id, size_t id_size,
                      char *region, size_t region_size, double *rtt_ms)
{
    const char *at = text ? strstr (text, "served by ") : NULL;
    if (!at)
        return -1;
    char id_buf [65] = "", region_buf [65] = "";
    double rtt = -1;
    if (sscanf (at, "served by %64s (%64[^,], %lf ms)", id_buf, region_buf, &rtt) < 2)
        return -1;
    if (id)
        snprintf (id, id_size, "%s", id_buf);
    if (region)
        snprintf (region, region_size, "%s", region_buf);
    if (rtt_ms)
        *rtt_ms = rtt;
    return 0;
}

int
cluster_status_state (const char *status_out, const char *id)
{
    size_t id_len = strlen (id);
    const char *line = status_out;
    while (line && *line) {
        const char *eol = strchr (line, '\n');
        size_t len = eol ? (size_t) (eol - line) : strlen (line);
        const char *start = line;
        while (start < line + len && (*start == ' ' || *start == '\t'))
            start++;
        if ((size_t) (line + len - start) > id_len && memcmp (start, id, id_len) == 0
        &&  (start [id_len] == ' ' || start [id_len] == '\t')) {
            //  The state is the last word of the line
            const char *end = line + len;
            while (end > start && (end [-1] == ' ' || end [-1] == '\t' || end [-1] == '\r'))
                end--;
            const char *word = end;
            while (word > start && word [-1] != ' ' && word [-1] != '\t')
                word--;
            if (end - word == 2 && memcmp (word, "up", 2) == 0)
                return 1;
            if (end - word == 4 && memcmp (word, "down", 4) == 0)
                return 0;
            return -1;
        }
        line = eol ? eol + 1 : NULL;
    }
    return -1;
}

int
cluster_cli_read (cluster_t *self, const char *const *args,
                  char *value, size_t value_size, char *id, size_t id_size,
                  char *region, size_t region_size)
{
    char *out = NULL, *err = NULL;
    int rc = cluster_cli_argv (self, NULL, &out, &err, args);
    size_t len = out ? strlen (out) : 0;
    if (len && out [len - 1] == '\n')
        out [--len] = 0;
    if (value)
        snprintf (value, value_size, "%s", out ? out : "");
    if (id)
        *id = 0;
    if (region)
        *region = 0;
    cluster_parse_served (err, id, id_size, region, region_size, NULL);
    if (rc != 0) {
        fprintf (stderr, "cluster: CLI");
        for (int k = 0; args [k]; k++)
            fprintf (stderr, " %s", args [k]);
        fprintf (stderr, ": exit %d, stderr: %s\n", rc, err ? err : "");
    }
    free (out);
    free (err);
    return rc;
}
