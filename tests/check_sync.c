/*
 * check_sync.c - sleep, gather, wait_for (sync.h); Semaphore, Event
 * (locks.h).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

static int *int_new(int v)
{
    int *p = malloc(sizeof *p);
    ck_assert_ptr_nonnull(p);
    *p = v;
    return p;
}

/* Sleep for real, without the loop: lets timers fall due together. */
static void nap(double seconds)
{
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ------------------------------------------------------------ sleep */

START_TEST(test_sleep_waits)
{
    as_loop *loop = tu_loop();
    double t0 = as_loop_time(loop);
    as_future *f = as_sleep(loop, 0.05);

    ck_assert_ptr_nonnull(f);
    ck_assert(!as_future_done(f));
    ck_assert_int_eq(as_loop_run_until_complete(loop, f), 0);
    ck_assert(as_loop_time(loop) - t0 >= 0.05);
    ck_assert_ptr_null(as_future_result(f));
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

START_TEST(test_sleep_bad_and_zero)
{
    as_loop *loop = tu_loop();
    as_future *f = as_sleep(loop, NAN);

    ck_assert_int_eq(as_future_error(f), AS_EINVAL);
    as_future_unref(f);
    ck_assert_ptr_null(as_sleep(NULL, 1));
    f = as_sleep(loop, -1); /* past: due at once, still not synchronous */
    ck_assert(!as_future_done(f));
    ck_assert_int_eq(as_loop_run_until_complete(loop, f), 0);
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

START_TEST(test_cancelled_sleep_frees_its_timer)
{
    as_loop *loop = tu_loop();
    as_future *f = as_sleep(loop, 3600);

    ck_assert_uint_eq(as_loop_pending(loop), 1);
    ck_assert_int_eq(as_future_cancel(f, NULL), 1);
    tu_turn(loop); /* the sleep's done callback cancels the timer */
    ck_assert(as_future_cancelled(f));
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ gather */

/* Children finishing in reverse order: results still in the given order. */
static void finish_all_reversed(void *p)
{
    as_future **kids = p;
    int i;
    for (i = 2; i >= 0; i--)
        as_future_set_result(kids[i], int_new(i * 10), free);
}

START_TEST(test_gather_results_in_order)
{
    as_loop *loop = tu_loop();
    as_future *kids[3], *g;
    as_gather_result *r;
    int i;

    for (i = 0; i < 3; i++)
        kids[i] = tu_future(loop);
    for (i = 0; i < 3; i++)
        as_future_ref(kids[i]); /* keep ours; gather takes these */
    g = as_gather(loop, kids, 3, 0);
    ck_assert_int_eq(as_loop_call_soon(loop, finish_all_reversed, kids, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, g), 0);
    r = as_future_result(g);
    ck_assert_uint_eq(r->count, 3);
    for (i = 0; i < 3; i++) {
        ck_assert_ptr_eq(r->futures[i], kids[i]);
        ck_assert_int_eq(*(int *)as_future_result(r->futures[i]), i * 10);
        as_future_unref(kids[i]);
    }
    as_future_unref(g); /* frees the result and the children */
    tu_close(loop);
}
END_TEST

START_TEST(test_gather_first_error_wins)
{
    as_loop *loop = tu_loop();
    as_future *kids[3], *g, *a, *b, *c;
    int freed = 0;
    tu_detail *d = tu_detail_new(&freed);

    a = kids[0] = tu_future(loop);
    b = kids[1] = tu_future(loop);
    c = kids[2] = as_sleep(loop, 0.01);
    as_future_ref(a);
    as_future_ref(b);
    as_future_ref(c);
    g = as_gather(loop, kids, 3, 0);
    as_future_set_error_detail(b, -ECONNREFUSED, "refused", d, tu_detail_free);
    as_future_set_error(a, -EPIPE, NULL); /* later: not the gather's error */
    ck_assert_int_eq(as_loop_run_until_complete(loop, g), -ECONNREFUSED);
    ck_assert_str_eq(as_future_error_message(g), "refused");
    /* The child's error moved whole: the detail is the gather's now. */
    ck_assert_ptr_eq(as_future_error_detail(g), d);
    ck_assert_ptr_null(as_future_error_detail(b));
    ck_assert_int_eq(as_future_error(b), -ECONNREFUSED);
    /* The others are not cancelled: the sleep still finishes normally. */
    ck_assert(!as_future_cancelled(c));
    ck_assert_int_eq(as_loop_run_until_complete(loop, c), 0);
    as_future_unref(a);
    as_future_unref(b);
    as_future_unref(c);
    ck_assert_int_eq(freed, 0);
    as_future_unref(g);
    ck_assert_int_eq(freed, 1);
    tu_close(loop);
}
END_TEST

START_TEST(test_gather_return_exceptions)
{
    as_loop *loop = tu_loop();
    as_future *kids[3], *g;
    as_gather_result *r;

    kids[0] = tu_future(loop);
    kids[1] = tu_future(loop);
    kids[2] = tu_future(loop);
    as_future_ref(kids[0]);
    as_future_ref(kids[1]);
    as_future_ref(kids[2]);
    g = as_gather(loop, kids, 3, 1);
    as_future_set_error(kids[0], -EPIPE, NULL);
    as_future_cancel(kids[1], "child cancelled");
    tu_turn(loop);
    ck_assert(!as_future_done(g)); /* waits for all */
    as_future_set_result(kids[2], int_new(3), free);
    ck_assert_int_eq(as_loop_run_until_complete(loop, g), 0);
    r = as_future_result(g);
    ck_assert_int_eq(as_future_error(r->futures[0]), -EPIPE);
    ck_assert(as_future_cancelled(r->futures[1]));
    ck_assert_int_eq(*(int *)as_future_result(r->futures[2]), 3);
    as_future_unref(kids[0]);
    as_future_unref(kids[1]);
    as_future_unref(kids[2]);
    as_future_unref(g);
    tu_close(loop);
}
END_TEST

START_TEST(test_gather_child_cancelled_is_an_error)
{
    as_loop *loop = tu_loop();
    as_future *kids[2], *g;

    kids[0] = as_sleep(loop, 10);
    kids[1] = tu_future(loop);
    as_future_ref(kids[0]);
    g = as_gather(loop, kids, 2, 0); /* kids[1]: only the gather held it... */
    ck_assert_int_eq(as_future_cancel(kids[0], NULL), 1);
    ck_assert_int_eq(as_loop_run_until_complete(loop, g), AS_ECANCELLED);
    /* asyncio: a child's cancellation does not cancel the gather. */
    ck_assert(!as_future_cancelled(g));
    as_future_unref(kids[0]);
    as_future_unref(g);
    tu_close(loop);
}
END_TEST

START_TEST(test_gather_cancel_cancels_children)
{
    as_loop *loop = tu_loop();
    as_future *kids[3], *g;
    int i;

    for (i = 0; i < 3; i++)
        kids[i] = as_sleep(loop, 10);
    for (i = 0; i < 3; i++)
        as_future_ref(kids[i]);
    g = as_gather(loop, kids, 3, 1);
    tu_turn(loop);
    ck_assert_int_eq(as_future_cancel(g, "enough"), 1);
    ck_assert(!as_future_done(g)); /* done once the children are */
    ck_assert_int_eq(as_loop_run_until_complete(loop, g), AS_ECANCELLED);
    ck_assert(as_future_cancelled(g));
    for (i = 0; i < 3; i++) {
        ck_assert(as_future_cancelled(kids[i]));
        ck_assert_str_eq(as_future_error_message(kids[i]), "enough");
        as_future_unref(kids[i]);
    }
    ck_assert_int_eq(as_future_cancel(g, NULL), 0);
    as_future_unref(g);
    tu_close(loop);
}
END_TEST

START_TEST(test_gather_edge_cases)
{
    as_loop *loop = tu_loop();
    as_future *kids[2], *g;

    g = as_gather(loop, NULL, 0, 0);
    ck_assert(as_future_done(g));
    ck_assert_uint_eq(((as_gather_result *)as_future_result(g))->count, 0);
    as_future_unref(g);

    kids[0] = tu_future(loop);
    kids[1] = NULL;
    g = as_gather(loop, kids, 2, 0); /* takes kids[0] even so */
    ck_assert_int_eq(as_future_error(g), AS_EINVAL);
    as_future_unref(g);
    g = as_gather(loop, NULL, 2, 0);
    ck_assert_int_eq(as_future_error(g), AS_EINVAL);
    as_future_unref(g);

    /* The same future twice: it appears twice in the result. */
    kids[0] = tu_future(loop);
    kids[1] = as_future_ref(kids[0]);
    as_future_ref(kids[0]);
    g = as_gather(loop, kids, 2, 0);
    as_future_set_result(kids[0], NULL, NULL);
    ck_assert_int_eq(as_loop_run_until_complete(loop, g), 0);
    ck_assert_ptr_eq(((as_gather_result *)as_future_result(g))->futures[1], kids[0]);
    as_future_unref(kids[0]);
    as_future_unref(g);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ wait_for */

START_TEST(test_wait_for_in_time)
{
    as_loop *loop = tu_loop();
    as_future *inner = tu_future(loop), *w;

    int *v = int_new(8);

    w = as_wait_for(loop, as_future_ref(inner), 5);
    as_future_set_result(inner, v, free);
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), 0);
    /* sync.h rule 2: the value itself, moved (not copied) from the inner
     * future. */
    ck_assert_ptr_eq(as_future_result(w), v);
    ck_assert_int_eq(*(int *)as_future_result(w), 8);
    ck_assert_ptr_null(as_future_result(inner));
    as_future_unref(inner);
    ck_assert_int_eq(*(int *)as_future_result(w), 8); /* still there */
    as_future_unref(w); /* frees v, once (valgrind/ASan would see twice) */
    tu_close(loop); /* the 5 s timer is gone too */
}
END_TEST

START_TEST(test_wait_for_times_out_and_cancels_inner)
{
    as_loop *loop = tu_loop();
    as_future *inner = as_sleep(loop, 10), *w;
    double t0 = as_loop_time(loop);

    w = as_wait_for(loop, as_future_ref(inner), 0.02);
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), AS_ETIMEOUT);
    ck_assert(as_loop_time(loop) - t0 >= 0.02);
    ck_assert(as_future_cancelled(inner));
    ck_assert(!as_future_cancelled(w)); /* a timeout, not a cancellation */
    as_future_unref(inner);
    as_future_unref(w);
    tu_close(loop);
}
END_TEST

START_TEST(test_wait_for_error_and_outside_cancel)
{
    as_loop *loop = tu_loop();
    as_future *inner = tu_future(loop), *w;

    int freed = 0;
    tu_detail *d = tu_detail_new(&freed);

    w = as_wait_for(loop, as_future_ref(inner), 5);
    as_future_set_error_detail(inner, AS_EINCOMPLETE, "2 of 5", d, tu_detail_free);
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), AS_EINCOMPLETE);
    ck_assert_str_eq(as_future_error_message(w), "2 of 5");
    ck_assert_ptr_eq(as_future_error_detail(w), d); /* moved with the error */
    ck_assert_ptr_null(as_future_error_detail(inner));
    as_future_unref(inner);
    as_future_unref(w);
    ck_assert_int_eq(freed, 1);

    /* Someone else cancels the inner future: the wait_for is cancelled. */
    inner = tu_future(loop);
    w = as_wait_for(loop, as_future_ref(inner), 5);
    as_future_cancel(inner, NULL);
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), AS_ECANCELLED);
    ck_assert(as_future_cancelled(w));
    as_future_unref(inner);
    as_future_unref(w);
    tu_close(loop);
}
END_TEST

