/*
 * loop_impl.h - the loop's private structs, shared by loop.c and watch.c
 * (internal, not installed).
 *
 * loop.c runs the loop: handles, the ready and end-of-turn queues, timers,
 * the thread-safe inbox, closing and the exception handler.  watch.c keeps
 * the fd table: the reader and writer watcher of each descriptor, and the
 * backend callback that turns a ready descriptor into queued handles.  Both
 * need the two structs below; nothing else in the library includes this
 * header (the rest sees as_loop and as_handle only through loop.h and
 * internal.h).
 *
 * Lifetimes are loop.h's and the reference rules are loop.c's top comment;
 * the fd table holds one reference to each watcher installed in it.
 */
#ifndef AS_LOOP_IMPL_H
#define AS_LOOP_IMPL_H

#include <pthread.h>
#include <stddef.h>

#include "backend.h"
#include "cache.h"
#include "heap.h"
#include "loop.h"
#include "ring.h"

/* KIND_REPEAT: a handle its owner keeps and schedules again after each
 * run (as__handle_new()); the others are made per scheduling call. */
enum handle_kind { KIND_ONESHOT, KIND_TIMER, KIND_WATCHER, KIND_REPEAT };

struct as_handle {
    as_callback_fn fn;
    void *userdata;
    as_destroy_fn destroy;
    as_loop *loop;
    struct as_handle *next;   /* only for the thread-safe inbox */
    as__heap_node timer;      /* timers: due time, place in the heap */
    unsigned refs;
    unsigned char kind;
    unsigned char cancelled;
    unsigned char running;
    unsigned char done;       /* one-shot/timer: callback has run */
    unsigned char userdata_live;
    unsigned char cached;     /* from the loop's cache, not malloc() */
    unsigned char queued;     /* KIND_REPEAT: in a queue now */
};

/* Per-fd watchers (watch.c); the table is indexed by fd and grows on
 * demand, never past the backend's max_fd (add_watcher refuses larger fds
 * first). */
struct watchers {
    as_handle *reader;
    as_handle *writer;
};

struct as_loop {
    const as__backend_ops *backend;
    void *backend_state;
    as__cache cache;          /* small blocks, recycled (cache.h) */

    as__ring ready;           /* as_handle *: runs in the next turn */
    as__ring turn_end;        /* as_handle *: runs at the end of this turn */
    as__heap timers;          /* KIND_TIMER handles, earliest first */

    /* The fd table: watch.c's alone. */
    struct watchers *fds;
    int fds_cap;
    size_t nwatchers;         /* user watchers, not counting the wake-up pipe */

    /* call_soon_threadsafe: an inbox guarded by a mutex, and a self-pipe
     * whose write end wakes the backend's wait. */
    pthread_mutex_t inbox_lock;
    as_handle *inbox_head, *inbox_tail;
    int wake_pending;          /* a byte is in the pipe; guarded by inbox_lock */
    int wake_readable;         /* the backend reported the pipe this turn */
    int wake_fds[2];
    struct as__signals *signals; /* signals.c's; NULL until a handler is added */

    /* Poll hooks (as_loop_set_poll_hooks), run around backend->poll. */
    as_callback_fn poll_before, poll_after;
    void *poll_userdata;
    as_destroy_fn poll_destroy;

    as_exception_handler_fn exc_handler;
    void *exc_userdata;
    as_destroy_fn exc_destroy;

    size_t objects;            /* library objects alive on this loop */
    int closed;                /* guarded by inbox_lock for other threads */
    int running;
    int stopping;
    int polled;                /* the last turn asked the backend */
    int user_owned;            /* the creator has not closed it yet */
};

/* loop.c, for watch.c: a new watcher handle for fn(userdata), from the
 * loop's cache, holding one reference (the one the fd table keeps).  NULL
 * on ENOMEM.  It goes with as_handle_cancel() and as_handle_unref(), as
 * every handle does. */
as_handle *as__watcher_new(as_loop *loop, as_callback_fn fn, void *userdata,
                           as_destroy_fn destroy);

/* signals.c, for loop.c: a signal's byte came out of the wake-up pipe;
 * the loop is closing (remove every handler, before the pipe closes). */
void as__signals_note(as_loop *loop, unsigned char signo);
void as__signals_close(as_loop *loop);

/*
 * watch.c, for loop.c:
 *   as__watch_on_ready: the backend's ready callback (ctx is the loop):
 *       queues the ready fd's watchers, or notes the wake-up pipe.
 *   as__watch_drop_bad_fds: after the backend failed with EBADF, report
 *       and remove the watchers of every fd closed while watched.
 *   as__watch_close: remove every watcher and free the table (closing).
 */
void as__watch_on_ready(void *ctx, int fd, int events);
void as__watch_drop_bad_fds(as_loop *loop);
void as__watch_close(as_loop *loop);

#endif /* AS_LOOP_IMPL_H */
