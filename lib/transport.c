/*
 * transport.c - the calls every transport shares: argument checks, then one
 * operation of the transport's table (transport.h).  Nothing here knows a
 * socket; the reader and the writer use only these calls.
 *
 * Cost: one indirect call per operation, a few instructions; the price of
 * letting a TLS session or a pipe stand where a socket stands.
 */
#include "transport.h"
#include "errors.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ the base */

/* The reader's flow-control hooks: the reader asks, the transport's own
 * operation decides how (stop watching an fd, stop asking the inner
 * transport...). */
static int flow_pause(as_reader *r, void *p)
{
    (void)r;
    return ((as_transport *)p)->ops->pause_reading(p);
}

static int flow_resume(as_reader *r, void *p)
{
    (void)r;
    return ((as_transport *)p)->ops->resume_reading(p);
}

int as_transport_init(as_transport *t, const as_transport_ops *ops,
                      as_loop *loop, as_reader *reader)
{
    if (!t || !ops || !loop || !reader)
        return AS_EINVAL;
    if (as_loop_is_closed(loop))
        return AS_ECLOSED;
    t->ops = ops;
    t->loop = loop;
    t->reader = as_reader_ref(reader);
    t->refs = 1;
    as__loop_obj_ref(loop);
    (void)as_reader_set_flow_control(reader, flow_pause, flow_resume, t, NULL);
    return 0;
}

void as__transport_set_reader(as_transport *t, as_reader *reader)
{
    as_reader *old = t->reader;
    (void)as_reader_set_flow_control(old, NULL, NULL, NULL, NULL);
    t->reader = as_reader_ref(reader);
    (void)as_reader_set_flow_control(reader, flow_pause, flow_resume, t, NULL);
    as_reader_unref(old);
}

as_transport *as_transport_ref(as_transport *t)
{
    if (t)
        t->refs++;
    return t;
}

void as_transport_unref(as_transport *t)
{
    as_reader *reader;
    as_loop *loop;

    if (!t)
        return;
    if (t->refs == 1)
        t->ops->last_ref(t); /* rule 4; may take and drop references */
    if (--t->refs > 0)
        return;
    reader = t->reader;
    loop = t->loop;
    /* The hooks point at t: gone before t is (the reader may live on). */
    (void)as_reader_set_flow_control(reader, NULL, NULL, NULL, NULL);
    t->ops->destroy(t);
    as_reader_unref(reader);
    as__loop_obj_unref(loop);
}

as_loop *as_transport_loop(const as_transport *t)
{
    return t ? t->loop : NULL;
}

as_reader *as_transport_reader(const as_transport *t)
{
    return t ? t->reader : NULL;
}

const char *as_transport_kind(const as_transport *t)
{
    return t ? t->ops->name : NULL;
}

/* ------------------------------------------------------------ writing */

int as_transport_writelines(as_transport *t, const struct iovec *iov, int iovcnt)
{
    size_t total = 0;
    int i;

    if (!t || (iovcnt > 0 && !iov) || iovcnt < 0)
        return AS_EINVAL;
    for (i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len > 0)
            return AS_EINVAL;
        if (total + iov[i].iov_len < total)
            return AS_EINVAL;
        total += iov[i].iov_len;
    }
    return t->ops->write(t, iov, iovcnt, total);
}

int as_transport_write(as_transport *t, const void *data, size_t len)
{
    struct iovec iov;
    if (!t || (!data && len > 0))
        return AS_EINVAL;
    iov.iov_base = (void *)data;
    iov.iov_len = len;
    return t->ops->write(t, &iov, 1, len);
}

int as_transport_write_owned(as_transport *t, const void *data, size_t len,
                             void *owner, as_destroy_fn release)
{
    if (!t || !release || (!data && len > 0))
        return AS_EINVAL;
    return t->ops->write_owned(t, data, len, owner, release);
}

int as_transport_write_bytes(as_transport *t, as_bytes *bytes)
{
    int err;
    if (!t || !bytes) {
        free(bytes); /* ours from the call on, whatever the outcome */
        return AS_EINVAL;
    }
    if (t->ops->write_bytes)
        return t->ops->write_bytes(t, bytes);
    err = t->ops->write_owned(t, bytes->data, bytes->len, bytes, free);
    if (err < 0)
        free(bytes);
    return err;
}

int as_transport_write_eof(as_transport *t)
{
    return t ? t->ops->write_eof(t) : AS_EINVAL;
}

