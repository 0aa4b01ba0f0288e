/*  config.c - a walcast program's configuration file (see config.h).

    Three passes, each simple: read the text (bounded, no NUL bytes, no
    line longer than zconfig takes whole); number the lines zconfig turns
    into items; load the tree with zconfig, then walk it with those
    numbers, checking every key against the flag table.
*/
#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "certs.h"
#include "config.h"
#include "curve.h"
#include "log.h"
#include "sock.h"

/*  zconfig keeps at most this much of a line. */
#define S_MAX_LINE   1024
/*  Most items a file may hold. */
#define S_MAX_ITEMS  1024

/*  The items of the tree and their lines, in walk order. */
typedef struct {
    zconfig_t  *item [S_MAX_ITEMS];
    int         line [S_MAX_ITEMS];
    int         lines [S_MAX_ITEMS];    /* lines that make items, in order */
    size_t      count;                  /* of lines */
    size_t      walked;                 /* items numbered so far */
} s_map_t;

/*  Read the file into a malloc'd NUL-terminated text: NULL with why. */
static char *
s_read (const char *path, char *why, size_t size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (why, size, "%s: cannot open: %s", path, strerror (errno));
        return NULL;
    }
    char *text = malloc (WC_CONFIG_MAX_BYTES + 1);
    size_t got = text ? fread (text, 1, WC_CONFIG_MAX_BYTES + 1, file) : 0;
    bool failed = text && ferror (file);
    fclose (file);
    if (!text || failed || got > WC_CONFIG_MAX_BYTES || memchr (text, 0, got)) {
        snprintf (why, size, "%s: %s", path, !text ? "out of memory"
                  : failed ? "cannot read it" : got > WC_CONFIG_MAX_BYTES
                  ? "larger than 1 MiB" : "holds a NUL byte: not a text file");
        free (text);
        return NULL;
    }
    text [got] = 0;
    return text;
}

static bool
s_is_namechar (char c)
{
    return isalnum ((unsigned char) c) || (c && strchr ("$-_@.&+/", c));
}

/*  Number the lines that make items (those whose first character after
    the spaces of the indent is a name character), as zconfig does. 0,
    or -1 with why (a line too long, too many lines). */
static int
s_number_lines (const char *path, const char *text, s_map_t *map, char *why,
                size_t size)
{
    int lineno = 0;
    for (const char *line = text; *line; ) {
        const char *eol = strchr (line, '\n');
        if (!eol)
            eol = line + strlen (line);
        lineno++;
        if (eol - line > S_MAX_LINE) {
            snprintf (why, size, "%s:%d: line longer than %d characters", path,
                      lineno, S_MAX_LINE);
            return -1;
        }
        const char *p = line;
        while (p < eol && *p == ' ')
            p++;
        if (p < eol && s_is_namechar (*p)) {
            if (map->count == S_MAX_ITEMS) {
                snprintf (why, size, "%s:%d: more than %d keys", path, lineno,
                          S_MAX_ITEMS);
                return -1;
            }
            map->lines [map->count++] = lineno;
        }
        line = *eol ? eol + 1 : eol;
    }
    return 0;
}

/*  Give every item under parent its line, in walk order. */
static void
s_walk (zconfig_t *parent, s_map_t *map)
{
    for (zconfig_t *item = zconfig_child (parent); item; item = zconfig_next (item)) {
        if (map->walked < map->count) {
            map->item [map->walked] = item;
            map->line [map->walked] = map->lines [map->walked];
            map->walked++;
        }
        s_walk (item, map);
    }
}

static int
s_line_of (const s_map_t *map, zconfig_t *item)
{
    for (size_t i = 0; i < map->walked; i++)
        if (map->item [i] == item)
            return map->line [i];
    return 0;
}

/*  Load text with zconfig, with its error messages (printed on stdout)
    caught: NULL on a syntax error, the line and reason in why. */
