/*
 * server.h - start_server, start_unix_server and the Server lifecycle.
 *
 * A server owns listening sockets.  Each connection it accepts becomes a
 * transport with a fresh reader and writer, handed to the client_connected
 * callback, which may return a future (typically a task) for the server to
 * watch.  The server keeps track of every connection it made, so it can
 * close them, abort them, or wait for them to go.
 *
 *        start_server --bound, start_serving--> SERVING <--start_serving-- BOUND
 *                                                  |                        |
 *                                                close()                  close()
 *                                                  v                        v
 *                             CLOSED (not listening; clients may remain)
 *                                                  |
 *                                     last client connection closed
 *                                                  v
 *                                 wait_closed() futures finish
 *
 * Accept errors: EMFILE, ENFILE, ENOBUFS and ENOMEM mean "no room for a new
 * fd right now".  The listening socket stays readable, so retrying at once
 * would spin the CPU.  Instead the server stops watching it, waits (50 ms,
 * doubling up to 1 s while the errors go on), then listens again; each
 * episode is reported once to the loop's exception handler, not once per
 * failed accept.  A client fd too large for the backend (>= FD_SETSIZE for
 * select()) is closed at once and reported the same way; the other clients
 * are served normally.
 *
 * A handler's future that fails (not cancelled) is reported once through the
 * loop's exception handler as "Unhandled exception in client_connected_cb",
 * and its connection is closed, as CPython does; the server keeps serving.
 *
 * Lifetimes:
 *   1. as_start_server() / as_start_unix_server() return a future whose
 *      result is the as_server, owned by the future: take it with
 *      as_future_take_result() to keep it, then release it with
 *      as_server_unref().  The server holds a loop object reference.
 *   2. Dropping the last reference closes the server (stops listening), but
 *      connections already accepted go on: they belong to their handlers.
 *   3. The callback's userdata belongs to the server from a successful
 *      start call; destroy(userdata) runs when the server is freed.  If the
 *      start future fails, destroy runs before the failure is delivered.
 *   4. Each callback call receives new references to its reader and
 *      writer: the handler owns them and must release each (as_reader_unref,
 *      as_writer_unref), normally after as_writer_close().
 *   5. The server keeps its own reference to each connection's transport,
 *      reader and handler future while it lists the connection: until the
 *      transport is closed, or the loop is closed, or the server is freed,
 *      whichever comes first.  The handler future's failure report holds a
 *      transport reference of its own, so it works after any of those.
 *   6. Futures returned by wait_closed(), serve_forever(), start_serving()
 *      and shutdown() are new references, the caller's.
 *   7. When the loop closes first, every order of what follows is safe:
 *      the handler dropping its reader and writer, as_server_unref(),
 *      querying the server.  A connection whose close was on its way (its
 *      callbacks scheduled, then dropped by as_loop_close()) leaves the
 *      server's list then; an open one stays listed, and its transport
 *      alive, until the server is freed, which closes it if the handler has
 *      dropped it too.  When the last of these references goes, so does the
 *      loop's memory (loop.h, rule 1).
 *
 * Threads: a server belongs to its loop's thread.
 *
 * Conventions (asyncstreams.h): servers are refcounted, and a NULL server
 * gets the NULL answers listed there (as_server_is_closed(NULL) is 1),
 * except that as_server_socket_fd(NULL, i) returns AS_EINVAL, as for any
 * index without a socket.  The start calls return NULL for a NULL loop,
 * without calling destroy.
 */
#ifndef AS_SERVER_H
#define AS_SERVER_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "loop.h"
#include "future.h"
#include "reader.h"
#include "writer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct as_server as_server;

/**
 * Called on the loop for each accepted connection, with new references to
 * its reader and writer (lifetime rule 4).  Return NULL, or a future the
 * server should watch (for example the handler's task's future), handing
 * over one reference to it: return as_future_ref(f) to keep your own.
 */
typedef as_future *(*as_client_connected_fn)(as_reader *reader,
                                             as_writer *writer, void *userdata);

/** Options for the start calls; NULL means every default. */
typedef struct as_server_options {
    ssize_t limit;      /**< each reader's limit; 0 = 64 KiB */
    int backlog;        /**< listen() backlog; 0 = 100 (CPython's default) */
    int family;         /**< AF_INET, AF_INET6, or 0 = every family the host resolves to */
    int reuse_address;  /**< SO_REUSEADDR: 1 on (default), -1 off */
    int reuse_port;     /**< SO_REUSEPORT: 1 on; default off.  AS_EINVAL where unsupported */
    int no_start;       /**< 1: bind and listen, but accept only after start_serving() */
    int keep_socket_file; /**< Unix servers: 1 keeps the path on close (cleanup_socket=False) */
} as_server_options;

