/*
 * pystream.c - StreamWriter and Server, and the four calls that make them:
 * open_connection, open_unix_connection, start_server, start_unix_server.
 *
 * Each is a thin shell over the C object (writer.h, server.h): a method
 * calls the C function and either returns at once or wraps the C future it
 * returned in an awaitable Future.  The C futures of the connect and start
 * calls carry C results (an as_connection, an as_server); the Future turns
 * them into Python objects when it is first awaited (asp_conn_result,
 * asp_server_result), so a result nobody awaits is freed by C as C says.
 *
 * The Python package subclasses StreamWriter and Server (streams.py) for
 * what is pure Python (get_extra_info, `async with`, sockets); _set_types()
 * tells this file which classes to instantiate.
 */

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/un.h>

static PyTypeObject *asp_writer_type = &WriterType;
static PyTypeObject *asp_server_type = &ServerType;

/* ------------------------------------------------------------ addresses */

/* A socket address as Python's socket module gives it: (host, port) for
 * IPv4, (host, port, flowinfo, scope_id) for IPv6, the path for Unix. */
static PyObject *asp_sockaddr(const struct sockaddr_storage *ss, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];
    switch (ss->ss_family) {
    case AF_INET: {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        if (!inet_ntop(AF_INET, &a->sin_addr, host, sizeof host))
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(si)", host, (int)ntohs(a->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (!inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host))
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(siII)", host, (int)ntohs(a->sin6_port),
                             (unsigned)ntohl(a->sin6_flowinfo), (unsigned)a->sin6_scope_id);
    }
    case AF_UNIX: {
        const struct sockaddr_un *a = (const struct sockaddr_un *)ss;
        size_t off = offsetof(struct sockaddr_un, sun_path), n;
        if ((size_t)len <= off)
            return PyUnicode_FromString("");
        n = (size_t)len - off;
        if (a->sun_path[0] == '\0') /* Linux abstract namespace: bytes */
            return PyBytes_FromStringAndSize(a->sun_path, (Py_ssize_t)n);
        n = strnlen(a->sun_path, n);
        return PyUnicode_DecodeFSDefaultAndSize(a->sun_path, (Py_ssize_t)n);
    }
    default:
        Py_RETURN_NONE;
    }
}

/* ------------------------------------------------------------ StreamWriter */

static int writer_check(WriterObject *self)
{
    if (!self->w) {
        PyErr_SetString(PyExc_RuntimeError, "StreamWriter is not connected");
        return -1;
    }
    if (!self->loop->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

/* A write refused: the transport's stored error in its own words, or the
 * state error (writer.h's method x state table). */
static PyObject *writer_error(WriterObject *self, int err)
{
    const char *msg = NULL;
    if (err == AS_ESTATE) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot call write() after write_eof()");
        return NULL;
    }
    if (err == AS_ECLOSED) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot write to a closing StreamWriter");
        return NULL;
    }
    if (as_transport_error(as_writer_transport(self->w), &msg) == err)
        return asp_set_error(err, msg);
    return asp_set_error(err, NULL);
}

/* Wrap a writer the C library made (stealing the reference). */
static PyObject *writer_from_c(LoopObject *loop, as_writer *w, PyObject *reader)
{
    WriterObject *self = (WriterObject *)asp_writer_type->tp_alloc(asp_writer_type, 0);
    if (!self) {
        as_writer_close(w);
        as_writer_unref(w);
        return NULL;
    }
    self->w = w;
    self->loop = (LoopObject *)Py_NewRef((PyObject *)loop);
    self->reader = Py_XNewRef(reader);
    return (PyObject *)self;
}

/* Wrap a reader the C library made (stealing the reference). */
static PyObject *reader_from_c(LoopObject *loop, as_reader *r)
{
    ReaderObject *self = (ReaderObject *)ReaderType.tp_alloc(&ReaderType, 0);
    if (!self) {
        as_reader_unref(r);
        return NULL;
    }
    self->r = r;
    self->loop = (LoopObject *)Py_NewRef((PyObject *)loop);
    return (PyObject *)self;
}

