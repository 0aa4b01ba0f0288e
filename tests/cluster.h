/*  cluster.h - a harness for tests that run real walcast nodes on loopback.

    A cluster_t is one test's world: a temporary directory (mkdtemp under
    /tmp) holding each node's data directory and log file, and up to
    CLUSTER_MAX_NODES walcast-node processes started from $WALCAST_NODE.
    Each cluster gets a block of 100 free ports at run time (tests/ports.h),
    so suites can run side by side; node i listens on base_port + 10 * i
    (and the two ports after it).

    Typical use, from a cmocka setup/teardown pair:

        cluster_t *c = cluster_new ("converge");   // NULL: skip
        int p = cluster_add (c, "p1", NULL, NULL);
        int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
        cluster_start (c, p); cluster_start (c, r);
        ... cluster_load, cluster_wait_converged ...
        cluster_pass (c);               // last line of a passing test
        cluster_destroy (&c);           // in the teardown

    Two ideas keep tests honest and debuggable:
    - Nothing waits with a fixed sleep. Every wait polls (status, digest, a
      log line, a file) against a deadline and says what it saw on timeout.
    - A test that does not reach cluster_pass() is a failure: destroy then
      keeps the directory, prints its path and the tail of every node's
      log (stderr of the node), which is how people find out what went
      wrong. A passing test leaves nothing behind (unless
      $WALCAST_TEST_KEEP is set).

    Nodes are started with PR_SET_PDEATHSIG = SIGKILL, so they never
    outlive the test process, whatever happens to it.

    Regions (issue 3). Besides nodes a test may run helper processes, each
    with its own log in the directory and reaped like a node:
    - a broker ($WALCAST_BROKER) on base_port + 80 (and + 81); nodes
      declared with cluster_set_broker() register with it;
    - latency proxies ($WALCAST_PROXY, tests/latency_proxy.c): proxy k
      puts a node's three ports behind base_port + 60 + 3k (k < 6), every
      byte delayed each way, so that node looks far away from whoever
      uses the proxy's address (a client, or a replica's --replica-of);
    - CLI runs in the background (a `walcast watch`, say), whose output
      the test reads while they run.
    Port map of one test: nodes base+0..52, proxies base+60..77, broker
    base+80..81, spare base+90..99.
*/
#ifndef WC_CLUSTER_H_INCLUDED
#define WC_CLUSTER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "walcast.h"

#define CLUSTER_MAX_NODES   6
#define CLUSTER_MAX_EXTRA   12            /* extra flags per node */
#define CLUSTER_VALUE_LEN   100           /* bytes of a generated value */

typedef struct cluster cluster_t;

/*  A new cluster for test `name` on a block of free ports. Returns NULL
    (after printing why) when $WALCAST_NODE or $WALCAST_CLI does not name
    an executable, or no ports are free: the test should then fail. */
cluster_t *cluster_new (const char *name);

/*  Stop every node (SIGCONT, SIGTERM, SIGKILL after a deadline), reap
    them, and remove the directory if cluster_pass() was called; otherwise
    keep it and print its path and every node's log tail. *self_p becomes
    NULL; safe with NULL. */
void cluster_destroy (cluster_t **self_p);

/*  Mark the test as passed (call it last). */
void cluster_pass (cluster_t *self);

/*  The test's temporary directory. */
const char *cluster_dir (cluster_t *self);

/*  Path of the CLI binary ($WALCAST_CLI). */
const char *cluster_cli_path (cluster_t *self);

/*  A free port range of the test for things other than nodes (a fake
    primary, say): base_port + 90 .. base_port + 99. */
int cluster_spare_port (cluster_t *self);

/*  Declare a node (not started): its id, the HOST:PORT of its primary
    (NULL for a primary) and its --fsync mode (NULL: node default).
    Returns its index. */
int cluster_add (cluster_t *self, const char *id, const char *replica_of,
                 const char *fsync);

/*  Point node i (while stopped) at another primary for its next start
    (NULL: start it as a primary). */
void cluster_set_replica_of (cluster_t *self, int i, const char *replica_of);

