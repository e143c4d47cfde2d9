/*
 * pipe_transport.c - the transports over a pipe, a FIFO or a character
 * device (pipe.h): one module for both ends, behind one ops table
 * (pipe_ops, near the end), the second implementation of the transport
 * interface over an fd.  States and contracts are transport.h's.
 *
 * It is the socket transport's shape with less in it, and reuses its
 * parts rather than copying them: the write queue (writeq.h) and the
 * waiter lists of drains and flushes (waiters.h).
 *
 *   - One struct for both ends; `writing` says which.  A read end never
 *     queues a byte, so its write-side calls answer from an empty queue.
 *   - Reading: one read() per readiness straight into the reader's buffer
 *     (as_reader_feed_reserve/commit), as the socket transport's recv().
 *     read() == 0 is EOF, and a pipe's EOF is also its end: the reader
 *     gets EOF and the transport closes (CPython's read pipe transport).
 *   - Writing: write() or writev() at once when nothing is queued, the rest
 *     copied (or adopted, for write_owned) into the queue and written when
 *     the fd is writable.  No coalescing at the end of the turn: a pipe's
 *     writes are rarely the small pipelined replies that pays for.  Every
 *     write runs with SIGPIPE blocked (write_nosigpipe(); pipe.h says why).
 *   - The peer: a FIFO's write end is watched for readability, which the
 *     kernel reports (as POLLERR) when the read end has closed; the
 *     transport is then LOST with -EPIPE.
 *   - Closing: close() lets the queue out and then closes the fd;
 *     write_eof() is close() on a pipe; abort(), a close_within()
 *     deadline, EOF and errors tear down at once.  Teardown clears the
 *     O_NONBLOCK this transport set, then closes the fd (pipe.h).
 */
#include "pipe.h"
#include "errors.h"
#include "internal.h"
#include "sock.h"
#include "waiters.h"
#include "writeq.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 16 /* _XOPEN_IOV_MAX, the smallest POSIX allows */
#endif

/* read() asks for at least this much room (a pipe holds 64 KiB on Linux),
 * and takes at most MAX_READ. */
#define READ_WANT 65536
#define MAX_READ (256 * 1024)
/* Pieces handed to one writev() from the queue. */
#define FLUSH_IOV 64
/* After a burst, give back queue storage bigger than this once it empties. */
#define QUEUE_KEEP (256 * 1024)

enum pipe_state { PIPE_OPEN, PIPE_CLOSING, PIPE_CLOSED, PIPE_LOST };

typedef struct pipe_transport {
    as_transport base;            /* first: an as_transport * is one of these */
    int fd;
    enum pipe_state state;

    unsigned int writing : 1;     /* the write end; else the read end */
    unsigned int set_nonblock : 1;/* we set O_NONBLOCK: clear it on close */
    unsigned int reading : 1;     /* a read watcher is registered (read end) */
    unsigned int watch_peer : 1;  /* a read watcher for the peer's close */
    unsigned int read_paused : 1; /* the reader asked us to pause */
    unsigned int want_write : 1;  /* a write watcher is registered */
    unsigned int write_paused : 1;/* queue went above high water */
    unsigned int eof_wanted : 1;  /* write_eof() called */
    unsigned int self_ref : 1;    /* transport.h, lifetime rule 3 */
    unsigned int dropped : 1;     /* abort() dropped queued bytes */

    as__writeq queue;             /* bytes written but not yet sent */
    size_t high, low;             /* write-buffer watermarks */
    unsigned long long sent;      /* bytes the pipe accepted */
    unsigned long long written;   /* bytes accepted by write() */

    int err;                      /* the first error, or 0 */
    char *err_msg;                /* its message, or NULL for as_strerror */

    as__waiters drain, flushw;    /* waiting drains and flushes */
    as_future *closed;
    as_future *ready;             /* finished, shared by drains that need not wait */
    as_handle *close_timer;       /* close_within()'s deadline, while CLOSING */
} pipe_transport;

static const as_transport_ops pipe_ops;

static pipe_transport *pipe_of(as_transport *t) { return (pipe_transport *)t; }
static const pipe_transport *cpipe_of(const as_transport *t)
{
    return (const pipe_transport *)t;
}

static void pipe_ref(pipe_transport *t) { t->base.refs++; }
static void pipe_unref(pipe_transport *t) { as_transport_unref(&t->base); }

