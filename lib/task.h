/*
 * task.h - hand-compiled coroutines: what `await` compiles to.
 *
 * A Python coroutine
 *
 *      async def fetch():
 *          await asyncio.sleep(1)
 *          return 42
 *
 * is compiled into a state machine: a frame that holds the locals and the
 * place to resume, and a function that runs from that place to the next
 * `await`.  A task here is exactly that machine, written by hand:
 *
 *   - the *state* is a struct you define; its `pc` field says where to
 *     resume, and every local that must survive an await lives in it (a C
 *     local variable does not: the step function returns at each await);
 *   - the *step function* runs from `pc` to the next await, calls
 *     as_task_await(task, future) and returns AS_STEP_AWAIT; or it finishes
 *     with as_task_return() / as_task_fail() and returns AS_STEP_DONE;
 *   - when the awaited future completes, the task calls the step function
 *     again, and as_task_error() / as_task_result() give the outcome of the
 *     await, as `await` returns a value or raises in Python.
 *
 * The task's own completion is an ordinary future (as_task_future()), so
 * everything that works on futures (gather, wait_for, run_until_complete,
 * another task's await) works on tasks.
 *
 *      new --call_soon--> RUNNING --as_task_await--> WAITING
 *                            ^                          |
 *                            +---- awaited future done -+
 *                            |
 *                            +--as_task_return/fail--> DONE (future finished)
 *
 * Cancellation (as_task_cancel(), or as_future_cancel() on the task's
 * future, which is the same call: the task is its future's canceller)
 * cancels the future the task is waiting on, so the step function is resumed
 * with as_task_error() == AS_ECANCELLED.  It may clean up and propagate it
 * (the task ends CANCELLED) or catch it and go on (the task is not
 * cancelled), as `except CancelledError` does in Python.  A task cancelled
 * before its first step never runs its step function, as a coroutine that
 * never started cannot catch anything.
 *
 * A cancel never throws away an outcome that has already arrived.  If the
 * awaited future is done when the cancel comes (its callback is on its way
 * but the task has not resumed), the step sees that outcome, and the
 * cancellation is delivered at the task's next await, which is cancelled at
 * once; a task that returns instead ends CANCELLED.  asyncio here resumes
 * the coroutine with CancelledError and drops the outcome, which loses a
 * line that was read or a semaphore permit that was granted; awaiting a
 * future that is already done does not suspend in Python at all, so the
 * rule here is what a Python coroutine sees whenever no suspension happened.
 *
 * The macros at the end of this file let a step function read top to
 * bottom; each one's expansion is given next to it.
 *
 * Lifetimes:
 *   1. as_task_new() returns (if asked) one reference, the caller's; give it
 *      back with as_task_unref().  The task holds itself alive while it has a
 *      step scheduled or a future to wake it, so a task whose caller dropped
 *      its reference runs to the end ("fire and forget").
 *   2. A task waits on a future without holding a reference to it: whatever
 *      will complete the future (a timer, a reader, another task) keeps it
 *      alive.  If the awaited future is freed without ever completing (its
 *      producer was closed: the loop was closed), the task can never resume;
 *      once nobody else holds it, it is freed with its state.  So abandoned
 *      tasks leak nothing, and cycles cannot form.
 *   3. as_task_await() takes over the caller's reference to the future (so
 *      `as_task_await(t, as_sleep(loop, 1))` leaks nothing); pass
 *      as_future_ref(f) to keep your own.
 *   4. The state is the task's from a successful as_task_new() on, and is
 *      freed with state_destroy (may be NULL) when the task is freed, which
 *      is after its last step.  If as_task_new() fails, it stays the caller's.
 *   5. The future from as_task_future() is owned by the task; as_future_ref()
 *      it to keep it after the task is gone.  If the task fails and nobody
 *      looks at the error, freeing that future reports "Future exception was
 *      never retrieved" to the loop's exception handler (future.h, rule 6).
 *   6. During a step, as_task_awaited() is the future that resumed it; the
 *      task holds a reference to it until the step returns.  Take its result
 *      (as_task_take_result()) to keep it; otherwise it is freed with the
 *      future.
 *
 * Conventions (asyncstreams.h): tasks are refcounted, and a NULL task gets
 * the NULL answers listed there; as_task_error(NULL) is AS_EINVAL.  The
 * calls returning an as_step return AS_STEP_DONE for a NULL task, and
 * as_task_await() and as_task_return() still free what they were handed.
 *
 * Awaiting a future that is already done does not suspend: the next step
 * runs at once with its outcome, as `await` on a finished future does not
 * yield in Python (a read the buffer can answer returns a finished future,
 * so a task reading a buffered stream pays no loop turn per read).  After
 * 64 such resumes in a row the task waits for a loop turn anyway, so it
 * cannot starve the loop.  A pending cancellation always takes the ordinary
 * path.
 *
 * Cost: a step is one call through a function pointer.  An await of a
 * pending future registers the task as a waiter on it: when it completes,
 * the future posts the task's own wake handle (made once, with the task)
 * to the ready queue, where a done callback would have gone, so an await
 * allocates nothing (the registration is the node a future keeps inline for
 * its first callback).  An await of a finished future is neither.
 * Cancelling through the future is one more indirect call.
 */