START_TEST(test_wait_for_cancelled_cancels_inner)
{
    as_loop *loop = tu_loop();
    as_future *inner = as_sleep(loop, 10), *w;

    w = as_wait_for(loop, as_future_ref(inner), 5);
    ck_assert_int_eq(as_future_cancel(w, "bye"), 1);
    ck_assert(as_future_cancelled(inner));   /* the canceller reached it */
    ck_assert(!as_future_done(w)); /* done once the inner one has finished */
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), AS_ECANCELLED);
    ck_assert(as_future_cancelled(w));
    ck_assert_str_eq(as_future_error_message(w), "bye");
    as_future_unref(inner);
    as_future_unref(w);
    tu_close(loop);
}
END_TEST

START_TEST(test_wait_for_zero_and_infinite)
{
    as_loop *loop = tu_loop();
    as_future *inner, *w;

    inner = tu_future(loop); /* done: its result wins even at 0 */
    as_future_set_result(inner, NULL, NULL);
    w = as_wait_for(loop, inner, 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), 0);
    as_future_unref(w);

    inner = as_sleep(loop, 10); /* pending: cancelled at once */
    w = as_wait_for(loop, inner, -1);
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), AS_ETIMEOUT);
    as_future_unref(w);

    inner = as_sleep(loop, 0.01); /* no timer at all */
    w = as_wait_for(loop, inner, INFINITY);
    ck_assert_uint_eq(as_loop_pending(loop), 1); /* just the sleep's timer */
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), 0);
    as_future_unref(w);

    w = as_wait_for(loop, as_sleep(loop, 1), NAN);
    ck_assert_int_eq(as_future_error(w), AS_EINVAL);
    as_future_unref(w);
    w = as_wait_for(loop, NULL, 1);
    ck_assert_int_eq(as_future_error(w), -ENOMEM);
    as_future_unref(w);
    tu_turn(loop); /* the refused sleep was cancelled; its timer goes now */
    tu_close(loop);
}
END_TEST

