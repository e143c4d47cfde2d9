/*
 * tls.c - TLS as a transport over another transport (contracts: tls.h).
 *
 * Theory of operation.
 *
 * Without TLS, "the fd is readable" means "data for the application": the
 * socket transport receives into the reader and is done.  With TLS that
 * stops being true.  What arrives is ciphertext, and a few hundred bytes
 * of it may be a handshake message that yields no plaintext at all, or the
 * first half of a record that yields nothing until the second half comes,
 * or a record that makes the engine want to *send* something (a handshake
 * reply, an alert).  Writing has the mirror problem: during the handshake
 * nothing the application writes can be sent yet.  So TLS cannot sit
 * inside the socket transport's read and write calls; it sits above it,
 * as a transport of its own, and drives the engine entirely in memory:
 *
 *     lower transport --ciphertext--> cipher reader --tap--> engine.feed
 *     engine.read --plaintext--> application's reader
 *     application's write --plaintext--> engine.write
 *     engine.output --ciphertext--> lower transport's write
 *
 * The lower transport (normally a socket transport) does not know it is
 * under TLS: it feeds a reader as always.  That reader, the "cipher
 * reader", is ours; a tap (internal.h) tells us synchronously whenever it
 * is fed, and we move its bytes into the engine.  Everything then happens
 * in one function, pump(), which looks at the state and does whatever can
 * be done now: take ciphertext in, run a handshake step, encrypt queued
 * plaintext, decrypt into the application's reader, run a shutdown step,
 * send what the engine produced, and notice the lower transport's EOF or
 * error.  Every event (bytes arrived, the application wrote, closed,
 * resumed reading, a timer fired) ends in pump(), and pump() is re-entrant
 * by design: a call made while it runs (a lower write failing and feeding
 * the cipher reader an error, say) only asks it to go round once more.
 *
 * The state machine (tls.h, tutorial/tls-states.dot) depends on nothing
 * but the engine interface, so another engine (a binding's) drives the
 * same code.  OpenSSL's engine is in tls_openssl.c.
 *
 * Costs: one copy of each ciphertext byte into the engine (the memory BIO)
 * and one out of it (the lower transport copies what the kernel does not
 * take at once); plaintext is decrypted straight into the reader's buffer.
 */
#include "tls_internal.h"
#include "errors.h"
#include "internal.h"
#include "waiters.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum state { HANDSHAKING, OPEN, SHUTTING_DOWN, CLOSED };

/* How finish() leaves the lower transport: closed after what is queued
 * (our alert or close_notify included), or reset at once. */
enum how { LOWER_CLOSE, LOWER_ABORT };

/* The application's reader gets at most this much room per decrypt: a
 * TLS record holds 16 KiB, and reading several in one call saves calls. */
#define READ_ROOM 65536

/* ------------------------------------------------------------ futures */

/* A future already finished with no result. */
static as_future *finished_future(as_loop *loop)
{
    as_future *f;
    if (as_future_new(loop, &f) == 0)
        (void)as_future_set_result(f, NULL, NULL);
    return f;
}

/* Flushes asked for while plaintext waits in the backlog (during the
 * handshake): one batch, handed to the lower transport's flush once the
 * backlog is encrypted.  So each completes when the records holding what
 * was written before it are in the kernel, and not before, even if the
 * backlog fills again meanwhile. */
typedef struct flush_batch {
    as__waiters waiters;
} flush_batch;

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

/* ------------------------------------------------------------ the transport */

struct tls_transport;

/* A weak reference for callbacks that may outlive the transport (a
 * future's done callback cannot always be removed once scheduled): the
 * transport clears `t` when it is freed.  Holding a strong reference
 * instead would keep an abandoned connection open for ever. */
typedef struct tls_link {
    struct tls_transport *t;
    unsigned refs;
} tls_link;

/* Where plaintext ends in the ciphertext stream, for bytes_sent(). */
typedef struct mark {
    unsigned long long cipher_end; /* the lower transport's bytes_written */
    unsigned long long plain_end;  /* our plaintext encrypted by then */
} mark;

