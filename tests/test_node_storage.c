/*  test_node_storage.c - what a node does when its disk lets it down.

    Real nodes on loopback, their disks failed through the storage
    engine's fault file (storage/vfs.h: WALCAST_FAULT_FILE) or damaged by
    hand between runs. What a user relies on (issue 6):

    - one data directory, one process: a second node on it refuses to
      start and names the holder; a lock left by SIGKILL does not stop a
      restart (defect 12);
    - damage in the middle of the log deletes nothing: a primary refuses
      to start and says which file, offset and seqs, and what to do; a
      replica keeps what is valid and fetches the rest (defect 1);
    - a full disk refuses writes with ENOSPC, once-logged, reads go on,
      writes resume by themselves when space returns, and no refused
      write comes back after a restart (defect 2); a replica stops
      applying, says why, serves reads and catches up by itself (defect 3);
    - under --fsync always nothing leaves a node beyond its synced seq,
      and a hung disk does not stop the node's loop (defects 6 and 7);
    - a failed fsync stops the node, which says why.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>
#include "cluster.h"
#include "codec.h"
#include "crc32c.h"

#define SEGMENT     "65536"             /* small segments: many files */
#define WAIT_MS     30000

static const char *const s_small_segments [] = { "--segment-bytes", SEGMENT, NULL };

static int
s_setup (void **state)
{
    *state = cluster_new ("node_storage");
    return 0;
}

static int
s_teardown (void **state)
{
    cluster_t *cluster = (cluster_t *) *state;
    cluster_destroy (&cluster);
    return 0;
}

static cluster_t *
s_cluster (void **state)
{
    cluster_t *c = (cluster_t *) *state;
    if (!c)
        fail_msg ("the cluster could not be set up (see above)");
    return c;
}

/* --- files of a data directory ----------------------------------------- */

/*  Names of dir's entries that start with prefix, sorted; count set. */
static int
s_files (const char *dir, const char *prefix, char names [][64], int max)
{
    DIR *d = opendir (dir);
    assert_non_null (d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir (d)) && count < max)
        if (strncmp (e->d_name, prefix, strlen (prefix)) == 0)
            snprintf (names [count++], 64, "%.63s", e->d_name);
    closedir (d);
    qsort (names, (size_t) count, 64, (int (*) (const void *, const void *)) strcmp);
    return count;
}

/*  Total bytes of dir's WAL segments. */
static long
s_wal_bytes (const char *dir)
{
    char names [512][64];
    int count = s_files (dir, "wal-", names, 512);
    long total = 0;
    for (int i = 0; i < count; i++) {
        if (strchr (names [i] + 4, '.') != strrchr (names [i], '.'))
            continue;                   //  *.damaged
        char path [1024];
        assert_true (snprintf (path, sizeof path, "%s/%s", dir, names [i]) < (int) sizeof path);
        struct stat st;
        if (stat (path, &st) == 0)
            total += st.st_size;
    }
    return total;
}

/*  Flip one byte of a file at offset. */
static void
s_flip (const char *path, long offset)
{
    int fd = open (path, O_RDWR);
    assert_true (fd >= 0);
    unsigned char byte;
    assert_int_equal (pread (fd, &byte, 1, offset), 1);
    byte ^= 0x5a;
    assert_int_equal (pwrite (fd, &byte, 1, offset), 1);
    close (fd);
}

/* --- writing and reading -------------------------------------------------- */

/*  Write keys first..first+count-1 (cluster_value, round 1) one at a time
    through client, each acknowledged. */
static void
s_write (walcast_t *client, int first, int count)
{
    char key [32], value [CLUSTER_VALUE_LEN + 1];
    for (int n = first; n < first + count; n++) {
        cluster_key (n, key, sizeof key);
        cluster_value (n, 1, value);
        int rc = walcast_put (client, key, strlen (key), value, CLUSTER_VALUE_LEN, NULL);
        if (rc)
            fail_msg ("put %s: %s", key, walcast_strerror (rc));
    }
}

static walcast_t *
s_client (cluster_t *c, int i)
{
    walcast_t *client = cluster_client (c, i);
    assert_non_null (client);
    return client;
}

/*  Start node i and wait until it answers. */
static void
s_start (cluster_t *c, int i)
{
    assert_int_equal (cluster_start (c, i), 0);
    assert_int_equal (cluster_wait_ready (c, i, WAIT_MS), 0);
}

