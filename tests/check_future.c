/* check_future.c - the future state machine and its done callbacks. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct seen {
    int calls;
    int order[16];
    int n;
    int destroyed;
    int last_error;
};

struct cbarg {
    struct seen *seen;
    int tag;
};

static void on_done(as_future *f, void *p)
{
    struct cbarg *a = p;
    a->seen->calls++;
    a->seen->order[a->seen->n++] = a->tag;
    a->seen->last_error = as_future_error(f);
}

static void on_destroy(void *p)
{
    struct cbarg *a = p;
    a->seen->destroyed++;
}

static int freed_results;
static void free_result(void *p)
{
    freed_results++;
    free(p);
}

static void stop_cb(void *p)
{
    as_loop_stop(p);
}

/* Every call of future.h given a NULL future: the answer asyncstreams.h's
 * NULL rule promises; nothing handed over is adopted or destroyed. */
START_TEST(every_call_accepts_a_null_future)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop), *out = tu_poison();
    struct seen seen = {0, {0}, 0, 0, 0};
    struct cbarg a = {&seen, 1};
    int freed = freed_results;
    tu_null_call calls[] = {
        TU_NULL_INT(as_future_new(NULL, &out), AS_EINVAL),
        TU_NULL_INT(as_future_new(loop, NULL), AS_EINVAL),
        TU_NULL_PTR(as_future_ref(NULL)),
        TU_NULL_VOID(as_future_unref(NULL)),
        TU_NULL_PTR(as_future_loop(NULL)),
        TU_NULL_INT(as_future_state_of(NULL), AS_FUTURE_PENDING),
        TU_NULL_INT(as_future_done(NULL), 0),
        TU_NULL_INT(as_future_cancelled(NULL), 0),
        TU_NULL_INT(as_future_set_result(NULL, &a, free_result), AS_EINVAL),
        TU_NULL_INT(as_future_set_error(NULL, -EIO, "x"), AS_EINVAL),
        TU_NULL_INT(as_future_set_error_detail(NULL, -EIO, "x", &a, on_destroy), AS_EINVAL),
        TU_NULL_INT(as_future_cancel(NULL, "x"), 0),
        TU_NULL_INT(as_future_set_canceller(NULL, NULL, NULL), AS_EINVAL),
        TU_NULL_INT(as_future_set_cancelled(NULL, "x"), AS_EINVAL),
        TU_NULL_INT(as_future_transfer(NULL, f), AS_EINVAL),
        TU_NULL_INT(as_future_transfer(f, NULL), AS_EINVAL),
        TU_NULL_INT(as_future_error(NULL), AS_EINVAL),
        TU_NULL_PTR(as_future_error_message(NULL)),
        TU_NULL_PTR(as_future_error_detail(NULL)),
        TU_NULL_PTR(as_future_result(NULL)),
        TU_NULL_PTR(as_future_take_result(NULL)),
        TU_NULL_INT(as_future_add_done_callback(NULL, on_done, &a, on_destroy), AS_EINVAL),
        TU_NULL_INT(as_future_remove_done_callback(NULL, on_done, &a), 0),
        TU_NULL_INT(as_loop_run_until_complete(NULL, f), AS_EINVAL),
        TU_NULL_INT(as_loop_run_until_complete(loop, NULL), AS_EINVAL),
    };

    tu_check_null(calls);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(freed_results, freed);
    ck_assert_int_eq(seen.destroyed, 0);
    ck_assert(!as_future_done(f));
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

START_TEST(done_callbacks_never_run_synchronously)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop);
    struct seen seen = {0, {0}, 0, 0, 0};
    struct cbarg a = {&seen, 1}, b = {&seen, 2};

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(as_future_state_of(f), AS_FUTURE_PENDING);
    ck_assert_int_eq(as_future_add_done_callback(f, on_done, &a, on_destroy), 0);
    ck_assert_int_eq(as_future_set_result(f, NULL, NULL), 0);
    /* Done, but the callback waits for the loop. */
    ck_assert(as_future_done(f));
    ck_assert_int_eq(seen.calls, 0);
    /* Added after completion: scheduled, still not run here. */
    ck_assert_int_eq(as_future_add_done_callback(f, on_done, &b, on_destroy), 0);
    ck_assert_int_eq(seen.calls, 0);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(seen.calls, 2);
    ck_assert_int_eq(seen.order[0], 1);
    ck_assert_int_eq(seen.order[1], 2);
    ck_assert_int_eq(seen.destroyed, 2);
    ck_assert_int_eq(seen.last_error, 0);
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