/*  Base port and "127.0.0.1:PORT" of node i. */
int cluster_port (cluster_t *self, int i);
const char *cluster_addr (cluster_t *self, int i);

/*  Path of node i's data directory (--data). */
const char *cluster_data_path (cluster_t *self, int i);

/*  Path of node i's log file (its stderr, appended across restarts). */
const char *cluster_log_path (cluster_t *self, int i);

/*  Start node i (fork + execv), on its existing data dir. A line
    "=== cluster: start #N ..." is appended to its log first; the log
    offset after it is kept (cluster_start_mark). Returns 0 or -1. */
int cluster_start (cluster_t *self, int i);

/*  Log offset at which node i's latest start began. */
long cluster_start_mark (cluster_t *self, int i);

/*  Send sig to node i (SIGSTOP / SIGCONT are tracked so destroy can
    resume a stopped node). Returns 0 or -1. */
int cluster_signal (cluster_t *self, int i, int sig);

/*  SIGKILL node i and reap it. */
int cluster_kill (cluster_t *self, int i);

/*  SIGTERM node i (after SIGCONT if stopped) and reap it within
    timeout_ms. Returns 0 when it exited with status 0, -1 otherwise
    (killed after the deadline, died by a signal, nonzero exit: all
    printed). */
int cluster_term (cluster_t *self, int i, int timeout_ms);

/*  cluster_term every running node; 0 when all exited cleanly. */
int cluster_term_all (cluster_t *self);

/*  True while node i's process is alive (reaps it otherwise and prints
    how it ended). */
bool cluster_running (cluster_t *self, int i);

/*  Poll walcast_status on node i until it answers; 0 or -1 (deadline,
    or the node died). */
int cluster_wait_ready (cluster_t *self, int i, int timeout_ms);

/*  One walcast_status / walcast_digest call to node i on a cached
    handle (rebuilt after any error). */
/*  CURVE (issue 9): every handle the harness makes from now on uses the
    key pair client_cert (a NAME_secret file; NULL or "": none again) and
    knows the broker's public certificate broker_public (may be NULL). */
void cluster_set_curve (cluster_t *self, const char *client_cert,
                        const char *broker_public);

/*  The public certificate of node i, for the harness's handles to it. */
void cluster_set_node_curve (cluster_t *self, int i, const char *public_cert);

int cluster_status (cluster_t *self, int i, walcast_status_t *status);
int cluster_digest (cluster_t *self, int i, uint64_t *seq, uint64_t *hash);

/*  Poll until nodes[0..count) report the same (seq, hash), and seq ==
    expect_seq unless expect_seq is 0. On success *seq / *hash (if not
    NULL) are the common digest. On timeout prints every node's last
    answer and returns -1. */
int cluster_wait_converged (cluster_t *self, const int *nodes, int count,
                            uint64_t expect_seq, int timeout_ms,
                            uint64_t *seq, uint64_t *hash);

/*  A new client handle connected to node i (timeout 10 s). The caller
    destroys it. */
walcast_t *cluster_client (cluster_t *self, int i);

/*  Key "k%08d" of key number n, and the CLUSTER_VALUE_LEN-byte value of
    key n written in round `round` (printable, NUL-terminated: buf has
    CLUSTER_VALUE_LEN + 1 bytes). */
void cluster_key (int n, char *buf, size_t size);
void cluster_value (int n, int round, char *buf);

/*  Write keys first .. first+count-1 with their round-`round` values
    through node i with walcast_put_async and one walcast_flush. *last
    (if not NULL) is the last acknowledged position. Returns 0, or the
    walcast error (printed). */
int cluster_load (cluster_t *self, int i, int first, int count, int round,
                  walcast_pos_t *last);

/*  Read key n from node i and compare it with its round-`round` value.
    Returns 0 when equal, -1 otherwise (printed). */
int cluster_check_key (cluster_t *self, int i, int n, int round);

/*  Current size of node i's log (an offset for the functions below). */
long cluster_log_mark (cluster_t *self, int i);

