/*
 * loop.h - the event loop: a ready queue, a timer heap and fd watchers.
 *
 * One turn of the loop (as_loop_run_once) does, in order:
 *   1. ask the backend which watched fds are ready, waiting at most until the
 *      earliest timer is due (not at all if callbacks are already ready);
 *      skipped when callbacks are already ready and the previous turn
 *      polled, so the fds are polled at least every second turn;
 *   2. move the ready fds' watchers and the due timers to the ready queue;
 *   3. run exactly the callbacks that were in the ready queue at that point;
 *   4. run the end-of-turn callbacks (as_loop_call_end_of_turn()).
 * Callbacks scheduled with call_soon while steps 3-4 run wait for the next
 * turn, so a callback that reschedules itself cannot starve I/O.
 *
 * Why step 1 is sometimes skipped: callbacks waiting right after a poll are
 * nearly always its consequences (a read answered at the end of the turn, a
 * task woken by it).  Polling again microseconds later would find nothing
 * new and cost a system call; a busy server pays one select() per round of
 * work instead of two.
 *
 * Every callback has the shape `void fn(void *userdata)` and comes with an
 * optional destroy hook `void destroy(void *userdata)`, which the loop calls
 * exactly once when it is done with userdata: after the callback has run (for
 * one-shot callbacks), when the callback is cancelled or removed, or when the
 * loop closes with it still pending.  A binding can therefore own a reference
 * in userdata and release it in destroy.
 *
 * Lifetimes:
 *   1. The loop is created by as_loop_new() and owned by its creator, who ends
 *      it with as_loop_close().  Library objects made on the loop (futures,
 *      readers, transports...) each hold a reference to it, so the memory
 *      lives until the last of them is freed; as_loop_close() says how many
 *      are still alive.  Those objects stay valid to query and to release
 *      in any order after the close; a callback the close dropped was
 *      dropped with its destroy hook, which is how an object that was
 *      waiting on it (a server's record of a closing connection, server.h
 *      rule 7) learns it will not run.
 *   2. A handle (as_handle) is owned by the loop while it is scheduled.  If
 *      the caller asks for it (a non-NULL `out` argument), the caller gets a
 *      reference too and must give it back with as_handle_unref(); the
 *      handle's memory lives until both are done with it, so cancelling a
 *      handle whose callback already ran is safe.
 *   3. A callback's userdata belongs to the caller until the scheduling call
 *      returns 0; from then on the loop hands it back through destroy.  If a
 *      scheduling call fails, it neither runs the callback nor calls destroy.
 *
 * Threads: every function here must be called from the thread running the
 * loop, except as_loop_call_soon_threadsafe() and as_loop_time().  A loop
 * that is not running may be handed, with everything made on it, to
 * another thread, when something orders the two threads' uses
 * (pthread_create(), pthread_join(), a mutex): examples/echo_server.c
 * --threads makes each loop and its server on the main thread, runs it on
 * a thread of its own, and closes it after the join.  Loops share nothing,
 * so N threads may each run their own.
 *
 * Conventions (asyncstreams.h): the loop has one owner, who ends it with
 * as_loop_close() (rule 1); handles are refcounted (rule 2).  A NULL loop
 * or handle gets the NULL answers listed there (as_loop_is_closed(NULL) is
 * 1, as_loop_max_fd(NULL) 0), with one exception: as_loop_time(NULL)
 * still reads the clock, which belongs to no loop.
 *
 * Re-entrancy: a callback may schedule, cancel, add or remove any callback,
 * timer or watcher, including its own, and may call as_loop_stop().  It must
 * not call as_loop_run_*() or as_loop_close() on the loop that is running it:
 * those return AS_ESTATE.
 */
#ifndef AS_LOOP_H
#define AS_LOOP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct as_loop as_loop;
typedef struct as_handle as_handle;

/** A loop callback: the only callback shape the loop knows. */
typedef void (*as_callback_fn)(void *userdata);
/** Called exactly once when the loop (or a future) is done with userdata. */
typedef void (*as_destroy_fn)(void *userdata);

