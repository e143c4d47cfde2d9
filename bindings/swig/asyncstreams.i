/*
 * asyncstreams.i - the C API as every language binding sees it.
 *
 * This file is shared.  It says which parts of the public headers a
 * scripting language gets and how their shapes map, but nothing about any
 * one language: each language's top file (bindings/<language>/*.i) sets
 * %module, defines the typemaps named below, and then %includes this file.
 *
 * Covered: errors, loop, future, task, sync, locks, reader, transport,
 * socket transport, writer, connect and server.  Hidden: what only C can
 * use (raw buffers and sockaddrs, iovecs, as_bytes and as_buffer, a task's
 * C step function, the transport implementer's table, hooks that must not
 * call back into the library) and calls that return a pointer the caller
 * does not own (each has an accessor below that returns a reference).
 *
 * The four recurring shapes, which each language file maps with typemaps:
 *
 *   1. A callback with userdata and a destroy hook,
 *        (as_callback_fn fn, void *userdata, as_destroy_fn destroy)
 *      and the server's (as_client_connected_fn cb, void *userdata,
 *      as_destroy_fn destroy): one argument in the language, a callable.
 *      userdata owns a reference to it and destroy drops that reference.
 *      The library calls destroy exactly once (design rule 4) and never
 *      when the call failed (design rule 3), so the reference is taken
 *      only on success: nothing leaks and nothing is freed too early.
 *   2. A handle out-parameter, as_x **out (constructors, and the handle of
 *      a scheduled callback): an extra result, an object the language owns
 *      and whose destructor (below) gives the reference back.
 *   3. A future, as_future *: every wrapped call that returns one returns
 *      a reference the caller owns, so the language object owns it.  Its
 *      result kind is named here once (AS_RESULT_* below), so a language
 *      can convert any future's result without knowing the call behind it.
 *   4. A done callback, (as_future_cb fn, void *userdata,
 *      as_destroy_fn destroy): as shape 1, and the callable receives the
 *      future (a new reference).
 *
 * Two plain data shapes go with them: bytes in, (const void *data,
 * size_t len) and (const void *separator, size_t seplen); and bytes out,
 * (const void **bytes, size_t *nbytes), which the language copies into
 * its own string.
 *
 * Every other pointer a wrapped call returns is also a reference the
 * caller owns (%newobject below), and every refcounted type has a
 * destructor, so a garbage collector drops C references correctly.  The
 * explicit _ref(), _unref() and _free() calls are hidden: the destructor
 * is the one way to let go, so an object can never be released twice.
 *
 * A language that represents one of the types by an object of its own
 * defines AS_SWIG_OWN_<TYPE> (LOOP, FUTURE, READER, HANDLE) before the
 * %include, and this file then declares no class for that type.
 *
 * Docstrings come from the headers' Doxygen comments (swig -doxygen).
 */

%{
#include "asyncstreams.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
%}

%include <stdint.i>

/* size_t / ssize_t as plain integers. */
typedef long ssize_t;

/* ------------------------------------------------------------ hidden */

/* Raw memory: as_bytes, as_buffer and the calls that hand out or take a
 * pointer into a buffer. */
%ignore as_bytes;
%ignore as_bytes_new;
%ignore as_bytes_alloc;
%ignore as_buffer;
%ignore as_buffer_init;
%ignore as_buffer_destroy;
%ignore as_buffer_len;
%ignore as_buffer_data;
%ignore as_buffer_capacity;
%ignore as_buffer_append;
%ignore as_buffer_reserve;
%ignore as_buffer_commit;
%ignore as_buffer_consume;
%ignore as_buffer_clear;
%ignore as_buffer_trim;
%ignore as_buffer_take;
%ignore as_buffer_find;
%ignore as_reader_feed_reserve;
%ignore as_reader_feed_commit;
%ignore as_reader_peek;               /* asw_reader_peek_bytes() */
%ignore as_transport_writelines;      /* iovecs */
%ignore as_writer_writelines;
%ignore as_transport_write_owned;     /* C memory handed over */
%ignore as_writer_write_owned;
%ignore as_transport_write_bytes;
%ignore as_writer_write_bytes;
%ignore as_format_sockaddr;           /* sockaddrs: the asw_address accessors */
%ignore as_transport_peername;
%ignore as_transport_sockname;
%ignore as_writer_peername;
%ignore as_writer_sockname;
%ignore as_server_sockname;
%ignore as_extra_kind;
%ignore as_extra_info;
%ignore as_extra_info::u;
%ignore as_extra_info_u;
%ignore as_extra_info_u_address;
%ignore as_transport_get_extra_info;
%ignore as_transport_get_write_buffer_limits; /* asw_*_write_buffer_high/low() */
%ignore as_writer_get_write_buffer_limits;