/* The release hook of a bytes object handed to as_writer_write_owned(). */
static void release_pybytes(void *owner)
{
    PyGILState_STATE g = PyGILState_Ensure();
    Py_DECREF((PyObject *)owner);
    PyGILState_Release(g);
}

static PyObject *writer_write(WriterObject *self, PyObject *data)
{
    int err;
    if (writer_check(self) < 0)
        return NULL;
    if (PyBytes_CheckExact(data)) {
        /* The common case.  A bytes object cannot change, so the queue
         * keeps a reference instead of a copy (as asyncio's transport keeps
         * the object), released once its bytes are sent. */
        Py_INCREF(data);
        err = as_writer_write_owned(self->w, PyBytes_AS_STRING(data),
                                    (size_t)PyBytes_GET_SIZE(data), data, release_pybytes);
        if (err < 0)
            Py_DECREF(data);
    } else {
        Py_buffer v;
        if (PyObject_GetBuffer(data, &v, PyBUF_SIMPLE) < 0) {
            PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%s'",
                         Py_TYPE(data)->tp_name);
            return NULL;
        }
        err = as_writer_write(self->w, v.buf, (size_t)v.len);
        PyBuffer_Release(&v);
    }
    if (err < 0)
        return writer_error(self, err);
    Py_RETURN_NONE;
}

static PyObject *writer_writelines(WriterObject *self, PyObject *lines)
{
    PyObject *seq;
    Py_buffer small[16], *views = small;
    struct iovec iosmall[16], *iov = iosmall;
    Py_ssize_t n, i, got = 0;
    int err = 0;

    if (writer_check(self) < 0)
        return NULL;
    if (!(seq = PySequence_Fast(lines, "writelines() requires an iterable")))
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    if (n > IOV_MAX) {
        /* More buffers than one sendmsg() takes: join them first. */
        PyObject *empty = PyBytes_FromStringAndSize(NULL, 0), *joined;
        joined = empty ? PyObject_CallMethod(empty, "join", "O", seq) : NULL;
        Py_XDECREF(empty);
        Py_DECREF(seq);
        if (!joined)
            return NULL;
        lines = writer_write(self, joined);
        Py_DECREF(joined);
        return lines;
    }
    if (n > 16) {
        views = PyMem_Calloc((size_t)n, sizeof *views);
        iov = PyMem_Calloc((size_t)n, sizeof *iov);
        if (!views || !iov) {
            PyErr_NoMemory();
            goto out;
        }
    }
    for (i = 0; i < n; i++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &views[i], PyBUF_SIMPLE) < 0)
            goto out;
        got++;
        iov[i].iov_base = views[i].buf;
        iov[i].iov_len = (size_t)views[i].len;
    }
    err = as_writer_writelines(self->w, iov, (int)n);
out:
    for (i = 0; i < got; i++)
        PyBuffer_Release(&views[i]);
    if (views != small)
        PyMem_Free(views);
    if (iov != iosmall)
        PyMem_Free(iov);
    Py_DECREF(seq);
    if (PyErr_Occurred())
        return NULL;
    if (err < 0)
        return writer_error(self, err);
    Py_RETURN_NONE;
}

static PyObject *writer_future(WriterObject *self, as_future *f)
{
    /* The reader as owner: a drain failing with the reader's stored
     * exception raises that very object, as asyncio's drain() does. */
    PyObject *owner = self->reader && PyObject_TypeCheck(self->reader, &ReaderType)
                          ? self->reader : NULL;
    return (PyObject *)asp_future_wrap(self->loop, f, ASP_KIND_NONE, owner);
}

static PyObject *writer_drain(WriterObject *self, PyObject *unused)
{
    (void)unused;
    if (writer_check(self) < 0)
        return NULL;
    return writer_future(self, as_writer_drain(self->w));
}

static PyObject *writer_flush(WriterObject *self, PyObject *unused)
{
    (void)unused;
    if (writer_check(self) < 0)
        return NULL;
    return writer_future(self, as_writer_flush(self->w));
}

