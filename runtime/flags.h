/*  flags.h - command-line flags and configuration files from one table.

    A program describes its flags once, as a table of wc_flag_t (name,
    kind, where the value goes, its bounds), and wc_flags_parse reads argv
    into it with getopt_long: every value is checked against its bounds
    and a bad one is named ("--port expects a number 1..65533, got 'x'").

    The same table is the keys of the program's configuration file
    (runtime/config.h): a table with a WC_FLAG_CONFIG entry (--config
    FILE) reads FILE's section named after the program ("node" for
    walcast-node, "broker" for walcast-broker), where every flag that
    takes part is a key of the same name (port = 7100, curve-cert = ...,
    verbose = true). The file is read first and the command line second,
    so a flag given on the command line overrides the file. Kinds that
    have no key: WC_FLAG_CONFIG, WC_FLAG_CHECK, WC_FLAG_HELP and
    WC_FLAG_VERSION. A new entry of the table is a new key, with no
    other code.
*/
#ifndef WC_FLAGS_H_INCLUDED
#define WC_FLAGS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

/*  Most entries a table may have. */
#define WC_FLAGS_MAX  64

typedef enum {
    WC_FLAG_STRING,     /* char [size]: min..max characters */
    WC_FLAG_NUMBER,     /* long long: min..max */
    WC_FLAG_ADDR,       /* char [size]: HOST:PORT, port 1..max */
    WC_FLAG_CHOICE,     /* int: index of the value in choices */
    WC_FLAG_SWITCH,     /* bool: set to true when present; takes no value
                           (in a file: true or false) */
    WC_FLAG_HELP,       /* print the usage on stdout; the program exits 0 */
    WC_FLAG_VERSION,    /* print the version on stdout; the program exits 0 */
    WC_FLAG_CONFIG,     /* char [size]: the configuration file to read */
    WC_FLAG_CHECK       /* bool, like a switch, command line only
                           (--check-config) */
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

/*  One parse: the table, and what wc_flags_parse found. */
typedef struct {
    const char       *prog;         /* "walcast-node": messages, section name */
    const wc_flag_t  *flags;        /* the table */
    size_t            count;        /* its entries */
    const char       *usage;        /* printed for --help */
    const char       *version;      /* printed for --version */
    const char       *file;         /* the --config file, "" when none */
    int               section_line; /* line of its section (1 when absent) */
    int               line [WC_FLAGS_MAX];  /* flags[i] set by the file at this line, or 0 */
    bool              given [WC_FLAGS_MAX]; /* flags[i] given on the command line */
    bool              in_file;      /* the last error is in the file (said where) */
    char              why [1200];   /* the last error, for the caller to print */
} wc_flags_t;

/*  Start a parse of flags [0..count) for prog. */
void wc_flags_init (wc_flags_t *self, const char *prog, const wc_flag_t *flags,
                    size_t count, const char *usage, const char *version);

/*  Parse argv, and the --config file when the table has WC_FLAG_CONFIG
    and it is given, into the table's targets. Positional arguments are
    refused. Returns 0 to run, 1 when the program should exit 0 (help,
    version: printed on stdout), -1 on an error: self->why says it
    ("--port expects ...", or "FILE:LINE: reason" for the file), nothing
    printed. */
int wc_flags_parse (wc_flags_t *self, int argc, char **argv);

/*  Check value for flag and store it at flag->target: 0, or -1 with the
    reason in why, naming the flag as label ("--port", "port"). Switches
    take "true" or "false". */
int wc_flags_set (const wc_flag_t *flag, const char *label, const char *value,
                  char *why, size_t size);

/*  The value at flag->target as text (what wc_flags_set would take); ""
    for a value never given: an empty string, or a number below its
    minimum (a port left off is 0). */
void wc_flags_format (const wc_flag_t *flag, char *buf, size_t size);

/*  Whether flags[i] has a configuration key. */
bool wc_flags_has_key (const wc_flag_t *flag);

/*  The configuration section of prog: what follows "walcast-", else prog. */
const char *wc_flags_section (const char *prog);

/*  Whether the flag called name was set, on the command line or in the
    file (false: it holds its default). */
bool wc_flags_is_set (const wc_flags_t *self, const char *name);

/*  A program's own check failed about flag `name`: set self->why to the
    printf text, preceded by "FILE:LINE: " when the value came from the
    file, and return -1. */
int wc_flags_fail (wc_flags_t *self, const char *name, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  The first of the NULL-terminated names set neither on the command
    line nor in the file: -1 with self->why ("FILE:LINE: missing required
    key 'port' in section 'node' (or give --port)", or "--port is
    required" without a file); 0 when all are set. */
int wc_flags_require (wc_flags_t *self, ...);

#endif