static zconfig_t *
s_parse (const char *path, const char *text, char *why, size_t size)
{
    fflush (stdout);
    FILE *catch = tmpfile ();
    int saved = catch ? dup (STDOUT_FILENO) : -1;
    bool caught = saved >= 0 && dup2 (fileno (catch), STDOUT_FILENO) >= 0;
    zconfig_t *root = zconfig_str_load (text);
    fflush (stdout);
    char said [S_MAX_LINE + 128] = "";
    if (caught) {
        dup2 (saved, STDOUT_FILENO);
        rewind (catch);
        size_t got = fread (said, 1, sizeof said - 1, catch);
        said [got] = 0;
    }
    if (saved >= 0)
        close (saved);
    if (catch)
        fclose (catch);
    if (root)
        return root;
    //  zconfig says "... E (zconfig): (LINE) REASON"
    int line = 0;
    const char *at = strstr (said, "(zconfig): (");
    char *reason = at ? strchr (at + 12, ')') : NULL;
    if (at)
        line = atoi (at + 12);
    if (reason)
        reason [strcspn (reason, "\n")] = 0;
    snprintf (why, size, "%s:%d: not valid ZPL: %s", path, line,
              reason && reason [1] == ' ' ? reason + 2
              : "zconfig refused it (indent keys by 4 spaces: NAME = VALUE)");
    return NULL;
}

/*  Check one key of the section and store its value: 0, or -1 with why. */
static int
s_key (const char *path, const char *section, zconfig_t *item, const s_map_t *map,
       const wc_flag_t *flags, size_t count, int *lines, char *why, size_t size)
{
    const char *name = zconfig_name (item);
    int line = s_line_of (map, item);
    size_t i = 0;
    while (i < count && !(wc_flags_has_key (&flags [i]) && streq (flags [i].name, name)))
        i++;
    if (i == count) {
        snprintf (why, size, "%s:%d: unknown key '%s' in section '%s'", path, line,
                  name, section);
        return -1;
    }
    if (lines [i]) {
        snprintf (why, size, "%s:%d: key '%s' given twice (first at line %d)", path,
                  line, name, lines [i]);
        return -1;
    }
    zconfig_t *child = zconfig_child (item);
    if (child) {
        snprintf (why, size, "%s:%d: '%s' is indented under key '%s': a key holds "
                  "a value, not more keys", path, s_line_of (map, child),
                  zconfig_name (child), name);
        return -1;
    }
    char reason [512];
    if (wc_flags_set (&flags [i], name, zconfig_value (item), reason, sizeof reason) != 0) {
        snprintf (why, size, "%s:%d: %s", path, line, reason);
        return -1;
    }
    lines [i] = line;
    return 0;
}

/*  Check the tree's top level (one section, ours) and every key in it. */
static int
s_check (const char *path, const char *section, zconfig_t *root, const s_map_t *map,
         const wc_flag_t *flags, size_t count, int *lines, int *section_line,
         char *why, size_t size)
{
    int found = 0;
    for (zconfig_t *top = zconfig_child (root); top; top = zconfig_next (top)) {
        int line = s_line_of (map, top);
        const char *name = zconfig_name (top);
        if (!streq (name, section)) {
            snprintf (why, size, "%s:%d: unknown section '%s' (this program reads "
                      "section '%s')", path, line, name, section);
            return -1;
        }
        if (found) {
            snprintf (why, size, "%s:%d: section '%s' given twice (first at line %d)",
                      path, line, name, found);
            return -1;
        }
        found = line;
        if (*zconfig_value (top)) {
            snprintf (why, size, "%s:%d: section '%s' takes no value; put its keys "
                      "on the lines below it, indented by 4 spaces", path, line, section);
            return -1;
        }
        for (zconfig_t *item = zconfig_child (top); item; item = zconfig_next (item))
            if (s_key (path, section, item, map, flags, count, lines, why, size) != 0)
                return -1;
    }
    if (!found) {
        snprintf (why, size, "%s:1: no section '%s' (put the keys under a line '%s', "
                  "indented by 4 spaces)", path, section, section);
        return -1;
    }
    *section_line = found;
    return 0;
}

