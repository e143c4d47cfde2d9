/*
 * task.c - a future driven by a step function: the machine `await` makes.
 *
 * The whole module is two loop callbacks and one rule.  step_cb runs the
 * first step (and any step that cannot be tied to a future); task_wake runs
 * the step after an awaited future completes: the task is a waiter on that
 * future (as__future_add_waiter(), internal.h), which posts the task's own
 * wake handle when it completes.  The rule: a step never runs
 * synchronously from a public call; it runs from the loop, as asyncio's
 * Task.__step does (design rule 1).
 *
 * Cancellation reaches the task through its future's canceller
 * (future.h): as_future_cancel() on as_task_future() is as_task_cancel().
 */
#include "task.h"
#include "errors.h"
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

struct as_task {
    unsigned refs;
    as_loop *loop;
    as_future *done;            /* the task's completion; one reference */
    as_task_step_fn step;
    void *state;
    as_destroy_fn state_destroy;

    /* Waiting: the task is a waiter on the future (as__future_add_waiter),
     * which on completion puts a reference to itself in `woke` and posts
     * `wake`.  The registration, and then the posted wake, hold a task
     * reference. */
    as_future *waiting;         /* weak: what the task waits on, or NULL */
    as_handle *wake;            /* runs task_wake(); made with the task */
    as_future *woke;            /* referenced: the future that posted wake */

    /* Valid during a step only. */
    int error;                  /* outcome of the await that resumed it */
    const char *error_message;
    as_future *awaited;         /* referenced */
    as_future *next;            /* as_task_await()'s future, adopted */
    int next_error;             /* as_task_await() could not take it */
    int awaiting;               /* as_task_await() was called */

    char *cancel_message;
    int must_cancel;            /* cancel the next step (asyncio's _must_cancel) */
    int sched_error;            /* outcome for the scheduled step */
    int scheduled;              /* step_cb is on the loop */
    int running;                /* inside step() */
    int started;                /* step() has been called once */
    int finished;               /* the task's outcome is decided */
};

static int task_canceller(as_future *future, const char *message,
                          void *userdata);

/* ------------------------------------------------------------ lifetime */

as_task *as_task_ref(as_task *t)
{
    if (t)
        t->refs++;
    return t;
}

static AS__NOINLINE void task_free(as_task *t)
{
    as_loop *loop = t->loop;

    /* Freed unfinished (lifetime rule 2): someone may still hold our future,
     * and its canceller must not point at freed memory.  AS_ESTATE if the
     * future is done already, which is fine. */
    as_future_set_canceller(t->done, NULL, NULL);
    as__handle_free(t->wake); /* not queued: a queued wake holds a ref */
    if (t->state_destroy)
        t->state_destroy(t->state);
    as_future_unref(t->next);
    as_future_unref(t->done);
    free(t->cancel_message);
    free(t);
    as__loop_obj_unref(loop);
}

void as_task_unref(as_task *t)
{
    if (t && --t->refs == 0)
        task_free(t);
}

static void step_release(void *userdata)
{
    as_task_unref(userdata);
}

static void run_step(as_task *t, int error, as_future *awaited);
static void task_wake(void *userdata);
static void task_dropped(void *userdata);

static void step_cb(void *userdata)
{
    as_task *t = userdata;
    t->scheduled = 0;
    run_step(t, t->sched_error, NULL);
}

/* Run the step from the loop on the next turn, resumed with `error`.  The
 * callback holds a reference.  Fails only if the loop refuses (closed, no
 * memory); the task then can never run again. */
static int schedule_step(as_task *t, int error)
{
    int err;

    t->sched_error = error;
    t->scheduled = 1;
    as_task_ref(t);
    err = as_loop_call_soon(t->loop, step_cb, t, step_release, NULL);
    if (err < 0) {
        t->scheduled = 0;
        assert(t->refs > 1); /* every caller holds one */
        t->refs--;
    }
    return err;
}