static PyObject *writer_wait_closed(WriterObject *self, PyObject *unused)
{
    (void)unused;
    if (writer_check(self) < 0)
        return NULL;
    return writer_future(self, as_writer_wait_closed(self->w));
}

static PyObject *writer_write_eof(WriterObject *self, PyObject *unused)
{
    int err;
    (void)unused;
    if (writer_check(self) < 0)
        return NULL;
    if ((err = as_writer_write_eof(self->w)) < 0)
        return writer_error(self, err);
    Py_RETURN_NONE;
}

static PyObject *writer_can_write_eof(WriterObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->w && as_writer_can_write_eof(self->w));
}

static PyObject *writer_close(WriterObject *self, PyObject *unused)
{
    (void)unused;
    if (self->w)
        as_writer_close(self->w);
    Py_RETURN_NONE;
}

static PyObject *writer_close_within(WriterObject *self, PyObject *arg)
{
    double seconds = PyFloat_AsDouble(arg);
    if (seconds == -1.0 && PyErr_Occurred())
        return NULL;
    if (self->w)
        as_writer_close_within(self->w, seconds);
    Py_RETURN_NONE;
}

static PyObject *writer_abort(WriterObject *self, PyObject *unused)
{
    (void)unused;
    if (self->w)
        as_writer_abort(self->w);
    Py_RETURN_NONE;
}

static PyObject *writer_is_closing(WriterObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(!self->w || as_writer_is_closing(self->w));
}

static PyObject *writer_addr(WriterObject *self, int peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int err;
    if (!self->w)
        Py_RETURN_NONE;
    memset(&ss, 0, sizeof ss);
    err = peer ? as_writer_peername(self->w, &ss, &len) : as_writer_sockname(self->w, &ss, &len);
    if (err < 0)
        Py_RETURN_NONE; /* get_extra_info()'s answer for "not available" */
    return asp_sockaddr(&ss, len);
}

static PyObject *writer_peername(WriterObject *self, PyObject *unused)
{
    (void)unused;
    return writer_addr(self, 1);
}

static PyObject *writer_sockname(WriterObject *self, PyObject *unused)
{
    (void)unused;
    return writer_addr(self, 0);
}

static PyObject *writer_fileno(WriterObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(self->w ? as_writer_fd(self->w) : -1);
}

static PyObject *writer_get_write_buffer_size(WriterObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSize_t(self->w ? as_writer_get_write_buffer_size(self->w) : 0);
}

static PyObject *writer_get_write_buffer_limits(WriterObject *self, PyObject *unused)
{
    size_t high = 0, low = 0;
    (void)unused;
    if (self->w)
        as_writer_get_write_buffer_limits(self->w, &high, &low);
    return Py_BuildValue("(nn)", (Py_ssize_t)low, (Py_ssize_t)high);
}

static PyObject *writer_set_write_buffer_limits(WriterObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"high", "low", NULL};
    PyObject *ho = Py_None, *lo = Py_None;
    long long high = -1, low = -1;
    int err;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:set_write_buffer_limits", kwlist, &ho, &lo))
        return NULL;
    if (writer_check(self) < 0)
        return NULL;
    if (ho != Py_None && (high = PyLong_AsLongLong(ho)) == -1 && PyErr_Occurred())
        return NULL;
    if (lo != Py_None && (low = PyLong_AsLongLong(lo)) == -1 && PyErr_Occurred())
        return NULL;
    if ((ho != Py_None && high < 0) || (lo != Py_None && low < 0) ||
        (err = as_writer_set_write_buffer_limits(self->w, high, low)) < 0) {
        PyErr_Format(PyExc_ValueError, "high (%R) must be >= low (%R) must be >= 0", ho, lo);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *writer_bytes_sent(WriterObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLongLong(self->w ? as_writer_bytes_sent(self->w) : 0);
}

static PyObject *writer_get_reader(WriterObject *self, void *c)
{
    (void)c;
    return Py_NewRef(self->reader ? self->reader : Py_None);
}

static PyObject *writer_get_loop(WriterObject *self, void *c)
{
    (void)c;
    return Py_NewRef((PyObject *)self->loop);
}

static int writer_traverse(WriterObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->loop);
    Py_VISIT(self->reader);
    Py_VISIT(self->dict);
    return 0;
}

