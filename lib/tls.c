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
 * same code.  OpenSSL's engine is in tls_openssl.c.  This file is the
 * state machine and the read side; what happens to the application's
 * writes (the backlog, flushes, backpressure through both layers) is
 * tls_write.c, over the struct in tls_impl.h.
 *
 * Costs: one copy of each ciphertext byte into the engine (the memory BIO)
 * and one out of it (the lower transport copies what the kernel does not
 * take at once); plaintext is decrypted straight into the reader's buffer.
 */
#include "tls_impl.h"
#include "errors.h"
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The application's reader gets at most this much room per decrypt: a
 * TLS record holds 16 KiB, and reading several in one call saves calls. */
#define READ_ROOM 65536

/* ------------------------------------------------------------ futures */

/* ------------------------------------------------------------ helpers */

static void unref_cb(void *p)
{
    as__tls_unref(p);
}

static void pump(as__tls_transport *t);

static void cancel_timer(as_handle **h)
{
    if (*h) {
        as_handle_cancel(*h);
        as_handle_unref(*h);
        *h = NULL;
    }
}

/* ------------------------------------------------------------ reading */

/* The lower transport has finished (EOF or an error). */
static int lower_done(as__tls_transport *t)
{
    return t->lower_eof || as_reader_exception(t->cipher, NULL) != 0;
}

/* Move the ciphertext the lower transport delivered into the engine:
 * all of it, unless the application's reader is full (then it stays in
 * the cipher reader, and the lower transport is paused).  Once the lower
 * transport has finished, everything is taken, so nothing decryptable is
 * left behind. */
static int take_ciphertext(as__tls_transport *t)
{
    const unsigned char *data;
    size_t n;
    int err;

    if (t->read_paused && t->state == AS__TLS_OPEN && !lower_done(t))
        return 0;
    if ((n = as_reader_peek(t->cipher, &data)) == 0)
        return 0;
    if ((err = t->eng->feed(t->engine, data, n)) < 0) {
        as__tls_finish(t, err, NULL, AS__TLS_LOWER_ABORT);
        return err;
    }
    as__reader_tap_consume(t->cipher, n);
    return 0;
}

static void start_shutdown(as__tls_transport *t);

/* The peer sent close_notify: EOF for the reader, after every byte, and
 * the connection closes itself (CPython's SSLProtocol does the same). */
static void peer_closed(as__tls_transport *t)
{
    as_reader_feed_eof(t->base.reader);
    start_shutdown(t);
}

/* Decrypt into the application's reader until the engine wants more
 * ciphertext, or the reader is full (its flow control pauses us from
 * inside the feed). */
static void read_plaintext(as__tls_transport *t)
{
    as_reader *app = t->base.reader;

    while (t->state == AS__TLS_OPEN && (!t->read_paused || lower_done(t))) {
        size_t avail, got = 0;
        unsigned char *room = as_reader_feed_reserve(app, READ_ROOM, &avail);
        int rc;

        if (!room) {
            /* Fed EOF by hand: nothing more can be delivered.  Else out
             * of memory, which loses the stream. */
            if (as_reader_feed_data(app, "", 0) != AS_ESTATE)
                as__tls_finish(t, -ENOMEM, NULL, AS__TLS_LOWER_ABORT);
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
            as__tls_send_output(t); /* the alert, if the engine made one */
            as__tls_finish(t, rc, as__tls_engine_message(t), AS__TLS_LOWER_CLOSE);
            return;
        }
    }
}

/* After everything decryptable was delivered: the lower transport's
 * error or EOF. */
static void check_lower(as__tls_transport *t)
{
    const char *msg = NULL;
    int code = as_reader_exception(t->cipher, &msg);

    if (t->state == AS__TLS_CLOSED)
        return;
    if (code) {
        as__tls_finish(t, code, msg, AS__TLS_LOWER_ABORT);
        return;
    }
    if (!t->lower_eof || as_reader_buffered(t->cipher) > 0)
        return;
    if (t->state == AS__TLS_HANDSHAKING)
        as__tls_finish(t, -ECONNRESET, "Connection lost: the peer closed the connection "
               "during the TLS handshake", AS__TLS_LOWER_CLOSE);
    else
        as__tls_finish(t, 0, NULL, AS__TLS_LOWER_CLOSE); /* EOF without close_notify: EOF */
}

