/*  load.c - `walcast load` (see load.h).

    Each line becomes one async write tagged with its line number; the
    library hands every write's outcome back in submission order
    (walcast_set_outcome_fn), and this file turns outcomes into the
    command's output. Two ideas make "resubmit exactly the reported
    lines" safe:

    - Per key, lines are written one after the other's outcome: a line
      whose key has a write in flight waits for it (a flush, which only
      a load that repeats keys within the window pays for), and a line
      whose key already failed is not sent at all but reported with the
      others ("failed KEY: not sent: ..."). So for every key the
      reported lines are its last ones, in order, and sending them again
      ends with the value of the key's last line; a put applied twice
      leaves what it leaves once, which covers the unknown ones.
    - After an error that stops the load (no primary, the window stayed
      full for the whole timeout twice with no answer between), the
      remaining lines are still read and each is reported as failed
      ("not sent"), so the report stays complete: every line either
      landed or is listed. A window that went unanswered once costs its
      writes (unknown), and the load goes on (s_go_on).

    The key table holds the keys with a write in flight and the keys
    that failed: bounded by the window plus the lines reported.

    With acks (load --acks N), a line the primary wrote but the replicas
    did not confirm in time is reported as unknown, its message saying
    so: it is durable on the primary only, and resubmitting it is safe.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include "clock.h"
#include "load.h"

#define S_EXIT_OK        0
#define S_EXIT_ERROR     3

/*  A key with a write in flight, or whose write failed. */
typedef struct s_key {
    struct s_key *next;         /* hash chain */
    uint32_t      inflight;     /* its writes waiting for an outcome */
    uint64_t      failed_line;  /* line of its write that did not land, 0 none */
    size_t        len;
    char          key [];
} s_key_t;

/*  A write sent and not yet accounted for, in submission order. */
typedef struct {
    uint64_t  line;
    s_key_t  *key;
} s_pending_t;

typedef struct {
    walcast_t   *client;
    s_key_t    **buckets;
    size_t       nbuckets, nkeys;
    s_pending_t *pending;       /* ring, in submission order */
    size_t       pend_head, pend_len, pend_cap;
    uint64_t     sent, acked, last_seq;
    uint64_t     failed, unknown, bad;
    uint64_t     too_big;           /* of failed: over a limit, fails again */
    int          stop_err;      /* why nothing more is sent, 0 while sending */
    char         stop_why [1200];
    bool         timed_out;     /* a window went unanswered (see s_go_on) */
    uint64_t     acked_then;    /* acked when the last one did */
} s_load_t;

/* --- the key table ------------------------------------------------------- */

static uint64_t
s_hash (const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ull;          // FNV-1a
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t) key [i]) * 1099511628211ull;
    return h;
}

static s_key_t *
s_key_find (s_load_t *self, const char *key, size_t len)
{
    if (self->nbuckets == 0)
        return NULL;
    s_key_t *k = self->buckets [s_hash (key, len) & (self->nbuckets - 1)];
    while (k && (k->len != len || memcmp (k->key, key, len) != 0))
        k = k->next;
    return k;
}

//  Double the buckets (or make the first 1024).
static int
s_key_grow (s_load_t *self)
{
    size_t n = self->nbuckets ? self->nbuckets * 2 : 1024;
    s_key_t **buckets = calloc (n, sizeof *buckets);
    if (!buckets)
        return -1;
    for (size_t b = 0; b < self->nbuckets; b++)
        while (self->buckets [b]) {
            s_key_t *k = self->buckets [b];
            self->buckets [b] = k->next;
            size_t slot = s_hash (k->key, k->len) & (n - 1);
            k->next = buckets [slot];
            buckets [slot] = k;
        }
    free (self->buckets);
    self->buckets = buckets;
    self->nbuckets = n;
    return 0;
}

