/*  json_value.h - a strict JSON parser for tests that read the broker's
    /api/topology.

    jv_parse refuses anything RFC 8259 refuses (a missing comma, a raw
    control byte in a string, a bad escape, trailing bytes), so a test
    that parses a document also checks that the broker wrote valid JSON.
    Strings are decoded (\uXXXX to UTF-8), so a test compares them with
    the bytes a node sent.
*/
#ifndef JSON_VALUE_H_INCLUDED
#define JSON_VALUE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef enum { JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_ARRAY, JV_OBJECT } jv_type_t;

typedef struct jv jv_t;
struct jv {
    jv_type_t type;
    bool      boolean;
    double    number;
    char     *string;         /* decoded, NUL-terminated (no NUL inside: refused) */
    char     *key;            /* its key, when a member of an object */
    jv_t    **items;          /* array items or object members */
    size_t    count;
};

/*  Parse text[0..len); NULL (with the reason and offset on stderr) when
    it is not one whole JSON value. */
jv_t *jv_parse (const char *text, size_t len);

/*  Free a parsed value; *self_p becomes NULL. */
void jv_free (jv_t **self_p);

/*  Member key of an object (NULL when absent or not an object). */
jv_t *jv_get (const jv_t *self, const char *key);

/*  The string of member key, or NULL when absent or not a string. */
const char *jv_get_str (const jv_t *self, const char *key);

/*  The number of member key, or -1 when absent or not a number. */
double jv_get_num (const jv_t *self, const char *key);

#endif
