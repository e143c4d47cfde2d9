/*
 * asyncstreams.h - the umbrella header: include this one.
 *
 * Each module has its own header, listed here from the bottom layer up:
 * each layer uses only the ones below it (docs/design.md, "The layers").
 *
 * Conventions.  Every public header follows these, says so, and names its
 * exceptions.
 *
 *   Constructors have one shape, `int as_x_new(..., as_x **out)`: 0 and
 *   the new object in *out, or a negative code (errors.h) with *out set to
 *   NULL.
 *
 *   References.  The objects made on a loop are refcounted: futures,
 *   tasks, readers, transports, writers, servers, and the handles the
 *   loop hands out.  as_x_ref() adds a reference and returns its argument;
 *   as_x_unref() drops one, and the object is freed at zero.  A value type
 *   has one owner and no count: as_buffer (as_buffer_destroy()),
 *   as_connection (as_connection_free()), as_bytes (free()), and so have
 *   as_semaphore and as_event (_free(), which cancels their waiters).  The
 *   loop is neither: its creator owns it and ends it with as_loop_close().
 *
 *   NULL.  A NULL object argument is never a crash:
 *     - a call returning void does nothing;
 *     - a call returning int returns AS_EINVAL, unless its int is a truth
 *       value or a count (done, cancelled, is_running, pending...): then
 *       it returns 0, "no" or "none", as do queries returning size_t or
 *       double;
 *     - but a NULL object looks closed: is_closing and is_closed return
 *       1, and a call returning an fd returns -1, as for a closed one;
 *     - a call returning a pointer returns NULL, a future included;
 *     - a call that takes something over whatever it returns (a future to
 *       await, bytes to write, a task's result) frees it; one that keeps
 *       it only on success (as_future_set_result()) leaves it the
 *       caller's, as on any failure;
 *     - a destroy hook given with the call is not called, as on any
 *       failure.
 *   NULL in an argument that is not the object (data, a callback, an out
 *   pointer) gets AS_EINVAL, or NULL, unless the call's contract gives it
 *   a meaning.
 */
#ifndef ASYNCSTREAMS_H
#define ASYNCSTREAMS_H

#include "errors.h"
#include "loop.h"
#include "future.h"
#include "task.h"
#include "sync.h"
#include "locks.h"
#include "buffer.h"
#include "reader.h"
#include "transport.h"
#include "socket_transport.h"
#include "writer.h"
#include "resolve.h"
#include "connect.h"
#include "server.h"
#include "tls.h"
#include "pipe.h"

#endif /* ASYNCSTREAMS_H */
