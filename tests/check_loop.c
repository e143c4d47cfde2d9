/* check_loop.c - the event loop: ready queue, timers, watchers, threads. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A log of what ran, in order: each callback appends its tag. */
struct log {
    int order[2048];
    int n;
    int destroyed;
};

struct tagged {
    struct log *log;
    int tag;
};

static void append(void *p)
{
    struct tagged *t = p;
    t->log->order[t->log->n++] = t->tag;
}

static void count_destroy(void *p)
{
    struct tagged *t = p;
    t->log->destroyed++;
}

static void stop_cb(void *p)
{
    as_loop_stop(p);
}

/* ------------------------------------------------------------ call_soon */

START_TEST(call_soon_runs_in_fifo_order_and_not_synchronously)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged t[5];
    int i;

    for (i = 0; i < 5; i++) {
        t[i].log = &log;
        t[i].tag = i;
        ck_assert_int_eq(as_loop_call_soon(loop, append, &t[i], count_destroy, NULL), 0);
    }
    /* Scheduling ran nothing. */
    ck_assert_int_eq(log.n, 0);
    ck_assert_uint_eq(as_loop_pending(loop), 5);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(log.n, 5);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(log.order[i], i);
    ck_assert_int_eq(log.destroyed, 5);
    tu_close(loop);
}
END_TEST

struct resched {
    as_loop *loop;
    int runs;
};

static void reschedule_self(void *p)
{
    struct resched *r = p;
    if (++r->runs < 3)
        ck_assert_int_eq(as_loop_call_soon(r->loop, reschedule_self, r, NULL, NULL), 0);
}

START_TEST(callbacks_scheduled_during_a_turn_wait_for_the_next)
{
    as_loop *loop = tu_loop();
    struct resched r = {loop, 0};

    as_loop_call_soon(loop, reschedule_self, &r, NULL, NULL);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(r.runs, 1);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(r.runs, 2);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(r.runs, 3);
    tu_close(loop);
}
END_TEST

struct canceller {
    as_handle *victim;
};

static void cancel_victim(void *p)
{
    struct canceller *c = p;
    as_handle_cancel(c->victim);
}

START_TEST(a_callback_can_cancel_a_later_callback_of_the_same_turn)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged victim = {&log, 7};
    struct canceller c;

    ck_assert_int_eq(as_loop_call_soon(loop, cancel_victim, &c, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_call_soon(loop, append, &victim, count_destroy, &c.victim), 0);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(log.n, 0);          /* the victim never ran */
    ck_assert_int_eq(log.destroyed, 1);  /* but its userdata came back once */
    ck_assert(as_handle_cancelled(c.victim));
    as_handle_unref(c.victim);
    tu_close(loop);
}
END_TEST

