/*
 * pyfuture.c - Future: a C future that `await` understands; Task: a Python
 * coroutine stepped by the C loop.
 *
 * How `await fut` works, in three objects:
 *
 *   coroutine --await--> Future.__await__ returns the Future itself, an
 *                        iterator whose send (am_send) either
 *                          - returns the result at once if the C future is
 *                            done (no yield: a ready read costs no loop turn),
 *                          - or yields the Future itself, marked "blocking";
 *   Task      <--yield-- receives it, adds a C done callback on the
 *                        as_future (task_wakeup) and returns to the loop;
 *   loop      --turn---> the as_future completes; its done callback runs
 *                        task_wakeup, which sends None into the coroutine;
 *                        the coroutine resumes inside `await`, whose am_send
 *                        now finds the future done and returns its result
 *                        or raises its exception.
 *
 * So the C future's done callback *is* the Task's wake-up: no Python object
 * is allocated per await beyond the Future itself.  am_send (Python 3.10+)
 * also means a ready result comes back without a StopIteration exception.
 */

static PyObject *asp_str_throw, *asp_str_run;
static unsigned long long asp_task_counter;

/* ------------------------------------------------------------ Future core */

static FutureObject *future_alloc(PyTypeObject *type, LoopObject *loop,
                                  as_future *f, int kind, PyObject *owner)
{
    FutureObject *self = (FutureObject *)type->tp_alloc(type, 0);
    if (!self) {
        as_future_unref(f);
        return NULL;
    }
    self->fut = f;
    self->loop = (LoopObject *)Py_NewRef((PyObject *)loop);
    self->kind = (unsigned char)kind;
    self->owner = Py_XNewRef(owner);
    return self;
}

/* Wrap a C future (stealing its reference) in an awaitable Future. */
static FutureObject *asp_future_wrap(LoopObject *loop, as_future *f, int kind,
                                     PyObject *owner)
{
    if (!f)
        return (FutureObject *)PyErr_NoMemory();
    if (!loop && !(loop = asp_loop_of_future(f))) {
        as_future_unref(f);
        PyErr_SetString(PyExc_RuntimeError,
                        "a C future can only be wrapped while its loop is running");
        return NULL;
    }
    return future_alloc(&FutureType, loop, f, kind, owner);
}

static PyObject *asp_make_cancelled(PyObject *msg)
{
    if (msg && msg != Py_None)
        return PyObject_CallOneArg(asp_CancelledError, msg);
    return PyObject_CallNoArgs(asp_CancelledError);
}

static void task_unlink(TaskObject *t);

static int future_is_task(FutureObject *self)
{
    return Py_IS_TYPE(self, &TaskType);
}

static void future_on_done(FutureObject *self)
{
    if (future_is_task(self))
        task_unlink((TaskObject *)self);
}

static int future_set_result_impl(FutureObject *self, PyObject *value)
{
    int err;
    if (as_future_done(self->fut)) {
        PyErr_SetString(asp_InvalidStateError, "invalid state");
        return -1;
    }
    Py_XSETREF(self->result, Py_NewRef(value));
    if ((err = as_future_set_result(self->fut, NULL, NULL)) < 0) {
        Py_CLEAR(self->result);
        asp_set_error(err, NULL);
        return -1;
    }
    future_on_done(self);
    return 0;
}

/* exc is stolen. */
static int future_set_exception_impl(FutureObject *self, PyObject *exc)
{
    int err;
    if (as_future_done(self->fut)) {
        Py_DECREF(exc);
        PyErr_SetString(asp_InvalidStateError, "invalid state");
        return -1;
    }
    Py_XSETREF(self->exc, exc);
    if ((err = as_future_set_error(self->fut, AS_EUNHANDLED, NULL)) < 0) {
        Py_CLEAR(self->exc);
        asp_set_error(err, NULL);
        return -1;
    }
    self->log_exc = 1;
    future_on_done(self);
    return 0;
}

static int future_cancel_impl(FutureObject *self, PyObject *msg)
{
    if (as_future_done(self->fut))
        return 0;
    Py_XSETREF(self->cancel_msg, Py_XNewRef(msg));
    /* A Task's C future has a canceller (task_canceller): the Task itself
     * finishing as cancelled must bypass it. */
    if (future_is_task(self) ? as_future_set_cancelled(self->fut, NULL) < 0
                             : !as_future_cancel(self->fut, NULL))
        return 0;
    future_on_done(self);
    return 1;
}

