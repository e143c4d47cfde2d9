/*
 * pyreader.c - StreamReader: the C reader (reader.h) with asyncio's Python
 * surface.  Every read method calls the C read and returns its future
 * wrapped as an awaitable Future: when the buffer can answer, the C future
 * is already done and `await` returns without a loop turn.
 *
 * The one thing the C reader cannot hold is a Python exception object:
 * asyncio's set_exception(exc) makes every later read raise *that object*.
 * So the object lives here, the C reader stores the code AS_EUNHANDLED in
 * its place (failing the waiting read), and a read future failing with the
 * reader's stored code raises this object (reader_error_for).  An error the
 * C side stored by itself (a transport's ECONNRESET) is converted once and
 * kept here too, so it is also the same object every time.
 */

static int reader_check(ReaderObject *self)
{
    if (!self->r) {
        PyErr_SetString(PyExc_RuntimeError, "StreamReader.__init__ was not called");
        return -1;
    }
    if (!self->loop->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

static int reader_init(ReaderObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"limit", "loop", NULL};
    Py_ssize_t limit = AS_READER_DEFAULT_LIMIT;
    PyObject *loopobj = Py_None;
    LoopObject *loop;
    as_reader *r;
    int err;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|nO:StreamReader", kwlist, &limit, &loopobj))
        return -1;
    if (limit <= 0) {
        PyErr_SetString(PyExc_ValueError, "Limit cannot be <= 0");
        return -1;
    }
    if (!(loop = asp_loop_arg(loopobj, "no current event loop")))
        return -1;
    if (!loop->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    if ((err = as_reader_new(loop->loop, limit, &r)) < 0) {
        asp_set_error(err, NULL);
        return -1;
    }
    if (self->r)
        as_reader_unref(self->r);
    self->r = r;
    Py_XSETREF(self->loop, (LoopObject *)Py_NewRef((PyObject *)loop));
    return 0;
}

/* The exception a read failing with `code` raises: the stored object if
 * code is the reader's stored code; NULL (no error set) otherwise. */
static PyObject *reader_error_for(PyObject *owner, int code)
{
    ReaderObject *self = (ReaderObject *)owner;
    const char *msg = NULL;
    int stored;

    if (!self->r || (stored = as_reader_exception(self->r, &msg)) == 0 || stored != code)
        return NULL;
    if (!self->exception || self->exc_code != stored) {
        PyObject *e = asp_error_from_code(stored, msg, NULL, ASP_KIND_NONE);
        if (!e)
            return NULL;
        Py_XSETREF(self->exception, e);
        self->exc_code = stored;
    }
    return Py_NewRef(self->exception);
}

static PyObject *reader_wrap(ReaderObject *self, as_future *f, int kind)
{
    return (PyObject *)asp_future_wrap(self->loop, f, kind, (PyObject *)self);
}

static PyObject *reader_read(ReaderObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t n = -1;
    if (nargs > 1)
        return PyErr_Format(PyExc_TypeError, "read() takes at most 1 argument (%zd given)", nargs);
    if (nargs == 1 && (n = PyLong_AsSsize_t(args[0])) == -1 && PyErr_Occurred())
        return NULL;
    if (reader_check(self) < 0)
        return NULL;
    return reader_wrap(self, as_reader_read(self->r, n), ASP_KIND_BYTES);
}

static PyObject *reader_readexactly(ReaderObject *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (reader_check(self) < 0)
        return NULL;
    return reader_wrap(self, as_reader_readexactly(self->r, n), ASP_KIND_BYTES);
}

static PyObject *reader_readline(ReaderObject *self, PyObject *unused)
{
    (void)unused;
    if (reader_check(self) < 0)
        return NULL;
    return reader_wrap(self, as_reader_readline(self->r), ASP_KIND_LINE);
}

static PyObject *reader_readline_limit(ReaderObject *self, PyObject *arg)
{
    Py_ssize_t limit = PyLong_AsSsize_t(arg);
    if (limit == -1 && PyErr_Occurred())
        return NULL;
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "limit must be >= 0");
        return NULL;
    }
    if (reader_check(self) < 0)
        return NULL;
    return reader_wrap(self, as_reader_readline_limit(self->r, (size_t)limit), ASP_KIND_LINE);
}

