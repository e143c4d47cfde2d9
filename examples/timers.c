/*
 * timers.c - chapter 3: the library's loop runs callbacks, timers and fd
 * watchers.
 *
 * The program schedules a handful of callbacks, each of which records its
 * name, and then checks the order they ran in against the loop's promises:
 *   - call_soon callbacks run first-in first-out, and what a callback
 *     schedules waits for the next turn;
 *   - timers run in deadline order, and timers with the same deadline in
 *     the order they were scheduled;
 *   - a cancelled handle never runs, and its destroy hook runs at once;
 *   - a reader callback runs when its fd becomes readable;
 *   - as_loop_stop() makes as_loop_run_forever() return.
 *
 * Build and run: make examples/timers && ./examples/timers
 */
#include <asyncstreams.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXEVENTS 16

static as_loop *loop;
static double t0;                       /* when the program started */
static const char *events[MAXEVENTS];   /* names, in the order they ran */
static int nevents;
static int scheduled, destroyed;        /* userdata handed over / handed back */
static int sv[2] = {-1, -1};            /* a socketpair for the reader */
static int failed;

static void record(const char *name)
{
    printf("%6.1f ms  %s\n", (as_loop_time(loop) - t0) * 1e3, name);
    if (nevents < MAXEVENTS)
        events[nevents++] = name;
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, as_strerror(rc));
        failed = 1;
    } else {
        scheduled++;
    }
}

/* listing: callbacks */
/* Every callback here gets its name as userdata.  The destroy hook is how
 * the loop hands userdata back: exactly once, after the callback ran or when
 * it was cancelled.  Counting the calls shows nothing is lost. */
static void count_destroy(void *userdata)
{
    (void)userdata;
    destroyed++;
}

static void say(void *userdata)
{
    record(userdata);
}

/* A callback that schedules another: "A2" runs on the next turn, after
 * everything that was already ready, so a callback cannot starve the loop. */
static void say_and_schedule(void *userdata)
{
    record(userdata);
    check(as_loop_call_soon(loop, say, "A2", count_destroy, NULL),
          "call_soon");
}
/* end listing */

/* listing: reader */
/* Runs on each turn in which sv[1] is readable.  One byte is expected; after
 * reading it the watcher removes itself (allowed from inside the callback). */
static void on_readable(void *userdata)
{
    char byte;
    ssize_t n = read(sv[1], &byte, 1);
    if (n != 1) {
        fprintf(stderr, "read: %s\n", n < 0 ? strerror(errno) : "end of file");
        failed = 1;
    }
    record(userdata);
    as_loop_remove_reader(loop, sv[1]); /* runs count_destroy */
}

/* A timer makes sv[1] readable by writing one byte into the other end. */
static void write_byte(void *userdata)
{
    record(userdata);
    if (write(sv[0], "x", 1) != 1) {
        perror("write");
        failed = 1;
    }
}
/* end listing */

static int position(const char *name);

/* The "stop" timer.  On a slow machine (valgrind, say) the first turn may
 * start after every timer is due; then A2 and "readable", which need turns
 * of their own, have not run yet.  So stop only once they have, and check
 * again a little later otherwise: the program must not depend on timing. */
static void stop(void *userdata)
{
    if (position("A2") < 0 || position("readable") < 0 || position("end of turn") < 0) {
        check(as_loop_call_later(loop, 0.005, stop, userdata, count_destroy, NULL),
              "call_later");
        return;
    }
    record(userdata);
    as_loop_stop(loop);
}

/* listing: end_of_turn */
/* "C" asks for a callback at the end of its turn: it runs after every
 * callback of that turn (so after A, B and C), yet before the loop waits
 * again, so before A2, which call_soon put in the next turn. */
static void say_and_finish_turn(void *userdata)
{
    record(userdata);
    check(as_loop_call_end_of_turn(loop, say, "end of turn", count_destroy, NULL),
          "call_end_of_turn");
}
/* end listing */

static int position(const char *name)
{
    for (int i = 0; i < nevents; i++)
        if (strcmp(events[i], name) == 0)
            return i;
    return -1;
}

/* True when `a` ran and ran before `b`. */
static int ran_before(const char *a, const char *b)
{
    int pa = position(a), pb = position(b);
    int ok = pa >= 0 && pb >= 0 && pa < pb;
    if (!ok) {
        fprintf(stderr, "expected %s before %s\n", a, b);
        failed = 1;
    }
    return ok;
}