/* Give the fd's open file description back its blocking mode (pipe.h),
 * if we changed it.  Best effort: nothing can be done if fcntl() fails. */
static void restore_blocking(pipe_transport *t)
{
    int flags;
    if (!t->set_nonblock || t->fd < 0)
        return;
    t->set_nonblock = 0;
    if ((flags = fcntl(t->fd, F_GETFL)) >= 0)
        (void)fcntl(t->fd, F_SETFL, flags & ~O_NONBLOCK);
}

/* ------------------------------------------------------------ lifetime */

static void pipe_destroy(as_transport *base)
{
    pipe_transport *t = pipe_of(base);
    if (t->closed)
        (void)as_future_error(t->closed); /* not an unhandled error */
    as_future_unref(t->closed);
    as_future_unref(t->ready);
    as__writeq_clear(&t->queue);
    as__waiters_free(&t->drain, NULL); /* teardown normally woke them */
    as__waiters_free(&t->flushw, NULL);
    free(t->err_msg);
    free(t);
}

/*
 * Enter CLOSED (err == 0) or LOST (err < 0), releasing the fd and waking
 * every waiter, synchronously; idempotent.  No user callback runs:
 * finishing futures only schedules their callbacks.
 */
static void teardown(pipe_transport *t, int err, const char *msg)
{
    int self_ref = t->self_ref;

    if (t->state == PIPE_CLOSED || t->state == PIPE_LOST)
        return;
    t->state = err ? PIPE_LOST : PIPE_CLOSED;
    if (err) {
        t->err = err;
        if (msg)
            t->err_msg = as__strdup(msg); /* NULL on ENOMEM: as_strerror() then */
    }
    if (t->reading || t->watch_peer)
        as_loop_remove_reader(t->base.loop, t->fd);
    if (t->want_write)
        as_loop_remove_writer(t->base.loop, t->fd);
    t->reading = t->watch_peer = t->want_write = 0;
    if (t->close_timer) {
        as_handle_cancel(t->close_timer);
        as_handle_unref(t->close_timer);
        t->close_timer = NULL;
    }
    restore_blocking(t);
    (void)close(t->fd); /* never retried after EINTR: see socket_transport.c */
    t->fd = -1;
    if (as__writeq_len(&t->queue) > 0)
        t->dropped = 1;
    as__writeq_clear(&t->queue);

    (void)as_reader_set_flow_control(t->base.reader, NULL, NULL, NULL, NULL);
    if (!err || as_reader_set_exception(t->base.reader, err, t->err_msg) < 0)
        as_reader_feed_eof(t->base.reader);

    t->write_paused = 0;
    as__waiters_wake_all(&t->drain, err, t->err_msg);
    if (err)
        as__waiters_wake_all(&t->flushw, err, t->err_msg);
    else if (t->dropped)
        as__waiters_wake_all(&t->flushw, AS_ECONNLOST,
                             "Connection lost: queued bytes were dropped by abort()");
    else
        as__waiters_wake_all(&t->flushw, 0, NULL);

    if (err)
        (void)as_future_set_error(t->closed, err, t->err_msg);
    else
        (void)as_future_set_result(t->closed, NULL, NULL);

    if (self_ref) {
        t->self_ref = 0;
        pipe_unref(t);
    }
}

static void fatal(pipe_transport *t, int err)
{
    teardown(t, err, NULL);
}

/* transport.h, lifetime rule 4: dropped while open, closed unflushed. */
static void pipe_last_ref(as_transport *base)
{
    pipe_transport *t = pipe_of(base);
    if (t->state == PIPE_OPEN)
        teardown(t, 0, NULL);
}

/* ------------------------------------------------------------ writing */

/*
 * write()/writev() with SIGPIPE blocked on this thread (pipe.h): a
 * SIGPIPE the call raised is taken back with sigwait() before the old mask
 * returns.  Returns the bytes written or -1 with errno set, as writev().
 */
static ssize_t write_nosigpipe(int fd, const struct iovec *iov, int cnt)
{
    sigset_t pipe_only, old, pending;
    int blocked_before, was_pending = 0, saved, sig;
    ssize_t n;

    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    if ((saved = pthread_sigmask(SIG_BLOCK, &pipe_only, &old)) != 0) {
        errno = saved;
        return -1;
    }
    blocked_before = sigismember(&old, SIGPIPE) == 1;
    if (blocked_before && sigpending(&pending) == 0)
        was_pending = sigismember(&pending, SIGPIPE) == 1;
    do
        n = cnt == 1 ? write(fd, iov[0].iov_base, iov[0].iov_len) : writev(fd, iov, cnt);
    while (n < 0 && errno == EINTR);
    saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE) == 1)
        (void)sigwait(&pipe_only, &sig);
    if (!blocked_before)
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return n;
}