//  The entry of key, created when missing; NULL when out of memory.
static s_key_t *
s_key_get (s_load_t *self, const char *key, size_t len)
{
    s_key_t *k = s_key_find (self, key, len);
    if (k)
        return k;
    if (self->nkeys >= self->nbuckets && s_key_grow (self))
        return NULL;
    k = calloc (1, sizeof *k + len);
    if (!k)
        return NULL;
    memcpy (k->key, key, len);
    k->len = len;
    size_t slot = s_hash (key, len) & (self->nbuckets - 1);
    k->next = self->buckets [slot];
    self->buckets [slot] = k;
    self->nkeys++;
    return k;
}

//  Forget a key that has nothing in flight and did not fail.
static void
s_key_drop (s_load_t *self, s_key_t *k)
{
    if (k->inflight > 0 || k->failed_line > 0)
        return;
    s_key_t **at = &self->buckets [s_hash (k->key, k->len) & (self->nbuckets - 1)];
    while (*at != k)
        at = &(*at)->next;
    *at = k->next;
    free (k);
    self->nkeys--;
}

static void
s_keys_free (s_load_t *self)
{
    for (size_t b = 0; b < self->nbuckets; b++)
        while (self->buckets [b]) {
            s_key_t *k = self->buckets [b];
            self->buckets [b] = k->next;
            free (k);
        }
    free (self->buckets);
}

/* --- reports ------------------------------------------------------------- */

//  "failed KEY: MESSAGE" or "unknown KEY: MESSAGE" on stderr.
static void
s_report (const char *what, const char *key, size_t len, const char *message)
{
    fprintf (stderr, "%s %.*s: %s\n", what, (int) len, key, message);
}

//  The MESSAGE of an outcome: what the error means, and its detail (an
//  unknown outcome's detail says it all: where it went, what happened).
static void
s_outcome_message (const walcast_outcome_t *o, char *buf, size_t size)
{
    if (o->state == WALCAST_WRITE_UNKNOWN && o->detail [0]
    &&  (o->err == WALCAST_ETIMEOUT || o->err == WALCAST_EUNAVAILABLE))
        snprintf (buf, size, "%s", o->detail);
    else
    if (o->err == WALCAST_ENOTPRIMARY && o->detail [0])
        snprintf (buf, size, "%s (primary is %s)", walcast_strerror (o->err), o->detail);
    else
    if (o->err == WALCAST_EPERM)
        snprintf (buf, size, "%s (%s)%s%s", walcast_strerror (o->err),
                  walcast_errname (o->err), o->detail [0] ? ": " : "", o->detail);
    else
    if (o->detail [0] && (strstr (o->detail, walcast_strerror (o->err))
                          || strncmp (o->detail, "not sent", 8) == 0))
        snprintf (buf, size, "%s", o->detail);      /* it says it all */
    else
    if (o->detail [0])
        snprintf (buf, size, "%s: %s", walcast_strerror (o->err), o->detail);
    else
        snprintf (buf, size, "%s", walcast_strerror (o->err));
}

//  The library hands over one write's outcome (in submission order: the
//  head of pending).
static void
s_on_outcome (void *arg, const walcast_outcome_t *o)
{
    s_load_t *self = (s_load_t *) arg;
    if (self->pend_len == 0)
        return;             // cannot happen: one outcome per write sent
    s_pending_t p = self->pending [self->pend_head];
    self->pend_head = (self->pend_head + 1) % self->pend_cap;
    self->pend_len--;
    p.key->inflight--;
    if (o->state == WALCAST_WRITE_OK) {
        self->acked++;
        if (o->pos.seq > self->last_seq)
            self->last_seq = o->pos.seq;
    }
    else {
        //  Not confirmed replicated is "unknown" to a loader: it is in
        //  the primary's log, and may not survive a failover
        char message [2400];
        s_outcome_message (o, message, sizeof message);
        bool unknown = o->state == WALCAST_WRITE_UNKNOWN
                    || o->state == WALCAST_WRITE_NOTREPLICATED;
        s_report (unknown ? "unknown" : "failed", p.key->key, p.key->len, message);
        if (unknown)
            self->unknown++;
        else
            self->failed++;
        if (o->err == WALCAST_ETOOBIG)
            self->too_big++;
        if (p.key->failed_line == 0)
            p.key->failed_line = p.line;
        //  A key without the role to write: every later line would be
        //  refused the same, so none is sent
        if (o->err == WALCAST_EPERM && !self->stop_err) {
            self->stop_err = o->err;
            snprintf (self->stop_why, sizeof self->stop_why, "not sent: %.1100s",
                      message);
        }
    }
    s_key_drop (self, p.key);
}

