/*
 * memory_transport.c - a transport of your own (chapter 6): two ends of a
 * pipe in memory, behind the same table of operations as the socket
 * transport, so an ordinary StreamReader and StreamWriter run over it.
 *
 * A write on one end feeds the other end's reader, unless that reader has
 * paused reading (its buffer is full): then the bytes wait in the writing
 * end's queue, which counts towards its write-buffer limits, so drain()
 * waits, exactly as over a socket whose peer does not read.  The program
 * echoes lines through the pair and prints what it checked; exit 0 if
 * everything held.
 */
#include <asyncstreams.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* listing: struct */
typedef struct mem_end {
    as_transport base;        /* first: the interface's part */
    struct mem_end *peer;     /* NULL once either end is gone */
    as_buffer queue;          /* written, waiting for the peer to resume */
    size_t high, low;
    int closing, eof_written, paused;
    unsigned long long written;
    as_future *closed;        /* finished when this end closes */
    as_future *drained;       /* pending while the queue is above high water */
} mem_end;
/* end listing */

static mem_end *end_of(as_transport *t) { return (mem_end *)t; }
static const mem_end *cend_of(const as_transport *t) { return (const mem_end *)t; }

/* listing: deliver */
/* Hand what the queue holds to the peer's reader, 64 KiB at a time as a
 * socket would, until the reader pauses (its flow control calls
 * mem_pause_reading() from inside feed_data); then wake drain() if the
 * queue went down to low water. */
static void deliver(mem_end *e)
{
    size_t n;
    while ((n = as_buffer_len(&e->queue)) > 0 && e->peer && !e->peer->paused) {
        if (n > 65536)
            n = 65536;
        if (as_reader_feed_data(e->peer->base.reader, as_buffer_data(&e->queue), n) < 0)
            break; /* the peer's reader is at EOF or out of memory */
        as_buffer_consume(&e->queue, n);
    }
    if (e->drained && as_buffer_len(&e->queue) <= e->low) {
        (void)as_future_set_result(e->drained, NULL, NULL);
        as_future_unref(e->drained);
        e->drained = NULL;
    }
}
/* end listing */

static int mem_write(as_transport *t, const struct iovec *iov, int iovcnt, size_t total)
{
    mem_end *e = end_of(t);
    int i, err;
    if (e->closing)
        return AS_ECLOSED;
    if (e->eof_written)
        return AS_ESTATE;
    if (!e->peer)
        return -EPIPE; /* the other end is gone */
    for (i = 0; i < iovcnt; i++)
        if ((err = as_buffer_append(&e->queue, iov[i].iov_base, iov[i].iov_len)) < 0)
            return err;
    e->written += total;
    deliver(e);
    return 0;
}

static int mem_write_owned(as_transport *t, const void *data, size_t len,
                           void *owner, as_destroy_fn release)
{
    struct iovec iov;
    int err;
    iov.iov_base = (void *)data;
    iov.iov_len = len;
    if ((err = mem_write(t, &iov, 1, len)) == 0)
        release(owner); /* copied: the caller's buffer is free at once */
    return err;
}

/* This end is done: the peer's reader sees EOF, ours too, and whatever is
 * queued is dropped (close() here does not wait for a peer to resume). */
static void mem_finish(mem_end *e)
{
    if (e->closing)
        return;
    e->closing = 1;
    as_buffer_destroy(&e->queue);
    deliver(e); /* an empty queue: wakes any drain */
    if (e->peer) {
        as_reader_feed_eof(e->peer->base.reader);
        e->peer->peer = NULL;
        e->peer = NULL;
    }
    as_reader_feed_eof(e->base.reader);
    (void)as_future_set_result(e->closed, NULL, NULL);
}

static int mem_write_eof(as_transport *t)
{
    mem_end *e = end_of(t);
    if (e->closing)
        return AS_ECLOSED;
    if (!e->eof_written && e->peer)
        as_reader_feed_eof(e->peer->base.reader);
    e->eof_written = 1;
    return 0;
}

static int mem_eof_written(const as_transport *t) { return cend_of(t)->eof_written; }
static int mem_can_write_eof(const as_transport *t) { (void)t; return 1; }
static void mem_close(as_transport *t) { mem_finish(end_of(t)); }
static void mem_close_within(as_transport *t, double s) { (void)s; mem_finish(end_of(t)); }
static int mem_is_closing(const as_transport *t) { return cend_of(t)->closing; }

