/*  cli.c - the walcast command: put, get, del, load, status, digest,
    snapshot, switchover, watch, and keygen (which talks to nobody).

        walcast [--broker HOST:PORT | --node HOST:PORT ...] [--region R]
                [--read PREF] [--consistency C] [--max-staleness MS]
                [--timeout MS] [--curve-cert SECRET_CERT]
                [--curve-server PUBLIC_CERT] [--curve-broker PUBLIC_CERT]
                [-v] [--debug] COMMAND [ARGS]

    A thin shell over libwalcast. Two tables drive it: s_options, the
    global flags (each with a setter that fills s_opts_t), and s_commands,
    the commands (each with its argument count and a handler). Adding a
    flag or a command is adding a row and a function; the parser, the
    usage text and the help are generated from the tables. `load` lives
    in load.c.

    Global flags come before the command; everything after the command
    is its arguments, taken as they are (so a value may start with '-'),
    except the command's own options, which come first (get's
    "--min-seq SEQ", watch's "--from SEQ", the writes' "--acks N" and
    "--ack-timeout MS": those only before the key, so a key may start
    with "--" too), and "-h" / "--help" first or among them, which prints
    the command's usage and does nothing else (s_main: before a KEY or a
    NAME could be taken for it; after the first of those, "-h" is data:
    `put k -h` writes the value "-h"). The first "--" after the command ends
    both: what follows is taken as it is, so a key "--help" or "--acks"
    is `walcast put -- --help VALUE` (the "--" is dropped; s_opts_t.nopts
    says how many arguments came before it).

    With one --node and no --broker the tool talks to that node only, as
    it always did; with a broker or several nodes the library routes
    (reads by preference and consistency, writes to the primary) and
    status prints one line per node.

    Exit codes: 0 success, 1 not found (get) or keygen's files not
    written, 2 usage error, 3 an error from the node or the network, or
    a load line that did not land.
    Results go to stdout, diagnostics and progress to stderr. Every
    error names its cause and, where there is one, the remedy:
    "walcast: COMMAND: MESSAGE[: DETAIL]; REMEDY" (s_fail). When the
    library has no node to send to, its detail says what was missing
    and that is the message ("no primary known after 5000 ms: the
    broker lists 0 nodes up").
*/
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include "walcast.h"
#include "certs.h"
#include "clock.h"
#include "load.h"
#include "wc_limits.h"


#define S_EXIT_OK        0
#define S_EXIT_NOTFOUND  1
#define S_EXIT_USAGE     2
#define S_EXIT_ERROR     3

/*  What the global flags set. */
typedef struct {
    const char **nodes;         /* --node values, in order (argv strings) */
    int          nnodes;
    const char  *broker;        /* --broker, or NULL */
    const char  *region;        /* --region, or NULL */
    bool         has_read;      /* --read given */
    walcast_read_t read;        /* ... parsed */
    const char  *read_region;   /* ... region=NAME's NAME */
    bool         has_consistency;   /* --consistency given */
    walcast_consistency_t consistency;
    int          max_staleness; /* --max-staleness, 0 = none */
    bool         verbose;       /* -v: say who served a read */
    bool         debug;         /* --debug: the library's debug lines */
    int          timeout_ms;    /* --timeout, 0 = library default */
    const char  *curve_cert;    /* --curve-cert: our NAME_secret, or NULL */
    const char  *curve_server;  /* --curve-server: the --node's public cert */
    const char  *curve_broker;  /* --curve-broker: the broker's public cert */
    bool         help;          /* --help: print usage, exit 0 */
    bool         version;       /* --version: print version, exit 0 */
    bool         patient;       /* status --watch: a silent broker at start is
                                   asked again, not an error */
    int          nopts;         /* the command's arguments before its "--"
                                   (dropped): only these may be its options;
                                   all of them when there is none */
} s_opts_t;

/*  A global flag. set() returns 0, or -1 after printing why the value is
    wrong (a usage error). */
typedef struct {
    const char *name;           /* "--node" */
    const char *short_name;     /* "-h", or NULL */
    const char *arg;            /* "HOST:PORT", or NULL for a plain flag */
    const char *help;
    int (*set) (s_opts_t *opts, const char *value);
} s_option_t;

/*  A command. run() gets a connected client and exactly min..max args and
    returns the exit code. */
typedef struct {
    const char *name;
    const char *args;           /* "KEY VALUE", for usage */
    int         min_args;
    int         max_args;
    const char *help;
    int (*run) (walcast_t *client, const s_opts_t *opts, char **args,
                int nargs);
    int         timeout_ms;     /* its default --timeout; 0: the library's */
    bool        needs_broker;   /* usage error without --broker */
    bool        local;          /* talks to nobody: run gets no client */
} s_command_t;

static int s_usage_error (void);

/*  Does the client follow the primary (--broker, or several --node)?
    Some remedies depend on it. Set once, before the command runs. */
static bool s_follows = false;

/*  Did get ask for --min-seq? An ESTALE then means no node reached it. */
static bool s_min_seq = false;

//  What a user can do about an error a command met, or NULL.
static const char *
s_remedy (int rc, const char *name)
{
    bool write = strcmp (name, "put") == 0 || strcmp (name, "del") == 0;
    if (s_follows && (rc == WALCAST_ENOTPRIMARY || rc == WALCAST_EFENCED))
        return "the write was not made: the primary is changing (a failover or a "
               "switchover) and no new one took it in time; send it again, or give "
               "a longer --timeout";
    if (strncmp (name, "--broker", 8) == 0 && rc == WALCAST_ETIMEOUT)
        return "check that walcast-broker runs at that address (its base port), "
               "or give a longer --timeout";
    switch (rc) {
        case WALCAST_ENOTPRIMARY:
            return "send writes there, or use --broker so that the client follows "
                   "the primary";
        case WALCAST_ETIMEOUT:
            if (strcmp (name, "switchover") == 0)
                return "see which node is the primary now (walcast --broker ... "
                       "status) before trying again";
            if (strcmp (name, "snapshot") == 0)
                return "the node may still be writing it (see its log); give a "
                       "longer --timeout for a large state";
            return write ? "the write may or may not have been applied; check the "
                           "node (walcast status) or give a longer --timeout"
                         : "check the node (walcast status), or give a longer --timeout";
        case WALCAST_EUNAVAILABLE:
            if (strcmp (name, "switchover") == 0)   /* refused at once */
                return "see which nodes are up and current (walcast --broker ... "
                       "status), then try again";
            return "check that the nodes run and can be reached (walcast status), "
                   "or give a longer --timeout";
        case WALCAST_ENOSPC:
            if (strcmp (name, "snapshot") == 0)
                return "free space on the node's disk, then take it again";
            return "free space on the node's disk, then send the write again";
        case WALCAST_EIO:
            return write ? "the write may or may not have been applied; see the "
                           "node's log" : "see the node's log";
        case WALCAST_EWRITE:
            return "the node's disk refuses writes (see the node's log); once it is "
                   "writable again, send the write again";
        case WALCAST_EBUSY:
            return "retry later";
        case WALCAST_ESTALE:
            if (s_min_seq)
                return "no node it asked had applied --min-seq in time: try again "
                       "later, or give a lower --min-seq";
            return "read from the primary (--consistency strong), or allow more "
                   "staleness (--max-staleness)";
        case WALCAST_ETOOBIG:
            return "keys are 1..1024 bytes, values at most 1 MiB";
        case WALCAST_EPROTO:
        case WALCAST_EVERSION:
            if (strncmp (name, "--broker", 8) == 0)
                return "check that the address is a walcast-broker of this version "
                       "(its base port), not a node";
            return "check that the address is a walcast node of this version";
        case WALCAST_ERANGE:
            return "watch from a later seq, or without --from to start from now";
        case WALCAST_ECONFLICT:
            if (strcmp (name, "watch") == 0)    /* the detail says from where */
                return "the changes printed after that seq are not in the "
                       "cluster's history any more";
            if (strcmp (name, "forget") == 0 || strcmp (name, "get") == 0)
                return NULL;            /* the broker's words, or which seqs */
            return "see the broker's log";
        case WALCAST_ENOTFOUND:
            return "give the id of a node the broker lists (walcast --broker ... "
                   "status)";
        case WALCAST_ENOTREPLICATED:
            return "a failover before the replicas have it may lose it; sending it "
                   "again is safe; check the replicas (walcast status), or give a "
                   "longer --ack-timeout";
        case WALCAST_EFEWREPLICAS:
            return "the write was not made; check the replicas (walcast status), "
                   "then send it again";
        case WALCAST_EPERM:
            if (write || strcmp (name, "load") == 0)
                return "this client's key may not write: the servers' operator puts "
                       "its public certificate in the trust folder's writers/ "
                       "(readers/ allows reads and watches only)";
            if (strcmp (name, "snapshot") == 0 || strcmp (name, "switchover") == 0
            ||  strcmp (name, "forget") == 0)
                return "snapshot, switchover and forget need a writer's key: the "
                       "servers' operator puts this client's public certificate in "
                       "the trust folder's writers/ (readers/ allows reads and "
                       "watches only)";
            return "this client's key has no role that allows it: the servers' "
                   "operator puts its public certificate in the trust folder's "
                   "readers/ (to read and watch) or writers/ (to write as well)";
        case WALCAST_EFENCED:
            return "the write was not made: that node was replaced as the primary; "
                   "use --broker so that the client follows the primary, and send "
                   "it again";
        default:
            return NULL;
    }
}