/* The race: the inner future completes and the timeout fires in the same
 * loop turn.  Both timers are due when the turn starts, so they run in the
 * order they were scheduled. */
static void complete_inner(void *p)
{
    ck_assert_int_eq(as_future_set_result(p, int_new(1), free), 0);
}

static int late_rc;

static void complete_inner_late(void *p)
{
    int *v = int_new(2);
    late_rc = as_future_set_result(p, v, free);
    if (late_rc != 0)
        free(v); /* refused: still ours */
}

START_TEST(test_wait_for_race_completion_first)
{
    as_loop *loop = tu_loop();
    as_future *inner = tu_future(loop), *w;

    ck_assert_int_eq(as_loop_call_later(loop, 0.02, complete_inner, inner, NULL, NULL), 0);
    w = as_wait_for(loop, as_future_ref(inner), 0.02);
    nap(0.05);
    ck_assert_int_eq(as_loop_run_once(loop), 0); /* both timers, one turn */
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), 0);
    ck_assert_int_eq(*(int *)as_future_result(w), 1); /* the result wins */
    ck_assert(!as_future_cancelled(inner));
    as_future_unref(inner);
    as_future_unref(w);
    tu_close(loop);
}
END_TEST

START_TEST(test_wait_for_race_timeout_first)
{
    as_loop *loop = tu_loop();
    as_future *inner = tu_future(loop), *w;

    w = as_wait_for(loop, as_future_ref(inner), 0.02);
    ck_assert_int_eq(as_loop_call_later(loop, 0.02, complete_inner_late, inner, NULL, NULL), 0);
    nap(0.05);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(late_rc, AS_ESTATE); /* cancelled first: refused */
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), AS_ETIMEOUT);
    as_future_unref(inner);
    as_future_unref(w);
    tu_close(loop);
}
END_TEST

