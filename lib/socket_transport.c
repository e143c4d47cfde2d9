/*
 * socket_transport.c - the transport over a non-blocking stream socket,
 * feeding a StreamReader, with a write queue.  The first implementation of
 * the transport interface: states and contracts are transport.h's, and
 * every operation below is reached through its table (socket_ops, at the
 * end of the file).
 *
 * Reading: when the fd is readable we recv() straight into the reader's
 * buffer (as_reader_feed_reserve/commit): no intermediate buffer, no malloc
 * per read.  One recv() per readiness: the loop is level-triggered, so bytes
 * left in the kernel are reported on the next turn, and we skip the recv()
 * that would only say EAGAIN.
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
#include "socket_transport.h"
#include "errors.h"
#include "internal.h"
#include "sock.h"
#include "waiters.h"
#include "writeq.h"
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 16 /* _XOPEN_IOV_MAX, the smallest POSIX allows */
#endif

/* MSG_NOSIGNAL, or 0 where SO_NOSIGPIPE is set on the socket (sock.h). */
#define SEND_FLAGS AS__SOCK_SEND_FLAGS

/* Writes at least this big skip coalescing (see the top of the file). */
#define COALESCE_MAX 16384
/* recv() asks for at least this much room, and takes at most MAX_RECV. */
#define RECV_WANT 65536
#define MAX_RECV (256 * 1024)
/* After a burst, give back queue storage bigger than this once it empties. */
#define QUEUE_KEEP (256 * 1024)

enum state { OPEN, CLOSING, CLOSED, LOST };

typedef struct socket_transport {
    as_transport base;            /* first: an as_transport * is one of these */
    int fd;
    enum state state;

    as__writeq queue;             /* bytes written but not yet sent (writeq.h) */
    size_t high, low;             /* write-buffer watermarks */
    unsigned long long sent;      /* bytes the kernel accepted */
    unsigned long long written;   /* bytes accepted by write() */

    unsigned int eof_wanted : 1;  /* write_eof() called */
    unsigned int eof_sent : 1;    /* shutdown(SHUT_WR) done */
    unsigned int peer_eof : 1;    /* recv() returned 0 */
    unsigned int read_paused : 1; /* the reader asked us to pause */
    unsigned int reading : 1;     /* a read watcher is registered */
    unsigned int want_write : 1;  /* a write watcher is registered */
    as_handle *flush_handle;      /* runs coalesced_flush(); made once, posted
                                     while a coalescing flush is pending */
    unsigned int write_paused : 1;  /* queue went above high water */
    unsigned int coalesce : 1;
    unsigned int self_ref : 1;    /* transport.h, lifetime rule 3 */
    unsigned int dropped : 1;     /* abort() dropped queued bytes */

    int err;                      /* the first error, or 0 */
    char *err_msg;                /* its message, or NULL for as_strerror */

    as__waiters drain, flushw;    /* waiting drains and flushes (waiters.h) */
    as_future *closed;
    as_future *ready;             /* finished, shared by every drain that need not wait */
    as_handle *close_timer;       /* close_within()'s deadline, while CLOSING */

    struct sockaddr_storage peer, self;
    socklen_t peer_len, self_len;
    int peer_err, self_err;
} socket_transport;

static const as_transport_ops socket_ops;

/* The socket transport behind the interface's pointer (first member). */
static socket_transport *sock_of(as_transport *t)
{
    return (socket_transport *)t;
}

static const socket_transport *csock_of(const as_transport *t)
{
    return (const socket_transport *)t;
}

static void flush_queue(socket_transport *t);

/* A coalescing flush is posted for the end of this turn. */
static int flush_pending(const socket_transport *t)
{
    return t->flush_handle && as__handle_queued(t->flush_handle);
}

/* ------------------------------------------------------------ lifetime */

/* The interface frees the base (its reader and loop references) after. */
static AS__NOINLINE void sock_destroy(as_transport *base)
{
    socket_transport *t = sock_of(base);
    /* Mark a stored error as retrieved: nobody may ever wait on the closed
     * future, and that is not an unhandled error (CPython does the same in
     * StreamReaderProtocol.__del__). */
    if (t->closed)
        (void)as_future_error(t->closed);
    as_future_unref(t->closed);
    as_future_unref(t->ready);
    /* A queued run holds a reference, so it cannot be queued now. */
    assert(!t->flush_handle || !as__handle_queued(t->flush_handle));
    as__handle_free(t->flush_handle);
    as__writeq_clear(&t->queue); /* may recycle into the reader: first */
    as__waiters_free(&t->drain, NULL); /* teardown() normally woke them */
    as__waiters_free(&t->flushw, NULL);
    free(t->err_msg);
    free(t);
}

