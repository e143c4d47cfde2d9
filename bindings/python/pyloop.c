/*
 * pyloop.c - the Loop type, the callback thunk, the interpreter lock around
 * select(), and the mapping from C error codes to Python exceptions.
 * See pyrt.h for the picture and the lifetimes.
 */

/* ------------------------------------------------------------ errors */

/* "[Errno N] text" -> text, with N in *num; NULL if message is not so. */
static const char *asp_split_errno(const char *message, int *num)
{
    char *end;
    long n;
    if (!message || strncmp(message, "[Errno ", 7) != 0)
        return NULL;
    n = strtol(message + 7, &end, 10);
    if (end == message + 7 || end[0] != ']' || end[1] != ' ')
        return NULL;
    *num = (int)n;
    return end + 2;
}

/* Build the Python exception for a C error code, as asyncio would raise it.
 * kind refines it: a readline limit overrun is ValueError in asyncio. */
static PyObject *asp_error_from_code(int code, const char *message,
                                     const void *detail, int kind)
{
    if (!message)
        message = as_strerror(code);
    switch (code) {
    case AS_ECANCELLED:
        return PyObject_CallNoArgs(asp_CancelledError);
    case AS_ETIMEOUT:
        return PyObject_CallNoArgs(PyExc_TimeoutError);
    case AS_EINCOMPLETE: {
        const as_incomplete_read *ir = detail;
        PyObject *partial, *expected, *exc;
        partial = ir && ir->partial
                      ? PyBytes_FromStringAndSize((const char *)ir->partial->data,
                                                  (Py_ssize_t)ir->partial->len)
                      : PyBytes_FromStringAndSize(NULL, 0);
        if (!partial)
            return NULL;
        expected = ir && ir->expected >= 0 ? PyLong_FromLongLong(ir->expected)
                                           : Py_NewRef(Py_None);
        if (!expected) {
            Py_DECREF(partial);
            return NULL;
        }
        exc = PyObject_CallFunctionObjArgs(asp_IncompleteReadError, partial,
                                           expected, NULL);
        Py_DECREF(partial);
        Py_DECREF(expected);
        if (exc && kind == ASP_KIND_DISCARD) {
            /* discard_until's EOF message says how much it dropped. */
            PyObject *args = Py_BuildValue("(s)", message);
            if (!args || PyObject_SetAttrString(exc, "args", args) < 0)
                Py_CLEAR(exc);
            Py_XDECREF(args);
        }
        return exc;
    }
    case AS_ELIMIT: {
        const as_limit_overrun *lo = detail;
        if (kind == ASP_KIND_LINE || kind == ASP_KIND_ANEXT)
            return PyObject_CallFunction(PyExc_ValueError, "s", message);
        return PyObject_CallFunction(asp_LimitOverrunError, "sn", message,
                                     (Py_ssize_t)(lo ? lo->consumed : 0));
    }
    case AS_EINVAL:
    case AS_ENOTPIPE: /* CPython: ValueError("Pipe transport is ...") */
        return PyObject_CallFunction(PyExc_ValueError, "s", message);
    case AS_EBUSY:
    case AS_ESTATE:
    case AS_ECLOSED:
        return PyObject_CallFunction(PyExc_RuntimeError, "s", message);
    case AS_ECONNLOST:
        return PyObject_CallFunction(PyExc_ConnectionResetError, "s", message);
    case AS_EFDSETSIZE:
        return PyObject_CallFunction(PyExc_OSError, "is", EMFILE, message);
    case AS_ENOKEY:
        return PyObject_CallFunction(PyExc_KeyError, "s", message);
    case AS_EPORT:
        /* What socket.connect() / bind() raise for such a port. */
        return PyObject_CallFunction(PyExc_OverflowError, "s", message);
    case AS_ERESOLVE: {
        /* socket.gaierror(EAI code, text), as socket.getaddrinfo() raises. */
        PyObject *mod = PyImport_ImportModule("socket"), *cls, *exc = NULL;
        int num;
        const char *text = asp_split_errno(message, &num);
        if (!mod)
            return NULL;
        cls = PyObject_GetAttrString(mod, "gaierror");
        Py_DECREF(mod);
        if (cls)
            exc = text ? PyObject_CallFunction(cls, "is", num, text)
                       : PyObject_CallFunction(cls, "s", message);
        Py_XDECREF(cls);
        return exc;
    }
    default:
        if (code < 0 && !as_err_is_lib(code)) {
            /* OSError(errno, text) picks the subclass itself
             * (ConnectionResetError for ECONNRESET...).  The text is libc's,
             * what Python's own socket calls raise, unless the C message
             * says more in CPython's words ("[Errno 111] Connect call
             * failed ('127.0.0.1', 1)"): then that text. */
            int num;
            const char *text = asp_split_errno(message, &num);
            if (text && num == -code)
                return PyObject_CallFunction(PyExc_OSError, "is", -code, text);
            /* An abort in asyncio's own words and nothing else, as its SSL
             * handshake timeout raises ConnectionAbortedError(msg). */
            if (code == -ECONNABORTED && strcmp(message, strerror(ECONNABORTED)) != 0 &&
                strcmp(message, as_strerror(code)) != 0)
                return PyObject_CallFunction(PyExc_ConnectionAbortedError, "s", message);
            return PyObject_CallFunction(PyExc_OSError, "is", -code, strerror(-code));
        }
        return PyObject_CallFunction(PyExc_Exception, "s", message);
    }
}