START_TEST(callbacks_run_in_registration_order)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop);
    struct seen seen = {0, {0}, 0, 0, 0};
    struct cbarg args[8];
    int i;

    for (i = 0; i < 8; i++) {
        args[i].seen = &seen;
        args[i].tag = i;
        as_future_add_done_callback(f, on_done, &args[i], NULL);
    }
    as_future_set_result(f, NULL, NULL);
    as_loop_run_once(loop);
    for (i = 0; i < 8; i++)
        ck_assert_int_eq(seen.order[i], i);
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

START_TEST(a_result_is_owned_and_freed_once)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop);
    int *v = malloc(sizeof *v), *other = malloc(sizeof *other), *taken;

    freed_results = 0;
    *v = 42;
    ck_assert_int_eq(as_future_set_result(f, v, free_result), 0);
    /* A second completion is refused and does not adopt its pointer. */
    ck_assert_int_eq(as_future_set_result(f, other, free_result), AS_ESTATE);
    ck_assert_int_eq(as_future_set_error(f, AS_EINVAL, NULL), AS_ESTATE);
    ck_assert_int_eq(as_future_cancel(f, NULL), 0);
    free(other);
    ck_assert_int_eq(as_future_error(f), 0);
    ck_assert_int_eq(*(int *)as_future_result(f), 42);
    as_future_unref(f);
    ck_assert_int_eq(freed_results, 1);

    f = tu_future(loop);
    v = malloc(sizeof *v);
    as_future_set_result(f, v, free_result);
    taken = as_future_take_result(f);
    ck_assert_ptr_eq(taken, v);
    ck_assert_ptr_null(as_future_result(f));
    as_future_unref(f);
    ck_assert_int_eq(freed_results, 1); /* the taker owns it now */
    free(taken);
    tu_close(loop);
}
END_TEST

static int details_freed;
static void free_detail(void *p)
{
    details_freed++;
    free(p);
}

START_TEST(errors_carry_code_message_and_detail)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop);
    char *detail = malloc(4);

    details_freed = 0;
    ck_assert_int_eq(as_future_set_error(f, 5, "positive"), AS_EINVAL);
    ck_assert_int_eq(as_future_set_error(f, 0, "zero"), AS_EINVAL);
    ck_assert(!as_future_done(f));
    ck_assert_int_eq(as_future_error(f), AS_ESTATE);
    ck_assert_ptr_null(as_future_error_message(f));

    ck_assert_int_eq(as_future_set_error_detail(f, AS_EINCOMPLETE, "3 bytes read", detail, free_detail), 0);
    ck_assert_int_eq(as_future_error(f), AS_EINCOMPLETE);
    ck_assert_str_eq(as_future_error_message(f), "3 bytes read");
    ck_assert_ptr_eq(as_future_error_detail(f), detail);
    as_future_unref(f);
    ck_assert_int_eq(details_freed, 1);

    /* Without a message, the code's own text is used. */
    f = tu_future(loop);
    as_future_set_error(f, -ECONNRESET, NULL);
    ck_assert_int_eq(as_future_error(f), -ECONNRESET);
    ck_assert_str_eq(as_future_error_message(f), "connection reset by peer");
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

START_TEST(cancel_moves_a_pending_future_to_cancelled)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop);
    struct seen seen = {0, {0}, 0, 0, 0};
    struct cbarg a = {&seen, 1};

    as_future_add_done_callback(f, on_done, &a, NULL);
    ck_assert_int_eq(as_future_cancel(f, "stop it"), 1);
    ck_assert_int_eq(as_future_cancel(f, NULL), 0);
    ck_assert(as_future_cancelled(f));
    ck_assert_int_eq(as_future_state_of(f), AS_FUTURE_CANCELLED);
    ck_assert_int_eq(as_future_set_result(f, NULL, NULL), AS_ESTATE);
    ck_assert_int_eq(as_future_error(f), AS_ECANCELLED);
    ck_assert_str_eq(as_future_error_message(f), "stop it");
    ck_assert_int_eq(seen.calls, 0);
    as_loop_run_once(loop);
    ck_assert_int_eq(seen.calls, 1);
    ck_assert_int_eq(seen.last_error, AS_ECANCELLED);
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

