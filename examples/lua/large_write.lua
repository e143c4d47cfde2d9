-- large_write.lua - send 16 MiB in 64 KiB writes, calling drain() whenever
-- the write buffer is above 64 KiB, to a receiver that counts the bytes.
-- examples/large_send.py in Lua.
local asyncio = require "asyncstreams"

local TOTAL = 16 * 1024 * 1024
local CHUNK = 64 * 1024

local function receive(reader, writer)
    local n = 0
    while true do
        local data = reader:read(65536)
        if data == "" then break end
        n = n + #data
    end
    writer:write(tostring(n))
    writer:drain()
    writer:close()
    writer:wait_closed()
end

-- listing: sender
local function send_all(writer)
    local chunk = ("\0"):rep(CHUNK)
    local waits = 0
    for _ = 1, TOTAL // CHUNK do
        writer:write(chunk)
        if writer.transport:get_write_buffer_size() > 64 * 1024 then
            waits = waits + 1
            writer:drain()
        end
    end
    writer:drain()
    writer:write_eof()
    return waits
end
-- end listing

asyncio.run(function()
    local server = asyncio.start_server(receive, "127.0.0.1", 0)
    local reader, writer = asyncio.open_connection("127.0.0.1", server:port())
    send_all(writer)
    print("receiver counted", tonumber(reader:read()), "bytes of", TOTAL)
    writer:close()
    writer:wait_closed()
    server:close()
    server:wait_closed()
end)
