#!/bin/sh
# runtest.sh TEST.py - run one Python test file (unittest) against the
# binding staged in the build tree.  Set by the Makefile: PYTHON, AS_PYPATH
# (the staged package), AS_LIBDIR (libasyncstreams.so), AS_TESTDIR,
# AS_SANITIZERS and AS_CC (a sanitizer build needs its runtime preloaded
# into the interpreter, and Python's own exit-time allocations are not
# leaks of ours).
set -e
test="$1"
PYTHONPATH="$AS_PYPATH:$AS_TESTDIR${PYTHONPATH:+:$PYTHONPATH}"
LD_LIBRARY_PATH="$AS_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH LD_LIBRARY_PATH AS_SRCDIR
if [ "$AS_SANITIZERS" = yes ]; then
    for rt in libasan.so libclang_rt.asan-x86_64.so; do
        p=$($AS_CC -print-file-name=$rt 2>/dev/null || true)
        if [ -n "$p" ] && [ -f "$p" ]; then
            LD_PRELOAD="$p${LD_PRELOAD:+ $LD_PRELOAD}"
            break
        fi
    done
    # CPython does not free everything at exit, so LeakSanitizer would only
    # report the interpreter's own memory.  Leaks in the binding are caught
    # by its tests instead (reference counts, as_loop_objects() at the end).
    # Last, so it wins over an inherited detect_leaks=1 (.ci/run sets one).
    export LD_PRELOAD ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi
exec "$PYTHON" -X dev -W error::RuntimeWarning "$test" -v
