-- asyncstreams.lua - asyncio's streams API for Lua 5.4, on the C loop.
--
-- The C module (asyncstreams.core, SWIG over bindings/swig/asyncstreams.i)
-- hands out C futures; this file makes them awaitable with coroutines.
-- A task is a coroutine plus a C future that says when it is done: when
-- the coroutine awaits a future that is not done yet it yields it, the
-- task adds a done callback to it, and the callback resumes the coroutine.
--
--   local asyncstreams = require "asyncstreams"
--   asyncstreams.run(function()
--       local reader, writer = asyncstreams.open_connection("127.0.0.1", 8888)
--       writer:write("hello\n")
--       print(reader:readline())
--   end)
--
-- Errors are tables (type, code, name, message; partial and expected for
-- IncompleteReadError, consumed for LimitOverrunError).  An error raised
-- in a callback, or one the loop could hand to nobody, stops the loop and
-- is raised by run().  Await only directly inside a task's function (or
-- functions it calls), not inside a coroutine of your own.
local core = require "asyncstreams.core"

local M = { core = core }
local ErrorMeta = getmetatable(core.error_object(core.AS_EINVAL))
local loop          -- the loop run() runs
local current       -- the task whose coroutine is running
local finished = 0  -- counts tasks as they finish (gather's "first" error)
local live = {}     -- the tasks not done yet, which run() cancels at its end

local function truth(n) return n ~= 0 end

--- True if e is an asyncstreams error (of type typ, if given).
function M.is_error(e, typ)
    return getmetatable(e) == ErrorMeta and (typ == nil or e.type == typ)
end

local function raise(code, message) error(core.error_object(code, message), 2) end

local function running_loop()
    if not loop then raise(core.AS_ESTATE, "no running event loop") end
    return loop
end

-- ------------------------------------------------------------ tasks

local Task = {}
Task.__index = Task
M.Task = Task

-- listing: wait
-- Suspend the running task until the C future f is done.  A cancel that
-- came while the task was not waiting cancels this await at once.
local function wait(f)
    local t = current
    if t and t.must_cancel then
        t.must_cancel = false
        core.as_future_cancel(f, nil)
    end
    if truth(core.as_future_done(f)) then return end
    if not t or coroutine.running() ~= t.co then
        raise(core.AS_ESTATE, "await outside a task (or inside a coroutine of its own)")
    end
    coroutine.yield(f)
end
-- end listing

local function finish(t, ok, res)
    t.done = true
    live[t] = nil
    local co = t.co
    t.co = nil -- its locals may go now
    finished = finished + 1
    t.order = finished
    if ok then
        t.results = res
        core.asw_future_set_result_none(t.future)
    elseif M.is_error(res[2], "CancelledError") then
        t.cancelled = true
        core.as_future_set_cancelled(t.future, res[2].message)
    else
        local e = res[2]
        if type(e) == "string" then e = debug.traceback(co, e, 1) end
        t.err = e
        core.as_future_set_error(t.future, M.is_error(e) and e.code or core.AS_EUNHANDLED,
                                 tostring(e))
    end
end

-- listing: step
local function step(t)
    if t.must_cancel and not t.started then
        return finish(t, false, { n = 2, false, core.error_object(core.AS_ECANCELLED) })
    end
    t.started = true
    local outer = current
    current = t
    local res = table.pack(coroutine.resume(t.co, table.unpack(t.args, 1, t.args.n)))
    current = outer
    t.args = { n = 0 }
    if coroutine.status(t.co) == "dead" then
        return finish(t, res[1], res[1] and table.pack(table.unpack(res, 2, res.n)) or res)
    end
    local f = res[2]
    t.waiting = f
    core.as_future_add_done_callback(f, function()
        t.waiting = nil
        step(t)
    end)
end
-- end listing

--- Run fn(...) as a task (asyncio.create_task); returns the Task.
function M.spawn(fn, ...)
    local l = running_loop()
    local _, f = core.as_future_new(l)
    local t = setmetatable({ co = coroutine.create(fn), future = f,
                             args = table.pack(...), must_cancel = false }, Task)
    -- Cancelling the C future (a server's shutdown, a wait_for's timeout)
    -- cancels the task.
    core.asw_future_set_canceller_cb(f, function() t:cancel() end)
    core.as_loop_call_soon(l, function() step(t) end)
    live[t] = true
    return t
end
M.create_task = M.spawn

--- Request cancellation: the task's current await raises CancelledError.
function Task:cancel(message)
    if self.done then return false end
    if not (self.waiting and truth(core.as_future_cancel(self.waiting, message))) then
        self.must_cancel = true
    end
    return true
end

function Task:is_done() return self.done == true end

-- The task's outcome: its return values, or its error raised.
function Task:outcome()
    core.error(self.future) -- retrieved: nobody needs to be told
    if self.err ~= nil then error(self.err, 0) end
    if self.cancelled then raise(core.AS_ECANCELLED) end
    return table.unpack(self.results, 1, self.results.n)
end

--- await x: a task's return values, or a C future's result.
function M.await(x)
    if getmetatable(x) == Task then
        wait(x.future)
        return x:outcome()
    end
    wait(x)
    return core.result(x)
end
local await = M.await

-- The C future behind an awaitable, and how to read its outcome.
local function future_of(x)
    if type(x) == "function" then x = M.spawn(x) end
    if getmetatable(x) == Task then return x.future, x end
    return x
end

--- Run main(...) in a new loop until it finishes, then close the loop
--- (asyncio.run).  Returns main's results or raises its error, or the
--- first error raised in a callback.
function M.run(main, ...)
    if loop then raise(core.AS_ESTATE, "run() cannot be called from a running event loop") end
    local _, l = core.as_loop_new()
    core.catch_errors(l)
    loop = l
    local t = M.spawn(main, ...)
    local ok, err = pcall(core.as_loop_run_until_complete, l, t.future)
    local pending = core.take_error()
    -- Cancel what is left and let it unwind, as asyncio.run does.
    for task in pairs(live) do task:cancel() end
    for _ = 1, 100 do
        if next(live) == nil then break end
        pcall(core.as_loop_run_once, l)
    end
    live = {}
    -- What main dropped reports now, while errors still come to us; after
    -- the close the loop's default handler prints what is left.
    collectgarbage()
    collectgarbage()
    local late = core.take_error()
    pending = pending or late
    core.catch_errors(l, false)
    loop = nil
    core.as_loop_close(l)
    if pending ~= nil then error(pending, 0) end
    if not t.done then error(ok and "main task did not finish" or err, 0) end
    return t:outcome()
end

--- The running loop, a core (SWIG) object: for core calls such as
--- core.as_loop_objects(asyncstreams.get_running_loop()).
function M.get_running_loop() return running_loop() end

--- The running loop's clock (asyncio's loop.time()).
function M.time() return core.as_loop_time(running_loop()) end