static int writer_clear(WriterObject *self)
{
    Py_CLEAR(self->reader);
    Py_CLEAR(self->dict);
    return 0;
}

static void writer_dealloc(WriterObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    /* An open writer's last reference closes it and reports "unclosed
     * StreamWriter" (writer.h, rule 2), as asyncio's __del__ warns. */
    if (self->w)
        as_writer_unref(self->w);
    self->w = NULL;
    writer_clear(self);
    Py_CLEAR(self->loop);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *writer_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    (void)args;
    (void)kwds;
    PyErr_SetString(PyExc_TypeError,
                    "StreamWriter objects are made by open_connection() and start_server()");
    return NULL;
}

static PyMethodDef writer_methods[] = {
    {"write", (PyCFunction)writer_write, METH_O,
     "Queue the bytes; never blocks.  Follow with `await drain()`."},
    {"writelines", (PyCFunction)writer_writelines, METH_O, "write() of each buffer, as one send."},
    {"drain", (PyCFunction)writer_drain, METH_NOARGS,
     "Awaitable: waits while the write buffer is above the high-water mark; "
     "raises the connection's error."},
    {"flush", (PyCFunction)writer_flush, METH_NOARGS,
     "Extra: awaitable that finishes once every written byte is in the kernel."},
    {"write_eof", (PyCFunction)writer_write_eof, METH_NOARGS, "Send FIN after the queued bytes."},
    {"can_write_eof", (PyCFunction)writer_can_write_eof, METH_NOARGS, NULL},
    {"close", (PyCFunction)writer_close, METH_NOARGS, "Flush, then close."},
    {"close_within", (PyCFunction)writer_close_within, METH_O,
     "Extra: close(), but abort (RST) whatever is still queued after this many "
     "seconds, so wait_closed() finishes by then."},
    {"_abort", (PyCFunction)writer_abort, METH_NOARGS, "Drop the queue and reset the connection."},
    {"is_closing", (PyCFunction)writer_is_closing, METH_NOARGS, NULL},
    {"wait_closed", (PyCFunction)writer_wait_closed, METH_NOARGS,
     "Awaitable: finishes once the connection is closed."},
    {"_peername", (PyCFunction)writer_peername, METH_NOARGS, NULL},
    {"_sockname", (PyCFunction)writer_sockname, METH_NOARGS, NULL},
    {"_fileno", (PyCFunction)writer_fileno, METH_NOARGS, NULL},
    {"_get_write_buffer_size", (PyCFunction)writer_get_write_buffer_size, METH_NOARGS, NULL},
    {"_get_write_buffer_limits", (PyCFunction)writer_get_write_buffer_limits, METH_NOARGS, NULL},
    {"_set_write_buffer_limits", (PyCFunction)(void (*)(void))writer_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"bytes_sent", (PyCFunction)writer_bytes_sent, METH_NOARGS,
     "Extra: bytes handed to the kernel so far."},
    {NULL, NULL, 0, NULL}};

static PyObject *writer_get_server_side(WriterObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->server_side);
}

