/*  load.h - `walcast load`: "KEY VALUE" lines from a file, written
    pipelined, each line's outcome accounted for.

    The contract (README.md, "walcast (CLI)"): stdout gets one line,
    "COUNT LAST_SEQ", of what landed; stderr gets progress once a second,
    "failed KEY: MESSAGE" for each line that did not land and
    "unknown KEY: MESSAGE" for each line whose outcome cannot be known
    or that the replicas did not confirm (the client's acks, set on the
    handle before, say how many must);
    the exit status is 3 when there is any. Resubmitting exactly the
    lines reported failed or unknown, in their order, is safe: a line of
    a key is sent only once the key's previous line has landed, so for
    every key the reported lines are the last ones of that key.
*/
#ifndef WC_LOAD_H_INCLUDED
#define WC_LOAD_H_INCLUDED

#include <stdio.h>
#include "walcast.h"

/*  Load the lines of in through client; returns the exit status (0, or
    3 after an error, a failed, unknown or malformed line). */
int wc_load_run (walcast_t *client, FILE *in);

#endif
