/*  clock.h - the one clock of every walcast process.

    Two kinds of time, never mixed:
    - monotonic time (wc_clock_ms, wc_clock_us) for timeouts, deadlines
      and intervals: it never jumps when the wall clock is set;
    - wall-clock time (wc_clock_wall_ms, wc_clock_wall_us) for what
      crosses machines: entry timestamps, heartbeat clocks, staleness
      estimates, the stream's apply stamps.
*/
#ifndef WC_CLOCK_H_INCLUDED
#define WC_CLOCK_H_INCLUDED

#include <stdint.h>

/*  Monotonic time in milliseconds and in microseconds. */
int64_t wc_clock_ms (void);
int64_t wc_clock_us (void);

/*  Wall-clock time, milliseconds and microseconds since 1970. */
uint64_t wc_clock_wall_ms (void);
uint64_t wc_clock_wall_us (void);

#endif
