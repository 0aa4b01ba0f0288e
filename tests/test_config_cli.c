/*  test_config_cli.c - walcast-node and walcast-broker with --config,
    --check-config and SIGHUP (issue 10), as an operator runs them.

    - --check-config on a good file prints one OK line on stdout, nothing
      on stderr, exits 0, and starts nothing: the port it would bind is
      held by the test meanwhile, and the data directory is not created.
      The annotated examples in examples/ pass it.
    - On a bad file it exits 2 with one line on stderr naming the file,
      the exact line and the reason.
    - A metrics or status-page port among the process's own ports, or
      the broker's two on one port, is refused there and at start (exit
      2, naming both flags), not left to fail on the bind.
    - SIGHUP on a running node and broker: a changed log level, failover
      timeout and trust folder are applied and logged ("reload: log-level
      info -> debug"), a key that needs a restart is said to, an
      unchanged file says so, a bad file keeps the running settings and
      says why, and a flag on the command line still wins over the file.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

extern char **environ;

typedef struct {
    cluster_t *c;
    char       path [600];      /* the config file of the test */
} s_world_t;

static int
s_setup (void **state)
{
    s_world_t *w = calloc (1, sizeof *w);
    if (!w)
        return -1;
    w->c = cluster_new ("config_cli");
    if (w->c)
        snprintf (w->path, sizeof w->path, "%s/walcast.conf", cluster_dir (w->c));
    *state = w;
    return 0;
}

static int
s_teardown (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    cluster_destroy (&w->c);
    free (w);
    return 0;
}

static void
s_require (s_world_t *w)
{
    if (!w->c)
        fail_msg ("the cluster could not be set up (see above)");
}

/*  Write text as the test's config file (replaced whole, as an editor
    saving it would). */
static void
s_write (s_world_t *w, const char *fmt, ...)
{
    char tmp [700];
    snprintf (tmp, sizeof tmp, "%s.new", w->path);
    FILE *file = fopen (tmp, "w");
    assert_non_null (file);
    va_list args;
    va_start (args, fmt);
    vfprintf (file, fmt, args);
    va_end (args);
    assert_int_equal (fclose (file), 0);
    assert_int_equal (rename (tmp, w->path), 0);
}

/*  Read a whole file into a malloc'd string ("" when missing). */
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "r");
    char *text = calloc (1, 65536);
    assert_non_null (text);
    if (file) {
        size_t got = fread (text, 1, 65535, file);
        text [got] = 0;
        fclose (file);
    }
    return text;
}

/*  Run the program ($WALCAST_NODE or $WALCAST_BROKER) with args
    (NULL-terminated) to its end: its exit code; stdout and stderr in
    *out and *err (malloc'd). */