#ifndef AS_TASK_H
#define AS_TASK_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct as_task as_task;

/** What a step function returns. */
typedef enum as_step {
    AS_STEP_DONE = 0, /**< finished: as_task_return() or as_task_fail() was called */
    AS_STEP_AWAIT = 1 /**< suspended: as_task_await() was called */
} as_step;

/**
 * A step function: run the coroutine from state's resume point to its next
 * await or to its end.  Return the value of as_task_await(),
 * as_task_return(), as_task_fail() or as_task_propagate().
 */
typedef as_step (*as_task_step_fn)(as_task *task, void *state);

/**
 * Create a task on loop and schedule its first step with
 * as_loop_call_soon(): it never runs synchronously.  On success returns 0 and
 * stores a reference in *out (lifetime rule 1); out may be NULL, unlike
 * other constructors' (fire and forget: the task holds itself).  Returns
 * AS_EINVAL (no loop or no step), AS_ECLOSED or -ENOMEM, with *out set to
 * NULL; on failure the state stays the caller's and state_destroy is not
 * called.
 */
int as_task_new(as_loop *loop, as_task_step_fn step, void *state,
                as_destroy_fn state_destroy, as_task **out);

/** Add a reference; returns task. */
as_task *as_task_ref(as_task *task);

/** Drop a reference.  NULL is ignored.  Dropping the last one of a task that
 *  is still running does not stop it (lifetime rule 1). */
void as_task_unref(as_task *task);

/** The task's completion future, owned by the task (lifetime rule 5). */
as_future *as_task_future(const as_task *task);

/** The loop the task runs on. */
as_loop *as_task_loop(const as_task *task);

/** True once the task's future is done. */
int as_task_done(const as_task *task);

/**
 * Request cancellation, as asyncio's Task.cancel(); as_future_cancel() on
 * as_task_future() calls this.  If the task waits on a pending future, that
 * future is cancelled with as_future_cancel() (so a task, gather or wait_for
 * waited on is cancelled in turn, through its canceller) and the step
 * function is resumed with as_task_error() == AS_ECANCELLED once it has
 * finished cancelling.  If the awaited future is already done, its outcome
 * is delivered and the cancellation waits for the next await (see above).
 * If the task waits on nothing (not started yet, or its future was freed),
 * the next step receives AS_ECANCELLED.  message (may be NULL) is copied and
 * becomes as_task_error_message().
 * Returns 1 if the request was made, 0 if the task is already done (a
 * finished task is not affected).
 */
int as_task_cancel(as_task *task, const char *message);

/* ------------------------------------------------------------ in a step */

/**
 * Suspend the task until future is done, taking over the caller's reference
 * to it (lifetime rule 3).  Returns AS_STEP_AWAIT, which the step function
 * returns.  If future is NULL (the call that should have made it failed),
 * the task resumes on the next turn with as_task_error() == -ENOMEM.
 * Awaiting twice in one step resumes it with AS_ESTATE.
 */
as_step as_task_await(as_task *task, as_future *future);

/**
 * The outcome of the await that resumed this step: 0 if the awaited future
 * finished with a result, its error code if it failed, AS_ECANCELLED if it
 * was cancelled or the task is being cancelled.  0 in the first step.
 */
int as_task_error(const as_task *task);

/** The message that goes with as_task_error() (never NULL when it is not 0),
 *  or NULL. */
const char *as_task_error_message(const as_task *task);

