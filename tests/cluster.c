/*  cluster.c - start, stop, poll and inspect walcast nodes for tests.

    See cluster.h for the shape. Processes are plain fork + execv children
    of the test: stdin and stdout on /dev/null, stderr appended to the
    node's log file, PR_SET_PDEATHSIG = SIGKILL so a crashed or killed test
    never leaves nodes behind. Every child is reaped with waitpid, and how
    it ended is printed when that was not a clean exit.

    Polling goes through one cached client handle per node with a short
    timeout; the handle is thrown away after any error so that a restarted
    or resumed node gets a fresh connection.
*/
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
} cluster_node_t;

struct cluster {
    char           name [64];     /* test name, in messages */
    char           dir [256];     /* temporary directory */
    char           node_bin [CLUSTER_PATH];
    char           cli_bin [CLUSTER_PATH];
    int            base_port;     /* node i is base_port + 10 * i */
    bool           passed;        /* cluster_pass() was called */
    int            count;         /* nodes declared */
    cluster_node_t nodes [CLUSTER_MAX_NODES];
};


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
cluster_new (const char *name, int base_port)
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
    const char *offset = getenv ("WALCAST_TEST_PORT_OFFSET");
    self->base_port = base_port + (offset ? atoi (offset) : 0);

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
    int rc = cluster_term_all (self);
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
    const char *argv [16];
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
    argv [argc] = NULL;

    pid_t parent = getpid ();
    fflush (NULL);
    pid_t pid = fork ();
    if (pid < 0) {
        fprintf (stderr, "cluster: fork: %s\n", strerror (errno));
        close (fd);
        return -1;
    }
    if (pid == 0) {
        //  Child: never outlive the test, then become the node
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        int null = open ("/dev/null", O_RDWR);
        if (null < 0)
            _exit (127);
        dup2 (null, 0);
        dup2 (null, 1);
        dup2 (fd, 2);
        signal (SIGPIPE, SIG_DFL);
        execv (argv [0], (char **) argv);
        dprintf (2, "cluster: execv %s: %s\n", argv [0], strerror (errno));
        _exit (127);
    }
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
        if (walcast_connect (node->client, node->addr) != 0)
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
    if (walcast_connect (client, self->nodes [i].addr) != 0)
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
    int rc = walcast_connect (client, self->nodes [i].addr);
    char key [32], value [CLUSTER_VALUE_LEN + 1];
    int n = first;
    for (; rc == 0 && n < first + count; n++) {
        cluster_key (n, key, sizeof key);
        cluster_value (n, round, value);
        rc = walcast_put_async (client, key, strlen (key), value, CLUSTER_VALUE_LEN);
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

//  Read node i's log from offset `from` into a malloc'd NUL-terminated
//  buffer, or NULL.
static char *
s_read_log (cluster_t *self, int i, long from)
{
    FILE *file = fopen (self->nodes [i].log, "r");
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

//  Where prefix starts the message of line (at its start or after ": "),
//  or NULL. line ends at eol.
static const char *
s_match (const char *line, const char *eol, const char *prefix)
{
    size_t plen = strlen (prefix);
    if ((size_t) (eol - line) >= plen && memcmp (line, prefix, plen) == 0)
        return line;
    for (const char *p = line; p + 2 + plen <= eol; p++)
        if (p [0] == ':' && p [1] == ' ' && memcmp (p + 2, prefix, plen) == 0)
            return p + 2;
    return NULL;
}

long
cluster_log_mark (cluster_t *self, int i)
{
    struct stat st;
    if (stat (self->nodes [i].log, &st) != 0)
        return 0;
    return (long) st.st_size;
}

int
cluster_log_find (cluster_t *self, int i, const char *prefix, long from,
                  int nth, char *buf, size_t size)
{
    char *text = s_read_log (self, i, from);
    if (!text)
        return -1;
    int found = 0, rc = -1;
    char *line = text;
    while (*line) {
        char *eol = strchr (line, '\n');
        if (!eol)
            eol = line + strlen (line);
        const char *match = s_match (line, eol, prefix);
        if (match && found++ == nth) {
            if (buf && size)
                snprintf (buf, size, "%.*s", (int) (eol - match), match);
            rc = 0;
            break;
        }
        line = *eol ? eol + 1 : eol;
    }
    free (text);
    return rc;
}

int
cluster_log_count (cluster_t *self, int i, const char *prefix, long from)
{
    char *text = s_read_log (self, i, from);
    if (!text)
        return 0;
    int found = 0;
    char *line = text;
    while (*line) {
        char *eol = strchr (line, '\n');
        if (!eol)
            eol = line + strlen (line);
        if (s_match (line, eol, prefix))
            found++;
        line = *eol ? eol + 1 : eol;
    }
    free (text);
    return found;
}

int
cluster_wait_log (cluster_t *self, int i, const char *prefix, long from,
                  int timeout_ms)
{
    int64_t deadline = cluster_now_ms () + timeout_ms;
    while (cluster_log_count (self, i, prefix, from) == 0) {
        if (cluster_now_ms () > deadline) {
            fprintf (stderr, "cluster: no \"%s\" line in %s within %d ms\n",
                     prefix, self->nodes [i].log, timeout_ms);
            return -1;
        }
        cluster_nap_ms (10);
    }
    return 0;
}

void
cluster_print_tail (cluster_t *self, int i, int lines)
{
    char *text = s_read_log (self, i, 0);
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
        fprintf (stderr, "  %s | %.*s\n", self->nodes [i].id, n, line);
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
    const char *argv [64];
    int argc = 0;
    argv [argc++] = self->cli_bin;
    va_list args;
    va_start (args, err);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < 63)
        argv [argc++] = arg;
    va_end (args);
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
