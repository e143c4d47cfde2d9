/*
 * bindings/python/asyncstreams.i - the Python extension asyncstreams._core.
 *
 * SWIG generates the wrappers of the C API (the shared
 * bindings/swig/asyncstreams.i) and this file adds what is Python's own:
 *   - the typemaps the shared file asks for: a Python callable as
 *     (fn, userdata, destroy) through the thunk, an as_handle** as a Handle
 *     result, an as_future* as an awaitable Future, negative codes raised as
 *     Python exceptions;
 *   - the hand-written runtime (pyrt.h): Loop, Future, Task, StreamReader,
 *     StreamWriter, Server.
 *
 * Built with: swig -python -builtin -doxygen -interface _core
 * (-builtin makes the wrappers real C types and functions, with no Python
 * shadow layer in between).
 */
%module(package="asyncstreams", docstring="asyncstreams C core: SWIG wrappers of the C API and the awaitable runtime.") core

%begin %{
#define PY_SSIZE_T_CLEAN
%}

%{
#include "asyncstreams.h"
#include "pyrt.h"
%}

/* ---------------------------------------------------------------- typemaps */

/* 1. A Python callable for (fn, userdata, destroy).  The loop calls the
 * thunk, which calls the callable; destroy drops the reference taken here
 * once the loop is done with it.  The reference is taken only when the C
 * call succeeded (argout), because a failing call keeps userdata the
 * caller's and never calls destroy (loop.h, rule 3). */
%typemap(in) (as_callback_fn fn, void *userdata, as_destroy_fn destroy) {
    if (!PyCallable_Check($input)) {
        PyErr_SetString(PyExc_TypeError, "a callable is required");
        SWIG_fail;
    }
    $1 = asp_call_thunk;
    $2 = $input;
    $3 = asp_decref;
}
%typemap(argout) (as_callback_fn fn, void *userdata, as_destroy_fn destroy) {
    Py_INCREF((PyObject *)$2);
}

/* The same for a signal handler: the thunk calls the callable with no
 * arguments, as asyncio calls callback(*args). */
%typemap(in) (as_signal_fn fn, void *userdata, as_destroy_fn destroy) {
    if (!PyCallable_Check($input)) {
        PyErr_SetString(PyExc_TypeError, "a callable is required");
        SWIG_fail;
    }
    $1 = asp_signal_thunk;
    $2 = $input;
    $3 = asp_decref;
}
%typemap(argout) (as_signal_fn fn, void *userdata, as_destroy_fn destroy) {
    Py_INCREF((PyObject *)$2);
}

/* 2. The handle as an extra result. */
%typemap(in, numinputs=0) as_handle **out (as_handle *tmp = NULL) {
    $1 = &tmp;
}
%typemap(argout) as_handle **out {
    if (tmp$argnum) {
        Py_XDECREF($result);
        $result = SWIG_NewPointerObj(tmp$argnum, SWIGTYPE_p_as_handle, SWIG_POINTER_OWN);
    }
}

/* 3. Futures: in, the awaitable Future's C future; out, a new awaitable
 * Future owning the reference the call returned. */
%typemap(in) as_future * {
    if (!PyObject_TypeCheck($input, &FutureType)) {
        PyErr_SetString(PyExc_TypeError, "an asyncstreams Future is required");
        SWIG_fail;
    }
    $1 = ((FutureObject *)$input)->fut;
}
%typemap(out) as_future * {
    $result = (PyObject *)asp_future_wrap(NULL, $1, ASP_KIND_BYTES, NULL);
    if (!$result)
        SWIG_fail;
}

/* The loop: a Loop object (or a raw SWIG pointer). */
%typemap(in) as_loop * {
    if (PyObject_TypeCheck($input, &LoopType)) {
        $1 = ((LoopObject *)$input)->loop;
        if (!$1) {
            PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
            SWIG_fail;
        }
    } else if (!SWIG_IsOK(SWIG_ConvertPtr($input, (void **)&$1, $descriptor(as_loop *), 0))) {
        PyErr_SetString(PyExc_TypeError, "an asyncstreams Loop is required");
        SWIG_fail;
    }
}
%typemap(in) const as_loop * = as_loop *;

/* The reader: a StreamReader object. */
%typemap(in) as_reader * {
    if (!PyObject_TypeCheck($input, &ReaderType) || !((ReaderObject *)$input)->r) {
        PyErr_SetString(PyExc_TypeError, "an asyncstreams StreamReader is required");
        SWIG_fail;
    }
    $1 = ((ReaderObject *)$input)->r;
}
%typemap(in) const as_reader * = as_reader *;

/* (const void *data, size_t len): any bytes-like object. */
%typemap(in) (const void *data, size_t len) (Py_buffer view) {
    if (PyObject_GetBuffer($input, &view, PyBUF_SIMPLE) < 0)
        SWIG_fail;
    $1 = view.buf;
    $2 = (size_t)view.len;
}
%typemap(freearg) (const void *data, size_t len) {
    PyBuffer_Release(&view$argnum);
}
%typemap(in) (const void *separator, size_t seplen) = (const void *data, size_t len);
%typemap(freearg) (const void *separator, size_t seplen) = (const void *data, size_t len);