int as_transport_eof_written(const as_transport *t)
{
    return t ? t->ops->eof_written(t) : 0;
}

int as_transport_can_write_eof(const as_transport *t)
{
    return t ? t->ops->can_write_eof(t) : 0;
}

/* ------------------------------------------------------------ closing */

void as_transport_close(as_transport *t)
{
    if (t)
        t->ops->close(t);
}

void as_transport_close_within(as_transport *t, double seconds)
{
    if (t)
        t->ops->close_within(t, seconds);
}

void as_transport_abort(as_transport *t)
{
    if (t)
        t->ops->abort(t);
}

int as_transport_is_closing(const as_transport *t)
{
    return t ? t->ops->is_closing(t) : 1;
}

int as_transport_error(const as_transport *t, const char **message)
{
    if (!t) {
        if (message)
            *message = NULL;
        return AS_EINVAL;
    }
    return t->ops->error(t, message);
}

/* ------------------------------------------------------------ reading */

int as_transport_pause_reading(as_transport *t)
{
    return t ? t->ops->pause_reading(t) : AS_EINVAL;
}

int as_transport_resume_reading(as_transport *t)
{
    return t ? t->ops->resume_reading(t) : AS_EINVAL;
}

int as_transport_is_reading_paused(const as_transport *t)
{
    return t ? t->ops->is_reading_paused(t) : 0;
}

/* ------------------------------------------------------------ futures */

as_future *as_transport_wait_writable(as_transport *t)
{
    return t ? t->ops->wait_writable(t) : NULL;
}

as_future *as_transport_flush(as_transport *t)
{
    return t ? t->ops->flush(t) : NULL;
}

as_future *as_transport_closed(as_transport *t)
{
    return t ? t->ops->closed(t) : NULL;
}

/* ------------------------------------------------------------ the buffer */

size_t as_transport_get_write_buffer_size(const as_transport *t)
{
    return t ? t->ops->write_buffer_size(t) : 0;
}

void as_transport_get_write_buffer_limits(const as_transport *t, size_t *high,
                                          size_t *low)
{
    size_t h = 0, l = 0;
    if (t)
        t->ops->get_write_buffer_limits(t, &h, &l);
    if (high)
        *high = h;
    if (low)
        *low = l;
}

int as_transport_set_write_buffer_limits(as_transport *t, long long high,
                                         long long low)
{
    if (!t)
        return AS_EINVAL;
    /* CPython's _set_write_buffer_limits(), None spelled as < 0. */
    if (high < 0)
        high = low < 0 ? AS_TRANSPORT_DEFAULT_HIGH_WATER : 4 * low;
    if (low < 0)
        low = high / 4;
    if (!(high >= low && low >= 0))
        return AS_EINVAL;
    t->ops->set_write_buffer_limits(t, (size_t)high, (size_t)low);
    return 0;
}

unsigned long long as_transport_bytes_sent(const as_transport *t)
{
    return t ? t->ops->bytes_sent(t) : 0;
}

unsigned long long as_transport_bytes_written(const as_transport *t)
{
    return t ? t->ops->bytes_written(t) : 0;
}

/* ------------------------------------------------------------ extra info */

int as_transport_get_extra_info(const as_transport *t, const char *key,
                                as_extra_info *out)
{
    if (!t || !key || !out)
        return AS_EINVAL;
    return t->ops->get_extra_info(t, key, out);
}

static int address(const as_transport *t, const char *key,
                   struct sockaddr_storage *addr, socklen_t *len)
{
    as_extra_info info;
    int err;

    if (!addr || !len)
        return AS_EINVAL;
    if ((err = as_transport_get_extra_info(t, key, &info)) < 0)
        return err;
    if (info.kind != AS_EXTRA_ADDRESS)
        return AS_EINVAL;
    memcpy(addr, &info.u.address.addr, sizeof *addr);
    *len = info.u.address.len;
    return 0;
}

int as_transport_peername(const as_transport *t, struct sockaddr_storage *addr,
                          socklen_t *len)
{
    return address(t, "peername", addr, len);
}

int as_transport_sockname(const as_transport *t, struct sockaddr_storage *addr,
                          socklen_t *len)
{
    return address(t, "sockname", addr, len);
}

int as_transport_fd(const as_transport *t)
{
    as_extra_info info;
    if (as_transport_get_extra_info(t, "fd", &info) < 0 || info.kind != AS_EXTRA_INT)
        return -1;
    return (int)info.u.integer;
}
