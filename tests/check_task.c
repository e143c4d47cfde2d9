/*
 * check_task.c - tasks: stepping, awaiting, cancellation, lifetimes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ------------------------------------------------------------ helpers */

static int destroyed; /* state_destroy calls */
static int steps;     /* step function calls */

static void count_destroy(void *p)
{
    destroyed++;
    free(p);
}

static int *int_new(int v)
{
    int *p = malloc(sizeof *p);
    ck_assert_ptr_nonnull(p);
    *p = v;
    return p;
}

/* A state shared by most tests: awaits whatever is in `await_on`, in turn. */
struct st {
    int pc;
    int i;
    as_future *await_on[4];  /* our references; handed to the awaits */
    int seen[4];             /* as_task_error() after each await */
    char msg[64];            /* as_task_error_message() after the last */
    int catch_cancel;        /* return normally after AS_ECANCELLED */
    int cleaned;             /* the cleanup path ran */
};

static struct st *st_new(void)
{
    struct st *s = calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* Hand a reference over: the slot no longer owns it. */
static as_future *take(as_future **slot)
{
    as_future *f = *slot;
    *slot = NULL;
    return f;
}

/* Await each future in turn; on error either catch it or propagate. */
static as_step awaiter(as_task *t, void *p)
{
    struct st *s = p;

    steps++;
    AS_TASK_BEGIN(s);
    for (s->i = 0; s->i < 4 && s->await_on[s->i]; s->i++) {
        AS_AWAIT(t, s, take(&s->await_on[s->i]));
        s->seen[s->i] = as_task_error(t);
        if (as_task_error(t) != 0) {
            strncpy(s->msg, as_task_error_message(t), sizeof s->msg - 1);
            s->cleaned = 1;
            if (s->catch_cancel && as_task_error(t) == AS_ECANCELLED)
                AS_TASK_RETURN(t, int_new(99), free);
            AS_TASK_CHECK(t);
        }
    }
    AS_TASK_RETURN(t, int_new(s->i), free);
    AS_TASK_END(t);
}

static void st_destroy(void *p)
{
    struct st *s = p;
    int i;
    for (i = 0; i < 4; i++)
        as_future_unref(s->await_on[i]); /* awaits that never happened */
    count_destroy(s);
}

static void reset(void)
{
    destroyed = 0;
    steps = 0;
}

/* ------------------------------------------------------------ basics */

/* Every call of task.h given a NULL task: the answer asyncstreams.h's NULL
 * rule promises; what await and return take over is freed all the same
 * (tu_close() finds nothing alive, and the result was destroyed). */
START_TEST(every_call_accepts_a_null_task)
{
    as_loop *loop = tu_loop();
    reset();
    tu_null_call calls[] = {
        TU_NULL_PTR(as_task_ref(NULL)),
        TU_NULL_VOID(as_task_unref(NULL)),
        TU_NULL_PTR(as_task_future(NULL)),
        TU_NULL_PTR(as_task_loop(NULL)),
        TU_NULL_INT(as_task_done(NULL), 0),
        TU_NULL_INT(as_task_cancel(NULL, "x"), 0),
        TU_NULL_INT(as_task_await(NULL, tu_future(loop)), AS_STEP_DONE),
        TU_NULL_INT(as_task_error(NULL), AS_EINVAL),
        TU_NULL_PTR(as_task_error_message(NULL)),
        TU_NULL_PTR(as_task_awaited(NULL)),
        TU_NULL_PTR(as_task_result(NULL)),
        TU_NULL_PTR(as_task_take_result(NULL)),
        TU_NULL_INT(as_task_return(NULL, int_new(1), count_destroy), AS_STEP_DONE),
        TU_NULL_INT(as_task_fail(NULL, -EIO, "x"), AS_STEP_DONE),
        TU_NULL_INT(as_task_propagate(NULL), AS_STEP_DONE),
    };

    tu_check_null(calls);
    ck_assert_int_eq(destroyed, 1);
    tu_close(loop);
}
END_TEST

START_TEST(test_first_step_is_not_synchronous)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();

    reset();
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    ck_assert_int_eq(steps, 0);
    ck_assert(!as_task_done(t));
    ck_assert_ptr_eq(as_task_loop(t), loop);
    tu_turn(loop);
    ck_assert_int_eq(steps, 1);
    ck_assert(as_task_done(t));
    ck_assert_int_eq(as_future_error(as_task_future(t)), 0);
    ck_assert_int_eq(*(int *)as_future_result(as_task_future(t)), 0);
    as_task_unref(t);
    ck_assert_int_eq(destroyed, 1);
    tu_close(loop);
}
END_TEST

