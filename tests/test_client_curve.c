/*  test_client_curve.c - CURVE on the client side (issue 9, the client's
    part): `walcast keygen`, walcast_set_curve_*, the CLI's --curve-*
    flags, and EPERM.

    What a user relies on:
    - `walcast keygen NAME` writes NAME (0644) and NAME_secret (0600) in
      czmq's format, prints the public key, never overwrites (exit 1),
      and says why it cannot write (exit 1); a missing NAME is a usage
      error (exit 2);
    - walcast_set_curve_* refuse a file that is not the certificate they
      need with WALCAST_EINVAL and a detail naming the file and what is
      wrong, and refuse to change a handle that is connected already;
    - a handle with keys and no key for a node (or a key for a node and
      no keys of its own) fails at once with EUNAVAILABLE and a detail
      naming the flag to give, for a --node and for the broker;
    - with the right keys a client talks to a CURVE server; without keys,
      or with another server key, it gets no data (ETIMEOUT), and the
      detail says a failed handshake looks like that;
    - nodes the broker lists are reached with the key their entry gives,
      and one listed without a key is refused, naming --curve-server;
    - ERROR EPERM comes back as WALCAST_EPERM with the server's detail:
      a write is not resent, a read is not tried on another node, an
      async write is FAILED, and the CLI prints the name and the detail.

    The CURVE servers are fakes (tests/fake.h) with a CURVE secret key and
    no ZAP handler: any client key is let in, a client without CURVE or
    with another server key is not (libzmq's handshake decides).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>
#include <cmocka.h>
#include "cluster.h"
#include "fake.h"

/*  A key pair saved as files: path (public) and path_secret. */
typedef struct {
    char path [512];
    char secret_path [520];
    char public_key [41];
    char secret_key [41];
} s_cert_t;

typedef struct {
    cluster_t *cluster;
    int        port;            /* spare ports: port .. port + 9 */
    s_cert_t   client;          /* the client's key pair */
    s_cert_t   node;            /* the fake nodes' */
    s_cert_t   broker;          /* the fake broker's */
    s_cert_t   other;           /* a key pair nobody serves with */
} s_world_t;

//  A new key pair saved in the test's directory as name and name_secret.
static int
s_cert (s_world_t *w, const char *name, s_cert_t *cert)
{
    snprintf (cert->path, sizeof cert->path, "%s/%s", cluster_dir (w->cluster), name);
    snprintf (cert->secret_path, sizeof cert->secret_path, "%s_secret", cert->path);
    zcert_t *z = zcert_new ();
    if (!z || zcert_save (z, cert->path)) {
        zcert_destroy (&z);
        return -1;
    }
    snprintf (cert->public_key, sizeof cert->public_key, "%s", zcert_public_txt (z));
    snprintf (cert->secret_key, sizeof cert->secret_key, "%s", zcert_secret_txt (z));
    zcert_destroy (&z);
    return 0;
}

static int
s_setup (void **state)
{
    s_world_t *w = calloc (1, sizeof *w);
    *state = w;
    w->cluster = cluster_new ("client_curve");
    if (!w->cluster)
        return 0;
    w->port = cluster_spare_port (w->cluster);
    if (s_cert (w, "client", &w->client) || s_cert (w, "node", &w->node)
    ||  s_cert (w, "broker", &w->broker) || s_cert (w, "other", &w->other))
        cluster_destroy (&w->cluster);
    return 0;
}

static int
s_teardown (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    cluster_destroy (&w->cluster);
    free (w);
    return 0;
}

static s_world_t *
s_world (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    if (!w->cluster)
        fail_msg ("the test could not be set up (see above)");
    return w;
}

static void
s_addr (s_world_t *w, int offset, char *buf, size_t size)
{
    snprintf (buf, size, "127.0.0.1:%d", w->port + offset);
}

//  A handle with the client's keys and srv as the server key (NULL: none).
static walcast_t *
s_curve_client (s_world_t *w, const char *srv, int timeout_ms)
{
    walcast_t *h = walcast_new ();
    assert_non_null (h);
    walcast_set_timeout (h, timeout_ms);
    assert_int_equal (walcast_set_curve_cert (h, w->client.secret_path), 0);
    if (srv)
        assert_int_equal (walcast_set_curve_server (h, srv), 0);
    return h;
}

