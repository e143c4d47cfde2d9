-- test_examples.lua - run each Lua example (examples/lua/) and compare its
-- output with what the Python seed beside it prints.
local U = require "luautil"

local src = assert(os.getenv("AS_SRCDIR"), "AS_SRCDIR is not set")
local lua = os.getenv("LUA") or "lua5.4"

local function run(example)
    local p = assert(io.popen(("%s %s/examples/lua/%s 2>&1"):format(lua, src, example)))
    local out = p:read("a")
    local ok, how, code = p:close()
    assert(ok, ("%s exited %s %s:\n%s"):format(example, how, code, out))
    return out
end

local expected = {
    ["echo.lua"] = 'Sent "Hello World 0!", received "Hello World 0!"\n' ..
                   'Sent "Hello World 1!", received "Hello World 1!"\n' ..
                   'Sent "Hello World 2!", received "Hello World 2!"\n' ..
                   "server closed:\ttrue\n",
    ["you_said.lua"] = "You said: hello\nYou said: how are you\n" ..
                       "server closed the connection:\ttrue\n",
    ["line_reader.lua"] = "line:\tfirst\\n\nline:\tsecond\\n\n" ..
                          "line too long (200 bytes seen), skipped\nline:\tlast\\n\n" ..
                          'EOF inside a line: "12345"\nreadexactly at EOF: expected 4, got ""\n',
    ["large_write.lua"] = "receiver counted\t16777216\tbytes of\t16777216\n",
}

for _, name in ipairs { "echo.lua", "you_said.lua", "line_reader.lua", "large_write.lua" } do
    U.test("examples/lua/" .. name, function() U.eq(run(name), expected[name], name) end)
end

U.run_all()
