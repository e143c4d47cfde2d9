/*
 * futures.c - chapter 4: a value that will exist later.
 *
 * Five small scenes, each checked:
 *   1. sleep_for(): a future that a timer completes (asyncio.sleep in C);
 *   2. done callbacks are scheduled on the loop, never run synchronously;
 *   3. cancelling a future, and cleaning up what it was waiting for;
 *   4. errors are values: a failed future holds a code and a message, and a
 *      future that is done cannot change its mind;
 *   5. as_loop_run_until_complete() runs the loop until a future is done.
 *
 * Build and run: make examples/futures && ./examples/futures
 */
#include <asyncstreams.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int failed;

static void expect(int ok, const char *what)
{
    printf("  %-58s %s\n", what, ok ? "yes" : "NO");
    if (!ok)
        failed = 1;
}

/* listing: sleep_for */
/* The timer's callback: finish the future, unless someone cancelled it. */
static void wake(void *userdata)
{
    as_future *f = userdata;
    if (!as_future_done(f))
        as_future_set_result(f, NULL, NULL);
}

/* Destroy hooks: give back what the timer and the done callback held. */
static void unref_future(void *userdata) { as_future_unref(userdata); }
static void unref_handle(void *userdata) { as_handle_unref(userdata); }

/* The future's done callback: if it was cancelled, the timer is useless. */
static void cancel_timer(as_future *f, void *userdata)
{
    if (as_future_cancelled(f))
        as_handle_cancel(userdata);
}

/* A future that finishes `delay` seconds from now: asyncio.sleep(delay).
 * The timer holds a reference to the future (given back by unref_future),
 * and the future's done callback holds the timer's handle, so neither can be
 * freed while the other still needs it.  Returns NULL on failure. */
static as_future *sleep_for(as_loop *loop, double delay)
{
    as_handle *timer;
    as_future *f;
    if (as_future_new(loop, &f) < 0)
        return NULL;
    if (as_loop_call_later(loop, delay, wake, as_future_ref(f), unref_future,
                           &timer) < 0) {
        as_future_unref(f); /* the timer's reference: never handed over */
        as_future_unref(f);
        return NULL;
    }
    if (as_future_add_done_callback(f, cancel_timer, timer, unref_handle) < 0) {
        as_handle_cancel(timer); /* runs unref_future */
        as_handle_unref(timer);
        as_future_unref(f);
        return NULL;
    }
    return f;
}
/* end listing */

/* listing: on_done */
static int calls;

static void on_done(as_future *f, void *userdata)
{
    (void)userdata;
    calls++;
    printf("  (done callback: the future is %s)\n",
           as_future_cancelled(f) ? "cancelled" : "finished");
}
/* end listing */

static void scene_timer(as_loop *loop)
{
    printf("1. a future completed by a timer\n");
    /* listing: scene_timer */
    double start = as_loop_time(loop);
    as_future *f = sleep_for(loop, 0.05);
    if (f == NULL) {
        fprintf(stderr, "sleep_for failed\n");
        failed = 1;
        return;
    }
    expect(as_future_state_of(f) == AS_FUTURE_PENDING, "pending right after sleep_for()");
    while (!as_future_done(f)) {
        int rc = as_loop_run_once(loop); /* one turn: waits for the timer */
        if (rc < 0) {
            fprintf(stderr, "run_once: %s\n", as_strerror(rc));
            failed = 1;
            break;
        }
    }
    double waited = as_loop_time(loop) - start;
    expect(as_future_error(f) == 0, "finished without an error");
    expect(waited >= 0.05 - 1e-9, "and not before its 0.05 s were up");
    as_future_unref(f);
    /* end listing */
}