//  Report a library error for command `name` on stderr, with its detail
//  and what to do about it, and return the exit code.
static int
s_fail (walcast_t *client, const char *name, int rc)
{
    const char *detail = walcast_last_detail (client);
    const char *remedy = s_remedy (rc, name);
    if (rc == WALCAST_EUNAVAILABLE && strstr (detail, "--curve-"))
        remedy = NULL;                      // the detail names the flag to give
    if (rc == WALCAST_ERANGE && strstr (detail, "check --epoch"))
        remedy = NULL;                      // the detail says what to check
    if (rc == WALCAST_ETIMEOUT && strstr (detail, "may or may not have been made"))
        remedy = "check the node (walcast status), then read the key to see whether "
                 "it was; or give a longer --timeout";
    if (rc == WALCAST_EUNAVAILABLE && strncmp (detail, "diverged", 8) == 0)
        remedy = "that node refuses reads until it is resynced: stop it, empty its "
                 "data directory and start it again (it catches up from its "
                 "upstream); read from another node meanwhile";
    if (rc == WALCAST_EUNAVAILABLE && strstr (detail, "another cluster"))
        remedy = "see the node's log ('not following ... it is a node of cluster'); "
                 "read from another node meanwhile";
    fprintf (stderr, "walcast: %s: ", name);
    if (rc == WALCAST_ENOTPRIMARY && detail [0])
        fprintf (stderr, "%s (primary is %s)", walcast_strerror (rc), detail);
    else
    if (strcmp (name, "switchover") == 0 && detail [0])
        fprintf (stderr, "%s (%s)", detail, walcast_errname (rc));  // the broker's words
    else
    if (rc == WALCAST_EUNAVAILABLE && detail [0])
        fprintf (stderr, "%s", detail);     // says what was missing
    else
    if (rc == WALCAST_EPERM)
        fprintf (stderr, "%s (%s)%s%s", walcast_strerror (rc), walcast_errname (rc),
                 detail [0] ? ": " : "", detail);
    else
    if (rc == WALCAST_ENOSPC && strcmp (name, "snapshot") == 0)
        fprintf (stderr, "the node's disk is full: the snapshot was not written (%s)%s%s",
                 walcast_errname (rc), detail [0] ? ": " : "", detail);
    else
    if (rc == WALCAST_ENOTREPLICATED)
        fprintf (stderr, "the write is durable on the primary but not confirmed "
                 "replicated (%s%sfewer replicas than asked confirmed it in time)",
                 detail, detail [0] ? ": " : "");
    else
    if (detail [0])
        fprintf (stderr, "%s: %s", walcast_strerror (rc), detail);
    else
        fprintf (stderr, "%s", walcast_strerror (rc));
    fprintf (stderr, "%s%s\n", remedy ? "; " : "", remedy ? remedy : "");
    return S_EXIT_ERROR;
}

/* --- global flags ------------------------------------------------------ */

static int
s_set_node (s_opts_t *opts, const char *value)
{
    opts->nodes [opts->nnodes++] = value;
    return 0;
}

static int
s_set_timeout (s_opts_t *opts, const char *value)
{
    char *end;
    errno = 0;
    long ms = strtol (value, &end, 10);
    if (errno || end == value || *end || ms < 1 || ms > INT_MAX) {
        fprintf (stderr, "walcast: --timeout: expected milliseconds (1..%d), "
                 "got '%s'\n", INT_MAX, value);
        return -1;
    }
    opts->timeout_ms = (int) ms;
    return 0;
}

static int
s_set_broker (s_opts_t *opts, const char *value)
{
    if (opts->broker) {
        fprintf (stderr, "walcast: --broker given twice\n");
        return -1;
    }
    opts->broker = value;
    return 0;
}

static int
s_set_region (s_opts_t *opts, const char *value)
{
    if (strlen (value) > 64) {
        fprintf (stderr, "walcast: --region: at most 64 characters\n");
        return -1;
    }
    opts->region = value;
    return 0;
}

static int
s_set_read (s_opts_t *opts, const char *value)
{
    if (walcast_read_parse (value, &opts->read, &opts->read_region)) {
        fprintf (stderr, "walcast: --read: expected nearest, primary, replica "
                 "or region=NAME (NAME 1..64 characters), got '%s'\n", value);
        return -1;
    }
    opts->has_read = true;
    return 0;
}

static int
s_set_consistency (s_opts_t *opts, const char *value)
{
    if (walcast_consistency_parse (value, &opts->consistency)) {
        fprintf (stderr, "walcast: --consistency: expected eventual, session "
                 "or strong, got '%s'\n", value);
        return -1;
    }
    opts->has_consistency = true;
    return 0;
}

static int
s_set_max_staleness (s_opts_t *opts, const char *value)
{
    char *end;
    errno = 0;
    long ms = strtol (value, &end, 10);
    if (errno || end == value || *end || ms < 0 || ms > INT_MAX) {
        fprintf (stderr, "walcast: --max-staleness: expected milliseconds "
                 "(0..%d), got '%s'\n", INT_MAX, value);
        return -1;
    }
    if (ms > 0 && ms < WALCAST_STALENESS_FLOOR_MS) {
        fprintf (stderr, "walcast: --max-staleness %ld is below the %d ms staleness "
                 "floor: replicas hear from their primary every 100 ms, so every "
                 "replica would decline part of the time; give at least %d (more "
                 "for a cascaded replica), or --consistency strong\n", ms,
                 WALCAST_STALENESS_FLOOR_MS, WALCAST_STALENESS_FLOOR_MS);
        return -1;
    }
    opts->max_staleness = (int) ms;
    return 0;
}

//  --curve-cert, --curve-server, --curve-broker: a file, read when the
//  client opens (its errors name the file and what is wrong with it).
static int
s_set_curve (const char **slot, const char *flag, const char *value)
{
    if (*slot) {
        fprintf (stderr, "walcast: %s given twice\n", flag);
        return -1;
    }
    if (!*value) {
        fprintf (stderr, "walcast: %s: expected a certificate file\n", flag);
        return -1;
    }
    *slot = value;
    return 0;
}

static int
s_set_curve_cert (s_opts_t *opts, const char *value)
{
    return s_set_curve (&opts->curve_cert, "--curve-cert", value);
}

static int
s_set_curve_server (s_opts_t *opts, const char *value)
{
    return s_set_curve (&opts->curve_server, "--curve-server", value);
}

static int
s_set_curve_broker (s_opts_t *opts, const char *value)
{
    return s_set_curve (&opts->curve_broker, "--curve-broker", value);
}

static int
s_set_verbose (s_opts_t *opts, const char *value)
{
    (void) value;
    opts->verbose = true;
    return 0;
}