/* --- sending ------------------------------------------------------------- */

//  Make room for one more write in pending (before it is sent: once
//  sent, its outcome must find its line). 0 or -1.
static int
s_pending_reserve (s_load_t *self)
{
    if (self->pend_len == self->pend_cap) {
        size_t cap = self->pend_cap ? self->pend_cap * 2 : 1024;
        s_pending_t *ring = malloc (cap * sizeof *ring);
        if (!ring)
            return -1;
        for (size_t i = 0; i < self->pend_len; i++)
            ring [i] = self->pending [(self->pend_head + i) % self->pend_cap];
        free (self->pending);
        self->pending = ring;
        self->pend_cap = cap;
        self->pend_head = 0;
    }
    return 0;
}

//  Stop sending: from now on every line is reported as not sent, with
//  the cause and the remedy in one message.
static void
s_stop (s_load_t *self, int err)
{
    const char *detail = walcast_last_detail (self->client);
    self->stop_err = err;
    snprintf (self->stop_why, sizeof self->stop_why, "not sent: %s%s%s",
              walcast_strerror (err), *detail ? ": " : "", detail);
}

//  A window of writes went unanswered for the whole timeout (they are
//  unknown now, and the window empty): go on with the load when the node
//  answered something since the last time this happened, or never did
//  before, so a primary that restarted (a SIGKILL, systemd's restart a
//  second later) costs the writes it lost, not the rest of the input;
//  stop when it did not (a node that hangs: one more window, not one per
//  window of the input).
static bool
s_go_on (s_load_t *self)
{
    bool answered = !self->timed_out || self->acked > self->acked_then;
    self->timed_out = true;
    self->acked_then = self->acked;
    return answered;
}

//  Send line `line` (key, value), or say why not.
static void
s_send (s_load_t *self, uint64_t line, const char *key, size_t key_len,
        const char *value, size_t value_len)
{
    s_key_t *k = self->stop_err ? NULL : s_key_get (self, key, key_len);
    if (k && k->inflight > 0) {
        //  The key's previous write first (see the top); its entry may
        //  go with its outcome
        walcast_flush (self->client, NULL, NULL);
        k = s_key_get (self, key, key_len);
    }
    if (!self->stop_err && (!k || s_pending_reserve (self))) {
        self->stop_err = WALCAST_ENOMEM;
        snprintf (self->stop_why, sizeof self->stop_why, "not sent: out of memory");
    }
    if (self->stop_err || k->failed_line) {
        char why [64];
        if (!self->stop_err)
            snprintf (why, sizeof why, "not sent: line %" PRIu64 " of this key did "
                      "not land", k->failed_line);
        s_report ("failed", key, key_len, self->stop_err ? self->stop_why : why);
        self->failed++;
        return;
    }
    int rc = walcast_put_async (self->client, key, key_len, value, value_len, line);
    if (rc == WALCAST_ETIMEOUT && s_go_on (self))
        rc = walcast_put_async (self->client, key, key_len, value, value_len, line);
    if (rc == 0) {
        self->pending [(self->pend_head + self->pend_len) % self->pend_cap] =
            (s_pending_t) { line, k };
        self->pend_len++;
        k->inflight++;
        self->sent++;
        return;
    }
    if (rc == WALCAST_EINVAL || rc == WALCAST_ETOOBIG) {
        s_report ("failed", key, key_len, walcast_strerror (rc));
        self->too_big++;
    }
    else {
        s_stop (self, rc);
        s_report ("failed", key, key_len, self->stop_why);
    }
    k->failed_line = line;
    self->failed++;
}

/* --- the command --------------------------------------------------------- */

