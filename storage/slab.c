/*  slab.c - memory for many small blocks of a few sizes (see slab.h).

    Each size class keeps a free list and the run it is cutting blocks
    from (a bump pointer); a class whose run is used up takes a new one.
    The slab remembers every run in one array, to free them at destroy.
    Nothing here looks at a block's content but the free-list link, which
    lives in the first 8 bytes of a free block.
*/
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include "slab.h"

#if defined (__SANITIZE_ADDRESS__)
#   define S_ASAN 1
#elif defined (__has_feature)
#   if __has_feature (address_sanitizer)
#       define S_ASAN 1
#   endif
#endif
#ifdef S_ASAN
#   include <sanitizer/asan_interface.h>
#endif

#define S_CLASSES   (WC_SLAB_MAX / WC_SLAB_GRAIN)

_Static_assert (sizeof (void *) <= WC_SLAB_GRAIN, "a free block holds a link");

/*  A free block: the link to the next free block of its class. */
typedef struct s_free {
    struct s_free *next;
} s_free_t;

/*  One size class: blocks of (index + 1) * WC_SLAB_GRAIN bytes. */
typedef struct {
    s_free_t *free;             /* freed blocks, last freed first */
    char *cut;                  /* the next block of the current run */
    char *end;                  /* the end of that run */
} s_class_t;

/*  A block bigger than WC_SLAB_MAX: malloc'd behind this header, which
    links it into the slab's list of them, to free at destroy. */
typedef struct s_big {
    struct s_big *prev;
    struct s_big *next;
} s_big_t;

#define S_BIG_HEADER    16      /* sizeof (s_big_t), kept a malloc alignment */

struct wc_slab {
    s_class_t classes [S_CLASSES];
    char **runs;                /* every run, to free at destroy */
    size_t nruns;
    size_t runs_cap;
    s_big_t *bigs;              /* the live big blocks */
    size_t big_bytes;           /* their asked sizes */
};

//  Mark bytes unusable (free) or usable again, for AddressSanitizer.

static void
s_poison (void *p, size_t bytes)
{
#ifdef S_ASAN
    ASAN_POISON_MEMORY_REGION (p, bytes);
#else
    (void) p;
    (void) bytes;
#endif
}

static void
s_unpoison (void *p, size_t bytes)
{
#ifdef S_ASAN
    ASAN_UNPOISON_MEMORY_REGION (p, bytes);
#else
    (void) p;
    (void) bytes;
#endif
}

wc_slab_t *
wc_slab_new (void)
{
    return (wc_slab_t *) calloc (1, sizeof (wc_slab_t));
}

void
wc_slab_destroy (wc_slab_t **self_p)
{
    assert (self_p);
    wc_slab_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nruns; i++) {
        s_unpoison (self->runs [i], WC_SLAB_RUN);
        free (self->runs [i]);
    }
    free (self->runs);
    while (self->bigs) {
        s_big_t *next = self->bigs->next;
        free (self->bigs);
        self->bigs = next;
    }
    free (self);
    *self_p = NULL;
}

//  Give class c a new run to cut from (what was left of its last one is
//  lost: less than one block). Returns 0 or -1 when out of memory.

static int
s_new_run (wc_slab_t *self, s_class_t *c)
{
    if (self->nruns == self->runs_cap) {
        size_t cap = self->runs_cap ? self->runs_cap * 2 : 64;
        char **grown = realloc (self->runs, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->runs = grown;
        self->runs_cap = cap;
    }
    char *run = malloc (WC_SLAB_RUN);
    if (!run)
        return -1;
    s_poison (run, WC_SLAB_RUN);
    self->runs [self->nruns++] = run;
    c->cut = run;
    c->end = run + WC_SLAB_RUN;
    return 0;
}

//  A big block: malloc'd behind its header, first in the list.

static void *
s_big_alloc (wc_slab_t *self, size_t size)
{
    if (size > SIZE_MAX - S_BIG_HEADER)
        return NULL;
    s_big_t *big = malloc (S_BIG_HEADER + size);
    if (!big)
        return NULL;
    big->prev = NULL;
    big->next = self->bigs;
    if (self->bigs)
        self->bigs->prev = big;
    self->bigs = big;
    self->big_bytes += size;
    return (char *) big + S_BIG_HEADER;
}

static void
s_big_free (wc_slab_t *self, void *block, size_t size)
{
    s_big_t *big = (s_big_t *) ((char *) block - S_BIG_HEADER);
    if (big->prev)
        big->prev->next = big->next;
    else
        self->bigs = big->next;
    if (big->next)
        big->next->prev = big->prev;
    assert (self->big_bytes >= size);
    self->big_bytes -= size;
    free (big);
}

void *
wc_slab_alloc (wc_slab_t *self, size_t size)
{
    assert (self);
    assert (size > 0);
    if (size > WC_SLAB_MAX)
        return s_big_alloc (self, size);
    size_t index = (size - 1) / WC_SLAB_GRAIN;
    size_t bytes = (index + 1) * WC_SLAB_GRAIN;
    s_class_t *c = &self->classes [index];
    void *block;
    if (c->free) {
        s_unpoison (c->free, bytes);
        block = c->free;
        c->free = c->free->next;
    }
    else {
        if ((size_t) (c->end - c->cut) < bytes && s_new_run (self, c) != 0)
            return NULL;
        block = c->cut;
        c->cut += bytes;
        s_unpoison (block, bytes);
    }
    return block;
}

void
wc_slab_free (wc_slab_t *self, void *block, size_t size)
{
    assert (self);
    if (!block)
        return;
    assert (size > 0);
    if (size > WC_SLAB_MAX) {
        s_big_free (self, block, size);
        return;
    }
    size_t index = (size - 1) / WC_SLAB_GRAIN;
    s_class_t *c = &self->classes [index];
    s_free_t *freed = (s_free_t *) block;
    freed->next = c->free;
    c->free = freed;
    s_poison (block, (index + 1) * WC_SLAB_GRAIN);
}

size_t
wc_slab_bytes (const wc_slab_t *self)
{
    assert (self);
    return self->nruns * WC_SLAB_RUN + self->big_bytes;
}
