/*
 * socket_transport.h - the transport over a connected stream socket (TCP
 * or Unix): the first implementation of the transport interface
 * (transport.h), which says what every call does.  This header adds only
 * what is the socket's own: how to make one, and write coalescing.
 *
 * Reading: whenever the socket is readable, recv() goes straight into the
 * reader's buffer.  Writing: send() is tried at once when nothing is
 * queued; what the kernel does not take is queued (writeq.h) and sent with
 * sendmsg() when the socket is writable.  Small writes made during one loop
 * turn are coalesced into one send() at the end of the turn (see
 * as_socket_transport_set_coalescing()).  Closing releases the fd: FIN,
 * or RST (SO_LINGER 0) for abort().
 *
 * Conventions (asyncstreams.h): the NULL answers listed there;
 * as_socket_transport_new() closes its fd whatever it returns.
 */
#ifndef AS_SOCKET_TRANSPORT_H
#define AS_SOCKET_TRANSPORT_H

#include "transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Wrap a connected stream socket.  The fd is made non-blocking and
 * close-on-exec, gets TCP_NODELAY when it is TCP (as CPython does) and
 * SO_NOSIGPIPE where that exists; it starts being read at once.
 * Returns 0 and stores the transport in *out, or:
 *   AS_EINVAL (NULL loop/reader/out, fd < 0), AS_EFDSETSIZE (fd too large for
 *   the loop's backend), AS_ECLOSED (loop closed), -ENOMEM, or a negated
 *   errno from fcntl/setsockopt.  On every failure the fd is closed
 *   (transport.h, lifetime rule 2), and *out is set to NULL.
 */
int as_socket_transport_new(as_loop *loop, int fd, as_reader *reader,
                            as_transport **out);

/** True if t is a socket transport. */
int as_is_socket_transport(const as_transport *t);

/**
 * Write coalescing (on by default).  On: a write smaller than 16 KiB made
 * while the queue is empty is queued and sent by one call at the end of the
 * loop turn (as_loop_call_end_of_turn()) together with every other write of
 * the turn, so a pipelined protocol pays one send() per turn instead of one
 * per write, and a lone reply still leaves in the turn it was written.
 * Off: every write tries send() at once, as CPython does (lower latency for
 * a lone small reply, more system calls under pipelining).  bench/bulk_lines
 * measures both.  Returns 0, or AS_EINVAL if t is not a socket transport.
 */
int as_socket_transport_set_coalescing(as_transport *t, int on);

#ifdef __cplusplus
}
#endif
#endif /* AS_SOCKET_TRANSPORT_H */
