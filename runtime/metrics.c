/*  metrics.c - a registry of metrics in Prometheus's text format (see
    metrics.h).

    Families sit in an array in declaration order; each holds its series,
    each series allocated on its own so a wc_metric_t stays put while
    others are added. A series keeps its label values and either one
    value (counter, gauge) or a tally (histogram). Rendering writes into
    a memory stream: numbers in the shortest form that reads back exactly
    (integers without a fraction), so counts look like counts.
*/
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics.h"
#include "walcast.h"

const double wc_metrics_latency_bounds [WC_METRICS_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};

struct wc_metric {
    char              *values [WC_METRICS_MAX_LABELS];  /* label values */
    double             value;       /* counter, gauge */
    wc_metrics_tally_t tally;       /* histogram */
    const double      *bounds;      /* the family's, for observe */
    size_t             nbounds;
};

typedef struct {
    char              *name;
    char              *help;
    wc_metric_type_t   type;
    char              *labels [WC_METRICS_MAX_LABELS];
    size_t             nlabels;
    const double      *bounds;      /* histogram: upper bounds, ascending */
    size_t             nbounds;
    wc_metric_t      **series;
    size_t             nseries, series_cap;
} s_family_t;

struct wc_metrics {
    s_family_t *families;
    size_t      nfamilies, cap;
};

void
wc_metrics_tally_add (wc_metrics_tally_t *tally, const double *bounds, size_t nbounds,
                      double value)
{
    wc_metrics_tally_add_n (tally, bounds, nbounds, value, 1);
}

void
wc_metrics_tally_add_n (wc_metrics_tally_t *tally, const double *bounds, size_t nbounds,
                        double value, uint64_t n)
{
    size_t i = 0;
    while (i < nbounds && value > bounds [i])
        i++;
    tally->counts [i] += n;
    tally->sum += value * (double) n;
    tally->count += n;
}

wc_metrics_t *
wc_metrics_new (void)
{
    return (wc_metrics_t *) calloc (1, sizeof (wc_metrics_t));
}

static void
s_series_free (wc_metric_t *series)
{
    for (size_t i = 0; i < WC_METRICS_MAX_LABELS; i++)
        free (series->values [i]);
    free (series);
}

/*  Free every series of family. */
static void
s_family_clear (s_family_t *family)
{
    for (size_t i = 0; i < family->nseries; i++)
        s_series_free (family->series [i]);
    family->nseries = 0;
}

void
wc_metrics_destroy (wc_metrics_t **self_p)
{
    wc_metrics_t *self = *self_p;
    if (!self)
        return;
    for (size_t f = 0; f < self->nfamilies; f++) {
        s_family_t *family = &self->families [f];
        s_family_clear (family);
        free (family->series);
        free (family->name);
        free (family->help);
        for (size_t i = 0; i < family->nlabels; i++)
            free (family->labels [i]);
    }
    free (self->families);
    free (self);
    *self_p = NULL;
}

/*  A metric or label name: [a-zA-Z_:][a-zA-Z0-9_:]* (labels: no colon,
    which the caller does not use). */
static bool
s_valid_name (const char *name)
{
    if (!name || !*name || (*name >= '0' && *name <= '9'))
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
           || (*c >= '0' && *c <= '9') || *c == '_' || *c == ':'))
            return false;
    return true;
}

static s_family_t *
s_family (const wc_metrics_t *self, const char *name)
{
    for (size_t f = 0; f < self->nfamilies; f++)
        if (strcmp (self->families [f].name, name) == 0)
            return &self->families [f];
    return NULL;
}

/*  Check a family's declaration; 0 or WALCAST_EINVAL. */
static int
s_check_family (const wc_metrics_t *self, const char *name, const char *const *labels,
                size_t *nlabels, size_t nbounds)
{
    if (!s_valid_name (name) || s_family (self, name) || nbounds > WC_METRICS_MAX_BUCKETS)
        return WALCAST_EINVAL;
    *nlabels = 0;
    while (labels && labels [*nlabels]) {
        if (*nlabels == WC_METRICS_MAX_LABELS || !s_valid_name (labels [*nlabels]))
            return WALCAST_EINVAL;
        (*nlabels)++;
    }
    return 0;
}

int
wc_metrics_family (wc_metrics_t *self, const char *name, wc_metric_type_t type,
                   const char *help, const char *const *labels,
                   const double *bounds, size_t nbounds)
{
    size_t nlabels;
    int rc = s_check_family (self, name, labels, &nlabels, nbounds);
    if (rc)
        return rc;
    if (self->nfamilies == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        s_family_t *grown = (s_family_t *) realloc (self->families, cap * sizeof *grown);
        if (!grown)
            return WALCAST_ENOMEM;
        self->families = grown;
        self->cap = cap;
    }
    s_family_t *family = &self->families [self->nfamilies];
    memset (family, 0, sizeof *family);
    family->name = strdup (name);
    family->help = strdup (help ? help : "");
    bool ok = family->name && family->help;
    for (size_t i = 0; i < nlabels; i++) {
        family->labels [i] = strdup (labels [i]);
        ok = ok && family->labels [i];
    }
    family->nlabels = nlabels;
    family->type = type;
    family->bounds = type == WC_METRIC_HISTOGRAM ? bounds : NULL;
    family->nbounds = type == WC_METRIC_HISTOGRAM ? nbounds : 0;
    if (!ok) {
        free (family->name);
        free (family->help);
        for (size_t i = 0; i < nlabels; i++)
            free (family->labels [i]);
        return WALCAST_ENOMEM;
    }
    self->nfamilies++;
    return 0;
}

/*  Does series carry exactly these label values? */
static bool
s_same_values (const wc_metric_t *series, size_t nlabels, const char *const *values)
{
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp (series->values [i], values [i]) != 0)
            return false;
    return true;
}

