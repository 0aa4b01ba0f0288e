/*  slab.c - memory for many small blocks of a few sizes (see slab.h).

    Each size class keeps a free list and the run it is cutting blocks
    from (a bump pointer); a class whose run is used up takes a new one.
    Nothing here looks at a block's content but the free-list link, which
    lives in the first 8 bytes of a free block.

    Runs are cut in turn from regions the slab maps itself, each twice
    the size of the one before up to S_REGION_MAX; those of a huge page
    or more ask the kernel to back them with huge pages (MADV_HUGEPAGE).
    A replica catching up on a million entries faults in 130 MB of them:
    32,000 page faults of 4 KiB (a quarter of its time on this VM,
    bench/results/FINDINGS.md) or 65 of 2 MiB. The price, accepted for
    that: a node whose table grows all the time (a new key each write)
    takes a 2 MiB fault in its loop every 17,000 new keys or so, and its
    lag's tail is a little worse (the same file). When a region that big
    cannot be mapped, the slab tries the smallest size before giving up.
    The slab remembers its regions to unmap them at destroy.
*/
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
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

/*  Regions: the first holds 4 runs, each next one twice the one before,
    up to S_REGION_MAX. One of at least a huge page is mapped at a huge
    page's boundary, so all of it can be backed by huge pages. */
#define S_REGION_MIN    (4u * WC_SLAB_RUN)
#define S_REGION_MAX    (32u * 1024u * 1024u)
#define S_HUGE_PAGE     (2u * 1024u * 1024u)

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

/*  A mapping that runs are cut from. */
typedef struct {
    char *base;
    size_t size;
} s_region_t;

/*  A block bigger than WC_SLAB_MAX: malloc'd behind this header, which
    links it into the slab's list of them, to free at destroy. */
typedef struct s_big {
    struct s_big *prev;
    struct s_big *next;
} s_big_t;

#define S_BIG_HEADER    16      /* sizeof (s_big_t), kept a malloc alignment */

struct wc_slab {
    s_class_t classes [S_CLASSES];
    s_region_t *regions;        /* every region, to unmap at destroy */
    size_t nregions;
    size_t regions_cap;
    char *cut;                  /* the next run of the newest region */
    char *end;                  /* the end of that region */
    size_t nruns;               /* runs handed to the classes */
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
    for (size_t i = 0; i < self->nregions; i++) {
        s_unpoison (self->regions [i].base, self->regions [i].size);
        munmap (self->regions [i].base, self->regions [i].size);
    }
    free (self->regions);
    while (self->bigs) {
        s_big_t *next = self->bigs->next;
        free (self->bigs);
        self->bigs = next;
    }
    free (self);
    *self_p = NULL;
}

//  Map size bytes, at a huge page's boundary when size is a multiple of
//  one (mapping a huge page more and unmapping the ends), and ask for
//  huge pages. NULL when out of memory.

static char *
s_map (size_t size)
{
    size_t slack = size % S_HUGE_PAGE == 0 ? S_HUGE_PAGE : 0;
    char *map = mmap (NULL, size + slack, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return NULL;
    char *base = map;
    if (slack) {
        size_t head = (S_HUGE_PAGE - (uintptr_t) map % S_HUGE_PAGE) % S_HUGE_PAGE;
        base = map + head;
        if (head)
            munmap (map, head);
        if (slack - head)
            munmap (base + size, slack - head);
#if defined (MADV_HUGEPAGE)
        (void) madvise (base, size, MADV_HUGEPAGE);     //  a hint: 4 KiB pages do too
#endif
    }
    return base;
}

//  Map the next region, twice the size of the last. 0, or -1 when out of
//  memory.

static int
s_new_region (wc_slab_t *self)
{
    if (self->nregions == self->regions_cap) {
        size_t cap = self->regions_cap ? self->regions_cap * 2 : 16;
        s_region_t *grown = realloc (self->regions, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->regions = grown;
        self->regions_cap = cap;
    }
    size_t size = self->nregions
                ? self->regions [self->nregions - 1].size * 2 : S_REGION_MIN;
    if (size > S_REGION_MAX)
        size = S_REGION_MAX;
    char *base = s_map (size);
    if (!base && size > S_REGION_MIN) {     //  address space tight: a little will do
        size = S_REGION_MIN;
        base = s_map (size);
    }
    if (!base)
        return -1;
    s_poison (base, size);
    self->regions [self->nregions++] = (s_region_t) { base, size };
    self->cut = base;
    self->end = base + size;
    return 0;
}

//  Give class c a new run to cut from (what was left of its last one is
//  lost: less than one block). Returns 0 or -1 when out of memory.

static int
s_new_run (wc_slab_t *self, s_class_t *c)
{
    if (self->cut == self->end && s_new_region (self) != 0)
        return -1;
    c->cut = self->cut;
    c->end = self->cut + WC_SLAB_RUN;
    self->cut += WC_SLAB_RUN;
    self->nruns++;
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