static int mem_error(const as_transport *t, const char **message)
{
    (void)t;
    if (message)
        *message = NULL;
    return 0;
}

/* listing: flow */
/* Our reader is full: the peer keeps what it writes until we resume. */
static int mem_pause_reading(as_transport *t)
{
    end_of(t)->paused = 1;
    return 0;
}

/* A hook must not call back into the reader that called it, so the
 * peer's queue is delivered from a callback on the next turn. */
static void deliver_later(void *p)
{
    deliver(p);
}

static void unref_end(void *p)
{
    as_transport_unref(p);
}

static int mem_resume_reading(as_transport *t)
{
    mem_end *e = end_of(t);
    e->paused = 0;
    if (!e->peer)
        return 0;
    as_transport_ref(&e->peer->base);
    if (as_loop_call_soon(t->loop, deliver_later, e->peer, unref_end, NULL) < 0) {
        as_transport_unref(&e->peer->base);
        return -ENOMEM;
    }
    return 0;
}
/* end listing */

static int mem_is_reading_paused(const as_transport *t) { return cend_of(t)->paused; }

static as_future *finished(as_loop *loop)
{
    as_future *f;
    if (as_future_new(loop, &f) == 0)
        (void)as_future_set_result(f, NULL, NULL);
    return f;
}

static as_future *mem_wait_writable(as_transport *t)
{
    mem_end *e = end_of(t);
    if (as_buffer_len(&e->queue) <= e->high)
        return finished(t->loop);
    if (!e->drained && as_future_new(t->loop, &e->drained) < 0)
        return NULL;
    return as_future_ref(e->drained);
}

static as_future *mem_flush(as_transport *t) { return mem_wait_writable(t); }
static as_future *mem_closed(as_transport *t) { return as_future_ref(end_of(t)->closed); }
static size_t mem_buffer_size(const as_transport *t) { return as_buffer_len(&cend_of(t)->queue); }

static void mem_get_limits(const as_transport *t, size_t *high, size_t *low)
{
    *high = cend_of(t)->high;
    *low = cend_of(t)->low;
}

static void mem_set_limits(as_transport *t, size_t high, size_t low)
{
    end_of(t)->high = high;
    end_of(t)->low = low;
}

static unsigned long long mem_sent(const as_transport *t)
{
    return cend_of(t)->written - as_buffer_len(&cend_of(t)->queue);
}

static unsigned long long mem_written(const as_transport *t) { return cend_of(t)->written; }

static int mem_extra(const as_transport *t, const char *key, as_extra_info *out)
{
    (void)t;
    if (strcmp(key, "kind") != 0)
        return AS_ENOKEY; /* no addresses, no fd */
    out->kind = AS_EXTRA_STRING;
    out->u.string = "memory pipe";
    return 0;
}

static void mem_last_ref(as_transport *t) { mem_finish(end_of(t)); }

static void mem_destroy(as_transport *t)
{
    mem_end *e = end_of(t);
    as_future_unref(e->closed);
    as_future_unref(e->drained);
    as_buffer_destroy(&e->queue);
    free(e);
}

/* listing: ops */
static const as_transport_ops mem_ops = {
    .name = "memory",
    .write = mem_write,
    .write_owned = mem_write_owned, /* no write_bytes: write_owned + free */
    .write_eof = mem_write_eof,
    .eof_written = mem_eof_written,
    .can_write_eof = mem_can_write_eof,
    .close = mem_close,
    .close_within = mem_close_within,
    .abort = mem_close,
    .is_closing = mem_is_closing,
    .error = mem_error,
    .pause_reading = mem_pause_reading,
    .resume_reading = mem_resume_reading,
    .is_reading_paused = mem_is_reading_paused,
    .wait_writable = mem_wait_writable,
    .flush = mem_flush,
    .closed = mem_closed,
    .write_buffer_size = mem_buffer_size,
    .get_write_buffer_limits = mem_get_limits,
    .set_write_buffer_limits = mem_set_limits,
    .bytes_sent = mem_sent,
    .bytes_written = mem_written,
    .get_extra_info = mem_extra,
    .last_ref = mem_last_ref,
    .destroy = mem_destroy,
};
/* end listing */