/* Negative error codes become exceptions. */
%typemap(out) int AS_CHECKED {
    if ($1 < 0) {
        asp_set_error($1, NULL);
        SWIG_fail;
    }
    $result = PyLong_FromLong($1);
}
/* The shared file applies it to its one list of checked functions. */

/* The loop runs only through Loop (which releases the interpreter lock and
 * raises callback exceptions); the raw run calls would do neither. */
%ignore as_loop_run_forever;
%ignore as_loop_run_once;
%ignore as_loop_run_until_complete;
%ignore as_loop_close;
%ignore as_loop_stop;
%ignore as_future_new;  /* Loop.create_future() */
%ignore as_reader_loop;

/* A handle is a Python object whose destructor gives back the reference. */
%ignore as_handle_cancel;
%ignore as_handle_cancelled;
%ignore as_handle_when;
%rename(Handle) as_handle;
%nodefaultctor as_handle;
struct as_handle {};
%rename(cancel) as_handle::cancel_;
%rename(cancelled) as_handle::cancelled_;
%rename(when) as_handle::when_;
%extend as_handle {
    /** Cancel the callback: it will not run (as_handle_cancel()). */
    void cancel_() { as_handle_cancel($self); }
    /** True if the handle was cancelled. */
    int cancelled_() { return as_handle_cancelled($self); }
    /** For a timer: when it is due, on the loop's clock. */
    double when_() { return as_handle_when($self); }
    ~as_handle() { as_handle_unref($self); }
}

/* Python's own objects stand for these types (pyrt.h): the shared file
 * declares no class for them. */
#define AS_SWIG_OWN_LOOP
#define AS_SWIG_OWN_FUTURE
#define AS_SWIG_OWN_READER
#define AS_SWIG_OWN_HANDLE
%include "../swig/asyncstreams.i"

/* ---------------------------------------------------------------- runtime */

%{
#include "pyloop.c"
#include "pyfuture.c"
#include "pyreader.c"
#include "pystream.c"
#include "pytls.c"

static PyMethodDef asp_module_methods[] = {
    {"get_running_loop", asp_get_running_loop, METH_NOARGS,
     "The Loop running in this thread; RuntimeError if none."},
    {"_get_running_loop", asp_get_running_loop_or_none, METH_NOARGS,
     "The Loop running in this thread, or None."},
    {"_open_connection", asp_open_connection, METH_VARARGS, NULL},
    {"_open_unix_connection", asp_open_unix_connection, METH_VARARGS, NULL},
    {"_start_server", asp_start_server, METH_VARARGS, NULL},
    {"_start_unix_server", asp_start_unix_server, METH_VARARGS, NULL},
    {"_set_types", asp_set_types, METH_VARARGS, NULL},
    {"_start_tls", asp_start_tls, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static int asp_init(PyObject *m)
{
    PyObject *exc_mod;
    PyTypeObject *types[] = {&LoopType, &FutureType, &TaskType, &ReaderType, &WriterType,
                             &ServerType};
    const char *names[] = {"Loop", "Future", "Task", "StreamReader", "StreamWriter", "Server"};
    size_t i;

    if (PyThread_tss_create(&asp_running_key) != 0)
        return -1;
    TaskType.tp_base = &FutureType;
    for (i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (PyType_Ready(types[i]) < 0)
            return -1;
        Py_INCREF(types[i]);
        if (PyModule_AddObject(m, names[i], (PyObject *)types[i]) < 0)
            return -1;
    }
    if (PyModule_AddFunctions(m, asp_module_methods) < 0)
        return -1;
    /* The exception classes are asyncio's own, so `except
     * asyncio.IncompleteReadError` still works in ported code and both
     * implementations raise exactly the same types and messages. */
    if (!(exc_mod = PyImport_ImportModule("asyncio.exceptions")))
        return -1;
    asp_CancelledError = PyObject_GetAttrString(exc_mod, "CancelledError");
    asp_InvalidStateError = PyObject_GetAttrString(exc_mod, "InvalidStateError");
    asp_IncompleteReadError = PyObject_GetAttrString(exc_mod, "IncompleteReadError");
    asp_LimitOverrunError = PyObject_GetAttrString(exc_mod, "LimitOverrunError");
    Py_DECREF(exc_mod);
    if (!asp_CancelledError || !asp_InvalidStateError || !asp_IncompleteReadError ||
        !asp_LimitOverrunError)
        return -1;
    if (!(asp_str_throw = PyUnicode_InternFromString("throw")) ||
        !(asp_str_run = PyUnicode_InternFromString("run")))
        return -1;
    return 0;
}
%}

%init %{
    if (asp_init(m) < 0)
        return NULL;
%}
