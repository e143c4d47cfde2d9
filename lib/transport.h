/*
 * transport.h - the transport interface: what a StreamReader and a
 * StreamWriter need from the thing that moves their bytes.
 *
 * A transport owns one byte stream (a socket, later a TLS session over
 * another transport, or a pipe).  It feeds what arrives into its reader
 * (data, EOF, or an error), and takes writes that never block: what cannot
 * go out at once is queued and sent later.  The calls below work on every
 * transport; each kind implements them through one table of operations
 * (as_transport_ops, at the end of this file), the way libevent's
 * bufferevents and asyncio's Transport classes do, so the reader, the
 * writer, servers and connections never know which kind they hold.  The
 * socket transport (socket_transport.h) is the first implementation.
 *
 * States, the same for every kind (CPython's transports, made explicit):
 *
 *      OPEN --close()--> CLOSING --queue empty--> CLOSED   (clean: reader EOF)
 *        |                  |
 *        |--abort()---------+---------------------> CLOSED   (RST, queue dropped)
 *        |                  +--close_within()'s --> CLOSED   (RST, queue dropped)
 *        |                  |  deadline
 *        +--send/recv error-+---------------------> LOST     (error stored)
 *
 *   write_eof() in OPEN half-closes once the queue is empty; reading goes
 *   on.  The peer's EOF feeds EOF to the reader; writing stays open.
 *   Whatever the transport holds (an fd, a session) is released on
 *   entering CLOSED or LOST, synchronously: no extra loop turn is needed.
 *
 * Errors: the first send/receive error is stored.  It becomes the reader's
 * exception (clean EOF instead keeps buffered data readable), every later
 * write returns it, drain waiters and flush waiters fail with it, and the
 * closed future fails with it.  It is returned as a value, never logged, so
 * a write loop against a dead peer produces no flood of reports.
 *
 * What each call returns in each state (one documented answer per method x
 * state; writer.h adds the row of its own drain()):
 *
 *   call          OPEN        EOF written    CLOSING/CLOSED   LOST (error e)
 *   write         0           AS_ESTATE      AS_ECLOSED       e
 *   writelines    0           AS_ESTATE      AS_ECLOSED       e
 *   write_eof     0           0 (no-op)      AS_ECLOSED       e
 *   close/abort   0           0              0 (no-op)        0 (no-op)
 *   flush         0/waits     0/waits        waits / 0 *      e
 *   (flush: 0 at once when nothing is queued; * AS_ECONNLOST once CLOSED if
 *   abort() or close_within() dropped queued bytes.)
 *
 * Conventions (asyncstreams.h): transports are refcounted, and a NULL
 * transport gets the NULL answers listed there: AS_EINVAL, 0 or NULL,
 * is_closing 1 and fd -1 (it looks closed); as_transport_write_bytes()
 * frees its bytes.  as_transport_init() is for implementations and
 * refuses NULL arguments with AS_EINVAL.
 *
 * Lifetimes:
 *   1. A constructor (as_socket_transport_new()...) returns a transport with
 *      one reference, the caller's; as_transport_ref()/as_transport_unref()
 *      count references.  The transport holds a loop object reference
 *      (loop.h, rule 1).
 *   2. The transport owns what it was made over (an fd, an inner
 *      transport) from the constructor on, even when that fails.
 *   3. While close() is flushing the queue, the transport holds a reference
 *      to itself, so dropping yours right after close() is safe: the bytes
 *      still go out.  That reference ends when it reaches CLOSED or LOST.
 *   4. If the last reference is dropped in OPEN, the transport is closed at
 *      once without flushing (CPython's "unclosed transport") and the
 *      reader gets EOF.  Close it first.
 *   5. The transport holds a reference to its reader and installs the
 *      reader's flow-control hooks (as_reader_set_flow_control()), which
 *      pause and resume its reading; they are removed when it reaches
 *      CLOSED/LOST, and the reference is dropped when it is freed.
 *   6. Futures returned by drain/flush/closed are new references, the
 *      caller's.  A write copies every byte it does not send at once: the
 *      caller's memory need only live for the call.  Except
 *      as_transport_write_owned() and as_transport_write_bytes(): their
 *      buffer is the transport's from the call on.
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
typedef struct as_transport_ops as_transport_ops;

/** CPython's default write-buffer high-water mark: 64 KiB (low = high / 4). */
#define AS_TRANSPORT_DEFAULT_HIGH_WATER 65536

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
 * Write several buffers as one (CPython's writelines()), without joining
 * them first: a socket transport that sends at once hands them to the
 * kernel in one sendmsg() (socket_transport.h says when it waits for the
 * end of the turn instead).  Returns as as_transport_write().  If
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
 * Write a read's result without copying it: the transport owns bytes from
 * this call on, whatever it returns, and frees it once sent (a socket
 * transport gives the block back to its reader for the next result, so an
 * echo's bytes go round in one block).  Returns as as_transport_write();
 * AS_EINVAL for NULL bytes.
 */
int as_transport_write_bytes(as_transport *t, as_bytes *bytes);

/**
 * Half-close: send EOF (a socket's FIN) once every queued byte is out (at
 * once if none is).  Reading goes on.  Idempotent.  Returns 0 or the error
 * of the table above; AS_ESTATE where as_transport_can_write_eof() is false.
 */
int as_transport_write_eof(as_transport *t);

/** True once write_eof() was called. */
int as_transport_eof_written(const as_transport *t);

/** Whether write_eof() is allowed: 1 for a socket (it half-closes) and a
 *  pipe's write end (it closes, pipe.h); 0 for TLS and a pipe's read end. */
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

/**
 * Pause reading (asyncio's Transport.pause_reading()): nothing more is fed
 * to the reader until resume.  The reader's flow control calls this too.
 * Returns 0, or AS_EINVAL for NULL.
 */
int as_transport_pause_reading(as_transport *t);

/** Resume reading.  Returns 0, a negative code, or AS_EINVAL for NULL. */
int as_transport_resume_reading(as_transport *t);

/** True while reading is paused (by the reader's flow control). */
int as_transport_is_reading_paused(const as_transport *t);

/** The kind of transport: "socket", ... (its ops table's name). */
const char *as_transport_kind(const as_transport *t);

/* ------------------------------------------------------------ extra info */

/** What as_transport_get_extra_info() stores: which member is set. */
typedef enum as_extra_kind {
    AS_EXTRA_ADDRESS,   /**< u.address: a socket address */
    AS_EXTRA_INT,       /**< u.integer: a number (an fd) */
    AS_EXTRA_STRING,    /**< u.string: valid while the transport lives */
    AS_EXTRA_POINTER    /**< u.pointer: an object of the transport's (TLS) */
} as_extra_kind;

/** One value of get_extra_info(). */
typedef struct as_extra_info {
    as_extra_kind kind;
    union {
        struct {
            struct sockaddr_storage addr;
            socklen_t len;
        } address;
        long long integer;
        const char *string;
        void *pointer;
    } u;
} as_extra_info;

/**
 * asyncio's get_extra_info(name): look a key up.  The socket transport
 * knows "peername" and "sockname" (addresses, cached when it was made, so
 * they stay available after close) and "fd" (-1 once closed); a transport
 * layered over another (TLS) adds its own keys and asks the inner one for
 * the rest.  Returns 0 and fills *out, AS_ENOKEY for a key this transport
 * does not have (asyncio's default), a negated errno the lookup met
 * (getpeername()'s -ENOTCONN...), or AS_EINVAL for NULL arguments.
 */
int as_transport_get_extra_info(const as_transport *t, const char *key,
                                as_extra_info *out);

/**
 * get_extra_info('peername') as a socket address: copies it into *addr,
 * sets *len, returns 0; or as as_transport_get_extra_info().
 */
int as_transport_peername(const as_transport *t, struct sockaddr_storage *addr,
                          socklen_t *len);

/** Our own address (get_extra_info('sockname')); as as_transport_peername(). */
int as_transport_sockname(const as_transport *t, struct sockaddr_storage *addr,
                          socklen_t *len);

/** The fd (still owned by the transport), or -1 once closed, for NULL, or
 *  for a transport that has none. */
int as_transport_fd(const as_transport *t);

/* ------------------------------------------------------------ implementing */

/**
 * The operations a kind of transport provides.  Every public call above
 * checks its arguments (NULL, bad sizes) and then calls exactly one of
 * these, so an implementation sees only valid arguments and implements the
 * state table and lifetime rules at the top of this file.  Every field is
 * required unless it says otherwise.
 */
struct as_transport_ops {
    const char *name;  /**< "socket", "tls", "pipe" */

    /** Write iov[0..iovcnt), total bytes (total may be 0: state checks only). */
    int (*write)(as_transport *t, const struct iovec *iov, int iovcnt, size_t total);
    /** Write data[0..len) without copying; release(owner) exactly once (see
     *  as_transport_write_owned(); len may be 0). */
    int (*write_owned)(as_transport *t, const void *data, size_t len,
                       void *owner, as_destroy_fn release);
    /** Optional: write an as_bytes, owning it from the call on whatever the
     *  outcome.  NULL means write_owned() with free() as the release. */
    int (*write_bytes)(as_transport *t, as_bytes *bytes);
    int (*write_eof)(as_transport *t);
    int (*eof_written)(const as_transport *t);
    int (*can_write_eof)(const as_transport *t);

    void (*close)(as_transport *t);
    void (*close_within)(as_transport *t, double seconds);
    void (*abort)(as_transport *t);
    int (*is_closing)(const as_transport *t);
    int (*error)(const as_transport *t, const char **message);

    int (*pause_reading)(as_transport *t);
    int (*resume_reading)(as_transport *t);
    int (*is_reading_paused)(const as_transport *t);

    as_future *(*wait_writable)(as_transport *t);
    as_future *(*flush)(as_transport *t);
    as_future *(*closed)(as_transport *t);

    size_t (*write_buffer_size)(const as_transport *t);
    void (*get_write_buffer_limits)(const as_transport *t, size_t *high, size_t *low);
    /** Limits already normalised: high >= low. */
    void (*set_write_buffer_limits)(as_transport *t, size_t high, size_t low);
    unsigned long long (*bytes_sent)(const as_transport *t);
    unsigned long long (*bytes_written)(const as_transport *t);

    /** Fill *out for key, or return AS_ENOKEY. */
    int (*get_extra_info)(const as_transport *t, const char *key, as_extra_info *out);

    /** The last reference is going (lifetime rule 4): close if still open. */
    void (*last_ref)(as_transport *t);
    /** Free the implementation's own memory; the base is released after. */
    void (*destroy)(as_transport *t);
};

/**
 * The part every transport begins with.  Users treat it as opaque; an
 * implementation embeds it as the first member of its own struct.
 */
struct as_transport {
    const as_transport_ops *ops;
    as_loop *loop;
    as_reader *reader;
    unsigned refs;
};

/**
 * For implementations: set up the base (one reference, a loop object
 * reference, a reference to reader) and install the reader's flow-control
 * hooks, which call ops->pause_reading / resume_reading.  Returns 0, or
 * AS_EINVAL (NULL argument), AS_ECLOSED (loop closed) with nothing taken.
 */
int as_transport_init(as_transport *t, const as_transport_ops *ops,
                      as_loop *loop, as_reader *reader);

#ifdef __cplusplus
}
#endif
#endif /* AS_TRANSPORT_H */