/* Separators: one bytes-like object, or a tuple of them (asyncio 3.13).
 * The views are released right after the C call: the C reader copies the
 * separators if the read has to wait (reader.h, rule 5). */
struct seps {
    Py_buffer views[8];
    as_separator small[8];
    Py_buffer *v;
    as_separator *s;
    Py_ssize_t n, got;
};

static void seps_release(struct seps *sp)
{
    Py_ssize_t i;
    for (i = 0; i < sp->got; i++)
        PyBuffer_Release(&sp->v[i]);
    if (sp->v != sp->views) {
        PyMem_Free(sp->v);
        PyMem_Free(sp->s);
    }
}

static int seps_get(PyObject *obj, struct seps *sp)
{
    Py_ssize_t i;
    int is_tuple = PyTuple_Check(obj);

    sp->n = is_tuple ? PyTuple_GET_SIZE(obj) : 1;
    sp->got = 0;
    sp->v = sp->views;
    sp->s = sp->small;
    if (sp->n > 8) {
        sp->v = PyMem_Calloc((size_t)sp->n, sizeof *sp->v);
        sp->s = PyMem_Calloc((size_t)sp->n, sizeof *sp->s);
        if (!sp->v || !sp->s) {
            PyMem_Free(sp->v);
            PyMem_Free(sp->s);
            sp->v = sp->views;
            PyErr_NoMemory();
            return -1;
        }
    }
    for (i = 0; i < sp->n; i++) {
        PyObject *o = is_tuple ? PyTuple_GET_ITEM(obj, i) : obj;
        if (PyObject_GetBuffer(o, &sp->v[i], PyBUF_SIMPLE) < 0) {
            seps_release(sp);
            return -1;
        }
        sp->got++;
        sp->s[i].data = sp->v[i].buf;
        sp->s[i].len = (size_t)sp->v[i].len;
    }
    return 0;
}

static PyObject *reader_until(ReaderObject *self, PyObject *sep, size_t limit, int discard)
{
    struct seps sp;
    as_future *f;
    if (reader_check(self) < 0 || seps_get(sep, &sp) < 0)
        return NULL;
    if (discard)
        f = as_reader_discard_until(self->r, sp.s, (size_t)sp.n);
    else if (limit)
        f = as_reader_readuntil_ex(self->r, sp.s, (size_t)sp.n, limit);
    else if (!PyTuple_Check(sep))
        f = as_reader_readuntil(self->r, sp.s[0].data, sp.s[0].len);
    else
        f = as_reader_readuntil_any(self->r, sp.s, (size_t)sp.n);
    seps_release(&sp);
    return reader_wrap(self, f, discard ? ASP_KIND_DISCARD : ASP_KIND_BYTES);
}

static PyObject *reader_readuntil(ReaderObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"separator", NULL};
    PyObject *sep = NULL;
    static PyObject *newline;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:readuntil", kwlist, &sep))
        return NULL;
    if (!sep) {
        if (!newline && !(newline = PyBytes_FromStringAndSize("\n", 1)))
            return NULL;
        sep = newline;
    }
    return reader_until(self, sep, 0, 0);
}

static PyObject *reader_readuntil_ex(ReaderObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"separator", "limit", NULL};
    PyObject *sep;
    Py_ssize_t limit = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|n:readuntil_ex", kwlist, &sep, &limit))
        return NULL;
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "limit must be >= 0");
        return NULL;
    }
    if (limit == 0) {
        if (reader_check(self) < 0)
            return NULL;
        limit = (Py_ssize_t)as_reader_limit(self->r);
    }
    return reader_until(self, sep, (size_t)limit, 0);
}

static PyObject *reader_discard_until(ReaderObject *self, PyObject *sep)
{
    return reader_until(self, sep, 0, 1);
}