/* Result structs and error details: read through the accessors below. */
%ignore as_incomplete_read;
%ignore as_limit_overrun;
%ignore as_discarded;
%ignore as_gather_result;
%ignore as_future_set_result;         /* asw_future_set_result_none() */
%ignore as_future_set_error_detail;
%ignore as_future_error_detail;
%ignore as_future_result;
%ignore as_future_take_result;
%ignore as_future_set_canceller;      /* asw_future_set_canceller_cb() */
/* A done callback is removed by its (fn, userdata) pair, which a language
 * never has twice: cancel through the future instead. */
%ignore as_future_remove_done_callback;

/* Hooks that run where no language code may run, or that the binding
 * installs itself: the exception handler (its strings live only during
 * the call), the poll hooks (they must not call the loop), the reader's
 * flow control (a transport's) and line iteration (a borrowed line). */
%ignore as_error_context;
%ignore as_exception_handler_fn;
%ignore as_loop_set_exception_handler;
%ignore as_loop_call_exception_handler;
%ignore as_loop_default_exception_handler;
%ignore as_loop_set_poll_hooks;
%ignore as_reader_set_flow_control;
%ignore as_reader_flow_fn;
%ignore as_reader_iter_lines;
%ignore as_reader_line_fn;
%ignore as_reader_exception;          /* asw_reader_error_code()/_message() */
%ignore as_transport_error;           /* asw_transport_error_code()/_message() */

/* Making a task takes a C step function, and awaiting inside one is C
 * control flow; a language runs its own coroutines.  A task made by C is
 * still queried and cancelled through the calls that stay. */
%ignore as_step;
%ignore AS_STEP_AWAIT;
%ignore AS_STEP_DONE;
%ignore as_task_step_fn;
%ignore as_task_new;
%ignore as_task_await;
%ignore as_task_awaited;
%ignore as_task_result;
%ignore as_task_take_result;
%ignore as_task_return;
%ignore as_task_fail;
%ignore as_task_propagate;

/* Implementing a transport is C's business. */
%ignore as_transport_ops;
%ignore as_transport_init;
%ignore as_transport::ops;
%ignore as_transport::loop;
%ignore as_transport::reader;
%ignore as_transport::refs;

/* Name resolution hands back an addrinfo list and formats into a buffer;
 * the connect and server calls resolve for a language. */
%ignore as_getaddrinfo;
%ignore as_gai_message;

/* The library's private range markers. */
%ignore AS__ERR_FIRST;
%ignore AS__ERR_END;

/* References: the destructors below are the one way to let go. */
%ignore as_future_ref;
%ignore as_future_unref;
%ignore as_task_ref;
%ignore as_task_unref;
%ignore as_reader_ref;
%ignore as_reader_unref;
%ignore as_transport_ref;
%ignore as_transport_unref;
%ignore as_writer_ref;
%ignore as_writer_unref;
%ignore as_server_ref;
%ignore as_server_unref;
%ignore as_handle_unref;
%ignore as_semaphore_free;
%ignore as_event_free;
%ignore as_connection_free;
/* Calls that return a pointer the caller does not own; the objects a
 * language holds remember their loop, and the accessors below return
 * references to a writer's transport and reader, a task's future. */
%ignore as_future_loop;
%ignore as_task_loop;
%ignore as_task_future;
%ignore as_reader_loop;
%ignore as_transport_loop;
%ignore as_transport_reader;
%ignore as_writer_loop;
%ignore as_writer_transport;
%ignore as_writer_reader;
%ignore as_server_loop;
/* gather and wait_for take over the futures they are given; the wrapped
 * ones (below) take new references, so the language keeps its own. */