int as_task_new(as_loop *loop, as_task_step_fn step, void *state,
                as_destroy_fn state_destroy, as_task **out)
{
    as_task *t;
    int err;

    if (out)
        *out = NULL;
    if (!loop || !step)
        return AS_EINVAL;
    if (as_loop_is_closed(loop))
        return AS_ECLOSED;
    if (!(t = calloc(1, sizeof *t)))
        return -ENOMEM;
    if (as_future_new(loop, &t->done) < 0) {
        free(t);
        return -ENOMEM;
    }
    if (!(t->wake = as__handle_new(loop, task_wake, t, task_dropped))) {
        as_future_unref(t->done);
        free(t);
        return -ENOMEM;
    }
    err = as_future_set_canceller(t->done, task_canceller, t);
    assert(err == 0); /* a fresh future is pending */
    t->refs = 1;
    t->loop = loop;
    t->step = step;
    as__loop_obj_ref(loop);
    if ((err = schedule_step(t, 0)) < 0) {
        as_task_unref(t); /* state is still the caller's: not destroyed */
        return err;
    }
    t->state = state;
    t->state_destroy = state_destroy;
    if (out)
        *out = t;
    else
        as_task_unref(t); /* the scheduled step holds it */
    return 0;
}

as_future *as_task_future(const as_task *t)
{
    return t ? t->done : NULL;
}

as_loop *as_task_loop(const as_task *t)
{
    return t ? t->loop : NULL;
}

int as_task_done(const as_task *t)
{
    return t && as_future_done(t->done);
}

/* ------------------------------------------------------------ finishing */

/* The outcome is decided; the future completes right after, which drops
 * its canceller.  Until then `finished` makes a cancel a no-op. */
static void mark_finished(as_task *t)
{
    t->finished = 1;
}

static void finish_cancelled(as_task *t, const char *message)
{
    mark_finished(t);
    /* Not as_future_cancel(): that would ask our own canceller. */
    as_future_set_cancelled(t->done, message);
}

as_step as_task_return(as_task *t, void *result, as_destroy_fn destroy)
{
    if (!t) {
        if (result && destroy)
            destroy(result); /* taken over whatever happens */
        return AS_STEP_DONE;
    }
    if (t->finished || t->must_cancel) {
        /* asyncio: a task cancelled during its last step ends CANCELLED
         * even though the coroutine returned. */
        if (!t->finished)
            finish_cancelled(t, t->cancel_message);
        if (result && destroy)
            destroy(result);
        return AS_STEP_DONE;
    }
    mark_finished(t);
    if (as_future_set_result(t->done, result, destroy) < 0 && result && destroy)
        destroy(result); /* the future was cancelled from outside */
    return AS_STEP_DONE;
}

as_step as_task_fail(as_task *t, int code, const char *message)
{
    if (!t || t->finished)
        return AS_STEP_DONE;
    if (code >= 0) {
        code = AS_EINVAL;
        message = "as_task_fail() needs a negative error code";
    }
    if (code == AS_ECANCELLED) {
        finish_cancelled(t, message);
        return AS_STEP_DONE;
    }
    mark_finished(t);
    as__future_fail(t->done, code, message); /* keeps the code without memory */
    return AS_STEP_DONE;
}

as_step as_task_propagate(as_task *t)
{
    as_future *from;

    if (!t)
        return AS_STEP_DONE;
    from = t->awaited;
    if (t->error == 0)
        return as_task_fail(t, AS_ESTATE,
                            "as_task_propagate() with nothing to propagate");
    /* A cancellation, or an error no future carries (an await that could
     * not be made): only a code and a message to pass on. */
    if (t->finished || t->error == AS_ECANCELLED || !from ||
        as_future_error(from) != t->error)
        return as_task_fail(t, t->error, t->error_message);
    /* The awaited future's own error: move it whole, detail included (the
     * partial bytes of an incomplete read survive the trip). */
    mark_finished(t);
    /* AS_ESTATE, moving nothing, if the step completed t->done itself
     * (set_result bypasses the canceller): that is user code, so it is
     * not an assert.  The error then stays with `from`. */
    (void)as_future_transfer(t->done, from);
    return AS_STEP_DONE;
}