START_TEST(test_await_results_in_order)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();
    as_future *a = tu_future(loop), *b = tu_future(loop);

    reset();
    s->await_on[0] = as_future_ref(a);
    s->await_on[1] = as_sleep(loop, 0.01);
    s->await_on[2] = as_future_ref(b);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    tu_turn(loop);
    ck_assert_int_eq(steps, 1); /* waiting on a */
    tu_turn(loop);
    ck_assert_int_eq(steps, 1); /* still waiting: nothing completes a */
    ck_assert_int_eq(as_future_set_result(a, int_new(7), free), 0);
    ck_assert_int_eq(steps, 1); /* resuming is never synchronous */
    ck_assert_int_eq(as_future_set_result(b, NULL, NULL), 0); /* done early */
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)), 0);
    ck_assert_int_eq(steps, 4);
    ck_assert_int_eq(s->seen[0] | s->seen[1] | s->seen[2], 0);
    ck_assert_int_eq(*(int *)as_future_result(as_task_future(t)), 3);
    as_future_unref(a);
    as_future_unref(b);
    as_task_unref(t);
    ck_assert_int_eq(destroyed, 1);
    tu_close(loop);
}
END_TEST

/* Raw step function, no macros: the state machine written out. */
struct raw {
    int pc;
    as_future *f;
    void *got;
};

static as_step raw_step(as_task *t, void *p)
{
    struct raw *r = p;

    switch (r->pc) {
    case 0:
        r->pc = 1;
        return as_task_await(t, as_future_ref(r->f));
    case 1:
        if (as_task_error(t))
            return as_task_propagate(t);
        ck_assert_ptr_eq(as_task_awaited(t), r->f);
        ck_assert_ptr_nonnull(as_task_result(t));
        r->got = as_task_take_result(t); /* ours now */
        ck_assert_ptr_null(as_task_result(t));
        return as_task_return(t, r->got, free);
    }
    return as_task_fail(t, AS_ESTATE, "bad pc");
}

START_TEST(test_raw_state_machine_takes_result)
{
    as_loop *loop = tu_loop();
    struct raw *r = calloc(1, sizeof *r);
    as_task *t = NULL;

    reset();
    r->f = tu_future(loop);
    ck_assert_int_eq(as_task_new(loop, raw_step, r, count_destroy, &t), 0);
    tu_turn(loop);
    as_future_set_result(r->f, int_new(5), free);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)), 0);
    ck_assert_int_eq(*(int *)as_future_result(as_task_future(t)), 5);
    as_future_unref(r->f);
    as_task_unref(t);
    ck_assert_int_eq(destroyed, 1);
    tu_close(loop);
}
END_TEST

START_TEST(test_error_propagates_with_message)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();
    as_future *a = tu_future(loop);

    reset();
    s->await_on[0] = as_future_ref(a);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    tu_turn(loop);
    as_future_set_error(a, -ECONNRESET, "peer went away");
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)),
                     -ECONNRESET);
    ck_assert_int_eq(s->seen[0], -ECONNRESET);
    ck_assert_str_eq(s->msg, "peer went away");
    ck_assert_str_eq(as_future_error_message(as_task_future(t)), "peer went away");
    ck_assert(!as_future_cancelled(as_task_future(t)));
    as_future_unref(a);
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

/* A step that completes its own task's future from outside (set_result
 * bypasses the canceller) and then propagates the error it resumed with:
 * nothing can move into the future, so the error stays with the awaited
 * future, and nothing aborts. */
struct behind {
    int pc;
    as_future *a;
};

static as_step behind_step(as_task *t, void *p)
{
    struct behind *b = p;
    AS_TASK_BEGIN(b);
    AS_AWAIT(t, b, as_future_ref(b->a));
    ck_assert_int_eq(as_future_set_result(as_task_future(t), NULL, NULL), 0);
    AS_TASK_CHECK(t);
    AS_TASK_END(t);
}

START_TEST(test_propagate_into_a_future_completed_behind_the_task)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct behind b = { 0, tu_future(loop) };
    int freed = 0;
    tu_detail *d = tu_detail_new(&freed);

    ck_assert_int_eq(as_task_new(loop, behind_step, &b, NULL, &t), 0);
    tu_turn(loop); /* the task waits on a */
    ck_assert_int_eq(as_future_set_error_detail(b.a, AS_EINCOMPLETE, "2 of 5",
                                                d, tu_detail_free), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)), 0);
    ck_assert(as_task_done(t));
    ck_assert_ptr_eq(as_future_error_detail(b.a), d); /* not moved */
    as_future_unref(b.a);
    ck_assert_int_eq(freed, 1);
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

