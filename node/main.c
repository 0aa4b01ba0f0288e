/*  main.c - walcast-node: command-line flags to a node configuration.

    Parses the flags, checks them (every bad value is named on stderr with
    exit code 2), then runs the node until SIGTERM or SIGINT. Exit codes:
    0 after a clean stop, 1 when the node could not start or had to stop.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "certs.h"
#include "curve.h"
#include "flags.h"
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
    "                       1000000; 0: only when asked, walcast snapshot)\n"
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
    "  -v, --verbose        debug logging\n"
    "  -h, --help           this help\n"
    "      --version        print the version\n"
    "\n"
    "Stop it with SIGTERM or SIGINT: it finishes the current batch, syncs\n"
    "the log and exits 0.\n";

/*  The address others use when --advertise is not given: the bound
    address (127.0.0.1 for a wildcard bind) and --port. */
static int
s_default_advertise (wc_node_config_t *cfg)
{
    if (cfg->advertise [0])
        return 0;
    bool wildcard = streq (cfg->bind, "0.0.0.0") || streq (cfg->bind, "*");
    char addr [sizeof cfg->bind + 16];
    snprintf (addr, sizeof addr, "%s:%d", wildcard ? "127.0.0.1" : cfg->bind,
              cfg->port);
    if (!wc_addr_check (addr, strlen (addr), 65533, NULL)
    ||  strlen (addr) >= sizeof cfg->advertise) {
        fprintf (stderr, "walcast-node: --bind %s does not make an address others "
                 "can use (%s); give --advertise HOST:PORT\n", cfg->bind, addr);
        return -1;
    }
    strcpy (cfg->advertise, addr);
    return 0;
}

static const char *const s_fsync_modes [] = { "always", "batch", "never", NULL };

/*  The CURVE flags: file and folder names, until main starts CURVE. */
typedef struct {
    char cert [4096];
    char trust [4096];
    char server [4096];
    char broker [4096];
} s_curve_flags_t;

/*  Read the public keys --curve-server and --curve-broker name into cfg;
    -1 (said why) when a file is not a certificate or they come without
    --curve-cert. */
static int
s_curve_keys (const s_curve_flags_t *curve, wc_node_config_t *cfg)
{
    char why [1024];
    wc_certs_keys_t keys;
    if ((curve->server [0] || curve->broker [0]) && !curve->cert [0]) {
        fprintf (stderr, "walcast-node: --curve-server and --curve-broker need "
                 "--curve-cert and --curve-trust\n");
        return -1;
    }
    if (curve->server [0]) {
        if (wc_certs_load (curve->server, false, &keys, why, sizeof why) != 0) {
            fprintf (stderr, "walcast-node: --curve-server: %s\n", why);
            return -1;
        }
        strcpy (cfg->curve_server, keys.public_key);
    }
    if (curve->broker [0]) {
        if (wc_certs_load (curve->broker, false, &keys, why, sizeof why) != 0) {
            fprintf (stderr, "walcast-node: --curve-broker: %s\n", why);
            return -1;
        }
        strcpy (cfg->curve_broker, keys.public_key);
    }
    return 0;
}

/*  Fill cfg from argv. Returns 0, 1 when the run should end with exit 0
    (help, version) or -1 on a usage error (named on stderr). */