START_TEST(cancel_after_run_does_nothing)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged t = {&log, 1};
    as_handle *h;

    as_loop_call_soon(loop, append, &t, count_destroy, &h);
    as_loop_run_once(loop);
    as_handle_cancel(h);
    as_handle_cancel(h);
    ck_assert(!as_handle_cancelled(h));
    ck_assert_int_eq(log.n, 1);
    ck_assert_int_eq(log.destroyed, 1);
    as_handle_unref(h);
    tu_close(loop);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged t = {&log, 1};
    double nan = strtod("nan", NULL);

    ck_assert_int_eq(as_loop_call_soon(loop, NULL, NULL, NULL, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_call_later(loop, nan, append, &t, count_destroy, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_add_reader(loop, -1, append, &t, count_destroy), AS_EINVAL);
    ck_assert_int_eq(as_loop_remove_reader(loop, -1), 0);
    ck_assert_int_eq(as_loop_remove_writer(loop, 100000), 0);
    ck_assert_int_eq(as_loop_new(NULL), AS_EINVAL);
    /* A refused call neither runs the callback nor destroys its userdata. */
    ck_assert_int_eq(log.destroyed, 0);
    tu_close(loop);
}
END_TEST

/* Every call of loop.h given a NULL loop or handle: the answer
 * asyncstreams.h's NULL rule promises, and no destroy hook runs. */
START_TEST(every_call_accepts_a_null_loop_or_handle)
{
    struct log log = {{0}, 0, 0};
    struct tagged t = {&log, 1};
    as_error_context ctx = {"never reported", 0, NULL, NULL};
    as_handle *h = tu_poison();
    tu_null_call calls[] = {
        TU_NULL_INT(as_loop_new(NULL), AS_EINVAL),
        TU_NULL_INT(as_loop_new_with_backend("select", NULL), AS_EINVAL),
        TU_NULL_PTR(as_loop_backend_name(NULL)),
        TU_NULL_INT(as_loop_max_fd(NULL), 0),
        TU_NULL_INT(as_loop_close(NULL), AS_EINVAL),
        TU_NULL_INT(as_loop_is_closed(NULL), 1),
        TU_NULL_INT(as_loop_is_running(NULL), 0),
        TU_NULL_INT(as_loop_time(NULL) > 0, 1), /* the clock needs no loop */
        TU_NULL_INT(as_loop_call_soon(NULL, append, &t, count_destroy, &h), AS_EINVAL),
        TU_NULL_INT(as_loop_call_end_of_turn(NULL, append, &t, count_destroy, &h), AS_EINVAL),
        TU_NULL_INT(as_loop_call_later(NULL, 1, append, &t, count_destroy, &h), AS_EINVAL),
        TU_NULL_INT(as_loop_call_at(NULL, 1, append, &t, count_destroy, &h), AS_EINVAL),
        TU_NULL_INT(as_loop_call_soon_threadsafe(NULL, append, &t, count_destroy), AS_EINVAL),
        TU_NULL_VOID(as_handle_cancel(NULL)),
        TU_NULL_INT(as_handle_cancelled(NULL), 0),
        TU_NULL_INT(as_handle_when(NULL), 0),
        TU_NULL_VOID(as_handle_unref(NULL)),
        TU_NULL_INT(as_loop_add_reader(NULL, 0, append, &t, count_destroy), AS_EINVAL),
        TU_NULL_INT(as_loop_remove_reader(NULL, 0), 0),
        TU_NULL_INT(as_loop_add_writer(NULL, 0, append, &t, count_destroy), AS_EINVAL),
        TU_NULL_INT(as_loop_remove_writer(NULL, 0), 0),
        TU_NULL_INT(as_loop_run_forever(NULL), AS_EINVAL),
        TU_NULL_INT(as_loop_run_once(NULL), AS_EINVAL),
        TU_NULL_VOID(as_loop_stop(NULL)),
        TU_NULL_INT(as_loop_set_poll_hooks(NULL, append, append, &t, count_destroy), AS_EINVAL),
        TU_NULL_INT(as_loop_pending(NULL), 0),
        TU_NULL_INT(as_loop_objects(NULL), 0),
        TU_NULL_INT(as_loop_set_exception_handler(NULL, NULL, &t, count_destroy), AS_EINVAL),
        TU_NULL_VOID(as_loop_call_exception_handler(NULL, &ctx)),
        TU_NULL_VOID(as_loop_default_exception_handler(NULL, &ctx)),
    };

    tu_check_null(calls);
    ck_assert_ptr_eq(h, tu_poison()); /* no handle was made */
    ck_assert_int_eq(log.n, 0);
    ck_assert_int_eq(log.destroyed, 0);
}
END_TEST

START_TEST(backend_is_chosen_by_name)
{
    as_loop *loop = tu_poison();
    ck_assert_int_eq(as_loop_new_with_backend("no-such-backend", &loop), AS_EINVAL);
    ck_assert_ptr_null(loop);
    ck_assert_int_eq(as_loop_new_with_backend("select", NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_new_with_backend("select", &loop), 0);
    ck_assert_str_eq(as_loop_backend_name(loop), "select");
    ck_assert_int_eq(as_loop_max_fd(loop), FD_SETSIZE);
    tu_close(loop);
}
END_TEST

/* ASYNCSTREAMS_BACKEND names the backend of every loop made without a
 * name (loop.h).  The variable is restored afterwards: a run of the whole
 * suite on another backend sets it for every test. */
START_TEST(asyncstreams_backend_names_the_default_backend)
{
    const char *was = getenv("ASYNCSTREAMS_BACKEND");
    char *saved = was ? strdup(was) : NULL;
    as_loop *loop = NULL;

    setenv("ASYNCSTREAMS_BACKEND", "select", 1);
    ck_assert_int_eq(as_loop_new(&loop), 0);
    ck_assert_str_eq(as_loop_backend_name(loop), "select");
    tu_close(loop);

    /* An unknown name is an error, not a silent fall-back: a run meant to
     * test another backend must not quietly test select() instead. */
    loop = tu_poison();
    setenv("ASYNCSTREAMS_BACKEND", "no-such-backend", 1);
    ck_assert_int_eq(as_loop_new(&loop), AS_EINVAL);
    ck_assert_ptr_null(loop);
    ck_assert_int_eq(as_loop_new_with_backend(NULL, &loop), AS_EINVAL);
    ck_assert_ptr_null(loop);
    /* A name given in the call wins over the variable. */
    ck_assert_int_eq(as_loop_new_with_backend("select", &loop), 0);
    ck_assert_str_eq(as_loop_backend_name(loop), "select");
    tu_close(loop);

    /* Empty means unset: the default. */
    setenv("ASYNCSTREAMS_BACKEND", "", 1);
    ck_assert_int_eq(as_loop_new(&loop), 0);
    ck_assert_str_eq(as_loop_backend_name(loop), "select");
    tu_close(loop);

    if (saved)
        setenv("ASYNCSTREAMS_BACKEND", saved, 1);
    else
        unsetenv("ASYNCSTREAMS_BACKEND");
    free(saved);
}
END_TEST

/* ------------------------------------------------------------ timers */

START_TEST(timers_fire_in_deadline_order_with_fifo_ties)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged t[6];
    double base = as_loop_time(loop) + 0.02;
    /* tags 0..5 at deadlines: 2,1,1,0,2,1 (x 10 ms) -> expected 3,1,2,5,0,4 */
    double at[6] = {0.02, 0.01, 0.01, 0.0, 0.02, 0.01};
    int expect[6] = {3, 1, 2, 5, 0, 4}, i;

    for (i = 0; i < 6; i++) {
        t[i].log = &log;
        t[i].tag = i;
        ck_assert_int_eq(as_loop_call_at(loop, base + at[i], append, &t[i], count_destroy, NULL), 0);
    }
    ck_assert_int_eq(as_loop_call_at(loop, base + 0.05, stop_cb, loop, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_forever(loop), 0);
    ck_assert_int_eq(log.n, 6);
    for (i = 0; i < 6; i++)
        ck_assert_int_eq(log.order[i], expect[i]);
    ck_assert_int_eq(log.destroyed, 6);
    tu_close(loop);
}
END_TEST

struct stamp {
    as_loop *loop;
    double fired_at;
};

static void stamp_cb(void *p)
{
    struct stamp *s = p;
    s->fired_at = as_loop_time(s->loop);
    as_loop_stop(s->loop);
}

START_TEST(a_timer_never_fires_early)
{
    as_loop *loop = tu_loop();
    struct stamp s = {loop, 0};
    double start = as_loop_time(loop);

    ck_assert_int_eq(as_loop_call_later(loop, 0.05, stamp_cb, &s, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_forever(loop), 0);
    ck_assert_double_ge(s.fired_at - start, 0.05);
    ck_assert_double_lt(s.fired_at - start, 1.0);
    tu_close(loop);
}
END_TEST

START_TEST(negative_delay_means_now)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged t = {&log, 1};
    ck_assert_int_eq(as_loop_call_later(loop, -5, append, &t, NULL, NULL), 0);
    as_loop_run_once(loop);
    ck_assert_int_eq(log.n, 1);
    tu_close(loop);
}
END_TEST

START_TEST(cancelling_a_timer_removes_it_at_once)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged t = {&log, 1};
    as_handle *h;

    ck_assert_int_eq(as_loop_call_later(loop, 3600, append, &t, count_destroy, &h), 0);
    ck_assert_uint_eq(as_loop_pending(loop), 1);
    ck_assert_double_gt(as_handle_when(h), as_loop_time(loop) + 3500);
    as_handle_cancel(h);
    ck_assert(as_handle_cancelled(h));
    ck_assert_int_eq(log.destroyed, 1);
    ck_assert_uint_eq(as_loop_pending(loop), 0);
    as_handle_cancel(h); /* idempotent */
    ck_assert_int_eq(log.destroyed, 1);
    as_handle_unref(h);
    /* With nothing scheduled, a turn with stop set returns at once. */
    as_loop_stop(loop);
    ck_assert_int_eq(as_loop_run_forever(loop), 0);
    ck_assert_int_eq(log.n, 0);
    tu_close(loop);
}
END_TEST

/* Many timers with random deadlines and random cancellations: the ones left
 * fire in (deadline, scheduling order) order.  Exercises heap removal from
 * the middle. */
START_TEST(timer_heap_keeps_order_under_random_cancellation)
{
    enum { N = 500 };
    as_loop *loop = tu_loop();
    static struct log log;
    static struct tagged t[N];
    static as_handle *h[N];
    static double when[N];
    static int cancelled[N];
    double base = as_loop_time(loop) + 0.01;
    int i, prev = -1;
    unsigned seed = 12345;

    memset(&log, 0, sizeof log);
    for (i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        when[i] = base + (double)((seed >> 16) % 20) * 0.001; /* many ties */
        t[i].log = &log;
        t[i].tag = i;
        ck_assert_int_eq(as_loop_call_at(loop, when[i], append, &t[i], count_destroy, &h[i]), 0);
    }
    for (i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        cancelled[i] = (seed >> 16) % 3 == 0;
        if (cancelled[i])
            as_handle_cancel(h[i]);
    }
    as_loop_call_at(loop, base + 0.05, stop_cb, loop, NULL, NULL);
    ck_assert_int_eq(as_loop_run_forever(loop), 0);

    ck_assert_int_eq(log.destroyed, N);
    for (i = 0; i < log.n; i++) {
        int tag = log.order[i];
        ck_assert(!cancelled[tag]);
        if (prev >= 0)
            ck_assert(when[prev] < when[tag] || (when[prev] == when[tag] && prev < tag));
        prev = tag;
    }
    for (i = 0; i < N; i++) {
        if (!cancelled[i])
            ck_assert(!as_handle_cancelled(h[i]));
        as_handle_unref(h[i]);
    }
    {
        int expected = 0;
        for (i = 0; i < N; i++)
            expected += !cancelled[i];
        ck_assert_int_eq(log.n, expected);
    }
    tu_close(loop);
}
END_TEST

struct timer_pair {
    as_handle *other;
    int ran;
};

static void cancel_other_timer(void *p)
{
    struct timer_pair *tp = p;
    tp->ran++;
    as_handle_cancel(tp->other);
}

START_TEST(a_timer_can_cancel_another_due_in_the_same_turn)
{
    as_loop *loop = tu_loop();
    struct timer_pair a = {NULL, 0}, b = {NULL, 0};
    double when = as_loop_time(loop) + 0.01;

    ck_assert_int_eq(as_loop_call_at(loop, when, cancel_other_timer, &a, NULL, &b.other), 0);
    ck_assert_int_eq(as_loop_call_at(loop, when, cancel_other_timer, &b, NULL, &a.other), 0);
    as_loop_call_at(loop, when + 0.02, stop_cb, loop, NULL, NULL);
    as_loop_run_forever(loop);
    /* The first one ran and cancelled the second, which was already in the
     * ready queue: exactly one ran. */
    ck_assert_int_eq(a.ran + b.ran, 1);
    as_handle_unref(a.other);
    as_handle_unref(b.other);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ watchers */

struct watch {
    as_loop *loop;
    int fd;
    int calls;
    int destroyed;
    int remove_after;
    int calls_at_destroy;
};

static void on_readable(void *p)
{
    struct watch *w = p;
    char c;
    w->calls++;
    ck_assert_int_eq(read(w->fd, &c, 1), 1);
    if (w->calls == w->remove_after)
        ck_assert_int_eq(as_loop_remove_reader(w->loop, w->fd), 1);
    /* Still alive after removing itself: destroy has not run yet. */
    ck_assert_int_eq(w->destroyed, 0);
}

static void watch_destroy(void *p)
{
    struct watch *w = p;
    w->destroyed++;
    w->calls_at_destroy = w->calls;
}

START_TEST(a_reader_fires_while_readable_and_can_remove_itself)
{
    as_loop *loop = tu_loop();
    int sv[2];
    struct watch w;
    int i;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    w.loop = loop;
    w.fd = sv[0];
    w.calls = w.destroyed = w.calls_at_destroy = 0;
    w.remove_after = 3;
    ck_assert_int_eq(as_loop_add_reader(loop, sv[0], on_readable, &w, watch_destroy), 0);
    ck_assert_uint_eq(as_loop_pending(loop), 1);
    ck_assert_int_eq(write(sv[1], "abcde", 5), 5);
    for (i = 0; i < 5; i++)
        tu_turn(loop);
    /* One byte per turn, removed after the third; the userdata came back
     * once, after the third callback had returned. */
    ck_assert_int_eq(w.calls, 3);
    ck_assert_int_eq(w.destroyed, 1);
    ck_assert_int_eq(w.calls_at_destroy, 3);
    ck_assert_int_eq(as_loop_remove_reader(loop, sv[0]), 0);
    close(sv[0]);
    close(sv[1]);
    tu_close(loop);
}
END_TEST

START_TEST(adding_a_reader_again_replaces_the_first)
{
    as_loop *loop = tu_loop();
    int sv[2];
    struct watch a = {NULL, 0, 0, 0, 0, 0}, b = {NULL, 0, 0, 0, 0, 0};

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    a.loop = b.loop = loop;
    a.fd = b.fd = sv[0];
    ck_assert_int_eq(as_loop_add_reader(loop, sv[0], on_readable, &a, watch_destroy), 0);
    ck_assert_int_eq(as_loop_add_reader(loop, sv[0], on_readable, &b, watch_destroy), 0);
    ck_assert_int_eq(a.destroyed, 1);
    ck_assert_uint_eq(as_loop_pending(loop), 1);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    as_loop_run_once(loop);
    ck_assert_int_eq(a.calls, 0);
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(as_loop_remove_reader(loop, sv[0]), 1);
    ck_assert_int_eq(b.destroyed, 1);
    close(sv[0]);
    close(sv[1]);
    tu_close(loop);
}
END_TEST

struct writable {
    as_loop *loop;
    int fd;
    int calls;
};

static void on_writable(void *p)
{
    struct writable *w = p;
    w->calls++;
    as_loop_remove_writer(w->loop, w->fd);
}

START_TEST(a_writer_fires_on_a_writable_socket_and_a_reader_on_the_same_fd_is_kept)
{
    as_loop *loop = tu_loop();
    int sv[2];
    struct writable w;
    struct watch r = {NULL, 0, 0, 0, 0, 0};

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    w.loop = r.loop = loop;
    w.fd = r.fd = sv[0];
    w.calls = 0;
    ck_assert_int_eq(as_loop_add_reader(loop, sv[0], on_readable, &r, watch_destroy), 0);
    ck_assert_int_eq(as_loop_add_writer(loop, sv[0], on_writable, &w, NULL), 0);
    ck_assert_uint_eq(as_loop_pending(loop), 2);
    as_loop_run_once(loop);
    ck_assert_int_eq(w.calls, 1);
    ck_assert_uint_eq(as_loop_pending(loop), 1);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    as_loop_run_once(loop);
    ck_assert_int_eq(r.calls, 1);
    as_loop_remove_reader(loop, sv[0]);
    close(sv[0]);
    close(sv[1]);
    tu_close(loop);
}
END_TEST

START_TEST(an_fd_at_or_above_fd_setsize_is_refused_cleanly)
{
    as_loop *loop = tu_loop();
    struct rlimit rl;
    int sv[2], big = FD_SETSIZE, bigger = FD_SETSIZE + 50;
    struct watch w = {NULL, 0, 0, 0, 0, 0};

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < (rlim_t)bigger + 1) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)bigger + 1 ? rl.rlim_max : (rlim_t)bigger + 1;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    ck_assert_msg(rl.rlim_cur >= (rlim_t)bigger + 1,
                  "cannot raise RLIMIT_NOFILE to test fds above FD_SETSIZE");
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(dup2(sv[0], big), big);
    ck_assert_int_eq(dup2(sv[0], bigger), bigger);
    ck_assert_int_eq(as_loop_add_reader(loop, big, on_readable, &w, watch_destroy), AS_EFDSETSIZE);
    ck_assert_int_eq(as_loop_add_writer(loop, bigger, on_readable, &w, watch_destroy), AS_EFDSETSIZE);
    ck_assert_int_eq(w.destroyed, 0);
    ck_assert_uint_eq(as_loop_pending(loop), 0);
    /* The loop still works for ordinary fds. */
    w.loop = loop;
    w.fd = sv[0];
    ck_assert_int_eq(as_loop_add_reader(loop, sv[0], on_readable, &w, watch_destroy), 0);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    as_loop_run_once(loop);
    ck_assert_int_eq(w.calls, 1);
    as_loop_remove_reader(loop, sv[0]);
    close(big);
    close(bigger);
    close(sv[0]);
    close(sv[1]);
    tu_close(loop);
}
END_TEST

