/*  test_config.c - configuration files and flags from one table
    (runtime/config.c, runtime/flags.c) and the log line format
    (runtime/log.c).

    What an operator relies on: every flag of a program is a key of its
    config file, with the same checks; a flag on the command line wins
    over the file; every error in the file names the file, the exact
    line and the reason (unknown key or section, bad value, a key twice,
    a missing required key, a ZPL syntax error), and nothing is printed
    on stdout meanwhile. And: a log line is key=value fields whose msg
    holds the message text unchanged, escaped so it stays one line.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "flags.h"
#include "log.h"

/*  A small program's options, as node/main.c and broker/main.c have. */
typedef struct {
    char       id [65];
    long long  port;
    char       peer [64];
    int        mode;
    bool       verbose;
    bool       check;
    char       config [256];
    wc_flag_t  table [16];
    size_t     count;
} s_opts_t;

static const char *const s_modes [] = { "always", "batch", "never", NULL };

static void
s_table (s_opts_t *o)
{
    memset (o, 0, sizeof *o);
    o->port = 7;
    o->mode = 1;
    const wc_flag_t table [] = {
        { "id", 0, WC_FLAG_STRING, o->id, sizeof o->id, 1, 64, NULL },
        { "port", 0, WC_FLAG_NUMBER, &o->port, 0, 1, 65533, NULL },
        { "replica-of", 0, WC_FLAG_ADDR, o->peer, sizeof o->peer, 0, 65533, NULL },
        { "fsync", 0, WC_FLAG_CHOICE, &o->mode, 0, 0, 0, s_modes },
        { "verbose", 'v', WC_FLAG_SWITCH, &o->verbose, 0, 0, 0, NULL },
        { "config", 0, WC_FLAG_CONFIG, o->config, sizeof o->config, 1, 255, NULL },
        { "check-config", 0, WC_FLAG_CHECK, &o->check, 0, 0, 0, NULL },
        { "help", 'h', WC_FLAG_HELP, NULL, 0, 0, 0, NULL },
        { "version", 0, WC_FLAG_VERSION, NULL, 0, 0, 0, NULL },
    };
    memcpy (o->table, table, sizeof table);
    o->count = sizeof table / sizeof table [0];
}

/*  The test's folder and the file in it. */
typedef struct {
    char dir [64];
    char path [128];
} s_world_t;

static int
setup (void **state)
{
    s_world_t *w = calloc (1, sizeof *w);
    if (!w)
        return -1;
    snprintf (w->dir, sizeof w->dir, "/tmp/test_config.XXXXXX");
    if (!mkdtemp (w->dir))
        return -1;
    snprintf (w->path, sizeof w->path, "%s/walcast-test.conf", w->dir);
    *state = w;
    return 0;
}

static int
teardown (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    unlink (w->path);
    rmdir (w->dir);
    free (w);
    return 0;
}

static void
s_write (s_world_t *w, const char *text, size_t len)
{
    FILE *file = fopen (w->path, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (text, 1, len, file), len);
    fclose (file);
}

/*  Parse argv (NULL-terminated, argv [0] the program) with the file
    holding text; returns wc_flags_parse's answer, why in *f. */
static int
s_parse (s_world_t *w, s_opts_t *o, wc_flags_t *f, const char *text,
         const char *const *args)
{
    if (text)
        s_write (w, text, strlen (text));
    s_table (o);
    wc_flags_init (f, "walcast-test", o->table, o->count, "usage\n", "v1");
    char *argv [32];
    int argc = 0;
    argv [argc++] = (char *) "walcast-test";
    for (int i = 0; args [i]; i++)
        argv [argc++] = args [i] == (const char *) 1 ? w->path : (char *) args [i];
    argv [argc] = NULL;
    return wc_flags_parse (f, argc, argv);
}

#define FILE_ARG ((const char *) 1)

/*  The error of a file with text, with its path replaced by "F". */
static const char *
s_error (s_world_t *w, const char *text)
{
    static char said [1300];
    s_opts_t o;
    wc_flags_t f;
    const char *args [] = { "--config", FILE_ARG, NULL };
    if (s_parse (w, &o, &f, text, args) != -1)
        return "(no error)";
    size_t plen = strlen (w->path);
    if (strncmp (f.why, w->path, plen) == 0)
        snprintf (said, sizeof said, "F%s", f.why + plen);
    else
        snprintf (said, sizeof said, "%s", f.why);
    print_message ("%s\n", said);
    return said;
}

/* --- good files ----------------------------------------------------------- */

