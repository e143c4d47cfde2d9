/*
 * asyncstreams.i - the C API as every language binding sees it.
 *
 * This file is shared.  It says which parts of the public headers a
 * scripting language gets and how their shapes map, but nothing about any
 * one language: each language's top file (bindings/<language>/*.i) sets
 * %module, defines the typemaps named below, and then %includes this file.
 *
 * What a language file must provide (the C API's three recurring shapes):
 *   1. (as_callback_fn fn, void *userdata, as_destroy_fn destroy): one
 *      argument in the language, a callable.  userdata owns a reference to
 *      it, destroy drops the reference: the loop calls destroy exactly once
 *      (loop.h), so no callback object can leak or be freed too early.
 *   2. as_handle **out: an extra result, a handle object whose destructor is
 *      as_handle_unref().
 *   3. as_future *: the language's awaitable (or callback-taking) object,
 *      owning the reference the C call returned.
 * Functions returning a negative error code are listed in AS_CHECKED so a
 * language can turn a negative result into its own exception.
 *
 * Docstrings come from the headers' Doxygen comments (swig -doxygen).
 */

%{
#include "asyncstreams.h"
%}

%include <stdint.i>

/* size_t / ssize_t as plain integers. */
typedef long ssize_t;

/* Internal or not meaningful outside C: raw memory, the buffer type, the
 * exception-handler plumbing (the binding installs its own), the iteration
 * and flow-control hooks (a transport's business). */
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
%ignore as_error_context;
%ignore as_loop_set_exception_handler;
%ignore as_loop_call_exception_handler;
%ignore as_loop_default_exception_handler;
%ignore as_loop_set_poll_hooks;
%ignore as_future_set_result;
%ignore as_future_set_error_detail;
%ignore as_future_error_detail;
%ignore as_future_result;
%ignore as_future_take_result;
%ignore as_future_add_done_callback;
%ignore as_future_remove_done_callback;
%ignore as_future_ref;
%ignore as_future_unref;
%ignore as_reader_ref;
%ignore as_reader_unref;
%ignore as_reader_feed_reserve;
%ignore as_reader_feed_commit;
%ignore as_reader_iter_lines;
%ignore as_reader_set_flow_control;
%ignore as_reader_peek;
%ignore as_reader_exception;
%ignore as_reader_readuntil_any;
%ignore as_reader_readuntil_ex;
%ignore as_reader_discard_until;
%ignore as_incomplete_read;
%ignore as_limit_overrun;
%ignore as_separator;
%ignore as_discarded;
%ignore as_loop_new;
%ignore as_loop_new_with_backend;
%ignore as_reader_new;
%ignore as_handle_unref;

/* Functions whose negative int result is an error code. */
#define AS_CHECKED_FUNCTIONS \
    as_loop_close, as_loop_call_soon, as_loop_call_later, as_loop_call_at, \
    as_loop_call_soon_threadsafe, as_loop_add_reader, as_loop_add_writer, \
    as_loop_run_forever, as_loop_run_once, as_future_set_error, \
    as_loop_run_until_complete, as_reader_feed_data, as_reader_set_exception

%include "errors.h"
%include "loop.h"
%include "future.h"
%include "reader.h"
