/*
 * check_signal.c - as_loop_add_signal_handler(): a signal becomes a
 * callback on the loop, never inside the signal, and the disposition the
 * signal had before comes back when the handler goes.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"

struct seen {
    as_loop *loop;
    int calls;
    int last;
    int destroyed;
    int stop;          /* as_loop_stop() from the handler */
    int remove_self;   /* as_loop_remove_signal_handler() from the handler */
    int destroyed_during_remove;
};

static void on_sig(int signo, void *p)
{
    struct seen *s = p;
    s->calls++;
    s->last = signo;
    if (s->remove_self) {
        ck_assert_int_eq(as_loop_remove_signal_handler(s->loop, signo), 1);
        s->destroyed_during_remove = s->destroyed;
    }
    if (s->stop)
        as_loop_stop(s->loop);
}

static void destroy_seen(void *p)
{
    ((struct seen *)p)->destroyed++;
}

/* Turns until the loop has emptied its pipe and run what it queued. */
static void turns(as_loop *loop, int n)
{
    while (n-- > 0)
        tu_turn(loop);
}

START_TEST(a_signal_runs_the_handler_on_the_loop)
{
    as_loop *loop = tu_loop();
    struct seen s = {loop, 0, 0, 0, 0, 0, 0};

    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGUSR1, on_sig, &s, destroy_seen), 0);
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(s.calls, 0);          /* not inside the signal */
    turns(loop, 3);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.last, SIGUSR1);
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(raise(SIGUSR1), 0);   /* two bytes: two runs */
    turns(loop, 3);
    ck_assert_int_eq(s.calls, 3);
    ck_assert_int_eq(s.destroyed, 0);
    ck_assert_int_eq(as_loop_close(loop), 0);
    ck_assert_int_eq(s.destroyed, 1);      /* the close gave the userdata back */
}
END_TEST

static volatile sig_atomic_t app_handler_calls;
static void app_handler(int signo)
{
    (void)signo;
    app_handler_calls++;
}

START_TEST(removing_puts_the_old_disposition_back)
{
    as_loop *loop = tu_loop();
    struct seen s = {loop, 0, 0, 0, 0, 0, 0};
    struct sigaction sa, now;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = app_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    app_handler_calls = 0;

    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGUSR2, on_sig, &s, destroy_seen), 0);
    raise(SIGUSR2);
    turns(loop, 3);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(app_handler_calls, 0);

    ck_assert_int_eq(as_loop_remove_signal_handler(loop, SIGUSR2), 1);
    ck_assert_int_eq(s.destroyed, 1);
    ck_assert_int_eq(as_loop_remove_signal_handler(loop, SIGUSR2), 0);
    ck_assert_int_eq(sigaction(SIGUSR2, NULL, &now), 0);
    ck_assert_ptr_eq((void *)now.sa_handler, (void *)app_handler);
    raise(SIGUSR2);
    ck_assert_int_eq(app_handler_calls, 1);
    turns(loop, 3);
    ck_assert_int_eq(s.calls, 1);          /* ours is gone */

    /* The close does the same for a handler still there. */
    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGUSR2, on_sig, &s, destroy_seen), 0);
    ck_assert_int_eq(as_loop_close(loop), 0);
    ck_assert_int_eq(s.destroyed, 2);
    ck_assert_int_eq(sigaction(SIGUSR2, NULL, &now), 0);
    ck_assert_ptr_eq((void *)now.sa_handler, (void *)app_handler);
}
END_TEST

START_TEST(a_second_add_replaces_the_handler)
{
    as_loop *loop = tu_loop();
    struct seen a = {loop, 0, 0, 0, 0, 0, 0}, b = a;

    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGUSR1, on_sig, &a, destroy_seen), 0);
    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGUSR1, on_sig, &b, destroy_seen), 0);
    ck_assert_int_eq(a.destroyed, 1);
    raise(SIGUSR1);
    turns(loop, 3);
    ck_assert_int_eq(a.calls, 0);
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(as_loop_remove_signal_handler(loop, SIGUSR1), 1);
    ck_assert_int_eq(b.destroyed, 1);
    ck_assert_int_eq(as_loop_close(loop), 0);
    ck_assert_int_eq(a.destroyed + b.destroyed, 2); /* once each */
}
END_TEST

START_TEST(a_handler_may_remove_itself)
{
    as_loop *loop = tu_loop();
    struct seen s = {loop, 0, 0, 0, 0, 1, 0};

    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGUSR1, on_sig, &s, destroy_seen), 0);
    raise(SIGUSR1);
    raise(SIGUSR1);
    turns(loop, 3);
    ck_assert_int_eq(s.calls, 1);           /* the second byte found no handler */
    ck_assert_int_eq(s.destroyed_during_remove, 0); /* not under its own callback */
    ck_assert_int_eq(s.destroyed, 1);       /* but once it returned */
    ck_assert_int_eq(as_loop_close(loop), 0);
    ck_assert_int_eq(s.destroyed, 1);
}
END_TEST

