/*  flags.h - command-line flags from one table.

    A program describes its flags once, as a table of wc_flag_t (name,
    kind, where the value goes, its bounds), and wc_flags_parse reads argv
    into it with getopt_long: every value is checked against its bounds
    and a bad one is named on stderr ("walcast-node: --port expects a
    number 1..65533, got 'x'"). The same table can later be the keys of a
    configuration file.
*/
#ifndef WC_FLAGS_H_INCLUDED
#define WC_FLAGS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    WC_FLAG_STRING,     /* char [size]: min..max characters */
    WC_FLAG_NUMBER,     /* long long: min..max */
    WC_FLAG_ADDR,       /* char [size]: HOST:PORT, port 1..max */
    WC_FLAG_CHOICE,     /* int: index of the value in choices */
    WC_FLAG_SWITCH,     /* bool: set to true when present; takes no value */
    WC_FLAG_HELP,       /* print the usage on stdout; the program exits 0 */
    WC_FLAG_VERSION     /* print the version on stdout; the program exits 0 */
} wc_flag_kind_t;

typedef struct {
    const char         *name;       /* long name, "port" for --port */
    char                letter;     /* short name ('v'), or 0 */
    wc_flag_kind_t      kind;
    void               *target;     /* where the value goes (see kinds) */
    size_t              size;       /* bytes at target, for strings */
    long long           min, max;   /* bounds (numbers, string lengths, ports) */
    const char *const  *choices;    /* NULL-terminated, for WC_FLAG_CHOICE */
} wc_flag_t;

/*  Parse argv into flags [0..count). prog names the program in messages;
    usage is printed for --help, version for --version. Positional
    arguments are refused. Returns 0 to run, 1 when the program should
    exit 0 (help, version), -1 on a usage error (already named on stderr,
    with a pointer to --help). */
int wc_flags_parse (const char *prog, int argc, char **argv,
                    const wc_flag_t *flags, size_t count,
                    const char *usage, const char *version);

#endif
