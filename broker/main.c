/*  main.c - walcast-broker: command-line flags to a broker configuration.

    Parses the flags, checks them (every bad value is named on stderr with
    exit code 2), then runs the broker until SIGTERM or SIGINT. Exit codes:
    0 after a clean stop, 1 when the broker could not start or had to stop.
*/
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker.h"
#include "flags.h"
#include "log.h"
#include "walcast.h"

static const char *s_usage =
    "usage: walcast-broker --port B [options]\n"
    "\n"
    "Runs the walcast broker: the directory of nodes and regions. Nodes\n"
    "register and send heartbeats to it; clients ask it for the topology.\n"
    "It binds two ports: B (requests from nodes and clients) and B+1\n"
    "(topology pushes, on every change and at least once a second).\n"
    "It keeps nothing on disk: after a restart the nodes' heartbeats\n"
    "rebuild the directory.\n"
    "\n"
    "  --port B             base port, 1..65534 (required)\n"
    "  --bind ADDR          address to bind (default 127.0.0.1; 0.0.0.0 for all)\n"
    "  --node-timeout MS    a node silent this long is down, 100..3600000\n"
    "                       (default 2000; nodes send heartbeats every 500 ms)\n"
    "  -v, --verbose        debug logging\n"
    "  -h, --help           this help\n"
    "      --version        print the version\n"
    "\n"
    "Stop it with SIGTERM or SIGINT: it exits 0.\n";

/*  Fill cfg from argv. Returns 0, 1 when the run should end with exit 0
    (help, version) or -1 on a usage error (named on stderr). */
static int
s_parse (int argc, char **argv, wc_broker_config_t *cfg)
{
    memset (cfg, 0, sizeof *cfg);
    strcpy (cfg->bind, "127.0.0.1");
    long long port = 0, node_timeout = 2000;
    bool verbose = false;
    const wc_flag_t flags [] = {
        { "port", 0, WC_FLAG_NUMBER, &port, 0, 1, 65534, NULL },
        { "bind", 0, WC_FLAG_STRING, cfg->bind, sizeof cfg->bind, 1,
          sizeof cfg->bind - 1, NULL },
        { "node-timeout", 0, WC_FLAG_NUMBER, &node_timeout, 0, 100, 3600000, NULL },
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
    if (verbose)
        wc_log_set_level (WC_LOG_DEBUG);
    if (!cfg->port) {
        fprintf (stderr, "walcast-broker: --port is required\n"
                 "Try 'walcast-broker --help'.\n");
        return -1;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    wc_broker_config_t cfg;
    int rc = s_parse (argc, argv, &cfg);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    wc_log_set_name ("walcast-broker");

    /*  The broker handles SIGINT/SIGTERM itself; czmq must not. */
    zsys_handler_set (NULL);
    zsys_init ();

    char why [512];
    wc_broker_t *broker = wc_broker_new (&cfg, why, sizeof why);
    if (!broker) {
        wc_log_error ("cannot start: %s", why);
        zsys_shutdown ();
        return 1;
    }
    rc = wc_broker_run (broker);
    wc_broker_destroy (&broker);
    zsys_shutdown ();
    return rc == 0 ? 0 : 1;
}