/** The future that resumed this step, or NULL (first step, or an await that
 *  could not be made).  Valid until the step returns (lifetime rule 6). */
as_future *as_task_awaited(const as_task *task);

/** as_future_result() of the awaited future, or NULL. */
void *as_task_result(const as_task *task);

/** as_future_take_result() of the awaited future: the caller owns it. */
void *as_task_take_result(as_task *task);

/**
 * Finish the task with result (freed with destroy when its future is).
 * Returns AS_STEP_DONE.  If a cancellation is still waiting to be delivered
 * (requested during this step, or after the last await's outcome arrived),
 * the task ends CANCELLED as in asyncio, and result is freed at once; also
 * if the task's future was completed behind its back.
 */
as_step as_task_return(as_task *task, void *result, as_destroy_fn destroy);

/**
 * Finish the task with an error (message may be NULL).  AS_ECANCELLED ends
 * the task CANCELLED, as raising CancelledError does.  A code >= 0 is a
 * programming error and becomes AS_EINVAL.  Returns AS_STEP_DONE.
 */
as_step as_task_fail(as_task *task, int code, const char *message);

/**
 * Finish the task with the error that resumed this step: what happens in
 * Python when an exception from `await` is not caught.  The awaited
 * future's error moves to the task's future whole, with as_future_transfer():
 * code, message and detail (the partial bytes of an incomplete read reach
 * whoever awaits the task); the awaited future keeps its code and message
 * but no longer holds the detail.  A cancellation ends the task CANCELLED
 * with the cancel message.  Returns AS_STEP_DONE.
 */
as_step as_task_propagate(as_task *task);

/* ------------------------------------------------------------ macros */

/*
 * The macro layer: a step function in the shape of the coroutine it stands
 * for.  `s` is a pointer to your state struct, which must have an `int pc`
 * field set to 0 before the first step.  This:
 *
 *      static as_step hello(as_task *t, void *p)
 *      {
 *          struct hello_state *s = p;
 *          AS_TASK_BEGIN(s);
 *          AS_AWAIT(t, s, as_sleep(as_task_loop(t), 0.1));
 *          AS_TASK_CHECK(t);
 *          AS_TASK_RETURN(t, NULL, NULL);
 *          AS_TASK_END(t);
 *      }
 *
 * expands to this (the 17 is the line the AS_AWAIT is on):
 *
 *      static as_step hello(as_task *t, void *p)
 *      {
 *          struct hello_state *s = p;
 *          switch (s->pc) { case 0:;
 *          do { s->pc = 17; return as_task_await(t, as_sleep(...));
 *               case 17:; } while (0);
 *          do { if (as_task_error(t) != 0) return as_task_propagate(t); } while (0);
 *          return as_task_return(t, NULL, NULL);
 *          } return as_task_return(t, NULL, NULL);
 *      }
 *
 * The first call jumps to `case 0`; each AS_AWAIT records its line in pc and
 * returns; the next call jumps straight back behind it (Duff's device, as in
 * protothreads).  The rules follow from the expansion:
 *   - locals declared in the function do not survive an AS_AWAIT: keep them
 *     in the state struct;
 *   - at most one AS_AWAIT per source line, since the line is the label;
 *   - no AS_AWAIT inside a `switch` of your own, whose `case` would capture
 *     the label (loops and ifs are fine).
 */
#define AS_TASK_BEGIN(s)                                                       \
    switch ((s)->pc) {                                                         \
    case 0:;

#define AS_AWAIT(t, s, future)                                                 \
    do {                                                                       \
        (s)->pc = __LINE__;                                                    \
        return as_task_await((t), (future));                                   \
    case __LINE__:;                                                            \
    } while (0)

/* Propagate the error (or cancellation) the last await resumed with. */
#define AS_TASK_CHECK(t)                                                       \
    do {                                                                       \
        if (as_task_error(t) != 0)                                             \
            return as_task_propagate(t);                                       \
    } while (0)

#define AS_TASK_RETURN(t, result, destroy)                                     \
    return as_task_return((t), (result), (destroy))

#define AS_TASK_FAIL(t, code, message)                                         \
    return as_task_fail((t), (code), (message))

/* Falling off the end returns NULL, as a Python function returns None. */
#define AS_TASK_END(t)                                                         \
    }                                                                          \
    return as_task_return((t), NULL, NULL)

#ifdef __cplusplus
}
#endif
#endif /* AS_TASK_H */