/*  Node i exits (status 1) after a start; the "cannot start:" line it
    logged is copied into line. */
static void
s_start_refused (cluster_t *c, int i, char *line, size_t size)
{
    long mark = cluster_log_mark (c, i);
    assert_int_equal (cluster_start (c, i), 0);
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    while (cluster_running (c, i))
        assert_true (cluster_now_ms () < deadline);
    assert_int_equal (cluster_log_find (c, i, "cannot start:", mark, 0, line, size), 0);
    printf ("%s refused to start: %s\n", cluster_id (c, i), line);
}

/* --- defect 12: one process per data directory ---------------------------- */

static void
test_directory_lock (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    int q = cluster_add (c, "q1", NULL, NULL);
    const char *data [] = { "--data", cluster_data_path (c, p), NULL };
    cluster_set_extra (c, q, data);
    s_start (c, p);
    char line [1024], holder [128];
    s_start_refused (c, q, line, sizeof line);
    snprintf (holder, sizeof holder, "held by process %d (walcast-node --id p1)",
              (int) cluster_pid (c, p));
    assert_non_null (strstr (line, "is in use"));
    assert_non_null (strstr (line, holder));
    assert_non_null (strstr (line, "another --data"));
    //  The lock dies with its process, even a SIGKILLed one
    assert_int_equal (cluster_kill (c, p), 0);
    s_start (c, q);
    s_start_refused (c, p, line, sizeof line);
    assert_non_null (strstr (line, "walcast-node --id q1"));
    cluster_pass (c);
}

/* --- defect 1: damage in the middle deletes nothing -------------------- */

/*  A primary with many small segments, 20000 entries, killed. */
static int
s_damaged_primary_setup (cluster_t *c, char names [][64], int *count)
{
    int p = cluster_add (c, "p1", NULL, NULL);
    cluster_set_extra (c, p, s_small_segments);
    s_start (c, p);
    assert_int_equal (cluster_load (c, p, 0, 20000, 1, NULL), 0);
    assert_int_equal (cluster_kill (c, p), 0);
    *count = s_files (cluster_data_path (c, p), "wal-", names, 512);
    assert_true (*count > 20);
    return p;
}

static void
test_damaged_primary (void **state)
{
    cluster_t *c = s_cluster (state);
    char names [512][64], after [512][64], line [2048], path [1024];
    int count;
    int p = s_damaged_primary_setup (c, names, &count);
    const char *dir = cluster_data_path (c, p);

    //  One byte flipped inside a record of a middle segment
    snprintf (path, sizeof path, "%s/%s", dir, names [count / 2]);
    s_flip (path, 1000);
    s_start_refused (c, p, line, sizeof line);
    assert_non_null (strstr (line, names [count / 2]));
    assert_non_null (strstr (line, "is damaged"));
    assert_non_null (strstr (line, "cannot be replayed past seq"));
    assert_non_null (strstr (line, "valid records"));
    assert_non_null (strstr (line, "nothing was deleted"));
    assert_non_null (strstr (line, "--replica-of"));
    assert_int_equal (s_files (dir, "wal-", after, 512), count);
    for (int i = 0; i < count; i++)
        assert_string_equal (after [i], names [i]);
    s_flip (path, 1000);                //  repaired: it starts, all there

    //  A middle segment gone
    char aside [1100];
    snprintf (aside, sizeof aside, "%s.moved", path);
    assert_int_equal (rename (path, aside), 0);
    s_start_refused (c, p, line, sizeof line);
    assert_non_null (strstr (line, "segments missing"));
    assert_int_equal (s_files (dir, "wal-", after, 512), count);   //  .moved too
    assert_int_equal (rename (aside, path), 0);

    //  The first segment gone: a log that starts past its beginning
    snprintf (path, sizeof path, "%s/%s", dir, names [0]);
    snprintf (aside, sizeof aside, "%s/first.moved", dir);
    assert_int_equal (rename (path, aside), 0);
    s_start_refused (c, p, line, sizeof line);
    assert_non_null (strstr (line, "are missing"));
    assert_int_equal (rename (aside, path), 0);

    s_start (c, p);
    uint64_t seq, hash;
    assert_int_equal (cluster_digest (c, p, &seq, &hash), 0);
    assert_int_equal (seq, 20000);
    assert_int_equal (cluster_check_key (c, p, 19999, 1), 0);
    cluster_pass (c);
}

