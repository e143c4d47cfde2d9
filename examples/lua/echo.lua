-- echo.lua - the asyncio echo server and echo client, in Lua on the C loop.
--
--   lua echo.lua              the server and three clients at once (gather)
--   lua echo.lua server       serve on a free port: prints "PORT n", then
--                             serves until killed
--   lua echo.lua client PORT  three clients at once against a line echo
--                             server at 127.0.0.1:PORT
-- The server echoes lines; each client sends one line and prints the
-- reply.  Tutorial chapter 13 sets it beside examples/echo.py.
-- listing: import
local asyncio = require "asyncstreams"
-- end listing

-- listing: server
local function handle_echo(reader, writer)
    for line in reader:lines() do
        writer:write(line)
        writer:drain()
    end
    local addr = writer:get_extra_info("peername")
    assert(addr[1] == "127.0.0.1")
    writer:close()
    writer:wait_closed()
end
-- end listing

-- listing: client
local function tcp_echo_client(message, port)
    local reader, writer = asyncio.open_connection("127.0.0.1", port)
    writer:write(message .. "\n")
    writer:drain()
    local data = reader:readline()
    print(("Sent %q, received %q"):format(message, data:sub(1, -2)))
    writer:close()
    writer:wait_closed()
end
-- end listing

local function clients(port)
    local list = {}
    for i = 0, 2 do
        list[#list + 1] = function() tcp_echo_client(("Hello World %d!"):format(i), port) end
    end
    asyncio.gather(list)
end

-- listing: main
local function main()
    local server = asyncio.start_server(handle_echo, "127.0.0.1", 0)
    local port = server:sockets()[1][2]
    server:serve(function() clients(port) end)
    print("server closed:", not server:is_serving())
end
-- end listing

local mode, port = ...
if mode == "server" then
    asyncio.run(function()
        local server = asyncio.start_server(handle_echo, "127.0.0.1", 0)
        print("PORT " .. server:port())
        io.stdout:flush()
        server:serve_forever()
    end)
elseif mode == "client" then
    asyncio.run(clients, assert(tonumber(port), "usage: echo.lua client PORT"))
else
    asyncio.run(main)
end