static mode_t
s_mode (const char *path)
{
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    return st.st_mode & 0777;
}

/* --- keygen ---------------------------------------------------------------- */

static void
test_keygen (void **state)
{
    s_world_t *w = s_world (state);
    char name [600], secret [610];
    snprintf (name, sizeof name, "%s/alice", cluster_dir (w->cluster));
    snprintf (secret, sizeof secret, "%s_secret", name);
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "keygen", name, NULL);
    print_message ("keygen: exit %d, stdout '%s', stderr '%s'\n", rc, out, err);
    assert_int_equal (rc, 0);
    assert_string_equal (err, "");
    assert_int_equal (strlen (out), 41);
    assert_int_equal (out [40], '\n');
    assert_int_equal (s_mode (name), 0644);
    assert_int_equal (s_mode (secret), 0600);

    //  czmq reads them back: the public key printed, a secret beside it
    zcert_t *pub = zcert_load (name);
    zcert_t *sec = zcert_load (secret);
    assert_non_null (pub);
    assert_non_null (sec);
    assert_memory_equal (zcert_public_txt (pub), out, 40);
    assert_memory_equal (zcert_public_txt (sec), out, 40);
    assert_string_not_equal (zcert_secret_txt (sec),
                             "0000000000000000000000000000000000000000");
    char secret_key [41];
    snprintf (secret_key, sizeof secret_key, "%s", zcert_secret_txt (sec));
    zcert_destroy (&pub);
    zcert_destroy (&sec);
    free (out);
    free (err);

    //  Never overwritten: exit 1, the files as they were
    rc = cluster_cli (w->cluster, NULL, &out, &err, "keygen", name, NULL);
    print_message ("keygen again: exit %d, stderr '%s'\n", rc, err);
    assert_int_equal (rc, 1);
    assert_string_equal (out, "");
    assert_non_null (strstr (err, "exists already"));
    sec = zcert_load (secret);
    assert_non_null (sec);
    assert_string_equal (zcert_secret_txt (sec), secret_key);
    zcert_destroy (&sec);
    free (out);
    free (err);

    //  A name whose secret file is a symlink to nowhere: not followed
    //  (before, the secret key was written wherever the link pointed)
    char carol [620], carol_secret [640], elsewhere [640];
    snprintf (carol, sizeof carol, "%s/carol", cluster_dir (w->cluster));
    snprintf (carol_secret, sizeof carol_secret, "%s_secret", carol);
    snprintf (elsewhere, sizeof elsewhere, "%s/elsewhere", cluster_dir (w->cluster));
    assert_int_equal (symlink (elsewhere, carol_secret), 0);
    rc = cluster_cli (w->cluster, NULL, &out, &err, "keygen", carol, NULL);
    print_message ("keygen beside a dangling symlink: exit %d, stderr '%s'\n", rc, err);
    assert_int_equal (rc, 1);
    assert_non_null (strstr (err, "exists already"));
    assert_int_equal (access (elsewhere, F_OK), -1);
    assert_int_equal (access (carol, F_OK), -1);
    free (out);
    free (err);

    //  A folder that does not exist: exit 1, saying so
    char bad [700];
    snprintf (bad, sizeof bad, "%s/no-such-dir/bob", cluster_dir (w->cluster));
    rc = cluster_cli (w->cluster, NULL, &out, &err, "keygen", bad, NULL);
    print_message ("keygen in a missing folder: exit %d, stderr '%s'\n", rc, err);
    assert_int_equal (rc, 1);
    assert_non_null (strstr (err, "walcast: keygen: cannot write"));
    assert_non_null (strstr (err, "No such file or directory"));
    free (out);
    free (err);

    //  Usage errors: no NAME, an empty one
    rc = cluster_cli (w->cluster, NULL, &out, &err, "keygen", NULL);
    assert_int_equal (rc, 2);
    assert_non_null (strstr (err, "keygen: expected NAME"));
    free (out);
    free (err);
    rc = cluster_cli (w->cluster, NULL, &out, &err, "keygen", "", NULL);
    assert_int_equal (rc, 2);
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