/*  A record whose CRC is right but whose payload is not an entry. */
static void
test_record_not_an_entry (void **state)
{
    cluster_t *c = s_cluster (state);
    char names [512][64], line [2048], path [1024];
    int count;
    int p = s_damaged_primary_setup (c, names, &count);
    snprintf (path, sizeof path, "%s/%s", cluster_data_path (c, p), names [count / 2]);
    //  The second record of the file: len | crc | seq | payload
    int fd = open (path, O_RDWR);
    assert_true (fd >= 0);
    uint8_t head [16];
    assert_int_equal (pread (fd, head, 16, 0), 16);
    uint32_t len = (uint32_t) head [0] | (uint32_t) head [1] << 8
                 | (uint32_t) head [2] << 16 | (uint32_t) head [3] << 24;
    long second = 16 + (long) len;
    assert_int_equal (pread (fd, head, 16, second), 16);
    len = (uint32_t) head [0] | (uint32_t) head [1] << 8
        | (uint32_t) head [2] << 16 | (uint32_t) head [3] << 24;
    uint8_t *record = malloc (8 + len);
    memcpy (record, head + 8, 8);
    memset (record + 8, 0xc1, len);     //  0xc1: never used by msgpack
    uint32_t crc = wc_crc32c (0, record, 8 + len);
    uint8_t crc_le [4] = { (uint8_t) crc, (uint8_t) (crc >> 8),
                           (uint8_t) (crc >> 16), (uint8_t) (crc >> 24) };
    assert_int_equal (pwrite (fd, crc_le, 4, second + 4), 4);
    assert_int_equal (pwrite (fd, record + 8, len, second + 16), (ssize_t) len);
    free (record);
    close (fd);
    s_start_refused (c, p, line, sizeof line);
    assert_non_null (strstr (line, names [count / 2]));
    assert_non_null (strstr (line, "is not an entry"));
    cluster_pass (c);
}

/*  A replica's log damaged in the middle: it keeps what is valid, moves
    the rest aside and fetches it again from the primary. */
static void
test_damaged_replica (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    cluster_set_extra (c, r, s_small_segments);
    s_start (c, p);
    s_start (c, r);
    assert_int_equal (cluster_load (c, p, 0, 20000, 1, NULL), 0);
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, 20000, WAIT_MS, NULL, NULL), 0);
    assert_int_equal (cluster_kill (c, r), 0);
    char names [512][64], path [1024];
    const char *dir = cluster_data_path (c, r);
    int count = s_files (dir, "wal-", names, 512);
    snprintf (path, sizeof path, "%s/%s", dir, names [count / 2]);
    s_flip (path, 1000);
    assert_int_equal (cluster_load (c, p, 20000, 1000, 1, NULL), 0);
    long mark = cluster_log_mark (c, r);
    s_start (c, r);
    assert_int_equal (cluster_wait_converged (c, both, 2, 21000, WAIT_MS, NULL, NULL), 0);
    assert_int_equal (cluster_log_count (c, r, "the log in", mark), 1);
    char damaged [64][64];
    int moved = s_files (dir, names [count / 2], damaged, 64);
    assert_true (moved >= 2);           //  the live file and its .damaged copy
    assert_true (s_files (dir, "wal-", names, 512) > count);
    cluster_pass (c);
}

/* --- defects 2 and 3: a full disk ------------------------------------------ */

/*  Put key n on the primary; the result code. */
static int
s_put (walcast_t *client, int n)
{
    char key [32], value [CLUSTER_VALUE_LEN + 1];
    cluster_key (n, key, sizeof key);
    cluster_value (n, 1, value);
    return walcast_put (client, key, strlen (key), value, CLUSTER_VALUE_LEN, NULL);
}

/*  A primary restarted on a full disk cannot write its new epoch's
    history: it stays up, serves reads, refuses writes with ENOSPC (once
    in its log), and takes writes once space returns, without a restart.
    Before, it exited at start ("cannot begin epoch ..."), so reads were
    gone too, and under a broker it logged the failure at every beat. */
