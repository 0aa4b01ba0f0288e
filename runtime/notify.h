/*  notify.h - tell systemd a service is ready, reloading or stopping.

    A unit with Type=notify waits for the service to say READY=1 before
    it counts it as started (and starts what depends on it). The protocol
    is one datagram of "KEY=VALUE" lines sent to the AF_UNIX socket that
    $NOTIFY_SOCKET names (sd_notify(3); a name starting with '@' is in the
    abstract namespace). It is small and stable enough to speak here
    instead of linking libsystemd. Without $NOTIFY_SOCKET it does nothing,
    so a node run by hand or by the tests behaves as before.
*/
#ifndef WC_NOTIFY_H_INCLUDED
#define WC_NOTIFY_H_INCLUDED

/*  Send state ("READY=1", "STOPPING=1", "STATUS=...") to systemd. 0 when
    sent or when not run under systemd; -1 when $NOTIFY_SOCKET is set but
    the message could not be sent (errno says why; logged as a warning). */
int wc_notify (const char *state);

#endif