/*  Lines of node i's log after offset `from` whose message (the msg
    value of a line, runtime/log.h, unescaped) starts with prefix. */
int cluster_log_count (cluster_t *self, int i, const char *prefix, long from);

/*  Copy the nth (0-based) such line's message (from prefix to its end,
    unescaped) into buf. Returns 0, or -1 when there are fewer lines. */
int cluster_log_find (cluster_t *self, int i, const char *prefix, long from,
                      int nth, char *buf, size_t size);

/*  Poll until cluster_log_count(prefix, from) >= 1; 0 or -1. */
int cluster_wait_log (cluster_t *self, int i, const char *prefix, long from,
                      int timeout_ms);

/*  Print the last `lines` lines of node i's log on stderr. */
void cluster_print_tail (cluster_t *self, int i, int lines);

/*  Run the CLI with the NULL-terminated argument list (argv[1..]),
    stdin from `input` (NULL: /dev/null). Its stdout and stderr are
    returned as malloc'd NUL-terminated strings in *out / *err (if not
    NULL; the caller frees). Returns its exit status, or -1 when it died
    by a signal or ran past 30 s (printed). */
int cluster_cli (cluster_t *self, const char *input, char **out, char **err,
                 ...) __attribute__ ((sentinel));

/*  Same with the arguments in a NULL-terminated array. */
int cluster_cli_argv (cluster_t *self, const char *input, char **out, char **err,
                      const char *const *args);

/*  Monotonic clock in ms; a short nap for poll loops. */
int64_t cluster_now_ms (void);
void cluster_nap_ms (int ms);

/* --- regions: node flags, broker, proxies, background CLI ------------- */

#define CLUSTER_MAX_PROXIES   6
#define CLUSTER_MAX_PROCS     16          /* broker + proxies + CLI runs */

/*  Flags of node i for its next start: --region (NULL: none),
    --advertise HOST:PORT (NULL: the bound address) and --broker (the
    test's broker when on). */
void cluster_set_region (cluster_t *self, int i, const char *region);
void cluster_set_advertise (cluster_t *self, int i, const char *host_port);
void cluster_set_broker (cluster_t *self, int i, bool on);

/*  More flags for node i's next starts (NULL-terminated, at most
    CLUSTER_MAX_EXTRA), after the ones above; NULL clears them. */
void cluster_set_extra (cluster_t *self, int i, const char *const *args);

/*  Start node i with WALCAST_FAULT_FILE pointing at its fault file (the
    storage engine's test hook: storage/vfs.h), then write rules into it
    at any time ("write ENOSPC\n", "" for none). 0 or -1. */
void cluster_use_faults (cluster_t *self, int i);
int cluster_set_faults (cluster_t *self, int i, const char *rules);

/*  Process id of node i (0 when not running), and a memory figure of a
    process in kB from /proc/PID/status ("VmRSS", "VmHWM" the peak), or -1. */
pid_t cluster_pid (cluster_t *self, int i);
long cluster_memory_kb (pid_t pid, const char *field);

/*  Node i's id. */
const char *cluster_id (cluster_t *self, int i);

/*  The broker's "127.0.0.1:PORT" (whether or not it runs). */
const char *cluster_broker_addr (cluster_t *self);

/*  Start the broker with --node-timeout node_timeout_ms (0: its default)
    and wait until both its ports accept connections. 0 or -1. */
int cluster_broker_start (cluster_t *self, int node_timeout_ms);

/*  More flags for the broker's next starts (NULL-terminated, at most
    CLUSTER_MAX_EXTRA, after --port and --node-timeout: --data DIR,
    --failover-timeout MS, --region-priority LIST...); NULL clears them. */
void cluster_set_broker_extra (cluster_t *self, const char *const *args);

/*  Path of the broker's log file (its stderr, appended across restarts). */
const char *cluster_broker_log_path (cluster_t *self);

/*  The broker's log, as cluster_log_mark, cluster_log_find and
    cluster_wait_log read a node's. */
