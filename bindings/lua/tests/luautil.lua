-- luautil.lua - the few helpers the Lua tests share: a test list that
-- reports each case, and assertions about errors.
local U = {}
local cases = {}

--- Register a test case.
function U.test(name, fn) cases[#cases + 1] = { name = name, fn = fn } end

--- Run every case; exit 1 if any failed.
function U.run_all()
    local failed = 0
    for _, c in ipairs(cases) do
        local ok, e = xpcall(c.fn, function(m) return debug.traceback(tostring(m), 2) end)
        print((ok and "ok" or "FAIL") .. ": " .. c.name)
        if not ok then
            failed = failed + 1
            print(e)
        end
    end
    print(("%d passed, %d failed"):format(#cases - failed, failed))
    -- Closing the state runs every finalizer, so leak checkers see the
    -- C references given back.
    os.exit(failed == 0 and 0 or 1, true)
end

--- fn(...) must raise an asyncstreams error of type typ (and, if given,
--- a message containing text); returns the error.
function U.raises(typ, text, fn, ...)
    local ok, e = pcall(fn, ...)
    assert(not ok, "expected " .. typ .. ", got success")
    assert(type(e) == "table" and e.type == typ,
           ("expected %s, got %s"):format(typ, tostring(e)))
    if text then
        assert(e.message:find(text, 1, true), ("message %q lacks %q"):format(e.message, text))
    end
    return e
end

function U.eq(a, b, what)
    if a ~= b then
        error(("%s: expected %s, got %s"):format(what or "value", tostring(b), tostring(a)), 2)
    end
end

return U
