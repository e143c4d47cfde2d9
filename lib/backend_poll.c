/*
 * backend_poll.c - the poll() backend.
 *
 * poll() takes an array of (fd, events) pairs instead of bitmaps, so there
 * is no FD_SETSIZE and no cost for a high fd number: each call is O(number
 * of fds watched), in the kernel, which checks every entry, and here, where
 * we read every entry's answer.  The array is ours between calls (poll()
 * writes only the revents fields), so nothing is copied per turn as
 * select()'s sets are.  The price over epoll is the same as select()'s: a
 * turn with one ready fd among 10,000 still looks at all 10,000.
 *
 * Level-triggered, as poll() always is: an fd is reported by every call
 * while it is ready.  That is the loop's promise (a watcher runs on every
 * turn its fd is readable), and what lets a callback read only part of
 * what is waiting.
 *
 * Adding and removing are amortised O(1): where[fd] is the fd's place in
 * the array.  A removed entry becomes a hole (fd -1, which poll() skips)
 * and the array is compacted once half of it is holes.  Moving the last
 * entry into the hole would be O(1) too, but would shuffle the order in
 * which fds are reported, and with it the order of callbacks: a program
 * would print differently on poll than on select(), which reports in fd
 * order, and from run to run.  Here they come in the order they were added.
 */
#include "backend.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>

struct poll_state {
    struct pollfd *fds;  /* the fds watched, in the order added; holes */
    int n, cap;          /* entries used (holes too), allocated */
    int holes;
    int *where;          /* where[fd]: fd's index in fds, or -1 */
    int where_cap;
};

static int poll_create(void **statep)
{
    struct poll_state *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    *statep = s;
    return 0;
}

static void poll_destroy(void *state)
{
    struct poll_state *s = state;
    free(s->fds);
    free(s->where);
    free(s);
}

/* Make room for one more entry, and for where[fd]. */
static int reserve(struct poll_state *s, int fd)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        struct pollfd *fds = realloc(s->fds, (size_t)cap * sizeof *fds);
        if (!fds)
            return -ENOMEM;
        s->fds = fds;
        s->cap = cap;
    }
    if (fd >= s->where_cap) {
        int cap = s->where_cap ? s->where_cap : 64, i;
        int *where;
        while (cap <= fd)
            cap = cap > INT_MAX / 2 ? INT_MAX : cap * 2;
        if (!(where = realloc(s->where, (size_t)cap * sizeof *where)))
            return -ENOMEM;
        for (i = s->where_cap; i < cap; i++)
            where[i] = -1;
        s->where = where;
        s->where_cap = cap;
    }
    return 0;
}

/* Squeeze the holes out, keeping the order: O(n), once per n/2 removals. */
static void compact(struct poll_state *s)
{
    int i, j = 0;

    for (i = 0; i < s->n; i++) {
        if (s->fds[i].fd < 0)
            continue;
        s->fds[j] = s->fds[i];
        s->where[s->fds[j].fd] = j;
        j++;
    }
    s->n = j;
    s->holes = 0;
}

static int poll_set(void *state, int fd, int events)
{
    struct poll_state *s = state;
    int i = fd < s->where_cap ? s->where[fd] : -1;
    short mask = (short)(((events & AS__READABLE) ? POLLIN : 0) |
                         ((events & AS__WRITABLE) ? POLLOUT : 0));

    if (i >= 0 && events) {
        s->fds[i].events = mask;
    } else if (i >= 0) {
        s->fds[i].fd = -1;
        s->fds[i].revents = 0;
        s->where[fd] = -1;
        if (++s->holes > s->n / 2)
            compact(s);
    } else if (events) {
        if (reserve(s, fd) < 0)
            return -ENOMEM;
        s->fds[s->n].fd = fd;
        s->fds[s->n].events = mask;
        s->fds[s->n].revents = 0;
        s->where[fd] = s->n++;
    }
    return 0;
}

static int poll_poll(void *state, double timeout, as__ready_fn ready, void *ctx)
{
    struct poll_state *s = state;
    int n, i, seen = 0, bad = 0;

    n = poll(s->fds, (nfds_t)s->n, as__backend_ms(timeout));
    if (n < 0)
        return errno == EINTR ? 0 : -errno;

    /* O(fds watched): poll() tells us how many, not which. */
    for (i = 0; i < s->n && seen < n; i++) {
        short re = s->fds[i].revents, want = s->fds[i].events;
        int events = 0;
        if (!re)
            continue;
        seen++;
        if (re & POLLNVAL) {
            bad = 1; /* not an open fd: the loop finds and drops it */
            continue;
        }
        /* A hang-up or an error is news for a reader and a writer alike:
         * their read() or write() says which. */
        if ((want & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR)))
            events |= AS__READABLE;
        if ((want & POLLOUT) && (re & (POLLOUT | POLLHUP | POLLERR)))
            events |= AS__WRITABLE;
        if (events)
            ready(ctx, s->fds[i].fd, events);
    }
    return bad ? -EBADF : n;
}

const as__backend_ops as__backend_poll = {
    "poll",
    INT_MAX,
    poll_create,
    poll_destroy,
    poll_set,
    poll_poll,
};
