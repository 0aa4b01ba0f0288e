/*  ports.h - free TCP ports for tests, picked at run time.

    Tests never hard-code ports, so two suites (two builds, two checkouts,
    two users) can run side by side. test_ports_reserve picks a block of
    consecutive ports on 127.0.0.1 that nothing listens on and holds a
    lock file for it (flock, in /tmp/walcast-test-ports) until the process
    exits, so no other test process picks the same block meanwhile. Blocks
    come from 20000..31999, below Linux's ephemeral range (32768 up), so
    outgoing connections of other programs do not land on them either.
*/
#ifndef WC_TEST_PORTS_H_INCLUDED
#define WC_TEST_PORTS_H_INCLUDED

/*  Reserve count (1..100) consecutive free ports; returns the first, or
    -1 (printed) when no block is free. */
int test_ports_reserve (int count);

#endif
