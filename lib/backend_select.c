/*
 * backend_select.c - the select() backend.
 *
 * select() is the most portable multiplexer there is, and the easiest to
 * explain: hand the kernel a bitmap of fds, get back the bitmap of ready ones.
 * Its costs are plain too, and we accept them:
 *   - each call is O(highest fd) in the kernel and here, because both sides
 *     scan the bitmaps, however few of the fds are watched or ready;
 *   - the bitmaps are overwritten by the call, so we keep master copies and
 *     copy them before every call: O(highest fd / 8) bytes.
 *
 * An fd_set holds only FD_SETSIZE fds (1024 on Linux), and FD_SET() on a
 * larger fd writes past it: memory corruption.  But the kernel reads as many
 * bits as the first argument of select() says, so where the system allows
 * it our sets are arrays of fd_sets, grown to the highest fd watched: fd f
 * is bit f % FD_SETSIZE of set f / FD_SETSIZE.  Every FD_SET() here stays
 * inside one fd_set, so nothing is undefined, and an array of fd_sets has
 * the kernel's layout by construction: the words the kernel reads (unsigned
 * long on Linux and FreeBSD, 32 bits on macOS and OpenBSD) are the C
 * library's own, in its own bit order, on any byte order.
 */
/* macOS: select() refuses more than FD_SETSIZE fds unless this is defined
 * before <sys/select.h> (select(2) there). */
#define _DARWIN_UNLIMITED_SELECT 1

#include "backend.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>

/*
 * The one platform difference.  Linux, the BSDs and macOS take sets larger
 * than FD_SETSIZE; elsewhere the sets stay one fd_set each and the loop
 * refuses larger fds with AS_EFDSETSIZE (it checks max_fd).  The test suite
 * also builds the library with AS_SELECT_FIXED=1, to test that refusal here.
 */
#ifndef AS_SELECT_FIXED
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
    defined(__OpenBSD__) || defined(__DragonFly__) || defined(__APPLE__)
#define AS_SELECT_FIXED 0
#else
#define AS_SELECT_FIXED 1
#endif
#endif

/* fd_sets must abut bit for bit for an array of them to be one bitmap. */
typedef char fd_sets_are_bitmaps[sizeof(fd_set) * CHAR_BIT == FD_SETSIZE ? 1 : -1];

struct select_state {
    /* nsets fd_sets each: what we watch, and the copies select() overwrites. */
    fd_set *readfds, *writefds, *rwork, *wwork;
    int nsets;
    int maxfd;       /* highest fd in either set, or -1 */
};

static void bit_set(fd_set *sets, int fd)
{
    FD_SET(fd % FD_SETSIZE, &sets[fd / FD_SETSIZE]);
}

static void bit_clear(fd_set *sets, int fd)
{
    FD_CLR(fd % FD_SETSIZE, &sets[fd / FD_SETSIZE]);
}

static int bit_test(fd_set *sets, int fd)
{
    return FD_ISSET(fd % FD_SETSIZE, &sets[fd / FD_SETSIZE]);
}

/* Make room for fd: at least double, so growing to n fds costs O(n) in all. */
static int grow(struct select_state *s, int fd)
{
    int n = s->nsets ? s->nsets : 1, i;
    fd_set *sets;

    while (n <= fd / FD_SETSIZE)
        n *= 2;
    /* One block for the four arrays; the work copies need no copying. */
    if (!(sets = malloc(4 * (size_t)n * sizeof *sets)))
        return -ENOMEM;
    for (i = 0; i < 4 * n; i++)
        FD_ZERO(&sets[i]);
    if (s->nsets) {  /* memcpy from NULL is undefined, even for 0 bytes */
        memcpy(sets, s->readfds, (size_t)s->nsets * sizeof *sets);
        memcpy(sets + n, s->writefds, (size_t)s->nsets * sizeof *sets);
    }
    free(s->readfds);
    s->readfds = sets;
    s->writefds = sets + n;
    s->rwork = sets + 2 * n;
    s->wwork = sets + 3 * n;
    s->nsets = n;
    return 0;
}

static void select_destroy(void *state)
{
    struct select_state *s = state;
    free(s->readfds);
    free(s);
}

static int select_create(void **statep)
{
    struct select_state *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->maxfd = -1;
    if (grow(s, 0) < 0) {
        free(s);
        return -ENOMEM;
    }
    *statep = s;
    return 0;
}

static int select_set(void *state, int fd, int events)
{
    struct select_state *s = state;

    if (fd / FD_SETSIZE >= s->nsets) {
        if (!events)
            return 0; /* never watched */
        if (grow(s, fd) < 0)
            return -ENOMEM;
    }
    if (events & AS__READABLE)
        bit_set(s->readfds, fd);
    else
        bit_clear(s->readfds, fd);
    if (events & AS__WRITABLE)
        bit_set(s->writefds, fd);
    else
        bit_clear(s->writefds, fd);

    if (events && fd > s->maxfd)
        s->maxfd = fd;
    /* Removing the highest fd: walk down to the next one still watched.
     * O(gap), paid only when the top fd goes away.  The sets keep their
     * size: a few bytes per 8 fds, ready for the next peak. */
    while (s->maxfd >= 0 && !bit_test(s->readfds, s->maxfd) &&
           !bit_test(s->writefds, s->maxfd))
        s->maxfd--;
    return 0;
}

static int select_poll(void *state, double timeout, as__ready_fn ready, void *ctx)
{
    struct select_state *s = state;
    int maxfd = s->maxfd, n, fd, reported = 0;
    size_t used = (size_t)(maxfd / FD_SETSIZE + 1) * sizeof(fd_set);
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

    /* Only the sets up to maxfd's: the kernel reads maxfd + 1 bits. */
    memcpy(s->rwork, s->readfds, used);
    memcpy(s->wwork, s->writefds, used);
    n = select(maxfd + 1, s->rwork, s->wwork, NULL, tvp);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;

    /* O(maxfd): select() tells us how many, not which. */
    for (fd = 0; fd <= maxfd && reported < n; fd++) {
        int events = (bit_test(s->rwork, fd) ? AS__READABLE : 0) |
                     (bit_test(s->wwork, fd) ? AS__WRITABLE : 0);
        if (events) {
            ready(ctx, fd, events);
            reported += (events == (AS__READABLE | AS__WRITABLE)) ? 2 : 1;
        }
    }
    return n;
}

const as__backend_ops as__backend_select = {
    "select",
    AS_SELECT_FIXED ? FD_SETSIZE : INT_MAX,
    select_create,
    select_destroy,
    select_set,
    select_poll,
};
