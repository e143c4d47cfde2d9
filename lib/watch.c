/*
 * watch.c - the loop's fd watchers: as_loop_add_reader() and its three
 * siblings, and the backend callback that turns readiness into handles.
 *
 * The fd table is an array indexed by descriptor; each slot holds at most
 * one reader and one writer watcher, both KIND_WATCHER handles
 * (loop_impl.h).  It grows by doubling when a larger fd is watched, never
 * past the backend's max_fd, and is freed when the loop closes.  Whenever a
 * slot changes, the backend is told the fd's new interest (readable,
 * writable, both or none), so the backend watches exactly what the table
 * holds.  The table holds one reference to each watcher in it; removing or
 * replacing a watcher cancels it (dropping its userdata, unless its
 * callback is running) and drops that reference.
 *
 * From ready fd to queued handle: each turn loop.c's turn() polls the
 * backend with as__watch_on_ready() as the callback.  For each ready fd
 * that callback pushes the fd's reader and/or writer handle onto the
 * loop's ready queue and takes a reference for the queue, so a watcher
 * removed before its turn comes is skipped (it is cancelled) and freed
 * safely.  loop.c then runs the queue as it runs every handle; a watcher
 * stays in the table and is queued again on every turn its fd is ready.
 * The loop's own wake-up pipe is in the backend but not in the table: its
 * readiness only sets a flag that loop.c's take_inbox() reads.
 */
#include "loop_impl.h"
#include "errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

static int watchers_reserve(as_loop *loop, int fd)
{
    int cap = loop->fds_cap ? loop->fds_cap : 64, i;
    struct watchers *fds;

    if (fd < loop->fds_cap)
        return 0;
    while (cap <= fd)
        cap *= 2;
    if (cap > loop->backend->max_fd)
        cap = loop->backend->max_fd;
    fds = realloc(loop->fds, (size_t)cap * sizeof *fds);
    if (!fds)
        return -ENOMEM;
    for (i = loop->fds_cap; i < cap; i++)
        fds[i].reader = fds[i].writer = NULL;
    loop->fds = fds;
    loop->fds_cap = cap;
    return 0;
}

static int events_of(const struct watchers *w)
{
    return (w->reader ? AS__READABLE : 0) | (w->writer ? AS__WRITABLE : 0);
}

/* Install h as fd's reader or writer (replacing any), tell the backend. */
static int watcher_set(as_loop *loop, int fd, int is_writer, as_handle *h)
{
    struct watchers *w;
    as_handle **slot, *old;
    int err;

    if ((err = watchers_reserve(loop, fd)) < 0)
        return err;
    w = &loop->fds[fd];
    slot = is_writer ? &w->writer : &w->reader;
    old = *slot;
    *slot = h;
    if ((err = loop->backend->set(loop->backend_state, fd, events_of(w))) < 0) {
        *slot = old;
        return err;
    }
    if (old) {
        as_handle_cancel(old);
        as_handle_unref(old);
    }
    return 0;
}

static int add_watcher(as_loop *loop, int fd, int is_writer, as_callback_fn fn,
                       void *userdata, as_destroy_fn destroy)
{
    as_handle *h;
    int err, replacing;

    if (!loop || !fn || fd < 0)
        return AS_EINVAL;
    if (loop->closed)
        return AS_ECLOSED;
    if (fd >= loop->backend->max_fd)
        return AS_EFDSETSIZE;
    if (fd == loop->wake_fds[0])
        return AS_EINVAL; /* the loop's own pipe */
    if (!(h = as__watcher_new(loop, fn, userdata, destroy)))
        return -ENOMEM;
    replacing = fd < loop->fds_cap &&
                (is_writer ? loop->fds[fd].writer : loop->fds[fd].reader);
    if ((err = watcher_set(loop, fd, is_writer, h)) < 0) {
        /* Never installed: freed without cancelling, so destroy does not
         * run and userdata is still the caller's (loop.h rule 3). */
        as_handle_unref(h);
        return err;
    }
    if (!replacing)
        loop->nwatchers++;
    return 0;
}

static int remove_watcher(as_loop *loop, int fd, int is_writer)
{
    struct watchers *w;
    as_handle **slot, *h;

    if (!loop || fd < 0 || fd >= loop->fds_cap)
        return 0;
    w = &loop->fds[fd];
    slot = is_writer ? &w->writer : &w->reader;
    if (!(h = *slot))
        return 0;
    *slot = NULL;
    /* Cannot fail for select(); a backend that can must not lose the
     * removal, so the result is ignored only after the slot is cleared. */
    (void)loop->backend->set(loop->backend_state, fd, events_of(w));
    loop->nwatchers--;
    as_handle_cancel(h);
    as_handle_unref(h);
    return 1;
}

int as_loop_add_reader(as_loop *loop, int fd, as_callback_fn fn,
                       void *userdata, as_destroy_fn destroy)
{
    return add_watcher(loop, fd, 0, fn, userdata, destroy);
}

int as_loop_add_writer(as_loop *loop, int fd, as_callback_fn fn,
                       void *userdata, as_destroy_fn destroy)
{
    return add_watcher(loop, fd, 1, fn, userdata, destroy);
}

int as_loop_remove_reader(as_loop *loop, int fd)
{
    return remove_watcher(loop, fd, 0);
}

int as_loop_remove_writer(as_loop *loop, int fd)
{
    return remove_watcher(loop, fd, 1);
}

/* Backend callback: queue the watchers of a ready fd.  The queue takes its
 * own reference, so a watcher removed before its turn comes is skipped
 * safely.  If the queue cannot grow, the event is lost for this turn only:
 * backends are level-triggered (backend.h) and report the fd again next
 * turn.  Called once per ready fd per turn: the pushes are written out
 * here (not in a helper) so that nothing in it is an out-of-line call. */
void as__watch_on_ready(void *ctx, int fd, int events)
{
    as_loop *loop = ctx;
    struct watchers *w;

    if (fd == loop->wake_fds[0]) {
        loop->wake_readable = 1;
        return;
    }
    w = &loop->fds[fd];
    if ((events & AS__READABLE) && w->reader &&
        as__ring_push(&loop->ready, &w->reader, sizeof w->reader) == 0)
        w->reader->refs++;
    if ((events & AS__WRITABLE) && w->writer &&
        as__ring_push(&loop->ready, &w->writer, sizeof w->writer) == 0)
        w->writer->refs++;
}

/* The backend failed with EBADF (select() does): somebody closed an fd
 * without removing its watchers first.  Find the culprits, report each,
 * and drop their watchers so the loop can go on.  O(table size), paid only
 * on that error. */
void as__watch_drop_bad_fds(as_loop *loop)
{
    int fd;
    for (fd = 0; fd < loop->fds_cap; fd++) {
        struct watchers *w = &loop->fds[fd];
        if ((w->reader || w->writer) && fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            char detail[96];
            as_error_context ctx = {"fd closed while watched; its watchers were removed",
                                    -EBADF, detail, NULL};
            snprintf(detail, sizeof detail, "fd %d", fd);
            as_loop_call_exception_handler(loop, &ctx);
            remove_watcher(loop, fd, 0);
            remove_watcher(loop, fd, 1);
        }
    }
}

void as__watch_close(as_loop *loop)
{
    int fd;
    for (fd = 0; fd < loop->fds_cap; fd++) {
        remove_watcher(loop, fd, 0);
        remove_watcher(loop, fd, 1);
    }
    free(loop->fds);
    loop->fds = NULL;
    loop->fds_cap = 0;
}