int main(void)
{
    int rc = as_loop_new(&loop);
    if (rc < 0) {
        fprintf(stderr, "as_loop_new: %s\n", as_strerror(rc));
        return 1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("socketpair");
        as_loop_close(loop);
        return 1;
    }
    t0 = as_loop_time(loop);

    /* listing: schedule */
    /* Ready callbacks: they run on the next turn, first in, first out. */
    check(as_loop_call_soon(loop, say_and_schedule, "A", count_destroy, NULL), "call_soon");
    check(as_loop_call_soon(loop, say, "B", count_destroy, NULL), "call_soon");
    check(as_loop_call_soon(loop, say_and_finish_turn, "C", count_destroy, NULL), "call_soon");

    /* Timers, scheduled out of order.  call_later(d) means "d seconds from
     * the moment of the call"; to give these timers deadlines that do not
     * depend on how long the calls themselves take, they use call_at() with
     * times measured from t0.  The two "tie" timers share one deadline, so
     * they run in the order they were scheduled. */
    check(as_loop_call_at(loop, t0 + 0.040, stop, "stop", count_destroy, NULL), "call_at");
    check(as_loop_call_at(loop, t0 + 0.030, say, "late", count_destroy, NULL), "call_at");
    check(as_loop_call_at(loop, t0 + 0.010, say, "tie 1", count_destroy, NULL), "call_at");
    check(as_loop_call_at(loop, t0 + 0.020, write_byte, "write a byte", count_destroy, NULL),
          "call_at");
    check(as_loop_call_at(loop, t0 + 0.010, say, "tie 2", count_destroy, NULL), "call_at");

    /* A timer we change our mind about.  Asking for the handle (the last
     * argument) gives us a reference, which we must release. */
    as_handle *h = NULL;
    check(as_loop_call_later(loop, 0.015, say, "cancelled", count_destroy, &h),
          "call_later");
    if (h != NULL) {
        as_handle_cancel(h); /* it will not run; count_destroy runs now */
        as_handle_unref(h);
    }

    /* Watch sv[1]: on_readable runs on every turn in which it is readable. */
    check(as_loop_add_reader(loop, sv[1], on_readable, "readable", count_destroy),
          "add_reader");
    /* end listing */

    printf("%zu callbacks, timers and watchers pending (one timer was "
           "cancelled); running the loop\n", as_loop_pending(loop));

    /* listing: run */
    /* Run turns until the "stop" timer calls as_loop_stop(). */
    rc = as_loop_run_forever(loop);
    if (rc < 0) {
        fprintf(stderr, "as_loop_run_forever: %s\n", as_strerror(rc));
        failed = 1;
    }
    /* end listing */

    /* What the loop promised (timing can vary on a busy machine; these
     * orders cannot). */
    ran_before("A", "B");
    ran_before("B", "C");
    ran_before("C", "end of turn");
    ran_before("end of turn", "A2");
    ran_before("tie 1", "tie 2");
    ran_before("tie 2", "write a byte");
    ran_before("write a byte", "readable");
    ran_before("write a byte", "late");
    ran_before("late", "stop");
    if (position("cancelled") >= 0) {
        fprintf(stderr, "a cancelled timer ran\n");
        failed = 1;
    }
    if (nevents != 11) {
        fprintf(stderr, "expected 11 callbacks to run, saw %d\n", nevents);
        failed = 1;
    }

    /* Nothing may be left: every timer ran or was cancelled, and the reader
     * removed itself.  Then closing the loop frees it (it returns 0). */
    size_t pending = as_loop_pending(loop);
    rc = as_loop_close(loop);
    close(sv[0]);
    close(sv[1]);
    if (pending != 0 || rc != 0) {
        fprintf(stderr, "left behind: %zu pending, as_loop_close() = %d\n", pending, rc);
        failed = 1;
    }
    if (destroyed != scheduled) {
        fprintf(stderr, "%d destroy hooks ran for %d callbacks\n", destroyed, scheduled);
        failed = 1;
    }
    printf("%d callbacks ran, %d destroy hooks for %d scheduled: %s\n",
           nevents, destroyed, scheduled, failed ? "FAILED" : "ok");
    return failed;
}