%ignore as_gather;
%ignore as_wait_for;

/* The C structs the language sees only through accessors. */
%ignore as_connection::reader;
%ignore as_connection::writer;
/* The options keep pointers to the caller's strings, which a language's
 * setter could not keep alive: read-only here. */
%immutable as_connect_options::local_host;
%immutable as_connect_options::local_port;

/* ------------------------------------------------------------ checked */

/* Every function whose negative int result is an error code.  A language
 * defines `%typemap(out) int AS_CHECKED` (raise on a negative result)
 * before including this file; the list is applied to it here, once. */
%define AS_CHECKED_FUNCTIONS
    int as_loop_new, int as_loop_new_with_backend, int as_loop_close,
    int as_loop_call_soon, int as_loop_call_end_of_turn,
    int as_loop_call_later, int as_loop_call_at,
    int as_loop_call_soon_threadsafe, int as_loop_add_reader,
    int as_loop_add_writer, int as_loop_run_forever, int as_loop_run_once,
    int as_loop_add_signal_handler, int as_loop_remove_signal_handler,
    int as_loop_run_until_complete,
    int as_future_new, int as_future_set_error, int as_future_set_cancelled,
    int as_future_transfer, int as_future_add_done_callback,
    int asw_future_set_result_none, int asw_future_set_canceller_cb,
    int as_semaphore_new, int as_semaphore_release, int as_event_new,
    int as_reader_new, int as_reader_feed_data, int as_reader_set_exception,
    int as_transport_write, int as_transport_write_eof,
    int as_transport_set_write_buffer_limits,
    int as_transport_pause_reading, int as_transport_resume_reading,
    int as_socket_transport_new, int as_socket_transport_set_coalescing,
    int as_writer_new, int as_writer_write, int as_writer_write_eof,
    int as_writer_set_write_buffer_limits,
    int as_server_socket_fd, int as_server_port,
    int asw_transport_address, int asw_writer_address, int asw_server_address,
    int asw_future_bytes, int asw_future_incomplete_partial
%enddef
%apply int AS_CHECKED { AS_CHECKED_FUNCTIONS };

/* ------------------------------------------------------------ futures */

/* What each future's result is, for shape 3.  A language may define
 * `%typemap(out) as_future *AS_RESULT_<KIND>` for the kinds it converts;
 * it then defines AS_SWIG_RESULT_KINDS.  Otherwise every kind uses its
 * plain as_future * map.
 *   NONE        no result (NULL): sleep, drain, acquire...
 *   BYTES       a byte string: asw_future_bytes()
 *   DISCARDED   a count and a separator index: asw_future_discarded_count()
 *               and asw_future_discarded_separator()
 *   CONNECTION  a reader and a writer: asw_future_connection_reader() and
 *               asw_future_connection_writer()
 *   SERVER      a server: asw_future_server()
 *   GATHER      the children, each done: asw_future_gather_count() and
 *               asw_future_gather_child()
 *   INNER       the result of the call's future argument, moved: a
 *               wait_for's result is its inner future's. */
#ifndef AS_SWIG_RESULT_KINDS
/* A language that does not convert by kind (it does not define
 * AS_SWIG_RESULT_KINDS) gets its plain map for every kind. */
%typemap(out) as_future *AS_RESULT_BYTES = as_future *;
%typemap(out) as_future *AS_RESULT_DISCARDED = as_future *;
%typemap(out) as_future *AS_RESULT_CONNECTION = as_future *;
%typemap(out) as_future *AS_RESULT_SERVER = as_future *;
%typemap(out) as_future *AS_RESULT_GATHER = as_future *;
%typemap(out) as_future *AS_RESULT_INNER = as_future *;
#endif
%apply as_future *AS_RESULT_BYTES {
    as_future *as_reader_read, as_future *as_reader_readexactly,
    as_future *as_reader_readuntil, as_future *as_reader_readuntil_any,
    as_future *as_reader_readline, as_future *as_reader_readline_limit,
    as_future *as_reader_readuntil_ex };