static PyObject *reader_error_for(PyObject *owner, int code);
static int task_cancel_impl(TaskObject *t, PyObject *msg);

/* Cancel what a task waits on the way its type wants: a Task cancels its
 * coroutine, a Python subclass (gather's future) runs its own cancel(). */
static int asp_cancel(FutureObject *w, PyObject *msg)
{
    PyObject *r;
    int ok;
    if (Py_IS_TYPE(w, &FutureType))
        return future_cancel_impl(w, msg);
    if (Py_IS_TYPE(w, &TaskType))
        return task_cancel_impl((TaskObject *)w, msg);
    r = PyObject_CallMethod((PyObject *)w, "cancel", "O", msg ? msg : Py_None);
    if (!r)
        return -1;
    ok = PyObject_IsTrue(r);
    Py_DECREF(r);
    return ok;
}

/* The outcome: 0 and a new reference in *value, or -1 with an exception
 * set.  C results are converted once and cached, so result() twice returns
 * the same object and an error is the same exception object each time. */
static int future_outcome(FutureObject *self, PyObject **value)
{
    as_future *f = self->fut;
    int code;

    if (self->exc) {
        self->log_exc = 0;
        PyErr_SetObject((PyObject *)Py_TYPE(self->exc), self->exc);
        return -1;
    }
    if (!self->result) {
        if (!as_future_done(f)) {
            PyErr_SetString(asp_InvalidStateError, "Result is not set.");
            return -1;
        }
        code = as_future_error(f);
        if (code == AS_ECANCELLED) {
            PyObject *e = self->cancel_msg ? asp_make_cancelled(self->cancel_msg) : NULL;
            if (!self->cancel_msg) {
                const char *m = as_future_error_message(f);
                if (m && strcmp(m, as_strerror(AS_ECANCELLED)) != 0)
                    e = PyObject_CallFunction(asp_CancelledError, "s", m);
                else
                    e = PyObject_CallNoArgs(asp_CancelledError);
            }
            if (e) {
                PyErr_SetObject(asp_CancelledError, e);
                Py_DECREF(e);
            }
            return -1;
        }
        if (code < 0) {
            PyObject *e = self->owner ? reader_error_for(self->owner, code) : NULL;
            if (!e && !PyErr_Occurred())
                e = asp_error_from_code(code, as_future_error_message(f),
                                        as_future_error_detail(f), self->kind);
            if (!e)
                return -1;
            self->exc = e;
            PyErr_SetObject((PyObject *)Py_TYPE(e), e);
            return -1;
        }
        switch (self->kind) {
        case ASP_KIND_BYTES:
        case ASP_KIND_LINE:
        case ASP_KIND_ANEXT: {
            const as_bytes *b = as_future_result(f);
            self->result = b ? PyBytes_FromStringAndSize((const char *)b->data,
                                                         (Py_ssize_t)b->len)
                             : PyBytes_FromStringAndSize(NULL, 0);
            if (!self->result)
                return -1;
            /* The bytes are copied; give the C buffer back now. */
            free(as_future_take_result(f));
            break;
        }
        case ASP_KIND_DISCARD: {
            const as_discarded *d = as_future_result(f);
            self->result = Py_BuildValue("(Kn)", d ? d->count : 0ULL,
                                         (Py_ssize_t)(d ? d->separator : 0));
            if (!self->result)
                return -1;
            break;
        }
        case ASP_KIND_CONN:
            if (!(self->result = asp_conn_result(self)))
                return -1;
            break;
        case ASP_KIND_SERVER:
            if (!(self->result = asp_server_result(self)))
                return -1;
            break;
        default:
            self->result = Py_NewRef(Py_None);
        }
    }
    if (self->kind == ASP_KIND_ANEXT && PyBytes_GET_SIZE(self->result) == 0) {
        PyErr_SetNone(PyExc_StopAsyncIteration);
        return -1;
    }
    *value = Py_NewRef(self->result);
    return 0;
}

static PyObject *future_result_impl(FutureObject *self)
{
    PyObject *v;
    return future_outcome(self, &v) < 0 ? NULL : v;
}

/* ------------------------------------------------------------ awaiting */