static void ref(socket_transport *t)
{
    t->base.refs++;
}

static void unref(socket_transport *t)
{
    as_transport_unref(&t->base);
}

static void unref_cb(void *p)
{
    unref(p);
}

static void teardown(socket_transport *t, int err, const char *msg, int rst);

/* transport.h, lifetime rule 4: dropped while open.  Close without
 * flushing; the interface keeps the transport alive while teardown() runs. */
static void sock_last_ref(as_transport *base)
{
    socket_transport *t = sock_of(base);
    if (t->state == OPEN)
        teardown(t, 0, NULL, 0);
}

/* ------------------------------------------------------------ closing */

/*
 * Enter CLOSED (err == 0) or LOST (err < 0): everything the connection held
 * is released here, synchronously.  Idempotent.  No user callback runs:
 * finishing futures only schedules their callbacks.
 */
static void teardown(socket_transport *t, int err, const char *msg, int rst)
{
    int self_ref = t->self_ref;

    if (t->state == CLOSED || t->state == LOST)
        return;
    t->state = err ? LOST : CLOSED;
    if (err) {
        t->err = err;
        if (msg)
            t->err_msg = as__strdup(msg); /* NULL on ENOMEM: as_strerror() then */
    }
    if (t->reading)
        as_loop_remove_reader(t->base.loop, t->fd);
    if (t->want_write)
        as_loop_remove_writer(t->base.loop, t->fd);
    t->reading = t->want_write = 0;
    if (t->close_timer) {
        as_handle_cancel(t->close_timer);
        as_handle_unref(t->close_timer);
        t->close_timer = NULL;
    }
    if (rst) {
        /* SO_LINGER with a zero timeout makes close() send RST and drop
         * whatever the kernel still holds.  Best effort: if it fails the
         * peer sees a FIN instead. */
        struct linger lg;
        lg.l_onoff = 1;
        lg.l_linger = 0;
        (void)setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    /* POSIX leaves the fd state unspecified after close() fails with EINTR;
     * on the systems we know it is closed, so never retry. */
    (void)close(t->fd);
    t->fd = -1;
    if (as__writeq_len(&t->queue) > 0)
        t->dropped = 1;
    as__writeq_clear(&t->queue);

    (void)as_reader_set_flow_control(t->base.reader, NULL, NULL, NULL, NULL);
    if (err) {
        if (as_reader_set_exception(t->base.reader, err, t->err_msg) < 0)
            as_reader_feed_eof(t->base.reader); /* ENOMEM: at least wake it */
    } else {
        as_reader_feed_eof(t->base.reader);
    }

    /* CPython wakes blocked drains on connection_lost: normally after a
     * clean close, with the error otherwise. */
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
        unref(t);
    }
}

/* The first send/receive error: the connection is lost. */
static void fatal(socket_transport *t, int err)
{
    teardown(t, err, NULL, 0);
}

static void close_flushing(socket_transport *t)
{
    if (t->state != OPEN)
        return;
    t->state = CLOSING;
    if (t->reading) {
        as_loop_remove_reader(t->base.loop, t->fd);
        t->reading = 0;
    }
    if (as__writeq_len(&t->queue) == 0) {
        teardown(t, 0, NULL, 0);
        return;
    }
    /* transport.h, lifetime rule 3: stay alive until the queue is out. */
    t->self_ref = 1;
    ref(t);
    if (!t->want_write && !flush_pending(t))
        flush_queue(t);
}

static void sock_close(as_transport *t)
{
    close_flushing(sock_of(t));
}

static void sock_abort(as_transport *t)
{
    teardown(sock_of(t), 0, NULL, 1);
}

/* close_within()'s deadline: whatever is still queued is dropped. */
static void close_deadline(void *p)
{
    socket_transport *t = p;
    as_handle_unref(t->close_timer);
    t->close_timer = NULL;
    if (t->state == CLOSING)
        teardown(t, 0, NULL, 1);
}