/* An uncaught error moves to the task's future whole: the detail too (an
 * incomplete read's partial bytes survive being propagated). */
START_TEST(test_propagate_keeps_detail)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();
    as_future *a = tu_future(loop);
    int freed = 0;
    tu_detail *d = tu_detail_new(&freed);

    reset();
    s->await_on[0] = as_future_ref(a);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    tu_turn(loop);
    ck_assert_int_eq(as_future_set_error_detail(a, AS_EINCOMPLETE, "2 of 5",
                                                d, tu_detail_free), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)),
                     AS_EINCOMPLETE);
    ck_assert_str_eq(as_future_error_message(as_task_future(t)), "2 of 5");
    ck_assert_ptr_eq(as_future_error_detail(as_task_future(t)), d);
    ck_assert_ptr_null(as_future_error_detail(a)); /* moved, not shared */
    ck_assert_int_eq(as_future_error(a), AS_EINCOMPLETE); /* a keeps its code */
    as_future_unref(a);
    ck_assert_int_eq(freed, 0);
    as_task_unref(t); /* frees the task's future, and the detail with it */
    ck_assert_int_eq(freed, 1);
    tu_close(loop);
}
END_TEST

static as_step fail_step(as_task *t, void *p)
{
    (void)p;
    steps++;
    return as_task_fail(t, 1 /* not negative: a bug */, "x");
}

START_TEST(test_fail_with_positive_code_is_einval)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;

    reset();
    ck_assert_int_eq(as_task_new(loop, fail_step, NULL, NULL, &t), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)), AS_EINVAL);
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

static as_step await_nothing_step(as_task *t, void *p)
{
    (void)p;
    (void)t;
    return AS_STEP_AWAIT; /* a bug: claims to wait but awaits nothing */
}

START_TEST(test_await_misuse_is_reported)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;

    ck_assert_int_eq(as_task_new(loop, await_nothing_step, NULL, NULL, &t), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)), AS_ESTATE);
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

/* Awaits NULL (a failed call), itself, then two futures in one step. */
struct misuse {
    int pc;
    int e1, e2, e3;
};

static as_step misuse_step(as_task *t, void *p)
{
    struct misuse *m = p;
    AS_TASK_BEGIN(m);
    AS_AWAIT(t, m, NULL);
    m->e1 = as_task_error(t);
    AS_AWAIT(t, m, as_future_ref(as_task_future(t)));
    m->e2 = as_task_error(t);
    m->pc = -1;
    as_task_await(t, as_sleep(as_task_loop(t), 0));
    return as_task_await(t, as_sleep(as_task_loop(t), 0));
    case -1:
    m->e3 = as_task_error(t);
    AS_TASK_END(t);
}

START_TEST(test_await_null_self_twice)
{
    as_loop *loop = tu_loop();
    struct misuse *m = calloc(1, sizeof *m);
    as_task *t = NULL;

    ck_assert_int_eq(as_task_new(loop, misuse_step, m, free, &t), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)), 0);
    ck_assert_int_eq(m->e1, -ENOMEM);
    ck_assert_int_eq(m->e2, AS_EINVAL);
    ck_assert_int_eq(m->e3, AS_ESTATE);
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

START_TEST(test_new_bad_arguments)
{
    as_loop *loop = tu_loop();
    as_task *t = tu_poison();
    as_future *keep;
    struct st *s = st_new();

    reset();
    ck_assert_int_eq(as_task_new(NULL, awaiter, s, st_destroy, &t), AS_EINVAL);
    ck_assert_ptr_null(t);
    t = tu_poison();
    ck_assert_int_eq(as_task_new(loop, NULL, s, st_destroy, &t), AS_EINVAL);
    ck_assert_ptr_null(t);
    /* A closed loop: an object keeps its memory alive. */
    keep = tu_future(loop);
    ck_assert_int_eq(as_loop_close(loop), 1);
    t = tu_poison();
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), AS_ECLOSED);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(destroyed, 0); /* the state stays ours on failure */
    st_destroy(s);
    as_future_unref(keep); /* frees the loop */
}
END_TEST

START_TEST(test_fire_and_forget)
{
    as_loop *loop = tu_loop();
    struct st *s = st_new();

    reset();
    s->await_on[0] = as_sleep(loop, 0.001);
    s->await_on[1] = as_sleep(loop, 0.001);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, NULL), 0);
    while (destroyed == 0)
        ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(steps, 3);
    tu_close(loop);
}
END_TEST