static PyGetSetDef writer_getset[] = {
    {"_reader", (getter)writer_get_reader, NULL, NULL, NULL},
    {"_server_side", (getter)writer_get_server_side, NULL, NULL, NULL},
    {"_loop", (getter)writer_get_loop, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject WriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncstreams._core.StreamWriter",
    .tp_basicsize = sizeof(WriterObject),
    .tp_dealloc = (destructor)writer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C StreamWriter (as_writer).",
    .tp_traverse = (traverseproc)writer_traverse,
    .tp_clear = (inquiry)writer_clear,
    .tp_weaklistoffset = offsetof(WriterObject, weakreflist),
    .tp_methods = writer_methods,
    .tp_getset = writer_getset,
    .tp_dictoffset = offsetof(WriterObject, dict),
    .tp_new = writer_tp_new,
};

/* ------------------------------------------------------------ results */

/* open_connection's result: (StreamReader, StreamWriter). */
static PyObject *asp_conn_result(FutureObject *fut)
{
    as_connection *c = as_future_take_result(fut->fut);
    PyObject *r, *w;
    as_writer *cw;
    if (!c) {
        PyErr_SetString(PyExc_RuntimeError, "connection already taken");
        return NULL;
    }
    cw = c->writer;
    r = reader_from_c(fut->loop, c->reader);
    free(c);
    if (!r) {
        as_writer_close(cw);
        as_writer_unref(cw);
        return NULL;
    }
    if (!(w = writer_from_c(fut->loop, cw, r))) {
        Py_DECREF(r);
        return NULL;
    }
    return Py_BuildValue("(NN)", r, w);
}

static PyObject *asp_server_result(FutureObject *fut)
{
    as_server *s = as_future_take_result(fut->fut);
    ServerObject *self;
    if (!s) {
        PyErr_SetString(PyExc_RuntimeError, "server already taken");
        return NULL;
    }
    if (!(self = (ServerObject *)asp_server_type->tp_alloc(asp_server_type, 0))) {
        as_server_unref(s);
        return NULL;
    }
    self->s = s;
    self->loop = (LoopObject *)Py_NewRef((PyObject *)fut->loop);
    return (PyObject *)self;
}

/* ------------------------------------------------------------ connecting */

static LoopObject *asp_need_loop(void)
{
    LoopObject *loop = asp_running_loop();
    if (!loop) {
        PyErr_SetString(PyExc_RuntimeError, "no running event loop");
        return NULL;
    }
    if (!loop->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return NULL;
    }
    return loop;
}

/* _open_connection(host, port, limit, family, local_host, local_port) */
static PyObject *asp_open_connection(PyObject *mod, PyObject *args)
{
    const char *host, *port, *lhost, *lport;
    Py_ssize_t limit;
    int family;
    as_connect_options o;
    LoopObject *loop;
    (void)mod;
    if (!PyArg_ParseTuple(args, "zznizz:_open_connection", &host, &port, &limit, &family,
                          &lhost, &lport))
        return NULL;
    if (!(loop = asp_need_loop()))
        return NULL;
    memset(&o, 0, sizeof o);
    o.limit = limit;
    o.family = family;
    o.local_host = lhost;
    o.local_port = lport;
    return (PyObject *)asp_future_wrap(loop, as_open_connection(loop->loop, host, port, &o),
                                       ASP_KIND_CONN, NULL);
}

static PyObject *asp_open_unix_connection(PyObject *mod, PyObject *args)
{
    PyObject *pathobj;
    Py_ssize_t limit;
    as_connect_options o;
    LoopObject *loop;
    PyObject *r;
    (void)mod;
    if (!PyArg_ParseTuple(args, "O&n:_open_unix_connection", PyUnicode_FSConverter, &pathobj,
                          &limit))
        return NULL;
    if (!(loop = asp_need_loop())) {
        Py_DECREF(pathobj);
        return NULL;
    }
    memset(&o, 0, sizeof o);
    o.limit = limit;
    r = (PyObject *)asp_future_wrap(loop, as_open_unix_connection(loop->loop,
                                                                  PyBytes_AS_STRING(pathobj), &o),
                                    ASP_KIND_CONN, NULL);
    Py_DECREF(pathobj);
    return r;
}

/* ------------------------------------------------------------ serving */

/* A plain-function client_connected_cb raised exc (a reference is stolen):
 * report it through loop.call_exception_handler(), as asyncio reports an
 * exception from its protocol's connection_made(), so that one failed
 * connection does not stop the server.  Returns -1 with exc (or the
 * handler's own exception) set again if it cannot be reported: then it
 * goes to run() like any callback's. */
static int asp_report_client_error(LoopObject *loop, PyObject *writer, PyObject *exc)
{
    PyObject *ctx, *msg, *transport = NULL, *r = NULL;

    if (!exc)
        return -1;
    if (PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt) ||
        PyErr_GivenExceptionMatches(exc, PyExc_SystemExit) ||
        !PyObject_HasAttrString((PyObject *)loop, "call_exception_handler")) {
        asp_restore_exc(exc);
        return -1;
    }
    /* asyncio's words for a coroutine handler that raised (its plain
     * callbacks' reports name its internal protocol instead). */
    msg = PyUnicode_FromString("Unhandled exception in client_connected_cb");
    ctx = PyDict_New();
    if (msg && ctx && (transport = PyObject_GetAttrString(writer, "transport")) &&
        PyDict_SetItemString(ctx, "message", msg) == 0 &&
        PyDict_SetItemString(ctx, "exception", exc) == 0 &&
        PyDict_SetItemString(ctx, "transport", transport) == 0)
        r = PyObject_CallMethod((PyObject *)loop, "call_exception_handler", "O", ctx);
    Py_XDECREF(transport);
    Py_XDECREF(ctx);
    Py_XDECREF(msg);
    Py_DECREF(exc);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* The C server's client_connected callback.  userdata is (callback, Loop).
 * A coroutine the callback returns runs as a Task whose C future goes back
 * to the server, which then tracks the handler (server.h). */
/* listing: client-connected */
static as_future *asp_client_connected(as_reader *r, as_writer *w, void *userdata)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *cb = PyTuple_GET_ITEM((PyObject *)userdata, 0);
    LoopObject *loop = (LoopObject *)PyTuple_GET_ITEM((PyObject *)userdata, 1);
    PyObject *pr, *pw = NULL, *res = NULL;
    as_future *ret = NULL;

    if (!(pr = reader_from_c(loop, r))) {
        as_writer_close(w);
        as_writer_unref(w);
        goto fail;
    }
    if (!(pw = writer_from_c(loop, w, pr)))
        goto fail;
    ((WriterObject *)pw)->server_side = 1;
    if (!(res = PyObject_CallFunctionObjArgs(cb, pr, pw, NULL))) {
        /* The callback itself raised: reported, and the server goes on. */
        if (asp_report_client_error(loop, pw, asp_fetch_exc()) < 0)
            goto fail;
        /* Closed, not left open with nobody to read it as asyncio leaves
         * it: the client sees EOF instead of waiting forever, and the
         * server's wait_closed() does not wait for it. */
        if (((WriterObject *)pw)->w)
            as_writer_close(((WriterObject *)pw)->w);
        goto out;
    }
    if (PyCoro_CheckExact(res) || (PyObject_HasAttrString(res, "send") &&
                                   PyObject_HasAttrString(res, "throw"))) {
        PyObject *t = task_new_on(loop, res, Py_None, Py_None);
        if (!t)
            goto fail;
        ret = as_future_ref(((FutureObject *)t)->fut);
        Py_DECREF(t); /* its scheduled step keeps it alive (pyrt.h, rule 3) */
    }
    goto out;
fail:
    /* A connection we could not hand over is closed; the exception reaches
     * run() as every other callback's does. */
    if (pw && ((WriterObject *)pw)->w)
        as_writer_close(((WriterObject *)pw)->w);
    asp_callback_error();
out:
    Py_XDECREF(res);
    Py_XDECREF(pw);
    Py_XDECREF(pr);
    PyGILState_Release(g);
    return ret;
}
/* end listing */

