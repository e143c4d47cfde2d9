/*
 * connect.h - open_connection() and open_unix_connection(): a connected
 * (reader, writer) pair.
 *
 * The connect state machine (one attempt per resolved address, in the order
 * getaddrinfo() returned them, as CPython tries them without happy eyeballs):
 *
 *   RESOLVING --error--------------------------------------> FAILED (AS_ERESOLVE)
 *      | addresses
 *      v
 *   next address --none left-------------------------------> FAILED (the
 *      |                                                      connect errors)
 *      v
 *   socket(), bind(local), connect() --0-------------------> CONNECTED
 *      |  EINPROGRESS                      ^
 *      v                                   |
 *   CONNECTING --writable: SO_ERROR == 0---+
 *      |       --writable: SO_ERROR != 0--> close, next address
 *      +--result future cancelled--> close; CANCELLED
 *
 * Errors, as CPython words them:
 *   - resolution: AS_ERESOLVE "[Errno -2] Name or service not known";
 *   - one failed address: its negated errno, "[Errno 111] Connect call
 *     failed ('127.0.0.1', 1)" (IPv6: ('::1', 1, 0, 0); Unix: ('/path'));
 *   - several different failures: the first one's code, message
 *     "Multiple exceptions: <each message>, ...";
 *   - a bind to the local address failing: its errno, "[Errno 98] error
 *     while attempting to bind on address ('127.0.0.1', 5): [errno 98]
 *     address already in use" (the servers' message too, server.h);
 *   - a numeric port outside 0-65535 (getaddrinfo() would wrap "99999" to
 *     34463): AS_EPORT "connect(): port must be 0-65535.", or "bind():
 *     port must be 0-65535." for local_port, before anything is resolved;
 *   - a socket numbered at or above the loop's limit (FD_SETSIZE for
 *     select()): AS_EFDSETSIZE, at once, without trying further addresses;
 *   - bad arguments: AS_EINVAL.
 *
 * Lifetimes:
 *   1. Each call returns a new future (the caller's reference), or NULL if
 *      no future could be allocated.  Cancelling it stops the attempt and
 *      closes any socket it made.
 *   2. On success the future's result is an as_connection owned by the
 *      future.  Take it with as_future_take_result(): you then own the
 *      struct and one reference to each of its reader and writer, and
 *      release all three with as_connection_free() (or copy the two
 *      pointers out and free() the struct).  A result never taken is freed
 *      with the future: its writer then closes the connection.
 *   3. host, port, path and the options' strings are copied: they need
 *      only live for the call.
 *   4. Resolving a name uses a worker thread (resolve.h, rule 4 applies:
 *      cancel pending connects before closing the loop).
 *
 * Conventions (asyncstreams.h): as_connection is a value type, one struct
 * holding a reference to each of its reader and writer, freed (with both
 * references) by as_connection_free(); it is not refcounted.  NULL gets
 * the NULL answers listed there: the open calls and as_format_sockaddr()
 * return NULL for a NULL loop, address or buffer.
 */
#ifndef AS_CONNECT_H
#define AS_CONNECT_H

#include <sys/types.h>

#include "loop.h"
#include "future.h"
#include "reader.h"
#include "writer.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The result of a successful open_connection(). */
typedef struct as_connection {
    as_reader *reader;
    as_writer *writer;
} as_connection;

/** Release a connection's two references and the struct.  Does not close
 *  anything itself: close the writer first (see writer.h, rule 2). */
void as_connection_free(as_connection *c);

/** Options for the open_*connection() calls; NULL means all defaults.
 *  Zero-initialise and set what you need. */
typedef struct as_connect_options {
    ssize_t limit;          /**< the reader's limit; 0 = 64 KiB */
    int family;             /**< AF_INET, AF_INET6, or 0 = either */
    const char *local_host; /**< bind here before connecting; NULL = any */
    const char *local_port; /**< with local_host; NULL = any port */
} as_connect_options;

/**
 * open_connection(host, port): resolve host (on a worker thread unless it is
 * numeric), then try each address in turn until one connects.  port is a
 * number or a service name ("80", "http").  As CPython's None, a NULL host
 * is the loopback address (getaddrinfo(NULL, port) without AI_PASSIVE),
 * and a NULL port is port 0 (which refuses); both NULL is AS_EINVAL.  The
 * connection gets TCP_NODELAY.
 * Returns a future whose result is an as_connection (see lifetime rule 2).
 */
as_future *as_open_connection(as_loop *loop, const char *host, const char *port,
                              const as_connect_options *opts);

/**
 * open_unix_connection(path): connect a Unix stream socket to path.  Only
 * opts->limit is used.  A path too long for sockaddr_un fails with
 * AS_EINVAL.
 */
as_future *as_open_unix_connection(as_loop *loop, const char *path,
                                   const as_connect_options *opts);

/**
 * Format a socket address the way CPython prints one in messages:
 * "('127.0.0.1', 80)", "('::1', 80, 0, 0)", "('/path')".  Returns buf, or
 * NULL if sa or buf is NULL (then "" is written to a buf of size > 0).
 */
char *as_format_sockaddr(const struct sockaddr *sa, socklen_t len, char *buf,
                         size_t size);

#ifdef __cplusplus
}
#endif
#endif /* AS_CONNECT_H */