-- ------------------------------------------------------------ sync

function M.sleep(delay) await(core.as_sleep(running_loop(), delay)) end

--- wait_for(aw, timeout): aw's outcome, or TimeoutError after timeout s.
function M.wait_for(aw, timeout)
    local f, t = future_of(aw)
    local outer = core.asw_wait_for_ref(running_loop(), f, timeout or math.huge)
    wait(outer)
    local e = core.error(outer)
    if t then
        if e and e.type ~= "TimeoutError" and e.type ~= "CancelledError" then return t:outcome() end
        if not e then return t:outcome() end
        core.error(t.future)
        error(e, 0)
    end
    if e then error(e, 0) end
    return core.result(outer)
end

--- gather(aw, ...) or gather({aw, ...}, {return_exceptions = true}):
--- a list of each one's (first) result, in order.
function M.gather(first, ...)
    local list, opts = { first, ... }, {}
    if type(first) == "table" and getmetatable(first) == nil then list, opts = first, (...) or {} end
    local futures, tasks = {}, {}
    for i, x in ipairs(list) do futures[i], tasks[i] = future_of(x) end
    local g = core.asw_gather_refs(running_loop(), futures, opts.return_exceptions and 1 or 0)
    wait(g)
    local results, failed = {}, nil
    for i, f in ipairs(futures) do
        local ok, value = true, nil -- a child still running (gather failed first)
        if tasks[i] and tasks[i].done then ok, value = pcall(tasks[i].outcome, tasks[i])
        elseif not tasks[i] and truth(core.as_future_done(f)) then ok, value = pcall(core.result, f) end
        results[i] = value
        local order = tasks[i] and tasks[i].order or math.huge
        if not ok and (not failed or order < failed.order) then
            failed = { order = order, err = value }
        end
    end
    local e = core.error(g)
    if e and not failed then error(e, 0) end
    if e then error(failed.err, 0) end
    return results
end

-- ------------------------------------------------------------ locks

local Semaphore = {}
Semaphore.__index = Semaphore
function M.Semaphore(value)
    local _, s = core.as_semaphore_new(running_loop(), value or 1)
    return setmetatable({ c = s }, Semaphore)
end
function Semaphore:acquire() await(core.as_semaphore_acquire(self.c)) return true end
function Semaphore:release() core.as_semaphore_release(self.c) end
function Semaphore:locked() return truth(core.as_semaphore_locked(self.c)) end
function Semaphore:value() return core.as_semaphore_value(self.c) end
function Semaphore:waiting() return core.as_semaphore_waiting(self.c) end

