/*
 * pipe.h - streams over a descriptor that is not a socket: a pipe, a FIFO,
 * a tty or another character device (stdin, stdout...).  CPython's
 * loop.connect_read_pipe() and loop.connect_write_pipe() with a
 * StreamReader and a StreamWriter on top.
 *
 * The pipe transports are the second implementation of the transport
 * interface over an fd (transport.h says what every call does; the
 * socket transport is the first).  A pipe goes one way, so there are two
 * kinds, both with the name "pipe" (as_transport_kind()):
 *
 *   read pipe:  whenever the fd is readable, one read() into the reader's
 *               buffer; read() returning 0 is EOF: the reader gets EOF and
 *               the transport closes (CLOSED, the fd closed), as CPython's
 *               _UnixReadPipeTransport does.  It cannot write: write and
 *               writelines return AS_ESTATE, write_eof AS_ESTATE,
 *               can_write_eof is 0.  Pausing and resuming (the reader's
 *               flow control) stop and start watching the fd.
 *   write pipe: write() at once when nothing is queued; what the pipe does
 *               not take waits in the write queue (the socket transport's,
 *               writeq.h) and leaves with writev() when the fd is writable,
 *               with the same watermarks and drain() (transport.h).  It
 *               never reads.  For a FIFO it watches the fd for
 *               readability, which is how the kernel says that the read
 *               end has closed (CPython does the same), and is then LOST
 *               with -EPIPE; a write() that meets a closed read end fails
 *               the same way.  write_eof() closes the fd once the queue is
 *               out (a pipe has no half-close: EOF is the close), as
 *               CPython's write_eof(); can_write_eof is 1.
 *
 * Both answer get_extra_info("pipe") and ("fd") with the fd (AS_EXTRA_INT,
 * -1 once closed; CPython's "pipe" is the file object); "peername" and
 * "sockname" are AS_ENOKEY.  Closing closes the fd.
 *
 * Which descriptors: fstat() must say FIFO (a pipe() end or a mkfifo()
 * file) or character device (a tty, /dev/null...).  Anything else is
 * refused with AS_ENOTPIPE: a socket (use as_socket_transport_new()), a
 * regular file or a directory (select() calls a regular file always
 * readable and always writable, so a transport over one would spin and
 * block; files will get a worker thread of their own).  A closed fd, or
 * one open only the other way, is -EBADF.  A character device the backend
 * cannot watch is refused with the backend's error: epoll says -EPERM for
 * /dev/null, which has no poll method (select() and poll() call it always
 * ready, which for /dev/null is true).
 *
 * O_NONBLOCK.  A transport needs its fd non-blocking (design rule 9), so
 * the constructor sets O_NONBLOCK unless it is set already.  The flag
 * belongs to the open file description, not to the fd: every fd that
 * shares it sees the change, a dup() of it, the same fd in a parent
 * process, the shell that shares your terminal.  So a transport that set
 * the flag clears it again before it closes the fd, and a constructor that
 * fails clears it before returning; one that found the flag already set
 * leaves it set.  While the transport lives, another user of the same
 * description (a child writing to the same tty) sees non-blocking I/O.
 *
 * SIGPIPE.  write() to a pipe whose read end is closed raises SIGPIPE,
 * which ends the process unless it is handled; a pipe has no MSG_NOSIGNAL.
 * So each write() of a write pipe runs with SIGPIPE blocked on the calling
 * thread (two pthread_sigmask() calls), and a SIGPIPE that the write
 * raised is taken back with sigwait() before it is unblocked: the write
 * fails with -EPIPE, nothing is signalled (design rule 8).  A SIGPIPE that
 * was already pending when the write began is left pending.
 *
 * Differences from CPython: a write pipe whose reader goes away is LOST
 * with -EPIPE, so later writes return -EPIPE and drain() fails with it
 * (CPython closes quietly when nothing was queued, and drops later writes
 * with a warning after a few); a read pipe's write calls return AS_ESTATE
 * (CPython's read transport has no write()); sockets are refused (CPython
 * accepts them: use the socket transport, which can half-close).
 *
 * Lifetimes (transport.h's rules hold, with these):
 *   1. On success the transport owns the fd (transport.h rule 2, for a
 *      constructor that succeeds).  On failure nothing is taken (design
 *      rule 3): the fd stays the caller's and open, O_NONBLOCK as it was.
 *   2. as_open_read_pipe() returns a reader and its transport, one
 *      reference to each, the caller's.  The reader holds nothing of the
 *      transport: keep the transport's reference while you read, then
 *      close it (or let it close itself at EOF) and drop both.  Dropping
 *      the transport while open closes it at once (transport.h rule 4).
 *   3. as_open_write_pipe() returns a writer, the caller's; it holds the
 *      transport and a reader of its own that is never fed data, only the
 *      transport's EOF or error (so drain() fails with -EPIPE first, as
 *      writer.h's order says).
 *   4. as_open_pipe() returns both ends of a new pipe(), as the two calls
 *      above would; each end closes its own fd.
 *
 * Conventions (asyncstreams.h): the transports are refcounted, and the
 * NULL answers are transport.h's.  The open calls set every out pointer
 * they were given to NULL on failure.
 */
