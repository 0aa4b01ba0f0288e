/*  errors.h - walcast error codes on the wire.

    The codes themselves are public (WALCAST_E* in include/walcast.h) and
    one table in errors.c gives each a name and a message. On the wire an
    ERROR message carries the code negated, as a positive integer.
*/
#ifndef WC_ERRORS_H_INCLUDED
#define WC_ERRORS_H_INCLUDED

#include <stdint.h>
#include "walcast.h"

/*  Library code (negative) -> wire code (positive). */
uint32_t wc_err_to_wire (int err);

/*  Wire code -> library code; a code this build does not know maps to
    WALCAST_EPROTO. */
int wc_err_from_wire (uint64_t code);

#endif