/* --- the setters' errors ----------------------------------------------------- */

static void
test_setter_errors (void **state)
{
    s_world_t *w = s_world (state);
    walcast_t *h = walcast_new ();
    assert_non_null (h);
    char path [700];

    //  A file that is not there
    snprintf (path, sizeof path, "%s/missing_secret", cluster_dir (w->cluster));
    assert_int_equal (walcast_set_curve_cert (h, path), WALCAST_EINVAL);
    print_message ("missing: %s\n", walcast_last_detail (h));
    assert_non_null (strstr (walcast_last_detail (h), path));
    assert_non_null (strstr (walcast_last_detail (h), "No such file"));
    assert_int_equal (walcast_set_curve_server (h, path), WALCAST_EINVAL);
    assert_int_equal (walcast_set_curve_broker (h, path), WALCAST_EINVAL);
    assert_int_equal (walcast_set_curve_cert (h, NULL), WALCAST_EINVAL);

    //  A public certificate alone given as the key pair
    snprintf (path, sizeof path, "%s/lonely", cluster_dir (w->cluster));
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fprintf (f, "curve\n    public-key = \"%s\"\n", w->node.public_key);
    fclose (f);
    assert_int_equal (walcast_set_curve_cert (h, path), WALCAST_EINVAL);
    print_message ("public as secret: %s\n", walcast_last_detail (h));
    assert_non_null (strstr (walcast_last_detail (h), "holds no secret key"));
    assert_int_equal (walcast_set_curve_server (h, path), 0);   // fine as a server's

    //  Not a certificate at all; a folder
    snprintf (path, sizeof path, "%s/garbage", cluster_dir (w->cluster));
    f = fopen (path, "w");
    assert_non_null (f);
    fprintf (f, "hello\n");
    fclose (f);
    assert_int_equal (walcast_set_curve_server (h, path), WALCAST_EINVAL);
    print_message ("garbage: %s\n", walcast_last_detail (h));
    assert_non_null (strstr (walcast_last_detail (h), "is not a CURVE certificate"));
    assert_int_equal (walcast_set_curve_broker (h, cluster_dir (w->cluster)),
                      WALCAST_EINVAL);
    print_message ("a folder: %s\n", walcast_last_detail (h));
    assert_non_null (strstr (walcast_last_detail (h), cluster_dir (w->cluster)));

    //  Too late once connected
    char addr [32];
    s_addr (w, 0, addr, sizeof addr);
    walcast_t *plain = walcast_new ();
    walcast_set_timeout (plain, 100);
    assert_int_equal (walcast_connect (plain, addr), 0);
    assert_int_equal (walcast_set_curve_cert (plain, w->client.secret_path),
                      WALCAST_EINVAL);
    assert_non_null (strstr (walcast_last_detail (plain), "before walcast_connect"));
    walcast_destroy (&plain);
    walcast_destroy (&h);

    //  The CLI says the same, as a usage error
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "--curve-cert", path,
                      "--node", addr, "status", NULL);
    assert_int_equal (rc, 2);
    assert_non_null (strstr (err, "walcast: --curve-cert: "));
    assert_non_null (strstr (err, "is not a CURVE certificate"));
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

/* --- keys that do not go together -------------------------------------------- */