/* Pause/resume writing after every change of the queue size. */
static void check_watermarks(pipe_transport *t)
{
    size_t size = as__writeq_len(&t->queue);
    if (!t->write_paused && size > t->high)
        t->write_paused = 1;
    else if (t->write_paused && size <= t->low) {
        t->write_paused = 0;
        as__waiters_wake_all(&t->drain, 0, NULL);
    }
}

static void flush_queue(pipe_transport *t);

static void on_writable(void *p)
{
    pipe_transport *t = p;
    pipe_ref(t);
    flush_queue(t);
    pipe_unref(t);
}

static void watch_writable(pipe_transport *t)
{
    int err;
    if (t->want_write)
        return;
    /* A tty's write end meets the loop's fd limit here (pipe.h). */
    if ((err = as_loop_add_writer(t->base.loop, t->fd, on_writable, t, NULL)) < 0)
        fatal(t, err);
    else
        t->want_write = 1;
}

/* The queue just emptied: stop watching; close if close() was waiting. */
static void queue_empty(pipe_transport *t)
{
    if (t->want_write) {
        as_loop_remove_writer(t->base.loop, t->fd);
        t->want_write = 0;
    }
    as__writeq_trim(&t->queue, QUEUE_KEEP);
    as__waiters_wake_all(&t->flushw, 0, NULL);
    if (t->state == PIPE_CLOSING)
        teardown(t, 0, NULL);
}

static void flush_queue(pipe_transport *t)
{
    struct iovec iov[FLUSH_IOV];
    int cnt = as__writeq_iov(&t->queue, iov, FLUSH_IOV < IOV_MAX ? FLUSH_IOV : IOV_MAX);
    ssize_t n;

    if (cnt > 0) {
        n = write_nosigpipe(t->fd, iov, cnt);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fatal(t, -errno);
                return;
            }
            n = 0;
        }
        t->sent += (unsigned long long)n;
        as__writeq_consume(&t->queue, (size_t)n);
        /* A release hook (a binding's) may have run code that closed us. */
        if (t->state == PIPE_CLOSED || t->state == PIPE_LOST)
            return;
    }
    check_watermarks(t);
    if (as__writeq_len(&t->queue) == 0)
        queue_empty(t);
    else
        watch_writable(t);
}

/* Hand the caller's buffers to the pipe now, IOV_MAX at a time, until it
 * takes less than offered; *done gets what it took.  0 or -errno. */
static int write_now(pipe_transport *t, const struct iovec *iov, int iovcnt,
                     size_t *done)
{
    int first = 0, i;

    *done = 0;
    while (first < iovcnt) {
        ssize_t n;
        size_t want = 0;
        int cnt = iovcnt - first > IOV_MAX ? IOV_MAX : iovcnt - first;
        for (i = 0; i < cnt; i++)
            want += iov[first + i].iov_len;
        n = write_nosigpipe(t->fd, &iov[first], cnt);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        *done += (size_t)n;
        t->sent += (unsigned long long)n;
        if ((size_t)n < want)
            break;
        first += cnt;
    }
    return 0;
}

static int write_state_error(const pipe_transport *t)
{
    if (!t->writing)
        return AS_ESTATE; /* a read end cannot write (pipe.h) */
    if (t->err)
        return t->err;
    if (t->eof_wanted)
        return AS_ESTATE;
    if (t->state != PIPE_OPEN)
        return AS_ECLOSED;
    return 0;
}

/*
 * The one write path, behind write, writelines and write_owned: the pipe
 * gets the caller's buffers at once when nothing is queued, and only what
 * it refuses is queued (copied, or adopted when release is set: one
 * buffer).  State checked; total > 0.
 */
