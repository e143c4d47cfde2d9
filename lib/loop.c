/*
 * loop.c - the event loop: the ready queue, timers, and running them.
 *
 * Everything the loop runs is an as_handle.  A one-shot callback (call_soon)
 * goes straight into the ready queue (a ring, ring.h); a timer waits in the
 * timer heap (heap.h) until it is due and then joins the ready queue; an fd
 * watcher sits in the fd table (watch.c) and joins the ready queue each turn
 * its fd is ready; an end-of-turn callback waits in a second ring, run after
 * the ready queue; one from another thread waits in a locked inbox that each
 * turn empties into the ready queue.  One way to run a callback, one way to
 * cancel it: that is the whole design.  Which backend polls the fds is
 * backend.c's business.  The structs are in loop_impl.h, shared with
 * watch.c.
 *
 * Memory: a handle is reference counted.  The loop holds one reference while
 * the handle is scheduled (in the queue, the heap or the fd table) and one
 * more while a watcher sits in the ready queue; a caller who asked for the
 * handle holds one.  The userdata is separate: it is handed back through
 * destroy exactly once (drop_userdata), never while its callback is running.
 */
#include "loop_impl.h"
#include "errors.h"
#include "internal.h"
#include "sock.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define END_OF_TURN_ROUNDS 16

/* ------------------------------------------------------------ handles */

/*
 * A handle that only the loop will hold (no `out` reference, made on the
 * loop's thread) comes from the loop's cache: it is given back before the
 * loop's memory can go.  A handle a caller holds may outlive the loop, and
 * one made by another thread must not touch the cache: those use malloc().
 */
static as_handle *handle_new(as_loop *loop, int kind, as_callback_fn fn,
                             void *userdata, as_destroy_fn destroy, int cached)
{
    as_handle *h = cached ? as__cache_alloc(&loop->cache, sizeof *h)
                          : malloc(sizeof *h);
    if (!h)
        return NULL;
    h->cached = (unsigned char)cached;
    h->fn = fn;
    h->userdata = userdata;
    h->destroy = destroy;
    h->loop = loop;
    h->next = NULL;
    as__heap_node_init(&h->timer); /* as__heap_push() sets when and seq */
    h->refs = 1;
    h->kind = (unsigned char)kind;
    h->cancelled = 0;
    h->running = 0;
    h->done = 0;
    h->userdata_live = 1;
    h->queued = 0;
    return h;
}

static AS__NOINLINE void handle_free(as_handle *h)
{
    if (h->cached)
        as__cache_free(&h->loop->cache, h, sizeof *h);
    else
        free(h);
}

static void handle_unref(as_handle *h)
{
    if (--h->refs == 0)
        handle_free(h);
}

/* Hand userdata back through destroy, exactly once. */
static void drop_userdata(as_handle *h)
{
    if (h->userdata_live) {
        h->userdata_live = 0;
        if (h->destroy)
            h->destroy(h->userdata);
    }
}

/* For watch.c (loop_impl.h): the fd table's watchers are handles like the
 * rest, made here. */
as_handle *as__watcher_new(as_loop *loop, as_callback_fn fn, void *userdata,
                           as_destroy_fn destroy)
{
    return handle_new(loop, KIND_WATCHER, fn, userdata, destroy, 1);
}

void as_handle_unref(as_handle *h)
{
    if (h)
        handle_unref(h);
}

int as_handle_cancelled(const as_handle *h)
{
    return h && h->cancelled;
}

double as_handle_when(const as_handle *h)
{
    return h && h->kind == KIND_TIMER ? h->timer.when : 0.0;
}

/* ------------------------------------------------------------ queues */

/* The ready and end-of-turn queues are rings of handle pointers (ring.h):
 * these three are all the loop does with them, and inline to the ring's
 * own few instructions. */
static int ring_push(as__ring *q, as_handle *h)
{
    return as__ring_push(q, &h, sizeof h);
}

static as_handle *ring_pop(as__ring *q)
{
    as_handle *h = *(as_handle **)as__ring_front(q, sizeof h);
    as__ring_pop(q);
    return h;
}

