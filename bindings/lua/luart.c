/*
 * luart.c - the Lua binding's C runtime, included into the SWIG wrapper
 * (bindings/lua/asyncstreams.i), whose typemaps call it.
 *
 *   - Callbacks: a Lua function handed to C (shapes 1 and 4 of the shared
 *     bindings/swig/asyncstreams.i) becomes a struct lcb holding a
 *     registry reference to it; the destroy hook drops the reference.
 *   - Errors: a negative code becomes an error object, a table with the
 *     metatable "asyncstreams.Error" (type, code, name, message, and for
 *     the stream errors partial/expected or consumed).
 *   - The pending error: an error raised inside a callback, or reported
 *     to the loop's exception handler, is kept here and the loop stopped,
 *     so the Lua code that runs the loop raises it (take_error()).
 *   - Results: each future object remembers its result kind (its user
 *     value), so result() converts any future's result.
 *
 * Lifetimes:
 *   1. One struct lrt per Lua state, a full userdata in the registry,
 *      freed with the state (after every finalizer has run).
 *   2. An lcb is made by a typemap before the C call and becomes the
 *      library's (live) only once the call succeeded; until then its
 *      destroy hook only marks it dead (a call may release what it took
 *      before it returns), and a failed call's typemap frees it.
 *   3. Callbacks run on the Lua thread whose wrapped call runs them
 *      (rt->current, set around every wrapped call: the thread running the
 *      loop, or a task that cancels a future and so runs its canceller).
 *      A destroy hook drops its registry reference on that thread, or,
 *      from a finalizer outside any call, on the main thread: it only
 *      pushes and pops, and runs no Lua code.
 */
#include <lua.h>
#include <lauxlib.h>

/* The registry keys: addresses that are unique, never their contents. */
static const char lrt_key_state = 's';
static const char lrt_key_error = 'e';

#define LRT_ERROR_META "asyncstreams.Error"

/* Result kinds of the shared file's AS_RESULT_* names. */
enum lrt_kind { LRT_NONE, LRT_BYTES, LRT_DISCARDED, LRT_CONNECTION, LRT_SERVER, LRT_GATHER };

struct lrt {
    lua_State *main;    /* the state's main thread */
    lua_State *current; /* the thread inside a wrapped call, or NULL */
    as_loop *running;   /* the loop as_loop_run_*() runs, or NULL */
};

static struct lrt *lrt_get(lua_State *L)
{
    struct lrt *rt;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &lrt_key_state);
    rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return rt;
}

static lua_State *lrt_thread(const struct lrt *rt)
{
    return rt->current ? rt->current : rt->main;
}

/* ------------------------------------------------------------ errors */

/* The exception each code is, by the names of errors.h's third column
 * (and of Python's OSError subclasses for the system errors). */
static const char *lrt_error_type(int code)
{
    switch (code) {
#define LRT_TYPE(name, msg, py) case AS_E##name: return #py;
        AS_LIB_ERRORS(LRT_TYPE)
#undef LRT_TYPE
    case -ECONNREFUSED: return "ConnectionRefusedError";
    case -ECONNRESET: return "ConnectionResetError";
    case -ECONNABORTED: return "ConnectionAbortedError";
    case -EPIPE: return "BrokenPipeError";
    case -ETIMEDOUT: return "TimeoutError";
    case -ENOENT: return "FileNotFoundError";
    case -ENOMEM: return "MemoryError";
    default: return "OSError";
    }
}

/* Push an error object for code, with message (NULL: as_strerror()). */
static void lrt_push_error(lua_State *L, int code, const char *message)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, lrt_error_type(code));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, as_err_name(code));
    lua_setfield(L, -2, "name");
    lua_pushstring(L, message ? message : as_strerror(code));
    lua_setfield(L, -2, "message");
    luaL_setmetatable(L, LRT_ERROR_META);
}

/* Push the error object of a done future that failed, with the stream
 * errors' details; pushes nil if it has no error. */
static void lrt_push_future_error(lua_State *L, as_future *f)
{
    const void *p;
    size_t n;
    int code;

    if (!as_future_done(f) || (code = as_future_error(f)) == 0) {
        lua_pushnil(L);
        return;
    }
    lrt_push_error(L, code, as_future_error_message(f));
    if (code == AS_EINCOMPLETE && asw_future_incomplete_partial(f, &p, &n) == 0) {
        lua_pushlstring(L, p, n);
        lua_setfield(L, -2, "partial");
        lua_pushinteger(L, asw_future_incomplete_expected(f));
        lua_setfield(L, -2, "expected");
    } else if (code == AS_ELIMIT) {
        lua_pushinteger(L, (lua_Integer)asw_future_limit_consumed(f));
        lua_setfield(L, -2, "consumed");
    }
}

static int lrt_error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "type");
    lua_getfield(L, 1, "message");
    lua_pushfstring(L, "%s: %s", luaL_optstring(L, -2, "Error"), luaL_optstring(L, -1, ""));
    return 1;
}

