-- test_memory.lua - 10,000 open/echo/close cycles leave Lua's memory
-- (collectgarbage("count") after a full collect) and the loop's count of
-- live C objects (as_loop_objects()) where they were after the first
-- thousand: every C reference the Lua objects held was given back.
local asyncio = require "asyncstreams"
local core = asyncio.core
local U = require "luautil"
local eq = U.eq

local CYCLES = tonumber(os.getenv("AS_LUA_CYCLES")) or 10000
local WARMUP = 1000

local function handle(reader, writer)
    local line = reader:readline()
    writer:write(line)
    writer:drain()
    writer:close()
    writer:wait_closed()
end

local function cycle(port, i)
    local reader, writer = asyncio.open_connection("127.0.0.1", port)
    local message = "cycle " .. i .. "\n"
    writer:write(message)
    writer:drain()
    eq(reader:readline(), message)
    eq(reader:read(), "")
    writer:close()
    writer:wait_closed()
end

-- Memory and objects once everything in flight has settled.
local function measure(server)
    for _ = 1, 100 do
        if server:active_connections() == 0 then break end
        asyncio.sleep(0.001)
    end
    asyncio.sleep(0)
    collectgarbage()
    collectgarbage()
    return collectgarbage("count"), core.as_loop_objects(asyncio.get_running_loop())
end

U.test(CYCLES .. " open/echo/close cycles: Lua memory and C objects flat", function()
    asyncio.run(function()
        local server = asyncio.start_server(handle, "127.0.0.1", 0)
        local port = server:port()
        for i = 1, WARMUP do cycle(port, i) end
        local kib0, objects0 = measure(server)
        for i = WARMUP + 1, CYCLES do cycle(port, i) end
        local kib1, objects1 = measure(server)
        print(("Lua memory %.1f KiB -> %.1f KiB, C objects %d -> %d"):format(kib0, kib1, objects0, objects1))
        eq(objects1, objects0, "C objects alive")
        -- A handful of KiB of noise (interned strings, table slack); a leak
        -- of one object per cycle would be hundreds of KiB.
        assert(kib1 - kib0 < 64, ("Lua memory grew by %.1f KiB"):format(kib1 - kib0))
        server:close()
        server:wait_closed()
    end)
end)

U.run_all()