%apply as_future *AS_RESULT_DISCARDED { as_future *as_reader_discard_until };
%apply as_future *AS_RESULT_CONNECTION {
    as_future *as_open_connection, as_future *as_open_unix_connection };
%apply as_future *AS_RESULT_SERVER {
    as_future *as_start_server, as_future *as_start_unix_server };
%apply as_future *AS_RESULT_GATHER { as_future *asw_gather_refs };
%apply as_future *AS_RESULT_INNER { as_future *asw_wait_for_ref };

%newobject as_sleep;
%newobject asw_gather_refs;
%newobject asw_wait_for_ref;
%newobject as_semaphore_acquire;
%newobject as_event_wait;
%newobject as_reader_read;
%newobject as_reader_readexactly;
%newobject as_reader_readuntil;
%newobject as_reader_readuntil_any;
%newobject as_reader_readline;
%newobject as_reader_readline_limit;
%newobject as_reader_readuntil_ex;
%newobject as_reader_discard_until;
%newobject as_transport_wait_writable;
%newobject as_transport_flush;
%newobject as_transport_closed;
%newobject as_writer_drain;
%newobject as_writer_flush;
%newobject as_writer_wait_closed;
%newobject as_open_connection;
%newobject as_open_unix_connection;
%newobject as_start_server;
%newobject as_start_unix_server;
%newobject as_server_start_serving;
%newobject as_server_serve_forever;
%newobject as_server_wait_closed;
%newobject as_server_shutdown;
%newobject asw_task_future_ref;
%newobject asw_future_gather_child;
%newobject asw_future_connection_reader;
%newobject asw_future_connection_writer;
%newobject asw_future_server;
%newobject asw_writer_transport_ref;
%newobject asw_writer_reader_ref;
%newobject asw_transport_reader_ref;


/* ------------------------------------------------------------ headers */

%include "errors.h"
%include "loop.h"
%include "future.h"
%include "task.h"
%include "sync.h"
%include "locks.h"
%include "reader.h"
%include "transport.h"
%include "socket_transport.h"
%include "writer.h"
%include "connect.h"
%include "server.h"

/* ------------------------------------------------------------ classes */

/* One class per object type, each with the destructor that gives its
 * reference back (or, for a value type, frees it). */
#ifndef AS_SWIG_OWN_LOOP
%nodefaultctor as_loop;
struct as_loop {};
%extend as_loop {
    /* The language's last reference to a loop it never closed: close it
     * (its objects keep its memory alive, loop.h rule 1).  A language
     * forgets the pointer once as_loop_close() succeeded, and passes
     * NULL here then. */
    ~as_loop() {
        if (!as_loop_is_closed($self))
            as_loop_close($self);
    }
}
#endif
#ifndef AS_SWIG_OWN_HANDLE
%nodefaultctor as_handle;
struct as_handle {};
%extend as_handle { ~as_handle() { as_handle_unref($self); } }
#endif
#ifndef AS_SWIG_OWN_FUTURE
%nodefaultctor as_future;
struct as_future {};
%extend as_future { ~as_future() { as_future_unref($self); } }
#endif
#ifndef AS_SWIG_OWN_READER
%nodefaultctor as_reader;
struct as_reader {};
%extend as_reader { ~as_reader() { as_reader_unref($self); } }
#endif
%nodefaultctor as_task;
struct as_task {};
%extend as_task { ~as_task() { as_task_unref($self); } }
%nodefaultctor as_transport;
%extend as_transport { ~as_transport() { as_transport_unref($self); } }
%nodefaultctor as_writer;
struct as_writer {};
%extend as_writer { ~as_writer() { as_writer_unref($self); } }
%nodefaultctor as_server;
struct as_server {};
%extend as_server { ~as_server() { as_server_unref($self); } }
%nodefaultctor as_semaphore;
struct as_semaphore {};
%extend as_semaphore { ~as_semaphore() { as_semaphore_free($self); } }
%nodefaultctor as_event;
struct as_event {};
%extend as_event { ~as_event() { as_event_free($self); } }
%nodefaultctor as_connection;
%extend as_connection { ~as_connection() { as_connection_free($self); } }

