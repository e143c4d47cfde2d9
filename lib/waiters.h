/*
 * waiters.h - the futures waiting for one condition (internal, not
 * installed).
 *
 * A semaphore's acquires, an event's waits, a transport's drains and
 * flushes, a server's wait_closed() futures: each is a list of futures
 * that some later change (a permit given back, the event set, the queue
 * below its low-water mark, the last connection gone) completes.  This
 * module is that list, once:
 *
 *      as__waiters_add()       a new pending future, at the back
 *      as__waiters_wake_one()  complete the oldest still pending
 *      as__waiters_wake_all()  complete every one, oldest first
 *      as__waiters_free()      cancel every one (the owner is going away)
 *
 * Each waiter is a small record that is the userdata of a done callback
 * put on its future before the future is handed out (so it runs before
 * anyone else's), and of the future's canceller.  So a waiter that is
 * cancelled leaves the list at once, from inside as_future_cancel(): it
 * is never woken, never counted, never holds memory until the next wake.
 * One whose future is completed by someone else (set_result by hand)
 * leaves when its done callback runs, a turn later, or when a wake passes
 * it, whichever comes first.  A cancel and the done callback run the
 * owner's `left` hook, so a semaphore can hand on a permit the waiter will
 * never take; a wake does not, as it is already handing out.
 *
 * Completing a waiter's future schedules its callbacks, as always
 * (future.h); nothing runs synchronously while the loop is open.
 *
 * Costs: add is one future, one small block from the loop's cache and one
 * done callback (the future's inline one); wake_one and cancel are O(1)
 * (wake_one also drops the waiters completed by someone else that it
 * passes); as__waiters_pending() is O(n) in the worst case and stops at
 * the first pending waiter, which is nearly always the first.
 *
 * Lifetimes:
 *   1. The list is a plain struct owned by whoever embeds it.  All zero is
 *      an empty list with no hook; as__waiters_init() sets one.
 *   2. A record holds a reference to its future and is freed when its done
 *      callback is released (after it ran, or when the loop can no longer
 *      run it).  Once a waiter has left the list, its record no longer
 *      points to the list: the owner may be freed while records still
 *      wait for their callbacks.
 *   3. The owner must call as__waiters_free() before its memory goes, and
 *      must not free itself from inside `left`.  Completing a future on a
 *      closed loop releases its callbacks at once, and user code may run
 *      there: an owner that wakes many waiters and might be freed by them
 *      holds a reference to itself across the call.
 */
#ifndef AS_WAITERS_H
#define AS_WAITERS_H

#include <stddef.h>
#include "future.h"

/* A waiter left without being woken by the list: cancelled, or completed
 * by someone else.  It is out of the list when this runs. */
typedef void (*as__waiters_left_fn)(void *owner);

struct as__waiter;

typedef struct as__waiters {
    struct as__waiter *head, *tail;
    size_t len;
    as__waiters_left_fn left; /* may be NULL */
    void *owner;
} as__waiters;

/* An empty list whose waiters call left(owner) when they leave on their
 * own (left may be NULL). */
void as__waiters_init(as__waiters *q, as__waiters_left_fn left, void *owner);

/* A new pending future on loop, waiting at the back of the list; the
 * caller owns the reference returned.  NULL if memory ran out or the loop
 * is closed. */
as_future *as__waiters_add(as__waiters *q, as_loop *loop);

/* Complete the oldest waiter whose future is still pending: with result
 * NULL if code is 0, else failed with code and message (as__future_fail()).
 * Returns 1 if one was woken, 0 if nobody was waiting. */
int as__waiters_wake_one(as__waiters *q, int code, const char *message);

/* Complete every waiter so, oldest first. */
void as__waiters_wake_all(as__waiters *q, int code, const char *message);

/* Cancel every waiter with message (may be NULL) without calling `left`;
 * the list is empty afterwards and holds no memory. */
void as__waiters_free(as__waiters *q, const char *message);

/* Waiters in the list, including any completed by someone else whose
 * callback has not run yet. */
size_t as__waiters_len(const as__waiters *q);

/* Nobody in the list: inline, for a hot path that usually has nobody to
 * wake and should not pay a call to find out. */
static inline int as__waiters_empty(const as__waiters *q)
{
    return q->head == NULL;
}

/* True if a waiter in the list is still pending. */
int as__waiters_pending(const as__waiters *q);

#endif /* AS_WAITERS_H */
