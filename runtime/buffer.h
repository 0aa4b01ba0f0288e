/*  buffer.h - msgpack buffers that give memory back.

    A scratch buffer grows to the largest thing it ever held (a 1 MiB
    value, a 16 MiB batch) and msgpack_sbuffer never shrinks. Trimming it
    after use frees a buffer that grew past what the common case needs,
    so one large message does not pin its size for the process's life.
*/
#ifndef WC_BUFFER_H_INCLUDED
#define WC_BUFFER_H_INCLUDED

#include <msgpack.h>

/*  Empty buf, and free its memory when it holds more than keep bytes. */
void wc_buffer_trim (msgpack_sbuffer *buf, size_t keep);

#endif
