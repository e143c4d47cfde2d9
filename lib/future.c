/*
 * future.c - PENDING -> FINISHED | CANCELLED, with done callbacks.
 *
 * The whole module is one rule: when the state leaves PENDING, every done
 * callback is handed to the loop with as_loop_call_soon().  Nothing runs
 * synchronously, so a function that completes a future never finds its own
 * state changed under it by a callback, and a callback never runs with half
 * of its caller's work done.
 */
#include "future.h"
#include "errors.h"
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A done callback.  While scheduled, the node is the loop callback's
 * userdata and holds a reference to its future.  A node with fn NULL is a
 * waiter (as__future_add_waiter()): completion posts its handle instead. */
struct done_cb {
    as_future_cb fn;
    void *userdata;
    as_destroy_fn destroy;
    as_future *future;
    struct done_cb *next;
    as_handle *post;            /* waiter: the handle to post */
    as_future **slot;           /* waiter: receives a reference to us */
};

struct as_future {
    as_loop *loop;
    unsigned refs;
    as_future_state state;
    int retrieved;              /* the error was looked at */

    void *result;
    as_destroy_fn result_destroy;

    int error;                  /* 0, or a negative code */
    char *error_message;        /* owned; NULL means as_strerror(error) */
    void *error_detail;
    as_destroy_fn error_detail_destroy;

    as_future_canceller_fn canceller; /* the work behind it, if any */
    void *canceller_data;

    struct done_cb *callbacks;  /* FIFO list, not yet scheduled */
    struct done_cb *callbacks_tail;
    /* Nearly every future gets exactly one callback (the task awaiting
     * it): its node lives here, so that costs no allocation. */
    struct done_cb inline_cb;
    int inline_used;
};

static struct done_cb *cb_alloc(as_future *f)
{
    if (!f->inline_used) {
        f->inline_used = 1;
        return &f->inline_cb;
    }
    return as__loop_alloc(f->loop, sizeof(struct done_cb));
}

static void cb_free(as_future *f, struct done_cb *cb)
{
    if (cb == &f->inline_cb)
        f->inline_used = 0;
    else
        as__loop_free(f->loop, cb, sizeof *cb);
}

int as_future_new(as_loop *loop, as_future **out)
{
    as_future *f;

    if (!out)
        return AS_EINVAL;
    if (!loop || as_loop_is_closed(loop)) {
        *out = NULL;
        return loop ? AS_ECLOSED : AS_EINVAL;
    }
    if (!(f = as__loop_alloc(loop, sizeof *f))) {
        *out = NULL;
        return -ENOMEM;
    }
    /* Every field but inline_cb, which is written when it is used. */
    f->loop = loop;
    f->refs = 1;
    f->state = AS_FUTURE_PENDING;
    f->retrieved = 0;
    f->result = NULL;
    f->result_destroy = NULL;
    f->error = 0;
    f->error_message = NULL;
    f->error_detail = NULL;
    f->error_detail_destroy = NULL;
    f->canceller = NULL;
    f->canceller_data = NULL;
    f->callbacks = f->callbacks_tail = NULL;
    f->inline_used = 0;
    as__loop_obj_ref(loop);
    *out = f;
    return 0;
}

as_future *as_future_ref(as_future *f)
{
    if (f)
        f->refs++;
    return f;
}

/* Out of line, so that as_future_unref() stays a leaf for the common case
 * of a reference that is not the last. */
static AS__NOINLINE void future_free(as_future *f)
{
    as_loop *loop = f->loop;
    struct done_cb *cb, *next;

    if (f->state == AS_FUTURE_FINISHED && f->error && !f->retrieved) {
        as_error_context ctx;
        ctx.message = "Future exception was never retrieved";
        ctx.code = f->error;
        ctx.detail = as_future_error_message(f);
        ctx.object = f;
        as_loop_call_exception_handler(loop, &ctx);
    }
    /* Callbacks still listed were never scheduled (the future never
     * finished): hand their userdata back. */
    for (cb = f->callbacks; cb; cb = next) {
        next = cb->next;
        if (cb->destroy)
            cb->destroy(cb->userdata);
        cb_free(f, cb);
    }
    if (f->result && f->result_destroy)
        f->result_destroy(f->result);
    if (f->error_detail && f->error_detail_destroy)
        f->error_detail_destroy(f->error_detail);
    free(f->error_message);
    as__loop_free(loop, f, sizeof *f);
    as__loop_obj_unref(loop);
}