/* 1000 awaits of futures that are already done: exercises the alternation
 * of the two await slots (each await starts inside the previous one's
 * callback). */
struct many {
    int pc;
    int n;
};

static as_step many_step(as_task *t, void *p)
{
    struct many *m = p;
    AS_TASK_BEGIN(m);
    for (m->n = 0; m->n < 1000; m->n++) {
        as_future *f = tu_future(as_task_loop(t));
        as_future_set_result(f, NULL, NULL);
        AS_AWAIT(t, m, f);
        AS_TASK_CHECK(t);
    }
    AS_TASK_END(t);
}

START_TEST(test_many_awaits)
{
    as_loop *loop = tu_loop();
    struct many *m = calloc(1, sizeof *m);
    as_task *t = NULL;

    ck_assert_int_eq(as_task_new(loop, many_step, m, free, &t), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)), 0);
    ck_assert_int_eq(m->n, 1000);
    ck_assert_ptr_null(as_future_result(as_task_future(t))); /* fell off the end */
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ cancellation */

START_TEST(test_cancel_while_waiting)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();
    as_future *a = tu_future(loop);

    reset();
    s->await_on[0] = as_future_ref(a);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    tu_turn(loop);
    ck_assert_int_eq(as_task_cancel(t, "stop now"), 1);
    ck_assert(as_future_cancelled(a)); /* the awaited future, at once */
    ck_assert(!as_task_done(t));       /* the task after its step ran */
    ck_assert_int_eq(steps, 1);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)),
                     AS_ECANCELLED);
    ck_assert_int_eq(steps, 2);
    ck_assert_int_eq(s->seen[0], AS_ECANCELLED);
    ck_assert_str_eq(s->msg, "stop now");
    ck_assert(s->cleaned);
    ck_assert(as_future_cancelled(as_task_future(t)));
    ck_assert_str_eq(as_future_error_message(as_task_future(t)), "stop now");
    as_future_unref(a);
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

START_TEST(test_cancel_caught)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();

    reset();
    s->catch_cancel = 1;
    s->await_on[0] = as_sleep(loop, 10);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    tu_turn(loop);
    ck_assert_int_eq(as_future_cancel(as_task_future(t), NULL), 1); /* through the future */
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)), 0);
    ck_assert(!as_future_cancelled(as_task_future(t)));
    ck_assert_int_eq(*(int *)as_future_result(as_task_future(t)), 99);
    ck_assert_int_eq(as_loop_pending(loop), 0); /* the 10 s timer went too */
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

START_TEST(test_cancel_finished_task_has_no_effect)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();

    reset();
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)), 0);
    ck_assert_int_eq(as_task_cancel(t, NULL), 0);
    ck_assert_int_eq(as_future_cancel(as_task_future(t), NULL), 0);
    tu_turn(loop);
    ck_assert_int_eq(as_future_error(as_task_future(t)), 0);
    ck_assert_int_eq(*(int *)as_future_result(as_task_future(t)), 0);
    ck_assert_int_eq(steps, 1);
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

START_TEST(test_cancel_before_first_step)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();

    reset();
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    ck_assert_int_eq(as_task_cancel(t, "never mind"), 1);
    ck_assert_int_eq(as_task_cancel(t, "again"), 1); /* still pending */
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)),
                     AS_ECANCELLED);
    ck_assert_int_eq(steps, 0); /* no code of the coroutine ran */
    ck_assert_str_eq(as_future_error_message(as_task_future(t)), "again");
    as_task_unref(t);
    ck_assert_int_eq(destroyed, 1);
    tu_close(loop);
}
END_TEST

/* The awaited future completes, and the cancel arrives in the same turn
 * before the task resumed.  The outcome that arrived is delivered (asyncio
 * would drop it), and the cancellation waits for the next await: here the
 * task returns instead, so it ends CANCELLED (asyncio's _must_cancel at the
 * last step). */
static as_task *victim;

static void complete_then_cancel(void *p)
{
    as_future_set_result(p, int_new(1), free);
    as_task_cancel(victim, NULL);
}

START_TEST(test_cancel_after_awaited_completed)
{
    as_loop *loop = tu_loop();
    struct st *s = st_new();
    as_future *a = tu_future(loop);

    reset();
    s->await_on[0] = as_future_ref(a);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &victim), 0);
    tu_turn(loop);
    ck_assert_int_eq(as_loop_call_soon(loop, complete_then_cancel, a, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(victim)),
                     AS_ECANCELLED);
    ck_assert_int_eq(s->seen[0], 0);    /* the outcome was delivered */
    ck_assert_int_eq(steps, 2);
    ck_assert_int_eq(as_future_error(a), 0); /* the future itself did finish */
    as_future_unref(a);
    as_task_unref(victim);
    tu_close(loop);
}
END_TEST