/* ------------------------------------------------------------ accessors */

/* A socket address as a language sees one: a family, a host and a port
 * (IPv4, IPv6) or a path (Unix).  Made by the language, filled by the
 * address accessors below. */
%inline %{
typedef struct asw_address {
    int family;                   /**< AF_INET, AF_INET6 or AF_UNIX */
    char host[INET6_ADDRSTRLEN];  /**< numeric host, "" for AF_UNIX */
    int port;                     /**< the port, 0 for AF_UNIX */
    char path[108];               /**< the Unix path, "" otherwise */
} asw_address;
%}

%{
/* Fill a from a socket address; AS_EINVAL for a family we do not know. */
static int asw_address_from(const struct sockaddr_storage *ss, socklen_t len,
                                 asw_address *a)
{
    memset(a, 0, sizeof *a);
    a->family = ss->ss_family;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, a->host, sizeof a->host);
        a->port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, a->host, sizeof a->host);
        a->port = ntohs(in6->sin6_port);
    } else if (ss->ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)ss;
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? (size_t)len - offsetof(struct sockaddr_un, sun_path) : 0;
        if (n >= sizeof a->path)
            n = sizeof a->path - 1;
        memcpy(a->path, un->sun_path, n);
        a->path[n] = '\0';
    } else {
        return AS_EINVAL;
    }
    return 0;
}

static int asw_transport_address(const as_transport *t, int peer, asw_address *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int rc;

    if (!out)
        return AS_EINVAL;
    rc = peer ? as_transport_peername(t, &ss, &len) : as_transport_sockname(t, &ss, &len);
    return rc < 0 ? rc : asw_address_from(&ss, len, out);
}

static int asw_writer_address(const as_writer *w, int peer, asw_address *out)
{
    return asw_transport_address(as_writer_transport(w), peer, out);
}

static int asw_server_address(const as_server *s, size_t i, asw_address *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int rc;

    if (!out)
        return AS_EINVAL;
    rc = as_server_sockname(s, i, &ss, &len);
    return rc < 0 ? rc : asw_address_from(&ss, len, out);
}

static int asw_future_set_result_none(as_future *f)
{
    return as_future_set_result(f, NULL, NULL);
}

/* A done future's result as a byte string: a view valid while the future
 * holds it.  AS_ESTATE while pending, the error once failed; AS_EINVAL if
 * it has no result (a read's result is never NULL). */
static int asw_future_bytes(as_future *f, const void **bytes, size_t *nbytes)
{
    const as_bytes *b;
    int rc;

    *bytes = NULL;
    *nbytes = 0;
    if ((rc = as_future_error(f)) < 0)
        return rc;
    if (!(b = as_future_result(f)))
        return AS_EINVAL;
    *bytes = b->data;
    *nbytes = b->len;
    return 0;
}

/* An IncompleteReadError's partial bytes (AS_EINVAL when the future did
 * not fail with AS_EINCOMPLETE) and expected count (-1: undefined). */
static int asw_future_incomplete_partial(as_future *f, const void **bytes, size_t *nbytes)
{
    const as_incomplete_read *ir;

    *bytes = NULL;
    *nbytes = 0;
    if (as_future_error(f) != AS_EINCOMPLETE || !(ir = as_future_error_detail(f)))
        return AS_EINVAL;
    if (ir->partial) {
        *bytes = ir->partial->data;
        *nbytes = ir->partial->len;
    }
    return 0;
}

static long long asw_future_incomplete_expected(as_future *f)
{
    const as_incomplete_read *ir;

    if (as_future_error(f) != AS_EINCOMPLETE || !(ir = as_future_error_detail(f)))
        return -1;
    return ir->expected;
}

/* A LimitOverrunError's `consumed` (0 when it is not one). */
static size_t asw_future_limit_consumed(as_future *f)
{
    const as_limit_overrun *lo;

    if (as_future_error(f) != AS_ELIMIT || !(lo = as_future_error_detail(f)))
        return 0;
    return lo->consumed;
}