START_TEST(removed_callbacks_do_not_run)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop);
    struct seen seen = {0, {0}, 0, 0, 0};
    struct cbarg a = {&seen, 1}, b = {&seen, 2}, c = {&seen, 3};

    as_future_add_done_callback(f, on_done, &a, on_destroy);
    as_future_add_done_callback(f, on_done, &b, on_destroy);
    as_future_add_done_callback(f, on_done, &a, on_destroy);
    as_future_add_done_callback(f, on_done, &c, on_destroy);
    ck_assert_int_eq(as_future_remove_done_callback(f, on_done, &a), 2);
    ck_assert_int_eq(seen.destroyed, 2);
    ck_assert_int_eq(as_future_remove_done_callback(f, on_done, &a), 0);
    /* Adding after removal still works (the tail pointer was rebuilt). */
    as_future_add_done_callback(f, on_done, &a, on_destroy);
    as_future_set_result(f, NULL, NULL);
    as_loop_run_once(loop);
    ck_assert_int_eq(seen.calls, 3);
    ck_assert_int_eq(seen.order[0], 2);
    ck_assert_int_eq(seen.order[1], 3);
    ck_assert_int_eq(seen.order[2], 1);
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

static void check_alive(as_future *f, void *p)
{
    int *called = p;
    (*called)++;
    ck_assert(as_future_done(f));
}

START_TEST(a_scheduled_callback_keeps_its_future_alive)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop);
    int called = 0;

    as_future_add_done_callback(f, check_alive, &called, NULL);
    as_future_set_result(f, NULL, NULL);
    as_future_unref(f); /* the creator lets go before the callback runs */
    ck_assert_uint_eq(as_loop_objects(loop), 1);
    as_loop_run_once(loop);
    ck_assert_int_eq(called, 1);
    tu_close(loop);
}
END_TEST

struct reports {
    int count;
    int code;
    char message[64];
};

static void record(as_loop *loop, const as_error_context *c, void *p)
{
    struct reports *r = p;
    (void)loop;
    r->count++;
    r->code = c->code;
    strncpy(r->message, c->message, sizeof r->message - 1);
}

START_TEST(an_error_nobody_retrieved_is_reported_once)
{
    as_loop *loop = tu_loop();
    struct reports rep;
    as_future *f;

    memset(&rep, 0, sizeof rep);
    as_loop_set_exception_handler(loop, record, &rep, NULL);

    f = tu_future(loop);
    as_future_set_error(f, -ECONNRESET, NULL);
    as_future_unref(f);
    ck_assert_int_eq(rep.count, 1);
    ck_assert_int_eq(rep.code, -ECONNRESET);
    ck_assert_str_eq(rep.message, "Future exception was never retrieved");

    /* Retrieved: silent. */
    f = tu_future(loop);
    as_future_set_error(f, -ECONNRESET, NULL);
    ck_assert_int_eq(as_future_error(f), -ECONNRESET);
    as_future_unref(f);
    /* Cancelled, or never completed: silent. */
    f = tu_future(loop);
    as_future_cancel(f, NULL);
    as_future_unref(f);
    f = tu_future(loop);
    as_future_unref(f);
    ck_assert_int_eq(rep.count, 1);
    tu_close(loop);
}
END_TEST

static void finish_later(void *p)
{
    as_future *f = p;
    int *v = malloc(sizeof *v);
    *v = 7;
    as_future_set_result(f, v, free);
}

static void fail_later(void *p)
{
    as_future_set_error(p, AS_ETIMEOUT, NULL);
}