/* Same, but the step awaits again: that await is cancelled at once, so the
 * step sees AS_ECANCELLED there. */
START_TEST(test_cancel_after_awaited_completed_hits_next_await)
{
    as_loop *loop = tu_loop();
    struct st *s = st_new();
    as_future *a = tu_future(loop);

    reset();
    s->await_on[0] = as_future_ref(a);
    s->await_on[1] = as_sleep(loop, 10);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &victim), 0);
    tu_turn(loop);
    ck_assert_int_eq(as_loop_call_soon(loop, complete_then_cancel, a, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(victim)),
                     AS_ECANCELLED);
    ck_assert_int_eq(s->seen[0], 0);
    ck_assert_int_eq(s->seen[1], AS_ECANCELLED);
    ck_assert(s->cleaned);
    ck_assert_int_eq(steps, 3);
    as_future_unref(a);
    as_task_unref(victim);
    tu_close(loop); /* the 10 s sleep was cancelled: its timer is gone */
}
END_TEST

/* A task that cancels itself during a step and then returns: CANCELLED. */
static as_step self_cancel_step(as_task *t, void *p)
{
    (void)p;
    ck_assert_int_eq(as_task_cancel(t, "myself"), 1);
    return as_task_return(t, int_new(1), free);
}

START_TEST(test_self_cancel_then_return)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;

    ck_assert_int_eq(as_task_new(loop, self_cancel_step, NULL, NULL, &t), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)),
                     AS_ECANCELLED);
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

/* Self-cancel, then await: the new await is cancelled at once. */
static as_step self_cancel_await_step(as_task *t, void *p)
{
    struct st *s = p;
    AS_TASK_BEGIN(s);
    as_task_cancel(t, NULL);
    AS_AWAIT(t, s, as_sleep(as_task_loop(t), 10));
    s->seen[0] = as_task_error(t);
    AS_TASK_CHECK(t);
    AS_TASK_END(t);
}

START_TEST(test_self_cancel_then_await)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();

    reset();
    ck_assert_int_eq(as_task_new(loop, self_cancel_await_step, s, st_destroy, &t), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)),
                     AS_ECANCELLED);
    ck_assert_int_eq(s->seen[0], AS_ECANCELLED);
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

/* outer awaits inner (a task); cancelling outer cancels inner, and outer
 * resumes only once inner has finished its (asynchronous) cleanup. */
struct inner_st {
    int pc;
    int catch_it;
    int cleanup_done;
};

static as_step inner_step(as_task *t, void *p)
{
    struct inner_st *s = p;
    AS_TASK_BEGIN(s);
    AS_AWAIT(t, s, as_sleep(as_task_loop(t), 10));
    if (as_task_error(t) == AS_ECANCELLED) {
        /* Cleanup that itself takes a turn or two. */
        AS_AWAIT(t, s, as_sleep(as_task_loop(t), 0.001));
        s->cleanup_done = 1;
        if (s->catch_it)
            AS_TASK_RETURN(t, int_new(42), free);
        AS_TASK_FAIL(t, AS_ECANCELLED, "inner cleaned up");
    }
    AS_TASK_END(t);
}

struct outer_st {
    int pc;
    as_task *inner;
    struct inner_st *is;
    int saw_error;
    int inner_done_when_resumed;
    int value;
};

static as_step outer_step(as_task *t, void *p)
{
    struct outer_st *s = p;
    AS_TASK_BEGIN(s);
    AS_AWAIT(t, s, as_future_ref(as_task_future(s->inner)));
    s->saw_error = as_task_error(t);
    s->inner_done_when_resumed = s->is->cleanup_done;
    AS_TASK_CHECK(t);
    s->value = *(int *)as_task_result(t);
    AS_TASK_END(t);
}

static void outer_destroy(void *p)
{
    struct outer_st *s = p;
    as_task_unref(s->inner);
    free(s);
}

