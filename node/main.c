/*  main.c - walcast-node: command-line flags and the --config file to a
    node configuration.

    One table (s_table) is both the flags and the config file's keys
    (runtime/flags.h); the file is read first, the command line over it.
    Every bad value is named on stderr with exit code 2 (with FILE:LINE
    when it is in the file), and so is a --metrics-port among the node's
    own three ports; --check-config stops there. Then the node
    runs until SIGTERM or SIGINT; SIGHUP parses the same command line and
    file again (s_reload) and applies what can change while running.
    Exit codes: 0 after a clean stop, 1 when the node could not start or
    had to stop.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "certs.h"
#include "config.h"
#include "curve.h"
#include "flags.h"
#include "log.h"
#include "node.h"
#include "signals.h"

static const char *s_usage =
    "usage: walcast-node --id ID --data DIR --port P [options]\n"
    "\n"
    "Runs a walcast node: a primary, or with --replica-of a replica of one.\n"
    "It binds three ports: P (service: clients), P+1 (stream: entries and\n"
    "heartbeats), P+2 (catch-up: FETCH from replicas).\n"
    "\n"
    "  --id ID              node name, 1..64 characters (required)\n"
    "  --data DIR           data directory for the write-ahead log (required)\n"
    "  --port P             base port, 1..65533 (required)\n"
    "  --replica-of H:P     follow the primary whose base port is H:P (with\n"
    "                       --broker, a first hint: the broker may move it)\n"
    "  --region R           region tag (shown in status, used for routing reads)\n"
    "  --broker H:P         register with the broker at H:P and heartbeat to it;\n"
    "                       without --replica-of, wait for the broker to make\n"
    "                       this node the primary or a replica\n"
    "  --advertise H:P      the address clients and other nodes should use for\n"
    "                       this node (default: the bound address and --port)\n"
    "  --fsync MODE         always | batch | never (default batch):\n"
    "                         always: a write is acknowledged, published and\n"
    "                                 readable once fsynced (group commit)\n"
    "                         batch:  fsync at most every 10 ms\n"
    "                         never:  leave it to the kernel\n"
    "  --bind ADDR          address to bind (default 127.0.0.1; 0.0.0.0 for all)\n"
    "  --segment-bytes N    start a new WAL segment past N bytes (default 64 MiB)\n"
    "  --min-replicas K     a primary refuses writes while fewer than K replicas\n"
    "                       are current (default 0)\n"
    "  --replica-lag MS     a replica is current while its last ACK is this\n"
    "                       recent (default 5000)\n"
    "  --snapshot-every N   snapshot the state every N entries (default\n"
    "                       1000000; 0: only when asked, walcast snapshot),\n"
    "                       at seqs that depend on --id\n"
    "  --retain-bytes B     keep at least B bytes of log after a snapshot, for\n"
    "                       replicas to catch up from (default 268435456)\n"
    "  --curve-cert FILE    this node's CURVE key pair (the NAME_secret file of\n"
    "                       `walcast keygen NAME`): every socket it binds is a\n"
    "                       CURVE server, every one it connects a CURVE client\n"
    "  --curve-trust DIR    public certificates allowed to connect, in DIR/nodes,\n"
    "                       DIR/writers and DIR/readers (their roles); re-read\n"
    "                       when it changes (needs --curve-cert, and the reverse)\n"
    "  --curve-server FILE  the public certificate of the --replica-of node\n"
    "  --curve-broker FILE  the public certificate of the --broker\n"
    "  --metrics-port PORT  serve Prometheus metrics at http://BIND:PORT/metrics\n"
    "                       (not one of P..P+2)\n"
    "  --log-level L        error | warn | info | debug (default info)\n"
    "  -v, --verbose        debug logging (--log-level debug)\n"
    "  --config FILE        read the flags from FILE first (section node, one\n"
    "                       key per flag: port = 7100); flags given here win\n"
    "  --check-config       check the flags and FILE, print OK and exit 0, or\n"
    "                       name the first error (FILE:LINE) and exit 2;\n"
    "                       binds nothing, touches no data\n"
    "  -h, --help           this help\n"
    "      --version        print the version\n"
    "\n"
    "Stop it with SIGTERM or SIGINT: it finishes the current batch, syncs\n"
    "the log and exits 0. SIGHUP reads --config again and applies the\n"
    "log level and the trust folder (the command line still wins).\n";

static const char *const s_fsync_modes [] = { "always", "batch", "never", NULL };

/*  The CURVE flags: file and folder names, until main starts CURVE. */
typedef struct {
    char cert [4096];
    char trust [4096];
    char server [4096];
    char broker [4096];
} s_curve_flags_t;

