-- you_said.lua - a line server that answers "You said: <line>" until the
-- client sends "bye"; a client talks to it.  examples/you_said.py in Lua.
local asyncio = require "asyncstreams"

local function handle(reader, writer)
    while true do
        local line = reader:readline()
        if line == "" or line:match("^%s*(.-)%s*$") == "bye" then break end
        writer:write("You said: " .. line)
        writer:drain()
    end
    writer:close()
    writer:wait_closed()
end

asyncio.run(function()
    local server = asyncio.start_server(handle, "127.0.0.1", 0)
    local reader, writer = asyncio.open_connection("127.0.0.1", server:port())
    for _, text in ipairs { "hello", "how are you", "bye" } do
        writer:write(text .. "\n")
        writer:drain()
        if text ~= "bye" then print((reader:readline():gsub("%s+$", ""))) end
    end
    print("server closed the connection:", reader:read() == "")
    writer:close()
    writer:wait_closed()
    server:close()
    server:wait_closed()
end)
