/*
 * backend.h - the interface between the loop and an I/O multiplexer.
 *
 * A backend only answers "which of these fds are ready?".  It keeps its own
 * private state behind one pointer, knows nothing about callbacks, and is
 * chosen at run time through an ops table, so a test can force a particular
 * one and poll()/epoll backends can join later without touching loop.c.
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
     * ready fds through ready(). Returns the number reported, 0 on EINTR
     * (the loop recomputes its timeout and polls again), or -errno. */
    int (*poll)(void *state, double timeout, as__ready_fn ready, void *ctx);
} as__backend_ops;

extern const as__backend_ops as__backend_select;

#endif /* AS_BACKEND_H */
