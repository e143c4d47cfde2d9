#!/bin/sh
# runtest.sh TEST - run one Lua test file, or a shell test that runs Lua
# programs, against the binding staged in the build tree.  Set by the
# Makefile: LUA, AS_LUA_CPATH (the staged asyncstreams/core.so), AS_SRCDIR
# (asyncstreams.lua and the examples), AS_LIBDIR (libasyncstreams.so),
# AS_SANITIZERS and AS_CC (a sanitizer build needs its runtime preloaded
# into the interpreter).
set -e
test="$1"
LUA_PATH="$AS_SRCDIR/bindings/lua/?.lua;$AS_SRCDIR/bindings/lua/tests/?.lua;;"
LUA_CPATH="$AS_LUA_CPATH/?.so;;"
LD_LIBRARY_PATH="$AS_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LUA LUA_PATH LUA_CPATH LD_LIBRARY_PATH AS_SRCDIR
if [ "$AS_SANITIZERS" = yes ]; then
    for rt in libasan.so libclang_rt.asan-x86_64.so; do
        p=$($AS_CC -print-file-name=$rt 2>/dev/null || true)
        if [ -n "$p" ] && [ -f "$p" ]; then
            LD_PRELOAD="$p${LD_PRELOAD:+ $LD_PRELOAD}"
            break
        fi
    done
fi
case $test in
    # A shell test preloads the runtime into the Lua programs it starts
    # (lua_run), not into the shell or the Python peers, whose own exit-time
    # allocations LeakSanitizer would report.
    *.luash) AS_LUA_PRELOAD=${LD_PRELOAD-}; export AS_LUA_PRELOAD; exec ${SHELL:-/bin/sh} "$@" ;;
    *) export LD_PRELOAD; exec "$LUA" "$@" ;;
esac