static void sock_close_within(as_transport *base, double seconds)
{
    socket_transport *t = sock_of(base);
    if (t->state == CLOSED || t->state == LOST || t->close_timer)
        return;
    close_flushing(t); /* the flush starts; no-op if already closing */
    if (t->state != CLOSING || isnan(seconds))
        return; /* closed at once (nothing was queued), or NaN: no deadline */
    /* The timer needs no reference: teardown() cancels it, and until then
     * the flush's own reference keeps us (transport.h rule 3).  If it cannot
     * be armed, the deadline cannot be kept: abort now. */
    if (seconds <= 0 ||
        as_loop_call_later(t->base.loop, seconds, close_deadline, t, NULL, &t->close_timer) < 0)
        teardown(t, 0, NULL, 1);
}

static int sock_is_closing(const as_transport *base)
{
    return csock_of(base)->state != OPEN;
}

static int sock_error(const as_transport *base, const char **message)
{
    const socket_transport *t = csock_of(base);
    if (message)
        *message = t->err ? (t->err_msg ? t->err_msg : as_strerror(t->err)) : NULL;
    return t->err;
}

/* ------------------------------------------------------------ reading */

static void read_once(socket_transport *t);

/* The watcher holds no reference (lifetime: teardown() removes it), so hold
 * one while we run: a fatal error may drop the last one. */
static void on_readable(void *p)
{
    socket_transport *t = p;
    ref(t);
    read_once(t);
    unref(t);
}

static void read_once(socket_transport *t)
{
    size_t avail = 0;
    unsigned char *room;
    ssize_t n;

    room = as_reader_feed_reserve(t->base.reader, RECV_WANT, &avail);
    if (!room) {
        /* The reader is at EOF (somebody fed it by hand) or out of memory.
         * Either way nothing can be delivered: stop reading. */
        if (as_reader_at_eof(t->base.reader) || as_reader_exception(t->base.reader, NULL)) {
            as_loop_remove_reader(t->base.loop, t->fd);
            t->reading = 0;
        } else {
            fatal(t, -ENOMEM);
        }
        return;
    }
    if (avail > MAX_RECV)
        avail = MAX_RECV;
    do
        n = recv(t->fd, room, avail, 0);
    while (n < 0 && errno == EINTR);

    if (n > 0) {
        (void)as__reader_feed_commit_now(t->base.reader, (size_t)n);
    } else if (n == 0) {
        /* The peer's FIN.  Keep the transport open for writing, as
         * StreamReaderProtocol.eof_received() returning True asks. */
        t->peer_eof = 1;
        as_loop_remove_reader(t->base.loop, t->fd);
        t->reading = 0;
        as_reader_feed_eof(t->base.reader);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        fatal(t, -errno);
    }
}

static int start_reading(socket_transport *t)
{
    int err;
    if (t->reading || t->read_paused || t->peer_eof || t->state != OPEN)
        return 0;
    err = as_loop_add_reader(t->base.loop, t->fd, on_readable, t, NULL);
    if (err == 0)
        t->reading = 1;
    return err;
}

/* Pausing and resuming (the reader's flow control, through the
 * interface's hooks): they only change what we watch. */
static int sock_pause_reading(as_transport *base)
{
    socket_transport *t = sock_of(base);
    t->read_paused = 1;
    if (t->reading) {
        as_loop_remove_reader(t->base.loop, t->fd);
        t->reading = 0;
    }
    return 0;
}

static void deferred_fatal(void *p)
{
    socket_transport *t = p;
    fatal(t, -ENOMEM);
}

static int sock_resume_reading(as_transport *base)
{
    socket_transport *t = sock_of(base);
    t->read_paused = 0;
    if (start_reading(t) < 0) {
        /* Could not watch the fd again (out of memory): the reader would
         * wait for ever.  Hooks must not call back into the reader, so
         * fail the connection from a callback instead.  If even that
         * cannot be scheduled, nothing more can be done here. */
        ref(t);
        if (as_loop_call_soon(t->base.loop, deferred_fatal, t, unref_cb, NULL) < 0) {
            assert(t->base.refs > 1); /* the caller holds a reference */
            t->base.refs--;
        }
    }
    return 0;
}