static int write_iov(pipe_transport *t, const struct iovec *iov, int iovcnt,
                     size_t total, void *owner, as_destroy_fn release)
{
    size_t done = 0, skip;
    int i, err = 0;

    pipe_ref(t);
    if (as__writeq_len(&t->queue) == 0 && !t->want_write)
        err = write_now(t, iov, iovcnt, &done);
    if (err == 0 && release) {
        if (done == total)
            as__writeq_release(&t->queue, owner, release);
        else
            err = as__writeq_adopt(&t->queue, (const unsigned char *)iov[0].iov_base + done,
                                   total - done, owner, release);
    } else if (err == 0) {
        for (i = 0, skip = done; i < iovcnt && err == 0; i++) {
            size_t len = iov[i].iov_len;
            if (skip >= len) {
                skip -= len;
                continue;
            }
            err = as__writeq_copy(&t->queue, (const unsigned char *)iov[i].iov_base + skip,
                                  len - skip);
            skip = 0;
        }
    }
    if (err < 0) {
        /* A write error (EPIPE: the read end is gone), or a queue that
         * cannot grow after part of the bytes went out: the stream has a
         * hole.  Either way the pipe is over. */
        fatal(t, err);
        pipe_unref(t);
        return err;
    }
    t->written += total;
    if (as__writeq_len(&t->queue) > 0) {
        check_watermarks(t);
        watch_writable(t);
    }
    pipe_unref(t);
    return 0;
}

static int pipe_write(as_transport *base, const struct iovec *iov, int iovcnt,
                      size_t total)
{
    pipe_transport *t = pipe_of(base);
    int err = write_state_error(t);
    if (err != 0)
        return err;
    if (total == 0)
        return 0;
    return write_iov(t, iov, iovcnt, total, NULL, NULL);
}

static int pipe_write_owned(as_transport *base, const void *data, size_t len,
                            void *owner, as_destroy_fn release)
{
    pipe_transport *t = pipe_of(base);
    struct iovec iov;
    int err;

    if ((err = write_state_error(t)) != 0)
        return err;
    if (len == 0) {
        as__writeq_release(&t->queue, owner, release);
        return 0;
    }
    iov.iov_base = (void *)data;
    iov.iov_len = len;
    return write_iov(t, &iov, 1, len, owner, release);
}

static void close_flushing(pipe_transport *t);

/* A pipe has no half-close: EOF for the reader is the write end closing,
 * so write_eof() is close() that remembers it was asked (CPython's). */
static int pipe_write_eof(as_transport *base)
{
    pipe_transport *t = pipe_of(base);
    if (!t->writing)
        return AS_ESTATE;
    if (t->err)
        return t->err;
    if (t->eof_wanted)
        return 0;
    if (t->state != PIPE_OPEN)
        return AS_ECLOSED;
    t->eof_wanted = 1;
    close_flushing(t);
    return 0;
}

static int pipe_eof_written(const as_transport *t)
{
    return cpipe_of(t)->eof_wanted;
}

static int pipe_can_write_eof(const as_transport *t)
{
    return cpipe_of(t)->writing;
}

/* ------------------------------------------------------------ closing */

static void close_flushing(pipe_transport *t)
{
    if (t->state != PIPE_OPEN)
        return;
    t->state = PIPE_CLOSING;
    if (t->reading) {
        as_loop_remove_reader(t->base.loop, t->fd);
        t->reading = 0;
    }
    if (as__writeq_len(&t->queue) == 0) {
        teardown(t, 0, NULL);
        return;
    }
    /* transport.h, lifetime rule 3: stay alive until the queue is out.
     * The write watcher is registered: the queue is not empty. */
    t->self_ref = 1;
    pipe_ref(t);
}

static void pipe_close(as_transport *t)
{
    close_flushing(pipe_of(t));
}

static void pipe_abort(as_transport *t)
{
    teardown(pipe_of(t), 0, NULL);
}

static void close_deadline(void *p)
{
    pipe_transport *t = p;
    as_handle_unref(t->close_timer);
    t->close_timer = NULL;
    if (t->state == PIPE_CLOSING)
        teardown(t, 0, NULL);
}

/* As the socket transport's: the timer needs no reference, teardown
 * cancels it, and until then the flush's own reference keeps us. */
static void pipe_close_within(as_transport *base, double seconds)
{
    pipe_transport *t = pipe_of(base);
    if (t->state == PIPE_CLOSED || t->state == PIPE_LOST || t->close_timer)
        return;
    close_flushing(t);
    if (t->state != PIPE_CLOSING || isnan(seconds))
        return;
    if (seconds <= 0 ||
        as_loop_call_later(t->base.loop, seconds, close_deadline, t, NULL, &t->close_timer) < 0)
        teardown(t, 0, NULL);
}

static as_future *pipe_closed(as_transport *t)
{
    return as_future_ref(pipe_of(t)->closed);
}

