-- test_core.lua - the SWIG layer itself (asyncstreams.core): errors, the
-- loop, handles, futures and their callbacks, each call's success and
-- error paths, and that nothing is left alive on the loop.
local core = require "asyncstreams.core"
local U = require "luautil"
local test, raises, eq = U.test, U.raises, U.eq

local function new_loop()
    local rc, loop = core.as_loop_new()
    eq(rc, 0, "as_loop_new")
    core.catch_errors(loop)
    return loop
end

-- Run a turn or two without blocking (run_once waits when nothing is due).
local function spin(loop)
    core.as_loop_run_until_complete(loop, core.as_sleep(loop, 0))
end

-- Drop every Lua reference first, then close: nothing may be left.
local function close_clean(loop)
    collectgarbage()
    collectgarbage()
    eq(core.as_loop_objects(loop), 0, "objects alive")
    eq(core.as_loop_close(loop), 0, "as_loop_close")
end

test("errors: names, messages, kinds", function()
    eq(core.as_err_name(core.AS_ECANCELLED), "AS_ECANCELLED")
    eq(core.as_strerror(core.AS_ETIMEOUT), "operation timed out")
    eq(core.as_err_is_lib(core.AS_EINVAL), 1)
    eq(core.as_err_is_lib(-104), 0)
    local e = core.error_object(core.AS_EINCOMPLETE)
    eq(e.type, "IncompleteReadError")
    eq(tostring(e), "IncompleteReadError: " .. core.as_strerror(core.AS_EINCOMPLETE))
    eq(core.error_object(-111).type, "ConnectionRefusedError")
end)

test("loop: make, query, close twice", function()
    local loop = new_loop()
    eq(core.as_loop_backend_name(loop), "select")
    assert(core.as_loop_max_fd(loop) > 0)
    eq(core.as_loop_is_closed(loop), 0)
    eq(core.as_loop_is_running(loop), 0)
    assert(core.as_loop_time(loop) > 0)
    eq(core.as_loop_pending(loop), 0)
    close_clean(loop)
    -- A closed loop is forgotten: every later call gets the NULL answer.
    raises("ValueError", nil, core.as_loop_close, loop)
    eq(core.as_loop_is_closed(loop), 1)
    raises("RuntimeError", "no future", core.as_sleep, loop, 0)
    local _, l2 = core.as_loop_new_with_backend("select")
    eq(core.as_loop_close(l2), 0)
    raises("ValueError", nil, core.as_loop_new_with_backend, "no-such-backend")
end)