static int
s_set_debug (s_opts_t *opts, const char *value)
{
    (void) value;
    opts->debug = true;
    return 0;
}

static int
s_set_help (s_opts_t *opts, const char *value)
{
    (void) value;
    opts->help = true;
    return 0;
}

static int
s_set_version (s_opts_t *opts, const char *value)
{
    (void) value;
    opts->version = true;
    return 0;
}

static const s_option_t s_options [] = {
    { "--broker", NULL, "HOST:PORT",
      "learn the nodes from a broker (its base port)", s_set_broker },
    { "--node", NULL, "HOST:PORT",
      "a node (its base port); one alone serves reads and writes, "
      "several are routed among", s_set_node },
    { "--region", NULL, "R",
      "this client's region: \"nearest\" reads prefer its nodes", s_set_region },
    { "--read", NULL, "PREF",
      "read preference: nearest (default), primary, replica, region=NAME",
      s_set_read },
    { "--consistency", NULL, "C",
      "eventual, session (default: read your writes) or strong (primary)",
      s_set_consistency },
    { "--max-staleness", NULL, "MS",
      "replicas more than MS ms behind decline reads (0: no bound)",
      s_set_max_staleness },
    { "--timeout", NULL, "MS",
      "bound on every request, in ms (default 5000; snapshot 60000, "
      "switchover 30000), "
      "including the wait for a node to send it to; for watch, the wait for "
      "a node to watch",
      s_set_timeout },
    { "--curve-cert", NULL, "SECRET_CERT",
      "this client's CURVE key pair (the NAME_secret file of `walcast keygen "
      "NAME`): every link is then encrypted and authenticated", s_set_curve_cert },
    { "--curve-server", NULL, "PUBLIC_CERT",
      "the public certificate of the --node nodes (nodes the broker lists come "
      "with their key)", s_set_curve_server },
    { "--curve-broker", NULL, "PUBLIC_CERT",
      "the broker's public certificate", s_set_curve_broker },
    { "--verbose", "-v", NULL,
      "say on stderr who served a read", s_set_verbose },
    { "--debug", NULL, NULL,
      "print on stderr what the library handles on its own (bad topology "
      "entries skipped, gaps a watch repairs, waits for a node)", s_set_debug },
    { "--help", "-h", NULL, "show this help", s_set_help },
    { "--version", NULL, NULL, "show the version", s_set_version },
};
#define S_NOPTIONS (sizeof s_options / sizeof s_options [0])

/* --- commands ---------------------------------------------------------- */

//  The value of a write option ("--acks" or "--ack-timeout") into
//  *wopts; 0, or -1 after printing why it is wrong.
static int
s_write_option (const char *cmd, const char *name, const char *value,
                walcast_write_opts_t *wopts)
{
    bool acks = strcmp (name, "--acks") == 0;
    if (acks && strcmp (value, "all") == 0) {
        wopts->acks = WALCAST_ACKS_ALL;
        return 0;
    }
    long max = acks ? WALCAST_MAX_ACKS : WALCAST_MAX_ACK_TIMEOUT;
    char *end;
    errno = 0;
    long n = value [0] >= '0' && value [0] <= '9' ? strtol (value, &end, 10) : -1;
    if (n < 0 || errno || *end || n > max) {
        if (acks)
            fprintf (stderr, "walcast: %s: --acks: expected a number of replicas "
                     "(0..%ld) or all, got '%s'\n", cmd, max, value);
        else
            fprintf (stderr, "walcast: %s: --ack-timeout: expected milliseconds "
                     "(0..%ld; 0: the node's default), got '%s'\n", cmd, max, value);
        return -1;
    }
    if (acks)
        wopts->acks = (int) n;
    else
        wopts->ack_timeout_ms = (int) n;
    return 0;
}

//  load's "--batch N": the most writes per message, 1..WALCAST_MAX_BATCH.
//  0, or -1 after printing why it is wrong.
static int
s_batch_option (const char *value, int *batch)
{
    char *end;
    errno = 0;
    long n = value [0] >= '0' && value [0] <= '9' ? strtol (value, &end, 10) : -1;
    if (n < 1 || errno || *end || n > WALCAST_MAX_BATCH) {
        fprintf (stderr, "walcast: load: --batch: expected writes per message "
                 "(1..%d; 1: each write alone), got '%s'\n", WALCAST_MAX_BATCH, value);
        return -1;
    }
    *batch = (int) n;
    return 0;
}

static void s_global_hint (const char *cmd, char **args, int nargs);

//  The options of put, del and load ("--acks N", "--ack-timeout MS", and
//  for load (batch not NULL) "--batch N", also as NAME=VALUE), which come
//  before the command's npos other arguments: so a key that starts with
//  "--" still works, and only the arguments before the last npos, and
//  before the first nopts (a "--" there), are options. Returns the index
//  of the first other argument, or -1 after printing a usage error.
static int
s_write_options (char **args, int nargs, int nopts, int npos, const char *cmd,
                 const char *usage, walcast_write_opts_t *wopts, int *batch)
{
    memset (wopts, 0, sizeof *wopts);
    bool acks_given = false, timeout_given = false;
    int i = 0;
    while (nargs - i > npos && i < nopts && strncmp (args [i], "--", 2) == 0) {
        const char *eq = strchr (args [i], '=');
        size_t len = eq ? (size_t) (eq - args [i]) : strlen (args [i]);
        const char *name = len == 6 && memcmp (args [i], "--acks", 6) == 0 ? "--acks"
                         : len == 13 && memcmp (args [i], "--ack-timeout", 13) == 0
                         ? "--ack-timeout"
                         : batch && len == 7 && memcmp (args [i], "--batch", 7) == 0
                         ? "--batch" : NULL;
        if (!name) {
            fprintf (stderr, "walcast: %s: unknown option '%.*s'\n", cmd, (int) len,
                     args [i]);
            s_global_hint (cmd, args + i, 1);
            return -1;
        }
        if (!eq && i + 1 >= nopts) {
            fprintf (stderr, "walcast: %s: %s needs a value\n", cmd, name);
            return -1;
        }
        const char *value = eq ? eq + 1 : args [i + 1];
        i += eq ? 1 : 2;
        if (strcmp (name, "--batch") == 0) {
            if (s_batch_option (value, batch))
                return -1;
            continue;
        }
        if (s_write_option (cmd, name, value, wopts))
            return -1;
        if (strcmp (name, "--acks") == 0)
            acks_given = true;
        else
            timeout_given = true;
    }
    if (timeout_given && !acks_given) {
        fprintf (stderr, "walcast: %s: --ack-timeout needs --acks\n", cmd);
        return -1;
    }
    if (nargs - i != npos) {
        fprintf (stderr, "walcast: %s: expected %s\n", cmd, usage);
        s_global_hint (cmd, args, nopts);
        return -1;
    }
    return i;
}

//  A KEY argument must be 1..WC_MAX_KEY bytes, as the protocol's keys
//  are: a usage error, said before anything is sent. True when it is not.
static bool
s_bad_key (const char *cmd, const char *key)
{
    size_t len = strlen (key);
    if (len >= 1 && len <= WC_MAX_KEY)
        return false;
    if (len == 0)
        fprintf (stderr, "walcast: %s: KEY is empty; keys are 1..%u bytes\n", cmd,
                 WC_MAX_KEY);
    else
        fprintf (stderr, "walcast: %s: KEY is %zu bytes; keys are 1..%u bytes\n", cmd,
                 len, WC_MAX_KEY);
    return true;
}

//  A NODE argument must be 1..WC_MAX_ID bytes, as node ids are: said
//  before anything is sent. True when it is not.
static bool
s_bad_node_id (const char *cmd, const char *id)
{
    size_t len = strlen (id);
    if (len >= 1 && len <= WC_MAX_ID)
        return false;
    fprintf (stderr, "walcast: %s: NODE is %zu bytes; node ids are 1..%u bytes "
             "(walcast --broker ... status lists them)\n", cmd, len, WC_MAX_ID);
    return true;
}