START_TEST(one_loop_owns_a_signal_at_a_time)
{
    as_loop *one = tu_loop(), *two = tu_loop();
    struct seen a = {one, 0, 0, 0, 0, 0, 0}, b = {two, 0, 0, 0, 0, 0, 0};

    ck_assert_int_eq(as_loop_add_signal_handler(one, SIGUSR1, on_sig, &a, destroy_seen), 0);
    ck_assert_int_eq(as_loop_add_signal_handler(two, SIGUSR1, on_sig, &b, destroy_seen), -EBUSY);
    ck_assert_int_eq(b.destroyed, 0);       /* an error leaves userdata the caller's */
    ck_assert_int_eq(as_loop_add_signal_handler(two, SIGUSR2, on_sig, &b, destroy_seen), 0);
    raise(SIGUSR1);
    raise(SIGUSR2);
    turns(one, 3);
    turns(two, 3);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.last, SIGUSR1);
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(b.last, SIGUSR2);
    ck_assert_int_eq(as_loop_close(one), 0);  /* gives SIGUSR1 up */
    ck_assert_int_eq(as_loop_add_signal_handler(two, SIGUSR1, on_sig, &a, NULL), 0);
    ck_assert_int_eq(as_loop_close(two), 0);
    ck_assert_int_eq(b.destroyed, 1);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    as_loop *loop = tu_loop();
    struct seen s = {loop, 0, 0, 0, 0, 0, 0};

    ck_assert_int_eq(as_loop_add_signal_handler(NULL, SIGUSR1, on_sig, &s, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGUSR1, NULL, &s, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_add_signal_handler(loop, 0, on_sig, &s, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_add_signal_handler(loop, -1, on_sig, &s, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_add_signal_handler(loop, 100000, on_sig, &s, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGKILL, on_sig, &s, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGSTOP, on_sig, &s, NULL), AS_EINVAL);
    ck_assert_int_eq(as_loop_remove_signal_handler(NULL, SIGUSR1), AS_EINVAL);
    ck_assert_int_eq(as_loop_remove_signal_handler(loop, 0), AS_EINVAL);
    ck_assert_int_eq(as_loop_remove_signal_handler(loop, 100000), AS_EINVAL);
    ck_assert_int_eq(as_loop_remove_signal_handler(loop, SIGUSR1), 0);
    /* SIGKILL's refusal took no ownership: another signal still works. */
    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGUSR1, on_sig, &s, destroy_seen), 0);
    ck_assert_int_eq(as_loop_close(loop), 0);
    ck_assert_int_eq(s.destroyed, 1);
}
END_TEST

/* A closed loop whose memory lives on (an object still holds it) refuses. */
START_TEST(a_closed_loop_is_refused)
{
    as_loop *loop = tu_loop();
    as_future *f = tu_future(loop);
    struct seen s = {loop, 0, 0, 0, 0, 0, 0};

    ck_assert_int_eq(as_loop_close(loop), 1);
    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGUSR1, on_sig, &s, destroy_seen),
                     AS_ECLOSED);
    ck_assert_int_eq(as_loop_remove_signal_handler(loop, SIGUSR1), 0);
    ck_assert_int_eq(s.destroyed, 0);
    as_future_unref(f);
}
END_TEST

/* A signal from another thread wakes a loop that waits in the backend with
 * nothing else to do, and the handler may stop the loop. */
static void *kill_later(void *p)
{
    struct timespec ts = {0, 50 * 1000 * 1000};
    (void)p;
    nanosleep(&ts, NULL);
    kill(getpid(), SIGUSR1);
    return NULL;
}

static void give_up(void *p)
{
    struct seen *s = p;
    s->last = -1;
    as_loop_stop(s->loop);
}

START_TEST(a_signal_wakes_a_waiting_loop)
{
    as_loop *loop = tu_loop();
    struct seen s = {loop, 0, 0, 0, 1, 0, 0};
    pthread_t t;
    as_handle *timer = NULL;

    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGUSR1, on_sig, &s, NULL), 0);
    ck_assert_int_eq(as_loop_call_later(loop, 30.0, give_up, &s, NULL, &timer), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, kill_later, NULL), 0);
    ck_assert_int_eq(as_loop_run_forever(loop), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.last, SIGUSR1);
    as_handle_cancel(timer);
    as_handle_unref(timer);
    ck_assert_int_eq(as_loop_close(loop), 0);
}
END_TEST

/* The handler is installed with SA_RESTART: a blocking read in this thread
 * is not cut short with EINTR by a signal the loop handles. */
START_TEST(signals_do_not_interrupt_blocking_calls)
{
    as_loop *loop = tu_loop();
    struct seen s = {loop, 0, 0, 0, 0, 0, 0};
    struct sigaction now;

    ck_assert_int_eq(as_loop_add_signal_handler(loop, SIGUSR1, on_sig, &s, NULL), 0);
    ck_assert_int_eq(sigaction(SIGUSR1, NULL, &now), 0);
    ck_assert(now.sa_flags & SA_RESTART);
    ck_assert_int_eq(as_loop_close(loop), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("signal");
    TCase *tc = tcase_create("signal");
    tcase_add_test(tc, a_signal_runs_the_handler_on_the_loop);
    tcase_add_test(tc, removing_puts_the_old_disposition_back);
    tcase_add_test(tc, a_second_add_replaces_the_handler);
    tcase_add_test(tc, a_handler_may_remove_itself);
    tcase_add_test(tc, one_loop_owns_a_signal_at_a_time);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_test(tc, a_closed_loop_is_refused);
    tcase_add_test(tc, a_signal_wakes_a_waiting_loop);
    tcase_add_test(tc, signals_do_not_interrupt_blocking_calls);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
