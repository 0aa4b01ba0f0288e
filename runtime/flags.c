/*  flags.c - command-line flags and configuration files from one table
    (see flags.h).

    getopt_long does the scanning; this file builds its option array from
    the table and checks each value by its kind, so every program checks
    flags the same way and says the same things about bad ones. The scan
    only collects the values: the --config file (runtime/config.c) is
    applied first and the command line's values after it, which is all
    "flags override the file" takes.
*/
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "config.h"
#include "flags.h"

static int
s_string (const wc_flag_t *flag, const char *label, const char *value, char *why,
          size_t size)
{
    size_t len = strlen (value);
    if ((long long) len < flag->min || (long long) len > flag->max
    ||  len >= flag->size) {
        snprintf (why, size, "%s must be %lld..%lld characters, got %zu", label,
                  flag->min, flag->max, len);
        return -1;
    }
    memcpy (flag->target, value, len + 1);
    return 0;
}

static int
s_number (const wc_flag_t *flag, const char *label, const char *value, char *why,
          size_t size)
{
    char *end = NULL;
    long long n = strtoll (value, &end, 10);
    if (!*value || *end || n < flag->min || n > flag->max) {
        snprintf (why, size, "%s expects a number %lld..%lld, got '%s'", label,
                  flag->min, flag->max, value);
        return -1;
    }
    *(long long *) flag->target = n;
    return 0;
}

static int
s_addr (const wc_flag_t *flag, const char *label, const char *value, char *why,
        size_t size)
{
    size_t len = strlen (value);
    if (!wc_addr_check (value, len, (int) flag->max, NULL) || len >= flag->size) {
        snprintf (why, size, "%s expects HOST:PORT with a port 1..%lld, got '%s'",
                  label, flag->max, value);
        return -1;
    }
    memcpy (flag->target, value, len + 1);
    return 0;
}

static int
s_choice (const wc_flag_t *flag, const char *label, const char *value, char *why,
          size_t size)
{
    for (int i = 0; flag->choices [i]; i++)
        if (strcmp (flag->choices [i], value) == 0) {
            *(int *) flag->target = i;
            return 0;
        }
    int n = snprintf (why, size, "%s must be one of", label);
    for (int i = 0; flag->choices [i] && n >= 0 && (size_t) n < size; i++)
        n += snprintf (why + n, size - (size_t) n, "%s %s", i ? "," : "",
                       flag->choices [i]);
    if (n >= 0 && (size_t) n < size)
        snprintf (why + n, size - (size_t) n, "; got '%s'", value);
    return -1;
}

static int
s_switch (const wc_flag_t *flag, const char *label, const char *value, char *why,
          size_t size)
{
    if (!value || strcmp (value, "true") == 0 || strcmp (value, "false") == 0) {
        *(bool *) flag->target = !value || strcmp (value, "true") == 0;
        return 0;
    }
    snprintf (why, size, "%s must be true or false, got '%s'", label, value);
    return -1;
}

int
wc_flags_set (const wc_flag_t *flag, const char *label, const char *value,
              char *why, size_t size)
{
    switch (flag->kind) {
        case WC_FLAG_CONFIG:
        case WC_FLAG_STRING:  return s_string (flag, label, value, why, size);
        case WC_FLAG_NUMBER:  return s_number (flag, label, value, why, size);
        case WC_FLAG_ADDR:    return s_addr (flag, label, value, why, size);
        case WC_FLAG_CHOICE:  return s_choice (flag, label, value, why, size);
        case WC_FLAG_CHECK:
        case WC_FLAG_SWITCH:  return s_switch (flag, label, value, why, size);
        case WC_FLAG_HELP:
        case WC_FLAG_VERSION:
            break;
    }
    snprintf (why, size, "%s takes no value", label);
    return -1;
}

