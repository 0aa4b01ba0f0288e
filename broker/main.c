/*  main.c - walcast-broker: command-line flags to a broker configuration.

    Parses the flags, checks them (every bad value is named on stderr with
    exit code 2), then runs the broker until SIGTERM or SIGINT. Exit codes:
    0 after a clean stop, 1 when the broker could not start or had to stop.
*/
#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker.h"
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

static int
s_parse_number (const char *value, long long min, long long max,
                const char *flag, long long *out)
{
    char *end = NULL;
    long long n = strtoll (value, &end, 10);
    if (!*value || *end || n < min || n > max) {
        fprintf (stderr, "walcast-broker: %s expects a number %lld..%lld, got '%s'\n",
                 flag, min, max, value);
        return -1;
    }
    *out = n;
    return 0;
}

/*  Fill cfg from argv. Returns 0, 1 when the run should end with exit 0
    (help, version) or -1 on a usage error. */
static int
s_parse (int argc, char **argv, wc_broker_config_t *cfg)
{
    enum { OPT_PORT = 256, OPT_BIND, OPT_NODE_TIMEOUT, OPT_VERSION };
    static const struct option options [] = {
        { "port",         required_argument, NULL, OPT_PORT },
        { "bind",         required_argument, NULL, OPT_BIND },
        { "node-timeout", required_argument, NULL, OPT_NODE_TIMEOUT },
        { "verbose",      no_argument,       NULL, 'v' },
        { "help",         no_argument,       NULL, 'h' },
        { "version",      no_argument,       NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 }
    };
    memset (cfg, 0, sizeof *cfg);
    strcpy (cfg->bind, "127.0.0.1");
    cfg->node_timeout_ms = 2000;
    long long n;
    int opt;
    while ((opt = getopt_long (argc, argv, "vh", options, NULL)) != -1) {
        int rc = 0;
        switch (opt) {
            case OPT_PORT:
                rc = s_parse_number (optarg, 1, 65534, "--port", &n);
                cfg->port = (int) n;
                break;
            case OPT_BIND: {
                size_t len = strlen (optarg);
                if (len < 1 || len >= sizeof cfg->bind) {
                    fprintf (stderr, "walcast-broker: --bind must be 1..%zu "
                             "characters\n", sizeof cfg->bind - 1);
                    rc = -1;
                }
                else
                    memcpy (cfg->bind, optarg, len + 1);
                break;
            }
            case OPT_NODE_TIMEOUT:
                rc = s_parse_number (optarg, 100, 3600000, "--node-timeout", &n);
                cfg->node_timeout_ms = (int) n;
                break;
            case 'v':
                wc_log_set_level (WC_LOG_DEBUG);
                break;
            case 'h':
                fputs (s_usage, stdout);
                return 1;
            case OPT_VERSION:
                printf ("walcast-broker %d.%d.%d (protocol %d)\n",
                        WALCAST_VERSION_MAJOR, WALCAST_VERSION_MINOR,
                        WALCAST_VERSION_PATCH, WC_PROTOCOL_VERSION);
                return 1;
            default:
                rc = -1;
        }
        if (rc)
            return -1;
    }
    if (optind < argc) {
        fprintf (stderr, "walcast-broker: unexpected argument '%s'\n", argv [optind]);
        return -1;
    }
    if (!cfg->port) {
        fprintf (stderr, "walcast-broker: --port is required\n");
        return -1;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    wc_broker_config_t cfg;
    int rc = s_parse (argc, argv, &cfg);
    if (rc != 0) {
        if (rc < 0)
            fprintf (stderr, "Try 'walcast-broker --help'.\n");
        return rc < 0 ? 2 : 0;
    }
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
