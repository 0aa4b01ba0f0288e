/*  config.h - a walcast program's configuration file.

    The file is ZPL (rfc.zeromq.org/spec:4, read by czmq's zconfig): one
    section named after the program, its keys indented by four spaces,
    one key per line, every key the long name of a flag:

        node                        # walcast-node reads section "node"
            id = us1
            port = 7100
            curve-cert = "/etc/walcast/us1_secret"

    wc_config_load checks the whole file against the program's flag table
    (runtime/flags.h) and stores every value through it, so a file is
    checked exactly as the command line is. Its errors name the file, the
    line and the reason: a ZPL syntax error (zconfig's own words, which it
    prints on stdout; this module captures them), an unknown section or
    key, a key given twice, a value out of bounds. zconfig keeps no line
    numbers: its loader makes one item per line that starts (after the
    indent) with a name character, in file order, so the n-th item of a
    walk of the tree is the n-th such line of the text.
*/
#ifndef WC_CONFIG_H_INCLUDED
#define WC_CONFIG_H_INCLUDED

#include <stddef.h>
#include "flags.h"

/*  Largest configuration file, in bytes. */
#define WC_CONFIG_MAX_BYTES  (1024 * 1024)

/*  Read path's section `section` into the targets of flags [0..count)
    that have keys (wc_flags_has_key): lines [i] becomes the line of
    flags [i]'s key (0 when absent), *section_line the section's line.
    Returns 0, or -1 with "PATH:LINE: reason" (or "PATH: reason" when the
    file cannot be read) in why. */
int wc_config_load (const char *path, const char *section, const wc_flag_t *flags,
                    size_t count, int *lines, int *section_line, char *why,
                    size_t size);

/*  --check-config's look at --curve-cert and --curve-trust (either may
    be ""): both or neither; the key pair loads; the trust folder is a
    folder. 0, or -1 with f->why naming the key's line. */
int wc_config_check_curve (wc_flags_t *f, const char *cert, const char *trust);

/* --- SIGHUP: what a running program can change -------------------------- */

/*  A new log level: when it differs from *running, log "reload:
    log-level OLD -> NEW" (whichever of the two is more verbose shows it)
    and set it. Returns 1 when it changed, else 0. */
int wc_config_reload_level (int *running, int fresh);

/*  A new trust folder (CURVE): when it differs from running (a string
    of size bytes), point CURVE at it (curve.h) and log "reload:
    curve-trust OLD -> NEW", or log why it cannot be (CURVE is off, the
    folder is missing) and keep the old one. Returns 1 when it logged. */
int wc_config_reload_trust (char *running, size_t size, const char *fresh);

/*  Log "reload: KEY OLD -> NEW needs a restart; not applied" for every
    keyed flag, other than those named in live (NULL-terminated), whose
    value differs between two tables of the same shape (a value never
    given, a port left off, is "(unset)"). Returns how many. */
int wc_config_reload_report (const wc_flag_t *running, const wc_flag_t *fresh,
                             size_t count, const char *const *live);

#endif
