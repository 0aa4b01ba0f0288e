/*  flags.c - command-line flags from one table (see flags.h).

    getopt_long does the scanning; this file builds its option array from
    the table and checks each value by its kind, so every program checks
    flags the same way and says the same things about bad ones.
*/
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "flags.h"

#define S_MAX_FLAGS  64

static int
s_string (const char *prog, const wc_flag_t *flag, const char *value)
{
    size_t len = strlen (value);
    if ((long long) len < flag->min || (long long) len > flag->max
    ||  len >= flag->size) {
        fprintf (stderr, "%s: --%s must be %lld..%lld characters, got %zu\n",
                 prog, flag->name, flag->min, flag->max, len);
        return -1;
    }
    memcpy (flag->target, value, len + 1);
    return 0;
}

static int
s_number (const char *prog, const wc_flag_t *flag, const char *value)
{
    char *end = NULL;
    long long n = strtoll (value, &end, 10);
    if (!*value || *end || n < flag->min || n > flag->max) {
        fprintf (stderr, "%s: --%s expects a number %lld..%lld, got '%s'\n",
                 prog, flag->name, flag->min, flag->max, value);
        return -1;
    }
    *(long long *) flag->target = n;
    return 0;
}

static int
s_addr (const char *prog, const wc_flag_t *flag, const char *value)
{
    size_t len = strlen (value);
    if (!wc_addr_check (value, len, (int) flag->max, NULL) || len >= flag->size) {
        fprintf (stderr, "%s: --%s expects HOST:PORT with a port 1..%lld, got '%s'\n",
                 prog, flag->name, flag->max, value);
        return -1;
    }
    memcpy (flag->target, value, len + 1);
    return 0;
}

static int
s_choice (const char *prog, const wc_flag_t *flag, const char *value)
{
    for (int i = 0; flag->choices [i]; i++)
        if (strcmp (flag->choices [i], value) == 0) {
            *(int *) flag->target = i;
            return 0;
        }
    fprintf (stderr, "%s: --%s must be one of", prog, flag->name);
    for (int i = 0; flag->choices [i]; i++)
        fprintf (stderr, "%s %s", i ? "," : "", flag->choices [i]);
    fprintf (stderr, "; got '%s'\n", value);
    return -1;
}

//  Apply one flag: 0, 1 (help or version printed), -1 (bad value).
static int
s_apply (const char *prog, const wc_flag_t *flag, const char *value,
         const char *usage, const char *version)
{
    switch (flag->kind) {
        case WC_FLAG_STRING:  return s_string (prog, flag, value);
        case WC_FLAG_NUMBER:  return s_number (prog, flag, value);
        case WC_FLAG_ADDR:    return s_addr (prog, flag, value);
        case WC_FLAG_CHOICE:  return s_choice (prog, flag, value);
        case WC_FLAG_SWITCH:
            *(bool *) flag->target = true;
            return 0;
        case WC_FLAG_HELP:
            fputs (usage, stdout);
            return 1;
        case WC_FLAG_VERSION:
            printf ("%s\n", version);
            return 1;
    }
    return -1;
}

int
wc_flags_parse (const char *prog, int argc, char **argv,
                const wc_flag_t *flags, size_t count,
                const char *usage, const char *version)
{
    struct option options [S_MAX_FLAGS + 1];
    char letters [2 * S_MAX_FLAGS + 1] = "";
    if (count > S_MAX_FLAGS)
        return -1;
    for (size_t i = 0; i < count; i++) {
        bool takes_value = flags [i].kind != WC_FLAG_SWITCH
                        && flags [i].kind != WC_FLAG_HELP
                        && flags [i].kind != WC_FLAG_VERSION;
        options [i] = (struct option) { flags [i].name,
            takes_value ? required_argument : no_argument, NULL, 256 + (int) i };
        if (flags [i].letter) {
            size_t at = strlen (letters);
            letters [at] = flags [i].letter;
            letters [at + 1] = takes_value ? ':' : '\0';
            letters [at + 2] = '\0';
        }
    }
    options [count] = (struct option) { NULL, 0, NULL, 0 };
    optind = 1;
    int opt, rc = 0;
    while (rc == 0 && (opt = getopt_long (argc, argv, letters, options, NULL)) != -1) {
        size_t i = count;
        if (opt >= 256)
            i = (size_t) (opt - 256);
        else
            for (i = 0; i < count && flags [i].letter != opt; i++)
                ;
        rc = i < count ? s_apply (prog, &flags [i], optarg, usage, version) : -1;
    }
    if (rc == 0 && optind < argc) {
        fprintf (stderr, "%s: unexpected argument '%s'\n", prog, argv [optind]);
        rc = -1;
    }
    if (rc < 0)
        fprintf (stderr, "Try '%s --help'.\n", prog);
    return rc;
}
