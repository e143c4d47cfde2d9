/*
 * backend.c - the table of backends, and which one a loop gets.
 *
 * This is the one place that knows which backends exist.  Adding one is
 * adding its file, which defines an as__backend_ops, and its row here;
 * loop.c only ever sees the table through as__backend_find().
 *
 * The rows are in order of preference, best first: "best" is the first
 * row.  The default is not: as_loop_new() gets select(), which every POSIX
 * system has and the tutorial teaches, unless ASYNCSTREAMS_BACKEND or the
 * caller names another.
 */
#include "config.h"
#include "backend.h"
#include "loop.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Each backend's ops, declared beside its row so that adding a backend
 * touches no header.  The cost: the compiler does not check these against
 * the definitions, which are one const initialiser each. */
extern const as__backend_ops as__backend_epoll;
extern const as__backend_ops as__backend_poll;
extern const as__backend_ops as__backend_select;

/* listing: table */
const as__backend_ops *const as__backends[] = {
#ifdef HAVE_SYS_EPOLL_H
    &as__backend_epoll,  /* Linux: O(ready fds) per turn */
#endif
    &as__backend_poll,   /* POSIX: O(fds watched) per turn */
    &as__backend_select, /* POSIX: O(highest fd) per turn; the default */
    NULL,
};
/* end listing */

const as__backend_ops *as__backend_find(const char *name)
{
    size_t i;

    /* Read at each loop's creation, not cached: a test can set it between
     * two loops.  getenv() is not safe against a concurrent setenv(), the
     * same rule as for ASYNCSTREAMS_MALLOC (cache.h). */
    if (!name) {
        name = getenv("ASYNCSTREAMS_BACKEND");
        if (!name || !*name)
            return &as__backend_select;
    }
    if (strcmp(name, "best") == 0)
        return as__backends[0];
    for (i = 0; as__backends[i]; i++)
        if (strcmp(as__backends[i]->name, name) == 0)
            return as__backends[i];
    return NULL;
}

const char *as_loop_backend_at(int i)
{
    int n = 0;

    if (i < 0)
        return NULL;
    while (n < i && as__backends[n])
        n++;
    return as__backends[n] ? as__backends[n]->name : NULL;
}

int as__backend_ms(double timeout)
{
    double ms = timeout * 1e3;
    int whole;

    if (timeout < 0)
        return -1;
    if (ms >= INT_MAX)
        return INT_MAX;
    whole = (int)ms;
    return whole < ms ? whole + 1 : whole;
}
