/*
 * locks.h - Semaphore and Event: tasks waiting on each other.
 *
 * Each one is asyncio's (asyncio/locks.py), built from futures and the
 * loop only:
 *
 *   as_semaphore_*             asyncio.Semaphore
 *   as_event_*                 asyncio.Event
 *
 * The two are twins: a count or a flag, and a list of the futures waiting
 * for it to change.  An acquire or a wait returns a future the caller owns
 * (one reference), and never completes it in a way you could observe
 * synchronously: its done callbacks run on a later turn (future.h).  A
 * waiting acquire or wait has a canceller (future.h), so as_future_cancel()
 * on it, or cancelling the task that awaits it, takes it out of the list at
 * once.
 *
 * Lifetimes:
 *   1. A semaphore or an event is not reference counted: it has one owner,
 *      its creator, who ends it with _free() (there is no _ref).  _free()
 *      cancels the futures still waiting on it.  Those futures, and their
 *      callbacks, may outlive it: nothing in them points back to it once
 *      they have left its list.
 *   2. Each holds a reference to the loop (loop.h rule 1) until it is
 *      freed.
 *
 * NULL follows the rule in asyncstreams.h: a void call does nothing, an
 * int call returns AS_EINVAL, a truth value or a count is 0, a future is
 * NULL.
 */
#ifndef AS_LOCKS_H
#define AS_LOCKS_H

#include <stddef.h>
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ semaphore */

typedef struct as_semaphore as_semaphore;

/**
 * Create a semaphore with `value` permits and store it in *out.  Returns 0,
 * AS_EINVAL (loop or out NULL), AS_ECLOSED (the loop is closed) or -ENOMEM;
 * on failure *out is set to NULL (if out is not NULL).
 */
int as_semaphore_new(as_loop *loop, unsigned value, as_semaphore **out);

/**
 * End the semaphore (lifetime rule 1): acquires still waiting are
 * cancelled.  NULL does nothing.
 */
void as_semaphore_free(as_semaphore *sem);

/**
 * Acquire a permit.  The returned future finishes with result NULL when the
 * permit is yours; then give it back with as_semaphore_release().
 * Acquisition is FIFO: when permits are free but others are already
 * waiting, you queue behind them.
 *
 * as_future_cancel() on a waiting acquire (which a task does when it is
 * cancelled while awaiting it) takes it out of the queue at once: it takes
 * no permit, and a permit that is free goes to the next waiter.  Once the
 * future is finished the permit is the awaiter's, and cancel does nothing:
 * a task that is cancelled after the grant but before it resumed still
 * gets the permit (task.h: an outcome that has arrived is delivered), and
 * gives it back on its cleanup path.
 * Returns NULL if sem is NULL or freed, the loop is closed, or memory ran
 * out.
 */
as_future *as_semaphore_acquire(as_semaphore *sem);

/**
 * Give a permit back, and grant it to exactly one waiter if any (the
 * longest waiting).  Like asyncio.Semaphore (not BoundedSemaphore), it may
 * raise the count above the initial value.  Returns 0, AS_EINVAL (NULL) or
 * AS_ESTATE (the count would overflow).
 */
int as_semaphore_release(as_semaphore *sem);

/** 1 if an acquire would have to wait (no permit, or others waiting), 0 if
 *  not (or sem is NULL). */
int as_semaphore_locked(const as_semaphore *sem);

/** Permits free right now (0 if sem is NULL). */
unsigned as_semaphore_value(const as_semaphore *sem);

/** Acquires waiting in the queue (0 if sem is NULL). */
size_t as_semaphore_waiting(const as_semaphore *sem);

/* ------------------------------------------------------------ event */

typedef struct as_event as_event;

/**
 * Create an event, initially clear, and store it in *out.  Returns 0,
 * AS_EINVAL (loop or out NULL), AS_ECLOSED (the loop is closed) or -ENOMEM;
 * on failure *out is set to NULL (if out is not NULL).
 */
int as_event_new(as_loop *loop, as_event **out);

/** End the event (lifetime rule 1): waits still pending are cancelled.
 *  NULL does nothing. */
void as_event_free(as_event *ev);

/** A future that finishes with result NULL once the event is set (at once if
 *  it is set now).  NULL if ev is NULL or freed, the loop is closed, or
 *  memory ran out. */
as_future *as_event_wait(as_event *ev);

/** Set the event: every waiting future finishes.  Setting it again does
 *  nothing; so does NULL. */
void as_event_set(as_event *ev);

/** Clear the event: later waits wait.  NULL does nothing. */
void as_event_clear(as_event *ev);

/** 1 while the event is set, 0 if not (or ev is NULL). */
int as_event_is_set(const as_event *ev);

#ifdef __cplusplus
}
#endif
#endif /* AS_LOCKS_H */