/* wait_for around a task that needs time to cancel: the timeout waits for
 * the cleanup; a task that returns a result when cancelled wins. */
struct slow {
    int pc;
    int return_value;
    int cleanup_done;
};

static as_step slow_step(as_task *t, void *p)
{
    struct slow *s = p;
    AS_TASK_BEGIN(s);
    AS_AWAIT(t, s, as_sleep(as_task_loop(t), 10));
    if (as_task_error(t) == AS_ECANCELLED) {
        AS_AWAIT(t, s, as_sleep(as_task_loop(t), 0.02));
        s->cleanup_done = 1;
        if (s->return_value)
            AS_TASK_RETURN(t, int_new(7), free);
        AS_TASK_FAIL(t, AS_ECANCELLED, NULL);
    }
    AS_TASK_END(t);
}

static void run_slow(int return_value)
{
    as_loop *loop = tu_loop();
    struct slow *s = calloc(1, sizeof *s);
    as_task *t = NULL;
    as_future *w;

    s->return_value = return_value;
    ck_assert_int_eq(as_task_new(loop, slow_step, s, free, &t), 0);
    w = as_wait_for(loop, as_future_ref(as_task_future(t)), 0.01);
    while (!as_future_done(w)) {
        ck_assert_int_eq(as_loop_run_once(loop), 0);
        if (!s->cleanup_done)
            ck_assert(!as_future_done(w)); /* never before the cleanup */
    }
    if (return_value) {
        ck_assert_int_eq(as_future_error(w), 0);
        ck_assert_int_eq(*(int *)as_future_result(w), 7); /* the task's value */
    } else {
        ck_assert_int_eq(as_future_error(w), AS_ETIMEOUT);
        ck_assert(as_future_cancelled(as_task_future(t)));
    }
    ck_assert(s->cleanup_done);
    as_future_unref(w);
    as_task_unref(t);
    tu_close(loop);
}

START_TEST(test_wait_for_waits_for_cancelled_task)
{
    run_slow(0);
}
END_TEST

START_TEST(test_wait_for_cancelled_task_returns_result)
{
    run_slow(1);
}
END_TEST

/* as_future_cancel() on a wait_for around a task cancels the task (its
 * step sees AS_ECANCELLED and cleans up); the wait_for ends CANCELLED, not
 * timed out, and only after the cleanup. */
START_TEST(test_wait_for_cancel_cancels_inner_task)
{
    as_loop *loop = tu_loop();
    struct slow *s = calloc(1, sizeof *s);
    as_task *t = NULL;
    as_future *w;

    ck_assert_int_eq(as_task_new(loop, slow_step, s, free, &t), 0);
    w = as_wait_for(loop, as_future_ref(as_task_future(t)), 5);
    tu_turn(loop); /* the task awaits its 10 s sleep */
    ck_assert_int_eq(as_future_cancel(w, "stop"), 1);
    ck_assert(!as_future_done(w));
    ck_assert(!as_task_done(t)); /* cleaning up */
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), AS_ECANCELLED);
    ck_assert(s->cleanup_done);
    ck_assert(as_future_cancelled(w));
    ck_assert(as_future_cancelled(as_task_future(t)));
    as_future_unref(w);
    as_task_unref(t);
    tu_close(loop); /* the 5 s timer went with the cancel */
}
END_TEST

/* as_future_cancel() on a gather of tasks cancels every task: each step
 * sees AS_ECANCELLED and cleans up, and the gather ends CANCELLED (once the
 * first has finished, as asyncio's gather does without return_exceptions). */