void
wc_flags_format (const wc_flag_t *flag, char *buf, size_t size)
{
    switch (flag->kind) {
        case WC_FLAG_CONFIG:
        case WC_FLAG_STRING:
        case WC_FLAG_ADDR:
            snprintf (buf, size, "%s", (const char *) flag->target);
            break;
        case WC_FLAG_NUMBER:
            //  Below its minimum only when never given (a port left off)
            if (*(const long long *) flag->target < flag->min)
                snprintf (buf, size, "%s", "");
            else
                snprintf (buf, size, "%lld", *(const long long *) flag->target);
            break;
        case WC_FLAG_CHOICE:
            snprintf (buf, size, "%s", flag->choices [*(const int *) flag->target]);
            break;
        case WC_FLAG_CHECK:
        case WC_FLAG_SWITCH:
            snprintf (buf, size, "%s", *(const bool *) flag->target ? "true" : "false");
            break;
        case WC_FLAG_HELP:
        case WC_FLAG_VERSION:
            snprintf (buf, size, "%s", "");
            break;
    }
}

bool
wc_flags_has_key (const wc_flag_t *flag)
{
    return flag->kind != WC_FLAG_HELP && flag->kind != WC_FLAG_VERSION
        && flag->kind != WC_FLAG_CONFIG && flag->kind != WC_FLAG_CHECK;
}

const char *
wc_flags_section (const char *prog)
{
    return strncmp (prog, "walcast-", 8) == 0 && prog [8] ? prog + 8 : prog;
}

void
wc_flags_init (wc_flags_t *self, const char *prog, const wc_flag_t *flags,
               size_t count, const char *usage, const char *version)
{
    memset (self, 0, sizeof *self);
    self->prog = prog;
    self->flags = flags;
    self->count = count;
    self->usage = usage;
    self->version = version;
    self->file = "";
    self->section_line = 1;
}

static bool
s_takes_value (const wc_flag_t *flag)
{
    return flag->kind != WC_FLAG_SWITCH && flag->kind != WC_FLAG_CHECK
        && flag->kind != WC_FLAG_HELP && flag->kind != WC_FLAG_VERSION;
}

/*  Say what getopt_long refused: opt ':' (a value missing) or '?' (an
    unknown option), arg the argument it stopped at. */
static void
s_scan_error (wc_flags_t *self, int opt, const char *arg)
{
    if (opt == ':' && optopt >= 256 && (size_t) (optopt - 256) < self->count)
        snprintf (self->why, sizeof self->why, "--%s needs a value",
                  self->flags [optopt - 256].name);
    else if (optopt > 0 && optopt < 256)
        snprintf (self->why, sizeof self->why, opt == ':' ? "-%c needs a value"
                  : "unknown option '-%c'", optopt);
    else
        snprintf (self->why, sizeof self->why, "unknown option '%s'", arg);
}

/*  Scan argv with getopt_long: values [k] = (index, optarg) of the k-th
    flag given, *found of them. -1 (why set) on an unknown flag, a
    missing value or a positional argument. */
static int
s_scan (wc_flags_t *self, int argc, char **argv, size_t *index, char **values,
        size_t *found)
{
    struct option options [WC_FLAGS_MAX + 1];
    char letters [3 * WC_FLAGS_MAX + 2] = ":";      /* ':': report, not print */
    for (size_t i = 0; i < self->count; i++) {
        bool value = s_takes_value (&self->flags [i]);
        options [i] = (struct option) { self->flags [i].name,
            value ? required_argument : no_argument, NULL, 256 + (int) i };
        if (self->flags [i].letter) {
            size_t at = strlen (letters);
            letters [at] = self->flags [i].letter;
            letters [at + 1] = value ? ':' : '\0';
            letters [at + 2] = '\0';
        }
    }
    options [self->count] = (struct option) { NULL, 0, NULL, 0 };
    optind = 0;                         /* a full restart: argv may be scanned again */
    opterr = 0;
    int opt;
    *found = 0;
    while ((opt = getopt_long (argc, argv, letters, options, NULL)) != -1) {
        size_t i = self->count;
        if (opt >= 256)
            i = (size_t) (opt - 256);
        else
            for (i = 0; i < self->count && self->flags [i].letter != opt; i++)
                ;
        if (i >= self->count) {
            s_scan_error (self, opt, argv [optind - 1]);
            return -1;
        }
        index [*found] = i;
        values [(*found)++] = optarg;
        self->given [i] = true;
    }
    if (optind < argc) {
        snprintf (self->why, sizeof self->why, "unexpected argument '%s'", argv [optind]);
        return -1;
    }
    return 0;
}

