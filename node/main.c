/*  main.c - walcast-node: command-line flags to a node configuration.

    Parses the flags, checks them (every bad value is named on stderr with
    exit code 2), then runs the node until SIGTERM or SIGINT. Exit codes:
    0 after a clean stop, 1 when the node could not start or had to stop.
*/
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "node.h"

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
    "  --replica-of H:P     follow the primary whose base port is H:P\n"
    "  --region R           region tag (shown in status, used for routing reads)\n"
    "  --broker H:P         register with the broker at H:P and heartbeat to it\n"
    "  --advertise H:P      the address clients and other nodes should use for\n"
    "                       this node (default: the bound address and --port)\n"
    "  --fsync MODE         always | batch | never (default batch):\n"
    "                         always: fsync before acknowledging a write\n"
    "                         batch:  fsync at most every 10 ms\n"
    "                         never:  leave it to the kernel\n"
    "  --bind ADDR          address to bind (default 127.0.0.1; 0.0.0.0 for all)\n"
    "  --segment-bytes N    start a new WAL segment past N bytes (default 64 MiB)\n"
    "  -v, --verbose        debug logging\n"
    "  -h, --help           this help\n"
    "      --version        print the version\n"
    "\n"
    "Stop it with SIGTERM or SIGINT: it finishes the current batch, syncs\n"
    "the log and exits 0.\n";

/*  Copy a flag's value into dst, or fail when it does not fit. */
static int
s_copy_flag (char *dst, size_t size, const char *value, size_t min_len,
             const char *flag)
{
    size_t len = strlen (value);
    if (len < min_len || len >= size) {
        fprintf (stderr, "walcast-node: %s must be %zu..%zu characters\n",
                 flag, min_len, size - 1);
        return -1;
    }
    memcpy (dst, value, len + 1);
    return 0;
}

/*  A HOST:PORT flag: copied into dst when well formed. */
static int
s_check_addr (char *dst, size_t size, const char *value, const char *flag)
{
    const char *colon = strrchr (value, ':');
    char *end = NULL;
    long port = colon ? strtol (colon + 1, &end, 10) : 0;
    if (!colon || colon == value || !colon [1] || *end || port < 1 || port > 65535) {
        fprintf (stderr, "walcast-node: %s expects HOST:PORT, got '%s'\n", flag, value);
        return -1;
    }
    return s_copy_flag (dst, size, value, 3, flag);
}

static int
s_parse_number (const char *value, long long min, long long max,
                const char *flag, long long *out)
{
    char *end = NULL;
    long long n = strtoll (value, &end, 10);
    if (!*value || *end || n < min || n > max) {
        fprintf (stderr, "walcast-node: %s expects a number %lld..%lld, got '%s'\n",
                 flag, min, max, value);
        return -1;
    }
    *out = n;
    return 0;
}

/*  Fill cfg from argv. Returns 0, 1 when the run should end with exit 0
    (help, version) or -1 on a usage error. */
