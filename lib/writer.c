/*
 * writer.c - StreamWriter: delegation to the transport, plus drain()'s
 * checks.  Contracts: writer.h.
 */
#include "writer.h"
#include "errors.h"
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

struct as_writer {
    int refs;
    as_transport *transport;
    as_reader *reader;
};

/* The transport, or NULL for a NULL writer: every transport call answers a
 * NULL transport as the NULL rule says, so the delegations below need no
 * check of their own. */
static as_transport *tr(const as_writer *w)
{
    return w ? w->transport : NULL;
}

int as_writer_new(as_transport *transport, as_reader *reader, as_writer **out)
{
    as_writer *w;
    if (out)
        *out = NULL;
    if (!transport || !out)
        return AS_EINVAL;
    if (!(w = malloc(sizeof *w)))
        return -ENOMEM;
    w->refs = 1;
    w->transport = as_transport_ref(transport);
    w->reader = reader ? as_reader_ref(reader) : NULL;
    *out = w;
    return 0;
}

as_writer *as_writer_ref(as_writer *w)
{
    if (w)
        w->refs++;
    return w;
}

void as_writer_unref(as_writer *w)
{
    if (!w || --w->refs > 0)
        return;
    if (!as_transport_is_closing(w->transport)) {
        as_error_context ctx = {"unclosed StreamWriter: closed when its last "
                                "reference was dropped", 0, NULL, w};
        as_loop_call_exception_handler(as_transport_loop(w->transport), &ctx);
        as_transport_close(w->transport);
    }
    as_transport_unref(w->transport);
    as_reader_unref(w->reader);
    free(w);
}

void as__writer_set_transport(as_writer *w, as_transport *t)
{
    as_transport *old = w->transport;
    w->transport = as_transport_ref(t);
    as_transport_unref(old);
}

as_transport *as_writer_transport(const as_writer *w)
{
    return tr(w);
}

as_reader *as_writer_reader(const as_writer *w)
{
    return w ? w->reader : NULL;
}

as_loop *as_writer_loop(const as_writer *w)
{
    return as_transport_loop(tr(w));
}

int as_writer_write(as_writer *w, const void *data, size_t len)
{
    return as_transport_write(tr(w), data, len);
}

int as_writer_write_bytes(as_writer *w, as_bytes *bytes)
{
    if (!w) {
        free(bytes); /* the writer takes it, whatever the outcome */
        return AS_EINVAL;
    }
    return as_transport_write_bytes(tr(w), bytes);
}

int as_writer_write_owned(as_writer *w, const void *data, size_t len,
                          void *owner, as_destroy_fn release)
{
    return as_transport_write_owned(tr(w), data, len, owner, release);
}

int as_writer_writelines(as_writer *w, const struct iovec *iov, int iovcnt)
{
    return as_transport_writelines(tr(w), iov, iovcnt);
}

int as_writer_write_eof(as_writer *w)
{
    return as_transport_write_eof(tr(w));
}

int as_writer_can_write_eof(const as_writer *w)
{
    return as_transport_can_write_eof(tr(w));
}

void as_writer_close(as_writer *w)
{
    as_transport_close(tr(w));
}

void as_writer_close_within(as_writer *w, double seconds)
{
    as_transport_close_within(tr(w), seconds);
}

void as_writer_abort(as_writer *w)
{
    as_transport_abort(tr(w));
}

int as_writer_is_closing(const as_writer *w)
{
    return as_transport_is_closing(tr(w));
}

/* The checks drain() and flush() share, steps 1-2 of writer.h: a nonzero
 * code if the reader or the transport stores an error, with *failed a
 * future already failed with it (NULL if out of memory). */
static int stored_error(as_writer *w, as_future **failed)
{
    const char *msg = NULL;
    int code = w->reader ? as_reader_exception(w->reader, &msg) : 0;
    if (!code)
        code = as_transport_error(w->transport, &msg);
    if (code)
        *failed = as__future_failed(as_writer_loop(w), code, msg);
    return code;
}

as_future *as_writer_drain(as_writer *w)
{
    as_future *failed;
    if (!w)
        return NULL;
    if (stored_error(w, &failed))
        return failed;
    if (as_transport_is_closing(w->transport))
        return as__future_failed(as_writer_loop(w), AS_ECONNLOST,
                                 "Connection lost");
    return as_transport_wait_writable(w->transport);
}

as_future *as_writer_flush(as_writer *w)
{
    as_future *failed;
    if (!w)
        return NULL;
    if (stored_error(w, &failed))
        return failed;
    return as_transport_flush(w->transport);
}

as_future *as_writer_wait_closed(as_writer *w)
{
    return as_transport_closed(tr(w));
}

int as_writer_peername(const as_writer *w, struct sockaddr_storage *addr,
                       socklen_t *len)
{
    return as_transport_peername(tr(w), addr, len);
}

int as_writer_sockname(const as_writer *w, struct sockaddr_storage *addr,
                       socklen_t *len)
{
    return as_transport_sockname(tr(w), addr, len);
}

int as_writer_fd(const as_writer *w)
{
    return as_transport_fd(tr(w));
}

size_t as_writer_get_write_buffer_size(const as_writer *w)
{
    return as_transport_get_write_buffer_size(tr(w));
}

void as_writer_get_write_buffer_limits(const as_writer *w, size_t *high,
                                       size_t *low)
{
    as_transport_get_write_buffer_limits(tr(w), high, low);
}

int as_writer_set_write_buffer_limits(as_writer *w, long long high, long long low)
{
    return as_transport_set_write_buffer_limits(tr(w), high, low);
}

unsigned long long as_writer_bytes_sent(const as_writer *w)
{
    return as_transport_bytes_sent(tr(w));
}