static int pipe_is_closing(const as_transport *t)
{
    return cpipe_of(t)->state != PIPE_OPEN;
}

static int pipe_error(const as_transport *base, const char **message)
{
    const pipe_transport *t = cpipe_of(base);
    if (message)
        *message = t->err ? (t->err_msg ? t->err_msg : as_strerror(t->err)) : NULL;
    return t->err;
}

/* ------------------------------------------------------------ reading */

static void read_once(pipe_transport *t)
{
    size_t avail = 0;
    unsigned char *room;
    ssize_t n;

    room = as_reader_feed_reserve(t->base.reader, READ_WANT, &avail);
    if (!room) {
        /* The reader is at EOF (fed by hand) or out of memory. */
        if (as_reader_at_eof(t->base.reader) || as_reader_exception(t->base.reader, NULL)) {
            as_loop_remove_reader(t->base.loop, t->fd);
            t->reading = 0;
        } else {
            fatal(t, -ENOMEM);
        }
        return;
    }
    if (avail > MAX_READ)
        avail = MAX_READ;
    do
        n = read(t->fd, room, avail);
    while (n < 0 && errno == EINTR);

    if (n > 0)
        (void)as__reader_feed_commit_now(t->base.reader, (size_t)n);
    else if (n == 0)
        teardown(t, 0, NULL); /* EOF: the reader's, and the pipe's end */
    else if (errno != EAGAIN && errno != EWOULDBLOCK)
        fatal(t, -errno); /* EIO: a tty hung up */
}

/* The write end's read watcher: the read end has closed (pipe.h). */
static void on_peer_closed(pipe_transport *t)
{
    teardown(t, -EPIPE, NULL);
}

/* The watcher holds no reference (teardown removes it), so hold one
 * while we run: teardown may drop the last one. */
static void on_readable(void *p)
{
    pipe_transport *t = p;
    pipe_ref(t);
    if (t->writing)
        on_peer_closed(t);
    else
        read_once(t);
    pipe_unref(t);
}

static int start_reading(pipe_transport *t)
{
    int err;
    if (t->writing || t->reading || t->read_paused || t->state != PIPE_OPEN)
        return 0;
    if ((err = as_loop_add_reader(t->base.loop, t->fd, on_readable, t, NULL)) == 0)
        t->reading = 1;
    return err;
}

static int pipe_pause_reading(as_transport *base)
{
    pipe_transport *t = pipe_of(base);
    t->read_paused = 1;
    if (t->reading) {
        as_loop_remove_reader(t->base.loop, t->fd);
        t->reading = 0;
    }
    return 0;
}

static void deferred_fatal(void *p)
{
    fatal(p, -ENOMEM);
}

static void unref_cb(void *p)
{
    pipe_unref(p);
}

static int pipe_resume_reading(as_transport *base)
{
    pipe_transport *t = pipe_of(base);
    t->read_paused = 0;
    if (start_reading(t) < 0) {
        /* Cannot watch the fd again (out of memory): the reader would
         * wait for ever.  Fail from a callback (hooks must not call back
         * into the reader); if even that cannot be scheduled, give up. */
        pipe_ref(t);
        if (as_loop_call_soon(t->base.loop, deferred_fatal, t, unref_cb, NULL) < 0)
            t->base.refs--; /* the caller holds a reference */
    }
    return 0;
}

static int pipe_is_reading_paused(const as_transport *t)
{
    return cpipe_of(t)->read_paused;
}

/* ------------------------------------------------------------ the rest */

static as_future *finished_future(as_loop *loop)
{
    as_future *f;
    if (as_future_new(loop, &f) == 0)
        (void)as_future_set_result(f, NULL, NULL);
    return f;
}

static as_future *pipe_wait_writable(as_transport *base)
{
    pipe_transport *t = pipe_of(base);
    if (t->err)
        return as__future_failed(t->base.loop, t->err, t->err_msg);
    if (t->write_paused)
        return as__waiters_add(&t->drain, t->base.loop);
    if (!t->ready && !(t->ready = finished_future(t->base.loop)))
        return NULL;
    return as_future_ref(t->ready);
}

