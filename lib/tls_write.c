/*
 * tls_write.c - the TLS transport's write side (tls_impl.h): plaintext
 * in, records out, and backpressure through both layers.
 *
 * tls.c runs the state machine; this file is what happens to the bytes
 * the application writes.  In OPEN they are encrypted at once and the
 * records go to the lower transport, which sends them or queues them.
 * Before that (the handshake), or when the engine refuses plaintext until
 * the peer has spoken, they wait as plaintext in the backlog, in order,
 * and tls.c calls as__tls_write_backlog() when the engine can take them.
 *
 * Backpressure counts both layers: the write buffer size is the backlog
 * plus the lower transport's queue, the limits are set on both, and while
 * drain() waits because the lower transport is full we wait for its
 * wait_writable() to hear when it has drained.  bytes_sent() counts the
 * plaintext whose records the kernel has taken, through marks that say
 * where each write's records end in the lower transport's stream.
 *
 * Costs: one copy of each plaintext byte into the engine (none into the
 * backlog while OPEN); a mark only when a write's records are queued
 * rather than sent at once.
 */
#include "tls_impl.h"
#include "errors.h"
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ flushes */

/* Flushes asked for while plaintext waits in the backlog (during the
 * handshake): one batch, handed to the lower transport's flush once the
 * backlog is encrypted.  So each completes when the records holding what
 * was written before it are in the kernel, and not before, even if the
 * backlog fills again meanwhile. */
struct as__tls_flush_batch {
    as__waiters waiters;
};
typedef struct as__tls_flush_batch flush_batch;

static flush_batch *batch_new(void)
{
    flush_batch *b = malloc(sizeof *b);
    if (b)
        as__waiters_init(&b->waiters, NULL, NULL);
    return b;
}

static void batch_free(void *p)
{
    flush_batch *b = p;
    as__waiters_free(&b->waiters, NULL); /* empty unless the loop closed */
    free(b);
}

static void batch_done(as_future *lower_flush, void *p)
{
    flush_batch *b = p;
    as__waiters_wake_all(&b->waiters, as_future_error(lower_flush),
                         as_future_error_message(lower_flush));
}

/* ------------------------------------------------------------ output */

/* What the engine produced goes to the lower transport, which sends it at
 * once or queues it (and counts it for our write buffer size). */
void as__tls_send_output(as__tls_transport *t)
{
    const void *data;
    size_t n;
    int err;

    if (!t->eng || (n = t->eng->output(t->engine, &data)) == 0)
        return;
    err = as_transport_write(t->lower, data, n);
    t->eng->output_done(t->engine);
    if (err < 0 && t->state != AS__TLS_CLOSED) {
        const char *msg = NULL;
        (void)as_transport_error(t->lower, &msg);
        as__tls_finish(t, err, msg, AS__TLS_LOWER_ABORT);
    }
}

/* Plaintext up to here is in records the lower transport now holds. */
static void add_mark(as__tls_transport *t)
{
    unsigned long long lower_sent = as_transport_bytes_sent(t->lower);
    as__tls_mark m;

    /* Retire the marks the kernel has passed. */
    while (t->mark_head < t->mark_n && t->marks[t->mark_head].cipher_end <= lower_sent)
        t->sent = t->marks[t->mark_head++].plain_end;
    if (t->mark_head == t->mark_n)
        t->mark_head = t->mark_n = 0;
    m.cipher_end = as_transport_bytes_written(t->lower);
    m.plain_end = t->encrypted;
    if (m.cipher_end <= lower_sent) {
        t->sent = m.plain_end; /* went out at once: the usual case */
        return;
    }
    if (t->mark_n == t->mark_cap) {
        if (t->mark_head > 0) {
            memmove(t->marks, t->marks + t->mark_head,
                    (t->mark_n - t->mark_head) * sizeof *t->marks);
            t->mark_n -= t->mark_head;
            t->mark_head = 0;
        } else {
            size_t cap = t->mark_cap ? 2 * t->mark_cap : 16;
            as__tls_mark *v = realloc(t->marks, cap * sizeof *v);
            if (!v)
                return; /* bytes_sent() then lags behind; nothing else is wrong */
            t->marks = v;
            t->mark_cap = cap;
        }
    }
    t->marks[t->mark_n++] = m;
}

/* ------------------------------------------------------------ writing */

static size_t buffer_size(const as__tls_transport *t)
{
    return as_buffer_len(&t->backlog) + as_transport_get_write_buffer_size(t->lower);
}

static void lower_writable(as_future *f, void *p)
{
    as__tls_link *l = p;
    as__tls_transport *t = l->t;
    (void)as_future_error(f); /* an error shows up through the cipher reader */
    if (!t)
        return;
    t->watching = 0;
    if (t->state != AS__TLS_CLOSED)
        as__tls_check_watermarks(t);
}

/* Wait for the lower transport to drain, if it is what holds us above
 * high water (its limits are ours: set_write_buffer_limits sets both).  A
 * backlog of plaintext drains when the handshake ends, which checks again. */