static void
test_disk_full_at_start (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    cluster_use_faults (c, p);
    s_start (c, p);
    walcast_t *client = s_client (c, p);
    s_write (client, 0, 100);
    walcast_destroy (&client);
    assert_int_equal (cluster_kill (c, p), 0);
    assert_int_equal (cluster_set_faults (c, p, "write ENOSPC\n"), 0);
    long mark = cluster_log_mark (c, p);
    s_start (c, p);
    assert_int_equal (cluster_check_key (c, p, 99, 1), 0);       //  reads go on
    client = s_client (c, p);
    //  The disk stays full for 3 s (the scenario): writes refused, the
    //  failure said once, not at every retry (before, the epoch history's
    //  "cannot write" came at level error every second, a helper's find)
    int64_t full_since = cluster_now_ms ();
    for (int n = 100; cluster_now_ms () - full_since < 3000; n = n < 109 ? n + 1 : 100) {
        assert_int_equal (s_put (client, n), WALCAST_ENOSPC);
        cluster_nap_ms (50);
    }
    assert_int_equal (cluster_log_count (c, p, "cannot begin epoch", mark), 1);
    char history [300];
    snprintf (history, sizeof history, "epochs %s: cannot write the epoch history",
              cluster_data_path (c, p));
    print_message ("'%s' lines in 3 s: %d\n", history,
                   cluster_log_count (c, p, history, mark));
    assert_int_equal (cluster_log_count (c, p, history, mark), 1);
    //  Space returns: writes resume, no restart
    assert_int_equal (cluster_set_faults (c, p, ""), 0);
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    int rc;
    while ((rc = s_put (client, 110)) == WALCAST_ENOSPC)
        assert_true (cluster_now_ms () < deadline);
    assert_int_equal (rc, 0);
    char line [512];
    assert_int_equal (cluster_log_find (c, p, "began epoch", mark, 0, line, sizeof line),
                      0);
    print_message ("p1: %s\n", line);
    assert_int_equal (cluster_check_key (c, p, 99, 1), 0);
    walcast_destroy (&client);
    cluster_pass (c);
}

/*  A deleted epoch history is rebuilt from the log, and the node says so
    (before, it said nothing at all, while a damaged one got a warning:
    a helper). */
static void
test_epochs_deleted (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    s_start (c, p);
    walcast_t *client = s_client (c, p);
    s_write (client, 0, 100);
    walcast_destroy (&client);
    assert_int_equal (cluster_kill (c, p), 0);
    char path [4200];
    snprintf (path, sizeof path, "%s/epochs", cluster_data_path (c, p));
    assert_int_equal (unlink (path), 0);
    long mark = cluster_log_mark (c, p);
    s_start (c, p);
    char line [512];
    assert_int_equal (cluster_log_find (c, p, "epochs ", mark, 0, line, sizeof line), 0);
    print_message ("p1: %s\n", line);
    assert_non_null (strstr (line, "no history file"));
    assert_int_equal (cluster_check_key (c, p, 99, 1), 0);
    cluster_pass (c);
}

/*  A log that cannot be read at open (a segment replaced by a directory,
    a helper's test) is named as such: before, the start failed with "the
    node could not write or sync its log", which sends an operator after
    a full or failing disk. */
static void
test_log_unreadable (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    s_start (c, p);
    walcast_t *client = s_client (c, p);
    s_write (client, 0, 10);
    walcast_destroy (&client);
    assert_int_equal (cluster_kill (c, p), 0);
    char names [8][64];
    int count = s_files (cluster_data_path (c, p), "wal-", names, 8);
    assert_true (count >= 1);
    char path [4300];
    snprintf (path, sizeof path, "%s/%s", cluster_data_path (c, p), names [count - 1]);
    assert_int_equal (unlink (path), 0);
    assert_int_equal (mkdir (path, 0700), 0);
    char line [1024];
    s_start_refused (c, p, line, sizeof line);
    assert_null (strstr (line, "write"));
    assert_non_null (strstr (line, "could not be read"));
    cluster_pass (c);
}