/* discard_until()'s result: bytes dropped and which separator matched
 * (0 for a future that has no such result). */
static unsigned long long asw_future_discarded_count(as_future *f)
{
    const as_discarded *d = as_future_error(f) == 0 ? as_future_result(f) : NULL;
    return d ? d->count : 0;
}

static size_t asw_future_discarded_separator(as_future *f)
{
    const as_discarded *d = as_future_error(f) == 0 ? as_future_result(f) : NULL;
    return d ? d->separator : 0;
}

/* The write buffer's limits, one number each. */
static size_t asw_transport_write_buffer_high(const as_transport *t)
{
    size_t high = 0;
    as_transport_get_write_buffer_limits(t, &high, NULL);
    return high;
}

static size_t asw_transport_write_buffer_low(const as_transport *t)
{
    size_t low = 0;
    as_transport_get_write_buffer_limits(t, NULL, &low);
    return low;
}

/* A connection future's reader and writer, as new references: the
 * future keeps its own, and frees them with itself. */
static as_reader *asw_future_connection_reader(as_future *f)
{
    const as_connection *c = as_future_error(f) == 0 ? as_future_result(f) : NULL;
    return c ? as_reader_ref(c->reader) : NULL;
}

static as_writer *asw_future_connection_writer(as_future *f)
{
    const as_connection *c = as_future_error(f) == 0 ? as_future_result(f) : NULL;
    return c ? as_writer_ref(c->writer) : NULL;
}

/* A start_server future's server, as a new reference. */
static as_server *asw_future_server(as_future *f)
{
    as_server *s = as_future_error(f) == 0 ? as_future_result(f) : NULL;
    return s ? as_server_ref(s) : NULL;
}

/* A gather's children: how many, and child i as a new reference. */
static size_t asw_future_gather_count(as_future *f)
{
    const as_gather_result *g = as_future_error(f) == 0 ? as_future_result(f) : NULL;
    return g ? g->count : 0;
}

static as_future *asw_future_gather_child(as_future *f, size_t i)
{
    const as_gather_result *g = as_future_error(f) == 0 ? as_future_result(f) : NULL;
    return g && i < g->count ? as_future_ref(g->futures[i]) : NULL;
}

/* gather and wait_for that leave the caller its references. */
static as_future *asw_gather_refs(as_loop *loop, as_future *const *futures, size_t count,
                                 int return_exceptions)
{
    size_t i;

    for (i = 0; futures && i < count; i++)
        as_future_ref(futures[i]);
    return as_gather(loop, futures, count, return_exceptions);
}

static as_future *asw_wait_for_ref(as_loop *loop, as_future *future, double timeout)
{
    return as_wait_for(loop, future ? as_future_ref(future) : NULL, timeout);
}

/* References for the calls that return borrowed pointers. */
static as_future *asw_task_future_ref(const as_task *t)
{
    as_future *f = as_task_future(t);
    return f ? as_future_ref(f) : NULL;
}

static as_transport *asw_writer_transport_ref(const as_writer *w)
{
    as_transport *t = as_writer_transport(w);
    return t ? as_transport_ref(t) : NULL;
}

static as_reader *asw_writer_reader_ref(const as_writer *w)
{
    as_reader *r = as_writer_reader(w);
    return r ? as_reader_ref(r) : NULL;
}

static as_reader *asw_transport_reader_ref(const as_transport *t)
{
    as_reader *r = as_transport_reader(t);
    return r ? as_reader_ref(r) : NULL;
}

/* The stored errors, without a char ** out-parameter. */
static int asw_reader_error_code(const as_reader *r)
{
    return as_reader_exception(r, NULL);
}

static const char *asw_reader_error_message(const as_reader *r)
{
    const char *m = NULL;
    as_reader_exception(r, &m);
    return m;
}

static int asw_transport_error_code(const as_transport *t)
{
    return as_transport_error(t, NULL);
}

static const char *asw_transport_error_message(const as_transport *t)
{
    const char *m = NULL;
    as_transport_error(t, &m);
    return m;
}

