/*
 * tls_impl.h - the TLS transport's own struct, shared by the two
 * files that implement it (internal, not installed):
 *
 *   tls.c        the state machine: ciphertext in, the handshake, reading,
 *                the shutdown and its timers, closing, making one
 *   tls_write.c  the write side: plaintext in, records out, the backlog,
 *                flushes, backpressure through both layers, bytes_sent
 *
 * The contracts are tls.h's; how the pieces move is at the top of tls.c.
 */
#ifndef AS_TLS_IMPL_H
#define AS_TLS_IMPL_H

#include <assert.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "tls_internal.h"
#include "buffer.h"
#include "waiters.h"

/* The states of tls.h's diagram. */
enum as__tls_state {
    AS__TLS_HANDSHAKING,
    AS__TLS_OPEN,
    AS__TLS_SHUTTING_DOWN,
    AS__TLS_CLOSED
};

/* How as__tls_finish() leaves the lower transport: closed after what is
 * queued (our alert or close_notify included), or reset at once. */
enum as__tls_how { AS__TLS_LOWER_CLOSE, AS__TLS_LOWER_ABORT };

struct as__tls_transport;

/* A weak reference for callbacks that may outlive the transport (a
 * future's done callback cannot always be removed once scheduled): the
 * transport clears `t` when it is freed.  Holding a strong reference
 * instead would keep an abandoned connection open for ever. */
typedef struct as__tls_link {
    struct as__tls_transport *t;
    unsigned refs;
} as__tls_link;

/* Where plaintext ends in the ciphertext stream, for bytes_sent(). */
typedef struct as__tls_mark {
    unsigned long long cipher_end; /* the lower transport's bytes_written */
    unsigned long long plain_end;  /* our plaintext encrypted by then */
} as__tls_mark;

/* Flushes waiting for the backlog (tls_write.c). */
struct as__tls_flush_batch;

typedef struct as__tls_transport {
    as_transport base;            /* first; base.reader is the application's */
    as_transport *lower;          /* ours (tls.h, rule 1) */
    as_reader *cipher;            /* lower's reader: ciphertext, tapped */
    const as_tls_engine_ops *eng; /* NULL until the configuration is ready */
    void *engine;
    enum as__tls_state state;

    unsigned int read_paused : 1;   /* the application's reader is full */
    unsigned int write_paused : 1;  /* above high water: drain() waits */
    unsigned int lower_eof : 1;     /* the cipher reader was fed EOF */
    unsigned int self_ref : 1;      /* transport.h rule 3, while shutting down */
    unsigned int pumping : 1;
    unsigned int again : 1;         /* the pump was asked while it ran */
    unsigned int watching : 1;      /* a lower wait_writable is subscribed */
    unsigned int dropped : 1;       /* plaintext was dropped (abort) */

    /* The write side's (tls_write.c) */
    as_buffer backlog;              /* plaintext not yet given to the engine */
    size_t high, low;
    unsigned long long written;     /* plaintext accepted by write() */
    unsigned long long encrypted;   /* plaintext given to the engine */
    unsigned long long sent;        /* plaintext whose records reached the kernel */
    as__tls_mark *marks;
    size_t mark_head, mark_n, mark_cap;
    as__waiters drain;              /* waiting drains (waiters.h) */
    struct as__tls_flush_batch *flushes; /* flushes waiting for the backlog */
    as_future *ready;               /* finished; every drain that need not wait */

    int err;
    char *err_msg;
    as_future *closed;
    as_future *handshake;
    as_future *cfg_wait;            /* the configuration being loaded */
    as_handle *pump_handle;         /* the pump at the end of a turn */
    as_handle *hs_timer, *sd_timer, *close_timer;
    double created;
    double hs_timeout, sd_timeout;
    as__tls_link *link;
} as__tls_transport;

static inline as__tls_transport *as__tls_of(as_transport *t)
{
    return (as__tls_transport *)t;
}

static inline const as__tls_transport *as__tls_cof(const as_transport *t)
{
    return (const as__tls_transport *)t;
}

static inline void as__tls_ref(as__tls_transport *t)
{
    t->base.refs++;
}

static inline void as__tls_unref(as__tls_transport *t)
{
    as_transport_unref(&t->base);
}

static inline as__tls_link *as__tls_link_ref(as__tls_link *l)
{
    l->refs++;
    return l;
}

static inline void as__tls_link_unref(void *p)
{
    as__tls_link *l = p;
    assert(l->refs > 0);
    if (--l->refs == 0)
        free(l);
}

/* The engine's last error message, or NULL if it has none. */
static inline const char *as__tls_engine_message(const as__tls_transport *t)
{
    const char *m = t->eng ? t->eng->error_message(t->engine) : NULL;
    return m && *m ? m : NULL;
}

/* tls.c: enter CLOSED, with an error or cleanly (idempotent). */
void as__tls_finish(as__tls_transport *t, int err, const char *msg,
                    enum as__tls_how how);

/* tls_write.c, for the state machine. */
void as__tls_write_init(as__tls_transport *t);      /* from the constructor */
void as__tls_write_closed(as__tls_transport *t, int err); /* entering CLOSED */
void as__tls_write_free(as__tls_transport *t);      /* from destroy */
void as__tls_send_output(as__tls_transport *t);     /* engine output goes down */
int as__tls_write_backlog(as__tls_transport *t);    /* 0, or the error (CLOSED) */
void as__tls_check_watermarks(as__tls_transport *t); /* pause/resume writing */

/* tls_write.c: the write side's rows of the ops table. */
int as__tls_write(as_transport *t, const struct iovec *iov, int iovcnt, size_t total);
int as__tls_write_owned(as_transport *t, const void *data, size_t len, void *owner,
                        as_destroy_fn release);
int as__tls_write_eof(as_transport *t);
int as__tls_eof_written(const as_transport *t);
int as__tls_can_write_eof(const as_transport *t);
as_future *as__tls_wait_writable(as_transport *t);
as_future *as__tls_flush(as_transport *t);
size_t as__tls_write_buffer_size(const as_transport *t);
void as__tls_get_limits(const as_transport *t, size_t *high, size_t *low);
void as__tls_set_limits(as_transport *t, size_t high, size_t low);
unsigned long long as__tls_bytes_sent(const as_transport *t);
unsigned long long as__tls_bytes_written(const as_transport *t);

#endif /* AS_TLS_IMPL_H */