//  put [--acks N] [--ack-timeout MS] KEY VALUE: the write's seq.
static int
s_cmd_put (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    walcast_write_opts_t wopts;
    int i = s_write_options (args, nargs, opts->nopts, 2, "put",
                             "[--acks N] [--ack-timeout MS] KEY VALUE", &wopts, NULL);
    if (i < 0 || s_bad_key ("put", args [i]))
        return s_usage_error ();
    walcast_write_result_t result;
    int rc = walcast_put_ex (client, args [i], strlen (args [i]), args [i + 1],
                             strlen (args [i + 1]), &wopts, &result);
    if (rc)
        return s_fail (client, "put", rc);
    printf ("%" PRIu64 "\n", result.pos.seq);
    return S_EXIT_OK;
}

//  "NAME SEQ" or "NAME=SEQ" (NAME "--min-seq", say) at args[*i], an
//  option of command cmd: parse it into *seq (at least min) and step
//  past it. Returns 0, 1 when args[*i] is not that option, or -1 after
//  printing a usage error.
static int
s_parse_seq_option (char **args, int nargs, int *i, const char *cmd,
                    const char *name, uint64_t min, uint64_t *seq)
{
    size_t name_len = strlen (name);
    const char *value;
    if (*i >= nargs)
        return 1;
    if (strcmp (args [*i], name) == 0) {
        if (*i + 1 >= nargs) {
            fprintf (stderr, "walcast: %s: %s needs SEQ\n", cmd, name);
            return -1;
        }
        value = args [*i + 1];
        *i += 2;
    }
    else
    if (strncmp (args [*i], name, name_len) == 0 && args [*i][name_len] == '=') {
        value = args [*i] + name_len + 1;
        *i += 1;
    }
    else
        return 1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull (value, &end, 10);
    if (errno || end == value || *end || value [0] == '-' || v < min) {
        fprintf (stderr, "walcast: %s: %s: expected a seq (%llu or more), got '%s'\n",
                 cmd, name, (unsigned long long) min, value);
        return -1;
    }
    *seq = (uint64_t) v;
    return 0;
}

//  get [--min-seq SEQ] KEY: the value on stdout; with -v, who served it
//  on stderr.
static int
s_cmd_get (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    uint64_t min_seq = 0;
    int i = 0;
    int rc = s_parse_seq_option (args, opts->nopts, &i, "get", "--min-seq", 0,
                                 &min_seq);
    if (rc < 0)
        return s_usage_error ();
    if (nargs - i != 1) {
        fprintf (stderr, "walcast: get: expected [--min-seq SEQ] KEY\n");
        return s_usage_error ();
    }
    if (s_bad_key ("get", args [i]))
        return s_usage_error ();
    s_min_seq = min_seq > 0;
    const char *key = args [i];
    void *value;
    size_t value_len;
    walcast_served_t served;
    rc = walcast_get_ex (client, key, strlen (key), min_seq, &value,
                         &value_len, &served);
    if (opts->verbose && (rc == 0 || rc == WALCAST_ENOTFOUND)) {
        char rtt [32];
        if (served.rtt_ms >= 0)
            snprintf (rtt, sizeof rtt, "%.1f", served.rtt_ms);
        else
            snprintf (rtt, sizeof rtt, "?");
        fprintf (stderr, "served by %s (%s, %s ms)\n",
                 served.id [0] ? served.id : served.addr,
                 served.region [0] ? served.region : "-", rtt);
    }
    if (rc == WALCAST_ENOTFOUND) {
        fprintf (stderr, "walcast: not found: %s\n", key);
        return S_EXIT_NOTFOUND;
    }
    if (rc)
        return s_fail (client, "get", rc);
    if (value_len)
        fwrite (value, 1, value_len, stdout);
    putchar ('\n');
    walcast_free (value);
    return S_EXIT_OK;
}

//  del [--acks N] [--ack-timeout MS] KEY: the delete's seq.
static int
s_cmd_del (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    walcast_write_opts_t wopts;
    int i = s_write_options (args, nargs, opts->nopts, 1, "del",
                             "[--acks N] [--ack-timeout MS] KEY", &wopts, NULL);
    if (i < 0 || s_bad_key ("del", args [i]))
        return s_usage_error ();
    walcast_write_result_t result;
    int rc = walcast_del_ex (client, args [i], strlen (args [i]), &wopts, &result);
    if (rc)
        return s_fail (client, "del", rc);
    printf ("%" PRIu64 "\n", result.pos.seq);
    return S_EXIT_OK;
}

//  load [--acks N] [--ack-timeout MS] [--batch N]: "KEY VALUE" lines from
//  stdin, written pipelined in batches, each line's outcome accounted for
//  (client/load.c).
static int
s_cmd_load (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    walcast_write_opts_t wopts;
    int batch = WALCAST_MAX_BATCH;
    if (s_write_options (args, nargs, opts->nopts, 0, "load",
                         "[--acks N] [--ack-timeout MS] [--batch N]", &wopts, &batch) < 0)
        return s_usage_error ();
    walcast_set_acks (client, wopts.acks, wopts.ack_timeout_ms);
    walcast_set_batch (client, batch);
    return wc_load_run (client, stdin);
}

//  status, one node: the issue-2 "key: value" lines.
static int
s_status_one (walcast_t *client)
{
    walcast_status_t st;
    int rc = walcast_status (client, &st);
    if (rc)
        return s_fail (client, "status", rc);
    printf ("id: %s\n", st.id);
    printf ("region: %s\n", st.region [0] ? st.region : "-");
    printf ("role: %s\n", st.role);
    printf ("epoch: %" PRIu64 "\n", st.epoch);
    printf ("applied_seq: %" PRIu64 "\n", st.applied_seq);
    printf ("primary: %s\n", st.primary [0] ? st.primary : "-");
    printf ("primary_seq: %" PRIu64 "\n", st.primary_seq);
    printf ("lag: %" PRIu64 "\n", st.lag);
    printf ("lag_ms: %" PRIu64 "\n", st.lag_ms);
    return S_EXIT_OK;
}

#define S_COLUMNS   9
#define S_CELL      272

//  Copy a string into a table cell, truncating.
static void
s_cell (char *cell, const char *text)
{
    size_t len = strlen (text);
    if (len > S_CELL - 1)
        len = S_CELL - 1;
    memcpy (cell, text, len);
    cell [len] = 0;
}

//  status, a cluster: a header, then one line per node, columns aligned.
static int
s_status_table (walcast_t *client)
{
    static const char *header [S_COLUMNS] = {
        "ID", "REGION", "ROLE", "EPOCH", "APPLIED", "LAG", "LAG_MS",
        "RTT_MS", "STATE"
    };
    walcast_node_info_t nodes [256];
    size_t count = 0;
    int rc = walcast_nodes (client, nodes, sizeof nodes / sizeof nodes [0],
                            &count);
    if (rc)
        return s_fail (client, "status", rc);
    if (*walcast_last_detail (client))      /* the broker did not answer */
        fprintf (stderr, "walcast: status: %s\n", walcast_last_detail (client));
    if (count == 0) {
        fprintf (stderr, "walcast: status: no node known; check that the nodes "
                 "run and register with the broker (--broker on walcast-node)\n");
        return S_EXIT_ERROR;
    }
    char (*cells) [S_COLUMNS][S_CELL] = calloc (count, sizeof *cells);
    if (!cells) {
        fprintf (stderr, "walcast: out of memory\n");
        return S_EXIT_ERROR;
    }
    size_t width [S_COLUMNS];
    for (int c = 0; c < S_COLUMNS; c++)
        width [c] = strlen (header [c]);
    for (size_t i = 0; i < count; i++) {
        const walcast_node_info_t *n = &nodes [i];
        char (*row) [S_CELL] = cells [i];
        s_cell (row [0], n->id [0] ? n->id : n->addr);
        s_cell (row [1], n->region [0] ? n->region : "-");
        s_cell (row [2], n->role [0] ? n->role : "-");
        snprintf (row [3], S_CELL, "%" PRIu64, n->epoch);
        snprintf (row [4], S_CELL, "%" PRIu64, n->applied_seq);
        snprintf (row [5], S_CELL, "%" PRIu64, n->lag);
        snprintf (row [6], S_CELL, "%" PRIu64, n->lag_ms);
        if (n->rtt_ms >= 0)
            snprintf (row [7], S_CELL, "%.1f", n->rtt_ms);
        else
            snprintf (row [7], S_CELL, "-");
        snprintf (row [8], S_CELL, "%s", n->up ? "up" : "down");
        for (int c = 0; c < S_COLUMNS; c++)
            if (strlen (row [c]) > width [c])
                width [c] = strlen (row [c]);
    }
    for (size_t i = 0; i <= count; i++) {
        for (int c = 0; c < S_COLUMNS; c++) {
            const char *cell = i == 0 ? header [c] : cells [i - 1][c];
            if (c == S_COLUMNS - 1)
                printf ("%s\n", cell);
            else
                printf ("%-*s  ", (int) width [c], cell);
        }
    }
    free (cells);
    return S_EXIT_OK;
}

