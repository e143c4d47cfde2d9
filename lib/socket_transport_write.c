/*
 * socket_transport_write.c - the socket transport's writing half: the one
 * write path behind write, writelines, write_owned and write_bytes, the
 * write queue's flushing when the socket is writable or the turn ends,
 * write_eof(), and the watermarks that pause writing and wake drains.
 * The rest of the transport (its life cycle, closing, reading, the ops
 * table that lists these functions, the constructor) is in
 * socket_transport.c, whose top comment says how the whole works; the
 * struct both files share is in socket_transport_impl.h.
 *
 * Writing: in C a write cannot keep a pointer to the caller's bytes (the
 * caller owns them and may reuse them at once), so every byte not sent at
 * once is copied into the write queue (writeq.h), where consecutive copies
 * stay contiguous and leave in one send().  A caller that can hand its
 * buffer over instead (write_owned, and as_writer_write_bytes() for a
 * read's result) saves that copy: the queue keeps a pointer and releases
 * the buffer once it is sent, and a queue of several pieces leaves in one
 * sendmsg().  A write that is sent at once (not coalesced, below) goes to
 * the kernel straight from the caller's buffers, writelines() in one
 * sendmsg(), so nothing is copied when the kernel takes everything.
 *
 * Coalescing (the choice measured by bench/bulk_lines): CPython tries send()
 * in every write(), so 16 pipelined replies cost 16 send() calls.  Here a
 * small write into an empty queue is only copied, and a flush is scheduled
 * with as_loop_call_end_of_turn(): it runs once every callback of this turn
 * has had its say, and sends everything written during the turn in one
 * call.  A lone reply leaves in the same turn it was written, so coalescing
 * costs no extra loop turn.  A write of 16 KiB or more into an empty queue
 * is sent at once, and a write that brings the queue to 16 KiB flushes it
 * at once, because past that size the copy costs more than the system call
 * saves; while the socket is known not to be writable, every write just
 * joins the queue.
 */
#include "socket_transport_impl.h"
#include "errors.h"
#include "sock.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef IOV_MAX
#define IOV_MAX 16 /* _XOPEN_IOV_MAX, the smallest POSIX allows */
#endif

/* MSG_NOSIGNAL, or 0 where SO_NOSIGPIPE is set on the socket (sock.h). */
#define SEND_FLAGS AS__SOCK_SEND_FLAGS

/* Writes at least this big skip coalescing (see the top of the file). */
#define COALESCE_MAX 16384
/* After a burst, give back queue storage bigger than this once it empties. */
#define QUEUE_KEEP (256 * 1024)

/* ------------------------------------------------------------ flushing */

/* Pause/resume writing (CPython's _maybe_pause_protocol and
 * _maybe_resume_protocol), after every change of the queue size. */
static void check_watermarks(as__socket_transport *t)
{
    size_t size = as__writeq_len(&t->queue);
    if (!t->write_paused && size > t->high)
        t->write_paused = 1;
    else if (t->write_paused && size <= t->low) {
        t->write_paused = 0;
        as__waiters_wake_all(&t->drain, 0, NULL);
    }
}

static void on_writable(void *p);
static void watch_writable(as__socket_transport *t);

/* The queue just emptied: stop watching, then FIN or close if asked. */
static void queue_empty(as__socket_transport *t)
{
    if (t->want_write) {
        as_loop_remove_writer(t->base.loop, t->fd);
        t->want_write = 0;
    }
    as__writeq_trim(&t->queue, QUEUE_KEEP);
    if (!as__waiters_empty(&t->flushw)) /* nearly always empty */
        as__waiters_wake_all(&t->flushw, 0, NULL);
    if (t->state == AS__SOCK_CLOSING) {
        as__sock_teardown(t, 0, NULL, 0);
    } else if (t->eof_wanted && !t->eof_sent) {
        t->eof_sent = 1;
        if (shutdown(t->fd, SHUT_WR) < 0 && errno != ENOTCONN)
            as__sock_fatal(t, -errno);
    }
}

