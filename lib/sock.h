/*
 * sock.h - the library's socket system calls, in one module (internal).
 *
 * Everything that makes, sets up, binds, connects or accepts a socket is
 * here, so the rest of the library says what it wants ("a listening
 * socket for this address") and not how this system spells it.  Every
 * platform difference for sockets is named in sock.c: the flags socket()
 * and accept() take, SO_NOSIGPIPE against MSG_NOSIGNAL, SO_REUSEPORT and
 * IPV6_V6ONLY where they exist, which accept() errors are the peer's.  A
 * port to another system (Windows: closesocket(), WSAGetLastError())
 * changes sock.c.  What stays outside is a transport's I/O on a socket it
 * owns (recv, send, shutdown, close: socket_transport.c and
 * socket_transport_write.c).
 *
 * Conventions: names are as__ (internal, not exported); every call returns
 * an fd or 0 on success and a negative errno (or AS_E* code) on failure,
 * and on failure closes any fd it made.  Every fd made here is
 * non-blocking and close-on-exec from the start where the system allows
 * (SOCK_NONBLOCK | SOCK_CLOEXEC, accept4(), pipe2()), otherwise just after
 * with fcntl(): a window in which another thread's fork+exec could inherit
 * it, which only those systems have.
 *
 * Messages: calls that can fail in a way CPython words (a bind) take a
 * buffer and write CPython's message into it, or "" when CPython has none
 * beyond the errno's own text.
 *
 * Lifetimes:
 *   1. An fd returned is the caller's: it closes it (as__sock_close), or
 *      hands it on (as_socket_transport_new() takes it over,
 *      socket_transport.h).
 *   2. Nothing here keeps state, or a pointer to what it was given: every
 *      call is safe from any thread, on fds the caller owns.
 */
#ifndef AS_SOCK_H
#define AS_SOCK_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "config.h"

/*
 * The flags every send() and sendmsg() on a stream socket passes: the
 * write side's half of "never SIGPIPE".  MSG_NOSIGNAL where it exists;
 * elsewhere 0, and as__sock_setup_stream() sets SO_NOSIGPIPE on the socket
 * instead.  The two halves are chosen together, here and in sock.c.
 */
#if defined(HAVE_DECL_MSG_NOSIGNAL) && HAVE_DECL_MSG_NOSIGNAL
#define AS__SOCK_SEND_FLAGS MSG_NOSIGNAL
#else
#define AS__SOCK_SEND_FLAGS 0
#endif

/* Set O_NONBLOCK / FD_CLOEXEC on an fd (any kind).  0 or -errno. */
int as__set_nonblocking(int fd);
int as__set_cloexec(int fd);

/* close() a socket this library made, without retrying on EINTR (POSIX
 * leaves the fd's state unspecified then; on the systems we know it is
 * closed).  Ignores fd < 0. */
void as__sock_close(int fd);

/* A pipe, both ends non-blocking and close-on-exec (the loop's wake-up
 * pipe).  0 or -errno; fds[] untouched on failure. */
int as__sock_pipe(int fds[2]);

/* socket(family, SOCK_STREAM, protocol), non-blocking and close-on-exec:
 * the fd, or -errno. */
int as__sock_open(int family, int protocol);

/*
 * What a transport needs of a connected stream socket, whoever made it
 * (a user may hand one to as_socket_transport_new()): non-blocking,
 * close-on-exec, no SIGPIPE, and TCP_NODELAY for TCP (as CPython sets it: the transport
 * coalesces writes itself, so Nagle's algorithm would only add latency).
 * 0 or -errno; the fd stays open either way.  For an fd made here the two
 * flags are set already: asking (two fcntl() calls) is the price of
 * accepting any fd.
 */
int as__sock_setup_stream(int fd);

/*
 * connect() a non-blocking socket: 0 when connected at once,
 * -EINPROGRESS when the result comes later (wait until the fd is writable,
 * then ask as__sock_connect_result), or -errno.  EINTR is reported as
 * -EINPROGRESS: the connect goes on asynchronously (POSIX).
 */
