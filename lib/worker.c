/*
 * worker.c - one piece of blocking work on a thread of its own, its
 * outcome handed back to the loop as a future (internal.h,
 * as__run_blocking()).  Design rule 9: the loop thread never blocks, and
 * reading a file (a TLS certificate, a trust store) is blocking work.
 *
 * One thread per job, detached: jobs are rare (one per TLS configuration),
 * so a pool would cost more code than it saves.  The job record is shared
 * by the thread and the loop, reference counted under a mutex: the thread
 * drops its reference after posting the outcome with
 * as_loop_call_soon_threadsafe(), the loop side when the future is done.
 * If the future was cancelled first, the thread sees `abandoned` and posts
 * nothing.
 */
#include "internal.h"
#include "errors.h"
#include "future.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

struct job {
    pthread_mutex_t lock;
    int refs;               /* the thread's and the loop side's */
    int abandoned;          /* the future is done: post nothing */
    as_loop *loop;
    as_future *future;      /* the loop side's reference, until done */
    as__work_fn work;
    void *arg;
    as_destroy_fn free_arg;
    int code;               /* work's outcome */
    char msg[256];
};

static void job_unref(struct job *j)
{
    int last;
    pthread_mutex_lock(&j->lock);
    last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (!last)
        return;
    if (j->arg && j->free_arg)
        j->free_arg(j->arg);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

static void job_unref_cb(void *p)
{
    job_unref(p);
}

/* On the loop thread: the outcome arrived. */
static void deliver(void *p)
{
    struct job *j = p;
    if (!j->future || as_future_done(j->future))
        return;
    if (j->code == 0) {
        if (as_future_set_result(j->future, j->arg, j->free_arg) == 0)
            j->arg = NULL; /* the future's now */
    } else {
        as__future_fail(j->future, j->code, j->msg[0] ? j->msg : NULL);
    }
}

/* The future is done (delivered or cancelled): the loop side lets go.  It
 * runs as the done callback's destroy hook, so also if the loop closes. */
static void on_done(as_future *f, void *p)
{
    (void)f;
    (void)p;
}

static void release(void *p)
{
    struct job *j = p;
    pthread_mutex_lock(&j->lock);
    j->abandoned = 1;
    pthread_mutex_unlock(&j->lock);
    as_future_unref(j->future);
    j->future = NULL;
    job_unref(j);
}

static void *run(void *p)
{
    struct job *j = p;
    int posted = 0;

    j->code = j->work(j->arg, j->msg, sizeof j->msg);
    pthread_mutex_lock(&j->lock);
    if (!j->abandoned &&
        as_loop_call_soon_threadsafe(j->loop, deliver, j, job_unref_cb) == 0)
        posted = 1; /* our reference travels with the callback */
    pthread_mutex_unlock(&j->lock);
    if (!posted)
        job_unref(j);
    return NULL;
}

as_future *as__run_blocking(as_loop *loop, as__work_fn work, void *arg,
                            as_destroy_fn free_arg)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    as_future *f;
    struct job *j;
    int err;

    if (as_future_new(loop, &f) < 0) {
        free_arg(arg);
        return NULL;
    }
    if (!(j = calloc(1, sizeof *j)) || pthread_mutex_init(&j->lock, NULL) != 0) {
        free(j);
        free_arg(arg);
        return as__future_fail(f, -ENOMEM, NULL);
    }
    j->loop = loop;
    j->work = work;
    j->arg = arg;
    j->free_arg = free_arg;
    j->future = as_future_ref(f);
    j->refs = 2;
    if ((err = as_future_add_done_callback(f, on_done, j, release)) < 0) {
        as_future_unref(j->future);
        j->future = NULL;
        j->refs = 1;
        job_unref(j);
        return as__future_fail(f, err, NULL);
    }
    /* The thread must not take the program's signals: a SIGINT handler
     * expects to run on the loop thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if ((err = pthread_attr_init(&attr)) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        err = pthread_create(&tid, &attr, run, j);
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        job_unref(j); /* the thread's; failing the future drops the rest */
        as__future_fail(f, -err, "could not start a worker thread");
    }
    return f;
}