static PyObject *reader_anext(ReaderObject *self)
{
    if (reader_check(self) < 0)
        return NULL;
    return reader_wrap(self, as_reader_readline(self->r), ASP_KIND_ANEXT);
}

static PyObject *reader_aiter(ReaderObject *self)
{
    return Py_NewRef((PyObject *)self);
}

static PyObject *reader_feed_data(ReaderObject *self, PyObject *data)
{
    Py_buffer view;
    int err;
    if (reader_check(self) < 0 || PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    err = as_reader_feed_data(self->r, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (err == AS_ESTATE) {
        /* asyncio asserts; the same exception keeps ported tests meaningful. */
        PyErr_SetString(PyExc_AssertionError, "feed_data after feed_eof");
        return NULL;
    }
    if (err < 0)
        return asp_set_error(err, NULL);
    Py_RETURN_NONE;
}

static PyObject *reader_feed_eof(ReaderObject *self, PyObject *unused)
{
    (void)unused;
    if (reader_check(self) < 0)
        return NULL;
    as_reader_feed_eof(self->r);
    Py_RETURN_NONE;
}

static PyObject *reader_at_eof(ReaderObject *self, PyObject *unused)
{
    (void)unused;
    if (!self->r)
        return NULL;
    return PyBool_FromLong(as_reader_at_eof(self->r));
}

static PyObject *reader_exception(ReaderObject *self, PyObject *unused)
{
    const char *msg = NULL;
    int code;
    (void)unused;
    if (!self->r || (code = as_reader_exception(self->r, &msg)) == 0)
        Py_RETURN_NONE;
    {
        PyObject *e = reader_error_for((PyObject *)self, code);
        return e ? e : (PyErr_Occurred() ? NULL : Py_NewRef(Py_None));
    }
}

static PyObject *reader_set_exception(ReaderObject *self, PyObject *exc)
{
    int err;
    if (reader_check(self) < 0)
        return NULL;
    if ((err = as_reader_set_exception(self->r, AS_EUNHANDLED, "exception set on the StreamReader")) < 0)
        return asp_set_error(err, NULL);
    Py_XSETREF(self->exception, Py_NewRef(exc));
    self->exc_code = AS_EUNHANDLED;
    Py_RETURN_NONE;
}

static PyObject *reader_set_transport(ReaderObject *self, PyObject *transport)
{
    if (self->transport && self->transport != Py_None) {
        PyErr_SetString(PyExc_AssertionError, "Transport already set");
        return NULL;
    }
    Py_XSETREF(self->transport, Py_NewRef(transport));
    Py_RETURN_NONE;
}

static PyObject *reader_peek(ReaderObject *self, PyObject *unused)
{
    const unsigned char *data = NULL;
    size_t n;
    (void)unused;
    if (!self->r)
        return NULL;
    n = as_reader_peek(self->r, &data);
    return PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)n);
}

static PyObject *reader_buffered(ReaderObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSize_t(self->r ? as_reader_buffered(self->r) : 0);
}

static PyObject *reader_get_buffer(ReaderObject *self, void *c)
{
    (void)c;
    return reader_peek(self, NULL);
}

static PyObject *reader_get_limit(ReaderObject *self, void *c)
{
    (void)c;
    return PyLong_FromSize_t(self->r ? as_reader_limit(self->r) : 0);
}

static PyObject *reader_get_paused(ReaderObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->r && as_reader_paused(self->r));
}

static PyObject *reader_get_transport(ReaderObject *self, void *c)
{
    (void)c;
    return Py_NewRef(self->transport ? self->transport : Py_None);
}

static PyObject *reader_repr(ReaderObject *self)
{
    size_t n = self->r ? as_reader_buffered(self->r) : 0;
    const char *msg = NULL;
    int code = self->r ? as_reader_exception(self->r, &msg) : 0;
    if (code)
        return PyUnicode_FromFormat("<StreamReader %zu bytes exception=%s>", n, as_err_name(code));
    return PyUnicode_FromFormat("<StreamReader %zu bytes%s>", n,
                                self->r && as_reader_at_eof(self->r) ? " eof" : "");
}