int as__sock_connect(int fd, const struct sockaddr *sa, socklen_t len);

/* The outcome of a connect that was in progress, once the fd is writable
 * (SO_ERROR): 0 connected, -EINPROGRESS still going (a spurious wake-up),
 * or the -errno it failed with. */
int as__sock_connect_result(int fd);

/*
 * bind(); on failure -errno, with CPython 3.13's message for it in msg:
 * "[Errno 98] error while attempting to bind on address ('127.0.0.1',
 * 8888): [errno 98] address already in use".  The one bind-error message,
 * for servers and for open_connection's local address alike (asyncio
 * words both the same way).  msg may be NULL.
 */
int as__sock_bind(int fd, const struct sockaddr *sa, socklen_t len,
                  char *msg, size_t size);

/* What a listening socket asks of as__sock_listener(). */
typedef struct as__sock_listen_opts {
    int reuse_address; /* SO_REUSEADDR: nonzero on */
    int reuse_port;    /* SO_REUSEPORT: nonzero on; AS_EINVAL where the
                          system has none.  Both ignored for Unix paths. */
} as__sock_listen_opts;

/*
 * A socket bound to sa, ready for as__sock_listen(): non-blocking,
 * close-on-exec, SO_REUSEADDR / SO_REUSEPORT as asked, and IPv6 sockets
 * IPv6 only (IPV6_V6ONLY), so the IPv4 wildcard socket can share the port,
 * as CPython does.  The fd, or an error with CPython's message in msg
 * ("" if none): a TCP bind's as__sock_bind() message; for a Unix path in
 * use, "[Errno 98] Address '/path' is already in use".
 */
int as__sock_listener(const struct sockaddr *sa, socklen_t len,
                      const as__sock_listen_opts *o, char *msg, size_t size);

/* listen(fd, backlog).  0 or -errno. */
int as__sock_listen(int fd, int backlog);

/* accept() one connection from a non-blocking listening socket: the new
 * fd, non-blocking and close-on-exec, or -errno (-EAGAIN: none waiting). */
int as__sock_accept(int lfd);

/* True for an accept() error that is about the one connection (the peer
 * gave up before it was accepted, a signal): go on with the next.  Any
 * other error is the server's (EMFILE...). */
int as__sock_accept_error_is_transient(int err);

/*
 * A Unix socket address for path: AS_EINVAL "path too long for a Unix
 * socket address" (in msg, which may be NULL) if it does not fit in
 * sun_path, AS_EINVAL for an empty path; 0 otherwise.
 */
int as__sock_unix_addr(const char *path, struct sockaddr_un *sun,
                       const char **msg);

/*
 * Before binding a Unix server: remove the socket file at sun's path if
 * nobody accepts on it (left over from an earlier run).  A socket someone
 * accepts on, any other kind of file, or one we cannot tell about, stays;
 * then the bind fails with EADDRINUSE.  The probe is a real connect(),
 * which a live server sees as a connection closed at once.
 */
void as__sock_unix_remove_stale(const struct sockaddr_un *sun);

/*
 * A numeric port out of range: AS_EPORT for "65536", "99999" or "-1"
 * (getaddrinfo() would wrap them modulo 65536 and use another port, and
 * glibc skips leading blanks as strtoul() does, so " 70000" counts too);
 * 0 for "0" to "65535" and for anything that is not a number (a service
 * name, for getaddrinfo() to judge).  The callers word the error as
 * CPython's socket calls do: "connect(): port must be 0-65535.".
 */
int as__sock_check_port(const char *port);

/* The socket address as CPython prints it: "('127.0.0.1', 80)",
 * "('::1', 80, 0, 0)", "('/path')".  Returns buf. */
char *as__sock_format_addr(const struct sockaddr *sa, socklen_t len, char *buf,
                           size_t size);

#endif /* AS_SOCK_H */