/* ------------------------------------------------------------ the pump */

static void handshake_done(as__tls_transport *t)
{
    t->state = AS__TLS_OPEN;
    cancel_timer(&t->hs_timer);
    (void)as_future_set_result(t->handshake, NULL, NULL);
    if (t->read_paused)
        (void)as_transport_pause_reading(t->lower);
    if (as__tls_write_backlog(t) < 0)
        return;
    as__tls_check_watermarks(t);
}

static void shutdown_step(as__tls_transport *t)
{
    int rc;
    if (as_buffer_len(&t->backlog) > 0 &&
        (as__tls_write_backlog(t) < 0 || as_buffer_len(&t->backlog) > 0))
        return;
    rc = t->eng->shutdown(t->engine);
    as__tls_send_output(t);
    if (t->state != AS__TLS_SHUTTING_DOWN)
        return;
    if (rc == AS_TLS_OK || rc == AS_TLS_CLOSED)
        as__tls_finish(t, 0, NULL, AS__TLS_LOWER_CLOSE);
    else if (rc < 0)
        as__tls_finish(t, rc, as__tls_engine_message(t), AS__TLS_LOWER_CLOSE);
}

/* Do whatever can be done now; see the top of the file. */
static void step(as__tls_transport *t)
{
    int rc;

    if (!t->eng) {
        check_lower(t); /* waiting for the configuration */
        return;
    }
    if (take_ciphertext(t) < 0)
        return;
    if (t->state == AS__TLS_HANDSHAKING) {
        rc = t->eng->handshake(t->engine);
        as__tls_send_output(t);
        if (t->state != AS__TLS_HANDSHAKING)
            return;
        if (rc < 0) {
            as__tls_finish(t, rc, as__tls_engine_message(t), AS__TLS_LOWER_CLOSE);
            return;
        }
        if (rc == AS_TLS_OK)
            handshake_done(t);
    }
    if (t->state == AS__TLS_OPEN) {
        read_plaintext(t);
        as__tls_send_output(t); /* a key update or a ticket may want an answer */
    }
    if (t->state == AS__TLS_OPEN && as_buffer_len(&t->backlog) > 0) {
        /* The engine refused plaintext until the peer spoke (a TLS 1.2
         * renegotiation); it may take it now. */
        if (as__tls_write_backlog(t) == 0)
            as__tls_check_watermarks(t);
    }
    if (t->state == AS__TLS_SHUTTING_DOWN)
        shutdown_step(t);
    check_lower(t);
}

static void pump(as__tls_transport *t)
{
    if (t->pumping) {
        t->again = 1;
        return;
    }
    t->pumping = 1;
    as__tls_ref(t);
    do {
        t->again = 0;
        if (t->state != AS__TLS_CLOSED)
            step(t);
    } while (t->again && t->state != AS__TLS_CLOSED);
    t->pumping = 0;
    as__tls_unref(t);
}

/* The cipher reader was fed: synchronously, from inside the feed. */
static void on_cipher(as_reader *r, int event, void *p)
{
    as__tls_transport *t = p;
    (void)r;
    if (event == AS__TAP_EOF)
        t->lower_eof = 1;
    pump(t);
}

static void pump_cb(void *p)
{
    as__tls_transport *t = p;
    pump(t);
    as__tls_unref(t);
}

/* pump() at the end of this turn, for hooks that must not call back into
 * the reader that called them.  The posted run holds a reference. */
static void pump_later(as__tls_transport *t)
{
    if (t->pump_handle && as__handle_queued(t->pump_handle))
        return;
    if (!t->pump_handle &&
        !(t->pump_handle = as__handle_new(t->base.loop, pump_cb, t, unref_cb)))
        return;
    if (as__handle_post(t->pump_handle, 1) == 0)
        as__tls_ref(t);
}