void as_future_unref(as_future *f)
{
    if (f && --f->refs == 0)
        future_free(f);
}

as_loop *as_future_loop(const as_future *f)
{
    return f ? f->loop : NULL;
}

as_future_state as_future_state_of(const as_future *f)
{
    return f ? f->state : AS_FUTURE_PENDING;
}

int as_future_done(const as_future *f)
{
    return f && f->state != AS_FUTURE_PENDING;
}

int as_future_cancelled(const as_future *f)
{
    return f && f->state == AS_FUTURE_CANCELLED;
}

/* ------------------------------------------------------------ callbacks */

static void run_done_cb(void *userdata)
{
    struct done_cb *cb = userdata;
    cb->fn(cb->future, cb->userdata);
}

static void destroy_done_cb(void *userdata)
{
    struct done_cb *cb = userdata;
    as_future *f = cb->future;
    if (cb->destroy)
        cb->destroy(cb->userdata);
    cb_free(f, cb);
    as_future_unref(f);
}

/* Hand one callback to the loop.  If the loop refuses (it is closed, or
 * memory ran out), the callback can never run: its userdata goes back
 * through destroy, as the loop itself would do on close.  A waiter's
 * handle is posted instead, with a reference to the future in its slot. */
static void schedule_cb(as_future *f, struct done_cb *cb)
{
    if (!cb->fn) {
        as_handle *h = cb->post;
        as_future **slot = cb->slot;
        as_destroy_fn dropped = cb->destroy;
        void *ud = cb->userdata;
        cb_free(f, cb);
        *slot = as_future_ref(f);
        if (as__handle_post(h, 0) < 0) {
            *slot = NULL;
            as_future_unref(f);
            dropped(ud);
        }
        return;
    }
    cb->future = as_future_ref(f);
    cb->next = NULL;
    if (as_loop_call_soon(f->loop, run_done_cb, cb, destroy_done_cb, NULL) < 0)
        destroy_done_cb(cb);
}

static void schedule_callbacks(as_future *f)
{
    struct done_cb *cb = f->callbacks, *next;

    f->canceller = NULL; /* done: nothing left to cancel */
    f->callbacks = f->callbacks_tail = NULL;
    /* A reference held across the loop: the last callback's destroy may
     * otherwise drop the last reference while we still walk the list. */
    as_future_ref(f);
    for (; cb; cb = next) {
        next = cb->next;
        schedule_cb(f, cb);
    }
    as_future_unref(f);
}

/* Add cb at the end of the pending future's FIFO list. */
static void append_cb(as_future *f, struct done_cb *cb)
{
    cb->next = NULL;
    if (f->callbacks_tail)
        f->callbacks_tail->next = cb;
    else
        f->callbacks = cb;
    f->callbacks_tail = cb;
}

int as_future_add_done_callback(as_future *f, as_future_cb fn, void *userdata,
                                as_destroy_fn destroy)
{
    struct done_cb *cb;

    if (!f || !fn)
        return AS_EINVAL;
    if (f->state != AS_FUTURE_PENDING && as_loop_is_closed(f->loop))
        return AS_ECLOSED;
    if (!(cb = cb_alloc(f)))
        return -ENOMEM;
    cb->fn = fn;
    cb->userdata = userdata;
    cb->destroy = destroy;
    if (f->state != AS_FUTURE_PENDING) {
        int err;
        cb->future = as_future_ref(f);
        err = as_loop_call_soon(f->loop, run_done_cb, cb, destroy_done_cb, NULL);
        if (err < 0) {
            /* The contract: on failure neither fn nor destroy runs. */
            cb_free(f, cb);
            as_future_unref(f);
            return err;
        }
        return 0;
    }
    append_cb(f, cb);
    return 0;
}

