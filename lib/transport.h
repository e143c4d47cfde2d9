/*
 * transport.h - a non-blocking stream socket: reads feed a StreamReader,
 * writes go through a write queue.
 *
 * The transport owns one connected stream socket (TCP or Unix).  It reads
 * whenever the socket is readable and feeds what arrives into its reader
 * (data, EOF, or an error).  Writes never block: what the kernel does not
 * take at once is copied into the write queue and sent when the socket is
 * writable.  Small writes made during one loop turn are coalesced and sent
 * together by one send() at the end of the turn (see
 * as_transport_set_coalescing()).
 *
 * States (CPython's _SelectorSocketTransport, made explicit):
 *
 *      OPEN --close()--> CLOSING --queue empty--> CLOSED   (clean: reader EOF)
 *        |                  |
 *        |--abort()---------+---------------------> CLOSED   (RST, queue dropped)
 *        |                  +--close_within()'s --> CLOSED   (RST, queue dropped)
 *        |                  |  deadline
 *        +--send/recv error-+---------------------> LOST     (error stored)
 *
 *   write_eof() in OPEN sends FIN once the queue is empty; reading goes on.
 *   A FIN from the peer feeds EOF to the reader; writing stays open.
 *   The fd is closed on entering CLOSED or LOST, synchronously: no extra
 *   loop turn is needed to release it.
 *
 * Errors: the first send/receive error is stored.  It becomes the reader's
 * exception (clean EOF instead keeps buffered data readable), every later
 * write returns it, drain waiters and flush waiters fail with it, and the
 * closed future fails with it.  It is returned as a value, never logged, so
 * a write loop against a dead peer produces no flood of reports.
 *
 * What each call returns in each state (pain point 20: one documented answer
 * per method x state):
 *
 *   call          OPEN        EOF written    CLOSING/CLOSED   LOST (error e)
 *   write         0           AS_ESTATE      AS_ECLOSED       e
 *   writelines    0           AS_ESTATE      AS_ECLOSED       e
 *   write_eof     0           0 (no-op)      AS_ECLOSED       e
 *   close/abort   0           0              0 (no-op)        0 (no-op)
 *   drain         see writer.h
 *
 * Lifetimes:
 *   1. as_transport_new() returns a transport with one reference, the
 *      caller's; as_transport_ref()/as_transport_unref() count references.
 *      The transport holds a loop object reference (loop.h, rule 1).
 *   2. The transport owns the fd from as_transport_new() on, even when that
 *      call fails (the fd is then closed).  Never close it yourself.
 *   3. While close() is flushing the queue, the transport holds a reference
 *      to itself, so dropping yours right after close() is safe: the bytes
 *      still go out.  That reference ends when it reaches CLOSED or LOST.
 *   4. If the last reference is dropped in OPEN, the transport is closed at
 *      once without flushing (CPython's "unclosed transport"): the fd is
 *      closed and the reader gets EOF.  Close it first.
 *   5. The transport holds a reference to its reader and installs the
 *      reader's flow-control hooks (as_reader_set_flow_control()); it
 *      removes them on CLOSED/LOST and drops the reference when freed.
 *   6. Futures returned by drain/flush/closed are new references, the
 *      caller's.  A write copies every byte it does not send at once: the
 *      caller's memory need only live for the call.  Except
 *      as_transport_write_owned(): its buffer is the transport's until the
 *      release hook runs.
 *
 * Threads: a transport belongs to its loop's thread.
 */
#ifndef AS_TRANSPORT_H
#define AS_TRANSPORT_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "loop.h"
#include "future.h"
#include "reader.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct as_transport as_transport;

/** CPython's default write-buffer high-water mark: 64 KiB (low = high / 4). */
#define AS_TRANSPORT_DEFAULT_HIGH_WATER 65536