static void
test_disk_full_primary (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    int r = cluster_add (c, "r1", cluster_addr (c, p), NULL);
    cluster_set_extra (c, p, s_small_segments);
    cluster_use_faults (c, p);
    s_start (c, p);
    s_start (c, r);
    walcast_t *client = s_client (c, p);
    s_write (client, 0, 2000);

    //  The disk fills: every write is refused, and says so, once
    long mark = cluster_log_mark (c, p);
    assert_int_equal (cluster_set_faults (c, p, "write ENOSPC\n"), 0);
    int n = 2000, rc = 0;
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    while ((rc = s_put (client, n)) == 0) {     //  until the file is read
        n++;
        assert_true (cluster_now_ms () < deadline);
    }
    int first_refused = n;
    assert_int_equal (rc, WALCAST_ENOSPC);
    for (n = first_refused + 1; n < first_refused + 300; n++)
        assert_int_equal (s_put (client, n), WALCAST_ENOSPC);
    assert_int_equal (cluster_log_count (c, p, "wal: cannot write", mark), 1);
    assert_int_equal (cluster_check_key (c, p, 1999, 1), 0);      //  reads go on

    //  Space returns: writes resume, no restart
    assert_int_equal (cluster_set_faults (c, p, ""), 0);
    int resumed = first_refused + 300;
    deadline = cluster_now_ms () + WAIT_MS;
    while ((rc = s_put (client, resumed)) == WALCAST_ENOSPC)
        assert_true (cluster_now_ms () < deadline);
    assert_int_equal (rc, 0);
    s_write (client, resumed + 1, 999);
    assert_int_equal (cluster_wait_log (c, p, "wal: writing again", mark, WAIT_MS), 0);

    //  Descriptors run out when a segment must be created
    assert_int_equal (cluster_set_faults (c, p, "open EMFILE\n"), 0);
    n = resumed + 1000;
    deadline = cluster_now_ms () + WAIT_MS;
    while ((rc = s_put (client, n)) == 0) {
        n++;
        assert_true (cluster_now_ms () < deadline);
    }
    assert_int_equal (rc, WALCAST_EWRITE);  //  not made: no descriptor, no write
    int emfile_refused = n;
    assert_int_equal (cluster_set_faults (c, p, ""), 0);
    n++;
    deadline = cluster_now_ms () + WAIT_MS;
    while (s_put (client, n) != 0)
        assert_true (cluster_now_ms () < deadline);
    walcast_destroy (&client);
    int last = n;

    //  After a crash and a restart: every acknowledged write, no refused one
    assert_int_equal (cluster_kill (c, p), 0);
    s_start (c, p);
    client = s_client (c, p);
    for (int k = first_refused; k <= last; k++) {
        bool refused = (k < resumed && k >= first_refused) || k == emfile_refused;
        char key [32];
        cluster_key (k, key, sizeof key);
        void *value = NULL;
        size_t len;
        rc = walcast_get (client, key, strlen (key), &value, &len, NULL);
        free (value);
        if (refused && rc != WALCAST_ENOTFOUND)
            fail_msg ("%s was refused, yet after the restart: %s", key,
                      walcast_strerror (rc));
        if (!refused && rc != 0)
            fail_msg ("%s was acknowledged, yet after the restart: %s", key,
                      walcast_strerror (rc));
    }
    walcast_destroy (&client);
    int both [] = { p, r };
    assert_int_equal (cluster_wait_converged (c, both, 2, 0, WAIT_MS, NULL, NULL), 0);
    cluster_pass (c);
}

/*  p1 and its replica r1, whose disk calls obey its fault file, both
    holding entries writes; their indices in *p and *r. */
static void
s_faulty_replica (cluster_t *c, int entries, int *p, int *r)
{
    *p = cluster_add (c, "p1", NULL, NULL);
    *r = cluster_add (c, "r1", cluster_addr (c, *p), NULL);
    cluster_use_faults (c, *r);
    s_start (c, *p);
    s_start (c, *r);
    int both [] = { *p, *r };
    assert_int_equal (cluster_load (c, *p, 0, entries, 1, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, both, 2, (uint64_t) entries, WAIT_MS,
                                              NULL, NULL), 0);
}

/*  A replica whose disk fills stops applying, serves reads at its last
    state, and once writes succeed again catches up and says so in its
    log ("applying again": operators watch for it), whether what it
    missed takes several FETCH replies or one (the short variant: 300
    writes, one reply). */
