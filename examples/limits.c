/*
 * limits.c - at most N operations at once: ten jobs share a semaphore of
 * three permits.  (Chapter 12.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "asyncstreams.h"

#define JOBS 10
#define LIMIT 3

/* What the jobs share: the semaphore and two counters to check it works. */
struct shared {
    as_semaphore *sem;
    int running;      /* jobs holding a permit now */
    int most;         /* the largest `running` ever seen */
};

/* listing: job */
/*
 *     async def job(sem, k):
 *         async with sem:                  # acquire ... release
 *             await asyncio.sleep(0.01 * (1 + k % 3))
 */
struct job {
    int pc;
    int k;
    struct shared *sh;
};

static as_step job_step(as_task *t, void *p)
{
    struct job *j = p;

    AS_TASK_BEGIN(j);
    AS_AWAIT(t, j, as_semaphore_acquire(j->sh->sem));
    AS_TASK_CHECK(t);            /* cancelled while queued: no permit held */
    if (++j->sh->running > j->sh->most)
        j->sh->most = j->sh->running;
    printf("job %d starts (%d running)\n", j->k, j->sh->running);

    AS_AWAIT(t, j, as_sleep(as_task_loop(t), 0.01 * (1 + j->k % 3)));

    j->sh->running--;            /* the `finally` of `async with`: */
    as_semaphore_release(j->sh->sem);   /* release on every path */
    AS_TASK_CHECK(t);
    AS_TASK_END(t);
}
/* end listing */

int main(void)
{
    struct shared sh = {NULL, 0, 0};
    as_future *jobs[JOBS], *all = NULL;
    as_loop *loop;
    int err, k;

    if ((err = as_loop_new(&loop)) < 0) {
        fprintf(stderr, "loop: %s\n", as_strerror(err));
        return 1;
    }
/* listing: main */
    if ((err = as_semaphore_new(loop, LIMIT, &sh.sem)) < 0) {
        fprintf(stderr, "semaphore: %s\n", as_strerror(err));
        as_loop_close(loop);
        return 1;
    }
    for (k = 0; k < JOBS; k++) {
        struct job *j = calloc(1, sizeof *j);
        as_task *t = NULL;

        jobs[k] = NULL;
        if (!j || as_task_new(loop, job_step, j, free, &t) < 0) {
            free(j);
            continue;               /* gather reports the NULL as EINVAL */
        }
        j->k = k;
        j->sh = &sh;
        jobs[k] = as_future_ref(as_task_future(t));
        as_task_unref(t);
    }
    all = as_gather(loop, jobs, JOBS, 0);
    err = all ? as_loop_run_until_complete(loop, all) : -ENOMEM;
    printf("%s; at most %d at once (limit %d)\n",
           err == 0 ? "all done" : as_strerror(err), sh.most, LIMIT);
/* end listing */
    as_future_unref(all);
    as_semaphore_free(sh.sem);
    if (as_loop_close(loop) != 0) {
        fprintf(stderr, "something is still alive\n");
        return 1;
    }
    return err == 0 && sh.most == LIMIT ? 0 : 1;
}
