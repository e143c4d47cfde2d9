/*
 * backend.h - the interface between the loop and an I/O multiplexer.
 *
 * A backend only answers "which of these fds are ready?".  It keeps its own
 * private state behind one pointer, knows nothing about callbacks, and is
 * reached only through its ops table.  backend.c lists the backends
 * (as__backends[]) and picks one by name (as__backend_find()), so a test
 * can force a particular one, and a poll() or epoll backend joins by
 * adding its file and one row there, without touching loop.c.
 */
#ifndef AS_BACKEND_H
#define AS_BACKEND_H

#define AS__READABLE 1
#define AS__WRITABLE 2

/* Called by poll() once per ready fd, with the ready subset of its events. */
typedef void (*as__ready_fn)(void *ctx, int fd, int events);

typedef struct as__backend_ops {
    const char *name;
    /* Highest fd + 1 this backend can watch. */
    int max_fd;
    /* Allocate the private state. Returns 0 or -errno. */
    int (*create)(void **state);
    void (*destroy)(void *state);
    /* Set the interest for fd to `events` (0 removes it). Returns 0 or -errno;
     * the loop has already checked 0 <= fd < max_fd. */
    int (*set)(void *state, int fd, int events);
    /* Wait up to `timeout` seconds (< 0: no limit, 0: don't block) and report
     * each ready fd once through ready().  Level-triggered: an fd that stays
     * ready is reported by every call (the loop and the socket transport
     * rely on it).  Returns a count of what was ready, 0 on EINTR (the loop
     * recomputes its timeout and polls on its next turn), or -errno;
     * -EBADF makes the loop drop the watchers of fds closed while watched. */
    int (*poll)(void *state, double timeout, as__ready_fn ready, void *ctx);
} as__backend_ops;

/* Every backend this build has, best first, NULL-terminated; the first is
 * the default (backend.c). */
extern const as__backend_ops *const as__backends[];

/*
 * The backend called `name`, or NULL if there is none.  A NULL name means
 * the default: the backend the ASYNCSTREAMS_BACKEND environment variable
 * names when it is set and not empty (NULL if it names none), else
 * as__backends[0].
 */
const as__backend_ops *as__backend_find(const char *name);

#endif /* AS_BACKEND_H */