int as__future_add_waiter(as_future *f, as_handle *h, as_future **slot,
                          as_destroy_fn dropped, void *userdata)
{
    struct done_cb *cb;

    if (!(cb = cb_alloc(f)))
        return -ENOMEM;
    cb->fn = NULL;
    cb->userdata = userdata;
    cb->destroy = dropped;
    cb->post = h;
    cb->slot = slot;
    if (f->state != AS_FUTURE_PENDING) {
        if (as_loop_is_closed(f->loop)) {
            cb_free(f, cb);
            return AS_ECLOSED;
        }
        schedule_cb(f, cb); /* a failed post runs dropped, as on close */
        return 0;
    }
    append_cb(f, cb);
    return 0;
}

int as_future_remove_done_callback(as_future *f, as_future_cb fn, void *userdata)
{
    struct done_cb **link, *cb;
    int removed = 0;

    if (!f)
        return 0;
    link = &f->callbacks;
    f->callbacks_tail = NULL;
    while ((cb = *link) != NULL) {
        if (cb->fn && cb->fn == fn && cb->userdata == userdata) {
            *link = cb->next;
            if (cb->destroy)
                cb->destroy(cb->userdata);
            cb_free(f, cb);
            removed++;
        } else {
            f->callbacks_tail = cb;
            link = &cb->next;
        }
    }
    return removed;
}

/* ------------------------------------------------------------ completion */

int as_future_set_result(as_future *f, void *result, as_destroy_fn destroy)
{
    if (!f)
        return AS_EINVAL;
    if (f->state != AS_FUTURE_PENDING)
        return AS_ESTATE;
    f->result = result;
    f->result_destroy = destroy;
    f->state = AS_FUTURE_FINISHED;
    schedule_callbacks(f);
    return 0;
}

static int finish_with_error(as_future *f, as_future_state state, int code,
                             const char *message, void *detail,
                             as_destroy_fn detail_destroy)
{
    char *copy = NULL;

    if (message && !(copy = as__strdup(message)))
        return -ENOMEM;
    f->error = code;
    f->error_message = copy;
    f->error_detail = detail;
    f->error_detail_destroy = detail_destroy;
    f->state = state;
    schedule_callbacks(f);
    return 0;
}

int as_future_set_error_detail(as_future *f, int code, const char *message,
                               void *detail, as_destroy_fn detail_destroy)
{
    if (!f || code >= 0)
        return AS_EINVAL;
    if (f->state != AS_FUTURE_PENDING)
        return AS_ESTATE;
    return finish_with_error(f, AS_FUTURE_FINISHED, code, message, detail,
                             detail_destroy);
}

int as_future_set_error(as_future *f, int code, const char *message)
{
    return as_future_set_error_detail(f, code, message, NULL, NULL);
}

/* The library's own failures: a failed strdup of the message must not
 * leave a future pending that the caller is about to hand out, so the
 * code's own text stands in for it. */
as_future *as__future_fail(as_future *f, int code, const char *message)
{
    if (as_future_set_error(f, code, message) == -ENOMEM)
        (void)as_future_set_error(f, code, NULL);
    return f;
}

as_future *as__future_failed(as_loop *loop, int code, const char *message)
{
    as_future *f;
    return as_future_new(loop, &f) == 0 ? as__future_fail(f, code, message)
                                        : NULL;
}

int as_future_set_canceller(as_future *f, as_future_canceller_fn fn,
                            void *userdata)
{
    if (!f)
        return AS_EINVAL;
    if (f->state != AS_FUTURE_PENDING)
        return AS_ESTATE;
    f->canceller = fn;
    f->canceller_data = userdata;
    return 0;
}