/*  Everything the flags and the --config file set. */
typedef struct {
    wc_node_config_t cfg;
    s_curve_flags_t  curve;
    long long port, segment_bytes, min_replicas, replica_lag;
    long long snapshot_every, retain_bytes, metrics_port;
    int       fsync;
    int       log_level;            /* wc_log_level_t, from --log-level */
    bool      verbose;              /* -v: debug whatever --log-level says */
    bool      check;                /* --check-config */
    char      config [4096];        /* --config FILE */
    wc_flag_t table [WC_FLAGS_MAX]; /* the flags, over the fields above */
    size_t    count;                /* entries of table */
} s_options_t;

/*  Set o's defaults and its flag table over its fields. Every entry that
    takes a value is also a key of the config file (flags.h). */
static void
s_table (s_options_t *o)
{
    memset (o, 0, sizeof *o);
    wc_node_config_t *cfg = &o->cfg;
    s_curve_flags_t *curve = &o->curve;
    strcpy (cfg->bind, "127.0.0.1");
    o->fsync = WC_FSYNC_BATCH;
    o->replica_lag = 5000;
    o->snapshot_every = 1000000;
    o->retain_bytes = 256LL * 1024 * 1024;
    o->log_level = WC_LOG_INFO;
    const wc_flag_t table [] = {
        { "id", 0, WC_FLAG_STRING, cfg->id, sizeof cfg->id, 1, WC_MAX_ID, NULL },
        { "data", 0, WC_FLAG_STRING, cfg->data_dir, sizeof cfg->data_dir, 1,
          sizeof cfg->data_dir - 1, NULL },
        { "port", 0, WC_FLAG_NUMBER, &o->port, 0, 1, 65533, NULL },
        { "replica-of", 0, WC_FLAG_ADDR, cfg->replica_of, sizeof cfg->replica_of,
          0, 65533, NULL },
        { "region", 0, WC_FLAG_STRING, cfg->region, sizeof cfg->region, 0, WC_MAX_ID, NULL },
        { "fsync", 0, WC_FLAG_CHOICE, &o->fsync, 0, 0, 0, s_fsync_modes },
        { "bind", 0, WC_FLAG_STRING, cfg->bind, sizeof cfg->bind, 1,
          sizeof cfg->bind - 1, NULL },
        { "broker", 0, WC_FLAG_ADDR, cfg->broker, sizeof cfg->broker, 0, 65534, NULL },
        { "advertise", 0, WC_FLAG_ADDR, cfg->advertise, sizeof cfg->advertise,
          0, 65533, NULL },
        { "segment-bytes", 0, WC_FLAG_NUMBER, &o->segment_bytes, 0, 4096, 1LL << 40, NULL },
        { "min-replicas", 0, WC_FLAG_NUMBER, &o->min_replicas, 0, 0, 64, NULL },
        { "replica-lag", 0, WC_FLAG_NUMBER, &o->replica_lag, 0, 100, 3600000, NULL },
        { "snapshot-every", 0, WC_FLAG_NUMBER, &o->snapshot_every, 0, 0, 1LL << 40, NULL },
        { "retain-bytes", 0, WC_FLAG_NUMBER, &o->retain_bytes, 0, 0, 1LL << 50, NULL },
        { "metrics-port", 0, WC_FLAG_NUMBER, &o->metrics_port, 0, 1, 65535, NULL },
        { "curve-cert", 0, WC_FLAG_STRING, curve->cert, sizeof curve->cert, 1,
          sizeof curve->cert - 1, NULL },
        { "curve-trust", 0, WC_FLAG_STRING, curve->trust, sizeof curve->trust, 1,
          sizeof curve->trust - 1, NULL },
        { "curve-server", 0, WC_FLAG_STRING, curve->server, sizeof curve->server, 1,
          sizeof curve->server - 1, NULL },
        { "curve-broker", 0, WC_FLAG_STRING, curve->broker, sizeof curve->broker, 1,
          sizeof curve->broker - 1, NULL },
        { "log-level", 0, WC_FLAG_CHOICE, &o->log_level, 0, 0, 0, wc_log_level_names },
        { "verbose", 'v', WC_FLAG_SWITCH, &o->verbose, 0, 0, 0, NULL },
        { "config", 0, WC_FLAG_CONFIG, o->config, sizeof o->config, 1,
          sizeof o->config - 1, NULL },
        { "check-config", 0, WC_FLAG_CHECK, &o->check, 0, 0, 0, NULL },
        { "help", 'h', WC_FLAG_HELP, NULL, 0, 0, 0, NULL },
        { "version", 0, WC_FLAG_VERSION, NULL, 0, 0, 0, NULL },
    };
    memcpy (o->table, table, sizeof table);
    o->count = sizeof table / sizeof table [0];
}

