/*
 * future.h - a value that will exist later.
 *
 * A future is a small state machine:
 *
 *      PENDING --set_result--> FINISHED (with a result pointer)
 *         |    --set_error---> FINISHED (with an error code and message)
 *         +----cancel--------> CANCELLED (error code AS_ECANCELLED)
 *
 * Once it leaves PENDING it never changes again.  When it does, each done
 * callback is scheduled with as_loop_call_soon(): none runs synchronously,
 * not even one added after the future is done.
 *
 * Lifetimes:
 *   1. as_future_new() returns a future with one reference, the caller's.
 *      as_future_ref() / as_future_unref() count references; the future is
 *      freed at zero.  A scheduled done callback holds a reference until it
 *      has run, so a future always outlives its callbacks.
 *   2. The result pointer is owned by the future and freed with the destroy
 *      function given to as_future_set_result(), when the future is freed,
 *      unless the result was taken with as_future_take_result().
 *   3. The error message and detail are owned by the future likewise; the
 *      message is copied on set_error, the detail is adopted with its destroy
 *      function (for example the partial bytes of an incomplete read).
 *   4. A future holds a reference to its loop (see loop.h, rule 1).
 *   5. A canceller's userdata (as_future_set_canceller()) is not owned by
 *      the future: the canceller's owner keeps it alive until the future is
 *      done, when the canceller is dropped.
 *   6. A future that is freed holding an error nobody looked at (through
 *      as_future_error() or a done callback that called it) reports
 *      "Future exception was never retrieved" to the loop's exception
 *      handler, as asyncio does.  Cancellation is not reported.
 *
 * Conventions (asyncstreams.h): futures are refcounted, and a NULL future
 * gets the NULL answers listed there: as_future_done(NULL) and
 * as_future_cancel(NULL) are 0, as_future_state_of(NULL) is
 * AS_FUTURE_PENDING, as_future_error(NULL) AS_EINVAL, and a result given
 * to as_future_set_result(NULL, ...) stays the caller's, as on any failure.
 */
#ifndef AS_FUTURE_H
#define AS_FUTURE_H

#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct as_future as_future;

typedef enum as_future_state {
    AS_FUTURE_PENDING,
    AS_FUTURE_FINISHED,
    AS_FUTURE_CANCELLED
} as_future_state;

/** A done callback: the future first, then the caller's userdata. */
typedef void (*as_future_cb)(as_future *future, void *userdata);

/**
 * How to cancel the work behind a future (see as_future_set_canceller()).
 * Returns 1 if cancellation was requested, 0 if there was nothing to cancel.
 */
typedef int (*as_future_canceller_fn)(as_future *future, const char *message,
                                      void *userdata);

/**
 * Create a pending future on loop.  Returns 0 and stores it in *out (one
 * reference, the caller's: lifetime rule 1); or AS_EINVAL (loop or out
 * NULL), AS_ECLOSED (the loop is closed) or -ENOMEM, with *out set to NULL.
 */
int as_future_new(as_loop *loop, as_future **out);

/** Add a reference; returns future. */
as_future *as_future_ref(as_future *future);

/** Drop a reference; the future is freed at zero.  NULL is ignored. */
void as_future_unref(as_future *future);

/** The loop the future belongs to. */
as_loop *as_future_loop(const as_future *future);

/** The future's state: PENDING, FINISHED (result or error) or CANCELLED. */
as_future_state as_future_state_of(const as_future *future);

/** True once the future is FINISHED or CANCELLED. */
int as_future_done(const as_future *future);

/** True if the future was cancelled. */
int as_future_cancelled(const as_future *future);

/**
 * Finish with a result.  The future adopts `result` and frees it with
 * destroy (which may be NULL).  Returns 0, or AS_ESTATE if the future is
 * already done (asyncio's InvalidStateError); the result is then NOT
 * adopted and stays the caller's.
 */
int as_future_set_result(as_future *future, void *result, as_destroy_fn destroy);

/**
 * Finish with an error.  code must be negative (a negated errno or AS_E*);
 * message may be NULL (as_strerror(code) is then used) and is copied.
 * Returns 0, AS_EINVAL (code >= 0) or AS_ESTATE (already done).
 */
int as_future_set_error(as_future *future, int code, const char *message);