static void
s_disk_full_replica (void **state, int more)
{
    cluster_t *c = s_cluster (state);
    int p, r;
    s_faulty_replica (c, 1000, &p, &r);
    int both [] = { p, r };

    long mark = cluster_log_mark (c, r);
    assert_int_equal (cluster_set_faults (c, r, "write ENOSPC\n"), 0);
    //  The replica's next disk call obeys the fault file: one write at a
    //  time until the log says one failed (the first should), then the
    //  rest, so the stall has begun before the bulk arrives
    int sent = 0;
    while (cluster_log_count (c, r, "wal: cannot write", mark) == 0 && sent < more)
        assert_int_equal (cluster_load (c, p, 1000 + sent++, 1, 1, NULL), 0);
    assert_true (sent < more);
    assert_int_equal (cluster_load (c, p, 1000 + sent, more - sent, 1, NULL), 0);
    assert_int_equal (cluster_wait_log (c, r, "stopped applying at seq", mark, WAIT_MS), 0);
    //  It serves reads at its last state meanwhile
    walcast_status_t status;
    assert_int_equal (cluster_status (c, r, &status), 0);
    assert_true (status.applied_seq < (uint64_t) (1000 + more));
    assert_int_equal (cluster_check_key (c, r, 999, 1), 0);
    assert_int_equal (cluster_log_count (c, r, "wal: cannot write", mark), 1);

    assert_int_equal (cluster_set_faults (c, r, ""), 0);
    assert_int_equal (cluster_wait_converged (c, both, 2, 1000 + more, WAIT_MS, NULL, NULL),
                      0);
    assert_int_equal (cluster_wait_log (c, r, "applying again", mark, WAIT_MS), 0);
    //  ... from the seq after the one it stopped at (before, it named the
    //  seq after the retry's batch: "from seq 21001" having stopped at 1000)
    char stopped [256], again [256];
    unsigned long long at = 0, from = 0;
    assert_int_equal (cluster_log_find (c, r, "stopped applying at seq", mark, 0, stopped,
                                        sizeof stopped), 0);
    assert_int_equal (cluster_log_find (c, r, "applying again", mark, 0, again,
                                        sizeof again), 0);
    assert_int_equal (sscanf (stopped, "stopped applying at seq %llu", &at), 1);
    assert_int_equal (sscanf (again, "applying again from seq %llu", &from), 1);
    print_message ("r1: %s / %s\n", stopped, again);
    assert_true (from == at + 1);
    //  A full disk is not a bad upstream: no reply was taken for one
    assert_int_equal (cluster_log_count (c, r, "catch-up: bad reply", mark), 0);
    cluster_pass (c);
}

static void
test_disk_full_replica (void **state)
{
    s_disk_full_replica (state, 20000);
}

static void
test_disk_full_replica_short (void **state)
{
    s_disk_full_replica (state, 300);
}

/*  A replica whose disk is full when entries of a new epoch arrive: the
    epoch's history cannot be written, so it cannot take them. That is
    its disk, not its upstream: it says "stopped applying" once, serves
    reads, and catches up by itself once there is room, even when that
    entry's upstream has gone meanwhile. (Before, a chaos
    soak found it blaming its primary, "catch-up: bad reply ... malformed
    or out-of-order entry", every few seconds, and never saying that it
    had stopped.) A standalone primary begins a new epoch at each start. */
static void
test_disk_full_replica_new_epoch (void **state)
{
    cluster_t *c = s_cluster (state);
    int p, r;
    s_faulty_replica (c, 100, &p, &r);
    int both [] = { p, r };

    long mark = cluster_log_mark (c, r);
    assert_int_equal (cluster_set_faults (c, r, "write ENOSPC\n"), 0);
    assert_int_equal (cluster_kill (c, p), 0);
    s_start (c, p);                     /* a new epoch begins at seq 101 */
    assert_int_equal (cluster_load (c, p, 100, 100, 1, NULL), 0);
    assert_int_equal (cluster_wait_log (c, r, "stopped applying at seq 100", mark, WAIT_MS),
                      0);
    assert_int_equal (cluster_check_key (c, r, 99, 1), 0);
    //  Room again while its primary is down: it must not wait for an entry
    //  that may never come to find out (stalled, the broker would never
    //  promote it; before, it stayed so until restarted)
    assert_int_equal (cluster_kill (c, p), 0);
    assert_int_equal (cluster_set_faults (c, r, ""), 0);
    assert_int_equal (cluster_wait_log (c, r, "applying again from seq 101", mark, WAIT_MS),
                      0);
    s_start (c, p);
    assert_int_equal (cluster_wait_converged (c, both, 2, 200, WAIT_MS, NULL, NULL), 0);
    assert_int_equal (cluster_log_count (c, r, "catch-up: bad reply", mark), 0);
    assert_int_equal (cluster_log_count (c, r, "stopped applying", mark), 1);
    cluster_pass (c);
}

