/*  feed.c - a change-feed consumer that survives restarts.

        feed (--node HOST:PORT | --broker HOST:PORT) PREFIX STATE_FILE

    Prints every change to keys under PREFIX ("SEQ put KEY VALUE" or
    "SEQ del KEY"), in seq order, and keeps in STATE_FILE the seq to go
    on from. Stop it (Ctrl-C), write to the cluster, start it again: it
    prints what changed meanwhile, nothing twice and nothing skipped. A
    first run (no STATE_FILE) starts from now.

    What it shows about walcast:
    - walcast_watch hands over every change once, in order, whatever the
      stream drops (it repairs losses over the node's catch-up channel);
    - its position is a seq of the one log, the same on every node, so a
      consumer saves it and passes it back (walcast_watch's position);
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

static walcast_t *s_client;     /* for the signal handler */

static void
s_on_signal (int sig)
{
    (void) sig;
    walcast_watch_stop (s_client);
}

//  The seq saved in path, or 0 (from now) when there is none.
static uint64_t
s_load_position (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    unsigned long long seq = 0;
    if (fscanf (file, "%llu", &seq) != 1)
        seq = 0;
    fclose (file);
    return (uint64_t) seq;
}

//  Save next (the seq to go on from) in the state file, atomically.
static int
s_save_position (s_feed_t *feed, uint64_t next)
{
    FILE *file = fopen (feed->temp, "w");
    if (!file)
        return -1;
    fprintf (file, "%" PRIu64 "\n", next);
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
    if (s_save_position (feed, seq + 1)) {
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

    uint64_t position = s_load_position (feed.state);
    fprintf (stderr, "feed: watching %s from %s\n", argv [3],
             position ? "the saved position" : "now");
    rc = walcast_watch (s_client, argv [3], strlen (argv [3]), &position,
                        s_on_change, &feed, -1);
    if (rc < 0)
        fprintf (stderr, "feed: %s (%s)\n", walcast_strerror (rc),
                 walcast_last_detail (s_client));
    else
    if (s_save_position (&feed, position) == 0)
        fprintf (stderr, "feed: stopped; next time from seq %" PRIu64 "\n", position);
    walcast_destroy (&s_client);
    return rc < 0 ? 1 : 0;
}
