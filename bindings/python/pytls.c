/*
 * pytls.c - TLS for the binding: a TLS engine (tls.h's engine interface)
 * over Python's own ssl.SSLObject between two ssl.MemoryBIOs, what
 * asyncio's sslproto.py and uvloop use.  The C library's state machine
 * (tls.c) drives it exactly as it drives OpenSSL, so a user's
 * ssl.SSLContext (its verify mode, CAs, certificates, ALPN, ciphers) is
 * honoured because it is the context doing the work.
 *
 * Each engine call is one or two Python calls:
 *   feed         incoming.write(data)
 *   output       outgoing.read(), kept until output_done
 *   handshake    sslobj.do_handshake()
 *   read         sslobj.read(cap, buffer): 0 bytes is the peer's close_notify
 *   write        sslobj.write(data)
 *   shutdown     sslobj.unwrap()
 * ssl.SSLWantReadError and SSLWantWriteError are AS_TLS_WANT.  Any other
 * exception is an error: AS_ECERT for ssl.SSLCertVerificationError,
 * AS_ETLS otherwise, and the exception object itself is kept on the
 * connection's StreamReader under that code (pyreader.c's sticky
 * exception), so every read, drain and the handshake's await raise that
 * very object, verify_message and all.
 *
 * Threads: the loop calls the engine on its thread with the interpreter
 * lock held (pyrt.h); each call still takes it with PyGILState_Ensure(),
 * which costs nothing then, because destroy may also run from a release
 * hook at any point where C lets go of the transport.
 *
 * Lifetimes: the engine belongs to the TLS transport (tls.h rule 3) and
 * holds strong references to the SSLObject, both BIOs and the
 * StreamReader; the transport's destroy drops them.
 */

static PyObject *pytls_WantRead, *pytls_WantWrite, *pytls_ZeroReturn, *pytls_CertError;

typedef struct pytls_engine {
    PyObject *sslobj;    /* ssl.SSLObject */
    PyObject *incoming;  /* ssl.MemoryBIO: ciphertext from the peer */
    PyObject *outgoing;  /* ssl.MemoryBIO: ciphertext to send */
    PyObject *reader;    /* ReaderObject that keeps a failure's exception */
    PyObject *out;       /* bytes output() showed, until output_done() */
    char msg[512];       /* the last error's message */
} pytls_engine;

/* The classes of the ssl module the engine tells apart, looked up once. */
static int pytls_init_classes(void)
{
    PyObject *ssl;
    if (pytls_CertError)
        return 0;
    if (!(ssl = PyImport_ImportModule("ssl")))
        return -1;
    pytls_WantRead = PyObject_GetAttrString(ssl, "SSLWantReadError");
    pytls_WantWrite = PyObject_GetAttrString(ssl, "SSLWantWriteError");
    pytls_ZeroReturn = PyObject_GetAttrString(ssl, "SSLZeroReturnError");
    pytls_CertError = PyObject_GetAttrString(ssl, "SSLCertVerificationError");
    Py_DECREF(ssl);
    if (!pytls_WantRead || !pytls_WantWrite || !pytls_ZeroReturn || !pytls_CertError) {
        Py_CLEAR(pytls_WantRead);
        Py_CLEAR(pytls_WantWrite);
        Py_CLEAR(pytls_ZeroReturn);
        Py_CLEAR(pytls_CertError);
        return -1;
    }
    return 0;
}

/* A Python call failed: WANT for the ssl module's "want" errors, CLOSED
 * for a clean close_notify when closed_ok, else an error code with the
 * exception kept on the reader. */