/* _start_server(cb, host, port, limit, family, backlog, reuse_address,
 *               reuse_port, start_serving) */
static PyObject *asp_start_server(PyObject *mod, PyObject *args)
{
    PyObject *cb, *state;
    const char *host, *port;
    Py_ssize_t limit;
    int family, backlog, reuse_address, reuse_port, start;
    as_server_options o;
    LoopObject *loop;
    as_future *f;
    (void)mod;
    if (!PyArg_ParseTuple(args, "Ozzniiiip:_start_server", &cb, &host, &port, &limit, &family,
                          &backlog, &reuse_address, &reuse_port, &start))
        return NULL;
    if (!PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "client_connected_cb must be callable");
        return NULL;
    }
    if (!(loop = asp_need_loop()))
        return NULL;
    memset(&o, 0, sizeof o);
    o.limit = limit;
    o.family = family;
    o.backlog = backlog;
    o.reuse_address = reuse_address;
    o.reuse_port = reuse_port;
    o.no_start = !start;
    if (!(state = PyTuple_Pack(2, cb, (PyObject *)loop)))
        return NULL;
    f = as_start_server(loop->loop, asp_client_connected, state, asp_decref, host, port, &o);
    if (!f)
        Py_DECREF(state); /* no future: the server never took userdata */
    return (PyObject *)asp_future_wrap(loop, f, ASP_KIND_SERVER, NULL);
}