START_TEST(run_until_complete_returns_the_outcome)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop), *g = tu_future(loop);

    ck_assert_int_eq(as_loop_call_later(loop, 0.01, finish_later, f, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, f), 0);
    ck_assert_int_eq(*(int *)as_future_result(f), 7);
    /* Already done: one turn, same answer. */
    ck_assert_int_eq(as_loop_run_until_complete(loop, f), 0);

    as_loop_call_soon(loop, fail_later, g, NULL, NULL);
    ck_assert_int_eq(as_loop_run_until_complete(loop, g), AS_ETIMEOUT);
    as_future_unref(f);
    as_future_unref(g);
    tu_close(loop);
}
END_TEST

START_TEST(run_until_complete_reports_a_stop_before_completion)
{
    as_loop *loop = tu_loop(), *other = tu_loop();
    as_future *f = tu_future(loop), *elsewhere = tu_future(other);

    as_loop_call_soon(loop, stop_cb, loop, NULL, NULL);
    ck_assert_int_eq(as_loop_run_until_complete(loop, f), AS_ESTATE);
    ck_assert(!as_future_done(f));
    ck_assert_int_eq(as_loop_run_until_complete(loop, elsewhere), AS_EINVAL);
    as_future_unref(f);
    as_future_unref(elsewhere);
    tu_close(loop);
    tu_close(other);
}
END_TEST

START_TEST(closing_the_loop_releases_scheduled_callbacks)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop);
    struct seen seen = {0, {0}, 0, 0, 0};
    struct cbarg a = {&seen, 1}, b = {&seen, 2};

    as_future_add_done_callback(f, on_done, &a, on_destroy);
    as_future_set_result(f, NULL, NULL);
    as_future_unref(f);
    /* The callback is queued but the loop closes first: it never runs, its
     * userdata comes back, and the future is freed with it. */
    ck_assert_int_eq(as_loop_close(loop), 0);
    ck_assert_int_eq(seen.calls, 0);
    ck_assert_int_eq(seen.destroyed, 1);

    /* A future that outlives its closed loop refuses new callbacks cleanly
     * once done, and frees the loop when it goes. */
    loop = tu_loop();
    f = tu_future(loop);
    ck_assert_int_eq(as_future_add_done_callback(f, on_done, &b, on_destroy), 0);
    ck_assert_int_eq(as_loop_close(loop), 1);
    as_future_set_result(f, NULL, NULL); /* cannot schedule: destroy runs */
    ck_assert_int_eq(seen.destroyed, 2);
    ck_assert_int_eq(as_future_add_done_callback(f, on_done, &b, on_destroy), AS_ECLOSED);
    ck_assert_int_eq(seen.destroyed, 2);
    as_future_unref(f);
    ck_assert_int_eq(seen.calls, 0);
}
END_TEST

struct work {
    int cancel_requests;
    char last_message[32];
    int refuse;
};

static int stop_work(as_future *f, const char *message, void *p)
{
    struct work *w = p;
    (void)f;
    w->cancel_requests++;
    snprintf(w->last_message, sizeof w->last_message, "%s", message ? message : "");
    return w->refuse ? 0 : 1;
}

START_TEST(a_canceller_is_asked_instead_of_cancelling_at_once)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop);
    struct work w = {0, "", 0};

    ck_assert_int_eq(as_future_set_canceller(NULL, stop_work, &w), AS_EINVAL);
    ck_assert_int_eq(as_future_set_canceller(f, stop_work, &w), 0);
    ck_assert_int_eq(as_future_cancel(f, "stop"), 1);
    /* The work was asked to stop; the future is still pending until the
     * work says it has stopped. */
    ck_assert_int_eq(w.cancel_requests, 1);
    ck_assert_str_eq(w.last_message, "stop");
    ck_assert(!as_future_done(f));
    w.refuse = 1;
    ck_assert_int_eq(as_future_cancel(f, NULL), 0);
    ck_assert_int_eq(as_future_set_cancelled(f, "stopped"), 0);
    ck_assert(as_future_cancelled(f));
    ck_assert_str_eq(as_future_error_message(f), "stopped");
    /* Done: the canceller is gone, cancel is a no-op, set_* refuse. */
    ck_assert_int_eq(as_future_cancel(f, NULL), 0);
    ck_assert_int_eq(w.cancel_requests, 2);
    ck_assert_int_eq(as_future_set_canceller(f, stop_work, &w), AS_ESTATE);
    ck_assert_int_eq(as_future_set_cancelled(f, NULL), AS_ESTATE);
    as_future_unref(f);

    /* Removing the canceller restores plain cancellation. */
    f = tu_future(loop);
    as_future_set_canceller(f, stop_work, &w);
    ck_assert_int_eq(as_future_set_canceller(f, NULL, NULL), 0);
    ck_assert_int_eq(as_future_cancel(f, NULL), 1);
    ck_assert(as_future_cancelled(f));
    ck_assert_int_eq(w.cancel_requests, 2);
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