static void run_outer_inner(int catch_it)
{
    as_loop *loop = tu_loop();
    struct outer_st *os = calloc(1, sizeof *os);
    struct inner_st *is = calloc(1, sizeof *is);
    as_task *outer = NULL;

    is->catch_it = catch_it;
    os->is = is;
    ck_assert_int_eq(as_task_new(loop, inner_step, is, free, &os->inner), 0);
    ck_assert_int_eq(as_task_new(loop, outer_step, os, outer_destroy, &outer), 0);
    tu_turn(loop);
    ck_assert_int_eq(as_task_cancel(outer, NULL), 1);
    if (catch_it) {
        ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(outer)), 0);
        ck_assert_int_eq(os->saw_error, 0);
        ck_assert_int_eq(os->value, 42); /* inner's result wins */
    } else {
        ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(outer)),
                         AS_ECANCELLED);
        ck_assert_int_eq(os->saw_error, AS_ECANCELLED);
        ck_assert(as_future_cancelled(as_task_future(os->inner)));
    }
    ck_assert(os->inner_done_when_resumed);
    as_task_unref(outer);
    tu_close(loop);
}

START_TEST(test_cancel_reaches_awaited_task)
{
    run_outer_inner(0);
}
END_TEST

START_TEST(test_awaited_task_catches_cancel)
{
    run_outer_inner(1);
}
END_TEST

/* as_future_cancel() on the task's future is as_task_cancel(): the awaited
 * future is cancelled, the step sees AS_ECANCELLED, and the task's future
 * stays pending until the step has decided (here: it propagates). */
START_TEST(test_future_cancel_on_task_future_cancels_task)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();
    as_future *a = tu_future(loop);

    reset();
    s->await_on[0] = as_future_ref(a);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    tu_turn(loop);
    ck_assert_int_eq(as_future_cancel(as_task_future(t), "via future"), 1);
    ck_assert(as_future_cancelled(a));          /* reached the work */
    ck_assert(!as_task_done(t));                /* the step decides */
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)),
                     AS_ECANCELLED);
    ck_assert_int_eq(steps, 2);
    ck_assert_int_eq(s->seen[0], AS_ECANCELLED);
    ck_assert_str_eq(s->msg, "via future");
    ck_assert(s->cleaned);
    ck_assert_str_eq(as_future_error_message(as_task_future(t)), "via future");
    ck_assert_int_eq(as_future_cancel(as_task_future(t), NULL), 0); /* done */
    as_future_unref(a);
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

/* The future is completed behind the task's back with
 * as_future_set_cancelled() (which bypasses the canceller): the task learns
 * it when it next resumes, its step sees AS_ECANCELLED, and the result it
 * returns is dropped. */
START_TEST(test_task_future_completed_behind_its_back)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();
    as_future *a = tu_future(loop);

    reset();
    s->await_on[0] = as_future_ref(a);
    s->catch_cancel = 1;
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    tu_turn(loop);
    ck_assert_int_eq(as_future_set_cancelled(as_task_future(t), NULL), 0);
    ck_assert_int_eq(as_task_cancel(t, NULL), 0);
    as_future_set_result(a, NULL, NULL);
    tu_turn(loop);
    tu_turn(loop);
    ck_assert_int_eq(s->seen[0], AS_ECANCELLED);
    ck_assert(as_future_cancelled(as_task_future(t)));
    as_future_unref(a);
    as_task_unref(t);
    ck_assert_int_eq(destroyed, 1);
    tu_close(loop);
}
END_TEST

/* The awaited future is freed without completing; a cancel still wakes the
 * task so it can clean up. */
START_TEST(test_cancel_revives_abandoned_task)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();

    reset();
    s->await_on[0] = tu_future(loop); /* only the await holds it */
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    tu_turn(loop);
    tu_turn(loop);
    ck_assert_int_eq(steps, 1);
    ck_assert(!as_task_done(t));
    ck_assert_int_eq(as_task_cancel(t, "wake up"), 1);
    ck_assert_int_eq(as_loop_run_until_complete(loop, as_task_future(t)),
                     AS_ECANCELLED);
    ck_assert_int_eq(steps, 2);
    ck_assert_str_eq(s->msg, "wake up");
    as_task_unref(t);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ errors, leaks */

static int handler_calls, handler_code;

static void handler(as_loop *loop, const as_error_context *ctx, void *ud)
{
    (void)loop;
    (void)ud;
    handler_calls++;
    handler_code = ctx->code;
}

START_TEST(test_unretrieved_error_reaches_handler)
{
    as_loop *loop = tu_loop();
    struct st *s = st_new();
    as_future *a = tu_future(loop);

    reset();
    handler_calls = 0;
    ck_assert_int_eq(as_loop_set_exception_handler(loop, handler, NULL, NULL), 0);
    s->await_on[0] = as_future_ref(a);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, NULL), 0);
    tu_turn(loop);
    as_future_set_error(a, -EPIPE, NULL);
    tu_turn(loop);
    ck_assert_int_eq(destroyed, 1);
    ck_assert_int_eq(handler_calls, 1);
    ck_assert_int_eq(handler_code, -EPIPE);
    as_future_unref(a);
    tu_close(loop);
}
END_TEST

