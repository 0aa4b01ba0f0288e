/*  slab.h - memory for many small blocks of a few sizes: the store's
    entries.

    A million pairs of a 12-byte key and a 100-byte value are a million
    118-byte entries. malloc gives each a 128-byte chunk (an 8-byte
    header, rounded up to 16), and puts them among the loop's own buffers,
    whose holes the entries then fill unevenly. A slab hands out blocks of
    a size class (multiples of 8 bytes, up to WC_SLAB_MAX) cut from runs
    of WC_SLAB_RUN bytes that hold nothing else: a 118-byte entry takes
    120 bytes, and the entries of a store lie packed together.

    A freed block goes on its class's free list (the link lives in the
    block) and is the next one that class hands out; runs go back only
    when the slab is destroyed, which frees every block at once. So
    memory freed in one class serves that class only: a store whose
    values all grow from 100 to 200 bytes keeps the 120-byte blocks it
    no longer uses (malloc could have merged them), as memcached's slabs
    do. For the steady sizes of a replicated table, packing wins. The
    caller says a block's size when it frees it (an entry knows its own).
    Blocks bigger than WC_SLAB_MAX come from malloc, behind a header that
    keeps them in a list, so destroy frees them too. Not thread-safe: one
    thread allocates and frees; others may read blocks they were given.
    Under AddressSanitizer, free blocks and the unused part of runs are
    poisoned, so a use after free is still caught.
*/
#ifndef WC_SLAB_H_INCLUDED
#define WC_SLAB_H_INCLUDED

#include <stddef.h>

#define WC_SLAB_GRAIN   8               /* block sizes are multiples of this */
#define WC_SLAB_MAX     512             /* the largest slab block; bigger: malloc */
#define WC_SLAB_RUN     (64u * 1024u)   /* blocks are cut from runs this big */

typedef struct wc_slab wc_slab_t;

/*  An empty slab, or NULL when out of memory. */
wc_slab_t *wc_slab_new (void);

/*  Free every block and run; *self_p becomes NULL. */
void wc_slab_destroy (wc_slab_t **self_p);

/*  A block of at least size bytes (size > 0), aligned to WC_SLAB_GRAIN
    (or as malloc aligns, above WC_SLAB_MAX); NULL when out of memory. */
void *wc_slab_alloc (wc_slab_t *self, size_t size);

/*  Give back a block that wc_slab_alloc gave for the same size. */
void wc_slab_free (wc_slab_t *self, void *block, size_t size);

/*  Bytes the slab has put to use: the runs it handed to its classes,
    and the blocks it took from malloc (at their asked sizes). Its
    mappings reserve more address space than that, and a huge page makes
    up to 2 MiB more of it resident. */
size_t wc_slab_bytes (const wc_slab_t *self);

#endif
