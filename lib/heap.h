/*
 * heap.h - the loop's timer heap: a binary min-heap of deadlines (internal,
 * not installed).
 *
 * The heap gives the earliest deadline in O(1) and adds or removes any
 * entry in O(log n), which is what timers need: the loop asks "when is the
 * next one due?" every turn, and a server cancels most of its timeouts
 * before they fire (as_handle_cancel() removes a timer at once, so idle
 * timeouts do not pile up as dead entries).
 *
 * A heap does not keep order between equal keys on its own, so each push
 * stamps the node with a sequence number and the heap orders by
 * (when, seq): timers due at the same instant leave in the order they were
 * pushed, as loop.h promises.  libuv does the same.
 *
 * The heap is intrusive: the caller embeds an as__heap_node in its own
 * struct (the loop's as_handle) and the heap keeps pointers to the nodes.
 * Each node knows its place in the array, which is what makes removing an
 * arbitrary node O(log n) instead of a search.  No allocation per entry;
 * the array doubles when full and is freed by as__heap_destroy().
 *
 * Lifetimes: the heap is a plain struct owned by whoever embeds it.  A
 * node belongs to its caller; while held (as__heap_holds()) it must stay
 * where it is and may not be freed.
 */
#ifndef AS_HEAP_H
#define AS_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define AS__HEAP_NONE SIZE_MAX

typedef struct as__heap_node {
    double when;  /* the deadline, set by as__heap_push() */
    uint64_t seq; /* push order, the tie-break; set by as__heap_push() */
    size_t index; /* place in the heap's array, or AS__HEAP_NONE */
} as__heap_node;

typedef struct as__heap {
    as__heap_node **nodes; /* nodes[0] is the earliest */
    size_t len, cap;
    uint64_t next_seq;
} as__heap;

/* Empty; allocates nothing. */
static inline void as__heap_init(as__heap *h)
{
    h->nodes = NULL;
    h->len = h->cap = 0;
    h->next_seq = 0;
}

/* Free the array.  The heap must be empty (remove what it holds first). */
void as__heap_destroy(as__heap *h);

/* A node not in any heap, with no deadline (when = 0).  seq is left as it
 * is: as__heap_push() sets it. */
static inline void as__heap_node_init(as__heap_node *n)
{
    n->when = 0;
    n->index = AS__HEAP_NONE;
}

/* Whether n is in a heap now. */
static inline int as__heap_holds(const as__heap_node *n)
{
    return n->index != AS__HEAP_NONE;
}

/* The earliest node (ties: the first pushed), or NULL when empty. */
static inline as__heap_node *as__heap_top(const as__heap *h)
{
    return h->len > 0 ? h->nodes[0] : NULL;
}

/* Add n, not held, due at `when`, after every node already held with the
 * same deadline.  Returns 0, or -ENOMEM: n is not added (and keeps its old
 * when and seq).  O(log n), amortised. */
int as__heap_push(as__heap *h, as__heap_node *n, double when);

/* Take n, which h holds, out of h.  O(log n); never fails. */
void as__heap_remove(as__heap *h, as__heap_node *n);

#endif /* AS_HEAP_H */
