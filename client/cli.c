/*  cli.c - the walcast command: put, get, del, load, status, digest.

        walcast [--node HOST:PORT]... [--timeout MS] COMMAND [ARGS]

    A thin shell over libwalcast. Two tables drive it: s_options, the
    global flags (each with a setter that fills s_opts_t), and s_commands,
    the commands (each with its argument count and a handler). Adding a
    flag or a command is adding a row and a function; the parser, the
    usage text and the help are generated from the tables.

    Global flags come before the command; everything after the command
    is its arguments, taken as they are (so a value may start with '-').

    Exit codes: 0 success, 1 not found (get), 2 usage error, 3 an error
    from the node or the network ("walcast: COMMAND: <message>" on
    stderr). Results go to stdout, diagnostics and progress to stderr.
*/
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include "walcast.h"

#define S_EXIT_OK        0
#define S_EXIT_NOTFOUND  1
#define S_EXIT_USAGE     2
#define S_EXIT_ERROR     3

/*  What the global flags set. */
typedef struct {
    const char **nodes;         /* --node values, in order (argv strings) */
    int          nnodes;
    int          timeout_ms;    /* --timeout, 0 = library default */
    bool         help;          /* --help: print usage, exit 0 */
    bool         version;       /* --version: print version, exit 0 */
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
} s_command_t;

//  Monotonic clock in ms.
static int64_t
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Report a library error for command `name` and return the exit code.
static int
s_fail (walcast_t *client, const char *name, int rc)
{
    const char *detail = walcast_last_detail (client);
    if (rc == WALCAST_ENOTPRIMARY && detail [0])
        fprintf (stderr, "walcast: %s: %s (primary is %s)\n",
                 name, walcast_strerror (rc), detail);
    else
        fprintf (stderr, "walcast: %s: %s\n", name, walcast_strerror (rc));
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
    { "--node", NULL, "HOST:PORT",
      "a node (its base port); the first serves reads and writes",
      s_set_node },
    { "--timeout", NULL, "MS",
      "bound on every request, in ms (default 5000)", s_set_timeout },
    { "--help", "-h", NULL, "show this help", s_set_help },
    { "--version", NULL, NULL, "show the version", s_set_version },
};
#define S_NOPTIONS (sizeof s_options / sizeof s_options [0])

/* --- commands ---------------------------------------------------------- */

static int
s_cmd_put (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    (void) opts; (void) nargs;
    walcast_pos_t pos;
    int rc = walcast_put (client, args [0], strlen (args [0]),
                          args [1], strlen (args [1]), &pos);
    if (rc)
        return s_fail (client, "put", rc);
    printf ("%" PRIu64 "\n", pos.seq);
    return S_EXIT_OK;
}

static int
s_cmd_get (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    (void) opts; (void) nargs;
    void *value;
    size_t value_len;
    int rc = walcast_get (client, args [0], strlen (args [0]),
                          &value, &value_len, NULL);
    if (rc == WALCAST_ENOTFOUND) {
        fprintf (stderr, "walcast: not found: %s\n", args [0]);
        return S_EXIT_NOTFOUND;
    }
    if (rc)
        return s_fail (client, "get", rc);
    if (value_len)
        fwrite (value, 1, value_len, stdout);
    putchar ('\n');
    free (value);
    return S_EXIT_OK;
}

static int
s_cmd_del (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    (void) opts; (void) nargs;
    walcast_pos_t pos;
    int rc = walcast_del (client, args [0], strlen (args [0]), &pos);
    if (rc)
        return s_fail (client, "del", rc);
    printf ("%" PRIu64 "\n", pos.seq);
    return S_EXIT_OK;
}