/**
 * Create a loop on the default backend: the one the environment variable
 * ASYNCSTREAMS_BACKEND names, when it is set and not empty, else select().
 * The variable is read at each call, so a test suite can run every loop it
 * makes on another backend; a name the build lacks fails with AS_EINVAL
 * rather than quietly falling back.  On success stores the loop in *out
 * and returns 0; otherwise returns AS_EINVAL (also for out NULL), -ENOMEM,
 * -EMFILE... with *out set to NULL.
 */
int as_loop_new(as_loop **out);

/**
 * Create a loop on the backend named `backend`, whatever
 * ASYNCSTREAMS_BACKEND says: "select" (O(highest fd) per turn), "poll"
 * (O(fds watched)), "epoll" (Linux: O(ready fds)), or "best", the first of
 * those this build has in the order epoll, poll, select.  NULL means the
 * default, as for as_loop_new().  Returns AS_EINVAL for a name the build
 * does not have, with *out set to NULL.
 */
int as_loop_new_with_backend(const char *backend, as_loop **out);

/** The name of the loop's backend, e.g. "select"; never "best". */
const char *as_loop_backend_name(const as_loop *loop);

/**
 * The name of the build's i-th backend, best first, for i from 0; NULL
 * when i is negative or past the last.  Lists what as_loop_new_with_backend()
 * accepts besides "best".
 */
const char *as_loop_backend_at(int i);

/**
 * The highest fd number + 1 the backend can watch: INT_MAX for a backend
 * whose sets grow with the fds (select() on Linux, the BSDs and macOS),
 * FD_SETSIZE for select() on other systems.  Watching a larger fd fails
 * with AS_EFDSETSIZE.
 */
int as_loop_max_fd(const as_loop *loop);

/**
 * Close the loop.  Pending callbacks, timers and watchers are dropped (their
 * destroy hooks run; their callbacks do not), and every later scheduling call
 * fails with AS_ECLOSED.  Returns 0 when nothing built on the loop is still
 * alive and its memory has been freed, or the number of library objects
 * (futures, readers...) still alive: the memory is then freed when the last
 * of them is.  Returns AS_ESTATE, doing nothing, if the loop is running.
 * Calling it twice returns AS_ECLOSED.
 */
int as_loop_close(as_loop *loop);

/** True once as_loop_close() has been called. */
int as_loop_is_closed(const as_loop *loop);

/** True while as_loop_run_*() is executing. */
int as_loop_is_running(const as_loop *loop);

/**
 * Seconds on the loop's monotonic clock.  Timers are expressed against it.
 * Safe from any thread.
 */
double as_loop_time(const as_loop *loop);

/**
 * Schedule fn(userdata) to run on the next turn, after the callbacks already
 * scheduled (FIFO).  If out is not NULL, *out receives a handle reference
 * (see lifetime rule 2).  Returns 0, AS_ECLOSED or -ENOMEM.
 */
int as_loop_call_soon(as_loop *loop, as_callback_fn fn, void *userdata,
                      as_destroy_fn destroy, as_handle **out);

/**
 * Schedule fn(userdata) to run at the end of the current turn: after every
 * callback of this turn, before the loop next waits in the backend.  Called
 * when the loop is not running, at the end of the next turn.  For work that
 * should see everything a turn did, done once: a transport sending all the
 * writes of a turn in one system call, a reader answering a read after all
 * the data of a turn has arrived.  It never runs synchronously.  Callbacks
 * scheduled by end-of-turn callbacks run in the same turn, for a bounded
 * number of rounds (a callback that reschedules itself forever runs once per
 * turn).  Returns 0, AS_EINVAL, AS_ECLOSED or -ENOMEM.
 */
int as_loop_call_end_of_turn(as_loop *loop, as_callback_fn fn, void *userdata,
                             as_destroy_fn destroy, as_handle **out);

/**
 * Schedule fn(userdata) to run `delay` seconds from now (delay <= 0 means as
 * soon as possible, but still after the callbacks already ready).  Timers
 * due at the same instant run in the order they were scheduled.
 * Returns 0, AS_EINVAL (delay is NaN), AS_ECLOSED or -ENOMEM.
 */