/* Raise the exception for code; returns NULL for `return asp_set_error()`. */
static PyObject *asp_set_error(int code, const char *message)
{
    PyObject *exc = asp_error_from_code(code, message, NULL, ASP_KIND_NONE);
    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* ------------------------------------------------------------ exceptions */

/* The current exception as one object (traceback attached), cleared.
 * (PyErr_GetRaisedException() does this from 3.12 on.) */
static PyObject *asp_fetch_exc(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* Raise exc (a reference is stolen). */
static void asp_restore_exc(PyObject *exc)
{
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
}

/* ------------------------------------------------------------ thunk */

static LoopObject *asp_running_loop(void)
{
    return PyThread_tss_get(&asp_running_key);
}

/* A `loop=` argument: None means the running loop (raising RuntimeError
 * with no_loop_message if there is none, as asyncio's constructors do, each
 * with its own text); anything else must be one of our Loops.  Returns a
 * borrowed reference, or NULL with an exception set. */
static LoopObject *asp_loop_arg(PyObject *loopobj, const char *no_loop_message)
{
    LoopObject *loop;
    if (loopobj == Py_None) {
        if (!(loop = asp_running_loop()))
            PyErr_SetString(PyExc_RuntimeError, no_loop_message);
        return loop;
    }
    if (!PyObject_TypeCheck(loopobj, &LoopType)) {
        PyErr_SetString(PyExc_TypeError, "loop must be an asyncstreams Loop");
        return NULL;
    }
    return (LoopObject *)loopobj;
}

/* A Python callback raised.  Hand the exception to whoever runs the loop:
 * it is stored on the Loop and the loop is stopped, so run_until_complete()
 * returns and raises it.  A second one before that happens, or one raised
 * with no loop running (a destroy hook at close), can only be reported. */
static void asp_callback_error(void)
{
    LoopObject *self = asp_running_loop();
    PyObject *exc = asp_fetch_exc();

    if (self && self->loop && !self->pending_exc) {
        self->pending_exc = exc;
        as_loop_stop(self->loop);
        return;
    }
    asp_restore_exc(exc);
    PyErr_WriteUnraisable(self ? (PyObject *)self : Py_None);
}

/* The loop's callback for a Python callable: userdata owns a reference to
 * the callable (dropped by asp_decref, which the loop calls exactly once).
 * The interpreter lock is taken here rather than assumed, so a C caller
 * running the loop from a thread that does not hold it stays correct; when
 * it is already held (the usual case) PyGILState_Ensure() only counts. */
static void asp_call_thunk(void *userdata)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallNoArgs((PyObject *)userdata);
    if (r)
        Py_DECREF(r);
    else
        asp_callback_error();
    PyGILState_Release(g);
}

/* A signal handler (as_loop_add_signal_handler): asyncio's callback takes
 * no signal number. */
static void asp_signal_thunk(int signo, void *userdata)
{
    (void)signo;
    asp_call_thunk(userdata);
}

static void asp_decref(void *userdata)
{
    PyGILState_STATE g = PyGILState_Ensure();
    Py_DECREF((PyObject *)userdata);
    PyGILState_Release(g);
}

/* ------------------------------------------------------------ poll hooks */

/* Around select(): give up the interpreter lock so other Python threads
 * run while this one sleeps, as the select module does.  After: take it
 * back, and let a pending signal (Ctrl-C) interrupt the loop now rather
 * than whenever the next Python callback happens to run. */
/* listing: poll-hooks */
static void asp_before_poll(void *userdata)
{
    LoopObject *self = userdata;
    self->tstate = PyEval_SaveThread();
}

static void asp_after_poll(void *userdata)
{
    LoopObject *self = userdata;
    PyEval_RestoreThread(self->tstate);
    self->tstate = NULL;
    if (PyErr_CheckSignals() < 0)
        asp_callback_error();
}
/* end listing */

/* ------------------------------------------------------------ Loop */

/* ValueError for a backend name this build lacks, naming those it has. */
static void asp_unknown_backend(const char *name)
{
    const char *env = getenv("ASYNCSTREAMS_BACKEND"), *b;
    char have[128] = "";
    size_t len = 0;
    int i;

    for (i = 0; (b = as_loop_backend_at(i)) != NULL && len < sizeof have; i++)
        len += (size_t)snprintf(have + len, sizeof have - len, "'%s', ", b);
    if (name)
        PyErr_Format(PyExc_ValueError, "unknown event loop backend '%s' "
                     "(this build has %sor 'best')", name, have);
    else
        PyErr_Format(PyExc_ValueError, "ASYNCSTREAMS_BACKEND names an unknown "
                     "event loop backend '%s' (this build has %sor 'best')",
                     env ? env : "", have);
}

static int loop_init(LoopObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"backend", NULL};
    const char *backend = NULL;
    as_loop *loop = NULL;
    int err;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|z:Loop", kwlist, &backend))
        return -1;
    if (self->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Loop already initialised");
        return -1;
    }
    if ((err = as_loop_new_with_backend(backend, &loop)) < 0) {
        if (err == AS_EINVAL)
            asp_unknown_backend(backend);
        else
            asp_set_error(err, NULL);
        return -1;
    }
    /* The hooks' userdata is borrowed: the Loop outlives its as_loop's
     * running life, and close() drops the hooks. */
    if ((err = as_loop_set_poll_hooks(loop, asp_before_poll, asp_after_poll,
                                      self, NULL)) < 0) {
        as_loop_close(loop);
        asp_set_error(err, NULL);
        return -1;
    }
    self->loop = loop;
    return 0;
}

