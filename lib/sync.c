/*
 * sync.c - sleep, gather and wait_for on futures (Semaphore and Event are
 * in locks.c).
 *
 * One pattern runs through the file.  Each combinator keeps a small record
 * that is the userdata of the done callbacks it puts on the futures it waits
 * on.  The record *produces* its own future (holds it) and *waits* on the
 * others without holding them; a record is freed when the last of its
 * callbacks has been released.  So the graph of references has no cycles,
 * and when the loop closes and producers drop their futures, everything
 * waiting on them unwinds by itself (task.h rule 2, sync.h rule 1).
 *
 * A record that stands for work (gather, wait_for) is also its future's
 * canceller (future.h), so as_future_cancel() on the future reaches the
 * work.  The record completes its own future with
 * as_future_set_cancelled() / as_future_transfer(), never with
 * as_future_cancel(), which would only ask the record again.  A record
 * freed while its future is still pending removes the canceller first.
 *
 * Where a record cancels other futures, it holds a reference to itself
 * across the calls: a cancel on a closed loop releases callbacks at once,
 * and one of them may be the record's last.
 */
#include "sync.h"
#include "errors.h"
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Complete dst with src's outcome, moving result or error detail
 * (future.h; it cannot fail for want of memory). */
static void pass_on(as_future *dst, as_future *src)
{
    (void)as_future_transfer(dst, src);
}

/* ------------------------------------------------------------ sleep */

/* Two owners: the timer (which also holds the future) and the done
 * callback on the future (which cancels the timer if the future is
 * cancelled first). */
struct sleep {
    unsigned refs;
    as_future *future; /* held until the timer is gone */
    as_handle *timer;
};

static void sleep_unref(struct sleep *s)
{
    if (--s->refs == 0) {
        as_handle_unref(s->timer);
        free(s);
    }
}

static void sleep_fire(void *userdata)
{
    struct sleep *s = userdata;
    as_future_set_result(s->future, NULL, NULL); /* AS_ESTATE if cancelled */
}

static void sleep_timer_release(void *userdata)
{
    struct sleep *s = userdata;
    as_future *f = s->future;
    s->future = NULL;
    as_future_unref(f);
    sleep_unref(s);
}

static void sleep_done(as_future *future, void *userdata)
{
    struct sleep *s = userdata;
    (void)future;
    as_handle_cancel(s->timer); /* nothing if it already fired */
}

static void sleep_done_release(void *userdata)
{
    sleep_unref(userdata);
}

as_future *as_sleep(as_loop *loop, double delay)
{
    struct sleep *s;
    as_future *f;

    if (!loop)
        return NULL;
    if (isnan(delay))
        return as__future_failed(loop, AS_EINVAL, "sleep delay is NaN");
    if (as_future_new(loop, &f) < 0)
        return NULL;
    if (!(s = calloc(1, sizeof *s))) {
        as_future_unref(f);
        return NULL;
    }
    s->refs = 1;
    s->future = as_future_ref(f);
    if (as_loop_call_later(loop, delay, sleep_fire, s, sleep_timer_release,
                           &s->timer) < 0) {
        as_future_unref(f);
        as_future_unref(f);
        free(s);
        return NULL;
    }
    s->refs++;
    if (as_future_add_done_callback(f, sleep_done, s, sleep_done_release) < 0) {
        /* Without the callback a cancelled sleep keeps its timer until it
         * is due; still correct, only slower to free. */
        s->refs--;
    }
    return f;
}

/* ------------------------------------------------------------ gather */

struct gather_child {
    struct gather *g;
    as_future *future; /* weak while pending; a reference once done */
    int done;          /* its callback ran */
};

struct gather {
    unsigned refs;
    as_future *outer;  /* held */
    int return_exceptions;
    int finished;      /* outer's outcome is decided */
    int cancel_requested;
    size_t count, n_done;
    struct gather_child child[];
};