static void
test_missing_keys (void **state)
{
    s_world_t *w = s_world (state);
    char addr [32], baddr [32];
    s_addr (w, 0, addr, sizeof addr);
    s_addr (w, 4, baddr, sizeof baddr);

    //  Keys, no server key: refused at once, naming --curve-server
    walcast_t *h = s_curve_client (w, NULL, 5000);
    int64_t start = cluster_now_ms ();
    assert_int_equal (walcast_connect (h, addr), WALCAST_EUNAVAILABLE);
    assert_true (cluster_now_ms () - start < 1000);
    print_message ("no server key: %s\n", walcast_last_detail (h));
    assert_non_null (strstr (walcast_last_detail (h), "--curve-server"));
    assert_int_equal (walcast_connect_broker (h, baddr), WALCAST_EUNAVAILABLE);
    assert_non_null (strstr (walcast_last_detail (h), "--curve-broker"));
    walcast_destroy (&h);

    //  A server key, no keys of our own: naming --curve-cert
    h = walcast_new ();
    assert_int_equal (walcast_set_curve_server (h, w->node.path), 0);
    assert_int_equal (walcast_set_curve_broker (h, w->broker.path), 0);
    assert_int_equal (walcast_connect (h, addr), WALCAST_EUNAVAILABLE);
    print_message ("no cert: %s\n", walcast_last_detail (h));
    assert_non_null (strstr (walcast_last_detail (h), "--curve-cert"));
    assert_int_equal (walcast_connect_broker (h, baddr), WALCAST_EUNAVAILABLE);
    assert_non_null (strstr (walcast_last_detail (h), "--curve-cert"));
    walcast_destroy (&h);

    //  The CLI: exit 3, the flag named
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "--curve-cert",
                          w->client.secret_path, "--node", addr, "get", "k", NULL);
    print_message ("cli: exit %d, '%s'\n", rc, err);
    assert_int_equal (rc, 3);
    assert_non_null (strstr (err, "--curve-server"));
    free (out);
    free (err);
    cluster_pass (w->cluster);
}

/* --- a CURVE node -------------------------------------------------------------- */

static void
test_curve_node (void **state)
{
    s_world_t *w = s_world (state);
    char addr [32];
    s_addr (w, 0, addr, sizeof addr);
    fake_node_t *node = fake_node_new_curve (w->port, "n1", w->node.secret_key);
    assert_non_null (node);

    //  The right keys: answers
    walcast_t *h = s_curve_client (w, w->node.path, 2000);
    assert_int_equal (walcast_connect (h, addr), 0);
    walcast_status_t status;
    assert_int_equal (walcast_status (h, &status), 0);
    assert_string_equal (status.id, "n1");
    walcast_pos_t pos;
    assert_int_equal (walcast_put (h, "k", 1, "v", 1, &pos), 0);
    assert_int_equal (pos.seq, 1);
    walcast_destroy (&h);

    //  Another server key: the handshake fails, no data
    h = s_curve_client (w, w->other.path, 500);
    assert_int_equal (walcast_connect (h, addr), 0);
    assert_int_equal (walcast_status (h, &status), WALCAST_ETIMEOUT);
    print_message ("wrong server key: %s\n", walcast_last_detail (h));
    assert_non_null (strstr (walcast_last_detail (h), "handshake"));
    walcast_destroy (&h);

    //  No keys at all: the mechanism does not match, no data
    h = walcast_new ();
    walcast_set_timeout (h, 500);
    assert_int_equal (walcast_connect (h, addr), 0);
    assert_int_equal (walcast_status (h, &status), WALCAST_ETIMEOUT);
    walcast_destroy (&h);

    fake_node_seen_t seen;
    fake_node_seen (node, &seen);
    assert_int_equal (seen.writes, 1);      // only the client with keys got in

    //  The CLI with its flags
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "--curve-cert",
                          w->client.secret_path, "--curve-server", w->node.path,
                          "--node", addr, "put", "k2", "v2", NULL);
    print_message ("cli put: exit %d, '%s' '%s'\n", rc, out, err);
    assert_int_equal (rc, 0);
    assert_string_equal (out, "2\n");
    free (out);
    free (err);
    rc = cluster_cli (w->cluster, NULL, &out, &err, "--timeout", "500",
                      "--curve-cert", w->client.secret_path, "--curve-server",
                      w->other.path, "--node", addr, "put", "k3", "v3", NULL);
    print_message ("cli put, wrong key: exit %d, '%s'\n", rc, err);
    assert_int_equal (rc, 3);
    assert_non_null (strstr (err, "handshake"));
    free (out);
    free (err);
    fake_node_destroy (&node);
    cluster_pass (w->cluster);
}

/* --- nodes the broker lists ---------------------------------------------------- */