static int loop_check(LoopObject *self)
{
    if (!self->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

/* Close: as_loop_close() drops what is still scheduled (their destroy hooks
 * release the Python references).  Objects still alive (futures, readers)
 * keep the C loop's memory until they go. */
static PyObject *loop_close(LoopObject *self, PyObject *unused)
{
    (void)unused;
    if (self->loop) {
        int err;
        if (as_loop_is_running(self->loop)) {
            PyErr_SetString(PyExc_RuntimeError, "Cannot close a running event loop");
            return NULL;
        }
        err = as_loop_close(self->loop);
        self->loop = NULL;
        if (err < 0)
            return asp_set_error(err, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *loop_is_closed(LoopObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->loop == NULL);
}

static PyObject *loop_is_running(LoopObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->loop && as_loop_is_running(self->loop));
}

static PyObject *loop_time(LoopObject *self, PyObject *unused)
{
    (void)unused;
    if (loop_check(self) < 0)
        return NULL;
    return PyFloat_FromDouble(as_loop_time(self->loop));
}

static PyObject *loop_stop(LoopObject *self, PyObject *unused)
{
    (void)unused;
    if (self->loop)
        as_loop_stop(self->loop);
    Py_RETURN_NONE;
}

static PyObject *loop_create_future(LoopObject *self, PyObject *unused)
{
    as_future *f;
    (void)unused;
    if (loop_check(self) < 0)
        return NULL;
    if (as_future_new(self->loop, &f) < 0) /* the loop is open: -ENOMEM */
        return PyErr_NoMemory();
    return (PyObject *)asp_future_wrap(self, f, ASP_KIND_PY, NULL);
}

static PyObject *task_new_on(LoopObject *loop, PyObject *coro, PyObject *name,
                             PyObject *context);

static PyObject *loop_create_task(LoopObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"coro", "name", "context", NULL};
    PyObject *coro, *name = Py_None, *context = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OO:create_task", kwlist,
                                     &coro, &name, &context))
        return NULL;
    if (loop_check(self) < 0)
        return NULL;
    return task_new_on(self, coro, name, context);
}

/* Make `self` the running loop of this thread for the duration of a run. */
static int loop_enter(LoopObject *self, LoopObject **prev)
{
    *prev = asp_running_loop();
    if (*prev && *prev != self) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot run the event loop while another loop is running");
        return -1;
    }
    if (as_loop_is_running(self->loop)) {
        PyErr_SetString(PyExc_RuntimeError, "This event loop is already running");
        return -1;
    }
    if (PyThread_tss_set(&asp_running_key, self) != 0) {
        PyErr_NoMemory();
        return -1;
    }
    self->runs++;
    return 0;
}