static as_future *pipe_flush(as_transport *base)
{
    pipe_transport *t = pipe_of(base);
    if (t->err)
        return as__future_failed(t->base.loop, t->err, t->err_msg);
    if (t->dropped)
        return as__future_failed(t->base.loop, AS_ECONNLOST,
                                 "Connection lost: queued bytes were dropped by abort()");
    if (as__writeq_len(&t->queue) == 0)
        return finished_future(t->base.loop);
    return as__waiters_add(&t->flushw, t->base.loop);
}

static size_t pipe_write_buffer_size(const as_transport *t)
{
    return as__writeq_len(&cpipe_of(t)->queue);
}

static void pipe_get_write_buffer_limits(const as_transport *base, size_t *high,
                                         size_t *low)
{
    *high = cpipe_of(base)->high;
    *low = cpipe_of(base)->low;
}

static void pipe_set_write_buffer_limits(as_transport *base, size_t high, size_t low)
{
    pipe_transport *t = pipe_of(base);
    t->high = high;
    t->low = low;
    check_watermarks(t);
}

static unsigned long long pipe_bytes_sent(const as_transport *t)
{
    return cpipe_of(t)->sent;
}

static unsigned long long pipe_bytes_written(const as_transport *t)
{
    return cpipe_of(t)->written;
}

/* "pipe" and "fd": the fd, -1 once closed.  No addresses. */
static int pipe_get_extra_info(const as_transport *base, const char *key,
                               as_extra_info *out)
{
    if (strcmp(key, "pipe") != 0 && strcmp(key, "fd") != 0)
        return AS_ENOKEY;
    out->kind = AS_EXTRA_INT;
    out->u.integer = cpipe_of(base)->fd;
    return 0;
}

/* write_bytes is left to the interface (write_owned with free()): the
 * reader of a write end never holds a read's result to recycle into. */
static const as_transport_ops pipe_ops = {
    .name = "pipe",
    .write = pipe_write,
    .write_owned = pipe_write_owned,
    .write_eof = pipe_write_eof,
    .eof_written = pipe_eof_written,
    .can_write_eof = pipe_can_write_eof,
    .close = pipe_close,
    .close_within = pipe_close_within,
    .abort = pipe_abort,
    .is_closing = pipe_is_closing,
    .error = pipe_error,
    .pause_reading = pipe_pause_reading,
    .resume_reading = pipe_resume_reading,
    .is_reading_paused = pipe_is_reading_paused,
    .wait_writable = pipe_wait_writable,
    .flush = pipe_flush,
    .closed = pipe_closed,
    .write_buffer_size = pipe_write_buffer_size,
    .get_write_buffer_limits = pipe_get_write_buffer_limits,
    .set_write_buffer_limits = pipe_set_write_buffer_limits,
    .bytes_sent = pipe_bytes_sent,
    .bytes_written = pipe_bytes_written,
    .get_extra_info = pipe_get_extra_info,
    .last_ref = pipe_last_ref,
    .destroy = pipe_destroy,
};

int as_is_pipe_transport(const as_transport *t)
{
    return t && t->ops == &pipe_ops;
}

/* ------------------------------------------------------------ creation */

/* Undo a transport that delivered nothing, giving the fd back to the
 * caller as it came (pipe.h, lifetime rule 1): no EOF is fed, nothing
 * is closed. */
static void give_back(pipe_transport *t)
{
    if (t->reading || t->watch_peer)
        as_loop_remove_reader(t->base.loop, t->fd);
    t->reading = t->watch_peer = 0;
    restore_blocking(t);
    t->fd = -1;
    t->state = PIPE_CLOSED;
    pipe_unref(t);
}

/* Is fd something a pipe transport can stand on, open the right way? */
static int check_fd(int fd, int writing, int *fifo, int *flags)
{
    struct stat st;
    int mode;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
        return AS_ENOTPIPE;
    if ((*flags = fcntl(fd, F_GETFL)) < 0)
        return -errno;
    mode = *flags & O_ACCMODE;
    if (mode != O_RDWR && mode != (writing ? O_WRONLY : O_RDONLY))
        return -EBADF; /* what read() or write() would say */
    *fifo = S_ISFIFO(st.st_mode) != 0;
    return 0;
}

