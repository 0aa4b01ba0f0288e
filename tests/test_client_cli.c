/*  test_client_cli.c - `walcast COMMAND --help` and `--`, as an operator
    types them.

    What a user relies on:
    - -h or --help after any COMMAND prints that command's usage on
      stdout and exits 0, before anything is done: `keygen --help` writes
      no files, `put --help x` writes nothing, `del --help` deletes
      nothing, `watch --help` watches nothing, `get --help` reads nothing;
      also without --node or --broker, and whatever else follows. (Before,
      every command but status took "--help" as its KEY, NAME or PREFIX:
      an operator's find.)
    - `--` after COMMAND ends its options: what follows is taken as it is,
      so a key that is "--help", or starts with a dash, can still be
      written, read and deleted (`walcast put -- --help x`).
    - Other arguments that start with a dash are values as before: `put k
      -5` writes "-5".
    - An option of walcast itself given after the command (`put k v
      --timeout 500`, as the errors' "give a longer --timeout" invites) is
      a usage error that says where it goes; a value that happens to be
      one is still a value.

    A real node on loopback (tests/cluster.h), reached with --node.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "cluster.h"

static int
s_setup (void **state)
{
    cluster_t *c = cluster_new ("client_cli");
    *state = c;
    if (!c)
        return 0;
    int p = cluster_add (c, "p1", NULL, NULL);
    if (cluster_start (c, p) != 0 || cluster_wait_ready (c, p, 20000) != 0)
        cluster_destroy ((cluster_t **) state);
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_destroy ((cluster_t **) state);
    return 0;
}

static cluster_t *
s_cluster (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    return c;
}

/*  Run `walcast --node NODE args...` (args NULL-terminated, at most 8):
    its exit code; its stdout in out (malloc'd, the caller frees; NULL:
    not kept). The stderr is printed when the exit code is not want. */
static int
s_cli (cluster_t *c, int want, char **out, const char *const *args)
{
    const char *argv [12] = { "--node", cluster_addr (c, 0) };
    int argc = 2;
    for (int i = 0; args [i] && argc < 11; i++)
        argv [argc++] = args [i];
    argv [argc] = NULL;
    char *o = NULL, *e = NULL;
    int rc = cluster_cli_argv (c, NULL, &o, &e, argv);
    if (rc != want)
        print_message ("walcast %s %s ...: exit %d (not %d), stdout '%s', stderr '%s'\n",
                       args [0], args [0] && args [1] ? args [1] : "", rc, want,
                       o ? o : "", e ? e : "");
    if (out)
        *out = o;
    else
        free (o);
    free (e);
    return rc;
}

/*  `walcast [--node N] CMD ARGS` with -h or --help among ARGS: exit 0,
    the command's usage on stdout, nothing on stderr. */
static void
s_expect_help (cluster_t *c, bool with_node, const char *const *args)
{
    const char *argv [12];
    int argc = 0;
    if (with_node) {
        argv [argc++] = "--node";
        argv [argc++] = cluster_addr (c, 0);
    }
    for (int i = 0; args [i] && argc < 11; i++)
        argv [argc++] = args [i];
    argv [argc] = NULL;
    char *out = NULL, *err = NULL;
    int rc = cluster_cli_argv (c, NULL, &out, &err, argv);
    char want [64];
    snprintf (want, sizeof want, "usage: walcast [OPTIONS] %s", args [0]);
    if (rc != 0 || strncmp (out, want, strlen (want)) != 0 || err [0])
        fail_msg ("walcast %s%s %s %s: exit %d, stdout '%s', stderr '%s'",
                  with_node ? "--node N " : "", args [0], args [1],
                  args [1] && args [2] ? args [2] : "", rc, out, err);
    free (out);
    free (err);
}

