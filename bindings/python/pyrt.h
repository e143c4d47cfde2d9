/*
 * pyrt.h - the Python runtime of the binding: what SWIG cannot generate.
 *
 * SWIG wraps the C API function by function (asyncstreams.i).  Three things
 * a Python program needs are not functions but object behaviour, so they
 * are written here by hand with the CPython C API and compiled into the same
 * extension module (the .i file includes these files into its wrapper):
 *
 *   pyloop.c    Loop: owns an as_loop, runs it with the interpreter lock
 *               released around select(), and the callback thunk that takes
 *               the lock, calls Python, and hands any exception back to
 *               run_until_complete() instead of printing it.
 *   pyfuture.c  Future: a C future (as_future) that `await` understands;
 *               Task: a Python coroutine stepped by the C loop.
 *   pyreader.c  StreamReader: the C reader with asyncio's Python surface.
 *   pystream.c  StreamWriter, Server, and the calls that make them
 *               (open_connection, start_server and their Unix variants).
 *   pytls.c     TLS: an engine over ssl.SSLObject for the C TLS transport,
 *               and _start_tls, which puts it under a connection.
 *
 * Threads: every function here runs with the interpreter lock held.  The
 * only code that runs without it is the backend's select(), between the
 * loop's two poll hooks.
 *
 * Lifetimes (in addition to the C headers' rules):
 *   1. A Python object that wraps a C object owns one C reference to it
 *      (Future -> as_future, StreamReader -> as_reader) and drops it in its
 *      dealloc.  A Loop owns its as_loop and closes it in close() or dealloc.
 *   2. Every callback handed to C owns a strong reference to the Python
 *      object in its userdata; the destroy hook (asp_decref) releases it, so
 *      the C rule "destroy runs exactly once" (design rule 4) is what
 *      prevents leaks.
 *   3. A pending Task is kept alive by C: by the scheduled step (call_soon
 *      userdata) or by the done callback on the future it awaits.  Such a
 *      cycle through C memory is invisible to the garbage collector, and is
 *      broken when the future completes or the loop closes.
 *   4. A StreamWriter owns one as_writer reference and a strong reference
 *      to its StreamReader; a Server owns one as_server reference.  A
 *      server's client_connected_cb lives in the C server's userdata (a
 *      (callback, Loop) tuple, released by the server's destroy hook).
 *   5. A Task's C future has a canceller pointing at the Task (borrowed):
 *      C code cancelling it (a server's shutdown()) cancels the coroutine
 *      the way Task.cancel() does.  The Task removes the canceller in its
 *      dealloc, so it never outlives the Task.
 */
#ifndef ASP_PYRT_H
#define ASP_PYRT_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct LoopObject LoopObject;
typedef struct FutureObject FutureObject;
typedef struct TaskObject TaskObject;

struct LoopObject {
    PyObject_HEAD
    as_loop *loop;           /* NULL once closed */
    PyThreadState *tstate;   /* saved while the loop waits in select() */
    PyObject *pending_exc;   /* raised by run_until_complete() */
    uintptr_t runs;          /* counts runs: which one a stop callback is for */
    TaskObject *tasks;       /* pending tasks (borrowed, intrusive list) */
    TaskObject *current;     /* the task being stepped, borrowed */
    PyObject *dict;
    PyObject *weakreflist;
};

/* How a Future turns the C outcome into Python values. */
enum asp_kind {
    ASP_KIND_PY,      /* Python-made: result/exception objects set from Python */
    ASP_KIND_BYTES,   /* reads: an as_bytes result */
    ASP_KIND_LINE,    /* readline: like BYTES, but a limit overrun is ValueError */
    ASP_KIND_ANEXT,   /* async for: like LINE, and b"" ends the iteration */
    ASP_KIND_DISCARD, /* discard_until: an as_discarded result */
    ASP_KIND_NONE,    /* C futures with no result */
    ASP_KIND_CONN,    /* open_connection: an as_connection, (reader, writer) */
    ASP_KIND_SERVER   /* start_server: an as_server, a Server */
};

struct FutureObject {
    PyObject_HEAD
    as_future *fut;          /* owned reference */
    LoopObject *loop;        /* strong */
    PyObject *result;        /* the converted or Python-set result */
    PyObject *exc;           /* the converted or Python-set exception */
    PyObject *callbacks;     /* list of (fn, context) or NULL */
    PyObject *cancel_msg;
    PyObject *owner;         /* the StreamReader a read came from, or NULL */
    unsigned char kind;
    unsigned char blocking;  /* asyncio's _asyncio_future_blocking */
    unsigned char log_exc;   /* an exception nobody retrieved yet */
    unsigned char cb_scheduled; /* the C done callback for `callbacks` is set */
    PyObject *weakreflist;
};

struct TaskObject {
    FutureObject base;
    PyObject *coro;
    FutureObject *waiter;    /* the future the coroutine awaits */
    PyObject *context;
    PyObject *name;
    PyObject *pending_cancel_msg;
    int must_cancel;
    int num_cancels;
    TaskObject *prev, *next; /* the loop's pending tasks */
};

typedef struct ReaderObject {
    PyObject_HEAD
    as_reader *r;
    LoopObject *loop;
    PyObject *exception;     /* the sticky exception, as a Python object */
    int exc_code;            /* the C code stored with it */
    PyObject *transport;
    PyObject *dict;
    PyObject *weakreflist;
} ReaderObject;

typedef struct WriterObject {
    PyObject_HEAD
    as_writer *w;
    LoopObject *loop;
    PyObject *reader;        /* the connection's StreamReader, or NULL */
    int server_side;         /* made by a server: start_tls's side */
    PyObject *dict;
    PyObject *weakreflist;
} WriterObject;

typedef struct ServerObject {
    PyObject_HEAD
    as_server *s;
    LoopObject *loop;
    PyObject *dict;
    PyObject *weakreflist;
} ServerObject;

static PyTypeObject LoopType, FutureType, TaskType, ReaderType, WriterType, ServerType;

/* Exception classes, looked up once at import. */
static PyObject *asp_CancelledError, *asp_InvalidStateError,
    *asp_IncompleteReadError, *asp_LimitOverrunError;

static Py_tss_t asp_running_key = Py_tss_NEEDS_INIT;

static LoopObject *asp_running_loop(void);
static LoopObject *asp_loop_arg(PyObject *loopobj, const char *no_loop_message);
static void asp_callback_error(void);
static void asp_decref(void *userdata);
static void asp_call_thunk(void *userdata);
static void asp_signal_thunk(int signo, void *userdata);
static PyObject *asp_error_from_code(int code, const char *message,
                                     const void *detail, int kind);
static PyObject *asp_set_error(int code, const char *message);
static FutureObject *asp_future_wrap(LoopObject *loop, as_future *f, int kind,
                                     PyObject *owner);
static LoopObject *asp_loop_of_future(as_future *f);
static PyObject *asp_conn_result(FutureObject *self);
static PyObject *asp_server_result(FutureObject *self);

#endif
