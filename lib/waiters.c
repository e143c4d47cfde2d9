/*
 * waiters.c - a FIFO of futures waiting for one condition (waiters.h).
 *
 * The list is doubly linked so that a cancelled waiter, which may sit
 * anywhere in it, leaves in O(1).  A record's `q` is the list while it is
 * in it and NULL after: the only way its callbacks can tell "still
 * waiting" from "already dealt with", and what lets the owner go while
 * records still wait for their callbacks to be released.
 */
#include "waiters.h"
#include "internal.h"

struct as__waiter {
    struct as__waiter *prev, *next;
    as__waiters *q;     /* the list while linked, else NULL */
    as_future *future;  /* held until the record is freed */
};

void as__waiters_init(as__waiters *q, as__waiters_left_fn left, void *owner)
{
    q->head = q->tail = NULL;
    q->len = 0;
    q->left = left;
    q->owner = owner;
}

static void push(as__waiters *q, struct as__waiter *w)
{
    w->prev = q->tail;
    w->next = NULL;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    w->q = q;
    q->len++;
}

static void unlink_waiter(struct as__waiter *w)
{
    as__waiters *q = w->q;

    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->prev = w->next = NULL;
    w->q = NULL;
    q->len--;
}

/* Completed by someone else: it took nothing, tell the owner. */
static void waiter_done(as_future *future, void *userdata)
{
    struct as__waiter *w = userdata;
    as__waiters *q = w->q;

    (void)future;
    if (!q)
        return; /* woken or cancelled by the list: the usual case */
    unlink_waiter(w);
    if (q->left)
        q->left(q->owner);
}

static void waiter_release(void *userdata)
{
    struct as__waiter *w = userdata;
    as_future *f = w->future;

    /* Still linked only if its future completed on a closed loop, where
     * the callback could not run. */
    if (w->q)
        unlink_waiter(w);
    as__loop_free(as_future_loop(f), w, sizeof *w);
    as_future_unref(f); /* last: it holds the loop's memory */
}

/* The canceller, which only a pending waiter has (future.c drops it on
 * completion), and a pending waiter is in the list.  The owner hears of it
 * before the future completes: completing it may release callbacks at once
 * on a closed loop, and after that nothing here may touch the owner. */
static int waiter_cancel(as_future *future, const char *message, void *userdata)
{
    struct as__waiter *w = userdata;
    as__waiters *q = w->q;

    if (q) {
        unlink_waiter(w);
        if (q->left)
            q->left(q->owner);
    }
    as_future_set_cancelled(future, message);
    return 1;
}

as_future *as__waiters_add(as__waiters *q, as_loop *loop)
{
    struct as__waiter *w;
    as_future *f;

    if (as_future_new(loop, &f) < 0)
        return NULL;
    if (!(w = as__loop_alloc(loop, sizeof *w))) {
        as_future_unref(f);
        return NULL;
    }
    w->q = NULL;
    w->future = as_future_ref(f);
    /* A fresh future uses its inline callback node: this cannot fail for
     * want of memory, but a library does not count on it. */
    if (as_future_add_done_callback(f, waiter_done, w, waiter_release) < 0) {
        as__loop_free(loop, w, sizeof *w);
        as_future_unref(f);
        as_future_unref(f);
        return NULL;
    }
    as_future_set_canceller(f, waiter_cancel, w); /* pending: cannot fail */
    push(q, w);
    return f;
}

int as__waiters_wake_one(as__waiters *q, int code, const char *message)
{
    struct as__waiter *w;

    while ((w = q->head) != NULL) {
        as_future *f = w->future;
        unlink_waiter(w);
        if (as_future_done(f))
            continue; /* completed by someone else: it wanted nothing */
        /* The record may be freed in here (a closed loop): not used after. */
        if (code == 0)
            as_future_set_result(f, NULL, NULL);
        else
            as__future_fail(f, code, message);
        return 1;
    }
    return 0;
}

void as__waiters_wake_all(as__waiters *q, int code, const char *message)
{
    while (as__waiters_wake_one(q, code, message))
        ;
}

/* As their owner: set_cancelled, not as_future_cancel(), which would only
 * ask our own canceller and call `left` on an owner that is going. */
void as__waiters_free(as__waiters *q, const char *message)
{
    struct as__waiter *w;

    while ((w = q->head) != NULL) {
        as_future *f = w->future;
        unlink_waiter(w);
        as_future_set_cancelled(f, message); /* AS_ESTATE if done: fine */
    }
}

size_t as__waiters_len(const as__waiters *q)
{
    return q->len;
}

int as__waiters_pending(const as__waiters *q)
{
    const struct as__waiter *w;

    for (w = q->head; w; w = w->next)
        if (!as_future_done(w->future))
            return 1;
    return 0;
}