static int
s_run (s_world_t *w, const char *program, const char *const *args, char **out,
       char **err)
{
    const char *bin = getenv (program);
    assert_non_null (bin);
    char out_path [700], err_path [700];
    snprintf (out_path, sizeof out_path, "%s/run.out", cluster_dir (w->c));
    snprintf (err_path, sizeof err_path, "%s/run.err", cluster_dir (w->c));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_addopen (&actions, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC,
                                      0644);
    posix_spawn_file_actions_addopen (&actions, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC,
                                      0644);
    char *argv [32];
    int argc = 0;
    argv [argc++] = (char *) bin;
    for (int i = 0; args [i] && argc < 31; i++)
        argv [argc++] = (char *) args [i];
    argv [argc] = NULL;
    pid_t pid;
    assert_int_equal (posix_spawn (&pid, bin, &actions, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy (&actions);
    int status = 0;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    *out = s_slurp (out_path);
    *err = s_slurp (err_path);
    print_message ("%s:%s%s\n", program, *out, *err);
    assert_true (WIFEXITED (status));
    return WEXITSTATUS (status);
}

/*  --check-config on the test's file: the exit code is want and stderr
    is exactly "PROG: FILE:" + rest + "\n" (rest NULL: OK on stdout). */
static void
s_check (s_world_t *w, const char *program, const char *prog, int want,
         const char *rest)
{
    const char *args [] = { "--config", w->path, "--check-config", NULL };
    char *out, *err;
    assert_int_equal (s_run (w, program, args, &out, &err), want);
    char expect [1200];
    if (rest) {
        snprintf (expect, sizeof expect, "%s: %s:%s\n", prog, w->path, rest);
        assert_string_equal (err, expect);
        assert_string_equal (out, "");
    }
    else {
        snprintf (expect, sizeof expect, "%s: %s OK\n", prog, w->path);
        assert_string_equal (out, expect);
        assert_string_equal (err, "");
    }
    free (out);
    free (err);
}

/* --- --check-config ------------------------------------------------------ */

static void
test_check_good_starts_nothing (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_require (w);
    //  hold the port the node would bind: a node that tried would fail
    int port = cluster_spare_port (w->c);
    zsock_t *holder = zsock_new (ZMQ_ROUTER);
    assert_non_null (holder);
    assert_int_equal (zsock_bind (holder, "tcp://127.0.0.1:%d", port), port);
    char data [700];
    snprintf (data, sizeof data, "%s/never-created", cluster_dir (w->c));
    s_write (w, "# a node\nnode\n    id = us1\n    data = %s\n    port = %d\n"
             "    region = us-east\n    fsync = always\n    log-level = debug\n",
             data, port);
    s_check (w, "WALCAST_NODE", "walcast-node", 0, NULL);
    struct stat st;
    assert_int_not_equal (stat (data, &st), 0);

    s_write (w, "broker\n    port = %d\n    data = %s\n    failover-timeout = 4000\n"
             "    region-priority = us-east,eu-west\n    verbose = true\n", port, data);
    s_check (w, "WALCAST_BROKER", "walcast-broker", 0, NULL);
    assert_int_not_equal (stat (data, &st), 0);
    zsock_destroy (&holder);
    cluster_pass (w->c);
}

static void
test_check_examples (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_require (w);
    const struct { const char *file, *program; } examples [] = {
        { "node.conf", "WALCAST_NODE" },
        { "broker.conf", "WALCAST_BROKER" },
        { "three-regions/broker.conf", "WALCAST_BROKER" },
        { "three-regions/us-east.conf", "WALCAST_NODE" },
        { "three-regions/eu-west.conf", "WALCAST_NODE" },
        { "three-regions/ap-south.conf", "WALCAST_NODE" },
    };
    for (size_t k = 0; k < sizeof examples / sizeof examples [0]; k++) {
        char path [1024];
        snprintf (path, sizeof path, "%s/%s", WALCAST_EXAMPLES, examples [k].file);
        const char *args [] = { "--config", path, "--check-config", NULL };
        char *out, *err;
        assert_int_equal (s_run (w, examples [k].program, args, &out, &err), 0);
        assert_non_null (strstr (out, " OK\n"));
        assert_string_equal (err, "");
        free (out);
        free (err);
    }
    cluster_pass (w->c);
}

static void
test_check_bad_names_the_line (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_require (w);
    const char *node = "WALCAST_NODE", *broker = "WALCAST_BROKER";
    s_write (w, "node\n    id = us1\n    data = /d\n    port = 7100\n\n    prot = 7\n");
    s_check (w, node, "walcast-node", 2, "6: unknown key 'prot' in section 'node'");
    s_write (w, "node\n    id = us1\n    data = /d\n    port = 7100\n    fsync = maybe\n");
    s_check (w, node, "walcast-node", 2, "5: fsync must be one of always, batch, never; "
             "got 'maybe'");
    s_write (w, "# us1\n\nnode\n    id = us1\n    port = 7100\n");
    s_check (w, node, "walcast-node", 2, "3: missing required key 'data' in section "
             "'node' (or give --data)");
    s_write (w, "node\n    id = us1\n    data = /d\n  port = 7100\n");
    s_check (w, node, "walcast-node", 2, "4: not valid ZPL: indent 4 spaces at once");
    s_write (w, "node\n    id = us1\n    data = /d\n    port = 7100\n"
             "    log-level = loud\n");
    s_check (w, node, "walcast-node", 2, "5: log-level must be one of error, warn, "
             "info, debug; got 'loud'");
    s_write (w, "node\n    id = us1\n    data = /d\n    port = 7100\n"
             "    curve-trust = /nonexistent\n");
    s_check (w, node, "walcast-node", 2, "5: --curve-cert and --curve-trust go "
             "together: give both (the key pair and the folder of trusted public "
             "certificates)");
    s_write (w, "node\n    id = us1\n    data = /d\n    port = 7100\n"
             "    curve-cert = /nonexistent_secret\n    curve-trust = /tmp\n");
    s_check (w, node, "walcast-node", 2, "5: --curve-cert: cannot read the "
             "certificate /nonexistent_secret: No such file or directory");
    //  czmq's own complaint about the file is not data: stdout stays
    //  empty (s_check), ours says what is wrong
    char junk [700];
    snprintf (junk, sizeof junk, "%s/junk_secret", cluster_dir (w->c));
    FILE *file = fopen (junk, "w");
    assert_non_null (file);
    fputs ("root:x:0:0:root:/root:/bin/bash\n", file);
    fclose (file);
    char text [1200], rest [1000];
    snprintf (text, sizeof text, "node\n    id = us1\n    data = /d\n    port = 7100\n"
              "    curve-cert = %s\n    curve-trust = /tmp\n", junk);
    s_write (w, "%s", text);
    snprintf (rest, sizeof rest, "5: --curve-cert: %s is not a CURVE certificate "
              "(make one with `walcast keygen NAME`)", junk);
    s_check (w, node, "walcast-node", 2, rest);
    //  with keys, an upstream or a broker without its public certificate:
    //  the start would fail on it ("no CURVE public key is known"), so the
    //  check does too (before, it said OK: a helper's find)
    char pair [700];
    snprintf (pair, sizeof pair, "%s/pair", cluster_dir (w->c));
    zcert_t *cert = zcert_new ();
    assert_non_null (cert);
    assert_int_equal (zcert_save (cert, pair), 0);
    zcert_destroy (&cert);
    snprintf (text, sizeof text, "node\n    id = us1\n    data = /d\n    port = 7100\n"
              "    curve-cert = %s_secret\n    curve-trust = /tmp\n"
              "    broker = 127.0.0.1:7000\n", pair);
    s_write (w, "%s", text);
    s_check (w, node, "walcast-node", 2, "7: --broker with --curve-cert needs "
             "--curve-broker, the broker's public certificate (its CURVE key)");
    snprintf (text, sizeof text, "node\n    id = us1\n    data = /d\n    port = 7100\n"
              "    curve-cert = %s_secret\n    curve-trust = /tmp\n"
              "    replica-of = 127.0.0.1:7200\n", pair);
    s_write (w, "%s", text);
    s_check (w, node, "walcast-node", 2, "7: --replica-of with --curve-cert needs "
             "--curve-server, the public certificate of the node it names (its CURVE "
             "key)");
    //  an id or region the broker would refuse is refused here first
    s_write (w, "node\n    id = \"a b\"\n    data = /d\n    port = 7100\n");
    s_check (w, node, "walcast-node", 2, "2: --id \"a b\" has byte 0x20 at offset 1; "
             "ids are printable characters (0x21..0x7E: no spaces, no control bytes)");
    s_write (w, "node\n    id = us1\n    data = /d\n    port = 7100\n"
             "    region = \"us east\"\n");
    s_check (w, node, "walcast-node", 2, "5: --region \"us east\" has byte 0x20 at "
             "offset 2; regions are printable characters (0x21..0x7E: no spaces, no "
             "control bytes)");
    //  a key checked against another's default is at its own line
    s_write (w, "broker\n    port = 7000\n    node-timeout = 5000\n");
    s_check (w, broker, "walcast-broker", 2, "3: --failover-timeout 3000 is shorter "
             "than --node-timeout 5000: the primary must be seen down before it is "
             "replaced; raise --failover-timeout to at least 5000");
    s_write (w, "broker\n    port = 7000\n    node-timeout = 5000\n"
             "    failover-timeout = 4000\n");
    s_check (w, broker, "walcast-broker", 2, "4: --failover-timeout 4000 is shorter "
             "than --node-timeout 5000: the primary must be seen down before it is "
             "replaced; raise --failover-timeout to at least 5000");
    s_write (w, "broker\n    port = 7000\n    region-priority = a,,b\n");
    s_check (w, broker, "walcast-broker", 2, "3: --region-priority: region 2 is empty; "
             "regions are 1..64 characters, separated by commas");
    s_write (w, "node\n    port = 7000\n");
    s_check (w, broker, "walcast-broker", 2, "1: unknown section 'node' (this program "
             "reads section 'broker')");

    //  flags are checked too, and win over the file
    s_write (w, "broker\n    port = 7000\n");
    const char *args [] = { "--config", w->path, "--port", "0", "--check-config", NULL };
    char *out, *err;
    assert_int_equal (s_run (w, broker, args, &out, &err), 2);
    assert_string_equal (err, "walcast-broker: --port expects a number 1..65534, got "
                         "'0'\nTry 'walcast-broker --help'.\n");
    free (out);
    free (err);
    const char *missing [] = { "--config", "/nonexistent.conf", "--check-config", NULL };
    assert_int_equal (s_run (w, node, missing, &out, &err), 2);
    assert_string_equal (err, "walcast-node: /nonexistent.conf: cannot open: No such "
                         "file or directory\n");
    free (out);
    free (err);
    cluster_pass (w->c);
}

/*  Run program with args; exit 2 and stderr exactly "PROG: " + why +
    "\nTry 'PROG --help'.\n", nothing on stdout. */
static void
s_refused (s_world_t *w, const char *program, const char *prog,
           const char *const *args, const char *why)
{
    char *out, *err;
    assert_int_equal (s_run (w, program, args, &out, &err), 2);
    char expect [1200];
    snprintf (expect, sizeof expect, "%s: %s\nTry '%s --help'.\n", prog, why, prog);
    assert_string_equal (err, expect);
    assert_string_equal (out, "");
    free (out);
    free (err);
}

/*  A metrics or status-page port that is one of the process's own ports
    (node: P..P+2; broker: B..B+1), or both the broker's on one port, is
    refused by --check-config and at start, naming both flags. Before,
    --check-config said OK and the start failed on the bind (an
    operator's find). */
static void
test_check_port_clash (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_require (w);
    const char *node = "WALCAST_NODE", *broker = "WALCAST_BROKER";
    int port = cluster_spare_port (w->c);
    char data [700], p [16], p1 [16], p2 [16], p3 [16], why [600];
    snprintf (data, sizeof data, "%s/never-created", cluster_dir (w->c));
    snprintf (p, sizeof p, "%d", port);
    snprintf (p1, sizeof p1, "%d", port + 1);
    snprintf (p2, sizeof p2, "%d", port + 2);
    snprintf (p3, sizeof p3, "%d", port + 3);

    //  the node: P, P+1, P+2 are its own; P+3 is fine
    const char *own [] = { p, p1, p2 };
    for (int k = 0; k < 3; k++) {
        snprintf (why, sizeof why, "--metrics-port %s is one of the node's own ports "
                  "(--port %d binds %d..%d: service, stream, catch-up); give a "
                  "--metrics-port outside them", own [k], port, port, port + 2);
        const char *check [] = { "--id", "n1", "--data", data, "--port", p,
                                 "--metrics-port", own [k], "--check-config", NULL };
        s_refused (w, node, "walcast-node", check, why);
        const char *start [] = { "--id", "n1", "--data", data, "--port", p,
                                 "--metrics-port", own [k], NULL };
        s_refused (w, node, "walcast-node", start, why);
    }
    const char *fine [] = { "--id", "n1", "--data", data, "--port", p,
                            "--metrics-port", p3, "--check-config", NULL };
    char *out, *err;
    assert_int_equal (s_run (w, node, fine, &out, &err), 0);
    free (out);
    free (err);
    //  in a file: at the metrics-port line
    s_write (w, "node\n    id = n1\n    data = %s\n    port = %d\n"
             "    metrics-port = %d\n", data, port, port + 1);
    snprintf (why, sizeof why, "5: --metrics-port %d is one of the node's own ports "
              "(--port %d binds %d..%d: service, stream, catch-up); give a "
              "--metrics-port outside them", port + 1, port, port, port + 2);
    s_check (w, node, "walcast-node", 2, why);

    //  the broker: B and B+1 are its own, for either port
    const char *flags [] = { "--http-port", "--metrics-port" };
    for (int f = 0; f < 2; f++)
        for (int k = 0; k < 2; k++) {
            snprintf (why, sizeof why, "%s %s is one of the broker's own ports (--port "
                      "%d binds %d..%d: requests, topology); give a %s outside them",
                      flags [f], own [k], port, port, port + 1, flags [f]);
            const char *check [] = { "--port", p, flags [f], own [k], "--check-config",
                                     NULL };
            s_refused (w, broker, "walcast-broker", check, why);
            const char *start [] = { "--port", p, flags [f], own [k], NULL };
            s_refused (w, broker, "walcast-broker", start, why);
        }
    //  ... and the two of them on one port
    snprintf (why, sizeof why, "--http-port %d and --metrics-port %d are the same "
              "port; give them different ones", port + 3, port + 3);
    const char *same [] = { "--port", p, "--http-port", p3, "--metrics-port", p3,
                            "--check-config", NULL };
    s_refused (w, broker, "walcast-broker", same, why);
    const char *same_start [] = { "--port", p, "--http-port", p3, "--metrics-port", p3,
                                  NULL };
    s_refused (w, broker, "walcast-broker", same_start, why);
    s_write (w, "broker\n    port = %d\n    http-port = %d\n    metrics-port = %d\n",
             port, port + 2, port + 2);
    snprintf (why, sizeof why, "4: --http-port %d and --metrics-port %d are the same "
              "port; give them different ones", port + 2, port + 2);
    s_check (w, broker, "walcast-broker", 2, why);
    s_write (w, "broker\n    port = %d\n    http-port = %d\n    metrics-port = %d\n",
             port, port + 2, port + 3);
    s_check (w, broker, "walcast-broker", 0, NULL);

    struct stat st;
    assert_int_not_equal (stat (data, &st), 0);
    cluster_pass (w->c);
}

/* --- SIGHUP --------------------------------------------------------------- */

/*  SIGHUP node i (or the broker when i < 0) and wait for a line of its
    log after mark that starts with want. */
static void
s_hup (s_world_t *w, int i, const char *want)
{
    long mark = i >= 0 ? cluster_log_mark (w->c, i) : cluster_broker_log_mark (w->c);
    pid_t pid = i >= 0 ? cluster_pid (w->c, i) : cluster_broker_pid (w->c);
    assert_true (pid > 0);
    assert_int_equal (kill (pid, SIGHUP), 0);
    int rc = i >= 0 ? cluster_wait_log (w->c, i, want, mark, 10000)
                    : cluster_broker_wait_log (w->c, want, mark, 10000);
    assert_int_equal (rc, 0);
}

static void
test_sighup_node (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_require (w);
    cluster_t *c = w->c;
    int p = cluster_add (c, "p1", NULL, NULL);
    s_write (w, "node\n    id = from-file\n    log-level = info\n");
    const char *extra [] = { "--config", w->path, NULL };
    cluster_set_extra (c, p, extra);
    assert_int_equal (cluster_start (c, p), 0);
    assert_int_equal (cluster_wait_ready (c, p, 20000), 0);
    //  the command line's --id won over the file's
    assert_int_equal (cluster_log_count (c, p, "wal: recovered ", 0), 1);
    char line [4096];
    FILE *log = fopen (cluster_log_path (c, p), "r");
    assert_non_null (log);
    bool found = false;
    while (fgets (line, sizeof line, log))
        found |= strstr (line, " proc=walcast-node id=p1 msg=\"wal: recovered ") != NULL;
    fclose (log);
    assert_true (found);

    //  nothing changed; then the level; debug lines appear
    s_hup (w, p, "reload: nothing changed");
    s_write (w, "node\n    id = from-file\n    log-level = debug\n");
    s_hup (w, p, "reload: log-level info -> debug");
    //  a key that needs a restart is said so, and not applied
    s_write (w, "node\n    id = from-file\n    log-level = debug\n"
             "    replica-lag = 9000\n");
    s_hup (w, p, "reload: replica-lag 5000 -> 9000 needs a restart; not applied");
    //  a port that was off: said so in words, not as port 0
    s_write (w, "node\n    id = from-file\n    log-level = debug\n"
             "    replica-lag = 9000\n    metrics-port = 13999\n");
    s_hup (w, p, "reload: metrics-port (unset) -> 13999 needs a restart; not applied");
    //  a bad file: the running settings stay
    s_write (w, "node\n    id = from-file\n    log-level = error\n    bogus = 1\n");
    char want [1200];
    snprintf (want, sizeof want, "reload: %s:4: unknown key 'bogus' in section 'node'; "
              "keeping the running settings", w->path);
    s_hup (w, p, want);
    s_write (w, "node\n    id = from-file\n    log-level = info\n    replica-lag = 9000\n");
    s_hup (w, p, "reload: log-level debug -> info");
    assert_true (cluster_running (c, p));
    assert_int_equal (cluster_term (c, p, 10000), 0);
    cluster_pass (c);
}

/*  A key pair made with czmq: dir/name (public) and dir/name_secret. */
static void
s_cert (const char *dir, const char *name)
{
    zcert_t *cert = zcert_new ();
    assert_non_null (cert);
    char path [1200];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    assert_int_equal (zcert_save (cert, path), 0);
    zcert_destroy (&cert);
}

static void
test_sighup_broker (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_require (w);
    cluster_t *c = w->c;
    char keys [700], trust_a [700], trust_b [700], nodes_b [800];
    snprintf (keys, sizeof keys, "%s/keys", cluster_dir (c));
    snprintf (trust_a, sizeof trust_a, "%s/trust-a", cluster_dir (c));
    snprintf (trust_b, sizeof trust_b, "%s/trust-b", cluster_dir (c));
    snprintf (nodes_b, sizeof nodes_b, "%s/nodes", trust_b);
    assert_int_equal (mkdir (keys, 0700), 0);
    assert_int_equal (mkdir (trust_a, 0755), 0);
    assert_int_equal (mkdir (trust_b, 0755), 0);
    assert_int_equal (mkdir (nodes_b, 0755), 0);
    s_cert (keys, "broker");
    s_cert (nodes_b, "n1");
    const char *conf = "broker\n    failover-timeout = %d\n    log-level = %s\n"
                       "    curve-cert = %s/broker_secret\n    curve-trust = %s\n";
    s_write (w, conf, 3000, "error", keys, trust_a);
    //  --log-level on the command line wins over the file's, at start and
    //  at every reload
    const char *extra [] = { "--config", w->path, "--log-level", "info", NULL };
    cluster_set_broker_extra (c, extra);
    assert_int_equal (cluster_broker_start (c, 2000), 0);
    s_hup (w, -1, "reload: nothing changed");

    s_write (w, conf, 5000, "error", keys, trust_a);
    s_hup (w, -1, "reload: failover-timeout 3000 -> 5000");
    //  below the node timeout: refused, whole
    s_write (w, conf, 1000, "debug", keys, trust_b);
    char want [1600];
    snprintf (want, sizeof want, "reload: %s:2: --failover-timeout 1000 is shorter than "
              "--node-timeout 2000", w->path);
    s_hup (w, -1, want);
    s_write (w, conf, 5000, "debug", keys, trust_b);
    char mark_want [1600];
    snprintf (mark_want, sizeof mark_want, "reload: curve-trust %s -> %s", trust_a,
              trust_b);
    long mark = cluster_broker_log_mark (c);
    s_hup (w, -1, mark_want);
    //  read at once: the key in the new folder is known
    assert_int_equal (cluster_broker_wait_log (c, "trust: key n1", mark, 10000), 0);
    assert_int_equal (cluster_broker_log_find (c, "reload: failover-timeout", mark, 0,
                                               NULL, 0), -1);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_check_good_starts_nothing, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_check_examples, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_check_bad_names_the_line, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_check_port_clash, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sighup_node, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sighup_broker, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