static const as_handle *ring_at(const as__ring *q, size_t i)
{
    return *(as_handle *const *)as__ring_at(q, i, sizeof(as_handle *));
}

/* The handle a heap node is the timer of. */
static as_handle *timer_handle(as__heap_node *n)
{
    return (as_handle *)((char *)n - offsetof(as_handle, timer));
}

void as_handle_cancel(as_handle *h)
{
    if (!h || h->cancelled || h->done)
        return;
    /* A one-shot callback that is running can no longer be cancelled; a
     * watcher can (its own callback may remove it). */
    if (h->running && h->kind != KIND_WATCHER)
        return;
    h->cancelled = 1;
    if (as__heap_holds(&h->timer)) {
        as__heap_remove(&h->loop->timers, &h->timer);
        drop_userdata(h);
        handle_unref(h); /* the heap's reference */
        return;
    }
    /* In a queue, which skips it and drops its reference when its turn
     * comes, or a watcher, whose slot's reference its remover drops.  A
     * running watcher's userdata is dropped when its callback returns,
     * never under its feet. */
    if (!h->running)
        drop_userdata(h);
}

/* ------------------------------------------------------------ loop */

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double as_loop_time(const as_loop *loop)
{
    (void)loop;
    return monotonic_now();
}

/* Non-blocking, and close-on-exec from the start where the system can
 * (pipe2(), sock.c). */
static int make_wake_pipe(int fds[2])
{
    return as__sock_pipe(fds);
}

static int new_loop(as_loop **loopp, const as__backend_ops *backend)
{
    as_loop *loop = calloc(1, sizeof *loop);
    int err;

    if (!loop)
        return -ENOMEM;
    loop->backend = backend;
    as__cache_init(&loop->cache);
    as__ring_init(&loop->ready);
    as__ring_init(&loop->turn_end);
    as__heap_init(&loop->timers);
    loop->user_owned = 1;
    loop->wake_fds[0] = loop->wake_fds[1] = -1;
    if ((err = backend->create(&loop->backend_state)) < 0) {
        free(loop);
        return err;
    }
    if (pthread_mutex_init(&loop->inbox_lock, NULL) != 0) {
        backend->destroy(loop->backend_state);
        free(loop);
        return -ENOMEM;
    }
    if ((err = make_wake_pipe(loop->wake_fds)) < 0)
        goto fail;
    if (loop->wake_fds[0] >= backend->max_fd) {
        err = AS_EFDSETSIZE;
        goto fail;
    }
    /* The wake-up pipe is watched directly, not through a handle:
     * as__watch_on_ready() (watch.c) notices it and take_inbox() empties it. */
    if ((err = backend->set(loop->backend_state, loop->wake_fds[0], AS__READABLE)) < 0)
        goto fail;
    *loopp = loop;
    return 0;

fail:
    if (loop->wake_fds[0] >= 0) {
        close(loop->wake_fds[0]);
        close(loop->wake_fds[1]);
    }
    pthread_mutex_destroy(&loop->inbox_lock);
    backend->destroy(loop->backend_state);
    free(loop);
    return err;
}

int as_loop_new(as_loop **out)
{
    return as_loop_new_with_backend(NULL, out);
}

int as_loop_new_with_backend(const char *name, as_loop **out)
{
    const as__backend_ops *backend = as__backend_find(name);

    if (!out)
        return AS_EINVAL;
    *out = NULL;
    if (!backend)
        return AS_EINVAL;
    return new_loop(out, backend);
}

const char *as_loop_backend_name(const as_loop *loop)
{
    return loop ? loop->backend->name : NULL;
}

int as_loop_max_fd(const as_loop *loop)
{
    return loop ? loop->backend->max_fd : 0;
}

int as_loop_is_closed(const as_loop *loop)
{
    return !loop || loop->closed;
}

int as_loop_is_running(const as_loop *loop)
{
    return loop && loop->running;
}

/* ------------------------------------------------------------ scheduling */

/* Queue a one-shot callback on the ready queue or the end-of-turn queue:
 * the one body behind call_soon and call_end_of_turn. */