local Event = {}
Event.__index = Event
function M.Event()
    local _, e = core.as_event_new(running_loop())
    return setmetatable({ c = e }, Event)
end
function Event:wait() await(core.as_event_wait(self.c)) return true end
function Event:set() core.as_event_set(self.c) end
function Event:clear() core.as_event_clear(self.c) end
function Event:is_set() return truth(core.as_event_is_set(self.c)) end

-- ------------------------------------------------------------ streams

local StreamReader = {}
StreamReader.__index = StreamReader
M.StreamReader = StreamReader
local function reader_of(c) return setmetatable({ c = c }, StreamReader) end

--- A reader fed by hand (asyncio.StreamReader(limit)).
function M.new_reader(limit)
    local _, r = core.as_reader_new(running_loop(), limit or core.AS_READER_DEFAULT_LIMIT)
    return reader_of(r)
end
function StreamReader:read(n) return await(core.as_reader_read(self.c, n or -1)) end
function StreamReader:readline() return await(core.as_reader_readline(self.c)) end
function StreamReader:readexactly(n) return await(core.as_reader_readexactly(self.c, n)) end
--- readuntil(sep) or readuntil({sep1, sep2, ...}).
function StreamReader:readuntil(sep)
    sep = sep or "\n"
    if type(sep) == "table" then return await(core.as_reader_readuntil_any(self.c, sep)) end
    return await(core.as_reader_readuntil(self.c, sep))
end
function StreamReader:readline_limit(limit) return await(core.as_reader_readline_limit(self.c, limit)) end
function StreamReader:readuntil_limit(seps, limit)
    return await(core.as_reader_readuntil_ex(self.c, type(seps) == "table" and seps or { seps }, limit))
end
--- Drop bytes through the first separator; returns the count dropped and
--- which separator matched (1-based).
function StreamReader:discard_until(seps)
    return await(core.as_reader_discard_until(self.c, type(seps) == "table" and seps or { seps }))
end
function StreamReader:at_eof() return truth(core.as_reader_at_eof(self.c)) end
function StreamReader:feed_data(data) core.as_reader_feed_data(self.c, data) end
function StreamReader:feed_eof() core.as_reader_feed_eof(self.c) end
function StreamReader:set_exception(code, message) core.as_reader_set_exception(self.c, code, message) end
--- The stored error object, or nil.
function StreamReader:exception()
    local code = core.asw_reader_error_code(self.c)
    if code == 0 then return nil end
    return core.error_object(code, core.asw_reader_error_message(self.c))
end
function StreamReader:peek() return core.asw_reader_peek_bytes(self.c) end
function StreamReader:buffered() return core.as_reader_buffered(self.c) end
function StreamReader:limit() return core.as_reader_limit(self.c) end
function StreamReader:memory() return core.as_reader_memory(self.c) end
function StreamReader:paused() return truth(core.as_reader_paused(self.c)) end
--- for line in reader:lines() do ... end (inside a task).
function StreamReader:lines()
    return function()
        local line = self:readline()
        if line ~= "" then return line end
    end
end

local Transport = {}
Transport.__index = Transport
function Transport:get_write_buffer_size() return core.as_transport_get_write_buffer_size(self.c) end
function Transport:get_write_buffer_limits()
    return core.asw_transport_write_buffer_high(self.c), core.asw_transport_write_buffer_low(self.c)
end
function Transport:set_write_buffer_limits(high, low)
    core.as_transport_set_write_buffer_limits(self.c, high or -1, low or -1)
end
function Transport:is_closing() return truth(core.as_transport_is_closing(self.c)) end
function Transport:pause_reading() core.as_transport_pause_reading(self.c) end
function Transport:resume_reading() core.as_transport_resume_reading(self.c) end
function Transport:is_reading_paused() return truth(core.as_transport_is_reading_paused(self.c)) end
function Transport:kind() return core.as_transport_kind(self.c) end

local StreamWriter = {}
StreamWriter.__index = StreamWriter
M.StreamWriter = StreamWriter
local function writer_of(c)
    local t = setmetatable({ c = core.asw_writer_transport_ref(c) }, Transport)
    return setmetatable({ c = c, transport = t }, StreamWriter)
