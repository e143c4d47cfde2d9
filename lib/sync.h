/*
 * sync.h - the tools around tasks: sleep, gather, wait_for.
 *
 * Each one is asyncio's (asyncio/tasks.py), built from futures and the loop
 * only:
 *
 *   as_sleep(loop, d)          asyncio.sleep(d)
 *   as_gather(loop, fs, n, rx) asyncio.gather(*fs, return_exceptions=rx)
 *   as_wait_for(loop, f, t)    asyncio.wait_for(f, t)  (3.12+: asyncio.timeout)
 *
 * Semaphore and Event, asyncio/locks.py, are in locks.h.
 *
 * Every call that returns a future returns one the caller owns (one
 * reference), and never completes it synchronously in a way you could
 * observe: its done callbacks run on a later turn (future.h).  The futures
 * of gather and wait_for have a canceller (future.h), so
 * as_future_cancel() on them reaches the work behind them.
 *
 * A NULL loop is refused, never followed: each call here returns NULL (and
 * still takes over the futures given, lifetime rule 1).
 *
 * Lifetimes:
 *   1. as_gather() and as_wait_for() take over the references you pass them,
 *      so `as_wait_for(loop, as_sleep(loop, 5), 1)` leaks nothing; pass
 *      as_future_ref(f) to keep your own.  They wait on those futures
 *      without holding them (as tasks do, task.h rule 2): whatever completes
 *      a future keeps it alive.  One that is freed without completing can
 *      never let them finish; nothing leaks, the result never comes.
 *   2. as_wait_for() passes the inner outcome on by moving it
 *      (as_future_transfer()): its future's result is the inner result,
 *      with the inner destroy function, and the inner future no longer
 *      holds it; an error moves with its detail.  as_gather()'s result is
 *      an as_gather_result listing the children, which keep their own
 *      results: children of different types do not fit one C array of
 *      values, and each child's destroy function stays with it.
 *   3. A sleep's timer is cancelled when its future is, so cancelling a long
 *      sleep frees its timer at once.
 */
#ifndef AS_SYNC_H
#define AS_SYNC_H

#include <stddef.h>
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A future that finishes with result NULL after `delay` seconds (a delay
 * <= 0 finishes it on the next turn or so, after the callbacks already
 * ready).  A NaN delay gives a future failed with AS_EINVAL.  Returns NULL if
 * memory ran out or the loop is closed.
 */
as_future *as_sleep(as_loop *loop, double delay);

/** as_gather()'s result: the children, each done, in the order given. */
typedef struct as_gather_result {
    size_t count;
    as_future **futures; /**< count futures, each referenced by the result */
} as_gather_result;

/**
 * Wait for all of futures[0..count-1] (lifetime rule 1: their references are
 * taken over).  The returned future finishes with an as_gather_result (owned
 * by the future) once all are done.
 *
 * With return_exceptions == 0, the first child that fails fails the gather
 * at once with that child's error, moved with as_future_transfer(): code,
 * message and detail (the child keeps its code and message); a child that
 * is cancelled fails it with AS_ECANCELLED (FINISHED, not CANCELLED, as
 * asyncio sets CancelledError as the gather's exception).  The other
 * children are not cancelled and run on, as in asyncio.  With
 * return_exceptions != 0 every outcome, error or not, is in the result.
 *
 * as_future_cancel() on the gather cancels every child not yet done (each
 * through its own canceller) and returns 1 if any was; the gather then ends
 * CANCELLED once they have all finished.  If none could be cancelled, it
 * returns 0 and the gather finishes as it would have.
 *
 * count == 0 gives a future finished with an empty result.  A NULL entry, a
 * NULL array with count > 0, or a future from another loop fails it with
 * AS_EINVAL, and the futures given are cancelled (nobody could see them
 * finish).  Returns NULL only if memory ran out or the loop is closed.
 */
as_future *as_gather(as_loop *loop, as_future *const *futures, size_t count,
                     int return_exceptions);

/**
 * Wait for future (taken over, rule 1) for at most `timeout` seconds, as
 * asyncio.wait_for in Python 3.12+.  The returned future
 *   - finishes with the inner future's result, moved (rule 2), if the inner
 *     one finished with a result, also when that happens in the very turn
 *     the timeout fires, or when it returns a result after being cancelled;
 *   - fails with the inner future's error, moved with its detail, if it
 *     failed;
 *   - on timeout, cancels the inner one (as_future_cancel(), so a task
 *     behind it is cancelled), waits until it has finished cancelling, then
 *     fails with AS_ETIMEOUT;
 *   - ends CANCELLED if the inner one was cancelled by someone else, or if
 *     the wait_for itself was cancelled (its canceller cancels the inner
 *     one, and it ends once the inner one has finished).
 * timeout <= 0 cancels at once unless the inner future is already done;
 * timeout == INFINITY waits as long as it takes; NaN (or a future of
 * another loop) fails it with AS_EINVAL and cancels the future given.
 * A NULL future fails it with -ENOMEM (the call meant to make it failed).
 * Returns NULL only if memory ran out or the loop is closed.
 *
 * Cancel-safety is the inner operation's: a read that is cancelled must
 * consume nothing (the reader guarantees it), so the next read gets the
 * bytes.
 */
as_future *as_wait_for(as_loop *loop, as_future *future, double timeout);

#ifdef __cplusplus
}
#endif
#endif /* AS_SYNC_H */