static void watch_lower(as__tls_transport *t)
{
    size_t high;
    as_future *f;

    if (t->watching)
        return;
    as_transport_get_write_buffer_limits(t->lower, &high, NULL);
    if (as_transport_get_write_buffer_size(t->lower) <= high)
        return;
    if (!(f = as_transport_wait_writable(t->lower)))
        return;
    if (as_future_add_done_callback(f, lower_writable, as__tls_link_ref(t->link),
                                    as__tls_link_unref) == 0)
        t->watching = 1;
    else
        as__tls_link_unref(t->link);
    as_future_unref(f);
}

/* CPython's pause/resume writing, for both layers at once. */
void as__tls_check_watermarks(as__tls_transport *t)
{
    size_t size = buffer_size(t);
    if (!t->write_paused && size > t->high) {
        t->write_paused = 1;
    } else if (t->write_paused && size <= t->low) {
        t->write_paused = 0;
        /* Nothing after this touches t: on a closed loop a woken drain's
         * callbacks are released at once, and may drop t (waiters.h). */
        as__waiters_wake_all(&t->drain, 0, NULL);
        return;
    }
    if (t->write_paused)
        watch_lower(t);
}

/* Give plaintext to the engine and send what it makes.  Returns how much
 * it took (all, unless it said WANT), or an error. */
static int encrypt(as__tls_transport *t, const unsigned char *p, size_t len, size_t *taken)
{
    size_t done = 0;
    int rc = AS_TLS_OK;

    while (done < len && rc == AS_TLS_OK) {
        size_t n = 0;
        rc = t->eng->write(t->engine, p + done, len - done, &n);
        done += n;
    }
    *taken = done;
    t->encrypted += done;
    as__tls_send_output(t);
    add_mark(t);
    return rc < 0 ? rc : 0;
}

/* The backlog is encrypted: the flushes that waited for it now wait for
 * the lower transport's flush, which covers every record made so far. */
static void hand_flushes_down(as__tls_transport *t)
{
    flush_batch *b = t->flushes;
    as_future *f;

    if (!b)
        return;
    t->flushes = NULL;
    f = as_transport_flush(t->lower);
    if (!f || as_future_add_done_callback(f, batch_done, b, batch_free) < 0) {
        as__waiters_wake_all(&b->waiters, -ENOMEM, NULL);
        batch_free(b);
    }
    as_future_unref(f);
}

/* Plaintext kept while the engine could not take it: written during the
 * handshake, or refused by the engine until the peer says more. */
int as__tls_write_backlog(as__tls_transport *t)
{
    size_t taken;
    int err;
    if (as_buffer_len(&t->backlog) == 0)
        return 0;
    err = encrypt(t, as_buffer_data(&t->backlog), as_buffer_len(&t->backlog), &taken);
    as_buffer_consume(&t->backlog, taken);
    if (err < 0)
        as__tls_finish(t, err, as__tls_engine_message(t), AS__TLS_LOWER_CLOSE);
    else if (as_buffer_len(&t->backlog) == 0)
        hand_flushes_down(t);
    return err;
}

/* Append all the buffers to the backlog, or none of them. */
static int keep(as__tls_transport *t, const struct iovec *iov, int iovcnt, size_t total,
                size_t skip)
{
    size_t avail, off = 0;
    unsigned char *room = as_buffer_reserve(&t->backlog, total - skip, &avail);
    int i;

    if (!room)
        return -ENOMEM;
    for (i = 0; i < iovcnt; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(room + off, (const unsigned char *)iov[i].iov_base + skip, len - skip);
        off += len - skip;
        skip = 0;
    }
    as_buffer_commit(&t->backlog, off);
    return 0;
}

static int write_state_error(const as__tls_transport *t)
{
    if (t->err)
        return t->err;
    if (t->state == AS__TLS_SHUTTING_DOWN || t->state == AS__TLS_CLOSED)
        return AS_ECLOSED;
    return 0;
}

int as__tls_write(as_transport *base, const struct iovec *iov, int iovcnt,
                     size_t total)
{
    as__tls_transport *t = as__tls_of(base);
    size_t done = 0;
    int i, err = write_state_error(t);

    if (err != 0 || total == 0)
        return err;
    if (t->state == AS__TLS_OPEN && as_buffer_len(&t->backlog) == 0) {
        /* The usual case: encrypt now, each buffer in turn. */
        as__tls_ref(t);
        for (i = 0; i < iovcnt && err == 0; i++) {
            size_t taken;
            err = encrypt(t, iov[i].iov_base, iov[i].iov_len, &taken);
            done += taken;
            if (err == 0 && taken < iov[i].iov_len)
                break; /* the engine wants to read first: keep the rest */
        }
        if (err < 0 || t->state == AS__TLS_CLOSED) {
            if (err < 0)
                as__tls_finish(t, err, as__tls_engine_message(t), AS__TLS_LOWER_CLOSE);
            err = t->err ? t->err : AS_ECLOSED;
            as__tls_unref(t);
            return err;
        }
        as__tls_unref(t);
    }
    if (done < total && (err = keep(t, iov, iovcnt, total, done)) < 0) {
        if (done > 0) /* part is encrypted, the rest lost: a hole */
            as__tls_finish(t, err, NULL, AS__TLS_LOWER_ABORT);
        return err;
    }
    t->written += total;
    as__tls_check_watermarks(t);
    return 0;
}