struct reports {
    int count;
    int last_code;
};

static void record_report(as_loop *loop, const as_error_context *c, void *p)
{
    struct reports *r = p;
    (void)loop;
    r->count++;
    r->last_code = c->code;
}

START_TEST(an_fd_closed_while_watched_is_reported_and_dropped)
{
    as_loop *loop = tu_loop();
    struct reports rep = {0, 0};
    struct watch w = {NULL, 0, 0, 0, 0, 0};
    struct log log = {{0}, 0, 0};
    struct tagged t = {&log, 1};
    int sv[2];

    ck_assert_int_eq(as_loop_set_exception_handler(loop, record_report, &rep, NULL), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(as_loop_add_reader(loop, sv[0], on_readable, &w, watch_destroy), 0);
    close(sv[0]); /* the mistake: closed without remove_reader */
    as_loop_call_later(loop, 0.01, append, &t, NULL, NULL);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(rep.count, 1);
    ck_assert_int_eq(rep.last_code, -EBADF);
    ck_assert_int_eq(w.destroyed, 1);
    /* The loop goes on. */
    while (log.n == 0)
        ck_assert_int_eq(as_loop_run_once(loop), 0);
    close(sv[1]);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ end of turn */

struct eot {
    as_loop *loop;
    struct log *log;
    int again;         /* reschedule itself this many more times */
    int forever;
};

static void eot_cb(void *p)
{
    struct eot *e = p;
    e->log->order[e->log->n++] = 100;
    if (e->forever || e->again-- > 0)
        ck_assert_int_eq(as_loop_call_end_of_turn(e->loop, eot_cb, e, NULL, NULL), 0);
}

static void schedule_eot_and_soon(void *p)
{
    struct eot *e = p;
    static struct tagged late;
    late.log = e->log;
    late.tag = 2;
    e->log->order[e->log->n++] = 1;
    ck_assert_int_eq(as_loop_call_end_of_turn(e->loop, eot_cb, e, NULL, NULL), 0);
    /* Not synchronous. */
    ck_assert_int_eq(e->log->n, 1);
    /* call_soon from here waits for the next turn, after the end of this one. */
    ck_assert_int_eq(as_loop_call_soon(e->loop, append, &late, NULL, NULL), 0);
}

START_TEST(end_of_turn_callbacks_run_after_the_turn_before_the_next)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged t3 = {&log, 3};
    struct eot e = {loop, &log, 0, 0};

    as_loop_call_soon(loop, schedule_eot_and_soon, &e, NULL, NULL);
    as_loop_call_soon(loop, append, &t3, NULL, NULL);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    /* 1 and 3 were the turn's callbacks; 100 ran at its end; 2 waits. */
    ck_assert_int_eq(log.n, 3);
    ck_assert_int_eq(log.order[0], 1);
    ck_assert_int_eq(log.order[1], 3);
    ck_assert_int_eq(log.order[2], 100);
    ck_assert_uint_eq(as_loop_pending(loop), 1);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(log.order[3], 2);
    tu_close(loop);
}
END_TEST

START_TEST(end_of_turn_scheduled_outside_the_loop_runs_without_waiting)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct eot e = {loop, &log, 2, 0};
    as_handle *far;

    /* Nothing else is ready and a timer is an hour away: the turn must not
     * wait for it, and the chain of three runs in that one turn. */
    as_loop_call_later(loop, 3600, tu_noop, NULL, NULL, &far);
    ck_assert_int_eq(as_loop_call_end_of_turn(loop, eot_cb, &e, NULL, NULL), 0);
    ck_assert_uint_eq(as_loop_pending(loop), 2);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(log.n, 3);
    as_handle_cancel(far);
    as_handle_unref(far);
    tu_close(loop);
}
END_TEST

