/*  with_ports.c - run a command on a block of free ports.

        walcast-with-ports COUNT COMMAND [ARG...]

    Reserves COUNT consecutive free ports (tests/ports.h), replaces every
    "{PORT}" argument with the first of them, runs the command and exits
    with its status. The ports stay reserved while it runs. ctest uses it
    for programs that take a base port (examples/regions), so they too
    run on ports picked at run time.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ports.h"

int
main (int argc, char **argv)
{
    if (argc < 3) {
        fprintf (stderr, "usage: walcast-with-ports COUNT COMMAND [ARG...]\n");
        return 2;
    }
    int base = test_ports_reserve (atoi (argv [1]));
    if (base < 0)
        return 1;
    char port [16];
    snprintf (port, sizeof port, "%d", base);
    char **args = argv + 2;
    for (int i = 0; args [i]; i++)
        if (strcmp (args [i], "{PORT}") == 0)
            args [i] = port;
    pid_t pid = fork ();
    if (pid < 0) {
        perror ("walcast-with-ports: fork");
        return 1;
    }
    if (pid == 0) {
        execv (args [0], args);
        fprintf (stderr, "walcast-with-ports: cannot run %s: %s\n", args [0],
                 strerror (errno));
        _exit (127);
    }
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return 1;
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}
