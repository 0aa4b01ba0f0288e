/*  json_value.c - a strict JSON parser for tests (see json_value.h).

    Recursive descent over the grammar of RFC 8259, depth limited. The
    text must be NUL-terminated after len (an HTTP body read by the test
    is).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json_value.h"

typedef struct {
    const char *text;
    size_t      len;
    size_t      at;
    const char *error;
} s_parser_t;

static jv_t *s_value (s_parser_t *p, int depth);

static void
s_space (s_parser_t *p)
{
    while (p->at < p->len && p->text [p->at] && strchr (" \t\r\n", p->text [p->at]))
        p->at++;
}

static bool
s_eat (s_parser_t *p, char c)
{
    s_space (p);
    if (p->at < p->len && p->text [p->at] == c) {
        p->at++;
        return true;
    }
    return false;
}

static jv_t *
s_fail (s_parser_t *p, jv_t *partial, const char *why)
{
    if (!p->error)
        p->error = why;
    jv_free (&partial);
    return NULL;
}

/*  Append one code point as UTF-8. */
static size_t
s_utf8 (char *out, unsigned cp)
{
    if (cp < 0x80) { out [0] = (char) cp; return 1; }
    if (cp < 0x800) {
        out [0] = (char) (0xc0 | (cp >> 6));
        out [1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    out [0] = (char) (0xe0 | (cp >> 12));
    out [1] = (char) (0x80 | ((cp >> 6) & 0x3f));
    out [2] = (char) (0x80 | (cp & 0x3f));
    return 3;
}

/*  A string after its opening quote, decoded; NULL when malformed. */
static char *
s_string (s_parser_t *p)
{
    char *out = (char *) malloc (p->len - p->at + 1), *end = out;
    while (p->at < p->len) {
        unsigned char c = (unsigned char) p->text [p->at++];
        if (c == '"') {
            *end = '\0';
            return out;
        }
        if (c < 0x20)
            break;                              /* raw control byte */
        if (c != '\\') {
            *end++ = (char) c;
            continue;
        }
        if (p->at >= p->len)
            break;
        char e = p->text [p->at++];
        const char *simple = strchr ("\"\\/bfnrt", e);
        if (e && simple) {
            *end++ = "\"\\/\b\f\n\r\t" [simple - "\"\\/bfnrt"];
            continue;
        }
        unsigned cp = 0;
        int digits = 0;
        for (; e == 'u' && digits < 4 && p->at < p->len; digits++, p->at++) {
            const char *hex = "0123456789abcdef";
            char d = p->text [p->at];
            const char *at = d ? strchr (hex, d >= 'A' && d <= 'F' ? d | 0x20 : d) : NULL;
            if (!at)
                break;
            cp = cp * 16 + (unsigned) (at - hex);
        }
        if (digits != 4 || cp == 0)
            break;
        end += s_utf8 (end, cp);
    }
    free (out);
    p->error = "bad string";
    return NULL;
}

/*  Items of an array or members of an object, after the opening bracket. */
static jv_t *
s_container (s_parser_t *p, jv_t *v, char close, int depth)
{
    if (s_eat (p, close))
        return v;
    do {
        char *key = NULL;
        if (v->type == JV_OBJECT) {
            if (!s_eat (p, '"') || !(key = s_string (p)) || !s_eat (p, ':')) {
                free (key);
                return s_fail (p, v, "bad member");
            }
        }
        jv_t *item = s_value (p, depth + 1);
        if (!item) {
            free (key);
            return s_fail (p, v, "bad item");
        }
        item->key = key;
        v->items = (jv_t **) realloc (v->items, (v->count + 1) * sizeof (jv_t *));
        v->items [v->count++] = item;
    } while (s_eat (p, ','));
    return s_eat (p, close) ? v : s_fail (p, v, "missing , or close");
}

static jv_t *
s_value (s_parser_t *p, int depth)
{
    s_space (p);
    jv_t *v = (jv_t *) calloc (1, sizeof *v);
    if (depth > 32 || p->at >= p->len)
        return s_fail (p, v, "too deep or truncated");
    const char *rest = p->text + p->at;
    size_t left = p->len - p->at;
    char c = *rest;
    if (c == '{' || c == '[') {
        p->at++;
        v->type = c == '{' ? JV_OBJECT : JV_ARRAY;
        return s_container (p, v, c == '{' ? '}' : ']', depth);
    }
    if (c == '"') {
        p->at++;
        v->type = JV_STRING;
        v->string = s_string (p);
        return v->string ? v : s_fail (p, v, "bad string");
    }
    const char *words [] = { "null", "true", "false" };
    for (int i = 0; i < 3; i++)
        if (left >= strlen (words [i]) && memcmp (rest, words [i], strlen (words [i])) == 0) {
            p->at += strlen (words [i]);
            v->type = i == 0 ? JV_NULL : JV_BOOL;
            v->boolean = i == 1;
            return v;
        }
    size_t n = strspn (rest, "-0123456789.eE+");
    if (n == 0 || n > 40 || n > left)
        return s_fail (p, v, "unexpected character");
    char number [48];
    memcpy (number, rest, n);
    number [n] = '\0';
    char *end = NULL;
    v->type = JV_NUMBER;
    v->number = strtod (number, &end);
    p->at += n;
    return *end == '\0' ? v : s_fail (p, v, "bad number");
}

jv_t *
jv_parse (const char *text, size_t len)
{
    s_parser_t p = { text, len, 0, NULL };
    jv_t *v = s_value (&p, 0);
    s_space (&p);
    if (v && p.at != len)
        v = s_fail (&p, v, "trailing bytes");
    if (!v)
        fprintf (stderr, "json: %s at offset %zu of %zu\n", p.error, p.at, len);
    return v;
}

void
jv_free (jv_t **self_p)
{
    jv_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        jv_free (&self->items [i]);
    free (self->items);
    free (self->string);
    free (self->key);
    free (self);
    *self_p = NULL;
}

jv_t *
jv_get (const jv_t *self, const char *key)
{
    if (!self || self->type != JV_OBJECT)
        return NULL;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->items [i]->key, key) == 0)
            return self->items [i];
    return NULL;
}

const char *
jv_get_str (const jv_t *self, const char *key)
{
    jv_t *v = jv_get (self, key);
    return v && v->type == JV_STRING ? v->string : NULL;
}

double
jv_get_num (const jv_t *self, const char *key)
{
    jv_t *v = jv_get (self, key);
    return v && v->type == JV_NUMBER ? v->number : -1;
}
