/*
 * ring.h - a FIFO in an array used as a ring (internal, not installed).
 *
 * The loop's ready and end-of-turn queues (loop.c) and a write queue's
 * pieces (writeq.c) are rings: every callback the loop runs and every piece
 * a transport sends goes in at the back and out at the front.
 *
 *      items:  [ e f . . a b c d ]       cap = 8, head = 4, len = 6
 *                        ^ oldest      (a is popped first, f was pushed last)
 *
 * The capacity is a power of two, so an index wraps with one AND instead
 * of a division.
 *
 * The ring holds elements of any one type: each function takes the
 * element's size, which the caller gives as sizeof, a constant.  The
 * functions are static inline, so that constant folds into the address
 * arithmetic: a push or a pop compiles to the same few instructions as a
 * ring written for that one type, with no call.  Only growing is a call
 * (as__ring_grow(), out of line on purpose: the hot path stays small).
 *
 * Costs: push and pop O(1) (amortised: the array doubles when full, copying
 * what it holds once); no allocation once warm; the array never shrinks
 * until as__ring_destroy().  The first array is AS__RING_FIRST_BYTES long:
 * 32 of the loop's handle pointers, 8 of a write queue's pieces (a
 * transport's queue is per connection, so its first array stays small).
 *
 * Lifetimes: a ring is a plain struct owned by whoever embeds it; its
 * array is the ring's.  A pointer from as__ring_at() or _front() is valid
 * until the ring next grows (a push) or is destroyed.  Elements
 * are copied bytes: the ring frees no element, only its array.
 */
#ifndef AS_RING_H
#define AS_RING_H

#include <errno.h>
#include <stddef.h>
#include <string.h>

typedef struct as__ring {
    void *items; /* cap elements of the owner's type, or NULL */
    size_t cap;  /* 0 or a power of two */
    size_t head; /* index of the oldest element (< cap) */
    size_t len;  /* elements held */
} as__ring;

/* Bytes in the first array a ring allocates (rounded down to a power of
 * two elements, at least one). */
#define AS__RING_FIRST_BYTES 256

/* Empty; allocates nothing. */
static inline void as__ring_init(as__ring *r)
{
    r->items = NULL;
    r->cap = r->head = r->len = 0;
}

/* Free the array; the ring is empty again.  Elements still held are simply
 * forgotten: an owner whose elements own something empties it first. */
void as__ring_destroy(as__ring *r);

/* Double the array (or make the first), unwrapping it oldest first.
 * Returns 0 or -ENOMEM (the ring unchanged).  Called by the functions
 * below; there is no need to call it directly. */
int as__ring_grow(as__ring *r, size_t size);

/* The i-th oldest element, 0 <= i < r->len. */
static inline void *as__ring_at(const as__ring *r, size_t i, size_t size)
{
    return (char *)r->items + ((r->head + i) & (r->cap - 1)) * size;
}

/* The oldest element; r->len > 0.  Cheaper than as__ring_at(r, 0, size):
 * head is already in range. */
static inline void *as__ring_front(const as__ring *r, size_t size)
{
    return (char *)r->items + r->head * size;
}

/* Room for one more element, so that a caller with a second step that can
 * fail can fail before anything is queued.  Returns 0 or -ENOMEM. */
static inline int as__ring_reserve(as__ring *r, size_t size)
{
    return r->len < r->cap ? 0 : as__ring_grow(r, size);
}

/* Copy the element at elem to the back.  Returns 0, or -ENOMEM when the
 * ring cannot grow (nothing added).  The element is passed by address and
 * copied, rather than a slot handed back to fill in, so the caller has no
 * NULL to test: with a constant size the memcpy() is one or two moves. */
static inline int as__ring_push(as__ring *r, const void *elem, size_t size)
{
    if (r->len == r->cap && as__ring_grow(r, size) < 0)
        return -ENOMEM;
    memcpy(as__ring_at(r, r->len, size), elem, size);
    r->len++;
    return 0;
}

/* Drop the oldest element; r->len > 0.  Read it (as__ring_front()) first. */
static inline void as__ring_pop(as__ring *r)
{
    r->head = (r->head + 1) & (r->cap - 1);
    r->len--;
}

#endif /* AS_RING_H */
