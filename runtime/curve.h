/*  curve.h - CURVE on a server's sockets, and who may do what (issue 9).

    A node or broker started with --curve-cert SECRET_CERT and
    --curve-trust DIR makes every socket it binds a CURVE server and every
    socket it connects a CURVE client. This module holds what that takes:

    - its own key pair (certs.h);
    - a ZAP handler (a thread of ours, not czmq's zauth, whose certificate
      store aborted the process on a key met twice or a folder it could
      not read) pointed at DIR: a connection whose public key is in no
      certificate directly in DIR or in one of its subfolders fails its
      handshake. It reads the folder again at a handshake when it
      changed, so a certificate added or removed takes effect for the
      next connection; what it cannot read it skips;
    - the roles: DIR has one subfolder per role, nodes/, writers/ and
      readers/ (protocol/roles.h). The handler hands the client's public key
      to libzmq as the connection's User-Id, which every message it sends
      carries, so the owner asks wc_curve_role for the role of the peer
      that sent a request and refuses what the role does not allow
      (protocol/roles.h). The map from key to role is read from the
      folders, and read again by wc_curve_refresh when they change; a key
      removed there has no role from then on, and wc_curve_refresh says so
      (the owner then rebuilds its PUB sockets, so the removed peer's
      subscriptions go with the old socket and it cannot subscribe again);
    - a thread that watches the bound sockets' handshake failures (libzmq
      socket monitors) and logs each refused connection with its address
      and the reason (a client without CURVE, a key not trusted), and
      counts them. A handshake whose connection closed or timed out before
      it completed (a client that gave up while this process was paused,
      a peer that restarted) is no refusal: those are counted apart and
      summed up, at most one line per socket every 10 s, in words that
      do not blame keys.

    One per process: the ZAP handler serves every socket of czmq's
    context (libzmq asks inproc://zeromq.zap.01 of the context).
*/
#ifndef WC_CURVE_H_INCLUDED
#define WC_CURVE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "certs.h"
#include "roles.h"

typedef struct wc_curve wc_curve_t;

/*  Load the secret certificate at cert_path and start the ZAP handler on
    trust_dir (which must exist; its role subfolders may be missing or
    empty). NULL on failure with the reason and remedy in why. */
wc_curve_t *wc_curve_new (const char *cert_path, const char *trust_dir, char *why,
                          size_t why_size);

/*  What a server's main does with --curve-cert and --curve-trust (either
    may be "" when not given): both: start CURVE (wc_curve_new) and turn it
    on for the process's sockets (sock.h), *self_p the handle; neither:
    warn once that the links are not encrypted, *self_p NULL; one alone:
    a usage error. 0, or -1 with the reason in why. */
int wc_curve_start (const char *cert_path, const char *trust_dir, wc_curve_t **self_p,
                    char *why, size_t why_size);

/*  Stop the ZAP handler and the monitor; *self_p becomes NULL. */
void wc_curve_destroy (wc_curve_t **self_p);

/*  Our keys. */
const wc_certs_keys_t *wc_curve_keys (const wc_curve_t *self);

/*  Make sock (before it binds) a CURVE server with ZAP authentication,
    and log the handshakes it refuses under name ("service"...). 0, or -1
    with errno set. */
int wc_curve_serve (wc_curve_t *self, zsock_t *sock, const char *name);

/*  The role of the peer that sent frame (any frame of its message), and
    its certificate's file name in *name (may be NULL): when its certificate
    is gone, its public key (Z85) and "(no certificate in the trust folder)";
    "?" when the message carries no key. The name stays valid until the next
    call. */
wc_peer_t wc_curve_role (wc_curve_t *self, zmq_msg_t *frame, const char **name);

/*  Read the role folders again when they changed since the last look
    (cheap when they did not: call it every second). Logs keys added,
    removed or moved. Returns true when a key lost its role or left (the
    owner should drop that peer's subscriptions). */
bool wc_curve_refresh (wc_curve_t *self);

/*  Trust the certificates under trust_dir from now on (SIGHUP, a new
    curve-trust): the ZAP handler looks there for the next handshakes, and the next
    wc_curve_refresh reads its roles. 0, or -1 with why (not a folder). */
int wc_curve_set_trust (wc_curve_t *self, const char *trust_dir, char *why,
                        size_t why_size);

/*  The trust folder. */
const char *wc_curve_trust (const wc_curve_t *self);

/*  wc_curve_refresh when due: every second, or at the next call after
    wc_curve_refresh_soon (SIGHUP). *due_ms gets the ms until the next
    look; returns what wc_curve_refresh returned (false when not due). */
bool wc_curve_tick (wc_curve_t *self, int64_t now_ms, int *due_ms);

/*  Make the next wc_curve_tick look at the trust folder. */
void wc_curve_refresh_soon (wc_curve_t *self);

/*  Connections refused at the handshake so far (any socket). */
uint64_t wc_curve_refused (wc_curve_t *self);

/*  Handshakes that failed so far because their connection closed or
    timed out before they completed (any socket): not refusals. */
uint64_t wc_curve_dropped (wc_curve_t *self);

#endif