//  load: "KEY VALUE" lines from stdin, written pipelined. A bad line is
//  reported and counted and the load goes on; an error from the node or
//  the network stops it. Prints "COUNT LAST_SEQ" of what was acknowledged.
static int
s_cmd_load (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    (void) opts; (void) args; (void) nargs;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    uint64_t lineno = 0, sent = 0, bad = 0;
    int64_t start = s_now ();
    int64_t report_at = start;
    uint64_t report_sent = 0;
    int rc = 0;

    while ((n = getline (&line, &line_cap, stdin)) >= 0) {
        lineno++;
        size_t len = (size_t) n;
        if (len > 0 && line [len - 1] == '\n')
            len--;
        if (len == 0)
            continue;
        char *space = memchr (line, ' ', len);
        if (!space || space == line) {
            fprintf (stderr, "walcast: load: line %" PRIu64
                     ": expected KEY VALUE\n", lineno);
            bad++;
            continue;
        }
        size_t key_len = (size_t) (space - line);
        rc = walcast_put_async (client, line, key_len,
                                space + 1, len - key_len - 1);
        if (rc == WALCAST_EINVAL || rc == WALCAST_ETOOBIG) {
            fprintf (stderr, "walcast: load: line %" PRIu64 ": %s\n",
                     lineno, walcast_strerror (rc));
            bad++;
            rc = 0;
            continue;
        }
        if (rc)
            break;              // node or network: stop, flush says more
        sent++;
        int64_t now = s_now ();
        if (now - report_at >= 1000) {
            fprintf (stderr, "load: %" PRIu64 " writes, %.0f/s\n", sent,
                     (double) (sent - report_sent) * 1000.0
                     / (double) (now - report_at));
            report_at = now;
            report_sent = sent;
        }
    }
    bool read_failed = rc == 0 && ferror (stdin);
    int read_errno = errno;
    free (line);

    walcast_pos_t last;
    uint64_t acked;
    int flush_rc = walcast_flush (client, &last, &acked);
    double secs = (double) (s_now () - start) / 1000.0;
    printf ("%" PRIu64 " %" PRIu64 "\n", acked, last.seq);
    fprintf (stderr, "load: %" PRIu64 " writes in %.1f s (%.0f/s)\n", acked,
             secs, (double) acked / (secs > 0.001 ? secs : 0.001));

    if (flush_rc)
        return s_fail (client, "load", flush_rc);
    if (rc)
        return s_fail (client, "load", rc);
    if (read_failed) {
        fprintf (stderr, "walcast: load: reading stdin: %s\n",
                 strerror (read_errno));
        return S_EXIT_ERROR;
    }
    if (bad) {
        fprintf (stderr, "walcast: load: %" PRIu64 " bad line%s skipped\n",
                 bad, bad == 1 ? "" : "s");
        return S_EXIT_ERROR;
    }
    return S_EXIT_OK;
}