START_TEST(an_end_of_turn_callback_rescheduling_itself_cannot_stall_the_loop)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct eot e = {loop, &log, 0, 1};

    as_loop_call_end_of_turn(loop, eot_cb, &e, NULL, NULL);
    ck_assert_int_eq(as_loop_run_once(loop), 0); /* returns: bounded rounds */
    ck_assert_int_gt(log.n, 1);
    ck_assert_int_lt(log.n, 100);
    e.forever = 0;
    e.again = 0;
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    tu_close(loop);
}
END_TEST

START_TEST(end_of_turn_handles_cancel_and_close_like_the_others)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged a = {&log, 1}, b = {&log, 2};
    as_handle *h;

    ck_assert_int_eq(as_loop_call_end_of_turn(NULL, append, &a, NULL, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_call_end_of_turn(loop, append, &a, count_destroy, &h), 0);
    as_handle_cancel(h);
    ck_assert_int_eq(log.destroyed, 1);
    as_handle_unref(h);
    tu_turn(loop);
    ck_assert_int_eq(log.n, 0);
    ck_assert_int_eq(as_loop_call_end_of_turn(loop, append, &b, count_destroy, NULL), 0);
    ck_assert_int_eq(as_loop_close(loop), 0); /* dropped, destroy ran */
    ck_assert_int_eq(log.n, 0);
    ck_assert_int_eq(log.destroyed, 2);
}
END_TEST

