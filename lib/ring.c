/*
 * ring.c - the ring's one cold path: growing (see ring.h).
 */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void as__ring_destroy(as__ring *r)
{
    free(r->items);
    as__ring_init(r);
}

int as__ring_grow(as__ring *r, size_t size)
{
    size_t cap, first;
    char *items;

    if (r->cap == 0) {
        for (cap = 1; cap * 2 * size <= AS__RING_FIRST_BYTES; cap *= 2)
            ;
    } else if (r->cap > (size_t)-1 / 2 / size) {
        return -ENOMEM; /* the byte count would overflow */
    } else {
        cap = r->cap * 2;
    }
    if (!(items = malloc(cap * size)))
        return -ENOMEM;
    /* Unwrap, oldest first: the run from head to the end of the old array,
     * then the run that wrapped to its start. */
    first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
    if (r->len > 0) {
        memcpy(items, (char *)r->items + r->head * size, first * size);
        memcpy(items + first * size, r->items, (r->len - first) * size);
    }
    free(r->items);
    r->items = items;
    r->cap = cap;
    r->head = 0;
    return 0;
}