START_TEST(test_cancelled_task_is_not_reported)
{
    as_loop *loop = tu_loop();
    as_task *t = NULL;
    struct st *s = st_new();

    reset();
    handler_calls = 0;
    ck_assert_int_eq(as_loop_set_exception_handler(loop, handler, NULL, NULL), 0);
    s->await_on[0] = as_sleep(loop, 10);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    tu_turn(loop);
    as_task_cancel(t, NULL);
    as_task_unref(t);
    tu_turn(loop);
    tu_turn(loop);
    ck_assert_int_eq(destroyed, 1);
    ck_assert_int_eq(handler_calls, 0);
    tu_close(loop);
}
END_TEST

/* Tasks waiting on timers, on other tasks, on a gather and a wait_for, and
 * a task never started: the loop is closed under them.  Everything unwinds;
 * as_loop_close() finds nothing alive. */
START_TEST(test_abandoned_tasks_leak_nothing)
{
    as_loop *loop = tu_loop();
    struct st *s[5];
    as_task *t[5];
    as_future *kids[2];
    int i;

    reset();
    for (i = 0; i < 5; i++)
        s[i] = st_new();
    s[0]->await_on[0] = as_sleep(loop, 100);
    ck_assert_int_eq(as_task_new(loop, awaiter, s[0], st_destroy, &t[0]), 0);
    s[1]->await_on[0] = as_future_ref(as_task_future(t[0]));
    ck_assert_int_eq(as_task_new(loop, awaiter, s[1], st_destroy, &t[1]), 0);
    kids[0] = as_future_ref(as_task_future(t[1]));
    kids[1] = as_sleep(loop, 100);
    s[2]->await_on[0] = as_gather(loop, kids, 2, 0);
    ck_assert_int_eq(as_task_new(loop, awaiter, s[2], st_destroy, &t[2]), 0);
    s[3]->await_on[0] = as_wait_for(loop, as_sleep(loop, 100), 50);
    ck_assert_int_eq(as_task_new(loop, awaiter, s[3], st_destroy, &t[3]), 0);
    tu_turn(loop);
    tu_turn(loop);
    ck_assert_int_eq(steps, 4);
    s[4]->await_on[0] = as_sleep(loop, 1);
    ck_assert_int_eq(as_task_new(loop, awaiter, s[4], st_destroy, &t[4]), 0);
    for (i = 0; i < 5; i++)
        as_task_unref(t[i]); /* abandon them all */
    ck_assert_int_eq(destroyed, 0);
    ck_assert_int_eq(as_loop_close(loop), 0);
    ck_assert_int_eq(destroyed, 5);
}
END_TEST

/* Same, but the test still holds the tasks when the loop closes. */
START_TEST(test_close_with_tasks_still_held)
{
    as_loop *loop = tu_loop();
    struct st *s = st_new();
    as_task *t = NULL;

    reset();
    s->await_on[0] = as_sleep(loop, 100);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    tu_turn(loop);
    ck_assert_int_eq(as_loop_close(loop), 2); /* the task and its future */
    ck_assert(!as_task_done(t));
    ck_assert_int_eq(as_task_cancel(t, NULL), 1); /* cannot be scheduled: no-op */
    as_task_unref(t); /* frees the task, its future, and the loop */
    ck_assert_int_eq(destroyed, 1);
}
END_TEST

/* The awaited future completes, so the task's wake is posted; the loop
 * closes before it runs.  The wake is dropped with its references: the
 * abandoned task, its state and the future are all freed. */
START_TEST(test_close_with_the_wake_posted)
{
    as_loop *loop = tu_loop();
    struct st *s = st_new();
    as_future *f = tu_future(loop);
    as_task *t = NULL;

    reset();
    s->await_on[0] = as_future_ref(f);
    ck_assert_int_eq(as_task_new(loop, awaiter, s, st_destroy, &t), 0);
    tu_turn(loop);
    ck_assert_int_eq(steps, 1);           /* waiting on f */
    ck_assert_int_eq(as_future_set_result(f, NULL, NULL), 0);
    as_future_unref(f);                   /* the posted wake holds it now */
    as_task_unref(t);                     /* and the task */
    ck_assert_int_eq(destroyed, 0);
    ck_assert_int_eq(as_loop_close(loop), 0);
    ck_assert_int_eq(steps, 1);           /* it never resumed */
    ck_assert_int_eq(destroyed, 1);
}
END_TEST