test("loop: call_soon, call_later, call_at, end of turn, stop", function()
    local loop = new_loop()
    local order = {}
    core.as_loop_call_later(loop, 0.2, function() order[#order + 1] = "later" end)
    core.as_loop_call_soon(loop, function() order[#order + 1] = "soon" end)
    core.as_loop_call_end_of_turn(loop, function() order[#order + 1] = "end" end)
    local _, h = core.as_loop_call_at(loop, core.as_loop_time(loop) + 0.4,
                                      function() order[#order + 1] = "at"; core.as_loop_stop(loop) end)
    assert(core.as_handle_when(h) > 0)
    core.as_loop_call_soon_threadsafe(loop, function() order[#order + 1] = "threadsafe" end)
    core.as_loop_run_forever(loop)
    eq(table.concat(order, " "), "soon threadsafe end later at")
    raises("ValueError", nil, core.as_loop_call_later, loop, 0 / 0, function() end)
    -- Not a function: refused before the C call.
    assert(not pcall(core.as_loop_call_soon, loop, 42))
    h = nil
    close_clean(loop)
end)

test("handles: cancel drops the callback and its reference", function()
    local loop = new_loop()
    local ran = false
    local _, h = core.as_loop_call_later(loop, 0, function() ran = true end)
    eq(core.as_handle_cancelled(h), 0)
    core.as_handle_cancel(h)
    eq(core.as_handle_cancelled(h), 1)
    core.as_handle_cancel(h) -- twice: nothing
    eq(core.as_loop_pending(loop), 0)
    spin(loop)
    assert(not ran)
    eq(core.as_loop_pending(loop), 0)
    h = nil
    close_clean(loop)
end)

test("loop: a closed loop refuses callbacks, and close drops pending ones", function()
    local loop = new_loop()
    local gone = setmetatable({}, { __mode = "k" })
    local f = function() end
    gone[f] = true
    core.as_loop_call_later(loop, 100, f)
    f = nil
    eq(core.as_loop_pending(loop), 1)
    eq(core.as_loop_close(loop), 0)
    collectgarbage()
    assert(next(gone) == nil, "the closed loop still held the callback")
end)

test("fd watchers: add, fire, remove; a bad fd is refused", function()
    local loop = new_loop()
    raises("ValueError", nil, core.as_loop_add_reader, loop, -1, function() end)
    raises("OSError", nil, core.as_loop_add_writer, loop, 1 << 20, function() end)
    -- stdout (or whatever fd 1 is) is writable.
    local fired = 0
    core.as_loop_add_writer(loop, 1, function() fired = fired + 1; core.as_loop_stop(loop) end)
    core.as_loop_run_forever(loop)
    eq(fired, 1)
    eq(core.as_loop_remove_writer(loop, 1), 1)
    eq(core.as_loop_remove_writer(loop, 1), 0)
    eq(core.as_loop_remove_reader(loop, 1), 0)
    close_clean(loop)
end)

test("an error in a callback stops the loop and is kept for its runner", function()
    local loop = new_loop()
    local after = false
    core.as_loop_call_soon(loop, function() error({ mine = true }) end)
    core.as_loop_call_soon(loop, function() after = true end)
    core.as_loop_run_forever(loop) -- stopped by the error
    local e = core.take_error()
    assert(type(e) == "table" and e.mine)
    eq(core.take_error(), nil)
    close_clean(loop)
    assert(after) -- the turn ran to its end
end)

test("futures: states, errors, cancel, transfer", function()
    local loop = new_loop()
    local _, f = core.as_future_new(loop)
    eq(core.as_future_state_of(f), core.AS_FUTURE_PENDING)
    eq(core.as_future_done(f), 0)
    raises("RuntimeError", "Result is not set", core.result, f)
    eq(core.error(f), nil)
    core.as_future_set_error(f, core.AS_ETIMEOUT, "too slow")
    eq(core.as_future_state_of(f), core.AS_FUTURE_FINISHED)
    raises("RuntimeError", nil, core.as_future_set_error, f, core.AS_EINVAL, nil)
    raises("RuntimeError", nil, core.asw_future_set_result_none, f)
    eq(core.as_future_error_message(f), "too slow")
    local e = raises("TimeoutError", "too slow", core.result, f)
    eq(e.code, core.AS_ETIMEOUT)
    local _, g = core.as_future_new(loop)
    raises("ValueError", nil, core.as_future_set_error, g, 5, nil)
    core.as_future_transfer(g, f)
    eq(core.error(g).message, "too slow")
    raises("ValueError", nil, core.as_future_transfer, g, g)
    local _, c = core.as_future_new(loop)
    eq(core.as_future_cancel(c, "stop"), 1)
    eq(core.as_future_cancelled(c), 1)
    eq(core.as_future_cancel(c, nil), 0)
    raises("CancelledError", "stop", core.result, c)
    local _, s = core.as_future_new(loop)
    core.as_future_set_cancelled(s, nil)
    eq(core.as_future_state_of(s), core.AS_FUTURE_CANCELLED)
    local _, ok = core.as_future_new(loop)
    core.asw_future_set_result_none(ok)
    eq(select("#", core.result(ok)), 0)
    raises("ValueError", nil, core.as_future_new, nil)
    f, g, c, s, ok = nil
    close_clean(loop)
end)

test("done callbacks run on the loop with the future, once", function()
    local loop = new_loop()
    local _, f = core.as_future_new(loop)
    local seen = {}
    core.as_future_add_done_callback(f, function(ff) seen[#seen + 1] = core.as_future_done(ff) end)
    core.asw_future_set_result_none(f)
    eq(#seen, 0) -- never inside the call that completed it
    spin(loop)
    eq(#seen, 1)
    eq(seen[1], 1)
    -- Added after done: still scheduled, not run at once.
    core.as_future_add_done_callback(f, function() seen[#seen + 1] = "late" end)
    eq(#seen, 1)
    spin(loop)
    eq(seen[2], "late")
    f = nil
    close_clean(loop)
end)

test("a canceller runs inside cancel, and is let go when the future is done", function()
    local loop = new_loop()
    local _, f = core.as_future_new(loop)
    local asked = 0
    core.asw_future_set_canceller_cb(f, function() asked = asked + 1 end)
    eq(core.as_future_cancel(f, nil), 1)
    eq(asked, 1)
    eq(core.as_future_done(f), 0) -- the work decides
    core.as_future_set_cancelled(f, nil)
    eq(core.as_future_cancel(f, nil), 0)
    raises("RuntimeError", nil, core.asw_future_set_canceller_cb, f, function() end)
    f = nil
    spin(loop) -- the canceller's release rides on a done callback
    close_clean(loop)
end)

test("an error nobody retrieved reaches the runner", function()
    local loop = new_loop()
    local _, f = core.as_future_new(loop)
    core.as_future_set_error(f, core.AS_EINVAL, "lost?")
    f = nil
    collectgarbage()
    collectgarbage()
    local e = core.take_error()
    assert(e and e.message:find("never retrieved", 1, true) and e.message:find("lost?", 1, true),
           tostring(e))
    close_clean(loop)
end)

test("sleep, gather and wait_for over C futures", function()
    local loop = new_loop()
    local t0 = core.as_loop_time(loop)
    local s = core.as_sleep(loop, 0.02)
    core.as_loop_run_until_complete(loop, s)
    assert(core.as_loop_time(loop) - t0 >= 0.015)
    local a, b = core.as_sleep(loop, 0), core.as_sleep(loop, 0.01)
    local g = core.asw_gather_refs(loop, { a, b }, 0)
    core.as_loop_run_until_complete(loop, g)
    eq(core.asw_future_gather_count(g), 2)
    eq(core.as_future_done(core.asw_future_gather_child(g, 1)), 1)
    eq(core.asw_future_gather_child(g, 2), nil)
    assert(not pcall(core.asw_gather_refs, loop, { a, 42 }, 0))
    local w = core.asw_wait_for_ref(loop, core.as_sleep(loop, 10), 0.01)
    assert(not pcall(core.as_loop_run_until_complete, loop, w))
    eq(core.error(w).type, "TimeoutError")
    local nan = core.asw_wait_for_ref(loop, core.as_sleep(loop, 1), 0 / 0)
    core.as_loop_run_until_complete(loop, core.as_sleep(loop, 0))
    eq(core.error(nan).type, "ValueError")
    s, a, b, g, w, nan = nil
    close_clean(loop)
end)

test("semaphores and events", function()
    local loop = new_loop()
    local _, sem = core.as_semaphore_new(loop, 1)
    local first = core.as_semaphore_acquire(sem)
    eq(core.as_future_done(first), 1)
    eq(core.as_semaphore_locked(sem), 1)
    local second = core.as_semaphore_acquire(sem)
    eq(core.as_semaphore_waiting(sem), 1)
    core.as_semaphore_release(sem)
    core.as_loop_run_until_complete(loop, second)
    eq(core.as_semaphore_value(sem), 0)
    raises("ValueError", nil, core.as_semaphore_release, nil)
    local _, ev = core.as_event_new(loop)
    local w = core.as_event_wait(ev)
    eq(core.as_event_is_set(ev), 0)
    core.as_event_set(ev)
    core.as_loop_run_until_complete(loop, w)
    core.as_event_clear(ev)
    eq(core.as_event_is_set(ev), 0)
    -- Freeing one cancels what waits on it.
    local pending = core.as_event_wait(ev)
    ev = nil
    collectgarbage()
    eq(core.as_future_cancelled(pending), 1)
    raises("ValueError", nil, core.as_event_new, nil)
    sem, first, second, w, pending = nil
    spin(loop)
    close_clean(loop)
end)

test("a reader fed by hand: every read, every error detail", function()
    local loop = new_loop()
    raises("ValueError", nil, core.as_reader_new, loop, 0)
    local _, r = core.as_reader_new(loop, 10)
    eq(core.as_reader_limit(r), 10)
    core.as_reader_feed_data(r, "ab\0cd\nxyz")
    eq(core.as_reader_buffered(r), 9)
    eq(core.asw_reader_peek_bytes(r), "ab\0cd\nxyz")
    eq(core.result(core.as_reader_readline(r)), "ab\0cd\n")
    eq(core.result(core.as_reader_read(r, 1)), "x")
    eq(core.result(core.as_reader_readexactly(r, 1)), "y")
    raises("ValueError", "less than zero", core.result, core.as_reader_readexactly(r, -1))
    raises("ValueError", "at least one-byte", core.result, core.as_reader_readuntil(r, ""))
    raises("ValueError", "at least one element", core.result, core.as_reader_readuntil_any(r, {}))
    core.as_reader_feed_data(r, ("q"):rep(20))
    local e = raises("LimitOverrunError", "exceed the limit", core.result, core.as_reader_readuntil(r, "!"))
    eq(e.consumed, 21)
    core.as_reader_feed_data(r, "!rest")
    local d = core.as_reader_discard_until(r, { "!" })
    local count, which = core.result(d)
    eq(count, 22)
    eq(which, 1)
    core.as_reader_feed_eof(r)
    raises("RuntimeError", nil, core.as_reader_feed_data, r, "late")
    e = raises("IncompleteReadError", "4 bytes read on a total of 9", core.result,
               core.as_reader_readexactly(r, 9))
    eq(e.partial, "rest")
    eq(e.expected, 9)
    eq(core.as_reader_at_eof(r), 1)
    local _, r2 = core.as_reader_new(loop, 100)
    raises("ValueError", nil, core.as_reader_set_exception, r2, 1, nil)
    core.as_reader_set_exception(r2, -104, "reset!")
    eq(core.asw_reader_error_code(r2), -104)
    eq(core.asw_reader_error_message(r2), "reset!")
    raises("ConnectionResetError", "reset!", core.result, core.as_reader_read(r2, 1))
    -- The NULL rule: nil reader, nil future.
    raises("RuntimeError", "no future", core.as_reader_read, nil, 1)
    eq(core.as_reader_buffered(nil), 0)
    r, r2, d = nil
    close_clean(loop)
end)

U.run_all()