/* _start_unix_server(cb, path, limit, backlog, start_serving, cleanup) */
static PyObject *asp_start_unix_server(PyObject *mod, PyObject *args)
{
    PyObject *cb, *state, *pathobj;
    Py_ssize_t limit;
    int backlog, start, cleanup;
    as_server_options o;
    LoopObject *loop;
    as_future *f;
    (void)mod;
    if (!PyArg_ParseTuple(args, "OO&nipp:_start_unix_server", &cb, PyUnicode_FSConverter,
                          &pathobj, &limit, &backlog, &start, &cleanup))
        return NULL;
    if (!PyCallable_Check(cb) || !(loop = asp_need_loop())) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "client_connected_cb must be callable");
        Py_DECREF(pathobj);
        return NULL;
    }
    memset(&o, 0, sizeof o);
    o.limit = limit;
    o.backlog = backlog;
    o.no_start = !start;
    o.keep_socket_file = !cleanup;
    if (!(state = PyTuple_Pack(2, cb, (PyObject *)loop))) {
        Py_DECREF(pathobj);
        return NULL;
    }
    f = as_start_unix_server(loop->loop, asp_client_connected, state, asp_decref,
                             PyBytes_AS_STRING(pathobj), &o);
    Py_DECREF(pathobj);
    if (!f)
        Py_DECREF(state);
    return (PyObject *)asp_future_wrap(loop, f, ASP_KIND_SERVER, NULL);
}

/* _set_types(StreamWriter, Server): the package's subclasses to make. */
static PyObject *asp_set_types(PyObject *mod, PyObject *args)
{
    PyTypeObject *wt, *st;
    (void)mod;
    if (!PyArg_ParseTuple(args, "O!O!:_set_types", &PyType_Type, &wt, &PyType_Type, &st))
        return NULL;
    if (!PyType_IsSubtype(wt, &WriterType) || !PyType_IsSubtype(st, &ServerType)) {
        PyErr_SetString(PyExc_TypeError, "subclasses of StreamWriter and Server required");
        return NULL;
    }
    /* Module-lifetime references: the types stay for the process. */
    Py_INCREF(wt);
    Py_INCREF(st);
    asp_writer_type = wt;
    asp_server_type = st;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ Server */

static int server_check(ServerObject *self)
{
    if (!self->s) {
        PyErr_SetString(PyExc_RuntimeError, "Server is not initialised");
        return -1;
    }
    if (!self->loop->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

static PyObject *server_future(ServerObject *self, as_future *f)
{
    return (PyObject *)asp_future_wrap(self->loop, f, ASP_KIND_NONE, NULL);
}

static PyObject *server_close(ServerObject *self, PyObject *unused)
{
    (void)unused;
    if (self->s)
        as_server_close(self->s);
    Py_RETURN_NONE;
}

static PyObject *server_is_serving(ServerObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->s && as_server_is_serving(self->s));
}

static PyObject *server_start_serving(ServerObject *self, PyObject *unused)
{
    (void)unused;
    if (server_check(self) < 0)
        return NULL;
    return server_future(self, as_server_start_serving(self->s));
}

static PyObject *server_serve_forever(ServerObject *self, PyObject *unused)
{
    (void)unused;
    if (server_check(self) < 0)
        return NULL;
    return server_future(self, as_server_serve_forever(self->s));
}

static PyObject *server_wait_closed(ServerObject *self, PyObject *unused)
{
    (void)unused;
    if (server_check(self) < 0)
        return NULL;
    return server_future(self, as_server_wait_closed(self->s));
}

static PyObject *server_shutdown(ServerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    double timeout = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|d:shutdown", kwlist, &timeout))
        return NULL;
    if (server_check(self) < 0)
        return NULL;
    return server_future(self, as_server_shutdown(self->s, timeout));
}

static PyObject *server_close_clients(ServerObject *self, PyObject *unused)
{
    (void)unused;
    if (self->s)
        as_server_close_clients(self->s);
    Py_RETURN_NONE;
}

static PyObject *server_abort_clients(ServerObject *self, PyObject *unused)
{
    (void)unused;
    if (self->s)
        as_server_abort_clients(self->s);
    Py_RETURN_NONE;
}

static PyObject *server_nsockets(ServerObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSize_t(self->s ? as_server_nsockets(self->s) : 0);
}

static PyObject *server_socket_fd(ServerObject *self, PyObject *arg)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    int fd;
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (!self->s || i < 0 || (fd = as_server_socket_fd(self->s, (size_t)i)) < 0) {
        PyErr_SetString(PyExc_IndexError, "no such listening socket");
        return NULL;
    }
    return PyLong_FromLong(fd);
}

static PyObject *server_active_connections(ServerObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSize_t(self->s ? as_server_active_connections(self->s) : 0);
}

static PyObject *server_get_loop(ServerObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef((PyObject *)self->loop);
}

static int server_traverse(ServerObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->loop);
    Py_VISIT(self->dict);
    return 0;
}