static void gather_unref(struct gather *g)
{
    size_t i;

    if (--g->refs > 0)
        return;
    if (!g->finished)
        as_future_set_canceller(g->outer, NULL, NULL);
    for (i = 0; i < g->count; i++)
        if (g->child[i].done)
            as_future_unref(g->child[i].future);
    as_future_unref(g->outer);
    free(g);
}

static void gather_result_free(void *p)
{
    as_gather_result *r = p;
    size_t i;

    for (i = 0; i < r->count; i++)
        as_future_unref(r->futures[i]);
    free(r);
}

static as_gather_result *gather_result_new(size_t count)
{
    as_gather_result *r;

    if (count > (SIZE_MAX - sizeof *r) / sizeof(as_future *))
        return NULL;
    if (!(r = malloc(sizeof *r + count * sizeof(as_future *))))
        return NULL;
    r->count = count;
    r->futures = (as_future **)(r + 1);
    return r;
}

/* Decide the outer future.  Children already done are no longer needed. */
static void gather_finish(struct gather *g)
{
    size_t i;

    g->finished = 1;
    for (i = 0; i < g->count; i++) {
        if (g->child[i].done) {
            as_future_unref(g->child[i].future);
            g->child[i].future = NULL;
            g->child[i].done = 0;
        }
    }
}

static void gather_child_done(as_future *future, void *userdata)
{
    struct gather_child *c = userdata;
    struct gather *g = c->g;
    int err = as_future_error(future); /* also marks the error retrieved */
    size_t i;

    c->future = as_future_ref(future);
    c->done = 1;
    g->n_done++;
    if (g->finished) {
        as_future_unref(c->future);
        c->future = NULL;
        c->done = 0;
        return;
    }
    if (err != 0 && !g->return_exceptions) {
        gather_finish(g); /* the callback still holds the child */
        if (as_future_cancelled(future) && g->cancel_requested)
            as_future_set_cancelled(g->outer, as_future_error_message(future));
        else if (as_future_cancelled(future))
            /* A child's cancellation is an error of the gather (asyncio
             * sets CancelledError as its exception): FINISHED, not
             * CANCELLED. */
            as__future_fail(g->outer, AS_ECANCELLED,
                            as_future_error_message(future));
        else /* the child's error itself, detail and all */
            pass_on(g->outer, future);
        return;
    }
    if (g->n_done < g->count)
        return;
    if (g->cancel_requested) {
        gather_finish(g);
        as_future_set_cancelled(g->outer, NULL);
    } else {
        as_gather_result *r = gather_result_new(g->count);
        if (!r) {
            gather_finish(g);
            as__future_fail(g->outer, -ENOMEM, NULL);
            return;
        }
        for (i = 0; i < g->count; i++) {
            r->futures[i] = g->child[i].future; /* the reference moves */
            g->child[i].done = 0;
            g->child[i].future = NULL;
        }
        gather_finish(g);
        as_future_set_result(g->outer, r, gather_result_free);
    }
}

static void gather_child_release(void *userdata)
{
    struct gather_child *c = userdata;
    if (!c->done)
        c->future = NULL; /* freed without completing (rule 1) */
    gather_unref(c->g);
}

static int gather_cancel(as_future *outer, const char *message, void *userdata)
{
    struct gather *g = userdata;
    int any = 0;
    size_t i;

    (void)outer;
    if (g->finished)
        return 0;
    g->refs++;
    for (i = 0; i < g->count; i++)
        if (!g->child[i].done && g->child[i].future &&
            as_future_cancel(g->child[i].future, message))
            any = 1;
    if (any)
        g->cancel_requested = 1;
    gather_unref(g);
    return any;
}

static void unref_all(as_future *const *futures, size_t from, size_t count)
{
    size_t i;
    if (futures)
        for (i = from; i < count; i++)
            as_future_unref(futures[i]);
}

