/*  main.c - walcast-broker: command-line flags and the --config file to a
    broker configuration.

    One table (s_table) is both the flags and the config file's keys
    (runtime/flags.h); the file is read first, the command line over it.
    Every bad value is named on stderr with exit code 2 (with FILE:LINE
    when it is in the file), and so is a --failover-timeout below
    --node-timeout, or an --http-port or --metrics-port that is one of
    the broker's two ports or the other of them; --check-config stops
    there. Then the broker runs
    until SIGTERM or SIGINT; SIGHUP parses the same command line and file
    again (s_reload) and applies the log level, the trust folder and the
    failover timeout. Exit codes: 0 after a clean stop, 1 when the broker
    could not start (a port taken, a data directory locked by another
    broker or whose state file is damaged) or had to stop.
*/
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker.h"
#include "config.h"
#include "curve.h"
#include "failover.h"
#include "flags.h"
#include "log.h"
#include "signals.h"
#include "walcast.h"

static const char *s_usage =
    "usage: walcast-broker --port B [options]\n"
    "\n"
    "Runs the walcast broker: the directory of nodes and regions, and the\n"
    "cluster's primary. Nodes register and send heartbeats to it, and it\n"
    "answers with what they must do (become the primary, follow it, hand\n"
    "over); clients ask it for the topology. It binds two ports: B\n"
    "(requests from nodes and clients) and B+1 (topology pushes, on every\n"
    "change and at least once a second). When the primary is silent for\n"
    "--failover-timeout it promotes the replica with the most data.\n"
    "\n"
    "  --port B             base port, 1..65534 (required)\n"
    "  --bind ADDR          address to bind (default 127.0.0.1; 0.0.0.0 for all)\n"
    "  --data DIR           keep the cluster's epoch and primary, and its list\n"
    "                       of nodes, in DIR (created if missing); without it\n"
    "                       they are kept in memory only: a restart could go\n"
    "                       back in epochs, and forgets the nodes that are down\n"
    "  --node-timeout MS    a node silent this long is down, 100..3600000\n"
    "                       (default 2000; nodes send heartbeats every 500 ms)\n"
    "  --failover-timeout MS  the primary silent this long is replaced,\n"
    "                       100..3600000, at least --node-timeout (default 3000)\n"
    "  --region-priority R1,R2,...  between replicas holding as much data,\n"
    "                       promote one of R1 first, then R2, ... (default: by id)\n"
    "  --curve-cert FILE    the broker's CURVE key pair (the NAME_secret file of\n"
    "                       `walcast keygen NAME`): its sockets are CURVE servers\n"
    "  --curve-trust DIR    public certificates allowed to connect, in DIR/nodes\n"
    "                       (may register), DIR/writers and DIR/readers; re-read\n"
    "                       when it changes (needs --curve-cert, and the reverse)\n"
    "  --http-port PORT     serve the status page on PORT (on --bind): an HTML\n"
    "                       page at / and the cluster as JSON at /api/topology\n"
    "  --metrics-port PORT  serve Prometheus metrics at http://BIND:PORT/metrics\n"
    "                       (neither port B, B+1 nor --http-port)\n"
    "  --log-level L        error | warn | info | debug (default info)\n"
    "  -v, --verbose        debug logging (--log-level debug)\n"
    "  --config FILE        read the flags from FILE first (section broker, one\n"
    "                       key per flag: port = 7000); flags given here win\n"
    "  --check-config       check the flags and FILE, print OK and exit 0, or\n"
    "                       name the first error (FILE:LINE) and exit 2;\n"
    "                       binds nothing, touches no data\n"
    "  -h, --help           this help\n"
    "      --version        print the version\n"
    "\n"
    "Stop it with SIGTERM or SIGINT: it exits 0. SIGHUP reads --config again\n"
    "and applies the log level, the trust folder and the failover timeout\n"
    "(the command line still wins).\n";

/*  --curve-cert and --curve-trust, until main starts CURVE. */
typedef struct {
    char cert [4096];
    char trust [4096];
} s_curve_flags_t;

