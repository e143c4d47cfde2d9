/*
 * heap.c - the timer heap (see heap.h).
 *
 * The array is the usual implicit binary tree: node i's children are
 * 2i+1 and 2i+2, its parent (i-1)/2.  Every move goes through place(), so
 * each node's index is always where it really is.
 */
#include "heap.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

static int before(const as__heap_node *a, const as__heap_node *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void place(as__heap *h, size_t i, as__heap_node *n)
{
    h->nodes[i] = n;
    n->index = i;
}

static void sift_up(as__heap *h, size_t i)
{
    as__heap_node *n = h->nodes[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(n, h->nodes[parent]))
            break;
        place(h, i, h->nodes[parent]);
        i = parent;
    }
    place(h, i, n);
}

static void sift_down(as__heap *h, size_t i)
{
    as__heap_node *n = h->nodes[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && before(h->nodes[child + 1], h->nodes[child]))
            child++;
        if (!before(h->nodes[child], n))
            break;
        place(h, i, h->nodes[child]);
        i = child;
    }
    place(h, i, n);
}

int as__heap_push(as__heap *h, as__heap_node *n, double when)
{
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        as__heap_node **nodes = realloc(h->nodes, cap * sizeof *nodes);
        if (!nodes)
            return -ENOMEM;
        h->nodes = nodes;
        h->cap = cap;
    }
    n->when = when;
    n->seq = h->next_seq++;
    place(h, h->len++, n);
    sift_up(h, h->len - 1);
    return 0;
}

void as__heap_remove(as__heap *h, as__heap_node *n)
{
    size_t i = n->index;
    as__heap_node *last;

    assert(i < h->len && h->nodes[i] == n);
    last = h->nodes[--h->len];
    n->index = AS__HEAP_NONE;
    if (i == h->len)
        return; /* it was the last: nothing moves */
    place(h, i, last);
    /* The node moved into the hole may belong above or below it. */
    if (i > 0 && before(last, h->nodes[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

void as__heap_destroy(as__heap *h)
{
    assert(h->len == 0);
    free(h->nodes);
    as__heap_init(h);
}