static void
test_every_kind_from_the_file (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_opts_t o;
    wc_flags_t f;
    const char *args [] = { "--config", FILE_ARG, NULL };
    assert_int_equal (s_parse (w, &o, &f,
        "#   a comment at the top\n"
        "test                        # the program's section\n"
        "    id = \"us 1\"             # quoted: spaces kept\n"
        "\n"
        "    # an indented comment\n"
        "    port = 7100\n"
        "    replica-of = 127.0.0.1:7200\n"
        "    fsync = always\n"
        "    verbose = true\n", args), 0);
    assert_string_equal (o.id, "us 1");
    assert_int_equal (o.port, 7100);
    assert_string_equal (o.peer, "127.0.0.1:7200");
    assert_int_equal (o.mode, 0);
    assert_true (o.verbose);
    assert_string_equal (f.file, w->path);
    assert_int_equal (f.section_line, 2);
    assert_int_equal (f.line [0], 3);           /* id */
    assert_int_equal (f.line [1], 6);           /* port */
    assert_int_equal (f.line [4], 9);           /* verbose */
    assert_false (f.given [1]);
}

static void
test_command_line_wins (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_opts_t o;
    wc_flags_t f;
    //  before and after --config: the command line wins either way
    const char *args [] = { "--port", "9000", "--config", FILE_ARG, "--fsync", "never",
                            NULL };
    assert_int_equal (s_parse (w, &o, &f, "test\n    port = 7100\n    fsync = batch\n"
                               "    id = a\n", args), 0);
    assert_int_equal (o.port, 9000);
    assert_int_equal (o.mode, 2);
    assert_string_equal (o.id, "a");
    assert_true (f.given [1]);
    assert_int_equal (f.line [1], 2);
    //  a check about port now names the command line, not the file
    assert_int_equal (wc_flags_fail (&f, "port", "bad"), -1);
    assert_string_equal (f.why, "bad");
    assert_int_equal (wc_flags_fail (&f, "id", "bad id"), -1);
    assert_true (f.in_file);
    assert_non_null (strstr (f.why, ":4: bad id"));
}

static void
test_crlf_and_no_final_newline (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_opts_t o;
    wc_flags_t f;
    const char *args [] = { "--config", FILE_ARG, NULL };
    assert_int_equal (s_parse (w, &o, &f, "test\r\n    port = 8\r\n    id = x", args), 0);
    assert_int_equal (o.port, 8);
    assert_string_equal (o.id, "x");
    assert_string_equal (s_error (w, "test\r\n    id = x\r\n    port = 0\r\n"),
                         "F:3: port expects a number 1..65533, got '0'");
}

static void
test_without_a_file (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_opts_t o;
    wc_flags_t f;
    const char *args [] = { "--id", "n1", "-v", NULL };
    assert_int_equal (s_parse (w, &o, &f, NULL, args), 0);
    assert_string_equal (o.id, "n1");
    assert_true (o.verbose);
    assert_string_equal (f.file, "");
    assert_int_equal (wc_flags_require (&f, "id", "port", NULL), -1);
    assert_string_equal (f.why, "--port is required");
    const char *bad [] = { "--port", "x", NULL };
    assert_int_equal (s_parse (w, &o, &f, NULL, bad), -1);
    assert_string_equal (f.why, "--port expects a number 1..65533, got 'x'");
    const char *unknown [] = { "--prot", "1", NULL };
    assert_int_equal (s_parse (w, &o, &f, NULL, unknown), -1);
    assert_string_equal (f.why, "unknown option '--prot'");
    const char *empty [] = { "--config", "", NULL };
    assert_int_equal (s_parse (w, &o, &f, NULL, empty), -1);
    assert_string_equal (f.why, "--config needs a file name");
}

static void
test_keys_are_the_table (void **state)
{
    (void) state;
    s_opts_t o;
    s_table (&o);
    //  every entry that takes a value has a key; the command-line-only
    //  ones do not
    size_t keys = 0;
    for (size_t i = 0; i < o.count; i++)
        keys += wc_flags_has_key (&o.table [i]);
    assert_int_equal (keys, 5);
    assert_false (wc_flags_has_key (&o.table [5]));     /* config */
    assert_false (wc_flags_has_key (&o.table [6]));     /* check-config */
    assert_string_equal (wc_flags_section ("walcast-node"), "node");
    assert_string_equal (wc_flags_section ("walcast-broker"), "broker");
    //  what format prints, set takes back
    o.port = 123;
    o.mode = 2;
    char buf [64];
    wc_flags_format (&o.table [1], buf, sizeof buf);
    assert_string_equal (buf, "123");
    wc_flags_format (&o.table [3], buf, sizeof buf);
    assert_string_equal (buf, "never");
    wc_flags_format (&o.table [4], buf, sizeof buf);
    assert_string_equal (buf, "false");
    //  a number below its minimum was never given (a port left off):
    //  nothing, not "0"
    o.port = 0;
    wc_flags_format (&o.table [1], buf, sizeof buf);
    assert_string_equal (buf, "");
}