START_TEST(transfer_moves_a_result_an_error_or_a_cancellation)
{
    as_loop *loop = tu_loop();
    as_future *src = tu_future(loop), *dst = tu_future(loop);
    int *v = malloc(sizeof *v);
    char *detail = malloc(8);

    freed_results = 0;
    details_freed = 0;
    ck_assert_int_eq(as_future_transfer(dst, src), AS_ESTATE); /* src pending */
    ck_assert_int_eq(as_future_transfer(dst, dst), AS_EINVAL);
    *v = 5;
    as_future_set_result(src, v, free_result);
    ck_assert_int_eq(as_future_transfer(dst, src), 0);
    ck_assert_ptr_eq(as_future_result(dst), v);
    ck_assert_ptr_null(as_future_result(src));
    ck_assert_int_eq(as_future_transfer(dst, src), AS_ESTATE); /* dst done */
    as_future_unref(src);
    ck_assert_int_eq(freed_results, 0);
    as_future_unref(dst);
    ck_assert_int_eq(freed_results, 1); /* freed once, by its new owner */

    src = tu_future(loop);
    dst = tu_future(loop);
    as_future_set_error_detail(src, AS_EINCOMPLETE, "2 bytes read", detail, free_detail);
    ck_assert_int_eq(as_future_transfer(dst, src), 0);
    ck_assert_int_eq(as_future_error(dst), AS_EINCOMPLETE);
    ck_assert_str_eq(as_future_error_message(dst), "2 bytes read");
    ck_assert_ptr_eq(as_future_error_detail(dst), detail);
    ck_assert_ptr_null(as_future_error_detail(src));
    as_future_unref(src); /* no "never retrieved" report, no double free */
    as_future_unref(dst);
    ck_assert_int_eq(details_freed, 1);

    src = tu_future(loop);
    dst = tu_future(loop);
    as_future_cancel(src, "gone");
    ck_assert_int_eq(as_future_transfer(dst, src), 0);
    ck_assert(as_future_cancelled(dst));
    as_future_unref(src);
    as_future_unref(dst);
    tu_close(loop);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("future");
    TCase *tc = tcase_create("future");
    tcase_add_test(tc, every_call_accepts_a_null_future);
    tcase_add_test(tc, done_callbacks_never_run_synchronously);
    tcase_add_test(tc, callbacks_run_in_registration_order);
    tcase_add_test(tc, a_result_is_owned_and_freed_once);
    tcase_add_test(tc, errors_carry_code_message_and_detail);
    tcase_add_test(tc, cancel_moves_a_pending_future_to_cancelled);
    tcase_add_test(tc, removed_callbacks_do_not_run);
    tcase_add_test(tc, a_scheduled_callback_keeps_its_future_alive);
    tcase_add_test(tc, an_error_nobody_retrieved_is_reported_once);
    tcase_add_test(tc, run_until_complete_returns_the_outcome);
    tcase_add_test(tc, run_until_complete_reports_a_stop_before_completion);
    tcase_add_test(tc, closing_the_loop_releases_scheduled_callbacks);
    tcase_add_test(tc, a_canceller_is_asked_instead_of_cancelling_at_once);
    tcase_add_test(tc, transfer_moves_a_result_an_error_or_a_cancellation);
    suite_add_tcase(s, tc);
    (void)stop_cb;
    return tu_run(s);
}