static int sock_is_reading_paused(const as_transport *t)
{
    return csock_of(t)->read_paused;
}

/* ------------------------------------------------------------ writing */

/* Pause/resume writing (CPython's _maybe_pause_protocol and
 * _maybe_resume_protocol), after every change of the queue size. */
static void check_watermarks(socket_transport *t)
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
static void watch_writable(socket_transport *t);

/* The queue just emptied: stop watching, then FIN or close if asked. */
static void queue_empty(socket_transport *t)
{
    if (t->want_write) {
        as_loop_remove_writer(t->base.loop, t->fd);
        t->want_write = 0;
    }
    as__writeq_trim(&t->queue, QUEUE_KEEP);
    as__waiters_wake_all(&t->flushw, 0, NULL);
    if (t->state == CLOSING) {
        teardown(t, 0, NULL, 0);
    } else if (t->eof_wanted && !t->eof_sent) {
        t->eof_sent = 1;
        if (shutdown(t->fd, SHUT_WR) < 0 && errno != ENOTCONN)
            fatal(t, -errno);
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
 * writes merge into one), sendmsg() over several. */
static void flush_queue(socket_transport *t)
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
                fatal(t, -errno);
                return;
            }
            n = 0;
        }
        t->sent += (unsigned long long)n;
        as__writeq_consume(&t->queue, (size_t)n);
        /* A release hook (a binding's) may have run code that closed us. */
        if (t->state == CLOSED || t->state == LOST)
            return;
    }
    check_watermarks(t);
    if (as__writeq_len(&t->queue) == 0) {
        queue_empty(t);
    } else {
        watch_writable(t);
    }
}

static void on_writable(void *p)
{
    socket_transport *t = p;
    ref(t);
    flush_queue(t);
    unref(t);
}

/* The end-of-turn flush; it holds the reference schedule_send() took. */
static void coalesced_flush(void *p)
{
    socket_transport *t = p;
    if ((t->state == OPEN || t->state == CLOSING) && !t->want_write)
        flush_queue(t);
    unref(t);
}

/* Copy bytes the kernel did not take, or was not offered, into the queue;
 * write_iov() then arranges for them to go out. */
static int enqueue(socket_transport *t, const void *data, size_t len)
{
    return as__writeq_copy(&t->queue, data, len);
}

static int write_state_error(const socket_transport *t)
{
    if (t->err)
        return t->err;
    if (t->state != OPEN)
        return AS_ECLOSED;
    if (t->eof_wanted)
        return AS_ESTATE;
    return 0;
}

/* Bytes are queued and the kernel just refused more: wait until the fd is
 * writable (on_writable sends them). */
static void watch_writable(socket_transport *t)
{
    int err;
    if (t->want_write)
        return;
    err = as_loop_add_writer(t->base.loop, t->fd, on_writable, t, NULL);
    if (err < 0)
        fatal(t, err);
    else
        t->want_write = 1;
}

/* Bytes were queued without trying send(): coalesce them with the rest of
 * this turn's writes, unless enough are queued to send now. */
static void schedule_send(socket_transport *t)
{
    if (t->want_write)
        return; /* waiting for writability; on_writable sends them */
    if (as__writeq_len(&t->queue) >= COALESCE_MAX) {
        flush_queue(t);
        return;
    }
    if (!flush_pending(t)) {
        if (!t->flush_handle)
            t->flush_handle = as__handle_new(t->base.loop, coalesced_flush, t, unref_cb);
        if (t->flush_handle && as__handle_post(t->flush_handle, 1) == 0) {
            ref(t);
        } else {
            flush_queue(t); /* cannot wait for the end of the turn: now */
        }
    }
}

/* Hand the caller's buffers to the kernel now, IOV_MAX at a time, until it
 * refuses more; *done receives the bytes it took.  Returns 0, or the send
 * error (the caller then fails the connection). */