/* Refused input: the futures we took over can no longer be observed by
 * anyone, so the work behind them is cancelled before they are dropped. */
static void cancel_all(as_future *const *futures, size_t count)
{
    size_t i;
    if (futures)
        for (i = 0; i < count; i++)
            as_future_cancel(futures[i], NULL);
    unref_all(futures, 0, count);
}

as_future *as_gather(as_loop *loop, as_future *const *futures, size_t count,
                     int return_exceptions)
{
    as_future *outer;
    struct gather *g;
    size_t i;
    int err;

    if (!loop || as_future_new(loop, &outer) < 0) {
        unref_all(futures, 0, count);
        return NULL;
    }
    if (count == 0) {
        as_gather_result *r = gather_result_new(0);
        if (!r)
            as__future_fail(outer, -ENOMEM, NULL);
        else
            as_future_set_result(outer, r, gather_result_free);
        return outer;
    }
    for (i = 0; futures && i < count; i++)
        if (!futures[i] || as_future_loop(futures[i]) != loop)
            break;
    if (!futures || i < count) {
        cancel_all(futures, count);
        as__future_fail(outer, AS_EINVAL,
                        "gather: NULL future or future of another loop");
        return outer;
    }
    if (count > (SIZE_MAX - sizeof *g) / sizeof g->child[0] ||
        !(g = calloc(1, sizeof *g + count * sizeof g->child[0]))) {
        unref_all(futures, 0, count);
        as__future_fail(outer, -ENOMEM, NULL);
        return outer;
    }
    g->refs = 1; /* ours, until the end of this function */
    g->outer = as_future_ref(outer);
    g->return_exceptions = return_exceptions;
    g->count = count;
    as_future_set_canceller(outer, gather_cancel, g); /* fresh: cannot fail */
    for (i = 0; i < count; i++) {
        struct gather_child *c = &g->child[i];
        c->g = g;
        c->future = futures[i];
        g->refs++;
        err = as_future_add_done_callback(futures[i], gather_child_done, c,
                                          gather_child_release);
        if (err < 0) {
            g->refs--;
            c->future = NULL;
            if (!g->finished) {
                gather_finish(g);
                as__future_fail(outer, err, NULL);
            }
        }
    }
    /* The references we took over go: from now on the children are kept
     * alive by whatever completes them. */
    unref_all(futures, 0, count);
    gather_unref(g);
    return outer;
}

/* ------------------------------------------------------------ wait_for */

struct wait_for {
    unsigned refs;
    as_future *inner;  /* weak, until its callback runs or it is freed */
    as_future *outer;  /* held */
    as_handle *timer;  /* our handle reference, or NULL */
    int timed_out;     /* we cancelled the inner future for the timeout */
    int cancel_requested;
    int finished;
};

static void wf_unref(struct wait_for *w)
{
    if (--w->refs > 0)
        return;
    if (!w->finished)
        as_future_set_canceller(w->outer, NULL, NULL);
    as_handle_unref(w->timer);
    as_future_unref(w->outer);
    free(w);
}

static void wf_finish(struct wait_for *w)
{
    w->finished = 1;
    if (w->timer)
        as_handle_cancel(w->timer); /* nothing if it already ran */
}

static void wf_inner_done(as_future *inner, void *userdata)
{
    struct wait_for *w = userdata;
    int err = as_future_error(inner);

    w->inner = NULL;
    if (w->finished)
        return;
    w->refs++;
    wf_finish(w);
    if (err == AS_ECANCELLED && as_future_cancelled(inner) && w->timed_out &&
        !w->cancel_requested)
        as__future_fail(w->outer, AS_ETIMEOUT,
                        NULL); /* we cancelled it: a timeout */
    else
        /* The inner outcome itself: its value (which wins even over a
         * timeout that already fired), its error with the detail, or its
         * cancellation.  If the outer future was completed behind our back,
         * nothing moves and the inner future keeps its result. */
        pass_on(w->outer, inner);
    wf_unref(w);
}