/* ------------------------------------------------------------ closing */

static void closed_chain(as_future *lower_closed, void *p)
{
    as__tls_transport *t = p;
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
void as__tls_finish(as__tls_transport *t, int err, const char *msg, enum as__tls_how how)
{
    int self_ref = t->self_ref;
    as_future *lower_closed;

    if (t->state == AS__TLS_CLOSED)
        return;
    t->state = AS__TLS_CLOSED;
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

    as__tls_write_closed(t, err);

    as__tls_ref(t); /* the closed future's chain */
    lower_closed = as_transport_closed(t->lower);
    if (!lower_closed ||
        as_future_add_done_callback(lower_closed, closed_chain, t, unref_cb) < 0) {
        as__tls_unref(t);
        as__future_fail(t->closed, err ? err : -ENOMEM, t->err_msg);
    }
    as_future_unref(lower_closed);
    if (how == AS__TLS_LOWER_CLOSE) {
        as__tls_send_output(t);
        as_transport_close_within(t->lower, t->sd_timeout);
    } else {
        as_transport_abort(t->lower);
    }
    if (self_ref) {
        t->self_ref = 0;
        as__tls_unref(t);
    }
}

static void shutdown_expired(void *p)
{
    as__tls_transport *t = p;
    as_handle_unref(t->sd_timer);
    t->sd_timer = NULL;
    as__tls_finish(t, AS_ETIMEOUT, "SSL shutdown timed out", AS__TLS_LOWER_ABORT);
}

/* close(), or the peer's close_notify: our close_notify after the queued
 * plaintext, then wait for the peer's, at most the shutdown timeout. */
static void start_shutdown(as__tls_transport *t)
{
    if (t->state != AS__TLS_OPEN)
        return;
    t->state = AS__TLS_SHUTTING_DOWN;
    t->self_ref = 1;
    as__tls_ref(t);
    /* The peer's answer must get through even if the application stopped
     * reading: nothing more is delivered to it. */
    if (t->read_paused)
        (void)as_transport_resume_reading(t->lower);
    if (as_loop_call_later(t->base.loop, t->sd_timeout, shutdown_expired, t, NULL,
                           &t->sd_timer) < 0)
        /* No timer: a bounded close is all we can do. */
        as__tls_finish(t, 0, NULL, AS__TLS_LOWER_ABORT);
}

/* CPython closes a connection still handshaking by aborting it. */
static void tls_close(as_transport *base)
{
    as__tls_transport *t = as__tls_of(base);
    if (t->state == AS__TLS_HANDSHAKING) {
        as__tls_finish(t, 0, NULL, AS__TLS_LOWER_ABORT);
    } else if (t->state == AS__TLS_OPEN) {
        start_shutdown(t);
        pump(t);
    }
}

static void tls_abort(as_transport *base)
{
    as__tls_finish(as__tls_of(base), 0, NULL, AS__TLS_LOWER_ABORT);
}

static void close_deadline(void *p)
{
    as__tls_transport *t = p;
    as_handle_unref(t->close_timer);
    t->close_timer = NULL;
    as__tls_finish(t, 0, NULL, AS__TLS_LOWER_ABORT);
}

static void tls_close_within(as_transport *base, double seconds)
{
    as__tls_transport *t = as__tls_of(base);
    if (t->state == AS__TLS_CLOSED || t->close_timer)
        return;
    tls_close(base);
    if (t->state != AS__TLS_SHUTTING_DOWN || isnan(seconds))
        return;
    if (seconds <= 0 ||
        as_loop_call_later(t->base.loop, seconds, close_deadline, t, NULL,
                           &t->close_timer) < 0)
        as__tls_finish(t, 0, NULL, AS__TLS_LOWER_ABORT);
}

static int tls_is_closing(const as_transport *base)
{
    enum as__tls_state s = as__tls_cof(base)->state;
    return s == AS__TLS_SHUTTING_DOWN || s == AS__TLS_CLOSED;
}

static int tls_error(const as_transport *base, const char **message)
{
    const as__tls_transport *t = as__tls_cof(base);
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
    as__tls_transport *t = as__tls_of(base);
    t->read_paused = 1;
    if (t->state == AS__TLS_OPEN)
        (void)as_transport_pause_reading(t->lower);
    return 0;
}

/* Resumed: what the engine and the cipher reader hold comes first, at the
 * end of this turn (a hook must not feed the reader that called it). */
static int tls_resume_reading(as_transport *base)
{
    as__tls_transport *t = as__tls_of(base);
    t->read_paused = 0;
    if (t->state == AS__TLS_CLOSED)
        return 0;
    (void)as_transport_resume_reading(t->lower);
    pump_later(t);
    return 0;
}

static int tls_is_reading_paused(const as_transport *t)
{
    return as__tls_cof(t)->read_paused;
}

/* ------------------------------------------------------------ futures */

static as_future *tls_closed(as_transport *t)
{
    return as_future_ref(as__tls_of(t)->closed);
}

/* ------------------------------------------------------------ accessors */

/* Our keys (tls.h), then the lower transport's. */
static int tls_get_extra_info(const as_transport *base, const char *key,
                              as_extra_info *out)
{
    const as__tls_transport *t = as__tls_cof(base);
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
    as__tls_transport *t = as__tls_of(base);
    if (t->state != AS__TLS_CLOSED)
        as__tls_finish(t, 0, NULL, AS__TLS_LOWER_ABORT);
}

static void tls_destroy(as_transport *base)
{
    as__tls_transport *t = as__tls_of(base);

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
    if (t->eng)
        t->eng->destroy(t->engine);
    as__tls_write_free(t);
    free(t->err_msg);
    t->link->t = NULL;
    as__tls_link_unref(t->link);
    as_reader_unref(t->cipher);
    as_transport_unref(t->lower);
    free(t);
}

static const as_transport_ops tls_ops = {
    .name = "tls",
    .write = as__tls_write,
    .write_owned = as__tls_write_owned,
    .write_eof = as__tls_write_eof,
    .eof_written = as__tls_eof_written,
    .can_write_eof = as__tls_can_write_eof,
    .close = tls_close,
    .close_within = tls_close_within,
    .abort = tls_abort,
    .is_closing = tls_is_closing,
    .error = tls_error,
    .pause_reading = tls_pause_reading,
    .resume_reading = tls_resume_reading,
    .is_reading_paused = tls_is_reading_paused,
    .wait_writable = as__tls_wait_writable,
    .flush = as__tls_flush,
    .closed = tls_closed,
    .write_buffer_size = as__tls_write_buffer_size,
    .get_write_buffer_limits = as__tls_get_limits,
    .set_write_buffer_limits = as__tls_set_limits,
    .bytes_sent = as__tls_bytes_sent,
    .bytes_written = as__tls_bytes_written,
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
    as__tls_transport *t = p;
    char msg[128];
    as_handle_unref(t->hs_timer);
    t->hs_timer = NULL;
    snprintf(msg, sizeof msg, "SSL handshake is taking longer than %.1f seconds: "
             "aborting the connection", t->hs_timeout);
    as__tls_finish(t, -ECONNABORTED, msg, AS__TLS_LOWER_ABORT);
}

/* The handshake timer counts from the transport's creation. */
static int arm_handshake_timer(as__tls_transport *t)
{
    double left = t->created + t->hs_timeout - as_loop_time(t->base.loop);
    cancel_timer(&t->hs_timer);
    return as_loop_call_later(t->base.loop, left > 0 ? left : 0, handshake_expired, t,
                              NULL, &t->hs_timer);
}

static void set_timeouts(as__tls_transport *t, const as_tls_options *o)
{
    t->hs_timeout = o && o->handshake_timeout > 0 ? o->handshake_timeout
                                                  : AS_TLS_HANDSHAKE_TIMEOUT;
    t->sd_timeout = o && o->shutdown_timeout > 0 ? o->shutdown_timeout
                                                 : AS_TLS_SHUTDOWN_TIMEOUT;
}

/* A TLS transport over lower (owned from now on), still without an
 * engine.  On failure lower is aborted and released. */
static int tls_new(as_transport *lower, as_reader *reader, const as_tls_options *o,
                   as__tls_transport **out)
{
    as_loop *loop = as_transport_loop(lower);
    as__tls_transport *t = calloc(1, sizeof *t);
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
    t->state = AS__TLS_HANDSHAKING;
    as__tls_write_init(t);
    t->created = as_loop_time(loop);
    set_timeouts(t, o);
    if (as_future_new(loop, &t->closed) < 0 || as_future_new(loop, &t->handshake) < 0 ||
        arm_handshake_timer(t) < 0) {
        as__tls_finish(t, -ENOMEM, NULL, AS__TLS_LOWER_ABORT);
        as__tls_unref(t);
        return -ENOMEM;
    }
    as__reader_set_tap(t->cipher, on_cipher, t);
    *out = t;
    return 0;
}

/* The engine arrived: the handshake starts (a client says hello). */
static void attach(as__tls_transport *t, const as_tls_engine_ops *ops, void *engine)
{
    if (t->state == AS__TLS_CLOSED) {
        ops->destroy(engine);
        return;
    }
    t->eng = ops;
    t->engine = engine;
    pump(t);
}

/* An engine for configuration c, attached to t; or t fails. */
static void attach_config(as__tls_transport *t, as__tls_config *c)
{
    const as_tls_engine_ops *ops;
    void *engine;
    char msg[256] = "";
    int err;

    if (t->state == AS__TLS_CLOSED)
        return;
    t->hs_timeout = c->o.handshake_timeout;
    t->sd_timeout = c->o.shutdown_timeout;
    if (arm_handshake_timer(t) < 0) {
        as__tls_finish(t, -ENOMEM, NULL, AS__TLS_LOWER_ABORT);
        return;
    }
    if ((err = as__tls_openssl_engine(c, &ops, &engine, msg, sizeof msg)) < 0) {
        as__tls_finish(t, err, msg[0] ? msg : NULL, AS__TLS_LOWER_ABORT);
        return;
    }
    attach(t, ops, engine);
}

static void config_ready(as_future *f, void *p)
{
    as__tls_link *l = p;
    as__tls_transport *t = l->t;
    int err = as_future_error(f);

    if (!t || t->cfg_wait != f)
        return;
    t->cfg_wait = NULL;
    as__tls_ref(t);
    if (err)
        as__tls_finish(t, err, as_future_error_message(f), AS__TLS_LOWER_ABORT);
    else
        attach_config(t, as_future_result(f));
    as_future_unref(f);
    as__tls_unref(t);
}

int as__tls_wrap(as_transport *lower, as_reader *reader, as__tls_config *cfg,
                 as_future *cfg_wait, as_transport **out)
{
    as__tls_transport *t;
    int err;

    *out = NULL;
    if ((err = tls_new(lower, reader, cfg ? &cfg->o : NULL, &t)) < 0)
        return err;
    if (cfg) {
        attach_config(t, cfg);
    } else {
        t->cfg_wait = as_future_ref(cfg_wait);
        if (as_future_add_done_callback(cfg_wait, config_ready, as__tls_link_ref(t->link),
                                        as__tls_link_unref) < 0) {
            as__tls_link_unref(t->link);
            as__tls_finish(t, -ENOMEM, NULL, AS__TLS_LOWER_ABORT);
        }
    }
    *out = &t->base;
    return 0;
}

int as_tls_transport_new_engine(as_transport *lower, as_reader *reader,
                                const as_tls_engine_ops *ops, void *engine,
                                const as_tls_options *tls, as_transport **out)
{
    as__tls_transport *t;
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
    return as_future_ref(as__tls_of(t)->handshake);
}

int as_tls_available(void)
{
    return as__tls_openssl_available();
}