/*  The address others use when --advertise is not given: the bound
    address (127.0.0.1 for a wildcard bind) and --port. */
static int
s_default_advertise (wc_flags_t *f, wc_node_config_t *cfg)
{
    if (cfg->advertise [0])
        return 0;
    bool wildcard = streq (cfg->bind, "0.0.0.0") || streq (cfg->bind, "*");
    char addr [sizeof cfg->bind + 16];
    snprintf (addr, sizeof addr, "%s:%d", wildcard ? "127.0.0.1" : cfg->bind,
              cfg->port);
    if (!wc_addr_check (addr, strlen (addr), 65533, NULL)
    ||  strlen (addr) >= sizeof cfg->advertise)
        return wc_flags_fail (f, "bind", "--bind %s does not make an address others "
                              "can use (%s); give --advertise HOST:PORT", cfg->bind, addr);
    strcpy (cfg->advertise, addr);
    return 0;
}

/*  Read the public keys --curve-server and --curve-broker name into cfg;
    -1 (f says why) when a file is not a certificate or they come without
    --curve-cert. */
static int
s_curve_keys (wc_flags_t *f, const s_curve_flags_t *curve, wc_node_config_t *cfg)
{
    char why [1024];
    wc_certs_keys_t keys;
    if ((curve->server [0] || curve->broker [0]) && !curve->cert [0])
        return wc_flags_fail (f, curve->server [0] ? "curve-server" : "curve-broker",
                              "--curve-server and --curve-broker need --curve-cert "
                              "and --curve-trust");
    if (curve->server [0]) {
        if (wc_certs_load (curve->server, false, &keys, why, sizeof why) != 0)
            return wc_flags_fail (f, "curve-server", "--curve-server: %s", why);
        strcpy (cfg->curve_server, keys.public_key);
    }
    if (curve->broker [0]) {
        if (wc_certs_load (curve->broker, false, &keys, why, sizeof why) != 0)
            return wc_flags_fail (f, "curve-broker", "--curve-broker: %s", why);
        strcpy (cfg->curve_broker, keys.public_key);
    }
    //  With keys, every link is CURVE: the start cannot connect to a
    //  broker or an upstream whose key it is not given
    if (curve->cert [0] && cfg->broker [0] && !curve->broker [0])
        return wc_flags_fail (f, "broker", "--broker with --curve-cert needs "
                              "--curve-broker, the broker's public certificate (its "
                              "CURVE key)");
    if (curve->cert [0] && cfg->replica_of [0] && !curve->server [0])
        return wc_flags_fail (f, "replica-of", "--replica-of with --curve-cert needs "
                              "--curve-server, the public certificate of the node it "
                              "names (its CURVE key)");
    return 0;
}

/*  --id and --region travel in REGISTER, whose id and region the broker
    takes only as printable characters (0x21..0x7E): refuse others here,
    where the operator sees it, rather than at every beat. 0 or -1. */
static int
s_check_name (wc_flags_t *f, const char *flag, const char *what, const char *value)
{
    size_t at = 0;
    if (wc_name_check (value, strlen (value), &at))
        return 0;
    return wc_flags_fail (f, flag, "--%s \"%s\" has byte 0x%02X at offset %zu; "
                          "%ss are printable characters (0x21..0x7E: no spaces, "
                          "no control bytes)", flag, value, (unsigned char) value [at], at,
                          what);
}

/*  What the flags and the file gave, made into o->cfg and checked: 0, or
    -1 with f->why. Under --check-config the CURVE files are read too
    (what starting CURVE would check first). */
static int
s_finish (wc_flags_t *f, s_options_t *o)
{
    wc_node_config_t *cfg = &o->cfg;
    cfg->port = (int) o->port;
    cfg->fsync = (wc_fsync_t) o->fsync;
    cfg->segment_bytes = (size_t) o->segment_bytes;
    cfg->snapshot_every = (uint64_t) o->snapshot_every;
    cfg->retain_bytes = (uint64_t) o->retain_bytes;
    cfg->metrics_port = (int) o->metrics_port;
    cfg->min_replicas = (uint32_t) o->min_replicas;
    cfg->replica_lag_ms = o->replica_lag;
    if (o->verbose)
        o->log_level = WC_LOG_DEBUG;
    if (!f->file [0] && (!cfg->id [0] || !cfg->data_dir [0] || !cfg->port)) {
        snprintf (f->why, sizeof f->why, "--id, --data and --port are required");
        return -1;
    }
    if (wc_flags_require (f, "id", "data", "port", NULL) != 0
    ||  s_check_name (f, "id", "id", cfg->id) != 0
    ||  s_check_name (f, "region", "region", cfg->region) != 0
    ||  s_curve_keys (f, &o->curve, cfg) != 0
    ||  s_default_advertise (f, cfg) != 0)
        return -1;
    //  The metrics port on one of our own would fail at the bind, after
    //  --check-config said OK: said here, for both
    if (cfg->metrics_port && cfg->port
    &&  cfg->metrics_port >= cfg->port && cfg->metrics_port <= cfg->port + 2)
        return wc_flags_fail (f, "metrics-port", "--metrics-port %d is one of the "
                              "node's own ports (--port %d binds %d..%d: service, "
                              "stream, catch-up); give a --metrics-port outside them",
                              cfg->metrics_port, cfg->port, cfg->port, cfg->port + 2);
    return o->check ? wc_config_check_curve (f, o->curve.cert, o->curve.trust) : 0;
}