static int push_oneshot(as_loop *loop, int end_of_turn, as_callback_fn fn,
                        void *userdata, as_destroy_fn destroy, as_handle **out)
{
    as_handle *h;

    if (!loop || !fn)
        return AS_EINVAL;
    if (loop->closed)
        return AS_ECLOSED;
    if (!(h = handle_new(loop, KIND_ONESHOT, fn, userdata, destroy, out == NULL)))
        return -ENOMEM;
    if (ring_push(end_of_turn ? &loop->turn_end : &loop->ready, h) < 0) {
        handle_free(h);
        return -ENOMEM;
    }
    if (out) {
        h->refs++;
        *out = h;
    }
    return 0;
}

int as_loop_call_soon(as_loop *loop, as_callback_fn fn, void *userdata,
                      as_destroy_fn destroy, as_handle **out)
{
    return push_oneshot(loop, 0, fn, userdata, destroy, out);
}

int as_loop_call_end_of_turn(as_loop *loop, as_callback_fn fn, void *userdata,
                             as_destroy_fn destroy, as_handle **out)
{
    return push_oneshot(loop, 1, fn, userdata, destroy, out);
}

/* ------------------------------------------------------------ repeating */

/*
 * Internal (internal.h): a reader wakes its waiter and a transport flushes
 * its queue at the end of many turns; a handle made once and scheduled
 * again each time saves making and freeing one per turn.  The owner holds
 * the one reference; a queue holds another while it is queued.
 */
as_handle *as__handle_new(as_loop *loop, as_callback_fn fn, void *userdata,
                          as_destroy_fn dropped)
{
    return handle_new(loop, KIND_REPEAT, fn, userdata, dropped, 1);
}

int as__handle_post(as_handle *h, int end_of_turn)
{
    as_loop *loop = h->loop;
    if (loop->closed)
        return AS_ECLOSED;
    if (h->queued)
        return 0;
    if (ring_push(end_of_turn ? &loop->turn_end : &loop->ready, h) < 0)
        return -ENOMEM;
    h->queued = 1;
    h->refs++;
    return 0;
}

int as__handle_queued(const as_handle *h)
{
    return h->queued;
}

void as__handle_free(as_handle *h)
{
    if (!h)
        return;
    if (h->queued)
        h->cancelled = 1; /* the queue skips it and drops its reference */
    handle_unref(h);
}

int as_loop_call_at(as_loop *loop, double when, as_callback_fn fn,
                    void *userdata, as_destroy_fn destroy, as_handle **out)
{
    as_handle *h;

    if (!loop || !fn || isnan(when))
        return AS_EINVAL;
    if (loop->closed)
        return AS_ECLOSED;
    if (!(h = handle_new(loop, KIND_TIMER, fn, userdata, destroy, out == NULL)))
        return -ENOMEM;
    if (as__heap_push(&loop->timers, &h->timer, when) < 0) {
        handle_free(h);
        return -ENOMEM;
    }
    if (out) {
        h->refs++;
        *out = h;
    }
    return 0;
}

int as_loop_call_later(as_loop *loop, double delay, as_callback_fn fn,
                       void *userdata, as_destroy_fn destroy, as_handle **out)
{
    if (isnan(delay))
        return AS_EINVAL;
    if (delay < 0)
        delay = 0;
    return as_loop_call_at(loop, monotonic_now() + delay, fn, userdata,
                           destroy, out);
}