static void
test_topology_keys (void **state)
{
    s_world_t *w = s_world (state);
    char addr [32], baddr [32];
    s_addr (w, 0, addr, sizeof addr);
    s_addr (w, 4, baddr, sizeof baddr);
    fake_node_t *node = fake_node_new_curve (w->port, "p1", w->node.secret_key);
    fake_broker_t *broker = fake_broker_new_curve (w->port + 4, w->broker.secret_key);
    assert_non_null (node);
    assert_non_null (broker);
    fake_broker_node_t nodes [1] = { { "p1", "", WC_ROLE_PRIMARY, 1, true, 0 } };
    snprintf (nodes [0].addr, sizeof nodes [0].addr, "%s", addr);
    fake_broker_set_key (broker, 0, w->node.public_key);
    fake_broker_set_nodes (broker, nodes, 1);

    //  No --curve-server: the key comes from the TOPOLOGY
    walcast_t *h = s_curve_client (w, NULL, 2000);
    assert_int_equal (walcast_set_curve_broker (h, w->broker.path), 0);
    assert_int_equal (walcast_connect_broker (h, baddr), 0);
    assert_int_equal (walcast_put (h, "k", 1, "v", 1, NULL), 0);

    //  Listed without a key: refused, naming --curve-server (once the
    //  push is applied)
    fake_broker_set_key (broker, 0, NULL);
    int rc = 0;
    int64_t deadline = cluster_now_ms () + 5000;
    while (cluster_now_ms () < deadline
       && (rc = walcast_put (h, "k", 1, "v", 1, NULL)) == 0)
        cluster_nap_ms (20);
    print_message ("listed without a key: %s (%s)\n", walcast_errname (rc),
                   walcast_last_detail (h));
    assert_int_equal (rc, WALCAST_EUNAVAILABLE);
    assert_non_null (strstr (walcast_last_detail (h), "--curve-server"));
    walcast_destroy (&h);

    //  The CLI, through the broker
    fake_broker_set_key (broker, 0, w->node.public_key);
    char *out = NULL, *err = NULL;
    rc = cluster_cli (w->cluster, NULL, &out, &err, "--curve-cert",
                      w->client.secret_path, "--curve-broker", w->broker.path,
                      "--broker", baddr, "put", "k", "v", NULL);
    print_message ("cli through the broker: exit %d, '%s' '%s'\n", rc, out, err);
    assert_int_equal (rc, 0);
    free (out);
    free (err);

    //  Another broker key: the handshake fails, which looks like silence,
    //  and the message says it may be that
    rc = cluster_cli (w->cluster, NULL, &out, &err, "--timeout", "500", "--curve-cert",
                      w->client.secret_path, "--curve-broker", w->other.path,
                      "--broker", baddr, "get", "k", NULL);
    print_message ("cli, wrong broker key: exit %d, '%s'\n", rc, err);
    assert_int_equal (rc, 3);
    assert_non_null (strstr (err, "failed handshake looks the same"));
    assert_non_null (strstr (err, "--curve-broker"));
    free (out);
    free (err);
    fake_broker_destroy (&broker);
    fake_node_destroy (&node);
    cluster_pass (w->cluster);
}

/* --- EPERM --------------------------------------------------------------------- */

static int s_outcome_err;
static int s_outcome_state;

static void
s_on_outcome (void *arg, const walcast_outcome_t *o)
{
    (void) arg;
    s_outcome_err = o->err;
    s_outcome_state = o->state;
}

