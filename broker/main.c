/*  main.c - walcast-broker: command-line flags to a broker configuration.

    Parses the flags, checks them (every bad value is named on stderr with
    exit code 2, and so is a --failover-timeout below --node-timeout),
    then runs the broker until SIGTERM or SIGINT. Exit codes: 0 after a
    clean stop, 1 when the broker could not start (a port taken, a data
    directory locked by another broker or whose state file is damaged)
    or had to stop.
*/
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker.h"
#include "curve.h"
#include "failover.h"
#include "flags.h"
#include "log.h"
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
    "  --data DIR           keep the cluster's epoch and primary in DIR\n"
    "                       (created if missing); without it they are kept\n"
    "                       in memory only, and a restart could go back in\n"
    "                       epochs\n"
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
    "  -v, --verbose        debug logging\n"
    "  -h, --help           this help\n"
    "      --version        print the version\n"
    "\n"
    "Stop it with SIGTERM or SIGINT: it exits 0.\n";

/*  --curve-cert and --curve-trust, until main starts CURVE. */
typedef struct {
    char cert [4096];
    char trust [4096];
} s_curve_flags_t;

/*  Fill cfg from argv. Returns 0, 1 when the run should end with exit 0
    (help, version) or -1 on a usage error (named on stderr). */
static int
s_parse (int argc, char **argv, wc_broker_config_t *cfg, s_curve_flags_t *curve)
{
    memset (curve, 0, sizeof *curve);
    memset (cfg, 0, sizeof *cfg);
    strcpy (cfg->bind, "127.0.0.1");
    long long port = 0, node_timeout = 2000, failover_timeout = 3000;
    bool verbose = false;
    const wc_flag_t flags [] = {
        { "port", 0, WC_FLAG_NUMBER, &port, 0, 1, 65534, NULL },
        { "bind", 0, WC_FLAG_STRING, cfg->bind, sizeof cfg->bind, 1,
          sizeof cfg->bind - 1, NULL },
        { "data", 0, WC_FLAG_STRING, cfg->data_dir, sizeof cfg->data_dir, 1,
          sizeof cfg->data_dir - 1, NULL },
        { "node-timeout", 0, WC_FLAG_NUMBER, &node_timeout, 0, 100, 3600000, NULL },
        { "failover-timeout", 0, WC_FLAG_NUMBER, &failover_timeout, 0, 100, 3600000,
          NULL },
        { "region-priority", 0, WC_FLAG_STRING, cfg->region_priority,
          sizeof cfg->region_priority, 1, sizeof cfg->region_priority - 1, NULL },
        { "curve-cert", 0, WC_FLAG_STRING, curve->cert, sizeof curve->cert, 1,
          sizeof curve->cert - 1, NULL },
        { "curve-trust", 0, WC_FLAG_STRING, curve->trust, sizeof curve->trust, 1,
          sizeof curve->trust - 1, NULL },
        { "verbose", 'v', WC_FLAG_SWITCH, &verbose, 0, 0, 0, NULL },
        { "help", 'h', WC_FLAG_HELP, NULL, 0, 0, 0, NULL },
        { "version", 0, WC_FLAG_VERSION, NULL, 0, 0, 0, NULL },
    };
    char version [64];
    snprintf (version, sizeof version, "walcast-broker %d.%d.%d (protocol %d)",
              WALCAST_VERSION_MAJOR, WALCAST_VERSION_MINOR, WALCAST_VERSION_PATCH,
              WC_PROTOCOL_VERSION);
    int rc = wc_flags_parse ("walcast-broker", argc, argv, flags,
                             sizeof flags / sizeof flags [0], s_usage, version);
    if (rc != 0)
        return rc;
    cfg->port = (int) port;
    cfg->node_timeout_ms = (int) node_timeout;
    cfg->failover_timeout_ms = (int) failover_timeout;
    if (verbose)
        wc_log_set_level (WC_LOG_DEBUG);
    if (!cfg->port) {
        fprintf (stderr, "walcast-broker: --port is required\n"
                 "Try 'walcast-broker --help'.\n");
        return -1;
    }
    if (cfg->failover_timeout_ms < cfg->node_timeout_ms) {
        fprintf (stderr, "walcast-broker: --failover-timeout %d is shorter than "
                 "--node-timeout %d: the primary must be seen down before it is "
                 "replaced; raise --failover-timeout to at least %d\n",
                 cfg->failover_timeout_ms, cfg->node_timeout_ms, cfg->node_timeout_ms);
        return -1;
    }
    char why [256];
    if (wc_failover_check_regions (cfg->region_priority, why, sizeof why) != 0) {
        fprintf (stderr, "walcast-broker: %s\n", why);
        return -1;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    wc_broker_config_t cfg;
    s_curve_flags_t curve_flags;
    int rc = s_parse (argc, argv, &cfg, &curve_flags);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    wc_log_set_name ("walcast-broker", NULL);

    /*  The broker handles SIGINT/SIGTERM itself; czmq must not. */
    zsys_handler_set (NULL);
    zsys_init ();

    char why [1024];
    wc_curve_t *curve = NULL;
    if (wc_curve_start (curve_flags.cert, curve_flags.trust, &curve, why,
                        sizeof why) != 0) {
        wc_log_error ("cannot start: %s", why);
        zsys_shutdown ();
        return curve_flags.cert [0] && curve_flags.trust [0] ? 1 : 2;
    }
    wc_broker_t *broker = wc_broker_new (&cfg, why, sizeof why);
    if (!broker) {
        wc_log_error ("cannot start: %s", why);
        wc_curve_destroy (&curve);
        zsys_shutdown ();
        return 1;
    }
    rc = wc_broker_run (broker);
    wc_broker_destroy (&broker);
    wc_curve_destroy (&curve);
    zsys_shutdown ();
    return rc == 0 ? 0 : 1;
}