/*  Fill o from argv and the --config file. Returns 0, 1 when the run
    should end with exit 0 (help, version) or -1 with the reason in why
    (*in_file: it names a line of the file). */
static int
s_parse (int argc, char **argv, s_options_t *o, char *why, size_t size, bool *in_file)
{
    s_table (o);
    char version [64];
    snprintf (version, sizeof version, "walcast-node %d.%d.%d (protocol %d)",
              WALCAST_VERSION_MAJOR, WALCAST_VERSION_MINOR, WALCAST_VERSION_PATCH,
              WC_PROTOCOL_VERSION);
    wc_flags_t f;
    wc_flags_init (&f, "walcast-node", o->table, o->count, s_usage, version);
    int rc = wc_flags_parse (&f, argc, argv);
    if (rc == 0)
        rc = s_finish (&f, o);
    snprintf (why, size, "%s", f.why);
    *in_file = f.in_file;
    return rc;
}

/*  What a SIGHUP needs: the command line to parse again, and what runs. */
typedef struct {
    int          argc;
    char       **argv;
    s_options_t  running;
} s_run_t;

static s_run_t s_run;

/*  SIGHUP: read the flags and the --config file again (the command line
    still wins); apply the log level and the trust folder, and say what
    else changed but needs a restart. A bad file changes nothing. */
static void
s_reload (void *arg)
{
    s_run_t *run = (s_run_t *) arg;
    s_options_t *fresh = malloc (sizeof *fresh);
    char why [1200];
    bool in_file;
    if (!fresh)
        wc_log_warn ("reload: out of memory; keeping the running settings");
    else if (s_parse (run->argc, run->argv, fresh, why, sizeof why, &in_file) != 0)
        wc_log_warn ("reload: %s; keeping the running settings", why);
    else {
        const char *const live [] = { "log-level", "verbose", "curve-trust", NULL };
        int changed = wc_config_reload_level (&run->running.log_level, fresh->log_level);
        changed += wc_config_reload_trust (run->running.curve.trust,
                                           sizeof run->running.curve.trust,
                                           fresh->curve.trust);
        changed += wc_config_reload_report (run->running.table, fresh->table,
                                            run->running.count, live);
        if (!changed)
            wc_log_info ("reload: nothing changed");
    }
    free (fresh);
}

int
main (int argc, char **argv)
{
    s_options_t *o = &s_run.running;
    char why [1200];
    bool in_file = false;
    int rc = s_parse (argc, argv, o, why, sizeof why, &in_file);
    if (rc < 0)
        fprintf (stderr, "walcast-node: %s\n%s", why,
                 in_file ? "" : "Try 'walcast-node --help'.\n");
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    if (o->check) {
        printf ("walcast-node: %s OK\n", o->config [0] ? o->config : "flags");
        return 0;
    }
    s_run.argc = argc;
    s_run.argv = argv;
    wc_signals_on_hup (s_reload, &s_run);
    wc_signals_catch ();                /* a SIGHUP during start-up waits */
    wc_log_set_name ("walcast-node", o->cfg.id);
    wc_log_set_level ((wc_log_level_t) o->log_level);

    /*  The node handles SIGINT/SIGTERM itself; czmq must not. */
    zsys_handler_set (NULL);
    zsys_init ();

    wc_curve_t *curve = NULL;
    if (wc_curve_start (o->curve.cert, o->curve.trust, &curve, why, sizeof why) != 0) {
        wc_log_error ("cannot start: %s", why);
        zsys_shutdown ();
        return o->curve.cert [0] && o->curve.trust [0] ? 1 : 2;
    }
    wc_node_t *node = wc_node_new (&o->cfg, why, sizeof why);
    if (!node) {
        wc_log_error ("cannot start: %s", why);
        wc_curve_destroy (&curve);
        zsys_shutdown ();
        return 1;
    }
    rc = wc_node_run (node);
    wc_node_destroy (&node);
    wc_curve_destroy (&curve);
    zsys_shutdown ();
    return rc == 0 ? 0 : 1;
}
