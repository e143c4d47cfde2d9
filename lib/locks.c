/*
 * locks.c - Semaphore and Event on futures.
 *
 * The two are twins, and share everything but their state: a semaphore is
 * a count of permits, an event a flag, and each is a `struct lock` (the
 * loop, the list of waiting futures, and the end of life) with that state
 * after it.  The list is waiters.h's: each waiter is a record that is the
 * userdata of the first done callback on its future and of its canceller,
 * so a cancelled acquire or wait leaves at once.  What is left here is
 * when to wake and whom.
 *
 * Neither is reference counted for its users (locks.h rule 1).  The count
 * in struct lock covers one thing: a wake on a closed loop, where
 * completing a future releases its callbacks at once and user code there
 * may free the semaphore or event that is waking them.
 */
#include "locks.h"
#include "errors.h"
#include "internal.h"
#include "waiters.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

/* ------------------------------------------------------------ the twin */

struct lock {
    unsigned refs;     /* the creator's + one per call that is waking */
    as_loop *loop;
    int freed;         /* _free() was called: no new waiters */
    as__waiters q;
};

/* A zeroed lock of `size` bytes (the struct lock first) on loop, or NULL
 * with the error in *err. */
static void *lock_new(as_loop *loop, size_t size, int *err)
{
    struct lock *l;

    if (!loop || as_loop_is_closed(loop) || !(l = calloc(1, size))) {
        *err = !loop ? AS_EINVAL : as_loop_is_closed(loop) ? AS_ECLOSED
                                                           : -ENOMEM;
        return NULL;
    }
    l->refs = 1;
    l->loop = loop;
    as__waiters_init(&l->q, NULL, NULL);
    as__loop_obj_ref(loop);
    *err = 0;
    return l;
}

static void lock_unref(struct lock *l)
{
    as_loop *loop;

    if (--l->refs > 0)
        return;
    loop = l->loop;
    free(l);
    as__loop_obj_unref(loop);
}

static void lock_free(struct lock *l)
{
    if (l->freed)
        return;
    l->freed = 1;
    as__waiters_free(&l->q, NULL);
    lock_unref(l);
}

/* What a caller that need not wait gets: a future already finished. */
static as_future *granted(as_loop *loop)
{
    as_future *f;
    if (as_future_new(loop, &f) == 0)
        as_future_set_result(f, NULL, NULL);
    return f;
}

/* ------------------------------------------------------------ semaphore */

struct as_semaphore {
    struct lock l;     /* first: a struct lock * is one of these */
    unsigned value;
};

/* Grant free permits to the longest waiters.  From the grant on, the
 * permit is the awaiter's: a cancel that comes later finds the future done
 * and takes nothing back (a task delivers the grant and takes the
 * cancellation at its next await, task.h). */
static void sem_wake(as_semaphore *sem)
{
    sem->l.refs++;
    while (sem->value > 0 && as__waiters_wake_one(&sem->l.q, 0, NULL))
        sem->value--;
    lock_unref(&sem->l);
}

/* A waiter left without a permit (cancelled, or completed by someone
 * else): a permit that is free goes to those behind it. */
static void sem_waiter_left(void *owner)
{
    sem_wake(owner);
}

int as_semaphore_new(as_loop *loop, unsigned value, as_semaphore **out)
{
    int err = AS_EINVAL;

    if (out && (*out = lock_new(loop, sizeof **out, &err))) {
        (*out)->value = value;
        as__waiters_init(&(*out)->l.q, sem_waiter_left, *out);
    }
    return err;
}

void as_semaphore_free(as_semaphore *sem)
{
    if (sem)
        lock_free(&sem->l);
}

int as_semaphore_locked(const as_semaphore *sem)
{
    if (!sem)
        return 0;
    return sem->value == 0 || as__waiters_pending(&sem->l.q);
}

unsigned as_semaphore_value(const as_semaphore *sem)
{
    return sem ? sem->value : 0;
}

size_t as_semaphore_waiting(const as_semaphore *sem)
{
    return sem ? as__waiters_len(&sem->l.q) : 0;
}

/*
 * A free permit is granted at once: a finished future and nothing else.  A
 * waiting acquire joins the list.  Cost: one future, plus one small block
 * and one done callback when it has to wait.
 */
as_future *as_semaphore_acquire(as_semaphore *sem)
{
    as_future *f;

    if (!sem || sem->l.freed)
        return NULL;
    if (as_semaphore_locked(sem))
        return as__waiters_add(&sem->l.q, sem->l.loop);
    if ((f = granted(sem->l.loop)))
        sem->value--;
    return f;
}

int as_semaphore_release(as_semaphore *sem)
{
    if (!sem)
        return AS_EINVAL;
    if (sem->value == UINT_MAX)
        return AS_ESTATE;
    sem->value++;
    sem_wake(sem);
    return 0;
}

/* ------------------------------------------------------------ event */

struct as_event {
    struct lock l;     /* first, as in a semaphore */
    int set;
};

int as_event_new(as_loop *loop, as_event **out)
{
    int err = AS_EINVAL;

    if (out)
        *out = lock_new(loop, sizeof **out, &err);
    return err;
}

void as_event_free(as_event *ev)
{
    if (ev)
        lock_free(&ev->l);
}

as_future *as_event_wait(as_event *ev)
{
    if (!ev || ev->l.freed)
        return NULL;
    if (ev->set)
        return granted(ev->l.loop);
    return as__waiters_add(&ev->l.q, ev->l.loop);
}

void as_event_set(as_event *ev)
{
    if (!ev || ev->set)
        return;
    ev->set = 1;
    ev->l.refs++; /* as in sem_wake() */
    as__waiters_wake_all(&ev->l.q, 0, NULL);
    lock_unref(&ev->l);
}

void as_event_clear(as_event *ev)
{
    if (ev)
        ev->set = 0;
}

int as_event_is_set(const as_event *ev)
{
    return ev ? ev->set : 0;
}