/* ------------------------------------------------------------ threads */

struct poke {
    as_loop *loop;
    int delay_ms;
};

static void *poke_thread(void *p)
{
    struct poke *pk = p;
    struct timespec ts = {0, pk->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    as_loop_call_soon_threadsafe(pk->loop, stop_cb, pk->loop, NULL);
    return NULL;
}

START_TEST(call_soon_threadsafe_wakes_a_sleeping_loop)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged t = {&log, 1};
    struct poke pk = {loop, 50};
    pthread_t th;
    as_handle *far;
    double start = as_loop_time(loop);

    /* Without the wake-up the loop would sleep in select() for an hour. */
    ck_assert_int_eq(as_loop_call_later(loop, 3600, append, &t, count_destroy, &far), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, poke_thread, &pk), 0);
    ck_assert_int_eq(as_loop_run_forever(loop), 0);
    pthread_join(th, NULL);
    ck_assert_double_lt(as_loop_time(loop) - start, 2.0);
    as_handle_cancel(far);
    as_handle_unref(far);
    tu_close(loop);
}
END_TEST

enum { THREADS = 4, CALLS = 2000 };

struct counter {
    int hits[THREADS];
    int done_threads;
    as_loop *loop;
};

struct hit {
    struct counter *c;
    int thread;
};