static int pytls_failed(pytls_engine *e, int closed_ok)
{
    PyObject *exc, *text;
    ReaderObject *r = (ReaderObject *)e->reader;
    int code;

    if (PyErr_ExceptionMatches(pytls_WantRead) || PyErr_ExceptionMatches(pytls_WantWrite)) {
        PyErr_Clear();
        return AS_TLS_WANT;
    }
    if (closed_ok && PyErr_ExceptionMatches(pytls_ZeroReturn)) {
        PyErr_Clear();
        return AS_TLS_CLOSED;
    }
    code = PyErr_ExceptionMatches(pytls_CertError) ? AS_ECERT : AS_ETLS;
    if (!(exc = asp_fetch_exc()))
        return code;
    text = PyObject_Str(exc);
    snprintf(e->msg, sizeof e->msg, "%s", text ? PyUnicode_AsUTF8(text) : "TLS error");
    if (!text || !PyUnicode_AsUTF8(text))
        PyErr_Clear();
    Py_XDECREF(text);
    /* The first failure is the one that counts: it is what the transport
     * stores on the reader (a later one finds the reader failed already). */
    if (r->r && as_reader_exception(r->r, NULL) == 0) {
        Py_XSETREF(r->exception, exc);
        r->exc_code = code;
    } else {
        Py_DECREF(exc);
    }
    return code;
}

static int pytls_feed(void *p, const void *data, size_t len)
{
    pytls_engine *e = p;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *view = PyMemoryView_FromMemory((char *)data, (Py_ssize_t)len, PyBUF_READ);
    PyObject *r = view ? PyObject_CallMethod(e->incoming, "write", "O", view) : NULL;
    int rc = r ? 0 : -ENOMEM;
    if (!r)
        PyErr_Clear();
    Py_XDECREF(r);
    Py_XDECREF(view);
    PyGILState_Release(g);
    return rc;
}

static size_t pytls_output(void *p, const void **data)
{
    pytls_engine *e = p;
    PyGILState_STATE g = PyGILState_Ensure();
    size_t n = 0;
    if (!e->out && !(e->out = PyObject_CallMethod(e->outgoing, "read", NULL)))
        PyErr_Clear();
    if (e->out && PyBytes_Check(e->out)) {
        *data = PyBytes_AS_STRING(e->out);
        n = (size_t)PyBytes_GET_SIZE(e->out);
    }
    if (n == 0)
        Py_CLEAR(e->out);
    PyGILState_Release(g);
    return n;
}

static void pytls_output_done(void *p)
{
    pytls_engine *e = p;
    PyGILState_STATE g = PyGILState_Ensure();
    Py_CLEAR(e->out);
    PyGILState_Release(g);
}

static int pytls_handshake(void *p)
{
    pytls_engine *e = p;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallMethod(e->sslobj, "do_handshake", NULL);
    int rc = r ? AS_TLS_OK : pytls_failed(e, 0);
    Py_XDECREF(r);
    PyGILState_Release(g);
    return rc;
}

static int pytls_read(void *p, void *buf, size_t cap, size_t *got)
{
    pytls_engine *e = p;
    PyGILState_STATE g = PyGILState_Ensure();
    Py_ssize_t n = 0;
    int rc;
    PyObject *view = PyMemoryView_FromMemory(buf, (Py_ssize_t)cap, PyBUF_WRITE);
    PyObject *r = view ? PyObject_CallMethod(e->sslobj, "read", "nO", (Py_ssize_t)cap, view)
                       : NULL;
    *got = 0;
    if (!r)
        rc = pytls_failed(e, 1);
    else if ((n = PyLong_AsSsize_t(r)) < 0)
        rc = pytls_failed(e, 0);
    else if (n == 0)
        rc = AS_TLS_CLOSED; /* SSLObject.read's answer to close_notify */
    else {
        *got = (size_t)n;
        rc = AS_TLS_OK;
    }
    Py_XDECREF(r);
    Py_XDECREF(view);
    PyGILState_Release(g);
    return rc;
}