/* The buffered bytes, copied out by the language (see as_reader_peek()). */
static void asw_reader_peek_bytes(const as_reader *r, const void **bytes, size_t *nbytes)
{
    const unsigned char *d = NULL;
    *nbytes = as_reader_peek(r, &d);
    *bytes = d;
}

/* A canceller as shape 1: fn(userdata) runs inside as_future_cancel()
 * while the future is pending and requests the stop (the work then
 * completes the future, normally with as_future_set_cancelled()).
 * destroy(userdata) runs once the future is done or freed. */
struct asw_canceller {
    as_callback_fn fn;
    void *userdata;
    as_destroy_fn destroy;
};

static int asw_canceller_call(as_future *f, const char *message, void *userdata)
{
    struct asw_canceller *c = userdata;
    (void)f;
    (void)message;
    c->fn(c->userdata);
    return 1;
}

static void asw_canceller_done(as_future *f, void *userdata)
{
    (void)f;
    (void)userdata;
}

static void asw_canceller_free(void *userdata)
{
    struct asw_canceller *c = userdata;
    if (c->destroy)
        c->destroy(c->userdata);
    free(c);
}

static int asw_future_set_canceller_cb(as_future *f, as_callback_fn fn, void *userdata,
                                      as_destroy_fn destroy)
{
    struct asw_canceller *c;
    int rc;

    if (!f || !fn)
        return AS_EINVAL;
    if (as_future_done(f))
        return AS_ESTATE;
    if (!(c = malloc(sizeof *c)))
        return -ENOMEM;
    c->fn = fn;
    c->userdata = userdata;
    c->destroy = NULL; /* set once both calls succeeded (design rule 3) */
    if ((rc = as_future_add_done_callback(f, asw_canceller_done, c, asw_canceller_free)) < 0) {
        free(c);
        return rc;
    }
    /* From here the done callback frees c; if the canceller cannot be set
     * it frees it with destroy still NULL, leaving userdata the caller's. */
    if ((rc = as_future_set_canceller(f, asw_canceller_call, c)) < 0)
        return rc;
    c->destroy = destroy;
    return 0;
}
%}

int asw_transport_address(const as_transport *t, int peer, asw_address *out);
int asw_writer_address(const as_writer *w, int peer, asw_address *out);
int asw_server_address(const as_server *s, size_t i, asw_address *out);
int asw_future_set_result_none(as_future *f);
int asw_future_bytes(as_future *f, const void **bytes, size_t *nbytes);
int asw_future_incomplete_partial(as_future *f, const void **bytes, size_t *nbytes);
long long asw_future_incomplete_expected(as_future *f);
size_t asw_future_limit_consumed(as_future *f);
unsigned long long asw_future_discarded_count(as_future *f);
size_t asw_future_discarded_separator(as_future *f);
size_t asw_transport_write_buffer_high(const as_transport *t);
size_t asw_transport_write_buffer_low(const as_transport *t);
as_reader *asw_future_connection_reader(as_future *f);
as_writer *asw_future_connection_writer(as_future *f);
as_server *asw_future_server(as_future *f);
size_t asw_future_gather_count(as_future *f);
as_future *asw_future_gather_child(as_future *f, size_t i);
as_future *asw_gather_refs(as_loop *loop, as_future *const *futures, size_t count,
                          int return_exceptions);
as_future *asw_wait_for_ref(as_loop *loop, as_future *future, double timeout);
as_future *asw_task_future_ref(const as_task *t);
as_transport *asw_writer_transport_ref(const as_writer *w);
as_reader *asw_writer_reader_ref(const as_writer *w);
as_reader *asw_transport_reader_ref(const as_transport *t);
int asw_reader_error_code(const as_reader *r);
const char *asw_reader_error_message(const as_reader *r);
int asw_transport_error_code(const as_transport *t);
const char *asw_transport_error_message(const as_transport *t);
void asw_reader_peek_bytes(const as_reader *r, const void **bytes, size_t *nbytes);
int asw_future_set_canceller_cb(as_future *f, as_callback_fn fn, void *userdata,
                               as_destroy_fn destroy);
