/*  buffer.c - msgpack buffers that give memory back (see buffer.h). */
#include "buffer.h"

void
wc_buffer_trim (msgpack_sbuffer *buf, size_t keep)
{
    buf->size = 0;
    if (buf->alloc > keep) {
        msgpack_sbuffer_destroy (buf);
        msgpack_sbuffer_init (buf);
    }
}