static void scene_not_synchronous(as_loop *loop)
{
    printf("2. done callbacks are scheduled, not called\n");
    /* listing: scene_not_synchronous */
    as_future *f;
    if (as_future_new(loop, &f) < 0 ||
        as_future_add_done_callback(f, on_done, NULL, NULL) < 0) {
        fprintf(stderr, "cannot make a future\n");
        as_future_unref(f); /* NULL if as_future_new() failed: ignored */
        failed = 1;
        return;
    }
    static char reply[] = "Uryyb, jbeyq";
    calls = 0;
    as_future_set_result(f, reply, NULL); /* NULL: nothing to free */
    expect(calls == 0, "callback not run by set_result() itself");
    as_loop_run_once(loop);
    expect(calls == 1, "run on the next turn of the loop");

    /* Even on a future that is already done, the callback waits a turn. */
    if (as_future_add_done_callback(f, on_done, NULL, NULL) == 0) {
        expect(calls == 1, "added to a done future: still not run at once");
        as_loop_run_once(loop);
        expect(calls == 2, "run on the next turn");
    }
    expect(strcmp(as_future_result(f), "Uryyb, jbeyq") == 0, "the result is there");
    as_future_unref(f);
    /* end listing */
}

static void scene_cancel(as_loop *loop)
{
    printf("3. cancelling\n");
    /* listing: scene_cancel */
    as_future *f = sleep_for(loop, 10.0); /* far in the future */
    if (f == NULL || as_future_add_done_callback(f, on_done, NULL, NULL) < 0) {
        fprintf(stderr, "cannot make a future\n");
        as_future_unref(f);
        failed = 1;
        return;
    }
    calls = 0;
    expect(as_future_cancel(f, "the client hung up") == 1, "cancel() of a pending future says 1");
    expect(as_future_cancel(f, NULL) == 0, "a second cancel() says 0: already done");
    expect(as_future_error(f) == AS_ECANCELLED, "its outcome is AS_ECANCELLED");
    expect(strcmp(as_future_error_message(f), "the client hung up") == 0,
           "with the message given to cancel()");
    as_loop_run_once(loop); /* cancel_timer and on_done run here */
    expect(calls == 1, "done callbacks ran once");
    expect(as_loop_pending(loop) == 0, "cancel_timer removed the 10 s timer");
    as_future_unref(f);
    /* end listing */
}

static void scene_errors(as_loop *loop)
{
    printf("4. errors are values\n");
    /* listing: scene_errors */
    as_future *f;
    int rc = as_future_new(loop, &f);
    if (rc < 0) {
        fprintf(stderr, "as_future_new: %s\n", as_strerror(rc));
        failed = 1;
        return;
    }
    expect(as_future_error(f) == AS_ESTATE, "a pending future has no outcome yet");
    expect(as_future_set_error(f, 42, NULL) == AS_EINVAL, "an error code must be negative");
    as_future_set_error(f, -ECONNREFUSED, "could not reach the ROT13 server");
    int err = as_future_error(f); /* also marks the error as seen */
    printf("  outcome: %s, \"%s\"\n", as_err_name(err), as_future_error_message(f));
    expect(err == -ECONNREFUSED, "the outcome is the negated errno");
    expect(as_future_set_result(f, NULL, NULL) == AS_ESTATE,
           "a done future refuses set_result()");
    expect(as_future_cancel(f, NULL) == 0, "and cancel()");
    as_future_unref(f);
    /* end listing */
}

static void scene_run_until_complete(as_loop *loop)
{
    printf("5. run_until_complete\n");
    /* listing: scene_run_until_complete */
    as_future *f = sleep_for(loop, 0.02);
    if (f == NULL) {
        fprintf(stderr, "sleep_for failed\n");
        failed = 1;
        return;
    }
    int rc = as_loop_run_until_complete(loop, f);
    expect(rc == 0 && as_future_done(f), "returns 0 once the future has finished");
    as_future_unref(f);
    /* end listing */
}

int main(void)
{
    as_loop *loop;
    int rc = as_loop_new(&loop);
    if (rc < 0) {
        fprintf(stderr, "as_loop_new: %s\n", as_strerror(rc));
        return 1;
    }
    scene_timer(loop);
    scene_not_synchronous(loop);
    scene_cancel(loop);
    scene_errors(loop);
    scene_run_until_complete(loop);

    /* Every future was released and every timer ran or was cancelled. */
    size_t pending = as_loop_pending(loop), objects = as_loop_objects(loop);
    rc = as_loop_close(loop);
    expect(pending == 0 && objects == 0 && rc == 0, "the loop closes with nothing left alive");
    printf("%s\n", failed ? "FAILED" : "ok");
    return failed;
}
