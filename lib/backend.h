/*
 * backend.h - the interface between the loop and an I/O multiplexer.
 *
 * A backend only answers "which of these fds are ready?".  It keeps its own
 * private state behind one pointer, knows nothing about callbacks, and is
 * reached only through its ops table.  backend.c lists the backends
 * (as__backends[]) and picks one by name (as__backend_find()), so a test
 * can force a particular one; each backend (backend_select.c,
 * backend_poll.c, backend_epoll.c) is one file and one row there, and
 * loop.c never names one.
 *
 * All three are level-triggered: poll() reports every fd that is ready now,
 * not only those that became ready since the last call.  The loop's
 * watchers promise that (loop.h) and rely on it.
 */
#ifndef AS_BACKEND_H
#define AS_BACKEND_H

#define AS__READABLE 1
#define AS__WRITABLE 2

/* Called by poll() once per ready fd, with the ready subset of its events
 * (a hang-up or an error counts as both).  It must not call set(). */
typedef void (*as__ready_fn)(void *ctx, int fd, int events);

/* listing: ops */
typedef struct as__backend_ops {
    const char *name;
    /* Highest fd + 1 this backend can watch. */
    int max_fd;
    /* Allocate the private state. Returns 0 or -errno. */
    int (*create)(void **state);
    void (*destroy)(void *state);
    /* Set the interest for fd to `events` (0 removes it, and cannot fail).
     * Returns 0 or -errno; the loop has already checked 0 <= fd < max_fd. */
    int (*set)(void *state, int fd, int events);
    /* Wait up to `timeout` seconds (< 0: no limit, 0: don't block) and report
     * ready fds through ready().  Level-triggered: an fd that stays ready
     * is reported by every call (the loop and the socket transport rely on
     * it).  Returns the number reported, 0 on EINTR (the loop recomputes its
     * timeout and polls again), -EBADF if a watched fd is not open (the loop
     * finds it and drops its watchers; the other fds may have been
     * reported), or another -errno. */
    int (*poll)(void *state, double timeout, as__ready_fn ready, void *ctx);
} as__backend_ops;
/* end listing */

/* Every backend this build has, best first, NULL-terminated (backend.c). */
extern const as__backend_ops *const as__backends[];

/*
 * The backend called `name`, or NULL if there is none.  "best" is the first
 * row of the table.  A NULL name means the default: the backend the
 * ASYNCSTREAMS_BACKEND environment variable names when it is set and not
 * empty (NULL if it names none), else select(), the teaching one.
 */
const as__backend_ops *as__backend_find(const char *name);

/* A timeout in seconds as poll() and epoll_wait() take it: milliseconds,
 * rounded up (waking before a timer is due would only spin once more),
 * -1 for "no limit", at most INT_MAX. */
int as__backend_ms(double timeout);

#endif /* AS_BACKEND_H */
