/*
 * tasks.c - one coroutine, compiled by hand twice: once as the flat state
 * machine a compiler would make of it, once with the AS_TASK macros.  Both
 * run side by side, and a gather waits for the two.  (Chapter 5.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "asyncstreams.h"

/* listing: coroutine */
/*
 * The coroutine both versions stand for:
 *
 *     async def greet(name, n):
 *         for i in range(n):
 *             print(name, i)
 *             await asyncio.sleep(0.01)
 *         return n
 */
/* end listing */

/* listing: state */
/* The frame: the arguments, every local that lives across an await, and
 * pc, the place to resume.  A fresh frame has pc == 0: "at the top". */
struct greet_state {
    int pc;
    const char *name;
    int n;
    int i;
};
/* end listing */

static int *int_box(int v)
{
    int *p = malloc(sizeof *p);
    if (p)
        *p = v;
    return p;
}

/* listing: raw */
/* The state machine, one case per stretch of code between two awaits:
 *   0: the top of the function       -> 1
 *   1: the loop test, print, await   -> 2 (suspended in the sleep)
 *   2: back from the sleep, i += 1   -> 1
 * A `break` moves to the next state without returning; a `return` hands
 * control back to the loop. */
static as_step greet_raw(as_task *t, void *p)
{
    struct greet_state *s = p;

    for (;;) {
        switch (s->pc) {
        case 0:
            s->i = 0;
            s->pc = 1;
            break;
        case 1:
            if (s->i >= s->n)
                return as_task_return(t, int_box(s->n), free);
            printf("%s %d\n", s->name, s->i);
            s->pc = 2;
            return as_task_await(t, as_sleep(as_task_loop(t), 0.01));
        case 2:
            if (as_task_error(t) != 0)        /* the await "raised" */
                return as_task_propagate(t);
            s->i++;
            s->pc = 1;
            break;
        default:
            return as_task_fail(t, AS_ESTATE, "bad resume point");
        }
    }
}
/* end listing */

/* listing: macro */
/* The same coroutine with the macros: it reads like the Python. */
static as_step greet(as_task *t, void *p)
{
    struct greet_state *s = p;

    AS_TASK_BEGIN(s);
    for (s->i = 0; s->i < s->n; s->i++) {
        printf("%s %d\n", s->name, s->i);
        AS_AWAIT(t, s, as_sleep(as_task_loop(t), 0.01));
        AS_TASK_CHECK(t);
    }
    AS_TASK_RETURN(t, int_box(s->n), free);
    AS_TASK_END(t);
}
/* end listing */

/* listing: main */
/* Start one task; hand back (a reference to) its future. */
static as_future *spawn(as_loop *loop, as_task_step_fn step, const char *name,
                        int n)
{
    struct greet_state *s = calloc(1, sizeof *s);
    as_task *t;
    as_future *f;

    if (!s)
        return NULL;
    s->name = name;
    s->n = n;
    if (as_task_new(loop, step, s, free, &t) < 0) {
        free(s);
        return NULL;
    }
    f = as_future_ref(as_task_future(t));
    as_task_unref(t); /* the task runs on; we keep only its future */
    return f;
}

int main(void)
{
    as_loop *loop;
    as_future *tasks[2], *all;
    as_gather_result *r;
    int err;

    if ((err = as_loop_new(&loop)) < 0) {
        fprintf(stderr, "loop: %s\n", as_strerror(err));
        return 1;
    }
    tasks[0] = spawn(loop, greet_raw, "raw", 3);
    tasks[1] = spawn(loop, greet, "macro", 2);
    /* gather takes the two references; it tolerates a NULL (fails EINVAL). */
    all = as_gather(loop, tasks, 2, 0);
    err = all ? as_loop_run_until_complete(loop, all) : -ENOMEM;
    if (err < 0) {
        fprintf(stderr, "gather: %s\n", as_strerror(err));
    } else {
        r = as_future_result(all);
        printf("results: %d %d\n", *(int *)as_future_result(r->futures[0]),
               *(int *)as_future_result(r->futures[1]));
    }
    as_future_unref(all);
    if (as_loop_close(loop) != 0) {
        fprintf(stderr, "something is still alive\n");
        return 1;
    }
    return err < 0;
}
/* end listing */