/*  Apply the flags argv gave (index/values, in order) after the file:
    0, 1 (help or version printed) or -1 (why set). */
static int
s_apply_argv (wc_flags_t *self, const size_t *index, char **values, size_t found)
{
    for (size_t k = 0; k < found; k++) {
        const wc_flag_t *flag = &self->flags [index [k]];
        if (flag->kind == WC_FLAG_HELP || flag->kind == WC_FLAG_VERSION) {
            fputs (flag->kind == WC_FLAG_HELP ? self->usage : self->version, stdout);
            if (flag->kind == WC_FLAG_VERSION)
                fputc ('\n', stdout);
            return 1;
        }
    }
    for (size_t k = 0; k < found; k++) {
        const wc_flag_t *flag = &self->flags [index [k]];
        char label [80];
        snprintf (label, sizeof label, "--%s", flag->name);
        char why [sizeof self->why];
        if (wc_flags_set (flag, label, values [k], why, sizeof why) != 0) {
            snprintf (self->why, sizeof self->why, "%s", why);
            return -1;
        }
    }
    return 0;
}

int
wc_flags_parse (wc_flags_t *self, int argc, char **argv)
{
    size_t index [256];
    char *values [256];
    size_t found = 0;
    self->in_file = false;
    if (self->count > WC_FLAGS_MAX || argc > 256) {
        snprintf (self->why, sizeof self->why, "too many arguments");
        return -1;
    }
    if (s_scan (self, argc, argv, index, values, &found) != 0)
        return -1;
    const char *file = NULL;
    for (size_t k = 0; k < found; k++)
        if (self->flags [index [k]].kind == WC_FLAG_CONFIG)
            file = values [k];
    if (file && !*file) {
        snprintf (self->why, sizeof self->why, "--config needs a file name");
        return -1;
    }
    if (file) {
        self->file = file;
        const char *section = wc_flags_section (self->prog);
        if (wc_config_load (file, section, self->flags, self->count, self->line,
                            &self->section_line, self->why, sizeof self->why) != 0) {
            self->in_file = true;
            return -1;
        }
    }
    return s_apply_argv (self, index, values, found);
}

/*  Index of the flag called name, or count. */
static size_t
s_find (const wc_flags_t *self, const char *name)
{
    size_t i = 0;
    while (i < self->count && strcmp (self->flags [i].name, name) != 0)
        i++;
    return i;
}

bool
wc_flags_is_set (const wc_flags_t *self, const char *name)
{
    size_t i = s_find (self, name);
    return i < self->count && (self->given [i] || self->line [i]);
}

int
wc_flags_fail (wc_flags_t *self, const char *name, const char *fmt, ...)
{
    size_t i = s_find (self, name);
    int n = 0;
    self->in_file = false;
    if (i < self->count && !self->given [i] && self->line [i]) {
        n = snprintf (self->why, sizeof self->why, "%s:%d: ", self->file,
                      self->line [i]);
        self->in_file = true;
    }
    if (n < 0 || (size_t) n >= sizeof self->why)
        return -1;
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->why + n, sizeof self->why - (size_t) n, fmt, args);
    va_end (args);
    return -1;
}

int
wc_flags_require (wc_flags_t *self, ...)
{
    va_list args;
    va_start (args, self);
    const char *name;
    int rc = 0;
    while (rc == 0 && (name = va_arg (args, const char *)) != NULL) {
        size_t i = s_find (self, name);
        if (i < self->count && (self->given [i] || self->line [i]))
            continue;
        rc = -1;
        self->in_file = self->file [0] != 0;
        if (self->in_file)
            snprintf (self->why, sizeof self->why, "%s:%d: missing required key "
                      "'%s' in section '%s' (or give --%s)", self->file,
                      self->section_line, name, wc_flags_section (self->prog), name);
        else
            snprintf (self->why, sizeof self->why, "--%s is required", name);
    }
    va_end (args);
    return rc;
}