static void
test_help_after_every_command (void **state)
{
    cluster_t *c = s_cluster (state);
    //  keygen writes where it runs: run it in the test's directory
    char cwd [PATH_MAX];
    assert_non_null (getcwd (cwd, sizeof cwd));
    assert_int_equal (chdir (cluster_dir (c)), 0);
    const char *const cases [][4] = {
        { "put", "--help", "x", NULL },
        { "put", "--acks", "1", "--help" },
        { "get", "--help", NULL, NULL },
        { "get", "--min-seq", "1", "-h" },
        { "del", "--help", NULL, NULL },
        { "load", "--help", NULL, NULL },
        { "status", "--help", NULL, NULL },
        { "status", "--watch", "-h", NULL },
        { "digest", "-h", NULL, NULL },
        { "snapshot", "--help", NULL, NULL },
        { "switchover", "--help", NULL, NULL },
        { "forget", "-h", NULL, NULL },
        { "watch", "--help", NULL, NULL },
        { "watch", "--from", "1", "-h" },
        { "keygen", "--help", NULL, NULL },
        { "keygen", "-h", NULL, NULL },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases [0]; k++) {
        s_expect_help (c, true, cases [k]);
        s_expect_help (c, false, cases [k]);
    }
    //  keygen wrote no key pair named after the flag
    struct stat st;
    assert_int_not_equal (stat ("--help", &st), 0);
    assert_int_not_equal (stat ("--help_secret", &st), 0);
    assert_int_not_equal (stat ("-h", &st), 0);
    assert_int_equal (chdir (cwd), 0);

    //  and put, del wrote nothing: key "--help" is not there
    const char *get_help [] = { "get", "--", "--help", NULL };
    assert_int_equal (s_cli (c, 1, NULL, get_help), 1);
    cluster_pass (c);
}

static void
test_double_dash_ends_options (void **state)
{
    cluster_t *c = s_cluster (state);
    char *out;
    //  a key that is "--help"
    const char *put_help [] = { "put", "--", "--help", "x", NULL };
    assert_int_equal (s_cli (c, 0, NULL, put_help), 0);
    const char *get_help [] = { "get", "--", "--help", NULL };
    assert_int_equal (s_cli (c, 0, &out, get_help), 0);
    assert_string_equal (out, "x\n");
    free (out);
    //  `del --help` deletes nothing; `del -- --help` deletes it
    const char *del_flag [] = { "del", "--help", NULL };
    s_expect_help (c, true, del_flag);
    assert_int_equal (s_cli (c, 0, NULL, get_help), 0);
    const char *del_help [] = { "del", "--", "--help", NULL };
    assert_int_equal (s_cli (c, 0, NULL, del_help), 0);
    assert_int_equal (s_cli (c, 1, NULL, get_help), 1);

    //  keys named like the commands' options, after --
    const char *put_acks [] = { "put", "--acks", "0", "--", "--acks", "y", NULL };
    assert_int_equal (s_cli (c, 0, NULL, put_acks), 0);
    const char *get_acks [] = { "get", "--", "--acks", NULL };
    assert_int_equal (s_cli (c, 0, &out, get_acks), 0);
    assert_string_equal (out, "y\n");
    free (out);
    const char *put_min [] = { "put", "--", "--min-seq", "z", NULL };
    assert_int_equal (s_cli (c, 0, NULL, put_min), 0);
    const char *get_min [] = { "get", "--min-seq", "1", "--", "--min-seq", NULL };
    assert_int_equal (s_cli (c, 0, &out, get_min), 0);
    assert_string_equal (out, "z\n");
    free (out);
    //  only the first -- is taken: a value "--"
    const char *put_dd [] = { "put", "--", "dd", "--", NULL };
    assert_int_equal (s_cli (c, 0, NULL, put_dd), 0);
    const char *get_dd [] = { "get", "--", "dd", NULL };
    assert_int_equal (s_cli (c, 0, &out, get_dd), 0);
    assert_string_equal (out, "--\n");
    free (out);

    //  after --, an option is an argument: too many of them is a usage error
    const char *too_many [] = { "put", "--", "--acks", "1", "k", "v", NULL };
    assert_int_equal (s_cli (c, 2, NULL, too_many), 2);
    const char *status_arg [] = { "status", "--", "--watch", NULL };
    assert_int_equal (s_cli (c, 2, NULL, status_arg), 2);
    //  and a command that takes none takes a bare --
    const char *digest [] = { "digest", "--", NULL };
    assert_int_equal (s_cli (c, 0, NULL, digest), 0);
    cluster_pass (c);
}

