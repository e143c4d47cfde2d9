/*
 * socket_transport.c - the transport over a non-blocking stream socket,
 * feeding a StreamReader, with a write queue.  The first implementation of
 * the transport interface: states and contracts are transport.h's, and
 * every operation is reached through its table (socket_ops, near the end
 * of this file, the one place it is assembled).
 *
 * The module is two files around one private struct
 * (socket_transport_impl.h): this one has the life cycle, closing,
 * reading, the table and the constructor; socket_transport_write.c has
 * the writing half (the write paths, the write queue's flushing,
 * write_eof(), the watermarks that wake drains) and says how writes are
 * queued and coalesced.
 *
 * Reading: when the fd is readable we recv() straight into the reader's
 * buffer (as_reader_feed_reserve/commit): no intermediate buffer, no malloc
 * per read.  One recv() per readiness: the loop is level-triggered, so bytes
 * left in the kernel are reported on the next turn, and we skip the recv()
 * that would only say EAGAIN.
 *
 * Closing: close() stops reading and lets the writing half empty the
 * queue, which calls as__sock_teardown() when it is out; abort(), a
 * close_within() deadline and a send or receive error tear down at once.
 * Teardown closes the fd, drops what is queued, and wakes every reader,
 * drain, flush and closed-future waiter, synchronously.
 */
#include "socket_transport_impl.h"
#include "errors.h"
#include "sock.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* recv() asks for at least this much room, and takes at most MAX_RECV. */
#define RECV_WANT 65536
#define MAX_RECV (256 * 1024)

static const as_transport_ops socket_ops;

/* ------------------------------------------------------------ lifetime */

/* The interface frees the base (its reader and loop references) after. */
static AS__NOINLINE void sock_destroy(as_transport *base)
{
    as__socket_transport *t = as__sock_of(base);
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
    as__waiters_free(&t->drain, NULL); /* teardown normally woke them */
    as__waiters_free(&t->flushw, NULL);
    free(t->err_msg);
    free(t);
}

void as__sock_unref_cb(void *p)
{
    as__sock_unref(p);
}

/* transport.h, lifetime rule 4: dropped while open.  Close without
 * flushing; the interface keeps the transport alive while teardown runs. */
static void sock_last_ref(as_transport *base)
{
    as__socket_transport *t = as__sock_of(base);
    if (t->state == AS__SOCK_OPEN)
        as__sock_teardown(t, 0, NULL, 0);
}

/* ------------------------------------------------------------ closing */

/*
 * Enter CLOSED (err == 0) or LOST (err < 0): everything the connection held
 * is released here, synchronously.  Idempotent.  No user callback runs:
 * finishing futures only schedules their callbacks.
 */
void as__sock_teardown(as__socket_transport *t, int err, const char *msg,
                       int rst)
{
    int self_ref = t->self_ref;

    if (t->state == AS__SOCK_CLOSED || t->state == AS__SOCK_LOST)
        return;
    t->state = err ? AS__SOCK_LOST : AS__SOCK_CLOSED;
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
        as__sock_unref(t);
    }
}

static void close_flushing(as__socket_transport *t)
{
    if (t->state != AS__SOCK_OPEN)
        return;
    t->state = AS__SOCK_CLOSING;
    if (t->reading) {
        as_loop_remove_reader(t->base.loop, t->fd);
        t->reading = 0;
    }
    if (as__writeq_len(&t->queue) == 0) {
        as__sock_teardown(t, 0, NULL, 0);
        return;
    }
    /* transport.h, lifetime rule 3: stay alive until the queue is out. */
    t->self_ref = 1;
    as__sock_ref(t);
    if (!t->want_write && !as__sock_flush_pending(t))
        as__sock_flush_queue(t);
}

static void sock_close(as_transport *t)
{
    close_flushing(as__sock_of(t));
}

static void sock_abort(as_transport *t)
{
    as__sock_teardown(as__sock_of(t), 0, NULL, 1);
}

/* close_within()'s deadline: whatever is still queued is dropped. */
static void close_deadline(void *p)
{
    as__socket_transport *t = p;
    as_handle_unref(t->close_timer);
    t->close_timer = NULL;
    if (t->state == AS__SOCK_CLOSING)
        as__sock_teardown(t, 0, NULL, 1);
}

static void sock_close_within(as_transport *base, double seconds)
{
    as__socket_transport *t = as__sock_of(base);
    if (t->state == AS__SOCK_CLOSED || t->state == AS__SOCK_LOST || t->close_timer)
        return;
    close_flushing(t); /* the flush starts; no-op if already closing */
    if (t->state != AS__SOCK_CLOSING || isnan(seconds))
        return; /* closed at once (nothing was queued), or NaN: no deadline */
    /* The timer needs no reference: teardown cancels it, and until then
     * the flush's own reference keeps us (transport.h rule 3).  If it cannot
     * be armed, the deadline cannot be kept: abort now. */
    if (seconds <= 0 ||
        as_loop_call_later(t->base.loop, seconds, close_deadline, t, NULL, &t->close_timer) < 0)
        as__sock_teardown(t, 0, NULL, 1);
}