/*  Everything the flags and the --config file set. */
typedef struct {
    wc_broker_config_t cfg;
    s_curve_flags_t    curve;
    long long port, node_timeout, failover_timeout, http_port, metrics_port;
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
    wc_broker_config_t *cfg = &o->cfg;
    s_curve_flags_t *curve = &o->curve;
    strcpy (cfg->bind, "127.0.0.1");
    o->node_timeout = 2000;
    o->failover_timeout = 3000;
    o->log_level = WC_LOG_INFO;
    const wc_flag_t table [] = {
        { "port", 0, WC_FLAG_NUMBER, &o->port, 0, 1, 65534, NULL },
        { "bind", 0, WC_FLAG_STRING, cfg->bind, sizeof cfg->bind, 1,
          sizeof cfg->bind - 1, NULL },
        { "data", 0, WC_FLAG_STRING, cfg->data_dir, sizeof cfg->data_dir, 1,
          sizeof cfg->data_dir - 1, NULL },
        { "node-timeout", 0, WC_FLAG_NUMBER, &o->node_timeout, 0, 100, 3600000, NULL },
        { "failover-timeout", 0, WC_FLAG_NUMBER, &o->failover_timeout, 0, 100, 3600000,
          NULL },
        { "region-priority", 0, WC_FLAG_STRING, cfg->region_priority,
          sizeof cfg->region_priority, 1, sizeof cfg->region_priority - 1, NULL },
        { "curve-cert", 0, WC_FLAG_STRING, curve->cert, sizeof curve->cert, 1,
          sizeof curve->cert - 1, NULL },
        { "curve-trust", 0, WC_FLAG_STRING, curve->trust, sizeof curve->trust, 1,
          sizeof curve->trust - 1, NULL },
        { "http-port", 0, WC_FLAG_NUMBER, &o->http_port, 0, 1, 65535, NULL },
        { "metrics-port", 0, WC_FLAG_NUMBER, &o->metrics_port, 0, 1, 65535, NULL },
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

/*  What the flags and the file gave, made into o->cfg and checked: 0, or
    -1 with f->why. Under --check-config the CURVE files are read too. */
static int
s_finish (wc_flags_t *f, s_options_t *o)
{
    wc_broker_config_t *cfg = &o->cfg;
    cfg->port = (int) o->port;
    cfg->node_timeout_ms = (int) o->node_timeout;
    cfg->failover_timeout_ms = (int) o->failover_timeout;
    cfg->http_port = (int) o->http_port;
    cfg->metrics_port = (int) o->metrics_port;
    if (o->verbose)
        o->log_level = WC_LOG_DEBUG;
    if (wc_flags_require (f, "port", NULL) != 0)
        return -1;
    //  Blame the one that was set: a file that raises only node-timeout
    //  is wrong at that line
    if (cfg->failover_timeout_ms < cfg->node_timeout_ms)
        return wc_flags_fail (f, wc_flags_is_set (f, "failover-timeout")
                                 ? "failover-timeout" : "node-timeout",
                              "--failover-timeout %d is shorter "
                              "than --node-timeout %d: the primary must be seen down "
                              "before it is replaced; raise --failover-timeout to at "
                              "least %d", cfg->failover_timeout_ms, cfg->node_timeout_ms,
                              cfg->node_timeout_ms);
    //  The status page or metrics port on one of our own, or on one
    //  port together, would fail at the bind, after --check-config said
    //  OK: said here, with both flags
    const char *const web [] = { "http-port", "metrics-port" };
    const int web_port [] = { cfg->http_port, cfg->metrics_port };
    for (int i = 0; i < 2; i++)
        if (web_port [i] && web_port [i] >= cfg->port && web_port [i] <= cfg->port + 1)
            return wc_flags_fail (f, web [i], "--%s %d is one of the broker's own "
                                  "ports (--port %d binds %d..%d: requests, topology); "
                                  "give a --%s outside them", web [i], web_port [i],
                                  cfg->port, cfg->port, cfg->port + 1, web [i]);
    if (cfg->http_port && cfg->http_port == cfg->metrics_port)
        return wc_flags_fail (f, wc_flags_is_set (f, "metrics-port") ? "metrics-port"
                                                                     : "http-port",
                              "--http-port %d and --metrics-port %d are the same port; "
                              "give them different ones", cfg->http_port,
                              cfg->metrics_port);
    char why [256];
    if (wc_failover_check_regions (cfg->region_priority, why, sizeof why) != 0)
        return wc_flags_fail (f, "region-priority", "%s", why);
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
    snprintf (version, sizeof version, "walcast-broker %d.%d.%d (protocol %d)",
              WALCAST_VERSION_MAJOR, WALCAST_VERSION_MINOR, WALCAST_VERSION_PATCH,
              WC_PROTOCOL_VERSION);
    wc_flags_t f;
    wc_flags_init (&f, "walcast-broker", o->table, o->count, s_usage, version);
    int rc = wc_flags_parse (&f, argc, argv);
    if (rc == 0)
        rc = s_finish (&f, o);
    snprintf (why, size, "%s", f.why);
    *in_file = f.in_file;
    return rc;
}

/*  What a SIGHUP needs: the command line to parse again, and what runs. */
typedef struct {
    int           argc;
    char        **argv;
    s_options_t   running;
    wc_broker_t  *broker;
} s_run_t;

static s_run_t s_run;

/*  A new failover timeout for the running broker: 1 when it changed. */
static int
s_reload_failover (s_run_t *run, const s_options_t *fresh)
{
    int was = run->running.cfg.failover_timeout_ms;
    int now = fresh->cfg.failover_timeout_ms;
    if (was == now)
        return 0;
    wc_broker_set_failover_timeout (run->broker, now);
    run->running.cfg.failover_timeout_ms = now;
    run->running.failover_timeout = now;
    wc_log_info ("reload: failover-timeout %d -> %d", was, now);
    return 1;
}

/*  SIGHUP: read the flags and the --config file again (the command line
    still wins); apply the log level, the trust folder and the failover
    timeout, and say what else changed but needs a restart. A bad file,
    or a failover timeout below the running node timeout, changes nothing. */
static void
s_reload (void *arg)
{
    s_run_t *run = (s_run_t *) arg;
    s_options_t *fresh = malloc (sizeof *fresh);
    char why [1200];
    bool in_file;
    int node_timeout = run->running.cfg.node_timeout_ms;
    if (!fresh)
        wc_log_warn ("reload: out of memory; keeping the running settings");
    else if (s_parse (run->argc, run->argv, fresh, why, sizeof why, &in_file) != 0)
        wc_log_warn ("reload: %s; keeping the running settings", why);
    else if (fresh->cfg.failover_timeout_ms < node_timeout)
        wc_log_warn ("reload: failover-timeout %d is shorter than the running "
                     "node-timeout %d (which needs a restart to change); keeping the "
                     "running settings", fresh->cfg.failover_timeout_ms, node_timeout);
    else {
        const char *const live [] = { "log-level", "verbose", "curve-trust",
                                      "failover-timeout", NULL };
        int changed = wc_config_reload_level (&run->running.log_level, fresh->log_level);
        changed += wc_config_reload_trust (run->running.curve.trust,
                                           sizeof run->running.curve.trust,
                                           fresh->curve.trust);
        changed += s_reload_failover (run, fresh);
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
        fprintf (stderr, "walcast-broker: %s\n%s", why,
                 in_file ? "" : "Try 'walcast-broker --help'.\n");
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    if (o->check) {
        printf ("walcast-broker: %s OK\n", o->config [0] ? o->config : "flags");
        return 0;
    }
    s_run.argc = argc;
    s_run.argv = argv;
    wc_signals_on_hup (s_reload, &s_run);
    wc_signals_catch ();                /* a SIGHUP during start-up waits */
    wc_log_set_name ("walcast-broker", NULL);
    wc_log_set_level ((wc_log_level_t) o->log_level);

    /*  The broker handles SIGINT/SIGTERM itself; czmq must not. */
    zsys_handler_set (NULL);
    zsys_init ();

    wc_curve_t *curve = NULL;
    if (wc_curve_start (o->curve.cert, o->curve.trust, &curve, why, sizeof why) != 0) {
        wc_log_error ("cannot start: %s", why);
        zsys_shutdown ();
        return o->curve.cert [0] && o->curve.trust [0] ? 1 : 2;
    }
    wc_broker_t *broker = wc_broker_new (&o->cfg, why, sizeof why);
    if (!broker) {
        wc_log_error ("cannot start: %s", why);
        wc_curve_destroy (&curve);
        zsys_shutdown ();
        return 1;
    }
    s_run.broker = broker;
    rc = wc_broker_run (broker);
    s_run.broker = NULL;
    wc_broker_destroy (&broker);
    wc_curve_destroy (&curve);
    zsys_shutdown ();
    return rc == 0 ? 0 : 1;
}