START_TEST(test_gather_cancel_cancels_child_tasks)
{
    as_loop *loop = tu_loop();
    struct slow *s[2];
    as_task *t[2];
    as_future *kids[2], *g;
    int i;

    for (i = 0; i < 2; i++) {
        s[i] = calloc(1, sizeof *s[i]);
        ck_assert_int_eq(as_task_new(loop, slow_step, s[i], free, &t[i]), 0);
        kids[i] = as_future_ref(as_task_future(t[i]));
    }
    g = as_gather(loop, kids, 2, 0);
    tu_turn(loop);
    ck_assert_int_eq(as_future_cancel(g, NULL), 1);
    ck_assert(!as_future_done(g));
    ck_assert_int_eq(as_loop_run_until_complete(loop, g), AS_ECANCELLED);
    ck_assert(as_future_cancelled(g));
    for (i = 0; i < 2; i++) {
        as_loop_run_until_complete(loop, as_task_future(t[i]));
        ck_assert(s[i]->cleanup_done);
        ck_assert(as_future_cancelled(as_task_future(t[i])));
        as_task_unref(t[i]);
    }
    as_future_unref(g);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ semaphore */

static as_semaphore *sem_new(as_loop *loop, unsigned value)
{
    as_semaphore *sem = NULL;
    ck_assert_int_eq(as_semaphore_new(loop, value, &sem), 0);
    ck_assert_ptr_nonnull(sem);
    return sem;
}

struct worker {
    int pc;
    int id;
    as_semaphore *sem;
    int *order;   /* shared: ids in the order they got the permit */
    int *n;
    int *inside;  /* shared: workers holding a permit now */
    int *max_inside;
};

static as_step worker_step(as_task *t, void *p)
{
    struct worker *w = p;
    AS_TASK_BEGIN(w);
    AS_AWAIT(t, w, as_semaphore_acquire(w->sem));
    AS_TASK_CHECK(t);
    w->order[(*w->n)++] = w->id;
    if (++*w->inside > *w->max_inside)
        *w->max_inside = *w->inside;
    AS_AWAIT(t, w, as_sleep(as_task_loop(t), 0)); /* hold it a turn or two */
    --*w->inside;
    as_semaphore_release(w->sem);
    AS_TASK_CHECK(t);
    AS_TASK_END(t);
}

static void run_workers(unsigned permits, int n_workers)
{
    as_loop *loop = tu_loop();
    as_semaphore *sem = sem_new(loop, permits);
    as_future **futs = calloc((size_t)n_workers, sizeof *futs);
    int *order = calloc((size_t)n_workers, sizeof *order);
    int n = 0, inside = 0, max_inside = 0, i;
    as_future *g;

    for (i = 0; i < n_workers; i++) {
        struct worker *w = calloc(1, sizeof *w);
        as_task *t = NULL;
        w->id = i;
        w->sem = sem;
        w->order = order;
        w->n = &n;
        w->inside = &inside;
        w->max_inside = &max_inside;
        ck_assert_int_eq(as_task_new(loop, worker_step, w, free, &t), 0);
        futs[i] = as_future_ref(as_task_future(t));
        as_task_unref(t);
    }
    g = as_gather(loop, futs, (size_t)n_workers, 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, g), 0);
    ck_assert_int_eq(n, n_workers);
    ck_assert_int_eq(max_inside, (int)permits);
    for (i = 0; i < n_workers; i++)
        ck_assert_int_eq(order[i], i); /* FIFO */
    ck_assert_uint_eq(as_semaphore_value(sem), permits);
    ck_assert(!as_semaphore_locked(sem));
    as_future_unref(g);
    as_semaphore_free(sem);
    free(futs);
    free(order);
    tu_close(loop);
}

START_TEST(test_semaphore_fifo_100_waiters)
{
    run_workers(1, 100);
}
END_TEST

START_TEST(test_semaphore_limits_to_n)
{
    run_workers(3, 20);
}
END_TEST

START_TEST(test_semaphore_release_wakes_exactly_one)
{
    as_loop *loop = tu_loop();
    as_semaphore *sem = sem_new(loop, 0);
    as_future *f[3];
    int i;

    ck_assert(as_semaphore_locked(sem));
    for (i = 0; i < 3; i++)
        f[i] = as_semaphore_acquire(sem);
    ck_assert_uint_eq(as_semaphore_waiting(sem), 3);
    ck_assert_int_eq(as_semaphore_release(sem), 0);
    tu_turn(loop);
    ck_assert(as_future_done(f[0]));
    ck_assert(!as_future_done(f[1]));
    ck_assert(!as_future_done(f[2]));
    ck_assert_uint_eq(as_semaphore_value(sem), 0);
    ck_assert_uint_eq(as_semaphore_waiting(sem), 2);
    /* A new acquire while others wait queues behind them. */
    ck_assert_int_eq(as_semaphore_release(sem), 0);
    ck_assert_int_eq(as_semaphore_release(sem), 0);
    ck_assert_int_eq(as_semaphore_release(sem), 0);
    ck_assert_uint_eq(as_semaphore_value(sem), 1);
    for (i = 0; i < 3; i++)
        as_future_unref(f[i]);
    ck_assert_int_eq(as_semaphore_release(NULL), AS_EINVAL);
    as_semaphore_free(sem);
    tu_turn(loop);
    tu_close(loop);
}
END_TEST

/* as_future_cancel() on a waiting acquire reaches the semaphore through
 * its canceller: the waiter leaves the queue at once, and the permit that
 * is released next goes to the one behind it. */
