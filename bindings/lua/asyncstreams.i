/*
 * bindings/lua/asyncstreams.i - the Lua 5.4 module asyncstreams.core.
 *
 * SWIG wraps the C API through the shared bindings/swig/asyncstreams.i;
 * this file gives the Lua answers to the shapes it names, with the C
 * runtime in luart.c:
 *   1. a Lua function for (fn, userdata, destroy): userdata is a struct
 *      lcb holding a registry reference, which destroy releases;
 *   2. an as_x **out: an extra result, an object whose __gc gives the
 *      reference back;
 *   3. an as_future *: a future object that remembers its result kind;
 *   4. a done callback: a Lua function called with the future;
 * and negative codes raised as error objects.  The coroutine layer that
 * makes futures awaitable is Lua: bindings/lua/asyncstreams.lua.
 *
 * Built with: swig -lua -o core_wrap.c (the module is
 * asyncstreams_core, so luaopen_asyncstreams_core, which
 * require("asyncstreams.core") finds in asyncstreams/core.so).
 */
%module asyncstreams_core

%{
#include "asyncstreams.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
%}

/* ---------------------------------------------------------------- errors */

/* A negative result raises its error object. */
%typemap(out) int AS_CHECKED {
    if ($1 < 0) {
        lrt_push_error(L, $1, NULL);
        SWIG_fail;
    }
    lua_pushinteger(L, $1);
    SWIG_arg++;
}

/* Whole numbers as Lua integers, not floats (a truth value is 0 or 1). */
%typemap(out) int, long, long long, unsigned, unsigned long, unsigned long long, size_t
    "lua_pushinteger(L, (lua_Integer)$1); SWIG_arg++;"

/* ---------------------------------------------------------------- shape 1 */

/* listing: callback-typemap */
%typemap(in) (as_callback_fn fn, void *userdata, as_destroy_fn destroy) (struct lcb *cb = NULL) {
    cb = lcb_new(L, $input);
    $1 = lcb_call;
    $2 = cb;
    $3 = lcb_destroy;
}
/* The C calls taking one are all checked: argout runs only on success. */
%typemap(argout) (as_callback_fn fn, void *userdata, as_destroy_fn destroy) {
    lcb_take(L, cb$argnum, $input);
    cb$argnum = NULL; /* the library's now, or freed */
}
%typemap(freearg) (as_callback_fn fn, void *userdata, as_destroy_fn destroy) {
    lcb_discard(cb$argnum);
}
/* end listing */

/* The server's callback; the start calls fail by returning NULL. */
%typemap(in) (as_client_connected_fn cb, void *userdata, as_destroy_fn destroy) (struct lcb *cb = NULL) {
    cb = lcb_new(L, $input);
    $1 = lcb_client;
    $2 = cb;
    $3 = lcb_destroy;
}
%typemap(argout) (as_client_connected_fn cb, void *userdata, as_destroy_fn destroy) {
    if (result)
        lcb_take(L, cb$argnum, $input), cb$argnum = NULL;
}
%typemap(freearg) (as_client_connected_fn cb, void *userdata, as_destroy_fn destroy) {
    lcb_discard(cb$argnum);
}

/* ---------------------------------------------------------------- shape 4 */

%typemap(in) (as_future_cb fn, void *userdata, as_destroy_fn destroy) (struct lcb *cb = NULL) {
    cb = lcb_new(L, $input);
    $1 = lcb_done;
    $2 = cb;
    $3 = lcb_destroy;
}
%typemap(argout) (as_future_cb fn, void *userdata, as_destroy_fn destroy) {
    lcb_take(L, cb$argnum, $input);
    cb$argnum = NULL; /* the library's now, or freed */
}
%typemap(freearg) (as_future_cb fn, void *userdata, as_destroy_fn destroy) {
    lcb_discard(cb$argnum);
}

/* ---------------------------------------------------------------- shape 2 */

%typemap(in, numinputs=0) SWIGTYPE **out ($*1_ltype tmp = NULL) {
    $1 = &tmp;
}
%typemap(argout) SWIGTYPE **out {
    SWIG_NewPointerObj(L, tmp$argnum, $*1_descriptor, 1);
    SWIG_arg++;
}

/* ---------------------------------------------------------------- shape 3 */

#define AS_SWIG_RESULT_KINDS
%typemap(out) as_future * {
    if (lrt_push_future(L, $1, LRT_NONE) < 0)
        SWIG_fail;
    SWIG_arg++;
}
%typemap(out) as_future *AS_RESULT_BYTES {
    if (lrt_push_future(L, $1, LRT_BYTES) < 0)
        SWIG_fail;
    SWIG_arg++;
}
%typemap(out) as_future *AS_RESULT_DISCARDED {
    if (lrt_push_future(L, $1, LRT_DISCARDED) < 0)
        SWIG_fail;
    SWIG_arg++;
}
%typemap(out) as_future *AS_RESULT_CONNECTION {
    if (lrt_push_future(L, $1, LRT_CONNECTION) < 0)
        SWIG_fail;
    SWIG_arg++;
}
%typemap(out) as_future *AS_RESULT_SERVER {
    if (lrt_push_future(L, $1, LRT_SERVER) < 0)
        SWIG_fail;
    SWIG_arg++;
}
%typemap(out) as_future *AS_RESULT_GATHER {
    if (lrt_push_future(L, $1, LRT_GATHER) < 0)
        SWIG_fail;
    SWIG_arg++;
}
/* wait_for's future (argument 2) passes its kind on with its result. */
%typemap(out) as_future *AS_RESULT_INNER {
    if (lrt_push_future(L, $1, lrt_kind_at(L, 2)) < 0)
        SWIG_fail;
    SWIG_arg++;
}