static int pipe_new(as_loop *loop, int fd, as_reader *reader, int writing,
                    as_transport **out)
{
    pipe_transport *t;
    int err, fifo = 0, flags = 0;

    if (out)
        *out = NULL;
    if (!loop || !reader || !out || fd < 0)
        return AS_EINVAL;
    if (as_loop_is_closed(loop))
        return AS_ECLOSED;
    if ((err = check_fd(fd, writing, &fifo, &flags)) < 0)
        return err;
    if (!(t = calloc(1, sizeof *t)))
        return -ENOMEM;
    if ((err = as_transport_init(&t->base, &pipe_ops, loop, reader)) < 0) {
        free(t);
        return err;
    }
    t->fd = fd;
    t->state = PIPE_OPEN;
    t->writing = writing ? 1 : 0;
    as__writeq_init(&t->queue);
    t->high = AS_TRANSPORT_DEFAULT_HIGH_WATER;
    t->low = AS_TRANSPORT_DEFAULT_HIGH_WATER / 4;
    if (as_future_new(loop, &t->closed) < 0) {
        give_back(t);
        return -ENOMEM;
    }
    if (!(flags & O_NONBLOCK)) {
        if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
            err = -errno;
            give_back(t);
            return err;
        }
        t->set_nonblock = 1;
    }
    if (writing && fifo) {
        err = as_loop_add_reader(loop, fd, on_readable, t, NULL);
        t->watch_peer = err == 0;
    } else {
        err = start_reading(t);
    }
    if (err < 0) { /* AS_EFDSETSIZE ends here: the loop's one check */
        give_back(t);
        return err;
    }
    *out = &t->base;
    return 0;
}

int as_read_pipe_transport_new(as_loop *loop, int fd, as_reader *reader,
                               as_transport **out)
{
    return pipe_new(loop, fd, reader, 0, out);
}

int as_write_pipe_transport_new(as_loop *loop, int fd, as_reader *reader,
                                as_transport **out)
{
    return pipe_new(loop, fd, reader, 1, out);
}

/* ------------------------------------------------------------ streams */

static int options_limit(const as_pipe_options *opts, ssize_t *limit)
{
    *limit = opts && opts->limit ? opts->limit : AS_READER_DEFAULT_LIMIT;
    return *limit > 0 ? 0 : AS_EINVAL;
}

int as_open_read_pipe(as_loop *loop, int fd, const as_pipe_options *opts,
                      as_reader **reader, as_transport **transport)
{
    as_reader *r = NULL;
    ssize_t limit;
    int err;

    if (reader)
        *reader = NULL;
    if (transport)
        *transport = NULL;
    if (!reader || !transport)
        return AS_EINVAL;
    if ((err = options_limit(opts, &limit)) < 0 ||
        (err = as_reader_new(loop, limit, &r)) < 0)
        return err;
    if ((err = as_read_pipe_transport_new(loop, fd, r, transport)) < 0) {
        as_reader_unref(r);
        return err;
    }
    *reader = r;
    return 0;
}

int as_open_write_pipe(as_loop *loop, int fd, const as_pipe_options *opts,
                       as_writer **writer)
{
    as_reader *r = NULL;
    as_transport *t = NULL;
    ssize_t limit;
    int err;

    if (writer)
        *writer = NULL;
    if (!writer)
        return AS_EINVAL;
    if ((err = options_limit(opts, &limit)) < 0 ||
        (err = as_reader_new(loop, limit, &r)) < 0)
        return err;
    if ((err = as_write_pipe_transport_new(loop, fd, r, &t)) == 0 &&
        (err = as_writer_new(t, r, writer)) < 0)
        give_back(pipe_of(t)); /* the fd goes back to the caller */
    else
        as_transport_unref(t); /* the writer holds it; NULL on failure */
    as_reader_unref(r);        /* the transport and writer hold it */
    return err;
}

int as_open_pipe(as_loop *loop, const as_pipe_options *opts,
                 as_reader **reader, as_transport **transport,
                 as_writer **writer)
{
    int fds[2], err;

    if (reader)
        *reader = NULL;
    if (transport)
        *transport = NULL;
    if (writer)
        *writer = NULL;
    if (!loop || !reader || !transport || !writer)
        return AS_EINVAL;
    if ((err = as__sock_pipe(fds)) < 0)
        return err;
    if ((err = as_open_read_pipe(loop, fds[0], opts, reader, transport)) < 0) {
        (void)close(fds[0]);
        (void)close(fds[1]);
        return err;
    }
    if ((err = as_open_write_pipe(loop, fds[1], opts, writer)) < 0) {
        (void)close(fds[1]);
        as_transport_abort(*transport); /* closes fds[0] */
        as_transport_unref(*transport);
        as_reader_unref(*reader);
        *transport = NULL;
        *reader = NULL;
        return err;
    }
    return 0;
}