int as_loop_call_later(as_loop *loop, double delay, as_callback_fn fn,
                       void *userdata, as_destroy_fn destroy, as_handle **out);

/** Like as_loop_call_later() with an absolute time on as_loop_time()'s clock. */
int as_loop_call_at(as_loop *loop, double when, as_callback_fn fn,
                    void *userdata, as_destroy_fn destroy, as_handle **out);

/**
 * Schedule fn(userdata) from any thread, and wake the loop if it is waiting
 * in the backend.  The loop must not be closed concurrently: the caller
 * guarantees it outlives this call.  Returns 0, AS_ECLOSED or -ENOMEM.
 */
int as_loop_call_soon_threadsafe(as_loop *loop, as_callback_fn fn,
                                 void *userdata, as_destroy_fn destroy);

/** A signal handler: signo is the signal that arrived (signals.c). */
typedef void (*as_signal_fn)(int signo, void *userdata);

/**
 * Run fn(signo, userdata) on the loop each time the signal signo arrives,
 * as asyncio's loop.add_signal_handler() does.  The process-wide handler
 * only writes the signal's number into the loop's wake-up pipe (the one
 * as_loop_call_soon_threadsafe() uses); fn runs later, between two
 * callbacks, where it may call anything on the loop.  It never runs inside
 * the signal, nor synchronously from this call.
 *
 * A second add for the same signal replaces the handler (the old userdata
 * goes back through its destroy).  A signal is owned by one loop at a time:
 * another loop's add fails with -EBUSY until the owner removes it.  The
 * disposition the signal had before is saved and put back by
 * as_loop_remove_signal_handler() and by as_loop_close().  The handler is
 * installed with SA_RESTART, so other threads' blocking calls are not
 * interrupted with EINTR.  Signals of one kind that arrive close together
 * may be run once: the kernel merges pending signals the same way.
 *
 * Returns 0; AS_EINVAL for a NULL fn or a signal number that is out of
 * range or cannot be caught (SIGKILL, SIGSTOP); -EBUSY; AS_ECLOSED;
 * -ENOMEM.  On an error userdata stays the caller's (rule 3).
 */
int as_loop_add_signal_handler(as_loop *loop, int signo, as_signal_fn fn,
                               void *userdata, as_destroy_fn destroy);

/**
 * Remove the loop's handler for signo and put back the disposition the
 * signal had before it was added.  Returns 1 if there was a handler, 0 if
 * not (asyncio's True and False), AS_EINVAL for a signal number out of
 * range.  Its userdata goes back through destroy: at once, or, if the
 * handler is running (a handler may remove itself), when it returns.
 */
int as_loop_remove_signal_handler(as_loop *loop, int signo);

/**
 * Cancel a handle: its callback will not run, and its destroy hook runs now.
 * Cancelling a handle that already ran, or was already cancelled, does
 * nothing.  Cancelling a timer removes it from the heap at once (O(log n)).
 */
void as_handle_cancel(as_handle *handle);

/** True if the handle was cancelled. */
int as_handle_cancelled(const as_handle *handle);

/** For a timer handle: when it is (or was) due; 0 for other handles. */
double as_handle_when(const as_handle *handle);

/** Drop the caller's reference from an `out` argument (lifetime rule 2);
 *  the handle is freed once the loop is done with it too. */
void as_handle_unref(as_handle *handle);

/**
 * Call fn(userdata) on every turn in which fd is readable, until removed.
 * A second add for the same fd replaces the first (whose destroy runs), as
 * asyncio does.  Returns 0, AS_EINVAL (fd < 0), AS_EFDSETSIZE (fd too large
 * for the backend), -EBADF (fd is not open: checked when fd is larger than
 * any the loop watched before, and by epoll always), AS_ECLOSED or -ENOMEM.
 */
int as_loop_add_reader(as_loop *loop, int fd, as_callback_fn fn,
                       void *userdata, as_destroy_fn destroy);

