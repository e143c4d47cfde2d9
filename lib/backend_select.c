/*
 * backend_select.c - the select() backend.
 *
 * select() is the most portable multiplexer there is, and the easiest to
 * explain: hand the kernel a bitmap of fds, get back the bitmap of ready ones.
 * Its costs are plain too, and we accept them:
 *   - each call is O(highest fd) in the kernel and here, because both sides
 *     scan the bitmaps;
 *   - the bitmaps are overwritten by the call, so we keep master copies and
 *     copy them before every call;
 *   - an fd_set holds only FD_SETSIZE fds (1024 on Linux).  FD_SET() on a
 *     larger fd writes past the set: memory corruption.  The loop refuses
 *     such fds with AS_EFDSETSIZE before they can reach us.
 */
#include "backend.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/time.h>

struct select_state {
    fd_set readfds;  /* master copies; select() works on copies */
    fd_set writefds;
    int maxfd;       /* highest fd in either set, or -1 */
};

static int select_create(void **statep)
{
    struct select_state *s = malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    FD_ZERO(&s->readfds);
    FD_ZERO(&s->writefds);
    s->maxfd = -1;
    *statep = s;
    return 0;
}

static void select_destroy(void *state)
{
    free(state);
}

static int select_set(void *state, int fd, int events)
{
    struct select_state *s = state;

    if (events & AS__READABLE)
        FD_SET(fd, &s->readfds);
    else
        FD_CLR(fd, &s->readfds);
    if (events & AS__WRITABLE)
        FD_SET(fd, &s->writefds);
    else
        FD_CLR(fd, &s->writefds);

    if (events && fd > s->maxfd)
        s->maxfd = fd;
    /* Removing the highest fd: walk down to the next one still watched.
     * O(gap), paid only when the top fd goes away. */
    while (s->maxfd >= 0 && !FD_ISSET(s->maxfd, &s->readfds) &&
           !FD_ISSET(s->maxfd, &s->writefds))
        s->maxfd--;
    return 0;
}

static int select_poll(void *state, double timeout, as__ready_fn ready, void *ctx)
{
    struct select_state *s = state;
    fd_set rfds = s->readfds, wfds = s->writefds;
    int maxfd = s->maxfd, n, fd, reported = 0;
    struct timeval tv, *tvp = NULL;

    if (timeout >= 0) {
        /* Round up to the next microsecond so we never wake just before a
         * timer is due and spin once more for nothing. */
        double usec = timeout * 1e6 + 0.999;
        if (usec > 1e15)
            usec = 1e15;
        tv.tv_sec = (time_t)(usec / 1e6);
        tv.tv_usec = (suseconds_t)(usec - (double)tv.tv_sec * 1e6);
        tvp = &tv;
    }

    n = select(maxfd + 1, &rfds, &wfds, NULL, tvp);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;

    /* O(maxfd): select() tells us how many, not which. */
    for (fd = 0; fd <= maxfd && reported < n; fd++) {
        int events = (FD_ISSET(fd, &rfds) ? AS__READABLE : 0) |
                     (FD_ISSET(fd, &wfds) ? AS__WRITABLE : 0);
        if (events) {
            ready(ctx, fd, events);
            reported += (events == (AS__READABLE | AS__WRITABLE)) ? 2 : 1;
        }
    }
    return n;
}

const as__backend_ops as__backend_select = {
    "select",
    FD_SETSIZE,
    select_create,
    select_destroy,
    select_set,
    select_poll,
};