/* --- defects 6 and 7: --fsync always, a hung disk ---------------------- */

/*  Wait until dir's WAL holds as many bytes as want. */
static void
s_wait_wal_bytes (const char *dir, long want)
{
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    while (s_wal_bytes (dir) < want)
        assert_true (cluster_now_ms () < deadline);
}

static void
test_always_durable (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, "always");
    int r1 = cluster_add (c, "r1", cluster_addr (c, p), "always");
    int r2 = cluster_add (c, "r2", cluster_addr (c, r1), "always");
    cluster_use_faults (c, p);
    cluster_use_faults (c, r1);
    s_start (c, p);
    s_start (c, r1);
    s_start (c, r2);
    int all [] = { p, r1, r2 };
    assert_int_equal (cluster_load (c, p, 0, 100, 1, NULL), 0);
    assert_int_equal (cluster_wait_converged (c, all, 3, 100, WAIT_MS, NULL, NULL), 0);

    //  r1's disk hangs: it writes what it receives but cannot sync it, so
    //  none of it may reach r2 (stream or FETCH), nor r1's readers
    assert_int_equal (cluster_set_faults (c, r1, "sync STALL\n"), 0);
    assert_int_equal (cluster_load (c, p, 100, 100, 1, NULL), 0);
    s_wait_wal_bytes (cluster_data_path (c, r1), s_wal_bytes (cluster_data_path (c, p)));
    walcast_status_t status;
    assert_int_equal (cluster_status (c, r1, &status), 0);     //  its loop goes on
    assert_int_equal (status.applied_seq, 100);
    assert_int_equal (cluster_status (c, r2, &status), 0);
    assert_int_equal (status.applied_seq, 100);
    char key [32];
    cluster_key (150, key, sizeof key);
    walcast_t *reader = s_client (c, r1);
    void *value = NULL;
    size_t len;
    assert_int_equal (walcast_get (reader, key, strlen (key), &value, &len, NULL),
                      WALCAST_ENOTFOUND);
    walcast_destroy (&reader);
    assert_int_equal (cluster_set_faults (c, r1, ""), 0);
    assert_int_equal (cluster_wait_converged (c, all, 3, 200, WAIT_MS, NULL, NULL), 0);

    //  The primary's disk hangs: its loop answers, a write waits for its sync
    assert_int_equal (cluster_set_faults (c, p, "sync STALL\n"), 0);
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0, timeout = WAIT_MS;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (dealer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://%s", cluster_addr (c, p));
    assert_int_equal (zmq_connect (dealer, endpoint), 0);
    long before = s_wal_bytes (cluster_data_path (c, p));
    wc_msg_t put = { .type = WC_MSG_PUT, .rid = 4242 };
    put.u.req.key = (wc_bytes_t) { (const uint8_t *) "held", 4 };
    put.u.req.value = (wc_bytes_t) { (const uint8_t *) "back", 4 };
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    assert_int_equal (wc_msg_encode (&put, &buf), 0);
    assert_int_equal (zmq_send (dealer, buf.data, buf.size, 0), (int) buf.size);
    msgpack_sbuffer_destroy (&buf);
    s_wait_wal_bytes (cluster_data_path (c, p), before + 1);     //  written...
    assert_int_equal (cluster_status (c, p, &status), 0);
    assert_int_equal (status.applied_seq, 200);                    //  ...not applied
    char reply [512];
    assert_int_equal (zmq_recv (dealer, reply, sizeof reply, ZMQ_DONTWAIT), -1);
    assert_int_equal (cluster_set_faults (c, p, ""), 0);
    int got = zmq_recv (dealer, reply, sizeof reply, 0);          //  now it comes
    assert_true (got > 0);
    msgpack_unpacked storage;
    msgpack_unpacked_init (&storage);
    wc_msg_t msg;
    assert_int_equal (wc_msg_decode (reply, (size_t) got, &storage, &msg), 0);
    assert_int_equal (msg.type, WC_MSG_WRITE_OK);
    assert_int_equal (msg.u.write_ok.seq, 201);
    msgpack_unpacked_destroy (&storage);
    zmq_close (dealer);
    zmq_ctx_term (ctx);
    assert_int_equal (cluster_wait_converged (c, all, 3, 201, WAIT_MS, NULL, NULL), 0);
    cluster_pass (c);
}