/* ------------------------------------------------------------ awaiting */

as_step as_task_await(as_task *t, as_future *future)
{
    if (!t) {
        as_future_unref(future); /* taken over whatever happens */
        return AS_STEP_DONE;
    }
    if (!t->running || t->finished) {
        /* Not in a step: nobody will look at this await.  Drop it. */
        as_future_unref(future);
        return AS_STEP_AWAIT;
    }
    if (t->awaiting) {
        as_future_unref(future);
        t->next_error = AS_ESTATE;
        return AS_STEP_AWAIT;
    }
    t->awaiting = 1;
    if (!future)
        t->next_error = -ENOMEM;
    else if (future == t->done || as_future_loop(future) != t->loop) {
        as_future_unref(future); /* awaiting itself would never end */
        t->next_error = AS_EINVAL;
    } else
        t->next = future;
    return AS_STEP_AWAIT;
}

/* The awaited future completed: resume with its outcome.  Drops the
 * reference the future left in `woke` and the one the wait held. */
static void task_wake(void *userdata)
{
    as_task *t = userdata;
    as_future *f = t->woke;

    t->woke = NULL;
    if (t->waiting == f)
        t->waiting = NULL;
    run_step(t, as_future_error(f), f);
    as_future_unref(f);
    as_task_unref(t);
}

/* The wake can never come: the awaited future was freed without
 * completing (lifetime rule 2; a later cancel can still wake the task, see
 * as_task_cancel), or the loop closed with the wake posted. */
static void task_dropped(void *userdata)
{
    as_task *t = userdata;

    as_future_unref(t->woke);
    t->woke = NULL;
    t->waiting = NULL;
    as_task_unref(t);
}

/* After a step returned AS_STEP_AWAIT: register on the future it awaits. */
static void start_wait(as_task *t)
{
    as_future *f = t->next;
    int err;

    t->next = NULL;
    if (t->next_error) {
        as_future_unref(f);
        schedule_step(t, t->next_error);
        return;
    }
    t->waiting = f;
    as_task_ref(t);
    err = as__future_add_waiter(f, t->wake, &t->woke, task_dropped, t);
    if (err < 0) {
        t->waiting = NULL;
        t->refs--; /* run_step holds one */
        as_future_unref(f);
        schedule_step(t, err);
        return;
    }
    /* A cancel requested earlier applies to this await, as in asyncio; if
     * the future is already done, its outcome is delivered and the request
     * waits for the next await (see run_step). */
    if (t->must_cancel && as_future_cancel(f, t->cancel_message))
        t->must_cancel = 0;
    /* Our reference goes (lifetime rule 2).  If it was the last one the
     * future is freed here and task_dropped() clears t->waiting. */
    as_future_unref(f);
}

/*
 * Awaiting a future that is already done does not suspend the task: the next
 * step runs at once with its outcome, as `await` on a finished future does
 * not yield in Python.  That is what makes a task reading a buffered stream
 * cheap (a read the buffer can answer returns a finished future).  To keep
 * such a task from starving the loop, after READY_RESUMES resumes in a row it
 * takes the ordinary path and waits for a loop turn.
 */
#define READY_RESUMES 64