static int s_status_watch (walcast_t *client, char **args, int nargs, int nopts);

//  status [--watch [--interval MS] [--count N]]
static int
s_cmd_status (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    if (nargs > 0)
        return s_status_watch (client, args, nargs, opts->nopts);
    if (opts->broker || opts->nnodes > 1)
        return s_status_table (client);
    return s_status_one (client);
}

static int
s_cmd_digest (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    (void) opts; (void) args; (void) nargs;
    uint64_t seq, hash;
    int rc = walcast_digest (client, &seq, &hash);
    if (rc)
        return s_fail (client, "digest", rc);
    printf ("%" PRIu64 " %016" PRIx64 "\n", seq, hash);
    return S_EXIT_OK;
}

//  snapshot: "SEQ BYTES" of the snapshot the node took.
static int
s_cmd_snapshot (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    (void) opts; (void) args; (void) nargs;
    uint64_t seq, bytes;
    int rc = walcast_snapshot (client, &seq, &bytes);
    if (rc)
        return s_fail (client, "snapshot", rc);
    printf ("%" PRIu64 " %" PRIu64 "\n", seq, bytes);
    return S_EXIT_OK;
}

//  switchover NODE: "EPOCH HOST:PORT" of the new primary.
static int
s_cmd_switchover (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    (void) opts; (void) nargs;
    if (s_bad_node_id ("switchover", args [0]))
        return s_usage_error ();
    uint64_t epoch = 0;
    char addr [256];
    int rc = walcast_switchover (client, args [0], &epoch, addr, sizeof addr);
    if (rc)
        return s_fail (client, "switchover", rc);
    printf ("%" PRIu64 " %s\n", epoch, addr);
    return S_EXIT_OK;
}

//  forget NODE: the broker drops NODE (down, removed for good) from its
//  directory. Prints nothing.
static int
s_cmd_forget (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    (void) opts; (void) nargs;
    if (s_bad_node_id ("forget", args [0]))
        return s_usage_error ();
    int rc = walcast_forget (client, args [0]);
    return rc ? s_fail (client, "forget", rc) : S_EXIT_OK;
}

/*  Set by SIGINT / SIGTERM while watching; the watch's handle, which
    the handler tells to stop (walcast_watch_stop only sets a flag). */
static volatile sig_atomic_t s_interrupted = 0;
static walcast_t *s_watching = NULL;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_interrupted = 1;
    if (s_watching)
        walcast_watch_stop (s_watching);
}

//  Print one change: "SEQ put KEY VALUE" or "SEQ del KEY", flushed.
static int
s_watch_print (void *arg, uint64_t seq, int op, const void *key,
               size_t key_len, const void *value, size_t value_len)
{
    (void) arg;
    printf ("%" PRIu64 " %s ", seq, op == 2 ? "del" : "put");
    fwrite (key, 1, key_len, stdout);
    if (op != 2) {
        putchar (' ');
        if (value_len)
            fwrite (value, 1, value_len, stdout);
    }
    putchar ('\n');
    if (fflush (stdout) || ferror (stdout))
        return 2;               // stdout is gone: stop
    return s_interrupted ? 1 : 0;
}

//  The watched node went silent and the library moved on: say so.
static void
s_watch_switched (void *arg, const char *from, const char *to)
{
    (void) arg;
    fprintf (stderr, "watch: %s silent, now watching %s\n", from, to);
}

//  On SIGINT and SIGTERM, stop the watch (no SA_RESTART: a wait they
//  interrupt ends too).
static void
s_watch_signals (walcast_t *client)
{
    s_watching = client;
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset (&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
}

//  A number option of status --watch ("--interval MS", "--count N",
//  or NAME=VALUE) at args[*i], min..max: 0 (stepped past, *value set),
//  1 (not this option), -1 (usage error printed).
static int
s_parse_count_option (char **args, int nargs, int *i, const char *name, long min,
                      long max, long *value)
{
    size_t name_len = strlen (name);
    const char *text;
    if (*i >= nargs)
        return 1;
    if (strcmp (args [*i], name) == 0 && *i + 1 < nargs) {
        text = args [*i + 1];
        *i += 2;
    }
    else
    if (strncmp (args [*i], name, name_len) == 0 && args [*i][name_len] == '=') {
        text = args [*i] + name_len + 1;
        *i += 1;
    }
    else
    if (strcmp (args [*i], name) == 0) {
        fprintf (stderr, "walcast: status: %s needs a number\n", name);
        return -1;
    }
    else
        return 1;
    char *end;
    errno = 0;
    long v = strtol (text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        fprintf (stderr, "walcast: status: %s expects a number %ld..%ld, got '%s'\n",
                 name, min, max, text);
        return -1;
    }
    *value = v;
    return 0;
}

//  Sleep ms, or less when a signal came.
static void
s_nap (long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep (&ts, NULL);
}

//  status --watch [--interval MS] [--count N]: the cluster's table again
//  every MS (default 1000), until SIGINT/SIGTERM or N tables. On a
//  terminal the screen is redrawn in place; piped, each table follows
//  the last after a "time" line, so a script can read them. A failed
//  refresh says why (on stderr, and on screen) and the watch goes on.
static int
s_status_watch (walcast_t *client, char **args, int nargs, int nopts)
{
    long interval = 1000, count = 0;
    int i = 0;
    bool watch = false;
    while (i < nopts) {
        if (strcmp (args [i], "--watch") == 0) {
            watch = true;
            i++;
            continue;
        }
        int rc = s_parse_count_option (args, nopts, &i, "--interval", 100, 3600000,
                                       &interval);
        if (rc == 1)
            rc = s_parse_count_option (args, nopts, &i, "--count", 1, 1000000000L, &count);
        if (rc == 1) {
            fprintf (stderr, "walcast: status: unknown option '%s' (expected --watch "
                     "[--interval MS] [--count N])\n", args [i]);
            s_global_hint ("status", args + i, 1);
            return s_usage_error ();
        }
        if (rc < 0)
            return s_usage_error ();
    }
    if (i < nargs) {
        fprintf (stderr, "walcast: status: takes no arguments, only options (--watch "
                 "[--interval MS] [--count N]), got '%s'\n", args [i]);
        return s_usage_error ();
    }
    if (!watch) {
        fprintf (stderr, "walcast: status: --interval and --count go with --watch\n");
        return s_usage_error ();
    }
    s_watch_signals (client);
    bool tty = isatty (STDOUT_FILENO);
    for (long n = 0; !s_interrupted && (count == 0 || n < count); n++) {
        if (n > 0)
            s_nap (interval);
        if (s_interrupted)
            break;
        time_t now = time (NULL);
        char when [32];
        strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime (&now));
        if (tty)
            printf ("\033[H\033[2J");     /* home, clear */
        else
        if (n > 0)
            printf ("\n");
        printf ("time %s (every %ld ms%s)\n", when, interval,
                tty ? "; Ctrl-C to stop" : "");
        if (s_status_table (client) != S_EXIT_OK && tty)
            printf ("(no answer: %s)\n", walcast_last_detail (client));
        if (fflush (stdout) || ferror (stdout))
            return S_EXIT_ERROR;            /* stdout is gone */
    }
    return S_EXIT_OK;
}