int
wc_config_load (const char *path, const char *section, const wc_flag_t *flags,
                size_t count, int *lines, int *section_line, char *why, size_t size)
{
    for (size_t i = 0; i < count; i++)
        lines [i] = 0;
    *section_line = 1;
    char *text = s_read (path, why, size);
    if (!text)
        return -1;
    s_map_t *map = calloc (1, sizeof *map);
    int rc = -1;
    if (!map)
        snprintf (why, size, "%s: out of memory", path);
    else if (s_number_lines (path, text, map, why, size) == 0) {
        zconfig_t *root = s_parse (path, text, why, size);
        if (root) {
            s_walk (root, map);
            rc = s_check (path, section, root, map, flags, count, lines,
                          section_line, why, size);
            zconfig_destroy (&root);
        }
    }
    free (map);
    free (text);
    return rc;
}

int
wc_config_check_curve (wc_flags_t *f, const char *cert, const char *trust)
{
    if (!cert [0] && !trust [0])
        return 0;
    if (!cert [0] || !trust [0])
        return wc_flags_fail (f, cert [0] ? "curve-cert" : "curve-trust",
                              "--curve-cert and --curve-trust go together: give both "
                              "(the key pair and the folder of trusted public "
                              "certificates)");
    char why [1024];
    wc_certs_keys_t keys;
    if (wc_certs_load (cert, true, &keys, why, sizeof why) != 0)
        return wc_flags_fail (f, "curve-cert", "--curve-cert: %s", why);
    struct stat st;
    if (stat (trust, &st) != 0 || !S_ISDIR (st.st_mode))
        return wc_flags_fail (f, "curve-trust", "--curve-trust %s is not a folder "
                              "(make one with nodes/, writers/ and readers/ in it)",
                              trust);
    return 0;
}

int
wc_config_reload_level (int *running, int fresh)
{
    if (*running == fresh)
        return 0;
    int louder = fresh > *running ? fresh : *running;
    wc_log_set_level ((wc_log_level_t) louder);
    wc_log_info ("reload: log-level %s -> %s", wc_log_level_names [*running],
                 wc_log_level_names [fresh]);
    wc_log_set_level ((wc_log_level_t) fresh);
    *running = fresh;
    return 1;
}

int
wc_config_reload_trust (char *running, size_t size, const char *fresh)
{
    if (streq (running, fresh))
        return 0;
    wc_curve_t *curve = wc_sock_curve ();
    char why [1024];
    if (!curve || !fresh [0]) {
        wc_log_warn ("reload: curve-trust %s -> %s needs a restart (CURVE is "
                     "turned on and off only at start); not applied",
                     running [0] ? running : "(unset)", fresh [0] ? fresh : "(unset)");
        return 1;
    }
    if (wc_curve_set_trust (curve, fresh, why, sizeof why) != 0) {
        wc_log_warn ("reload: %s; keeping curve-trust %s", why, running);
        return 1;
    }
    wc_log_info ("reload: curve-trust %s -> %s", running, fresh);
    snprintf (running, size, "%s", fresh);
    return 1;
}

/*  Whether name is in the NULL-terminated list. */
static bool
s_listed (const char *const *list, const char *name)
{
    for (size_t i = 0; list [i]; i++)
        if (streq (list [i], name))
            return true;
    return false;
}

int
wc_config_reload_report (const wc_flag_t *running, const wc_flag_t *fresh,
                         size_t count, const char *const *live)
{
    int changed = 0;
    for (size_t i = 0; i < count; i++) {
        if (!wc_flags_has_key (&running [i]) || s_listed (live, running [i].name))
            continue;
        char was [4200], now [4200];
        wc_flags_format (&running [i], was, sizeof was);
        wc_flags_format (&fresh [i], now, sizeof now);
        if (streq (was, now))
            continue;
        wc_log_warn ("reload: %s %s -> %s needs a restart; not applied",
                     running [i].name, was [0] ? was : "(unset)", now [0] ? now : "(unset)");
        changed++;
    }
    return changed;
}