/* listing: am-send */
static PySendResult future_am_send(FutureObject *self, PyObject *arg, PyObject **result)
{
    (void)arg;
    if (!as_future_done(self->fut)) {
        self->blocking = 1;
        *result = Py_NewRef((PyObject *)self);
        return PYGEN_NEXT;
    }
    if (future_outcome(self, result) < 0) {
        *result = NULL;
        return PYGEN_ERROR;
    }
    return PYGEN_RETURN;
}
/* end listing */

static PyObject *future_await(FutureObject *self)
{
    return Py_NewRef((PyObject *)self);
}

/* The iterator protocol for callers without am_send (plain next(), send()). */
static PyObject *future_iternext(FutureObject *self)
{
    PyObject *r;
    PySendResult st = future_am_send(self, Py_None, &r);
    if (st == PYGEN_RETURN) {
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, r);
        Py_DECREF(r);
        if (stop) {
            PyErr_SetObject(PyExc_StopIteration, stop);
            Py_DECREF(stop);
        }
        return NULL;
    }
    return r;
}

static PyObject *future_send(FutureObject *self, PyObject *arg)
{
    (void)arg;
    return future_iternext(self);
}

/* ------------------------------------------------------------ callbacks */

/* The one C done callback that runs the Python callbacks, in the order
 * they were added, all in the same loop turn (as asyncio schedules them
 * back to back).  An exception in one goes to the loop's runner; the
 * others still run. */
static void future_run_callbacks(as_future *f, void *userdata)
{
    PyGILState_STATE g = PyGILState_Ensure();
    FutureObject *self = userdata;
    PyObject *cbs = self->callbacks;
    Py_ssize_t i;
    (void)f;

    self->callbacks = NULL;
    self->cb_scheduled = 0;
    for (i = 0; cbs && i < PyList_GET_SIZE(cbs); i++) {
        PyObject *pair = PyList_GET_ITEM(cbs, i), *r;
        PyObject *fn = PyTuple_GET_ITEM(pair, 0), *ctx = PyTuple_GET_ITEM(pair, 1);
        if (ctx == Py_None)
            r = PyObject_CallOneArg(fn, (PyObject *)self);
        else
            r = PyObject_CallMethodObjArgs(ctx, asp_str_run, fn, (PyObject *)self, NULL);
        if (r)
            Py_DECREF(r);
        else
            asp_callback_error();
    }
    Py_XDECREF(cbs);
    PyGILState_Release(g);
}

static PyObject *future_add_done_callback(FutureObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fn", "context", NULL};
    PyObject *fn, *ctx = Py_None, *pair;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:add_done_callback", kwlist, &fn, &ctx))
        return NULL;
    if (!self->callbacks && !(self->callbacks = PyList_New(0)))
        return NULL;
    if (!(pair = PyTuple_Pack(2, fn, ctx)))
        return NULL;
    if (PyList_Append(self->callbacks, pair) < 0) {
        Py_DECREF(pair);
        return NULL;
    }
    Py_DECREF(pair);
    if (!self->cb_scheduled) {
        int err = as_future_add_done_callback(self->fut, future_run_callbacks,
                                              Py_NewRef((PyObject *)self), asp_decref);
        if (err < 0) {
            Py_DECREF((PyObject *)self);
            Py_CLEAR(self->callbacks);
            return asp_set_error(err, NULL);
        }
        self->cb_scheduled = 1;
    }
    Py_RETURN_NONE;
}

static PyObject *future_remove_done_callback(FutureObject *self, PyObject *fn)
{
    Py_ssize_t i, removed = 0;
    PyObject *keep;
    if (!self->callbacks)
        return PyLong_FromLong(0);
    if (!(keep = PyList_New(0)))
        return NULL;
    for (i = 0; i < PyList_GET_SIZE(self->callbacks); i++) {
        PyObject *pair = PyList_GET_ITEM(self->callbacks, i);
        int eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(pair, 0), fn, Py_EQ);
        if (eq < 0) {
            Py_DECREF(keep);
            return NULL;
        }
        if (eq)
            removed++;
        else if (PyList_Append(keep, pair) < 0) {
            Py_DECREF(keep);
            return NULL;
        }
    }
    Py_SETREF(self->callbacks, keep);
    return PyLong_FromSsize_t(removed);
}

/* ------------------------------------------------------------ methods */