typedef struct tls_transport {
    as_transport base;            /* first; base.reader is the application's */
    as_transport *lower;          /* ours (tls.h, rule 1) */
    as_reader *cipher;            /* lower's reader: ciphertext, tapped */
    const as_tls_engine_ops *eng; /* NULL until the configuration is ready */
    void *engine;
    enum state state;

    unsigned int read_paused : 1;   /* the application's reader is full */
    unsigned int write_paused : 1;  /* above high water: drain() waits */
    unsigned int lower_eof : 1;     /* the cipher reader was fed EOF */
    unsigned int self_ref : 1;      /* transport.h rule 3, while shutting down */
    unsigned int pumping : 1;
    unsigned int again : 1;         /* pump() was asked while it ran */
    unsigned int watching : 1;      /* a lower wait_writable is subscribed */
    unsigned int dropped : 1;       /* plaintext was dropped (abort) */

    as_buffer backlog;              /* plaintext not yet given to the engine */
    size_t high, low;
    unsigned long long written;     /* plaintext accepted by write() */
    unsigned long long encrypted;   /* plaintext given to the engine */
    unsigned long long sent;        /* plaintext whose records reached the kernel */
    mark *marks;
    size_t mark_head, mark_n, mark_cap;

    int err;
    char *err_msg;
    as__waiters drain;              /* waiting drains (waiters.h) */
    flush_batch *flushes;           /* flushes waiting for the backlog, or NULL */
    as_future *ready;               /* finished; every drain that need not wait */
    as_future *closed;
    as_future *handshake;
    as_future *cfg_wait;            /* the configuration being loaded */
    as_handle *pump_handle;         /* pump() at the end of a turn */
    as_handle *hs_timer, *sd_timer, *close_timer;
    double created;
    double hs_timeout, sd_timeout;
    tls_link *link;
} tls_transport;

static const as_transport_ops tls_ops;

static tls_transport *tls_of(as_transport *t)
{
    return (tls_transport *)t;
}

static const tls_transport *ctls_of(const as_transport *t)
{
    return (const tls_transport *)t;
}

static void ref(tls_transport *t)
{
    t->base.refs++;
}

static void unref(tls_transport *t)
{
    as_transport_unref(&t->base);
}

static void unref_cb(void *p)
{
    unref(p);
}

static tls_link *link_ref(tls_link *l)
{
    l->refs++;
    return l;
}

static void link_unref(void *p)
{
    tls_link *l = p;
    assert(l->refs > 0);
    if (--l->refs == 0)
        free(l);
}

static void pump(tls_transport *t);
static void finish(tls_transport *t, int err, const char *msg, enum how how);

static void cancel_timer(as_handle **h)
{
    if (*h) {
        as_handle_cancel(*h);
        as_handle_unref(*h);
        *h = NULL;
    }
}

static const char *engine_message(const tls_transport *t)
{
    const char *m = t->eng ? t->eng->error_message(t->engine) : NULL;
    return m && *m ? m : NULL;
}

/* ------------------------------------------------------------ output */

/* What the engine produced goes to the lower transport, which sends it at
 * once or queues it (and counts it for our write buffer size). */
static void send_output(tls_transport *t)
{
    const void *data;
    size_t n;
    int err;

    if (!t->eng || (n = t->eng->output(t->engine, &data)) == 0)
        return;
    err = as_transport_write(t->lower, data, n);
    t->eng->output_done(t->engine);
    if (err < 0 && t->state != CLOSED) {
        const char *msg = NULL;
        (void)as_transport_error(t->lower, &msg);
        finish(t, err, msg, LOWER_ABORT);
    }
}

/* Plaintext up to here is in records the lower transport now holds. */
static void add_mark(tls_transport *t)
{
    unsigned long long lower_sent = as_transport_bytes_sent(t->lower);
    mark m;

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
            mark *v = realloc(t->marks, cap * sizeof *v);
            if (!v)
                return; /* bytes_sent() then lags behind; nothing else is wrong */
            t->marks = v;
            t->mark_cap = cap;
        }
    }
    t->marks[t->mark_n++] = m;
}

/* ------------------------------------------------------------ writing */

static size_t buffer_size(const tls_transport *t)
{
    return as_buffer_len(&t->backlog) + as_transport_get_write_buffer_size(t->lower);
}

static void check_watermarks(tls_transport *t);

static void lower_writable(as_future *f, void *p)
{
    tls_link *l = p;
    tls_transport *t = l->t;
    (void)as_future_error(f); /* an error shows up through the cipher reader */
    if (!t)
        return;
    t->watching = 0;
    if (t->state != CLOSED)
        check_watermarks(t);
}

/* Wait for the lower transport to drain, if it is what holds us above
 * high water (its limits are ours: set_write_buffer_limits sets both).  A
 * backlog of plaintext drains when the handshake ends, which checks again. */
static void watch_lower(tls_transport *t)
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
    if (as_future_add_done_callback(f, lower_writable, link_ref(t->link), link_unref) == 0)
        t->watching = 1;
    else
        link_unref(t->link);
    as_future_unref(f);
}