static int
s_parse (int argc, char **argv, wc_node_config_t *cfg, s_curve_flags_t *curve)
{
    memset (cfg, 0, sizeof *cfg);
    memset (curve, 0, sizeof *curve);
    strcpy (cfg->bind, "127.0.0.1");
    int fsync = WC_FSYNC_BATCH;
    long long port = 0, segment_bytes = 0, min_replicas = 0, replica_lag = 5000;
    long long snapshot_every = 1000000, retain_bytes = 256LL * 1024 * 1024;
    bool verbose = false;
    const wc_flag_t flags [] = {
        { "id", 0, WC_FLAG_STRING, cfg->id, sizeof cfg->id, 1, WC_MAX_ID, NULL },
        { "data", 0, WC_FLAG_STRING, cfg->data_dir, sizeof cfg->data_dir, 1,
          sizeof cfg->data_dir - 1, NULL },
        { "port", 0, WC_FLAG_NUMBER, &port, 0, 1, 65533, NULL },
        { "replica-of", 0, WC_FLAG_ADDR, cfg->replica_of, sizeof cfg->replica_of,
          0, 65533, NULL },
        { "region", 0, WC_FLAG_STRING, cfg->region, sizeof cfg->region, 0, WC_MAX_ID, NULL },
        { "fsync", 0, WC_FLAG_CHOICE, &fsync, 0, 0, 0, s_fsync_modes },
        { "bind", 0, WC_FLAG_STRING, cfg->bind, sizeof cfg->bind, 1,
          sizeof cfg->bind - 1, NULL },
        { "broker", 0, WC_FLAG_ADDR, cfg->broker, sizeof cfg->broker, 0, 65534, NULL },
        { "advertise", 0, WC_FLAG_ADDR, cfg->advertise, sizeof cfg->advertise,
          0, 65533, NULL },
        { "segment-bytes", 0, WC_FLAG_NUMBER, &segment_bytes, 0, 4096, 1LL << 40, NULL },
        { "min-replicas", 0, WC_FLAG_NUMBER, &min_replicas, 0, 0, 64, NULL },
        { "replica-lag", 0, WC_FLAG_NUMBER, &replica_lag, 0, 100, 3600000, NULL },
        { "snapshot-every", 0, WC_FLAG_NUMBER, &snapshot_every, 0, 0, 1LL << 40, NULL },
        { "retain-bytes", 0, WC_FLAG_NUMBER, &retain_bytes, 0, 0, 1LL << 50, NULL },
        { "curve-cert", 0, WC_FLAG_STRING, curve->cert, sizeof curve->cert, 1,
          sizeof curve->cert - 1, NULL },
        { "curve-trust", 0, WC_FLAG_STRING, curve->trust, sizeof curve->trust, 1,
          sizeof curve->trust - 1, NULL },
        { "curve-server", 0, WC_FLAG_STRING, curve->server, sizeof curve->server, 1,
          sizeof curve->server - 1, NULL },
        { "curve-broker", 0, WC_FLAG_STRING, curve->broker, sizeof curve->broker, 1,
          sizeof curve->broker - 1, NULL },
        { "verbose", 'v', WC_FLAG_SWITCH, &verbose, 0, 0, 0, NULL },
        { "help", 'h', WC_FLAG_HELP, NULL, 0, 0, 0, NULL },
        { "version", 0, WC_FLAG_VERSION, NULL, 0, 0, 0, NULL },
    };
    char version [64];
    snprintf (version, sizeof version, "walcast-node %d.%d.%d (protocol %d)",
              WALCAST_VERSION_MAJOR, WALCAST_VERSION_MINOR, WALCAST_VERSION_PATCH,
              WC_PROTOCOL_VERSION);
    int rc = wc_flags_parse ("walcast-node", argc, argv, flags,
                             sizeof flags / sizeof flags [0], s_usage, version);
    if (rc != 0)
        return rc;
    cfg->port = (int) port;
    cfg->fsync = (wc_fsync_t) fsync;
    cfg->segment_bytes = (size_t) segment_bytes;
    cfg->snapshot_every = (uint64_t) snapshot_every;
    cfg->retain_bytes = (uint64_t) retain_bytes;
    cfg->min_replicas = (uint32_t) min_replicas;
    cfg->replica_lag_ms = replica_lag;
    if (verbose)
        wc_log_set_level (WC_LOG_DEBUG);
    if (!cfg->id [0] || !cfg->data_dir [0] || !cfg->port) {
        fprintf (stderr, "walcast-node: --id, --data and --port are required\n"
                 "Try 'walcast-node --help'.\n");
        return -1;
    }
    if (s_curve_keys (curve, cfg) != 0)
        return -1;
    return s_default_advertise (cfg);
}

int
main (int argc, char **argv)
{
    wc_node_config_t cfg;
    s_curve_flags_t curve_flags;
    int rc = s_parse (argc, argv, &cfg, &curve_flags);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    wc_log_set_name ("walcast-node", cfg.id);

    /*  The node handles SIGINT/SIGTERM itself; czmq must not. */
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
    wc_node_t *node = wc_node_new (&cfg, why, sizeof why);
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
