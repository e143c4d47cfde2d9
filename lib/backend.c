/*
 * backend.c - the table of backends, and which one a loop gets.
 *
 * This is the one place that knows which backends exist.  Adding one (a
 * backend_poll.c, say) is adding its file, which defines an
 * as__backend_ops, and its row here; loop.c only ever sees the table
 * through as__backend_find().
 *
 * The rows are in order of preference, and the first is the default: a
 * platform that has a better multiplexer puts it first under an #if, and
 * select(), which every POSIX system has, stays last.
 */
#include "backend.h"

#include <stdlib.h>
#include <string.h>

/* Each backend's ops, declared beside its row so that adding a backend
 * touches no header.  The cost: the compiler does not check these against
 * the definitions, which are one const initialiser each. */
extern const as__backend_ops as__backend_select;

const as__backend_ops *const as__backends[] = {
    &as__backend_select, /* POSIX: everywhere */
    NULL,
};

const as__backend_ops *as__backend_find(const char *name)
{
    size_t i;

    /* Read at each loop's creation, not cached: a test can set it between
     * two loops.  getenv() is not safe against a concurrent setenv(), the
     * same rule as for ASYNCSTREAMS_MALLOC (cache.h). */
    if (!name) {
        name = getenv("ASYNCSTREAMS_BACKEND");
        if (!name || !*name)
            return as__backends[0];
    }
    for (i = 0; as__backends[i]; i++)
        if (strcmp(as__backends[i]->name, name) == 0)
            return as__backends[i];
    return NULL;
}