/**
 * Wrap a connected stream socket.  The fd is made non-blocking and
 * close-on-exec, gets TCP_NODELAY when it is TCP (as CPython does) and
 * SO_NOSIGPIPE where that exists; it starts being read at once.
 * Returns 0 and stores the transport in *out, or:
 *   AS_EINVAL (NULL loop/reader/out, fd < 0), AS_EFDSETSIZE (fd too large for
 *   the loop's backend), AS_ECLOSED (loop closed), -ENOMEM, or a negated
 *   errno from fcntl/setsockopt.  On every failure the fd is closed.
 */
int as_transport_new(as_loop *loop, int fd, as_reader *reader,
                     as_transport **out);

/** Add a reference; returns t. */
as_transport *as_transport_ref(as_transport *t);

/** Drop a reference (see lifetime rules 3 and 4).  NULL is ignored. */
void as_transport_unref(as_transport *t);

/** The transport's loop. */
as_loop *as_transport_loop(const as_transport *t);

/** The transport's reader (no new reference). */
as_reader *as_transport_reader(const as_transport *t);

/**
 * Write len bytes.  Never blocks: what cannot be sent now is copied into the
 * write queue.  len == 0 is a no-op (after the state checks).  Returns 0 or
 * the error of the table above; AS_EINVAL if data is NULL and len > 0;
 * -ENOMEM if the queue could not grow (see as_transport_writelines()).
 */
int as_transport_write(as_transport *t, const void *data, size_t len);

/**
 * Write several buffers as one (CPython's writelines()).  When the queue is
 * empty they go out in one sendmsg().  Returns as as_transport_write().  If
 * the queue cannot grow after some bytes were already sent, the stream is no
 * longer consistent: the transport is aborted with -ENOMEM as its error.
 */
int as_transport_writelines(as_transport *t, const struct iovec *iov,
                            int iovcnt);

/**
 * Write len bytes without copying them: the transport keeps a pointer to
 * data and calls release(owner) exactly once, when every byte has been
 * handed to the kernel or dropped (abort, a lost connection, the transport
 * freed).  That may be before this call returns, if the kernel takes them
 * all at once.  Until then the caller must not change the bytes.  len == 0
 * releases at once.  Returns as as_transport_write(), and AS_EINVAL if
 * release is NULL; on failure release is not called and owner stays the
 * caller's.  (A binding hands over its language's bytes object this way;
 * as_writer_write_bytes() hands over a read's result.)
 */
int as_transport_write_owned(as_transport *t, const void *data, size_t len,
                             void *owner, as_destroy_fn release);

/**
 * Half-close: send FIN once every queued byte is out (at once if none is).
 * Reading goes on.  Idempotent.  Returns 0 or the error of the table above.
 */
int as_transport_write_eof(as_transport *t);

/** True once write_eof() was called. */
int as_transport_eof_written(const as_transport *t);

/** Sockets can always half-close: returns 1. */
int as_transport_can_write_eof(const as_transport *t);

/**
 * Stop reading, send every queued byte, then close the fd (FIN) and give the
 * reader EOF.  Idempotent; returns at once (the flush continues on the loop).
 */
void as_transport_close(as_transport *t);

/**
 * close() with a deadline (beyond CPython, whose close() may flush for
 * ever to a peer that does not read): if the queue has not gone out within
 * `seconds`, the transport is aborted as by as_transport_abort(): the rest
 * is dropped, the peer gets a reset, and the reader EOF.  So the fd is
 * closed, and wait_closed finishes, by the deadline whatever the peer does.
 * seconds <= 0 aborts at once unless close() could flush everything
 * immediately.  On a transport already closing, it adds the deadline
 * (once; a second deadline is ignored).  No-op once closed.  To learn what
 * was dropped, compare as_transport_bytes_sent() with what was written, or
 * await as_transport_flush() (it fails with AS_ECONNLOST).
 */
void as_transport_close_within(as_transport *t, double seconds);

/**
 * Close at once: drop the queue, close with SO_LINGER 0 so the peer sees a
 * reset, and give the reader EOF (as CPython's abort()).  Idempotent.
 */
