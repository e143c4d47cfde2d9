/*
 * socket_transport_impl.h - the socket transport's private struct, and
 * what its two files share (internal, not installed).
 *
 * The socket transport is one module in two files: socket_transport.c
 * (its life cycle, closing, reading, the ops table and the constructor;
 * its top comment says how the whole works) and socket_transport_write.c
 * (the writing half: the write paths, the queue's flushing, half-close,
 * the watermarks that wake drains).  Lifetimes are transport.h's.
 *
 * The small helpers are static inline here so that splitting the module
 * adds no call on the per-write path: a write still takes and drops its
 * reference with an increment and one call into transport.c.
 */
#ifndef AS_SOCKET_TRANSPORT_IMPL_H
#define AS_SOCKET_TRANSPORT_IMPL_H

#include <stddef.h>
#include <sys/socket.h>

#include "internal.h"
#include "socket_transport.h"
#include "waiters.h"
#include "writeq.h"

/* transport.h's states. */
enum as__sock_state {
    AS__SOCK_OPEN, AS__SOCK_CLOSING, AS__SOCK_CLOSED, AS__SOCK_LOST
};

typedef struct as__socket_transport {
    as_transport base;            /* first: an as_transport * is one of these */
    int fd;
    enum as__sock_state state;

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
    as_handle *flush_handle;      /* runs the coalesced flush; made once, posted
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
} as__socket_transport;

/* The socket transport behind the interface's pointer (first member). */
static inline as__socket_transport *as__sock_of(as_transport *t)
{
    return (as__socket_transport *)t;
}

static inline const as__socket_transport *as__csock_of(const as_transport *t)
{
    return (const as__socket_transport *)t;
}

static inline void as__sock_ref(as__socket_transport *t)
{
    t->base.refs++;
}

/* A reference that is not the last is a decrement here: the write path,
 * the read watcher and the end-of-turn flush each take and drop one per
 * round trip, and the call cost more than the count.  The last one goes
 * through the interface, which closes and frees (transport.h rule 4). */
static inline void as__sock_unref(as__socket_transport *t)
{
    if (t->base.refs > 1)
        t->base.refs--;
    else
        as_transport_unref(&t->base);
}

/* A coalescing flush is posted for the end of this turn. */
static inline int as__sock_flush_pending(const as__socket_transport *t)
{
    return t->flush_handle && as__handle_queued(t->flush_handle);
}

/* ---------------------------------------------- in socket_transport.c */

/* Enter CLOSED (err == 0) or LOST (err < 0), releasing everything the
 * connection held, synchronously; rst sends a reset.  Idempotent. */
void as__sock_teardown(as__socket_transport *t, int err, const char *msg,
                       int rst);

/* The first send/receive error: the connection is lost. */
static inline void as__sock_fatal(as__socket_transport *t, int err)
{
    as__sock_teardown(t, err, NULL, 0);
}

/* A destroy hook that drops the reference a scheduled callback held. */
void as__sock_unref_cb(void *p);

/* ---------------------------------------- in socket_transport_write.c */

/* The writing half's initial state: an empty queue that recycles
 * write_bytes() blocks into the reader, CPython's watermarks, coalescing. */
void as__sock_write_init(as__socket_transport *t);

/* Send what the queue holds, then watch for writability or finish what an
 * empty queue allows (FIN, or the close that was waiting for it). */
void as__sock_flush_queue(as__socket_transport *t);

/* The writing half's rows of the ops table (transport.h says what each
 * does; socket_transport.c assembles the table). */
int as__sock_write(as_transport *base, const struct iovec *iov, int iovcnt,
                   size_t total);
int as__sock_write_owned(as_transport *base, const void *data, size_t len,
                         void *owner, as_destroy_fn release);
int as__sock_write_bytes(as_transport *t, as_bytes *bytes);
int as__sock_write_eof(as_transport *base);
int as__sock_eof_written(const as_transport *t);
int as__sock_can_write_eof(const as_transport *t);
as_future *as__sock_wait_writable(as_transport *base);
as_future *as__sock_flush(as_transport *base);
size_t as__sock_write_buffer_size(const as_transport *t);
void as__sock_get_write_buffer_limits(const as_transport *base, size_t *high,
                                      size_t *low);
void as__sock_set_write_buffer_limits(as_transport *base, size_t high, size_t low);
unsigned long long as__sock_bytes_sent(const as_transport *t);
unsigned long long as__sock_bytes_written(const as_transport *t);

#endif /* AS_SOCKET_TRANSPORT_IMPL_H */