static void loop_leave(LoopObject *prev)
{
    (void)PyThread_tss_set(&asp_running_key, prev);
}

/* After a run: raise what a callback raised, if anything. */
static int loop_raise_pending(LoopObject *self)
{
    PyObject *exc = self->pending_exc;
    if (!exc)
        return 0;
    self->pending_exc = NULL;
    asp_restore_exc(exc);
    return -1;
}

static PyObject *future_result_impl(FutureObject *self);

/* run_until_complete()'s done callback: stop the run it was added for, and
 * only that one.  The future may complete in the very turn in which a
 * callback's exception stops the loop (a main task raising
 * KeyboardInterrupt does both at once): that run ends first, and this
 * callback, already queued, would stop the next run at its first turn, so
 * run()'s cleanup would end in "Event loop stopped before Future
 * completed."  asyncio's callback skips KeyboardInterrupt and SystemExit
 * for the same reason.  userdata is the run's number; a callback can only
 * run inside a run of its Loop, which is then this thread's running loop. */
static void asp_run_done(as_future *f, void *userdata)
{
    LoopObject *self = asp_running_loop();
    if (self && self->loop == as_future_loop(f) && self->runs == (uintptr_t)userdata)
        as_loop_stop(self->loop);
}

/* run_until_complete(future_or_coroutine): as asyncio's, with one
 * addition: an exception raised by any callback run meanwhile stops the
 * loop and is raised here. */
static PyObject *loop_run_until_complete(LoopObject *self, PyObject *arg)
{
    FutureObject *fut;
    LoopObject *prev;
    void *run;
    int err;

    if (loop_check(self) < 0)
        return NULL;
    if (PyObject_TypeCheck(arg, &FutureType)) {
        fut = (FutureObject *)Py_NewRef(arg);
        if (fut->loop != self) {
            Py_DECREF(fut);
            PyErr_SetString(PyExc_ValueError,
                            "The future belongs to a different loop than the one "
                            "specified as the loop argument");
            return NULL;
        }
    } else {
        fut = (FutureObject *)task_new_on(self, arg, Py_None, Py_None);
        if (!fut)
            return NULL;
    }
    if (loop_enter(self, &prev) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    /* As asyncio: the done callback stops the loop, even when the future
     * is done already (then the loop runs one turn). */
    run = (void *)self->runs;
    err = as_future_add_done_callback(fut->fut, asp_run_done, run, NULL);
    if (err == 0) {
        err = as_loop_run_forever(self->loop);
        (void)as_future_remove_done_callback(fut->fut, asp_run_done, run);
        /* Its error is ours to raise (below), not the C future's to
         * report as never retrieved, even when a callback's comes first. */
        if (err == 0 && as_future_done(fut->fut))
            (void)as_future_error(fut->fut);
    }
    loop_leave(prev);
    if (loop_raise_pending(self) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    if (err < 0) {
        Py_DECREF(fut);
        return asp_set_error(err, NULL);
    }
    if (!as_future_done(fut->fut)) {
        Py_DECREF(fut);
        PyErr_SetString(PyExc_RuntimeError, "Event loop stopped before Future completed.");
        return NULL;
    }
    {
        PyObject *r = future_result_impl(fut);
        Py_DECREF(fut);
        return r;
    }
}

static PyObject *loop_run_forever(LoopObject *self, PyObject *unused)
{
    LoopObject *prev;
    int err;
    (void)unused;
    if (loop_check(self) < 0 || loop_enter(self, &prev) < 0)
        return NULL;
    err = as_loop_run_forever(self->loop);
    loop_leave(prev);
    if (loop_raise_pending(self) < 0)
        return NULL;
    if (err < 0)
        return asp_set_error(err, NULL);
    Py_RETURN_NONE;
}

/* run_once(): one turn; for tests and for embedding in another loop. */
static PyObject *loop_run_once(LoopObject *self, PyObject *unused)
{
    LoopObject *prev;
    int err;
    (void)unused;
    if (loop_check(self) < 0 || loop_enter(self, &prev) < 0)
        return NULL;
    err = as_loop_run_once(self->loop);
    loop_leave(prev);
    if (loop_raise_pending(self) < 0)
        return NULL;
    if (err < 0)
        return asp_set_error(err, NULL);
    Py_RETURN_NONE;
}

static PyObject *loop_all_tasks(LoopObject *self, PyObject *unused)
{
    PyObject *set = PySet_New(NULL);
    TaskObject *t;
    (void)unused;
    if (!set)
        return NULL;
    for (t = self->tasks; t; t = t->next)
        if (PySet_Add(set, (PyObject *)t) < 0) {
            Py_DECREF(set);
            return NULL;
        }
    return set;
}

static PyObject *loop_current_task(LoopObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self->current ? (PyObject *)self->current : Py_None);
}

/* Counts for leak tests: (pending callbacks/timers/watchers, C objects). */
static PyObject *loop_counts(LoopObject *self, PyObject *unused)
{
    (void)unused;
    if (loop_check(self) < 0)
        return NULL;
    return Py_BuildValue("nn", (Py_ssize_t)as_loop_pending(self->loop),
                         (Py_ssize_t)as_loop_objects(self->loop));
}

static PyObject *loop_backend(LoopObject *self, void *closure)
{
    (void)closure;
    if (loop_check(self) < 0)
        return NULL;
    return PyUnicode_FromString(as_loop_backend_name(self->loop));
}

static int loop_traverse(LoopObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->pending_exc);
    Py_VISIT(self->dict);
    return 0;
}