/**
 * Like as_future_set_error(), also adopting `detail` (freed with
 * detail_destroy): structured data about the error, such as
 * as_incomplete_read for AS_EINCOMPLETE.  On failure detail stays the
 * caller's.
 */
int as_future_set_error_detail(as_future *future, int code, const char *message,
                               void *detail, as_destroy_fn detail_destroy);

/**
 * Cancel the future: if pending, it becomes CANCELLED with error
 * AS_ECANCELLED and message `message` (may be NULL), its callbacks are
 * scheduled, and 1 is returned.  If already done, returns 0.  A future with
 * a canceller asks it instead (see as_future_set_canceller()).
 */
int as_future_cancel(as_future *future, const char *message);

/**
 * Give the future a canceller: the work behind it (a task, a gather, a
 * timeout) knows how to stop, and the future alone does not.  While the
 * future is pending, as_future_cancel() calls fn(future, message, userdata)
 * instead of moving to CANCELLED, and returns what fn returns; fn requests
 * the stop, and the work later completes the future, normally with
 * as_future_set_cancelled().  This is asyncio's Task.cancel() overriding
 * Future.cancel(), and like it, fn runs synchronously inside
 * as_future_cancel().  The canceller is dropped when the future completes;
 * fn NULL removes it; a second call replaces it.
 * Returns 0, AS_EINVAL (future NULL) or AS_ESTATE (already done).
 */
int as_future_set_canceller(as_future *future, as_future_canceller_fn fn,
                            void *userdata);

/**
 * Finish as CANCELLED, bypassing any canceller: what the work behind a
 * future calls once it has actually stopped.  Returns 0, or AS_ESTATE if
 * already done.
 */
int as_future_set_cancelled(as_future *future, const char *message);

/**
 * Complete dst with src's outcome, moving what src owns: its result with
 * its destroy function, or its error code, message and detail; a cancelled
 * src cancels dst.  Nothing is copied or freed twice: afterwards src keeps
 * its state but no longer holds the moved result or detail (its error counts
 * as retrieved).  If the message cannot be copied (out of memory), dst gets
 * the code's own text instead, so a transfer never fails for want of memory.
 * For combinators that pass an inner future's value on.
 * Returns 0, AS_EINVAL (NULL or dst == src), or AS_ESTATE (src pending or
 * dst already done; nothing moves).
 */
int as_future_transfer(as_future *dst, as_future *src);

/**
 * The outcome: 0 if FINISHED with a result, the error code if FINISHED with
 * an error, AS_ECANCELLED if cancelled, AS_ESTATE if still pending.
 * Calling it marks an error as retrieved (lifetime rule 6).
 */
int as_future_error(as_future *future);

/** The error message (never NULL once done with an error), or NULL. */
const char *as_future_error_message(const as_future *future);

/** The error detail given to as_future_set_error_detail(), or NULL. */
void *as_future_error_detail(const as_future *future);

/** The result, still owned by the future; NULL if none. */
void *as_future_result(const as_future *future);

/**
 * Take ownership of the result: returns it, and the future will no longer
 * free it.  NULL if the future has no result.
 */
void *as_future_take_result(as_future *future);

/**
 * Call fn(future, userdata) on the loop once the future is done (scheduled
 * at once if it already is).  destroy(userdata) runs after fn, or when the
 * callback is removed, or when it can no longer run (the loop closed).
 * Returns 0, AS_ECLOSED or -ENOMEM; on failure neither fn nor destroy runs.
 */
int as_future_add_done_callback(as_future *future, as_future_cb fn,
                                void *userdata, as_destroy_fn destroy);

/**
 * Remove every not-yet-scheduled done callback equal to (fn, userdata);
 * their destroy hooks run.  Returns how many were removed.
 */
int as_future_remove_done_callback(as_future *future, as_future_cb fn,
                                   void *userdata);

/**
 * Run the loop until future is done.  Returns the future's outcome as
 * as_future_error() does, or AS_ESTATE if the loop was already running or
 * was stopped before the future completed, or AS_ECLOSED.
 */
int as_loop_run_until_complete(as_loop *loop, as_future *future);

#ifdef __cplusplus
}
#endif
#endif /* AS_FUTURE_H */