static as_future *sock_closed(as_transport *t)
{
    return as_future_ref(as__sock_of(t)->closed);
}

static int sock_is_closing(const as_transport *base)
{
    return as__csock_of(base)->state != AS__SOCK_OPEN;
}

static int sock_error(const as_transport *base, const char **message)
{
    const as__socket_transport *t = as__csock_of(base);
    if (message)
        *message = t->err ? (t->err_msg ? t->err_msg : as_strerror(t->err)) : NULL;
    return t->err;
}

/* ------------------------------------------------------------ reading */

static void read_once(as__socket_transport *t);

/* The watcher holds no reference (lifetime: teardown removes it), so hold
 * one while we run: a fatal error may drop the last one. */
static void on_readable(void *p)
{
    as__socket_transport *t = p;
    as__sock_ref(t);
    read_once(t);
    as__sock_unref(t);
}

static void read_once(as__socket_transport *t)
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
            as__sock_fatal(t, -ENOMEM);
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
        as__sock_fatal(t, -errno);
    }
}

static int start_reading(as__socket_transport *t)
{
    int err;
    if (t->reading || t->read_paused || t->peer_eof || t->state != AS__SOCK_OPEN)
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
    as__socket_transport *t = as__sock_of(base);
    t->read_paused = 1;
    if (t->reading) {
        as_loop_remove_reader(t->base.loop, t->fd);
        t->reading = 0;
    }
    return 0;
}

static void deferred_fatal(void *p)
{
    as__socket_transport *t = p;
    as__sock_fatal(t, -ENOMEM);
}

static int sock_resume_reading(as_transport *base)
{
    as__socket_transport *t = as__sock_of(base);
    t->read_paused = 0;
    if (start_reading(t) < 0) {
        /* Could not watch the fd again (out of memory): the reader would
         * wait for ever.  Hooks must not call back into the reader, so
         * fail the connection from a callback instead.  If even that
         * cannot be scheduled, nothing more can be done here. */
        as__sock_ref(t);
        if (as_loop_call_soon(t->base.loop, deferred_fatal, t, as__sock_unref_cb,
                              NULL) < 0) {
            assert(t->base.refs > 1); /* the caller holds a reference */
            t->base.refs--;
        }
    }
    return 0;
}

static int sock_is_reading_paused(const as_transport *t)
{
    return as__csock_of(t)->read_paused;
}

/* ------------------------------------------------------------ extra info */

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
    const as__socket_transport *t = as__csock_of(base);
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

/* ------------------------------------------------------------ the table */

/* The as__sock_ rows are the writing half's (socket_transport_write.c). */
static const as_transport_ops socket_ops = {
    .name = "socket",
    .write = as__sock_write,
    .write_owned = as__sock_write_owned,
    .write_bytes = as__sock_write_bytes,
    .write_eof = as__sock_write_eof,
    .eof_written = as__sock_eof_written,
    .can_write_eof = as__sock_can_write_eof,
    .close = sock_close,
    .close_within = sock_close_within,
    .abort = sock_abort,
    .is_closing = sock_is_closing,
    .error = sock_error,
    .pause_reading = sock_pause_reading,
    .resume_reading = sock_resume_reading,
    .is_reading_paused = sock_is_reading_paused,
    .wait_writable = as__sock_wait_writable,
    .flush = as__sock_flush,
    .closed = sock_closed,
    .write_buffer_size = as__sock_write_buffer_size,
    .get_write_buffer_limits = as__sock_get_write_buffer_limits,
    .set_write_buffer_limits = as__sock_set_write_buffer_limits,
    .bytes_sent = as__sock_bytes_sent,
    .bytes_written = as__sock_bytes_written,
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
    as__sock_of(t)->coalesce = on ? 1 : 0;
    return 0;
}

/* ------------------------------------------------------------ creation */

/* Nothing was delivered yet: undo quietly (the closed future has no
 * waiter, and teardown would feed the reader an EOF it never saw coming). */
static void undo(as__socket_transport *t)
{
    (void)close(t->fd);
    t->state = AS__SOCK_CLOSED;
    as__sock_unref(t);
}

int as_socket_transport_new(as_loop *loop, int fd, as_reader *reader,
                            as_transport **out)
{
    as__socket_transport *t;
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
    t->state = AS__SOCK_OPEN;
    if (as_future_new(loop, &t->closed) < 0) {
        undo(t);
        return -ENOMEM;
    }
    as__sock_write_init(t);

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