/* --- errors, each with its line ----------------------------------------- */

static void
test_unknown_key_and_section (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    assert_string_equal (s_error (w, "test\n    id = a\n\n    prot = 5\n"),
                         "F:4: unknown key 'prot' in section 'test'");
    //  keys that are flags but not keys
    assert_string_equal (s_error (w, "test\n    config = other.conf\n"),
                         "F:2: unknown key 'config' in section 'test'");
    assert_string_equal (s_error (w, "test\n    check-config = true\n"),
                         "F:2: unknown key 'check-config' in section 'test'");
    assert_string_equal (s_error (w, "# x\ntest\n    id = a\nbroker\n    port = 1\n"),
                         "F:4: unknown section 'broker' (this program reads section "
                         "'test')");
    assert_string_equal (s_error (w, "test\n    id = a\ntest\n    port = 1\n"),
                         "F:3: section 'test' given twice (first at line 1)");
    assert_string_equal (s_error (w, "test = yes\n    id = a\n"),
                         "F:1: section 'test' takes no value; put its keys on the "
                         "lines below it, indented by 4 spaces");
    assert_string_equal (s_error (w, "# only comments\n"),
                         "F:1: no section 'test' (put the keys under a line 'test', "
                         "indented by 4 spaces)");
}

static void
test_bad_values (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    assert_string_equal (s_error (w, "test\n    port = 70000\n"),
                         "F:2: port expects a number 1..65533, got '70000'");
    assert_string_equal (s_error (w, "test\n    port = 7100 7200\n"),
                         "F:2: port expects a number 1..65533, got '7100 7200'");
    assert_string_equal (s_error (w, "test\n    port\n"),
                         "F:2: port expects a number 1..65533, got ''");
    assert_string_equal (s_error (w, "test\n\n\n    fsync = sometimes\n"),
                         "F:4: fsync must be one of always, batch, never; got "
                         "'sometimes'");
    assert_string_equal (s_error (w, "test\n    verbose = yes\n"),
                         "F:2: verbose must be true or false, got 'yes'");
    assert_string_equal (s_error (w, "test\n    replica-of = nohost\n"),
                         "F:2: replica-of expects HOST:PORT with a port 1..65533, got "
                         "'nohost'");
    assert_string_equal (s_error (w, "test\n    id = \"\"\n"),
                         "F:2: id must be 1..64 characters, got 0");
    assert_string_equal (s_error (w, "test\n    id = a\n    port = 1\n    id = b\n"),
                         "F:4: key 'id' given twice (first at line 2)");
    assert_string_equal (s_error (w, "test\n    port = 1\n        deeper = 2\n"),
                         "F:3: 'deeper' is indented under key 'port': a key holds a "
                         "value, not more keys");
}

static void
test_syntax_errors (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    fflush (stdout);
    assert_string_equal (s_error (w, "test\n    id = a\n   port = 1\n"),
                         "F:3: not valid ZPL: indent 4 spaces at once");
    assert_string_equal (s_error (w, "test\n    id = \"a\n"),
                         "F:2: not valid ZPL: missing \"");
    assert_string_equal (s_error (w, "test\n    id = 'a' b\n"),
                         "F:2: not valid ZPL: invalid syntax 'b'");
    assert_string_equal (s_error (w, "test\n    id = a\n\n\n            port = 1\n"),
                         "F:5: not valid ZPL: indentation error");
    assert_string_equal (s_error (w, "test\n    /id = a\n"),
                         "F:2: not valid ZPL: '/' not valid at name start or end");
}

static void
test_not_a_config_file (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_write (w, "test\n    id = a\0b\n", 17);
    s_opts_t o;
    wc_flags_t f;
    s_table (&o);
    wc_flags_init (&f, "walcast-test", o.table, o.count, "", "");
    char *argv [] = { (char *) "walcast-test", (char *) "--config", w->path, NULL };
    assert_int_equal (wc_flags_parse (&f, 3, argv), -1);
    assert_non_null (strstr (f.why, ": holds a NUL byte: not a text file"));
    //  a line zconfig would cut short
    char *text = malloc (1100);
    assert_non_null (text);
    snprintf (text, 1100, "test\n    id = %01050d\n", 0);
    assert_string_equal (s_error (w, text), "F:2: line longer than 1024 characters");
    free (text);
    //  missing
    unlink (w->path);
    argv [2] = (char *) "/nonexistent/walcast.conf";
    assert_int_equal (wc_flags_parse (&f, 3, argv), -1);
    assert_string_equal (f.why, "/nonexistent/walcast.conf: cannot open: No such file "
                         "or directory");
    assert_true (f.in_file);
}