static void
test_eperm_write (void **state)
{
    s_world_t *w = s_world (state);
    char addr [32];
    s_addr (w, 0, addr, sizeof addr);
    fake_node_t *node = fake_node_new_curve (w->port, "p1", w->node.secret_key);
    assert_non_null (node);
    fake_node_conf_t conf;
    fake_node_conf (node, &conf);
    conf.refuse = WALCAST_EPERM;            // wire code 19
    snprintf (conf.detail, sizeof conf.detail, "role readers may not PUT");
    fake_node_set (node, &conf);

    walcast_t *h = s_curve_client (w, w->node.path, 2000);
    assert_int_equal (walcast_connect (h, addr), 0);
    assert_int_equal (walcast_put (h, "k", 1, "v", 1, NULL), WALCAST_EPERM);
    assert_string_equal (walcast_last_detail (h), "role readers may not PUT");
    fake_node_seen_t seen;
    fake_node_seen (node, &seen);
    assert_int_equal (seen.writes, 1);      // not sent again
    //  Not a node failure: the next call goes to it as before
    walcast_status_t status;
    assert_int_equal (walcast_status (h, &status), 0);

    //  An async write: FAILED with EPERM
    walcast_set_outcome_fn (h, s_on_outcome, NULL);
    assert_int_equal (walcast_put_async (h, "k", 1, "v", 1, 7), 0);
    assert_int_equal (walcast_flush (h, NULL, NULL), WALCAST_EPERM);
    assert_int_equal (s_outcome_state, WALCAST_WRITE_FAILED);
    assert_int_equal (s_outcome_err, WALCAST_EPERM);
    walcast_destroy (&h);

    //  The CLI: the name and the detail, exit 3
    char *out = NULL, *err = NULL;
    int rc = cluster_cli (w->cluster, NULL, &out, &err, "--curve-cert",
                          w->client.secret_path, "--curve-server", w->node.path,
                          "--node", addr, "put", "k", "v", NULL);
    print_message ("cli put refused: exit %d, '%s'\n", rc, err);
    assert_int_equal (rc, 3);
    assert_non_null (strstr (err, "EPERM"));
    assert_non_null (strstr (err, "role readers may not PUT"));
    assert_non_null (strstr (err, "may not write: the servers' operator puts its "
                             "public certificate in the trust folder's writers/"));
    free (out);
    free (err);
    fake_node_destroy (&node);
    cluster_pass (w->cluster);
}

/*  Two nodes that answer PING, and every GET with EPERM: counted. */
static atomic_int s_gets;

static bool
s_eperm_node (void *arg, int port, const wc_msg_t *req, msgpack_sbuffer *reply)
{
    (void) arg; (void) port;
    if (req->type == WC_MSG_PING) {
        wc_msg_t pong;
        memset (&pong, 0, sizeof pong);
        pong.type = WC_MSG_PONG;
        pong.rid = req->rid;
        pong.u.pong.role = WC_ROLE_REPLICA;
        pong.u.pong.epoch = 1;
        return wc_msg_encode (&pong, reply) == 0;
    }
    if (req->type != WC_MSG_GET)
        return false;
    atomic_fetch_add (&s_gets, 1);
    return wc_error_encode (req->rid, WALCAST_EPERM, NULL, "no role for this key",
                            reply) == 0;
}

static void
test_eperm_read (void **state)
{
    s_world_t *w = s_world (state);
    atomic_store (&s_gets, 0);
    fake_t *a = fake_new (s_eperm_node, NULL, NULL);
    fake_t *b = fake_new (s_eperm_node, NULL, NULL);
    assert_non_null (a);
    assert_non_null (b);
    fake_curve_server (a, w->node.secret_key);
    fake_curve_server (b, w->node.secret_key);
    assert_int_equal (fake_bind_router (a, w->port), 0);
    assert_int_equal (fake_bind_router (b, w->port + 2), 0);
    assert_int_equal (fake_start (a), 0);
    assert_int_equal (fake_start (b), 0);
    char addr_a [32], addr_b [32];
    s_addr (w, 0, addr_a, sizeof addr_a);
    s_addr (w, 2, addr_b, sizeof addr_b);

    walcast_t *h = s_curve_client (w, w->node.path, 2000);
    assert_int_equal (walcast_connect (h, addr_a), 0);
    assert_int_equal (walcast_connect (h, addr_b), 0);
    assert_int_equal (walcast_set_consistency (h, WALCAST_EVENTUAL), 0);
    void *value = NULL;
    size_t len = 0;
    assert_int_equal (walcast_get (h, "k", 1, &value, &len, NULL), WALCAST_EPERM);
    assert_string_equal (walcast_last_detail (h), "no role for this key");
    assert_int_equal (atomic_load (&s_gets), 1);    // not tried on the other node
    walcast_destroy (&h);
    fake_destroy (&a);
    fake_destroy (&b);
    cluster_pass (w->cluster);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_keygen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_setter_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_missing_keys, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_curve_node, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_topology_keys, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_eperm_write, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_eperm_read, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