static void run_step(as_task *t, int error, as_future *awaited)
{
    as_step r;
    as_future *owned = NULL; /* a reference to `awaited` we already hold */
    int resumes = 0;

    if (t->finished)
        return;
    as_task_ref(t); /* the step may drop every other reference */
again:
    if (as_future_done(t->done) || (t->must_cancel && !awaited)) {
        /* Cancelled with no outcome to deliver: as_task_cancel() found
         * nothing that could carry the request (before the first step, or
         * the awaited future was freed), or our future was completed behind
         * our back (as_future_set_cancelled() by someone else). */
        t->must_cancel = 0;
        error = AS_ECANCELLED;
        t->error_message = t->cancel_message;
    } else if (error != 0 && awaited)
        t->error_message = as_future_error_message(awaited);
    else
        t->error_message = NULL;
    if (error != 0 && !t->error_message)
        t->error_message = as_strerror(error);

    if (!t->started && error == AS_ECANCELLED) {
        /* Cancelled before it ever ran: no code of the coroutine runs. */
        finish_cancelled(t, t->cancel_message);
        as_task_unref(t);
        return;
    }
    t->started = 1;
    t->error = error;
    t->awaited = owned ? owned : awaited ? as_future_ref(awaited) : NULL;
    owned = NULL;
    t->awaiting = 0;
    t->next_error = 0;

    t->running = 1;
    r = t->step(t, t->state);
    t->running = 0;

    awaited = t->awaited;
    t->awaited = NULL;
    t->error = 0;
    t->error_message = NULL;
    if (t->finished) {
        as_future_unref(t->next); /* awaited and finished: drop the await */
        t->next = NULL;
    } else if (r == AS_STEP_AWAIT && t->awaiting && !t->next_error &&
               !t->must_cancel && as_future_done(t->next) &&
               ++resumes < READY_RESUMES) {
        /* Already done: resume now with its outcome (see READY_RESUMES).
         * The reference the await took over becomes the next step's. */
        as_future_unref(awaited);
        owned = t->next;
        t->next = NULL;
        awaited = owned;
        error = as_future_error(owned);
        goto again;
    } else if (r == AS_STEP_AWAIT && t->awaiting)
        start_wait(t);
    else if (r == AS_STEP_AWAIT)
        as_task_fail(t, AS_ESTATE,
                     "step returned AS_STEP_AWAIT without as_task_await()");
    else
        as_task_return(t, NULL, NULL);
    as_future_unref(awaited);
    as_task_unref(t);
}

/* ------------------------------------------------------------ in a step */

int as_task_error(const as_task *t)
{
    return t ? t->error : AS_EINVAL;
}

const char *as_task_error_message(const as_task *t)
{
    return t && t->error ? t->error_message : NULL;
}

as_future *as_task_awaited(const as_task *t)
{
    return t ? t->awaited : NULL;
}

void *as_task_result(const as_task *t)
{
    return t ? as_future_result(t->awaited) : NULL;
}

void *as_task_take_result(as_task *t)
{
    return t ? as_future_take_result(t->awaited) : NULL;
}

/* ------------------------------------------------------------ cancelling */

int as_task_cancel(as_task *t, const char *message)
{
    if (!t || t->finished || as_future_done(t->done))
        return 0;
    free(t->cancel_message);
    /* Without memory for the text, cancel without it. */
    t->cancel_message = message ? as__strdup(message) : NULL;
    /* as_future_cancel() reaches the work behind the future through its
     * canceller: a task waited on is cancelled in turn, and so on down. */
    if (t->waiting && as_future_cancel(t->waiting, t->cancel_message))
        return 1;
    /* Nothing to cancel now.  Either the awaited future is done and its
     * outcome is on its way (delivered; the request waits for the next
     * await), or the task is between steps or inside one. */
    t->must_cancel = 1;
    /* Waiting on nothing that can wake it (its future was freed): wake it
     * ourselves, so the step can clean up. */
    if (!t->waiting && !t->scheduled && !t->running)
        schedule_step(t, 0);
    return 1;
}

/* as_future_cancel() on the task's future: asyncio's Task.cancel(). */
static int task_canceller(as_future *future, const char *message,
                          void *userdata)
{
    (void)future;
    return as_task_cancel(userdata, message);
}
