/*  signals.h - SIGTERM and SIGINT ask a server's loop to stop.

    A node or a broker calls wc_signals_catch once before its loop and
    checks wc_signals_stopping at every turn; the handler only sets a
    flag, so a signal never interrupts work half done. Code that decides
    to stop by itself (a failed fsync) calls wc_signals_stop.
*/
#ifndef WC_SIGNALS_H_INCLUDED
#define WC_SIGNALS_H_INCLUDED

#include <stdbool.h>

/*  Install the handlers for SIGTERM and SIGINT. */
void wc_signals_catch (void);

/*  Ask the loop to stop, as a signal does (async-signal-safe). */
void wc_signals_stop (void);

/*  True once a stop was asked for. */
bool wc_signals_stopping (void);

#endif