static int loop_clear(LoopObject *self)
{
    Py_CLEAR(self->pending_exc);
    Py_CLEAR(self->dict);
    return 0;
}

static void loop_dealloc(LoopObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->loop && !as_loop_is_running(self->loop)) {
        as_loop_close(self->loop);
        self->loop = NULL;
    }
    loop_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef loop_methods[] = {
    {"close", (PyCFunction)loop_close, METH_NOARGS, "Close the loop (asyncio's close())."},
    {"is_closed", (PyCFunction)loop_is_closed, METH_NOARGS, NULL},
    {"is_running", (PyCFunction)loop_is_running, METH_NOARGS, NULL},
    {"time", (PyCFunction)loop_time, METH_NOARGS, "Seconds on the loop's monotonic clock."},
    {"stop", (PyCFunction)loop_stop, METH_NOARGS, NULL},
    {"create_future", (PyCFunction)loop_create_future, METH_NOARGS, NULL},
    {"create_task", (PyCFunction)(void (*)(void))loop_create_task,
     METH_VARARGS | METH_KEYWORDS, "Wrap a coroutine in a Task run by this loop."},
    {"run_until_complete", (PyCFunction)loop_run_until_complete, METH_O,
     "Run until the future (or coroutine, wrapped in a Task) is done; return "
     "its result.  An exception raised by a callback meanwhile is raised here."},
    {"run_forever", (PyCFunction)loop_run_forever, METH_NOARGS, NULL},
    {"run_once", (PyCFunction)loop_run_once, METH_NOARGS, "Run one turn of the loop."},
    {"_all_tasks", (PyCFunction)loop_all_tasks, METH_NOARGS, NULL},
    {"_current_task", (PyCFunction)loop_current_task, METH_NOARGS, NULL},
    {"_counts", (PyCFunction)loop_counts, METH_NOARGS,
     "(pending callbacks/timers/watchers, live C objects) on the C loop."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef loop_getset[] = {
    {"backend", (getter)loop_backend, NULL, "The C loop's backend name.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject LoopType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncstreams._core.Loop",
    .tp_basicsize = sizeof(LoopObject),
    .tp_dealloc = (destructor)loop_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C event loop (as_loop), run with the interpreter lock released in select().",
    .tp_traverse = (traverseproc)loop_traverse,
    .tp_clear = (inquiry)loop_clear,
    .tp_weaklistoffset = offsetof(LoopObject, weakreflist),
    .tp_methods = loop_methods,
    .tp_getset = loop_getset,
    .tp_dictoffset = offsetof(LoopObject, dict),
    .tp_init = (initproc)loop_init,
    .tp_new = PyType_GenericNew,
};

/* The Loop a C future belongs to: the running one (the usual case). */
static LoopObject *asp_loop_of_future(as_future *f)
{
    LoopObject *self = asp_running_loop();
    if (self && self->loop == as_future_loop(f))
        return self;
    return NULL;
}

/* Module functions. */
static PyObject *asp_get_running_loop(PyObject *mod, PyObject *unused)
{
    LoopObject *self = asp_running_loop();
    (void)mod;
    (void)unused;
    if (!self) {
        PyErr_SetString(PyExc_RuntimeError, "no running event loop");
        return NULL;
    }
    return Py_NewRef((PyObject *)self);
}

static PyObject *asp_get_running_loop_or_none(PyObject *mod, PyObject *unused)
{
    LoopObject *self = asp_running_loop();
    (void)mod;
    (void)unused;
    return Py_NewRef(self ? (PyObject *)self : Py_None);
}