static PyObject *future_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"loop", NULL};
    PyObject *loopobj = Py_None;
    LoopObject *loop;
    as_future *f;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$O:Future", kwlist, &loopobj))
        return NULL;
    if (!(loop = asp_loop_arg(loopobj, "no running event loop")))
        return NULL;
    if (!loop->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return NULL;
    }
    if (as_future_new(loop->loop, &f) < 0) /* the loop is open: -ENOMEM */
        return PyErr_NoMemory();
    return (PyObject *)future_alloc(type, loop, f, ASP_KIND_PY, NULL);
}

static PyObject *future_result(FutureObject *self, PyObject *unused)
{
    (void)unused;
    self->log_exc = 0;
    return future_result_impl(self);
}

static PyObject *future_exception(FutureObject *self, PyObject *unused)
{
    PyObject *v;
    (void)unused;
    if (!as_future_done(self->fut)) {
        PyErr_SetString(asp_InvalidStateError, "Exception is not set.");
        return NULL;
    }
    if (as_future_cancelled(self->fut))
        return future_result_impl(self); /* raises CancelledError */
    if (future_outcome(self, &v) == 0) {
        Py_DECREF(v);
        Py_RETURN_NONE;
    }
    if (PyErr_ExceptionMatches(PyExc_StopAsyncIteration)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return asp_fetch_exc();
}

static PyObject *future_set_result(FutureObject *self, PyObject *value)
{
    if (future_set_result_impl(self, value) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *future_set_exception(FutureObject *self, PyObject *exc)
{
    if (PyType_Check(exc) && PyType_IsSubtype((PyTypeObject *)exc,
                                              (PyTypeObject *)PyExc_BaseException)) {
        exc = PyObject_CallNoArgs(exc);
        if (!exc)
            return NULL;
    } else if (PyExceptionInstance_Check(exc)) {
        Py_INCREF(exc);
    } else {
        PyErr_SetString(PyExc_TypeError, "invalid exception object");
        return NULL;
    }
    if (PyErr_GivenExceptionMatches(exc, PyExc_StopIteration)) {
        Py_DECREF(exc);
        PyErr_SetString(PyExc_TypeError, "StopIteration interacts badly with "
                                         "generators and cannot be raised into a Future");
        return NULL;
    }
    if (future_set_exception_impl(self, exc) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *future_cancel(FutureObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"msg", NULL};
    PyObject *msg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:cancel", kwlist, &msg))
        return NULL;
    self->log_exc = 0;
    return PyBool_FromLong(future_cancel_impl(self, msg));
}

static PyObject *future_done(FutureObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(as_future_done(self->fut));
}

static PyObject *future_cancelled(FutureObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(as_future_cancelled(self->fut));
}

static PyObject *future_get_loop(FutureObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef((PyObject *)self->loop);
}

static PyObject *future_get_blocking(FutureObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->blocking);
}

static int future_set_blocking(FutureObject *self, PyObject *v, void *c)
{
    int b;
    (void)c;
    if (!v || (b = PyObject_IsTrue(v)) < 0) {
        if (!v)
            PyErr_SetString(PyExc_AttributeError, "cannot delete attribute");
        return -1;
    }
    self->blocking = (unsigned char)b;
    return 0;
}

static PyObject *future_repr(FutureObject *self)
{
    const char *cls = future_is_task(self) ? "Task" : "Future";
    if (!as_future_done(self->fut))
        return PyUnicode_FromFormat("<%s pending>", cls);
    if (as_future_cancelled(self->fut))
        return PyUnicode_FromFormat("<%s cancelled>", cls);
    if (self->exc)
        return PyUnicode_FromFormat("<%s finished exception=%R>", cls, self->exc);
    if (self->result)
        return PyUnicode_FromFormat("<%s finished result=%R>", cls, self->result);
    return PyUnicode_FromFormat("<%s finished>", cls);
}

static int future_traverse(FutureObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->loop);
    Py_VISIT(self->result);
    Py_VISIT(self->exc);
    Py_VISIT(self->callbacks);
    Py_VISIT(self->cancel_msg);
    Py_VISIT(self->owner);
    return 0;
}

static int future_clear(FutureObject *self)
{
    Py_CLEAR(self->result);
    Py_CLEAR(self->exc);
    Py_CLEAR(self->callbacks);
    Py_CLEAR(self->cancel_msg);
    Py_CLEAR(self->owner);
    return 0;
}

/* An exception set on a future nobody looked at is reported, as asyncio
 * reports "Task exception was never retrieved" (on stderr, not raised:
 * there is nobody to raise it to). */
static void future_report_unretrieved(FutureObject *self)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PySys_WriteStderr("%s exception was never retrieved\n",
                      future_is_task(self) ? "Task" : "Future");
    PyErr_Display(NULL, self->exc, NULL);
    PyErr_Restore(type, value, tb);
}

static void future_dealloc_fields(FutureObject *self)
{
    if (self->log_exc && self->exc)
        future_report_unretrieved(self);
    if (self->fut) {
        /* Mark a C error as seen: it was ours to report (above), not the
         * C future's "never retrieved" report. */
        if (self->kind == ASP_KIND_PY && as_future_done(self->fut))
            (void)as_future_error(self->fut);
        as_future_unref(self->fut);
        self->fut = NULL;
    }
    future_clear(self);
    Py_CLEAR(self->loop);
}

static void future_dealloc(FutureObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    future_dealloc_fields(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef future_methods[] = {
    {"result", (PyCFunction)future_result, METH_NOARGS, "The result, or raise the exception."},
    {"exception", (PyCFunction)future_exception, METH_NOARGS, NULL},
    {"set_result", (PyCFunction)future_set_result, METH_O, NULL},
    {"set_exception", (PyCFunction)future_set_exception, METH_O, NULL},
    {"cancel", (PyCFunction)(void (*)(void))future_cancel, METH_VARARGS | METH_KEYWORDS, NULL},
    {"done", (PyCFunction)future_done, METH_NOARGS, NULL},
    {"cancelled", (PyCFunction)future_cancelled, METH_NOARGS, NULL},
    {"get_loop", (PyCFunction)future_get_loop, METH_NOARGS, NULL},
    {"add_done_callback", (PyCFunction)(void (*)(void))future_add_done_callback,
     METH_VARARGS | METH_KEYWORDS, "Call fn(future) on the loop once done."},
    {"remove_done_callback", (PyCFunction)future_remove_done_callback, METH_O, NULL},
    {"send", (PyCFunction)future_send, METH_O, NULL},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef future_getset[] = {
    {"_asyncio_future_blocking", (getter)future_get_blocking, (setter)future_set_blocking, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyAsyncMethods future_as_async = {
    (unaryfunc)future_await, 0, 0, (sendfunc)future_am_send};

static PyTypeObject FutureType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncstreams._core.Future",
    .tp_basicsize = sizeof(FutureObject),
    .tp_dealloc = (destructor)future_dealloc,
    .tp_as_async = &future_as_async,
    .tp_repr = (reprfunc)future_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A C future (as_future) that can be awaited.",
    .tp_traverse = (traverseproc)future_traverse,
    .tp_clear = (inquiry)future_clear,
    .tp_weaklistoffset = offsetof(FutureObject, weakreflist),
    .tp_iter = (getiterfunc)future_await,
    .tp_iternext = (iternextfunc)future_iternext,
    .tp_methods = future_methods,
    .tp_getset = future_getset,
    .tp_new = future_new,
};

/* ------------------------------------------------------------ Task */

static void task_unlink(TaskObject *t)
{
    LoopObject *loop = t->base.loop;
    if (!t->prev && !t->next && (!loop || loop->tasks != t))
        return;
    if (t->prev)
        t->prev->next = t->next;
    else if (loop)
        loop->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

static void task_step(TaskObject *t, PyObject *exc);

static void task_step_cb(void *userdata)
{
    PyGILState_STATE g = PyGILState_Ensure();
    task_step((TaskObject *)userdata, NULL);
    PyGILState_Release(g);
}

/* userdata: a (task, exception) tuple. */
static void task_step_exc_cb(void *userdata)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *pair = userdata;
    task_step((TaskObject *)PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
    PyGILState_Release(g);
}

static void task_wakeup(as_future *f, void *userdata)
{
    PyGILState_STATE g = PyGILState_Ensure();
    TaskObject *t = userdata;
    (void)f;
    Py_CLEAR(t->waiter);
    task_step(t, NULL);
    PyGILState_Release(g);
}

static int task_schedule_step(TaskObject *t, PyObject *exc)
{
    as_loop *loop = t->base.loop->loop;
    int err;
    if (!loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    if (!exc) {
        err = as_loop_call_soon(loop, task_step_cb, Py_NewRef((PyObject *)t), asp_decref, NULL);
        if (err < 0)
            Py_DECREF((PyObject *)t);
    } else {
        PyObject *pair = PyTuple_Pack(2, (PyObject *)t, exc);
        if (!pair)
            return -1;
        err = as_loop_call_soon(loop, task_step_exc_cb, pair, asp_decref, NULL);
        if (err < 0)
            Py_DECREF(pair);
    }
    if (err < 0) {
        asp_set_error(err, NULL);
        return -1;
    }
    return 0;
}

/* C code cancelling a Task's future (a server's shutdown() cancelling a
 * handler) cancels the Task, as Task.cancel() would (pyrt.h, rule 5). */
static int task_canceller(as_future *f, const char *message, void *userdata)
{
    TaskObject *t = userdata;
    PyObject *msg = NULL;
    int c;
    (void)f;
    if (message && !(msg = PyUnicode_FromString(message))) {
        asp_callback_error();
        return 0;
    }
    c = task_cancel_impl(t, msg);
    Py_XDECREF(msg);
    if (c < 0) {
        asp_callback_error();
        return 0;
    }
    return c;
}

static PyObject *task_new_on(LoopObject *loop, PyObject *coro, PyObject *name,
                             PyObject *context)
{
    TaskObject *t;
    as_future *f;

    if (!PyCoro_CheckExact(coro) && !PyGen_Check(coro) &&
        !PyObject_HasAttrString(coro, "send")) {
        PyErr_Format(PyExc_TypeError, "a coroutine was expected, got %R", coro);
        return NULL;
    }
    if (!loop->loop) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return NULL;
    }
    if (as_future_new(loop->loop, &f) < 0) /* the loop is open: -ENOMEM */
        return PyErr_NoMemory();
    t = (TaskObject *)future_alloc(&TaskType, loop, f, ASP_KIND_PY, NULL);
    if (!t)
        return NULL;
    t->coro = Py_NewRef(coro);
    (void)as_future_set_canceller(f, task_canceller, t);
    if (name == Py_None)
        t->name = PyUnicode_FromFormat("Task-%llu", ++asp_task_counter);
    else
        t->name = PyObject_Str(name);
    t->context = context == Py_None ? PyContext_CopyCurrent() : Py_NewRef(context);
    if (!t->name || !t->context || task_schedule_step(t, NULL) < 0) {
        Py_DECREF((PyObject *)t);
        return NULL;
    }
    t->next = loop->tasks;
    if (loop->tasks)
        loop->tasks->prev = t;
    loop->tasks = t;
    return (PyObject *)t;
}

/* What the coroutine yielded: a Future to wait for, None (a bare yield:
 * run again next turn), or anything else (an error thrown back in). */
static void task_handle_yield(TaskObject *t, PyObject *result)
{
    PyObject *err = NULL;

    if (PyObject_TypeCheck(result, &FutureType)) {
        FutureObject *w = (FutureObject *)result;
        int rc;
        if (w->loop != t->base.loop)
            err = PyUnicode_FromFormat("Task %R got Future %R attached to a different loop",
                                       (PyObject *)t, result);
        else if (!w->blocking)
            err = PyUnicode_FromFormat("yield was used instead of yield from in task %R with %R",
                                       (PyObject *)t, result);
        else if (w == &t->base)
            err = PyUnicode_FromFormat("Task cannot await on itself: %R", (PyObject *)t);
        if (!err) {
            w->blocking = 0;
            rc = as_future_add_done_callback(w->fut, task_wakeup,
                                             Py_NewRef((PyObject *)t), asp_decref);
            if (rc < 0) {
                Py_DECREF((PyObject *)t);
                Py_DECREF(result);
                asp_set_error(rc, NULL);
                asp_callback_error();
                return;
            }
            t->waiter = w; /* takes the reference to result */
            if (t->must_cancel) {
                int c = asp_cancel(w, t->pending_cancel_msg);
                if (c < 0)
                    asp_callback_error();
                else if (c)
                    t->must_cancel = 0;
            }
            return;
        }
    } else if (result == Py_None) {
        Py_DECREF(result);
        if (task_schedule_step(t, NULL) < 0)
            asp_callback_error();
        return;
    } else {
        err = PyUnicode_FromFormat("Task got bad yield: %R", result);
    }
    Py_DECREF(result);
    if (err) {
        PyObject *e = PyObject_CallOneArg(PyExc_RuntimeError, err);
        Py_DECREF(err);
        if (e) {
            if (task_schedule_step(t, e) < 0)
                asp_callback_error();
            Py_DECREF(e);
            return;
        }
    }
    asp_callback_error();
}

/* One step: run the coroutine until it awaits something, returns or raises. */
static void task_step(TaskObject *t, PyObject *exc)
{
    LoopObject *loop = t->base.loop;
    TaskObject *prev_current;
    PyObject *result = NULL, *cancel_exc = NULL;
    PySendResult status;

    if (as_future_done(t->base.fut))
        return;
    if (t->must_cancel) {
        if (!exc)
            exc = cancel_exc = asp_make_cancelled(t->pending_cancel_msg);
        t->must_cancel = 0;
        if (!exc) {
            asp_callback_error();
            return;
        }
    }
    Py_INCREF((PyObject *)t);
    prev_current = loop->current;
    loop->current = t;
    if (PyContext_Enter(t->context) < 0) {
        loop->current = prev_current;
        Py_XDECREF(cancel_exc);
        asp_callback_error();
        Py_DECREF((PyObject *)t);
        return;
    }
    if (!exc) {
        status = PyIter_Send(t->coro, Py_None, &result);
    } else {
        result = PyObject_CallMethodOneArg(t->coro, asp_str_throw, exc);
        if (result) {
            status = PYGEN_NEXT;
        } else if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
            PyObject *e = asp_fetch_exc();
            result = PyObject_GetAttrString(e, "value");
            Py_DECREF(e);
            status = result ? PYGEN_RETURN : PYGEN_ERROR;
        } else {
            status = PYGEN_ERROR;
        }
    }
    PyContext_Exit(t->context);
    loop->current = prev_current;
    Py_XDECREF(cancel_exc);

    switch (status) {
    case PYGEN_RETURN:
        if (t->must_cancel) {
            /* Cancelled after its last await: asyncio cancels it anyway. */
            t->must_cancel = 0;
            future_cancel_impl(&t->base, t->pending_cancel_msg);
        } else if (future_set_result_impl(&t->base, result) < 0) {
            asp_callback_error();
        }
        Py_DECREF(result);
        break;
    case PYGEN_ERROR: {
        PyObject *e = asp_fetch_exc();
        if (!e)
            break;
        if (PyObject_TypeCheck(e, (PyTypeObject *)asp_CancelledError)) {
            PyObject *args = PyObject_GetAttrString(e, "args");
            PyObject *msg = args && PyTuple_Check(args) && PyTuple_GET_SIZE(args) > 0
                                ? PyTuple_GET_ITEM(args, 0) : Py_None;
            future_cancel_impl(&t->base, msg);
            Py_XDECREF(args);
            PyErr_Clear();
            Py_DECREF(e);
        } else if (PyErr_GivenExceptionMatches(e, PyExc_KeyboardInterrupt) ||
                   PyErr_GivenExceptionMatches(e, PyExc_SystemExit)) {
            /* As asyncio: the task fails and the exception also stops the
             * loop, raised from run(). */
            if (future_set_exception_impl(&t->base, Py_NewRef(e)) == 0)
                t->base.log_exc = 0;
            else
                PyErr_Clear();
            asp_restore_exc(e);
            asp_callback_error();
        } else {
            if (future_set_exception_impl(&t->base, e) < 0)
                asp_callback_error();
        }
        break;
    }
    case PYGEN_NEXT:
        task_handle_yield(t, result);
        break;
    }
    Py_DECREF((PyObject *)t);
}

static PyObject *task_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"coro", "loop", "name", "context", NULL};
    PyObject *coro, *loopobj = Py_None, *name = Py_None, *context = Py_None;
    LoopObject *loop;
    (void)type;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOO:Task", kwlist, &coro,
                                     &loopobj, &name, &context))
        return NULL;
    if (!(loop = asp_loop_arg(loopobj, "no running event loop")))
        return NULL;
    return task_new_on(loop, coro, name, context);
}

static int task_cancel_impl(TaskObject *t, PyObject *msg)
{
    t->base.log_exc = 0;
    if (as_future_done(t->base.fut))
        return 0;
    t->num_cancels++;
    if (t->waiter) {
        int c = asp_cancel(t->waiter, msg);
        if (c != 0)
            return c; /* 1: the waiter's cancellation will reach the coroutine */
    }
    t->must_cancel = 1;
    Py_XSETREF(t->pending_cancel_msg, Py_XNewRef(msg));
    return 1;
}

static PyObject *task_cancel(TaskObject *t, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"msg", NULL};
    PyObject *msg = Py_None;
    int c;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:cancel", kwlist, &msg))
        return NULL;
    if ((c = task_cancel_impl(t, msg)) < 0)
        return NULL;
    return PyBool_FromLong(c);
}