//  Progress once a second on stderr.
static void
s_progress (s_load_t *self, int64_t *at, uint64_t *at_sent)
{
    int64_t now = wc_clock_ms ();
    if (now - *at < 1000)
        return;
    //  Sent is not landed: a primary that takes nothing (stopped, cut off)
    //  must not look like one that does
    fprintf (stderr, "load: %" PRIu64 " writes sent, %" PRIu64 " landed, %" PRIu64
             " failed, %" PRIu64 " unknown, %.0f/s sent\n", self->sent, self->acked,
             self->failed, self->unknown,
             (double) (self->sent - *at_sent) * 1000.0 / (double) (now - *at));
    *at = now;
    *at_sent = self->sent;
}

//  Read and send every line of in. Returns 0, or errno of a read error.
static int
s_read_lines (s_load_t *self, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0, at_sent = 0;
    int64_t at = wc_clock_ms ();
    while ((n = getline (&line, &cap, in)) >= 0) {
        lineno++;
        size_t len = (size_t) n;
        if (len > 0 && line [len - 1] == '\n')
            len--;
        if (len == 0)
            continue;
        char *space = memchr (line, ' ', len);
        if (!space || space == line) {
            fprintf (stderr, "walcast: load: line %" PRIu64 ": expected KEY VALUE\n",
                     lineno);
            self->bad++;
            continue;
        }
        size_t key_len = (size_t) (space - line);
        s_send (self, lineno, line, key_len, space + 1, len - key_len - 1);
        s_progress (self, &at, &at_sent);
    }
    int err = ferror (in) ? errno : 0;
    free (line);
    return err;
}

int
wc_load_run (walcast_t *client, FILE *in)
{
    s_load_t self;
    memset (&self, 0, sizeof self);
    self.client = client;
    walcast_set_outcome_fn (client, s_on_outcome, &self);
    int64_t start = wc_clock_ms ();
    int read_err = s_read_lines (&self, in);
    walcast_flush (client, NULL, NULL);         // the rest of the outcomes
    walcast_set_outcome_fn (client, NULL, NULL);

    double secs = (double) (wc_clock_ms () - start) / 1000.0;
    printf ("%" PRIu64 " %" PRIu64 "\n", self.acked, self.last_seq);
    fprintf (stderr, "load: %" PRIu64 " writes in %.1f s (%.0f/s)\n", self.acked,
             secs, (double) self.acked / (secs > 0.001 ? secs : 0.001));
    int exit_code = S_EXIT_OK;
    if (self.failed || self.unknown) {
        fprintf (stderr, "walcast: load: %" PRIu64 " line%s failed and %" PRIu64
                 " %s unknown (listed above); ", self.failed, self.failed == 1 ? "" : "s",
                 self.unknown, self.unknown == 1 ? "is" : "are");
        if (self.too_big)
            fprintf (stderr, "%" PRIu64 " of them %s over a limit (keys 1..1024 "
                     "bytes, values at most 1 MiB) and fail%s again until %s fixed; "
                     "resubmitting exactly the reported lines, in their order, is "
                     "safe once %s\n", self.too_big, self.too_big == 1 ? "is" : "are",
                     self.too_big == 1 ? "s" : "", self.too_big == 1 ? "it is" : "they are",
                     self.too_big == 1 ? "it is" : "they are");
        else
            fprintf (stderr, "resubmitting exactly those lines, in their order, is "
                     "safe\n");
        exit_code = S_EXIT_ERROR;
    }
    if (read_err) {
        fprintf (stderr, "walcast: load: reading stdin: %s; the lines after the "
                 "last one reported were not read\n", strerror (read_err));
        exit_code = S_EXIT_ERROR;
    }
    if (self.bad) {
        fprintf (stderr, "walcast: load: %" PRIu64 " malformed line%s skipped "
                 "(a line is KEY, a space, then the value)\n", self.bad,
                 self.bad == 1 ? "" : "s");
        exit_code = S_EXIT_ERROR;
    }
    s_keys_free (&self);
    free (self.pending);
    return exit_code;
}
