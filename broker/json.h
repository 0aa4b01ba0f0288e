/*  json.h - a JSON writer for the broker's status page.

    Appends to a growing buffer. The caller says what it writes (an
    object, a key, a value, the end) and the writer puts the commas in:
    after a value, the next key or value of the same container gets one.
    Strings are escaped so that any bytes at all make valid JSON in plain
    ASCII: '"' and '\\' get a backslash, control bytes, DEL, every byte
    past 0x7E and '<', '>', '&' (so a document can sit in a page's HTML)
    become \u00XX (bytes past 0x7E are read as Latin-1). Node ids and
    regions come from the network: this is the one place they are made
    safe for a browser.

    A failed allocation is remembered: later writes do nothing and
    wc_json_failed says so, so a caller checks once, at the end.
*/
#ifndef WC_JSON_H_INCLUDED
#define WC_JSON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char  *data;        /* NUL-terminated text so far (NULL until the first write) */
    size_t size;        /* its length */
    size_t cap;         /* bytes allocated */
    bool   comma;       /* a value was just written: the next item needs a comma */
    bool   failed;      /* an allocation failed; the text is incomplete */
} wc_json_t;

/*  An empty writer (no allocation yet). */
void wc_json_init (wc_json_t *self);

/*  Free its memory. */
void wc_json_fini (wc_json_t *self);

/*  Empty the text, keeping the memory. */
void wc_json_reset (wc_json_t *self);

/*  True when an allocation failed since the last reset. */
bool wc_json_failed (const wc_json_t *self);

/*  '{', '}', '[', ']'. */
void wc_json_object (wc_json_t *self);
void wc_json_object_end (wc_json_t *self);
void wc_json_array (wc_json_t *self);
void wc_json_array_end (wc_json_t *self);

/*  "key": (key is trusted text, escaped all the same). */
void wc_json_key (wc_json_t *self, const char *key);

/*  Values: a string of len bytes, a NUL-terminated one, a number, a
    boolean, null. */
void wc_json_str (wc_json_t *self, const void *bytes, size_t len);
void wc_json_cstr (wc_json_t *self, const char *text);
void wc_json_u64 (wc_json_t *self, uint64_t value);
void wc_json_i64 (wc_json_t *self, int64_t value);
void wc_json_bool (wc_json_t *self, bool value);
void wc_json_null (wc_json_t *self);

#endif