START_TEST(test_semaphore_cancelled_waiter_takes_no_permit)
{
    as_loop *loop = tu_loop();
    as_semaphore *sem = sem_new(loop, 0);
    as_future *a = as_semaphore_acquire(sem), *b = as_semaphore_acquire(sem);

    ck_assert_uint_eq(as_semaphore_waiting(sem), 2);
    ck_assert_int_eq(as_future_cancel(a, "not now"), 1);
    ck_assert(as_future_cancelled(a));
    ck_assert_str_eq(as_future_error_message(a), "not now");
    ck_assert_uint_eq(as_semaphore_waiting(sem), 1); /* out of the queue now */
    ck_assert_int_eq(as_semaphore_release(sem), 0);
    ck_assert(as_future_done(b));                    /* granted to b at once */
    ck_assert_int_eq(as_loop_run_until_complete(loop, b), 0);
    ck_assert_uint_eq(as_semaphore_value(sem), 0);
    ck_assert_uint_eq(as_semaphore_waiting(sem), 0);
    ck_assert_int_eq(as_future_cancel(b, NULL), 0); /* granted: b's to keep */
    ck_assert_uint_eq(as_semaphore_value(sem), 0);
    /* Completed behind the semaphore's back (as_future_set_cancelled()
     * bypasses the canceller): skipped all the same. */
    as_future_unref(a);
    a = as_semaphore_acquire(sem);
    ck_assert_int_eq(as_future_set_cancelled(a, NULL), 0);
    ck_assert_int_eq(as_semaphore_release(sem), 0);
    tu_turn(loop);
    ck_assert_uint_eq(as_semaphore_value(sem), 1);
    ck_assert(!as_semaphore_locked(sem));
    as_future_unref(a);
    as_future_unref(b);
    as_semaphore_free(sem);
    tu_close(loop);
}
END_TEST

/* The permit is granted, and the waiting task is cancelled in the same
 * turn, before it resumed: the grant is delivered (the task holds the
 * permit and gives it back on its way out), the task ends CANCELLED, and
 * the permit is not lost. */
struct holder {
    int pc;
    as_semaphore *sem;
    int got;
    int err;
};

static as_step holder_step(as_task *t, void *p)
{
    struct holder *h = p;
    AS_TASK_BEGIN(h);
    AS_AWAIT(t, h, as_semaphore_acquire(h->sem));
    h->err = as_task_error(t);
    AS_TASK_CHECK(t);
    h->got = 1;
    as_semaphore_release(h->sem);
    AS_TASK_END(t);
}

static as_semaphore *race_sem;
static as_task *race_task;

static void release_then_cancel(void *p)
{
    (void)p;
    as_semaphore_release(race_sem);
    as_task_cancel(race_task, NULL);
}

START_TEST(test_semaphore_grant_then_cancel_returns_permit)
{
    as_loop *loop = tu_loop();
    struct holder *h = calloc(1, sizeof *h), *h2 = calloc(1, sizeof *h2);
    as_task *t2 = NULL;

    race_sem = sem_new(loop, 0);
    h->sem = h2->sem = race_sem;
    ck_assert_int_eq(as_task_new(loop, holder_step, h, free, &race_task), 0);
    ck_assert_int_eq(as_task_new(loop, holder_step, h2, free, &t2), 0);
    tu_turn(loop); /* both wait, race_task first */
    ck_assert_uint_eq(as_semaphore_waiting(race_sem), 2);
    ck_assert_int_eq(as_loop_call_soon(loop, release_then_cancel, NULL, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(race_task)),
                     AS_ECANCELLED);
    ck_assert_int_eq(h->err, 0);
    ck_assert(h->got);
    /* The permit went on to the next waiter, who got it and gave it back. */
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t2)), 0);
    ck_assert(h2->got);
    ck_assert_uint_eq(as_semaphore_value(race_sem), 1);
    as_task_unref(race_task);
    as_task_unref(t2);
    as_semaphore_free(race_sem);
    tu_close(loop);
}
END_TEST

/* A permit that is free at once is taken without suspending: the task goes
 * on in the same step (awaiting a finished future does not yield), so there
 * is no window in which a cancel could find it holding an unseen grant. */
START_TEST(test_semaphore_immediate_grant_does_not_suspend)
{
    as_loop *loop = tu_loop();
    struct holder *h = calloc(1, sizeof *h);
    as_task *t = NULL;

    race_sem = sem_new(loop, 1);
    h->sem = race_sem;
    ck_assert_int_eq(as_task_new(loop, holder_step, h, free, &t), 0);
    tu_turn(loop); /* acquired, used and released in its first turn */
    ck_assert(as_task_done(t));
    ck_assert(h->got);
    ck_assert_int_eq(h->err, 0);
    ck_assert_int_eq(as_task_cancel(t, NULL), 0); /* too late: done */
    ck_assert_uint_eq(as_semaphore_value(race_sem), 1);
    ck_assert_int_eq(as_future_error(as_task_future(t)), 0);
    as_task_unref(t);
    as_semaphore_free(race_sem);
    tu_close(loop);
}
END_TEST