/* Keep the value on top of L as the pending error (the first one wins),
 * pop it, and stop loop (NULL: the loop running) so that whoever runs it
 * raises the error. */
static void lrt_raise_later(lua_State *L, as_loop *loop)
{
    if (!loop)
        loop = lrt_get(L)->running;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &lrt_key_error);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &lrt_key_error);
    } else {
        lua_pop(L, 2);
    }
    as_loop_stop(loop);
}

/* The loop's exception handler: what the library could hand to nobody
 * (a future's error never retrieved, an unclosed writer, a handler's
 * failure) becomes the pending error instead of a line on stderr. */
static void lrt_exception_handler(as_loop *loop, const as_error_context *ctx, void *userdata)
{
    lua_State *L = lrt_thread(userdata);
    char text[512];

    if (!lua_checkstack(L, 4))
        return;
    snprintf(text, sizeof text, "%s%s%s", ctx->message ? ctx->message : "unhandled error",
             ctx->detail ? ": " : "", ctx->detail ? ctx->detail : "");
    lrt_push_error(L, ctx->code < 0 ? ctx->code : AS_EUNHANDLED, text);
    lrt_raise_later(L, loop);
}

/* ------------------------------------------------------------ callbacks */

struct lcb {
    struct lrt *rt;
    int ref;       /* the function's registry reference, once live */
    int live;      /* the C call succeeded: the library owns this */
    int dead;      /* destroyed before it became live */
};

static struct lcb *lcb_new(lua_State *L, int index)
{
    struct lcb *c;

    luaL_checktype(L, index, LUA_TFUNCTION);
    if (!(c = malloc(sizeof *c)))
        luaL_error(L, "out of memory");
    c->rt = lrt_get(L);
    c->ref = LUA_NOREF;
    c->live = 0;
    c->dead = 0;
    return c;
}

/* After a successful call: take the reference, unless the call already
 * let go of the callback (then nothing was taken). */
static void lcb_take(lua_State *L, struct lcb *c, int index)
{
    if (c->dead) {
        free(c);
        return;
    }
    lua_pushvalue(L, index);
    c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    c->live = 1;
}

/* After a failed call (c not yet taken): the library never saw it
 * (design rule 3).  After lcb_take() the typemaps pass NULL. */
static void lcb_discard(struct lcb *c)
{
    free(c);
}

/* listing: lcb-destroy */
static void lcb_destroy(void *userdata)
{
    struct lcb *c = userdata;

    if (!c->live) {
        c->dead = 1;
        return;
    }
    luaL_unref(lrt_thread(c->rt), LUA_REGISTRYINDEX, c->ref);
    free(c);
}
/* end listing */

/* Call the function with the nargs values on top of L's stack (above it);
 * nres results stay on the stack.  Returns 0, or -1 after an error, which
 * is then pending and the loop stopped. */
static int lcb_pcall(lua_State *L, as_loop *loop, int nargs, int nres)
{
    if (lua_pcall(L, nargs, nres, 0) == LUA_OK)
        return 0;
    lrt_raise_later(L, loop);
    return -1;
}

