/*  vfs_gate.h - hold a background thread inside a file operation.

    A vfs hook (storage/vfs.h) that, while the gate is closed, stops every
    call of one operation made by any thread but the test's own main
    thread, until the gate opens: the syncer inside an fdatasync, the
    snapshot writer inside a pwrite. Tests use it instead of sleeping:
    close the gate, start the work, wait until the thread is held, do what
    must happen meanwhile, open the gate.
*/
#ifndef VFS_GATE_H_INCLUDED
#define VFS_GATE_H_INCLUDED

#include <stdint.h>
#include "vfs.h"

/*  Install the hook (op: the operation to hold); the calling thread is
    the main thread, never held. The gate starts open. */
void gate_install (wc_vfs_op_t op);

/*  Hold every call from now on (and count them from 0). */
void gate_close (void);

/*  Let held calls go, and wait (10 s at most) until they have left the
    gate, so that closing it again cannot catch them a second time. */
void gate_open (void);

/*  Calls held since the gate closed. */
uint64_t gate_holds (void);

/*  Wait (10 s at most, then fail the test) until the (after + 1)th call
    is held. */
void gate_wait_hold (uint64_t after);

#endif
