/*
 * resolve.h - host name resolution off the loop thread (loop.getaddrinfo).
 *
 * getaddrinfo() may block for seconds (DNS, /etc/hosts, NSS modules), so a
 * name is resolved on a worker thread, which hands the result back with
 * as_loop_call_soon_threadsafe().  A numeric host with a numeric (or no)
 * port never needs a thread: it is converted at once, on the loop thread.
 *
 *      as_getaddrinfo --numeric host and port--> FINISHED at once
 *            |
 *            +--spawn worker--> RESOLVING --worker posts result--> FINISHED
 *                                  |                               / FAILED
 *                                  +--future cancelled--> CANCELLED
 *                                     (the worker's answer is dropped)
 *
 * Errors: AS_ERESOLVE with CPython's gaierror text, "[Errno -2] Name or
 * service not known" (the number is the EAI_* code); a system error
 * (EAI_SYSTEM) as its negated errno; -EAGAIN/-ENOMEM if no thread could be
 * started.
 *
 * Lifetimes:
 *   1. The returned future is a new reference, the caller's.  Its result is
 *      a struct addrinfo list owned by the future (freed with freeaddrinfo);
 *      take it with as_future_take_result() to keep it, then freeaddrinfo()
 *      it yourself.
 *   2. host, port and hints are copied: they need only live for the call.
 *   3. The worker shares a small job record with the loop, guarded by a
 *      mutex and freed by whichever side finishes last; the worker touches
 *      the loop only through as_loop_call_soon_threadsafe(), and only while
 *      the future is still waiting for it.
 *   4. Closing the loop while a worker is still resolving: its answer can
 *      no longer be delivered, so the pending future (and the loop's memory,
 *      which it keeps alive) is never freed; as_loop_close() counts it as
 *      alive.  Cancel pending resolutions before closing the loop.
 *
 * Threads: call from the loop's thread.
 *
 * Conventions (asyncstreams.h): the NULL answers listed there.
 */
#ifndef AS_RESOLVE_H
#define AS_RESOLVE_H

#include <netdb.h>

#include "loop.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Resolve host/port as getaddrinfo(host, port, hints) would, without
 * blocking the loop.  host or port may be NULL (not both); hints may be NULL
 * (any family, any socket type).  Returns a new future (see above), or NULL
 * on allocation failure or a closed loop.  The future may already be done
 * (numeric input, bad arguments: AS_EINVAL).
 */
as_future *as_getaddrinfo(as_loop *loop, const char *host, const char *port,
                          const struct addrinfo *hints);

/**
 * Format the text CPython gives a gaierror, "[Errno N] text", for an EAI_*
 * code, into buf.  Returns buf (NULL for a NULL buf).
 */
char *as_gai_message(int gai_code, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* AS_RESOLVE_H */