static int reader_traverse(ReaderObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->loop);
    Py_VISIT(self->exception);
    Py_VISIT(self->transport);
    Py_VISIT(self->dict);
    return 0;
}

static int reader_clear(ReaderObject *self)
{
    Py_CLEAR(self->exception);
    Py_CLEAR(self->transport);
    Py_CLEAR(self->dict);
    return 0;
}

static void reader_dealloc(ReaderObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->r)
        as_reader_unref(self->r);
    reader_clear(self);
    Py_CLEAR(self->loop);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef reader_methods[] = {
    {"read", (PyCFunction)(void (*)(void))reader_read, METH_FASTCALL,
     "read(n=-1): up to n bytes (n < 0: until EOF), as asyncio."},
    {"readexactly", (PyCFunction)reader_readexactly, METH_O, "Exactly n bytes, or IncompleteReadError."},
    {"readline", (PyCFunction)reader_readline, METH_NOARGS, "One line, b'\\n' included."},
    {"readuntil", (PyCFunction)(void (*)(void))reader_readuntil, METH_VARARGS | METH_KEYWORDS,
     "readuntil(separator=b'\\n'): up to and including the separator (or the "
     "first of a tuple of separators to end)."},
    {"readline_limit", (PyCFunction)reader_readline_limit, METH_O,
     "Extra: readline() with a limit for this call only."},
    {"readuntil_ex", (PyCFunction)(void (*)(void))reader_readuntil_ex, METH_VARARGS | METH_KEYWORDS,
     "Extra: readuntil(separator, limit) with a limit for this call only; "
     "nothing is consumed on overrun."},
    {"discard_until", (PyCFunction)reader_discard_until, METH_O,
     "Extra: drop bytes up to and including the separator; returns "
     "(bytes dropped, index of the separator)."},
    {"peek", (PyCFunction)reader_peek, METH_NOARGS, "Extra: the buffered bytes, not consumed."},
    {"buffered", (PyCFunction)reader_buffered, METH_NOARGS, "Extra: number of buffered bytes."},
    {"feed_data", (PyCFunction)reader_feed_data, METH_O, NULL},
    {"feed_eof", (PyCFunction)reader_feed_eof, METH_NOARGS, NULL},
    {"at_eof", (PyCFunction)reader_at_eof, METH_NOARGS, "True if EOF was fed and the buffer is empty."},
    {"exception", (PyCFunction)reader_exception, METH_NOARGS, NULL},
    {"set_exception", (PyCFunction)reader_set_exception, METH_O, NULL},
    {"set_transport", (PyCFunction)reader_set_transport, METH_O, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef reader_getset[] = {
    {"_buffer", (getter)reader_get_buffer, NULL, "The buffered bytes (a copy).", NULL},
    {"_limit", (getter)reader_get_limit, NULL, NULL, NULL},
    {"_paused", (getter)reader_get_paused, NULL, NULL, NULL},
    {"_transport", (getter)reader_get_transport, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyAsyncMethods reader_as_async = {0, (unaryfunc)reader_aiter, (unaryfunc)reader_anext, 0};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncstreams._core.StreamReader",
    .tp_basicsize = sizeof(ReaderObject),
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_as_async = &reader_as_async,
    .tp_repr = (reprfunc)reader_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "StreamReader(limit=65536, loop=None): asyncio's StreamReader on the C reader.",
    .tp_traverse = (traverseproc)reader_traverse,
    .tp_clear = (inquiry)reader_clear,
    .tp_weaklistoffset = offsetof(ReaderObject, weakreflist),
    .tp_methods = reader_methods,
    .tp_getset = reader_getset,
    .tp_dictoffset = offsetof(ReaderObject, dict),
    .tp_init = (initproc)reader_init,
    .tp_new = PyType_GenericNew,
};