static int server_clear(ServerObject *self)
{
    Py_CLEAR(self->dict);
    return 0;
}

static void server_dealloc(ServerObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->s)
        as_server_unref(self->s); /* closes it: stops listening (server.h, rule 2) */
    self->s = NULL;
    server_clear(self);
    Py_CLEAR(self->loop);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *server_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    (void)args;
    (void)kwds;
    PyErr_SetString(PyExc_TypeError, "Server objects are made by start_server()");
    return NULL;
}

static PyMethodDef server_methods[] = {
    {"close", (PyCFunction)server_close, METH_NOARGS,
     "Stop listening; existing connections go on."},
    {"is_serving", (PyCFunction)server_is_serving, METH_NOARGS, NULL},
    {"start_serving", (PyCFunction)server_start_serving, METH_NOARGS,
     "Awaitable: start accepting connections."},
    {"serve_forever", (PyCFunction)server_serve_forever, METH_NOARGS,
     "Awaitable: serve until cancelled (cancelling closes the server)."},
    {"wait_closed", (PyCFunction)server_wait_closed, METH_NOARGS,
     "Awaitable: finishes once closed and every connection is closed."},
    {"shutdown", (PyCFunction)(void (*)(void))server_shutdown, METH_VARARGS | METH_KEYWORDS,
     "Extra: shutdown(timeout): stop listening, EOF the readers, cancel the "
     "handlers, close the connections, abort what is left after timeout."},
    {"close_clients", (PyCFunction)server_close_clients, METH_NOARGS, NULL},
    {"abort_clients", (PyCFunction)server_abort_clients, METH_NOARGS, NULL},
    {"get_loop", (PyCFunction)server_get_loop, METH_NOARGS, NULL},
    {"_nsockets", (PyCFunction)server_nsockets, METH_NOARGS, NULL},
    {"_socket_fd", (PyCFunction)server_socket_fd, METH_O, NULL},
    {"active_connections", (PyCFunction)server_active_connections, METH_NOARGS,
     "Extra: connections the server made that are not closed yet."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ServerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncstreams._core.Server",
    .tp_basicsize = sizeof(ServerObject),
    .tp_dealloc = (destructor)server_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C server (as_server).",
    .tp_traverse = (traverseproc)server_traverse,
    .tp_clear = (inquiry)server_clear,
    .tp_weaklistoffset = offsetof(ServerObject, weakreflist),
    .tp_methods = server_methods,
    .tp_dictoffset = offsetof(ServerObject, dict),
    .tp_new = server_tp_new,
};