static void
test_dash_values_still_work (void **state)
{
    cluster_t *c = s_cluster (state);
    char *out;
    const char *put_neg [] = { "put", "k", "-5", NULL };
    assert_int_equal (s_cli (c, 0, NULL, put_neg), 0);
    const char *get_k [] = { "get", "k", NULL };
    assert_int_equal (s_cli (c, 0, &out, get_k), 0);
    assert_string_equal (out, "-5\n");
    free (out);
    const char *put_dash [] = { "put", "-k", "--v", NULL };
    assert_int_equal (s_cli (c, 0, NULL, put_dash), 0);
    const char *get_dash [] = { "get", "-k", NULL };
    assert_int_equal (s_cli (c, 0, &out, get_dash), 0);
    assert_string_equal (out, "--v\n");
    free (out);
    const char *del_dash [] = { "del", "-k", NULL };
    assert_int_equal (s_cli (c, 0, NULL, del_dash), 0);
    assert_int_equal (s_cli (c, 1, NULL, get_dash), 1);
    //  A value "-h" or "--help" after the key is data, not a help that
    //  exits 0 having written nothing (a script's value could be one)
    const char *put_h [] = { "put", "k", "-h", NULL };
    assert_int_equal (s_cli (c, 0, NULL, put_h), 0);
    assert_int_equal (s_cli (c, 0, &out, get_k), 0);
    assert_string_equal (out, "-h\n");
    free (out);
    const char *put_help [] = { "put", "--acks", "0", "k", "--help", NULL };
    assert_int_equal (s_cli (c, 0, NULL, put_help), 0);
    assert_int_equal (s_cli (c, 0, &out, get_k), 0);
    assert_string_equal (out, "--help\n");
    free (out);
    cluster_pass (c);
}

//  `walcast --node N args...`: exit 2, and stderr holds want.
static void
s_expect_hint (cluster_t *c, const char *const *args, const char *want)
{
    const char *argv [12] = { "--node", cluster_addr (c, 0) };
    int argc = 2;
    for (int i = 0; args [i] && argc < 11; i++)
        argv [argc++] = args [i];
    argv [argc] = NULL;
    char *out = NULL, *err = NULL;
    int rc = cluster_cli_argv (c, NULL, &out, &err, argv);
    if (rc != 2 || !strstr (err, want))
        fail_msg ("walcast %s %s ...: exit %d, stderr '%s'; wanted exit 2 and '%s'",
                  args [0], args [1] ? args [1] : "", rc, err, want);
    free (out);
    free (err);
}

static void
test_global_option_after_command (void **state)
{
    cluster_t *c = s_cluster (state);
    const char *put_after [] = { "put", "k", "v", "--timeout", "500", NULL };
    s_expect_hint (c, put_after, "walcast: put: --timeout is an option of walcast, not "
                   "of put: give it before the command (walcast --timeout MS put ...)");
    const char *put_before [] = { "put", "--timeout=500", "k", "v", NULL };
    s_expect_hint (c, put_before, "walcast: put: --timeout is an option of walcast");
    const char *status [] = { "status", "--timeout", "500", NULL };
    s_expect_hint (c, status, "walcast: status: --timeout is an option of walcast");
    const char *digest [] = { "digest", "--broker", "h:1", NULL };
    s_expect_hint (c, digest, "give it before the command (walcast --broker HOST:PORT "
                   "digest ...)");
    //  Nothing was written by those
    const char *get_k [] = { "get", "k", NULL };
    assert_int_equal (s_cli (c, 1, NULL, get_k), 1);
    //  A value that is the name of an option is a value
    const char *put_value [] = { "put", "k", "--timeout", NULL };
    assert_int_equal (s_cli (c, 0, NULL, put_value), 0);
    char *out;
    assert_int_equal (s_cli (c, 0, &out, get_k), 0);
    assert_string_equal (out, "--timeout\n");
    free (out);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_help_after_every_command, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_double_dash_ends_options, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_dash_values_still_work, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_global_option_after_command, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