/**
 * start_server(client_connected_cb, host, port).  host NULL (or "") binds
 * every interface, IPv4 and IPv6; a name is resolved on a worker thread and
 * every address it gives is bound.  port "0" picks a free port (each socket
 * may get a different one, as in CPython; read them with as_server_sockname()).
 * Returns a future whose result is the as_server (lifetime rule 1); it fails
 * with AS_EINVAL (bad argument or option), AS_EPORT "bind(): port must be
 * 0-65535." (a numeric port out of range, which getaddrinfo() would wrap),
 * AS_ERESOLVE, the system error of socket()/bind()/listen() (e.g.
 * -EADDRINUSE), with the address in the message, or AS_EFDSETSIZE when a
 * listening socket is too large for the loop's backend (found when
 * watching starts: with opts->no_start, the start_serving() or
 * serve_forever() future fails with it instead).  NULL only if no future
 * could be allocated or the loop is closed.
 */
as_future *as_start_server(as_loop *loop, as_client_connected_fn cb,
                           void *userdata, as_destroy_fn destroy,
                           const char *host, const char *port,
                           const as_server_options *opts);

/**
 * start_unix_server(client_connected_cb, path).  A stale socket file at path
 * (nobody accepts on it) is removed first; a path somebody is listening on
 * fails with -EADDRINUSE "[Errno 98] Address '<path>' is already in use",
 * as does a path that is not a socket.  On close the file is removed, unless
 * opts->keep_socket_file, and unless it was replaced by another file since.
 * A path too long for sockaddr_un fails with AS_EINVAL.
 */
as_future *as_start_unix_server(as_loop *loop, as_client_connected_fn cb,
                                void *userdata, as_destroy_fn destroy,
                                const char *path,
                                const as_server_options *opts);

/** Add a reference; returns s. */
as_server *as_server_ref(as_server *s);

/** Drop a reference; at zero the server is closed and freed (rule 2). */
void as_server_unref(as_server *s);

/** The server's loop. */
as_loop *as_server_loop(const as_server *s);

/** Number of listening sockets (0 once closed, as CPython's `sockets`). */
size_t as_server_nsockets(const as_server *s);

/** The fd of listening socket i, or AS_EINVAL if there is no such socket. */
int as_server_socket_fd(const as_server *s, size_t i);

/**
 * The bound address of listening socket i (getsockname()).  Returns 0, or
 * AS_EINVAL for a bad index, or a negated errno.
 */
int as_server_sockname(const as_server *s, size_t i,
                       struct sockaddr_storage *addr, socklen_t *len);

/** The port of listening socket i (TCP), or AS_EINVAL. */
int as_server_port(const as_server *s, size_t i);

/** True while the server accepts connections. */
int as_server_is_serving(const as_server *s);

/** True once as_server_close() was called. */
int as_server_is_closed(const as_server *s);

/** Number of connections the server made that are not closed yet. */
size_t as_server_active_connections(const as_server *s);

/**
 * Start accepting (idempotent).  Returns a future that finishes on the next
 * loop turn (CPython's start_serving() ends with sleep(0)), or fails with
 * AS_ESTATE "server is closed", the error of listen(), or AS_EFDSETSIZE (a
 * listening socket too large for the loop's backend).
 */
as_future *as_server_start_serving(as_server *s);

/**
 * serve_forever(): start serving and return a future that finishes only
 * when the server is closed... by cancelling it: cancelling the future
 * closes the server (the clients stay; await as_server_wait_closed() for
 * them).  Fails at once with AS_ESTATE "server is already being awaited on
 * serve_forever()" or "server is closed".
 */
as_future *as_server_serve_forever(as_server *s);

/**
 * Stop listening, at once: the listening sockets are closed (a Unix
 * server's file removed, see above), serve_forever() is cancelled, and
 * existing connections go on.  Idempotent.
 */
void as_server_close(as_server *s);

/**
 * A future that finishes once the server is closed and every connection it
 * made is closed.  Already true: a future finished at once.  May be called
 * any number of times.
 */
as_future *as_server_wait_closed(as_server *s);

/** close() every live connection the server made (queued bytes are sent). */
void as_server_close_clients(as_server *s);

/** abort() every live connection the server made (RST, queues dropped). */
void as_server_abort_clients(as_server *s);

/**
 * Beyond CPython: a graceful shutdown that always ends by the deadline.
 * Stops listening, feeds EOF to every connection's reader, cancels every
 * handler future and closes every connection (flushing what was queued);
 * connections still open after `timeout` seconds are aborted.  The future
 * finishes once no connection is left: at the latest one loop turn after the
 * deadline.  timeout < 0 means abort at once; NaN is AS_EINVAL.
 */
as_future *as_server_shutdown(as_server *s, double timeout);

#ifdef __cplusplus
}
#endif
#endif /* AS_SERVER_H */