#ifndef AS_PIPE_H
#define AS_PIPE_H

#include <sys/types.h>

#include "loop.h"
#include "reader.h"
#include "transport.h"
#include "writer.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Options for the open_*pipe() calls; NULL means all defaults.
 *  Zero-initialise and set what you need. */
typedef struct as_pipe_options {
    ssize_t limit; /**< the read end's reader limit; 0 = 64 KiB */
} as_pipe_options;

/**
 * The transport over the read end of a pipe, FIFO or character device,
 * feeding reader.  It starts reading at once.  Returns 0 and the transport
 * in *out, or: AS_EINVAL (NULL loop/reader/out, fd < 0), -EBADF (fd not
 * open), AS_ENOTPIPE (a socket, a regular file... see the top of this
 * file), AS_EFDSETSIZE (fd too large for the loop's backend; a tty's write
 * end meets it at its first write the pipe does not take whole, as
 * nothing watches it before), the backend's error for a device it cannot
 * watch, AS_ECLOSED (loop closed), -ENOMEM, a negated errno from fcntl().  On failure *out
 * is NULL and the fd is still the caller's (lifetime rule 1).
 */
int as_read_pipe_transport_new(as_loop *loop, int fd, as_reader *reader,
                               as_transport **out);

/**
 * The transport over the write end; reader receives only its EOF or
 * error (as_open_write_pipe() makes one).  Returns as
 * as_read_pipe_transport_new().
 */
int as_write_pipe_transport_new(as_loop *loop, int fd, as_reader *reader,
                                as_transport **out);

/** True if t is a pipe transport (either end). */
int as_is_pipe_transport(const as_transport *t);

/**
 * connect_read_pipe() with a StreamReader: a new reader (opts->limit) fed
 * by a read pipe transport over fd.  Returns 0 with *reader and *transport
 * set (lifetime rule 2), or as as_read_pipe_transport_new(), and AS_EINVAL
 * for NULL out pointers or a negative limit.
 */
int as_open_read_pipe(as_loop *loop, int fd, const as_pipe_options *opts,
                      as_reader **reader, as_transport **transport);

/**
 * connect_write_pipe() with a StreamWriter: a writer over a write pipe
 * transport over fd (lifetime rule 3).  Returns 0 with *writer set, or as
 * as_read_pipe_transport_new(), and AS_EINVAL for a NULL out pointer.
 */
int as_open_write_pipe(as_loop *loop, int fd, const as_pipe_options *opts,
                       as_writer **writer);

/**
 * A new pipe() with a stream on each end: what *writer writes, *reader
 * reads (*transport is the read end's).  Both fds are the transports'.
 * Returns 0, or as the two calls above, or the negated errno of pipe();
 * on failure both fds are closed and every out pointer is NULL.
 */
int as_open_pipe(as_loop *loop, const as_pipe_options *opts,
                 as_reader **reader, as_transport **transport,
                 as_writer **writer);

#ifdef __cplusplus
}
#endif
#endif /* AS_PIPE_H */