/* Pieces handed to one sendmsg(): enough for a turn's worth of writes. */
#define FLUSH_IOV 64

static ssize_t send_iov(int fd, struct iovec *iov, int cnt)
{
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = cnt;
    return sendmsg(fd, &mh, SEND_FLAGS);
}

/* Send what the queue holds in one call: send() for one piece (copied
 * writes merge into one), sendmsg() over several.  Static, and called
 * by this file under this name, so that in the shared library (-fPIC,
 * where an exported function may be interposed and is never inlined) the
 * write path calls it as before; as__sock_flush_queue() is for close(). */
static void flush_queue(as__socket_transport *t)
{
    struct iovec iov[FLUSH_IOV];
    int cnt = as__writeq_iov(&t->queue, iov, FLUSH_IOV);
    ssize_t n;

    if (cnt > 0) {
        do
            n = cnt == 1 ? send(t->fd, iov[0].iov_base, iov[0].iov_len, SEND_FLAGS)
                         : send_iov(t->fd, iov, cnt);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                as__sock_fatal(t, -errno);
                return;
            }
            n = 0;
        }
        t->sent += (unsigned long long)n;
        as__writeq_consume(&t->queue, (size_t)n);
        /* A release hook (a binding's) may have run code that closed us. */
        if (t->state == AS__SOCK_CLOSED || t->state == AS__SOCK_LOST)
            return;
    }
    check_watermarks(t);
    if (as__writeq_len(&t->queue) == 0) {
        queue_empty(t);
    } else {
        watch_writable(t);
    }
}

void as__sock_flush_queue(as__socket_transport *t)
{
    flush_queue(t);
}

static void on_writable(void *p)
{
    as__socket_transport *t = p;
    as__sock_ref(t);
    flush_queue(t);
    as__sock_unref(t);
}

/* The end-of-turn flush; it holds the reference schedule_send() took. */
static void coalesced_flush(void *p)
{
    as__socket_transport *t = p;
    if ((t->state == AS__SOCK_OPEN || t->state == AS__SOCK_CLOSING) && !t->want_write)
        flush_queue(t);
    as__sock_unref(t);
}

/* ------------------------------------------------------------ writing */

/* Copy bytes the kernel did not take, or was not offered, into the queue;
 * write_iov() then arranges for them to go out. */
static int enqueue(as__socket_transport *t, const void *data, size_t len)
{
    return as__writeq_copy(&t->queue, data, len);
}

static int write_state_error(const as__socket_transport *t)
{
    if (t->err)
        return t->err;
    if (t->state != AS__SOCK_OPEN)
        return AS_ECLOSED;
    if (t->eof_wanted)
        return AS_ESTATE;
    return 0;
}

/* Bytes are queued and the kernel just refused more: wait until the fd is
 * writable (on_writable sends them). */
static void watch_writable(as__socket_transport *t)
{
    int err;
    if (t->want_write)
        return;
    err = as_loop_add_writer(t->base.loop, t->fd, on_writable, t, NULL);
    if (err < 0)
        as__sock_fatal(t, err);
    else
        t->want_write = 1;
}

/* Bytes were queued without trying send(): coalesce them with the rest of
 * this turn's writes, unless enough are queued to send now. */
static void schedule_send(as__socket_transport *t)
{
    if (t->want_write)
        return; /* waiting for writability; on_writable sends them */
    if (as__writeq_len(&t->queue) >= COALESCE_MAX) {
        flush_queue(t);
        return;
    }
    if (!as__sock_flush_pending(t)) {
        if (!t->flush_handle)
            t->flush_handle = as__handle_new(t->base.loop, coalesced_flush, t,
                                             as__sock_unref_cb);
        if (t->flush_handle && as__handle_post(t->flush_handle, 1) == 0) {
            as__sock_ref(t);
        } else {
            flush_queue(t); /* cannot wait for the end of the turn: now */
        }
    }
}