static int pytls_write(void *p, const void *buf, size_t len, size_t *done)
{
    pytls_engine *e = p;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *view = PyMemoryView_FromMemory((char *)buf, (Py_ssize_t)len, PyBUF_READ);
    PyObject *r = view ? PyObject_CallMethod(e->sslobj, "write", "O", view) : NULL;
    Py_ssize_t n;
    int rc;
    *done = 0;
    if (!r)
        rc = pytls_failed(e, 0);
    else if ((n = PyLong_AsSsize_t(r)) < 0)
        rc = pytls_failed(e, 0);
    else {
        *done = (size_t)n;
        rc = *done == len ? AS_TLS_OK : AS_TLS_WANT;
    }
    Py_XDECREF(r);
    Py_XDECREF(view);
    PyGILState_Release(g);
    return rc;
}

static int pytls_shutdown(void *p)
{
    pytls_engine *e = p;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallMethod(e->sslobj, "unwrap", NULL);
    int rc = r ? AS_TLS_OK : pytls_failed(e, 0);
    Py_XDECREF(r);
    PyGILState_Release(g);
    return rc;
}

static const char *pytls_error_message(void *p)
{
    return ((pytls_engine *)p)->msg;
}

/* The Python keys are answered in Python (streams.py) from the SSLObject
 * itself; C sees only the object. */
static int pytls_extra_info(void *p, const char *key, as_extra_info *out)
{
    pytls_engine *e = p;
    if (strcmp(key, "ssl_object") == 0) {
        out->kind = AS_EXTRA_POINTER;
        out->u.pointer = e->sslobj;
        return 0;
    }
    return AS_ENOKEY;
}

static void pytls_destroy(void *p)
{
    pytls_engine *e = p;
    PyGILState_STATE g = PyGILState_Ensure();
    Py_XDECREF(e->sslobj);
    Py_XDECREF(e->incoming);
    Py_XDECREF(e->outgoing);
    Py_XDECREF(e->reader);
    Py_XDECREF(e->out);
    PyMem_RawFree(e);
    PyGILState_Release(g);
}

static const as_tls_engine_ops pytls_ops = {
    .name = "python-ssl",
    .feed = pytls_feed,
    .output = pytls_output,
    .output_done = pytls_output_done,
    .handshake = pytls_handshake,
    .read = pytls_read,
    .write = pytls_write,
    .shutdown = pytls_shutdown,
    .error_message = pytls_error_message,
    .extra_info = pytls_extra_info,
    .destroy = pytls_destroy,
};

/* _start_tls(writer, sslobj, incoming, outgoing, handshake_timeout,
 *            shutdown_timeout): upgrade the writer's connection with an
 * SSLObject the caller made with ctx.wrap_bio(incoming, outgoing, ...).
 * Returns the awaitable handshake; its failure raises the engine's own
 * exception (kept on the reader). */
static PyObject *asp_start_tls(PyObject *mod, PyObject *args)
{
    PyObject *writer, *sslobj, *incoming, *outgoing;
    WriterObject *w;
    as_tls_options o;
    pytls_engine *e;
    (void)mod;
    memset(&o, 0, sizeof o);
    if (!PyArg_ParseTuple(args, "O!OOOdd:_start_tls", &WriterType, &writer, &sslobj, &incoming,
                          &outgoing, &o.handshake_timeout, &o.shutdown_timeout))
        return NULL;
    w = (WriterObject *)writer;
    if (writer_check(w) < 0 || pytls_init_classes() < 0)
        return NULL;
    if (!w->reader || !PyObject_TypeCheck(w->reader, &ReaderType)) {
        PyErr_SetString(PyExc_RuntimeError, "start_tls needs the writer's StreamReader");
        return NULL;
    }
    if (!(e = PyMem_RawCalloc(1, sizeof *e)))
        return PyErr_NoMemory();
    e->sslobj = Py_NewRef(sslobj);
    e->incoming = Py_NewRef(incoming);
    e->outgoing = Py_NewRef(outgoing);
    e->reader = Py_NewRef(w->reader);
    /* The writer's own future wrapper: the reader as owner, so the
     * handshake's failure raises the exception the engine kept there. */
    return writer_future(w, as_writer_start_tls_engine(w->w, &pytls_ops, e, &o));
}
