/*
 * backend_epoll.c - the epoll backend (Linux; configure looks for
 * <sys/epoll.h>).
 *
 * select() and poll() hand the kernel the whole interest set on every call;
 * epoll keeps it in the kernel.  set() tells the kernel of each change once
 * (epoll_ctl), and a wait returns only the fds that are ready, so a turn
 * costs O(ready fds) however many are watched.  The price is one system call
 * per change of interest, where select() and poll() change theirs for free:
 * a transport that starts and stops watching for writability around every
 * partial write pays two epoll_ctl() calls for it.
 *
 * Level-triggered (no EPOLLET), like select() and poll().  Edge-triggered
 * epoll reports an fd once per change of state, so every callback would
 * have to read until EAGAIN or never hear of the rest.  The loop promises
 * the opposite (a watcher runs on every turn its fd is readable, as
 * asyncio's add_reader()), and relies on it: a transport whose reader is
 * full reads no further, an on_ready() that cannot queue a watcher drops
 * it for one turn only.  What EPOLLET would save, the kernel re-checking
 * a still-ready fd on each wait, is small next to the callback that runs.
 *
 * Two differences the caller can see:
 *   - a regular file cannot be watched (epoll_ctl() fails with EPERM);
 *     select() and poll() report it always ready;
 *   - closing a watched fd removes it from the kernel's set without a word
 *     (epoll(7)), where select() fails with EBADF and poll() says POLLNVAL
 *     and the loop drops its watchers.  Here they stay until removed:
 *     remove a watcher before closing its fd.
 */
#include "backend.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

/* At most this many fds per wait; the others, still ready, come next turn
 * (epoll hands them out in turn, so none waits for ever). */
#define MAX_EVENTS 1024

struct epoll_state {
    int epfd;
    unsigned char *interest; /* interest[fd]: what the kernel has for fd */
    int cap;
    struct epoll_event events[MAX_EVENTS];
};

static int epoll_state_create(void **statep)
{
    struct epoll_state *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    /* Close-on-exec: a child must not share our interest set. */
    if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        int err = -errno;
        free(s);
        return err;
    }
    *statep = s;
    return 0;
}

static void epoll_state_destroy(void *state)
{
    struct epoll_state *s = state;
    close(s->epfd);
    free(s->interest);
    free(s);
}

static int epoll_set(void *state, int fd, int events)
{
    struct epoll_state *s = state;
    int old = fd < s->cap ? s->interest[fd] : 0, op;
    struct epoll_event ev;

    if (events == old)
        return 0;
    if (fd >= s->cap) {
        int cap = s->cap ? s->cap : 64, i;
        unsigned char *interest;
        while (cap <= fd)
            cap = cap > INT_MAX / 2 ? INT_MAX : cap * 2;
        if (!(interest = realloc(s->interest, (size_t)cap)))
            return -ENOMEM;
        for (i = s->cap; i < cap; i++)
            interest[i] = 0;
        s->interest = interest;
        s->cap = cap;
    }
    ev.events = ((events & AS__READABLE) ? EPOLLIN : 0u) |
                ((events & AS__WRITABLE) ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    op = !events ? EPOLL_CTL_DEL : old ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(s->epfd, op, fd, &ev) < 0) {
        /* The fd was closed while watched, and the kernel forgot it:
         * forgetting is what DEL wanted, and a new fd that took the same
         * number needs an ADD, not a MOD. */
        int forgotten = errno == ENOENT || (errno == EBADF && op == EPOLL_CTL_DEL);
        if (!forgotten || (op == EPOLL_CTL_MOD &&
                           epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0))
            return -errno;
    }
    s->interest[fd] = (unsigned char)events;
    return 0;
}

static int epoll_poll(void *state, double timeout, as__ready_fn ready, void *ctx)
{
    struct epoll_state *s = state;
    int n, i;

    n = epoll_wait(s->epfd, s->events, MAX_EVENTS, as__backend_ms(timeout));
    if (n < 0)
        return errno == EINTR ? 0 : -errno;

    /* O(ready fds): only those come back. */
    for (i = 0; i < n; i++) {
        unsigned re = s->events[i].events;
        int fd = s->events[i].data.fd, want = s->interest[fd], events = 0;
        /* A hang-up or an error is news for a reader and a writer alike:
         * their read() or write() says which. */
        if ((want & AS__READABLE) && (re & (EPOLLIN | EPOLLHUP | EPOLLERR)))
            events |= AS__READABLE;
        if ((want & AS__WRITABLE) && (re & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
            events |= AS__WRITABLE;
        if (events)
            ready(ctx, fd, events);
    }
    return n;
}

const as__backend_ops as__backend_epoll = {
    "epoll",
    INT_MAX,
    epoll_state_create,
    epoll_state_destroy,
    epoll_set,
    epoll_poll,
};
