/*  roster.h - the broker's directory of nodes on disk, so that a broker
    killed and restarted still lists the nodes it knew (--data DIR).

    Without it a restarted broker knew only the nodes that beat again: a
    replica that was down, or the primary that died, vanished from
    `status`, the status page and walcast_broker_nodes{state="down"}, and
    so from the alerts on down nodes, though only `forget` should remove
    a node. Now every change of the directory is written to
    DIR/broker.nodes, and a broker that starts lists those nodes again,
    down, until each beats.

    Two ideas:
    - The file holds the directory as a TOPOLOGY message of
      docs/PROTOCOL.md behind a magic and a CRC32C: what is read back
      goes through the same decoder and admission rules as anything a
      node sends (wc_msg_decode, wc_directory_restore), so a damaged
      or hostile file cannot put a node in that a REGISTER could not.
    - Losing the file costs little, unlike the state file's epoch: the
      nodes that run register again within a beat. So a save is a write
      and an atomic rename with no fsync (a crash of the process keeps
      the last save; a crash of the machine may lose the last changes;
      the broker saves at most once a second, and at once for a FORGET),
      and a file that cannot be read is a warning, never a reason not to
      start.
*/
#ifndef WC_ROSTER_H_INCLUDED
#define WC_ROSTER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "directory.h"

/*  Name of the file in the data directory. */
#define WC_ROSTER_FILE   "broker.nodes"

/*  Write every node of dir, as it stands at now_ms, to DIR/broker.nodes
    (through DIR/broker.nodes.tmp and a rename). Returns 0, or
    WALCAST_EIO / WALCAST_ENOSPC / WALCAST_ENOMEM with the cause in why;
    the file on disk is then the previous one. */
int wc_roster_save (const char *data_dir, wc_directory_t *dir, int64_t now_ms,
                    char *why, size_t why_size);

/*  Read DIR/broker.nodes into dir (wc_directory_restore: each node down,
    silent from now_ms). Returns how many nodes were restored (0 when the
    file does not exist), or a negative code with why set when the file
    cannot be read or is damaged: WALCAST_EIO, WALCAST_EPROTO (not a
    roster, a bad CRC, a message that does not decode), WALCAST_EVERSION
    (written in a newer format); a file it could read but not decode is
    renamed DIR/broker.nodes.bad (so the next save does not destroy it)
    and why says so. A node the directory refuses is skipped and counted
    in *skipped (may be NULL). */
int wc_roster_load (const char *data_dir, wc_directory_t *dir, int64_t now_ms,
                    size_t *skipped, char *why, size_t why_size);

#endif
