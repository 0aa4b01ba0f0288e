/*  signals.h - SIGTERM and SIGINT ask a server's loop to stop; SIGHUP
    asks it to reload its configuration.

    A node or a broker calls wc_signals_catch once before its loop,
    checks wc_signals_stopping at every turn and calls wc_signals_poll_hup
    there too. The handlers only set flags, so a signal never interrupts
    work half done: the reload function the program registered
    (wc_signals_on_hup) runs from the loop, between two turns. Code that
    decides to stop by itself (a failed fsync) calls wc_signals_stop.
*/
#ifndef WC_SIGNALS_H_INCLUDED
#define WC_SIGNALS_H_INCLUDED

#include <stdbool.h>

/*  What SIGHUP runs, from the loop. */
typedef void (wc_signals_hup_fn) (void *arg);

/*  Install the handlers for SIGTERM, SIGINT and SIGHUP. */
void wc_signals_catch (void);

/*  Ask the loop to stop, as a signal does (async-signal-safe). */
void wc_signals_stop (void);

/*  True once a stop was asked for. */
bool wc_signals_stopping (void);

/*  Run fn (arg) for SIGHUP from now on (NULL: SIGHUP does nothing). */
void wc_signals_on_hup (wc_signals_hup_fn *fn, void *arg);

/*  Called by the loop at every turn: when SIGHUP came since the last
    call (once, however many came), run the function of wc_signals_on_hup
    and return true (the loop then re-reads the trust folder at once). */
bool wc_signals_poll_hup (void);

#endif