//  watch [--from SEQ] [PREFIX]: every change under PREFIX, from SEQ on
//  (default: from now), in seq order, none lost, until SIGINT or
//  SIGTERM (exit 0). When the library returns for another reason (a
//  signal that interrupted its wait) the loop goes back in where it
//  stopped (the position it reports), so nothing is skipped or printed
//  twice. When the watched node goes silent the library moves to the
//  next one and a line on stderr says so; with none left, or when the
//  node no longer holds SEQ, the watch fails (exit 3).
//  keygen NAME: a new key pair as NAME and NAME_secret, in czmq's
//  format; the public key on stdout. Exit 1 when they cannot be written
//  (one exists already: a key pair is never overwritten).
static int
s_cmd_keygen (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    (void) client; (void) opts; (void) nargs;
    const char *name = args [0];
    if (!*name) {
        fprintf (stderr, "walcast: keygen: NAME is empty\n");
        return s_usage_error ();
    }
    char why [PATH_MAX * 2 + 128];
    int rc = wc_certs_generate (name, why, sizeof why);
    wc_certs_keys_t keys;
    if (rc == 0)
        rc = wc_certs_load (name, false, &keys, why, sizeof why);
    if (rc) {
        fprintf (stderr, "walcast: keygen: %s\n", why);
        return S_EXIT_NOTFOUND;
    }
    printf ("%s\n", keys.public_key);
    return S_EXIT_OK;
}

static int
s_cmd_watch (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    (void) opts;
    uint64_t position = 0, epoch = 0;
    int i = 0;
    for (int rc = 0; rc == 0; ) {         /* --from and --epoch, in any order */
        rc = s_parse_seq_option (args, opts->nopts, &i, "watch", "--from", 1,
                                 &position);
        if (rc == 1)
            rc = s_parse_seq_option (args, opts->nopts, &i, "watch", "--epoch", 1,
                                     &epoch);
        if (rc < 0)
            return s_usage_error ();
    }
    if (nargs - i > 1) {
        fprintf (stderr, "walcast: watch: expected [--from SEQ [--epoch E]] [PREFIX]\n");
        return s_usage_error ();
    }
    if (epoch && !position) {
        fprintf (stderr, "walcast: watch: --epoch goes with --from (the epoch of the "
                 "change before SEQ, as the watch said when it stopped)\n");
        return s_usage_error ();
    }
    if (epoch)
        walcast_watch_resume (client, position, epoch);
    const char *prefix = i < nargs ? args [i] : "";
    if (strlen (prefix) > WC_MAX_KEY) {
        fprintf (stderr, "walcast: watch: PREFIX is %zu bytes; prefixes are 0..%u "
                 "bytes, as keys are at most %u\n", strlen (prefix), WC_MAX_KEY,
                 WC_MAX_KEY);
        return s_usage_error ();
    }
    walcast_set_watch_notify (client, s_watch_switched, NULL);
    s_watch_signals (client);
    while (!s_interrupted) {
        int rc = walcast_watch (client, prefix, strlen (prefix), &position,
                                s_watch_print, NULL, -1);
        if (rc == 2) {
            fprintf (stderr, "walcast: watch: writing stdout: %s\n", strerror (errno));
            return S_EXIT_ERROR;
        }
        if (rc < 0)
            return s_fail (client, "watch", rc);
        if (rc > 0)
            break;
    }
    //  Where to go on from, with what lets the next watch check that
    //  nothing printed was rolled back meanwhile
    if (walcast_watch_epoch (client))
        fprintf (stderr, "walcast: watch: stopped before seq %" PRIu64 "; go on with "
                 "--from %" PRIu64 " --epoch %" PRIu64 "\n", position, position,
                 walcast_watch_epoch (client));
    return S_EXIT_OK;
}

static const s_command_t s_commands [] = {
    { "put", "[--acks N] [--ack-timeout MS] KEY VALUE", 2, 6,
      "write KEY = VALUE on the primary; prints the write's seq; --acks N: "
      "only once N replicas (0..254, or all: every current one) hold it, "
      "waiting up to --ack-timeout MS (default: the node's, 5000) on top of "
      "--timeout; else exit 3: durable on the primary, not confirmed replicated",
      s_cmd_put, 0, false, false },
    { "get", "[--min-seq SEQ] KEY", 1, 3,
      "print KEY's value (exit 1 if absent); --min-seq: only from a node "
      "that has applied SEQ (a token from another writer)", s_cmd_get, 0, false, false },
    { "del", "[--acks N] [--ack-timeout MS] KEY", 1, 5,
      "delete KEY; prints the write's seq; --acks as for put", s_cmd_del, 0, false, false },
    { "load", "[--acks N] [--ack-timeout MS] [--batch N]", 0, 6,
      "write \"KEY VALUE\" lines from stdin; prints \"COUNT LAST_SEQ\" of "
      "what landed, and on stderr \"failed KEY: MESSAGE\" or \"unknown KEY: "
      "MESSAGE\" for each line that did not (resubmitting exactly those is "
      "safe); --acks as for put: a line the replicas did not confirm in time "
      "is unknown; --batch N: at most N writes per message (1..1024, default "
      "1024; 1: each alone, as nodes before 0.4 need)",
      s_cmd_load, 0, false, false },
    { "status", "[--watch [--interval MS] [--count N]]", 0, 5,
      "one node: its role, epoch, seqs and lag; with --broker or several "
      "--node: one line per node; --watch: the table again every MS (default "
      "1000) until Ctrl-C or N tables, redrawn in place on a terminal, one "
      "after the other (each after a \"time ...\" line) when piped",
      s_cmd_status, 0, false, false },
    { "digest", "", 0, 0,
      "print the node's (with --broker: the primary's; else the first --node's) "
      "applied seq and a hash of its data", s_cmd_digest, 0, false, false },
    { "snapshot", "", 0, 0,
      "make the node (the first --node; with --broker only, the primary) take "
      "a snapshot of its state now; prints \"SEQ BYTES\" once it is on disk; "
      "waits up to 60 s unless --timeout says otherwise",
      s_cmd_snapshot, 60000, false, false },
    { "switchover", "NODE", 1, 1,
      "needs --broker: hand the primary role over to node NODE (its id) with "
      "no write lost; prints \"EPOCH HOST:PORT\" of the new primary; waits up "
      "to 30 s unless --timeout says otherwise",
      s_cmd_switchover, 30000, true, false },
    { "forget", "NODE", 1, 1,
      "needs --broker: the broker drops node NODE (its id), down and removed "
      "for good, from its directory (status, the status page, its metrics); "
      "refused for a node that is up or the primary",
      s_cmd_forget, 0, true, false },
    { "watch", "[--from SEQ [--epoch E]] [PREFIX]", 0, 5,
      "print every change to keys under PREFIX, in seq order, none lost: "
      "\"SEQ put KEY VALUE\" or \"SEQ del KEY\"; from now, or from SEQ on "
      "(to resume after the last SEQ printed); runs until interrupted, then "
      "says on stderr how to go on (--from SEQ --epoch E: E lets the next "
      "watch check that no change printed was rolled back meanwhile)",
      s_cmd_watch, 0, false, false },
    { "keygen", "NAME", 1, 1,
      "write a new CURVE key pair as NAME (the public certificate, for servers' "
      "trust folders and --curve-server/--curve-broker) and NAME_secret (mode "
      "0600, for --curve-cert); prints the public key; never overwrites (exit 1); "
      "needs no node", s_cmd_keygen, 0, false, true },
};
#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands [0])

/* --- usage and parsing ------------------------------------------------- */

//  The synopsis, from the option table, wrapped at 79 columns.
static void
s_print_synopsis (FILE *out)
{
    const char *head = "usage: walcast";
    int column = fprintf (out, "%s", head);
    for (size_t i = 0; i <= S_NOPTIONS; i++) {
        char item [96];
        if (i == S_NOPTIONS)
            snprintf (item, sizeof item, "COMMAND [ARGS]");
        else {
            const s_option_t *o = &s_options [i];
            if (o->short_name)
                snprintf (item, sizeof item, "[%s|%s]", o->short_name, o->name);
            else
            if (o->arg)
                snprintf (item, sizeof item, "[%s %s]%s", o->name, o->arg,
                          o->set == s_set_node ? "..." : "");
            else
                snprintf (item, sizeof item, "[%s]", o->name);
        }
        if (column + 1 + (int) strlen (item) > 79)
            column = fprintf (out, "\n%*s", (int) strlen (head), "") - 1;
        column += fprintf (out, " %s", item);
    }
    fprintf (out, "\n");
}

