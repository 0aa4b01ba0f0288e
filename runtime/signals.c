/*  signals.c - SIGTERM and SIGINT ask a server's loop to stop, SIGHUP to
    reload (see signals.h). */
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include "signals.h"

static volatile sig_atomic_t s_stop = 0;
static volatile sig_atomic_t s_hup = 0;
static wc_signals_hup_fn *s_hup_fn = NULL;
static void *s_hup_arg = NULL;

static void
s_on_signal (int sig)
{
    if (sig == SIGHUP)
        s_hup = 1;
    else
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
    sigaction (SIGHUP, &sa, NULL);
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

void
wc_signals_on_hup (wc_signals_hup_fn *fn, void *arg)
{
    s_hup_fn = fn;
    s_hup_arg = arg;
}

bool
wc_signals_poll_hup (void)
{
    if (!s_hup)
        return false;
    s_hup = 0;
    if (s_hup_fn)
        s_hup_fn (s_hup_arg);
    return true;
}