/** Stop watching fd for reading.  Returns 1 if a watcher was removed, else 0. */
int as_loop_remove_reader(as_loop *loop, int fd);

/** Like as_loop_add_reader(), for writability. */
int as_loop_add_writer(as_loop *loop, int fd, as_callback_fn fn,
                       void *userdata, as_destroy_fn destroy);

/** Like as_loop_remove_reader(), for writability. */
int as_loop_remove_writer(as_loop *loop, int fd);

/**
 * Run turns until as_loop_stop() is called.  Returns 0, or AS_ESTATE if the
 * loop is already running, or AS_ECLOSED.
 */
int as_loop_run_forever(as_loop *loop);

/**
 * Run exactly one turn (see the top of this file), waiting in the backend
 * only if no callback is ready and no stop is pending.  A pending
 * as_loop_stop() is consumed by the turn.  Returns 0, AS_ESTATE, AS_ECLOSED,
 * or a negative errno if the backend failed.
 */
int as_loop_run_once(as_loop *loop);

/**
 * Ask the loop to return from as_loop_run_forever() / _until_complete() once
 * the callbacks of the current turn have run.  Called when the loop is not
 * running, it makes the next run do one turn and return.
 */
void as_loop_stop(as_loop *loop);

/**
 * Hooks around the backend's wait, for bindings: before(userdata) runs just
 * before each turn asks the backend for ready fds (a call that may block),
 * after(userdata) as soon as the backend returns, always as a pair, on the
 * loop's thread, and never with a loop callback in between.  A Python
 * binding releases its interpreter lock in before and takes it back in
 * after, so other Python threads run while the loop sleeps in select().
 * Hooks must not call any loop function.  before == NULL and after == NULL
 * remove them; only one of them NULL is AS_EINVAL.  A previous pair's
 * destroy runs when the hooks are replaced or removed, and this pair's when
 * the loop is closed.  Costs two indirect calls per turn when set, one
 * test when not.  Returns 0, AS_EINVAL or AS_ECLOSED (destroy not called).
 */
int as_loop_set_poll_hooks(as_loop *loop, as_callback_fn before,
                           as_callback_fn after, void *userdata,
                           as_destroy_fn destroy);

/**
 * Counts of what is scheduled on the loop: ready callbacks, timers and fd
 * watchers (the loop's own wake-up pipe not included).  A test that ends
 * with as_loop_pending() == 0 and as_loop_objects() == 0 left nothing alive.
 */
size_t as_loop_pending(const as_loop *loop);

/** Number of library objects (futures, readers...) alive on this loop. */
size_t as_loop_objects(const as_loop *loop);

/**
 * What the loop knows about an error that nobody handled: an exception in a
 * task nobody awaited, a future whose error was never retrieved, a backend
 * failure.  All strings are valid only during the handler call.
 */
typedef struct as_error_context {
    const char *message; /**< what happened, e.g. "Future exception was never retrieved" */
    int code;            /**< the error code, or 0 */
    const char *detail;  /**< the error's own message, or NULL */
    void *object;        /**< the object concerned (a future...), or NULL; do not free */
} as_error_context;

typedef void (*as_exception_handler_fn)(as_loop *loop,
                                        const as_error_context *context,
                                        void *userdata);

/**
 * Replace the exception handler (NULL restores the default, which prints one
 * line on stderr).  destroy(userdata) runs when the handler is replaced or
 * the loop is freed.  Returns 0 or AS_ECLOSED.
 */
int as_loop_set_exception_handler(as_loop *loop, as_exception_handler_fn fn,
                                  void *userdata, as_destroy_fn destroy);

/**
 * Report an error through the exception handler, synchronously, as asyncio's
 * call_exception_handler() does.  Also used by the library itself.
 */
void as_loop_call_exception_handler(as_loop *loop,
                                    const as_error_context *context);

/** The handler used when none is set: one line on stderr. */
void as_loop_default_exception_handler(as_loop *loop,
                                       const as_error_context *context);

#ifdef __cplusplus
}
#endif
#endif /* AS_LOOP_H */