/* Hand the caller's buffers to the kernel now, IOV_MAX at a time, until it
 * refuses more; *done receives the bytes it took.  Returns 0, or the send
 * error (the caller then fails the connection). */
static int send_now(as__socket_transport *t, const struct iovec *iov, int iovcnt,
                    size_t *done)
{
    int first = 0, i;

    *done = 0;
    while (first < iovcnt) {
        struct msghdr mh;
        ssize_t n;
        size_t want = 0;
        int cnt = iovcnt - first > IOV_MAX ? IOV_MAX : iovcnt - first;
        for (i = 0; i < cnt; i++)
            want += iov[first + i].iov_len;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = (struct iovec *)&iov[first];
        mh.msg_iovlen = cnt;
        do
            n = sendmsg(t->fd, &mh, SEND_FLAGS);
        while (n < 0 && errno == EINTR);
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

/*
 * The one write path, behind write, writelines and write_owned.  With
 * nothing queued and the write not coalesced (coalescing off, or 16 KiB or
 * more), the kernel gets the caller's buffers at once and only what it
 * refuses is queued, then sent when the socket is writable; otherwise
 * everything is queued for the end-of-turn flush.  Queued bytes are copied,
 * or for write_owned (release set, one buffer) adopted.  Arguments and
 * state have been checked; total > 0.
 */
static int write_iov(as__socket_transport *t, const struct iovec *iov, int iovcnt,
                     size_t total, void *owner, as_destroy_fn release)
{
    size_t done = 0, skip;
    int i, err = 0, tried = 0;

    as__sock_ref(t);
    if (as__writeq_len(&t->queue) == 0 && !t->want_write &&
        (!t->coalesce || total >= COALESCE_MAX)) {
        tried = 1;
        err = send_now(t, iov, iovcnt, &done);
    }
    if (err == 0 && release) {
        if (done == total)
            as__writeq_release(&t->queue, owner, release); /* all sent */
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
            err = enqueue(t, (const unsigned char *)iov[i].iov_base + skip, len - skip);
            skip = 0;
        }
    }
    if (err < 0) {
        /* A send error; or part of the data may be out (or queued) and the
         * rest cannot be queued: the byte stream would have a hole.  Either
         * way the connection is over. */
        as__sock_fatal(t, err);
        as__sock_unref(t);
        return err;
    }
    t->written += total;
    if (as__writeq_len(&t->queue) > 0) {
        check_watermarks(t);
        if (tried)
            watch_writable(t);
        else
            schedule_send(t);
    }
    as__sock_unref(t);
    return 0;
}

/* The interface has checked the arguments (transport.h). */
int as__sock_write(as_transport *base, const struct iovec *iov, int iovcnt,
                   size_t total)
{
    as__socket_transport *t = as__sock_of(base);
    int err = write_state_error(t);
    if (err != 0)
        return err;
    if (total == 0)
        return 0;
    return write_iov(t, iov, iovcnt, total, NULL, NULL);
}

/* write_owned, static for the reason flush_queue() is: write_bytes, the
 * echo path's write, gets it inlined. */
static int write_owned(as__socket_transport *t, const void *data, size_t len,
                       void *owner, as_destroy_fn release)
{
    struct iovec iov;
    int err;

    if ((err = write_state_error(t)) != 0)
        return err;
    if (len == 0) {
        as__writeq_release(&t->queue, owner, release); /* nothing to send */
        return 0;
    }
    iov.iov_base = (void *)data;
    iov.iov_len = len;
    return write_iov(t, &iov, 1, len, owner, release);
}

int as__sock_write_owned(as_transport *base, const void *data, size_t len,
                         void *owner, as_destroy_fn release)
{
    return write_owned(as__sock_of(base), data, len, owner, release);
}

/* A read's result, handed over: once sent, its block goes back to this
 * connection's reader for the next result (the queue's recycler, set up
 * by as__sock_write_init()). */
int as__sock_write_bytes(as_transport *t, as_bytes *bytes)
{
    int err = write_owned(as__sock_of(t), bytes->data, bytes->len, bytes,
                          as__writeq_bytes_done);
    if (err < 0)
        free(bytes);
    return err;
}

int as__sock_write_eof(as_transport *base)
{
    as__socket_transport *t = as__sock_of(base);
    if (t->err)
        return t->err;
    if (t->state != AS__SOCK_OPEN)
        return AS_ECLOSED;
    if (t->eof_wanted)
        return 0;
    t->eof_wanted = 1;
    if (as__writeq_len(&t->queue) == 0)
        queue_empty(t);
    return 0;
}

int as__sock_eof_written(const as_transport *t)
{
    return as__csock_of(t)->eof_wanted;
}

/* Sockets can always half-close. */
int as__sock_can_write_eof(const as_transport *t)
{
    (void)t;
    return 1;
}

/* ------------------------------------------------------------ futures */

/* A future already finished with no result. */
static as_future *finished_future(as_loop *loop)
{
    as_future *f;
    if (as_future_new(loop, &f) == 0)
        (void)as_future_set_result(f, NULL, NULL);
    return f;
}

/* A drain below high water is the common case (every write of an echo
 * server): it gets a reference to one finished future, made once, instead of
 * a new future.  A finished future with no result cannot change any more, so
 * sharing it is safe. */
as_future *as__sock_wait_writable(as_transport *base)
{
    as__socket_transport *t = as__sock_of(base);
    if (t->err)
        return as__future_failed(t->base.loop, t->err, t->err_msg);
    if (t->write_paused)
        return as__waiters_add(&t->drain, t->base.loop);
    if (!t->ready && !(t->ready = finished_future(t->base.loop)))
        return NULL;
    return as_future_ref(t->ready);
}

as_future *as__sock_flush(as_transport *base)
{
    as__socket_transport *t = as__sock_of(base);
    if (t->err)
        return as__future_failed(t->base.loop, t->err, t->err_msg);
    if (t->dropped)
        return as__future_failed(t->base.loop, AS_ECONNLOST,
                                 "Connection lost: queued bytes were dropped by abort()");
    if (as__writeq_len(&t->queue) == 0)
        return finished_future(t->base.loop);
    return as__waiters_add(&t->flushw, t->base.loop);
}

/* ------------------------------------------------------------ accessors */

size_t as__sock_write_buffer_size(const as_transport *t)
{
    return as__writeq_len(&as__csock_of(t)->queue);
}

void as__sock_get_write_buffer_limits(const as_transport *base, size_t *high,
                                      size_t *low)
{
    const as__socket_transport *t = as__csock_of(base);
    *high = t->high;
    *low = t->low;
}

void as__sock_set_write_buffer_limits(as_transport *base, size_t high, size_t low)
{
    as__socket_transport *t = as__sock_of(base);
    t->high = high;
    t->low = low;
    check_watermarks(t);
}

unsigned long long as__sock_bytes_sent(const as_transport *t)
{
    return as__csock_of(t)->sent;
}

unsigned long long as__sock_bytes_written(const as_transport *t)
{
    return as__csock_of(t)->written;
}

/* ------------------------------------------------------------ set-up */

/* The bytes of an as_writer_write_bytes() have been sent: the reader of
 * the same connection keeps the block for its next result (reader.h). */
static void recycle_bytes(void *ud, as_bytes *bytes)
{
    as__socket_transport *t = ud;
    as__reader_recycle(t->base.reader, bytes);
}

void as__sock_write_init(as__socket_transport *t)
{
    as__writeq_init(&t->queue);
    t->queue.recycle = recycle_bytes;
    t->queue.recycle_ud = t;
    t->high = AS_TRANSPORT_DEFAULT_HIGH_WATER;
    t->low = AS_TRANSPORT_DEFAULT_HIGH_WATER / 4;
    t->coalesce = 1;
}