long cluster_broker_log_mark (cluster_t *self);
int cluster_broker_log_find (cluster_t *self, const char *prefix, long from, int nth,
                             char *buf, size_t size);
int cluster_broker_wait_log (cluster_t *self, const char *prefix, long from,
                             int timeout_ms);

/*  SIGKILL the broker and reap it (0, or -1 when it was not running). */
int cluster_broker_kill (cluster_t *self);

/*  Process id of the running broker (to read /proc/PID/status, say), or
    0 when it does not run. */
pid_t cluster_broker_pid (cluster_t *self);

/*  A new client handle connected through the broker (walcast_connect_
    broker) with the given timeout; NULL (printed) on failure. */
walcast_t *cluster_broker_client (cluster_t *self, int timeout_ms);

/*  Start a latency proxy in front of node i: the node's ports P, P+1,
    P+2 become reachable at Q, Q+1, Q+2 (Q = base_port + 60 + 3k for the
    returned index k), each byte delayed delay_ms each way. The node need
    not run yet. Waits until the proxy listens. Returns k, or -1. */
int cluster_proxy_start (cluster_t *self, int i, int delay_ms);

/*  Same with a delay per port: service (P), stream (P+1), catch-up (P+2). */
int cluster_proxy_start_split (cluster_t *self, int i, int service_ms,
                               int stream_ms, int catchup_ms);

/*  Send sig to proxy k: SIGSTOP freezes the link (nothing passes, in
    either direction, until SIGCONT). Returns 0 or -1. */
int cluster_proxy_signal (cluster_t *self, int k, int sig);

/*  Base port and "127.0.0.1:PORT" of proxy k. */
int cluster_proxy_port (cluster_t *self, int k);
const char *cluster_proxy_addr (cluster_t *self, int k);

/*  Run the CLI in the background with the NULL-terminated arguments;
    its stdout and stderr go to files in the test directory. Returns a
    process handle for the two functions below, or -1. */
int cluster_cli_spawn (cluster_t *self, ...) __attribute__ ((sentinel));

/*  True while a background process runs (reaps it and says how it ended
    otherwise). */
bool cluster_proc_running (cluster_t *self, int proc);

/*  Send sig to a background process (SIGSTOP / SIGCONT are tracked, so
    that stopping it or destroy resumes it first). Returns 0 or -1. */
int cluster_proc_signal (cluster_t *self, int proc, int sig);

/*  Everything the background process wrote on stdout so far (malloc'd,
    NUL-terminated; the caller frees). */
char *cluster_proc_output (cluster_t *self, int proc);

/*  The same of its stderr. */
char *cluster_proc_errors (cluster_t *self, int proc);

/*  Wait up to timeout_ms for a background process to end by itself and
    reap it. Returns its exit status (128 + signal when a signal ended
    it), or -1 when it still runs at the deadline. */
int cluster_proc_wait (cluster_t *self, int proc, int timeout_ms);

/*  SIGTERM a background process (SIGKILL after timeout_ms) and reap it.
    Returns its exit status, or 128 + signal when a signal ended it. */
int cluster_proc_stop (cluster_t *self, int proc, int timeout_ms);

/*  Parse the "served by ID (REGION, RTT ms)" line a `walcast -v` read
    prints on stderr. id / region (may be NULL) get the names. Returns 0,
    or -1 when text holds no such line. */
int cluster_parse_served (const char *text, char *id, size_t id_size,
                          char *region, size_t region_size, double *rtt_ms);

/*  Run a CLI read (args: the CLI's arguments, NULL-terminated, with -v
    and ending in the get command). value gets its stdout without the
    final newline, id / region (may be NULL) who served it ("" when it
    did not say). Returns the CLI's exit status (its stderr is printed
    when that is not 0). */
int cluster_cli_read (cluster_t *self, const char *const *args,
                      char *value, size_t value_size, char *id, size_t id_size,
                      char *region, size_t region_size);

/*  In the output of `walcast --broker ... status`, the state column of
    node id: 1 "up", 0 "down", -1 when the node is not listed. */
int cluster_status_state (const char *status_out, const char *id);

#endif