/* listing: lcb-call */
/* Shape 1: fn(). */
static void lcb_call(void *userdata)
{
    struct lcb *c = userdata;
    lua_State *L = lrt_thread(c->rt);

    lua_checkstack(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
    lcb_pcall(L, NULL, 0, 0);
}
/* end listing */

/* Shape 4: fn(future), with a new reference to the future. */
static void lcb_done(as_future *f, void *userdata)
{
    struct lcb *c = userdata;
    lua_State *L = lrt_thread(c->rt);

    lua_checkstack(L, 3);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
    SWIG_NewPointerObj(L, as_future_ref(f), SWIGTYPE_p_as_future, 1);
    lcb_pcall(L, as_future_loop(f), 1, 0);
}

/* The server's callback: fn(reader, writer), each a new reference.  A
 * future it returns is handed to the server to watch. */
static as_future *lcb_client(as_reader *r, as_writer *w, void *userdata)
{
    struct lcb *c = userdata;
    lua_State *L = lrt_thread(c->rt);
    as_future *ret = NULL;
    void *p = NULL;

    lua_checkstack(L, 4);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
    SWIG_NewPointerObj(L, r, SWIGTYPE_p_as_reader, 1);
    SWIG_NewPointerObj(L, w, SWIGTYPE_p_as_writer, 1);
    if (lcb_pcall(L, as_reader_loop(r), 2, 1) < 0) {
        as_writer_close(w); /* nobody will: the client sees EOF */
        return NULL;
    }
    if (!lua_isnil(L, -1) && SWIG_IsOK(SWIG_ConvertPtr(L, -1, &p, SWIGTYPE_p_as_future, 0)) && p)
        ret = as_future_ref(p);
    lua_pop(L, 1);
    return ret;
}

/* ------------------------------------------------------------ futures */

/* Push a future the caller owns, remembering its result kind; a NULL
 * future raises (the call could not make one). */
static int lrt_push_future(lua_State *L, as_future *f, int kind)
{
    if (!f) {
        lrt_push_error(L, AS_ECLOSED,
                       "no future: the loop is closed, an argument is NULL or memory ran out");
        return -1;
    }
    SWIG_NewPointerObj(L, f, SWIGTYPE_p_as_future, 1);
    lua_pushinteger(L, kind);
    lua_setiuservalue(L, -2, 1);
    return 0;
}

static int lrt_kind_at(lua_State *L, int index)
{
    int kind = LRT_NONE;
    if (lua_type(L, index) == LUA_TUSERDATA) {
        lua_getiuservalue(L, index, 1);
        kind = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    return kind;
}

static as_future *lrt_check_future(lua_State *L, int index)
{
    void *p = NULL;
    if (!SWIG_IsOK(SWIG_ConvertPtr(L, index, &p, SWIGTYPE_p_as_future, 0)) || !p)
        luaL_argerror(L, index, "an asyncstreams future is required");
    return p;
}

/* result(future): the result of a future that finished, converted by its
 * kind (nothing for NONE and GATHER), or raises its error object. */
static int lrt_result(lua_State *L)
{
    as_future *f = lrt_check_future(L, 1);
    int kind = lrt_kind_at(L, 1);
    const void *p;
    size_t n;

    if (!as_future_done(f)) {
        lrt_push_error(L, AS_ESTATE, "Result is not set.");
        return lua_error(L);
    }
    lrt_push_future_error(L, f);
    if (!lua_isnil(L, -1))
        return lua_error(L);
    lua_pop(L, 1);
    switch (kind) {
    case LRT_BYTES:
        if (asw_future_bytes(f, &p, &n) < 0)
            return 0;
        lua_pushlstring(L, p, n);
        return 1;
    case LRT_DISCARDED:
        lua_pushinteger(L, (lua_Integer)asw_future_discarded_count(f));
        lua_pushinteger(L, (lua_Integer)asw_future_discarded_separator(f) + 1);
        return 2;
    case LRT_CONNECTION:
        SWIG_NewPointerObj(L, asw_future_connection_reader(f), SWIGTYPE_p_as_reader, 1);
        SWIG_NewPointerObj(L, asw_future_connection_writer(f), SWIGTYPE_p_as_writer, 1);
        return 2;
    case LRT_SERVER:
        SWIG_NewPointerObj(L, asw_future_server(f), SWIGTYPE_p_as_server, 1);
        return 1;
    default:
        return 0;
    }
}

/* error(future): nil, or the error object of a future that failed or was
 * cancelled (marking the error retrieved). */
static int lrt_future_error(lua_State *L)
{
    lrt_push_future_error(L, lrt_check_future(L, 1));
    return 1;
}

/* catch_errors(loop [, false]): install the exception handler above, or
 * (false) put the default back, which prints what comes after the end. */
static int lrt_catch_errors(lua_State *L)
{
    void *p = NULL;
    int on = lua_isnone(L, 2) || lua_toboolean(L, 2);
    int rc;

    if (!SWIG_IsOK(SWIG_ConvertPtr(L, 1, &p, SWIGTYPE_p_as_loop, 0)) || !p)
        return luaL_argerror(L, 1, "an open loop is required");
    rc = as_loop_set_exception_handler(p, on ? lrt_exception_handler : NULL,
                                       on ? lrt_get(L) : NULL, NULL);
    if (rc < 0) {
        lrt_push_error(L, rc, NULL);
        return lua_error(L);
    }
    return 0;
}

/* raise_later(loop, err): make err the pending error and stop the loop. */
static int lrt_raise_later_native(lua_State *L)
{
    void *p = NULL;
    if (!SWIG_IsOK(SWIG_ConvertPtr(L, 1, &p, SWIGTYPE_p_as_loop, 0)) || !p)
        return luaL_argerror(L, 1, "an open loop is required");
    lua_settop(L, 2);
    lrt_raise_later(L, p);
    return 0;
}

/* take_error(): the pending error, or nil; it is pending no more. */
static int lrt_take_error(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &lrt_key_error);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lrt_key_error);
    return 1;
}

/* error_object(code [, message]): the error object for a code. */
static int lrt_error_object(lua_State *L)
{
    lrt_push_error(L, (int)luaL_checkinteger(L, 1), luaL_optstring(L, 2, NULL));
    return 1;
}

static void lrt_init(lua_State *L)
{
    struct lrt *rt;

    if (lrt_get(L))
        return; /* the module was loaded again: lcbs point at this one */
    rt = lua_newuserdatauv(L, sizeof *rt, 0);

    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    rt->main = lua_tothread(L, -1);
    lua_pop(L, 1);
    rt->current = NULL;
    rt->running = NULL;
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lrt_key_state);
    if (luaL_newmetatable(L, LRT_ERROR_META)) {
        lua_pushcfunction(L, lrt_error_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}