/* CPython's pause/resume writing, for both layers at once. */
static void check_watermarks(tls_transport *t)
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
static int encrypt(tls_transport *t, const unsigned char *p, size_t len, size_t *taken)
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
    send_output(t);
    add_mark(t);
    return rc < 0 ? rc : 0;
}

/* The backlog is encrypted: the flushes that waited for it now wait for
 * the lower transport's flush, which covers every record made so far. */
static void hand_flushes_down(tls_transport *t)
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
static int write_backlog(tls_transport *t)
{
    size_t taken;
    int err;
    if (as_buffer_len(&t->backlog) == 0)
        return 0;
    err = encrypt(t, as_buffer_data(&t->backlog), as_buffer_len(&t->backlog), &taken);
    as_buffer_consume(&t->backlog, taken);
    if (err < 0)
        finish(t, err, engine_message(t), LOWER_CLOSE);
    else if (as_buffer_len(&t->backlog) == 0)
        hand_flushes_down(t);
    return err;
}

/* Append all the buffers to the backlog, or none of them. */
static int keep(tls_transport *t, const struct iovec *iov, int iovcnt, size_t total,
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

static int write_state_error(const tls_transport *t)
{
    if (t->err)
        return t->err;
    if (t->state == SHUTTING_DOWN || t->state == CLOSED)
        return AS_ECLOSED;
    return 0;
}

static int tls_write(as_transport *base, const struct iovec *iov, int iovcnt,
                     size_t total)
{
    tls_transport *t = tls_of(base);
    size_t done = 0;
    int i, err = write_state_error(t);

    if (err != 0 || total == 0)
        return err;
    if (t->state == OPEN && as_buffer_len(&t->backlog) == 0) {
        /* The usual case: encrypt now, each buffer in turn. */
        ref(t);
        for (i = 0; i < iovcnt && err == 0; i++) {
            size_t taken;
            err = encrypt(t, iov[i].iov_base, iov[i].iov_len, &taken);
            done += taken;
            if (err == 0 && taken < iov[i].iov_len)
                break; /* the engine wants to read first: keep the rest */
        }
        if (err < 0 || t->state == CLOSED) {
            if (err < 0)
                finish(t, err, engine_message(t), LOWER_CLOSE);
            err = t->err ? t->err : AS_ECLOSED;
            unref(t);
            return err;
        }
        unref(t);
    }
    if (done < total && (err = keep(t, iov, iovcnt, total, done)) < 0) {
        if (done > 0) /* part is encrypted, the rest lost: a hole */
            finish(t, err, NULL, LOWER_ABORT);
        return err;
    }
    t->written += total;
    check_watermarks(t);
    return 0;
}

/* The engine encrypts at once (or keeps a copy while handshaking), so
 * the caller's buffer is free as soon as this returns. */
static int tls_write_owned(as_transport *base, const void *data, size_t len,
                           void *owner, as_destroy_fn release)
{
    struct iovec iov;
    int err;
    iov.iov_base = (void *)data;
    iov.iov_len = len;
    if ((err = tls_write(base, &iov, 1, len)) == 0)
        release(owner);
    return err;
}

/* TLS has no half-close for asyncio (its SSL transport cannot write EOF). */
static int tls_write_eof(as_transport *base)
{
    int err = write_state_error(tls_of(base));
    return err ? err : AS_ESTATE;
}

static int tls_eof_written(const as_transport *t)
{
    (void)t;
    return 0;
}

static int tls_can_write_eof(const as_transport *t)
{
    (void)t;
    return 0;
}

/* ------------------------------------------------------------ reading */

/* The lower transport has finished (EOF or an error). */
static int lower_done(tls_transport *t)
{
    return t->lower_eof || as_reader_exception(t->cipher, NULL) != 0;
}

/* Move the ciphertext the lower transport delivered into the engine:
 * all of it, unless the application's reader is full (then it stays in
 * the cipher reader, and the lower transport is paused).  Once the lower
 * transport has finished, everything is taken, so nothing decryptable is
 * left behind. */
static int take_ciphertext(tls_transport *t)
{
    const unsigned char *data;
    size_t n;
    int err;

    if (t->read_paused && t->state == OPEN && !lower_done(t))
        return 0;
    if ((n = as_reader_peek(t->cipher, &data)) == 0)
        return 0;
    if ((err = t->eng->feed(t->engine, data, n)) < 0) {
        finish(t, err, NULL, LOWER_ABORT);
        return err;
    }
    as__reader_consume(t->cipher, n);
    return 0;
}

static void start_shutdown(tls_transport *t);

/* The peer sent close_notify: EOF for the reader, after every byte, and
 * the connection closes itself (CPython's SSLProtocol does the same). */
static void peer_closed(tls_transport *t)
{
    as_reader_feed_eof(t->base.reader);
    start_shutdown(t);
}

/* Decrypt into the application's reader until the engine wants more
 * ciphertext, or the reader is full (its flow control pauses us from
 * inside the feed). */
static void read_plaintext(tls_transport *t)
{
    as_reader *app = t->base.reader;

    while (t->state == OPEN && (!t->read_paused || lower_done(t))) {
        size_t avail, got = 0;
        unsigned char *room = as_reader_feed_reserve(app, READ_ROOM, &avail);
        int rc;

        if (!room) {
            /* Fed EOF by hand: nothing more can be delivered.  Else out
             * of memory, which loses the stream. */
            if (as_reader_feed_data(app, "", 0) != AS_ESTATE)
                finish(t, -ENOMEM, NULL, LOWER_ABORT);
            return;
        }
        rc = t->eng->read(t->engine, room, avail > READ_ROOM ? READ_ROOM : avail, &got);
        if (rc == AS_TLS_OK) {
            (void)as__reader_feed_commit_now(app, got);
        } else if (rc == AS_TLS_WANT) {
            return;
        } else if (rc == AS_TLS_CLOSED) {
            peer_closed(t);
            return;
        } else {
            send_output(t); /* the alert, if the engine made one */
            finish(t, rc, engine_message(t), LOWER_CLOSE);
            return;
        }
    }
}

/* After everything decryptable was delivered: the lower transport's
 * error or EOF. */
static void check_lower(tls_transport *t)
{
    const char *msg = NULL;
    int code = as_reader_exception(t->cipher, &msg);

    if (t->state == CLOSED)
        return;
    if (code) {
        finish(t, code, msg, LOWER_ABORT);
        return;
    }
    if (!t->lower_eof || as_reader_buffered(t->cipher) > 0)
        return;
    if (t->state == HANDSHAKING)
        finish(t, -ECONNRESET, "Connection lost: the peer closed the connection "
               "during the TLS handshake", LOWER_CLOSE);
    else
        finish(t, 0, NULL, LOWER_CLOSE); /* EOF without close_notify: EOF */
}

/* ------------------------------------------------------------ the pump */

static void handshake_done(tls_transport *t)
{
    t->state = OPEN;
    cancel_timer(&t->hs_timer);
    (void)as_future_set_result(t->handshake, NULL, NULL);
    if (t->read_paused)
        (void)as_transport_pause_reading(t->lower);
    if (write_backlog(t) < 0)
        return;
    check_watermarks(t);
}

static void shutdown_step(tls_transport *t)
{
    int rc;
    if (as_buffer_len(&t->backlog) > 0 && (write_backlog(t) < 0 || as_buffer_len(&t->backlog) > 0))
        return;
    rc = t->eng->shutdown(t->engine);
    send_output(t);
    if (t->state != SHUTTING_DOWN)
        return;
    if (rc == AS_TLS_OK || rc == AS_TLS_CLOSED)
        finish(t, 0, NULL, LOWER_CLOSE);
    else if (rc < 0)
        finish(t, rc, engine_message(t), LOWER_CLOSE);
}

/* Do whatever can be done now; see the top of the file. */
static void step(tls_transport *t)
{
    int rc;

    if (!t->eng) {
        check_lower(t); /* waiting for the configuration */
        return;
    }
    if (take_ciphertext(t) < 0)
        return;
    if (t->state == HANDSHAKING) {
        rc = t->eng->handshake(t->engine);
        send_output(t);
        if (t->state != HANDSHAKING)
            return;
        if (rc < 0) {
            finish(t, rc, engine_message(t), LOWER_CLOSE);
            return;
        }
        if (rc == AS_TLS_OK)
            handshake_done(t);
    }
    if (t->state == OPEN) {
        read_plaintext(t);
        send_output(t); /* a key update or a ticket may want an answer */
    }
    if (t->state == OPEN && as_buffer_len(&t->backlog) > 0) {
        /* The engine refused plaintext until the peer spoke (a TLS 1.2
         * renegotiation); it may take it now. */
        if (write_backlog(t) == 0)
            check_watermarks(t);
    }
    if (t->state == SHUTTING_DOWN)
        shutdown_step(t);
    check_lower(t);
}

static void pump(tls_transport *t)
{
    if (t->pumping) {
        t->again = 1;
        return;
    }
    t->pumping = 1;
    ref(t);
    do {
        t->again = 0;
        if (t->state != CLOSED)
            step(t);
    } while (t->again && t->state != CLOSED);
    t->pumping = 0;
    unref(t);
}

/* The cipher reader was fed: synchronously, from inside the feed. */
static void on_cipher(as_reader *r, int event, void *p)
{
    tls_transport *t = p;
    (void)r;
    if (event == AS__TAP_EOF)
        t->lower_eof = 1;
    pump(t);
}

static void pump_cb(void *p)
{
    tls_transport *t = p;
    pump(t);
    unref(t);
}

/* pump() at the end of this turn, for hooks that must not call back into
 * the reader that called them.  The posted run holds a reference. */
static void pump_later(tls_transport *t)
{
    if (t->pump_handle && as__handle_queued(t->pump_handle))
        return;
    if (!t->pump_handle &&
        !(t->pump_handle = as__handle_new(t->base.loop, pump_cb, t, unref_cb)))
        return;
    if (as__handle_post(t->pump_handle, 1) == 0)
        ref(t);
}

/* ------------------------------------------------------------ closing */

static void closed_chain(as_future *lower_closed, void *p)
{
    tls_transport *t = p;
    if (t->err) {
        (void)as_future_error(lower_closed);
        as__future_fail(t->closed, t->err, t->err_msg);
    } else {
        (void)as_future_transfer(t->closed, lower_closed);
    }
}

/*
 * Enter CLOSED, with an error or cleanly: the reader gets EOF or the error
 * (after whatever was decrypted before), every waiter is woken, and the
 * lower transport is closed (flushing our last alert or close_notify, for
 * at most the shutdown timeout) or reset.  The closed future follows the
 * lower transport's.  Idempotent.
 */
static void finish(tls_transport *t, int err, const char *msg, enum how how)
{
    int self_ref = t->self_ref;
    as_future *lower_closed;

    if (t->state == CLOSED)
        return;
    t->state = CLOSED;
    if (err) {
        t->err = err;
        if (msg)
            t->err_msg = as__strdup(msg); /* NULL on ENOMEM: as_strerror() then */
    }
    cancel_timer(&t->hs_timer);
    cancel_timer(&t->sd_timer);
    cancel_timer(&t->close_timer);
    as__reader_set_tap(t->cipher, NULL, NULL);

    (void)as_reader_set_flow_control(t->base.reader, NULL, NULL, NULL, NULL);
    if (err == 0 || as_reader_set_exception(t->base.reader, err, t->err_msg) < 0)
        as_reader_feed_eof(t->base.reader);
    if (!as_future_done(t->handshake))
        as__future_fail(t->handshake, err ? err : AS_ECONNLOST,
                        err ? t->err_msg : "Connection closed during the TLS handshake");

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

    ref(t); /* the closed future's chain */
    lower_closed = as_transport_closed(t->lower);
    if (!lower_closed ||
        as_future_add_done_callback(lower_closed, closed_chain, t, unref_cb) < 0) {
        unref(t);
        as__future_fail(t->closed, err ? err : -ENOMEM, t->err_msg);
    }
    as_future_unref(lower_closed);
    if (how == LOWER_CLOSE) {
        send_output(t);
        as_transport_close_within(t->lower, t->sd_timeout);
    } else {
        as_transport_abort(t->lower);
    }
    if (self_ref) {
        t->self_ref = 0;
        unref(t);
    }
}

static void shutdown_expired(void *p)
{
    tls_transport *t = p;
    as_handle_unref(t->sd_timer);
    t->sd_timer = NULL;
    finish(t, AS_ETIMEOUT, "SSL shutdown timed out", LOWER_ABORT);
}

/* close(), or the peer's close_notify: our close_notify after the queued
 * plaintext, then wait for the peer's, at most the shutdown timeout. */
static void start_shutdown(tls_transport *t)
{
    if (t->state != OPEN)
        return;
    t->state = SHUTTING_DOWN;
    t->self_ref = 1;
    ref(t);
    /* The peer's answer must get through even if the application stopped
     * reading: nothing more is delivered to it. */
    if (t->read_paused)
        (void)as_transport_resume_reading(t->lower);
    if (as_loop_call_later(t->base.loop, t->sd_timeout, shutdown_expired, t, NULL,
                           &t->sd_timer) < 0)
        finish(t, 0, NULL, LOWER_ABORT); /* no timer: a bounded close is all we can do */
}

/* CPython closes a connection still handshaking by aborting it. */
static void tls_close(as_transport *base)
{
    tls_transport *t = tls_of(base);
    if (t->state == HANDSHAKING) {
        finish(t, 0, NULL, LOWER_ABORT);
    } else if (t->state == OPEN) {
        start_shutdown(t);
        pump(t);
    }
}

static void tls_abort(as_transport *base)
{
    finish(tls_of(base), 0, NULL, LOWER_ABORT);
}

static void close_deadline(void *p)
{
    tls_transport *t = p;
    as_handle_unref(t->close_timer);
    t->close_timer = NULL;
    finish(t, 0, NULL, LOWER_ABORT);
}

static void tls_close_within(as_transport *base, double seconds)
{
    tls_transport *t = tls_of(base);
    if (t->state == CLOSED || t->close_timer)
        return;
    tls_close(base);
    if (t->state != SHUTTING_DOWN || isnan(seconds))
        return;
    if (seconds <= 0 ||
        as_loop_call_later(t->base.loop, seconds, close_deadline, t, NULL, &t->close_timer) < 0)
        finish(t, 0, NULL, LOWER_ABORT);
}

static int tls_is_closing(const as_transport *base)
{
    enum state s = ctls_of(base)->state;
    return s == SHUTTING_DOWN || s == CLOSED;
}

static int tls_error(const as_transport *base, const char **message)
{
    const tls_transport *t = ctls_of(base);
    if (message)
        *message = t->err ? (t->err_msg ? t->err_msg : as_strerror(t->err)) : NULL;
    return t->err;
}

/* ------------------------------------------------------------ flow control */

/* The application's reader is full: stop decrypting, and stop the lower
 * transport too, so the kernel's window closes as it would without TLS.
 * While handshaking the lower transport keeps reading: the handshake
 * needs it. */
static int tls_pause_reading(as_transport *base)
{
    tls_transport *t = tls_of(base);
    t->read_paused = 1;
    if (t->state == OPEN)
        (void)as_transport_pause_reading(t->lower);
    return 0;
}

/* Resumed: what the engine and the cipher reader hold comes first, at the
 * end of this turn (a hook must not feed the reader that called it). */
static int tls_resume_reading(as_transport *base)
{
    tls_transport *t = tls_of(base);
    t->read_paused = 0;
    if (t->state == CLOSED)
        return 0;
    (void)as_transport_resume_reading(t->lower);
    pump_later(t);
    return 0;
}

static int tls_is_reading_paused(const as_transport *t)
{
    return ctls_of(t)->read_paused;
}

/* ------------------------------------------------------------ futures */

static as_future *tls_wait_writable(as_transport *base)
{
    tls_transport *t = tls_of(base);
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
static as_future *tls_flush(as_transport *base)
{
    tls_transport *t = tls_of(base);

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

static as_future *tls_closed(as_transport *t)
{
    return as_future_ref(tls_of(t)->closed);
}

/* ------------------------------------------------------------ accessors */

static size_t tls_write_buffer_size(const as_transport *t)
{
    return buffer_size(ctls_of(t));
}

static void tls_get_limits(const as_transport *base, size_t *high, size_t *low)
{
    *high = ctls_of(base)->high;
    *low = ctls_of(base)->low;
}

/* Both layers get the limits: the lower transport's drain is what wakes
 * ours once the backlog is encrypted. */
static void tls_set_limits(as_transport *base, size_t high, size_t low)
{
    tls_transport *t = tls_of(base);
    t->high = high;
    t->low = low;
    (void)as_transport_set_write_buffer_limits(t->lower, (long long)high, (long long)low);
    check_watermarks(t);
}

static unsigned long long tls_bytes_sent(const as_transport *base)
{
    const tls_transport *t = ctls_of(base);
    unsigned long long lower_sent = as_transport_bytes_sent(t->lower), sent = t->sent;
    size_t i;
    for (i = t->mark_head; i < t->mark_n && t->marks[i].cipher_end <= lower_sent; i++)
        sent = t->marks[i].plain_end;
    return sent;
}

static unsigned long long tls_bytes_written(const as_transport *t)
{
    return ctls_of(t)->written;
}

/* Our keys (tls.h), then the lower transport's. */
static int tls_get_extra_info(const as_transport *base, const char *key,
                              as_extra_info *out)
{
    const tls_transport *t = ctls_of(base);
    if (t->eng) {
        int rc = t->eng->extra_info(t->engine, key, out);
        if (rc != AS_ENOKEY)
            return rc;
    }
    return as_transport_get_extra_info(t->lower, key, out);
}

/* ------------------------------------------------------------ lifetime */

/* transport.h rule 4: dropped while open, reset. */
static void tls_last_ref(as_transport *base)
{
    tls_transport *t = tls_of(base);
    if (t->state != CLOSED)
        finish(t, 0, NULL, LOWER_ABORT);
}

static void tls_destroy(as_transport *base)
{
    tls_transport *t = tls_of(base);

    as__reader_set_tap(t->cipher, NULL, NULL);
    cancel_timer(&t->hs_timer);
    cancel_timer(&t->sd_timer);
    cancel_timer(&t->close_timer);
    /* A posted run holds a reference, so none is queued now. */
    assert(!t->pump_handle || !as__handle_queued(t->pump_handle));
    as__handle_free(t->pump_handle);
    if (t->cfg_wait) {
        (void)as_future_cancel(t->cfg_wait, NULL); /* abandon the worker */
        as_future_unref(t->cfg_wait);
    }
    /* Errors here are the handshake's and the connection's, reported
     * where they happened, not "never retrieved". */
    (void)as_future_error(t->handshake);
    (void)as_future_error(t->closed);
    as_future_unref(t->handshake);
    as_future_unref(t->closed);
    as_future_unref(t->ready);
    if (t->eng)
        t->eng->destroy(t->engine);
    as_buffer_destroy(&t->backlog);
    as__waiters_free(&t->drain, NULL); /* finish() woke them */
    if (t->flushes)
        batch_free(t->flushes);
    free(t->marks);
    free(t->err_msg);
    t->link->t = NULL;
    link_unref(t->link);
    as_reader_unref(t->cipher);
    as_transport_unref(t->lower);
    free(t);
}

static const as_transport_ops tls_ops = {
    .name = "tls",
    .write = tls_write,
    .write_owned = tls_write_owned,
    .write_eof = tls_write_eof,
    .eof_written = tls_eof_written,
    .can_write_eof = tls_can_write_eof,
    .close = tls_close,
    .close_within = tls_close_within,
    .abort = tls_abort,
    .is_closing = tls_is_closing,
    .error = tls_error,
    .pause_reading = tls_pause_reading,
    .resume_reading = tls_resume_reading,
    .is_reading_paused = tls_is_reading_paused,
    .wait_writable = tls_wait_writable,
    .flush = tls_flush,
    .closed = tls_closed,
    .write_buffer_size = tls_write_buffer_size,
    .get_write_buffer_limits = tls_get_limits,
    .set_write_buffer_limits = tls_set_limits,
    .bytes_sent = tls_bytes_sent,
    .bytes_written = tls_bytes_written,
    .get_extra_info = tls_get_extra_info,
    .last_ref = tls_last_ref,
    .destroy = tls_destroy,
};

int as_is_tls_transport(const as_transport *t)
{
    return t && t->ops == &tls_ops;
}

/* ------------------------------------------------------------ creation */

static void handshake_expired(void *p)
{
    tls_transport *t = p;
    char msg[128];
    as_handle_unref(t->hs_timer);
    t->hs_timer = NULL;
    snprintf(msg, sizeof msg, "SSL handshake is taking longer than %.1f seconds: "
             "aborting the connection", t->hs_timeout);
    finish(t, -ECONNABORTED, msg, LOWER_ABORT);
}

/* The handshake timer counts from the transport's creation. */
static int arm_handshake_timer(tls_transport *t)
{
    double left = t->created + t->hs_timeout - as_loop_time(t->base.loop);
    cancel_timer(&t->hs_timer);
    return as_loop_call_later(t->base.loop, left > 0 ? left : 0, handshake_expired, t,
                              NULL, &t->hs_timer);
}

static void set_timeouts(tls_transport *t, const as_tls_options *o)
{
    t->hs_timeout = o && o->handshake_timeout > 0 ? o->handshake_timeout
                                                  : AS_TLS_HANDSHAKE_TIMEOUT;
    t->sd_timeout = o && o->shutdown_timeout > 0 ? o->shutdown_timeout
                                                 : AS_TLS_SHUTDOWN_TIMEOUT;
}

/* A TLS transport over lower (owned from now on), still without an
 * engine.  On failure lower is aborted and released. */
static int tls_new(as_transport *lower, as_reader *reader, const as_tls_options *o,
                   tls_transport **out)
{
    as_loop *loop = as_transport_loop(lower);
    tls_transport *t = calloc(1, sizeof *t);
    int err;

    if (!t || !(t->link = calloc(1, sizeof *t->link))) {
        free(t);
        as_transport_abort(lower);
        as_transport_unref(lower);
        return -ENOMEM;
    }
    if ((err = as_transport_init(&t->base, &tls_ops, loop, reader)) < 0) {
        free(t->link);
        free(t);
        as_transport_abort(lower);
        as_transport_unref(lower);
        return err;
    }
    t->link->t = t;
    t->link->refs = 1;
    t->lower = lower;
    t->cipher = as_reader_ref(as_transport_reader(lower));
    t->state = HANDSHAKING;
    as_buffer_init(&t->backlog);
    t->high = AS_TRANSPORT_DEFAULT_HIGH_WATER;
    t->low = t->high / 4;
    (void)as_transport_set_write_buffer_limits(lower, (long long)t->high, (long long)t->low);
    t->created = as_loop_time(loop);
    set_timeouts(t, o);
    as__waiters_init(&t->drain, NULL, NULL);
    if (as_future_new(loop, &t->closed) < 0 || as_future_new(loop, &t->handshake) < 0 ||
        arm_handshake_timer(t) < 0) {
        finish(t, -ENOMEM, NULL, LOWER_ABORT);
        unref(t);
        return -ENOMEM;
    }
    as__reader_set_tap(t->cipher, on_cipher, t);
    *out = t;
    return 0;
}

/* The engine arrived: the handshake starts (a client says hello). */
static void attach(tls_transport *t, const as_tls_engine_ops *ops, void *engine)
{
    if (t->state == CLOSED) {
        ops->destroy(engine);
        return;
    }
    t->eng = ops;
    t->engine = engine;
    pump(t);
}

/* An engine for configuration c, attached to t; or t fails. */
static void attach_config(tls_transport *t, as__tls_config *c)
{
    const as_tls_engine_ops *ops;
    void *engine;
    char msg[256] = "";
    int err;

    if (t->state == CLOSED)
        return;
    t->hs_timeout = c->o.handshake_timeout;
    t->sd_timeout = c->o.shutdown_timeout;
    if (arm_handshake_timer(t) < 0) {
        finish(t, -ENOMEM, NULL, LOWER_ABORT);
        return;
    }
    if ((err = as__tls_openssl_engine(c, &ops, &engine, msg, sizeof msg)) < 0) {
        finish(t, err, msg[0] ? msg : NULL, LOWER_ABORT);
        return;
    }
    attach(t, ops, engine);
}

static void config_ready(as_future *f, void *p)
{
    tls_link *l = p;
    tls_transport *t = l->t;
    int err = as_future_error(f);

    if (!t || t->cfg_wait != f)
        return;
    t->cfg_wait = NULL;
    ref(t);
    if (err)
        finish(t, err, as_future_error_message(f), LOWER_ABORT);
    else
        attach_config(t, as_future_result(f));
    as_future_unref(f);
    unref(t);
}

int as__tls_wrap(as_transport *lower, as_reader *reader, as__tls_config *cfg,
                 as_future *cfg_wait, as_transport **out)
{
    tls_transport *t;
    int err;

    *out = NULL;
    if ((err = tls_new(lower, reader, cfg ? &cfg->o : NULL, &t)) < 0)
        return err;
    if (cfg) {
        attach_config(t, cfg);
    } else {
        t->cfg_wait = as_future_ref(cfg_wait);
        if (as_future_add_done_callback(cfg_wait, config_ready, link_ref(t->link),
                                        link_unref) < 0) {
            link_unref(t->link);
            finish(t, -ENOMEM, NULL, LOWER_ABORT);
        }
    }
    *out = &t->base;
    return 0;
}

int as_tls_transport_new_engine(as_transport *lower, as_reader *reader,
                                const as_tls_engine_ops *ops, void *engine,
                                const as_tls_options *tls, as_transport **out)
{
    tls_transport *t;
    int err;

    if (out)
        *out = NULL;
    if (!lower || !reader || !ops || !out) {
        if (ops)
            ops->destroy(engine);
        if (lower) {
            as_transport_abort(lower);
            as_transport_unref(lower);
        }
        return AS_EINVAL;
    }
    if ((err = tls_new(lower, reader, tls, &t)) < 0) {
        ops->destroy(engine);
        return err;
    }
    attach(t, ops, engine);
    *out = &t->base;
    return 0;
}

as_future *as_tls_handshake(as_transport *t)
{
    if (!as_is_tls_transport(t))
        return t ? as__future_failed(t->loop, AS_EINVAL, "not a TLS transport") : NULL;
    return as_future_ref(tls_of(t)->handshake);
}

int as_tls_available(void)
{
    return as__tls_openssl_available();
}
