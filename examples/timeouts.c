/*
 * timeouts.c - wait_for and cancellation: a slow job that cleans up when it
 * is cancelled, a timeout that waits for that cleanup, a job that finishes
 * in time, and a job that catches its cancellation.  (Chapter 11.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "asyncstreams.h"

/* listing: job */
/*
 *     async def job(seconds, catch):
 *         try:
 *             await asyncio.sleep(seconds)
 *             return "done"
 *         except asyncio.CancelledError:
 *             print("job: cancelled, cleaning up")
 *             await asyncio.sleep(0.01)        # cleanup takes time too
 *             print("job: clean")
 *             if catch:
 *                 return "partial"
 *             raise
 */
struct job {
    int pc;
    double seconds;
    int catch_it;
};

static as_step job_step(as_task *t, void *p)
{
    struct job *j = p;

    AS_TASK_BEGIN(j);
    AS_AWAIT(t, j, as_sleep(as_task_loop(t), j->seconds));
    if (as_task_error(t) == AS_ECANCELLED) {
        printf("job: cancelled, cleaning up\n");
        AS_AWAIT(t, j, as_sleep(as_task_loop(t), 0.01));
        printf("job: clean\n");
        if (j->catch_it)
            AS_TASK_RETURN(t, "partial", NULL);
        AS_TASK_FAIL(t, AS_ECANCELLED, NULL);   /* re-raise */
    }
    AS_TASK_CHECK(t);
    AS_TASK_RETURN(t, "done", NULL);
    AS_TASK_END(t);
}
/* end listing */

static as_task *start_job(as_loop *loop, double seconds, int catch_it)
{
    struct job *j = calloc(1, sizeof *j);
    as_task *t = NULL;

    if (!j)
        return NULL;
    j->seconds = seconds;
    j->catch_it = catch_it;
    if (as_task_new(loop, job_step, j, free, &t) < 0) {
        free(j);
        return NULL;
    }
    return t;
}

/* listing: wait */
/* wait_for(job, timeout), reported the way a caller sees it. */
static int run_with_timeout(as_loop *loop, as_task *t, double timeout)
{
    as_future *w = as_wait_for(loop, as_future_ref(as_task_future(t)), timeout);
    int err;

    if (!w)
        return -ENOMEM;
    err = as_loop_run_until_complete(loop, w);
    if (err == 0) /* the task's own value, moved to the wait_for */
        printf("wait_for: %s\n", (char *)as_future_result(w));
    else
        printf("wait_for: %s (task %s)\n", as_err_name(err),
               as_future_cancelled(as_task_future(t)) ? "cancelled" : "not cancelled");
    as_future_unref(w);
    return err;
}
/* end listing */

int main(void)
{
    as_loop *loop;
    as_task *slow, *quick, *catcher;
    int err, ok = 1;

    if ((err = as_loop_new(&loop)) < 0) {
        fprintf(stderr, "loop: %s\n", as_strerror(err));
        return 1;
    }
    slow = start_job(loop, 10, 0);
    quick = start_job(loop, 0.01, 0);
    catcher = start_job(loop, 10, 1);
    if (!slow || !quick || !catcher) {
        fprintf(stderr, "out of memory\n");
        ok = 0;
    } else {
/* listing: main */
        /* Ten seconds of work, 50 ms allowed: timed out, after the cleanup. */
        ok &= run_with_timeout(loop, slow, 0.05) == AS_ETIMEOUT;
        /* 10 ms of work, a second allowed: its result. */
        ok &= run_with_timeout(loop, quick, 1.0) == 0;
        /* Cancelled by hand, through its future (the same as
         * as_task_cancel()); it catches the cancellation and returns. */
        as_future_cancel(as_task_future(catcher), "enough");
        ok &= as_loop_run_until_complete(loop, as_task_future(catcher)) == 0;
        printf("catcher: %s\n", (char *)as_future_result(as_task_future(catcher)));
/* end listing */
    }
    as_task_unref(slow);
    as_task_unref(quick);
    as_task_unref(catcher);
    if (as_loop_close(loop) != 0) {
        fprintf(stderr, "something is still alive\n");
        return 1;
    }
    return ok ? 0 : 1;
}