static void
s_on_outcome (void *arg, const walcast_outcome_t *o)
{
    *(walcast_outcome_t *) arg = *o;
}

/*  A disk that turned read-only (a file system remounted after errors):
    the primary cannot write its log, refuses each write, and says that
    the write was not made. Before, the refusal was EIO, which the client
    reads as "may or may not have been applied" (an async write was
    UNKNOWN) although the node knew it had written nothing. */
static void
test_read_only_disk (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, NULL);
    cluster_use_faults (c, p);
    s_start (c, p);
    walcast_t *client = s_client (c, p);
    s_write (client, 0, 10);
    assert_int_equal (cluster_set_faults (c, p, "write EROFS\n"), 0);
    int n = 10, rc;
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    while ((rc = s_put (client, n)) == 0) {     //  until the file is read
        n++;
        assert_true (cluster_now_ms () < deadline);
    }
    print_message ("put: %s (%s)\n", walcast_errname (rc), walcast_strerror (rc));
    assert_int_equal (rc, WALCAST_EWRITE);
    assert_non_null (strstr (walcast_strerror (rc), "not made"));
    //  An async write: FAILED, not UNKNOWN
    walcast_outcome_t outcome = { .state = -1 };
    walcast_set_outcome_fn (client, s_on_outcome, &outcome);
    char key [32];
    cluster_key (n + 1, key, sizeof key);
    assert_int_equal (walcast_put_async (client, key, strlen (key), "v", 1, 7), 0);
    assert_int_equal (walcast_flush (client, NULL, NULL), WALCAST_EWRITE);
    assert_int_equal (outcome.tag, 7);
    assert_int_equal (outcome.state, WALCAST_WRITE_FAILED);
    assert_int_equal (outcome.err, WALCAST_EWRITE);
    //  Writable again: writes resume, and neither refused write is there
    assert_int_equal (cluster_set_faults (c, p, ""), 0);
    deadline = cluster_now_ms () + WAIT_MS;
    while (s_put (client, n + 2) != 0)
        assert_true (cluster_now_ms () < deadline);
    for (int k = n; k <= n + 1; k++) {
        cluster_key (k, key, sizeof key);
        void *value = NULL;
        size_t len;
        assert_int_equal (walcast_get (client, key, strlen (key), &value, &len, NULL),
                          WALCAST_ENOTFOUND);
    }
    walcast_destroy (&client);
    cluster_pass (c);
}

/*  A failed fsync: what reached the disk is unknown, so the node stops
    (after saying why) rather than go on; a restart replays what did. */
static void
test_failed_fsync_stops (void **state)
{
    cluster_t *c = s_cluster (state);
    int p = cluster_add (c, "p1", NULL, "always");
    cluster_use_faults (c, p);
    s_start (c, p);
    walcast_t *client = s_client (c, p);
    walcast_set_timeout (client, 2000);
    s_write (client, 0, 100);
    long mark = cluster_log_mark (c, p);
    assert_int_equal (cluster_set_faults (c, p, "sync EIO\n"), 0);
    int64_t deadline = cluster_now_ms () + WAIT_MS;
    for (int n = 100; cluster_running (c, p); n++) {
        int rc = s_put (client, n);
        assert_true (rc == 0 || rc == WALCAST_ETIMEOUT || rc == WALCAST_EUNAVAILABLE);
        assert_true (cluster_now_ms () < deadline);
    }
    walcast_destroy (&client);
    assert_int_equal (cluster_log_count (c, p, "wal: fsync failed; stopping", mark), 1);
    assert_int_equal (cluster_set_faults (c, p, ""), 0);
    s_start (c, p);
    assert_int_equal (cluster_check_key (c, p, 99, 1), 0);
    cluster_pass (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_directory_lock, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_damaged_primary, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_record_not_an_entry, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_damaged_replica, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_full_primary, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_full_at_start, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_epochs_deleted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_log_unreadable, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_full_replica, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_full_replica_short, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_full_replica_new_epoch, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_always_durable, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failed_fsync_stops, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_read_only_disk, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