static void wf_inner_release(void *userdata)
{
    struct wait_for *w = userdata;

    if (w->inner) {
        /* Freed without completing: it will never finish cancelling. */
        w->inner = NULL;
        if (!w->finished && w->timed_out) {
            wf_finish(w);
            as__future_fail(w->outer, AS_ETIMEOUT, NULL);
        }
    }
    wf_unref(w);
}

static void wf_timeout(void *userdata)
{
    struct wait_for *w = userdata;

    if (w->finished)
        return;
    if (!w->inner) { /* the inner future is gone; nothing to wait for */
        wf_finish(w);
        as__future_fail(w->outer, AS_ETIMEOUT, NULL);
        return;
    }
    /* Completed earlier in this same turn: its callback is on its way and
     * its result wins. */
    if (as_future_done(w->inner))
        return;
    w->timed_out = 1;
    w->refs++;
    as_future_cancel(w->inner, NULL);
    wf_unref(w);
}

static void wf_timer_release(void *userdata)
{
    wf_unref(userdata);
}

static int wf_cancel(as_future *outer, const char *message, void *userdata)
{
    struct wait_for *w = userdata;
    int r = 0;

    (void)outer;
    if (w->finished)
        return 0;
    w->refs++;
    w->cancel_requested = 1;
    if (w->timer)
        as_handle_cancel(w->timer);
    if (!w->inner) {
        wf_finish(w);
        as_future_set_cancelled(w->outer, message);
        r = 1;
    } else if (!as_future_done(w->inner)) {
        r = as_future_cancel(w->inner, message);
    }
    wf_unref(w);
    return r;
}

as_future *as_wait_for(as_loop *loop, as_future *inner, double timeout)
{
    struct wait_for *w;
    as_future *outer;
    int err;

    if (!loop || as_future_new(loop, &outer) < 0) {
        as_future_unref(inner);
        return NULL;
    }
    if (!inner) {
        as__future_fail(outer, -ENOMEM, "wait_for: no future to wait for");
        return outer;
    }
    if (as_future_loop(inner) != loop || isnan(timeout)) {
        as_future_cancel(inner, NULL); /* nobody could see it finish */
        as_future_unref(inner);
        as__future_fail(outer, AS_EINVAL,
                        "wait_for: future of another loop or NaN timeout");
        return outer;
    }
    if (!(w = calloc(1, sizeof *w))) {
        as_future_unref(inner);
        as__future_fail(outer, -ENOMEM, NULL);
        return outer;
    }
    w->refs = 2; /* ours until the end of this function; the inner callback's */
    w->outer = as_future_ref(outer);
    w->inner = inner;
    as_future_set_canceller(outer, wf_cancel, w); /* fresh: cannot fail */
    if ((err = as_future_add_done_callback(inner, wf_inner_done, w,
                                           wf_inner_release)) < 0) {
        w->inner = NULL;
        w->refs--;
        wf_finish(w);
        as__future_fail(outer, err, NULL);
        as_future_cancel(inner, NULL);
        as_future_unref(inner);
        wf_unref(w);
        return outer;
    }
    if (timeout <= 0) {
        /* asyncio: with no time at all, cancel now unless it is done. */
        if (!as_future_done(inner)) {
            w->timed_out = 1;
            as_future_cancel(inner, NULL);
        }
    } else if (!isinf(timeout)) {
        w->refs++;
        err = as_loop_call_later(loop, timeout, wf_timeout, w,
                                 wf_timer_release, &w->timer);
        if (err < 0) {
            w->refs--;
            w->timer = NULL;
            if (!w->finished) {
                wf_finish(w);
                as__future_fail(outer, err, NULL);
            }
            as_future_cancel(inner, NULL);
        }
    }
    as_future_unref(inner); /* now weak (rule 1) */
    wf_unref(w);
    return outer;
}