int as_loop_call_soon_threadsafe(as_loop *loop, as_callback_fn fn,
                                 void *userdata, as_destroy_fn destroy)
{
    as_handle *h;
    int wake = 0;

    if (!loop || !fn)
        return AS_EINVAL;
    if (!(h = handle_new(loop, KIND_ONESHOT, fn, userdata, destroy, 0)))
        return -ENOMEM;
    pthread_mutex_lock(&loop->inbox_lock);
    if (loop->closed) {
        pthread_mutex_unlock(&loop->inbox_lock);
        free(h);
        return AS_ECLOSED;
    }
    if (loop->inbox_tail)
        loop->inbox_tail->next = h;
    else
        loop->inbox_head = h;
    loop->inbox_tail = h;
    if (!loop->wake_pending) {
        loop->wake_pending = 1;
        wake = 1;
    }
    /* Write while holding the lock so close() cannot close the pipe under
     * us.  One byte per batch; a full pipe (EAGAIN) already means "awake". */
    if (wake) {
        ssize_t n;
        do
            n = write(loop->wake_fds[1], "", 1);
        while (n < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&loop->inbox_lock);
    return 0;
}

/*
 * Move the thread-safe inbox into the ready queue; called once per turn.
 *
 * Order matters.  The pipe is emptied *before* the inbox is taken: a thread
 * that adds a callback after we take the inbox finds wake_pending cleared and
 * writes a new byte, which stays in the pipe and wakes the next poll.
 * Emptying it afterwards could swallow that byte and leave the callback
 * waiting until some unrelated event.  The pipe is read only in turns where
 * the backend reported it, so a busy loop pays no extra system call.  A
 * zero byte is call_soon_threadsafe's; any other is a signal's number,
 * written by signals.c's handler, and goes to as__signals_note().
 */
static void take_inbox(as_loop *loop)
{
    as_handle *h, *next;

    if (loop->wake_readable) {
        unsigned char buf[64];
        ssize_t n, i;
        loop->wake_readable = 0;
        do {
            n = read(loop->wake_fds[0], buf, sizeof buf);
            for (i = 0; i < n; i++)
                if (buf[i] != 0)        /* a signal's number (signals.c) */
                    as__signals_note(loop, buf[i]);
        } while (n > 0 || (n < 0 && errno == EINTR));
    }
    pthread_mutex_lock(&loop->inbox_lock);
    h = loop->inbox_head;
    loop->inbox_head = loop->inbox_tail = NULL;
    loop->wake_pending = 0;
    pthread_mutex_unlock(&loop->inbox_lock);

    for (; h; h = next) {
        next = h->next;
        h->next = NULL;
        if (ring_push(&loop->ready, h) < 0) {
            /* Out of memory: the callback cannot be queued.  Report it and
             * hand the userdata back rather than lose it silently. */
            as_error_context ctx = {"call_soon_threadsafe callback dropped",
                                    -ENOMEM, NULL, NULL};
            as_loop_call_exception_handler(loop, &ctx);
            drop_userdata(h);
            handle_unref(h);
        }
    }
}

/* ------------------------------------------------------------ running */

static void run_handle(as_handle *h)
{
    if (h->kind == KIND_REPEAT) {
        h->queued = 0; /* it may schedule itself again from fn */
        if (!h->cancelled)
            h->fn(h->userdata);
    } else if (!h->cancelled) {
        h->running = 1;
        h->fn(h->userdata);
        h->running = 0;
        if (h->kind != KIND_WATCHER) {
            h->done = 1;
            drop_userdata(h);
        } else if (h->cancelled) {
            drop_userdata(h); /* removed itself while running */
        }
    }
    handle_unref(h); /* the queue's reference */
}

/* One turn; see loop.h. */
static int turn(as_loop *loop)
{
    double timeout = -1, now;
    as__heap_node *due;
    size_t ntodo;
    int n = 0, round;

    if (loop->ready.len > 0 || loop->turn_end.len > 0 || loop->stopping)
        timeout = 0;
    else if ((due = as__heap_top(&loop->timers)) != NULL) {
        timeout = due->when - monotonic_now();
        if (timeout < 0)
            timeout = 0;
    }

    /* Callbacks waiting right after a turn that polled are nearly always
     * that poll's consequences (a read answered, a task woken): asking the
     * kernel again a few microseconds later finds nothing new and costs a
     * system call.  So such a turn skips the poll, and the descriptors are
     * still checked at least every second turn. */
    if (loop->ready.len > 0 && loop->polled) {
        loop->polled = 0;
    } else {
        loop->polled = 1;
        if (loop->poll_before) {
            loop->poll_before(loop->poll_userdata);
            n = loop->backend->poll(loop->backend_state, timeout, as__watch_on_ready, loop);
            loop->poll_after(loop->poll_userdata);
        } else {
            n = loop->backend->poll(loop->backend_state, timeout, as__watch_on_ready, loop);
        }
    }
    if (n == -EBADF)
        as__watch_drop_bad_fds(loop);
    else if (n < 0)
        return n;

    take_inbox(loop);

    now = monotonic_now();
    while ((due = as__heap_top(&loop->timers)) != NULL && due->when <= now) {
        /* Queued first, then taken out of the heap: out of memory, it
         * stays in the heap, keeps its place, and is tried next turn. */
        if (ring_push(&loop->ready, timer_handle(due)) < 0)
            break;
        as__heap_remove(&loop->timers, due);
    }

    /* Run only what is ready now; what these callbacks schedule waits for
     * the next turn. */
    for (ntodo = loop->ready.len; ntodo > 0; ntodo--)
        run_handle(ring_pop(&loop->ready));

    /* Then the end-of-turn callbacks, including those they schedule for the
     * end of this same turn (a reader's retry may write, and the write's
     * flush belongs to this turn too).  A callback that keeps rescheduling
     * itself here would never let the turn end, so after a few rounds what
     * is left waits for the end of the next turn. */
    for (round = 0; round < END_OF_TURN_ROUNDS && loop->turn_end.len > 0; round++)
        for (ntodo = loop->turn_end.len; ntodo > 0; ntodo--)
            run_handle(ring_pop(&loop->turn_end));
    return 0;
}

int as_loop_run_once(as_loop *loop)
{
    int err;
    if (!loop)
        return AS_EINVAL;
    if (loop->closed)
        return AS_ECLOSED;
    if (loop->running)
        return AS_ESTATE;
    loop->running = 1;
    err = turn(loop);
    /* A stop requested before or during this turn is satisfied by it: left
     * set, it would make every later turn poll without waiting (a spin). */
    loop->stopping = 0;
    loop->running = 0;
    return err;
}

int as_loop_run_forever(as_loop *loop)
{
    int err = 0;
    if (!loop)
        return AS_EINVAL;
    if (loop->closed)
        return AS_ECLOSED;
    if (loop->running)
        return AS_ESTATE;
    loop->running = 1;
    do
        err = turn(loop);
    while (err == 0 && !loop->stopping);
    loop->stopping = 0;
    loop->running = 0;
    return err;
}

void as_loop_stop(as_loop *loop)
{
    if (loop)
        loop->stopping = 1;
}

size_t as_loop_pending(const as_loop *loop)
{
    size_t i, n;
    if (!loop)
        return 0;
    n = loop->timers.len + loop->nwatchers + loop->turn_end.len;
    for (i = 0; i < loop->ready.len; i++) {
        const as_handle *h = ring_at(&loop->ready, i);
        if (!h->cancelled && h->kind != KIND_WATCHER)
            n++;
    }
    return n;
}

size_t as_loop_objects(const as_loop *loop)
{
    return loop ? loop->objects : 0;
}

/* ------------------------------------------------------------ poll hooks */

/* Hand the current hooks' userdata back, and forget them. */
static void drop_poll_hooks(as_loop *loop)
{
    as_destroy_fn destroy = loop->poll_destroy;
    void *userdata = loop->poll_userdata;

    loop->poll_before = loop->poll_after = NULL;
    loop->poll_userdata = NULL;
    loop->poll_destroy = NULL;
    if (destroy)
        destroy(userdata);
}

int as_loop_set_poll_hooks(as_loop *loop, as_callback_fn before,
                           as_callback_fn after, void *userdata,
                           as_destroy_fn destroy)
{
    if (!loop || !before != !after)
        return AS_EINVAL;
    if (loop->closed)
        return AS_ECLOSED;
    drop_poll_hooks(loop);
    loop->poll_before = before;
    loop->poll_after = after;
    loop->poll_userdata = userdata;
    loop->poll_destroy = destroy;
    return 0;
}

/* ------------------------------------------------------------ closing */

static void loop_free(as_loop *loop)
{
    if (loop->exc_destroy)
        loop->exc_destroy(loop->exc_userdata);
    pthread_mutex_destroy(&loop->inbox_lock);
    as__cache_destroy(&loop->cache);
    free(loop);
}

void *as__loop_alloc(as_loop *loop, size_t size)
{
    return as__cache_alloc(&loop->cache, size);
}

void as__loop_free(as_loop *loop, void *p, size_t size)
{
    as__cache_free(&loop->cache, p, size);
}

void as__loop_obj_ref(as_loop *loop)
{
    loop->objects++;
}

void as__loop_obj_unref(as_loop *loop)
{
    if (--loop->objects == 0 && !loop->user_owned)
        loop_free(loop);
}

int as_loop_close(as_loop *loop)
{
    as_handle *inbox;
    as__heap_node *timer;

    if (!loop)
        return AS_EINVAL;
    if (loop->running)
        return AS_ESTATE;
    if (loop->closed)
        return AS_ECLOSED;

    pthread_mutex_lock(&loop->inbox_lock);
    loop->closed = 1;
    inbox = loop->inbox_head;
    loop->inbox_head = loop->inbox_tail = NULL;
    pthread_mutex_unlock(&loop->inbox_lock);
    as__signals_close(loop);            /* before the pipe closes */

    /* Drop everything still scheduled.  A destroy hook may free objects or
     * even try to schedule more; scheduling now fails with AS_ECLOSED, so
     * these loops terminate. */
    while (loop->ready.len > 0 || loop->turn_end.len > 0) {
        as_handle *h = ring_pop(loop->ready.len > 0 ? &loop->ready : &loop->turn_end);
        if (h->kind == KIND_REPEAT) {
            h->queued = 0;
            if (h->destroy && !h->cancelled)
                h->destroy(h->userdata); /* this run will not happen */
        } else if (h->kind != KIND_WATCHER) {
            drop_userdata(h);
        }
        handle_unref(h);
    }
    while ((timer = as__heap_top(&loop->timers)) != NULL) {
        as_handle *h = timer_handle(timer);
        as__heap_remove(&loop->timers, timer);
        drop_userdata(h);
        handle_unref(h);
    }
    as__watch_close(loop);
    while (inbox) {
        as_handle *next = inbox->next;
        drop_userdata(inbox);
        handle_unref(inbox);
        inbox = next;
    }
    close(loop->wake_fds[0]);
    close(loop->wake_fds[1]);

    as__ring_destroy(&loop->ready);
    as__ring_destroy(&loop->turn_end);
    as__heap_destroy(&loop->timers);
    loop->backend->destroy(loop->backend_state);
    loop->backend_state = NULL;
    drop_poll_hooks(loop);

    loop->user_owned = 0;
    if (loop->objects == 0) {
        loop_free(loop);
        return 0;
    }
    return (int)(loop->objects > 1000000 ? 1000000 : loop->objects);
}

/* ------------------------------------------------------------ errors */

int as_loop_set_exception_handler(as_loop *loop, as_exception_handler_fn fn,
                                  void *userdata, as_destroy_fn destroy)
{
    if (!loop)
        return AS_EINVAL;
    if (loop->closed)
        return AS_ECLOSED;
    if (loop->exc_destroy)
        loop->exc_destroy(loop->exc_userdata);
    loop->exc_handler = fn;
    loop->exc_userdata = userdata;
    loop->exc_destroy = destroy;
    return 0;
}

void as_loop_default_exception_handler(as_loop *loop, const as_error_context *c)
{
    if (!loop || !c)
        return;
    if (c->code)
        fprintf(stderr, "asyncstreams: %s: %s (%s)\n", c->message,
                c->detail ? c->detail : as_strerror(c->code), as_err_name(c->code));
    else
        fprintf(stderr, "asyncstreams: %s%s%s\n", c->message,
                c->detail ? ": " : "", c->detail ? c->detail : "");
}

void as_loop_call_exception_handler(as_loop *loop, const as_error_context *c)
{
    if (!loop || !c)
        return;
    if (loop->exc_handler)
        loop->exc_handler(loop, c, loop->exc_userdata);
    else
        as_loop_default_exception_handler(loop, c);
}