/*  A new series of family at zero, added to it; NULL when out of memory. */
static wc_metric_t *
s_series_add (s_family_t *family, const char *const *values)
{
    if (family->nseries == family->series_cap) {
        size_t cap = family->series_cap ? family->series_cap * 2 : 4;
        wc_metric_t **grown = (wc_metric_t **) realloc (family->series,
                                                        cap * sizeof *grown);
        if (!grown)
            return NULL;
        family->series = grown;
        family->series_cap = cap;
    }
    wc_metric_t *series = (wc_metric_t *) calloc (1, sizeof *series);
    if (!series)
        return NULL;
    for (size_t i = 0; i < family->nlabels; i++)
        if (!(series->values [i] = strdup (values [i]))) {
            s_series_free (series);
            return NULL;
        }
    series->bounds = family->bounds;
    series->nbounds = family->nbounds;
    family->series [family->nseries++] = series;
    return series;
}

wc_metric_t *
wc_metrics_series (wc_metrics_t *self, const char *name, const char *const *values)
{
    s_family_t *family = s_family (self, name);
    if (!family || (family->nlabels > 0 && !values))
        return NULL;
    for (size_t i = 0; i < family->nseries; i++)
        if (s_same_values (family->series [i], family->nlabels, values))
            return family->series [i];
    return s_series_add (family, values);
}

void
wc_metrics_clear (wc_metrics_t *self, const char *name)
{
    s_family_t *family = s_family (self, name);
    if (family)
        s_family_clear (family);
}

void
wc_metric_set (wc_metric_t *metric, double value)
{
    if (metric)
        metric->value = value;
}

void
wc_metric_add (wc_metric_t *metric, double value)
{
    if (metric)
        metric->value += value;
}

void
wc_metric_observe (wc_metric_t *metric, double value)
{
    if (metric)
        wc_metrics_tally_add (&metric->tally, metric->bounds, metric->nbounds, value);
}

void
wc_metric_set_tally (wc_metric_t *metric, const wc_metrics_tally_t *tally)
{
    if (metric)
        metric->tally = *tally;
}

/* --- rendering ------------------------------------------------------------ */

/*  value as the text format writes it: the shortest of %.15g and %.17g
    that reads back exactly; NaN and the infinities by name. */
static void
s_number (char *text, size_t size, double value)
{
    if (isnan (value))
        snprintf (text, size, "NaN");
    else
    if (isinf (value))
        snprintf (text, size, value > 0 ? "+Inf" : "-Inf");
    else {
        snprintf (text, size, "%.15g", value);
        if (strtod (text, NULL) != value)
            snprintf (text, size, "%.17g", value);
    }
}

/*  text with \ and newline escaped (and " too, in a label value). */
static void
s_escaped (FILE *out, const char *text, bool quote)
{
    for (const char *c = text; *c; c++) {
        if (*c == '\\')
            fputs ("\\\\", out);
        else
        if (*c == '\n')
            fputs ("\\n", out);
        else
        if (*c == '"' && quote)
            fputs ("\\\"", out);
        else
            fputc (*c, out);
    }
}

/*  One sample line: name suffix {labels, and le when given} value. */
static void
s_sample (FILE *out, const s_family_t *family, const wc_metric_t *series,
          const char *suffix, const char *le, double value)
{
    fprintf (out, "%s%s", family->name, suffix);
    if (family->nlabels > 0 || le) {
        fputc ('{', out);
        for (size_t i = 0; i < family->nlabels; i++) {
            fprintf (out, "%s%s=\"", i ? "," : "", family->labels [i]);
            s_escaped (out, series->values [i], true);
            fputc ('"', out);
        }
        if (le)
            fprintf (out, "%sle=\"%s\"", family->nlabels ? "," : "", le);
        fputc ('}', out);
    }
    char number [40];
    s_number (number, sizeof number, value);
    fprintf (out, " %s\n", number);
}

/*  A histogram series: cumulative buckets, +Inf, sum, count. */
static void
s_histogram (FILE *out, const s_family_t *family, const wc_metric_t *series)
{
    uint64_t cumulative = 0;
    char le [40];
    for (size_t b = 0; b < family->nbounds; b++) {
        cumulative += series->tally.counts [b];
        s_number (le, sizeof le, family->bounds [b]);
        s_sample (out, family, series, "_bucket", le, (double) cumulative);
    }
    cumulative += series->tally.counts [family->nbounds];
    s_sample (out, family, series, "_bucket", "+Inf", (double) cumulative);
    s_sample (out, family, series, "_sum", NULL, series->tally.sum);
    s_sample (out, family, series, "_count", NULL, (double) cumulative);
}

int
wc_metrics_render (const wc_metrics_t *self, char **text, size_t *len)
{
    static const char *const types [] = { "counter", "gauge", "histogram" };
    *text = NULL;
    *len = 0;
    FILE *out = open_memstream (text, len);
    if (!out)
        return WALCAST_ENOMEM;
    for (size_t f = 0; f < self->nfamilies; f++) {
        const s_family_t *family = &self->families [f];
        fprintf (out, "# HELP %s ", family->name);
        s_escaped (out, family->help, false);
        fprintf (out, "\n# TYPE %s %s\n", family->name, types [family->type]);
        for (size_t i = 0; i < family->nseries; i++)
            if (family->type == WC_METRIC_HISTOGRAM)
                s_histogram (out, family, family->series [i]);
            else
                s_sample (out, family, family->series [i], "", NULL,
                          family->series [i]->value);
    }
    bool failed = ferror (out) != 0;
    if (fclose (out) != 0 || failed) {
        free (*text);
        *text = NULL;
        *len = 0;
        return WALCAST_ENOMEM;
    }
    return 0;
}