static int mem_end_new(as_loop *loop, as_reader *reader, mem_end **out)
{
    mem_end *e = calloc(1, sizeof *e);
    int err;
    if (!e)
        return -ENOMEM;
    if ((err = as_transport_init(&e->base, &mem_ops, loop, reader)) < 0) {
        free(e);
        return err;
    }
    as_buffer_init(&e->queue);
    e->high = AS_TRANSPORT_DEFAULT_HIGH_WATER;
    e->low = e->high / 4;
    if ((err = as_future_new(loop, &e->closed)) < 0) {
        e->closing = 1; /* nothing to tell anybody */
        as_transport_unref(&e->base);
        return err;
    }
    *out = e;
    return 0;
}

/* ------------------------------------------------------------ the demo */

static int failed;

static void check(int ok, const char *what)
{
    printf("  %-60s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok)
        failed = 1;
}

struct side {
    as_reader *reader;
    as_writer *writer;
};

static int make_side(as_loop *loop, mem_end **end, struct side *s)
{
    int err;
    if ((err = as_reader_new(loop, AS_READER_DEFAULT_LIMIT, &s->reader)) < 0 ||
        (err = mem_end_new(loop, s->reader, end)) < 0)
        return err;
    err = as_writer_new(&(*end)->base, s->reader, &s->writer);
    as_transport_unref(&(*end)->base); /* the writer holds it */
    return err;
}

int main(void)
{
    static char big[300000];
    as_loop *loop;
    struct side a, b;
    mem_end *ea, *eb;
    as_future *f, *d;
    as_extra_info info;
    as_bytes *line;

    if (as_loop_new(&loop) < 0 || make_side(loop, &ea, &a) < 0 || make_side(loop, &eb, &b) < 0)
        return 1;
    ea->peer = eb;
    eb->peer = ea;
    printf("two ends of a memory pipe, behind the transport interface:\n");

    /* listing: use */
    as_writer_write(a.writer, "hello over memory\n", 18);
    f = as_reader_readline(b.reader);
    as_loop_run_until_complete(loop, f);
    line = as_future_result(f);
    /* end listing */
    check(line && line->len == 18 && memcmp(line->data, "hello over memory\n", 18) == 0,
          "a line written on one end is read on the other");
    as_future_unref(f);

    check(strcmp(as_transport_kind(as_writer_transport(a.writer)), "memory") == 0,
          "the transport says what kind it is");
    check(as_transport_get_extra_info(as_writer_transport(a.writer), "kind", &info) == 0 &&
          info.kind == AS_EXTRA_STRING, "its own extra info key");
    check(as_transport_get_extra_info(as_writer_transport(a.writer), "peername", &info) ==
          AS_ENOKEY, "a key it does not have: AS_ENOKEY");

    /* Backpressure through the interface: b's reader pauses above twice its
     * limit, a's queue then grows, and a's drain() waits until b reads. */
    memset(big, 'x', sizeof big);
    as_writer_write(a.writer, big, sizeof big);
    check(as_transport_is_reading_paused(as_writer_transport(b.writer)),
          "a full reader paused its transport");
    check(as_writer_get_write_buffer_size(a.writer) > 0, "the writer's queue holds the rest");
    d = as_writer_drain(a.writer);
    check(d && !as_future_done(d), "so drain() waits");
    f = as_reader_readexactly(b.reader, (ssize_t)sizeof big);
    as_loop_run_until_complete(loop, f);
    check(as_future_error(f) == 0 && ((as_bytes *)as_future_result(f))->len == sizeof big,
          "the reader gets every byte, in order");
    check(as_future_done(d) && as_future_error(d) == 0, "and drain() finished");
    as_future_unref(f);
    as_future_unref(d);

    as_writer_close(a.writer);
    f = as_reader_read(b.reader, -1);
    as_loop_run_until_complete(loop, f);
    check(as_future_error(f) == 0 && ((as_bytes *)as_future_result(f))->len == 0,
          "closing one end is EOF at the other");
    as_future_unref(f);
    as_writer_close(b.writer);

    as_writer_unref(a.writer);
    as_writer_unref(b.writer);
    as_reader_unref(a.reader);
    as_reader_unref(b.reader);
    check(as_loop_close(loop) == 0, "the loop closes with nothing alive");
    return failed;
}
