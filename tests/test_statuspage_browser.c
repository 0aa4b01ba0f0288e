/*  test_statuspage_browser.c - the broker's status page in a real
    browser (issue 10): headless Chromium (Debian's chromium package)
    renders it, and the test reads the DOM the page's script built.

    A broker with --http-port, a primary and two replicas (real binaries
    on loopback, two regions) and a few thousand writes. What a user
    relies on:
    - the page loads and shows every node, in its region, with its role;
    - a replica killed with SIGKILL is shown down within seconds;
    - the primary killed with SIGKILL: within seconds the page names the
      new primary and lists the failover that made it.
    Each check renders the page again (one `chromium --dump-dom` run)
    until it holds or a deadline passes. A screenshot of the last state
    is kept in the build output ($WALCAST_SCREENSHOT, by default
    status-page.png in the test's directory: build/tests/status-page.png).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "cluster.h"

#define NODE_TIMEOUT     "1000"
#define FAILOVER_MS      "1500"
#define WAIT_MS          20000     /* for the page to show a change */
#define CHROMIUM_MS      60000     /* one Chromium run, at most */

typedef struct {
    cluster_t *c;
    int        port;               /* the status page's */
    char       url [64];
    int        renders;            /* Chromium runs so far */
} s_page_t;

static int
s_setup (void **state)
{
    *state = cluster_new ("statuspage_browser");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

/*  The Chromium binary: $WALCAST_CHROMIUM (set by CMake when it found
    one), else `chromium` on the PATH. */
static const char *
s_chromium (void)
{
    const char *path = getenv ("WALCAST_CHROMIUM");
    return path && path [0] ? path : "chromium";
}

/*  Run Chromium headless on the page with one more argument (what to
    produce), its stdout into out_path. Kills its whole process group
    after CHROMIUM_MS. Returns its exit status, or -1. */
static int
s_run_chromium (s_page_t *page, const char *what, const char *out_path)
{
    char profile [600], log [600];
    snprintf (profile, sizeof profile, "--user-data-dir=%s/chromium", cluster_dir (page->c));
    snprintf (log, sizeof log, "%s/chromium.log", cluster_dir (page->c));
    const char *argv [] = {
        s_chromium (), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
        "--window-size=1400,1000", "--virtual-time-budget=2500", profile, what,
        page->url, NULL
    };
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid (0, 0);
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (!freopen (out_path, "w", stdout) || !freopen (log, "a", stderr))
            _exit (127);
        execvp (argv [0], (char **) argv);
        fprintf (stderr, "cannot run %s: %m\n", argv [0]);
        _exit (127);
    }
    page->renders++;
    int status = 0;
    int64_t deadline = cluster_now_ms () + CHROMIUM_MS;
    while (waitpid (pid, &status, WNOHANG) == 0) {
        if (cluster_now_ms () > deadline) {
            kill (-pid, SIGKILL);
            waitpid (pid, &status, 0);
            fprintf (stderr, "chromium ran past %d ms: killed\n", CHROMIUM_MS);
            return -1;
        }
        cluster_nap_ms (20);
    }
    kill (-pid, SIGKILL);               /* helpers it may have left behind */
    if (WIFEXITED (status) && WEXITSTATUS (status) == 127)
        fail_msg ("cannot run %s (see %s): install Debian's chromium package "
                  "(build.sh test does) or set WALCAST_CHROMIUM", s_chromium (), log);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/*  The DOM the page's script built, as Chromium serialises it (malloc'd;
    the caller frees), or NULL. */
static char *
s_render (s_page_t *page)
{
    char path [600];
    snprintf (path, sizeof path, "%s/dom.html", cluster_dir (page->c));
    if (s_run_chromium (page, "--dump-dom", path) != 0)
        return NULL;
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    rewind (file);
    char *dom = (char *) calloc (1, (size_t) size + 1);
    if (fread (dom, 1, (size_t) size, file) != (size_t) size) {
        free (dom);
        dom = NULL;
    }
    fclose (file);
    return dom;
}

/*  The value of attribute name in the tag that holds needle (an
    attribute="value" text), into value; "" when there is no such tag. */
static void
s_attr (const char *dom, const char *needle, const char *name, char *value,
        size_t size)
{
    value [0] = '\0';
    const char *at = strstr (dom, needle);
    if (!at)
        return;
    const char *open = at, *close = strchr (at, '>');
    while (open > dom && *open != '<')
        open--;
    char pattern [64];
    snprintf (pattern, sizeof pattern, " %s=\"", name);
    const char *attr = strstr (open, pattern);
    if (!close || !attr || attr > close)
        return;
    attr += strlen (pattern);
    size_t len = strcspn (attr, "\"");
    snprintf (value, size, "%.*s", (int) (len < size ? len : size - 1), attr);
}

/*  The state ("up", "down") and role the page shows for node id. */
static void
s_node_row (const char *dom, const char *id, char *state, char *role)
{
    char needle [64];
    snprintf (needle, sizeof needle, "class=\"node\" data-node=\"%s\"", id);
    s_attr (dom, needle, "data-state", state, 16);
    s_attr (dom, needle, "data-role", role, 16);
}

/*  What one rendering shows, for messages. */
static void
s_describe (const char *dom, char *text, size_t size)
{
    char primary [64], state [16], role [16];
    s_attr (dom, "id=\"primary\"", "data-node", primary, sizeof primary);
    int n = snprintf (text, size, "primary \"%s\";", primary);
    const char *ids [] = { "n1", "n2", "n3" };
    for (int i = 0; i < 3 && n > 0 && (size_t) n < size; i++) {
        s_node_row (dom, ids [i], state, role);
        n += snprintf (text + n, size - (size_t) n, " %s %s/%s;", ids [i],
                       role [0] ? role : "-", state [0] ? state : "absent");
    }
}

/*  Render until check(dom) holds; fail with what the page showed last
    after WAIT_MS. Returns the ms it took. */
static int64_t
s_until (s_page_t *page, bool (*check) (const char *dom), const char *what)
{
    int64_t start = cluster_now_ms ();
    char last [256] = "nothing rendered";
    for (;;) {
        char *dom = s_render (page);
        bool ok = dom && check (dom);
        if (dom)
            s_describe (dom, last, sizeof last);
        free (dom);
        if (ok)
            return cluster_now_ms () - start;
        if (cluster_now_ms () - start > WAIT_MS)
            fail_msg ("the page did not show %s within %d ms (%d renderings); it "
                      "showed: %s", what, WAIT_MS, page->renders, last);
        cluster_nap_ms (100);
    }
}

static bool
s_is (const char *dom, const char *id, const char *want_state, const char *want_role)
{
    char state [16], role [16];
    s_node_row (dom, id, state, role);
    return strcmp (state, want_state) == 0 && (!want_role || strcmp (role, want_role) == 0);
}

/*  Every node listed, up, n1 the primary, the regions drawn. */
static bool
s_all_up (const char *dom)
{
    char primary [64];
    s_attr (dom, "id=\"primary\"", "data-node", primary, sizeof primary);
    return strcmp (primary, "n1") == 0 && s_is (dom, "n1", "up", "primary")
        && s_is (dom, "n2", "up", "replica") && s_is (dom, "n3", "up", "replica")
        && strstr (dom, "data-region=\"us-east\"") && strstr (dom, "data-region=\"eu-west\"");
}

static bool
s_n3_down (const char *dom)
{
    return s_is (dom, "n3", "down", NULL) && s_is (dom, "n1", "up", "primary");
}

/*  n2 the primary, n1 down, and the failover listed. */
static bool
s_failed_over (const char *dom)
{
    char primary [64], from [64];
    s_attr (dom, "id=\"primary\"", "data-node", primary, sizeof primary);
    s_attr (dom, "class=\"event\" data-kind=\"failover\"", "data-to", from, sizeof from);
    return strcmp (primary, "n2") == 0 && strcmp (from, "n2") == 0
        && s_is (dom, "n1", "down", NULL) && s_is (dom, "n2", "up", "primary");
}

/*  The broker (with the page), n1 primary in us-east, n2 its replica in
    us-east, n3 in eu-west. */
static void
s_start (s_page_t *page)
{
    cluster_t *c = page->c;
    page->port = cluster_spare_port (c) + 5;
    snprintf (page->url, sizeof page->url, "http://127.0.0.1:%d/", page->port);
    static char http [16];
    snprintf (http, sizeof http, "%d", page->port);
    const char *const flags [] = { "--http-port", http, "--failover-timeout",
                                   FAILOVER_MS, NULL };
    cluster_set_broker_extra (c, flags);
    assert_int_equal (cluster_broker_start (c, atoi (NODE_TIMEOUT)), 0);
    int n1 = cluster_add (c, "n1", NULL, NULL);
    cluster_add (c, "n2", cluster_addr (c, n1), NULL);
    cluster_add (c, "n3", cluster_addr (c, n1), NULL);
    const char *regions [] = { "us-east", "us-east", "eu-west" };
    for (int i = 0; i < 3; i++) {
        cluster_set_region (c, i, regions [i]);
        cluster_set_broker (c, i, true);
        assert_int_equal (cluster_start (c, i), 0);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal (cluster_wait_ready (c, i, WAIT_MS), 0);
}

static void
test_status_page_in_chromium (void **state)
{
    s_page_t page = { .c = (cluster_t *) *state };
    if (!page.c)
        fail_msg ("the cluster could not be set up (see above)");
    s_start (&page);

    //  The page shows every node once the broker promoted n1
    int64_t took = s_until (&page, s_all_up, "every node up with n1 the primary");
    print_message ("page shows n1 primary, n2 and n3 up after %lld ms\n", (long long) took);
    //  The broker names n1 primary a beat before n1 hears its PROMOTE:
    //  write once n1 itself says it serves the epoch
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    walcast_status_t status = { .epoch = 0 };
    while ((cluster_status (page.c, 0, &status) != 0 || status.epoch == 0)
    &&     cluster_now_ms () < deadline)
        cluster_nap_ms (20);
    assert_true (status.epoch > 0);
    assert_int_equal (cluster_load (page.c, 0, 0, 3000, 1, NULL), 0);

    //  A replica killed: shown down within seconds
    assert_int_equal (cluster_kill (page.c, 2), 0);
    took = s_until (&page, s_n3_down, "n3 down");
    print_message ("page shows n3 down %lld ms after SIGKILL (node timeout %s ms)\n",
                   (long long) took, NODE_TIMEOUT);

    //  The primary killed: the page names n2 and lists the failover
    assert_int_equal (cluster_kill (page.c, 0), 0);
    took = s_until (&page, s_failed_over, "n2 the primary after a failover");
    print_message ("page shows the failover to n2 %lld ms after SIGKILL of n1 "
                   "(failover timeout %s ms); %d renderings in all\n",
                   (long long) took, FAILOVER_MS, page.renders);

    //  Keep a screenshot of it in the build output
    const char *shot = getenv ("WALCAST_SCREENSHOT");
    shot = shot && shot [0] ? shot : "status-page.png";
    char arg [700];
    snprintf (arg, sizeof arg, "--screenshot=%s", shot);
    char out [600];
    snprintf (out, sizeof out, "%s/screenshot.out", cluster_dir (page.c));
    assert_int_equal (s_run_chromium (&page, arg, out), 0);
    FILE *file = fopen (shot, "rb");
    assert_non_null (file);
    unsigned char magic [8] = { 0 };
    assert_int_equal (fread (magic, 1, 8, file), 8);
    fclose (file);
    assert_memory_equal (magic, "\x89PNG\r\n\x1a\n", 8);
    struct stat info;
    assert_int_equal (stat (shot, &info), 0);
    print_message ("screenshot: %s (%lld bytes)\n", shot, (long long) info.st_size);
    cluster_pass (page.c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_status_page_in_chromium, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