START_TEST(test_semaphore_free_cancels_waiters)
{
    as_loop *loop = tu_loop();
    as_semaphore *sem = sem_new(loop, 0);
    as_future *a = as_semaphore_acquire(sem);

    as_semaphore_free(sem);
    ck_assert(as_future_cancelled(a));
    tu_turn(loop);
    as_future_unref(a);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ event */

static as_event *event_new(as_loop *loop)
{
    as_event *ev = NULL;
    ck_assert_int_eq(as_event_new(loop, &ev), 0);
    ck_assert_ptr_nonnull(ev);
    return ev;
}

START_TEST(test_event_wakes_all)
{
    as_loop *loop = tu_loop();
    as_event *ev = event_new(loop);
    as_future *a = as_event_wait(ev), *b = as_event_wait(ev), *c = as_event_wait(ev), *d;

    ck_assert(!as_event_is_set(ev));
    as_future_cancel(b, NULL);
    tu_turn(loop);
    as_event_set(ev);
    ck_assert(as_event_is_set(ev));
    as_event_set(ev); /* again: nothing */
    ck_assert(as_future_done(a) && as_future_done(c));
    ck_assert(as_future_cancelled(b));
    d = as_event_wait(ev); /* set: done at once */
    ck_assert(as_future_done(d));
    as_event_clear(ev);
    as_future_unref(d);
    d = as_event_wait(ev);
    ck_assert(!as_future_done(d));
    tu_turn(loop);
    ck_assert_int_eq(as_future_error(a), 0);
    as_event_free(ev); /* cancels d */
    ck_assert(as_future_cancelled(d));
    tu_turn(loop);
    as_future_unref(a);
    as_future_unref(b);
    as_future_unref(c);
    as_future_unref(d);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ bad input */

/* The constructors report why they made nothing, and leave *out NULL. */
START_TEST(test_lock_constructors_refuse_bad_input)
{
    as_loop *loop = tu_loop();
    as_semaphore *sem = (as_semaphore *)&sem;
    as_event *ev = (as_event *)&ev;
    as_future *keep = tu_future(loop); /* keeps the closed loop's memory */

    ck_assert_int_eq(as_semaphore_new(NULL, 1, &sem), AS_EINVAL);
    ck_assert_ptr_null(sem);
    ck_assert_int_eq(as_semaphore_new(loop, 1, NULL), AS_EINVAL);
    ck_assert_int_eq(as_event_new(NULL, &ev), AS_EINVAL);
    ck_assert_ptr_null(ev);
    ck_assert_int_eq(as_event_new(loop, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_close(loop), 1);
    sem = (as_semaphore *)&sem;
    ev = (as_event *)&ev;
    ck_assert_int_eq(as_semaphore_new(loop, 1, &sem), AS_ECLOSED);
    ck_assert_ptr_null(sem);
    ck_assert_int_eq(as_event_new(loop, &ev), AS_ECLOSED);
    ck_assert_ptr_null(ev);
    as_future_unref(keep);
}
END_TEST

/* Every public call of sync.h and locks.h, given NULL for its object:
 * void calls do nothing, int calls say AS_EINVAL, counts are 0, pointer
 * calls give NULL.  sync.h's calls still take over the futures given. */
START_TEST(test_every_call_refuses_null)
{
    as_loop *loop = tu_loop();
    as_future *kids[1];

    ck_assert_ptr_null(as_sleep(NULL, 1));
    ck_assert_ptr_null(as_gather(NULL, NULL, 0, 0));
    kids[0] = tu_future(loop);
    ck_assert_ptr_null(as_gather(NULL, kids, 1, 0)); /* kids[0] is freed */
    ck_assert_ptr_null(as_wait_for(NULL, tu_future(loop), 1));
    ck_assert_ptr_null(as_wait_for(NULL, NULL, 1));

    as_semaphore_free(NULL);
    ck_assert_ptr_null(as_semaphore_acquire(NULL));
    ck_assert_int_eq(as_semaphore_release(NULL), AS_EINVAL);
    ck_assert_int_eq(as_semaphore_locked(NULL), 0);
    ck_assert_uint_eq(as_semaphore_value(NULL), 0);
    ck_assert_uint_eq(as_semaphore_waiting(NULL), 0);

    as_event_free(NULL);
    ck_assert_ptr_null(as_event_wait(NULL));
    as_event_set(NULL);
    as_event_clear(NULL);
    ck_assert_int_eq(as_event_is_set(NULL), 0);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ leaks */

START_TEST(test_abandoned_on_close)
{
    as_loop *loop = tu_loop();
    as_semaphore *sem = sem_new(loop, 0);
    as_event *ev = event_new(loop);
    as_future *kids[3];

    kids[0] = as_sleep(loop, 100);
    kids[1] = as_semaphore_acquire(sem);
    kids[2] = as_event_wait(ev);
    as_future_unref(as_wait_for(loop, as_gather(loop, kids, 3, 1), 50));
    as_future_unref(as_wait_for(loop, as_sleep(loop, 100), 0.001));
    tu_turn(loop);
    as_semaphore_free(sem);
    as_event_free(ev);
    ck_assert_int_eq(as_loop_close(loop), 0);
}
END_TEST

/* ------------------------------------------------------------ reader */

/* wait_for around a read that times out consumes nothing: the bytes fed
 * before and after the timeout are all read by the next call, with no
 * loop turn in between, so a retry after a timeout loses nothing (tutorial
 * chapter 11).  One read kind per `kind`. */
static as_future *start_read(as_reader *r, int kind)
{
    switch (kind) {
    case 0:
        return as_reader_readline(r);
    case 1:
        return as_reader_readexactly(r, 4);
    default:
        return as_reader_readuntil(r, "\n", 1);
    }
}

START_TEST(test_wait_for_around_a_read_is_cancel_safe)
{
    as_loop *loop = tu_loop();
    as_reader *r;
    as_future *w, *next;
    as_bytes *b;

    ck_assert_int_eq(as_reader_new(loop, AS_READER_DEFAULT_LIMIT, &r), 0);
    ck_assert_int_eq(as_reader_feed_data(r, "ab", 2), 0);
    w = as_wait_for(loop, start_read(r, _i), 0.05);
    ck_assert_int_eq(as_loop_run_until_complete(loop, w), AS_ETIMEOUT);
    as_future_unref(w);
    /* The timed-out read is gone: a new one may wait at once (no busy
     * error) and sees "ab" as well as what arrives now. */
    ck_assert_int_eq(as_reader_feed_data(r, "c\n", 2), 0);
    next = start_read(r, _i);
    ck_assert_int_eq(as_loop_run_until_complete(loop, next), 0);
    b = as_future_result(next);
    ck_assert_uint_eq(b->len, 4);
    ck_assert_int_eq(memcmp(b->data, "abc\n", 4), 0);
    ck_assert_uint_eq(as_reader_buffered(r), 0);
    as_future_unref(next);
    as_reader_unref(r);
    tu_close(loop);
}
END_TEST

static Suite *sync_suite(void)
{
    Suite *s = suite_create("sync");
    TCase *tc = tcase_create("sleep");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_sleep_waits);
    tcase_add_test(tc, test_sleep_bad_and_zero);
    tcase_add_test(tc, test_cancelled_sleep_frees_its_timer);
    suite_add_tcase(s, tc);

    tc = tcase_create("gather");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_gather_results_in_order);
    tcase_add_test(tc, test_gather_first_error_wins);
    tcase_add_test(tc, test_gather_return_exceptions);
    tcase_add_test(tc, test_gather_child_cancelled_is_an_error);
    tcase_add_test(tc, test_gather_cancel_cancels_children);
    tcase_add_test(tc, test_gather_edge_cases);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait_for");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_wait_for_in_time);
    tcase_add_test(tc, test_wait_for_times_out_and_cancels_inner);
    tcase_add_test(tc, test_wait_for_error_and_outside_cancel);
    tcase_add_test(tc, test_wait_for_cancelled_cancels_inner);
    tcase_add_test(tc, test_wait_for_zero_and_infinite);
    tcase_add_test(tc, test_wait_for_race_completion_first);
    tcase_add_test(tc, test_wait_for_race_timeout_first);
    tcase_add_test(tc, test_wait_for_waits_for_cancelled_task);
    tcase_add_test(tc, test_wait_for_cancelled_task_returns_result);
    tcase_add_test(tc, test_wait_for_cancel_cancels_inner_task);
    tcase_add_test(tc, test_gather_cancel_cancels_child_tasks);
    suite_add_tcase(s, tc);

    tc = tcase_create("semaphore");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_semaphore_fifo_100_waiters);
    tcase_add_test(tc, test_semaphore_limits_to_n);
    tcase_add_test(tc, test_semaphore_release_wakes_exactly_one);
    tcase_add_test(tc, test_semaphore_cancelled_waiter_takes_no_permit);
    tcase_add_test(tc, test_semaphore_grant_then_cancel_returns_permit);
    tcase_add_test(tc, test_semaphore_immediate_grant_does_not_suspend);
    tcase_add_test(tc, test_semaphore_free_cancels_waiters);
    suite_add_tcase(s, tc);

    tc = tcase_create("event");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_event_wakes_all);
    tcase_add_test(tc, test_abandoned_on_close);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad input");
    tcase_add_test(tc, test_lock_constructors_refuse_bad_input);
    tcase_add_test(tc, test_every_call_refuses_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("reader");
    tcase_add_loop_test(tc, test_wait_for_around_a_read_is_cancel_safe, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(sync_suite());
}