/* The accessors answer nil where there is no such future. */
%typemap(out) as_future *asw_future_gather_child, as_future *asw_task_future_ref {
    if (!$1)
        lua_pushnil(L);
    else
        lrt_push_future(L, $1, LRT_NONE);
    SWIG_arg++;
}

/* A list of futures: a Lua sequence (gather). */
%typemap(in) (as_future *const *futures, size_t count) (as_future **list = NULL) {
    size_t i, n;
    luaL_checktype(L, $input, LUA_TTABLE);
    n = (size_t)luaL_len(L, $input);
    if (n && !(list = calloc(n, sizeof *list)))
        SWIG_fail;
    for (i = 0; i < n; i++) {
        void *p = NULL;
        lua_rawgeti(L, $input, (lua_Integer)i + 1);
        if (!SWIG_IsOK(SWIG_ConvertPtr(L, -1, &p, SWIGTYPE_p_as_future, 0))) {
            lua_pop(L, 1);
            lua_pushfstring(L, "item %d is not a future", (int)i + 1);
            SWIG_fail;
        }
        lua_pop(L, 1);
        list[i] = p;
    }
    $1 = list;
    $2 = n;
}
%typemap(freearg) (as_future *const *futures, size_t count) {
    free(list$argnum);
}

/* ---------------------------------------------------------------- bytes */

/* In: a Lua string (its bytes, NULs included). */
%typemap(in) (const void *data, size_t len) {
    size_t n;
    $1 = (void *)luaL_checklstring(L, $input, &n);
    $2 = n;
}
%typemap(in) (const void *separator, size_t seplen) = (const void *data, size_t len);

/* Out: copied into a Lua string. */
%typemap(in, numinputs=0) (const void **bytes, size_t *nbytes) (const void *p = NULL, size_t n = 0) {
    $1 = ($1_ltype)&p;
    $2 = &n;
}
%typemap(argout) (const void **bytes, size_t *nbytes) {
    lua_pushlstring(L, p$argnum ? p$argnum : "", n$argnum);
    SWIG_arg++;
}

/* Separators: a sequence of strings (readuntil's tuple). */
%typemap(in) (const as_separator *seps, size_t nseps) (as_separator *list = NULL) {
    size_t i, n;
    luaL_checktype(L, $input, LUA_TTABLE);
    n = (size_t)luaL_len(L, $input);
    if (n && !(list = calloc(n, sizeof *list)))
        SWIG_fail;
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, $input, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            lua_pushfstring(L, "separator %d is not a string", (int)i + 1);
            SWIG_fail;
        }
        /* The string stays alive in the table for the call, and a read
         * that waits copies it (reader.h rule 5). */
        list[i].data = lua_tolstring(L, -1, &list[i].len);
        lua_pop(L, 1);
    }
    $1 = list;
    $2 = n;
}
%typemap(freearg) (const as_separator *seps, size_t nseps) {
    free(list$argnum);
}

/* ---------------------------------------------------------------- loop */

/* Every call notes the thread it runs on, where the callbacks it runs
 * run (the third of the lifetimes in luart.c); running a loop also
 * notes the loop, which a callback's error stops. */
%exception {
    struct lrt *rt = lrt_get(L);
    lua_State *outer = rt->current;
    rt->current = L;
    $action
    rt->current = outer;
}
%define LRT_RUNS_LOOP(NAME)
%exception NAME {
    struct lrt *rt = lrt_get(L);
    lua_State *outer = rt->current;
    as_loop *outer_loop = rt->running;
    rt->current = L;
    rt->running = arg1;
    $action
    rt->current = outer;
    rt->running = outer_loop;
}
%enddef
LRT_RUNS_LOOP(as_loop_run_forever)
LRT_RUNS_LOOP(as_loop_run_once)
LRT_RUNS_LOOP(as_loop_run_until_complete)
/* A loop closed for good is forgotten, so no later call reaches its
 * memory (the NULL loop gets AS_EINVAL). */
%exception as_loop_close {
    struct lrt *rt = lrt_get(L);
    lua_State *outer = rt->current;
    rt->current = L;
    $action
    rt->current = outer;
    if (result >= 0)
        ((swig_lua_userdata *)lua_touserdata(L, 1))->ptr = NULL;
}

%include "../swig/asyncstreams.i"

/* ---------------------------------------------------------------- runtime */

%{
#include "luart.c"
%}

%native(result) int lrt_result(lua_State *L);
%native(error) int lrt_future_error(lua_State *L);
%native(catch_errors) int lrt_catch_errors(lua_State *L);
%native(raise_later) int lrt_raise_later_native(lua_State *L);
%native(take_error) int lrt_take_error(lua_State *L);
%native(error_object) int lrt_error_object(lua_State *L);

%init %{
    lrt_init(L);
%}
