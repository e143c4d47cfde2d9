-- line_reader.lua - read lines and framed records, handling the two stream
-- errors: IncompleteReadError (EOF inside a record) and LimitOverrunError
-- (a line longer than the reader's limit).  examples/line_reader.py in Lua.
local asyncio = require "asyncstreams"

local function serve(reader, writer)
    -- Two good lines, a line longer than the client's limit, then a
    -- record cut short by EOF.
    writer:write("first\nsecond\n" .. ("x"):rep(200) .. "\nlast\n12345")
    writer:drain()
    writer:close()
    writer:wait_closed()
end

-- listing: reader
local function read_all(reader)
    while true do
        local ok, line = pcall(reader.readuntil, reader, "\n")
        if ok then
            print("line:", (line:gsub("\n", "\\n")))
        elseif asyncio.is_error(line, "LimitOverrunError") then
            -- Drop the long line: consume what was looked at, then the
            -- rest up to the separator.
            print(("line too long (%d bytes seen), skipped"):format(line.consumed))
            reader:readexactly(line.consumed)
            reader:readuntil("\n")
        elseif asyncio.is_error(line, "IncompleteReadError") then
            if line.partial ~= "" then print(("EOF inside a line: %q"):format(line.partial)) end
            break
        else
            error(line, 0)
        end
    end
end
-- end listing

asyncio.run(function()
    local server = asyncio.start_server(serve, "127.0.0.1", 0)
    local reader, writer = asyncio.open_connection("127.0.0.1", server:port(), { limit = 100 })
    read_all(reader)
    local ok, e = pcall(reader.readexactly, reader, 4)
    assert(not ok and asyncio.is_error(e, "IncompleteReadError"))
    print(("readexactly at EOF: expected %d, got %q"):format(e.expected, e.partial))
    writer:close()
    writer:wait_closed()
    server:close()
    server:wait_closed()
end)