static void hit_cb(void *p)
{
    struct hit *h = p;
    h->c->hits[h->thread]++;
}

static void thread_done_cb(void *p)
{
    struct counter *c = p;
    if (++c->done_threads == THREADS)
        as_loop_stop(c->loop);
}

static struct hit hits[THREADS];
static struct counter counter;

static void *spam_thread(void *p)
{
    struct hit *h = p;
    int i;
    for (i = 0; i < CALLS; i++)
        ck_assert_int_eq(as_loop_call_soon_threadsafe(h->c->loop, hit_cb, h, NULL), 0);
    ck_assert_int_eq(as_loop_call_soon_threadsafe(h->c->loop, thread_done_cb, h->c, NULL), 0);
    return NULL;
}

START_TEST(call_soon_threadsafe_from_many_threads_runs_each_once_in_order)
{
    as_loop *loop = tu_loop();
    pthread_t th[THREADS];
    int i;

    memset(&counter, 0, sizeof counter);
    counter.loop = loop;
    for (i = 0; i < THREADS; i++) {
        hits[i].c = &counter;
        hits[i].thread = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, spam_thread, &hits[i]), 0);
    }
    ck_assert_int_eq(as_loop_run_forever(loop), 0);
    for (i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        /* thread_done_cb came after all of that thread's calls (FIFO). */
        ck_assert_int_eq(counter.hits[i], CALLS);
    }
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ run / stop */

static void try_reenter(void *p)
{
    as_loop *loop = p;
    ck_assert_int_eq(as_loop_run_once(loop), AS_ESTATE);
    ck_assert_int_eq(as_loop_run_forever(loop), AS_ESTATE);
    ck_assert_int_eq(as_loop_close(loop), AS_ESTATE);
    ck_assert(as_loop_is_running(loop));
}

START_TEST(running_the_loop_from_its_own_callback_is_refused)
{
    as_loop *loop = tu_loop();
    as_loop_call_soon(loop, try_reenter, loop, NULL, NULL);
    as_loop_run_once(loop);
    ck_assert(!as_loop_is_running(loop));
    tu_close(loop);
}
END_TEST

START_TEST(stop_finishes_the_current_batch)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged a = {&log, 1}, b = {&log, 2};

    as_loop_call_soon(loop, append, &a, NULL, NULL);
    as_loop_call_soon(loop, stop_cb, loop, NULL, NULL);
    as_loop_call_soon(loop, append, &b, NULL, NULL);
    ck_assert_int_eq(as_loop_run_forever(loop), 0);
    ck_assert_int_eq(log.n, 2); /* b ran: same batch as stop */

    /* stop() before running: the next run does one turn and returns. */
    as_loop_call_soon(loop, append, &a, NULL, NULL);
    as_loop_stop(loop);
    ck_assert_int_eq(as_loop_run_forever(loop), 0);
    ck_assert_int_eq(log.n, 3);
    tu_close(loop);
}
END_TEST