static int
s_parse (int argc, char **argv, wc_node_config_t *cfg)
{
    enum { OPT_ID = 256, OPT_DATA, OPT_PORT, OPT_REPLICA_OF, OPT_REGION,
           OPT_FSYNC, OPT_BIND, OPT_SEGMENT, OPT_VERSION, OPT_BROKER,
           OPT_ADVERTISE };
    static const struct option options [] = {
        { "id",            required_argument, NULL, OPT_ID },
        { "data",          required_argument, NULL, OPT_DATA },
        { "port",          required_argument, NULL, OPT_PORT },
        { "replica-of",    required_argument, NULL, OPT_REPLICA_OF },
        { "region",        required_argument, NULL, OPT_REGION },
        { "fsync",         required_argument, NULL, OPT_FSYNC },
        { "bind",          required_argument, NULL, OPT_BIND },
        { "broker",        required_argument, NULL, OPT_BROKER },
        { "advertise",     required_argument, NULL, OPT_ADVERTISE },
        { "segment-bytes", required_argument, NULL, OPT_SEGMENT },
        { "verbose",       no_argument,       NULL, 'v' },
        { "help",          no_argument,       NULL, 'h' },
        { "version",       no_argument,       NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 }
    };
    memset (cfg, 0, sizeof *cfg);
    strcpy (cfg->bind, "127.0.0.1");
    cfg->fsync = WC_FSYNC_BATCH;
    long long n;
    int opt;
    while ((opt = getopt_long (argc, argv, "vh", options, NULL)) != -1) {
        int rc = 0;
        switch (opt) {
            case OPT_ID:
                rc = s_copy_flag (cfg->id, sizeof cfg->id, optarg, 1, "--id");
                break;
            case OPT_DATA:
                rc = s_copy_flag (cfg->data_dir, sizeof cfg->data_dir, optarg, 1, "--data");
                break;
            case OPT_PORT:
                rc = s_parse_number (optarg, 1, 65533, "--port", &n);
                cfg->port = (int) n;
                break;
            case OPT_REPLICA_OF:
                rc = s_check_addr (cfg->replica_of, sizeof cfg->replica_of, optarg,
                                   "--replica-of");
                break;
            case OPT_REGION:
                rc = s_copy_flag (cfg->region, sizeof cfg->region, optarg, 0, "--region");
                break;
            case OPT_FSYNC:
                if (streq (optarg, "always"))
                    cfg->fsync = WC_FSYNC_ALWAYS;
                else if (streq (optarg, "batch"))
                    cfg->fsync = WC_FSYNC_BATCH;
                else if (streq (optarg, "never"))
                    cfg->fsync = WC_FSYNC_NEVER;
                else {
                    fprintf (stderr, "walcast-node: --fsync must be always, "
                             "batch or never, got '%s'\n", optarg);
                    rc = -1;
                }
                break;
            case OPT_BIND:
                rc = s_copy_flag (cfg->bind, sizeof cfg->bind, optarg, 1, "--bind");
                break;
            case OPT_BROKER:
                rc = s_check_addr (cfg->broker, sizeof cfg->broker, optarg, "--broker");
                break;
            case OPT_ADVERTISE:
                rc = s_check_addr (cfg->advertise, sizeof cfg->advertise, optarg,
                                   "--advertise");
                break;
            case OPT_SEGMENT:
                rc = s_parse_number (optarg, 4096, 1LL << 40, "--segment-bytes", &n);
                cfg->segment_bytes = (size_t) n;
                break;
            case 'v':
                wc_log_set_level (WC_LOG_DEBUG);
                break;
            case 'h':
                fputs (s_usage, stdout);
                return 1;
            case OPT_VERSION:
                printf ("walcast-node %d.%d.%d (protocol %d)\n", WALCAST_VERSION_MAJOR,
                        WALCAST_VERSION_MINOR, WALCAST_VERSION_PATCH,
                        WC_PROTOCOL_VERSION);
                return 1;
            default:
                rc = -1;
        }
        if (rc)
            return -1;
    }
    if (optind < argc) {
        fprintf (stderr, "walcast-node: unexpected argument '%s'\n", argv [optind]);
        return -1;
    }
    if (!cfg->id [0] || !cfg->data_dir [0] || !cfg->port) {
        fprintf (stderr, "walcast-node: --id, --data and --port are required\n");
        return -1;
    }
    if (!cfg->advertise [0]) {
        bool wildcard = streq (cfg->bind, "0.0.0.0") || streq (cfg->bind, "*");
        char addr [sizeof cfg->bind + 16];
        snprintf (addr, sizeof addr, "%s:%d", wildcard ? "127.0.0.1" : cfg->bind,
                  cfg->port);
        if (s_check_addr (cfg->advertise, sizeof cfg->advertise, addr,
                          "--bind (as the advertised address)") != 0)
            return -1;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    wc_node_config_t cfg;
    int rc = s_parse (argc, argv, &cfg);
    if (rc != 0) {
        if (rc < 0)
            fprintf (stderr, "Try 'walcast-node --help'.\n");
        return rc < 0 ? 2 : 0;
    }
    char name [128];
    snprintf (name, sizeof name, "walcast-node[%s]", cfg.id);
    wc_log_set_name (name);

    /*  The node handles SIGINT/SIGTERM itself; czmq must not. */
    zsys_handler_set (NULL);
    zsys_init ();

    char why [1024];
    wc_node_t *node = wc_node_new (&cfg, why, sizeof why);
    if (!node) {
        wc_log_error ("cannot start: %s", why);
        zsys_shutdown ();
        return 1;
    }
    rc = wc_node_run (node);
    wc_node_destroy (&node);
    zsys_shutdown ();
    return rc == 0 ? 0 : 1;
}