//  Usage error: the reason was printed; add the synopsis.
static int
s_usage_error (void)
{
    s_print_synopsis (stderr);
    fprintf (stderr, "Try 'walcast --help' for more.\n");
    return S_EXIT_USAGE;
}

//  Text wrapped at 79 columns, from column indent on (where the cursor
//  is), its next lines indented as much.
static void
s_print_wrapped (const char *text, int indent)
{
    const int width = 79 - indent;
    while (*text) {
        int len = (int) strlen (text);
        int take = len;
        if (len > width) {
            take = width;
            while (take > 0 && text [take] != ' ')
                take--;
            if (take == 0)
                take = width;
        }
        printf ("%.*s\n", take, text);
        text += take;
        while (*text == ' ')
            text++;
        if (*text)
            printf ("%*s", indent, "");
    }
}

//  One help entry: left column, then text wrapped at 79 columns and
//  indented under itself.
static void
s_print_entry (const char *left, const char *text)
{
    const int indent = 25;
    printf ("  %-22s", left);
    if ((int) strlen (left) > 22)
        printf ("\n%*s", indent, "");
    else
        putchar (' ');
    s_print_wrapped (text, indent);
}

//  What -h / --help and "--" after a command do: for both helps.
#define S_COMMAND_FLAGS \
    "After COMMAND, -h or --help among its options prints the " \
    "command's usage and does nothing else; \"--\" ends its options: what " \
    "follows is taken as it " \
    "is, a KEY or a NAME that starts with '-' or is --help (walcast put -- " \
    "--help VALUE writes key \"--help\")."

//  COMMAND -h / --help: its usage and what it does, on stdout.
static void
s_print_command_help (const s_command_t *cmd)
{
    printf ("usage: walcast [OPTIONS] %s%s%s\n\n", cmd->name, cmd->args [0] ? " " : "",
            cmd->args);
    s_print_wrapped (cmd->help, 0);
    printf ("\n");
    s_print_wrapped ("OPTIONS are the options before the command (walcast --help "
                     "lists them). " S_COMMAND_FLAGS, 0);
}

static void
s_print_help (void)
{
    s_print_synopsis (stdout);
    printf ("\nwalcast talks to walcast nodes: writes go to the primary, "
            "reads to a node.\n\nOptions (before the command):\n");
    for (size_t i = 0; i < S_NOPTIONS; i++) {
        const s_option_t *o = &s_options [i];
        char left [64];
        snprintf (left, sizeof left, "%s%s%s%s%s",
                  o->short_name ? o->short_name : "",
                  o->short_name ? ", " : "", o->name,
                  o->arg ? " " : "", o->arg ? o->arg : "");
        s_print_entry (left, o->help);
    }
    printf ("\nCommands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const s_command_t *c = &s_commands [i];
        char left [64];
        snprintf (left, sizeof left, "%s %s", c->name, c->args);
        s_print_entry (left, c->help);
    }
    printf ("\n");
    s_print_wrapped (S_COMMAND_FLAGS, 0);
    printf ("\nReads. With --broker (or several --node), the client PINGs every "
            "node, keeps\nan RTT average per node and picks by --read: nearest "
            "takes the nodes within\n15 ms of the lowest RTT, its --region "
            "first; a node that stops answering is\nskipped. --consistency "
            "session (the default) reads what this run wrote;\nstrong reads "
            "the primary; eventual reads anything. A node behind the read's\n"
            "token or staler than --max-staleness declines, and the next one is "
            "tried.\n-v prints \"served by ID (REGION, RTT ms)\" on stderr.\n");
    printf ("\nExit status: 0 success, 1 not found (get) or keygen's files not "
            "written,\n2 usage error, 3 error from the node or the network, or a "
            "load line that\nfailed, is unknown or is malformed.\n");
}

//  Find a flag by its long or short name.
static const s_option_t *
s_find_option (const char *name, size_t name_len)
{
    for (size_t i = 0; i < S_NOPTIONS; i++) {
        const s_option_t *o = &s_options [i];
        if ((strlen (o->name) == name_len
             && memcmp (o->name, name, name_len) == 0)
        ||  (o->short_name && strlen (o->short_name) == name_len
             && memcmp (o->short_name, name, name_len) == 0))
            return o;
    }
    return NULL;
}

//  Parse the global flags (argv[1..] up to the command). Accepts "--flag
//  VALUE" and "--flag=VALUE". Returns the index of the command, or -1
//  after printing a usage error.
static int
s_parse_options (int argc, char **argv, s_opts_t *opts)
{
    int i = 1;
    while (i < argc && argv [i][0] == '-' && argv [i][1] != 0) {
        const char *arg = argv [i];
        if (strcmp (arg, "--") == 0)
            return i + 1;
        const char *eq = strncmp (arg, "--", 2) == 0 ? strchr (arg, '=') : NULL;
        size_t name_len = eq ? (size_t) (eq - arg) : strlen (arg);
        const s_option_t *o = s_find_option (arg, name_len);
        if (!o) {
            fprintf (stderr, "walcast: unknown option '%.*s'\n",
                     (int) name_len, arg);
            return -1;
        }
        const char *value = NULL;
        if (o->arg) {
            if (eq)
                value = eq + 1;
            else
            if (i + 1 < argc)
                value = argv [++i];
            else {
                fprintf (stderr, "walcast: %s needs %s\n", o->name, o->arg);
                return -1;
            }
        }
        else
        if (eq) {
            fprintf (stderr, "walcast: %s takes no value\n", o->name);
            return -1;
        }
        if (o->set (opts, value))
            return -1;
        i++;
    }
    return i;
}

//  A command's usage error: when one of args[0..nargs) (those before a
//  "--") names an option of walcast itself (--timeout after the command,
//  say), say where it goes.
static void
s_global_hint (const char *cmd, char **args, int nargs)
{
    for (int i = 0; i < nargs; i++) {
        if (args [i][0] != '-' || strcmp (args [i], "-") == 0)
            continue;
        const char *eq = strncmp (args [i], "--", 2) == 0 ? strchr (args [i], '=') : NULL;
        size_t len = eq ? (size_t) (eq - args [i]) : strlen (args [i]);
        const s_option_t *o = s_find_option (args [i], len);
        if (!o)
            continue;
        fprintf (stderr, "walcast: %s: %.*s is an option of walcast, not of %s: give "
                 "it before the command (walcast %s%s%s %s ...)\n", cmd, (int) len,
                 args [i], cmd, o->name, o->arg ? " " : "", o->arg ? o->arg : "", cmd);
        return;
    }
}

//  The command named at argv[first]; NULL after printing a usage error.
static const s_command_t *
s_find_command (int argc, char **argv, int first)
{
    if (first >= argc) {
        fprintf (stderr, "walcast: missing command\n");
        return NULL;
    }
    const s_command_t *cmd = NULL;
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp (argv [first], s_commands [i].name) == 0)
            cmd = &s_commands [i];
    if (!cmd)
        fprintf (stderr, "walcast: unknown command '%s'\n", argv [first]);
    return cmd;
}

//  The commands' options that take a value (the next argument).
static bool
s_option_takes_value (const char *arg)
{
    static const char *const with_value [] = {
        "--acks", "--ack-timeout", "--batch", "--min-seq", "--from", "--epoch",
        "--interval", "--count", NULL
    };
    for (int i = 0; with_value [i]; i++)
        if (strcmp (arg, with_value [i]) == 0)
            return true;
    return false;
}