static int
s_cmd_status (walcast_t *client, const s_opts_t *opts, char **args, int nargs)
{
    (void) opts; (void) args; (void) nargs;
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

static const s_command_t s_commands [] = {
    { "put", "KEY VALUE", 2, 2,
      "write KEY = VALUE on the primary; prints the write's seq", s_cmd_put },
    { "get", "KEY", 1, 1,
      "print KEY's value (exit 1 if absent)", s_cmd_get },
    { "del", "KEY", 1, 1,
      "delete KEY; prints the write's seq", s_cmd_del },
    { "load", "", 0, 0,
      "write \"KEY VALUE\" lines from stdin; prints \"COUNT LAST_SEQ\"",
      s_cmd_load },
    { "status", "", 0, 0,
      "show the node's role, epoch, seqs and lag", s_cmd_status },
    { "digest", "", 0, 0,
      "print the node's applied seq and a hash of its data", s_cmd_digest },
};
#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands [0])

/* --- usage and parsing ------------------------------------------------- */

//  The one-line synopsis, from the option table.
static void
s_print_synopsis (FILE *out)
{
    fprintf (out, "usage: walcast");
    for (size_t i = 0; i < S_NOPTIONS; i++) {
        const s_option_t *o = &s_options [i];
        if (o->short_name)
            fprintf (out, " [%s|%s]", o->short_name, o->name);
        else
        if (o->arg)
            fprintf (out, " [%s %s]%s", o->name, o->arg,
                     o->set == s_set_node ? "..." : "");
        else
            fprintf (out, " [%s]", o->name);
    }
    fprintf (out, " COMMAND [ARGS]\n");
}

//  Usage error: the reason was printed; add the synopsis.
static int
s_usage_error (void)
{
    s_print_synopsis (stderr);
    fprintf (stderr, "Try 'walcast --help' for more.\n");
    return S_EXIT_USAGE;
}

static void
s_print_help (void)
{
    s_print_synopsis (stdout);
    printf ("\nwalcast talks to walcast nodes: writes go to the primary, "
            "reads to a node.\n\nOptions:\n");
    for (size_t i = 0; i < S_NOPTIONS; i++) {
        const s_option_t *o = &s_options [i];
        char left [64];
        snprintf (left, sizeof left, "%s%s%s%s%s",
                  o->short_name ? o->short_name : "",
                  o->short_name ? ", " : "", o->name,
                  o->arg ? " " : "", o->arg ? o->arg : "");
        printf ("  %-18s %s\n", left, o->help);
    }
    printf ("\nCommands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const s_command_t *c = &s_commands [i];
        char left [64];
        snprintf (left, sizeof left, "%s %s", c->name, c->args);
        printf ("  %-18s %s\n", left, c->help);
    }
    printf ("\nExit status: 0 success, 1 not found (get), 2 usage error, "
            "3 error from the node\nor the network.\n");
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
    int exit_code = S_EXIT_OK;
    walcast_t *client = NULL;

    int first = s_parse_options (argc, argv, &opts);
    if (first < 0) {
        exit_code = s_usage_error ();
        goto done;
    }
    if (opts.help) {
        s_print_help ();
        goto done;
    }
    if (opts.version) {
        printf ("walcast %d.%d.%d\n", WALCAST_VERSION_MAJOR,
                WALCAST_VERSION_MINOR, WALCAST_VERSION_PATCH);
        goto done;
    }
    if (first >= argc) {
        fprintf (stderr, "walcast: missing command\n");
        exit_code = s_usage_error ();
        goto done;
    }
    const s_command_t *cmd = NULL;
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp (argv [first], s_commands [i].name) == 0)
            cmd = &s_commands [i];
    if (!cmd) {
        fprintf (stderr, "walcast: unknown command '%s'\n", argv [first]);
        exit_code = s_usage_error ();
        goto done;
    }
    int nargs = argc - first - 1;
    if (nargs < cmd->min_args || nargs > cmd->max_args) {
        if (cmd->max_args == 0)
            fprintf (stderr, "walcast: %s takes no arguments\n", cmd->name);
        else
            fprintf (stderr, "walcast: %s: expected %s\n", cmd->name,
                     cmd->args);
        exit_code = s_usage_error ();
        goto done;
    }
    if (opts.nnodes == 0) {
        fprintf (stderr, "walcast: no node given (use --node HOST:PORT)\n");
        exit_code = s_usage_error ();
        goto done;
    }

    client = walcast_new ();
    if (!client) {
        fprintf (stderr, "walcast: out of memory\n");
        exit_code = S_EXIT_ERROR;
        goto done;
    }
    if (opts.timeout_ms > 0)
        walcast_set_timeout (client, opts.timeout_ms);
    for (int i = 0; i < opts.nnodes; i++) {
        int rc = walcast_connect (client, opts.nodes [i]);
        if (rc == WALCAST_EINVAL) {
            fprintf (stderr, "walcast: --node '%s': expected HOST:PORT "
                     "(port 1..65535)\n", opts.nodes [i]);
            exit_code = s_usage_error ();
            goto done;
        }
        if (rc) {
            fprintf (stderr, "walcast: --node '%s': %s\n", opts.nodes [i],
                     walcast_strerror (rc));
            exit_code = S_EXIT_ERROR;
            goto done;
        }
    }
    exit_code = cmd->run (client, &opts, argv + first + 1, nargs);

done:
    walcast_destroy (&client);
    free (opts.nodes);
    if (fflush (stdout) || ferror (stdout)) {
        fprintf (stderr, "walcast: writing stdout: %s\n", strerror (errno));
        if (exit_code == S_EXIT_OK)
            exit_code = S_EXIT_ERROR;
    }
    return exit_code;
}