void as_transport_abort(as_transport *t);

/** True once close() or abort() was called or the connection was lost. */
int as_transport_is_closing(const as_transport *t);

/**
 * The stored error (a negative code) once the connection was lost to an
 * error, else 0.  If message is not NULL it receives the error's message or
 * NULL (valid while the transport lives).
 */
int as_transport_error(const as_transport *t, const char **message);

/**
 * A future that finishes (result NULL) when the queue is at or below the
 * low-water mark, or at once if it is not above the high-water mark (then it
 * is a new reference to one finished future the transport keeps for this:
 * no allocation per call, and a finished future cannot change).  Fails
 * with the stored error if the connection is lost to an error; finishes
 * normally on a clean close/abort.  Any number may wait; all are woken.
 * This is CPython's FlowControlMixin._drain_helper; StreamWriter.drain()
 * adds its checks on top (writer.h).  NULL only on allocation failure.
 */
as_future *as_transport_wait_writable(as_transport *t);

/**
 * Full flush, beyond CPython: a future that finishes once every byte written
 * so far has been handed to the kernel (the queue is empty).  Fails with the
 * stored error, or AS_ECONNLOST if abort() dropped queued bytes.
 * NULL only on allocation failure.
 */
as_future *as_transport_flush(as_transport *t);

/**
 * A future that finishes when the fd has been closed: result NULL after a
 * clean close/abort, the stored error after an error.  New reference.
 * NULL only on allocation failure.
 */
as_future *as_transport_closed(as_transport *t);

/** Bytes in the write queue, not yet handed to the kernel. */
size_t as_transport_get_write_buffer_size(const as_transport *t);

/** The write-buffer limits: *high and *low (either may be NULL). */
void as_transport_get_write_buffer_limits(const as_transport *t, size_t *high,
                                          size_t *low);

/**
 * Set the limits, CPython's way: high < 0 means 64 KiB (or 4 x low when low
 * is given), low < 0 means high / 4.  Returns AS_EINVAL unless
 * high >= low >= 0 after that; then checks the pause state again at once.
 */
int as_transport_set_write_buffer_limits(as_transport *t, long long high,
                                         long long low);

/** Bytes the kernel has accepted so far (beyond CPython): after an error,
 *  exactly this prefix of what was written may have been delivered. */
unsigned long long as_transport_bytes_sent(const as_transport *t);

/** Bytes given to write()/writelines() and accepted (sent or queued). */
unsigned long long as_transport_bytes_written(const as_transport *t);

/** The fd (still owned by the transport), or -1 once closed. */
int as_transport_fd(const as_transport *t);

/**
 * The peer's address (CPython's get_extra_info('peername')): copies it into
 * *addr, sets *len, returns 0; or a negated errno (-ENOTCONN...), or
 * AS_ECLOSED after the fd was closed.  The address is cached when the
 * transport is created, so it stays available after close.
 */
int as_transport_peername(const as_transport *t, struct sockaddr_storage *addr,
                          socklen_t *len);

/** Our own address (get_extra_info('sockname')); as as_transport_peername(). */
int as_transport_sockname(const as_transport *t, struct sockaddr_storage *addr,
                          socklen_t *len);

/**
 * Write coalescing (on by default).  On: a write smaller than 16 KiB made
 * while the queue is empty is queued and sent by one call at the end of the
 * loop turn (as_loop_call_end_of_turn()) together with every other write of
 * the turn, so a pipelined protocol pays one send() per turn instead of one
 * per write, and a lone reply still leaves in the turn it was written.
 * Off: every write tries send() at once, as CPython does (lower latency for
 * a lone small reply, more system calls under pipelining).  bench/bulk_lines
 * measures both.
 */
void as_transport_set_coalescing(as_transport *t, int on);

/** True while reading is paused (by the reader's flow control). */
int as_transport_is_reading_paused(const as_transport *t);

#ifdef __cplusplus
}
#endif
#endif /* AS_TRANSPORT_H */