/* Awaiting futures that are already done does not yield: a task consuming
 * 50 of them finishes in its first turn.  But it cannot starve the loop: a
 * task awaiting done futures forever still lets a callback scheduled before
 * it run within a few turns. */
struct ready_state {
    int pc;
    int i;
    int n;        /* awaits to make; < 0: forever */
    int *flag;    /* set by a callback: stop then */
};

static as_future *done_future(as_loop *loop, int i)
{
    as_future *f = tu_future(loop);
    int *v = malloc(sizeof *v);
    *v = i;
    as_future_set_result(f, v, free);
    return f;
}

static as_step ready_step(as_task *t, void *p)
{
    struct ready_state *s = p;
    AS_TASK_BEGIN(s);
    for (s->i = 0; s->n < 0 || s->i < s->n; s->i++) {
        AS_AWAIT(t, s, done_future(as_task_loop(t), s->i));
        AS_TASK_CHECK(t);
        ck_assert_int_eq(*(int *)as_task_result(t), s->i);
        if (s->flag && *s->flag)
            break;
    }
    AS_TASK_RETURN(t, NULL, NULL);
    AS_TASK_END(t);
}

static void set_flag(void *p)
{
    *(int *)p = 1;
}

START_TEST(test_awaiting_a_done_future_does_not_yield_but_cannot_starve)
{
    as_loop *loop = tu_loop();
    struct ready_state *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    as_task *ta, *tb;
    int flag = 0, turns = 0;

    a->n = 50;
    ck_assert_int_eq(as_task_new(loop, ready_step, a, free, &ta), 0);
    tu_turn(loop);
    ck_assert(as_task_done(ta));
    ck_assert_int_eq(as_future_error(as_task_future(ta)), 0);

    b->n = -1;
    b->flag = &flag;
    ck_assert_int_eq(as_task_new(loop, ready_step, b, free, &tb), 0);
    ck_assert_int_eq(as_loop_call_soon(loop, set_flag, &flag, NULL, NULL), 0);
    while (!as_task_done(tb) && turns < 10) {
        tu_turn(loop);
        turns++;
    }
    ck_assert(as_task_done(tb));
    ck_assert_int_lt(turns, 4);
    as_task_unref(ta);
    as_task_unref(tb);
    tu_close(loop);
}
END_TEST

static Suite *task_suite(void)
{
    Suite *s = suite_create("task");
    TCase *tc = tcase_create("basics");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, every_call_accepts_a_null_task);
    tcase_add_test(tc, test_first_step_is_not_synchronous);
    tcase_add_test(tc, test_await_results_in_order);
    tcase_add_test(tc, test_raw_state_machine_takes_result);
    tcase_add_test(tc, test_error_propagates_with_message);
    tcase_add_test(tc, test_propagate_keeps_detail);
    tcase_add_test(tc, test_propagate_into_a_future_completed_behind_the_task);
    tcase_add_test(tc, test_fail_with_positive_code_is_einval);
    tcase_add_test(tc, test_await_misuse_is_reported);
    tcase_add_test(tc, test_await_null_self_twice);
    tcase_add_test(tc, test_new_bad_arguments);
    tcase_add_test(tc, test_fire_and_forget);
    tcase_add_test(tc, test_many_awaits);
    tcase_add_test(tc, test_awaiting_a_done_future_does_not_yield_but_cannot_starve);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_cancel_while_waiting);
    tcase_add_test(tc, test_cancel_caught);
    tcase_add_test(tc, test_cancel_finished_task_has_no_effect);
    tcase_add_test(tc, test_cancel_before_first_step);
    tcase_add_test(tc, test_cancel_after_awaited_completed);
    tcase_add_test(tc, test_cancel_after_awaited_completed_hits_next_await);
    tcase_add_test(tc, test_self_cancel_then_return);
    tcase_add_test(tc, test_self_cancel_then_await);
    tcase_add_test(tc, test_cancel_reaches_awaited_task);
    tcase_add_test(tc, test_awaited_task_catches_cancel);
    tcase_add_test(tc, test_future_cancel_on_task_future_cancels_task);
    tcase_add_test(tc, test_task_future_completed_behind_its_back);
    tcase_add_test(tc, test_cancel_revives_abandoned_task);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetimes");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_unretrieved_error_reaches_handler);
    tcase_add_test(tc, test_cancelled_task_is_not_reported);
    tcase_add_test(tc, test_abandoned_tasks_leak_nothing);
    tcase_add_test(tc, test_close_with_tasks_still_held);
    tcase_add_test(tc, test_close_with_the_wake_posted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(task_suite());
}