//  Does the command ask for its help: -h or --help where an option may
//  stand, i.e. among the options before the first argument that is not
//  one (and before a "--")? After that it is data: `put k -h` writes the
//  value "-h", as it always did, so a script's value never turns into a
//  help that exits 0 having written nothing.
static bool
s_wants_help (char **args, int nargs)
{
    for (int i = 0; i < nargs && strcmp (args [i], "--") != 0; i++) {
        if (strcmp (args [i], "-h") == 0 || strcmp (args [i], "--help") == 0)
            return true;
        if (s_option_takes_value (args [i]))
            i++;                        /* and its value */
        else
        if (strcmp (args [i], "--watch") != 0)
            return false;               /* the first KEY, VALUE, NAME or PREFIX */
    }
    return false;
}

//  Drop the first "--" of args[0..*nargs) and say how many arguments came
//  before it (all of them when there is none): those only may be options.
static int
s_end_options (char **args, int *nargs)
{
    for (int i = 0; i < *nargs; i++)
        if (strcmp (args [i], "--") == 0) {
            memmove (args + i, args + i + 1, (size_t) (*nargs - i - 1) * sizeof *args);
            (*nargs)--;
            return i;
        }
    return *nargs;
}

//  Are there as many arguments as cmd takes? False after printing a
//  usage error.
static bool
s_check_count (const s_command_t *cmd, char **args, int nargs, int nopts)
{
    if (nargs < cmd->min_args || nargs > cmd->max_args) {
        if (cmd->max_args == 0)
            fprintf (stderr, "walcast: %s takes no arguments\n", cmd->name);
        else
            fprintf (stderr, "walcast: %s: expected %s\n", cmd->name, cmd->args);
        s_global_hint (cmd->name, args, nopts);
        return false;
    }
    return true;
}

//  --debug: the library's debug lines on stderr.
static void
s_print_debug (void *arg, const char *line)
{
    (void) arg;
    fprintf (stderr, "walcast: debug: %s\n", line);
}

//  Connect the client to the broker and the nodes the flags name.
//  Returns an exit code (0: connected).
static int
s_connect (walcast_t *client, const s_opts_t *opts)
{
    int rc = opts->broker ? walcast_connect_broker (client, opts->broker) : 0;
    if (rc == WALCAST_EINVAL) {
        fprintf (stderr, "walcast: --broker '%s': expected HOST:PORT (port "
                 "1..65534)\n", opts->broker);
        return s_usage_error ();
    }
    if (rc == WALCAST_ETIMEOUT && opts->patient)
        fprintf (stderr, "walcast: status: the broker at %s did not answer; the watch "
                 "goes on and asks it again at every table\n", opts->broker);
    else
    if (rc) {
        char name [300];
        snprintf (name, sizeof name, "--broker '%s'", opts->broker);
        return s_fail (client, name, rc);
    }
    for (int i = 0; i < opts->nnodes; i++) {
        rc = walcast_connect (client, opts->nodes [i]);
        if (rc == WALCAST_EINVAL) {
            fprintf (stderr, "walcast: --node '%s': expected HOST:PORT (port "
                     "1..65533)\n", opts->nodes [i]);
            return s_usage_error ();
        }
        if (rc) {
            const char *detail = walcast_last_detail (client);
            fprintf (stderr, "walcast: --node '%s': %s\n", opts->nodes [i],
                     detail [0] ? detail : walcast_strerror (rc));
            return S_EXIT_ERROR;
        }
    }
    return S_EXIT_OK;
}

//  The CURVE flags, before the client connects. An exit code: a file
//  that is not the certificate it should be is a usage error, said
//  with the library's detail (which file, what is wrong).
static int
s_curve_setup (walcast_t *client, const s_opts_t *opts)
{
    struct {
        const char *flag, *path;
        int (*set) (walcast_t *, const char *);
    } curve [] = {
        { "--curve-cert", opts->curve_cert, walcast_set_curve_cert },
        { "--curve-server", opts->curve_server, walcast_set_curve_server },
        { "--curve-broker", opts->curve_broker, walcast_set_curve_broker },
    };
    for (size_t i = 0; i < sizeof curve / sizeof curve [0]; i++) {
        if (!curve [i].path)
            continue;
        int rc = curve [i].set (client, curve [i].path);
        if (rc) {
            fprintf (stderr, "walcast: %s: %s\n", curve [i].flag,
                     walcast_last_detail (client) [0] ? walcast_last_detail (client)
                                                      : walcast_strerror (rc));
            return s_usage_error ();
        }
    }
    return S_EXIT_OK;
}

//  A client handle set up as the flags say for command cmd, in
//  *client_p; returns an exit code (0: ready).
static int
s_open_client (const s_opts_t *opts, const s_command_t *cmd, walcast_t **client_p)
{
    walcast_t *client = walcast_new ();
    if (!client) {
        fprintf (stderr, "walcast: out of memory\n");
        return S_EXIT_ERROR;
    }
    *client_p = client;
    if (opts->debug)
        walcast_set_log (client, s_print_debug, NULL);
    if (opts->timeout_ms > 0)
        walcast_set_timeout (client, opts->timeout_ms);
    else
    if (cmd->timeout_ms > 0)
        walcast_set_timeout (client, cmd->timeout_ms);
    if (opts->has_read)
        walcast_set_read (client, opts->read, opts->read_region);
    if (opts->has_consistency)
        walcast_set_consistency (client, opts->consistency);
    if (opts->region)
        walcast_set_region (client, opts->region);
    s_follows = opts->broker || opts->nnodes > 1;
    walcast_set_max_staleness (client, opts->max_staleness);
    int exit_code = s_curve_setup (client, opts);
    return exit_code ? exit_code : s_connect (client, opts);
}

//  Parse the flags, find the command, open the client and run the
//  command; the exit code.
static int
s_main (int argc, char **argv, s_opts_t *opts, walcast_t **client)
{
    int first = s_parse_options (argc, argv, opts);
    if (first < 0)
        return s_usage_error ();
    if (opts->help) {
        s_print_help ();
        return S_EXIT_OK;
    }
    if (opts->version) {
        printf ("walcast %s\n", walcast_version (NULL, NULL, NULL));
        return S_EXIT_OK;
    }
    const s_command_t *cmd = s_find_command (argc, argv, first);
    if (!cmd)
        return s_usage_error ();
    char **args = argv + first + 1;
    int nargs = argc - first - 1;
    if (s_wants_help (args, nargs)) {
        s_print_command_help (cmd);
        return S_EXIT_OK;
    }
    opts->nopts = s_end_options (args, &nargs);
    if (!s_check_count (cmd, args, nargs, opts->nopts))
        return s_usage_error ();
    if (cmd->local)
        return cmd->run (NULL, opts, args, nargs);
    if (opts->nnodes == 0 && !opts->broker) {
        fprintf (stderr, "walcast: no node given (use --node HOST:PORT or "
                 "--broker HOST:PORT)\n");
        return s_usage_error ();
    }
    if (cmd->needs_broker && !opts->broker) {
        fprintf (stderr, "walcast: %s needs --broker HOST:PORT (the broker runs "
                 "it)\n", cmd->name);
        return s_usage_error ();
    }
    for (int i = 0; i < opts->nopts && cmd->run == s_cmd_status; i++)
        if (strcmp (args [i], "--watch") == 0)
            opts->patient = true;
    int exit_code = s_open_client (opts, cmd, client);
    if (exit_code == S_EXIT_OK)
        exit_code = cmd->run (*client, opts, args, nargs);
    return exit_code;
}

int
main (int argc, char **argv)
{
    s_opts_t opts;
    memset (&opts, 0, sizeof opts);
    opts.nodes = calloc ((size_t) argc + 1, sizeof opts.nodes [0]);
    if (!opts.nodes) {
        fprintf (stderr, "walcast: out of memory\n");
        return S_EXIT_ERROR;
    }
    walcast_t *client = NULL;
    int exit_code = s_main (argc, argv, &opts, &client);
    //  The data out before the handle's teardown (libzmq's threads end
    //  there): what the command printed is the user's, whatever follows
    if (fflush (stdout) || ferror (stdout)) {
        fprintf (stderr, "walcast: writing stdout: %s\n", strerror (errno));
        if (exit_code == S_EXIT_OK)
            exit_code = S_EXIT_ERROR;
    }
    walcast_destroy (&client);
    free (opts.nodes);
    return exit_code;
}