end
function StreamWriter:write(data) core.as_writer_write(self.c, data) end
function StreamWriter:writelines(list) for _, d in ipairs(list) do self:write(d) end end
function StreamWriter:write_eof() core.as_writer_write_eof(self.c) end
function StreamWriter:can_write_eof() return truth(core.as_writer_can_write_eof(self.c)) end
function StreamWriter:drain() await(core.as_writer_drain(self.c)) end
function StreamWriter:flush() await(core.as_writer_flush(self.c)) end
function StreamWriter:close() core.as_writer_close(self.c) end
function StreamWriter:close_within(seconds) core.as_writer_close_within(self.c, seconds) end
function StreamWriter:abort() core.as_writer_abort(self.c) end
function StreamWriter:is_closing() return truth(core.as_writer_is_closing(self.c)) end
function StreamWriter:wait_closed() await(core.as_writer_wait_closed(self.c)) end
function StreamWriter:bytes_sent() return core.as_writer_bytes_sent(self.c) end

local function address(fill, object, which)
    local a = core.asw_address()
    fill(object, which, a)
    if a.host == "" then return a.path end -- a Unix socket
    return { a.host, a.port }
end
--- get_extra_info('peername' | 'sockname' | 'socket'), or default.
function StreamWriter:get_extra_info(name, default)
    if name == "socket" then return core.as_writer_fd(self.c) end
    local peer = ({ peername = 1, sockname = 0 })[name]
    if not peer then return default end
    local ok, a = pcall(address, core.asw_writer_address, self.c, peer)
    if ok then return a end
    return default
end

local function open(f)
    local reader, writer = await(f)
    return reader_of(reader), writer_of(writer)
end

local function connect_options(opts)
    if not opts then return nil end
    local o = core.as_connect_options()
    o.limit = opts.limit or 0
    o.family = opts.family or 0
    return o
end

--- open_connection(host, port [, {limit=, family=}]): reader, writer.
function M.open_connection(host, port, opts)
    return open(core.as_open_connection(running_loop(), host, port and tostring(port), connect_options(opts)))
end

function M.open_unix_connection(path, opts)
    return open(core.as_open_unix_connection(running_loop(), path, connect_options(opts)))
end

-- ------------------------------------------------------------ servers

local Server = {}
Server.__index = Server
M.Server = Server

local function server_options(opts)
    if not opts then return nil end
    local o = core.as_server_options()
    for _, k in ipairs { "limit", "backlog", "family", "reuse_address", "reuse_port" } do
        o[k] = opts[k] or 0
    end
    o.no_start = opts.start_serving == false and 1 or 0
    o.keep_socket_file = opts.keep_socket_file and 1 or 0
    return o
end

-- Each connection runs client_connected(reader, writer) as a task, which
-- the C server watches.  A handler's error stops the loop and is raised
-- by run(): it is never printed and lost.
local function handler(client_connected)
    return function(r, w)
        local reader, writer = reader_of(r), writer_of(w)
        local t = M.spawn(function()
            local ok, e = pcall(client_connected, reader, writer)
            if not ok and not M.is_error(e, "CancelledError") then
                writer:close()
                core.raise_later(loop, e)
            elseif not ok then
                error(e, 0)
            end
        end)
        return t.future
    end
end

local function serve(f)
    return setmetatable({ c = await(f) }, Server)
end

--- start_server(client_connected, host, port [, opts]): a Server.
function M.start_server(client_connected, host, port, opts)
    return serve(core.as_start_server(running_loop(), handler(client_connected), host,
                                      port and tostring(port) or "0", server_options(opts)))
end

function M.start_unix_server(client_connected, path, opts)
    return serve(core.as_start_unix_server(running_loop(), handler(client_connected), path,
                                           server_options(opts)))
end

--- The listening sockets' addresses: { {host, port}, ... } or paths.
function Server:sockets()
    local list = {}
    for i = 0, core.as_server_nsockets(self.c) - 1 do
        list[#list + 1] = address(core.asw_server_address, self.c, i)
    end
    return list
end
function Server:port(i) return core.as_server_port(self.c, i or 0) end
function Server:is_serving() return truth(core.as_server_is_serving(self.c)) end
function Server:active_connections() return core.as_server_active_connections(self.c) end
function Server:start_serving() await(core.as_server_start_serving(self.c)) end
function Server:serve_forever() await(core.as_server_serve_forever(self.c)) end
function Server:close() core.as_server_close(self.c) end
function Server:wait_closed() await(core.as_server_wait_closed(self.c)) end
function Server:close_clients() core.as_server_close_clients(self.c) end
function Server:abort_clients() core.as_server_abort_clients(self.c) end
function Server:shutdown(timeout) await(core.as_server_shutdown(self.c, timeout or 0)) end
--- server:serve(fn): fn(server), then close and wait_closed (async with).
function Server:serve(fn)
    local ok, e = pcall(fn, self)
    self:close()
    self:wait_closed()
    if not ok then error(e, 0) end
end

return M
