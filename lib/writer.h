/*
 * writer.h - StreamWriter: the write side of a connection, with
 * backpressure.
 *
 * A writer is a thin layer over a transport of any kind (the interface in
 * transport.h) and the reader of the same connection, as CPython's
 * StreamWriter is: write(), writelines(),
 * write_eof(), close() and the buffer limits go straight to the transport;
 * drain() adds the checks that make a write loop stop on errors.
 *
 * Backpressure (CPython 3.13, defaults in brackets):
 *
 *   write buffer size  > high water [64 KiB]  -> writing is "paused":
 *                                                drain() waits
 *   write buffer size <= low water  [16 KiB]  -> resumed: every waiting
 *                                                drain() finishes
 *
 * write() never blocks and never refuses bytes because of the limits: the
 * limits only decide when drain() waits.  Call drain() after writing, so a
 * fast producer waits for a slow peer instead of filling memory.
 *
 * drain() returns a future; it fails, in this order:
 *   1. with the reader's stored exception, if there is one (CPython: the
 *      reader's error wins; a peer reset shows up here at once);
 *   2. with the transport's stored error (a send error seen by a write);
 *   3. with AS_ECONNLOST "Connection lost" once close() or abort() was
 *      called (CPython: ConnectionResetError('Connection lost'));
 * otherwise it finishes at once below the high-water mark, or waits until
 * the buffer is at or below the low-water mark (or the connection ends:
 * normally on a clean close, with the error otherwise).  Any number of
 * drains may wait at once; all are woken.
 *
 * Method x state: write, writelines, write_eof, close and flush answer as
 * the transport's table says (transport.h; flush and drain first fail with
 * the reader's exception, as above); the writer adds one row:
 *
 *   call         OPEN      EOF written  CLOSING/CLOSED  LOST (error e)
 *   drain        0/waits   0/waits      AS_ECONNLOST    e
 * (CPython silently drops a write after close(); here the caller is told.)
 *
 * Lifetimes:
 *   1. as_writer_new() returns a writer with one reference, the caller's;
 *      as_writer_ref()/as_writer_unref() count them.  The writer holds a
 *      reference to its transport and to its reader.
 *   2. When the last reference goes while the transport is still open, the
 *      writer closes it (flushing, as CPython's StreamWriter.__del__ does)
 *      and reports "unclosed StreamWriter" to the loop's exception handler.
 *      Close it yourself first.
 *   3. Futures returned by drain(), flush() and wait_closed() are new
 *      references, the caller's; their result is NULL.
 *
 * Threads: a writer belongs to its loop's thread.
 *
 * Conventions (asyncstreams.h): writers are refcounted, and a NULL writer
 * gets the answers a NULL transport gets (transport.h): is_closing 1, fd
 * -1, drain/flush/wait_closed NULL, and as_writer_write_bytes() frees its
 * bytes.
 */
#ifndef AS_WRITER_H
#define AS_WRITER_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "loop.h"
#include "future.h"
#include "reader.h"
#include "transport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct as_writer as_writer;

/**
 * Make a writer for transport, whose reader is reader (may be NULL: drain
 * then skips the reader check).  Returns 0 and stores it in *out;
 * AS_EINVAL (NULL transport/out), -ENOMEM, with *out set to NULL.
 */
int as_writer_new(as_transport *transport, as_reader *reader, as_writer **out);

/** Add a reference; returns w. */
as_writer *as_writer_ref(as_writer *w);

/** Drop a reference (see lifetime rule 2).  NULL is ignored. */
void as_writer_unref(as_writer *w);

/** The transport (no new reference). */
as_transport *as_writer_transport(const as_writer *w);

/** The reader given to as_writer_new() (no new reference), or NULL. */
as_reader *as_writer_reader(const as_writer *w);

/** The loop. */
as_loop *as_writer_loop(const as_writer *w);

/** write(data): see as_transport_write() and the table above. */
int as_writer_write(as_writer *w, const void *data, size_t len);

/**
 * write(data) of a read's result without copying it: the writer takes
 * `bytes` whatever this returns (freed at once on failure), so the caller
 * must not touch it afterwards.  Once sent, the block goes to this
 * connection's reader, which puts its next result in it if it fits, so an
 * echo server's bytes go round without a copy on the way out and without a
 * malloc() per read.  Any as_bytes will do (buffer.h, rule 3).
 */
int as_writer_write_bytes(as_writer *w, as_bytes *bytes);

/** See as_transport_write_owned(): write without copying, release later. */
int as_writer_write_owned(as_writer *w, const void *data, size_t len,
                          void *owner, as_destroy_fn release);

/** writelines(buffers): one write of all the buffers, in order. */
int as_writer_writelines(as_writer *w, const struct iovec *iov, int iovcnt);

/** write_eof(): FIN after the queued bytes; reading goes on. */
int as_writer_write_eof(as_writer *w);

/** can_write_eof(): as as_transport_can_write_eof(). */
int as_writer_can_write_eof(const as_writer *w);

/** close(): flush, then close.  Idempotent. */
void as_writer_close(as_writer *w);

/** close() with a deadline, beyond CPython: see as_transport_close_within(). */
void as_writer_close_within(as_writer *w, double seconds);

/** abort(): drop the queue and reset the connection.  Idempotent. */
void as_writer_abort(as_writer *w);

/** is_closing(). */
int as_writer_is_closing(const as_writer *w);

/**
 * drain(): see the top of this file.  Returns a new future (already done
 * when it need not wait); NULL only on allocation failure.
 */
as_future *as_writer_drain(as_writer *w);

/**
 * Full flush (beyond CPython): finishes once every byte written so far has
 * been handed to the kernel.  Fails as as_transport_flush() does, and first
 * with the reader's exception as drain() does.
 */
as_future *as_writer_flush(as_writer *w);

/**
 * wait_closed(): finishes (NULL) once the connection is closed cleanly, or
 * fails with its error.  Does not close anything itself; may be called any
 * number of times.
 */
as_future *as_writer_wait_closed(as_writer *w);

/** get_extra_info('peername'): see as_transport_peername(). */
int as_writer_peername(const as_writer *w, struct sockaddr_storage *addr,
                       socklen_t *len);

/** get_extra_info('sockname'): see as_transport_sockname(). */
int as_writer_sockname(const as_writer *w, struct sockaddr_storage *addr,
                       socklen_t *len);

/** get_extra_info('socket'): the fd, still owned by the transport; -1 once
 *  closed. */
int as_writer_fd(const as_writer *w);

/** transport.get_write_buffer_size(). */
size_t as_writer_get_write_buffer_size(const as_writer *w);

/** transport.get_write_buffer_limits(). */
void as_writer_get_write_buffer_limits(const as_writer *w, size_t *high,
                                       size_t *low);

/** transport.set_write_buffer_limits(high, low); < 0 means None. */
int as_writer_set_write_buffer_limits(as_writer *w, long long high,
                                      long long low);

/** Bytes handed to the kernel so far (see as_transport_bytes_sent()). */
unsigned long long as_writer_bytes_sent(const as_writer *w);

#ifdef __cplusplus
}
#endif
#endif /* AS_WRITER_H */