static int send_now(socket_transport *t, const struct iovec *iov, int iovcnt,
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
static int write_iov(socket_transport *t, const struct iovec *iov, int iovcnt,
                     size_t total, void *owner, as_destroy_fn release)
{
    size_t done = 0, skip;
    int i, err = 0, tried = 0;

    ref(t);
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
        fatal(t, err);
        unref(t);
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
    unref(t);
    return 0;
}

/* The interface has checked the arguments (transport.h). */
static int sock_write(as_transport *base, const struct iovec *iov, int iovcnt,
                      size_t total)
{
    socket_transport *t = sock_of(base);
    int err = write_state_error(t);
    if (err != 0)
        return err;
    if (total == 0)
        return 0;
    return write_iov(t, iov, iovcnt, total, NULL, NULL);
}

static int sock_write_owned(as_transport *base, const void *data, size_t len,
                            void *owner, as_destroy_fn release)
{
    socket_transport *t = sock_of(base);
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

/* A read's result, handed over: once sent, its block goes back to this
 * connection's reader for the next result (the queue's recycler, set up
 * in as_socket_transport_new()). */
static int sock_write_bytes(as_transport *t, as_bytes *bytes)
{
    int err = sock_write_owned(t, bytes->data, bytes->len, bytes,
                               as__writeq_bytes_done);
    if (err < 0)
        free(bytes);
    return err;
}

static int sock_write_eof(as_transport *base)
{
    socket_transport *t = sock_of(base);
    if (t->err)
        return t->err;
    if (t->state != OPEN)
        return AS_ECLOSED;
    if (t->eof_wanted)
        return 0;
    t->eof_wanted = 1;
    if (as__writeq_len(&t->queue) == 0)
        queue_empty(t);
    return 0;
}

static int sock_eof_written(const as_transport *t)
{
    return csock_of(t)->eof_wanted;
}

/* Sockets can always half-close. */
static int sock_can_write_eof(const as_transport *t)
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
static as_future *sock_wait_writable(as_transport *base)
{
    socket_transport *t = sock_of(base);
    if (t->err)
        return as__future_failed(t->base.loop, t->err, t->err_msg);
    if (t->write_paused)
        return as__waiters_add(&t->drain, t->base.loop);
    if (!t->ready && !(t->ready = finished_future(t->base.loop)))
        return NULL;
    return as_future_ref(t->ready);
}

static as_future *sock_flush(as_transport *base)
{
    socket_transport *t = sock_of(base);
    if (t->err)
        return as__future_failed(t->base.loop, t->err, t->err_msg);
    if (t->dropped)
        return as__future_failed(t->base.loop, AS_ECONNLOST,
                                 "Connection lost: queued bytes were dropped by abort()");
    if (as__writeq_len(&t->queue) == 0)
        return finished_future(t->base.loop);
    return as__waiters_add(&t->flushw, t->base.loop);
}

static as_future *sock_closed(as_transport *t)
{
    return as_future_ref(sock_of(t)->closed);
}

/* ------------------------------------------------------------ accessors */

static size_t sock_write_buffer_size(const as_transport *t)
{
    return as__writeq_len(&csock_of(t)->queue);
}

static void sock_get_write_buffer_limits(const as_transport *base, size_t *high,
                                         size_t *low)
{
    const socket_transport *t = csock_of(base);
    *high = t->high;
    *low = t->low;
}

static void sock_set_write_buffer_limits(as_transport *base, size_t high, size_t low)
{
    socket_transport *t = sock_of(base);
    t->high = high;
    t->low = low;
    check_watermarks(t);
}

static unsigned long long sock_bytes_sent(const as_transport *t)
{
    return csock_of(t)->sent;
}

static unsigned long long sock_bytes_written(const as_transport *t)
{
    return csock_of(t)->written;
}

static int address_info(int err, const struct sockaddr_storage *addr,
                        socklen_t len, as_extra_info *out)
{
    if (err)
        return err;
    out->kind = AS_EXTRA_ADDRESS;
    memcpy(&out->u.address.addr, addr, sizeof *addr);
    out->u.address.len = len;
    return 0;
}

/* The addresses were read when the transport was made: they stay
 * available after close, as asyncio's extra info does. */
static int sock_get_extra_info(const as_transport *base, const char *key,
                               as_extra_info *out)
{
    const socket_transport *t = csock_of(base);
    if (strcmp(key, "peername") == 0)
        return address_info(t->peer_err, &t->peer, t->peer_len, out);
    if (strcmp(key, "sockname") == 0)
        return address_info(t->self_err, &t->self, t->self_len, out);
    if (strcmp(key, "fd") == 0) {
        out->kind = AS_EXTRA_INT;
        out->u.integer = t->fd;
        return 0;
    }
    return AS_ENOKEY;
}

static const as_transport_ops socket_ops = {
    .name = "socket",
    .write = sock_write,
    .write_owned = sock_write_owned,
    .write_bytes = sock_write_bytes,
    .write_eof = sock_write_eof,
    .eof_written = sock_eof_written,
    .can_write_eof = sock_can_write_eof,
    .close = sock_close,
    .close_within = sock_close_within,
    .abort = sock_abort,
    .is_closing = sock_is_closing,
    .error = sock_error,
    .pause_reading = sock_pause_reading,
    .resume_reading = sock_resume_reading,
    .is_reading_paused = sock_is_reading_paused,
    .wait_writable = sock_wait_writable,
    .flush = sock_flush,
    .closed = sock_closed,
    .write_buffer_size = sock_write_buffer_size,
    .get_write_buffer_limits = sock_get_write_buffer_limits,
    .set_write_buffer_limits = sock_set_write_buffer_limits,
    .bytes_sent = sock_bytes_sent,
    .bytes_written = sock_bytes_written,
    .get_extra_info = sock_get_extra_info,
    .last_ref = sock_last_ref,
    .destroy = sock_destroy,
};

int as_is_socket_transport(const as_transport *t)
{
    return t && t->ops == &socket_ops;
}

int as_socket_transport_set_coalescing(as_transport *t, int on)
{
    if (!as_is_socket_transport(t))
        return AS_EINVAL;
    sock_of(t)->coalesce = on ? 1 : 0;
    return 0;
}

/* ------------------------------------------------------------ creation */

/* The bytes of an as_writer_write_bytes() have been sent: the reader of
 * the same connection keeps the block for its next result (reader.h). */
static void recycle_bytes(void *ud, as_bytes *bytes)
{
    socket_transport *t = ud;
    as__reader_recycle(t->base.reader, bytes);
}

/* Nothing was delivered yet: undo quietly (the closed future has no
 * waiter, and teardown() would feed the reader an EOF it never saw coming). */
static void undo(socket_transport *t)
{
    (void)close(t->fd);
    t->state = CLOSED;
    unref(t);
}

int as_socket_transport_new(as_loop *loop, int fd, as_reader *reader,
                            as_transport **out)
{
    socket_transport *t;
    int err;

    if (out)
        *out = NULL;
    if (fd < 0)
        return AS_EINVAL;
    if (!loop || !reader || !out) {
        (void)close(fd);
        return AS_EINVAL;
    }
    if (as_loop_is_closed(loop)) {
        (void)close(fd);
        return AS_ECLOSED;
    }
    if ((err = as__sock_setup_stream(fd)) < 0) {
        (void)close(fd);
        return err;
    }
    if (!(t = calloc(1, sizeof *t))) {
        (void)close(fd);
        return -ENOMEM;
    }
    if ((err = as_transport_init(&t->base, &socket_ops, loop, reader)) < 0) {
        free(t);
        (void)close(fd);
        return err;
    }
    t->fd = fd;
    t->state = OPEN;
    if (as_future_new(loop, &t->closed) < 0) {
        undo(t);
        return -ENOMEM;
    }
    as__writeq_init(&t->queue);
    t->queue.recycle = recycle_bytes;
    t->queue.recycle_ud = t;
    t->high = AS_TRANSPORT_DEFAULT_HIGH_WATER;
    t->low = AS_TRANSPORT_DEFAULT_HIGH_WATER / 4;
    t->coalesce = 1;

    t->peer_len = sizeof t->peer;
    if (getpeername(fd, (struct sockaddr *)&t->peer, &t->peer_len) < 0)
        t->peer_err = -errno;
    t->self_len = sizeof t->self;
    if (getsockname(fd, (struct sockaddr *)&t->self, &t->self_len) < 0)
        t->self_err = -errno;

    if ((err = start_reading(t)) < 0) {
        /* An fd too large for the loop's backend ends here: the loop
         * refuses to watch it (AS_EFDSETSIZE), the one check of that limit. */
        undo(t);
        return err;
    }
    *out = &t->base;
    return 0;
}
