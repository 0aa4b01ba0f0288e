/*  feed.c - a change-feed consumer that survives restarts.

        feed (--node HOST:PORT | --broker HOST:PORT) PREFIX STATE_FILE

    Prints every change to keys under PREFIX ("SEQ put KEY VALUE" or
    "SEQ del KEY"), in seq order, and keeps in STATE_FILE the seq to go
    on from and the epoch of the change before it. Stop it (Ctrl-C),
    write to the cluster, start it again: it prints what changed
    meanwhile, nothing twice and nothing skipped; and when a failover
    rolled back changes it had printed, it says so (ECONFLICT, with the
    seq to watch again from) rather than go on. A first run (no
    STATE_FILE) starts from now.

    What it shows about walcast:
    - walcast_watch hands over every change once, in order, whatever the
      stream drops (it repairs losses over the node's catch-up channel);
    - its position is a seq of the one log, the same on every node, so a
      consumer saves it and passes it back (walcast_watch's position),
      with the epoch of the change before it (walcast_watch_epoch,
      walcast_watch_resume), which lets the watch check that no failover
      rolled back what the consumer has;
    - walcast_watch_stop is the way out of a watch from a signal handler.

    The state file is replaced atomically (written aside, then renamed)
    after each change is printed, and at the end with where the watch
    stopped: after a crash the consumer goes on from the last change it
    saved, and prints at most that one change again.
*/
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "walcast.h"

/*  The consumer: where it keeps its position. */
typedef struct {
    const char *state;          /* STATE_FILE */
    char        temp [4096];    /* STATE_FILE.tmp */
} s_feed_t;

/*  A position: the seq to go on from, the epoch of the change before. */
typedef struct {
    uint64_t next;
    uint64_t epoch;
} s_position_t;

static walcast_t *s_client;     /* for the signal handler */

static void
s_on_signal (int sig)
{
    (void) sig;
    walcast_watch_stop (s_client);
}

//  The position saved in path: "NEXT EPOCH" (a file of an older feed
//  holds NEXT alone: epoch 0, not checked); { 0, 0 } (from now) when
//  there is none.
static s_position_t
s_load_position (const char *path)
{
    s_position_t pos = { 0, 0 };
    FILE *file = fopen (path, "r");
    if (!file)
        return pos;
    unsigned long long next = 0, epoch = 0;
    int got = fscanf (file, "%llu %llu", &next, &epoch);
    fclose (file);
    if (got >= 1)
        pos.next = (uint64_t) next;
    if (got == 2)
        pos.epoch = (uint64_t) epoch;
    return pos;
}

//  Save the position in the state file, atomically.
static int
s_save_position (s_feed_t *feed, uint64_t next, uint64_t epoch)
{
    FILE *file = fopen (feed->temp, "w");
    if (!file)
        return -1;
    fprintf (file, "%" PRIu64 " %" PRIu64 "\n", next, epoch);
    if (fclose (file) != 0)
        return -1;
    return rename (feed->temp, feed->state);
}

//  One change: print it, then remember that the next one follows it.
static int
s_on_change (void *arg, uint64_t seq, int op, const void *key, size_t key_len,
             const void *value, size_t value_len)
{
    s_feed_t *feed = (s_feed_t *) arg;
    if (op == 2)
        printf ("%" PRIu64 " del %.*s\n", seq, (int) key_len, (const char *) key);
    else
        printf ("%" PRIu64 " put %.*s %.*s\n", seq, (int) key_len, (const char *) key,
                (int) value_len, value_len ? (const char *) value : "");
    fflush (stdout);
    if (s_save_position (feed, seq + 1, walcast_watch_epoch (s_client))) {
        fprintf (stderr, "feed: cannot save %s: %s\n", feed->state, strerror (errno));
        return 1;               // stop: a position we cannot keep is no position
    }
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc != 5 || (strcmp (argv [1], "--node") && strcmp (argv [1], "--broker"))) {
        fprintf (stderr, "usage: feed (--node HOST:PORT | --broker HOST:PORT) "
                 "PREFIX STATE_FILE\n");
        return 2;
    }
    s_feed_t feed;
    feed.state = argv [4];
    snprintf (feed.temp, sizeof feed.temp, "%s.tmp", feed.state);
    s_client = walcast_new ();
    if (!s_client)
        return 1;
    int rc = strcmp (argv [1], "--node") == 0 ? walcast_connect (s_client, argv [2])
                                              : walcast_connect_broker (s_client, argv [2]);
    if (rc) {
        fprintf (stderr, "feed: %s: %s (%s)\n", argv [2], walcast_strerror (rc),
                 walcast_last_detail (s_client));
        walcast_destroy (&s_client);
        return 1;
    }
    signal (SIGINT, s_on_signal);
    signal (SIGTERM, s_on_signal);

    s_position_t saved = s_load_position (feed.state);
    uint64_t position = saved.next;
    if (saved.next && saved.epoch)      /* check the history first */
        walcast_watch_resume (s_client, saved.next, saved.epoch);
    fprintf (stderr, "feed: watching %s from %s\n", argv [3],
             position ? "the saved position" : "now");
    rc = walcast_watch (s_client, argv [3], strlen (argv [3]), &position,
                        s_on_change, &feed, -1);
    if (rc < 0)
        fprintf (stderr, "feed: %s (%s)\n", walcast_strerror (rc),
                 walcast_last_detail (s_client));
    else
    if (s_save_position (&feed, position, walcast_watch_epoch (s_client)) == 0)
        fprintf (stderr, "feed: stopped; next time from seq %" PRIu64 "\n", position);
    walcast_destroy (&s_client);
    return rc < 0 ? 1 : 0;
}