/* The engine encrypts at once (or keeps a copy while handshaking), so
 * the caller's buffer is free as soon as this returns. */
int as__tls_write_owned(as_transport *base, const void *data, size_t len,
                           void *owner, as_destroy_fn release)
{
    struct iovec iov;
    int err;
    iov.iov_base = (void *)data;
    iov.iov_len = len;
    if ((err = as__tls_write(base, &iov, 1, len)) == 0)
        release(owner);
    return err;
}

/* TLS has no half-close for asyncio (its SSL transport cannot write EOF). */
int as__tls_write_eof(as_transport *base)
{
    int err = write_state_error(as__tls_of(base));
    return err ? err : AS_ESTATE;
}

int as__tls_eof_written(const as_transport *t)
{
    (void)t;
    return 0;
}

int as__tls_can_write_eof(const as_transport *t)
{
    (void)t;
    return 0;
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

as_future *as__tls_wait_writable(as_transport *base)
{
    as__tls_transport *t = as__tls_of(base);
    if (t->err)
        return as__future_failed(t->base.loop, t->err, t->err_msg);
    if (t->write_paused)
        return as__waiters_add(&t->drain, t->base.loop);
    if (!t->ready && !(t->ready = finished_future(t->base.loop)))
        return NULL;
    return as_future_ref(t->ready);
}

/* Every plaintext byte encrypted and every record in the kernel: the
 * backlog first (it empties when the handshake ends), then the lower
 * transport's own flush. */
as_future *as__tls_flush(as_transport *base)
{
    as__tls_transport *t = as__tls_of(base);

    if (t->err)
        return as__future_failed(t->base.loop, t->err, t->err_msg);
    if (t->dropped)
        return as__future_failed(t->base.loop, AS_ECONNLOST,
                                 "Connection lost: written bytes were dropped");
    if (as_buffer_len(&t->backlog) == 0)
        return as_transport_flush(t->lower);
    if (!t->flushes && !(t->flushes = batch_new()))
        return NULL;
    return as__waiters_add(&t->flushes->waiters, t->base.loop);
}

/* ------------------------------------------------------------ accessors */

size_t as__tls_write_buffer_size(const as_transport *t)
{
    return buffer_size(as__tls_cof(t));
}

void as__tls_get_limits(const as_transport *base, size_t *high, size_t *low)
{
    *high = as__tls_cof(base)->high;
    *low = as__tls_cof(base)->low;
}

/* Both layers get the limits: the lower transport's drain is what wakes
 * ours once the backlog is encrypted. */
void as__tls_set_limits(as_transport *base, size_t high, size_t low)
{
    as__tls_transport *t = as__tls_of(base);
    t->high = high;
    t->low = low;
    (void)as_transport_set_write_buffer_limits(t->lower, (long long)high, (long long)low);
    as__tls_check_watermarks(t);
}

unsigned long long as__tls_bytes_sent(const as_transport *base)
{
    const as__tls_transport *t = as__tls_cof(base);
    unsigned long long lower_sent = as_transport_bytes_sent(t->lower), sent = t->sent;
    size_t i;
    for (i = t->mark_head; i < t->mark_n && t->marks[i].cipher_end <= lower_sent; i++)
        sent = t->marks[i].plain_end;
    return sent;
}

unsigned long long as__tls_bytes_written(const as_transport *t)
{
    return as__tls_cof(t)->written;
}

/* ------------------------------------------------------------ life */

void as__tls_write_init(as__tls_transport *t)
{
    as_buffer_init(&t->backlog);
    as__waiters_init(&t->drain, NULL, NULL);
    t->high = AS_TRANSPORT_DEFAULT_HIGH_WATER;
    t->low = t->high / 4;
    (void)as_transport_set_write_buffer_limits(t->lower, (long long)t->high,
                                               (long long)t->low);
}

/* CLOSED: plaintext not yet encrypted is dropped (flush() says so from now
 * on), and every drain and every flush waiting for it is woken. */
void as__tls_write_closed(as__tls_transport *t, int err)
{
    if (as_buffer_len(&t->backlog) > 0)
        t->dropped = 1;
    as_buffer_destroy(&t->backlog);
    t->write_paused = 0;
    as__waiters_wake_all(&t->drain, err, t->err_msg);
    if (t->flushes) { /* their plaintext is gone with the backlog */
        as__waiters_wake_all(&t->flushes->waiters, err ? err : AS_ECONNLOST,
                             err ? t->err_msg
                                 : "Connection lost: written bytes were dropped");
        batch_free(t->flushes);
        t->flushes = NULL;
    }
}

void as__tls_write_free(as__tls_transport *t)
{
    as_buffer_destroy(&t->backlog);
    as__waiters_free(&t->drain, NULL); /* as__tls_write_closed() woke them */
    if (t->flushes)
        batch_free(t->flushes);
    as_future_unref(t->ready);
    free(t->marks);
}