static PyObject *task_cancelling(TaskObject *t, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(t->num_cancels);
}

static PyObject *task_uncancel(TaskObject *t, PyObject *unused)
{
    (void)unused;
    if (t->num_cancels > 0)
        t->num_cancels--;
    return PyLong_FromLong(t->num_cancels);
}

static PyObject *task_get_coro(TaskObject *t, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(t->coro);
}

static PyObject *task_get_name(TaskObject *t, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(t->name);
}

static PyObject *task_set_name(TaskObject *t, PyObject *name)
{
    PyObject *s = PyObject_Str(name);
    if (!s)
        return NULL;
    Py_SETREF(t->name, s);
    Py_RETURN_NONE;
}

static PyObject *task_get_context(TaskObject *t, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(t->context);
}

static PyObject *task_repr(TaskObject *t)
{
    PyObject *base = future_repr(&t->base), *r;
    if (!base)
        return NULL;
    r = PyUnicode_FromFormat("%U name=%R coro=%R>", base, t->name, t->coro);
    Py_DECREF(base);
    return r;
}

static int task_traverse(TaskObject *t, visitproc visit, void *arg)
{
    Py_VISIT(t->coro);
    Py_VISIT(t->waiter);
    Py_VISIT(t->context);
    Py_VISIT(t->name);
    Py_VISIT(t->pending_cancel_msg);
    return future_traverse(&t->base, visit, arg);
}

