/*  signals.c - SIGTERM and SIGINT ask a server's loop to stop (see
    signals.h). */
#include <signal.h>
#include <string.h>
#include "signals.h"

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

void
wc_signals_catch (void)
{
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
}

void
wc_signals_stop (void)
{
    s_stop = 1;
}

bool
wc_signals_stopping (void)
{
    return s_stop != 0;
}
