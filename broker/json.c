/*  json.c - a JSON writer (see json.h).

    Every write goes through s_put, which grows the buffer by doubling and
    keeps it NUL-terminated; once an allocation failed, nothing more is
    written. s_item puts the comma a value or a key needs.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

void
wc_json_init (wc_json_t *self)
{
    memset (self, 0, sizeof *self);
}

void
wc_json_fini (wc_json_t *self)
{
    free (self->data);
    wc_json_init (self);
}

void
wc_json_reset (wc_json_t *self)
{
    self->size = 0;
    if (self->data)
        self->data [0] = '\0';
    self->comma = false;
    self->failed = false;
}

bool
wc_json_failed (const wc_json_t *self)
{
    return self->failed;
}

/*  Append len bytes of text. */
static void
s_put (wc_json_t *self, const char *text, size_t len)
{
    if (self->failed)
        return;
    if (self->size + len + 1 > self->cap) {
        size_t cap = self->cap ? self->cap : 4096;
        while (cap < self->size + len + 1)
            cap *= 2;
        char *data = (char *) realloc (self->data, cap);
        if (!data) {
            self->failed = true;
            return;
        }
        self->data = data;
        self->cap = cap;
    }
    memcpy (self->data + self->size, text, len);
    self->size += len;
    self->data [self->size] = '\0';
}

/*  Before a key or a value: the comma that separates it from the last. */
static void
s_item (wc_json_t *self)
{
    if (self->comma)
        s_put (self, ",", 1);
    self->comma = false;
}

void
wc_json_object (wc_json_t *self)
{
    s_item (self);
    s_put (self, "{", 1);
}

void
wc_json_object_end (wc_json_t *self)
{
    s_put (self, "}", 1);
    self->comma = true;
}

void
wc_json_array (wc_json_t *self)
{
    s_item (self);
    s_put (self, "[", 1);
}

void
wc_json_array_end (wc_json_t *self)
{
    s_put (self, "]", 1);
    self->comma = true;
}

/*  The string in quotes, escaped (json.h says how), without the comma
    logic: keys and values share it. */
static void
s_quoted (wc_json_t *self, const uint8_t *bytes, size_t len)
{
    s_put (self, "\"", 1);
    size_t run = 0;                     /* bytes that need no escape, pending */
    for (size_t i = 0; i < len; i++) {
        uint8_t c = bytes [i];
        bool plain = c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'
                  && c != '<' && c != '>' && c != '&';
        if (plain) {
            run++;
            continue;
        }
        s_put (self, (const char *) bytes + i - run, run);
        run = 0;
        char escape [8];
        if (c == '"' || c == '\\')
            snprintf (escape, sizeof escape, "\\%c", c);
        else
            snprintf (escape, sizeof escape, "\\u%04x", c);
        s_put (self, escape, strlen (escape));
    }
    s_put (self, (const char *) bytes + len - run, run);
    s_put (self, "\"", 1);
}

void
wc_json_key (wc_json_t *self, const char *key)
{
    s_item (self);
    s_quoted (self, (const uint8_t *) key, strlen (key));
    s_put (self, ":", 1);
}

void
wc_json_str (wc_json_t *self, const void *bytes, size_t len)
{
    s_item (self);
    s_quoted (self, (const uint8_t *) bytes, len);
    self->comma = true;
}

void
wc_json_cstr (wc_json_t *self, const char *text)
{
    wc_json_str (self, text, strlen (text));
}

void
wc_json_u64 (wc_json_t *self, uint64_t value)
{
    char text [24];
    s_item (self);
    s_put (self, text, (size_t) snprintf (text, sizeof text, "%" PRIu64, value));
    self->comma = true;
}

void
wc_json_i64 (wc_json_t *self, int64_t value)
{
    char text [24];
    s_item (self);
    s_put (self, text, (size_t) snprintf (text, sizeof text, "%" PRId64, value));
    self->comma = true;
}

void
wc_json_bool (wc_json_t *self, bool value)
{
    s_item (self);
    s_put (self, value ? "true" : "false", value ? 4 : 5);
    self->comma = true;
}

void
wc_json_null (wc_json_t *self)
{
    s_item (self);
    s_put (self, "null", 4);
    self->comma = true;
}