static int task_clear(TaskObject *t)
{
    Py_CLEAR(t->coro);
    Py_CLEAR(t->waiter);
    Py_CLEAR(t->context);
    Py_CLEAR(t->name);
    Py_CLEAR(t->pending_cancel_msg);
    return future_clear(&t->base);
}

static void task_dealloc(TaskObject *t)
{
    PyObject_GC_UnTrack(t);
    if (t->base.weakreflist)
        PyObject_ClearWeakRefs((PyObject *)t);
    task_unlink(t);
    if (t->base.fut && !as_future_done(t->base.fut))
        (void)as_future_set_canceller(t->base.fut, NULL, NULL);
    Py_CLEAR(t->coro);
    Py_CLEAR(t->waiter);
    Py_CLEAR(t->context);
    Py_CLEAR(t->name);
    Py_CLEAR(t->pending_cancel_msg);
    future_dealloc_fields(&t->base);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyMethodDef task_methods[] = {
    {"cancel", (PyCFunction)(void (*)(void))task_cancel, METH_VARARGS | METH_KEYWORDS,
     "Request cancellation: the awaited future is cancelled, so CancelledError "
     "is raised inside the coroutine at its await."},
    {"cancelling", (PyCFunction)task_cancelling, METH_NOARGS, NULL},
    {"uncancel", (PyCFunction)task_uncancel, METH_NOARGS, NULL},
    {"get_coro", (PyCFunction)task_get_coro, METH_NOARGS, NULL},
    {"get_name", (PyCFunction)task_get_name, METH_NOARGS, NULL},
    {"set_name", (PyCFunction)task_set_name, METH_O, NULL},
    {"get_context", (PyCFunction)task_get_context, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyTypeObject TaskType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncstreams._core.Task",
    .tp_basicsize = sizeof(TaskObject),
    .tp_dealloc = (destructor)task_dealloc,
    .tp_repr = (reprfunc)task_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A coroutine run by the C loop: each step is a loop callback.",
    .tp_traverse = (traverseproc)task_traverse,
    .tp_clear = (inquiry)task_clear,
    .tp_methods = task_methods,
    .tp_new = task_tp_new,
};