static void
test_missing_required_key (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    s_opts_t o;
    wc_flags_t f;
    const char *args [] = { "--config", FILE_ARG, NULL };
    assert_int_equal (s_parse (w, &o, &f, "# top\n\ntest\n    id = a\n", args), 0);
    assert_int_equal (wc_flags_require (&f, "id", "replica-of", NULL), -1);
    assert_true (f.in_file);
    char expect [400];
    snprintf (expect, sizeof expect, "%s:3: missing required key 'replica-of' in "
              "section 'test' (or give --replica-of)", w->path);
    assert_string_equal (f.why, expect);
    //  given on the command line instead: fine
    const char *more [] = { "--config", FILE_ARG, "--replica-of", "h:1", NULL };
    assert_int_equal (s_parse (w, &o, &f, NULL, more), 0);
    assert_int_equal (wc_flags_require (&f, "id", "replica-of", NULL), 0);
}

/*  zconfig prints its complaints on stdout; we catch them, so a caller's
    stdout (--check-config prints only its OK line there) stays clean. */
static void
test_nothing_on_stdout (void **state)
{
    s_world_t *w = (s_world_t *) *state;
    char out [] = "/tmp/test_config_out.XXXXXX";
    int fd = mkstemp (out);
    assert_true (fd >= 0);
    fflush (stdout);
    int saved = dup (1);
    dup2 (fd, 1);
    s_opts_t o;
    wc_flags_t f;
    const char *args [] = { "--config", FILE_ARG, NULL };
    int rc = s_parse (w, &o, &f, "test\n   id = a\n", args);
    fflush (stdout);
    dup2 (saved, 1);
    close (saved);
    off_t size = lseek (fd, 0, SEEK_END);
    close (fd);
    unlink (out);
    assert_int_equal (rc, -1);
    assert_int_equal (size, 0);
}

/* --- log lines ----------------------------------------------------------- */

static void
test_log_line_format (void **state)
{
    (void) state;
    char line [512];
    wc_log_set_name ("walcast-node", "us1");
    size_t len = wc_log_format (line, sizeof line, WC_LOG_INFO,
                                "wal: recovered 0 entries, last seq 0");
    assert_int_equal (len, strlen (line));
    print_message ("%s\n", line);
    //  ts=YYYY-MM-DDTHH:MM:SS.mmmZ
    assert_int_equal (strncmp (line, "ts=", 3), 0);
    assert_int_equal (line [13], 'T');
    assert_int_equal (line [26], 'Z');
    assert_string_equal (line + 27, " level=info proc=walcast-node id=us1 "
                         "msg=\"wal: recovered 0 entries, last seq 0\"");
    //  escapes: a message cannot break the line or end msg early
    wc_log_set_name ("walcast-broker", NULL);
    wc_log_format (line, sizeof line, WC_LOG_WARN, "a \"q\" b\\c\nd\te\x01");
    assert_string_equal (line + 27, " level=warn proc=walcast-broker "
                         "msg=\"a \\\"q\\\" b\\\\c\\nd\\te\\x01\"");
    //  an id with a space is quoted
    wc_log_set_name ("walcast-node", "a b");
    wc_log_format (line, sizeof line, WC_LOG_DEBUG, "x");
    assert_string_equal (line + 27, " level=debug proc=walcast-node id=\"a b\" msg=\"x\"");
    //  a long message is cut, and msg still closes
    char big [600];
    memset (big, '"', sizeof big - 1);
    big [sizeof big - 1] = 0;
    len = wc_log_format (line, 200, WC_LOG_ERROR, big);
    assert_true (len < 200);
    assert_int_equal (line [len - 1], '"');
    assert_int_equal (line [len - 2], '"');     /* the last escaped quote, whole */
    assert_int_equal (line [len - 3], '\\');
    wc_log_set_name ("walcast", NULL);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_every_kind_from_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown (test_command_line_wins, setup, teardown),
        cmocka_unit_test_setup_teardown (test_crlf_and_no_final_newline, setup, teardown),
        cmocka_unit_test_setup_teardown (test_without_a_file, setup, teardown),
        cmocka_unit_test (test_keys_are_the_table),
        cmocka_unit_test_setup_teardown (test_unknown_key_and_section, setup, teardown),
        cmocka_unit_test_setup_teardown (test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown (test_syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown (test_not_a_config_file, setup, teardown),
        cmocka_unit_test_setup_teardown (test_missing_required_key, setup, teardown),
        cmocka_unit_test_setup_teardown (test_nothing_on_stdout, setup, teardown),
        cmocka_unit_test (test_log_line_format),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
