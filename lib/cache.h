/*
 * cache.h - the loop's cache of small blocks (internal, not installed).
 *
 * Every round trip of an echo server makes and frees a handful of small
 * objects: a future per read, a done callback per await, a handle per
 * scheduled callback, a waiting read.  Through malloc() and free() that was
 * a third of the library's instructions per round trip: glibc's per-thread
 * cache holds only seven blocks of each size, and a loop serving ten
 * connections frees ten of a kind per turn, so most frees took glibc's slow
 * path.  The loop keeps its own free lists instead: one per 16-byte size
 * class up to 256 bytes, so a block costs a pointer pop and a pointer push.
 *
 * Rules:
 *   1. Loop thread only: nothing here locks.  (Handles made by
 *      as_loop_call_soon_threadsafe() on other threads use malloc().)
 *   2. A block is given back with the size it was asked for; blocks of
 *      other sizes (bigger than 256 bytes) go straight to malloc()/free().
 *   3. At most AS__CACHE_KEEP blocks per class are kept, so a burst does
 *      not pin its peak memory; the rest are freed.  1024 covers a
 *      server of a thousand connections, each with a read waiting; with
 *      256, a server of 500 busy connections sent a
 *      quarter of its frees back to malloc.  Everything kept is freed with
 *      the loop.
 *   4. The cache is off, and every call is plain malloc()/free(), in an
 *      AddressSanitizer build, or when the environment variable
 *      ASYNCSTREAMS_MALLOC is "malloc" at as_loop_new() (what `make
 *      valgrind` sets): recycled blocks would hide a use after free from
 *      those tools.  CPython's PYTHONMALLOC=malloc is the same idea.
 *
 * Cost: O(1), a few instructions per block; memory: at most
 * AS__CACHE_KEEP x 16 classes x their sizes (at most about 2 MiB) kept idle,
 * and only after that many objects of a kind were alive at once.
 */
#ifndef AS_CACHE_H
#define AS_CACHE_H

#include <stddef.h>
#include <stdlib.h>

#define AS__CACHE_GRAIN 16
#define AS__CACHE_CLASSES 16 /* 16, 32, ..., 256 bytes */
#define AS__CACHE_KEEP 1024

struct as__cache_block {
    struct as__cache_block *next;
};

typedef struct as__cache {
    struct as__cache_block *free[AS__CACHE_CLASSES];
    unsigned kept[AS__CACHE_CLASSES];
    int off; /* rule 4 */
} as__cache;

/* Empty, and on unless rule 4 says off.  Allocates nothing. */
void as__cache_init(as__cache *c);

/* Free every block kept. */
void as__cache_destroy(as__cache *c);

/* A block of at least size bytes (uninitialised), or NULL. */
static inline void *as__cache_alloc(as__cache *c, size_t size)
{
    size_t i = (size - 1) / AS__CACHE_GRAIN;
    struct as__cache_block *b;

    if (size == 0 || i >= AS__CACHE_CLASSES || c->off)
        return malloc(size ? size : 1);
    if ((b = c->free[i]) == NULL)
        return malloc((i + 1) * AS__CACHE_GRAIN);
    c->free[i] = b->next;
    c->kept[i]--;
    return b;
}

/* Give back a block from as__cache_alloc(c, size).  NULL is ignored. */
static inline void as__cache_free(as__cache *c, void *p, size_t size)
{
    size_t i = (size - 1) / AS__CACHE_GRAIN;
    struct as__cache_block *b = p;

    if (!p)
        return;
    if (size == 0 || i >= AS__CACHE_CLASSES || c->off ||
        c->kept[i] >= AS__CACHE_KEEP) {
        free(p);
        return;
    }
    b->next = c->free[i];
    c->free[i] = b;
    c->kept[i]++;
}

#endif /* AS_CACHE_H */