START_TEST(run_once_consumes_a_stop_and_waits_again_afterwards)
{
    as_loop *loop = tu_loop();
    struct stamp s = {loop, 0};
    double start;

    as_loop_call_soon(loop, stop_cb, loop, NULL, NULL);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    /* The stop was for that turn only: the next turn waits for the timer
     * instead of returning at once (which would make a run_once loop spin). */
    start = as_loop_time(loop);
    ck_assert_int_eq(as_loop_call_later(loop, 0.1, stamp_cb, &s, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_double_ge(as_loop_time(loop) - start, 0.1);
    ck_assert_double_gt(s.fired_at, 0);
    tu_close(loop);
}
END_TEST

START_TEST(close_drops_everything_pending_and_refuses_more)
{
    as_loop *loop = tu_loop();
    struct log log = {{0}, 0, 0};
    struct tagged t[3] = {{&log, 1}, {&log, 2}, {&log, 3}};
    struct watch w = {NULL, 0, 0, 0, 0, 0};
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    as_loop_call_soon(loop, append, &t[0], count_destroy, NULL);
    as_loop_call_later(loop, 10, append, &t[1], count_destroy, NULL);
    ck_assert_int_eq(as_loop_call_soon_threadsafe(loop, append, &t[2], count_destroy), 0);
    as_loop_add_reader(loop, sv[0], on_readable, &w, watch_destroy);
    ck_assert_int_eq(as_loop_close(loop), 0);
    ck_assert_int_eq(log.n, 0);
    ck_assert_int_eq(log.destroyed, 3);
    ck_assert_int_eq(w.destroyed, 1);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(scheduling_on_a_closed_loop_fails)
{
    /* The loop's memory is kept alive by an object so we may still call it. */
    as_loop *loop = tu_loop();
    as_future *keep = tu_future(loop), *f;
    struct log log = {{0}, 0, 0};
    struct tagged t = {&log, 1};

    ck_assert_int_eq(as_loop_close(loop), 1); /* one object still alive */
    ck_assert(as_loop_is_closed(loop));
    ck_assert_int_eq(as_loop_close(loop), AS_ECLOSED);
    ck_assert_int_eq(as_loop_call_soon(loop, append, &t, count_destroy, NULL), AS_ECLOSED);
    ck_assert_int_eq(as_loop_call_later(loop, 1, append, &t, count_destroy, NULL), AS_ECLOSED);
    ck_assert_int_eq(as_loop_call_soon_threadsafe(loop, append, &t, count_destroy), AS_ECLOSED);
    ck_assert_int_eq(as_loop_add_reader(loop, 0, append, &t, count_destroy), AS_ECLOSED);
    ck_assert_int_eq(as_loop_run_once(loop), AS_ECLOSED);
    f = tu_poison();
    ck_assert_int_eq(as_future_new(loop, &f), AS_ECLOSED);
    ck_assert_ptr_null(f);
    ck_assert_int_eq(log.destroyed, 0);
    as_future_unref(keep); /* frees the loop too; valgrind/ASan check it */
}
END_TEST

static int handler_destroyed;
static void handler_destroy(void *p)
{
    (void)p;
    handler_destroyed++;
}

START_TEST(exception_handler_is_called_and_replaced)
{
    as_loop *loop = tu_loop();
    struct reports rep = {0, 0};
    as_error_context ctx = {"something failed", AS_EINVAL, "detail", NULL};

    handler_destroyed = 0;
    ck_assert_int_eq(as_loop_set_exception_handler(loop, record_report, &rep, handler_destroy), 0);
    as_loop_call_exception_handler(loop, &ctx);
    ck_assert_int_eq(rep.count, 1);
    ck_assert_int_eq(rep.last_code, AS_EINVAL);
    ck_assert_int_eq(as_loop_set_exception_handler(loop, NULL, NULL, NULL), 0);
    ck_assert_int_eq(handler_destroyed, 1);
    tu_close(loop);
}
END_TEST

START_TEST(loop_time_is_monotonic)
{
    as_loop *loop = tu_loop();
    double a = as_loop_time(loop), b = as_loop_time(loop);
    ck_assert_double_le(a, b);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ poll hooks */

struct hooks {
    int before, after, destroyed;
    int inside;            /* between before and after */
    int callback_inside;   /* a callback ran while inside: must stay 0 */
    double slept;          /* longest time between before and after */
    double t0;
    as_loop *loop;
};

static void hook_before(void *p)
{
    struct hooks *h = p;
    ck_assert_int_eq(h->inside, 0);
    h->inside = 1;
    h->before++;
    h->t0 = as_loop_time(h->loop);
}

static void hook_after(void *p)
{
    struct hooks *h = p;
    double d = as_loop_time(h->loop) - h->t0;
    ck_assert_int_eq(h->inside, 1);
    h->inside = 0;
    h->after++;
    if (d > h->slept)
        h->slept = d;
}

static void hook_destroy(void *p)
{
    struct hooks *h = p;
    h->destroyed++;
}

static void note_inside(void *p)
{
    struct hooks *h = p;
    if (h->inside)
        h->callback_inside++;
}

/* A callback that reschedules itself on every turn, for ever, and counts. */
static void spin_cb(void *p)
{
    struct resched *r = p;
    r->runs++;
    ck_assert_int_eq(as_loop_call_soon(r->loop, spin_cb, r, NULL, NULL), 0);
}

static void note_readable(void *p)
{
    int *fired = p;
    (*fired)++;
}

START_TEST(a_busy_loop_polls_every_second_turn_and_still_serves_io)
{
    as_loop *loop = tu_loop();
    struct hooks h = {0, 0, 0, 0, 0, 0, 0, loop};
    struct resched r = {loop, 0};
    int sv[2], fired = 0, i;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(as_loop_set_poll_hooks(loop, hook_before, hook_after, &h, NULL), 0);
    ck_assert_int_eq(as_loop_add_reader(loop, sv[1], note_readable, &fired, NULL), 0);
    ck_assert_int_eq(as_loop_call_soon(loop, spin_cb, &r, NULL, NULL), 0);

    /* Callbacks are always waiting: turns alternate between polling and
     * not, so ten turns ask the backend five times. */
    for (i = 0; i < 10; i++)
        ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(r.runs, 10);
    ck_assert_int_eq(h.before, 5);
    ck_assert_int_eq(h.after, 5);

    /* A descriptor that becomes ready is still served within two turns. */
    ck_assert_int_eq(write(sv[0], "x", 1), 1);
    for (i = 0; i < 2; i++)
        ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(fired, 1);

    as_loop_remove_reader(loop, sv[1]);
    ck_assert_int_eq(as_loop_set_poll_hooks(loop, NULL, NULL, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_close(loop), 0); /* drops the spinning callback */
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(poll_hooks_bracket_every_wait_in_pairs)
{
    as_loop *loop = tu_loop();
    struct hooks h = {0, 0, 0, 0, 0, 0, 0, loop}, h2 = h;
    int i;

    /* One of the two alone is refused. */
    ck_assert_int_eq(as_loop_set_poll_hooks(loop, hook_before, NULL, &h, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_set_poll_hooks(loop, NULL, hook_after, &h, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_set_poll_hooks(loop, hook_before, hook_after, &h, hook_destroy), 0);
    ck_assert_int_eq(h.before, 0); /* setting them runs nothing */

    /* Three turns with a callback waiting each time: the first and the
     * third poll, the second skips its poll (it follows one that polled). */
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(as_loop_call_soon(loop, note_inside, &h, NULL, NULL), 0);
        ck_assert_int_eq(as_loop_run_once(loop), 0);
    }
    ck_assert_int_eq(h.before, 2);
    ck_assert_int_eq(h.after, 2);
    ck_assert_int_eq(h.callback_inside, 0);

    /* The blocking wait itself happens between the two: a 200 ms timer
     * means a turn that sleeps about that long inside the pair.  (The
     * margin is for a loaded machine: time lost before the first hook is
     * time not slept inside it.) */
    ck_assert_int_eq(as_loop_call_later(loop, 0.2, note_inside, &h, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    while (as_loop_pending(loop) > 0)
        ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_double_ge(h.slept, 0.1);
    ck_assert_int_eq(h.before, h.after);
    ck_assert_int_eq(h.callback_inside, 0);

    /* Replacing runs the old pair's destroy; removing runs the new one's. */
    ck_assert_int_eq(as_loop_set_poll_hooks(loop, hook_before, hook_after, &h2, hook_destroy), 0);
    ck_assert_int_eq(h.destroyed, 1);
    tu_turn(loop);          /* two busy turns: exactly one of them polls */
    tu_turn(loop);
    ck_assert_int_eq(h2.before, 1);
    ck_assert_int_eq(h2.after, 1);
    ck_assert_int_eq(as_loop_set_poll_hooks(loop, NULL, NULL, NULL, NULL), 0);
    ck_assert_int_eq(h2.destroyed, 1);
    tu_turn(loop);
    tu_turn(loop);
    ck_assert_int_eq(h2.before, 1); /* removed: not called any more */

    /* Closing the loop hands the current pair's userdata back. */
    ck_assert_int_eq(as_loop_set_poll_hooks(loop, hook_before, hook_after, &h2, hook_destroy), 0);
    tu_close(loop);
    ck_assert_int_eq(h2.destroyed, 2);
}
END_TEST

START_TEST(poll_hooks_on_a_closed_loop_are_refused)
{
    as_loop *loop = tu_loop();
    struct hooks h = {0, 0, 0, 0, 0, 0, 0, loop};
    int err;

    /* Keep the loop's memory alive after close with one object. */
    as_future *f = tu_future(loop);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(as_loop_close(loop), 1);
    err = as_loop_set_poll_hooks(loop, hook_before, hook_after, &h, hook_destroy);
    ck_assert_int_eq(err, AS_ECLOSED);
    ck_assert_int_eq(h.destroyed, 0); /* a failed call keeps userdata the caller's */
    as_future_unref(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loop");
    TCase *tc;

    tc = tcase_create("ready queue");
    tcase_add_test(tc, call_soon_runs_in_fifo_order_and_not_synchronously);
    tcase_add_test(tc, callbacks_scheduled_during_a_turn_wait_for_the_next);
    tcase_add_test(tc, a_callback_can_cancel_a_later_callback_of_the_same_turn);
    tcase_add_test(tc, cancel_after_run_does_nothing);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_test(tc, every_call_accepts_a_null_loop_or_handle);
    tcase_add_test(tc, backend_is_chosen_by_name);
    tcase_add_test(tc, asyncstreams_backend_names_the_default_backend);
    suite_add_tcase(s, tc);

    tc = tcase_create("timers");
    tcase_add_test(tc, timers_fire_in_deadline_order_with_fifo_ties);
    tcase_add_test(tc, a_timer_never_fires_early);
    tcase_add_test(tc, negative_delay_means_now);
    tcase_add_test(tc, cancelling_a_timer_removes_it_at_once);
    tcase_add_test(tc, timer_heap_keeps_order_under_random_cancellation);
    tcase_add_test(tc, a_timer_can_cancel_another_due_in_the_same_turn);
    suite_add_tcase(s, tc);

    tc = tcase_create("watchers");
    tcase_add_test(tc, a_reader_fires_while_readable_and_can_remove_itself);
    tcase_add_test(tc, adding_a_reader_again_replaces_the_first);
    tcase_add_test(tc, a_writer_fires_on_a_writable_socket_and_a_reader_on_the_same_fd_is_kept);
    tcase_add_test(tc, an_fd_at_or_above_fd_setsize_is_refused_cleanly);
    tcase_add_test(tc, an_fd_closed_while_watched_is_reported_and_dropped);
    suite_add_tcase(s, tc);

    tc = tcase_create("end of turn");
    tcase_add_test(tc, end_of_turn_callbacks_run_after_the_turn_before_the_next);
    tcase_add_test(tc, end_of_turn_scheduled_outside_the_loop_runs_without_waiting);
    tcase_add_test(tc, an_end_of_turn_callback_rescheduling_itself_cannot_stall_the_loop);
    tcase_add_test(tc, end_of_turn_handles_cancel_and_close_like_the_others);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, call_soon_threadsafe_wakes_a_sleeping_loop);
    tcase_add_test(tc, call_soon_threadsafe_from_many_threads_runs_each_once_in_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_add_test(tc, running_the_loop_from_its_own_callback_is_refused);
    tcase_add_test(tc, stop_finishes_the_current_batch);
    tcase_add_test(tc, run_once_consumes_a_stop_and_waits_again_afterwards);
    tcase_add_test(tc, close_drops_everything_pending_and_refuses_more);
    tcase_add_test(tc, scheduling_on_a_closed_loop_fails);
    tcase_add_test(tc, exception_handler_is_called_and_replaced);
    tcase_add_test(tc, loop_time_is_monotonic);
    suite_add_tcase(s, tc);

    tc = tcase_create("poll_hooks");
    tcase_add_test(tc, poll_hooks_bracket_every_wait_in_pairs);
    tcase_add_test(tc, a_busy_loop_polls_every_second_turn_and_still_serves_io);
    tcase_add_test(tc, poll_hooks_on_a_closed_loop_are_refused);
    suite_add_tcase(s, tc);

    return tu_run(s);
}