int as_future_cancel(as_future *f, const char *message)
{
    if (!f || f->state != AS_FUTURE_PENDING)
        return 0;
    if (f->canceller)
        return f->canceller(f, message, f->canceller_data);
    as_future_set_cancelled(f, message);
    return 1;
}

int as_future_set_cancelled(as_future *f, const char *message)
{
    if (!f)
        return AS_EINVAL;
    if (f->state != AS_FUTURE_PENDING)
        return AS_ESTATE;
    /* If the message cannot be copied, cancel without it: a cancellation
     * must not fail for want of a string. */
    if (finish_with_error(f, AS_FUTURE_CANCELLED, AS_ECANCELLED, message,
                          NULL, NULL) < 0)
        finish_with_error(f, AS_FUTURE_CANCELLED, AS_ECANCELLED, NULL, NULL, NULL);
    return 0;
}

int as_future_transfer(as_future *dst, as_future *src)
{
    void *detail;
    int err;

    if (!dst || !src || dst == src)
        return AS_EINVAL;
    if (src->state == AS_FUTURE_PENDING || dst->state != AS_FUTURE_PENDING)
        return AS_ESTATE;
    if (src->state == AS_FUTURE_CANCELLED)
        return as_future_set_cancelled(dst, src->error_message);
    if (src->error == 0) {
        err = as_future_set_result(dst, src->result, src->result_destroy);
        src->result = NULL;
        return err;
    }
    /* The message is copied (it is small); the detail moves. */
    detail = src->error_detail;
    err = as_future_set_error_detail(dst, src->error, src->error_message,
                                     detail, src->error_detail_destroy);
    if (err == -ENOMEM) /* the message could not be copied: move the rest */
        err = as_future_set_error_detail(dst, src->error, NULL, detail,
                                         src->error_detail_destroy);
    if (err == 0)
        src->error_detail = NULL;
    src->retrieved = 1;
    return err;
}

/* ------------------------------------------------------------ outcome */

int as_future_error(as_future *f)
{
    if (!f)
        return AS_EINVAL;
    switch (f->state) {
    case AS_FUTURE_PENDING:
        return AS_ESTATE;
    case AS_FUTURE_CANCELLED:
        return AS_ECANCELLED;
    default:
        f->retrieved = 1;
        return f->error;
    }
}

const char *as_future_error_message(const as_future *f)
{
    if (!f || f->state == AS_FUTURE_PENDING || f->error == 0)
        return NULL;
    return f->error_message ? f->error_message : as_strerror(f->error);
}

void *as_future_error_detail(const as_future *f)
{
    return f ? f->error_detail : NULL;
}

void *as_future_result(const as_future *f)
{
    return f ? f->result : NULL;
}

void *as_future_take_result(as_future *f)
{
    void *result;
    if (!f)
        return NULL;
    result = f->result;
    f->result = NULL;
    return result;
}

/* ------------------------------------------------------------ running */

static void stop_loop_cb(as_future *f, void *userdata)
{
    (void)userdata;
    as_loop_stop(as_future_loop(f));
}

int as_loop_run_until_complete(as_loop *loop, as_future *f)
{
    int err;

    if (!loop || !f || as_future_loop(f) != loop)
        return AS_EINVAL;
    if (as_loop_is_closed(loop))
        return AS_ECLOSED;
    if (as_loop_is_running(loop))
        return AS_ESTATE;
    /* As asyncio does: a done callback stops the loop, even when the future
     * is done already (then the loop runs one turn). */
    if ((err = as_future_add_done_callback(f, stop_loop_cb, NULL, NULL)) < 0)
        return err;
    as_future_ref(f);
    err = as_loop_run_forever(loop);
    if (err == 0 && !as_future_done(f)) {
        as_future_remove_done_callback(f, stop_loop_cb, NULL);
        err = AS_ESTATE; /* stopped before the future completed */
    } else if (err == 0) {
        err = as_future_error(f);
    }
    as_future_unref(f);
    return err;
}
